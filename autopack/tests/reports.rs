//! The reports of SPEC §11 and promotion eligibility, over scripted runs.

mod common;

use autopack::promotion;
use autopack::report::{backlog_report, budget_report, run_list, tier_report};
use autopack::supervisor::{AgentOutcome, SupervisorConfig};
use autopack_apply::PromotionRefusal;
use autopack_core::lifecycle::RunState;
use autopack_core::message::AuditorRecommendation;
use autopack_core::vocabulary::{RunScope, SafetyProfile, Severity};
use common::*;

fn successful() -> Outcome {
    let plan = plan(
        "good-run",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[
            &[("p1", "feature_scaffolding"), ("p2", "docs")],
            &[("p3", "tests")],
        ],
    );
    drive(&plan, SupervisorConfig::default(), Script::default(), 1_000)
}

fn blocked() -> Outcome {
    let plan = plan(
        "blocked-run",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("a1", "docs"), ("a2", "docs")], &[("b1", "tests")]],
    );
    let script = Script {
        builder: Box::new(|r| {
            if r.phase_id.as_str() == "a1" {
                failed(r, &["tests::users::test_indexes"])
            } else {
                let mut out = success(r, 20_000);
                if let AgentOutcome::Returned(res) = &mut out {
                    res.suggested_issues
                        .push(issue("lint_warning", Severity::Minor));
                }
                out
            }
        }),
        auditor: Box::new(|r| audit(r, AuditorRecommendation::Escalate)),
        ..Script::default()
    };
    drive(&plan, SupervisorConfig::default(), script, 1_000)
}

fn over_budget() -> Outcome {
    let mut plan = plan(
        "costly-run",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[
            ("f1", "feature_scaffolding"),
            ("s1", "schema_change"),
            ("d1", "docs"),
        ]],
    );
    plan.run.token_cap = Some(1_000_000);
    let script = Script {
        builder: Box::new(|r| {
            success(
                r,
                match r.phase_id.as_str() {
                    "f1" => 100_000,
                    "s1" => 800_000,
                    _ => 150_000,
                },
            )
        }),
        ..Script::default()
    };
    drive(&plan, SupervisorConfig::default(), script, 1_000)
}

#[test]
fn run_list_names_status_debt_and_spend() {
    let (a, b, c) = (successful(), blocked(), over_budget());
    let list = run_list([a.record(), b.record(), c.record()]);
    assert_eq!(list.runs[0].status, RunState::DoneSuccess);
    assert!(list.runs[0].promotion_eligible);
    assert_eq!(list.runs[1].status, RunState::DoneFailedTierBlocked);
    assert_eq!(list.runs[2].status, RunState::DoneFailedTokenCapExceeded);
    insta::assert_snapshot!("run_list", list.to_string());
    insta::assert_json_snapshot!("run_list_json", list);
}

#[test]
fn tier_report_flags_blocked_tiers_and_refuses_promotion() {
    let out = blocked();
    let report = tier_report(out.record());
    assert!(!report.promotion_eligible);
    assert!(report.tiers[0].promotion_blocked);
    assert!(!report.tiers[1].promotion_blocked);
    insta::assert_snapshot!("tier_report_blocked", report.to_string());
    let good = tier_report(successful().record());
    assert!(good.promotion_eligible && good.refusals.is_empty());
    insta::assert_snapshot!("tier_report_clean", good.to_string());
}

#[test]
fn promotion_refusals_follow_the_spec_list() {
    let refusals = promotion::eligibility(blocked().record()).unwrap_err();
    assert!(
        refusals
            .iter()
            .any(|r| matches!(r, PromotionRefusal::NotSucceeded { .. }))
    );
    assert!(
        refusals
            .iter()
            .any(|r| matches!(r, PromotionRefusal::TierBlocked { .. }))
    );
    let refusals = promotion::eligibility(over_budget().record()).unwrap_err();
    assert!(refusals.contains(&PromotionRefusal::BudgetFailure));
    assert!(promotion::eligibility(successful().record()).is_ok());
}

#[test]
fn backlog_report_lists_top_keys_with_age() {
    let out = blocked();
    let report = backlog_report(out.supervisor.ledger().unwrap(), 5);
    assert_eq!(report.by_runs[0].issue_key.as_str(), "lint_warning");
    // a2 was skipped when a1 blocked the tier: only b1 reported it.
    assert_eq!(report.by_occurrences[0].occurrence_count, 1);
    assert_eq!(report.by_tiers[0].age_in_tiers, 1);
    insta::assert_snapshot!("backlog_report", report.to_string());
}

#[test]
fn budget_report_shows_which_slices_dominated_spend() {
    let (a, c) = (successful(), over_budget());
    let report = budget_report([a.record(), c.record()]);
    assert_eq!(report.runs.len(), 1, "only the run with a budget problem");
    let run = &report.runs[0];
    assert_eq!(run.slices[0].slice, "schema_change:high");
    assert!(run.slices[0].share_per_mille > 700);
    assert_eq!(run.auditor.phases_audited, 1);
    insta::assert_snapshot!("budget_report", report.to_string());
    insta::assert_json_snapshot!("budget_report_json", report);
}
