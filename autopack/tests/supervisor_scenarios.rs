//! Scenario tests of the Supervisor that read like the spec, all in memory.

mod common;

use autopack::supervisor::{
    Action, AgentOutcome, CiReport, Input, Supervisor, SupervisorConfig, SupervisorError,
};
use autopack_core::lifecycle::{PhaseState, RunFailure, RunState, TierState};
use autopack_core::message::{AuditReason, AuditorRecommendation, BuilderResult, BuilderStatus};
use autopack_core::record::{AttemptOutcome, AttemptRole, CiVerdict};
use autopack_core::vocabulary::{DebtStatus, RunScope, SafetyProfile, Severity};
use chrono::Duration;
use common::*;

fn cfg() -> SupervisorConfig {
    SupervisorConfig::default()
}

fn phase_state(out: &Outcome, id: &str) -> PhaseState {
    out.record()
        .phases()
        .find(|p| p.phase_id.as_str() == id)
        .expect("phase")
        .state
}

#[test]
fn happy_path_runs_every_phase_in_tier_order_and_succeeds() {
    let plan = plan(
        "happy",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[
            &[("p1", "feature_scaffolding"), ("p2", "tests")],
            &[("p3", "docs")],
        ],
    );
    let out = drive(&plan, cfg(), Script::default(), 1_000);
    let record = out.record();
    assert_eq!(record.state, RunState::DoneSuccess);
    assert!(record.tiers.iter().all(|t| t.state == TierState::Complete));
    assert!(record.phases().all(|p| p.state == PhaseState::Complete));
    // Phases were dispatched in plan order, one attempt each.
    let order: Vec<String> = out
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DispatchBuilder(r) => Some(r.phase_id.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["p1", "p2", "p3"]);
    // Each phase went PHASE_EXECUTION → GATE → CI_RUNNING → SNAPSHOT_CREATED.
    let run_states: Vec<RunState> = record.history.iter().map(|c| c.state).collect();
    assert_eq!(
        &run_states[..3],
        &[
            RunState::PlanBootstrap,
            RunState::RunCreated,
            RunState::PhaseQueueing
        ]
    );
    let per_phase = [
        RunState::PhaseExecution,
        RunState::Gate,
        RunState::CiRunning,
        RunState::SnapshotCreated,
    ];
    for chunk in run_states[3..run_states.len() - 1].chunks(4) {
        assert_eq!(chunk, per_phase);
    }
    assert_eq!(run_states.last(), Some(&RunState::DoneSuccess));
    // Snapshot tags name run, tier and phase.
    let p3 = record
        .phases()
        .find(|p| p.phase_id.as_str() == "p3")
        .unwrap();
    assert_eq!(
        p3.snapshot_tag.as_deref(),
        Some("autonomous/happy/tier-t2/phase-p3")
    );
    assert_eq!(record.debt_status, DebtStatus::Clean);
    assert_eq!(
        out.actions.last(),
        Some(&Action::Finished {
            state: RunState::DoneSuccess
        })
    );
    assert!(!out.actions.contains(&Action::WriteIncidentPack));
    assert_eq!(record.usage.tokens, 30_000);
}

#[test]
fn flaky_ci_is_recorded_as_a_minor_ci_issue_and_the_phase_completes() {
    let plan = plan(
        "flaky",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("p1", "tests"), ("p2", "tests")]],
    );
    let script = Script {
        ci: Box::new(|r| {
            if r.phase_id.as_str() == "p1" {
                CiReport {
                    verdict: CiVerdict::Flaky,
                    attempts: 2,
                    failing_tests: vec!["t::flaky".into()],
                    output_tail: String::new(),
                    known_failures: vec![],
                    flaky_tests: vec![],
                    baseline: None,
                }
            } else {
                green(r)
            }
        }),
        ..Script::default()
    };
    let out = drive(&plan, cfg(), script, 1_000);
    let record = out.record();
    assert_eq!(record.state, RunState::DoneSuccess);
    assert_eq!(record.debt_status, DebtStatus::HasMinorIssues);
    let p1 = record.phases().next().unwrap();
    assert_eq!(p1.minor_issues, 1);
    assert_eq!(p1.usage.ci_runs, 2);
    assert_eq!(record.tiers[0].usage.ci_runs, 3);
    let ledger = out.supervisor.ledger().unwrap();
    let entry = ledger
        .backlog_entry(&"ci_flaky__p1".parse().unwrap())
        .expect("flaky issue recorded");
    assert_eq!(entry.base_severity, Severity::Minor);
}

