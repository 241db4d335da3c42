//! `autopack serve`: the HTTP service over this repository's host — the run host of
//! `autopack run` (ruleset, strategy, integration branch, lease, gate, sandboxed CI,
//! `.autonomous_runs/` artefacts, the filesystem or PostgreSQL stores), with every agent
//! attempt answered through the service (remote workers, the first implementation's
//! clients) instead of a local command.

use std::path::{Path, PathBuf};

use autopack::apply::{BranchOptions, IntegrationBranch, PromoteMode, PromoteOptions};
use autopack::core::ids::{ProjectId, RunId};
use autopack::core::journal::RunStore;
use autopack::core::lifecycle::RunState;
use autopack::core::plan::Plan;
use autopack::core::record::RunRecord;
use autopack::issues::ProjectBacklog;
use autopack::strategy::Ruleset;
use autopack_server::Session;
use autopack_server::host::{HostFailure, IntegrationStatus, Promoted, RunHost, StoredRun};

use crate::host::{self, RunConfig};
use crate::stores::Stores;

/// The run host of `autopack serve`.
pub struct ServeHost {
    repo: PathBuf,
    stores: Stores,
    ruleset: Option<Ruleset>,
    project: ProjectId,
    /// The settings every run starts with (no agents: attempts are answered remotely).
    config: RunConfig,
}

fn failure(kind: fn(String) -> HostFailure) -> impl Fn(anyhow::Error) -> HostFailure {
    move |e| kind(format!("{e:#}"))
}

impl ServeHost {
    /// A host over `repo` (absolute), its stores, the ruleset runs use (else the
    /// repository's) and the run settings.
    ///
    /// # Errors
    /// The repository's rulesets name several projects and none is given.
    pub fn new(
        repo: &Path,
        stores: Stores,
        ruleset: Option<Ruleset>,
        config: RunConfig,
    ) -> anyhow::Result<ServeHost> {
        config.validate()?;
        let project = match &ruleset {
            Some(r) => r.project_id.clone(),
            None => host::only_project(&host::runs_root(repo), &stores, "--ruleset")?,
        };
        Ok(ServeHost {
            repo: repo.to_owned(),
            stores,
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

impl RunHost for ServeHost {
    fn start(&self, plan: Plan, session: Session) -> Result<RunState, HostFailure> {
        let run_id = plan.run.run_id.clone();
        let writer = host::take_run(&self.repo, &self.stores, &run_id)
            .map_err(failure(HostFailure::Elsewhere))?;
        let prepared = host::prepare(&self.repo, &self.stores, &plan, self.ruleset.clone())
            .map_err(failure(HostFailure::Invalid))?;
        let config = self.run_config();
        let sandbox = host::sandbox(&prepared.root, &run_id, &config)
            .map_err(failure(HostFailure::Machinery))?;
        config
            .save(&prepared.root, &run_id)
            .map_err(failure(HostFailure::Machinery))?;
        let (_, record) = host::start_served(
            &self.repo,
            &self.stores,
            &writer,
            &plan,
            prepared,
            &config,
            &sandbox,
            session,
        )
        .map_err(failure(HostFailure::Invalid))?;
        Ok(record.state)
    }

    fn resume(&self, run_id: &RunId, session: Session) -> Result<RunState, HostFailure> {
        let writer = host::take_run(&self.repo, &self.stores, run_id)
            .map_err(failure(HostFailure::Elsewhere))?;
        let replayed = host::replay(&self.repo, &self.stores, run_id)
            .map_err(failure(HostFailure::Machinery))?;
        let root = host::runs_root(&self.repo);
        let config = RunConfig::load(&root, run_id).map_err(failure(HostFailure::Machinery))?;
        let sandbox =
            host::sandbox(&root, run_id, &config).map_err(failure(HostFailure::Machinery))?;
        let (_, record) = host::resume_served(
            &self.repo,
            &self.stores,
            &writer,
            run_id,
            replayed,
            &config,
            &sandbox,
            session,
        )
        .map_err(failure(HostFailure::Machinery))?;
        Ok(record.state)
    }

    fn run_ids(&self) -> Result<Vec<RunId>, HostFailure> {
        self.stores
            .journal(&host::runs_root(&self.repo))
            .runs()
            .map_err(|e| HostFailure::Machinery(e.to_string()))
    }

    fn load(&self, run_id: &RunId) -> Result<Option<StoredRun>, HostFailure> {
        StoredRun::replay(
            &mut self.stores.journal(&host::runs_root(&self.repo)),
            run_id,
        )
    }

    fn backlog(&self) -> Result<ProjectBacklog, HostFailure> {
        let artefacts = host::project_artefacts(
            &host::runs_root(&self.repo),
            &self.stores,
            &self.project,
            None,
        )
        .map_err(failure(HostFailure::Machinery))?;
        Ok(artefacts.ledger().backlog())
    }

    fn integration_status(&self, run_id: &RunId) -> Result<IntegrationStatus, HostFailure> {
        let branch = IntegrationBranch::open(
            &self.repo,
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
            &self.repo,
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
