//! Spellings of lifecycle states and events: serde, `Display`/`FromStr`, JSON Schema.

use autopack_core::lifecycle::{
    Cleanliness, PhaseEvent, PhaseState, RunEvent, RunFailure, RunState, TierEvent, TierState,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

const RUN: [&str; 17] = [
    "PLAN_BOOTSTRAP",
    "RUN_CREATED",
    "PHASE_QUEUEING",
    "PHASE_EXECUTION",
    "GATE",
    "CI_RUNNING",
    "SNAPSHOT_CREATED",
    "DONE_SUCCESS",
    "DONE_FAILED_BUDGET_EXHAUSTED",
    "DONE_FAILED_PHASE_LIMIT_EXCEEDED",
    "DONE_FAILED_TOKEN_CAP_EXCEEDED",
    "DONE_FAILED_TIER_BLOCKED",
    "DONE_FAILED_CI_FAILED",
    "DONE_FAILED_MANUAL_ABORT",
    "DONE_FAILED_POLICY_VIOLATION",
    "DONE_FAILED_REQUIRES_HUMAN_REVIEW",
    "DONE_FAILED_ENVIRONMENT",
];
const TIER: [&str; 5] = ["PENDING", "RUNNING", "COMPLETE", "NOT_CLEAN", "BLOCKED"];
const PHASE: [&str; 8] = [
    "QUEUED",
    "EXECUTING",
    "GATE",
    "CI_RUNNING",
    "RETRY",
    "COMPLETE",
    "FAILED",
    "SKIPPED",
];

fn spellings<T>(all: &[T], expected: &[&str])
where
    T: Serialize + DeserializeOwned + std::fmt::Display + std::str::FromStr + PartialEq + Copy,
    T: std::fmt::Debug,
    <T as std::str::FromStr>::Err: std::fmt::Debug,
{
    let names: Vec<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(names, expected);
    for (&state, name) in all.iter().zip(expected) {
        let json = serde_json::to_string(&state).expect("serialise");
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(
            serde_json::from_str::<T>(&json).expect("deserialise"),
            state
        );
        assert_eq!(name.parse::<T>().expect("parse"), state);
    }
}

#[test]
fn states_use_the_spec_spellings() {
    spellings(RunState::ALL, &RUN);
    spellings(TierState::ALL, &TIER);
    spellings(PhaseState::ALL, &PHASE);
}

#[test]
fn legacy_tier_spellings_are_read_and_written_canonically() {
    let running: TierState = serde_json::from_str("\"IN_PROGRESS\"").expect("IN_PROGRESS");
    assert_eq!(running, TierState::Running);
    assert_eq!(serde_json::to_string(&running).expect("ser"), "\"RUNNING\"");
    let blocked: TierState = serde_json::from_str("\"FAILED\"").expect("FAILED");
    assert_eq!(blocked, TierState::Blocked);
    assert_eq!(serde_json::to_string(&blocked).expect("ser"), "\"BLOCKED\"");
    // The phase's own FAILED is canonical, and no legacy spelling leaks to other machines.
    assert_eq!("FAILED".parse::<PhaseState>(), Ok(PhaseState::Failed));
    assert!("IN_PROGRESS".parse::<PhaseState>().is_err());
    assert!("IN_PROGRESS".parse::<RunState>().is_err());
}

#[test]
fn unknown_spellings_name_the_value_and_the_expected_ones() {
    let err = serde_json::from_str::<TierState>("\"DONE\"").expect_err("unknown");
    let msg = err.to_string();
    assert!(msg.contains("DONE"), "{msg}");
    for name in TIER {
        assert!(msg.contains(name), "{msg} should list {name}");
    }
    let err = "gate".parse::<PhaseState>().expect_err("case matters");
    assert_eq!(
        err.to_string(),
        "phase: unknown state `gate`, expected one of QUEUED, EXECUTING, GATE, CI_RUNNING, \
         RETRY, COMPLETE, FAILED, SKIPPED"
    );
    assert!(serde_json::from_str::<RunState>("3").is_err());
}

#[test]
fn events_serialise_snake_case() {
    let cases = [
        (RunEvent::CiGreen, "\"ci_green\""),
        (RunEvent::PhaseAbandoned, "\"phase_abandoned\""),
        (
            RunEvent::Fail(RunFailure::TokenCapExceeded),
            r#"{"fail":"token_cap_exceeded"}"#,
        ),
    ];
    for (event, json) in cases {
        assert_eq!(serde_json::to_string(&event).expect("ser"), json);
        assert_eq!(serde_json::from_str::<RunEvent>(json).expect("de"), event);
    }
    for &event in RunEvent::ALL {
        let json = serde_json::to_string(&event).expect("ser");
        assert_eq!(serde_json::from_str::<RunEvent>(&json).expect("de"), event);
    }
    assert_eq!(
        serde_json::to_string(&TierEvent::CompleteNotClean).expect("ser"),
        "\"complete_not_clean\""
    );
    assert_eq!(
        serde_json::to_string(&PhaseEvent::AttemptFailed).expect("ser"),
        "\"attempt_failed\""
    );
    assert_eq!(
        RunEvent::Fail(RunFailure::CiFailed).to_string(),
        "Fail(ci_failed)"
    );
    assert_eq!(
        serde_json::to_string(&Cleanliness::NotClean).expect("ser"),
        "\"not_clean\""
    );
    assert_eq!(
        serde_json::to_string(&Cleanliness::Clean).expect("ser"),
        "\"clean\""
    );
}

/// The string values a schema admits (`enum`, or `oneOf`/`anyOf` of `const`s).
fn schema_values(schema: &serde_json::Value) -> Vec<String> {
    if let Some(values) = schema.get("enum").and_then(|v| v.as_array()) {
        return values
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
    }
    let mut out = Vec::new();
    for key in ["oneOf", "anyOf"] {
        for branch in schema
            .get(key)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(c) = branch.get("const").and_then(|v| v.as_str()) {
                out.push(c.to_owned());
            }
            out.extend(schema_values(branch));
        }
    }
    out
}

#[test]
fn json_schemas_use_the_canonical_spellings() {
    let run = serde_json::to_value(schemars::schema_for!(RunState)).expect("schema");
    assert_eq!(schema_values(&run), RUN);
    let tier = serde_json::to_value(schemars::schema_for!(TierState)).expect("schema");
    assert_eq!(schema_values(&tier), TIER);
    let phase = serde_json::to_value(schemars::schema_for!(PhaseState)).expect("schema");
    assert_eq!(schema_values(&phase), PHASE);
    let clean = serde_json::to_value(schemars::schema_for!(Cleanliness)).expect("schema");
    assert_eq!(schema_values(&clean), ["clean", "not_clean"]);
}
