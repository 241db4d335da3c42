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

use autopack_core::clock::Clock;
use autopack_core::ids::RunId;
use autopack_core::journal::{self, JournalContents, JournalError, RunStore};
use autopack_core::lifecycle::RunState;
use autopack_core::message::{AuditorRequest, AuditorResult, BuilderRequest, BuilderResult};
use autopack_core::record::RunRecord;
use autopack_issues::{IssueObservation, Ledger};
use chrono::{DateTime, Utc};

use crate::supervisor::{
    Action, AgentOutcome, Checkpoint, CiReport, CiRequest, Input, PatchRequest, SnapshotRequest,
    Supervisor, SupervisorConfig, SupervisorError,
};

/// Writes code for a phase.
pub trait Builder {
    /// Runs one attempt. Errors, timeouts and malformed answers are returned as
    /// [`AgentOutcome::Failed`] with a reason.
    fn build(&mut self, request: &BuilderRequest) -> AgentOutcome<BuilderResult>;
}

/// Reviews a phase.
pub trait Auditor {
    /// Runs one review. Errors, timeouts and malformed answers are returned as
    /// [`AgentOutcome::Failed`] with a reason.
    fn audit(&mut self, request: &AuditorRequest) -> AgentOutcome<AuditorResult>;
}

impl<B: Builder + ?Sized> Builder for &mut B {
    fn build(&mut self, request: &BuilderRequest) -> AgentOutcome<BuilderResult> {
        (**self).build(request)
    }
}

impl<A: Auditor + ?Sized> Auditor for &mut A {
    fn audit(&mut self, request: &AuditorRequest) -> AgentOutcome<AuditorResult> {
        (**self).audit(request)
    }
}

/// The Builder and Auditor of a host that steps its driver ([`Driver::advance`]) and
/// answers attempts itself ([`Driver::builder_finished`]): a stepped driver never calls
/// them, and a driven one gets a failed attempt saying so.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnsweredElsewhere;

impl Builder for AnsweredElsewhere {
    fn build(&mut self, request: &BuilderRequest) -> AgentOutcome<BuilderResult> {
        AgentOutcome::Failed {
            reason: format!(
                "no Builder here: attempt {} of phase {} is answered through Driver::builder_finished",
                request.attempt, request.phase_id
            ),
            tokens_used: 0,
        }
    }
}

impl Auditor for AnsweredElsewhere {
    fn audit(&mut self, request: &AuditorRequest) -> AgentOutcome<AuditorResult> {
        AgentOutcome::Failed {
            reason: format!(
                "no Auditor here: attempt {} of phase {} is answered through Driver::auditor_finished",
                request.attempt, request.phase_id
            ),
            tokens_used: 0,
        }
    }
}

/// What the gate made of a patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The patch passed the policy and was committed as a candidate.
    Applied {
        /// The candidate commit.
        commit: String,
        /// Why it may go on only after an Auditor `approve` (empty for most patches).
        holds: Vec<autopack_core::patch_rules::PatchHold>,
    },
    /// The policy rejected it.
    Rejected {
        /// The rule (snake_case).
        rule: String,
        /// The rejection, naming the path.
        message: String,
    },
}

/// The governed apply path: validates and commits patches, makes candidates permanent.
pub trait Applier {
    /// Checks a patch against the policy and commits it as a candidate on top of the
    /// integration branch without moving the branch.
    ///
    /// # Errors
    /// A host failure (the repository cannot be read or written).
    fn apply(&mut self, request: &PatchRequest) -> Result<ApplyOutcome, HostError>;

    /// Moves the integration branch to the candidate and creates the snapshot tag.
    /// Must be idempotent: a retry after a crash finds the work done and succeeds.
    ///
    /// # Errors
    /// A host failure.
    fn snapshot(&mut self, request: &SnapshotRequest) -> Result<(), HostError>;
}

/// The CI gate.
pub trait Verifier {
    /// Runs CI on the candidate, at most `request.max_attempts` attempts.
    ///
    /// # Errors
    /// A host failure (the test command cannot start, the worktree cannot be made) —
    /// distinct from red tests, which are a [`CiReport`].
    fn verify(&mut self, request: &CiRequest) -> Result<CiReport, HostError>;
}

