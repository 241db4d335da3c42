//! The Supervisor: a deterministic, sans-IO run driver.
//!
//! It never reads a clock, a file or a process. A host feeds it [`Input`]s with
//! [`Supervisor::handle`] and drains the [`Action`]s it asks for with
//! [`Supervisor::poll_action`]; the same inputs always give the same actions and the same
//! [`RunRecord`]. At most one action that expects an answer is outstanding at a time.
//!
//! What it enforces (SPEC §1–§9):
//! - lifecycles through the tables of `autopack_core::lifecycle` (run, tier and phase
//!   states move only by listed transitions);
//! - phases run in tier order through `PHASE_EXECUTION → GATE → CI_RUNNING →
//!   SNAPSHOT_CREATED`; gate rejections, red CI, agent failures and attempts over the
//!   phase's incident token cap are failed attempts;
//! - attempts exhausted → Auditor (`revise` gives the Builder one more attempt, `approve`
//!   lets the Auditor's patch proceed, `escalate` or exhausted Auditor attempts fail the
//!   phase); a failure loop (the same failure signature `failure_loop_threshold` times in a
//!   row) goes to the Auditor early;
//! - high-risk phases without `auto_apply` wait in `GATE` for an Auditor `approve` before
//!   CI runs and their patch reaches the integration branch;
//! - budgets at every input: run tokens → `DONE_FAILED_TOKEN_CAP_EXCEEDED`, phases →
//!   `DONE_FAILED_PHASE_LIMIT_EXCEEDED`, duration and minor-issue total →
//!   `DONE_FAILED_BUDGET_EXHAUSTED`; tier tokens, CI runs and issue tolerances make the tier
//!   `NOT_CLEAN` (under `safety_critical` they fail the run);
//! - a failed phase blocks its tier and skips the tier's remaining phases; under
//!   `multi_tier` + `normal` later tiers still run and the run ends
//!   `DONE_FAILED_TIER_BLOCKED`; under `single_tier` it ends so at once, under
//!   `safety_critical` it ends `DONE_FAILED_REQUIRES_HUMAN_REVIEW` at once;
//! - issues reported by Builder, Auditor and CI (a flaky run is a minor `ci` issue) go
//!   into the issue ledger.
//!
//! Choices where the spec is silent are documented on [`SupervisorConfig`] and in
//! `ARCHITECTURE.md`.

mod flow;
mod frozen;
mod io;
mod issues;
mod setup;
mod wording;

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use autopack_core::budget::{TierBreach, defaults};
use autopack_core::ids::{CommitId, PhaseId};
use autopack_core::lifecycle::{
    PhaseEvent, RunEvent, RunFailure, RunState, TierEvent, TierState, TransitionError,
};
use autopack_core::message::{AuditReason, AuditorRequest, BuilderRequest, CiFailure};
use autopack_core::plan::PlanErrors;
use autopack_core::record::{AttemptRole, RunRecord, StateChange};
use autopack_core::vocabulary::{CiProfile, SafetyProfile};
use autopack_issues::Ledger;

pub use io::{
    Action, AgentOutcome, Changed, Checkpoint, CiBaseline, CiReport, CiRequest, Input,
    PatchRequest, PhasePosition, SnapshotRequest,
};

use frozen::{FrozenPhase, FrozenRun};

/// Settings of the Supervisor itself (not of the run's budgets, which come from the
/// strategy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SupervisorConfig {
    /// Failed attempts in a row with the same signature (same failing tests, same issue
    /// keys, same gate rule) that count as a failure loop and go to the Auditor early.
    /// Values below 2 are treated as 2.
    pub failure_loop_threshold: u32,
}

impl SupervisorConfig {
    /// With this failure-loop threshold (values below 2 are treated as 2).
    #[must_use]
    pub fn with_failure_loop_threshold(mut self, threshold: u32) -> SupervisorConfig {
        self.failure_loop_threshold = threshold;
        self
    }
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            failure_loop_threshold: defaults::FAILURE_LOOP_THRESHOLD,
        }
    }
}

