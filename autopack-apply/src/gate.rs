//! The preflight gate (SPEC §9): a test command, retried, timed out, classified; with JUnit
//! reports (SPEC §13), classified per test against a baseline of the base's failures.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use autopack_sandbox::{Ended, Env, Job, Network, OutputMode, Policy, Sandbox};

use autopack_core::budget::defaults::CI_MAX_ATTEMPTS;
use autopack_core::vocabulary::CiProfile;

use crate::junit::{self, Baseline, JunitError, Outcome, TestResults};

/// Exit codes the shell uses for "command not found" (127) and "not executable" (126);
/// they are environment errors, not red tests.
pub const SHELL_CANNOT_RUN: [i32; 2] = [126, 127];

/// The longest wait between two attempts: a doubled backoff stops growing here (and a
/// `backoff` beyond it waits this long), so no input can make the gate sleep for ever.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60 * 60);

/// The gate's configuration.
#[derive(Debug, Clone)]
pub struct PreflightGate {
    /// Command for [`CiProfile::Normal`], run as `sh -c COMMAND`.
    pub normal_command: String,
    /// Command for [`CiProfile::Strict`], run as `sh -c COMMAND`.
    pub strict_command: String,
    /// Globs of the JUnit XML reports [`CiProfile::Normal`]'s command writes, relative to
    /// the work directory (`*` within a directory, `**` across; see [`junit::collect`]).
    /// Empty (the default): no report is read, attempts are judged by exit code alone.
    /// Files matching are removed before every attempt, so they should name only the
    /// reports, never tracked files.
    pub normal_junit: Vec<String>,
    /// Globs of the JUnit XML reports of [`CiProfile::Strict`]'s command (as
    /// [`PreflightGate::normal_junit`]).
    pub strict_junit: Vec<String>,
    /// Most attempts per gate run (default [`CI_MAX_ATTEMPTS`] = 3).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled before each later one, each wait capped at
    /// [`MAX_BACKOFF`] (the arithmetic saturates, it never overflows). Zero in tests.
    pub backoff: Duration,
    /// Wall-clock limit of one attempt; the attempt's whole process tree is killed when it
    /// is reached. A limit too far away to be represented (such as [`Duration::MAX`]) is
    /// no limit at all (see [`Job::timeout`]); it never panics.
    pub timeout: Duration,
    /// Output tail kept per attempt: at most this many lines …
    pub tail_lines: usize,
    /// … and at most this many bytes.
    pub tail_bytes: usize,
    /// How to wait for the backoff (injectable; `std::thread::sleep` by default).
    pub sleep: fn(Duration),
    /// Runs each attempt. [`PreflightGate::new`] uses [`Sandbox::off`]: environment
    /// scrubbed, timeout and reaping enforced, but **no filesystem or network
    /// confinement**; hosts set a detected sandbox with [`PreflightGate::with_sandbox`].
    pub sandbox: Sandbox,
    /// Host variables passed to the command and variables set for it, beyond the
    /// sandbox's allowlist (`HOME` and `TMPDIR` are always private to the attempt).
    pub env: Env,
    /// The command's network rule under Landlock (default [`Network::Deny`]: CI needs no
    /// network once dependencies are fetched). Ignored by [`Sandbox::off`].
    pub network: Network,
    /// Extra read-only paths (toolchains, caches) beyond the sandbox's system defaults.
    pub readable: Vec<PathBuf>,
    /// Extra writable paths (a build cache or a state folder outside the checkout); the
    /// work directory is always writable, the host repository never should be.
    pub writable: Vec<PathBuf>,
}

impl PreflightGate {
    /// A gate with the defaults: 3 attempts, 2 s backoff, 30 min timeout, 2,000 lines /
    /// 64 KiB of output tail, and an *unconfined* sandbox ([`Sandbox::off`]; see
    /// [`PreflightGate::with_sandbox`]).
    pub fn new(
        normal_command: impl Into<String>,
        strict_command: impl Into<String>,
    ) -> PreflightGate {
        PreflightGate {
            normal_command: normal_command.into(),
            strict_command: strict_command.into(),
            normal_junit: Vec::new(),
            strict_junit: Vec::new(),
            max_attempts: CI_MAX_ATTEMPTS,
            backoff: Duration::from_secs(2),
            timeout: Duration::from_secs(30 * 60),
            tail_lines: 2_000,
            tail_bytes: 64 * 1024,
            sleep: std::thread::sleep,
            sandbox: Sandbox::off(),
            env: Env::default(),
            network: Network::Deny,
            readable: Vec::new(),
            writable: Vec::new(),
        }
    }

