//! # autopack-issues
//!
//! The issue ledger: the record that keeps silent failures from being ignored
//! forever. One call, [`Ledger::record`], files an issue seen in a phase at three levels —
//! the phase issue file, the run issue index and the project backlog — and says what
//! changed ([`RecordOutcome`]): a new key, a repeat, a severity upgrade, a key that has
//! aged into `needs_cleanup`, a regression of a resolved key. The playbook JSON views
//! ([`PhaseIssueFile`], [`RunIssueIndex`], [`ProjectBacklog`]) are materialised from that
//! state on demand. The ledger is pure: it takes data (and the current time) and returns
//! data. [`IssueStore`] keeps it (a journal plus checkpoints); [`MemoryIssueStore`] is the
//! in-memory implementation and `testing` (feature `testing`) the conformance suite.
//!
//! ```
//! use autopack_core::ids::{IssueKey, PhaseId, RunId, TierId};
//! use autopack_core::vocabulary::{
//!     Complexity, IssueCategory, IssueSource, IssueStatus, SafetyProfile, Severity, TaskCategory,
//! };
//! use autopack_issues::{AgingThresholds, IssueObservation, Ledger, Novelty, ReportedIssue};
//! use chrono::{TimeZone, Utc};
//!
//! let mut ledger = Ledger::new(AgingThresholds::for_profile(SafetyProfile::Normal));
//! let observe = |run: &str, tier: &str| IssueObservation {
//!     run_id: RunId::new(run).unwrap(),
//!     tier_id: TierId::new(tier).unwrap(),
//!     phase_index: 0,
//!     phase_id: PhaseId::new(format!("{tier}-p0")).unwrap(),
//!     task_category: TaskCategory::Tests,
//!     complexity: Complexity::Low,
//!     issue: ReportedIssue {
//!         issue_key: IssueKey::new("test_failure__missing_assert").unwrap(),
//!         severity: Severity::Minor,
//!         source: IssueSource::Test,
//!         category: IssueCategory::new("test_failure").unwrap(),
//!         expected_fail: false,
//!         evidence_refs: vec!["tests/test_users.py::test_indexes".into()],
//!     },
//! };
//! let now = Utc.with_ymd_and_hms(2025, 11, 23, 11, 16, 17).unwrap();
//! let key = IssueKey::new("test_failure__missing_assert").unwrap();
//!
//! let first = ledger.record(&observe("run-1", "t1"), now).unwrap();
//! assert_eq!(first.novelty, Novelty::NewInProject);
//! // Seen again in the same phase: a repeat, no aging.
//! let again = ledger.record(&observe("run-1", "t1"), now).unwrap();
//! assert_eq!(again.novelty, Novelty::Repeat);
//! assert!(!again.aged_in_runs && !again.aged_in_tiers);
//! // A second tier of the same run reaches the `normal` tier threshold (2).
//! let aged = ledger.record(&observe("run-1", "t2"), now).unwrap();
//! assert!(aged.newly_needs_cleanup);
//! assert_eq!(ledger.status(&key), Some(IssueStatus::NeedsCleanup));
//!
//! let index = ledger.run_issue_index(&RunId::new("run-1").unwrap());
//! assert_eq!(index.issues_by_key[&key].occurrence_count, 3);
//! assert_eq!(ledger.backlog().issues_by_key[&key].age_in_runs, 1);
//! ```
//!
//! ## Rules (each backed by a test)
//! - Invariant: counts are of distinct keys by effective severity, never occurrences; a
//!   repeat raises `occurrence_count` only.
//! - Invariant: `age_in_runs` is the number of distinct runs that saw a key and
//!   `age_in_tiers` the number of distinct tier ids that saw it: a tier of the plan seen
//!   again in a later run does not age the key again (the runs threshold counts that),
//!   while a key that shows up across several tiers is cross-cutting debt and ages by
//!   tiers. (Counting `(run_id, tier_id)` pairs would make every run age a key in tiers
//!   too, so the tiers threshold would always fire before the runs threshold.)
//! - Invariant: severities never go down. The backlog's `base_severity` is the highest
//!   severity ever reported. A key's *effective* severity in a run is the highest it was
//!   reported in that run, raised to the backlog's effective severity at the moment the run
//!   first saw the key (`major` if it was already `needs_cleanup` or once reported
//!   `major`). It is the same in every phase of the run, so an upgrade in one phase shows
//!   in every phase file of the run. Aging that happens during a run counts from the next
//!   run on ([`BacklogView::aging_report`]).
//! - A minor key whose ages reach a threshold ([`AgingThresholds`], `normal` 3 runs / 2
//!   tiers, `safety_critical` 2 / 1) becomes `needs_cleanup` as it is recorded.
//!   [`Ledger::set_thresholds`] applies new thresholds to every key at once. Only minor
//!   keys need cleanup: a `needs_cleanup` key re-reported as `major` becomes `open` (it is
//!   effective major either way), so a key's status does not depend on the order of its
//!   reports.
//! - A resolved key seen again is reopened (`open`, or `needs_cleanup` if its ages say so:
//!   ages continue, they are history), its `regression_count` rises and the outcome says
//!   `regression`.
//! - A phase is fixed by its first record in a run: a later record of the same `phase_id`
//!   with another `phase_index`, `tier_id`, `task_category` or `complexity` is a
//!   [`LedgerError::PhaseConflict`] naming the field, and nothing is recorded. Invalid
//!   keys, ids and unknown severities cannot be built (autopack-core's types), and when
//!   read from JSON the error names the JSON path.
//! - Descriptive fields of a phase's issue record (`source`, `category`,
//!   `expected_fail`) are those of its first report in the phase; `evidence_refs`
//!   accumulate, distinct, in the order reported. A run's `first_phase_index` and
//!   `last_phase_index` are the smallest and largest phase index that saw the key, so the
//!   views do not depend on recording order within a run.
//! - Timestamps are written as RFC 3339 UTC and read in that form or the first
//!   implementation's naive ISO form (as UTC). The first implementation's backlog loads
//!   ([`Ledger::from_backlog`]); canonical output round-trips byte for byte.
//!
//! ## Views that follow changes
//! [`Ledger::track_changes`] makes the ledger count, per materialised view
//! ([`ViewKey`]: the backlog, a run's index, a phase's file), the changes that may alter
//! it; [`Ledger::take_changes`] hands them over, so that a store rewrites only those
//! views (`autopack-layout` does). Invariant (property test `tests/changes.rs`): every
//! view whose content a change alters is reported. Off by default.
//!
//! Benchmarks, their goals and every figure: `PERFORMANCE.md` in the repository.

// The README's example runs as a doctest too, so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod aging;
pub mod changes;
mod ledger;
mod model;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod time;

pub use aging::{AgingReport, AgingThresholds, BacklogItem, BacklogView};
pub use changes::ViewKey;
pub use ledger::{
    IssueObservation, KeyAge, Ledger, LedgerError, LedgerSnapshot, LoadError, Novelty,
    RecordOutcome, ReportedIssue, ResolveOutcome, RunSnapshot, SeverityUpgrade, TopBy,
};
pub use model::{
    BacklogEntry, IssueCounts, IssueRecord, PhaseIssueFile, ProjectBacklog, RunIssueEntry,
    RunIssueIndex, TierSighting,
};
pub use store::{
    Checkpoint, IssueStore, JournalEntry, JournalError, JournaledLedger, LedgerEvent,
    MemoryIssueStore, MemoryStoreError, OpenError, StoredIssues,
};
