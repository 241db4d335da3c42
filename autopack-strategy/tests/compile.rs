//! The StrategyEngine over the first implementation's ruleset and backlog: snapshots of the
//! compiled strategy under `normal` and `safety_critical`, and the rules one by one.

use autopack_core::plan::Plan;
use autopack_core::vocabulary::{CiProfile, Complexity, IssueStatus, SafetyProfile, Severity};
use autopack_strategy::strategy::{CleanupLimit, DefaultsSource, PhaseOrigin, UpgradeReason};
use autopack_strategy::{
    BacklogView, CompileError, CompileOptions, Diagnostic, Ruleset, Strategy, compile, dry_run,
    strategy_file_name,
};

const RULESET: &str = include_str!("data/project_ruleset_Autopack.json");
const BACKLOG: &str = include_str!("data/project_issue_backlog.json");

/// Three tiers: one phase of each high-risk kind (under either name), and normal phases.
const PLAN: &str = r#"{
  "run": {"run_id": "snapshot-run", "run_scope": "multi_tier"},
  "tiers": [
    {"tier_id": "t-foundation", "tier_index": 0, "name": "Foundation"},
    {"tier_id": "t-core", "tier_index": 1, "name": "Core features", "description": "the meat"},
    {"tier_id": "t-docs", "tier_index": 2, "name": "Docs & polish"}
  ],
  "phases": [
    {"phase_id": "p-scaffold", "phase_index": 0, "tier_id": "t-foundation", "name": "Scaffold",
     "task_category": "feature_scaffolding", "builder_mode": "scaffolding_heavy", "scope": ["src/**"]},
    {"phase_id": "p-schema", "phase_index": 1, "tier_id": "t-foundation", "name": "Schema",
     "task_category": "schema_change", "complexity": "low"},
    {"phase_id": "p-index", "phase_index": 2, "tier_id": "t-foundation", "name": "Index",
     "task_category": "index_registry_maintenance"},
    {"phase_id": "p-refactor", "phase_index": 3, "tier_id": "t-core", "name": "Refactor",
     "task_category": "cross_cutting_refactor", "complexity": "medium"},
    {"phase_id": "p-bulk", "phase_index": 4, "tier_id": "t-core", "name": "Bulk rename",
     "task_category": "bulk_multi_file_operation"},
    {"phase_id": "p-auth", "phase_index": 5, "tier_id": "t-core", "name": "Auth",
     "task_category": "security_auth"},
    {"phase_id": "p-tests", "phase_index": 6, "tier_id": "t-core", "name": "Tests",
     "task_category": "tests", "builder_mode": "yolo_mode"},
    {"phase_id": "p-docs", "phase_index": 7, "tier_id": "t-docs", "name": "Docs",
     "task_category": "docs"},
    {"phase_id": "p-migrate", "phase_index": 8, "tier_id": "t-docs", "name": "Migrate data",
     "task_category": "data_migration", "complexity": "high"},
    {"phase_id": "debt-cleanup-01", "phase_index": 9, "tier_id": "t-docs", "name": "Planned cleanup",
     "task_category": "debt_cleanup"}
  ]
}"#;

fn plan() -> Plan {
    autopack_core::json::from_str(PLAN, "plan.json").unwrap()
}
fn ruleset() -> Ruleset {
    Ruleset::from_json(RULESET, "project_ruleset_Autopack.json").unwrap()
}
fn backlog() -> BacklogView {
    BacklogView::from_project_backlog_json(BACKLOG, "project_issue_backlog.json").unwrap()
}
fn compile_with(safety: SafetyProfile) -> Strategy {
    let options = CompileOptions {
        safety_profile: Some(safety),
        ..CompileOptions::default()
    };
    compile(&ruleset(), &backlog(), &plan(), &options).unwrap()
}

#[test]
fn snapshot_normal() {
    let s = compile_with(SafetyProfile::Normal);
    insta::assert_snapshot!("strategy_normal_json", s.to_json());
    insta::assert_snapshot!("strategy_normal_text", s.render_text());
}

