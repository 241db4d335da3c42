//! The project issue ledger in PostgreSQL: [`PgIssueStore`] (the [`IssueStore`] contract)
//! and [`PgIssueLedger`], a ledger several processes on several hosts record into.

use autopack_core::ids::{IssueKey, ProjectId};
use autopack_issues::{
    AgingThresholds, Checkpoint, IssueObservation, IssueStore, JournalEntry, Ledger, LedgerError,
    LedgerEvent, LedgerSnapshot, LoadError, RecordOutcome, ResolveOutcome, StoredIssues,
};
use chrono::{DateTime, Utc};
use postgres::error::SqlState;

use crate::connection::Db;
use crate::error::PgStoreError;

const JOURNAL: &str = "issue_journal";
const CHECKPOINTS: &str = "issue_checkpoints";

const APPEND: &str = "SELECT autopack_issue_append($1, $2, $3, $4, $5, $6)";
const AFTER: &str =
    "SELECT seq, event FROM issue_journal WHERE project_id = $1 AND seq > $2 ORDER BY seq";

/// One project's issue journal and checkpoint in PostgreSQL.
///
/// Sequence numbers are handed out under a lock on the project's row, so they are
/// gap-free and in commit order, and writers on any number of hosts interleave safely.
/// An append of any number of events is one round trip (the `autopack_issue_append`
/// function, prepared once per connection) and holds the lock only while the server
/// inserts. Each append carries this store's writer id and a batch number: an append
/// retried after its reply was lost finds its rows instead of writing them twice.
#[derive(Debug)]
pub struct PgIssueStore {
    db: Db,
    project: ProjectId,
    writer: String,
    next_batch: i64,
    /// The last sequence number this store has seen (appended or loaded).
    seen: i64,
}

impl PgIssueStore {
    /// The store of `project`'s ledger on `db`.
    pub fn new(db: Db, project: ProjectId) -> PgIssueStore {
        PgIssueStore {
            db,
            project,
            writer: crate::writer_id(),
            next_batch: 1,
            seen: 0,
        }
    }

    /// The project.
    pub fn project(&self) -> &ProjectId {
        &self.project
    }

    /// The last sequence number this store has seen.
    pub fn last_seen(&self) -> u64 {
        u64::try_from(self.seen).unwrap_or(0)
    }

    fn key(&self, seq: i64) -> String {
        format!("project {} seq {seq}", self.project)
    }

    fn parse_event(&self, seq: i64, text: &str) -> Result<LedgerEvent, PgStoreError> {
        autopack_core::json::from_str_named::<LedgerEvent>(text, || self.key(seq))
            .map_err(|e| PgStoreError::corrupt(JOURNAL, self.key(seq), e))
    }

    fn entry(&self, seq: i64, text: &str) -> Result<JournalEntry, PgStoreError> {
        let event = self.parse_event(seq, text)?;
        let seq = u64::try_from(seq).map_err(|_| {
            PgStoreError::corrupt(JOURNAL, self.key(seq), "negative sequence number")
        })?;
        Ok(JournalEntry {
            seq,
            prev: None,
            event,
        })
    }

    /// Appends `events` as one batch (one transaction, one round trip) and returns the
    /// sequence number of the first; the others follow it. With
    /// [`Durability::EveryEntry`](crate::Durability) the batch is durable when this
    /// returns.
    ///
    /// # Errors
    /// [`PgStoreError::LostEntries`] when the journal ends before entries this store saw;
    /// connection failures beyond the retry policy.
    pub fn append_batch(&mut self, events: &[LedgerEvent]) -> Result<u64, PgStoreError> {
        let texts: Vec<String> = events
            .iter()
            .map(|e| serde_json::to_string(e).expect("ledger events serialise"))
            .collect();
        let batch = self.next_batch;
        self.next_batch += 1;
        let (project, writer, after) = (self.project.as_str(), self.writer.as_str(), self.seen);
        let mut retry = false;
        let result = self.db.with("append to the issue journal", |c| {
            let append = c.statement(APPEND)?;
            let first = c.query_one(
                &append,
                &[&project, &after, &writer, &batch, &texts, &retry],
            );
            retry = true;
            first.map(|row| row.get::<_, i64>(0))
        });
        let first = match result {
            Err(PgStoreError::Query { source, .. })
                if source.code().map(SqlState::code) == Some("AP001") =>
            {
                let found = self.stored_last()?;
                return Err(PgStoreError::LostEntries {
                    table: JOURNAL,
                    key: format!("project {}", self.project),
                    expected: self.last_seen(),
                    found: u64::try_from(found).unwrap_or(0),
                });
            }
            other => other?,
        };
        let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
        self.seen = self.seen.max(first + count - 1);
        u64::try_from(first).map_err(|_| {
            PgStoreError::corrupt(JOURNAL, self.key(first), "negative sequence number")
        })
    }

