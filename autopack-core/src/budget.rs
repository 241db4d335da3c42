//! Budgets: caps, usage and breaches (SPEC §6).
//!
//! Every default of the spec is a named constant in [`defaults`]; nothing else in the
//! workspace hard-codes a budget number. Caps are plain data (a strategy carries them for
//! a run); usage counters are plain data the Supervisor updates; `check` functions compare
//! the two and say which cap was hit and what it means.
//!
//! ```
//! use autopack_core::budget::{RunBreach, RunCaps, RunUsage};
//! use autopack_core::lifecycle::RunFailure;
//!
//! let caps = RunCaps::for_phases(8);
//! assert_eq!(caps.max_minor_issues_total, 24);
//! let usage = RunUsage { tokens: caps.token_cap + 1, ..RunUsage::default() };
//! let breach = caps.check(&usage).unwrap();
//! assert_eq!(breach, RunBreach::Tokens { used: caps.token_cap + 1, cap: caps.token_cap });
//! assert_eq!(breach.failure(), RunFailure::TokenCapExceeded);
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::lifecycle::RunFailure;
use crate::vocabulary::SafetyProfile;

/// The defaults of SPEC §6, in one place.
pub mod defaults {
    /// Run token cap.
    pub const RUN_TOKEN_CAP: u64 = 5_000_000;
    /// Most phases a run may hold.
    pub const RUN_MAX_PHASES: u32 = 25;
    /// Longest a run may take, in minutes.
    pub const RUN_MAX_DURATION_MINUTES: u32 = 120;
    /// `max_minor_issues_total` = phases × this.
    pub const RUN_MINOR_ISSUES_PER_PHASE: u32 = 3;
    /// Tier `token_cap` = this × Σ phase `incident_token_cap`.
    pub const TIER_TOKEN_CAP_MULTIPLIER: f64 = 3.0;
    /// Tier `ci_run_cap` = this × phases.
    pub const TIER_CI_RUNS_PER_PHASE: f64 = 2.0;
    /// Tier `max_minor_issues_tolerated` = phases × this under `normal`.
    pub const TIER_MINOR_ISSUES_PER_PHASE_NORMAL: f64 = 2.0;
    /// Tier `max_minor_issues_tolerated` = phases × this under `safety_critical`.
    pub const TIER_MINOR_ISSUES_PER_PHASE_SAFETY_CRITICAL: f64 = 1.0;
    /// Tier `max_major_issues_tolerated`.
    pub const TIER_MAX_MAJOR_ISSUES_TOLERATED: u32 = 0;
    /// Failed attempts with the same signature, in a row, that count as a failure loop.
    pub const FAILURE_LOOP_THRESHOLD: u32 = 3;
    /// Preflight gate attempts per CI run.
    pub const CI_MAX_ATTEMPTS: u32 = 3;
}

/// Caps of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCaps {
    /// Tokens all agents may spend in the run.
    pub token_cap: u64,
    /// Phases the run may hold.
    pub max_phases: u32,
    /// Wall-clock minutes the run may take.
    pub max_duration_minutes: u32,
    /// Distinct minor issues the run tolerates before `excess_minor_issues`.
    pub max_minor_issues_total: u32,
}

impl RunCaps {
    /// The default caps for a run of `phases` phases.
    pub fn for_phases(phases: u32) -> RunCaps {
        RunCaps {
            token_cap: defaults::RUN_TOKEN_CAP,
            max_phases: defaults::RUN_MAX_PHASES,
            max_duration_minutes: defaults::RUN_MAX_DURATION_MINUTES,
            max_minor_issues_total: phases.saturating_mul(defaults::RUN_MINOR_ISSUES_PER_PHASE),
        }
    }

