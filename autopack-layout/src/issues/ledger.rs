//! [`FsIssueLedger`]: a project ledger on disk that several processes can record into,
//! with checkpoints that cost what changed.

use std::fs::File;
use std::path::{Path, PathBuf};

use autopack_core::ids::IssueKey;
use autopack_issues::{
    AgingThresholds, IssueObservation, JournalEntry, Ledger, LedgerError, LedgerEvent,
    RecordOutcome, ResolveOutcome, ViewKey,
};
use chrono::{DateTime, Utc};

use super::manifest::{Manifest, ManifestRead, ViewStamp};
use super::repair::RepairNote;
use super::views::{self, ViewState, ViewTable};
use super::{FsIssueStore, Loaded, open_for_sync, pretty_json};
use crate::error::{LayoutError, Result};
use crate::fsio::{self, FileLock};
use crate::journal::FsyncPolicy;
use crate::paths::RunsRoot;
use crate::project::LedgerFiles;

/// A project issue ledger kept in an [`FsIssueStore`], safe to share between processes:
/// before every change and every checkpoint it applies, under the journal lock, the events
/// other processes appended since it last looked. See the [module docs](super) for what
/// is on disk and how a checkpoint decides what to rewrite.
///
/// ```
/// use autopack_issues::{AgingThresholds, testing};
/// use autopack_layout::issues::FsIssueLedger;
/// use autopack_layout::{FsyncPolicy, RunsRoot};
///
/// let dir = tempfile::tempdir()?;
/// let root = RunsRoot::new(dir.path());
/// let mut ledger = FsIssueLedger::open(root.clone(), AgingThresholds::default(), FsyncPolicy::AtCheckpoints)?;
/// ledger.record(&testing::observation("run-1", "t1", 0, "k1"), testing::at(0))?;
/// ledger.checkpoint()?;
/// assert!(root.backlog().exists());
/// assert!(ledger.take_repairs().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FsIssueLedger {
    ledger: Ledger,
    store: FsIssueStore,
    views: ViewTable,
    repairs: Vec<RepairNote>,
    /// Length and modification time of the manifest as this process last wrote it.
    manifest_seen: Option<FileIdentity>,
}

/// An error of [`FsIssueLedger`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueLedgerError {
    /// The ledger refused the change (nothing was journaled), or a journaled event did not
    /// replay.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A journal entry does not apply to the ledger before it.
    #[error("{}: entry {seq} does not replay: {error}", path.display())]
    Replay {
        /// The journal.
        path: PathBuf,
        /// The entry's sequence number.
        seq: u64,
        /// Why it does not apply.
        #[source]
        error: Box<LedgerError>,
    },
    /// The base checkpoint could not be loaded into a ledger.
    #[error("issue checkpoint: {0}")]
    Load(#[from] autopack_issues::LoadError),
    /// The filesystem failed, or a file is corrupt beyond what the journal can rebuild.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// Which views a commit writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// Those the rewrite policy says are due ([`ViewTable::due`]).
    Policy,
    /// Every view that lags.
    All,
    /// Only views found damaged.
    Forced,
}

impl FsIssueLedger {
    /// Opens the project ledger under `root` and makes it use `thresholds` (the run's, from
    /// its frozen strategy): when they differ from the ledger's, or a key's status does not
    /// follow from them, a [`LedgerEvent::SetThresholds`] is journaled and every status
    /// re-evaluated, so that the backlog and the strategy agree. Damaged views are rebuilt
    /// from the journal ([`FsIssueLedger::take_repairs`]).
    ///
    /// # Errors
    /// [`IssueLedgerError`] when the store cannot be read, the journal is corrupt before
    /// its last line, or its events do not replay.
    pub fn open(
        root: RunsRoot,
        thresholds: AgingThresholds,
        policy: FsyncPolicy,
    ) -> Result<FsIssueLedger, IssueLedgerError> {
        let mut ledger = FsIssueLedger::open_keeping_thresholds(root, policy)?;
        ledger.set_thresholds(thresholds)?;
        Ok(ledger)
    }

    /// Opens the project ledger under `root` with the thresholds it holds (the default for
    /// a new one): for readers such as reports, which must not change them.
    ///
    /// # Errors
    /// As [`FsIssueLedger::open`].
    pub fn open_keeping_thresholds(
        root: RunsRoot,
        policy: FsyncPolicy,
    ) -> Result<FsIssueLedger, IssueLedgerError> {
        let files = LedgerFiles::unsuffixed(&root, None);
        FsIssueLedger::open_with(root, files, policy, false)
    }

