//! `autopack verify`, `attest` and `promote --require-attestation` on real runs: an
//! untouched run verifies; an edited journal line, a commit added to the branch by hand,
//! an edited artefact, an attestation from another run and a signature by another key
//! are each caught and named; a resume finds a hand-made commit and ends the run as a
//! policy violation.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::runs::*;
use common::*;

/// A finished run `crashy` (two phases, two commits), and a second run `other` in the
/// same repository.
fn finished_runs() -> (tempfile::TempDir, PathBuf) {
    let (tmp, repo) = repo();
    let status = start_run(tmp.path(), &repo).wait().unwrap();
    assert!(status.success(), "{status}");
    let status = start(tmp.path(), &repo, "other", &[]).status().unwrap();
    assert!(status.success(), "{status}");
    (tmp, repo)
}

/// A copy of `repo` to tamper with.
fn copy(repo: &Path, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join(name);
    let status = Command::new("cp")
        .args(["-a", s(repo), s(&to)])
        .status()
        .unwrap();
    assert!(status.success());
    (dir, to)
}

fn verify(repo: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["verify", RUN, "--repo", s(repo)];
    args.extend_from_slice(extra);
    let out = autopack(&args);
    let (stdout, stderr) = text(&out);
    (code(&out), format!("{stdout}{stderr}"))
}

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn run_file(repo: &Path, run: &str, name: &str) -> PathBuf {
    repo.join(".autonomous_runs").join(run).join(name)
}

#[test]
fn an_untouched_run_verifies_and_every_tamper_is_named() {
    let (_tmp, repo) = finished_runs();
    let (code, out) = verify(&repo, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("verified: everything matches the journal"),
        "{out}"
    );
    assert!(out.contains("hash chain of"), "{out}");
    let out = autopack(&["verify", RUN, "--repo", s(&repo), "--json"]);
    let json: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    assert_eq!(json["mismatches"], serde_json::json!([]));
    assert_eq!(json["final_state"], "DONE_SUCCESS");

    // The attestation: an in-toto Statement v1 about the branch's tip.
    let statement = json_file(&run_file(&repo, RUN, "attestation.intoto.json"));
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["predicateType"],
        "https://autopack.dev/attestation/run/v1"
    );
    let tip = git(
        &repo,
        &["rev-parse", &format!("refs/heads/autonomous/{RUN}")],
    );
    assert_eq!(statement["subject"][0]["digest"]["gitCommit"], tip.as_str());
    let predicate = &statement["predicate"];
    assert_eq!(predicate["run_id"], RUN);
    assert_eq!(predicate["promotion"]["eligible"], true);
    assert_eq!(predicate["journal"]["entries"], json["entries"]);
    assert_eq!(predicate["journal"]["head_sha256"], json["head"]);
    assert_eq!(predicate["phases"].as_array().unwrap().len(), 2);
    assert_eq!(predicate["phases"][0]["ci"][0]["verdict"], "green");

    // Every commit carries the provenance trailers.
    let message = git(&repo, &["log", "-1", "--format=%B", &tip]);
    for trailer in [
        "Autopack-Run: crashy",
        "Autopack-Attempt: 1",
        "Autopack-Patch-SHA256: ",
        "Autopack-Journal: ",
    ] {
        assert!(message.contains(trailer), "{message}");
    }

    // A journal line edited: the next line's link names it.
    let (_t, edited) = copy(&repo, "edited-journal");
    let path = run_file(&edited, RUN, "journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let target = lines
        .iter()
        .position(|l| l.contains("\"tokens_used\":"))
        .unwrap();
    lines[target] = lines[target].replacen("\"tokens_used\":", "\"tokens_used\":1", 1);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let (code, out) = verify(&edited, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("entry {}", target + 2)) && out.contains("does not link"),
        "{out}"
    );

    // A commit added to the branch by hand.
    let (_t, added) = copy(&repo, "added-commit");
    let tree = git(&added, &["rev-parse", &format!("{tip}^{{tree}}")]);
    let hand = git(
        &added,
        &["commit-tree", &tree, "-p", &tip, "-m", "a quick fix"],
    );
    git(
        &added,
        &["update-ref", &format!("refs/heads/autonomous/{RUN}"), &hand],
    );
    let (code, out) = verify(&added, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("MISMATCH commit {hand}")), "{out}");

    // An artefact edited.
    let (_t, artefact) = copy(&repo, "edited-artefact");
    let summary = run_file(&artefact, RUN, "run_summary.md");
    let text = std::fs::read_to_string(&summary).unwrap();
    std::fs::write(
        &summary,
        text.replace("DONE_SUCCESS", "DONE_SUCCESS (reviewed)"),
    )
    .unwrap();
    let (code, out) = verify(&artefact, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("MISMATCH {}", summary.display())),
        "{out}"
    );

    // The attestation of another run.
    let (_t, foreign) = copy(&repo, "foreign-attestation");
    std::fs::copy(
        run_file(&foreign, "other", "attestation.intoto.json"),
        run_file(&foreign, RUN, "attestation.intoto.json"),
    )
    .unwrap();
    let (code, out) = verify(&foreign, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("attestation.intoto.json"), "{out}");

    // promote --require-attestation refuses a run that does not verify, promotes one
    // that does.
    let out = autopack(&[
        "promote",
        RUN,
        "--repo",
        s(&artefact),
        "--require-attestation",
    ]);
    assert_eq!(code_of(&out), 1, "{:?}", text_of(&out));
    assert!(
        text_of(&out).contains("does not verify"),
        "{:?}",
        text_of(&out)
    );
    let out = autopack(&[
        "promote",
        RUN,
        "--repo",
        s(&repo),
        "--require-attestation",
        "--allow-checked-out",
    ]);
    assert_eq!(code_of(&out), 0, "{:?}", text_of(&out));
    assert_eq!(git(&repo, &["rev-parse", "refs/heads/main"]), tip);
}

