//! Scenario tests that read like SPEC §4, snapshots of the JSON views, the first
//! implementation's backlog, and the store conformance suite on the memory store.

use autopack_core::ids::{IssueKey, RunId, TierId};
use autopack_core::vocabulary::{
    Complexity, DebtStatus, IssueState, IssueStatus, SafetyProfile, Severity, TaskCategory,
};
use autopack_issues::testing::{at, observation};
use autopack_issues::{
    AgingThresholds, BacklogView, IssueObservation, Ledger, LedgerError, MemoryIssueStore, Novelty,
    ProjectBacklog, SeverityUpgrade, TierSighting, TopBy,
};

fn key(k: &str) -> IssueKey {
    IssueKey::new(k).unwrap()
}

fn run(r: &str) -> RunId {
    RunId::new(r).unwrap()
}

fn normal() -> Ledger {
    Ledger::new(AgingThresholds::for_profile(SafetyProfile::Normal))
}

fn major(mut obs: IssueObservation) -> IssueObservation {
    obs.issue.severity = Severity::Major;
    obs
}

#[test]
fn thresholds_default_per_profile() {
    assert_eq!(
        AgingThresholds::for_profile(SafetyProfile::Normal),
        AgingThresholds { runs: 3, tiers: 2 }
    );
    assert_eq!(
        AgingThresholds::for_profile(SafetyProfile::SafetyCritical),
        AgingThresholds { runs: 2, tiers: 1 }
    );
    assert_eq!(
        AgingThresholds::default(),
        AgingThresholds { runs: 3, tiers: 2 }
    );
}

#[test]
fn a_minor_issue_across_three_runs_becomes_needs_cleanup_and_effective_major() {
    // Only the runs threshold in play: tiers set out of reach.
    let mut ledger = Ledger::new(AgingThresholds {
        runs: 3,
        tiers: 100,
    });
    let k = key("test_failure__missing_assert");
    let first = ledger
        .record(&observation("run-1", "t1", 0, k.as_str()), at(0))
        .unwrap();
    assert_eq!(first.novelty, Novelty::NewInProject);
    let second = ledger
        .record(&observation("run-2", "t1", 0, k.as_str()), at(1))
        .unwrap();
    assert_eq!(second.novelty, Novelty::NewInRun);
    assert!(second.aged_in_runs && !second.newly_needs_cleanup);
    assert_eq!(ledger.status(&k), Some(IssueStatus::Open));
    let third = ledger
        .record(&observation("run-3", "t1", 0, k.as_str()), at(2))
        .unwrap();
    assert!(third.newly_needs_cleanup);
    assert_eq!(ledger.status(&k), Some(IssueStatus::NeedsCleanup));
    // Aging within run 3 counts from the next run on.
    assert_eq!(third.effective_severity, Severity::Minor);

    let report = ledger.aging_report(ledger.thresholds());
    assert_eq!(report.upgrades, vec![(k.clone(), Severity::Major)]);
    assert_eq!(report.needs_cleanup.len(), 1);
    assert_eq!(report.needs_cleanup[0].issue_key, k);
    assert_eq!(report.needs_cleanup[0].age_in_runs, 3);

    // In the next run the key counts as major at every level.
    let fourth = ledger
        .record(&observation("run-4", "t1", 0, k.as_str()), at(3))
        .unwrap();
    assert_eq!(fourth.effective_severity, Severity::Major);
    let file = ledger.phase_issue_files(&run("run-4")).remove(0);
    assert_eq!(file.issues[0].severity, Severity::Minor);
    assert_eq!(file.issues[0].effective_severity, Severity::Major);
    assert_eq!((file.minor_issue_count, file.major_issue_count), (0, 1));
    assert_eq!(file.issue_state, IssueState::HasMajorIssues);
    assert_eq!(ledger.run_counts(&run("run-4")).major, 1);
    let backlog = ledger.backlog();
    assert_eq!(backlog.issues_by_key[&k].base_severity, Severity::Minor);
    assert_eq!(backlog.issues_by_key[&k].age_in_runs, 4);
}

