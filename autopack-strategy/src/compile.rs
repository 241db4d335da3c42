//! The StrategyEngine: ruleset + backlog + plan → [`Strategy`], as a pure function.
//!
//! Rules, in the order they apply to each phase:
//! 1. Category defaults: ruleset override (field by field) > built-in high-risk > built-in
//!    normal > fallback ([`crate::defaults`]).
//! 2. A phase is high-risk when its category is one of the five kinds or listed in the
//!    ruleset's `high_risk_categories`.
//! 3. Complexity: the plan's, else the category's; never below `high` for a high-risk phase.
//! 4. CI profile: `strict` when the category says so, when complexity is `high`, or under
//!    `safety_critical` for every phase of a tier holding a high-risk phase; else `normal`.
//! 5. Auto-apply: the category's value, except that a high-risk phase auto-applies only when
//!    the ruleset explicitly sets `auto_apply: true` for that category, and an inserted
//!    cleanup phase never does.
//!
//! Backlog aging: a key that is not `resolved` needs cleanup when its status is
//! `needs_cleanup`, or when it is minor and its `age_in_runs`/`age_in_tiers` reach the
//! thresholds of the run's safety profile. Every such minor key is listed in
//! `effective_severity_upgrades` (it counts as `major` in this run).
//!
//! Cleanup insertion: keys needing cleanup are ordered by base severity (major first),
//! then `age_in_runs`, then `age_in_tiers` (oldest first), then key, and cut into chunks of
//! `cleanup_keys_per_phase`. Each chunk becomes a `debt_cleanup` phase with id
//! `debt-cleanup-NN` (a suffix `-2`, `-3`, … is added if the plan already uses the id),
//! appended to the **last tier** (highest `tier_index`) after its phases, with
//! `phase_index` continuing after the plan's highest. Appending to the last tier keeps
//! `single_tier` runs single-tier and the cleanup inside that tier's budget. At most
//! `max_cleanup_phases_per_run` phases are inserted, and never past the run's
//! `max_phases`; what does not fit is reported as [`Diagnostic::CleanupDidNotFit`].
//!
//! Determinism: phases and tiers are processed in `(index, id)` order, whatever the order of
//! the plan's arrays; tier caps sum their terms in that order; every output collection is a
//! `BTreeMap` or a sorted `Vec`.

use std::collections::BTreeMap;

use autopack_core::budget::{TierCapTerm, TierCaps, defaults as budget};
use autopack_core::ids::{IdError, PhaseId, TierId};
use autopack_core::journal::chain::Digest;
use autopack_core::plan::{PhaseSpec, Plan, TierSpec};
use autopack_core::vocabulary::{
    BuilderMode, CiProfile, Complexity, IssueStatus, RunScope, SafetyProfile, Severity,
    TaskCategory,
};

use crate::backlog::{BacklogEntry, BacklogView};
use crate::defaults::{self, CategoryDefaults};
use crate::ruleset::{Ruleset, RulesetInvalid};
use crate::strategy::{
    CleanupLimit, DefaultsSource, Diagnostic, PhaseOrigin, PhaseStrategies, PhaseStrategy,
    SeverityUpgrade, Strategy, TierStrategy, UpgradeReason,
};

/// Settings of one compilation (all defaultable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileOptions {
    /// The `N` of the strategy (`project_implementation_strategy_v{N}.json`); ≥ 1.
    pub strategy_version: u32,
    /// Overrides the plan's and the ruleset's safety profile.
    pub safety_profile: Option<SafetyProfile>,
    /// Overrides the plan's and the ruleset's run scope.
    pub run_scope: Option<RunScope>,
    /// Most `debt_cleanup` phases inserted per run (default 2).
    pub max_cleanup_phases_per_run: u32,
    /// Backlog keys one cleanup phase takes on (default 10); ≥ 1.
    pub cleanup_keys_per_phase: u32,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            strategy_version: 1,
            safety_profile: None,
            run_scope: None,
            max_cleanup_phases_per_run: defaults::MAX_CLEANUP_PHASES_PER_RUN,
            cleanup_keys_per_phase: defaults::CLEANUP_KEYS_PER_PHASE,
        }
    }
}

