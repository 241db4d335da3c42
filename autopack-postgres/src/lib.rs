//! # autopack-postgres
//!
//! Autopack's stores in PostgreSQL, for many supervisors on many hosts: run journals
//! ([`PgRunStore`]), a project's issue ledger that any number of processes record into
//! ([`PgIssueStore`], [`PgIssueLedger`]), rulesets and frozen strategies
//! ([`PgRulesetStore`], [`PgStrategyStore`]) and run leases with a heartbeat and an expiry
//! ([`PgRunLeases`]). Each implements the store trait of the crate that owns the data, and
//! passes that crate's conformance suite. Most users reach it through the `autopack`
//! crate's `postgres` feature, or `autopack run --store postgres://…`.
//!
//! The example runs against a throwaway server (feature `testing`; it needs PostgreSQL's
//! server programs, `initdb` and `postgres`, installed):
//!
//! ```
//! # #[cfg(feature = "testing")] {
//! use autopack_core::ids::{ProjectId, RunId};
//! use autopack_core::journal::RunStore;
//! use autopack_issues::testing::{at, observation};
//! use autopack_postgres::{PgIssueLedger, PgRunStore, testing};
//!
//! // A database of its own on a throwaway server (or AUTOPACK_TEST_POSTGRES_URL's).
//! let db = testing::fresh_db();
//! let mut journal = PgRunStore::new(db.clone());
//! let run = RunId::new("run-1")?;
//! journal.append(&run, r#"{"input":"start"}"#)?;
//! journal.sync(&run)?;
//! assert_eq!(journal.read(&run)?.len(), 1);
//!
//! // Two writers (two hosts, say) record into one project's ledger.
//! let project = ProjectId::new("demo")?;
//! let mut a = PgIssueLedger::open(db.clone(), project.clone(), None)?;
//! let mut b = PgIssueLedger::open(db, project, None)?;
//! a.record(&observation("run-1", "t1", 0, "k1"), at(0))?;
//! b.record(&observation("run-2", "t1", 0, "k1"), at(1))?;
//! // b's append brought a's entry with it: both see the key in two runs.
//! assert_eq!(b.ledger().backlog().issues_by_key["k1"].age_in_runs, 2);
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Schema and connections
//! The schema is versioned and migrated on connect ([`Db::connect`], refinery; its
//! migrations are `migrations/V*.sql`), under an advisory lock so processes connecting at
//! once migrate one at a time. Documents are kept as text, byte for byte. One [`Db`] is
//! one connection shared by the stores made from it; when it breaks (the server restarted,
//! the network dropped) the next operation reconnects with bounded backoff
//! ([`RetryPolicy`]: 50 ms doubling to 2 s, for up to 30 s) and runs again, and
//! serialisation failures and deadlocks are retried the same way. Every operation is safe
//! to run twice: an append whose reply was lost finds its own rows. When the time is up
//! the operation fails with [`PgStoreError::Unavailable`], and a run driven through these
//! stores ends (its journal whole) to be resumed later.
//!
//! # Durability
//! [`Durability::AtCheckpoints`] (the default, as the filesystem stores' `AtCheckpoints`)
//! commits appends asynchronously: visible to every reader at once, on disk within the
//! server's `wal_writer_delay`, and forced to disk by [`RunStore`](autopack_core::journal::RunStore)`::sync`
//! and checkpoints. A server *crash* may lose the appends since the last sync (a restart
//! loses nothing); the stores detect it ([`PgStoreError::LostEntries`]) instead of
//! leaving a gap. [`Durability::EveryEntry`] makes every append durable when it returns.
//!
//! # Concurrency
//! - A run journal has one writer (its lease); an append is accepted only as the entry
//!   right after the stored last one, so a second writer fails at once
//!   ([`PgStoreError::Conflict`]); [`PgRunStore::fenced_by`] also refuses appends once the
//!   writer's lease was taken over.
//! - A project's issue journal orders its writers by a lock on the project's row;
//!   sequence numbers are gap-free and in commit order, and each append returns what the
//!   others appended since, so every process's ledger replays the same journal: dedup,
//!   aging by distinct runs and tiers, upgrades and regressions come out as for one
//!   writer. Projects never share a row.
//! - Leases are rows judged by the server's clock: hosts whose clocks disagree still agree
//!   on who holds a run.
//!
//! Bad data in the database (a row that does not parse, a gap in a journal) is a
//! [`PgStoreError::Corrupt`] naming the table and key, never a panic.
//!
//! Benchmarks, their goals and every figure: `PERFORMANCE.md` in the repository.

// The README's example runs as a doctest too, so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod connection;
mod error;
mod issues;
mod journal;
mod lease;
mod strategy;
#[cfg(feature = "testing")]
pub mod testing;

pub use connection::{Conn, Db, Durability, PgConfig, RetryPolicy};
pub use error::PgStoreError;
pub use issues::{PgIssueLedger, PgIssueStore, PgLedgerError};
pub use journal::PgRunStore;
pub use lease::{PgRunLease, PgRunLeases};
pub use strategy::{PgRulesetStore, PgStrategyStore};

/// An id for this writer that no other writer shares: host, process, time and a counter.
pub(crate) fn writer_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{host}:{}:{nanos}:{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
