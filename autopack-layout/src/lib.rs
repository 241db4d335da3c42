//! # autopack-layout
//!
//! The `.autonomous_runs/` layout of SPEC §10, and the only crate of the library stack
//! that touches the filesystem:
//!
//! - [`paths`]: pure path rules ([`RunsRoot`]), sanitised tier file names, and the first
//!   implementation's positions that readers also accept;
//! - [`fsio`]: atomic writes (write, fsync, rename, fsync dir), exclusive advisory locks
//!   on `.lock` siblings, strict JSON reading with file/line/column errors;
//! - [`journal`]: JSON Lines journals with O(1) append, an [`FsyncPolicy`] and torn-tail
//!   repair, and [`FsRunStore`], the filesystem `RunStore`;
//! - [`render`]: pure Markdown/JSON rendering of run, tier and phase summaries and the
//!   incident pack from a [`RunRecord`](autopack_core::record::RunRecord);
//! - [`artefacts`]: writing those renderings atomically into the layout.
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
//! assert_eq!(journal.read(&run)?.entries.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod artefacts;
pub mod error;
pub mod fsio;
pub mod issues;
pub mod journal;
pub mod paths;
pub mod render;
pub mod strategy;

pub use artefacts::{WrittenArtefacts, write_run_artefacts};
pub use error::LayoutError;
pub use issues::{FsIssueLedger, FsIssueStore};
pub use journal::{FsRunStore, FsyncPolicy};
pub use paths::RunsRoot;
pub use strategy::{FsRulesetStore, FsStrategyStore};
