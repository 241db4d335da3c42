//! The preflight gate (SPEC §9): a test command, retried, timed out, classified.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use autopack_sandbox::{Ended, Env, Job, Network, OutputMode, Policy, Sandbox};

use autopack_core::budget::defaults::CI_MAX_ATTEMPTS;
use autopack_core::vocabulary::CiProfile;

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

    /// Runs the profile's command in `workdir` until it passes, `max_attempts` are used, or
    /// `ci_runs_remaining` cannot pay for another attempt (each attempt costs one CI run;
    /// an attempt that cannot be paid for is never started).
    ///
    /// # Errors
    /// [`GateError::Environment`] when the command cannot be started (spawn failure, or the
    /// shell's exit 126/127); the attempts already charged are reported in the error.
    pub fn run(
        &self,
        workdir: &Path,
        profile: CiProfile,
        ci_runs_remaining: u32,
    ) -> Result<GateReport, GateError> {
        let command = self.command(profile).to_owned();
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut stopped_for_cap = false;
        let mut verdict = None;
        for n in 1..=self.max_attempts {
            if attempts.len() as u32 >= ci_runs_remaining {
                stopped_for_cap = true;
                break;
            }
            if n > 1 {
                (self.sleep)(self.backoff_before(n));
            }
            let attempt =
                self.attempt(workdir, &command, n)
                    .map_err(|reason| GateError::Environment {
                        command: command.clone(),
                        workdir: workdir.to_owned(),
                        reason,
                        ci_runs_charged: attempts.len() as u32 + 1,
                    })?;
            if let Some(code) = attempt.exit_code
                && SHELL_CANNOT_RUN.contains(&code)
            {
                return Err(GateError::Environment {
                    command,
                    workdir: workdir.to_owned(),
                    reason: format!(
                        "the shell could not run the command (exit {code}): {}",
                        attempt.output_tail.trim_end()
                    ),
                    ci_runs_charged: attempts.len() as u32 + 1,
                });
            }
            let passed = attempt.passed();
            attempts.push(attempt);
            if passed {
                verdict = Some(if attempts.len() > 1 {
                    GateVerdict::Flaky
                } else {
                    GateVerdict::Green
                });
                break;
            }
        }
        let verdict = match verdict {
            Some(v) => v,
            None if attempts.is_empty() => GateVerdict::NotRun,
            None => GateVerdict::Red,
        };
        Ok(GateReport {
            profile,
            command,
            verdict,
            ci_runs_used: attempts.len() as u32,
            stopped_for_cap,
            attempts,
        })
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
    /// A red attempt, then a green one, with nothing changed in between (a minor `ci` issue).
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
}

impl Attempt {
    /// Exit code 0 within the timeout.
    pub fn passed(&self) -> bool {
        !self.timed_out && self.exit_code == Some(0)
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
}

/// Errors of [`PreflightGate::run`]: the environment, never the tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
}
