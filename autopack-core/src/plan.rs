//! The plan document of SPEC §3: a run, its tiers and its phases.
//!
//! The JSON shape is the first implementation's `POST /runs/start` body:
//! `{"run": {...}, "tiers": [...], "phases": [...]}`. Run-level values the plan leaves out
//! (safety profile, run scope, caps) fall back to the ruleset and then to the defaults of
//! [`crate::budget::defaults`].
//!
//! - Reading: [`Plan::from_json`] parses strictly (errors name the source and the JSON
//!   path, e.g. `run.run_scope`) and then [validates](Plan::validate).
//! - Validation reports *every* problem at once, as a [`PlanErrors`] list of
//!   [`PlanProblem`]s, each naming the element by JSON path and by id. The rules are listed
//!   on [`PlanProblemKind`].
//! - Ordering: tiers run in increasing `tier_index`; phases run tier by tier, in
//!   increasing `phase_index` within a tier ([`Plan::tiers_in_order`],
//!   [`Plan::phases_in_order`]). The vectors of the document may be in any order.
//! - Splitting: a plan with more phases than its cap is cut by [`split`] into several plans
//!   along tier boundaries.
//!
//! Invariant: a plan that passes [`Plan::validate`] has at least one phase, every tier has
//! at least one phase, every phase's tier exists, ids and indices are unique, and
//! [`Plan::phases_in_order`] lists phases in strictly increasing `phase_index`.
//!
//! ```
//! use autopack_core::plan::{Plan, PlanProblemKind};
//!
//! let text = r#"{
//!   "run": {"run_id": "run-1", "run_scope": "multi_tier"},
//!   "tiers": [{"tier_id": "t1", "tier_index": 0, "name": "Foundations"}],
//!   "phases": [
//!     {"phase_id": "p1", "phase_index": 0, "tier_id": "t1", "name": "Models",
//!      "task_category": "feature_scaffolding"},
//!     {"phase_id": "p2", "phase_index": 1, "tier_id": "t9", "name": "Docs",
//!      "task_category": "docs"}
//!   ]
//! }"#;
//! let err = Plan::from_json(text, "plan.json").unwrap_err();
//! let problems = err.problems().unwrap();
//! assert_eq!(problems.len(), 1);
//! assert_eq!(problems[0].path, "phases[1].tier_id");
//! assert!(matches!(problems[0].kind, PlanProblemKind::UnknownTier { .. }));
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::budget::defaults;
use crate::ids::{PhaseId, RunId, TierId};
use crate::vocabulary::{BuilderMode, Complexity, RunScope, SafetyProfile, TaskCategory};

mod split;
mod validate;

pub use split::{SplitError, split};
pub use validate::{PlanError, PlanErrors, PlanProblem, PlanProblemKind};

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

impl Plan {
    /// Parses a plan with [`crate::json::from_str`] and [validates](Plan::validate) it.
    ///
    /// A plan with more phases than its `max_phases` is rejected here (with a problem that
    /// points to the splitter); to split such a plan, read it with
    /// `crate::json::from_str::<Plan>` and pass it to [`split`], which checks everything
    /// else itself.
    ///
    /// Documents over [`MAX_PLAN_BYTES`](crate::limits::MAX_PLAN_BYTES) are refused
    /// unparsed; [`Plan::from_json_limited`] takes another limit.
    ///
    /// # Errors
    /// [`PlanError::TooLarge`] over the size limit; [`PlanError::Json`] when the text is not a plan document (the error names the JSON
    /// path, e.g. `run.run_scope` for `"incremental"`); [`PlanError::Invalid`] with every
    /// problem when it is one but breaks the rules.
    pub fn from_json(text: &str, source: &str) -> Result<Plan, PlanError> {
        Plan::from_json_limited(text, source, crate::limits::MAX_PLAN_BYTES)
    }

    /// As [`Plan::from_json`], with `max_bytes` instead of the default
    /// [`MAX_PLAN_BYTES`](crate::limits::MAX_PLAN_BYTES) as the largest document read.
    ///
    /// # Errors
    /// [`PlanError::TooLarge`] when `text` is longer than `max_bytes` (it is not parsed);
    /// otherwise as [`Plan::from_json`].
    pub fn from_json_limited(text: &str, source: &str, max_bytes: u64) -> Result<Plan, PlanError> {
        crate::limits::check_size(
            crate::limits::len_u64(text.as_bytes()),
            max_bytes,
            "plan",
            source,
        )?;
        let plan: Plan = crate::json::from_str(text, source)?;
        match plan.validate() {
            Ok(()) => Ok(plan),
            Err(errors) => Err(PlanError::Invalid {
                source_name: source.to_owned(),
                errors,
            }),
        }
    }

    /// The most phases this plan may hold: its own `max_phases`, else
    /// [`defaults::RUN_MAX_PHASES`].
    pub fn max_phases(&self) -> u32 {
        self.run.max_phases.unwrap_or(defaults::RUN_MAX_PHASES)
    }

    /// The tier with this id (the first one, should ids repeat).
    pub fn tier(&self, tier_id: &TierId) -> Option<&TierSpec> {
        self.tiers.iter().find(|tier| &tier.tier_id == tier_id)
    }

    /// The phase with this id (the first one, should ids repeat).
    pub fn phase(&self, phase_id: &PhaseId) -> Option<&PhaseSpec> {
        self.phases.iter().find(|phase| &phase.phase_id == phase_id)
    }

    /// The tiers in run order: by `tier_index`, ties kept in document order.
    pub fn tiers_in_order(&self) -> Vec<&TierSpec> {
        let mut tiers: Vec<&TierSpec> = self.tiers.iter().collect();
        tiers.sort_by_key(|tier| tier.tier_index);
        tiers
    }

    /// The phases in run order: by their tier's `tier_index`, then by `phase_index`, ties
    /// kept in document order. Phases whose tier is missing come last.
    pub fn phases_in_order(&self) -> Vec<&PhaseSpec> {
        let mut phases: Vec<&PhaseSpec> = self.phases.iter().collect();
        phases.sort_by_key(|phase| {
            let tier_key = match self.tier(&phase.tier_id) {
                Some(tier) => (false, tier.tier_index),
                None => (true, 0),
            };
            (tier_key, phase.phase_index)
        });
        phases
    }

    /// The phases of one tier, by `phase_index` (ties kept in document order).
    pub fn phases_of(&self, tier_id: &TierId) -> Vec<&PhaseSpec> {
        let mut phases: Vec<&PhaseSpec> = self
            .phases
            .iter()
            .filter(|phase| &phase.tier_id == tier_id)
            .collect();
        phases.sort_by_key(|phase| phase.phase_index);
        phases
    }

    /// Cuts this plan into plans of at most [`Plan::max_phases`] phases; see [`split`].
    ///
    /// # Errors
    /// As [`split`].
    pub fn split(&self) -> Result<Vec<Plan>, SplitError> {
        split(self, self.max_phases())
    }
}
