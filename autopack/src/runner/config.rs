//! The host's settings of a run besides its agents ([`RunConfig`]), stored as
//! `{run_id}/run_config.json` so that a resume rebuilds the same host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use autopack_apply::{CommitSignature, PreflightGate};
use autopack_core::ids::RunId;
use autopack_layout::RunsRoot;
use autopack_sandbox::{Network, Sandbox};
use serde::{Deserialize, Serialize};

use super::error::{Cause, Doing as _, RunnerError};
use crate::host::{AgentPreset, CommandAgent};

/// The file in a run's folder that lets a resume rebuild the host.
pub const RUN_CONFIG_FILE: &str = "run_config.json";

/// What the host needs besides the agents; stored as `{run_id}/run_config.json` by
/// `autopack run` so that `autopack resume` can rebuild the same host.
///
/// ```json
/// {"base": "main", "builder_cmd": "my-builder", "auditor_cmd": null,
///  "test_cmd": "sh run_tests.sh", "strict_test_cmd": "sh run_tests.sh --strict",
///  "agent_timeout_secs": 900, "max_output_bytes": 8388608, "ci_timeout_secs": 1800,
///  "ci_backoff_millis": 2000, "signature_seconds": 1767225600,
///  "builder": "codex", "sandbox": {"pass_env": ["OPENAI_API_KEY"], "ci_network": "deny"}}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The branch the integration branch was created from (never written).
    pub base: String,
    /// The Builder command (`None` for scripted agents).
    #[serde(default)]
    pub builder_cmd: Option<String>,
    /// The Auditor command (`None`: an Auditor that always escalates).
    #[serde(default)]
    pub auditor_cmd: Option<String>,
    /// The `normal` CI profile's test command.
    pub test_cmd: String,
    /// The `strict` CI profile's test command.
    pub strict_test_cmd: String,
    /// Agent timeout, in seconds.
    pub agent_timeout_secs: u64,
    /// Largest agent stdout accepted, in bytes.
    pub max_output_bytes: usize,
    /// CI attempt timeout, in seconds.
    pub ci_timeout_secs: u64,
    /// Delay before the second CI attempt, in milliseconds (doubled after).
    pub ci_backoff_millis: u64,
    /// Time of the commit signature (fixed per run, so a retried commit is identical).
    pub signature_seconds: i64,
    /// Where the run's private workspaces go (default `$TMPDIR/autopack-workspaces`);
    /// never inside the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_dir: Option<PathBuf>,
    /// The Builder's preset (`codex`, `claude`, `aider`; `command` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
    /// The Auditor's preset (`command` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auditor: Option<String>,
    /// How agents and CI are confined.
    #[serde(default)]
    pub sandbox: SandboxSettings,
    /// Largest patch accepted, in bytes (default
    /// [`MAX_PATCH_BYTES`](autopack_apply::MAX_PATCH_BYTES); `--max-patch-bytes`).
    #[serde(default = "default_max_patch_bytes")]
    pub max_patch_bytes: u64,
    /// JUnit XML reports the `normal` profile's command writes (globs in the checkout,
    /// `--junit`); empty: CI is judged by exit codes alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub junit: Vec<String>,
    /// The `strict` profile's reports (`--strict-junit`; default `--junit`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strict_junit: Vec<String>,
}

impl RunConfig {
    /// A configuration with the defaults of `autopack run`: `base` is the branch the
    /// integration branch starts from, `test_cmd` the CI command of both profiles; agents
    /// time out after 15 minutes, CI after 30, commits are signed with the current time.
    /// Set the other fields directly.
    pub fn new(base: impl Into<String>, test_cmd: impl Into<String>) -> RunConfig {
        let test_cmd = test_cmd.into();
        RunConfig {
            base: base.into(),
            builder_cmd: None,
            auditor_cmd: None,
            strict_test_cmd: test_cmd.clone(),
            test_cmd,
            agent_timeout_secs: 900,
            max_output_bytes: crate::host::DEFAULT_MAX_OUTPUT,
            ci_timeout_secs: 1800,
            ci_backoff_millis: 2000,
            signature_seconds: chrono::Utc::now().timestamp(),
            workspace_dir: None,
            builder: None,
            auditor: None,
            sandbox: SandboxSettings::default(),
            max_patch_bytes: default_max_patch_bytes(),
            junit: Vec::new(),
            strict_junit: Vec::new(),
        }
    }

    /// This configuration with agents and CI unconfined (`--no-sandbox`): for machines
    /// without Landlock, and for agents the host trusts.
    pub fn without_sandbox(mut self) -> RunConfig {
        self.sandbox.disabled = true;
        self
    }
}

