//! The words of the spec, with their exact serde spellings.
//!
//! Closed sets ([`Severity`], [`Complexity`], [`CiProfile`], [`SafetyProfile`],
//! [`RunScope`], [`IssueSource`], [`IssueStatus`], [`IssueState`], [`DebtStatus`]) reject
//! anything else with an error naming the value and what was expected. Open sets
//! ([`BuilderMode`], [`TaskCategory`], [`IssueCategory`]) know their common values and keep
//! any other non-empty label as it was written.
//!
//! The five high-risk kinds of work ([`HighRiskKind`]) have a task-category name and an
//! issue-category name; both are accepted wherever either is read.
//!
//! ```
//! use autopack_core::vocabulary::{HighRiskKind, RunScope, TaskCategory};
//!
//! let scope: RunScope = "multi_tier".parse().unwrap();
//! assert_eq!(scope, RunScope::MultiTier);
//! let err = "incremental".parse::<RunScope>().unwrap_err();
//! assert_eq!(err.to_string(), "unknown run_scope \"incremental\"; expected one of: multi_tier, single_tier");
//!
//! let schema: TaskCategory = "schema_contract_change".parse().unwrap();
//! assert_eq!(schema.high_risk(), Some(HighRiskKind::SchemaChange));
//! assert_eq!(schema.as_str(), "schema_change");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value outside a closed set, or an empty open label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VocabularyError {
    /// A value outside a closed set.
    #[error("unknown {field} {value:?}; expected one of: {}", expected.join(", "))]
    Unknown {
        /// The field or concept being read (`run_scope`, `severity`, …).
        field: &'static str,
        /// The rejected value.
        value: String,
        /// Every accepted spelling.
        expected: &'static [&'static str],
    },
    /// An open label that is empty or holds control characters.
    #[error(
        "invalid {field} label {value:?}: labels must be non-empty and free of control characters"
    )]
    BadLabel {
        /// The field being read (`builder_mode`, `task_category`, `category`).
        field: &'static str,
        /// The rejected value.
        value: String,
    },
}

