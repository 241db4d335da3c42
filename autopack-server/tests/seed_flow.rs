//! The first implementation's client flow against a server on 127.0.0.1: create a run,
//! Builder results, an Auditor request and result, integration status, every metrics
//! and report endpoint — asserting the fields `SEED_API.md` documents.

mod common;

use autopack_server::ServerConfig;
use common::{auditor_body, builder_body, client, plan, serve};
use serde_json::{Value, json};

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn has_all(v: &Value, fields: &[&str]) {
    for f in fields {
        assert!(v.get(*f).is_some(), "missing {f} in {v:#}");
    }
}

#[test]
fn the_first_implementations_client_flow() {
    let server = serve(ServerConfig::default());
    let http = client();
    let url = &server.url;

    // GET /, /health.
    let info: Value = http.get(format!("{url}/")).send().unwrap().json().unwrap();
    assert_eq!(info["service"], "Autopack Supervisor");
    has_all(&info, &["service", "version", "description"]);
    let health: Value = http
        .get(format!("{url}/health"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health, json!({"status": "healthy"}));

    // POST /runs/start.
    let response = http
        .post(format!("{url}/runs/start"))
        .json(&plan("seed-run", 2, 2))
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    let run: Value = response.json().unwrap();
    assert_eq!(run["id"], "seed-run");
    assert_eq!(
        run["run_id"], "seed-run",
        "the seed's own client reads run_id"
    );
    has_all(
        &run,
        &[
            "state",
            "safety_profile",
            "run_scope",
            "created_at",
            "started_at",
            "completed_at",
            "tokens_used",
            "ci_runs_used",
            "minor_issues_count",
            "major_issues_count",
            "promotion_eligible_to_main",
            "debt_status",
            "failure_reason",
            "tiers",
        ],
    );
    assert_eq!(run["promotion_eligible_to_main"], "false");
    assert_eq!(run["tiers"].as_array().unwrap().len(), 2);
    let tier = &run["tiers"][0];
    has_all(
        tier,
        &[
            "id",
            "tier_id",
            "name",
            "state",
            "tier_index",
            "cleanliness",
            "minor_issues_count",
            "major_issues_count",
            "phases",
        ],
    );
    let phase = &tier["phases"][0];
    has_all(
        phase,
        &[
            "id",
            "phase_id",
            "name",
            "state",
            "task_category",
            "complexity",
            "builder_mode",
            "phase_index",
        ],
    );
    assert_eq!(
        phase["state"], "EXECUTING",
        "the Supervisor dispatched the first phase"
    );

    // A second start of the same run: 400, as the seed.
    let again = http
        .post(format!("{url}/runs/start"))
        .json(&plan("seed-run", 1, 1))
        .send()
        .unwrap();
    assert_eq!(again.status(), 400);

    // POST …/builder_result, answered after gate, CI and snapshot.
    let reply: Value = http
        .post(format!("{url}/runs/seed-run/phases/p1/builder_result"))
        .json(&builder_body("seed-run", "p1", "success"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(reply["phase_state"], "COMPLETE", "{reply:#}");
    assert!(reply["commit_sha"].as_str().is_some_and(|c| c.len() == 40));
    has_all(&reply, &["message", "commit_sha", "phase_state"]);

    // POST …/record_issue with the query only (the seed's probe scripts).
    let recorded = http
        .post(format!(
            "{url}/runs/seed-run/phases/p2/record_issue?issue_key=flaky_probe&severity=minor&source=probe&category=test_failure"
        ))
        .send()
        .unwrap();
    assert_eq!(recorded.status(), 200);
    let recorded: Value = recorded.json().unwrap();
    has_all(
        &recorded,
        &[
            "message",
            "phase_file",
            "run_index_entry",
            "project_backlog_entry",
        ],
    );
    has_all(
        &recorded["phase_file"],
        &[
            "phase_id",
            "tier_id",
            "issues",
            "minor_issue_count",
            "major_issue_count",
            "issue_state",
        ],
    );
    assert_eq!(recorded["phase_file"]["issue_state"], "has_minor_issues");
    has_all(
        &recorded["run_index_entry"],
        &[
            "category",
            "severity",
            "effective_severity",
            "first_phase_index",
            "last_phase_index",
            "occurrence_count",
            "seen_in_tiers",
            "seen_in_phases",
        ],
    );
    has_all(
        &recorded["project_backlog_entry"],
        &[
            "category",
            "base_severity",
            "age_in_runs",
            "age_in_tiers",
            "first_seen_run_id",
            "last_seen_run_id",
            "last_seen_at",
            "seen_in_tiers",
            "status",
        ],
    );

    // p2's Builder doubts itself: the Supervisor asks for a review.
    let reply: Value = http
        .post(format!("{url}/runs/seed-run/phases/p2/builder_result"))
        .json(&builder_body("seed-run", "p2", "needs_review"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(reply["phase_state"], "GATE", "{reply:#}");
    // The seed's codex integration sends auditor_request with no body: 422, as the seed.
    let no_body = http
        .post(format!("{url}/runs/seed-run/phases/p2/auditor_request"))
        .send()
        .unwrap();
    assert_eq!(no_body.status(), 422);
    let request: Value = http
        .post(format!("{url}/runs/seed-run/phases/p2/auditor_request"))
        .json(&json!({"phase_id": "p2", "run_id": "seed-run", "tier_id": "t1", "failure_context": "needs review", "review_focus": "correctness"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(request["review_focus"], "correctness");
    has_all(&request, &["message", "review_focus", "auditor_profile"]);
    let audited: Value = http
        .post(format!("{url}/runs/seed-run/phases/p2/auditor_result"))
        .json(&auditor_body("seed-run", "p2", "approve"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(audited["recommendation"], "approve");
    assert_eq!(audited["phase_state"], "COMPLETE", "{audited:#}");
    has_all(
        &audited,
        &[
            "message",
            "recommendation",
            "patches_applied",
            "commit_shas",
            "phase_state",
        ],
    );

    // update_status: only the Supervisor moves phases.
    let refused = http
        .post(format!("{url}/runs/seed-run/phases/p4/update_status"))
        .json(&json!({"state": "COMPLETE"}))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 409);
    let refused: Value = refused.json().unwrap();
    assert_eq!(refused["state"], "QUEUED");
    assert_eq!(refused["event"], "set_state(COMPLETE)");
    let same = http
        .post(format!("{url}/runs/seed-run/phases/p4/update_status"))
        .json(&json!({"state": "QUEUED"}))
        .send()
        .unwrap();
    assert_eq!(same.status(), 200);
    let same: Value = same.json().unwrap();
    has_all(
        &same["phase"],
        &[
            "phase_id",
            "state",
            "builder_attempts",
            "tokens_used",
            "tier_id",
        ],
    );

    for phase in ["p3", "p4"] {
        let reply: Value = http
            .post(format!("{url}/runs/seed-run/phases/{phase}/builder_result"))
            .json(&builder_body("seed-run", phase, "success"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(reply["phase_state"], "COMPLETE", "{reply:#}");
    }

    // GET /runs/{run_id} at the end.
    let run: Value = http
        .get(format!("{url}/runs/seed-run"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(run["state"], "DONE_SUCCESS");
    assert!(run["completed_at"].is_string());

    // The issue index and the backlog.
    let index: Value = http
        .get(format!("{url}/runs/seed-run/issues/index"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(index["run_id"], "seed-run");
    assert!(index["issues_by_key"]["flaky_probe"].is_object());
    assert!(index["issues_by_key"]["naming_nit"].is_object());
    let backlog: Value = http
        .get(format!("{url}/project/issues/backlog"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    has_all(&backlog, &["project_id", "issues_by_key"]);
    assert!(backlog["issues_by_key"]["flaky_probe"].is_object());

    // Integration status.
    let status: Value = http
        .get(format!("{url}/runs/seed-run/integration_status"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(status["branch"], "autonomous/seed-run");
    assert_eq!(status["commits_ahead_of_main"], 4);
    has_all(
        &status,
        &["branch", "commits_ahead_of_main", "current_commit"],
    );

    // Metrics.
    let metrics: Value = http
        .get(format!("{url}/metrics/runs"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(metrics["total_runs"], 1);
    has_all(
        &metrics["runs"][0],
        &[
            "run_id",
            "state",
            "safety_profile",
            "tokens_used",
            "token_cap",
            "token_utilization",
            "minor_issues_count",
            "major_issues_count",
            "max_minor_issues_total",
            "phase_count",
            "tier_count",
            "started_at",
            "completed_at",
        ],
    );
    let done: Value = http
        .get(format!("{url}/metrics/runs?status=DONE_SUCCESS"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(done["total_runs"], 1);
    let bad = http
        .get(format!("{url}/metrics/runs?status=SOMEWHERE"))
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    let tiers: Value = http
        .get(format!("{url}/metrics/tiers/seed-run"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(tiers["tier_count"], 2);
    has_all(
        &tiers["tiers"][0],
        &[
            "tier_id",
            "tier_index",
            "name",
            "state",
            "minor_issues_count",
            "major_issues_count",
            "phase_count",
            "phase_states",
            "tokens_used",
        ],
    );
    assert_eq!(tiers["tiers"][0]["phase_states"]["COMPLETE"], 2);

    // Reports.
    let summary: Value = http
        .get(format!("{url}/reports/issue_backlog_summary"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        keys(&summary),
        [
            "needs_cleanup",
            "needs_cleanup_count",
            "open_count",
            "top_aging_issues",
            "total_issues"
        ]
    );
    assert_eq!(summary["total_issues"], 2);
    let budget = http
        .get(format!("{url}/reports/budget_analysis"))
        .send()
        .unwrap();
    assert_eq!(budget.status(), 200, "the seed answered 500 here");
    let budget: Value = budget.json().unwrap();
    has_all(
        &budget,
        &[
            "total_budget_failures",
            "average_token_utilization",
            "failures",
        ],
    );
    let report: Value = http
        .get(format!("{url}/reports/run_summary/seed-run"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(report["state"], "DONE_SUCCESS");
    assert_eq!(report["issues"]["distinct_issues"], 2);
    assert_eq!(report["budgets"]["tokens_used"], 1200 * 4 + 300);
    has_all(
        &report,
        &[
            "run_id",
            "state",
            "safety_profile",
            "run_scope",
            "started_at",
            "completed_at",
            "budgets",
            "issues",
            "tiers",
            "phases",
        ],
    );
    has_all(
        &report["budgets"],
        &[
            "tokens_used",
            "token_cap",
            "token_utilization",
            "phase_count",
            "max_phases",
        ],
    );
    has_all(
        &report["issues"],
        &[
            "minor_count",
            "major_count",
            "max_minor_total",
            "distinct_issues",
        ],
    );
    has_all(
        &report["phases"][1],
        &[
            "phase_id",
            "phase_index",
            "name",
            "state",
            "task_category",
            "complexity",
            "builder_attempts",
            "auditor_attempts",
            "tokens_used",
            "minor_issues",
            "major_issues",
        ],
    );
    assert_eq!(report["phases"][1]["auditor_attempts"], 1);

    // The API's own documents.
    for page in ["docs", "redoc"] {
        let html = http.get(format!("{url}/{page}")).send().unwrap();
        assert_eq!(html.status(), 200);
        let text = html.text().unwrap();
        assert!(
            text.contains("/openapi.json") && !text.contains("https://"),
            "offline page"
        );
    }
    let doc: Value = http
        .get(format!("{url}/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(doc["paths"]["/workers/lease"]["post"].is_object());
}

#[test]
fn bad_requests_are_4xx_json_naming_the_field() {
    let server = serve(ServerConfig::default());
    let http = client();
    let url = &server.url;
    let start = |body: &str| {
        http.post(format!("{url}/runs/start"))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .unwrap()
    };
    // Malformed JSON, a missing field, an unknown scope, a path-like id.
    for (body, loc) in [
        ("{not json", vec!["body"]),
        (r#"{"tiers": [], "phases": []}"#, vec!["body"]),
        (
            r#"{"run": {"run_id": "r", "run_scope": "incremental"}}"#,
            vec!["body", "run", "run_scope"],
        ),
        (
            r#"{"run": {"run_id": "../x"}}"#,
            vec!["body", "run", "run_id"],
        ),
    ] {
        let response = start(body);
        assert_eq!(response.status(), 422, "{body}");
        let err: Value = response.json().unwrap();
        let got: Vec<&str> = err["detail"][0]["loc"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(got, loc, "{body}: {err:#}");
        has_all(&err["detail"][0], &["type", "loc", "msg", "input"]);
    }
    // A plan that breaks the rules: every problem, by field.
    let response = start(
        r#"{"run": {"run_id": "r"}, "tiers": [], "phases": [{"phase_id": "p1", "phase_index": 0, "tier_id": "nope", "name": "x", "task_category": "feature", "complexity": "low"}]}"#,
    );
    assert_eq!(response.status(), 422);
    // 20 MB: 413.
    let big = format!(
        r#"{{"run": {{"run_id": "r", "pad": "{}"}}}}"#,
        "x".repeat(20 * 1024 * 1024)
    );
    assert_eq!(start(&big).status(), 413);
    // Unknown run, unknown path, wrong method.
    let unknown = http.get(format!("{url}/runs/nope")).send().unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(unknown.json::<Value>().unwrap()["detail"].is_string());
    assert_eq!(
        http.get(format!("{url}/runs/a..b"))
            .send()
            .unwrap()
            .status(),
        422
    );
    assert_eq!(
        http.get(format!("{url}/nowhere")).send().unwrap().status(),
        404
    );
    assert_eq!(
        http.delete(format!("{url}/runs/start"))
            .send()
            .unwrap()
            .status(),
        405
    );
    // A result for a phase that awaits none, and an unappliable patch.
    assert_eq!(start(&plan("bad-run", 1, 2).to_string()).status(), 201);
    let early = http
        .post(format!("{url}/runs/bad-run/phases/p2/builder_result"))
        .json(&builder_body("bad-run", "p2", "success"))
        .send()
        .unwrap();
    assert_eq!(early.status(), 409);
    let early: Value = early.json().unwrap();
    assert_eq!(early["state"], "QUEUED");
    let mut garbage = builder_body("bad-run", "p1", "success");
    garbage["patch_content"] = json!("this is not a diff");
    let refused = http
        .post(format!("{url}/runs/bad-run/phases/p1/builder_result"))
        .json(&garbage)
        .send()
        .unwrap();
    assert_eq!(refused.status(), 422, "an unappliable patch is a 4xx");
    let refused: Value = refused.json().unwrap();
    assert!(
        refused["detail"].as_str().unwrap().contains("not_git_diff"),
        "{refused:#}"
    );
    // A misspelt field is an error, not dropped evidence.
    let mut misspelt = builder_body("bad-run", "p1", "success");
    misspelt["suggested_issue"] = json!([]);
    let response = http
        .post(format!("{url}/runs/bad-run/phases/p1/builder_result"))
        .json(&misspelt)
        .send()
        .unwrap();
    assert_eq!(response.status(), 422);
    // A record_issue without its query.
    let response = http
        .post(format!(
            "{url}/runs/bad-run/phases/p1/record_issue?severity=minor"
        ))
        .send()
        .unwrap();
    assert_eq!(response.status(), 422);
}
