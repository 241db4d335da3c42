//! Embedding: a Builder of the host's own plus a few lines of the library's
//! [`autopack::runner`] give a full run — integration branch, CI, artefacts — and its
//! resume after the host died mid-run. Nothing of the CLI is used.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use autopack::core::lifecycle::RunState;
use autopack::core::message::{BuilderRequest, BuilderResult, BuilderStatus};
use autopack::core::plan::Plan;
use autopack::driver::{Builder, DriveOutcome};
use autopack::host::EscalatingAuditor;
use autopack::runner::{Agents, RunConfig, Runner, Stores, expected_artefacts};
use autopack::supervisor::AgentOutcome;

/// Writes `{phase}.md` in its private workspace (the change is its patch); the host it
/// runs in dies (panics) when it reaches `dies_at`.
struct NotesBuilder {
    dies_at: Option<&'static str>,
}

impl Builder for NotesBuilder {
    fn build(&mut self, request: &BuilderRequest) -> AgentOutcome<BuilderResult> {
        assert_ne!(
            self.dies_at,
            Some(request.phase_id.as_str()),
            "the host died"
        );
        let workspace = request
            .checkout
            .as_ref()
            .and_then(|c| c.workspace.as_deref());
        let note =
            Path::new(workspace.expect("a workspace")).join(format!("{}.md", request.phase_id));
        std::fs::write(note, "notes\n").expect("note written");
        let result = BuilderResult::new(request.phase_id.clone(), BuilderStatus::Success);
        AgentOutcome::Returned(result.with_tokens(1_000))
    }
}

#[test]
fn a_host_builder_gets_a_full_run_with_artefacts_and_a_resume_through_the_library() {
    let repo = repository();
    let plan = Plan::from_json(PLAN, "plan.json").unwrap();
    let runner = Runner::new(repo.path(), Stores::Files).unwrap();
    let config = RunConfig::new("main", "sh run_tests.sh");
    let mut auditor = EscalatingAuditor;

    let mut dying = NotesBuilder {
        dies_at: Some("second"),
    };
    let died = catch_unwind(AssertUnwindSafe(|| {
        runner.start(
            &plan,
            None,
            &config,
            &mut Agents::new(&mut dying, &mut auditor),
        )
    }));
    assert!(died.is_err(), "the first host died in phase `second`");

    let mut builder = NotesBuilder { dies_at: None };
    let mut agents = Agents::new(&mut builder, &mut auditor);
    let ended = runner.resume(&plan.run.run_id, &mut agents).unwrap();
    assert_eq!(ended.outcome, DriveOutcome::Finished(RunState::DoneSuccess));
    for file in expected_artefacts(&runner.root(), "default", &ended.record) {
        assert!(file.is_file(), "{} is written", file.display());
    }
    let git = git2::Repository::open(repo.path()).unwrap();
    let tip = git
        .revparse_single("autonomous/embedded")
        .unwrap()
        .peel_to_tree()
        .unwrap();
    assert!(tip.get_name("first.md").is_some() && tip.get_name("second.md").is_some());
    let main = git.revparse_single("main").unwrap().peel_to_tree().unwrap();
    assert!(main.get_name("first.md").is_none(), "main is never written");

    let again = runner.resume(&plan.run.run_id, &mut agents).unwrap();
    assert_eq!(
        again.outcome,
        DriveOutcome::AlreadyFinished(RunState::DoneSuccess)
    );
}

const PLAN: &str = r#"{
  "run": {"run_id": "embedded", "run_scope": "single_tier", "safety_profile": "normal"},
  "tiers": [{"tier_id": "t1", "tier_index": 1, "name": "Notes"}],
  "phases": [
    {"phase_id": "first", "phase_index": 1, "tier_id": "t1", "name": "First", "task_category": "docs"},
    {"phase_id": "second", "phase_index": 2, "tier_id": "t1", "name": "Second", "task_category": "docs"}
  ]
}"#;

/// A repository whose `main` has a test script that passes.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init_opts(
        dir.path(),
        git2::RepositoryInitOptions::new().initial_head("main"),
    )
    .unwrap();
    std::fs::write(dir.path().join("run_tests.sh"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::write(dir.path().join(".git/info/exclude"), ".autonomous_runs/\n").unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(Path::new("run_tests.sh")).unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let who = git2::Signature::now("host", "host@example.invalid").unwrap();
    repo.commit(Some("HEAD"), &who, &who, "initial", &tree, &[])
        .unwrap();
    dir
}
