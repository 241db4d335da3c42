//! Properties of the engine over random plans and backlogs, with the fixture ruleset.

use std::collections::BTreeSet;

use autopack_core::budget::defaults as budget;
use autopack_core::ids::{IssueKey, PhaseId, RunId, TierId};
use autopack_core::plan::{PhaseSpec, Plan, RunSpec, TierSpec};
use autopack_core::vocabulary::{
    BuilderMode, CiProfile, Complexity, HighRiskKind, IssueCategory, IssueStatus, SafetyProfile,
    Severity, TaskCategory,
};
use autopack_strategy::strategy::PhaseOrigin;
use autopack_strategy::{
    BacklogEntry, BacklogView, CompileOptions, Ruleset, Strategy as Compiled, compile,
};
use proptest::prelude::*;

const CATEGORIES: [&str; 14] = [
    "feature_scaffolding",
    "docs",
    "tests",
    "debt_cleanup",
    "cross_cutting_refactor",
    "index_registry_maintenance",
    "index_registry_change",
    "schema_change",
    "schema_contract_change",
    "bulk_operation",
    "bulk_multi_file_operation",
    "security_auth",
    "security_auth_change",
    "data_migration",
];
const MODES: [&str; 5] = [
    "tweak_light",
    "scaffolding_heavy",
    "refactor_heavy",
    "schema_heavy",
    "odd_mode",
];

fn ruleset() -> Ruleset {
    Ruleset::from_json(
        include_str!("data/project_ruleset_Autopack.json"),
        "fixture",
    )
    .unwrap()
}

#[derive(Debug, Clone)]
struct Input {
    plan: Plan,
    backlog: Vec<BacklogEntry>,
    options: CompileOptions,
    seed: u64,
}

fn complexity() -> impl proptest::strategy::Strategy<Value = Option<Complexity>> {
    prop::option::of(prop::sample::select(Complexity::ALL.to_vec()))
}

fn input() -> impl proptest::strategy::Strategy<Value = Input> {
    let phase = (
        0..CATEGORIES.len(),
        complexity(),
        prop::option::of(0..MODES.len()),
        0u32..40,
        0usize..4,
    );
    let entry = (
        0u32..60,
        any::<bool>(),
        any::<bool>(),
        0usize..3,
        0u32..6,
        0u32..6,
    );
    (
        1usize..=4,
        prop::collection::vec(phase, 0..30),
        prop::collection::vec(entry, 0..40),
        any::<bool>(),
        0u32..4,
        1u32..6,
        prop::option::of(1u32..40),
        any::<u64>(),
    )
        .prop_map(
            |(tiers, phases, entries, critical, max_cleanup, per_phase, max_phases, seed)| {
                let tier_specs = (0..tiers)
                    .map(|t| TierSpec {
                        tier_id: TierId::new(format!("t{t}")).unwrap(),
                        tier_index: (tiers - t) as u32 % 3,
                        name: format!("Tier {t}"),
                        description: String::new(),
                    })
                    .collect();
                let phase_specs = phases
                    .into_iter()
                    .enumerate()
                    .map(|(i, (cat, cx, mode, idx, tier))| PhaseSpec {
                        phase_id: PhaseId::new(if i == 0 {
                            "debt-cleanup-01".to_owned()
                        } else {
                            format!("p{i}")
                        })
                        .unwrap(),
                        phase_index: idx,
                        tier_id: TierId::new(format!("t{}", tier % tiers)).unwrap(),
                        name: format!("Phase {i}"),
                        description: String::new(),
                        task_category: TaskCategory::parse(CATEGORIES[cat]).unwrap(),
                        complexity: cx,
                        builder_mode: mode.map(|m| BuilderMode::parse(MODES[m]).unwrap()),
                        scope: Vec::new(),
                    })
                    .collect();
                let backlog = entries
                    .into_iter()
                    .map(|(k, major, hr, status, runs, tiers)| BacklogEntry {
                        issue_key: IssueKey::new(format!("k{k}")).unwrap(),
                        category: IssueCategory::new(if hr {
                            "schema_contract_change"
                        } else {
                            "test_failure"
                        })
                        .unwrap(),
                        base_severity: if major {
                            Severity::Major
                        } else {
                            Severity::Minor
                        },
                        status: [
                            IssueStatus::Open,
                            IssueStatus::NeedsCleanup,
                            IssueStatus::Resolved,
                        ][status],
                        age_in_runs: runs,
                        age_in_tiers: tiers,
                    })
                    .collect();
                Input {
                    plan: Plan {
                        run: RunSpec {
                            run_id: RunId::new("prop-run").unwrap(),
                            safety_profile: Some(if critical {
                                SafetyProfile::SafetyCritical
                            } else {
                                SafetyProfile::Normal
                            }),
                            run_scope: None,
                            token_cap: None,
                            max_phases,
                            max_duration_minutes: None,
                        },
                        tiers: tier_specs,
                        phases: phase_specs,
                    },
                    backlog,
                    options: CompileOptions {
                        max_cleanup_phases_per_run: max_cleanup,
                        cleanup_keys_per_phase: per_phase,
                        ..CompileOptions::default()
                    },
                    seed,
                }
            },
        )
}

fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (seed >> 33) as usize % (i + 1);
        v.swap(i, j);
    }
}

