//! # autopack-core
//!
//! The vocabulary every other Autopack crate speaks: validated ids, the plan document, the
//! run/tier/phase lifecycles, budgets, agent messages, the run record and the store traits
//! of run journals and leases. It is pure data and rules; most users reach it through the
//! `autopack` crate (`autopack::core`).
//!
//! ```
//! use autopack_core::ids::RunId;
//! use autopack_core::lifecycle::{RunEvent, RunState};
//! use autopack_core::plan::Plan;
//!
//! // Ids become file names and git ref components, so they are checked at the boundary.
//! assert!(RunId::new("run-2026-01-01").is_ok());
//! let err = RunId::new("../main").unwrap_err();
//! assert!(err.to_string().contains("must not contain the path separator '/'"));
//!
//! // A plan is read strictly: an error names the file and the JSON path at fault.
//! let plan = Plan::from_json(r#"{
//!   "run": {"run_id": "run-1", "run_scope": "multi_tier"},
//!   "tiers": [{"tier_id": "t1", "tier_index": 0, "name": "Foundation"}],
//!   "phases": [{"phase_id": "p1", "phase_index": 0, "tier_id": "t1", "name": "Scaffold",
//!               "task_category": "feature_scaffolding"}]}"#, "plan.json")?;
//! assert_eq!(plan.phases_in_order().len(), 1);
//! let err = Plan::from_json(r#"{"run": {"run_id": "r", "run_scope": "incremental"},
//!   "tiers": [], "phases": []}"#, "plan.json").unwrap_err();
//! assert!(err.to_string().contains("run.run_scope"), "{err}");
//!
//! // Lifecycles move only by the transitions of their table.
//! let mut run = RunState::PlanBootstrap;
//! run.apply(RunEvent::Created)?;
//! assert!(run.apply(RunEvent::CiGreen).is_err());
//! assert_eq!(run.to_string(), "RUN_CREATED");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The modules:
//!
//!
//! - [`ids`]: validated identifiers (`RunId`, `TierId`, `PhaseId`, `ProjectId`, `IssueKey`)
//!   that are safe as file names and git ref components;
//! - [`vocabulary`]: severities, complexities, CI and safety profiles, run scopes, issue
//!   sources, builder modes and task categories, with the exact spellings of the spec;
//! - [`lifecycle`]: the run, tier and phase state machines, each defined by one transition
//!   table;
//! - [`budget`]: run, tier and phase caps with their defaults, usage counters and breach
//!   detection;
//! - [`plan`]: the plan document, its validation and the splitter;
//! - [`message`]: what Builders and Auditors are sent and send back;
//! - [`patch_rules`]: what a patch may do (limits per builder mode, path limits, protected
//!   paths) and why one may be held for an Auditor;
//! - [`record`]: the record of a run (states with timestamps, usage, attempts, CI runs),
//!   as plain data for summaries, reports and promotion;
//! - [`clock`]: time as an injectable dependency;
//! - [`journal`]: the run journal (`RunStore`), where every Supervisor input is appended
//!   before it is applied;
//! - [`lease`]: one writer per run (`RunLeases` + memory);
//! - [`json`]: strict JSON reading with errors that name the source and the JSON path;
//! - [`limits`]: the size limits of documents read from users and agents.
//!
//! This crate is pure: it performs no I/O beyond what a [`clock::SystemClock`] reads.

// The README's example runs as a doctest too, so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod budget;
pub mod clock;
pub mod ids;
pub mod journal;
pub mod json;
pub mod lease;
pub mod lifecycle;
pub mod limits;
pub mod message;
pub mod patch_rules;
pub mod plan;
pub mod promotion;
pub mod record;
pub mod schema;
pub mod vocabulary;

pub use ids::{IdError, IdKind, IssueKey, PhaseId, ProjectId, RunId, TierId};
