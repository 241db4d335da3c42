//! Hosting a run in a git repository: everything between "here is a plan and a Builder"
//! and a finished run with its artefacts — the ruleset and strategy, one writer per run,
//! the integration branch, private workspaces, the sandbox, CI through the preflight
//! gate, `.autonomous_runs/` artefacts and the journal, and resume after a crash. The
//! `autopack` command line, `autopack serve` and an embedder all call this module.
//!
//! [`Runner::start`] runs a plan to its end; [`Runner::resume`] continues a run from its
//! journal (after a crash, a kill, or a lost machine), or only repairs the artefacts of a
//! run that finished. The host's settings of a run are a [`RunConfig`], saved beside the
//! run so that a resume rebuilds the same host. Agents are any
//! [`Builder`](crate::driver::Builder) and [`Auditor`](crate::driver::Auditor): [`Agents`] for agents of the caller's own, or an [`AgentSource`] that
//! builds them from the run's configuration (as the CLI's command agents are).
//!
//! ```no_run
//! use autopack::driver::{Auditor, Builder};
//! use autopack::runner::{Agents, RunConfig, Runner, Stores};
//! # fn agents() -> (Box<dyn Builder>, Box<dyn Auditor>) { unimplemented!() }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plan = autopack::core::plan::Plan::from_json(&std::fs::read_to_string("plan.json")?, "plan.json")?;
//! let (mut builder, mut auditor) = agents();
//! let runner = Runner::new("path/to/repo", Stores::Files)?;
//! let config = RunConfig::new("main", "cargo test");
//! let ended = runner.start(&plan, None, &config, &mut Agents::new(&mut *builder, &mut *auditor))?;
//! println!("{}: {}", ended.record.run_id, ended.record.state);
//! // After a crash, the same run continues from its journal:
//! let ended = runner.resume(&plan.run.run_id, &mut Agents::new(&mut *builder, &mut *auditor))?;
//! # Ok(()) }
//! ```
//!
//! The steps are public too ([`take_run`], [`prepare`], [`sandbox`], [`replay`],
//! [`repair_finished`], [`export`], [`load_record`], …) for hosts that need to see
//! between them; [`Runner`] is the one order they are meant to run in.

mod config;
mod drive;
mod error;
mod prepare;
mod records;
mod stores;
mod verification;
mod whatif;
mod writer;

use std::path::{Path, PathBuf};

use autopack_core::ids::RunId;
use autopack_core::plan::Plan;
use autopack_core::record::RunRecord;
use autopack_layout::RunsRoot;
use autopack_sandbox::Sandbox;
use autopack_strategy::Ruleset;

pub use config::{
    MAX_BACKOFF_MILLIS, MAX_BYTES_LIMIT, MAX_TIMEOUT_SECS, NetworkRule, RUN_CONFIG_FILE, RunConfig,
    RunConfigInvalid, SandboxSettings,
};
pub use drive::{Agents, SteppedAgents};
pub use error::{Cause, RunnerError};
pub use prepare::{Prepared, export, only_project, prepare, resolve_ruleset, saved_strategy};
pub use records::{
    RunRead, all_records, expected_artefacts, load_record, project_artefacts, repair_finished,
    replay,
};
pub use stores::{
    Journal, Rulesets, RunArtefacts, RunWriterLease, STORE_ENV, StoreError, Stores, Strategies,
};
#[cfg(feature = "postgres")]
pub use stores::{LEASE_TTL_ENV, RETRY_ENV};
pub use verification::{attest_run, verify_run};
pub use whatif::{what_if_all, what_if_run};
pub use writer::{PROCESSES_FILE, RunWriter, sandbox, take_run};

use crate::driver::DriveOutcome;
use drive::Answering;

/// The folder of artefacts inside a repository.
pub const RUNS_DIR: &str = ".autonomous_runs";
/// The folder in a run's folder that keeps a log of every agent attempt.
pub const AGENT_LOGS_DIR: &str = "agents";
/// Project id of the built-in ruleset when a repository has none.
pub const DEFAULT_PROJECT: &str = "default";

/// The `.autonomous_runs/` layout of a repository.
pub fn runs_root(repo: &Path) -> RunsRoot {
    RunsRoot::new(repo.join(RUNS_DIR))
}

/// How a started or resumed run ended (in this call, or before it).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Ended {
    /// Whether this call drove the run, or found it finished.
    pub outcome: DriveOutcome,
    /// The run's final record.
    pub record: RunRecord,
}