/// Why a strategy could not be compiled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The ruleset breaks a range rule.
    #[error("invalid ruleset: {0}")]
    InvalidRuleset(#[from] RulesetInvalid),
    /// Two tiers share an id.
    #[error("plan: tier_id {tier_id} is used by two tiers")]
    DuplicateTier {
        /// The id.
        tier_id: TierId,
    },
    /// Two phases share an id.
    #[error("plan: phase_id {phase_id} is used by two phases")]
    DuplicatePhase {
        /// The id.
        phase_id: PhaseId,
    },
    /// A phase names a tier the plan does not hold.
    #[error("plan: phase {phase_id} names unknown tier_id {tier_id}")]
    UnknownTier {
        /// The phase.
        phase_id: PhaseId,
        /// The tier it names.
        tier_id: TierId,
    },
    /// An option is out of range.
    #[error("compile option {option}: {message}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A generated phase id was rejected (cannot happen with the built-in pattern).
    #[error("generated id: {0}")]
    GeneratedId(#[from] IdError),
}

/// A category's values after applying the precedence rules.
struct Resolved<'r> {
    complexity: Complexity,
    ci_profile: CiProfile,
    builder_mode: &'r BuilderMode,
    max_builder_attempts: u32,
    max_auditor_attempts: u32,
    incident_token_cap: u64,
    tier_token_cap_multiplier: f64,
    tier_ci_run_cap_multiplier: f64,
    tier_max_minor_issues_multiplier: f64,
    tier_max_major_issues_tolerated: u32,
    auto_apply: bool,
    auditor_profile: Option<&'r str>,
    default_severity: Severity,
    ci_max_retries: Option<u32>,
    high_risk: bool,
    source: DefaultsSource,
}

fn resolve<'r>(ruleset: &'r Ruleset, category: &TaskCategory) -> Resolved<'r> {
    let (base, mut source): (&'static CategoryDefaults, _) = match category.high_risk() {
        Some(kind) => (
            &defaults::builtin_high_risk(kind).defaults,
            DefaultsSource::BuiltinHighRisk,
        ),
        None => match defaults::builtin(category.as_str()) {
            Some(row) => (&row.defaults, DefaultsSource::Builtin),
            None => (&defaults::FALLBACK, DefaultsSource::Fallback),
        },
    };
    let high_risk = ruleset.is_high_risk(category);
    let over = ruleset.category_rules(category);
    if over.is_some() {
        source = DefaultsSource::Ruleset;
    }
    let o = over.cloned().unwrap_or_default();
    let o_ref = over;
    let auto_apply = if high_risk {
        o.auto_apply == Some(true)
    } else {
        o.auto_apply.unwrap_or(base.auto_apply)
    };
    Resolved {
        complexity: o.complexity.unwrap_or(base.complexity),
        ci_profile: o.ci_profile.unwrap_or(base.ci_profile),
        builder_mode: o_ref
            .and_then(|r| r.builder_mode.as_ref())
            .unwrap_or(&base.builder_mode),
        max_builder_attempts: o.max_builder_attempts.unwrap_or(base.max_builder_attempts),
        max_auditor_attempts: o.max_auditor_attempts.unwrap_or(base.max_auditor_attempts),
        incident_token_cap: o.incident_token_cap.unwrap_or(base.incident_token_cap),
        tier_token_cap_multiplier: o
            .tier_token_cap_multiplier
            .unwrap_or(base.tier_token_cap_multiplier),
        tier_ci_run_cap_multiplier: o
            .tier_ci_run_cap_multiplier
            .unwrap_or(base.tier_ci_run_cap_multiplier),
        tier_max_minor_issues_multiplier: o
            .tier_max_minor_issues_multiplier
            .unwrap_or(base.tier_max_minor_issues_multiplier),
        tier_max_major_issues_tolerated: o
            .tier_max_major_issues_tolerated
            .unwrap_or(base.tier_max_major_issues_tolerated),
        auto_apply,
        auditor_profile: match o_ref.and_then(|r| r.auditor_profile.as_ref()) {
            Some(explicit) => explicit.as_deref(),
            None => base.auditor_profile,
        },
        default_severity: match (o.default_severity, high_risk) {
            (Some(s), _) => s,
            (None, true) => Severity::Major,
            (None, false) => base.default_severity,
        },
        ci_max_retries: o.ci_max_retries.or(base.ci_max_retries),
        high_risk,
        source,
    }
}

