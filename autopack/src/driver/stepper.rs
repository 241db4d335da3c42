//! The driver without its agents: the Supervisor, the journal and where the run stands.
//! Every action is performed here, given the host's parts for the call, so the blocking
//! [`Driver`](super::Driver) and the async driver (feature `tokio`) share one
//! implementation and differ only in how they wait for an agent.

use autopack_core::ids::RunId;
use autopack_core::journal::chain::{Digest, JournalPosition};
use autopack_core::journal::{self as run_journal, RunStore};
use autopack_core::message::{AuditorResult, BuilderResult};

use super::DriverError;
use super::journal::{Begun, JournalEntry, Replayed, begun_with_chain, run_binding};
use super::parts::{ApplyOutcome, Host};
use super::step::{AgentCall, Step};
use crate::supervisor::{
    Action, AgentOutcome, Input, PatchRequest, Supervisor, SupervisorConfig, SupervisorError,
};

/// A run being driven: the Supervisor as of the last input, the journal it is written to,
/// the action due again after a resume, and the agent attempt handed out.
pub(super) struct Stepper<'a, S: RunStore> {
    pub(super) supervisor: Supervisor,
    run_id: RunId,
    store: &'a mut S,
    /// The hash of the journal's last line: what the next one links to.
    prev: Digest,
    /// How many lines the journal holds.
    entries: u64,
    /// An action to perform before asking the Supervisor for more (a resumed run's
    /// outstanding one).
    due: Option<Action>,
    /// The agent attempt handed out and not yet answered.
    pub(super) awaiting: Option<AgentCall>,
    /// [`Stepper::reopen`] found the run finished.
    pub(super) already_finished: bool,
}