#[test]
fn high_risk_phase_waits_in_gate_for_an_auditor_approve_before_ci() {
    let plan = plan(
        "risky",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("schema", "schema_change")]],
    );
    let out = drive(&plan, cfg(), Script::default(), 1_000);
    assert_eq!(out.record().state, RunState::DoneSuccess);
    let audits = out.audits();
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0].reason, AuditReason::HighRiskApproval);
    assert_eq!(audits[0].auditor_profile.as_deref(), Some("schema_review"));
    assert!(
        audits[0].patch.is_some(),
        "the Auditor sees the patch it approves"
    );
    // The audit came after the gate accepted the patch and before CI.
    let kinds: Vec<&str> = out
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::ApplyPatch(_) => Some("apply"),
            Action::RequestAudit(_) => Some("audit"),
            Action::RunCi(r) => Some(
                if r.profile == autopack_core::vocabulary::CiProfile::Strict {
                    "ci-strict"
                } else {
                    "ci-normal"
                },
            ),
            Action::CreateSnapshot(_) => Some("snapshot"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["apply", "audit", "ci-strict", "snapshot"]);
}

#[test]
fn high_risk_phase_is_never_applied_when_the_auditor_says_revise_then_escalate() {
    let plan = plan(
        "risky2",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("schema", "schema_change")], &[("d", "docs")]],
    );
    let mut calls = 0;
    let script = Script {
        auditor: Box::new(move |r| {
            calls += 1;
            audit(
                r,
                if calls == 1 {
                    AuditorRecommendation::Revise
                } else {
                    AuditorRecommendation::Escalate
                },
            )
        }),
        ..Script::default()
    };
    let out = drive(&plan, cfg(), script, 1_000);
    let record = out.record();
    assert_eq!(record.state, RunState::DoneFailedTierBlocked);
    assert!(
        !out.actions
            .iter()
            .any(|a| matches!(a, Action::CreateSnapshot(r) if r.phase_id.as_str() == "schema"))
    );
    assert_eq!(phase_state(&out, "schema"), PhaseState::Failed);
    assert_eq!(phase_state(&out, "d"), PhaseState::Complete);
    assert_eq!(
        out.dispatches("schema"),
        2,
        "revise gave the Builder one more attempt"
    );
}

#[test]
fn builder_attempts_exhausted_then_auditor_revise_then_success() {
    // docs: 2 builder attempts, 1 auditor attempt.
    let plan = plan(
        "revise",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("doc", "docs")]],
    );
    let script = Script {
        builder: Box::new(|r| {
            if r.attempt <= 2 {
                failed(r, &[&format!("t{}", r.attempt)])
            } else {
                success(r, 5_000)
            }
        }),
        auditor: Box::new(|r| audit(r, AuditorRecommendation::Revise)),
        ..Script::default()
    };
    let out = drive(&plan, cfg(), script, 1_000);
    let record = out.record();
    assert_eq!(record.state, RunState::DoneSuccess);
    let audits = out.audits();
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0].reason, AuditReason::AttemptsExhausted);
    assert_eq!(out.dispatches("doc"), 3);
    let phase = record.phases().next().unwrap();
    let outcomes: Vec<(AttemptRole, AttemptOutcome)> =
        phase.attempts.iter().map(|a| (a.role, a.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            (AttemptRole::Builder, AttemptOutcome::Failed),
            (AttemptRole::Builder, AttemptOutcome::Failed),
            (AttemptRole::Auditor, AttemptOutcome::Revise),
            (AttemptRole::Builder, AttemptOutcome::Succeeded),
        ]
    );
    // The third attempt carried the failures and the Auditor's notes.
    let third = out
        .actions
        .iter()
        .find_map(|a| match a {
            Action::DispatchBuilder(r) if r.attempt == 3 => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(third.feedback.len(), 3);
    assert!(third.feedback[2].starts_with("Auditor:"));
    assert_eq!(third.max_attempts, 3);
    // Phase went through RETRY on each failure.
    let states: Vec<PhaseState> = phase.history.iter().map(|c| c.state).collect();
    assert_eq!(
        states.iter().filter(|s| **s == PhaseState::Retry).count(),
        2
    );
}

#[test]
fn escalate_blocks_the_tier_and_later_tiers_still_run_under_multi_tier() {
    let plan = plan(
        "blocked",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("a1", "docs"), ("a2", "docs")], &[("b1", "tests")]],
    );
    let script = Script {
        builder: Box::new(|r| {
            if r.phase_id.as_str() == "a1" {
                failed(r, &["x"])
            } else {
                success(r, 1_000)
            }
        }),
        auditor: Box::new(|r| audit(r, AuditorRecommendation::Escalate)),
        ..Script::default()
    };
    let out = drive(&plan, cfg(), script, 1_000);
    let record = out.record();
    assert_eq!(record.state, RunState::DoneFailedTierBlocked);
    assert_eq!(record.tiers[0].state, TierState::Blocked);
    assert_eq!(record.tiers[1].state, TierState::Complete);
    assert_eq!(phase_state(&out, "a1"), PhaseState::Failed);
    assert_eq!(phase_state(&out, "a2"), PhaseState::Skipped);
    assert_eq!(phase_state(&out, "b1"), PhaseState::Complete);
    assert_eq!(out.dispatches("a2"), 0);
    assert!(out.actions.contains(&Action::WriteIncidentPack));
    let failure = record.failure.as_ref().unwrap();
    assert_eq!(failure.failure, RunFailure::TierBlocked);
    assert!(failure.reason.contains("t1"), "{}", failure.reason);
}

