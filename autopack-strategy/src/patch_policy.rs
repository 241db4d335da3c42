//! The patch policy a ruleset sets (`patch_policy`) and the settings a strategy freezes
//! from it: builder-mode size limits, path length limits, protected paths and whether
//! tracked symlinks may change. The rules themselves are enforced by
//! `autopack_apply::PatchPolicy`; the data types and defaults are
//! [`autopack_core::patch_rules`].
//!
//! ```
//! use autopack_core::patch_rules::ProtectedAction;
//! use autopack_core::vocabulary::BuilderMode;
//! use autopack_strategy::patch_policy::PatchPolicyRules;
//!
//! let rules: PatchPolicyRules = serde_json::from_str(r#"{
//!     "builder_mode_limits": {"tweak_light": {"max_files": 4}},
//!     "extra_protected_paths": [{"pattern": "docs/adr/**", "action": "auditor_approve"}]
//! }"#).unwrap();
//! let settings = rules.settings();
//! assert_eq!(settings.limits_for(&BuilderMode::TweakLight).max_files, 4);
//! assert!(settings.protected_paths.iter().any(|p| p.pattern == ".github/workflows/**"));
//! assert_eq!(settings.protected_paths.last().unwrap().action, ProtectedAction::AuditorApprove);
//! ```

use std::collections::BTreeMap;

use autopack_core::patch_rules::{
    DEFAULT_PROTECTED_PATTERNS, PatchLimitOverrides, PatchLimits, PathLimits, ProtectedPath,
    path_glob,
};
use autopack_core::vocabulary::BuilderMode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The ruleset's `patch_policy` object; every field may be left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchPolicyRules {
    /// Per builder-mode label, the limits that replace the built-in table's
    /// (`autopack_core::patch_rules::PatchLimits::for_mode`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub builder_mode_limits: BTreeMap<String, PatchLimitOverrides>,
    /// Replaces the default protected paths (CI configuration, `.autonomous_runs/**`,
    /// rulesets, git attribute/ignore files) when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_paths: Option<Vec<ProtectedPath>>,
    /// Added after the protected paths (the defaults or `protected_paths`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_protected_paths: Vec<ProtectedPath>,
    /// Whether patches may create, edit or retype symlinks (default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_symlinks: Option<bool>,
    /// Longest path a patch may name, in bytes (default 1,024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_path_bytes: Option<usize>,
    /// Longest path component, in bytes (default 255).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_component_bytes: Option<usize>,
}

/// The patch policy a strategy freezes for its run. The host adds the test runner
/// scripts its CI commands name to `protected_paths` (they are not known to the ruleset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchPolicySettings {
    /// Protected paths, in rule order (the first match decides).
    pub protected_paths: Vec<ProtectedPath>,
    /// Whether patches may create, edit or retype symlinks.
    pub allow_symlinks: bool,
    /// Path length limits.
    pub path_limits: PathLimits,
    /// Builder-mode limits the ruleset set, by mode label (modes not listed use the
    /// built-in table).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub builder_mode_limits: BTreeMap<String, PatchLimitOverrides>,
}

impl Default for PatchPolicySettings {
    /// The built-in policy: [`DEFAULT_PROTECTED_PATTERNS`] refused, no symlink changes,
    /// default path limits, the built-in limit table.
    fn default() -> PatchPolicySettings {
        PatchPolicyRules::default().settings()
    }
}

impl PatchPolicySettings {
    /// The size limits of a phase in `mode`: the built-in table's, with the ruleset's
    /// overrides for that mode.
    pub fn limits_for(&self, mode: &BuilderMode) -> PatchLimits {
        let base = PatchLimits::for_mode(mode);
        match self.builder_mode_limits.get(mode.as_str()) {
            Some(overrides) => base.with(overrides),
            None => base,
        }
    }
}

impl PatchPolicyRules {
    /// The settings these rules give.
    pub fn settings(&self) -> PatchPolicySettings {
        let mut protected_paths: Vec<ProtectedPath> = match &self.protected_paths {
            Some(rules) => rules.clone(),
            None => DEFAULT_PROTECTED_PATTERNS
                .iter()
                .map(|p| ProtectedPath::refuse(*p))
                .collect(),
        };
        protected_paths.extend(self.extra_protected_paths.iter().cloned());
        let defaults = PathLimits::default();
        PatchPolicySettings {
            protected_paths,
            allow_symlinks: self.allow_symlinks.unwrap_or(false),
            path_limits: PathLimits {
                max_component_bytes: self
                    .max_component_bytes
                    .unwrap_or(defaults.max_component_bytes),
                max_path_bytes: self.max_path_bytes.unwrap_or(defaults.max_path_bytes),
            },
            builder_mode_limits: self.builder_mode_limits.clone(),
        }
    }

