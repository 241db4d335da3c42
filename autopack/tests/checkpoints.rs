//! Incremental checkpoints write what a full rewrite writes.
//!
//! A real Supervisor run with scripted agents; every checkpoint is performed by
//! [`FsArtefacts`] (which writes only what the checkpoint says changed) into one
//! directory, and the same record is written whole by `write_run_artefacts` into another;
//! after every checkpoint the run's summaries (run summary, tier and phase summaries,
//! incident pack) are byte for byte the same in both.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use autopack::driver::Artefacts;
use autopack::host::FsArtefacts;
use autopack::supervisor::{Action, AgentOutcome, Checkpoint, CiReport, Input, Supervisor};
use autopack_core::lifecycle::RunState;
use autopack_core::message::{AuditorRecommendation, BuilderStatus};
use autopack_core::plan::Plan;
use autopack_core::record::CiVerdict;
use autopack_core::vocabulary::{RunScope, SafetyProfile, Severity};
use autopack_issues::AgingThresholds;
use autopack_layout::{FsyncPolicy, RunsRoot, write_run_artefacts};
use common::*;
use proptest::prelude::*;

/// The two directories and what was compared.
struct Twin {
    _dir: tempfile::TempDir,
    incremental: RunsRoot,
    full: RunsRoot,
    artefacts: FsArtefacts,
    /// Compare after every `every`-th checkpoint (and after the last).
    every: usize,
    /// Drop what each checkpoint says changed (to show the comparison can fail).
    lossy: bool,
    checkpoints: usize,
    compared: usize,
    /// Checkpoints that asked for everything to be written.
    everything: usize,
    /// The first difference found, if any.
    difference: Option<String>,
}

impl Twin {
    fn new(every: usize) -> Twin {
        let dir = tempfile::tempdir().unwrap();
        let incremental = RunsRoot::new(dir.path().join("incremental"));
        let full = RunsRoot::new(dir.path().join("full"));
        let artefacts = open(&incremental);
        Twin {
            _dir: dir,
            incremental,
            full,
            artefacts,
            every,
            lossy: false,
            checkpoints: 0,
            compared: 0,
            everything: 0,
            difference: None,
        }
    }

    fn checkpoint(&mut self, checkpoint: Checkpoint, sup: &Supervisor, last: bool) {
        let (record, ledger) = (sup.record().unwrap(), sup.ledger().unwrap());
        let mut checkpoint = checkpoint;
        if checkpoint.changed().is_some_and(|c| c.everything) {
            self.everything += 1;
        }
        if self.lossy
            && let Checkpoint::Phase { changed, .. } | Checkpoint::Tier { changed, .. } =
                &mut checkpoint
        {
            changed.phases.clear();
            changed.tiers.clear();
        }
        self.artefacts
            .checkpoint(&checkpoint, record, ledger)
            .unwrap();
        self.checkpoints += 1;
        if (last || self.checkpoints.is_multiple_of(self.every)) && self.difference.is_none() {
            write_run_artefacts(&self.full, record).unwrap();
            let run = &record.run_id;
            let (a, b) = (
                summaries(&self.incremental.run_dir(run)),
                summaries(&self.full.run_dir(run)),
            );
            self.compared += 1;
            if a != b {
                let keys: Vec<&PathBuf> = a.keys().chain(b.keys()).collect();
                let first = keys
                    .into_iter()
                    .find(|k| a.get(*k) != b.get(*k))
                    .map(|k| k.display().to_string())
                    .unwrap_or_default();
                self.difference = Some(format!(
                    "after checkpoint {} ({checkpoint:?}, run {}): {first} differs",
                    self.checkpoints, record.state
                ));
            }
        }
    }
}

fn open(root: &RunsRoot) -> FsArtefacts {
    FsArtefacts::open(
        root.clone(),
        AgingThresholds::default(),
        FsyncPolicy::AtCheckpoints,
    )
    .unwrap()
}

