//! insta snapshots of every summary and the incident pack, from hand-built run records,
//! and a check that the written files are exactly the renderings.

use autopack_core::budget::{
    PhaseCaps, PhaseUsage, RunBreach, RunCaps, RunUsage, TierBreach, TierCaps, TierUsage,
};
use autopack_core::ids::{CommitId, PhaseId, RunId, TierId};
use autopack_core::lifecycle::{PhaseState, RunFailure, RunState, TierState};
use autopack_core::record::{
    AttemptOutcome, AttemptRecord, AttemptRole, CiRecord, CiVerdict, FailureRecord, PhaseRecord,
    RunRecord, StateChange, TierRecord,
};
use autopack_core::vocabulary::{
    BuilderMode, CiProfile, Complexity, DebtStatus, HighRiskKind, RunScope, SafetyProfile,
    TaskCategory,
};
use autopack_layout::paths::RunsRoot;
use autopack_layout::{artefacts, render};
use chrono::{DateTime, TimeZone, Utc};

fn at(minute: u32, second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 23, 10, minute, second)
        .single()
        .unwrap()
}

fn history<S: Copy>(steps: &[(S, u32, u32)]) -> Vec<StateChange<S>> {
    steps
        .iter()
        .map(|&(state, m, s)| StateChange {
            state,
            at: at(m, s),
        })
        .collect()
}

fn phase_caps() -> PhaseCaps {
    PhaseCaps {
        max_builder_attempts: 3,
        max_auditor_attempts: 2,
        incident_token_cap: 500_000,
    }
}

fn attempt(
    role: AttemptRole,
    number: u32,
    outcome: AttemptOutcome,
    reason: &str,
    tokens: u64,
    m: u32,
) -> AttemptRecord {
    AttemptRecord {
        role,
        number,
        outcome,
        reason: reason.to_owned(),
        tokens,
        at: at(m, 30),
    }
}

fn green_phase(id: &str, index: u32, tier: &str, name: &str, start: u32) -> PhaseRecord {
    PhaseRecord {
        phase_id: PhaseId::new(id).unwrap(),
        phase_index: index,
        tier_id: TierId::new(tier).unwrap(),
        name: name.to_owned(),
        task_category: TaskCategory::FeatureScaffolding,
        complexity: Complexity::Medium,
        builder_mode: Some(BuilderMode::ScaffoldingHeavy),
        state: PhaseState::Complete,
        history: history(&[
            (PhaseState::Queued, start, 0),
            (PhaseState::Executing, start, 5),
            (PhaseState::Gate, start + 2, 0),
            (PhaseState::CiRunning, start + 2, 10),
            (PhaseState::Complete, start + 4, 0),
        ]),
        caps: phase_caps(),
        usage: PhaseUsage {
            builder_attempts: 1,
            auditor_attempts: 0,
            tokens: 120_345,
            ci_runs: 1,
        },
        attempts: vec![attempt(
            AttemptRole::Builder,
            1,
            AttemptOutcome::Succeeded,
            "",
            120_345,
            start + 2,
        )],
        ci_runs: vec![CiRecord {
            profile: CiProfile::Normal,
            verdict: CiVerdict::Green,
            attempts: 1,
            at: at(start + 4, 0),
        }],
        minor_issues: 1,
        major_issues: 0,
        // 40 hex digits whatever the index (huge runs have thousands of phases).
        commit: Some(CommitId::new(format!("{:0<40}", format!("c0ffee{index:02}"))).unwrap()),
        snapshot_tag: Some(format!("autonomous/run-ok/tier-{tier}/phase-{id}")),
        failure_reason: None,
    }
}

fn tier_caps() -> TierCaps {
    TierCaps {
        token_cap: 3_000_000,
        ci_run_cap: 4,
        max_minor_issues_tolerated: 4,
        max_major_issues_tolerated: 0,
    }
}

