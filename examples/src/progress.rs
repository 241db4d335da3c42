//! Progress output: a line per state transition (run, tier and phase histories) and per
//! action, and an `indicatif` progress bar over the phases (shown only when stdout is a
//! terminal).
//!
//! A closed stdout (`autopack run … | head -1`) never aborts a run: the first line that
//! cannot be written stops the printing, the run goes on and its result is in the
//! artefacts and the exit code.

use std::collections::HashMap;
use std::io::{IsTerminal, Write as _};

use autopack::core::record::RunRecord;
use autopack::driver::Observer;
use autopack::supervisor::{Action, AgentOutcome, Input};
use indicatif::{ProgressBar, ProgressStyle};

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
    run_seen: usize,
    tier_seen: HashMap<String, usize>,
    /// Breaches printed, per tier.
    breaches_seen: HashMap<String, usize>,
    phase_seen: HashMap<String, usize>,
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
            run_seen: 0,
            tier_seen: HashMap::new(),
            breaches_seen: HashMap::new(),
            phase_seen: HashMap::new(),
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
        // In causal order: the run moves (it leads each phase's steps), each tier starts,
        // its phases move, the tier ends after its phases, the run ends last.
        let mut out = Vec::new();
        let mut run_ended = Vec::new();
        for change in record.history.iter().skip(self.run_seen) {
            let line = format!(
                "  run    {:<26} {}",
                change.state,
                change.at.format("%H:%M:%S")
            );
            if change.state.is_terminal() {
                run_ended.push(line);
            } else {
                out.push(line);
            }
        }
        self.run_seen = record.history.len();
        for tier in &record.tiers {
            let seen = self.tier_seen.entry(tier.tier_id.to_string()).or_default();
            let mut tier_ended = Vec::new();
            for change in tier.history.iter().skip(*seen) {
                let line = format!(
                    "  tier   {:<26} {} ({})",
                    tier.tier_id, change.state, tier.name
                );
                if change.state.is_terminal() {
                    tier_ended.push(line);
                } else {
                    out.push(line);
                }
            }
            *seen = tier.history.len();
            let seen = self
                .breaches_seen
                .entry(tier.tier_id.to_string())
                .or_default();
            let breaches: Vec<String> = tier
                .breaches
                .iter()
                .skip(*seen)
                .map(|breach| format!("  budget {:<26} {breach}", tier.tier_id))
                .collect();
            *seen = tier.breaches.len();
            for phase in &tier.phases {
                let seen = self
                    .phase_seen
                    .entry(phase.phase_id.to_string())
                    .or_default();
                for change in phase.history.iter().skip(*seen) {
                    out.push(format!("  phase  {:<26} {}", phase.phase_id, change.state));
                }
                *seen = phase.history.len();
            }
            out.extend(breaches);
            out.extend(tier_ended);
        }
        out.extend(run_ended);
        for line in out {
            self.say(line);
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
                short(&r.commit),
                r.max_attempts
            ),
            Action::CreateSnapshot(r) => format!("→ snapshot {}", r.tag),
            Action::WriteIncidentPack => "→ incident pack".to_owned(),
            Action::Finished { state } => format!("■ finished {state}"),
            Action::RecordIssues { .. } | Action::Checkpoint(_) => return,
        };
        self.say(line);
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
                short(commit)
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
        if let Some(line) = line {
            self.say(line);
        }
        self.transitions(record);
    }
}
