//! The incident pack of a failed run: [`Incident`] (`incident/incident.json`) and its
//! Markdown rendering (`incident/INCIDENT.md`).

use std::fmt::Write as _;

use autopack_core::budget::{
    PhaseCaps, PhaseUsage, RunBreach, RunCaps, RunUsage, TierBreach, TierCaps, TierUsage,
};
use autopack_core::ids::{PhaseId, RunId, TierId};
use autopack_core::lifecycle::{Cleanliness, PhaseState, RunFailure, RunState, TierState};
use autopack_core::record::{AttemptRecord, CiRecord, RunRecord, StateChange};
use autopack_core::vocabulary::{Complexity, DebtStatus, RunScope, SafetyProfile, TaskCategory};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::pieces::*;
use crate::paths;

/// How many of the failing phase's last attempts an incident pack lists.
pub const INCIDENT_LAST_ATTEMPTS: usize = 5;

/// The machine-readable incident pack of a failed run (`incident/incident.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// The run.
    pub run_id: RunId,
    /// Its terminal state (`DONE_FAILED_*`).
    pub state: RunState,
    /// The failure (`token_cap_exceeded`, `tier_blocked`, ...).
    pub failure: RunFailure,
    /// The recorded reason (empty when none was recorded).
    pub reason: String,
    /// The run budget breached, when that was the cause.
    pub breach: Option<RunBreach>,
    /// The run's safety profile.
    pub safety_profile: SafetyProfile,
    /// The run's scope.
    pub run_scope: RunScope,
    /// The strategy version the run used.
    pub strategy_version: u32,
    /// When the run started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it entered its terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    /// Run caps.
    pub caps: RunCaps,
    /// Run usage.
    pub usage: RunUsage,
    /// Debt status.
    pub debt_status: DebtStatus,
    /// Unresolved distinct major issues.
    pub unresolved_major_issues: u32,
    /// The integration branch tip, when known.
    pub integration_tip: Option<String>,
    /// The tier that failed (the recorded one, else the first blocked one, else the tier
    /// in progress).
    pub failing_tier: Option<IncidentTier>,
    /// The phase that failed (the recorded one, else the first failed one, else the phase
    /// in progress).
    pub failing_phase: Option<IncidentPhase>,
    /// Every tier, briefly.
    pub tiers: Vec<IncidentTierLine>,
    /// The run's state history.
    pub history: Vec<StateChange<RunState>>,
}

/// The failing tier in an [`Incident`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentTier {
    /// The tier.
    pub tier_id: TierId,
    /// Its index.
    pub tier_index: u32,
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: TierState,
    /// Its caps.
    pub caps: TierCaps,
    /// Its usage.
    pub usage: TierUsage,
    /// Caps it breached.
    pub breaches: Vec<TierBreach>,
    /// Why it was blocked.
    pub blocked_reason: Option<String>,
    /// Its state history.
    pub history: Vec<StateChange<TierState>>,
}

/// The failing phase in an [`Incident`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentPhase {
    /// The phase.
    pub phase_id: PhaseId,
    /// Its index.
    pub phase_index: u32,
    /// Its tier.
    pub tier_id: TierId,
    /// Its name.
    pub name: String,
    /// Its task category.
    pub task_category: TaskCategory,
    /// Its complexity.
    pub complexity: Complexity,
    /// Its state.
    pub state: PhaseState,
    /// Its caps.
    pub caps: PhaseCaps,
    /// Its usage.
    pub usage: PhaseUsage,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Distinct minor issues.
    pub minor_issues: u32,
    /// Distinct major issues.
    pub major_issues: u32,
    /// Its last attempts (at most [`INCIDENT_LAST_ATTEMPTS`]), oldest first.
    pub last_attempts: Vec<AttemptRecord>,
    /// Attempts made in all.
    pub total_attempts: usize,
    /// Its CI runs.
    pub ci_runs: Vec<CiRecord>,
    /// Its state history.
    pub history: Vec<StateChange<PhaseState>>,
}

/// One tier of an [`Incident`], briefly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentTierLine {
    /// The tier.
    pub tier_id: TierId,
    /// Its index.
    pub tier_index: u32,
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: TierState,
    /// Its cleanliness, once finished.
    pub cleanliness: Option<Cleanliness>,
    /// Its usage.
    pub usage: TierUsage,
    /// Caps it breached.
    pub breaches: Vec<TierBreach>,
}