impl<'a, S: RunStore> Stepper<'a, S> {
    /// Validates `start`, journals the configuration and the start, and syncs.
    pub(super) fn begin(
        start: Input,
        config: SupervisorConfig,
        store: &'a mut S,
    ) -> Result<Stepper<'a, S>, DriverError> {
        let Input::Start { plan, strategy, .. } = &start else {
            return Err(SupervisorError::NotStarted { got: start.kind() }.into());
        };
        let run_id = plan.run.run_id.clone();
        // Validate before journaling, so a refused start leaves no journal behind.
        let mut supervisor = Supervisor::new();
        supervisor.start_with(start.clone(), config)?;
        let binding = run_binding(plan, strategy)?;
        let (begun, chain) = begun_with_chain(store, &run_id)?;
        let mut prev = binding.genesis();
        let mut entries = chain.len() as u64;
        match (begun, chain.head()) {
            (Begun::Started, _) => return Err(DriverError::RunExists(run_id)),
            // A start that crashed between its two lines is started again: the
            // configuration is not written twice. Its first line binds the run to its
            // plan and strategy, so they must be the same (a journal written before
            // chaining binds nothing).
            (Begun::Configured(existing), Some(head)) => {
                if chain.started().is_some() && chain.binding() != Some(&binding) {
                    return Err(DriverError::Rebound(run_id));
                }
                prev = head;
                if existing != config {
                    run_journal::append_sealed(
                        store,
                        &run_id,
                        &mut prev,
                        None,
                        &JournalEntry::Config(config),
                    )?;
                    entries += 1;
                }
            }
            _ => {
                run_journal::append_sealed(
                    store,
                    &run_id,
                    &mut prev,
                    Some(&binding),
                    &JournalEntry::Config(config),
                )?;
                entries += 1;
            }
        }
        run_journal::append_sealed(store, &run_id, &mut prev, None, &JournalEntry::Input(start))?;
        entries += 1;
        store.sync(&run_id).map_err(DriverError::store)?;
        Ok(Stepper {
            supervisor,
            run_id,
            store,
            prev,
            entries,
            due: None,
            awaiting: None,
            already_finished: false,
        })
    }

    /// Reopens a replayed run: brings the artefacts up to the journal, and makes the
    /// action outstanding at the crash due again (or notes that the run is finished).
    pub(super) fn reopen(
        replayed: Replayed,
        run_id: &RunId,
        store: &'a mut S,
        host: &mut Host<'_>,
    ) -> Result<Stepper<'a, S>, DriverError> {
        let Replayed {
            supervisor,
            recorded,
            chain,
        } = replayed;
        let mut stepper = Stepper {
            supervisor,
            run_id: run_id.clone(),
            store,
            // A replayed journal is never empty.
            prev: chain.head().unwrap_or(Digest::ZERO),
            entries: chain.len() as u64,
            due: None,
            awaiting: None,
            already_finished: false,
        };
        let recovered = match (stepper.supervisor.record(), stepper.supervisor.ledger()) {
            (Some(record), Some(ledger)) => host.artefacts.recover(record, ledger, &recorded),
            _ => Ok(()),
        };
        drop(recorded);
        let finished = stepper.supervisor.is_finished();
        match recovered {
            Err(err) if finished => return Err(DriverError::Artefacts(err)),
            // The run can still be told: it ends as any run whose artefacts fail.
            Err(err) => {
                let input = Input::EnvironmentFailed {
                    at: host.clock.now(),
                    reason: format!("repairing the artefacts after a crash: {err}"),
                };
                stepper.submit(host, input)?;
            }
            Ok(()) if finished => stepper.already_finished = true,
            Ok(()) => {
                stepper.reconcile(host)?;
                if !stepper.supervisor.is_finished() {
                    stepper.due = stepper.supervisor.outstanding();
                }
            }
        }
        Ok(stepper)
    }

    /// Reconciles the integration branch with the journal before a resumed run goes on:
    /// a commit on it that the journal does not know is a policy violation.
    fn reconcile(&mut self, host: &mut Host<'_>) -> Result<(), DriverError> {
        let mut known: Vec<_> = self
            .supervisor
            .record()
            .into_iter()
            .flat_map(|r| r.tiers.iter().flat_map(|t| &t.phases))
            .filter_map(|p| p.commit.clone())
            .collect();
        // A crash between moving the branch and journaling the snapshot leaves the
        // candidate as the tip: the snapshot due again knows it.
        if let Some(Action::CreateSnapshot(request)) = self.supervisor.outstanding() {
            known.push(request.commit);
        }
        let input = match host.applier.reconcile(&known) {
            Ok(unknown) if unknown.is_empty() => return Ok(()),
            Ok(unknown) => Input::PolicyViolation {
                at: host.clock.now(),
                reason: format!(
                    "the integration branch holds what the journal does not: {}",
                    unknown.join("; ")
                ),
            },
            Err(err) => Input::EnvironmentFailed {
                at: host.clock.now(),
                reason: format!("reconciling the integration branch with the journal: {err}"),
            },
        };
        self.submit(host, input)
    }

    /// Performs every action up to the next agent attempt and returns it, or the end.
    pub(super) fn advance(&mut self, host: &mut Host<'_>) -> Result<Step, DriverError> {
        while let Some(action) = self.due.take().or_else(|| self.supervisor.poll_action()) {
            let call = match &action {
                Action::DispatchBuilder(request) => AgentCall::Builder(request.clone()),
                Action::RequestAudit(request) => AgentCall::Auditor(request.clone()),
                _ => {
                    self.perform(host, action)?;
                    continue;
                }
            };
            if let Some(record) = self.supervisor.record() {
                host.observer.action(&action, record);
            }
            self.awaiting = Some(call);
        }
        Ok(match &self.awaiting {
            Some(call) => Step::Agent(call.clone()),
            None => Step::Finished(self.supervisor.state()),
        })
    }

    /// Answers the awaited Builder attempt (the tripwire checked first).
    pub(super) fn builder_finished(
        &mut self,
        host: &mut Host<'_>,
        outcome: AgentOutcome<BuilderResult>,
    ) -> Result<(), DriverError> {
        let Some(AgentCall::Builder(request)) = &self.awaiting else {
            return Err(self.not_awaiting("a Builder result"));
        };
        let input = Input::BuilderFinished {
            at: host.clock.now(),
            phase_id: request.phase_id.clone(),
            attempt: request.attempt,
            outcome,
        };
        self.answer(host, input)
    }

    /// Answers the awaited Auditor attempt (the tripwire checked first).
    pub(super) fn auditor_finished(
        &mut self,
        host: &mut Host<'_>,
        outcome: AgentOutcome<AuditorResult>,
    ) -> Result<(), DriverError> {
        let Some(AgentCall::Auditor(request)) = &self.awaiting else {
            return Err(self.not_awaiting("an Auditor result"));
        };
        let input = Input::AuditorFinished {
            at: host.clock.now(),
            phase_id: request.phase_id.clone(),
            attempt: request.attempt,
            outcome,
        };
        self.answer(host, input)
    }

    /// Feeds an input that answers nothing (abort, issues reported, tick, environment
    /// failed).
    pub(super) fn interject(
        &mut self,
        host: &mut Host<'_>,
        input: Input,
    ) -> Result<(), DriverError> {
        if !matches!(
            input,
            Input::Abort { .. }
                | Input::IssuesReported { .. }
                | Input::Tick { .. }
                | Input::EnvironmentFailed { .. }
        ) {
            return Err(DriverError::NotAwaiting {
                expected: "an input that answers nothing (abort, issues_reported, tick, environment_failed)".into(),
                got: input.kind(),
            });
        }
        self.submit(host, input)?;
        if self.supervisor.is_finished() {
            self.awaiting = None;
        }
        Ok(())
    }

    fn not_awaiting(&self, got: &'static str) -> DriverError {
        DriverError::NotAwaiting {
            expected: match &self.awaiting {
                Some(call) => call.during(),
                None => "no agent attempt".into(),
            },
            got,
        }
    }

    fn answer(&mut self, host: &mut Host<'_>, input: Input) -> Result<(), DriverError> {
        let during = self.awaiting.take().map(|c| c.during()).unwrap_or_default();
        let input = guarded(host, &self.run_id, &during, input);
        self.submit(host, input)
    }

    fn perform(&mut self, host: &mut Host<'_>, action: Action) -> Result<(), DriverError> {
        if let Some(record) = self.supervisor.record() {
            host.observer.action(&action, record);
        }
        let input = match &action {
            // Handed out by `advance`, never performed here.
            Action::DispatchBuilder(_) | Action::RequestAudit(_) => None,
            Action::ApplyPatch(request) => Some(
                match host.applier.apply(&PatchRequest {
                    journal: Some(JournalPosition {
                        entries: self.entries,
                        head: self.prev,
                    }),
                    ..request.clone()
                }) {
                    Ok(ApplyOutcome::Applied { commit, holds }) => Input::PatchApplied {
                        at: host.clock.now(),
                        phase_id: request.phase_id.clone(),
                        commit,
                        holds,
                    },
                    Ok(ApplyOutcome::Rejected { rule, message }) => Input::PatchRejected {
                        at: host.clock.now(),
                        phase_id: request.phase_id.clone(),
                        rule,
                        message,
                    },
                    Err(err) => Input::EnvironmentFailed {
                        at: host.clock.now(),
                        reason: format!("applying the patch of phase {}: {err}", request.phase_id),
                    },
                },
            ),
            Action::RunCi(request) => Some(match host.verifier.verify(request) {
                Ok(report) => Input::CiFinished {
                    at: host.clock.now(),
                    phase_id: request.phase_id.clone(),
                    report,
                },
                Err(err) => Input::EnvironmentFailed {
                    at: host.clock.now(),
                    reason: format!("CI for phase {}: {err}", request.phase_id),
                },
            }),
            Action::CreateSnapshot(request) => Some(match host.applier.snapshot(request) {
                Ok(()) => Input::SnapshotCreated {
                    at: host.clock.now(),
                    phase_id: request.phase_id.clone(),
                    tag: request.tag.clone(),
                },
                Err(err) => Input::EnvironmentFailed {
                    at: host.clock.now(),
                    reason: format!("snapshot of phase {}: {err}", request.phase_id),
                },
            }),
            Action::Checkpoint(checkpoint) => {
                let (Some(record), Some(ledger)) =
                    (self.supervisor.record(), self.supervisor.ledger())
                else {
                    return Ok(());
                };
                match host.artefacts.checkpoint(checkpoint, record, ledger) {
                    Ok(()) => None,
                    Err(err) if !self.supervisor.is_finished() => Some(Input::EnvironmentFailed {
                        at: host.clock.now(),
                        reason: format!("writing artefacts: {err}"),
                    }),
                    Err(err) => return Err(DriverError::Artefacts(err)),
                }
            }
            Action::RecordIssues { at, observations } => {
                match host.artefacts.record_issues(*at, observations) {
                    Ok(()) => None,
                    Err(err) if !self.supervisor.is_finished() => Some(Input::EnvironmentFailed {
                        at: host.clock.now(),
                        reason: format!("recording issues: {err}"),
                    }),
                    Err(err) => return Err(DriverError::Artefacts(err)),
                }
            }
            Action::WriteIncidentPack => {
                if let (Some(record), Some(ledger)) =
                    (self.supervisor.record(), self.supervisor.ledger())
                {
                    host.artefacts
                        .incident(record, ledger)
                        .map_err(DriverError::Artefacts)?;
                }
                None
            }
            Action::Finished { .. } => {
                self.store.sync(&self.run_id).map_err(DriverError::store)?;
                None
            }
        };
        let input = match (&action, input) {
            (Action::RunCi(r), Some(input)) => Some(guarded(
                host,
                &self.run_id,
                &format!("CI of phase {}", r.phase_id),
                input,
            )),
            (_, input) => input,
        };
        if let Some(input) = input {
            self.submit(host, input)?;
        }
        Ok(())
    }

    /// Journals `input`, then applies it.
    fn submit(&mut self, host: &mut Host<'_>, input: Input) -> Result<(), DriverError> {
        run_journal::append_sealed(
            self.store,
            &self.run_id,
            &mut self.prev,
            None,
            &JournalEntry::Input(input.clone()),
        )?;
        self.entries += 1;
        self.supervisor.handle(input.clone())?;
        if let Some(record) = self.supervisor.record() {
            host.observer.input(&input, record);
        }
        Ok(())
    }
}

/// `input` if the tripwire saw nothing `during` the attempt, else the violation.
fn guarded(host: &mut Host<'_>, run_id: &RunId, during: &str, input: Input) -> Input {
    match host.tripwire.check() {
        Ok(changes) if changes.is_empty() => input,
        Ok(changes) => {
            tracing::error!(target: "autopack::tripwire", run_id = %run_id, during = %during, changes = ?changes, "the host repository changed behind the governed path");
            Input::PolicyViolation {
                at: host.clock.now(),
                reason: format!(
                    "the host repository changed during the {during}: {}",
                    changes.join("; ")
                ),
            }
        }
        Err(err) => Input::EnvironmentFailed {
            at: host.clock.now(),
            reason: format!("the tripwire could not read the host repository: {err}"),
        },
    }
}
