//! # autopack
//!
//! Autopack lets code-writing agents change a repository with no human in the loop, and
//! keeps them honest while they do. A run takes a plan (tiers of phases), gives each phase
//! to a **Builder** (an agent that writes the change) and, when needed, an **Auditor** (an
//! agent that reviews it), puts every patch through a policy gate and the project's tests,
//! commits only to the integration branch `autonomous/{run_id}`, records every issue in a
//! ledger that ages unresolved debt, and ends in `DONE_SUCCESS` or a `DONE_FAILED_*` state —
//! never in a state that waits for a person. Promotion to `main` is a separate, explicit
//! call. This crate is the one most hosts depend on; it re-exports the others.
//!
//! The pieces, from the inside out:
//!
//! - The **Supervisor** ([`supervisor::Supervisor`]) decides everything: lifecycles,
//!   budgets, retries, escalation to the Auditor, issues. It is sans-IO and deterministic:
//!   you [`handle`](supervisor::Supervisor::handle) an [`Input`](supervisor::Input) (a
//!   Builder finished, CI was green, …) and [`poll_action`](supervisor::Supervisor::poll_action)
//!   for the next [`Action`](supervisor::Action) (dispatch a Builder, apply a patch, run
//!   CI, …). Same inputs, same actions, same record — which is what makes a run resumable
//!   from its journal.
//! - The **driver** ([`driver::Driver`]) is the loop around it: it journals every input
//!   before applying it, performs every action through six small traits
//!   ([`driver::Builder`], [`driver::Auditor`], [`driver::Applier`], [`driver::Verifier`],
//!   [`driver::Artefacts`], [`driver::Tripwire`]), and resumes a crashed run from its
//!   journal ([`driver::Driver::resume`]). A host whose agents answer from elsewhere (an
//!   HTTP service) steps it with [`driver::Driver::advance`] instead.
//! - The **host adapters** ([`host`]) implement those traits for real work: the governed
//!   apply path, CI and the tripwire on git ([`host::GitApplier`], [`host::GitVerifier`],
//!   [`host::GitTripwire`]); agents in private workspaces ([`host::InWorkspace`]); external
//!   commands and presets for Codex CLI, Claude Code and aider ([`host::CommandAgent`],
//!   [`host::AgentPreset`]), sandboxed; artefacts in `.autonomous_runs/`
//!   ([`host::FsArtefacts`]); and the one patch gate every patch takes
//!   ([`host::PatchGate`], [`host::check_patch`]).
//! - After a run: [`promotion`] (is it eligible for `main`?) and [`report`] (run lists,
//!   tier cleanliness, backlog, budget aborts); [`verify`] (the journal re-derived without
//!   trusting stored views, and the in-toto attestation built from it; checked against a
//!   repository by `runner::verify_run`) and [`whatif`] (recorded runs replayed under
//!   another ruleset).
//!
//! The Supervisor on its own, answering its actions as a trivial host would — a Builder
//! that always succeeds, a gate that accepts, CI that is green:
//!
//! ```
//! use autopack::core::lifecycle::RunState;
//! use autopack::core::ids::CommitId;
//! use autopack::core::message::BuilderResult;
//! use autopack::core::plan::Plan;
//! use autopack::core::record::CiVerdict;
//! use autopack::issues::ProjectBacklog;
//! use autopack::supervisor::{Action, AgentOutcome, CiReport, Input, Supervisor, SupervisorConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plan = Plan::from_json(r#"{
//!   "run": {"run_id": "run-1"},
//!   "tiers": [{"tier_id": "t1", "tier_index": 0, "name": "Foundation"}],
//!   "phases": [
//!     {"phase_id": "p1", "phase_index": 0, "tier_id": "t1", "name": "Scaffold",
//!      "task_category": "feature_scaffolding"},
//!     {"phase_id": "p2", "phase_index": 1, "tier_id": "t1", "name": "Docs",
//!      "task_category": "docs"}
//!   ]}"#, "plan.json")?;
//! // The frozen strategy: built-in defaults, no ruleset, an empty backlog.
//! let strategy = autopack::strategy::dry_run(&plan, None, None)?;
//! let mut now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")?.to_utc();
//!
//! let mut supervisor = Supervisor::new();
//! supervisor.start_with(
//!     Input::Start { at: now, plan, strategy: Box::new(strategy), backlog: Box::new(ProjectBacklog::default()) },
//!     SupervisorConfig::default(),
//! )?;
//! while let Some(action) = supervisor.poll_action() {
//!     now += chrono::Duration::seconds(1);
//!     let answer = match action {
//!         Action::DispatchBuilder(request) => Input::BuilderFinished {
//!             at: now,
//!             phase_id: request.phase_id.clone(),
//!             attempt: request.attempt,
//!             outcome: AgentOutcome::Returned(
//!                 BuilderResult::success(
//!                     request.phase_id.clone(),
//!                     format!("diff --git a/{0} b/{0}\n…", request.phase_id),
//!                 )
//!                 .with_tokens(1_000),
//!             ),
//!         },
//!         Action::ApplyPatch(request) => Input::PatchApplied {
//!             at: now,
//!             phase_id: request.phase_id.clone(),
//!             // The host's commit of the patch (made up here: the phase id in hex).
//!             commit: CommitId::new(format!("{:0<40}", hex(request.phase_id.as_str())))?,
//!             holds: vec![],
//!         },
//!         Action::RunCi(request) => Input::CiFinished {
//!             at: now,
//!             phase_id: request.phase_id.clone(),
//!             report: CiReport::new(CiVerdict::Green, 1),
//!         },
//!         Action::CreateSnapshot(request) => Input::SnapshotCreated {
//!             at: now,
//!             phase_id: request.phase_id.clone(),
//!             tag: request.tag.clone(),
//!         },
//!         // Checkpoints, issues to record, the end: nothing to answer.
//!         _ => continue,
//!     };
//!     supervisor.handle(answer)?;
//! }
//! assert_eq!(supervisor.state(), RunState::DoneSuccess);
//! # fn hex(text: &str) -> String { text.bytes().map(|b| format!("{b:02x}")).collect() }
//! let record = supervisor.record().expect("the run started");
//! assert_eq!(record.usage.tokens, 2_000);
//! assert_eq!(record.usage.ci_runs, 2);
//! # Ok(()) }
//! ```
//!
//! A real host does the same through [`driver::Driver::run`] with the [`host`] adapters;
//! the `autopack` command-line tool (`autopack run`, `autopack resume`, `autopack serve`)
//! is such a host.
//!
//! # Features
//!
//! - `git` (on by default): everything that works on a git repository — the governed apply
//!   path and CI (`host::GitApplier`, `host::GitVerifier`, `host::GitTripwire`,
//!   `host::PatchGate`, `host::InWorkspace`), the [`runner`] that prepares a repository
//!   and drives runs in it, and `autopack::apply`. It pulls in libgit2 (a C build). Without
//!   it (`default-features = false`) the crate is the sans-IO Supervisor, the driver and
//!   its traits, the artefacts in `.autonomous_runs/`, agent commands and presets,
//!   promotion eligibility and the reports: a host brings its own apply path and CI.
//! - `tokio`: [`driver::AsyncDriver`], the driver for a tokio host whose agents are
//!   `async` (its futures are `Send`).
//! - `postgres`: the stores in PostgreSQL (`autopack::postgres`, the `autopack-postgres`
//!   crate) and artefacts over a project ledger kept there (`host::PgArtefacts`), for runs
//!   on many hosts that share a backlog.
//!
//! The run's guarantees, written for users, are in `docs/CONTRACT.md` of the repository;
//! benchmarks and their figures in `PERFORMANCE.md`.

// The README's example runs as a doctest too, so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod changes;
pub mod driver;
pub mod host;
pub mod promotion;
pub mod report;
#[cfg(feature = "git")]
pub mod runner;
pub mod supervisor;
pub mod verify;
pub mod whatif;

#[cfg(feature = "git")]
pub use autopack_apply as apply;
pub use autopack_attest as attest;
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
