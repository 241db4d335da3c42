//! Pull-model workers: remote Builders drive a run to DONE_SUCCESS, two workers racing
//! for one attempt (one gets it), a lease that runs out becomes a failed attempt, and the
//! event stream shows it all.

mod common;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use autopack_server::ServerConfig;
use common::{client, patch_for, plan, serve};
use serde_json::{Value, json};

fn lease(
    http: &reqwest::blocking::Client,
    url: &str,
    role: &str,
    seconds: Option<u64>,
) -> Option<Value> {
    let mut body = json!({"role": role, "worker": "test-worker"});
    if let Some(s) = seconds {
        body["lease_seconds"] = json!(s);
    }
    let response = http
        .post(format!("{url}/workers/lease"))
        .json(&body)
        .send()
        .unwrap();
    match response.status().as_u16() {
        200 => Some(response.json().unwrap()),
        204 => None,
        other => panic!("lease: {other} {}", response.text().unwrap()),
    }
}

fn answer(
    http: &reqwest::blocking::Client,
    url: &str,
    grant: &Value,
) -> reqwest::blocking::Response {
    let phase = grant["phase_id"].as_str().unwrap();
    http.post(format!("{url}/workers/attempts/{}/result", grant["attempt_id"].as_str().unwrap()))
        .json(&json!({
            "lease_token": grant["lease_token"],
            "result": {"phase_id": phase, "status": "success", "patch": patch_for(phase), "tokens_used": 100}
        }))
        .send()
        .unwrap()
}

