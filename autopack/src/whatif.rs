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

/// One decision of a run, in a form two runs can be compared by: what the Supervisor
/// asked for, of which phase and attempt. Checkpoints and issue recording are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Decision {
    /// A Builder attempt.
    DispatchBuilder {
        /// The phase.
        phase_id: PhaseId,
        /// The attempt, from 1.
        attempt: u32,
    },
    /// An Auditor attempt.
    RequestAudit {
        /// The phase.
        phase_id: PhaseId,
        /// The attempt, from 1.
        attempt: u32,
    },
    /// A patch through the gate.
    ApplyPatch {
        /// The phase.
        phase_id: PhaseId,
        /// Who wrote it.
        role: AttemptRole,
        /// The attempt that wrote it.
        attempt: u32,
    },
    /// A CI run on the phase's candidate.
    RunCi {
        /// The phase.
        phase_id: PhaseId,
    },
    /// The phase's snapshot.
    CreateSnapshot {
        /// The phase.
        phase_id: PhaseId,
    },
    /// The incident pack of a failed run.
    WriteIncidentPack,
    /// The end of the run.
    Finished {
        /// Its terminal state.
        state: RunState,
    },
}

impl Decision {
    /// The decision an action stands for; `None` for checkpoints and issue recording.
    pub fn of(action: &Action) -> Option<Decision> {
        Some(match action {
            Action::DispatchBuilder(r) => Decision::DispatchBuilder {
                phase_id: r.phase_id.clone(),
                attempt: r.attempt,
            },
            Action::RequestAudit(r) => Decision::RequestAudit {
                phase_id: r.phase_id.clone(),
                attempt: r.attempt,
            },
            Action::ApplyPatch(r) => Decision::ApplyPatch {
                phase_id: r.phase_id.clone(),
                role: r.role,
                attempt: r.attempt,
            },
            Action::RunCi(r) => Decision::RunCi {
                phase_id: r.phase_id.clone(),
            },
            Action::CreateSnapshot(r) => Decision::CreateSnapshot {
                phase_id: r.phase_id.clone(),
            },
            Action::WriteIncidentPack => Decision::WriteIncidentPack,
            Action::Finished { state } => Decision::Finished { state: *state },
            Action::RecordIssues { .. } | Action::Checkpoint(_) => return None,
        })
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::DispatchBuilder { phase_id, attempt } => {
                write!(f, "builder attempt {attempt} of phase {phase_id}")
            }
            Decision::RequestAudit { phase_id, attempt } => {
                write!(f, "auditor attempt {attempt} of phase {phase_id}")
            }
            Decision::ApplyPatch {
                phase_id,
                role,
                attempt,
            } => {
                let role = match role {
                    AttemptRole::Builder => "builder",
                    AttemptRole::Auditor => "auditor",
                };
                write!(
                    f,
                    "the patch of {role} attempt {attempt} of phase {phase_id} at the gate"
                )
            }
            Decision::RunCi { phase_id } => write!(f, "CI on phase {phase_id}"),
            Decision::CreateSnapshot { phase_id } => {
                write!(f, "the snapshot of phase {phase_id}")
            }
            Decision::WriteIncidentPack => f.write_str("the incident pack"),
            Decision::Finished { state } => write!(f, "the end in {state}"),
        }
    }
}

/// The request a recorded answer answered: what [`what_if`] matches a new request by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Asked {
    Builder(PhaseId, u32),
    Auditor(PhaseId, u32),
    /// Phase, author (0 Builder, 1 Auditor), attempt.
    Apply(PhaseId, u8, u32),
    Ci(PhaseId, CommitId),
    Snapshot(PhaseId, CommitId),
}

