//! `autopack.toml`: settings of `run` and `serve` keyed by their long flags, below the
//! command line and environment variables in precedence, checked by the flags' parsers.

use std::path::Path;

mod common;
use common::*;

fn run_config(repo: &Path, run_id: &str) -> serde_json::Value {
    let path = repo.join(format!(".autonomous_runs/{run_id}/run_config.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("run_config.json")).unwrap()
}

#[test]
fn the_repository_file_fills_what_the_command_line_leaves_out() {
    let (tmp, repo) = repo();
    let plan = write_plan(tmp.path(), "configured");
    let builder = good_builder(tmp.path()).replace('\\', "\\\\");
    std::fs::write(
        repo.join("autopack.toml"),
        format!(
            "# shared by every run of this repository\nbuilder-cmd = \"{builder}\"\ntest-cmd = \"sh run_tests.sh\"\nci-timeout = 77\nci-backoff = 9\npass-env = [\"FROM_FILE\"]\nsandbox-read = [\"{}\"]\n",
            s(&scripts(tmp.path()))
        ),
    )
    .unwrap();
    let out = autopack(&[
        "run",
        "--plan",
        s(&plan),
        "--repo",
        s(&repo),
        "--ci-backoff",
        "5",
        "--pass-env",
        "FROM_FLAG",
        "--quiet",
    ]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let config = run_config(&repo, "configured");
    assert_eq!(config["test_cmd"], "sh run_tests.sh", "from the file");
    assert_eq!(
        config["builder_cmd"],
        good_builder(tmp.path()),
        "from the file"
    );
    assert_eq!(config["ci_timeout_secs"], 77, "from the file");
    assert_eq!(config["ci_backoff_millis"], 5, "the flag wins");
    assert_eq!(
        config["sandbox"]["pass_env"],
        serde_json::json!(["FROM_FLAG"]),
        "a repeatable flag on the command line replaces the file's values"
    );
    assert_eq!(config["agent_timeout_secs"], 900, "neither: the default");
}

#[test]
fn an_explicit_config_file_is_used_and_bad_files_are_named_with_their_key() {
    let (tmp, repo) = repo();
    let plan = write_plan(tmp.path(), "explicit");
    let file = tmp.path().join("elsewhere.toml");
    let run = |file: &Path| {
        autopack(&[
            "run",
            "--plan",
            s(&plan),
            "--repo",
            s(&repo),
            "--config",
            s(file),
            "--builder-cmd",
            "true",
            "--quiet",
        ])
    };

    std::fs::write(&file, "test-cmd = \"sh run_tests.sh\"\nci-timeout = 0\n").unwrap();
    let out = run(&file);
    let (_, err) = text(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        err.contains("elsewhere.toml") && err.contains("key `ci-timeout`"),
        "{err}"
    );
    assert!(
        !repo.join(".autonomous_runs/explicit").exists(),
        "nothing written"
    );

    std::fs::write(&file, "test-cmd = \"sh run_tests.sh\"\nci-timeuot = 10\n").unwrap();
    let (_, err) = text(&run(&file));
    assert!(
        err.contains("key `ci-timeuot`: is no flag of `autopack run`"),
        "{err}"
    );
    assert!(err.contains("ci-timeout"), "the keys are listed: {err}");

    std::fs::write(&file, "repo = \"/elsewhere\"\n").unwrap();
    let (_, err) = text(&run(&file));
    assert!(
        err.contains("key `repo`: is given on the command line"),
        "{err}"
    );

    std::fs::write(&file, "no-sandbox = \"yes\"\n").unwrap();
    let (_, err) = text(&run(&file));
    assert!(err.contains("key `no-sandbox`: is a switch"), "{err}");

    std::fs::write(&file, "test-cmd = [unterminated\n").unwrap();
    let out = run(&file);
    assert_eq!(code(&out), 2);
    assert!(text(&out).1.contains("elsewhere.toml"), "{:?}", text(&out));

    let out = run(&tmp.path().join("missing.toml"));
    assert_eq!(code(&out), 2);
    assert!(text(&out).1.contains("missing.toml"), "{:?}", text(&out));
}

#[test]
fn without_a_test_command_anywhere_the_run_says_where_to_put_one() {
    let (tmp, repo) = repo();
    let plan = write_plan(tmp.path(), "untested");
    let out = autopack(&[
        "run",
        "--plan",
        s(&plan),
        "--repo",
        s(&repo),
        "--builder-cmd",
        "true",
    ]);
    let (_, err) = text(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        err.contains("--test-cmd") && err.contains("autopack.toml"),
        "{err}"
    );
}
