//! What the engine needs to know about the project backlog.
//!
//! The issue ledger (`autopack-issues`) owns the backlog; this crate reads only a small
//! view of it, so that the two can evolve separately. [`BacklogView::from_project_backlog_json`]
//! reads the SPEC §4 `project_issue_backlog.json` shape; fields this crate does not need
//! (`last_seen_at`, `seen_in_tiers`, …) are accepted and ignored, since the ledger owns
//! that format.

use std::collections::BTreeMap;

use autopack_core::ids::IssueKey;
use autopack_core::json::{self, JsonError};
use autopack_core::vocabulary::{IssueCategory, IssueStatus, Severity};
use serde::Deserialize;

/// One backlog key, as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacklogEntry {
    /// The issue's stable key.
    pub issue_key: IssueKey,
    /// Its category.
    pub category: IssueCategory,
    /// Its recorded severity (before any aging upgrade).
    pub base_severity: Severity,
    /// `open`, `needs_cleanup` or `resolved`.
    pub status: IssueStatus,
    /// Distinct runs that saw the key.
    pub age_in_runs: u32,
    /// Distinct tiers that saw the key.
    pub age_in_tiers: u32,
}

/// The backlog keys, sorted by key, one entry per key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BacklogView {
    entries: Vec<BacklogEntry>,
}

impl BacklogView {
    /// Builds a view from entries in any order. A key given twice is merged: the higher
    /// severity, the larger ages, and the more urgent status (`needs_cleanup` > `open` >
    /// `resolved`), so the result does not depend on the input order.
    pub fn new(entries: impl IntoIterator<Item = BacklogEntry>) -> BacklogView {
        let mut entries: Vec<BacklogEntry> = entries.into_iter().collect();
        entries.sort_by(|a, b| a.issue_key.cmp(&b.issue_key));
        let mut out: Vec<BacklogEntry> = Vec::with_capacity(entries.len());
        for e in entries {
            match out.last_mut() {
                Some(last) if last.issue_key == e.issue_key => {
                    last.base_severity = last.base_severity.max(e.base_severity);
                    last.age_in_runs = last.age_in_runs.max(e.age_in_runs);
                    last.age_in_tiers = last.age_in_tiers.max(e.age_in_tiers);
                    if status_rank(e.status) > status_rank(last.status) {
                        last.status = e.status;
                    }
                    if e.category > last.category {
                        last.category = e.category;
                    }
                }
                _ => out.push(e),
            }
        }
        BacklogView { entries: out }
    }

    /// An empty backlog.
    pub fn empty() -> BacklogView {
        BacklogView::default()
    }

    /// Reads the `project_issue_backlog.json` shape of SPEC §4
    /// (`{"project_id": …, "issues_by_key": {key: {category, base_severity, age_in_runs,
    /// age_in_tiers, status, …}}}`); `source` is named in errors.
    ///
    /// # Errors
    /// A [`JsonError`] with the JSON path (an invalid key, an unknown status, …).
    pub fn from_project_backlog_json(text: &str, source: &str) -> Result<BacklogView, JsonError> {
        let file: BacklogFile = json::from_str(text, source)?;
        Ok(BacklogView::new(file.issues_by_key.into_iter().map(
            |(issue_key, e)| BacklogEntry {
                issue_key,
                category: e.category,
                base_severity: e.base_severity,
                status: e.status,
                age_in_runs: e.age_in_runs,
                age_in_tiers: e.age_in_tiers,
            },
        )))
    }

    /// The entries, sorted by key.
    pub fn entries(&self) -> &[BacklogEntry] {
        &self.entries
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the backlog holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn status_rank(s: IssueStatus) -> u8 {
    match s {
        IssueStatus::Resolved => 0,
        IssueStatus::Open => 1,
        IssueStatus::NeedsCleanup => 2,
    }
}

#[derive(Deserialize)]
struct BacklogFile {
    #[serde(default)]
    #[allow(dead_code)]
    project_id: Option<String>,
    #[serde(default)]
    issues_by_key: BTreeMap<IssueKey, BacklogFileEntry>,
}

#[derive(Deserialize)]
struct BacklogFileEntry {
    category: IssueCategory,
    base_severity: Severity,
    #[serde(default)]
    age_in_runs: u32,
    #[serde(default)]
    age_in_tiers: u32,
    #[serde(default = "open")]
    status: IssueStatus,
}

fn open() -> IssueStatus {
    IssueStatus::Open
}
