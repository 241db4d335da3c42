//! What-if replay of many recorded runs under a tighter ruleset.
//!
//! 1,000 scripted runs of 25 phases (5 tiers of 5; tests, feature scaffolding and docs
//! phases) are recorded into one memory store as the driver journals them (sealed into
//! their hash chains). The mix: about one phase in eight needs a second Builder attempt,
//! one in thirty-three a third, one in a hundred fails until an Auditor `revise`; CI is
//! flaky for one phase in twelve; runs spend between 15,000 and 60,000 tokens per
//! attempt. The tighter ruleset lowers the run token cap to 1,000,000 and `tests` phases
//! to 2 Builder attempts, so runs end the same, end differently and need work never
//! recorded.
//!
//! - `whatif/entries/1000`: from the runs' parsed journal entries — `Recorded::from_entries`,
//!   `strategy_under`, `what_if` for each run, then `summarise`.
//! - `whatif/journal/1000`: the same from the memory store, reading, parsing and checking
//!   each journal first (`autopack_core::journal::replay`), as `autopack replay --all`
//!   would.
//!
//! `AUTOPACK_BENCH_SKIP_CRITERION=1` runs one timed pass of each and prints the figures
//! (and the summary) without criterion.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use autopack::driver::{JournalEntry, run_binding};
use autopack::supervisor::{Action, AgentOutcome, CiReport, Input, Supervisor};
use autopack::whatif::{Recorded, WhatIf, WhatIfSummary, strategy_under, summarise, what_if};
use autopack_core::ids::{CommitId, RunId};
use autopack_core::journal::{self, MemoryRunStore};
use autopack_core::message::{AuditorRecommendation, AuditorResult, BuilderResult};
use autopack_core::plan::Plan;
use autopack_core::record::CiVerdict;
use autopack_strategy::Ruleset;
use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const RUNS: usize = 1_000;
const TIERS: usize = 5;
const PHASES_PER_TIER: usize = 5;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid time")
}

fn plan(run: usize) -> Plan {
    let tiers: Vec<String> = (0..TIERS)
        .map(|t| format!(r#"{{"tier_id": "t{t}", "tier_index": {t}, "name": "Tier {t}"}}"#))
        .collect();
    let categories = ["tests", "feature_scaffolding", "docs"];
    let phases: Vec<String> = (0..TIERS * PHASES_PER_TIER)
        .map(|p| {
            format!(
                r#"{{"phase_id": "p{p}", "phase_index": {p}, "tier_id": "t{}", "name": "Phase {p}",
                    "task_category": "{}"}}"#,
                p / PHASES_PER_TIER,
                categories[(p + run) % categories.len()]
            )
        })
        .collect();
    Plan::from_json(
        &format!(
            r#"{{"run": {{"run_id": "run-{run:04}"}}, "tiers": [{}], "phases": [{}]}}"#,
            tiers.join(","),
            phases.join(",")
        ),
        "plan.json",
    )
    .expect("the plan parses")
}

fn phase_number(phase_id: &str) -> usize {
    phase_id[1..].parse().expect("p{n}")
}

/// Drives run `run` with its scripted outcomes; returns its inputs, start first.
fn drive(run: usize) -> Vec<Input> {
    let plan = plan(run);
    let strategy = autopack_strategy::dry_run(&plan, None, None).expect("compiles");
    let start = Input::Start {
        at: t0(),
        plan,
        strategy: Box::new(strategy),
        backlog: Box::default(),
    };
    let tokens = 15_000 + (run % 10) as u64 * 5_000;
    let mut inputs = vec![start.clone()];
    let mut sup = Supervisor::new();
    sup.handle(start).expect("starts");
    let mut now = t0();
    while let Some(action) = sup.poll_action() {
        now += Duration::seconds(5);
        let input = match action {
            Action::DispatchBuilder(r) => {
                let phase = phase_number(r.phase_id.as_str());
                let luck = (run * 31 + phase * 17) % 100;
                let revised = r.feedback.iter().any(|f| f.starts_with("Auditor:"));
                let fails = match luck {
                    0..12 => r.attempt < 2,
                    12..15 => r.attempt < 3,
                    15 => !revised,
                    _ => false,
                };
                let result = if fails {
                    BuilderResult::failed(r.phase_id.clone(), "tests still fail")
                        .with_failing_tests([format!("t::{}_{}", r.phase_id, r.attempt)])
                } else {
                    BuilderResult::success(
                        r.phase_id.clone(),
                        format!(
                            "diff --git a/{0} b/{0}\n--- a/{0}\n+++ b/{0}\n@@ -1 +1 @@\n-a\n+b\n",
                            r.phase_id
                        ),
                    )
                };
                Input::BuilderFinished {
                    at: now,
                    phase_id: r.phase_id,
                    attempt: r.attempt,
                    outcome: AgentOutcome::Returned(result.with_tokens(tokens)),
                }
            }
            Action::RequestAudit(r) => Input::AuditorFinished {
                at: now,
                phase_id: r.phase_id.clone(),
                attempt: r.attempt,
                outcome: AgentOutcome::Returned(
                    AuditorResult::new(r.phase_id, AuditorRecommendation::Revise)
                        .with_notes("test the edge case first")
                        .with_tokens(5_000),
                ),
            },
            Action::ApplyPatch(r) => Input::PatchApplied {
                at: now,
                commit: CommitId::new(format!(
                    "{:040x}",
                    run * 100_000 + phase_number(r.phase_id.as_str()) * 100 + r.attempt as usize
                ))
                .expect("40 hex digits"),
                phase_id: r.phase_id,
                holds: vec![],
            },
            Action::RunCi(r) => {
                let phase = phase_number(r.phase_id.as_str());
                let report = if (run * 13 + phase * 7).is_multiple_of(12) {
                    CiReport::new(CiVerdict::Flaky, 2)
                } else {
                    CiReport::new(CiVerdict::Green, 1)
                };
                Input::CiFinished {
                    at: now,
                    phase_id: r.phase_id,
                    report,
                }
            }
            Action::CreateSnapshot(r) => Input::SnapshotCreated {
                at: now,
                phase_id: r.phase_id,
                tag: r.tag,
            },
            _ => continue,
        };
        inputs.push(input.clone());
        sup.handle(input).expect("accepted");
    }
    assert!(sup.is_finished());
    inputs
}

