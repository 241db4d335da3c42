//! The pieces a [`Driver`](super::Driver) drives: agent, gate, CI, artefact, tripwire and observer traits, and the [`Host`] that bundles them.

use autopack_core::clock::Clock;
use autopack_core::ids::CommitId;
use autopack_core::message::{AuditorRequest, AuditorResult, BuilderRequest, BuilderResult};
use autopack_core::record::RunRecord;
use autopack_issues::{IssueObservation, Ledger};
use chrono::{DateTime, Utc};

#[cfg(doc)]
use super::Driver;
use super::HostError;
use crate::supervisor::{
    Action, AgentOutcome, Checkpoint, CiReport, CiRequest, Input, PatchRequest, SnapshotRequest,
};

/// Writes code for a phase.
pub trait Builder {
    /// Runs one attempt. Errors, timeouts and malformed answers are returned as
    /// [`AgentOutcome::Failed`] with a reason.
    fn build(&mut self, request: &BuilderRequest) -> AgentOutcome<BuilderResult>;
}

/// Reviews a phase.
pub trait Auditor {
    /// Runs one review. Errors, timeouts and malformed answers are returned as
    /// [`AgentOutcome::Failed`] with a reason.
    fn audit(&mut self, request: &AuditorRequest) -> AgentOutcome<AuditorResult>;
}

impl<B: Builder + ?Sized> Builder for &mut B {
    fn build(&mut self, request: &BuilderRequest) -> AgentOutcome<BuilderResult> {
        (**self).build(request)
    }
}

impl<A: Auditor + ?Sized> Auditor for &mut A {
    fn audit(&mut self, request: &AuditorRequest) -> AgentOutcome<AuditorResult> {
        (**self).audit(request)
    }
}

/// The Builder and Auditor of a host that steps its driver ([`Driver::advance`]) and
/// answers attempts itself ([`Driver::builder_finished`]): a stepped driver never calls
/// them, and a driven one gets a failed attempt saying so.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnsweredElsewhere;

impl Builder for AnsweredElsewhere {
    fn build(&mut self, request: &BuilderRequest) -> AgentOutcome<BuilderResult> {
        AgentOutcome::Failed {
            reason: format!(
                "no Builder here: attempt {} of phase {} is answered through Driver::builder_finished",
                request.attempt, request.phase_id
            ),
            tokens_used: 0,
        }
    }
}

impl Auditor for AnsweredElsewhere {
    fn audit(&mut self, request: &AuditorRequest) -> AgentOutcome<AuditorResult> {
        AgentOutcome::Failed {
            reason: format!(
                "no Auditor here: attempt {} of phase {} is answered through Driver::auditor_finished",
                request.attempt, request.phase_id
            ),
            tokens_used: 0,
        }
    }
}

/// What the gate made of a patch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApplyOutcome {
    /// The patch passed the policy and was committed as a candidate.
    Applied {
        /// The candidate commit.
        commit: autopack_core::ids::CommitId,
        /// Why it may go on only after an Auditor `approve` (empty for most patches).
        holds: Vec<autopack_core::patch_rules::PatchHold>,
    },
    /// The policy rejected it.
    Rejected {
        /// The rule (snake_case).
        rule: String,
        /// The rejection, naming the path.
        message: String,
    },
}

/// The governed apply path: validates and commits patches, makes candidates permanent.
pub trait Applier {
    /// Checks a patch against the policy and commits it as a candidate on top of the
    /// integration branch without moving the branch.
    ///
    /// # Errors
    /// A host failure (the repository cannot be read or written).
    fn apply(&mut self, request: &PatchRequest) -> Result<ApplyOutcome, HostError>;

    /// Moves the integration branch to the candidate and creates the snapshot tag.
    /// Must be idempotent: a retry after a crash finds the work done and succeeds.
    ///
    /// # Errors
    /// A host failure.
    fn snapshot(&mut self, request: &SnapshotRequest) -> Result<(), HostError>;

    /// Compares the integration branch with the candidate commits the journal knows
    /// (`known`) and describes each commit on the branch it does not know (added by
    /// hand, or by anything but this run). A resume calls it before going on; anything
    /// returned ends the run `DONE_FAILED_POLICY_VIOLATION`. The default keeps no branch
    /// and finds nothing.
    ///
    /// # Errors
    /// A host failure (the branch cannot be read).
    fn reconcile(&mut self, known: &[CommitId]) -> Result<Vec<String>, HostError> {
        let _ = known;
        Ok(Vec::new())
    }
}

