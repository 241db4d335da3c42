//! The run lifecycle.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{StateMachine, StateSet, Transition};

state_enum! {
    /// Where a run is in its lifecycle (SPEC §2).
    pub enum RunState in "run" {
        /// The plan is being read and validated; nothing exists yet.
        PlanBootstrap = "PLAN_BOOTSTRAP",
        /// The run exists (id, branch, budgets) but no phase is queued.
        RunCreated = "RUN_CREATED",
        /// Choosing the next phase to execute.
        PhaseQueueing = "PHASE_QUEUEING",
        /// A Builder is working on the current phase.
        PhaseExecution = "PHASE_EXECUTION",
        /// The current phase's patch is at the gate (policy checks, Auditor review).
        Gate = "GATE",
        /// CI is running on the current phase's patch.
        CiRunning = "CI_RUNNING",
        /// The current phase is applied and snapshotted.
        SnapshotCreated = "SNAPSHOT_CREATED",
        /// The run finished successfully.
        DoneSuccess = "DONE_SUCCESS",
        /// A run budget (time, CI runs, ...) was exhausted.
        DoneFailedBudgetExhausted = "DONE_FAILED_BUDGET_EXHAUSTED",
        /// The run's phase limit was exceeded.
        DoneFailedPhaseLimitExceeded = "DONE_FAILED_PHASE_LIMIT_EXCEEDED",
        /// The run's token cap was exceeded.
        DoneFailedTokenCapExceeded = "DONE_FAILED_TOKEN_CAP_EXCEEDED",
        /// A tier was blocked by a failed phase.
        DoneFailedTierBlocked = "DONE_FAILED_TIER_BLOCKED",
        /// CI failed beyond recovery.
        DoneFailedCiFailed = "DONE_FAILED_CI_FAILED",
        /// A human aborted the run.
        DoneFailedManualAbort = "DONE_FAILED_MANUAL_ABORT",
        /// A patch or action violated the safety policy.
        DoneFailedPolicyViolation = "DONE_FAILED_POLICY_VIOLATION",
        /// The run needs a human to review before it can go on.
        DoneFailedRequiresHumanReview = "DONE_FAILED_REQUIRES_HUMAN_REVIEW",
        /// The environment (repository, tools, host) failed.
        DoneFailedEnvironment = "DONE_FAILED_ENVIRONMENT",
    }
    legacy {}
}

impl RunState {
    /// Whether the run has finished (successfully or not); terminal states are absorbing.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::DoneSuccess) || self.failure().is_some()
    }

    /// The failure a `DONE_FAILED_*` state records; `None` for every other state.
    pub const fn failure(self) -> Option<RunFailure> {
        Some(match self {
            Self::DoneFailedBudgetExhausted => RunFailure::BudgetExhausted,
            Self::DoneFailedPhaseLimitExceeded => RunFailure::PhaseLimitExceeded,
            Self::DoneFailedTokenCapExceeded => RunFailure::TokenCapExceeded,
            Self::DoneFailedTierBlocked => RunFailure::TierBlocked,
            Self::DoneFailedCiFailed => RunFailure::CiFailed,
            Self::DoneFailedManualAbort => RunFailure::ManualAbort,
            Self::DoneFailedPolicyViolation => RunFailure::PolicyViolation,
            Self::DoneFailedRequiresHumanReview => RunFailure::RequiresHumanReview,
            Self::DoneFailedEnvironment => RunFailure::Environment,
            Self::PlanBootstrap
            | Self::RunCreated
            | Self::PhaseQueueing
            | Self::PhaseExecution
            | Self::Gate
            | Self::CiRunning
            | Self::SnapshotCreated
            | Self::DoneSuccess => return None,
        })
    }
}

/// Why a run failed: each maps to one `DONE_FAILED_*` [`RunState`].
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RunFailure {
    /// A run budget was exhausted.
    BudgetExhausted,
    /// The phase limit was exceeded.
    PhaseLimitExceeded,
    /// The token cap was exceeded.
    TokenCapExceeded,
    /// A tier was blocked.
    TierBlocked,
    /// CI failed beyond recovery.
    CiFailed,
    /// A human aborted the run.
    ManualAbort,
    /// The safety policy was violated.
    PolicyViolation,
    /// A human must review before the run can go on.
    RequiresHumanReview,
    /// The environment failed.
    Environment,
}

