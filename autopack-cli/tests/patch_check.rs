//! `autopack patch check`: the gate a run uses, on one patch, writing nothing.

mod common;

use std::path::Path;

use common::*;

/// Every file under `.git` with its bytes: a check must leave all of it as it was.
fn git_dir_snapshot(repo: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let rel = path.strip_prefix(base).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo.join(".git"), repo, &mut out);
    out
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    s(&path).to_owned()
}

fn check(repo: &Path, patch: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["patch", "check", "--repo", s(repo), "--patch", patch];
    args.extend_from_slice(extra);
    let out = autopack(&args);
    let (stdout, stderr) = text(&out);
    (code(&out), stdout, stderr)
}

const NEW_NOTE: &str = "diff --git a/notes/a.md b/notes/a.md\nnew file mode 100644\n--- /dev/null\n+++ b/notes/a.md\n@@ -0,0 +1 @@\n+a note\n";

#[test]
fn an_accepted_patch_exits_0_and_writes_nothing() {
    let (dir, repo) = repo();
    let patch = write(dir.path(), "ok.diff", NEW_NOTE);
    let before = git_dir_snapshot(&repo);
    let (code, stdout, stderr) = check(&repo, &patch, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("accepted: 1 file(s), +1 -0"), "{stdout}");
    assert_eq!(
        git_dir_snapshot(&repo),
        before,
        "the repository is untouched"
    );
    assert!(!repo.join("notes").exists());
}

#[test]
fn refusals_exit_1_and_name_the_rule_and_the_path() {
    let (dir, repo) = repo();
    let workflow = write(
        dir.path(),
        "ci.diff",
        "diff --git a/.github/workflows/ci.yml b/.github/workflows/ci.yml\nnew file mode 100644\n--- /dev/null\n+++ b/.github/workflows/ci.yml\n@@ -0,0 +1 @@\n+on: push\n",
    );
    let (code, stdout, _) = check(&repo, &workflow, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("protected_path") && stdout.contains(".github/workflows/ci.yml"),
        "{stdout}"
    );

    // The runner script a CI command names is protected as in a run.
    let runner = write(
        dir.path(),
        "runner.diff",
        &format!(
            "diff --git a/run_tests.sh b/run_tests.sh\nindex 0000000..1111111 100644\n--- a/run_tests.sh\n+++ b/run_tests.sh\n@@ -1,2 +1,2 @@\n-{}\n+exit 0\n {}\n",
            autopack_examples::sample::RUN_TESTS.lines().next().unwrap(),
            autopack_examples::sample::RUN_TESTS.lines().nth(1).unwrap()
        ),
    );
    let (code, stdout, _) = check(&repo, &runner, &["--test-cmd", "sh run_tests.sh"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("protected_path") && stdout.contains("run_tests.sh"),
        "{stdout}"
    );

    // Scope and mode limits, as JSON.
    let (code, stdout, _) = check(
        &repo,
        &write(dir.path(), "scope.diff", NEW_NOTE),
        &["--scope", "src/**", "--json"],
    );
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(json["verdict"], "refused");
    assert_eq!(json["rule"], "outside_scope");
    assert_eq!(json["path"], "notes/a.md");
    let long_line = format!(
        "diff --git a/notes/b.md b/notes/b.md\nnew file mode 100644\n--- /dev/null\n+++ b/notes/b.md\n@@ -0,0 +1 @@\n+{}\n",
        "x".repeat(5_000)
    );
    let (code, stdout, _) = check(
        &repo,
        &write(dir.path(), "long.diff", &long_line),
        &["--mode", "tweak_light", "--json"],
    );
    assert_eq!(code, 1, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(json["rule"], "line_too_long", "{json}");
    assert!(
        json["message"].as_str().unwrap().contains("tweak_light"),
        "{json}"
    );
}

#[test]
fn holds_are_listed_and_a_ruleset_sets_the_policy() {
    let (dir, repo) = repo();
    let test = autopack_examples::sample::TEST_HELLO;
    let removed: String = test.lines().map(|l| format!("-{l}\n")).collect();
    let skip = write(
        dir.path(),
        "delete-test.diff",
        &format!(
            "diff --git a/tests/test_hello.sh b/tests/test_hello.sh\ndeleted file mode 100644\n--- a/tests/test_hello.sh\n+++ /dev/null\n@@ -1,{} +0,0 @@\n{removed}",
            test.lines().count()
        ),
    );
    let (code, stdout, stderr) = check(&repo, &skip, &["--json"]);
    let json: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["holds"][0]["kind"], "test_integrity", "{json}");
    assert_eq!(json["holds"][0]["path"], "tests/test_hello.sh", "{json}");
    assert_eq!(
        json["holds"][0]["finding"]["finding"], "deleted_test",
        "{json}"
    );

    // A ruleset that lets docs/adr/** through with an approve, and refuses notes/**.
    let ruleset = write(
        dir.path(),
        "ruleset.json",
        r#"{"project_id": "demo", "patch_policy": {"extra_protected_paths": [
            {"pattern": "docs/adr/**", "action": "auditor_approve"},
            {"pattern": "notes/**"}
        ]}}"#,
    );
    let adr = write(
        dir.path(),
        "adr.diff",
        "diff --git a/docs/adr/1.md b/docs/adr/1.md\nnew file mode 100644\n--- /dev/null\n+++ b/docs/adr/1.md\n@@ -0,0 +1 @@\n+# ADR 1\n",
    );
    let (code, stdout, _) = check(&repo, &adr, &["--ruleset", &ruleset]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("needs an Auditor approve") && stdout.contains("docs/adr/**"),
        "{stdout}"
    );
    let (code, stdout, _) = check(
        &repo,
        &write(dir.path(), "n.diff", NEW_NOTE),
        &["--ruleset", &ruleset],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("notes/**"), "{stdout}");
}

#[test]
fn bad_input_is_an_error_naming_what_is_wrong() {
    let (dir, repo) = repo();
    let patch = write(dir.path(), "ok.diff", NEW_NOTE);
    let (code, _, stderr) = check(&repo, &patch, &["--base", "no-such-branch"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no-such-branch"), "{stderr}");
    let (code, _, stderr) = check(&repo, s(&dir.path().join("missing.diff")), &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("missing.diff"), "{stderr}");
    let bad = write(
        dir.path(),
        "bad.json",
        r#"{"project_id": "p", "patch_policy": {"max_path_bytes": 0}}"#,
    );
    let (code, _, stderr) = check(&repo, &patch, &["--ruleset", &bad]);
    assert_eq!(code, 2);
    assert!(stderr.contains("patch_policy.max_path_bytes"), "{stderr}");
    let (code, stdout, _) = check(&repo, &write(dir.path(), "garbage.diff", "hello\n"), &[]);
    assert_eq!(code, 1, "garbage is a refusal, not a crash");
    assert!(stdout.contains("not_git_diff"), "{stdout}");
}
