//! Landlock confinement with real processes. Skips (with a reason) only outside CI.

mod common;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autopack_sandbox::{Ended, Network, ProcessLog, Sandbox, StartedProcess};
use common::{policy, sh, text};

/// Runs `script` and returns stdout; each probe in a script prints `NAME:$?`.
fn probe(sandbox: &Sandbox, script: &str, ws: &std::path::Path, vars: &[(&str, String)]) -> String {
    let mut job = sh(script, ws, Duration::from_secs(20));
    job.env
        .set
        .extend(vars.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let done = sandbox.run(&job, &policy(ws, Network::Deny)).unwrap();
    assert_eq!(
        done.ended,
        Ended::Exited(0),
        "stderr: {}",
        text(&done.stderr_tail)
    );
    text(&done.stdout)
}

fn code(out: &str, name: &str) -> i32 {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .parse()
        .unwrap()
}

const FS_PROBES: &str = r#"
echo in > inside.txt; echo write_inside:$?
echo out > "$OUTSIDE/x" 2>/dev/null; echo write_outside:$?
ls "$REPO" >/dev/null 2>&1; echo list_repo:$?
cat "$REPO/.git/config" >/dev/null 2>&1; echo read_repo:$?
head -c 1 "/proc/$HOST_PID/mem" >/dev/null 2>&1; echo host_mem:$?
head -c 1 "/proc/$HOST_PID/environ" >/dev/null 2>&1; echo host_environ:$?
grep -q '^CapEff:[[:space:]]*0*$' /proc/self/status; echo no_caps:$?
cat /etc/hostname /dev/null >/dev/null 2>&1; echo read_etc:$?
echo h > "$HOME/h" && echo t > "$TMPDIR/t"; echo private_dirs:$?
echo "home=$HOME"; echo "tmp=$TMPDIR"
echo "manifest=${CARGO_MANIFEST_DIR:-unset}"
"#;

fn fs_vars(outside: &std::path::Path, repo: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("OUTSIDE", outside.display().to_string()),
        ("REPO", repo.display().to_string()),
        ("HOST_PID", std::process::id().to_string()),
    ]
}

fn repo_like() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir(repo.path().join(".git")).unwrap();
    std::fs::write(repo.path().join(".git/config"), "[core]\n").unwrap();
    repo
}

#[test]
fn filesystem_and_environment_are_confined() {
    let Some(sandbox) = common::landlock() else {
        return;
    };
    // Cargo sets this for the test process: a host variable that is not on the allowlist.
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    let (ws, outside, repo) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        repo_like(),
    );
    let out = probe(
        &sandbox,
        FS_PROBES,
        ws.path(),
        &fs_vars(outside.path(), repo.path()),
    );
    assert_eq!(code(&out, "write_inside"), 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(ws.path().join("inside.txt")).unwrap(),
        "in\n"
    );
    assert_ne!(code(&out, "write_outside"), 0, "{out}");
    assert!(!outside.path().join("x").exists());
    assert_ne!(code(&out, "list_repo"), 0, "{out}");
    assert_ne!(code(&out, "read_repo"), 0, "{out}");
    // Landlock denies ptrace-attach-level access to processes outside the sandbox (the
    // host's memory); read-level access such as /proc/PID/environ is denied because the
    // host is non-dumpable and the job holds no capability.
    assert_ne!(code(&out, "host_mem"), 0, "{out}");
    assert_ne!(code(&out, "host_environ"), 0, "{out}");
    assert_eq!(code(&out, "no_caps"), 0, "{out}");
    assert_eq!(code(&out, "read_etc"), 0, "{out}");
    assert_eq!(code(&out, "private_dirs"), 0, "{out}");
    assert!(out.contains("manifest=unset"), "{out}");
    let home = out.lines().find_map(|l| l.strip_prefix("home=")).unwrap();
    let tmp = out.lines().find_map(|l| l.strip_prefix("tmp=")).unwrap();
    assert!(
        home.contains("autopack-job-") && tmp.contains("autopack-job-"),
        "{out}"
    );
    assert_ne!(Some(home.to_owned()), std::env::var("HOME").ok());
    assert!(
        !std::path::Path::new(home).exists(),
        "the private dir is removed after the run"
    );
}

