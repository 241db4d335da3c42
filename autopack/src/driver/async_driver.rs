//! The async driver (feature `tokio`): the same run as [`Driver`](super::Driver), for a
//! tokio host whose agents are `async` — they call a model over HTTP, wait for a remote
//! worker, or run a process with `tokio::process`.
//!
//! Only the waiting differs. Every action (applying a patch, CI, snapshots, artefacts,
//! the journal, the tripwire) is performed by the code the blocking driver uses; those
//! steps block, so on a multi-threaded runtime they run under
//! [`tokio::task::block_in_place`] and the other tasks of the runtime go on meanwhile (on
//! a current-thread runtime they run inline). While one runs it holds a worker thread, so
//! a host driving many runs on one runtime sizes its worker pool for them. The futures are
//! `Send`: a run can be `tokio::spawn`ed when its parts are owned by the task.

use std::future::Future;

use autopack_core::ids::RunId;
use autopack_core::journal::RunStore;
use autopack_core::lifecycle::RunState;
use autopack_core::message::{AuditorRequest, AuditorResult, BuilderRequest, BuilderResult};
use tokio::runtime::{Handle, RuntimeFlavor};

use super::parts::{
    AnsweredElsewhere, Applier, Artefacts, Auditor, Builder, Host, Observer, Tripwire, Verifier,
};
use super::stepper::Stepper;
use super::{AgentCall, DriveOutcome, DriverError, Replayed, Step, replay_run};
use crate::supervisor::{AgentOutcome, Input, Supervisor, SupervisorConfig};
use autopack_core::clock::Clock;

/// Writes code for a phase, asynchronously. As with [`Builder`], errors, timeouts and
/// malformed answers are returned as [`AgentOutcome::Failed`] with a reason.
///
/// Implement it with an `async fn`; the future must be `Send`.
pub trait AsyncBuilder: Send {
    /// Runs one attempt.
    fn build(
        &mut self,
        request: &BuilderRequest,
    ) -> impl Future<Output = AgentOutcome<BuilderResult>> + Send;
}

/// Reviews a phase, asynchronously; see [`AsyncBuilder`].
pub trait AsyncAuditor: Send {
    /// Runs one review.
    fn audit(
        &mut self,
        request: &AuditorRequest,
    ) -> impl Future<Output = AgentOutcome<AuditorResult>> + Send;
}

impl<B: AsyncBuilder + ?Sized> AsyncBuilder for &mut B {
    fn build(
        &mut self,
        request: &BuilderRequest,
    ) -> impl Future<Output = AgentOutcome<BuilderResult>> + Send {
        (**self).build(request)
    }
}

impl<A: AsyncAuditor + ?Sized> AsyncAuditor for &mut A {
    fn audit(
        &mut self,
        request: &AuditorRequest,
    ) -> impl Future<Output = AgentOutcome<AuditorResult>> + Send {
        (**self).audit(request)
    }
}

/// A blocking [`Builder`] or [`Auditor`] as an async one: each attempt runs where the
/// driver's own blocking steps run (under `block_in_place` on a multi-threaded runtime).
/// For agents that are plain processes or in-memory stand-ins.
#[derive(Debug, Clone, Default)]
pub struct Blocking<T>(pub T);

impl<B: Builder + Send> AsyncBuilder for Blocking<B> {
    fn build(
        &mut self,
        request: &BuilderRequest,
    ) -> impl Future<Output = AgentOutcome<BuilderResult>> + Send {
        let outcome = blocking(|| self.0.build(request));
        std::future::ready(outcome)
    }
}

impl<A: Auditor + Send> AsyncAuditor for Blocking<A> {
    fn audit(
        &mut self,
        request: &AuditorRequest,
    ) -> impl Future<Output = AgentOutcome<AuditorResult>> + Send {
        let outcome = blocking(|| self.0.audit(request));
        std::future::ready(outcome)
    }
}

/// The pieces an [`AsyncDriver`] drives: async agents, and the blocking gate, CI,
/// artefacts, tripwire and observer of a [`Host`], each `Send`.
pub struct AsyncHost<'a, B, A> {
    /// The Builder.
    pub builder: B,
    /// The Auditor.
    pub auditor: A,
    /// The gate's apply path.
    pub applier: &'a mut (dyn Applier + Send),
    /// CI.
    pub verifier: &'a mut (dyn Verifier + Send),
    /// Views, summaries, incident packs.
    pub artefacts: &'a mut (dyn Artefacts + Send),
    /// Checked after every agent and CI attempt.
    pub tripwire: &'a mut (dyn Tripwire + Send),
    /// The clock every input's time is read from.
    pub clock: &'a dyn Clock,
    /// Progress.
    pub observer: &'a mut (dyn Observer + Send),
}