macro_rules! closed_enum {
    (
        $(#[$doc:meta])*
        $name:ident, $field:literal {
            $( $(#[$vdoc:meta])* $variant:ident = $spelling:literal ),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        pub enum $name {
            $( $(#[$vdoc])* #[serde(rename = $spelling)] $variant, )+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every spelling, in the order of [`Self::ALL`].
            pub const SPELLINGS: &'static [&'static str] = &[$($spelling),+];
            /// The field name used in errors.
            pub const FIELD: &'static str = $field;

            /// The canonical spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $spelling),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = VocabularyError;
            fn from_str(s: &str) -> Result<Self, VocabularyError> {
                match s {
                    $($spelling => Ok($name::$variant),)+
                    _ => Err(VocabularyError::Unknown {
                        field: $field,
                        value: s.to_owned(),
                        expected: Self::SPELLINGS,
                    }),
                }
            }
        }
    };
}

closed_enum!(
    /// How bad an issue is. `Minor < Major`.
    Severity, "severity" {
        /// Tolerated within limits.
        Minor = "minor",
        /// Never tolerated in a clean tier.
        Major = "major",
    }
);

closed_enum!(
    /// How hard a phase is. `Low < Medium < High`.
    Complexity, "complexity" {
        /// Small, local work.
        Low = "low",
        /// The default.
        Medium = "medium",
        /// Broad or risky work; every high-risk phase is at least this.
        High = "high",
    }
);

closed_enum!(
    /// Which test suite the preflight gate runs (SPEC §9).
    CiProfile, "ci_profile" {
        /// Unit and integration tests of affected areas, few retries.
        Normal = "normal",
        /// Unit, integration, e2e and safety-critical tests, near-zero tolerance.
        Strict = "strict",
    }
);

closed_enum!(
    /// How cautious a run is.
    SafetyProfile, "safety_profile" {
        /// Cost-conscious; minor issues may accumulate within limits.
        Normal = "normal",
        /// Correctness first; a tier with a major issue fails the run.
        SafetyCritical = "safety_critical",
    }
);

closed_enum!(
    /// How many tiers a run takes (`run_scope`, `default_run_scope`).
    RunScope, "run_scope" {
        /// Many tiers; a blocked tier lets later tiers run (under `normal`).
        MultiTier = "multi_tier",
        /// Exactly one tier.
        SingleTier = "single_tier",
    }
);

closed_enum!(
    /// Who or what reported an issue.
    IssueSource, "source" {
        /// A failing or suspicious test.
        Test = "test",
        /// A probe run by the Builder.
        Probe = "probe",
        /// The CI gate (a flaky run, for instance).
        Ci = "ci",
        /// A linter or type checker.
        StaticCheck = "static_check",
        /// The Builder doubting its own work.
        CursorSelfDoubt = "cursor_self_doubt",
        /// The reviewing Auditor.
        Auditor = "auditor",
    }
);

closed_enum!(
    /// Where a key stands in the project backlog.
    IssueStatus, "status" {
        /// Seen, not yet old enough to force cleanup.
        Open = "open",
        /// Aged past a threshold; the next strategy schedules cleanup.
        NeedsCleanup = "needs_cleanup",
        /// Marked fixed; seeing it again is a regression.
        Resolved = "resolved",
    }
);

closed_enum!(
    /// The summary state of a phase issue file.
    IssueState, "issue_state" {
        /// No issues.
        NoIssues = "no_issues",
        /// Only minor issues.
        HasMinorIssues = "has_minor_issues",
        /// At least one major issue.
        HasMajorIssues = "has_major_issues",
    }
);

closed_enum!(
    /// A run's debt status (SPEC §6).
    DebtStatus, "debt_status" {
        /// No minor issues.
        Clean = "clean",
        /// Minor issues within the run's `max_minor_issues_total`.
        HasMinorIssues = "has_minor_issues",
        /// More minor issues than the run tolerates.
        ExcessMinorIssues = "excess_minor_issues",
    }
);

fn check_label(field: &'static str, value: &str) -> Result<(), VocabularyError> {
    if value.trim().is_empty() || value.chars().any(char::is_control) {
        return Err(VocabularyError::BadLabel {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// The five dangerous kinds of work of SPEC §5.
///
/// Each has a task-category name (used in plans) and an issue-category name (used in issue
/// records and rulesets); [`HighRiskKind::from_name`] accepts both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HighRiskKind {
    /// `cross_cutting_refactor` ↔ `cross_cutting_refactor`.
    CrossCuttingRefactor,
    /// `index_registry_maintenance` ↔ `index_registry_change`.
    IndexRegistryMaintenance,
    /// `schema_change` ↔ `schema_contract_change`.
    SchemaChange,
    /// `bulk_operation` ↔ `bulk_multi_file_operation`.
    BulkOperation,
    /// `security_auth` ↔ `security_auth_change`.
    SecurityAuth,
}

impl HighRiskKind {
    /// All five kinds.
    pub const ALL: [HighRiskKind; 5] = [
        HighRiskKind::CrossCuttingRefactor,
        HighRiskKind::IndexRegistryMaintenance,
        HighRiskKind::SchemaChange,
        HighRiskKind::BulkOperation,
        HighRiskKind::SecurityAuth,
    ];

    /// The name used as a task category in plans.
    pub const fn task_category_name(self) -> &'static str {
        match self {
            HighRiskKind::CrossCuttingRefactor => "cross_cutting_refactor",
            HighRiskKind::IndexRegistryMaintenance => "index_registry_maintenance",
            HighRiskKind::SchemaChange => "schema_change",
            HighRiskKind::BulkOperation => "bulk_operation",
            HighRiskKind::SecurityAuth => "security_auth",
        }
    }

    /// The name used as an issue category in issue records and rulesets.
    pub const fn issue_category_name(self) -> &'static str {
        match self {
            HighRiskKind::CrossCuttingRefactor => "cross_cutting_refactor",
            HighRiskKind::IndexRegistryMaintenance => "index_registry_change",
            HighRiskKind::SchemaChange => "schema_contract_change",
            HighRiskKind::BulkOperation => "bulk_multi_file_operation",
            HighRiskKind::SecurityAuth => "security_auth_change",
        }
    }

    /// The kind named by `name`, under either of its names.
    pub fn from_name(name: &str) -> Option<HighRiskKind> {
        HighRiskKind::ALL
            .into_iter()
            .find(|k| k.task_category_name() == name || k.issue_category_name() == name)
    }
}

impl fmt::Display for HighRiskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.task_category_name())
    }
}

/// The kind of work a phase does: an open label with known values.
///
/// High-risk kinds are read under either of their names and written under their
/// task-category name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskCategory {
    /// `feature_scaffolding`.
    FeatureScaffolding,
    /// `docs`.
    Docs,
    /// `tests`.
    Tests,
    /// `debt_cleanup`: phases the StrategyEngine inserts for aged issues.
    DebtCleanup,
    /// One of the five high-risk kinds.
    HighRisk(HighRiskKind),
    /// Any other label, kept as written.
    Other(String),
}

impl TaskCategory {
    /// The known normal categories and their spellings.
    pub const NORMAL: [(TaskCategory, &'static str); 4] = [
        (TaskCategory::FeatureScaffolding, "feature_scaffolding"),
        (TaskCategory::Docs, "docs"),
        (TaskCategory::Tests, "tests"),
        (TaskCategory::DebtCleanup, "debt_cleanup"),
    ];

    /// Reads a label, mapping known spellings (both names of high-risk kinds) to their
    /// variants.
    ///
    /// # Errors
    /// [`VocabularyError::BadLabel`] for an empty label or one with control characters.
    pub fn parse(label: &str) -> Result<TaskCategory, VocabularyError> {
        check_label("task_category", label)?;
        Ok(match label {
            "feature_scaffolding" => TaskCategory::FeatureScaffolding,
            "docs" => TaskCategory::Docs,
            "tests" => TaskCategory::Tests,
            "debt_cleanup" => TaskCategory::DebtCleanup,
            other => match HighRiskKind::from_name(other) {
                Some(kind) => TaskCategory::HighRisk(kind),
                None => TaskCategory::Other(other.to_owned()),
            },
        })
    }

    /// The canonical spelling.
    pub fn as_str(&self) -> &str {
        match self {
            TaskCategory::FeatureScaffolding => "feature_scaffolding",
            TaskCategory::Docs => "docs",
            TaskCategory::Tests => "tests",
            TaskCategory::DebtCleanup => "debt_cleanup",
            TaskCategory::HighRisk(kind) => kind.task_category_name(),
            TaskCategory::Other(label) => label,
        }
    }

    /// The high-risk kind, if this is one.
    pub fn high_risk(&self) -> Option<HighRiskKind> {
        match self {
            TaskCategory::HighRisk(kind) => Some(*kind),
            _ => None,
        }
    }

    /// Whether the label is one the library has defaults for.
    pub fn is_known(&self) -> bool {
        !matches!(self, TaskCategory::Other(_))
    }

    /// The issue category that issues of this kind of work are filed under: the
    /// issue-category name for high-risk kinds, the task category's own name otherwise.
    pub fn issue_category(&self) -> IssueCategory {
        match self {
            TaskCategory::HighRisk(kind) => IssueCategory(Arc::from(kind.issue_category_name())),
            other => IssueCategory(Arc::from(other.as_str())),
        }
    }
}

impl FromStr for TaskCategory {
    type Err = VocabularyError;
    fn from_str(s: &str) -> Result<Self, VocabularyError> {
        TaskCategory::parse(s)
    }
}

/// The category of an issue (`test_failure`, `schema_contract_change`, …): an open label,
/// shared like the ids (cloning it does not allocate).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IssueCategory(Arc<str>);

impl IssueCategory {
    /// Reads a label.
    ///
    /// # Errors
    /// [`VocabularyError::BadLabel`] for an empty label or one with control characters.
    pub fn new(label: impl Into<String>) -> Result<IssueCategory, VocabularyError> {
        let label = label.into();
        check_label("category", &label)?;
        Ok(IssueCategory(Arc::from(label)))
    }

    /// The label as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The high-risk kind this category names, under either of its names.
    pub fn high_risk(&self) -> Option<HighRiskKind> {
        HighRiskKind::from_name(&self.0)
    }
}

impl FromStr for IssueCategory {
    type Err = VocabularyError;
    fn from_str(s: &str) -> Result<Self, VocabularyError> {
        IssueCategory::new(s)
    }
}

/// How a Builder should approach a phase: an open label with four known values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BuilderMode {
    /// `tweak_light`: one or two files, small edits.
    TweakLight,
    /// `scaffolding_heavy`: new files and structure.
    ScaffoldingHeavy,
    /// `refactor_heavy`: wide mechanical edits.
    RefactorHeavy,
    /// `schema_heavy`: data-contract changes.
    SchemaHeavy,
    /// Any other label, kept as written.
    Other(String),
}

impl BuilderMode {
    /// The known labels.
    pub const KNOWN: [&'static str; 4] = [
        "tweak_light",
        "scaffolding_heavy",
        "refactor_heavy",
        "schema_heavy",
    ];

    /// Reads a label.
    ///
    /// # Errors
    /// [`VocabularyError::BadLabel`] for an empty label or one with control characters.
    pub fn parse(label: &str) -> Result<BuilderMode, VocabularyError> {
        check_label("builder_mode", label)?;
        Ok(match label {
            "tweak_light" => BuilderMode::TweakLight,
            "scaffolding_heavy" => BuilderMode::ScaffoldingHeavy,
            "refactor_heavy" => BuilderMode::RefactorHeavy,
            "schema_heavy" => BuilderMode::SchemaHeavy,
            other => BuilderMode::Other(other.to_owned()),
        })
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        match self {
            BuilderMode::TweakLight => "tweak_light",
            BuilderMode::ScaffoldingHeavy => "scaffolding_heavy",
            BuilderMode::RefactorHeavy => "refactor_heavy",
            BuilderMode::SchemaHeavy => "schema_heavy",
            BuilderMode::Other(label) => label,
        }
    }

    /// Whether the label is one of the four known values.
    pub fn is_known(&self) -> bool {
        !matches!(self, BuilderMode::Other(_))
    }
}

impl FromStr for BuilderMode {
    type Err = VocabularyError;
    fn from_str(s: &str) -> Result<Self, VocabularyError> {
        BuilderMode::parse(s)
    }
}

macro_rules! open_label_serde {
    ($name:ident, $ctor:path, $desc:literal, [$($known:literal),*]) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                crate::json::deserialize_via_str(deserializer, concat!("a ", stringify!($name), " label"), $ctor)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "minLength": 1,
                    "description": $desc,
                    "examples": [$($known),*],
                })
            }
        }
    };
}