/// A two-tier run that succeeded; the second tier has a name that needs sanitising.
fn success_record() -> RunRecord {
    let t1 = TierRecord {
        tier_id: TierId::new("t1").unwrap(),
        tier_index: 0,
        name: "Foundations".to_owned(),
        state: TierState::Complete,
        history: history(&[
            (TierState::Pending, 0, 0),
            (TierState::Running, 0, 5),
            (TierState::Complete, 9, 0),
        ]),
        caps: tier_caps(),
        usage: TierUsage {
            tokens: 240_690,
            ci_runs: 2,
            minor_issues: 1,
            major_issues: 0,
        },
        breaches: vec![],
        blocked_reason: None,
        phases: vec![
            green_phase("p1", 0, "t1", "Data models", 0),
            green_phase("p2", 1, "t1", "Indexes | registry", 4),
        ],
    };
    let t2 = TierRecord {
        tier_id: TierId::new("t2").unwrap(),
        tier_index: 1,
        name: "API & docs (v2)".to_owned(),
        state: TierState::NotClean,
        history: history(&[
            (TierState::Pending, 0, 0),
            (TierState::Running, 9, 0),
            (TierState::NotClean, 14, 0),
        ]),
        caps: TierCaps {
            token_cap: 600_000,
            ci_run_cap: 2,
            max_minor_issues_tolerated: 2,
            max_major_issues_tolerated: 0,
        },
        usage: TierUsage {
            tokens: 120_345,
            ci_runs: 3,
            minor_issues: 3,
            major_issues: 0,
        },
        breaches: vec![
            TierBreach::CiRuns { used: 3, cap: 2 },
            TierBreach::MinorIssues { used: 3, cap: 2 },
        ],
        blocked_reason: None,
        phases: vec![PhaseRecord {
            task_category: TaskCategory::Docs,
            complexity: Complexity::Low,
            builder_mode: None,
            minor_issues: 3,
            ci_runs: vec![
                CiRecord {
                    profile: CiProfile::Normal,
                    verdict: CiVerdict::Red,
                    attempts: 3,
                    at: at(11, 0),
                },
                CiRecord {
                    profile: CiProfile::Normal,
                    verdict: CiVerdict::Flaky,
                    attempts: 2,
                    at: at(13, 0),
                },
            ],
            usage: PhaseUsage {
                builder_attempts: 2,
                auditor_attempts: 0,
                tokens: 120_345,
                ci_runs: 3,
            },
            attempts: vec![
                attempt(
                    AttemptRole::Builder,
                    1,
                    AttemptOutcome::Failed,
                    "CI red: tests/test_api.py::test_list | 2 failures",
                    60_000,
                    11,
                ),
                attempt(
                    AttemptRole::Builder,
                    2,
                    AttemptOutcome::Succeeded,
                    "",
                    60_345,
                    13,
                ),
            ],
            ..green_phase("p3", 2, "t2", "API docs", 9)
        }],
    };
    RunRecord {
        run_id: RunId::new("run-ok").unwrap(),
        safety_profile: SafetyProfile::Normal,
        run_scope: RunScope::MultiTier,
        strategy_version: 2,
        state: RunState::DoneSuccess,
        history: history(&[
            (RunState::RunCreated, 0, 0),
            (RunState::PhaseQueueing, 0, 1),
            (RunState::PhaseExecution, 0, 5),
            (RunState::SnapshotCreated, 13, 30),
            (RunState::DoneSuccess, 14, 0),
        ]),
        caps: RunCaps::for_phases(3),
        usage: RunUsage {
            tokens: 361_035,
            phases: 3,
            elapsed_minutes: 14,
            minor_issues: 4,
            ci_runs: 5,
        },
        debt_status: DebtStatus::HasMinorIssues,
        unresolved_major_issues: 0,
        failure: None,
        tiers: vec![t1, t2],
        integration_tip: Some(CommitId::new("0123456789abcdef0123456789abcdef01234567").unwrap()),
    }
}