/// An input the Supervisor refused; its state is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// An input other than `start` arrived before the run started.
    #[error("the run has not started; got input `{got}`")]
    NotStarted {
        /// The input's kind.
        got: &'static str,
    },
    /// A second `start`.
    #[error("the run has already started")]
    AlreadyStarted,
    /// An input arrived after the run ended.
    #[error("the run has ended in {state}; got input `{got}`")]
    Finished {
        /// The terminal state.
        state: RunState,
        /// The input's kind.
        got: &'static str,
    },
    /// An input that answers no outstanding action (wrong kind, phase or attempt).
    #[error("unexpected input `{got}`: the Supervisor is waiting for {expected}")]
    Unexpected {
        /// What the Supervisor waits for.
        expected: String,
        /// The input's kind.
        got: &'static str,
    },
    /// The plan is invalid.
    #[error("invalid plan: {0}")]
    InvalidPlan(#[from] PlanErrors),
    /// The strategy does not match the plan.
    #[error("strategy does not match the plan: {0}")]
    StrategyMismatch(String),
    /// The project backlog could not be loaded into a ledger.
    #[error("project backlog: {0}")]
    Backlog(String),
    /// A bug: the Supervisor asked its own lifecycle for a transition the table refuses.
    /// The input may have been half applied; the Supervisor refuses every later input.
    #[error("internal lifecycle error: {0}")]
    Lifecycle(#[from] TransitionError),
    /// An earlier input hit a lifecycle bug; nothing more is accepted.
    #[error("the Supervisor stopped after an internal error: {0}")]
    Poisoned(String),
    /// An input named a phase the run's plan does not have.
    #[error("input `{got}` names phase {phase_id}, which is not in the run's plan")]
    UnknownPhase {
        /// The phase named.
        phase_id: PhaseId,
        /// The input's kind.
        got: &'static str,
    },
}

/// Why the Auditor was called; decides what its answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuditPurpose {
    /// A high-risk patch awaits approval in `GATE`.
    Approval,
    /// Builder attempts ran out or a failure loop was seen; the phase is in `RETRY`.
    Rescue(AuditReason),
}

/// What the Supervisor waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Builder { attempt: u32 },
    Auditor { attempt: u32, purpose: AuditPurpose },
    Apply,
    Ci,
    Snapshot,
}

impl Pending {
    fn describe(&self, phase: &PhaseId) -> String {
        match self {
            Pending::Builder { attempt } => {
                format!("builder_finished for phase {phase}, attempt {attempt}")
            }
            Pending::Auditor { attempt, .. } => {
                format!("auditor_finished for phase {phase}, attempt {attempt}")
            }
            Pending::Apply => format!("patch_applied or patch_rejected for phase {phase}"),
            Pending::Ci => format!("ci_finished for phase {phase}"),
            Pending::Snapshot => format!("snapshot_created for phase {phase}"),
        }
    }
}

/// The candidate commit of the current phase.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    commit: CommitId,
    role: AttemptRole,
    attempt: u32,
    patch: String,
}

/// Work state of the phase being executed.
#[derive(Debug, Clone, Default)]
struct PhaseWork {
    builder_attempts: u32,
    extra_builder_attempts: u32,
    auditor_attempts: u32,
    /// Signatures of consecutive failed attempts (reset by a success, never by a revise).
    failure_streak: Vec<String>,
    feedback: Vec<String>,
    /// The patch under validation and who wrote it.
    submitted: Option<(AttemptRole, u32, String)>,
    candidate: Option<Candidate>,
    needs_review: bool,
    approved: bool,
    /// The candidate's CI runs `strict` whatever the phase's profile (a test-integrity
    /// hold, SPEC §13).
    strict_ci: bool,
    /// Tokens of the attempt whose patch is in the gate or CI.
    attempt_tokens: u64,
    /// The last patch a Builder sent for this phase.
    previous_patch: Option<String>,
    /// The last red CI run of this phase.
    last_ci: Option<CiFailure>,
}

/// Position of a phase in the frozen run (and in the record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct At {
    tier: usize,
    phase: usize,
}

impl At {
    fn position(self) -> PhasePosition {
        PhasePosition {
            tier: u32::try_from(self.tier).unwrap_or(u32::MAX),
            phase: u32::try_from(self.phase).unwrap_or(u32::MAX),
        }
    }
}

