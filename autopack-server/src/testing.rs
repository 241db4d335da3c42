//! A [`RunHost`] kept in memory, for tests and benchmarks of the HTTP layer: journals in a
//! [`MemoryRunStore`], the project ledger in memory, an applier that commits any git diff
//! as a candidate (ids derived from its content) and refuses anything else
//! (`not_git_diff`), and CI that is green unless the patch says `FAIL_CI`.
//!
//! It drives runs with the same [`Driver`] and [`Session`] as `autopack serve`; only the
//! repository and the stores are stand-ins.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use autopack::core::clock::SystemClock;
use autopack::core::ids::{CommitId, RunId};
use autopack::core::journal::{JournalContents, MemoryRunStore, RunStore};
use autopack::core::lifecycle::RunState;
use autopack::core::plan::Plan;
use autopack::core::record::{CiVerdict, RunRecord};
use autopack::driver::{
    AnsweredElsewhere, Applier, ApplyOutcome, Artefacts, Driver, DriverError, HostError,
    NoTripwire, RecordedIssue, replay_run,
};
use autopack::issues::{AgingThresholds, IssueObservation, Ledger, ProjectBacklog};
use autopack::supervisor::{
    Checkpoint, CiReport, CiRequest, Input, PatchRequest, SnapshotRequest, SupervisorConfig,
    SupervisorError,
};
use chrono::{DateTime, Utc};

use crate::host::{HostFailure, IntegrationStatus, Promoted, RunHost, StoredRun};
use crate::session::{Session, lock};

/// A journal store shared by every session of a [`MemoryHost`].
#[derive(Debug, Clone, Default)]
pub struct SharedJournals(Arc<Mutex<MemoryRunStore>>);

impl RunStore for SharedJournals {
    type Error = <MemoryRunStore as RunStore>::Error;

    fn append(&mut self, run_id: &RunId, entry: &str) -> Result<(), Self::Error> {
        lock(&self.0).append(run_id, entry)
    }

    fn read(&mut self, run_id: &RunId) -> Result<JournalContents, Self::Error> {
        lock(&self.0).read(run_id)
    }

    fn sync(&mut self, run_id: &RunId) -> Result<(), Self::Error> {
        lock(&self.0).sync(run_id)
    }

    fn runs(&mut self) -> Result<Vec<RunId>, Self::Error> {
        lock(&self.0).runs()
    }
}

/// Commits any git diff as a candidate; refuses anything else.
#[derive(Debug, Default)]
struct MemoryApplier;

fn content_id(parts: &[&str]) -> String {
    let mut out = String::with_capacity(40);
    for salt in 0..3u8 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        parts.hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(40);
    out
}

impl Applier for MemoryApplier {
    fn apply(&mut self, request: &PatchRequest) -> Result<ApplyOutcome, HostError> {
        if !request.patch.starts_with("diff --git ") {
            return Ok(ApplyOutcome::Rejected {
                rule: "not_git_diff".into(),
                message: "the patch is not a git-format diff".into(),
            });
        }
        let commit = content_id(&[
            request.run_id.as_str(),
            request.phase_id.as_str(),
            &request.patch,
        ]);
        Ok(ApplyOutcome::Applied {
            commit: CommitId::new(commit).map_err(HostError::repository)?,
            holds: Vec::new(),
        })
    }

    fn snapshot(&mut self, _: &SnapshotRequest) -> Result<(), HostError> {
        Ok(())
    }
}

/// Green CI, unless the candidate's patch said `FAIL_CI` (the applier keeps no patches,
/// so the verifier is told through the shared set).
#[derive(Debug, Default)]
struct MemoryCi {
    red: Arc<Mutex<std::collections::BTreeSet<CommitId>>>,
}

impl autopack::driver::Verifier for MemoryCi {
    fn verify(&mut self, request: &CiRequest) -> Result<CiReport, HostError> {
        let red = lock(&self.red).contains(&request.commit);
        Ok(CiReport {
            verdict: if red {
                CiVerdict::Red
            } else {
                CiVerdict::Green
            },
            attempts: 1,
            failing_tests: if red {
                vec!["tests::memory_ci".into()]
            } else {
                Vec::new()
            },
            output_tail: String::new(),
            known_failures: Vec::new(),
            flaky_tests: Vec::new(),
            baseline: None,
        })
    }
}

/// Remembers which candidates carry `FAIL_CI`.
struct RedMarking {
    inner: MemoryApplier,
    red: Arc<Mutex<std::collections::BTreeSet<CommitId>>>,
}

impl Applier for RedMarking {
    fn apply(&mut self, request: &PatchRequest) -> Result<ApplyOutcome, HostError> {
        let outcome = self.inner.apply(request)?;
        if let ApplyOutcome::Applied { commit, .. } = &outcome
            && request.patch.contains("FAIL_CI")
        {
            lock(&self.red).insert(commit.clone());
        }
        Ok(outcome)
    }

    fn snapshot(&mut self, request: &SnapshotRequest) -> Result<(), HostError> {
        self.inner.snapshot(request)
    }
}

/// The project ledger in memory.
#[derive(Debug, Clone)]
struct MemoryLedger(Arc<Mutex<Ledger>>);

impl Artefacts for MemoryLedger {
    fn checkpoint(&mut self, _: &Checkpoint, _: &RunRecord, _: &Ledger) -> Result<(), HostError> {
        Ok(())
    }

