//! Plan validation: every problem at once, each named by JSON path and id.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};
use std::fmt;

use crate::ids::{PhaseId, TierId};
use crate::json::JsonError;
use crate::vocabulary::RunScope;

use super::{PhaseSpec, Plan};

/// What is wrong with one element of a plan.
///
/// The rules, in the order they are checked:
/// - run caps (`token_cap`, `max_phases`, `max_duration_minutes`) must not be 0;
/// - a `single_tier` run holds exactly one tier;
/// - the plan holds at least one phase, and no more than its `max_phases` (the plan's value
///   or the default 25) — a larger plan must be cut with [`crate::plan::split`];
/// - tier ids and `tier_index` values are unique;
/// - every tier has at least one phase: an empty tier can never run, and would otherwise be
///   reported `COMPLETE` without doing anything, so it is treated as a mistake in the plan;
/// - phase ids and `phase_index` values are unique (across the whole plan);
/// - every phase names a tier of the plan;
/// - phase order follows tier order: every phase of an earlier tier (smaller `tier_index`)
///   has a smaller `phase_index` than every phase of a later tier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanProblemKind {
    /// A run cap is 0, which no run can satisfy.
    #[error("{field} must be at least 1")]
    ZeroCap {
        /// `token_cap`, `max_phases` or `max_duration_minutes`.
        field: &'static str,
    },
    /// A `single_tier` run with several tiers.
    #[error(
        "run_scope is single_tier but the plan has {tiers} tiers; a single_tier run takes exactly one"
    )]
    SingleTierWithSeveralTiers {
        /// How many tiers the plan has.
        tiers: usize,
    },
    /// The plan has no phases.
    #[error("the plan has no phases")]
    NoPhases,
    /// More phases than `max_phases`.
    #[error(
        "the plan has {phases} phases, more than max_phases {max_phases}; cut it into plans within the cap with autopack_core::plan::split"
    )]
    TooManyPhases {
        /// Phases in the plan.
        phases: usize,
        /// The cap.
        max_phases: u32,
    },
    /// A tier id used twice.
    #[error("duplicate tier_id \"{tier_id}\"; first used at {first}")]
    DuplicateTierId {
        /// The repeated id.
        tier_id: TierId,
        /// JSON path of the first tier with that id.
        first: String,
    },
    /// A `tier_index` used twice.
    #[error("duplicate tier_index {tier_index}; also used by tier \"{first}\"")]
    DuplicateTierIndex {
        /// The repeated index.
        tier_index: u32,
        /// The first tier with that index.
        first: TierId,
    },
    /// A tier with no phases.
    #[error("tier \"{tier_id}\" has no phases; an empty tier can never run")]
    EmptyTier {
        /// The empty tier.
        tier_id: TierId,
    },
    /// A phase id used twice.
    #[error("duplicate phase_id \"{phase_id}\"; first used at {first}")]
    DuplicatePhaseId {
        /// The repeated id.
        phase_id: PhaseId,
        /// JSON path of the first phase with that id.
        first: String,
    },
    /// A `phase_index` used twice.
    #[error("duplicate phase_index {phase_index}; also used by phase \"{first}\"")]
    DuplicatePhaseIndex {
        /// The repeated index.
        phase_index: u32,
        /// The first phase with that index.
        first: PhaseId,
    },
    /// A phase naming a tier the plan does not have.
    #[error("tier \"{tier_id}\" is not in the plan's tiers")]
    UnknownTier {
        /// The missing tier.
        tier_id: TierId,
    },
    /// A phase whose `phase_index` is smaller than that of a phase of an earlier tier.
    #[error(
        "phase_index {phase_index} (tier \"{tier_id}\") is smaller than phase_index {earlier_phase_index} of phase \"{earlier_phase}\" in the earlier tier \"{earlier_tier}\"; phases of an earlier tier must all come first"
    )]
    PhaseBeforeEarlierTier {
        /// The phase's index.
        phase_index: u32,
        /// The phase's tier.
        tier_id: TierId,
        /// The phase of an earlier tier with the largest index.
        earlier_phase: PhaseId,
        /// Its index.
        earlier_phase_index: u32,
        /// Its tier.
        earlier_tier: TierId,
    },
}

/// One problem of a plan, naming the element at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}{}: {kind}", id_suffix(.id))]
pub struct PlanProblem {
    /// JSON path of the offending value: `phases[3].tier_id`, `tiers[1].tier_index`,
    /// `run.max_phases`, `phases`.
    pub path: String,
    /// The id of the element at fault (a tier or phase id; the run id for run-level
    /// problems).
    pub id: Option<String>,
    /// What is wrong.
    pub kind: PlanProblemKind,
}

fn id_suffix(id: &Option<String>) -> String {
    match id {
        Some(id) => format!(" ({id})"),
        None => String::new(),
    }
}

