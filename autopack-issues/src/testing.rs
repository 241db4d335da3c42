//! The [`IssueStore`] conformance suite (feature `testing`).
//!
//! Every function takes a factory that returns a fresh, empty store, and panics (as tests
//! do) when the store breaks the contract of [`IssueStore`]. Run all of them with
//! [`run_conformance_suite`]:
//!
//! ```
//! use autopack_issues::{MemoryIssueStore, testing};
//! testing::run_conformance_suite(MemoryIssueStore::new);
//! ```
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use autopack_core::ids::{IssueKey, PhaseId, RunId, TierId};
use autopack_core::vocabulary::{
    Complexity, IssueCategory, IssueSource, IssueStatus, Severity, TaskCategory,
};
use chrono::{DateTime, TimeZone, Utc};

use crate::Ledger;
use crate::aging::AgingThresholds;
use crate::ledger::{IssueObservation, ReportedIssue};
use crate::store::{Checkpoint, IssueStore, JournaledLedger, LedgerEvent};

/// A fixed time, `2025-11-23T11:16:17Z` plus `seconds`.
pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_763_896_577 + seconds, 0)
        .single()
        .unwrap_or_default()
}

/// An observation of `key` (minor, `test`, category `test_failure`) in phase
/// `{tier}-p{phase_index}` of `run`.
pub fn observation(run: &str, tier: &str, phase_index: u32, key: &str) -> IssueObservation {
    IssueObservation {
        run_id: RunId::new(run).unwrap(),
        tier_id: TierId::new(tier).unwrap(),
        phase_index,
        phase_id: PhaseId::new(format!("{tier}-p{phase_index}")).unwrap(),
        task_category: TaskCategory::Tests,
        complexity: Complexity::Low,
        issue: ReportedIssue {
            issue_key: IssueKey::new(key).unwrap(),
            severity: Severity::Minor,
            source: IssueSource::Test,
            category: IssueCategory::new("test_failure").unwrap(),
            expected_fail: false,
            evidence_refs: vec![format!("tests/test_{key}.py")],
        },
    }
}

fn record_event(seconds: i64, run: &str, tier: &str, key: &str) -> LedgerEvent {
    LedgerEvent::Record {
        at: at(seconds),
        observation: observation(run, tier, 0, key),
    }
}

/// Runs every check of this module against stores made by `factory`.
pub fn run_conformance_suite<S: IssueStore>(mut factory: impl FnMut() -> S) {
    empty_store_loads_empty(&mut factory);
    appends_are_loaded_in_order(&mut factory);
    checkpoint_keeps_later_entries(&mut factory);
    refuses_stale_or_ahead_checkpoints(&mut factory);
    journaled_ledger_reopens_identically(&mut factory);
    reopened_ledger_keeps_aging_and_regressions(&mut factory);
}

/// A new store has no checkpoint and no journal.
pub fn empty_store_loads_empty<S: IssueStore>(factory: &mut impl FnMut() -> S) {
    let store = factory();
    let stored = store.load().expect("load of an empty store");
    assert!(stored.checkpoint.is_none(), "a new store has no checkpoint");
    assert!(stored.journal.is_empty(), "a new store has no journal");
}

/// Appended events come back in order with strictly increasing sequence numbers.
pub fn appends_are_loaded_in_order<S: IssueStore>(factory: &mut impl FnMut() -> S) {
    let mut store = factory();
    let events = [
        record_event(0, "run-1", "t1", "k1"),
        LedgerEvent::Resolve {
            at: at(1),
            issue_key: IssueKey::new("k1").unwrap(),
        },
        LedgerEvent::SetThresholds {
            thresholds: AgingThresholds { runs: 2, tiers: 1 },
        },
    ];
    let mut seqs = Vec::new();
    for event in &events {
        seqs.push(store.append(event).expect("append"));
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequence numbers increase: {seqs:?}"
    );
    assert!(seqs[0] >= 1, "sequence numbers start at 1 or later");
    let stored = store.load().expect("load");
    assert!(stored.checkpoint.is_none());
    let loaded: Vec<_> = stored
        .journal
        .iter()
        .map(|e| (e.seq, e.event.clone()))
        .collect();
    let expected: Vec<_> = seqs.iter().copied().zip(events.iter().cloned()).collect();
    assert_eq!(loaded, expected, "journal comes back as appended");
}

