//! The patch policy on a large, realistic patch: 1,000 files and 10,000 changed lines
//! (800 edited files, one 5-line hunk each, and 200 new files of 10 lines, some in new
//! directories), spread over a repository of 5,000 files three levels deep (10 × 10
//! directories of 50 files, packed), with the default protected paths. Goal: under 20 ms
//! a check.
//!
//! It first prints the median of a plain timing loop (`AUTOPACK_BENCH_N`, default 30
//! checks) for the dry check (`check_at`: nothing written) and the full check (`check`:
//! the post-image blobs and trees written as loose objects; after the first iteration
//! they exist, so later iterations only freshen them). `AUTOPACK_BENCH_SKIP_CRITERION=1`
//! skips the criterion group (`policy_check`) that times both again.
//!
//! Run: `cargo bench -p autopack-apply --bench policy`.

use std::path::Path;
use std::time::{Duration, Instant};

use autopack_apply::{BranchOptions, IntegrationBranch, PatchLimits, PatchPolicy};
use autopack_core::ids::RunId;
use autopack_core::patch_rules::default_protected_paths;
use criterion::{Criterion, criterion_group, criterion_main};

const TOP: usize = 10;
const MID: usize = 10;
const PER_DIR: usize = 50;
const FILES: usize = TOP * MID * PER_DIR;
const LINES: usize = 20;

fn path_of(i: usize) -> String {
    let dir = i / PER_DIR;
    format!("mod{:02}/sub{:02}/file{i:05}.txt", dir / MID, dir % MID)
}

fn line(i: usize, j: usize) -> String {
    format!("file {i} line {j}: some text that stays the same")
}

/// The repository, built in the object database (no checkout is needed by the policy).
fn make_repo(root: &Path) {
    let repo = git2::Repository::init(root).expect("init");
    repo.set_head("refs/heads/main").expect("head");
    let mut top = repo.treebuilder(None).expect("tb");
    for a in 0..TOP {
        let mut mid = repo.treebuilder(None).expect("tb");
        for b in 0..MID {
            let mut leaf = repo.treebuilder(None).expect("tb");
            for c in 0..PER_DIR {
                let i = (a * MID + b) * PER_DIR + c;
                let text: String = (0..LINES).map(|j| line(i, j) + "\n").collect();
                let blob = repo.blob(text.as_bytes()).expect("blob");
                leaf.insert(format!("file{i:05}.txt"), blob, 0o100644)
                    .expect("insert");
            }
            let id = leaf.write().expect("tree");
            mid.insert(format!("sub{b:02}"), id, 0o040000)
                .expect("insert");
        }
        let id = mid.write().expect("tree");
        top.insert(format!("mod{a:02}"), id, 0o040000)
            .expect("insert");
    }
    let tree = repo.find_tree(top.write().expect("tree")).expect("tree");
    let sig = git2::Signature::new("b", "b@example.invalid", &git2::Time::new(1_700_000_000, 0))
        .expect("sig");
    repo.commit(Some("HEAD"), &sig, &sig, "initial", &tree, &[])
        .expect("commit");
    // Packed, as a clone or any repository after `git gc` is: the preimages are read from
    // a pack, not from 5,000 loose files.
    let status = std::process::Command::new("git")
        .args(["repack", "-adq"])
        .current_dir(root)
        .status()
        .expect("git repack");
    assert!(status.success(), "git repack");
}

