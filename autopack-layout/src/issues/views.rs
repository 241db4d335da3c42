//! The materialised views of a ledger: their files, their text, and which of them a
//! checkpoint rewrites.
//!
//! Rewriting a view costs its size, so a checkpoint rewrites a view only when it changed,
//! and a large view only once its pending changes reach [`REWRITE_FRACTION`] of its
//! entries: the cost per change stays bounded (about
//! `1 / REWRITE_FRACTION` entries serialised per change, whatever the size of the view),
//! and a large view on disk lags the ledger by fewer than that fraction of its entries.
//! The manifest records through which sequence number each view is current. Views of at
//! most [`SMALL_VIEW`] entries (phase files, the index of a short run, a young backlog)
//! are rewritten at every checkpoint that changed them. Views of at most
//! [`PRETTY_MAX_ENTRIES`] entries are written pretty-printed, as before; larger ones as
//! compact JSON (one line, about half the bytes), which every JSON reader of the first
//! implementation's files reads alike.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use autopack_issues::{Ledger, ViewKey};
use serde::Serialize;

use super::manifest::{ViewStamp, hash64};
use crate::error::{LayoutError, Result};
use crate::paths::RunsRoot;
use crate::project::LedgerFiles;

/// Views of at most this many entries are rewritten at every checkpoint that changed them.
pub const SMALL_VIEW: usize = 256;

/// A larger view is rewritten once its pending changes reach this fraction of its entries
/// (`numerator / denominator`).
pub const REWRITE_FRACTION: (u64, u64) = (1, 2);

/// Views of more entries than this are written as compact JSON (one line), smaller ones
/// pretty-printed as before.
pub const PRETTY_MAX_ENTRIES: usize = 64;

#[cfg(test)]
thread_local! {
    /// A smaller [`SMALL_VIEW`] for tests, so that small ledgers exercise large views.
    pub(crate) static SMALL_VIEW_FOR_TESTS: std::cell::Cell<Option<usize>> =
        const { std::cell::Cell::new(None) };
}

fn small_view() -> usize {
    #[cfg(test)]
    if let Some(n) = SMALL_VIEW_FOR_TESTS.with(std::cell::Cell::get) {
        return n;
    }
    SMALL_VIEW
}

/// The file of a view: the project's backlog (`files`), or a run's file under `root`.
pub(crate) fn view_path(root: &RunsRoot, files: &LedgerFiles, view: &ViewKey) -> PathBuf {
    match view {
        ViewKey::Backlog => files.backlog.clone(),
        ViewKey::RunIndex { run_id } => root.run_issue_index(run_id),
        ViewKey::PhaseFile {
            run_id,
            phase_index,
            phase_id,
        } => root.phase_issues(run_id, *phase_index, phase_id),
    }
}

