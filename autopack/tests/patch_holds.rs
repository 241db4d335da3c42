//! SPEC §13 in the Supervisor: held patches (test integrity, protected paths that need an
//! approve), the frozen patch policy in every patch request, and the CI baseline.

mod common;

use autopack::supervisor::{Action, CiBaseline, CiReport, CiRequest, SupervisorConfig};
use autopack_core::lifecycle::{PhaseState, RunState};
use autopack_core::message::AuditorRecommendation;
use autopack_core::patch_rules::{PatchHold, TestIntegrityFinding};
use autopack_core::record::CiVerdict;
use autopack_core::vocabulary::{CiProfile, RunScope, SafetyProfile};
use autopack_strategy::Ruleset;
use common::*;

fn skip_hold() -> PatchHold {
    PatchHold::TestIntegrity {
        path: "tests/test_api.py".into(),
        finding: TestIntegrityFinding::SkipMarker {
            marker: "@pytest.mark.skip".into(),
        },
    }
}

fn recorded_keys(out: &Outcome) -> Vec<String> {
    out.actions
        .iter()
        .filter_map(|a| match a {
            Action::RecordIssues { observations, .. } => Some(observations),
            _ => None,
        })
        .flatten()
        .map(|o| o.issue.issue_key.to_string())
        .collect()
}

fn ci_requests(out: &Outcome) -> Vec<&CiRequest> {
    out.actions
        .iter()
        .filter_map(|a| match a {
            Action::RunCi(r) => Some(r),
            _ => None,
        })
        .collect()
}

#[test]
fn a_test_integrity_hold_needs_an_approve_runs_strict_ci_and_is_recorded() {
    // `tests` is a normal, auto-applied category with normal CI: the hold alone raises it.
    let plan = plan(
        "held",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("p1", "tests")]],
    );
    let script = Script {
        holds: Box::new(|r| {
            if r.attempt == 1 {
                vec![skip_hold()]
            } else {
                Vec::new()
            }
        }),
        ..Script::default()
    };
    let out = drive(&plan, SupervisorConfig::default(), script, 1_000);
    assert_eq!(out.record().state, RunState::DoneSuccess);
    let audits = out.audits();
    assert_eq!(audits.len(), 1, "the held patch went to the Auditor");
    assert!(
        audits[0]
            .failures
            .iter()
            .any(|f| f.contains("test_integrity")
                && f.contains("tests/test_api.py")
                && f.contains("@pytest.mark.skip")),
        "{:?}",
        audits[0].failures
    );
    let ci = ci_requests(&out);
    assert_eq!(ci.len(), 1);
    assert_eq!(
        ci[0].profile,
        CiProfile::Strict,
        "test integrity makes CI strict"
    );
    assert_eq!(recorded_keys(&out), ["test_integrity__p1"]);
    let phase = out.record().phases().next().unwrap();
    assert_eq!(phase.ci_runs[0].profile, CiProfile::Strict);
    assert_eq!(phase.minor_issues, 1);
}

#[test]
fn a_held_patch_in_a_phase_without_auditor_attempts_fails_the_phase_naming_the_hold() {
    let plan = plan(
        "noaudit",
        SafetyProfile::Normal,
        RunScope::SingleTier,
        &[&[("p1", "tests")]],
    );
    let mut strategy = strategy(&plan);
    for slice in strategy.phase_strategies.values_mut() {
        slice.max_auditor_attempts = 0;
    }
    let start = autopack::supervisor::Input::Start {
        at: t0(),
        plan: plan.clone(),
        strategy: Box::new(strategy),
        backlog: Box::default(),
    };
    let mut script = Script {
        holds: Box::new(|_| {
            vec![PatchHold::ProtectedPath {
                path: "docs/adr/1.md".into(),
                pattern: "docs/adr/**".into(),
            }]
        }),
        ..Script::default()
    };
    let out = drive_from(start, SupervisorConfig::default(), &mut script, 1_000);
    let phase = out.record().phases().next().unwrap();
    assert_eq!(phase.state, PhaseState::Failed);
    let reason = out.record().failure.as_ref().unwrap().reason.clone();
    assert!(
        reason.contains("docs/adr/1.md") && reason.contains("docs/adr/**"),
        "{reason}"
    );
    assert!(
        ci_requests(&out).is_empty(),
        "a held patch is never verified without an approve"
    );
}

#[test]
fn an_auditor_revise_of_a_held_patch_sends_the_phase_back_and_the_clean_patch_runs_normal_ci() {
    let plan = plan(
        "revise",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("p1", "tests")]],
    );
    let script = Script {
        holds: Box::new(|r| {
            if r.attempt == 1 {
                vec![skip_hold()]
            } else {
                Vec::new()
            }
        }),
        auditor: Box::new(|r| audit(r, AuditorRecommendation::Revise)),
        ..Script::default()
    };
    let out = drive(&plan, SupervisorConfig::default(), script, 1_000);
    assert_eq!(out.record().state, RunState::DoneSuccess);
    assert_eq!(out.dispatches("p1"), 2);
    let ci = ci_requests(&out);
    assert_eq!(ci.len(), 1);
    assert_eq!(
        ci[0].profile,
        CiProfile::Normal,
        "the second patch carries no hold"
    );
}

