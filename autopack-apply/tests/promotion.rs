//! Promotion eligibility (every reason) and promotion by fast-forward and merge commit.

mod common;

use autopack_apply::{
    PatchPolicy, PromoteError, PromoteMode, PromoteOptions, PromotionRecord, PromotionRefusal,
    TierOutcome, eligibility, promote,
};
use autopack_core::ids::TierId;
use autopack_core::lifecycle::{RunState, TierState};
use autopack_core::vocabulary::{BuilderMode, DebtStatus, SafetyProfile};
use common::{Fixture, Snapshot, commit_sig, info, run};

fn good(run_id: &str) -> PromotionRecord {
    PromotionRecord {
        run_id: run(run_id),
        final_state: RunState::DoneSuccess,
        tiers: vec![TierOutcome {
            tier_id: TierId::new("t1").unwrap(),
            state: TierState::Complete,
        }],
        budget_failure: false,
        debt_status: DebtStatus::HasMinorIssues,
        safety_profile: SafetyProfile::SafetyCritical,
        unresolved_major_issues: 0,
    }
}

#[test]
fn eligibility_lists_every_reason() {
    assert_eq!(eligibility(&good("r")), Ok(()));
    let bad = PromotionRecord {
        run_id: run("r"),
        final_state: RunState::DoneFailedCiFailed,
        tiers: vec![
            TierOutcome {
                tier_id: TierId::new("t1").unwrap(),
                state: TierState::NotClean,
            },
            TierOutcome {
                tier_id: TierId::new("t2").unwrap(),
                state: TierState::Blocked,
            },
            TierOutcome {
                tier_id: TierId::new("t3").unwrap(),
                state: TierState::Complete,
            },
        ],
        budget_failure: true,
        debt_status: DebtStatus::ExcessMinorIssues,
        safety_profile: SafetyProfile::SafetyCritical,
        unresolved_major_issues: 2,
    };
    assert_eq!(
        eligibility(&bad),
        Err(vec![
            PromotionRefusal::NotSucceeded {
                state: RunState::DoneFailedCiFailed
            },
            PromotionRefusal::TierNotClean {
                tier_id: TierId::new("t1").unwrap()
            },
            PromotionRefusal::TierBlocked {
                tier_id: TierId::new("t2").unwrap()
            },
            PromotionRefusal::BudgetFailure,
            PromotionRefusal::ExcessMinorIssues,
            PromotionRefusal::UnresolvedMajorIssues { count: 2 },
        ])
    );
    // Each reason alone.
    let one = |f: fn(&mut PromotionRecord)| {
        let mut r = good("r");
        f(&mut r);
        eligibility(&r).unwrap_err()
    };
    assert_eq!(
        one(|r| r.final_state = RunState::DoneFailedManualAbort).len(),
        1
    );
    assert_eq!(
        one(|r| r.tiers[0].state = TierState::NotClean),
        [PromotionRefusal::TierNotClean {
            tier_id: TierId::new("t1").unwrap()
        }]
    );
    assert_eq!(
        one(|r| r.tiers[0].state = TierState::Blocked),
        [PromotionRefusal::TierBlocked {
            tier_id: TierId::new("t1").unwrap()
        }]
    );
    assert_eq!(
        one(|r| r.budget_failure = true),
        [PromotionRefusal::BudgetFailure]
    );
    assert_eq!(
        one(|r| r.debt_status = DebtStatus::ExcessMinorIssues),
        [PromotionRefusal::ExcessMinorIssues]
    );
    assert_eq!(
        one(|r| r.unresolved_major_issues = 1),
        [PromotionRefusal::UnresolvedMajorIssues { count: 1 }]
    );
    // Unresolved majors only matter under safety_critical.
    let mut normal = good("r");
    normal.safety_profile = SafetyProfile::Normal;
    normal.unresolved_major_issues = 3;
    assert_eq!(eligibility(&normal), Ok(()));
}

