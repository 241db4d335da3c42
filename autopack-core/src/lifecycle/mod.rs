//! The three enforced lifecycles of a run (SPEC §2): [`RunState`], [`TierState`] and
//! [`PhaseState`].
//!
//! Each machine is defined by exactly one transition table ([`RUN_TABLE`], [`TIER_TABLE`],
//! [`PHASE_TABLE`]): a constant slice of [`Transition`] rows `(from, on, to)`. The
//! [`StateMachine::next`] / [`StateMachine::apply`] logic and the Mermaid diagrams
//! ([`mermaid`]) both read that table and nothing else, so the diagrams below cannot drift
//! from the code (a test fails when a committed diagram is stale; refresh with
//! `AUTOPACK_BLESS=1 cargo test -p autopack-core --test lifecycle_diagrams`).
//!
//! Every transition not in a table is rejected with a [`TransitionError`] that names the
//! machine, the state and the event; a rejected event leaves the state unchanged.
//!
//! Invariant: terminal states are absorbing: no row leaves them.
//! Invariant: for every `(state, event)` at most one row applies.
//! Invariant: every state is reachable from the machine's initial state.
//!
//! Decisions: a tier becomes `BLOCKED` only from `RUNNING` (one of its phases failed); a
//! tier that never started because the run stopped stays `PENDING`. `GATE` (run and phase)
//! also covers awaiting an Auditor's review: a "revise" verdict is the run's
//! `GateRejected` and the phase's `AttemptFailed`. A phase that fails for good is the run's
//! `PhaseAbandoned` (back to `PHASE_QUEUEING`, the run may go on with later tiers).
//!
//! States serialise with the exact spellings of the spec (`PHASE_EXECUTION`, `NOT_CLEAN`,
//! ...). Reading also accepts the first implementation's tier spellings `IN_PROGRESS`
//! (for `RUNNING`) and `FAILED` (for `BLOCKED`); writing is always canonical.
//!
//! ```
//! use autopack_core::lifecycle::{RunEvent, RunFailure, RunState, StateMachine};
//!
//! let mut run = RunState::PlanBootstrap;
//! run.apply(RunEvent::Created)?;
//! assert_eq!(run, RunState::RunCreated);
//! // A CI result makes no sense before the run has even queued its phases.
//! let err = run.apply(RunEvent::CiGreen).unwrap_err();
//! assert_eq!(err.to_string(), "run: event CiGreen is not allowed in state RUN_CREATED");
//! assert_eq!(run, RunState::RunCreated);
//! run.apply(RunEvent::Fail(RunFailure::ManualAbort))?;
//! assert_eq!(run.to_string(), "DONE_FAILED_MANUAL_ABORT");
//! assert!(run.is_terminal());
//! # Ok::<(), autopack_core::lifecycle::TransitionError>(())
//! ```
//!
//! # Run lifecycle
#![doc = concat!("```mermaid\n", include_str!("../../docs/lifecycle/run.mmd"), "```")]
//!
//! # Tier lifecycle
#![doc = concat!("```mermaid\n", include_str!("../../docs/lifecycle/tier.mmd"), "```")]
//!
//! # Phase lifecycle
#![doc = concat!("```mermaid\n", include_str!("../../docs/lifecycle/phase.mmd"), "```")]

use std::fmt;

/// Generates a state enum with its canonical spellings, `Display`, `FromStr` and serde
/// implementations (serialisation canonical, deserialisation also accepting legacy
/// spellings).
macro_rules! state_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident in $machine:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $canon:literal, )+
        }
        legacy { $( $alias:literal => $avariant:ident, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, schemars::JsonSchema)]
        pub enum $name {
            $( $(#[$vmeta])* #[schemars(rename = $canon)] $variant, )+
        }

        impl $name {
            /// Every state, in lifecycle order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            /// The canonical spelling of every state, in the order of [`Self::ALL`].
            pub const NAMES: &'static [&'static str] = &[$($canon),+];

            /// The canonical spelling of this state, as written to every artefact.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $canon,)+
                }
            }

            /// Parses a canonical spelling or a legacy one of the first implementation.
            fn parse(value: &str) -> Option<Self> {
                match value {
                    $($canon => Some(Self::$variant),)+
                    $($alias => Some(Self::$avariant),)*
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::lifecycle::ParseStateError;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::parse(value).ok_or_else(|| $crate::lifecycle::ParseStateError {
                    machine: $machine,
                    value: value.to_owned(),
                    expected: Self::NAMES,
                })
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl ::serde::de::Visitor<'_> for Visitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        write!(f, "a {} state", $machine)
                    }

                    fn visit_str<E: ::serde::de::Error>(self, value: &str) -> Result<$name, E> {
                        $name::parse(value).ok_or_else(|| E::unknown_variant(value, $name::NAMES))
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    };
}

