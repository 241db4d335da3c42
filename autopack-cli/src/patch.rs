//! `autopack patch check`: one patch through the gate a run uses, writing nothing.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use autopack::runner;
use clap::builder::RangedU64ValueParser;
use clap::{Args, Subcommand};

use super::{out, read_limited, read_ruleset};

#[derive(Debug, Subcommand)]
pub(crate) enum PatchCommand {
    /// Run one patch through exactly the gate a run's patches go through (the same code),
    /// writing nothing to the repository.
    #[command(
        after_help = "The patch is checked on --base (default HEAD) with the limits of --mode, the scope globs, the ruleset's patch_policy (protected paths, symlinks, path lengths, builder-mode limits; default: the built-in policy) and, protected too, the test runner scripts the --test-cmd commands name. A patch that would need an Auditor approve in a run (a protected path whose rule says auditor_approve, a test-integrity finding) is accepted and its holds are listed.\n\nExit 0 accepted, 1 refused (the rule and the path printed), 2 an error.\n\nExamples:\n  autopack patch check --repo . --patch change.diff\n  git diff main | autopack patch check --repo . --patch - --mode tweak_light --scope 'src/**' --json\n  autopack patch check --repo . --patch agent.diff --ruleset .autonomous_runs/project_ruleset_web.json --test-cmd 'sh run_tests.sh'"
    )]
    Check(Box<PatchCheckArgs>),
}

#[derive(Debug, Args)]
pub(crate) struct PatchCheckArgs {
    /// The repository.
    #[arg(long, value_name = "DIR", default_value = ".")]
    repo: PathBuf,
    /// The git-format diff (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    patch: PathBuf,
    /// The revision the patch applies to.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    base: String,
    /// A glob every touched path must match (repeatable; default: anywhere).
    #[arg(long, value_name = "GLOB")]
    scope: Vec<String>,
    /// The builder mode whose limits apply (tweak_light, scaffolding_heavy, refactor_heavy,
    /// schema_heavy, or another label).
    #[arg(long, value_name = "MODE", default_value = "scaffolding_heavy")]
    mode: String,
    /// The ruleset whose patch_policy applies (default: the built-in policy).
    #[arg(long, value_name = "FILE")]
    ruleset: Option<PathBuf>,
    /// A CI command of the run (repeatable): the test runner scripts it names are
    /// protected, as in a run.
    #[arg(long, value_name = "CMD")]
    test_cmd: Vec<String>,
    /// Largest patch read, in bytes (1 to 1 GiB); the mode's limit applies below it.
    #[arg(long, value_name = "BYTES", default_value_t = autopack::apply::MAX_PATCH_BYTES,
          allow_negative_numbers = true, value_parser = RangedU64ValueParser::<u64>::new().range(1..=runner::MAX_BYTES_LIMIT))]
    max_patch_bytes: u64,
    /// Largest ruleset file read, in bytes (1 to 1 GiB).
    #[arg(long, value_name = "BYTES", default_value_t = autopack::strategy::MAX_RULESET_BYTES,
          allow_negative_numbers = true, value_parser = RangedU64ValueParser::<u64>::new().range(1..=runner::MAX_BYTES_LIMIT))]
    max_ruleset_bytes: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn cmd_patch_check(args: &PatchCheckArgs) -> Result<ExitCode> {
    let patch = if args.patch.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::io::stdin(), args.max_patch_bytes.saturating_add(1)),
            &mut bytes,
        )
        .context("reading the patch from standard input")?;
        bytes
    } else {
        read_limited(
            &args.patch,
            args.max_patch_bytes,
            "patch",
            "--max-patch-bytes",
        )?
        .into_bytes()
    };
    let settings = match &args.ruleset {
        Some(path) => read_ruleset(path, args.max_ruleset_bytes)?
            .patch_policy
            .settings(),
        None => autopack::strategy::PatchPolicySettings::default(),
    };
    let mode = autopack::core::vocabulary::BuilderMode::parse(&args.mode)
        .map_err(|e| anyhow!("--mode: {e}"))?;
    let mut gate = autopack::host::PatchGate::new(&mode, &settings)
        .with_scope(args.scope.clone())
        .with_ci_commands(args.test_cmd.clone());
    gate.max_patch_bytes = args.max_patch_bytes;
    let verdict = autopack::host::check_patch(&args.repo, &args.base, &patch, &gate)?;
    if args.json {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&verdict).context("serialising the verdict")?
        ));
    } else {
        match &verdict {
            autopack::host::PatchVerdict::Accepted {
                files,
                insertions,
                deletions,
                holds,
            } => {
                say!(
                    "accepted: {} file(s), +{insertions} -{deletions} (mode {mode})",
                    files.len()
                );
                for hold in holds {
                    say!("  needs an Auditor approve in a run: {hold}");
                }
            }
            autopack::host::PatchVerdict::Refused(refusal) => {
                say!("refused: {}", refusal.message);
            }
        }
    }
    Ok(match verdict {
        autopack::host::PatchVerdict::Accepted { .. } => ExitCode::SUCCESS,
        autopack::host::PatchVerdict::Refused(_) => ExitCode::from(1),
    })
}