#[test]
fn escalate_under_single_tier_fails_at_once() {
    let plan = plan(
        "single",
        SafetyProfile::Normal,
        RunScope::SingleTier,
        &[&[("a1", "docs"), ("a2", "docs")]],
    );
    let script = Script {
        builder: Box::new(|r| failed(r, &["x"])),
        auditor: Box::new(|r| audit(r, AuditorRecommendation::Escalate)),
        ..Script::default()
    };
    let out = drive(&plan, cfg(), script, 1_000);
    let record = out.record();
    assert_eq!(record.state, RunState::DoneFailedTierBlocked);
    assert_eq!(phase_state(&out, "a2"), PhaseState::Skipped);
    assert_eq!(out.dispatches("a2"), 0);
}

#[test]
fn escalate_under_safety_critical_requires_human_review_at_once() {
    let plan = plan(
        "critical",
        SafetyProfile::SafetyCritical,
        RunScope::MultiTier,
        &[&[("a1", "docs")], &[("b1", "docs")]],
    );
    let script = Script {
        builder: Box::new(|r| failed(r, &["x"])),
        auditor: Box::new(|r| audit(r, AuditorRecommendation::Escalate)),
        ..Script::default()
    };
    let out = drive(&plan, cfg(), script, 1_000);
    let record = out.record();
    assert_eq!(record.state, RunState::DoneFailedRequiresHumanReview);
    assert_eq!(
        out.dispatches("b1"),
        0,
        "later tiers do not run under safety_critical"
    );
    assert_eq!(record.tiers[1].state, TierState::Pending);
    assert_eq!(phase_state(&out, "b1"), PhaseState::Skipped);
}

#[test]
fn run_token_cap_breach_ends_the_run() {
    let mut plan = plan(
        "tokens",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("p1", "feature_scaffolding"), ("p2", "feature_scaffolding")]],
    );
    plan.run.token_cap = Some(150_000);
    let script = Script {
        builder: Box::new(|r| success(r, 100_000)),
        ..Script::default()
    };
    let out = drive(&plan, cfg(), script, 1_000);
    let record = out.record();
    assert_eq!(record.state, RunState::DoneFailedTokenCapExceeded);
    assert_eq!(
        record.usage.tokens, 200_000,
        "spend passes the cap by at most one step"
    );
    let failure = record.failure.as_ref().unwrap();
    assert!(matches!(
        failure.breach,
        Some(autopack_core::budget::RunBreach::Tokens { .. })
    ));
    assert_eq!(failure.phase_id.as_ref().map(|p| p.as_str()), Some("p2"));
    assert_eq!(phase_state(&out, "p1"), PhaseState::Complete);
    assert_eq!(phase_state(&out, "p2"), PhaseState::Failed);
    assert_eq!(record.tiers[0].state, TierState::Blocked);
}

#[test]
fn an_attempt_over_the_incident_token_cap_is_a_failed_attempt() {
    // docs: incident cap 200k, 2 attempts.
    let plan = plan(
        "incident",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("d", "docs")]],
    );
    let script = Script {
        builder: Box::new(|r| success(r, if r.attempt == 1 { 250_000 } else { 1_000 })),
        ..Script::default()
    };
    let out = drive(&plan, cfg(), script, 1_000);
    assert_eq!(out.record().state, RunState::DoneSuccess);
    let phase = out.record().phases().next().unwrap();
    assert!(
        phase.attempts[0].reason.contains("incident token cap"),
        "{}",
        phase.attempts[0].reason
    );
    assert_eq!(out.dispatches("d"), 2);
}

