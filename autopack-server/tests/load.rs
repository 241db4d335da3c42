//! A bounded load test on loopback: 64 concurrent clients for 30 s (override with
//! `AUTOPACK_LOAD_SECS`), nine reads to one Builder result each, on 64 runs. Asserts that
//! nothing is lost — every accepted result is a completed phase in its run's record, and
//! no request fails — and reports throughput and p99 latency.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use autopack_server::testing::MemoryHost;
use autopack_server::{Server, ServerConfig};
use serde_json::Value;

const CLIENTS: usize = 64;
const PHASES: usize = 25;

struct Tally {
    latencies: Vec<Duration>,
    /// Accepted results per run.
    accepted: Vec<(String, usize)>,
    reads: usize,
}

async fn client_loop(http: reqwest::Client, url: String, me: usize, until: Instant) -> Tally {
    let mut run = format!("load-{me}");
    let other = format!("load-{}", (me + 1) % CLIENTS);
    let mut tally = Tally {
        latencies: Vec::new(),
        accepted: vec![(run.clone(), 0)],
        reads: 0,
    };
    let mut next_phase = 1;
    while Instant::now() < until {
        if next_phase > PHASES {
            // The run is done: the client starts its next one.
            run = format!("load-{me}-{}", tally.accepted.len());
            let response = http
                .post(format!("{url}/runs/start"))
                .json(&common::plan(&run, 1, PHASES))
                .send()
                .await
                .expect("start sent");
            assert_eq!(response.status(), 201);
            tally.accepted.push((run.clone(), 0));
            next_phase = 1;
        }
        for i in 0..9 {
            let path = match i % 3 {
                0 => format!("{url}/runs/{run}"),
                1 => format!("{url}/runs/{other}"),
                _ => format!("{url}/metrics/tiers/{run}"),
            };
            let t = Instant::now();
            let response = http.get(&path).send().await.expect("read sent");
            assert_eq!(response.status(), 200, "{path}");
            response.bytes().await.expect("read body");
            tally.latencies.push(t.elapsed());
            tally.reads += 1;
        }
        let phase = format!("p{next_phase}");
        let t = Instant::now();
        let response = http
            .post(format!("{url}/runs/{run}/phases/{phase}/builder_result"))
            .json(&common::builder_body(&run, &phase, "success"))
            .send()
            .await
            .expect("result sent");
        let status = response.status();
        let body: Value = response.json().await.expect("result body");
        tally.latencies.push(t.elapsed());
        assert_eq!(status, 200, "{run} {phase}: {body}");
        assert_eq!(body["phase_state"], "COMPLETE", "{run} {phase}: {body}");
        if let Some(last) = tally.accepted.last_mut() {
            last.1 += 1;
        }
        next_phase += 1;
    }
    tally
}

#[test]
fn sixty_four_clients_lose_nothing() {
    let secs: u64 = std::env::var("AUTOPACK_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let server = Server::new(Arc::new(MemoryHost::new()), ServerConfig::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let serving = tokio::spawn(server.clone().serve(listener, std::future::pending()));
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(CLIENTS)
            .build()
            .unwrap();
        for me in 0..CLIENTS {
            let response = http
                .post(format!("{url}/runs/start"))
                .json(&common::plan(&format!("load-{me}"), 1, PHASES))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
        }
        let started = Instant::now();
        let until = started + Duration::from_secs(secs);
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|me| tokio::spawn(client_loop(http.clone(), url.clone(), me, until)))
            .collect();
        let mut latencies = Vec::new();
        let mut accepted = Vec::new();
        let mut reads = 0;
        for task in tasks {
            let tally = task.await.unwrap();
            latencies.extend(tally.latencies);
            accepted.extend(tally.accepted);
            reads += tally.reads;
        }
        let elapsed = started.elapsed();
        // Nothing lost: each accepted result is a completed phase of its run.
        for (id, want) in &accepted {
            let run: Value = http
                .get(format!("{url}/runs/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let complete = run["tiers"][0]["phases"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["state"] == "COMPLETE")
                .count();
            assert_eq!(complete, *want, "run {id}");
            assert_eq!(run["tokens_used"], 1200 * *want as u64);
            let state = if *want == PHASES { "DONE_SUCCESS" } else { "PHASE_EXECUTION" };
            assert_eq!(run["state"], state, "run {id}");
        }
        latencies.sort_unstable();
        let p99 = latencies[latencies.len() * 99 / 100];
        let total = latencies.len();
        let results: usize = accepted.iter().map(|(_, n)| n).sum();
        eprintln!(
            "load: {CLIENTS} clients, {:.1} s: {total} requests ({reads} reads, {results} results on {} runs), {:.0} requests/s, p50 {:?}, p99 {:?}",
            elapsed.as_secs_f64(),
            accepted.len(),
            total as f64 / elapsed.as_secs_f64(),
            latencies[total / 2],
            p99
        );
        assert!(results > 0);
        serving.abort();
    });
}
