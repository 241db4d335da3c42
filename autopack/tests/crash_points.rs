//! Crash-point simulation: a multi-tier run with issues, retries, red and flaky CI and an
//! Auditor is "killed" at every I/O step — before and after each journal append, each
//! artefact write, each candidate commit and snapshot (and between moving the branch and
//! tagging, with the ref's lock file left behind), each agent and CI call — then resumed
//! the way `autopack resume` does (stale ref locks reclaimed, `Driver::resume`). After
//! every crash point the run must end exactly as the uninterrupted run: the same terminal
//! state, journal, project ledger (journal, backlog, run index, phase files), summaries,
//! commits and tags.
//!
//! A crash is a panic carrying [`Crash`], raised by the adapters' wrappers and caught
//! around the driver: everything in the crashed "process" is dropped, and only what the
//! real adapters had put on disk (the filesystem journal and artefacts, the git
//! repository) survives, as after `kill -9`.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use autopack::apply::{BranchOptions, CommitSignature, IntegrationBranch, Oid};
use autopack::driver::{
    Applier, ApplyOutcome, Artefacts, Auditor, Builder, DriveOutcome, Driver, Host, HostError,
    NoTripwire, Quiet, RecordedIssue, Verifier,
};
use autopack::host::{FsArtefacts, GitApplier};
use autopack::supervisor::{
    AgentOutcome, Checkpoint, CiReport, CiRequest, Input, PatchRequest, SnapshotRequest,
    SupervisorConfig,
};
use autopack_core::clock::ManualClock;
use autopack_core::ids::RunId;
use autopack_core::journal::{JournalContents, RunStore};
use autopack_core::lifecycle::RunState;
use autopack_core::message::{
    AuditorRecommendation, AuditorRequest, AuditorResult, BuilderRequest, BuilderResult,
    BuilderStatus,
};
use autopack_core::record::{CiVerdict, RunRecord};
use autopack_core::vocabulary::Severity;
use autopack_issues::{AgingThresholds, IssueObservation, Ledger, ProjectBacklog};
use autopack_layout::{FsRunStore, FsyncPolicy, LayoutError, RunsRoot};
use chrono::{DateTime, TimeZone, Utc};

/// The payload of a simulated crash.
struct Crash;

/// Counts I/O steps and crashes at one of them.
#[derive(Clone)]
struct Steps {
    count: Rc<Cell<usize>>,
    crash_at: Option<usize>,
    /// Where each step was, for failure messages.
    names: Rc<std::cell::RefCell<Vec<String>>>,
}

impl Steps {
    fn new(crash_at: Option<usize>) -> Steps {
        Steps {
            count: Rc::new(Cell::new(0)),
            crash_at,
            names: Rc::default(),
        }
    }

    /// One I/O step: crashes here when it is the chosen one.
    fn step(&self, name: impl FnOnce() -> String) {
        let n = self.count.get() + 1;
        self.count.set(n);
        self.names.borrow_mut().push(name());
        if self.crash_at == Some(n) {
            std::panic::panic_any(Crash);
        }
    }

    fn is(&self, n: usize) -> bool {
        self.crash_at == Some(n)
    }

    fn taken(&self) -> usize {
        self.count.get()
    }
}

fn quiet_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<Crash>().is_none() {
                default(info);
            }
        }));
    });
}

// ----- the world that survives a crash -----

const RUN: &str = "crash-run";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn signature() -> CommitSignature {
    CommitSignature {
        name: "autopack".into(),
        email: "autopack@example.invalid".into(),
        seconds: 1_772_366_400,
        offset_minutes: 0,
    }
}

struct World {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    root: RunsRoot,
}

fn git(repo: &Path) -> git2::Repository {
    git2::Repository::open(repo).unwrap()
}

