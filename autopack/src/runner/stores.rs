//! Where a host keeps runs: the `.autonomous_runs/` files (the embedded default) or a
//! PostgreSQL database shared by many hosts (`--store postgres://...` or
//! `AUTOPACK_STORE`). Either way the Markdown and JSON views of a run are materialised in
//! the `.autonomous_runs/` of the repository the run works on.

#[cfg(feature = "postgres")]
use std::time::Duration;

use autopack_core::ids::{ProjectId, RunId};
use autopack_core::journal::{JournalContents, RunStore};
use autopack_core::lease::LeaseHolder;
#[cfg(feature = "postgres")]
use autopack_core::lease::RunLeases as _;
use autopack_issues::{AgingThresholds, IssueObservation, Ledger};
#[cfg(feature = "postgres")]
use autopack_layout::project::ledger_files;
use autopack_layout::{
    FsRulesetStore, FsRunStore, FsStrategyStore, FsyncPolicy, LayoutError, RunsRoot,
};
#[cfg(feature = "postgres")]
use autopack_postgres::{
    Db, PgConfig, PgRulesetStore, PgRunLease, PgRunLeases, PgRunStore, PgStoreError,
    PgStrategyStore,
};
use autopack_strategy::{Ruleset, RulesetStore, Strategy, StrategyStore};
use chrono::{DateTime, Utc};

use super::error::{Doing as _, RunnerError};
use crate::driver::{Artefacts, HostError, RecordedIssue};
use crate::host::FsArtefacts;
#[cfg(feature = "postgres")]
use crate::host::{PgArtefacts, PgProjectLedger};
use crate::supervisor::Checkpoint;

/// The environment variable `--store` defaults to.
pub const STORE_ENV: &str = "AUTOPACK_STORE";
/// How long a PostgreSQL run lease lasts without its heartbeat, in seconds (default 30):
/// a writer that dies is taken over by the next `resume` after this long.
#[cfg(feature = "postgres")]
pub const LEASE_TTL_ENV: &str = "AUTOPACK_LEASE_TTL_SECS";
/// How long each database operation keeps reconnecting to an unreachable server before
/// the process gives up, in seconds (default 30).
#[cfg(feature = "postgres")]
pub const RETRY_ENV: &str = "AUTOPACK_STORE_RETRY_SECS";

/// Whole seconds from 1 to a day, from environment variable `name` (`None` when unset).
#[cfg(feature = "postgres")]
fn env_secs(name: &str) -> Result<Option<Duration>, RunnerError> {
    match std::env::var(name) {
        Ok(text) => {
            let secs: u64 = text
                .trim()
                .parse()
                .ok()
                .filter(|s| (1..=86_400).contains(s))
                .ok_or_else(|| RunnerError::StoreUrl {
                    url: format!("{name}={text:?}"),
                    reason: "expected whole seconds from 1 to 86400".into(),
                })?;
            Ok(Some(Duration::from_secs(secs)))
        }
        Err(_) => Ok(None),
    }
}

/// Where runs are kept.
#[derive(Debug, Clone)]
pub enum Stores {
    /// `.autonomous_runs/` of the repository.
    Files,
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(Db),
}

