//! Supervisor overhead with in-memory stores and instant agents, and journal replay.
//!
//! - `drive/phases/N`: a run of N phases (10 tiers), every Builder attempt succeeding and
//!   CI green: 4 inputs per phase. Throughput is in phases.
//! - `replay/events/N`: `autopack::driver::replay_journal` over a memory store holding a
//!   journal of N entries (JSON Lines): read, parse and apply, as a resume after a crash
//!   does.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;

use autopack::driver::{JournalEntry, replay_journal, run_binding};
use autopack::supervisor::{Action, AgentOutcome, CiReport, Input, Supervisor, SupervisorConfig};
use autopack_core::ids::{RunId, TierId};
use autopack_core::journal::{self, MemoryRunStore};
use autopack_core::message::{BuilderResult, BuilderStatus};
use autopack_core::plan::{PhaseSpec, Plan, RunSpec, TierSpec};
use autopack_core::record::CiVerdict;
use autopack_core::vocabulary::{RunScope, SafetyProfile, TaskCategory};
use autopack_strategy::{CompileOptions, Ruleset, compile};
use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const TIERS: usize = 10;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid time")
}

fn id<T: TryFrom<String>>(s: String) -> T
where
    T::Error: std::fmt::Debug,
{
    T::try_from(s).expect("valid id")
}

fn start(phases: usize) -> Input {
    let per_tier = phases / TIERS;
    let tiers: Vec<TierSpec> = (0..TIERS)
        .map(|t| TierSpec {
            tier_id: id(format!("t{t}")),
            tier_index: t as u32,
            name: format!("Tier {t}"),
            description: String::new(),
        })
        .collect();
    let phase_specs: Vec<PhaseSpec> = (0..phases)
        .map(|i| PhaseSpec {
            phase_id: id(format!("p{i}")),
            phase_index: i as u32,
            tier_id: id::<TierId>(format!("t{}", i / per_tier)),
            name: format!("Phase {i}"),
            description: String::new(),
            task_category: if i % 2 == 0 {
                TaskCategory::Tests
            } else {
                TaskCategory::FeatureScaffolding
            },
            complexity: None,
            builder_mode: None,
            scope: Vec::new(),
        })
        .collect();
    let plan = Plan {
        run: RunSpec {
            run_id: id::<RunId>("bench".into()),
            safety_profile: Some(SafetyProfile::Normal),
            run_scope: Some(RunScope::MultiTier),
            token_cap: Some(u64::MAX / 2),
            max_phases: Some(phases as u32),
            max_duration_minutes: Some(u32::MAX),
        },
        tiers,
        phases: phase_specs,
    };
    let ruleset = Ruleset::builtin(id("bench".into()));
    let strategy = compile(
        &ruleset,
        &autopack_strategy::BacklogView::empty(),
        &plan,
        &CompileOptions::default(),
    )
    .expect("compiles");
    Input::Start {
        at: t0(),
        plan,
        strategy: Box::new(strategy),
        backlog: Box::default(),
    }
}

const PATCH: &str = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n";

/// Drives a run with instant agents; returns the inputs fed.
fn drive(start: Input, keep: bool) -> Vec<Input> {
    let mut sup = Supervisor::new();
    let mut inputs = Vec::new();
    if keep {
        inputs.push(start.clone());
    }
    sup.handle(start).expect("starts");
    let at = t0() + Duration::seconds(1);
    while let Some(action) = sup.poll_action() {
        let input = match action {
            Action::DispatchBuilder(r) => Input::BuilderFinished {
                at,
                attempt: r.attempt,
                outcome: AgentOutcome::Returned(BuilderResult {
                    phase_id: r.phase_id.clone(),
                    status: BuilderStatus::Success,
                    patch: Some(PATCH.into()),
                    probe_results: vec![],
                    suggested_issues: vec![],
                    tokens_used: 1_000,
                    failing_tests: vec![],
                    notes: String::new(),
                }),
                phase_id: r.phase_id,
            },
            Action::RequestAudit(r) => unreachable!("no audits in this plan: {r:?}"),
            Action::ApplyPatch(r) => Input::PatchApplied {
                at,
                phase_id: r.phase_id,
                commit: autopack::core::ids::CommitId::new("c".repeat(40)).unwrap(),
                holds: vec![],
            },
            Action::RunCi(r) => Input::CiFinished {
                at,
                phase_id: r.phase_id,
                report: CiReport {
                    verdict: CiVerdict::Green,
                    attempts: 1,
                    failing_tests: vec![],
                    output_tail: String::new(),
                    known_failures: vec![],
                    flaky_tests: vec![],
                    baseline: None,
                },
            },
            Action::CreateSnapshot(r) => Input::SnapshotCreated {
                at,
                phase_id: r.phase_id,
                tag: r.tag,
            },
            _ => continue,
        };
        if keep {
            inputs.push(input.clone());
        }
        sup.handle(input).expect("accepted");
    }
    assert!(sup.is_finished());
    black_box(sup.record());
    inputs
}

