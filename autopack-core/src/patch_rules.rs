//! What a patch may do, as plain data: the size limits of each builder mode (one table),
//! the path length limits, the protected paths with their defaults, and the *holds* a
//! checked patch can carry (reasons it may go on only with an Auditor `approve`).
//!
//! The rules are enforced by `autopack_apply::PatchPolicy`; they live here because a
//! ruleset sets them, a compiled strategy freezes them, the Supervisor journals the holds
//! and reports print them, and none of those should depend on git.
//!
//! ```
//! use autopack_core::patch_rules::{PatchLimits, ProtectedAction, default_protected_paths};
//! use autopack_core::vocabulary::BuilderMode;
//!
//! let tweak = PatchLimits::for_mode(&BuilderMode::TweakLight);
//! assert_eq!(tweak.max_files, 2);
//! assert!(tweak.max_patch_bytes < PatchLimits::for_mode(&BuilderMode::RefactorHeavy).max_patch_bytes);
//! let protected = default_protected_paths(&["bash run_tests.sh"]);
//! assert!(protected.iter().any(|p| p.pattern == "run_tests.sh" && p.action == ProtectedAction::Refuse));
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::{KIB, MIB};
use crate::vocabulary::BuilderMode;

/// Size limits of one patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchLimits {
    /// Most files a patch may touch (a rename counts once).
    pub max_files: usize,
    /// Most changed lines (insertions + deletions).
    pub max_changed_lines: usize,
    /// Longest patch text, in bytes.
    pub max_patch_bytes: u64,
    /// Longest added line, in bytes.
    pub max_line_bytes: u64,
    /// Largest file a patch may leave behind (a post-image blob), in bytes.
    pub max_file_bytes: u64,
}

impl PatchLimits {
    /// The defaults per builder mode, the one table every reader uses:
    ///
    /// | mode | files | changed lines | patch bytes | longest line | file size |
    /// |---|---|---|---|---|---|
    /// | `tweak_light` | 2 | 200 | 64 KiB | 2,000 B | 256 KiB |
    /// | `schema_heavy` | 15 | 1,500 | 512 KiB | 4,000 B | 1 MiB |
    /// | `scaffolding_heavy` | 40 | 4,000 | 2 MiB | 4,000 B | 1 MiB |
    /// | `refactor_heavy` | 60 | 3,000 | 2 MiB | 4,000 B | 1 MiB |
    /// | any other label | 10 | 800 | 256 KiB | 4,000 B | 1 MiB |
    ///
    /// A line limit keeps generated or minified blobs out; an unwrapped Markdown
    /// paragraph stays well under it.
    pub fn for_mode(mode: &BuilderMode) -> PatchLimits {
        let (max_files, max_changed_lines, max_patch_bytes, max_line_bytes, max_file_bytes) =
            match mode {
                BuilderMode::TweakLight => (2, 200, 64 * KIB, 2_000, 256 * KIB),
                BuilderMode::SchemaHeavy => (15, 1_500, 512 * KIB, 4_000, MIB),
                BuilderMode::ScaffoldingHeavy => (40, 4_000, 2 * MIB, 4_000, MIB),
                BuilderMode::RefactorHeavy => (60, 3_000, 2 * MIB, 4_000, MIB),
                BuilderMode::Other(_) => (10, 800, 256 * KIB, 4_000, MIB),
            };
        PatchLimits {
            max_files,
            max_changed_lines,
            max_patch_bytes,
            max_line_bytes,
            max_file_bytes,
        }
    }

    /// These limits with the fields `overrides` sets replaced.
    pub fn with(self, overrides: &PatchLimitOverrides) -> PatchLimits {
        PatchLimits {
            max_files: overrides.max_files.unwrap_or(self.max_files),
            max_changed_lines: overrides
                .max_changed_lines
                .unwrap_or(self.max_changed_lines),
            max_patch_bytes: overrides.max_patch_bytes.unwrap_or(self.max_patch_bytes),
            max_line_bytes: overrides.max_line_bytes.unwrap_or(self.max_line_bytes),
            max_file_bytes: overrides.max_file_bytes.unwrap_or(self.max_file_bytes),
        }
    }
}

/// Some fields of [`PatchLimits`], as a ruleset sets them (a left-out field keeps the
/// builder mode's default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchLimitOverrides {
    /// Most files (≥ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<usize>,
    /// Most changed lines (≥ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_changed_lines: Option<usize>,
    /// Longest patch, in bytes (≥ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_patch_bytes: Option<u64>,
    /// Longest added line, in bytes (≥ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_line_bytes: Option<u64>,
    /// Largest file left behind, in bytes (≥ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_bytes: Option<u64>,
}

