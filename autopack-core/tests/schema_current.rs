//! The checked-in JSON Schemas under `schemas/` match the types.
//!
//! Stale files fail this test; `AUTOPACK_BLESS=1 cargo test -p autopack-core --test
//! schema_current` rewrites them.

use std::path::PathBuf;

use autopack_core::schema::core_schemas;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/");

fn render(schema: &schemars::Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap();
    text.push('\n');
    text
}

#[test]
fn schema_files_are_current() {
    let bless = std::env::var("AUTOPACK_BLESS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, schema) in core_schemas() {
        let path = PathBuf::from(DIR).join(format!("{name}.schema.json"));
        let want = render(&schema);
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have == want {
            continue;
        }
        if bless {
            std::fs::create_dir_all(DIR).unwrap();
            std::fs::write(&path, want).unwrap();
        } else {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale or missing schema files (rerun with AUTOPACK_BLESS=1 to refresh): {stale:#?}"
    );
}

#[test]
fn schema_names_are_unique_and_titled() {
    let schemas = core_schemas();
    let mut names: Vec<&str> = schemas.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), schemas.len());
    assert_eq!(
        names,
        [
            "auditor_request",
            "auditor_result",
            "builder_request",
            "builder_result",
            "plan",
            "probe_result",
            "suggested_issue"
        ]
    );
    for (name, schema) in &schemas {
        assert!(schema.get("title").is_some(), "{name} has no title");
    }
}

#[test]
fn schemas_carry_the_documented_constraints() {
    let schemas = core_schemas();
    let get = |name: &str| {
        schemas
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .as_value()
            .clone()
    };
    let auditor = get("auditor_result");
    let confidence = &auditor["properties"]["confidence"];
    assert_eq!(confidence["minimum"], 0.0);
    assert_eq!(confidence["maximum"], 1.0);
    assert_eq!(auditor["additionalProperties"], false);
    let plan = get("plan");
    let text = plan.to_string();
    assert!(
        text.contains("multi_tier") && text.contains("single_tier"),
        "run_scope values are listed"
    );
    let builder = get("builder_result");
    let status = serde_json::to_string(&builder).unwrap();
    assert!(status.contains("needs_review"));
}

#[test]
fn a_valid_document_matches_its_schema_fields() {
    // Every required field of the builder_result schema is one a minimal result carries.
    let schemas = core_schemas();
    let builder = schemas
        .iter()
        .find(|(n, _)| *n == "builder_result")
        .unwrap()
        .1
        .as_value()
        .clone();
    let mut required: Vec<&str> = builder["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["phase_id", "status", "tokens_used"]);
}
