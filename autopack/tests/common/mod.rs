//! An in-memory harness: scripted agents, gate and CI around a Supervisor.
#![allow(dead_code, unreachable_pub)]

pub mod drivers;

use autopack::supervisor::{
    Action, AgentOutcome, CiReport, CiRequest, Input, PatchRequest, Supervisor, SupervisorConfig,
};
use autopack_core::ids::{CommitId, IssueKey, PhaseId, RunId, TierId};
use autopack_core::message::{
    AuditorRecommendation, AuditorRequest, AuditorResult, BuilderRequest, BuilderResult,
    SuggestedIssue,
};
use autopack_core::patch_rules::PatchHold;
use autopack_core::plan::{PhaseSpec, Plan, RunSpec, TierSpec};
use autopack_core::record::CiVerdict;
use autopack_core::vocabulary::{
    IssueCategory, IssueSource, RunScope, SafetyProfile, Severity, TaskCategory,
};
use autopack_issues::ProjectBacklog;
use autopack_strategy::Strategy;
use chrono::{DateTime, Duration, TimeZone, Utc};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid time")
}

/// `tiers`: for each tier, its phases as (phase id, task category).
pub fn plan(
    run_id: &str,
    safety: SafetyProfile,
    scope: RunScope,
    tiers: &[&[(&str, &str)]],
) -> Plan {
    let mut index = 0;
    let mut phases = Vec::new();
    let mut tier_specs = Vec::new();
    for (t, tier_phases) in tiers.iter().enumerate() {
        let tier_id = TierId::new(format!("t{}", t + 1)).unwrap();
        tier_specs.push(TierSpec {
            tier_id: tier_id.clone(),
            tier_index: t as u32,
            name: format!("Tier {}", t + 1),
            description: String::new(),
        });
        for (id, category) in tier_phases.iter() {
            phases.push(PhaseSpec {
                phase_id: PhaseId::new(*id).unwrap(),
                phase_index: index,
                tier_id: tier_id.clone(),
                name: format!("Phase {id}"),
                description: format!("do {id}"),
                task_category: TaskCategory::parse(category).unwrap(),
                complexity: None,
                builder_mode: None,
                scope: Vec::new(),
            });
            index += 1;
        }
    }
    Plan {
        run: RunSpec {
            run_id: RunId::new(run_id).unwrap(),
            safety_profile: Some(safety),
            run_scope: Some(scope),
            token_cap: None,
            max_phases: None,
            max_duration_minutes: None,
        },
        tiers: tier_specs,
        phases,
    }
}

/// A plan whose tiers hold phases `p1`, `p2`, … (numbered across tiers) of the categories
/// `categories[i]` for each index `i` of `tiers` (what the property tests generate).
pub fn plan_of_categories(
    run_id: &str,
    safety: SafetyProfile,
    scope: RunScope,
    categories: &[&str],
    tiers: &[Vec<usize>],
) -> Plan {
    let mut counter = 0;
    let named: Vec<Vec<(String, &str)>> = tiers
        .iter()
        .map(|phases| {
            phases
                .iter()
                .map(|c| {
                    counter += 1;
                    (format!("p{counter}"), categories[*c])
                })
                .collect()
        })
        .collect();
    let borrowed: Vec<Vec<(&str, &str)>> = named
        .iter()
        .map(|t| t.iter().map(|(id, c)| (id.as_str(), *c)).collect())
        .collect();
    let slices: Vec<&[(&str, &str)]> = borrowed.iter().map(Vec::as_slice).collect();
    plan(run_id, safety, scope, &slices)
}

pub fn strategy(plan: &Plan) -> Strategy {
    autopack_strategy::dry_run(plan, None, None).expect("strategy compiles")
}

pub fn start(plan: &Plan) -> Input {
    Input::Start {
        at: t0(),
        plan: plan.clone(),
        strategy: Box::new(strategy(plan)),
        backlog: Box::new(ProjectBacklog::default()),
    }
}

