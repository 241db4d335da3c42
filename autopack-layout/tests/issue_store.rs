//! The filesystem issue store beyond the conformance suite: views materialised at
//! checkpoints only, legacy backlog import, half-written checkpoints, corrupt views.

use autopack_core::ids::{PhaseId, RunId};
use autopack_issues::{AgingThresholds, IssueStore, ProjectBacklog, testing};
use autopack_layout::issues::FsIssueLedger;
use autopack_layout::{FsIssueStore, FsyncPolicy, RunsRoot, fsio};

fn open(root: &RunsRoot) -> FsIssueLedger {
    FsIssueLedger::open(
        root.clone(),
        AgingThresholds::default(),
        FsyncPolicy::AtCheckpoints,
    )
    .unwrap()
}

#[test]
fn views_are_materialised_at_checkpoints_not_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let root = RunsRoot::new(dir.path().join(".autonomous_runs"));
    let mut ledger = open(&root);
    ledger
        .record(
            &testing::observation("run-1", "t1", 0, "k1"),
            testing::at(0),
        )
        .unwrap();
    ledger
        .record(
            &testing::observation("run-1", "t1", 0, "k1"),
            testing::at(1),
        )
        .unwrap();
    assert!(!root.backlog().exists(), "no view is written per record");
    ledger.checkpoint().unwrap();
    let run = RunId::new("run-1").unwrap();
    let phase = PhaseId::new("t1-p0").unwrap();
    let backlog: ProjectBacklog = fsio::read_json(&root.backlog()).unwrap().unwrap();
    assert_eq!(backlog.issues_by_key.len(), 1);
    let file: autopack_issues::PhaseIssueFile =
        fsio::read_json(&root.phase_issues(&run, 0, &phase))
            .unwrap()
            .unwrap();
    assert_eq!(file.issues[0].occurrence_count, 2);
    assert!(root.run_issue_index(&run).exists());

    // An unchanged view is not rewritten at the next checkpoint.
    let before = std::fs::metadata(root.phase_issues(&run, 0, &phase))
        .unwrap()
        .modified()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    ledger
        .record(
            &testing::observation("run-1", "t1", 1, "k2"),
            testing::at(2),
        )
        .unwrap();
    ledger.checkpoint().unwrap();
    let after = std::fs::metadata(root.phase_issues(&run, 0, &phase))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);

    // Reopening gives the same ledger.
    assert_eq!(open(&root).ledger().snapshot(), ledger.ledger().snapshot());
}

#[test]
fn a_half_written_checkpoint_falls_back_to_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let root = RunsRoot::new(dir.path());
    let mut ledger = open(&root);
    ledger
        .record(
            &testing::observation("run-1", "t1", 0, "k1"),
            testing::at(0),
        )
        .unwrap();
    ledger.checkpoint().unwrap();
    ledger
        .record(
            &testing::observation("run-1", "t1", 0, "k1"),
            testing::at(1),
        )
        .unwrap();
    let expected = ledger.ledger().snapshot();
    // A crash after the backlog view was rewritten, before the manifest was: simulate by
    // rewriting the backlog as the next checkpoint would have.
    let newer = ledger.ledger().backlog();
    fsio::write_json_atomic(&root.backlog(), &newer).unwrap();
    let reopened = open(&root);
    assert_eq!(
        reopened.ledger().snapshot(),
        expected,
        "nothing lost, nothing counted twice"
    );
}

/// A ledger with one checkpointed record in run-1, phase 0.
fn checkpointed(root: &RunsRoot) -> FsIssueLedger {
    let mut ledger = open(root);
    for (i, key) in ["k1", "k2"].into_iter().enumerate() {
        ledger
            .record(
                &testing::observation("run-1", "t1", 0, key),
                testing::at(i as i64),
            )
            .unwrap();
    }
    ledger.checkpoint().unwrap();
    ledger
}

