//! Pure rendering of a [`RunRecord`]: run, tier and phase summaries (Markdown a person
//! reads after the run) and the incident pack of a failed run.
//!
//! Every function here is a pure function of its arguments (no clock, no filesystem), so
//! the same record always renders to the same bytes; [`crate::artefacts`] writes the
//! results atomically. Timestamps are written as UTC RFC 3339; numbers with thousands
//! separators; human names are escaped so they cannot break a Markdown table.
//!
//! What each summary holds:
//! - `run_summary.md`: state, profile, scope, strategy version, timings, the failure and
//!   its reason, run budgets used against caps (tokens, phases, minutes, distinct minor
//!   issues) and CI runs, debt status and unresolved majors, a table of tiers (state,
//!   cleanliness, usage, distinct issue counts, link to the tier summary), a table of
//!   phases, and the state history with timestamps.
//! - tier summaries: state, cleanliness, timings, tier budgets used against caps, breaches,
//!   the blocked reason, the tier's phases, the state history.
//! - phase summaries: state, category, complexity, builder mode, commit and snapshot tag,
//!   failure reason, attempts and CI runs against their caps, tokens against the incident
//!   cap, distinct issue counts, every attempt with its reason, every CI run, the state
//!   history.
//! - the incident pack ([`Incident`], for runs that ended `DONE_FAILED_*`): the failure,
//!   the failing tier and phase, run usage against caps, the last attempts and their
//!   reasons, CI runs, every tier's state and breaches, and state histories; as JSON
//!   ([`incident_json`]) and as Markdown ([`incident_markdown`]).

use std::fmt::Write as _;