fn bench_drive(c: &mut Criterion) {
    let mut group = c.benchmark_group("drive");
    for phases in [1_000usize, 10_000] {
        let start = start(phases);
        group.throughput(Throughput::Elements(phases as u64));
        group.bench_with_input(BenchmarkId::new("phases", phases), &start, |b, start| {
            b.iter(|| drive(start.clone(), false));
        });
    }
    group.finish();
}

/// A run's journal as the driver writes it: sealed into a hash chain from the run's
/// binding (`sealed`), or as journals were written before chaining.
fn journal_of(run: &RunId, inputs: &[Input], sealed: bool) -> MemoryRunStore {
    let mut store = MemoryRunStore::default();
    let entries = std::iter::once(JournalEntry::Config(SupervisorConfig::default()))
        .chain(inputs.iter().cloned().map(JournalEntry::Input));
    if !sealed {
        for entry in entries {
            journal::append(&mut store, run, &entry).expect("appends");
        }
        return store;
    }
    let Some(Input::Start { plan, strategy, .. }) = inputs.first() else {
        unreachable!("the first input is the start")
    };
    let binding = run_binding(plan, strategy).expect("binds");
    let mut prev = binding.genesis();
    let mut binds = Some(&binding);
    for entry in entries {
        journal::append_sealed(&mut store, run, &mut prev, binds.take(), &entry).expect("appends");
    }
    store
}

fn bench_replay(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay");
    group.sample_size(10);
    let run: RunId = id("bench".into());
    // 4 inputs per phase (builder, gate, CI, snapshot) after the configuration and the
    // start: 250,000 phases make a journal of 1,000,002 entries, sealed into a hash chain
    // as the driver writes it (`replay/events`), and unsealed, as written before
    // chaining (`replay/unsealed`: every line is still hashed, its chain checked).
    for phases in [25_000usize, 250_000] {
        let inputs = drive(start(phases), true);
        let entries = 2 + 4 * phases as u64;
        group.throughput(Throughput::Elements(entries));
        for (name, sealed) in [("events", true), ("unsealed", false)] {
            let store = journal_of(&run, &inputs, sealed);
            group.bench_with_input(BenchmarkId::new(name, entries), &store, |b, store| {
                // What `Driver::resume` does first: read the journal (a snapshot of the
                // memory store's text, shared, not copied), parse and apply every entry.
                // The rebuilt Supervisor and the store are dropped outside the measurement.
                b.iter_batched(
                    || store.clone(),
                    |mut store| {
                        let sup = replay_journal(&mut store, &run).expect("replays");
                        assert!(sup.is_finished());
                        (sup, store)
                    },
                    BatchSize::PerIteration,
                );
            });
        }
    }
    group.finish();
}

/// Appending a run's inputs to its journal, as the driver does for each: sealed (hash
/// of the line before, prepended; the new line hashed) against plain (the append
/// before chaining).
fn bench_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.sample_size(10);
    let run: RunId = id("bench".into());
    let inputs = drive(start(25_000), true);
    // The start entry (the whole plan and strategy) is appended once per run; the
    // entries a run appends all along are the rest.
    let rest: Vec<JournalEntry> = inputs[1..]
        .iter()
        .cloned()
        .map(JournalEntry::Input)
        .collect();
    group.throughput(Throughput::Elements(rest.len() as u64));
    group.bench_function(BenchmarkId::new("plain", rest.len()), |b| {
        b.iter_batched(
            MemoryRunStore::default,
            |mut store| {
                for entry in &rest {
                    journal::append(&mut store, &run, entry).expect("appends");
                }
                store
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function(BenchmarkId::new("sealed", rest.len()), |b| {
        b.iter_batched(
            MemoryRunStore::default,
            |mut store| {
                let mut prev = autopack_core::journal::chain::Digest::ZERO;
                for entry in &rest {
                    journal::append_sealed(&mut store, &run, &mut prev, None, entry)
                        .expect("appends");
                }
                store
            },
            BatchSize::PerIteration,
        );
    });
    // The same through the filesystem store a run uses (`journal.jsonl`, synced at the
    // end as at a checkpoint): what an append costs a real run.
    let file_store = || {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = autopack::layout::FsRunStore::new(
            autopack::layout::RunsRoot::new(dir.path().join(".autonomous_runs")),
            autopack::layout::FsyncPolicy::AtCheckpoints,
        );
        (dir, store)
    };
    group.bench_function(BenchmarkId::new("file_plain", rest.len()), |b| {
        b.iter_batched(
            file_store,
            |(dir, mut store)| {
                for entry in &rest {
                    journal::append(&mut store, &run, entry).expect("appends");
                }
                autopack_core::journal::RunStore::sync(&mut store, &run).expect("syncs");
                (dir, store)
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function(BenchmarkId::new("file_sealed", rest.len()), |b| {
        b.iter_batched(
            file_store,
            |(dir, mut store)| {
                let mut prev = autopack_core::journal::chain::Digest::ZERO;
                for entry in &rest {
                    journal::append_sealed(&mut store, &run, &mut prev, None, entry)
                        .expect("appends");
                }
                autopack_core::journal::RunStore::sync(&mut store, &run).expect("syncs");
                (dir, store)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_drive, bench_replay, bench_append);
criterion_main!(benches);
