//! `autopack serve`: the HTTP service over the repository.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use autopack::runner::NetworkRule;
use autopack_server::auth::{TOKENS_ENV, Tokens};
use autopack_server::repository::RepositoryHost;
use autopack_server::{Server, ServerConfig};
use clap::Args;

use super::flag_of;
use super::run::{AgentSettings, RunSettings};

pub(crate) const SERVE_HELP: &str = "Serves the first implementation's HTTP API (its 19 endpoints: POST /runs/start, GET /runs/{run_id}, …/builder_result, …/auditor_request, …/auditor_result, …/record_issue, …/update_status, the issue, metrics and report endpoints, /docs) over the repository DIR, plus pull-model workers (POST /workers/lease, then POST /workers/attempts/{attempt_id}/result with the lease token), GET /runs/{run_id}/events (Server-Sent Events), POST /runs/{run_id}/abort and /promote, and /openapi.json. Every run is driven by the Supervisor exactly as `autopack run` drives it — the same ruleset, strategy, integration branch, lease, gate and sandboxed CI (--test-cmd) — but its Builder and Auditor attempts are answered over HTTP. A result is answered once the Supervisor has processed it (gate, CI, snapshot).\n\nSecurity: without tokens the server listens on loopback only and serves loopback clients as operators (the first implementation's clients send no header). With tokens (--tokens FILE: {\"tokens\": [{\"role\": \"builder\", \"name\": \"w1\", \"token\": \"…\"}]}, or AUTOPACK_SERVER_TOKENS=role:name:token,…; roles builder, auditor, operator, viewer; at least 16 characters) every request but /, /health, /openapi.json and /docs needs Authorization: Bearer TOKEN; a Builder or Auditor token answers only the attempts it leased; starting, aborting and promoting need operator.\n\nUnfinished runs of the store are resumed when the server starts (--no-resume: not). Stop with Ctrl-C: runs stay resumable.\n\nExamples:\n  autopack serve --repo . --test-cmd 'sh run_tests.sh'\n  AUTOPACK_SERVER_TOKENS=operator:ops:$(openssl rand -hex 16),builder:w1:$(openssl rand -hex 16) autopack serve --repo . --listen 0.0.0.0:8000 --test-cmd 'cargo test --offline'";

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on (a non-loopback address needs tokens).
    #[arg(long, value_name = "ADDR", default_value = autopack_server::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Bearer tokens with roles (JSON); else AUTOPACK_SERVER_TOKENS; none: loopback only.
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Seconds a worker's lease on an attempt lasts unless it asks otherwise (1 to 21600).
    #[arg(long, value_name = "SECS", default_value_t = 900,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..=21_600))]
    lease_secs: u64,
    /// Do not resume the store's unfinished runs at start.
    #[arg(long)]
    no_resume: bool,
    #[command(flatten)]
    settings: RunSettings,
}

fn tokens(args: &ServeArgs) -> Result<Tokens> {
    if let Some(path) = &args.tokens {
        return Ok(Tokens::from_file(path)?);
    }
    match std::env::var(TOKENS_ENV) {
        Ok(value) => Ok(Tokens::from_env_value(&value)?),
        Err(_) => Ok(Tokens::default()),
    }
}

pub(crate) fn cmd_serve(args: ServeArgs) -> Result<ExitCode> {
    let settings = &args.settings;
    let repo = settings.repo()?;
    let stores = settings.store.open()?;
    let config = settings.config(AgentSettings {
        builder: None,
        builder_cmd: None,
        auditor: None,
        auditor_cmd: None,
        timeout_secs: 900,
        max_output: autopack::host::DEFAULT_MAX_OUTPUT,
        network: NetworkRule::Deny,
    })?;
    config
        .validate()
        .map_err(|e| anyhow!("{e} (the flag --{})", flag_of(e.field)))?;
    let tokens = tokens(&args)?;
    let protected = !tokens.is_empty();
    let host = RepositoryHost::new(&repo, stores, settings.ruleset()?, config)?;
    let server = Server::new(
        Arc::new(host),
        ServerConfig {
            tokens,
            lease_ttl: Duration::from_secs(args.lease_secs),
            ..ServerConfig::default()
        },
    );
    server.check_listen(args.listen)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the server's runtime")?;
    // The host's PostgreSQL client blocks on a runtime of its own: the last handle on the
    // host must be dropped outside this one.
    let host_handle = server.clone();
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        if !args.no_resume {
            let resumed = server
                .resume_unfinished()
                .await
                .map_err(|e| anyhow!("listing the store's runs: {e}"))?;
            for (run_id, result) in resumed {
                match result {
                    Ok(()) => tell!("resumed run {run_id}"),
                    Err(e) => tell!("warning: run {run_id} not resumed: {e}"),
                }
            }
        }
        tell!(
            "repository {}; {}; API documentation at http://{addr}/docs",
            repo.display(),
            if protected {
                "bearer tokens required"
            } else {
                "no tokens: loopback clients only"
            }
        );
        say!("listening on http://{addr}");
        server
            .serve(listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        tell!("stopped; unfinished runs resume at the next `autopack serve`");
        Ok(ExitCode::SUCCESS)
    });
    drop(runtime);
    drop(host_handle);
    result
}
