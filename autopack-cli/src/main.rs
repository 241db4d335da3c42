//! `autopack`: the command-line tool for hosts and CI pipelines.
//!
//! Subcommands: `run`, `resume`, `strategy dry-run`, `patch check`, `plan split`, `report`, `promote`
//! (and `promote check`), `schema`, `validate`. `autopack --help` and `autopack
//! SUBCOMMAND --help` explain each with an example.
//!
//! Exit codes: 0 success; 1 a negative answer (a run that ended `DONE_FAILED_*`, a run
//! not eligible for promotion, a tree with problems); 2 an error (bad arguments, a file
//! that cannot be read, an invalid plan or ruleset, a flag out of range — named on
//! stderr). Output never panics: a closed stdout or stderr (`autopack run … | head -1`)
//! stops the printing, not the command.
//!
//! Every duration, size and count flag is range-checked by clap (timeouts 1 s to 7 days,
//! the CI backoff at most 1 hour, byte limits 1 B to 1 GiB) with the ranges
//! `RunConfig::validate` applies to `run_config.json`; plans and rulesets are read at most
//! `--max-plan-bytes` / `--max-ruleset-bytes` bytes (the README's "Limits on input").

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use autopack::apply::{CommitSignature, PromoteMode, PromoteOptions};
use autopack::core::ids::{ProjectId, RunId};
use autopack::core::plan::Plan;
use autopack::runner::{self, STORE_ENV, Stores};
use autopack::strategy::{BacklogView, Ruleset};
use autopack_cli::validate;
use clap::builder::RangedU64ValueParser;
use clap::{Args, CommandFactory, FromArgMatches as _, Parser, Subcommand};