    /// The first cap `usage` breaches, in the order tokens, phases, duration, minor issues.
    pub fn check(&self, usage: &RunUsage) -> Option<RunBreach> {
        if usage.tokens > self.token_cap {
            return Some(RunBreach::Tokens {
                used: usage.tokens,
                cap: self.token_cap,
            });
        }
        if usage.phases > self.max_phases {
            return Some(RunBreach::Phases {
                used: usage.phases,
                cap: self.max_phases,
            });
        }
        if usage.elapsed_minutes > u64::from(self.max_duration_minutes) {
            return Some(RunBreach::Duration {
                used_minutes: usage.elapsed_minutes,
                cap_minutes: self.max_duration_minutes,
            });
        }
        if usage.minor_issues > self.max_minor_issues_total {
            return Some(RunBreach::MinorIssues {
                used: usage.minor_issues,
                cap: self.max_minor_issues_total,
            });
        }
        None
    }
}

/// What a run has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunUsage {
    /// Tokens spent by all agents.
    pub tokens: u64,
    /// Phases in the run (planned plus inserted).
    pub phases: u32,
    /// Whole minutes since the run started.
    pub elapsed_minutes: u64,
    /// Distinct minor issues (by effective severity) seen in the run.
    pub minor_issues: u32,
    /// CI attempts run.
    pub ci_runs: u32,
}

/// A run cap that was exceeded.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error,
)]
#[serde(tag = "breach", rename_all = "snake_case")]
pub enum RunBreach {
    /// `token_cap` exceeded.
    #[error("run token cap exceeded: {used} tokens used, cap {cap}")]
    Tokens {
        /// Tokens used.
        used: u64,
        /// The cap.
        cap: u64,
    },
    /// `max_phases` exceeded.
    #[error("run phase limit exceeded: {used} phases, cap {cap}")]
    Phases {
        /// Phases in the run.
        used: u32,
        /// The cap.
        cap: u32,
    },
    /// `max_duration_minutes` exceeded.
    #[error("run duration exceeded: {used_minutes} minutes, cap {cap_minutes}")]
    Duration {
        /// Minutes elapsed.
        used_minutes: u64,
        /// The cap.
        cap_minutes: u32,
    },
    /// `max_minor_issues_total` exceeded.
    #[error("run minor-issue total exceeded: {used} distinct minor issues, cap {cap}")]
    MinorIssues {
        /// Distinct minor issues.
        used: u32,
        /// The cap.
        cap: u32,
    },
}

impl RunBreach {
    /// The terminal failure this breach ends the run in.
    pub const fn failure(self) -> RunFailure {
        match self {
            RunBreach::Tokens { .. } => RunFailure::TokenCapExceeded,
            RunBreach::Phases { .. } => RunFailure::PhaseLimitExceeded,
            RunBreach::Duration { .. } | RunBreach::MinorIssues { .. } => {
                RunFailure::BudgetExhausted
            }
        }
    }
}

/// Caps of one tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierCaps {
    /// Tokens the tier's phases may spend together.
    pub token_cap: u64,
    /// CI attempts the tier may run.
    pub ci_run_cap: u32,
    /// Distinct minor issues tolerated before the tier is `not_clean`.
    pub max_minor_issues_tolerated: u32,
    /// Distinct major issues tolerated before the tier is `not_clean`.
    pub max_major_issues_tolerated: u32,
}

/// What one phase contributes to its tier's caps (SPEC §6 formulas, with the per-category
/// multipliers a ruleset may set).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierCapTerm {
    /// The phase's `incident_token_cap`.
    pub incident_token_cap: u64,
    /// Tier token cap multiplier (default 3).
    pub token_cap_multiplier: f64,
    /// CI runs per phase (default 2).
    pub ci_run_cap_multiplier: f64,
    /// Minor issues tolerated per phase (default 2 under `normal`).
    pub max_minor_issues_multiplier: f64,
    /// Major issues tolerated by the tier (default 0); the tier takes the smallest.
    pub max_major_issues_tolerated: u32,
}