fn world() -> World {
    // In memory where the machine has it: hundreds of runs, and fsync proves nothing here
    // (a simulated crash loses no page cache).
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let repo = dir.path().join("repo");
    let git = git2::Repository::init(&repo).unwrap();
    std::fs::write(repo.join("README.md"), "sample\n").unwrap();
    let mut index = git.index().unwrap();
    index.add_path(Path::new("README.md")).unwrap();
    index.write().unwrap();
    let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::new("t", "t@example.invalid", &git2::Time::new(0, 0)).unwrap();
    git.commit(Some("refs/heads/main"), &sig, &sig, "init", &tree, &[])
        .unwrap();
    git.set_head("refs/heads/main").unwrap();
    IntegrationBranch::create(&repo, &run_id(), "main", BranchOptions::default()).unwrap();
    let root = RunsRoot::new(repo.join(".autonomous_runs"));
    World {
        _dir: dir,
        repo,
        root,
    }
}

fn run_id() -> RunId {
    RunId::new(RUN).unwrap()
}

fn plan() -> autopack_core::plan::Plan {
    let text = format!(
        r#"{{"run": {{"run_id": "{RUN}", "safety_profile": "normal", "run_scope": "multi_tier"}},
        "tiers": [{{"tier_id": "t1", "tier_index": 0, "name": "Foundations"}},
                  {{"tier_id": "t2", "tier_index": 1, "name": "Features"}}],
        "phases": [
          {{"phase_id": "p1", "phase_index": 0, "tier_id": "t1", "name": "Tests", "task_category": "tests"}},
          {{"phase_id": "p2", "phase_index": 1, "tier_id": "t1", "name": "Scaffold", "task_category": "feature_scaffolding"}},
          {{"phase_id": "p3", "phase_index": 2, "tier_id": "t2", "name": "More tests", "task_category": "tests"}},
          {{"phase_id": "p4", "phase_index": 3, "tier_id": "t2", "name": "Schema", "task_category": "schema_change"}}
        ]}}"#
    );
    autopack_core::json::from_str(&text, "plan.json").unwrap()
}

fn start() -> Input {
    let plan = plan();
    let strategy = autopack_strategy::dry_run(&plan, None, None).unwrap();
    Input::Start {
        at: t0(),
        plan,
        strategy: Box::new(strategy),
        backlog: Box::new(ProjectBacklog::default()),
    }
}

// ----- scripted agents and CI: their answers depend on the request alone -----

fn patch(phase: &str, attempt: u32) -> String {
    format!(
        "diff --git a/src/{phase}.txt b/src/{phase}.txt\nnew file mode 100644\n--- /dev/null\n+++ b/src/{phase}.txt\n@@ -0,0 +1 @@\n+{phase} attempt {attempt}\n"
    )
}

fn suggested(key: &str) -> autopack_core::message::SuggestedIssue {
    autopack_core::message::SuggestedIssue {
        issue_key: autopack_core::ids::IssueKey::new(key).unwrap(),
        severity: Severity::Minor,
        source: autopack_core::vocabulary::IssueSource::Test,
        category: autopack_core::vocabulary::IssueCategory::new("test_failure").unwrap(),
        expected_fail: false,
        evidence_refs: vec![format!("tests/{key}.rs")],
        description: String::new(),
    }
}

struct Agents {
    steps: Steps,
}

impl Builder for Agents {
    fn build(&mut self, r: &BuilderRequest) -> AgentOutcome<BuilderResult> {
        let name = || format!("builder {} attempt {}", r.phase_id, r.attempt);
        self.steps.step(|| format!("before {}", name()));
        let phase = r.phase_id.as_str();
        let result = if phase == "p2" && r.attempt == 1 {
            BuilderResult {
                phase_id: r.phase_id.clone(),
                status: BuilderStatus::Failed,
                patch: None,
                probe_results: vec![],
                suggested_issues: vec![suggested("k-flaky-fixture")],
                tokens_used: 900,
                failing_tests: vec!["tests::scaffold".into()],
                notes: "scaffold test fails".into(),
            }
        } else {
            let issues = match phase {
                "p1" => vec![suggested("k-shared"), suggested("k-p1")],
                "p2" => vec![suggested("k-shared")],
                "p3" => vec![suggested("k-shared"), suggested("k-p3")],
                _ => vec![],
            };
            BuilderResult {
                phase_id: r.phase_id.clone(),
                status: BuilderStatus::Success,
                patch: Some(patch(phase, r.attempt)),
                probe_results: vec![],
                suggested_issues: issues,
                tokens_used: 1_000 + u64::from(r.attempt),
                failing_tests: vec![],
                notes: String::new(),
            }
        };
        self.steps.step(|| format!("after {}", name()));
        AgentOutcome::Returned(result)
    }
}

