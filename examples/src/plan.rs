//! The example plan: three tiers, eight phases.
//!
//! | # | phase | tier | category | what is scripted |
//! |---|-------|------|----------|------------------|
//! | 1 | `hello-name` | t1 | `feature_scaffolding` | succeeds |
//! | 2 | `users-schema` | t1 | `schema_change` (high-risk) | waits in `GATE` for an Auditor `approve`, strict CI |
//! | 3 | `schema-docs` | t1 | `docs` | succeeds |
//! | 4 | `farewell` | t2 | `feature_scaffolding` | the Builder fails until the Auditor revises |
//! | 5 | `cache-tests` | t2 | `tests` | its test is flaky once (red, then green: a minor `ci` issue) |
//! | 6 | `config-defaults` | t2 | `feature_scaffolding` | succeeds |
//! | 7 | `readme-usage` | t3 | `docs` | rewrites the README |
//! | 8 | `changelog` | t3 | `docs` | succeeds |
//!
//! Every phase ends `COMPLETE`, so the run ends `DONE_SUCCESS` and is eligible for
//! promotion.

use anyhow::{Context, Result};
use autopack::core::plan::Plan;

/// The project id of the sample project's ruleset.
pub const PROJECT_ID: &str = "greeter";

/// The example plan as JSON (the first implementation's `POST /runs/start` body).
pub fn example_plan_json(run_id: &str) -> String {
    let plan = serde_json::json!({
        "run": {
            "run_id": run_id,
            "safety_profile": "normal",
            "run_scope": "multi_tier",
            "token_cap": 2_000_000,
            "max_phases": 12,
            "max_duration_minutes": 30
        },
        "tiers": [
            {"tier_id": "t1", "tier_index": 1, "name": "Foundations",
             "description": "Greeting with a name, the users schema and its docs"},
            {"tier_id": "t2", "tier_index": 2, "name": "Features",
             "description": "Farewells, cache tests and configuration defaults"},
            {"tier_id": "t3", "tier_index": 3, "name": "Polish",
             "description": "README and changelog"}
        ],
        "phases": [
            {"phase_id": "hello-name", "phase_index": 1, "tier_id": "t1",
             "name": "Greet by name", "task_category": "feature_scaffolding",
             "description": "src/hello.sh takes an optional name; add a test"},
            {"phase_id": "users-schema", "phase_index": 2, "tier_id": "t1",
             "name": "Users schema", "task_category": "schema_change",
             "description": "Add schema/users.schema and a strict check of its lines"},
            {"phase_id": "schema-docs", "phase_index": 3, "tier_id": "t1",
             "name": "Document the schema", "task_category": "docs",
             "description": "docs/schema.md documents every field"},
            {"phase_id": "farewell", "phase_index": 4, "tier_id": "t2",
             "name": "Farewell", "task_category": "feature_scaffolding",
             "description": "src/farewell.sh says goodbye; add a test"},
            {"phase_id": "cache-tests", "phase_index": 5, "tier_id": "t2",
             "name": "Cache tests", "task_category": "tests",
             "description": "A test of the greeting cache"},
            {"phase_id": "config-defaults", "phase_index": 6, "tier_id": "t2",
             "name": "Configuration defaults", "task_category": "feature_scaffolding",
             "description": "config/defaults.conf with a default greeting; add a test",
             "scope": ["config/**", "tests/**"]},
            {"phase_id": "readme-usage", "phase_index": 7, "tier_id": "t3",
             "name": "README usage", "task_category": "docs",
             "description": "The README lists every script"},
            {"phase_id": "changelog", "phase_index": 8, "tier_id": "t3",
             "name": "Changelog", "task_category": "docs",
             "description": "CHANGELOG.md for 0.1.0"}
        ]
    });
    let mut text = serde_json::to_string_pretty(&plan).unwrap_or_default();
    text.push('\n');
    text
}

/// The example plan, parsed and validated.
///
/// # Errors
/// When `run_id` is not a valid run id.
pub fn example_plan(run_id: &str) -> Result<Plan> {
    Plan::from_json(&example_plan_json(run_id), "example plan")
        .with_context(|| format!("building the example plan for run {run_id:?}"))
}
