//! Progress output: a line per state transition (run, tier and phase histories) and per
//! action, and an `indicatif` progress bar over the phases (shown only when stdout is a
//! terminal).
//!
//! With an event sink (`--events FILE`) every transition, breach, escalation, action and
//! result is also a JSON line with its time ([`Event`]).
//!
//! A closed stdout (`autopack run … | head -1`) never aborts a run: the first line that
//! cannot be written stops the printing, the run goes on and its result is in the
//! artefacts and the exit code. The same holds for the event sink.

use std::io::{IsTerminal, Write};

use autopack::core::budget::TierBreach;
use autopack::core::record::RunRecord;
use autopack::driver::Observer;
use autopack::supervisor::{Action, AgentOutcome, Input};
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use autopack::changes::{Change, Escalation, Scope, Seen};

/// One line of the event stream (`--events`): JSON, `{"event": …, "at": …, …}`.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// The run, a tier or a phase entered a state.
    Transition {
        /// When (the record's time).
        at: DateTime<Utc>,
        /// Of what.
        scope: Scope,
        /// The run, tier or phase id.
        id: &'a str,
        /// The state entered.
        state: &'a str,
    },
    /// A tier budget was breached.
    Breach {
        /// When it was seen.
        at: DateTime<Utc>,
        /// The tier.
        tier_id: &'a str,
        /// The breach.
        breach: &'a TierBreach,
        /// In words.
        message: String,
    },
    /// A phase went to its Auditor, or an Auditor escalated it.
    Escalation {
        /// When it was seen.
        at: DateTime<Utc>,
        /// The phase.
        phase_id: &'a str,
        /// Why.
        reason: String,
    },
    /// The Supervisor asked the host to act.
    Action {
        /// When it was asked.
        at: DateTime<Utc>,
        /// Its name (`dispatch_builder`, `run_ci`, …).
        action: &'static str,
        /// The phase, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        phase_id: Option<&'a str>,
        /// What the progress line says.
        #[serde(skip_serializing_if = "Option::is_none")]
        summary: Option<&'a str>,
    },
    /// The host answered (an agent, the gate, CI, …).
    Result {
        /// The answer's time.
        at: DateTime<Utc>,
        /// Its name (`builder_finished`, `ci_finished`, …).
        input: &'static str,
        /// What the progress line says.
        #[serde(skip_serializing_if = "Option::is_none")]
        summary: Option<&'a str>,
    },
}

/// Where progress lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    Stdout,
    /// When stdout carries a JSON document (`--json`).
    Stderr,
}

/// An [`Observer`] that prints progress and keeps every line it printed.
pub struct Progress {
    bar: Option<ProgressBar>,
    print: bool,
    sink: Sink,
    seen: Seen,
    events: Option<Box<dyn Write>>,
    /// Every line, in order (also when nothing is printed).
    pub lines: Vec<String>,
}

impl Progress {
    /// Prints to stdout (with a progress bar when stdout is a terminal) when `print`;
    /// otherwise only keeps the lines.
    pub fn new(print: bool) -> Progress {
        Progress {
            bar: None,
            print,
            sink: Sink::Stdout,
            seen: Seen::default(),
            events: None,
            lines: Vec::new(),
        }
    }

    /// The same, printing to stderr: stdout then holds only what the command prints
    /// itself (a JSON document with `--json`).
    #[must_use]
    pub fn on_stderr(mut self) -> Progress {
        self.sink = Sink::Stderr;
        self
    }

    /// The same, also writing every event as a JSON line to `events`.
    #[must_use]
    pub fn with_events(mut self, events: Box<dyn Write>) -> Progress {
        self.events = Some(events);
        self
    }

    fn event(&mut self, event: &Event<'_>) {
        let Some(out) = self.events.as_mut() else {
            return;
        };
        let mut line = serde_json::to_vec(event).unwrap_or_default();
        line.push(b'\n');
        if out.write_all(&line).and_then(|()| out.flush()).is_err() {
            // A closed or failing sink: no more events, the run goes on.
            self.events = None;
        }
    }

    fn say(&mut self, line: String) {
        if self.print {
            match &self.bar {
                Some(bar) => bar.println(&line),
                None => {
                    let written = match self.sink {
                        Sink::Stdout => {
                            let mut out = std::io::stdout().lock();
                            writeln!(out, "{line}").and_then(|()| out.flush())
                        }
                        Sink::Stderr => writeln!(std::io::stderr().lock(), "{line}"),
                    };
                    if written.is_err() {
                        // Closed (or failing) output: no more progress, the run goes on.
                        self.print = false;
                    }
                }
            }
        }
        self.lines.push(line);
    }

    /// Whether lines are still printed (false once stdout failed, or when created quiet).
    pub fn printing(&self) -> bool {
        self.print
    }

