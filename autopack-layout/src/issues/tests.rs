//! Unit tests of the issue ledger on disk: views on disk against the ledger's history,
//! crashes at every write of a checkpoint, and the rewrite policy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use autopack_core::ids::IssueKey;
use autopack_core::vocabulary::Severity;
use autopack_issues::{
    AgingThresholds, IssueObservation, Ledger, PhaseIssueFile, ProjectBacklog, RunIssueIndex,
    ViewKey, testing,
};
use proptest::prelude::*;

use super::manifest::ManifestRead;
use super::views::{SMALL_VIEW_FOR_TESTS, view_path};
use super::{FsIssueLedger, FsIssueStore};
use crate::fsio;
use crate::journal::FsyncPolicy;
use crate::paths::RunsRoot;

#[derive(Debug, Clone)]
enum Op {
    /// (run, tier, phase within tier, key, major?)
    Record(u8, u8, u8, u16, bool),
    Resolve(u16),
    Checkpoint,
    CheckpointAll,
}

fn observation(run: u8, tier: u8, phase: u8, key: u16, major: bool) -> IssueObservation {
    let mut obs = testing::observation(
        &format!("run-{run}"),
        &format!("t{tier}"),
        u32::from(tier) * 10 + u32::from(phase),
        &format!("k{key}"),
    );
    if major {
        obs.issue.severity = Severity::Major;
    }
    obs
}

/// Every view of `ledger` as typed JSON values (comparable whatever the formatting).
fn views_of(ledger: &Ledger, root: &RunsRoot) -> BTreeMap<String, serde_json::Value> {
    ledger
        .views()
        .into_iter()
        .filter_map(|view| {
            let value = match &view {
                ViewKey::Backlog => serde_json::to_value(ledger.backlog()).unwrap(),
                ViewKey::RunIndex { run_id } => {
                    serde_json::to_value(ledger.run_issue_index(run_id)).unwrap()
                }
                ViewKey::PhaseFile {
                    run_id, phase_id, ..
                } => serde_json::to_value(ledger.phase_issue_file(run_id, phase_id)?).unwrap(),
            };
            let files = crate::project::LedgerFiles::unsuffixed(root, None);
            Some((
                super::views::rel(root, &view_path(root, &files, &view)),
                value,
            ))
        })
        .collect()
}

/// A view file on disk, parsed with this crate's readers.
fn read_view(root: &RunsRoot, rel: &str) -> serde_json::Value {
    let path = root.dir().join(rel);
    let value = if rel.ends_with("project_issue_backlog.json") {
        serde_json::to_value(fsio::read_json::<ProjectBacklog>(&path).unwrap().unwrap())
    } else if rel.ends_with("run_issue_index.json") {
        serde_json::to_value(fsio::read_json::<RunIssueIndex>(&path).unwrap().unwrap())
    } else {
        serde_json::to_value(fsio::read_json::<PhaseIssueFile>(&path).unwrap().unwrap())
    };
    value.unwrap()
}

fn manifest(root: &RunsRoot) -> super::manifest::Manifest {
    let store = FsIssueStore::new(root.clone(), FsyncPolicy::AtCheckpoints);
    match store.read_manifest().unwrap() {
        ManifestRead::Current(m) => m,
        other => panic!("no current manifest: {other:?}"),
    }
}

fn open(root: &RunsRoot) -> FsIssueLedger {
    FsIssueLedger::open(
        root.clone(),
        AgingThresholds::default(),
        FsyncPolicy::AtCheckpoints,
    )
    .unwrap()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0u8..2, 0u8..2, 0u8..2, 0u16..24, proptest::bool::weighted(0.1))
            .prop_map(|(r, t, p, k, m)| Op::Record(r, t, p, k, m)),
        1 => (0u16..24).prop_map(Op::Resolve),
        3 => Just(Op::Checkpoint),
        1 => Just(Op::CheckpointAll),
    ]
}

