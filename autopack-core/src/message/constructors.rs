//! Constructors for agents' results, so hosts and tests written in Rust build them
//! without spelling out every field (or going through JSON).

use super::{
    AuditorRecommendation, AuditorResult, BuilderResult, BuilderStatus, ProbeResult, SuggestedIssue,
};
use crate::ids::PhaseId;

/// A confidence outside 0.0..=1.0 ([`AuditorResult::with_confidence`]).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("confidence {0} is out of range; expected a number from 0.0 to 1.0")]
pub struct ConfidenceOutOfRange(pub f64);

impl BuilderResult {
    /// A result of `status` for `phase_id`: no patch, no tokens, nothing else.
    pub fn new(phase_id: PhaseId, status: BuilderStatus) -> BuilderResult {
        BuilderResult {
            phase_id,
            status,
            patch: None,
            probe_results: Vec::new(),
            suggested_issues: Vec::new(),
            tokens_used: 0,
            failing_tests: Vec::new(),
            notes: String::new(),
        }
    }

    /// A [`BuilderStatus::Success`] carrying `patch` (a git-format diff).
    ///
    /// ```
    /// use autopack_core::ids::PhaseId;
    /// use autopack_core::message::{BuilderResult, BuilderStatus};
    ///
    /// let result = BuilderResult::success(PhaseId::new("p1").unwrap(), "diff --git a/x b/x\n")
    ///     .with_tokens(1_200)
    ///     .with_notes("added x");
    /// assert_eq!(result.status, BuilderStatus::Success);
    /// assert_eq!(result.tokens_used, 1_200);
    /// ```
    pub fn success(phase_id: PhaseId, patch: impl Into<String>) -> BuilderResult {
        BuilderResult::new(phase_id, BuilderStatus::Success).with_patch(patch)
    }

    /// A [`BuilderStatus::Failed`] saying why in its notes.
    pub fn failed(phase_id: PhaseId, notes: impl Into<String>) -> BuilderResult {
        BuilderResult::new(phase_id, BuilderStatus::Failed).with_notes(notes)
    }

    /// A [`BuilderStatus::NeedsReview`] carrying `patch`.
    pub fn needs_review(phase_id: PhaseId, patch: impl Into<String>) -> BuilderResult {
        BuilderResult::new(phase_id, BuilderStatus::NeedsReview).with_patch(patch)
    }

    /// With this patch.
    #[must_use]
    pub fn with_patch(mut self, patch: impl Into<String>) -> BuilderResult {
        self.patch = Some(patch.into());
        self
    }

    /// With the tokens the attempt spent.
    #[must_use]
    pub fn with_tokens(mut self, tokens_used: u64) -> BuilderResult {
        self.tokens_used = tokens_used;
        self
    }

    /// With one more suggested issue.
    #[must_use]
    pub fn with_suggested_issue(mut self, issue: SuggestedIssue) -> BuilderResult {
        self.suggested_issues.push(issue);
        self
    }

    /// With one more probe's outcome.
    #[must_use]
    pub fn with_probe(mut self, probe: ProbeResult) -> BuilderResult {
        self.probe_results.push(probe);
        self
    }

    /// With the tests the Builder saw failing.
    #[must_use]
    pub fn with_failing_tests<T: Into<String>>(
        mut self,
        tests: impl IntoIterator<Item = T>,
    ) -> BuilderResult {
        self.failing_tests.extend(tests.into_iter().map(Into::into));
        self
    }

    /// With these notes.
    #[must_use]
    pub fn with_notes(mut self, notes: impl Into<String>) -> BuilderResult {
        self.notes = notes.into();
        self
    }
}

impl AuditorResult {
    /// A verdict on `phase_id` with full confidence, no notes and no tokens.
    pub fn new(phase_id: PhaseId, recommendation: AuditorRecommendation) -> AuditorResult {
        AuditorResult {
            phase_id,
            recommendation,
            review_notes: String::new(),
            issues_found: Vec::new(),
            patch: None,
            confidence: 1.0,
            tokens_used: 0,
        }
    }