/// Where views, summaries and incident packs go.
pub trait Artefacts {
    /// Materialises views and summaries at a checkpoint.
    ///
    /// # Errors
    /// A host failure.
    fn checkpoint(
        &mut self,
        checkpoint: &Checkpoint,
        record: &RunRecord,
        ledger: &Ledger,
    ) -> Result<(), HostError>;

    /// Persists issues the Supervisor recorded (the durable project ledger).
    ///
    /// # Errors
    /// A host failure.
    fn record_issues(
        &mut self,
        at: DateTime<Utc>,
        observations: &[IssueObservation],
    ) -> Result<(), HostError>;

    /// Writes the incident pack of a failed run.
    ///
    /// # Errors
    /// A host failure.
    fn incident(&mut self, record: &RunRecord, ledger: &Ledger) -> Result<(), HostError>;

    /// Brings the artefacts up to the journal after a crash; [`Driver::resume`] calls it
    /// first, for a finished run too.
    ///
    /// `recorded` is every issue the run recorded so far, in order, with the time of its
    /// [`Action::RecordIssues`]. A crash can have kept the last of them from the durable
    /// ledger (it came after the journal line that caused them), and a replay performs no
    /// actions, so the host persists those its ledger does not hold yet — exactly once:
    /// recording is in order and the run has one writer, so what the ledger holds of the
    /// run is a prefix of `recorded`. Then it rewrites every view and summary (and the
    /// incident pack of a failed run), which the crash may have left behind the record.
    ///
    /// # Errors
    /// A host failure.
    fn recover(
        &mut self,
        record: &RunRecord,
        ledger: &Ledger,
        recorded: &[RecordedIssue],
    ) -> Result<(), HostError>;
}

/// An issue the Supervisor recorded ([`Action::RecordIssues`]), with the action's time.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedIssue {
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// What was recorded.
    pub observation: IssueObservation,
}

/// Watches the host repository for changes made behind the governed path. The driver
/// checks it after every Builder, Auditor and CI attempt; a change ends the run
/// `DONE_FAILED_POLICY_VIOLATION` ([`Input::PolicyViolation`]) naming what changed.
pub trait Tripwire {
    /// What changed since the run began (or resumed), one sentence each; empty when
    /// nothing did.
    ///
    /// # Errors
    /// A host failure (the repository cannot be read).
    fn check(&mut self) -> Result<Vec<String>, HostError>;
}

/// A tripwire that never fires, for hosts without a repository of their own (tests,
/// in-memory hosts).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTripwire;

impl Tripwire for NoTripwire {
    fn check(&mut self) -> Result<Vec<String>, HostError> {
        Ok(Vec::new())
    }
}

/// Artefacts that go nowhere, for hosts and tests that keep only the record.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoArtefacts;

impl Artefacts for NoArtefacts {
    fn record_issues(&mut self, _: DateTime<Utc>, _: &[IssueObservation]) -> Result<(), HostError> {
        Ok(())
    }

    fn checkpoint(&mut self, _: &Checkpoint, _: &RunRecord, _: &Ledger) -> Result<(), HostError> {
        Ok(())
    }

    fn incident(&mut self, _: &RunRecord, _: &Ledger) -> Result<(), HostError> {
        Ok(())
    }

    fn recover(&mut self, _: &RunRecord, _: &Ledger, _: &[RecordedIssue]) -> Result<(), HostError> {
        Ok(())
    }
}

/// A failure of the host's machinery (not of an agent and not a red test).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HostError(pub String);

impl HostError {
    /// A host error from anything displayable.
    pub fn new(message: impl std::fmt::Display) -> HostError {
        HostError(message.to_string())
    }
}

/// Why the driver stopped without finishing the run.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The Supervisor refused an input (a bug in a host adapter, or a corrupt journal).
    #[error("supervisor refused an input: {0}")]
    Supervisor(#[from] SupervisorError),
    /// The journal could not be written or read.
    #[error("run journal: {0}")]
    Journal(String),
    /// There is no journal for the run to resume (or it ends before the run's start).
    #[error("run {0} has no journal to resume")]
    NothingToResume(RunId),
    /// [`Driver::run`] of a run whose journal holds its start already.
    #[error("run {0} has started already: resume it, or use another run_id")]
    RunExists(RunId),
    /// Writing artefacts failed after the run ended.
    #[error("artefacts: {0}")]
    Artefacts(HostError),
    /// A stepping host answered what the driver does not await.
    #[error("the driver waits for {expected}; got {got}")]
    NotAwaiting {
        /// What is awaited.
        expected: String,
        /// What came.
        got: &'static str,
    },
}

