//! `autopack serve` on a real repository: the first implementation's client flow and a
//! remote worker drive a run to DONE_SUCCESS through the governed path (gate, sandboxed
//! CI, snapshots), and a run left unfinished by a stopped server is resumed by the next.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use autopack_examples::sample::{commits_ahead, main_tip};
use common::{BIN, plan_json, repo, s};
use serde_json::{Value, json};

struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(repo: &Path) -> Served {
    serve_with(repo, &[])
}

fn serve_with(repo: &Path, extra: &[&str]) -> Served {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--repo",
            s(repo),
            "--listen",
            "127.0.0.1:0",
            "--test-cmd",
            "sh run_tests.sh",
        ])
        .args(extra)
        .env("AUTOPACK_LEASE_TTL_SECS", "3")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("autopack serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Served { child, url }
}

/// Stops the server as Ctrl-C does, and waits for it to exit.
fn interrupt(mut served: Served) {
    let pid = served.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = served.child.wait().unwrap();
    assert!(status.success(), "serve exits 0 on Ctrl-C: {status}");
}

fn patch(phase: &str) -> String {
    format!(
        "diff --git a/notes/{phase}.md b/notes/{phase}.md\nnew file mode 100644\n--- /dev/null\n+++ b/notes/{phase}.md\n@@ -0,0 +1 @@\n+{phase}\n"
    )
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .unwrap()
}

#[test]
fn the_seed_client_and_a_remote_worker_drive_a_run_on_a_real_repository() {
    let (_dir, repo) = repo();
    let base = main_tip(&repo).unwrap();
    let served = serve(&repo);
    let url = &served.url;
    let http = http();

    let run: Value = http
        .post(format!("{url}/runs/start"))
        .json(&plan_json("served"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(run["run_id"], "served", "{run:#}");
    assert_eq!(run["tiers"][0]["phases"][0]["state"], "EXECUTING");

    // The first implementation's Builder client.
    let reply: Value = http
        .post(format!("{url}/runs/served/phases/notes-a/builder_result"))
        .json(&json!({
            "phase_id": "notes-a", "run_id": "served", "patch_content": patch("notes-a"),
            "files_changed": ["notes/notes-a.md"], "lines_added": 1, "lines_removed": 0,
            "builder_attempts": 1, "tokens_used": 500, "duration_minutes": 1.0,
            "suggested_issues": [], "status": "success", "notes": ""
        }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(reply["phase_state"], "COMPLETE", "{reply:#}");
    let commit = reply["commit_sha"].as_str().unwrap().to_owned();

    // A remote worker takes the next attempt.
    let grant: Value = http
        .post(format!("{url}/workers/lease"))
        .json(&json!({"role": "builder", "worker": "remote-1"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(grant["phase_id"], "notes-b");
    let answered: Value = http
        .post(format!("{url}/workers/attempts/{}/result", grant["attempt_id"].as_str().unwrap()))
        .json(&json!({
            "lease_token": grant["lease_token"],
            "result": {"phase_id": "notes-b", "status": "success", "patch": patch("notes-b"), "tokens_used": 700}
        }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(answered["run_state"], "DONE_SUCCESS", "{answered:#}");

    // The integration branch holds both phases; main is untouched.
    let status: Value = http
        .get(format!("{url}/runs/served/integration_status"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(status["commits_ahead_of_main"], 2);
    let ahead = commits_ahead(&repo, "refs/heads/autonomous/served", "refs/heads/main").unwrap();
    assert_eq!(ahead.len(), 2);
    assert!(
        ahead
            .iter()
            .any(|(short, _)| commit.starts_with(short.as_str())),
        "{ahead:?} {commit}"
    );
    assert_eq!(main_tip(&repo).unwrap(), base);
    // The same artefacts as `autopack run`.
    let runs = repo.join(".autonomous_runs").join("served");
    assert!(runs.join("run_summary.md").is_file());
    assert!(
        std::fs::read_to_string(runs.join("run_summary.md"))
            .unwrap()
            .contains("DONE_SUCCESS")
    );
    let summary: Value = http
        .get(format!("{url}/reports/run_summary/served"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(summary["budgets"]["tokens_used"], 1200);
    // The layout checks out as after `autopack run`.
    let out = common::autopack(&["validate", "--repo", s(&repo)]);
    assert_eq!(common::code(&out), 0, "{:?}", common::text(&out));
    interrupt(served);
}

#[test]
fn a_run_left_by_a_stopped_server_is_resumed_by_the_next() {
    let (_dir, repo) = repo();
    let served = serve(&repo);
    let http = http();
    let started = http
        .post(format!("{}/runs/start", served.url))
        .json(&plan_json("paused"))
        .send()
        .unwrap();
    assert_eq!(started.status(), 201);
    interrupt(served);

    let served = serve(&repo);
    let url = &served.url;
    let run: Value = http
        .get(format!("{url}/runs/paused"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(run["state"], "PHASE_EXECUTION", "{run:#}");
    for phase in ["notes-a", "notes-b"] {
        let reply = http
            .post(format!("{url}/runs/paused/phases/{phase}/builder_result"))
            .json(&json!({"phase_id": phase, "run_id": "paused", "patch_content": patch(phase), "status": "success", "tokens_used": 10}))
            .send()
            .unwrap();
        assert_eq!(reply.status(), 200, "{}", reply.text().unwrap());
    }
    let run: Value = http
        .get(format!("{url}/runs/paused"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(run["state"], "DONE_SUCCESS");
    interrupt(served);
}

#[test]
fn instances_sharing_a_postgres_store_drive_each_run_once() {
    let url = autopack_postgres::testing::shared().database().unwrap();
    let (_dir, repo) = repo();
    let http = http();
    let a = serve_with(&repo, &["--store", &url]);
    let b = serve_with(&repo, &["--store", &url]);
    let started = http
        .post(format!("{}/runs/start", a.url))
        .json(&plan_json("shared"))
        .send()
        .unwrap();
    assert_eq!(started.status(), 201);
    // B reads the run from the store, but does not drive it, nor start it again.
    let seen: Value = http
        .get(format!("{}/runs/shared", b.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(seen["state"], "PHASE_EXECUTION", "{seen:#}");
    let body = |phase: &str| json!({"phase_id": phase, "run_id": "shared", "patch_content": patch(phase), "status": "success", "tokens_used": 10});
    let elsewhere = http
        .post(format!(
            "{}/runs/shared/phases/notes-a/builder_result",
            b.url
        ))
        .json(&body("notes-a"))
        .send()
        .unwrap();
    assert_eq!(elsewhere.status(), 409);
    let again = http
        .post(format!("{}/runs/start", b.url))
        .json(&plan_json("shared"))
        .send()
        .unwrap();
    assert_eq!(again.status(), 400);
    let reply: Value = http
        .post(format!(
            "{}/runs/shared/phases/notes-a/builder_result",
            a.url
        ))
        .json(&body("notes-a"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(reply["phase_state"], "COMPLETE", "{reply:#}");
    // A stops; the next instance to start takes the run over and finishes it.
    interrupt(a);
    interrupt(b);
    let c = serve_with(&repo, &["--store", &url]);
    let reply: Value = http
        .post(format!(
            "{}/runs/shared/phases/notes-b/builder_result",
            c.url
        ))
        .json(&body("notes-b"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(reply["run_state"], "DONE_SUCCESS", "{reply:#}");
    interrupt(c);
}
