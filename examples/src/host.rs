//! How a host wires the crates together for a real run: ruleset and strategy before the
//! run, the integration branch, private workspaces, the sandbox, the preflight gate, `.autonomous_runs/`
//! artefacts, the journal; then [`Driver::run`] or [`Driver::resume`].
//!
//! Shared by the example run and the `autopack` binary.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use autopack::apply::workspace::Workspaces;
use autopack::apply::{BranchOptions, CommitSignature, IntegrationBranch, PreflightGate};
use autopack::core::clock::SystemClock;
use autopack::core::ids::{ProjectId, RunId};
use autopack::core::journal::RunStore;
use autopack::core::lease::RunLeases;
use autopack::core::plan::Plan;
use autopack::core::record::RunRecord;
use autopack::driver::Replayed;
use autopack::driver::{AnsweredElsewhere, Auditor, Builder, DriveOutcome, Driver, Host, Observer};
use autopack::host::{
    AgentPreset, CommandAgent, GitApplier, GitTripwire, GitVerifier, InWorkspace,
};
use autopack::layout::lease::remove_stale_temp_files;
use autopack::layout::{FsRunLease, FsRunLeases, RunsRoot};
use autopack::sandbox::{FileProcessLog, Network, Sandbox};
use autopack::strategy::{CompileOptions, Ruleset, RulesetStore, Strategy, StrategyStore};
use autopack::supervisor::{Input, SupervisorConfig};
use serde::{Deserialize, Serialize};

use crate::stores::{Journal, RunArtefacts, RunWriterLease, Stores};

/// The folder in a run's folder that keeps a log of every agent attempt.
pub const AGENT_LOGS_DIR: &str = "agents";

/// The folder of artefacts inside a repository.
pub const RUNS_DIR: &str = ".autonomous_runs";
/// The file in a run's folder that lets `autopack resume` rebuild the host.
pub const RUN_CONFIG_FILE: &str = "run_config.json";
/// Project id of the built-in ruleset when a repository has none.
pub const DEFAULT_PROJECT: &str = "default";

/// The `.autonomous_runs/` layout of a repository.
pub fn runs_root(repo: &Path) -> RunsRoot {
    RunsRoot::new(repo.join(RUNS_DIR))
}

/// What the host needs besides the agents; stored as `{run_id}/run_config.json` by
/// `autopack run` so that `autopack resume` can rebuild the same host.
///
/// ```json
/// {"base": "main", "builder_cmd": "my-builder", "auditor_cmd": null,
///  "test_cmd": "sh run_tests.sh", "strict_test_cmd": "sh run_tests.sh --strict",
///  "agent_timeout_secs": 900, "max_output_bytes": 8388608, "ci_timeout_secs": 1800,
///  "ci_backoff_millis": 2000, "signature_seconds": 1767225600,
///  "builder": "codex", "sandbox": {"pass_env": ["OPENAI_API_KEY"], "ci_network": "deny"}}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The branch the integration branch was created from (never written).
    pub base: String,
    /// The Builder command (`None` for scripted agents).
    #[serde(default)]
    pub builder_cmd: Option<String>,
    /// The Auditor command (`None`: an Auditor that always escalates).
    #[serde(default)]
    pub auditor_cmd: Option<String>,
    /// The `normal` CI profile's test command.
    pub test_cmd: String,
    /// The `strict` CI profile's test command.
    pub strict_test_cmd: String,
    /// Agent timeout, in seconds.
    pub agent_timeout_secs: u64,
    /// Largest agent stdout accepted, in bytes.
    pub max_output_bytes: usize,
    /// CI attempt timeout, in seconds.
    pub ci_timeout_secs: u64,
    /// Delay before the second CI attempt, in milliseconds (doubled after).
    pub ci_backoff_millis: u64,
    /// Time of the commit signature (fixed per run, so a retried commit is identical).
    pub signature_seconds: i64,
    /// Where the run's private workspaces go (default `$TMPDIR/autopack-workspaces`);
    /// never inside the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_dir: Option<PathBuf>,
    /// The Builder's preset (`codex`, `claude`, `aider`; `command` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
    /// The Auditor's preset (`command` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auditor: Option<String>,
    /// How agents and CI are confined.
    #[serde(default)]
    pub sandbox: SandboxSettings,
    /// Largest patch accepted, in bytes (default
    /// [`MAX_PATCH_BYTES`](autopack::apply::MAX_PATCH_BYTES); `--max-patch-bytes`).
    #[serde(default = "default_max_patch_bytes")]
    pub max_patch_bytes: u64,
    /// JUnit XML reports the `normal` profile's command writes (globs in the checkout,
    /// `--junit`); empty: CI is judged by exit codes alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub junit: Vec<String>,
    /// The `strict` profile's reports (`--strict-junit`; default `--junit`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strict_junit: Vec<String>,
}

