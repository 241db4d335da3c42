//! `example-run`: a real supervised run of scripted agents on a sample project.
//!
//! ```text
//! cargo run --release -p autopack-examples --bin example-run [-- --dir DIR] [--run-id ID]
//! ```
//!
//! Creates the sample project as a git repository (in a temporary directory that is kept,
//! or in DIR), runs the example plan and prints the reports and where the artefacts are.
//! Exits 0 when the run ends as scripted (`DONE_SUCCESS`, `main` untouched, every artefact
//! written), 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use autopack_examples::example::{ExampleOptions, check, fresh_run_id, print_summary, run_example};
use clap::Parser;

/// A real supervised run of scripted Builder and Auditor agents on a sample project.
#[derive(Debug, Parser)]
#[command(
    name = "example-run",
    version,
    after_help = "Example:\n  cargo run --release -p autopack-examples --bin example-run -- --dir /tmp/greeter\n\nRun it again with the same --dir to see the project backlog age across runs."
)]
struct Args {
    /// Where the sample repository is created (missing or empty), or reused (an earlier
    /// sample). Default: a new temporary directory, kept after the run.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The run id (default: example-YYYYMMDD-HHMMSS).
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
    /// Run CI unconfined, where the kernel has no Landlock (the run refuses to start
    /// without a sandbox otherwise).
    #[arg(long)]
    no_sandbox: bool,
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let args = Args::parse();
    let dir = match args.dir {
        Some(dir) => dir,
        None => tempfile::Builder::new()
            .prefix("autopack-example-")
            .tempdir()
            .context("creating a temporary directory")?
            .keep()
            .join("greeter"),
    };
    let opts = ExampleOptions {
        dir,
        run_id: args.run_id.unwrap_or_else(fresh_run_id),
        print: true,
        no_sandbox: args.no_sandbox,
    };
    let report = run_example(&opts)?;
    print_summary(&report);
    match check(&report) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            eprintln!("error: {err:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}
