//! What-if results over many runs, counted.

use super::*;

/// Runs that went from one end state to another under the new strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// The recorded end state.
    pub from: RunState,
    /// The what-if end state.
    pub to: RunState,
    /// How many runs.
    pub runs: usize,
    /// Which, in the order given.
    pub run_ids: Vec<RunId>,
}

/// What-if results over many runs, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WhatIfSummary {
    /// Runs replayed.
    pub runs: usize,
    /// Runs that ended the same ([`WhatIf::same_end`]).
    pub same_end: usize,
    /// Runs that finished in another state.
    pub ended_differently: usize,
    /// Those, by state transition, in state order.
    pub transitions: Vec<Transition>,
    /// Runs that would have needed agent or CI work never recorded.
    pub needs_unrecorded: usize,
    /// Which.
    pub needs_unrecorded_runs: Vec<RunId>,
    /// Runs that stalled or were refused under the new strategy.
    pub incomplete: usize,
    /// Which.
    pub incomplete_runs: Vec<RunId>,
    /// Runs with at least one decision other than recorded (whatever their end).
    pub decided_differently: usize,
}

/// Counts `results`: how many runs ended the same, differently (by transition), or needed
/// work never recorded.
pub fn summarise(results: &[(RunId, WhatIf)]) -> WhatIfSummary {
    let mut summary = WhatIfSummary {
        runs: results.len(),
        ..WhatIfSummary::default()
    };
    let mut transitions: BTreeMap<(RunState, RunState), Vec<RunId>> = BTreeMap::new();
    for (run_id, result) in results {
        if result.first_difference.is_some() {
            summary.decided_differently += 1;
        }
        if result.same_end {
            summary.same_end += 1;
            continue;
        }
        match &result.ending {
            Ending::Finished(state) => {
                summary.ended_differently += 1;
                transitions
                    .entry((result.recorded_state, *state))
                    .or_default()
                    .push(run_id.clone());
            }
            Ending::NeedsUnrecorded { .. } => {
                summary.needs_unrecorded += 1;
                summary.needs_unrecorded_runs.push(run_id.clone());
            }
            Ending::Stalled { .. } | Ending::Refused { .. } => {
                summary.incomplete += 1;
                summary.incomplete_runs.push(run_id.clone());
            }
        }
    }
    summary.transitions = transitions
        .into_iter()
        .map(|((from, to), run_ids)| Transition {
            from,
            to,
            runs: run_ids.len(),
            run_ids,
        })
        .collect();
    summary
}

/// Runs the text of a summary names per line before it says how many more.
const LISTED_RUNS: usize = 10;

impl WhatIfSummary {
    /// The summary for a person, over several lines.
    pub fn render_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for WhatIfSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first few runs of each list (the JSON form has them all).
        let list = |ids: &[RunId]| {
            let mut text = ids
                .iter()
                .take(LISTED_RUNS)
                .map(RunId::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            if ids.len() > LISTED_RUNS {
                text.push_str(&format!(", … {} more", ids.len() - LISTED_RUNS));
            }
            text
        };
        writeln!(
            f,
            "{} {}: {} ended the same, {} ended differently, {} needed work never recorded",
            self.runs,
            if self.runs == 1 { "run" } else { "runs" },
            self.same_end,
            self.ended_differently,
            self.needs_unrecorded
        )?;
        for t in &self.transitions {
            writeln!(
                f,
                "  {} → {}: {} ({})",
                t.from,
                t.to,
                t.runs,
                list(&t.run_ids)
            )?;
        }
        if self.needs_unrecorded > 0 {
            writeln!(
                f,
                "  needed work never recorded: {}",
                list(&self.needs_unrecorded_runs)
            )?;
        }
        if self.incomplete > 0 {
            writeln!(
                f,
                "  stalled or refused: {} ({})",
                self.incomplete,
                list(&self.incomplete_runs)
            )?;
        }
        writeln!(
            f,
            "  decided differently somewhere: {} of {}",
            self.decided_differently, self.runs
        )
    }
}