/// `path` relative to the layout root, as the manifest names it.
pub(crate) fn rel(root: &RunsRoot, path: &Path) -> String {
    path.strip_prefix(root.dir())
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

fn json_bytes<T: Serialize>(value: &T, pretty: bool, path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let written = if pretty {
        serde_json::to_writer_pretty(&mut bytes, value)
    } else {
        serde_json::to_writer(&mut bytes, value)
    };
    written.map_err(|e| LayoutError::Serialize {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The text of a view of `ledger` (`None` for a phase the ledger holds nothing of).
pub(crate) fn view_text(ledger: &Ledger, view: &ViewKey, path: &Path) -> Result<Option<Vec<u8>>> {
    let pretty = ledger.view_len(view) <= PRETTY_MAX_ENTRIES;
    match view {
        ViewKey::Backlog => json_bytes(&ledger.backlog(), pretty, path).map(Some),
        ViewKey::RunIndex { run_id } => {
            json_bytes(&ledger.run_issue_index(run_id), pretty, path).map(Some)
        }
        ViewKey::PhaseFile {
            run_id, phase_id, ..
        } => match ledger.phase_issue_file(run_id, phase_id) {
            Some(file) => json_bytes(&file, pretty, path).map(Some),
            None => Ok(None),
        },
    }
}

/// What this process knows of one view file.
#[derive(Debug, Clone)]
pub(crate) struct ViewState {
    /// The view, when the ledger can regenerate it (a view the manifest names but the
    /// ledger does not hold, e.g. of a forgotten run, has none and is left alone).
    pub(crate) key: Option<ViewKey>,
    /// What the manifest records of the file on disk, if it was written.
    pub(crate) stamp: Option<ViewStamp>,
    /// Changes since the file was written.
    pub(crate) pending: u64,
    /// Rewrite at the next checkpoint whatever the policy (found damaged, say).
    pub(crate) force: bool,
}

/// Every view file of a ledger, by path relative to the root.
#[derive(Debug, Clone, Default)]
pub(crate) struct ViewTable {
    pub(crate) views: BTreeMap<String, ViewState>,
}

impl ViewTable {
    /// The state of `view`, created (unwritten) when new.
    pub(crate) fn entry(
        &mut self,
        root: &RunsRoot,
        files: &LedgerFiles,
        view: ViewKey,
    ) -> &mut ViewState {
        let rel = rel(root, &view_path(root, files, &view));
        let state = self.views.entry(rel).or_insert_with(|| ViewState {
            key: None,
            stamp: None,
            pending: 0,
            force: false,
        });
        if state.key.is_none() {
            state.key = Some(view);
        }
        state
    }

    /// Adds the ledger's change counts to the pending changes of each view.
    pub(crate) fn note_changes(
        &mut self,
        root: &RunsRoot,
        files: &LedgerFiles,
        changes: Vec<(ViewKey, u64)>,
    ) {
        for (view, n) in changes {
            let state = self.entry(root, files, view);
            state.pending = state.pending.saturating_add(n);
        }
    }

    /// Whether a view is to be rewritten at this checkpoint (`all`: every changed view).
    pub(crate) fn due(state: &ViewState, len: usize, all: bool) -> bool {
        let small = small_view();
        if state.force || (state.stamp.is_none() && state.key.is_some()) {
            return true;
        }
        if state.pending == 0 {
            return false;
        }
        let (num, den) = REWRITE_FRACTION;
        all || len <= small || state.pending.saturating_mul(den) >= (len as u64) * num
    }

    /// The stamps of every written view, for the manifest.
    pub(crate) fn stamps(&self) -> BTreeMap<String, ViewStamp> {
        self.views
            .iter()
            .filter_map(|(rel, s)| s.stamp.clone().map(|stamp| (rel.clone(), stamp)))
            .collect()
    }

    /// Views whose file on disk lags the ledger, with their pending changes.
    pub(crate) fn lagging(&self) -> Vec<(String, u64)> {
        self.views
            .iter()
            .filter(|(_, s)| s.pending > 0 || s.force)
            .map(|(rel, s)| (rel.clone(), s.pending))
            .collect()
    }
}

/// The stamp of `bytes` written through `through`.
pub(crate) fn stamp(bytes: &[u8], through: u64) -> ViewStamp {
    ViewStamp {
        through,
        len: bytes.len() as u64,
        hash: hash64(bytes),
    }
}

/// Writes `views` of `ledger` to their files under `root` (the project's backlog at
/// `files`), each atomically and in full, and returns how many were written (a phase view
/// the ledger holds nothing of is skipped). For ledgers kept elsewhere (a database) whose
/// views are materialised on the host running a run; the filesystem ledger keeps its own
/// views with a manifest ([`FsIssueLedger`](super::FsIssueLedger)).
///
/// # Errors
/// The file that could not be written.
pub fn write_views<'a>(
    root: &RunsRoot,
    files: &LedgerFiles,
    ledger: &Ledger,
    views: impl IntoIterator<Item = &'a ViewKey>,
) -> Result<usize> {
    let mut written = 0;
    for view in views {
        let path = view_path(root, files, view);
        if let Some(bytes) = view_text(ledger, view, &path)? {
            crate::fsio::write_atomic(&path, &bytes)?;
            written += 1;
        }
    }
    Ok(written)
}