    /// Opens one project's ledger (its files from [`crate::project::ledger_files`]) and
    /// makes it use `thresholds`, as [`FsIssueLedger::open`] (`None`: keeps the ledger's,
    /// for readers such as reports). A ledger that did not name
    /// its project yet (the first implementation's backlog) is claimed: its backlog is
    /// rewritten with `project_id`.
    ///
    /// # Errors
    /// As [`FsIssueLedger::open`]; a backlog of another project is
    /// [`LayoutError::Invalid`].
    pub fn open_project(
        root: RunsRoot,
        files: LedgerFiles,
        thresholds: Option<AgingThresholds>,
        policy: FsyncPolicy,
    ) -> Result<FsIssueLedger, IssueLedgerError> {
        let mut ledger = FsIssueLedger::open_with(root, files, policy, false)?;
        if let Some(thresholds) = thresholds {
            ledger.set_thresholds(thresholds)?;
        }
        Ok(ledger)
    }

    /// Opens the ledger; `rebuild_all` rewrites every view from the journal at once.
    pub(crate) fn open_with(
        root: RunsRoot,
        files: LedgerFiles,
        policy: FsyncPolicy,
        rebuild_all: bool,
    ) -> Result<FsIssueLedger, IssueLedgerError> {
        let store = FsIssueStore::with_files(root, files, policy);
        let _lock = FileLock::acquire(&store.journal_path())?;
        let loaded = store.load_all()?;
        let mut this = FsIssueLedger {
            ledger: match &loaded.base {
                Some(base) => Ledger::from_snapshot(&base.snapshot)?,
                None => Ledger::new(AgingThresholds::default()),
            },
            store,
            views: ViewTable::default(),
            repairs: Vec::new(),
            manifest_seen: None,
        };
        let rebuild_all = rebuild_all || this.note_manifest(&loaded.manifest);
        if let Some(manifest) = loaded.manifest.current() {
            for (rel, stamp) in &manifest.views {
                this.views.views.insert(
                    rel.clone(),
                    ViewState {
                        key: None,
                        stamp: Some(stamp.clone()),
                        pending: 0,
                        force: false,
                    },
                );
            }
        }
        this.replay(&loaded)?;
        // Every view the ledger holds gets its key (views the manifest does not name are
        // then written at the next checkpoint).
        for view in this.ledger.views() {
            this.views
                .entry(this.store.root(), this.store.files(), view);
        }
        this.verify_views(loaded.last_seq)?;
        if let Some(project) = this.store.files().project.clone() {
            match this.ledger.project() {
                Some(owner) if owner != &project => {
                    return Err(LayoutError::Invalid {
                        path: this.store.files().backlog.clone(),
                        message: format!(
                            "project_id: the ledger belongs to project {owner}, not {project}"
                        ),
                    }
                    .into());
                }
                Some(_) => {}
                None => {
                    // Claimed: the backlog names its project from now on.
                    this.ledger.set_project(project);
                    let root = this.store.root().clone();
                    let files = this.store.files().clone();
                    this.views.entry(&root, &files, ViewKey::Backlog).force = true;
                }
            }
        }
        if rebuild_all {
            for state in this.views.views.values_mut() {
                state.force = state.key.is_some();
            }
        }
        if this.views.views.values().any(|s| s.force) {
            let journal = open_for_sync(&this.store.journal_path())?;
            let also = journal.as_ref().map(|f| (f, this.store.journal_path()));
            this.commit(
                loaded.last_seq,
                loaded.journal_len,
                also.as_ref().map(|(f, p)| (*f, p.as_path())),
                Due::Forced,
            )?;
        }
        Ok(this)
    }

    /// Notes an unreadable or old manifest; returns whether every view must be rebuilt.
    fn note_manifest(&mut self, manifest: &ManifestRead) -> bool {
        match manifest {
            ManifestRead::Current(_) | ManifestRead::Missing => false,
            ManifestRead::V1(_) => true,
            ManifestRead::Corrupt(message) => {
                self.note(
                    self.store.manifest_path(),
                    format!("{message}; every view is rebuilt from the journal"),
                );
                true
            }
        }
    }

    fn note(&mut self, path: PathBuf, problem: String) {
        let note = RepairNote { path, problem };
        tracing::warn!(file = %note.path.display(), "{}", note.problem);
        self.repairs.push(note);
    }

