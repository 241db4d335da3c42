//! # autopack
//!
//! The facade most hosts depend on: the [`supervisor::Supervisor`] — a deterministic,
//! sans-IO, resumable run driver that carries a plan from `RUN_CREATED` to a terminal state
//! with no human in the loop — and re-exports of the other Autopack crates.
//!
//! - [`supervisor`]: feed it [`supervisor::Input`]s, drain [`supervisor::Action`]s;
//! - [`driver`]: the blocking loop over Builder, Auditor, Applier, Verifier, Artefacts and
//!   Tripwire traits, with a journal and resume; [`host`]: ready-made adapters for them
//!   (git, CI in a private workspace, the host tripwire, agents in private workspaces,
//!   sandboxed command agents and presets for Codex CLI, Claude Code and aider,
//!   `.autonomous_runs/`), and the patch gate a run and `autopack patch check` share
//!   ([`host::PatchGate`], [`host::check_patch`]);
//! - [`promotion`] and [`report`]: what a finished run's record says.
//! - Feature `postgres`: the stores in PostgreSQL (`autopack::postgres`, the
//!   `autopack-postgres` crate) and artefacts over a project ledger kept there
//!   (`host::PgArtefacts`), for runs on many hosts.
//!
//! # Speed
//!
//! Supervisor overhead with instant agents: **657,000 phases per second** at 10,000 phases
//! (goal 100,000); replaying a journal of 1,000,002 entries: **0.80 s** (goal under 1 s);
//! a no-op Builder attempt at 10,000 files: **34.6–35.9 ms** (goal under 50 ms); a phase
//! checkpoint in a 100,000-phase run: **13.8 ms** (goal 50 ms, met with a quiet disk, not
//! with a busy one).
//! All figures, their history and how to reproduce them: `PERFORMANCE.md` at the repository root.

pub mod changes;
pub mod driver;
pub mod host;
pub mod promotion;
pub mod report;
pub mod runner;
pub mod supervisor;

pub use autopack_apply as apply;
pub use autopack_core as core;
pub use autopack_issues as issues;
pub use autopack_layout as layout;
#[cfg(feature = "postgres")]
pub use autopack_postgres as postgres;
/// Confining the processes a run starts (`autopack-sandbox`).
pub use autopack_sandbox as sandbox;
pub use autopack_strategy as strategy;

use autopack_issues::ProjectBacklog;
use autopack_strategy::{BacklogEntry, BacklogView};

/// The StrategyEngine's view of a project backlog (what `autopack_strategy::compile`
/// takes), from the ledger's backlog.
pub fn backlog_view(backlog: &ProjectBacklog) -> BacklogView {
    BacklogView::new(
        backlog
            .issues_by_key
            .iter()
            .map(|(key, entry)| BacklogEntry {
                issue_key: key.clone(),
                category: entry.category.clone(),
                base_severity: entry.base_severity,
                status: entry.status,
                age_in_runs: entry.age_in_runs,
                age_in_tiers: entry.age_in_tiers,
            }),
    )
}

/// The ledger's aging thresholds, from a ruleset's or a strategy's.
pub fn aging_thresholds(
    thresholds: &autopack_strategy::AgingThresholds,
) -> autopack_issues::AgingThresholds {
    autopack_issues::AgingThresholds {
        runs: thresholds.minor_issue_aging_runs_threshold,
        tiers: thresholds.minor_issue_aging_tiers_threshold,
    }
}
