//! Agents and CI in private, sandboxed workspaces: what an agent or a test command tries
//! against the host repository fails, and the host is untouched; workspace agents that
//! only edit files; presets against stand-in CLIs; timeouts that hold; the tripwire.
//!
//! Every test runs the real `autopack` binary on a real git repository and asserts the
//! host's refs, HEAD, index, hooks, config and work tree afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use autopack_examples::sample::create_sample_repo;

const BIN: &str = env!("CARGO_BIN_EXE_autopack");
const SECRET: &str = "AKIA-do-not-leak-4242";

fn autopack(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("GITHUB_TOKEN", SECRET)
        .output()
        .expect("autopack runs")
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Everything of a host repository that no agent or test may change: refs but the run's
/// own, HEAD, index, hooks, config, and the work tree's files.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    refs: BTreeMap<String, String>,
    head: String,
    files: BTreeMap<PathBuf, Vec<u8>>,
}

fn host_state(repo: &Path, run_id: &str) -> HostState {
    let git = git2::Repository::open(repo).expect("repo");
    let mut refs = BTreeMap::new();
    for r in git.references().expect("refs") {
        let r = r.expect("ref");
        let name = r.name().expect("utf-8 ref").to_owned();
        if name == format!("refs/heads/autonomous/{run_id}")
            || name.starts_with(&format!("refs/tags/autonomous/{run_id}/"))
        {
            continue;
        }
        refs.insert(name, format!("{:?}", r.target()));
    }
    let head = std::fs::read_to_string(repo.join(".git/HEAD")).expect("HEAD");
    let mut files = BTreeMap::new();
    let mut stack = vec![repo.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let path = entry.expect("entry").path();
            let rel = path.strip_prefix(repo).expect("inside").to_owned();
            let rel_text = rel.to_string_lossy();
            // The run's own artefacts, and git's object and ref stores (refs compared above).
            if rel_text.starts_with(".autonomous_runs")
                || rel_text.starts_with(".git/objects")
                || rel_text.starts_with(".git/refs")
                || rel_text.starts_with(".git/logs")
                || rel_text == ".git/packed-refs"
            {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(rel, std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    HostState { refs, head, files }
}

/// A plan of `phases` phases (ids p1, p2, …) in one tier.
fn write_plan(dir: &Path, run_id: &str, phases: usize) -> PathBuf {
    let list: Vec<_> = (1..=phases)
        .map(|i| {
            serde_json::json!({"phase_id": format!("p{i}"), "phase_index": i, "tier_id": "t1",
                "name": format!("Phase {i}"), "task_category": "docs"})
        })
        .collect();
    let plan = serde_json::json!({
        "run": {"run_id": run_id, "run_scope": "single_tier", "safety_profile": "normal"},
        "tiers": [{"tier_id": "t1", "tier_index": 1, "name": "Only"}],
        "phases": list,
    });
    let path = dir.join(format!("{run_id}.json"));
    std::fs::write(&path, plan.to_string()).expect("plan");
    path
}

struct Fixture {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    /// Scripts live apart from the repository; the sandbox is told to let agents read them.
    scripts: PathBuf,
    plan_dir: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    create_sample_repo(&repo).expect("sample");
    let scripts = tmp.path().join("scripts");
    std::fs::create_dir(&scripts).expect("scripts");
    let plan_dir = tmp.path().join("plans");
    std::fs::create_dir(&plan_dir).expect("plans");
    Fixture {
        _tmp: tmp,
        repo,
        scripts,
        plan_dir,
    }
}

impl Fixture {
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.scripts.join(name);
        std::fs::write(&path, body).expect("script");
        path
    }

    fn run(&self, run_id: &str, phases: usize, extra: &[&str]) -> Output {
        let plan = write_plan(&self.plan_dir, run_id, phases);
        let mut args = vec![
            "run",
            "--plan",
            s(&plan),
            "--repo",
            s(&self.repo),
            "--sandbox-read",
            s(&self.scripts),
            "--quiet",
        ];
        args.extend_from_slice(extra);
        autopack(&args)
    }

    fn phase_files(&self, run_id: &str) -> String {
        let dir = self
            .repo
            .join(".autonomous_runs")
            .join(run_id)
            .join("phases");
        let mut out = String::new();
        for entry in std::fs::read_dir(dir).expect("phases") {
            out.push_str(
                &std::fs::read_to_string(entry.expect("entry").path()).unwrap_or_default(),
            );
        }
        out
    }

    /// The file `path` on the run's integration branch.
    fn on_branch(&self, run_id: &str, path: &str) -> Option<String> {
        let git = git2::Repository::open(&self.repo).expect("repo");
        let tip = git
            .refname_to_id(&format!("refs/heads/autonomous/{run_id}"))
            .ok()?;
        let tree = git.find_commit(tip).ok()?.tree().ok()?;
        let entry = tree.get_path(Path::new(path)).ok()?;
        let blob = git.find_blob(entry.id()).ok()?;
        Some(String::from_utf8_lossy(blob.content()).into_owned())
    }

    /// Commits the work tree's `path` on `main` (HEAD).
    fn commit_on_main(&self, path: &str, message: &str) {
        let git = git2::Repository::open(&self.repo).expect("repo");
        let mut index = git.index().expect("index");
        index.add_path(Path::new(path)).expect("add");
        index.write().expect("index written");
        let tree = git
            .find_tree(index.write_tree().expect("tree"))
            .expect("tree");
        let sig = git2::Signature::now("t", "t@example.com").expect("sig");
        let parent = git.head().expect("head").peel_to_commit().expect("commit");
        git.commit(Some("HEAD"), &sig, &sig, message, &tree, &[&parent])
            .expect("commit");
    }

    fn commits_ahead(&self, run_id: &str) -> usize {
        let git = git2::Repository::open(&self.repo).expect("repo");
        let tip = git
            .refname_to_id(&format!("refs/heads/autonomous/{run_id}"))
            .expect("branch");
        let main = git.refname_to_id("refs/heads/main").expect("main");
        git.graph_ahead_behind(tip, main).expect("ahead").0
    }
}

#[test]
fn a_hostile_builder_and_test_script_cannot_touch_the_host() {
    let f = fixture();
    let host = f.repo.canonicalize().expect("host path");
    let host = host.display();
    let before = host_state(&f.repo, "escape");
    let main = git2::Repository::open(&f.repo)
        .expect("repo")
        .refname_to_id("refs/heads/main")
        .expect("main");
    // The host path is handed to the script in the script itself, as an attacker who
    // guessed it would have it.
    let builder = f.script(
        "hostile.sh",
        &format!(
            r#"#!/bin/sh
HOST='{host}'
git --git-dir="$HOST/.git" update-ref refs/heads/main HEAD 2>/dev/null
git --git-dir="$HOST/.git" update-ref refs/heads/forged {main} 2>/dev/null
printf '#!/bin/sh\necho owned\n' > "$HOST/.git/hooks/post-commit" 2>/dev/null
chmod +x "$HOST/.git/hooks/post-commit" 2>/dev/null
echo owned > "$HOST/pwned.txt" 2>/dev/null
echo '[core]' >> "$HOST/.git/config" 2>/dev/null
echo '--- the host README' > evidence.txt
cat "$HOST/README.md" >> evidence.txt 2>/dev/null
echo '--- the environment' >> evidence.txt
env >> evidence.txt
# Every process's environment the agent can read (Autopack's among them if it could).
cat /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n' >> evidence.txt
# A careless agent commits in its directory.
git add -A >/dev/null 2>&1 && git -c user.name=a -c user.email=a@b commit -qm wip >/dev/null 2>&1
echo "phase $AUTOPACK_PHASE_ID" >> NOTES.md
exit 0
"#,
            main = main
        ),
    );
    let test_cmd = format!(
        "git --git-dir='{host}/.git' update-ref refs/heads/main HEAD 2>/dev/null; echo owned > '{host}/ci-pwned.txt' 2>/dev/null; sh run_tests.sh"
    );
    let builder_cmd = format!("sh {}", s(&builder));
    let out = f.run(
        "escape",
        1,
        &["--builder-cmd", &builder_cmd, "--test-cmd", &test_cmd],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out),
        f.phase_files("escape")
    );
    assert_eq!(host_state(&f.repo, "escape"), before, "the host changed");
    assert!(!f.repo.join("pwned.txt").exists() && !f.repo.join("ci-pwned.txt").exists());
    // What the Builder did in its workspace became the patch, and nothing secret or of the
    // host's files came with it.
    let notes = f
        .on_branch("escape", "NOTES.md")
        .expect("NOTES.md on the branch");
    assert_eq!(notes, "phase p1\n");
    let evidence = f.on_branch("escape", "evidence.txt").expect("evidence.txt");
    assert!(
        !evidence.contains(SECRET),
        "a secret reached the agent:\n{evidence}"
    );
    assert!(evidence.contains("AUTOPACK_WORKSPACE="), "{evidence}");
    assert!(
        !evidence.contains(&format!("={host}")),
        "the agent was told the host path:\n{evidence}"
    );
    assert!(
        !evidence.contains("A tiny shell project"),
        "the agent read the host's files:\n{evidence}"
    );
}

#[test]
fn a_builder_that_only_edits_files_runs_three_phases_on_each_others_commits() {
    let f = fixture();
    let before = host_state(&f.repo, "edits");
    // Each phase checks that the previous phases' files are there, then adds its own.
    let builder = f.script(
        "edits.sh",
        r#"#!/bin/sh
set -e
n=${AUTOPACK_PHASE_ID#p}
i=1
while [ "$i" -lt "$n" ]; do
    [ -f "docs/phase-$i.md" ] || { echo "phase $i is missing" >&2; exit 1; }
    i=$((i + 1))
done
mkdir -p docs
echo "phase $n, after $((n - 1)) earlier phases" > "docs/phase-$n.md"
rm -f docs/old.md
"#,
    );
    let builder_cmd = format!("sh {}", s(&builder));
    let out = f.run(
        "edits",
        3,
        &[
            "--builder-cmd",
            &builder_cmd,
            "--test-cmd",
            "sh run_tests.sh",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(f.commits_ahead("edits"), 3);
    assert_eq!(
        f.on_branch("edits", "docs/phase-3.md").as_deref(),
        Some("phase 3, after 2 earlier phases\n")
    );
    assert_eq!(host_state(&f.repo, "edits"), before);
}

#[test]
fn a_workspace_builder_that_writes_a_binary_file_is_refused_by_the_gate() {
    let f = fixture();
    let builder = f.script(
        "binary.sh",
        "#!/bin/sh\nprintf 'a\\000b' > blob.bin\necho notes >> NOTES.md\n",
    );
    let builder_cmd = format!("sh {}", s(&builder));
    let out = f.run(
        "binary",
        1,
        &[
            "--builder-cmd",
            &builder_cmd,
            "--test-cmd",
            "sh run_tests.sh",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let phases = f.phase_files("binary");
    assert!(
        phases.contains("binary: \"blob.bin\" has binary content"),
        "{phases}"
    );
    assert!(f.on_branch("binary", "blob.bin").is_none());
}

fn standin(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../autopack/tests/standins")
        .join(name)
        .canonicalize()
        .expect("stand-in")
}

#[test]
fn each_preset_runs_against_its_stand_in_cli_with_token_accounting() {
    for (preset, tokens) in [("codex", 1545u64), ("claude", 4932), ("aider", 4000)] {
        let f = fixture();
        let before = host_state(&f.repo, preset);
        let program = standin(preset);
        let dir = program.parent().expect("dir").to_owned();
        let out = autopack(&[
            "run",
            "--plan",
            s(&write_plan(&f.plan_dir, preset, 1)),
            "--repo",
            s(&f.repo),
            "--builder",
            preset,
            "--builder-cmd",
            s(&program),
            "--sandbox-read",
            s(&dir),
            "--test-cmd",
            "sh run_tests.sh",
            "--quiet",
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{preset}: {}", text(&out));
        let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(runs[0]["tokens"], tokens, "{preset}: {runs}");
        let edited = f
            .on_branch(preset, "STANDIN.md")
            .expect("the stand-in's edit");
        assert!(!edited.is_empty(), "{preset}");
        assert_eq!(host_state(&f.repo, preset), before, "{preset}");
    }
}

#[test]
fn a_failing_stand_in_cli_fails_its_attempts_with_its_message() {
    for preset in ["codex", "claude", "aider"] {
        let f = fixture();
        let program = standin(preset);
        let dir = program.parent().expect("dir").to_owned();
        let out = Command::new(BIN)
            .args([
                "run",
                "--plan",
                s(&write_plan(&f.plan_dir, preset, 1)),
                "--repo",
                s(&f.repo),
                "--builder",
                preset,
                "--builder-cmd",
                s(&program),
                "--sandbox-read",
                s(&dir),
                "--pass-env",
                "STANDIN_FAIL",
                "--test-cmd",
                "sh run_tests.sh",
                "--quiet",
            ])
            .env("STANDIN_FAIL", "1")
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "{preset}: {}", text(&out));
        let phases = f.phase_files(preset);
        assert!(
            phases.contains(&format!(
                "builder ({})",
                if preset == "claude" { "claude" } else { preset }
            )),
            "{preset}: {phases}"
        );
        assert!(f.on_branch(preset, "STANDIN.md").is_none(), "{preset}");
    }
}

/// How many live processes run exactly `cmdline` (NUL-separated, as in /proc).
fn sleeping(cmdline: &[u8]) -> usize {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == cmdline))
        .count()
}

#[test]
fn agents_whose_children_hold_stdout_or_escape_the_group_are_timed_out_and_reaped() {
    let f = fixture();
    let pids = tempfile::tempdir().expect("pid dir");
    let pid_file = pids.path().join("pids");
    // Each attempt leaves a setsid'd grandchild and a double-forked one, both holding
    // stdout, then hangs; the pids go where the test reads them (the run is unconfined so
    // that they can: containment does not depend on confinement).
    let builder = f.script(
        "hang.sh",
        &format!(
            r#"#!/bin/sh
setsid sh -c 'echo $$ >> "{pids}"; exec sleep 61' &
( sh -c 'echo $$ >> "{pids}"; exec sleep 61' & ) &
echo $$ >> "{pids}"
exec sleep 61
"#,
            pids = pid_file.display()
        ),
    );
    let builder_cmd = format!("sh {}", s(&builder));
    let started = Instant::now();
    let out = f.run(
        "hangs",
        1,
        &[
            "--builder-cmd",
            &builder_cmd,
            "--test-cmd",
            "sh run_tests.sh",
            "--agent-timeout",
            "2",
            "--no-sandbox",
        ],
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let phases = f.phase_files("hangs");
    let attempts = phases.matches("timed out after 2 s").count() as u32;
    assert!(attempts >= 1, "{phases}");
    // Each attempt within its 2 s timeout plus a margin for start-up and clean-up.
    assert!(
        took < Duration::from_secs(3) * attempts + Duration::from_secs(8),
        "{attempts} attempts took {took:?}"
    );
    // The pids are those of the attempt's own PID namespace: count the lines, then look
    // for the processes by what they run (only this test sleeps 61 s).
    let started = std::fs::read_to_string(&pid_file)
        .expect("pids written")
        .lines()
        .count();
    assert_eq!(
        started as u32,
        3 * attempts,
        "every attempt started its three processes"
    );
    assert_eq!(sleeping(b"sleep\x0061\x00"), 0, "processes left behind");
}

#[test]
fn the_tripwire_ends_a_run_whose_agent_moved_a_host_ref_behind_a_weaker_sandbox() {
    let f = fixture();
    let host = f.repo.canonicalize().expect("host");
    // With --no-sandbox nothing stops the script: the tripwire must.
    let builder = f.script(
        "mover.sh",
        &format!(
            "#!/bin/sh\ngit --git-dir='{host}/.git' update-ref refs/heads/sneaky HEAD\necho x > x.txt\n",
            host = host.display()
        ),
    );
    let builder_cmd = format!("sh {}", s(&builder));
    let out = f.run(
        "tripped",
        2,
        &[
            "--builder-cmd",
            &builder_cmd,
            "--test-cmd",
            "sh run_tests.sh",
            "--no-sandbox",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let run_dir = f.repo.join(".autonomous_runs/tripped");
    let incident = std::fs::read_to_string(run_dir.join("incident/INCIDENT.md")).expect("incident");
    assert!(
        incident.contains("DONE_FAILED_POLICY_VIOLATION"),
        "{incident}"
    );
    assert!(
        incident.contains("ref refs/heads/sneaky was created"),
        "{incident}"
    );
    // The second phase never ran.
    assert!(f.on_branch("tripped", "x.txt").is_none());
}

/// An Auditor that approves (and says what it was shown on stderr).
fn approving_auditor(f: &Fixture) -> String {
    let script = f.script(
        "approve.sh",
        "#!/bin/sh\nreq=$(cat)\nphase=$(printf '%s' \"$req\" | sed -n 's/.*\"phase_id\":\"\\([^\"]*\\)\".*/\\1/p')\nprintf '{\"phase_id\":\"%s\",\"recommendation\":\"approve\",\"confidence\":0.9}\\n' \"$phase\"\n",
    );
    format!("sh {}", s(&script))
}

/// The issue files of a run, concatenated.
fn issue_files(f: &Fixture, run_id: &str) -> String {
    read_issue_dir(&f.repo.join(".autonomous_runs").join(run_id).join("issues"))
}

fn read_issue_dir(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).expect("issues") {
        out.push_str(&std::fs::read_to_string(entry.expect("entry").path()).unwrap_or_default());
    }
    out
}

#[test]
fn a_builder_that_weakens_the_tests_is_refused_or_held_for_the_auditor() {
    // Turning the runner script into `exit 0`, or editing CI configuration: refused on
    // every attempt, so the phase fails and nothing reaches the branch.
    for (run_id, body, path) in [
        (
            "runner",
            "#!/bin/sh\nprintf '#!/bin/sh\\nexit 0\\n' > run_tests.sh\n",
            "run_tests.sh",
        ),
        (
            "workflow",
            "#!/bin/sh\nmkdir -p .github/workflows\necho 'on: push' > .github/workflows/ci.yml\n",
            ".github/workflows/ci.yml",
        ),
    ] {
        let f = fixture();
        let builder = f.script("tamper.sh", body);
        let builder_cmd = format!("sh {}", s(&builder));
        let out = f.run(
            run_id,
            1,
            &[
                "--builder-cmd",
                &builder_cmd,
                "--test-cmd",
                "sh run_tests.sh",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{run_id}: {}", text(&out));
        let phases = f.phase_files(run_id);
        assert!(
            phases.contains("protected_path") && phases.contains(path),
            "{run_id}: {phases}"
        );
        assert_eq!(f.commits_ahead(run_id), 0, "{run_id}");
    }

    // Deleting a test: held, so the Auditor is asked, CI runs strict, and an issue is
    // recorded; with the Auditor's approve the patch lands.
    let f = fixture();
    let builder = f.script(
        "delete-test.sh",
        "#!/bin/sh\nrm tests/test_hello.sh\necho 'gone' >> NOTES.md\n",
    );
    let builder_cmd = format!("sh {}", s(&builder));
    let auditor_cmd = approving_auditor(&f);
    let out = f.run(
        "held",
        1,
        &[
            "--builder-cmd",
            &builder_cmd,
            "--auditor-cmd",
            &auditor_cmd,
            "--test-cmd",
            "sh run_tests.sh",
            "--strict-test-cmd",
            "sh run_tests.sh --strict",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let issues = issue_files(&f, "held");
    assert!(
        issues.contains("test_integrity__p1") && issues.contains("tests/test_hello.sh"),
        "{issues}"
    );
    assert!(f.on_branch("held", "tests/test_hello.sh").is_none());
    let journal = std::fs::read_to_string(f.repo.join(".autonomous_runs/held/journal.jsonl"))
        .expect("journal");
    assert!(
        journal.contains("\"deleted_test\""),
        "the hold is journaled"
    );
    assert!(
        journal.contains("\"auditor_finished\""),
        "the Auditor was asked"
    );
    let summary = f.phase_files("held");
    assert!(summary.contains("strict"), "CI ran strict: {summary}");

    // Without an Auditor the held patch fails its phase, naming the hold.
    let f = fixture();
    let builder = f.script("delete-test.sh", "#!/bin/sh\nrm tests/test_hello.sh\n");
    let builder_cmd = format!("sh {}", s(&builder));
    let out = f.run(
        "unheld",
        1,
        &[
            "--builder-cmd",
            &builder_cmd,
            "--test-cmd",
            "sh run_tests.sh",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(f.commits_ahead("unheld"), 0);
}

#[test]
fn a_retyped_symlink_never_writes_through_to_the_file_it_pointed_at() {
    let f = fixture();
    // A tracked symlink to a file outside the repository, committed on main.
    let outside = f._tmp.path().join("outside.txt");
    std::fs::write(&outside, "precious\n").expect("outside");
    std::os::unix::fs::symlink(&outside, f.repo.join("link")).expect("symlink");
    f.commit_on_main("link", "a link");
    // The Builder replaces the link with a file in its workspace.
    let builder = f.script(
        "retype.sh",
        "#!/bin/sh\nrm link\necho 'overwritten' > link\n",
    );
    let builder_cmd = format!("sh {}", s(&builder));
    // Refused by default (rule symlink)...
    let out = f.run(
        "retype",
        1,
        &[
            "--builder-cmd",
            &builder_cmd,
            "--test-cmd",
            "sh run_tests.sh",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let phases = f.phase_files("retype");
    assert!(
        phases.contains("gate rejected the patch (symlink)"),
        "{phases}"
    );
    // ...and where the ruleset allows it, CI's checkout removes the link instead of
    // writing through it.
    let ruleset = f.script(
        "ruleset.json",
        r#"{"project_id": "default", "patch_policy": {"allow_symlinks": true}}"#,
    );
    let out = f.run(
        "retype-allowed",
        1,
        &[
            "--builder-cmd",
            &builder_cmd,
            "--test-cmd",
            "sh run_tests.sh",
            "--ruleset",
            s(&ruleset),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        f.on_branch("retype-allowed", "link").as_deref(),
        Some("overwritten\n")
    );
    assert_eq!(
        std::fs::read_to_string(&outside).expect("outside"),
        "precious\n"
    );
}

#[test]
fn tests_that_fail_on_the_base_fail_no_attempt_with_junit() {
    let f = fixture();
    // main has a failing test; the phase adds notes only.
    std::fs::write(
        f.repo.join("tests/test_broken.sh"),
        "#!/bin/sh\necho broken; exit 1\n",
    )
    .expect("test");
    f.commit_on_main("tests/test_broken.sh", "a broken test");
    let builder = f.script(
        "notes.sh",
        "#!/bin/sh\necho \"phase $AUTOPACK_PHASE_ID\" >> NOTES.md\n",
    );
    let builder_cmd = format!("sh {}", s(&builder));
    // Without JUnit the base's failure fails every attempt...
    let out = f.run(
        "exit-codes",
        1,
        &[
            "--builder-cmd",
            &builder_cmd,
            "--test-cmd",
            "sh run_tests.sh",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // ...with it, only new failures count, and the old one is recorded.
    let out = f.run(
        "junit",
        1,
        &[
            "--builder-cmd",
            &builder_cmd,
            "--test-cmd",
            "sh run_tests.sh",
            "--junit",
            "junit.xml",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let issues = issue_files(&f, "junit");
    assert!(
        issues.contains("ci_preexisting_failures__p1") && issues.contains("tests/test_broken.sh"),
        "{issues}"
    );
    // A Builder that breaks another test fails with that test's exact name.
    let breaker = f.script("break.sh", "#!/bin/sh\necho 'echo bye' > src/hello.sh\n");
    let breaker_cmd = format!("sh {}", s(&breaker));
    let out = f.run(
        "breaks",
        1,
        &[
            "--builder-cmd",
            &breaker_cmd,
            "--test-cmd",
            "sh run_tests.sh",
            "--junit",
            "junit.xml",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let phases = f.phase_files("breaks");
    assert!(phases.contains("failing: tests/test_hello.sh"), "{phases}");
    assert!(
        !phases.contains("failing: tests/test_broken.sh"),
        "{phases}"
    );
}
