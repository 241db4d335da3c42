//! The pieces every rendering shares: key/value rows, timings, budget and history
//! tables, the phase table, and cell, text and number formatting.

use std::fmt::Write as _;

use autopack_core::budget::{
    PhaseCaps, PhaseUsage, RunCaps, RunUsage, TierBreach, TierCaps, TierUsage,
};
use autopack_core::ids::{PhaseId, TierId};
use autopack_core::lifecycle::{Cleanliness, PhaseState, RunState};
use autopack_core::record::{AttemptRecord, CiRecord, PhaseRecord, RunRecord, StateChange};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

pub(super) fn outcome(state: RunState) -> &'static str {
    if state == RunState::DoneSuccess {
        "succeeded"
    } else if state.is_terminal() {
        "failed"
    } else {
        "in progress"
    }
}

pub(super) fn row(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "| {key} | {value} |");
}

pub(super) fn timing_rows(
    out: &mut String,
    started: Option<DateTime<Utc>>,
    finished: Option<DateTime<Utc>>,
) {
    row(
        out,
        "Started",
        &started.map_or_else(|| "(not started)".to_owned(), |t| ts(&t)),
    );
    row(
        out,
        "Finished",
        &finished.map_or_else(|| "(not finished)".to_owned(), |t| ts(&t)),
    );
    if let (Some(start), Some(end)) = (started, finished) {
        row(out, "Duration", &duration(end - start));
    }
}

pub(super) fn finished<S: Copy>(
    history: &[StateChange<S>],
    terminal: impl Fn(S) -> bool,
) -> Option<DateTime<Utc>> {
    history.last().filter(|c| terminal(c.state)).map(|c| c.at)
}

pub(super) fn ts(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub(super) fn duration(d: chrono::TimeDelta) -> String {
    let secs = d.num_seconds();
    if secs < 0 {
        return format!("-{}", duration(-d));
    }
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// A state history of more than this many entries (a run of many phases enters several
/// states per phase) shows its first [`HISTORY_HEAD`] and last [`HISTORY_TAIL`] entries;
/// the run's journal holds every input.
pub const SUMMARY_HISTORY_ROWS: usize = 1_000;
/// Entries shown from the start of a long history.
pub const HISTORY_HEAD: usize = 100;
/// Entries shown from the end of a long history.
pub const HISTORY_TAIL: usize = 400;

pub(super) fn history_table<S: std::fmt::Display>(out: &mut String, history: &[StateChange<S>]) {
    if history.is_empty() {
        let _ = writeln!(out, "No state changes recorded.");
        return;
    }
    let _ = writeln!(out, "| # | State | At | Time in state |");
    let _ = writeln!(out, "|---:|---|---|---|");
    let row = |out: &mut String, i: usize| {
        let change = &history[i];
        let spent = history
            .get(i + 1)
            .map_or_else(|| "—".to_owned(), |next| duration(next.at - change.at));
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {spent} |",
            i + 1,
            change.state,
            ts(&change.at)
        );
    };
    if history.len() <= SUMMARY_HISTORY_ROWS {
        (0..history.len()).for_each(|i| row(out, i));
        return;
    }
    let tail = history.len() - HISTORY_TAIL;
    (0..HISTORY_HEAD).for_each(|i| row(out, i));
    let _ = writeln!(
        out,
        "| … | {} state changes (#{} to #{}) not shown | | |",
        int((tail - HISTORY_HEAD) as u64),
        HISTORY_HEAD + 1,
        tail
    );
    (tail..history.len()).for_each(|i| row(out, i));
}

pub(super) fn status(used: u128, cap: u128) -> &'static str {
    if used > cap { "**exceeded**" } else { "ok" }
}

pub(super) fn budget_row(
    out: &mut String,
    name: &str,
    used: impl Into<u128> + Copy,
    cap: impl Into<u128> + Copy,
) {
    let (u, c) = (used.into(), cap.into());
    let _ = writeln!(
        out,
        "| {name} | {} | {} | {} |",
        int(u),
        int(c),
        status(u, c)
    );
}

pub(super) fn run_budget_table(out: &mut String, caps: &RunCaps, usage: &RunUsage) {
    let _ = writeln!(out, "| Budget | Used | Cap | Status |\n|---|---:|---:|---|");
    budget_row(out, "Tokens", usage.tokens, caps.token_cap);
    budget_row(out, "Phases", usage.phases, caps.max_phases);
    budget_row(
        out,
        "Duration (minutes)",
        usage.elapsed_minutes,
        caps.max_duration_minutes,
    );
    budget_row(
        out,
        "Distinct minor issues",
        usage.minor_issues,
        caps.max_minor_issues_total,
    );
    let _ = writeln!(out, "| CI runs | {} | — | — |", int(usage.ci_runs));
}

