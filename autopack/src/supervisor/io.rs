//! What a host feeds the Supervisor ([`Input`]) and what it asks the host to do
//! ([`Action`]).
//!
//! Inputs are serialisable: they are the entries of a run's journal, and replaying them
//! rebuilds the run exactly.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use autopack_core::clock::timestamp;
use autopack_core::ids::{CommitId, PhaseId, RunId, TierId};
use autopack_core::lifecycle::RunState;
use autopack_core::message::{
    AuditorRequest, AuditorResult, BuilderRequest, BuilderResult, SuggestedIssue,
};
use autopack_core::patch_rules::{PatchHold, PatchLimits};
use autopack_core::plan::Plan;
use autopack_core::record::{AttemptRole, CiVerdict};
use autopack_core::vocabulary::{BuilderMode, CiProfile};
use autopack_issues::{IssueObservation, ProjectBacklog};
use autopack_strategy::{PatchPolicySettings, Strategy};

/// What an agent (Builder or Auditor) call produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentOutcome<T> {
    /// The agent returned a well-formed result.
    Returned(T),
    /// The agent failed: an error, a timeout, garbage on stdout, an oversized answer.
    /// The Supervisor counts it as a failed attempt with this reason.
    Failed {
        /// Why, in a sentence.
        reason: String,
        /// Tokens spent anyway, when known.
        #[serde(default)]
        tokens_used: u64,
    },
}

/// What the preflight gate reported for one CI run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CiReport {
    /// Green, flaky (red then green with no change) or red.
    pub verdict: CiVerdict,
    /// Attempts run (each counts against the tier's `ci_run_cap`).
    pub attempts: u32,
    /// Failing tests named by the last red attempt, when the host can tell: exact ids
    /// from JUnit reports (only the failures the baseline does not hold), else names read
    /// from the output.
    #[serde(default)]
    pub failing_tests: Vec<String>,
    /// The tail of the last attempt's output.
    #[serde(default)]
    pub output_tail: String,
    /// Tests that failed but fail on the base commit too (the run's baseline): they do
    /// not fail the attempt and are recorded as an issue instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_failures: Vec<String>,
    /// Tests that failed in one attempt and passed in a later one with no change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flaky_tests: Vec<String>,
    /// The baseline this CI run computed (when the request carried none and the profile
    /// reads JUnit reports); the Supervisor keeps it for the rest of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<CiBaseline>,
}

impl CiReport {
    /// A report of `verdict` after `attempts` attempts, naming no tests and no output.
    pub fn new(verdict: CiVerdict, attempts: u32) -> CiReport {
        CiReport {
            verdict,
            attempts,
            failing_tests: Vec::new(),
            output_tail: String::new(),
            known_failures: Vec::new(),
            flaky_tests: Vec::new(),
            baseline: None,
        }
    }

    /// With the tests that failed.
    #[must_use]
    pub fn with_failing_tests<T: Into<String>>(
        mut self,
        tests: impl IntoIterator<Item = T>,
    ) -> CiReport {
        self.failing_tests.extend(tests.into_iter().map(Into::into));
        self
    }

    /// With the tail of the test command's output.
    #[must_use]
    pub fn with_output_tail(mut self, tail: impl Into<String>) -> CiReport {
        self.output_tail = tail.into();
        self
    }
}

/// The tests that fail on a run's base commit under one CI profile, computed once per run
/// and journaled with the [`CiReport`] that brought it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CiBaseline {
    /// The profile whose command ran.
    pub profile: CiProfile,
    /// The base commit it ran on.
    pub commit: CommitId,
    /// Failing test ids, sorted.
    pub failing_tests: Vec<String>,
}

