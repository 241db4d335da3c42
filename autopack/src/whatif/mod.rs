//! What-if replay: a recorded run's agent and CI outcomes fed again through a Supervisor
//! under another strategy (other budgets, attempts, thresholds), to see where the run
//! would have gone differently.
//!
//! Pure: journal entries and a strategy in, a [`WhatIf`] out; no files, no git, no
//! agents. The pieces:
//!
//! - [`Recorded::from_entries`] reads a run from its journal entries (what
//!   `autopack_core::journal::replay::<_, JournalEntry>` returns): the configuration, the
//!   start (plan, strategy, backlog, time) and every later input, and replays them through
//!   a fresh Supervisor to learn the run's [`Decision`]s and end state, and which request
//!   each recorded answer answered.
//! - [`strategy_under`] compiles the strategy a new [`Ruleset`] gives the recorded plan
//!   and start backlog.
//! - [`what_if`] starts a fresh Supervisor with the recorded start under that strategy and
//!   answers each request with the recorded answer to the same request: a Builder or
//!   Auditor attempt by phase and attempt number, a patch by phase, author and attempt,
//!   CI and snapshots by phase and candidate commit (the k-th such request gets the k-th
//!   such answer). Inputs that answered nothing (a tick, an abort, a tripwire's policy
//!   violation, reported issues, an environment failure) are fed after the answer they
//!   followed in the recorded run, when that answer is used. Every input keeps its
//!   recorded time. It stops at the end of the run, or where the Supervisor asks for work
//!   the recorded run never did ([`Ending::NeedsUnrecorded`]).
//! - [`summarise`] counts, over many runs, how many ended the same, how many differently
//!   (by state transition) and how many needed unrecorded work: the data for tuning caps
//!   and thresholds from history.
//!
//! A recorded run of one phase whose Builder spent 40,000 tokens, replayed under a run
//! token cap of 30,000:
//!
//! ```
//! use autopack::core::ids::{CommitId, PhaseId};
//! use autopack::core::lifecycle::RunState;
//! use autopack::core::message::BuilderResult;
//! use autopack::core::plan::Plan;
//! use autopack::core::record::CiVerdict;
//! use autopack::driver::JournalEntry;
//! use autopack::strategy::Ruleset;
//! use autopack::supervisor::{AgentOutcome, CiReport, Input, SupervisorConfig};
//! use autopack::whatif::{Decision, Ending, Recorded, strategy_under, what_if};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plan = Plan::from_json(r#"{
//!   "run": {"run_id": "run-1"},
//!   "tiers": [{"tier_id": "t1", "tier_index": 0, "name": "One"}],
//!   "phases": [{"phase_id": "p1", "phase_index": 0, "tier_id": "t1", "name": "Docs",
//!               "task_category": "docs"}]}"#, "plan.json")?;
//! let strategy = autopack::strategy::dry_run(&plan, None, None)?;
//! let at = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")?.to_utc();
//! let p1 = PhaseId::new("p1")?;
//! // What `autopack_core::journal::replay` reads back from the run's journal.
//! let entries = vec![
//!     JournalEntry::Config(SupervisorConfig::default()),
//!     JournalEntry::Input(Input::Start {
//!         at, plan, strategy: Box::new(strategy), backlog: Box::default(),
//!     }),
//!     JournalEntry::Input(Input::BuilderFinished {
//!         at, phase_id: p1.clone(), attempt: 1,
//!         outcome: AgentOutcome::Returned(
//!             BuilderResult::success(p1.clone(), "diff --git a/x b/x\n").with_tokens(40_000),
//!         ),
//!     }),
//!     JournalEntry::Input(Input::PatchApplied {
//!         at, phase_id: p1.clone(), commit: CommitId::new("c".repeat(40))?, holds: vec![],
//!     }),
//!     JournalEntry::Input(Input::CiFinished {
//!         at, phase_id: p1.clone(), report: CiReport::new(CiVerdict::Green, 1),
//!     }),
//!     JournalEntry::Input(Input::SnapshotCreated {
//!         at, phase_id: p1, tag: "autonomous/run-1/tier-t1/phase-p1".into(),
//!     }),
//! ];
//! let recorded = Recorded::from_entries(entries)?;
//! assert_eq!(recorded.state(), RunState::DoneSuccess);
//!
//! let tighter = Ruleset::from_json(
//!     r#"{"project_id": "builtin", "run_token_cap": 30000}"#,
//!     "NEW.json",
//! )?;
//! let result = what_if(&recorded, strategy_under(&recorded, &tighter)?);
//! assert_eq!(result.ending, Ending::Finished(RunState::DoneFailedTokenCapExceeded));
//! let difference = result.first_difference.as_ref().expect("it decided otherwise");
//! assert_eq!(difference.now, Some(Decision::WriteIncidentPack));
//! assert!(result.to_string().starts_with(
//!     "ends differently: DONE_SUCCESS → DONE_FAILED_TOKEN_CAP_EXCEEDED\n"
//! ));
//! # Ok(()) }
//! ```
//!
//! `autopack/tests/whatif.rs` shows the whole path on runs driven and journaled by the
//! driver: a tighter token cap or fewer attempts that change the outcome, looser ones
//! that do not, more attempts than a failed run made.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use serde::Serialize;