fn default_max_patch_bytes() -> u64 {
    autopack::apply::MAX_PATCH_BYTES
}

/// Longest agent or CI timeout accepted, in seconds (7 days; at least 1 s).
pub const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 60 * 60;
/// Longest CI backoff accepted, in milliseconds (1 hour; 0 is allowed: no wait).
pub const MAX_BACKOFF_MILLIS: u64 = 60 * 60 * 1000;
/// Largest byte limit accepted for `--max-output` and the document size limits (1 GiB;
/// at least 1 byte).
pub const MAX_BYTES_LIMIT: u64 = autopack::core::limits::MAX_LIMIT_BYTES;

/// A [`RunConfig`] value out of its range, naming the field (and, when read from a file,
/// the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfigInvalid {
    /// The field (`ci_timeout_secs`, …).
    pub field: &'static str,
    /// The value found.
    pub value: u64,
    /// The smallest value allowed.
    pub min: u64,
    /// The largest value allowed.
    pub max: u64,
    /// The unit (`seconds`, `milliseconds`, `bytes`).
    pub unit: &'static str,
}

impl std::fmt::Display for RunConfigInvalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} is out of range ({}..={} {})",
            self.field, self.value, self.min, self.max, self.unit
        )
    }
}

impl std::error::Error for RunConfigInvalid {}

/// How a run's agents and CI commands are confined (`autopack run --no-sandbox`,
/// `--pass-env`, `--sandbox-read`, `--agent-network`, `--ci-network`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSettings {
    /// Run unconfined (the user said `--no-sandbox`); the environment is still scrubbed
    /// and every process still reaped.
    #[serde(default)]
    pub disabled: bool,
    /// Host environment variables passed to agents and CI (e.g. `OPENAI_API_KEY`).
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// Extra read-only paths (toolchains, an agent CLI's config).
    #[serde(default)]
    pub read: Vec<PathBuf>,
    /// Extra writable paths for CI (a cache or state folder outside the repository).
    #[serde(default)]
    pub write: Vec<PathBuf>,
    /// Whether agents may use TCP (default: yes, they call their model's API).
    #[serde(default)]
    pub agent_network: NetworkRule,
    /// Whether CI may use TCP (default: no).
    #[serde(default = "NetworkRule::deny")]
    pub ci_network: NetworkRule,
}

impl Default for SandboxSettings {
    /// Confined; agents online, CI offline; nothing passed, read or written beyond the
    /// sandbox's defaults.
    fn default() -> SandboxSettings {
        SandboxSettings {
            disabled: false,
            pass_env: Vec::new(),
            read: Vec::new(),
            write: Vec::new(),
            agent_network: NetworkRule::Allow,
            ci_network: NetworkRule::Deny,
        }
    }
}

/// Whether a confined process may use TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkRule {
    /// TCP allowed.
    #[default]
    Allow,
    /// TCP bind and connect denied (Landlock covers TCP only).
    Deny,
}

impl NetworkRule {
    fn deny() -> NetworkRule {
        NetworkRule::Deny
    }

    /// The sandbox's rule.
    pub fn network(self) -> Network {
        match self {
            NetworkRule::Allow => Network::Allow,
            NetworkRule::Deny => Network::Deny,
        }
    }
}

/// This process's hold on a run: the run's lease (`{run_id}/run.lease`), held until
/// dropped. Taken before anything of the run is read or written, by `run` and `resume`
/// alike, so two processes never write one run.
#[derive(Debug)]
pub struct RunWriter {
    _lease: FsRunLease,
    /// The database's lease, with a PostgreSQL store.
    store_lease: RunWriterLease,
    /// What a dead writer left that was cleaned up, one line each.
    pub reclaimed: Vec<String>,
}

impl RunWriter {
    /// The store's lease (a PostgreSQL store's; nothing for files).
    pub fn store_lease(&self) -> &RunWriterLease {
        &self.store_lease
    }
}

