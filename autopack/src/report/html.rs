//! The HTML run report: one self-contained page (inline CSS, no script, no external
//! resource) showing a run's timeline, budgets, tier cleanliness, issues and promotion
//! eligibility.
//!
//! Pure: a run record and the project's issue ledger in, a `String` out. The page reads
//! its figures from [`tier_report`] and the run's spend from the budget report's
//! per-run view, so it says what `autopack report tiers` / `budget` say. Every text that
//! comes from a plan, an agent or an issue (names, reasons, Auditor notes, categories) is
//! escaped by maud's templates; the output is the same bytes for the same input.
//!
//! ```
//! use autopack::core::record::RunRecord;
//! use autopack::issues::Ledger;
//!
//! fn write_page(record: &RunRecord, ledger: &Ledger) -> std::io::Result<()> {
//!     std::fs::write("run.html", autopack::report::html::html(record, ledger))
//! }
//! ```

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html as markup};

use autopack_core::budget::TierBreach;
use autopack_core::lifecycle::{Cleanliness, PhaseState};
use autopack_core::record::{
    AttemptOutcome, AttemptRecord, AttemptRole, CiRecord, CiVerdict, PhaseRecord, RunRecord,
    TierRecord,
};
use autopack_issues::{KeyAge, Ledger, RunIssueEntry};

use super::{BudgetAbort, TierCleanliness, TierReport, backlog_report, budget_abort, tier_report};

/// The page of one run: `record` as the run's journal rebuilds it, `ledger` the project's
/// issue ledger (or one read from its backlog) for the issues' ages and status.
pub fn html(record: &RunRecord, ledger: &Ledger) -> String {
    let tiers = tier_report(record);
    let spend = budget_abort(record);
    let issues = run_issues(record, ledger);
    let span = RunSpan::of(record);
    let page = markup! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Autopack run " (record.run_id) }
                style { (PreEscaped(CSS)) }
            }
            body {
                (header(record, &tiers))
                (promotion(&tiers))
                (timeline(record, &span))
                (budgets(record, &spend))
                (cleanliness(&tiers))
                (issue_table(&issues))
            }
        }
    };
    page.into_string()
}

fn header(record: &RunRecord, tiers: &TierReport) -> Markup {
    markup! {
        header #run {
            h1 { "Run " span.run-id { (record.run_id) } }
            p.state { span class={ "badge " (state_class(record.state.is_terminal(), tiers.status.failure().is_none())) } { (record.state) } }
            dl.facts {
                dt { "Safety profile" } dd { (record.safety_profile.as_str()) }
                dt { "Scope" } dd { (record.run_scope.as_str()) }
                dt { "Strategy version" } dd { (record.strategy_version) }
                dt { "Debt status" } dd { (record.debt_status.as_str()) }
                dt { "Started" } dd { (when(record.started_at())) }
                dt { "Finished" } dd { (when(record.finished_at())) }
                dt { "Tokens" } dd #run-tokens { (record.usage.tokens) }
                dt { "CI runs" } dd #run-ci-runs { (record.usage.ci_runs) }
                @if let Some(tip) = &record.integration_tip {
                    dt { "Integration tip" } dd { code { (tip) } }
                }
            }
            @if let Some(failure) = &record.failure {
                p.failure {
                    strong { "Failed (" (failure.failure.as_str()) "): " }
                    (failure.reason)
                }
            }
        }
    }
}

fn promotion(tiers: &TierReport) -> Markup {
    markup! {
        section #promotion {
            h2 { "Promotion to main" }
            @if tiers.promotion_eligible {
                p.eligible.ok { "Eligible: every condition of SPEC §8 holds." }
            } @else {
                p.eligible.fail { "Refused:" }
                ul.refusals {
                    @for reason in &tiers.refusals { li { (reason) } }
                }
            }
        }
    }
}

/// The run's first and last timestamps, to place phases on one axis.
struct RunSpan {
    start: Option<DateTime<Utc>>,
    millis: i64,
}

impl RunSpan {
    fn of(record: &RunRecord) -> RunSpan {
        let start = record.started_at();
        let end = record
            .history
            .iter()
            .map(|c| c.at)
            .chain(record.phases().flat_map(|p| p.history.iter().map(|c| c.at)))
            .max();
        let millis = match (start, end) {
            (Some(s), Some(e)) => (e - s).num_milliseconds().max(1),
            _ => 1,
        };
        RunSpan { start, millis }
    }

