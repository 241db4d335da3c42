//! Every scripted run again through the drivers: the blocking [`Driver`] and, with
//! feature `tokio`, the [`AsyncDriver`] on a spawned task, each over a host that replays
//! the answers the hand-pumped run got. Both must journal the same inputs, ask for the
//! same actions and end with the same record as pumping the Supervisor by hand.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use autopack::driver::{
    Applier, ApplyOutcome, Auditor, Builder, Driver, HostError, JournalEntry, NoArtefacts,
    NoTripwire, Observer, Verifier,
};
use autopack::supervisor::{
    Action, AgentOutcome, CiReport, CiRequest, Input, PatchRequest, SnapshotRequest,
    SupervisorConfig,
};
use autopack_core::clock::Clock;
use autopack_core::journal::{MemoryRunStore, RunStore, chain};
use autopack_core::message::{AuditorRequest, AuditorResult, BuilderRequest, BuilderResult};
use autopack_core::record::RunRecord;
use chrono::{DateTime, Utc};

use super::Outcome;

/// Checks that both drivers drive `out`'s run as the hand-pumped loop did.
///
/// # Panics
/// When a driver asks for something else, in another order, or ends elsewhere.
pub fn agree(out: &Outcome, config: SupervisorConfig) {
    let expected = Seen {
        actions: out.actions.clone(),
        inputs: out.inputs[1..].to_vec(),
    };
    let journal = expected_journal(&out.inputs, config);
    let record = out.record();

    // The drivers' runs are checked here, not traced: a test that captures the traces of
    // its run sees the hand-pumped run's alone.
    let quiet = tracing::subscriber::NoSubscriber::default();
    let (seen, lines, blocking_record) =
        tracing::subscriber::with_default(quiet, || through_the_blocking_driver(out, config));
    assert_same(
        "the blocking driver",
        &expected,
        &journal,
        record,
        &seen,
        &lines,
        &blocking_record,
    );

    #[cfg(feature = "tokio")]
    {
        let quiet = tracing::subscriber::NoSubscriber::default();
        let (seen, lines, async_record) =
            tracing::subscriber::with_default(quiet, || through_the_async_driver(out, config));
        assert_same(
            "the async driver",
            &expected,
            &journal,
            record,
            &seen,
            &lines,
            &async_record,
        );
    }
}

fn assert_same(
    driver: &str,
    expected: &Seen,
    journal: &[String],
    record: &RunRecord,
    seen: &Seen,
    lines: &[String],
    got: &RunRecord,
) {
    assert_eq!(
        seen.actions, expected.actions,
        "{driver} asked for other actions"
    );
    assert_eq!(
        seen.inputs, expected.inputs,
        "{driver} applied other inputs"
    );
    assert_eq!(lines, journal, "{driver} journaled something else");
    assert_eq!(got, record, "{driver} ended with another record");
}

/// The journal the inputs make, sealed into a hash chain from the run's binding.
fn expected_journal(inputs: &[Input], config: SupervisorConfig) -> Vec<String> {
    let Some(Input::Start { plan, strategy, .. }) = inputs.first() else {
        panic!("a run's first input is its start")
    };
    let binding = autopack::driver::run_binding(plan, strategy).expect("the start binds");
    let mut prev = binding.genesis();
    let mut binds = Some(&binding);
    std::iter::once(JournalEntry::Config(config))
        .chain(inputs.iter().cloned().map(JournalEntry::Input))
        .map(|entry| {
            let json = serde_json::to_string(&entry).expect("entries serialise");
            let line = chain::seal(&prev, binds.take(), &json);
            prev = chain::Digest::of(line.as_bytes());
            line
        })
        .collect()
}

fn journal_lines(store: &mut MemoryRunStore, out: &Outcome) -> Vec<String> {
    let run_id = &out.record().run_id;
    let contents = store.read(run_id).expect("the memory store reads");
    contents.entries().map(str::to_owned).collect()
}