/// Applies `op`; returns whether it journaled an event.
fn apply(ledger: &mut FsIssueLedger, op: &Op, i: usize) -> bool {
    let at = testing::at(i as i64);
    match *op {
        Op::Record(r, t, p, k, m) => {
            ledger.record(&observation(r, t, p, k, m), at).unwrap();
            true
        }
        Op::Resolve(k) => ledger
            .resolve(&IssueKey::new(format!("k{k}")).unwrap(), at)
            .is_ok(),
        Op::Checkpoint => {
            ledger.checkpoint().unwrap();
            false
        }
        Op::CheckpointAll => {
            ledger.checkpoint_all().unwrap();
            false
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// After any sequence of records and checkpoints, every view file is exactly the
    /// ledger's view as of the sequence number the manifest records for it; a large view
    /// lags by fewer than half its entries; after `checkpoint_all` every file is the full
    /// rebuild, and a reopened ledger is the same ledger.
    #[test]
    fn incremental_views_match_the_ledger_history(
        ops in proptest::collection::vec(op(), 1..60),
        small in 2usize..6,
    ) {
        SMALL_VIEW_FOR_TESTS.with(|s| s.set(Some(small)));
        let dir = tempfile::tempdir().unwrap();
        let root = RunsRoot::new(dir.path().join(".autonomous_runs"));
        let mut ledger = open(&root);
        // The views after each sequence number (seq 0: empty).
        let mut history = vec![views_of(ledger.ledger(), &root)];
        for (i, op) in ops.iter().enumerate() {
            if apply(&mut ledger, op, i) {
                history.push(views_of(ledger.ledger(), &root));
            }
            if matches!(op, Op::Checkpoint | Op::CheckpointAll) {
                let m = manifest(&root);
                for (rel, stamp) in &m.views {
                    let at = &history[stamp.through as usize];
                    prop_assert_eq!(&read_view(&root, rel), &at[rel], "{} through {}", rel, stamp.through);
                }
                let now = history.last().unwrap();
                for (rel, current) in now {
                    let Some(stamp) = m.views.get(rel) else {
                        prop_assert!(false, "{} never written", rel);
                        continue;
                    };
                    let entries = current["issues_by_key"].as_object().map_or_else(
                        || current["issues"].as_array().map_or(0, Vec::len),
                        serde_json::Map::len,
                    );
                    let then = &history[stamp.through as usize][rel];
                    if then != current {
                        prop_assert!(
                            entries > small && !matches!(op, Op::CheckpointAll),
                            "{} lags although small ({} entries) or all were due", rel, entries
                        );
                    }
                }
            }
        }
        ledger.checkpoint_all().unwrap();
        let now = history.last().unwrap();
        for (rel, current) in now {
            prop_assert_eq!(&read_view(&root, rel), current, "{}", rel);
        }
        prop_assert!(ledger.lagging_views().is_empty());
        let mut reopened = open(&root);
        prop_assert!(reopened.take_repairs().is_empty());
        prop_assert_eq!(reopened.ledger().snapshot(), ledger.ledger().snapshot());
        SMALL_VIEW_FOR_TESTS.with(|s| s.set(None));
    }
}

/// A fixed scenario: two runs, tiers and phases, repeats, an upgrade, a resolve, with
/// checkpoints in between.
fn scenario() -> Vec<Op> {
    let mut ops = Vec::new();
    for i in 0..40u16 {
        ops.push(Op::Record(
            (i / 20) as u8,
            ((i / 5) % 2) as u8,
            (i % 2) as u8,
            i % 13,
            i % 17 == 0,
        ));
        if i % 7 == 6 {
            ops.push(Op::Checkpoint);
        }
        if i == 25 {
            ops.push(Op::Resolve(3));
        }
    }
    ops.push(Op::Checkpoint);
    ops
}

#[test]
fn a_crash_at_any_write_of_a_checkpoint_loses_nothing() {
    SMALL_VIEW_FOR_TESTS.with(|s| s.set(Some(3)));
    let mut step = 0;
    loop {
        let dir = tempfile::tempdir().unwrap();
        let root = RunsRoot::new(dir.path().join(".autonomous_runs"));
        let mut ledger = open(&root);
        let mut expected = Ledger::new(AgingThresholds::default());
        crate::fsio::fail::arm(Some(step));
        let mut crashed = false;
        for (i, op) in scenario().iter().enumerate() {
            let at = testing::at(i as i64);
            let result = match *op {
                Op::Record(r, t, p, k, m) => {
                    let obs = observation(r, t, p, k, m);
                    expected.record(&obs, at).unwrap();
                    ledger.record(&obs, at).map(drop)
                }
                Op::Resolve(k) => {
                    let key = IssueKey::new(format!("k{k}")).unwrap();
                    expected.resolve(&key, at).unwrap();
                    ledger.resolve(&key, at).map(drop)
                }
                Op::Checkpoint => ledger.checkpoint(),
                Op::CheckpointAll => ledger.checkpoint_all(),
            };
            if let Err(e) = result {
                assert!(crate::fsio::fail::injected(), "step {step}: {e}");
                crashed = true;
                break;
            }
        }
        crate::fsio::fail::arm(None);
        drop(ledger);
        // The process died at that write; a new one opens the store.
        let mut reopened = open(&root);
        assert_eq!(
            reopened.ledger().snapshot(),
            expected.snapshot(),
            "step {step}: the reopened ledger is the one journaled"
        );
        reopened.checkpoint_all().unwrap();
        for (rel, current) in views_of(reopened.ledger(), &root) {
            assert_eq!(read_view(&root, &rel), current, "step {step}: {rel}");
        }
        let mut again = open(&root);
        assert!(again.take_repairs().is_empty(), "step {step}");
        if !crashed {
            assert!(step > 20, "the scenario has writes to crash at ({step})");
            break;
        }
        step += 1;
    }
    SMALL_VIEW_FOR_TESTS.with(|s| s.set(None));
}

#[test]
fn a_large_view_is_rewritten_once_half_of_it_changed() {
    SMALL_VIEW_FOR_TESTS.with(|s| s.set(Some(10)));
    let dir = tempfile::tempdir().unwrap();
    let root = RunsRoot::new(dir.path().join(".autonomous_runs"));
    let mut ledger = open(&root);
    let backlog = root.backlog();
    let mut rewrites = Vec::new();
    for k in 0..200u16 {
        // Ten phases of 20 keys: phase files stay small, the backlog grows.
        ledger
            .record(&observation(0, 0, (k / 20) as u8, k, false), testing::at(0))
            .unwrap();
        let before = std::fs::read(&backlog).ok();
        ledger.checkpoint().unwrap();
        if std::fs::read(&backlog).ok() != before {
            rewrites.push(k + 1);
        }
        let on_disk: ProjectBacklog = fsio::read_json(&backlog).unwrap().unwrap();
        let lag = usize::from(k + 1) - on_disk.issues_by_key.len();
        assert!(
            lag * 2 <= usize::from(k + 1) || k < 10,
            "after {} keys the backlog file lacks {lag}",
            k + 1
        );
    }
    // Written while small, then at sizes that double.
    assert_eq!(rewrites[..10], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert!(rewrites.len() < 20, "{rewrites:?}");
    ledger.checkpoint_all().unwrap();
    let on_disk: ProjectBacklog = fsio::read_json(&backlog).unwrap().unwrap();
    assert_eq!(on_disk, ledger.ledger().backlog());
    SMALL_VIEW_FOR_TESTS.with(|s| s.set(None));
}

#[test]
fn the_ledger_journal_is_a_hash_chain_and_an_edit_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = RunsRoot::new(dir.path().join(".autonomous_runs"));
    let mut ledger = open(&root);
    for k in 0..5u16 {
        ledger
            .record(&observation(0, 0, 0, k, false), testing::at(i64::from(k)))
            .unwrap();
    }
    drop(ledger);
    let journal = root.dir().join(super::ISSUE_JOURNAL_FILE);
    let text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Each line links to the one before it; the first to zero.
    let mut prev = autopack_core::journal::chain::Digest::ZERO;
    for line in &lines {
        assert!(line.contains(&format!("\"prev\":\"{prev}\"")), "{line}");
        prev = autopack_core::journal::chain::Digest::of(line.as_bytes());
    }
    // Reopening checks the chain, and appends go on from its head.
    let mut ledger = open(&root);
    ledger
        .record(&observation(1, 0, 0, 99, false), testing::at(9))
        .unwrap();
    drop(ledger);
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains(&format!("\"prev\":\"{prev}\""))
    );

    // An event edited in the middle: the next line's link breaks, named by line.
    let edited = text.replacen("\"k2\"", "\"k7\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&journal, &edited).unwrap();
    let err = FsIssueLedger::open(
        root.clone(),
        AgingThresholds::default(),
        FsyncPolicy::AtCheckpoints,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("project_issue_journal.jsonl"), "{err}");
    assert!(
        err.contains("line 4") && err.contains("hash chain"),
        "{err}"
    );
}