fn fixture_with_run(run_id: &str) -> (Fixture, git2::Oid) {
    let fx = Fixture::new();
    let branch = fx.branch(run_id);
    let policy = PatchPolicy::for_mode(&BuilderMode::TweakLight);
    let patch = "diff --git a/src/util.rs b/src/util.rs\n--- a/src/util.rs\n+++ b/src/util.rs\n@@ -1 +1 @@\n-pub fn util() {}\n+pub fn util() -> u8 { 1 }\n";
    let c = branch
        .commit(
            &policy.check(&branch, patch.as_bytes()).unwrap(),
            &info("p1"),
        )
        .unwrap();
    // HEAD away from main so promotion does not desynchronise a checkout.
    fx.repo()
        .set_head_detached(fx.repo().refname_to_id("refs/heads/main").unwrap())
        .unwrap();
    (fx, c.commit)
}

#[test]
fn refused_promotions_write_nothing() {
    let (fx, _) = fixture_with_run("r1");
    let before = Snapshot::take(fx.path());
    let mut bad = good("r1");
    bad.budget_failure = true;
    let opts = PromoteOptions::default();
    let err = promote(
        fx.path(),
        &run("r1"),
        "main",
        PromoteMode::FastForward,
        &bad,
        &commit_sig(),
        &opts,
    )
    .unwrap_err();
    assert!(
        matches!(&err, PromoteError::NotEligible { refusals, .. } if refusals == &[PromotionRefusal::BudgetFailure]),
        "{err}"
    );
    let err = promote(
        fx.path(),
        &run("r2"),
        "main",
        PromoteMode::FastForward,
        &good("r1"),
        &commit_sig(),
        &opts,
    )
    .unwrap_err();
    assert!(matches!(err, PromoteError::RunMismatch { .. }));
    let err = promote(
        fx.path(),
        &run("r1"),
        "autonomous/r1",
        PromoteMode::FastForward,
        &good("r1"),
        &commit_sig(),
        &opts,
    )
    .unwrap_err();
    assert!(matches!(err, PromoteError::BadTarget { .. }));
    let err = promote(
        fx.path(),
        &run("zz"),
        "main",
        PromoteMode::FastForward,
        &good("zz"),
        &commit_sig(),
        &opts,
    )
    .unwrap_err();
    assert!(matches!(err, PromoteError::MissingRef { .. }), "{err}");
    assert_eq!(Snapshot::take(fx.path()), before);
}

#[test]
fn fast_forward_promotion() {
    let (fx, tip) = fixture_with_run("r1");
    let old_main = fx.repo().refname_to_id("refs/heads/main").unwrap();
    let p = promote(
        fx.path(),
        &run("r1"),
        "main",
        PromoteMode::FastForward,
        &good("r1"),
        &commit_sig(),
        &PromoteOptions::default(),
    )
    .unwrap();
    assert_eq!(
        (p.old_tip, p.new_tip, p.merge_commit),
        (old_main, tip, false)
    );
    assert_eq!(fx.repo().refname_to_id("refs/heads/main").unwrap(), tip);
}

#[test]
fn fast_forward_refused_when_main_diverged_then_merge_commit() {
    let (fx, tip) = fixture_with_run("r1");
    let repo = fx.repo();
    // Someone commits to main (README) meanwhile.
    let main_tip = repo
        .find_commit(repo.refname_to_id("refs/heads/main").unwrap())
        .unwrap();
    let mut tb = repo.treebuilder(Some(&main_tip.tree().unwrap())).unwrap();
    tb.insert("README", repo.blob(b"changed on main\n").unwrap(), 0o100644)
        .unwrap();
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    let diverged = repo
        .commit(
            Some("refs/heads/main"),
            &common::sig(),
            &common::sig(),
            "main moves",
            &tree,
            &[&main_tip],
        )
        .unwrap();
    let opts = PromoteOptions::default();
    let err = promote(
        fx.path(),
        &run("r1"),
        "main",
        PromoteMode::FastForward,
        &good("r1"),
        &commit_sig(),
        &opts,
    )
    .unwrap_err();
    assert!(matches!(err, PromoteError::NotFastForward { .. }), "{err}");
    assert_eq!(repo.refname_to_id("refs/heads/main").unwrap(), diverged);
    let p = promote(
        fx.path(),
        &run("r1"),
        "main",
        PromoteMode::MergeCommit,
        &good("r1"),
        &commit_sig(),
        &opts,
    )
    .unwrap();
    assert!(p.merge_commit);
    let merge = repo.find_commit(p.new_tip).unwrap();
    assert_eq!(merge.parent_ids().collect::<Vec<_>>(), [diverged, tip]);
    assert_eq!(
        fx.blob_at(p.new_tip, "README").unwrap(),
        b"changed on main\n"
    );
    assert_eq!(
        fx.blob_at(p.new_tip, "src/util.rs").unwrap(),
        b"pub fn util() -> u8 { 1 }\n"
    );
    assert!(merge.message().unwrap().contains("Autopack-Run: r1"));
}

