//! Recording issues durably through the filesystem issue store.
//!
//! `record_100k_checkpoint_every_1000`: 100,000 records (10 runs × 10 phases × 1,000
//! records, keys from a pool of 500), fsync at checkpoints, a checkpoint (which
//! materialises the playbook views) every 1,000 records. Also reports the cost per record
//! of each tenth of the run, to show it stays flat as N grows.
//! `record_every_entry_fsync`: 2,000 records with fsync on every entry.

use std::time::{Duration, Instant};

use autopack_issues::{AgingThresholds, testing};
use autopack_layout::issues::FsIssueLedger;
use autopack_layout::{FsyncPolicy, RunsRoot};
use criterion::{Criterion, criterion_group, criterion_main};

fn record_n(
    n: u32,
    policy: FsyncPolicy,
    checkpoint_every: u32,
    slices: Option<&mut Vec<Duration>>,
) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = RunsRoot::new(dir.path().join(".autonomous_runs"));
    let mut ledger = FsIssueLedger::open(root, AgingThresholds::default(), policy).expect("open");
    let mut slice_times = Vec::new();
    let slice = (n / 10).max(1);
    let start = Instant::now();
    let mut slice_start = start;
    let mut in_cp = Duration::ZERO;
    for i in 0..n {
        let run = format!("run-{}", i / 10_000);
        let obs = testing::observation(
            &run,
            "t1",
            (i / 1_000) % 10,
            &format!("key-{}", (i * 7919) % 500),
        );
        ledger
            .record(&obs, testing::at(i64::from(i)))
            .expect("record");
        if (i + 1) % checkpoint_every == 0 {
            let t = Instant::now();
            ledger.checkpoint().expect("checkpoint");
            in_cp += t.elapsed();
        }
        if (i + 1) % slice == 0 {
            let now = Instant::now();
            slice_times.push(now - slice_start);
            slice_start = now;
        }
    }
    ledger.checkpoint().expect("final checkpoint");
    if std::env::var_os("AUTOPACK_BENCH_VERBOSE").is_some() {
        let t = Instant::now();
        for _ in 0..10 {
            std::hint::black_box(ledger.ledger().snapshot());
        }
        println!(
            "  checkpoints: {:.2} s of {:.2} s; one snapshot() at the end: {:.1} ms",
            in_cp.as_secs_f64(),
            start.elapsed().as_secs_f64(),
            t.elapsed().as_secs_f64() * 100.0
        );
    }
    if let Some(out) = slices {
        *out = slice_times;
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    // One explicit pass with per-tenth timings, printed for the crate docs.
    let mut slices = Vec::new();
    let total = record_n(
        100_000,
        FsyncPolicy::AtCheckpoints,
        1_000,
        Some(&mut slices),
    );
    println!(
        "100,000 records, fsync at checkpoints every 1,000: {:.2} s, {:.0} records/s",
        total.as_secs_f64(),
        100_000.0 / total.as_secs_f64()
    );
    let per: Vec<String> = slices
        .iter()
        .map(|d| format!("{:.1}", d.as_secs_f64() * 1e6 / 10_000.0))
        .collect();
    println!("µs per record, by tenth of the run: {}", per.join(" "));
    let every = record_n(2_000, FsyncPolicy::EveryEntry, 1_000, None);
    println!(
        "2,000 records, fsync on every entry: {:.2} s, {:.0} records/s",
        every.as_secs_f64(),
        2_000.0 / every.as_secs_f64()
    );

    let mut group = c.benchmark_group("fs_issue_store");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("record_10k_checkpoint_every_1000", |b| {
        b.iter(|| record_n(10_000, FsyncPolicy::AtCheckpoints, 1_000, None))
    });
    group.bench_function("record_500_fsync_every_entry", |b| {
        b.iter(|| record_n(500, FsyncPolicy::EveryEntry, 1_000, None))
    });
    group.finish();
}

mod group {
    #![allow(missing_docs)]
    use super::*;
    criterion_group!(benches, bench);
}

criterion_main!(group::benches);