impl RunFailure {
    /// Every failure, in the order of the `DONE_FAILED_*` states.
    pub const ALL: &'static [Self] = &[
        Self::BudgetExhausted,
        Self::PhaseLimitExceeded,
        Self::TokenCapExceeded,
        Self::TierBlocked,
        Self::CiFailed,
        Self::ManualAbort,
        Self::PolicyViolation,
        Self::RequiresHumanReview,
        Self::Environment,
    ];

    /// The terminal state this failure ends a run in.
    pub const fn state(self) -> RunState {
        match self {
            Self::BudgetExhausted => RunState::DoneFailedBudgetExhausted,
            Self::PhaseLimitExceeded => RunState::DoneFailedPhaseLimitExceeded,
            Self::TokenCapExceeded => RunState::DoneFailedTokenCapExceeded,
            Self::TierBlocked => RunState::DoneFailedTierBlocked,
            Self::CiFailed => RunState::DoneFailedCiFailed,
            Self::ManualAbort => RunState::DoneFailedManualAbort,
            Self::PolicyViolation => RunState::DoneFailedPolicyViolation,
            Self::RequiresHumanReview => RunState::DoneFailedRequiresHumanReview,
            Self::Environment => RunState::DoneFailedEnvironment,
        }
    }

    /// The serialised (snake_case) spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BudgetExhausted => "budget_exhausted",
            Self::PhaseLimitExceeded => "phase_limit_exceeded",
            Self::TokenCapExceeded => "token_cap_exceeded",
            Self::TierBlocked => "tier_blocked",
            Self::CiFailed => "ci_failed",
            Self::ManualAbort => "manual_abort",
            Self::PolicyViolation => "policy_violation",
            Self::RequiresHumanReview => "requires_human_review",
            Self::Environment => "environment",
        }
    }
}

impl fmt::Display for RunFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a run. Serialised snake_case, e.g. `"ci_green"` or
/// `{"fail": "token_cap_exceeded"}`.
///
/// Skipped phases (of a blocked tier) never enter the run machine: the Supervisor simply
/// does not start them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunEvent {
    /// The plan was validated and the run created.
    Created,
    /// The run's phases were queued.
    QueuePhases,
    /// The next phase was dispatched to a Builder.
    StartPhase,
    /// The Builder produced a patch; it goes to the gate.
    PatchSubmitted,
    /// The gate (and Auditor, where required) accepted the patch; CI starts.
    GatePassed,
    /// The gate rejected the patch, or an Auditor asked for a revision: another attempt.
    GateRejected,
    /// A Builder attempt produced no patch: another attempt.
    AttemptFailed,
    /// CI passed; the phase is applied and snapshotted.
    CiGreen,
    /// CI failed: another attempt.
    CiRed,
    /// The current phase failed for good; its tier is blocked, the run may go on.
    PhaseAbandoned,
    /// No phase is left: the run succeeded.
    Complete,
    /// The run failed.
    Fail(RunFailure),
}

impl RunEvent {
    /// Every event, with every failure.
    pub const ALL: &'static [Self] = &[
        Self::Created,
        Self::QueuePhases,
        Self::StartPhase,
        Self::PatchSubmitted,
        Self::GatePassed,
        Self::GateRejected,
        Self::AttemptFailed,
        Self::CiGreen,
        Self::CiRed,
        Self::PhaseAbandoned,
        Self::Complete,
        Self::Fail(RunFailure::BudgetExhausted),
        Self::Fail(RunFailure::PhaseLimitExceeded),
        Self::Fail(RunFailure::TokenCapExceeded),
        Self::Fail(RunFailure::TierBlocked),
        Self::Fail(RunFailure::CiFailed),
        Self::Fail(RunFailure::ManualAbort),
        Self::Fail(RunFailure::PolicyViolation),
        Self::Fail(RunFailure::RequiresHumanReview),
        Self::Fail(RunFailure::Environment),
    ];
}