/// Every problem of a plan, in the order of the rules of [`PlanProblemKind`], then of the
/// elements. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanErrors(pub Vec<PlanProblem>);

impl PlanErrors {
    /// The problems.
    pub fn problems(&self) -> &[PlanProblem] {
        &self.0
    }

    /// How many problems there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the only problem is that the plan is too large, so that
    /// [`crate::plan::split`] would fix it.
    pub fn needs_split_only(&self) -> bool {
        !self.0.is_empty()
            && self
                .0
                .iter()
                .all(|p| matches!(p.kind, PlanProblemKind::TooManyPhases { .. }))
    }
}

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "invalid plan: {one}"),
            many => {
                write!(f, "invalid plan: {} problems", many.len())?;
                for problem in many {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for PlanErrors {}

impl IntoIterator for PlanErrors {
    type Item = PlanProblem;
    type IntoIter = std::vec::IntoIter<PlanProblem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a PlanErrors {
    type Item = &'a PlanProblem;
    type IntoIter = std::slice::Iter<'a, PlanProblem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A plan document that could not be read or is not a valid plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Not a plan document: bad JSON, a missing or unknown field, a bad id, an unknown
    /// `run_scope`…
    #[error(transparent)]
    Json(#[from] JsonError),
    /// A document larger than the plan size limit (see [`crate::limits`]); not parsed.
    #[error(transparent)]
    TooLarge(#[from] crate::limits::TooLarge),
    /// A plan document that breaks the plan rules.
    #[error("{source_name}: {errors}")]
    Invalid {
        /// Where the document came from.
        source_name: String,
        /// Every problem.
        errors: PlanErrors,
    },
}

impl PlanError {
    /// The validation problems, when the document parsed but broke the rules.
    pub fn problems(&self) -> Option<&[PlanProblem]> {
        match self {
            PlanError::Json(_) | PlanError::TooLarge(_) => None,
            PlanError::Invalid { errors, .. } => Some(errors.problems()),
        }
    }
}

impl Plan {
    /// Checks every rule of [`PlanProblemKind`] and returns every problem found.
    ///
    /// # Errors
    /// A [`PlanErrors`] listing every problem.
    pub fn validate(&self) -> Result<(), PlanErrors> {
        into_result(problems(self, true))
    }

    /// As [`Plan::validate`], but without the `max_phases` check: what must hold of a plan
    /// before it can be [split](crate::plan::split).
    ///
    /// # Errors
    /// A [`PlanErrors`] listing every problem.
    pub fn validate_structure(&self) -> Result<(), PlanErrors> {
        into_result(problems(self, false))
    }
}

fn into_result(problems: Vec<PlanProblem>) -> Result<(), PlanErrors> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PlanErrors(problems))
    }
}

fn problem(path: String, id: Option<&str>, kind: PlanProblemKind) -> PlanProblem {
    PlanProblem {
        path,
        id: id.map(str::to_owned),
        kind,
    }
}

fn problems(plan: &Plan, check_phase_count: bool) -> Vec<PlanProblem> {
    let mut out = Vec::new();
    let run = &plan.run;
    let run_id = Some(run.run_id.as_str());

    // Run caps.
    let caps = [
        ("token_cap", run.token_cap.map(|v| v == 0)),
        ("max_phases", run.max_phases.map(|v| v == 0)),
        (
            "max_duration_minutes",
            run.max_duration_minutes.map(|v| v == 0),
        ),
    ];
    for (field, zero) in caps {
        if zero == Some(true) {
            out.push(problem(
                format!("run.{field}"),
                run_id,
                PlanProblemKind::ZeroCap { field },
            ));
        }
    }

    // Run scope.
    if run.run_scope == Some(RunScope::SingleTier) && plan.tiers.len() > 1 {
        out.push(problem(
            "run.run_scope".into(),
            run_id,
            PlanProblemKind::SingleTierWithSeveralTiers {
                tiers: plan.tiers.len(),
            },
        ));
    }

    // Size.
    if plan.phases.is_empty() {
        out.push(problem("phases".into(), run_id, PlanProblemKind::NoPhases));
    } else if check_phase_count {
        let max_phases = plan.max_phases();
        // A zero cap is reported above; every plan would exceed it.
        if max_phases > 0 && plan.phases.len() > max_phases as usize {
            out.push(problem(
                "phases".into(),
                run_id,
                PlanProblemKind::TooManyPhases {
                    phases: plan.phases.len(),
                    max_phases,
                },
            ));
        }
    }

    // Tiers.
    // Fx hashing and maps sized up front: a journal replay validates the plan again, and
    // plans can be large.
    let mut tier_ids: FxHashMap<&TierId, usize> =
        FxHashMap::with_capacity_and_hasher(plan.tiers.len(), Default::default());
    let mut tier_indices: FxHashMap<u32, &TierId> =
        FxHashMap::with_capacity_and_hasher(plan.tiers.len(), Default::default());
    for (i, tier) in plan.tiers.iter().enumerate() {
        let id = Some(tier.tier_id.as_str());
        if let Some(first) = tier_ids.get(&tier.tier_id) {
            out.push(problem(
                format!("tiers[{i}].tier_id"),
                id,
                PlanProblemKind::DuplicateTierId {
                    tier_id: tier.tier_id.clone(),
                    first: format!("tiers[{first}]"),
                },
            ));
        } else {
            tier_ids.insert(&tier.tier_id, i);
        }
        if let Some(first) = tier_indices.get(&tier.tier_index) {
            out.push(problem(
                format!("tiers[{i}].tier_index"),
                id,
                PlanProblemKind::DuplicateTierIndex {
                    tier_index: tier.tier_index,
                    first: (*first).clone(),
                },
            ));
        } else {
            tier_indices.insert(tier.tier_index, &tier.tier_id);
        }
    }
    let tiers_with_phases: FxHashSet<&TierId> = plan.phases.iter().map(|p| &p.tier_id).collect();
    for (i, tier) in plan.tiers.iter().enumerate() {
        // Report an empty tier once, at its first occurrence.
        if tier_ids.get(&tier.tier_id) == Some(&i) && !tiers_with_phases.contains(&tier.tier_id) {
            out.push(problem(
                format!("tiers[{i}]"),
                Some(tier.tier_id.as_str()),
                PlanProblemKind::EmptyTier {
                    tier_id: tier.tier_id.clone(),
                },
            ));
        }
    }

    // Phases.
    let mut phase_ids: FxHashMap<&PhaseId, usize> =
        FxHashMap::with_capacity_and_hasher(plan.phases.len(), Default::default());
    let mut phase_indices: FxHashMap<u32, &PhaseId> =
        FxHashMap::with_capacity_and_hasher(plan.phases.len(), Default::default());
    for (i, phase) in plan.phases.iter().enumerate() {
        let id = Some(phase.phase_id.as_str());
        if let Some(first) = phase_ids.get(&phase.phase_id) {
            out.push(problem(
                format!("phases[{i}].phase_id"),
                id,
                PlanProblemKind::DuplicatePhaseId {
                    phase_id: phase.phase_id.clone(),
                    first: format!("phases[{first}]"),
                },
            ));
        } else {
            phase_ids.insert(&phase.phase_id, i);
        }
        if let Some(first) = phase_indices.get(&phase.phase_index) {
            out.push(problem(
                format!("phases[{i}].phase_index"),
                id,
                PlanProblemKind::DuplicatePhaseIndex {
                    phase_index: phase.phase_index,
                    first: (*first).clone(),
                },
            ));
        } else {
            phase_indices.insert(phase.phase_index, &phase.phase_id);
        }
        if !tier_ids.contains_key(&phase.tier_id) {
            out.push(problem(
                format!("phases[{i}].tier_id"),
                id,
                PlanProblemKind::UnknownTier {
                    tier_id: phase.tier_id.clone(),
                },
            ));
        }
    }

    // Phase order follows tier order. Phases are grouped by their tier's `tier_index`
    // (tiers sharing an index, already reported, share a group and so are not ordered
    // against each other); phases of unknown tiers are left out.
    let mut groups: BTreeMap<u32, Vec<(usize, &PhaseSpec)>> = BTreeMap::new();
    for (i, phase) in plan.phases.iter().enumerate() {
        if let Some(&t) = tier_ids.get(&phase.tier_id) {
            groups
                .entry(plan.tiers[t].tier_index)
                .or_default()
                .push((i, phase));
        }
    }
    let mut earlier_max: Option<&PhaseSpec> = None;
    for group in groups.values() {
        if let Some(earlier) = earlier_max {
            for &(i, phase) in group {
                if phase.phase_index < earlier.phase_index {
                    out.push(problem(
                        format!("phases[{i}].phase_index"),
                        Some(phase.phase_id.as_str()),
                        PlanProblemKind::PhaseBeforeEarlierTier {
                            phase_index: phase.phase_index,
                            tier_id: phase.tier_id.clone(),
                            earlier_phase: earlier.phase_id.clone(),
                            earlier_phase_index: earlier.phase_index,
                            earlier_tier: earlier.tier_id.clone(),
                        },
                    ));
                }
            }
        }
        if let Some(&(_, group_max)) = group.iter().max_by_key(|(_, phase)| phase.phase_index)
            && earlier_max.is_none_or(|earlier| group_max.phase_index > earlier.phase_index)
        {
            earlier_max = Some(group_max);
        }
    }

    out
}
