//! The phase lifecycle.
//!
//! `GATE` covers both the automatic gate (patch policy, preflight checks) and awaiting an
//! Auditor's review: an Auditor's "revise" is an `AttemptFailed`, its approval a
//! `GatePassed`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{StateMachine, StateSet, Transition};

state_enum! {
    /// Where a phase is in its lifecycle (SPEC §2).
    pub enum PhaseState in "phase" {
        /// Waiting for its turn.
        Queued = "QUEUED",
        /// A Builder is working on it.
        Executing = "EXECUTING",
        /// Its patch is at the gate, or awaiting an Auditor's review.
        Gate = "GATE",
        /// CI is running on its patch.
        CiRunning = "CI_RUNNING",
        /// An attempt failed; another one will be made.
        Retry = "RETRY",
        /// Applied with green CI.
        Complete = "COMPLETE",
        /// Failed for good (attempts exhausted or unrecoverable); blocks its tier.
        Failed = "FAILED",
        /// Never executed because its tier was blocked.
        Skipped = "SKIPPED",
    }
    legacy {}
}

impl PhaseState {
    /// Whether the phase has finished; terminal states are absorbing.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Failed | Self::Skipped)
    }
}

/// What happens to a phase. Serialised snake_case, e.g. `"gate_passed"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhaseEvent {
    /// Dispatched to a Builder.
    Start,
    /// The Builder submitted a patch.
    Submit,
    /// The gate (and Auditor, where required) accepted the patch.
    GatePassed,
    /// CI passed.
    CiGreen,
    /// An attempt failed (no patch, gate rejection, Auditor "revise", red CI) and attempts
    /// remain.
    AttemptFailed,
    /// The next attempt starts.
    Retry,
    /// The phase failed for good.
    Fail,
    /// The phase's tier was blocked before it started.
    Skip,
}

impl PhaseEvent {
    /// Every event.
    pub const ALL: &'static [Self] = &[
        Self::Start,
        Self::Submit,
        Self::GatePassed,
        Self::CiGreen,
        Self::AttemptFailed,
        Self::Retry,
        Self::Fail,
        Self::Skip,
    ];
}

impl fmt::Display for PhaseEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Start => "Start",
            Self::Submit => "Submit",
            Self::GatePassed => "GatePassed",
            Self::CiGreen => "CiGreen",
            Self::AttemptFailed => "AttemptFailed",
            Self::Retry => "Retry",
            Self::Fail => "Fail",
            Self::Skip => "Skip",
        })
    }
}

use PhaseState as S;

/// A row of [`PHASE_TABLE`].
const fn row(
    from: &'static [PhaseState],
    on: PhaseEvent,
    to: PhaseState,
) -> Transition<PhaseState, PhaseEvent> {
    Transition {
        from: StateSet::Only(from),
        on,
        to,
    }
}

/// The phase transition table: the only place phase transitions are defined.
pub const PHASE_TABLE: &[Transition<PhaseState, PhaseEvent>] = &[
    row(&[S::Queued], PhaseEvent::Start, S::Executing),
    row(&[S::Queued], PhaseEvent::Skip, S::Skipped),
    row(&[S::Executing], PhaseEvent::Submit, S::Gate),
    row(&[S::Gate], PhaseEvent::GatePassed, S::CiRunning),
    row(&[S::CiRunning], PhaseEvent::CiGreen, S::Complete),
    row(
        &[S::Executing, S::Gate, S::CiRunning],
        PhaseEvent::AttemptFailed,
        S::Retry,
    ),
    row(&[S::Retry], PhaseEvent::Retry, S::Executing),
    row(
        &[S::Executing, S::Gate, S::CiRunning, S::Retry],
        PhaseEvent::Fail,
        S::Failed,
    ),
];

impl StateMachine for PhaseState {
    type Event = PhaseEvent;
    const NAME: &'static str = "phase";
    const INITIAL: Self = Self::Queued;
    const STATES: &'static [Self] = Self::ALL;
    const EVENTS: &'static [PhaseEvent] = PhaseEvent::ALL;
    const TABLE: &'static [Transition<Self, PhaseEvent>] = PHASE_TABLE;

    fn as_str(self) -> &'static str {
        PhaseState::as_str(self)
    }

    fn is_terminal(self) -> bool {
        PhaseState::is_terminal(self)
    }

    fn note(self) -> Option<&'static str> {
        match self {
            Self::Gate => Some("also awaiting Auditor review"),
            _ => None,
        }
    }
}

inherent_machine_methods!(PhaseState, PhaseEvent);

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(from: PhaseState, event: PhaseEvent, to: PhaseState) {
        let mut state = from;
        assert_eq!(state.apply(event), Ok(()), "{from} --{event}-->");
        assert_eq!(state, to);
    }

    fn rejected(from: PhaseState, event: PhaseEvent) {
        let mut state = from;
        let err = state.apply(event).expect_err("rejected");
        assert_eq!(state, from);
        assert_eq!(
            err.to_string(),
            format!("phase: event {event} is not allowed in state {from}")
        );
    }

    #[test]
    fn happy_path() {
        ok(S::Queued, PhaseEvent::Start, S::Executing);
        ok(S::Executing, PhaseEvent::Submit, S::Gate);
        ok(S::Gate, PhaseEvent::GatePassed, S::CiRunning);
        ok(S::CiRunning, PhaseEvent::CiGreen, S::Complete);
    }

    #[test]
    fn retries_and_failure() {
        for from in [S::Executing, S::Gate, S::CiRunning] {
            ok(from, PhaseEvent::AttemptFailed, S::Retry);
        }
        ok(S::Retry, PhaseEvent::Retry, S::Executing);
        for from in [S::Executing, S::Gate, S::CiRunning, S::Retry] {
            ok(from, PhaseEvent::Fail, S::Failed);
        }
        rejected(S::Queued, PhaseEvent::Fail);
        rejected(S::Retry, PhaseEvent::AttemptFailed);
        rejected(S::Retry, PhaseEvent::Submit);
    }

    #[test]
    fn skip_only_from_queued() {
        ok(S::Queued, PhaseEvent::Skip, S::Skipped);
        for &from in S::ALL.iter().filter(|s| **s != S::Queued) {
            rejected(from, PhaseEvent::Skip);
        }
    }

    #[test]
    fn out_of_order_events_are_rejected() {
        rejected(S::Queued, PhaseEvent::Submit);
        rejected(S::Executing, PhaseEvent::GatePassed);
        rejected(S::Gate, PhaseEvent::CiGreen);
        rejected(S::CiRunning, PhaseEvent::Submit);
        rejected(S::Executing, PhaseEvent::Start);
    }

    #[test]
    fn terminal_states_absorb_everything() {
        for &from in S::ALL.iter().filter(|s| s.is_terminal()) {
            for &event in PhaseEvent::ALL {
                rejected(from, event);
            }
        }
    }
}
