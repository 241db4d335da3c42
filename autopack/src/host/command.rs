//! External-command agents: any agent CLI wrapped as a Builder or an Auditor, confined by
//! the sandbox.
//!
//! One attempt is one process, started through [`autopack_sandbox`]: with its cwd in the
//! attempt's workspace (the request's [`Checkout`](autopack_core::message::Checkout), set
//! by [`InWorkspace`](crate::host::InWorkspace)), an environment built from an allowlist,
//! writes limited to the workspace and the attempt's own files, a timeout that holds
//! whatever its children do, and every process it started killed when it ends.
//!
//! What the process is told (see [`AGENT_ENV`]): the request JSON is in the file named by
//! `AUTOPACK_REQUEST_FILE` and, for a plain command, on stdin; `AUTOPACK_RESULT_FILE`
//! names where it may write its result JSON. What counts as its answer, first found:
//! 1. the result file, if the process wrote it (a `builder_result` / `auditor_result`);
//! 2. for a plain command, stdout when it holds a JSON object (today's protocol);
//!    for an Auditor preset, the last JSON object in the CLI's final message;
//! 3. for a Builder in a workspace, nothing at all: exit 0 is `success`, and the change
//!    in the workspace is the patch.
//!
//! Anything that goes wrong — it cannot start, it exits non-zero, it times out, it prints
//! too much or an answer that does not parse, its CLI reports an error — is a failed
//! attempt whose reason says which.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use autopack_core::message::{
    AuditorRequest, AuditorResult, BuilderRequest, BuilderResult, BuilderStatus,
    parse_auditor_result, parse_builder_result,
};
use autopack_sandbox::{Ended, Env, Job, Network, OutputMode, Policy, Sandbox};

use crate::driver::{Auditor, Builder};
use crate::host::preset::{
    AgentPreset, AgentReport, AgentRole, StdinUse, auditor_prompt, builder_prompt, result_json_in,
};
use crate::supervisor::AgentOutcome;

/// Default time an agent command may take.
pub const DEFAULT_AGENT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Default largest stdout accepted, in bytes.
pub const DEFAULT_MAX_OUTPUT: usize = 8 * 1024 * 1024;
/// Bytes of stderr quoted in a failure reason.
const STDERR_TAIL: usize = 2_000;
/// Bytes of an agent's final message kept as the notes of a result it did not write.
const NOTES_TAIL: usize = 2_000;

/// The environment variables an agent process gets from Autopack, besides the allowlist
/// of [`autopack_sandbox::ALLOWED_HOST_VARS`], what `--pass-env` names, and a private
/// `HOME` and `TMPDIR`. Nothing else of the host's environment reaches it.
pub const AGENT_ENV: &[(&str, &str)] = &[
    (
        "AUTOPACK_REQUEST_FILE",
        "the request JSON (builder_request or auditor_request schema)",
    ),
    (
        "AUTOPACK_RESULT_FILE",
        "where the agent may write its result JSON (builder_result or auditor_result schema); optional for a Builder in a workspace",
    ),
    (
        "AUTOPACK_WORKSPACE",
        "the attempt's private git checkout, also the working directory",
    ),
    (
        "AUTOPACK_REPO",
        "the same as AUTOPACK_WORKSPACE (the repository the agent works on; never the host's)",
    ),
    ("AUTOPACK_RUN_ID", "the run"),
    ("AUTOPACK_PHASE_ID", "the phase"),
    ("AUTOPACK_ROLE", "builder or auditor"),
    ("AUTOPACK_ATTEMPT", "the attempt number, from 1"),
];

/// A Builder or Auditor that is an external command or a preset for an agent CLI.
///
/// ```
/// use autopack::driver::Builder;
/// use autopack::host::CommandAgent;
/// use autopack_sandbox::Sandbox;
/// use std::time::Duration;
///
/// let mut agent = CommandAgent::new("echo not-json")
///     .with_timeout(Duration::from_secs(5))
///     .with_sandbox(Sandbox::detect().unwrap_or_else(|_| Sandbox::off()));
/// # let request: autopack_core::message::BuilderRequest = serde_json::from_value(serde_json::json!({
/// #   "run_id": "r", "tier_id": "t", "phase_id": "p", "phase_index": 0, "name": "n",
/// #   "task_category": "docs", "complexity": "low", "attempt": 1, "max_attempts": 2,
/// #   "incident_token_cap": 1000 })).unwrap();
/// // Outside a workspace, a plain command must print a builder_result.
/// let outcome = agent.build(&request);
/// assert!(matches!(outcome, autopack::supervisor::AgentOutcome::Failed { .. }));
/// ```
#[derive(Debug, Clone)]
pub struct CommandAgent {
    preset: AgentPreset,
    /// The shell command line of [`AgentPreset::Command`], or a preset's program.
    program: Option<OsString>,
    timeout: Duration,
    max_output: usize,
    workdir: Option<PathBuf>,
    env: Vec<(String, String)>,
    pass_env: Vec<String>,
    readable: Vec<PathBuf>,
    network: Network,
    sandbox: Result<Sandbox, String>,
    /// Where each attempt's log goes (`None`: nowhere).
    attempt_logs: Option<PathBuf>,
}

