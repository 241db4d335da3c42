//! A server on 127.0.0.1 over a memory host, and plans and results as the first
//! implementation's clients send them.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use autopack_server::testing::MemoryHost;
use autopack_server::{Server, ServerConfig};
use serde_json::{Value, json};

/// A running server; stops when dropped.
pub struct Running {
    pub url: String,
    pub host: MemoryHost,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn serve(config: ServerConfig) -> Running {
    let host = MemoryHost::new();
    let server = Server::new(Arc::new(host.clone()), config);
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            url_tx
                .send(format!("http://{}", listener.local_addr().unwrap()))
                .unwrap();
            server
                .serve(listener, async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
        });
    });
    Running {
        url: url_rx.recv().unwrap(),
        host,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A plan of `tiers` tiers with `per_tier` phases each (`p1`, `p2`, …).
pub fn plan(run_id: &str, tiers: usize, per_tier: usize) -> Value {
    let mut phases = Vec::new();
    let mut n = 0;
    for t in 0..tiers {
        for _ in 0..per_tier {
            n += 1;
            phases.push(json!({
                "phase_id": format!("p{n}"), "phase_index": n - 1, "tier_id": format!("t{}", t + 1),
                "name": format!("Phase {n}"), "description": "do it",
                "task_category": "feature", "complexity": "low", "builder_mode": "tweak_light"
            }));
        }
    }
    json!({
        "run": {"run_id": run_id, "safety_profile": "normal", "run_scope": "multi_tier",
                "token_cap": 5_000_000, "max_phases": 25},
        "tiers": (0..tiers).map(|t| json!({"tier_id": format!("t{}", t + 1), "tier_index": t,
                "name": format!("Tier {}", t + 1), "description": "a tier"})).collect::<Vec<_>>(),
        "phases": phases,
    })
}

pub fn patch_for(phase: &str) -> String {
    format!(
        "diff --git a/src/{phase}.txt b/src/{phase}.txt\nnew file mode 100644\n--- /dev/null\n+++ b/src/{phase}.txt\n@@ -0,0 +1 @@\n+{phase}\n"
    )
}

/// Every field of `builder_result` that the seed's cursor integration sends.
pub fn builder_body(run: &str, phase: &str, status: &str) -> Value {
    json!({
        "phase_id": phase, "run_id": run, "patch_content": patch_for(phase),
        "files_changed": [format!("src/{phase}.txt")], "lines_added": 1, "lines_removed": 0,
        "builder_attempts": 1, "tokens_used": 1200, "duration_minutes": 0.5,
        "suggested_issues": [], "status": status, "notes": "done"
    })
}

/// Every field of `auditor_result` that the seed's codex integration sends.
pub fn auditor_body(run: &str, phase: &str, recommendation: &str) -> Value {
    json!({
        "phase_id": phase, "run_id": run, "review_notes": "looks right",
        "issues_found": [{"issue_key": "naming_nit", "severity": "minor", "category": "style",
                          "evidence_refs": ["src/x.txt"], "description": "a nit"}],
        "suggested_patches": [], "auditor_attempts": 1, "tokens_used": 300,
        "recommendation": recommendation, "confidence": "high"
    })
}
