//! Property tests of the Supervisor over random plans and random Builder, Auditor, gate
//! and CI behaviour.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use autopack::promotion;
use autopack::supervisor::{Action, AgentOutcome, CiReport, Supervisor, SupervisorConfig};
use autopack_core::lifecycle::{RunState, TierState};
use autopack_core::message::{AuditorRecommendation, BuilderResult, BuilderStatus};
use autopack_core::plan::Plan;
use autopack_core::record::CiVerdict;
use autopack_core::vocabulary::{RunScope, SafetyProfile, Severity};
use common::*;
use proptest::prelude::*;

const CATEGORIES: [&str; 7] = [
    "feature_scaffolding",
    "docs",
    "tests",
    "schema_change",
    "security_auth",
    "bulk_operation",
    "data_migration",
];

/// Largest token spend of a single input in these scripts.
const MAX_STEP_TOKENS: u64 = 255 * 1_000;

fn arb_plan() -> impl Strategy<Value = Plan> {
    (
        prop::collection::vec(prop::collection::vec(0..CATEGORIES.len(), 1..4), 1..4),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(100_000u64..3_000_000),
    )
        .prop_map(|(tiers, critical, single, token_cap)| {
            let safety = if critical {
                SafetyProfile::SafetyCritical
            } else {
                SafetyProfile::Normal
            };
            let scope = if single && tiers.len() == 1 {
                RunScope::SingleTier
            } else {
                RunScope::MultiTier
            };
            let mut plan = plan_of_categories("prop-run", safety, scope, &CATEGORIES, &tiers);
            plan.run.token_cap = token_cap;
            plan
        })
}

/// A tape of random choices, read in a cycle by the scripted agents.
#[derive(Clone)]
struct Tape(Rc<RefCell<(Vec<u8>, usize)>>);

impl Tape {
    fn new(bytes: Vec<u8>) -> Tape {
        Tape(Rc::new(RefCell::new((bytes, 0))))
    }

    fn next(&self) -> u8 {
        let mut t = self.0.borrow_mut();
        let (bytes, pos) = &mut *t;
        let b = bytes[*pos % bytes.len()];
        *pos += 1;
        b
    }
}

fn random_script(tape: Tape) -> Script<'static> {
    let (tb, ta, tg, th, tc) = (tape.clone(), tape.clone(), tape.clone(), tape.clone(), tape);
    Script {
        // Some accepted patches are held (a test-integrity finding or a protected path
        // that needs an approve): the run must still end, whatever follows.
        holds: Box::new(move |r| match th.next() % 8 {
            0 => vec![autopack_core::patch_rules::PatchHold::TestIntegrity {
                path: format!("tests/{}.rs", r.phase_id),
                finding: autopack_core::patch_rules::TestIntegrityFinding::DeletedTest,
            }],
            1 => vec![autopack_core::patch_rules::PatchHold::ProtectedPath {
                path: "docs/adr/1.md".into(),
                pattern: "docs/adr/**".into(),
            }],
            _ => Vec::new(),
        }),
        builder: Box::new(move |r| {
            let b = tb.next();
            match b % 10 {
                0..=5 => success(r, u64::from(b) * 1_000),
                6 => failed(r, &[if b & 8 == 0 { "tests::a" } else { "tests::b" }]),
                7 => AgentOutcome::Failed {
                    reason: "garbage on stdout".into(),
                    tokens_used: u64::from(b),
                },
                8 => {
                    let mut out = success(r, 1_000);
                    if let AgentOutcome::Returned(res) = &mut out {
                        res.status = BuilderStatus::NeedsReview;
                        res.suggested_issues.push(issue(
                            if b & 16 == 0 { "k-minor" } else { "k-other" },
                            if b & 32 == 0 {
                                Severity::Minor
                            } else {
                                Severity::Major
                            },
                        ));
                    }
                    out
                }
                _ => AgentOutcome::Returned(BuilderResult {
                    phase_id: r.phase_id.clone(),
                    status: BuilderStatus::Success,
                    patch: None,
                    probe_results: vec![],
                    suggested_issues: vec![],
                    tokens_used: 10,
                    failing_tests: vec![],
                    notes: String::new(),
                }),
            }
        }),
        auditor: Box::new(move |r| {
            let b = ta.next();
            match b % 7 {
                0 | 1 => audit(r, AuditorRecommendation::Approve),
                2 | 3 => audit(r, AuditorRecommendation::Revise),
                4 => audit(r, AuditorRecommendation::Escalate),
                5 => AgentOutcome::Failed {
                    reason: "auditor timed out".into(),
                    tokens_used: 0,
                },
                _ => {
                    let mut out = audit(r, AuditorRecommendation::Approve);
                    if let AgentOutcome::Returned(res) = &mut out {
                        res.patch = Some(patch_for(r.phase_id.as_str()));
                    }
                    out
                }
            }
        }),
        gate: Box::new(move |r| {
            if tg.next() % 8 == 0 {
                Err(("outside_scope".into(), "path outside scope".into()))
            } else {
                Ok(commit(&format!("c-{}-{}", r.phase_id, r.attempt)))
            }
        }),
        ci: Box::new(move |r| {
            let b = tc.next();
            let (verdict, attempts) = match b % 7 {
                0..=3 => (CiVerdict::Green, 1),
                4 => (CiVerdict::Flaky, r.max_attempts.min(2)),
                5 => (CiVerdict::Red, r.max_attempts),
                _ => (CiVerdict::Red, 1),
            };
            CiReport {
                verdict,
                attempts,
                failing_tests: if verdict == CiVerdict::Red {
                    vec!["t::x".into()]
                } else {
                    vec![]
                },
                output_tail: String::new(),
                known_failures: vec![],
                flaky_tests: vec![],
                baseline: None,
            }
        }),
        step: chrono::Duration::seconds(5),
    }
}