impl TierCapTerm {
    /// The default term for a phase with this incident token cap.
    pub fn with_defaults(incident_token_cap: u64) -> TierCapTerm {
        TierCapTerm {
            incident_token_cap,
            token_cap_multiplier: defaults::TIER_TOKEN_CAP_MULTIPLIER,
            ci_run_cap_multiplier: defaults::TIER_CI_RUNS_PER_PHASE,
            max_minor_issues_multiplier: defaults::TIER_MINOR_ISSUES_PER_PHASE_NORMAL,
            max_major_issues_tolerated: defaults::TIER_MAX_MAJOR_ISSUES_TOLERATED,
        }
    }
}

impl TierCaps {
    /// The tier caps of SPEC §6 for the given phases:
    /// `token_cap` = Σ multiplier × `incident_token_cap` (3 × Σ by default);
    /// `ci_run_cap` = Σ CI multiplier (2 × phases);
    /// `max_minor_issues_tolerated` = Σ minor multiplier (phases × 2), capped at phases × 1
    /// per phase under `safety_critical`; `max_major_issues_tolerated` = the smallest
    /// tolerance of any phase (0). Sums are rounded down once, at the end.
    ///
    /// ```
    /// use autopack_core::budget::{TierCapTerm, TierCaps};
    /// use autopack_core::vocabulary::SafetyProfile;
    ///
    /// let terms = [TierCapTerm::with_defaults(500_000), TierCapTerm::with_defaults(200_000)];
    /// let caps = TierCaps::from_terms(&terms, SafetyProfile::Normal);
    /// assert_eq!(caps.token_cap, 2_100_000);
    /// assert_eq!(caps.ci_run_cap, 4);
    /// assert_eq!(caps.max_minor_issues_tolerated, 4);
    /// let strict = TierCaps::from_terms(&terms, SafetyProfile::SafetyCritical);
    /// assert_eq!(strict.max_minor_issues_tolerated, 2);
    /// ```
    pub fn from_terms(terms: &[TierCapTerm], safety: SafetyProfile) -> TierCaps {
        let minor_ceiling = match safety {
            SafetyProfile::Normal => f64::INFINITY,
            SafetyProfile::SafetyCritical => defaults::TIER_MINOR_ISSUES_PER_PHASE_SAFETY_CRITICAL,
        };
        let mut tokens = 0.0_f64;
        let mut ci = 0.0_f64;
        let mut minor = 0.0_f64;
        let mut major = u32::MAX;
        for term in terms {
            tokens += term.token_cap_multiplier.max(0.0) * term.incident_token_cap as f64;
            ci += term.ci_run_cap_multiplier.max(0.0);
            minor += term.max_minor_issues_multiplier.max(0.0).min(minor_ceiling);
            major = major.min(term.max_major_issues_tolerated);
        }
        TierCaps {
            token_cap: saturating_floor_u64(tokens),
            ci_run_cap: saturating_floor_u32(ci),
            max_minor_issues_tolerated: saturating_floor_u32(minor),
            max_major_issues_tolerated: if terms.is_empty() { 0 } else { major },
        }
    }

    /// Every cap `usage` breaches (a tier reports all of them in its summary).
    pub fn check(&self, usage: &TierUsage) -> Vec<TierBreach> {
        let mut out = Vec::new();
        if usage.tokens > self.token_cap {
            out.push(TierBreach::Tokens {
                used: usage.tokens,
                cap: self.token_cap,
            });
        }
        if usage.ci_runs > self.ci_run_cap {
            out.push(TierBreach::CiRuns {
                used: usage.ci_runs,
                cap: self.ci_run_cap,
            });
        }
        if usage.minor_issues > self.max_minor_issues_tolerated {
            out.push(TierBreach::MinorIssues {
                used: usage.minor_issues,
                cap: self.max_minor_issues_tolerated,
            });
        }
        if usage.major_issues > self.max_major_issues_tolerated {
            out.push(TierBreach::MajorIssues {
                used: usage.major_issues,
                cap: self.max_major_issues_tolerated,
            });
        }
        out
    }

    /// CI attempts still affordable under `ci_run_cap`.
    pub fn ci_runs_remaining(&self, usage: &TierUsage) -> u32 {
        self.ci_run_cap.saturating_sub(usage.ci_runs)
    }
}