impl Asked {
    fn of(action: &Action) -> Option<Asked> {
        Some(match action {
            Action::DispatchBuilder(r) => Asked::Builder(r.phase_id.clone(), r.attempt),
            Action::RequestAudit(r) => Asked::Auditor(r.phase_id.clone(), r.attempt),
            Action::ApplyPatch(r) => Asked::Apply(
                r.phase_id.clone(),
                match r.role {
                    AttemptRole::Builder => 0,
                    AttemptRole::Auditor => 1,
                },
                r.attempt,
            ),
            Action::RunCi(r) => Asked::Ci(r.phase_id.clone(), r.commit.clone()),
            Action::CreateSnapshot(r) => Asked::Snapshot(r.phase_id.clone(), r.commit.clone()),
            _ => return None,
        })
    }
}

/// A request and how many times the same request came before it (the k-th CI run of one
/// candidate gets the k-th recorded answer).
type AnswerKey = (Asked, u32);

/// Whether `input` answers a request (rather than arriving on its own).
fn is_answer(input: &Input) -> bool {
    matches!(
        input,
        Input::BuilderFinished { .. }
            | Input::AuditorFinished { .. }
            | Input::PatchApplied { .. }
            | Input::PatchRejected { .. }
            | Input::CiFinished { .. }
            | Input::SnapshotCreated { .. }
    )
}

/// A recorded run, read from its journal entries, with the decisions it made.
#[derive(Debug, Clone)]
pub struct Recorded {
    config: SupervisorConfig,
    at: DateTime<Utc>,
    plan: Plan,
    strategy: Strategy,
    backlog: ProjectBacklog,
    /// Every input after the start, in order.
    inputs: Vec<Input>,
    /// Where in `inputs` the answer to each request is.
    answers: FxHashMap<AnswerKey, usize>,
    decisions: Vec<Decision>,
    record: RunRecord,
}

impl Recorded {
    /// Reads a run from its journal entries: an optional configuration, the start, then
    /// every input in order. The inputs are replayed through a fresh Supervisor (with
    /// [`Supervisor::handle`], so that every action is seen) to learn the run's decisions,
    /// its end and which request each answer answered.
    ///
    /// # Errors
    /// [`WhatIfError::NoStart`] without a start; [`WhatIfError::OutOfPlace`] for an input
    /// before the start, a second start, or a configuration after the first entry;
    /// [`WhatIfError::Refused`] for an input the Supervisor refuses.
    pub fn from_entries(entries: Vec<JournalEntry>) -> Result<Recorded, WhatIfError> {
        let total = entries.len();
        let mut config = None;
        let mut entries = entries.into_iter().enumerate();
        let start = loop {
            let Some((index, entry)) = entries.next() else {
                return Err(WhatIfError::NoStart { entries: total });
            };
            match entry {
                JournalEntry::Config(c) if config.is_none() && index == 0 => config = Some(c),
                JournalEntry::Config(_) => {
                    return Err(WhatIfError::OutOfPlace {
                        entry: index + 1,
                        kind: "config",
                        why: "the configuration is the journal's first entry, and its only one",
                    });
                }
                JournalEntry::Input(Input::Start {
                    at,
                    plan,
                    strategy,
                    backlog,
                }) => break (index, at, plan, *strategy, *backlog),
                JournalEntry::Input(input) => {
                    return Err(WhatIfError::OutOfPlace {
                        entry: index + 1,
                        kind: input.kind(),
                        why: "an input before the run's start",
                    });
                }
            }
        };
        let config = config.unwrap_or_default();
        let (start_index, at, plan, strategy, backlog) = start;
        let mut sup = Supervisor::new();
        let start = Input::Start {
            at,
            plan: plan.clone(),
            strategy: Box::new(strategy.clone()),
            backlog: Box::new(backlog.clone()),
        };
        sup.start_with(start, config)
            .map_err(|source| WhatIfError::Refused {
                entry: start_index + 1,
                kind: "start",
                source,
            })?;
        let mut decisions = Vec::new();
        let mut outstanding = None;
        drain(&mut sup, &mut decisions, &mut outstanding);
        let mut inputs = Vec::with_capacity(total.saturating_sub(start_index + 1));
        let mut answers = FxHashMap::default();
        let mut seen: FxHashMap<Asked, u32> = FxHashMap::default();
        for (index, entry) in entries {
            let input = match entry {
                JournalEntry::Input(Input::Start { .. }) => {
                    return Err(WhatIfError::OutOfPlace {
                        entry: index + 1,
                        kind: "start",
                        why: "a second start",
                    });
                }
                JournalEntry::Input(input) => input,
                JournalEntry::Config(_) => {
                    return Err(WhatIfError::OutOfPlace {
                        entry: index + 1,
                        kind: "config",
                        why: "a configuration after the run's start",
                    });
                }
            };
            let kind = input.kind();
            let answer = is_answer(&input);
            sup.handle(input.clone())
                .map_err(|source| WhatIfError::Refused {
                    entry: index + 1,
                    kind,
                    source,
                })?;
            // The Supervisor accepted it, so an answer answered the outstanding request.
            if answer && let Some(asked) = outstanding.take() {
                let n = seen.entry(asked.clone()).or_default();
                answers.insert((asked, *n), inputs.len());
                *n += 1;
            }
            inputs.push(input);
            drain(&mut sup, &mut decisions, &mut outstanding);
        }
        let Some(record) = sup.record().cloned() else {
            return Err(WhatIfError::NoStart { entries: total });
        };
        Ok(Recorded {
            config,
            at,
            plan,
            strategy,
            backlog,
            inputs,
            answers,
            decisions,
            record,
        })
    }