impl CommandAgent {
    /// An agent running `command` with `sh -c` (today's protocol: request on stdin,
    /// result on stdout, or edits in its workspace).
    pub fn new(command: impl Into<String>) -> CommandAgent {
        CommandAgent::preset(AgentPreset::Command).with_program(command.into())
    }

    /// An agent CLI run as `preset` says, with its default program (`codex`, `claude`,
    /// `aider`) unless [`CommandAgent::with_program`] names another.
    ///
    /// The sandbox is [`Sandbox::detect`]: where no confinement is available, every
    /// attempt fails saying so, until [`CommandAgent::with_sandbox`] gives one (or
    /// [`Sandbox::off`], the explicit `--no-sandbox`). Agents may use the network (they
    /// need their model's API) unless [`CommandAgent::with_network`] says otherwise.
    pub fn preset(preset: AgentPreset) -> CommandAgent {
        CommandAgent {
            preset,
            program: None,
            timeout: DEFAULT_AGENT_TIMEOUT,
            max_output: DEFAULT_MAX_OUTPUT,
            workdir: None,
            env: Vec::new(),
            pass_env: Vec::new(),
            readable: Vec::new(),
            network: Network::Allow,
            sandbox: Sandbox::detect().map_err(|e| e.to_string()),
            attempt_logs: None,
        }
    }

    /// The program to run (a preset's CLI), or the command line of
    /// [`AgentPreset::Command`].
    pub fn with_program(mut self, program: impl Into<OsString>) -> CommandAgent {
        self.program = Some(program.into());
        self
    }

    /// Sets the timeout. A timeout too far away to be represented as an instant (such as
    /// [`Duration::MAX`]) is no timeout: the attempt runs until it ends (the sandbox's
    /// rule for [`Job::timeout`](autopack_sandbox::Job::timeout)); it never panics. Hosts
    /// should range-check what users give (the `autopack` CLI allows at most 7 days).
    pub fn with_timeout(mut self, timeout: Duration) -> CommandAgent {
        self.timeout = timeout;
        self
    }

    /// Sets the largest stdout accepted, and the largest result file
    /// (`$AUTOPACK_RESULT_FILE`) read; more is a failed attempt. Any value is safe (the
    /// output is read in chunks into a buffer that grows with what is printed, never
    /// allocated up front); hosts should range-check what users give (the `autopack` CLI
    /// allows at most 1 GiB).
    pub fn with_max_output(mut self, bytes: usize) -> CommandAgent {
        self.max_output = bytes;
        self
    }

    /// Runs the command in `dir` when a request carries no workspace (the process may then
    /// write only its own result file: grant more with a workspace).
    pub fn in_dir(mut self, dir: impl Into<PathBuf>) -> CommandAgent {
        self.workdir = Some(dir.into());
        self
    }

    /// Sets an environment variable for the process.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> CommandAgent {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Passes the host's variable `name` through, if set (e.g. `OPENAI_API_KEY` for
    /// Codex): nothing else of the host's environment is.
    pub fn pass_env(mut self, name: impl Into<String>) -> CommandAgent {
        self.pass_env.push(name.into());
        self
    }

    /// Lets the process read (not write) `path`, e.g. a toolchain or the CLI's config.
    pub fn allow_read(mut self, path: impl Into<PathBuf>) -> CommandAgent {
        self.readable.push(path.into());
        self
    }

    /// Sets whether the process may use TCP.
    pub fn with_network(mut self, network: Network) -> CommandAgent {
        self.network = network;
        self
    }

    /// Runs attempts under `sandbox`.
    pub fn with_sandbox(mut self, sandbox: Sandbox) -> CommandAgent {
        self.sandbox = Ok(sandbox);
        self
    }