pub fn patch_for(phase: &str) -> String {
    format!(
        "diff --git a/src/{phase}.txt b/src/{phase}.txt\nnew file mode 100644\n--- /dev/null\n+++ b/src/{phase}.txt\n@@ -0,0 +1 @@\n+{phase}\n"
    )
}

pub fn success(req: &BuilderRequest, tokens: u64) -> AgentOutcome<BuilderResult> {
    AgentOutcome::Returned(
        BuilderResult::success(req.phase_id.clone(), patch_for(req.phase_id.as_str()))
            .with_tokens(tokens),
    )
}

pub fn failed(req: &BuilderRequest, tests: &[&str]) -> AgentOutcome<BuilderResult> {
    AgentOutcome::Returned(
        BuilderResult::failed(req.phase_id.clone(), "could not make it pass")
            .with_tokens(1_000)
            .with_failing_tests(tests.iter().copied()),
    )
}

/// A commit id standing for `label` (at most 20 bytes): its bytes in hex, padded with
/// zeros, so scripted gates name their candidates readably and tests compare them.
pub fn commit(label: &str) -> CommitId {
    assert!(label.len() <= 20, "commit label {label:?} is over 20 bytes");
    let hex: String = label.bytes().map(|b| format!("{b:02x}")).collect();
    CommitId::new(format!("{hex:0<40}")).expect("40 lowercase hex digits")
}

pub fn issue(key: &str, severity: Severity) -> SuggestedIssue {
    SuggestedIssue {
        issue_key: IssueKey::new(key).unwrap(),
        severity,
        source: IssueSource::Test,
        category: IssueCategory::new("test_failure").unwrap(),
        expected_fail: false,
        evidence_refs: Vec::new(),
        description: String::new(),
    }
}

pub fn audit(
    req: &AuditorRequest,
    recommendation: AuditorRecommendation,
) -> AgentOutcome<AuditorResult> {
    AgentOutcome::Returned(
        AuditorResult::new(req.phase_id.clone(), recommendation)
            .with_notes(format!("{recommendation:?} after review"))
            .with_confidence(0.9)
            .expect("in range")
            .with_tokens(500),
    )
}

pub fn green(req: &CiRequest) -> CiReport {
    let _ = req;
    CiReport::new(CiVerdict::Green, 1)
}

type BuilderFn<'a> = Box<dyn FnMut(&BuilderRequest) -> AgentOutcome<BuilderResult> + 'a>;
type AuditorFn<'a> = Box<dyn FnMut(&AuditorRequest) -> AgentOutcome<AuditorResult> + 'a>;
type GateFn<'a> = Box<dyn FnMut(&PatchRequest) -> Result<CommitId, (String, String)> + 'a>;
type CiFn<'a> = Box<dyn FnMut(&CiRequest) -> CiReport + 'a>;
type HoldsFn<'a> = Box<dyn FnMut(&PatchRequest) -> Vec<PatchHold> + 'a>;

/// Scripted behaviour of everything around the Supervisor.
pub struct Script<'a> {
    pub builder: BuilderFn<'a>,
    pub auditor: AuditorFn<'a>,
    pub gate: GateFn<'a>,
    pub ci: CiFn<'a>,
    /// The holds the gate puts on a patch it accepts (none by default).
    pub holds: HoldsFn<'a>,
    /// Time each answer takes.
    pub step: Duration,
}

