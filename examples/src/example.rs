//! The example run: sample repository, strategy, scripted agents, real CI, reports.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use autopack::core::ids::RunId;
use autopack::core::lifecycle::RunState;
use autopack::core::message::AuditReason;
use autopack::core::record::RunRecord;
use autopack::driver::DriveOutcome;
use autopack::layout::RunsRoot;

use crate::agents::{ScriptedAuditor, ScriptedBuilder};
use autopack::runner::{
    AgentSource, Agents, Ended, Prepared, RunConfig, RunContext, Runner, RunnerError,
    SandboxSettings, Stores,
};
use autopack_cli::progress::Progress;

use crate::plan::{PROJECT_ID, example_plan};
use crate::sample::{self, create_sample_repo};

/// The state the example plan scripts: every phase completes.
pub const EXPECTED_STATE: RunState = RunState::DoneSuccess;

/// Options of [`run_example`].
#[derive(Debug, Clone)]
pub struct ExampleOptions {
    /// Where the sample repository is (created when missing or empty, reused when it is
    /// already the sample).
    pub dir: PathBuf,
    /// The run id.
    pub run_id: String,
    /// Print progress to stdout.
    pub print: bool,
    /// Run CI unconfined (where the kernel has no Landlock).
    pub no_sandbox: bool,
}

/// What the example run did.
#[derive(Debug, Clone)]
pub struct ExampleReport {
    /// The sample repository.
    pub repo: PathBuf,
    /// The run.
    pub run_id: RunId,
    /// How the driver ended.
    pub outcome: DriveOutcome,
    /// The run's record.
    pub record: RunRecord,
    /// `main` before the run.
    pub main_before: String,
    /// `main` after the run.
    pub main_after: String,
    /// The integration branch's full ref name.
    pub branch: String,
    /// Commits on the integration branch that `main` lacks, newest first.
    pub branch_commits: Vec<(String, String)>,
    /// Snapshot tags of the run.
    pub tags: Vec<String>,
    /// Every artefact of SPEC §10 the run should have written.
    pub artefacts: Vec<PathBuf>,
    /// Those that are missing (empty when all are there).
    pub missing: Vec<PathBuf>,
    /// The reports (run list, tier cleanliness, backlog, budget), as text.
    pub reports: String,
    /// Builder calls: (phase, attempt).
    pub builder_calls: Vec<(String, u32)>,
    /// Auditor calls: (phase, reason).
    pub auditor_calls: Vec<(String, AuditReason)>,
    /// Every progress line.
    pub progress: Vec<String>,
}

impl ExampleReport {
    /// Whether the run ended as scripted, `main` is untouched and every artefact exists.
    pub fn as_scripted(&self) -> bool {
        self.record.state == EXPECTED_STATE
            && self.main_before == self.main_after
            && self.missing.is_empty()
    }
}

/// Runs the example: creates (or reuses) the sample repository in `opts.dir`, compiles
/// the strategy of the example plan, drives the scripted agents with the sample's real
/// tests as CI, and gathers what a person should look at afterwards.
///
/// # Errors
/// Setup failures (the directory, the repository, the ledger) and driver failures. A run
/// that ends otherwise than scripted is not an error: see [`ExampleReport::as_scripted`].
pub fn run_example(opts: &ExampleOptions) -> Result<ExampleReport> {
    let sample = create_sample_repo(&opts.dir)?;
    let repo = sample.path.clone();
    let plan = example_plan(&opts.run_id)?;
    let run_id = plan.run.run_id.clone();
    let main_before = sample.main_tip.clone();
    let ruleset =
        autopack::strategy::Ruleset::builtin(autopack::core::ids::ProjectId::new(PROJECT_ID)?);
    if opts.print {
        println!(
            "sample project : {}{}",
            repo.display(),
            if sample.created {
                " (created)"
            } else {
                " (reused)"
            }
        );
        println!("main           : {main_before}");
    }
    // The flaky test remembers its first failure here: outside every checkout (and
    // outside the repository, which the sandbox keeps CI out of), one folder per run, so
    // each run sees the flake once. CI may write it (`sandbox.write`).
    let state_dir = sample::state_dir(&repo, &run_id)?;
    let mut config = RunConfig::new("main", sample::test_command(&state_dir, false));
    config.strict_test_cmd = sample::test_command(&state_dir, true);
    config.agent_timeout_secs = 60;
    config.junit = vec![sample::JUNIT_REPORT.to_owned()];
    config.strict_junit = vec![sample::JUNIT_REPORT.to_owned()];
    config.ci_timeout_secs = 120;
    config.ci_backoff_millis = 100;
    config.sandbox = SandboxSettings {
        disabled: opts.no_sandbox,
        write: vec![state_dir.clone()],
        ..SandboxSettings::default()
    };
    // The embedded default: the run's journal, ledger and views in `.autonomous_runs/`.
    let runner = Runner::new(&repo, Stores::Files)?;
    let root = runner.root();
    let mut agents = ExampleAgents {
        builder: ScriptedBuilder::default(),
        auditor: ScriptedAuditor::default(),
        progress: Progress::new(opts.print),
        print: opts.print,
    };
    let result = runner.start(&plan, Some(ruleset), &config, &mut agents);
    let ExampleAgents {
        builder,
        auditor,
        progress,
        ..
    } = agents;
    let Ended {
        outcome, record, ..
    } = result?;

    let main_after = sample::main_tip(&repo)?;
    let branch = autopack::apply::refs::integration_ref(&run_id);
    let branch_commits = sample::commits_ahead(&repo, &branch, "refs/heads/main")?;
    let tags = sample::tags_under(&repo, &format!("autonomous/{run_id}/"))?;
    let artefacts = autopack::runner::expected_artefacts(&root, PROJECT_ID, &record);
    let missing: Vec<PathBuf> = artefacts.iter().filter(|p| !p.is_file()).cloned().collect();
    let reports = reports_text(&root, &record)?;
    Ok(ExampleReport {
        repo,
        run_id,
        outcome,
        record,
        main_before,
        main_after,
        branch,
        branch_commits,
        tags,
        artefacts,
        missing,
        reports,
        builder_calls: builder.calls,
        auditor_calls: auditor.calls,
        progress: progress.lines,
    })
}

