//! Roles against endpoints: each role, no token and a wrong token against every endpoint
//! of the OpenAPI document; lease replay; loopback-only without tokens.

mod common;

use autopack_server::ServerConfig;
use autopack_server::auth::Tokens;
use common::{builder_body, client, plan, serve};
use serde_json::{Value, json};

const TOKENS: &str = "builder:b1:builder-token-0001,builder:b2:builder-token-0002,auditor:a1:auditor-token-0001,operator:ops:operator-token-001,viewer:dash:viewer-token-00001";

fn token(role: &str) -> &'static str {
    match role {
        "builder" => "builder-token-0001",
        "builder2" => "builder-token-0002",
        "auditor" => "auditor-token-0001",
        "operator" => "operator-token-001",
        "viewer" => "viewer-token-00001",
        _ => unreachable!(),
    }
}

/// Who may call what (B builder, A auditor, O operator, V viewer; `*` anyone, no token).
const EXPECTED: &[(&str, &str, &str)] = &[
    ("get", "/", "*"),
    ("get", "/health", "*"),
    ("get", "/openapi.json", "*"),
    ("get", "/docs", "*"),
    ("post", "/runs/start", "O"),
    ("get", "/runs/{run_id}", "BAOV"),
    (
        "post",
        "/runs/{run_id}/phases/{phase_id}/update_status",
        "O",
    ),
    (
        "post",
        "/runs/{run_id}/phases/{phase_id}/record_issue",
        "BAO",
    ),
    ("get", "/runs/{run_id}/issues/index", "BAOV"),
    ("get", "/project/issues/backlog", "BAOV"),
    (
        "post",
        "/runs/{run_id}/phases/{phase_id}/builder_result",
        "BO",
    ),
    (
        "post",
        "/runs/{run_id}/phases/{phase_id}/auditor_request",
        "AO",
    ),
    (
        "post",
        "/runs/{run_id}/phases/{phase_id}/auditor_result",
        "AO",
    ),
    ("get", "/runs/{run_id}/integration_status", "BAOV"),
    ("get", "/metrics/runs", "BAOV"),
    ("get", "/metrics/tiers/{run_id}", "BAOV"),
    ("get", "/reports/issue_backlog_summary", "BAOV"),
    ("get", "/reports/budget_analysis", "BAOV"),
    ("get", "/reports/run_summary/{run_id}", "BAOV"),
    ("post", "/runs/{run_id}/abort", "O"),
    ("post", "/runs/{run_id}/promote", "O"),
    ("get", "/runs/{run_id}/events", "BAOV"),
    // A builder-role lease request: an Auditor takes no Builder attempts.
    ("post", "/workers/lease", "BO"),
    ("post", "/workers/attempts/{attempt_id}/result", "BAO"),
    ("post", "/workers/attempts/{attempt_id}/heartbeat", "BAO"),
];

fn body_for(path: &str) -> Value {
    match path {
        "/runs/start" => plan("auth-new", 1, 1),
        p if p.ends_with("update_status") => json!({"state": "EXECUTING"}),
        p if p.ends_with("builder_result") => builder_body("auth-run", "p1", "failed"),
        p if p.ends_with("auditor_request") => {
            json!({"phase_id": "p1", "run_id": "auth-run", "tier_id": "t1"})
        }
        p if p.ends_with("auditor_result") => common::auditor_body("auth-run", "p1", "escalate"),
        p if p.ends_with("abort") => json!({"reason": "test"}),
        "/workers/lease" => json!({"role": "builder"}),
        p if p.ends_with("result") => json!({"lease_token": "x", "failure": {"reason": "x"}}),
        p if p.ends_with("heartbeat") => json!({"lease_token": "x"}),
        _ => json!({}),
    }
}

#[test]
fn each_role_against_each_endpoint() {
    let server = serve(ServerConfig {
        tokens: Tokens::from_env_value(TOKENS).unwrap(),
        ..ServerConfig::default()
    });
    let http = client();
    let url = &server.url;
    let doc: Value = http
        .get(format!("{url}/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    // Every documented operation is in the table, and the other way round.
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), p.clone()))
        })
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = EXPECTED
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);

    let start = http
        .post(format!("{url}/runs/start"))
        .bearer_auth(token("operator"))
        .json(&plan("auth-run", 1, 3))
        .send()
        .unwrap();
    assert_eq!(start.status(), 201);

    for (method, path, allowed) in EXPECTED {
        let concrete = path
            .replace("{run_id}", "auth-run")
            .replace("{phase_id}", "p1")
            .replace("{attempt_id}", "none");
        for who in ["none", "wrong", "builder", "auditor", "operator", "viewer"] {
            // The run's state must not move under the matrix: abort, promote and results
            // are checked against a run that needs them to be refused or harmless.
            let request = match *method {
                "get" => http.get(format!("{url}{concrete}")),
                _ => http.post(format!("{url}{concrete}")).json(&body_for(path)),
            };
            let request = match who {
                "none" => request,
                "wrong" => request.bearer_auth("not-a-token-at-all"),
                role => request.bearer_auth(token(role)),
            };
            let request = if path.ends_with("/events") {
                request.timeout(std::time::Duration::from_millis(500))
            } else {
                request
            };
            let Ok(response) = request.send() else {
                // An event stream that was let in and stays open.
                assert!(path.ends_with("/events"));
                continue;
            };
            let status = response.status().as_u16();
            let letter = match who {
                "builder" => "B",
                "auditor" => "A",
                "operator" => "O",
                "viewer" => "V",
                _ => "-",
            };
            let may = *allowed == "*" || allowed.contains(letter);
            if may {
                assert!(
                    status != 401 && status != 403,
                    "{who} {method} {path}: {status} {}",
                    response.text().unwrap_or_default()
                );
            } else if who == "none" || who == "wrong" {
                assert_eq!(status, 401, "{who} {method} {path}");
                assert_eq!(response.headers()["www-authenticate"], "Bearer");
            } else {
                assert_eq!(status, 403, "{who} {method} {path}");
            }
            assert!(status < 500, "{who} {method} {path}: {status}");
        }
    }
}

