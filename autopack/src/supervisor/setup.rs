//! Run start: validating the plan, joining it with its frozen strategy, loading the
//! ledger, and building the initial record.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use autopack_core::budget::{PhaseUsage, RunCaps, RunUsage, TierUsage};
use autopack_core::ids::PhaseId;
use autopack_core::lifecycle::{PhaseState, RunState, TierState};
use autopack_core::plan::{PhaseSpec, Plan};
use autopack_core::record::{PhaseRecord, RunRecord, StateChange, TierRecord};
use autopack_core::vocabulary::DebtStatus;
use autopack_issues::{Ledger, ProjectBacklog};
use autopack_strategy::Strategy;

use super::frozen::{FrozenPhase, FrozenRun, FrozenTier};
use super::{Active, At, SupervisorConfig, SupervisorError};

pub(super) fn start(
    at: DateTime<Utc>,
    plan: &Plan,
    strategy: &Strategy,
    backlog: &ProjectBacklog,
    config: SupervisorConfig,
) -> Result<Active, SupervisorError> {
    plan.validate()?;
    let run = freeze(plan, strategy)?;
    let ledger = Ledger::from_backlog(backlog, run.aging)
        .map_err(|e| SupervisorError::Backlog(e.to_string()))?;
    let record = initial_record(&run, at);
    Ok(Active {
        run,
        record,
        ledger,
        started_at: at,
        current: None,
        next: At { tier: 0, phase: 0 },
        pending: None,
        config,
    })
}

fn mismatch(message: String) -> SupervisorError {
    SupervisorError::StrategyMismatch(message)
}

/// Joins the plan with its strategy. Every plan phase must have exactly one slice and
/// sit in its own tier's phase list; inserted phases come from the strategy.
pub(super) fn freeze(plan: &Plan, strategy: &Strategy) -> Result<FrozenRun, SupervisorError> {
    if strategy.run_id != plan.run.run_id {
        return Err(mismatch(format!(
            "strategy is for run {}, the plan for run {}",
            strategy.run_id, plan.run.run_id
        )));
    }
    let mut specs: BTreeMap<&PhaseId, &PhaseSpec> =
        plan.phases.iter().map(|p| (&p.phase_id, p)).collect();
    for inserted in &strategy.inserted_phases {
        if specs.insert(&inserted.phase_id, inserted).is_some() {
            return Err(mismatch(format!(
                "inserted phase {} has the id of a planned phase",
                inserted.phase_id
            )));
        }
    }
    let mut placed: BTreeSet<&PhaseId> = BTreeSet::new();
    let mut tiers = Vec::new();
    for tier in plan.tiers_in_order() {
        let Some(ts) = strategy.tier(&tier.tier_id) else {
            return Err(mismatch(format!(
                "no tier strategy for tier {}",
                tier.tier_id
            )));
        };
        let mut phases = Vec::with_capacity(ts.phase_ids.len());
        for phase_id in &ts.phase_ids {
            let (Some(slice), Some(spec)) = (strategy.phase(phase_id), specs.get(phase_id)) else {
                return Err(mismatch(format!(
                    "tier {} lists phase {phase_id}, which has no slice or no phase",
                    tier.tier_id
                )));
            };
            if slice.tier_id != tier.tier_id || !placed.insert(phase_id) {
                return Err(mismatch(format!(
                    "phase {phase_id} is placed in tier {} more than once or in the wrong tier",
                    tier.tier_id
                )));
            }
            phases.push(FrozenPhase {
                phase_id: phase_id.clone(),
                phase_index: slice.phase_index,
                tier_id: tier.tier_id.clone(),
                name: spec.name.clone(),
                description: spec.description.clone(),
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
    if let Some(missing) = specs.keys().find(|id| !placed.contains(*id)) {
        return Err(mismatch(format!(
            "phase {missing} is in no tier of the strategy"
        )));
    }
    Ok(FrozenRun {
        run_id: plan.run.run_id.clone(),
        safety_profile: strategy.safety_profile,
        run_scope: strategy.run_scope,
        strategy_version: strategy.version,
        caps: RunCaps {
            token_cap: strategy.run_token_cap,
            max_phases: strategy.run_max_phases,
            max_duration_minutes: strategy.run_max_duration_minutes,
            max_minor_issues_total: strategy.run_max_minor_issues_total,
        },
        aging: crate::aging_thresholds(&strategy.aging_thresholds),
        tiers,
    })
}

fn initial_record(run: &FrozenRun, at: DateTime<Utc>) -> RunRecord {
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
                        name: p.name.clone(),
                        task_category: p.task_category.clone(),
                        complexity: p.complexity,
                        builder_mode: p.builder_mode.clone(),
                        state: PhaseState::Queued,
                        history: vec![StateChange {
                            state: PhaseState::Queued,
                            at,
                        }],
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