    /// Makes every entry appended so far durable (a checkpoint, with
    /// [`Durability::AtCheckpoints`](crate::Durability)).
    ///
    /// # Errors
    /// The database's errors.
    pub fn sync(&self) -> Result<(), PgStoreError> {
        self.db.sync()
    }

    fn stored_last(&self) -> Result<i64, PgStoreError> {
        let project = self.project.as_str();
        self.db.with("read the issue journal's length", |c| {
            c.query_opt(
                "SELECT last_seq FROM issue_projects WHERE project_id = $1",
                &[&project],
            )
            .map(|row| row.map_or(0, |r| r.get(0)))
        })
    }

    /// The journal entries after `after`, in order (what other writers appended since).
    ///
    /// # Errors
    /// [`PgStoreError::Corrupt`] naming a row that does not parse or a gap.
    pub fn entries_after(&mut self, after: u64) -> Result<Vec<JournalEntry>, PgStoreError> {
        let project = self.project.as_str();
        let from = i64::try_from(after).unwrap_or(i64::MAX);
        let rows = self.db.with("read the issue journal", |c| {
            let after = c.statement(AFTER)?;
            c.query(&after, &[&project, &from])
        })?;
        let mut expected = from + 1;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let seq: i64 = row.get(0);
            let text: String = row.get(1);
            if seq != expected {
                return Err(PgStoreError::corrupt(
                    JOURNAL,
                    self.key(expected),
                    format!("missing: the journal jumps to seq {seq}"),
                ));
            }
            expected += 1;
            out.push(self.entry(seq, &text)?);
        }
        self.seen = self.seen.max(expected - 1);
        Ok(out)
    }

    fn load_checkpoint(&self) -> Result<Option<Checkpoint>, PgStoreError> {
        let project = self.project.as_str();
        let row = self.db.with("read the issue checkpoint", |c| {
            c.query_opt(
                "SELECT through, snapshot FROM issue_checkpoints WHERE project_id = $1",
                &[&project],
            )
        })?;
        let Some(row) = row else { return Ok(None) };
        let through: i64 = row.get(0);
        let text: String = row.get(1);
        let key = format!("project {}", self.project);
        let snapshot: LedgerSnapshot =
            autopack_core::json::from_str_named(&text, || format!("{CHECKPOINTS} {key}"))
                .map_err(|e| PgStoreError::corrupt(CHECKPOINTS, key.clone(), e))?;
        let through = u64::try_from(through)
            .map_err(|_| PgStoreError::corrupt(CHECKPOINTS, key, "negative `through`"))?;
        Ok(Some(Checkpoint { through, snapshot }))
    }
}

impl IssueStore for PgIssueStore {
    type Error = PgStoreError;

    fn append(&mut self, event: &LedgerEvent) -> Result<u64, PgStoreError> {
        self.append_batch(std::slice::from_ref(event))
    }

    fn load(&self) -> Result<StoredIssues, PgStoreError> {
        let checkpoint = self.load_checkpoint()?;
        let through = checkpoint.as_ref().map_or(0, |c| c.through);
        // `entries_after` only moves `seen` forward; a load through a shared reference
        // reads without it.
        let mut reader = PgIssueStore {
            db: self.db.clone(),
            project: self.project.clone(),
            writer: self.writer.clone(),
            next_batch: 0,
            seen: 0,
        };
        let journal = reader.entries_after(through)?;
        Ok(StoredIssues {
            checkpoint,
            journal,
        })
    }

    fn save_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), PgStoreError> {
        let project = self.project.as_str();
        let through = i64::try_from(checkpoint.through).map_err(|_| PgStoreError::Invalid {
            field: "checkpoint.through".to_owned(),
            message: "out of range".to_owned(),
        })?;
        let snapshot = serde_json::to_string(&checkpoint.snapshot).expect("snapshots serialise");
        let key = format!("project {}", self.project);
        let refused = self.db.transaction("save the issue checkpoint", true, |tx| {
            tx.execute(
                "INSERT INTO issue_projects (project_id) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&project],
            )?;
            let last: i64 = tx
                .query_one(
                    "SELECT last_seq FROM issue_projects WHERE project_id = $1 FOR UPDATE",
                    &[&project],
                )?
                .get(0);
            let stored: i64 = tx
                .query_opt(
                    "SELECT through FROM issue_checkpoints WHERE project_id = $1",
                    &[&project],
                )?
                .map_or(0, |r| r.get(0));
            if through < stored {
                return Ok(Some(format!(
                    "checkpoint through {through} is older than the stored one (through {stored})"
                )));
            }
            if through > last {
                return Ok(Some(format!(
                    "checkpoint through {through} is ahead of the journal (last seq {last})"
                )));
            }
            tx.execute(
                "INSERT INTO issue_checkpoints (project_id, through, snapshot) VALUES ($1, $2, $3)
                 ON CONFLICT (project_id) DO UPDATE SET through = $2, snapshot = $3",
                &[&project, &through, &snapshot],
            )?;
            Ok(None)
        })?;
        match refused {
            Some(message) => Err(PgStoreError::conflict(CHECKPOINTS, key, message)),
            None => Ok(()),
        }
    }
}

