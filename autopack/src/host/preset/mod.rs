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

use serde_json::Value;

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
#[non_exhaustive]
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

/// A prompt that starts with `-` gets a leading space, so no CLI reads it as an option.
fn guard_leading_dash(prompt: &str) -> String {
    if prompt.starts_with('-') {
        format!(" {prompt}")
    } else {
        prompt.to_owned()
    }
}

mod prompt;

pub use prompt::{MAX_PROMPT_BYTES, auditor_prompt, builder_prompt};

#[cfg(test)]
mod tests;
