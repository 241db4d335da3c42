//! # autopack-strategy
//!
//! How a run is configured before it starts: a project's declarative ruleset
//! (`project_ruleset_{project_id}.json`), the built-in defaults per task category (the
//! five high-risk categories get `high` complexity, strict CI and no auto-apply), and the
//! StrategyEngine, a pure, deterministic function that compiles ruleset + issue backlog +
//! plan into the strategy frozen for the run (`project_implementation_strategy_v{N}.json`):
//! per-phase attempts, token caps, CI profile and auto-apply, per-tier budgets, run caps.
//!
//! ```
//! use autopack_core::plan::Plan;
//! use autopack_strategy::{BacklogView, CompileOptions, Ruleset, compile, strategy_file_name};
//!
//! let plan: Plan = autopack_core::json::from_str(r#"{
//!   "run": {"run_id": "run-1", "safety_profile": "safety_critical"},
//!   "tiers": [{"tier_id": "t1", "tier_index": 0, "name": "Foundation"}],
//!   "phases": [
//!     {"phase_id": "p1", "phase_index": 0, "tier_id": "t1", "name": "Schema",
//!      "task_category": "schema_contract_change", "complexity": "low"},
//!     {"phase_id": "p2", "phase_index": 1, "tier_id": "t1", "name": "Docs",
//!      "task_category": "docs"}
//!   ]}"#, "plan.json").unwrap();
//! let ruleset = Ruleset::from_json(
//!     r#"{"project_id": "Autopack", "category_defaults": {"docs": {"max_builder_attempts": 4}}}"#,
//!     "project_ruleset_Autopack.json",
//! ).unwrap();
//!
//! let strategy = compile(&ruleset, &BacklogView::empty(), &plan, &CompileOptions::default()).unwrap();
//! let schema = &strategy.phase_strategies["p1"];
//! assert_eq!(schema.complexity.as_str(), "high");          // high-risk: never below high
//! assert_eq!(schema.ci_profile.as_str(), "strict");
//! assert!(!schema.auto_apply);
//! let docs = &strategy.phase_strategies["p2"];
//! assert_eq!(docs.max_builder_attempts, 4);                // ruleset override
//! assert_eq!(docs.ci_profile.as_str(), "strict");          // safety_critical tier with high risk
//! assert_eq!(strategy.tier_strategies["t1"].token_cap, 3 * (1_000_000 + 200_000));
//! assert_eq!(strategy_file_name(strategy.version), "project_implementation_strategy_v1.json");
//!
//! // Same inputs, same bytes.
//! let again = compile(&ruleset, &BacklogView::empty(), &plan, &CompileOptions::default()).unwrap();
//! assert_eq!(strategy.to_json(), again.to_json());
//! ```
//!
//! The modules:
//!
//! - [`ruleset`]: the strict ruleset reader ([`Ruleset::from_json`]) with JSON-path errors;
//!   documents over [`MAX_RULESET_BYTES`] (1 MiB) are refused unparsed
//!   ([`Ruleset::from_json_limited`] takes a raised limit);
//! - [`defaults`]: the one table of built-in category defaults;
//! - [`backlog`]: the small view of the project backlog the engine needs;
//! - [`compile()`] / [`dry_run`]: the pure engine (rules documented in [`compile`](mod@compile));
//! - [`strategy`]: the output, its JSON and a readable rendering;
//! - [`store`]: [`RulesetStore`] and [`StrategyStore`] with in-memory implementations;
//!   conformance suites in `testing` (feature `testing`).
//!
//! ## Schemas
//! [`ruleset_schema`] and [`strategy_schema`] generate the JSON Schemas committed as
//! `schemas/ruleset.schema.json` and `schemas/strategy.schema.json`; a test keeps them
//! current (`AUTOPACK_BLESS=1` rewrites them).
//!
//! Benchmarks, their goals and every figure: `PERFORMANCE.md` in the repository.

// The README's example runs as a doctest too, so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod backlog;
pub mod compile;
pub mod defaults;
pub mod patch_policy;
pub mod ruleset;
pub mod store;
pub mod strategy;
#[cfg(feature = "testing")]
pub mod testing;

pub use backlog::{BacklogEntry, BacklogView};
pub use compile::{CompileError, CompileOptions, compile, dry_run};
pub use patch_policy::{PatchPolicyRules, PatchPolicySettings};
pub use ruleset::{
    AgingThresholds, CategoryRules, MAX_RULESET_BYTES, Ruleset, RulesetError, RulesetInvalid,
    ruleset_file_name,
};
pub use store::{
    MemoryRulesetStore, MemoryStoreError, MemoryStrategyStore, RulesetStore, StrategyStore,
};
pub use strategy::{
    Diagnostic, PhaseKeys, PhaseStrategies, PhaseStrategy, SeverityUpgrade, Strategy, TierStrategy,
    strategy_file_name,
};

/// The JSON Schema of a ruleset file, as pretty JSON with a trailing newline.
pub fn ruleset_schema() -> String {
    schema_text(schemars::schema_for!(Ruleset))
}

/// The JSON Schema of a strategy file, as pretty JSON with a trailing newline.
pub fn strategy_schema() -> String {
    schema_text(schemars::schema_for!(Strategy))
}

fn schema_text(schema: schemars::Schema) -> String {
    let mut out = serde_json::to_string_pretty(&schema).unwrap_or_default();
    out.push('\n');
    out
}