/// The states a [`Transition`] row leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSet<S: 'static> {
    /// Exactly these states.
    Only(&'static [S]),
    /// Every state that is not terminal.
    AnyNonTerminal,
}

impl<S: StateMachine> StateSet<S> {
    /// Whether `state` belongs to this set.
    pub fn contains(&self, state: S) -> bool {
        match self {
            Self::Only(states) => states.contains(&state),
            Self::AnyNonTerminal => !state.is_terminal(),
        }
    }
}

/// One row of a transition table: `on` moves any state of `from` to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition<S: 'static, E: 'static> {
    /// The states this row applies in.
    pub from: StateSet<S>,
    /// The event that triggers it.
    pub on: E,
    /// The resulting state.
    pub to: S,
}

/// A lifecycle defined by a single transition table.
///
/// Implemented by [`RunState`], [`TierState`] and [`PhaseState`]; each also offers
/// `next`/`apply` as inherent methods, so the trait need not be imported.
pub trait StateMachine: Copy + Eq + fmt::Debug + fmt::Display + 'static {
    /// The events this machine reacts to.
    type Event: Copy + Eq + fmt::Debug + fmt::Display + 'static;
    /// The machine's name in errors and diagrams: `"run"`, `"tier"` or `"phase"`.
    const NAME: &'static str;
    /// The state every instance starts in.
    const INITIAL: Self;
    /// Every state, in lifecycle order.
    const STATES: &'static [Self];
    /// Every event (including every payload of a parameterised event).
    const EVENTS: &'static [Self::Event];
    /// The transition table: the only place transitions are defined.
    const TABLE: &'static [Transition<Self, Self::Event>];

    /// The canonical spelling of the state.
    fn as_str(self) -> &'static str;

    /// Whether the state is terminal (absorbing).
    fn is_terminal(self) -> bool;

    /// A note shown beside the state in the diagram, if any.
    fn note(self) -> Option<&'static str> {
        None
    }

    /// The state `event` leads to, without changing `self`.
    fn next(self, event: Self::Event) -> Result<Self, TransitionError> {
        Self::TABLE
            .iter()
            .find(|row| row.on == event && row.from.contains(self))
            .map(|row| row.to)
            .ok_or_else(|| TransitionError {
                machine: Self::NAME,
                state: self.as_str(),
                event: event.to_string(),
            })
    }

    /// Moves to the state `event` leads to; on error the state is left unchanged.
    fn apply(&mut self, event: Self::Event) -> Result<(), TransitionError> {
        *self = self.next(event)?;
        Ok(())
    }

    /// The events allowed in this state, in the order of [`Self::EVENTS`].
    fn allowed_events(self) -> Vec<Self::Event> {
        Self::EVENTS
            .iter()
            .copied()
            .filter(|event| self.next(*event).is_ok())
            .collect()
    }
}

/// Implements the inherent `next`/`apply` shortcuts of a [`StateMachine`].
macro_rules! inherent_machine_methods {
    ($state:ty, $event:ty) => {
        impl $state {
            /// The state `event` leads to, without changing `self`.
            pub fn next(self, event: $event) -> Result<Self, $crate::lifecycle::TransitionError> {
                <Self as $crate::lifecycle::StateMachine>::next(self, event)
            }

            /// Moves to the state `event` leads to; on error the state is left unchanged.
            pub fn apply(
                &mut self,
                event: $event,
            ) -> Result<(), $crate::lifecycle::TransitionError> {
                <Self as $crate::lifecycle::StateMachine>::apply(self, event)
            }

            /// This machine's lifecycle as a Mermaid `stateDiagram-v2`.
            pub fn mermaid() -> String {
                $crate::lifecycle::mermaid::<Self>()
            }
        }
    };
}

mod diagram;
mod phase;
mod run;
mod tier;

pub use diagram::mermaid;
pub use phase::{PHASE_TABLE, PhaseEvent, PhaseState};
pub use run::{RUN_TABLE, RunEvent, RunFailure, RunState};
pub use tier::{Cleanliness, TIER_TABLE, TierEvent, TierState};

/// An event that the machine's table does not allow in the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{machine}: event {event} is not allowed in state {state}")]
pub struct TransitionError {
    /// `"run"`, `"tier"` or `"phase"`.
    pub machine: &'static str,
    /// The canonical spelling of the state the event was rejected in.
    pub state: &'static str,
    /// The event, as displayed (e.g. `CiGreen`, `Fail(token_cap_exceeded)`).
    pub event: String,
}

/// A state spelling that is neither canonical nor a known legacy spelling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{machine}: unknown state `{value}`, expected one of {}", expected.join(", "))]
pub struct ParseStateError {
    /// `"run"`, `"tier"` or `"phase"`.
    pub machine: &'static str,
    /// The spelling that was read.
    pub value: String,
    /// The canonical spellings.
    pub expected: &'static [&'static str],
}
