//! `autopack run`, `resume` and `export`: the flags of a run, its agents (presets and
//! commands built from the run's configuration, with progress and events), and the
//! library's [`Runner`] doing the rest.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use autopack::core::lifecycle::RunState;
use autopack::core::record::RunRecord;
use autopack::driver::{Auditor, DriveOutcome};
use autopack::host::{AgentPreset, CommandAgent, DEFAULT_MAX_OUTPUT, EscalatingAuditor};
use autopack::runner::{
    self, AgentSource, Agents, NetworkRule, Prepared, RunConfig, RunContext, Runner, RunnerError,
    SandboxSettings, Stores,
};
use autopack_cli::progress::Progress;
use clap::Args;
use clap::builder::RangedU64ValueParser;

use super::{DocLimits, StoreArg, flag_of, print_json, read_ruleset, read_run_plan, run_id};

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The plan (JSON).
    #[arg(long, value_name = "PLAN.json")]
    plan: PathBuf,
    /// The run's id instead of the plan's `run.run_id` (one plan, many runs). A plan that
    /// names none, run without this flag, gets `run-{UTC time}` (said on stderr).
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
    /// The Builder: a preset for an agent CLI (codex, claude, aider) or `command`
    /// (default) for --builder-cmd.
    #[arg(long, value_name = "PRESET", default_value = "command")]
    builder: String,
    /// The Builder's shell command (with `--builder command`), or the program of a preset
    /// (default: the preset's CLI on PATH).
    #[arg(long, value_name = "CMD")]
    builder_cmd: Option<String>,
    /// The Auditor: a preset (codex, claude, aider) or `command` for --auditor-cmd
    /// (default: without --auditor-cmd, every review escalates).
    #[arg(long, value_name = "PRESET")]
    auditor: Option<String>,
    /// The Auditor's shell command, or the program of its preset.
    #[arg(long, value_name = "CMD")]
    auditor_cmd: Option<String>,
    /// Whether agents may use TCP (they need their model's API).
    #[arg(long, value_enum, default_value = "allow")]
    agent_network: NetworkArg,
    /// Seconds an agent command may take (1 to 604800, 7 days).
    #[arg(long, value_name = "SECS", default_value_t = 900, allow_negative_numbers = true, value_parser = secs())]
    agent_timeout: u64,
    /// Largest agent stdout (and result file) accepted, in bytes (1 to 1 GiB).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_OUTPUT, allow_negative_numbers = true, value_parser = bytes())]
    max_output: usize,
    #[command(flatten)]
    settings: RunSettings,
    #[command(flatten)]
    output: Output,
}

