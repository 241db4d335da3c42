//! How the Supervisor words what happened, in failure reasons and issue descriptions:
//! bounded tails, lists and a Builder's own account.

use autopack_core::message::{BuilderResult, BuilderStatus};

/// Longest output tail quoted in an attempt's failure reason.
const TAIL_IN_REASON: usize = 400;

pub(super) fn describe_builder_failure(result: &BuilderResult) -> String {
    let mut out = String::new();
    let notes = result.notes.trim();
    if !notes.is_empty() {
        out.push_str(": ");
        out.push_str(&truncate(notes, TAIL_IN_REASON));
    }
    out.push_str(&list_suffix("; failing: ", &result.failing_tests));
    out
}

pub(super) fn builder_signature(result: &BuilderResult) -> String {
    let mut parts: Vec<String> = result.failing_tests.clone();
    parts.extend(
        result
            .suggested_issues
            .iter()
            .map(|i| i.issue_key.to_string()),
    );
    parts.sort();
    parts.dedup();
    format!("builder:{}", parts.join(","))
}

pub(super) fn status_name(status: BuilderStatus) -> &'static str {
    match status {
        BuilderStatus::Success => "success",
        BuilderStatus::Failed => "failed",
        BuilderStatus::NeedsReview => "needs_review",
    }
}

pub(super) fn list_suffix(prefix: &str, items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!("{prefix}{}", items.join(", "))
    }
}

pub(super) fn tail_suffix(tail: &str) -> String {
    let tail = tail.trim();
    if tail.is_empty() {
        String::new()
    } else {
        format!("; output tail: {}", truncate_tail(tail, TAIL_IN_REASON))
    }
}

pub(super) fn colon(notes: &str) -> String {
    if notes.is_empty() {
        String::new()
    } else {
        format!(": {notes}")
    }
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

pub(super) fn truncate_tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}
