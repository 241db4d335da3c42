//! The conformance suites of every store trait, run against the filesystem adapters.

use std::sync::atomic::{AtomicUsize, Ordering};

use autopack_layout::paths::RunsRoot;
use autopack_layout::{FsIssueStore, FsRulesetStore, FsRunStore, FsStrategyStore, FsyncPolicy};

static N: AtomicUsize = AtomicUsize::new(0);

fn fresh_root(parent: &tempfile::TempDir) -> RunsRoot {
    let n = N.fetch_add(1, Ordering::Relaxed);
    RunsRoot::new(
        parent
            .path()
            .join(format!("root-{n}"))
            .join(".autonomous_runs"),
    )
}

#[test]
fn run_store() {
    let parent = tempfile::tempdir().unwrap();
    for policy in [FsyncPolicy::EveryEntry, FsyncPolicy::AtCheckpoints] {
        autopack_core::journal::testing::run_store_conformance(|| {
            FsRunStore::new(fresh_root(&parent), policy)
        });
    }
}

#[test]
fn issue_store() {
    let parent = tempfile::tempdir().unwrap();
    for policy in [FsyncPolicy::EveryEntry, FsyncPolicy::AtCheckpoints] {
        autopack_issues::testing::run_conformance_suite(|| {
            FsIssueStore::new(fresh_root(&parent), policy)
        });
    }
}

#[test]
fn ruleset_store() {
    let parent = tempfile::tempdir().unwrap();
    autopack_strategy::testing::ruleset_store_conformance(|| {
        FsRulesetStore::new(fresh_root(&parent))
    });
}

#[test]
fn strategy_store() {
    let parent = tempfile::tempdir().unwrap();
    autopack_strategy::testing::strategy_store_conformance(|| {
        FsStrategyStore::new(fresh_root(&parent))
    });
}