/// The host side of a run: repository, stores, ruleset, sandbox and CI (`run` and
/// `serve` take the same).
#[derive(Debug, Clone, Args)]
pub(crate) struct RunSettings {
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// The git repository to work on.
    #[arg(long, value_name = "DIR")]
    pub(crate) repo: PathBuf,
    /// The ruleset (JSON); default: the repository's latest, else the built-in one.
    #[arg(long, value_name = "FILE")]
    pub(crate) ruleset: Option<PathBuf>,
    /// Pass this host environment variable to agents and CI (repeatable; e.g.
    /// OPENAI_API_KEY). Nothing else of the environment is passed.
    #[arg(long, value_name = "NAME")]
    pub(crate) pass_env: Vec<String>,
    /// Let agents and CI read this path (repeatable; e.g. a toolchain such as ~/.cargo).
    #[arg(long, value_name = "PATH")]
    pub(crate) sandbox_read: Vec<PathBuf>,
    /// Let CI write this path too (repeatable; a cache or state folder outside the
    /// repository): the checkout is always writable.
    #[arg(long, value_name = "PATH")]
    pub(crate) ci_write: Vec<PathBuf>,
    /// Whether CI may use TCP.
    #[arg(long, value_enum, default_value = "deny")]
    pub(crate) ci_network: NetworkArg,
    /// Run agents and CI without filesystem and network confinement (needed where the
    /// kernel has no Landlock; the environment is still scrubbed and processes reaped).
    #[arg(long)]
    pub(crate) no_sandbox: bool,
    /// Where the run's private workspaces go (default: $TMPDIR/autopack-workspaces).
    #[arg(long, value_name = "DIR")]
    pub(crate) workspace_dir: Option<PathBuf>,
    /// The test command of the `normal` CI profile (needed, here or in autopack.toml).
    #[arg(long, value_name = "CMD")]
    pub(crate) test_cmd: Option<String>,
    /// The test command of the `strict` CI profile (default: --test-cmd).
    #[arg(long, value_name = "CMD")]
    pub(crate) strict_test_cmd: Option<String>,
    /// A JUnit XML report the `normal` test command writes, as a path or glob in the
    /// checkout (repeatable; e.g. `report.xml`, `target/nextest/ci/junit.xml`,
    /// `reports/**/*.xml`). With reports, failing tests are named exactly, flakiness is
    /// per test, and tests that already fail on the base fail no attempt.
    #[arg(long, value_name = "GLOB")]
    pub(crate) junit: Vec<String>,
    /// The reports of the `strict` test command (default: --junit).
    #[arg(long, value_name = "GLOB")]
    pub(crate) strict_junit: Vec<String>,
    /// The branch the run starts from.
    #[arg(long, value_name = "BRANCH", default_value = "main")]
    pub(crate) base: String,
    /// Seconds one CI attempt may take (1 to 604800, 7 days).
    #[arg(long, value_name = "SECS", default_value_t = 1800, allow_negative_numbers = true, value_parser = secs())]
    pub(crate) ci_timeout: u64,
    /// Milliseconds before the second CI attempt, doubled before each later one (0 to
    /// 3600000, 1 hour; no wait is ever longer).
    #[arg(long, value_name = "MILLIS", default_value_t = 2000,
          allow_negative_numbers = true, value_parser = RangedU64ValueParser::<u64>::new().range(0..=runner::MAX_BACKOFF_MILLIS))]
    pub(crate) ci_backoff: u64,
    #[command(flatten)]
    pub(crate) limits: DocLimits,
    /// Largest patch accepted, in bytes (1 to 1 GiB); a longer one is a failed attempt
    /// (rule patch_too_large).
    #[arg(long, value_name = "BYTES", default_value_t = autopack::apply::MAX_PATCH_BYTES,
          allow_negative_numbers = true, value_parser = RangedU64ValueParser::<u64>::new().range(1..=runner::MAX_BYTES_LIMIT))]
    pub(crate) max_patch_bytes: u64,
}

/// Timeouts: 1 s to [`runner::MAX_TIMEOUT_SECS`] (the range `RunConfig::validate` checks).
fn secs() -> RangedU64ValueParser<u64> {
    RangedU64ValueParser::<u64>::new().range(1..=runner::MAX_TIMEOUT_SECS)
}

/// Byte limits: 1 to [`runner::MAX_BYTES_LIMIT`].
fn bytes() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(1..=runner::MAX_BYTES_LIMIT)
}

/// `--agent-network` / `--ci-network`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum NetworkArg {
    /// TCP allowed.
    Allow,
    /// TCP bind and connect denied.
    Deny,
}

impl From<NetworkArg> for NetworkRule {
    fn from(arg: NetworkArg) -> NetworkRule {
        match arg {
            NetworkArg::Allow => NetworkRule::Allow,
            NetworkArg::Deny => NetworkRule::Deny,
        }
    }
}

fn exit_for(state: RunState) -> ExitCode {
    if state == RunState::DoneSuccess {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn finish_line(outcome: &DriveOutcome, record: &RunRecord, repo: &Path) {
    match outcome {
        DriveOutcome::Finished(state) => say!("run {} ended {state}", record.run_id),
        DriveOutcome::AlreadyFinished(state) => {
            say!(
                "run {} had already finished in {state}; its artefacts are up to date with its journal, nothing to resume",
                record.run_id
            )
        }
    }
    if let Some(failure) = &record.failure {
        say!("reason: {}", failure.reason);
    }
    say!(
        "artefacts: {}",
        runner::runs_root(repo).run_dir(&record.run_id).display()
    );
}

/// What a command that drives a run (`run`, `resume`) prints.
#[derive(Debug, Clone, Args)]
pub(crate) struct Output {
    /// Print no progress lines.
    #[arg(long)]
    quiet: bool,
    /// Print the run's line of `report runs --json` on stdout (progress goes to stderr).
    #[arg(long)]
    json: bool,
    /// Write every transition, breach, escalation, action and result as a JSON line to
    /// FILE (`-`: stdout, progress then goes to stderr).
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
}

impl Output {
    fn events_on_stdout(&self) -> bool {
        self.events.as_deref() == Some(Path::new("-"))
    }

    /// Checked before anything is written.
    fn check(&self) -> Result<()> {
        if self.json && self.events_on_stdout() {
            bail!("--json and --events - both want stdout: write the events to a file");
        }
        Ok(())
    }

    fn progress(&self) -> Result<Progress> {
        let progress = Progress::new(!self.quiet);
        let progress = if self.json || self.events_on_stdout() {
            progress.on_stderr()
        } else {
            progress
        };
        Ok(match &self.events {
            None => progress,
            Some(path) if path == Path::new("-") => {
                progress.with_events(Box::new(std::io::stdout()))
            }
            Some(path) => {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("--events {}: cannot create it", path.display()))?;
                progress.with_events(Box::new(std::io::LineWriter::new(file)))
            }
        })
    }

    /// Prints the end of a run: its `report runs` line as JSON, or the finish line.
    fn finished(&self, outcome: &DriveOutcome, record: &RunRecord, repo: &Path) -> Result<()> {
        if self.events_on_stdout() {
            // stdout is the event stream's; the finish line goes with the progress.
            tell!("run {} ended {}", record.run_id, record.state);
            return Ok(());
        }
        if self.json {
            print_json(&autopack::report::run_list([record]).runs)
        } else {
            finish_line(outcome, record, repo);
            Ok(())
        }
    }
}

/// The agents of `autopack run` and `resume`: a preset or command Builder and Auditor
/// built from the run's configuration and confined by its sandbox, observed by the
/// progress lines and the event stream of [`Output`].
struct CommandAgents<'o> {
    output: &'o Output,
    /// Whether `on_prepared` says where the strategy is (`run`; a resume has one).
    says_strategy: bool,
    builder: Option<CommandAgent>,
    auditor: Option<CommandAgent>,
    escalating: EscalatingAuditor,
    progress: Option<Progress>,
}

