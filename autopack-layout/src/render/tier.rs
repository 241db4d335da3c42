//! Tier summaries.

use std::fmt::Write as _;

use autopack_core::lifecycle::TierState;
use autopack_core::record::{RunRecord, TierRecord};

use super::pieces::*;
use crate::paths;

/// `tiers/tier_{idx:02}_{name}.md` for `tier` of `run`.
pub fn tier_summary(run: &RunRecord, tier: &TierRecord) -> String {
    let mut out = String::with_capacity(summary_capacity(
        0,
        tier.phases.len().min(SUMMARY_PHASE_ROWS),
    ));
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
    tier_budget_table(&mut out, &tier.caps, &tier.usage, &tier.breaches);
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
    } else if tier.phases.len() <= SUMMARY_PHASE_ROWS {
        phase_table(&mut out, tier.phases.iter(), false);
        out.push('\n');
    } else {
        phase_digest(
            &mut out,
            tier.phases.iter(),
            tier.phases.len(),
            false,
            "every phase has its summary in [phases/](../phases/)",
        );
    }

    let _ = writeln!(out, "## State history\n");
    history_table(&mut out, &tier.history);
    out
}