    fn record_issues(
        &mut self,
        at: DateTime<Utc>,
        observations: &[IssueObservation],
    ) -> Result<(), HostError> {
        let mut ledger = lock(&self.0);
        for observation in observations {
            ledger.record(observation, at).map_err(HostError::new)?;
        }
        Ok(())
    }

    fn incident(&mut self, _: &RunRecord, _: &Ledger) -> Result<(), HostError> {
        Ok(())
    }

    fn recover(&mut self, _: &RunRecord, _: &Ledger, _: &[RecordedIssue]) -> Result<(), HostError> {
        Ok(())
    }
}

/// A run host in memory (see the module doc).
#[derive(Debug, Clone)]
pub struct MemoryHost {
    journals: SharedJournals,
    ledger: MemoryLedger,
    red: Arc<Mutex<std::collections::BTreeSet<CommitId>>>,
}

impl Default for MemoryHost {
    fn default() -> Self {
        MemoryHost::new()
    }
}

impl MemoryHost {
    /// An empty host.
    pub fn new() -> MemoryHost {
        MemoryHost {
            journals: SharedJournals::default(),
            ledger: MemoryLedger(Arc::new(Mutex::new(
                Ledger::new(AgingThresholds::default()),
            ))),
            red: Arc::default(),
        }
    }

    /// The journals (to inspect what a run wrote).
    pub fn journals(&self) -> SharedJournals {
        self.journals.clone()
    }

    fn drive(
        &self,
        session: Session,
        open: impl for<'a> FnOnce(
            &'a mut SharedJournals,
            autopack::driver::Host<'a>,
        ) -> Result<Driver<'a, SharedJournals>, DriverError>,
    ) -> Result<RunState, HostFailure> {
        let mut store = self.journals.clone();
        let mut builder = AnsweredElsewhere;
        let mut auditor = AnsweredElsewhere;
        let mut applier = RedMarking {
            inner: MemoryApplier,
            red: Arc::clone(&self.red),
        };
        let mut verifier = MemoryCi {
            red: Arc::clone(&self.red),
        };
        let mut artefacts = self.ledger.clone();
        let mut tripwire = NoTripwire;
        let clock = SystemClock;
        let mut observer = session.observer();
        let host = autopack::driver::Host {
            builder: &mut builder,
            auditor: &mut auditor,
            applier: &mut applier,
            verifier: &mut verifier,
            artefacts: &mut artefacts,
            tripwire: &mut tripwire,
            clock: &clock,
            observer: &mut observer,
        };
        let mut driver = open(&mut store, host).map_err(start_failure)?;
        session
            .drive(&mut driver)
            .map_err(|e| HostFailure::Machinery(e.to_string()))
    }
}

fn start_failure(err: DriverError) -> HostFailure {
    match err {
        DriverError::RunExists(id) => HostFailure::Exists(format!("run {id} exists")),
        DriverError::Supervisor(
            e @ (SupervisorError::InvalidPlan(_) | SupervisorError::StrategyMismatch(_)),
        ) => HostFailure::Invalid(e.to_string()),
        other => HostFailure::Machinery(other.to_string()),
    }
}

impl RunHost for MemoryHost {
    fn start(&self, plan: Plan, session: Session) -> Result<RunState, HostFailure> {
        let strategy = autopack::strategy::dry_run(&plan, None, None)
            .map_err(|e| HostFailure::Invalid(e.to_string()))?;
        let backlog: ProjectBacklog = lock(&self.ledger.0).backlog();
        let start = Input::Start {
            at: Utc::now(),
            plan,
            strategy: Box::new(strategy),
            backlog: Box::new(backlog),
        };
        self.drive(session, move |store, host| {
            Driver::begin(start, SupervisorConfig::default(), store, host)
        })
    }

    fn resume(&self, run_id: &RunId, session: Session) -> Result<RunState, HostFailure> {
        let mut store = self.journals.clone();
        let replayed = replay_run(&mut store, run_id).map_err(start_failure)?;
        let id = run_id.clone();
        self.drive(session, move |store, host| {
            Driver::reopen(replayed, &id, store, host)
        })
    }

    fn run_ids(&self) -> Result<Vec<RunId>, HostFailure> {
        self.journals
            .clone()
            .runs()
            .map_err(|e| HostFailure::Machinery(e.to_string()))
    }

    fn load(&self, run_id: &RunId) -> Result<Option<StoredRun>, HostFailure> {
        StoredRun::replay(&mut self.journals.clone(), run_id)
    }

    fn backlog(&self) -> Result<ProjectBacklog, HostFailure> {
        Ok(lock(&self.ledger.0).backlog())
    }

    fn integration_status(&self, run_id: &RunId) -> Result<IntegrationStatus, HostFailure> {
        let record = self
            .load(run_id)?
            .map(|s| s.record)
            .ok_or_else(|| HostFailure::Invalid(format!("run {run_id} not found")))?;
        Ok(IntegrationStatus {
            branch: format!("autonomous/{run_id}"),
            commits_ahead: u32::try_from(
                record.phases().filter(|p| p.snapshot_tag.is_some()).count(),
            )
            .unwrap_or(u32::MAX),
            current_commit: record
                .integration_tip
                .as_ref()
                .map(CommitId::to_string)
                .unwrap_or_default(),
        })
    }

    fn promote(&self, run_id: &RunId, record: &RunRecord) -> Result<Promoted, HostFailure> {
        Ok(Promoted {
            target: "main".into(),
            commit: record
                .integration_tip
                .as_ref()
                .map(CommitId::to_string)
                .unwrap_or_default(),
            message: format!("run {run_id} promoted to main (in memory)"),
        })
    }
}
