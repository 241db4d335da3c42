//! Plan validation: every rule, reported all at once, by JSON path and id.

use autopack_core::RunId;
use autopack_core::budget::defaults;
use autopack_core::ids::{PhaseId, TierId};
use autopack_core::plan::{
    PhaseSpec, Plan, PlanError, PlanProblem, PlanProblemKind, RunSpec, TierSpec,
};
use autopack_core::vocabulary::{RunScope, TaskCategory};

fn tier(id: &str, index: u32) -> TierSpec {
    TierSpec {
        tier_id: TierId::new(id).unwrap(),
        tier_index: index,
        name: format!("Tier {id}"),
        description: String::new(),
    }
}

fn phase(id: &str, index: u32, tier: &str) -> PhaseSpec {
    PhaseSpec {
        phase_id: PhaseId::new(id).unwrap(),
        phase_index: index,
        tier_id: TierId::new(tier).unwrap(),
        name: format!("Phase {id}"),
        description: String::new(),
        task_category: TaskCategory::Docs,
        complexity: None,
        builder_mode: None,
        scope: Vec::new(),
    }
}

fn run() -> RunSpec {
    RunSpec {
        run_id: RunId::new("run-1").unwrap(),
        safety_profile: None,
        run_scope: None,
        token_cap: None,
        max_phases: None,
        max_duration_minutes: None,
    }
}

/// Two tiers (t1 at index 0, t2 at index 1), listed out of order, with phases out of order.
fn good() -> Plan {
    Plan {
        run: run(),
        tiers: vec![tier("t2", 1), tier("t1", 0)],
        phases: vec![
            phase("p3", 30, "t2"),
            phase("p1", 10, "t1"),
            phase("p2", 20, "t1"),
        ],
    }
}

fn problems(plan: &Plan) -> Vec<PlanProblem> {
    plan.validate().expect_err("plan should be invalid").0
}