/// Records every run into one store, as the driver journals it; returns the store and
/// the runs' ids and entries.
fn record() -> (MemoryRunStore, Vec<(RunId, Vec<JournalEntry>)>) {
    let mut store = MemoryRunStore::default();
    let mut runs = Vec::with_capacity(RUNS);
    for run in 0..RUNS {
        let inputs = drive(run);
        let Some(Input::Start { plan, strategy, .. }) = inputs.first() else {
            unreachable!("the start comes first")
        };
        let run_id = plan.run.run_id.clone();
        let binding = run_binding(plan, strategy).expect("binds");
        let mut prev = binding.genesis();
        let entries: Vec<JournalEntry> = std::iter::once(JournalEntry::Config(Default::default()))
            .chain(inputs.into_iter().map(JournalEntry::Input))
            .collect();
        let mut binds = Some(&binding);
        for entry in &entries {
            journal::append_sealed(&mut store, &run_id, &mut prev, binds.take(), entry)
                .expect("appends");
        }
        runs.push((run_id, entries));
    }
    (store, runs)
}

fn tighter() -> Ruleset {
    Ruleset::from_json(
        r#"{"project_id": "builtin", "run_token_cap": 1000000,
            "category_defaults": {"tests": {"max_builder_attempts": 2}}}"#,
        "tighter.json",
    )
    .expect("the ruleset parses")
}

fn replay_one(run_id: RunId, entries: Vec<JournalEntry>, ruleset: &Ruleset) -> (RunId, WhatIf) {
    let recorded = Recorded::from_entries(entries).expect("a run");
    let strategy = strategy_under(&recorded, ruleset).expect("compiles");
    (run_id, what_if(&recorded, strategy))
}

fn from_entries(runs: Vec<(RunId, Vec<JournalEntry>)>, ruleset: &Ruleset) -> WhatIfSummary {
    let results: Vec<(RunId, WhatIf)> = runs
        .into_iter()
        .map(|(run_id, entries)| replay_one(run_id, entries, ruleset))
        .collect();
    summarise(&results)
}

fn from_journal(store: &mut MemoryRunStore, ids: &[RunId], ruleset: &Ruleset) -> WhatIfSummary {
    let results: Vec<(RunId, WhatIf)> = ids
        .iter()
        .map(|run_id| {
            let entries = journal::replay::<_, JournalEntry>(store, run_id).expect("reads");
            replay_one(run_id.clone(), entries, ruleset)
        })
        .collect();
    summarise(&results)
}

fn bench_whatif(c: &mut Criterion) {
    let (mut store, runs) = record();
    let ids: Vec<RunId> = runs.iter().map(|(id, _)| id.clone()).collect();
    let ruleset = tighter();
    if std::env::var_os("AUTOPACK_BENCH_SKIP_CRITERION").is_some() {
        let begun = Instant::now();
        let summary = from_entries(runs.clone(), &ruleset);
        let entries = begun.elapsed();
        let begun = Instant::now();
        let again = from_journal(&mut store, &ids, &ruleset);
        let journal = begun.elapsed();
        assert_eq!(summary, again);
        println!("{}", summary.render_text());
        println!(
            "what-if of {RUNS} runs of {} phases: {:.3} s from entries, {:.3} s from their journals",
            TIERS * PHASES_PER_TIER,
            entries.as_secs_f64(),
            journal.as_secs_f64()
        );
        return;
    }
    let mut group = c.benchmark_group("whatif");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RUNS as u64));
    group.bench_function(format!("entries/{RUNS}"), |b| {
        b.iter_batched(
            || runs.clone(),
            |runs| black_box(from_entries(runs, &ruleset)),
            BatchSize::PerIteration,
        );
    });
    group.bench_function(format!("journal/{RUNS}"), |b| {
        b.iter(|| black_box(from_journal(&mut store, &ids, &ruleset)));
    });
    group.finish();
}

criterion_group!(benches, bench_whatif);
criterion_main!(benches);
