//! Ready-made presets for real agent CLIs: the argv of one attempt, the prompt text, and
//! how to read what the CLI printed.
//!
//! This module is pure logic; the process itself is run by the host (`CommandAgent`), with
//! its cwd in the agent's private workspace (a git checkout of the integration tip),
//! `AUTOPACK_REQUEST_FILE` naming the request JSON and `AUTOPACK_RESULT_FILE` naming where
//! the agent may write a `builder_result` / `auditor_result` JSON of its own.
//!
//! | preset | program | argv after the program | stdin |
//! | --- | --- | --- | --- |
//! | [`AgentPreset::Codex`] | `codex` | `exec --json --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox -C <workspace> <prompt>` | empty |
//! | [`AgentPreset::ClaudeCode`] | `claude` | `-p <prompt> --output-format json --dangerously-skip-permissions` | empty |
//! | [`AgentPreset::Aider`] | `aider` | `--yes-always --no-auto-commits --no-dirty-commits --no-gitignore --no-check-update --no-analytics --no-show-release-notes --no-show-model-warnings --no-pretty --no-fancy-input --chat-history-file /dev/null --input-history-file /dev/null --message <prompt>` | empty |
//! | [`AgentPreset::Command`] | `sh` | `-c <the command line>` | the request JSON |
//!
//! "Empty" stdin means the null device, not an open pipe: `codex exec` and `claude -p`
//! both append piped stdin to the prompt.
//!
//! # Formats followed
//!
//! - **Codex CLI** (`openai/codex`, `codex-rs/exec`, the `codex exec --json` event stream
//!   as of the 0.5x releases and the 2026 source): JSON Lines of `thread.started`,
//!   `turn.started`, `item.started` / `item.updated` / `item.completed` (items typed
//!   `agent_message`, `reasoning`, `command_execution`, `file_change`, …),
//!   `turn.completed {usage: {input_tokens, cached_input_tokens, output_tokens}}`,
//!   `turn.failed {error: {message}}` and `error {message}`. `--full-auto` is not used: the
//!   2026 source keeps it only as a deprecated trap.
//! - **Claude Code** (2.x, `claude -p --output-format json`): one JSON object
//!   `{"type": "result", "subtype": "success" | "error_max_turns" |
//!   "error_during_execution" | …, "is_error", "result", "errors", "session_id",
//!   "total_cost_usd", "usage": {input_tokens, cache_creation_input_tokens,
//!   cache_read_input_tokens, output_tokens, …}, …}`; error subtypes carry `errors`
//!   instead of `result`.
//! - **aider** (0.86, `Aider-AI/aider`): plain text starting with the `Aider v…`
//!   announcement; after each model call a line `Tokens: 2.3k sent[, 1.2k cache write][,
//!   3.4k cache hit], 512 received.[ Cost: $0.01 message, $0.02 session.]`, counts written
//!   as `n`, `n.nk` (under 10,000) or `nk`.
//!
//! Unknown fields and event types are tolerated, since these CLIs evolve; output that is
//! not the expected format at all is a [`PresetError`].
//!
//! # Choices
//!
//! - **No inner sandbox, no approvals.** Codex gets
//!   `--dangerously-bypass-approvals-and-sandbox` and Claude Code
//!   `--dangerously-skip-permissions`: the host already confines the whole process tree
//!   (Landlock, writes limited to the workspace and the result file). Codex's own
//!   `workspace-write` sandbox would be a second layer whose failures (Linux user
//!   namespaces refused inside ours, network cut for test commands) look like agent
//!   failures; Claude's `acceptEdits` approves edits but denies every unapproved shell
//!   command in `-p` mode, so a Builder could not run the tests it is asked to run. Claude
//!   Code refuses `--dangerously-skip-permissions` as root unless `IS_SANDBOX=1` is set.
//! - **Tokens.** Codex: `input_tokens + output_tokens` summed over `turn.completed`;
//!   `cached_input_tokens` is a part of `input_tokens` (Codex's own `non_cached_input` is
//!   the difference), so adding it would count it twice. Codex reports thread totals in
//!   `turn.completed` and one `codex exec` is one turn, so the sum is that turn's total.
//!   Claude Code: `input_tokens + cache_creation_input_tokens + cache_read_input_tokens +
//!   output_tokens`; Anthropic's `input_tokens` excludes both cache figures, so this is what
//!   the model processed, like Codex's figure. aider: `sent + received` summed over its
//!   `Tokens:` lines (one per model call, counters reset after each); its cache figures
//!   are parts of `sent` or reported beside it, and are not added.
//! - **The role** does not change the argv today: an Auditor may write a patch of its own
//!   and must be able to write its result file, so it gets the same permissions.
//! - **Prompts fit one argument.** Linux limits one argv string to 128 KiB; the prompt
//!   builders keep under [`MAX_PROMPT_BYTES`] by clipping long texts, which stay whole in
//!   the request file. A prompt starting with `-` gets a leading space so that no CLI
//!   takes it for an option.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use autopack_core::message::{AuditReason, AuditorRequest, BuilderRequest};
use serde_json::Value;

/// The most bytes [`builder_prompt`] and [`auditor_prompt`] produce, under Linux's 128 KiB
/// limit on one argv string.
pub const MAX_PROMPT_BYTES: usize = 120 * 1024;

/// Bytes of a patch quoted in an Auditor prompt.
const PATCH_LIMIT: usize = 64 * 1024;
/// Bytes of a phase description quoted in a Builder prompt.
const DESCRIPTION_LIMIT: usize = 16 * 1024;
/// Bytes of one feedback or failure entry quoted in a prompt.
const ENTRY_LIMIT: usize = 4 * 1024;
/// Feedback or failure entries quoted in a prompt (the newest ones).
const ENTRY_COUNT: usize = 8;
/// Bytes of stderr quoted in a failure message.
const STDERR_TAIL: usize = 2_000;
/// Bytes of unrecognised stdout quoted in a [`PresetError`].
const EXCERPT: usize = 200;

/// A ready-made way of running one kind of agent CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentPreset {
    /// OpenAI's Codex CLI, `codex exec --json`.
    Codex,
    /// Anthropic's Claude Code, `claude -p --output-format json`.
    ClaudeCode,
    /// aider, `aider --message`.
    Aider,
    /// Any shell command speaking today's protocol: request JSON on stdin, result JSON on
    /// stdout.
    Command,
}

/// Which side of a phase an agent plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentRole {
    /// Writes the change.
    Builder,
    /// Reviews it.
    Auditor,
}

/// What the agent's stdin gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StdinUse {
    /// The request JSON, then end of file.
    RequestJson,
    /// Nothing: the null device (an open pipe would be read as part of the prompt).
    Empty,
}

/// The process to start for one attempt; the host sets its cwd to the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The program, looked up on `PATH` unless it has a slash.
    pub program: OsString,
    /// Its arguments, without the program.
    pub args: Vec<OsString>,
    /// What to connect to its stdin.
    pub stdin: StdinUse,
}

