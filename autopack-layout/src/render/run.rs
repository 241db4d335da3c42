//! `run_summary.md`.

use std::fmt::Write as _;

use autopack_core::record::RunRecord;

use super::pieces::*;
use crate::paths;

/// `run_summary.md`.
pub fn run_summary(run: &RunRecord) -> String {
    let count: usize = run.tiers.iter().map(|t| t.phases.len()).sum();
    let mut out = String::with_capacity(summary_capacity(
        run.tiers.len(),
        count.min(SUMMARY_PHASE_ROWS),
    ));
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
            &format!("`autonomous/{}` at `{}`", run.run_id, cell(tip.as_str())),
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
    if count == 0 {
        let _ = writeln!(out, "No phases.\n");
    } else if count <= SUMMARY_PHASE_ROWS {
        phase_table(&mut out, run.phases(), true);
        out.push('\n');
    } else {
        phase_digest(
            &mut out,
            run.phases(),
            count,
            true,
            "each tier summary counts its own, and every phase has its summary in \
             [phases/](phases/)",
        );
    }

    let _ = writeln!(out, "## State history\n");
    history_table(&mut out, &run.history);
    out
}