#[test]
fn a_signed_attestation_verifies_with_its_key_only() {
    let (tmp, repo) = repo();
    let status = start_run(tmp.path(), &repo).wait().unwrap();
    assert!(status.success(), "{status}");
    let keys = tmp.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    // Keys made by an independent implementation (Python's `cryptography`).
    let script = r#"
import sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization as s
for name in ("signer", "stranger"):
    key = Ed25519PrivateKey.generate()
    open(f"{sys.argv[1]}/{name}.pem", "wb").write(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()))
    open(f"{sys.argv[1]}/{name}.pub.pem", "wb").write(key.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo))
"#;
    let out = Command::new("python3")
        .args(["-c", script, s(&keys)])
        .output()
        .expect("python3 runs (the test needs Python 3 with `pip install cryptography`)");
    assert!(
        out.status.success(),
        "generating keys needs Python's cryptography (pip install cryptography): {out:?}"
    );
    let out = autopack(&[
        "attest",
        RUN,
        "--repo",
        s(&repo),
        "--key",
        s(&keys.join("signer.pem")),
    ]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    assert!(run_file(&repo, RUN, "attestation.dsse.json").exists());
    let (code_ok, out) = verify(&repo, &["--key", s(&keys.join("signer.pub.pem"))]);
    assert_eq!(code_ok, 0, "{out}");
    let (code_bad, out) = verify(&repo, &["--key", s(&keys.join("stranger.pub.pem"))]);
    assert_eq!(code_bad, 1, "{out}");
    assert!(
        out.contains("attestation.dsse.json") && out.contains("does not verify"),
        "{out}"
    );
    let out = autopack(&[
        "promote",
        RUN,
        "--repo",
        s(&repo),
        "--require-attestation",
        "--attestation-key",
        s(&keys.join("stranger.pub.pem")),
    ]);
    assert_eq!(code(&out), 1, "{:?}", text(&out));
}

