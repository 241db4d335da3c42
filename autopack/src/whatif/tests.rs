//! Unit tests of the what-if replay.

use super::*;
use crate::supervisor::{AgentOutcome, CiReport};
use autopack_core::message::BuilderResult;
use autopack_core::record::CiVerdict;
use chrono::{Duration, TimeZone};

fn plan() -> Plan {
    Plan::from_json(
        r#"{
          "run": {"run_id": "r1"},
          "tiers": [{"tier_id": "t1", "tier_index": 0, "name": "One"}],
          "phases": [
            {"phase_id": "p1", "phase_index": 0, "tier_id": "t1", "name": "A",
             "task_category": "tests"},
            {"phase_id": "p2", "phase_index": 1, "tier_id": "t1", "name": "B",
             "task_category": "tests"}
          ]}"#,
        "plan.json",
    )
    .expect("the plan parses")
}

fn ruleset(json: &str) -> Ruleset {
    Ruleset::from_json(json, "ruleset.json").expect("the ruleset parses")
}

/// The journal entries of a run of `plan()` under `ruleset`: p1's first Builder
/// attempt fails when `fail_first`, every other one succeeds with 1,000 tokens.
fn entries(ruleset: &Ruleset, fail_first: bool) -> Vec<JournalEntry> {
    let plan = plan();
    let strategy =
        autopack_strategy::compile(ruleset, &Default::default(), &plan, &Default::default())
            .expect("compiles");
    let mut now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let start = Input::Start {
        at: now,
        plan,
        strategy: Box::new(strategy),
        backlog: Box::default(),
    };
    let mut entries = vec![
        JournalEntry::Config(SupervisorConfig::default()),
        JournalEntry::Input(start.clone()),
    ];
    let mut sup = Supervisor::new();
    sup.handle(start).unwrap();
    while let Some(action) = sup.poll_action() {
        now += Duration::seconds(10);
        let input = match action {
            Action::DispatchBuilder(r) => {
                let result = if fail_first && r.attempt == 1 && r.phase_id.as_str() == "p1" {
                    BuilderResult::failed(r.phase_id.clone(), "no")
                } else {
                    BuilderResult::success(r.phase_id.clone(), "diff --git a/x b/x\n")
                };
                Input::BuilderFinished {
                    at: now,
                    phase_id: r.phase_id,
                    attempt: r.attempt,
                    outcome: AgentOutcome::Returned(result.with_tokens(1_000)),
                }
            }
            Action::ApplyPatch(r) => Input::PatchApplied {
                at: now,
                phase_id: r.phase_id,
                commit: CommitId::new("c".repeat(40)).unwrap(),
                holds: vec![],
            },
            Action::RunCi(r) => Input::CiFinished {
                at: now,
                phase_id: r.phase_id,
                report: CiReport::new(CiVerdict::Green, 1),
            },
            Action::CreateSnapshot(r) => Input::SnapshotCreated {
                at: now,
                phase_id: r.phase_id,
                tag: r.tag,
            },
            _ => continue,
        };
        entries.push(JournalEntry::Input(input.clone()));
        sup.handle(input).unwrap();
    }
    entries
}

