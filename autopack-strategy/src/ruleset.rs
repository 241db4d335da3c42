//! The declarative project ruleset (`project_ruleset_{project_id}.json`).
//!
//! Reading is strict: unknown fields and wrong types are reported by
//! [`autopack_core::json::from_str`] with the file and JSON path; a second pass
//! ([`Ruleset::validate`]) rejects out-of-range values (zero builder attempts, a zero or
//! negative cap or multiplier, a malformed `version`, one high-risk kind configured under
//! both of its names) with the path it builds itself.
//!
//! Every field but `project_id` may be left out; a left-out field means "the built-in
//! default" (see [`crate::defaults`]). The first implementation's file loads unchanged.
//!
//! Invariant: the five built-in high-risk kinds are always high-risk; `high_risk_categories`
//! can add categories, never remove one.

use std::collections::BTreeMap;
use std::fmt;

use autopack_core::ids::ProjectId;
use autopack_core::json::{self, JsonError};
use autopack_core::vocabulary::{
    BuilderMode, CiProfile, Complexity, HighRiskKind, RunScope, SafetyProfile, Severity,
    TaskCategory,
};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::defaults;
use crate::patch_policy::PatchPolicyRules;

/// A project ruleset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ruleset {
    /// The ruleset's version, `v{N}` with N ≥ 1 (stores assign it).
    #[serde(default = "default_version")]
    pub version: String,
    /// The project the ruleset belongs to.
    pub project_id: ProjectId,
    /// Safety profile of runs whose plan names none.
    #[serde(default = "default_safety_profile")]
    pub default_safety_profile: SafetyProfile,
    /// Run scope of runs whose plan names none.
    #[serde(default = "default_run_scope")]
    pub default_run_scope: RunScope,
    /// Per safety profile settings (aging thresholds).
    #[serde(default)]
    pub safety_profiles: SafetyProfiles,
    /// Per-category overrides, keyed by task-category or issue-category name.
    #[serde(default)]
    pub category_defaults: BTreeMap<String, CategoryRules>,
    /// Categories treated as high-risk, in addition to the five built-in kinds.
    #[serde(default)]
    pub high_risk_categories: Vec<String>,
    /// Run token cap (default 5,000,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_token_cap: Option<u64>,
    /// Most phases a run may hold (default 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_max_phases: Option<u32>,
    /// Longest a run may take, in minutes (default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_max_duration_minutes: Option<u32>,
    /// What a patch may do: builder-mode limits, protected paths, symlinks, path lengths
    /// (SPEC §13); left out, the built-in policy.
    #[serde(default, skip_serializing_if = "is_default_policy")]
    pub patch_policy: PatchPolicyRules,
}

fn is_default_policy(rules: &PatchPolicyRules) -> bool {
    *rules == PatchPolicyRules::default()
}

fn default_version() -> String {
    "v1".to_owned()
}
fn default_safety_profile() -> SafetyProfile {
    SafetyProfile::Normal
}
fn default_run_scope() -> RunScope {
    RunScope::MultiTier
}

/// The `safety_profiles` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SafetyProfiles {
    /// Settings under `normal`.
    #[serde(default)]
    pub normal: SafetyProfileRules,
    /// Settings under `safety_critical`.
    #[serde(default)]
    pub safety_critical: SafetyProfileRules,
}

impl SafetyProfiles {
    /// The settings of one profile.
    pub fn get(&self, profile: SafetyProfile) -> &SafetyProfileRules {
        match profile {
            SafetyProfile::Normal => &self.normal,
            SafetyProfile::SafetyCritical => &self.safety_critical,
        }
    }
}

/// Settings of one safety profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SafetyProfileRules {
    /// The profile's name; must equal its key when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the profile is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Distinct runs after which a minor issue needs cleanup (≥ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor_issue_aging_runs_threshold: Option<u32>,
    /// Distinct tiers after which a minor issue needs cleanup (≥ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor_issue_aging_tiers_threshold: Option<u32>,
    /// The run scope this profile prefers (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_scope_preference: Option<RunScope>,
}

