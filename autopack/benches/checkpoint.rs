//! What one checkpoint costs in a huge run, through [`FsArtefacts`] on a temporary dir.
//!
//! - `checkpoint/phase/N`: a run of N phases (10 tiers) driven by a Supervisor with
//!   instant agents; the first phase checkpoint (the run's first: everything is written)
//!   happens in the setup (for N ≤ 10,000 or with `CHECKPOINT_BENCH_FIRST` set), then the
//!   run is driven to its middle, and each measured
//!   iteration drives one more phase (not measured) and performs its `Checkpoint::Phase`
//!   through `Artefacts::checkpoint` (the ledger's checkpoint, the phase's issue file and
//!   the summaries). The project ledger holds a few issues (the first phases report one).
//! - `render/run_summary/N` and `render/tier_summary/N`: rendering `run_summary.md` and
//!   the current tier's summary of that record (pure, no I/O).
//!
//! `CHECKPOINT_BENCH_PHASES` (default `100000`) sets N. The setup prints how long the
//! first (whole) write took when it made it.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration as StdDuration, Instant};

use autopack::driver::Artefacts;
use autopack::host::FsArtefacts;
use autopack::supervisor::{Action, AgentOutcome, CiReport, Input, Supervisor};
use autopack_core::ids::{IssueKey, RunId, TierId};
use autopack_core::message::{BuilderResult, BuilderStatus, SuggestedIssue};
use autopack_core::plan::{PhaseSpec, Plan, RunSpec, TierSpec};
use autopack_core::record::CiVerdict;
use autopack_core::vocabulary::{
    IssueCategory, IssueSource, RunScope, SafetyProfile, Severity, TaskCategory,
};
use autopack_issues::AgingThresholds;
use autopack_layout::{FsyncPolicy, RunsRoot, render};
use autopack_strategy::{CompileOptions, Ruleset, compile};
use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

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

fn phases() -> usize {
    std::env::var("CHECKPOINT_BENCH_PHASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
}

fn start(phases: usize) -> Input {
    let per_tier = phases.div_ceil(TIERS);
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

/// A run in progress with its artefacts on disk.
struct Run {
    sup: Supervisor,
    artefacts: FsArtefacts,
    _dir: tempfile::TempDir,
    at: DateTime<Utc>,
    /// Builder answers so far (one per phase: every attempt succeeds).
    builds: usize,
}

impl Run {
    fn new(phases: usize) -> Run {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = RunsRoot::new(dir.path().join(".autonomous_runs"));
        let artefacts =
            FsArtefacts::open(root, AgingThresholds::default(), FsyncPolicy::AtCheckpoints)
                .expect("opens the ledger");
        let mut sup = Supervisor::new();
        sup.handle(start(phases)).expect("starts");
        Run {
            sup,
            artefacts,
            _dir: dir,
            at: t0(),
            builds: 0,
        }
    }

    /// Answers actions until a phase checkpoint is polled; returns the time spent
    /// performing checkpoints (`perform`: all of them; otherwise none is performed and
    /// the whole call is a setup step).
    fn drive_to_next_phase_checkpoint(&mut self, perform: bool) -> StdDuration {
        let mut spent = StdDuration::ZERO;
        while let Some(action) = self.sup.poll_action() {
            self.at += Duration::seconds(1);
            let at = self.at;
            let input = match action {
                Action::DispatchBuilder(r) => {
                    self.builds += 1;
                    let suggested_issues = if self.builds <= 5 {
                        vec![SuggestedIssue {
                            issue_key: IssueKey::new(format!("bench-issue-{}", self.builds))
                                .expect("valid key"),
                            severity: Severity::Minor,
                            source: IssueSource::Test,
                            category: IssueCategory::new("test_failure").expect("valid"),
                            expected_fail: false,
                            evidence_refs: vec![],
                            description: "a minor issue".into(),
                        }]
                    } else {
                        vec![]
                    };
                    Input::BuilderFinished {
                        at,
                        attempt: r.attempt,
                        outcome: AgentOutcome::Returned(BuilderResult {
                            phase_id: r.phase_id.clone(),
                            status: BuilderStatus::Success,
                            patch: Some(PATCH.into()),
                            probe_results: vec![],
                            suggested_issues,
                            tokens_used: 1_000,
                            failing_tests: vec![],
                            notes: String::new(),
                        }),
                        phase_id: r.phase_id,
                    }
                }
                Action::RequestAudit(r) => unreachable!("no audits in this plan: {r:?}"),
                Action::ApplyPatch(r) => Input::PatchApplied {
                    at,
                    phase_id: r.phase_id,
                    commit: autopack::core::ids::CommitId::new(format!("{:040x}", self.builds))
                        .unwrap(),
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
                Action::RecordIssues { at, observations } => {
                    self.artefacts
                        .record_issues(at, &observations)
                        .expect("records");
                    continue;
                }
                Action::Checkpoint(checkpoint) => {
                    let is_phase =
                        matches!(checkpoint, autopack::supervisor::Checkpoint::Phase { .. });
                    if perform {
                        let (record, ledger) = (
                            self.sup.record().expect("started"),
                            self.sup.ledger().expect("started"),
                        );
                        let began = Instant::now();
                        self.artefacts
                            .checkpoint(&checkpoint, record, ledger)
                            .expect("checkpoint written");
                        spent += began.elapsed();
                    }
                    if is_phase {
                        return spent;
                    }
                    continue;
                }
                // The end, an incident pack, and actions of a newer Supervisor.
                _ => continue,
            };
            self.sup.handle(input).expect("accepted");
        }
        panic!("the run ended before the next phase checkpoint");
    }
}

fn bench_checkpoint(c: &mut Criterion) {
    let phases = phases();
    let mut run = Run::new(phases);
    // The run's first checkpoint writes every file of the run (one per phase): performed
    // and timed when `CHECKPOINT_BENCH_FIRST` is set or the run has at most 10,000 phases
    // (on a busy disk 100,000 files take minutes); the measured checkpoints do not depend
    // on it.
    let first = std::env::var_os("CHECKPOINT_BENCH_FIRST").is_some() || phases <= 10_000;
    let spent = run.drive_to_next_phase_checkpoint(first);
    if first {
        eprintln!(
            "checkpoint/{phases}: the first checkpoint (every file of the run) took {:.3} s",
            spent.as_secs_f64()
        );
    }
    // To the middle of the run, without writing.
    for _ in 1..phases / 2 {
        run.drive_to_next_phase_checkpoint(false);
    }
    let mut group = c.benchmark_group("checkpoint");
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("phase", phases), |b| {
        b.iter_custom(|iters| {
            let mut spent = StdDuration::ZERO;
            for _ in 0..iters {
                spent += run.drive_to_next_phase_checkpoint(true);
            }
            spent
        });
    });
    group.finish();

    let record = run.sup.record().expect("started").clone();
    let tier = record
        .tiers
        .iter()
        .find(|t| t.state == autopack_core::lifecycle::TierState::Running)
        .unwrap_or(&record.tiers[0])
        .clone();
    let mut group = c.benchmark_group("render");
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("run_summary", phases), |b| {
        b.iter(|| black_box(render::run_summary(black_box(&record))));
    });
    group.bench_function(BenchmarkId::new("tier_summary", phases), |b| {
        b.iter(|| black_box(render::tier_summary(black_box(&record), black_box(&tier))));
    });
    group.finish();
}

criterion_group!(benches, bench_checkpoint);
criterion_main!(benches);