/// A run whose schema phase failed after six attempts: its tier is blocked, the next
/// phase skipped, and the run ends DONE_FAILED_TIER_BLOCKED.
fn failed_record() -> RunRecord {
    let mut attempts = Vec::new();
    for n in 1..=3 {
        attempts.push(attempt(
            AttemptRole::Builder,
            n,
            AttemptOutcome::Failed,
            &format!("gate rejected: migration {n} drops column `users.email`"),
            90_000,
            2 + n,
        ));
    }
    attempts.push(attempt(
        AttemptRole::Auditor,
        1,
        AttemptOutcome::Revise,
        "keep the column; add a nullable one",
        30_000,
        7,
    ));
    attempts.push(attempt(
        AttemptRole::Builder,
        4,
        AttemptOutcome::Failed,
        "CI red: tests/test_users.py::test_indexes",
        95_000,
        9,
    ));
    attempts.push(attempt(
        AttemptRole::Auditor,
        2,
        AttemptOutcome::Escalated,
        "schema contract change needs a migration plan",
        31_000,
        10,
    ));
    let failed = PhaseRecord {
        phase_id: PhaseId::new("schema-1").unwrap(),
        phase_index: 0,
        tier_id: TierId::new("db").unwrap(),
        name: "Users schema".to_owned(),
        task_category: TaskCategory::HighRisk(HighRiskKind::SchemaChange),
        complexity: Complexity::High,
        builder_mode: Some(BuilderMode::SchemaHeavy),
        state: PhaseState::Failed,
        history: history(&[
            (PhaseState::Queued, 0, 0),
            (PhaseState::Executing, 1, 0),
            (PhaseState::Gate, 3, 0),
            (PhaseState::Retry, 3, 30),
            (PhaseState::Executing, 4, 0),
            (PhaseState::Gate, 10, 0),
            (PhaseState::Failed, 10, 30),
        ]),
        caps: PhaseCaps {
            max_builder_attempts: 2,
            max_auditor_attempts: 2,
            incident_token_cap: 400_000,
        },
        usage: PhaseUsage {
            builder_attempts: 4,
            auditor_attempts: 2,
            tokens: 426_000,
            ci_runs: 1,
        },
        attempts,
        ci_runs: vec![CiRecord {
            profile: CiProfile::Strict,
            verdict: CiVerdict::Red,
            attempts: 3,
            at: at(9, 0),
        }],
        minor_issues: 0,
        major_issues: 2,
        commit: None,
        snapshot_tag: None,
        failure_reason: Some(
            "Auditor escalated: schema contract change needs a migration plan".to_owned(),
        ),
    };
    let skipped = PhaseRecord {
        phase_id: PhaseId::new("schema-2").unwrap(),
        phase_index: 1,
        tier_id: TierId::new("db").unwrap(),
        name: "Orders schema".to_owned(),
        task_category: TaskCategory::HighRisk(HighRiskKind::SchemaChange),
        complexity: Complexity::High,
        builder_mode: None,
        state: PhaseState::Skipped,
        history: history(&[(PhaseState::Queued, 0, 0), (PhaseState::Skipped, 10, 30)]),
        caps: PhaseCaps {
            max_builder_attempts: 2,
            max_auditor_attempts: 2,
            incident_token_cap: 400_000,
        },
        usage: PhaseUsage::default(),
        attempts: vec![],
        ci_runs: vec![],
        minor_issues: 0,
        major_issues: 0,
        commit: None,
        snapshot_tag: None,
        failure_reason: Some("tier db was blocked by schema-1".to_owned()),
    };
    let tier = TierRecord {
        tier_id: TierId::new("db").unwrap(),
        tier_index: 0,
        name: "Datenbank: Schémas".to_owned(),
        state: TierState::Blocked,
        history: history(&[
            (TierState::Pending, 0, 0),
            (TierState::Running, 1, 0),
            (TierState::Blocked, 10, 30),
        ]),
        caps: TierCaps {
            token_cap: 2_400_000,
            ci_run_cap: 4,
            max_minor_issues_tolerated: 2,
            max_major_issues_tolerated: 0,
        },
        usage: TierUsage {
            tokens: 426_000,
            ci_runs: 1,
            minor_issues: 0,
            major_issues: 2,
        },
        breaches: vec![TierBreach::MajorIssues { used: 2, cap: 0 }],
        blocked_reason: Some("phase schema-1 failed".to_owned()),
        phases: vec![failed, skipped],
    };
    let later = TierRecord {
        tier_id: TierId::new("ui").unwrap(),
        tier_index: 1,
        name: "UI".to_owned(),
        state: TierState::Pending,
        history: history(&[(TierState::Pending, 0, 0)]),
        caps: tier_caps(),
        usage: TierUsage::default(),
        breaches: vec![],
        blocked_reason: None,
        phases: vec![],
    };
    RunRecord {
        run_id: RunId::new("run-failed").unwrap(),
        safety_profile: SafetyProfile::SafetyCritical,
        run_scope: RunScope::MultiTier,
        strategy_version: 1,
        state: RunState::DoneFailedTierBlocked,
        history: history(&[
            (RunState::RunCreated, 0, 0),
            (RunState::PhaseQueueing, 0, 1),
            (RunState::PhaseExecution, 1, 0),
            (RunState::Gate, 3, 0),
            (RunState::PhaseExecution, 3, 30),
            (RunState::Gate, 10, 0),
            (RunState::DoneFailedTierBlocked, 10, 30),
        ]),
        caps: RunCaps::for_phases(2),
        usage: RunUsage {
            tokens: 426_000,
            phases: 2,
            elapsed_minutes: 10,
            minor_issues: 0,
            ci_runs: 1,
        },
        debt_status: DebtStatus::Clean,
        unresolved_major_issues: 2,
        failure: Some(FailureRecord {
            failure: RunFailure::TierBlocked,
            reason:
                "Phase schema-1 failed after 4 builder and 2 auditor attempts; tier db is blocked."
                    .to_owned(),
            tier_id: Some(TierId::new("db").unwrap()),
            phase_id: Some(PhaseId::new("schema-1").unwrap()),
            breach: None,
        }),
        tiers: vec![tier, later],
        integration_tip: None,
    }
}