/// `println!` that never panics: a closed or failing stdout (`autopack … | head -1`) is
/// not an error; the command goes on and its exit code stands.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that never panics on a closed or failing stderr.
macro_rules! tell {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod patch;
mod report;
mod run;
mod serve;
use patch::{PatchCommand, cmd_patch_check};
use report::{ReportCommand, cmd_report};
use run::{Output, RunArgs, cmd_export, cmd_resume, cmd_run};

/// Governed autonomous runs: run plans with external-command agents, resume them, and
/// inspect, validate and promote what they produced.
#[derive(Debug, Parser)]
#[command(
    name = "autopack",
    version,
    after_help = "Exit codes: 0 success; 1 a negative answer (a run ended DONE_FAILED_*, a run is not eligible for promotion, validate found problems); 2 an error (named on stderr).\n\nExample:\n  autopack run --plan plan.json --repo . --builder-cmd ./builder.sh --auditor-cmd ./auditor.sh --test-cmd 'cargo test'\n  autopack report runs --repo .\n  autopack promote check my-run --repo ."
)]
struct Cli {
    /// The configuration file (default: DIR/autopack.toml when it exists): settings of
    /// `run` and `serve`, keyed by their long flags; flags given here override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a run of PLAN in the repository DIR with agents in private, sandboxed workspaces.
    #[command(after_help = RUN_HELP)]
    Run(Box<RunArgs>),
    /// Serve the first implementation's HTTP API over the repository DIR: runs started
    /// over HTTP, their attempts answered by HTTP clients and pull-model workers.
    #[command(after_help = serve::SERVE_HELP)]
    Serve(Box<serve::ServeArgs>),
    /// Continue a run from its journal after a crash (a finished run is left alone).
    #[command(
        after_help = "The host is rebuilt from {repo}/.autonomous_runs/{run_id}/run_config.json, written by `autopack run`.\n\nExit 0 when the run ends (or had ended) DONE_SUCCESS, 1 when DONE_FAILED_*, 2 on an error.\n\nExample:\n  autopack resume my-run --repo ."
    )]
    Resume {
        /// The run to continue.
        run_id: String,
        /// The repository.
        #[arg(long, value_name = "DIR", default_value = ".")]
        repo: PathBuf,
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        output: Output,
    },
    /// Write a run's Markdown and JSON views into DIR/.autonomous_runs/ from its store
    /// (summaries, issue views, strategy; the incident pack of a failed run).
    #[command(
        after_help = "For runs kept in PostgreSQL: any host can look at any run's artefacts. With the file store it rewrites them from the run's journal.\n\nExample:\n  autopack export my-run --repo . --store postgres://autopack@db.internal/autopack"
    )]
    Export {
        /// The run.
        run_id: String,
        /// The repository whose `.autonomous_runs/` receives the views.
        #[arg(long, value_name = "DIR", default_value = ".")]
        repo: PathBuf,
        #[command(flatten)]
        store: StoreArg,
    },
    /// The StrategyEngine, without a run.
    #[command(subcommand)]
    Strategy(StrategyCommand),
    /// The patch gate, without a run.
    #[command(subcommand)]
    Patch(PatchCommand),
    /// Plan tools.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Reports of SPEC §11, rebuilt from the runs' journals.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Promote a finished run's integration branch to a protected branch (or check whether
    /// it may be).
    #[command(
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true,
        after_help = "A run is eligible when it ended DONE_SUCCESS, no tier is NOT_CLEAN or BLOCKED, no budget failure occurred, its debt status is not excess_minor_issues and (safety_critical) no major issue is unresolved.\n\nExamples:\n  autopack promote check my-run --repo .      # exit 0 eligible, 1 not (reasons printed)\n  autopack promote my-run --repo . --target main\n  autopack promote my-run --repo . --merge --allow-checked-out"
    )]
    Promote(PromoteArgs),
    /// Check a run against its journal: the hash chain, the integration branch's commits
    /// and trees, the tags, the summaries and issue views, and the attestation.
    #[command(
        after_help = "The journal is replayed into a fresh Supervisor; nothing stored is trusted. Exit 0 when everything matches, 1 with each mismatch named (journal entry, commit, tag, file, attestation).\n\nExamples:\n  autopack verify my-run --repo .\n  autopack verify my-run --repo . --key attest.pub.pem --json"
    )]
    Verify {
        /// The run.
        run_id: String,
        /// The repository.
        #[arg(long, value_name = "DIR", default_value = ".")]
        repo: PathBuf,
        #[command(flatten)]
        store: StoreArg,
        /// Also require the signed attestation (attestation.dsse.json) to verify with this
        /// Ed25519 public key (SPKI PEM).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a run's in-toto attestation (and, with --key, sign it as a DSSE envelope).
    #[command(
        after_help = "Every run writes .autonomous_runs/RUN/attestation.intoto.json when it ends; `attest` writes it again and, with --key (an Ed25519 private key, PKCS#8 PEM as `openssl genpkey -algorithm ed25519` writes), also attestation.dsse.json.\n\nExample:\n  autopack attest my-run --repo . --key attest.pem"
    )]
    Attest {
        /// The run.
        run_id: String,
        /// The repository.
        #[arg(long, value_name = "DIR", default_value = ".")]
        repo: PathBuf,
        #[command(flatten)]
        store: StoreArg,
        /// Sign with this Ed25519 private key (PKCS#8 PEM).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// What-if replay: re-run a recorded run's agent and CI outcomes under another ruleset
    /// and say where it would have gone differently.
    #[command(
        after_help = "The recorded Builder, Auditor and CI outcomes answer the requests of a Supervisor under NEW.json's strategy (budgets, attempts, thresholds), compiled for the run's own plan and backlog. It reports the first decision that differs, the end state reached with the recorded outcomes, or the point where agent work that was never recorded would have been needed. --all does so for every run and counts how many would have ended differently. Exit 0 whether or not anything differs.\n\nExamples:\n  autopack replay my-run --repo . --ruleset tighter.json\n  autopack replay --all --repo . --ruleset tighter.json --json"
    )]
    Replay {
        /// The run (or --all).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        run_id: Option<String>,
        /// Every run of the repository's store.
        #[arg(long)]
        all: bool,
        /// The repository.
        #[arg(long, value_name = "DIR", default_value = ".")]
        repo: PathBuf,
        #[command(flatten)]
        store: StoreArg,
        /// The ruleset to replay under.
        #[arg(long, value_name = "NEW.json")]
        ruleset: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: DocLimits,
    },
    /// Print or write the JSON Schemas of the documents Autopack reads and writes.
    #[command(
        after_help = "Names: plan, builder_request, builder_result, auditor_request, auditor_result, probe_result, suggested_issue, ruleset, strategy.\n\nExamples:\n  autopack schema                 # list the names\n  autopack schema builder_result  # print one\n  autopack schema --out schemas/  # write {name}.schema.json for all"
    )]
    Schema {
        /// One schema (default: all).
        name: Option<String>,
        /// Write `{name}.schema.json` files into DIR instead of printing.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Rebuild a project's issue views (backlog, run indexes, phase files) from its ledger
    /// journal.
    #[command(
        after_help = "A view file that is truncated, corrupt, missing or foreign is rebuilt on its own whenever a run opens the ledger (with a warning naming it); `repair` rebuilds them all now and says what it found. A corrupt line in the middle of the journal itself stops it with the file and line named; --truncate-corrupt-journal then cuts the journal at that line, after copying the line and all after it to project_issue_journal…jsonl.corrupt-{time} (the events in it are lost from the ledger; the copy is kept for a person to read).\n\nExamples:\n  autopack repair --repo .\n  autopack repair --repo . --project myproj --truncate-corrupt-journal"
    )]
    Repair {
        /// The repository.
        #[arg(long, value_name = "DIR", default_value = ".")]
        repo: PathBuf,
        /// The project (default: the layout's only one).
        #[arg(long, value_name = "ID")]
        project: Option<String>,
        /// Cut a journal corrupt in the middle at its first bad line (backed up first).
        #[arg(long)]
        truncate_corrupt_journal: bool,
    },
    /// Print a shell completion script for SHELL.
    #[command(
        after_help = "Examples:\n  autopack completions bash > ~/.local/share/bash-completion/completions/autopack\n  autopack completions zsh > ~/.zfunc/_autopack\n  autopack completions fish > ~/.config/fish/completions/autopack.fish"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), generated from this tool's options.
    #[command(after_help = "Example:\n  autopack man > autopack.1 && man ./autopack.1")]
    Man,
    /// Check a `.autonomous_runs/` tree (also one written by the first implementation).
    #[command(
        after_help = "Every JSON file it knows is parsed strictly with its type, every run journal is replayed, and a finished run must have its SPEC §10 artefacts. Each problem names its file. Exit 1 when there is any.\n\nExample:\n  autopack validate --repo ."
    )]
    Validate {
        /// The repository (or the `.autonomous_runs/` folder itself).
        #[arg(long, value_name = "DIR", default_value = ".")]
        repo: PathBuf,
        #[command(flatten)]
        store: StoreArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

const RUN_HELP: &str = "Every Builder and Auditor attempt runs in a private workspace: an independent git clone of the integration branch's tip (the Auditor: of the candidate under review), outside DIR, never linked to it. An agent may simply edit files there and exit 0: the change is its patch. It may also write a result JSON (builder_result / auditor_result, see `autopack schema`) to $AUTOPACK_RESULT_FILE, or, as a plain --builder-cmd, print it on stdout; a result that carries a patch is used as it is. A process that fails, hangs past --agent-timeout, prints more than --max-output bytes or an answer that does not parse is a failed attempt with its reason recorded; the run goes on.\n\nPresets (--builder / --auditor): codex (`codex exec --json`, tokens from its turn.completed events), claude (`claude -p --output-format json`, tokens from its usage), aider (`aider --yes-always --no-auto-commits --message`, tokens from its `Tokens:` lines), command (default: --builder-cmd run with `sh -c`, request JSON on stdin). With a preset, --builder-cmd names the CLI's program (default: on PATH).\n\nSandbox (Linux Landlock, on by default): agents and CI write only their workspace and a private HOME and TMPDIR, and cannot read DIR or anything outside the system directories, PATH and --sandbox-read; they hold no capabilities; agents may use TCP (--agent-network), CI may not (--ci-network). Where the kernel has no Landlock the run refuses to start unless --no-sandbox is given. The environment is an allowlist: PATH, LANG, LC_*, TERM, TZ, USER, LOGNAME, SHELL, what --pass-env names, and:\n  AUTOPACK_REQUEST_FILE  the request JSON (builder_request / auditor_request)\n  AUTOPACK_RESULT_FILE   where the agent may write its result JSON\n  AUTOPACK_WORKSPACE     the private checkout, also the working directory\n  AUTOPACK_REPO          the same as AUTOPACK_WORKSPACE (never the host repository)\n  AUTOPACK_RUN_ID, AUTOPACK_PHASE_ID, AUTOPACK_ROLE (builder|auditor), AUTOPACK_ATTEMPT\nThe request also carries checkout.{base_commit,tip_commit,head_commit,workspace}, previous_patch and last_ci.{output_tail,failing_tests} (see `autopack schema builder_request`). Every process an attempt starts is killed when it ends or times out, setsid and double forks included; `autopack resume` kills what a crashed run left running.\n\nThe integration branch autonomous/{run_id} is created from --base; the base and every protected branch are never written. CI runs --test-cmd (strict profile: --strict-test-cmd) in the run's CI workspace, reset to each candidate commit. After every agent and CI attempt a tripwire compares the host's refs (but the run's own), HEAD, index, hooks and config with the start: any change ends the run DONE_FAILED_POLICY_VIOLATION with an incident pack naming it. Artefacts go to DIR/.autonomous_runs/ (add it to your ignore file), with a log of every agent attempt (how it ended, its stderr tail, its stdout tail) in {run_id}/agents/{phase}.{role}.{attempt}.log; the host settings are saved as {run_id}/run_config.json for `autopack resume`. Without --auditor or --auditor-cmd every review escalates.\n\nExit 0 when the run ends DONE_SUCCESS, 1 when it ends DONE_FAILED_*.\n\nExamples:\n  autopack run --plan plan.json --repo . --builder-cmd ./edit-files.sh --test-cmd 'sh run_tests.sh'\n  autopack run --plan plan.json --repo . --builder codex --pass-env OPENAI_API_KEY --auditor claude --pass-env ANTHROPIC_API_KEY --test-cmd 'cargo test --offline' --sandbox-read ~/.cargo --sandbox-read ~/.rustup --pass-env CARGO_HOME --pass-env RUSTUP_HOME";

/// Where runs are kept: `--store` or `AUTOPACK_STORE`.
#[derive(Debug, Clone, Args)]
pub(crate) struct StoreArg {
    /// Where journals, the issue ledger, rulesets, strategies and run leases are kept:
    /// `files` (default: DIR/.autonomous_runs/) or a PostgreSQL URL
    /// (postgres://user:password@host:port/database), shared by every host.
    #[arg(long, value_name = "URL", env = STORE_ENV)]
    pub(crate) store: Option<String>,
}

impl StoreArg {
    pub(crate) fn open(&self) -> Result<Stores> {
        Stores::open(self.store.as_deref()).map_err(|e| anyhow!("--store {e}"))
    }
}

/// The size limits of the documents a command reads (`--max-plan-bytes`,
/// `--max-ruleset-bytes`).
#[derive(Debug, Clone, Copy, Args)]
struct DocLimits {
    /// Largest plan file read, in bytes (1 to 1 GiB).
    #[arg(long, value_name = "BYTES", default_value_t = autopack::core::limits::MAX_PLAN_BYTES,
          allow_negative_numbers = true, value_parser = RangedU64ValueParser::<u64>::new().range(1..=runner::MAX_BYTES_LIMIT))]
    max_plan_bytes: u64,
    /// Largest ruleset file read, in bytes (1 to 1 GiB).
    #[arg(long, value_name = "BYTES", default_value_t = autopack::strategy::MAX_RULESET_BYTES,
          allow_negative_numbers = true, value_parser = RangedU64ValueParser::<u64>::new().range(1..=runner::MAX_BYTES_LIMIT))]
    max_ruleset_bytes: u64,
}