    /// Left offset and width of `phase` in per mille of the run's span.
    fn place(&self, phase: &PhaseRecord) -> Option<(i64, i64)> {
        let start = self.start?;
        // Every phase is queued when the run starts: it begins when it leaves the queue.
        let first = phase
            .history
            .iter()
            .find(|c| c.state != PhaseState::Queued)
            .or(phase.history.first())?
            .at;
        let last = phase.history.last()?.at;
        let left = ((first - start).num_milliseconds() * 1000 / self.millis).clamp(0, 1000);
        let right = ((last - start).num_milliseconds() * 1000 / self.millis).clamp(left, 1000);
        // A phase that took no measurable time still gets a visible sliver.
        Some((left.min(995), (right - left).max(5)))
    }
}

fn timeline(record: &RunRecord, span: &RunSpan) -> Markup {
    markup! {
        section #timeline {
            h2 { "Timeline" }
            @for tier in &record.tiers {
                div.tier data-tier-id=(tier.tier_id) {
                    h3 {
                        "Tier " (tier.tier_index) " · " span.tier-id { (tier.tier_id) } " — " (tier.name) " "
                        span class={ "badge " (tier_state_class(tier)) } { (tier.state) }
                    }
                    @if let Some(reason) = &tier.blocked_reason {
                        p.blocked { "Blocked: " (reason) }
                    }
                    @for phase in &tier.phases { (phase_row(phase, span)) }
                }
            }
        }
    }
}

fn phase_row(phase: &PhaseRecord, span: &RunSpan) -> Markup {
    let groups = attempt_groups(phase);
    markup! {
        div.phase data-phase-id=(phase.phase_id) {
            div.phase-head {
                span.phase-index { (phase.phase_index) }
                span.phase-id { (phase.phase_id) }
                span.phase-name { (phase.name) }
                span class={ "badge " (phase_state_class(phase)) } { (phase.state) }
                span.phase-figures {
                    span.builder-attempts { "Builder attempts " (phase.usage.builder_attempts) " / " (phase.caps.max_builder_attempts) }
                    " · "
                    span.auditor-attempts { "Auditor attempts " (phase.usage.auditor_attempts) " / " (phase.caps.max_auditor_attempts) }
                    " · "
                    span.phase-tokens { "tokens " (phase.usage.tokens) " / " (phase.caps.incident_token_cap) }
                    " · "
                    span.phase-ci-runs { "CI runs " (phase.usage.ci_runs) }
                }
            }
            @if let Some((left, width)) = span.place(phase) {
                div.axis {
                    div class={ "span " (phase_state_class(phase)) }
                        style={ "left:" (per_mille(left)) ";width:" (per_mille(width)) } {}
                }
            }
            ol.attempts {
                @for group in &groups { (attempt_card(group)) }
            }
            @if let Some(reason) = &phase.failure_reason {
                p.failure { (reason) }
            }
        }
    }
}

/// One attempt with the CI runs that ended since the one before it (CI runs only after
/// the patch gate passed, and its verdict decides the attempt that follows it); trailing
/// CI runs of a phase still in progress form a group with no attempt.
struct AttemptGroup<'a> {
    ci_runs: Vec<&'a CiRecord>,
    attempt: Option<&'a AttemptRecord>,
}

fn attempt_groups(phase: &PhaseRecord) -> Vec<AttemptGroup<'_>> {
    let mut ci = phase.ci_runs.iter().peekable();
    let mut groups: Vec<AttemptGroup<'_>> = phase
        .attempts
        .iter()
        .map(|attempt| {
            let mut ci_runs = Vec::new();
            while let Some(run) = ci.next_if(|c| c.at <= attempt.at) {
                ci_runs.push(run);
            }
            AttemptGroup {
                ci_runs,
                attempt: Some(attempt),
            }
        })
        .collect();
    let rest: Vec<&CiRecord> = ci.collect();
    if !rest.is_empty() {
        groups.push(AttemptGroup {
            ci_runs: rest,
            attempt: None,
        });
    }
    groups
}

fn attempt_card(group: &AttemptGroup<'_>) -> Markup {
    markup! {
        li class={ "attempt " (group.attempt.map_or("pending", |a| outcome_class(a.outcome))) }
            data-role=(group.attempt.map_or("ci", |a| role_name(a.role))) {
            @if let Some(a) = group.attempt {
                div.attempt-title { (role_title(a.role)) " #" (a.number) }
            } @else {
                div.attempt-title { "In progress" }
            }
            @if group.attempt.is_some_and(|a| a.role == AttemptRole::Builder) || !group.ci_runs.is_empty() {
                div.gate {
                    "Patch gate: "
                    @if group.ci_runs.is_empty() {
                        span.muted { "no CI (see reason)" }
                    } @else {
                        span.ok { "passed" }
                    }
                }
            }
            @for run in &group.ci_runs {
                div class={ "ci " (verdict_class(run.verdict)) } {
                    "CI " (run.profile.as_str()) ": " (verdict_name(run.verdict))
                    " (" (run.attempts) " attempt" @if run.attempts != 1 { "s" } ")"
                }
            }
            @if let Some(a) = group.attempt {
                div.outcome { (outcome_name(a.outcome)) " · " (a.tokens) " tokens · " (a.at.format("%H:%M:%S")) }
                @if !a.reason.is_empty() {
                    div.reason { (a.reason) }
                }
            }
        }
    }
}

