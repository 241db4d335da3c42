//! Recording issues durably through the filesystem issue ledger.
//!
//! The headline is the first implementation's issue mix: 70% of the records are new keys,
//! 30% repeat a key seen earlier (drawn uniformly from every key so far, so repeats land
//! in earlier runs' keys too); runs of 10,000 records, each of 4 tiers × 5 phases (500
//! records a phase); fsync at checkpoints, a checkpoint every 1,000 records. It prints
//! the cost per record of each tenth of the run, to show whether it stays flat as the
//! ledger grows, and the durable records per second overall.
//!
//! - `AUTOPACK_BENCH_N=1000000` (default 100,000) sets the number of records of the
//!   explicit pass; `AUTOPACK_BENCH_WRITERS=1` adds 8 concurrent writers into one project
//!   (the figure beside the PostgreSQL store's); `AUTOPACK_BENCH_POOL=1` adds the older pass with keys from a pool of
//!   500 (which hides a checkpoint cost that grows with the ledger);
//!   `AUTOPACK_BENCH_SKIP_CRITERION=1` skips the criterion groups.
//! - The criterion groups (`fs_issue_ledger`) time 10,000 records of the mix and 500
//!   records with fsync on every entry.

use std::time::{Duration, Instant};

use autopack_issues::{AgingThresholds, IssueObservation, testing};
use autopack_layout::issues::FsIssueLedger;
use autopack_layout::{FsyncPolicy, RunsRoot};
use criterion::{Criterion, criterion_group, criterion_main};

/// The issue mixes the bench records.
#[derive(Clone, Copy)]
enum Mix {
    /// 70% new keys, 30% repeats of any earlier key; 2% of the reports `major`.
    FirstImplementation,
    /// Keys from a pool of 500, one run of 10 phases per 10,000 records (the older bench).
    Pool500,
}

/// The observations of the mix, generated on the fly.
enum Observations {
    FirstImplementation(testing::FirstImplementationMix),
    Pool500,
}

impl Observations {
    fn new(mix: Mix) -> Observations {
        match mix {
            Mix::FirstImplementation => {
                Observations::FirstImplementation(testing::FirstImplementationMix::new())
            }
            Mix::Pool500 => Observations::Pool500,
        }
    }

    fn observation(&mut self, i: u64) -> IssueObservation {
        match self {
            Observations::Pool500 => testing::observation(
                &format!("run-{}", i / 10_000),
                "t1",
                ((i / 1_000) % 10) as u32,
                &format!("key-{}", (i * 7919) % 500),
            ),
            Observations::FirstImplementation(mix) => mix.observation(i),
        }
    }
}

struct Pass {
    total: Duration,
    /// Opening the ledger again afterwards (the whole journal is replayed, every view
    /// checked).
    reopen: Duration,
    in_checkpoints: Duration,
    slices: Vec<Duration>,
}

fn record_n(n: u64, mix: Mix, policy: FsyncPolicy, checkpoint_every: u64) -> Pass {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = RunsRoot::new(dir.path().join(".autonomous_runs"));
    let mut ledger = FsIssueLedger::open(root, AgingThresholds::default(), policy).expect("open");
    let mut observations = Observations::new(mix);
    let mut slices = Vec::new();
    let slice = (n / 10).max(1);
    let start = Instant::now();
    let mut slice_start = start;
    let mut in_checkpoints = Duration::ZERO;
    for i in 0..n {
        let obs = observations.observation(i);
        ledger.record(&obs, testing::at(i as i64)).expect("record");
        if (i + 1).is_multiple_of(checkpoint_every) {
            let t = Instant::now();
            ledger.checkpoint().expect("checkpoint");
            in_checkpoints += t.elapsed();
        }
        if (i + 1).is_multiple_of(slice) {
            let now = Instant::now();
            slices.push(now - slice_start);
            slice_start = now;
        }
    }
    ledger.checkpoint().expect("final checkpoint");
    let total = start.elapsed();
    drop(ledger);
    let t = Instant::now();
    let root = RunsRoot::new(dir.path().join(".autonomous_runs"));
    let reopened = FsIssueLedger::open(root, AgingThresholds::default(), policy).expect("reopen");
    let reopen = t.elapsed();
    std::hint::black_box(reopened.ledger().len());
    Pass {
        total,
        reopen,
        in_checkpoints,
        slices,
    }
}

