//! `autopack report`: the reports of SPEC §11, rebuilt from the runs' journals.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow};
use autopack::core::ids::ProjectId;
use autopack::core::record::RunRecord;
use autopack::issues::{AgingThresholds, Ledger, ProjectBacklog};
use autopack::runner::{self, Stores};
use clap::builder::RangedU64ValueParser;
use clap::{Args, Subcommand};

use super::{out, print_json, read, run_id};

#[derive(Debug, Args)]
pub(crate) struct ReportOpts {
    /// The repository.
    #[arg(long, value_name = "DIR", default_value = ".")]
    repo: PathBuf,
    #[command(flatten)]
    store: super::StoreArg,
    /// Print JSON (stable field names, those of the report types).
    #[arg(long)]
    json: bool,
}

/// Where the run is (the HTML page has no `--json`).
#[derive(Debug, Args)]
pub(crate) struct HtmlOpts {
    /// The repository.
    #[arg(long, value_name = "DIR", default_value = ".")]
    repo: PathBuf,
    #[command(flatten)]
    store: super::StoreArg,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// Every run: status, debt status, profile, scope, failure reason, tokens, CI runs.
    #[command(after_help = "Example:\n  autopack report runs --repo . --json")]
    Runs(ReportOpts),
    /// Tier cleanliness of one run, and its promotion eligibility.
    #[command(after_help = "Example:\n  autopack report tiers my-run --repo .")]
    Tiers {
        /// The run.
        run_id: String,
        #[command(flatten)]
        opts: ReportOpts,
    },
    /// The project backlog's top keys by runs, tiers and occurrences, with age.
    #[command(
        after_help = "Each project has its own backlog; --project picks one (default: the layout's only project).\n\nExample:\n  autopack report backlog --repo . --limit 20\n  autopack report backlog --repo . --project myproj"
    )]
    Backlog {
        #[command(flatten)]
        opts: ReportOpts,
        /// The project (default: the layout's only one).
        #[arg(long, value_name = "ID")]
        project: Option<String>,
        /// Keys per list (1 to 100000).
        #[arg(long, default_value_t = 10,
              allow_negative_numbers = true, value_parser = RangedU64ValueParser::<usize>::new().range(1..=100_000))]
        limit: usize,
    },
    /// Budget aborts: which tiers, which task_category:complexity slices dominated spend.
    #[command(after_help = "Example:\n  autopack report budget --repo .")]
    Budget(ReportOpts),
    /// One run as a self-contained HTML page: timeline, budgets, tier cleanliness, issues, promotion.
    #[command(
        after_help = "The page loads nothing from the network (inline styles, no script). A run still in progress shows what its journal holds so far.\n\nExample:\n  autopack report html my-run --repo . -o my-run.html"
    )]
    Html {
        /// The run.
        run_id: String,
        #[command(flatten)]
        opts: HtmlOpts,
        /// The file to write (atomically: the old content or the new, never half a page).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
}

fn records(repo: &Path, stores: &Stores) -> Result<(Vec<RunRecord>, bool)> {
    let mut ok = Vec::new();
    let mut failed = false;
    for (run, record) in runner::all_records(repo, stores)? {
        match record {
            Ok(r) => ok.push(r),
            Err(e) => {
                tell!("error: run {run}: {e:#}");
                failed = true;
            }
        }
    }
    Ok((ok, failed))
}

pub(crate) fn cmd_report(report: ReportCommand) -> Result<ExitCode> {
    match report {
        ReportCommand::Runs(opts) => {
            let (records, failed) = records(&opts.repo, &opts.store.open()?)?;
            let list = autopack::report::run_list(&records);
            if opts.json {
                print_json(&list)?;
            } else {
                out(&list.to_string());
            }
            Ok(if failed {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        ReportCommand::Tiers { run_id: id, opts } => {
            let run = run_id(&id)?;
            let record = runner::load_record(&opts.repo, &opts.store.open()?, &run)?;
            let report = autopack::report::tier_report(&record);
            if opts.json {
                print_json(&report)?;
            } else {
                out(&report.to_string());
            }
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Backlog {
            opts,
            project,
            limit,
        } => {
            let root = runner::runs_root(&opts.repo);
            let stores = opts.store.open()?;
            let project = match project {
                Some(id) => ProjectId::new(&id)?,
                None => runner::only_project(&root, &stores, "--project")?,
            };
            let ledger = project_ledger(&root, &stores, &project)?;
            let report = autopack::report::backlog_report(&ledger, limit);
            if opts.json {
                print_json(&report)?;
            } else {
                out(&report.to_string());
            }
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Budget(opts) => {
            let (records, failed) = records(&opts.repo, &opts.store.open()?)?;
            let report = autopack::report::budget_report(&records);
            if opts.json {
                print_json(&report)?;
            } else {
                out(&report.to_string());
            }
            Ok(if failed {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        ReportCommand::Html {
            run_id: id,
            opts,
            output,
        } => {
            let run = run_id(&id)?;
            let stores = opts.store.open()?;
            let record = runner::load_record(&opts.repo, &stores, &run)?;
            let root = runner::runs_root(&opts.repo);
            let project = runner::saved_strategy(&root, &stores, &run)?.project_id;
            let ledger = project_ledger(&root, &stores, &project)?;
            let page = autopack::report::html::html(&record, &ledger);
            autopack::layout::fsio::write_atomic(&output, page.as_bytes())
                .with_context(|| format!("writing the HTML report {}", output.display()))?;
            out(&format!("{}\n", output.display()));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The issue ledger of `project` that the reports read.
fn project_ledger(
    root: &autopack::layout::RunsRoot,
    stores: &Stores,
    project: &ProjectId,
) -> Result<Ledger> {
    Ok(match stores {
        // The ledger itself, as every host records into it.
        Stores::Postgres(_) => runner::project_artefacts(root, stores, project, None)?
            .ledger()
            .clone(),
        Stores::Files => backlog_ledger(root, stores, project)?,
    })
}

/// The ledger of the backlog file of `project`'s ledger under `root` (the first
/// implementation's place too).
fn backlog_ledger(
    root: &autopack::layout::RunsRoot,
    stores: &Stores,
    project: &ProjectId,
) -> Result<Ledger> {
    let projects = stores.projects(root)?;
    let files = autopack::layout::project::ledger_files(root, project, &projects)?;
    let path = files.import_from.into_iter().find(|p| p.is_file());
    let backlog = match &path {
        Some(path) => ProjectBacklog::from_json(&read(path)?, &path.display().to_string())
            .map_err(|e| anyhow!("{e}"))?,
        None => ProjectBacklog::default(),
    };
    Ledger::from_backlog(&backlog, AgingThresholds::default()).map_err(|e| {
        anyhow!(
            "{}: {e}",
            path.as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )
    })
}