#[test]
fn safety_critical_run_with_an_unresolved_major_issue_fails_and_is_not_clean() {
    let plan = plan(
        "major",
        SafetyProfile::SafetyCritical,
        RunScope::SingleTier,
        &[&[("p1", "tests"), ("p2", "tests")]],
    );
    let script = Script {
        builder: Box::new(|r| {
            let mut out = success(r, 1_000);
            if let AgentOutcome::Returned(res) = &mut out
                && r.phase_id.as_str() == "p1"
            {
                res.suggested_issues
                    .push(issue("schema_drift", Severity::Major));
            }
            out
        }),
        ..Script::default()
    };
    let out = drive(&plan, cfg(), script, 1_000);
    let record = out.record();
    assert_eq!(record.state, RunState::DoneFailedRequiresHumanReview);
    assert_eq!(record.unresolved_major_issues, 1);
    assert!(
        record.tiers[0]
            .breaches
            .iter()
            .any(|b| matches!(b, autopack_core::budget::TierBreach::MajorIssues { .. }))
    );
    assert_eq!(out.dispatches("p2"), 0);
}

#[test]
fn major_issue_under_normal_makes_the_tier_not_clean_but_the_run_goes_on() {
    let plan = plan(
        "notclean",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("p1", "tests")], &[("p2", "tests")]],
    );
    let script = Script {
        builder: Box::new(|r| {
            let mut out = success(r, 1_000);
            if let AgentOutcome::Returned(res) = &mut out
                && r.phase_id.as_str() == "p1"
            {
                res.suggested_issues
                    .push(issue("schema_drift", Severity::Major));
            }
            out
        }),
        ..Script::default()
    };
    let out = drive(&plan, cfg(), script, 1_000);
    let record = out.record();
    assert_eq!(record.state, RunState::DoneSuccess);
    assert_eq!(record.tiers[0].state, TierState::NotClean);
    assert_eq!(record.tiers[1].state, TierState::Complete);
}

#[test]
fn a_failure_loop_escalates_early() {
    // feature_scaffolding: 3 builder attempts; with a threshold of 2 the loop is seen first.
    let plan = plan(
        "loop",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("f", "feature_scaffolding")]],
    );
    let script = Script {
        builder: Box::new(|r| failed(r, &["tests::same_failure"])),
        auditor: Box::new(|r| audit(r, AuditorRecommendation::Escalate)),
        ..Script::default()
    };
    let out = drive(
        &plan,
        SupervisorConfig::default().with_failure_loop_threshold(2),
        script,
        1_000,
    );
    assert_eq!(out.record().state, RunState::DoneFailedTierBlocked);
    assert_eq!(out.dispatches("f"), 2, "the third attempt was not burnt");
    assert_eq!(out.audits()[0].reason, AuditReason::FailureLoop);
}

#[test]
fn different_failures_are_not_a_loop() {
    let plan = plan(
        "noloop",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("f", "feature_scaffolding")]],
    );
    let script = Script {
        builder: Box::new(|r| {
            if r.attempt < 3 {
                failed(r, &[&format!("t{}", r.attempt)])
            } else {
                success(r, 1)
            }
        }),
        ..Script::default()
    };
    let out = drive(
        &plan,
        SupervisorConfig::default().with_failure_loop_threshold(2),
        script,
        1_000,
    );
    assert_eq!(out.record().state, RunState::DoneSuccess);
    assert!(out.audits().is_empty());
}

