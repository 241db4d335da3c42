//! The playbook JSON views of the ledger (SPEC §4), materialised on demand.
//!
//! Field names and enum spellings are exactly those of the spec and the first
//! implementation. Collections are ordered deterministically: maps are [`BTreeMap`]s keyed
//! by issue key, issue lists are sorted by issue key, tier lists by id, phase lists by
//! phase index then id. A few fields beyond the spec's list are written and documented on
//! each type; readers accept files without them.

use std::collections::BTreeMap;

use autopack_core::ids::{IssueKey, PhaseId, ProjectId, RunId, TierId};
use autopack_core::vocabulary::{
    Complexity, IssueCategory, IssueSource, IssueState, IssueStatus, Severity, TaskCategory,
};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Distinct keys by effective severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct IssueCounts {
    /// Distinct keys whose effective severity is `minor`.
    pub minor: u32,
    /// Distinct keys whose effective severity is `major`.
    pub major: u32,
}

impl IssueCounts {
    /// Counts one more key of this effective severity.
    pub(crate) fn add(&mut self, severity: Severity) {
        match severity {
            Severity::Minor => self.minor = self.minor.saturating_add(1),
            Severity::Major => self.major = self.major.saturating_add(1),
        }
    }

    /// All distinct keys.
    pub fn total(&self) -> u32 {
        self.minor.saturating_add(self.major)
    }

    /// `no_issues`, `has_minor_issues` or `has_major_issues`.
    pub fn issue_state(&self) -> IssueState {
        if self.major > 0 {
            IssueState::HasMajorIssues
        } else if self.minor > 0 {
            IssueState::HasMinorIssues
        } else {
            IssueState::NoIssues
        }
    }
}

/// One issue of a phase issue file (SPEC §4: the issue record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRecord {
    /// The stable key of the logical problem.
    pub issue_key: IssueKey,
    /// The highest severity reported for the key in this phase.
    pub severity: Severity,
    /// The key's effective severity in this run (the same in every phase of the run).
    pub effective_severity: Severity,
    /// Who reported it first in this phase.
    pub source: IssueSource,
    /// The issue category.
    pub category: IssueCategory,
    /// The phase's task category.
    pub task_category: TaskCategory,
    /// The phase's complexity.
    pub complexity: Complexity,
    /// Whether the first report in this phase said the failure was expected.
    pub expected_fail: bool,
    /// Reports of this key in this phase.
    pub occurrence_count: u64,
    /// The first run of the project that saw the key (`null` when an imported backlog did
    /// not say).
    pub first_seen_run: Option<RunId>,
    /// The run this phase belongs to.
    pub last_seen_run: RunId,
    /// Evidence (test ids, log paths), distinct, in the order first reported.
    pub evidence_refs: Vec<String>,
}

/// A phase issue file, `issues/phase_{idx:02}_{phase_id}_issues.json` (SPEC §4.1).
///
/// Beyond the spec's fields it names its `run_id` and `phase_index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseIssueFile {
    /// The run (extra field).
    pub run_id: RunId,
    /// The phase.
    pub phase_id: PhaseId,
    /// The phase's index in the plan (extra field).
    pub phase_index: u32,
    /// The phase's tier.
    pub tier_id: TierId,
    /// Distinct issues, sorted by key.
    pub issues: Vec<IssueRecord>,
    /// Distinct keys whose effective severity is minor.
    pub minor_issue_count: u32,
    /// Distinct keys whose effective severity is major.
    pub major_issue_count: u32,
    /// Summary state.
    pub issue_state: IssueState,
}

/// One key of a run issue index (SPEC §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunIssueEntry {
    /// The issue category.
    pub category: IssueCategory,
    /// The highest severity reported in the run.
    pub severity: Severity,
    /// The effective severity in the run: at least `severity`, and `major` when the key
    /// was already `needs_cleanup` (or once reported `major`) when the run first saw it.
    pub effective_severity: Severity,
    /// The smallest phase index that saw the key.
    pub first_phase_index: u32,
    /// The largest phase index that saw the key.
    pub last_phase_index: u32,
    /// Reports in the run.
    pub occurrence_count: u64,
    /// Tiers of the run that saw the key, sorted.
    pub seen_in_tiers: Vec<TierId>,
    /// Phases of the run that saw the key, by phase index.
    pub seen_in_phases: Vec<PhaseId>,
}

/// The run issue index, `{run_id}/run_issue_index.json` (SPEC §4.2).
///
/// Beyond `issues_by_key` it names its `run_id` and the run's distinct counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunIssueIndex {
    /// The run.
    pub run_id: RunId,
    /// Every key the run saw.
    pub issues_by_key: BTreeMap<IssueKey, RunIssueEntry>,
    /// Distinct keys whose effective severity is minor (extra field).
    pub minor_issue_count: u32,
    /// Distinct keys whose effective severity is major (extra field).
    pub major_issue_count: u32,
}

/// A tier of a run: tiers of different runs are different tiers.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct TierSighting {
    /// The run.
    pub run_id: RunId,
    /// The tier within that run.
    pub tier_id: TierId,
}