fn saturating_floor_u64(x: f64) -> u64 {
    // `as` saturates for floats (NaN becomes 0), which is what a cap wants.
    x.floor() as u64
}

fn saturating_floor_u32(x: f64) -> u32 {
    x.floor() as u32
}

/// What a tier has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TierUsage {
    /// Tokens spent by the tier's phases.
    pub tokens: u64,
    /// CI attempts run for the tier.
    pub ci_runs: u32,
    /// Distinct minor issues (by effective severity).
    pub minor_issues: u32,
    /// Distinct major issues (by effective severity).
    pub major_issues: u32,
}

/// A tier cap that was exceeded; the tier ends `NOT_CLEAN` (under `safety_critical`, the
/// run fails).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error,
)]
#[serde(tag = "breach", rename_all = "snake_case")]
pub enum TierBreach {
    /// Tier `token_cap` exceeded.
    #[error("tier token cap exceeded: {used} tokens used, cap {cap}")]
    Tokens {
        /// Tokens used.
        used: u64,
        /// The cap.
        cap: u64,
    },
    /// `ci_run_cap` exceeded.
    #[error("tier CI run cap exceeded: {used} CI runs, cap {cap}")]
    CiRuns {
        /// CI attempts run.
        used: u32,
        /// The cap.
        cap: u32,
    },
    /// `ci_run_cap` reached: a patch of the tier found no CI run left to verify it, and
    /// its phase failed (the cap is not exceeded, it is spent).
    #[error("tier CI run cap used up: all {cap} CI runs spent, a patch could not be verified")]
    CiRunsUsedUp {
        /// The cap.
        cap: u32,
    },
    /// `max_minor_issues_tolerated` exceeded.
    #[error("tier minor-issue tolerance exceeded: {used} distinct minor issues, tolerated {cap}")]
    MinorIssues {
        /// Distinct minor issues.
        used: u32,
        /// The tolerance.
        cap: u32,
    },
    /// `max_major_issues_tolerated` exceeded.
    #[error("tier major-issue tolerance exceeded: {used} distinct major issues, tolerated {cap}")]
    MajorIssues {
        /// Distinct major issues.
        used: u32,
        /// The tolerance.
        cap: u32,
    },
}

/// Caps of one phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseCaps {
    /// Builder attempts before the Auditor is called.
    pub max_builder_attempts: u32,
    /// Auditor attempts (fewer than builder attempts by default).
    pub max_auditor_attempts: u32,
    /// Tokens one phase may spend.
    pub incident_token_cap: u64,
}

impl PhaseCaps {
    /// The first cap `usage` breaches.
    pub fn check(&self, usage: &PhaseUsage) -> Option<PhaseBreach> {
        if usage.tokens > self.incident_token_cap {
            return Some(PhaseBreach::IncidentTokens {
                used: usage.tokens,
                cap: self.incident_token_cap,
            });
        }
        if usage.builder_attempts > self.max_builder_attempts {
            return Some(PhaseBreach::BuilderAttempts {
                used: usage.builder_attempts,
                cap: self.max_builder_attempts,
            });
        }
        if usage.auditor_attempts > self.max_auditor_attempts {
            return Some(PhaseBreach::AuditorAttempts {
                used: usage.auditor_attempts,
                cap: self.max_auditor_attempts,
            });
        }
        None
    }
}

/// What a phase has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PhaseUsage {
    /// Builder attempts started.
    pub builder_attempts: u32,
    /// Auditor attempts started.
    pub auditor_attempts: u32,
    /// Tokens spent by the phase's agents.
    pub tokens: u64,
    /// CI attempts run for the phase.
    pub ci_runs: u32,
}

