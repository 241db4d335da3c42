//! The drivers over scripted agents: journaling, resume after a crash, resume of a
//! finished run — the async driver resuming every crash point as the blocking one does.

mod common;

use autopack::driver::{
    Applier, ApplyOutcome, Auditor, Builder, DriveOutcome, Driver, DriverError, Host, HostError,
    JournalEntry, NoArtefacts, NoTripwire, Quiet, Verifier,
};
use autopack::supervisor::{
    AgentOutcome, CiReport, CiRequest, Input, PatchRequest, SnapshotRequest, SupervisorConfig,
};
use autopack_core::clock::ManualClock;
use autopack_core::ids::RunId;
use autopack_core::journal::{self, MemoryRunStore, RunStore};
use autopack_core::lifecycle::RunState;
use autopack_core::message::{
    AuditorRecommendation, AuditorRequest, AuditorResult, BuilderRequest, BuilderResult,
};
use autopack_core::record::CiVerdict;
use autopack_core::vocabulary::{RunScope, SafetyProfile};
use common::*;

struct Agents;

impl Builder for Agents {
    fn build(&mut self, r: &BuilderRequest) -> AgentOutcome<BuilderResult> {
        if r.phase_id.as_str() == "a1" && r.attempt == 1 {
            failed(r, &["t"])
        } else {
            success(r, 100)
        }
    }
}

impl Auditor for Agents {
    fn audit(&mut self, r: &AuditorRequest) -> AgentOutcome<AuditorResult> {
        audit(r, AuditorRecommendation::Approve)
    }
}

#[derive(Default)]
struct Repo {
    applied: Vec<String>,
    snapshots: Vec<String>,
}

impl Applier for Repo {
    fn apply(&mut self, r: &PatchRequest) -> Result<ApplyOutcome, HostError> {
        let commit = commit(&format!("c-{}-{}", r.phase_id, r.attempt));
        self.applied.push(commit.to_string());
        Ok(ApplyOutcome::Applied {
            commit,
            holds: vec![],
        })
    }

    fn snapshot(&mut self, r: &SnapshotRequest) -> Result<(), HostError> {
        if !self.snapshots.contains(&r.tag) {
            self.snapshots.push(r.tag.clone());
        }
        Ok(())
    }
}

struct Ci {
    fail_to_start: bool,
}

impl Verifier for Ci {
    fn verify(&mut self, _r: &CiRequest) -> Result<CiReport, HostError> {
        if self.fail_to_start {
            return Err(HostError::new("sh: cargo: command not found"));
        }
        Ok(CiReport {
            verdict: CiVerdict::Green,
            attempts: 1,
            failing_tests: vec![],
            output_tail: String::new(),
            known_failures: vec![],
            flaky_tests: vec![],
            baseline: None,
        })
    }
}

fn the_plan() -> autopack_core::plan::Plan {
    plan(
        "drv",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[
            &[("a1", "docs"), ("a2", "schema_change")],
            &[("b1", "tests")],
        ],
    )
}

fn run_fresh(
    store: &mut MemoryRunStore,
    repo: &mut Repo,
    fail_ci: bool,
) -> (DriveOutcome, autopack::supervisor::Supervisor) {
    let clock = ManualClock::new(t0());
    let mut agents = Agents;
    let mut agents2 = Agents;
    let mut ci = Ci {
        fail_to_start: fail_ci,
    };
    let mut artefacts = NoArtefacts;
    let mut quiet = Quiet;
    let host = Host {
        builder: &mut agents,
        auditor: &mut agents2,
        applier: repo,
        verifier: &mut ci,
        artefacts: &mut artefacts,
        tripwire: &mut NoTripwire,
        clock: &clock,
        observer: &mut quiet,
    };
    Driver::run(start(&the_plan()), SupervisorConfig::default(), store, host).expect("driver runs")
}

/// Resumes `run` from `store` with the scripted host; returns the outcome and the repo.
fn resume(
    store: &mut MemoryRunStore,
    run: &RunId,
) -> (
    Result<(DriveOutcome, autopack::supervisor::Supervisor), DriverError>,
    Repo,
) {
    let clock = ManualClock::new(t0());
    let (mut a, mut b) = (Agents, Agents);
    let mut repo = Repo::default();
    let mut ci = Ci {
        fail_to_start: false,
    };
    let (mut artefacts, mut quiet) = (NoArtefacts, Quiet);
    let host = Host {
        builder: &mut a,
        auditor: &mut b,
        applier: &mut repo,
        verifier: &mut ci,
        artefacts: &mut artefacts,
        tripwire: &mut NoTripwire,
        clock: &clock,
        observer: &mut quiet,
    };
    let result = Driver::resume(run, store, host);
    (result, repo)
}

#[test]
fn the_driver_journals_every_input_before_applying_it() {
    let mut store = MemoryRunStore::default();
    let mut repo = Repo::default();
    let (outcome, sup) = run_fresh(&mut store, &mut repo, false);
    assert_eq!(outcome, DriveOutcome::Finished(RunState::DoneSuccess));
    assert_eq!(repo.snapshots.len(), 3);
    let run = RunId::new("drv").unwrap();
    let entries: Vec<JournalEntry> = journal::replay(&mut store, &run).unwrap();
    assert!(matches!(entries[0], JournalEntry::Config(_)));
    assert!(matches!(
        entries[1],
        JournalEntry::Input(Input::Start { .. })
    ));
    // Replaying the journal rebuilds the same record.
    let replayed = autopack::driver::replay_journal(&mut store, &run).unwrap();
    assert_eq!(replayed.record(), sup.record());
}

