//! # autopack-core
//!
//! The vocabulary every other Autopack crate speaks:
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
pub mod record;
pub mod schema;
pub mod vocabulary;

pub use ids::{IdError, IdKind, IssueKey, PhaseId, ProjectId, RunId, TierId};