    /// Replays the journal after the base, attributing each change to the views whose
    /// files do not hold it yet (a view is current through the sequence number its stamp
    /// records).
    fn replay(&mut self, loaded: &Loaded) -> Result<(), IssueLedgerError> {
        let mut bounds: Vec<u64> = self
            .views
            .views
            .values()
            .filter_map(|s| s.stamp.as_ref().map(|st| st.through))
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        self.ledger.track_changes(true);
        let mut prev = 0u64;
        let mut next = 0usize;
        let journal_path = self.store.journal_path();
        for entry in &loaded.journal {
            while next < bounds.len() && bounds[next] < entry.seq {
                self.attribute(prev);
                prev = bounds[next];
                next += 1;
            }
            self.ledger
                .apply_event(&entry.event)
                .map_err(|error| IssueLedgerError::Replay {
                    path: journal_path.clone(),
                    seq: entry.seq,
                    error: Box::new(error),
                })?;
        }
        self.attribute(prev);
        Ok(())
    }

    /// Counts the changes since the last call (entries after `after`) against each view
    /// current through `after` or earlier.
    fn attribute(&mut self, after: u64) {
        let changes = self.ledger.take_changes();
        let root = self.store.root().clone();
        for (view, n) in changes {
            let state = self.views.entry(&root, self.store.files(), view);
            if state.stamp.as_ref().is_none_or(|s| s.through <= after) {
                state.pending = state.pending.saturating_add(n);
            }
        }
    }

    /// Checks every view file the manifest names; a damaged one is noted and rewritten.
    fn verify_views(&mut self, last_seq: u64) -> Result<()> {
        let root = self.store.root().clone();
        let mut notes = Vec::new();
        for (rel, state) in &mut self.views.views {
            let Some(stamp) = &state.stamp else {
                continue;
            };
            let path = root.dir().join(rel);
            let problem = if stamp.through > last_seq {
                Some(format!(
                    "is current through entry {}, but the journal ends at {last_seq}",
                    stamp.through
                ))
            } else {
                check_file(&path, stamp)?
            };
            if let Some(problem) = problem {
                let action = if state.key.is_some() {
                    "rebuilt from the journal"
                } else {
                    "left as it is: the ledger no longer holds its run"
                };
                notes.push((path, format!("{problem}; {action}")));
                state.force = state.key.is_some();
                state.stamp = None;
            }
        }
        for (path, problem) in notes {
            self.note(path, problem);
        }
        Ok(())
    }

    /// The ledger as of this process's last change.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The store.
    pub fn store(&self) -> &FsIssueStore {
        &self.store
    }

    /// The views found damaged and rebuilt since the last call (each also logged as a
    /// `tracing` warning).
    pub fn take_repairs(&mut self) -> Vec<RepairNote> {
        std::mem::take(&mut self.repairs)
    }

    /// The view files that lag the ledger (as of the last checkpoint's accounting), with
    /// the number of changes each lacks; empty after [`FsIssueLedger::checkpoint_all`].
    pub fn lagging_views(&mut self) -> Vec<(PathBuf, u64)> {
        let root = self.store.root().clone();
        self.views
            .note_changes(&root, self.store.files(), self.ledger.take_changes());
        self.views
            .lagging()
            .into_iter()
            .map(|(rel, n)| (root.dir().join(rel), n))
            .collect()
    }

    fn journal(&mut self, event: &LedgerEvent) -> Result<u64, IssueLedgerError> {
        let ledger = &mut self.ledger;
        let mut replay_error = None;
        let journal_path = self.store.journal_path();
        let mut catch_up = |entry: &JournalEntry| -> Result<()> {
            if let Err(error) = ledger.apply_event(&entry.event) {
                replay_error.get_or_insert(IssueLedgerError::Replay {
                    path: journal_path.clone(),
                    seq: entry.seq,
                    error: Box::new(error),
                });
            }
            Ok(())
        };
        let seq = self.store.append_inner(event, Some(&mut catch_up))?;
        if let Some(e) = replay_error {
            return Err(e);
        }
        Ok(seq)
    }

    /// Records an observation: journaled (after catching up with other processes), then
    /// applied.
    ///
    /// # Errors
    /// [`IssueLedgerError::Ledger`] when the ledger refuses it (nothing is journaled);
    /// [`IssueLedgerError::Layout`] when the append fails (nothing is applied).
    pub fn record(
        &mut self,
        observation: &IssueObservation,
        now: DateTime<Utc>,
    ) -> Result<RecordOutcome, IssueLedgerError> {
        self.ledger.check(observation)?;
        let event = LedgerEvent::Record {
            at: now,
            observation: observation.clone(),
        };
        self.journal(&event)?;
        Ok(self.ledger.record(observation, now)?)
    }