impl fmt::Display for RunEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Created => "Created",
            Self::QueuePhases => "QueuePhases",
            Self::StartPhase => "StartPhase",
            Self::PatchSubmitted => "PatchSubmitted",
            Self::GatePassed => "GatePassed",
            Self::GateRejected => "GateRejected",
            Self::AttemptFailed => "AttemptFailed",
            Self::CiGreen => "CiGreen",
            Self::CiRed => "CiRed",
            Self::PhaseAbandoned => "PhaseAbandoned",
            Self::Complete => "Complete",
            Self::Fail(failure) => return write!(f, "Fail({failure})"),
        })
    }
}

use RunState as S;

/// A row of [`RUN_TABLE`] from exactly the listed states.
const fn row(
    from: &'static [RunState],
    on: RunEvent,
    to: RunState,
) -> Transition<RunState, RunEvent> {
    Transition {
        from: StateSet::Only(from),
        on,
        to,
    }
}

/// A row of [`RUN_TABLE`] failing the run from any non-terminal state.
const fn fail(failure: RunFailure) -> Transition<RunState, RunEvent> {
    Transition {
        from: StateSet::AnyNonTerminal,
        on: RunEvent::Fail(failure),
        to: failure.state(),
    }
}

/// The run transition table: the only place run transitions are defined.
pub const RUN_TABLE: &[Transition<RunState, RunEvent>] = &[
    row(&[S::PlanBootstrap], RunEvent::Created, S::RunCreated),
    row(&[S::RunCreated], RunEvent::QueuePhases, S::PhaseQueueing),
    row(
        &[S::PhaseQueueing, S::SnapshotCreated],
        RunEvent::StartPhase,
        S::PhaseExecution,
    ),
    row(&[S::PhaseExecution], RunEvent::PatchSubmitted, S::Gate),
    row(
        &[S::PhaseExecution],
        RunEvent::AttemptFailed,
        S::PhaseExecution,
    ),
    row(&[S::Gate], RunEvent::GatePassed, S::CiRunning),
    row(&[S::Gate], RunEvent::GateRejected, S::PhaseExecution),
    row(&[S::CiRunning], RunEvent::CiGreen, S::SnapshotCreated),
    row(&[S::CiRunning], RunEvent::CiRed, S::PhaseExecution),
    row(
        &[S::PhaseExecution, S::Gate, S::CiRunning],
        RunEvent::PhaseAbandoned,
        S::PhaseQueueing,
    ),
    row(
        &[S::PhaseQueueing, S::SnapshotCreated],
        RunEvent::Complete,
        S::DoneSuccess,
    ),
    fail(RunFailure::BudgetExhausted),
    fail(RunFailure::PhaseLimitExceeded),
    fail(RunFailure::TokenCapExceeded),
    fail(RunFailure::TierBlocked),
    fail(RunFailure::CiFailed),
    fail(RunFailure::ManualAbort),
    fail(RunFailure::PolicyViolation),
    fail(RunFailure::RequiresHumanReview),
    fail(RunFailure::Environment),
];

impl StateMachine for RunState {
    type Event = RunEvent;
    const NAME: &'static str = "run";
    const INITIAL: Self = Self::PlanBootstrap;
    const STATES: &'static [Self] = Self::ALL;
    const EVENTS: &'static [RunEvent] = RunEvent::ALL;
    const TABLE: &'static [Transition<Self, RunEvent>] = RUN_TABLE;

    fn as_str(self) -> &'static str {
        RunState::as_str(self)
    }

    fn is_terminal(self) -> bool {
        RunState::is_terminal(self)
    }

    fn note(self) -> Option<&'static str> {
        match self {
            Self::Gate => Some("also awaiting Auditor review"),
            _ => None,
        }
    }
}

