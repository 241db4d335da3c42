//! A recorded run read from its journal: its inputs, its decisions, and which request
//! each answer answered.

use super::*;

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
pub(super) enum Asked {
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
pub(super) type AnswerKey = (Asked, u32);

/// Whether `input` answers a request (rather than arriving on its own).
pub(super) fn is_answer(input: &Input) -> bool {
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
    pub(super) config: SupervisorConfig,
    pub(super) at: DateTime<Utc>,
    pub(super) plan: Plan,
    pub(super) strategy: Strategy,
    pub(super) backlog: ProjectBacklog,
    /// Every input after the start, in order.
    pub(super) inputs: Vec<Input>,
    /// Where in `inputs` the answer to each request is.
    pub(super) answers: FxHashMap<AnswerKey, usize>,
    pub(super) decisions: Vec<Decision>,
    pub(super) record: RunRecord,
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
    pub(super) fn followers(&self, index: Option<usize>) -> impl Iterator<Item = &Input> {
        let from = index.map_or(0, |i| i + 1);
        self.inputs[from..].iter().take_while(|i| !is_answer(i))
    }
}

/// Drains `sup`'s actions into decisions, noting the request that awaits an answer.
pub(super) fn drain(
    sup: &mut Supervisor,
    decisions: &mut Vec<Decision>,
    outstanding: &mut Option<Asked>,
) {
    while let Some(action) = sup.poll_action() {
        if let Some(asked) = Asked::of(&action) {
            *outstanding = Some(asked);
        }
        if let Some(decision) = Decision::of(&action) {
            decisions.push(decision);
        }
    }
}