#[test]
fn the_same_tier_in_later_runs_ages_a_key_by_runs_not_by_tiers() {
    // Tiers are counted by id: the plan's tier t1 in run 2 is the tier it was in run 1.
    let mut ledger = normal();
    ledger
        .record(&observation("run-1", "t1", 0, "k"), at(0))
        .unwrap();
    let second = ledger
        .record(&observation("run-2", "t1", 0, "k"), at(1))
        .unwrap();
    assert!(second.aged_in_runs && !second.aged_in_tiers && !second.newly_needs_cleanup);
    let entry = ledger.backlog_entry(&key("k")).unwrap();
    assert_eq!((entry.age_in_runs, entry.age_in_tiers), (2, 1));
}

#[test]
fn with_normal_defaults_a_key_seen_in_two_tiers_needs_cleanup() {
    let mut ledger = normal();
    ledger
        .record(&observation("run-1", "t1", 0, "k"), at(0))
        .unwrap();
    let other_tier = ledger
        .record(&observation("run-1", "t2", 1, "k"), at(1))
        .unwrap();
    assert!(other_tier.aged_in_tiers && other_tier.newly_needs_cleanup);
    let entry = ledger.backlog_entry(&key("k")).unwrap();
    assert_eq!((entry.age_in_runs, entry.age_in_tiers), (1, 2));
}

#[test]
fn the_same_issue_five_times_in_one_run_ages_once() {
    let mut ledger = normal();
    let mut outcomes = Vec::new();
    for i in 0..5 {
        outcomes.push(
            ledger
                .record(&observation("run-1", "t1", 0, "flaky"), at(i))
                .unwrap(),
        );
    }
    assert_eq!(outcomes[0].novelty, Novelty::NewInProject);
    assert!(outcomes[1..].iter().all(|o| o.novelty == Novelty::Repeat));
    assert!(
        outcomes[1..]
            .iter()
            .all(|o| !o.aged_in_runs && !o.aged_in_tiers)
    );
    let entry = ledger.backlog_entry(&key("flaky")).unwrap();
    assert_eq!(
        (
            entry.age_in_runs,
            entry.age_in_tiers,
            entry.occurrence_count
        ),
        (1, 1, 5)
    );
    assert_eq!(entry.status, IssueStatus::Open);
    let index = ledger.run_issue_index(&run("run-1"));
    assert_eq!(index.issues_by_key[&key("flaky")].occurrence_count, 5);
    assert_eq!(index.minor_issue_count, 1);
    let file = &ledger.phase_issue_files(&run("run-1"))[0];
    assert_eq!(file.issues.len(), 1);
    assert_eq!(file.issues[0].occurrence_count, 5);
    assert_eq!(file.minor_issue_count, 1);
    // Other phases of the same tier do not age it either.
    let other = ledger
        .record(&observation("run-1", "t1", 1, "flaky"), at(6))
        .unwrap();
    assert_eq!(other.novelty, Novelty::NewInPhase);
    assert!(!other.aged_in_runs && !other.aged_in_tiers);
}

#[test]
fn resolve_then_reappear_is_a_regression() {
    let mut ledger = normal();
    let k = key("schema_drift");
    ledger
        .record(&observation("run-1", "t1", 0, k.as_str()), at(0))
        .unwrap();
    assert_eq!(
        ledger.resolve(&k, at(1)).unwrap(),
        autopack_issues::ResolveOutcome::Resolved
    );
    assert_eq!(
        ledger.resolve(&k, at(1)).unwrap(),
        autopack_issues::ResolveOutcome::AlreadyResolved
    );
    assert_eq!(ledger.status(&k), Some(IssueStatus::Resolved));
    assert!(
        ledger
            .aging_report(ledger.thresholds())
            .needs_cleanup
            .is_empty()
    );
    let back = ledger
        .record(&observation("run-1", "t1", 0, k.as_str()), at(2))
        .unwrap();
    assert!(back.regression);
    assert_eq!(ledger.status(&k), Some(IssueStatus::Open));
    assert_eq!(ledger.backlog_entry(&k).unwrap().regression_count, 1);
    let again = ledger
        .record(&observation("run-1", "t1", 0, k.as_str()), at(3))
        .unwrap();
    assert!(
        !again.regression,
        "only the reopening record is a regression"
    );
    assert_eq!(
        ledger.resolve(&key("never_seen"), at(4)),
        Err(LedgerError::UnknownIssueKey(key("never_seen")))
    );
}