    /// The run's id.
    pub fn run_id(&self) -> &RunId {
        &self.plan.run.run_id
    }

    /// The Supervisor's configuration the run had.
    pub fn config(&self) -> SupervisorConfig {
        self.config
    }

    /// When the run started.
    pub fn started_at(&self) -> DateTime<Utc> {
        self.at
    }

    /// The run's plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The strategy the run was frozen with.
    pub fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    /// The project backlog before the run.
    pub fn backlog(&self) -> &ProjectBacklog {
        &self.backlog
    }

    /// Every input after the start, in order.
    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    /// The run's decisions, in order.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// The run's record at the end of the journal.
    pub fn record(&self) -> &RunRecord {
        &self.record
    }

    /// The run's state at the end of the journal (terminal for a finished run).
    pub fn state(&self) -> RunState {
        self.record.state
    }

    /// The inputs that followed the one at `index` (or the start, for `None`) without
    /// answering anything.
    fn followers(&self, index: Option<usize>) -> impl Iterator<Item = &Input> {
        let from = index.map_or(0, |i| i + 1);
        self.inputs[from..].iter().take_while(|i| !is_answer(i))
    }
}

/// Drains `sup`'s actions into decisions, noting the request that awaits an answer.
fn drain(sup: &mut Supervisor, decisions: &mut Vec<Decision>, outstanding: &mut Option<Asked>) {
    while let Some(action) = sup.poll_action() {
        if let Some(asked) = Asked::of(&action) {
            *outstanding = Some(asked);
        }
        if let Some(decision) = Decision::of(&action) {
            decisions.push(decision);
        }
    }
}

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

/// Runs that went from one end state to another under the new strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// The recorded end state.
    pub from: RunState,
    /// The what-if end state.
    pub to: RunState,
    /// How many runs.
    pub runs: usize,
    /// Which, in the order given.
    pub run_ids: Vec<RunId>,
}