impl<'o> CommandAgents<'o> {
    fn new(output: &'o Output, says_strategy: bool) -> CommandAgents<'o> {
        CommandAgents {
            output,
            says_strategy,
            builder: None,
            auditor: None,
            escalating: EscalatingAuditor,
            progress: None,
        }
    }
}

impl AgentSource for CommandAgents<'_> {
    fn agents(&mut self, run: &RunContext<'_>) -> Result<Agents<'_>, RunnerError> {
        let config = run.config;
        let agent_error = |reason: String| RunnerError::Agent {
            run_id: run.run_id.clone(),
            reason,
        };
        if config.builder.is_none() && config.builder_cmd.is_none() {
            return Err(agent_error(
                "run_config.json names no builder (was it started by example-run, or by `autopack serve`, which resumes its own runs?)".into(),
            ));
        }
        let logs = run.agent_logs();
        let builder = config
            .agent(
                config.builder.as_deref(),
                config.builder_cmd.as_deref(),
                run.sandbox,
                &logs,
            )
            .map_err(|e| agent_error(format!("the Builder: {e}")))?;
        let auditor = match (&config.auditor, &config.auditor_cmd) {
            (None, None) => None,
            (preset, cmd) => Some(
                config
                    .agent(preset.as_deref(), cmd.as_deref(), run.sandbox, &logs)
                    .map_err(|e| agent_error(format!("the Auditor: {e}")))?,
            ),
        };
        let progress = self.output.progress().map_err(|e| {
            RunnerError::failed("opening the event stream", e.into_boxed_dyn_error())
        })?;
        let builder = self.builder.insert(builder);
        self.auditor = auditor;
        let auditor: &mut dyn Auditor = match self.auditor.as_mut() {
            Some(a) => a,
            None => &mut self.escalating,
        };
        let progress = self.progress.insert(progress);
        Ok(Agents::new(builder, auditor).observed_by(progress))
    }

    fn on_reclaimed(&mut self, lines: &[String]) {
        for line in lines {
            tell!("{line}");
        }
    }

    fn on_prepared(&mut self, prepared: &Prepared) {
        if self.says_strategy && !self.output.quiet {
            let line = format!("strategy: {}", prepared.strategy_path.display());
            if self.output.json || self.output.events_on_stdout() {
                tell!("{line}");
            } else {
                say!("{line}");
            }
        }
    }

    fn on_end(&mut self) {
        if let Some(progress) = self.progress.as_mut() {
            progress.finish();
        }
    }
}

// ----- run / resume -----

impl RunSettings {
    /// The repository, canonical (agents, workspaces and CI get absolute paths).
    pub(crate) fn repo(&self) -> Result<PathBuf> {
        self.repo
            .canonicalize()
            .with_context(|| format!("{}: no such repository", self.repo.display()))
    }

    pub(crate) fn ruleset(&self) -> Result<Option<autopack::strategy::Ruleset>> {
        self.ruleset
            .as_deref()
            .map(|path| read_ruleset(path, self.limits.max_ruleset_bytes))
            .transpose()
    }

