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
//! # Speed (`cargo bench -p autopack-layout --bench record`)
//! The headline is the first implementation's issue mix, recorded through
//! [`FsIssueLedger`]: 70% of the records are new keys, 30% repeat a key seen earlier (any
//! earlier key, so most repeats land in earlier runs), 2% of the reports `major`; runs of
//! 10,000 records, each of 4 tiers × 5 phases; fsync at checkpoints
//! ([`FsyncPolicy::AtCheckpoints`]), a checkpoint every 1,000 records. "Durable
//! records/s" counts every record made durable by the checkpoints, checkpoints included.
//! `AUTOPACK_BENCH_N=1000000` runs the million. Measured on the shared 2-core
//! development machine with three other builds running (load average 6–8, an `fdatasync`
//! of the journal alone ≈ 3.5 ms: 270 records/s with fsync on every entry).
//!
//! | records   | version                 | µs per record, by tenth of the run                                  | durable records/s                    |
//! |-----------|-------------------------|---------------------------------------------------------------------|--------------------------------------|
//! | 100,000   | before (full views)     | 209, 1,108, 1,545, 1,805, 1,399, 2,648, 3,508, 4,223, 4,596, 3,265   | 411 (243 s, 233 s in checkpoints)    |
//! | 100,000   | incremental views       | 41.2, 47.6, 53.7, 41.0, 60.5, 40.6, 72.3, 38.9, 43.5, 41.2          | 20,800 (4.8 s, 3.2 s in checkpoints) |
//! | 1,000,000 | incremental views       | 44.6, 47.7, 53.6, 66.2, 50.2, 75.8, 57.1, 49.0, 78.2, 53.4          | 17,400 (57.6 s, 41.0 s in checkpoints) |
//! | 1,000,000 | same, another run       | 35.9, 26.1, 39.5, 61.4, 52.2, 69.9, 45.6, 50.2, 82.0, 59.4          | 19,100 (52.2 s, 36.4 s in checkpoints) |
//! | 100,000   | same, quiet machine (load 0.2) | 23.7, 29.5, 30.1, 24.7, 36.4, 22.2, 33.7, 17.7, 18.4, 19.1   | 39,140 (2.55 s, 1.67 s in checkpoints) |
//! | 100,000   | same, quiet, files on tmpfs (fsync free) | 17.0, 22.6, 23.3, 17.3, 26.9, 16.4, 29.3, 16.9, 18.1, 17.2 | 48,761 (2.05 s, 1.15 s in checkpoints) |
//!
//! (An earlier cut of this version, which re-read and pretty-printed the manifest at every
//! checkpoint: 21,900/s at 100,000, and 14,200/s at 1,000,000 with tenths from 46.6 to
//! 105.5 µs.)
//!
//! The previous version rebuilt every view and hashed every byte at each checkpoint, so
//! the cost per record grew with the ledger (15.6× from the first tenth to the last at
//! 100,000; the million was not run: hours). Now a checkpoint rewrites only the views
//! that changed, and a large one (more than [`issues::SMALL_VIEW`] entries) only once
//! half of it changed: the cost per record stays flat — the **goal of at most 2× from the
//! first tenth to the last holds** at both sizes (last/first 1.00× at 100,000, 1.20× and
//! 1.66× at 1,000,000), but not for every tenth in every run: the widest tenth was 1.75×
//! and 2.28× the first in the two runs at 1,000,000 (the tenths swing with the
//! neighbours' load and with when the backlog's rewrites, up to 700,000 entries, fall).
//! Reopening the ledger of 1,000,000 records takes 8.4 s: the whole journal is replayed
//! and every view file read and hashed (no rebasing of the base checkpoint yet). The **goal of 50,000 durable
//! records/s is not met**: 39,100/s on a quiet machine, 48,800/s even with fsync free
//! (tmpfs), 17,400–20,800/s on the loaded one. Quiet, a checkpoint costs ≈ 17 ms, ≈ 11.5
//! ms of it CPU (building and serialising the views it rewrites), and a record ≈ 9 µs
//! outside checkpoints. Loaded, a checkpoint averages ≈ 30–40 ms, of which
//! ≈ 10–15 ms is the one fsync round (journal and new files together, where there were
//! three rounds) and the rest the rewrites (≈ 300 KB of phase files per checkpoint, and
//! the amortised backlog and run index rewrites, ≈ 2 entries serialised per record);
//! outside checkpoints a record costs ≈ 15 µs of contended CPU (one `flock`, `lseek`,
//! `write` and unlock, the ledger update, serialisation into a reused buffer). Next
//! steps: serialise the large views straight from the ledger's tables (no intermediate
//! `BTreeMap` of cloned entries), and write phase files less often than every checkpoint.
//!
//! The older bench (keys from a pool of 500, `AUTOPACK_BENCH_POOL=1`) hid the growth: its
//! views never grow past 500 keys. Its figures from the previous version, measured then
//! (not re-measured for this one): 24,300–27,800 records/s before and 30,300–32,400/s
//! after that version's changes with a quiet disk, 12,600–16,000/s and 19,100–25,400/s
//! with a busy one.
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
