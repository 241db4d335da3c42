//! Persistence: the [`IssueStore`] trait (a journal of ledger events plus checkpoints),
//! an in-memory implementation and [`JournaledLedger`], which writes every change ahead.
//!
//! A store keeps two things: an append-only journal of [`LedgerEvent`]s, each with a
//! sequence number, and at most one [`Checkpoint`]: a [`LedgerSnapshot`] (the backlog, the
//! run issue indexes and the phase issue files) covering every event up to a sequence
//! number. Loading a ledger means rebuilding it from the checkpoint and replaying the
//! journal after it. A filesystem adapter can write the checkpoint as the playbook files
//! themselves and the journal as JSON lines; appends stay O(1).

use autopack_core::ids::IssueKey;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aging::AgingThresholds;
use crate::ledger::{
    IssueObservation, Ledger, LedgerError, LedgerSnapshot, LoadError, RecordOutcome, ResolveOutcome,
};

/// One change to a ledger, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum LedgerEvent {
    /// [`Ledger::record`].
    Record {
        /// The time passed in.
        #[serde(with = "crate::time")]
        #[schemars(with = "DateTime<Utc>")]
        at: DateTime<Utc>,
        /// What was recorded.
        observation: IssueObservation,
    },
    /// [`Ledger::resolve`].
    Resolve {
        /// The time passed in.
        #[serde(with = "crate::time")]
        #[schemars(with = "DateTime<Utc>")]
        at: DateTime<Utc>,
        /// The key resolved.
        issue_key: IssueKey,
    },
    /// [`Ledger::set_thresholds`].
    SetThresholds {
        /// The new thresholds.
        thresholds: AgingThresholds,
    },
}

impl Ledger {
    /// Applies a journaled event (replay).
    ///
    /// # Errors
    /// As [`Ledger::record`] and [`Ledger::resolve`]; nothing is changed on error.
    pub fn apply_event(&mut self, event: &LedgerEvent) -> Result<(), LedgerError> {
        match event {
            LedgerEvent::Record { at, observation } => self.record(observation, *at).map(drop),
            LedgerEvent::Resolve { at, issue_key } => self.resolve(issue_key, *at).map(drop),
            LedgerEvent::SetThresholds { thresholds } => {
                self.set_thresholds(*thresholds);
                Ok(())
            }
        }
    }
}

/// A journaled event with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalEntry {
    /// Strictly increasing within a store, starting at 1.
    pub seq: u64,
    /// The SHA-256 of the journal line before this one (of thirty-two zero bytes for the
    /// first), where the store keeps its journal as lines: the hash chain that makes
    /// tampering evident (`autopack_core::journal::chain`). Absent from entries written
    /// before chaining and from stores that keep no lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<autopack_core::journal::chain::Digest>,
    /// The event.
    pub event: LedgerEvent,
}

/// A snapshot covering every journal entry with `seq <= through`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The last sequence number the snapshot includes (0: none).
    pub through: u64,
    /// The ledger's state.
    pub snapshot: LedgerSnapshot,
}

/// What [`IssueStore::load`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredIssues {
    /// The latest checkpoint, if any.
    pub checkpoint: Option<Checkpoint>,
    /// Journal entries after the checkpoint, by sequence number.
    pub journal: Vec<JournalEntry>,
}

/// Where a ledger is kept. Implementations: [`MemoryIssueStore`]; the filesystem adapter
/// of `autopack-layout`. `crate::testing` (feature `testing`) checks an implementation
/// against this contract.
///
/// Contract:
/// - `append` returns a sequence number greater than every earlier one and than the
///   stored checkpoint's `through`; appended events are durable when it returns.
/// - `load` returns the latest checkpoint and exactly the journal entries after it, in
///   order.
/// - `save_checkpoint` replaces the checkpoint; it may drop the entries it covers, and must
///   keep the later ones. A checkpoint older than the stored one, or covering entries never
///   appended, is refused.
pub trait IssueStore {
    /// The store's own errors.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Appends an event to the journal and returns its sequence number.
    ///
    /// # Errors
    /// When the event could not be stored; it is then not part of the journal.
    fn append(&mut self, event: &LedgerEvent) -> Result<u64, Self::Error>;

    /// The latest checkpoint and the journal after it.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn load(&self) -> Result<StoredIssues, Self::Error>;

    /// Stores a checkpoint.
    ///
    /// # Errors
    /// When it cannot be stored, or is older than the stored checkpoint, or covers
    /// sequence numbers never appended.
    fn save_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), Self::Error>;
}

/// Errors of [`MemoryIssueStore`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryStoreError {
    /// The checkpoint is older than the stored one.
    #[error("checkpoint through {through} is older than the stored one (through {stored})")]
    StaleCheckpoint {
        /// The refused checkpoint's `through`.
        through: u64,
        /// The stored checkpoint's `through`.
        stored: u64,
    },
    /// The checkpoint covers entries never appended.
    #[error("checkpoint through {through} is ahead of the journal (last seq {last})")]
    CheckpointAhead {
        /// The refused checkpoint's `through`.
        through: u64,
        /// The last sequence number appended.
        last: u64,
    },
}

/// An [`IssueStore`] in memory, for tests and hosts that persist elsewhere.
#[derive(Debug, Clone, Default)]
pub struct MemoryIssueStore {
    checkpoint: Option<Checkpoint>,
    journal: Vec<JournalEntry>,
    last_seq: u64,
}

impl MemoryIssueStore {
    /// An empty store.
    pub fn new() -> MemoryIssueStore {
        MemoryIssueStore::default()
    }
}

impl IssueStore for MemoryIssueStore {
    type Error = MemoryStoreError;

