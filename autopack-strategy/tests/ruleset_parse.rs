//! Strict ruleset reading: the fixture loads unchanged; every kind of bad value is an error
//! naming the file and the JSON path.

use autopack_strategy::{Ruleset, RulesetError};
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("data/project_ruleset_Autopack.json");
const FILE: &str = "project_ruleset_Autopack.json";

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).unwrap()
}

/// Sets the value at a JSON pointer (creating the last key) and parses the result.
fn with(pointer: &str, value: Value) -> RulesetError {
    let mut doc = fixture();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    doc.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert(key.into(), value);
    let text = serde_json::to_string_pretty(&doc).unwrap();
    match Ruleset::from_json(&text, FILE) {
        Ok(_) => panic!("{pointer} should have been rejected"),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_error(err: &RulesetError, path: &str, needle: &str) {
    assert_eq!(err.path(), path, "{err}");
    let text = err.to_string();
    assert!(text.starts_with(&format!("{FILE}: {path}: ")), "{text}");
    assert!(text.contains(needle), "{text:?} should mention {needle:?}");
}

#[test]
fn fixture_loads_unchanged_and_round_trips() {
    let ruleset = Ruleset::from_json(FIXTURE, FILE).unwrap();
    assert_eq!(ruleset.project_id.as_str(), "Autopack");
    assert_eq!(ruleset.version_number(), Some(1));
    assert_eq!(ruleset.category_defaults.len(), 9);
    assert_eq!(ruleset.high_risk_categories.len(), 5);
    assert_eq!(
        ruleset.category_defaults["docs"].auditor_profile,
        Some(None),
        "explicit null kept"
    );
    let back: Value = serde_json::from_str(&ruleset.to_json()).unwrap();
    assert_eq!(back, fixture(), "serialising gives the fixture back");
}

#[test]
fn minimal_ruleset_needs_only_a_project_id() {
    let r = Ruleset::from_json(r#"{"project_id": "P"}"#, "p.json").unwrap();
    assert_eq!(r, Ruleset::builtin("P".parse().unwrap()));
    let err = Ruleset::from_json("{}", "p.json").unwrap_err();
    assert!(err.to_string().contains("project_id"), "{err}");
}

#[test]
fn unknown_fields_are_named() {
    assert_error(
        &with("/colour", json!("blue")),
        "colour",
        "unknown field `colour`",
    );
    assert_error(
        &with("/category_defaults/docs/colour", json!(1)),
        "category_defaults.docs.colour",
        "unknown field",
    );
    assert_error(
        &with("/safety_profiles/paranoid", json!({})),
        "safety_profiles.paranoid",
        "unknown field",
    );
    assert_error(
        &with("/safety_profiles/normal/aging", json!(1)),
        "safety_profiles.normal.aging",
        "unknown field",
    );
}

#[test]
fn wrong_types_are_named() {
    assert_error(
        &with(
            "/category_defaults/docs/max_builder_attempts",
            json!("three"),
        ),
        "category_defaults.docs.max_builder_attempts",
        "invalid type",
    );
    assert_error(
        &with("/category_defaults/tests/auto_apply", json!("yes")),
        "category_defaults.tests.auto_apply",
        "invalid type",
    );
    assert_error(
        &with("/run_max_phases", json!(2.5)),
        "run_max_phases",
        "invalid type",
    );
    assert_error(
        &with("/high_risk_categories", json!("x")),
        "high_risk_categories",
        "invalid type",
    );
    assert_error(
        &with("/category_defaults/docs/auditor_profile", json!(3)),
        "category_defaults.docs.auditor_profile",
        "invalid type",
    );
}

#[test]
fn unknown_closed_values_are_named() {
    assert_error(
        &with("/category_defaults/docs/ci_profile", json!("paranoid")),
        "category_defaults.docs.ci_profile",
        "paranoid",
    );
    assert_error(
        &with("/category_defaults/docs/complexity", json!("extreme")),
        "category_defaults.docs.complexity",
        "extreme",
    );
    assert_error(
        &with(
            "/category_defaults/docs/default_severity",
            json!("critical"),
        ),
        "category_defaults.docs.default_severity",
        "critical",
    );
    assert_error(
        &with("/default_safety_profile", json!("yolo")),
        "default_safety_profile",
        "yolo",
    );
    assert_error(
        &with("/default_run_scope", json!("incremental")),
        "default_run_scope",
        "incremental",
    );
    assert_error(
        &with(
            "/safety_profiles/normal/run_scope_preference",
            json!("both"),
        ),
        "safety_profiles.normal.run_scope_preference",
        "both",
    );
    assert_error(
        &with("/project_id", json!("../etc")),
        "project_id",
        "invalid project_id",
    );
}

#[test]
fn zero_attempts_and_caps_are_out_of_range() {
    assert_error(
        &with("/category_defaults/docs/max_builder_attempts", json!(0)),
        "category_defaults.docs.max_builder_attempts",
        "at least 1",
    );
    assert_error(
        &with("/category_defaults/docs/incident_token_cap", json!(0)),
        "category_defaults.docs.incident_token_cap",
        "at least 1",
    );
    assert_error(
        &with("/run_token_cap", json!(0)),
        "run_token_cap",
        "at least 1",
    );
    assert_error(
        &with("/run_max_phases", json!(0)),
        "run_max_phases",
        "at least 1",
    );
    assert_error(
        &with("/run_max_duration_minutes", json!(0)),
        "run_max_duration_minutes",
        "at least 1",
    );
    assert_error(
        &with(
            "/safety_profiles/normal/minor_issue_aging_runs_threshold",
            json!(0),
        ),
        "safety_profiles.normal.minor_issue_aging_runs_threshold",
        "at least 1",
    );
    assert_error(
        &with(
            "/safety_profiles/safety_critical/minor_issue_aging_tiers_threshold",
            json!(0),
        ),
        "safety_profiles.safety_critical.minor_issue_aging_tiers_threshold",
        "at least 1",
    );
}

#[test]
fn negative_caps_and_multipliers_are_rejected() {
    assert_error(
        &with("/category_defaults/docs/incident_token_cap", json!(-5)),
        "category_defaults.docs.incident_token_cap",
        "-5",
    );
    assert_error(&with("/run_token_cap", json!(-1)), "run_token_cap", "-1");
    assert_error(
        &with("/category_defaults/docs/max_auditor_attempts", json!(-1)),
        "category_defaults.docs.max_auditor_attempts",
        "-1",
    );
    assert_error(
        &with(
            "/category_defaults/docs/tier_token_cap_multiplier",
            json!(-3.0),
        ),
        "category_defaults.docs.tier_token_cap_multiplier",
        "≥ 0",
    );
    assert_error(
        &with(
            "/category_defaults/schema_contract_change/tier_max_minor_issues_multiplier",
            json!(-0.5),
        ),
        "category_defaults.schema_contract_change.tier_max_minor_issues_multiplier",
        "≥ 0",
    );
    assert_error(
        &with(
            "/category_defaults/docs/tier_max_major_issues_tolerated",
            json!(-1),
        ),
        "category_defaults.docs.tier_max_major_issues_tolerated",
        "-1",
    );
}

#[test]
fn structural_rules_are_checked() {
    assert_error(&with("/version", json!("1.0")), "version", "not a version");
    assert_error(&with("/version", json!("v0")), "version", "not a version");
    assert_error(
        &with("/safety_profiles/normal/name", json!("safety_critical")),
        "safety_profiles.normal.name",
        "does not match",
    );
    assert_error(
        &with(
            "/category_defaults/schema_change",
            json!({"max_builder_attempts": 1}),
        ),
        "category_defaults.schema_contract_change",
        "second time",
    );
    assert_error(
        &with("/category_defaults/", json!({})),
        "category_defaults.",
        "invalid task_category",
    );
    assert_error(
        &with("/high_risk_categories", json!(["ok", ""])),
        "high_risk_categories[1]",
        "label",
    );
    assert_error(
        &with("/category_defaults/docs/auditor_profile", json!(" ")),
        "category_defaults.docs.auditor_profile",
        "non-empty",
    );
}

#[test]
fn syntax_errors_name_the_file() {
    let err = Ruleset::from_json("{\"project_id\": \"P\"", FILE).unwrap_err();
    assert!(err.to_string().starts_with(FILE), "{err}");
    let err = Ruleset::from_json("{\"project_id\": \"P\"} []", FILE).unwrap_err();
    assert!(err.to_string().contains("trailing"), "{err}");
}

#[test]
fn validate_catches_rulesets_built_in_code() {
    let mut r = Ruleset::builtin("P".parse().unwrap());
    r.category_defaults
        .entry("docs".into())
        .or_default()
        .max_builder_attempts = Some(0);
    let err = r.validate().unwrap_err();
    assert_eq!(err.path, "category_defaults.docs.max_builder_attempts");
    assert_eq!(err.source_name, "<ruleset>");
}

#[test]
fn file_name_helper() {
    assert_eq!(
        autopack_strategy::ruleset_file_name(&"Autopack".parse().unwrap()),
        "project_ruleset_Autopack.json"
    );
}

#[test]
fn rulesets_over_the_size_limit_are_refused_naming_file_and_limit() {
    let mut text = FIXTURE.to_owned();
    let limit = autopack_strategy::MAX_RULESET_BYTES as usize;
    text.extend(std::iter::repeat_n(' ', limit + 1 - text.len()));
    let err = Ruleset::from_json(&text, FILE).unwrap_err();
    let RulesetError::TooLarge(t) = &err else {
        panic!("{err}")
    };
    assert_eq!((t.size, t.limit), (limit as u64 + 1, limit as u64));
    assert_eq!(err.path(), ".");
    assert!(err.to_string().starts_with(FILE), "{err}");
    assert!(err.to_string().contains("1048576"), "{err}");
    // A raised limit reads it; a lowered one refuses the plain fixture.
    Ruleset::from_json_limited(&text, FILE, 2 * limit as u64).unwrap();
    assert!(matches!(
        Ruleset::from_json_limited(FIXTURE, FILE, 10),
        Err(RulesetError::TooLarge(_))
    ));
}