/// One key of the project backlog (SPEC §4.3).
///
/// Extra fields: `occurrence_count` and `regression_count`. Files of the first
/// implementation lack them and `first_seen_run_id`; they still load (see
/// [`crate::Ledger::from_snapshot`] for how ages continue). Their `seen_in_tiers` lists
/// tier ids alone (SPEC §4.3's list of strings); each is read as a tier of the entry's
/// `last_seen_run_id` — the run is not recorded there, and only the tier id counts
/// towards `age_in_tiers` — and written back in our form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, from = "wire::BacklogEntry")]
pub struct BacklogEntry {
    /// The issue category.
    pub category: IssueCategory,
    /// The highest severity ever reported (upgraded, never downgraded).
    pub base_severity: Severity,
    /// Distinct runs that saw the key.
    pub age_in_runs: u32,
    /// Distinct tier ids that saw the key (the same tier in several runs counts once).
    pub age_in_tiers: u32,
    /// The first run that saw the key; `null` when an imported file did not say.
    #[serde(default)]
    pub first_seen_run_id: Option<RunId>,
    /// The last run that saw the key.
    pub last_seen_run_id: RunId,
    /// When the key was last seen, RFC 3339 UTC (naive ISO accepted on input, as UTC).
    #[serde(with = "crate::time")]
    #[schemars(with = "DateTime<Utc>")]
    pub last_seen_at: DateTime<Utc>,
    /// The tiers that saw the key, sorted. Imported files may list fewer tiers than
    /// `age_in_tiers` counts.
    #[serde(default)]
    pub seen_in_tiers: Vec<TierSighting>,
    /// `open`, `needs_cleanup` or `resolved`.
    pub status: IssueStatus,
    /// Reports across all runs (extra field; for imported files, a lower bound).
    #[serde(default)]
    pub occurrence_count: u64,
    /// Times a resolved key was seen again (extra field).
    #[serde(default)]
    pub regression_count: u32,
}

/// What a backlog entry is read from: ours, or the first implementation's, whose
/// `seen_in_tiers` names tiers without their runs.
mod wire {
    use super::*;

    /// A sighting as written: ours, or a bare tier id.
    #[derive(Deserialize, JsonSchema)]
    #[serde(untagged)]
    pub(super) enum Sighting {
        Ours(TierSighting),
        TierOnly(TierId),
    }

    /// [`super::BacklogEntry`] with either form of sighting.
    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub(super) struct BacklogEntry {
        category: IssueCategory,
        base_severity: Severity,
        age_in_runs: u32,
        age_in_tiers: u32,
        #[serde(default)]
        first_seen_run_id: Option<RunId>,
        last_seen_run_id: RunId,
        #[serde(with = "crate::time")]
        #[schemars(with = "DateTime<Utc>")]
        last_seen_at: DateTime<Utc>,
        #[serde(default)]
        seen_in_tiers: Vec<Sighting>,
        status: IssueStatus,
        #[serde(default)]
        occurrence_count: u64,
        #[serde(default)]
        regression_count: u32,
    }

    impl From<BacklogEntry> for super::BacklogEntry {
        fn from(w: BacklogEntry) -> super::BacklogEntry {
            let mut seen_in_tiers: Vec<TierSighting> = w
                .seen_in_tiers
                .into_iter()
                .map(|s| match s {
                    Sighting::Ours(s) => s,
                    Sighting::TierOnly(tier_id) => TierSighting {
                        run_id: w.last_seen_run_id.clone(),
                        tier_id,
                    },
                })
                .collect();
            seen_in_tiers.sort();
            seen_in_tiers.dedup();
            super::BacklogEntry {
                category: w.category,
                base_severity: w.base_severity,
                age_in_runs: w.age_in_runs,
                age_in_tiers: w.age_in_tiers,
                first_seen_run_id: w.first_seen_run_id,
                last_seen_run_id: w.last_seen_run_id,
                last_seen_at: w.last_seen_at,
                seen_in_tiers,
                status: w.status,
                occurrence_count: w.occurrence_count,
                regression_count: w.regression_count,
            }
        }
    }
}

/// The project backlog, `.autonomous_runs/project_issue_backlog.json` (SPEC §4.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectBacklog {
    /// The project, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
    /// Every key the project has seen.
    #[serde(default)]
    pub issues_by_key: BTreeMap<IssueKey, BacklogEntry>,
}

impl ProjectBacklog {
    /// Reads a backlog (canonical or first-implementation form), naming `source` and the
    /// JSON path in any error.
    ///
    /// # Errors
    /// A [`autopack_core::json::JsonError`].
    pub fn from_json(
        text: &str,
        source: &str,
    ) -> Result<ProjectBacklog, autopack_core::json::JsonError> {
        autopack_core::json::from_str(text, source)
    }

    /// The canonical JSON text: pretty-printed, keys in order, RFC 3339 timestamps.
    pub fn to_json(&self) -> String {
        to_pretty_json(self)
    }
}

/// Pretty JSON with a trailing newline. Serialising these types cannot fail (string keys,
/// no non-finite floats); an empty string is returned if it somehow did.
pub(crate) fn to_pretty_json<T: Serialize>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(mut text) => {
            text.push('\n');
            text
        }
        Err(_) => String::new(),
    }
}

impl RunIssueIndex {
    /// The canonical JSON text.
    pub fn to_json(&self) -> String {
        to_pretty_json(self)
    }
}

impl PhaseIssueFile {
    /// The canonical JSON text.
    pub fn to_json(&self) -> String {
        to_pretty_json(self)
    }
}
