//! The tier lifecycle.
//!
//! Decision: a tier is only `BLOCKED` by one of its own phases failing, so `Block` is
//! allowed from `RUNNING` only. A tier that never started (the run stopped first) stays
//! `PENDING`, which records truthfully that it was never attempted; `PENDING` is not
//! terminal, and has no cleanliness.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{StateMachine, StateSet, Transition};

state_enum! {
    /// Where a tier is in its lifecycle (SPEC §2).
    pub enum TierState in "tier" {
        /// No phase of the tier has started.
        Pending = "PENDING",
        /// The tier's phases are being executed (legacy spelling `IN_PROGRESS`).
        Running = "RUNNING",
        /// All phases done, within issue thresholds and tier budgets.
        Complete = "COMPLETE",
        /// All phases done, but issue thresholds or tier budgets were exceeded.
        NotClean = "NOT_CLEAN",
        /// A phase failed; the remaining phases are skipped (legacy spelling `FAILED`).
        Blocked = "BLOCKED",
    }
    legacy {
        "IN_PROGRESS" => Running,
        "FAILED" => Blocked,
    }
}

impl TierState {
    /// Whether the tier has finished; terminal states are absorbing.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::NotClean | Self::Blocked)
    }

    /// The cleanliness of a finished tier: `COMPLETE` is clean, `NOT_CLEAN` and `BLOCKED`
    /// are not; `None` while the tier has not finished.
    pub const fn cleanliness(self) -> Option<Cleanliness> {
        match self {
            Self::Complete => Some(Cleanliness::Clean),
            Self::NotClean | Self::Blocked => Some(Cleanliness::NotClean),
            Self::Pending | Self::Running => None,
        }
    }
}

/// Whether a finished tier is fit for promotion. Serialised `clean` / `not_clean`.
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
pub enum Cleanliness {
    /// Within every threshold and budget.
    Clean,
    /// Thresholds or budgets were exceeded, or a phase failed.
    NotClean,
}

impl Cleanliness {
    /// The serialised spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::NotClean => "not_clean",
        }
    }
}

impl fmt::Display for Cleanliness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a tier. Serialised snake_case, e.g. `"complete_not_clean"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TierEvent {
    /// The tier's first phase starts.
    Start,
    /// All phases done within thresholds and budgets.
    Complete,
    /// All phases done, but thresholds or budgets were exceeded.
    CompleteNotClean,
    /// A phase of the tier failed. Allowed from `RUNNING` only: a tier that never started
    /// (the run stopped first) stays `PENDING`, recording that it was never attempted.
    Block,
}

impl TierEvent {
    /// Every event.
    pub const ALL: &'static [Self] = &[
        Self::Start,
        Self::Complete,
        Self::CompleteNotClean,
        Self::Block,
    ];
}

impl fmt::Display for TierEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Start => "Start",
            Self::Complete => "Complete",
            Self::CompleteNotClean => "CompleteNotClean",
            Self::Block => "Block",
        })
    }
}

/// The tier transition table: the only place tier transitions are defined.
pub const TIER_TABLE: &[Transition<TierState, TierEvent>] = &[
    Transition {
        from: StateSet::Only(&[TierState::Pending]),
        on: TierEvent::Start,
        to: TierState::Running,
    },
    Transition {
        from: StateSet::Only(&[TierState::Running]),
        on: TierEvent::Complete,
        to: TierState::Complete,
    },
    Transition {
        from: StateSet::Only(&[TierState::Running]),
        on: TierEvent::CompleteNotClean,
        to: TierState::NotClean,
    },
    Transition {
        from: StateSet::Only(&[TierState::Running]),
        on: TierEvent::Block,
        to: TierState::Blocked,
    },
];

impl StateMachine for TierState {
    type Event = TierEvent;
    const NAME: &'static str = "tier";
    const INITIAL: Self = Self::Pending;
    const STATES: &'static [Self] = Self::ALL;
    const EVENTS: &'static [TierEvent] = TierEvent::ALL;
    const TABLE: &'static [Transition<Self, TierEvent>] = TIER_TABLE;

    fn as_str(self) -> &'static str {
        TierState::as_str(self)
    }

    fn is_terminal(self) -> bool {
        TierState::is_terminal(self)
    }
}

inherent_machine_methods!(TierState, TierEvent);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        assert_eq!(
            TierState::Pending.next(TierEvent::Start),
            Ok(TierState::Running)
        );
        assert_eq!(
            TierState::Running.next(TierEvent::Complete),
            Ok(TierState::Complete)
        );
        assert_eq!(
            TierState::Running.next(TierEvent::CompleteNotClean),
            Ok(TierState::NotClean)
        );
        assert_eq!(
            TierState::Running.next(TierEvent::Block),
            Ok(TierState::Blocked)
        );
    }

    #[test]
    fn rejections_leave_state_unchanged() {
        let cases = [
            (TierState::Pending, TierEvent::Complete),
            (TierState::Pending, TierEvent::CompleteNotClean),
            (TierState::Pending, TierEvent::Block),
            (TierState::Running, TierEvent::Start),
        ];
        for (from, event) in cases {
            let mut state = from;
            let err = state.apply(event).expect_err("rejected");
            assert_eq!(state, from);
            assert_eq!(err.machine, "tier");
            assert_eq!(err.state, from.as_str());
        }
        for &from in TierState::ALL.iter().filter(|s| s.is_terminal()) {
            for &event in TierEvent::ALL {
                let mut state = from;
                assert!(state.apply(event).is_err());
                assert_eq!(state, from);
            }
        }
    }

    #[test]
    fn error_message() {
        let err = TierState::Pending
            .next(TierEvent::Block)
            .expect_err("rejected");
        assert_eq!(
            err.to_string(),
            "tier: event Block is not allowed in state PENDING"
        );
    }

    #[test]
    fn cleanliness() {
        assert_eq!(TierState::Complete.cleanliness(), Some(Cleanliness::Clean));
        assert_eq!(
            TierState::NotClean.cleanliness(),
            Some(Cleanliness::NotClean)
        );
        assert_eq!(
            TierState::Blocked.cleanliness(),
            Some(Cleanliness::NotClean)
        );
        assert_eq!(TierState::Pending.cleanliness(), None);
        assert_eq!(TierState::Running.cleanliness(), None);
        for &state in TierState::ALL {
            assert_eq!(state.cleanliness().is_some(), state.is_terminal());
        }
    }

    #[test]
    fn legacy_spellings_parse_to_canonical() {
        assert_eq!("IN_PROGRESS".parse::<TierState>(), Ok(TierState::Running));
        assert_eq!("FAILED".parse::<TierState>(), Ok(TierState::Blocked));
        assert_eq!(TierState::Running.to_string(), "RUNNING");
        assert_eq!(TierState::Blocked.to_string(), "BLOCKED");
    }
}
