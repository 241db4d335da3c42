//! The plan splitter: unit cases and properties over random valid plans.

use autopack_core::RunId;
use autopack_core::ids::{IdRule, MAX_ID_LEN, PhaseId, TierId};
use autopack_core::plan::{PhaseSpec, Plan, PlanProblemKind, RunSpec, SplitError, TierSpec, split};
use autopack_core::vocabulary::{RunScope, TaskCategory};
use proptest::prelude::*;

fn tier(id: &str, index: u32) -> TierSpec {
    TierSpec {
        tier_id: TierId::new(id).unwrap(),
        tier_index: index,
        name: format!("Tier «{id}»"),
        description: "d".into(),
    }
}

fn phase(id: &str, index: u32, tier: &str) -> PhaseSpec {
    PhaseSpec {
        phase_id: PhaseId::new(id).unwrap(),
        phase_index: index,
        tier_id: TierId::new(tier).unwrap(),
        name: format!("Phase {id}"),
        description: String::new(),
        task_category: TaskCategory::Tests,
        complexity: None,
        builder_mode: None,
        scope: Vec::new(),
    }
}

fn run(id: &str) -> RunSpec {
    RunSpec {
        run_id: RunId::new(id).unwrap(),
        safety_profile: None,
        run_scope: None,
        token_cap: Some(1_000),
        max_phases: None,
        max_duration_minutes: None,
    }
}

/// A plan whose tiers hold `sizes[i]` phases each, numbered consecutively.
fn plan_with(sizes: &[usize]) -> Plan {
    let mut plan = Plan {
        run: run("big"),
        tiers: Vec::new(),
        phases: Vec::new(),
    };
    let mut next = 0u32;
    for (t, &size) in sizes.iter().enumerate() {
        let tid = format!("t{t}");
        plan.tiers.push(tier(&tid, t as u32));
        for _ in 0..size {
            plan.phases.push(phase(&format!("p{next}"), next, &tid));
            next += 1;
        }
    }
    plan
}

fn shape(parts: &[Plan]) -> Vec<Vec<(String, usize)>> {
    parts
        .iter()
        .map(|part| {
            part.tiers_in_order()
                .iter()
                .map(|t| (t.tier_id.to_string(), part.phases_of(&t.tier_id).len()))
                .collect()
        })
        .collect()
}

fn s(tier: &str, n: usize) -> (String, usize) {
    (tier.to_owned(), n)
}

#[test]
fn a_plan_within_the_cap_comes_back_whole() {
    let mut plan = plan_with(&[2, 3]);
    plan.tiers.reverse(); // document order is kept as it was
    let parts = split(&plan, 5).unwrap();
    assert_eq!(parts.len(), 1);
    let mut expected = plan.clone();
    expected.run.max_phases = Some(5);
    assert_eq!(parts[0], expected);
    assert_eq!(parts[0].run.run_id.as_str(), "big");
}

#[test]
fn whole_tiers_are_packed_greedily() {
    let parts = split(&plan_with(&[2, 2, 3, 1, 4]), 4).unwrap();
    assert_eq!(
        shape(&parts),
        vec![
            vec![s("t0", 2), s("t1", 2)],
            vec![s("t2", 3), s("t3", 1)],
            vec![s("t4", 4)]
        ]
    );
    let ids: Vec<&str> = parts.iter().map(|p| p.run.run_id.as_str()).collect();
    assert_eq!(ids, ["big-part-01", "big-part-02", "big-part-03"]);
    for part in &parts {
        assert_eq!(part.run.max_phases, Some(4));
        assert_eq!(
            part.run.token_cap,
            Some(1_000),
            "other run settings are kept"
        );
        part.validate().unwrap();
    }
}

#[test]
fn an_oversized_tier_is_cut_into_consecutive_chunks() {
    let parts = split(&plan_with(&[1, 7, 1]), 3).unwrap();
    assert_eq!(
        shape(&parts),
        vec![
            vec![s("t0", 1)],
            vec![s("t1", 3)],
            vec![s("t1", 3)],
            vec![s("t1", 1), s("t2", 1)]
        ]
    );
    // Each chunk carries the tier unchanged.
    for part in &parts[1..] {
        assert_eq!(part.tiers[0], tier("t1", 1));
    }
    let indices: Vec<Vec<u32>> = parts
        .iter()
        .map(|p| p.phases.iter().map(|ph| ph.phase_index).collect())
        .collect();
    assert_eq!(
        indices,
        vec![vec![0], vec![1, 2, 3], vec![4, 5, 6], vec![7, 8]]
    );
}

#[test]
fn a_single_tier_plan_is_chunked_and_stays_single_tier() {
    let mut plan = plan_with(&[5]);
    plan.run.run_scope = Some(RunScope::SingleTier);
    let parts = split(&plan, 2).unwrap();
    assert_eq!(
        shape(&parts),
        vec![vec![s("t0", 2)], vec![s("t0", 2)], vec![s("t0", 1)]]
    );
    for part in &parts {
        part.validate().unwrap();
    }
}

#[test]
fn plan_split_uses_its_own_cap() {
    let mut plan = plan_with(&[3, 3]);
    plan.run.max_phases = Some(4);
    assert!(plan.validate().unwrap_err().needs_split_only());
    let parts = plan.split().unwrap();
    assert_eq!(parts.len(), 2);
}

