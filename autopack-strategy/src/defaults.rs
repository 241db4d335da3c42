//! The built-in category defaults of SPEC §5, in one table.
//!
//! [`BUILTIN_CATEGORIES`] holds the five high-risk kinds and the four normal categories;
//! [`FALLBACK`] is what any other category gets. Nothing else in the crate writes a
//! per-category number. A ruleset's `category_defaults` override these field by field
//! (precedence: ruleset override > built-in high-risk > built-in normal > fallback).
//!
//! Choices the spec leaves open, made here:
//! - builder modes: `scaffolding_heavy` for feature work and the fallback, `tweak_light` for
//!   docs, tests, debt cleanup and security/auth, `schema_heavy` for schema changes and
//!   `refactor_heavy` for the other high-risk kinds;
//! - CI retries come from the phase's final CI profile ([`CI_MAX_RETRIES_NORMAL`],
//!   [`CI_MAX_RETRIES_STRICT`]) unless the ruleset sets `ci_max_retries` for the category;
//! - the fallback is `medium`, CI `normal`, 3 builder / 1 auditor attempts, 500k incident
//!   tokens, auto-applied, no auditor profile, severity `minor`.

use autopack_core::budget::defaults as budget;
use autopack_core::vocabulary::{BuilderMode, CiProfile, Complexity, HighRiskKind, Severity};

/// Fully resolved defaults of one category.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryDefaults {
    /// Complexity when the plan gives none.
    pub complexity: Complexity,
    /// CI profile the category asks for (the engine may raise it to `strict`).
    pub ci_profile: CiProfile,
    /// Builder mode when the plan gives none.
    pub builder_mode: BuilderMode,
    /// Builder attempts before the Auditor is called.
    pub max_builder_attempts: u32,
    /// Auditor attempts.
    pub max_auditor_attempts: u32,
    /// Tokens one phase may spend.
    pub incident_token_cap: u64,
    /// Tier token cap multiplier for this category's phases.
    pub tier_token_cap_multiplier: f64,
    /// CI runs per phase of this category in the tier's `ci_run_cap`.
    pub tier_ci_run_cap_multiplier: f64,
    /// Minor issues tolerated per phase of this category.
    pub tier_max_minor_issues_multiplier: f64,
    /// Major issues a tier holding this category tolerates.
    pub tier_max_major_issues_tolerated: u32,
    /// Whether patches are applied without an Auditor `approve`.
    pub auto_apply: bool,
    /// The Auditor profile to request, if any.
    pub auditor_profile: Option<&'static str>,
    /// Severity of issues filed under this category by default.
    pub default_severity: Severity,
    /// CI retries; `None` means "from the CI profile".
    pub ci_max_retries: Option<u32>,
}

/// CI retries of a phase whose final profile is `normal` (SPEC §9: few retries).
pub const CI_MAX_RETRIES_NORMAL: u32 = 2;
/// CI retries of a phase whose final profile is `strict` (SPEC §9: near-zero tolerance).
pub const CI_MAX_RETRIES_STRICT: u32 = 1;
/// Default of `CompileOptions::max_cleanup_phases_per_run`.
pub const MAX_CLEANUP_PHASES_PER_RUN: u32 = 2;
/// Default of `CompileOptions::cleanup_keys_per_phase`.
pub const CLEANUP_KEYS_PER_PHASE: u32 = 10;

/// Aging thresholds `(runs, tiers)` under `normal` (SPEC §4).
pub const AGING_NORMAL: (u32, u32) = (3, 2);
/// Aging thresholds `(runs, tiers)` under `safety_critical` (SPEC §4).
pub const AGING_SAFETY_CRITICAL: (u32, u32) = (2, 1);

const fn normal(
    complexity: Complexity,
    builder_mode: BuilderMode,
    max_builder_attempts: u32,
    max_auditor_attempts: u32,
    incident_token_cap: u64,
    auto_apply: bool,
    auditor_profile: Option<&'static str>,
) -> CategoryDefaults {
    CategoryDefaults {
        complexity,
        ci_profile: CiProfile::Normal,
        builder_mode,
        max_builder_attempts,
        max_auditor_attempts,
        incident_token_cap,
        tier_token_cap_multiplier: budget::TIER_TOKEN_CAP_MULTIPLIER,
        tier_ci_run_cap_multiplier: budget::TIER_CI_RUNS_PER_PHASE,
        tier_max_minor_issues_multiplier: budget::TIER_MINOR_ISSUES_PER_PHASE_NORMAL,
        tier_max_major_issues_tolerated: budget::TIER_MAX_MAJOR_ISSUES_TOLERATED,
        auto_apply,
        auditor_profile,
        default_severity: Severity::Minor,
        ci_max_retries: None,
    }
}

const fn high_risk(
    builder_mode: BuilderMode,
    max_builder_attempts: u32,
    max_auditor_attempts: u32,
    incident_token_cap: u64,
    tier_max_minor_issues_multiplier: f64,
    auditor_profile: &'static str,
) -> CategoryDefaults {
    CategoryDefaults {
        complexity: Complexity::High,
        ci_profile: CiProfile::Strict,
        builder_mode,
        max_builder_attempts,
        max_auditor_attempts,
        incident_token_cap,
        tier_token_cap_multiplier: budget::TIER_TOKEN_CAP_MULTIPLIER,
        tier_ci_run_cap_multiplier: budget::TIER_CI_RUNS_PER_PHASE,
        tier_max_minor_issues_multiplier,
        tier_max_major_issues_tolerated: budget::TIER_MAX_MAJOR_ISSUES_TOLERATED,
        auto_apply: false,
        auditor_profile: Some(auditor_profile),
        default_severity: Severity::Major,
        ci_max_retries: None,
    }
}

