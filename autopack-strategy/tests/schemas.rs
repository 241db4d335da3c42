//! The committed JSON Schemas (`schemas/ruleset.schema.json`, `schemas/strategy.schema.json`)
//! match the types. Run with `AUTOPACK_BLESS=1` to rewrite stale schemas instead of failing.

use std::path::PathBuf;

fn check(file: &str, fresh: String) {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/")).join(file);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == fresh {
        return;
    }
    if std::env::var_os("AUTOPACK_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).expect("write blessed schema");
        eprintln!("blessed {}", path.display());
        return;
    }
    panic!(
        "{} is stale; refresh it with `AUTOPACK_BLESS=1 cargo test -p autopack-strategy --test schemas`",
        path.display()
    );
}

#[test]
fn ruleset_schema_is_fresh() {
    check("ruleset.schema.json", autopack_strategy::ruleset_schema());
}

#[test]
fn strategy_schema_is_fresh() {
    check("strategy.schema.json", autopack_strategy::strategy_schema());
}

#[test]
fn fixture_satisfies_the_basic_shape_of_the_ruleset_schema() {
    // The schema names every top-level field of the fixture.
    let schema: serde_json::Value =
        serde_json::from_str(&autopack_strategy::ruleset_schema()).unwrap();
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("data/project_ruleset_Autopack.json")).unwrap();
    let props = schema["properties"].as_object().unwrap();
    for key in fixture.as_object().unwrap().keys() {
        assert!(props.contains_key(key), "schema lacks {key}");
    }
    assert_eq!(schema["additionalProperties"], serde_json::json!(false));
}