    /// Keeps a log of every attempt in `dir`: `{phase_id}.{role}.{attempt}.log`, with
    /// how the process ended, its stderr tail and the tail of its stdout — also for an
    /// attempt that went well, whose stderr would otherwise be lost.
    pub fn with_attempt_logs(mut self, dir: impl Into<PathBuf>) -> CommandAgent {
        self.attempt_logs = Some(dir.into());
        self
    }

    /// The preset.
    pub fn preset_kind(&self) -> AgentPreset {
        self.preset
    }

    /// The command line (plain commands) or program (presets), if set.
    pub fn command(&self) -> Option<&std::ffi::OsStr> {
        self.program.as_deref()
    }

    /// What a human calls this agent in a failure reason.
    fn label(&self, role: AgentRole) -> String {
        let role = match role {
            AgentRole::Builder => "builder",
            AgentRole::Auditor => "auditor",
        };
        match self.preset {
            AgentPreset::Command => format!("{role} command"),
            other => format!("{role} ({})", other.name()),
        }
    }

    /// Runs one attempt; returns what it said.
    fn attempt(&self, role: AgentRole, request_json: &str, call: Call<'_>) -> Result<Said, String> {
        let sandbox = self.sandbox.as_ref().map_err(|e| {
            format!("cannot be confined: {e}; refusing to run it unconfined (use --no-sandbox to allow that)")
        })?;
        let io = tempfile::Builder::new()
            .prefix("autopack-attempt-")
            .tempdir()
            .map_err(|e| format!("cannot create the attempt's files: {e}"))?;
        let request_file = io.path().join("request.json");
        let result_file = io.path().join("result.json");
        std::fs::write(&request_file, request_json)
            .map_err(|e| format!("cannot write {}: {e}", request_file.display()))?;
        let workspace = call.workspace.map(Path::to_owned);
        let cwd = workspace
            .clone()
            .or_else(|| self.workdir.clone())
            .unwrap_or_else(|| io.path().to_owned());
        let invocation =
            self.preset
                .invocation(self.program.as_deref(), role, &(call.prompt)(), &cwd);
        let mut set = self.env.clone();
        let path_text = |p: &Path| p.display().to_string();
        set.push(("AUTOPACK_REQUEST_FILE".into(), path_text(&request_file)));
        set.push(("AUTOPACK_RESULT_FILE".into(), path_text(&result_file)));
        if let Some(ws) = &workspace {
            set.push(("AUTOPACK_WORKSPACE".into(), path_text(ws)));
            set.push(("AUTOPACK_REPO".into(), path_text(ws)));
        }
        set.push(("AUTOPACK_RUN_ID".into(), call.run_id.to_owned()));
        set.push(("AUTOPACK_PHASE_ID".into(), call.phase_id.to_owned()));
        set.push((
            "AUTOPACK_ROLE".into(),
            match role {
                AgentRole::Builder => "builder",
                AgentRole::Auditor => "auditor",
            }
            .into(),
        ));
        set.push(("AUTOPACK_ATTEMPT".into(), call.attempt.to_string()));
        let job = Job {
            program: invocation.program,
            args: invocation.args,
            cwd,
            env: Env {
                pass: self.pass_env.clone(),
                set,
            },
            stdin: match invocation.stdin {
                StdinUse::RequestJson => request_json.as_bytes().to_vec(),
                StdinUse::Empty => Vec::new(),
            },
            timeout: self.timeout,
            output: OutputMode::Separate {
                stdout_limit: self.max_output,
                stderr_tail: 2 * STDERR_TAIL,
            },
        };
        let mut writable = vec![io.path().to_owned()];
        writable.extend(workspace.iter().cloned());
        let policy = Policy {
            writable,
            readable: self.readable.clone(),
            network: self.network,
        };
        let finished = sandbox
            .run(&job, &policy)
            .map_err(|e| format!("could not start: {e}"))?;
        self.keep_log(role, &call, &finished);
        let stderr = String::from_utf8_lossy(&finished.stderr_tail).into_owned();
        let stderr_tail = tail(&stderr);
        let code = match finished.ended {
            Ended::TimedOut => {
                return Err(format!(
                    "timed out after {} s{stderr_tail}",
                    self.timeout.as_secs_f64()
                ));
            }
            Ended::Signalled(signal) => {
                return Err(format!("was killed by signal {signal}{stderr_tail}"));
            }
            Ended::Exited(code) => code,
        };
        if finished.stdout_overflow {
            return Err(format!(
                "printed more than {} bytes on stdout",
                self.max_output
            ));
        }
        let stdout = String::from_utf8(finished.stdout)
            .map_err(|_| "printed invalid UTF-8 on stdout".to_owned())?;
        let report = self
            .preset
            .read_output(&stdout, &stderr, code)
            .map_err(|e| e.to_string())?;
        if let Some(failed) = &report.failed {
            return Err(match code {
                0 => format!("reported an error: {failed}"),
                code if self.preset == AgentPreset::Command => {
                    format!("exited with code {code}{stderr_tail}")
                }
                code => format!("exited with code {code}: {failed}"),
            });
        }
        if code != 0 {
            return Err(format!("exited with code {code}{stderr_tail}"));
        }
        let written = match read_result_file(&result_file, self.max_output)? {
            Some(text) if !text.trim().is_empty() => Some((text, "$AUTOPACK_RESULT_FILE")),
            _ => None,
        };
        Ok(Said {
            written,
            stdout,
            report,
        })
    }
}

