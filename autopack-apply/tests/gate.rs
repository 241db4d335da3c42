//! The preflight gate with real shell commands.

use std::time::Duration;

use autopack_apply::{GateError, GateVerdict, PreflightGate};
use autopack_core::vocabulary::CiProfile;

fn gate(cmd: &str) -> PreflightGate {
    let mut g = PreflightGate::new(cmd, cmd);
    g.backoff = Duration::ZERO;
    g.timeout = Duration::from_secs(20);
    g
}

#[test]
fn green_on_first_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let report = gate("echo all good; true")
        .run(dir.path(), CiProfile::Normal, 6)
        .unwrap();
    assert_eq!(report.verdict, GateVerdict::Green);
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(report.ci_runs_used, 1);
    assert_eq!(report.attempts[0].exit_code, Some(0));
    assert_eq!(report.attempts[0].output_tail, "all good\n");
    assert!(!report.stopped_for_cap);
}

#[test]
fn red_after_every_attempt_with_output_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = gate("seq 1 100; echo boom >&2; exit 3");
    g.tail_lines = 3;
    let report = g.run(dir.path(), CiProfile::Strict, 10).unwrap();
    assert_eq!(report.verdict, GateVerdict::Red);
    assert_eq!(report.attempts.len(), 3, "default max attempts");
    assert!(
        report
            .attempts
            .iter()
            .all(|a| a.exit_code == Some(3) && !a.timed_out)
    );
    assert_eq!(report.attempts[2].output_tail, "99\n100\nboom\n");
    assert_eq!(
        report.attempts.iter().map(|a| a.number).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let report = gate("false")
        .run(dir.path(), CiProfile::Normal, 10)
        .unwrap();
    assert_eq!(report.verdict, GateVerdict::Red);
    assert_eq!(report.attempts[0].exit_code, Some(1));
}

#[test]
fn flaky_when_red_then_green() {
    let dir = tempfile::tempdir().unwrap();
    let script = "if [ -e marker ]; then echo pass; else touch marker; echo fail; exit 1; fi";
    let report = gate(script).run(dir.path(), CiProfile::Normal, 6).unwrap();
    assert_eq!(report.verdict, GateVerdict::Flaky);
    assert_eq!(
        report
            .attempts
            .iter()
            .map(|a| a.exit_code)
            .collect::<Vec<_>>(),
        [Some(1), Some(0)]
    );
    assert_eq!(report.ci_runs_used, 2);
}

#[test]
fn never_starts_an_attempt_the_cap_cannot_pay_for() {
    let dir = tempfile::tempdir().unwrap();
    let report = gate("false").run(dir.path(), CiProfile::Normal, 2).unwrap();
    assert_eq!(report.verdict, GateVerdict::Red);
    assert_eq!(report.ci_runs_used, 2);
    assert!(report.stopped_for_cap);
    let report = gate("touch ran")
        .run(dir.path(), CiProfile::Normal, 0)
        .unwrap();
    assert_eq!(report.verdict, GateVerdict::NotRun);
    assert!(report.attempts.is_empty() && report.stopped_for_cap);
    assert!(!dir.path().join("ran").exists());
}

#[test]
fn times_out_and_kills_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = gate("sleep 5");
    g.timeout = Duration::from_millis(200);
    g.max_attempts = 2;
    let started = std::time::Instant::now();
    let report = g.run(dir.path(), CiProfile::Normal, 5).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(report.verdict, GateVerdict::Red);
    assert!(
        report
            .attempts
            .iter()
            .all(|a| a.timed_out && a.exit_code.is_none() && !a.passed())
    );
    assert!(report.attempts[0].duration >= Duration::from_millis(200));
}

#[test]
fn a_missing_program_is_an_environment_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = gate("definitely-not-a-program-xyz --run")
        .run(dir.path(), CiProfile::Normal, 5)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            GateError::Environment {
                ci_runs_charged: 1,
                ..
            }
        ),
        "{err}"
    );
    let err = gate("true")
        .run(&dir.path().join("missing-dir"), CiProfile::Normal, 5)
        .unwrap_err();
    assert!(matches!(err, GateError::Environment { .. }));
}

#[test]
fn backoff_doubles_and_is_injectable() {
    use std::sync::Mutex;
    static SLEPT: Mutex<Vec<Duration>> = Mutex::new(Vec::new());
    fn record(d: Duration) {
        SLEPT.lock().unwrap().push(d);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut g = gate("false");
    g.backoff = Duration::from_secs(10);
    g.sleep = record;
    g.run(dir.path(), CiProfile::Normal, 5).unwrap();
    assert_eq!(
        *SLEPT.lock().unwrap(),
        [Duration::from_secs(10), Duration::from_secs(20)]
    );
}

#[test]
fn profiles_pick_their_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = PreflightGate::new("exit 0", "exit 1");
    g.backoff = Duration::ZERO;
    g.max_attempts = 1;
    assert_eq!(
        g.run(dir.path(), CiProfile::Normal, 1).unwrap().verdict,
        GateVerdict::Green
    );
    assert_eq!(
        g.run(dir.path(), CiProfile::Strict, 1).unwrap().verdict,
        GateVerdict::Red
    );
}

#[test]
fn a_grandchild_holding_the_output_open_does_not_stretch_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = gate("(setsid sleep 60 &) ; sleep 60 & echo started; sleep 60");
    g.timeout = Duration::from_secs(2);
    g.max_attempts = 1;
    let t = std::time::Instant::now();
    let report = g.run(dir.path(), CiProfile::Normal, 6).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(report.verdict, GateVerdict::Red);
    assert!(report.attempts[0].timed_out);
    assert_eq!(report.attempts[0].output_tail, "started\n");
}