#[test]
fn a_builder_token_answers_only_the_attempt_it_leased() {
    let server = serve(ServerConfig {
        tokens: Tokens::from_env_value(TOKENS).unwrap(),
        ..ServerConfig::default()
    });
    let http = client();
    let url = &server.url;
    for run in ["lease-a", "lease-b"] {
        let started = http
            .post(format!("{url}/runs/start"))
            .bearer_auth(token("operator"))
            .json(&plan(run, 1, 1))
            .send()
            .unwrap();
        assert_eq!(started.status(), 201);
    }
    let take = |who: &str| -> Value {
        http.post(format!("{url}/workers/lease"))
            .bearer_auth(token(who))
            .json(&json!({"role": "builder"}))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let first = take("builder");
    let second = take("builder2");
    assert_ne!(first["run_id"], second["run_id"]);
    // b1 replays its lease token on b2's attempt.
    let replay = http
        .post(format!(
            "{url}/workers/attempts/{}/result",
            second["attempt_id"].as_str().unwrap()
        ))
        .bearer_auth(token("builder"))
        .json(&json!({"lease_token": first["lease_token"], "failure": {"reason": "replayed"}}))
        .send()
        .unwrap();
    assert_eq!(replay.status(), 403);
    // b1 answers b2's attempt through the seed's endpoint: not its lease.
    let run_b = second["run_id"].as_str().unwrap();
    let seed = http
        .post(format!("{url}/runs/{run_b}/phases/p1/builder_result"))
        .bearer_auth(token("builder"))
        .json(&builder_body(run_b, "p1", "success"))
        .send()
        .unwrap();
    assert_eq!(seed.status(), 403);
    // b2 answers it through the seed's endpoint: its own lease.
    let own = http
        .post(format!("{url}/runs/{run_b}/phases/p1/builder_result"))
        .bearer_auth(token("builder2"))
        .json(&builder_body(run_b, "p1", "success"))
        .send()
        .unwrap();
    assert_eq!(own.status(), 200, "{}", own.text().unwrap());
    // A builder cannot answer an attempt nobody leased through the seed's endpoint.
    let started = http
        .post(format!("{url}/runs/start"))
        .bearer_auth(token("operator"))
        .json(&plan("lease-c", 1, 1))
        .send()
        .unwrap();
    assert_eq!(started.status(), 201);
    let unleased = http
        .post(format!("{url}/runs/lease-c/phases/p1/builder_result"))
        .bearer_auth(token("builder"))
        .json(&builder_body("lease-c", "p1", "success"))
        .send()
        .unwrap();
    assert_eq!(unleased.status(), 409);
    assert!(unleased.text().unwrap().contains("lease it first"));
}

#[test]
fn without_tokens_only_loopback_is_served() {
    use autopack_server::{Server, ServerError, testing::MemoryHost};
    use std::sync::Arc;
    let open = Server::new(Arc::new(MemoryHost::new()), ServerConfig::default());
    assert!(matches!(
        open.check_listen("0.0.0.0:8000".parse().unwrap()),
        Err(ServerError::NeedsTokens { .. })
    ));
    assert!(open.check_listen("127.0.0.1:8000".parse().unwrap()).is_ok());
    assert!(open.check_listen("[::1]:8000".parse().unwrap()).is_ok());
    let guarded = Server::new(
        Arc::new(MemoryHost::new()),
        ServerConfig {
            tokens: Tokens::from_env_value(TOKENS).unwrap(),
            ..ServerConfig::default()
        },
    );
    assert!(
        guarded
            .check_listen("0.0.0.0:8000".parse().unwrap())
            .is_ok()
    );

    // A request from another host reaching a server without tokens is refused.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use tower::ServiceExt;
        let peer: std::net::SocketAddr = "10.1.2.3:5000".parse().unwrap();
        let app = open
            .router()
            .layer(axum::extract::connect_info::MockConnectInfo(peer));
        let response = app
            .oneshot(
                axum::http::Request::get("/runs/x")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        // The same request from loopback is served (an unknown run: 404).
        let local: std::net::SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let app = open
            .router()
            .layer(axum::extract::connect_info::MockConnectInfo(local));
        let response = app
            .oneshot(
                axum::http::Request::get("/runs/x")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    });
}
