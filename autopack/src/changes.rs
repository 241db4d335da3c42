//! What changed in a run's record since the last look: state transitions of the run, its
//! tiers and phases, and tier budget breaches, in causal order; and when a phase is
//! escalated. The CLI's progress lines and event stream and the HTTP service's event
//! stream all read a run through it.
//!
//! ```
//! use autopack::changes::{Change, Seen};
//! use autopack::core::plan::Plan;
//! use autopack::supervisor::{Input, Supervisor};
//!
//! let plan = Plan::from_json(r#"{"run": {"run_id": "r1"},
//!     "tiers": [{"tier_id": "t1", "tier_index": 0, "name": "Core"}],
//!     "phases": [{"phase_id": "p1", "phase_index": 0, "tier_id": "t1", "name": "One",
//!                 "task_category": "feature", "complexity": "low"}]}"#, "plan").unwrap();
//! let strategy = autopack::strategy::dry_run(&plan, None, None).unwrap();
//! let mut sup = Supervisor::new();
//! sup.handle(Input::Start { at: chrono::Utc::now(), plan, strategy: Box::new(strategy),
//!     backlog: Box::default() }).unwrap();
//!
//! let mut seen = Seen::default();
//! let changes = seen.changes(sup.record().unwrap());
//! assert!(changes.iter().any(|c| matches!(c, Change::Transition { id, state, .. }
//!     if id == "p1" && state == "EXECUTING")));
//! // Nothing changed since.
//! assert!(seen.changes(sup.record().unwrap()).is_empty());
//! ```

use std::collections::HashMap;

use autopack_core::budget::TierBreach;
use autopack_core::ids::PhaseId;
use autopack_core::message::AuditorRecommendation;
use autopack_core::record::RunRecord;
use chrono::{DateTime, Utc};

use crate::supervisor::{Action, AgentOutcome, Input};

/// What a transition happened to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// A phase sent to its Auditor (the Supervisor asked for a review), or failed by an
/// Auditor's `escalate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// The phase.
    pub phase_id: PhaseId,
    /// Why: the audit's reason, or the Auditor's notes.
    pub reason: String,
}

impl Escalation {
    /// The escalation an action makes: a review request.
    pub fn of_action(action: &Action) -> Option<Escalation> {
        match action {
            Action::RequestAudit(r) => Some(Escalation {
                phase_id: r.phase_id.clone(),
                reason: r.reason.to_string(),
            }),
            _ => None,
        }
    }

    /// The escalation an input makes: an Auditor's `escalate`.
    pub fn of_input(input: &Input) -> Option<Escalation> {
        match input {
            Input::AuditorFinished {
                phase_id,
                outcome: AgentOutcome::Returned(r),
                ..
            } if r.recommendation == AuditorRecommendation::Escalate => Some(Escalation {
                phase_id: phase_id.clone(),
                reason: r.review_notes.clone(),
            }),
            _ => None,
        }
    }
}