use autopack_core::budget::{
    PhaseCaps, PhaseUsage, RunBreach, RunCaps, RunUsage, TierBreach, TierCaps, TierUsage,
};
use autopack_core::ids::{PhaseId, RunId, TierId};
use autopack_core::lifecycle::{Cleanliness, PhaseState, RunFailure, RunState, TierState};
use autopack_core::record::{
    AttemptRecord, CiRecord, PhaseRecord, RunRecord, StateChange, TierRecord,
};
use autopack_core::vocabulary::{
    BuilderMode, Complexity, DebtStatus, RunScope, SafetyProfile, TaskCategory,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::paths;

/// How many of the failing phase's last attempts an incident pack lists.
pub const INCIDENT_LAST_ATTEMPTS: usize = 5;

/// `run_summary.md`.
pub fn run_summary(run: &RunRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Run `{}`\n", run.run_id);
    let _ = writeln!(out, "| | |\n|---|---|");
    row(&mut out, "State", &format!("`{}`", run.state));
    row(&mut out, "Outcome", outcome(run.state));
    row(&mut out, "Safety profile", run.safety_profile.as_str());
    row(&mut out, "Run scope", run.run_scope.as_str());
    row(&mut out, "Strategy", &format!("v{}", run.strategy_version));
    timing_rows(&mut out, run.started_at(), run.finished_at());
    row(&mut out, "Debt status", run.debt_status.as_str());
    row(
        &mut out,
        "Unresolved major issues",
        &int(run.unresolved_major_issues),
    );
    if let Some(tip) = &run.integration_tip {
        row(
            &mut out,
            "Integration branch",
            &format!("`autonomous/{}` at `{}`", run.run_id, cell(tip)),
        );
    }
    out.push('\n');

    if let Some(failure) = &run.failure {
        let _ = writeln!(out, "## Failure\n");
        let _ = writeln!(
            out,
            "**`{}`** ({}): {}\n",
            failure.failure.state(),
            failure.failure,
            text(&failure.reason)
        );
        if let Some(tier) = &failure.tier_id {
            let _ = writeln!(out, "- Tier: `{tier}`{}", tier_name_suffix(run, tier));
        }
        if let Some(phase) = &failure.phase_id {
            let _ = writeln!(out, "- Phase: `{phase}`{}", phase_name_suffix(run, phase));
        }
        if let Some(breach) = &failure.breach {
            let _ = writeln!(out, "- Budget breached: {breach}");
        }
        let _ = writeln!(
            out,
            "- Incident pack: [incident/INCIDENT.md](incident/INCIDENT.md)\n"
        );
    } else if let Some(failure) = run.state.failure() {
        let _ = writeln!(out, "## Failure\n");
        let _ = writeln!(
            out,
            "**`{}`** ({failure}): no reason was recorded.\n",
            run.state
        );
    }

    let _ = writeln!(out, "## Budgets\n");
    run_budget_table(&mut out, &run.caps, &run.usage);
    out.push('\n');

    let _ = writeln!(out, "## Issues\n");
    let (minor, major) = run.phases().fold((0u64, 0u64), |(a, b), p| {
        (a + u64::from(p.minor_issues), b + u64::from(p.major_issues))
    });
    let _ = writeln!(
        out,
        "- Distinct minor issues in the run: {}",
        int(run.usage.minor_issues)
    );
    let _ = writeln!(
        out,
        "- Unresolved distinct major issues: {}",
        int(run.unresolved_major_issues)
    );
    let _ = writeln!(
        out,
        "- Sum of per-phase distinct counts: {} minor, {} major (a key seen in two phases counts in each)",
        int(minor),
        int(major)
    );
    let _ = writeln!(out, "- Debt status: {}\n", run.debt_status);

    let _ = writeln!(out, "## Tiers\n");
    if run.tiers.is_empty() {
        let _ = writeln!(out, "No tiers.\n");
    } else {
        let _ = writeln!(
            out,
            "| # | Tier | Name | State | Cleanliness | Tokens | CI runs | Minor | Major | Breaches | Summary |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---:|---:|---:|---:|---:|---|");
        for tier in &run.tiers {
            let file = paths::tier_file_name(tier.tier_index, &tier.tier_id, &tier.name);
            let _ = writeln!(
                out,
                "| {:02} | `{}` | {} | `{}` | {} | {} / {} | {} / {} | {} / {} | {} / {} | {} | [{file}](tiers/{file}) |",
                tier.tier_index,
                tier.tier_id,
                cell(&tier.name),
                tier.state,
                cleanliness(tier.cleanliness()),
                int(tier.usage.tokens),
                int(tier.caps.token_cap),
                int(tier.usage.ci_runs),
                int(tier.caps.ci_run_cap),
                int(tier.usage.minor_issues),
                int(tier.caps.max_minor_issues_tolerated),
                int(tier.usage.major_issues),
                int(tier.caps.max_major_issues_tolerated),
                tier.breaches.len(),
            );
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## Phases\n");
    if run.phases().next().is_none() {
        let _ = writeln!(out, "No phases.\n");
    } else {
        phase_table(&mut out, run.phases(), true);
        out.push('\n');
    }

    let _ = writeln!(out, "## State history\n");
    history_table(&mut out, &run.history);
    out
}

/// `tiers/tier_{idx:02}_{name}.md` for `tier` of `run`.
pub fn tier_summary(run: &RunRecord, tier: &TierRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Tier {:02}: {} (`{}`)\n",
        tier.tier_index,
        text(&tier.name),
        tier.tier_id
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    row(
        &mut out,
        "Run",
        &format!(
            "`{}` ([run summary](../{}))",
            run.run_id,
            paths::RUN_SUMMARY_FILE
        ),
    );
    row(&mut out, "State", &format!("`{}`", tier.state));
    row(&mut out, "Cleanliness", cleanliness(tier.cleanliness()));
    row(&mut out, "Phases", &int(tier.phases.len() as u64));
    timing_rows(
        &mut out,
        tier.history.first().map(|c| c.at),
        finished(&tier.history, TierState::is_terminal),
    );
    out.push('\n');

    if let Some(reason) = &tier.blocked_reason {
        let _ = writeln!(out, "## Blocked\n\n{}\n", text(reason));
    }

    let _ = writeln!(out, "## Budgets\n");
    tier_budget_table(&mut out, &tier.caps, &tier.usage);
    out.push('\n');

    let _ = writeln!(out, "## Breaches\n");
    if tier.breaches.is_empty() {
        let _ = writeln!(out, "None.\n");
    } else {
        for breach in &tier.breaches {
            let _ = writeln!(out, "- {breach}");
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## Phases\n");
    if tier.phases.is_empty() {
        let _ = writeln!(out, "No phases.\n");
    } else {
        phase_table(&mut out, tier.phases.iter(), false);
        out.push('\n');
    }

    let _ = writeln!(out, "## State history\n");
    history_table(&mut out, &tier.history);
    out
}

/// `phases/phase_{idx:02}_{phase_id}.md` for `phase` of `run`.
pub fn phase_summary(run: &RunRecord, phase: &PhaseRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Phase {:02}: {} (`{}`)\n",
        phase.phase_index,
        text(&phase.name),
        phase.phase_id
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    row(
        &mut out,
        "Run",
        &format!(
            "`{}` ([run summary](../{}))",
            run.run_id,
            paths::RUN_SUMMARY_FILE
        ),
    );
    let tier_link = match run.tier(&phase.tier_id) {
        Some(t) => {
            let file = paths::tier_file_name(t.tier_index, &t.tier_id, &t.name);
            format!(
                "`{}` {} ([tier summary](../tiers/{file}))",
                t.tier_id,
                cell(&t.name)
            )
        }
        None => format!("`{}`", phase.tier_id),
    };
    row(&mut out, "Tier", &tier_link);
    row(&mut out, "State", &format!("`{}`", phase.state));
    row(&mut out, "Task category", phase.task_category.as_str());
    row(&mut out, "Complexity", phase.complexity.as_str());
    row(
        &mut out,
        "Builder mode",
        phase
            .builder_mode
            .as_ref()
            .map_or("(none)", BuilderMode::as_str),
    );
    timing_rows(
        &mut out,
        phase.history.first().map(|c| c.at),
        finished(&phase.history, PhaseState::is_terminal),
    );
    row(
        &mut out,
        "Commit",
        &phase
            .commit
            .as_deref()
            .map_or_else(|| "(none)".to_owned(), |c| format!("`{}`", cell(c))),
    );
    row(
        &mut out,
        "Snapshot tag",
        &phase
            .snapshot_tag
            .as_deref()
            .map_or_else(|| "(none)".to_owned(), |c| format!("`{}`", cell(c))),
    );
    out.push('\n');

    if let Some(reason) = &phase.failure_reason {
        let heading = if phase.state == PhaseState::Skipped {
            "Skipped"
        } else {
            "Failure reason"
        };
        let _ = writeln!(out, "## {heading}\n\n{}\n", text(reason));
    }

    let _ = writeln!(out, "## Budgets\n");
    phase_budget_table(&mut out, &phase.caps, &phase.usage);
    out.push('\n');

    let _ = writeln!(out, "## Issues\n");
    let _ = writeln!(out, "- Distinct minor issues: {}", int(phase.minor_issues));
    let _ = writeln!(out, "- Distinct major issues: {}", int(phase.major_issues));
    let state = if phase.major_issues > 0 {
        "has_major_issues"
    } else if phase.minor_issues > 0 {
        "has_minor_issues"
    } else {
        "no_issues"
    };
    let _ = writeln!(out, "- Issue state: {state}\n");

    let _ = writeln!(out, "## Attempts\n");
    attempts_table(&mut out, &phase.attempts);
    out.push('\n');

    let _ = writeln!(out, "## CI runs\n");
    ci_table(&mut out, &phase.ci_runs);
    out.push('\n');

    let _ = writeln!(out, "## State history\n");
    history_table(&mut out, &phase.history);
    out
}

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
        integration_tip: run.integration_tip.clone(),
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
        tier_budget_table(&mut out, &t.caps, &t.usage);
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

// ---- pieces ----------------------------------------------------------------------------

fn outcome(state: RunState) -> &'static str {
    if state == RunState::DoneSuccess {
        "succeeded"
    } else if state.is_terminal() {
        "failed"
    } else {
        "in progress"
    }
}

fn row(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "| {key} | {value} |");
}

fn timing_rows(out: &mut String, started: Option<DateTime<Utc>>, finished: Option<DateTime<Utc>>) {
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

fn finished<S: Copy>(
    history: &[StateChange<S>],
    terminal: impl Fn(S) -> bool,
) -> Option<DateTime<Utc>> {
    history.last().filter(|c| terminal(c.state)).map(|c| c.at)
}

fn ts(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn duration(d: chrono::TimeDelta) -> String {
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

fn history_table<S: std::fmt::Display>(out: &mut String, history: &[StateChange<S>]) {
    if history.is_empty() {
        let _ = writeln!(out, "No state changes recorded.");
        return;
    }
    let _ = writeln!(out, "| # | State | At | Time in state |");
    let _ = writeln!(out, "|---:|---|---|---|");
    for (i, change) in history.iter().enumerate() {
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
    }
}

fn status(used: u128, cap: u128) -> &'static str {
    if used > cap { "**exceeded**" } else { "ok" }
}

fn budget_row(
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

fn run_budget_table(out: &mut String, caps: &RunCaps, usage: &RunUsage) {
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

fn tier_budget_table(out: &mut String, caps: &TierCaps, usage: &TierUsage) {
    let _ = writeln!(out, "| Budget | Used | Cap | Status |\n|---|---:|---:|---|");
    budget_row(out, "Tokens", usage.tokens, caps.token_cap);
    budget_row(out, "CI runs", usage.ci_runs, caps.ci_run_cap);
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

fn phase_budget_table(out: &mut String, caps: &PhaseCaps, usage: &PhaseUsage) {
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

fn phase_table<'a>(
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

fn attempts_table(out: &mut String, attempts: &[AttemptRecord]) {
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

fn ci_table(out: &mut String, runs: &[CiRecord]) {
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
fn serde_plain<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

fn cleanliness(c: Option<Cleanliness>) -> &'static str {
    c.map_or("—", Cleanliness::as_str)
}

fn tier_name_suffix(run: &RunRecord, tier: &TierId) -> String {
    run.tier(tier)
        .map_or_else(String::new, |t| format!(" ({})", text(&t.name)))
}

fn phase_name_suffix(run: &RunRecord, phase: &PhaseId) -> String {
    run.phases()
        .find(|p| &p.phase_id == phase)
        .map_or_else(String::new, |p| format!(" ({})", text(&p.name)))
}

/// Free text in Markdown: control characters dropped, newlines kept.
fn text(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect()
}

/// Text for a table cell: one line, `|` escaped, control characters dropped.
fn cell(s: &str) -> String {
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
fn int(n: impl Into<u128>) -> String {
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