#[test]
fn a_truncated_or_corrupt_view_is_rebuilt_from_the_journal_and_reported() {
    let run = RunId::new("run-1").unwrap();
    let phase = PhaseId::new("t1-p0").unwrap();
    for damaged in ["backlog", "index", "phase", "manifest", "missing"] {
        let dir = tempfile::tempdir().unwrap();
        let root = RunsRoot::new(dir.path());
        let expected = checkpointed(&root).ledger().snapshot();
        let path = match damaged {
            "backlog" | "missing" => root.backlog(),
            "index" => root.run_issue_index(&run),
            "phase" => root.phase_issues(&run, 0, &phase),
            _ => root
                .dir()
                .join(autopack_layout::issues::ISSUE_CHECKPOINT_FILE),
        };
        let intact = std::fs::read_to_string(&path).unwrap();
        if damaged == "missing" {
            std::fs::remove_file(&path).unwrap();
        } else {
            std::fs::write(&path, &intact[..intact.len() - 10]).unwrap();
        }
        let mut ledger = open(&root);
        let repairs = ledger.take_repairs();
        assert!(
            repairs.iter().any(|r| r.path == path),
            "{damaged}: {repairs:?}"
        );
        assert_eq!(ledger.ledger().snapshot(), expected, "{damaged}");
        // Rebuilt at once, whole again.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), intact, "{damaged}");
        assert!(open(&root).take_repairs().is_empty(), "{damaged}");
    }
}

#[test]
fn a_view_written_by_something_else_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let root = RunsRoot::new(dir.path());
    let expected = checkpointed(&root).ledger().backlog();
    // Valid JSON of the right shape, but not what the checkpoint wrote.
    fsio::write_json_atomic(&root.backlog(), &ProjectBacklog::default()).unwrap();
    let mut ledger = open(&root);
    assert_eq!(ledger.take_repairs().len(), 1);
    let on_disk: ProjectBacklog = fsio::read_json(&root.backlog()).unwrap().unwrap();
    assert_eq!(on_disk, expected);
}

#[test]
fn a_journal_corrupt_before_its_end_is_an_error_naming_the_line_and_repair_can_cut_it() {
    use autopack_layout::issues::{RepairOptions, repair};
    let dir = tempfile::tempdir().unwrap();
    let root = RunsRoot::new(dir.path());
    let mut ledger = checkpointed(&root);
    for key in ["k3", "k4"] {
        ledger
            .record(&testing::observation("run-1", "t1", 1, key), testing::at(9))
            .unwrap();
    }
    ledger.checkpoint().unwrap();
    drop(ledger);
    let journal = root.dir().join(autopack_layout::issues::ISSUE_JOURNAL_FILE);
    let text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    let damaged = format!(
        "{}\n{}\n{{\"seq\":3,\"ev\n{}\n",
        lines[0], lines[1], lines[3]
    );
    std::fs::write(&journal, &damaged).unwrap();

    let err = FsIssueLedger::open(
        root.clone(),
        AgingThresholds::default(),
        FsyncPolicy::AtCheckpoints,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("line 3"), "{text}");
    assert!(text.contains(&journal.display().to_string()), "{text}");
    let options = |truncate| RepairOptions {
        truncate_corrupt_journal: truncate,
        now: testing::at(0),
    };
    // Without leave to cut, nothing is changed.
    assert!(repair(&root, &options(false)).is_err());
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), damaged);

    let report = repair(&root, &options(true)).unwrap();
    let cut = report.journal_cut.clone().expect("cut");
    assert_eq!(cut.line, 3);
    assert_eq!(
        std::fs::read_to_string(&cut.backup).unwrap(),
        format!("{{\"seq\":3,\"ev\n{}\n", lines[3])
    );
    assert!(cut.backup.to_string_lossy().contains(".corrupt-20251123T"));
    let ledger = open(&root);
    assert_eq!(ledger.ledger().len(), 2, "the entries before the cut");
    let on_disk: ProjectBacklog = fsio::read_json(&root.backlog()).unwrap().unwrap();
    assert_eq!(on_disk, ledger.ledger().backlog());
    // Every view was rewritten from the journal, including the cut run's phase 1.
    assert!(report.views >= 3, "{report:?}");
}