/// The incident of `run`, when it ended in a `DONE_FAILED_*` state; `None` otherwise.
pub fn incident(run: &RunRecord) -> Option<Incident> {
    let failure = run.state.failure()?;
    let recorded = run.failure.as_ref();
    let tier = recorded
        .and_then(|f| f.tier_id.as_ref())
        .and_then(|id| run.tier(id))
        .or_else(|| run.tiers.iter().find(|t| t.state == TierState::Blocked))
        .or_else(|| {
            run.tiers
                .iter()
                .rev()
                .find(|t| t.state != TierState::Pending)
        });
    let phase = recorded
        .and_then(|f| f.phase_id.as_ref())
        .and_then(|id| run.phases().find(|p| &p.phase_id == id))
        .or_else(|| run.phases().find(|p| p.state == PhaseState::Failed))
        .or_else(|| {
            run.phases()
                .filter(|p| p.state != PhaseState::Queued && p.state != PhaseState::Skipped)
                .last()
        });
    Some(Incident {
        run_id: run.run_id.clone(),
        state: run.state,
        failure,
        reason: recorded.map(|f| f.reason.clone()).unwrap_or_default(),
        breach: recorded.and_then(|f| f.breach),
        safety_profile: run.safety_profile,
        run_scope: run.run_scope,
        strategy_version: run.strategy_version,
        started_at: run.started_at(),
        finished_at: run.finished_at(),
        caps: run.caps,
        usage: run.usage,
        debt_status: run.debt_status,
        unresolved_major_issues: run.unresolved_major_issues,
        integration_tip: run.integration_tip.as_ref().map(|c| c.to_string()),
        failing_tier: tier.map(|t| IncidentTier {
            tier_id: t.tier_id.clone(),
            tier_index: t.tier_index,
            name: t.name.clone(),
            state: t.state,
            caps: t.caps,
            usage: t.usage,
            breaches: t.breaches.clone(),
            blocked_reason: t.blocked_reason.clone(),
            history: t.history.clone(),
        }),
        failing_phase: phase.map(|p| IncidentPhase {
            phase_id: p.phase_id.clone(),
            phase_index: p.phase_index,
            tier_id: p.tier_id.clone(),
            name: p.name.clone(),
            task_category: p.task_category.clone(),
            complexity: p.complexity,
            state: p.state,
            caps: p.caps,
            usage: p.usage,
            failure_reason: p.failure_reason.clone(),
            minor_issues: p.minor_issues,
            major_issues: p.major_issues,
            last_attempts: p.attempts[p.attempts.len().saturating_sub(INCIDENT_LAST_ATTEMPTS)..]
                .to_vec(),
            total_attempts: p.attempts.len(),
            ci_runs: p.ci_runs.clone(),
            history: p.history.clone(),
        }),
        tiers: run
            .tiers
            .iter()
            .map(|t| IncidentTierLine {
                tier_id: t.tier_id.clone(),
                tier_index: t.tier_index,
                name: t.name.clone(),
                state: t.state,
                cleanliness: t.cleanliness(),
                usage: t.usage,
                breaches: t.breaches.clone(),
            })
            .collect(),
        history: run.history.clone(),
    })
}

/// `incident/incident.json`: the [`Incident`] as pretty JSON with a trailing newline.
pub fn incident_json(incident: &Incident) -> String {
    match serde_json::to_string_pretty(incident) {
        Ok(mut text) => {
            text.push('\n');
            text
        }
        // Serialising plain data with string keys cannot fail; never panic regardless.
        Err(e) => format!("{{\"error\": {:?}}}\n", e.to_string()),
    }
}