impl<E: std::error::Error + 'static> From<JournalError<E>> for DriverError {
    fn from(err: JournalError<E>) -> Self {
        DriverError::Journal(err.to_string())
    }
}

/// How a call of [`Driver::run`] or [`Driver::resume`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DriveOutcome {
    /// The run reached this terminal state in this call.
    Finished(RunState),
    /// [`Driver::resume`] found the run already finished: nothing was done.
    AlreadyFinished(RunState),
}

impl DriveOutcome {
    /// The run's terminal state.
    pub fn state(&self) -> RunState {
        match self {
            DriveOutcome::Finished(s) | DriveOutcome::AlreadyFinished(s) => *s,
        }
    }
}

/// Observes the run as it goes (progress output, metrics). All methods default to no-ops.
pub trait Observer {
    /// An action is about to be performed.
    fn action(&mut self, _action: &Action, _record: &RunRecord) {}
    /// An input was applied.
    fn input(&mut self, _input: &Input, _record: &RunRecord) {}
}

/// An observer that observes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// The pieces a [`Driver`] drives.
pub struct Host<'a> {
    /// The Builder.
    pub builder: &'a mut dyn Builder,
    /// The Auditor.
    pub auditor: &'a mut dyn Auditor,
    /// The gate's apply path.
    pub applier: &'a mut dyn Applier,
    /// CI.
    pub verifier: &'a mut dyn Verifier,
    /// Views, summaries, incident packs.
    pub artefacts: &'a mut dyn Artefacts,
    /// Checked after every agent and CI attempt.
    pub tripwire: &'a mut dyn Tripwire,
    /// The clock every input's time is read from.
    pub clock: &'a dyn Clock,
    /// Progress.
    pub observer: &'a mut dyn Observer,
}

/// An agent's attempt the Supervisor waits for, as [`Driver::advance`] hands it out.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentCall {
    /// A Builder attempt.
    Builder(BuilderRequest),
    /// An Auditor attempt.
    Auditor(AuditorRequest),
}

impl AgentCall {
    /// The phase the attempt is for.
    pub fn phase_id(&self) -> &autopack_core::ids::PhaseId {
        match self {
            AgentCall::Builder(r) => &r.phase_id,
            AgentCall::Auditor(r) => &r.phase_id,
        }
    }

    /// The attempt's number within its phase and role.
    pub fn attempt(&self) -> u32 {
        match self {
            AgentCall::Builder(r) => r.attempt,
            AgentCall::Auditor(r) => r.attempt,
        }
    }

    /// `builder` or `auditor`.
    pub fn role(&self) -> autopack_core::record::AttemptRole {
        match self {
            AgentCall::Builder(_) => autopack_core::record::AttemptRole::Builder,
            AgentCall::Auditor(_) => autopack_core::record::AttemptRole::Auditor,
        }
    }

    fn during(&self) -> String {
        match self {
            AgentCall::Builder(r) => {
                format!("Builder attempt {} of phase {}", r.attempt, r.phase_id)
            }
            AgentCall::Auditor(r) => {
                format!("Auditor attempt {} of phase {}", r.attempt, r.phase_id)
            }
        }
    }
}

/// Where [`Driver::advance`] stopped.
#[derive(Debug, Clone, PartialEq)]
// One per agent attempt, moved straight into the host's hands: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Step {
    /// The run waits for this agent attempt: perform it (on any machine) and hand its
    /// outcome to [`Driver::builder_finished`] or [`Driver::auditor_finished`].
    Agent(AgentCall),
    /// The run is over, in this state.
    Finished(RunState),
}

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
                journal::append(store, &run_id, &JournalEntry::Config(config))?;
            }
        }
        journal::append(store, &run_id, &JournalEntry::Input(start))?;
        store
            .sync(&run_id)
            .map_err(|e| DriverError::Journal(e.to_string()))?;
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
                self.store
                    .sync(&self.run_id)
                    .map_err(|e| DriverError::Journal(e.to_string()))?;
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
        journal::append(
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

/// One line of a run's journal.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalEntry {
    /// The Supervisor's configuration, written first.
    Config(SupervisorConfig),
    /// An input, written before it is applied.
    Input(Input),
}