    /// Runs attempts under `sandbox` with `network`, granting `readable` read-only on top
    /// of the work directory (writable) and the sandbox's system defaults.
    pub fn with_sandbox(
        mut self,
        sandbox: Sandbox,
        network: Network,
        readable: Vec<PathBuf>,
    ) -> PreflightGate {
        self.sandbox = sandbox;
        self.network = network;
        self.readable = readable;
        self
    }

    /// The wait before attempt `n` (1-based; zero before the first): `backoff` × 2^(n−2),
    /// saturating, at most [`MAX_BACKOFF`].
    pub fn backoff_before(&self, n: u32) -> Duration {
        if n < 2 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(n - 2).unwrap_or(u32::MAX);
        self.backoff.saturating_mul(factor).min(MAX_BACKOFF)
    }

    /// The command run for `profile`.
    pub fn command(&self, profile: CiProfile) -> &str {
        match profile {
            CiProfile::Normal => &self.normal_command,
            CiProfile::Strict => &self.strict_command,
        }
    }

    /// The JUnit report globs of `profile` (empty: none read).
    pub fn junit(&self, profile: CiProfile) -> &[String] {
        match profile {
            CiProfile::Normal => &self.normal_junit,
            CiProfile::Strict => &self.strict_junit,
        }
    }

    /// Runs the profile's command in `workdir` until it passes, `max_attempts` are used, or
    /// `ci_runs_remaining` cannot pay for another attempt (each attempt costs one CI run;
    /// an attempt that cannot be paid for is never started). No baseline: every failing
    /// test counts; [`PreflightGate::run_with_baseline`] with `None`.
    ///
    /// # Errors
    /// [`GateError::Environment`] when the command cannot be started (spawn failure, or the
    /// shell's exit 126/127); the attempts already charged are reported in the error.
    /// [`GateError::Report`] when an earlier attempt's reports cannot be removed.
    pub fn run(
        &self,
        workdir: &Path,
        profile: CiProfile,
        ci_runs_remaining: u32,
    ) -> Result<GateReport, GateError> {
        self.run_with_baseline(workdir, profile, ci_runs_remaining, None)
    }

    /// Runs the profile's command once in `dir`, a checkout of the base commit, and returns
    /// the tests failing there: `None` when the profile has no JUnit globs or the command
    /// wrote no report. The exit code does not matter (a base whose tests fail is what a
    /// baseline is for). Not charged against any cap: the host decides what it costs.
    ///
    /// # Errors
    /// [`GateError::Environment`] as for [`PreflightGate::run`]; [`GateError::Report`]
    /// when the base's reports cannot be removed beforehand or cannot be read (the host
    /// may go on without a baseline: every failure then counts as new).
    pub fn baseline(&self, dir: &Path, profile: CiProfile) -> Result<Option<Baseline>, GateError> {
        let globs = self.junit(profile);
        if globs.is_empty() {
            return Ok(None);
        }
        let command = self.command(profile).to_owned();
        let attempt = self.checked_attempt(dir, &command, 1, globs, 0)?;
        if let Some(error) = attempt.report_error {
            return Err(GateError::Report {
                workdir: dir.to_owned(),
                error,
                ci_runs_charged: 1,
            });
        }
        Ok(attempt.tests.as_ref().map(Baseline::from_results))
    }

