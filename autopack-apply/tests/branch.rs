//! Integration branches, commits, stale tips, tags, status, worktrees and the invariant.

mod common;

use autopack_apply::workspace::{Slot, Workspaces};
use autopack_apply::{
    ApplyError, BranchOptions, IntegrationBranch, PatchPolicy, ProtectedRefs, Role,
};
use autopack_core::ids::{PhaseId, TierId};
use autopack_core::vocabulary::BuilderMode;
use common::{Fixture, Snapshot, commit_sig, info, run};

fn policy() -> PatchPolicy {
    PatchPolicy::for_mode(&BuilderMode::TweakLight)
}

fn edit_readme(from: &str, to: &str) -> String {
    format!(
        "diff --git a/README b/README\n--- a/README\n+++ b/README\n@@ -1 +1 @@\n-{from}\n+{to}\n"
    )
}

#[test]
fn every_call_leaves_head_index_worktree_and_protected_refs_untouched() {
    let fx = Fixture::new();
    let before = Snapshot::take(fx.path());
    let branch = fx.branch("inv");
    let c1 = branch
        .commit(
            &policy()
                .check(&branch, edit_readme("hello", "one").as_bytes())
                .unwrap(),
            &info("p1"),
        )
        .unwrap();
    let _ = policy().check(&branch, b"garbage");
    let _ = policy().check(&branch, edit_readme("nope", "x").as_bytes());
    let c2 = branch
        .commit(
            &policy()
                .check(&branch, edit_readme("one", "two").as_bytes())
                .unwrap(),
            &info("p2"),
        )
        .unwrap();
    branch
        .snapshot_tag(
            &TierId::new("t1").unwrap(),
            &PhaseId::new("p1").unwrap(),
            c1.commit,
            &commit_sig(),
        )
        .unwrap();
    let status = branch.status().unwrap();
    assert_eq!(status.tip, c2.commit);
    let parent = tempfile::tempdir().unwrap();
    let workspaces = Workspaces::open(fx.path(), branch.run_id(), parent.path()).unwrap();
    let ws = workspaces
        .checkout(Slot::Ci, branch.tip().unwrap(), &[])
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(ws.path().join("README")).unwrap(),
        "two\n"
    );
    workspaces.remove().unwrap();
    let reopened =
        IntegrationBranch::open(fx.path(), &run("inv"), "main", BranchOptions::default()).unwrap();
    assert_eq!(reopened.tip().unwrap(), c2.commit);
    assert_eq!(Snapshot::take(fx.path()), before);
    // The branch really moved, with the expected content and message.
    assert_eq!(fx.blob_at(c2.commit, "README").unwrap(), b"two\n");
    let repo = fx.repo();
    let commit = repo.find_commit(c2.commit).unwrap();
    assert_eq!(commit.parent_id(0).unwrap(), c1.commit);
    let msg = commit.message().unwrap();
    assert!(msg.starts_with("autopack(inv/p2): Phase p2\n"), "{msg}");
    for trailer in [
        "Autopack-Run: inv",
        "Autopack-Phase: p2",
        "Autopack-Role: builder",
        "Autopack-Tier: t1",
    ] {
        assert!(msg.contains(trailer), "{msg}");
    }
    assert_eq!(commit.author().when().seconds(), common::T0);
}