impl Auditor for Agents {
    fn audit(&mut self, r: &AuditorRequest) -> AgentOutcome<AuditorResult> {
        let name = || format!("auditor {} attempt {}", r.phase_id, r.attempt);
        self.steps.step(|| format!("before {}", name()));
        let result = AuditorResult {
            phase_id: r.phase_id.clone(),
            recommendation: AuditorRecommendation::Approve,
            review_notes: "schema change reviewed".into(),
            issues_found: vec![],
            patch: None,
            confidence: 0.9,
            tokens_used: 300,
        };
        self.steps.step(|| format!("after {}", name()));
        AgentOutcome::Returned(result)
    }
}

/// Red for p3's first attempt (its file says `attempt 1`), flaky for p4, else green.
struct Ci {
    steps: Steps,
    repo: PathBuf,
}

impl Verifier for Ci {
    fn verify(&mut self, r: &CiRequest) -> Result<CiReport, HostError> {
        let name = || format!("CI {} on {}", r.phase_id, &r.commit.as_str()[..8]);
        self.steps.step(|| format!("before {}", name()));
        let git = git(&self.repo);
        let commit = git
            .find_commit(Oid::from_str(r.commit.as_str()).map_err(HostError::new)?)
            .map_err(HostError::new)?;
        let file = |path: &str| -> Option<String> {
            let entry = commit.tree().ok()?.get_path(Path::new(path)).ok()?;
            let blob = git.find_blob(entry.id()).ok()?;
            Some(String::from_utf8_lossy(blob.content()).into_owned())
        };
        let report = match r.phase_id.as_str() {
            "p3" if file("src/p3.txt").is_some_and(|t| t.contains("attempt 1")) => CiReport {
                verdict: CiVerdict::Red,
                attempts: 1,
                failing_tests: vec!["tests::more".into()],
                output_tail: "test tests::more ... FAILED".into(),
                known_failures: vec![],
                flaky_tests: vec![],
                baseline: None,
            },
            "p4" => CiReport {
                verdict: CiVerdict::Flaky,
                attempts: 2.min(r.max_attempts),
                failing_tests: vec![],
                output_tail: "passed on retry".into(),
                known_failures: vec![],
                flaky_tests: vec![],
                baseline: None,
            },
            _ => CiReport {
                verdict: CiVerdict::Green,
                attempts: 1,
                failing_tests: vec![],
                output_tail: "ok".into(),
                known_failures: vec![],
                flaky_tests: vec![],
                baseline: None,
            },
        };
        self.steps.step(|| format!("after {}", name()));
        Ok(report)
    }
}

// ----- the real adapters, wrapped so that they crash around each write -----

struct CrashingStore {
    inner: FsRunStore,
    steps: Steps,
}

impl RunStore for CrashingStore {
    type Error = LayoutError;

    fn append(&mut self, run_id: &RunId, entry: &str) -> Result<(), LayoutError> {
        let kind: String = entry.chars().skip(2).take(24).collect();
        self.steps.step(|| format!("before journal append {kind}"));
        self.inner.append(run_id, entry)?;
        self.steps.step(|| format!("after journal append {kind}"));
        Ok(())
    }

    fn read(&mut self, run_id: &RunId) -> Result<JournalContents, LayoutError> {
        self.inner.read(run_id)
    }

    fn sync(&mut self, run_id: &RunId) -> Result<(), LayoutError> {
        self.inner.sync(run_id)
    }

    fn runs(&mut self) -> Result<Vec<RunId>, LayoutError> {
        self.inner.runs()
    }
}

struct CrashingArtefacts {
    inner: FsArtefacts,
    steps: Steps,
}