/// Runs the Supervisor's loop over an [`AsyncHost`], journaling to a [`RunStore`]: the
/// async counterpart of [`Driver::run`](super::Driver::run) and
/// [`Driver::resume`](super::Driver::resume), with the same journal, the same actions and
/// the same record for the same answers.
///
/// ```
/// use autopack::core::clock::ManualClock;
/// use autopack::core::journal::MemoryRunStore;
/// use autopack::core::message::{BuilderRequest, BuilderResult};
/// use autopack::driver::{AsyncBuilder, AsyncDriver, AsyncHost, Blocking};
/// use autopack::host::EscalatingAuditor;
/// # use autopack::driver::{Applier, ApplyOutcome, HostError, NoArtefacts, NoTripwire, Quiet, Verifier};
/// # use autopack::supervisor::{CiReport, CiRequest, PatchRequest, SnapshotRequest};
/// use autopack::supervisor::{AgentOutcome, SupervisorConfig};
///
/// /// A Builder that would call a model over HTTP.
/// struct Remote;
///
/// impl AsyncBuilder for Remote {
///     async fn build(&mut self, request: &BuilderRequest) -> AgentOutcome<BuilderResult> {
///         tokio::task::yield_now().await; // the request to the model
///         AgentOutcome::Returned(BuilderResult::success(
///             request.phase_id.clone(),
///             format!("diff --git a/{0} b/{0}\n", request.phase_id),
///         ))
///     }
/// }
/// # struct Gate;
/// # impl Applier for Gate {
/// #     fn apply(&mut self, r: &PatchRequest) -> Result<ApplyOutcome, HostError> {
/// #         Ok(ApplyOutcome::Applied { commit: autopack::core::ids::CommitId::new("0".repeat(40)).unwrap(), holds: vec![] })
/// #     }
/// #     fn snapshot(&mut self, _: &SnapshotRequest) -> Result<(), HostError> { Ok(()) }
/// # }
/// # struct Green;
/// # impl Verifier for Green {
/// #     fn verify(&mut self, _: &CiRequest) -> Result<CiReport, HostError> {
/// #         Ok(CiReport::new(autopack::core::record::CiVerdict::Green, 1))
/// #     }
/// # }
/// # fn start() -> autopack::supervisor::Input {
/// #     let plan = autopack::core::plan::Plan::from_json(r#"{"run": {"run_id": "r1"},
/// #       "tiers": [{"tier_id": "t1", "tier_index": 0, "name": "T"}],
/// #       "phases": [{"phase_id": "p1", "phase_index": 0, "tier_id": "t1", "name": "P",
/// #                   "task_category": "docs"}]}"#, "plan.json").unwrap();
/// #     let strategy = autopack::strategy::dry_run(&plan, None, None).unwrap();
/// #     autopack::supervisor::Input::Start { at: chrono::Utc::now(), plan, strategy: Box::new(strategy),
/// #         backlog: Box::default() }
/// # }
///
/// # #[tokio::main]
/// # async fn main() {
/// let clock = ManualClock::new(chrono::Utc::now());
/// let mut store = MemoryRunStore::default();
/// let host = AsyncHost {
///     builder: Remote,
///     auditor: Blocking(EscalatingAuditor),
///     applier: &mut Gate,
///     verifier: &mut Green,
///     artefacts: &mut NoArtefacts,
///     tripwire: &mut NoTripwire,
///     clock: &clock,
///     observer: &mut Quiet,
/// };
/// let (outcome, _supervisor) =
///     AsyncDriver::run(start(), SupervisorConfig::default(), &mut store, host)
///         .await
///         .unwrap();
/// assert_eq!(outcome.state(), autopack::core::lifecycle::RunState::DoneSuccess);
/// # }
/// ```
pub struct AsyncDriver<'a, S: RunStore, B, A> {
    stepper: Stepper<'a, S>,
    host: AsyncHost<'a, B, A>,
}