fn builtin() -> Ruleset {
    ruleset(r#"{"project_id": "builtin"}"#)
}

#[test]
fn a_run_reads_back_with_its_decisions_and_end() {
    let recorded = Recorded::from_entries(entries(&builtin(), true)).unwrap();
    assert_eq!(recorded.state(), RunState::DoneSuccess);
    assert_eq!(recorded.run_id().as_str(), "r1");
    assert_eq!(recorded.record().usage.tokens, 3_000);
    let p1 = PhaseId::new("p1").unwrap();
    assert_eq!(
        recorded.decisions()[..3],
        [
            Decision::DispatchBuilder {
                phase_id: p1.clone(),
                attempt: 1
            },
            Decision::DispatchBuilder {
                phase_id: p1.clone(),
                attempt: 2
            },
            Decision::ApplyPatch {
                phase_id: p1,
                role: AttemptRole::Builder,
                attempt: 2
            },
        ]
    );
    assert_eq!(
        recorded.decisions().last(),
        Some(&Decision::Finished {
            state: RunState::DoneSuccess
        })
    );
    // Checkpoints are no decisions: 2 phases × (dispatch, apply, CI, snapshot), one
    // more dispatch, the end.
    assert_eq!(recorded.decisions().len(), 10);
}

#[test]
fn the_same_ruleset_decides_the_same() {
    let recorded = Recorded::from_entries(entries(&builtin(), true)).unwrap();
    let strategy = strategy_under(&recorded, &builtin()).unwrap();
    assert_eq!(&strategy, recorded.strategy());
    let result = what_if(&recorded, strategy);
    assert_eq!(result.first_difference, None);
    assert_eq!(result.ending, Ending::Finished(RunState::DoneSuccess));
    assert!(result.same_end);
    assert_eq!(result.tokens_used, 3_000);
    assert!(
        result
            .render_text()
            .starts_with("ends the same: DONE_SUCCESS\n")
    );
}

#[test]
fn a_token_cap_below_the_run_s_spending_ends_it_early() {
    let recorded = Recorded::from_entries(entries(&builtin(), true)).unwrap();
    let tight = ruleset(r#"{"project_id": "builtin", "run_token_cap": 2500}"#);
    let result = what_if(&recorded, strategy_under(&recorded, &tight).unwrap());
    assert_eq!(
        result.ending,
        Ending::Finished(RunState::DoneFailedTokenCapExceeded)
    );
    assert!(!result.same_end);
    let difference = result.first_difference.clone().unwrap();
    // p1: two dispatches, apply, CI, snapshot; p2's dispatch; then the third 1,000
    // tokens breach the cap where the recorded run applied p2's patch.
    assert_eq!(difference.step, 7);
    assert_eq!(
        difference.recorded,
        Some(Decision::ApplyPatch {
            phase_id: PhaseId::new("p2").unwrap(),
            role: AttemptRole::Builder,
            attempt: 1
        })
    );
    assert_eq!(difference.now, Some(Decision::WriteIncidentPack));
    let text = result.render_text();
    assert!(
        text.contains("DONE_SUCCESS → DONE_FAILED_TOKEN_CAP_EXCEEDED"),
        "{text}"
    );
    assert!(text.contains("first difference at decision 7"), "{text}");
    assert!(result.failure.is_some());
}

#[test]
fn one_attempt_fewer_asks_for_an_auditor_never_called() {
    let recorded = Recorded::from_entries(entries(&builtin(), true)).unwrap();
    let fewer = ruleset(
        r#"{"project_id": "builtin", "category_defaults": {"tests": {"max_builder_attempts": 1}}}"#,
    );
    let result = what_if(&recorded, strategy_under(&recorded, &fewer).unwrap());
    let audit = Decision::RequestAudit {
        phase_id: PhaseId::new("p1").unwrap(),
        attempt: 1,
    };
    assert_eq!(
        result.ending,
        Ending::NeedsUnrecorded {
            step: 2,
            decision: audit.clone()
        }
    );
    assert_eq!(result.first_difference.unwrap().now, Some(audit));
    assert!(!result.same_end);
}

#[test]
fn journals_that_are_no_run_are_refused_by_name() {
    let good = entries(&builtin(), false);
    assert_eq!(
        Recorded::from_entries(vec![]).unwrap_err(),
        WhatIfError::NoStart { entries: 0 }
    );
    assert_eq!(
        Recorded::from_entries(good[..1].to_vec()).unwrap_err(),
        WhatIfError::NoStart { entries: 1 }
    );
    // An input before the start.
    let mut early = good.clone();
    early.swap(1, 2);
    let err = Recorded::from_entries(early).unwrap_err();
    assert!(
        matches!(
            err,
            WhatIfError::OutOfPlace {
                entry: 2,
                kind: "builder_finished",
                ..
            }
        ),
        "{err}"
    );
    // A configuration after the start.
    let mut late = good.clone();
    late.insert(3, JournalEntry::Config(SupervisorConfig::default()));
    let err = Recorded::from_entries(late).unwrap_err();
    assert!(
        matches!(
            err,
            WhatIfError::OutOfPlace {
                entry: 4,
                kind: "config",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("after the run's start"), "{err}");
    // A second start.
    let mut twice = good.clone();
    twice.push(good[1].clone());
    assert!(matches!(
        Recorded::from_entries(twice).unwrap_err(),
        WhatIfError::OutOfPlace { kind: "start", .. }
    ));
    // An answer given twice.
    let mut again = good.clone();
    again.insert(3, good[2].clone());
    let err = Recorded::from_entries(again).unwrap_err();
    assert!(
        matches!(
            err,
            WhatIfError::Refused {
                entry: 4,
                kind: "builder_finished",
                ..
            }
        ),
        "{err}"
    );
    // A journal without its configuration line reads with the default one.
    let bare = Recorded::from_entries(good[1..].to_vec()).unwrap();
    assert_eq!(bare.config(), SupervisorConfig::default());
}

#[test]
fn an_unfinished_recording_replays_to_where_it_stopped() {
    let mut cut = entries(&builtin(), false);
    cut.truncate(4); // configuration, start, p1's builder and its patch
    let recorded = Recorded::from_entries(cut).unwrap();
    assert!(!recorded.state().is_terminal());
    let result = what_if(&recorded, strategy_under(&recorded, &builtin()).unwrap());
    assert!(matches!(
        result.ending,
        Ending::NeedsUnrecorded { step: 3, .. }
    ));
    assert_eq!(result.first_difference, None);
    assert!(result.same_end);
}

#[test]
fn inputs_that_answer_nothing_follow_the_answer_they_followed() {
    let mut journal = entries(&builtin(), true);
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 1).unwrap();
    // A tick right after the start, and a host abort after p1's snapshot.
    journal.insert(2, JournalEntry::Input(Input::Tick { at }));
    let snapshot = journal
        .iter()
        .position(|e| matches!(e, JournalEntry::Input(Input::SnapshotCreated { .. })))
        .unwrap();
    journal.truncate(snapshot + 1);
    journal.push(JournalEntry::Input(Input::Abort {
        at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 5, 0).unwrap(),
        reason: "the operator stopped it".into(),
    }));
    let recorded = Recorded::from_entries(journal).unwrap();
    assert_eq!(recorded.state(), RunState::DoneFailedManualAbort);
    let same = what_if(&recorded, strategy_under(&recorded, &builtin()).unwrap());
    assert_eq!(
        same.ending,
        Ending::Finished(RunState::DoneFailedManualAbort)
    );
    assert_eq!(same.first_difference, None);
    assert!(same.failure.unwrap().contains("the operator stopped it"));
    // Under a cap the second attempt breaks, the snapshot is never taken, and the
    // abort that followed it never comes.
    let tight = ruleset(r#"{"project_id": "builtin", "run_token_cap": 1500}"#);
    let capped = what_if(&recorded, strategy_under(&recorded, &tight).unwrap());
    assert_eq!(
        capped.ending,
        Ending::Finished(RunState::DoneFailedTokenCapExceeded)
    );
    assert!(!capped.same_end);
}

#[test]
fn a_strategy_for_another_plan_is_refused_at_the_start() {
    let recorded = Recorded::from_entries(entries(&builtin(), false)).unwrap();
    let mut other = recorded.strategy().clone();
    other.run_id = RunId::new("r2").unwrap();
    let result = what_if(&recorded, other);
    assert!(
        matches!(&result.ending, Ending::Refused { step: 0, reason } if reason.contains("r2")),
        "{:?}",
        result.ending
    );
    assert!(!result.same_end);
    assert_eq!(result.first_difference.map(|d| d.step), Some(1));
}

#[test]
fn differences_are_found_in_either_sequence() {
    let p = |s: &str| PhaseId::new(s).unwrap();
    let ci = |s: &str| Decision::RunCi { phase_id: p(s) };
    let a = vec![ci("p1"), ci("p2")];
    assert_eq!(first_difference(&a, &a), None);
    assert_eq!(
        first_difference(&a, &a[..1]),
        Some(Difference {
            step: 2,
            recorded: Some(ci("p2")),
            now: None
        })
    );
    assert_eq!(
        first_difference(&a[..1], &a),
        Some(Difference {
            step: 2,
            recorded: None,
            now: Some(ci("p2"))
        })
    );
    assert_eq!(first_difference(&a, &[ci("p3")]).map(|d| d.step), Some(1));
}

fn result(recorded: RunState, ending: Ending, differs: bool) -> WhatIf {
    let same_end = match &ending {
        Ending::Finished(state) => *state == recorded,
        _ => !differs,
    };
    WhatIf {
        first_difference: differs.then_some(Difference {
            step: 1,
            recorded: None,
            now: None,
        }),
        ending,
        recorded_state: recorded,
        failure: None,
        recorded_tokens: 0,
        tokens_used: 0,
        same_end,
    }
}

#[test]
fn a_summary_counts_each_run_once() {
    let id = |s: &str| RunId::new(s).unwrap();
    let success = RunState::DoneSuccess;
    let capped = RunState::DoneFailedTokenCapExceeded;
    let blocked = RunState::DoneFailedTierBlocked;
    let results = vec![
        (id("a"), result(success, Ending::Finished(success), false)),
        (id("b"), result(success, Ending::Finished(capped), true)),
        (id("c"), result(success, Ending::Finished(capped), true)),
        (id("d"), result(blocked, Ending::Finished(success), true)),
        (
            id("e"),
            result(
                blocked,
                Ending::NeedsUnrecorded {
                    step: 1,
                    decision: Decision::WriteIncidentPack,
                },
                true,
            ),
        ),
        (id("f"), result(success, Ending::Stalled { step: 3 }, true)),
        (id("g"), result(success, Ending::Finished(success), true)),
    ];
    let summary = summarise(&results);
    assert_eq!(summary.runs, 7);
    assert_eq!(summary.same_end, 2);
    assert_eq!(summary.ended_differently, 3);
    assert_eq!(summary.needs_unrecorded, 1);
    assert_eq!(summary.needs_unrecorded_runs, vec![id("e")]);
    assert_eq!(summary.incomplete, 1);
    assert_eq!(summary.decided_differently, 6);
    assert_eq!(
        summary.transitions,
        vec![
            Transition {
                from: success,
                to: capped,
                runs: 2,
                run_ids: vec![id("b"), id("c")]
            },
            Transition {
                from: blocked,
                to: success,
                runs: 1,
                run_ids: vec![id("d")]
            },
        ]
    );
    let text = summary.render_text();
    assert!(
        text.starts_with(
            "7 runs: 2 ended the same, 3 ended differently, 1 needed work never recorded\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("DONE_SUCCESS → DONE_FAILED_TOKEN_CAP_EXCEEDED: 2 (b, c)"),
        "{text}"
    );
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["transitions"][0]["from"], "DONE_SUCCESS");
    assert_eq!(summarise(&[]).runs, 0);
}

#[test]
fn a_what_if_serialises_for_json_output() {
    let recorded = Recorded::from_entries(entries(&builtin(), true)).unwrap();
    let tight = ruleset(r#"{"project_id": "builtin", "run_token_cap": 2500}"#);
    let result = what_if(&recorded, strategy_under(&recorded, &tight).unwrap());
    let json = serde_json::to_value(&result).unwrap();
    assert_eq!(json["ending"]["finished"], "DONE_FAILED_TOKEN_CAP_EXCEEDED");
    assert_eq!(json["first_difference"]["step"], 7);
    assert_eq!(
        json["first_difference"]["recorded"]["decision"],
        "apply_patch"
    );
    assert_eq!(
        json["first_difference"]["now"]["decision"],
        "write_incident_pack"
    );
    assert_eq!(json["same_end"], false);
}