#[derive(Debug, Subcommand)]
enum StrategyCommand {
    /// Compile the strategy of a plan and print it (nothing is written).
    #[command(
        after_help = "Example:\n  autopack strategy dry-run --plan plan.json --ruleset .autonomous_runs/project_ruleset_myproj.json --backlog .autonomous_runs/project_issue_backlog.json --json"
    )]
    DryRun {
        /// The plan (JSON).
        #[arg(long, value_name = "PLAN.json")]
        plan: PathBuf,
        /// The ruleset (default: the built-in one).
        #[arg(long, value_name = "FILE")]
        ruleset: Option<PathBuf>,
        /// The project backlog (`project_issue_backlog.json`; default: empty).
        #[arg(long, value_name = "FILE")]
        backlog: Option<PathBuf>,
        /// Print the strategy JSON (`project_implementation_strategy_vN.json`).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: DocLimits,
    },
}

#[derive(Debug, Subcommand)]
enum PlanCommand {
    /// Cut a plan into plans of at most its `max_phases` phases, along tier boundaries.
    #[command(
        after_help = "Writes DIR/plan_{NN}_{run_id}.json, one per part, and prints their paths.\n\nExample:\n  autopack plan split --plan big-plan.json --out plans/"
    )]
    Split {
        /// The plan (JSON).
        #[arg(long, value_name = "PLAN.json")]
        plan: PathBuf,
        /// Where the parts are written (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Largest plan file read, in bytes (1 to 1 GiB).
        #[arg(long, value_name = "BYTES", default_value_t = autopack::core::limits::MAX_PLAN_BYTES,
              allow_negative_numbers = true, value_parser = RangedU64ValueParser::<u64>::new().range(1..=runner::MAX_BYTES_LIMIT))]
        max_plan_bytes: u64,
    },
}