/// A run that hit its token cap before any tier started, with no failure record beyond
/// the breach.
fn early_failure_record() -> RunRecord {
    RunRecord {
        run_id: RunId::new("run-early").unwrap(),
        safety_profile: SafetyProfile::Normal,
        run_scope: RunScope::SingleTier,
        strategy_version: 1,
        state: RunState::DoneFailedTokenCapExceeded,
        history: history(&[
            (RunState::RunCreated, 0, 0),
            (RunState::DoneFailedTokenCapExceeded, 0, 2),
        ]),
        caps: RunCaps {
            token_cap: 1_000,
            max_phases: 25,
            max_duration_minutes: 120,
            max_minor_issues_total: 3,
        },
        usage: RunUsage {
            tokens: 1_001,
            phases: 1,
            elapsed_minutes: 0,
            minor_issues: 0,
            ci_runs: 0,
        },
        debt_status: DebtStatus::Clean,
        unresolved_major_issues: 0,
        failure: Some(FailureRecord {
            failure: RunFailure::TokenCapExceeded,
            reason: "planning used the whole token cap".to_owned(),
            tier_id: None,
            phase_id: None,
            breach: Some(RunBreach::Tokens {
                used: 1_001,
                cap: 1_000,
            }),
        }),
        tiers: vec![],
        integration_tip: None,
    }
}

fn snapshot_all(prefix: &str, run: &RunRecord) {
    insta::assert_snapshot!(format!("{prefix}_run_summary"), render::run_summary(run));
    for tier in &run.tiers {
        insta::assert_snapshot!(
            format!("{prefix}_tier_{}", tier.tier_id),
            render::tier_summary(run, tier)
        );
    }
    for phase in run.phases() {
        insta::assert_snapshot!(
            format!("{prefix}_phase_{}", phase.phase_id),
            render::phase_summary(run, phase)
        );
    }
    match render::incident(run) {
        Some(incident) => {
            insta::assert_snapshot!(
                format!("{prefix}_incident_json"),
                render::incident_json(&incident)
            );
            insta::assert_snapshot!(
                format!("{prefix}_incident_md"),
                render::incident_markdown(&incident)
            );
        }
        None => assert!(!run.state.is_terminal() || run.state == RunState::DoneSuccess),
    }
}

#[test]
fn success_summaries() {
    let run = success_record();
    assert!(
        render::incident(&run).is_none(),
        "a successful run has no incident pack"
    );
    snapshot_all("success", &run);
}

#[test]
fn failed_run_summaries_and_incident() {
    let run = failed_record();
    let incident = render::incident(&run).unwrap();
    assert_eq!(
        incident.failing_phase.as_ref().unwrap().phase_id.as_str(),
        "schema-1"
    );
    assert_eq!(
        incident.failing_phase.as_ref().unwrap().last_attempts.len(),
        render::INCIDENT_LAST_ATTEMPTS
    );
    assert_eq!(incident.failing_phase.as_ref().unwrap().total_attempts, 6);
    assert_eq!(
        incident.failing_tier.as_ref().unwrap().tier_id.as_str(),
        "db"
    );
    snapshot_all("failed", &run);
}