use autopack_core::ids::{CommitId, PhaseId, RunId};
use autopack_core::lifecycle::RunState;
use autopack_core::plan::Plan;
use autopack_core::record::{AttemptRole, RunRecord};
use autopack_issues::ProjectBacklog;
use autopack_strategy::{CompileError, CompileOptions, Ruleset, Strategy};

use crate::driver::JournalEntry;
use crate::supervisor::{Action, Input, Supervisor, SupervisorConfig, SupervisorError};

/// Why journal entries do not make a recorded run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WhatIfError {
    /// No entry is the run's `start` input (an empty journal, or one holding only its
    /// configuration).
    #[error("the journal has no start: none of its {entries} entries is the run's `start` input")]
    NoStart {
        /// Entries the journal holds.
        entries: usize,
    },
    /// An entry where a journal cannot have it.
    #[error("journal entry {entry} ({kind}) is out of place: {why}")]
    OutOfPlace {
        /// Its position, from 1.
        entry: usize,
        /// What it is (`config`, or the input's kind).
        kind: &'static str,
        /// Why it cannot be there.
        why: &'static str,
    },
    /// The Supervisor refused an entry on replay: the journal is not a run this
    /// Supervisor ran.
    #[error("journal entry {entry} ({kind}) does not replay: {source}")]
    Refused {
        /// Its position, from 1.
        entry: usize,
        /// The input's kind.
        kind: &'static str,
        /// The refusal.
        #[source]
        source: SupervisorError,
    },
}

mod recorded;
mod summary;
#[cfg(test)]
mod tests;

use recorded::{Asked, drain};
pub use recorded::{Decision, Recorded};
pub use summary::{Transition, WhatIfSummary, summarise};

/// The strategy `ruleset` gives the recorded run: compiled (as a run's start compiles it)
/// from the recorded plan and the project backlog before the run, as the same strategy
/// version. The safety profile and scope come from the plan, else from `ruleset`.
///
/// # Errors
/// As [`autopack_strategy::compile()`].
pub fn strategy_under(recorded: &Recorded, ruleset: &Ruleset) -> Result<Strategy, CompileError> {
    let options = CompileOptions {
        strategy_version: recorded.strategy.version,
        ..CompileOptions::default()
    };
    autopack_strategy::compile(
        ruleset,
        &crate::backlog_view(&recorded.backlog),
        &recorded.plan,
        &options,
    )
}

/// Where a what-if replay stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Ending {
    /// The run ended, in this state, on recorded outcomes alone.
    Finished(RunState),
    /// The Supervisor asked for work the recorded run never did (a Builder attempt it
    /// never made, an Auditor it never called, a CI run of a candidate it never had).
    NeedsUnrecorded {
        /// The decision's position, from 1.
        step: usize,
        /// What it asked for.
        decision: Decision,
    },
    /// The Supervisor waits for nothing and asks for nothing, and nothing recorded is
    /// left to feed it.
    Stalled {
        /// Decisions made before it stalled.
        step: usize,
    },
    /// The Supervisor refused the start under the new strategy, or a recorded input.
    Refused {
        /// Decisions made before the refusal.
        step: usize,
        /// The refusal.
        reason: String,
    },
}

/// The first decision at which the what-if run differs from the recorded one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The decision's position, from 1.
    pub step: usize,
    /// What the recorded run decided there (`None`: it had stopped).
    pub recorded: Option<Decision>,
    /// What the what-if run decided there (`None`: it had stopped).
    pub now: Option<Decision>,
}

/// Where one recorded run would have gone under another strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WhatIf {
    /// The first decision that differs; `None` when every decision is the same.
    pub first_difference: Option<Difference>,
    /// Where the what-if replay stopped.
    pub ending: Ending,
    /// The recorded run's state at the end of its journal.
    pub recorded_state: RunState,
    /// Why the what-if run failed, when it ended failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Tokens the recorded run spent.
    pub recorded_tokens: u64,
    /// Tokens the what-if run had spent when it stopped.
    pub tokens_used: u64,
    /// Whether it ended as the recorded run did: in the same state, or (for a recorded
    /// run that had not finished) with every decision the same.
    pub same_end: bool,
}