fn only(plan: &Plan) -> PlanProblem {
    let mut all = problems(plan);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

#[test]
fn a_good_plan_validates() {
    good().validate().unwrap();
    let mut single = good();
    single.run.run_scope = Some(RunScope::SingleTier);
    single.tiers.retain(|t| t.tier_id.as_str() == "t1");
    single.phases.retain(|p| p.tier_id.as_str() == "t1");
    single.validate().unwrap();
}

#[test]
fn helpers_order_tiers_and_phases() {
    let plan = good();
    let tiers: Vec<&str> = plan
        .tiers_in_order()
        .iter()
        .map(|t| t.tier_id.as_str())
        .collect();
    assert_eq!(tiers, ["t1", "t2"]);
    let phases: Vec<&str> = plan
        .phases_in_order()
        .iter()
        .map(|p| p.phase_id.as_str())
        .collect();
    assert_eq!(phases, ["p1", "p2", "p3"]);
    let t1 = TierId::new("t1").unwrap();
    let of: Vec<&str> = plan
        .phases_of(&t1)
        .iter()
        .map(|p| p.phase_id.as_str())
        .collect();
    assert_eq!(of, ["p1", "p2"]);
    assert_eq!(plan.tier(&t1).unwrap().tier_index, 0);
    assert!(plan.tier(&TierId::new("nope").unwrap()).is_none());
    assert_eq!(
        plan.phase(&PhaseId::new("p3").unwrap())
            .unwrap()
            .phase_index,
        30
    );
    assert_eq!(plan.max_phases(), defaults::RUN_MAX_PHASES);
    let mut capped = plan;
    capped.run.max_phases = Some(7);
    assert_eq!(capped.max_phases(), 7);
}

#[test]
fn phases_of_unknown_tiers_sort_last() {
    let mut plan = good();
    plan.phases.push(phase("p0", 0, "ghost"));
    let phases: Vec<&str> = plan
        .phases_in_order()
        .iter()
        .map(|p| p.phase_id.as_str())
        .collect();
    assert_eq!(phases, ["p1", "p2", "p3", "p0"]);
}

#[test]
fn duplicate_tier_id() {
    let mut plan = good();
    plan.tiers.push(tier("t1", 5));
    let p = only(&plan);
    assert_eq!(p.path, "tiers[2].tier_id");
    assert_eq!(p.id.as_deref(), Some("t1"));
    assert_eq!(
        p.kind,
        PlanProblemKind::DuplicateTierId {
            tier_id: TierId::new("t1").unwrap(),
            first: "tiers[1]".into()
        }
    );
}

#[test]
fn duplicate_phase_id() {
    let mut plan = good();
    plan.phases.push(phase("p1", 40, "t2"));
    let p = only(&plan);
    assert_eq!(p.path, "phases[3].phase_id");
    assert_eq!(p.id.as_deref(), Some("p1"));
    assert!(
        matches!(p.kind, PlanProblemKind::DuplicatePhaseId { ref first, .. } if first == "phases[1]")
    );
}

#[test]
fn duplicate_tier_index() {
    let mut plan = good();
    plan.tiers.push(tier("t3", 1));
    plan.phases.push(phase("p4", 40, "t3"));
    let p = only(&plan);
    assert_eq!(p.path, "tiers[2].tier_index");
    assert_eq!(p.id.as_deref(), Some("t3"));
    assert_eq!(
        p.kind,
        PlanProblemKind::DuplicateTierIndex {
            tier_index: 1,
            first: TierId::new("t2").unwrap()
        }
    );
}

#[test]
fn duplicate_phase_index() {
    let mut plan = good();
    plan.phases.push(phase("p4", 30, "t2"));
    let p = only(&plan);
    assert_eq!(p.path, "phases[3].phase_index");
    assert_eq!(
        p.kind,
        PlanProblemKind::DuplicatePhaseIndex {
            phase_index: 30,
            first: PhaseId::new("p3").unwrap()
        }
    );
}

#[test]
fn phase_pointing_at_a_missing_tier() {
    let mut plan = good();
    plan.phases.push(phase("p4", 40, "t9"));
    let p = only(&plan);
    assert_eq!(p.path, "phases[3].tier_id");
    assert_eq!(p.id.as_deref(), Some("p4"));
    assert_eq!(
        p.kind,
        PlanProblemKind::UnknownTier {
            tier_id: TierId::new("t9").unwrap()
        }
    );
    assert_eq!(
        p.to_string(),
        "phases[3].tier_id (p4): tier \"t9\" is not in the plan's tiers"
    );
}

#[test]
fn phase_order_must_follow_tier_order() {
    let mut plan = good();
    // p3 belongs to t2 (the later tier) but comes before p2 of t1.
    plan.phases[0].phase_index = 15;
    let p = only(&plan);
    assert_eq!(p.path, "phases[0].phase_index");
    assert_eq!(p.id.as_deref(), Some("p3"));
    assert_eq!(
        p.kind,
        PlanProblemKind::PhaseBeforeEarlierTier {
            phase_index: 15,
            tier_id: TierId::new("t2").unwrap(),
            earlier_phase: PhaseId::new("p2").unwrap(),
            earlier_phase_index: 20,
            earlier_tier: TierId::new("t1").unwrap(),
        }
    );
}

#[test]
fn interleaved_tiers_are_reported_once_per_phase() {
    let plan = Plan {
        run: run(),
        tiers: vec![tier("a", 0), tier("b", 1), tier("c", 2)],
        phases: vec![
            phase("a1", 0, "a"),
            phase("a2", 5, "a"),
            phase("b1", 1, "b"),
            phase("b2", 6, "b"),
            phase("c1", 2, "c"),
            phase("c2", 7, "c"),
        ],
    };
    let all = problems(&plan);
    let paths: Vec<&str> = all.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["phases[2].phase_index", "phases[4].phase_index"]);
    // c1 is compared with the largest index of all earlier tiers (b2).
    assert!(
        matches!(&all[1].kind, PlanProblemKind::PhaseBeforeEarlierTier { earlier_phase, .. } if earlier_phase.as_str() == "b2")
    );
}