#[test]
fn snapshot_safety_critical() {
    let s = compile_with(SafetyProfile::SafetyCritical);
    insta::assert_snapshot!("strategy_safety_critical_json", s.to_json());
}

#[test]
fn high_risk_phases_are_high_strict_and_need_approval() {
    for safety in [SafetyProfile::Normal, SafetyProfile::SafetyCritical] {
        let s = compile_with(safety);
        for id in ["p-schema", "p-index", "p-refactor", "p-bulk", "p-auth"] {
            let p = s.phase(&id.parse().unwrap()).unwrap();
            assert!(p.high_risk, "{id}");
            assert_eq!(p.complexity, Complexity::High, "{id}");
            assert_eq!(p.ci_profile, CiProfile::Strict, "{id}");
            assert!(!p.auto_apply, "{id}");
            assert_eq!(p.default_severity, Severity::Major, "{id}");
            assert!(p.auditor_profile.is_some(), "{id}");
        }
        assert_eq!(
            s.phase(&"p-bulk".parse().unwrap())
                .unwrap()
                .max_builder_attempts,
            1
        );
        assert_eq!(
            s.phase(&"p-auth".parse().unwrap())
                .unwrap()
                .auditor_profile
                .as_deref(),
            Some("security_review")
        );
    }
}

#[test]
fn ci_profile_follows_the_spec() {
    let normal = compile_with(SafetyProfile::Normal);
    let critical = compile_with(SafetyProfile::SafetyCritical);
    let ci = |s: &Strategy, id: &str| s.phase(&id.parse().unwrap()).unwrap().ci_profile;
    // Normal phase in a tier holding high-risk work: strict only under safety_critical.
    assert_eq!(ci(&normal, "p-scaffold"), CiProfile::Normal);
    assert_eq!(ci(&critical, "p-scaffold"), CiProfile::Strict);
    assert_eq!(ci(&critical, "p-tests"), CiProfile::Strict);
    // No high-risk phase in t-docs: normal phases stay normal; high complexity is strict.
    assert_eq!(ci(&critical, "p-docs"), CiProfile::Normal);
    assert_eq!(ci(&normal, "p-migrate"), CiProfile::Strict);
    assert_eq!(
        normal
            .phase(&"p-docs".parse().unwrap())
            .unwrap()
            .ci_max_retries,
        2
    );
    assert_eq!(
        normal
            .phase(&"p-schema".parse().unwrap())
            .unwrap()
            .ci_max_retries,
        1
    );
}

#[test]
fn diagnostics_report_fallbacks_modes_and_raises() {
    let s = compile_with(SafetyProfile::Normal);
    let d = &s.diagnostics;
    assert!(d.contains(&Diagnostic::CategoryFellBack {
        phase_id: "p-migrate".parse().unwrap(),
        task_category: "data_migration".parse().unwrap(),
    }));
    assert!(d.iter().any(|x| matches!(x, Diagnostic::UnknownBuilderMode { phase_id, .. } if phase_id.as_str() == "p-tests")));
    assert!(d.contains(&Diagnostic::HighRiskComplexityRaised {
        phase_id: "p-schema".parse().unwrap(),
        planned: Complexity::Low,
    }));
    assert!(d.contains(&Diagnostic::HighRiskComplexityRaised {
        phase_id: "p-refactor".parse().unwrap(),
        planned: Complexity::Medium,
    }));
    let migrate = s.phase(&"p-migrate".parse().unwrap()).unwrap();
    assert_eq!(migrate.defaults_source, DefaultsSource::Fallback);
    assert_eq!(
        s.phase(&"p-docs".parse().unwrap()).unwrap().defaults_source,
        DefaultsSource::Ruleset
    );
}

