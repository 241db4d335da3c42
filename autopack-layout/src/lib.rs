//! # autopack-layout
//!
//! Where a run's artefacts live on disk — the `.autonomous_runs/` folder of a repository —
//! and the filesystem stores behind it: run journals, the project issue ledger, rulesets,
//! strategies and run leases, all written atomically and crash-safe. It is the only crate
//! of the library stack that touches the filesystem.
//!
//! ```
//! use autopack_core::ids::RunId;
//! use autopack_core::journal::RunStore;
//! use autopack_layout::{FsRunStore, FsyncPolicy, RunsRoot};
//!
//! let dir = tempfile::tempdir()?;
//! let root = RunsRoot::new(dir.path().join(".autonomous_runs"));
//! let run = RunId::new("run-1")?;
//! assert!(root.journal(&run).ends_with(".autonomous_runs/run-1/journal.jsonl"));
//!
//! let mut journal = FsRunStore::new(root.clone(), FsyncPolicy::EveryEntry);
//! journal.append(&run, r#"{"event":"created"}"#)?;
//! assert_eq!(journal.read(&run)?.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The modules:
//!
//! - [`paths`]: pure path rules ([`RunsRoot`]), sanitised tier file names, and the first
//!   implementation's positions that readers also accept;
//! - [`fsio`]: atomic writes (write, fsync, rename, fsync dir), exclusive advisory locks
//!   on `.lock` siblings, strict JSON reading with file/line/column errors;
//! - [`journal`]: JSON Lines journals with O(1) append, an [`FsyncPolicy`] and torn-tail
//!   repair, and [`FsRunStore`], the filesystem `RunStore`;
//! - [`render`]: pure Markdown/JSON rendering of run, tier and phase summaries and the
//!   incident pack from a [`RunRecord`](autopack_core::record::RunRecord);
//! - [`artefacts`]: writing those renderings atomically into the layout: everything, or
//!   (at a checkpoint that knows what changed) the run summary and the tier and phase
//!   summaries selected;
//! - [`issues`]: [`FsIssueStore`] (the filesystem `IssueStore`: a JSONL journal of ledger
//!   events, checkpoints that materialise the playbook views) and [`FsIssueLedger`], a
//!   project ledger several processes can record into at once;
//! - [`strategy`]: [`FsRulesetStore`] and [`FsStrategyStore`];
//! - [`project`]: which files hold each project's issue ledger;
//! - [`lease`]: [`FsRunLeases`], one writer per run (a lock the writer's process holds),
//!   and the reclaiming of temporary files a dead writer left.
//!
//! Every adapter passes the conformance suite of its trait (`tests/conformance.rs`). A
//! crash test kills a writer with SIGKILL at random moments and checks that every file
//! parses and holds a committed state; a concurrency test has two processes record 10,000
//! issues each into one backlog and finds all 20,000 (`tests/processes.rs`).
//!
//! Benchmarks, their goals and every figure: `PERFORMANCE.md` in the repository.

// The README's example runs as a doctest too, so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod artefacts;
pub mod error;
pub mod fsio;
pub mod issues;
pub mod journal;
pub mod lease;
pub mod paths;
pub mod project;
pub mod render;
pub mod strategy;

pub use artefacts::{
    Selection, WrittenArtefacts, write_incident_pack, write_run_artefacts, write_selected_artefacts,
};
pub use error::LayoutError;
pub use issues::{FsIssueLedger, FsIssueStore};
pub use journal::{FsRunStore, FsyncPolicy};
pub use lease::{FsRunLease, FsRunLeases};
pub use paths::RunsRoot;
pub use strategy::{FsRulesetStore, FsStrategyStore};