/// Why a [`PgIssueLedger`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgLedgerError {
    /// The ledger refused the change; nothing was journaled.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A stored entry does not apply to the ledger before it.
    #[error("table issue_journal, project {project} seq {seq}: does not replay: {error}")]
    Replay {
        /// The project.
        project: ProjectId,
        /// The entry.
        seq: u64,
        /// Why.
        #[source]
        error: LedgerError,
    },
    /// The stored checkpoint does not load.
    #[error("table issue_checkpoints, project {project}: {error}")]
    Load {
        /// The project.
        project: ProjectId,
        /// Why.
        #[source]
        error: LoadError,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] PgStoreError),
}

/// A project's ledger kept in PostgreSQL that any number of processes, on any hosts,
/// record into at once. Recording is an append (one round trip per batch, whatever the
/// other writers do); the local ledger applies the journal in its order — other writers'
/// entries and this one's alike — when it is refreshed ([`PgIssueLedger::refresh`],
/// [`PgIssueLedger::record`], [`PgIssueLedger::checkpoint`]), so it is always the
/// journal's state as of some entry, and the journal (not any process's memory) is the
/// truth. Dedup, aging by distinct runs and tiers, upgrades and regressions come out as
/// for one writer.
///
/// Validation happens before the append, against the local ledger; a run has one writer
/// (its lease), so another process's entries cannot make a run's own observation invalid
/// in between.
#[derive(Debug)]
pub struct PgIssueLedger {
    ledger: Ledger,
    store: PgIssueStore,
    /// The last journal entry applied to `ledger`.
    applied: u64,
    /// Sequence numbers of this ledger's own appends not applied yet, in order.
    own: std::collections::VecDeque<std::ops::Range<u64>>,
}

impl PgIssueLedger {
    /// Opens `project`'s ledger: its checkpoint (or an empty ledger) and the journal after
    /// it. With `thresholds` (the run's, from its frozen strategy) a change of thresholds
    /// is journaled as in `autopack_layout::FsIssueLedger::open`; `None` keeps the
    /// ledger's (for readers such as reports).
    ///
    /// # Errors
    /// [`PgLedgerError`] when the database fails or its rows do not load.
    pub fn open(
        db: Db,
        project: ProjectId,
        thresholds: Option<AgingThresholds>,
    ) -> Result<PgIssueLedger, PgLedgerError> {
        let store = PgIssueStore::new(db, project.clone());
        let checkpoint = store.load_checkpoint()?;
        let (ledger, applied) = match &checkpoint {
            Some(c) => (
                Ledger::from_snapshot(&c.snapshot).map_err(|error| PgLedgerError::Load {
                    project: project.clone(),
                    error,
                })?,
                c.through,
            ),
            None => (Ledger::new(AgingThresholds::default()), 0),
        };
        let mut opened = PgIssueLedger {
            ledger,
            store,
            applied,
            own: Default::default(),
        };
        opened.store.seen = i64::try_from(applied).unwrap_or(i64::MAX);
        opened.refresh()?;
        if let Some(thresholds) = thresholds {
            opened.set_thresholds(thresholds)?;
        }
        Ok(opened)
    }

