//! The filesystem [`IssueStore`] ([`FsIssueStore`]) and a ledger that several processes can
//! share ([`FsIssueLedger`]).
//!
//! # On disk
//! - `.autonomous_runs/project_issue_journal.jsonl`: every [`LedgerEvent`] as a
//!   [`JournalEntry`] line (`{"seq":N,"event":{...}}`), appended in O(1) under the
//!   journal's lock; torn tails are cut as for every journal of this crate
//!   ([`crate::journal`]). The journal is kept whole: it is the audit trail, and the
//!   fallback when a checkpoint is found half written.
//! - At a checkpoint ([`IssueStore::save_checkpoint`], which a host calls at the end of a
//!   phase and of a run, or on demand) the playbook views are *materialised*: the project
//!   backlog (`project_issue_backlog.json`), each run's `run_issue_index.json` and each
//!   phase's `issues/phase_{idx:02}_{phase_id}_issues.json`. Only views whose content
//!   changed since the last checkpoint are rewritten, each atomically. Views are never
//!   rewritten per record. The journal and the views' temporary files are fsynced
//!   together, the views renamed into place and each directory touched fsynced once
//!   ([`fsio::write_batch_atomic`]); only then is the manifest renamed into place.
//! - Last, `project_issue_checkpoint.json` (the commit point, written atomically) names the
//!   checkpoint's sequence number, the aging thresholds, the journal offset after that
//!   entry, and every view file with a hash (FNV-1a 64) of the content written.
//!
//! # Loading
//! [`IssueStore::load`] reads the manifest and the views it names; when every view still
//! has the content the manifest recorded, they are the checkpoint and only the journal
//! after the recorded offset is read. When a view differs (a crash after some views were
//! rewritten but before the manifest was), the checkpoint is ignored and the whole journal
//! is replayed: nothing is lost and nothing is counted twice. A view that is not valid
//! JSON is an error naming the file, line and column, never replaced silently.
//!
//! With no manifest and an empty journal, a backlog found at the canonical position or at
//! the first implementation's (one level above `.autonomous_runs/`) is imported: it is
//! written canonically and committed as a checkpoint through sequence number 0.
//!
//! # Several processes
//! Sequence numbers are assigned under the journal lock, so appends from several processes
//! interleave safely. A [`JournaledLedger`](autopack_issues::JournaledLedger) does not see
//! the other processes' events, so a checkpoint that would cover an event this store
//! instance never saw is refused ([`LayoutError::CheckpointConflict`]) rather than losing
//! it. [`FsIssueLedger`] catches up with the other processes' events under the lock before
//! each change and each checkpoint, so several processes can record into one project
//! ledger and lose nothing.
//!
//! # Durability
//! With [`FsyncPolicy::EveryEntry`] an event is durable when `append` returns (the
//! `IssueStore` contract). With [`FsyncPolicy::AtCheckpoints`] events are made durable at
//! the next checkpoint (or [`FsIssueStore::sync`]); a crash loses at most the events since,
//! and never leaves a torn or merged line.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use autopack_core::ids::{PhaseId, RunId};
use autopack_core::journal::TornTail;
use autopack_issues::{
    AgingThresholds, Checkpoint, IssueObservation, IssueStore, JournalEntry, Ledger, LedgerError,
    LedgerEvent, LedgerSnapshot, PhaseIssueFile, ProjectBacklog, RecordOutcome, RunIssueIndex,
    RunSnapshot, StoredIssues,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{LayoutError, Result};
use crate::fsio::{self, FileLock};
use crate::journal::{FsyncPolicy, JournalFile, read_journal};
use crate::paths::RunsRoot;

/// File name of the issue journal.
pub const ISSUE_JOURNAL_FILE: &str = "project_issue_journal.jsonl";
/// File name of the issue checkpoint manifest.
pub const ISSUE_CHECKPOINT_FILE: &str = "project_issue_checkpoint.json";

/// The manifest of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    through: u64,
    journal_offset: u64,
    aging_thresholds: AgingThresholds,
    backlog: FileRef,
    runs: Vec<RunRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRef {
    /// Relative to the root.
    path: String,
    fnv64: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRef {
    index: FileRef,
    phases: Vec<FileRef>,
}

/// What this instance last wrote or read as a checkpoint.
#[derive(Debug, Clone)]
struct Committed {
    /// The snapshot, when this instance holds it (the `IssueStore` path).
    snapshot: Option<LedgerSnapshot>,
    manifest: Manifest,
}

#[derive(Debug, Default)]
struct State {
    /// The journal length this instance has accounted for (own appends, loads, catch-ups).
    known_len: u64,
    /// The last sequence number in the journal at `known_len`.
    last_seq: u64,
    /// Whether `known_len`/`last_seq` have been initialised from the file.
    initialised: bool,
    /// The smallest sequence number appended by another process that this instance has
    /// not seen.
    foreign_min_seq: Option<u64>,
    committed: Option<Committed>,
    torn: Option<TornTail>,
}

/// The phase index in `.../issues/phase_{idx:02}_{id}_issues.json`.
fn phase_index_of(path: &str) -> u32 {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.strip_prefix("phase_")
        .and_then(|rest| rest.split('_').next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Receives entries other processes appended.
type CatchUp<'a> = dyn FnMut(&JournalEntry) -> Result<()> + 'a;

/// The filesystem [`IssueStore`]; see the [module docs](self).
#[derive(Debug)]
pub struct FsIssueStore {
    root: RunsRoot,
    policy: FsyncPolicy,
    journal: Option<JournalFile>,
    /// `root/project_issue_journal.jsonl`, computed once.
    journal_path: PathBuf,
    /// Reused for serialising events.
    event_buf: Vec<u8>,
    state: Mutex<State>,
}

#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

fn fnv64(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn json_text<T: Serialize>(value: &T, path: &Path) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| LayoutError::Serialize {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    text.push('\n');
    Ok(text)
}

impl FsIssueStore {
    /// A store under `root` with the given fsync policy.
    pub fn new(root: RunsRoot, policy: FsyncPolicy) -> FsIssueStore {
        let journal_path = root.dir().join(ISSUE_JOURNAL_FILE);
        FsIssueStore {
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

    /// `.autonomous_runs/project_issue_journal.jsonl`.
    pub fn journal_path(&self) -> PathBuf {
        self.journal_path.clone()
    }

    /// `.autonomous_runs/project_issue_checkpoint.json`.
    pub fn manifest_path(&self) -> PathBuf {
        self.root.dir().join(ISSUE_CHECKPOINT_FILE)
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

    fn rel(&self, path: &Path) -> String {
        path.strip_prefix(self.root.dir())
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
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
                let floor = st.committed.as_ref().map_or(0, |c| c.manifest.through);
                let seq = st.last_seq.max(floor) + 1;
                let prefix = format!("{{\"seq\":{seq},\"event\":");
                let written = j.write_line_parts(&[prefix.as_bytes(), &event_json, b"}"])?;
                st.last_seq = seq;
                // The lock is held and the file is opened for appending: it now ends here.
                st.known_len = len + written;
                Ok(seq)
            })
        });
        self.event_buf = event_json;
        result
    }

    fn read_manifest(&self) -> Result<Option<Manifest>> {
        fsio::read_json(&self.manifest_path())
    }

    /// Reads the views a manifest names; `None` when one no longer has the recorded content.
    fn read_views(&self, manifest: &Manifest) -> Result<Option<LedgerSnapshot>> {
        fn view<T: serde::de::DeserializeOwned>(
            store: &FsIssueStore,
            file: &FileRef,
        ) -> Result<Option<T>> {
            let path = store.abs(&file.path);
            let Some(text) = fsio::read_text(&path)? else {
                return Ok(None);
            };
            let value = autopack_core::json::from_str(&text, path.display().to_string())?;
            if fnv64(text.as_bytes()) != file.fnv64 {
                return Ok(None);
            }
            Ok(Some(value))
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

    /// Imports a backlog of this or the first implementation when the store is new.
    fn import_backlog(&self) -> Result<Option<Committed>> {
        let Some((path, backlog)) =
            fsio::read_json_first::<ProjectBacklog>(&self.root.backlog_candidates())?
        else {
            return Ok(None);
        };
        // Normalised by the ledger (imported files lack some fields), then written canonically.
        let snapshot = Ledger::from_backlog(&backlog, AgingThresholds::default())
            .map_err(|e| LayoutError::Invalid {
                path,
                message: e.to_string(),
            })?
            .snapshot();
        let manifest = self.write_views(&snapshot, None, 0, 0, None)?;
        Ok(Some(Committed {
            snapshot: Some(snapshot),
            manifest,
        }))
    }

    /// Writes the views of `snapshot` that differ from `previous`, then the manifest.
    fn write_views(
        &self,
        snapshot: &LedgerSnapshot,
        previous: Option<&Committed>,
        through: u64,
        journal_offset: u64,
        also_sync: Option<(&File, &Path)>,
    ) -> Result<Manifest> {
        let mut old_files: BTreeMap<&str, &str> = BTreeMap::new();
        let mut old_runs: BTreeMap<&str, &RunSnapshot> = BTreeMap::new();
        if let Some(prev) = previous {
            let m = &prev.manifest;
            old_files.insert(&m.backlog.path, &m.backlog.fnv64);
            for r in &m.runs {
                old_files.insert(&r.index.path, &r.index.fnv64);
                for p in &r.phases {
                    old_files.insert(&p.path, &p.fnv64);
                }
            }
            for r in prev.snapshot.iter().flat_map(|s| s.runs.iter()) {
                old_runs.insert(r.index.run_id.as_str(), r);
            }
        }
        let mut pending: Vec<(PathBuf, Vec<u8>)> = Vec::new();
        let mut write = |path: PathBuf,
                         unchanged: bool,
                         value: &dyn Fn(&Path) -> Result<String>|
         -> Result<FileRef> {
            let rel = self.rel(&path);
            if let Some(hash) = old_files.get(rel.as_str()).filter(|_| unchanged) {
                return Ok(FileRef {
                    path: rel,
                    fnv64: (*hash).to_owned(),
                });
            }
            let text = value(&path)?;
            let hash = fnv64(text.as_bytes());
            if old_files.get(rel.as_str()) != Some(&hash.as_str()) {
                pending.push((path, text.into_bytes()));
            }
            Ok(FileRef {
                path: rel,
                fnv64: hash,
            })
        };
        let backlog_same = previous
            .and_then(|p| p.snapshot.as_ref())
            .is_some_and(|p| p.backlog == snapshot.backlog);
        let backlog = write(self.root.backlog(), backlog_same, &|p| {
            json_text(&snapshot.backlog, p)
        })?;
        let mut runs = Vec::with_capacity(snapshot.runs.len());
        for run in &snapshot.runs {
            let run_id = &run.index.run_id;
            let old = old_runs.get(run_id.as_str()).copied();
            let index = write(
                self.root.run_issue_index(run_id),
                old.is_some_and(|o| o.index == run.index),
                &|p| json_text(&run.index, p),
            )?;
            let mut phases = Vec::with_capacity(run.phases.len());
            for phase in &run.phases {
                let same = old.is_some_and(|o| {
                    o.phases
                        .iter()
                        .find(|q| {
                            q.phase_index == phase.phase_index && q.phase_id == phase.phase_id
                        })
                        .is_some_and(|q| q == phase)
                });
                phases.push(write(
                    self.root
                        .phase_issues(run_id, phase.phase_index, &phase.phase_id),
                    same,
                    &|p| json_text(phase, p),
                )?);
            }
            runs.push(RunRef { index, phases });
        }
        let manifest = Manifest {
            through,
            journal_offset,
            aging_thresholds: snapshot.aging_thresholds,
            backlog,
            runs,
        };
        let manifest_path = self.manifest_path();
        let text = json_text(&manifest, &manifest_path)?;
        fsio::write_batch_atomic(&pending, (&manifest_path, text.as_bytes()), also_sync)?;
        Ok(manifest)
    }

    fn load_locked(&self) -> Result<StoredIssues> {
        let journal_path = self.journal_path();
        let committed = match self.read_manifest()? {
            Some(manifest) => self.read_views(&manifest)?.map(|snapshot| Committed {
                snapshot: Some(snapshot),
                manifest,
            }),
            None => None,
        };
        let contents = read_journal(&journal_path, None)?;
        let mut st = self.state();
        if let Some(torn) = contents.torn_tail.clone() {
            st.torn = Some(torn);
        }
        let committed = match committed {
            None if contents.is_empty() && !self.manifest_path().exists() => {
                self.import_backlog()?
            }
            other => other,
        };
        let through = committed.as_ref().map_or(0, |c| c.manifest.through);
        let mut journal = Vec::new();
        let mut len = 0u64;
        let mut last_seq = 0u64;
        for (i, line) in contents.entries().enumerate() {
            len += line.len() as u64 + 1;
            let entry = Self::parse_entry(&journal_path, i + 1, line)?;
            last_seq = entry.seq;
            if entry.seq > through {
                journal.push(entry);
            }
        }
        st.known_len = len;
        st.last_seq = last_seq;
        st.initialised = true;
        st.foreign_min_seq = None;
        st.committed = committed.clone();
        Ok(StoredIssues {
            checkpoint: committed.and_then(|c| {
                c.snapshot.map(|snapshot| Checkpoint {
                    through: c.manifest.through,
                    snapshot,
                })
            }),
            journal,
        })
    }

    fn save_locked(
        &self,
        checkpoint: &Checkpoint,
        journal_len: u64,
        also_sync: Option<(&File, &Path)>,
    ) -> Result<()> {
        let mut st = self.state();
        // Another instance may have committed since we looked.
        let on_disk = self.read_manifest()?;
        let stored = on_disk.as_ref().map_or(0, |m| m.through);
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
        let previous = match (&st.committed, &on_disk) {
            (Some(c), Some(m)) if &c.manifest == m => Some(c.clone()),
            _ => None,
        };
        let offset = if checkpoint.through == st.last_seq && journal_len == st.known_len {
            journal_len
        } else {
            0
        };
        let manifest = self.write_views(
            &checkpoint.snapshot,
            previous.as_ref(),
            checkpoint.through,
            offset,
            also_sync,
        )?;
        st.committed = Some(Committed {
            snapshot: Some(checkpoint.snapshot.clone()),
            manifest,
        });
        Ok(())
    }

    /// A checkpoint of `ledger` that rewrites only the views in `dirty` (the caller holds
    /// the journal lock and has caught up). Falls back to a full checkpoint when the
    /// manifest on disk is not the one this instance last committed.
    fn save_incremental(
        &self,
        ledger: &Ledger,
        dirty: Dirty,
        through: u64,
        journal_len: u64,
        also_sync: Option<(&File, &Path)>,
    ) -> Result<()> {
        let on_disk = self.read_manifest()?;
        let previous = {
            let st = self.state();
            match (&st.committed, &on_disk) {
                (Some(c), Some(m)) if &c.manifest == m => Some(c.manifest.clone()),
                _ => None,
            }
        };
        let Some(mut manifest) = previous else {
            let checkpoint = Checkpoint {
                through,
                snapshot: ledger.snapshot(),
            };
            return self.save_locked(&checkpoint, journal_len, also_sync);
        };
        let mut pending: Vec<(PathBuf, Vec<u8>)> = Vec::new();
        let mut write = |path: PathBuf, text: String, old: Option<&FileRef>| -> Result<FileRef> {
            let hash = fnv64(text.as_bytes());
            let rel = self.rel(&path);
            if old.is_none_or(|o| o.fnv64 != hash) {
                pending.push((path, text.into_bytes()));
            }
            Ok(FileRef {
                path: rel,
                fnv64: hash,
            })
        };
        if dirty.backlog {
            let path = self.root.backlog();
            let text = json_text(&ledger.backlog(), &path)?;
            manifest.backlog = write(path, text, Some(&manifest.backlog))?;
        }
        for (run_id, phases) in &dirty.phases {
            let index_path = self.root.run_issue_index(run_id);
            let index_rel = self.rel(&index_path);
            let pos = match manifest.runs.iter().position(|r| r.index.path == index_rel) {
                Some(pos) => pos,
                None => {
                    manifest.runs.push(RunRef {
                        index: FileRef {
                            path: index_rel.clone(),
                            fnv64: String::new(),
                        },
                        phases: Vec::new(),
                    });
                    manifest.runs.len() - 1
                }
            };
            let run = &mut manifest.runs[pos];
            let text = json_text(&ledger.run_issue_index(run_id), &index_path)?;
            run.index = write(index_path, text, Some(&run.index))?;
            for (phase_index, phase_id) in phases {
                let Some(file) = ledger.phase_issue_file(run_id, phase_id) else {
                    continue;
                };
                let path = self.root.phase_issues(run_id, *phase_index, phase_id);
                let rel = self.rel(&path);
                let old = run.phases.iter().position(|p| p.path == rel);
                let text = json_text(&file, &path)?;
                let new = write(path, text, old.map(|i| &run.phases[i]))?;
                match old {
                    Some(i) => run.phases[i] = new,
                    None => run.phases.push(new),
                }
            }
        }
        // Keep the manifest in the order of a full snapshot: runs by id, phases by index.
        manifest
            .runs
            .sort_by(|a, b| a.index.path.cmp(&b.index.path));
        for run in &mut manifest.runs {
            run.phases.sort_by_key(|p| phase_index_of(&p.path));
        }
        manifest.through = through;
        manifest.journal_offset = journal_len;
        manifest.aging_thresholds = ledger.thresholds();
        let manifest_path = self.manifest_path();
        let text = json_text(&manifest, &manifest_path)?;
        fsio::write_batch_atomic(&pending, (&manifest_path, text.as_bytes()), also_sync)?;
        self.state().committed = Some(Committed {
            snapshot: None,
            manifest,
        });
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
        self.load_locked()
    }

    fn save_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        // Make the covered events durable before the checkpoint that names them.
        self.sync()?;
        let _lock = FileLock::acquire(&self.journal_path())?;
        let len = match std::fs::metadata(self.journal_path()) {
            Ok(m) => m.len(),
            Err(_) => 0,
        };
        {
            let mut st = self.state();
            if !st.initialised {
                // Never appended nor loaded: learn the journal's end now.
                drop(st);
                let contents = read_journal(&self.journal_path(), None)?;
                st = self.state();
                st.last_seq = match contents.last() {
                    Some(line) => {
                        Self::parse_entry(&self.journal_path(), contents.len(), line)?.seq
                    }
                    None => 0,
                };
                st.known_len = contents.text().len() as u64;
                st.initialised = true;
            }
        }
        self.save_locked(checkpoint, len, None)
    }
}

/// A project issue ledger kept in an [`FsIssueStore`], safe to share between processes:
/// before every change and every checkpoint it applies, under the journal lock, the events
/// other processes appended since it last looked.
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
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FsIssueLedger {
    ledger: Ledger,
    store: FsIssueStore,
    dirty: Dirty,
}

/// The views changed since the last checkpoint.
#[derive(Debug, Default)]
struct Dirty {
    backlog: bool,
    phases: BTreeMap<RunId, BTreeMap<u32, PhaseId>>,
}

impl Dirty {
    fn note(&mut self, event: &LedgerEvent) {
        self.backlog = true;
        if let LedgerEvent::Record { observation, .. } = event {
            let known = self
                .phases
                .get(&observation.run_id)
                .and_then(|phases| phases.get(&observation.phase_index))
                .is_some_and(|id| id == &observation.phase_id);
            if !known {
                self.phases
                    .entry(observation.run_id.clone())
                    .or_default()
                    .insert(observation.phase_index, observation.phase_id.clone());
            }
        }
    }
}

/// An error of [`FsIssueLedger`].
#[derive(Debug, thiserror::Error)]
pub enum IssueLedgerError {
    /// The ledger refused the change (nothing was journaled), or a journaled event did not
    /// replay.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The checkpoint could not be loaded into a ledger.
    #[error("issue checkpoint: {0}")]
    Load(#[from] autopack_issues::LoadError),
    /// The filesystem failed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

impl FsIssueLedger {
    /// Opens the project ledger under `root` (a new one with `thresholds` when none exists).
    ///
    /// # Errors
    /// [`IssueLedgerError`] when the store cannot be read or its events do not replay.
    pub fn open(
        root: RunsRoot,
        thresholds: AgingThresholds,
        policy: FsyncPolicy,
    ) -> Result<FsIssueLedger, IssueLedgerError> {
        let store = FsIssueStore::new(root, policy);
        let stored = store.load()?;
        let mut ledger = match &stored.checkpoint {
            Some(c) => Ledger::from_snapshot(&c.snapshot)?,
            None => Ledger::new(thresholds),
        };
        // Events after the checkpoint change views the checkpoint does not show yet.
        let mut dirty = Dirty::default();
        for entry in &stored.journal {
            dirty.note(&entry.event);
            ledger.apply_event(&entry.event)?;
        }
        Ok(FsIssueLedger {
            ledger,
            store,
            dirty,
        })
    }

    /// The ledger as of this process's last change.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The store.
    pub fn store(&self) -> &FsIssueStore {
        &self.store
    }

    fn journal(&mut self, event: &LedgerEvent) -> Result<u64, IssueLedgerError> {
        let ledger = &mut self.ledger;
        let dirty = &mut self.dirty;
        dirty.note(event);
        let mut replay_error = None;
        let mut catch_up = |entry: &JournalEntry| -> Result<()> {
            dirty.note(&entry.event);
            if let Err(e) = ledger.apply_event(&entry.event) {
                replay_error.get_or_insert(e);
            }
            Ok(())
        };
        let seq = self.store.append_inner(event, Some(&mut catch_up))?;
        if let Some(e) = replay_error {
            return Err(e.into());
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
        key: &autopack_core::ids::IssueKey,
        now: DateTime<Utc>,
    ) -> Result<autopack_issues::ResolveOutcome, IssueLedgerError> {
        let event = LedgerEvent::Resolve {
            at: now,
            issue_key: key.clone(),
        };
        if self.ledger.status(key).is_none() {
            return Err(LedgerError::UnknownIssueKey(key.clone()).into());
        }
        self.journal(&event)?;
        Ok(self.ledger.resolve(key, now)?)
    }

    /// Catches up with other processes and materialises the playbook views (a checkpoint).
    ///
    /// # Errors
    /// [`IssueLedgerError`] when the filesystem fails or a foreign event does not replay.
    pub fn checkpoint(&mut self) -> Result<(), IssueLedgerError> {
        let ledger = &mut self.ledger;
        let dirty = &mut self.dirty;
        let path = self.store.journal_path();
        let mut replay_error = None;
        let result = self.store.with_journal(|journal, store| {
            journal.locked(|j| {
                let len = j.repair_tail()?;
                let mut st = store.state();
                if let Some(torn) = j.pending_torn.take() {
                    st.torn = Some(torn);
                }
                if len > st.known_len {
                    // Apply whatever other processes appended since we last looked.
                    for (i, line) in j.lines_between(st.known_len, len)?.iter().enumerate() {
                        let entry = FsIssueStore::parse_entry(&path, i + 1, line)?;
                        st.last_seq = st.last_seq.max(entry.seq);
                        dirty.note(&entry.event);
                        if let Err(e) = ledger.apply_event(&entry.event) {
                            replay_error.get_or_insert(e);
                        }
                    }
                }
                st.known_len = len;
                st.initialised = true;
                st.foreign_min_seq = None;
                let stored = st.committed.as_ref().map_or(0, |c| c.manifest.through);
                let through = st.last_seq;
                drop(st);
                if replay_error.is_some() || through < stored {
                    return j.sync();
                }
                // The journal is synced together with the views' temporary files, before
                // the manifest that covers it is renamed into place.
                store.save_incremental(
                    ledger,
                    std::mem::take(dirty),
                    through,
                    len,
                    j.unsynced(),
                )?;
                j.mark_synced();
                Ok(())
            })
        });
        result?;
        if let Some(e) = replay_error {
            return Err(e.into());
        }
        Ok(())
    }
}
