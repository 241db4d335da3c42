//! A blocking driver: runs the Supervisor's loop over agent, gate, CI and artefact
//! traits, journaling every input before it is applied.
//!
//! Hosts that want to pump events themselves use [`crate::supervisor::Supervisor`]
//! directly; everyone else implements (or picks) a [`Builder`], an [`Auditor`], an
//! [`Applier`], a [`Verifier`] and [`Artefacts`], and calls [`Driver::run`] or
//! [`Driver::resume`].
//!
//! Whatever an agent returns — garbage, an error, a hang reported as a timeout — reaches
//! the Supervisor as [`AgentOutcome::Failed`], a failed attempt with its reason; it never
//! stops the run. Failures of the host's own machinery (git, the test command that cannot
//! start, the journal) end the run `DONE_FAILED_ENVIRONMENT` where the Supervisor can
//! still be told, and are returned as [`DriverError`] where it cannot.

mod error;
mod journal;
mod parts;
mod step;

pub use error::{DriverError, HostError, HostErrorKind, StoreError};
pub use journal::{Begun, JournalEntry, Replayed, journal_begun, replay_journal, replay_run};
pub use parts::{
    AnsweredElsewhere, Applier, ApplyOutcome, Artefacts, Auditor, Builder, Host, NoArtefacts,
    NoTripwire, Observer, Quiet, RecordedIssue, Tripwire, Verifier,
};
pub use step::{AgentCall, DriveOutcome, Step};

use autopack_core::ids::RunId;
use autopack_core::journal::{self as run_journal, RunStore};
use autopack_core::lifecycle::RunState;
use autopack_core::message::{AuditorResult, BuilderResult};

use crate::supervisor::{
    Action, AgentOutcome, Input, Supervisor, SupervisorConfig, SupervisorError,
};

/// Runs the Supervisor's loop over a [`Host`], journaling to a [`RunStore`].
///
/// [`Driver::run`] and [`Driver::resume`] drive a run to its end, calling the host's
/// Builder and Auditor in turn. A host whose agents answer later, from elsewhere (an HTTP
/// service whose workers pull attempts), opens the driver with [`Driver::begin`] or
/// [`Driver::reopen`] and steps it: [`Driver::advance`] performs everything but agent
/// attempts and stops at the next one; [`Driver::builder_finished`] /
/// [`Driver::auditor_finished`] answer it; [`Driver::interject`] feeds inputs that
/// answer nothing (an abort, issues reported from outside, time passing). Both ways
/// perform every action with the same code.
pub struct Driver<'a, S: RunStore> {
    supervisor: Supervisor,
    run_id: RunId,
    store: &'a mut S,
    host: Host<'a>,
    /// An action to perform before asking the Supervisor for more (a resumed run's
    /// outstanding one).
    due: Option<Action>,
    /// The agent attempt handed out and not yet answered.
    awaiting: Option<AgentCall>,
    /// [`Driver::reopen`] found the run finished.
    already_finished: bool,
}

impl<'a, S: RunStore> Driver<'a, S> {
    /// Starts a run: journals `start` (an [`Input::Start`]), applies it, and drives the run
    /// to its end.
    ///
    /// # Errors
    /// A [`DriverError`] when the start is refused or the journal fails.
    pub fn run(
        start: Input,
        config: SupervisorConfig,
        store: &'a mut S,
        host: Host<'a>,
    ) -> Result<(DriveOutcome, Supervisor), DriverError> {
        let mut driver = Driver::begin(start, config, store, host)?;
        let state = driver.pump()?;
        Ok((DriveOutcome::Finished(state), driver.supervisor))
    }

