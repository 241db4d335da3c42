//! The presets against the stand-ins in `tests/standins/`: each stand-in is run with the
//! preset's exact argv in a temporary directory outside any git repository, and what it
//! prints is read back with the preset.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use autopack::host::{AgentPreset, AgentReport, AgentRole, StdinUse};

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "autopack-preset-standins-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn standin(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/standins")
        .join(name)
}

struct Run {
    report: AgentReport,
    exit_code: i32,
    edited: Option<String>,
}

fn run(preset: AgentPreset, fail: bool) -> Run {
    let dir = TempDir::new();
    let program = standin(preset.default_program());
    let invocation = preset.invocation(
        Some(program.as_os_str()),
        AgentRole::Builder,
        "Phase p1: add a line to STANDIN.md\nmore text",
        &dir.0,
    );
    assert_eq!(invocation.stdin, StdinUse::Empty);
    let output = Command::new(&invocation.program)
        .args(&invocation.args)
        .current_dir(&dir.0)
        .env("STANDIN_FAIL", if fail { "1" } else { "0" })
        .stdin(Stdio::null())
        .output()
        .expect("run the stand-in");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 stdout");
    let stderr = String::from_utf8(output.stderr).expect("UTF-8 stderr");
    let exit_code = output.status.code().expect("an exit code");
    let report = preset
        .read_output(&stdout, &stderr, exit_code)
        .unwrap_or_else(|e| panic!("{preset}: {e}\nstdout: {stdout}\nstderr: {stderr}"));
    let edited = std::fs::read_to_string(dir.0.join("STANDIN.md")).ok();
    Run {
        report,
        exit_code,
        edited,
    }
}

#[test]
fn codex_standin() {
    let ok = run(AgentPreset::Codex, false);
    assert_eq!(ok.exit_code, 0);
    assert_eq!(ok.report.tokens_used, 1545);
    assert_eq!(ok.report.failed, None);
    assert_eq!(ok.report.final_message, "Appended a line to STANDIN.md.");
    assert_eq!(
        ok.edited.as_deref(),
        Some("codex stand-in: Phase p1: add a line to STANDIN.md\n")
    );

    let failed = run(AgentPreset::Codex, true);
    assert_eq!(failed.exit_code, 1);
    assert_eq!(failed.report.tokens_used, 0);
    assert!(failed.report.failed.unwrap().contains("stand-in failure"));
    assert_eq!(failed.edited, None);
}

#[test]
fn claude_standin() {
    let ok = run(AgentPreset::ClaudeCode, false);
    assert_eq!(ok.exit_code, 0);
    assert_eq!(ok.report.tokens_used, 4932);
    assert_eq!(ok.report.failed, None);
    assert_eq!(ok.report.final_message, "I appended a line to STANDIN.md.");
    assert_eq!(
        ok.edited.as_deref(),
        Some("claude stand-in: Phase p1: add a line to STANDIN.md\n")
    );

    let failed = run(AgentPreset::ClaudeCode, true);
    assert_eq!(failed.exit_code, 1);
    assert_eq!(failed.report.tokens_used, 2048);
    assert_eq!(
        failed.report.failed.as_deref(),
        Some("error_during_execution: stand-in failure: the tool run was interrupted")
    );
    assert_eq!(failed.edited, None);
}

#[test]
fn aider_standin() {
    let ok = run(AgentPreset::Aider, false);
    assert_eq!(ok.exit_code, 0);
    assert_eq!(ok.report.tokens_used, 4000);
    assert_eq!(ok.report.failed, None);
    assert!(
        ok.report
            .final_message
            .contains("Applied edit to STANDIN.md")
    );
    assert_eq!(
        ok.edited.as_deref(),
        Some("aider stand-in: Phase p1: add a line to STANDIN.md\n")
    );

    let failed = run(AgentPreset::Aider, true);
    assert_eq!(failed.exit_code, 1);
    assert_eq!(failed.report.tokens_used, 1500);
    assert!(failed.report.failed.unwrap().contains("giving up"));
    assert_eq!(failed.edited, None);
}

#[test]
fn standins_reject_arguments_the_presets_do_not_pass() {
    // codex and aider exit 2 like clap and argparse; claude 1 like commander.js.
    for (name, expected_code, expected_text) in [
        ("codex", 2, "error: unexpected argument '--full-auto' found"),
        ("claude", 1, "error: unknown option '--full-auto'"),
        (
            "aider",
            2,
            "aider: error: unrecognized arguments: --full-auto",
        ),
    ] {
        let preset = AgentPreset::from_name(name).unwrap();
        let dir = TempDir::new();
        let program = standin(name);
        let mut invocation =
            preset.invocation(Some(program.as_os_str()), AgentRole::Auditor, "x", &dir.0);
        invocation.args.insert(1, "--full-auto".into());
        let output = Command::new(&invocation.program)
            .args(&invocation.args)
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .output()
            .expect("run the stand-in");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(expected_code),
            "{name}: {stderr}"
        );
        assert!(stderr.contains(expected_text), "{name}: {stderr}");
        assert!(!dir.0.join("STANDIN.md").exists());
        // What a caller gets back is a failure naming the exit code, not a format error.
        let report = preset.read_output("", &stderr, expected_code).unwrap();
        assert!(report.failed.unwrap().contains(expected_text));
    }
}

#[test]
fn command_preset_feeds_the_request_on_stdin() {
    let dir = TempDir::new();
    let invocation = AgentPreset::Command.invocation(
        Some(OsStr::new("cat; echo ' seen' >&2")),
        AgentRole::Builder,
        "unused",
        &dir.0,
    );
    assert_eq!(invocation.stdin, StdinUse::RequestJson);
    let mut child = Command::new(&invocation.program)
        .args(&invocation.args)
        .current_dir(&dir.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sh");
    child
        .stdin
        .take()
        .expect("a stdin pipe")
        .write_all(b"{\"phase_id\":\"p1\"}")
        .expect("write the request");
    let output = child.wait_with_output().expect("wait for sh");
    let report = AgentPreset::Command
        .read_output(
            &String::from_utf8_lossy(&output.stdout),
            &String::from_utf8_lossy(&output.stderr),
            output.status.code().expect("an exit code"),
        )
        .unwrap();
    assert_eq!(report.final_message, "{\"phase_id\":\"p1\"}");
    assert_eq!(report.tokens_used, 0);
    assert_eq!(report.failed, None);
}
