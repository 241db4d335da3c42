//! End-to-end tests: the example run, and every subcommand of the `autopack` binary
//! against temporary repositories.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use autopack::core::lifecycle::RunState;
use autopack::core::message::AuditReason;
use autopack::core::record::CiVerdict;
use autopack_examples::example::{ExampleOptions, run_example};
use autopack_examples::sample::main_tip;

mod common;
use common::*;

// ----- the example run -----

#[test]
fn the_example_run_ends_as_scripted_and_writes_every_artefact() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("greeter");
    let report = run_example(&ExampleOptions {
        dir: dir.clone(),
        run_id: "example-test".into(),
        print: false,
        no_sandbox: false,
    })
    .expect("the example runs");

    // The scripted end state, main untouched.
    assert_eq!(
        report.record.state,
        RunState::DoneSuccess,
        "{}",
        report.progress.join("\n")
    );
    assert_eq!(report.main_before, report.main_after);
    assert_eq!(main_tip(&dir).expect("main"), report.main_before);
    assert!(report.as_scripted());

    // Every artefact of SPEC §10, by name.
    let root = dir.join(".autonomous_runs");
    let run = root.join("example-test");
    let mut expected = vec![
        root.join("project_ruleset_greeter.json"),
        root.join("project_issue_backlog.json"),
        run.join("run_summary.md"),
        run.join("project_implementation_strategy_v1.json"),
        run.join("run_issue_index.json"),
        run.join("tiers/tier_01_Foundations.md"),
        run.join("tiers/tier_02_Features.md"),
        run.join("tiers/tier_03_Polish.md"),
    ];
    let phases = [
        "hello-name",
        "users-schema",
        "schema-docs",
        "farewell",
        "cache-tests",
        "config-defaults",
        "readme-usage",
        "changelog",
    ];
    for (i, phase) in phases.iter().enumerate() {
        expected.push(run.join(format!("phases/phase_{:02}_{phase}.md", i + 1)));
        expected.push(run.join(format!("issues/phase_{:02}_{phase}_issues.json", i + 1)));
    }
    for path in &expected {
        assert!(path.is_file(), "missing {}", path.display());
    }
    assert!(report.missing.is_empty(), "{:?}", report.missing);
    assert!(
        !run.join("incident").exists(),
        "no incident pack for a successful run"
    );

    // One commit per applied patch, one snapshot tag per phase.
    let applied = report
        .record
        .phases()
        .filter(|p| p.commit.is_some())
        .count();
    assert_eq!(applied, 8);
    assert_eq!(report.branch_commits.len(), applied);
    assert_eq!(report.tags.len(), 8);
    for phase in report.record.phases() {
        let tag = phase.snapshot_tag.as_deref().expect("tagged");
        assert!(report.tags.iter().any(|t| t == tag), "tag {tag}");
    }

    // The scripted behaviours happened.
    assert!(
        report
            .auditor_calls
            .contains(&("users-schema".into(), AuditReason::HighRiskApproval))
    );
    assert!(report.auditor_calls.iter().any(|(p, r)| p == "farewell"
        && matches!(r, AuditReason::FailureLoop | AuditReason::AttemptsExhausted)));
    let farewell = report
        .record
        .phases()
        .find(|p| p.phase_id.as_str() == "farewell")
        .expect("farewell");
    assert!(farewell.attempts.len() >= 4, "{:?}", farewell.attempts);
    let cache = report
        .record
        .phases()
        .find(|p| p.phase_id.as_str() == "cache-tests")
        .expect("cache");
    assert_eq!(
        cache.ci_runs.last().map(|c| c.verdict),
        Some(CiVerdict::Flaky)
    );
    let schema = report
        .record
        .phases()
        .find(|p| p.phase_id.as_str() == "users-schema")
        .expect("schema");
    assert_eq!(schema.ci_runs[0].profile.as_str(), "strict");
    assert!(report.reports.contains("== Budget =="));
    assert!(report.progress.iter().any(|l| l.contains("DONE_SUCCESS")));

    // The tree validates, and the CLI reads it.
    let v = autopack_cli::validate::validate_tree(&root);
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    let out = autopack(&["promote", "check", "example-test", "--repo", s(&dir)]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
}