/// A checkpoint replaces the entries it covers and keeps the later ones.
pub fn checkpoint_keeps_later_entries<S: IssueStore>(factory: &mut impl FnMut() -> S) {
    let mut store = factory();
    let mut ledger = Ledger::new(AgingThresholds::default());
    let mut last = 0;
    for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
        let event = record_event(i as i64, "run-1", "t1", key);
        last = store.append(&event).expect("append");
        ledger.apply_event(&event).expect("apply");
    }
    let checkpoint = Checkpoint {
        through: last,
        snapshot: ledger.snapshot(),
    };
    store.save_checkpoint(&checkpoint).expect("save checkpoint");
    let later = record_event(10, "run-2", "t1", "a");
    let later_seq = store.append(&later).expect("append after checkpoint");
    assert!(
        later_seq > last,
        "sequence numbers keep increasing after a checkpoint"
    );
    let stored = store.load().expect("load");
    assert_eq!(
        stored.checkpoint.as_ref(),
        Some(&checkpoint),
        "checkpoint comes back equal"
    );
    let journal: Vec<_> = stored
        .journal
        .iter()
        .map(|e| (e.seq, e.event.clone()))
        .collect();
    assert_eq!(
        journal,
        vec![(later_seq, later)],
        "only entries after the checkpoint remain"
    );
}

/// A checkpoint older than the stored one, or ahead of the journal, is refused.
pub fn refuses_stale_or_ahead_checkpoints<S: IssueStore>(factory: &mut impl FnMut() -> S) {
    let mut store = factory();
    let snapshot = Ledger::new(AgingThresholds::default()).snapshot();
    let s1 = store
        .append(&record_event(0, "run-1", "t1", "a"))
        .expect("append");
    let s2 = store
        .append(&record_event(1, "run-1", "t1", "b"))
        .expect("append");
    assert!(
        store
            .save_checkpoint(&Checkpoint {
                through: s2 + 100,
                snapshot: snapshot.clone()
            })
            .is_err(),
        "a checkpoint ahead of the journal is refused"
    );
    store
        .save_checkpoint(&Checkpoint {
            through: s2,
            snapshot: snapshot.clone(),
        })
        .expect("save");
    assert!(
        store
            .save_checkpoint(&Checkpoint {
                through: s1,
                snapshot
            })
            .is_err(),
        "a checkpoint older than the stored one is refused"
    );
}

/// A [`JournaledLedger`] reopened from its store, with or without a checkpoint, holds the
/// same views.
pub fn journaled_ledger_reopens_identically<S: IssueStore>(factory: &mut impl FnMut() -> S) {
    let thresholds = AgingThresholds::default();
    let mut journaled = JournaledLedger::open(factory(), thresholds).expect("open empty");
    for (i, (run, tier, key)) in [
        ("run-1", "t1", "a"),
        ("run-1", "t2", "a"),
        ("run-1", "t1", "b"),
        ("run-2", "t1", "b"),
    ]
    .into_iter()
    .enumerate()
    {
        journaled
            .record(&observation(run, tier, 0, key), at(i as i64))
            .expect("record");
    }
    let before = journaled.ledger().snapshot();
    let (_, store) = journaled.into_parts();
    let mut reopened = JournaledLedger::open(store, thresholds).expect("reopen from journal");
    assert_eq!(
        reopened.ledger().snapshot(),
        before,
        "replayed journal gives the same state"
    );
    reopened.checkpoint().expect("checkpoint");
    reopened
        .record(&observation("run-3", "t1", 0, "c"), at(10))
        .expect("record");
    let after = reopened.ledger().snapshot();
    let (_, store) = reopened.into_parts();
    let again = JournaledLedger::open(store, thresholds).expect("reopen from checkpoint");
    assert_eq!(
        again.ledger().snapshot(),
        after,
        "checkpoint plus journal gives the same state"
    );
}