inherent_machine_methods!(RunState, RunEvent);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::TransitionError;

    fn ok(from: RunState, event: RunEvent, to: RunState) {
        assert_eq!(from.next(event), Ok(to), "{from} --{event}-->");
        let mut state = from;
        assert_eq!(state.apply(event), Ok(()));
        assert_eq!(state, to);
    }

    fn rejected(from: RunState, event: RunEvent) {
        let mut state = from;
        let err = state.apply(event).expect_err("must be rejected");
        assert_eq!(state, from, "state changed on a rejected event");
        assert_eq!(
            err,
            TransitionError {
                machine: "run",
                state: from.as_str(),
                event: event.to_string()
            }
        );
    }

    #[test]
    fn happy_path() {
        ok(S::PlanBootstrap, RunEvent::Created, S::RunCreated);
        ok(S::RunCreated, RunEvent::QueuePhases, S::PhaseQueueing);
        ok(S::PhaseQueueing, RunEvent::StartPhase, S::PhaseExecution);
        ok(S::PhaseExecution, RunEvent::PatchSubmitted, S::Gate);
        ok(S::Gate, RunEvent::GatePassed, S::CiRunning);
        ok(S::CiRunning, RunEvent::CiGreen, S::SnapshotCreated);
        ok(S::SnapshotCreated, RunEvent::StartPhase, S::PhaseExecution);
        ok(S::SnapshotCreated, RunEvent::Complete, S::DoneSuccess);
        ok(S::PhaseQueueing, RunEvent::Complete, S::DoneSuccess);
    }

    #[test]
    fn retries_return_to_execution() {
        ok(
            S::PhaseExecution,
            RunEvent::AttemptFailed,
            S::PhaseExecution,
        );
        ok(S::Gate, RunEvent::GateRejected, S::PhaseExecution);
        ok(S::CiRunning, RunEvent::CiRed, S::PhaseExecution);
    }

    #[test]
    fn abandoned_phase_returns_to_queueing() {
        for from in [S::PhaseExecution, S::Gate, S::CiRunning] {
            ok(from, RunEvent::PhaseAbandoned, S::PhaseQueueing);
        }
        for from in [
            S::PlanBootstrap,
            S::RunCreated,
            S::PhaseQueueing,
            S::SnapshotCreated,
        ] {
            rejected(from, RunEvent::PhaseAbandoned);
        }
    }

    #[test]
    fn every_failure_from_every_non_terminal_state() {
        for &from in RunState::ALL.iter().filter(|s| !s.is_terminal()) {
            for &failure in RunFailure::ALL {
                ok(from, RunEvent::Fail(failure), failure.state());
            }
        }
    }

    #[test]
    fn terminal_states_absorb_everything() {
        for &from in RunState::ALL.iter().filter(|s| s.is_terminal()) {
            for &event in RunEvent::ALL {
                rejected(from, event);
            }
            assert!(from.allowed_events().is_empty());
        }
    }

    #[test]
    fn out_of_order_events_are_rejected() {
        rejected(S::PlanBootstrap, RunEvent::QueuePhases);
        rejected(S::RunCreated, RunEvent::StartPhase);
        rejected(S::PhaseQueueing, RunEvent::PatchSubmitted);
        rejected(S::PhaseExecution, RunEvent::GatePassed);
        rejected(S::PhaseExecution, RunEvent::Complete);
        rejected(S::Gate, RunEvent::CiGreen);
        rejected(S::Gate, RunEvent::AttemptFailed);
        rejected(S::CiRunning, RunEvent::GateRejected);
        rejected(S::CiRunning, RunEvent::Complete);
        rejected(S::SnapshotCreated, RunEvent::CiGreen);
    }

    #[test]
    fn error_message_names_machine_state_and_event() {
        let err = S::Gate.next(RunEvent::CiGreen).expect_err("rejected");
        assert_eq!(
            err.to_string(),
            "run: event CiGreen is not allowed in state GATE"
        );
        let err = S::DoneSuccess
            .next(RunEvent::Fail(RunFailure::TokenCapExceeded))
            .expect_err("rejected");
        assert_eq!(
            err.to_string(),
            "run: event Fail(token_cap_exceeded) is not allowed in state DONE_SUCCESS"
        );
    }

    #[test]
    fn failure_round_trips_through_state() {
        for &failure in RunFailure::ALL {
            assert_eq!(failure.state().failure(), Some(failure));
            assert!(failure.state().is_terminal());
        }
        let failed = RunState::ALL
            .iter()
            .filter(|s| s.failure().is_some())
            .count();
        assert_eq!(failed, RunFailure::ALL.len());
        assert_eq!(S::DoneSuccess.failure(), None);
        assert!(S::DoneSuccess.is_terminal());
    }

    #[test]
    fn allowed_events_in_gate() {
        let allowed = S::Gate.allowed_events();
        assert_eq!(
            &allowed[..3],
            &[
                RunEvent::GatePassed,
                RunEvent::GateRejected,
                RunEvent::PhaseAbandoned
            ]
        );
        assert_eq!(allowed.len(), 3 + RunFailure::ALL.len());
    }
}
