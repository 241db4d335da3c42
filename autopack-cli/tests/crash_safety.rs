//! Crash safety of the real binary: one writer per run, kills at a sample of journal
//! positions (and a stale ref lock) resume to the uninterrupted result, and a finished
//! run's lost artefacts are rebuilt by `resume`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
use common::runs::*;
use common::*;

#[test]
fn kills_at_a_sample_of_journal_positions_resume_to_the_uninterrupted_result() {
    let want = uninterrupted();
    let mut killed_mid_run = 0;
    for position in [1, 2, 3, 5, 7, 9, 12, 15] {
        let (tmp, repo) = repo();
        let mut child = start_run(tmp.path(), &repo);
        wait_for(&format!("journal line {position}"), || {
            journal_lines(&repo) >= position || child.try_wait().unwrap().is_some()
        });
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        if position == 9 {
            // As if the kill had also caught git between writing a ref's lock and
            // renaming it: every later update of the branch would fail.
            let lock = repo.join(format!(".git/refs/heads/autonomous/{RUN}.lock"));
            std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
            std::fs::write(&lock, "0000000000000000000000000000000000000000\n").unwrap();
        }
        // A kill before the start's line leaves nothing to resume: the run is started
        // again, as a user would.
        let out = autopack(&["resume", RUN, "--repo", s(&repo), "--quiet"]);
        let out = if text(&out).1.contains("has no journal") {
            start_run(tmp.path(), &repo).wait_with_output().unwrap()
        } else {
            out
        };
        assert_eq!(code(&out), 0, "kill at {position}: {:?}", text(&out));
        if position == 9 {
            assert!(
                text(&out).1.contains("removed the stale ref lock"),
                "{:?}",
                text(&out)
            );
        }
        assert_eq!(outcome(&repo), want, "kill at journal line {position}");
        let out = autopack(&["validate", "--repo", s(&repo)]);
        assert_eq!(code(&out), 0, "kill at {position}: {:?}", text(&out));
        // No commit applied twice, none the journal does not know, the chain whole.
        let out = autopack(&["verify", RUN, "--repo", s(&repo)]);
        assert_eq!(code(&out), 0, "kill at {position}: {:?}", text(&out));
    }
    assert!(
        killed_mid_run >= 6,
        "only {killed_mid_run} kills landed before the end"
    );
}

