//! Per-attempt overhead with a no-op agent, on host repositories of 100, 1,000 and 10,000
//! files (directories of 100, one commit on `main`, the run's integration branch at it).
//!
//! - `attempt/full/N`: one Builder attempt through the real host path,
//!   [`InWorkspace`] around a sandboxed [`CommandAgent`] running `true`: the tip checked
//!   out in the reused Builder workspace (reset + clean), the sandboxed process, and the
//!   change capture (none: the agent edits nothing).
//! - `attempt/workspace/N`: only the checkout and the (empty) change capture.
//! - `attempt/process`: only [`Sandbox::run`] of `true` in a temporary directory.
//! - `attempt/change_one_file/N`: the checkout, one file rewritten in the workspace and its
//!   capture as a patch.
//!
//! The first checkout of a run clones the host repository; it is done (and timed, printed
//! on stderr) once per repository before anything is measured.
//!
//! Run: `cargo bench -p autopack --bench attempt`.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use autopack::apply::workspace::{Slot, Workspaces, refs};
use autopack::apply::{BranchOptions, IntegrationBranch};
use autopack::core::ids::RunId;
use autopack::core::message::{BuilderRequest, BuilderStatus};
use autopack::driver::Builder;
use autopack::host::{CommandAgent, InWorkspace};
use autopack::sandbox::{Ended, Env, Job, Network, OutputMode, Policy, Sandbox};
use autopack::supervisor::AgentOutcome;
use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};

const PER_DIR: usize = 100;
const SIZES: [usize; 3] = [100, 1_000, 10_000];

fn path_of(i: usize) -> String {
    format!("d{:03}/f{:05}.txt", i / PER_DIR, i)
}

fn content(i: usize, version: u32) -> String {
    format!("file {i}\nversion {version}\nsome text that stays the same\n")
}

/// A repository of `files` files in directories of 100, committed on `main` with a checkout.
fn make_repo(root: &Path, files: usize) {
    let repo = git2::Repository::init(root).expect("init");
    repo.set_head("refs/heads/main").expect("head");
    for i in 0..files {
        let p = root.join(path_of(i));
        if i % PER_DIR == 0 {
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        }
        std::fs::write(p, content(i, 0)).expect("write");
    }
    let mut index = repo.index().expect("index");
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    index.write().expect("write index");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let sig = git2::Signature::new("b", "b@example.invalid", &git2::Time::new(1_700_000_000, 0))
        .expect("sig");
    repo.commit(Some("HEAD"), &sig, &sig, "initial", &tree, &[])
        .expect("commit");
}

fn request(run_id: &RunId) -> BuilderRequest {
    serde_json::from_value(serde_json::json!({
        "run_id": run_id.as_str(), "tier_id": "t1", "phase_id": "p1", "phase_index": 0,
        "name": "no-op", "task_category": "docs", "complexity": "low", "attempt": 1,
        "max_attempts": 2, "incident_token_cap": 1000
    }))
    .expect("a valid builder_request")
}

fn sandbox() -> Sandbox {
    match Sandbox::detect() {
        Ok(sandbox) => {
            eprintln!(
                "sandbox: {:?}, Landlock ABI {:?}",
                sandbox.confinement(),
                sandbox.landlock_abi()
            );
            sandbox
        }
        Err(e) => {
            eprintln!("sandbox: {e}; measuring with Sandbox::off() (no Landlock rules)");
            Sandbox::off()
        }
    }
}

/// One host repository with its run: integration branch and workspaces.
struct Fixture {
    files: usize,
    run_id: RunId,
    host: tempfile::TempDir,
    /// Kept for its lifetime: the workspaces live beneath it.
    _parent: tempfile::TempDir,
    workspaces: Arc<Workspaces>,
}