/// Takes the lease of `run_id` in `repo` — refused at once, naming the holder, while
/// another live process holds it — then removes what a dead writer of the run left: its
/// half-written temporary files and the lock files of the run's own refs (only the lease
/// proves that nobody is between writing such a lock and renaming it).
///
/// With a PostgreSQL store the database's lease is taken too (after the file's), so
/// writers on other hosts are kept out as well; a dead holder's is taken over once it
/// expired.
///
/// # Errors
/// The run is held by a live process, or the lease or the clean-up fails.
pub fn take_run(repo: &Path, stores: &Stores, run_id: &RunId) -> Result<RunWriter> {
    let root = runs_root(repo);
    let acquired = FsRunLeases::new(root.clone())
        .acquire(run_id, FsRunLeases::this_process())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (store_lease, store_taken_over) = stores.take_lease(run_id)?;
    let mut reclaimed = Vec::new();
    for dead in acquired.taken_over.into_iter().chain(store_taken_over) {
        reclaimed.push(format!(
            "took run {run_id} over from {dead}, which ended without releasing it"
        ));
    }
    let mut temp = remove_stale_temp_files(&root.run_dir(run_id), true, true)?;
    temp.extend(remove_stale_temp_files(root.dir(), false, false)?);
    reclaimed.extend(
        temp.iter()
            .map(|p| format!("removed the half-written {}", p.display())),
    );
    if git2_repo_exists(repo) {
        let locks = autopack::apply::reclaim::remove_stale_ref_locks(repo, run_id)
            .with_context(|| format!("removing stale ref locks of run {run_id}"))?;
        reclaimed.extend(
            locks
                .iter()
                .map(|p| format!("removed the stale ref lock {}", p.display())),
        );
        let worktrees = autopack::apply::reclaim::remove_stale_ci_worktrees(repo, run_id)
            .with_context(|| format!("removing stale CI worktrees of run {run_id}"))?;
        reclaimed.extend(
            worktrees
                .iter()
                .map(|name| format!("removed the stale CI worktree {name}")),
        );
    }
    Ok(RunWriter {
        _lease: acquired.lease,
        store_lease,
        reclaimed,
    })
}

fn git2_repo_exists(repo: &Path) -> bool {
    repo.join(".git").exists() || repo.join("HEAD").is_file()
}

/// The file in a run's folder that lists the processes a run has alive, so that a resume
/// after a crash can kill what the crashed process left running.
pub const PROCESSES_FILE: &str = "processes.json";

/// The sandbox of a run: Landlock unless `config.sandbox.disabled`, recording the
/// processes it starts in `{run_id}/processes.json`.
///
/// # Errors
/// No confinement available (and `--no-sandbox` not given), or the process log cannot be
/// read.
pub fn sandbox(root: &RunsRoot, run_id: &RunId, config: &RunConfig) -> Result<Sandbox> {
    let sandbox = if config.sandbox.disabled {
        Sandbox::off()
    } else {
        Sandbox::detect().map_err(|e| {
            anyhow::anyhow!(
                "{e}; agents and CI would run with full access to the repository. Refusing to start: pass --no-sandbox to run them unconfined"
            )
        })?
    };
    let dir = root.run_dir(run_id);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = FileProcessLog::open(dir.join(PROCESSES_FILE))?;
    // What a crashed process left running dies before anything new starts.
    let reaped = log.reap();
    if reaped > 0 {
        // Ignored when stderr is closed: a message must never abort a run.
        let _ = writeln!(
            std::io::stderr(),
            "killed {reaped} process(es) left running by an earlier process of run {run_id}"
        );
    }
    Ok(sandbox.with_log(Arc::new(log)))
}

impl RunConfig {
    /// Checks every duration and size against its range (the same ranges as the flags of
    /// `autopack run`): timeouts 1 s ..= [`MAX_TIMEOUT_SECS`], the CI backoff 0 ..=
    /// [`MAX_BACKOFF_MILLIS`], byte limits 1 ..= [`MAX_BYTES_LIMIT`].
    ///
    /// # Errors
    /// The first field out of range, named.
    pub fn validate(&self) -> Result<(), RunConfigInvalid> {
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let checks: [(&'static str, u64, u64, u64, &'static str); 5] = [
            (
                "agent_timeout_secs",
                self.agent_timeout_secs,
                1,
                MAX_TIMEOUT_SECS,
                "seconds",
            ),
            (
                "max_output_bytes",
                as_u64(self.max_output_bytes),
                1,
                MAX_BYTES_LIMIT,
                "bytes",
            ),
            (
                "ci_timeout_secs",
                self.ci_timeout_secs,
                1,
                MAX_TIMEOUT_SECS,
                "seconds",
            ),
            (
                "ci_backoff_millis",
                self.ci_backoff_millis,
                0,
                MAX_BACKOFF_MILLIS,
                "milliseconds",
            ),
            (
                "max_patch_bytes",
                self.max_patch_bytes,
                1,
                MAX_BYTES_LIMIT,
                "bytes",
            ),
        ];
        for (field, value, min, max, unit) in checks {
            if !(min..=max).contains(&value) {
                return Err(RunConfigInvalid {
                    field,
                    value,
                    min,
                    max,
                    unit,
                });
            }
        }
        Ok(())
    }