fn budgets(record: &RunRecord, spend: &BudgetAbort) -> Markup {
    let run_minor_breached = record.usage.minor_issues > record.caps.max_minor_issues_total;
    markup! {
        section #budgets {
            h2 { "Budgets" }
            div.budget-group data-scope="run" {
                h3 { "Run" }
                (bar("run-tokens", "Tokens", record.usage.tokens, record.caps.token_cap, record.usage.tokens > record.caps.token_cap))
                (bar("run-phases", "Phases", u64::from(record.usage.phases), u64::from(record.caps.max_phases), record.usage.phases > record.caps.max_phases))
                (bar("run-minutes", "Minutes", record.usage.elapsed_minutes, u64::from(record.caps.max_duration_minutes), record.usage.elapsed_minutes > u64::from(record.caps.max_duration_minutes)))
                (bar("run-minor-issues", "Minor issues", u64::from(record.usage.minor_issues), u64::from(record.caps.max_minor_issues_total), run_minor_breached))
                @if let Some(breach) = spend.breach {
                    p.breach { (breach) }
                }
            }
            @for (tier, tier_spend) in record.tiers.iter().zip(&spend.tiers) {
                div.budget-group data-scope="tier" data-tier-id=(tier.tier_id) {
                    h3 { "Tier " span.tier-id { (tier.tier_id) } }
                    (bar("tier-tokens", "Tokens", tier_spend.tokens, tier_spend.token_cap, breached(tier, |b| matches!(b, TierBreach::Tokens { .. }))))
                    (bar("tier-ci-runs", "CI runs", u64::from(tier_spend.ci_runs), u64::from(tier_spend.ci_run_cap), breached(tier, |b| matches!(b, TierBreach::CiRuns { .. } | TierBreach::CiRunsUsedUp { .. }))))
                    (bar("tier-minor-issues", "Minor issues", u64::from(tier.usage.minor_issues), u64::from(tier.caps.max_minor_issues_tolerated), breached(tier, |b| matches!(b, TierBreach::MinorIssues { .. }))))
                    (bar("tier-major-issues", "Major issues", u64::from(tier.usage.major_issues), u64::from(tier.caps.max_major_issues_tolerated), breached(tier, |b| matches!(b, TierBreach::MajorIssues { .. }))))
                    @for breach in &tier_spend.breaches {
                        p.breach { (breach) }
                    }
                }
            }
            div.budget-group.slices {
                h3 { "Spend by task_category:complexity" }
                table {
                    thead { tr { th { "slice" } th { "phases" } th { "tokens" } th { "share" } } }
                    tbody {
                        @for s in &spend.slices {
                            tr { td { (s.slice) } td { (s.phases) } td { (s.tokens) } td { (per_mille(i64::from(s.share_per_mille))) } }
                        }
                    }
                }
                @let a = spend.auditor;
                p.auditor-effect {
                    "Auditor: called in " (a.phases_audited) " phase(s), " (a.completed_after_audit)
                    " completed afterwards (" (a.auditor_attempts) " attempt(s), " (a.auditor_tokens) " tokens)"
                }
            }
        }
    }
}

fn breached(tier: &TierRecord, kind: impl Fn(&TierBreach) -> bool) -> bool {
    tier.breaches.iter().any(kind)
}

/// A horizontal bar of `used` against `cap`; a used-up or exceeded cap is marked.
fn bar(id: &str, label: &str, used: u64, cap: u64, breach: bool) -> Markup {
    let fill = match (used, cap) {
        (0, _) => 0,
        (_, 0) => 1000,
        _ => i64::try_from(used.saturating_mul(1000) / cap)
            .unwrap_or(1000)
            .clamp(1, 1000),
    };
    let class = if breach {
        "bar breached"
    } else if used > cap {
        "bar over"
    } else {
        "bar"
    };
    markup! {
        div class=(class) data-budget=(id) {
            span.bar-label { (label) }
            span.bar-track { span.bar-fill style={ "width:" (per_mille(fill)) } {} }
            span.bar-figures { span.used { (used) } " / " span.cap { (cap) } @if breach { " — breached" } }
        }
    }
}