#[test]
fn remote_workers_drive_a_run_to_done_success() {
    let server = serve(ServerConfig::default());
    let http = client();
    let url = &server.url;
    assert_eq!(
        http.post(format!("{url}/runs/start"))
            .json(&plan("w-run", 2, 3))
            .send()
            .unwrap()
            .status(),
        201
    );
    let mut answered = 0;
    while let Some(grant) = lease(&http, url, "builder", None) {
        assert_eq!(grant["run_id"], "w-run");
        assert_eq!(grant["request"]["phase_id"], grant["phase_id"]);
        assert!(grant["deadline"].is_string());
        let reply = answer(&http, url, &grant);
        assert_eq!(reply.status(), 200);
        let reply: Value = reply.json().unwrap();
        assert_eq!(reply["attempt_outcome"], "succeeded", "{reply:#}");
        assert_eq!(reply["phase_state"], "COMPLETE");
        answered += 1;
        // Replaying an answered attempt's lease is refused.
        assert_eq!(answer(&http, url, &grant).status(), 409);
    }
    assert_eq!(answered, 6);
    let run: Value = http
        .get(format!("{url}/runs/w-run"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(run["state"], "DONE_SUCCESS");
}

#[test]
fn two_workers_racing_for_one_attempt_one_gets_it() {
    let server = serve(ServerConfig::default());
    let url = server.url.clone();
    assert_eq!(
        client()
            .post(format!("{url}/runs/start"))
            .json(&plan("race", 1, 1))
            .send()
            .unwrap()
            .status(),
        201
    );
    for round in 0..3 {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let grants: Vec<Option<Value>> = (0..8)
            .map(|_| {
                let url = url.clone();
                let barrier = std::sync::Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let http = client();
                    barrier.wait();
                    lease(&http, &url, "builder", Some(600))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let got: Vec<&Value> = grants.iter().flatten().collect();
        // The first round leases the one attempt; later rounds find it leased.
        assert_eq!(got.len(), usize::from(round == 0), "{got:#?}");
        if let Some(grant) = got.first() {
            // Another worker's token does not answer it.
            let http = client();
            let wrong = http
                .post(format!("{url}/workers/attempts/{}/result", grant["attempt_id"].as_str().unwrap()))
                .json(&json!({"lease_token": "0123456789abcdef0123456789abcdef", "failure": {"reason": "x"}}))
                .send()
                .unwrap();
            assert_eq!(wrong.status(), 403);
        }
    }
}

#[test]
fn a_lease_that_runs_out_becomes_a_failed_attempt_and_the_next_is_offered() {
    let server = serve(ServerConfig::default());
    let http = client();
    let url = &server.url;
    let events = {
        let url = url.clone();
        assert_eq!(
            http.post(format!("{url}/runs/start"))
                .json(&plan("expiry", 1, 1))
                .send()
                .unwrap()
                .status(),
            201
        );
        std::thread::spawn(move || {
            let response = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap()
                .get(format!("{url}/runs/expiry/events"))
                .send()
                .unwrap();
            assert_eq!(
                response.headers()["content-type"].to_str().unwrap(),
                "text/event-stream"
            );
            let mut lines = Vec::new();
            for line in BufReader::new(response).lines() {
                lines.push(line.unwrap());
            }
            lines
        })
    };
    let first = lease(&http, url, "builder", Some(1)).expect("an attempt");
    assert_eq!(first["attempt"], 1);
    // The lease runs out: attempt 1 fails and attempt 2 is offered.
    let started = std::time::Instant::now();
    let second = loop {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(grant) = lease(&http, url, "builder", None) {
            break grant;
        }
        let run: Value = http
            .get(format!("{url}/runs/expiry"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no second attempt: {run:#}"
        );
    };
    assert_eq!(second["attempt"], 2);
    assert_eq!(second["phase_id"], "p1");
    assert_eq!(
        answer(&http, url, &first).status(),
        409,
        "an expired lease answers nothing"
    );
    let summary: Value = http
        .get(format!("{url}/reports/run_summary/expiry"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    // Attempt 1 failed, attempt 2 is out.
    assert_eq!(summary["phases"][0]["builder_attempts"], 2);
    let reply: Value = answer(&http, url, &second).json().unwrap();
    assert_eq!(reply["run_state"], "DONE_SUCCESS", "{reply:#}");

    // The event stream told it all, and ended with the run.
    let lines = events.join().unwrap();
    let data: Vec<Value> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let kinds: Vec<&str> = data.iter().map(|d| d["event"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"attempt_offered"), "{kinds:?}");
    assert_eq!(
        data.iter()
            .filter(|d| d["event"] == "attempt_offered")
            .count(),
        2
    );
    let executing = data
        .iter()
        .filter(|d| {
            d["event"] == "transition" && d["scope"] == "phase" && d["state"] == "EXECUTING"
        })
        .count();
    assert_eq!(executing, 2, "one EXECUTING per attempt: {data:#?}");
    let last = data.iter().rfind(|d| d["event"] == "transition").unwrap();
    assert_eq!(last["scope"], "run");
    assert_eq!(last["state"], "DONE_SUCCESS");
    assert!(lines.iter().any(|l| l == "event: transition"));
    let ids: Vec<u64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(|i| i.parse().unwrap())
        .collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "numbered in order, none lost"
    );

    // The attempt's failure names the lease.
    let run_events: Value = http
        .get(format!("{url}/runs/expiry"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(run_events["state"], "DONE_SUCCESS");
}

#[test]
fn an_operator_aborts_a_run() {
    let server = serve(ServerConfig::default());
    let http = client();
    let url = &server.url;
    assert_eq!(
        http.post(format!("{url}/runs/start"))
            .json(&plan("aborted", 1, 2))
            .send()
            .unwrap()
            .status(),
        201
    );
    let run: Value = http
        .post(format!("{url}/runs/aborted/abort"))
        .json(&json!({"reason": "wrong plan"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(run["state"], "DONE_FAILED_MANUAL_ABORT", "{run:#}");
    assert!(
        run["failure_reason"]
            .as_str()
            .unwrap()
            .contains("wrong plan")
    );
    assert!(lease(&http, url, "builder", None).is_none());
    let again = http
        .post(format!("{url}/runs/aborted/abort"))
        .json(&json!({"reason": "twice"}))
        .send()
        .unwrap();
    assert_eq!(again.status(), 409);
}