#[derive(Debug, Clone)]
struct Active {
    run: FrozenRun,
    record: RunRecord,
    ledger: Ledger,
    started_at: DateTime<Utc>,
    /// The phase being executed and its work state.
    current: Option<(At, PhaseWork)>,
    /// The next phase to start.
    next: At,
    pending: Option<Pending>,
    config: SupervisorConfig,
    /// What of `record` changed since the last checkpoint handed out.
    changed: Changed,
    /// The base commit's failing tests per CI profile, once a CI run brought them.
    ci_baselines: BTreeMap<CiProfile, CiBaseline>,
}

impl Active {
    /// Where `phase_id` sits in the plan.
    fn position_of(&self, phase_id: &PhaseId) -> Option<At> {
        self.run.tiers.iter().enumerate().find_map(|(tier, t)| {
            t.phases
                .iter()
                .position(|p| &p.phase_id == phase_id)
                .map(|phase| At { tier, phase })
        })
    }
}

/// The deterministic, sans-IO Supervisor of one run.
///
/// ```
/// use autopack::supervisor::{Supervisor, SupervisorError};
///
/// let mut sup = Supervisor::new();
/// assert!(sup.record().is_none());
/// // Nothing happens before the run starts.
/// assert!(sup.poll_action().is_none());
/// let err = sup.handle(autopack::supervisor::Input::Tick { at: chrono::Utc::now() });
/// assert!(matches!(err, Err(SupervisorError::NotStarted { .. })));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Supervisor {
    active: Option<Box<Active>>,
    actions: VecDeque<Action>,
    /// Set when a lifecycle bug stopped an input half-way.
    poisoned: Option<String>,
}

impl Supervisor {
    /// A Supervisor waiting for [`Input::Start`].
    pub fn new() -> Supervisor {
        Supervisor::default()
    }

    /// The next action the host should perform, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The run's record so far (`None` before the run started).
    pub fn record(&self) -> Option<&RunRecord> {
        self.active.as_ref().map(|a| &a.record)
    }

    /// The issue ledger: the project backlog before the run plus everything recorded in it.
    pub fn ledger(&self) -> Option<&Ledger> {
        self.active.as_ref().map(|a| &a.ledger)
    }

    /// The run's state (`PLAN_BOOTSTRAP` before the start).
    pub fn state(&self) -> RunState {
        self.active
            .as_ref()
            .map_or(RunState::PlanBootstrap, |a| a.record.state)
    }

    /// Whether the run has ended.
    pub fn is_finished(&self) -> bool {
        self.state().is_terminal()
    }

    /// The action the Supervisor is waiting on an answer for, rebuilt from its state.
    ///
    /// After a crash, a host replays the journal into a fresh Supervisor, drops the
    /// actions of the replay, and performs this one again.
    pub fn outstanding(&self) -> Option<Action> {
        let active = self.active.as_deref()?;
        active.pending.as_ref()?;
        let mut replay = active.clone();
        let mut actions = VecDeque::new();
        let mut ctx = Ctx {
            a: &mut replay,
            actions: &mut actions,
            quiet: false,
            first_checkpoint: None,
        };
        ctx.reissue_pending();
        actions.pop_front()
    }

    /// Feeds one input. A refused input leaves the Supervisor unchanged.
    ///
    /// # Errors
    /// A [`SupervisorError`] when the input does not fit (before the start, after the
    /// end, answering no outstanding action, an invalid plan or strategy). Those are
    /// decided before anything changes. [`SupervisorError::Lifecycle`] means a bug in the
    /// Supervisor; it stops accepting inputs ([`SupervisorError::Poisoned`]).
    pub fn handle(&mut self, input: Input) -> Result<(), SupervisorError> {
        self.apply(input, false)
    }

    /// Feeds one input read back from the run's journal: the state changes exactly as
    /// with [`Supervisor::handle`], but the actions are not made (they were performed
    /// before the crash), which saves building and dropping a request per input — except
    /// [`Action::RecordIssues`], so that a host can find issues a crash kept from its
    /// durable ledger (`driver::Artefacts::recover`). After
    /// the last one, [`Supervisor::outstanding`] rebuilds the action awaiting an answer.
    /// [`Input::Start`] is not quiet: start with [`Supervisor::handle`] or
    /// [`Supervisor::start_with`] and drop its actions.
    ///
    /// # Errors
    /// As [`Supervisor::handle`].
    pub fn replay(&mut self, input: Input) -> Result<(), SupervisorError> {
        self.apply(input, true)
    }

