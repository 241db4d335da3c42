//! Hostile input to the `autopack` binary: out-of-range durations, sizes and counts from
//! flags, files and agents; closed stdout and stderr; oversized plans, rulesets, patches
//! and result files. None may panic (exit 101): each is a clear error naming the flag or
//! the file and field (exit 2), or a failed attempt the run goes on from.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use autopack_examples::sample::shell_quote;

mod common;
use common::*;

/// `autopack run` of the two-phase plan with `extra` flags.
fn run_args<'a>(
    plan: &'a Path,
    repo: &'a Path,
    builder: &'a str,
    scripts: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "--plan",
        s(plan),
        "--repo",
        s(repo),
        "--builder-cmd",
        builder,
        "--sandbox-read",
        s(scripts),
        "--test-cmd",
        "sh run_tests.sh",
    ];
    args.extend_from_slice(extra);
    args
}

fn assert_no_run_started(repo: &Path, run_id: &str) {
    let journal = repo
        .join(".autonomous_runs")
        .join(run_id)
        .join("journal.jsonl");
    assert!(!journal.exists(), "{} was written", journal.display());
}

// ----- durations, sizes and counts from flags -----

#[test]
fn a_ci_timeout_of_u64_max_is_refused_naming_the_flag() {
    // The attacker's command: it used to panic (Instant + Duration overflow) once CI ran,
    // and the value was saved in run_config.json, so every resume panicked too.
    let (tmp, repo) = repo();
    let plan = write_plan(tmp.path(), "huge-ci-timeout");
    let builder = good_builder(tmp.path());
    let scripts = scripts(tmp.path());
    let out = autopack(&run_args(
        &plan,
        &repo,
        &builder,
        &scripts,
        &["--ci-timeout", "18446744073709551615", "--quiet"],
    ));
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 2, "{stdout}\n{stderr}");
    assert!(stderr.contains("--ci-timeout"), "{stderr}");
    assert_no_run_started(&repo, "huge-ci-timeout");
    assert!(
        !repo
            .join(".autonomous_runs/huge-ci-timeout/run_config.json")
            .exists()
    );
}

#[test]
fn every_duration_size_and_count_flag_is_range_checked() {
    let (tmp, repo) = repo();
    let plan = write_plan(tmp.path(), "ranges");
    let builder = good_builder(tmp.path());
    let scripts = scripts(tmp.path());
    let cases: &[(&str, &str)] = &[
        ("--ci-timeout", "0"),
        ("--ci-timeout", "604801"),
        ("--agent-timeout", "18446744073709551615"),
        ("--agent-timeout", "0"),
        ("--max-output", "18446744073709551615"),
        ("--max-output", "18446744073709551614"),
        ("--max-output", "0"),
        ("--max-output", "1073741825"),
        ("--ci-backoff", "18446744073709551615"),
        ("--ci-backoff", "3600001"),
        ("--ci-timeout", "-1"),
    ];
    for (flag, value) in cases {
        let out = autopack(&run_args(
            &plan,
            &repo,
            &builder,
            &scripts,
            &[flag, value, "--quiet"],
        ));
        let (stdout, stderr) = text(&out);
        assert_eq!(code(&out), 2, "{flag} {value}: {stdout}\n{stderr}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
        assert_no_run_started(&repo, "ranges");
    }
    let out = autopack(&["report", "backlog", "--repo", s(&repo), "--limit", "0"]);
    assert_eq!(code(&out), 2, "{:?}", text(&out));
    assert!(text(&out).1.contains("--limit"), "{:?}", text(&out));
}

#[test]
fn the_largest_allowed_values_run_to_the_end() {
    let (tmp, repo) = repo();
    let plan = write_plan(tmp.path(), "maxima");
    let builder = good_builder(tmp.path());
    let scripts = scripts(tmp.path());
    let out = autopack(&run_args(
        &plan,
        &repo,
        &builder,
        &scripts,
        &[
            "--ci-timeout",
            "604800",
            "--agent-timeout",
            "604800",
            "--max-output",
            "1073741824",
            "--ci-backoff",
            "3600000",
            "--quiet",
        ],
    ));
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("run maxima ended DONE_SUCCESS"), "{stdout}");
}

// ----- run_config.json read by resume -----