/// The four reports of SPEC §11 for one run, as text.
///
/// # Errors
/// When the project ledger cannot be read.
pub fn reports_text(root: &RunsRoot, record: &RunRecord) -> Result<String> {
    let project = autopack::core::ids::ProjectId::new(PROJECT_ID)?;
    let artefacts = autopack::runner::project_artefacts(root, &Stores::Files, &project, None)?;
    let mut out = String::new();
    let _ = writeln!(out, "== Runs ==\n{}", autopack::report::run_list([record]));
    let _ = writeln!(
        out,
        "== Tiers of {} ==\n{}",
        record.run_id,
        autopack::report::tier_report(record)
    );
    let _ = writeln!(
        out,
        "== Backlog ==\n{}",
        autopack::report::backlog_report(artefacts.ledger(), 10)
    );
    let _ = writeln!(
        out,
        "== Budget ==\n{}",
        autopack::report::budget_report([record])
    );
    Ok(out)
}

/// Prints the end of the example: reports and where everything is.
pub fn print_summary(report: &ExampleReport) {
    let rel = |p: &Path| {
        p.strip_prefix(&report.repo)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    println!();
    println!("{}", report.reports);
    println!("== Where things are ==");
    println!(
        "run {} ended {} (scripted: {})",
        report.run_id, report.record.state, EXPECTED_STATE
    );
    println!(
        "artefacts in {}/{}:",
        report.repo.display(),
        autopack::runner::RUNS_DIR
    );
    for path in &report.artefacts {
        let mark = if path.is_file() { "ok" } else { "MISSING" };
        println!("  [{mark}] {}", rel(path));
    }
    println!(
        "integration branch {} — {} commit(s), one per applied patch:",
        report.branch,
        report.branch_commits.len()
    );
    for (id, subject) in &report.branch_commits {
        println!("  {id} {subject}");
    }
    println!("snapshot tags ({}):", report.tags.len());
    for tag in &report.tags {
        println!("  {tag}");
    }
    if report.main_before == report.main_after {
        println!("main untouched: {} before and after", report.main_before);
    } else {
        println!("main MOVED: {} → {}", report.main_before, report.main_after);
    }
    println!();
    // The release profile of `example-run`: only the CLI's own crate is built again.
    println!(
        "Next, with the autopack binary (`cargo install --locked --path autopack-cli`, or `cargo run --release -p autopack-cli --`):"
    );
    println!(
        "  autopack report tiers {} --repo {}",
        report.run_id,
        report.repo.display()
    );
    println!(
        "  autopack promote check {} --repo {}",
        report.run_id,
        report.repo.display()
    );
    println!("  autopack validate --repo {}", report.repo.display());
}

/// A run id for now: `example-YYYYMMDD-HHMMSS`.
pub fn fresh_run_id() -> String {
    chrono::Utc::now()
        .format("example-%Y%m%d-%H%M%S")
        .to_string()
}

/// Fails when `report` did not go as scripted, naming what differs.
///
/// # Errors
/// The differences.
pub fn check(report: &ExampleReport) -> Result<()> {
    let mut problems = Vec::new();
    if report.record.state != EXPECTED_STATE {
        problems.push(format!(
            "the run ended {} instead of {EXPECTED_STATE}",
            report.record.state
        ));
    }
    if report.main_before != report.main_after {
        problems.push(format!(
            "main moved from {} to {}",
            report.main_before, report.main_after
        ));
    }
    for path in &report.missing {
        problems.push(format!("artefact missing: {}", path.display()));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "the example run did not go as scripted:\n  {}",
            problems.join("\n  ")
        )
    }
}

/// The example's scripted agents and progress, and what it prints before the run starts.
struct ExampleAgents {
    builder: ScriptedBuilder,
    auditor: ScriptedAuditor,
    progress: Progress,
    print: bool,
}

impl AgentSource for ExampleAgents {
    fn agents(&mut self, _run: &RunContext<'_>) -> Result<Agents<'_>, RunnerError> {
        Ok(Agents::new(&mut self.builder, &mut self.auditor).observed_by(&mut self.progress))
    }

    fn on_prepared(&mut self, prepared: &Prepared) {
        if self.print {
            println!("ruleset        : {}", prepared.ruleset_path.display());
            println!("strategy       : {}", prepared.strategy_path.display());
            println!();
            print!("{}", prepared.strategy.render_text());
            println!();
        }
    }

    fn on_end(&mut self) {
        self.progress.finish();
    }
}