/// Length limits of the paths a patch names (git itself has none; file systems and CI
/// worktree creation do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathLimits {
    /// Longest path component, in bytes (default 255, what Linux and most file systems allow).
    pub max_component_bytes: usize,
    /// Longest whole path, in bytes (default 1,024).
    pub max_path_bytes: usize,
}

impl Default for PathLimits {
    fn default() -> PathLimits {
        PathLimits {
            max_component_bytes: 255,
            max_path_bytes: 1_024,
        }
    }
}

/// Compiles one path glob the way every Autopack path rule reads it (scopes, protected
/// paths): `*` and `?` stay within a directory, `**` crosses directories.
///
/// # Errors
/// globset's error, naming what is wrong with the pattern.
pub fn path_glob(pattern: &str) -> Result<globset::Glob, globset::Error> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
}

/// What touching a protected path does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProtectedAction {
    /// The patch is refused (rule `protected_path`).
    Refuse,
    /// The patch may go on only after an Auditor `approve`.
    AuditorApprove,
}

/// One protected-path rule: a glob (`*` stays within a directory, `**` crosses) and what
/// touching a matching path does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtectedPath {
    /// The glob, relative to the repository root.
    pub pattern: String,
    /// Refused (the default) or held for an Auditor `approve`.
    #[serde(default = "refuse")]
    pub action: ProtectedAction,
}

fn refuse() -> ProtectedAction {
    ProtectedAction::Refuse
}

impl ProtectedPath {
    /// A rule that refuses `pattern`.
    pub fn refuse(pattern: impl Into<String>) -> ProtectedPath {
        ProtectedPath {
            pattern: pattern.into(),
            action: ProtectedAction::Refuse,
        }
    }
}

/// The protected globs every project gets unless its ruleset replaces them: CI
/// configuration, Autopack's own files (runs, rulesets, `autopack.toml`), and the git files that change
/// what a diff means.
pub const DEFAULT_PROTECTED_PATTERNS: &[&str] = &[
    // CI configuration.
    ".github/workflows/**",
    ".github/actions/**",
    ".gitlab-ci.yml",
    ".gitlab/ci/**",
    ".circleci/**",
    ".buildkite/**",
    ".travis.yml",
    "azure-pipelines.yml",
    ".azure-pipelines/**",
    "Jenkinsfile",
    ".woodpecker.yml",
    ".woodpecker/**",
    ".ci/**",
    // Autopack's own files.
    ".autonomous_runs/**",
    "**/project_ruleset_*.json",
    // The CLI's settings (`autopack run` reads it from the repository's root): an agent
    // that could edit it would choose the next run's test command and limits.
    "autopack.toml",
    // What a diff means.
    "**/.gitattributes",
    "**/.gitignore",
    ".mailmap",
];

/// The default protected paths for a project whose CI commands are `ci_commands`: the
/// [`DEFAULT_PROTECTED_PATTERNS`] and the test runner scripts the commands name
/// ([`runner_scripts`]), all refused.
pub fn default_protected_paths<S: AsRef<str>>(ci_commands: &[S]) -> Vec<ProtectedPath> {
    let mut out: Vec<ProtectedPath> = DEFAULT_PROTECTED_PATTERNS
        .iter()
        .map(|p| ProtectedPath::refuse(*p))
        .collect();
    for command in ci_commands {
        for script in runner_scripts(command.as_ref()) {
            if !out.iter().any(|p| p.pattern == script) {
                out.push(ProtectedPath::refuse(script));
            }
        }
    }
    out
}

/// Files a CI command names that are scripts of the repository: words that look like a
/// relative path to a file (`run_tests.sh`, `./scripts/ci.sh`, `tools/test.py`,
/// `Makefile` via `make -f Makefile`), normalised to repository paths (`./` removed).
/// Words with `..`, an absolute path, a glob or a variable are not the repository's.
pub fn runner_scripts(command: &str) -> Vec<String> {
    const SCRIPT_ENDINGS: &[&str] = &[
        ".sh", ".bash", ".py", ".pl", ".rb", ".js", ".mjs", ".ts", ".ps1", ".bat", ".cmd", ".mk",
        ".toml", ".cfg", ".ini", ".yml", ".yaml", ".json",
    ];
    let mut out = Vec::new();
    let words = command
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')'))
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches(|c| c == '"' || c == '\''));
    let mut previous = "";
    for word in words {
        let path = word.strip_prefix("./").unwrap_or(word);
        let named_file = matches!(previous, "-f" | "--file" | "--makefile" | "-c" | "--config");
        previous = word;
        if path.is_empty()
            || path.starts_with('/')
            || path.starts_with('-')
            || path.contains(['$', '*', '?', '[', '`', '=', '~'])
            || path
                .split('/')
                .any(|c| c == ".." || c.is_empty() || c == ".")
        {
            continue;
        }
        let script_like = word.starts_with("./")
            || SCRIPT_ENDINGS
                .iter()
                .any(|e| path.ends_with(e) && path.len() > e.len());
        if (script_like || named_file) && !out.iter().any(|p| p == path) {
            out.push(path.to_owned());
        }
    }
    out
}