/// What an agent CLI reported about its run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentReport {
    /// Tokens the run spent, as the CLI counted them (0 when it does not say).
    pub tokens_used: u64,
    /// The agent's last message (for [`AgentPreset::Command`] and aider, all of stdout).
    pub final_message: String,
    /// The CLI reported an error (or exited non-zero): its message.
    pub failed: Option<String>,
}

/// A preset name that is not one of [`AgentPreset::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown agent preset `{name}`; the presets are codex, claude (or claude-code), aider and command"
)]
pub struct UnknownPreset {
    /// The name asked for.
    pub name: String,
}

/// A CLI printed something that is not its output format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresetError {
    /// Nothing on stdout was in the preset's format.
    #[error(
        "{preset} printed no {expected} on stdout (exit code {exit_code}); stdout began: {excerpt:?}"
    )]
    Unrecognised {
        /// The preset whose output it was.
        preset: AgentPreset,
        /// What was looked for.
        expected: &'static str,
        /// The CLI's exit code.
        exit_code: i32,
        /// The start of stdout.
        excerpt: String,
    },
    /// The output was in the format, but a value the report needs was missing or wrong.
    #[error("{preset} output is malformed: {detail}")]
    Malformed {
        /// The preset whose output it was.
        preset: AgentPreset,
        /// What was wrong, and where.
        detail: String,
    },
}

impl AgentPreset {
    /// Every preset.
    pub const ALL: [AgentPreset; 4] = [
        AgentPreset::Codex,
        AgentPreset::ClaudeCode,
        AgentPreset::Aider,
        AgentPreset::Command,
    ];

    /// The names [`AgentPreset::from_name`] accepts.
    pub const NAMES: [&'static str; 5] = ["codex", "claude", "claude-code", "aider", "command"];

    /// The preset called `name` (`codex`, `claude` or `claude-code`, `aider`, `command`;
    /// ASCII case ignored).
    ///
    /// # Errors
    /// [`UnknownPreset`] for any other name; its message lists the valid ones.
    pub fn from_name(name: &str) -> Result<AgentPreset, UnknownPreset> {
        let is = |s: &str| name.eq_ignore_ascii_case(s);
        if is("codex") {
            Ok(AgentPreset::Codex)
        } else if is("claude") || is("claude-code") {
            Ok(AgentPreset::ClaudeCode)
        } else if is("aider") {
            Ok(AgentPreset::Aider)
        } else if is("command") {
            Ok(AgentPreset::Command)
        } else {
            Err(UnknownPreset {
                name: name.to_owned(),
            })
        }
    }

    /// The preset's name, as [`AgentPreset::from_name`] reads it.
    pub fn name(&self) -> &'static str {
        match self {
            AgentPreset::Codex => "codex",
            AgentPreset::ClaudeCode => "claude",
            AgentPreset::Aider => "aider",
            AgentPreset::Command => "command",
        }
    }

    /// The program run when none is given.
    pub fn default_program(&self) -> &'static str {
        match self {
            AgentPreset::Codex => "codex",
            AgentPreset::ClaudeCode => "claude",
            AgentPreset::Aider => "aider",
            AgentPreset::Command => "sh",
        }
    }

    /// The argv for one attempt: `program` (or [`AgentPreset::default_program`]) and the
    /// arguments; `prompt` is the text for the model, `workspace` the agent's checkout.
    ///
    /// For [`AgentPreset::Command`], `program` is the shell command line, run as
    /// `sh -c <program>` with the request JSON on stdin; `prompt` and `workspace` are not
    /// used. Without a command line the invocation prints why and exits 2, so the attempt
    /// fails with a reason instead of passing silently.
    pub fn invocation(
        &self,
        program: Option<&OsStr>,
        role: AgentRole,
        prompt: &str,
        workspace: &Path,
    ) -> Invocation {
        // Every preset grants the same permissions to both roles (see the module docs).
        let _ = role;
        let program_or_default =
            || program.map_or_else(|| OsString::from(self.default_program()), OsStr::to_owned);
        let prompt = OsString::from(guard_leading_dash(prompt));
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        match self {
            AgentPreset::Codex => {
                let mut a = args(&[
                    "exec",
                    "--json",
                    "--skip-git-repo-check",
                    "--dangerously-bypass-approvals-and-sandbox",
                    "-C",
                ]);
                a.push(workspace.as_os_str().to_owned());
                a.push(prompt);
                Invocation {
                    program: program_or_default(),
                    args: a,
                    stdin: StdinUse::Empty,
                }
            }
            AgentPreset::ClaudeCode => {
                let mut a = args(&["-p"]);
                a.push(prompt);
                a.extend(args(&[
                    "--output-format",
                    "json",
                    "--dangerously-skip-permissions",
                ]));
                Invocation {
                    program: program_or_default(),
                    args: a,
                    stdin: StdinUse::Empty,
                }
            }
            AgentPreset::Aider => {
                // Aider must neither commit (the host takes the working tree as the patch)
                // nor write its history files or `.gitignore` into the workspace.
                let mut a = args(&[
                    "--yes-always",
                    "--no-auto-commits",
                    "--no-dirty-commits",
                    "--no-gitignore",
                    "--no-check-update",
                    "--no-analytics",
                    "--no-show-release-notes",
                    "--no-show-model-warnings",
                    "--no-pretty",
                    "--no-fancy-input",
                    "--chat-history-file",
                    "/dev/null",
                    "--input-history-file",
                    "/dev/null",
                    "--message",
                ]);
                a.push(prompt);
                Invocation {
                    program: program_or_default(),
                    args: a,
                    stdin: StdinUse::Empty,
                }
            }
            AgentPreset::Command => {
                let command = program.map_or_else(
                    || {
                        OsString::from(
                            "echo 'autopack: the command preset was given no command line' >&2; exit 2",
                        )
                    },
                    OsStr::to_owned,
                );
                Invocation {
                    program: OsString::from("sh"),
                    args: vec![OsString::from("-c"), command],
                    stdin: StdinUse::RequestJson,
                }
            }
        }
    }

    /// Reads what the CLI printed on stdout (and its exit code) into a report.
    ///
    /// A non-zero exit code is always a failure; when stdout then holds nothing in the
    /// format (the CLI died before printing any), the report says so with stderr's tail.
    ///
    /// # Errors
    /// [`PresetError::Unrecognised`] when the CLI exited 0 but stdout is not its format,
    /// [`PresetError::Malformed`] when a token count the report needs is missing or not a
    /// number.
    pub fn read_output(
        &self,
        stdout: &str,
        stderr: &str,
        exit_code: i32,
    ) -> Result<AgentReport, PresetError> {
        match self {
            AgentPreset::Codex => read_codex(stdout, stderr, exit_code),
            AgentPreset::ClaudeCode => read_claude(stdout, stderr, exit_code),
            AgentPreset::Aider => read_aider(stdout, stderr, exit_code),
            AgentPreset::Command => Ok(AgentReport {
                tokens_used: 0,
                final_message: stdout.to_owned(),
                failed: exit_failure(self.name(), exit_code, stderr),
            }),
        }
    }
}

