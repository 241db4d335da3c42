//! What changed in a run's record since the last look: state transitions of the run, its
//! tiers and phases, and tier budget breaches, in causal order. Progress lines and the
//! event stream (`--events`) both read the record through it.

use std::collections::HashMap;

use autopack::core::budget::TierBreach;
use autopack::core::record::RunRecord;
use chrono::{DateTime, Utc};

/// What a transition happened to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The run.
    Run,
    /// A tier.
    Tier,
    /// A phase.
    Phase,
}

/// One change of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The run, a tier or a phase entered `state` at `at`.
    Transition {
        /// When.
        at: DateTime<Utc>,
        /// Of what.
        scope: Scope,
        /// The run, tier or phase id.
        id: String,
        /// A tier's name (for tiers).
        name: Option<String>,
        /// The state entered.
        state: String,
    },
    /// A tier's budget was breached.
    Breach {
        /// The tier.
        tier_id: String,
        /// The breach.
        breach: TierBreach,
    },
}

/// How far each history and breach list of a record was seen.
#[derive(Debug, Default)]
pub struct Seen {
    run: usize,
    tiers: HashMap<String, usize>,
    phases: HashMap<String, usize>,
    breaches: HashMap<String, usize>,
}

impl Seen {
    /// The changes of `record` since the last call, in causal order: the run moves (it
    /// leads each phase's steps), each tier starts, its phases move, its breaches, the
    /// tier ends after its phases, the run ends last.
    pub fn changes(&mut self, record: &RunRecord) -> Vec<Change> {
        let mut out = Vec::new();
        let mut run_ended = Vec::new();
        let run_id = record.run_id.to_string();
        for change in record.history.iter().skip(self.run) {
            let c = Change::Transition {
                at: change.at,
                scope: Scope::Run,
                id: run_id.clone(),
                name: None,
                state: change.state.to_string(),
            };
            if change.state.is_terminal() {
                run_ended.push(c);
            } else {
                out.push(c);
            }
        }
        self.run = record.history.len();
        for tier in &record.tiers {
            let tier_id = tier.tier_id.to_string();
            let seen = self.tiers.entry(tier_id.clone()).or_default();
            let mut tier_ended = Vec::new();
            for change in tier.history.iter().skip(*seen) {
                let c = Change::Transition {
                    at: change.at,
                    scope: Scope::Tier,
                    id: tier_id.clone(),
                    name: Some(tier.name.clone()),
                    state: change.state.to_string(),
                };
                if change.state.is_terminal() {
                    tier_ended.push(c);
                } else {
                    out.push(c);
                }
            }
            *seen = tier.history.len();
            for phase in &tier.phases {
                let phase_id = phase.phase_id.to_string();
                let seen = self.phases.entry(phase_id.clone()).or_default();
                for change in phase.history.iter().skip(*seen) {
                    out.push(Change::Transition {
                        at: change.at,
                        scope: Scope::Phase,
                        id: phase_id.clone(),
                        name: None,
                        state: change.state.to_string(),
                    });
                }
                *seen = phase.history.len();
            }
            let seen = self.breaches.entry(tier_id.clone()).or_default();
            for breach in tier.breaches.iter().skip(*seen) {
                out.push(Change::Breach {
                    tier_id: tier_id.clone(),
                    breach: *breach,
                });
            }
            *seen = tier.breaches.len();
            out.extend(tier_ended);
        }
        out.extend(run_ended);
        out
    }
}