impl CommandAgent {
    /// Writes the attempt's log when logs are kept. A log that cannot be written is a
    /// warning, never a failed attempt: the run's result does not depend on it.
    fn keep_log(&self, role: AgentRole, call: &Call<'_>, finished: &autopack_sandbox::Finished) {
        let Some(dir) = &self.attempt_logs else {
            return;
        };
        let role_name = match role {
            AgentRole::Builder => "builder",
            AgentRole::Auditor => "auditor",
        };
        let path = dir.join(format!(
            "{}.{role_name}.{}.log",
            call.phase_id, call.attempt
        ));
        let stdout = &finished.stdout[finished.stdout.len().saturating_sub(LOG_STDOUT_TAIL)..];
        let mut text = format!(
            "run {} phase {} {role_name} attempt {}: {:?}\n",
            call.run_id, call.phase_id, call.attempt, finished.ended
        );
        text.push_str("--- stderr (tail) ---\n");
        text.push_str(&String::from_utf8_lossy(&finished.stderr_tail));
        text.push_str("\n--- stdout (tail) ---\n");
        text.push_str(&String::from_utf8_lossy(stdout));
        text.push('\n');
        if let Err(error) = autopack_layout::fsio::write_atomic(&path, text.as_bytes()) {
            tracing::warn!(path = %path.display(), %error, "agent attempt log not written");
        }
    }
}

/// Bytes of stdout kept in an attempt's log.
const LOG_STDOUT_TAIL: usize = 64 * 1024;

/// The result file an attempt wrote: `None` when it wrote none; an error when it is not a
/// regular file (a FIFO would block the host, a symlink would make it read another file)
/// or longer than `limit` bytes (the `--max-output` bound, as for stdout). At most
/// `limit + 1` bytes are read.
fn read_result_file(path: &Path, limit: usize) -> Result<Option<String>, String> {
    use std::io::Read as _;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => {}
        Ok(_) => return Err("wrote a result file that is not a regular file".to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("wrote an unreadable result file: {e}")),
    }
    let file =
        std::fs::File::open(path).map_err(|e| format!("wrote an unreadable result file: {e}"))?;
    let mut bytes = Vec::new();
    file.take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("wrote an unreadable result file: {e}"))?;
    if bytes.len() > limit {
        return Err(format!(
            "wrote a result file of more than {limit} bytes (the --max-output limit)"
        ));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| "wrote invalid UTF-8 in its result file".to_owned())
}

/// What one attempt needs besides the request JSON, for [`CommandAgent::attempt`].
struct Call<'a> {
    prompt: &'a dyn Fn() -> String,
    workspace: Option<&'a Path>,
    run_id: &'a str,
    phase_id: &'a str,
    attempt: u32,
}

/// What a process said in an attempt that ended well.
struct Said {
    /// The result file's text, and its name for error messages.
    written: Option<(String, &'static str)>,
    stdout: String,
    report: AgentReport,
}

impl Said {
    /// The answer to parse, per the module's order, and where it came from.
    fn answer(&self, preset: AgentPreset, role: AgentRole) -> Option<(&str, &'static str)> {
        if let Some((text, source)) = &self.written {
            return Some((text.trim(), source));
        }
        match (preset, role) {
            (AgentPreset::Command, _) => {
                let out = self.stdout.trim();
                out.starts_with('{').then_some((out, "stdout"))
            }
            (_, AgentRole::Auditor) => {
                result_json_in(&self.report.final_message).map(|t| (t, "the final message"))
            }
            (_, AgentRole::Builder) => None,
        }
    }