/// Overrides for one category; every field is optional and overrides the built-in value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryRules {
    /// Complexity when the plan gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complexity: Option<Complexity>,
    /// CI profile (`normal` | `strict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_profile: Option<CiProfile>,
    /// Builder mode when the plan gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_mode: Option<BuilderMode>,
    /// Builder attempts (≥ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_builder_attempts: Option<u32>,
    /// Auditor attempts (0 means no Auditor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_auditor_attempts: Option<u32>,
    /// Tokens one phase may spend (≥ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_token_cap: Option<u64>,
    /// Tier token cap multiplier (finite, ≥ 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_token_cap_multiplier: Option<f64>,
    /// CI runs per phase (finite, ≥ 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_ci_run_cap_multiplier: Option<f64>,
    /// Minor issues tolerated per phase (finite, ≥ 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_max_minor_issues_multiplier: Option<f64>,
    /// Major issues tolerated by a tier holding this category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_max_major_issues_tolerated: Option<u32>,
    /// Whether patches apply without an Auditor `approve`. For a high-risk category only an
    /// explicit `true` here enables it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_apply: Option<bool>,
    /// Auditor profile: absent = built-in, `null` = none, a string = that profile.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub auditor_profile: Option<Option<String>>,
    /// Severity of issues filed under this category by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_severity: Option<Severity>,
    /// CI retries; from the CI profile when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_max_retries: Option<u32>,
}

fn double_option<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(de).map(Some)
}

/// Default largest ruleset document, in bytes (1 MiB); see [`autopack_core::limits`].
pub const MAX_RULESET_BYTES: u64 = autopack_core::limits::MIB;

