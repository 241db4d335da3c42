//! The reports of SPEC §11: plain serialisable data, each with a readable text rendering
//! (`Display`).
//!
//! - [`run_list`]: run id, status, debt status, safety profile, run scope, failure reason,
//!   tokens, CI runs;
//! - [`tier_report`]: tier cleanliness — status, issue counts, budget flags,
//!   `promotion_blocked` — and the run's promotion eligibility with every refusal;
//! - [`backlog_report`]: the backlog's top keys by runs, tiers and occurrences, with age;
//! - [`budget_report`]: budget aborts — which tiers, which `task_category:complexity`
//!   slices dominated spend, and whether Auditor attempts helped;
//! - [`html`]: one self-contained HTML page of a run — timeline of phases and attempts,
//!   budget bars against caps, tier cleanliness, issues with their age, promotion
//!   eligibility — built from the reports above.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use autopack_core::budget::{RunBreach, TierBreach};
use autopack_core::ids::{RunId, TierId};
use autopack_core::lifecycle::{Cleanliness, PhaseState, RunFailure, RunState, TierState};
use autopack_core::record::{AttemptRole, RunRecord};
use autopack_core::vocabulary::{DebtStatus, RunScope, SafetyProfile};
use autopack_issues::{KeyAge, Ledger, TopBy};

use crate::promotion;

pub mod html;

/// One row of the run list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunListEntry {
    /// The run.
    pub run_id: RunId,
    /// Its state.
    pub status: RunState,
    /// Its debt status.
    pub debt_status: DebtStatus,
    /// Its safety profile.
    pub safety_profile: SafetyProfile,
    /// Its scope.
    pub run_scope: RunScope,
    /// Why it failed, when it did.
    pub failure_reason: Option<String>,
    /// Tokens spent.
    pub tokens: u64,
    /// CI attempts run.
    pub ci_runs: u32,
    /// Whether it may be promoted to main.
    pub promotion_eligible: bool,
}

/// The run list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunList {
    /// One row per run, in the order given.
    pub runs: Vec<RunListEntry>,
}

/// The run list of `records`.
pub fn run_list<'a>(records: impl IntoIterator<Item = &'a RunRecord>) -> RunList {
    RunList {
        runs: records
            .into_iter()
            .map(|r| RunListEntry {
                run_id: r.run_id.clone(),
                status: r.state,
                debt_status: r.debt_status,
                safety_profile: r.safety_profile,
                run_scope: r.run_scope,
                failure_reason: r.failure.as_ref().map(|f| f.reason.clone()),
                tokens: r.usage.tokens,
                ci_runs: r.usage.ci_runs,
                promotion_eligible: promotion::eligibility(r).is_ok(),
            })
            .collect(),
    }
}

impl fmt::Display for RunList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.runs.is_empty() {
            return writeln!(f, "no runs");
        }
        writeln!(
            f,
            "{:<24} {:<34} {:<20} {:<15} {:<11} {:>10} {:>7}  promotable",
            "run", "status", "debt", "safety", "scope", "tokens", "ci"
        )?;
        for r in &self.runs {
            writeln!(
                f,
                "{:<24} {:<34} {:<20} {:<15} {:<11} {:>10} {:>7}  {}",
                r.run_id.as_str(),
                r.status.as_str(),
                r.debt_status.as_str(),
                r.safety_profile.as_str(),
                r.run_scope.as_str(),
                r.tokens,
                r.ci_runs,
                if r.promotion_eligible { "yes" } else { "no" }
            )?;
            if let Some(reason) = &r.failure_reason {
                writeln!(f, "  reason: {reason}")?;
            }
        }
        Ok(())
    }
}

/// One tier's cleanliness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TierCleanliness {
    /// The tier.
    pub tier_id: TierId,
    /// Its position.
    pub tier_index: u32,
    /// Its human name.
    pub name: String,
    /// Its state.
    pub status: TierState,
    /// `clean` / `not_clean` once ended; absent for a tier that never ran.
    pub cleanliness: Option<Cleanliness>,
    /// Distinct minor issues.
    pub minor_issues: u32,
    /// Distinct major issues.
    pub major_issues: u32,
    /// Caps it breached.
    pub budget_flags: Vec<TierBreach>,
    /// Whether this tier alone keeps the run from promotion (not `COMPLETE`).
    pub promotion_blocked: bool,
    /// Why it was blocked.
    pub blocked_reason: Option<String>,
}

/// Tier cleanliness of one run, with its promotion eligibility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TierReport {
    /// The run.
    pub run_id: RunId,
    /// Its state.
    pub status: RunState,
    /// Whether the run may be promoted to main.
    pub promotion_eligible: bool,
    /// Every reason it may not.
    pub refusals: Vec<String>,
    /// Its tiers, in order.
    pub tiers: Vec<TierCleanliness>,
}