/// The CI gate.
pub trait Verifier {
    /// Runs CI on the candidate, at most `request.max_attempts` attempts.
    ///
    /// # Errors
    /// A host failure (the test command cannot start, the worktree cannot be made) —
    /// distinct from red tests, which are a [`CiReport`].
    fn verify(&mut self, request: &CiRequest) -> Result<CiReport, HostError>;
}

/// Where views, summaries and incident packs go.
pub trait Artefacts {
    /// Materialises views and summaries at a checkpoint.
    ///
    /// # Errors
    /// A host failure.
    fn checkpoint(
        &mut self,
        checkpoint: &Checkpoint,
        record: &RunRecord,
        ledger: &Ledger,
    ) -> Result<(), HostError>;

    /// Persists issues the Supervisor recorded (the durable project ledger).
    ///
    /// # Errors
    /// A host failure.
    fn record_issues(
        &mut self,
        at: DateTime<Utc>,
        observations: &[IssueObservation],
    ) -> Result<(), HostError>;

    /// Writes the incident pack of a failed run.
    ///
    /// # Errors
    /// A host failure.
    fn incident(&mut self, record: &RunRecord, ledger: &Ledger) -> Result<(), HostError>;

    /// Brings the artefacts up to the journal after a crash; [`Driver::resume`] calls it
    /// first, for a finished run too.
    ///
    /// `recorded` is every issue the run recorded so far, in order, with the time of its
    /// [`Action::RecordIssues`]. A crash can have kept the last of them from the durable
    /// ledger (it came after the journal line that caused them), and a replay performs no
    /// actions, so the host persists those its ledger does not hold yet — exactly once:
    /// recording is in order and the run has one writer, so what the ledger holds of the
    /// run is a prefix of `recorded`. Then it rewrites every view and summary (and the
    /// incident pack of a failed run), which the crash may have left behind the record.
    ///
    /// # Errors
    /// A host failure.
    fn recover(
        &mut self,
        record: &RunRecord,
        ledger: &Ledger,
        recorded: &[RecordedIssue],
    ) -> Result<(), HostError>;
}

/// An issue the Supervisor recorded ([`Action::RecordIssues`]), with the action's time.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedIssue {
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// What was recorded.
    pub observation: IssueObservation,
}

/// Watches the host repository for changes made behind the governed path. The driver
/// checks it after every Builder, Auditor and CI attempt; a change ends the run
/// `DONE_FAILED_POLICY_VIOLATION` ([`Input::PolicyViolation`]) naming what changed.
pub trait Tripwire {
    /// What changed since the run began (or resumed), one sentence each; empty when
    /// nothing did.
    ///
    /// # Errors
    /// A host failure (the repository cannot be read).
    fn check(&mut self) -> Result<Vec<String>, HostError>;
}

/// A tripwire that never fires, for hosts without a repository of their own (tests,
/// in-memory hosts).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTripwire;

impl Tripwire for NoTripwire {
    fn check(&mut self) -> Result<Vec<String>, HostError> {
        Ok(Vec::new())
    }
}

/// Artefacts that go nowhere, for hosts and tests that keep only the record.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoArtefacts;

impl Artefacts for NoArtefacts {
    fn record_issues(&mut self, _: DateTime<Utc>, _: &[IssueObservation]) -> Result<(), HostError> {
        Ok(())
    }

    fn checkpoint(&mut self, _: &Checkpoint, _: &RunRecord, _: &Ledger) -> Result<(), HostError> {
        Ok(())
    }

    fn incident(&mut self, _: &RunRecord, _: &Ledger) -> Result<(), HostError> {
        Ok(())
    }

    fn recover(&mut self, _: &RunRecord, _: &Ledger, _: &[RecordedIssue]) -> Result<(), HostError> {
        Ok(())
    }
}

/// Observes the run as it goes (progress output, metrics). All methods default to no-ops.
pub trait Observer {
    /// An action is about to be performed.
    fn action(&mut self, _action: &Action, _record: &RunRecord) {}
    /// An input was applied.
    fn input(&mut self, _input: &Input, _record: &RunRecord) {}
}

/// An observer that observes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// The pieces a [`Driver`] drives.
pub struct Host<'a> {
    /// The Builder.
    pub builder: &'a mut dyn Builder,
    /// The Auditor.
    pub auditor: &'a mut dyn Auditor,
    /// The gate's apply path.
    pub applier: &'a mut dyn Applier,
    /// CI.
    pub verifier: &'a mut dyn Verifier,
    /// Views, summaries, incident packs.
    pub artefacts: &'a mut dyn Artefacts,
    /// Checked after every agent and CI attempt.
    pub tripwire: &'a mut dyn Tripwire,
    /// The clock every input's time is read from.
    pub clock: &'a dyn Clock,
    /// Progress.
    pub observer: &'a mut dyn Observer,
}