fn cleanliness(tiers: &TierReport) -> Markup {
    markup! {
        section #cleanliness {
            h2 { "Tier cleanliness" }
            table {
                thead { tr { th { "#" } th { "tier" } th { "name" } th { "status" } th { "clean" } th { "minor" } th { "major" } th { "promotion blocked" } th { "budget flags" } } }
                tbody {
                    @for t in &tiers.tiers { (cleanliness_row(t)) }
                }
            }
        }
    }
}

fn cleanliness_row(t: &TierCleanliness) -> Markup {
    let clean = t.cleanliness.map_or("-", |c| c.as_str());
    markup! {
        tr data-tier-id=(t.tier_id) {
            td { (t.tier_index) }
            td { (t.tier_id) }
            td { (t.name) }
            td { (t.status) }
            td class={ "clean-" (clean) } { (clean) }
            td { (t.minor_issues) }
            td { (t.major_issues) }
            td { @if t.promotion_blocked { "yes" } @else { "no" } }
            td {
                @if t.budget_flags.is_empty() { "-" }
                @for flag in &t.budget_flags { div { (flag) } }
                @if let Some(reason) = &t.blocked_reason { div.blocked { "blocked: " (reason) } }
            }
        }
    }
}

/// One key the run saw: its backlog age and, where the ledger holds the run, what the
/// run saw of it.
struct RunIssue {
    age: KeyAge,
    in_run: Option<RunIssueEntry>,
    tiers: Vec<String>,
}

/// The backlog keys this run saw, most runs first (the backlog report's order).
fn run_issues(record: &RunRecord, ledger: &Ledger) -> Vec<RunIssue> {
    let mut index = ledger.run_issue_index(&record.run_id).issues_by_key;
    backlog_report(ledger, ledger.len())
        .by_runs
        .into_iter()
        .filter_map(|age| {
            let entry = ledger.backlog_entry(&age.issue_key);
            let mut tiers: Vec<String> = entry
                .iter()
                .flat_map(|e| e.seen_in_tiers.iter())
                .filter(|s| s.run_id == record.run_id)
                .map(|s| s.tier_id.to_string())
                .collect();
            let in_run = index.remove(&age.issue_key);
            if let Some(run) = &in_run {
                tiers.extend(run.seen_in_tiers.iter().map(ToString::to_string));
            }
            tiers.sort();
            tiers.dedup();
            let seen =
                in_run.is_some() || !tiers.is_empty() || age.last_seen_run_id == record.run_id;
            seen.then_some(RunIssue { age, in_run, tiers })
        })
        .collect()
}