#[test]
fn single_tier_with_several_tiers() {
    let mut plan = good();
    plan.run.run_scope = Some(RunScope::SingleTier);
    let p = only(&plan);
    assert_eq!(p.path, "run.run_scope");
    assert_eq!(p.id.as_deref(), Some("run-1"));
    assert_eq!(
        p.kind,
        PlanProblemKind::SingleTierWithSeveralTiers { tiers: 2 }
    );
}

#[test]
fn too_many_phases_points_to_the_splitter() {
    let mut plan = good();
    plan.run.max_phases = Some(2);
    let err = plan.validate().unwrap_err();
    assert!(err.needs_split_only());
    let p = &err.0[0];
    assert_eq!(p.path, "phases");
    assert_eq!(
        p.kind,
        PlanProblemKind::TooManyPhases {
            phases: 3,
            max_phases: 2
        }
    );
    assert!(p.to_string().contains("autopack_core::plan::split"), "{p}");
    plan.validate_structure().unwrap();
}

#[test]
fn default_max_phases_applies() {
    let mut plan = Plan {
        run: run(),
        tiers: vec![tier("t", 0)],
        phases: Vec::new(),
    };
    for i in 0..=defaults::RUN_MAX_PHASES {
        plan.phases.push(phase(&format!("p{i}"), i, "t"));
    }
    let p = only(&plan);
    assert_eq!(
        p.kind,
        PlanProblemKind::TooManyPhases {
            phases: 26,
            max_phases: 25
        }
    );
    plan.phases.pop();
    plan.validate().unwrap();
}

#[test]
fn zero_caps() {
    let mut plan = good();
    plan.run.token_cap = Some(0);
    plan.run.max_phases = Some(0);
    plan.run.max_duration_minutes = Some(0);
    let all = problems(&plan);
    let paths: Vec<&str> = all.iter().map(|p| p.path.as_str()).collect();
    // No "too many phases" on top of a zero max_phases.
    assert_eq!(
        paths,
        [
            "run.token_cap",
            "run.max_phases",
            "run.max_duration_minutes"
        ]
    );
    assert_eq!(
        all[1].kind,
        PlanProblemKind::ZeroCap {
            field: "max_phases"
        }
    );
    assert_eq!(
        all[1].to_string(),
        "run.max_phases (run-1): max_phases must be at least 1"
    );
}

#[test]
fn empty_tier_is_a_problem() {
    let mut plan = good();
    plan.tiers.push(tier("t3", 2));
    let p = only(&plan);
    assert_eq!(p.path, "tiers[2]");
    assert_eq!(p.id.as_deref(), Some("t3"));
    assert_eq!(
        p.kind,
        PlanProblemKind::EmptyTier {
            tier_id: TierId::new("t3").unwrap()
        }
    );
}