#[test]
fn a_higher_severity_upgrades_every_level_and_never_goes_down() {
    let mut ledger = normal();
    ledger
        .record(&observation("run-1", "t1", 0, "k"), at(0))
        .unwrap();
    let up = ledger
        .record(&major(observation("run-1", "t1", 1, "k")), at(1))
        .unwrap();
    assert_eq!(
        up.severity_upgrade,
        Some(SeverityUpgrade {
            from: Severity::Minor,
            to: Severity::Major
        })
    );
    assert_eq!(
        up.base_severity_upgrade,
        Some(SeverityUpgrade {
            from: Severity::Minor,
            to: Severity::Major
        })
    );
    let files = ledger.phase_issue_files(&run("run-1"));
    assert_eq!(files.len(), 2);
    for file in &files {
        assert_eq!(
            file.issues[0].effective_severity,
            Severity::Major,
            "{}",
            file.phase_id
        );
        assert_eq!(file.major_issue_count, 1);
    }
    assert_eq!(
        files[0].issues[0].severity,
        Severity::Minor,
        "reported severity is kept"
    );
    let index = ledger.run_issue_index(&run("run-1"));
    assert_eq!(
        index.issues_by_key[&key("k")].effective_severity,
        Severity::Major
    );
    assert_eq!(
        ledger.backlog().issues_by_key[&key("k")].base_severity,
        Severity::Major
    );
    // Reported minor again, in a later run: still major.
    let later = ledger
        .record(&observation("run-2", "t1", 0, "k"), at(2))
        .unwrap();
    assert_eq!(later.effective_severity, Severity::Major);
    assert_eq!(later.base_severity_upgrade, None);
    assert_eq!(
        ledger.backlog().issues_by_key[&key("k")].base_severity,
        Severity::Major
    );
    assert_eq!(
        ledger.status(&key("k")),
        Some(IssueStatus::Open),
        "major keys do not need cleanup"
    );
}