impl<'a, S, B, A> AsyncDriver<'a, S, B, A>
where
    S: RunStore + Send,
    B: AsyncBuilder,
    A: AsyncAuditor,
{
    /// Starts a run and drives it to its end, as [`Driver::run`](super::Driver::run).
    ///
    /// # Errors
    /// As [`Driver::run`](super::Driver::run).
    pub async fn run(
        start: Input,
        config: SupervisorConfig,
        store: &'a mut S,
        host: AsyncHost<'a, B, A>,
    ) -> Result<(DriveOutcome, Supervisor), DriverError> {
        let stepper = blocking(|| Stepper::begin(start, config, store))?;
        let mut driver = AsyncDriver { stepper, host };
        let state = driver.pump().await?;
        Ok((DriveOutcome::Finished(state), driver.stepper.supervisor))
    }

    /// Continues a run from its journal, as [`Driver::resume`](super::Driver::resume).
    ///
    /// # Errors
    /// As [`Driver::resume`](super::Driver::resume).
    pub async fn resume(
        run_id: &RunId,
        store: &'a mut S,
        host: AsyncHost<'a, B, A>,
    ) -> Result<(DriveOutcome, Supervisor), DriverError> {
        let replayed = blocking(|| replay_run(store, run_id))?;
        AsyncDriver::resume_replayed(replayed, run_id, store, host).await
    }

    /// Continues a run the caller replayed already, as
    /// [`Driver::resume_replayed`](super::Driver::resume_replayed).
    ///
    /// # Errors
    /// As [`Driver::resume`](super::Driver::resume).
    pub async fn resume_replayed(
        replayed: Replayed,
        run_id: &RunId,
        store: &'a mut S,
        mut host: AsyncHost<'a, B, A>,
    ) -> Result<(DriveOutcome, Supervisor), DriverError> {
        let stepper = blocking(|| {
            let (mut builder, mut auditor) = (AnsweredElsewhere, AnsweredElsewhere);
            let mut parts = host.blocking_parts(&mut builder, &mut auditor);
            Stepper::reopen(replayed, run_id, store, &mut parts)
        })?;
        let mut driver = AsyncDriver { stepper, host };
        if driver.stepper.already_finished {
            let state = driver.stepper.supervisor.state();
            return Ok((
                DriveOutcome::AlreadyFinished(state),
                driver.stepper.supervisor,
            ));
        }
        let state = driver.pump().await?;
        Ok((DriveOutcome::Finished(state), driver.stepper.supervisor))
    }

    async fn pump(&mut self) -> Result<RunState, DriverError> {
        loop {
            match self.step(|stepper, parts| stepper.advance(parts))? {
                Step::Agent(AgentCall::Builder(request)) => {
                    let outcome = self.host.builder.build(&request).await;
                    self.step(|stepper, parts| stepper.builder_finished(parts, outcome))?;
                }
                Step::Agent(AgentCall::Auditor(request)) => {
                    let outcome = self.host.auditor.audit(&request).await;
                    self.step(|stepper, parts| stepper.auditor_finished(parts, outcome))?;
                }
                Step::Finished(state) => return Ok(state),
            }
        }
    }

    /// Runs one blocking step of the shared stepper over the host's blocking parts.
    fn step<T>(&mut self, f: impl FnOnce(&mut Stepper<'a, S>, &mut Host<'_>) -> T) -> T {
        let AsyncDriver { stepper, host } = self;
        blocking(|| {
            // The stepper never calls agents; the async ones are awaited in `pump`.
            let (mut builder, mut auditor) = (AnsweredElsewhere, AnsweredElsewhere);
            let mut parts = host.blocking_parts(&mut builder, &mut auditor);
            f(stepper, &mut parts)
        })
    }
}

impl<B, A> AsyncHost<'_, B, A> {
    /// The blocking parts as a [`Host`] for one step, with `builder` and `auditor` in the
    /// agents' places.
    fn blocking_parts<'b>(
        &'b mut self,
        builder: &'b mut dyn Builder,
        auditor: &'b mut dyn Auditor,
    ) -> Host<'b> {
        Host {
            builder,
            auditor,
            applier: &mut *self.applier,
            verifier: &mut *self.verifier,
            artefacts: &mut *self.artefacts,
            tripwire: &mut *self.tripwire,
            clock: self.clock,
            observer: &mut *self.observer,
        }
    }
}

/// Runs blocking work without stalling the runtime's other tasks where tokio allows it.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