#[test]
fn aging_upgrades_follow_the_safety_profile_thresholds() {
    // test_issue: minor, open, 1 run / 1 tier: aged only under safety_critical (tiers 1).
    let normal = compile_with(SafetyProfile::Normal);
    let critical = compile_with(SafetyProfile::SafetyCritical);
    let find = |s: &Strategy, key: &str| {
        s.effective_severity_upgrades
            .iter()
            .find(|u| u.issue_key.as_str() == key)
            .cloned()
    };
    assert_eq!(find(&normal, "test_issue"), None);
    let up = find(&critical, "test_issue").unwrap();
    assert_eq!(up.reason, UpgradeReason::AgedTiers);
    assert_eq!(up.effective_severity, Severity::Major);
    // needs_cleanup keys are upgraded under both; major keys never appear.
    assert_eq!(
        find(&normal, "aging_issue").unwrap().reason,
        UpgradeReason::NeedsCleanup
    );
    assert_eq!(find(&normal, "major_issue"), None);
    assert_eq!(normal.effective_severity_upgrades.len(), 11);
    assert_eq!(critical.effective_severity_upgrades.len(), 12);
    assert_eq!(normal.aging_thresholds.minor_issue_aging_runs_threshold, 3);
    assert_eq!(
        critical.aging_thresholds.minor_issue_aging_tiers_threshold,
        1
    );
    // Sorted by key.
    let keys: Vec<_> = normal
        .effective_severity_upgrades
        .iter()
        .map(|u| &u.issue_key)
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn cleanup_phases_go_to_the_last_tier_with_fresh_ids() {
    let s = compile_with(SafetyProfile::Normal);
    // 11 keys need cleanup, 10 per phase: 2 phases, within the default of 2 per run.
    assert_eq!(s.inserted_phases.len(), 2);
    // The plan already uses debt-cleanup-01, so the first inserted id gets a suffix.
    let ids: Vec<_> = s
        .inserted_phases
        .iter()
        .map(|p| p.phase_id.as_str())
        .collect();
    assert_eq!(ids, ["debt-cleanup-01-2", "debt-cleanup-02"]);
    let tier = s.tier(&"t-docs".parse().unwrap()).unwrap();
    assert_eq!(
        &tier.phase_ids[tier.phase_ids.len() - 2..],
        s.inserted_phases
            .iter()
            .map(|p| p.phase_id.clone())
            .collect::<Vec<_>>()
            .as_slice()
    );
    for spec in &s.inserted_phases {
        let p = s.phase(&spec.phase_id).unwrap();
        assert_eq!(p.origin, PhaseOrigin::DebtCleanup);
        assert!(!p.auto_apply);
        assert_eq!(p.complexity, Complexity::Medium);
        assert_eq!(p.auditor_profile.as_deref(), Some("debt_cleanup_review"));
        assert!(p.phase_index >= 10);
    }
    let first = s.phase(&"debt-cleanup-01-2".parse().unwrap()).unwrap();
    assert_eq!(first.cleanup_issue_keys.len(), 10);
    // Oldest first: old_minor_issue (6 runs) leads.
    assert_eq!(first.cleanup_issue_keys[0].as_str(), "old_minor_issue");
    // Run totals include inserted phases.
    assert_eq!(s.run_max_minor_issues_total, 12 * 3);
    assert_eq!(s.phases_in_order().len(), 12);
    assert_eq!(s.effective_plan(&plan()).phases.len(), 12);
}

#[test]
fn cleanup_is_bounded_by_options_and_max_phases() {
    let mut p = plan();
    p.run.max_phases = Some(11);
    let s = compile(&ruleset(), &backlog(), &p, &CompileOptions::default()).unwrap();
    assert_eq!(s.inserted_phases.len(), 1);
    assert!(s.diagnostics.contains(&Diagnostic::CleanupDidNotFit {
        needed_phases: 2,
        inserted_phases: 1,
        deferred_keys: 1,
        limit: CleanupLimit::MaxPhases,
    }));
    let opts = CompileOptions {
        max_cleanup_phases_per_run: 0,
        ..CompileOptions::default()
    };
    let s = compile(&ruleset(), &backlog(), &plan(), &opts).unwrap();
    assert!(s.inserted_phases.is_empty());
    assert!(s.diagnostics.iter().any(|d| matches!(
        d,
        Diagnostic::CleanupDidNotFit {
            limit: CleanupLimit::MaxCleanupPhasesPerRun,
            deferred_keys: 11,
            ..
        }
    )));
    // A plan already over the cap gets no cleanup and a diagnostic.
    p.run.max_phases = Some(5);
    let s = compile(&ruleset(), &backlog(), &p, &CompileOptions::default()).unwrap();
    assert!(s.inserted_phases.is_empty());
    assert!(s.diagnostics.contains(&Diagnostic::PlanExceedsMaxPhases {
        phases: 10,
        max_phases: 5
    }));
}

#[test]
fn tier_caps_use_the_category_multipliers() {
    let s = compile_with(SafetyProfile::Normal);
    let f = s.tier(&"t-foundation".parse().unwrap()).unwrap();
    // scaffold 500k, schema 1M, index 800k; multiplier 3.
    assert_eq!(f.token_cap, 3 * 2_300_000);
    assert_eq!(f.ci_run_cap, 6);
    assert_eq!(f.max_minor_issues_tolerated, 2 + 1 + 1);
    assert_eq!(f.max_major_issues_tolerated, 0);
    assert!(f.high_risk);
    let c = compile_with(SafetyProfile::SafetyCritical);
    let core = c.tier(&"t-core".parse().unwrap()).unwrap();
    // refactor 1.0, bulk 1.0, auth 0.5, tests min(2,1)=1 → 3.5 → 3.
    assert_eq!(core.max_minor_issues_tolerated, 3);
    assert_eq!(
        core.caps().token_cap,
        3 * (1_000_000 + 1_500_000 + 800_000 + 300_000)
    );
}

#[test]
fn run_settings_follow_precedence() {
    let s = compile_with(SafetyProfile::Normal);
    assert_eq!(s.run_token_cap, 5_000_000);
    assert_eq!(s.run_max_phases, 25);
    assert_eq!(s.run_caps().max_duration_minutes, 120);
    let mut p = plan();
    p.run.safety_profile = Some(SafetyProfile::SafetyCritical);
    p.run.token_cap = Some(42);
    let s = compile(&ruleset(), &backlog(), &p, &CompileOptions::default()).unwrap();
    assert_eq!(
        s.safety_profile,
        SafetyProfile::SafetyCritical,
        "plan beats ruleset"
    );
    assert_eq!(s.run_token_cap, 42);
    let opts = CompileOptions {
        safety_profile: Some(SafetyProfile::Normal),
        strategy_version: 3,
        ..CompileOptions::default()
    };
    let s = compile(&ruleset(), &backlog(), &p, &opts).unwrap();
    assert_eq!(s.safety_profile, SafetyProfile::Normal, "options beat plan");
    assert_eq!(
        strategy_file_name(s.version),
        "project_implementation_strategy_v3.json"
    );
}

#[test]
fn ruleset_overrides_and_explicit_auto_apply() {
    let mut r = ruleset();
    let schema = r
        .category_defaults
        .get_mut("schema_contract_change")
        .unwrap();
    schema.auto_apply = Some(true);
    schema.complexity = Some(Complexity::Low);
    schema.max_builder_attempts = Some(5);
    r.high_risk_categories.push("data_migration".into());
    let docs = r.category_defaults.get_mut("docs").unwrap();
    docs.ci_profile = Some(CiProfile::Strict);
    let s = compile(
        &r,
        &BacklogView::empty(),
        &plan(),
        &CompileOptions::default(),
    )
    .unwrap();
    let p = s.phase(&"p-schema".parse().unwrap()).unwrap();
    assert!(p.auto_apply, "explicit ruleset auto_apply wins");
    assert_eq!(p.complexity, Complexity::High, "still never below high");
    assert_eq!(p.max_builder_attempts, 5);
    let m = s.phase(&"p-migrate".parse().unwrap()).unwrap();
    assert!(
        m.high_risk && !m.auto_apply,
        "ruleset-listed category is high-risk"
    );
    assert_eq!(
        s.phase(&"p-docs".parse().unwrap()).unwrap().ci_profile,
        CiProfile::Strict
    );
    assert!(s.tier(&"t-docs".parse().unwrap()).unwrap().high_risk);
}

#[test]
fn dry_run_needs_no_ruleset_or_backlog() {
    let s = dry_run(&plan(), None, None).unwrap();
    assert_eq!(s.project_id.as_str(), "builtin");
    assert!(s.inserted_phases.is_empty());
    assert!(s.effective_severity_upgrades.is_empty());
    let p = s.phase(&"p-schema".parse().unwrap()).unwrap();
    assert_eq!(p.defaults_source, DefaultsSource::BuiltinHighRisk);
    assert_eq!(p.max_auditor_attempts, 3);
    let with = dry_run(&plan(), Some(&ruleset()), Some(&backlog())).unwrap();
    assert_eq!(with, compile_with(SafetyProfile::Normal));
}

#[test]
fn broken_plans_and_options_are_errors() {
    let mut p = plan();
    p.phases[1].phase_id = p.phases[0].phase_id.clone();
    assert!(matches!(
        dry_run(&p, None, None),
        Err(CompileError::DuplicatePhase { .. })
    ));
    let mut p = plan();
    p.tiers[1].tier_id = p.tiers[0].tier_id.clone();
    assert!(matches!(
        dry_run(&p, None, None),
        Err(CompileError::DuplicateTier { .. })
    ));
    let mut p = plan();
    p.phases[0].tier_id = "nowhere".parse().unwrap();
    let err = dry_run(&p, None, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "plan: phase p-scaffold names unknown tier_id nowhere"
    );
    let opts = CompileOptions {
        cleanup_keys_per_phase: 0,
        ..CompileOptions::default()
    };
    assert!(compile(&ruleset(), &backlog(), &plan(), &opts).is_err());
    let mut r = ruleset();
    r.run_max_phases = Some(0);
    assert!(matches!(
        compile(&r, &backlog(), &plan(), &CompileOptions::default()),
        Err(CompileError::InvalidRuleset(_))
    ));
}

#[test]
fn strategy_json_round_trips_strictly() {
    let s = compile_with(SafetyProfile::SafetyCritical);
    let back = Strategy::from_json(&s.to_json(), "strategy.json").unwrap();
    assert_eq!(back, s);
    let mut v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
    v["surprise"] = serde_json::json!(1);
    let err = Strategy::from_json(&v.to_string(), "strategy.json").unwrap_err();
    assert_eq!(err.path, "surprise");
}

#[test]
fn backlog_reader_accepts_the_fixture_and_merges_duplicates() {
    let b = backlog();
    assert_eq!(b.len(), 13);
    assert!(
        b.entries()
            .windows(2)
            .all(|w| w[0].issue_key < w[1].issue_key)
    );
    let e = b
        .entries()
        .iter()
        .find(|e| e.issue_key.as_str() == "major_issue")
        .unwrap();
    assert_eq!(e.status, IssueStatus::Open);
    assert_eq!(
        e.category.high_risk().map(|k| k.task_category_name()),
        Some("schema_change")
    );
    let err = BacklogView::from_project_backlog_json(
        r#"{"issues_by_key": {"k": {"category": "c", "base_severity": "minor", "status": "stale"}}}"#,
        "b.json",
    )
    .unwrap_err();
    assert_eq!(err.path, "issues_by_key.k.status");
    let dup = BacklogView::new(b.entries().iter().chain(b.entries()).rev().cloned());
    assert_eq!(dup, b);
}