fn fixture(files: usize) -> Fixture {
    let host = tempfile::tempdir().expect("tempdir");
    make_repo(host.path(), files);
    let run_id = RunId::new(format!("bench-{files}")).expect("run id");
    let branch = IntegrationBranch::create(host.path(), &run_id, "main", BranchOptions::default())
        .expect("branch");
    let status = branch.status().expect("status");
    let parent = tempfile::tempdir().expect("tempdir");
    let workspaces = Arc::new(Workspaces::open(host.path(), &run_id, parent.path()).expect("open"));
    // The first checkout clones the host repository: a one-time cost per run.
    let start = Instant::now();
    let ws = workspaces
        .checkout(
            Slot::Builder,
            status.tip,
            &[(refs::BASE, status.base), (refs::TIP, status.tip)],
        )
        .expect("first checkout");
    let clone = start.elapsed();
    assert!(ws.change().expect("change").is_none());
    eprintln!(
        "first checkout (clone) of {files} files: {:.1} ms",
        clone.as_secs_f64() * 1e3
    );
    Fixture {
        files,
        run_id,
        host,
        _parent: parent,
        workspaces,
    }
}

fn bench(c: &mut Criterion) {
    let sandbox = sandbox();
    let fixtures: Vec<Fixture> = SIZES.into_iter().map(fixture).collect();

    let mut group = c.benchmark_group("attempt");
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    // The sandboxed process alone.
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let job = Job {
            program: "true".into(),
            args: Vec::new(),
            cwd: dir.path().to_owned(),
            env: Env::default(),
            stdin: Vec::new(),
            timeout: Duration::from_secs(30),
            output: OutputMode::Separate {
                stdout_limit: 1 << 20,
                stderr_tail: 4096,
            },
        };
        // As CommandAgent does: agents may use the network unless told otherwise.
        let policy = Policy {
            writable: vec![dir.path().to_owned()],
            readable: Vec::new(),
            network: Network::Allow,
        };
        let finished = sandbox.run(&job, &policy).expect("runs");
        assert_eq!(finished.ended, Ended::Exited(0));
        group.bench_function("process", |b| {
            b.iter(|| black_box(sandbox.run(&job, &policy).expect("runs")));
        });
    }

    for f in &fixtures {
        let branch =
            IntegrationBranch::open(f.host.path(), &f.run_id, "main", BranchOptions::default())
                .expect("branch");
        let status = branch.status().expect("status");
        let (tip, base) = (status.tip, status.base);
        // The refs InWorkspace sets beside a Builder's checkout.
        let beside = [(refs::BASE, base), (refs::TIP, tip)];

        // One whole Builder attempt through the host path.
        let agent = CommandAgent::new("true").with_sandbox(sandbox.clone());
        let mut builder = InWorkspace::new(agent, branch, Arc::clone(&f.workspaces));
        let req = request(&f.run_id);
        match builder.build(&req) {
            AgentOutcome::Returned(result) => {
                assert_eq!(result.status, BuilderStatus::Success);
                assert_eq!(result.patch, None, "the no-op agent changes nothing");
            }
            AgentOutcome::Failed { reason, .. } => panic!("the no-op attempt failed: {reason}"),
        }
        group.bench_with_input(BenchmarkId::new("full", f.files), &req, |b, req| {
            b.iter(|| black_box(builder.build(req)));
        });

        // The checkout and the capture of no change, without a process.
        group.bench_with_input(BenchmarkId::new("workspace", f.files), &f.files, |b, _| {
            b.iter(|| {
                let ws = f
                    .workspaces
                    .checkout(Slot::Builder, tip, &beside)
                    .expect("checkout");
                // As the host ends an attempt: the next checkout reuses this scan.
                let change = ws.finish().expect("change");
                assert!(change.is_none());
                black_box(change)
            });
        });

        // The checkout (which undoes the previous edit), one file rewritten, its capture.
        let mut n = 0usize;
        group.bench_with_input(
            BenchmarkId::new("change_one_file", f.files),
            &f.files,
            |b, &files| {
                b.iter(|| {
                    let ws = f
                        .workspaces
                        .checkout(Slot::Builder, tip, &beside)
                        .expect("checkout");
                    // Spread edits over directories: a stride coprime with the file count.
                    let i = (n * 7919) % files;
                    n += 1;
                    std::fs::write(ws.path().join(path_of(i)), content(i, 1)).expect("edit");
                    let patch = ws.finish().expect("change").expect("a one-file patch");
                    black_box(patch)
                });
            },
        );
    }
    group.finish();
    // Repositories are removed only after the last measurement (see autopack-apply's
    // bench: removing thousands of files slows the file creations that follow).
    drop(fixtures);
}

criterion_group!(benches, bench);
criterion_main!(benches);
