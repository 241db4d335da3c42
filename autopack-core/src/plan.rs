//! The plan document of SPEC §3: a run, its tiers and its phases.
//!
//! The JSON shape is the first implementation's `POST /runs/start` body:
//! `{"run": {...}, "tiers": [...], "phases": [...]}`. Run-level values the plan leaves out
//! (safety profile, run scope, caps) fall back to the ruleset and then to the defaults of
//! [`crate::budget::defaults`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{PhaseId, RunId, TierId};
use crate::vocabulary::{BuilderMode, Complexity, RunScope, SafetyProfile, TaskCategory};

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Run-level settings.
    pub run: RunSpec,
    /// The tiers, in any order; `tier_index` orders them.
    pub tiers: Vec<TierSpec>,
    /// The phases, in any order; `phase_index` orders them.
    pub phases: Vec<PhaseSpec>,
}

/// Run-level settings of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// The run's id.
    pub run_id: RunId,
    /// `normal` or `safety_critical`; the ruleset's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_profile: Option<SafetyProfile>,
    /// `multi_tier` or `single_tier`; the ruleset's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_scope: Option<RunScope>,
    /// Run token cap; the ruleset's or the default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_cap: Option<u64>,
    /// Most phases the run may hold; the ruleset's or the default (25) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_phases: Option<u32>,
    /// Longest the run may take, in minutes; the ruleset's or the default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_minutes: Option<u32>,
}

/// One tier of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    /// The tier's id.
    pub tier_id: TierId,
    /// Its position; tiers run in increasing `tier_index`.
    pub tier_index: u32,
    /// A human name; may hold spaces and unicode.
    pub name: String,
    /// What the tier is for.
    #[serde(default)]
    pub description: String,
}

/// One phase of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    /// The phase's id.
    pub phase_id: PhaseId,
    /// Its position in the run; phases run in increasing `phase_index`, tier by tier.
    pub phase_index: u32,
    /// The tier it belongs to.
    pub tier_id: TierId,
    /// A human name.
    pub name: String,
    /// What the Builder is asked to do.
    #[serde(default)]
    pub description: String,
    /// The kind of work.
    pub task_category: TaskCategory,
    /// The plan's complexity; the category's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complexity: Option<Complexity>,
    /// How the Builder should approach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_mode: Option<BuilderMode>,
    /// Path globs the phase's patches must stay inside; empty means no scope restriction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
}
