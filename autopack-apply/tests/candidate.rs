//! Candidate commits: CI runs on a commit that is not on the branch yet; only `advance`
//! makes it part of the branch.

mod common;

use autopack_apply::workspace::{Slot, Workspaces};
use autopack_apply::{ApplyError, PatchPolicy};
use autopack_core::vocabulary::BuilderMode;
use common::*;

const PATCH: &str = "diff --git a/README b/README\n--- a/README\n+++ b/README\n@@ -1 +1 @@\n-hello\n+hello, candidate\n";

#[test]
fn a_candidate_is_not_on_the_branch_until_advanced() {
    let fx = Fixture::new();
    let before = Snapshot::take(fx.path());
    let branch = fx.branch("cand-1");
    let base = branch.tip().unwrap();
    let checked = PatchPolicy::for_mode(&BuilderMode::TweakLight)
        .check(&branch, PATCH.as_bytes())
        .unwrap();
    let candidate = branch.commit_candidate(&checked, &info("p1")).unwrap();
    assert_eq!(candidate.parent, base);
    assert_eq!(branch.tip().unwrap(), base, "a candidate moves no ref");
    // The same patch on the same tip gives the same commit: retries are harmless.
    let again = branch.commit_candidate(&checked, &info("p1")).unwrap();
    assert_eq!(again.commit, candidate.commit);

    // CI sees the candidate's files, in a workspace of its own.
    let parent = tempfile::tempdir().unwrap();
    let workspaces = Workspaces::open(fx.path(), branch.run_id(), parent.path()).unwrap();
    let ws = workspaces
        .checkout(Slot::Ci, candidate.commit, &[])
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(ws.path().join("README")).unwrap(),
        "hello, candidate\n"
    );
    workspaces.remove().unwrap();

    branch.advance(&candidate).unwrap();
    assert_eq!(branch.tip().unwrap(), candidate.commit);
    branch.advance(&candidate).unwrap();
    assert_eq!(
        branch.tip().unwrap(),
        candidate.commit,
        "advance is idempotent"
    );
    assert_eq!(
        fx.blob_at(candidate.commit, "README").unwrap(),
        b"hello, candidate\n"
    );

    // HEAD, index, work tree and main are untouched (the branch ref is ours).
    let after = Snapshot::take(fx.path());
    assert_eq!(before.head, after.head);
    assert_eq!(before.index, after.index);
    assert_eq!(before.files, after.files);
    assert_eq!(
        before.refs.get("refs/heads/main"),
        after.refs.get("refs/heads/main")
    );
}

#[test]
fn advancing_a_stale_candidate_is_refused() {
    let fx = Fixture::new();
    let branch = fx.branch("cand-2");
    let policy = PatchPolicy::for_mode(&BuilderMode::TweakLight);
    let first = branch
        .commit_candidate(
            &policy.check(&branch, PATCH.as_bytes()).unwrap(),
            &info("p1"),
        )
        .unwrap();
    let other = "diff --git a/src/util.rs b/src/util.rs\n--- a/src/util.rs\n+++ b/src/util.rs\n@@ -1 +1 @@\n-pub fn util() {}\n+pub fn util() { }\n";
    let second = branch
        .commit_candidate(
            &policy.check(&branch, other.as_bytes()).unwrap(),
            &info("p2"),
        )
        .unwrap();
    branch.advance(&second).unwrap();
    let err = branch.advance(&first).unwrap_err();
    assert!(matches!(err, ApplyError::StaleTip { .. }), "{err}");
    assert_eq!(branch.tip().unwrap(), second.commit);
}