#[test]
fn zero_cap_is_refused() {
    assert_eq!(split(&plan_with(&[1]), 0), Err(SplitError::ZeroCap));
}

#[test]
fn invalid_plans_are_refused_with_every_problem() {
    let mut plan = plan_with(&[2, 2]);
    plan.phases.push(phase("p9", 9, "ghost"));
    plan.tiers.push(tier("empty", 7));
    let Err(SplitError::Invalid(errors)) = split(&plan, 2) else {
        panic!("should be refused")
    };
    assert_eq!(errors.len(), 2);
    assert!(matches!(
        errors.0[0].kind,
        PlanProblemKind::EmptyTier { .. }
    ));
    assert!(matches!(
        errors.0[1].kind,
        PlanProblemKind::UnknownTier { .. }
    ));
}

#[test]
fn an_overlong_part_run_id_is_an_error() {
    let mut plan = plan_with(&[1, 1]);
    plan.run.run_id = RunId::new("r".repeat(MAX_ID_LEN - 3)).unwrap();
    // Fits: no derived id needed.
    assert_eq!(split(&plan, 2).unwrap().len(), 1);
    let err = split(&plan, 1).unwrap_err();
    let SplitError::PartRunId { part, source } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*part, 1);
    assert!(matches!(source.rule, IdRule::TooLong { .. }));
    assert!(err.to_string().contains("part 1"), "{err}");
}

#[test]
fn many_parts_keep_counting() {
    let parts = split(&plan_with(&[120]), 1).unwrap();
    assert_eq!(parts.len(), 120);
    assert_eq!(parts[8].run.run_id.as_str(), "big-part-09");
    assert_eq!(parts[119].run.run_id.as_str(), "big-part-120");
}

/// A random valid plan: 1..6 tiers of 1..9 phases, indices increasing with random gaps,
/// tier and phase vectors shuffled, random scope.
fn arb_plan() -> impl Strategy<Value = Plan> {
    (
        prop::collection::vec(1usize..9, 1..6),
        prop::collection::vec(1u32..4, 60),
        prop::collection::vec(1u32..4, 6),
        any::<u64>(),
    )
        .prop_map(|(sizes, phase_gaps, tier_gaps, seed)| {
            let mut plan = Plan {
                run: run("prop-run"),
                tiers: Vec::new(),
                phases: Vec::new(),
            };
            let mut phase_index = 0u32;
            let mut tier_index = 0u32;
            let mut gap = phase_gaps.iter().cycle();
            for (t, &size) in sizes.iter().enumerate() {
                tier_index += tier_gaps[t];
                let tid = format!("tier-{t}");
                plan.tiers.push(tier(&tid, tier_index));
                for k in 0..size {
                    phase_index += gap.next().copied().unwrap_or(1);
                    plan.phases
                        .push(phase(&format!("ph-{t}-{k}"), phase_index, &tid));
                }
            }
            if sizes.len() == 1 && seed % 2 == 0 {
                plan.run.run_scope = Some(RunScope::SingleTier);
            }
            // Deterministic shuffles from the seed.
            shuffle(&mut plan.tiers, seed);
            shuffle(&mut plan.phases, seed.rotate_left(17));
            plan
        })
}

fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (seed >> 33) as usize % (i + 1);
        items.swap(i, j);
    }
}

proptest! {
    #[test]
    fn generated_plans_are_valid(plan in arb_plan()) {
        prop_assert!(plan.validate_structure().is_ok(), "{:?}", plan.validate_structure());
    }

    #[test]
    fn split_parts_are_valid_within_the_cap_and_cover_the_input(plan in arb_plan(), cap in 1u32..12) {
        let parts = split(&plan, cap).unwrap();
        let fits = plan.phases.len() <= cap as usize;
        if fits {
            prop_assert_eq!(parts.len(), 1);
            let mut expected = plan.clone();
            expected.run.max_phases = Some(cap);
            prop_assert_eq!(&parts[0], &expected);
        }
        let mut concatenated: Vec<&PhaseSpec> = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            prop_assert!(part.validate().is_ok(), "part {} invalid: {:?}", i, part.validate());
            prop_assert!(part.phases.len() <= cap as usize);
            prop_assert_eq!(part.run.max_phases, Some(cap));
            if !fits {
                prop_assert_eq!(part.run.run_id.to_string(), format!("prop-run-part-{:02}", i + 1));
            }
            concatenated.extend(part.phases_in_order());
        }
        prop_assert_eq!(concatenated, plan.phases_in_order());
    }

    #[test]
    fn whole_tiers_stay_together_when_they_fit(plan in arb_plan(), cap in 1u32..12) {
        let parts = split(&plan, cap).unwrap();
        for t in plan.tiers_in_order() {
            let n = plan.phases_of(&t.tier_id).len();
            let holding = parts.iter().filter(|p| p.tier(&t.tier_id).is_some()).count();
            if n <= cap as usize {
                prop_assert_eq!(holding, 1, "tier {} split although it fits", t.tier_id);
            } else {
                prop_assert_eq!(holding, n.div_ceil(cap as usize));
            }
        }
    }
}