impl WhatIf {
    /// The report for a person, over several lines.
    pub fn render_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for WhatIf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let recorded = self.recorded_state;
        match &self.ending {
            Ending::Finished(state) if self.same_end => {
                writeln!(f, "ends the same: {state}")?;
            }
            Ending::Finished(state) => writeln!(f, "ends differently: {recorded} → {state}")?,
            Ending::NeedsUnrecorded { step, decision } => writeln!(
                f,
                "needs work never recorded: decision {step} asks for {decision}"
            )?,
            Ending::Stalled { step } => writeln!(
                f,
                "stalls after decision {step}: it waits for nothing and nothing recorded is left"
            )?,
            Ending::Refused { step, reason } => {
                writeln!(f, "refused after decision {step}: {reason}")?;
            }
        }
        match &self.first_difference {
            None => writeln!(f, "  every decision as recorded")?,
            Some(d) => {
                let show = |d: &Option<Decision>| {
                    d.as_ref().map_or("(stopped)".into(), Decision::to_string)
                };
                writeln!(
                    f,
                    "  first difference at decision {}: recorded {}; now {}",
                    d.step,
                    show(&d.recorded),
                    show(&d.now)
                )?;
            }
        }
        if let Some(failure) = &self.failure {
            writeln!(f, "  why: {failure}")?;
        }
        writeln!(
            f,
            "  recorded: {recorded}, {} tokens; what-if: {} tokens",
            self.recorded_tokens, self.tokens_used
        )
    }
}

/// Replays `recorded` under `strategy` (see the [module](self) for how requests are
/// matched with recorded answers).
pub fn what_if(recorded: &Recorded, strategy: Strategy) -> WhatIf {
    let mut sup = Supervisor::new();
    let mut decisions = Vec::with_capacity(recorded.decisions.len());
    let mut outstanding = None;
    let start = Input::Start {
        at: recorded.at,
        plan: recorded.plan.clone(),
        strategy: Box::new(strategy),
        backlog: Box::new(recorded.backlog.clone()),
    };
    let ending = match sup.start_with(start, recorded.config) {
        Err(e) => Ending::Refused {
            step: 0,
            reason: e.to_string(),
        },
        Ok(()) => {
            drain(&mut sup, &mut decisions, &mut outstanding);
            answer(
                &mut sup,
                &mut decisions,
                &mut outstanding,
                recorded.followers(None),
            )
            .err()
            .unwrap_or_else(|| feed(recorded, &mut sup, &mut decisions, &mut outstanding))
        }
    };
    let first_difference = first_difference(&recorded.decisions, &decisions);
    let record = sup.record();
    let same_end = match ending {
        Ending::Finished(state) => state == recorded.record.state,
        _ => first_difference.is_none(),
    };
    WhatIf {
        first_difference,
        failure: record.and_then(|r| r.failure.as_ref().map(|f| f.reason.clone())),
        ending,
        recorded_state: recorded.record.state,
        recorded_tokens: recorded.record.usage.tokens,
        tokens_used: record.map_or(0, |r| r.usage.tokens),
        same_end,
    }
}

/// Answers requests with recorded answers until the run ends or a request has none.
fn feed(
    recorded: &Recorded,
    sup: &mut Supervisor,
    decisions: &mut Vec<Decision>,
    outstanding: &mut Option<Asked>,
) -> Ending {
    let mut seen: FxHashMap<Asked, u32> = FxHashMap::default();
    loop {
        if sup.is_finished() {
            return Ending::Finished(sup.state());
        }
        let Some(asked) = outstanding.take() else {
            return Ending::Stalled {
                step: decisions.len(),
            };
        };
        let n = seen.entry(asked.clone()).or_default();
        let key = (asked, *n);
        *n += 1;
        let Some(&index) = recorded.answers.get(&key) else {
            // The request is the last decision made.
            return match decisions.last() {
                Some(decision) => Ending::NeedsUnrecorded {
                    step: decisions.len(),
                    decision: decision.clone(),
                },
                None => Ending::Stalled { step: 0 },
            };
        };
        let inputs =
            std::iter::once(&recorded.inputs[index]).chain(recorded.followers(Some(index)));
        if let Err(ending) = answer(sup, decisions, outstanding, inputs) {
            return ending;
        }
    }
}

/// Feeds `inputs` (an answer and its followers) until the run ends.
fn answer<'a>(
    sup: &mut Supervisor,
    decisions: &mut Vec<Decision>,
    outstanding: &mut Option<Asked>,
    inputs: impl Iterator<Item = &'a Input>,
) -> Result<(), Ending> {
    for input in inputs {
        if sup.is_finished() {
            break;
        }
        if let Err(e) = sup.handle(input.clone()) {
            return Err(Ending::Refused {
                step: decisions.len(),
                reason: format!("recorded input `{}`: {e}", input.kind()),
            });
        }
        drain(sup, decisions, outstanding);
    }
    Ok(())
}

fn first_difference(recorded: &[Decision], now: &[Decision]) -> Option<Difference> {
    let differ = recorded
        .iter()
        .zip(now)
        .position(|(a, b)| a != b)
        .unwrap_or(recorded.len().min(now.len()));
    if differ == recorded.len() && differ == now.len() {
        return None;
    }
    Some(Difference {
        step: differ + 1,
        recorded: recorded.get(differ).cloned(),
        now: now.get(differ).cloned(),
    })
}
