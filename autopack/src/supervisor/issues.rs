//! The issues the Supervisor files itself, from what the host reported: a flaky CI run,
//! tests that fail on the base commit too (a CI baseline), and held patches (SPEC §9,
//! §13). Each is a plain function from a report to [`SuggestedIssue`]s.

use autopack_core::ids::{IssueKey, PhaseId};
use autopack_core::message::SuggestedIssue;
use autopack_core::patch_rules::PatchHold;
use autopack_core::vocabulary::{CiProfile, IssueCategory, IssueSource, Severity};

use super::io::CiReport;
use super::wording::list_suffix;

/// A CI run that was red, then green with no change: one minor `ci_flaky` issue naming
/// the flaky tests (or, without per-test results, the failing ones).
pub(super) fn flaky_issue(phase_id: &PhaseId, report: &CiReport) -> Option<SuggestedIssue> {
    // A phase id of 128 bytes makes the long key invalid; all flaky runs then share one key.
    let key = IssueKey::new(format!("ci_flaky__{phase_id}"))
        .or_else(|_| IssueKey::new("ci_flaky"))
        .ok()?;
    Some(SuggestedIssue {
        issue_key: key,
        severity: Severity::Minor,
        source: IssueSource::Ci,
        category: IssueCategory::new("ci_flaky").ok()?,
        expected_fail: false,
        evidence_refs: if report.flaky_tests.is_empty() {
            report.failing_tests.clone()
        } else {
            report.flaky_tests.clone()
        },
        description: format!(
            "CI was red, then green with no change, in {} attempts{}",
            report.attempts,
            list_suffix("; flaky: ", &report.flaky_tests)
        ),
    })
}

/// Tests that fail on the base commit as well: not the Builder's failure, but work the
/// project still owes (SPEC §13).
pub(super) fn known_failures_issue(
    phase_id: &PhaseId,
    profile: CiProfile,
    report: &CiReport,
) -> Option<SuggestedIssue> {
    if report.known_failures.is_empty() {
        return None;
    }
    let key = IssueKey::new(format!("ci_preexisting_failures__{phase_id}"))
        .or_else(|_| IssueKey::new("ci_preexisting_failures"))
        .ok()?;
    Some(SuggestedIssue {
        issue_key: key,
        severity: Severity::Minor,
        source: IssueSource::Ci,
        category: IssueCategory::new("ci_preexisting_failure").ok()?,
        expected_fail: true,
        evidence_refs: report.known_failures.clone(),
        description: format!(
            "{} test(s) fail under {profile} CI on the base commit as well",
            report.known_failures.len()
        ),
    })
}

/// One issue per kind of hold on a patch: `test_integrity` (the tests it weakens) and
/// `protected_path` (the paths that needed an approve), evidence the paths.
pub(super) fn hold_issues(phase_id: &PhaseId, holds: &[PatchHold]) -> Vec<SuggestedIssue> {
    let mut out = Vec::new();
    for (category, test_integrity) in [("test_integrity", true), ("protected_path", false)] {
        let of_kind: Vec<&PatchHold> = holds
            .iter()
            .filter(|h| h.is_test_integrity() == test_integrity)
            .collect();
        if of_kind.is_empty() {
            continue;
        }
        let (Ok(key), Ok(category_id)) = (
            IssueKey::new(format!("{category}__{phase_id}")).or_else(|_| IssueKey::new(category)),
            IssueCategory::new(category),
        ) else {
            continue;
        };
        let mut paths: Vec<String> = of_kind.iter().map(|h| h.path().to_owned()).collect();
        paths.sort();
        paths.dedup();
        out.push(SuggestedIssue {
            issue_key: key,
            severity: Severity::Minor,
            source: IssueSource::StaticCheck,
            category: category_id,
            expected_fail: false,
            evidence_refs: paths,
            description: of_kind
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    out
}
