//! The plan splitter of SPEC §3.

use crate::ids::{IdError, RunId};

use super::{PhaseSpec, Plan, PlanErrors, TierSpec};

/// Why a plan could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// The cap was 0.
    #[error("cannot split a plan into parts of at most 0 phases")]
    ZeroCap,
    /// The plan breaks a rule other than its size.
    #[error("cannot split: {0}")]
    Invalid(PlanErrors),
    /// A derived run id (`{run_id}-part-{n:02}`) is not a valid run id, typically because
    /// it is too long.
    #[error("cannot split: the run id of part {part} is invalid: {source}")]
    PartRunId {
        /// The 1-based number of the part.
        part: usize,
        /// Why the derived id was rejected.
        source: IdError,
    },
}

/// Cuts `plan` into plans of at most `max_phases` phases each.
///
/// - A plan that already fits (at most `max_phases` phases) comes back as a single plan,
///   identical to the input (same `run_id`, same tiers and phases in the same document
///   order) except that `run.max_phases` is set to `Some(max_phases)`.
/// - Otherwise tiers are taken in run order and packed greedily: a whole tier joins the
///   current part while the part still has room for all of its phases; else the part is
///   closed and the tier starts the next one.
/// - A tier with more phases than `max_phases` closes the current part and is cut into
///   consecutive chunks of `max_phases` phases in `phase_index` order; every full chunk is
///   a part of its own, and the last chunk stays open for the tiers that follow. Each chunk
///   carries a copy of the tier's [`TierSpec`] unchanged (same `tier_id`, `tier_index`,
///   `name` and `description`): within each part the tier is whole, and the parts are
///   separate runs.
/// - Part `n` (1-based) gets run id `{run_id}-part-{n:02}`, `run.max_phases =
///   Some(max_phases)`, and otherwise the input's run settings (each part is a run of its
///   own with its own token and time caps). Tiers and phases keep their ids and indices,
///   and are listed in run order.
///
/// Invariant: every part passes [`Plan::validate`], and concatenating the parts'
/// [`Plan::phases_in_order`] gives the input's, each phase exactly once.
///
/// ```
/// use autopack_core::plan::{split, Plan};
///
/// let mut phases = String::new();
/// for i in 0..5 {
///     let tier = if i < 3 { "t1" } else { "t2" };
///     if i > 0 { phases.push(','); }
///     phases.push_str(&format!(
///         r#"{{"phase_id": "p{i}", "phase_index": {i}, "tier_id": "{tier}", "name": "P{i}", "task_category": "docs"}}"#
///     ));
/// }
/// let text = format!(
///     r#"{{"run": {{"run_id": "big"}}, "tiers": [
///         {{"tier_id": "t1", "tier_index": 0, "name": "One"}},
///         {{"tier_id": "t2", "tier_index": 1, "name": "Two"}}], "phases": [{phases}]}}"#
/// );
/// let plan = Plan::from_json(&text, "plan.json").unwrap();
/// let parts = split(&plan, 3).unwrap();
/// assert_eq!(parts.len(), 2);
/// assert_eq!(parts[0].run.run_id.as_str(), "big-part-01");
/// assert_eq!(parts[0].phases.len(), 3);
/// assert_eq!(parts[1].tiers[0].tier_id.as_str(), "t2");
/// ```
///
/// # Errors
/// [`SplitError::ZeroCap`] for a cap of 0; [`SplitError::Invalid`] when the plan fails
/// [`Plan::validate_structure`]; [`SplitError::PartRunId`] when a derived run id is invalid.
pub fn split(plan: &Plan, max_phases: u32) -> Result<Vec<Plan>, SplitError> {
    if max_phases == 0 {
        return Err(SplitError::ZeroCap);
    }
    plan.validate_structure().map_err(SplitError::Invalid)?;
    let cap = usize::try_from(max_phases).unwrap_or(usize::MAX);

    if plan.phases.len() <= cap {
        let mut whole = plan.clone();
        whole.run.max_phases = Some(max_phases);
        return Ok(vec![whole]);
    }

    // Each part: the tiers it holds (in order) and its phases (in order).
    let mut parts: Vec<Vec<(&TierSpec, Vec<&PhaseSpec>)>> = Vec::new();
    let mut current: Vec<(&TierSpec, Vec<&PhaseSpec>)> = Vec::new();
    let mut current_len = 0usize;
    for tier in plan.tiers_in_order() {
        let phases = plan.phases_of(&tier.tier_id);
        if current_len + phases.len() <= cap {
            current_len += phases.len();
            current.push((tier, phases));
            continue;
        }
        if !current.is_empty() {
            parts.push(std::mem::take(&mut current));
        }
        if phases.len() <= cap {
            current_len = phases.len();
            current.push((tier, phases));
            continue;
        }
        let mut chunks = phases.chunks(cap).peekable();
        while let Some(chunk) = chunks.next() {
            if chunks.peek().is_some() {
                parts.push(vec![(tier, chunk.to_vec())]);
            } else {
                current_len = chunk.len();
                current.push((tier, chunk.to_vec()));
            }
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }

    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.into_iter().enumerate() {
        let number = i + 1;
        let run_id =
            RunId::new(format!("{}-part-{number:02}", plan.run.run_id)).map_err(|source| {
                SplitError::PartRunId {
                    part: number,
                    source,
                }
            })?;
        let mut run = plan.run.clone();
        run.run_id = run_id;
        run.max_phases = Some(max_phases);
        let mut tiers = Vec::with_capacity(part.len());
        let mut phases = Vec::new();
        for (tier, tier_phases) in part {
            tiers.push(tier.clone());
            phases.extend(tier_phases.into_iter().cloned());
        }
        out.push(Plan { run, tiers, phases });
    }
    Ok(out)
}