/// An input to the Supervisor. Every input carries the time the host read from its clock.
///
/// Times are read with [`timestamp::deserialize_rfc3339`]: what chrono reads, faster (a
/// journal replay reads one per entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Input {
    /// Start the run: the plan, the strategy frozen for it, and the project backlog before
    /// it.
    Start {
        /// Now.
        #[serde(deserialize_with = "timestamp::deserialize_rfc3339")]
        at: DateTime<Utc>,
        /// The plan (validated by the Supervisor).
        plan: Plan,
        /// The strategy compiled for it; frozen for the whole run.
        strategy: Box<Strategy>,
        /// The project backlog before the run.
        backlog: Box<ProjectBacklog>,
    },
    /// A Builder attempt ended.
    BuilderFinished {
        /// Now.
        #[serde(deserialize_with = "timestamp::deserialize_rfc3339")]
        at: DateTime<Utc>,
        /// The phase.
        phase_id: PhaseId,
        /// The attempt number the request carried.
        attempt: u32,
        /// What it produced.
        outcome: AgentOutcome<BuilderResult>,
    },
    /// An Auditor attempt ended.
    AuditorFinished {
        /// Now.
        #[serde(deserialize_with = "timestamp::deserialize_rfc3339")]
        at: DateTime<Utc>,
        /// The phase.
        phase_id: PhaseId,
        /// The attempt number the request carried.
        attempt: u32,
        /// What it produced.
        outcome: AgentOutcome<AuditorResult>,
    },
    /// The patch passed the gate's policy and was committed as a candidate on top of the
    /// integration branch (the branch itself moves only at the snapshot).
    PatchApplied {
        /// Now.
        #[serde(deserialize_with = "timestamp::deserialize_rfc3339")]
        at: DateTime<Utc>,
        /// The phase.
        phase_id: PhaseId,
        /// The candidate commit.
        commit: CommitId,
        /// Why the patch may go on only after an Auditor `approve` (protected paths whose
        /// rule says so, test-integrity findings); empty for most patches.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        holds: Vec<PatchHold>,
    },
    /// The gate rejected the patch.
    PatchRejected {
        /// Now.
        #[serde(deserialize_with = "timestamp::deserialize_rfc3339")]
        at: DateTime<Utc>,
        /// The phase.
        phase_id: PhaseId,
        /// The policy rule that rejected it (e.g. `outside_scope`).
        rule: String,
        /// The rejection, naming the path at fault.
        message: String,
    },
    /// The preflight gate finished a CI run.
    CiFinished {
        /// Now.
        #[serde(deserialize_with = "timestamp::deserialize_rfc3339")]
        at: DateTime<Utc>,
        /// The phase.
        phase_id: PhaseId,
        /// Its report.
        report: CiReport,
    },
    /// The integration branch was moved to the candidate and the snapshot tag created.
    SnapshotCreated {
        /// Now.
        #[serde(deserialize_with = "timestamp::deserialize_rfc3339")]
        at: DateTime<Utc>,
        /// The phase.
        phase_id: PhaseId,
        /// The tag's name.
        tag: String,
    },
    /// The host's environment failed (a test command that cannot start, a repository
    /// error): the run ends `DONE_FAILED_ENVIRONMENT`.
    EnvironmentFailed {
        /// Now.
        #[serde(deserialize_with = "timestamp::deserialize_rfc3339")]
        at: DateTime<Utc>,
        /// What failed.
        reason: String,
    },
    /// Something reached the host repository behind the governed path (the host's
    /// tripwire saw a ref, HEAD, the index, a hook or the config change during an agent or
    /// CI attempt): the run ends `DONE_FAILED_POLICY_VIOLATION`.
    PolicyViolation {
        /// Now.
        #[serde(deserialize_with = "timestamp::deserialize_rfc3339")]
        at: DateTime<Utc>,
        /// What changed and during which attempt.
        reason: String,
    },
    /// The host aborts the run: it ends `DONE_FAILED_MANUAL_ABORT`.
    Abort {
        /// Now.
        #[serde(deserialize_with = "timestamp::deserialize_rfc3339")]
        at: DateTime<Utc>,
        /// Why.
        reason: String,
    },
    /// Issues reported from outside an attempt (a probe script, a person, the first
    /// implementation's `record_issue` endpoint) against one phase of the run. It answers
    /// nothing outstanding; the issues are recorded as a Builder's suggestions are, and
    /// the budgets checked.
    IssuesReported {
        /// Now.
        #[serde(deserialize_with = "timestamp::deserialize_rfc3339")]
        at: DateTime<Utc>,
        /// The phase the issues belong to (any phase of the plan).
        phase_id: PhaseId,
        /// The issues.
        issues: Vec<SuggestedIssue>,
    },
    /// Time passes with nothing else to report (lets the duration budget act while an
    /// agent is slow).
    Tick {
        /// Now.
        #[serde(deserialize_with = "timestamp::deserialize_rfc3339")]
        at: DateTime<Utc>,
    },
}

impl Input {
    /// The time the input carries.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Input::Start { at, .. }
            | Input::BuilderFinished { at, .. }
            | Input::AuditorFinished { at, .. }
            | Input::PatchApplied { at, .. }
            | Input::PatchRejected { at, .. }
            | Input::CiFinished { at, .. }
            | Input::SnapshotCreated { at, .. }
            | Input::EnvironmentFailed { at, .. }
            | Input::PolicyViolation { at, .. }
            | Input::Abort { at, .. }
            | Input::IssuesReported { at, .. }
            | Input::Tick { at } => *at,
        }
    }

    /// The input's name, as in its serialised form (`{"builder_finished": {...}}`).
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Start { .. } => "start",
            Input::BuilderFinished { .. } => "builder_finished",
            Input::AuditorFinished { .. } => "auditor_finished",
            Input::PatchApplied { .. } => "patch_applied",
            Input::PatchRejected { .. } => "patch_rejected",
            Input::CiFinished { .. } => "ci_finished",
            Input::SnapshotCreated { .. } => "snapshot_created",
            Input::EnvironmentFailed { .. } => "environment_failed",
            Input::PolicyViolation { .. } => "policy_violation",
            Input::Abort { .. } => "abort",
            Input::IssuesReported { .. } => "issues_reported",
            Input::Tick { .. } => "tick",
        }
    }
}