/// The summaries under a run's folder: `run_summary.md`, `tiers/`, `phases/`, `incident/`.
fn summaries(run_dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let summary = run_dir.join("run_summary.md");
    if let Ok(bytes) = std::fs::read(&summary) {
        out.insert(PathBuf::from("run_summary.md"), bytes);
    }
    for sub in ["tiers", "phases", "incident"] {
        let Ok(entries) = std::fs::read_dir(run_dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".lock") || name.starts_with('.') {
                continue;
            }
            out.insert(
                Path::new(sub).join(name),
                std::fs::read(entry.path()).unwrap(),
            );
        }
    }
    out
}

/// Drives `sup` (started) to the end, or for `max_inputs` inputs, answering with `script`
/// and feeding `abort_at` (an input count) an abort; every checkpoint goes to `twin`.
/// Returns the inputs fed.
fn drive_twin(
    sup: &mut Supervisor,
    script: &mut Script<'_>,
    twin: &mut Twin,
    max_inputs: usize,
    abort_at: Option<usize>,
    mut outstanding: Option<Action>,
) -> Vec<Input> {
    let mut inputs = Vec::new();
    let mut now = sup
        .record()
        .and_then(|r| r.history.last())
        .map_or_else(t0, |c| c.at);
    while let Some(action) = outstanding.take().or_else(|| sup.poll_action()) {
        now += script.step;
        if abort_at == Some(inputs.len()) && action.expects_answer() && !sup.is_finished() {
            let input = Input::Abort {
                at: now,
                reason: "stopped by the test".into(),
            };
            inputs.push(input.clone());
            sup.handle(input).unwrap();
            continue;
        }
        let input = match &action {
            Action::Checkpoint(checkpoint) => {
                let last = matches!(checkpoint, Checkpoint::Run);
                twin.checkpoint(checkpoint.clone(), sup, last);
                None
            }
            Action::RecordIssues { at, observations } => {
                twin.artefacts.record_issues(*at, observations).unwrap();
                None
            }
            Action::WriteIncidentPack => {
                twin.artefacts
                    .incident(sup.record().unwrap(), sup.ledger().unwrap())
                    .unwrap();
                None
            }
            other => script.answer(other, now),
        };
        if let Some(input) = input {
            inputs.push(input.clone());
            sup.handle(input).unwrap();
            if inputs.len() >= max_inputs {
                break;
            }
        }
    }
    inputs
}

/// Runs `plan` with `script` through a twin; returns it and the final state.
fn run_twin(
    plan: &Plan,
    mut script: Script<'_>,
    every: usize,
    abort_at: Option<usize>,
) -> (Twin, RunState) {
    let mut twin = Twin::new(every);
    let mut sup = Supervisor::new();
    sup.handle(start(plan)).unwrap();
    drive_twin(&mut sup, &mut script, &mut twin, usize::MAX, abort_at, None);
    (twin, sup.state())
}

fn assert_same(twin: &Twin, state: RunState, want: RunState) {
    assert_eq!(state, want);
    assert_eq!(twin.difference, None);
    assert!(twin.compared >= 2, "compared {} times", twin.compared);
    assert_eq!(
        twin.everything, 1,
        "only the first checkpoint writes everything"
    );
}

fn three_tiers() -> Plan {
    plan(
        "ckpt",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[
            &[
                ("a1", "feature_scaffolding"),
                ("a2", "docs"),
                ("a3", "tests"),
            ],
            &[("b1", "feature_scaffolding"), ("b2", "tests")],
            &[("c1", "docs"), ("c2", "tests"), ("c3", "docs")],
        ],
    )
}

#[test]
fn a_successful_run_with_issues_writes_what_a_full_rewrite_writes() {
    let calls = RefCell::new(0u32);
    let script = Script {
        builder: Box::new(|r| {
            *calls.borrow_mut() += 1;
            let mut out = success(r, 20_000);
            if calls.borrow().is_multiple_of(3)
                && let AgentOutcome::Returned(res) = &mut out
            {
                res.suggested_issues.push(issue("k-minor", Severity::Minor));
            }
            out
        }),
        ..Script::default()
    };
    let (twin, state) = run_twin(&three_tiers(), script, 1, None);
    assert_same(&twin, state, RunState::DoneSuccess);
    // A phase checkpoint per phase, a tier checkpoint per tier, the run's.
    assert_eq!(twin.checkpoints, 8 + 3 + 1);
}