/// `incident/INCIDENT.md`: the [`Incident`] for a person.
pub fn incident_markdown(incident: &Incident) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Incident: run `{}` ended `{}`\n",
        incident.run_id, incident.state
    );
    if incident.reason.is_empty() {
        let _ = writeln!(out, "No reason was recorded.\n");
    } else {
        let _ = writeln!(out, "> {}\n", text(&incident.reason).replace('\n', "\n> "));
    }
    let _ = writeln!(out, "| | |\n|---|---|");
    row(&mut out, "Failure", incident.failure.as_str());
    if let Some(breach) = &incident.breach {
        row(&mut out, "Budget breached", &breach.to_string());
    }
    row(&mut out, "Safety profile", incident.safety_profile.as_str());
    row(&mut out, "Run scope", incident.run_scope.as_str());
    row(
        &mut out,
        "Strategy",
        &format!("v{}", incident.strategy_version),
    );
    timing_rows(&mut out, incident.started_at, incident.finished_at);
    row(&mut out, "Debt status", incident.debt_status.as_str());
    row(
        &mut out,
        "Unresolved major issues",
        &int(incident.unresolved_major_issues),
    );
    if let Some(tip) = &incident.integration_tip {
        row(
            &mut out,
            "Integration branch",
            &format!("`autonomous/{}` at `{}`", incident.run_id, cell(tip)),
        );
    }
    out.push('\n');

    let _ = writeln!(out, "## Where it failed\n");
    match &incident.failing_tier {
        Some(t) => {
            let file = paths::tier_file_name(t.tier_index, &t.tier_id, &t.name);
            let _ = writeln!(
                out,
                "- Tier {:02} `{}` ({}): `{}` — [summary](../tiers/{file})",
                t.tier_index,
                t.tier_id,
                text(&t.name),
                t.state
            );
            if let Some(reason) = &t.blocked_reason {
                let _ = writeln!(out, "  - Blocked: {}", text(reason));
            }
            for breach in &t.breaches {
                let _ = writeln!(out, "  - Breach: {breach}");
            }
        }
        None => {
            let _ = writeln!(out, "- Tier: none (the run failed before any tier started)");
        }
    }
    match &incident.failing_phase {
        Some(p) => {
            let _ = writeln!(
                out,
                "- Phase {:02} `{}` ({}): `{}`, {} / {} — [summary](../phases/phase_{:02}_{}.md)",
                p.phase_index,
                p.phase_id,
                text(&p.name),
                p.state,
                p.task_category.as_str(),
                p.complexity,
                p.phase_index,
                p.phase_id
            );
            if let Some(reason) = &p.failure_reason {
                let _ = writeln!(out, "  - Reason: {}", text(reason));
            }
        }
        None => {
            let _ = writeln!(
                out,
                "- Phase: none (the run failed before any phase started)"
            );
        }
    }
    out.push('\n');

    let _ = writeln!(out, "## Run budgets\n");
    run_budget_table(&mut out, &incident.caps, &incident.usage);
    out.push('\n');

    if let Some(t) = &incident.failing_tier {
        let _ = writeln!(out, "## Tier budgets (`{}`)\n", t.tier_id);
        tier_budget_table(&mut out, &t.caps, &t.usage, &t.breaches);
        out.push('\n');
    }

    if let Some(p) = &incident.failing_phase {
        let _ = writeln!(out, "## Phase budgets (`{}`)\n", p.phase_id);
        phase_budget_table(&mut out, &p.caps, &p.usage);
        out.push('\n');
        let shown = p.last_attempts.len();
        if shown < p.total_attempts {
            let _ = writeln!(out, "## Last {shown} of {} attempts\n", p.total_attempts);
        } else {
            let _ = writeln!(out, "## Attempts\n");
        }
        attempts_table(&mut out, &p.last_attempts);
        out.push('\n');
        let _ = writeln!(out, "## CI runs (`{}`)\n", p.phase_id);
        ci_table(&mut out, &p.ci_runs);
        out.push('\n');
    }

    let _ = writeln!(out, "## Tiers\n");
    if incident.tiers.is_empty() {
        let _ = writeln!(out, "No tiers.\n");
    } else {
        let _ = writeln!(
            out,
            "| # | Tier | Name | State | Cleanliness | Tokens | CI runs | Minor | Major | Breaches |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---:|---:|---:|---:|---:|");
        for t in &incident.tiers {
            let _ = writeln!(
                out,
                "| {:02} | `{}` | {} | `{}` | {} | {} | {} | {} | {} | {} |",
                t.tier_index,
                t.tier_id,
                cell(&t.name),
                t.state,
                cleanliness(t.cleanliness),
                int(t.usage.tokens),
                int(t.usage.ci_runs),
                int(t.usage.minor_issues),
                int(t.usage.major_issues),
                t.breaches.len()
            );
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## Run state history\n");
    history_table(&mut out, &incident.history);
    if let Some(p) = &incident.failing_phase {
        let _ = writeln!(out, "\n## Phase state history (`{}`)\n", p.phase_id);
        history_table(&mut out, &p.history);
    }
    let _ = writeln!(
        out,
        "\nThe machine-readable incident is [incident.json]({}); the run's inputs are in \
         [journal.jsonl](../{}).",
        paths::INCIDENT_JSON_FILE,
        paths::JOURNAL_FILE
    );
    out
}
