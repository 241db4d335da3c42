//! The run as the Supervisor executes it: the plan joined with its frozen strategy.

use autopack_core::budget::{PhaseCaps, RunCaps, TierCaps};
use autopack_core::ids::{PhaseId, RunId, TierId};
use autopack_core::vocabulary::{
    BuilderMode, CiProfile, Complexity, RunScope, SafetyProfile, TaskCategory,
};
use autopack_issues::AgingThresholds;

/// One phase with everything its strategy slice decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FrozenPhase {
    pub(crate) phase_id: PhaseId,
    pub(crate) phase_index: u32,
    pub(crate) tier_id: TierId,
    pub(crate) description: String,
    pub(crate) task_category: TaskCategory,
    pub(crate) complexity: Complexity,
    pub(crate) builder_mode: Option<BuilderMode>,
    pub(crate) caps: PhaseCaps,
    pub(crate) ci_profile: CiProfile,
    pub(crate) ci_max_retries: u32,
    pub(crate) auto_apply: bool,
    pub(crate) auditor_profile: Option<String>,
    pub(crate) high_risk: bool,
    pub(crate) scope: Vec<String>,
}

impl FrozenPhase {
    /// Whether an Auditor `approve` is needed before the patch may proceed (SPEC §7).
    pub(crate) fn needs_approval(&self) -> bool {
        self.high_risk && !self.auto_apply
    }
}

/// One tier, its caps and its phases in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FrozenTier {
    pub(crate) tier_id: TierId,
    pub(crate) tier_index: u32,
    pub(crate) name: String,
    pub(crate) caps: TierCaps,
    pub(crate) phases: Vec<FrozenPhase>,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FrozenRun {
    pub(crate) run_id: RunId,
    pub(crate) safety_profile: SafetyProfile,
    pub(crate) run_scope: RunScope,
    pub(crate) strategy_version: u32,
    pub(crate) caps: RunCaps,
    pub(crate) aging: AgingThresholds,
    pub(crate) tiers: Vec<FrozenTier>,
    /// What a patch may do in this run.
    pub(crate) patch_policy: autopack_strategy::PatchPolicySettings,
}

impl FrozenRun {
    pub(crate) fn phase_count(&self) -> usize {
        self.tiers.iter().map(|t| t.phases.len()).sum()
    }
}