    /// [`PreflightGate::run`], with the failing tests of the base: an attempt whose command
    /// exits non-zero passes when its report names failing tests and every one of them is
    /// in `baseline` (see [`Attempt::green`] and [`classify`]). The report says which tests
    /// are new failures, known (baseline) failures and flaky.
    ///
    /// # Errors
    /// As [`PreflightGate::run`]. A report that cannot be read is no error: it is recorded
    /// on its attempt ([`Attempt::report_error`]), which is then judged by its exit code.
    pub fn run_with_baseline(
        &self,
        workdir: &Path,
        profile: CiProfile,
        ci_runs_remaining: u32,
        baseline: Option<&Baseline>,
    ) -> Result<GateReport, GateError> {
        let command = self.command(profile).to_owned();
        let globs = self.junit(profile);
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut stopped_for_cap = false;
        for n in 1..=self.max_attempts {
            if attempts.len() as u32 >= ci_runs_remaining {
                stopped_for_cap = true;
                break;
            }
            if n > 1 {
                (self.sleep)(self.backoff_before(n));
            }
            let attempt =
                self.checked_attempt(workdir, &command, n, globs, attempts.len() as u32)?;
            let green = attempt.green(baseline);
            attempts.push(attempt);
            if green {
                break;
            }
        }
        let Classification {
            verdict,
            failing_tests,
            new_failures,
            known_failures,
            flaky_tests,
        } = classify(&attempts, baseline);
        Ok(GateReport {
            profile,
            command,
            verdict,
            ci_runs_used: attempts.len() as u32,
            stopped_for_cap,
            attempts,
            failing_tests,
            new_failures,
            known_failures,
            flaky_tests,
        })
    }

    /// One attempt with its reports: earlier reports removed first, this one's read after
    /// the command's whole tree has ended; the environment errors raised. `charged` is
    /// the number of attempts already charged.
    fn checked_attempt(
        &self,
        workdir: &Path,
        command: &str,
        number: u32,
        globs: &[String],
        charged: u32,
    ) -> Result<Attempt, GateError> {
        // A report left by an earlier attempt (or by the checkout) must not judge this one.
        junit::remove_reports(workdir, globs).map_err(|error| GateError::Report {
            workdir: workdir.to_owned(),
            error,
            ci_runs_charged: charged,
        })?;
        let mut attempt =
            self.attempt(workdir, command, number)
                .map_err(|reason| GateError::Environment {
                    command: command.to_owned(),
                    workdir: workdir.to_owned(),
                    reason,
                    ci_runs_charged: charged + 1,
                })?;
        if let Some(code) = attempt.exit_code
            && SHELL_CANNOT_RUN.contains(&code)
        {
            return Err(GateError::Environment {
                command: command.to_owned(),
                workdir: workdir.to_owned(),
                reason: format!(
                    "the shell could not run the command (exit {code}): {}",
                    attempt.output_tail.trim_end()
                ),
                ci_runs_charged: charged + 1,
            });
        }
        if !globs.is_empty() {
            match junit::collect(workdir, globs) {
                Ok(tests) if tests.reports.is_empty() => {}
                Ok(tests) => attempt.tests = Some(tests),
                Err(error) => attempt.report_error = Some(error),
            }
        }
        Ok(attempt)
    }

    fn attempt(&self, workdir: &Path, command: &str, number: u32) -> Result<Attempt, String> {
        let job = Job {
            program: "sh".into(),
            args: vec!["-c".into(), command.into()],
            cwd: workdir.to_owned(),
            env: self.env.clone(),
            stdin: Vec::new(),
            timeout: self.timeout,
            output: OutputMode::Combined {
                tail_bytes: self.tail_bytes,
            },
        };
        let policy = Policy {
            writable: std::iter::once(workdir.to_owned())
                .chain(self.writable.iter().cloned())
                .collect(),
            readable: self.readable.clone(),
            network: self.network,
        };
        let finished = self.sandbox.run(&job, &policy).map_err(|e| e.to_string())?;
        let mut tail = Tail::new(self.tail_lines, self.tail_bytes);
        tail.push(&finished.combined_tail);
        let (exit_code, timed_out) = match finished.ended {
            Ended::Exited(code) => (Some(code), false),
            Ended::Signalled(_) => (None, false),
            Ended::TimedOut => (None, true),
        };
        Ok(Attempt {
            number,
            exit_code,
            timed_out,
            duration: finished.duration,
            output_tail: tail.text(),
            tests: None,
            report_error: None,
        })
    }
}

/// The last lines/bytes of a stream.
struct Tail {
    buf: VecDeque<u8>,
    max_lines: usize,
    max_bytes: usize,
}

