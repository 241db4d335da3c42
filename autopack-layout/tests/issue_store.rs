//! The filesystem issue store beyond the conformance suite: views materialised at
//! checkpoints only, legacy backlog import, half-written checkpoints, corrupt views.

use autopack_core::ids::{PhaseId, RunId};
use autopack_issues::{AgingThresholds, IssueStore, ProjectBacklog, testing};
use autopack_layout::issues::FsIssueLedger;
use autopack_layout::{FsIssueStore, FsyncPolicy, LayoutError, RunsRoot, fsio};

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

#[test]
fn a_corrupt_view_is_an_error_naming_the_file() {
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
    let text = std::fs::read_to_string(root.backlog()).unwrap();
    std::fs::write(root.backlog(), &text[..text.len() - 10]).unwrap();
    let err = FsIssueStore::new(root.clone(), FsyncPolicy::AtCheckpoints)
        .load()
        .unwrap_err();
    let LayoutError::Json(json) = &err else {
        panic!("{err}")
    };
    assert_eq!(json.source_name, root.backlog().display().to_string());
    assert!(json.line > 1, "{err}");
    // Left as it was.
    assert_eq!(
        std::fs::read_to_string(root.backlog()).unwrap(),
        text[..text.len() - 10]
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
    // It was written canonically under .autonomous_runs/.
    let canonical: ProjectBacklog = fsio::read_json(&root.backlog()).unwrap().unwrap();
    assert_eq!(canonical, backlog);
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
