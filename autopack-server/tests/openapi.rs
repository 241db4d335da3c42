//! The checked-in `openapi.json` is the document the server serves; requests generated
//! from it — valid, mutated and random — never get a 5xx.

mod common;

use std::sync::Arc;

use autopack_server::testing::MemoryHost;
use autopack_server::{Server, ServerConfig};
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::Request;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

#[test]
fn the_checked_in_document_is_current() {
    let want = autopack_server::openapi::document_json();
    if std::env::var("AUTOPACK_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(FILE, want).unwrap();
    }
    let have = std::fs::read_to_string(FILE).unwrap_or_default();
    assert!(
        have == want,
        "autopack-server/openapi.json is stale (rerun with AUTOPACK_BLESS=1 to refresh)"
    );
    // Every reference resolves.
    let doc: Value = serde_json::from_str(want).unwrap();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let pointer = r.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "dangling {r}");
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                out.push(r.clone());
            }
            o.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Every operation of the document: method, path template, path parameter names.
fn operations() -> Vec<(String, String, Vec<String>)> {
    let doc = autopack_server::openapi::document();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            out.push((method.clone(), path.clone(), params));
        }
    }
    out
}

fn path_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("fuzz-run".to_owned()),
        Just("p1".to_owned()),
        Just("p2".to_owned()),
        Just("..".to_owned()),
        Just("a%2Fb".to_owned()),
        Just("%00".to_owned()),
        Just("x".repeat(300)),
        "[a-zA-Z0-9_.~-]{1,20}",
        "\\PC{1,8}".prop_map(|s| url_escape(&s)),
    ]
}

fn url_escape(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        Just(json!("success")),
        Just(json!("builder")),
        Just(json!("p1")),
        Just(json!("fuzz-run")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z_]{1,12}",
                    Just("run".to_owned()),
                    Just("run_id".to_owned()),
                    Just("phase_id".to_owned()),
                    Just("status".to_owned()),
                    Just("role".to_owned()),
                    Just("lease_token".to_owned()),
                    Just("result".to_owned()),
                    Just("state".to_owned()),
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Valid bodies the seed's clients send, to be mutated.
fn valid_bodies() -> Vec<Value> {
    vec![
        common::plan("fuzz-new", 1, 2),
        common::builder_body("fuzz-run", "p1", "success"),
        common::builder_body("fuzz-run", "p1", "needs_review"),
        common::auditor_body("fuzz-run", "p1", "approve"),
        json!({"phase_id": "p1", "run_id": "fuzz-run", "tier_id": "t1"}),
        json!({"state": "COMPLETE"}),
        json!({"role": "builder", "lease_seconds": 5}),
        json!({"lease_token": "0", "result": {"phase_id": "p1", "status": "success", "tokens_used": 1}}),
        json!({"reason": "fuzz"}),
        json!(["tests/x.py::y"]),
    ]
}

fn mutate(mut body: Value, key: String, value: Value, drop: bool) -> Value {
    if let Value::Object(o) = &mut body {
        if drop {
            let first = o.keys().next().cloned();
            if let Some(k) = first {
                o.remove(&k);
            }
        } else {
            o.insert(key, value);
        }
    }
    body
}

#[derive(Debug, Clone)]
enum Body_ {
    None,
    Raw(Vec<u8>),
    Json(Value),
}

fn body() -> impl Strategy<Value = Body_> {
    prop_oneof![
        Just(Body_::None),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Body_::Raw),
        json_value().prop_map(Body_::Json),
        (
            prop::sample::select(valid_bodies()),
            "[a-z_]{1,10}",
            json_value(),
            any::<bool>()
        )
            .prop_map(|(b, k, v, d)| Body_::Json(mutate(b, k, v, d))),
        prop::sample::select(valid_bodies()).prop_map(Body_::Json),
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("?status=DONE_SUCCESS".to_owned()),
        Just("?issue_key=k1&severity=minor&source=probe&category=test_failure".to_owned()),
        Just("?issue_key=k1&severity=huge&source=probe&category=x".to_owned()),
        "\\?[a-z_=&%0-9]{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn fuzzed_requests_get_no_5xx(
        requests in prop::collection::vec(
            (prop::sample::select(operations()), prop::collection::vec(path_value(), 3), query(), body()),
            1..6,
        )
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let server = Server::new(Arc::new(MemoryHost::new()), ServerConfig::default());
            let app = server
                .router()
                .layer(MockConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 9))));
            // A real run for the ids to hit.
            let start = Request::post("/runs/start")
                .header("content-type", "application/json")
                .body(Body::from(common::plan("fuzz-run", 1, 2).to_string()))
                .unwrap();
            assert_eq!(app.clone().oneshot(start).await.unwrap().status(), 201);
            for ((method, template, names), values, query, body) in requests {
                let mut path = template.clone();
                for (name, value) in names.iter().zip(&values) {
                    path = path.replace(&format!("{{{name}}}"), value);
                }
                let uri = format!("{path}{query}");
                let Ok(builder) = Request::builder().method(method.to_uppercase().as_str()).uri(&uri).header("content-type", "application/json").body(()) else {
                    continue;
                };
                let (parts, ()) = builder.into_parts();
                let payload = match &body {
                    Body_::None => Body::empty(),
                    Body_::Raw(bytes) => Body::from(bytes.clone()),
                    Body_::Json(v) => Body::from(v.to_string()),
                };
                let request = Request::from_parts(parts, payload);
                let response = tokio::time::timeout(std::time::Duration::from_secs(20), app.clone().oneshot(request))
                    .await
                    .expect("answered in time")
                    .unwrap();
                let status = response.status().as_u16();
                assert!(status < 500, "{method} {uri} {body:?}: {status}");
                if status >= 400 {
                    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
                    let err: Value = serde_json::from_slice(&bytes)
                        .unwrap_or_else(|_| panic!("{method} {uri}: error body not JSON: {}", String::from_utf8_lossy(&bytes)));
                    assert!(err.get("detail").is_some(), "{method} {uri}: {err}");
                }
            }
            server.detach_all();
        });
    }
}