fn report(label: &str, n: u64, pass: &Pass) {
    println!(
        "{label}: {n} records, fsync at checkpoints every 1,000: {:.2} s ({:.2} s in checkpoints), {:.0} durable records/s",
        pass.total.as_secs_f64(),
        pass.in_checkpoints.as_secs_f64(),
        n as f64 / pass.total.as_secs_f64()
    );
    println!("  reopening afterwards: {:.2} s", pass.reopen.as_secs_f64());
    let slice = (n / 10).max(1) as f64;
    let per: Vec<String> = pass
        .slices
        .iter()
        .map(|d| format!("{:.1}", d.as_secs_f64() * 1e6 / slice))
        .collect();
    let first = pass.slices.first().map_or(0.0, Duration::as_secs_f64);
    let last = pass.slices.last().map_or(0.0, Duration::as_secs_f64);
    println!(
        "  µs per record, by tenth of the run: {} (last/first {:.2}×)",
        per.join(" "),
        if first > 0.0 { last / first } else { 0.0 }
    );
}

/// 8 writers (threads, each with a ledger of its own, as 8 processes of one host would
/// have) record 10,000 records each of the mix into one project ledger, with a checkpoint
/// every 1,000: the figure beside the PostgreSQL store's 8 writers.
fn eight_writers() -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = RunsRoot::new(dir.path().join(".autonomous_runs"));
    // Created once, so the writers do not race to import an empty layout.
    drop(
        FsIssueLedger::open(
            root.clone(),
            AgingThresholds::default(),
            FsyncPolicy::AtCheckpoints,
        )
        .expect("open"),
    );
    let start = Instant::now();
    std::thread::scope(|s| {
        for w in 0..8 {
            let root = root.clone();
            s.spawn(move || {
                let mut ledger = FsIssueLedger::open(
                    root,
                    AgingThresholds::default(),
                    FsyncPolicy::AtCheckpoints,
                )
                .expect("open");
                let mut mix = testing::FirstImplementationMix::for_writer(&format!("w{w}-"));
                for i in 0..10_000u64 {
                    ledger
                        .record(&mix.observation(i), testing::at(i as i64))
                        .expect("record");
                    if (i + 1).is_multiple_of(1_000) {
                        ledger.checkpoint().expect("checkpoint");
                    }
                }
                ledger.checkpoint().expect("checkpoint");
            });
        }
    });
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    if std::env::var_os("AUTOPACK_BENCH_WRITERS").is_some() {
        let took = eight_writers();
        println!(
            "8 writers × 10,000 records into one project, checkpoint every 1,000: {:.2} s, {:.0} durable records/s",
            took.as_secs_f64(),
            80_000.0 / took.as_secs_f64()
        );
    }
    let n: u64 = std::env::var("AUTOPACK_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let pass = record_n(
        n,
        Mix::FirstImplementation,
        FsyncPolicy::AtCheckpoints,
        1_000,
    );
    report("first-implementation mix", n, &pass);
    if std::env::var_os("AUTOPACK_BENCH_POOL").is_some() {
        let pass = record_n(100_000, Mix::Pool500, FsyncPolicy::AtCheckpoints, 1_000);
        report("pool of 500 keys", 100_000, &pass);
    }
    let every = record_n(
        2_000,
        Mix::FirstImplementation,
        FsyncPolicy::EveryEntry,
        1_000,
    );
    println!(
        "2,000 records, fsync on every entry: {:.2} s, {:.0} records/s",
        every.total.as_secs_f64(),
        2_000.0 / every.total.as_secs_f64()
    );
    if std::env::var_os("AUTOPACK_BENCH_SKIP_CRITERION").is_some() {
        return;
    }
    let mut group = c.benchmark_group("fs_issue_ledger");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("record_10k_mix_checkpoint_every_1000", |b| {
        b.iter(|| {
            record_n(
                10_000,
                Mix::FirstImplementation,
                FsyncPolicy::AtCheckpoints,
                1_000,
            )
        })
    });
    group.bench_function("record_500_fsync_every_entry", |b| {
        b.iter(|| {
            record_n(
                500,
                Mix::FirstImplementation,
                FsyncPolicy::EveryEntry,
                1_000,
            )
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