    fn append(&mut self, event: &LedgerEvent) -> Result<u64, MemoryStoreError> {
        self.last_seq += 1;
        self.journal.push(JournalEntry {
            prev: None,
            seq: self.last_seq,
            event: event.clone(),
        });
        Ok(self.last_seq)
    }

    fn load(&self) -> Result<StoredIssues, MemoryStoreError> {
        Ok(StoredIssues {
            checkpoint: self.checkpoint.clone(),
            journal: self.journal.clone(),
        })
    }

    fn save_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), MemoryStoreError> {
        let stored = self.checkpoint.as_ref().map_or(0, |c| c.through);
        if checkpoint.through < stored {
            return Err(MemoryStoreError::StaleCheckpoint {
                through: checkpoint.through,
                stored,
            });
        }
        if checkpoint.through > self.last_seq {
            return Err(MemoryStoreError::CheckpointAhead {
                through: checkpoint.through,
                last: self.last_seq,
            });
        }
        self.journal.retain(|e| e.seq > checkpoint.through);
        self.checkpoint = Some(checkpoint.clone());
        Ok(())
    }
}

/// A change a [`JournaledLedger`] refused or could not store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError<E: std::error::Error + 'static> {
    /// The ledger refused the change; nothing was journaled.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The store failed; the change was not applied.
    #[error("issue store: {0}")]
    Store(#[source] E),
}

/// A ledger that could not be opened from a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError<E: std::error::Error + 'static> {
    /// The store failed.
    #[error("issue store: {0}")]
    Store(#[source] E),
    /// The checkpoint is inconsistent.
    #[error("issue store checkpoint: {0}")]
    Load(#[from] LoadError),
    /// A journal entry does not apply to the ledger before it.
    #[error("issue journal entry {seq}: {error}")]
    Replay {
        /// The entry's sequence number.
        seq: u64,
        /// Why it does not apply.
        #[source]
        error: LedgerError,
    },
}

/// A [`Ledger`] whose every change is appended to an [`IssueStore`] before it is applied
/// (write-ahead), so that a ledger reopened from the store holds the same state.
#[derive(Debug)]
pub struct JournaledLedger<S: IssueStore> {
    ledger: Ledger,
    store: S,
    last_seq: u64,
}

impl<S: IssueStore> JournaledLedger<S> {
    /// Opens the ledger kept in `store`: its checkpoint (or an empty ledger with
    /// `thresholds`) plus the journal after it.
    ///
    /// # Errors
    /// An [`OpenError`] when the store fails, the checkpoint is inconsistent or the journal
    /// does not replay.
    pub fn open(store: S, thresholds: AgingThresholds) -> Result<Self, OpenError<S::Error>> {
        let stored = store.load().map_err(OpenError::Store)?;
        let (mut ledger, mut last_seq) = match &stored.checkpoint {
            Some(c) => (Ledger::from_snapshot(&c.snapshot)?, c.through),
            None => (Ledger::new(thresholds), 0),
        };
        for entry in &stored.journal {
            ledger
                .apply_event(&entry.event)
                .map_err(|error| OpenError::Replay {
                    seq: entry.seq,
                    error,
                })?;
            last_seq = last_seq.max(entry.seq);
        }
        Ok(JournaledLedger {
            ledger,
            store,
            last_seq,
        })
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The ledger and the store.
    pub fn into_parts(self) -> (Ledger, S) {
        (self.ledger, self.store)
    }

    /// [`Ledger::record`], journaled first.
    ///
    /// # Errors
    /// [`JournalError::Ledger`] as [`Ledger::record`] (nothing journaled);
    /// [`JournalError::Store`] when the append failed (nothing applied).
    pub fn record(
        &mut self,
        observation: &IssueObservation,
        now: DateTime<Utc>,
    ) -> Result<RecordOutcome, JournalError<S::Error>> {
        self.ledger.check(observation)?;
        let event = LedgerEvent::Record {
            at: now,
            observation: observation.clone(),
        };
        self.last_seq = self.store.append(&event).map_err(JournalError::Store)?;
        Ok(self.ledger.record(observation, now)?)
    }

    /// [`Ledger::resolve`], journaled first.
    ///
    /// # Errors
    /// As [`JournaledLedger::record`].
    pub fn resolve(
        &mut self,
        key: &IssueKey,
        now: DateTime<Utc>,
    ) -> Result<ResolveOutcome, JournalError<S::Error>> {
        if self.ledger.status(key).is_none() {
            return Err(LedgerError::UnknownIssueKey(key.clone()).into());
        }
        let event = LedgerEvent::Resolve {
            at: now,
            issue_key: key.clone(),
        };
        self.last_seq = self.store.append(&event).map_err(JournalError::Store)?;
        Ok(self.ledger.resolve(key, now)?)
    }

    /// [`Ledger::set_thresholds`], journaled first.
    ///
    /// # Errors
    /// [`JournalError::Store`] when the append failed.
    pub fn set_thresholds(
        &mut self,
        thresholds: AgingThresholds,
    ) -> Result<Vec<IssueKey>, JournalError<S::Error>> {
        let event = LedgerEvent::SetThresholds { thresholds };
        self.last_seq = self.store.append(&event).map_err(JournalError::Store)?;
        Ok(self.ledger.set_thresholds(thresholds))
    }

    /// Stores a checkpoint of the current state, covering every event so far.
    ///
    /// # Errors
    /// The store's error.
    pub fn checkpoint(&mut self) -> Result<(), S::Error> {
        let checkpoint = Checkpoint {
            through: self.last_seq,
            snapshot: self.ledger.snapshot(),
        };
        self.store.save_checkpoint(&checkpoint)
    }
}