#[derive(Debug, Args)]
struct PromoteArgs {
    #[command(subcommand)]
    check: Option<PromoteCheck>,
    /// The run to promote.
    #[arg(required = true)]
    run_id: Option<String>,
    /// The repository.
    #[arg(long, value_name = "DIR", default_value = ".")]
    repo: PathBuf,
    #[command(flatten)]
    store: StoreArg,
    /// The branch to move.
    #[arg(long, value_name = "BRANCH", default_value = "main")]
    target: String,
    /// Create a merge commit instead of fast-forwarding.
    #[arg(long)]
    merge: bool,
    /// Allow moving the branch HEAD points to (the work tree and index then lag behind).
    #[arg(long)]
    allow_checked_out: bool,
    /// Promote only a run that verifies (`autopack verify`): its attestation present and
    /// matching the journal and the branch.
    #[arg(long)]
    require_attestation: bool,
    /// With --require-attestation: the signed attestation must verify with this Ed25519
    /// public key (SPKI PEM).
    #[arg(long, value_name = "FILE", requires = "require_attestation")]
    attestation_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum PromoteCheck {
    /// Exit 0 when the run is eligible for promotion, 1 with every reason when not.
    #[command(after_help = "Example (CI):\n  autopack promote check my-run --repo . || exit 1")]
    Check {
        /// The run.
        run_id: String,
        /// The repository.
        #[arg(long, value_name = "DIR", default_value = ".")]
        repo: PathBuf,
        #[command(flatten)]
        store: StoreArg,
        /// Print JSON: {"run_id", "eligible", "reasons"}.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(err) => {
            tell!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(err) => {
            tell!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// The command line, with the settings of its configuration file where it gives none.
fn parse() -> Result<Cli> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let command = Cli::command();
    let matches = command.clone().get_matches_from(&args);
    let Some((name, sub)) = matches.subcommand() else {
        return Ok(Cli::from_arg_matches(&matches)?);
    };
    let explicit = matches.get_one::<PathBuf>("config");
    let repo = sub.try_get_one::<PathBuf>("repo").ok().flatten();
    let file =
        autopack_cli::config::locate(explicit.map(PathBuf::as_path), repo.map(PathBuf::as_path));
    let args = match &file {
        Some(path) if autopack_cli::config::CONFIGURED.contains(&name) => {
            autopack_cli::config::with_file_settings(&command, name, sub, args, path)?
        }
        _ => args,
    };
    let matches = command.get_matches_from(&args);
    Ok(Cli::from_arg_matches(&matches)?)
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run(args) => cmd_run(*args),
        Command::Serve(args) => serve::cmd_serve(*args),
        Command::Resume {
            run_id,
            repo,
            store,
            output,
        } => cmd_resume(&run_id, &repo, store.open()?, output),
        Command::Export {
            run_id,
            repo,
            store,
        } => cmd_export(&run_id, &repo, &store.open()?),
        Command::Strategy(StrategyCommand::DryRun {
            plan,
            ruleset,
            backlog,
            json,
            limits,
        }) => cmd_dry_run(&plan, ruleset.as_deref(), backlog.as_deref(), json, limits),
        Command::Patch(PatchCommand::Check(args)) => cmd_patch_check(&args),
        Command::Plan(PlanCommand::Split {
            plan,
            out,
            max_plan_bytes,
        }) => cmd_split(&plan, &out, max_plan_bytes),
        Command::Report(report) => cmd_report(report),
        Command::Promote(args) => match args.check {
            Some(PromoteCheck::Check {
                run_id,
                repo,
                store,
                json,
            }) => cmd_promote_check(&run_id, &repo, &store.open()?, json),
            None => cmd_promote(&args),
        },
        Command::Verify {
            run_id,
            repo,
            store,
            key,
            json,
        } => cmd_verify(&run_id, &repo, &store.open()?, key.as_deref(), json),
        Command::Attest {
            run_id,
            repo,
            store,
            key,
        } => cmd_attest(&run_id, &repo, &store.open()?, key.as_deref()),
        Command::Replay {
            run_id,
            all,
            repo,
            store,
            ruleset,
            json,
            limits,
        } => {
            let ruleset = read_ruleset(&ruleset, limits.max_ruleset_bytes)?;
            cmd_replay(
                run_id.as_deref(),
                all,
                &repo,
                &store.open()?,
                &ruleset,
                json,
            )
        }
        Command::Schema { name, out } => cmd_schema(name.as_deref(), out.as_deref()),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "autopack", &mut script);
            out(&String::from_utf8_lossy(&script));
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .context("rendering the manual page")?;
            out(&String::from_utf8_lossy(&page));
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { repo, store, json } => cmd_validate(&repo, &store.open()?, json),
        Command::Repair {
            repo,
            project,
            truncate_corrupt_journal,
        } => cmd_repair(&repo, project.as_deref(), truncate_corrupt_journal),
    }
}

fn cmd_repair(repo: &Path, project: Option<&str>, truncate: bool) -> Result<ExitCode> {
    let root = runner::runs_root(repo);
    let projects = autopack::layout::FsRulesetStore::new(root.clone()).projects()?;
    let project = match project {
        Some(id) => ProjectId::new(id)?,
        None => runner::only_project(&root, &Stores::Files, "--project")?,
    };
    let files = autopack::layout::project::ledger_files(&root, &project, &projects)?;
    let options = autopack::layout::issues::RepairOptions {
        truncate_corrupt_journal: truncate,
        now: chrono::Utc::now(),
    };
    let report = autopack::layout::issues::repair_files(&root, &files, &options)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| {
            format!(
                "repairing the issue ledger of project {project} (run again with --truncate-corrupt-journal to cut a journal corrupt in the middle)"
            )
        })?;
    for note in &report.notes {
        say!("rebuilt {}: {}", note.path.display(), note.problem);
    }
    if let Some(cut) = &report.journal_cut {
        say!(
            "cut {} at line {} ({} bytes kept in {})",
            files.journal.display(),
            cut.line,
            cut.bytes,
            cut.backup.display()
        );
    }
    say!(
        "project {project}: {} issue view(s) written from {}",
        report.views,
        files.journal.display()
    );
    Ok(ExitCode::SUCCESS)
}