fn issue_table(issues: &[RunIssue]) -> Markup {
    markup! {
        section #issues {
            h2 { "Issues seen in this run" }
            @if issues.is_empty() {
                p.muted { "None." }
            } @else {
                table {
                    thead { tr {
                        th { "key" } th { "category" } th { "severity" } th { "in this run" } th { "status" }
                        th { "age in runs" } th { "age in tiers" } th { "seen" } th { "tiers (this run)" } th { "phases (this run)" }
                    } }
                    tbody {
                        @for issue in issues {
                            @let k = &issue.age;
                            tr.issue data-issue-key=(k.issue_key) {
                                td { code { (k.issue_key) } }
                                td { (k.category.as_str()) }
                                td class={ "sev-" (k.base_severity.as_str()) } { (k.base_severity.as_str()) }
                                td { (issue.in_run.as_ref().map_or("-", |r| r.effective_severity.as_str())) }
                                td { (k.status.as_str()) }
                                td.age-runs { (k.age_in_runs) }
                                td.age-tiers { (k.age_in_tiers) }
                                td { (k.occurrence_count) "×" }
                                td { (issue.tiers.join(", ")) }
                                td {
                                    @if let Some(run) = &issue.in_run {
                                        @for (i, p) in run.seen_in_phases.iter().enumerate() {
                                            @if i > 0 { ", " } (p)
                                        }
                                    } @else {
                                        "-"
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn when(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// `n` per mille as a CSS percentage with one decimal.
fn per_mille(n: i64) -> String {
    format!("{}.{}%", n / 10, n % 10)
}

fn state_class(terminal: bool, succeeded: bool) -> &'static str {
    match (terminal, succeeded) {
        (false, _) => "running",
        (true, true) => "ok",
        (true, false) => "fail",
    }
}

fn tier_state_class(tier: &TierRecord) -> &'static str {
    match tier.cleanliness() {
        None => "running",
        Some(Cleanliness::Clean) => "ok",
        Some(Cleanliness::NotClean) => "fail",
    }
}

fn phase_state_class(phase: &PhaseRecord) -> &'static str {
    match phase.state {
        PhaseState::Complete => "ok",
        PhaseState::Failed | PhaseState::Skipped => "fail",
        _ => "running",
    }
}

const fn outcome_class(outcome: AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Succeeded => "ok",
        AttemptOutcome::Failed => "fail",
        AttemptOutcome::Revise => "revise",
        AttemptOutcome::Escalated => "escalated",
    }
}

const fn outcome_name(outcome: AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Succeeded => "succeeded",
        AttemptOutcome::Failed => "failed",
        AttemptOutcome::Revise => "revise",
        AttemptOutcome::Escalated => "escalated",
    }
}

const fn role_name(role: AttemptRole) -> &'static str {
    match role {
        AttemptRole::Builder => "builder",
        AttemptRole::Auditor => "auditor",
    }
}

const fn role_title(role: AttemptRole) -> &'static str {
    match role {
        AttemptRole::Builder => "Builder",
        AttemptRole::Auditor => "Auditor",
    }
}

const fn verdict_class(verdict: CiVerdict) -> &'static str {
    match verdict {
        CiVerdict::Green => "ok",
        CiVerdict::Flaky => "flaky",
        CiVerdict::Red => "fail",
    }
}

const fn verdict_name(verdict: CiVerdict) -> &'static str {
    match verdict {
        CiVerdict::Green => "green",
        CiVerdict::Flaky => "flaky",
        CiVerdict::Red => "red",
    }
}

/// The page's only style: inline, so the file needs nothing else to render.
const CSS: &str = r#"
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:16px;color:#1d2430;background:#fafbfc}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:24px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}h3{font-size:15px;margin:12px 0 6px}
code{font:12px ui-monospace,monospace}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;background:#6e7781}
.badge.ok{background:#1a7f37}.badge.fail{background:#cf222e}.badge.running{background:#0969da}
.ok{color:#1a7f37}.fail{color:#cf222e}.muted{color:#6e7781}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:8px 0}dl.facts dt{color:#57606a}dl.facts dd{margin:0}
p.failure,p.blocked,p.breach{color:#cf222e;margin:4px 0}
ul.refusals{margin:4px 0;color:#cf222e}
.tier{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;margin:8px 0;background:#fff}
.phase{border-top:1px solid #eaeef2;padding:8px 0}
.phase-head{display:flex;flex-wrap:wrap;gap:8px;align-items:baseline}
.phase-index{color:#57606a;min-width:1.5em}.phase-id{font-weight:600;font-family:ui-monospace,monospace}.phase-figures{color:#57606a;font-size:12px}
.axis{position:relative;height:6px;background:#eaeef2;border-radius:3px;margin:6px 0}
.axis .span{position:absolute;top:0;height:6px;border-radius:3px;background:#0969da}.axis .span.ok{background:#1a7f37}.axis .span.fail{background:#cf222e}
ol.attempts{display:flex;flex-wrap:wrap;gap:6px;list-style:none;padding:0;margin:4px 0}
.attempt{border:1px solid #d0d7de;border-left:4px solid #6e7781;border-radius:4px;padding:4px 8px;min-width:150px;max-width:340px;background:#f6f8fa;font-size:12px}
.attempt.ok{border-left-color:#1a7f37}.attempt.fail{border-left-color:#cf222e}.attempt.revise{border-left-color:#bf8700}.attempt.escalated{border-left-color:#8250df}.attempt.pending{border-left-color:#0969da}
.attempt-title{font-weight:600}.reason{color:#57606a;white-space:pre-wrap;overflow-wrap:anywhere}
.ci.flaky{color:#bf8700}.ci.fail{color:#cf222e}.ci.ok{color:#1a7f37}
.budget-group{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;margin:8px 0;background:#fff}
.bar{display:grid;grid-template-columns:120px 1fr 220px;gap:8px;align-items:center;margin:4px 0}
.bar-track{display:block;height:14px;background:#eaeef2;border-radius:7px;overflow:hidden}
.bar-fill{display:block;height:100%;background:#0969da}
.bar.over .bar-fill,.bar.breached .bar-fill{background:#cf222e}.bar.breached .bar-figures{color:#cf222e;font-weight:600}
table{border-collapse:collapse;width:100%;background:#fff}th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f6f8fa}
.clean-clean{color:#1a7f37}.clean-not_clean{color:#cf222e}.sev-major{color:#cf222e;font-weight:600}
"#;