/// A ruleset that could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RulesetError {
    /// Not JSON, a wrong type or an unknown field.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// A value out of range.
    #[error(transparent)]
    Invalid(#[from] RulesetInvalid),
    /// A document larger than the ruleset size limit ([`MAX_RULESET_BYTES`] by default);
    /// not parsed.
    #[error(transparent)]
    TooLarge(#[from] autopack_core::limits::TooLarge),
}

impl RulesetError {
    /// The JSON path of the value at fault.
    pub fn path(&self) -> &str {
        match self {
            RulesetError::Json(e) => &e.path,
            RulesetError::Invalid(e) => &e.path,
            RulesetError::TooLarge(_) => ".",
        }
    }
}

/// A ruleset value out of range, with its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {path}: {message}")]
pub struct RulesetInvalid {
    /// The file or description the ruleset came from (`<ruleset>` when built in code).
    pub source_name: String,
    /// JSON path of the value (`category_defaults.docs.max_builder_attempts`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Resolved aging thresholds of a safety profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgingThresholds {
    /// Distinct runs after which a minor issue needs cleanup.
    pub minor_issue_aging_runs_threshold: u32,
    /// Distinct tiers after which a minor issue needs cleanup.
    pub minor_issue_aging_tiers_threshold: u32,
}

impl Ruleset {
    /// A ruleset with no overrides: everything comes from the built-in defaults.
    pub fn builtin(project_id: ProjectId) -> Ruleset {
        Ruleset {
            version: default_version(),
            project_id,
            default_safety_profile: SafetyProfile::Normal,
            default_run_scope: RunScope::MultiTier,
            safety_profiles: SafetyProfiles::default(),
            category_defaults: BTreeMap::new(),
            high_risk_categories: Vec::new(),
            run_token_cap: None,
            run_max_phases: None,
            run_max_duration_minutes: None,
            patch_policy: PatchPolicyRules::default(),
        }
    }

    /// Reads and validates a ruleset; `source` (usually the file name) is named in errors.
    /// Documents over [`MAX_RULESET_BYTES`] are refused unparsed
    /// ([`Ruleset::from_json_limited`] takes another limit).
    ///
    /// # Errors
    /// [`RulesetError::TooLarge`] over the size limit; [`RulesetError::Json`] for syntax, type and unknown-field errors;
    /// [`RulesetError::Invalid`] for out-of-range values.
    pub fn from_json(text: &str, source: &str) -> Result<Ruleset, RulesetError> {
        Ruleset::from_json_limited(text, source, MAX_RULESET_BYTES)
    }

    /// As [`Ruleset::from_json`], with `max_bytes` instead of [`MAX_RULESET_BYTES`] as
    /// the largest document read.
    ///
    /// # Errors
    /// [`RulesetError::TooLarge`] when `text` is longer than `max_bytes` (it is not
    /// parsed); otherwise as [`Ruleset::from_json`].
    pub fn from_json_limited(
        text: &str,
        source: &str,
        max_bytes: u64,
    ) -> Result<Ruleset, RulesetError> {
        autopack_core::limits::check_size(
            autopack_core::limits::len_u64(text.as_bytes()),
            max_bytes,
            "ruleset",
            source,
        )?;
        let ruleset: Ruleset = json::from_str(text, source)?;
        ruleset.validate_named(source)?;
        Ok(ruleset)
    }

    /// Pretty JSON, with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut out = serde_json::to_string_pretty(self).unwrap_or_default();
        out.push('\n');
        out
    }

    /// The `N` of `version` (`v{N}`).
    pub fn version_number(&self) -> Option<u32> {
        parse_version(&self.version)
    }

    /// Checks every range rule; the first breach (in document order) is returned.
    ///
    /// # Errors
    /// A [`RulesetInvalid`] naming `<ruleset>` as its source.
    pub fn validate(&self) -> Result<(), RulesetInvalid> {
        self.validate_named("<ruleset>")
    }

    fn validate_named(&self, source: &str) -> Result<(), RulesetInvalid> {
        let err = |path: String, message: String| RulesetInvalid {
            source_name: source.to_owned(),
            path,
            message,
        };
        if parse_version(&self.version).is_none() {
            return Err(err(
                "version".into(),
                format!(
                    "{:?} is not a version; expected \"v1\", \"v2\", …",
                    self.version
                ),
            ));
        }
        for profile in SafetyProfile::ALL {
            let rules = self.safety_profiles.get(*profile);
            let base = format!("safety_profiles.{profile}");
            if let Some(name) = &rules.name
                && name != profile.as_str()
            {
                return Err(err(
                    format!("{base}.name"),
                    format!("{name:?} does not match its key {:?}", profile.as_str()),
                ));
            }
            for (field, value) in [
                (
                    "minor_issue_aging_runs_threshold",
                    rules.minor_issue_aging_runs_threshold,
                ),
                (
                    "minor_issue_aging_tiers_threshold",
                    rules.minor_issue_aging_tiers_threshold,
                ),
            ] {
                if value == Some(0) {
                    return Err(err(format!("{base}.{field}"), "must be at least 1".into()));
                }
            }
        }
        let mut kinds_seen: BTreeMap<HighRiskKind, &str> = BTreeMap::new();
        for (key, rules) in &self.category_defaults {
            let base = format!("category_defaults.{key}");
            if let Err(e) = TaskCategory::parse(key) {
                return Err(err(base, e.to_string()));
            }
            if let Some(kind) = HighRiskKind::from_name(key)
                && let Some(other) = kinds_seen.insert(kind, key)
            {
                return Err(err(
                    base,
                    format!(
                        "configures high-risk kind {kind} a second time (also as \
                         category_defaults.{other}); keep one of its names"
                    ),
                ));
            }
            rules
                .validate(&base)
                .map_err(|(path, message)| err(path, message))?;
        }
        for (i, name) in self.high_risk_categories.iter().enumerate() {
            if let Err(e) = TaskCategory::parse(name) {
                return Err(err(format!("high_risk_categories[{i}]"), e.to_string()));
            }
        }
        if self.run_token_cap == Some(0) {
            return Err(err("run_token_cap".into(), "must be at least 1".into()));
        }
        if self.run_max_phases == Some(0) {
            return Err(err("run_max_phases".into(), "must be at least 1".into()));
        }
        if self.run_max_duration_minutes == Some(0) {
            return Err(err(
                "run_max_duration_minutes".into(),
                "must be at least 1".into(),
            ));
        }
        self.patch_policy
            .validate()
            .map_err(|(path, message)| err(path, message))?;
        Ok(())
    }

    /// The aging thresholds of `profile`: the ruleset's, else SPEC §4's defaults.
    pub fn aging_thresholds(&self, profile: SafetyProfile) -> AgingThresholds {
        let (runs, tiers) = match profile {
            SafetyProfile::Normal => defaults::AGING_NORMAL,
            SafetyProfile::SafetyCritical => defaults::AGING_SAFETY_CRITICAL,
        };
        let rules = self.safety_profiles.get(profile);
        AgingThresholds {
            minor_issue_aging_runs_threshold: rules
                .minor_issue_aging_runs_threshold
                .unwrap_or(runs),
            minor_issue_aging_tiers_threshold: rules
                .minor_issue_aging_tiers_threshold
                .unwrap_or(tiers),
        }
    }

    /// The override for `category`, found under its own name or (for a high-risk kind)
    /// under either of the kind's names.
    pub fn category_rules(&self, category: &TaskCategory) -> Option<&CategoryRules> {
        match category.high_risk() {
            Some(kind) => self
                .category_defaults
                .get(kind.task_category_name())
                .or_else(|| self.category_defaults.get(kind.issue_category_name())),
            None => self.category_defaults.get(category.as_str()),
        }
    }

    /// Whether `category` is high-risk: one of the five kinds, or listed in
    /// `high_risk_categories`.
    pub fn is_high_risk(&self, category: &TaskCategory) -> bool {
        category.high_risk().is_some()
            || self
                .high_risk_categories
                .iter()
                .any(|name| name == category.as_str())
    }
}