// ----- helpers -----

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot be read", path.display()))
}

/// Reads at most `limit` bytes of `path` (one more, to tell that it is longer): a file
/// over the limit is refused naming the file, the limit and `flag`, without being read
/// whole.
fn read_limited(path: &Path, limit: u64, what: &str, flag: &str) -> Result<String> {
    use std::io::Read as _;
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot be read", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: cannot be read", path.display()))?;
    let read = autopack::core::limits::len_u64(&bytes);
    if read > limit {
        // The file's own size when it has one (a pipe or device has none).
        let known = std::fs::metadata(path)
            .ok()
            .filter(|m| m.is_file() && m.len() >= read)
            .map(|m| m.len());
        let err = autopack::core::limits::TooLarge {
            source_name: path.display().to_string(),
            what: what.to_owned(),
            size: known.unwrap_or(read),
            at_least: known.is_none(),
            limit,
        };
        return Err(too_large(&err, flag));
    }
    String::from_utf8(bytes).map_err(|e| anyhow!("{}: not valid UTF-8: {e}", path.display()))
}

/// A document over its limit, with the flag that raises it.
fn too_large(err: &autopack::core::limits::TooLarge, flag: &str) -> anyhow::Error {
    anyhow!(
        "{err}; raise the limit with {flag} BYTES (at most {})",
        runner::MAX_BYTES_LIMIT
    )
}