#[test]
fn gate_rejections_and_red_ci_are_failed_attempts() {
    let plan = plan(
        "gate",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("f", "feature_scaffolding")]],
    );
    let script = Script {
        gate: Box::new(|r| {
            if r.attempt == 1 {
                Err(("outside_scope".into(), "src/x is outside the scope".into()))
            } else {
                Ok(commit(&format!("c{}", r.attempt)))
            }
        }),
        ci: Box::new(|r| {
            if r.commit == commit("c2") {
                // One attempt: a one-phase tier may run CI twice in all (ci_run_cap = 2 × phases).
                CiReport {
                    verdict: CiVerdict::Red,
                    attempts: 1,
                    failing_tests: vec!["t::a".into()],
                    output_tail: "assertion failed".into(),
                    known_failures: vec![],
                    flaky_tests: vec![],
                    baseline: None,
                }
            } else {
                green(r)
            }
        }),
        ..Script::default()
    };
    let out = drive(&plan, cfg(), script, 1_000);
    let record = out.record();
    assert_eq!(record.state, RunState::DoneSuccess);
    let phase = record.phases().next().unwrap();
    assert_eq!(phase.attempts.len(), 3);
    assert!(phase.attempts[0].reason.contains("outside_scope"));
    assert!(phase.attempts[1].reason.contains("t::a"));
    assert_eq!(phase.commit, Some(commit("c3")));
    assert_eq!(record.tiers[0].usage.ci_runs, 2);
    assert_eq!(record.tiers[0].state, TierState::Complete);
    let runs: Vec<RunState> = record.history.iter().map(|c| c.state).collect();
    // GATE → PHASE_EXECUTION (rejection), CI_RUNNING → PHASE_EXECUTION (red).
    assert!(
        runs.windows(2)
            .any(|w| w == [RunState::Gate, RunState::PhaseExecution])
    );
    assert!(
        runs.windows(2)
            .any(|w| w == [RunState::CiRunning, RunState::PhaseExecution])
    );
}

#[test]
fn garbage_from_an_agent_is_a_failed_attempt_not_a_crash() {
    let plan = plan(
        "garbage",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("d", "docs")]],
    );
    let script = Script {
        builder: Box::new(|r| {
            if r.attempt == 1 {
                AgentOutcome::Failed {
                    reason: "stdout was not JSON: expected value at line 1 column 1".into(),
                    tokens_used: 0,
                }
            } else if r.attempt == 2 {
                // A result for another phase.
                AgentOutcome::Returned(BuilderResult {
                    phase_id: "other".parse().unwrap(),
                    status: BuilderStatus::Success,
                    patch: Some(patch_for("x")),
                    probe_results: vec![],
                    suggested_issues: vec![],
                    tokens_used: 1,
                    failing_tests: vec![],
                    notes: String::new(),
                })
            } else {
                success(r, 1)
            }
        }),
        auditor: Box::new(|_| AgentOutcome::Failed {
            reason: "timed out after 600 s".into(),
            tokens_used: 0,
        }),
        ..Script::default()
    };
    let out = drive(&plan, cfg(), script, 1_000);
    let record = out.record();
    assert_eq!(record.state, RunState::DoneFailedTierBlocked);
    let phase = record.phases().next().unwrap();
    assert!(phase.attempts[0].reason.contains("not JSON"));
    assert!(phase.attempts[1].reason.contains("other"));
    assert!(
        phase
            .failure_reason
            .as_deref()
            .unwrap()
            .contains("timed out")
    );
}

#[test]
fn duration_budget_ends_the_run_from_the_time_the_host_passes_in() {
    let mut plan = plan(
        "slow",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("p1", "docs"), ("p2", "docs")]],
    );
    plan.run.max_duration_minutes = Some(1);
    let script = Script {
        step: Duration::seconds(20),
        ..Script::default()
    };
    let out = drive(&plan, cfg(), script, 1_000);
    let record = out.record();
    assert_eq!(record.state, RunState::DoneFailedBudgetExhausted);
    assert!(matches!(
        record.failure.as_ref().unwrap().breach,
        Some(autopack_core::budget::RunBreach::Duration { .. })
    ));
}

#[test]
fn too_many_phases_fail_the_run_at_start() {
    let mut plan = plan(
        "many",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("p1", "docs"), ("p2", "docs"), ("p3", "docs")]],
    );
    let strategy = strategy(&plan);
    plan.run.max_phases = Some(2);
    // The strategy was compiled for a larger cap; the Supervisor enforces the plan's own
    // validation first.
    let mut sup = Supervisor::new();
    let err = sup.handle(Input::Start {
        at: t0(),
        plan: plan.clone(),
        strategy: Box::new(strategy),
        backlog: Box::default(),
    });
    assert!(
        matches!(err, Err(SupervisorError::InvalidPlan(_))),
        "{err:?}"
    );
    assert_eq!(sup.state(), RunState::PlanBootstrap);
}

