//! Promotion eligibility (SPEC §8): whether a finished run may be promoted to a protected
//! branch, as plain data in and refusals out. Moving the branch is the apply crate's
//! (`autopack_apply::promote`); this rule is here so that hosts without git can ask it.
//!
//! ```
//! use autopack_core::ids::{RunId, TierId};
//! use autopack_core::lifecycle::{RunState, TierState};
//! use autopack_core::promotion::{PromotionRecord, PromotionRefusal, TierOutcome, eligibility};
//! use autopack_core::vocabulary::{DebtStatus, SafetyProfile};
//!
//! let record = PromotionRecord {
//!     run_id: RunId::new("r1").unwrap(),
//!     final_state: RunState::DoneSuccess,
//!     tiers: vec![TierOutcome { tier_id: TierId::new("t1").unwrap(), state: TierState::NotClean }],
//!     budget_failure: false,
//!     debt_status: DebtStatus::Clean,
//!     safety_profile: SafetyProfile::Normal,
//!     unresolved_major_issues: 0,
//! };
//! let refusals = eligibility(&record).unwrap_err();
//! assert!(matches!(&refusals[..], [PromotionRefusal::TierNotClean { .. }]));
//! ```

use crate::ids::{RunId, TierId};
use crate::lifecycle::{RunState, TierState};
use crate::vocabulary::{DebtStatus, SafetyProfile};

/// A finished tier, as the Supervisor recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierOutcome {
    /// The tier.
    pub tier_id: TierId,
    /// Its final state.
    pub state: TierState,
}

/// What eligibility needs to know about a finished run (plain data the Supervisor fills).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionRecord {
    /// The run.
    pub run_id: RunId,
    /// The run's final state.
    pub final_state: RunState,
    /// Every tier's final state.
    pub tiers: Vec<TierOutcome>,
    /// Whether any budget failure occurred during the run.
    pub budget_failure: bool,
    /// The run's debt status.
    pub debt_status: DebtStatus,
    /// The run's safety profile.
    pub safety_profile: SafetyProfile,
    /// Major issues still unresolved at the end of the run.
    pub unresolved_major_issues: u32,
}

/// One reason a run is not `promotion_eligible_to_main`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PromotionRefusal {
    /// The run did not end `DONE_SUCCESS`.
    #[error("run ended {state}, not DONE_SUCCESS")]
    NotSucceeded {
        /// Its final state.
        state: RunState,
    },
    /// A tier ended `NOT_CLEAN`.
    #[error("tier {tier_id} is NOT_CLEAN")]
    TierNotClean {
        /// The tier.
        tier_id: TierId,
    },
    /// A tier ended `BLOCKED`.
    #[error("tier {tier_id} is BLOCKED")]
    TierBlocked {
        /// The tier.
        tier_id: TierId,
    },
    /// A budget failure occurred.
    #[error("a budget failure occurred")]
    BudgetFailure,
    /// `debt_status` is `excess_minor_issues`.
    #[error("debt_status is excess_minor_issues")]
    ExcessMinorIssues,
    /// Under `safety_critical`, a major issue remains unresolved.
    #[error("{count} unresolved major issue(s) under safety_critical")]
    UnresolvedMajorIssues {
        /// How many.
        count: u32,
    },
}

/// Every reason `record` is refused promotion (SPEC §8); `Ok` when it is eligible.
///
/// # Errors
/// All refusals, in the order of SPEC §8's list.
pub fn eligibility(record: &PromotionRecord) -> Result<(), Vec<PromotionRefusal>> {
    let mut out = Vec::new();
    if record.final_state != RunState::DoneSuccess {
        out.push(PromotionRefusal::NotSucceeded {
            state: record.final_state,
        });
    }
    for tier in &record.tiers {
        match tier.state {
            TierState::NotClean => out.push(PromotionRefusal::TierNotClean {
                tier_id: tier.tier_id.clone(),
            }),
            TierState::Blocked => out.push(PromotionRefusal::TierBlocked {
                tier_id: tier.tier_id.clone(),
            }),
            _ => {}
        }
    }
    if record.budget_failure {
        out.push(PromotionRefusal::BudgetFailure);
    }
    if record.debt_status == DebtStatus::ExcessMinorIssues {
        out.push(PromotionRefusal::ExcessMinorIssues);
    }
    if record.safety_profile == SafetyProfile::SafetyCritical && record.unresolved_major_issues > 0
    {
        out.push(PromotionRefusal::UnresolvedMajorIssues {
            count: record.unresolved_major_issues,
        });
    }
    if out.is_empty() { Ok(()) } else { Err(out) }
}