/// A row of the built-in table.
#[derive(Debug)]
pub struct BuiltinCategory {
    /// The task-category name (high-risk kinds are also found under their issue name).
    pub name: &'static str,
    /// The high-risk kind, for the five dangerous categories.
    pub high_risk: Option<HighRiskKind>,
    /// The defaults.
    pub defaults: CategoryDefaults,
}

/// The built-in table of SPEC §5: five high-risk kinds, then the normal categories.
pub static BUILTIN_CATEGORIES: [BuiltinCategory; 9] = [
    BuiltinCategory {
        name: "cross_cutting_refactor",
        high_risk: Some(HighRiskKind::CrossCuttingRefactor),
        defaults: high_risk(
            BuilderMode::RefactorHeavy,
            2,
            2,
            1_000_000,
            1.0,
            "refactor_review",
        ),
    },
    BuiltinCategory {
        name: "index_registry_maintenance",
        high_risk: Some(HighRiskKind::IndexRegistryMaintenance),
        defaults: high_risk(
            BuilderMode::RefactorHeavy,
            2,
            2,
            800_000,
            1.0,
            "index_review",
        ),
    },
    BuiltinCategory {
        name: "schema_change",
        high_risk: Some(HighRiskKind::SchemaChange),
        defaults: high_risk(
            BuilderMode::SchemaHeavy,
            2,
            3,
            1_000_000,
            1.0,
            "schema_review",
        ),
    },
    BuiltinCategory {
        name: "bulk_operation",
        high_risk: Some(HighRiskKind::BulkOperation),
        defaults: high_risk(
            BuilderMode::RefactorHeavy,
            1,
            2,
            1_500_000,
            1.0,
            "bulk_review",
        ),
    },
    BuiltinCategory {
        name: "security_auth",
        high_risk: Some(HighRiskKind::SecurityAuth),
        defaults: high_risk(
            BuilderMode::TweakLight,
            2,
            3,
            800_000,
            0.5,
            "security_review",
        ),
    },
    BuiltinCategory {
        name: "feature_scaffolding",
        high_risk: None,
        defaults: normal(
            Complexity::Medium,
            BuilderMode::ScaffoldingHeavy,
            3,
            2,
            500_000,
            true,
            None,
        ),
    },
    BuiltinCategory {
        name: "docs",
        high_risk: None,
        defaults: normal(
            Complexity::Low,
            BuilderMode::TweakLight,
            2,
            1,
            200_000,
            true,
            None,
        ),
    },
    BuiltinCategory {
        name: "tests",
        high_risk: None,
        defaults: normal(
            Complexity::Low,
            BuilderMode::TweakLight,
            3,
            1,
            300_000,
            true,
            None,
        ),
    },
    BuiltinCategory {
        name: "debt_cleanup",
        high_risk: None,
        defaults: normal(
            Complexity::Medium,
            BuilderMode::TweakLight,
            2,
            1,
            400_000,
            false,
            Some("debt_cleanup_review"),
        ),
    },
];

/// What a category outside the table gets ("unknown categories get medium defaults").
pub static FALLBACK: CategoryDefaults = normal(
    Complexity::Medium,
    BuilderMode::ScaffoldingHeavy,
    3,
    1,
    500_000,
    true,
    None,
);

/// The built-in row for a category name (either name of a high-risk kind), if any.
pub fn builtin(name: &str) -> Option<&'static BuiltinCategory> {
    match HighRiskKind::from_name(name) {
        Some(kind) => Some(builtin_high_risk(kind)),
        None => BUILTIN_CATEGORIES.iter().find(|row| row.name == name),
    }
}

/// The built-in row of a high-risk kind.
pub fn builtin_high_risk(kind: HighRiskKind) -> &'static BuiltinCategory {
    let idx = HighRiskKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(0);
    // Invariant: the first five rows are the high-risk kinds in `HighRiskKind::ALL` order
    // (checked by a unit test).
    &BUILTIN_CATEGORIES[idx]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_risk_rows_follow_the_kind_order() {
        for (i, kind) in HighRiskKind::ALL.iter().enumerate() {
            assert_eq!(BUILTIN_CATEGORIES[i].high_risk, Some(*kind));
            assert_eq!(BUILTIN_CATEGORIES[i].name, kind.task_category_name());
            assert_eq!(builtin_high_risk(*kind).name, kind.task_category_name());
            let by_issue_name = builtin(kind.issue_category_name()).unwrap();
            assert_eq!(by_issue_name.name, kind.task_category_name());
        }
        assert!(
            BUILTIN_CATEGORIES[5..]
                .iter()
                .all(|r| r.high_risk.is_none())
        );
    }

    #[test]
    fn high_risk_defaults_are_safe() {
        for row in &BUILTIN_CATEGORIES[..5] {
            let d = &row.defaults;
            assert_eq!(d.complexity, Complexity::High);
            assert_eq!(d.ci_profile, CiProfile::Strict);
            assert!(!d.auto_apply);
            assert_eq!(d.default_severity, Severity::Major);
            assert!(d.auditor_profile.is_some());
            assert!(d.max_builder_attempts <= 2);
        }
        assert_eq!(
            builtin("bulk_multi_file_operation")
                .unwrap()
                .defaults
                .max_builder_attempts,
            1
        );
        assert!(builtin("data_migration").is_none());
        assert_eq!(FALLBACK.complexity, Complexity::Medium);
    }
}