#[test]
fn patch_requests_carry_the_frozen_policy_with_the_rulesets_limits() {
    let plan = plan(
        "limits",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("p1", "docs")]],
    );
    let ruleset = Ruleset::from_json(
        r#"{"project_id": "p", "patch_policy": {
            "builder_mode_limits": {"tweak_light": {"max_files": 7, "max_line_bytes": 99}},
            "allow_symlinks": true,
            "extra_protected_paths": [{"pattern": "docs/adr/**", "action": "auditor_approve"}]
        }}"#,
        "ruleset.json",
    )
    .unwrap();
    let strategy = autopack_strategy::dry_run(&plan, Some(&ruleset), None).unwrap();
    let start = autopack::supervisor::Input::Start {
        at: t0(),
        plan: plan.clone(),
        strategy: Box::new(strategy.clone()),
        backlog: Box::default(),
    };
    let mut script = Script::default();
    let out = drive_from(start, SupervisorConfig::default(), &mut script, 1_000);
    let request = out
        .actions
        .iter()
        .find_map(|a| match a {
            Action::ApplyPatch(r) => Some(r),
            _ => None,
        })
        .unwrap();
    let mode = strategy
        .phase_strategies
        .values()
        .next()
        .unwrap()
        .builder_mode
        .clone();
    assert_eq!(request.builder_mode.as_ref(), Some(&mode));
    assert_eq!(request.limits, strategy.patch_policy.limits_for(&mode));
    if mode.as_str() == "tweak_light" {
        assert_eq!(
            (request.limits.max_files, request.limits.max_line_bytes),
            (7, 99)
        );
    }
    assert!(request.policy.allow_symlinks);
    assert!(
        request
            .policy
            .protected_paths
            .iter()
            .any(|p| p.pattern == "docs/adr/**")
    );
    assert!(
        request
            .policy
            .protected_paths
            .iter()
            .any(|p| p.pattern == ".github/workflows/**")
    );
}

#[test]
fn the_baseline_is_kept_from_the_first_ci_run_and_known_failures_are_recorded_not_failed() {
    let plan = plan(
        "baseline",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("p1", "tests"), ("p2", "tests")]],
    );
    let script = Script {
        ci: Box::new(|r: &CiRequest| {
            let baseline = CiBaseline {
                profile: r.profile,
                commit: commit("base"),
                failing_tests: vec!["tests.test_old::test_broken".into()],
            };
            CiReport {
                verdict: CiVerdict::Green,
                attempts: 1,
                failing_tests: vec![],
                output_tail: String::new(),
                known_failures: vec!["tests.test_old::test_broken".into()],
                flaky_tests: vec![],
                // Only when the request carried none, as a host computes it once.
                baseline: r.baseline.is_none().then_some(baseline),
            }
        }),
        ..Script::default()
    };
    let out = drive(&plan, SupervisorConfig::default(), script, 1_000);
    assert_eq!(out.record().state, RunState::DoneSuccess);
    let ci = ci_requests(&out);
    assert_eq!(ci.len(), 2);
    assert!(ci[0].baseline.is_none());
    let kept = ci[1]
        .baseline
        .as_ref()
        .expect("the second request carries the baseline");
    assert_eq!(kept.failing_tests, ["tests.test_old::test_broken"]);
    assert_eq!(
        recorded_keys(&out),
        ["ci_preexisting_failures__p1", "ci_preexisting_failures__p2"]
    );
    // The baseline came in through a journaled input: a replay rebuilds it.
    let (replayed, actions) = replay(&out.inputs, SupervisorConfig::default());
    assert_eq!(replayed.record(), out.supervisor.record());
    let replayed_ci: Vec<&CiRequest> = actions
        .iter()
        .filter_map(|a| match a {
            Action::RunCi(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(replayed_ci, ci);
}

#[test]
fn flaky_tests_are_named_in_the_flaky_issue() {
    let plan = plan(
        "flaky",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("p1", "tests")]],
    );
    let script = Script {
        ci: Box::new(|_| CiReport {
            verdict: CiVerdict::Flaky,
            attempts: 2,
            failing_tests: vec!["a::b".into(), "c::d".into()],
            output_tail: String::new(),
            known_failures: vec![],
            flaky_tests: vec!["a::b".into()],
            baseline: None,
        }),
        ..Script::default()
    };
    let out = drive(&plan, SupervisorConfig::default(), script, 1_000);
    let evidence: Vec<Vec<String>> = out
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::RecordIssues { observations, .. } => Some(observations),
            _ => None,
        })
        .flatten()
        .map(|o| o.issue.evidence_refs.clone())
        .collect();
    assert_eq!(evidence, [vec!["a::b".to_owned()]]);
}