#[test]
fn repair_rebuilds_every_view_of_a_healthy_ledger_identically() {
    use autopack_layout::issues::{RepairOptions, repair};
    let dir = tempfile::tempdir().unwrap();
    let root = RunsRoot::new(dir.path());
    checkpointed(&root);
    let before = std::fs::read_to_string(root.backlog()).unwrap();
    let report = repair(
        &root,
        &RepairOptions {
            truncate_corrupt_journal: false,
            now: testing::at(0),
        },
    )
    .unwrap();
    assert!(report.notes.is_empty() && report.journal_cut.is_none());
    assert_eq!(std::fs::read_to_string(root.backlog()).unwrap(), before);
}

#[test]
fn thresholds_follow_the_run_that_opens_the_ledger() {
    use autopack_core::vocabulary::{IssueStatus, SafetyProfile};
    let dir = tempfile::tempdir().unwrap();
    let root = RunsRoot::new(dir.path());
    let key = autopack_core::ids::IssueKey::new("k1").unwrap();
    // A normal run sees a minor key in one tier and checkpoints: open.
    let normal = AgingThresholds::for_profile(SafetyProfile::Normal);
    let mut ledger = FsIssueLedger::open(root.clone(), normal, FsyncPolicy::AtCheckpoints).unwrap();
    ledger
        .record(
            &testing::observation("run-1", "t1", 0, "k1"),
            testing::at(0),
        )
        .unwrap();
    ledger.checkpoint().unwrap();
    assert_eq!(ledger.ledger().status(&key), Some(IssueStatus::Open));
    drop(ledger);
    // A safety_critical run (2 runs / 1 tier) opens it: the key, seen in one tier, needs
    // cleanup for the ledger as for the strategy.
    let critical = AgingThresholds::for_profile(SafetyProfile::SafetyCritical);
    let mut ledger =
        FsIssueLedger::open(root.clone(), critical, FsyncPolicy::AtCheckpoints).unwrap();
    assert_eq!(ledger.ledger().thresholds(), critical);
    assert_eq!(
        ledger.ledger().status(&key),
        Some(IssueStatus::NeedsCleanup)
    );
    ledger.checkpoint().unwrap();
    let on_disk: ProjectBacklog = fsio::read_json(&root.backlog()).unwrap().unwrap();
    assert_eq!(
        on_disk.issues_by_key[&key].status,
        IssueStatus::NeedsCleanup
    );
    // Journaled: a reader that keeps the thresholds sees the same.
    let reader =
        FsIssueLedger::open_keeping_thresholds(root.clone(), FsyncPolicy::AtCheckpoints).unwrap();
    assert_eq!(reader.ledger().thresholds(), critical);
    assert_eq!(
        reader.ledger().status(&key),
        Some(IssueStatus::NeedsCleanup)
    );
    // Opening again with the same thresholds journals nothing.
    let journal = root.dir().join(autopack_layout::issues::ISSUE_JOURNAL_FILE);
    let lines = std::fs::read_to_string(&journal).unwrap().lines().count();
    FsIssueLedger::open(root.clone(), critical, FsyncPolicy::AtCheckpoints).unwrap();
    assert_eq!(
        std::fs::read_to_string(&journal).unwrap().lines().count(),
        lines
    );
}

