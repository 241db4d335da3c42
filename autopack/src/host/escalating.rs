//! The Auditor of a host that has none.

use autopack_core::message::{AuditorRequest, AuditorResult};

use crate::driver::Auditor;
use crate::supervisor::AgentOutcome;

/// An Auditor that escalates every review to a person: what a run without an Auditor
/// gets (`autopack run` without `--auditor`). A phase that needs an Auditor's `approve`
/// (high risk, test integrity, a protected path allowed with approval) then fails, naming
/// why, instead of being approved by nobody.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscalatingAuditor;

impl Auditor for EscalatingAuditor {
    fn audit(&mut self, request: &AuditorRequest) -> AgentOutcome<AuditorResult> {
        AgentOutcome::Returned(AuditorResult::escalate(
            request.phase_id.clone(),
            "no Auditor is configured (autopack run --auditor-cmd)",
        ))
    }
}