    fn apply(&mut self, input: Input, quiet: bool) -> Result<(), SupervisorError> {
        if let Input::Start { .. } = input {
            return self.start_with(input, SupervisorConfig::default());
        }
        if let Some(reason) = &self.poisoned {
            return Err(SupervisorError::Poisoned(reason.clone()));
        }
        let Some(active) = self.active.as_deref_mut() else {
            return Err(SupervisorError::NotStarted { got: input.kind() });
        };
        if active.record.state.is_terminal() {
            return Err(SupervisorError::Finished {
                state: active.record.state,
                got: input.kind(),
            });
        }
        // Every refusal is decided here, before anything changes.
        check_answers_pending(active, &input)?;
        // Spans per run, tier and phase, so hosts can group the events below by them.
        let run_span = tracing::info_span!("run", run_id = %active.run.run_id);
        let _run = run_span.enter();
        let current = active
            .current
            .as_ref()
            .map(|(at, _)| &active.run.tiers[at.tier].phases[at.phase]);
        let tier_span = current.map(|p| tracing::info_span!("tier", tier_id = %p.tier_id));
        let _tier = tier_span.as_ref().map(tracing::Span::enter);
        let phase_span = current.map(|p| tracing::info_span!("phase", phase_id = %p.phase_id));
        let _phase = phase_span.as_ref().map(tracing::Span::enter);
        let mut ctx = Ctx {
            a: active,
            actions: &mut self.actions,
            quiet,
            first_checkpoint: None,
        };
        if let Err(err) = ctx.on_input(input) {
            // Only a lifecycle bug gets here, possibly half-way through an input: refuse
            // everything from now on rather than go on from a state nobody checked.
            self.poisoned = Some(err.to_string());
            return Err(err);
        }
        ctx.hand_over_changes();
        Ok(())
    }

    /// Starts with a non-default [`SupervisorConfig`].
    ///
    /// # Errors
    /// As [`Supervisor::handle`] for [`Input::Start`]; any other input is refused.
    pub fn start_with(
        &mut self,
        input: Input,
        config: SupervisorConfig,
    ) -> Result<(), SupervisorError> {
        let Input::Start {
            at,
            plan,
            strategy,
            backlog,
        } = input
        else {
            return Err(SupervisorError::NotStarted { got: input.kind() });
        };
        if self.active.is_some() {
            return Err(SupervisorError::AlreadyStarted);
        }
        let active = setup::start(at, plan, &strategy, &backlog, config)?;
        self.active = Some(Box::new(active));
        let Some(active) = self.active.as_deref_mut() else {
            return Ok(());
        };
        let mut ctx = Ctx {
            a: active,
            actions: &mut self.actions,
            quiet: false,
            first_checkpoint: None,
        };
        ctx.begin(at)?;
        ctx.hand_over_changes();
        Ok(())
    }
}

fn check_answers_pending(active: &Active, input: &Input) -> Result<(), SupervisorError> {
    let fits =
        |phase_id: &PhaseId, want: &dyn Fn(&Pending) -> bool| -> Result<(), SupervisorError> {
            let current = active.current.as_ref().map(|(at, _)| at);
            let current_id = current.map(|at| &active.run.tiers[at.tier].phases[at.phase].phase_id);
            match (&active.pending, current_id) {
                (Some(p), Some(id)) if id == phase_id && want(p) => Ok(()),
                (Some(p), Some(id)) => Err(SupervisorError::Unexpected {
                    expected: p.describe(id),
                    got: input.kind(),
                }),
                _ => Err(SupervisorError::Unexpected {
                    expected: "no answer (nothing is outstanding)".into(),
                    got: input.kind(),
                }),
            }
        };
    match input {
        Input::Start { .. } => Err(SupervisorError::AlreadyStarted),
        Input::BuilderFinished {
            phase_id, attempt, ..
        } => fits(
            phase_id,
            &|p| matches!(p, Pending::Builder { attempt: a } if a == attempt),
        ),
        Input::AuditorFinished {
            phase_id, attempt, ..
        } => fits(
            phase_id,
            &|p| matches!(p, Pending::Auditor { attempt: a, .. } if a == attempt),
        ),
        Input::PatchApplied { phase_id, .. } | Input::PatchRejected { phase_id, .. } => {
            fits(phase_id, &|p| matches!(p, Pending::Apply))
        }
        Input::CiFinished { phase_id, .. } => fits(phase_id, &|p| matches!(p, Pending::Ci)),
        Input::SnapshotCreated { phase_id, .. } => {
            fits(phase_id, &|p| matches!(p, Pending::Snapshot))
        }
        Input::IssuesReported { phase_id, .. } => match active.position_of(phase_id) {
            Some(_) => Ok(()),
            None => Err(SupervisorError::UnknownPhase {
                phase_id: phase_id.clone(),
                got: input.kind(),
            }),
        },
        Input::EnvironmentFailed { .. }
        | Input::PolicyViolation { .. }
        | Input::Abort { .. }
        | Input::Tick { .. } => Ok(()),
    }
}