#[test]
fn early_failure_summaries_and_incident() {
    let run = early_failure_record();
    let incident = render::incident(&run).unwrap();
    assert!(incident.failing_tier.is_none() && incident.failing_phase.is_none());
    snapshot_all("early", &run);
}

#[test]
fn rendering_is_deterministic() {
    for run in [success_record(), failed_record(), early_failure_record()] {
        assert_eq!(render::run_summary(&run), render::run_summary(&run.clone()));
    }
}

#[test]
fn written_artefacts_are_the_renderings_and_the_incident_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = RunsRoot::new(dir.path().join(".autonomous_runs"));
    for run in [success_record(), failed_record(), early_failure_record()] {
        let written = artefacts::write_run_artefacts(&root, &run).unwrap();
        let summary = std::fs::read_to_string(root.run_summary(&run.run_id)).unwrap();
        assert_eq!(summary, render::run_summary(&run));
        for tier in &run.tiers {
            let path = root.tier_summary(&run.run_id, tier.tier_index, &tier.tier_id, &tier.name);
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                render::tier_summary(&run, tier)
            );
            // Every link of the run summary points at a file that exists.
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(summary.contains(&format!("(tiers/{name})")), "{name}");
        }
        for phase in run.phases() {
            let path = root.phase_summary(&run.run_id, phase.phase_index, &phase.phase_id);
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                render::phase_summary(&run, phase)
            );
        }
        let incident = artefacts::read_incident(&root, &run.run_id).unwrap();
        assert_eq!(incident, render::incident(&run));
        assert_eq!(written.incident.is_some(), incident.is_some());
        if incident.is_some() {
            let md = std::fs::read_to_string(root.incident_markdown(&run.run_id)).unwrap();
            assert!(md.starts_with(&format!(
                "# Incident: run `{}` ended `{}`",
                run.run_id, run.state
            )));
        }
    }
}

#[test]
fn a_corrupt_incident_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = RunsRoot::new(dir.path());
    let run = failed_record();
    artefacts::write_run_artefacts(&root, &run).unwrap();
    let path = root.incident_json(&run.run_id);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let err = artefacts::read_incident(&root, &run.run_id)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(&path.display().to_string()), "{err}");
    assert!(err.contains("line "), "{err}");
}

/// The success record with its first tier grown to `phases` phases: the first `done`
/// complete, one failed, two skipped and one executing after them, the rest queued.
fn huge_record(phases: u32, done: u32) -> RunRecord {
    let mut run = success_record();
    run.state = RunState::PhaseExecution;
    let tier = &mut run.tiers[0];
    tier.state = TierState::Running;
    tier.phases = (0..phases)
        .map(|i| {
            let mut p = green_phase(&format!("h{i}"), i, "t1", &format!("Step {i}"), 0);
            if i >= done {
                p.state = match i - done {
                    0 => PhaseState::Failed,
                    1 | 2 => PhaseState::Skipped,
                    3 => PhaseState::Executing,
                    _ => PhaseState::Queued,
                };
            }
            p
        })
        .collect();
    let offset = phases;
    for (i, p) in run.tiers[1].phases.iter_mut().enumerate() {
        p.phase_index = offset + i as u32;
    }
    run
}

#[test]
fn huge_runs_list_only_the_phases_neither_complete_nor_queued() {
    let run = huge_record(1_500, 700);
    let summary = render::run_summary(&run);
    let tier = render::tier_summary(&run, &run.tiers[0]);
    // Bounded: counts and four rows, not 1,500.
    assert!(summary.len() < 16 * 1024, "{} bytes", summary.len());
    assert!(tier.len() < 16 * 1024, "{} bytes", tier.len());
    insta::assert_snapshot!("huge_run_summary", summary);
    insta::assert_snapshot!("huge_tier_t1", tier);
    // The small tier is listed whole, as before.
    assert!(render::tier_summary(&run, &run.tiers[1]).contains("| 1500 | `p3` |"));
    // At the limit a summary is still a full list.
    let run = huge_record(render::SUMMARY_PHASE_ROWS as u32 - 2, 500);
    let summary = render::run_summary(&run);
    assert!(summary.contains("[phase_00_h0.md](phases/phase_00_h0.md)"));
    assert!(!summary.contains("this table lists only"));
}