impl fmt::Display for AgentPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AgentPreset {
    type Err = UnknownPreset;

    fn from_str(s: &str) -> Result<AgentPreset, UnknownPreset> {
        AgentPreset::from_name(s)
    }
}

// --- output readers -------------------------------------------------------------------

fn read_codex(stdout: &str, stderr: &str, exit_code: i32) -> Result<AgentReport, PresetError> {
    let preset = AgentPreset::Codex;
    let mut events = 0usize;
    let mut tokens = 0u64;
    let mut completed = false;
    let mut final_message = String::new();
    let mut turn_failed: Option<String> = None;
    // An `error` event followed by a completed turn was recovered from (a retried stream).
    let mut stream_error: Option<String> = None;
    for (n, line) in stdout.lines().enumerate() {
        let line = line.trim();
        // Codex may print log lines among the events; only JSON objects are events.
        let Ok(Value::Object(event)) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(kind) = event.get("type").and_then(Value::as_str) else {
            continue;
        };
        events += 1;
        let at = || format!("line {}", n + 1);
        match kind {
            "turn.completed" => {
                let usage = event.get("usage");
                let input = count_at(usage, "input_tokens")
                    .map_err(|e| malformed(preset, format!("{}: turn.completed {e}", at())))?;
                let output = count_at(usage, "output_tokens")
                    .map_err(|e| malformed(preset, format!("{}: turn.completed {e}", at())))?;
                tokens = tokens.saturating_add(input).saturating_add(output);
                completed = true;
                stream_error = None;
            }
            "turn.failed" => {
                let message = event
                    .get("error")
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("turn failed with no message");
                turn_failed = Some(message.to_owned());
            }
            "error" => {
                let message = event
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error event with no message");
                stream_error = Some(message.to_owned());
            }
            "item.completed" => {
                let item = event.get("item");
                if item.and_then(|i| i.get("type")).and_then(Value::as_str) == Some("agent_message")
                    && let Some(text) = item.and_then(|i| i.get("text")).and_then(Value::as_str)
                {
                    final_message = text.to_owned();
                }
            }
            _ => {}
        }
    }
    if events == 0 {
        return no_format(preset, "JSON Lines events", stdout, stderr, exit_code);
    }
    let failed = turn_failed
        .or(stream_error)
        .or_else(|| exit_failure(preset.name(), exit_code, stderr))
        .or_else(|| (!completed).then(|| "codex ended without a turn.completed event".to_owned()));
    Ok(AgentReport {
        tokens_used: tokens,
        final_message,
        failed,
    })
}

fn read_claude(stdout: &str, stderr: &str, exit_code: i32) -> Result<AgentReport, PresetError> {
    let preset = AgentPreset::ClaudeCode;
    let is_result = |v: &Value| v.get("type").and_then(Value::as_str) == Some("result");
    let trimmed = stdout.trim();
    // Normally the whole of stdout; a stray line before it (a warning) is tolerated.
    let result = serde_json::from_str::<Value>(trimmed)
        .ok()
        .filter(is_result)
        .or_else(|| {
            trimmed
                .lines()
                .rev()
                .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
                .find(is_result)
        });
    let Some(result) = result else {
        return no_format(
            preset,
            "JSON object with \"type\": \"result\"",
            stdout,
            stderr,
            exit_code,
        );
    };
    let usage = result.get("usage");
    if !usage.is_some_and(Value::is_object) {
        return Err(malformed(
            preset,
            "the result has no usage object".to_owned(),
        ));
    }
    let mut tokens = 0u64;
    for field in [
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
    ] {
        // Cache counters are absent on some providers and older versions.
        let n = match usage.and_then(|u| u.get(field)) {
            None | Some(Value::Null) => 0,
            Some(_) => count_at(usage, field)
                .map_err(|e| malformed(preset, format!("the result's {e}")))?,
        };
        tokens = tokens.saturating_add(n);
    }
    let subtype = result
        .get("subtype")
        .and_then(Value::as_str)
        .unwrap_or("(no subtype)");
    let is_error = result
        .get("is_error")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let text = result
        .get("result")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let failed = if is_error || subtype != "success" {
        let errors: Vec<&str> = result
            .get("errors")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let detail = if !errors.is_empty() {
            errors.join("; ")
        } else if !text.trim().is_empty() {
            text.trim().to_owned()
        } else {
            "no message".to_owned()
        };
        Some(format!("{subtype}: {detail}"))
    } else {
        exit_failure(preset.name(), exit_code, stderr)
    };
    Ok(AgentReport {
        tokens_used: tokens,
        final_message: text,
        failed,
    })
}

fn read_aider(stdout: &str, stderr: &str, exit_code: i32) -> Result<AgentReport, PresetError> {
    let preset = AgentPreset::Aider;
    let mut recognised = false;
    let mut tokens = 0u64;
    for line in stdout.lines() {
        let line = line.trim();
        if line.starts_with("Aider v") {
            recognised = true;
        } else if let Some(report) = line.strip_prefix("Tokens:") {
            recognised = true;
            let n =
                aider_tokens(report).map_err(|e| malformed(preset, format!("{e} in {line:?}")))?;
            tokens = tokens.saturating_add(n);
        }
    }
    if !recognised {
        return no_format(
            preset,
            "`Aider v…` announcement or `Tokens:` line",
            stdout,
            stderr,
            exit_code,
        );
    }
    Ok(AgentReport {
        tokens_used: tokens,
        final_message: stdout.trim().to_owned(),
        failed: exit_failure(preset.name(), exit_code, stderr).map(|failure| {
            // Aider prints its errors on stdout; the last line is the one that says why.
            match stdout.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
                Some(last) if stderr.trim().is_empty() => format!("{failure}; last output: {last}"),
                _ => failure,
            }
        }),
    })
}

/// `sent + received` of one aider usage report (the text after `Tokens:`).
fn aider_tokens(report: &str) -> Result<u64, String> {
    // The figures end at the first ". " (before `Cost:`) or at the final period.
    let figures = report
        .split_once(". ")
        .map_or(report, |(figures, _)| figures)
        .trim()
        .trim_end_matches('.');
    let (mut sent, mut received) = (None, None);
    for part in figures.split(',') {
        let part = part.trim();
        let (number, label) = part
            .split_once(' ')
            .ok_or_else(|| format!("token figure {part:?} has no label"))?;
        let slot = match label.trim() {
            "sent" => &mut sent,
            "received" => &mut received,
            // `cache write`, `cache hit` and anything newer are not added (module docs).
            _ => continue,
        };
        *slot = Some(
            parse_count(number).ok_or_else(|| format!("token count {number:?} is not a number"))?,
        );
    }
    match (sent, received) {
        (Some(s), Some(r)) => Ok(s.saturating_add(r)),
        _ => Err("no `sent` and `received` figures".to_owned()),
    }
}