#[test]
fn a_resume_finds_a_commit_the_journal_does_not_know() {
    let (tmp, repo) = repo();
    let hold = tmp.path().join("hold");
    std::fs::write(&hold, "").unwrap();
    let mut run = start_run(tmp.path(), &repo);
    wait_for("the Builder to wait", || {
        tmp.path().join("waiting").exists()
    });
    let _ = run.kill();
    let _ = run.wait();
    std::fs::remove_file(&hold).unwrap();
    // Someone commits onto the integration branch while the run is down.
    let branch = format!("refs/heads/autonomous/{RUN}");
    let tip = git(&repo, &["rev-parse", &branch]);
    let tree = git(&repo, &["rev-parse", &format!("{tip}^{{tree}}")]);
    let hand = git(
        &repo,
        &["commit-tree", &tree, "-p", &tip, "-m", "sneaked in"],
    );
    git(&repo, &["update-ref", &branch, &hand]);
    let out = autopack(&["resume", RUN, "--repo", s(&repo), "--quiet"]);
    assert_ne!(code(&out), 0, "{:?}", text(&out));
    let summary = std::fs::read_to_string(run_file(&repo, RUN, "run_summary.md")).unwrap();
    assert!(
        summary.contains("DONE_FAILED_POLICY_VIOLATION"),
        "{summary}"
    );
    let incident = std::fs::read_to_string(run_file(&repo, RUN, "incident/INCIDENT.md")).unwrap();
    assert!(incident.contains(&hand), "{incident}");
}

fn json_file(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn code_of(out: &std::process::Output) -> i32 {
    code(out)
}

fn text_of(out: &std::process::Output) -> String {
    let (a, b) = text(out);
    format!("{a}{b}")
}

#[test]
fn replay_says_where_a_tighter_ruleset_would_have_ended_the_runs() {
    let (tmp, repo) = finished_runs();
    // The runs spent 100 tokens per phase, 200 in all.
    let tight = tmp.path().join("tight.json");
    std::fs::write(&tight, r#"{"project_id": "default", "run_token_cap": 150}"#).unwrap();
    let loose = tmp.path().join("loose.json");
    std::fs::write(
        &loose,
        r#"{"project_id": "default", "run_token_cap": 10000000}"#,
    )
    .unwrap();

    let replay = |ruleset: &Path, run: Option<&str>| {
        let mut args = vec!["replay"];
        args.extend(run.map_or(["--all"], |r| [r]));
        args.extend(["--repo", s(&repo), "--ruleset", s(ruleset), "--json"]);
        let out = autopack(&args);
        assert_eq!(code(&out), 0, "{:?}", text(&out));
        serde_json::from_str::<serde_json::Value>(&text(&out).0).unwrap()
    };
    let tighter = replay(&tight, Some(RUN));
    assert_eq!(tighter["recorded_state"], "DONE_SUCCESS");
    assert_eq!(
        tighter["ending"]["finished"], "DONE_FAILED_TOKEN_CAP_EXCEEDED",
        "{tighter}"
    );
    assert_eq!(tighter["same_end"], false);
    assert!(
        tighter["first_difference"]["step"].as_u64().unwrap() > 1,
        "{tighter}"
    );

    let looser = replay(&loose, Some(RUN));
    assert_eq!(looser["same_end"], true, "{looser}");
    assert_eq!(looser["first_difference"], serde_json::Value::Null);

    let all = replay(&tight, None);
    assert_eq!(all["summary"]["runs"], 2, "{all}");
    assert_eq!(all["summary"]["ended_differently"], 2, "{all}");
    let out = autopack(&[
        "replay",
        "--all",
        "--repo",
        s(&repo),
        "--ruleset",
        s(&tight),
    ]);
    assert_eq!(code(&out), 0);
    assert!(
        text(&out).0.contains("DONE_FAILED_TOKEN_CAP_EXCEEDED"),
        "{:?}",
        text(&out)
    );
}