    /// Resolves a key (journaled first).
    ///
    /// # Errors
    /// As [`FsIssueLedger::record`].
    pub fn resolve(
        &mut self,
        key: &IssueKey,
        now: DateTime<Utc>,
    ) -> Result<ResolveOutcome, IssueLedgerError> {
        if self.ledger.status(key).is_none() {
            return Err(LedgerError::UnknownIssueKey(key.clone()).into());
        }
        let event = LedgerEvent::Resolve {
            at: now,
            issue_key: key.clone(),
        };
        self.journal(&event)?;
        Ok(self.ledger.resolve(key, now)?)
    }

    /// Makes the ledger use `thresholds`, journaled first, and re-evaluates every status
    /// ([`Ledger::set_thresholds`]); returns the keys that now need cleanup. Nothing is
    /// journaled when nothing would change.
    ///
    /// # Errors
    /// [`IssueLedgerError::Layout`] when the append fails (nothing is applied).
    pub fn set_thresholds(
        &mut self,
        thresholds: AgingThresholds,
    ) -> Result<Vec<IssueKey>, IssueLedgerError> {
        if !self.ledger.would_set_thresholds_change(thresholds) {
            return Ok(Vec::new());
        }
        self.journal(&LedgerEvent::SetThresholds { thresholds })?;
        // After catching up: other processes' events are applied first, as journaled.
        Ok(self.ledger.set_thresholds(thresholds))
    }

    /// Catches up with other processes, makes every event durable and materialises the
    /// views that are due (a checkpoint): every changed view of at most
    /// [`SMALL_VIEW`](super::SMALL_VIEW) entries, and a larger one once its pending changes
    /// reach half its entries.
    ///
    /// # Errors
    /// [`IssueLedgerError`] when the filesystem fails or a foreign event does not replay.
    pub fn checkpoint(&mut self) -> Result<(), IssueLedgerError> {
        self.checkpoint_with(Due::Policy)
    }

    /// A checkpoint that writes every view that lags, whatever its size (at the end of a
    /// run, so that every file on disk is current).
    ///
    /// # Errors
    /// As [`FsIssueLedger::checkpoint`].
    pub fn checkpoint_all(&mut self) -> Result<(), IssueLedgerError> {
        self.checkpoint_with(Due::All)
    }

    fn checkpoint_with(&mut self, due: Due) -> Result<(), IssueLedgerError> {
        let path = self.store.journal_path();
        let mut replay_error = None;
        let mut journal = match self.store.journal.take() {
            Some(j) => j,
            None => crate::journal::JournalFile::open(&path, self.store.policy)?,
        };
        let result = journal.locked(|j| {
            let len = j.repair_tail()?;
            let (known_len, stored) = {
                let mut st = self.store.state();
                if let Some(torn) = j.pending_torn.take() {
                    st.torn = Some(torn);
                }
                let stored = st.committed.as_ref().map_or(0, |c| c.through);
                (st.known_len, stored)
            };
            let mut last_seq = self.store.state().last_seq;
            if len > known_len {
                // Apply whatever other processes appended since we last looked.
                for (i, line) in j.lines_between(known_len, len)?.iter().enumerate() {
                    let entry = FsIssueStore::parse_entry(&path, i + 1, line)?;
                    last_seq = last_seq.max(entry.seq);
                    if let Err(error) = self.ledger.apply_event(&entry.event) {
                        replay_error.get_or_insert(IssueLedgerError::Replay {
                            path: path.clone(),
                            seq: entry.seq,
                            error: Box::new(error),
                        });
                    }
                }
            }
            {
                let mut st = self.store.state();
                st.known_len = len;
                st.last_seq = last_seq;
                st.initialised = true;
                st.foreign_min_seq = None;
            }
            if replay_error.is_some() || last_seq < stored {
                return j.sync();
            }
            let root = self.store.root().clone();
            self.views
                .note_changes(&root, self.store.files(), self.ledger.take_changes());
            // The journal is synced together with the views' temporary files, before the
            // manifest that covers it is renamed into place.
            let wrote = self.commit(last_seq, len, j.unsynced(), due)?;
            if wrote {
                j.mark_synced();
                Ok(())
            } else {
                j.sync()
            }
        });
        self.store.journal = Some(journal);
        result?;
        if let Some(e) = replay_error {
            return Err(e);
        }
        Ok(())
    }