/// A count as aider prints it: `512`, `2.3k`, `12k`, `1.5M`.
fn parse_count(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, scale) = match text.as_bytes().last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 1_000u64),
        b'm' | b'M' => (&text[..text.len() - 1], 1_000_000u64),
        _ => (text, 1u64),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let mut value = whole.parse::<u64>().ok()?.checked_mul(scale)?;
    // Decimal digits of the fraction, exactly: `2.3k` is 2,300, never 2,299.
    let mut unit = scale;
    for digit in fraction.bytes() {
        unit /= 10;
        value = value.checked_add(u64::from(digit - b'0') * unit)?;
    }
    Some(value)
}

/// A non-negative integer at `field` of `object`, or what is wrong with it.
fn count_at(object: Option<&Value>, field: &str) -> Result<u64, String> {
    match object.and_then(|o| o.get(field)) {
        None => Err(format!("has no usage.{field}")),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("usage.{field} is {v}, not a non-negative integer")),
    }
}

fn malformed(preset: AgentPreset, detail: String) -> PresetError {
    PresetError::Malformed { preset, detail }
}

/// Nothing in the format: a failure report when the CLI exited non-zero (it died before
/// printing any), an error otherwise.
fn no_format(
    preset: AgentPreset,
    expected: &'static str,
    stdout: &str,
    stderr: &str,
    exit_code: i32,
) -> Result<AgentReport, PresetError> {
    match exit_failure(preset.name(), exit_code, stderr) {
        Some(failed) => Ok(AgentReport {
            tokens_used: 0,
            final_message: stdout.trim().to_owned(),
            failed: Some(failed),
        }),
        None => Err(PresetError::Unrecognised {
            preset,
            expected,
            exit_code,
            excerpt: clip_start(stdout.trim(), EXCERPT).to_owned(),
        }),
    }
}

fn exit_failure(name: &str, exit_code: i32, stderr: &str) -> Option<String> {
    (exit_code != 0).then(|| {
        let stderr = stderr.trim();
        if stderr.is_empty() {
            format!("{name} exited with code {exit_code}")
        } else {
            format!(
                "{name} exited with code {exit_code}; stderr: {}",
                clip_end(stderr, STDERR_TAIL)
            )
        }
    })
}

