//! Run start: validating the plan, joining it with its frozen strategy, loading the
//! ledger, and building the initial record.

use rustc_hash::FxHashMap;

use chrono::{DateTime, Utc};

use autopack_core::budget::{PhaseUsage, RunCaps, RunUsage, TierUsage};
use autopack_core::ids::PhaseId;
use autopack_core::lifecycle::{PhaseState, RunState, TierState};
use autopack_core::plan::{PhaseSpec, Plan, TierSpec};
use autopack_core::record::{PhaseRecord, RunRecord, StateChange, TierRecord};
use autopack_core::vocabulary::DebtStatus;
use autopack_issues::{Ledger, ProjectBacklog};
use autopack_strategy::{PhaseStrategy, Strategy};

use super::frozen::{FrozenPhase, FrozenRun, FrozenTier};
use super::{Active, At, Changed, SupervisorConfig, SupervisorError};

pub(super) fn start(
    at: DateTime<Utc>,
    plan: Plan,
    strategy: &Strategy,
    backlog: &ProjectBacklog,
    config: SupervisorConfig,
) -> Result<Active, SupervisorError> {
    plan.validate()?;
    let (run, names) = freeze(plan, strategy)?;
    let ledger = Ledger::from_backlog(backlog, run.aging)
        .map_err(|e| SupervisorError::Backlog(e.to_string()))?;
    let record = initial_record(&run, names, at);
    Ok(Active {
        run,
        record,
        ledger,
        started_at: at,
        current: None,
        next: At { tier: 0, phase: 0 },
        pending: None,
        config,
        changed: Changed::everything(),
        ci_baselines: std::collections::BTreeMap::new(),
    })
}

fn mismatch(message: String) -> SupervisorError {
    SupervisorError::StrategyMismatch(message)
}

/// Joins the plan with its strategy. Every plan phase must have exactly one slice and
/// sit in its own tier's phase list; inserted phases come from the strategy.
///
/// Takes the plan by value so that names and descriptions move rather than copy (a
/// journal replay starts with the whole plan); returns the phase names in run order for
/// the record.
pub(super) fn freeze(
    plan: Plan,
    strategy: &Strategy,
) -> Result<(FrozenRun, Vec<String>), SupervisorError> {
    // Tiers are few: copying them keeps `Plan::tiers_in_order` the one ordering rule.
    let tier_order: Vec<TierSpec> = plan.tiers_in_order().into_iter().cloned().collect();
    let Plan {
        run: run_spec,
        phases: phase_specs,
        ..
    } = plan;
    if strategy.run_id != run_spec.run_id {
        return Err(mismatch(format!(
            "strategy is for run {}, the plan for run {}",
            strategy.run_id, run_spec.run_id
        )));
    }
    let planned = phase_specs.len();
    // Every phase spec, planned then inserted; each is taken once when its tier places it.
    let mut specs: Vec<Option<PhaseSpec>> =
        Vec::with_capacity(planned + strategy.inserted_phases.len());
    let mut by_id: FxHashMap<PhaseId, usize> =
        FxHashMap::with_capacity_and_hasher(specs.capacity(), Default::default());
    for spec in phase_specs {
        // `validate` refused repeated phase ids.
        by_id.insert(spec.phase_id.clone(), specs.len());
        specs.push(Some(spec));
    }
    for inserted in &strategy.inserted_phases {
        if by_id
            .insert(inserted.phase_id.clone(), specs.len())
            .is_some()
        {
            return Err(mismatch(format!(
                "inserted phase {} has the id of a planned phase",
                inserted.phase_id
            )));
        }
        specs.push(Some(inserted.clone()));
    }
    // Hashing beats the strategy's binary search here: each probe of that search follows
    // an id's pointer to another cache line, eighteen times per phase at 250,000 phases.
    let mut slices: FxHashMap<&str, &PhaseStrategy> =
        FxHashMap::with_capacity_and_hasher(strategy.phase_strategies.len(), Default::default());
    slices.extend(
        strategy
            .phase_strategies
            .iter()
            .map(|(key, slice)| (key.as_str(), slice)),
    );
    let mut names = Vec::with_capacity(specs.len());
    let mut tiers = Vec::with_capacity(tier_order.len());
    for tier in &tier_order {
        let Some(ts) = strategy.tier(&tier.tier_id) else {
            return Err(mismatch(format!(
                "no tier strategy for tier {}",
                tier.tier_id
            )));
        };
        let mut phases = Vec::with_capacity(ts.phase_ids.len());
        for phase_id in &ts.phase_ids {
            let (Some(&slice), Some(&i)) = (slices.get(phase_id.as_str()), by_id.get(phase_id))
            else {
                return Err(mismatch(format!(
                    "tier {} lists phase {phase_id}, which has no slice or no phase",
                    tier.tier_id
                )));
            };
            let (true, Some(spec)) = (slice.tier_id == tier.tier_id, specs[i].take()) else {
                return Err(mismatch(format!(
                    "phase {phase_id} is placed in tier {} more than once or in the wrong tier",
                    tier.tier_id
                )));
            };
            names.push(spec.name);
            phases.push(FrozenPhase {
                phase_id: spec.phase_id,
                phase_index: slice.phase_index,
                tier_id: tier.tier_id.clone(),
                description: spec.description,
                task_category: slice.task_category.clone(),
                complexity: slice.complexity,
                builder_mode: Some(slice.builder_mode.clone()),
                caps: slice.caps(),
                ci_profile: slice.ci_profile,
                ci_max_retries: slice.ci_max_retries,
                auto_apply: slice.auto_apply,
                auditor_profile: slice.auditor_profile.clone(),
                high_risk: slice.high_risk,
                scope: slice.scope.clone(),
            });
        }
        tiers.push(FrozenTier {
            tier_id: tier.tier_id.clone(),
            tier_index: tier.tier_index,
            name: tier.name.clone(),
            caps: ts.caps(),
            phases,
        });
    }
    // The smallest unplaced id, so that the message does not depend on hashing.
    if let Some(missing) = specs.iter().flatten().map(|spec| &spec.phase_id).min() {
        return Err(mismatch(format!(
            "phase {missing} is in no tier of the strategy"
        )));
    }
    let run = FrozenRun {
        run_id: run_spec.run_id,
        safety_profile: strategy.safety_profile,
        run_scope: strategy.run_scope,
        strategy_version: strategy.version,
        patch_policy: strategy.patch_policy.clone(),
        caps: RunCaps {
            token_cap: strategy.run_token_cap,
            max_phases: strategy.run_max_phases,
            max_duration_minutes: strategy.run_max_duration_minutes,
            max_minor_issues_total: strategy.run_max_minor_issues_total,
        },
        aging: crate::aging_thresholds(&strategy.aging_thresholds),
        tiers,
    };
    Ok((run, names))
}