#[test]
fn a_first_implementation_backlog_one_level_up_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let root = RunsRoot::new(dir.path().join(".autonomous_runs"));
    let legacy = r#"{
  "project_id": "TestProject",
  "issues_by_key": {
    "old_minor_issue": {
      "category": "test_failure",
      "base_severity": "minor",
      "age_in_runs": 2,
      "age_in_tiers": 2,
      "last_seen_run_id": "test-run-001",
      "last_seen_at": "2025-11-23T11:16:17.067335",
      "status": "open"
    }
  }
}"#;
    std::fs::write(dir.path().join("project_issue_backlog.json"), legacy).unwrap();
    let mut ledger = open(&root);
    let backlog = ledger.ledger().backlog();
    assert_eq!(backlog.issues_by_key.len(), 1);
    assert_eq!(backlog.project_id.as_ref().unwrap().as_str(), "TestProject");
    // Its status is re-evaluated against the thresholds the ledger was opened with (2
    // tiers reach the normal tiers threshold).
    let entry = backlog.issues_by_key.values().next().unwrap();
    assert_eq!(
        entry.status,
        autopack_core::vocabulary::IssueStatus::NeedsCleanup
    );
    // It was written canonically under .autonomous_runs/ (and is the base of the journal).
    ledger.checkpoint().unwrap();
    let canonical: ProjectBacklog = fsio::read_json(&root.backlog()).unwrap().unwrap();
    assert_eq!(canonical, backlog);
    assert!(
        root.dir()
            .join(autopack_layout::issues::ISSUE_BASE_FILE)
            .exists()
    );
    // The import survives a damaged backlog: it is rebuilt from the base and the journal.
    std::fs::write(root.backlog(), "{").unwrap();
    let mut rebuilt = open(&root);
    assert_eq!(rebuilt.take_repairs().len(), 1);
    assert_eq!(rebuilt.ledger().backlog(), backlog);
    ledger
        .record(
            &testing::observation("run-2", "t1", 0, "old_minor_issue"),
            testing::at(0),
        )
        .unwrap();
    ledger.checkpoint().unwrap();
    let entry = &open(&root).ledger().backlog().issues_by_key;
    assert_eq!(entry.values().next().unwrap().age_in_runs, 3);
}

#[test]
fn a_torn_issue_journal_tail_is_cut() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let root = RunsRoot::new(dir.path());
    let mut ledger = open(&root);
    ledger
        .record(
            &testing::observation("run-1", "t1", 0, "k1"),
            testing::at(0),
        )
        .unwrap();
    ledger.store().take_torn_tail();
    let path = ledger.store().journal_path();
    drop(ledger);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{\"seq\":2,\"ev")
        .unwrap();
    let store = FsIssueStore::new(root.clone(), FsyncPolicy::AtCheckpoints);
    let stored = store.load().unwrap();
    assert_eq!(stored.journal.len(), 1);
    assert!(store.take_torn_tail().is_some());
    let mut ledger = open(&root);
    ledger
        .record(
            &testing::observation("run-1", "t1", 0, "k2"),
            testing::at(1),
        )
        .unwrap();
    assert_eq!(open(&root).ledger().backlog().issues_by_key.len(), 2);
}

#[test]
fn events_replayed_at_open_are_materialised_at_the_next_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let root = RunsRoot::new(dir.path());
    let mut ledger = open(&root);
    ledger
        .record(
            &testing::observation("run-1", "t1", 0, "k1"),
            testing::at(0),
        )
        .unwrap();
    ledger.checkpoint().unwrap();
    // Recorded, then the process stops before checkpointing.
    ledger
        .record(
            &testing::observation("run-1", "t1", 0, "k2"),
            testing::at(1),
        )
        .unwrap();
    drop(ledger);
    let mut reopened = open(&root);
    reopened
        .record(
            &testing::observation("run-1", "t1", 1, "k3"),
            testing::at(2),
        )
        .unwrap();
    reopened.checkpoint().unwrap();
    // Every view is consistent: the store reopens through its checkpoint.
    let again = open(&root);
    assert_eq!(again.ledger().snapshot(), reopened.ledger().snapshot());
    let phase = PhaseId::new("t1-p0").unwrap();
    let file: autopack_issues::PhaseIssueFile =
        fsio::read_json(&root.phase_issues(&RunId::new("run-1").unwrap(), 0, &phase))
            .unwrap()
            .unwrap();
    assert_eq!(file.issues.len(), 2);
}