/// What-if results over many runs, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WhatIfSummary {
    /// Runs replayed.
    pub runs: usize,
    /// Runs that ended the same ([`WhatIf::same_end`]).
    pub same_end: usize,
    /// Runs that finished in another state.
    pub ended_differently: usize,
    /// Those, by state transition, in state order.
    pub transitions: Vec<Transition>,
    /// Runs that would have needed agent or CI work never recorded.
    pub needs_unrecorded: usize,
    /// Which.
    pub needs_unrecorded_runs: Vec<RunId>,
    /// Runs that stalled or were refused under the new strategy.
    pub incomplete: usize,
    /// Which.
    pub incomplete_runs: Vec<RunId>,
    /// Runs with at least one decision other than recorded (whatever their end).
    pub decided_differently: usize,
}

/// Counts `results`: how many runs ended the same, differently (by transition), or needed
/// work never recorded.
pub fn summarise(results: &[(RunId, WhatIf)]) -> WhatIfSummary {
    let mut summary = WhatIfSummary {
        runs: results.len(),
        ..WhatIfSummary::default()
    };
    let mut transitions: BTreeMap<(RunState, RunState), Vec<RunId>> = BTreeMap::new();
    for (run_id, result) in results {
        if result.first_difference.is_some() {
            summary.decided_differently += 1;
        }
        if result.same_end {
            summary.same_end += 1;
            continue;
        }
        match &result.ending {
            Ending::Finished(state) => {
                summary.ended_differently += 1;
                transitions
                    .entry((result.recorded_state, *state))
                    .or_default()
                    .push(run_id.clone());
            }
            Ending::NeedsUnrecorded { .. } => {
                summary.needs_unrecorded += 1;
                summary.needs_unrecorded_runs.push(run_id.clone());
            }
            Ending::Stalled { .. } | Ending::Refused { .. } => {
                summary.incomplete += 1;
                summary.incomplete_runs.push(run_id.clone());
            }
        }
    }
    summary.transitions = transitions
        .into_iter()
        .map(|((from, to), run_ids)| Transition {
            from,
            to,
            runs: run_ids.len(),
            run_ids,
        })
        .collect();
    summary
}

/// Runs the text of a summary names per line before it says how many more.
const LISTED_RUNS: usize = 10;