impl Tail {
    fn new(max_lines: usize, max_bytes: usize) -> Tail {
        Tail {
            buf: VecDeque::new(),
            max_lines,
            max_bytes,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
        let excess = self.buf.len().saturating_sub(self.max_bytes);
        self.buf.drain(..excess);
    }

    fn text(&self) -> String {
        let bytes: Vec<u8> = self.buf.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let keep = lines.len().saturating_sub(self.max_lines);
        let mut out = lines[keep..].join("\n");
        if text.ends_with('\n') && !out.is_empty() {
            out.push('\n');
        }
        out
    }
}

/// How the gate judged the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateVerdict {
    /// The first attempt passed.
    Green,
    /// A red attempt, then a green one, with nothing changed in between (a minor `ci` issue);
    /// also a green first attempt whose report shows a test that failed and then passed
    /// within the run (a test runner's own retries, see [`junit::TestResult::flaky`]).
    Flaky,
    /// Every attempt run failed.
    Red,
    /// No attempt could be paid for.
    NotRun,
}

/// One run of the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1-based.
    pub number: u32,
    /// The exit code (`None` when killed by a signal or the timeout).
    pub exit_code: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Wall-clock time.
    pub duration: Duration,
    /// The last lines of stdout and stderr, interleaved.
    pub output_tail: String,
    /// The tests its JUnit reports name: `None` when the profile has no JUnit globs, no
    /// report was written, or the reports could not be read ([`Attempt::report_error`]).
    pub tests: Option<TestResults>,
    /// Why the reports written could not be read (a symlink, too large, not JUnit XML …);
    /// the attempt is then judged by its exit code alone.
    pub report_error: Option<JunitError>,
}

impl Attempt {
    /// Exit code 0 within the timeout: the exit code alone. [`Attempt::green`] is the
    /// gate's judgement, reports and baseline included.
    pub fn passed(&self) -> bool {
        !self.timed_out && self.exit_code == Some(0)
    }

    /// Whether the gate counts this attempt as passing. Without a report ([`Attempt::tests`]
    /// is `None`): [`Attempt::passed`]. With one, a failing test not in `baseline` (a new
    /// failure) makes it red whatever the exit code; otherwise it passes on exit 0, and on
    /// a non-zero exit when the report names at least one failing test (all of them known:
    /// the exit is theirs). A non-zero exit whose report names no failing test is red:
    /// something other than a test broke. Killed by the timeout or a signal: red.
    pub fn green(&self, baseline: Option<&Baseline>) -> bool {
        if self.timed_out {
            return false;
        }
        let Some(tests) = &self.tests else {
            return self.passed();
        };
        let mut failing = tests.failing().peekable();
        let any_failing = failing.peek().is_some();
        let all_known = failing.all(|id| baseline.is_some_and(|b| b.contains(id)));
        match self.exit_code {
            Some(0) => all_known,
            Some(_) => any_failing && all_known,
            None => false,
        }
    }
}

/// What [`classify`] makes of a gate run's attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// The verdict.
    pub verdict: GateVerdict,
    /// The failing tests of the last red attempt (empty when none was red or it had no
    /// report).
    pub failing_tests: BTreeSet<String>,
    /// The failing tests of the last attempt that are not in the baseline.
    pub new_failures: BTreeSet<String>,
    /// The failing tests of the last attempt that are in the baseline (the host records
    /// them as issues: they fail on the base already).
    pub known_failures: BTreeSet<String>,
    /// Tests that failed in one attempt and passed in a later one, and tests a report shows
    /// flaking within its run.
    pub flaky_tests: BTreeSet<String>,
}

