//! The filesystem [`IssueStore`] ([`FsIssueStore`]) and a ledger that several processes can
//! share ([`FsIssueLedger`]).
//!
//! # On disk
//! - `.autonomous_runs/project_issue_journal.jsonl`: every [`LedgerEvent`] as a
//!   [`JournalEntry`] line (`{"seq":N,"event":{...}}`), appended in O(1) under the
//!   journal's lock; torn tails are cut as for every journal of this crate
//!   ([`crate::journal`]). **The journal is the truth**: it is kept whole, and the ledger
//!   is rebuilt from it (after the base checkpoint) whenever it is opened.
//! - `project_issue_base.json` (optional): the state the journal applies to, as a compact
//!   [`Checkpoint`] (`through` and a snapshot). Written when a first-implementation
//!   backlog is imported (through 0), when a store written by an earlier version is
//!   migrated, and by [`IssueStore::save_checkpoint`], whose snapshot is the caller's and
//!   need not follow from the journal. Without it the journal applies to an empty ledger
//!   with the default thresholds.
//! - The playbook views — the project backlog (`project_issue_backlog.json`), each run's
//!   `run_issue_index.json` and each phase's `issues/phase_{idx:02}_{phase_id}_issues.json`
//!   — are *materialisations* for people and other tools, in the first implementation's
//!   shape. They are written at checkpoints only, each atomically, and only those that
//!   changed; a large view only once enough of it changed ([`views`]: the cost of a
//!   checkpoint is what changed, not what exists). A view on disk may therefore lag the
//!   ledger, by fewer than half of its entries and only when it holds more than
//!   [`SMALL_VIEW`] entries; [`FsIssueLedger::checkpoint_all`] brings every view up to
//!   date (a host calls it at the end of a run).
//! - `project_issue_checkpoint.json`, the manifest (renamed into place after the views it
//!   names): the last sequence number a checkpoint accounted for and, for every view file,
//!   the sequence number it is current through, its length and a 64-bit hash of its
//!   content. Hashes are computed over what is written, never over the files that stay.
//!   A checkpoint fsyncs the journal and the new files' temporaries together (one fsync
//!   latency), then renames them; directories are not fsynced, because a power loss that
//!   undoes some renames leaves whole old files that disagree with the manifest, and
//!   those are rebuilt from the journal on the next open
//!   ([`fsio::write_batch_renamed`]).
//!
//! # Opening, crashes and repair
//! [`FsIssueLedger::open`] reads the base and the journal and replays it, then checks
//! every view the manifest names (length, then hash). A view that is missing, truncated,
//! corrupt or not the content the manifest recorded (a crash between the rename of a view
//! and that of the manifest) is rebuilt from the ledger at once, and reported
//! ([`FsIssueLedger::take_repairs`], and a `tracing` warning naming the file); so is
//! every view when the manifest itself is unreadable. Whatever write a crash interrupts,
//! the reopened ledger is the one the journal holds, and its views are either current or
//! rebuilt. A journal line other than the last that is not a valid entry is a
//! [`LayoutError::CorruptJournal`] naming the file and line; [`repair()`] can cut the
//! journal there (backing up the rest) and rebuild every view.
//!
//! With no manifest, no base and an empty journal, a backlog found at the canonical
//! position or at the first implementation's (one level above `.autonomous_runs/`) is
//! imported: it becomes the base (through 0) and is written canonically.
//!
//! # Several processes
//! Sequence numbers are assigned under the journal lock, so appends from several processes
//! interleave safely. A [`JournaledLedger`](autopack_issues::JournaledLedger) does not see
//! the other processes' events, so a checkpoint that would cover an event this store
//! instance never saw is refused ([`LayoutError::CheckpointConflict`]) rather than losing
//! it. [`FsIssueLedger`] catches up with the other processes' events under the lock before
//! each change and each checkpoint, so several processes can record into one project
//! ledger and lose nothing; a checkpoint starts from the manifest on disk, so views
//! another process wrote are not written again.
//!
//! # Durability
//! With [`FsyncPolicy::EveryEntry`] an event is durable when `append` returns (the
//! `IssueStore` contract). With [`FsyncPolicy::AtCheckpoints`] events are made durable at
//! the next checkpoint (or [`FsIssueStore::sync`]); a crash loses at most the events since,
//! and never leaves a torn or merged line.

