//! insta snapshots of the generated diagrams and schemas, so a change to a lifecycle
//! table or a message type shows up as a reviewable diff.

use autopack_core::lifecycle::{PhaseState, RunState, TierState};

#[test]
fn lifecycle_diagrams() {
    insta::assert_snapshot!("run_lifecycle", RunState::mermaid());
    insta::assert_snapshot!("tier_lifecycle", TierState::mermaid());
    insta::assert_snapshot!("phase_lifecycle", PhaseState::mermaid());
}

#[test]
fn message_and_plan_schemas() {
    for (name, schema) in autopack_core::schema::core_schemas() {
        insta::assert_json_snapshot!(format!("schema_{name}"), schema);
    }
}
