//! Where a stepped driver stopped, and how a driven run ended.

use autopack_core::lifecycle::RunState;
use autopack_core::message::{AuditorRequest, BuilderRequest};

#[cfg(doc)]
use super::Driver;

/// How a call of [`Driver::run`] or [`Driver::resume`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DriveOutcome {
    /// The run reached this terminal state in this call.
    Finished(RunState),
    /// [`Driver::resume`] found the run already finished: nothing was done.
    AlreadyFinished(RunState),
}

impl DriveOutcome {
    /// The run's terminal state.
    pub fn state(&self) -> RunState {
        match self {
            DriveOutcome::Finished(s) | DriveOutcome::AlreadyFinished(s) => *s,
        }
    }
}

/// An agent's attempt the Supervisor waits for, as [`Driver::advance`] hands it out.
///
/// Exhaustive on purpose: a run has these two roles (SPEC §2), and a host must answer
/// every call it is handed.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentCall {
    /// A Builder attempt.
    Builder(BuilderRequest),
    /// An Auditor attempt.
    Auditor(AuditorRequest),
}

impl AgentCall {
    /// The phase the attempt is for.
    pub fn phase_id(&self) -> &autopack_core::ids::PhaseId {
        match self {
            AgentCall::Builder(r) => &r.phase_id,
            AgentCall::Auditor(r) => &r.phase_id,
        }
    }

    /// The attempt's number within its phase and role.
    pub fn attempt(&self) -> u32 {
        match self {
            AgentCall::Builder(r) => r.attempt,
            AgentCall::Auditor(r) => r.attempt,
        }
    }

    /// `builder` or `auditor`.
    pub fn role(&self) -> autopack_core::record::AttemptRole {
        match self {
            AgentCall::Builder(_) => autopack_core::record::AttemptRole::Builder,
            AgentCall::Auditor(_) => autopack_core::record::AttemptRole::Auditor,
        }
    }

    pub(super) fn during(&self) -> String {
        match self {
            AgentCall::Builder(r) => {
                format!("Builder attempt {} of phase {}", r.attempt, r.phase_id)
            }
            AgentCall::Auditor(r) => {
                format!("Auditor attempt {} of phase {}", r.attempt, r.phase_id)
            }
        }
    }
}

/// Where [`Driver::advance`] stopped.
#[derive(Debug, Clone, PartialEq)]
// One per agent attempt, moved straight into the host's hands: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Step {
    /// The run waits for this agent attempt: perform it (on any machine) and hand its
    /// outcome to [`Driver::builder_finished`] or [`Driver::auditor_finished`].
    Agent(AgentCall),
    /// The run is over, in this state.
    Finished(RunState),
}