#[test]
fn the_write_error_is_eacces() {
    let Some(sandbox) = common::landlock() else {
        return;
    };
    let (ws, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut job = sh(
        "echo x > \"$OUTSIDE/x\"",
        ws.path(),
        Duration::from_secs(20),
    );
    job.env
        .set
        .push(("OUTSIDE".into(), outside.path().display().to_string()));
    let done = sandbox
        .run(&job, &policy(ws.path(), Network::Allow))
        .unwrap();
    assert_ne!(done.ended, Ended::Exited(0));
    assert!(
        text(&done.stderr_tail).contains("Permission denied"),
        "{}",
        text(&done.stderr_tail)
    );
}

#[test]
fn passing_a_variable_by_name_lets_it_through() {
    let dir = tempfile::tempdir().unwrap();
    let mut job = sh(
        "echo \"${CARGO_MANIFEST_DIR:-unset}\"",
        dir.path(),
        Duration::from_secs(20),
    );
    job.env.pass.push("CARGO_MANIFEST_DIR".into());
    let done = Sandbox::off()
        .run(&job, &policy(dir.path(), Network::Allow))
        .unwrap();
    assert_eq!(
        text(&done.stdout).trim(),
        std::env::var("CARGO_MANIFEST_DIR").unwrap()
    );
}

#[test]
fn off_scrubs_the_environment_but_does_not_confine() {
    let (ws, outside, repo) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        repo_like(),
    );
    let out = probe(
        &Sandbox::off(),
        FS_PROBES,
        ws.path(),
        &fs_vars(outside.path(), repo.path()),
    );
    assert!(out.contains("manifest=unset"), "{out}");
    assert_eq!(code(&out, "write_outside"), 0, "{out}");
    assert_eq!(code(&out, "read_repo"), 0, "{out}");
    assert_eq!(code(&out, "private_dirs"), 0, "{out}");
}

fn connect_job(port: u16, ws: &std::path::Path) -> autopack_sandbox::Job {
    let mut job = sh(
        "bash -c 'exec 3<>/dev/tcp/127.0.0.1/$PORT' 2>/dev/null; echo connect:$?",
        ws,
        Duration::from_secs(20),
    );
    job.env.set.push(("PORT".into(), port.to_string()));
    job
}

#[test]
fn network_deny_refuses_tcp_connect_and_allow_permits_it() {
    let Some(sandbox) = common::landlock() else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ws = tempfile::tempdir().unwrap();
    let job = connect_job(port, ws.path());
    let denied = sandbox
        .run(&job, &policy(ws.path(), Network::Deny))
        .unwrap();
    assert_ne!(
        code(&text(&denied.stdout), "connect"),
        0,
        "{}",
        text(&denied.stdout)
    );
    let allowed = sandbox
        .run(&job, &policy(ws.path(), Network::Allow))
        .unwrap();
    assert_eq!(
        code(&text(&allowed.stdout), "connect"),
        0,
        "{}",
        text(&allowed.stdout)
    );
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(&'static str, StartedProcess)>>);

impl ProcessLog for Recorder {
    fn started(&self, p: &StartedProcess) {
        self.0.lock().unwrap().push(("started", p.clone()));
    }
    fn ended(&self, p: &StartedProcess) {
        self.0.lock().unwrap().push(("ended", p.clone()));
    }
}

#[test]
fn the_log_sees_start_and_end_and_root_gets_a_pid_namespace() {
    let Some(sandbox) = common::landlock() else {
        return;
    };
    let rec = Arc::new(Recorder::default());
    let sandbox = sandbox.with_log(rec.clone());
    let ws = tempfile::tempdir().unwrap();
    let done = sandbox
        .run(
            &sh("echo $$", ws.path(), Duration::from_secs(20)),
            &policy(ws.path(), Network::Deny),
        )
        .unwrap();
    let events = rec.0.lock().unwrap().clone();
    assert_eq!(events.len(), 2);
    assert_eq!((events[0].0, events[1].0), ("started", "ended"));
    assert_eq!(events[0].1, events[1].1);
    assert!(events[0].1.start_time > 0);
    if nix::unistd::geteuid().is_root() {
        assert!(events[0].1.own_pid_namespace);
        assert_eq!(text(&done.stdout), "1\n", "PID 1 of its namespace");
    }
}
