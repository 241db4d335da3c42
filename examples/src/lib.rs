//! # autopack-examples
//!
//! How a host wires the Autopack crates together, in two binaries and the library they
//! share:
//!
//! - `example-run` (`cargo run --release -p autopack-examples --bin example-run [-- --dir
//!   DIR]`): a real supervised run with nothing else installed. It creates a small sample
//!   project as a git repository ([`sample`]), compiles the strategy of a three-tier,
//!   eight-phase plan ([`plan`]), drives a scripted Builder that edits files in its private
//!   workspace and a scripted Auditor ([`agents`]), runs the sample's own tests through the
//!   preflight gate, sandboxed, in the run's CI workspace, prints progress ([`progress`])
//!   and ends with the reports and
//!   where the artefacts are ([`example`]).
//! - `autopack`: the command-line tool for hosts and CI pipelines (`run`, `resume`,
//!   `strategy dry-run`, `plan split`, `report`, `promote`, `schema`, `validate`), with
//!   external-command agents ([`autopack::host::CommandAgent`]).
//!
//! The wiring both use is in [`host`]: ruleset and strategy before the run, the
//! integration branch, the CI gate, `.autonomous_runs/` artefacts and the journal, then
//! [`autopack::driver::Driver`]. [`validate`] checks a `.autonomous_runs/` tree.
//!
//! Choices made here:
//! - Artefacts live in `{repo}/.autonomous_runs/`; the sample repository lists that folder
//!   in `.git/info/exclude` so it never shows as a change. `autopack run` leaves a user's
//!   repository's ignore files alone: add `.autonomous_runs/` to them yourself.
//! - `autopack run` stores the host's settings (commands, timeouts, base branch, commit
//!   time) in `{run_id}/run_config.json` ([`host::RunConfig`]) so `autopack resume`
//!   rebuilds the same host.
//! - This crate links `git2` directly only to create the sample repository and to list
//!   commits and tags for the summary; every write of the run goes through
//!   `autopack-apply`.

pub mod agents;
pub mod diff;
pub mod example;
pub mod host;
pub mod plan;
pub mod progress;
pub mod sample;
pub mod serve;
pub mod stores;
pub mod validate;
