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
use crate::host::{self, Agents, RunConfig, SandboxSettings};
use crate::plan::{PROJECT_ID, example_plan};
use crate::progress::Progress;
use crate::sample::{self, create_sample_repo};
use crate::stores::Stores;

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

/// The files of SPEC §10 a finished run has written (the incident pack only for a
/// `DONE_FAILED_*` run).
pub fn expected_artefacts(
    root: &RunsRoot,
    ruleset_project: &str,
    record: &RunRecord,
) -> Vec<PathBuf> {
    let run = &record.run_id;
    let mut out = vec![
        root.dir()
            .join(format!("project_ruleset_{ruleset_project}.json")),
        root.backlog(),
        root.run_summary(run),
        root.strategy(run, record.strategy_version),
        root.run_issue_index(run),
    ];
    for tier in &record.tiers {
        out.push(root.tier_summary(run, tier.tier_index, &tier.tier_id, &tier.name));
    }
    for phase in record.phases() {
        out.push(root.phase_summary(run, phase.phase_index, &phase.phase_id));
    }
    for phase in record.phases() {
        out.push(root.phase_issues(run, phase.phase_index, &phase.phase_id));
    }
    if record.state.failure().is_some() {
        out.push(root.incident_json(run));
        out.push(root.incident_markdown(run));
    }
    out
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
    // Held until the run ends: nobody else writes this run meanwhile.
    // The embedded default: the run's journal, ledger and views in `.autonomous_runs/`.
    let stores = Stores::Files;
    let writer = host::take_run(&repo, &stores, &run_id)?;
    let prepared = host::prepare(&repo, &stores, &plan, Some(ruleset))?;
    let root = prepared.root.clone();
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
        println!("ruleset        : {}", prepared.ruleset_path.display());
        println!("strategy       : {}", prepared.strategy_path.display());
        println!();
        print!("{}", prepared.strategy.render_text());
        println!();
    }
    // The flaky test remembers its first failure here: outside every checkout (and
    // outside the repository, which the sandbox keeps CI out of), one folder per run, so
    // each run sees the flake once. CI may write it (`sandbox.write`).
    let state_dir = sample::state_dir(&repo, &run_id)?;
    let config = RunConfig {
        base: "main".into(),
        builder_cmd: None,
        auditor_cmd: None,
        test_cmd: sample::test_command(&state_dir, false),
        strict_test_cmd: sample::test_command(&state_dir, true),
        agent_timeout_secs: 60,
        max_output_bytes: autopack::host::DEFAULT_MAX_OUTPUT,
        max_patch_bytes: autopack::apply::MAX_PATCH_BYTES,
        junit: vec![sample::JUNIT_REPORT.to_owned()],
        strict_junit: vec![sample::JUNIT_REPORT.to_owned()],
        workspace_dir: None,
        ci_timeout_secs: 120,
        ci_backoff_millis: 100,
        signature_seconds: chrono::Utc::now().timestamp(),
        builder: None,
        auditor: None,
        sandbox: SandboxSettings {
            disabled: opts.no_sandbox,
            write: vec![state_dir.clone()],
            ..SandboxSettings::default()
        },
    };
    config.save(&root, &run_id)?;
    let sandbox = host::sandbox(&root, &run_id, &config)?;
    let mut builder = ScriptedBuilder::default();
    let mut auditor = ScriptedAuditor::default();
    let mut progress = Progress::new(opts.print);
    let result = host::start(
        &repo,
        &stores,
        &writer,
        &plan,
        prepared,
        &config,
        &sandbox,
        Agents {
            builder: &mut builder,
            auditor: &mut auditor,
            observer: &mut progress,
        },
    );
    progress.finish();
    let (outcome, record) = result?;

    let main_after = sample::main_tip(&repo)?;
    let branch = autopack::apply::refs::integration_ref(&run_id);
    let branch_commits = sample::commits_ahead(&repo, &branch, "refs/heads/main")?;
    let tags = sample::tags_under(&repo, &format!("autonomous/{run_id}/"))?;
    let artefacts = expected_artefacts(&root, PROJECT_ID, &record);
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
    let artefacts = host::project_artefacts(root, &Stores::Files, &project, None)?;
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
    println!("artefacts in {}/{}:", report.repo.display(), host::RUNS_DIR);
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
    println!("Next, with the autopack binary (cargo run -p autopack-examples --bin autopack --):");
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