fn read_plan(path: &Path, limit: u64) -> Result<Plan> {
    let text = read_limited(path, limit, "plan", "--max-plan-bytes")?;
    parse_plan(&text, path, limit)
}

fn parse_plan(text: &str, path: &Path, limit: u64) -> Result<Plan> {
    Plan::from_json_limited(text, &path.display().to_string(), limit).map_err(|e| match e {
        autopack::core::plan::PlanError::TooLarge(t) => too_large(&t, "--max-plan-bytes"),
        e => anyhow!("{e}"),
    })
}

/// The plan of a run: its `run.run_id` replaced by `run_id` when given, and, when the plan
/// names none and none is given, a new one (`run-{UTC time}`), said on stderr.
fn read_run_plan(path: &Path, limit: u64, run_id_flag: Option<&str>) -> Result<Plan> {
    let text = read_limited(path, limit, "plan", "--max-plan-bytes")?;
    let mut value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        // Not JSON: the plan reader names what is wrong, and where.
        Err(_) => return parse_plan(&text, path, limit),
    };
    let id = match run_id_flag {
        Some(id) => Some((run_id(id).context("--run-id")?.to_string(), false)),
        None => match value.pointer("/run/run_id") {
            Some(_) => None,
            None => Some((
                format!("run-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")),
                true,
            )),
        },
    };
    // The text as written unless the id changes, so that errors point into the file.
    let text = match (id, value.get_mut("run").and_then(|r| r.as_object_mut())) {
        (Some((id, generated)), Some(run)) => {
            if generated {
                tell!("the plan names no run_id: this run is {id}");
            }
            run.insert("run_id".to_owned(), serde_json::Value::String(id));
            serde_json::to_string(&value).context("re-serialising the plan")?
        }
        _ => text,
    };
    parse_plan(&text, path, limit)
}

fn read_ruleset(path: &Path, limit: u64) -> Result<Ruleset> {
    let text = read_limited(path, limit, "ruleset", "--max-ruleset-bytes")?;
    Ruleset::from_json_limited(&text, &path.display().to_string(), limit).map_err(|e| match e {
        autopack::strategy::RulesetError::TooLarge(t) => too_large(&t, "--max-ruleset-bytes"),
        e => anyhow!("{e}"),
    })
}

/// The `autopack run` flag of a `run_config.json` field.
fn flag_of(field: &str) -> &'static str {
    match field {
        "agent_timeout_secs" => "agent-timeout",
        "max_output_bytes" => "max-output",
        "ci_timeout_secs" => "ci-timeout",
        "ci_backoff_millis" => "ci-backoff",
        "max_patch_bytes" => "max-patch-bytes",
        _ => "(unknown)",
    }
}

fn run_id(text: &str) -> Result<RunId> {
    RunId::new(text).map_err(|e| anyhow!("run id {text:?} is invalid: {e}"))
}

/// Writes to stdout; a closed pipe (`autopack report runs | head`) is not an error.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("serialising the output")?;
    text.push('\n');
    out(&text);
    Ok(())
}

// ----- strategy / plan -----

