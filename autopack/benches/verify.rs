//! `autopack verify` of a 1,000-phase run (goal: under 2 s): a real run in a real git
//! repository — ten tiers of 100 phases, each phase a Builder's file committed as a
//! candidate, CI run, the branch moved and tagged, summaries and issue views written —
//! then `autopack::runner::verify_run`: the journal replayed into a fresh Supervisor, its
//! chain checked, every commit's tree recomputed from its patch and compared, every tag,
//! summary, the run index and the attestation checked.
//!
//! Building the run takes a minute or two (1,000 CI runs of `true`); it is built once.

#![allow(missing_docs)]

use std::path::Path;
use std::time::Instant;

use autopack::core::message::{BuilderRequest, BuilderResult, BuilderStatus};
use autopack::core::plan::Plan;
use autopack::driver::Builder;
use autopack::host::EscalatingAuditor;
use autopack::runner::{Agents, RunConfig, Runner, Stores, verify_run};
use autopack::supervisor::AgentOutcome;
use autopack_core::ids::RunId;
use criterion::{Criterion, criterion_group, criterion_main};

const PHASES: usize = 1_000;
const TIERS: usize = 10;

/// Writes `{phase}.md` in its workspace: the change is its patch.
struct NotesBuilder;

impl Builder for NotesBuilder {
    fn build(&mut self, request: &BuilderRequest) -> AgentOutcome<BuilderResult> {
        let workspace = request
            .checkout
            .as_ref()
            .and_then(|c| c.workspace.as_deref())
            .expect("a workspace");
        let note = Path::new(workspace).join(format!("notes/{}.md", request.phase_id));
        std::fs::create_dir_all(note.parent().expect("a folder")).expect("folder");
        std::fs::write(note, format!("notes of {}\n", request.phase_id)).expect("note");
        let result = BuilderResult::new(request.phase_id.clone(), BuilderStatus::Success);
        AgentOutcome::Returned(result.with_tokens(100))
    }
}

fn plan() -> Plan {
    let tiers: Vec<String> = (0..TIERS)
        .map(|t| format!(r#"{{"tier_id": "t{t}", "tier_index": {t}, "name": "Tier {t}"}}"#))
        .collect();
    let phases: Vec<String> = (0..PHASES)
        .map(|p| {
            format!(
                r#"{{"phase_id": "p{p:04}", "phase_index": {p}, "tier_id": "t{}", "name": "Phase {p}", "task_category": "docs"}}"#,
                p * TIERS / PHASES
            )
        })
        .collect();
    let json = format!(
        r#"{{"run": {{"run_id": "verify-bench", "run_scope": "multi_tier", "safety_profile": "normal", "max_phases": {PHASES}}},
           "tiers": [{}], "phases": [{}]}}"#,
        tiers.join(","),
        phases.join(",")
    );
    Plan::from_json(&json, "plan.json").expect("the plan is valid")
}

fn repository(dir: &Path) {
    let repo =
        git2::Repository::init_opts(dir, git2::RepositoryInitOptions::new().initial_head("main"))
            .expect("init");
    std::fs::write(dir.join("README.md"), "bench\n").expect("readme");
    std::fs::write(dir.join(".git/info/exclude"), ".autonomous_runs/\n").expect("exclude");
    let mut index = repo.index().expect("index");
    index.add_path(Path::new("README.md")).expect("add");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let who = git2::Signature::now("bench", "bench@example.invalid").expect("signature");
    repo.commit(Some("HEAD"), &who, &who, "initial", &tree, &[])
        .expect("commit");
}

fn bench_verify(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    repository(dir.path());
    let plan = plan();
    let runner = Runner::new(dir.path(), Stores::Files).expect("runner");
    let mut config = RunConfig::new("main", "true");
    // The bench times verification, not the sandbox; CI runs unconfined.
    config.sandbox.disabled = true;
    let built = Instant::now();
    let ended = runner
        .start(
            &plan,
            None,
            &config,
            &mut Agents::new(&mut NotesBuilder, &mut EscalatingAuditor),
        )
        .expect("the run ends");
    eprintln!(
        "built a {PHASES}-phase run in {:.1?}: {}",
        built.elapsed(),
        ended.record.state
    );
    let run = RunId::new("verify-bench").expect("id");
    let checked = verify_run(runner.repo(), &Stores::Files, &run, None).expect("verifies");
    assert!(checked.is_ok(), "{}", checked.render_text());
    eprintln!(
        "verify: {} journal entries, {} checks",
        checked.entries,
        checked.checked.len()
    );
    let mut group = c.benchmark_group("verify");
    group.sample_size(10);
    group.bench_function("run_of_1000_phases", |b| {
        b.iter(|| {
            let v = verify_run(runner.repo(), &Stores::Files, &run, None).expect("verifies");
            assert!(v.is_ok());
            v
        });
    });
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