#[test]
fn a_host_failure_ends_the_run_in_done_failed_environment() {
    let mut store = MemoryRunStore::default();
    let mut repo = Repo::default();
    let (outcome, sup) = run_fresh(&mut store, &mut repo, true);
    assert_eq!(outcome.state(), RunState::DoneFailedEnvironment);
    assert!(
        sup.record()
            .unwrap()
            .failure
            .as_ref()
            .unwrap()
            .reason
            .contains("command not found")
    );
}

#[test]
fn a_crashed_run_resumes_from_its_journal_and_ends_as_an_uninterrupted_one() {
    // The uninterrupted run.
    let mut full_store = MemoryRunStore::default();
    let mut full_repo = Repo::default();
    let (_, full) = run_fresh(&mut full_store, &mut full_repo, false);
    let run = RunId::new("drv").unwrap();
    let all: Vec<String> = full_store
        .read(&run)
        .unwrap()
        .entries()
        .map(str::to_owned)
        .collect();
    // Crash after every possible prefix of the journal, then resume.
    for cut in 2..all.len() {
        let mut store = MemoryRunStore::default();
        for line in &all[..cut] {
            store.append(&run, line).unwrap();
        }
        let (outcome, resumed) = resume(&mut store, &run).0.expect("resumes");
        assert_eq!(
            outcome,
            DriveOutcome::Finished(RunState::DoneSuccess),
            "cut at {cut}"
        );
        let (r, f) = (resumed.record().unwrap(), full.record().unwrap());
        assert_eq!(r.state, f.state);
        let states = |rec: &autopack_core::record::RunRecord| {
            rec.phases()
                .map(|p| (p.phase_id.clone(), p.state, p.attempts.len()))
                .collect::<Vec<_>>()
        };
        assert_eq!(states(r), states(f), "cut at {cut}");
    }
}

#[test]
fn resuming_a_finished_run_is_a_no_op_that_says_so() {
    let mut store = MemoryRunStore::default();
    let mut repo = Repo::default();
    run_fresh(&mut store, &mut repo, false);
    let run = RunId::new("drv").unwrap();
    let before = store.read(&run).unwrap().len();
    let (result, repo2) = resume(&mut store, &run);
    let (outcome, _) = result.unwrap();
    assert_eq!(
        outcome,
        DriveOutcome::AlreadyFinished(RunState::DoneSuccess)
    );
    assert_eq!(store.read(&run).unwrap().len(), before);
    assert!(repo2.applied.is_empty());
}

#[test]
fn resuming_an_unknown_run_is_an_error() {
    let mut store = MemoryRunStore::default();
    let err = resume(&mut store, &RunId::new("nope").unwrap())
        .0
        .err()
        .unwrap();
    assert!(matches!(err, DriverError::NothingToResume(_)), "{err}");
}

/// [`resume`] through the async driver, on a tokio runtime with worker threads.
#[cfg(feature = "tokio")]
fn resume_async(
    store: &mut MemoryRunStore,
    run: &RunId,
) -> Result<(DriveOutcome, autopack::supervisor::Supervisor), DriverError> {
    use autopack::driver::{AsyncDriver, AsyncHost, Blocking};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime");
    let clock = ManualClock::new(t0());
    let mut repo = Repo::default();
    let mut ci = Ci {
        fail_to_start: false,
    };
    let (mut artefacts, mut tripwire, mut quiet) = (NoArtefacts, NoTripwire, Quiet);
    let host = AsyncHost {
        builder: Blocking(Agents),
        auditor: Blocking(Agents),
        applier: &mut repo,
        verifier: &mut ci,
        artefacts: &mut artefacts,
        tripwire: &mut tripwire,
        clock: &clock,
        observer: &mut quiet,
    };
    runtime.block_on(AsyncDriver::resume(run, store, host))
}

#[cfg(feature = "tokio")]
#[test]
fn the_async_driver_resumes_every_crash_point_as_the_blocking_driver_does() {
    let mut full_store = MemoryRunStore::default();
    let (_, full) = run_fresh(&mut full_store, &mut Repo::default(), false);
    let run = RunId::new("drv").unwrap();
    let all: Vec<String> = full_store
        .read(&run)
        .unwrap()
        .entries()
        .map(str::to_owned)
        .collect();
    let lines = |store: &mut MemoryRunStore| -> Vec<String> {
        let contents = store.read(&run).unwrap();
        contents.entries().map(str::to_owned).collect()
    };
    for cut in 2..=all.len() {
        let (mut blocking_store, mut async_store) =
            (MemoryRunStore::default(), MemoryRunStore::default());
        for line in &all[..cut] {
            blocking_store.append(&run, line).unwrap();
            async_store.append(&run, line).unwrap();
        }
        let (blocking, by_blocking) = resume(&mut blocking_store, &run).0.expect("resumes");
        let (outcome, by_async) = resume_async(&mut async_store, &run).expect("resumes");
        assert_eq!(outcome, blocking, "cut at {cut}");
        assert_eq!(by_async.record(), by_blocking.record(), "cut at {cut}");
        assert_eq!(
            lines(&mut async_store),
            lines(&mut blocking_store),
            "cut at {cut}"
        );
        assert_eq!(
            by_async.record().unwrap().state,
            full.record().unwrap().state
        );
    }
    // The whole journal: a finished run, reported so, with nothing appended.
    let mut store = full_store.clone();
    let (outcome, _) = resume_async(&mut store, &run).unwrap();
    assert_eq!(
        outcome,
        DriveOutcome::AlreadyFinished(RunState::DoneSuccess)
    );
    assert_eq!(lines(&mut store), all);
}
