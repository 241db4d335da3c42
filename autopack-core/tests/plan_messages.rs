//! Agent messages and timestamps: serde spellings, defaults, strictness, errors by path.

use autopack_core::clock::timestamp::{self, TimestampError, format_utc, parse_timestamp};
use autopack_core::message::{
    AuditReason, AuditorRecommendation, AuditorRequest, AuditorResult, BuilderRequest,
    BuilderResult, BuilderStatus, Checkout, CiFailure, parse_auditor_result, parse_builder_result,
};
use autopack_core::vocabulary::{Complexity, IssueSource, Severity, TaskCategory};
use autopack_core::{PhaseId, RunId, TierId};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

const FULL_BUILDER: &str = r#"{
  "phase_id": "p1", "status": "success",
  "patch": "diff --git a/x b/x\n",
  "probe_results": [{"name": "unit", "passed": true, "output": "ok"}, {"name": "lint", "passed": false}],
  "suggested_issues": [{"issue_key": "idx-missing", "severity": "major", "source": "cursor_self_doubt",
                        "category": "index_registry_change", "expected_fail": true,
                        "evidence_refs": ["tests/test_users.py::test_indexes"], "description": "d"}],
  "tokens_used": 12345, "failing_tests": ["t1"], "notes": "n"
}"#;

#[test]
fn builder_result_reads_every_field() {
    let r = parse_builder_result(FULL_BUILDER, "b").unwrap();
    assert_eq!(r.status, BuilderStatus::Success);
    assert_eq!(r.probe_results.len(), 2);
    assert_eq!(r.probe_results[1].output, "");
    let issue = &r.suggested_issues[0];
    assert_eq!(issue.severity, Severity::Major);
    assert_eq!(issue.source, IssueSource::CursorSelfDoubt);
    assert!(issue.category.high_risk().is_some());
    assert!(issue.expected_fail);
    assert_eq!(r.tokens_used, 12345);
    let again: BuilderResult = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(again, r);
}

