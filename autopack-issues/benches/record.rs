//! Recording throughput of the in-memory ledger: 10 tiers × 10 phases, 10,000 distinct
//! keys, about 30% repeats (the same key again in the same phase), at 10,000 and
//! 1,000,000 records. The cost per record should not grow with the ledger (O(1)
//! amortised).
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use autopack_core::ids::{IssueKey, PhaseId, RunId, TierId};
use autopack_core::vocabulary::{Complexity, IssueCategory, IssueSource, Severity, TaskCategory};
use autopack_issues::{AgingThresholds, IssueObservation, Ledger, ReportedIssue};
use chrono::{TimeZone, Utc};
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BatchSize, Criterion, Throughput, criterion_group};

/// CPU time of the benchmarking thread (`/proc/thread-self/schedstat`), so that figures
/// stay meaningful on a machine shared with other builds; wall time is the default
/// `record` group, CPU time the `record_cpu` group. Falls back to 0 off Linux.
struct CpuTime;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, _typical: f64, values: &mut [f64]) -> &'static str {
        for v in values {
            *v /= 1e6;
        }
        "ms (cpu)"
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let n = match throughput {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                *n as f64
            }
            _ => 1.0,
        };
        for v in values {
            *v = n * 1e9 / *v / 1e6;
        }
        "Melem/s (cpu)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

const TIERS: u32 = 10;
const PHASES_PER_TIER: u32 = 10;
const PHASES: u32 = TIERS * PHASES_PER_TIER;
const KEYS: u32 = 10_000;

/// The (phase, key) pair of each record: 7 in 10 records are a pair not seen before, 3 in
/// 10 repeat an earlier pair.
fn workload(records: usize) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(records);
    let mut fresh: u32 = 0;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..records {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if i % 10 < 3 && !out.is_empty() {
            out.push(out[(state % out.len() as u64) as usize]);
        } else {
            let phase = fresh % PHASES;
            let key = (fresh / PHASES + phase * 101) % KEYS;
            fresh += 1;
            out.push((phase, key));
        }
    }
    out
}

struct Pools {
    keys: Vec<IssueKey>,
    phases: Vec<(PhaseId, TierId)>,
    template: IssueObservation,
}

fn pools() -> Pools {
    Pools {
        keys: (0..KEYS)
            .map(|k| IssueKey::new(format!("test_failure__case_{k:05}")).unwrap())
            .collect(),
        phases: (0..PHASES)
            .map(|p| {
                (
                    PhaseId::new(format!("phase-{p:03}")).unwrap(),
                    TierId::new(format!("tier-{:02}", p / PHASES_PER_TIER)).unwrap(),
                )
            })
            .collect(),
        template: IssueObservation {
            run_id: RunId::new("bench-run-001").unwrap(),
            tier_id: TierId::new("placeholder").unwrap(),
            phase_index: 0,
            phase_id: PhaseId::new("placeholder").unwrap(),
            task_category: TaskCategory::Tests,
            complexity: Complexity::Medium,
            issue: ReportedIssue {
                issue_key: IssueKey::new("placeholder").unwrap(),
                severity: Severity::Minor,
                source: IssueSource::Test,
                category: IssueCategory::new("test_failure").unwrap(),
                expected_fail: false,
                evidence_refs: Vec::new(),
            },
        },
    }
}

/// Records the workload; ids are swapped in and out of one observation so the loop
/// measures the ledger, not string allocation.
fn record_all(ledger: &mut Ledger, pools: &mut Pools, work: &[(u32, u32)]) {
    let now = Utc.with_ymd_and_hms(2025, 11, 23, 11, 16, 17).unwrap();
    let obs = &mut pools.template;
    for &(phase, key) in work {
        let (phase_id, tier_id) = &mut pools.phases[phase as usize];
        std::mem::swap(&mut obs.phase_id, phase_id);
        std::mem::swap(&mut obs.tier_id, tier_id);
        std::mem::swap(&mut obs.issue.issue_key, &mut pools.keys[key as usize]);
        obs.phase_index = phase;
        black_box(ledger.record(obs, now).unwrap());
        std::mem::swap(&mut obs.phase_id, phase_id);
        std::mem::swap(&mut obs.tier_id, tier_id);
        std::mem::swap(&mut obs.issue.issue_key, &mut pools.keys[key as usize]);
    }
}

fn bench(c: &mut Criterion) {
    run_group(c, "record");
}

fn bench_cpu(c: &mut Criterion<CpuTime>) {
    run_group(c, "record_cpu");
}

fn run_group<M: Measurement>(c: &mut Criterion<M>, name: &str) {
    let mut pools = pools();
    for records in [10_000usize, 1_000_000] {
        let work = workload(records);
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(records as u64));
        if records >= 1_000_000 {
            group.sample_size(10);
        }
        group.bench_function(format!("{records}_records"), |b| {
            b.iter_batched(
                || Ledger::new(AgingThresholds::default()),
                |mut ledger| {
                    record_all(&mut ledger, &mut pools, &work);
                    ledger
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
}

/// `AUTOPACK_BENCH_CPU=1 cargo bench -p autopack-issues --bench record` measures outside
/// Criterion: on-CPU time of the recording loop only (ledgers are dropped outside the
/// measured windows), at 10,000 records (windows of 25 fresh ledgers) and 1,000,000
/// records (one ledger per window), the median of `AUTOPACK_BENCH_WINDOWS` (default 7)
/// windows, then the ratio of the per-record costs. `/proc/thread-self/schedstat` is
/// tick-granular, hence windows of 100 ms and more. `AUTOPACK_BENCH_SIZES=10000` (or
/// `1000000`) runs one size only (for `valgrind --tool=cachegrind`).
fn cpu_report(windows: usize) {
    let mut pools = pools();
    let mut per_record = Vec::new();
    let sizes = std::env::var("AUTOPACK_BENCH_SIZES").unwrap_or_default();
    for (records, ledgers) in [(10_000usize, 25usize), (1_000_000, 1)] {
        if !sizes.is_empty() && !sizes.split(',').any(|s| s == records.to_string()) {
            continue;
        }
        let work = workload(records);
        let mut samples: Vec<f64> = (0..windows)
            .map(|_| {
                let mut kept: Vec<Ledger> = Vec::with_capacity(ledgers);
                let start = thread_cpu_ns();
                for _ in 0..ledgers {
                    let mut ledger = Ledger::new(AgingThresholds::default());
                    record_all(&mut ledger, &mut pools, &work);
                    kept.push(ledger);
                }
                let ns = thread_cpu_ns().saturating_sub(start);
                drop(black_box(kept));
                ns as f64 / (records * ledgers) as f64
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        println!(
            "{records} records: {median:.0} ns/record on-CPU ({:.2} M records/s), windows {:.0}..{:.0} ns",
            1e3 / median,
            samples[0],
            samples[samples.len() - 1],
        );
        per_record.push(median);
    }
    if let [small, large] = per_record[..] {
        println!(
            "cost per record at 1,000,000 / at 10,000: {:.2}x",
            large / small
        );
    }
}

criterion_group!(benches, bench);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime);
    targets = bench_cpu
}

fn main() {
    if std::env::var_os("AUTOPACK_BENCH_CPU").is_some_and(|v| v == "1") {
        let windows = std::env::var("AUTOPACK_BENCH_WINDOWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(7);
        cpu_report(windows);
        return;
    }
    benches();
    cpu();
    Criterion::default().configure_from_args().final_summary();
}