/// Why a checked patch may go on only after an Auditor `approve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PatchHold {
    /// The patch touches a path whose protected rule says `auditor_approve`.
    ProtectedPath {
        /// The path.
        path: String,
        /// The rule's glob.
        pattern: String,
    },
    /// The patch weakens tests (SPEC §13): the phase becomes `test_integrity` risk.
    TestIntegrity {
        /// The test file.
        path: String,
        /// What was found.
        finding: TestIntegrityFinding,
    },
}

impl PatchHold {
    /// The path the hold is about.
    pub fn path(&self) -> &str {
        match self {
            PatchHold::ProtectedPath { path, .. } | PatchHold::TestIntegrity { path, .. } => path,
        }
    }

    /// Whether this hold makes the phase `test_integrity` risk.
    pub fn is_test_integrity(&self) -> bool {
        matches!(self, PatchHold::TestIntegrity { .. })
    }
}

impl std::fmt::Display for PatchHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatchHold::ProtectedPath { path, pattern } => write!(
                f,
                "protected_path: {path:?} matches {pattern:?}, which needs an Auditor approve"
            ),
            PatchHold::TestIntegrity { path, finding } => {
                write!(f, "test_integrity: {path:?} {finding}")
            }
        }
    }
}

/// What makes a patch weaken tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum TestIntegrityFinding {
    /// A test file is deleted.
    DeletedTest,
    /// A test file is renamed (or moved) away.
    RenamedTest {
        /// Where it goes.
        to: String,
    },
    /// An added line carries a skip or ignore marker.
    SkipMarker {
        /// The marker (`#[ignore]`, `@pytest.mark.skip`, `it.skip`, …).
        marker: String,
    },
    /// The patch removes more assertions from the file than it adds.
    RemovedAssertions {
        /// Assertion lines removed, net of those added.
        removed: usize,
    },
}

impl std::fmt::Display for TestIntegrityFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TestIntegrityFinding::DeletedTest => f.write_str("deletes a test file"),
            TestIntegrityFinding::RenamedTest { to } => {
                write!(f, "renames a test file to {to:?}")
            }
            TestIntegrityFinding::SkipMarker { marker } => {
                write!(f, "adds the skip marker {marker:?}")
            }
            TestIntegrityFinding::RemovedAssertions { removed } => {
                write!(f, "removes {removed} assertion(s)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_scripts_are_the_repository_files_a_command_names() {
        assert_eq!(runner_scripts("bash run_tests.sh"), vec!["run_tests.sh"]);
        assert_eq!(
            runner_scripts("./scripts/ci.sh --fast && python tools/check.py"),
            vec!["scripts/ci.sh", "tools/check.py"]
        );
        assert_eq!(runner_scripts("make -f ci.mk test"), vec!["ci.mk"]);
        assert_eq!(runner_scripts("make -f Makefile test"), vec!["Makefile"]);
        assert!(runner_scripts("cargo test --workspace").is_empty());
        assert!(runner_scripts("sh /usr/local/bin/x.sh ../up.sh $HOME/y.sh *.sh").is_empty());
        assert_eq!(
            runner_scripts("pytest -c 'setup.cfg' -q"),
            vec!["setup.cfg"]
        );
    }

    #[test]
    fn the_defaults_protect_ci_and_the_named_scripts_once() {
        let rules = default_protected_paths(&["bash run_tests.sh", "bash run_tests.sh --strict"]);
        assert_eq!(
            rules.iter().filter(|r| r.pattern == "run_tests.sh").count(),
            1
        );
        assert!(rules.iter().any(|r| r.pattern == ".github/workflows/**"));
        assert!(rules.iter().all(|r| r.action == ProtectedAction::Refuse));
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let base = PatchLimits::for_mode(&BuilderMode::TweakLight);
        let o = PatchLimitOverrides {
            max_files: Some(5),
            ..PatchLimitOverrides::default()
        };
        let got = base.with(&o);
        assert_eq!(got.max_files, 5);
        assert_eq!(got.max_changed_lines, base.max_changed_lines);
    }

    #[test]
    fn holds_serialise_with_their_kind() {
        let hold = PatchHold::TestIntegrity {
            path: "tests/a.py".into(),
            finding: TestIntegrityFinding::SkipMarker {
                marker: "@pytest.mark.skip".into(),
            },
        };
        let json = serde_json::to_string(&hold).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"test_integrity","path":"tests/a.py","finding":{"finding":"skip_marker","marker":"@pytest.mark.skip"}}"#
        );
        assert_eq!(serde_json::from_str::<PatchHold>(&json).unwrap(), hold);
    }
}
