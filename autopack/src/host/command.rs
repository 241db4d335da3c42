//! External-command agents: any agent CLI wrapped as a Builder or an Auditor.
//!
//! The request (JSON, the schemas of `autopack-core`) goes to the command's stdin; its
//! result (JSON) comes back on stdout. The command runs under `sh -c` in its own process
//! group, with a timeout and an output-size limit. Anything that goes wrong — it cannot
//! start, it exits non-zero, it times out, it prints too much or prints something that is
//! not a valid result — is a failed attempt whose reason says which.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use autopack_core::message::{
    AuditorRequest, AuditorResult, BuilderRequest, BuilderResult, parse_auditor_result,
    parse_builder_result,
};

use crate::driver::{Auditor, Builder};
use crate::supervisor::AgentOutcome;

/// Default time an agent command may take.
pub const DEFAULT_AGENT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Default largest stdout accepted, in bytes.
pub const DEFAULT_MAX_OUTPUT: usize = 8 * 1024 * 1024;
/// Bytes of stderr quoted in a failure reason.
const STDERR_TAIL: usize = 2_000;

/// A Builder or Auditor that is an external command.
///
/// ```
/// use autopack::driver::Builder;
/// use autopack::host::CommandAgent;
/// use std::time::Duration;
///
/// let mut agent = CommandAgent::new("echo not-json").with_timeout(Duration::from_secs(5));
/// # let request: autopack_core::message::BuilderRequest = serde_json::from_value(serde_json::json!({
/// #   "run_id": "r", "tier_id": "t", "phase_id": "p", "phase_index": 0, "name": "n",
/// #   "task_category": "docs", "complexity": "low", "attempt": 1, "max_attempts": 2,
/// #   "incident_token_cap": 1000 })).unwrap();
/// let outcome = agent.build(&request);
/// assert!(matches!(outcome, autopack::supervisor::AgentOutcome::Failed { .. }));
/// ```
#[derive(Debug, Clone)]
pub struct CommandAgent {
    command: String,
    timeout: Duration,
    max_output: usize,
    workdir: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl CommandAgent {
    /// An agent running `command` with `sh -c`.
    pub fn new(command: impl Into<String>) -> CommandAgent {
        CommandAgent {
            command: command.into(),
            timeout: DEFAULT_AGENT_TIMEOUT,
            max_output: DEFAULT_MAX_OUTPUT,
            workdir: None,
            env: Vec::new(),
        }
    }

    /// Sets the timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> CommandAgent {
        self.timeout = timeout;
        self
    }

    /// Sets the largest stdout accepted.
    pub fn with_max_output(mut self, bytes: usize) -> CommandAgent {
        self.max_output = bytes;
        self
    }

    /// Runs the command in `dir`.
    pub fn in_dir(mut self, dir: impl Into<PathBuf>) -> CommandAgent {
        self.workdir = Some(dir.into());
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> CommandAgent {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The command line.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Runs the command with `input` on stdin; returns its stdout.
    fn run(&self, input: &str) -> Result<String, String> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(&self.command);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &self.workdir {
            cmd.current_dir(dir);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        // Its own process group, so a timeout kills whatever it started too.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("could not start `{}`: {e}", self.command))?;
        let pid = child.id();

        let stdin = child.stdin.take();
        let input = input.as_bytes().to_vec();
        // Written from a thread: a command that does not read its stdin must not block us.
        let writer = std::thread::spawn(move || {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(&input);
            }
        });
        let limit = self.max_output;
        let stdout = child.stdout.take();
        let reader = std::thread::spawn(move || -> (Vec<u8>, bool) {
            let mut buf = Vec::new();
            let Some(out) = stdout else {
                return (buf, false);
            };
            let mut limited = out.take(limit as u64 + 1);
            let _ = limited.read_to_end(&mut buf);
            let over = buf.len() > limit;
            buf.truncate(limit);
            (buf, over)
        });
        let stderr = child.stderr.take();
        let err_reader = std::thread::spawn(move || -> Vec<u8> {
            let mut buf = Vec::new();
            if let Some(mut err) = stderr {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = err.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() > 2 * STDERR_TAIL {
                        buf.drain(..buf.len() - STDERR_TAIL);
                    }
                }
            }
            buf
        });

        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if started.elapsed() >= self.timeout => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    kill_group(pid);
                    return Err(format!("waiting for `{}` failed: {e}", self.command));
                }
            }
        };
        if status.is_none() {
            kill_group(pid);
            let _ = child.wait();
        }
        let _ = writer.join();
        let (out, over) = reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        let stderr_tail = tail(&String::from_utf8_lossy(&err));
        let Some(status) = status else {
            return Err(format!(
                "timed out after {} s{stderr_tail}",
                self.timeout.as_secs_f64()
            ));
        };
        if over {
            return Err(format!(
                "printed more than {} bytes on stdout",
                self.max_output
            ));
        }
        if !status.success() {
            return Err(match status.code() {
                Some(code) => format!("exited with code {code}{stderr_tail}"),
                None => format!("was killed by a signal{stderr_tail}"),
            });
        }
        String::from_utf8(out).map_err(|_| "printed invalid UTF-8 on stdout".to_owned())
    }
}

fn tail(stderr: &str) -> String {
    let stderr = stderr.trim();
    if stderr.is_empty() {
        return String::new();
    }
    let mut start = stderr.len().saturating_sub(STDERR_TAIL);
    while !stderr.is_char_boundary(start) {
        start += 1;
    }
    format!("; stderr: {}", &stderr[start..])
}

fn kill_group(pid: u32) {
    // `kill -KILL -- -PGID` reaches every process the agent started, with no unsafe code.
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg("--")
        .arg(format!("-{pid}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn failed<T>(reason: String) -> AgentOutcome<T> {
    AgentOutcome::Failed {
        reason,
        tokens_used: 0,
    }
}

impl Builder for CommandAgent {
    fn build(&mut self, request: &BuilderRequest) -> AgentOutcome<BuilderResult> {
        let input = match serde_json::to_string(request) {
            Ok(input) => input,
            Err(e) => return failed(format!("the request could not be serialised: {e}")),
        };
        match self.run(&input) {
            Ok(stdout) => match parse_builder_result(stdout.trim(), "builder command stdout") {
                Ok(result) => AgentOutcome::Returned(result),
                Err(e) => failed(format!("builder command printed an invalid result: {e}")),
            },
            Err(reason) => failed(format!("builder command {reason}")),
        }
    }
}

impl Auditor for CommandAgent {
    fn audit(&mut self, request: &AuditorRequest) -> AgentOutcome<AuditorResult> {
        let input = match serde_json::to_string(request) {
            Ok(input) => input,
            Err(e) => return failed(format!("the request could not be serialised: {e}")),
        };
        match self.run(&input) {
            Ok(stdout) => match parse_auditor_result(stdout.trim(), "auditor command stdout") {
                Ok(result) => AgentOutcome::Returned(result),
                Err(e) => failed(format!("auditor command printed an invalid result: {e}")),
            },
            Err(reason) => failed(format!("auditor command {reason}")),
        }
    }
}