#[test]
fn empty_plan_is_a_problem() {
    let plan = Plan {
        run: run(),
        tiers: Vec::new(),
        phases: Vec::new(),
    };
    let p = only(&plan);
    assert_eq!(p.path, "phases");
    assert_eq!(p.kind, PlanProblemKind::NoPhases);
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut plan = good();
    plan.run.token_cap = Some(0);
    plan.run.run_scope = Some(RunScope::SingleTier);
    plan.tiers.push(tier("t1", 1)); // duplicate id and duplicate index
    plan.tiers.push(tier("empty", 9));
    plan.phases.push(phase("p1", 10, "t9")); // duplicate id, duplicate index, missing tier
    plan.phases.push(phase("p5", 5, "t2")); // before p1/p2 of t1
    let err = plan.validate().unwrap_err();
    let kinds: Vec<(String, &'static str)> = err
        .problems()
        .iter()
        .map(|p| {
            let name = match p.kind {
                PlanProblemKind::ZeroCap { .. } => "zero_cap",
                PlanProblemKind::SingleTierWithSeveralTiers { .. } => "single_tier",
                PlanProblemKind::DuplicateTierId { .. } => "dup_tier_id",
                PlanProblemKind::DuplicateTierIndex { .. } => "dup_tier_index",
                PlanProblemKind::EmptyTier { .. } => "empty_tier",
                PlanProblemKind::DuplicatePhaseId { .. } => "dup_phase_id",
                PlanProblemKind::DuplicatePhaseIndex { .. } => "dup_phase_index",
                PlanProblemKind::UnknownTier { .. } => "unknown_tier",
                PlanProblemKind::PhaseBeforeEarlierTier { .. } => "order",
                _ => "other",
            };
            (p.path.clone(), name)
        })
        .collect();
    let expected: Vec<(String, &str)> = [
        ("run.token_cap", "zero_cap"),
        ("run.run_scope", "single_tier"),
        ("tiers[2].tier_id", "dup_tier_id"),
        ("tiers[2].tier_index", "dup_tier_index"),
        ("tiers[3]", "empty_tier"),
        ("phases[3].phase_id", "dup_phase_id"),
        ("phases[3].phase_index", "dup_phase_index"),
        ("phases[3].tier_id", "unknown_tier"),
        ("phases[4].phase_index", "order"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b))
    .collect();
    assert_eq!(kinds, expected);
    let text = err.to_string();
    assert!(
        text.starts_with("invalid plan: 9 problems\n  - run.token_cap (run-1): "),
        "{text}"
    );
}

const GOOD_JSON: &str = r#"{
  "run": {"run_id": "run-1", "safety_profile": "normal", "run_scope": "multi_tier",
          "token_cap": 1000000, "max_phases": 10, "max_duration_minutes": 60},
  "tiers": [{"tier_id": "t1", "tier_index": 0, "name": "Fondations · base", "description": "x"}],
  "phases": [{"phase_id": "p1", "phase_index": 0, "tier_id": "t1", "name": "Models",
              "description": "d", "task_category": "schema_contract_change",
              "complexity": "high", "builder_mode": "schema_heavy", "scope": ["src/**"]}]
}"#;

#[test]
fn from_json_reads_and_validates() {
    let plan = Plan::from_json(GOOD_JSON, "plan.json").unwrap();
    assert_eq!(plan.phases[0].task_category.as_str(), "schema_change");
    assert_eq!(plan.max_phases(), 10);
}

#[test]
fn from_json_names_the_bad_run_scope() {
    let text = GOOD_JSON.replace("\"multi_tier\"", "\"incremental\"");
    let err = Plan::from_json(&text, "plan.json").unwrap_err();
    let PlanError::Json(json) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(json.path, "run.run_scope");
    assert_eq!(json.source_name, "plan.json");
    assert!(json.message.contains("incremental"), "{}", json.message);
    assert!(
        err.to_string().starts_with("plan.json: run.run_scope: "),
        "{err}"
    );
    assert!(err.problems().is_none());
}

#[test]
fn from_json_names_bad_ids_and_unknown_fields() {
    let text = GOOD_JSON.replace("\"phase_id\": \"p1\"", "\"phase_id\": \"../p1\"");
    let err = Plan::from_json(&text, "plan.json").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("plan.json: phases[0].phase_id: invalid phase_id"),
        "{err}"
    );
    let text = GOOD_JSON.replace("\"token_cap\"", "\"token_limit\"");
    let err = Plan::from_json(&text, "plan.json").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("plan.json: run.token_limit: unknown field"),
        "{err}"
    );
}

#[test]
fn from_json_reports_rule_problems_with_the_source() {
    let text = GOOD_JSON.replace(
        "\"tier_id\": \"t1\", \"name\": \"Models\"",
        "\"tier_id\": \"t2\", \"name\": \"Models\"",
    );
    let err = Plan::from_json(&text, "plan.json").unwrap_err();
    let problems = err.problems().unwrap();
    assert_eq!(problems.len(), 2, "{problems:#?}"); // t1 is now empty, p1 points at t2
    assert_eq!(problems[0].path, "tiers[0]");
    assert_eq!(problems[1].path, "phases[0].tier_id");
    assert!(
        err.to_string()
            .starts_with("plan.json: invalid plan: 2 problems"),
        "{err}"
    );
}

#[test]
fn plan_round_trips_through_json() {
    let plan = Plan::from_json(GOOD_JSON, "plan.json").unwrap();
    let text = serde_json::to_string(&plan).unwrap();
    assert_eq!(Plan::from_json(&text, "again").unwrap(), plan);
}
