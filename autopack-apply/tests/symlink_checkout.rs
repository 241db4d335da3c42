//! A tracked symlink pointing out of the repository, a patch that edits or retypes it, and
//! CI's checkout of the candidate: the file outside stays as it was (the link is removed,
//! never written through). With the default policy the patch is refused.

mod common;

use std::path::Path;

use autopack_apply::workspace::{Slot, Workspaces};
use autopack_apply::{
    BranchOptions, IntegrationBranch, PatchPolicy, PolicyViolation, SymlinkChange,
};
use autopack_core::vocabulary::BuilderMode;
use git2::Repository;

struct Setup {
    _tmp: tempfile::TempDir,
    repo: std::path::PathBuf,
    outside: std::path::PathBuf,
    parent: std::path::PathBuf,
}

/// A repository on `main` with `README`, `src/lib.rs`, and `out` -> `{outside}/secret.txt`
/// (absolute, outside the repository).
fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "outside\n").unwrap();
    let root = tmp.path().join("repo");
    std::fs::create_dir_all(root.join("src")).unwrap();
    let repo = Repository::init(&root).unwrap();
    repo.set_head("refs/heads/main").unwrap();
    std::fs::write(root.join("README"), "hello\n").unwrap();
    std::fs::write(root.join("src/lib.rs"), "pub fn a() {}\n").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("out")).unwrap();
    common::commit_all(&repo, "initial");
    let parent = tmp.path().join("workspaces");
    Setup {
        repo: root,
        outside,
        parent,
        _tmp: tmp,
    }
}

fn target(s: &Setup) -> String {
    s.outside.join("secret.txt").display().to_string()
}

fn outside_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Checks out the base, then the candidate `patch` makes (allowed by `allow_symlinks`),
/// in CI's workspace; returns the workspace's `out` afterwards.
fn checkout_candidate(s: &Setup, patch: &str, run: &str) -> std::fs::Metadata {
    let branch =
        IntegrationBranch::create(&s.repo, &common::run(run), "main", BranchOptions::default())
            .unwrap();
    let policy = PatchPolicy::for_mode(&BuilderMode::TweakLight).allow_symlinks(true);
    let checked = policy.check(&branch, patch.as_bytes()).unwrap();
    let candidate = branch
        .commit_candidate(&checked, &common::info("p1"))
        .unwrap();
    let workspaces = Workspaces::open(&s.repo, &common::run(run), &s.parent).unwrap();
    let ws = workspaces
        .checkout(Slot::Ci, branch.tip().unwrap(), &[])
        .unwrap();
    assert!(
        std::fs::symlink_metadata(ws.path().join("out"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let ws = workspaces
        .checkout(Slot::Ci, candidate.commit, &[])
        .unwrap();
    assert_eq!(
        outside_files(&s.outside),
        vec![("secret.txt".to_owned(), b"outside\n".to_vec())],
        "the file outside the repository is untouched"
    );
    let meta = std::fs::symlink_metadata(ws.path().join("out")).unwrap();
    assert!(meta.is_file(), "the link was replaced by a file");
    meta
}

#[test]
fn a_plain_hunk_on_a_tracked_symlink_is_refused_by_default_and_never_written_through() {
    let s = setup();
    let patch = format!(
        "diff --git a/out b/out\n--- a/out\n+++ b/out\n@@ -1 +1 @@\n-{}\n\\ No newline at end of file\n+pwned\n",
        target(&s)
    );
    let branch = IntegrationBranch::create(
        &s.repo,
        &common::run("r0"),
        "main",
        BranchOptions::default(),
    )
    .unwrap();
    let err = PatchPolicy::for_mode(&BuilderMode::TweakLight)
        .check(&branch, patch.as_bytes())
        .unwrap_err();
    assert_eq!(
        err.violation(),
        Some(&PolicyViolation::Symlink {
            path: "out".into(),
            change: SymlinkChange::Edited
        })
    );
    checkout_candidate(&s, &patch, "r1");
}

#[test]
fn a_retyped_symlink_is_refused_by_default_and_never_written_through() {
    let s = setup();
    let patch = format!(
        "diff --git a/out b/out\ndeleted file mode 120000\n--- a/out\n+++ /dev/null\n@@ -1 +0,0 @@\n-{}\n\\ No newline at end of file\ndiff --git a/out b/out\nnew file mode 100644\n--- /dev/null\n+++ b/out\n@@ -0,0 +1 @@\n+pwned\n",
        target(&s)
    );
    let branch = IntegrationBranch::create(
        &s.repo,
        &common::run("r0"),
        "main",
        BranchOptions::default(),
    )
    .unwrap();
    let err = PatchPolicy::for_mode(&BuilderMode::TweakLight)
        .check(&branch, patch.as_bytes())
        .unwrap_err();
    assert_eq!(
        err.violation(),
        Some(&PolicyViolation::Symlink {
            path: "out".into(),
            change: SymlinkChange::Retyped
        })
    );
    checkout_candidate(&s, &patch, "r2");
}

#[test]
fn a_checkout_never_writes_under_a_directory_an_agent_turned_into_a_link() {
    let s = setup();
    let patch = "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1 +1 @@\n-pub fn a() {}\n+pub fn a() { evil() }\n";
    let branch = IntegrationBranch::create(
        &s.repo,
        &common::run("r3"),
        "main",
        BranchOptions::default(),
    )
    .unwrap();
    let checked = PatchPolicy::for_mode(&BuilderMode::TweakLight)
        .check(&branch, patch.as_bytes())
        .unwrap();
    let candidate = branch
        .commit_candidate(&checked, &common::info("p1"))
        .unwrap();
    let workspaces = Workspaces::open(&s.repo, &common::run("r3"), &s.parent).unwrap();
    let ws = workspaces
        .checkout(Slot::Ci, branch.tip().unwrap(), &[])
        .unwrap();
    // What an agent (or a test) could leave: `src` replaced by a link out of the workspace,
    // holding a `lib.rs` of its own.
    std::fs::remove_dir_all(ws.path().join("src")).unwrap();
    std::fs::write(s.outside.join("lib.rs"), "pub fn a() {}\n").unwrap();
    std::os::unix::fs::symlink(&s.outside, ws.path().join("src")).unwrap();
    let before = outside_files(&s.outside);
    let ws = workspaces
        .checkout(Slot::Ci, candidate.commit, &[])
        .unwrap();
    assert_eq!(outside_files(&s.outside), before, "nothing written outside");
    assert!(
        std::fs::symlink_metadata(ws.path().join("src"))
            .unwrap()
            .is_dir()
    );
    assert_eq!(
        std::fs::read_to_string(ws.path().join("src/lib.rs")).unwrap(),
        "pub fn a() { evil() }\n"
    );
}