    /// Removes the progress bar (call when the run is over).
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn ensure_bar(&mut self, record: &RunRecord) {
        let terminal = match self.sink {
            // The bar draws on stderr; it is shown when the lines go to a terminal.
            Sink::Stdout => std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
            Sink::Stderr => std::io::stderr().is_terminal(),
        };
        if self.bar.is_some() || !self.print || !terminal {
            return;
        }
        let total = record.phases().count() as u64;
        let bar = ProgressBar::new(total);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} phases  {msg}")
        {
            bar.set_style(style);
        }
        self.bar = Some(bar);
    }

    fn transitions(&mut self, record: &RunRecord) {
        self.ensure_bar(record);
        for change in self.seen.changes(record) {
            match &change {
                Change::Transition {
                    at,
                    scope,
                    id,
                    name,
                    state,
                } => {
                    self.say(match scope {
                        Scope::Run => format!("  run    {state:<26} {}", at.format("%H:%M:%S")),
                        Scope::Tier => format!(
                            "  tier   {id:<26} {state} ({})",
                            name.as_deref().unwrap_or_default()
                        ),
                        Scope::Phase => format!("  phase  {id:<26} {state}"),
                    });
                    self.event(&Event::Transition {
                        at: *at,
                        scope: *scope,
                        id,
                        state,
                    });
                }
                Change::Breach { tier_id, breach } => {
                    self.say(format!("  budget {tier_id:<26} {breach}"));
                    self.event(&Event::Breach {
                        at: Utc::now(),
                        tier_id,
                        breach,
                        message: breach.to_string(),
                    });
                }
            }
        }
        let done = record.phases().filter(|p| p.state.is_terminal()).count() as u64;
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(record.state.to_string());
        }
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

impl Observer for Progress {
    fn action(&mut self, action: &Action, record: &RunRecord) {
        self.transitions(record);
        let line = match action {
            Action::DispatchBuilder(r) => format!(
                "→ builder  {} attempt {}/{}{}",
                r.phase_id,
                r.attempt,
                r.max_attempts,
                if r.feedback.is_empty() {
                    String::new()
                } else {
                    format!(" ({} notes of feedback)", r.feedback.len())
                }
            ),
            Action::RequestAudit(r) => format!(
                "→ auditor  {} ({}{})",
                r.phase_id,
                r.reason,
                r.auditor_profile
                    .as_deref()
                    .map(|p| format!(", {p}"))
                    .unwrap_or_default()
            ),
            Action::ApplyPatch(r) => format!(
                "→ gate     {} {:?} patch, attempt {}",
                r.phase_id, r.role, r.attempt
            ),
            Action::RunCi(r) => format!(
                "→ ci       {} {} on {} (≤ {} attempts)",
                r.phase_id,
                r.profile,
                short(r.commit.as_str()),
                r.max_attempts
            ),
            Action::CreateSnapshot(r) => format!("→ snapshot {}", r.tag),
            Action::WriteIncidentPack => "→ incident pack".to_owned(),
            Action::Finished { state } => format!("■ finished {state}"),
            Action::RecordIssues { .. } | Action::Checkpoint(_) => String::new(),
            // An action of a newer Supervisor than this observer knows: its kind alone.
            other => format!("→ {}", other.kind()),
        };
        let at = Utc::now();
        let phase_id = action.phase_id().map(|p| p.as_str());
        self.event(&Event::Action {
            at,
            action: action.kind(),
            phase_id,
            summary: (!line.is_empty()).then_some(line.trim()),
        });
        if let Some(e) = Escalation::of_action(action) {
            self.event(&Event::Escalation {
                at,
                phase_id: e.phase_id.as_str(),
                reason: e.reason,
            });
        }
        if !line.is_empty() {
            self.say(line);
        }
    }

    fn input(&mut self, input: &Input, record: &RunRecord) {
        let line = match input {
            Input::BuilderFinished {
                phase_id, outcome, ..
            } => Some(match outcome {
                AgentOutcome::Returned(r) => format!(
                    "  builder  {phase_id} → {} ({} tokens)",
                    r.status, r.tokens_used
                ),
                AgentOutcome::Failed { reason, .. } => {
                    format!("  builder  {phase_id} → failed: {reason}")
                }
            }),
            Input::AuditorFinished {
                phase_id, outcome, ..
            } => Some(match outcome {
                AgentOutcome::Returned(r) => format!(
                    "  auditor  {phase_id} → {}: {}",
                    r.recommendation, r.review_notes
                ),
                AgentOutcome::Failed { reason, .. } => {
                    format!("  auditor  {phase_id} → failed: {reason}")
                }
            }),
            Input::PatchApplied {
                phase_id, commit, ..
            } => Some(format!(
                "  gate     {phase_id} → candidate {}",
                short(commit.as_str())
            )),
            Input::PatchRejected {
                phase_id,
                rule,
                message,
                ..
            } => Some(format!(
                "  gate     {phase_id} → rejected ({rule}): {message}"
            )),
            Input::CiFinished {
                phase_id, report, ..
            } => Some(format!(
                "  ci       {phase_id} → {:?} after {} attempt(s)",
                report.verdict, report.attempts
            )),
            Input::EnvironmentFailed { reason, .. } => {
                Some(format!("  host     environment failed: {reason}"))
            }
            Input::PolicyViolation { reason, .. } => {
                Some(format!("  host     POLICY VIOLATION: {reason}"))
            }
            _ => None,
        };
        self.event(&Event::Result {
            at: input.at(),
            input: input.kind(),
            summary: line.as_deref().map(str::trim),
        });
        if let Some(e) = Escalation::of_input(input) {
            self.event(&Event::Escalation {
                at: input.at(),
                phase_id: e.phase_id.as_str(),
                reason: e.reason,
            });
        }
        if let Some(line) = line {
            self.say(line);
        }
        self.transitions(record);
    }
}