impl CrashingArtefacts {
    fn around<T>(&mut self, what: &str, f: impl FnOnce(&mut FsArtefacts) -> T) -> T {
        self.steps.step(|| format!("before {what}"));
        let out = f(&mut self.inner);
        self.steps.step(|| format!("after {what}"));
        out
    }
}

impl Artefacts for CrashingArtefacts {
    fn checkpoint(
        &mut self,
        checkpoint: &Checkpoint,
        record: &RunRecord,
        ledger: &Ledger,
    ) -> Result<(), HostError> {
        self.around(&format!("checkpoint {checkpoint:?}"), |a| {
            a.checkpoint(checkpoint, record, ledger)
        })
    }

    fn record_issues(
        &mut self,
        at: DateTime<Utc>,
        observations: &[IssueObservation],
    ) -> Result<(), HostError> {
        // One step per issue: a crash can fall between two records of one action.
        for (i, observation) in observations.iter().enumerate() {
            self.around(&format!("record issue {i}"), |a| {
                a.record_issues(at, std::slice::from_ref(observation))
            })?;
        }
        Ok(())
    }

    fn incident(&mut self, record: &RunRecord, ledger: &Ledger) -> Result<(), HostError> {
        self.around("incident", |a| a.incident(record, ledger))
    }

    fn recover(
        &mut self,
        record: &RunRecord,
        ledger: &Ledger,
        recorded: &[RecordedIssue],
    ) -> Result<(), HostError> {
        self.around("recover", |a| a.recover(record, ledger, recorded))
    }
}

struct CrashingApplier {
    inner: GitApplier,
    steps: Steps,
    repo: PathBuf,
}

impl Applier for CrashingApplier {
    fn apply(&mut self, r: &PatchRequest) -> Result<ApplyOutcome, HostError> {
        self.steps
            .step(|| format!("before candidate {} attempt {}", r.phase_id, r.attempt));
        let out = self.inner.apply(r)?;
        self.steps
            .step(|| format!("after candidate {} attempt {}", r.phase_id, r.attempt));
        Ok(out)
    }

    fn snapshot(&mut self, r: &SnapshotRequest) -> Result<(), HostError> {
        self.steps
            .step(|| format!("before snapshot {}", r.phase_id));
        let n = self.steps.taken() + 1;
        if self.steps.is(n) {
            // Killed between moving the branch and tagging, while updating the ref again:
            // the branch has moved, the tag is missing, the ref's lock file is left.
            let branch =
                IntegrationBranch::open(&self.repo, &run_id(), "main", BranchOptions::default())
                    .map_err(HostError::new)?;
            let oid = Oid::from_str(r.commit.as_str()).map_err(HostError::new)?;
            let candidate = branch.candidate(oid).map_err(HostError::new)?;
            branch.advance(&candidate).map_err(HostError::new)?;
            let lock = self
                .repo
                .join(format!(".git/refs/heads/autonomous/{RUN}.lock"));
            std::fs::write(lock, format!("{oid}\n")).map_err(HostError::new)?;
        }
        self.steps
            .step(|| format!("between branch and tag of {}", r.phase_id));
        self.inner.snapshot(r)?;
        self.steps.step(|| format!("after snapshot {}", r.phase_id));
        Ok(())
    }
}

// ----- driving one process -----