/// A failure of either kind of store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The filesystem store.
    #[error(transparent)]
    Files(#[from] LayoutError),
    /// The PostgreSQL store.
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Postgres(#[from] PgStoreError),
}

impl Stores {
    /// The store `url` names: none, or `files`, is the filesystem; `postgres://…` or
    /// `postgresql://…` (or `host=… dbname=…`) a database, connected to (and its schema
    /// migrated) now.
    ///
    /// # Errors
    /// A URL of no known kind, or a database that cannot be reached.
    pub fn open(url: Option<&str>) -> Result<Stores, RunnerError> {
        match url.map(str::trim) {
            None | Some("" | "files") => Ok(Stores::Files),
            Some(url)
                if url.starts_with("postgres://")
                    || url.starts_with("postgresql://")
                    || url.contains("dbname=") =>
            {
                Stores::open_postgres(url)
            }
            Some(other) => Err(RunnerError::StoreUrl {
                url: other.to_owned(),
                reason: "expected `files` or a PostgreSQL URL (postgres://user@host:port/database)"
                    .into(),
            }),
        }
    }

    #[cfg(feature = "postgres")]
    fn open_postgres(url: &str) -> Result<Stores, RunnerError> {
        let invalid = |e: PgStoreError| RunnerError::StoreUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        };
        let mut config = PgConfig::new(url).map_err(invalid)?;
        if let Some(wait) = env_secs(RETRY_ENV)? {
            config.retry.max_wait = wait;
        }
        let db = Db::connect(config).map_err(invalid)?;
        Ok(Stores::Postgres(db))
    }

    #[cfg(not(feature = "postgres"))]
    fn open_postgres(url: &str) -> Result<Stores, RunnerError> {
        Err(RunnerError::StoreUrl {
            url: url.to_owned(),
            reason: "this build of autopack has no PostgreSQL store (feature `postgres`)".into(),
        })
    }

    /// Where a run's journal is, for messages.
    pub fn journal_name(&self, root: &RunsRoot, run_id: &RunId) -> String {
        match self {
            Stores::Files => root.journal(run_id).display().to_string(),
            #[cfg(feature = "postgres")]
            Stores::Postgres(db) => {
                format!("run {run_id} in PostgreSQL at {}", db.config().server())
            }
        }
    }

    /// The run journals.
    pub fn journal(&self, root: &RunsRoot) -> Journal {
        match self {
            Stores::Files => {
                Journal::Files(FsRunStore::new(root.clone(), FsyncPolicy::AtCheckpoints))
            }
            #[cfg(feature = "postgres")]
            Stores::Postgres(db) => Journal::Postgres(PgRunStore::new(db.clone())),
        }
    }

    /// The journals as `writer` appends to its run: in PostgreSQL fenced by its lease.
    pub fn journal_of(&self, root: &RunsRoot, writer: &RunWriterLease) -> Journal {
        #[cfg(feature = "postgres")]
        if let (Journal::Postgres(store), Some(lease)) =
            (self.journal(root), writer.postgres.as_ref())
        {
            return Journal::Postgres(store.fenced_by(lease));
        }
        let _ = writer;
        self.journal(root)
    }

    /// The rulesets.
    pub fn rulesets(&self, root: &RunsRoot) -> Rulesets {
        match self {
            Stores::Files => Rulesets::Files(FsRulesetStore::new(root.clone())),
            #[cfg(feature = "postgres")]
            Stores::Postgres(db) => Rulesets::Postgres(PgRulesetStore::new(db.clone())),
        }
    }

    /// The frozen strategies.
    pub fn strategies(&self, root: &RunsRoot) -> Strategies {
        match self {
            Stores::Files => Strategies::Files(FsStrategyStore::new(root.clone())),
            #[cfg(feature = "postgres")]
            Stores::Postgres(db) => Strategies::Postgres(PgStrategyStore::new(db.clone())),
        }
    }

    /// The projects that have a ruleset, sorted.
    ///
    /// # Errors
    /// The store cannot be listed.
    pub fn projects(&self, root: &RunsRoot) -> Result<Vec<ProjectId>, RunnerError> {
        let listing = || format!("listing the projects of {}", root.dir().display());
        match self.rulesets(root) {
            Rulesets::Files(store) => store.projects().doing(listing),
            #[cfg(feature = "postgres")]
            Rulesets::Postgres(store) => store.projects().doing(listing),
        }
    }

    /// The artefact writer over `project`'s ledger, its views in `root` (`None`
    /// thresholds keep the ledger's own).
    ///
    /// # Errors
    /// The ledger cannot be opened.
    pub fn artefacts(
        &self,
        root: &RunsRoot,
        project: &ProjectId,
        thresholds: Option<AgingThresholds>,
    ) -> Result<RunArtefacts, RunnerError> {
        let projects = self.projects(root)?;
        match self {
            Stores::Files => {
                let artefacts = FsArtefacts::open_project(
                    root.clone(),
                    project,
                    &projects,
                    thresholds,
                    FsyncPolicy::AtCheckpoints,
                )
                .doing(|| {
                    format!(
                        "opening the issue ledger of project {project} in {}",
                        root.dir().display()
                    )
                })?;
                Ok(RunArtefacts::Files(artefacts))
            }
            #[cfg(feature = "postgres")]
            Stores::Postgres(db) => {
                let files = ledger_files(root, project, &projects)
                    .doing(|| format!("reading the ledger files of project {project}"))?;
                let ledger =
                    PgProjectLedger::open(db.clone(), root.clone(), files, project, thresholds)
                        .doing(|| {
                            format!("opening the issue ledger of project {project} in PostgreSQL")
                        })?;
                Ok(RunArtefacts::Postgres(PgArtefacts::new(
                    root.clone(),
                    ledger,
                )))
            }
        }
    }

    /// Takes the database lease of `run_id` (the filesystem store's lease is the
    /// `run.lease` file, taken by the caller for either store): `None` for the filesystem
    /// store; else the lease and the dead holder it was taken over from.
    ///
    /// # Errors
    /// Another live writer holds it (named), or the database fails.
    pub fn take_lease(
        &self,
        run_id: &RunId,
    ) -> Result<(RunWriterLease, Option<LeaseHolder>), RunnerError> {
        match self {
            Stores::Files => {
                let _ = run_id;
                Ok((RunWriterLease::default(), None))
            }
            #[cfg(feature = "postgres")]
            Stores::Postgres(db) => {
                let ttl = env_secs(LEASE_TTL_ENV)?.unwrap_or(PgRunLeases::DEFAULT_TTL);
                let holder = autopack_layout::FsRunLeases::this_process();
                let acquired = PgRunLeases::new(db.clone(), ttl)
                    .acquire(run_id, holder)
                    .map_err(|e| RunnerError::Held {
                        run_id: run_id.clone(),
                        source: e.into(),
                    })?;
                Ok((
                    RunWriterLease {
                        postgres: Some(acquired.lease),
                    },
                    acquired.taken_over,
                ))
            }
        }
    }
}