mod ledger;
mod manifest;
mod repair;
#[cfg(test)]
mod tests;
pub mod views;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use autopack_core::journal::TornTail;
use autopack_core::journal::chain::{ChainCheck, Digest, Genesis, Links};
use autopack_issues::{
    AgingThresholds, Checkpoint, IssueStore, JournalEntry, Ledger, LedgerEvent, LedgerSnapshot,
    PhaseIssueFile, ProjectBacklog, RunIssueIndex, RunSnapshot, StoredIssues, ViewKey,
};
use serde::Deserialize;

use crate::error::{LayoutError, Result};
use crate::fsio::{self, FileLock};
use crate::journal::{FsyncPolicy, JournalFile, read_journal};
use crate::paths::RunsRoot;
use crate::project::LedgerFiles;

pub use ledger::{FsIssueLedger, IssueLedgerError};
use manifest::{Base, Manifest, ManifestRead, ManifestV1, fnv64};
pub use repair::{JournalCut, RepairNote, RepairOptions, RepairReport, repair, repair_files};
pub use views::{SMALL_VIEW, write_views};

/// File name of the issue journal.
pub const ISSUE_JOURNAL_FILE: &str = "project_issue_journal.jsonl";
/// File name of the issue checkpoint manifest.
pub const ISSUE_CHECKPOINT_FILE: &str = "project_issue_checkpoint.json";
/// File name of the base checkpoint the journal applies to.
pub const ISSUE_BASE_FILE: &str = "project_issue_base.json";

#[derive(Debug, Default)]
struct State {
    /// The journal length this instance has accounted for (own appends, loads, catch-ups).
    known_len: u64,
    /// The last sequence number in the journal at `known_len`.
    last_seq: u64,
    /// Whether `known_len`/`last_seq` have been initialised from the file.
    initialised: bool,
    /// The hash of the journal's last line, and the journal length it is the last line
    /// at (stale once the file grew by another's append: then the line is read again).
    last_hash: Option<(u64, Digest)>,
    /// The smallest sequence number appended by another process that this instance has
    /// not seen.
    foreign_min_seq: Option<u64>,
    /// The `through` of the base this instance loaded or wrote.
    base_through: u64,
    /// The manifest this instance last wrote or read.
    committed: Option<Manifest>,
    torn: Option<TornTail>,
}

/// Receives entries other processes appended.
type CatchUp<'a> = dyn FnMut(&JournalEntry) -> Result<()> + 'a;

/// The filesystem [`IssueStore`]; see the [module docs](self).
#[derive(Debug)]
pub struct FsIssueStore {
    root: RunsRoot,
    policy: FsyncPolicy,
    journal: Option<JournalFile>,
    /// The project's ledger files.
    files: LedgerFiles,
    /// `files.journal`, kept apart for the hot append path.
    journal_path: PathBuf,
    /// Reused for serialising events.
    event_buf: Vec<u8>,
    state: Mutex<State>,
}

#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

/// What a store holds when read under the journal lock.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) manifest: ManifestRead,
    pub(crate) base: Option<Base>,
    /// Entries after the base, in order.
    pub(crate) journal: Vec<JournalEntry>,
    /// The journal's length and last sequence number.
    pub(crate) journal_len: u64,
    pub(crate) last_seq: u64,
}