    /// Writes the views that are `due` and a manifest naming them (the caller holds the
    /// journal lock and has applied every entry through `through`). Returns whether
    /// anything was written (and `also_sync` synced).
    fn commit(
        &mut self,
        through: u64,
        journal_len: u64,
        also_sync: Option<(&File, &Path)>,
        due: Due,
    ) -> Result<bool> {
        self.adopt_manifest_on_disk()?;
        let root = self.store.root().clone();
        let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
        let mut stamps: Vec<(String, ViewStamp)> = Vec::new();
        for (rel, state) in &self.views.views {
            let Some(key) = &state.key else {
                continue;
            };
            let len = self.ledger.view_len(key);
            let is_due = match due {
                Due::Policy => ViewTable::due(state, len, false),
                Due::All => ViewTable::due(state, len, true),
                Due::Forced => state.force,
            };
            if !is_due {
                continue;
            }
            let path = root.dir().join(rel);
            let Some(text) = views::view_text(&self.ledger, key, &path)? else {
                continue;
            };
            let stamp = views::stamp(&text, through);
            let unchanged = state
                .stamp
                .as_ref()
                .is_some_and(|old| old.len == stamp.len && old.hash == stamp.hash);
            if !unchanged {
                files.push((path, text));
            }
            stamps.push((rel.clone(), stamp));
        }
        if stamps.is_empty() {
            return Ok(false);
        }
        let mut manifest = Manifest::empty(self.ledger.thresholds());
        manifest.through = through;
        manifest.journal_offset = journal_len;
        manifest.views = self.views.stamps();
        for (rel, stamp) in &stamps {
            manifest.views.insert(rel.clone(), stamp.clone());
        }
        let manifest_path = self.store.manifest_path();
        // The manifest names every view of the project: pretty while it is short.
        let text = if manifest.views.len() <= views::PRETTY_MAX_ENTRIES {
            pretty_json(&manifest, &manifest_path)?
        } else {
            super::compact_json(&manifest, &manifest_path)?
        };
        // One fsync round: every file is checked against the manifest when the ledger is
        // opened and rebuilt from the journal when they disagree, so a power loss that
        // undoes some renames (no directory fsync) costs a rebuild, never a wrong view.
        files.push((manifest_path.clone(), text));
        fsio::write_batch_renamed(&files, also_sync)?;
        self.manifest_seen = file_identity(&manifest_path);
        for (rel, stamp) in stamps {
            if let Some(state) = self.views.views.get_mut(&rel) {
                state.stamp = Some(stamp);
                state.pending = 0;
                state.force = false;
            }
        }
        self.store.state().committed = Some(manifest);
        Ok(true)
    }

    /// When another process committed since this one did, takes the newer stamps of its
    /// manifest: the views it wrote need not be written again.
    fn adopt_manifest_on_disk(&mut self) -> Result<()> {
        // Still the file this process wrote (same inode, length and time; every atomic
        // write makes a new inode): nothing to adopt, and
        // no need to parse a manifest that grows with the project's runs.
        let now = file_identity(&self.store.manifest_path());
        if now.is_some() && now == self.manifest_seen {
            return Ok(());
        }
        let on_disk = self.store.read_manifest()?;
        let Some(theirs) = on_disk.current() else {
            return Ok(());
        };
        if self.store.state().committed.as_ref() == Some(theirs) {
            return Ok(());
        }
        for (rel, stamp) in &theirs.views {
            let state = self.views.views.entry(rel.clone()).or_insert(ViewState {
                key: None,
                stamp: None,
                pending: 0,
                force: false,
            });
            if !state.force
                && state
                    .stamp
                    .as_ref()
                    .is_none_or(|s| s.through < stamp.through)
            {
                state.stamp = Some(stamp.clone());
            }
        }
        Ok(())
    }
}

/// A file's device, inode, length and modification time.
type FileIdentity = (u64, u64, u64, Option<std::time::SystemTime>);

fn file_identity(path: &Path) -> Option<FileIdentity> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.len(), m.modified().ok()))
}

/// What is wrong with a view file, compared with its stamp (`None`: nothing).
fn check_file(path: &Path, stamp: &ViewStamp) -> Result<Option<String>> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Some("is missing".to_owned()));
        }
        Err(e) => return Err(LayoutError::io("stat", path, e)),
    };
    if len != stamp.len {
        return Ok(Some(format!(
            "is {len} bytes long, the checkpoint wrote {} (truncated, or written by something else)",
            stamp.len
        )));
    }
    let Some(text) = fsio::read_bytes(path)? else {
        return Ok(Some("is missing".to_owned()));
    };
    if super::manifest::hash64(&text) != stamp.hash {
        return Ok(Some(
            "does not hold the content the checkpoint wrote (corrupt, or a checkpoint was interrupted)"
                .to_owned(),
        ));
    }
    Ok(None)
}