#[test]
fn a_blocked_tier_skips_its_phases_and_later_tiers_still_run() {
    // a2 fails for good: tier 1 is blocked, a3 skipped, tiers 2 and 3 run.
    let script = Script {
        builder: Box::new(|r| {
            if r.phase_id.as_str() == "a2" {
                failed(r, &["tests::a2"])
            } else {
                success(r, 10_000)
            }
        }),
        auditor: Box::new(|r| audit(r, AuditorRecommendation::Escalate)),
        ..Script::default()
    };
    let (twin, state) = run_twin(&three_tiers(), script, 1, None);
    assert_same(&twin, state, RunState::DoneFailedTierBlocked);
}

#[test]
fn retries_an_auditor_revise_red_and_flaky_ci_write_what_a_full_rewrite_writes() {
    let ci_calls = RefCell::new(0u32);
    let builds = RefCell::new(0u32);
    let script = Script {
        builder: Box::new(|r| {
            *builds.borrow_mut() += 1;
            if r.phase_id.as_str() == "b1" && r.attempt <= 3 {
                failed(r, &["tests::b1"])
            } else {
                success(r, 10_000)
            }
        }),
        auditor: Box::new(|r| audit(r, AuditorRecommendation::Revise)),
        ci: Box::new(|r| {
            *ci_calls.borrow_mut() += 1;
            match *ci_calls.borrow() {
                2 => CiReport {
                    verdict: CiVerdict::Flaky,
                    attempts: r.max_attempts.min(2),
                    failing_tests: vec![],
                    output_tail: String::new(),
                    known_failures: vec![],
                    flaky_tests: vec![],
                    baseline: None,
                },
                4 => CiReport {
                    verdict: CiVerdict::Red,
                    attempts: 1,
                    failing_tests: vec!["t::x".into()],
                    output_tail: "boom".into(),
                    known_failures: vec![],
                    flaky_tests: vec![],
                    baseline: None,
                },
                _ => green(r),
            }
        }),
        ..Script::default()
    };
    let (twin, state) = run_twin(&three_tiers(), script, 1, None);
    assert!(state.is_terminal());
    assert_eq!(twin.difference, None);
    assert_eq!(twin.everything, 1);
    assert!(twin.compared >= 8);
}

#[test]
fn a_run_that_fails_midway_skips_every_queued_phase_in_its_last_checkpoints() {
    // The run's token cap ends it in tier 2; the checkpoints of that input (the failed
    // phase, the blocked tier) already see every queued phase skipped.
    let mut plan = three_tiers();
    plan.run.token_cap = Some(1_000_000);
    let script = Script {
        builder: Box::new(|r| success(r, 240_000)),
        ..Script::default()
    };
    let (twin, state) = run_twin(&plan, script, 1, None);
    assert_same(&twin, state, RunState::DoneFailedTokenCapExceeded);
}

#[test]
fn an_abort_and_a_safety_critical_failure_write_what_a_full_rewrite_writes() {
    let (twin, state) = run_twin(&three_tiers(), Script::default(), 1, Some(9));
    assert_same(&twin, state, RunState::DoneFailedManualAbort);

    let critical = plan(
        "ckpt-critical",
        SafetyProfile::SafetyCritical,
        RunScope::MultiTier,
        &[&[("s1", "docs"), ("s2", "docs")], &[("s3", "docs")]],
    );
    let script = Script {
        builder: Box::new(|r| {
            if r.phase_id.as_str() == "s2" {
                failed(r, &["tests::s2"])
            } else {
                success(r, 1_000)
            }
        }),
        auditor: Box::new(|r| audit(r, AuditorRecommendation::Escalate)),
        ..Script::default()
    };
    let (twin, state) = run_twin(&critical, script, 1, None);
    assert_same(&twin, state, RunState::DoneFailedRequiresHumanReview);
}