fn default_max_patch_bytes() -> u64 {
    autopack_apply::MAX_PATCH_BYTES
}

/// Longest agent or CI timeout accepted, in seconds (7 days; at least 1 s).
pub const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 60 * 60;
/// Longest CI backoff accepted, in milliseconds (1 hour; 0 is allowed: no wait).
pub const MAX_BACKOFF_MILLIS: u64 = 60 * 60 * 1000;
/// Largest byte limit accepted for `--max-output` and the document size limits (1 GiB;
/// at least 1 byte).
pub const MAX_BYTES_LIMIT: u64 = autopack_core::limits::MAX_LIMIT_BYTES;

/// A [`RunConfig`] value out of its range, naming the field (and, when read from a file,
/// the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfigInvalid {
    /// The field (`ci_timeout_secs`, …).
    pub field: &'static str,
    /// The value found.
    pub value: u64,
    /// The smallest value allowed.
    pub min: u64,
    /// The largest value allowed.
    pub max: u64,
    /// The unit (`seconds`, `milliseconds`, `bytes`).
    pub unit: &'static str,
}

impl std::fmt::Display for RunConfigInvalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} is out of range ({}..={} {})",
            self.field, self.value, self.min, self.max, self.unit
        )
    }
}

impl std::error::Error for RunConfigInvalid {}

/// How a run's agents and CI commands are confined (`autopack run --no-sandbox`,
/// `--pass-env`, `--sandbox-read`, `--agent-network`, `--ci-network`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSettings {
    /// Run unconfined (the user said `--no-sandbox`); the environment is still scrubbed
    /// and every process still reaped.
    #[serde(default)]
    pub disabled: bool,
    /// Host environment variables passed to agents and CI (e.g. `OPENAI_API_KEY`).
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// Extra read-only paths (toolchains, an agent CLI's config).
    #[serde(default)]
    pub read: Vec<PathBuf>,
    /// Extra writable paths for CI (a cache or state folder outside the repository).
    #[serde(default)]
    pub write: Vec<PathBuf>,
    /// Whether agents may use TCP (default: yes, they call their model's API).
    #[serde(default)]
    pub agent_network: NetworkRule,
    /// Whether CI may use TCP (default: no).
    #[serde(default = "NetworkRule::deny")]
    pub ci_network: NetworkRule,
}

impl Default for SandboxSettings {
    /// Confined; agents online, CI offline; nothing passed, read or written beyond the
    /// sandbox's defaults.
    fn default() -> SandboxSettings {
        SandboxSettings {
            disabled: false,
            pass_env: Vec::new(),
            read: Vec::new(),
            write: Vec::new(),
            agent_network: NetworkRule::Allow,
            ci_network: NetworkRule::Deny,
        }
    }
}

/// Whether a confined process may use TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkRule {
    /// TCP allowed.
    #[default]
    Allow,
    /// TCP bind and connect denied (Landlock covers TCP only).
    Deny,
}

impl NetworkRule {
    fn deny() -> NetworkRule {
        NetworkRule::Deny
    }

    /// The sandbox's rule.
    pub fn network(self) -> Network {
        match self {
            NetworkRule::Allow => Network::Allow,
            NetworkRule::Deny => Network::Deny,
        }
    }
}

impl RunConfig {
    /// Checks every duration and size against its range (the same ranges as the flags of
    /// `autopack run`): timeouts 1 s ..= [`MAX_TIMEOUT_SECS`], the CI backoff 0 ..=
    /// [`MAX_BACKOFF_MILLIS`], byte limits 1 ..= [`MAX_BYTES_LIMIT`].
    ///
    /// # Errors
    /// The first field out of range, named.
    pub fn validate(&self) -> Result<(), RunConfigInvalid> {
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let checks: [(&'static str, u64, u64, u64, &'static str); 5] = [
            (
                "agent_timeout_secs",
                self.agent_timeout_secs,
                1,
                MAX_TIMEOUT_SECS,
                "seconds",
            ),
            (
                "max_output_bytes",
                as_u64(self.max_output_bytes),
                1,
                MAX_BYTES_LIMIT,
                "bytes",
            ),
            (
                "ci_timeout_secs",
                self.ci_timeout_secs,
                1,
                MAX_TIMEOUT_SECS,
                "seconds",
            ),
            (
                "ci_backoff_millis",
                self.ci_backoff_millis,
                0,
                MAX_BACKOFF_MILLIS,
                "milliseconds",
            ),
            (
                "max_patch_bytes",
                self.max_patch_bytes,
                1,
                MAX_BYTES_LIMIT,
                "bytes",
            ),
        ];
        for (field, value, min, max, unit) in checks {
            if !(min..=max).contains(&value) {
                return Err(RunConfigInvalid {
                    field,
                    value,
                    min,
                    max,
                    unit,
                });
            }
        }
        Ok(())
    }