/// What a started or resumed run needs to build its agents.
#[derive(Debug)]
#[non_exhaustive]
pub struct RunContext<'a> {
    /// The run.
    pub run_id: &'a RunId,
    /// Its layout.
    pub root: &'a RunsRoot,
    /// Its host settings (saved; a resume reads them back).
    pub config: &'a RunConfig,
    /// The sandbox its processes run in.
    pub sandbox: &'a Sandbox,
}

impl RunContext<'_> {
    /// Where the run keeps a log of every agent attempt.
    pub fn agent_logs(&self) -> PathBuf {
        self.root.run_dir(self.run_id).join(AGENT_LOGS_DIR)
    }
}

/// Supplies a run's agents once the run's configuration and sandbox are known, and hears
/// what the runner does on the way (all notices are optional).
pub trait AgentSource {
    /// The run's Builder, Auditor and observer.
    ///
    /// # Errors
    /// The agents cannot be built from the run's configuration.
    fn agents(&mut self, run: &RunContext<'_>) -> Result<Agents<'_>, RunnerError>;

    /// What a dead writer of the run left and was cleaned up, one line each.
    fn on_reclaimed(&mut self, _lines: &[String]) {}

    /// A new run is prepared (strategy compiled and saved) and about to start.
    fn on_prepared(&mut self, _prepared: &Prepared) {}

    /// The run stopped being driven (ended, or failed); the agents were dropped.
    fn on_end(&mut self) {}
}

impl AgentSource for Agents<'_> {
    fn agents(&mut self, _run: &RunContext<'_>) -> Result<Agents<'_>, RunnerError> {
        Ok(Agents {
            builder: &mut *self.builder,
            auditor: &mut *self.auditor,
            observer: &mut *self.observer,
        })
    }
}

/// Runs plans in one repository with one kind of store: the order of the steps of
/// hosting a run, in one place.
#[derive(Debug)]
pub struct Runner {
    repo: PathBuf,
    stores: Stores,
}

/// Who answers a run's attempts, as the runner is asked to start or resume it.
enum Answerer<'a> {
    Local(&'a mut dyn AgentSource),
    Stepped(Box<dyn SteppedAgents + 'a>),
}

impl Answerer<'_> {
    fn on_reclaimed(&mut self, lines: &[String]) {
        if let Answerer::Local(source) = self {
            source.on_reclaimed(lines);
        }
    }
}

impl Runner {
    /// A runner over the repository at `repo` (made absolute: agents, workspaces and CI
    /// are given absolute paths whatever the caller's directory) with `stores`.
    ///
    /// # Errors
    /// [`RunnerError::NoRepository`] when `repo` does not exist.
    pub fn new(repo: impl AsRef<Path>, stores: Stores) -> Result<Runner, RunnerError> {
        let repo = repo.as_ref();
        let canonical = repo
            .canonicalize()
            .map_err(|source| RunnerError::NoRepository {
                path: repo.to_owned(),
                source,
            })?;
        Ok(Runner {
            repo: canonical,
            stores,
        })
    }

    /// The repository (absolute).
    pub fn repo(&self) -> &Path {
        &self.repo
    }

    /// The stores.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// The repository's `.autonomous_runs/` layout.
    pub fn root(&self) -> RunsRoot {
        runs_root(&self.repo)
    }

    /// Starts `plan` (with `ruleset`, else the repository's, else the built-in one) with
    /// the host settings `config`, and drives it to its end with the agents of `agents`.
    /// Takes the run's lease first (a second writer is refused at once), compiles and
    /// saves the strategy, saves `config` as the run's `run_config.json`, creates
    /// `autonomous/{run_id}` from `config.base`.
    ///
    /// # Errors
    /// A value of `config` out of range (nothing written), another writer, an existing
    /// run, no sandbox, the agents, the branch, or the driver.
    pub fn start(
        &self,
        plan: &Plan,
        ruleset: Option<Ruleset>,
        config: &RunConfig,
        agents: &mut dyn AgentSource,
    ) -> Result<Ended, RunnerError> {
        self.start_with(plan, ruleset, config, Answerer::Local(agents))
    }

    /// [`Runner::start`] with every attempt answered elsewhere, step by step (a service's
    /// session); returns when the run ends or the answerer stops driving it.
    ///
    /// # Errors
    /// As [`Runner::start`].
    pub fn start_stepped(
        &self,
        plan: &Plan,
        ruleset: Option<Ruleset>,
        config: &RunConfig,
        agents: Box<dyn SteppedAgents + '_>,
    ) -> Result<Ended, RunnerError> {
        self.start_with(plan, ruleset, config, Answerer::Stepped(agents))
    }