#[test]
fn commits_are_reproducible() {
    let ids: Vec<_> = (0..2)
        .map(|_| {
            let fx = Fixture::new();
            let branch = fx.branch("rep");
            branch
                .commit(
                    &policy()
                        .check(&branch, edit_readme("hello", "x").as_bytes())
                        .unwrap(),
                    &info("p1"),
                )
                .unwrap()
                .commit
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn auditor_role_is_recorded() {
    let fx = Fixture::new();
    let branch = fx.branch("aud");
    let mut i = info("p1");
    i.role = Role::Auditor;
    let c = branch
        .commit(
            &policy()
                .check(&branch, edit_readme("hello", "x").as_bytes())
                .unwrap(),
            &i,
        )
        .unwrap();
    assert!(
        fx.repo()
            .find_commit(c.commit)
            .unwrap()
            .message()
            .unwrap()
            .contains("Autopack-Role: auditor")
    );
}

#[test]
fn a_stale_tip_is_an_error_and_writes_nothing() {
    let fx = Fixture::new();
    let branch = fx.branch("stale");
    let a = policy()
        .check(&branch, edit_readme("hello", "a").as_bytes())
        .unwrap();
    let b = policy()
        .check(&branch, edit_readme("hello", "b").as_bytes())
        .unwrap();
    let first = branch.commit(&a, &info("p1")).unwrap();
    let err = branch.commit(&b, &info("p1")).unwrap_err();
    assert!(
        matches!(&err, ApplyError::StaleTip { expected, found, .. } if *expected == b.base_tip() && *found == first.commit),
        "{err}"
    );
    assert_eq!(branch.tip().unwrap(), first.commit);
    // A second writer (another handle) moving the branch is detected the same way.
    let other = IntegrationBranch::open(fx.path(), &run("stale"), "main", BranchOptions::default())
        .unwrap();
    let c = policy()
        .check(&branch, edit_readme("a", "c").as_bytes())
        .unwrap();
    let d = policy()
        .check(&other, edit_readme("a", "d").as_bytes())
        .unwrap();
    other.commit(&d, &info("p2")).unwrap();
    assert!(matches!(
        branch.commit(&c, &info("p2")),
        Err(ApplyError::StaleTip { .. })
    ));
}

#[test]
fn protected_refs_are_refused_everywhere() {
    let fx = Fixture::new();
    let before = Snapshot::take(fx.path());
    let opts = BranchOptions {
        protected: ProtectedRefs::new(&["autonomous/prod-*"]).unwrap(),
    };
    let err =
        IntegrationBranch::create(fx.path(), &run("prod-1"), "main", opts.clone()).unwrap_err();
    assert!(
        matches!(&err, ApplyError::ProtectedRef { ref_name, pattern } if ref_name == "refs/heads/autonomous/prod-1" && pattern == "autonomous/prod-*"),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("protected_ref: refs/heads/autonomous/prod-1")
    );
    assert!(IntegrationBranch::open(fx.path(), &run("prod-1"), "main", opts).is_err());
    let p = ProtectedRefs::default();
    assert_eq!(p.matching("refs/heads/main"), Some("main"));
    assert_eq!(p.matching("refs/heads/master"), Some("master"));
    assert_eq!(p.matching("refs/heads/autonomous/main"), None);
    let release = ProtectedRefs::new(&["release/*"]).unwrap();
    assert_eq!(release.matching("refs/heads/release/1"), Some("release/*"));
    assert!(ProtectedRefs::new(&["[bad"]).is_err());
    assert_eq!(Snapshot::take(fx.path()), before);
}

#[test]
fn create_refuses_existing_branches_missing_bases_and_checked_out_branches() {
    let fx = Fixture::new();
    fx.branch("dup");
    let err = IntegrationBranch::create(fx.path(), &run("dup"), "main", BranchOptions::default())
        .unwrap_err();
    assert!(matches!(err, ApplyError::BranchExists { .. }), "{err}");
    let err = IntegrationBranch::create(fx.path(), &run("x"), "nope", BranchOptions::default())
        .unwrap_err();
    assert!(matches!(err, ApplyError::BaseNotFound { .. }), "{err}");
    let err = IntegrationBranch::open(fx.path(), &run("missing"), "main", BranchOptions::default())
        .unwrap_err();
    assert!(matches!(err, ApplyError::BranchMissing { .. }), "{err}");
    // A host that checked out the integration branch: refuse to move it under its feet.
    let branch = fx.branch("co");
    fx.repo().set_head("refs/heads/autonomous/co").unwrap();
    let checked = policy()
        .check(&branch, edit_readme("hello", "x").as_bytes())
        .unwrap();
    assert!(matches!(
        branch.commit(&checked, &info("p1")),
        Err(ApplyError::CheckedOut { .. })
    ));
}

#[test]
fn snapshot_tags_are_annotated_and_idempotent() {
    let fx = Fixture::new();
    let branch = fx.branch("tags");
    let c1 = branch
        .commit(
            &policy()
                .check(&branch, edit_readme("hello", "a").as_bytes())
                .unwrap(),
            &info("p1"),
        )
        .unwrap();
    let c2 = branch
        .commit(
            &policy()
                .check(&branch, edit_readme("a", "b").as_bytes())
                .unwrap(),
            &info("p2"),
        )
        .unwrap();
    let (t1, p1) = (TierId::new("t1").unwrap(), PhaseId::new("p1").unwrap());
    let tag = branch
        .snapshot_tag(&t1, &p1, c1.commit, &commit_sig())
        .unwrap();
    assert_eq!(tag.ref_name, "refs/tags/autonomous/tags/tier-t1/phase-p1");
    let again = branch
        .snapshot_tag(&t1, &p1, c1.commit, &commit_sig())
        .unwrap();
    assert_eq!(tag, again);
    let err = branch
        .snapshot_tag(&t1, &p1, c2.commit, &commit_sig())
        .unwrap_err();
    assert!(
        matches!(err, ApplyError::TagConflict { existing, requested, .. } if existing == c1.commit && requested == c2.commit)
    );
    let repo = fx.repo();
    let r = repo.find_reference(&tag.ref_name).unwrap();
    let tag_obj = repo
        .find_tag(r.target().unwrap())
        .expect("annotated tag object");
    assert_eq!(tag_obj.target_id(), c1.commit);
    // Not on the branch: main's tip is an ancestor (fine); an unrelated commit is not.
    let tree = repo.find_commit(c1.commit).unwrap().tree().unwrap();
    let orphan = repo
        .commit(None, &common::sig(), &common::sig(), "orphan", &tree, &[])
        .unwrap();
    let p9 = PhaseId::new("p9").unwrap();
    assert!(matches!(
        branch.snapshot_tag(&t1, &p9, orphan, &commit_sig()),
        Err(ApplyError::NotOnBranch { .. })
    ));
    branch
        .snapshot_tag(&t1, &PhaseId::new("p2").unwrap(), c2.commit, &commit_sig())
        .unwrap();
    let status = branch.status().unwrap();
    assert_eq!(status.commits_ahead, 2);
    assert_eq!(status.base, repo.refname_to_id("refs/heads/main").unwrap());
    assert_eq!(status.base_ref, "refs/heads/main");
    assert_eq!(
        status
            .snapshot_tags
            .iter()
            .map(|t| (t.ref_name.as_str(), t.target))
            .collect::<Vec<_>>(),
        vec![
            ("refs/tags/autonomous/tags/tier-t1/phase-p1", c1.commit),
            ("refs/tags/autonomous/tags/tier-t1/phase-p2", c2.commit)
        ]
    );
}

#[test]
fn ci_workspaces_are_independent_clones_that_leave_the_host_untouched() {
    let fx = Fixture::new();
    let before = Snapshot::take(fx.path());
    let branch = fx.branch("wt");
    let c = branch
        .commit(
            &policy()
                .check(&branch, edit_readme("hello", "ci").as_bytes())
                .unwrap(),
            &info("p1"),
        )
        .unwrap();
    let parent = tempfile::tempdir().unwrap();
    let workspaces = Workspaces::open(fx.path(), branch.run_id(), parent.path()).unwrap();
    let ws = workspaces.checkout(Slot::Ci, c.commit, &[]).unwrap();
    let path = ws.path().to_owned();
    assert_eq!(ws.commit(), c.commit);
    assert_eq!(
        std::fs::read_to_string(path.join("README")).unwrap(),
        "ci\n"
    );
    assert!(path.join("src/lib.rs").exists());
    // A clone of its own: a real .git directory, no remote back to the host, HEAD detached.
    assert!(
        std::fs::symlink_metadata(path.join(".git"))
            .unwrap()
            .is_dir()
    );
    let ws_repo = git2::Repository::open(&path).unwrap();
    assert!(ws_repo.remotes().unwrap().is_empty());
    assert!(ws_repo.head_detached().unwrap());
    assert_eq!(ws_repo.head().unwrap().target(), Some(c.commit));
    // Whatever CI does to the workspace's refs stays there.
    ws_repo
        .reference("refs/heads/main", c.commit, true, "CI moves its own main")
        .unwrap();
    drop(ws_repo);
    assert!(!fx.path().join(".git/worktrees").exists());
    // The branch is not checked out anywhere: commits still go through.
    branch
        .commit(
            &policy()
                .check(&branch, edit_readme("ci", "after").as_bytes())
                .unwrap(),
            &info("p2"),
        )
        .unwrap();
    let dir = workspaces.dir().to_owned();
    workspaces.remove().unwrap();
    assert!(!dir.exists() && !path.exists());
    assert_eq!(Snapshot::take(fx.path()), before);
}

/// `git` itself, in the fixture; `None` when git is not installed.
fn git(fx: &common::Fixture, args: &[&str]) -> Option<std::process::Output> {
    std::process::Command::new("git")
        .args(args)
        .current_dir(fx.path())
        .output()
        .ok()
}

#[test]
fn git_reads_the_objects_and_ref_autopack_writes() {
    // Blobs, trees and commits reach the repository through our own loose-object writer:
    // git must find them well-formed, and at the ids libgit2 computed.
    let fx = Fixture::new();
    let branch = fx.branch("fsck");
    let wide = PatchPolicy::for_mode(&BuilderMode::RefactorHeavy);
    let patches = [
        edit_readme("hello", "one"),
        "diff --git a/src/deep/er/new.rs b/src/deep/er/new.rs\nnew file mode 100644\n--- /dev/null\n+++ b/src/deep/er/new.rs\n@@ -0,0 +1 @@\n+fn new() {}\n".to_owned(),
        "diff --git a/docs/guide.md b/docs/guide.md\ndeleted file mode 100644\n--- a/docs/guide.md\n+++ /dev/null\n@@ -1,3 +0,0 @@\n-# Guide\n-\n-Read me.\n".to_owned(),
        "diff --git a/src/util.rs b/src/helpers.rs\nsimilarity index 100%\nrename from src/util.rs\nrename to src/helpers.rs\n".to_owned(),
        "diff --git a/README b/README\nold mode 100644\nnew mode 100755\n".to_owned(),
        "diff --git a/top/x.txt b/top/x.txt\nnew file mode 100644\n--- /dev/null\n+++ b/top/x.txt\n@@ -0,0 +1 @@\n+x\n".to_owned(),
    ];
    let mut last = None;
    for (i, patch) in patches.iter().enumerate() {
        let checked = wide.check(&branch, patch.as_bytes()).unwrap();
        let made = branch.commit(&checked, &info(&format!("p{i}"))).unwrap();
        let repo = fx.repo();
        let commit = repo.find_commit(made.commit).unwrap();
        assert_eq!(commit.tree_id(), checked.tree());
        assert_eq!(commit.parent_id(0).unwrap(), checked.base_tip());
        last = Some(made);
    }
    let last = last.unwrap();
    let Some(version) = git(&fx, &["--version"]) else {
        eprintln!("git is not installed; skipping the git half of this test");
        return;
    };
    assert!(version.status.success());
    let fsck = git(&fx, &["fsck", "--strict", "--no-dangling"]).unwrap();
    assert!(
        fsck.status.success() && fsck.stderr.is_empty(),
        "git fsck: {}",
        String::from_utf8_lossy(&fsck.stderr)
    );
    let tip = git(&fx, &["rev-parse", "refs/heads/autonomous/fsck"]).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&tip.stdout).trim(),
        last.commit.to_string()
    );
    let file = git(
        &fx,
        &["show", "refs/heads/autonomous/fsck:src/deep/er/new.rs"],
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&file.stdout), "fn new() {}\n");
    let listed = git(
        &fx,
        &["ls-tree", "-r", "--name-only", "refs/heads/autonomous/fsck"],
    )
    .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("src/helpers.rs") && !listed.contains("src/util.rs"));
    assert!(!listed.contains("docs/guide.md") && listed.contains("top/x.txt"));
}