#[test]
fn a_confined_gate_writes_only_its_workdir() {
    let sandbox = match autopack_sandbox::Sandbox::detect() {
        Ok(s) => s,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but Landlock is unavailable: {e}")
        }
        Err(e) => {
            eprintln!("skipping: {e}");
            return;
        }
    };
    let (dir, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cmd = format!(
        "echo ok > inside && ! echo no > {}/x 2>/dev/null",
        outside.path().display()
    );
    let g = gate(&cmd).with_sandbox(sandbox, autopack_sandbox::Network::Deny, Vec::new());
    let report = g.run(dir.path(), CiProfile::Normal, 6).unwrap();
    assert_eq!(report.verdict, GateVerdict::Green, "{:?}", report.attempts);
    assert!(dir.path().join("inside").exists());
    assert!(!outside.path().join("x").exists());
}

#[test]
fn huge_timeouts_and_backoffs_never_panic_or_sleep_for_ever() {
    use std::sync::Mutex;
    static SLEPT: Mutex<Vec<Duration>> = Mutex::new(Vec::new());
    fn record(d: Duration) {
        SLEPT.lock().unwrap().push(d);
    }
    let dir = tempfile::tempdir().unwrap();
    // `--ci-timeout 18446744073709551615`: `Instant + Duration` used to overflow (a panic).
    let mut g = gate("echo ok");
    g.timeout = Duration::from_secs(u64::MAX);
    assert_eq!(
        g.run(dir.path(), CiProfile::Normal, 1).unwrap().verdict,
        GateVerdict::Green
    );
    g.timeout = Duration::MAX;
    assert_eq!(
        g.run(dir.path(), CiProfile::Normal, 1).unwrap().verdict,
        GateVerdict::Green
    );
    // A huge backoff, doubled over many attempts, saturates and is capped.
    let mut g = gate("false");
    g.backoff = Duration::MAX;
    g.max_attempts = 40;
    g.sleep = record;
    let report = g.run(dir.path(), CiProfile::Normal, 40).unwrap();
    assert_eq!(report.verdict, GateVerdict::Red);
    let slept = SLEPT.lock().unwrap().clone();
    assert_eq!(slept.len(), 39);
    assert!(
        slept.iter().all(|d| *d == autopack_apply::MAX_BACKOFF),
        "{slept:?}"
    );
    let mut g = gate("false");
    g.backoff = Duration::from_millis(2000);
    assert_eq!(g.backoff_before(1), Duration::ZERO);
    assert_eq!(g.backoff_before(2), Duration::from_secs(2));
    assert_eq!(g.backoff_before(3), Duration::from_secs(4));
    assert_eq!(g.backoff_before(u32::MAX), autopack_apply::MAX_BACKOFF);
    g.max_attempts = u32::MAX;
    assert_eq!(g.backoff_before(40), autopack_apply::MAX_BACKOFF);
}

#[test]
fn without_junit_globs_reports_are_neither_read_nor_removed() {
    let dir = tempfile::tempdir().unwrap();
    let xml = r#"<testsuite name="s"><testcase name="t"><failure/></testcase></testsuite>"#;
    std::fs::write(dir.path().join("junit.xml"), xml).unwrap();
    let report = gate("test -e junit.xml")
        .run(dir.path(), CiProfile::Normal, 6)
        .unwrap();
    assert_eq!(report.verdict, GateVerdict::Green);
    assert!(report.attempts[0].tests.is_none() && report.attempts[0].report_error.is_none());
    assert!(report.failing_tests.is_empty() && report.flaky_tests.is_empty());
    assert!(report.new_failures.is_empty() && report.known_failures.is_empty());
    assert_eq!(
        gate("true")
            .baseline(dir.path(), CiProfile::Normal)
            .unwrap(),
        None
    );
}

#[test]
fn junit_globs_are_per_profile() {
    let dir = tempfile::tempdir().unwrap();
    let write = r#"printf '<testsuite name="s"><testcase name="t"><failure/></testcase></testsuite>' > junit.xml; exit 1"#;
    let mut g = gate(write);
    g.max_attempts = 1;
    g.strict_junit = vec!["junit.xml".into()];
    let normal = g.run(dir.path(), CiProfile::Normal, 1).unwrap();
    assert!(normal.attempts[0].tests.is_none());
    let strict = g.run(dir.path(), CiProfile::Strict, 1).unwrap();
    assert_eq!(
        strict
            .failing_tests
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["s::t"]
    );
    // With that failure in the baseline, the strict run passes on its report.
    let baseline = g.baseline(dir.path(), CiProfile::Strict).unwrap().unwrap();
    let strict = g
        .run_with_baseline(dir.path(), CiProfile::Strict, 1, Some(&baseline))
        .unwrap();
    assert_eq!(strict.verdict, GateVerdict::Green);
    assert_eq!(
        strict
            .known_failures
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["s::t"]
    );
    // A bad glob is an error before any attempt runs.
    g.strict_junit = vec!["../junit.xml".into()];
    let err = g.run(dir.path(), CiProfile::Strict, 1).unwrap_err();
    assert!(
        matches!(
            err,
            GateError::Report {
                ci_runs_charged: 0,
                ..
            }
        ),
        "{err}"
    );
}