fn issue_category_from(s: &str) -> Result<IssueCategory, VocabularyError> {
    IssueCategory::new(s)
}

open_label_serde!(
    TaskCategory,
    TaskCategory::parse,
    "An open task-category label. High-risk kinds are accepted under their task-category or issue-category names.",
    [
        "feature_scaffolding",
        "docs",
        "tests",
        "debt_cleanup",
        "cross_cutting_refactor",
        "index_registry_maintenance",
        "schema_change",
        "bulk_operation",
        "security_auth"
    ]
);
open_label_serde!(
    BuilderMode,
    BuilderMode::parse,
    "An open builder-mode label.",
    [
        "tweak_light",
        "scaffolding_heavy",
        "refactor_heavy",
        "schema_heavy"
    ]
);
open_label_serde!(
    IssueCategory,
    issue_category_from,
    "An open issue-category label.",
    [
        "test_failure",
        "cross_cutting_refactor",
        "index_registry_change",
        "schema_contract_change",
        "bulk_multi_file_operation",
        "security_auth_change"
    ]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_enums_round_trip_their_spellings() {
        for s in Severity::ALL {
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<Severity>(&json).unwrap(), *s);
            assert_eq!(s.as_str().parse::<Severity>().unwrap(), *s);
        }
        assert_eq!(SafetyProfile::SafetyCritical.as_str(), "safety_critical");
        assert_eq!(IssueSource::CursorSelfDoubt.as_str(), "cursor_self_doubt");
        assert_eq!(IssueStatus::NeedsCleanup.as_str(), "needs_cleanup");
        assert_eq!(
            DebtStatus::ExcessMinorIssues.as_str(),
            "excess_minor_issues"
        );
        assert_eq!(IssueState::HasMajorIssues.as_str(), "has_major_issues");
        assert_eq!(CiProfile::Strict.to_string(), "strict");
    }

    #[test]
    fn orders_follow_the_spec() {
        assert!(Severity::Minor < Severity::Major);
        assert!(Complexity::Low < Complexity::Medium && Complexity::Medium < Complexity::High);
    }

    #[test]
    fn unknown_closed_values_name_value_and_expectation() {
        let err = "incremental".parse::<RunScope>().unwrap_err();
        assert_eq!(
            err,
            VocabularyError::Unknown {
                field: "run_scope",
                value: "incremental".into(),
                expected: &["multi_tier", "single_tier"],
            }
        );
        let err = serde_json::from_str::<Severity>("\"critical\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("critical") && err.contains("minor") && err.contains("major"),
            "{err}"
        );
        let err = serde_json::from_str::<Complexity>("\"HIGH\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("HIGH"), "{err}");
    }

    #[test]
    fn high_risk_kinds_map_both_ways() {
        let pairs = [
            ("cross_cutting_refactor", "cross_cutting_refactor"),
            ("index_registry_maintenance", "index_registry_change"),
            ("schema_change", "schema_contract_change"),
            ("bulk_operation", "bulk_multi_file_operation"),
            ("security_auth", "security_auth_change"),
        ];
        for (task, issue) in pairs {
            let a = HighRiskKind::from_name(task).unwrap();
            let b = HighRiskKind::from_name(issue).unwrap();
            assert_eq!(a, b);
            assert_eq!(a.task_category_name(), task);
            assert_eq!(a.issue_category_name(), issue);
            let cat = TaskCategory::parse(issue).unwrap();
            assert_eq!(cat.high_risk(), Some(a));
            assert_eq!(cat.issue_category().as_str(), issue);
            assert_eq!(IssueCategory::new(task).unwrap().high_risk(), Some(a));
        }
        assert_eq!(HighRiskKind::from_name("docs"), None);
    }

    #[test]
    fn open_labels_keep_unknown_values() {
        let cat: TaskCategory = serde_json::from_str("\"data_migration\"").unwrap();
        assert_eq!(cat, TaskCategory::Other("data_migration".into()));
        assert!(!cat.is_known());
        assert_eq!(serde_json::to_string(&cat).unwrap(), "\"data_migration\"");
        let mode: BuilderMode = serde_json::from_str("\"tweak_light\"").unwrap();
        assert_eq!(mode, BuilderMode::TweakLight);
        let mode: BuilderMode = serde_json::from_str("\"yolo\"").unwrap();
        assert_eq!(mode.as_str(), "yolo");
        assert!(!mode.is_known());
        // High-risk kinds are written under their task-category names.
        let cat: TaskCategory = serde_json::from_str("\"security_auth_change\"").unwrap();
        assert_eq!(serde_json::to_string(&cat).unwrap(), "\"security_auth\"");
    }

    #[test]
    fn open_labels_reject_empty_and_control() {
        assert!(TaskCategory::parse("").is_err());
        assert!(BuilderMode::parse("  ").is_err());
        let err = IssueCategory::new("a\u{0}").unwrap_err();
        assert!(matches!(
            err,
            VocabularyError::BadLabel {
                field: "category",
                ..
            }
        ));
        assert!(serde_json::from_str::<TaskCategory>("\"\"").is_err());
    }
}