/// How far a run's journal got before its first input.
#[derive(Debug, Clone, PartialEq)]
pub enum Begun {
    /// No journal, or an empty one: the run can be started.
    Empty,
    /// Only the configuration (a start that crashed before its start line): the run can
    /// be started, with this configuration.
    Configured(SupervisorConfig),
    /// The run's start is journaled: it can only be resumed.
    Started,
}

/// Whether `run_id` has begun: the one rule both [`Driver::run`] and hosts that check
/// before preparing a run ("does this run exist?") go by.
///
/// # Errors
/// [`DriverError::Journal`] when the journal cannot be read or its head does not parse.
pub fn journal_begun<S: RunStore>(store: &mut S, run_id: &RunId) -> Result<Begun, DriverError> {
    let contents = store
        .read(run_id)
        .map_err(|e| DriverError::from(JournalError::Store(e)))?;
    let mut begun = Begun::Empty;
    for (index, line) in contents.entries().enumerate() {
        match journal::parse_entry::<JournalEntry>(run_id, index, line)
            .map_err(|e| DriverError::from(JournalError::<std::convert::Infallible>::Parse(e)))?
        {
            JournalEntry::Config(config) => begun = Begun::Configured(config),
            JournalEntry::Input(_) => return Ok(Begun::Started),
        }
    }
    Ok(begun)
}

/// Rebuilds a Supervisor from a run's journal (the state at the crash, or the finished
/// run), without performing anything.
///
/// Entries are applied in order; the first that does not parse or is refused ends the
/// replay with its error. A long journal is parsed on a second thread while this one
/// applies, so replay takes about as long as the slower of the two (see the crate's
/// "Speed" section).
///
/// # Errors
/// [`DriverError::NothingToResume`] without a journal; [`DriverError::Journal`] for an
/// unreadable one; [`DriverError::Supervisor`] when it does not replay.
pub fn replay_journal<S: RunStore>(
    store: &mut S,
    run_id: &RunId,
) -> Result<Supervisor, DriverError> {
    Ok(replay_run(store, run_id)?.supervisor)
}

/// A run rebuilt from its journal, with the issues it recorded.
#[derive(Debug)]
pub struct Replayed {
    /// The Supervisor at the end of the journal.
    pub supervisor: Supervisor,
    /// Every issue the run recorded, in order (what [`Artefacts::recover`] is given).
    pub recorded: Vec<RecordedIssue>,
}

/// [`replay_journal`], keeping the issues the run recorded.
///
/// # Errors
/// As [`replay_journal`].
pub fn replay_run<S: RunStore>(store: &mut S, run_id: &RunId) -> Result<Replayed, DriverError> {
    let contents = store
        .read(run_id)
        .map_err(|e| DriverError::from(JournalError::Store(e)))?;
    let parallel = contents.len() >= PARALLEL_REPLAY_FROM
        && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    replay_contents(run_id, &contents, parallel)
}

/// Journals shorter than this replay on one thread: a second one would cost more than it
/// saves.
const PARALLEL_REPLAY_FROM: usize = 4096;

/// Entries the parsing thread hands over at a time.
const REPLAY_BATCH: usize = 512;

/// How many entries the replay parses on this thread before it hands the rest to a
/// second one: the configuration and the start (with the whole plan and strategy), which
/// this thread applies while the other parses what follows.
const REPLAY_HEAD: usize = 2;

