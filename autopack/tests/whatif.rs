//! What-if replay on recorded runs: each run is scripted, driven by the blocking driver
//! over a memory store, read back from its journal, and replayed under another ruleset.
//! A tighter token cap or fewer attempts changes the outcome; a looser one does not; more
//! attempts than the run made needs work it never recorded.

mod common;

use autopack::driver::JournalEntry;
use autopack::supervisor::{CiReport, SupervisorConfig};
use autopack::whatif::{
    Decision, Ending, Recorded, WhatIf, WhatIfSummary, strategy_under, summarise, what_if,
};
use autopack_core::ids::{PhaseId, RunId};
use autopack_core::journal;
use autopack_core::lifecycle::RunState;
use autopack_core::message::AuditorRecommendation;
use autopack_core::record::{AttemptRole, CiVerdict};
use autopack_core::vocabulary::{RunScope, SafetyProfile};
use autopack_strategy::Ruleset;
use common::{Script, audit, drivers, failed, plan, success};

/// Three phases in two tiers: `p1` (tests: 3 Builder attempts, 1 Auditor attempt by
/// default), `p2` (feature scaffolding), `p3` (docs, in the second tier).
fn three_phases(run_id: &str) -> autopack_core::plan::Plan {
    plan(
        run_id,
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[
            &[("p1", "tests"), ("p2", "feature_scaffolding")],
            &[("p3", "docs")],
        ],
    )
}

/// Drives `script` over `run_id`'s plan, journals the run through the blocking driver in
/// a memory store, and reads it back from the journal.
fn record(run_id: &str, script: Script<'_>) -> Recorded {
    let config = SupervisorConfig::default();
    let out = common::drive(&three_phases(run_id), config, script, 1_000);
    assert!(out.supervisor.is_finished(), "the scripted run ends");
    let mut store = drivers::journaled(&out, config);
    let run = RunId::new(run_id).unwrap();
    let entries: Vec<JournalEntry> =
        journal::replay(&mut store, &run).expect("the journal reads back and its chain holds");
    let recorded = Recorded::from_entries(entries).expect("the journal is a run");
    assert_eq!(
        &recorded.record(),
        &out.record(),
        "the replay rebuilds the run"
    );
    recorded
}

/// `p1`'s first Builder attempt fails; `p2`'s CI is flaky; the Auditor is never needed.
/// 1,000 + 3 × `tokens` Builder tokens in all.
fn retried_once(run_id: &str, tokens: u64) -> Recorded {
    record(
        run_id,
        Script {
            builder: Box::new(move |r| {
                if r.phase_id.as_str() == "p1" && r.attempt == 1 {
                    failed(r, &["t::first"])
                } else {
                    success(r, tokens)
                }
            }),
            ci: Box::new(|r| {
                if r.phase_id.as_str() == "p2" {
                    CiReport::new(CiVerdict::Flaky, 2)
                } else {
                    CiReport::new(CiVerdict::Green, 1)
                }
            }),
            ..Script::default()
        },
    )
}

/// `p1`'s Builder fails every attempt (a different test each time, so no failure loop)
/// and the Auditor escalates: the first tier is blocked, the run ends
/// `DONE_FAILED_TIER_BLOCKED` after `p3`.
fn always_failing(run_id: &str) -> Recorded {
    record(
        run_id,
        Script {
            builder: Box::new(|r| {
                if r.phase_id.as_str() == "p1" {
                    failed(r, &[format!("t::attempt_{}", r.attempt).as_str()])
                } else {
                    success(r, 1_000)
                }
            }),
            auditor: Box::new(|r| audit(r, AuditorRecommendation::Escalate)),
            ..Script::default()
        },
    )
}

fn ruleset(json: &str) -> Ruleset {
    Ruleset::from_json(json, "NEW.json").expect("the ruleset parses")
}

/// The ruleset the runs were recorded under (the built-in defaults).
fn builtin() -> Ruleset {
    Ruleset::builtin(autopack_core::ids::ProjectId::new("builtin").unwrap())
}

fn under(recorded: &Recorded, ruleset: &Ruleset) -> WhatIf {
    let strategy = strategy_under(recorded, ruleset).expect("the strategy compiles");
    what_if(recorded, strategy)
}

fn p(id: &str) -> PhaseId {
    PhaseId::new(id).unwrap()
}

