//! Conformance suites for store adapters (feature `testing`).
//!
//! Run them from an adapter's tests with a factory for fresh, empty stores:
//!
//! ```
//! use autopack_strategy::store::{MemoryRulesetStore, MemoryStrategyStore};
//! use autopack_strategy::testing;
//!
//! testing::ruleset_store_conformance(MemoryRulesetStore::new);
//! testing::strategy_store_conformance(MemoryStrategyStore::new);
//! ```
//!
//! The suites panic (with the rule that failed) on a non-conforming store; they are test
//! code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use autopack_core::ids::{PhaseId, ProjectId, RunId, TierId};
use autopack_core::plan::{PhaseSpec, Plan, RunSpec, TierSpec};
use autopack_core::vocabulary::{CiProfile, TaskCategory};

use crate::compile::dry_run;
use crate::ruleset::{CategoryRules, Ruleset};
use crate::store::{RulesetStore, StrategyStore};
use crate::strategy::Strategy;

/// A small valid plan: two tiers, three phases (one of them a schema change).
pub fn sample_plan(run_id: &str) -> Plan {
    let tier = |id: &str, idx: u32| TierSpec {
        tier_id: TierId::new(id).expect("tier id"),
        tier_index: idx,
        name: format!("Tier {id}"),
        description: String::new(),
    };
    let phase = |id: &str, idx: u32, tier: &str, cat: &str| PhaseSpec {
        phase_id: PhaseId::new(id).expect("phase id"),
        phase_index: idx,
        tier_id: TierId::new(tier).expect("tier id"),
        name: format!("Phase {id}"),
        description: String::new(),
        task_category: TaskCategory::parse(cat).expect("category"),
        complexity: None,
        builder_mode: None,
        scope: Vec::new(),
    };
    Plan {
        run: RunSpec {
            run_id: RunId::new(run_id).expect("run id"),
            safety_profile: None,
            run_scope: None,
            token_cap: None,
            max_phases: None,
            max_duration_minutes: None,
        },
        tiers: vec![tier("t1", 0), tier("t2", 1)],
        phases: vec![
            phase("p1", 0, "t1", "feature_scaffolding"),
            phase("p2", 1, "t1", "schema_change"),
            phase("p3", 2, "t2", "docs"),
        ],
    }
}

/// A strategy compiled from [`sample_plan`] with the built-in defaults.
pub fn sample_strategy(run_id: &str, version: u32) -> Strategy {
    let mut s = dry_run(&sample_plan(run_id), None, None).expect("sample compiles");
    s.version = version;
    s
}

/// Checks the [`RulesetStore`] contract against fresh stores from `make`.
pub fn ruleset_store_conformance<S: RulesetStore>(make: impl Fn() -> S) {
    let a = ProjectId::new("ProjectA").unwrap();
    let b = ProjectId::new("ProjectB").unwrap();

    // Empty store.
    let store = make();
    assert_eq!(
        store.load_latest(&a).unwrap(),
        None,
        "empty store: no latest ruleset"
    );
    assert_eq!(
        store.load_version(&a, 1).unwrap(),
        None,
        "empty store: no version 1"
    );
    assert!(
        store.list_versions(&a).unwrap().is_empty(),
        "empty store: no versions"
    );

    // Versions are assigned 1, 2, … and rewrite `version`.
    let mut first = Ruleset::builtin(a.clone());
    first.version = "v7".into();
    first.run_max_phases = Some(30);
    assert_eq!(
        store.save_new_version(&first).unwrap(),
        1,
        "first save is version 1"
    );
    let mut second = Ruleset::builtin(a.clone());
    second.category_defaults.insert(
        "docs".into(),
        CategoryRules {
            ci_profile: Some(CiProfile::Strict),
            ..CategoryRules::default()
        },
    );
    assert_eq!(
        store.save_new_version(&second).unwrap(),
        2,
        "second save is version 2"
    );
    assert_eq!(
        store.list_versions(&a).unwrap(),
        vec![1, 2],
        "versions ascend"
    );

    let latest = store.load_latest(&a).unwrap().expect("latest exists");
    assert_eq!(
        latest.version, "v2",
        "stored version is rewritten to v{{N}}"
    );
    assert_eq!(
        latest.category_defaults, second.category_defaults,
        "latest is the last save"
    );
    let v1 = store.load_version(&a, 1).unwrap().expect("v1 exists");
    assert_eq!(v1.version, "v1");
    assert_eq!(
        v1.run_max_phases,
        Some(30),
        "old versions keep their content"
    );
    assert_eq!(
        store.load_version(&a, 3).unwrap(),
        None,
        "unknown version is None"
    );

    // Projects are independent.
    assert!(
        store.list_versions(&b).unwrap().is_empty(),
        "other project untouched"
    );
    assert_eq!(
        store
            .save_new_version(&Ruleset::builtin(b.clone()))
            .unwrap(),
        1
    );
    assert_eq!(store.list_versions(&a).unwrap(), vec![1, 2]);
    assert_eq!(store.load_latest(&b).unwrap().unwrap().project_id, b);

    // A loaded ruleset is valid.
    store
        .load_latest(&a)
        .unwrap()
        .unwrap()
        .validate()
        .expect("stored ruleset validates");
}

/// Checks the [`StrategyStore`] contract against fresh stores from `make`.
pub fn strategy_store_conformance<S: StrategyStore>(make: impl Fn() -> S) {
    let run = RunId::new("run-a").unwrap();
    let other = RunId::new("run-b").unwrap();

    let store = make();
    assert_eq!(
        store.load(&run, 1).unwrap(),
        None,
        "empty store: nothing to load"
    );
    assert_eq!(
        store.load_latest(&run).unwrap(),
        None,
        "empty store: no latest"
    );
    assert!(
        store.list_versions(&run).unwrap().is_empty(),
        "empty store: no versions"
    );

    let v1 = sample_strategy("run-a", 1);
    store.save(&v1).unwrap();
    assert_eq!(
        store.load(&run, 1).unwrap().as_ref(),
        Some(&v1),
        "round trip"
    );
    store
        .save(&v1)
        .expect("saving identical content again succeeds");

    let mut changed = v1.clone();
    changed.run_token_cap += 1;
    assert!(store.save(&changed).is_err(), "a stored version is frozen");
    assert_eq!(
        store.load(&run, 1).unwrap().as_ref(),
        Some(&v1),
        "conflict changes nothing"
    );

    let v3 = sample_strategy("run-a", 3);
    store.save(&v3).unwrap();
    let v2 = sample_strategy("run-a", 2);
    store.save(&v2).unwrap();
    assert_eq!(
        store.list_versions(&run).unwrap(),
        vec![1, 2, 3],
        "versions ascend"
    );
    assert_eq!(
        store.load_latest(&run).unwrap().map(|s| s.version),
        Some(3),
        "latest is highest"
    );

    assert!(
        store.list_versions(&other).unwrap().is_empty(),
        "runs are independent"
    );
    store.save(&sample_strategy("run-b", 1)).unwrap();
    assert_eq!(store.list_versions(&other).unwrap(), vec![1]);
    assert_eq!(store.load(&other, 1).unwrap().unwrap().run_id, other);
    assert_eq!(store.list_versions(&run).unwrap(), vec![1, 2, 3]);

    // Byte-identical after a round trip.
    let loaded = store.load(&run, 2).unwrap().unwrap();
    assert_eq!(
        loaded.to_json(),
        v2.to_json(),
        "stored strategies serialise identically"
    );
}
