//! Driving a prepared run: the host side of a run (governed apply path, CI in the run's
//! CI workspace, the agents' private workspaces, the tripwire) around a
//! [`Driver`](crate::driver::Driver), with agents that answer here or elsewhere.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use autopack_apply::workspace::Workspaces;
use autopack_apply::{BranchOptions, IntegrationBranch};
use autopack_core::clock::SystemClock;
use autopack_core::ids::RunId;
use autopack_core::lifecycle::RunState;
use autopack_core::plan::Plan;
use autopack_core::record::RunRecord;
use autopack_sandbox::Sandbox;

use super::config::RunConfig;
use super::error::{Doing as _, RunnerError};
use super::prepare::Prepared;
use super::records::{repair_finished, resume_artefacts};
use super::runs_root;
use super::stores::{Journal, RunArtefacts, Stores};
use super::writer::RunWriter;
use crate::driver::{
    AnsweredElsewhere, Auditor, Builder, DriveOutcome, Driver, DriverError, Host, Observer,
    Replayed,
};
use crate::host::{GitApplier, GitTripwire, GitVerifier, InWorkspace};
use crate::supervisor::{Input, SupervisorConfig};

/// The agents and observer of a run.
pub struct Agents<'a> {
    /// The Builder.
    pub builder: &'a mut dyn Builder,
    /// The Auditor.
    pub auditor: &'a mut dyn Auditor,
    /// Progress.
    pub observer: &'a mut dyn Observer,
}

impl<'a> Agents<'a> {
    /// A Builder and an Auditor, observed by nobody.
    pub fn new(builder: &'a mut dyn Builder, auditor: &'a mut dyn Auditor) -> Agents<'a> {
        Agents {
            builder,
            auditor,
            // `Quiet` is zero-sized: leaking it allocates nothing, and gives the borrow
            // any lifetime.
            observer: Box::leak(Box::new(crate::driver::Quiet)),
        }
    }

    /// These agents, with `observer` told of every action and input.
    pub fn observed_by(self, observer: &'a mut dyn Observer) -> Agents<'a> {
        Agents { observer, ..self }
    }
}

/// Agents that answer a run's attempts somewhere else (a service's remote workers and
/// HTTP clients): the run is driven step by step, [`SteppedAgents::drive`] answering
/// each [`Step::Agent`](crate::driver::Step::Agent) through
/// [`Driver::builder_finished`] / [`Driver::auditor_finished`].
pub trait SteppedAgents {
    /// What follows the run's changes while it is driven.
    fn observer(&self) -> Box<dyn Observer>;

