//! A run's journal read for verification: every line's hash and the chain's verdict,
//! the binding checked against the start, and the inputs re-applied to a fresh
//! Supervisor with its actions kept (the patches it asked to apply, the snapshots).

use autopack_core::ids::{CommitId, PhaseId, RunId, TierId};
use autopack_core::journal::chain::{ChainCheck, Digest, Genesis};
use autopack_core::journal::{JournalContents, RunStore};

use crate::driver::{DriverError, JournalEntry, run_binding};
use crate::supervisor::{Action, CiReport, Input, Supervisor, SupervisorConfig};

/// A patch the run applied: what the Supervisor asked the host to apply, and the
/// candidate commit the journal says it became.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedPatch {
    /// The phase.
    pub phase_id: PhaseId,
    /// The attempt that wrote it.
    pub attempt: u32,
    /// The patch text.
    pub patch: String,
    /// The candidate commit.
    pub commit: CommitId,
    /// The journal entry (from 1) that recorded the commit.
    pub entry: usize,
}

/// A snapshot the run made: the integration branch moved to `commit` and tagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedSnapshot {
    /// The phase.
    pub phase_id: PhaseId,
    /// Its tier.
    pub tier_id: TierId,
    /// The commit.
    pub commit: CommitId,
    /// The tag's short name (`autonomous/{run}/tier-{t}/phase-{p}`).
    pub tag: String,
}

/// What a run's journal says, re-derived without trusting any stored view.
#[derive(Debug)]
pub struct RecordedJournal {
    /// The run.
    pub run_id: RunId,
    /// The Supervisor after every entry (each input handled, not replayed quietly).
    pub supervisor: Supervisor,
    /// The chain as checked, up to the first break.
    pub chain: ChainCheck,
    /// The hash of every line, in order (`Autopack-Journal` trailers name one).
    pub line_hashes: Vec<Digest>,
    /// Where the journal could not be followed: the entry (from 1) and why. Everything
    /// above is as of the entry before it.
    pub broken_at: Option<(usize, String)>,
    /// Whether the first line's binding is this run's plan, ruleset and strategy
    /// (`None`: the journal binds nothing).
    pub binding_matches: Option<bool>,
    /// Every patch applied, in order.
    pub applied: Vec<AppliedPatch>,
    /// Every snapshot, in order: the integration branch's history.
    pub snapshots: Vec<RecordedSnapshot>,
    /// Every CI report, with its phase, in order.
    pub ci_reports: Vec<(PhaseId, CiReport)>,
    /// Every Auditor verdict, with its phase and attempt, in order.
    pub verdicts: Vec<(PhaseId, u32, String)>,
}

impl RecordedJournal {
    /// Reads `run_id`'s journal from `store`.
    ///
    /// # Errors
    /// [`DriverError::Journal`] when the store fails; [`DriverError::NothingToResume`]
    /// when there is no journal. A journal that breaks is not an error: see
    /// [`RecordedJournal::broken_at`].
    pub fn read<S: RunStore>(
        store: &mut S,
        run_id: &RunId,
    ) -> Result<RecordedJournal, DriverError> {
        let contents = store.read(run_id).map_err(DriverError::store)?;
        if contents.is_empty() {
            return Err(DriverError::NothingToResume(run_id.clone()));
        }
        Ok(RecordedJournal::from_contents(run_id, &contents))
    }

    /// Reads a journal's contents.
    pub fn from_contents(run_id: &RunId, contents: &JournalContents) -> RecordedJournal {
        let mut recorded = RecordedJournal {
            run_id: run_id.clone(),
            supervisor: Supervisor::new(),
            chain: ChainCheck::new(Genesis::Binding),
            line_hashes: Vec::with_capacity(contents.len()),
            broken_at: None,
            binding_matches: None,
            applied: Vec::new(),
            snapshots: Vec::new(),
            ci_reports: Vec::new(),
            verdicts: Vec::new(),
        };
        let mut config = SupervisorConfig::default();
        let mut asked: Option<Action> = None;
        for (index, line) in contents.entries().enumerate() {
            let entry = index + 1;
            let sealed = match crate::driver::parse_journal_line(run_id, index, line) {
                Ok(sealed) => sealed,
                Err(e) => {
                    recorded.broken_at = Some((entry, e.to_string()));
                    break;
                }
            };
            if let Err(e) = recorded.chain.check(line, &sealed.links) {
                recorded.broken_at = Some((entry, e.to_string()));
                break;
            }
            recorded.line_hashes.push(Digest::of(line.as_bytes()));
            let handled = match sealed.entry {
                JournalEntry::Config(c) => {
                    config = c;
                    Ok(())
                }
                JournalEntry::Input(input) => {
                    if let Input::Start { plan, strategy, .. } = &input {
                        recorded.binding_matches = recorded
                            .chain
                            .binding()
                            .map(|bound| run_binding(plan, strategy).is_ok_and(|b| &b == bound));
                    }
                    recorded.note(&input, asked.take(), entry);
                    match input {
                        start @ Input::Start { .. } => {
                            recorded.supervisor.start_with(start, config)
                        }
                        input => recorded.supervisor.handle(input),
                    }
                }
            };
            if let Err(e) = handled {
                recorded.broken_at = Some((entry, format!("the Supervisor refuses it: {e}")));
                break;
            }
            while let Some(action) = recorded.supervisor.poll_action() {
                if matches!(action, Action::ApplyPatch(_) | Action::CreateSnapshot(_)) {
                    asked = Some(action);
                }
            }
        }
        recorded
    }

    /// Keeps what `input` (answering `asked`) tells about the run's commits and checks.
    fn note(&mut self, input: &Input, asked: Option<Action>, entry: usize) {
        match (input, asked) {
            (Input::PatchApplied { commit, .. }, Some(Action::ApplyPatch(request))) => {
                self.applied.push(AppliedPatch {
                    phase_id: request.phase_id,
                    attempt: request.attempt,
                    patch: request.patch,
                    commit: commit.clone(),
                    entry,
                });
            }
            (Input::SnapshotCreated { .. }, Some(Action::CreateSnapshot(request))) => {
                self.snapshots.push(RecordedSnapshot {
                    phase_id: request.phase_id,
                    tier_id: request.tier_id,
                    commit: request.commit,
                    tag: request.tag,
                });
            }
            (
                Input::CiFinished {
                    phase_id, report, ..
                },
                _,
            ) => {
                self.ci_reports.push((phase_id.clone(), report.clone()));
            }
            (
                Input::AuditorFinished {
                    phase_id,
                    attempt,
                    outcome,
                    ..
                },
                _,
            ) => {
                let verdict = match outcome {
                    crate::supervisor::AgentOutcome::Returned(result) => {
                        serde_json::to_value(result.recommendation)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    }
                    crate::supervisor::AgentOutcome::Failed { .. } => "failed".to_owned(),
                };
                self.verdicts.push((phase_id.clone(), *attempt, verdict));
            }
            _ => {}
        }
    }

    /// How many lines were followed.
    pub fn entries(&self) -> usize {
        self.line_hashes.len()
    }
}
