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
//!   `.autonomous_runs/`);
//! - [`promotion`] and [`report`]: what a finished run's record says.
//!
//! # Speed
//!
//! `benches/supervisor.rs`, on the 2-core development machine with nothing else running
//! (load average < 1.5), criterion medians:
//!
//! - Supervisor overhead with instant agents (start, then builder → gate → CI → snapshot
//!   for every phase, 4 inputs each): 1,000 phases in 1.58 ms (**632,000 phases per
//!   second**), 10,000 phases in 15.2 ms (**657,000 per second**; the goal is 100,000).
//! - Replaying a journal with [`driver::replay_journal`] from a memory store (read, parse
//!   every JSON line, apply): 100,002 entries (25,000 phases) in 74–101 ms; **1,000,002
//!   entries (250,000 phases) in 0.80 s** (0.80–0.87 s over three quiet runs), 1.25
//!   million entries per second; the goal is 1,000,000 entries in under a second. This
//!   virtual machine has noisy spells: a fourth run during one took 1.12 s (0.98–1.28 s),
//!   while a single-threaded parse ran at its usual speed. Before this work the same
//!   replay ran at 245,000 entries per second (800,001 entries in 3.3 s).
//!
//! Where a replay's time goes, for 250,000 phases: the journal is 310 MB, of which the
//! start entry (plan and strategy of every phase) is 137 MB. This thread parses the start
//! (~0.35 s), validates the plan and joins it with the strategy (~0.2 s), then applies
//! the other million entries (~0.25 s); meanwhile a second thread parses those
//! (~0.7 s, nearly all in `serde_json` and the allocator) and hands them over without
//! ever waiting for this one. Reading from a memory store is a snapshot, not a copy.
//! What made it faster: parsing without path tracking unless a document fails; ids,
//! labels and timestamps read without intermediate strings (timestamps through a fast
//! path checked against chrono by a property test); the strategy's sorted phase map read
//! as it is; the start joined by hashing and moving names instead of copying; quiet replay
//! ([`supervisor::Supervisor::replay`], no actions built); the journal kept as one shared
//! text.
//!
//! Per-attempt overhead of the private workspace and the sandbox (`benches/attempt.rs`: one
//! Builder attempt through [`host::InWorkspace`] and a sandboxed [`host::CommandAgent`]
//! running `true`, on repositories of N files in folders of 100; criterion means of two
//! runs on the quiet 2-core machine):
//!
//! | files | whole no-op attempt | checkout + capture | checkout + one-file edit + capture |
//! |---|---|---|---|
//! | 100 | 7.1–9.9 ms | 2.8–3.2 ms | 8.3–9.1 ms |
//! | 1,000 | 12.1–12.2 ms | 6.0–7.0 ms | 16.1–16.9 ms |
//! | 10,000 | **34.6–35.9 ms** | 29.5–30.0 ms | 91–95 ms |
//!
//! The goal, under 50 ms at 10,000 files, is met. The sandboxed process alone (a fresh
//! thread, PID namespace, capabilities dropped, Landlock, spawn, reap) costs 2.9–3.6 ms
//! whatever the size. What grows with the file count is finding what the agent changed:
//! one `lstat` per file, on both cores, once per attempt (on this virtual machine a stat
//! costs ~3 µs; `find` over the same tree takes 46 ms). A finished attempt's scan is
//! reused by the next checkout, which then restores only the paths that differ, so a
//! no-op attempt grows by ~2.5 µs per file and is not flat. An attempt that edits a file
//! costs more at 10,000 files (91–95 ms): the restore of that path through libgit2 and
//! rewriting the kept index (1 MB) twice. Before this work, with libgit2's checkout and
//! status walks over the whole tree, a no-op attempt cost 176 ms at 10,000 files and the
//! process 7.1 ms. A clone is made once per run and role: 24–150 ms at 100 files, 1.3 s at
//! 10,000 (more right after the file system freed many inodes).
//!
//! Checkpoints (`benches/checkpoint.rs`: a 100,000-phase run in 10 tiers driven by instant
//! agents, one phase checkpoint through [`host::FsArtefacts`] on a temporary dir in the
//! middle of the run: the ledger's checkpoint with a few issues, the phase's issue file,
//! the summaries; criterion medians on the shared 2-core machine):
//!
//! | | before | now |
//! |---|---|---|
//! | one phase checkpoint, 100,000 phases | every summary rewritten: ≈ 60 s reported; 1.75 s at 1,000 phases here (1.1–2.7 s), linear in the phases | **13.8 ms** (12.7–15.4 ms) and 25.4 ms (20.2–34.0 ms) in two runs at load ≈ 3; 74 ms (65–84 ms) with a build running beside it |
//! | rendering `run_summary.md`, 100,000 phases | 2.1–2.7 ms at 1,000 phases, linear: a row per phase and ≈ 4 state-history rows per phase (with the phase table bounded but the whole history: 184–213 ms at 100,000) | 1.0 ms (0.9–1.3 ms) |
//! | rendering a tier summary | 149–204 µs at 100 phases, a row per phase | 37 µs at 10,000 phases |
//! | a Supervisor's first checkpoint (writes every file), 1,000 phases | 7.7 s (one file after the other, busy disk) | 0.3–0.6 s (batches of 64 fsynced together) |
//!
//! A checkpoint now writes what changed since the previous one: the Supervisor's
//! [`supervisor::Checkpoint`] carries [`supervisor::Changed`] (the phases and tiers whose
//! record changed, taken when the emitting input has been applied), and the host writes
//! those summaries and the run summary in one batch; the first checkpoint of a Supervisor
//! and the run's last write everything. Summaries of more than 1,000 phases count them by
//! state and list only those neither complete nor queued, and a state history of more than
//! 1,000 entries shows its first 100 and last 400, so no file a checkpoint writes grows
//! with the run. What is left is mostly fsync latency: the ledger's checkpoint (three
//! rounds), the phase's empty issue file (two) and the summaries' batch (three). The 50 ms
//! goal is met with a quiet disk, not with a busy one. The Supervisor's overhead is
//! unchanged within this machine's noise (alternating runs of the previous build and this
//! one: 1,000 phases 3.56 vs 3.69 ms, 10,000 phases 37.4 vs 40.4 ms), and so is replay
//! (100,002 entries: 160.4 vs 161.0 ms; a quiet replay notes no changes: its first
//! checkpoint will write everything anyway).
//!
//! Resuming the same run from disk ([`layout::FsRunStore`]) costs more before the replay
//! starts: reading the 310 MB file takes ~0.26 s, and the store's check that every line
//! is JSON (so that a corrupt line is reported by line and column, and a torn tail is
//! cut) ~0.3 s on two cores: about 1.45 s in all.

pub mod driver;
pub mod host;
pub mod promotion;
pub mod report;
pub mod supervisor;

pub use autopack_apply as apply;
pub use autopack_core as core;
pub use autopack_issues as issues;
pub use autopack_layout as layout;
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