/// A patch to validate against the gate's policy and commit as a candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct PatchRequest {
    /// The run (its integration branch is `autonomous/{run_id}`).
    pub run_id: RunId,
    /// The tier.
    pub tier_id: TierId,
    /// The phase.
    pub phase_id: PhaseId,
    /// Who wrote the patch.
    pub role: AttemptRole,
    /// The attempt that produced it.
    pub attempt: u32,
    /// The git-format diff.
    pub patch: String,
    /// Path globs the patch must stay inside (empty: anywhere).
    pub scope: Vec<String>,
    /// The phase's builder mode.
    pub builder_mode: Option<BuilderMode>,
    /// The size limits of that mode, with the ruleset's overrides.
    pub limits: PatchLimits,
    /// The run's frozen patch policy (protected paths, symlinks, path lengths).
    pub policy: PatchPolicySettings,
    /// Where the run's journal stands as the patch is applied (filled by the driver; the
    /// Supervisor knows no journal): the commit's `Autopack-Journal` trailer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<autopack_core::journal::chain::JournalPosition>,
}

/// A CI run to perform on a candidate commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct CiRequest {
    /// The run.
    pub run_id: RunId,
    /// The tier.
    pub tier_id: TierId,
    /// The phase.
    pub phase_id: PhaseId,
    /// The profile to run.
    pub profile: CiProfile,
    /// The candidate commit to test.
    pub commit: CommitId,
    /// Attempts the gate may make: the phase's retries, never more than the tier's
    /// remaining `ci_run_cap` can pay for.
    pub max_attempts: u32,
    /// The run's baseline for this profile, once a CI run computed it (`None` before:
    /// a host that reads JUnit reports computes it and returns it in
    /// [`CiReport::baseline`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<CiBaseline>,
}

/// A candidate to make permanent: move `autonomous/{run_id}` to it and tag it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct SnapshotRequest {
    /// The run.
    pub run_id: RunId,
    /// The tier.
    pub tier_id: TierId,
    /// The phase.
    pub phase_id: PhaseId,
    /// The commit that passed CI.
    pub commit: CommitId,
    /// The tag name: `autonomous/{run_id}/tier-{tier_id}/phase-{phase_id}`.
    pub tag: String,
}

/// A point at which the host should materialise views and summaries.
///
/// A phase or tier checkpoint says what of the [`RunRecord`](autopack_core::record::RunRecord)
/// changed since the previous checkpoint the Supervisor handed out ([`Changed`]), so a
/// host can write only the summaries that changed; a run checkpoint asks for everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "scope", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Checkpoint {
    /// A phase ended (complete or failed).
    Phase {
        /// The phase.
        phase_id: PhaseId,
        /// What changed since the previous checkpoint.
        #[serde(default)]
        changed: Changed,
    },
    /// A tier ended (complete, not clean or blocked).
    Tier {
        /// The tier.
        tier_id: TierId,
        /// What changed since the previous checkpoint.
        #[serde(default)]
        changed: Changed,
    },
    /// The run ended: everything may have changed.
    Run,
}

impl Checkpoint {
    /// A phase checkpoint; what changed is filled in when the emitting input has been
    /// applied.
    pub(crate) fn phase(phase_id: PhaseId) -> Checkpoint {
        Checkpoint::Phase {
            phase_id,
            changed: Changed::default(),
        }
    }

    /// A tier checkpoint; what changed is filled in as for [`Checkpoint::phase`].
    pub(crate) fn tier(tier_id: TierId) -> Checkpoint {
        Checkpoint::Tier {
            tier_id,
            changed: Changed::default(),
        }
    }

    /// What changed since the previous checkpoint; `None` for [`Checkpoint::Run`], after
    /// which everything is to be written.
    pub fn changed(&self) -> Option<&Changed> {
        match self {
            Checkpoint::Phase { changed, .. } | Checkpoint::Tier { changed, .. } => Some(changed),
            Checkpoint::Run => None,
        }
    }
}

/// The position of a phase in a [`RunRecord`](autopack_core::record::RunRecord): its
/// tier's index in `tiers` and its own in that tier's `phases`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[non_exhaustive]
pub struct PhasePosition {
    /// Index in `RunRecord::tiers`.
    pub tier: u32,
    /// Index in `TierRecord::phases`.
    pub phase: u32,
}