/// Classifies a gate run (pure): the attempts in the order run, the base's failures.
///
/// Only the attempts up to the first [`Attempt::green`] one count (the gate runs none
/// after it). The verdict is [`GateVerdict::NotRun`] for no attempt, [`GateVerdict::Red`]
/// when none is green, [`GateVerdict::Green`] when the first is and no test flaked, else
/// [`GateVerdict::Flaky`]. Without reports this is today's exit-code rule exactly.
///
/// Invariants (proptests below): a known failure never makes a verdict red; a verdict is
/// never green or flaky when the last attempt has a new failure; `new_failures` and
/// `known_failures` partition the last attempt's failures by the baseline.
pub fn classify(attempts: &[Attempt], baseline: Option<&Baseline>) -> Classification {
    let first_green = attempts.iter().position(|a| a.green(baseline));
    let considered = match first_green {
        Some(i) => &attempts[..=i],
        None => attempts,
    };
    let failing_of = |a: &Attempt| -> BTreeSet<String> {
        a.tests
            .iter()
            .flat_map(|t| t.failing().map(str::to_owned))
            .collect()
    };
    let failing_tests = considered
        .iter()
        .rev()
        .find(|a| !a.green(baseline))
        .map(failing_of)
        .unwrap_or_default();
    let (known_failures, new_failures): (BTreeSet<String>, BTreeSet<String>) = considered
        .last()
        .map(failing_of)
        .unwrap_or_default()
        .into_iter()
        .partition(|id| baseline.is_some_and(|b| b.contains(id)));
    let mut flaky_tests = BTreeSet::new();
    for (i, attempt) in considered.iter().enumerate() {
        let Some(tests) = &attempt.tests else {
            continue;
        };
        flaky_tests.extend(tests.flaky().map(str::to_owned));
        for id in tests.failing() {
            let passed_later = considered[i + 1..].iter().any(|later| {
                later
                    .tests
                    .as_ref()
                    .is_some_and(|t| t.outcome(id) == Some(Outcome::Passed))
            });
            if passed_later {
                flaky_tests.insert(id.to_owned());
            }
        }
    }
    let verdict = match first_green {
        _ if attempts.is_empty() => GateVerdict::NotRun,
        None => GateVerdict::Red,
        Some(0) if flaky_tests.is_empty() => GateVerdict::Green,
        Some(_) => GateVerdict::Flaky,
    };
    Classification {
        verdict,
        failing_tests,
        new_failures,
        known_failures,
        flaky_tests,
    }
}

/// The gate's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateReport {
    /// The profile run.
    pub profile: CiProfile,
    /// The command run.
    pub command: String,
    /// The verdict.
    pub verdict: GateVerdict,
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// Attempts charged against the tier's `ci_run_cap` (= `attempts.len()`).
    pub ci_runs_used: u32,
    /// Whether the gate stopped because the cap could not pay for another attempt.
    pub stopped_for_cap: bool,
    /// The exact ids of the failing tests of the last red attempt, sorted (empty without
    /// reports); see [`Classification`].
    pub failing_tests: BTreeSet<String>,
    /// The last attempt's failing tests that do not fail on the base.
    pub new_failures: BTreeSet<String>,
    /// The last attempt's failing tests that fail on the base too (recorded as issues).
    pub known_failures: BTreeSet<String>,
    /// Tests that failed and then passed with no change, per test.
    pub flaky_tests: BTreeSet<String>,
}

