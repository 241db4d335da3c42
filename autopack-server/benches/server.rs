//! `GET /runs/{run_id}` with 64 concurrent clients on loopback, server and clients on the
//! same two cores (the goal: at least 5,000 requests/s, p99 under 20 ms).
//!
//! The run read is a 25-phase run half-way through (the first implementation's default
//! `max_phases`), served by a memory host: the HTTP layer, the session's published view
//! and the JSON it keeps are what is measured. Criterion reports requests/s (one element
//! a request); a fixed 5 s window then prints p50/p99 latency.

#![allow(missing_docs)] // criterion_group! generates an undocumented public function.

use std::sync::Arc;
use std::time::{Duration, Instant};

use autopack_server::testing::MemoryHost;
use autopack_server::{Server, ServerConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

const CLIENTS: u64 = 64;

fn plan() -> serde_json::Value {
    let phases: Vec<_> = (1..=25)
        .map(|n| {
            json!({"phase_id": format!("p{n}"), "phase_index": n - 1, "tier_id": "t1",
                   "name": format!("Phase {n}"), "task_category": "feature", "complexity": "low"})
        })
        .collect();
    json!({"run": {"run_id": "bench-run"},
           "tiers": [{"tier_id": "t1", "tier_index": 0, "name": "Tier"}], "phases": phases})
}

async fn setup() -> (String, reqwest::Client) {
    let server = Server::new(Arc::new(MemoryHost::new()), ServerConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(server.serve(listener, std::future::pending()));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS as usize)
        .build()
        .unwrap();
    let started = http
        .post(format!("{url}/runs/start"))
        .json(&plan())
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 201);
    for n in 1..=12 {
        let phase = format!("p{n}");
        let patch = format!(
            "diff --git a/{phase} b/{phase}\nnew file mode 100644\n--- /dev/null\n+++ b/{phase}\n@@ -0,0 +1 @@\n+x\n"
        );
        let r = http
            .post(format!("{url}/runs/bench-run/phases/{phase}/builder_result"))
            .json(&json!({"phase_id": phase, "run_id": "bench-run", "status": "success", "patch_content": patch, "tokens_used": 10}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    (url, http)
}

/// At least `requests` GETs, spread evenly over 64 clients (rounded up to a multiple of
/// 64); every latency.
async fn load(url: &str, http: &reqwest::Client, requests: u64) -> Vec<Duration> {
    let per = requests.div_ceil(CLIENTS).max(1);
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let http = http.clone();
            let target = format!("{url}/runs/bench-run");
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per as usize);
                for _ in 0..per {
                    let t = Instant::now();
                    let r = http.get(&target).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    r.bytes().await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

fn get_run(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (url, http) = rt.block_on(setup());
    let mut group = c.benchmark_group("server");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("get_run_64_clients", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                let done = load(&url, &http, iters).await.len();
                // More requests than asked may have run (a multiple of 64): scale to one
                // request each.
                start.elapsed().mul_f64(iters as f64 / done as f64)
            })
        });
    });
    group.finish();
    let (mut lat, secs) = rt.block_on(async {
        let start = Instant::now();
        let mut lat = Vec::new();
        while start.elapsed() < Duration::from_secs(5) {
            lat.extend(load(&url, &http, 6_400).await);
        }
        (lat, start.elapsed().as_secs_f64())
    });
    lat.sort_unstable();
    println!(
        "server/get_run_64_clients window: {} requests in {secs:.1} s = {:.0} requests/s; p50 {:?}, p99 {:?}, max {:?}",
        lat.len(),
        lat.len() as f64 / secs,
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100],
        lat[lat.len() - 1]
    );
}

criterion_group!(benches, get_run);
criterion_main!(benches);