fn run(input: &Input) -> Compiled {
    compile(
        &ruleset(),
        &BacklogView::new(input.backlog.clone()),
        &input.plan,
        &input.options,
    )
    .unwrap()
}

/// Minor-issue multiplier of the fixture ruleset for a category.
fn minor_multiplier(cat: &TaskCategory) -> f64 {
    match cat.high_risk() {
        Some(HighRiskKind::SecurityAuth) => 0.5,
        Some(_) => 1.0,
        None => 2.0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn deterministic_whatever_the_input_order(input in input()) {
        let first = run(&input);
        let mut shuffled = input.clone();
        shuffle(&mut shuffled.plan.tiers, input.seed);
        shuffle(&mut shuffled.plan.phases, input.seed ^ 0x9e37);
        shuffle(&mut shuffled.backlog, input.seed ^ 0x7f4a);
        let second = run(&shuffled);
        prop_assert_eq!(first.to_json(), second.to_json());
    }

    #[test]
    fn every_phase_gets_exactly_one_slice(input in input()) {
        let s = run(&input);
        let planned: BTreeSet<_> = input.plan.phases.iter().map(|p| p.phase_id.clone()).collect();
        let inserted: BTreeSet<_> = s.inserted_phases.iter().map(|p| p.phase_id.clone()).collect();
        prop_assert!(planned.is_disjoint(&inserted));
        let slices: BTreeSet<_> = s.phase_strategies.keys().cloned().collect();
        prop_assert_eq!(&slices, &planned.union(&inserted).cloned().collect::<BTreeSet<_>>());
        // Each slice sits in exactly one tier's list, the one it names.
        let mut listed = Vec::new();
        for tier in s.tier_strategies.values() {
            for id in &tier.phase_ids {
                prop_assert_eq!(&s.phase_strategies[id].tier_id, &tier.tier_id);
                listed.push(id.clone());
            }
        }
        prop_assert_eq!(listed.len(), slices.len());
        prop_assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), slices);
        for p in &input.plan.phases {
            let slice = &s.phase_strategies[&p.phase_id];
            prop_assert_eq!(slice.origin, PhaseOrigin::Plan);
            prop_assert_eq!(&slice.tier_id, &p.tier_id);
            prop_assert_eq!(&slice.task_category, &p.task_category);
        }
    }

    #[test]
    fn tier_caps_equal_the_formulas(input in input()) {
        let s = run(&input);
        let critical = s.safety_profile == SafetyProfile::SafetyCritical;
        for tier in s.tier_strategies.values() {
            let phases: Vec<_> = tier.phase_ids.iter().map(|id| &s.phase_strategies[id]).collect();
            let incident: u64 = phases.iter().map(|p| p.incident_token_cap).sum();
            prop_assert_eq!(tier.token_cap, 3 * incident);
            prop_assert_eq!(tier.ci_run_cap, 2 * phases.len() as u32);
            let ceiling = if critical { 1.0 } else { f64::INFINITY };
            let minor: f64 = phases.iter().map(|p| minor_multiplier(&p.task_category).min(ceiling)).sum();
            prop_assert_eq!(tier.max_minor_issues_tolerated, minor.floor() as u32);
            prop_assert_eq!(tier.max_major_issues_tolerated, 0);
        }
        let total = s.phase_strategies.len() as u32;
        prop_assert_eq!(s.run_max_minor_issues_total, total * budget::RUN_MINOR_ISSUES_PER_PHASE);
    }

    #[test]
    fn high_risk_phases_are_strict_high_and_not_auto_applied(input in input()) {
        let s = run(&input);
        let critical = s.safety_profile == SafetyProfile::SafetyCritical;
        for p in s.phase_strategies.values() {
            prop_assert_eq!(p.high_risk, p.task_category.high_risk().is_some());
            if p.high_risk {
                prop_assert_eq!(p.complexity, Complexity::High);
                prop_assert_eq!(p.ci_profile, CiProfile::Strict);
                prop_assert!(!p.auto_apply);
            }
            if critical && s.tier_strategies[&p.tier_id].high_risk {
                prop_assert_eq!(p.ci_profile, CiProfile::Strict);
            }
            if p.complexity == Complexity::High {
                prop_assert_eq!(p.ci_profile, CiProfile::Strict);
            }
            if p.origin == PhaseOrigin::DebtCleanup {
                prop_assert!(!p.auto_apply);
            }
        }
    }

    #[test]
    fn cleanup_never_passes_max_phases(input in input()) {
        let s = run(&input);
        let planned = input.plan.phases.len() as u32;
        let inserted = s.inserted_phases.len() as u32;
        prop_assert!(inserted <= input.options.max_cleanup_phases_per_run);
        if planned <= s.run_max_phases {
            prop_assert!(planned + inserted <= s.run_max_phases);
        } else {
            prop_assert_eq!(inserted, 0);
        }
        // Every inserted phase carries between 1 and cleanup_keys_per_phase distinct keys.
        let mut keys = BTreeSet::new();
        for spec in &s.inserted_phases {
            let slice = &s.phase_strategies[&spec.phase_id];
            prop_assert!(!slice.cleanup_issue_keys.is_empty());
            prop_assert!(slice.cleanup_issue_keys.len() as u32 <= input.options.cleanup_keys_per_phase);
            for k in &slice.cleanup_issue_keys {
                prop_assert!(keys.insert(k.clone()), "key {} scheduled twice", k);
            }
        }
    }
}