/// A writer's database lease (none with the filesystem store).
#[derive(Debug, Default)]
pub struct RunWriterLease {
    #[cfg(feature = "postgres")]
    postgres: Option<PgRunLease>,
}

/// Run journals of either store.
#[derive(Debug)]
pub enum Journal {
    /// Files.
    Files(FsRunStore),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(PgRunStore),
}

impl RunStore for Journal {
    type Error = StoreError;

    fn append(&mut self, run_id: &RunId, entry: &str) -> Result<(), StoreError> {
        match self {
            Journal::Files(s) => Ok(s.append(run_id, entry)?),
            #[cfg(feature = "postgres")]
            Journal::Postgres(s) => Ok(s.append(run_id, entry)?),
        }
    }

    fn read(&mut self, run_id: &RunId) -> Result<JournalContents, StoreError> {
        match self {
            Journal::Files(s) => Ok(s.read(run_id)?),
            #[cfg(feature = "postgres")]
            Journal::Postgres(s) => Ok(s.read(run_id)?),
        }
    }

    fn sync(&mut self, run_id: &RunId) -> Result<(), StoreError> {
        match self {
            Journal::Files(s) => Ok(s.sync(run_id)?),
            #[cfg(feature = "postgres")]
            Journal::Postgres(s) => Ok(s.sync(run_id)?),
        }
    }

    fn runs(&mut self) -> Result<Vec<RunId>, StoreError> {
        match self {
            Journal::Files(s) => Ok(s.runs()?),
            #[cfg(feature = "postgres")]
            Journal::Postgres(s) => Ok(s.runs()?),
        }
    }
}

/// Rulesets of either store.
#[derive(Debug)]
pub enum Rulesets {
    /// Files.
    Files(FsRulesetStore),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(PgRulesetStore),
}

impl RulesetStore for Rulesets {
    type Error = StoreError;

    fn save_new_version(&self, ruleset: &Ruleset) -> Result<u32, StoreError> {
        match self {
            Rulesets::Files(s) => Ok(s.save_new_version(ruleset)?),
            #[cfg(feature = "postgres")]
            Rulesets::Postgres(s) => Ok(s.save_new_version(ruleset)?),
        }
    }

    fn load_latest(&self, project_id: &ProjectId) -> Result<Option<Ruleset>, StoreError> {
        match self {
            Rulesets::Files(s) => Ok(s.load_latest(project_id)?),
            #[cfg(feature = "postgres")]
            Rulesets::Postgres(s) => Ok(s.load_latest(project_id)?),
        }
    }

