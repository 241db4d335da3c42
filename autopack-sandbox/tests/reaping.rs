//! Timeouts and reaping with real process trees, under both containment paths.

mod common;

use std::time::{Duration, Instant};

use autopack_sandbox::{Containment, Ended, Network, Sandbox};
use common::{alive, policy, read_pid, sh};

/// Writes the host pid of a process that then becomes `sleep 60` (the builtin `read`
/// keeps /proc/self on the shell itself; `exec` keeps the pid).
const SLEEPER: &str = "read -r p _ < /proc/self/stat; echo $p > \"$PIDFILE\"; exec sleep 60";

fn wait_for_pidfile() -> &'static str {
    "while [ ! -s \"$PIDFILE\" ]; do sleep 0.02; done"
}

/// Scripts that leave a grandchild holding stdout for 60 s.
fn leavers() -> Vec<(&'static str, String)> {
    vec![
        (
            "background",
            format!("sh -c '{SLEEPER}' & {}", wait_for_pidfile()),
        ),
        (
            "setsid",
            format!("setsid sh -c '{SLEEPER}' & {}", wait_for_pidfile()),
        ),
        (
            "double fork",
            format!("( sh -c '{SLEEPER}' & ) ; {}", wait_for_pidfile()),
        ),
    ]
}

fn sandboxes() -> Vec<(&'static str, Sandbox)> {
    let mut out = vec![
        ("off/auto", Sandbox::off()),
        (
            "off/tracking",
            Sandbox::off().with_containment(Containment::Tracking),
        ),
    ];
    if let Some(s) = common::landlock() {
        out.push(("landlock/auto", s.clone()));
        out.push((
            "landlock/tracking",
            s.with_containment(Containment::Tracking),
        ));
    }
    out
}

fn check(main_tail: &str, expect_timeout: bool) {
    for (sname, sandbox) in sandboxes() {
        for (lname, script) in leavers() {
            let dir = tempfile::tempdir().unwrap();
            let pidfile = dir.path().join("pid");
            let mut job = sh(
                &format!("{script}; echo up; {main_tail}"),
                dir.path(),
                Duration::from_secs(2),
            );
            job.env
                .set
                .push(("PIDFILE".into(), pidfile.to_string_lossy().into_owned()));
            let t = Instant::now();
            let done = sandbox
                .run(&job, &policy(dir.path(), Network::Allow))
                .unwrap();
            let took = t.elapsed();
            let what = format!("{sname} {lname}");
            assert!(took < Duration::from_secs(6), "{what}: took {took:?}");
            assert_eq!(common::text(&done.stdout), "up\n", "{what}");
            if expect_timeout {
                assert_eq!(done.ended, Ended::TimedOut, "{what}");
            } else {
                assert_eq!(done.ended, Ended::Exited(0), "{what}");
            }
            let grandchild = read_pid(&pidfile);
            assert!(
                !alive(grandchild),
                "{what}: grandchild {grandchild} survived: {:?} {:?}",
                std::fs::read_to_string(format!("/proc/{grandchild}/stat")),
                std::fs::read(format!("/proc/{grandchild}/environ")).map(|e| common::text(&e)),
            );
        }
    }
}

#[test]
fn leftovers_die_when_the_main_process_exits() {
    check("exit 0", false);
}

#[test]
fn leftovers_die_when_the_timeout_hits() {
    check("sleep 30", true);
}

#[test]
fn exit_codes_and_signals() {
    let dir = tempfile::tempdir().unwrap();
    let s = Sandbox::off();
    let p = policy(dir.path(), Network::Allow);
    let done = s
        .run(&sh("exit 7", dir.path(), Duration::from_secs(5)), &p)
        .unwrap();
    assert_eq!(done.ended, Ended::Exited(7));
    // Not under a PID namespace: there the main process is PID 1, which the kernel
    // shields from signals it has no handler for (documented on `Containment::Auto`).
    let tracking = Sandbox::off().with_containment(Containment::Tracking);
    let done = tracking
        .run(&sh("kill -TERM $$", dir.path(), Duration::from_secs(5)), &p)
        .unwrap();
    assert_eq!(done.ended, Ended::Signalled(15));
}

#[test]
fn output_modes_limits_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let s = Sandbox::off();
    let p = policy(dir.path(), Network::Allow);
    let mut job = sh(
        "head -c 5; echo; seq 1 1000 >&2; printf more",
        dir.path(),
        Duration::from_secs(5),
    );
    job.stdin = b"abcdefgh".to_vec();
    job.output = autopack_sandbox::OutputMode::Separate {
        stdout_limit: 7,
        stderr_tail: 9,
    };
    let done = s.run(&job, &p).unwrap();
    assert_eq!(common::text(&done.stdout), "abcde\nm");
    assert!(done.stdout_overflow);
    assert_eq!(common::text(&done.stderr_tail), "999\n1000\n");
    job.output = autopack_sandbox::OutputMode::Combined { tail_bytes: 10 };
    let done = s.run(&job, &p).unwrap();
    assert_eq!(common::text(&done.combined_tail), "\n1000\nmore");
    assert!(done.stdout.is_empty() && done.stderr_tail.is_empty());
}

#[test]
fn a_child_that_never_reads_stdin_does_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let mut job = sh("echo ignoring", dir.path(), Duration::from_secs(5));
    job.stdin = vec![b'x'; 4 << 20];
    let t = Instant::now();
    let done = Sandbox::off()
        .run(&job, &policy(dir.path(), Network::Allow))
        .unwrap();
    assert_eq!(done.ended, Ended::Exited(0));
    assert!(t.elapsed() < Duration::from_secs(4));
}

#[test]
fn a_missing_program_or_cwd_is_a_start_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let mut job = sh("true", dir.path(), Duration::from_secs(5));
    job.program = "no-such-program-xyz".into();
    let err = Sandbox::off()
        .run(&job, &policy(dir.path(), Network::Allow))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no-such-program-xyz") && err.contains(&dir.path().display().to_string()),
        "{err}"
    );
    let mut job = sh("true", &dir.path().join("gone"), Duration::from_secs(5));
    job.program = "sh".into();
    let err = Sandbox::off()
        .run(&job, &policy(dir.path(), Network::Allow))
        .unwrap_err()
        .to_string();
    assert!(err.contains("gone"), "{err}");
}

#[test]
fn huge_timeouts_and_output_limits_never_panic() {
    // `Instant + Duration::MAX` overflows: such a timeout is no deadline at all, and the
    // job runs to its end (it used to panic in the waiting loop).
    let dir = tempfile::tempdir().unwrap();
    let p = policy(dir.path(), Network::Allow);
    for timeout in [
        Duration::MAX,
        Duration::from_secs(u64::MAX),
        Duration::from_secs(u64::MAX / 2),
    ] {
        let mut job = sh("echo out; echo err >&2", dir.path(), timeout);
        job.output = autopack_sandbox::OutputMode::Separate {
            stdout_limit: usize::MAX,
            stderr_tail: usize::MAX,
        };
        let done = Sandbox::off().run(&job, &p).unwrap();
        assert_eq!(done.ended, Ended::Exited(0), "{timeout:?}");
        assert_eq!(common::text(&done.stdout), "out\n");
        assert!(!done.stdout_overflow);
        assert_eq!(common::text(&done.stderr_tail), "err\n");
        job.output = autopack_sandbox::OutputMode::Combined {
            tail_bytes: usize::MAX,
        };
        let done = Sandbox::off().run(&job, &p).unwrap();
        assert_eq!(done.ended, Ended::Exited(0));
    }
}