fn initial_record(run: &FrozenRun, names: Vec<String>, at: DateTime<Utc>) -> RunRecord {
    let mut names = names.into_iter();
    RunRecord {
        run_id: run.run_id.clone(),
        safety_profile: run.safety_profile,
        run_scope: run.run_scope,
        strategy_version: run.strategy_version,
        state: RunState::PlanBootstrap,
        history: vec![StateChange {
            state: RunState::PlanBootstrap,
            at,
        }],
        caps: run.caps,
        usage: RunUsage::default(),
        debt_status: DebtStatus::Clean,
        unresolved_major_issues: 0,
        failure: None,
        tiers: run
            .tiers
            .iter()
            .map(|t| TierRecord {
                tier_id: t.tier_id.clone(),
                tier_index: t.tier_index,
                name: t.name.clone(),
                state: TierState::Pending,
                history: vec![StateChange {
                    state: TierState::Pending,
                    at,
                }],
                caps: t.caps,
                usage: TierUsage::default(),
                breaches: Vec::new(),
                blocked_reason: None,
                phases: t
                    .phases
                    .iter()
                    .map(|p| PhaseRecord {
                        phase_id: p.phase_id.clone(),
                        phase_index: p.phase_index,
                        tier_id: p.tier_id.clone(),
                        name: names.next().unwrap_or_default(),
                        task_category: p.task_category.clone(),
                        complexity: p.complexity,
                        builder_mode: p.builder_mode.clone(),
                        state: PhaseState::Queued,
                        history: phase_history(at),
                        caps: p.caps,
                        usage: PhaseUsage::default(),
                        attempts: Vec::new(),
                        ci_runs: Vec::new(),
                        minor_issues: 0,
                        major_issues: 0,
                        commit: None,
                        snapshot_tag: None,
                        failure_reason: None,
                    })
                    .collect(),
            })
            .collect(),
        integration_tip: None,
    }
}

/// A phase's history, with room for a phase that passes first time (`QUEUED`, `EXECUTING`,
/// `GATE`, `CI_RUNNING`, `COMPLETE`): one allocation instead of three.
fn phase_history(at: DateTime<Utc>) -> Vec<StateChange<PhaseState>> {
    let mut history = Vec::with_capacity(5);
    history.push(StateChange {
        state: PhaseState::Queued,
        at,
    });
    history
}
