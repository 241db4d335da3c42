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

#[cfg(feature = "tokio")]
mod async_driver;
mod error;
mod journal;
mod parts;
mod step;
mod stepper;

#[cfg(feature = "tokio")]
pub use async_driver::{AsyncAuditor, AsyncBuilder, AsyncDriver, AsyncHost, Blocking};
pub use error::{DriverError, HostError, HostErrorKind, StoreError};
pub(crate) use journal::parse_line as parse_journal_line;
pub use journal::{
    Begun, JournalEntry, Replayed, journal_begun, replay_journal, replay_run, run_binding,
};
pub use parts::{
    AnsweredElsewhere, Applier, ApplyOutcome, Artefacts, Auditor, Builder, Host, NoArtefacts,
    NoTripwire, Observer, Quiet, RecordedIssue, Tripwire, Verifier,
};
pub use step::{AgentCall, DriveOutcome, Step};

use autopack_core::ids::RunId;
use autopack_core::journal::RunStore;
use autopack_core::lifecycle::RunState;
use autopack_core::message::{AuditorResult, BuilderResult};

use crate::supervisor::{AgentOutcome, Input, Supervisor, SupervisorConfig};
use stepper::Stepper;

/// Runs the Supervisor's loop over a [`Host`], journaling to a [`RunStore`].
///
/// [`Driver::run`] and [`Driver::resume`] drive a run to its end, calling the host's
/// Builder and Auditor in turn. A host whose agents answer later, from elsewhere (an HTTP
/// service whose workers pull attempts), opens the driver with [`Driver::begin`] or
/// [`Driver::reopen`] and steps it: [`Driver::advance`] performs everything but agent
/// attempts and stops at the next one; [`Driver::builder_finished`] /
/// [`Driver::auditor_finished`] answer it; [`Driver::interject`] feeds inputs that
/// answer nothing (an abort, issues reported from outside, time passing). Both ways —
/// and the async driver of feature `tokio` — perform every action with the same code.
pub struct Driver<'a, S: RunStore> {
    stepper: Stepper<'a, S>,
    host: Host<'a>,
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
        Ok((DriveOutcome::Finished(state), driver.stepper.supervisor))
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
        let stepper = Stepper::begin(start, config, store)?;
        Ok(Driver { stepper, host })
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
        if driver.stepper.already_finished {
            let state = driver.stepper.supervisor.state();
            return Ok((
                DriveOutcome::AlreadyFinished(state),
                driver.stepper.supervisor,
            ));
        }
        let state = driver.pump()?;
        Ok((DriveOutcome::Finished(state), driver.stepper.supervisor))
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
        mut host: Host<'a>,
    ) -> Result<Driver<'a, S>, DriverError> {
        let stepper = Stepper::reopen(replayed, run_id, store, &mut host)?;
        Ok(Driver { stepper, host })
    }

    /// Whether [`Driver::reopen`] found the run finished already (nothing was driven).
    pub fn was_finished(&self) -> bool {
        self.stepper.already_finished
    }

    /// The Supervisor, as of the last input.
    pub fn supervisor(&self) -> &Supervisor {
        &self.stepper.supervisor
    }

    /// The Supervisor, for a host done with the driver.
    pub fn into_supervisor(self) -> Supervisor {
        self.stepper.supervisor
    }

    /// The agent attempt handed out by [`Driver::advance`] and not answered yet.
    pub fn awaiting(&self) -> Option<&AgentCall> {
        self.stepper.awaiting.as_ref()
    }

    /// Performs every action up to the next agent attempt (applying patches, CI,
    /// snapshots, artefacts), and returns that attempt, or the end of the run. Calling it
    /// again before the attempt is answered performs what came in meanwhile (the
    /// artefacts of an interjection) and returns the same attempt.
    ///
    /// # Errors
    /// The journal or the artefacts fail, or the Supervisor refuses an input.
    pub fn advance(&mut self) -> Result<Step, DriverError> {
        self.stepper.advance(&mut self.host)
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
        self.stepper.builder_finished(&mut self.host, outcome)
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
        self.stepper.auditor_finished(&mut self.host, outcome)
    }

    /// Feeds an input that answers nothing: [`Input::Abort`], [`Input::IssuesReported`],
    /// [`Input::Tick`], [`Input::EnvironmentFailed`]. Its actions are performed at the
    /// next [`Driver::advance`]; an attempt it ends (the run failed) is no longer awaited.
    ///
    /// # Errors
    /// Any other input is [`DriverError::NotAwaiting`]; the Supervisor may refuse it
    /// ([`DriverError::Supervisor`]: an unknown phase, a finished run).
    pub fn interject(&mut self, input: Input) -> Result<(), DriverError> {
        self.stepper.interject(&mut self.host, input)
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
}