    /// Range and syntax rules: limits ≥ 1, builder-mode labels valid, globs that compile.
    /// Returns the JSON path (under `patch_policy`) and the message of the first breach.
    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        let base = "patch_policy";
        for (mode, limits) in &self.builder_mode_limits {
            let at = format!("{base}.builder_mode_limits.{mode}");
            if let Err(e) = BuilderMode::parse(mode) {
                return Err((at, e.to_string()));
            }
            let fields = [
                ("max_files", limits.max_files.map(|v| v as u64)),
                (
                    "max_changed_lines",
                    limits.max_changed_lines.map(|v| v as u64),
                ),
                ("max_patch_bytes", limits.max_patch_bytes),
                ("max_line_bytes", limits.max_line_bytes),
                ("max_file_bytes", limits.max_file_bytes),
            ];
            for (field, value) in fields {
                if value == Some(0) {
                    return Err((format!("{at}.{field}"), "must be at least 1".into()));
                }
            }
        }
        for (field, rules) in [
            (
                "protected_paths",
                self.protected_paths.as_deref().unwrap_or(&[]),
            ),
            ("extra_protected_paths", &self.extra_protected_paths[..]),
        ] {
            for (i, rule) in rules.iter().enumerate() {
                let at = format!("{base}.{field}[{i}].pattern");
                if rule.pattern.trim().is_empty() {
                    return Err((at, "must not be empty".into()));
                }
                if let Err(e) = path_glob(&rule.pattern) {
                    return Err((at, format!("{:?} is not a glob: {e}", rule.pattern)));
                }
            }
        }
        for (field, value) in [
            ("max_path_bytes", self.max_path_bytes),
            ("max_component_bytes", self.max_component_bytes),
        ] {
            if value == Some(0) {
                return Err((format!("{base}.{field}"), "must be at least 1".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autopack_core::patch_rules::ProtectedAction;

    #[test]
    fn replacing_the_defaults_keeps_the_extras() {
        let rules = PatchPolicyRules {
            protected_paths: Some(vec![ProtectedPath::refuse("ci/**")]),
            extra_protected_paths: vec![ProtectedPath {
                pattern: "tests/**".into(),
                action: ProtectedAction::AuditorApprove,
            }],
            ..PatchPolicyRules::default()
        };
        let settings = rules.settings();
        let patterns: Vec<&str> = settings
            .protected_paths
            .iter()
            .map(|p| p.pattern.as_str())
            .collect();
        assert_eq!(patterns, ["ci/**", "tests/**"]);
    }

    #[test]
    fn validation_names_the_field() {
        let bad_glob = PatchPolicyRules {
            extra_protected_paths: vec![ProtectedPath::refuse("a/[b")],
            ..PatchPolicyRules::default()
        };
        assert_eq!(
            bad_glob.validate().unwrap_err().0,
            "patch_policy.extra_protected_paths[0].pattern"
        );
        let zero = PatchPolicyRules {
            builder_mode_limits: BTreeMap::from([(
                "tweak_light".to_owned(),
                PatchLimitOverrides {
                    max_line_bytes: Some(0),
                    ..PatchLimitOverrides::default()
                },
            )]),
            ..PatchPolicyRules::default()
        };
        assert_eq!(
            zero.validate().unwrap_err().0,
            "patch_policy.builder_mode_limits.tweak_light.max_line_bytes"
        );
        let path = PatchPolicyRules {
            max_path_bytes: Some(0),
            ..PatchPolicyRules::default()
        };
        assert_eq!(
            path.validate().unwrap_err().0,
            "patch_policy.max_path_bytes"
        );
    }
}

#[cfg(test)]
mod ruleset_tests {
    use crate::Ruleset;

    #[test]
    fn a_ruleset_names_the_patch_policy_field_at_fault() {
        let unknown = r#"{"project_id": "p", "patch_policy": {"allow_symlink": true}}"#;
        let err = Ruleset::from_json(unknown, "r.json").unwrap_err();
        assert!(err.path().starts_with("patch_policy"), "{err}");
        let zero = r#"{"project_id": "p", "patch_policy": {"builder_mode_limits": {"tweak_light": {"max_files": 0}}}}"#;
        let err = Ruleset::from_json(zero, "r.json").unwrap_err();
        assert_eq!(
            err.path(),
            "patch_policy.builder_mode_limits.tweak_light.max_files"
        );
        let ok = r#"{"project_id": "p", "patch_policy": {"allow_symlinks": true, "max_path_bytes": 200}}"#;
        let settings = Ruleset::from_json(ok, "r.json")
            .unwrap()
            .patch_policy
            .settings();
        assert!(settings.allow_symlinks);
        assert_eq!(settings.path_limits.max_path_bytes, 200);
    }
}