/// Runs (or resumes) the run in a fresh "process" that crashes at step `crash_at`.
/// Returns the outcome, or `None` when it crashed, and the steps it took.
fn process(world: &World, resume: bool, crash_at: Option<usize>) -> (Option<DriveOutcome>, Steps) {
    quiet_crashes();
    let steps = Steps::new(crash_at);
    let result = catch_unwind(AssertUnwindSafe(|| {
        if resume {
            // What `autopack resume` does, holding the run's lease, before it resumes.
            autopack::apply::reclaim::remove_stale_ref_locks(&world.repo, &run_id()).unwrap();
        }
        let mut store = CrashingStore {
            inner: FsRunStore::new(world.root.clone(), FsyncPolicy::AtCheckpoints),
            steps: steps.clone(),
        };
        let mut artefacts = CrashingArtefacts {
            inner: FsArtefacts::open(
                world.root.clone(),
                AgingThresholds::default(),
                FsyncPolicy::AtCheckpoints,
            )
            .unwrap(),
            steps: steps.clone(),
        };
        let branch =
            IntegrationBranch::open(&world.repo, &run_id(), "main", BranchOptions::default())
                .unwrap();
        let mut applier = CrashingApplier {
            inner: GitApplier::new(branch, signature()),
            steps: steps.clone(),
            repo: world.repo.clone(),
        };
        let mut builder = Agents {
            steps: steps.clone(),
        };
        let mut auditor = Agents {
            steps: steps.clone(),
        };
        let mut ci = Ci {
            steps: steps.clone(),
            repo: world.repo.clone(),
        };
        let clock = ManualClock::new(t0());
        let host = Host {
            builder: &mut builder,
            auditor: &mut auditor,
            applier: &mut applier,
            verifier: &mut ci,
            artefacts: &mut artefacts,
            tripwire: &mut NoTripwire,
            clock: &clock,
            observer: &mut Quiet,
        };
        // A crash before the journal's first line leaves nothing to resume: the user
        // starts the run again.
        let journaled = autopack::driver::journal_begun(&mut store, &run_id()).unwrap()
            == autopack::driver::Begun::Started;
        let outcome = if resume && journaled {
            Driver::resume(&run_id(), &mut store, host)
        } else {
            Driver::run(start(), SupervisorConfig::default(), &mut store, host)
        };
        outcome.map(|(outcome, _)| outcome)
    }));
    match result {
        Ok(outcome) => (
            Some(outcome.expect("the driver stops only at the run's end")),
            steps,
        ),
        Err(payload) if payload.downcast_ref::<Crash>().is_some() => (None, steps),
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Everything a run leaves behind that a reader can see.
#[derive(Debug, PartialEq)]
struct Remains {
    files: BTreeMap<String, String>,
    refs: BTreeMap<String, String>,
    branch_log: Vec<String>,
}

fn remains(world: &World) -> Remains {
    let mut files = BTreeMap::new();
    let mut stack = vec![world.root.dir().to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(world.root.dir())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            // Lock files are empty markers, created on first use.
            if rel.ends_with(".lock") {
                continue;
            }
            files.insert(rel, std::fs::read_to_string(&path).unwrap());
        }
    }
    let git = git(&world.repo);
    let mut refs = BTreeMap::new();
    for reference in git.references().unwrap() {
        let reference = reference.unwrap();
        refs.insert(
            reference.name().unwrap().to_owned(),
            reference.target().unwrap().to_string(),
        );
    }
    let mut walk = git.revwalk().unwrap();
    walk.push_ref(&format!("refs/heads/autonomous/{RUN}"))
        .unwrap();
    let branch_log = walk
        .map(|oid| {
            let commit = git.find_commit(oid.unwrap()).unwrap();
            let message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
            format!("{} {}", commit.id(), message.lines().next().unwrap_or(""))
        })
        .collect();
    Remains {
        files,
        refs,
        branch_log,
    }
}

fn uninterrupted() -> (Remains, usize, Vec<String>) {
    let world = world();
    let (outcome, steps) = process(&world, false, None);
    let names = steps.names.borrow().clone();
    let got = remains(&world);
    if outcome.map(|o| o.state()) != Some(RunState::DoneSuccess) {
        eprintln!("{}", got.files["crash-run/run_summary.md"]);
    }
    (got, steps.taken(), names)
}

#[test]
fn the_scripted_run_covers_issues_retries_red_and_flaky_ci_and_an_audit() {
    let (want, steps, names) = uninterrupted();
    assert!(want.files["crash-run/run_summary.md"].contains("DONE_SUCCESS"));
    let has = |s: &str| names.iter().any(|n| n.contains(s));
    assert!(has("builder p2 attempt 2"), "a Builder retry");
    assert!(has("builder p3 attempt 2"), "a retry after red CI");
    assert!(has("auditor p4"), "an audit");
    assert!(has("record issue"), "issues recorded");
    assert!(has("between branch and tag"), "snapshots");
    assert!(steps > 100, "{steps} steps");
    let backlog = &want.files["project_issue_backlog.json"];
    for key in ["k-shared", "k-p1", "k-p3", "k-flaky-fixture"] {
        assert!(backlog.contains(key), "{key} in the backlog");
    }
    // The flaky CI of p4 is a minor issue.
    assert!(backlog.contains("\"ci_flaky\""), "{backlog}");
    assert_eq!(want.branch_log.len(), 5, "{:?}", want.branch_log);
}

#[test]
fn every_crash_point_resumes_to_the_uninterrupted_result() {
    let (want, steps, names) = uninterrupted();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|first| {
                let (want, names) = (&want, &names);
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for crash_at in (1 + first..=steps).step_by(threads) {
                        let world = world();
                        let (outcome, _) = process(&world, false, Some(crash_at));
                        assert!(
                            outcome.is_none(),
                            "step {crash_at} ({}) crashes",
                            names[crash_at - 1]
                        );
                        let (outcome, _) = process(&world, true, None);
                        let state = outcome.map(|o| o.state());
                        let got = remains(&world);
                        if state != Some(RunState::DoneSuccess) || got != *want {
                            failures.push(format!(
                                "crash at step {crash_at} ({}): state {state:?}; {}",
                                names[crash_at - 1],
                                difference(want, &got)
                            ));
                        }
                    }
                    failures
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker panicked"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_crash_during_the_resume_resumes_too() {
    let (want, steps, names) = uninterrupted();
    // A sample of first crashes, each followed by a crash early, midway and late in
    // the resume.
    for crash_at in (1..=steps).step_by(17) {
        for second in [1, 5, 23] {
            let world = world();
            assert!(process(&world, false, Some(crash_at)).0.is_none());
            let (outcome, _) = process(&world, true, Some(second));
            if outcome.is_some() {
                // The resume had fewer steps than that: it finished.
                continue;
            }
            let (outcome, _) = process(&world, true, None);
            let got = remains(&world);
            assert_eq!(
                outcome.map(|o| o.state()),
                Some(RunState::DoneSuccess),
                "crash at {crash_at} ({}) then at resume step {second}",
                names[crash_at - 1]
            );
            assert!(
                got == want,
                "crash at {crash_at} ({}) then at resume step {second}: {}",
                names[crash_at - 1],
                difference(&want, &got)
            );
        }
    }
}

#[test]
fn resuming_a_finished_run_changes_nothing_and_says_so() {
    let world = world();
    let (outcome, _) = process(&world, false, None);
    assert_eq!(outcome.map(|o| o.state()), Some(RunState::DoneSuccess));
    let before = remains(&world);
    let (outcome, _) = process(&world, true, None);
    assert_eq!(
        outcome,
        Some(DriveOutcome::AlreadyFinished(RunState::DoneSuccess))
    );
    assert_eq!(remains(&world), before);
}

/// The first difference between two runs' remains, for a readable failure.
fn difference(want: &Remains, got: &Remains) -> String {
    for (path, text) in &want.files {
        match got.files.get(path) {
            None => return format!("{path} is missing"),
            Some(other) if other != text => {
                let line = text
                    .lines()
                    .zip(other.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                return format!(
                    "{path} differs at line {}: want {:?}, got {:?}",
                    line + 1,
                    text.lines().nth(line).unwrap_or(""),
                    other.lines().nth(line).unwrap_or("")
                );
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = got.files.keys().find(|p| !want.files.contains_key(*p)) {
        return format!("unexpected file {extra}");
    }
    if want.refs != got.refs {
        return format!("refs differ: want {:?}, got {:?}", want.refs, got.refs);
    }
    if want.branch_log != got.branch_log {
        return format!(
            "branch differs: want {:?}, got {:?}",
            want.branch_log, got.branch_log
        );
    }
    "no difference".into()
}