impl Script<'_> {
    /// The script's answer to `action` at `now`; `None` for actions that need none.
    pub fn answer(&mut self, action: &Action, now: DateTime<Utc>) -> Option<Input> {
        match action {
            Action::DispatchBuilder(r) => Some(Input::BuilderFinished {
                at: now,
                phase_id: r.phase_id.clone(),
                attempt: r.attempt,
                outcome: (self.builder)(r),
            }),
            Action::RequestAudit(r) => Some(Input::AuditorFinished {
                at: now,
                phase_id: r.phase_id.clone(),
                attempt: r.attempt,
                outcome: (self.auditor)(r),
            }),
            Action::ApplyPatch(r) => Some(match (self.gate)(r) {
                Ok(commit) => Input::PatchApplied {
                    at: now,
                    phase_id: r.phase_id.clone(),
                    commit,
                    holds: (self.holds)(r),
                },
                Err((rule, message)) => Input::PatchRejected {
                    at: now,
                    phase_id: r.phase_id.clone(),
                    rule,
                    message,
                },
            }),
            Action::RunCi(r) => Some(Input::CiFinished {
                at: now,
                phase_id: r.phase_id.clone(),
                report: (self.ci)(r),
            }),
            Action::CreateSnapshot(r) => Some(Input::SnapshotCreated {
                at: now,
                phase_id: r.phase_id.clone(),
                tag: r.tag.clone(),
            }),
            Action::Checkpoint(_)
            | Action::RecordIssues { .. }
            | Action::WriteIncidentPack
            | Action::Finished { .. } => None,
            other => panic!("the script has no answer to {}", other.kind()),
        }
    }
}

impl Default for Script<'_> {
    fn default() -> Self {
        Script {
            builder: Box::new(|r| success(r, 10_000)),
            auditor: Box::new(|r| audit(r, AuditorRecommendation::Approve)),
            gate: Box::new(|r| Ok(commit(&format!("{}-{}", r.phase_id, r.attempt)))),
            ci: Box::new(green),
            holds: Box::new(|_| Vec::new()),
            step: Duration::seconds(30),
        }
    }
}

/// What a scripted run did.
pub struct Outcome {
    pub supervisor: Supervisor,
    pub inputs: Vec<Input>,
    pub actions: Vec<Action>,
}

impl Outcome {
    pub fn record(&self) -> &autopack_core::record::RunRecord {
        self.supervisor.record().expect("started")
    }

    pub fn audits(&self) -> Vec<&AuditorRequest> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::RequestAudit(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    pub fn dispatches(&self, phase: &str) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a, Action::DispatchBuilder(r) if r.phase_id.as_str() == phase))
            .count()
    }
}

/// Drives a run to its end (or `max_steps` inputs) with the script, by hand; a run that
/// ended is driven again through the drivers ([`drivers::agree`]).
pub fn drive(
    plan: &Plan,
    config: SupervisorConfig,
    mut script: Script<'_>,
    max_steps: usize,
) -> Outcome {
    drive_from(start(plan), config, &mut script, max_steps)
}

pub fn drive_from(
    start: Input,
    config: SupervisorConfig,
    script: &mut Script<'_>,
    max_steps: usize,
) -> Outcome {
    let mut sup = Supervisor::new();
    let mut now = start.at();
    let mut inputs = vec![start.clone()];
    sup.start_with(start, config).expect("start accepted");
    let mut actions = Vec::new();
    let mut steps = 0;
    while let Some(action) = sup.poll_action() {
        actions.push(action.clone());
        now += script.step;
        let input = script.answer(&action, now);
        if let Some(input) = input {
            inputs.push(input.clone());
            sup.handle(input).expect("input accepted");
            steps += 1;
            if steps >= max_steps {
                break;
            }
        }
    }
    let out = Outcome {
        supervisor: sup,
        inputs,
        actions,
    };
    // A run cut short at `max_steps` has no end for the drivers to reach.
    if out.supervisor.is_finished() {
        drivers::agree(&out, config);
    }
    out
}

/// Feeds recorded inputs to a fresh Supervisor; returns it and every action it asked for.
pub fn replay(inputs: &[Input], config: SupervisorConfig) -> (Supervisor, Vec<Action>) {
    let mut sup = Supervisor::new();
    let mut actions = Vec::new();
    let mut iter = inputs.iter().cloned();
    if let Some(first) = iter.next() {
        sup.start_with(first, config).expect("start accepted");
    }
    while let Some(a) = sup.poll_action() {
        actions.push(a);
    }
    for input in iter {
        sup.handle(input).expect("replayed input accepted");
        while let Some(a) = sup.poll_action() {
            actions.push(a);
        }
    }
    (sup, actions)
}
