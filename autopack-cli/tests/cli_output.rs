//! What `run` and `resume` print and return: `--json` keeps stdout to one JSON document
//! (progress on stderr), both exit 1 for a run that ended `DONE_FAILED_*`, and `resume`
//! works from a relative `--repo`.

use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::runs::*;
use common::*;

fn run_cmd(dir: &Path, repo: &Path, run_id: &str, test_cmd: &str, extra: &[&str]) -> Command {
    let plan = write_plan(dir, run_id);
    let mut command = Command::new(BIN);
    command
        .args([
            "run",
            "--plan",
            s(&plan),
            "--repo",
            s(repo),
            "--builder-cmd",
            &good_builder(dir),
            "--test-cmd",
            test_cmd,
            "--sandbox-read",
            s(&scripts(dir)),
        ])
        .args(extra);
    command
}

fn stdout_json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {:?}", text(out)))
}

#[test]
fn json_keeps_stdout_to_the_document_and_progress_goes_to_stderr() {
    let (tmp, repo) = repo();
    let out = run_cmd(
        tmp.path(),
        &repo,
        "json-run",
        "sh run_tests.sh",
        &["--json"],
    )
    .output()
    .unwrap();
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let json = stdout_json(&out);
    assert_eq!(json[0]["run_id"], "json-run");
    assert_eq!(json[0]["status"], "DONE_SUCCESS");
    // The progress lines are there, on stderr.
    let stderr = text(&out).1;
    assert!(
        stderr.contains("strategy: ") && stderr.contains("DONE_SUCCESS"),
        "{stderr}"
    );

    let out = autopack(&["resume", "json-run", "--repo", s(&repo), "--json"]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    assert_eq!(stdout_json(&out)[0]["status"], "DONE_SUCCESS");
}

#[test]
fn run_and_resume_exit_1_for_a_failed_run() {
    let (tmp, repo) = repo();
    let out = run_cmd(tmp.path(), &repo, "red-run", "false", &["--quiet"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{:?}", text(&out));
    assert!(
        text(&out).0.contains("ended DONE_FAILED_"),
        "{:?}",
        text(&out)
    );
    // Resuming does not change the run's result, nor its exit code.
    let out = autopack(&["resume", "red-run", "--repo", s(&repo)]);
    assert_eq!(code(&out), 1, "{:?}", text(&out));
    assert!(
        text(&out).0.contains("already finished in DONE_FAILED_"),
        "{:?}",
        text(&out)
    );
    let out = autopack(&["resume", "red-run", "--repo", s(&repo), "--json"]);
    assert_eq!(code(&out), 1, "{:?}", text(&out));
    assert!(
        stdout_json(&out)[0]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("DONE_FAILED_")),
        "{:?}",
        text(&out)
    );
}

#[test]
fn resume_from_a_relative_repo_finishes_the_run() {
    let want = uninterrupted();
    let (tmp, repo) = repo();
    std::fs::write(tmp.path().join("hold"), "").unwrap();
    let mut run = start(tmp.path(), &repo, RUN, &[]).spawn().unwrap();
    wait_for("the Builder to wait", || {
        tmp.path().join("waiting").exists()
    });
    run.kill().unwrap();
    let _ = run.wait();
    std::fs::remove_file(tmp.path().join("hold")).unwrap();
    // `repo` is `{tmp}/repo`: resumed from `{tmp}` as `--repo repo`.
    let out = Command::new(BIN)
        .args(["resume", RUN, "--repo", "repo", "--quiet"])
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    assert_eq!(outcome(&repo), want);
}

#[test]
fn progress_lines_come_in_causal_order() {
    let (tmp, repo) = repo();
    let out = run_cmd(tmp.path(), &repo, "ordered", "sh run_tests.sh", &[])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let stdout = text(&out).0;
    let position = |needle: &[&str]| {
        stdout
            .lines()
            .position(|l| needle.iter().all(|n| l.contains(n)))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{stdout}"))
    };
    // A phase ends before its tier; the tier before the run; the next tier starts after.
    let phase_a = position(&["phase  notes-a", "COMPLETE"]);
    let tier_1 = position(&["tier   t1", "COMPLETE"]);
    let tier_2 = position(&["tier   t2", "RUNNING"]);
    let phase_b = position(&["phase  notes-b", "COMPLETE"]);
    let tier_2_done = position(&["tier   t2", "COMPLETE"]);
    let run_done = position(&["run    DONE_SUCCESS"]);
    assert!(phase_a < tier_1 && tier_1 < tier_2, "{stdout}");
    assert!(phase_b < tier_2_done && tier_2_done < run_done, "{stdout}");
}

#[test]
fn one_plan_runs_again_under_another_run_id() {
    let (tmp, repo) = repo();
    let first = run_cmd(
        tmp.path(),
        &repo,
        "plan-id",
        "sh run_tests.sh",
        &["--quiet"],
    )
    .output()
    .unwrap();
    assert_eq!(code(&first), 0, "{:?}", text(&first));
    // The same plan file (run_id "plan-id") again: refused as it stands, run under --run-id.
    let again = run_cmd(
        tmp.path(),
        &repo,
        "plan-id",
        "sh run_tests.sh",
        &["--quiet"],
    )
    .output()
    .unwrap();
    assert_eq!(code(&again), 2, "{:?}", text(&again));
    let other = run_cmd(
        tmp.path(),
        &repo,
        "plan-id",
        "sh run_tests.sh",
        &["--quiet", "--run-id", "plan-id-2"],
    )
    .output()
    .unwrap();
    assert_eq!(code(&other), 0, "{:?}", text(&other));
    assert!(
        text(&other).0.contains("run plan-id-2 ended DONE_SUCCESS"),
        "{:?}",
        text(&other)
    );
    assert!(
        repo.join(".autonomous_runs/plan-id-2/run_summary.md")
            .is_file()
    );
    let bad = run_cmd(
        tmp.path(),
        &repo,
        "plan-id",
        "true",
        &["--run-id", "../escape"],
    )
    .output()
    .unwrap();
    assert_eq!(code(&bad), 2, "{:?}", text(&bad));
    assert!(text(&bad).1.contains("--run-id"), "{:?}", text(&bad));
}

#[test]
fn a_tier_whose_ci_runs_are_used_up_says_so_everywhere() {
    let (tmp, repo) = repo();
    let plan = tmp.path().join("spent.json");
    let json = serde_json::json!({
        "run": {"run_id": "spent", "run_scope": "multi_tier", "safety_profile": "normal"},
        "tiers": [{"tier_id": "t1", "tier_index": 1, "name": "Only"}],
        "phases": [
            {"phase_id": "a", "phase_index": 1, "tier_id": "t1", "name": "A", "task_category": "docs"},
            {"phase_id": "b", "phase_index": 2, "tier_id": "t1", "name": "B", "task_category": "docs"}
        ]
    });
    std::fs::write(&plan, json.to_string()).unwrap();
    // Red for the first three CI runs (all of phase a's first attempt), green after: phase
    // a completes on its fourth run, and phase b finds the tier's CI runs spent.
    let count = tmp.path().join("ci-count");
    let test_cmd = format!(
        "n=$(cat '{c}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{c}'; [ $n -gt 3 ]",
        c = s(&count)
    );
    let out = Command::new(BIN)
        .args([
            "run",
            "--plan",
            s(&plan),
            "--repo",
            s(&repo),
            "--builder-cmd",
            &good_builder(tmp.path()),
            "--test-cmd",
            &test_cmd,
            "--ci-backoff",
            "0",
            // The counter lives outside the CI workspace.
            "--no-sandbox",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{:?}", text(&out));
    let stdout = text(&out).0;
    // A progress line,
    assert!(
        stdout.contains("budget t1") && stdout.contains("CI run cap used up"),
        "{stdout}"
    );
    // a budget flag of the tier,
    let tiers = autopack(&["report", "tiers", "spent", "--repo", s(&repo), "--json"]);
    let tiers: serde_json::Value = serde_json::from_slice(&tiers.stdout).unwrap();
    let flags = &tiers["tiers"][0]["budget_flags"];
    assert_eq!(flags[0]["breach"], "ci_runs_used_up", "{tiers}");
    // a row of the tier summary,
    let summary = read_dir_text(&repo.join(".autonomous_runs/spent/tiers"));
    assert!(
        summary.contains("| CI runs | 4 | 4 | **used up** |"),
        "{summary}"
    );
    assert!(summary.contains("tier CI run cap used up"), "{summary}");
    // and a row of the budget report.
    let budget = autopack(&["report", "budget", "--repo", s(&repo)]);
    assert!(text(&budget).0.contains("spent"), "{:?}", text(&budget));
    assert!(
        !text(&budget).0.contains("no budget aborts"),
        "{:?}",
        text(&budget)
    );
}

#[test]
fn completions_and_the_manual_page_are_generated_from_the_options() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = autopack(&["completions", shell]);
        assert_eq!(code(&out), 0, "{shell}: {:?}", text(&out));
        let script = text(&out).0;
        for word in ["autopack", "resume", "export", "store"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    // The bash script is valid bash.
    let script = autopack(&["completions", "bash"]).stdout;
    let path = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(path.path(), script).unwrap();
    let checked = Command::new("bash")
        .arg("-n")
        .arg(path.path())
        .status()
        .unwrap();
    assert!(checked.success());
    let out = autopack(&["completions", "tcsh"]);
    assert_eq!(code(&out), 2, "{:?}", text(&out));

    let out = autopack(&["man"]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let page = text(&out).0;
    assert!(page.contains(".TH autopack 1"), "{page}");
    for word in ["resume", "promote", "completions"] {
        assert!(page.contains(word), "the manual page lacks {word}");
    }
}

#[test]
fn every_agent_attempt_leaves_a_log_with_its_stderr_even_when_it_went_well() {
    let (tmp, repo) = repo();
    let plan = write_plan(tmp.path(), "logged");
    let builder = format!("echo 'thinking out loud' >&2; {}", good_builder(tmp.path()));
    let out = Command::new(BIN)
        .args([
            "run",
            "--plan",
            s(&plan),
            "--repo",
            s(&repo),
            "--builder-cmd",
            &builder,
            "--test-cmd",
            "sh run_tests.sh",
            "--sandbox-read",
            s(&scripts(tmp.path())),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let logs = repo.join(".autonomous_runs/logged/agents");
    let log = std::fs::read_to_string(logs.join("notes-a.builder.1.log")).unwrap();
    assert!(log.contains("Exited(0)"), "{log}");
    assert!(
        log.contains("--- stderr (tail) ---\nthinking out loud"),
        "{log}"
    );
    assert!(log.contains("\"status\":\"success\""), "{log}");
    assert!(logs.join("notes-b.builder.1.log").is_file());
    // The tree still validates (the logs are not a document it checks).
    let out = autopack(&["validate", "--repo", s(&repo)]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
}

#[test]
fn the_event_stream_has_every_transition_action_and_result_with_its_time() {
    let (tmp, repo) = repo();
    let events = tmp.path().join("events.jsonl");
    let out = run_cmd(
        tmp.path(),
        &repo,
        "evented",
        "sh run_tests.sh",
        &["--quiet", "--events", s(&events)],
    )
    .output()
    .unwrap();
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(
        lines.iter().all(|e| e["at"].is_string()),
        "every event has its time"
    );
    let run_states: Vec<&str> = lines
        .iter()
        .filter(|e| e["event"] == "transition" && e["scope"] == "run")
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(run_states.first(), Some(&"PLAN_BOOTSTRAP"));
    assert_eq!(run_states.last(), Some(&"DONE_SUCCESS"));
    let has = |event: &str, key: &str, value: &str| {
        lines.iter().any(|e| e["event"] == event && e[key] == value)
    };
    assert!(has("transition", "id", "notes-b"));
    assert!(has("action", "action", "dispatch_builder"));
    assert!(has("action", "action", "run_ci"));
    assert!(has("result", "input", "ci_finished"));
    assert!(has("action", "action", "finished"));

    // `-` is stdout, alone: the progress goes to stderr.
    let (tmp, repo) = common::repo();
    let out = run_cmd(
        tmp.path(),
        &repo,
        "piped",
        "sh run_tests.sh",
        &["--events", "-"],
    )
    .output()
    .unwrap();
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    for line in text(&out).0.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    assert!(
        text(&out).1.contains("run piped ended DONE_SUCCESS"),
        "{:?}",
        text(&out)
    );
    let out = run_cmd(
        tmp.path(),
        &repo,
        "both",
        "true",
        &["--events", "-", "--json"],
    )
    .output()
    .unwrap();
    assert_eq!(code(&out), 2, "{:?}", text(&out));
    assert!(
        text(&out).1.contains("both want stdout"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn a_plan_without_a_run_id_gets_a_new_one_said_on_stderr() {
    let (tmp, repo) = repo();
    let mut plan = plan_json("unused");
    plan["run"].as_object_mut().unwrap().remove("run_id");
    let path = tmp.path().join("anonymous.json");
    std::fs::write(&path, plan.to_string()).unwrap();
    let out = Command::new(BIN)
        .args([
            "run",
            "--plan",
            s(&path),
            "--repo",
            s(&repo),
            "--builder-cmd",
            &good_builder(tmp.path()),
            "--sandbox-read",
            s(&scripts(tmp.path())),
            "--test-cmd",
            "sh run_tests.sh",
            "--quiet",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let id = stdout_json(&out)[0]["run_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("run-") && id.ends_with('Z'), "{id}");
    assert!(
        text(&out).1.contains(&format!("this run is {id}")),
        "{:?}",
        text(&out)
    );
    assert!(
        repo.join(".autonomous_runs")
            .join(&id)
            .join("run_summary.md")
            .is_file()
    );
}