/// The tier report of one run.
pub fn tier_report(record: &RunRecord) -> TierReport {
    let refusals = match promotion::eligibility(record) {
        Ok(()) => Vec::new(),
        Err(reasons) => reasons.iter().map(ToString::to_string).collect(),
    };
    TierReport {
        run_id: record.run_id.clone(),
        status: record.state,
        promotion_eligible: refusals.is_empty(),
        refusals,
        tiers: record
            .tiers
            .iter()
            .map(|t| TierCleanliness {
                tier_id: t.tier_id.clone(),
                tier_index: t.tier_index,
                name: t.name.clone(),
                status: t.state,
                cleanliness: t.cleanliness(),
                minor_issues: t.usage.minor_issues,
                major_issues: t.usage.major_issues,
                budget_flags: t.breaches.clone(),
                promotion_blocked: t.state != TierState::Complete,
                blocked_reason: t.blocked_reason.clone(),
            })
            .collect(),
    }
}

impl fmt::Display for TierReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "run {} — {}", self.run_id, self.status)?;
        writeln!(
            f,
            "promotion to main: {}",
            if self.promotion_eligible {
                "eligible"
            } else {
                "refused"
            }
        )?;
        for reason in &self.refusals {
            writeln!(f, "  - {reason}")?;
        }
        writeln!(
            f,
            "{:<4} {:<16} {:<10} {:<10} {:>6} {:>6}  promotion_blocked  budget flags",
            "#", "tier", "status", "clean", "minor", "major"
        )?;
        for t in &self.tiers {
            let flags: Vec<String> = t.budget_flags.iter().map(ToString::to_string).collect();
            writeln!(
                f,
                "{:<4} {:<16} {:<10} {:<10} {:>6} {:>6}  {:<17}  {}",
                t.tier_index,
                t.tier_id.as_str(),
                t.status.as_str(),
                t.cleanliness.map_or("-", Cleanliness::as_str),
                t.minor_issues,
                t.major_issues,
                if t.promotion_blocked { "yes" } else { "no" },
                if flags.is_empty() {
                    "-".to_owned()
                } else {
                    flags.join("; ")
                }
            )?;
            if let Some(reason) = &t.blocked_reason {
                writeln!(f, "     blocked: {reason}")?;
            }
        }
        Ok(())
    }
}

/// The backlog's top keys, three ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BacklogReport {
    /// Most distinct runs first.
    pub by_runs: Vec<KeyAge>,
    /// Most distinct tiers first.
    pub by_tiers: Vec<KeyAge>,
    /// Most reports first.
    pub by_occurrences: Vec<KeyAge>,
}

/// The top `limit` keys of the backlog by runs, tiers and occurrences.
pub fn backlog_report(ledger: &Ledger, limit: usize) -> BacklogReport {
    BacklogReport {
        by_runs: ledger.top_keys(TopBy::Runs, limit),
        by_tiers: ledger.top_keys(TopBy::Tiers, limit),
        by_occurrences: ledger.top_keys(TopBy::Occurrences, limit),
    }
}

impl fmt::Display for BacklogReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (title, keys) in [
            ("by runs", &self.by_runs),
            ("by tiers", &self.by_tiers),
            ("by occurrences", &self.by_occurrences),
        ] {
            writeln!(f, "top keys {title}:")?;
            if keys.is_empty() {
                writeln!(f, "  (none)")?;
            }
            for k in keys.iter() {
                writeln!(
                    f,
                    "  {:<32} {:<6} {:<14} runs {:>3}  tiers {:>3}  seen {:>5}×  last {} ({})",
                    k.issue_key.as_str(),
                    k.base_severity.as_str(),
                    k.status.as_str(),
                    k.age_in_runs,
                    k.age_in_tiers,
                    k.occurrence_count,
                    k.last_seen_run_id,
                    k.last_seen_at.format("%Y-%m-%d %H:%M UTC"),
                )?;
            }
        }
        Ok(())
    }
}

/// Spend of one tier of an aborted run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TierSpend {
    /// The tier.
    pub tier_id: TierId,
    /// Its state.
    pub status: TierState,
    /// Tokens spent.
    pub tokens: u64,
    /// Its token cap.
    pub token_cap: u64,
    /// CI attempts.
    pub ci_runs: u32,
    /// Its CI-run cap.
    pub ci_run_cap: u32,
    /// Caps it breached.
    pub breaches: Vec<TierBreach>,
}

/// Spend of one `task_category:complexity` slice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SliceSpend {
    /// `task_category:complexity`.
    pub slice: String,
    /// Phases in the slice.
    pub phases: u32,
    /// Tokens they spent.
    pub tokens: u64,
    /// Share of the run's tokens, in per mille (0–1000).
    pub share_per_mille: u32,
}

/// Whether the Auditor helped in a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditorEffect {
    /// Phases where the Auditor was called.
    pub phases_audited: u32,
    /// Of those, phases that then completed.
    pub completed_after_audit: u32,
    /// Auditor attempts in all.
    pub auditor_attempts: u32,
    /// Tokens the Auditor spent.
    pub auditor_tokens: u64,
}

