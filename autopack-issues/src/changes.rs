//! Which materialised views a ledger's changes touched, so that a store can rewrite only
//! those ([`Ledger::take_changes`]).
//!
//! Tracking is off by default (the in-memory ledger pays one branch per change for it).
//! When on, every change counts one change against each view whose content it may alter:
//! a record against the backlog, the run's issue index and the phase's issue file, plus
//! every other phase file of the run that lists the key when the key's effective severity
//! in the run rose (it is shown in every phase of the run); a resolve and a threshold
//! change that altered statuses against the backlog. A count is an upper bound on the
//! entries of the view that changed, never less: a view without a count is unchanged.

use autopack_core::ids::{PhaseId, RunId};
use rustc_hash::FxHashMap;

use crate::ledger::Ledger;

type Idx = u32;

/// One materialised view of a ledger (a file of the playbook layout).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViewKey {
    /// The project backlog.
    Backlog,
    /// A run's issue index.
    RunIndex {
        /// The run.
        run_id: RunId,
    },
    /// A phase's issue file.
    PhaseFile {
        /// The run.
        run_id: RunId,
        /// The phase's index in the plan.
        phase_index: u32,
        /// The phase.
        phase_id: PhaseId,
    },
}

/// Change counts per view, in interned form (cheap to update on every record).
#[derive(Debug, Clone, Default)]
pub(crate) struct Changes {
    pub(crate) backlog: u64,
    runs: FxHashMap<Idx, u64>,
    /// `(run, phase slot)`.
    phases: FxHashMap<(Idx, Idx), u64>,
}

impl Changes {
    /// One record in phase `slot` of `run`; `also` lists other phase slots of the run
    /// whose files show the record's effect.
    pub(crate) fn note_record(
        &mut self,
        run: Idx,
        slot: Idx,
        also: Option<impl Iterator<Item = Idx>>,
    ) {
        self.backlog += 1;
        *self.runs.entry(run).or_default() += 1;
        *self.phases.entry((run, slot)).or_default() += 1;
        for other in also.into_iter().flatten() {
            *self.phases.entry((run, other)).or_default() += 1;
        }
    }
}

impl Ledger {
    /// Turns change tracking on or off (see the [module docs](crate::changes)); turning it
    /// off drops the counts.
    pub fn track_changes(&mut self, on: bool) {
        match (on, self.changes.is_some()) {
            (true, false) => self.changes = Some(Box::default()),
            (false, true) => self.changes = None,
            _ => {}
        }
    }

    /// Whether change tracking is on.
    pub fn tracks_changes(&self) -> bool {
        self.changes.is_some()
    }

    /// The views changed since the last call (or since tracking was turned on), each with
    /// its count of changes, sorted by view; the counts restart from zero. Empty when
    /// tracking is off.
    pub fn take_changes(&mut self) -> Vec<(ViewKey, u64)> {
        let Some(changes) = self.changes.as_mut() else {
            return Vec::new();
        };
        let changes = std::mem::take(changes.as_mut());
        let mut out = Vec::with_capacity(1 + changes.runs.len() + changes.phases.len());
        if changes.backlog > 0 {
            out.push((ViewKey::Backlog, changes.backlog));
        }
        for (run, n) in changes.runs {
            out.push((
                ViewKey::RunIndex {
                    run_id: self.run_name(run).clone(),
                },
                n,
            ));
        }
        for ((run, slot), n) in changes.phases {
            if let Some((phase_index, phase_id)) = self.phase_of_slot(run, slot) {
                out.push((
                    ViewKey::PhaseFile {
                        run_id: self.run_name(run).clone(),
                        phase_index,
                        phase_id: phase_id.clone(),
                    },
                    n,
                ));
            }
        }
        out.sort();
        out
    }

    /// The number of entries of a view: keys of the backlog, of the run's index, or issues
    /// of the phase's file (0 for a run or phase the ledger does not hold).
    pub fn view_len(&self, view: &ViewKey) -> usize {
        match view {
            ViewKey::Backlog => self.len(),
            ViewKey::RunIndex { run_id } => self.run_key_count(run_id),
            ViewKey::PhaseFile {
                run_id, phase_id, ..
            } => self.phase_key_count(run_id, phase_id),
        }
    }

    /// Every view the ledger can materialise: the backlog, then each run's index and phase
    /// files (runs by id, phases by index then id).
    pub fn views(&self) -> Vec<ViewKey> {
        let mut out = vec![ViewKey::Backlog];
        for run_id in self.runs() {
            for (phase_index, phase_id) in self.phases_of(&run_id) {
                out.push(ViewKey::PhaseFile {
                    run_id: run_id.clone(),
                    phase_index,
                    phase_id,
                });
            }
            out.push(ViewKey::RunIndex { run_id });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aging::AgingThresholds;
    use crate::ledger::{IssueObservation, ReportedIssue};
    use autopack_core::ids::{IssueKey, TierId};
    use autopack_core::vocabulary::{
        Complexity, IssueCategory, IssueSource, Severity, TaskCategory,
    };

    fn observation(run: &str, tier: &str, phase_index: u32, key: &str) -> IssueObservation {
        IssueObservation {
            run_id: RunId::new(run).unwrap(),
            tier_id: TierId::new(tier).unwrap(),
            phase_index,
            phase_id: PhaseId::new(format!("{tier}-p{phase_index}")).unwrap(),
            task_category: TaskCategory::Tests,
            complexity: Complexity::Low,
            issue: ReportedIssue {
                issue_key: IssueKey::new(key).unwrap(),
                severity: Severity::Minor,
                source: IssueSource::Test,
                category: IssueCategory::new("test_failure").unwrap(),
                expected_fail: false,
                evidence_refs: Vec::new(),
            },
        }
    }

    #[test]
    fn tracking_is_off_by_default_and_counts_when_on() {
        let mut ledger = Ledger::new(AgingThresholds::default());
        ledger
            .record(&observation("r", "t", 0, "k"), chrono::Utc::now())
            .unwrap();
        assert!(ledger.take_changes().is_empty());
        ledger.track_changes(true);
        ledger
            .record(&observation("r", "t", 1, "k"), chrono::Utc::now())
            .unwrap();
        let changes = ledger.take_changes();
        let run_id = RunId::new("r").unwrap();
        assert_eq!(
            changes,
            vec![
                (ViewKey::Backlog, 1),
                (
                    ViewKey::RunIndex {
                        run_id: run_id.clone()
                    },
                    1
                ),
                (
                    ViewKey::PhaseFile {
                        run_id,
                        phase_index: 1,
                        phase_id: PhaseId::new("t-p1").unwrap()
                    },
                    1
                ),
            ]
        );
        assert!(ledger.take_changes().is_empty(), "counts restart");
    }
}