    /// Continues `run_id` from its journal with the host settings it was started with
    /// (its `run_config.json`) and the agents of `agents`. A run that had finished only
    /// has its artefacts brought up to its journal (no agents are built), and its end is
    /// [`DriveOutcome::AlreadyFinished`].
    ///
    /// # Errors
    /// Another writer, no journal, a journal that does not replay, no configuration, no
    /// sandbox, the agents, the branch, or the driver.
    pub fn resume(
        &self,
        run_id: &RunId,
        agents: &mut dyn AgentSource,
    ) -> Result<Ended, RunnerError> {
        self.resume_with(run_id, Answerer::Local(agents))
    }

    /// [`Runner::resume`] answered elsewhere, as [`Runner::start_stepped`].
    ///
    /// # Errors
    /// As [`Runner::resume`].
    pub fn resume_stepped(
        &self,
        run_id: &RunId,
        agents: Box<dyn SteppedAgents + '_>,
    ) -> Result<Ended, RunnerError> {
        self.resume_with(run_id, Answerer::Stepped(agents))
    }

    fn start_with(
        &self,
        plan: &Plan,
        ruleset: Option<Ruleset>,
        config: &RunConfig,
        mut answerer: Answerer<'_>,
    ) -> Result<Ended, RunnerError> {
        let run_id = &plan.run.run_id;
        let root = self.root();
        config.validate().map_err(|source| RunnerError::Config {
            path: root.run_dir(run_id).join(RUN_CONFIG_FILE),
            source,
        })?;
        let writer = take_run(&self.repo, &self.stores, run_id)?;
        answerer.on_reclaimed(&writer.reclaimed);
        let prepared = prepare(&self.repo, &self.stores, plan, ruleset)?;
        let sandbox = sandbox(&root, run_id, config)?;
        config.save(&root, run_id)?;
        if let Answerer::Local(source) = &mut answerer {
            source.on_prepared(&prepared);
        }
        let drive = |answering| {
            drive::start(
                &self.repo,
                &self.stores,
                &writer,
                plan,
                prepared,
                config,
                &sandbox,
                answering,
            )
        };
        let (outcome, record) = match answerer {
            Answerer::Local(source) => {
                let context = RunContext {
                    run_id,
                    root: &root,
                    config,
                    sandbox: &sandbox,
                };
                let result = match source.agents(&context) {
                    Ok(agents) => drive(Answering::Here(agents)),
                    Err(e) => Err(e),
                };
                source.on_end();
                result?
            }
            Answerer::Stepped(agents) => drive(Answering::Stepped(agents))?,
        };
        self.attest_ended(&record)?;
        Ok(Ended { outcome, record })
    }

    /// Writes the attestation of a run that ended (an unfinished one has none).
    fn attest_ended(&self, record: &RunRecord) -> Result<(), RunnerError> {
        if record.state.is_terminal() {
            attest_run(&self.repo, &self.stores, &record.run_id, None)?;
        }
        Ok(())
    }

    fn resume_with(
        &self,
        run_id: &RunId,
        mut answerer: Answerer<'_>,
    ) -> Result<Ended, RunnerError> {
        let root = self.root();
        // One writer per run: a second resume (or a live start) is refused here, before
        // anything is read or written.
        let writer = take_run(&self.repo, &self.stores, run_id)?;
        answerer.on_reclaimed(&writer.reclaimed);
        let replayed = replay(&self.repo, &self.stores, run_id)?;
        if replayed.supervisor.is_finished() {
            // A finished run needs no host: only its artefacts are brought up to its
            // journal.
            let record = repair_finished(&self.repo, &self.stores, run_id, &replayed)?;
            self.attest_ended(&record)?;
            return Ok(Ended {
                outcome: DriveOutcome::AlreadyFinished(record.state),
                record,
            });
        }
        let config = RunConfig::load(&root, run_id)?;
        let sandbox = sandbox(&root, run_id, &config)?;
        let drive = |answering| {
            drive::resume(
                &self.repo,
                &self.stores,
                &writer,
                run_id,
                replayed,
                &config,
                &sandbox,
                answering,
            )
        };
        let (outcome, record) = match answerer {
            Answerer::Local(source) => {
                let context = RunContext {
                    run_id,
                    root: &root,
                    config: &config,
                    sandbox: &sandbox,
                };
                let result = match source.agents(&context) {
                    Ok(agents) => drive(Answering::Here(agents)),
                    Err(e) => Err(e),
                };
                source.on_end();
                result?
            }
            Answerer::Stepped(agents) => drive(Answering::Stepped(agents))?,
        };
        self.attest_ended(&record)?;
        drop(writer);
        Ok(Ended { outcome, record })
    }
}