/// An upper bound on the inputs a run can take, from its strategy: every Builder attempt
/// (planned, or granted by an Auditor `revise`) takes at most a builder answer, a gate
/// answer, an approval, a CI report and a snapshot; every Auditor attempt one answer.
fn input_bound(plan: &Plan) -> usize {
    let strategy = strategy(plan);
    strategy
        .phases_in_order()
        .into_iter()
        .map(|s| {
            let builder = (s.max_builder_attempts + s.max_auditor_attempts) as usize;
            builder * 5 + s.max_auditor_attempts as usize
        })
        .sum::<usize>()
        + 2
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn every_run_ends_within_its_bound_and_keeps_its_invariants(
        plan in arb_plan(),
        tape in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let bound = input_bound(&plan);
        let out = drive(&plan, SupervisorConfig::default(), random_script(Tape::new(tape)), bound + 50);
        let record = out.record();

        // Terminal, within the bound computed from the strategy.
        prop_assert!(record.state.is_terminal(), "ended in {}", record.state);
        prop_assert!(out.inputs.len() - 1 <= bound, "{} inputs > bound {bound}", out.inputs.len() - 1);
        prop_assert_eq!(out.actions.last(), Some(&Action::Finished { state: record.state }));
        prop_assert_eq!(out.actions.iter().filter(|a| matches!(a, Action::Finished { .. })).count(), 1);
        prop_assert!(record.phases().all(|p| p.state.is_terminal()));
        prop_assert!(record.tiers.iter().all(|t| t.state.is_terminal() || t.state == TierState::Pending));

        // No protected ref is ever targeted: patches and snapshots name only this run.
        let prefix = format!("autonomous/{}/", plan.run.run_id);
        for action in &out.actions {
            match action {
                Action::ApplyPatch(r) => prop_assert_eq!(&r.run_id, &plan.run.run_id),
                Action::CreateSnapshot(r) => prop_assert!(r.tag.starts_with(&prefix), "{}", r.tag),
                _ => {}
            }
        }

        // Spend never passes a cap by more than one step's spend; CI never past its cap.
        prop_assert!(record.usage.tokens <= record.caps.token_cap + MAX_STEP_TOKENS);
        for tier in &record.tiers {
            prop_assert!(tier.usage.ci_runs <= tier.caps.ci_run_cap, "tier {} ran {} CI attempts, cap {}", tier.tier_id, tier.usage.ci_runs, tier.caps.ci_run_cap);
        }

        // Promotion-eligible implies success with every tier clean.
        if promotion::eligibility(record).is_ok() {
            prop_assert_eq!(record.state, RunState::DoneSuccess);
            prop_assert!(record.tiers.iter().all(|t| t.state == TierState::Complete));
        }
        if record.state == RunState::DoneSuccess {
            prop_assert!(record.tiers.iter().all(|t| matches!(t.state, TierState::Complete | TierState::NotClean)));
        }

        // Replaying the inputs reproduces the identical state and action sequence.
        let (replayed, actions) = replay(&out.inputs, SupervisorConfig::default());
        prop_assert_eq!(replayed.record(), out.supervisor.record());
        prop_assert_eq!(actions, out.actions);

        // A quiet replay (`Supervisor::replay`, as a journal replay does) changes the
        // state exactly as `handle` does after every input, makes no actions but the
        // same issue recordings (which a resume needs), and leaves the same action
        // outstanding.
        let (mut loud, mut quiet) = (Supervisor::new(), Supervisor::new());
        loud.handle(out.inputs[0].clone()).expect("starts");
        quiet.handle(out.inputs[0].clone()).expect("starts");
        while quiet.poll_action().is_some() {}
        while loud.poll_action().is_some() {}
        for input in &out.inputs[1..] {
            loud.handle(input.clone()).expect("accepted");
            quiet.replay(input.clone()).expect("accepted");
            let recorded = |sup: &mut Supervisor| {
                std::iter::from_fn(|| sup.poll_action())
                    .filter(|a| matches!(a, Action::RecordIssues { .. }))
                    .collect::<Vec<_>>()
            };
            let quiet_actions: Vec<_> = std::iter::from_fn(|| quiet.poll_action()).collect();
            prop_assert!(
                quiet_actions
                    .iter()
                    .all(|a| matches!(a, Action::RecordIssues { .. })),
                "{:?}",
                quiet_actions
            );
            prop_assert_eq!(quiet_actions, recorded(&mut loud));
            prop_assert_eq!(quiet.record(), loud.record());
            prop_assert_eq!(quiet.state(), loud.state());
            prop_assert_eq!(quiet.outstanding(), loud.outstanding());
            prop_assert_eq!(
                quiet.ledger().map(|l| l.snapshot()),
                loud.ledger().map(|l| l.snapshot())
            );
        }
    }
}