    fn load_version(
        &self,
        project_id: &ProjectId,
        version: u32,
    ) -> Result<Option<Ruleset>, StoreError> {
        match self {
            Rulesets::Files(s) => Ok(s.load_version(project_id, version)?),
            #[cfg(feature = "postgres")]
            Rulesets::Postgres(s) => Ok(s.load_version(project_id, version)?),
        }
    }

    fn list_versions(&self, project_id: &ProjectId) -> Result<Vec<u32>, StoreError> {
        match self {
            Rulesets::Files(s) => Ok(s.list_versions(project_id)?),
            #[cfg(feature = "postgres")]
            Rulesets::Postgres(s) => Ok(s.list_versions(project_id)?),
        }
    }
}

/// Strategies of either store.
#[derive(Debug)]
pub enum Strategies {
    /// Files.
    Files(FsStrategyStore),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(PgStrategyStore),
}

impl StrategyStore for Strategies {
    type Error = StoreError;

    fn save(&self, strategy: &Strategy) -> Result<(), StoreError> {
        match self {
            Strategies::Files(s) => Ok(s.save(strategy)?),
            #[cfg(feature = "postgres")]
            Strategies::Postgres(s) => Ok(s.save(strategy)?),
        }
    }

    fn load(&self, run_id: &RunId, version: u32) -> Result<Option<Strategy>, StoreError> {
        match self {
            Strategies::Files(s) => Ok(s.load(run_id, version)?),
            #[cfg(feature = "postgres")]
            Strategies::Postgres(s) => Ok(s.load(run_id, version)?),
        }
    }

    fn load_latest(&self, run_id: &RunId) -> Result<Option<Strategy>, StoreError> {
        match self {
            Strategies::Files(s) => Ok(s.load_latest(run_id)?),
            #[cfg(feature = "postgres")]
            Strategies::Postgres(s) => Ok(s.load_latest(run_id)?),
        }
    }

    fn list_versions(&self, run_id: &RunId) -> Result<Vec<u32>, StoreError> {
        match self {
            Strategies::Files(s) => Ok(s.list_versions(run_id)?),
            #[cfg(feature = "postgres")]
            Strategies::Postgres(s) => Ok(s.list_versions(run_id)?),
        }
    }
}

/// The artefact writer of either store.
// One per run; boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum RunArtefacts {
    /// Over the layout's own ledger.
    Files(FsArtefacts),
    /// Over a ledger in PostgreSQL, views materialised in the layout.
    #[cfg(feature = "postgres")]
    Postgres(PgArtefacts),
}

impl RunArtefacts {
    /// The project ledger as of this process's last change.
    pub fn ledger(&self) -> &Ledger {
        match self {
            RunArtefacts::Files(a) => a.ledger(),
            #[cfg(feature = "postgres")]
            RunArtefacts::Postgres(a) => a.ledger(),
        }
    }

    /// What was found damaged in the layout's ledger files and rebuilt (none for a
    /// database ledger).
    pub fn take_repairs(&mut self) -> Vec<autopack_layout::issues::RepairNote> {
        match self {
            RunArtefacts::Files(a) => a.take_repairs(),
            #[cfg(feature = "postgres")]
            RunArtefacts::Postgres(_) => Vec::new(),
        }
    }

    fn inner(&mut self) -> &mut dyn Artefacts {
        match self {
            RunArtefacts::Files(a) => a,
            #[cfg(feature = "postgres")]
            RunArtefacts::Postgres(a) => a,
        }
    }
}

impl Artefacts for RunArtefacts {
    fn checkpoint(
        &mut self,
        checkpoint: &Checkpoint,
        record: &autopack_core::record::RunRecord,
        ledger: &Ledger,
    ) -> Result<(), HostError> {
        self.inner().checkpoint(checkpoint, record, ledger)
    }

    fn record_issues(
        &mut self,
        at: DateTime<Utc>,
        observations: &[IssueObservation],
    ) -> Result<(), HostError> {
        self.inner().record_issues(at, observations)
    }

    fn incident(
        &mut self,
        record: &autopack_core::record::RunRecord,
        ledger: &Ledger,
    ) -> Result<(), HostError> {
        self.inner().incident(record, ledger)
    }

    fn recover(
        &mut self,
        record: &autopack_core::record::RunRecord,
        ledger: &Ledger,
        recorded: &[RecordedIssue],
    ) -> Result<(), HostError> {
        self.inner().recover(record, ledger, recorded)
    }
}