fn replay_contents(
    run_id: &RunId,
    contents: &JournalContents,
    parallel: bool,
) -> Result<Replayed, DriverError> {
    if contents.is_empty() {
        return Err(DriverError::NothingToResume(run_id.clone()));
    }
    let mut replay = Replay {
        supervisor: Supervisor::new(),
        config: SupervisorConfig::default(),
        recorded: Vec::new(),
    };
    let parse = |index: usize, line: &str| {
        journal::parse_entry::<JournalEntry>(run_id, index, line)
            .map_err(|e| DriverError::from(JournalError::<std::convert::Infallible>::Parse(e)))
    };
    let mut lines = contents.entries().enumerate();
    if !parallel || contents.len() <= REPLAY_HEAD {
        for (index, line) in lines {
            replay.apply(parse(index, line)?)?;
        }
        return replay.done(run_id);
    }
    let head: Vec<(usize, &str)> = lines.by_ref().take(REPLAY_HEAD).collect();
    std::thread::scope(|scope| {
        // Unbounded: while this thread parses and applies the start (a third of the
        // replay on a long run), the other must keep parsing instead of blocking on a
        // full channel. At worst every parsed entry waits here at once, about the size
        // of the journal's text again.
        let (batches, parsed) = std::sync::mpsc::channel::<Vec<_>>();
        let parser = std::thread::Builder::new().spawn_scoped(scope, move || {
            loop {
                let batch: Vec<_> = lines
                    .by_ref()
                    .take(REPLAY_BATCH)
                    .map(|(index, line)| parse(index, line))
                    .collect();
                // Done, or a closed channel: the replay stopped at an error.
                if batch.is_empty() || batches.send(batch).is_err() {
                    break;
                }
            }
        });
        if parser.is_err() {
            // No second thread to be had (the process is at its thread limit): nothing
            // was applied yet, so replay on this one.
            return replay_contents(run_id, contents, false);
        }
        for (index, line) in head {
            replay.apply(parse(index, line)?)?;
        }
        for batch in parsed {
            for entry in batch {
                replay.apply(entry?)?;
            }
        }
        replay.done(run_id)
    })
}

/// A Supervisor being rebuilt, the configuration the journal set for its start, and the
/// issues it recorded on the way.
struct Replay {
    supervisor: Supervisor,
    config: SupervisorConfig,
    recorded: Vec<RecordedIssue>,
}

impl Replay {
    fn apply(&mut self, entry: JournalEntry) -> Result<(), DriverError> {
        match entry {
            JournalEntry::Config(c) => self.config = c,
            JournalEntry::Input(input @ Input::Start { .. }) => {
                self.supervisor.start_with(input, self.config)?
            }
            // The actions were performed before the crash (the one awaiting an answer is
            // redone through `Supervisor::outstanding`): none are made.
            JournalEntry::Input(input) => self.supervisor.replay(input)?,
        }
        // Issue recording is the one action a replay still makes (the start's actions
        // too come out here, as `start_with` is not quiet): keep what was recorded.
        while let Some(action) = self.supervisor.poll_action() {
            if let Action::RecordIssues { at, observations } = action {
                self.recorded.extend(
                    observations
                        .into_iter()
                        .map(|observation| RecordedIssue { at, observation }),
                );
            }
        }
        Ok(())
    }