fn cmd_dry_run(
    plan: &Path,
    ruleset: Option<&Path>,
    backlog: Option<&Path>,
    json: bool,
    limits: DocLimits,
) -> Result<ExitCode> {
    let plan = read_plan(plan, limits.max_plan_bytes)?;
    let ruleset = ruleset
        .map(|path| read_ruleset(path, limits.max_ruleset_bytes))
        .transpose()?;
    let backlog = match backlog {
        Some(path) => Some(
            BacklogView::from_project_backlog_json(&read(path)?, &path.display().to_string())
                .map_err(|e| anyhow!("{e}"))?,
        ),
        None => None,
    };
    let strategy = autopack::strategy::dry_run(&plan, ruleset.as_ref(), backlog.as_ref())
        .with_context(|| format!("compiling the strategy of run {}", plan.run.run_id))?;
    if json {
        out(&strategy.to_json());
    } else {
        out(&strategy.render_text());
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_split(plan_path: &Path, out: &Path, max_plan_bytes: u64) -> Result<ExitCode> {
    let text = read_limited(plan_path, max_plan_bytes, "plan", "--max-plan-bytes")?;
    let plan: Plan = autopack::core::json::from_str(&text, plan_path.display().to_string())
        .map_err(|e| anyhow!("{e}"))?;
    let parts = plan
        .split()
        .with_context(|| format!("{}: cannot be split", plan_path.display()))?;
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: cannot be created", out.display()))?;
    for (i, part) in parts.iter().enumerate() {
        let path = out.join(format!("plan_{:02}_{}.json", i + 1, part.run.run_id));
        let mut text = serde_json::to_string_pretty(part).context("serialising a plan")?;
        text.push('\n');
        std::fs::write(&path, text)
            .with_context(|| format!("{}: cannot be written", path.display()))?;
        say!(
            "{}  ({} phases, {} tiers)",
            path.display(),
            part.phases.len(),
            part.tiers.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

// ----- promotion -----

fn cmd_promote_check(id: &str, repo: &Path, stores: &Stores, json: bool) -> Result<ExitCode> {
    let run = run_id(id)?;
    let record = runner::load_record(repo, stores, &run)?;
    let reasons: Vec<String> = match autopack::promotion::eligibility(&record) {
        Ok(()) => Vec::new(),
        Err(refusals) => refusals.iter().map(ToString::to_string).collect(),
    };
    if json {
        print_json(&serde_json::json!({
            "run_id": run,
            "eligible": reasons.is_empty(),
            "reasons": reasons,
        }))?;
    } else if reasons.is_empty() {
        say!("run {run} ({}) is eligible for promotion", record.state);
    } else {
        say!(
            "run {run} ({}) is not eligible for promotion:",
            record.state
        );
        for reason in &reasons {
            say!("  - {reason}");
        }
    }
    Ok(if reasons.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cmd_verify(
    id: &str,
    repo: &Path,
    stores: &Stores,
    key: Option<&Path>,
    json: bool,
) -> Result<ExitCode> {
    let run = run_id(id)?;
    let key = key
        .map(autopack::attest::VerifyingKey::from_pem_file)
        .transpose()?;
    let verification = runner::verify_run(repo, stores, &run, key.as_ref())?;
    if json {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&verification)?
        ));
    } else {
        out(&verification.render_text());
    }
    Ok(if verification.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cmd_replay(
    run: Option<&str>,
    all: bool,
    repo: &Path,
    stores: &Stores,
    ruleset: &Ruleset,
    json: bool,
) -> Result<ExitCode> {
    match run {
        Some(id) if !all => {
            let what_if = runner::what_if_run(repo, stores, &run_id(id)?, ruleset)?;
            if json {
                out(&format!("{}\n", serde_json::to_string_pretty(&what_if)?));
            } else {
                out(&format!("{}\n", what_if.render_text().trim_end()));
            }
        }
        _ => {
            let (runs, summary) = runner::what_if_all(repo, stores, ruleset)?;
            if json {
                let runs: Vec<_> = runs
                    .iter()
                    .map(|(run, w)| serde_json::json!({"run_id": run, "what_if": w}))
                    .collect();
                let doc = serde_json::json!({"summary": summary, "runs": runs});
                out(&format!("{}\n", serde_json::to_string_pretty(&doc)?));
            } else {
                out(&format!("{}\n", summary.render_text().trim_end()));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_attest(id: &str, repo: &Path, stores: &Stores, key: Option<&Path>) -> Result<ExitCode> {
    let run = run_id(id)?;
    let key = key
        .map(autopack::attest::SigningKey::from_pem_file)
        .transpose()?;
    let (_, written) = runner::attest_run(repo, stores, &run, key.as_ref())?;
    for path in written {
        say!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_promote(args: &PromoteArgs) -> Result<ExitCode> {
    let id = args.run_id.as_deref().context("promote needs a RUN_ID")?;
    let run = run_id(id)?;
    if args.require_attestation {
        let key = args
            .attestation_key
            .as_deref()
            .map(autopack::attest::VerifyingKey::from_pem_file)
            .transpose()?;
        let verification = runner::verify_run(&args.repo, &args.store.open()?, &run, key.as_ref())?;
        if !verification.is_ok() {
            tell!("{}", verification.render_text().trim_end());
            tell!("run {run} is not promoted: it does not verify (--require-attestation)");
            return Ok(ExitCode::from(1));
        }
    }
    let record = runner::load_record(&args.repo, &args.store.open()?, &run)?;
    let promotion_record = autopack::promotion::promotion_record(&record);
    let signature = CommitSignature {
        name: "autopack".into(),
        email: "autopack@example.invalid".into(),
        seconds: chrono::Utc::now().timestamp(),
        offset_minutes: 0,
    };
    let mode = if args.merge {
        PromoteMode::MergeCommit
    } else {
        PromoteMode::FastForward
    };
    let opts = PromoteOptions {
        allow_checked_out: args.allow_checked_out,
    };
    match autopack::apply::promote(
        &args.repo,
        &run,
        &args.target,
        mode,
        &promotion_record,
        &signature,
        &opts,
    ) {
        Ok(p) if p.unchanged() => {
            say!(
                "run {run} is already in {} (at {}); nothing to do",
                p.target_ref,
                p.old_tip
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(p) => {
            say!(
                "promoted run {run}: {} {} → {}{}",
                p.target_ref,
                p.old_tip,
                p.new_tip,
                if p.merge_commit {
                    " (merge commit)"
                } else {
                    " (fast-forward)"
                }
            );
            if p.checked_out {
                // The ref moved under the work tree, as after a push to a checked-out
                // branch: git's own push-to-checkout does this two-tree read.
                tell!(
                    "note: {} is checked out here: the index and work tree still hold {} and show the promotion reversed; bring them up to the new tip (local edits that do not conflict are kept) with:\n  git -C {} read-tree -m -u {} {}",
                    p.target_ref,
                    p.old_tip,
                    args.repo.display(),
                    p.old_tip,
                    p.new_tip
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(autopack::apply::PromoteError::NotEligible { refusals, .. }) => {
            tell!("error: run {run} is not eligible for promotion:");
            for r in refusals {
                tell!("  - {r}");
            }
            Ok(ExitCode::from(1))
        }
        Err(e) => bail!("promoting run {run} to {}: {e}", args.target),
    }
}

// ----- schema / validate -----

fn all_schemas() -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (name, schema) in autopack::core::schema::core_schemas() {
        let mut text = serde_json::to_string_pretty(&schema).context("serialising a schema")?;
        text.push('\n');
        out.push((name.to_owned(), text));
    }
    out.push(("ruleset".into(), autopack::strategy::ruleset_schema()));
    out.push(("strategy".into(), autopack::strategy::strategy_schema()));
    Ok(out)
}

fn cmd_schema(name: Option<&str>, out_dir: Option<&Path>) -> Result<ExitCode> {
    let schemas = all_schemas()?;
    let chosen: Vec<&(String, String)> = match name {
        Some(name) => {
            let found: Vec<_> = schemas.iter().filter(|(n, _)| n == name).collect();
            if found.is_empty() {
                let names: Vec<&str> = schemas.iter().map(|(n, _)| n.as_str()).collect();
                bail!("unknown schema {name:?}; known: {}", names.join(", "));
            }
            found
        }
        None => schemas.iter().collect(),
    };
    match out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot be created", dir.display()))?;
            for (n, text) in chosen {
                let path = dir.join(format!("{n}.schema.json"));
                std::fs::write(&path, text)
                    .with_context(|| format!("{}: cannot be written", path.display()))?;
                say!("{}", path.display());
            }
        }
        None if name.is_none() => {
            for (n, _) in chosen {
                say!("{n}");
            }
        }
        None => {
            for (_, text) in chosen {
                out(text);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_validate(repo: &Path, stores: &Stores, json: bool) -> Result<ExitCode> {
    if !repo.exists() {
        bail!("{}: no such directory", repo.display());
    }
    let root = validate::find_root(repo);
    let mut v = validate::validate_tree(&root);
    if let Stores::Postgres(_) = stores {
        v.problems
            .extend(validate::validate_store_journals(&root, stores)?);
    }
    if json {
        print_json(&v)?;
    } else {
        for p in &v.problems {
            tell!("{}: {}", p.file.display(), p.message);
        }
        say!(
            "{}: {} file(s) checked, {} not known (skipped), {} problem(s)",
            root.display(),
            v.checked.len(),
            v.unchecked.len(),
            v.problems.len()
        );
    }
    Ok(if v.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