// ----- the CLI -----

#[test]
fn run_report_promote_validate_and_resume_a_run() {
    let (tmp, repo) = repo();
    let plan = write_plan(tmp.path(), "cli-run");
    let builder = good_builder(tmp.path());
    let out = autopack(&[
        "run",
        "--plan",
        s(&plan),
        "--repo",
        s(&repo),
        "--builder-cmd",
        &builder,
        "--sandbox-read",
        s(&scripts(tmp.path())),
        "--test-cmd",
        "sh run_tests.sh",
        "--strict-test-cmd",
        "sh run_tests.sh --strict",
        "--quiet",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("run cli-run ended DONE_SUCCESS"),
        "{stdout}"
    );
    let config = repo.join(".autonomous_runs/cli-run/run_config.json");
    assert!(
        std::fs::read_to_string(&config)
            .expect("run_config.json")
            .contains(&serde_json::to_string(&builder).expect("a string"))
    );

    // A second run with the same id is refused, naming it.
    let out = autopack(&[
        "run",
        "--plan",
        s(&plan),
        "--repo",
        s(&repo),
        "--builder-cmd",
        &builder,
        "--test-cmd",
        "true",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out).1.contains("cli-run already exists"),
        "{:?}",
        text(&out)
    );

    // Reports, text and JSON.
    let out = autopack(&["report", "runs", "--repo", s(&repo)]);
    assert_eq!(code(&out), 0);
    assert!(text(&out).0.contains("cli-run"));
    let out = autopack(&["report", "runs", "--repo", s(&repo), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["runs"][0]["run_id"], "cli-run");
    assert_eq!(json["runs"][0]["status"], "DONE_SUCCESS");
    let out = autopack(&["report", "tiers", "cli-run", "--repo", s(&repo), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["tiers"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["promotion_eligible"], true);
    let out = autopack(&["report", "tiers", "cli-run", "--repo", s(&repo)]);
    assert!(text(&out).0.contains("t2"));
    for sub in ["backlog", "budget"] {
        let out = autopack(&["report", sub, "--repo", s(&repo)]);
        assert_eq!(code(&out), 0, "{sub}: {:?}", text(&out));
        let out = autopack(&["report", sub, "--repo", s(&repo), "--json"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json");
    }

    // Validate, resume of a finished run, promotion.
    let out = autopack(&["validate", "--repo", s(&repo)]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let out = autopack(&["resume", "cli-run", "--repo", s(&repo)]);
    assert_eq!(code(&out), 0);
    assert!(
        text(&out).0.contains("already finished in DONE_SUCCESS"),
        "{:?}",
        text(&out)
    );
    let out = autopack(&["promote", "check", "cli-run", "--repo", s(&repo), "--json"]);
    assert_eq!(code(&out), 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["eligible"], true);
    let before = main_tip(&repo).expect("main");
    // HEAD is on main in the sample repository: refused unless allowed.
    let out = autopack(&["promote", "cli-run", "--repo", s(&repo)]);
    assert_eq!(code(&out), 2);
    assert!(text(&out).1.contains("checked_out"), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("git switch --detach"),
        "{:?}",
        text(&out)
    );
    assert_eq!(main_tip(&repo).expect("main"), before);
    let out = autopack(&[
        "promote",
        "cli-run",
        "--repo",
        s(&repo),
        "--allow-checked-out",
    ]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let after = main_tip(&repo).expect("main");
    assert_ne!(after, before);
    // The checked-out work tree lags behind; the note says how to bring it up, and that
    // works.
    let note = text(&out).1;
    assert!(note.contains("show the promotion reversed"), "{note}");
    let status = |repo: &Path| {
        let out = Command::new("git")
            .args([
                "-C",
                s(repo),
                "status",
                "--porcelain",
                "--untracked-files=no",
            ])
            .output()
            .expect("git status");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        !status(&repo).is_empty(),
        "the work tree shows the reverse diff"
    );
    let read_tree = Command::new("git")
        .args(["-C", s(&repo), "read-tree", "-m", "-u", &before, &after])
        .status()
        .expect("git read-tree");
    assert!(read_tree.success());
    assert_eq!(status(&repo), "");
    // Promoting again: nothing to do, said so.
    let out = autopack(&[
        "promote",
        "cli-run",
        "--repo",
        s(&repo),
        "--allow-checked-out",
    ]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    assert!(
        text(&out).0.contains("is already in refs/heads/main"),
        "{:?}",
        text(&out)
    );
    assert!(text(&out).1.is_empty(), "{:?}", text(&out));
    assert_eq!(main_tip(&repo).expect("main"), after);
}

#[test]
fn a_builder_that_prints_garbage_fails_its_attempts_and_the_run_goes_on() {
    let (tmp, repo) = repo();
    let plan = write_plan(tmp.path(), "garbage");
    let out = autopack(&[
        "run",
        "--plan",
        s(&plan),
        "--repo",
        s(&repo),
        "--builder-cmd",
        "echo '{this is not json'",
        "--test-cmd",
        "sh run_tests.sh",
        "--quiet",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("DONE_FAILED_TIER_BLOCKED"), "{stdout}");
    // Both tiers ran (the run went on after the first phase failed).
    let phases = read_dir_text(&repo.join(".autonomous_runs/garbage/phases"));
    assert!(phases.contains("gave an invalid result"), "{phases}");
    assert!(phases.contains("notes-b"));
    let summary = std::fs::read_to_string(repo.join(".autonomous_runs/garbage/run_summary.md"))
        .expect("summary");
    assert!(summary.contains("DONE_FAILED_TIER_BLOCKED"));
    assert!(
        repo.join(".autonomous_runs/garbage/incident/incident.json")
            .is_file()
    );
    let out = autopack(&["report", "runs", "--repo", s(&repo), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        json["runs"][0]["failure_reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    // Not eligible: exit 1 with the reasons.
    let out = autopack(&["promote", "check", "garbage", "--repo", s(&repo)]);
    assert_eq!(code(&out), 1);
    assert!(text(&out).0.contains("not eligible"), "{:?}", text(&out));
    let out = autopack(&["validate", "--repo", s(&repo)]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
}

#[test]
fn a_builder_that_hangs_is_timed_out() {
    let (tmp, repo) = repo();
    let plan = write_plan(tmp.path(), "hangs");
    let started = Instant::now();
    let out = autopack(&[
        "run",
        "--plan",
        s(&plan),
        "--repo",
        s(&repo),
        "--builder-cmd",
        "sleep 60",
        "--test-cmd",
        "sh run_tests.sh",
        "--agent-timeout",
        "1",
        "--quiet",
    ]);
    assert_eq!(code(&out), 1, "{:?}", text(&out));
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    let phases = read_dir_text(&repo.join(".autonomous_runs/hangs/phases"));
    assert!(phases.contains("timed out"), "{phases}");
}

#[test]
fn malformed_plans_and_rulesets_are_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad_scope = tmp.path().join("bad_scope.json");
    std::fs::write(
        &bad_scope,
        r#"{"run": {"run_id": "r1", "run_scope": "incremental"}, "tiers": [], "phases": []}"#,
    )
    .expect("write");
    let out = autopack(&["strategy", "dry-run", "--plan", s(&bad_scope)]);
    assert_eq!(code(&out), 2);
    let err = text(&out).1;
    assert!(
        err.contains("run.run_scope") && err.contains("bad_scope.json"),
        "{err}"
    );

    let truncated = tmp.path().join("truncated.json");
    std::fs::write(&truncated, r#"{"run": {"run_id": "r1""#).expect("write");
    let out = autopack(&["strategy", "dry-run", "--plan", s(&truncated)]);
    assert_eq!(code(&out), 2);
    assert!(text(&out).1.contains("truncated.json"), "{:?}", text(&out));

    let plan = write_plan(tmp.path(), "dry");
    let ruleset = tmp.path().join("project_ruleset_p.json");
    std::fs::write(
        &ruleset,
        r#"{"project_id": "p", "category_defaults": {"docs": {"max_bulder_attempts": 4}}}"#,
    )
    .expect("write");
    let out = autopack(&[
        "strategy",
        "dry-run",
        "--plan",
        s(&plan),
        "--ruleset",
        s(&ruleset),
    ]);
    assert_eq!(code(&out), 2);
    let err = text(&out).1;
    assert!(
        err.contains("category_defaults.docs") && err.contains("max_bulder_attempts"),
        "{err}"
    );

    let missing = autopack(&["strategy", "dry-run", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(code(&missing), 2);
    assert!(text(&missing).1.contains("/nonexistent/plan.json"));
}

#[test]
fn hostile_run_ids_are_refused_by_name() {
    let (tmp, repo) = repo();
    for args in [
        vec!["report", "tiers", "../x"],
        vec!["resume", "../x"],
        vec!["promote", "check", "../x"],
        vec!["promote", "../x"],
    ] {
        let mut args = args.clone();
        args.extend(["--repo", s(&repo)]);
        let out = autopack(&args);
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(
            text(&out).1.contains("\"../x\""),
            "{args:?}: {:?}",
            text(&out)
        );
    }
    let plan = tmp.path().join("hostile.json");
    std::fs::write(
        &plan,
        r#"{"run": {"run_id": "../x"}, "tiers": [{"tier_id": "t1", "tier_index": 0, "name": "T"}],
            "phases": [{"phase_id": "p1", "phase_index": 0, "tier_id": "t1", "name": "P", "task_category": "docs"}]}"#,
    )
    .expect("write");
    let out = autopack(&[
        "run",
        "--plan",
        s(&plan),
        "--repo",
        s(&repo),
        "--builder-cmd",
        "true",
        "--test-cmd",
        "true",
    ]);
    assert_eq!(code(&out), 2);
    assert!(text(&out).1.contains("run_id"), "{:?}", text(&out));
    assert!(!repo.join(".autonomous_runs/../x").exists() || !tmp.path().join("repo/x").exists());
    // An unknown run is named too.
    let out = autopack(&["report", "tiers", "nope", "--repo", s(&repo)]);
    assert_eq!(code(&out), 2);
    assert!(text(&out).1.contains("nope"));
}

#[test]
fn strategy_dry_run_prints_text_or_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(tmp.path(), "dry");
    let out = autopack(&["strategy", "dry-run", "--plan", s(&plan)]);
    assert_eq!(code(&out), 0);
    assert!(text(&out).0.contains("notes-a"));
    let out = autopack(&["strategy", "dry-run", "--plan", s(&plan), "--json"]);
    assert_eq!(code(&out), 0);
    let strategy =
        autopack::strategy::Strategy::from_json(&text(&out).0, "stdout").expect("strategy json");
    assert_eq!(strategy.run_id.as_str(), "dry");
    // The same JSON twice (stable output).
    let again = autopack(&["strategy", "dry-run", "--plan", s(&plan), "--json"]);
    assert_eq!(out.stdout, again.stdout);
    // With the first implementation's ruleset and backlog.
    let fixtures = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/first-implementation"
    ));
    {
        let out = autopack(&[
            "strategy",
            "dry-run",
            "--plan",
            s(&plan),
            "--ruleset",
            s(&fixtures.join("project_ruleset_Autopack.json")),
            "--backlog",
            s(&fixtures.join("project_issue_backlog.json")),
        ]);
        assert_eq!(code(&out), 0, "{:?}", text(&out));
        assert!(text(&out).0.contains("debt-cleanup"), "{:?}", text(&out));
    }
}

#[test]
fn plan_split_writes_plans_within_the_cap() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut phases = Vec::new();
    let mut tiers = Vec::new();
    for t in 0..3 {
        tiers.push(serde_json::json!({"tier_id": format!("t{t}"), "tier_index": t, "name": format!("Tier {t}")}));
        for p in 0..2 {
            phases.push(serde_json::json!({
                "phase_id": format!("p{t}{p}"), "phase_index": t * 2 + p, "tier_id": format!("t{t}"),
                "name": "P", "task_category": "docs"
            }));
        }
    }
    let plan = serde_json::json!({"run": {"run_id": "big", "max_phases": 3}, "tiers": tiers, "phases": phases});
    let path = tmp.path().join("big.json");
    std::fs::write(&path, plan.to_string()).expect("write");
    let out_dir = tmp.path().join("parts");
    let out = autopack(&["plan", "split", "--plan", s(&path), "--out", s(&out_dir)]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .expect("dir")
        .map(|e| e.expect("e").path())
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    let mut total = 0;
    for f in &files {
        let plan = autopack::core::plan::Plan::from_json(
            &std::fs::read_to_string(f).expect("read"),
            "part",
        )
        .expect("valid part");
        assert!(plan.phases.len() <= 3);
        total += plan.phases.len();
    }
    assert_eq!(total, 6);
}

#[test]
fn schema_lists_prints_and_writes() {
    let out = autopack(&["schema"]);
    assert_eq!(code(&out), 0);
    let names = text(&out).0;
    for name in [
        "plan",
        "builder_result",
        "auditor_result",
        "ruleset",
        "strategy",
    ] {
        assert!(names.lines().any(|l| l == name), "{names}");
    }
    let out = autopack(&["schema", "builder_result"]);
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("schema json");
    assert_eq!(schema["title"], "BuilderResult");
    let out = autopack(&["schema", "nope"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out).1.contains("nope"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = autopack(&["schema", "--out", s(tmp.path())]);
    assert_eq!(code(&out), 0);
    assert!(tmp.path().join("plan.schema.json").is_file());
    assert!(tmp.path().join("strategy.schema.json").is_file());
}

#[test]
fn validate_reads_first_implementation_trees_and_names_bad_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join(".autonomous_runs");
    std::fs::create_dir_all(&root).expect("mkdir");
    let fixtures = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/first-implementation"
    ));
    // The first implementation's files (copied from ../shared/fixtures).
    let mut copied = 0;
    for entry in std::fs::read_dir(fixtures).expect("fixtures").flatten() {
        std::fs::copy(entry.path(), root.join(entry.file_name())).expect("copy");
        copied += 1;
    }
    assert_eq!(copied, 2);
    let out = autopack(&["validate", "--repo", s(tmp.path())]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));

    // Bad files are each named.
    let run = root.join("run-1");
    std::fs::create_dir_all(run.join("issues")).expect("mkdir");
    std::fs::write(
        run.join("issues/phase_01_p1_issues.json"),
        "{\"run_id\": \"run-1\",",
    )
    .expect("write");
    std::fs::write(
        run.join("run_issue_index.json"),
        r#"{"run_id": "run-1", "issues_by_key": {}, "surprise": 1}"#,
    )
    .expect("write");
    std::fs::write(
        root.join("project_ruleset_Other.json"),
        r#"{"project_id": "Other", "bogus": true}"#,
    )
    .expect("write");
    let out = autopack(&["validate", "--repo", s(tmp.path()), "--json"]);
    assert_eq!(code(&out), 1);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let problems = json["problems"].as_array().expect("problems");
    for file in [
        "phase_01_p1_issues.json",
        "run_issue_index.json",
        "project_ruleset_Other.json",
    ] {
        assert!(
            problems
                .iter()
                .any(|p| p["file"].as_str().is_some_and(|f| f.ends_with(file))),
            "{file}: {problems:?}"
        );
    }
    let out = autopack(&["validate", "--repo", "/nonexistent/dir"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn run_help_names_every_agent_variable_preset_and_request_field() {
    let help = text(&autopack(&["run", "--help"])).0;
    for (name, _) in autopack::host::AGENT_ENV {
        assert!(help.contains(name), "{name} is not in `run --help`");
    }
    for var in autopack::sandbox::ALLOWED_HOST_VARS {
        assert!(help.contains(var), "{var} is not in `run --help`");
    }
    for preset in autopack::host::AgentPreset::ALL {
        assert!(
            help.contains(preset.name()),
            "preset {} is not in `run --help`",
            preset.name()
        );
    }
    let schema = text(&autopack(&["schema", "builder_request"])).0;
    for field in [
        "checkout",
        "base_commit",
        "tip_commit",
        "head_commit",
        "workspace",
        "previous_patch",
        "last_ci",
        "output_tail",
    ] {
        assert!(help.contains(field) && schema.contains(field), "{field}");
    }
}

#[test]
fn every_subcommand_explains_itself_with_an_example() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["resume", "--help"],
        vec!["strategy", "dry-run", "--help"],
        vec!["plan", "split", "--help"],
        vec!["report", "runs", "--help"],
        vec!["report", "tiers", "--help"],
        vec!["report", "backlog", "--help"],
        vec!["report", "budget", "--help"],
        vec!["report", "html", "--help"],
        vec!["promote", "--help"],
        vec!["promote", "check", "--help"],
        vec!["schema", "--help"],
        vec!["validate", "--help"],
    ] {
        let out = autopack(&args);
        assert_eq!(code(&out), 0, "{args:?}");
        assert!(
            text(&out).0.contains("Example"),
            "{args:?}: {}",
            text(&out).0
        );
    }
}

#[test]
fn a_run_killed_mid_way_resumes_from_its_journal() {
    let (tmp, repo) = repo();
    let plan = write_plan(tmp.path(), "crash");
    let marker = tmp.path().join("crashed-once");
    let script = scripts(tmp.path()).join("crashing-builder.sh");
    // On its first call for the second phase the Builder marks the moment and hangs; the
    // test then kills the autopack process with SIGKILL, as a crash would. The hanging
    // Builder outlives it until the resume reaps it.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nreq=$(cat)\ncase \"$req\" in *'\"phase_id\":\"notes-b\"'*) [ -e {m} ] || {{ : > {m}; exec sleep 127; }} ;; esac\nprintf '%s' \"$req\" | {good}\n",
            m = autopack_examples::sample::shell_quote(s(&marker)),
            good = good_builder(tmp.path()),
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
            s(&repo),
            "--builder-cmd",
            &builder,
            "--test-cmd",
            "sh run_tests.sh",
            // The marker is written outside the workspace.
            "--no-sandbox",
            "--quiet",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
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
    // Only this test's Builder sleeps exactly 127 s.
    let hung = || {
        std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .map(|c| c == b"sleep\x00127\x00")
                    .unwrap_or(false)
            })
            .count()
    };
    assert_eq!(hung(), 1, "the hanging Builder outlives the killed process");
    let out = autopack(&["resume", "crash", "--repo", s(&repo), "--quiet"]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    assert_eq!(
        hung(),
        0,
        "the resume reaps what the killed process started"
    );
    assert!(
        text(&out).0.contains("run crash ended DONE_SUCCESS"),
        "{:?}",
        text(&out)
    );
    let out = autopack(&["resume", "crash", "--repo", s(&repo)]);
    assert!(
        text(&out).0.contains("already finished"),
        "{:?}",
        text(&out)
    );
    let out = autopack(&["validate", "--repo", s(&repo)]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
}