    /// The ledger as of the last refresh.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The ledger, mutably: to turn on change tracking ([`Ledger::track_changes`]).
    pub fn ledger_mut(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    /// The project.
    pub fn project(&self) -> &ProjectId {
        self.store.project()
    }

    /// Applies the journal after the last applied entry: other writers' and this
    /// ledger's own appends, in journal order. Returns what this ledger's own entries
    /// did, in order.
    fn apply_journal(&mut self) -> Result<Vec<ApplyOwn>, PgLedgerError> {
        let entries = self.store.entries_after(self.applied)?;
        let mut outcomes = Vec::new();
        for entry in entries {
            let own = self.own.front().is_some_and(|r| r.contains(&entry.seq));
            let applied = if own {
                if self.own.front().is_some_and(|r| r.end == entry.seq + 1) {
                    self.own.pop_front();
                }
                match &entry.event {
                    LedgerEvent::Record { at, observation } => {
                        self.ledger.record(observation, *at).map(ApplyOwn::Recorded)
                    }
                    LedgerEvent::Resolve { at, issue_key } => {
                        self.ledger.resolve(issue_key, *at).map(ApplyOwn::Resolved)
                    }
                    LedgerEvent::SetThresholds { thresholds } => Ok(ApplyOwn::Thresholds(
                        self.ledger.set_thresholds(*thresholds),
                    )),
                }
                .map(|o| outcomes.push(o))
            } else {
                self.ledger.apply_event(&entry.event)
            };
            applied.map_err(|error| PgLedgerError::Replay {
                project: self.store.project.clone(),
                seq: entry.seq,
                error,
            })?;
            self.applied = entry.seq;
        }
        Ok(outcomes)
    }

    fn append(&mut self, events: &[LedgerEvent]) -> Result<(), PgLedgerError> {
        if events.is_empty() {
            return Ok(());
        }
        let first = self.store.append_batch(events)?;
        self.own.push_back(first..first + events.len() as u64);
        Ok(())
    }

    /// Records `observations`, all at `at`, as one append; the local ledger shows them
    /// after the next refresh.
    ///
    /// # Errors
    /// [`PgLedgerError::Ledger`] when one is invalid (nothing journaled); the store's
    /// errors (nothing journaled).
    pub fn record_all(
        &mut self,
        observations: &[IssueObservation],
        at: DateTime<Utc>,
    ) -> Result<(), PgLedgerError> {
        for observation in observations {
            self.ledger.check(observation)?;
        }
        let events: Vec<LedgerEvent> = observations
            .iter()
            .map(|observation| LedgerEvent::Record {
                at,
                observation: observation.clone(),
            })
            .collect();
        self.append(&events)
    }

    /// Records one observation and refreshes, returning what it did.
    ///
    /// # Errors
    /// As [`PgIssueLedger::record_all`].
    pub fn record(
        &mut self,
        observation: &IssueObservation,
        at: DateTime<Utc>,
    ) -> Result<RecordOutcome, PgLedgerError> {
        self.record_all(std::slice::from_ref(observation), at)?;
        match self.apply_journal()?.pop() {
            Some(ApplyOwn::Recorded(outcome)) => Ok(outcome),
            _ => Err(self.missing_own()),
        }
    }

    fn missing_own(&self) -> PgLedgerError {
        PgStoreError::corrupt(
            JOURNAL,
            format!("project {}", self.project()),
            "an appended entry is missing from the journal",
        )
        .into()
    }

    /// Resolves `key`.
    ///
    /// # Errors
    /// [`LedgerError::UnknownIssueKey`] (nothing journaled); the store's errors.
    pub fn resolve(
        &mut self,
        key: &IssueKey,
        at: DateTime<Utc>,
    ) -> Result<ResolveOutcome, PgLedgerError> {
        self.refresh()?;
        if self.ledger.status(key).is_none() {
            return Err(LedgerError::UnknownIssueKey(key.clone()).into());
        }
        self.append(&[LedgerEvent::Resolve {
            at,
            issue_key: key.clone(),
        }])?;
        match self.apply_journal()?.pop() {
            Some(ApplyOwn::Resolved(outcome)) => Ok(outcome),
            _ => Err(self.missing_own()),
        }
    }

    /// Makes the ledger use `thresholds`, journaling the change when it changes anything.
    ///
    /// # Errors
    /// The store's errors.
    pub fn set_thresholds(
        &mut self,
        thresholds: AgingThresholds,
    ) -> Result<Vec<IssueKey>, PgLedgerError> {
        self.refresh()?;
        if !self.ledger.would_set_thresholds_change(thresholds) {
            return Ok(Vec::new());
        }
        self.append(&[LedgerEvent::SetThresholds { thresholds }])?;
        match self.apply_journal()?.pop() {
            Some(ApplyOwn::Thresholds(keys)) => Ok(keys),
            _ => Err(self.missing_own()),
        }
    }

    /// Applies the journal's entries after the last one applied (other writers' and
    /// this ledger's own).
    ///
    /// # Errors
    /// The store's errors, or an entry that does not replay.
    pub fn refresh(&mut self) -> Result<(), PgLedgerError> {
        self.apply_journal().map(drop)
    }

    /// Makes every entry this ledger appended durable.
    ///
    /// # Errors
    /// The database's errors.
    pub fn sync(&self) -> Result<(), PgLedgerError> {
        Ok(self.store.sync()?)
    }

    /// Refreshes, then stores a checkpoint of the ledger as of its last applied entry, so
    /// that later opens replay only what follows (compaction; the journal is kept whole).
    ///
    /// # Errors
    /// The store's errors.
    pub fn checkpoint(&mut self) -> Result<(), PgLedgerError> {
        self.refresh()?;
        let checkpoint = Checkpoint {
            through: self.applied,
            snapshot: self.ledger.snapshot(),
        };
        self.store.save_checkpoint(&checkpoint)?;
        Ok(())
    }
}

enum ApplyOwn {
    Recorded(RecordOutcome),
    Resolved(ResolveOutcome),
    Thresholds(Vec<IssueKey>),
}