/// Why an attempt failed: the reason for people, the signature for loop detection.
struct AttemptFailure {
    reason: String,
    signature: String,
}

/// The Supervisor's logic over a working copy of its state.
struct Ctx<'a> {
    a: &'a mut Active,
    actions: &'a mut VecDeque<Action>,
    /// Replaying a journal: actions are not made (the state changes all the same).
    quiet: bool,
    /// Where in `actions` the first checkpoint emitted by this input is.
    first_checkpoint: Option<usize>,
}

type Step = Result<(), SupervisorError>;

impl Ctx<'_> {
    // ----- lifecycle helpers: every state change goes through the tables -----

    fn run_event(&mut self, event: RunEvent, at: DateTime<Utc>) -> Step {
        let before = self.a.record.state;
        self.a.record.state.apply(event)?;
        let state = self.a.record.state;
        self.a.record.history.push(StateChange { state, at });
        tracing::info!(target: "autopack::run", run_id = %self.a.run.run_id, from = %before, to = %state, %event, "run transition");
        Ok(())
    }

    fn tier_event(&mut self, tier: usize, event: TierEvent, at: DateTime<Utc>) -> Step {
        self.a.changed.tier(u32::try_from(tier).unwrap_or(u32::MAX));
        let record = &mut self.a.record.tiers[tier];
        let before = record.state;
        record.state.apply(event)?;
        let state = record.state;
        record.history.push(StateChange { state, at });
        tracing::info!(target: "autopack::tier", run_id = %self.a.run.run_id, tier_id = %record.tier_id, from = %before, to = %state, %event, "tier transition");
        Ok(())
    }

    fn phase_event(&mut self, at_: At, event: PhaseEvent, at: DateTime<Utc>) -> Step {
        self.a.changed.phase(at_.position());
        let record = &mut self.a.record.tiers[at_.tier].phases[at_.phase];
        let before = record.state;
        record.state.apply(event)?;
        let state = record.state;
        record.history.push(StateChange { state, at });
        tracing::info!(target: "autopack::phase", run_id = %self.a.run.run_id, phase_id = %record.phase_id, from = %before, to = %state, %event, "phase transition");
        Ok(())
    }

    fn phase(&self, at: At) -> &FrozenPhase {
        &self.a.run.tiers[at.tier].phases[at.phase]
    }

    /// The CI profile of the phase's current candidate: the phase's, or `strict` when the
    /// candidate carries a test-integrity hold.
    fn ci_profile(&self, at: At) -> CiProfile {
        match &self.a.current {
            Some((_, work)) if work.strict_ci => CiProfile::Strict,
            _ => self.phase(at).ci_profile,
        }
    }

    fn current(&self) -> Option<At> {
        self.a.current.as_ref().map(|(at, _)| *at)
    }

    fn work(&mut self) -> &mut PhaseWork {
        // Only called while a phase is current.
        &mut self
            .a
            .current
            .get_or_insert_with(|| (At { tier: 0, phase: 0 }, PhaseWork::default()))
            .1
    }

    fn emit(&mut self, action: Action) {
        // A replay still says what it recorded: a crash may have kept those issues from
        // the host's durable ledger (`Artefacts::recover`).
        if !self.quiet || matches!(action, Action::RecordIssues { .. }) {
            if matches!(action, Action::Checkpoint(_)) && self.first_checkpoint.is_none() {
                self.first_checkpoint = Some(self.actions.len());
            }
            self.actions.push_back(action);
        }
    }

    /// After an input: the first checkpoint it emitted gets what changed since the last
    /// checkpoint handed out, up to the end of the input (what the record holds when the
    /// host performs it). Replaying, nothing is handed out, so the changes accumulate.
    fn hand_over_changes(&mut self) {
        let Some(index) = self.first_checkpoint.take() else {
            return;
        };
        let changed = std::mem::take(&mut self.a.changed).normalised();
        if let Some(Action::Checkpoint(
            Checkpoint::Phase { changed: slot, .. } | Checkpoint::Tier { changed: slot, .. },
        )) = self.actions.get_mut(index)
        {
            *slot = changed;
        }
    }

    // ----- start -----

    fn begin(&mut self, at: DateTime<Utc>) -> Step {
        self.run_event(RunEvent::Created, at)?;
        self.run_event(RunEvent::QueuePhases, at)?;
        let phases = self.a.run.phase_count();
        self.a.record.usage.phases = u32::try_from(phases).unwrap_or(u32::MAX);
        if let Some(breach) = self.a.run.caps.check(&self.a.record.usage) {
            return self.fail_run(breach.failure(), breach.to_string(), Some(breach), at);
        }
        self.advance(at)
    }

    // ----- inputs -----

    fn on_input(&mut self, input: Input) -> Step {
        let at = input.at();
        // An input changes the phase being executed (and its tier), if any.
        if let Some(current) = self.current() {
            self.a.changed.phase(current.position());
        }
        self.a.record.usage.elapsed_minutes = minutes_between(self.a.started_at, at);
        // The duration budget acts on every input, whatever it answers.
        let time_only = matches!(input, Input::Tick { .. });
        if !matches!(
            input,
            Input::Abort { .. } | Input::EnvironmentFailed { .. } | Input::PolicyViolation { .. }
        ) && (!self.check_run_budgets(at)? || time_only)
        {
            return Ok(());
        }
        match input {
            Input::Start { .. } => Err(SupervisorError::AlreadyStarted),
            Input::Tick { .. } => Ok(()),
            Input::Abort { reason, .. } => self.fail_run(
                RunFailure::ManualAbort,
                format!("aborted by the host: {reason}"),
                None,
                at,
            ),
            Input::EnvironmentFailed { reason, .. } => self.fail_run(
                RunFailure::Environment,
                format!("environment failure: {reason}"),
                None,
                at,
            ),
            Input::PolicyViolation { reason, .. } => self.fail_run(
                RunFailure::PolicyViolation,
                format!("policy violation: {reason}"),
                None,
                at,
            ),
            Input::BuilderFinished {
                outcome, attempt, ..
            } => {
                self.a.pending = None;
                self.on_builder(attempt, outcome, at)
            }
            Input::AuditorFinished {
                outcome, attempt, ..
            } => {
                let purpose = match self.a.pending.take() {
                    Some(Pending::Auditor { purpose, .. }) => purpose,
                    _ => AuditPurpose::Rescue(AuditReason::AttemptsExhausted),
                };
                self.on_auditor(attempt, purpose, outcome, at)
            }
            Input::PatchApplied { commit, holds, .. } => {
                self.a.pending = None;
                self.on_patch_applied(commit, holds, at)
            }
            Input::PatchRejected { rule, message, .. } => {
                self.a.pending = None;
                let failure = AttemptFailure {
                    reason: format!("gate rejected the patch ({rule}): {message}"),
                    signature: format!("gate:{rule}"),
                };
                self.record_rejected_attempt(&failure.reason, at);
                self.attempt_failed(failure, RunEvent::GateRejected, at)
            }
            Input::CiFinished { report, .. } => {
                self.a.pending = None;
                self.on_ci(report, at)
            }
            Input::SnapshotCreated { tag, .. } => {
                self.a.pending = None;
                self.on_snapshot(tag, at)
            }
            Input::IssuesReported {
                phase_id, issues, ..
            } => {
                // Checked in `check_answers_pending`.
                let Some(at_) = self.a.position_of(&phase_id) else {
                    return Ok(());
                };
                self.a.changed.phase(at_.position());
                if self.record_issues(at_, &issues, at)? {
                    self.check_budgets(at_, at)?;
                }
                Ok(())
            }
        }
    }

    /// Checks run budgets; fails the run on a breach. Returns whether the run goes on.
    fn check_run_budgets(&mut self, at: DateTime<Utc>) -> Result<bool, SupervisorError> {
        if let Some(breach) = self.a.run.caps.check(&self.a.record.usage) {
            self.fail_run(breach.failure(), breach.to_string(), Some(breach), at)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Checks the current tier's budgets: under `safety_critical` a breach fails the run;
    /// otherwise it is recorded and the tier will end `NOT_CLEAN`.
    fn check_tier_budgets(
        &mut self,
        tier: usize,
        at: DateTime<Utc>,
    ) -> Result<bool, SupervisorError> {
        self.a.changed.tier(u32::try_from(tier).unwrap_or(u32::MAX));
        let record = &mut self.a.record.tiers[tier];
        let breaches = record.caps.check(&record.usage);
        for breach in &breaches {
            // One entry per cap, holding its latest figures.
            match record.breaches.iter_mut().find(|b| same_cap(b, breach)) {
                Some(known) => *known = *breach,
                None => {
                    tracing::warn!(target: "autopack::budget", run_id = %self.a.run.run_id, tier_id = %record.tier_id, %breach, "tier budget breached");
                    record.breaches.push(*breach);
                }
            }
        }
        if self.a.run.safety_profile == SafetyProfile::SafetyCritical
            && let Some(breach) = breaches.first()
        {
            let failure = match breach {
                TierBreach::Tokens { .. }
                | TierBreach::CiRuns { .. }
                | TierBreach::CiRunsUsedUp { .. } => RunFailure::BudgetExhausted,
                TierBreach::MinorIssues { .. } | TierBreach::MajorIssues { .. } => {
                    RunFailure::RequiresHumanReview
                }
            };
            let tier_id = self.a.record.tiers[tier].tier_id.clone();
            self.fail_run(
                failure,
                format!("tier {tier_id}: {breach} (safety_critical)"),
                None,
                at,
            )?;
            return Ok(false);
        }
        Ok(true)
    }

    fn spend(&mut self, at_: At, tokens: u64) {
        let phase = &mut self.a.record.tiers[at_.tier].phases[at_.phase];
        phase.usage.tokens = phase.usage.tokens.saturating_add(tokens);
        let tier = &mut self.a.record.tiers[at_.tier];
        tier.usage.tokens = tier.usage.tokens.saturating_add(tokens);
        self.a.record.usage.tokens = self.a.record.usage.tokens.saturating_add(tokens);
    }

    // ----- scheduling -----

    /// Starts the next phase, finishes tiers whose phases are done, or finishes the run.
    fn advance(&mut self, at: DateTime<Utc>) -> Step {
        loop {
            let At { tier, phase } = self.a.next;
            if tier >= self.a.run.tiers.len() {
                return self.finish_run(at);
            }
            let tier_state = self.a.record.tiers[tier].state;
            if tier_state.is_terminal() {
                // A blocked tier: its phases were skipped; move on.
                self.a.next = At {
                    tier: tier + 1,
                    phase: 0,
                };
                continue;
            }
            if phase >= self.a.run.tiers[tier].phases.len() {
                if !self.finish_tier(tier, at)? {
                    return Ok(());
                }
                self.a.next = At {
                    tier: tier + 1,
                    phase: 0,
                };
                continue;
            }
            return self.start_phase(At { tier, phase }, at);
        }
    }

    fn start_phase(&mut self, at_: At, at: DateTime<Utc>) -> Step {
        if self.a.record.tiers[at_.tier].state == TierState::Pending {
            self.tier_event(at_.tier, TierEvent::Start, at)?;
        }
        self.phase_event(at_, PhaseEvent::Start, at)?;
        self.run_event(RunEvent::StartPhase, at)?;
        self.a.current = Some((at_, PhaseWork::default()));
        self.a.next = At {
            tier: at_.tier,
            phase: at_.phase + 1,
        };
        self.dispatch_builder()
    }

    fn dispatch_builder(&mut self) -> Step {
        let Some(at_) = self.current() else {
            return Ok(());
        };
        let work = self.work();
        work.builder_attempts += 1;
        let attempt = work.builder_attempts;
        let feedback = work.feedback.clone();
        let previous_patch = work.previous_patch.clone();
        let last_ci = work.last_ci.clone();
        let max_attempts =
            self.phase(at_).caps.max_builder_attempts + self.work().extra_builder_attempts;
        let record = &mut self.a.record.tiers[at_.tier].phases[at_.phase];
        record.usage.builder_attempts = attempt;
        if self.quiet {
            self.a.pending = Some(Pending::Builder { attempt });
            return Ok(());
        }
        let name = record.name.clone();
        let p = self.phase(at_);
        let request = BuilderRequest {
            run_id: self.a.run.run_id.clone(),
            tier_id: p.tier_id.clone(),
            phase_id: p.phase_id.clone(),
            phase_index: p.phase_index,
            name,
            description: p.description.clone(),
            task_category: p.task_category.clone(),
            complexity: p.complexity,
            builder_mode: p.builder_mode.clone(),
            attempt,
            max_attempts,
            incident_token_cap: p.caps.incident_token_cap,
            scope: p.scope.clone(),
            feedback,
            previous_patch,
            last_ci,
            checkout: None,
        };
        self.a.pending = Some(Pending::Builder { attempt });
        self.emit(Action::DispatchBuilder(request));
        Ok(())
    }

    fn request_audit(&mut self, purpose: AuditPurpose, failures: Vec<String>) -> Step {
        let Some(at_) = self.current() else {
            return Ok(());
        };
        let work = self.work();
        work.auditor_attempts += 1;
        let attempt = work.auditor_attempts;
        let patch = work.candidate.as_ref().map(|c| c.patch.clone());
        let candidate_commit = work.candidate.as_ref().map(|c| c.commit.clone());
        let last_ci = work.last_ci.clone();
        self.a.record.tiers[at_.tier].phases[at_.phase]
            .usage
            .auditor_attempts = attempt;
        let p = self.phase(at_);
        let reason = match purpose {
            AuditPurpose::Approval => AuditReason::HighRiskApproval,
            AuditPurpose::Rescue(reason) => reason,
        };
        let request = AuditorRequest {
            run_id: self.a.run.run_id.clone(),
            tier_id: p.tier_id.clone(),
            phase_id: p.phase_id.clone(),
            auditor_profile: p.auditor_profile.clone(),
            reason,
            attempt,
            patch,
            failures,
            name: self.a.record.tiers[at_.tier].phases[at_.phase].name.clone(),
            description: p.description.clone(),
            task_category: Some(p.task_category.clone()),
            candidate_commit,
            last_ci,
            checkout: None,
        };
        tracing::info!(target: "autopack::escalation", run_id = %self.a.run.run_id, phase_id = %p.phase_id, ?reason, attempt, "auditor requested");
        self.a.pending = Some(Pending::Auditor { attempt, purpose });
        self.emit(Action::RequestAudit(request));
        Ok(())
    }

    fn reissue_pending(&mut self) {
        let Some(pending) = self.a.pending.clone() else {
            return;
        };
        let Some(at_) = self.current() else { return };
        match pending {
            Pending::Builder { .. } => {
                self.work().builder_attempts -= 1;
                let _ = self.dispatch_builder();
            }
            Pending::Auditor { purpose, .. } => {
                self.work().auditor_attempts -= 1;
                let failures = self.work().feedback.clone();
                let _ = self.request_audit(purpose, failures);
            }
            Pending::Apply => {
                if let Some((role, attempt, patch)) = self.work().submitted.clone() {
                    self.emit_apply(at_, role, attempt, patch);
                }
            }
            Pending::Ci => {
                self.emit_ci_request(at_);
            }
            Pending::Snapshot => self.emit_snapshot(at_),
        }
    }
}

/// Whole minutes from `start` to `now` (0 if the clock went backwards).
fn minutes_between(start: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    u64::try_from((now - start).num_minutes()).unwrap_or(0)
}

pub(super) fn same_cap(a: &TierBreach, b: &TierBreach) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}
