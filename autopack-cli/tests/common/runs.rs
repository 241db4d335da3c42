//! A two-phase run whose Builder reports issues and can be held mid-run, and what must be
//! the same after any crash, takeover or restart: shared by the crash-safety and store
//! tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

pub const RUN: &str = "crashy";

/// A Builder that reports two issues per phase (one shared by both) and, while the file
/// `{dir}/hold` exists, waits before answering for `notes-b` (and marks `{dir}/waiting`).
pub fn builder(dir: &Path) -> String {
    let good = good_builder(dir);
    let hold = s(&dir.join("hold")).to_owned();
    let waiting = s(&dir.join("waiting")).to_owned();
    let script = scripts(dir).join("issues-builder.sh");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
req=$(cat)
case "$req" in *'"phase_id":"notes-b"'*)
  while [ -e '{hold}' ]; do : > '{waiting}'; sleep 0.05; done ;;
esac
phase=$(printf '%s' "$req" | sed -n 's/.*"phase_id":"\([^"]*\)".*/\1/p')
printf '%s' "$req" | {good} | sed "s/}}\$/,\"suggested_issues\":[{{\"issue_key\":\"k-shared\",\"severity\":\"minor\",\"source\":\"test\",\"category\":\"test_failure\"}},{{\"issue_key\":\"k-$phase\",\"severity\":\"minor\",\"source\":\"test\",\"category\":\"test_failure\"}}]}}/"
"#
        ),
    )
    .expect("script");
    format!("sh {}", s(&script))
}

pub fn start_run(dir: &Path, repo: &Path) -> Child {
    start(dir, repo, RUN, &[]).spawn().expect("autopack starts")
}

/// `autopack run` of run `run_id` (the two-tier plan) with the issue-reporting Builder.
pub fn start(dir: &Path, repo: &Path, run_id: &str, extra: &[&str]) -> Command {
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
            &builder(dir),
            "--test-cmd",
            "sh run_tests.sh",
            // The hold files live outside the workspace.
            "--no-sandbox",
            "--quiet",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

pub fn journal(repo: &Path) -> PathBuf {
    repo.join(".autonomous_runs")
        .join(RUN)
        .join("journal.jsonl")
}

pub fn journal_lines(repo: &Path) -> usize {
    std::fs::read_to_string(journal(repo))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What must be the same after any crash and resume: the end state, each phase's state
/// and issue state, the backlog's counts and ages, the run index, the snapshot tags and
/// the number of commits on the branch.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub state: String,
    pub phases: Vec<(String, String, String)>,
    pub backlog: Vec<(
        String,
        serde_json::Value,
        serde_json::Value,
        serde_json::Value,
    )>,
    pub run_index: Vec<(String, serde_json::Value)>,
    pub tags: Vec<String>,
    pub commits: usize,
}

pub fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn outcome(repo: &Path) -> Outcome {
    let root = repo.join(".autonomous_runs");
    let summary = std::fs::read_to_string(root.join(RUN).join("run_summary.md")).unwrap();
    let state = summary
        .lines()
        .find(|l| l.starts_with("| State |"))
        .unwrap_or_default()
        .to_owned();
    let mut phases = Vec::new();
    for phase in ["01_notes-a", "02_notes-b"] {
        let (index, id) = phase.split_once('_').unwrap();
        let file = json(
            &root
                .join(RUN)
                .join(format!("issues/phase_{index}_{id}_issues.json")),
        );
        let md = std::fs::read_to_string(root.join(RUN).join(format!("phases/phase_{phase}.md")))
            .unwrap();
        let state = md
            .lines()
            .find(|l| l.starts_with("| State |"))
            .unwrap_or_default()
            .to_owned();
        phases.push((id.to_owned(), state, file["issue_state"].to_string()));
    }
    let backlog = json(&root.join("project_issue_backlog.json"));
    let backlog = backlog["issues_by_key"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v["age_in_runs"].clone(),
                v["age_in_tiers"].clone(),
                v["status"].clone(),
            )
        })
        .collect();
    let index = json(&root.join(RUN).join("run_issue_index.json"));
    let run_index = index["issues_by_key"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["occurrence_count"].clone()))
        .collect();
    let tags = autopack_examples::sample::tags_under(repo, &format!("autonomous/{RUN}/")).unwrap();
    let commits = autopack_examples::sample::commits_ahead(
        repo,
        &format!("refs/heads/autonomous/{RUN}"),
        "refs/heads/main",
    )
    .unwrap()
    .len();
    Outcome {
        state,
        phases,
        backlog,
        run_index,
        tags,
        commits,
    }
}

pub fn uninterrupted() -> Outcome {
    let (tmp, repo) = repo();
    let status = start_run(tmp.path(), &repo).wait().unwrap();
    assert!(status.success(), "{status}");
    let want = outcome(&repo);
    assert!(want.state.contains("DONE_SUCCESS"), "{want:?}");
    assert_eq!(want.commits, 2);
    // k-shared once per phase, each phase's own key once.
    assert_eq!(want.run_index.len(), 3, "{want:?}");
    want
}
