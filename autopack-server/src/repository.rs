//! The run host of a git repository (what `autopack serve` serves): the library's
//! [`Runner`] — ruleset, strategy, integration branch, lease, gate, sandboxed CI,
//! `.autonomous_runs/` artefacts, the filesystem or PostgreSQL stores — with every agent
//! attempt answered through the service (remote workers, the first implementation's
//! clients) instead of a local command.

use std::path::Path;

use autopack::apply::{BranchOptions, IntegrationBranch, PromoteMode, PromoteOptions};
use autopack::core::ids::{ProjectId, RunId};
use autopack::core::journal::RunStore as _;
use autopack::core::lifecycle::RunState;
use autopack::core::plan::Plan;
use autopack::core::record::RunRecord;
use autopack::driver::{Driver, DriverError, Observer};
use autopack::issues::ProjectBacklog;
use autopack::runner::{
    Journal, RunConfig, Runner, RunnerError, SteppedAgents, Stores, only_project, project_artefacts,
};
use autopack::strategy::Ruleset;

use crate::Session;
use crate::host::{HostFailure, IntegrationStatus, Promoted, RunHost, StoredRun};

impl SteppedAgents for Session {
    fn observer(&self) -> Box<dyn Observer> {
        Box::new(Session::observer(self))
    }

    fn drive(self: Box<Self>, driver: &mut Driver<'_, Journal>) -> Result<RunState, DriverError> {
        Session::drive(*self, driver)
    }
}

/// The run host of a repository.
#[derive(Debug)]
pub struct RepositoryHost {
    runner: Runner,
    ruleset: Option<Ruleset>,
    project: ProjectId,
    /// The settings every run starts with (no agents: attempts are answered remotely).
    config: RunConfig,
}

fn failure(kind: fn(String) -> HostFailure) -> impl Fn(RunnerError) -> HostFailure {
    move |e| {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        kind(message)
    }
}

/// A failure to start: another writer is [`HostFailure::Elsewhere`], the host's own
/// settings (sandbox, configuration) [`HostFailure::Machinery`], the rest the request's.
fn start_failure(e: RunnerError) -> HostFailure {
    match &e {
        RunnerError::Held { .. } => failure(HostFailure::Elsewhere)(e),
        RunnerError::NoSandbox { .. } | RunnerError::Config { .. } => {
            failure(HostFailure::Machinery)(e)
        }
        _ => failure(HostFailure::Invalid)(e),
    }
}

fn resume_failure(e: RunnerError) -> HostFailure {
    match &e {
        RunnerError::Held { .. } => failure(HostFailure::Elsewhere)(e),
        _ => failure(HostFailure::Machinery)(e),
    }
}

impl RepositoryHost {
    /// A host over `repo`, its stores, the ruleset runs use (else the repository's) and
    /// the run settings.
    ///
    /// # Errors
    /// No such repository, a value of `config` out of range, or the repository's
    /// rulesets name several projects and none is given.
    pub fn new(
        repo: &Path,
        stores: Stores,
        ruleset: Option<Ruleset>,
        config: RunConfig,
    ) -> Result<RepositoryHost, RunnerError> {
        let runner = Runner::new(repo, stores)?;
        config.validate().map_err(|source| RunnerError::Config {
            path: runner.root().dir().to_owned(),
            source,
        })?;
        let project = match &ruleset {
            Some(r) => r.project_id.clone(),
            None => only_project(&runner.root(), runner.stores(), "--ruleset")?,
        };
        Ok(RepositoryHost {
            runner,
            ruleset,
            project,
            config,
        })
    }

    fn run_config(&self) -> RunConfig {
        RunConfig {
            // Each run's commits carry its own start time.
            signature_seconds: chrono::Utc::now().timestamp(),
            ..self.config.clone()
        }
    }
}

impl RunHost for RepositoryHost {
    fn start(&self, plan: Plan, session: Session) -> Result<RunState, HostFailure> {
        let ended = self
            .runner
            .start_stepped(
                &plan,
                self.ruleset.clone(),
                &self.run_config(),
                Box::new(session),
            )
            .map_err(start_failure)?;
        Ok(ended.record.state)
    }

    fn resume(&self, run_id: &RunId, session: Session) -> Result<RunState, HostFailure> {
        let ended = self
            .runner
            .resume_stepped(run_id, Box::new(session))
            .map_err(resume_failure)?;
        Ok(ended.record.state)
    }

    fn run_ids(&self) -> Result<Vec<RunId>, HostFailure> {
        self.runner
            .stores()
            .journal(&self.runner.root())
            .runs()
            .map_err(|e| HostFailure::Machinery(e.to_string()))
    }

    fn load(&self, run_id: &RunId) -> Result<Option<StoredRun>, HostFailure> {
        StoredRun::replay(
            &mut self.runner.stores().journal(&self.runner.root()),
            run_id,
        )
    }

    fn backlog(&self) -> Result<ProjectBacklog, HostFailure> {
        let artefacts = project_artefacts(
            &self.runner.root(),
            self.runner.stores(),
            &self.project,
            None,
        )
        .map_err(failure(HostFailure::Machinery))?;
        Ok(artefacts.ledger().backlog())
    }

    fn integration_status(&self, run_id: &RunId) -> Result<IntegrationStatus, HostFailure> {
        let branch = IntegrationBranch::open(
            self.runner.repo(),
            run_id,
            &self.config.base,
            BranchOptions::default(),
        )
        .map_err(|e| HostFailure::Machinery(e.to_string()))?;
        let status = branch
            .status()
            .map_err(|e| HostFailure::Machinery(e.to_string()))?;
        Ok(IntegrationStatus {
            branch: format!("autonomous/{run_id}"),
            commits_ahead: u32::try_from(status.commits_ahead).unwrap_or(u32::MAX),
            current_commit: status.tip.to_string(),
        })
    }

    fn promote(&self, run_id: &RunId, record: &RunRecord) -> Result<Promoted, HostFailure> {
        let signature = autopack::apply::CommitSignature {
            name: "autopack".into(),
            email: "autopack@example.invalid".into(),
            seconds: chrono::Utc::now().timestamp(),
            offset_minutes: 0,
        };
        let promoted = autopack::apply::promote(
            self.runner.repo(),
            run_id,
            &self.config.base,
            PromoteMode::FastForward,
            &autopack::promotion::promotion_record(record),
            &signature,
            &PromoteOptions::default(),
        )
        .map_err(|e| HostFailure::Invalid(e.to_string()))?;
        Ok(Promoted {
            target: promoted.target_ref.clone(),
            commit: promoted.new_tip.to_string(),
            message: if promoted.unchanged() {
                format!("run {run_id} is already in {}", promoted.target_ref)
            } else {
                format!(
                    "promoted run {run_id}: {} {} → {}",
                    promoted.target_ref, promoted.old_tip, promoted.new_tip
                )
            },
        })
    }
}