/// Errors of [`PreflightGate::run`]: the environment, never the tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// The command could not be started.
    #[error("environment: cannot run {command:?} in {workdir}: {reason}")]
    Environment {
        /// The command.
        command: String,
        /// The working directory.
        workdir: PathBuf,
        /// Why.
        reason: String,
        /// Attempts charged against the cap, the failed one included.
        ci_runs_charged: u32,
    },
    /// Reports could not be removed before an attempt (so a stale one could judge it), or
    /// the baseline's could not be read.
    #[error("JUnit reports in {workdir}: {error}")]
    Report {
        /// The working directory.
        workdir: PathBuf,
        /// What went wrong, naming the file.
        error: JunitError,
        /// Attempts charged against the cap so far.
        ci_runs_charged: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::TestResult;
    use proptest::prelude::*;

    fn results(tests: &[(&str, Outcome)]) -> TestResults {
        TestResults {
            tests: tests
                .iter()
                .map(|(id, outcome)| {
                    (
                        (*id).to_owned(),
                        TestResult {
                            outcome: *outcome,
                            flaky: false,
                            message: None,
                        },
                    )
                })
                .collect(),
            reports: vec![PathBuf::from("junit.xml")],
        }
    }

    fn attempt(number: u32, exit: i32, tests: Option<TestResults>) -> Attempt {
        Attempt {
            number,
            exit_code: Some(exit),
            timed_out: false,
            duration: Duration::ZERO,
            output_tail: String::new(),
            tests,
            report_error: None,
        }
    }

    fn baseline(ids: &[&str]) -> Baseline {
        Baseline {
            failing: ids.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    use Outcome::{Errored, Failed, Passed, Skipped};

    #[test]
    fn without_reports_the_exit_code_decides_as_before() {
        let c = classify(&[attempt(1, 0, None)], None);
        assert_eq!(c.verdict, GateVerdict::Green);
        let c = classify(&[attempt(1, 1, None), attempt(2, 0, None)], None);
        assert_eq!(c.verdict, GateVerdict::Flaky);
        assert!(c.flaky_tests.is_empty() && c.failing_tests.is_empty());
        let c = classify(&[attempt(1, 1, None), attempt(2, 1, None)], None);
        assert_eq!(c.verdict, GateVerdict::Red);
        assert_eq!(classify(&[], None).verdict, GateVerdict::NotRun);
        // A baseline changes nothing without a report.
        let c = classify(&[attempt(1, 1, None)], Some(&baseline(&["a"])));
        assert_eq!(c.verdict, GateVerdict::Red);
    }

    #[test]
    fn known_failures_pass_and_are_reported_new_ones_are_red() {
        let b = baseline(&["t::known"]);
        let known_only = results(&[("t::known", Failed), ("t::ok", Passed)]);
        let c = classify(&[attempt(1, 1, Some(known_only))], Some(&b));
        assert_eq!(c.verdict, GateVerdict::Green);
        assert_eq!(c.known_failures, set(&["t::known"]));
        assert!(c.new_failures.is_empty() && c.failing_tests.is_empty());

        let with_new = results(&[("t::known", Failed), ("t::new", Errored)]);
        let c = classify(
            &[
                attempt(1, 1, Some(with_new.clone())),
                attempt(2, 1, Some(with_new)),
            ],
            Some(&b),
        );
        assert_eq!(c.verdict, GateVerdict::Red);
        assert_eq!(c.failing_tests, set(&["t::known", "t::new"]));
        assert_eq!(c.new_failures, set(&["t::new"]));
        assert_eq!(c.known_failures, set(&["t::known"]));
    }

    #[test]
    fn a_report_overrides_exit_zero_and_no_failure_under_a_bad_exit_is_red() {
        // Exit 0 (say `pytest || true`) but a new failure in the report: red.
        let c = classify(&[attempt(1, 0, Some(results(&[("a", Failed)])))], None);
        assert_eq!(c.verdict, GateVerdict::Red);
        assert_eq!(c.new_failures, set(&["a"]));
        // Exit 1 and every test passed or skipped: something else broke.
        let r = results(&[("a", Passed), ("b", Skipped)]);
        let c = classify(&[attempt(1, 1, Some(r))], Some(&baseline(&["b"])));
        assert_eq!(c.verdict, GateVerdict::Red);
        assert!(c.failing_tests.is_empty());
        // Timed out: red even with a clean report.
        let mut t = attempt(1, 0, Some(results(&[("a", Passed)])));
        t.timed_out = true;
        t.exit_code = None;
        assert_eq!(classify(&[t], None).verdict, GateVerdict::Red);
    }

    #[test]
    fn flaky_per_test_and_within_a_run() {
        let first = results(&[("a", Failed), ("b", Passed), ("c", Failed)]);
        // `c` is missing from the second report: it did not pass, so it is not flaky.
        let second = results(&[("a", Passed), ("b", Passed)]);
        let c = classify(
            &[attempt(1, 1, Some(first)), attempt(2, 0, Some(second))],
            None,
        );
        assert_eq!(c.verdict, GateVerdict::Flaky);
        assert_eq!(c.flaky_tests, set(&["a"]));
        assert_eq!(c.failing_tests, set(&["a", "c"]));
        assert!(c.new_failures.is_empty());

        // nextest retried `x` within the run: green exit, flaky verdict.
        let mut r = results(&[("x", Passed)]);
        if let Some(t) = r.tests.get_mut("x") {
            t.flaky = true;
        }
        let c = classify(&[attempt(1, 0, Some(r))], None);
        assert_eq!(c.verdict, GateVerdict::Flaky);
        assert_eq!(c.flaky_tests, set(&["x"]));
    }

    #[test]
    fn attempts_after_the_first_green_one_are_ignored() {
        let c = classify(
            &[
                attempt(1, 0, Some(results(&[("a", Passed)]))),
                attempt(2, 1, Some(results(&[("a", Failed)]))),
            ],
            None,
        );
        assert_eq!(c.verdict, GateVerdict::Green);
        assert!(c.failing_tests.is_empty() && c.flaky_tests.is_empty());
    }

    /// An attempt drawn from a small id space, so baselines and attempts overlap.
    fn arb_attempt() -> impl Strategy<Value = Attempt> {
        let outcome = prop_oneof![Just(Passed), Just(Failed), Just(Errored), Just(Skipped)];
        let tests = proptest::collection::btree_map(0u8..6, (outcome, any::<bool>()), 0..6);
        (
            prop_oneof![Just(Some(0)), Just(Some(1)), Just(None)],
            any::<bool>(),
            proptest::option::of(tests),
        )
            .prop_map(|(exit_code, timed_out, tests)| Attempt {
                number: 0,
                exit_code,
                timed_out: timed_out && exit_code.is_none(),
                duration: Duration::ZERO,
                output_tail: String::new(),
                tests: tests.map(|m| TestResults {
                    tests: m
                        .into_iter()
                        .map(|(id, (outcome, flaky))| {
                            (
                                format!("t{id}"),
                                TestResult {
                                    outcome,
                                    flaky: flaky && outcome == Passed,
                                    message: None,
                                },
                            )
                        })
                        .collect(),
                    reports: vec![PathBuf::from("r.xml")],
                }),
                report_error: None,
            })
    }

    fn arb_baseline() -> impl Strategy<Value = Option<Baseline>> {
        proptest::option::of(
            proptest::collection::btree_set(0u8..6, 0..6).prop_map(|ids| Baseline {
                failing: ids.into_iter().map(|i| format!("t{i}")).collect(),
            }),
        )
    }

    proptest! {
        #[test]
        fn known_failures_never_make_a_verdict_red(
            attempts in proptest::collection::vec(arb_attempt(), 1..5),
            b in arb_baseline(),
        ) {
            let without = classify(&attempts, None);
            let with = classify(&attempts, b.as_ref());
            // A baseline only ever turns red into green/flaky, never the other way.
            if without.verdict != GateVerdict::Red {
                prop_assert_ne!(with.verdict, GateVerdict::Red);
            }
            // The first attempt's only failures are known: it is green.
            let first = &attempts[0];
            if let (Some(t), Some(b)) = (&first.tests, &b)
                && !first.timed_out
                && first.exit_code.is_some()
                && t.failing().next().is_some()
                && t.failing().all(|id| b.contains(id))
            {
                prop_assert_ne!(with.verdict, GateVerdict::Red);
                prop_assert_ne!(with.verdict, GateVerdict::NotRun);
            }
        }

        #[test]
        fn never_green_with_a_new_failure_in_the_last_attempt(
            attempts in proptest::collection::vec(arb_attempt(), 1..5),
            b in arb_baseline(),
        ) {
            let c = classify(&attempts, b.as_ref());
            let first_green = attempts.iter().position(|a| a.green(b.as_ref()));
            let last = &attempts[first_green.unwrap_or(attempts.len() - 1)];
            let has_new = last.tests.as_ref().is_some_and(|t| {
                t.failing().any(|id| !b.as_ref().is_some_and(|b| b.contains(id)))
            });
            if has_new {
                prop_assert_eq!(c.verdict, GateVerdict::Red);
            }
            prop_assert_eq!(c.new_failures.is_empty(), !has_new);
            for id in &c.new_failures {
                prop_assert!(!b.as_ref().is_some_and(|b| b.contains(id)));
            }
            for id in &c.known_failures {
                prop_assert!(b.as_ref().is_some_and(|b| b.contains(id)));
            }
            if c.verdict == GateVerdict::Red {
                prop_assert!(c.new_failures.is_subset(&c.failing_tests));
                prop_assert!(c.known_failures.is_subset(&c.failing_tests));
            }
            if c.verdict == GateVerdict::Green {
                prop_assert!(c.flaky_tests.is_empty());
                prop_assert!(c.failing_tests.is_empty());
            }
        }

        #[test]
        fn without_reports_the_verdict_is_the_exit_code_rule(
            exits in proptest::collection::vec(prop_oneof![Just(Some(0)), Just(Some(1)), Just(None)], 0..5),
        ) {
            let attempts: Vec<Attempt> = exits
                .iter()
                .map(|&exit_code| Attempt { exit_code, ..attempt(1, 0, None) })
                .collect();
            let expected = match attempts.iter().position(Attempt::passed) {
                _ if attempts.is_empty() => GateVerdict::NotRun,
                None => GateVerdict::Red,
                Some(0) => GateVerdict::Green,
                Some(_) => GateVerdict::Flaky,
            };
            prop_assert_eq!(classify(&attempts, None).verdict, expected);
        }
    }
}
