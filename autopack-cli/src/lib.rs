//! # autopack-cli
//!
//! The `autopack` command line (`cargo install autopack-cli`): supervised runs of
//! code-writing agents in a git repository (`run`, `resume`, `export`), the HTTP service
//! (`serve`), reports (`report runs|tiers|backlog|budget|html`), promotion, patch checks,
//! plan and strategy tools, schemas, `validate`, shell completions and a man page.
//! `autopack --help` and `autopack SUBCOMMAND --help` explain each with an example.
//!
//! The binary is a thin layer over the library: every run goes through
//! [`autopack::runner::Runner`], which an embedder calls the same way. This library part
//! holds what the binary and the example run share:
//!
//! - [`progress`]: progress lines, a progress bar and the `--events` JSON Lines stream, as
//!   an [`autopack::driver::Observer`];
//! - [`validate`]: checks of a `.autonomous_runs/` tree (ours and the first
//!   implementation's) against the JSON Schemas;
//! - [`config`]: the `autopack.toml` configuration file and its precedence below flags.
//!
//! ```
//! use autopack_cli::validate::validate_tree;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let found = validate_tree(dir.path());
//! assert!(found.problems.is_empty());
//! ```

pub mod config;
pub mod progress;
pub mod validate;
