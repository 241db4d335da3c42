//! Promotion eligibility of a finished run (SPEC §8), from its [`RunRecord`].
//!
//! The rule itself lives in [`autopack_core::promotion::eligibility`]; this module only
//! says how a run record answers its questions.

use autopack_core::budget::TierBreach;
use autopack_core::lifecycle::RunFailure;
use autopack_core::promotion::{PromotionRecord, PromotionRefusal, TierOutcome};
use autopack_core::record::RunRecord;

/// What promotion needs to know, read off a run record.
///
/// A budget failure is a run that ended on a run budget (`TOKEN_CAP_EXCEEDED`,
/// `PHASE_LIMIT_EXCEEDED`, `BUDGET_EXHAUSTED`) or a tier that breached its token or CI-run
/// cap. Unresolved major issues are the distinct keys of effective severity `major` the run
/// saw (nothing resolves a key during a run).
pub fn promotion_record(record: &RunRecord) -> PromotionRecord {
    let run_budget_failure = matches!(
        record.state.failure(),
        Some(
            RunFailure::TokenCapExceeded
                | RunFailure::PhaseLimitExceeded
                | RunFailure::BudgetExhausted
        )
    );
    let tier_budget_failure = record.tiers.iter().any(|t| {
        t.breaches.iter().any(|b| {
            matches!(
                b,
                TierBreach::Tokens { .. }
                    | TierBreach::CiRuns { .. }
                    | TierBreach::CiRunsUsedUp { .. }
            )
        })
    });
    PromotionRecord {
        run_id: record.run_id.clone(),
        final_state: record.state,
        tiers: record
            .tiers
            .iter()
            .map(|t| TierOutcome {
                tier_id: t.tier_id.clone(),
                state: t.state,
            })
            .collect(),
        budget_failure: run_budget_failure || tier_budget_failure,
        debt_status: record.debt_status,
        safety_profile: record.safety_profile,
        unresolved_major_issues: record.unresolved_major_issues,
    }
}

/// Every reason the run is not `promotion_eligible_to_main`; `Ok` when it is.
///
/// # Errors
/// The refusals, in the order of SPEC §8's list.
pub fn eligibility(record: &RunRecord) -> Result<(), Vec<PromotionRefusal>> {
    autopack_core::promotion::eligibility(&promotion_record(record))
}