#[test]
fn selected_artefacts_are_the_renderings_of_what_was_selected_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let root = RunsRoot::new(dir.path().join(".autonomous_runs"));
    let run = failed_record();
    let selection = artefacts::Selection {
        tiers: vec![],
        phases: vec![(0, 1), (0, 1)],
    };
    let written = artefacts::write_selected_artefacts(&root, &run, &selection).unwrap();
    let phase = &run.tiers[0].phases[1];
    let tier = &run.tiers[0];
    let want = vec![
        root.incident_json(&run.run_id),
        root.incident_markdown(&run.run_id),
        root.phase_summary(&run.run_id, phase.phase_index, &phase.phase_id),
        root.tier_summary(&run.run_id, tier.tier_index, &tier.tier_id, &tier.name),
        root.run_summary(&run.run_id),
    ];
    assert_eq!(written.files, want);
    assert_eq!(written.incident, Some(root.incident_json(&run.run_id)));
    assert_eq!(
        std::fs::read_to_string(&want[2]).unwrap(),
        render::phase_summary(&run, phase)
    );
    assert_eq!(
        std::fs::read_to_string(&want[3]).unwrap(),
        render::tier_summary(&run, tier)
    );
    // Nothing else: the other tier and phases were not written.
    let other = &run.tiers[0].phases[0];
    assert!(
        !root
            .phase_summary(&run.run_id, other.phase_index, &other.phase_id)
            .exists()
    );
    let later = &run.tiers[1];
    assert!(
        !root
            .tier_summary(&run.run_id, later.tier_index, &later.tier_id, &later.name)
            .exists()
    );

    // A position outside the run is refused, naming the run summary; nothing is written.
    let empty = RunsRoot::new(dir.path().join("other"));
    for selection in [
        artefacts::Selection {
            tiers: vec![7],
            phases: vec![],
        },
        artefacts::Selection {
            tiers: vec![],
            phases: vec![(0, 99)],
        },
    ] {
        let err = artefacts::write_selected_artefacts(&empty, &run, &selection).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("run_summary.md"), "{text}");
        assert!(!empty.run_summary(&run.run_id).exists());
    }

    // The incident pack alone.
    let pack = RunsRoot::new(dir.path().join("pack"));
    let written = artefacts::write_incident_pack(&pack, &run).unwrap();
    assert_eq!(
        written.files,
        vec![
            pack.incident_json(&run.run_id),
            pack.incident_markdown(&run.run_id)
        ]
    );
    assert!(!pack.run_summary(&run.run_id).exists());
    let none = artefacts::write_incident_pack(&pack, &success_record()).unwrap();
    assert_eq!(none, artefacts::WrittenArtefacts::default());
}

#[test]
fn a_long_state_history_shows_its_first_and_last_entries() {
    let mut run = success_record();
    let first = run.history[0].clone();
    run.history = (0..2_000)
        .map(|i| StateChange {
            state: if i % 2 == 0 {
                RunState::PhaseExecution
            } else {
                RunState::SnapshotCreated
            },
            at: first.at + chrono::TimeDelta::seconds(i),
        })
        .collect();
    let summary = render::run_summary(&run);
    let rows = summary
        .lines()
        .skip_while(|l| *l != "## State history")
        .filter(|l| l.starts_with("| "))
        .count();
    // The header, 100 + 400 entries and the line between them.
    assert_eq!(rows, 1 + render::HISTORY_HEAD + render::HISTORY_TAIL + 1);
    assert!(summary.contains("| … | 1,500 state changes (#101 to #1600) not shown | | |"));
    assert!(summary.contains("| 100 | `SNAPSHOT_CREATED` | 2025-11-23T10:01:39Z | 1s |"));
    assert!(summary.contains("| 1601 | `PHASE_EXECUTION` |"));
    assert!(summary.contains("| 2000 | `SNAPSHOT_CREATED` | 2025-11-23T10:33:19Z | — |"));
    assert!(!summary.contains("| 101 |"));
    // At the limit, every entry.
    run.history.truncate(render::SUMMARY_HISTORY_ROWS);
    let summary = render::run_summary(&run);
    assert!(summary.contains("| 1000 | "));
    assert!(!summary.contains("not shown"));
}