/// At most `max` bytes from the start of `text`, on a character boundary.
fn clip_start(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// At most `max` bytes from the end of `text`, on a character boundary.
fn clip_end(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

// --- result JSON in a message ---------------------------------------------------------

/// The last top-level JSON object in `message` (inside a fenced ```` ```json ```` block or
/// bare), for Auditors that answer in text; `None` when there is none.
///
/// Objects nested in another are not top-level; braces inside JSON strings are read as
/// the parser reads them, and brace pairs in prose that are not JSON are skipped.
///
/// ```
/// use autopack::host::result_json_in;
///
/// let message = "Looks fine.\n```json\n{\"recommendation\": \"approve\", \"notes\": \"}\"}\n```";
/// assert_eq!(result_json_in(message), Some("{\"recommendation\": \"approve\", \"notes\": \"}\"}"));
/// assert_eq!(result_json_in("no verdict {here}"), None);
/// ```
pub fn result_json_in(message: &str) -> Option<&str> {
    let mut last = None;
    let mut from = 0;
    while let Some(offset) = message[from..].find('{') {
        let start = from + offset;
        let mut values = serde_json::Deserializer::from_str(&message[start..]).into_iter::<Value>();
        match values.next() {
            Some(Ok(Value::Object(_))) => {
                let end = start + values.byte_offset();
                last = Some(&message[start..end]);
                from = end;
            }
            _ => from = start + 1,
        }
    }
    last
}

// --- prompts --------------------------------------------------------------------------

/// Prompt text built section by section, so a new request field is one more section.
struct Prompt {
    text: String,
}

impl Prompt {
    fn new(first_line: &str) -> Prompt {
        let mut text = String::with_capacity(4096);
        text.push_str(first_line);
        text.push('\n');
        Prompt { text }
    }

    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn section(&mut self, title: &str) {
        self.text.push_str("\n## ");
        self.text.push_str(title);
        self.text.push_str("\n\n");
    }

    /// A numbered list of the newest [`ENTRY_COUNT`] entries, each clipped.
    fn entries(&mut self, entries: &[String]) {
        let skipped = entries.len().saturating_sub(ENTRY_COUNT);
        if skipped > 0 {
            self.line(&format!(
                "({skipped} older entries are left out here; all are in $AUTOPACK_REQUEST_FILE.)"
            ));
        }
        for (i, entry) in entries.iter().enumerate().skip(skipped) {
            self.line(&format!(
                "{}. {}",
                i + 1,
                clipped(entry.trim(), ENTRY_LIMIT)
            ));
        }
    }

    /// `text` in a code fence longer than any backtick run inside it.
    fn fenced(&mut self, info: &str, text: &str) {
        let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat((longest + 1).max(3));
        self.line(&format!("{fence}{info}"));
        self.line(text.trim_end_matches('\n'));
        self.line(&fence);
    }

    fn finish(self) -> String {
        // The section limits keep well under this; the cut is a last guard for the argv.
        let mut text = self.text;
        if text.len() > MAX_PROMPT_BYTES {
            let keep = clip_start(&text, MAX_PROMPT_BYTES - 100).len();
            text.truncate(keep);
            text.push_str("\n[prompt cut here; the full request is in $AUTOPACK_REQUEST_FILE]\n");
        }
        text
    }
}

/// `text`, or its first `max` bytes and a note that the rest is in the request file.
fn clipped(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let head = clip_start(text, max);
    format!(
        "{head}\n[… {} more bytes; the full text is in $AUTOPACK_REQUEST_FILE]",
        text.len() - head.len()
    )
}

/// A prompt that starts with `-` gets a leading space, so no CLI reads it as an option.
fn guard_leading_dash(prompt: &str) -> String {
    if prompt.starts_with('-') {
        format!(" {prompt}")
    } else {
        prompt.to_owned()
    }
}

/// The Builder's prompt for one attempt: the phase, its scope, the attempt number, the
/// feedback of earlier attempts, how to work in the workspace, and how to report extra
/// information through `$AUTOPACK_RESULT_FILE`.
pub fn builder_prompt(request: &BuilderRequest) -> String {
    let mut p = Prompt::new(
        "You are the Builder for one phase of an Autopack run: make the change this phase asks for.",
    );
    p.section("Phase");
    p.line(&format!("Name: {}", request.name));
    p.line(&format!(
        "Id: {} (phase {} of run {}, tier {})",
        request.phase_id, request.phase_index, request.run_id, request.tier_id
    ));
    p.line(&format!(
        "Category: {}; complexity: {}",
        request.task_category, request.complexity
    ));
    if let Some(mode) = &request.builder_mode {
        p.line(&format!("Approach: {mode}"));
    }
    p.line(&format!(
        "Attempt: {} of {}",
        request.attempt, request.max_attempts
    ));
    p.line(&format!(
        "Token budget for this phase: {}",
        request.incident_token_cap
    ));

    p.section("What to do");
    if request.description.trim().is_empty() {
        p.line("The phase has no description beyond its name.");
    } else {
        p.line(&clipped(request.description.trim(), DESCRIPTION_LIMIT));
    }

    p.section("Scope");
    if request.scope.is_empty() {
        p.line("Any file in the repository may change.");
    } else {
        p.line("Change only files whose paths match one of these globs; a change outside them is rejected:");
        for glob in &request.scope {
            p.line(&format!("- {glob}"));
        }
    }

    if !request.feedback.is_empty() {
        p.section("Feedback on earlier attempts (oldest first)");
        p.entries(&request.feedback);
        p.line("");
        p.line("Address every point above in this attempt.");
    }

    p.section("How to work");
    p.line("- Your current directory is a private git checkout of the project. Make the change by editing files there; nothing else is needed.");
    p.line("- Do not commit, push, create branches or tags, or change git configuration: the host turns the changes in the working tree into the patch.");
    p.line("- Run the project's tests or checks if you can, and fix what they report.");
    p.line("- The full request is JSON in the file named by $AUTOPACK_REQUEST_FILE.");
    p.line("- When you are done, stop. If you want to say more (a verdict on your own work, tests that fail, issues you noticed), write one JSON object to the file named by $AUTOPACK_RESULT_FILE:");
    p.line(&format!(
        "  {{\"phase_id\": \"{}\", \"status\": \"success\" | \"failed\" | \"needs_review\", \"tokens_used\": 0, \"notes\": \"…\", \"failing_tests\": [\"…\"]}}",
        request.phase_id
    ));
    p.line("  Leave out \"patch\" (the host takes it from the working tree) and put 0 in \"tokens_used\" (the host counts tokens).");
    p.finish()
}

/// The Auditor's prompt: the patch under review, the failures so far, and the instruction
/// to write its verdict to `$AUTOPACK_RESULT_FILE` (or end its message with it).
pub fn auditor_prompt(request: &AuditorRequest) -> String {
    let mut p = Prompt::new(
        "You are the Auditor for one phase of an Autopack run: review the work and give a verdict.",
    );
    p.section("Phase");
    p.line(&format!(
        "Id: {} (run {}, tier {})",
        request.phase_id, request.run_id, request.tier_id
    ));
    p.line(&format!(
        "Why you are called: {}",
        reason_text(request.reason)
    ));
    if let Some(profile) = &request.auditor_profile {
        p.line(&format!("Review profile: {profile}"));
    }
    p.line(&format!("Audit attempt: {}", request.attempt));

    p.section("The patch under review");
    match request.patch.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(patch) => p.fenced("diff", &clipped(patch, PATCH_LIMIT)),
        None => p.line("There is no patch: judge from the failures and the repository."),
    }

    if !request.failures.is_empty() {
        p.section("Failures so far (oldest first)");
        p.entries(&request.failures);
    }

    p.section("What to do");
    p.line("- Your current directory is a private git checkout of the project; read whatever you need. Do not commit or push.");
    p.line("- The full request is JSON in the file named by $AUTOPACK_REQUEST_FILE.");
    p.line("- Recommend \"approve\" (the patch may proceed), \"revise\" (send it back to the Builder with notes on what to change) or \"escalate\" (the phase cannot succeed this way).");
    p.line("- Write your verdict as one JSON object to the file named by $AUTOPACK_RESULT_FILE:");
    p.line(&format!(
        "  {{\"phase_id\": \"{}\", \"recommendation\": \"approve\" | \"revise\" | \"escalate\", \"review_notes\": \"…\", \"confidence\": 0.0 to 1.0}}",
        request.phase_id
    ));
    p.line("- If you cannot write files, end your final message with that JSON object instead.");
    p.finish()
}

fn reason_text(reason: AuditReason) -> &'static str {
    match reason {
        AuditReason::AttemptsExhausted => "the Builder used up its attempts (attempts_exhausted)",
        AuditReason::HighRiskApproval => {
            "a high-risk phase needs an approve before its patch applies (high_risk_approval)"
        }
        AuditReason::FailureLoop => "the same failure keeps repeating (failure_loop)",
        AuditReason::MajorIssue => "a major issue was reported (major_issue)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn argv(inv: &Invocation) -> Vec<String> {
        std::iter::once(&inv.program)
            .chain(&inv.args)
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn builder_request() -> BuilderRequest {
        serde_json::from_value(json!({
            "run_id": "run-1", "tier_id": "t1", "phase_id": "p-users", "phase_index": 2,
            "name": "Add the users index", "description": "Create an index on users.email.",
            "task_category": "schema_change", "complexity": "medium", "attempt": 2,
            "max_attempts": 3, "incident_token_cap": 50000,
            "scope": ["migrations/**", "src/db/*.rs"],
            "feedback": ["CI: test_indexes failed", "Auditor: name the index"]
        }))
        .expect("a valid builder request")
    }

    fn auditor_request(patch: Option<&str>) -> AuditorRequest {
        serde_json::from_value(json!({
            "run_id": "run-1", "tier_id": "t1", "phase_id": "p-users",
            "auditor_profile": "schema_review", "reason": "attempts_exhausted", "attempt": 1,
            "patch": patch, "failures": ["gate: outside scope: README.md"]
        }))
        .expect("a valid auditor request")
    }

    #[test]
    fn names_round_trip_and_unknown_lists_the_valid_ones() {
        for preset in AgentPreset::ALL {
            assert_eq!(AgentPreset::from_name(preset.name()), Ok(preset));
            assert_eq!(preset.to_string(), preset.name());
        }
        assert_eq!(
            AgentPreset::from_name("claude-code"),
            Ok(AgentPreset::ClaudeCode)
        );
        assert_eq!("Codex".parse::<AgentPreset>(), Ok(AgentPreset::Codex));
        let err = AgentPreset::from_name("gemini").unwrap_err();
        assert_eq!(err.name, "gemini");
        let text = err.to_string();
        for name in AgentPreset::NAMES {
            assert!(text.contains(name), "{text} lacks {name}");
        }
        let programs: Vec<_> = AgentPreset::ALL
            .iter()
            .map(|p| p.default_program())
            .collect();
        assert_eq!(programs, ["codex", "claude", "aider", "sh"]);
    }

    #[test]
    fn codex_invocation() {
        let inv =
            AgentPreset::Codex.invocation(None, AgentRole::Builder, "Do it", Path::new("/ws/one"));
        assert_eq!(
            argv(&inv),
            [
                "codex",
                "exec",
                "--json",
                "--skip-git-repo-check",
                "--dangerously-bypass-approvals-and-sandbox",
                "-C",
                "/ws/one",
                "Do it"
            ]
        );
        assert_eq!(inv.stdin, StdinUse::Empty);
        let other = AgentPreset::Codex.invocation(
            Some(OsStr::new("/opt/codex")),
            AgentRole::Auditor,
            "Do it",
            Path::new("/ws/one"),
        );
        assert_eq!(other.program, "/opt/codex");
        assert_eq!(other.args, inv.args);
    }

    #[test]
    fn claude_invocation() {
        let inv =
            AgentPreset::ClaudeCode.invocation(None, AgentRole::Builder, "Do it", Path::new("/ws"));
        assert_eq!(
            argv(&inv),
            [
                "claude",
                "-p",
                "Do it",
                "--output-format",
                "json",
                "--dangerously-skip-permissions"
            ]
        );
        assert_eq!(inv.stdin, StdinUse::Empty);
    }

    #[test]
    fn aider_invocation() {
        let inv =
            AgentPreset::Aider.invocation(None, AgentRole::Builder, "Do it", Path::new("/ws"));
        assert_eq!(
            argv(&inv),
            [
                "aider",
                "--yes-always",
                "--no-auto-commits",
                "--no-dirty-commits",
                "--no-gitignore",
                "--no-check-update",
                "--no-analytics",
                "--no-show-release-notes",
                "--no-show-model-warnings",
                "--no-pretty",
                "--no-fancy-input",
                "--chat-history-file",
                "/dev/null",
                "--input-history-file",
                "/dev/null",
                "--message",
                "Do it"
            ]
        );
        assert_eq!(inv.stdin, StdinUse::Empty);
    }

    #[test]
    fn command_invocation_runs_the_line_under_sh_with_the_request_on_stdin() {
        let inv = AgentPreset::Command.invocation(
            Some(OsStr::new("my-agent --fast | tee log")),
            AgentRole::Builder,
            "ignored",
            Path::new("/ws"),
        );
        assert_eq!(argv(&inv), ["sh", "-c", "my-agent --fast | tee log"]);
        assert_eq!(inv.stdin, StdinUse::RequestJson);
        let none = AgentPreset::Command.invocation(None, AgentRole::Auditor, "x", Path::new("/"));
        assert_eq!(none.args[0], "-c");
        assert!(none.args[1].to_string_lossy().contains("exit 2"));
    }

    #[test]
    fn a_prompt_starting_with_a_dash_is_not_an_option() {
        let inv = AgentPreset::ClaudeCode.invocation(
            None,
            AgentRole::Builder,
            "--help me",
            Path::new("/"),
        );
        assert_eq!(inv.args[1], " --help me");
    }

    const CODEX_OK: &str = r#"Reading prompt from stdin...
{"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}
{"type":"turn.started"}
{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls","aggregated_output":"","exit_code":null,"status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls","aggregated_output":"src\n","exit_code":0,"status":"completed"}}
{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"First thought."}}
{"type":"item.completed","item":{"id":"item_3","type":"file_change","changes":[{"path":"src/a.rs","kind":"update"}],"status":"completed"}}
{"type":"item.completed","item":{"id":"item_4","type":"agent_message","text":"Done: added the index."}}
{"type":"turn.completed","usage":{"input_tokens":24763,"cached_input_tokens":24448,"output_tokens":122}}
"#;

    #[test]
    fn codex_success_sums_input_and_output_but_not_cached() {
        let report = AgentPreset::Codex.read_output(CODEX_OK, "", 0).unwrap();
        assert_eq!(report.tokens_used, 24763 + 122);
        assert_eq!(report.final_message, "Done: added the index.");
        assert_eq!(report.failed, None);
    }

    #[test]
    fn codex_sums_several_turns_and_tolerates_unknown_events_and_fields() {
        let out = concat!(
            r#"{"type":"thread.started","thread_id":"t","future":1}"#,
            "\n",
            r#"{"type":"item.plan.delta","item_id":"x","delta":"…"}"#,
            "\n",
            r#"{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":0,"output_tokens":5,"reasoning_output_tokens":3}}"#,
            "\n",
            "not json at all\n",
            r#"{"type":"turn.completed","usage":{"input_tokens":100,"output_tokens":50}}"#,
            "\n",
        );
        let report = AgentPreset::Codex.read_output(out, "", 0).unwrap();
        assert_eq!(report.tokens_used, 165);
        assert_eq!(report.failed, None);
        assert_eq!(report.final_message, "");
    }

    #[test]
    fn codex_failures() {
        let out = concat!(
            r#"{"type":"thread.started","thread_id":"t"}"#,
            "\n",
            r#"{"type":"turn.started"}"#,
            "\n",
            r#"{"type":"error","message":"stream disconnected"}"#,
            "\n",
            r#"{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized"}}"#,
            "\n",
        );
        let report = AgentPreset::Codex.read_output(out, "", 1).unwrap();
        assert_eq!(
            report.failed.as_deref(),
            Some("unexpected status 401 Unauthorized")
        );
        assert_eq!(report.tokens_used, 0);

        // An error event the turn recovered from is not a failure.
        let recovered = concat!(
            r#"{"type":"error","message":"Reconnecting... 1/5"}"#,
            "\n",
            r#"{"type":"turn.completed","usage":{"input_tokens":1,"output_tokens":1}}"#,
            "\n",
        );
        assert_eq!(
            AgentPreset::Codex
                .read_output(recovered, "", 0)
                .unwrap()
                .failed,
            None
        );

        let fatal = r#"{"type":"error","message":"quota exceeded"}"#;
        let report = AgentPreset::Codex.read_output(fatal, "", 1).unwrap();
        assert_eq!(report.failed.as_deref(), Some("quota exceeded"));

        let cut_short = r#"{"type":"turn.started"}"#;
        let report = AgentPreset::Codex.read_output(cut_short, "", 0).unwrap();
        assert!(report.failed.unwrap().contains("turn.completed"));

        let bad_exit = AgentPreset::Codex
            .read_output(CODEX_OK, "boom\n", 3)
            .unwrap();
        assert_eq!(
            bad_exit.failed.as_deref(),
            Some("codex exited with code 3; stderr: boom")
        );

        // Died before printing any event: a failure with stderr, not a format error.
        let usage = "error: unexpected argument '--nope' found\n";
        let report = AgentPreset::Codex.read_output("", usage, 2).unwrap();
        assert!(report.failed.unwrap().contains("--nope"));
    }

    #[test]
    fn codex_garbage_and_malformed_usage_are_errors_naming_codex() {
        let err = AgentPreset::Codex
            .read_output("Hello from the human output mode\n", "", 0)
            .unwrap_err();
        assert!(matches!(
            err,
            PresetError::Unrecognised {
                preset: AgentPreset::Codex,
                ..
            }
        ));
        assert!(
            err.to_string()
                .starts_with("codex printed no JSON Lines events"),
            "{err}"
        );
        assert!(err.to_string().contains("Hello from"), "{err}");

        let bad = r#"{"type":"turn.completed","usage":{"input_tokens":"many","output_tokens":1}}"#;
        let err = AgentPreset::Codex.read_output(bad, "", 0).unwrap_err();
        assert!(matches!(
            err,
            PresetError::Malformed {
                preset: AgentPreset::Codex,
                ..
            }
        ));
        assert!(
            err.to_string()
                .contains("line 1: turn.completed usage.input_tokens"),
            "{err}"
        );

        let missing = r#"{"type":"turn.completed"}"#;
        let err = AgentPreset::Codex.read_output(missing, "", 0).unwrap_err();
        assert!(
            err.to_string().contains("has no usage.input_tokens"),
            "{err}"
        );
    }

    const CLAUDE_OK: &str = r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":20011,"duration_api_ms":19321,"num_turns":6,"result":"Added the index.","session_id":"0ae2","total_cost_usd":0.0712,"usage":{"input_tokens":33,"cache_creation_input_tokens":9472,"cache_read_input_tokens":67010,"output_tokens":1191,"server_tool_use":{"web_search_requests":0},"service_tier":"standard"},"modelUsage":{},"permission_denials":[],"uuid":"u","new_field":{"x":1}}"#;

    #[test]
    fn claude_success_counts_every_usage_figure() {
        let report = AgentPreset::ClaudeCode
            .read_output(CLAUDE_OK, "", 0)
            .unwrap();
        assert_eq!(report.tokens_used, 33 + 9472 + 67010 + 1191);
        assert_eq!(report.final_message, "Added the index.");
        assert_eq!(report.failed, None);

        // A warning line before the object, and counters missing on other providers.
        let out = "warning: something\n{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"ok\",\"usage\":{\"input_tokens\":5,\"output_tokens\":7}}\n";
        let report = AgentPreset::ClaudeCode.read_output(out, "", 0).unwrap();
        assert_eq!(report.tokens_used, 12);
    }

    #[test]
    fn claude_failures() {
        let max_turns = r#"{"type":"result","subtype":"error_max_turns","is_error":false,"num_turns":3,"session_id":"s","total_cost_usd":0.01,"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":90,"output_tokens":20},"permission_denials":[],"errors":[]}"#;
        let report = AgentPreset::ClaudeCode
            .read_output(max_turns, "", 0)
            .unwrap();
        assert_eq!(
            report.failed.as_deref(),
            Some("error_max_turns: no message")
        );
        assert_eq!(report.tokens_used, 120);

        let during = r#"{"type":"result","subtype":"error_during_execution","is_error":true,"usage":{"input_tokens":1,"output_tokens":1},"errors":["tool crashed","then gave up"]}"#;
        let report = AgentPreset::ClaudeCode.read_output(during, "", 1).unwrap();
        assert_eq!(
            report.failed.as_deref(),
            Some("error_during_execution: tool crashed; then gave up")
        );

        let api_error = r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 401 invalid x-api-key","usage":{"input_tokens":0,"output_tokens":0}}"#;
        let report = AgentPreset::ClaudeCode
            .read_output(api_error, "", 1)
            .unwrap();
        assert_eq!(
            report.failed.as_deref(),
            Some("success: API Error: 401 invalid x-api-key")
        );

        let report = AgentPreset::ClaudeCode
            .read_output("", "error: unknown option '--x'", 1)
            .unwrap();
        assert_eq!(
            report.failed.as_deref(),
            Some("claude exited with code 1; stderr: error: unknown option '--x'")
        );
    }

    #[test]
    fn claude_garbage_is_an_error_naming_claude() {
        for out in [
            "Added the index.",
            r#"{"type":"assistant","message":{}}"#,
            "",
        ] {
            let err = AgentPreset::ClaudeCode.read_output(out, "", 0).unwrap_err();
            assert!(matches!(
                err,
                PresetError::Unrecognised {
                    preset: AgentPreset::ClaudeCode,
                    ..
                }
            ));
            assert!(
                err.to_string().starts_with("claude printed no JSON object"),
                "{err}"
            );
        }
        let no_usage = r#"{"type":"result","subtype":"success","result":"x"}"#;
        let err = AgentPreset::ClaudeCode
            .read_output(no_usage, "", 0)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "claude output is malformed: the result has no usage object"
        );
        let bad = r#"{"type":"result","subtype":"success","usage":{"input_tokens":-3}}"#;
        let err = AgentPreset::ClaudeCode.read_output(bad, "", 0).unwrap_err();
        assert!(
            err.to_string().contains("usage.input_tokens is -3"),
            "{err}"
        );
    }

    const AIDER_OK: &str = "Aider v0.86.1
Main model: anthropic/claude-sonnet-4 with diff edit format, infinite output
Weak model: anthropic/claude-3-5-haiku
Git repo: .git with 214 files
Repo-map: using 4096 tokens, auto refresh

I'll add the index.

migrations/0004_users_email.sql
```sql
<<<<<<< SEARCH
=======
CREATE INDEX users_email ON users (email);
>>>>>>> REPLACE
```

Tokens: 12k sent, 2.1k cache write, 9.8k cache hit, 1.2k received. Cost: $0.03 message, $0.03 session.

Applied edit to migrations/0004_users_email.sql
Tokens: 14k sent, 88 received. Cost: $0.01 message, $0.04 session.
";

    #[test]
    fn aider_sums_sent_and_received_over_its_tokens_lines() {
        let report = AgentPreset::Aider.read_output(AIDER_OK, "", 0).unwrap();
        assert_eq!(report.tokens_used, 12_000 + 1_200 + 14_000 + 88);
        assert_eq!(report.failed, None);
        assert!(report.final_message.starts_with("Aider v0.86.1"));
        assert!(report.final_message.ends_with("$0.04 session."));

        // No pricing known: no Cost part; a newer figure is ignored.
        let out = "Aider v0.90.0\nTokens: 2.3k sent, 512 received, 40 reasoning.\n";
        assert_eq!(
            AgentPreset::Aider
                .read_output(out, "", 0)
                .unwrap()
                .tokens_used,
            2_812
        );
        // The banner alone: a run that made no model call.
        assert_eq!(
            AgentPreset::Aider
                .read_output("Aider v0.86.1\n", "", 0)
                .unwrap()
                .tokens_used,
            0
        );
    }

    #[test]
    fn aider_failures_and_garbage() {
        let out =
            "Aider v0.86.1\nTokens: 1.5k sent, 0 received.\nlitellm.AuthenticationError: bad key\n";
        let report = AgentPreset::Aider.read_output(out, "", 1).unwrap();
        assert_eq!(report.tokens_used, 1_500);
        assert_eq!(
            report.failed.as_deref(),
            Some("aider exited with code 1; last output: litellm.AuthenticationError: bad key")
        );
        let report = AgentPreset::Aider
            .read_output("", "Traceback …\nKeyError: 'x'", 1)
            .unwrap();
        assert_eq!(
            report.failed.as_deref(),
            Some("aider exited with code 1; stderr: Traceback …\nKeyError: 'x'")
        );

        let err = AgentPreset::Aider
            .read_output("hello\n", "", 0)
            .unwrap_err();
        assert!(matches!(
            err,
            PresetError::Unrecognised {
                preset: AgentPreset::Aider,
                ..
            }
        ));
        assert!(
            err.to_string()
                .starts_with("aider printed no `Aider v…` announcement"),
            "{err}"
        );
        let err = AgentPreset::Aider
            .read_output("Aider v1\nTokens: lots sent, 3 received.\n", "", 0)
            .unwrap_err();
        assert!(matches!(
            err,
            PresetError::Malformed {
                preset: AgentPreset::Aider,
                ..
            }
        ));
        assert!(
            err.to_string().contains("\"lots\" is not a number"),
            "{err}"
        );
        let err = AgentPreset::Aider
            .read_output("Tokens: 3 received.\n", "", 0)
            .unwrap_err();
        assert!(
            err.to_string().contains("no `sent` and `received`"),
            "{err}"
        );
    }

    #[test]
    fn counts_with_k_and_m_suffixes() {
        let cases = [
            ("0", Some(0)),
            ("512", Some(512)),
            ("2.3k", Some(2_300)),
            ("9.9k", Some(9_900)),
            ("12k", Some(12_000)),
            ("1.5M", Some(1_500_000)),
            ("2M", Some(2_000_000)),
            ("1.25k", Some(1_250)),
            ("k", None),
            ("1.2.3k", None),
            ("-5", None),
            ("", None),
            ("3x", None),
            ("99999999999999999999k", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_count(text), expected, "{text}");
        }
    }

    #[test]
    fn command_reads_stdout_as_is() {
        let report = AgentPreset::Command
            .read_output("{\"phase_id\":\"p\"}\n", "", 0)
            .unwrap();
        assert_eq!(
            report,
            AgentReport {
                tokens_used: 0,
                final_message: "{\"phase_id\":\"p\"}\n".to_owned(),
                failed: None
            }
        );
        let report = AgentPreset::Command.read_output("anything", "", 4).unwrap();
        assert_eq!(report.failed.as_deref(), Some("command exited with code 4"));
    }

    #[test]
    fn result_json_in_finds_the_last_top_level_object() {
        let fenced = "Review done.\n\n```json\n{\"phase_id\": \"p\", \"recommendation\": \"revise\", \"review_notes\": \"use {braces} and \\\"quotes\\\" }\", \"confidence\": 0.7}\n```\n";
        let found = result_json_in(fenced).unwrap();
        let value: Value = serde_json::from_str(found).unwrap();
        assert_eq!(value["recommendation"], "revise");
        assert_eq!(value["review_notes"], "use {braces} and \"quotes\" }");

        let bare = "Early example {\"a\": 1}. Final: {\"phase_id\": \"p\", \"nested\": {\"b\": [1, {\"c\": 2}]}} thanks";
        assert_eq!(
            result_json_in(bare),
            Some("{\"phase_id\": \"p\", \"nested\": {\"b\": [1, {\"c\": 2}]}}")
        );
        assert_eq!(
            result_json_in("no json {at all} here { \"unclosed\": "),
            None
        );
        assert_eq!(result_json_in(""), None);
        assert_eq!(result_json_in("[1, 2]"), None);
        assert_eq!(result_json_in("{}"), Some("{}"));
        assert_eq!(
            result_json_in("ünïcode {\"é\": \"}\"} ✓"),
            Some("{\"é\": \"}\"}")
        );
        // Pathological input stays linear enough to finish at once.
        let many = "{".repeat(100_000);
        assert_eq!(result_json_in(&many), None);
    }

    #[test]
    fn builder_prompt_says_what_to_do_and_how_to_report() {
        let prompt = builder_prompt(&builder_request());
        for needle in [
            "Name: Add the users index",
            "Id: p-users (phase 2 of run run-1, tier t1)",
            "Category: schema_change; complexity: medium",
            "Attempt: 2 of 3",
            "Create an index on users.email.",
            "- migrations/**",
            "- src/db/*.rs",
            "1. CI: test_indexes failed",
            "2. Auditor: name the index",
            "Do not commit, push",
            "$AUTOPACK_RESULT_FILE",
            "$AUTOPACK_REQUEST_FILE",
            "\"phase_id\": \"p-users\"",
        ] {
            assert!(prompt.contains(needle), "missing {needle:?} in:\n{prompt}");
        }
        assert!(!prompt.starts_with('-'));
    }

    #[test]
    fn builder_prompt_without_scope_or_feedback() {
        let mut request = builder_request();
        request.scope.clear();
        request.feedback.clear();
        request.description.clear();
        let prompt = builder_prompt(&request);
        assert!(prompt.contains("Any file in the repository may change."));
        assert!(!prompt.contains("Feedback on earlier attempts"));
        assert!(prompt.contains("no description beyond its name"));
    }

    #[test]
    fn auditor_prompt_quotes_the_patch_and_asks_for_the_verdict_json() {
        let patch = "diff --git a/x b/x\n+```\n+code\n";
        let prompt = auditor_prompt(&auditor_request(Some(patch)));
        for needle in [
            "Id: p-users (run run-1, tier t1)",
            "attempts_exhausted",
            "Review profile: schema_review",
            "diff --git a/x b/x",
            "1. gate: outside scope: README.md",
            "\"recommendation\": \"approve\" | \"revise\" | \"escalate\"",
            "\"confidence\"",
            "$AUTOPACK_RESULT_FILE",
            "end your final message with that JSON object",
        ] {
            assert!(prompt.contains(needle), "missing {needle:?} in:\n{prompt}");
        }
        // The fence is longer than the backtick run inside the patch.
        assert!(prompt.contains("````diff\n"));
        let none = auditor_prompt(&auditor_request(None));
        assert!(none.contains("There is no patch"));
    }

    #[test]
    fn prompts_fit_one_argv_string_whatever_the_request() {
        let huge = "x".repeat(1_000_000);
        let mut request = builder_request();
        request.description = huge.clone();
        request.feedback = vec![huge.clone(); 50];
        let prompt = builder_prompt(&request);
        assert!(prompt.len() <= MAX_PROMPT_BYTES, "{}", prompt.len());
        assert!(prompt.contains("older entries are left out"));
        assert!(prompt.contains("more bytes; the full text is in $AUTOPACK_REQUEST_FILE"));

        let mut audit = auditor_request(Some(&huge));
        audit.failures = vec!["é".repeat(100_000); 20];
        let prompt = auditor_prompt(&audit);
        assert!(prompt.len() <= MAX_PROMPT_BYTES, "{}", prompt.len());
    }
}