/// Starts a run whose Builder hangs on its first call for `notes-b`, and kills the
/// `autopack` process there, as a crash would. Returns the hanging process's marker.
fn crash_mid_run(tmp: &Path, repo: &Path, run_id: &str) -> PathBuf {
    let plan = write_plan(tmp, run_id);
    let marker = tmp.join("crashed-once");
    let script = scripts(tmp).join("crashing-builder.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nreq=$(cat)\ncase \"$req\" in *'\"phase_id\":\"notes-b\"'*) [ -e {m} ] || {{ : > {m}; exec sleep 125; }} ;; esac\nprintf '%s' \"$req\" | {good}\n",
            m = shell_quote(s(&marker)),
            good = good_builder(tmp),
        ),
    )
    .expect("script");
    let builder = format!("sh {}", s(&script));
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--plan",
            s(&plan),
            "--repo",
            s(repo),
            "--builder-cmd",
            &builder,
            "--test-cmd",
            "sh run_tests.sh",
            "--no-sandbox",
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("autopack starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(
            Instant::now() < deadline,
            "the Builder never reached notes-b"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    marker
}

#[test]
fn resume_names_the_file_and_field_of_an_out_of_range_run_config() {
    let (tmp, repo) = repo();
    crash_mid_run(tmp.path(), &repo, "bad-config");
    let config_path = repo.join(".autonomous_runs/bad-config/run_config.json");
    let original = std::fs::read_to_string(&config_path).expect("run_config.json");
    let mut config: serde_json::Value = serde_json::from_str(&original).expect("json");
    for (field, value) in [
        ("ci_timeout_secs", serde_json::json!(u64::MAX)),
        ("agent_timeout_secs", serde_json::json!(0)),
        ("max_output_bytes", serde_json::json!(u64::MAX)),
        ("ci_backoff_millis", serde_json::json!(u64::MAX)),
        ("max_patch_bytes", serde_json::json!(0)),
    ] {
        let saved = config[field].clone();
        config[field] = value;
        std::fs::write(&config_path, config.to_string()).expect("edited");
        let out = autopack(&["resume", "bad-config", "--repo", s(&repo), "--quiet"]);
        let (stdout, stderr) = text(&out);
        assert_eq!(code(&out), 2, "{field}: {stdout}\n{stderr}");
        assert!(stderr.contains("run_config.json"), "{field}: {stderr}");
        assert!(stderr.contains(field), "{field}: {stderr}");
        config[field] = saved;
    }
    // With the file repaired, the run resumes (reaping the hung Builder) and finishes.
    std::fs::write(&config_path, &original).expect("restored");
    let out = autopack(&["resume", "bad-config", "--repo", s(&repo), "--quiet"]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    assert!(
        text(&out).0.contains("run bad-config ended DONE_SUCCESS"),
        "{:?}",
        text(&out)
    );
}

// ----- closed stdout and stderr -----

/// Runs `autopack run` (progress on) with stdout and stderr on pipes; `keep_lines` lines
/// of stdout are read, then both read ends are closed while the run goes on.
fn run_with_closed_pipes(run_id: &str, keep_lines: usize) {
    let (tmp, repo) = repo();
    let plan = write_plan(tmp.path(), run_id);
    let builder = good_builder(tmp.path());
    let scripts = scripts(tmp.path());
    let mut child = Command::new(BIN)
        .args(run_args(&plan, &repo, &builder, &scripts, &[]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("autopack starts");
    drop(child.stderr.take());
    let stdout = child.stdout.take().expect("stdout");
    if keep_lines > 0 {
        let mut reader = BufReader::new(stdout);
        for _ in 0..keep_lines {
            let mut line = String::new();
            reader.read_line(&mut line).expect("a progress line");
            assert!(!line.is_empty(), "autopack printed nothing");
        }
        drop(reader);
    } else {
        drop(stdout);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), None, "killed by a signal (SIGPIPE?)");
    assert_ne!(status.code(), Some(101), "panicked");
    assert_eq!(status.code(), Some(0), "{status:?}");
    let summary = std::fs::read_to_string(
        repo.join(".autonomous_runs")
            .join(run_id)
            .join("run_summary.md"),
    )
    .expect("run_summary.md");
    assert!(summary.contains("DONE_SUCCESS"), "{summary}");
    let out = autopack(&["report", "runs", "--repo", s(&repo), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["runs"][0]["run_id"], run_id);
    assert_eq!(json["runs"][0]["status"], "DONE_SUCCESS");
    let out = autopack(&["validate", "--repo", s(&repo)]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let out = autopack(&["resume", run_id, "--repo", s(&repo)]);
    assert!(text(&out).0.contains("already finished in DONE_SUCCESS"));
}

#[test]
fn closed_stdout_and_stderr_never_abort_a_run() {
    run_with_closed_pipes("closed-pipes", 0);
}

#[test]
fn a_reader_that_stops_after_one_line_never_aborts_a_run() {
    // `autopack run … | head -1`.
    run_with_closed_pipes("head-one", 1);
}

#[test]
fn closed_stdout_is_not_an_error_for_reports_and_help() {
    for args in [
        &["--help"][..],
        &["schema", "plan"][..],
        &["run", "--help"][..],
    ] {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("autopack starts");
        drop(child.stdout.take());
        drop(child.stderr.take());
        let status = child.wait().expect("wait");
        assert_ne!(status.code(), Some(101), "{args:?} panicked");
    }
}

// ----- agent-reported numbers -----

#[test]
fn a_builder_reporting_u64_max_tokens_breaches_a_budget_without_overflow() {
    let (tmp, repo) = repo();
    let plan = write_plan(tmp.path(), "tokens");
    let builder = builder_with_tokens(tmp.path(), "18446744073709551615");
    let scripts = scripts(tmp.path());
    let out = autopack(&run_args(&plan, &repo, &builder, &scripts, &["--quiet"]));
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("DONE_FAILED_"), "{stdout}");
    let phases = read_dir_text(&repo.join(".autonomous_runs/tokens/phases"));
    assert!(phases.contains("token"), "{phases}");
    for sub in ["runs", "budget"] {
        let out = autopack(&["report", sub, "--repo", s(&repo), "--json"]);
        assert_eq!(code(&out), 0, "{sub}: {:?}", text(&out));
    }
    let out = autopack(&["validate", "--repo", s(&repo)]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    // One more than u64::MAX does not parse: a failed attempt, not a wrap-around.
    let plan = write_plan(tmp.path(), "tokens-plus-one");
    let builder = builder_with_tokens(tmp.path(), "18446744073709551616");
    let out = autopack(&run_args(&plan, &repo, &builder, &scripts, &["--quiet"]));
    assert_eq!(code(&out), 1, "{:?}", text(&out));
    let phases = read_dir_text(&repo.join(".autonomous_runs/tokens-plus-one/phases"));
    assert!(phases.contains("invalid result"), "{phases}");
}

// ----- document sizes -----

/// `json` padded with trailing spaces (still valid JSON) to exactly `len` bytes.
fn padded(json: &str, len: usize) -> String {
    let mut text = json.to_owned();
    text.extend(std::iter::repeat_n(' ', len - json.len()));
    text
}

#[test]
fn a_plan_over_its_limit_is_refused_naming_file_limit_and_flag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = tmp.path().join("big-plan.json");
    let json = plan_json("big-plan").to_string();
    let default = 16 * 1024 * 1024;
    std::fs::write(&plan, padded(&json, default + 1)).expect("plan");
    for args in [
        vec!["strategy", "dry-run", "--plan", s(&plan)],
        vec!["plan", "split", "--plan", s(&plan), "--out", s(tmp.path())],
        vec![
            "run",
            "--plan",
            s(&plan),
            "--repo",
            s(tmp.path()),
            "--builder-cmd",
            "true",
            "--test-cmd",
            "true",
        ],
    ] {
        let out = autopack(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(code(&out), 2, "{args:?}: {stdout}\n{stderr}");
        assert!(stderr.contains("big-plan.json"), "{stderr}");
        assert!(stderr.contains("16777216"), "{stderr}");
        assert!(stderr.contains("--max-plan-bytes"), "{stderr}");
    }
    // Raised, it is read.
    let out = autopack(&[
        "strategy",
        "dry-run",
        "--plan",
        s(&plan),
        "--max-plan-bytes",
        "33554432",
    ]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    // A lowered limit applies too; exactly at the limit is fine.
    let small = tmp.path().join("small.json");
    std::fs::write(&small, padded(&json, json.len() + 10)).expect("plan");
    let limit = (json.len() + 10).to_string();
    let out = autopack(&[
        "strategy",
        "dry-run",
        "--plan",
        s(&small),
        "--max-plan-bytes",
        &limit,
    ]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let limit = (json.len() + 9).to_string();
    let out = autopack(&[
        "strategy",
        "dry-run",
        "--plan",
        s(&small),
        "--max-plan-bytes",
        &limit,
    ]);
    assert_eq!(code(&out), 2, "{:?}", text(&out));
    assert!(text(&out).1.contains(&limit), "{:?}", text(&out));
    // The limit itself is range-checked.
    for bad in ["0", "1073741825", "18446744073709551615"] {
        let out = autopack(&[
            "strategy",
            "dry-run",
            "--plan",
            s(&small),
            "--max-plan-bytes",
            bad,
        ]);
        assert_eq!(code(&out), 2, "{bad}: {:?}", text(&out));
        assert!(
            text(&out).1.contains("--max-plan-bytes"),
            "{:?}",
            text(&out)
        );
    }
}

#[test]
fn a_ruleset_over_its_limit_is_refused_naming_file_limit_and_flag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(tmp.path(), "rules");
    let ruleset = tmp.path().join("big-ruleset.json");
    let project = autopack::core::ids::ProjectId::new("big").expect("id");
    let json = autopack::strategy::Ruleset::builtin(project).to_json();
    std::fs::write(&ruleset, padded(&json, 1024 * 1024 + 1)).expect("ruleset");
    let out = autopack(&[
        "strategy",
        "dry-run",
        "--plan",
        s(&plan),
        "--ruleset",
        s(&ruleset),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 2, "{stdout}\n{stderr}");
    assert!(stderr.contains("big-ruleset.json"), "{stderr}");
    assert!(stderr.contains("1048576"), "{stderr}");
    assert!(stderr.contains("--max-ruleset-bytes"), "{stderr}");
    let out = autopack(&[
        "strategy",
        "dry-run",
        "--plan",
        s(&plan),
        "--ruleset",
        s(&ruleset),
        "--max-ruleset-bytes",
        "2097152",
    ]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
}

#[test]
fn a_raised_ruleset_limit_holds_for_the_whole_run() {
    // The ruleset is saved into .autonomous_runs/ and read back from there: the saved copy
    // must stay readable.
    let (tmp, repo) = repo();
    let plan = write_plan(tmp.path(), "big-rules-run");
    let ruleset = tmp.path().join("big-ruleset.json");
    let project = autopack::core::ids::ProjectId::new("big").expect("id");
    let json = autopack::strategy::Ruleset::builtin(project).to_json();
    std::fs::write(&ruleset, padded(&json, 1024 * 1024 + 1)).expect("ruleset");
    let builder = good_builder(tmp.path());
    let scripts = scripts(tmp.path());
    let out = autopack(&run_args(
        &plan,
        &repo,
        &builder,
        &scripts,
        &[
            "--ruleset",
            s(&ruleset),
            "--max-ruleset-bytes",
            "2097152",
            "--quiet",
        ],
    ));
    assert_eq!(code(&out), 0, "{:?}", text(&out));
}

#[test]
fn a_patch_over_its_limit_is_a_failed_attempt_naming_the_rule_and_flag() {
    let (tmp, repo) = repo();
    let plan = write_plan(tmp.path(), "big-patch");
    let builder = good_builder(tmp.path());
    let scripts = scripts(tmp.path());
    let out = autopack(&run_args(
        &plan,
        &repo,
        &builder,
        &scripts,
        &["--max-patch-bytes", "20", "--quiet"],
    ));
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 1, "{stdout}\n{stderr}");
    let phases = read_dir_text(&repo.join(".autonomous_runs/big-patch/phases"));
    assert!(phases.contains("patch_too_large"), "{phases}");
    assert!(phases.contains("--max-patch-bytes"), "{phases}");
    let config = std::fs::read_to_string(repo.join(".autonomous_runs/big-patch/run_config.json"))
        .expect("run_config.json");
    let config: serde_json::Value = serde_json::from_str(&config).expect("json");
    assert_eq!(config["max_patch_bytes"], 20);
}

#[test]
fn oversized_and_special_result_files_are_failed_attempts() {
    let (tmp, repo) = repo();
    let scripts = scripts(tmp.path());
    // A result file over --max-output (the JSON is valid, only too long).
    let plan = write_plan(tmp.path(), "big-result");
    let script = scripts.join("big-result.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncat > /dev/null\nprintf '{\"phase_id\":\"x\",\"status\":\"success\",\"tokens_used\":1,\"notes\":\"%0500d\"}' 0 > \"$AUTOPACK_RESULT_FILE\"\n",
    )
    .expect("script");
    let builder = format!("sh {}", s(&script));
    let out = autopack(&run_args(
        &plan,
        &repo,
        &builder,
        &scripts,
        &["--max-output", "100", "--quiet"],
    ));
    assert_eq!(code(&out), 1, "{:?}", text(&out));
    let phases = read_dir_text(&repo.join(".autonomous_runs/big-result/phases"));
    assert!(phases.contains("more than 100 bytes"), "{phases}");
    // A FIFO as the result file would block a reader for ever.
    let plan = write_plan(tmp.path(), "fifo-result");
    let script = scripts.join("fifo-result.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncat > /dev/null\nmkfifo \"$AUTOPACK_RESULT_FILE\"\n",
    )
    .expect("script");
    let builder = format!("sh {}", shell_quote(s(&script)));
    let started = Instant::now();
    let out = autopack(&run_args(
        &plan,
        &repo,
        &builder,
        &scripts,
        &["--no-sandbox", "--quiet"],
    ));
    assert_eq!(code(&out), 1, "{:?}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(60));
    let phases = read_dir_text(&repo.join(".autonomous_runs/fifo-result/phases"));
    assert!(phases.contains("not a regular file"), "{phases}");
}