#[test]
fn a_contradicting_phase_is_refused_naming_the_field_and_nothing_is_recorded() {
    let mut ledger = normal();
    ledger
        .record(&observation("run-1", "t1", 0, "a"), at(0))
        .unwrap();
    let before = ledger.snapshot();
    let mut bad_index = observation("run-1", "t1", 0, "b");
    bad_index.phase_index = 7;
    let mut bad_tier = observation("run-1", "t1", 0, "b");
    bad_tier.tier_id = TierId::new("t2").unwrap();
    let mut bad_category = observation("run-1", "t1", 0, "b");
    bad_category.task_category = TaskCategory::Docs;
    let mut bad_complexity = observation("run-1", "t1", 0, "b");
    bad_complexity.complexity = Complexity::High;
    for (obs, field) in [
        (bad_index, "phase_index"),
        (bad_tier, "tier_id"),
        (bad_category, "task_category"),
        (bad_complexity, "complexity"),
    ] {
        match ledger.record(&obs, at(1)) {
            Err(LedgerError::PhaseConflict { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected a conflict on {field}, got {other:?}"),
        }
        assert_eq!(
            ledger.snapshot(),
            before,
            "nothing half-recorded after a {field} conflict"
        );
    }
    let err = {
        let mut obs = observation("run-1", "t1", 0, "b");
        obs.phase_index = 7;
        ledger.record(&obs, at(1)).unwrap_err()
    };
    assert_eq!(
        err.to_string(),
        "phase_index of phase t1-p0 in run run-1 was recorded as \"0\", not \"7\""
    );
    // The same phase id in another run is another phase.
    let mut other_run = observation("run-2", "t1", 0, "b");
    other_run.phase_index = 7;
    assert!(ledger.record(&other_run, at(2)).is_ok());
}

#[test]
fn bad_json_input_names_the_field() {
    let good = serde_json::to_string(&observation("run-1", "t1", 0, "k")).unwrap();
    let obs: IssueObservation = autopack_core::json::from_str(&good, "obs.json").unwrap();
    assert_eq!(obs, observation("run-1", "t1", 0, "k"));
    let bad_severity = good.replace("\"minor\"", "\"critical\"");
    let err =
        autopack_core::json::from_str::<IssueObservation>(&bad_severity, "obs.json").unwrap_err();
    assert_eq!(err.path, "issue.severity");
    assert!(err.message.contains("critical"), "{err}");
    let bad_key = good.replace("\"issue_key\":\"k\"", "\"issue_key\":\"../k\"");
    let err = autopack_core::json::from_str::<IssueObservation>(&bad_key, "obs.json").unwrap_err();
    assert_eq!(err.path, "issue.issue_key");
    assert!(err.to_string().contains("invalid issue_key"), "{err}");
}

#[test]
fn counts_are_distinct_keys_per_tier_and_run_and_give_the_debt_status() {
    let mut ledger = normal();
    let r = run("run-1");
    for (tier, phase, k) in [
        ("t1", 0, "a"),
        ("t1", 1, "a"),
        ("t1", 1, "b"),
        ("t2", 0, "a"),
        ("t2", 0, "c"),
    ] {
        ledger
            .record(&observation("run-1", tier, phase, k), at(0))
            .unwrap();
    }
    ledger
        .record(&major(observation("run-1", "t2", 1, "m")), at(0))
        .unwrap();
    let t1 = TierId::new("t1").unwrap();
    let t2 = TierId::new("t2").unwrap();
    assert_eq!(
        (
            ledger.tier_counts(&r, &t1).minor,
            ledger.tier_counts(&r, &t1).major
        ),
        (2, 0)
    );
    assert_eq!(
        (
            ledger.tier_counts(&r, &t2).minor,
            ledger.tier_counts(&r, &t2).major
        ),
        (2, 1)
    );
    let by_tier = ledger.tier_counts_by_tier(&r);
    assert_eq!(
        by_tier.keys().cloned().collect::<Vec<_>>(),
        vec![t1.clone(), t2.clone()]
    );
    assert_eq!(by_tier[&t2].total(), 3);
    let counts = ledger.run_counts(&r);
    assert_eq!((counts.minor, counts.major), (3, 1));
    assert_eq!(ledger.debt_status(&r, 3), DebtStatus::HasMinorIssues);
    assert_eq!(ledger.debt_status(&r, 2), DebtStatus::ExcessMinorIssues);
    assert_eq!(ledger.debt_status(&run("run-9"), 0), DebtStatus::Clean);
    let phase = autopack_core::ids::PhaseId::new("t1-p1").unwrap();
    assert_eq!(ledger.phase_counts(&r, &phase).minor, 2);
}

#[test]
fn top_keys_rank_by_runs_tiers_and_occurrences() {
    let mut ledger = Ledger::new(AgingThresholds {
        runs: 100,
        tiers: 100,
    });
    for r in ["r1", "r2", "r3"] {
        ledger
            .record(&observation(r, "t1", 0, "old"), at(0))
            .unwrap();
    }
    for t in ["t1", "t2", "t3", "t4"] {
        ledger
            .record(&observation("r1", t, 0, "wide"), at(0))
            .unwrap();
    }
    for _ in 0..10 {
        ledger
            .record(&observation("r1", "t1", 0, "noisy"), at(0))
            .unwrap();
    }
    let names = |by| {
        ledger
            .top_keys(by, 2)
            .into_iter()
            .map(|k| k.issue_key.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(TopBy::Runs), ["old", "wide"]);
    assert_eq!(names(TopBy::Tiers), ["wide", "old"]);
    assert_eq!(names(TopBy::Occurrences), ["noisy", "wide"]);
    let top = &ledger.top_keys(TopBy::Runs, 1)[0];
    assert_eq!(
        (top.age_in_runs, top.age_in_tiers, top.occurrence_count),
        (3, 1, 3)
    );
}

#[test]
fn safety_critical_thresholds_apply_to_every_key_at_once() {
    let mut ledger = Ledger::new(AgingThresholds {
        runs: 100,
        tiers: 100,
    });
    ledger
        .record(&observation("r1", "t1", 0, "a"), at(0))
        .unwrap();
    ledger
        .record(&major(observation("r1", "t1", 0, "m")), at(0))
        .unwrap();
    let newly = ledger.set_thresholds(AgingThresholds::for_profile(SafetyProfile::SafetyCritical));
    assert_eq!(newly, vec![key("a")]);
    assert_eq!(ledger.status(&key("m")), Some(IssueStatus::Open));
    // A report computed for other thresholds does not change the ledger.
    let mut fresh = Ledger::new(AgingThresholds {
        runs: 100,
        tiers: 100,
    });
    fresh
        .record(&observation("r1", "t1", 0, "a"), at(0))
        .unwrap();
    let report = fresh.aging_report(AgingThresholds::for_profile(SafetyProfile::SafetyCritical));
    assert_eq!(report.upgrades, vec![(key("a"), Severity::Major)]);
    assert_eq!(fresh.status(&key("a")), Some(IssueStatus::Open));
}

#[test]
fn forgetting_a_run_keeps_its_aging() {
    let mut ledger = normal();
    ledger
        .record(&observation("r1", "t1", 0, "a"), at(0))
        .unwrap();
    assert!(ledger.forget_run(&run("r1")));
    assert!(ledger.runs().is_empty());
    let again = ledger
        .record(&observation("r1", "t1", 0, "a"), at(1))
        .unwrap();
    assert_eq!(again.novelty, Novelty::NewInRun);
    assert!(!again.aged_in_runs && !again.aged_in_tiers);
}

fn sample_ledger() -> Ledger {
    let mut ledger = normal().with_project(autopack_core::ids::ProjectId::new("Autopack").unwrap());
    ledger
        .record(
            &observation("run-1", "t1", 0, "test_failure__missing_assert"),
            at(0),
        )
        .unwrap();
    ledger
        .record(
            &observation("run-1", "t1", 0, "test_failure__missing_assert"),
            at(1),
        )
        .unwrap();
    ledger
        .record(&major(observation("run-1", "t1", 1, "schema_drift")), at(2))
        .unwrap();
    ledger
        .record(
            &observation("run-2", "t1", 0, "test_failure__missing_assert"),
            at(3),
        )
        .unwrap();
    ledger
        .record(&observation("run-2", "t2", 3, "flaky_ci"), at(4))
        .unwrap();
    ledger.resolve(&key("schema_drift"), at(5)).unwrap();
    ledger
}

#[test]
fn views_snapshot() {
    let ledger = sample_ledger();
    insta::assert_json_snapshot!("phase_issue_file", ledger.phase_issue_files(&run("run-1")));
    insta::assert_json_snapshot!("run_issue_index", ledger.run_issue_index(&run("run-2")));
    insta::assert_json_snapshot!("project_backlog", ledger.backlog());
}

#[test]
fn snapshot_rebuilds_the_same_ledger() {
    let ledger = sample_ledger();
    let snapshot = ledger.snapshot();
    let rebuilt = Ledger::from_snapshot(&snapshot).unwrap();
    assert_eq!(rebuilt.snapshot(), snapshot);
    let json = serde_json::to_string(&snapshot).unwrap();
    let read: autopack_issues::LedgerSnapshot =
        autopack_core::json::from_str(&json, "snap").unwrap();
    assert_eq!(read, snapshot);
    // The rebuilt ledger goes on exactly like the original.
    let mut a = ledger;
    let mut b = rebuilt;
    let obs = observation("run-2", "t1", 0, "test_failure__missing_assert");
    assert_eq!(
        a.record(&obs, at(9)).unwrap(),
        b.record(&obs, at(9)).unwrap()
    );
    let obs = observation("run-3", "t1", 0, "schema_drift");
    assert_eq!(
        a.record(&obs, at(9)).unwrap(),
        b.record(&obs, at(9)).unwrap()
    );
    assert_eq!(a.snapshot(), b.snapshot());
}

const LEGACY: &str = include_str!("data/project_issue_backlog.json");

#[test]
fn the_first_implementations_backlog_loads_and_ages_on() {
    let backlog = ProjectBacklog::from_json(LEGACY, "project_issue_backlog.json").unwrap();
    assert_eq!(backlog.issues_by_key.len(), 13);
    let entry = &backlog.issues_by_key[&key("test_failure__missing_assert")];
    assert_eq!(entry.first_seen_run_id, None);
    assert!(entry.seen_in_tiers.is_empty());
    assert_eq!(
        entry.last_seen_at.to_rfc3339(),
        "2025-11-23T11:16:17.067335+00:00"
    );

    let mut ledger = Ledger::from_backlog(&backlog, AgingThresholds::default()).unwrap();
    // Same run as last seen: no new run; the entry names no tiers, so t1 is a new tier.
    let same = ledger
        .record(&observation("test-run-001", "t1", 0, "major_issue"), at(0))
        .unwrap();
    assert_eq!(same.novelty, Novelty::NewInRun);
    assert!(!same.aged_in_runs && same.aged_in_tiers);
    let next = ledger
        .record(&observation("test-run-002", "t1", 0, "major_issue"), at(1))
        .unwrap();
    assert!(next.aged_in_runs);
    let e = ledger.backlog_entry(&key("major_issue")).unwrap();
    assert_eq!(
        (e.age_in_runs, e.age_in_tiers, e.base_severity),
        (3, 3, Severity::Major)
    );
    // Its needs_cleanup keys feed the strategy.
    let report = backlog.aging_report(AgingThresholds::default());
    assert_eq!(report.needs_cleanup.len(), 11);
    assert_eq!(report.needs_cleanup[0].issue_key, key("old_minor_issue"));
    assert!(
        !report
            .upgrades
            .iter()
            .any(|(k, _)| k == &key("major_issue"))
    );

    let canonical = Ledger::from_backlog(&backlog, AgingThresholds::default())
        .unwrap()
        .backlog()
        .to_json();
    insta::assert_snapshot!("legacy_backlog_canonical", canonical);
}

#[test]
fn canonical_output_round_trips() {
    let legacy = ProjectBacklog::from_json(LEGACY, "legacy").unwrap();
    for text in [sample_ledger().backlog().to_json(), legacy.to_json()] {
        let read = ProjectBacklog::from_json(&text, "canonical").unwrap();
        assert_eq!(read.to_json(), text);
        let via_ledger = Ledger::from_backlog(&read, AgingThresholds::default()).unwrap();
        let again = ProjectBacklog::from_json(&via_ledger.backlog().to_json(), "again").unwrap();
        assert_eq!(again.to_json(), via_ledger.backlog().to_json());
    }
    let ledger = sample_ledger();
    let index = ledger.run_issue_index(&run("run-1")).to_json();
    let read: autopack_issues::RunIssueIndex = autopack_core::json::from_str(&index, "i").unwrap();
    assert_eq!(read.to_json(), index);
    for file in ledger.phase_issue_files(&run("run-1")) {
        let text = file.to_json();
        let read: autopack_issues::PhaseIssueFile =
            autopack_core::json::from_str(&text, "p").unwrap();
        assert_eq!(read.to_json(), text);
    }
}

#[test]
fn inconsistent_backlogs_are_refused_naming_the_field() {
    let text = LEGACY.replacen("\"age_in_runs\": 2", "\"age_in_runs\": 0", 1);
    let backlog = ProjectBacklog::from_json(&text, "b").unwrap();
    let err = Ledger::from_backlog(&backlog, AgingThresholds::default()).unwrap_err();
    assert_eq!(err.field, "age_in_runs");
    assert!(
        err.location.contains("test_failure__missing_assert"),
        "{err}"
    );
    let bad_time = LEGACY.replacen("2025-11-23T11:16:17.067335", "yesterday", 1);
    let err = ProjectBacklog::from_json(&bad_time, "b.json").unwrap_err();
    assert_eq!(
        err.path,
        "issues_by_key.test_failure__missing_assert.last_seen_at"
    );
    let bad_status = LEGACY.replacen("\"needs_cleanup\"", "\"stale\"", 1);
    let err = ProjectBacklog::from_json(&bad_status, "b.json").unwrap_err();
    assert_eq!(
        err.path,
        "issues_by_key.test_failure__missing_assert.status"
    );
}

#[test]
fn json_schemas_are_generated() {
    for schema in [
        schemars::schema_for!(ProjectBacklog),
        schemars::schema_for!(autopack_issues::RunIssueIndex),
        schemars::schema_for!(autopack_issues::PhaseIssueFile),
        schemars::schema_for!(autopack_issues::LedgerEvent),
    ] {
        assert!(
            serde_json::to_string(&schema)
                .unwrap()
                .contains("properties")
        );
    }
}

#[test]
fn memory_store_passes_the_conformance_suite() {
    autopack_issues::testing::run_conformance_suite(MemoryIssueStore::new);
}

#[test]
fn a_first_implementation_backlog_naming_tiers_without_runs_reads_and_ages_on() {
    // SPEC §4.3's `seen_in_tiers` is a list of tier ids, as the first implementation's
    // schema says: read as tiers of the entry's last run, written back in our form.
    let text = r#"{
      "project_id": "TestProject",
      "issues_by_key": {
        "k1": {"category": "test_failure", "base_severity": "minor", "age_in_runs": 2,
               "age_in_tiers": 2, "last_seen_run_id": "old-run",
               "last_seen_at": "2025-11-23T11:16:17.067335", "seen_in_tiers": ["t1", "t2"],
               "status": "open"}
      }
    }"#;
    let backlog = ProjectBacklog::from_json(text, "backlog").unwrap();
    let entry = &backlog.issues_by_key[&key("k1")];
    assert_eq!(
        entry.seen_in_tiers,
        vec![
            TierSighting {
                run_id: run("old-run"),
                tier_id: TierId::new("t1").unwrap()
            },
            TierSighting {
                run_id: run("old-run"),
                tier_id: TierId::new("t2").unwrap()
            },
        ]
    );
    // Our own form still reads, and is what is written.
    let again = ProjectBacklog::from_json(&backlog.to_json(), "again").unwrap();
    assert_eq!(again, backlog);
    // A tier id already listed does not age the key again; a new one does.
    let mut ledger = Ledger::from_backlog(&backlog, AgingThresholds::default()).unwrap();
    ledger
        .record(&observation("new-run", "t1", 0, "k1"), at(0))
        .unwrap();
    let aged = &ledger.backlog().issues_by_key[&key("k1")];
    assert_eq!((aged.age_in_runs, aged.age_in_tiers), (3, 2));
    ledger
        .record(&observation("new-run-2", "t9", 0, "k1"), at(1))
        .unwrap();
    let aged = &ledger.backlog().issues_by_key[&key("k1")];
    assert_eq!((aged.age_in_runs, aged.age_in_tiers), (4, 3));
    // A sighting of neither form is refused, naming where.
    let bad = text.replace(r#"["t1", "t2"]"#, "[7]");
    let err = ProjectBacklog::from_json(&bad, "backlog")
        .unwrap_err()
        .to_string();
    assert!(err.contains("seen_in_tiers"), "{err}");
}
