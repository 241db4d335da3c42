//! The Supervisor's reactions to agent, gate and CI outcomes.

use chrono::{DateTime, Utc};

use autopack_core::budget::{RunBreach, TierBreach};
use autopack_core::ids::CommitId;
use autopack_core::lifecycle::{
    PhaseEvent, PhaseState, RunEvent, RunFailure, TierEvent, TierState,
};
use autopack_core::message::{
    AuditReason, AuditorRecommendation, AuditorResult, BuilderResult, BuilderStatus, CiFailure,
    SuggestedIssue,
};
use autopack_core::patch_rules::PatchHold;
use autopack_core::record::{
    AttemptOutcome, AttemptRecord, AttemptRole, CiRecord, CiVerdict, FailureRecord,
};
use autopack_core::vocabulary::{BuilderMode, RunScope, SafetyProfile};
use autopack_issues::{IssueObservation, ReportedIssue};

use super::io::{
    Action, AgentOutcome, Checkpoint, CiReport, CiRequest, PatchRequest, SnapshotRequest,
};
use super::issues::{flaky_issue, hold_issues, known_failures_issue};
use super::wording::{
    builder_signature, colon, describe_builder_failure, list_suffix, status_name, tail_suffix,
};
use super::{At, AttemptFailure, AuditPurpose, Candidate, Ctx, Pending, Step, SupervisorError};