fn through_the_blocking_driver(
    out: &Outcome,
    config: SupervisorConfig,
) -> (Seen, Vec<String>, RunRecord) {
    let (observer, mut store, record) = blocking_run(out, config);
    let lines = journal_lines(&mut store, out);
    (observer, lines, record)
}

/// `out`'s run driven again by the blocking driver over a replaying tape, into a memory
/// store: what it observed, the store, the record it ended with.
fn blocking_run(out: &Outcome, config: SupervisorConfig) -> (Seen, MemoryRunStore, RunRecord) {
    let tape = Tape::of(out);
    let (mut builder, mut auditor, mut applier, mut verifier) =
        (tape.clone(), tape.clone(), tape.clone(), tape.clone());
    let mut observer = Seen::default();
    let mut store = MemoryRunStore::default();
    let host = autopack::driver::Host {
        builder: &mut builder,
        auditor: &mut auditor,
        applier: &mut applier,
        verifier: &mut verifier,
        artefacts: &mut NoArtefacts,
        tripwire: &mut NoTripwire,
        clock: &tape,
        observer: &mut observer,
    };
    let (_, supervisor) = Driver::run(out.inputs[0].clone(), config, &mut store, host)
        .expect("the blocking driver drives the run");
    tape.assert_used_up("the blocking driver");
    let record = supervisor.record().expect("started").clone();
    (observer, store, record)
}

#[cfg(feature = "tokio")]
fn through_the_async_driver(
    out: &Outcome,
    config: SupervisorConfig,
) -> (Seen, Vec<String>, RunRecord) {
    use autopack::driver::{AsyncDriver, AsyncHost};

    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("a tokio runtime")
    });
    let tape = Tape::of(out);
    let start = out.inputs[0].clone();
    // A spawned task: the driver's future must be `Send + 'static` with its parts owned,
    // and the blocking steps run under `block_in_place` on a worker thread.
    let task = runtime.spawn({
        let tape = tape.clone();
        async move {
            let (mut applier, mut verifier) = (tape.clone(), tape.clone());
            let mut observer = Seen::default();
            let mut store = MemoryRunStore::default();
            let (mut artefacts, mut tripwire) = (NoArtefacts, NoTripwire);
            let host = AsyncHost {
                builder: tape.clone(),
                auditor: tape.clone(),
                applier: &mut applier,
                verifier: &mut verifier,
                artefacts: &mut artefacts,
                tripwire: &mut tripwire,
                clock: &tape,
                observer: &mut observer,
            };
            let result = AsyncDriver::run(start, config, &mut store, host).await;
            let (_, supervisor) = result.expect("the async driver drives the run");
            (observer, store, supervisor)
        }
    });
    let (observer, mut store, supervisor) = runtime
        .block_on(task)
        .expect("the driver's task does not panic");
    tape.assert_used_up("the async driver");
    let lines = journal_lines(&mut store, out);
    (
        observer,
        lines,
        supervisor.record().expect("started").clone(),
    )
}

/// What an observer saw.
#[derive(Debug, Default)]
struct Seen {
    actions: Vec<Action>,
    inputs: Vec<Input>,
}

impl Observer for Seen {
    fn action(&mut self, action: &Action, _: &RunRecord) {
        self.actions.push(action.clone());
    }

    fn input(&mut self, input: &Input, _: &RunRecord) {
        self.inputs.push(input.clone());
    }
}

/// The hand-pumped run's answers, handed out in order to whichever part asks; its clock
/// shows the time of the answer last handed out.
#[derive(Clone)]
struct Tape(Arc<Mutex<(VecDeque<Input>, DateTime<Utc>)>>);

impl Tape {
    fn of(out: &Outcome) -> Tape {
        let answers = out.inputs[1..].iter().cloned().collect();
        Tape(Arc::new(Mutex::new((answers, out.inputs[0].at()))))
    }