    /// Drives `driver` to the run's end (or until the service stops serving the run).
    ///
    /// # Errors
    /// The driver fails.
    fn drive(self: Box<Self>, driver: &mut Driver<'_, Journal>) -> Result<RunState, DriverError>;
}

/// Who answers the run's agent attempts.
pub(crate) enum Answering<'a> {
    /// The host's own agents, to the end of the run.
    Here(Agents<'a>),
    /// Elsewhere, step by step.
    Stepped(Box<dyn SteppedAgents + 'a>),
}

/// How [`Wiring::drive`] begins.
pub(crate) enum Drive {
    /// A new run.
    Start(Box<Input>),
    /// A run replayed from its journal (boxed: it holds the whole Supervisor).
    Resume(Box<Replayed>),
}

/// The host side of a run besides agents and artefacts: the governed apply path, CI in
/// the run's CI workspace, the Builder's and Auditor's workspaces and the tripwire.
struct Wiring {
    applier: GitApplier,
    verifier: GitVerifier,
    workspaces: Arc<Workspaces>,
    tripwire: GitTripwire,
    builder_branch: IntegrationBranch,
    auditor_branch: IntegrationBranch,
}

impl Wiring {
    fn new(
        repo: &Path,
        run_id: &RunId,
        config: &RunConfig,
        branch: IntegrationBranch,
        sandbox: &Sandbox,
    ) -> Result<Wiring, RunnerError> {
        let open = || {
            IntegrationBranch::open(repo, run_id, &config.base, BranchOptions::default())
                .doing(|| format!("opening the integration branch of run {run_id}"))
        };
        let parent = config
            .workspace_dir
            .clone()
            .unwrap_or_else(Workspaces::default_parent);
        // What crashed processes left behind; a live run's folder is locked and stays.
        Workspaces::reclaim_stale(&parent)
            .doing(|| format!("reclaiming stale workspaces in {}", parent.display()))?;
        let workspaces = Arc::new(
            Workspaces::open(repo, run_id, &parent)
                .doing(|| format!("opening the workspaces of run {run_id}"))?,
        );
        Ok(Wiring {
            verifier: GitVerifier::new(config.gate(sandbox), Arc::clone(&workspaces)).with_base(
                branch
                    .status()
                    .doing(|| format!("reading the integration branch of run {run_id}"))?
                    .base,
            ),
            applier: GitApplier::new(branch, config.signature())
                .with_max_patch_bytes(config.max_patch_bytes)
                .with_ci_commands(config.ci_commands()),
            tripwire: GitTripwire::arm(repo, run_id)
                .doing(|| format!("arming the tripwire on {}", repo.display()))?,
            workspaces,
            builder_branch: open()?,
            auditor_branch: open()?,
        })
    }

    /// Drives the run with `drive`, then removes the workspaces of a run that ended.
    fn drive(
        self,
        run_id: &RunId,
        answering: Answering<'_>,
        artefacts: &mut RunArtefacts,
        store: &mut Journal,
        drive: Drive,
    ) -> Result<(DriveOutcome, RunRecord), RunnerError> {
        let Wiring {
            mut applier,
            mut verifier,
            workspaces,
            mut tripwire,
            builder_branch,
            auditor_branch,
        } = self;
        let mut elsewhere = AnsweredElsewhere;
        let mut elsewhere_auditor = AnsweredElsewhere;
        let mut stepped_observer = None;
        let mut stepped = None;
        let (agent_builder, agent_auditor, observer): (
            &mut dyn Builder,
            &mut dyn Auditor,
            &mut dyn Observer,
        ) = match answering {
            Answering::Here(agents) => (agents.builder, agents.auditor, agents.observer),
            Answering::Stepped(agents) => {
                let observer = stepped_observer.insert(agents.observer());
                stepped = Some(agents);
                (&mut elsewhere, &mut elsewhere_auditor, &mut **observer)
            }
        };
        let mut builder = InWorkspace::new(agent_builder, builder_branch, Arc::clone(&workspaces));
        let mut auditor = InWorkspace::new(agent_auditor, auditor_branch, Arc::clone(&workspaces));
        let clock = SystemClock;
        let host = Host {
            builder: &mut builder,
            auditor: &mut auditor,
            applier: &mut applier,
            verifier: &mut verifier,
            artefacts,
            tripwire: &mut tripwire,
            clock: &clock,
            observer,
        };
        let resume_hint = || format!("(`autopack resume {run_id}` continues it from its journal)");
        let (outcome, supervisor) = match (drive, stepped) {
            (Drive::Start(start), None) => {
                Driver::run(*start, SupervisorConfig::default(), store, host)
                    .doing(|| format!("driving run {run_id} {}", resume_hint()))?
            }
            (Drive::Resume(replayed), None) => {
                Driver::resume_replayed(*replayed, run_id, store, host)
                    .doing(|| format!("resuming run {run_id} {}", resume_hint()))?
            }
            (drive, Some(stepped)) => {
                let mut driver = match drive {
                    Drive::Start(start) => {
                        Driver::begin(*start, SupervisorConfig::default(), store, host)
                            .doing(|| format!("starting run {run_id}"))?
                    }
                    Drive::Resume(replayed) => Driver::reopen(*replayed, run_id, store, host)
                        .doing(|| format!("resuming run {run_id}"))?,
                };
                let was_finished = driver.was_finished();
                let state = stepped.drive(&mut driver).doing(|| {
                    format!("serving run {run_id} (`autopack serve` resumes it at its next start)")
                })?;
                let outcome = if was_finished {
                    DriveOutcome::AlreadyFinished(state)
                } else {
                    DriveOutcome::Finished(state)
                };
                (outcome, driver.into_supervisor())
            }
        };
        let record = supervisor
            .record()
            .cloned()
            .ok_or_else(|| RunnerError::NoRecord {
                run_id: run_id.clone(),
            })?;
        drop((builder, auditor, verifier));
        // A run a server stopped serving keeps its workspaces for the next one.
        if record.state.is_terminal()
            && let Ok(workspaces) = Arc::try_unwrap(workspaces)
        {
            let dir = workspaces.dir().to_owned();
            if let Err(e) = workspaces.remove() {
                // A folder left behind is reclaimed by the next run; the run's result stands.
                let _ = writeln!(
                    std::io::stderr(),
                    "warning: could not remove the workspaces {}: {e}",
                    dir.display()
                );
            }
        }
        Ok((outcome, record))
    }
}

/// Starts the run: creates `autonomous/{run_id}` from `config.base` and drives the run to
/// its end with `answering`. Returns the outcome and the final record.
///
/// # Errors
/// The branch cannot be created (exists and moved, protected, base missing) or the
/// driver fails.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start(
    repo: &Path,
    stores: &Stores,
    writer: &RunWriter,
    plan: &Plan,
    mut prepared: Prepared,
    config: &RunConfig,
    sandbox: &Sandbox,
    answering: Answering<'_>,
) -> Result<(DriveOutcome, RunRecord), RunnerError> {
    let run_id = plan.run.run_id.clone();
    let branch =
        match IntegrationBranch::create(repo, &run_id, &config.base, BranchOptions::default()) {
            // `prepare` found no start in the journal: an earlier start of this run died
            // before its first line, after creating the branch. Nothing was committed to it
            // yet, so it is taken as it is when it still sits on the base.
            Err(autopack_apply::ApplyError::BranchExists { .. }) => {
                let opening = || format!("opening the integration branch of run {run_id}");
                let branch =
                    IntegrationBranch::open(repo, &run_id, &config.base, BranchOptions::default())
                        .doing(opening)?;
                let status = branch.status().doing(opening)?;
                if status.commits_ahead > 0 || !status.snapshot_tags.is_empty() {
                    return Err(RunnerError::BranchMoved {
                        run_id: run_id.clone(),
                        branch: autopack_apply::refs::integration_ref(&run_id),
                        base: config.base.clone(),
                    });
                }
                branch
            }
            other => other.doing(|| {
                format!(
                    "creating the integration branch of run {run_id} from {}",
                    config.base
                )
            })?,
        };
    let wiring = Wiring::new(repo, &run_id, config, branch, sandbox)?;
    let backlog = prepared.artefacts.ledger().backlog();
    let mut store = stores.journal_of(&prepared.root, writer.store_lease());
    let start = Input::Start {
        at: autopack_core::clock::Clock::now(&SystemClock),
        plan: plan.clone(),
        strategy: Box::new(prepared.strategy.clone()),
        backlog: Box::new(backlog),
    };
    wiring.drive(
        &run_id,
        answering,
        &mut prepared.artefacts,
        &mut store,
        Drive::Start(Box::new(start)),
    )
}

/// Continues a run from its journal (`replayed`) with the host described by `config`. A
/// finished run only has its artefacts repaired ([`repair_finished`]).
///
/// # Errors
/// A missing branch, or a driver failure.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resume(
    repo: &Path,
    stores: &Stores,
    writer: &RunWriter,
    run_id: &RunId,
    replayed: Replayed,
    config: &RunConfig,
    sandbox: &Sandbox,
    answering: Answering<'_>,
) -> Result<(DriveOutcome, RunRecord), RunnerError> {
    if replayed.supervisor.is_finished() {
        let record = repair_finished(repo, stores, run_id, &replayed)?;
        return Ok((DriveOutcome::AlreadyFinished(record.state), record));
    }
    let root = runs_root(repo);
    let mut store = stores.journal_of(&root, writer.store_lease());
    let mut artefacts: RunArtefacts = resume_artefacts(&root, stores, run_id)?;
    let branch = IntegrationBranch::open(repo, run_id, &config.base, BranchOptions::default())
        .doing(|| format!("opening the integration branch of run {run_id}"))?;
    let wiring = Wiring::new(repo, run_id, config, branch, sandbox)?;
    wiring.drive(
        run_id,
        answering,
        &mut artefacts,
        &mut store,
        Drive::Resume(Box::new(replayed)),
    )
}