/// 800 edits (every fifth file up to 4,000: all directories of the first 80) of lines 5–9,
/// and 200 new files, half beside existing ones, half in new directories.
fn make_patch() -> String {
    let mut out = String::new();
    for k in 0..800 {
        let i = k * 5 + (k % 5);
        let p = path_of(i);
        out.push_str(&format!(
            "diff --git a/{p} b/{p}\n--- a/{p}\n+++ b/{p}\n@@ -4,7 +4,7 @@\n"
        ));
        out.push_str(&format!(" {}\n", line(i, 3)));
        for j in 4..9 {
            out.push_str(&format!("-{}\n", line(i, j)));
        }
        for j in 4..9 {
            out.push_str(&format!("+{} (edited)\n", line(i, j)));
        }
        out.push_str(&format!(" {}\n", line(i, 9)));
    }
    for k in 0..200 {
        let p = if k % 2 == 0 {
            format!("mod{:02}/sub{:02}/new{k:03}.txt", k % TOP, (k / TOP) % MID)
        } else {
            format!("mod{:02}/fresh{:02}/deep/new{k:03}.txt", k % TOP, k % 7)
        };
        out.push_str(&format!(
            "diff --git a/{p} b/{p}\nnew file mode 100644\n--- /dev/null\n+++ b/{p}\n@@ -0,0 +1,10 @@\n"
        ));
        for j in 0..10 {
            out.push_str(&format!("+new file {k} line {j}\n"));
        }
    }
    out
}

fn policy() -> PatchPolicy {
    PatchPolicy::with_limits(PatchLimits {
        max_files: 2_000,
        max_changed_lines: 20_000,
        max_patch_bytes: 16 << 20,
        max_line_bytes: 2_000,
        max_file_bytes: 1 << 20,
    })
    .protect(&default_protected_paths(&["bash run_tests.sh"]))
    .expect("globs")
}

/// This process's CPU time so far (user + system), from `/proc/self/stat` in clock ticks
/// of 10 ms; `None` off Linux. The machine is shared, so wall time alone says little.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    make_repo(dir.path());
    let run = RunId::new("bench-policy").expect("run id");
    let branch = IntegrationBranch::create(dir.path(), &run, "main", BranchOptions::default())
        .expect("branch");
    let repo = git2::Repository::open(dir.path()).expect("open");
    let tip = branch.tip().expect("tip");
    let patch = make_patch();
    let policy = policy();
    let checked = policy.check(&branch, patch.as_bytes()).expect("accepted");
    assert_eq!(checked.changes().len(), 1_000);
    assert_eq!(checked.insertions() + checked.deletions(), 10_000);
    println!(
        "patch: {} files, {} changed lines, {} bytes; repository: {FILES} files",
        checked.changes().len(),
        checked.insertions() + checked.deletions(),
        patch.len()
    );
    let n: usize = std::env::var("AUTOPACK_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    // (median wall time, mean CPU time) of `n` runs.
    let time = |f: &dyn Fn()| {
        let cpu = cpu_time();
        let times: Vec<Duration> = (0..n)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect();
        let cpu = cpu
            .zip(cpu_time())
            .map(|(a, b)| (b.saturating_sub(a)) / n as u32);
        (median(times), cpu)
    };
    let dry = time(&|| {
        policy
            .check_at(&repo, tip, patch.as_bytes())
            .expect("accepted");
    });
    let full = time(&|| {
        policy.check(&branch, patch.as_bytes()).expect("accepted");
    });
    for (name, (wall, cpu)) in [("check_at (dry)", dry), ("check", full)] {
        println!("{name}: median wall {wall:.2?} of {n}, mean CPU {cpu:.2?}");
    }
    if std::env::var_os("AUTOPACK_BENCH_SKIP_CRITERION").is_some() {
        return;
    }
    let mut group = c.benchmark_group("policy_check");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("check_at_1000_files_10000_lines", |b| {
        b.iter(|| {
            policy
                .check_at(&repo, tip, patch.as_bytes())
                .expect("accepted")
        })
    });
    group.bench_function("check_1000_files_10000_lines", |b| {
        b.iter(|| policy.check(&branch, patch.as_bytes()).expect("accepted"))
    });
    group.finish();
}

mod group {
    #![allow(missing_docs)]
    use super::*;
    criterion_group!(benches, bench);
}

criterion_main!(group::benches);