    /// Reads `{run_id}/run_config.json` and [validates](RunConfig::validate) it.
    ///
    /// # Errors
    /// A missing or malformed file, or a value out of range, named with the file.
    pub fn load(root: &RunsRoot, run_id: &RunId) -> Result<RunConfig> {
        let path = root.run_dir(run_id).join(RUN_CONFIG_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{}: cannot read the run's host configuration (was run {run_id} started with `autopack run`?)",
                path.display()
            )
        })?;
        let config: RunConfig = autopack::core::json::from_str(&text, path.display().to_string())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(config)
    }

    /// [Validates](RunConfig::validate) and writes `{run_id}/run_config.json`.
    ///
    /// # Errors
    /// A value out of range (nothing is written), or the file cannot be written.
    pub fn save(&self, root: &RunsRoot, run_id: &RunId) -> Result<PathBuf> {
        let path = root.run_dir(run_id).join(RUN_CONFIG_FILE);
        self.validate()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        autopack::layout::fsio::write_json_atomic(&path, self)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The CI commands of both profiles (the test runner scripts they name are protected
    /// paths).
    pub fn ci_commands(&self) -> Vec<String> {
        let mut commands = vec![self.test_cmd.clone()];
        if self.strict_test_cmd != self.test_cmd {
            commands.push(self.strict_test_cmd.clone());
        }
        commands
    }

    fn gate(&self, sandbox: &Sandbox) -> PreflightGate {
        let mut gate = PreflightGate::new(self.test_cmd.clone(), self.strict_test_cmd.clone())
            .with_sandbox(
                sandbox.clone(),
                self.sandbox.ci_network.network(),
                self.sandbox.read.clone(),
            );
        gate.normal_junit = self.junit.clone();
        gate.strict_junit = self.strict_junit.clone();
        gate.timeout = Duration::from_secs(self.ci_timeout_secs);
        gate.backoff = Duration::from_millis(self.ci_backoff_millis);
        gate.env.pass = self.sandbox.pass_env.clone();
        gate.writable = self.sandbox.write.clone();
        gate
    }

    /// A [`CommandAgent`] for `preset` (a name) with `cmd` (the command line of a plain
    /// command, or a preset's program), confined by `sandbox` with this run's settings,
    /// keeping each attempt's log in `logs` (the run's `agents/` folder).
    ///
    /// # Errors
    /// An unknown preset name, or a plain command without a command line.
    pub fn agent(
        &self,
        preset: Option<&str>,
        cmd: Option<&str>,
        sandbox: &Sandbox,
        logs: &Path,
    ) -> Result<CommandAgent> {
        let preset = preset
            .map(AgentPreset::from_name)
            .transpose()?
            .unwrap_or(AgentPreset::Command);
        let mut agent = CommandAgent::preset(preset)
            .with_timeout(Duration::from_secs(self.agent_timeout_secs))
            .with_max_output(self.max_output_bytes)
            .with_network(self.sandbox.agent_network.network())
            .with_sandbox(sandbox.clone())
            .with_attempt_logs(logs);
        match (preset, cmd) {
            (_, Some(cmd)) => agent = agent.with_program(cmd),
            (AgentPreset::Command, None) => bail!("a plain command agent needs its command line"),
            (_, None) => {}
        }
        for name in &self.sandbox.pass_env {
            agent = agent.pass_env(name.clone());
        }
        for path in &self.sandbox.read {
            agent = agent.allow_read(path.clone());
        }
        Ok(agent)
    }

    fn signature(&self) -> CommitSignature {
        CommitSignature {
            name: "autopack".into(),
            email: "autopack@example.invalid".into(),
            seconds: self.signature_seconds,
            offset_minutes: 0,
        }
    }
}

/// A run ready to start: the strategy compiled and saved, the backlog loaded.
pub struct Prepared {
    /// The layout.
    pub root: RunsRoot,
    /// The ruleset used.
    pub ruleset: Ruleset,
    /// The compiled strategy (saved as `project_implementation_strategy_v{N}.json`).
    pub strategy: Strategy,
    /// Where it was saved.
    pub strategy_path: PathBuf,
    /// Where the ruleset is.
    pub ruleset_path: PathBuf,
    /// The artefact writer, holding the durable project ledger.
    pub artefacts: RunArtefacts,
}

/// Finds the ruleset for a run: `given` (saved as a new version when it differs from the
/// latest), else the only `project_ruleset_*.json` of the layout, else — in a layout with
/// none — the built-in one for project `default` (saved). Several projects and no `given`
/// is an error naming them: a run never picks a project by guess.
///
/// # Errors
/// Storage failures, named.
pub fn resolve_ruleset(
    root: &RunsRoot,
    stores: &Stores,
    given: Option<Ruleset>,
) -> Result<(Ruleset, PathBuf)> {
    let store = stores.rulesets(root);
    let ruleset = match given {
        Some(ruleset) => {
            let latest = store.load_latest(&ruleset.project_id).with_context(|| {
                format!("reading the ruleset of project {}", ruleset.project_id)
            })?;
            let same = latest.as_ref().is_some_and(|l| {
                let mut a = l.clone();
                a.version = ruleset.version.clone();
                a == ruleset
            });
            if same {
                latest.unwrap_or(ruleset)
            } else {
                store.save_new_version(&ruleset).with_context(|| {
                    format!("saving the ruleset of project {}", ruleset.project_id)
                })?;
                store.load_latest(&ruleset.project_id)?.unwrap_or(ruleset)
            }
        }
        None => {
            let project = only_project(root, stores, "--ruleset")?;
            match store.load_latest(&project)? {
                Some(r) => r,
                None => {
                    let builtin = Ruleset::builtin(project.clone());
                    store.save_new_version(&builtin)?;
                    store.load_latest(&project)?.unwrap_or(builtin)
                }
            }
        }
    };
    let path = root.ruleset(&ruleset.project_id);
    Ok((ruleset, path))
}

/// The layout's only project (`default` in a layout without rulesets). Several are an
/// error naming them and `flag`, the option that picks one: never a guess.
///
/// # Errors
/// Several projects, or a layout that cannot be listed.
pub fn only_project(root: &RunsRoot, stores: &Stores, flag: &str) -> Result<ProjectId> {
    let found = stores.projects(root)?;
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Ok(ProjectId::new(DEFAULT_PROJECT)?),
        several => bail!(
            "{} has rulesets of several projects ({}); say which with {flag}",
            root.dir().display(),
            several
                .iter()
                .map(ProjectId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Compiles and saves the strategy of `plan` against the project ledger of `repo`.
///
/// # Errors
/// A run with this id already exists, or the ruleset, ledger or strategy fails.
pub fn prepare(
    repo: &Path,
    stores: &Stores,
    plan: &Plan,
    ruleset: Option<Ruleset>,
) -> Result<Prepared> {
    let root = runs_root(repo);
    let run_id = &plan.run.run_id;
    let mut journal = stores.journal(&root);
    let begun = autopack::driver::journal_begun(&mut journal, run_id)
        .with_context(|| format!("reading {}", stores.journal_name(&root, run_id)))?;
    if begun == autopack::driver::Begun::Started {
        bail!(
            "run {run_id} already exists ({}); use `autopack resume {run_id}` or another run_id",
            stores.journal_name(&root, run_id)
        );
    }
    let (ruleset, ruleset_path) = resolve_ruleset(&root, stores, ruleset)?;
    let profile = plan
        .run
        .safety_profile
        .unwrap_or(ruleset.default_safety_profile);
    let thresholds = autopack::aging_thresholds(&ruleset.aging_thresholds(profile));
    let artefacts = project_artefacts(&root, stores, &ruleset.project_id, Some(thresholds))?;
    let backlog = artefacts.ledger().backlog();
    let view = autopack::backlog_view(&backlog);
    let strategy = autopack::strategy::compile(&ruleset, &view, plan, &CompileOptions::default())
        .with_context(|| format!("compiling the strategy of run {run_id}"))?;
    stores
        .strategies(&root)
        .save(&strategy)
        .with_context(|| format!("saving the strategy of run {run_id}"))?;
    materialise_inputs(&root, stores, &ruleset, &strategy)?;
    let strategy_path = root.strategy(run_id, strategy.version);
    Ok(Prepared {
        root,
        ruleset,
        strategy,
        strategy_path,
        ruleset_path,
        artefacts,
    })
}

/// With a database store, writes the run's ruleset and strategy into the layout too, so
/// that `.autonomous_runs/` on the host running (or exporting) a run is complete.
fn materialise_inputs(
    root: &RunsRoot,
    stores: &Stores,
    ruleset: &Ruleset,
    strategy: &Strategy,
) -> Result<()> {
    if let Stores::Postgres(_) = stores {
        autopack::layout::FsStrategyStore::new(root.clone())
            .save(strategy)
            .with_context(|| {
                format!(
                    "writing the strategy of run {} into {}",
                    strategy.run_id,
                    root.dir().display()
                )
            })?;
        autopack::layout::fsio::write_atomic(
            &root.ruleset(&ruleset.project_id),
            ruleset.to_json().as_bytes(),
        )?;
    }
    Ok(())
}

/// Writes the Markdown and JSON views of `run_id` into `repo`'s `.autonomous_runs/` from
/// its store: the summaries (and the incident pack of a failed run), the issue views of
/// its project ledger and, from a database, its ruleset and strategy. Nothing is recorded.
///
/// # Errors
/// No journal, one that does not replay, or a store or file failure.
pub fn export(repo: &Path, stores: &Stores, run_id: &RunId) -> Result<RunRecord> {
    let root = runs_root(repo);
    let record = load_record(repo, stores, run_id)?;
    let strategy = stores
        .strategies(&root)
        .load_latest(run_id)?
        .with_context(|| format!("run {run_id} has no saved strategy"))?;
    if let Some(ruleset) = stores.rulesets(&root).load_latest(&strategy.project_id)? {
        materialise_inputs(&root, stores, &ruleset, &strategy)?;
    }
    autopack::layout::write_run_artefacts(&root, &record)?;
    if record.state.failure().is_some() {
        autopack::layout::write_incident_pack(&root, &record)?;
    }
    match stores.artefacts(&root, &strategy.project_id, None)? {
        RunArtefacts::Postgres(mut artefacts) => {
            artefacts
                .project_ledger_mut()
                .materialise_run(run_id)
                .map_err(|e| anyhow::anyhow!("writing the issue views of run {run_id}: {e}"))?;
        }
        // The layout's ledger keeps its views itself (`autopack repair` rebuilds them).
        RunArtefacts::Files(_) => {}
    }
    Ok(record)
}

/// The agents and observer of a run.
pub struct Agents<'a> {
    /// The Builder.
    pub builder: &'a mut dyn Builder,
    /// The Auditor.
    pub auditor: &'a mut dyn Auditor,
    /// Progress.
    pub observer: &'a mut dyn Observer,
}

/// Who answers the run's agent attempts.
enum Answering<'a> {
    /// The host's own agents, to the end of the run.
    Here(Agents<'a>),
    /// A service's session (`autopack serve`): remote workers and HTTP clients.
    Session(autopack_server::Session),
}

/// How [`Wiring::drive`] begins.
enum Drive {
    /// A new run.
    Start(Box<Input>),
    /// A run replayed from its journal.
    Resume(Replayed),
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
    ) -> Result<Wiring> {
        let open = || {
            IntegrationBranch::open(repo, run_id, &config.base, BranchOptions::default())
                .with_context(|| format!("opening the integration branch of run {run_id}"))
        };
        let parent = config
            .workspace_dir
            .clone()
            .unwrap_or_else(Workspaces::default_parent);
        // What crashed processes left behind; a live run's folder is locked and stays.
        Workspaces::reclaim_stale(&parent)
            .with_context(|| format!("reclaiming stale workspaces in {}", parent.display()))?;
        let workspaces = Arc::new(
            Workspaces::open(repo, run_id, &parent)
                .with_context(|| format!("opening the workspaces of run {run_id}"))?,
        );
        Ok(Wiring {
            verifier: GitVerifier::new(config.gate(sandbox), Arc::clone(&workspaces)).with_base(
                branch
                    .status()
                    .with_context(|| format!("reading the integration branch of run {run_id}"))?
                    .base,
            ),
            applier: GitApplier::new(branch, config.signature())
                .with_max_patch_bytes(config.max_patch_bytes)
                .with_ci_commands(config.ci_commands()),
            tripwire: GitTripwire::arm(repo, run_id)
                .map_err(|e| anyhow::anyhow!("arming the tripwire on {}: {e}", repo.display()))?,
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
    ) -> Result<(DriveOutcome, RunRecord)> {
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
        let mut session_observer = None;
        let mut session = None;
        let (agent_builder, agent_auditor, observer): (
            &mut dyn Builder,
            &mut dyn Auditor,
            &mut dyn Observer,
        ) = match answering {
            Answering::Here(agents) => (agents.builder, agents.auditor, agents.observer),
            Answering::Session(served) => {
                let observer = session_observer.insert(served.observer());
                session = Some(served);
                (&mut elsewhere, &mut elsewhere_auditor, observer)
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
        let (outcome, supervisor) = match (drive, session) {
            (Drive::Start(start), None) => {
                Driver::run(*start, SupervisorConfig::default(), store, host)
                    .with_context(|| format!("driving run {run_id} {}", resume_hint()))?
            }
            (Drive::Resume(replayed), None) => {
                Driver::resume_replayed(replayed, run_id, store, host)
                    .with_context(|| format!("resuming run {run_id} {}", resume_hint()))?
            }
            (drive, Some(session)) => {
                let mut driver = match drive {
                    Drive::Start(start) => {
                        Driver::begin(*start, SupervisorConfig::default(), store, host)
                            .with_context(|| format!("starting run {run_id}"))?
                    }
                    Drive::Resume(replayed) => Driver::reopen(replayed, run_id, store, host)
                        .with_context(|| format!("resuming run {run_id}"))?,
                };
                let was_finished = driver.was_finished();
                let state = session.drive(&mut driver).with_context(|| {
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
            .with_context(|| format!("run {run_id} has no record"))?;
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
/// its end. Returns the outcome and the final record.
///
/// # Errors
/// The branch cannot be created (exists, protected, base missing) or the driver fails.
#[allow(clippy::too_many_arguments)]
pub fn start(
    repo: &Path,
    stores: &Stores,
    writer: &RunWriter,
    plan: &Plan,
    prepared: Prepared,
    config: &RunConfig,
    sandbox: &Sandbox,
    agents: Agents<'_>,
) -> Result<(DriveOutcome, RunRecord)> {
    start_answered(
        repo,
        stores,
        writer,
        plan,
        prepared,
        config,
        sandbox,
        Answering::Here(agents),
    )
}

/// [`start`] for `autopack serve`: the run's attempts are answered through `session`
/// (remote workers, HTTP clients); returns when the run ends or the server stops
/// serving it.
///
/// # Errors
/// As [`start`].
#[allow(clippy::too_many_arguments)]
pub fn start_served(
    repo: &Path,
    stores: &Stores,
    writer: &RunWriter,
    plan: &Plan,
    prepared: Prepared,
    config: &RunConfig,
    sandbox: &Sandbox,
    session: autopack_server::Session,
) -> Result<(DriveOutcome, RunRecord)> {
    start_answered(
        repo,
        stores,
        writer,
        plan,
        prepared,
        config,
        sandbox,
        Answering::Session(session),
    )
}

#[allow(clippy::too_many_arguments)]
fn start_answered(
    repo: &Path,
    stores: &Stores,
    writer: &RunWriter,
    plan: &Plan,
    mut prepared: Prepared,
    config: &RunConfig,
    sandbox: &Sandbox,
    answering: Answering<'_>,
) -> Result<(DriveOutcome, RunRecord)> {
    let run_id = plan.run.run_id.clone();
    let branch = match IntegrationBranch::create(
        repo,
        &run_id,
        &config.base,
        BranchOptions::default(),
    ) {
        // `prepare` found no start in the journal: an earlier start of this run died
        // before its first line, after creating the branch. Nothing was committed to it
        // yet, so it is taken as it is when it still sits on the base.
        Err(autopack::apply::ApplyError::BranchExists { .. }) => {
            let branch =
                IntegrationBranch::open(repo, &run_id, &config.base, BranchOptions::default())
                    .with_context(|| format!("opening the integration branch of run {run_id}"))?;
            let status = branch.status()?;
            if status.commits_ahead > 0 || !status.snapshot_tags.is_empty() {
                bail!(
                    "run {run_id} has no journal, but its integration branch {} exists and has moved away from {}; delete the branch or use another run_id",
                    autopack::apply::refs::integration_ref(&run_id),
                    config.base
                );
            }
            branch
        }
        other => other.with_context(|| {
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
        at: autopack::core::clock::Clock::now(&SystemClock),
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

/// Replays the journal of `run_id` (to look at it before resuming).
///
/// # Errors
/// No journal, or one that does not replay.
pub fn replay(repo: &Path, stores: &Stores, run_id: &RunId) -> Result<Replayed> {
    let root = runs_root(repo);
    let mut store = stores.journal(&root);
    autopack::driver::replay_run(&mut store, run_id).map_err(|e| match e {
        autopack::driver::DriverError::NothingToResume(_) => anyhow::anyhow!(
            "run {run_id} cannot be resumed: {} has no journal",
            stores.journal_name(&root, run_id)
        ),
        other => anyhow::anyhow!(
            "replaying the journal of run {run_id} ({}): {other}",
            stores.journal_name(&root, run_id)
        ),
    })
}

/// The artefact writer of a run being resumed: the project ledger with the thresholds of
/// the run's frozen strategy.
fn resume_artefacts(root: &RunsRoot, stores: &Stores, run_id: &RunId) -> Result<RunArtefacts> {
    let strategy = stores
        .strategies(root)
        .load_latest(run_id)?
        .with_context(|| format!("run {run_id} has no saved strategy"))?;
    let thresholds = autopack::aging_thresholds(&strategy.aging_thresholds);
    project_artefacts(root, stores, &strategy.project_id, Some(thresholds))
}

/// The artefact writer over `project`'s ledger (keyed by project; `None` thresholds keep
/// the ledger's own). Views found damaged and rebuilt from the journal are reported on
/// stderr.
///
/// # Errors
/// The ledger cannot be read, or a backlog naming no project could be several projects'.
pub fn project_artefacts(
    root: &RunsRoot,
    stores: &Stores,
    project: &ProjectId,
    thresholds: Option<autopack::issues::AgingThresholds>,
) -> Result<RunArtefacts> {
    let mut artefacts = stores.artefacts(root, project, thresholds)?;
    for note in artefacts.take_repairs() {
        let _ = writeln!(
            std::io::stderr(),
            "warning: {}: {}",
            note.path.display(),
            note.problem
        );
    }
    Ok(artefacts)
}

/// Brings the artefacts of a finished run up to its journal (what a crash after its last
/// input left undone: issues not yet in the ledger, summaries, views, the incident pack)
/// and returns its record. Needs no agents, sandbox or workspaces.
///
/// # Errors
/// The run is not finished, or the artefacts cannot be written.
pub fn repair_finished(
    repo: &Path,
    stores: &Stores,
    run_id: &RunId,
    replayed: &Replayed,
) -> Result<RunRecord> {
    let sup = &replayed.supervisor;
    let (Some(record), Some(ledger)) = (sup.record(), sup.ledger()) else {
        bail!("run {run_id} has no record");
    };
    if !sup.is_finished() {
        bail!("run {run_id} has not finished: resume it instead");
    }
    let mut artefacts = resume_artefacts(&runs_root(repo), stores, run_id)?;
    autopack::driver::Artefacts::recover(&mut artefacts, record, ledger, &replayed.recorded)
        .map_err(|e| anyhow::anyhow!("repairing the artefacts of run {run_id}: {e}"))?;
    Ok(record.clone())
}

/// Continues a run from its journal (`replayed`, from [`replay`]) with the host described
/// by `config`. A finished run only has its artefacts repaired ([`repair_finished`]).
///
/// # Errors
/// A missing branch, or a driver failure.
#[allow(clippy::too_many_arguments)]
pub fn resume(
    repo: &Path,
    stores: &Stores,
    writer: &RunWriter,
    run_id: &RunId,
    replayed: Replayed,
    config: &RunConfig,
    sandbox: &Sandbox,
    agents: Agents<'_>,
) -> Result<(DriveOutcome, RunRecord)> {
    resume_answered(
        repo,
        stores,
        writer,
        run_id,
        replayed,
        config,
        sandbox,
        Answering::Here(agents),
    )
}

/// [`resume`] for `autopack serve`, answering through `session` as [`start_served`].
///
/// # Errors
/// As [`resume`].
#[allow(clippy::too_many_arguments)]
pub fn resume_served(
    repo: &Path,
    stores: &Stores,
    writer: &RunWriter,
    run_id: &RunId,
    replayed: Replayed,
    config: &RunConfig,
    sandbox: &Sandbox,
    session: autopack_server::Session,
) -> Result<(DriveOutcome, RunRecord)> {
    resume_answered(
        repo,
        stores,
        writer,
        run_id,
        replayed,
        config,
        sandbox,
        Answering::Session(session),
    )
}

#[allow(clippy::too_many_arguments)]
fn resume_answered(
    repo: &Path,
    stores: &Stores,
    writer: &RunWriter,
    run_id: &RunId,
    replayed: Replayed,
    config: &RunConfig,
    sandbox: &Sandbox,
    answering: Answering<'_>,
) -> Result<(DriveOutcome, RunRecord)> {
    if replayed.supervisor.is_finished() {
        let record = repair_finished(repo, stores, run_id, &replayed)?;
        return Ok((DriveOutcome::AlreadyFinished(record.state), record));
    }
    let root = runs_root(repo);
    let mut store = stores.journal_of(&root, writer.store_lease());
    let mut artefacts = resume_artefacts(&root, stores, run_id)?;
    let branch = IntegrationBranch::open(repo, run_id, &config.base, BranchOptions::default())
        .with_context(|| format!("opening the integration branch of run {run_id}"))?;
    let wiring = Wiring::new(repo, run_id, config, branch, sandbox)?;
    wiring.drive(
        run_id,
        answering,
        &mut artefacts,
        &mut store,
        Drive::Resume(replayed),
    )
}

/// Every run's record, rebuilt by replaying its journal, in the store's order. A run
/// whose journal does not replay is returned as an error next to its id.
///
/// # Errors
/// When the layout cannot be listed.
pub fn all_records(repo: &Path, stores: &Stores) -> Result<Vec<(RunId, Result<RunRecord>)>> {
    let root = runs_root(repo);
    let mut store = stores.journal(&root);
    let runs = store
        .runs()
        .with_context(|| format!("listing runs in {}", root.dir().display()))?;
    let mut out = Vec::new();
    for run in runs {
        let record = record_of(&mut store, &stores.journal_name(&root, &run), &run);
        out.push((run, record));
    }
    Ok(out)
}

/// One run's record, rebuilt from its journal.
///
/// # Errors
/// No journal, or one that does not replay.
pub fn load_record(repo: &Path, stores: &Stores, run_id: &RunId) -> Result<RunRecord> {
    let root = runs_root(repo);
    let mut store = stores.journal(&root);
    record_of(&mut store, &stores.journal_name(&root, run_id), run_id)
}

fn record_of(store: &mut Journal, journal_name: &str, run_id: &RunId) -> Result<RunRecord> {
    let sup = autopack::driver::replay_journal(store, run_id).map_err(|e| match e {
        autopack::driver::DriverError::NothingToResume(_) => {
            anyhow::anyhow!("run {run_id} not found: {journal_name} has no journal")
        }
        other => anyhow::anyhow!("run {run_id}: {other}"),
    })?;
    sup.record()
        .cloned()
        .with_context(|| format!("run {run_id} has no record"))
}