/// Per-category resolution cache (plans hold few distinct categories).
struct Resolver<'r> {
    ruleset: &'r Ruleset,
    cache: Vec<(TaskCategory, Resolved<'r>)>,
}

impl<'r> Resolver<'r> {
    fn index(&mut self, category: &TaskCategory) -> usize {
        if let Some(i) = self.cache.iter().position(|(c, _)| c == category) {
            return i;
        }
        self.cache
            .push((category.clone(), resolve(self.ruleset, category)));
        self.cache.len() - 1
    }
    fn get(&self, i: usize) -> &Resolved<'r> {
        &self.cache[i].1
    }
}

/// One phase (planned or inserted) on its way to a slice.
struct Pending<'p> {
    spec: &'p PhaseSpec,
    tier_pos: usize,
    resolved: usize,
    origin: PhaseOrigin,
    cleanup_keys: &'p [&'p BacklogEntry],
}

/// Compiles a strategy. Pure and deterministic: identical inputs give byte-identical
/// [`Strategy::to_json`] output, whatever the order of the plan's arrays.
///
/// The plan is expected to have passed `Plan::validate`; this function still rejects the
/// structural faults it cannot work around (duplicate ids, a phase in an unknown tier).
///
/// # Errors
/// A [`CompileError`] for an invalid ruleset, an invalid option or a structurally broken
/// plan.
pub fn compile(
    ruleset: &Ruleset,
    backlog: &BacklogView,
    plan: &Plan,
    options: &CompileOptions,
) -> Result<Strategy, CompileError> {
    ruleset.validate()?;
    if options.strategy_version == 0 {
        return Err(CompileError::InvalidOption {
            option: "strategy_version",
            message: "must be at least 1".into(),
        });
    }
    if options.cleanup_keys_per_phase == 0 {
        return Err(CompileError::InvalidOption {
            option: "cleanup_keys_per_phase",
            message: "must be at least 1".into(),
        });
    }

    let safety = options
        .safety_profile
        .or(plan.run.safety_profile)
        .unwrap_or(ruleset.default_safety_profile);
    let run_scope = options
        .run_scope
        .or(plan.run.run_scope)
        .unwrap_or(ruleset.default_run_scope);
    let token_cap = plan
        .run
        .token_cap
        .or(ruleset.run_token_cap)
        .unwrap_or(budget::RUN_TOKEN_CAP);
    let max_phases = plan
        .run
        .max_phases
        .or(ruleset.run_max_phases)
        .unwrap_or(budget::RUN_MAX_PHASES);
    let max_duration = plan
        .run
        .max_duration_minutes
        .or(ruleset.run_max_duration_minutes)
        .unwrap_or(budget::RUN_MAX_DURATION_MINUTES);
    let aging = ruleset.aging_thresholds(safety);
    let mut diagnostics = Vec::new();

    // Tiers in (tier_index, tier_id) order.
    let mut tiers: Vec<&TierSpec> = plan.tiers.iter().collect();
    tiers.sort_by(|a, b| (a.tier_index, &a.tier_id).cmp(&(b.tier_index, &b.tier_id)));
    let mut tier_lookup: Vec<(&TierId, usize)> = tiers
        .iter()
        .enumerate()
        .map(|(i, t)| (&t.tier_id, i))
        .collect();
    tier_lookup.sort_by(|a, b| a.0.cmp(b.0));
    if let Some(w) = tier_lookup.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(CompileError::DuplicateTier {
            tier_id: w[0].0.clone(),
        });
    }
    if run_scope == RunScope::SingleTier && tiers.len() > 1 {
        diagnostics.push(Diagnostic::SingleTierRunWithManyTiers {
            tiers: count(tiers.len()),
        });
    }

    // Phases in (phase_index, phase_id) order.
    let mut phases: Vec<&PhaseSpec> = plan.phases.iter().collect();
    phases.sort_by(|a, b| (a.phase_index, &a.phase_id).cmp(&(b.phase_index, &b.phase_id)));
    // Positions in `phases`, by phase id: duplicate check, id collisions, output order.
    let mut by_id: Vec<usize> = (0..phases.len()).collect();
    by_id.sort_unstable_by(|&a, &b| phases[a].phase_id.cmp(&phases[b].phase_id));
    if let Some(w) = by_id
        .windows(2)
        .find(|w| phases[w[0]].phase_id == phases[w[1]].phase_id)
    {
        return Err(CompileError::DuplicatePhase {
            phase_id: phases[w[0]].phase_id.clone(),
        });
    }
    let id_taken = |id: &str| {
        by_id
            .binary_search_by(|&i| phases[i].phase_id.as_str().cmp(id))
            .is_ok()
    };
    let planned = count(phases.len());
    if planned > max_phases {
        diagnostics.push(Diagnostic::PlanExceedsMaxPhases {
            phases: planned,
            max_phases,
        });
    }

    let mut resolver = Resolver {
        ruleset,
        cache: Vec::new(),
    };
    let mut pending: Vec<Pending<'_>> = Vec::with_capacity(phases.len());
    for spec in &phases {
        let tier_pos = match tier_lookup.binary_search_by(|(id, _)| (*id).cmp(&spec.tier_id)) {
            Ok(i) => tier_lookup[i].1,
            Err(_) => {
                return Err(CompileError::UnknownTier {
                    phase_id: spec.phase_id.clone(),
                    tier_id: spec.tier_id.clone(),
                });
            }
        };
        let resolved = resolver.index(&spec.task_category);
        pending.push(Pending {
            spec,
            tier_pos,
            resolved,
            origin: PhaseOrigin::Plan,
            cleanup_keys: &[],
        });
    }

    // Backlog: cleanup candidates (with why), then the upgrades of the minor ones, in
    // one exactly sized buffer.
    // Sized up front: growing large buffers mid-compile makes glibc consolidate its free
    // lists, which slowed every later small allocation (≈ 5 M instructions per compile).
    let mut candidates: Vec<&BacklogEntry> = Vec::with_capacity(backlog.len());
    let mut reasons: Vec<UpgradeReason> = Vec::with_capacity(backlog.len());
    for e in backlog.entries() {
        if e.status == IssueStatus::Resolved {
            continue;
        }
        let minor = e.base_severity == Severity::Minor;
        let reason = if e.status == IssueStatus::NeedsCleanup {
            UpgradeReason::NeedsCleanup
        } else if minor && e.age_in_runs >= aging.minor_issue_aging_runs_threshold {
            UpgradeReason::AgedRuns
        } else if minor && e.age_in_tiers >= aging.minor_issue_aging_tiers_threshold {
            UpgradeReason::AgedTiers
        } else {
            continue;
        };
        candidates.push(e);
        reasons.push(reason);
    }
    let minor_candidates = candidates
        .iter()
        .filter(|e| e.base_severity == Severity::Minor)
        .count();
    let mut upgrades = Vec::with_capacity(minor_candidates);
    for (e, &reason) in candidates.iter().zip(&reasons) {
        if e.base_severity == Severity::Minor {
            upgrades.push(SeverityUpgrade {
                issue_key: e.issue_key.clone(),
                category: e.category.clone(),
                base_severity: e.base_severity,
                effective_severity: Severity::Major,
                reason,
                age_in_runs: e.age_in_runs,
                age_in_tiers: e.age_in_tiers,
            });
        }
    }
    drop(reasons);

    // How many cleanup phases fit.
    let per_phase = options.cleanup_keys_per_phase as usize;
    let needed = candidates.len().div_ceil(per_phase);
    let room = max_phases.saturating_sub(planned);
    let slots = options.max_cleanup_phases_per_run.min(room) as usize;
    let inserted = if tiers.is_empty() {
        0
    } else {
        needed.min(slots)
    };
    if inserted < needed {
        let limit = if tiers.is_empty() {
            CleanupLimit::NoTier
        } else if room < options.max_cleanup_phases_per_run {
            CleanupLimit::MaxPhases
        } else {
            CleanupLimit::MaxCleanupPhasesPerRun
        };
        let assigned = (inserted * per_phase).min(candidates.len());
        diagnostics.push(Diagnostic::CleanupDidNotFit {
            needed_phases: count(needed),
            inserted_phases: count(inserted),
            deferred_keys: count(candidates.len() - assigned),
            limit,
        });
    }
    let take = (inserted * per_phase).min(candidates.len());
    let priority = |a: &&BacklogEntry, b: &&BacklogEntry| {
        (b.base_severity, b.age_in_runs, b.age_in_tiers)
            .cmp(&(a.base_severity, a.age_in_runs, a.age_in_tiers))
            .then_with(|| a.issue_key.cmp(&b.issue_key))
    };
    if take > 0 && take < candidates.len() {
        candidates.select_nth_unstable_by(take - 1, priority);
    }
    candidates.truncate(take);
    candidates.sort_by(priority);

    // Inserted cleanup phases, appended to the last tier.
    let mut inserted_specs: Vec<PhaseSpec> = Vec::with_capacity(inserted);
    if inserted > 0 {
        let last_tier = tiers.len() - 1;
        let mut next_index = phases
            .iter()
            .map(|p| p.phase_index)
            .max()
            .map_or(0, |m| m + 1);
        let debt = resolver.index(&TaskCategory::DebtCleanup);
        let (complexity, mode) = {
            let r = resolver.get(debt);
            (r.complexity, r.builder_mode.clone())
        };
        for (i, chunk) in candidates.chunks(per_phase).enumerate() {
            let mut id = format!("debt-cleanup-{:02}", i + 1);
            let mut k = 2;
            while id_taken(&id) || inserted_specs.iter().any(|s| s.phase_id.as_str() == id) {
                id = format!("debt-cleanup-{:02}-{k}", i + 1);
                k += 1;
            }
            let keys: Vec<String> = chunk
                .iter()
                .map(|e| {
                    format!(
                        "{} ({}, {} runs, {} tiers)",
                        e.issue_key,
                        e.category.as_str(),
                        e.age_in_runs,
                        e.age_in_tiers
                    )
                })
                .collect();
            inserted_specs.push(PhaseSpec {
                phase_id: PhaseId::new(id)?,
                phase_index: next_index,
                tier_id: tiers[last_tier].tier_id.clone(),
                name: format!("Debt cleanup {}", i + 1),
                description: format!("Resolve aged backlog issues: {}", keys.join("; ")),
                task_category: TaskCategory::DebtCleanup,
                complexity: Some(complexity),
                builder_mode: Some(mode.clone()),
                scope: Vec::new(),
            });
            next_index = next_index.saturating_add(1);
        }
        for (spec, chunk) in inserted_specs.iter().zip(candidates.chunks(per_phase)) {
            pending.push(Pending {
                spec,
                tier_pos: last_tier,
                resolved: debt,
                origin: PhaseOrigin::DebtCleanup,
                cleanup_keys: chunk,
            });
        }
    }

    // Which tiers hold a high-risk phase.
    let mut tier_high_risk = vec![false; tiers.len()];
    for p in &pending {
        if resolver.get(p.resolved).high_risk {
            tier_high_risk[p.tier_pos] = true;
        }
    }

    // The final complexity, CI profile and CI retries of a phase.
    let settings = |p: &Pending<'_>| {
        let r = resolver.get(p.resolved);
        let mut complexity = p.spec.complexity.unwrap_or(r.complexity);
        if r.high_risk && complexity < Complexity::High {
            complexity = Complexity::High;
        }
        let ci_profile = if r.ci_profile == CiProfile::Strict
            || complexity == Complexity::High
            || (safety == SafetyProfile::SafetyCritical && tier_high_risk[p.tier_pos])
        {
            CiProfile::Strict
        } else {
            CiProfile::Normal
        };
        let ci_max_retries = r.ci_max_retries.unwrap_or(match ci_profile {
            CiProfile::Normal => defaults::CI_MAX_RETRIES_NORMAL,
            CiProfile::Strict => defaults::CI_MAX_RETRIES_STRICT,
        });
        (complexity, ci_profile, ci_max_retries)
    };

    // Tier terms, tier phase lists and diagnostics, in execution order, in buffers sized
    // up front.
    let mut tier_sizes = vec![0usize; tiers.len()];
    for p in &pending {
        tier_sizes[p.tier_pos] += 1;
    }
    let mut tier_phases: Vec<Vec<PhaseId>> =
        tier_sizes.iter().map(|&n| Vec::with_capacity(n)).collect();
    let mut tier_terms: Vec<Vec<TierCapTerm>> =
        tier_sizes.iter().map(|&n| Vec::with_capacity(n)).collect();
    for p in &pending {
        let r = resolver.get(p.resolved);
        let spec = p.spec;
        if let Some(planned) = spec
            .complexity
            .filter(|&c| r.high_risk && c < Complexity::High)
        {
            diagnostics.push(Diagnostic::HighRiskComplexityRaised {
                phase_id: spec.phase_id.clone(),
                planned,
            });
        }
        let builder_mode = spec.builder_mode.as_ref().unwrap_or(r.builder_mode);
        if !builder_mode.is_known() {
            diagnostics.push(Diagnostic::UnknownBuilderMode {
                phase_id: spec.phase_id.clone(),
                builder_mode: builder_mode.clone(),
            });
        }
        if r.source == DefaultsSource::Fallback {
            diagnostics.push(Diagnostic::CategoryFellBack {
                phase_id: spec.phase_id.clone(),
                task_category: spec.task_category.clone(),
            });
        }
        tier_terms[p.tier_pos].push(TierCapTerm {
            incident_token_cap: r.incident_token_cap,
            token_cap_multiplier: r.tier_token_cap_multiplier,
            ci_run_cap_multiplier: r.tier_ci_run_cap_multiplier,
            max_minor_issues_multiplier: r.tier_max_minor_issues_multiplier,
            max_major_issues_tolerated: r.tier_max_major_issues_tolerated,
        });
        tier_phases[p.tier_pos].push(spec.phase_id.clone());
    }

    // Slices, built straight in phase-id order: the planned phases in `by_id` order
    // merged with the (few) inserted ones, sorted.
    let mut extra: Vec<usize> = (phases.len()..pending.len()).collect();
    extra.sort_unstable_by(|&a, &b| pending[a].spec.phase_id.cmp(&pending[b].spec.phase_id));
    let mut slices: Vec<PhaseStrategy> = Vec::with_capacity(pending.len());
    let (mut i, mut j) = (0, 0);
    while i < by_id.len() || j < extra.len() {
        let take_planned = match (by_id.get(i), extra.get(j)) {
            (Some(&a), Some(&b)) => pending[a].spec.phase_id < pending[b].spec.phase_id,
            (Some(_), None) => true,
            _ => false,
        };
        let p = if take_planned {
            i += 1;
            &pending[by_id[i - 1]]
        } else {
            j += 1;
            &pending[extra[j - 1]]
        };
        let r = resolver.get(p.resolved);
        let spec = p.spec;
        let (complexity, ci_profile, ci_max_retries) = settings(p);
        slices.push(PhaseStrategy {
            phase_id: spec.phase_id.clone(),
            tier_id: spec.tier_id.clone(),
            phase_index: spec.phase_index,
            task_category: spec.task_category.clone(),
            complexity,
            builder_mode: spec.builder_mode.as_ref().unwrap_or(r.builder_mode).clone(),
            max_builder_attempts: r.max_builder_attempts,
            max_auditor_attempts: r.max_auditor_attempts,
            incident_token_cap: r.incident_token_cap,
            ci_profile,
            ci_max_retries,
            auto_apply: r.auto_apply && p.origin == PhaseOrigin::Plan,
            auditor_profile: r.auditor_profile.map(str::to_owned),
            high_risk: r.high_risk,
            default_severity: r.default_severity,
            scope: spec.scope.clone(),
            origin: p.origin,
            defaults_source: r.source,
            cleanup_issue_keys: p.cleanup_keys.iter().map(|e| e.issue_key.clone()).collect(),
        });
    }
    // Ids are distinct (checked above and when generating cleanup ids) and the slices
    // sorted, so this only checks the order.
    let phase_strategies = PhaseStrategies::from_slices(slices);

    let mut tier_strategies = BTreeMap::new();
    for (pos, tier) in tiers.iter().enumerate() {
        let caps = TierCaps::from_terms(&tier_terms[pos], safety);
        tier_strategies.insert(
            tier.tier_id.clone(),
            TierStrategy {
                tier_id: tier.tier_id.clone(),
                tier_index: tier.tier_index,
                name: tier.name.clone(),
                phase_ids: std::mem::take(&mut tier_phases[pos]),
                high_risk: tier_high_risk[pos],
                token_cap: caps.token_cap,
                ci_run_cap: caps.ci_run_cap,
                max_minor_issues_tolerated: caps.max_minor_issues_tolerated,
                max_major_issues_tolerated: caps.max_major_issues_tolerated,
            },
        );
    }

    diagnostics.sort();
    let total_phases = planned.saturating_add(count(inserted));
    Ok(Strategy {
        version: options.strategy_version,
        run_id: plan.run.run_id.clone(),
        project_id: ruleset.project_id.clone(),
        ruleset_version: ruleset.version.clone(),
        ruleset_sha256: Digest::of_json(ruleset).ok(),
        safety_profile: safety,
        run_scope,
        run_token_cap: token_cap,
        run_max_phases: max_phases,
        run_max_duration_minutes: max_duration,
        run_max_minor_issues_total: total_phases.saturating_mul(budget::RUN_MINOR_ISSUES_PER_PHASE),
        aging_thresholds: aging,
        tier_strategies,
        phase_strategies,
        inserted_phases: inserted_specs,
        effective_severity_upgrades: upgrades,
        diagnostics,
        patch_policy: ruleset.patch_policy.settings(),
    })
}

/// Compiles without a run or a store, for testing rule changes: the built-in defaults
/// when `ruleset` is `None` (project id `builtin`), an empty backlog when `backlog` is
/// `None`, and default [`CompileOptions`].
///
/// # Errors
/// As [`compile`].
pub fn dry_run(
    plan: &Plan,
    ruleset: Option<&Ruleset>,
    backlog: Option<&BacklogView>,
) -> Result<Strategy, CompileError> {
    let builtin;
    let ruleset = match ruleset {
        Some(r) => r,
        None => {
            builtin = Ruleset::builtin(autopack_core::ids::ProjectId::new("builtin")?);
            &builtin
        }
    };
    let empty = BacklogView::empty();
    compile(
        ruleset,
        backlog.unwrap_or(&empty),
        plan,
        &CompileOptions::default(),
    )
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
