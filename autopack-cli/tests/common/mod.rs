//! What the tests that drive the `autopack` binary share: running it, reading its output,
//! sample repositories, plans and Builder scripts.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use autopack_examples::sample::create_sample_repo;

pub mod runs;

pub const BIN: &str = env!("CARGO_BIN_EXE_autopack");

pub fn autopack(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("autopack runs")
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A sample repository in a temporary directory.
pub fn repo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("repo");
    create_sample_repo(&path).expect("sample repo");
    (dir, path)
}

/// The two-tier plan (docs, tests) of run `run_id`.
pub fn plan_json(run_id: &str) -> serde_json::Value {
    serde_json::json!({
        "run": {"run_id": run_id, "run_scope": "multi_tier", "safety_profile": "normal"},
        "tiers": [
            {"tier_id": "t1", "tier_index": 1, "name": "First"},
            {"tier_id": "t2", "tier_index": 2, "name": "Second tier"}
        ],
        "phases": [
            {"phase_id": "notes-a", "phase_index": 1, "tier_id": "t1", "name": "Notes A", "task_category": "docs"},
            {"phase_id": "notes-b", "phase_index": 2, "tier_id": "t2", "name": "Notes B", "task_category": "tests"}
        ]
    })
}

/// [`plan_json`] written to `dir/{run_id}.json`.
pub fn write_plan(dir: &Path, run_id: &str) -> PathBuf {
    let path = dir.join(format!("{run_id}.json"));
    std::fs::write(&path, plan_json(run_id).to_string()).expect("plan written");
    path
}

/// A Builder that adds `notes/{phase}.md` and prints a result with `tokens` tokens.
pub fn builder_with_tokens(dir: &Path, tokens: &str) -> String {
    let script = scripts(dir).join(format!("builder-{tokens}.sh"));
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
req=$(cat)
phase=$(printf '%s' "$req" | sed -n 's/.*"phase_id":"\([^"]*\)".*/\1/p')
printf '{{"phase_id":"%s","status":"success","tokens_used":{tokens},"patch":"diff --git a/notes/%s.md b/notes/%s.md\\nnew file mode 100644\\n--- /dev/null\\n+++ b/notes/%s.md\\n@@ -0,0 +1,1 @@\\n+%s\\n"}}\n' "$phase" "$phase" "$phase" "$phase" "$phase"
"#
        ),
    )
    .expect("builder written");
    format!("sh {}", s(&script))
}

/// A Builder command that adds `notes/{phase}.md` with a valid result (100 tokens). The
/// script lives in `{dir}/scripts`, which runs let agents read with `--sandbox-read`
/// ([`scripts`]).
pub fn good_builder(dir: &Path) -> String {
    builder_with_tokens(dir, "100")
}

/// The text of every file in `dir`, one after another.
pub fn read_dir_text(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).expect("dir") {
        out.push_str(&std::fs::read_to_string(entry.expect("entry").path()).unwrap_or_default());
    }
    out
}

/// The folder of agent scripts under `dir` (created): outside the repository, so the
/// sandbox must be told to let agents read it.
pub fn scripts(dir: &Path) -> PathBuf {
    let path = dir.join("scripts");
    std::fs::create_dir_all(&path).expect("scripts folder");
    path
}
