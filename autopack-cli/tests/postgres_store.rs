//! The real binary with its stores in PostgreSQL: the same run as with files, its views
//! materialised and exported; two hosts racing for one run; a killed holder taken over
//! after its lease expires; the server restarted in the middle of a run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use autopack_postgres::testing::{self, TestServer};

mod common;
use common::runs::*;
use common::*;

fn with_store(dir: &Path, repo: &Path, url: &str) -> Command {
    let mut command = start(dir, repo, RUN, &["--store", url]);
    command.env("AUTOPACK_LEASE_TTL_SECS", "3");
    command
}

fn resume(repo: &Path, url: &str) -> std::process::Output {
    Command::new(BIN)
        .args(["resume", RUN, "--repo", s(repo), "--quiet", "--store", url])
        .env("AUTOPACK_LEASE_TTL_SECS", "3")
        .output()
        .unwrap()
}

/// `resume` again and again (for up to 30 s) until the dead writer's lease has expired
/// and it succeeds; the last attempt's output.
fn resume_once_the_lease_expired(repo: &Path, url: &str) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = resume(repo, url);
        if code(&out) == 0 || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_run_kept_in_postgres_ends_as_with_files_and_any_host_can_export_it() {
    let want = uninterrupted();
    let url = testing::shared().database().unwrap();
    let (tmp, repo) = repo();
    let status = with_store(tmp.path(), &repo, &url).status().unwrap();
    assert!(status.success(), "{status}");
    // The views on the host that ran it are those of a file-store run.
    assert_eq!(outcome(&repo), want);
    // The journal is in the database, not in the layout.
    assert!(!journal(&repo).exists());

    for args in [
        vec!["report", "runs", "--repo", s(&repo), "--store", &url],
        vec!["report", "backlog", "--repo", s(&repo), "--store", &url],
        vec!["promote", "check", RUN, "--repo", s(&repo), "--store", &url],
        vec!["validate", "--repo", s(&repo), "--store", &url],
    ] {
        let out = autopack(&args);
        assert_eq!(code(&out), 0, "{args:?}: {:?}", text(&out));
    }
    let runs = autopack(&["report", "runs", "--repo", s(&repo), "--store", &url]);
    assert!(text(&runs).0.contains(RUN), "{:?}", text(&runs));
    // A host that did not run it, from the store alone (AUTOPACK_STORE works as --store).
    let other = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["export", RUN, "--repo", s(other.path())])
        .env("AUTOPACK_STORE", &url)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let root = |r: &Path| r.join(".autonomous_runs");
    for file in [
        format!("{RUN}/run_summary.md"),
        format!("{RUN}/run_issue_index.json"),
        format!("{RUN}/issues/phase_02_notes-b_issues.json"),
        "project_issue_backlog.json".to_owned(),
    ] {
        assert_eq!(
            std::fs::read_to_string(root(other.path()).join(&file)).unwrap(),
            std::fs::read_to_string(root(&repo).join(&file)).unwrap(),
            "{file}"
        );
    }
    let strategy = format!("{RUN}/project_implementation_strategy_v1.json");
    assert_eq!(
        std::fs::read_to_string(root(other.path()).join(&strategy)).unwrap(),
        std::fs::read_to_string(root(&repo).join(&strategy)).unwrap(),
        "the strategy is exported"
    );
}

#[test]
fn two_hosts_race_for_a_run_one_drives_it_and_a_killed_holder_is_taken_over_after_expiry() {
    let want = uninterrupted();
    let url = testing::shared().database().unwrap();
    // Two hosts: two clones, one database.
    let (tmp_a, repo_a) = repo();
    let (tmp_b, repo_b) = repo();
    for dir in [tmp_a.path(), tmp_b.path()] {
        std::fs::write(dir.join("hold"), "").unwrap();
    }
    let a = with_store(tmp_a.path(), &repo_a, &url)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = with_store(tmp_b.path(), &repo_b, &url)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("one Builder to wait", || {
        tmp_a.path().join("waiting").exists() || tmp_b.path().join("waiting").exists()
    });
    // Exactly one drives the run; the other was refused, naming the holder.
    let (mut holder, loser, dir, repo) = if tmp_a.path().join("waiting").exists() {
        (
            a,
            b.wait_with_output().unwrap(),
            tmp_a.path().to_owned(),
            repo_a.clone(),
        )
    } else {
        (
            b,
            a.wait_with_output().unwrap(),
            tmp_b.path().to_owned(),
            repo_b.clone(),
        )
    };
    assert_ne!(code(&loser), 0);
    assert!(
        text(&loser)
            .1
            .contains(&format!("is being written by process {}", holder.id())),
        "{:?}",
        text(&loser)
    );
    // Killed mid-run: its database lease stays until it expires.
    holder.kill().unwrap();
    let _ = holder.wait();
    std::fs::remove_file(dir.join("hold")).unwrap();
    let early = resume(&repo, &url);
    assert_ne!(code(&early), 0, "{:?}", text(&early));
    assert!(
        text(&early).1.contains("is being written by process"),
        "{:?}",
        text(&early)
    );
    let taken = resume_once_the_lease_expired(&repo, &url);
    assert_eq!(code(&taken), 0, "{:?}", text(&taken));
    assert!(
        text(&taken).1.contains("took run crashy over from process"),
        "{:?}",
        text(&taken)
    );
    assert_eq!(outcome(&repo), want);
}

#[test]
fn a_server_restart_in_the_middle_of_a_run_is_waited_out() {
    let want = uninterrupted();
    let server = TestServer::start().unwrap_or_else(|e| panic!("{e}"));
    let url = server.database().unwrap();
    let (tmp, repo) = repo();
    std::fs::write(tmp.path().join("hold"), "").unwrap();
    let run = with_store(tmp.path(), &repo, &url)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the Builder to wait", || {
        tmp.path().join("waiting").exists()
    });
    // Between two steps of the run: the Builder's dispatch is journaled, its result not yet.
    server.stop().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    server.start_again().unwrap();
    std::fs::remove_file(tmp.path().join("hold")).unwrap();
    let out = run.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    assert_eq!(outcome(&repo), want);
}

#[test]
fn a_server_gone_past_the_retry_stops_the_run_with_its_journal_whole_and_resume_finishes_it() {
    let want = uninterrupted();
    let server = TestServer::start().unwrap_or_else(|e| panic!("{e}"));
    let url = server.database().unwrap();
    let (tmp, repo) = repo();
    std::fs::write(tmp.path().join("hold"), "").unwrap();
    let run = with_store(tmp.path(), &repo, &url)
        .env("AUTOPACK_STORE_RETRY_SECS", "2")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the Builder to wait", || {
        tmp.path().join("waiting").exists()
    });
    server.stop().unwrap();
    std::fs::remove_file(tmp.path().join("hold")).unwrap();
    let out = run.wait_with_output().unwrap();
    // An error (not a verdict on the run), naming the server and what to do.
    assert_eq!(code(&out), 2, "{:?}", text(&out));
    let stderr = text(&out).1;
    assert!(
        stderr.contains("is unreachable") && stderr.contains("127.0.0.1"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("`autopack resume {RUN}` continues it")),
        "{stderr}"
    );
    server.start_again().unwrap();
    // The dead writer's lease expires; then the run goes on from its journal.
    let resumed = resume_once_the_lease_expired(&repo, &url);
    assert_eq!(code(&resumed), 0, "{:?}", text(&resumed));
    assert_eq!(outcome(&repo), want);
}
