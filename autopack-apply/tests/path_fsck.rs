//! Property: every path the gate accepts (in a patch adding a file there) gives a commit
//! that the real `git fsck --strict` accepts, and stays inside the repository. Paths are
//! built from pieces that mix ASCII, dots, `git`, characters HFS+ ignores, NTFS short-name
//! and stream syntax, trailing dots and spaces.

mod common;

use std::path::Path;
use std::process::Command;

use autopack_apply::PatchPolicy;
use autopack_core::vocabulary::BuilderMode;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const PIECES: &[&str] = &[
    "a",
    "B",
    "src",
    "x.txt",
    "-",
    "_",
    "é",
    "git",
    "GIT",
    "Git",
    ".",
    "..",
    ".git",
    ".gitmodules",
    "\u{200c}",
    "\u{200d}",
    "\u{feff}",
    "\u{200e}",
    "~1",
    " ",
    ":",
    "$INDEX_ALLOCATION",
    "modules",
];

fn component() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 1..5).prop_map(|p| p.concat())
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(component(), 1..4).prop_map(|c| c.join("/"))
}

fn fsck(repo: &Path) -> std::process::Output {
    Command::new("git")
        .args(["fsck", "--strict", "--no-dangling", "--no-progress"])
        .current_dir(repo)
        .output()
        .expect("git runs")
}

#[test]
fn the_oracle_refuses_a_git_dir_alias() {
    // `git fsck --strict` is the judge below: make sure it does judge.
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(dir.path()).unwrap();
    let blob = repo.blob(b"x\n").unwrap();
    let mut inner = repo.treebuilder(None).unwrap();
    inner.insert("config", blob, 0o100644).unwrap();
    let inner = inner.write().unwrap();
    let mut root = repo.treebuilder(None).unwrap();
    root.insert(".g\u{200c}it", inner, 0o040000).unwrap();
    let tree = repo.find_tree(root.write().unwrap()).unwrap();
    repo.commit(
        Some("HEAD"),
        &common::sig(),
        &common::sig(),
        "bad",
        &tree,
        &[],
    )
    .unwrap();
    let out = fsck(dir.path());
    assert!(!out.status.success(), "fsck must refuse .g\\u200cit");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hasDotgit"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_accepted_path_passes_git_fsck_and_stays_inside() {
    let fx = common::Fixture::new();
    let branch = fx.branch("r1");
    let policy = PatchPolicy::for_mode(&BuilderMode::RefactorHeavy);
    let repo = fx.repo();
    let accepted = std::cell::Cell::new(0usize);
    let mut runner = TestRunner::new(Config::with_cases(48));
    runner
        .run(&path(), |path| {
            let Ok(checked) = policy.check(&branch, common::quoted_new_file(&path).as_bytes())
            else {
                return Ok(());
            };
            accepted.set(accepted.get() + 1);
            prop_assert!(!path.starts_with('/'));
            prop_assert!(
                path.split('/')
                    .all(|c| c != ".." && c != "." && !c.is_empty())
            );
            let candidate = branch
                .commit_candidate(&checked, &common::info("p1"))
                .unwrap();
            let tree = repo.find_commit(candidate.commit).unwrap().tree().unwrap();
            prop_assert!(
                tree.get_path(Path::new(&path)).is_ok(),
                "{path:?} is in the tree"
            );
            repo.reference("refs/probe/candidate", candidate.commit, true, "probe")
                .unwrap();
            let out = fsck(fx.path());
            prop_assert!(
                out.status.success(),
                "git fsck refuses {path:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(())
        })
        .unwrap();
    eprintln!("{} of 48 paths accepted", accepted.get());
    // The generator must reach the interesting side too (not only refusals).
    assert!(accepted.get() > 0, "no path accepted");
}