/// The tier's budgets; `breaches` (the tier's) mark a cap that was spent without being
/// exceeded (the CI runs a patch found none of).
pub(super) fn tier_budget_table(
    out: &mut String,
    caps: &TierCaps,
    usage: &TierUsage,
    breaches: &[TierBreach],
) {
    let _ = writeln!(out, "| Budget | Used | Cap | Status |\n|---|---:|---:|---|");
    budget_row(out, "Tokens", usage.tokens, caps.token_cap);
    if breaches
        .iter()
        .any(|b| matches!(b, TierBreach::CiRunsUsedUp { .. }))
        && usage.ci_runs <= caps.ci_run_cap
    {
        let _ = writeln!(
            out,
            "| CI runs | {} | {} | **used up** |",
            int(usage.ci_runs),
            int(caps.ci_run_cap)
        );
    } else {
        budget_row(out, "CI runs", usage.ci_runs, caps.ci_run_cap);
    }
    budget_row(
        out,
        "Distinct minor issues",
        usage.minor_issues,
        caps.max_minor_issues_tolerated,
    );
    budget_row(
        out,
        "Distinct major issues",
        usage.major_issues,
        caps.max_major_issues_tolerated,
    );
}

pub(super) fn phase_budget_table(out: &mut String, caps: &PhaseCaps, usage: &PhaseUsage) {
    let _ = writeln!(out, "| Budget | Used | Cap | Status |\n|---|---:|---:|---|");
    budget_row(
        out,
        "Builder attempts",
        usage.builder_attempts,
        caps.max_builder_attempts,
    );
    budget_row(
        out,
        "Auditor attempts",
        usage.auditor_attempts,
        caps.max_auditor_attempts,
    );
    budget_row(
        out,
        "Tokens (incident cap)",
        usage.tokens,
        caps.incident_token_cap,
    );
    let _ = writeln!(out, "| CI runs | {} | — | — |", int(usage.ci_runs));
}

pub(super) fn phase_table<'a>(
    out: &mut String,
    phases: impl Iterator<Item = &'a PhaseRecord>,
    with_tier: bool,
) {
    let tier_head = if with_tier { " Tier |" } else { "" };
    let tier_rule = if with_tier { "---|" } else { "" };
    let _ = writeln!(
        out,
        "| # | Phase |{tier_head} Name | Category | Complexity | State | Attempts | Tokens | CI runs | Minor | Major | Summary |"
    );
    let _ = writeln!(
        out,
        "|---|---|{tier_rule}---|---|---|---|---:|---:|---:|---:|---:|---|"
    );
    for p in phases {
        let tier = if with_tier {
            format!(" `{}` |", p.tier_id)
        } else {
            String::new()
        };
        let file = format!("phase_{:02}_{}.md", p.phase_index, p.phase_id);
        let link = if with_tier {
            format!("phases/{file}")
        } else {
            format!("../phases/{file}")
        };
        let _ = writeln!(
            out,
            "| {:02} | `{}` |{tier} {} | {} | {} | `{}` | {} | {} | {} | {} | {} | [{file}]({link}) |",
            p.phase_index,
            p.phase_id,
            cell(&p.name),
            cell(p.task_category.as_str()),
            p.complexity,
            p.state,
            p.attempts.len(),
            int(p.usage.tokens),
            int(p.usage.ci_runs),
            int(p.minor_issues),
            int(p.major_issues),
        );
    }
}

/// A summary lists every phase when it has at most this many. A larger run or tier lists
/// its phases' counts by state and only the phases that are neither complete nor queued
/// (in progress, failed, skipped): the first this many of them. So a checkpoint of a
/// 100,000-phase run rewrites summaries of bounded size.
pub const SUMMARY_PHASE_ROWS: usize = 1_000;

/// Bytes to reserve for a summary with `tiers` tier rows and `phases` phase rows.
pub(super) fn summary_capacity(tiers: usize, phases: usize) -> usize {
    4096 + 200 * tiers + 200 * phases
}

