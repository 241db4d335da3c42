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
//! use autopack_cli::config::{CONFIG_FILE, locate};
//!
//! // A repository's `autopack.toml` is found beside its `.git/`; `--config` names another.
//! let repo = tempfile::tempdir().unwrap();
//! assert_eq!(locate(None, Some(repo.path())), None);
//! std::fs::write(repo.path().join(CONFIG_FILE), "test-cmd = \"cargo test\"\n").unwrap();
//! assert_eq!(locate(None, Some(repo.path())), Some(repo.path().join(CONFIG_FILE)));
//! ```

pub mod config;
pub mod progress;
pub mod validate;