#[test]
fn the_recorded_ruleset_replays_every_decision_as_recorded() {
    for recorded in [retried_once("same-1", 10_000), always_failing("same-2")] {
        let strategy = strategy_under(&recorded, &builtin()).unwrap();
        assert_eq!(&strategy, recorded.strategy(), "the same strategy compiles");
        let result = what_if(&recorded, strategy);
        assert_eq!(result.first_difference, None, "{result}");
        assert_eq!(result.ending, Ending::Finished(recorded.state()));
        assert!(result.same_end);
        assert_eq!(result.tokens_used, result.recorded_tokens);
    }
}

#[test]
fn a_run_token_cap_below_what_the_run_spent_ends_it_on_the_cap() {
    let recorded = retried_once("tight-cap", 10_000);
    assert_eq!(recorded.state(), RunState::DoneSuccess);
    assert_eq!(recorded.record().usage.tokens, 31_000);
    let result = under(
        &recorded,
        &ruleset(r#"{"project_id": "builtin", "run_token_cap": 25000}"#),
    );
    assert_eq!(
        result.ending,
        Ending::Finished(RunState::DoneFailedTokenCapExceeded),
        "{result}"
    );
    assert!(!result.same_end);
    // p3's Builder spends the tokens over the cap: where the run applied its patch, the
    // what-if run writes its incident pack.
    let difference = result.first_difference.clone().expect("a difference");
    assert_eq!(
        difference.recorded,
        Some(Decision::ApplyPatch {
            phase_id: p("p3"),
            role: AttemptRole::Builder,
            attempt: 1
        })
    );
    assert_eq!(difference.now, Some(Decision::WriteIncidentPack));
    assert_eq!(
        recorded.decisions()[difference.step - 2],
        Decision::DispatchBuilder {
            phase_id: p("p3"),
            attempt: 1
        }
    );
    assert_eq!(result.tokens_used, 31_000);
    let text = result.render_text();
    assert!(
        text.starts_with("ends differently: DONE_SUCCESS → DONE_FAILED_TOKEN_CAP_EXCEEDED\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "first difference at decision {}: recorded the patch of builder attempt 1 of phase p3 at the gate; now the incident pack",
            difference.step
        )),
        "{text}"
    );
    assert!(text.contains("why: "), "{text}");
}

#[test]
fn fewer_builder_attempts_than_the_run_needed_fail_the_phase() {
    // p1 needed two Builder attempts; with one and no Auditor the phase fails, its tier is
    // blocked and the second tier still runs on recorded outcomes.
    let recorded = retried_once("fewer", 1_000);
    let result = under(
        &recorded,
        &ruleset(
            r#"{"project_id": "builtin",
                "category_defaults": {"tests": {"max_builder_attempts": 1, "max_auditor_attempts": 0}}}"#,
        ),
    );
    assert_eq!(
        result.ending,
        Ending::Finished(RunState::DoneFailedTierBlocked),
        "{result}"
    );
    assert!(!result.same_end);
    let difference = result.first_difference.expect("a difference");
    assert_eq!(difference.step, 2);
    assert_eq!(
        difference.recorded,
        Some(Decision::DispatchBuilder {
            phase_id: p("p1"),
            attempt: 2
        })
    );
    // p2 is skipped with its tier; p3 is dispatched next.
    assert_eq!(
        difference.now,
        Some(Decision::DispatchBuilder {
            phase_id: p("p3"),
            attempt: 1
        })
    );
}

#[test]
fn fewer_builder_attempts_with_a_recorded_revise_exhaust_the_auditor() {
    // Recorded: three failed attempts, an Auditor `revise`, a fourth attempt that passes.
    let recorded = record(
        "revise",
        Script {
            builder: Box::new(|r| {
                if r.phase_id.as_str() == "p1" && r.attempt <= 3 {
                    failed(r, &[format!("t::attempt_{}", r.attempt).as_str()])
                } else {
                    success(r, 1_000)
                }
            }),
            auditor: Box::new(|r| audit(r, AuditorRecommendation::Revise)),
            ..Script::default()
        },
    );
    assert_eq!(recorded.state(), RunState::DoneSuccess);
    // Two attempts: the Auditor's revise (recorded) comes after the second, its extra
    // attempt is the recorded third, which fails; no Auditor attempt is left.
    let result = under(
        &recorded,
        &ruleset(
            r#"{"project_id": "builtin", "category_defaults": {"tests": {"max_builder_attempts": 2}}}"#,
        ),
    );
    assert_eq!(
        result.ending,
        Ending::Finished(RunState::DoneFailedTierBlocked),
        "{result}"
    );
    let difference = result.first_difference.expect("a difference");
    assert_eq!(
        (difference.step, difference.recorded, difference.now),
        (
            3,
            Some(Decision::DispatchBuilder {
                phase_id: p("p1"),
                attempt: 3
            }),
            Some(Decision::RequestAudit {
                phase_id: p("p1"),
                attempt: 1
            })
        )
    );
    assert_eq!(result.failure.as_deref(), Some("blocked tiers: t1"));
    // p1's three attempts (1,000 each) and the revise (500) were all recorded answers; p2
    // was skipped with its tier; p3 ran (1,000).
    assert_eq!(result.tokens_used, 4_500);
}