fn compact_json<T: serde::Serialize>(value: &T, path: &Path) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(value).map_err(|e| LayoutError::Serialize {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn pretty_json<T: serde::Serialize>(value: &T, path: &Path) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| LayoutError::Serialize {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

impl FsIssueStore {
    /// A store of the unsuffixed ledger files under `root` (SPEC §10's names) with the
    /// given fsync policy.
    pub fn new(root: RunsRoot, policy: FsyncPolicy) -> FsIssueStore {
        let files = LedgerFiles::unsuffixed(&root, None);
        FsIssueStore::with_files(root, files, policy)
    }

    /// A store of one project's ledger files ([`crate::project::ledger_files`]).
    pub fn with_files(root: RunsRoot, files: LedgerFiles, policy: FsyncPolicy) -> FsIssueStore {
        let journal_path = files.journal.clone();
        FsIssueStore {
            files,
            root,
            policy,
            journal: None,
            journal_path,
            event_buf: Vec::with_capacity(512),
            state: Mutex::new(State::default()),
        }
    }

    /// The layout it writes.
    pub fn root(&self) -> &RunsRoot {
        &self.root
    }

    /// The ledger's files.
    pub fn files(&self) -> &LedgerFiles {
        &self.files
    }

    /// The journal (`.autonomous_runs/project_issue_journal.jsonl` for the unsuffixed
    /// files).
    pub fn journal_path(&self) -> PathBuf {
        self.journal_path.clone()
    }

    /// The checkpoint manifest (`project_issue_checkpoint.json`).
    pub fn manifest_path(&self) -> PathBuf {
        self.files.manifest.clone()
    }

    /// The base checkpoint (`project_issue_base.json`).
    pub fn base_path(&self) -> PathBuf {
        self.files.base.clone()
    }

    /// A torn journal tail cut since the last call, if any.
    pub fn take_torn_tail(&self) -> Option<TornTail> {
        self.state().torn.take()
    }

    /// Makes every appended event durable (a checkpoint does this too).
    ///
    /// # Errors
    /// [`LayoutError::Io`].
    pub fn sync(&mut self) -> Result<()> {
        match &mut self.journal {
            Some(j) => j.sync(),
            None => Ok(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn abs(&self, rel: &str) -> PathBuf {
        self.root.dir().join(rel)
    }

    /// Runs `f` with the open journal (opened on first use) and the rest of the store.
    fn with_journal<R>(
        &mut self,
        f: impl FnOnce(&mut JournalFile, &FsIssueStore) -> Result<R>,
    ) -> Result<R> {
        let mut journal = match self.journal.take() {
            Some(j) => j,
            None => JournalFile::open(&self.journal_path, self.policy)?,
        };
        let result = f(&mut journal, self);
        self.journal = Some(journal);
        result
    }

    fn parse_entry(path: &Path, line_no: usize, line: &str) -> Result<JournalEntry> {
        autopack_core::json::from_str(line, format!("{} line {line_no}", path.display())).map_err(
            |e| LayoutError::CorruptJournal {
                path: path.to_owned(),
                line: line_no,
                column: e.column,
                message: e.to_string(),
            },
        )
    }

    /// Appends `event` under the lock; `catch_up` receives entries other processes
    /// appended since this instance last looked (when `None`, they are remembered as
    /// foreign and block checkpoints that would cover them).
    fn append_inner(
        &mut self,
        event: &LedgerEvent,
        mut catch_up: Option<&mut CatchUp<'_>>,
    ) -> Result<u64> {
        let mut event_json = std::mem::take(&mut self.event_buf);
        event_json.clear();
        if let Err(e) = serde_json::to_writer(&mut event_json, event) {
            self.event_buf = event_json;
            return Err(LayoutError::Serialize {
                path: self.journal_path(),
                message: e.to_string(),
            });
        }
        let result = self.with_journal(|journal, store| {
            let journal_path = &store.journal_path;
            journal.locked(|j| {
                let mut st = store.state();
                // When the file still ends where this instance's last look left it, nobody
                // appended since: no tail to check, nothing to catch up with.
                let len = j.repair_tail_known(st.initialised.then_some(st.known_len))?;
                if let Some(torn) = j.pending_torn.take() {
                    st.torn = Some(torn);
                }
                if !st.initialised || len != st.known_len {
                    if st.initialised && len > st.known_len {
                        // Entries from another process since we last looked.
                        for (i, line) in j.lines_between(st.known_len, len)?.iter().enumerate() {
                            let entry = Self::parse_entry(journal_path, i + 1, line)?;
                            match catch_up.as_mut() {
                                Some(f) => f(&entry)?,
                                None => {
                                    st.foreign_min_seq = Some(
                                        st.foreign_min_seq.map_or(entry.seq, |m| m.min(entry.seq)),
                                    );
                                }
                            }
                        }
                    }
                    st.last_seq = match j.last_line(len)? {
                        Some(line) => {
                            autopack_core::json::from_str::<SeqOnly>(
                                &line,
                                journal_path.display().to_string(),
                            )?
                            .seq
                        }
                        None => 0,
                    };
                    if !st.initialised {
                        // First look: everything before us was there when we loaded (or the
                        // caller did not load); a checkpoint covering it is the caller's call.
                        st.initialised = true;
                    }
                }
                let floor = st
                    .committed
                    .as_ref()
                    .map_or(0, |c| c.through)
                    .max(st.base_through);
                let seq = st.last_seq.max(floor) + 1;
                let prev = match st.last_hash {
                    Some((at, hash)) if at == len => hash,
                    _ => match j.last_line(len)? {
                        Some(line) => Digest::of(line.as_bytes()),
                        None => Digest::ZERO,
                    },
                };
                let prefix = format!("{{\"seq\":{seq},\"prev\":\"{prev}\",\"event\":");
                let parts: [&[u8]; 3] = [prefix.as_bytes(), &event_json, b"}"];
                let written = j.write_line_parts(&parts)?;
                st.last_seq = seq;
                // The lock is held and the file is opened for appending: it now ends here.
                st.known_len = len + written;
                st.last_hash = Some((st.known_len, Digest::of_parts(&parts)));
                Ok(seq)
            })
        });
        self.event_buf = event_json;
        result
    }

    pub(crate) fn read_manifest(&self) -> Result<ManifestRead> {
        let path = self.manifest_path();
        Ok(match fsio::read_text(&path)? {
            None => ManifestRead::Missing,
            Some(text) => ManifestRead::parse(&text, &path.display().to_string()),
        })
    }

    fn read_base(&self) -> Result<Option<Base>> {
        fsio::read_json(&self.base_path())
    }

    fn write_base(&self, base: &Base) -> Result<()> {
        let path = self.base_path();
        fsio::write_atomic(&path, &compact_json(base, &path)?)
    }

    /// Reads the views a first-format manifest names; `None` when one no longer has the
    /// recorded content (that checkpoint was half written: the journal is replayed whole).
    fn read_views_v1(&self, manifest: &ManifestV1) -> Result<Option<LedgerSnapshot>> {
        fn view<T: serde::de::DeserializeOwned>(
            store: &FsIssueStore,
            file: &manifest::FileRefV1,
        ) -> Result<Option<T>> {
            let path = store.abs(&file.path);
            let Some(text) = fsio::read_text(&path)? else {
                return Ok(None);
            };
            if fnv64(text.as_bytes()) != file.fnv64 {
                return Ok(None);
            }
            Ok(Some(autopack_core::json::from_str(
                &text,
                path.display().to_string(),
            )?))
        }
        let Some(backlog) = view::<ProjectBacklog>(self, &manifest.backlog)? else {
            return Ok(None);
        };
        let mut runs = Vec::with_capacity(manifest.runs.len());
        for run in &manifest.runs {
            let Some(index) = view::<RunIssueIndex>(self, &run.index)? else {
                return Ok(None);
            };
            let mut phases = Vec::with_capacity(run.phases.len());
            for phase in &run.phases {
                let Some(file) = view::<PhaseIssueFile>(self, phase)? else {
                    return Ok(None);
                };
                phases.push(file);
            }
            runs.push(RunSnapshot { index, phases });
        }
        Ok(Some(LedgerSnapshot {
            aging_thresholds: manifest.aging_thresholds,
            backlog,
            runs,
        }))
    }

    /// Imports a backlog of this or the first implementation when the store is new: it
    /// becomes the base (through 0) and is written canonically.
    fn import_backlog(&self) -> Result<Option<Base>> {
        let Some((path, backlog)) =
            fsio::read_json_first::<ProjectBacklog>(&self.files.import_from)?
        else {
            return Ok(None);
        };
        // Normalised by the ledger (imported files lack some fields), then written canonically.
        let ledger = Ledger::from_backlog(&backlog, AgingThresholds::default()).map_err(|e| {
            LayoutError::Invalid {
                path,
                message: e.to_string(),
            }
        })?;
        let base = Checkpoint {
            through: 0,
            snapshot: ledger.snapshot(),
        };
        let mut manifest = Manifest::empty(ledger.thresholds());
        let backlog_path = self.files.backlog.clone();
        let text = views::view_text(&ledger, &ViewKey::Backlog, &backlog_path)?.unwrap_or_default();
        manifest.views.insert(
            views::rel(&self.root, &backlog_path),
            views::stamp(&text, 0),
        );
        let base_path = self.base_path();
        let manifest_path = self.manifest_path();
        fsio::write_batch_atomic(
            &[
                (base_path.clone(), compact_json(&base, &base_path)?),
                (backlog_path, text),
            ],
            (&manifest_path, &pretty_json(&manifest, &manifest_path)?),
            None,
        )?;
        self.state().committed = Some(manifest);
        Ok(Some(base))
    }

    /// Reads the manifest, the base (importing or migrating one when due) and the journal
    /// after the base. The caller holds the journal lock.
    pub(crate) fn load_all(&self) -> Result<Loaded> {
        let journal_path = self.journal_path();
        let mut manifest = self.read_manifest()?;
        let contents = read_journal(&journal_path, None)?;
        if let Some(torn) = contents.torn_tail.clone() {
            self.state().torn = Some(torn);
        }
        let mut base = self.read_base()?;
        if base.is_none() {
            match &manifest {
                ManifestRead::V1(v1) => {
                    // A store of the first manifest format: its views (when whole) are the
                    // state through its checkpoint; they become the base.
                    if let Some(snapshot) = self.read_views_v1(v1)? {
                        let migrated = Checkpoint {
                            through: v1.through,
                            snapshot,
                        };
                        self.write_base(&migrated)?;
                        base = Some(migrated);
                    }
                }
                ManifestRead::Missing if contents.is_empty() => {
                    base = self.import_backlog()?;
                    manifest = self.read_manifest()?;
                }
                _ => {}
            }
        }
        let through = base.as_ref().map_or(0, |b| b.through);
        let mut journal = Vec::new();
        let mut len = 0u64;
        let mut last_seq = 0u64;
        let mut chain = ChainCheck::new(Genesis::Zero);
        for (i, line) in contents.entries().enumerate() {
            len += line.len() as u64 + 1;
            let entry = Self::parse_entry(&journal_path, i + 1, line)?;
            let links = Links {
                prev: entry.prev,
                binds: None,
            };
            chain
                .check(line, &links)
                .map_err(|e| LayoutError::CorruptJournal {
                    path: journal_path.clone(),
                    line: i + 1,
                    column: 0,
                    message: format!("the hash chain is broken ({e})"),
                })?;
            last_seq = entry.seq;
            if entry.seq > through {
                journal.push(entry);
            }
        }
        let mut st = self.state();
        st.known_len = len;
        st.last_seq = last_seq;
        st.last_hash = chain.head().map(|hash| (len, hash));
        st.initialised = true;
        st.foreign_min_seq = None;
        st.base_through = through;
        st.committed = manifest.current().cloned();
        drop(st);
        Ok(Loaded {
            manifest,
            base,
            journal,
            journal_len: len,
            last_seq,
        })
    }

    /// Learns the journal's end when this instance never appended nor loaded (the caller
    /// holds the lock).
    fn initialise_from_file(&self) -> Result<()> {
        if self.state().initialised {
            return Ok(());
        }
        let contents = read_journal(&self.journal_path(), None)?;
        let last_seq = match contents.last() {
            Some(line) => Self::parse_entry(&self.journal_path(), contents.len(), line)?.seq,
            None => 0,
        };
        let mut st = self.state();
        st.last_seq = last_seq;
        st.known_len = contents.text().len() as u64;
        st.initialised = true;
        Ok(())
    }

    /// Writes `checkpoint` as the base, every view of its snapshot that differs from the
    /// file the manifest names, and the manifest (the caller holds the lock).
    fn save_snapshot(&self, checkpoint: &Checkpoint, journal_len: u64) -> Result<()> {
        let ledger =
            Ledger::from_snapshot(&checkpoint.snapshot).map_err(|e| LayoutError::Invalid {
                path: self.base_path(),
                message: e.to_string(),
            })?;
        let previous = self.read_manifest()?;
        let previous = previous.current();
        let mut manifest = Manifest::empty(checkpoint.snapshot.aging_thresholds);
        manifest.through = checkpoint.through;
        manifest.journal_offset = journal_len;
        let base_path = self.base_path();
        let mut files = vec![(base_path.clone(), compact_json(checkpoint, &base_path)?)];
        for view in ledger.views() {
            let path = views::view_path(&self.root, &self.files, &view);
            let Some(text) = views::view_text(&ledger, &view, &path)? else {
                continue;
            };
            let rel = views::rel(&self.root, &path);
            let stamp = views::stamp(&text, checkpoint.through);
            let same = previous
                .and_then(|m| m.views.get(&rel))
                .is_some_and(|old| old.len == stamp.len && old.hash == stamp.hash);
            if !same {
                files.push((path, text));
            }
            manifest.views.insert(rel, stamp);
        }
        let manifest_path = self.manifest_path();
        fsio::write_batch_atomic(
            &files,
            (&manifest_path, &pretty_json(&manifest, &manifest_path)?),
            None,
        )?;
        let mut st = self.state();
        st.committed = Some(manifest);
        st.base_through = checkpoint.through;
        Ok(())
    }
}

impl IssueStore for FsIssueStore {
    type Error = LayoutError;

    fn append(&mut self, event: &LedgerEvent) -> Result<u64> {
        self.append_inner(event, None)
    }

    fn load(&self) -> Result<StoredIssues> {
        let _lock = FileLock::acquire(&self.journal_path())?;
        let loaded = self.load_all()?;
        Ok(StoredIssues {
            checkpoint: loaded.base,
            journal: loaded.journal,
        })
    }

    fn save_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        // Make the covered events durable before the checkpoint that names them.
        self.sync()?;
        let _lock = FileLock::acquire(&self.journal_path())?;
        let len = match std::fs::metadata(self.journal_path()) {
            Ok(m) => m.len(),
            Err(_) => 0,
        };
        self.initialise_from_file()?;
        // Another instance may have committed since this one looked.
        let on_disk = self.read_manifest()?.current().map_or(0, |m| m.through);
        {
            let st = self.state();
            let stored = on_disk.max(st.base_through);
            if checkpoint.through < stored {
                return Err(LayoutError::StaleCheckpoint {
                    through: checkpoint.through,
                    stored,
                });
            }
            if checkpoint.through > st.last_seq {
                return Err(LayoutError::CheckpointAhead {
                    through: checkpoint.through,
                    last: st.last_seq,
                });
            }
            if let Some(foreign) = st.foreign_min_seq.filter(|&s| s <= checkpoint.through) {
                return Err(LayoutError::CheckpointConflict {
                    path: self.journal_path(),
                    seq: foreign,
                });
            }
        }
        self.save_snapshot(checkpoint, len)
    }
}

/// Makes `file` durable together with other files (used when no journal handle is open).
pub(crate) fn open_for_sync(path: &Path) -> Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LayoutError::io("open", path, e)),
    }
}