impl CategoryRules {
    fn validate(&self, base: &str) -> Result<(), (String, String)> {
        let at = |field: &str, message: &str| (format!("{base}.{field}"), message.to_owned());
        if self.max_builder_attempts == Some(0) {
            return Err(at("max_builder_attempts", "must be at least 1"));
        }
        if self.incident_token_cap == Some(0) {
            return Err(at("incident_token_cap", "must be at least 1"));
        }
        for (field, value) in [
            ("tier_token_cap_multiplier", self.tier_token_cap_multiplier),
            (
                "tier_ci_run_cap_multiplier",
                self.tier_ci_run_cap_multiplier,
            ),
            (
                "tier_max_minor_issues_multiplier",
                self.tier_max_minor_issues_multiplier,
            ),
        ] {
            if let Some(v) = value
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(at(
                    field,
                    &format!("{v} is out of range; must be a finite number ≥ 0"),
                ));
            }
        }
        if let Some(Some(profile)) = &self.auditor_profile
            && (profile.trim().is_empty() || profile.chars().any(char::is_control))
        {
            return Err(at(
                "auditor_profile",
                "must be null or a non-empty label without control characters",
            ));
        }
        Ok(())
    }
}

fn parse_version(v: &str) -> Option<u32> {
    let digits = v.strip_prefix('v')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok().filter(|n| *n >= 1)
}

/// `project_ruleset_{project_id}.json`.
pub fn ruleset_file_name(project_id: &ProjectId) -> String {
    format!("project_ruleset_{project_id}.json")
}

impl fmt::Display for AgingThresholds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "minor issues count as major after {} runs or {} tiers",
            self.minor_issue_aging_runs_threshold, self.minor_issue_aging_tiers_threshold
        )
    }
}
