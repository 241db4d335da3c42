//! # autopack
//!
//! The facade most hosts depend on: the [`supervisor::Supervisor`] — a deterministic,
//! sans-IO, resumable run driver that carries a plan from `RUN_CREATED` to a terminal state
//! with no human in the loop — and re-exports of the other Autopack crates.

pub mod driver;
pub mod host;
pub mod promotion;
pub mod report;
pub mod supervisor;

pub use autopack_apply as apply;
pub use autopack_core as core;
pub use autopack_issues as issues;
pub use autopack_layout as layout;
pub use autopack_strategy as strategy;