#[test]
fn merge_conflicts_are_reported() {
    let (fx, _) = fixture_with_run("r1");
    let repo = fx.repo();
    let main_tip = repo
        .find_commit(repo.refname_to_id("refs/heads/main").unwrap())
        .unwrap();
    let mut tb = repo.treebuilder(Some(&main_tip.tree().unwrap())).unwrap();
    let mut src = repo
        .treebuilder(Some(
            &main_tip
                .tree()
                .unwrap()
                .get_path(std::path::Path::new("src"))
                .unwrap()
                .to_object(&repo)
                .unwrap()
                .peel_to_tree()
                .unwrap(),
        ))
        .unwrap();
    src.insert(
        "util.rs",
        repo.blob(b"pub fn util() -> u16 { 2 }\n").unwrap(),
        0o100644,
    )
    .unwrap();
    tb.insert("src", src.write().unwrap(), 0o040000).unwrap();
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    repo.commit(
        Some("refs/heads/main"),
        &common::sig(),
        &common::sig(),
        "conflict",
        &tree,
        &[&main_tip],
    )
    .unwrap();
    let err = promote(
        fx.path(),
        &run("r1"),
        "main",
        PromoteMode::MergeCommit,
        &good("r1"),
        &commit_sig(),
        &PromoteOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, PromoteError::MergeConflict { paths, .. } if paths == &["src/util.rs"]),
        "{err}"
    );
}

#[test]
fn a_checked_out_target_needs_explicit_consent() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let policy = PatchPolicy::for_mode(&BuilderMode::TweakLight);
    let patch =
        "diff --git a/README b/README\n--- a/README\n+++ b/README\n@@ -1 +1 @@\n-hello\n+hi\n";
    let c = branch
        .commit(
            &policy.check(&branch, patch.as_bytes()).unwrap(),
            &info("p1"),
        )
        .unwrap();
    let err = promote(
        fx.path(),
        &run("r1"),
        "main",
        PromoteMode::FastForward,
        &good("r1"),
        &commit_sig(),
        &PromoteOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, PromoteError::CheckedOut { .. }));
    let head_before = std::fs::read(fx.path().join(".git/HEAD")).unwrap();
    let opts = PromoteOptions {
        allow_checked_out: true,
    };
    let p = promote(
        fx.path(),
        &run("r1"),
        "refs/heads/main",
        PromoteMode::FastForward,
        &good("r1"),
        &commit_sig(),
        &opts,
    )
    .unwrap();
    assert_eq!(p.new_tip, c.commit);
    assert!(p.checked_out && !p.unchanged());
    assert_eq!(
        std::fs::read(fx.path().join(".git/HEAD")).unwrap(),
        head_before
    );
}

#[test]
fn promoting_again_changes_nothing_in_either_mode() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let policy = PatchPolicy::for_mode(&BuilderMode::TweakLight);
    let patch =
        "diff --git a/README b/README\n--- a/README\n+++ b/README\n@@ -1 +1 @@\n-hello\n+hi\n";
    branch
        .commit(
            &policy.check(&branch, patch.as_bytes()).unwrap(),
            &info("p1"),
        )
        .unwrap();
    let opts = PromoteOptions {
        allow_checked_out: true,
    };
    let promote_as = |mode| {
        promote(
            fx.path(),
            &run("r1"),
            "main",
            mode,
            &good("r1"),
            &commit_sig(),
            &opts,
        )
        .unwrap()
    };
    let first = promote_as(PromoteMode::MergeCommit);
    assert!(first.merge_commit && !first.unchanged());
    for mode in [PromoteMode::FastForward, PromoteMode::MergeCommit] {
        let again = promote_as(mode);
        assert!(again.unchanged(), "{again:?}");
        assert_eq!(again.new_tip, first.new_tip);
        assert!(!again.merge_commit);
    }
}