#[test]
fn dropping_what_changed_is_seen_by_the_comparison() {
    // The same run with the checkpoints' changes thrown away: the next phase's summary
    // (started in the input of the previous phase's checkpoint) is left stale.
    let mut twin = Twin::new(1);
    twin.lossy = true;
    let mut sup = Supervisor::new();
    sup.handle(start(&three_tiers())).unwrap();
    drive_twin(
        &mut sup,
        &mut Script::default(),
        &mut twin,
        usize::MAX,
        None,
        None,
    );
    let difference = twin.difference.expect("a stale summary is found");
    assert!(
        difference.contains("phases/") || difference.contains("tiers/"),
        "{difference}"
    );
}

#[test]
fn a_resumed_supervisor_writes_everything_at_its_first_checkpoint() {
    let plan = three_tiers();
    let mut twin = Twin::new(1);
    let mut sup = Supervisor::new();
    let first = start(&plan);
    sup.handle(first.clone()).unwrap();
    let mut script = Script::default();
    // Stop in the middle of phase b1 (inputs 1..=12 end a1..a3, 13 and 14 take b1 to
    // CI).
    let inputs = drive_twin(&mut sup, &mut script, &mut twin, 14, None, None);
    assert_eq!(twin.difference, None);

    // A new process: replay the inputs quietly, then go on with fresh artefacts over the
    // same directory, as `Driver::resume` does.
    let mut resumed = Supervisor::new();
    resumed.handle(first).unwrap();
    while resumed.poll_action().is_some() {}
    for input in inputs {
        resumed.replay(input).unwrap();
    }
    let outstanding = resumed.outstanding().expect("an action is outstanding");
    let mut again = Twin::new(1);
    again.artefacts = open(&twin.incremental);
    again.incremental = twin.incremental.clone();
    again.full = twin.full.clone();
    // Perform the outstanding action again, then drive on.
    drive_twin(
        &mut resumed,
        &mut script,
        &mut again,
        usize::MAX,
        None,
        Some(outstanding),
    );
    assert_eq!(resumed.state(), RunState::DoneSuccess);
    assert_eq!(again.difference, None);
    assert_eq!(
        again.everything, 1,
        "the resumed Supervisor's first checkpoint"
    );
    assert!(again.compared >= 5);
}

#[test]
fn a_tier_of_more_than_a_thousand_phases_writes_what_a_full_rewrite_writes() {
    // 1,003 phases in one tier, then a small tier; phase q1 fails for good, so 1,001 are
    // skipped: the summaries list the first 1,000 phases neither complete nor queued.
    let names: Vec<(String, &str)> = (0..1_003).map(|i| (format!("q{i}"), "docs")).collect();
    let big: Vec<(&str, &str)> = names.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    let mut plan = plan(
        "ckpt-big",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&big, &[("z1", "docs"), ("z2", "docs")]],
    );
    plan.run.max_phases = Some(2_000);
    let script = Script {
        builder: Box::new(|r| {
            if r.phase_id.as_str() == "q1" {
                failed(r, &["tests::q1"])
            } else {
                success(r, 1_000)
            }
        }),
        auditor: Box::new(|r| audit(r, AuditorRecommendation::Escalate)),
        ..Script::default()
    };
    let (twin, state) = run_twin(&plan, script, 1, None);
    assert_same(&twin, state, RunState::DoneFailedTierBlocked);
    let run_dir = twin.incremental.run_dir(&plan.run.run_id);
    let summary = std::fs::read_to_string(run_dir.join("run_summary.md")).unwrap();
    assert!(
        summary.contains("1,005 phases: 3 `COMPLETE`, 1 `FAILED`, 1,001 `SKIPPED`."),
        "{summary}"
    );
    assert!(
        summary.contains("… and 2 more not listed here."),
        "{summary}"
    );
    assert!(summary.contains("[phase_01_q1.md]"), "{summary}");
    assert!(summary.contains("[phase_1000_q1000.md]"), "{summary}");
    assert!(!summary.contains("[phase_1001_q1001.md]"), "{summary}");
    assert!(!summary.contains("[phase_00_q0.md]"), "{summary}");
}