#[test]
fn two_writers_of_one_run_cannot_both_write() {
    let (tmp, repo) = repo();
    let hold = tmp.path().join("hold");
    std::fs::write(&hold, "").unwrap();
    let mut run = start_run(tmp.path(), &repo);
    wait_for("the Builder to wait", || {
        tmp.path().join("waiting").exists()
    });
    // The run is live: a resume is refused at once, naming the holder.
    let out = autopack(&["resume", RUN, "--repo", s(&repo), "--quiet"]);
    assert_ne!(code(&out), 0);
    let pid = run.id();
    assert!(
        text(&out)
            .1
            .contains(&format!("is being written by process {pid}")),
        "{:?}",
        text(&out)
    );
    // Killed while the Builder waits; two resumes start: one writes, one is refused.
    run.kill().unwrap();
    let _ = run.wait();
    std::fs::remove_file(tmp.path().join("waiting")).unwrap();
    let first = Command::new(BIN)
        .args(["resume", RUN, "--repo", s(&repo), "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the resumed Builder to wait", || {
        tmp.path().join("waiting").exists()
    });
    let second = autopack(&["resume", RUN, "--repo", s(&repo), "--quiet"]);
    assert_ne!(code(&second), 0, "{:?}", text(&second));
    assert!(
        text(&second)
            .1
            .contains(&format!("is being written by process {}", first.id())),
        "{:?}",
        text(&second)
    );
    std::fs::remove_file(&hold).unwrap();
    let first = first.wait_with_output().unwrap();
    assert_eq!(code(&first), 0, "{:?}", text(&first));
    let got = outcome(&repo);
    assert!(got.state.contains("DONE_SUCCESS"), "{got:?}");
    // Each key counted once per phase that saw it: nothing recorded twice.
    assert_eq!(
        got.run_index,
        vec![
            ("k-notes-a".to_owned(), serde_json::json!(1)),
            ("k-notes-b".to_owned(), serde_json::json!(1)),
            ("k-shared".to_owned(), serde_json::json!(2)),
        ]
    );
}

#[test]
fn resuming_a_finished_run_rebuilds_what_was_lost() {
    let (tmp, repo) = repo();
    assert!(start_run(tmp.path(), &repo).wait().unwrap().success());
    let want = outcome(&repo);
    let run_dir = repo.join(".autonomous_runs").join(RUN);
    let summary = run_dir.join("run_summary.md");
    let phase_file = run_dir.join("issues/phase_02_notes-b_issues.json");
    let kept = std::fs::read_to_string(&summary).unwrap();
    std::fs::remove_file(&summary).unwrap();
    std::fs::remove_file(&phase_file).unwrap();
    let out = autopack(&["resume", RUN, "--repo", s(&repo)]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    assert!(
        text(&out).0.contains("already finished"),
        "{:?}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), kept);
    assert!(phase_file.is_file());
    assert_eq!(outcome(&repo), want);
}

fn ruleset(dir: &Path, project: &str) -> PathBuf {
    let ruleset =
        autopack::strategy::Ruleset::builtin(autopack::core::ids::ProjectId::new(project).unwrap());
    let path = dir.join(format!("{project}.ruleset.json"));
    std::fs::write(&path, ruleset.to_json()).unwrap();
    path
}

#[test]
fn one_projects_runs_never_read_or_age_anothers_keys() {
    let (tmp, repo) = repo();
    let root = repo.join(".autonomous_runs");
    let alpha = ruleset(tmp.path(), "alpha");
    let beta = ruleset(tmp.path(), "beta");
    let status = start(tmp.path(), &repo, "alpha-1", &["--ruleset", s(&alpha)])
        .status()
        .unwrap();
    assert!(status.success());
    let alpha_backlog = std::fs::read_to_string(root.join("project_issue_backlog.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&alpha_backlog).unwrap();
    assert_eq!(parsed["project_id"], "alpha");
    assert_eq!(parsed["issues_by_key"]["k-shared"]["age_in_runs"], 1);
    // Project beta sees the same keys in its own ledger; alpha's is untouched.
    let status = start(tmp.path(), &repo, "beta-1", &["--ruleset", s(&beta)])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read_to_string(root.join("project_issue_backlog.json")).unwrap(),
        alpha_backlog
    );
    let beta_backlog = json(&root.join("project_issue_backlog_beta.json"));
    assert_eq!(beta_backlog["project_id"], "beta");
    assert_eq!(beta_backlog["issues_by_key"]["k-shared"]["age_in_runs"], 1);
    assert!(root.join("project_issue_journal_beta.jsonl").is_file());
    // A second run of alpha ages alpha's key only.
    let status = start(tmp.path(), &repo, "alpha-2", &["--ruleset", s(&alpha)])
        .status()
        .unwrap();
    assert!(status.success());
    let alpha_now = json(&root.join("project_issue_backlog.json"));
    assert_eq!(alpha_now["issues_by_key"]["k-shared"]["age_in_runs"], 2);
    let beta_now = json(&root.join("project_issue_backlog_beta.json"));
    assert_eq!(beta_now["issues_by_key"]["k-shared"]["age_in_runs"], 1);
    // Each project's backlog report reads its own ledger.
    let out = autopack(&[
        "report",
        "backlog",
        "--repo",
        s(&repo),
        "--project",
        "beta",
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let report: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    assert!(report.to_string().contains("k-shared"), "{report}");
    let out = autopack(&["report", "backlog", "--repo", s(&repo)]);
    assert_ne!(code(&out), 0);
    assert!(text(&out).1.contains("--project"), "{:?}", text(&out));
    // With two projects, a run must say which.
    let out = start(tmp.path(), &repo, "who-1", &[])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_ne!(code(&out), 0);
    assert!(
        text(&out).1.contains("several projects (alpha, beta)"),
        "{:?}",
        text(&out)
    );
    assert!(!root.join("who-1").join("journal.jsonl").exists());
    let out = autopack(&["validate", "--repo", s(&repo)]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
}

#[test]
fn a_backlog_naming_no_project_is_the_only_projects_or_an_error_naming_the_candidates() {
    let (tmp, repo) = repo();
    let root = repo.join(".autonomous_runs");
    std::fs::create_dir_all(&root).unwrap();
    // The first implementation's backlog (no project id), in its position above the root.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/first-implementation/project_issue_backlog.json");
    let mut legacy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
    // It names its project (`TestProject`), whose it stays; older files name none.
    assert_eq!(legacy["project_id"], "TestProject");
    legacy.as_object_mut().unwrap().remove("project_id");
    std::fs::write(repo.join("project_issue_backlog.json"), legacy.to_string()).unwrap();
    let alpha = ruleset(tmp.path(), "alpha");
    let beta = ruleset(tmp.path(), "beta");
    // Two projects' rulesets in the layout: whose the backlog is cannot be told.
    std::fs::write(
        root.join("project_ruleset_beta.json"),
        std::fs::read_to_string(&beta).unwrap(),
    )
    .unwrap();
    let out = start(tmp.path(), &repo, "alpha-1", &["--ruleset", s(&alpha)])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_ne!(code(&out), 0);
    let err = text(&out).1;
    assert!(
        err.contains("names no project") && err.contains("alpha, beta"),
        "{err}"
    );
    // With beta's ruleset gone, the backlog is alpha's: imported and claimed.
    std::fs::remove_file(root.join("project_ruleset_beta.json")).unwrap();
    std::fs::remove_dir_all(root.join("alpha-1")).ok();
    let status = start(tmp.path(), &repo, "alpha-2", &["--ruleset", s(&alpha)])
        .status()
        .unwrap();
    assert!(status.success());
    let backlog = json(&root.join("project_issue_backlog.json"));
    assert_eq!(backlog["project_id"], "alpha");
    for key in legacy["issues_by_key"].as_object().unwrap().keys() {
        assert!(
            backlog["issues_by_key"].get(key).is_some(),
            "{key} imported"
        );
    }
}

#[test]
fn a_truncated_backlog_is_rebuilt_from_the_journal_and_repair_cuts_a_corrupt_journal() {
    let (tmp, repo) = repo();
    assert!(start_run(tmp.path(), &repo).wait().unwrap().success());
    let root = repo.join(".autonomous_runs");
    let backlog = root.join("project_issue_backlog.json");
    let whole = std::fs::read_to_string(&backlog).unwrap();
    // Truncated: a later run is not blocked, it rebuilds the file and says so.
    std::fs::write(&backlog, &whole[..whole.len() / 2]).unwrap();
    let out = start(tmp.path(), &repo, "after-truncation", &[])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    assert!(
        text(&out).1.contains("project_issue_backlog.json"),
        "the warning names the file: {:?}",
        text(&out)
    );
    let rebuilt = json(&backlog);
    assert_eq!(rebuilt["issues_by_key"]["k-shared"]["age_in_runs"], 2);
    // `autopack repair` does the same on demand.
    std::fs::write(&backlog, "{\"issues_by_key\": ").unwrap();
    let out = autopack(&["repair", "--repo", s(&repo)]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    assert!(text(&out).0.contains("rebuilt"), "{:?}", text(&out));
    assert_eq!(json(&backlog), rebuilt);
    // A journal corrupt in the middle: named, and cut only when asked.
    let journal = root.join("project_issue_journal.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(lines.len() > 3);
    let mut damaged = lines.clone();
    damaged[2] = "{not json".into();
    std::fs::write(&journal, damaged.join("\n") + "\n").unwrap();
    let out = autopack(&["repair", "--repo", s(&repo)]);
    assert_ne!(code(&out), 0);
    assert!(
        text(&out).1.contains("line 3") && text(&out).1.contains("--truncate-corrupt-journal"),
        "{:?}",
        text(&out)
    );
    let out = autopack(&["repair", "--repo", s(&repo), "--truncate-corrupt-journal"]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    assert!(text(&out).0.contains("at line 3"), "{:?}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&journal).unwrap().lines().count(),
        2
    );
    let out = autopack(&["validate", "--repo", s(&repo)]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
}
