//! # autopack-examples
//!
//! The example run (`cargo run --release -p autopack-examples --bin example-run [-- --dir
//! DIR]`): a real supervised run with nothing else installed. It creates a small sample
//! project as a git repository ([`sample`]), compiles the strategy of a three-tier,
//! eight-phase plan ([`plan`]), drives a scripted Builder that edits files in its private
//! workspace and a scripted Auditor ([`agents`]) through the library's
//! [`autopack::runner::Runner`] — the same host the `autopack` command line uses — runs the
//! sample's own tests through the preflight gate, sandboxed, in the run's CI workspace,
//! prints progress (`autopack_cli::progress`) and ends with the reports and where the
//! artefacts are ([`example`]).
//!
//! Choices made here:
//! - Artefacts live in `{repo}/.autonomous_runs/`; the sample repository lists that folder
//!   in `.git/info/exclude` so it never shows as a change.
//! - This crate links `git2` directly only to create the sample repository and to list
//!   commits and tags for the summary; every write of the run goes through
//!   `autopack-apply`.
//! - The sample helpers are also what the `autopack-cli` tests build their repositories
//!   with.

pub mod agents;
pub mod diff;
pub mod example;
pub mod plan;
pub mod sample;