#[test]
fn builder_result_defaults_and_status_spellings() {
    for (text, status) in [
        ("success", BuilderStatus::Success),
        ("failed", BuilderStatus::Failed),
        ("needs_review", BuilderStatus::NeedsReview),
    ] {
        let r = parse_builder_result(
            &format!(r#"{{"phase_id": "p", "status": "{text}", "tokens_used": 0}}"#),
            "b",
        )
        .unwrap();
        assert_eq!(r.status, status);
        assert_eq!(status.to_string(), text);
        assert!(r.patch.is_none() && r.probe_results.is_empty() && r.suggested_issues.is_empty());
        assert!(r.failing_tests.is_empty() && r.notes.is_empty());
    }
}

#[test]
fn builder_result_errors_name_the_path() {
    let err = parse_builder_result(
        r#"{"phase_id": "p", "status": "success"}"#,
        "builder stdout",
    )
    .unwrap_err();
    assert!(err.message.contains("tokens_used"), "{err}");
    let err = parse_builder_result(
        r#"{"phase_id": "p", "status": "success", "tokens_used": 1, "suggested_issues": [{"issue_key": "k", "severity": "critical", "source": "test", "category": "c"}]}"#,
        "builder stdout",
    )
    .unwrap_err();
    assert_eq!(err.path, "suggested_issues[0].severity");
    let err = parse_builder_result(
        r#"{"phase_id": "p", "status": "success", "tokens_used": 1, "suggested_issue": []}"#,
        "b",
    )
    .unwrap_err();
    assert_eq!(err.path, "suggested_issue");
    assert!(err.message.contains("unknown field"));
    let err = parse_builder_result(
        r#"{"phase_id": "a/b", "status": "success", "tokens_used": 1}"#,
        "b",
    )
    .unwrap_err();
    assert_eq!(err.path, "phase_id");
    let err = parse_builder_result(
        r#"{"phase_id": "p", "status": "success", "tokens_used": -5}"#,
        "b",
    )
    .unwrap_err();
    assert_eq!(err.path, "tokens_used");
}

#[test]
fn auditor_result_reads_and_checks_confidence() {
    let r = parse_auditor_result(
        r#"{"phase_id": "p", "recommendation": "revise", "review_notes": "fix x", "confidence": 0.75,
            "issues_found": [{"issue_key": "k", "severity": "minor", "source": "auditor", "category": "c"}]}"#,
        "a",
    )
    .unwrap();
    assert_eq!(r.recommendation, AuditorRecommendation::Revise);
    assert_eq!(r.confidence, 0.75);
    assert_eq!(r.tokens_used, 0);
    assert_eq!(r.issues_found[0].source, IssueSource::Auditor);
    for edge in ["0", "1", "0.0", "1.0"] {
        parse_auditor_result(
            &format!(r#"{{"phase_id": "p", "recommendation": "approve", "confidence": {edge}}}"#),
            "a",
        )
        .unwrap();
    }
    for bad in ["1.01", "-0.1", "7"] {
        let err = parse_auditor_result(
            &format!(r#"{{"phase_id": "p", "recommendation": "approve", "confidence": {bad}}}"#),
            "auditor",
        )
        .unwrap_err();
        assert_eq!(err.path, "confidence", "{err}");
        assert!(
            err.to_string()
                .starts_with("auditor: confidence: confidence"),
            "{err}"
        );
    }
    let err =
        parse_auditor_result(r#"{"phase_id": "p", "recommendation": "approve"}"#, "a").unwrap_err();
    assert!(err.message.contains("confidence"), "{err}");
    for (text, rec) in [
        ("approve", AuditorRecommendation::Approve),
        ("revise", AuditorRecommendation::Revise),
        ("escalate", AuditorRecommendation::Escalate),
    ] {
        assert_eq!(serde_json::to_string(&rec).unwrap(), format!("\"{text}\""));
        assert_eq!(rec.to_string(), text);
    }
    let r2: AuditorResult = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(r2, r);
}

#[test]
fn requests_round_trip_with_exact_spellings() {
    let req = BuilderRequest {
        run_id: RunId::new("r").unwrap(),
        tier_id: TierId::new("t").unwrap(),
        phase_id: PhaseId::new("p").unwrap(),
        phase_index: 3,
        name: "Add users".into(),
        description: "d".into(),
        task_category: TaskCategory::parse("schema_contract_change").unwrap(),
        complexity: Complexity::High,
        builder_mode: None,
        attempt: 2,
        max_attempts: 2,
        incident_token_cap: 500_000,
        scope: vec!["src/**".into()],
        feedback: vec!["CI red: test_x".into()],
        previous_patch: Some("diff --git a/x b/x\n".into()),
        last_ci: Some(CiFailure {
            output_tail: "FAIL: test_x\n".into(),
            failing_tests: vec!["test_x".into()],
        }),
        checkout: Some(Checkout {
            base_commit: Some("b".repeat(40)),
            tip_commit: Some("c".repeat(40)),
            head_commit: Some("c".repeat(40)),
            workspace: Some("/tmp/ws".into()),
        }),
    };
    let value = serde_json::to_value(&req).unwrap();
    assert_eq!(value["task_category"], "schema_change");
    assert_eq!(value["complexity"], "high");
    assert!(value.get("builder_mode").is_none());
    let back: BuilderRequest = serde_json::from_value(value).unwrap();
    assert_eq!(back, req);

    let audit = AuditorRequest {
        run_id: RunId::new("r").unwrap(),
        tier_id: TierId::new("t").unwrap(),
        phase_id: PhaseId::new("p").unwrap(),
        auditor_profile: Some("schema_review".into()),
        reason: AuditReason::HighRiskApproval,
        attempt: 1,
        patch: None,
        failures: Vec::new(),
        name: "Add users".into(),
        description: String::new(),
        task_category: None,
        candidate_commit: None,
        last_ci: None,
        checkout: None,
    };
    let value = serde_json::to_value(&audit).unwrap();
    assert_eq!(value["reason"], "high_risk_approval");
    // What the host did not fill in is left out, so older agents see what they saw.
    assert!(value.get("checkout").is_none() && value.get("description").is_none());
    assert_eq!(value["name"], "Add users");
    assert_eq!(
        serde_json::from_value::<AuditorRequest>(value).unwrap(),
        audit
    );
    for (reason, text) in [
        (AuditReason::AttemptsExhausted, "attempts_exhausted"),
        (AuditReason::HighRiskApproval, "high_risk_approval"),
        (AuditReason::FailureLoop, "failure_loop"),
        (AuditReason::MajorIssue, "major_issue"),
    ] {
        assert_eq!(
            serde_json::to_string(&reason).unwrap(),
            format!("\"{text}\"")
        );
        assert_eq!(reason.to_string(), text);
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micros: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
        + chrono::Duration::microseconds(micros.into())
}

#[test]
fn timestamps_are_written_canonically() {
    assert_eq!(
        format_utc(utc(2025, 11, 23, 11, 16, 17, 67335)),
        "2025-11-23T11:16:17.067335Z"
    );
    assert_eq!(
        format_utc(utc(2025, 1, 2, 3, 4, 5, 0)),
        "2025-01-02T03:04:05.000000Z"
    );
    let nanos =
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::nanoseconds(1_999);
    assert_eq!(format_utc(nanos), "2025-01-01T00:00:00.000001Z");
}

#[test]
fn timestamps_are_read_in_every_accepted_form() {
    let expected = utc(2025, 11, 23, 11, 16, 17, 67335);
    for text in [
        "2025-11-23T11:16:17.067335Z",
        "2025-11-23T11:16:17.067335+00:00",
        "2025-11-23T12:16:17.067335+01:00",
        "2025-11-23T06:16:17.067335-05:00",
        "2025-11-23T11:16:17.067335",
        "2025-11-23 11:16:17.067335",
    ] {
        assert_eq!(parse_timestamp(text).unwrap(), expected, "{text}");
    }
    assert_eq!(
        parse_timestamp("2025-11-23T11:16:17").unwrap(),
        utc(2025, 11, 23, 11, 16, 17, 0)
    );
    assert_eq!(
        parse_timestamp("2025-11-23T11:16:17Z").unwrap(),
        utc(2025, 11, 23, 11, 16, 17, 0)
    );
    for bad in [
        "",
        "yesterday",
        "2025-11-23",
        "2025-13-01T00:00:00",
        "2025-11-23T11:16:17.067335Zjunk",
    ] {
        assert_eq!(
            parse_timestamp(bad),
            Err(TimestampError { value: bad.into() }),
            "{bad}"
        );
    }
    let err = parse_timestamp("nope").unwrap_err();
    assert!(err.to_string().starts_with("invalid timestamp \"nope\""));
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Stamped {
    #[serde(with = "timestamp::serde_utc")]
    at: DateTime<Utc>,
    #[serde(default, with = "timestamp::serde_utc::option")]
    seen: Option<DateTime<Utc>>,
}

#[test]
fn serde_with_reads_both_forms_and_writes_rfc3339() {
    let old: Stamped =
        serde_json::from_str(r#"{"at": "2025-11-23T11:16:17.067335", "seen": null}"#).unwrap();
    assert_eq!(old.at, utc(2025, 11, 23, 11, 16, 17, 67335));
    assert_eq!(old.seen, None);
    assert_eq!(
        serde_json::to_string(&old).unwrap(),
        r#"{"at":"2025-11-23T11:16:17.067335Z","seen":null}"#
    );
    let missing: Stamped =
        serde_json::from_str(r#"{"at": "2025-11-23T12:16:17.067335+01:00"}"#).unwrap();
    assert_eq!(missing, old);
    let new: Stamped =
        serde_json::from_str(r#"{"at": "2025-11-23T11:16:17Z", "seen": "2025-11-24 00:00:00"}"#)
            .unwrap();
    assert_eq!(new.seen, Some(utc(2025, 11, 24, 0, 0, 0, 0)));
    let err = autopack_core::json::from_str::<Stamped>(r#"{"at": "soon"}"#, "x.json").unwrap_err();
    assert_eq!(err.path, "at");
    assert!(err.message.contains("invalid timestamp \"soon\""), "{err}");
}

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
struct StampedWithSchema {
    // schemars 1 reads `serde(with)` as a type path: the `schemars(with)` hint is required.
    #[serde(with = "timestamp::serde_utc")]
    #[schemars(with = "DateTime<Utc>")]
    at: DateTime<Utc>,
}

#[test]
fn serde_utc_fields_still_derive_a_date_time_schema() {
    let schema = schemars::schema_for!(StampedWithSchema);
    let at = &schema.as_value()["properties"]["at"];
    assert_eq!(at["type"], "string", "{at}");
    assert_eq!(at["format"], "date-time", "{at}");
}