/// What of the run record changed between two checkpoints: the host's state after the
/// previous checkpoint plus these tiers and phases (and the run's own fields, which every
/// checkpoint rewrites) is the state now.
///
/// The set is taken when the input that emitted the checkpoint has been applied, so it
/// holds for a host that performs the checkpoint before it feeds the next input (as
/// [`Driver`](crate::driver::Driver) does). When several checkpoints come from one input
/// the first carries the changes and the others nothing more. `everything` is set on the
/// first checkpoint of a Supervisor (a new run, or the first after a replay): nothing of
/// the run is known to be written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Changed {
    /// Anything may have changed: write everything.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub everything: bool,
    /// Tiers whose record changed (their own fields or one of their phases), ascending, as
    /// indices in `RunRecord::tiers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<u32>,
    /// Phases whose record changed, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhasePosition>,
}

impl Changed {
    /// Everything may have changed.
    pub fn everything() -> Changed {
        Changed {
            everything: true,
            ..Changed::default()
        }
    }

    /// Notes a change of the phase at `position` (O(1); duplicates are removed when the
    /// set is handed out).
    pub(crate) fn phase(&mut self, position: PhasePosition) {
        if !self.everything && self.phases.last() != Some(&position) {
            self.phases.push(position);
        }
        self.tier(position.tier);
    }

    /// Notes a change of the tier at index `tier`.
    pub(crate) fn tier(&mut self, tier: u32) {
        if !self.everything && self.tiers.last() != Some(&tier) {
            self.tiers.push(tier);
        }
    }

    /// Sorted and without duplicates.
    pub(crate) fn normalised(mut self) -> Changed {
        self.tiers.sort_unstable();
        self.tiers.dedup();
        self.phases.sort_unstable();
        self.phases.dedup();
        self
    }
}

/// Something the Supervisor asks the host to do. Actions that expect an answer
/// (dispatch, audit, apply, CI, snapshot) are answered by exactly one [`Input`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Run a Builder attempt; answer with [`Input::BuilderFinished`].
    DispatchBuilder(BuilderRequest),
    /// Run an Auditor attempt; answer with [`Input::AuditorFinished`].
    RequestAudit(AuditorRequest),
    /// Validate a patch and commit it as a candidate; answer with [`Input::PatchApplied`]
    /// or [`Input::PatchRejected`].
    ApplyPatch(PatchRequest),
    /// Run CI on a candidate; answer with [`Input::CiFinished`].
    RunCi(CiRequest),
    /// Move the integration branch to the candidate and tag it; answer with
    /// [`Input::SnapshotCreated`].
    CreateSnapshot(SnapshotRequest),
    /// Persist issues the Supervisor just recorded in its ledger (to a durable project
    /// ledger); no answer.
    RecordIssues {
        /// When they were recorded.
        at: DateTime<Utc>,
        /// The observations, in recording order.
        observations: Vec<IssueObservation>,
    },
    /// Materialise views and summaries; no answer.
    Checkpoint(Checkpoint),
    /// Write the incident pack of a failed run; no answer.
    WriteIncidentPack,
    /// The run is over; no answer.
    Finished {
        /// Its terminal state.
        state: RunState,
    },
}

impl Action {
    /// The action's name, as in its serialised form (`{"action": "dispatch_builder", ...}`).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::DispatchBuilder(_) => "dispatch_builder",
            Action::RequestAudit(_) => "request_audit",
            Action::ApplyPatch(_) => "apply_patch",
            Action::RunCi(_) => "run_ci",
            Action::CreateSnapshot(_) => "create_snapshot",
            Action::RecordIssues { .. } => "record_issues",
            Action::Checkpoint(_) => "checkpoint",
            Action::WriteIncidentPack => "write_incident_pack",
            Action::Finished { .. } => "finished",
        }
    }

    /// The phase the action is about, if any.
    pub fn phase_id(&self) -> Option<&PhaseId> {
        match self {
            Action::DispatchBuilder(r) => Some(&r.phase_id),
            Action::RequestAudit(r) => Some(&r.phase_id),
            Action::ApplyPatch(r) => Some(&r.phase_id),
            Action::RunCi(r) => Some(&r.phase_id),
            Action::CreateSnapshot(r) => Some(&r.phase_id),
            Action::RecordIssues { .. }
            | Action::Checkpoint(_)
            | Action::WriteIncidentPack
            | Action::Finished { .. } => None,
        }
    }

    /// Whether the host must answer this action with an input.
    pub fn expects_answer(&self) -> bool {
        matches!(
            self,
            Action::DispatchBuilder(_)
                | Action::RequestAudit(_)
                | Action::ApplyPatch(_)
                | Action::RunCi(_)
                | Action::CreateSnapshot(_)
        )
    }
}