    /// Starts a run as [`Driver::run`] does, but drives nothing yet: step it with
    /// [`Driver::advance`].
    ///
    /// # Errors
    /// As [`Driver::run`].
    pub fn begin(
        start: Input,
        config: SupervisorConfig,
        store: &'a mut S,
        host: Host<'a>,
    ) -> Result<Driver<'a, S>, DriverError> {
        let Input::Start { plan, .. } = &start else {
            return Err(SupervisorError::NotStarted { got: start.kind() }.into());
        };
        let run_id = plan.run.run_id.clone();
        // Validate before journaling, so a refused start leaves no journal behind.
        let mut supervisor = Supervisor::new();
        supervisor.start_with(start.clone(), config)?;
        match journal_begun(store, &run_id)? {
            Begun::Started => return Err(DriverError::RunExists(run_id)),
            // A start that crashed between its two lines is started again: the
            // configuration is not written twice.
            Begun::Configured(existing) if existing == config => {}
            Begun::Configured(_) | Begun::Empty => {
                run_journal::append(store, &run_id, &JournalEntry::Config(config))?;
            }
        }
        run_journal::append(store, &run_id, &JournalEntry::Input(start))?;
        store.sync(&run_id).map_err(DriverError::store)?;
        Ok(Driver {
            supervisor,
            run_id,
            store,
            host,
            due: None,
            awaiting: None,
            already_finished: false,
        })
    }

    /// Continues a run from its journal: replays every input, brings the artefacts up to
    /// it ([`Artefacts::recover`]), performs again the action that was outstanding at the
    /// crash, and drives the run to its end. A finished run gets its artefacts recovered
    /// and is reported as [`DriveOutcome::AlreadyFinished`].
    ///
    /// # Errors
    /// [`DriverError::NothingToResume`] without a journal; a journal that the Supervisor
    /// refuses is [`DriverError::Supervisor`].
    pub fn resume(
        run_id: &RunId,
        store: &'a mut S,
        host: Host<'a>,
    ) -> Result<(DriveOutcome, Supervisor), DriverError> {
        let replayed = replay_run(store, run_id)?;
        Driver::resume_replayed(replayed, run_id, store, host)
    }

    /// [`Driver::resume`] from a journal the caller replayed already ([`replay_run`] on
    /// `store`), e.g. to look at the run before deciding to resume it.
    ///
    /// # Errors
    /// As [`Driver::resume`].
    pub fn resume_replayed(
        replayed: Replayed,
        run_id: &RunId,
        store: &'a mut S,
        host: Host<'a>,
    ) -> Result<(DriveOutcome, Supervisor), DriverError> {
        let mut driver = Driver::reopen(replayed, run_id, store, host)?;
        if driver.already_finished {
            let state = driver.supervisor.state();
            return Ok((DriveOutcome::AlreadyFinished(state), driver.supervisor));
        }
        let state = driver.pump()?;
        Ok((DriveOutcome::Finished(state), driver.supervisor))
    }

    /// Reopens a replayed run as [`Driver::resume_replayed`] does (artefacts recovered,
    /// the outstanding action due again), but drives nothing yet: step it with
    /// [`Driver::advance`]. A finished run's first step is [`Step::Finished`]
    /// ([`Driver::was_finished`] tells it from one that ends now).
    ///
    /// # Errors
    /// As [`Driver::resume`].
    pub fn reopen(
        replayed: Replayed,
        run_id: &RunId,
        store: &'a mut S,
        host: Host<'a>,
    ) -> Result<Driver<'a, S>, DriverError> {
        let Replayed {
            supervisor,
            recorded,
        } = replayed;
        let mut driver = Driver {
            supervisor,
            run_id: run_id.clone(),
            store,
            host,
            due: None,
            awaiting: None,
            already_finished: false,
        };
        let recovered = match (driver.supervisor.record(), driver.supervisor.ledger()) {
            (Some(record), Some(ledger)) => {
                driver.host.artefacts.recover(record, ledger, &recorded)
            }
            _ => Ok(()),
        };
        drop(recorded);
        let finished = driver.supervisor.is_finished();
        match recovered {
            Err(err) if finished => return Err(DriverError::Artefacts(err)),
            // The run can still be told: it ends as any run whose artefacts fail.
            Err(err) => {
                let input = Input::EnvironmentFailed {
                    at: driver.host.clock.now(),
                    reason: format!("repairing the artefacts after a crash: {err}"),
                };
                driver.submit(input)?;
            }
            Ok(()) if finished => driver.already_finished = true,
            Ok(()) => driver.due = driver.supervisor.outstanding(),
        }
        Ok(driver)
    }

    /// Whether [`Driver::reopen`] found the run finished already (nothing was driven).
    pub fn was_finished(&self) -> bool {
        self.already_finished
    }

    /// The Supervisor, as of the last input.
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// The Supervisor, for a host done with the driver.
    pub fn into_supervisor(self) -> Supervisor {
        self.supervisor
    }

    /// The agent attempt handed out by [`Driver::advance`] and not answered yet.
    pub fn awaiting(&self) -> Option<&AgentCall> {
        self.awaiting.as_ref()
    }

    /// Performs every action up to the next agent attempt (applying patches, CI,
    /// snapshots, artefacts), and returns that attempt, or the end of the run. Calling it
    /// again before the attempt is answered performs what came in meanwhile (the
    /// artefacts of an interjection) and returns the same attempt.
    ///
    /// # Errors
    /// The journal or the artefacts fail, or the Supervisor refuses an input.
    pub fn advance(&mut self) -> Result<Step, DriverError> {
        while let Some(action) = self.due.take().or_else(|| self.supervisor.poll_action()) {
            let call = match &action {
                Action::DispatchBuilder(request) => AgentCall::Builder(request.clone()),
                Action::RequestAudit(request) => AgentCall::Auditor(request.clone()),
                _ => {
                    self.perform(action)?;
                    continue;
                }
            };
            if let Some(record) = self.supervisor.record() {
                self.host.observer.action(&action, record);
            }
            self.awaiting = Some(call);
        }
        Ok(match &self.awaiting {
            Some(call) => Step::Agent(call.clone()),
            None => Step::Finished(self.supervisor.state()),
        })
    }

    /// Answers the Builder attempt [`Driver::advance`] handed out. The host's tripwire is
    /// checked first, as after every agent attempt.
    ///
    /// # Errors
    /// [`DriverError::NotAwaiting`] when no Builder attempt is awaited; else as
    /// [`Driver::advance`].
    pub fn builder_finished(
        &mut self,
        outcome: AgentOutcome<BuilderResult>,
    ) -> Result<(), DriverError> {
        let Some(AgentCall::Builder(request)) = &self.awaiting else {
            return Err(self.not_awaiting("a Builder result"));
        };
        let input = Input::BuilderFinished {
            at: self.host.clock.now(),
            phase_id: request.phase_id.clone(),
            attempt: request.attempt,
            outcome,
        };
        self.answer(input)
    }

    /// Answers the Auditor attempt [`Driver::advance`] handed out, as
    /// [`Driver::builder_finished`] does a Builder's.
    ///
    /// # Errors
    /// As [`Driver::builder_finished`].
    pub fn auditor_finished(
        &mut self,
        outcome: AgentOutcome<AuditorResult>,
    ) -> Result<(), DriverError> {
        let Some(AgentCall::Auditor(request)) = &self.awaiting else {
            return Err(self.not_awaiting("an Auditor result"));
        };
        let input = Input::AuditorFinished {
            at: self.host.clock.now(),
            phase_id: request.phase_id.clone(),
            attempt: request.attempt,
            outcome,
        };
        self.answer(input)
    }

    /// Feeds an input that answers nothing: [`Input::Abort`], [`Input::IssuesReported`],
    /// [`Input::Tick`], [`Input::EnvironmentFailed`]. Its actions are performed at the
    /// next [`Driver::advance`]; an attempt it ends (the run failed) is no longer awaited.
    ///
    /// # Errors
    /// Any other input is [`DriverError::NotAwaiting`]; the Supervisor may refuse it
    /// ([`DriverError::Supervisor`]: an unknown phase, a finished run).
    pub fn interject(&mut self, input: Input) -> Result<(), DriverError> {
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
        self.submit(input)?;
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

    fn answer(&mut self, input: Input) -> Result<(), DriverError> {
        let during = self.awaiting.take().map(|c| c.during()).unwrap_or_default();
        let input = self.guarded(&during, input);
        self.submit(input)
    }

    /// Drives to the end, calling the host's own agents.
    fn pump(&mut self) -> Result<RunState, DriverError> {
        loop {
            match self.advance()? {
                Step::Agent(AgentCall::Builder(request)) => {
                    let outcome = self.host.builder.build(&request);
                    self.builder_finished(outcome)?;
                }
                Step::Agent(AgentCall::Auditor(request)) => {
                    let outcome = self.host.auditor.audit(&request);
                    self.auditor_finished(outcome)?;
                }
                Step::Finished(state) => return Ok(state),
            }
        }
    }

    fn perform(&mut self, action: Action) -> Result<(), DriverError> {
        if let Some(record) = self.supervisor.record() {
            self.host.observer.action(&action, record);
        }
        let input = match &action {
            // Handed out by `advance`, never performed here.
            Action::DispatchBuilder(_) | Action::RequestAudit(_) => None,
            Action::ApplyPatch(request) => Some(match self.host.applier.apply(request) {
                Ok(ApplyOutcome::Applied { commit, holds }) => Input::PatchApplied {
                    at: self.host.clock.now(),
                    phase_id: request.phase_id.clone(),
                    commit,
                    holds,
                },
                Ok(ApplyOutcome::Rejected { rule, message }) => Input::PatchRejected {
                    at: self.host.clock.now(),
                    phase_id: request.phase_id.clone(),
                    rule,
                    message,
                },
                Err(err) => Input::EnvironmentFailed {
                    at: self.host.clock.now(),
                    reason: format!("applying the patch of phase {}: {err}", request.phase_id),
                },
            }),
            Action::RunCi(request) => Some(match self.host.verifier.verify(request) {
                Ok(report) => Input::CiFinished {
                    at: self.host.clock.now(),
                    phase_id: request.phase_id.clone(),
                    report,
                },
                Err(err) => Input::EnvironmentFailed {
                    at: self.host.clock.now(),
                    reason: format!("CI for phase {}: {err}", request.phase_id),
                },
            }),
            Action::CreateSnapshot(request) => Some(match self.host.applier.snapshot(request) {
                Ok(()) => Input::SnapshotCreated {
                    at: self.host.clock.now(),
                    phase_id: request.phase_id.clone(),
                    tag: request.tag.clone(),
                },
                Err(err) => Input::EnvironmentFailed {
                    at: self.host.clock.now(),
                    reason: format!("snapshot of phase {}: {err}", request.phase_id),
                },
            }),
            Action::Checkpoint(checkpoint) => {
                let (Some(record), Some(ledger)) =
                    (self.supervisor.record(), self.supervisor.ledger())
                else {
                    return Ok(());
                };
                match self.host.artefacts.checkpoint(checkpoint, record, ledger) {
                    Ok(()) => None,
                    Err(err) if !self.supervisor.is_finished() => Some(Input::EnvironmentFailed {
                        at: self.host.clock.now(),
                        reason: format!("writing artefacts: {err}"),
                    }),
                    Err(err) => return Err(DriverError::Artefacts(err)),
                }
            }
            Action::RecordIssues { at, observations } => {
                match self.host.artefacts.record_issues(*at, observations) {
                    Ok(()) => None,
                    Err(err) if !self.supervisor.is_finished() => Some(Input::EnvironmentFailed {
                        at: self.host.clock.now(),
                        reason: format!("recording issues: {err}"),
                    }),
                    Err(err) => return Err(DriverError::Artefacts(err)),
                }
            }
            Action::WriteIncidentPack => {
                if let (Some(record), Some(ledger)) =
                    (self.supervisor.record(), self.supervisor.ledger())
                {
                    self.host
                        .artefacts
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
            (Action::RunCi(r), Some(input)) => {
                Some(self.guarded(&format!("CI of phase {}", r.phase_id), input))
            }
            (_, input) => input,
        };
        if let Some(input) = input {
            self.submit(input)?;
        }
        Ok(())
    }

    /// Journals `input`, then applies it.
    fn submit(&mut self, input: Input) -> Result<(), DriverError> {
        run_journal::append(
            self.store,
            &self.run_id,
            &JournalEntry::Input(input.clone()),
        )?;
        self.supervisor.handle(input.clone())?;
        if let Some(record) = self.supervisor.record() {
            self.host.observer.input(&input, record);
        }
        Ok(())
    }
}

impl<S: RunStore> Driver<'_, S> {
    /// `input` if the tripwire saw nothing `during` the attempt, else the violation.
    fn guarded(&mut self, during: &str, input: Input) -> Input {
        match self.host.tripwire.check() {
            Ok(changes) if changes.is_empty() => input,
            Ok(changes) => {
                tracing::error!(target: "autopack::tripwire", run_id = %self.run_id, during = %during, changes = ?changes, "the host repository changed behind the governed path");
                Input::PolicyViolation {
                    at: self.host.clock.now(),
                    reason: format!(
                        "the host repository changed during the {during}: {}",
                        changes.join("; ")
                    ),
                }
            }
            Err(err) => Input::EnvironmentFailed {
                at: self.host.clock.now(),
                reason: format!("the tripwire could not read the host repository: {err}"),
            },
        }
    }
}