    /// Reads `{run_id}/run_config.json` and [validates](RunConfig::validate) it.
    ///
    /// # Errors
    /// A missing or malformed file, or a value out of range, named with the file.
    pub fn load(root: &RunsRoot, run_id: &RunId) -> Result<RunConfig, RunnerError> {
        let path = root.run_dir(run_id).join(RUN_CONFIG_FILE);
        let no_config = |source: Cause| RunnerError::NoConfig {
            run_id: run_id.clone(),
            path: path.clone(),
            source,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| no_config(e.into()))?;
        let config: RunConfig = autopack_core::json::from_str(&text, path.display().to_string())
            .map_err(|e| no_config(e.into()))?;
        config.validate().map_err(|source| RunnerError::Config {
            path: path.clone(),
            source,
        })?;
        Ok(config)
    }

    /// [Validates](RunConfig::validate) and writes `{run_id}/run_config.json`.
    ///
    /// # Errors
    /// A value out of range (nothing is written), or the file cannot be written.
    pub fn save(&self, root: &RunsRoot, run_id: &RunId) -> Result<PathBuf, RunnerError> {
        let path = root.run_dir(run_id).join(RUN_CONFIG_FILE);
        self.validate().map_err(|source| RunnerError::Config {
            path: path.clone(),
            source,
        })?;
        autopack_layout::fsio::write_json_atomic(&path, self)
            .doing(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The CI commands of both profiles (the test runner scripts they name are protected
    /// paths).
    pub fn ci_commands(&self) -> Vec<String> {
        let mut commands = vec![self.test_cmd.clone()];
        if self.strict_test_cmd != self.test_cmd {
            commands.push(self.strict_test_cmd.clone());
        }
        commands
    }

    pub(crate) fn gate(&self, sandbox: &Sandbox) -> PreflightGate {
        let mut gate = PreflightGate::new(self.test_cmd.clone(), self.strict_test_cmd.clone())
            .with_sandbox(
                sandbox.clone(),
                self.sandbox.ci_network.network(),
                self.sandbox.read.clone(),
            );
        gate.normal_junit = self.junit.clone();
        gate.strict_junit = self.strict_junit.clone();
        gate.timeout = Duration::from_secs(self.ci_timeout_secs);
        gate.backoff = Duration::from_millis(self.ci_backoff_millis);
        gate.env.pass = self.sandbox.pass_env.clone();
        gate.writable = self.sandbox.write.clone();
        gate
    }

    /// A [`CommandAgent`] for `preset` (a name) with `cmd` (the command line of a plain
    /// command, or a preset's program), confined by `sandbox` with this run's settings,
    /// keeping each attempt's log in `logs` (the run's `agents/` folder).
    ///
    /// # Errors
    /// An unknown preset name, or a plain command without a command line.
    pub fn agent(
        &self,
        preset: Option<&str>,
        cmd: Option<&str>,
        sandbox: &Sandbox,
        logs: &Path,
    ) -> Result<CommandAgent, String> {
        let preset = preset
            .map(AgentPreset::from_name)
            .transpose()
            .map_err(|e| e.to_string())?
            .unwrap_or(AgentPreset::Command);
        let mut agent = CommandAgent::preset(preset)
            .with_timeout(Duration::from_secs(self.agent_timeout_secs))
            .with_max_output(self.max_output_bytes)
            .with_network(self.sandbox.agent_network.network())
            .with_sandbox(sandbox.clone())
            .with_attempt_logs(logs);
        match (preset, cmd) {
            (_, Some(cmd)) => agent = agent.with_program(cmd),
            (AgentPreset::Command, None) => {
                return Err("a plain command agent needs its command line".to_owned());
            }
            (_, None) => {}
        }
        for name in &self.sandbox.pass_env {
            agent = agent.pass_env(name.clone());
        }
        for path in &self.sandbox.read {
            agent = agent.allow_read(path.clone());
        }
        Ok(agent)
    }

    pub(crate) fn signature(&self) -> CommitSignature {
        CommitSignature {
            name: "autopack".into(),
            email: "autopack@example.invalid".into(),
            seconds: self.signature_seconds,
            offset_minutes: 0,
        }
    }
}