    fn next(&self, asked: &str) -> Input {
        let mut tape = self.0.lock().expect("the tape's lock");
        let answer = tape
            .0
            .pop_front()
            .unwrap_or_else(|| panic!("the driver asked for {asked} after the last answer"));
        tape.1 = answer.at();
        answer
    }

    fn assert_used_up(&self, driver: &str) {
        let tape = self.0.lock().expect("the tape's lock");
        assert!(
            tape.0.is_empty(),
            "{driver} stopped before {} more answers",
            tape.0.len()
        );
    }

    fn builder_answer(&self, request: &BuilderRequest) -> AgentOutcome<BuilderResult> {
        match self.next("a Builder attempt") {
            Input::BuilderFinished {
                phase_id,
                attempt,
                outcome,
                ..
            } if phase_id == request.phase_id && attempt == request.attempt => outcome,
            other => panic!("Builder attempt {request:?} where the run had {other:?}"),
        }
    }

    fn auditor_answer(&self, request: &AuditorRequest) -> AgentOutcome<AuditorResult> {
        match self.next("an Auditor attempt") {
            Input::AuditorFinished {
                phase_id,
                attempt,
                outcome,
                ..
            } if phase_id == request.phase_id && attempt == request.attempt => outcome,
            other => panic!("Auditor attempt {request:?} where the run had {other:?}"),
        }
    }
}

impl Clock for Tape {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().expect("the tape's lock").1
    }
}

impl Builder for Tape {
    fn build(&mut self, request: &BuilderRequest) -> AgentOutcome<BuilderResult> {
        self.builder_answer(request)
    }
}

impl Auditor for Tape {
    fn audit(&mut self, request: &AuditorRequest) -> AgentOutcome<AuditorResult> {
        self.auditor_answer(request)
    }
}

#[cfg(feature = "tokio")]
impl autopack::driver::AsyncBuilder for Tape {
    async fn build(&mut self, request: &BuilderRequest) -> AgentOutcome<BuilderResult> {
        // A real agent's answer comes later: let the runtime run something else first.
        tokio::task::yield_now().await;
        self.builder_answer(request)
    }
}

#[cfg(feature = "tokio")]
impl autopack::driver::AsyncAuditor for Tape {
    async fn audit(&mut self, request: &AuditorRequest) -> AgentOutcome<AuditorResult> {
        tokio::task::yield_now().await;
        self.auditor_answer(request)
    }
}

impl Applier for Tape {
    fn apply(&mut self, request: &PatchRequest) -> Result<ApplyOutcome, HostError> {
        match self.next("a patch to apply") {
            Input::PatchApplied {
                phase_id,
                commit,
                holds,
                ..
            } if phase_id == request.phase_id => Ok(ApplyOutcome::Applied { commit, holds }),
            Input::PatchRejected {
                phase_id,
                rule,
                message,
                ..
            } if phase_id == request.phase_id => Ok(ApplyOutcome::Rejected { rule, message }),
            other => panic!(
                "a patch of {} where the run had {other:?}",
                request.phase_id
            ),
        }
    }

    fn snapshot(&mut self, request: &SnapshotRequest) -> Result<(), HostError> {
        match self.next("a snapshot") {
            Input::SnapshotCreated { phase_id, tag, .. }
                if phase_id == request.phase_id && tag == request.tag =>
            {
                Ok(())
            }
            other => panic!(
                "a snapshot of {} where the run had {other:?}",
                request.phase_id
            ),
        }
    }
}

impl Verifier for Tape {
    fn verify(&mut self, request: &CiRequest) -> Result<CiReport, HostError> {
        match self.next("a CI run") {
            Input::CiFinished {
                phase_id, report, ..
            } if phase_id == request.phase_id => Ok(report),
            other => panic!("CI of {} where the run had {other:?}", request.phase_id),
        }
    }
}

/// The journal the blocking driver writes when it drives `out`'s run again, in a memory
/// store: a recorded run to read back (`autopack_core::journal::replay`).
pub fn journaled(out: &Outcome, config: SupervisorConfig) -> MemoryRunStore {
    blocking_run(out, config).1
}