/// One run that was aborted on a budget, or that breached a tier budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BudgetAbort {
    /// The run.
    pub run_id: RunId,
    /// Its state.
    pub status: RunState,
    /// Why it ended, when it failed.
    pub reason: Option<String>,
    /// The run cap it breached, if that was the cause.
    pub breach: Option<RunBreach>,
    /// Spend per tier.
    pub tiers: Vec<TierSpend>,
    /// Spend per `task_category:complexity`, largest first.
    pub slices: Vec<SliceSpend>,
    /// Whether Auditor attempts helped.
    pub auditor: AuditorEffect,
}

/// Budget aborts across runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BudgetReport {
    /// One entry per run that ended on a run budget or breached a tier budget.
    pub runs: Vec<BudgetAbort>,
}

fn is_budget_run(record: &RunRecord) -> bool {
    matches!(
        record.state.failure(),
        Some(
            RunFailure::TokenCapExceeded
                | RunFailure::PhaseLimitExceeded
                | RunFailure::BudgetExhausted
        )
    ) || record.tiers.iter().any(|t| !t.breaches.is_empty())
}

/// The budget report of `records` (runs without a budget problem are left out).
pub fn budget_report<'a>(records: impl IntoIterator<Item = &'a RunRecord>) -> BudgetReport {
    BudgetReport {
        runs: records
            .into_iter()
            .filter(|r| is_budget_run(r))
            .map(budget_abort)
            .collect(),
    }
}

fn budget_abort(record: &RunRecord) -> BudgetAbort {
    let mut slices: BTreeMap<String, (u32, u64)> = BTreeMap::new();
    let mut auditor = AuditorEffect::default();
    for phase in record.phases() {
        let slice = format!(
            "{}:{}",
            phase.task_category.as_str(),
            phase.complexity.as_str()
        );
        let entry = slices.entry(slice).or_default();
        entry.0 += 1;
        entry.1 = entry.1.saturating_add(phase.usage.tokens);
        let audits: Vec<_> = phase
            .attempts
            .iter()
            .filter(|a| a.role == AttemptRole::Auditor)
            .collect();
        if !audits.is_empty() {
            auditor.phases_audited += 1;
            auditor.auditor_attempts = auditor
                .auditor_attempts
                .saturating_add(u32::try_from(audits.len()).unwrap_or(u32::MAX));
            // Agents report their own token counts: saturate rather than overflow.
            auditor.auditor_tokens = audits.iter().fold(auditor.auditor_tokens, |sum, a| {
                sum.saturating_add(a.tokens)
            });
            if phase.state == PhaseState::Complete {
                auditor.completed_after_audit += 1;
            }
        }
    }
    let total = record.usage.tokens.max(1);
    let mut slices: Vec<SliceSpend> = slices
        .into_iter()
        .map(|(slice, (phases, tokens))| SliceSpend {
            slice,
            phases,
            tokens,
            share_per_mille: u32::try_from(tokens.saturating_mul(1000) / total).unwrap_or(1000),
        })
        .collect();
    // Largest spend first; ties by name, so the report is deterministic.
    slices.sort_by(|a, b| b.tokens.cmp(&a.tokens).then_with(|| a.slice.cmp(&b.slice)));
    BudgetAbort {
        run_id: record.run_id.clone(),
        status: record.state,
        reason: record.failure.as_ref().map(|f| f.reason.clone()),
        breach: record.failure.as_ref().and_then(|f| f.breach),
        tiers: record
            .tiers
            .iter()
            .map(|t| TierSpend {
                tier_id: t.tier_id.clone(),
                status: t.state,
                tokens: t.usage.tokens,
                token_cap: t.caps.token_cap,
                ci_runs: t.usage.ci_runs,
                ci_run_cap: t.caps.ci_run_cap,
                breaches: t.breaches.clone(),
            })
            .collect(),
        slices,
        auditor,
    }
}

impl fmt::Display for BudgetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.runs.is_empty() {
            return writeln!(f, "no budget aborts");
        }
        for run in &self.runs {
            writeln!(f, "run {} — {}", run.run_id, run.status)?;
            if let Some(reason) = &run.reason {
                writeln!(f, "  reason: {reason}")?;
            }
            writeln!(f, "  tiers:")?;
            for t in &run.tiers {
                let flags: Vec<String> = t.breaches.iter().map(ToString::to_string).collect();
                writeln!(
                    f,
                    "    {:<16} {:<10} tokens {:>10} / {:<10} ci {:>3} / {:<3} {}",
                    t.tier_id.as_str(),
                    t.status.as_str(),
                    t.tokens,
                    t.token_cap,
                    t.ci_runs,
                    t.ci_run_cap,
                    flags.join("; ")
                )?;
            }
            writeln!(f, "  spend by task_category:complexity:")?;
            for s in &run.slices {
                writeln!(
                    f,
                    "    {:<40} {:>3} phase(s) {:>10} tokens {:>5.1}%",
                    s.slice,
                    s.phases,
                    s.tokens,
                    f64::from(s.share_per_mille) / 10.0
                )?;
            }
            let a = run.auditor;
            writeln!(
                f,
                "  auditor: called in {} phase(s), {} completed afterwards ({} attempt(s), {} tokens)",
                a.phases_audited, a.completed_after_audit, a.auditor_attempts, a.auditor_tokens
            )?;
        }
        Ok(())
    }
}