/// Aging and regressions survive a reopen: a run seen before a checkpoint is not counted
/// again after it, and a key resolved before it is a regression after it.
pub fn reopened_ledger_keeps_aging_and_regressions<S: IssueStore>(factory: &mut impl FnMut() -> S) {
    let thresholds = AgingThresholds { runs: 3, tiers: 10 };
    let mut journaled = JournaledLedger::open(factory(), thresholds).expect("open empty");
    journaled
        .record(&observation("run-1", "t1", 0, "k"), at(0))
        .expect("record");
    journaled
        .record(&observation("run-1", "t1", 0, "gone"), at(0))
        .expect("record");
    let key = IssueKey::new("gone").unwrap();
    journaled.resolve(&key, at(1)).expect("resolve");
    journaled.checkpoint().expect("checkpoint");
    let (_, store) = journaled.into_parts();
    let mut reopened = JournaledLedger::open(store, thresholds).expect("reopen");
    let repeat = reopened
        .record(&observation("run-1", "t1", 0, "k"), at(2))
        .expect("record");
    assert!(
        !repeat.aged_in_runs && !repeat.aged_in_tiers,
        "same run and tier do not age again"
    );
    let back = reopened
        .record(&observation("run-2", "t1", 0, "gone"), at(3))
        .expect("record");
    assert!(back.regression, "a resolved key seen again is a regression");
    assert_eq!(reopened.ledger().status(&key), Some(IssueStatus::Open));
    let entry = reopened
        .ledger()
        .backlog_entry(&IssueKey::new("k").unwrap())
        .expect("entry");
    assert_eq!(
        (
            entry.age_in_runs,
            entry.age_in_tiers,
            entry.occurrence_count
        ),
        (1, 1, 2)
    );
}

/// The first implementation's issue mix, generated on the fly and the same on every
/// machine: 70% of the records are new keys, 30% repeat a key this writer saw earlier
/// (drawn uniformly from all its keys so far, so repeats land in earlier runs' keys too);
/// 2% of the reports are `major`; runs of 10,000 records, each of 4 tiers × 5 phases (500
/// records a phase). The benchmarks of every issue store record it.
#[derive(Debug, Clone)]
pub struct FirstImplementationMix {
    rng: u64,
    keys: u64,
    /// Put before run ids and keys, so that several writers' mixes do not share them.
    prefix: String,
}

impl FirstImplementationMix {
    /// The mix of one writer (runs `run-0000`…, keys `issue_00000000`…).
    pub fn new() -> FirstImplementationMix {
        FirstImplementationMix::for_writer("")
    }

    /// The mix of writer `prefix` (a host): its own runs and new keys, prefixed.
    pub fn for_writer(prefix: &str) -> FirstImplementationMix {
        FirstImplementationMix {
            rng: 0x9e37_79b9_7f4a_7c15,
            keys: 0,
            prefix: prefix.to_owned(),
        }
    }

    /// A deterministic xorshift step (no dependency, same sequence everywhere).
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Record `i` (from 0) of the mix.
    pub fn observation(&mut self, i: u64) -> IssueObservation {
        let run = i / 10_000;
        let phase = (i % 10_000) / 500;
        let tier = phase / 5;
        let roll = self.next();
        let key = if self.keys == 0 || roll % 10 < 7 {
            self.keys += 1;
            self.keys - 1
        } else {
            (roll >> 8) % self.keys
        };
        let prefix = &self.prefix;
        let mut obs = observation(
            &format!("run-{prefix}{run:04}"),
            &format!("t{tier}"),
            phase as u32,
            &format!("issue_{prefix}{key:08}"),
        );
        if (roll >> 40).is_multiple_of(50) {
            obs.issue.severity = Severity::Major;
        }
        obs
    }
}

impl Default for FirstImplementationMix {
    fn default() -> FirstImplementationMix {
        FirstImplementationMix::new()
    }
}
