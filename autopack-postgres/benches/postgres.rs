//! The PostgreSQL stores over loopback, against a throwaway server this bench starts
//! (fsync on, the distribution's defaults otherwise; `AUTOPACK_TEST_POSTGRES_URL` points
//! it at another server).
//!
//! - **8 writers into one project** (threads, each with its own connection, as 8 hosts
//!   would have): each records 10,000 issues of the first implementation's mix (70% new
//!   keys), with a checkpoint (a synchronous commit: every record so far durable) every
//!   1,000 records, one append per record and, second, one append per 10 records (a
//!   phase's issues, as `Artefacts::record_issues` hands them over); through the store
//!   ([`PgIssueStore`], the durable journal) and through the ledger ([`PgIssueLedger`],
//!   which also applies every writer's entries at each checkpoint, as a host that
//!   materialises the project backlog must). Prints durable records per second over all
//!   writers.
//! - **One run journal writer**: 5,000 appends of a 300-byte journal entry, a sync every
//!   100 (the Supervisor syncs at checkpoints); prints p50/p99/max per append.
//! - Criterion groups (`pg_stores`): one journal append, and one issue record.
//!
//! `AUTOPACK_BENCH_SKIP_CRITERION=1` skips the criterion groups.

use std::time::{Duration, Instant};

use autopack_core::ids::{ProjectId, RunId};
use autopack_core::journal::RunStore;
use autopack_issues::LedgerEvent;
use autopack_issues::testing::{self, FirstImplementationMix};
use autopack_postgres::{Db, PgIssueLedger, PgIssueStore, PgRunStore};
use criterion::{Criterion, criterion_group, criterion_main};

const WRITERS: usize = 8;
const PER_WRITER: u64 = 10_000;
const CHECKPOINT_EVERY: u64 = 1_000;

fn url() -> String {
    autopack_postgres::testing::shared()
        .database()
        .expect("a database for the bench")
}

/// How the writers record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Through {
    /// [`PgIssueStore::append_batch`]: the durable journal alone.
    Store,
    /// [`PgIssueLedger`], refreshed at every checkpoint (each writer applies every
    /// writer's entries, as a host materialising the project backlog does).
    Ledger,
}

/// 8 writers record `PER_WRITER` records each in appends of `batch`; returns the elapsed
/// time until every writer's last checkpoint.
fn eight_writers(url: &str, batch: usize, through: Through) -> Duration {
    let project = ProjectId::new("bench").expect("id");
    let start = Instant::now();
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let project = project.clone();
            s.spawn(move || {
                let db = Db::open(url).expect("connect");
                let mut ledger =
                    PgIssueLedger::open(db.clone(), project.clone(), None).expect("open");
                let mut store = PgIssueStore::new(db, project);
                let mut mix = FirstImplementationMix::for_writer(&format!("w{w}-"));
                let mut pending = Vec::with_capacity(batch);
                for i in 0..PER_WRITER {
                    pending.push(mix.observation(i));
                    if pending.len() == batch {
                        let at = testing::at(i as i64);
                        match through {
                            Through::Ledger => ledger.record_all(&pending, at).expect("record"),
                            Through::Store => {
                                let events: Vec<LedgerEvent> = pending
                                    .iter()
                                    .map(|o| LedgerEvent::Record {
                                        at,
                                        observation: o.clone(),
                                    })
                                    .collect();
                                store.append_batch(&events).expect("append");
                            }
                        }
                        pending.clear();
                    }
                    if (i + 1).is_multiple_of(CHECKPOINT_EVERY) {
                        // What a checkpoint of the artefacts does: everything so far durable
                        // (and, for a ledger, brought up to the journal).
                        store.sync().expect("sync");
                        if through == Through::Ledger {
                            ledger.refresh().expect("refresh");
                        }
                    }
                }
            });
        }
    });
    start.elapsed()
}

fn journal_latencies(url: &str) -> Vec<Duration> {
    let mut store = PgRunStore::new(Db::open(url).expect("connect"));
    let run = RunId::new("bench-run").expect("id");
    let entry = format!(
        "{{\"input\":\"builder_finished\",\"payload\":\"{}\"}}",
        "x".repeat(250)
    );
    let mut latencies = Vec::with_capacity(5_000);
    for i in 0..5_000 {
        let t = Instant::now();
        store.append(&run, &entry).expect("append");
        latencies.push(t.elapsed());
        if (i + 1) % 100 == 0 {
            store.sync(&run).expect("sync");
        }
    }
    latencies.sort();
    latencies
}

fn bench(c: &mut Criterion) {
    for (through, label) in [
        (Through::Store, "PgIssueStore"),
        (Through::Ledger, "PgIssueLedger"),
    ] {
        for batch in [1, 10] {
            let took = eight_writers(&url(), batch, through);
            let n = WRITERS as u64 * PER_WRITER;
            println!(
                "{label}: {WRITERS} writers × {PER_WRITER} records (first-implementation mix), {batch} per append, durable every {CHECKPOINT_EVERY}: {:.2} s, {:.0} durable records/s",
                took.as_secs_f64(),
                n as f64 / took.as_secs_f64()
            );
        }
    }
    let l = journal_latencies(&url());
    let at = |q: f64| l[((l.len() as f64 * q) as usize).min(l.len() - 1)];
    println!(
        "run journal, one writer, 5,000 appends (sync every 100): p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        l[l.len() - 1].as_secs_f64() * 1e6
    );
    if std::env::var_os("AUTOPACK_BENCH_SKIP_CRITERION").is_some() {
        return;
    }
    let mut group = c.benchmark_group("pg_stores");
    let db = Db::open(&url()).expect("connect");
    let mut store = PgRunStore::new(db.clone());
    let run = RunId::new("criterion-run").expect("id");
    let entry = format!(
        "{{\"input\":\"ci_finished\",\"payload\":\"{}\"}}",
        "x".repeat(250)
    );
    group.bench_function("journal_append", |b| {
        b.iter(|| store.append(&run, &entry).expect("append"))
    });
    let mut ledger =
        PgIssueLedger::open(db, ProjectId::new("criterion").expect("id"), None).expect("open");
    let mut mix = FirstImplementationMix::new();
    let mut i = 0;
    group.bench_function("issue_record", |b| {
        b.iter(|| {
            ledger
                .record(&mix.observation(i), testing::at(0))
                .expect("record");
            i += 1;
        })
    });
    group.finish();
}

mod group {
    #![allow(missing_docs)]
    use super::*;
    criterion_group!(benches, bench);
}

criterion_main!(group::benches);