#[test]
fn inputs_that_answer_nothing_are_refused_and_change_nothing() {
    let plan = plan(
        "strict",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("p1", "docs")]],
    );
    let mut sup = Supervisor::new();
    sup.handle(start(&plan)).unwrap();
    let Some(Action::DispatchBuilder(req)) = sup.poll_action() else {
        panic!("dispatch expected")
    };
    let before = sup.record().cloned();
    let wrong_attempt = Input::BuilderFinished {
        at: t0(),
        phase_id: req.phase_id.clone(),
        attempt: 2,
        outcome: success(&req, 1),
    };
    assert!(matches!(
        sup.handle(wrong_attempt),
        Err(SupervisorError::Unexpected { .. })
    ));
    let ci = Input::CiFinished {
        at: t0(),
        phase_id: req.phase_id.clone(),
        report: green_report(),
    };
    assert!(matches!(
        sup.handle(ci),
        Err(SupervisorError::Unexpected { .. })
    ));
    assert!(matches!(
        sup.handle(start(&plan)),
        Err(SupervisorError::AlreadyStarted)
    ));
    assert_eq!(sup.record().cloned(), before);
    assert_eq!(sup.outstanding(), Some(Action::DispatchBuilder(req)));
}

#[test]
fn a_tier_that_has_used_its_ci_run_cap_cannot_verify_another_patch() {
    let plan = plan(
        "cicap",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("f", "feature_scaffolding")]],
    );
    let script = Script {
        ci: Box::new(|r| CiReport {
            verdict: CiVerdict::Red,
            attempts: r.max_attempts,
            failing_tests: vec![],
            output_tail: String::new(),
            known_failures: vec![],
            flaky_tests: vec![],
            baseline: None,
        }),
        ..Script::default()
    };
    let out = drive(&plan, cfg(), script, 1_000);
    let record = out.record();
    assert_eq!(record.state, RunState::DoneFailedTierBlocked);
    // Never more CI attempts than the cap paid for.
    assert!(record.tiers[0].usage.ci_runs <= record.tiers[0].caps.ci_run_cap);
    let reason = record
        .phases()
        .next()
        .unwrap()
        .failure_reason
        .clone()
        .unwrap();
    assert!(reason.contains("ci_run_cap"), "{reason}");
}

fn green_report() -> CiReport {
    CiReport {
        verdict: CiVerdict::Green,
        attempts: 1,
        failing_tests: vec![],
        output_tail: String::new(),
        known_failures: vec![],
        flaky_tests: vec![],
        baseline: None,
    }
}

#[test]
fn abort_and_environment_failures_end_the_run_with_their_states() {
    let plan = plan(
        "abort",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("p1", "docs")]],
    );
    for (input, state) in [
        (
            Input::Abort {
                at: t0(),
                reason: "operator".into(),
            },
            RunState::DoneFailedManualAbort,
        ),
        (
            Input::EnvironmentFailed {
                at: t0(),
                reason: "git: permission denied".into(),
            },
            RunState::DoneFailedEnvironment,
        ),
    ] {
        let mut sup = Supervisor::new();
        sup.handle(start(&plan)).unwrap();
        sup.handle(input).unwrap();
        assert_eq!(sup.state(), state);
        let actions: Vec<Action> = std::iter::from_fn(|| sup.poll_action()).collect();
        assert!(actions.contains(&Action::WriteIncidentPack));
        assert_eq!(actions.last(), Some(&Action::Finished { state }));
        assert!(
            sup.record()
                .unwrap()
                .phases()
                .all(|p| p.state.is_terminal())
        );
        assert!(matches!(
            sup.handle(Input::Tick { at: t0() }),
            Err(SupervisorError::Finished { .. })
        ));
    }
}

#[test]
fn replaying_the_inputs_reproduces_state_and_actions() {
    let plan = plan(
        "replay",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[
            &[("a1", "docs"), ("a2", "schema_change")],
            &[("b1", "feature_scaffolding")],
        ],
    );
    let script = Script {
        builder: Box::new(|r| {
            if r.attempt == 1 && r.phase_id.as_str() == "a1" {
                failed(r, &["x"])
            } else {
                success(r, 7)
            }
        }),
        ..Script::default()
    };
    let out = drive(&plan, cfg(), script, 1_000);
    let (replayed, actions) = replay(&out.inputs, cfg());
    assert_eq!(replayed.record(), out.supervisor.record());
    assert_eq!(actions, out.actions);
    // And through JSON, as a journal would store them.
    let json: Vec<String> = out
        .inputs
        .iter()
        .map(|i| serde_json::to_string(i).unwrap())
        .collect();
    let parsed: Vec<Input> = json
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (again, _) = replay(&parsed, cfg());
    assert_eq!(again.record(), out.supervisor.record());
}