// ---- random plans and agents ---------------------------------------------------------

const CATEGORIES: [&str; 5] = [
    "feature_scaffolding",
    "docs",
    "tests",
    "schema_change",
    "security_auth",
];

fn arb_plan() -> impl Strategy<Value = Plan> {
    (
        prop::collection::vec(prop::collection::vec(0..CATEGORIES.len(), 1..4), 1..4),
        any::<bool>(),
        prop::option::of(100_000u64..2_000_000),
    )
        .prop_map(|(tiers, critical, token_cap)| {
            let safety = if critical {
                SafetyProfile::SafetyCritical
            } else {
                SafetyProfile::Normal
            };
            let mut plan = plan_of_categories(
                "prop-ckpt",
                safety,
                RunScope::MultiTier,
                &CATEGORIES,
                &tiers,
            );
            plan.run.token_cap = token_cap;
            plan
        })
}

/// Random choices read in a cycle.
#[derive(Clone)]
struct Tape(Rc<RefCell<(Vec<u8>, usize)>>);

impl Tape {
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
        // A held patch records an issue in the middle of a phase: the checkpoint after it
        // must still match a full rewrite.
        holds: Box::new(move |r| {
            if th.next() % 6 == 0 {
                vec![autopack_core::patch_rules::PatchHold::TestIntegrity {
                    path: format!("tests/{}.rs", r.phase_id),
                    finding: autopack_core::patch_rules::TestIntegrityFinding::DeletedTest,
                }]
            } else {
                Vec::new()
            }
        }),
        builder: Box::new(move |r| {
            let b = tb.next();
            match b % 8 {
                0..=3 => success(r, u64::from(b) * 1_000),
                4 => failed(r, &["tests::a"]),
                5 => AgentOutcome::Failed {
                    reason: "garbage on stdout".into(),
                    tokens_used: u64::from(b),
                },
                _ => {
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
            }
        }),
        auditor: Box::new(move |r| match ta.next() % 4 {
            0 | 1 => audit(r, AuditorRecommendation::Approve),
            2 => audit(r, AuditorRecommendation::Revise),
            _ => audit(r, AuditorRecommendation::Escalate),
        }),
        gate: Box::new(move |r| {
            if tg.next() % 6 == 0 {
                Err(("outside_scope".into(), "path outside scope".into()))
            } else {
                Ok(commit(&format!("c-{}-{}", r.phase_id, r.attempt)))
            }
        }),
        ci: Box::new(move |r| {
            let b = tc.next();
            let (verdict, attempts) = match b % 6 {
                0..=3 => (CiVerdict::Green, 1),
                4 => (CiVerdict::Flaky, r.max_attempts.min(2)),
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
        step: chrono::Duration::seconds(7),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn after_every_checkpoint_the_incremental_tree_is_the_full_one(
        plan in arb_plan(),
        tape in prop::collection::vec(any::<u8>(), 1..48),
        abort in prop::option::of(1usize..40),
    ) {
        let mut twin = Twin::new(1);
        let mut sup = Supervisor::new();
        sup.handle(start(&plan)).unwrap();
        let mut script = random_script(Tape(Rc::new(RefCell::new((tape, 0)))));
        drive_twin(&mut sup, &mut script, &mut twin, 2_000, abort, None);
        prop_assert!(sup.is_finished(), "ended in {}", sup.state());
        prop_assert_eq!(twin.difference, None);
        prop_assert_eq!(twin.everything, 1);
        prop_assert_eq!(twin.compared, twin.checkpoints);
    }
}