#[test]
fn a_looser_cap_and_more_attempts_change_nothing() {
    let recorded = retried_once("looser", 10_000);
    for json in [
        r#"{"project_id": "builtin", "run_token_cap": 10000000}"#,
        r#"{"project_id": "builtin", "category_defaults": {"tests": {"max_builder_attempts": 5}}}"#,
        r#"{"project_id": "builtin", "run_token_cap": 40000,
            "category_defaults": {"tests": {"max_builder_attempts": 4, "max_auditor_attempts": 2}}}"#,
    ] {
        let result = under(&recorded, &ruleset(json));
        assert_eq!(result.first_difference, None, "{json}: {result}");
        assert_eq!(result.ending, Ending::Finished(RunState::DoneSuccess));
        assert!(result.same_end);
        assert!(
            result
                .render_text()
                .starts_with("ends the same: DONE_SUCCESS\n")
        );
    }
}

#[test]
fn more_attempts_than_a_failed_run_made_need_an_unrecorded_builder_attempt() {
    let recorded = always_failing("more");
    assert_eq!(recorded.state(), RunState::DoneFailedTierBlocked);
    let result = under(
        &recorded,
        &ruleset(
            r#"{"project_id": "builtin", "category_defaults": {"tests": {"max_builder_attempts": 4}}}"#,
        ),
    );
    let fourth = Decision::DispatchBuilder {
        phase_id: p("p1"),
        attempt: 4,
    };
    assert_eq!(
        result.ending,
        Ending::NeedsUnrecorded {
            step: 4,
            decision: fourth.clone()
        },
        "{result}"
    );
    assert!(!result.same_end);
    let difference = result.first_difference.clone().expect("a difference");
    assert_eq!(difference.step, 4);
    assert_eq!(
        difference.recorded,
        Some(Decision::RequestAudit {
            phase_id: p("p1"),
            attempt: 1
        })
    );
    assert_eq!(difference.now, Some(fourth));
    let text = result.render_text();
    assert!(
        text.starts_with(
            "needs work never recorded: decision 4 asks for builder attempt 4 of phase p1\n"
        ),
        "{text}"
    );
}

#[test]
fn a_summary_over_several_runs_counts_each_end() {
    let runs = [
        retried_once("cheap", 1_000),
        retried_once("dear-1", 10_000),
        always_failing("failing"),
        retried_once("dear-2", 10_000),
    ];
    let new = ruleset(
        r#"{"project_id": "builtin", "run_token_cap": 25000,
            "category_defaults": {"tests": {"max_builder_attempts": 4}}}"#,
    );
    let results: Vec<(RunId, WhatIf)> = runs
        .iter()
        .map(|r| (r.run_id().clone(), under(r, &new)))
        .collect();
    let summary: WhatIfSummary = summarise(&results);
    assert_eq!(summary.runs, 4);
    assert_eq!(summary.same_end, 1);
    assert_eq!(summary.ended_differently, 2);
    assert_eq!(summary.needs_unrecorded, 1);
    assert_eq!(
        summary.needs_unrecorded_runs,
        vec![RunId::new("failing").unwrap()]
    );
    assert_eq!(summary.incomplete, 0);
    assert_eq!(summary.decided_differently, 3);
    assert_eq!(summary.transitions.len(), 1);
    let transition = &summary.transitions[0];
    assert_eq!(
        (transition.from, transition.to, transition.runs),
        (
            RunState::DoneSuccess,
            RunState::DoneFailedTokenCapExceeded,
            2
        )
    );
    let text = summary.render_text();
    assert!(
        text.contains("DONE_SUCCESS → DONE_FAILED_TOKEN_CAP_EXCEEDED: 2 (dear-1, dear-2)"),
        "{text}"
    );
    assert!(
        text.starts_with(
            "4 runs: 1 ended the same, 2 ended differently, 1 needed work never recorded\n"
        ),
        "{text}"
    );
    let json = serde_json::to_value(&summary).expect("the summary serialises");
    assert_eq!(json["ended_differently"], 2);
    assert_eq!(
        json["transitions"][0]["to"],
        "DONE_FAILED_TOKEN_CAP_EXCEEDED"
    );
}
