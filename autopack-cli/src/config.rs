//! `autopack.toml`: the settings a repository's runs share, so that `autopack run` needs
//! no long command line. Its keys are the long flags of `autopack run` and `autopack
//! serve` (without `--`), its values strings, integers, booleans (a flag without value)
//! or arrays (a repeatable flag):
//!
//! ```toml
//! # autopack.toml, beside .git/
//! builder = "codex"
//! pass-env = ["OPENAI_API_KEY"]
//! test-cmd = "cargo test --offline"
//! junit = ["target/nextest/ci/junit.xml"]
//! ci-timeout = 3600
//! store = "postgres://autopack@db.internal/autopack"
//! ```
//!
//! The file is `--config FILE`, else `{--repo}/autopack.toml` when it exists. Precedence:
//! a flag on the command line, then its environment variable (`AUTOPACK_STORE`), then the
//! file, then the flag's default; for a repeatable flag, values given on the command line
//! replace the file's. Every value goes through the flag's own parser, so its ranges and
//! errors are the flag's, named with the file. A key that is no flag of either command,
//! or one a file must not set (`repo`, `plan`, `run-id`, `config`), is an error naming
//! the file and the key; a key of the other command (`builder` for `serve`) is ignored.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;

/// The file name looked for in the repository.
pub const CONFIG_FILE: &str = "autopack.toml";

/// The subcommands the file configures.
pub const CONFIGURED: [&str; 2] = ["run", "serve"];

/// Flags a file must not set: they say which repository, plan, run or file this is.
const NOT_IN_FILE: [&str; 4] = ["repo", "plan", "run-id", "config"];

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or not a table of flags.
    #[error("{}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A key that is no flag of `run` or `serve`, or one a file must not set.
    #[error("{}: key `{key}`: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value the flag's parser refuses.
    #[error("{}: key `{key}`: {message}", path.display())]
    Value {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The flag parser's message.
        message: String,
    },
}

/// The configuration file of a command line: `--config FILE`, else
/// `{repo}/autopack.toml` when it exists (`repo` is the command's `--repo`).
pub fn locate(explicit: Option<&Path>, repo: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_owned()),
        None => {
            let candidate = repo.unwrap_or(Path::new(".")).join(CONFIG_FILE);
            candidate.is_file().then_some(candidate)
        }
    }
}

/// The command line `args` (as given: program name, subcommand, flags) with the settings
/// of the file at `path` added for every flag of `subcommand` that the command line
/// (or the flag's environment variable) did not set. `cli` is the whole command's
/// definition; `matches` what it parsed from `args`.
///
/// # Errors
/// The file cannot be read or parsed, names a key that is no flag, or a value the
/// flag's parser refuses — each named with the file and the key.
pub fn with_file_settings(
    cli: &clap::Command,
    subcommand: &str,
    matches: &clap::ArgMatches,
    mut args: Vec<OsString>,
    path: &Path,
) -> Result<Vec<OsString>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    let key_error = |key: &str, reason: String| ConfigError::Key {
        path: path.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let known: BTreeSet<String> = CONFIGURED
        .iter()
        .filter_map(|name| cli.find_subcommand(name))
        .flat_map(|sub| sub.get_arguments().filter_map(|a| a.get_long()))
        .filter(|long| !NOT_IN_FILE.contains(long) && *long != "help")
        .map(str::to_owned)
        .collect();
    let Some(command) = cli.find_subcommand(subcommand) else {
        return Ok(args);
    };
    let mut added = Vec::new();
    for (key, value) in &table {
        if NOT_IN_FILE.contains(&key.as_str()) {
            return Err(key_error(
                key,
                "is given on the command line, not in a file".into(),
            ));
        }
        if !known.contains(key) {
            return Err(key_error(
                key,
                format!(
                    "is no flag of `autopack run` or `autopack serve` (keys are their long flags: {})",
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let Some(arg) = command.get_arguments().find(|a| a.get_long() == Some(key)) else {
            // A flag of the other command.
            continue;
        };
        let id = arg.get_id().as_str();
        if matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        flag_args(key, value, takes_value, &mut added).map_err(|reason| key_error(key, reason))?;
    }
    args.extend(added.clone());
    // Each value checked by the flag's own parser; an error names the key, not a flag the
    // user never typed.
    if let Err(e) = cli.clone().try_get_matches_from(&args) {
        let message = e.to_string();
        let key = added
            .iter()
            .filter_map(|a| a.to_str()?.strip_prefix("--"))
            .map(|a| a.split('=').next().unwrap_or(a).to_owned())
            .find(|k| message.contains(&format!("--{k}")))
            .unwrap_or_else(|| added_keys(&added));
        return Err(ConfigError::Value {
            path: path.to_owned(),
            key,
            message: message
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_owned(),
        });
    }
    Ok(args)
}

/// `--key=value` arguments for one setting of the file.
fn flag_args(
    key: &str,
    value: &toml::Value,
    takes_value: bool,
    out: &mut Vec<OsString>,
) -> Result<(), String> {
    let scalar = |value: &toml::Value| -> Result<String, String> {
        match value {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(n) => Ok(n.to_string()),
            other => Err(format!(
                "expected a string or an integer, found {}",
                other.type_str()
            )),
        }
    };
    match (value, takes_value) {
        (toml::Value::Boolean(on), false) => {
            if *on {
                out.push(format!("--{key}").into());
            }
        }
        (_, false) => return Err("is a switch: expected true or false".into()),
        (toml::Value::Array(items), true) => {
            for item in items {
                out.push(format!("--{key}={}", scalar(item)?).into());
            }
        }
        (value, true) => out.push(format!("--{key}={}", scalar(value)?).into()),
    }
    Ok(())
}

/// The keys behind `added`, for an error no single key can be blamed for.
fn added_keys(added: &[OsString]) -> String {
    let mut keys: Vec<String> = added
        .iter()
        .filter_map(|a| a.to_str()?.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_owned())
        .collect();
    keys.dedup();
    keys.join(", ")
}