impl WhatIfSummary {
    /// The summary for a person, over several lines.
    pub fn render_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for WhatIfSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first few runs of each list (the JSON form has them all).
        let list = |ids: &[RunId]| {
            let mut text = ids
                .iter()
                .take(LISTED_RUNS)
                .map(RunId::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            if ids.len() > LISTED_RUNS {
                text.push_str(&format!(", … {} more", ids.len() - LISTED_RUNS));
            }
            text
        };
        writeln!(
            f,
            "{} {}: {} ended the same, {} ended differently, {} needed work never recorded",
            self.runs,
            if self.runs == 1 { "run" } else { "runs" },
            self.same_end,
            self.ended_differently,
            self.needs_unrecorded
        )?;
        for t in &self.transitions {
            writeln!(
                f,
                "  {} → {}: {} ({})",
                t.from,
                t.to,
                t.runs,
                list(&t.run_ids)
            )?;
        }
        if self.needs_unrecorded > 0 {
            writeln!(
                f,
                "  needed work never recorded: {}",
                list(&self.needs_unrecorded_runs)
            )?;
        }
        if self.incomplete > 0 {
            writeln!(
                f,
                "  stalled or refused: {} ({})",
                self.incomplete,
                list(&self.incomplete_runs)
            )?;
        }
        writeln!(
            f,
            "  decided differently somewhere: {} of {}",
            self.decided_differently, self.runs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::{AgentOutcome, CiReport};
    use autopack_core::message::BuilderResult;
    use autopack_core::record::CiVerdict;
    use chrono::{Duration, TimeZone};

    fn plan() -> Plan {
        Plan::from_json(
            r#"{
              "run": {"run_id": "r1"},
              "tiers": [{"tier_id": "t1", "tier_index": 0, "name": "One"}],
              "phases": [
                {"phase_id": "p1", "phase_index": 0, "tier_id": "t1", "name": "A",
                 "task_category": "tests"},
                {"phase_id": "p2", "phase_index": 1, "tier_id": "t1", "name": "B",
                 "task_category": "tests"}
              ]}"#,
            "plan.json",
        )
        .expect("the plan parses")
    }

    fn ruleset(json: &str) -> Ruleset {
        Ruleset::from_json(json, "ruleset.json").expect("the ruleset parses")
    }

    /// The journal entries of a run of `plan()` under `ruleset`: p1's first Builder
    /// attempt fails when `fail_first`, every other one succeeds with 1,000 tokens.
    fn entries(ruleset: &Ruleset, fail_first: bool) -> Vec<JournalEntry> {
        let plan = plan();
        let strategy =
            autopack_strategy::compile(ruleset, &Default::default(), &plan, &Default::default())
                .expect("compiles");
        let mut now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let start = Input::Start {
            at: now,
            plan,
            strategy: Box::new(strategy),
            backlog: Box::default(),
        };
        let mut entries = vec![
            JournalEntry::Config(SupervisorConfig::default()),
            JournalEntry::Input(start.clone()),
        ];
        let mut sup = Supervisor::new();
        sup.handle(start).unwrap();
        while let Some(action) = sup.poll_action() {
            now += Duration::seconds(10);
            let input = match action {
                Action::DispatchBuilder(r) => {
                    let result = if fail_first && r.attempt == 1 && r.phase_id.as_str() == "p1" {
                        BuilderResult::failed(r.phase_id.clone(), "no")
                    } else {
                        BuilderResult::success(r.phase_id.clone(), "diff --git a/x b/x\n")
                    };
                    Input::BuilderFinished {
                        at: now,
                        phase_id: r.phase_id,
                        attempt: r.attempt,
                        outcome: AgentOutcome::Returned(result.with_tokens(1_000)),
                    }
                }
                Action::ApplyPatch(r) => Input::PatchApplied {
                    at: now,
                    phase_id: r.phase_id,
                    commit: CommitId::new("c".repeat(40)).unwrap(),
                    holds: vec![],
                },
                Action::RunCi(r) => Input::CiFinished {
                    at: now,
                    phase_id: r.phase_id,
                    report: CiReport::new(CiVerdict::Green, 1),
                },
                Action::CreateSnapshot(r) => Input::SnapshotCreated {
                    at: now,
                    phase_id: r.phase_id,
                    tag: r.tag,
                },
                _ => continue,
            };
            entries.push(JournalEntry::Input(input.clone()));
            sup.handle(input).unwrap();
        }
        entries
    }

    fn builtin() -> Ruleset {
        ruleset(r#"{"project_id": "builtin"}"#)
    }

    #[test]
    fn a_run_reads_back_with_its_decisions_and_end() {
        let recorded = Recorded::from_entries(entries(&builtin(), true)).unwrap();
        assert_eq!(recorded.state(), RunState::DoneSuccess);
        assert_eq!(recorded.run_id().as_str(), "r1");
        assert_eq!(recorded.record().usage.tokens, 3_000);
        let p1 = PhaseId::new("p1").unwrap();
        assert_eq!(
            recorded.decisions()[..3],
            [
                Decision::DispatchBuilder {
                    phase_id: p1.clone(),
                    attempt: 1
                },
                Decision::DispatchBuilder {
                    phase_id: p1.clone(),
                    attempt: 2
                },
                Decision::ApplyPatch {
                    phase_id: p1,
                    role: AttemptRole::Builder,
                    attempt: 2
                },
            ]
        );
        assert_eq!(
            recorded.decisions().last(),
            Some(&Decision::Finished {
                state: RunState::DoneSuccess
            })
        );
        // Checkpoints are no decisions: 2 phases × (dispatch, apply, CI, snapshot), one
        // more dispatch, the end.
        assert_eq!(recorded.decisions().len(), 10);
    }

    #[test]
    fn the_same_ruleset_decides_the_same() {
        let recorded = Recorded::from_entries(entries(&builtin(), true)).unwrap();
        let strategy = strategy_under(&recorded, &builtin()).unwrap();
        assert_eq!(&strategy, recorded.strategy());
        let result = what_if(&recorded, strategy);
        assert_eq!(result.first_difference, None);
        assert_eq!(result.ending, Ending::Finished(RunState::DoneSuccess));
        assert!(result.same_end);
        assert_eq!(result.tokens_used, 3_000);
        assert!(
            result
                .render_text()
                .starts_with("ends the same: DONE_SUCCESS\n")
        );
    }

    #[test]
    fn a_token_cap_below_the_run_s_spending_ends_it_early() {
        let recorded = Recorded::from_entries(entries(&builtin(), true)).unwrap();
        let tight = ruleset(r#"{"project_id": "builtin", "run_token_cap": 2500}"#);
        let result = what_if(&recorded, strategy_under(&recorded, &tight).unwrap());
        assert_eq!(
            result.ending,
            Ending::Finished(RunState::DoneFailedTokenCapExceeded)
        );
        assert!(!result.same_end);
        let difference = result.first_difference.clone().unwrap();
        // p1: two dispatches, apply, CI, snapshot; p2's dispatch; then the third 1,000
        // tokens breach the cap where the recorded run applied p2's patch.
        assert_eq!(difference.step, 7);
        assert_eq!(
            difference.recorded,
            Some(Decision::ApplyPatch {
                phase_id: PhaseId::new("p2").unwrap(),
                role: AttemptRole::Builder,
                attempt: 1
            })
        );
        assert_eq!(difference.now, Some(Decision::WriteIncidentPack));
        let text = result.render_text();
        assert!(
            text.contains("DONE_SUCCESS → DONE_FAILED_TOKEN_CAP_EXCEEDED"),
            "{text}"
        );
        assert!(text.contains("first difference at decision 7"), "{text}");
        assert!(result.failure.is_some());
    }

    #[test]
    fn one_attempt_fewer_asks_for_an_auditor_never_called() {
        let recorded = Recorded::from_entries(entries(&builtin(), true)).unwrap();
        let fewer = ruleset(
            r#"{"project_id": "builtin", "category_defaults": {"tests": {"max_builder_attempts": 1}}}"#,
        );
        let result = what_if(&recorded, strategy_under(&recorded, &fewer).unwrap());
        let audit = Decision::RequestAudit {
            phase_id: PhaseId::new("p1").unwrap(),
            attempt: 1,
        };
        assert_eq!(
            result.ending,
            Ending::NeedsUnrecorded {
                step: 2,
                decision: audit.clone()
            }
        );
        assert_eq!(result.first_difference.unwrap().now, Some(audit));
        assert!(!result.same_end);
    }

    #[test]
    fn journals_that_are_no_run_are_refused_by_name() {
        let good = entries(&builtin(), false);
        assert_eq!(
            Recorded::from_entries(vec![]).unwrap_err(),
            WhatIfError::NoStart { entries: 0 }
        );
        assert_eq!(
            Recorded::from_entries(good[..1].to_vec()).unwrap_err(),
            WhatIfError::NoStart { entries: 1 }
        );
        // An input before the start.
        let mut early = good.clone();
        early.swap(1, 2);
        let err = Recorded::from_entries(early).unwrap_err();
        assert!(
            matches!(
                err,
                WhatIfError::OutOfPlace {
                    entry: 2,
                    kind: "builder_finished",
                    ..
                }
            ),
            "{err}"
        );
        // A configuration after the start.
        let mut late = good.clone();
        late.insert(3, JournalEntry::Config(SupervisorConfig::default()));
        let err = Recorded::from_entries(late).unwrap_err();
        assert!(
            matches!(
                err,
                WhatIfError::OutOfPlace {
                    entry: 4,
                    kind: "config",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("after the run's start"), "{err}");
        // A second start.
        let mut twice = good.clone();
        twice.push(good[1].clone());
        assert!(matches!(
            Recorded::from_entries(twice).unwrap_err(),
            WhatIfError::OutOfPlace { kind: "start", .. }
        ));
        // An answer given twice.
        let mut again = good.clone();
        again.insert(3, good[2].clone());
        let err = Recorded::from_entries(again).unwrap_err();
        assert!(
            matches!(
                err,
                WhatIfError::Refused {
                    entry: 4,
                    kind: "builder_finished",
                    ..
                }
            ),
            "{err}"
        );
        // A journal without its configuration line reads with the default one.
        let bare = Recorded::from_entries(good[1..].to_vec()).unwrap();
        assert_eq!(bare.config(), SupervisorConfig::default());
    }

    #[test]
    fn an_unfinished_recording_replays_to_where_it_stopped() {
        let mut cut = entries(&builtin(), false);
        cut.truncate(4); // configuration, start, p1's builder and its patch
        let recorded = Recorded::from_entries(cut).unwrap();
        assert!(!recorded.state().is_terminal());
        let result = what_if(&recorded, strategy_under(&recorded, &builtin()).unwrap());
        assert!(matches!(
            result.ending,
            Ending::NeedsUnrecorded { step: 3, .. }
        ));
        assert_eq!(result.first_difference, None);
        assert!(result.same_end);
    }

    #[test]
    fn inputs_that_answer_nothing_follow_the_answer_they_followed() {
        let mut journal = entries(&builtin(), true);
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 1).unwrap();
        // A tick right after the start, and a host abort after p1's snapshot.
        journal.insert(2, JournalEntry::Input(Input::Tick { at }));
        let snapshot = journal
            .iter()
            .position(|e| matches!(e, JournalEntry::Input(Input::SnapshotCreated { .. })))
            .unwrap();
        journal.truncate(snapshot + 1);
        journal.push(JournalEntry::Input(Input::Abort {
            at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 5, 0).unwrap(),
            reason: "the operator stopped it".into(),
        }));
        let recorded = Recorded::from_entries(journal).unwrap();
        assert_eq!(recorded.state(), RunState::DoneFailedManualAbort);
        let same = what_if(&recorded, strategy_under(&recorded, &builtin()).unwrap());
        assert_eq!(
            same.ending,
            Ending::Finished(RunState::DoneFailedManualAbort)
        );
        assert_eq!(same.first_difference, None);
        assert!(same.failure.unwrap().contains("the operator stopped it"));
        // Under a cap the second attempt breaks, the snapshot is never taken, and the
        // abort that followed it never comes.
        let tight = ruleset(r#"{"project_id": "builtin", "run_token_cap": 1500}"#);
        let capped = what_if(&recorded, strategy_under(&recorded, &tight).unwrap());
        assert_eq!(
            capped.ending,
            Ending::Finished(RunState::DoneFailedTokenCapExceeded)
        );
        assert!(!capped.same_end);
    }

    #[test]
    fn a_strategy_for_another_plan_is_refused_at_the_start() {
        let recorded = Recorded::from_entries(entries(&builtin(), false)).unwrap();
        let mut other = recorded.strategy().clone();
        other.run_id = RunId::new("r2").unwrap();
        let result = what_if(&recorded, other);
        assert!(
            matches!(&result.ending, Ending::Refused { step: 0, reason } if reason.contains("r2")),
            "{:?}",
            result.ending
        );
        assert!(!result.same_end);
        assert_eq!(result.first_difference.map(|d| d.step), Some(1));
    }

    #[test]
    fn differences_are_found_in_either_sequence() {
        let p = |s: &str| PhaseId::new(s).unwrap();
        let ci = |s: &str| Decision::RunCi { phase_id: p(s) };
        let a = vec![ci("p1"), ci("p2")];
        assert_eq!(first_difference(&a, &a), None);
        assert_eq!(
            first_difference(&a, &a[..1]),
            Some(Difference {
                step: 2,
                recorded: Some(ci("p2")),
                now: None
            })
        );
        assert_eq!(
            first_difference(&a[..1], &a),
            Some(Difference {
                step: 2,
                recorded: None,
                now: Some(ci("p2"))
            })
        );
        assert_eq!(first_difference(&a, &[ci("p3")]).map(|d| d.step), Some(1));
    }

    fn result(recorded: RunState, ending: Ending, differs: bool) -> WhatIf {
        let same_end = match &ending {
            Ending::Finished(state) => *state == recorded,
            _ => !differs,
        };
        WhatIf {
            first_difference: differs.then_some(Difference {
                step: 1,
                recorded: None,
                now: None,
            }),
            ending,
            recorded_state: recorded,
            failure: None,
            recorded_tokens: 0,
            tokens_used: 0,
            same_end,
        }
    }

    #[test]
    fn a_summary_counts_each_run_once() {
        let id = |s: &str| RunId::new(s).unwrap();
        let success = RunState::DoneSuccess;
        let capped = RunState::DoneFailedTokenCapExceeded;
        let blocked = RunState::DoneFailedTierBlocked;
        let results = vec![
            (id("a"), result(success, Ending::Finished(success), false)),
            (id("b"), result(success, Ending::Finished(capped), true)),
            (id("c"), result(success, Ending::Finished(capped), true)),
            (id("d"), result(blocked, Ending::Finished(success), true)),
            (
                id("e"),
                result(
                    blocked,
                    Ending::NeedsUnrecorded {
                        step: 1,
                        decision: Decision::WriteIncidentPack,
                    },
                    true,
                ),
            ),
            (id("f"), result(success, Ending::Stalled { step: 3 }, true)),
            (id("g"), result(success, Ending::Finished(success), true)),
        ];
        let summary = summarise(&results);
        assert_eq!(summary.runs, 7);
        assert_eq!(summary.same_end, 2);
        assert_eq!(summary.ended_differently, 3);
        assert_eq!(summary.needs_unrecorded, 1);
        assert_eq!(summary.needs_unrecorded_runs, vec![id("e")]);
        assert_eq!(summary.incomplete, 1);
        assert_eq!(summary.decided_differently, 6);
        assert_eq!(
            summary.transitions,
            vec![
                Transition {
                    from: success,
                    to: capped,
                    runs: 2,
                    run_ids: vec![id("b"), id("c")]
                },
                Transition {
                    from: blocked,
                    to: success,
                    runs: 1,
                    run_ids: vec![id("d")]
                },
            ]
        );
        let text = summary.render_text();
        assert!(
            text.starts_with(
                "7 runs: 2 ended the same, 3 ended differently, 1 needed work never recorded\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("DONE_SUCCESS → DONE_FAILED_TOKEN_CAP_EXCEEDED: 2 (b, c)"),
            "{text}"
        );
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["transitions"][0]["from"], "DONE_SUCCESS");
        assert_eq!(summarise(&[]).runs, 0);
    }

    #[test]
    fn a_what_if_serialises_for_json_output() {
        let recorded = Recorded::from_entries(entries(&builtin(), true)).unwrap();
        let tight = ruleset(r#"{"project_id": "builtin", "run_token_cap": 2500}"#);
        let result = what_if(&recorded, strategy_under(&recorded, &tight).unwrap());
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["ending"]["finished"], "DONE_FAILED_TOKEN_CAP_EXCEEDED");
        assert_eq!(json["first_difference"]["step"], 7);
        assert_eq!(
            json["first_difference"]["recorded"]["decision"],
            "apply_patch"
        );
        assert_eq!(
            json["first_difference"]["now"]["decision"],
            "write_incident_pack"
        );
        assert_eq!(json["same_end"], false);
    }
}
