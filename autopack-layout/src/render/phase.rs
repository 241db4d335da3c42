//! Phase summaries.

use std::fmt::Write as _;

use autopack_core::lifecycle::PhaseState;
use autopack_core::record::{PhaseRecord, RunRecord};
use autopack_core::vocabulary::BuilderMode;

use super::pieces::*;
use crate::paths;

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
        &phase.commit.as_ref().map_or_else(
            || "(none)".to_owned(),
            |c| format!("`{}`", cell(c.as_str())),
        ),
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