impl Ctx<'_> {
    // ----- builder -----

    pub(super) fn on_builder(
        &mut self,
        attempt: u32,
        outcome: AgentOutcome<BuilderResult>,
        at: DateTime<Utc>,
    ) -> Step {
        let Some(at_) = self.current() else {
            return Ok(());
        };
        let result = match outcome {
            AgentOutcome::Failed {
                reason,
                tokens_used,
            } => {
                self.spend(at_, tokens_used);
                self.record_attempt(
                    AttemptRole::Builder,
                    attempt,
                    AttemptOutcome::Failed,
                    &reason,
                    tokens_used,
                    at,
                );
                if !self.check_budgets(at_, at)? {
                    return Ok(());
                }
                let failure = AttemptFailure {
                    signature: format!("agent:{reason}"),
                    reason: format!("builder attempt {attempt} failed: {reason}"),
                };
                return self.attempt_failed(failure, RunEvent::AttemptFailed, at);
            }
            AgentOutcome::Returned(result) => result,
        };
        let tokens = result.tokens_used;
        self.spend(at_, tokens);
        let phase_id = self.phase(at_).phase_id.clone();
        if result.phase_id != phase_id {
            let reason = format!(
                "builder answered for phase {} instead of {phase_id}",
                result.phase_id
            );
            self.record_attempt(
                AttemptRole::Builder,
                attempt,
                AttemptOutcome::Failed,
                &reason,
                tokens,
                at,
            );
            if !self.check_budgets(at_, at)? {
                return Ok(());
            }
            let failure = AttemptFailure {
                signature: "builder:wrong_phase".into(),
                reason,
            };
            return self.attempt_failed(failure, RunEvent::AttemptFailed, at);
        }
        if !self.record_issues(at_, &result.suggested_issues, at)? {
            return Ok(());
        }
        if !self.check_budgets(at_, at)? {
            return Ok(());
        }
        let cap = self.phase(at_).caps.incident_token_cap;
        let failure = if tokens > cap {
            Some(AttemptFailure {
                reason: format!(
                    "builder attempt {attempt} spent {tokens} tokens, over the phase's incident token cap of {cap}"
                ),
                signature: "tokens:incident_cap".into(),
            })
        } else {
            match (
                result.status,
                result
                    .patch
                    .as_deref()
                    .map(str::trim)
                    .filter(|p| !p.is_empty()),
            ) {
                (BuilderStatus::Success | BuilderStatus::NeedsReview, Some(_)) => None,
                (BuilderStatus::Failed, _) => Some(AttemptFailure {
                    reason: format!(
                        "builder attempt {attempt} reported failure{}",
                        describe_builder_failure(&result)
                    ),
                    signature: builder_signature(&result),
                }),
                (status, None) => Some(AttemptFailure {
                    reason: format!(
                        "builder attempt {attempt} reported {} but sent no patch",
                        status_name(status)
                    ),
                    signature: "builder:no_patch".into(),
                }),
            }
        };
        if let Some(failure) = failure {
            self.record_attempt(
                AttemptRole::Builder,
                attempt,
                AttemptOutcome::Failed,
                &failure.reason,
                tokens,
                at,
            );
            return self.attempt_failed(failure, RunEvent::AttemptFailed, at);
        }
        let needs_review = result.status == BuilderStatus::NeedsReview;
        let patch = result.patch.unwrap_or_default();
        self.work().needs_review = needs_review;
        self.pending_attempt_tokens(tokens);
        self.submit(at_, AttemptRole::Builder, attempt, patch, at)
    }

    fn pending_attempt_tokens(&mut self, tokens: u64) {
        self.work().attempt_tokens = tokens;
    }

    /// Sends a patch to the gate: phase `EXECUTING → GATE`, run `PHASE_EXECUTION → GATE`.
    fn submit(
        &mut self,
        at_: At,
        role: AttemptRole,
        attempt: u32,
        patch: String,
        at: DateTime<Utc>,
    ) -> Step {
        self.phase_event(at_, PhaseEvent::Submit, at)?;
        self.run_event(RunEvent::PatchSubmitted, at)?;
        if role == AttemptRole::Builder {
            self.work().previous_patch = Some(patch.clone());
        }
        self.work().submitted = Some((role, attempt, patch.clone()));
        self.emit_apply(at_, role, attempt, patch);
        Ok(())
    }

    pub(super) fn emit_apply(&mut self, at_: At, role: AttemptRole, attempt: u32, patch: String) {
        if self.quiet {
            self.a.pending = Some(Pending::Apply);
            return;
        }
        let p = self.phase(at_);
        let request = PatchRequest {
            run_id: self.a.run.run_id.clone(),
            tier_id: p.tier_id.clone(),
            phase_id: p.phase_id.clone(),
            role,
            attempt,
            patch,
            scope: p.scope.clone(),
            builder_mode: p.builder_mode.clone(),
            limits: self.a.run.patch_policy.limits_for(
                p.builder_mode
                    .as_ref()
                    .unwrap_or(&BuilderMode::Other(String::new())),
            ),
            policy: self.a.run.patch_policy.clone(),
            journal: None,
        };
        self.a.pending = Some(Pending::Apply);
        self.emit(Action::ApplyPatch(request));
    }

    // ----- gate -----

    pub(super) fn on_patch_applied(
        &mut self,
        commit: CommitId,
        holds: Vec<PatchHold>,
        at: DateTime<Utc>,
    ) -> Step {
        let Some(at_) = self.current() else {
            return Ok(());
        };
        let Some((role, attempt, patch)) = self.work().submitted.take() else {
            return Ok(());
        };
        self.work().candidate = Some(Candidate {
            commit,
            role,
            attempt,
            patch,
        });
        if !holds.is_empty() {
            // SPEC §13: a held patch is recorded, and test-integrity risk makes this
            // candidate's CI strict whatever the phase's category says.
            let issues = hold_issues(&self.phase(at_).phase_id, &holds);
            if !self.record_issues(at_, &issues, at)? {
                return Ok(());
            }
            self.work().strict_ci |= holds.iter().any(PatchHold::is_test_integrity);
        }
        let held = !holds.is_empty();
        let needs_approval = (self.phase(at_).needs_approval() || self.work().needs_review || held)
            && role == AttemptRole::Builder
            && !self.work().approved;
        if needs_approval {
            if self.auditor_attempts_left(at_) {
                let mut failures = self.work().feedback.clone();
                failures.extend(holds.iter().map(ToString::to_string));
                return self.request_audit(AuditPurpose::Approval, failures);
            }
            let reason = if held {
                format!(
                    "the patch needs an Auditor approve ({}) and the phase has no Auditor attempts",
                    holds
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            } else {
                "the patch needs an Auditor approve (high-risk phase without auto_apply, or the Builder asked for review) and the phase has no Auditor attempts".to_owned()
            };
            return self.fail_phase(reason, at);
        }
        self.gate_passed(at_, at)
    }

    fn gate_passed(&mut self, at_: At, at: DateTime<Utc>) -> Step {
        self.phase_event(at_, PhaseEvent::GatePassed, at)?;
        self.run_event(RunEvent::GatePassed, at)?;
        let remaining = {
            let tier = &self.a.record.tiers[at_.tier];
            tier.caps.ci_runs_remaining(&tier.usage)
        };
        if remaining == 0 {
            // A budget breach like any other: in the tier's breaches (its summary, the
            // reports' budget flags), not only in the phase's failure reason.
            let tier = &mut self.a.record.tiers[at_.tier];
            let breach = TierBreach::CiRunsUsedUp {
                cap: tier.caps.ci_run_cap,
            };
            if !tier.breaches.iter().any(|b| super::same_cap(b, &breach)) {
                tracing::warn!(target: "autopack::budget", run_id = %self.a.run.run_id, tier_id = %tier.tier_id, %breach, "tier budget breached");
                tier.breaches.push(breach);
            }
            self.a
                .changed
                .tier(u32::try_from(at_.tier).unwrap_or(u32::MAX));
            let tier_id = self.a.record.tiers[at_.tier].tier_id.clone();
            return self.fail_phase(
                format!(
                    "tier {tier_id} has used its whole ci_run_cap; the patch cannot be verified"
                ),
                at,
            );
        }
        self.emit_ci_request(at_);
        Ok(())
    }

    pub(super) fn emit_ci_request(&mut self, at_: At) {
        if self.quiet {
            self.a.pending = Some(Pending::Ci);
            return;
        }
        let tier = &self.a.record.tiers[at_.tier];
        let remaining = tier.caps.ci_runs_remaining(&tier.usage);
        let profile = self.ci_profile(at_);
        let baseline = self.a.ci_baselines.get(&profile).cloned();
        let p = self.phase(at_);
        let wanted = p.ci_max_retries.saturating_add(1);
        let request = CiRequest {
            run_id: self.a.run.run_id.clone(),
            tier_id: p.tier_id.clone(),
            phase_id: p.phase_id.clone(),
            profile,
            commit: self
                .a
                .current
                .as_ref()
                .and_then(|(_, w)| w.candidate.as_ref())
                .map(|c| c.commit.clone())
                // The gate's `patch_applied` set it before CI could be asked for (or the
                // journal that replayed it did), as indexing the tier above trusts `at_`.
                .expect("CI is requested only for a phase with a candidate"),
            max_attempts: wanted.min(remaining).max(1),
            baseline,
        };
        self.a.pending = Some(Pending::Ci);
        self.emit(Action::RunCi(request));
    }

    // ----- CI -----

    pub(super) fn on_ci(&mut self, report: CiReport, at: DateTime<Utc>) -> Step {
        let Some(at_) = self.current() else {
            return Ok(());
        };
        let profile = self.ci_profile(at_);
        let attempts = report.attempts;
        if let Some(baseline) = &report.baseline
            && baseline.profile == profile
        {
            self.a
                .ci_baselines
                .entry(profile)
                .or_insert_with(|| baseline.clone());
        }
        {
            let phase = &mut self.a.record.tiers[at_.tier].phases[at_.phase];
            phase.usage.ci_runs = phase.usage.ci_runs.saturating_add(attempts);
            phase.ci_runs.push(CiRecord {
                profile,
                verdict: report.verdict,
                attempts,
                at,
            });
            let tier = &mut self.a.record.tiers[at_.tier];
            tier.usage.ci_runs = tier.usage.ci_runs.saturating_add(attempts);
            self.a.record.usage.ci_runs = self.a.record.usage.ci_runs.saturating_add(attempts);
        }
        tracing::info!(target: "autopack::ci", run_id = %self.a.run.run_id, phase_id = %self.phase(at_).phase_id, verdict = ?report.verdict, attempts, "CI finished");
        match report.verdict {
            CiVerdict::Green | CiVerdict::Flaky => {
                let phase_id = &self.phase(at_).phase_id;
                let issues: Vec<SuggestedIssue> = (report.verdict == CiVerdict::Flaky)
                    .then(|| flaky_issue(phase_id, &report))
                    .flatten()
                    .into_iter()
                    .chain(known_failures_issue(phase_id, profile, &report))
                    .collect();
                if !self.record_issues(at_, &issues, at)? {
                    return Ok(());
                }
                if !self.check_budgets(at_, at)? {
                    return Ok(());
                }
                self.emit_snapshot(at_);
                Ok(())
            }
            CiVerdict::Red => {
                self.work().last_ci = Some(CiFailure {
                    output_tail: report.output_tail.clone(),
                    failing_tests: report.failing_tests.clone(),
                });
                if !self.check_budgets(at_, at)? {
                    return Ok(());
                }
                let failure = AttemptFailure {
                    reason: format!(
                        "CI ({profile}) red after {attempts} attempt(s){}{}",
                        list_suffix(" failing: ", &report.failing_tests),
                        tail_suffix(&report.output_tail)
                    ),
                    signature: if report.failing_tests.is_empty() {
                        "ci:red".into()
                    } else {
                        let mut tests = report.failing_tests.clone();
                        tests.sort();
                        tests.dedup();
                        format!("ci:{}", tests.join(","))
                    },
                };
                let (role, attempt) = self.candidate_author();
                let tokens = self.work().attempt_tokens;
                self.record_attempt(
                    role,
                    attempt,
                    AttemptOutcome::Failed,
                    &failure.reason,
                    tokens,
                    at,
                );
                self.attempt_failed(failure, RunEvent::CiRed, at)
            }
        }
    }

    pub(super) fn emit_snapshot(&mut self, at_: At) {
        if self.quiet {
            self.a.pending = Some(Pending::Snapshot);
            return;
        }
        let p = self.phase(at_);
        let commit = self
            .a
            .current
            .as_ref()
            .and_then(|(_, w)| w.candidate.as_ref())
            .map(|c| c.commit.clone())
            .expect("a snapshot is requested only for a phase with a candidate");
        let tag = snapshot_tag_name(&self.a.run.run_id, &p.tier_id, &p.phase_id);
        let request = SnapshotRequest {
            run_id: self.a.run.run_id.clone(),
            tier_id: p.tier_id.clone(),
            phase_id: p.phase_id.clone(),
            commit,
            tag,
        };
        self.a.pending = Some(Pending::Snapshot);
        self.emit(Action::CreateSnapshot(request));
    }

    pub(super) fn on_snapshot(&mut self, tag: String, at: DateTime<Utc>) -> Step {
        let Some(at_) = self.current() else {
            return Ok(());
        };
        let (role, attempt) = self.candidate_author();
        let commit = self.work().candidate.as_ref().map(|c| c.commit.clone());
        let tokens = self.work().attempt_tokens;
        if role == AttemptRole::Builder || !self.work().approved {
            self.record_attempt(role, attempt, AttemptOutcome::Succeeded, "", tokens, at);
        }
        {
            let phase = &mut self.a.record.tiers[at_.tier].phases[at_.phase];
            phase.commit = commit.clone();
            phase.snapshot_tag = Some(tag);
        }
        self.a.record.integration_tip = commit;
        self.run_event(RunEvent::CiGreen, at)?;
        self.phase_event(at_, PhaseEvent::CiGreen, at)?;
        let phase_id = self.phase(at_).phase_id.clone();
        self.emit(Action::Checkpoint(Checkpoint::phase(phase_id)));
        self.a.current = None;
        self.advance(at)
    }

    // ----- failed attempts and escalation -----

    pub(super) fn attempt_failed(
        &mut self,
        failure: AttemptFailure,
        run_event: RunEvent,
        at: DateTime<Utc>,
    ) -> Step {
        let Some(at_) = self.current() else {
            return Ok(());
        };
        tracing::info!(target: "autopack::attempt", run_id = %self.a.run.run_id, phase_id = %self.phase(at_).phase_id, reason = %failure.reason, "attempt failed");
        self.run_event(run_event, at)?;
        self.phase_event(at_, PhaseEvent::AttemptFailed, at)?;
        let threshold = self.a.config.failure_loop_threshold.max(2) as usize;
        let max_builder = self.phase(at_).caps.max_builder_attempts;
        let work = self.work();
        work.submitted = None;
        work.candidate = None;
        work.needs_review = false;
        work.approved = false;
        work.strict_ci = false;
        work.attempt_tokens = 0;
        work.failure_streak.push(failure.signature.clone());
        work.feedback.push(failure.reason.clone());
        let streak = &work.failure_streak;
        let looping = streak.len() >= threshold
            && streak[streak.len() - threshold..]
                .iter()
                .all(|s| s == &failure.signature);
        let builder_left =
            work.builder_attempts < max_builder.saturating_add(work.extra_builder_attempts);
        if looping {
            tracing::warn!(target: "autopack::escalation", run_id = %self.a.run.run_id, phase_id = %self.phase(at_).phase_id, signature = %failure.signature, "failure loop detected; escalating early");
            if self.auditor_attempts_left(at_) {
                let failures = self.work().feedback.clone();
                return self
                    .request_audit(AuditPurpose::Rescue(AuditReason::FailureLoop), failures);
            }
            return self.fail_phase(
                format!("failure loop: {threshold} attempts in a row failed the same way ({}); last: {}", failure.signature, failure.reason),
                at,
            );
        }
        if builder_left {
            self.phase_event(at_, PhaseEvent::Retry, at)?;
            return self.dispatch_builder();
        }
        if self.auditor_attempts_left(at_) {
            let failures = self.work().feedback.clone();
            return self.request_audit(
                AuditPurpose::Rescue(AuditReason::AttemptsExhausted),
                failures,
            );
        }
        self.fail_phase(
            format!(
                "builder attempts exhausted; last failure: {}",
                failure.reason
            ),
            at,
        )
    }

    fn auditor_attempts_left(&mut self, at_: At) -> bool {
        let max = self.phase(at_).caps.max_auditor_attempts;
        self.work().auditor_attempts < max
    }

    pub(super) fn on_auditor(
        &mut self,
        attempt: u32,
        purpose: AuditPurpose,
        outcome: AgentOutcome<AuditorResult>,
        at: DateTime<Utc>,
    ) -> Step {
        let Some(at_) = self.current() else {
            return Ok(());
        };
        let phase_id = self.phase(at_).phase_id.clone();
        let result = match outcome {
            AgentOutcome::Returned(r) if r.phase_id == phase_id => r,
            other => {
                let (reason, tokens) = match other {
                    AgentOutcome::Failed {
                        reason,
                        tokens_used,
                    } => (reason, tokens_used),
                    AgentOutcome::Returned(r) => (
                        format!(
                            "auditor answered for phase {} instead of {phase_id}",
                            r.phase_id
                        ),
                        r.tokens_used,
                    ),
                };
                self.spend(at_, tokens);
                self.record_attempt(
                    AttemptRole::Auditor,
                    attempt,
                    AttemptOutcome::Failed,
                    &reason,
                    tokens,
                    at,
                );
                if !self.check_budgets(at_, at)? {
                    return Ok(());
                }
                if self.auditor_attempts_left(at_) {
                    self.work()
                        .feedback
                        .push(format!("auditor attempt {attempt} failed: {reason}"));
                    let failures = self.work().feedback.clone();
                    return self.request_audit(purpose, failures);
                }
                return self.fail_phase(format!("auditor attempts exhausted; last: {reason}"), at);
            }
        };
        let tokens = result.tokens_used;
        self.spend(at_, tokens);
        if !self.record_issues(at_, &result.issues_found, at)? {
            return Ok(());
        }
        if !self.check_budgets(at_, at)? {
            return Ok(());
        }
        let notes = result.review_notes.trim().to_owned();
        match (purpose, result.recommendation) {
            (_, AuditorRecommendation::Escalate) => {
                self.record_attempt(
                    AttemptRole::Auditor,
                    attempt,
                    AttemptOutcome::Escalated,
                    &notes,
                    tokens,
                    at,
                );
                tracing::warn!(target: "autopack::escalation", run_id = %self.a.run.run_id, %phase_id, "auditor escalated");
                self.fail_phase(format!("the Auditor escalated{}", colon(&notes)), at)
            }
            (AuditPurpose::Approval, AuditorRecommendation::Approve) => {
                self.record_attempt(
                    AttemptRole::Auditor,
                    attempt,
                    AttemptOutcome::Succeeded,
                    &notes,
                    tokens,
                    at,
                );
                self.work().approved = true;
                self.gate_passed(at_, at)
            }
            (AuditPurpose::Approval, AuditorRecommendation::Revise) => {
                self.record_attempt(
                    AttemptRole::Auditor,
                    attempt,
                    AttemptOutcome::Revise,
                    &notes,
                    tokens,
                    at,
                );
                self.revise(at_, &notes, RunEvent::GateRejected, at)
            }
            (AuditPurpose::Rescue(_), AuditorRecommendation::Revise) => {
                self.record_attempt(
                    AttemptRole::Auditor,
                    attempt,
                    AttemptOutcome::Revise,
                    &notes,
                    tokens,
                    at,
                );
                self.revise(at_, &notes, RunEvent::AttemptFailed, at)
            }
            (AuditPurpose::Rescue(_), AuditorRecommendation::Approve) => {
                match result.patch.filter(|p| !p.trim().is_empty()) {
                    Some(patch) => {
                        self.record_attempt(
                            AttemptRole::Auditor,
                            attempt,
                            AttemptOutcome::Succeeded,
                            &notes,
                            tokens,
                            at,
                        );
                        self.work().approved = true;
                        self.work().attempt_tokens = tokens;
                        self.phase_event(at_, PhaseEvent::Retry, at)?;
                        self.submit(at_, AttemptRole::Auditor, attempt, patch, at)
                    }
                    None => {
                        let reason =
                            "the Auditor approved but sent no patch, and no Builder patch passed"
                                .to_owned();
                        self.record_attempt(
                            AttemptRole::Auditor,
                            attempt,
                            AttemptOutcome::Failed,
                            &reason,
                            tokens,
                            at,
                        );
                        self.fail_phase(reason, at)
                    }
                }
            }
        }
    }

    /// An Auditor `revise`: one more Builder attempt, with the Auditor's notes as feedback.
    fn revise(&mut self, at_: At, notes: &str, run_event: RunEvent, at: DateTime<Utc>) -> Step {
        let work = self.work();
        work.extra_builder_attempts += 1;
        work.submitted = None;
        work.candidate = None;
        work.needs_review = false;
        work.approved = false;
        work.strict_ci = false;
        if !notes.is_empty() {
            work.feedback.push(format!("Auditor: {notes}"));
        }
        let state = self.a.record.tiers[at_.tier].phases[at_.phase].state;
        if state != PhaseState::Retry {
            // Awaiting approval in GATE: the revise is a failed attempt of the patch.
            self.run_event(run_event, at)?;
            self.phase_event(at_, PhaseEvent::AttemptFailed, at)?;
        }
        self.phase_event(at_, PhaseEvent::Retry, at)?;
        self.dispatch_builder()
    }

    // ----- issues -----

    /// Records reported issues in the ledger and refreshes counts. Returns whether the
    /// run goes on (the run's minor-issue total may be exceeded).
    pub(super) fn record_issues(
        &mut self,
        at_: At,
        issues: &[SuggestedIssue],
        at: DateTime<Utc>,
    ) -> Result<bool, SupervisorError> {
        if issues.is_empty() {
            return Ok(true);
        }
        let run_id = self.a.run.run_id.clone();
        let mut recorded = Vec::with_capacity(issues.len());
        for issue in issues {
            let p = self.phase(at_);
            let observation = IssueObservation {
                run_id: run_id.clone(),
                tier_id: p.tier_id.clone(),
                phase_index: p.phase_index,
                phase_id: p.phase_id.clone(),
                task_category: p.task_category.clone(),
                complexity: p.complexity,
                issue: ReportedIssue {
                    issue_key: issue.issue_key.clone(),
                    severity: issue.severity,
                    source: issue.source,
                    category: issue.category.clone(),
                    expected_fail: issue.expected_fail,
                    evidence_refs: issue.evidence_refs.clone(),
                },
            };
            match self.a.ledger.record(&observation, at) {
                Ok(outcome) => {
                    recorded.push(observation);
                    if outcome.regression {
                        tracing::warn!(target: "autopack::issues", %run_id, issue_key = %issue.issue_key, "regression: a resolved issue was seen again");
                    }
                    if outcome.newly_needs_cleanup {
                        tracing::info!(target: "autopack::issues", %run_id, issue_key = %issue.issue_key, "issue aged to needs_cleanup");
                    }
                }
                Err(err) => {
                    // The Supervisor supplies the phase fields itself, so a conflict means
                    // the backlog disagrees with this run's plan: keep the run going.
                    tracing::warn!(target: "autopack::issues", %run_id, issue_key = %issue.issue_key, error = %err, "issue not recorded");
                }
            }
        }
        if !recorded.is_empty() {
            self.emit(Action::RecordIssues {
                at,
                observations: recorded,
            });
        }
        self.refresh_issue_counts(at_);
        Ok(true)
    }

    pub(super) fn refresh_issue_counts(&mut self, at_: At) {
        let run_id = &self.a.run.run_id;
        let p = &self.a.run.tiers[at_.tier].phases[at_.phase];
        let phase_counts = self.a.ledger.phase_counts(run_id, &p.phase_id);
        let tier_counts = self.a.ledger.tier_counts(run_id, &p.tier_id);
        let run_counts = self.a.ledger.run_counts(run_id);
        let phase = &mut self.a.record.tiers[at_.tier].phases[at_.phase];
        phase.minor_issues = phase_counts.minor;
        phase.major_issues = phase_counts.major;
        let tier = &mut self.a.record.tiers[at_.tier];
        tier.usage.minor_issues = tier_counts.minor;
        tier.usage.major_issues = tier_counts.major;
        self.a.record.usage.minor_issues = run_counts.minor;
        self.a.record.unresolved_major_issues = run_counts.major;
    }

    /// Run budgets, then the current tier's. Returns whether the run goes on.
    pub(super) fn check_budgets(
        &mut self,
        at_: At,
        at: DateTime<Utc>,
    ) -> Result<bool, SupervisorError> {
        Ok(self.check_run_budgets(at)? && self.check_tier_budgets(at_.tier, at)?)
    }

    fn candidate_author(&mut self) -> (AttemptRole, u32) {
        let work = self.work();
        work.candidate
            .as_ref()
            .map(|c| (c.role, c.attempt))
            .unwrap_or((AttemptRole::Builder, work.builder_attempts))
    }

    /// Records the failure of the attempt whose patch the gate rejected.
    pub(super) fn record_rejected_attempt(&mut self, reason: &str, at: DateTime<Utc>) {
        let work = self.work();
        let (role, attempt) = work
            .submitted
            .as_ref()
            .map(|(role, attempt, _)| (*role, *attempt))
            .unwrap_or((AttemptRole::Builder, work.builder_attempts));
        let tokens = work.attempt_tokens;
        self.record_attempt(role, attempt, AttemptOutcome::Failed, reason, tokens, at);
    }

    fn record_attempt(
        &mut self,
        role: AttemptRole,
        number: u32,
        outcome: AttemptOutcome,
        reason: &str,
        tokens: u64,
        at: DateTime<Utc>,
    ) {
        let Some(at_) = self.current() else { return };
        self.a.record.tiers[at_.tier].phases[at_.phase]
            .attempts
            .push(AttemptRecord {
                role,
                number,
                outcome,
                reason: reason.to_owned(),
                tokens,
                at,
            });
    }

    // ----- endings -----

    /// The current phase failed for good: block its tier, skip the tier's remaining
    /// phases, then go on or stop as the run's scope and safety profile say (SPEC §7).
    pub(super) fn fail_phase(&mut self, reason: String, at: DateTime<Utc>) -> Step {
        let Some(at_) = self.current() else {
            return Ok(());
        };
        let phase_id = self.phase(at_).phase_id.clone();
        tracing::warn!(target: "autopack::phase", run_id = %self.a.run.run_id, %phase_id, %reason, "phase failed");
        self.phase_event(at_, PhaseEvent::Fail, at)?;
        self.a.record.tiers[at_.tier].phases[at_.phase].failure_reason = Some(reason.clone());
        self.refresh_issue_counts(at_);
        self.emit(Action::Checkpoint(Checkpoint::phase(phase_id.clone())));
        self.block_tier(at_.tier, format!("phase {phase_id} failed: {reason}"), at)?;
        self.a.current = None;
        self.a.pending = None;
        self.run_event(RunEvent::PhaseAbandoned, at)?;
        let tier_id = self.a.record.tiers[at_.tier].tier_id.clone();
        if self.a.run.safety_profile == SafetyProfile::SafetyCritical {
            return self.fail_run(
                RunFailure::RequiresHumanReview,
                format!("tier {tier_id} blocked under safety_critical: phase {phase_id} failed: {reason}"),
                None,
                at,
            );
        }
        if self.a.run.run_scope == RunScope::SingleTier {
            return self.fail_run(
                RunFailure::TierBlocked,
                format!(
                    "tier {tier_id} blocked in a single_tier run: phase {phase_id} failed: {reason}"
                ),
                None,
                at,
            );
        }
        self.a.next = At {
            tier: at_.tier + 1,
            phase: 0,
        };
        self.advance(at)
    }

    fn block_tier(&mut self, tier: usize, reason: String, at: DateTime<Utc>) -> Step {
        if self.a.record.tiers[tier].state == TierState::Running {
            self.tier_event(tier, TierEvent::Block, at)?;
            self.a.record.tiers[tier].blocked_reason = Some(reason);
        }
        self.skip_queued(tier, "its tier was blocked", at)?;
        let tier_id = self.a.record.tiers[tier].tier_id.clone();
        self.emit(Action::Checkpoint(Checkpoint::tier(tier_id)));
        Ok(())
    }

    fn skip_queued(&mut self, tier: usize, why: &str, at: DateTime<Utc>) -> Step {
        for phase in 0..self.a.record.tiers[tier].phases.len() {
            if self.a.record.tiers[tier].phases[phase].state == PhaseState::Queued {
                self.phase_event(At { tier, phase }, PhaseEvent::Skip, at)?;
                self.a.record.tiers[tier].phases[phase].failure_reason =
                    Some(format!("skipped: {why}"));
            }
        }
        Ok(())
    }

    /// All phases of a tier are done. Returns whether the run goes on.
    pub(super) fn finish_tier(
        &mut self,
        tier: usize,
        at: DateTime<Utc>,
    ) -> Result<bool, SupervisorError> {
        let run_id = self.a.run.run_id.clone();
        let tier_id = self.a.record.tiers[tier].tier_id.clone();
        let counts = self.a.ledger.tier_counts(&run_id, &tier_id);
        self.a.record.tiers[tier].usage.minor_issues = counts.minor;
        self.a.record.tiers[tier].usage.major_issues = counts.major;
        if !self.check_tier_budgets(tier, at)? {
            return Ok(false);
        }
        let event = if self.a.record.tiers[tier].breaches.is_empty() {
            TierEvent::Complete
        } else {
            TierEvent::CompleteNotClean
        };
        self.tier_event(tier, event, at)?;
        self.emit(Action::Checkpoint(Checkpoint::tier(tier_id)));
        Ok(true)
    }

    pub(super) fn finish_run(&mut self, at: DateTime<Utc>) -> Step {
        let blocked: Vec<String> = self
            .a
            .record
            .tiers
            .iter()
            .filter(|t| t.state == TierState::Blocked)
            .map(|t| t.tier_id.to_string())
            .collect();
        if !blocked.is_empty() {
            return self.fail_run(
                RunFailure::TierBlocked,
                format!("blocked tiers: {}", blocked.join(", ")),
                None,
                at,
            );
        }
        self.run_event(RunEvent::Complete, at)?;
        self.finalize(at);
        Ok(())
    }

    /// Ends the run in a `DONE_FAILED_*` state from wherever it is.
    pub(super) fn fail_run(
        &mut self,
        failure: RunFailure,
        reason: String,
        breach: Option<RunBreach>,
        at: DateTime<Utc>,
    ) -> Step {
        tracing::error!(target: "autopack::run", run_id = %self.a.run.run_id, %failure, %reason, "run failed");
        let mut failing = None;
        if let Some(at_) = self.current() {
            let state = self.a.record.tiers[at_.tier].phases[at_.phase].state;
            if !state.is_terminal() {
                let phase_id = self.phase(at_).phase_id.clone();
                self.phase_event(at_, PhaseEvent::Fail, at)?;
                self.a.record.tiers[at_.tier].phases[at_.phase].failure_reason =
                    Some(format!("run ended: {reason}"));
                self.refresh_issue_counts(at_);
                self.emit(Action::Checkpoint(Checkpoint::phase(phase_id.clone())));
                failing = Some((self.phase(at_).tier_id.clone(), phase_id));
            }
        }
        for tier in 0..self.a.record.tiers.len() {
            if self.a.record.tiers[tier].state != TierState::Running {
                continue;
            }
            let all_done = self.a.record.tiers[tier]
                .phases
                .iter()
                .all(|p| p.state.is_terminal());
            let any_failed = self.a.record.tiers[tier]
                .phases
                .iter()
                .any(|p| p.state == PhaseState::Failed);
            if all_done && !any_failed {
                let event = if self.a.record.tiers[tier].breaches.is_empty() {
                    TierEvent::Complete
                } else {
                    TierEvent::CompleteNotClean
                };
                self.tier_event(tier, event, at)?;
                let tier_id = self.a.record.tiers[tier].tier_id.clone();
                self.emit(Action::Checkpoint(Checkpoint::tier(tier_id)));
            } else {
                self.block_tier(tier, format!("the run ended: {reason}"), at)?;
            }
        }
        for tier in 0..self.a.record.tiers.len() {
            self.skip_queued(tier, "the run ended first", at)?;
        }
        self.run_event(RunEvent::Fail(failure), at)?;
        let (tier_id, phase_id) = match failing {
            Some((t, p)) => (Some(t), Some(p)),
            None => (None, None),
        };
        self.a.record.failure = Some(FailureRecord {
            failure,
            reason,
            tier_id,
            phase_id,
            breach,
        });
        self.a.current = None;
        self.a.pending = None;
        self.finalize(at);
        Ok(())
    }

    fn finalize(&mut self, _at: DateTime<Utc>) {
        let run_id = self.a.run.run_id.clone();
        let counts = self.a.ledger.run_counts(&run_id);
        self.a.record.usage.minor_issues = counts.minor;
        self.a.record.unresolved_major_issues = counts.major;
        self.a.record.debt_status = self
            .a
            .ledger
            .debt_status(&run_id, self.a.run.caps.max_minor_issues_total);
        if self.a.record.state.failure().is_some() {
            self.emit(Action::WriteIncidentPack);
        }
        self.emit(Action::Checkpoint(Checkpoint::Run));
        let state = self.a.record.state;
        tracing::info!(target: "autopack::run", %run_id, %state, "run finished");
        self.emit(Action::Finished { state });
    }
}

/// The snapshot tag of a phase: `autonomous/{run_id}/tier-{tier_id}/phase-{phase_id}`.
pub(crate) fn snapshot_tag_name(
    run_id: &autopack_core::ids::RunId,
    tier_id: &autopack_core::ids::TierId,
    phase_id: &autopack_core::ids::PhaseId,
) -> String {
    format!("autonomous/{run_id}/tier-{tier_id}/phase-{phase_id}")
}