/// The phases of a run or tier too large to list: counts by state, then the phases that
/// are neither complete nor queued (at most [`SUMMARY_PHASE_ROWS`]); `elsewhere` says
/// where the rest is.
pub(super) fn phase_digest<'a>(
    out: &mut String,
    phases: impl Iterator<Item = &'a PhaseRecord>,
    total: usize,
    with_tier: bool,
    elsewhere: &str,
) {
    const ORDER: [PhaseState; 8] = [
        PhaseState::Complete,
        PhaseState::Executing,
        PhaseState::Gate,
        PhaseState::CiRunning,
        PhaseState::Retry,
        PhaseState::Failed,
        PhaseState::Skipped,
        PhaseState::Queued,
    ];
    let mut counts = [0u64; ORDER.len()];
    let mut listed: Vec<&PhaseRecord> = Vec::new();
    let mut unlisted = 0u64;
    for phase in phases {
        if let Some(i) = ORDER.iter().position(|s| *s == phase.state) {
            counts[i] += 1;
        }
        if phase.state != PhaseState::Complete && phase.state != PhaseState::Queued {
            if listed.len() < SUMMARY_PHASE_ROWS {
                listed.push(phase);
            } else {
                unlisted += 1;
            }
        }
    }
    let _ = write!(out, "{} phases:", int(total as u64));
    let mut first = true;
    for (state, n) in ORDER.iter().zip(counts) {
        if n > 0 {
            let _ = write!(out, "{} {} `{state}`", if first { "" } else { "," }, int(n));
            first = false;
        }
    }
    let _ = writeln!(
        out,
        ".\n\nWith more than {} phases, this table lists only the phases that are neither \
         complete nor queued (at most {}); {elsewhere}.\n",
        int(SUMMARY_PHASE_ROWS as u64),
        int(SUMMARY_PHASE_ROWS as u64),
    );
    if listed.is_empty() {
        let _ = writeln!(out, "No phase is in progress, failed or skipped.\n");
        return;
    }
    phase_table(out, listed.into_iter(), with_tier);
    if unlisted > 0 {
        let _ = writeln!(out, "\n… and {} more not listed here.", int(unlisted));
    }
    out.push('\n');
}

pub(super) fn attempts_table(out: &mut String, attempts: &[AttemptRecord]) {
    if attempts.is_empty() {
        let _ = writeln!(out, "No attempts.");
        return;
    }
    let _ = writeln!(out, "| Role | # | Outcome | Tokens | At | Reason |");
    let _ = writeln!(out, "|---|---:|---|---:|---|---|");
    for a in attempts {
        let role = serde_plain(&a.role);
        let outcome = serde_plain(&a.outcome);
        let reason = if a.reason.is_empty() {
            "—".to_owned()
        } else {
            cell(&a.reason)
        };
        let _ = writeln!(
            out,
            "| {role} | {} | {outcome} | {} | {} | {reason} |",
            a.number,
            int(a.tokens),
            ts(&a.at)
        );
    }
}

pub(super) fn ci_table(out: &mut String, runs: &[CiRecord]) {
    if runs.is_empty() {
        let _ = writeln!(out, "No CI runs.");
        return;
    }
    let _ = writeln!(out, "| # | Profile | Verdict | Attempts | At |");
    let _ = writeln!(out, "|---:|---|---|---:|---|");
    for (i, r) in runs.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            i + 1,
            r.profile,
            serde_plain(&r.verdict),
            r.attempts,
            ts(&r.at)
        );
    }
}

/// The serde spelling of a unit enum variant (`builder`, `red`, ...).
pub(super) fn serde_plain<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

pub(super) fn cleanliness(c: Option<Cleanliness>) -> &'static str {
    c.map_or("—", Cleanliness::as_str)
}

pub(super) fn tier_name_suffix(run: &RunRecord, tier: &TierId) -> String {
    run.tier(tier)
        .map_or_else(String::new, |t| format!(" ({})", text(&t.name)))
}

pub(super) fn phase_name_suffix(run: &RunRecord, phase: &PhaseId) -> String {
    run.phases()
        .find(|p| &p.phase_id == phase)
        .map_or_else(String::new, |p| format!(" ({})", text(&p.name)))
}

/// Free text in Markdown: control characters dropped, newlines kept.
pub(super) fn text(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect()
}

/// Text for a table cell: one line, `|` escaped, control characters dropped.
pub(super) fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// An integer with thousands separators.
pub(super) fn int(n: impl Into<u128>) -> String {
    let digits = n.into().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_helpers() {
        assert_eq!(int(0u32), "0");
        assert_eq!(int(999u32), "999");
        assert_eq!(int(1000u32), "1,000");
        assert_eq!(int(5_000_000u64), "5,000,000");
        assert_eq!(cell("a|b\nc\u{1b}"), "a\\|b c");
        assert_eq!(duration(chrono::TimeDelta::seconds(3725)), "1h 02m 05s");
        assert_eq!(duration(chrono::TimeDelta::seconds(65)), "1m 05s");
        assert_eq!(duration(chrono::TimeDelta::seconds(5)), "5s");
    }
}