    /// [`AuditorRecommendation::Approve`].
    ///
    /// ```
    /// use autopack_core::ids::PhaseId;
    /// use autopack_core::message::{AuditorRecommendation, AuditorResult};
    ///
    /// let phase = PhaseId::new("p1").unwrap();
    /// let verdict = AuditorResult::revise(phase.clone(), "cover the error path")
    ///     .with_confidence(0.8)
    ///     .unwrap()
    ///     .with_tokens(500);
    /// assert_eq!(verdict.recommendation, AuditorRecommendation::Revise);
    /// assert!(AuditorResult::approve(phase).with_confidence(1.5).is_err());
    /// ```
    pub fn approve(phase_id: PhaseId) -> AuditorResult {
        AuditorResult::new(phase_id, AuditorRecommendation::Approve)
    }

    /// [`AuditorRecommendation::Revise`], with notes for the Builder.
    pub fn revise(phase_id: PhaseId, review_notes: impl Into<String>) -> AuditorResult {
        AuditorResult::new(phase_id, AuditorRecommendation::Revise).with_notes(review_notes)
    }

    /// [`AuditorRecommendation::Escalate`], saying why.
    pub fn escalate(phase_id: PhaseId, review_notes: impl Into<String>) -> AuditorResult {
        AuditorResult::new(phase_id, AuditorRecommendation::Escalate).with_notes(review_notes)
    }

    /// With these review notes.
    #[must_use]
    pub fn with_notes(mut self, review_notes: impl Into<String>) -> AuditorResult {
        self.review_notes = review_notes.into();
        self
    }

    /// With one more issue found.
    #[must_use]
    pub fn with_issue(mut self, issue: SuggestedIssue) -> AuditorResult {
        self.issues_found.push(issue);
        self
    }

    /// With a patch of the Auditor's own.
    #[must_use]
    pub fn with_patch(mut self, patch: impl Into<String>) -> AuditorResult {
        self.patch = Some(patch.into());
        self
    }

    /// With the tokens the review spent.
    #[must_use]
    pub fn with_tokens(mut self, tokens_used: u64) -> AuditorResult {
        self.tokens_used = tokens_used;
        self
    }

    /// With this confidence.
    ///
    /// # Errors
    /// [`ConfidenceOutOfRange`] outside 0.0..=1.0 (NaN included), the rule a parsed
    /// result is held to.
    pub fn with_confidence(
        mut self,
        confidence: f64,
    ) -> Result<AuditorResult, ConfidenceOutOfRange> {
        if !(0.0..=1.0).contains(&confidence) {
            return Err(ConfidenceOutOfRange(confidence));
        }
        self.confidence = confidence;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase() -> PhaseId {
        PhaseId::new("p1").unwrap()
    }

    #[test]
    fn a_built_result_reads_back_from_its_json() {
        let built = BuilderResult::success(phase(), "diff --git a/x b/x\n")
            .with_tokens(7)
            .with_failing_tests(["t::a"])
            .with_probe(ProbeResult {
                name: "lint".into(),
                passed: true,
                output: String::new(),
            });
        let json = serde_json::to_string(&built).unwrap();
        assert_eq!(
            super::super::parse_builder_result(&json, "built").unwrap(),
            built
        );
        let verdict = AuditorResult::escalate(phase(), "unsafe").with_tokens(3);
        let json = serde_json::to_string(&verdict).unwrap();
        assert_eq!(
            super::super::parse_auditor_result(&json, "built").unwrap(),
            verdict
        );
    }

    #[test]
    fn confidence_is_held_to_the_parsers_range() {
        for bad in [-0.1, 1.01, f64::NAN] {
            let err = AuditorResult::approve(phase())
                .with_confidence(bad)
                .unwrap_err();
            assert!(err.to_string().contains("out of range"), "{err}");
        }
        assert_eq!(
            AuditorResult::approve(phase())
                .with_confidence(0.0)
                .unwrap()
                .confidence,
            0.0
        );
    }
}