    /// The run's configuration with these settings and `agents`.
    pub(crate) fn config(&self, agents: AgentSettings) -> Result<RunConfig> {
        let Some(test_cmd) = self.test_cmd.clone() else {
            bail!(
                "--test-cmd CMD is needed (on the command line, or as test-cmd in {})",
                autopack_cli::config::CONFIG_FILE
            );
        };
        Ok(RunConfig {
            base: self.base.clone(),
            builder_cmd: agents.builder_cmd,
            auditor_cmd: agents.auditor_cmd,
            strict_test_cmd: self
                .strict_test_cmd
                .clone()
                .unwrap_or_else(|| test_cmd.clone()),
            test_cmd,
            agent_timeout_secs: agents.timeout_secs,
            max_output_bytes: agents.max_output,
            max_patch_bytes: self.max_patch_bytes,
            strict_junit: if self.strict_junit.is_empty() {
                self.junit.clone()
            } else {
                self.strict_junit.clone()
            },
            junit: self.junit.clone(),
            ci_timeout_secs: self.ci_timeout,
            ci_backoff_millis: self.ci_backoff,
            signature_seconds: chrono::Utc::now().timestamp(),
            workspace_dir: self.workspace_dir.clone(),
            builder: agents.builder,
            auditor: agents.auditor,
            sandbox: SandboxSettings {
                disabled: self.no_sandbox,
                pass_env: self.pass_env.clone(),
                read: self.sandbox_read.clone(),
                write: self.ci_write.clone(),
                agent_network: agents.network,
                ci_network: self.ci_network.into(),
            },
        })
    }
}

/// The local agents of a run (none for `serve`).
pub(crate) struct AgentSettings {
    pub(crate) builder: Option<String>,
    pub(crate) builder_cmd: Option<String>,
    pub(crate) auditor: Option<String>,
    pub(crate) auditor_cmd: Option<String>,
    pub(crate) timeout_secs: u64,
    pub(crate) max_output: usize,
    pub(crate) network: NetworkRule,
}

pub(crate) fn cmd_run(args: RunArgs) -> Result<ExitCode> {
    let settings = &args.settings;
    let plan = read_run_plan(
        &args.plan,
        settings.limits.max_plan_bytes,
        args.run_id.as_deref(),
    )?;
    let ruleset = settings.ruleset()?;
    let config = settings.config(AgentSettings {
        builder: Some(args.builder.clone()),
        builder_cmd: args.builder_cmd.clone(),
        auditor: args.auditor.clone(),
        auditor_cmd: args.auditor_cmd.clone(),
        timeout_secs: args.agent_timeout,
        max_output: args.max_output,
        network: args.agent_network.into(),
    })?;
    // Names checked before anything is written.
    for preset in [Some(&args.builder), args.auditor.as_ref()]
        .into_iter()
        .flatten()
    {
        AgentPreset::from_name(preset)?;
    }
    if args.builder == "command" && args.builder_cmd.is_none() {
        bail!("--builder command (the default) needs --builder-cmd CMD");
    }
    // The flags' ranges are those of the file; checked again before anything is written.
    config
        .validate()
        .map_err(|e| anyhow!("{e} (the flag --{})", flag_of(e.field)))?;
    args.output.check()?;
    let runner = Runner::new(&settings.repo, settings.store.open()?)?;
    let mut agents = CommandAgents::new(&args.output, true);
    let ended = runner.start(&plan, ruleset, &config, &mut agents)?;
    args.output
        .finished(&ended.outcome, &ended.record, runner.repo())?;
    Ok(exit_for(ended.record.state))
}

pub(crate) fn cmd_resume(
    id: &str,
    repo: &Path,
    stores: Stores,
    output: Output,
) -> Result<ExitCode> {
    let run_id = run_id(id)?;
    output.check()?;
    let runner = Runner::new(repo, stores)?;
    let mut agents = CommandAgents::new(&output, false);
    let ended = runner.resume(&run_id, &mut agents)?;
    output.finished(&ended.outcome, &ended.record, runner.repo())?;
    // The run's result, as `run` reports it: resuming a finished run does not change it.
    Ok(exit_for(ended.record.state))
}

pub(crate) fn cmd_export(id: &str, repo: &Path, stores: &Stores) -> Result<ExitCode> {
    let run_id = run_id(id)?;
    let record = runner::export(repo, stores, &run_id)?;
    say!(
        "run {run_id} ({}): artefacts written to {}",
        record.state,
        runner::runs_root(repo).run_dir(&run_id).display()
    );
    Ok(ExitCode::SUCCESS)
}
