//! # autopack
//!
//! The facade most hosts depend on. It will hold the Supervisor — the deterministic,
//! sans-IO, resumable run driver that carries a plan from `RUN_CREATED` to a terminal state
//! with no human in the loop — and the reports of SPEC §11, and it re-exports the other
//! Autopack crates.
//!
//! The Supervisor is not implemented yet (issue 7). Today this crate only re-exports the
//! crates below.

pub use autopack_apply as apply;
pub use autopack_core as core;
pub use autopack_issues as issues;
pub use autopack_layout as layout;
pub use autopack_strategy as strategy;