/// A phase cap that was exceeded.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error,
)]
#[serde(tag = "breach", rename_all = "snake_case")]
pub enum PhaseBreach {
    /// `incident_token_cap` exceeded.
    #[error("phase incident token cap exceeded: {used} tokens used, cap {cap}")]
    IncidentTokens {
        /// Tokens used.
        used: u64,
        /// The cap.
        cap: u64,
    },
    /// More builder attempts than allowed.
    #[error("phase builder attempts exhausted: {used}, cap {cap}")]
    BuilderAttempts {
        /// Attempts.
        used: u32,
        /// The cap.
        cap: u32,
    },
    /// More auditor attempts than allowed.
    #[error("phase auditor attempts exhausted: {used}, cap {cap}")]
    AuditorAttempts {
        /// Attempts.
        used: u32,
        /// The cap.
        cap: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_breaches_map_to_failure_states() {
        let caps = RunCaps::for_phases(4);
        assert_eq!(caps.max_minor_issues_total, 12);
        assert_eq!(caps.check(&RunUsage::default()), None);
        let at_cap = RunUsage {
            tokens: caps.token_cap,
            phases: caps.max_phases,
            elapsed_minutes: 120,
            minor_issues: 12,
            ci_runs: 0,
        };
        assert_eq!(
            caps.check(&at_cap),
            None,
            "reaching a cap is not breaching it"
        );
        let phases = RunUsage {
            phases: 26,
            ..RunUsage::default()
        };
        assert_eq!(
            caps.check(&phases).unwrap().failure(),
            RunFailure::PhaseLimitExceeded
        );
        let time = RunUsage {
            elapsed_minutes: 121,
            ..RunUsage::default()
        };
        assert_eq!(
            caps.check(&time).unwrap().failure(),
            RunFailure::BudgetExhausted
        );
        let minor = RunUsage {
            minor_issues: 13,
            ..RunUsage::default()
        };
        assert_eq!(
            caps.check(&minor).unwrap().failure(),
            RunFailure::BudgetExhausted
        );
    }

    #[test]
    fn tier_formulas_follow_the_spec() {
        let terms: Vec<_> = [500_000, 200_000, 300_000]
            .map(TierCapTerm::with_defaults)
            .into();
        let caps = TierCaps::from_terms(&terms, SafetyProfile::Normal);
        assert_eq!(caps.token_cap, 3 * 1_000_000);
        assert_eq!(caps.ci_run_cap, 6);
        assert_eq!(caps.max_minor_issues_tolerated, 6);
        assert_eq!(caps.max_major_issues_tolerated, 0);
        let strict = TierCaps::from_terms(&terms, SafetyProfile::SafetyCritical);
        assert_eq!(strict.max_minor_issues_tolerated, 3);
        let empty = TierCaps::from_terms(&[], SafetyProfile::Normal);
        assert_eq!(
            empty,
            TierCaps {
                token_cap: 0,
                ci_run_cap: 0,
                max_minor_issues_tolerated: 0,
                max_major_issues_tolerated: 0
            }
        );
    }

    #[test]
    fn tier_check_reports_every_breach() {
        let caps = TierCaps {
            token_cap: 10,
            ci_run_cap: 2,
            max_minor_issues_tolerated: 1,
            max_major_issues_tolerated: 0,
        };
        let usage = TierUsage {
            tokens: 11,
            ci_runs: 3,
            minor_issues: 2,
            major_issues: 1,
        };
        assert_eq!(caps.check(&usage).len(), 4);
        assert_eq!(
            caps.ci_runs_remaining(&TierUsage {
                ci_runs: 1,
                ..TierUsage::default()
            }),
            1
        );
        assert_eq!(caps.ci_runs_remaining(&usage), 0);
    }

    #[test]
    fn phase_breaches() {
        let caps = PhaseCaps {
            max_builder_attempts: 2,
            max_auditor_attempts: 1,
            incident_token_cap: 100,
        };
        assert_eq!(
            caps.check(&PhaseUsage {
                tokens: 100,
                builder_attempts: 2,
                auditor_attempts: 1,
                ci_runs: 0
            }),
            None
        );
        assert!(matches!(
            caps.check(&PhaseUsage {
                tokens: 101,
                ..PhaseUsage::default()
            }),
            Some(PhaseBreach::IncidentTokens { .. })
        ));
    }
}