    /// The replayed run; a journal that ends before the run's start is no run.
    fn done(self, run_id: &RunId) -> Result<Replayed, DriverError> {
        if self.supervisor.record().is_none() {
            return Err(DriverError::NothingToResume(run_id.clone()));
        }
        Ok(Replayed {
            supervisor: self.supervisor,
            recorded: self.recorded,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::{AgentOutcome, CiReport};
    use autopack_core::message::BuilderStatus;
    use autopack_core::plan::Plan;
    use autopack_core::record::CiVerdict;
    use chrono::TimeZone;

    /// A journal of a run of `phases` phases with instant, successful agents, and the
    /// inputs in order.
    fn journal(phases: usize) -> (RunId, Vec<String>, Vec<Input>) {
        let phase_list: Vec<String> = (0..phases)
            .map(|i| {
                format!(
                    r#"{{"phase_id": "p{i}", "phase_index": {i}, "tier_id": "t{}", "name": "P{i}", "task_category": "tests"}}"#,
                    i * 3 / phases
                )
            })
            .collect();
        let plan: Plan = autopack_core::json::from_str(
            &format!(
                r#"{{"run": {{"run_id": "r1", "max_phases": {phases}}},
                "tiers": [{{"tier_id": "t0", "tier_index": 0, "name": "A"}},
                          {{"tier_id": "t1", "tier_index": 1, "name": "B"}},
                          {{"tier_id": "t2", "tier_index": 2, "name": "C"}}],
                "phases": [{}]}}"#,
                phase_list.join(",")
            ),
            "plan.json",
        )
        .unwrap();
        let strategy = autopack_strategy::dry_run(&plan, None, None).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut inputs = vec![Input::Start {
            at,
            plan,
            strategy: Box::new(strategy),
            backlog: Box::default(),
        }];
        let mut sup = Supervisor::new();
        sup.handle(inputs[0].clone()).unwrap();
        while let Some(action) = sup.poll_action() {
            let input = match action {
                Action::DispatchBuilder(r) => Input::BuilderFinished {
                    at,
                    attempt: r.attempt,
                    outcome: AgentOutcome::Returned(BuilderResult {
                        phase_id: r.phase_id.clone(),
                        status: BuilderStatus::Success,
                        patch: Some("diff --git a/x b/x\n".into()),
                        probe_results: vec![],
                        suggested_issues: vec![],
                        tokens_used: 10,
                        failing_tests: vec![],
                        notes: String::new(),
                    }),
                    phase_id: r.phase_id,
                },
                Action::ApplyPatch(r) => Input::PatchApplied {
                    at,
                    phase_id: r.phase_id,
                    commit: "c".into(),
                    holds: vec![],
                },
                Action::RunCi(r) => Input::CiFinished {
                    at,
                    phase_id: r.phase_id,
                    report: CiReport {
                        verdict: CiVerdict::Green,
                        attempts: 1,
                        failing_tests: vec![],
                        output_tail: String::new(),
                        known_failures: vec![],
                        flaky_tests: vec![],
                        baseline: None,
                    },
                },
                Action::CreateSnapshot(r) => Input::SnapshotCreated {
                    at,
                    phase_id: r.phase_id,
                    tag: r.tag,
                },
                _ => continue,
            };
            inputs.push(input.clone());
            sup.handle(input).unwrap();
        }
        assert!(sup.is_finished());
        let mut lines =
            vec![serde_json::to_string(&JournalEntry::Config(Default::default())).unwrap()];
        lines.extend(
            inputs
                .iter()
                .map(|i| serde_json::to_string(&JournalEntry::Input(i.clone())).unwrap()),
        );
        (RunId::new("r1").unwrap(), lines, inputs)
    }

    fn handled(inputs: &[Input]) -> Supervisor {
        let mut sup = Supervisor::new();
        for input in inputs {
            sup.handle(input.clone()).unwrap();
            while sup.poll_action().is_some() {}
        }
        sup
    }

    #[test]
    fn both_threads_and_one_rebuild_the_state_of_every_prefix() {
        // 1,200 inputs: the parsing thread hands over several batches.
        let (run, lines, inputs) = journal(300);
        for cut in [
            1,
            2,
            3,
            4,
            5,
            511,
            512,
            513,
            514,
            515,
            1024,
            lines.len() - 1,
            lines.len(),
        ] {
            let want = handled(&inputs[..cut - 1]);
            for parallel in [false, true] {
                let contents = JournalContents::from_entries(&lines[..cut]);
                if cut == 1 {
                    // The configuration alone: the run never started.
                    assert!(matches!(
                        replay_contents(&run, &contents, parallel),
                        Err(DriverError::NothingToResume(_))
                    ));
                    continue;
                }
                let got = replay_contents(&run, &contents, parallel)
                    .unwrap()
                    .supervisor;
                assert_eq!(
                    got.record(),
                    want.record(),
                    "cut {cut}, parallel {parallel}"
                );
                assert_eq!(got.outstanding(), want.outstanding(), "cut {cut}");
                assert_eq!(
                    got.ledger().map(|l| l.snapshot()),
                    want.ledger().map(|l| l.snapshot())
                );
            }
        }
    }

    #[test]
    fn the_first_bad_entry_ends_the_replay_on_both_paths() {
        let (run, lines, _) = journal(300);
        for parallel in [false, true] {
            // Garbage in the tail, after a refused entry: the refusal comes first.
            let mut bad = lines.clone();
            bad[700] = bad[698].clone();
            bad[900] = "{not json".into();
            let err =
                replay_contents(&run, &JournalContents::from_entries(bad), parallel).unwrap_err();
            assert!(matches!(err, DriverError::Supervisor(_)), "{err}");
            // Garbage alone: named by its position.
            let mut bad = lines.clone();
            bad[900] = "{\"input\": {\"tick\": {\"at\": 5}}}".into();
            let err = replay_contents(&run, &JournalContents::from_entries(bad), parallel)
                .unwrap_err()
                .to_string();
            assert!(err.contains("journal r1 entry 901"), "{err}");
            assert!(err.contains("input.tick.at"), "{err}");
            assert!(matches!(
                replay_contents(&run, &JournalContents::default(), parallel),
                Err(DriverError::NothingToResume(_))
            ));
        }
    }
}