    fn notes(&self) -> String {
        let notes = self.report.final_message.trim();
        let mut start = notes.len().saturating_sub(NOTES_TAIL);
        while !notes.is_char_boundary(start) {
            start += 1;
        }
        notes[start..].to_owned()
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

fn failed<T>(reason: String, tokens_used: u64) -> AgentOutcome<T> {
    AgentOutcome::Failed {
        reason,
        tokens_used,
    }
}

/// A result an agent answers with: how to read it, and its token count.
trait Answer: Sized {
    fn parse(text: &str, source: &str) -> Result<Self, autopack_core::json::JsonError>;
    fn tokens(&mut self) -> &mut u64;
}

impl Answer for BuilderResult {
    fn parse(text: &str, source: &str) -> Result<Self, autopack_core::json::JsonError> {
        parse_builder_result(text, source)
    }
    fn tokens(&mut self) -> &mut u64 {
        &mut self.tokens_used
    }
}

impl Answer for AuditorResult {
    fn parse(text: &str, source: &str) -> Result<Self, autopack_core::json::JsonError> {
        parse_auditor_result(text, source)
    }
    fn tokens(&mut self) -> &mut u64 {
        &mut self.tokens_used
    }
}

impl CommandAgent {
    /// One attempt for `role`, answered per the module's order; `unanswered` decides what
    /// an attempt that ended well without an answer means.
    fn converse<T: Answer>(
        &self,
        role: AgentRole,
        request: &impl serde::Serialize,
        call: Call<'_>,
        unanswered: impl FnOnce(&Said, u64, &str) -> AgentOutcome<T>,
    ) -> AgentOutcome<T> {
        let label = self.label(role);
        let json = match serde_json::to_string(request) {
            Ok(json) => json,
            Err(e) => return failed(format!("the request could not be serialised: {e}"), 0),
        };
        let said = match self.attempt(role, &json, call) {
            Ok(said) => said,
            Err(reason) => return failed(format!("{label} {reason}"), 0),
        };
        let tokens = said.report.tokens_used;
        match said.answer(self.preset, role) {
            Some((text, source)) => match T::parse(text, &format!("{label} {source}")) {
                Ok(mut result) => {
                    // The CLI's own count when the answer names none.
                    if *result.tokens() == 0 {
                        *result.tokens() = tokens;
                    }
                    AgentOutcome::Returned(result)
                }
                Err(e) => failed(format!("{label} gave an invalid result: {e}"), tokens),
            },
            None => unanswered(&said, tokens, &label),
        }
    }
}

fn workspace_of(checkout: Option<&autopack_core::message::Checkout>) -> Option<&Path> {
    checkout.and_then(|c| c.workspace.as_deref()).map(Path::new)
}

impl Builder for CommandAgent {
    fn build(&mut self, request: &BuilderRequest) -> AgentOutcome<BuilderResult> {
        let workspace = workspace_of(request.checkout.as_ref());
        let prompt = || builder_prompt(request);
        let call = Call {
            prompt: &prompt,
            workspace,
            run_id: request.run_id.as_str(),
            phase_id: request.phase_id.as_str(),
            attempt: request.attempt,
        };
        self.converse(AgentRole::Builder, request, call, |said, tokens, label| {
            if workspace.is_none() {
                return failed(
                    format!(
                        "{label} gave no result: without a workspace it must print a builder_result JSON or write one to $AUTOPACK_RESULT_FILE"
                    ),
                    tokens,
                );
            }
            // A workspace agent that exited 0: its change is the patch.
            AgentOutcome::Returned(BuilderResult {
                phase_id: request.phase_id.clone(),
                status: BuilderStatus::Success,
                patch: None,
                probe_results: Vec::new(),
                suggested_issues: Vec::new(),
                tokens_used: tokens,
                failing_tests: Vec::new(),
                notes: said.notes(),
            })
        })
    }
}

impl Auditor for CommandAgent {
    fn audit(&mut self, request: &AuditorRequest) -> AgentOutcome<AuditorResult> {
        let prompt = || auditor_prompt(request);
        let call = Call {
            prompt: &prompt,
            workspace: workspace_of(request.checkout.as_ref()),
            run_id: request.run_id.as_str(),
            phase_id: request.phase_id.as_str(),
            attempt: request.attempt,
        };
        let how = if self.preset == AgentPreset::Command {
            " or print one"
        } else {
            " or end its final message with one"
        };
        self.converse(AgentRole::Auditor, request, call, |_, tokens, label| {
            failed(
                format!(
                    "{label} gave no recommendation: it must write an auditor_result JSON to $AUTOPACK_RESULT_FILE{how}"
                ),
                tokens,
            )
        })
    }
}
