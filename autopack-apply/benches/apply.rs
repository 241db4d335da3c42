//! Applying one-file patches in sequence: autopack-apply (check + commit on git2, no
//! checkout) against the first implementation's loop (`git apply`, `git add -A`,
//! `git commit` per patch, on a checkout), on repositories of 1,000 and 10,000 files.
//!
//! Run: `cargo bench -p autopack-apply --bench apply`. Criterion reports time per patch.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use autopack_apply::{
    BranchOptions, CommitInfo, CommitSignature, IntegrationBranch, PatchPolicy, Role,
};
use autopack_core::ids::{PhaseId, RunId, TierId};
use autopack_core::vocabulary::BuilderMode;
use criterion::{Criterion, criterion_group, criterion_main};

const PER_DIR: usize = 100;

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

/// The next one-file patch: bump the version line of file `n % files`.
struct Patches {
    files: usize,
    n: usize,
    versions: HashMap<usize, u32>,
}

impl Patches {
    fn next(&mut self) -> String {
        // Spread edits over directories: a stride that is coprime with the file count.
        let i = (self.n * 7919) % self.files;
        self.n += 1;
        let v = self.versions.entry(i).or_insert(0);
        let p = path_of(i);
        let patch = format!(
            "diff --git a/{p} b/{p}\n--- a/{p}\n+++ b/{p}\n@@ -1,3 +1,3 @@\n file {i}\n-version {v}\n+version {}\n some text that stays the same\n",
            *v + 1
        );
        *v += 1;
        patch
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply_one_file_patch");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    // Repositories are removed only after the last measurement: removing thousands of files
    // makes the next ones' file creations slower for a minute or more (ext4 skips recently
    // freed inodes), which would tax whichever side is measured next.
    let mut dirs = Vec::new();
    for files in [1_000usize, 10_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        make_repo(dir.path(), files);

        // autopack-apply: check + commit.
        let run = RunId::new(format!("bench-{files}")).expect("run id");
        let branch = IntegrationBranch::create(dir.path(), &run, "main", BranchOptions::default())
            .expect("branch");
        let policy = PatchPolicy::for_mode(&BuilderMode::TweakLight);
        let info = CommitInfo {
            tier_id: TierId::new("t1").expect("tier"),
            phase_id: PhaseId::new("p1").expect("phase"),
            role: Role::Builder,
            message: "bench".into(),
            signature: CommitSignature {
                name: "b".into(),
                email: "b@example.invalid".into(),
                seconds: 1_700_000_000,
                offset_minutes: 0,
            },
            provenance: None,
        };
        let mut patches = Patches {
            files,
            n: 0,
            versions: HashMap::new(),
        };
        group.bench_function(format!("autopack_apply/{files}_files"), |b| {
            b.iter_custom(|iters| {
                let texts: Vec<String> = (0..iters).map(|_| patches.next()).collect();
                let start = Instant::now();
                for text in &texts {
                    let checked = policy.check(&branch, text.as_bytes()).expect("check");
                    branch.commit(&checked, &info).expect("commit");
                }
                start.elapsed()
            })
        });

        // Baseline: the subprocess loop on a checkout of `main`.
        let mut patches = Patches {
            files,
            n: 0,
            versions: HashMap::new(),
        };
        let patch_file = dir.path().join(".git/bench.patch");
        let git = |args: &[&str]| {
            let status = Command::new("git")
                .args(["-c", "user.name=b", "-c", "user.email=b@example.invalid"])
                .args(args)
                .current_dir(dir.path())
                .status()
                .expect("git");
            assert!(status.success(), "git {args:?}");
        };
        group.bench_function(format!("git_subprocess/{files}_files"), |b| {
            b.iter_custom(|iters| {
                let texts: Vec<String> = (0..iters).map(|_| patches.next()).collect();
                let start = Instant::now();
                for text in &texts {
                    std::fs::write(&patch_file, text).expect("write patch");
                    git(&["apply", ".git/bench.patch"]);
                    git(&["add", "-A"]);
                    git(&["commit", "-q", "-m", "bench"]);
                }
                start.elapsed()
            })
        });
        dirs.push(dir);
    }
    group.finish();
    drop(dirs);
}

#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench);
}
use group::benches;
criterion_main!(benches);
