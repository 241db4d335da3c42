//! `autopack verify` and `autopack attest` over a repository: the journal replayed into a
//! fresh Supervisor and checked against the integration branch, the tags, the artefacts
//! and the attestation, independently of any stored view.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use autopack_apply::history::{BranchHistory, branch_history, tree_after};
use autopack_apply::{Oid, Repository};
use autopack_attest::{Envelope, SigningKey, Statement, VerifyingKey, sign_statement};
use autopack_core::ids::{CommitId, RunId};
use autopack_core::journal::chain::{Digest, JournalPosition};
use autopack_layout::RunsRoot;

use super::error::{Doing as _, RunnerError};
use super::runs_root;
use super::stores::Stores;
use crate::verify::attestation::{self, ENVELOPE_FILE, STATEMENT_FILE};
use crate::verify::{RecordedJournal, Verification};

/// Reads `run_id`'s journal from `stores`.
fn recorded(repo: &Path, stores: &Stores, run_id: &RunId) -> Result<RecordedJournal, RunnerError> {
    let root = runs_root(repo);
    let mut store = stores.journal(&root);
    let journal = stores.journal_name(&root, run_id);
    RecordedJournal::read(&mut store, run_id)
        .map_err(|e| super::records::journal_error(run_id, &journal, "reading the journal of", e))
}

/// Writes the attestation of `run_id` (`attestation.intoto.json` in its folder) about the
/// integration branch's tip, and, given `key`, its signed DSSE envelope
/// (`attestation.dsse.json`). Returns the statement and the files written.
///
/// # Errors
/// No journal, a journal without a run, an unreadable branch, or a file that cannot be
/// written.
pub fn attest_run(
    repo: &Path,
    stores: &Stores,
    run_id: &RunId,
    key: Option<&SigningKey>,
) -> Result<(Statement, Vec<PathBuf>), RunnerError> {
    let recorded = recorded(repo, stores, run_id)?;
    let history = branch_history(repo, run_id)
        .doing(|| format!("reading the integration branch of run {run_id}"))?;
    let tip = history.tip.map(commit_id).transpose()?;
    let statement = attestation::statement(&recorded, tip.as_ref())
        .doing(|| format!("attesting run {run_id}"))?;
    let dir = runs_root(repo).run_dir(run_id);
    let mut written = Vec::new();
    let path = dir.join(STATEMENT_FILE);
    autopack_layout::fsio::write_atomic(&path, &statement.to_json_bytes())
        .doing(|| format!("writing {}", path.display()))?;
    written.push(path);
    if let Some(key) = key {
        let envelope = sign_statement(&statement, key);
        let path = dir.join(ENVELOPE_FILE);
        autopack_layout::fsio::write_atomic(&path, envelope.to_json().as_bytes())
            .doing(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok((statement, written))
}

/// Verifies `run_id`: replays its journal into a fresh Supervisor and checks the hash
/// chain and binding, the integration branch (every commit known to the journal, its tree
/// the journal's patch applied to its parent, its trailers), the snapshot tags, the
/// summaries and issue views, and the attestation (and, given `key`, its signed
/// envelope). Every mismatch is named in the result; see [`Verification::is_ok`].
///
/// # Errors
/// No journal, or the repository or a file cannot be read at all.
pub fn verify_run(
    repo: &Path,
    stores: &Stores,
    run_id: &RunId,
    key: Option<&VerifyingKey>,
) -> Result<Verification, RunnerError> {
    let root = runs_root(repo);
    let journal_name = stores.journal_name(&root, run_id);
    let recorded = recorded(repo, stores, run_id)?;
    let mut v = Verification::new(run_id.clone());
    v.entries = recorded.entries();
    v.head = recorded.chain.head();
    v.final_state = recorded.supervisor.record().map(|r| r.state);

    // The journal.
    if let Some((entry, why)) = &recorded.broken_at {
        v.mismatch(format!("{journal_name} entry {entry}"), why.clone());
    }
    match recorded.chain.started() {
        None => v.mismatch(
            journal_name.clone(),
            "has no hash chain (written before chaining): its entries cannot be verified",
        ),
        Some(1) => v.checked(format!(
            "{journal_name}: hash chain of {} entries",
            recorded.entries()
        )),
        Some(first) => v.checked(format!(
            "{journal_name}: hash chain from entry {first} (entries before it predate chaining)"
        )),
    }
    if recorded.binding_matches == Some(false) {
        v.mismatch(
            format!("{journal_name} entry 1"),
            "binds another plan, ruleset or strategy than the run's start",
        );
    }
    if recorded.supervisor.record().is_none() {
        v.mismatch(journal_name, "holds no run start");
        return Ok(v);
    }

    // The integration branch and tags.
    let history = branch_history(repo, run_id)
        .doing(|| format!("reading the integration branch of run {run_id}"))?;
    let repository =
        Repository::open(repo).doing(|| format!("opening the repository {}", repo.display()))?;
    check_branch(&mut v, &recorded, &history, &repository);
    check_tags(&mut v, &recorded, &history);

    // The artefacts, rendered again from the replayed record.
    check_artefacts(&mut v, &root, &recorded);

    // The attestation.
    if recorded.supervisor.is_finished() {
        let tip = history.tip.map(commit_id).transpose()?;
        check_attestation(&mut v, &root, &recorded, tip.as_ref(), key);
    }
    Ok(v)
}

fn commit_id(oid: Oid) -> Result<CommitId, RunnerError> {
    CommitId::new(oid.to_string()).doing(|| format!("reading commit {oid}"))
}

fn oid(commit: &CommitId) -> Option<Oid> {
    Oid::from_str(commit.as_str()).ok()
}

fn check_branch(
    v: &mut Verification,
    recorded: &RecordedJournal,
    history: &BranchHistory,
    repo: &Repository,
) {
    let branch = &history.ref_name;
    // The branch's history is the journal's snapshots, in order.
    let mut expected: Vec<&crate::verify::RecordedSnapshot> = Vec::new();
    for snapshot in &recorded.snapshots {
        if expected
            .last()
            .is_none_or(|last| last.commit != snapshot.commit)
        {
            expected.push(snapshot);
        }
    }
    let known: BTreeSet<Oid> = expected.iter().filter_map(|s| oid(&s.commit)).collect();
    let on_branch: Vec<_> = history.commits.iter().rev().collect();
    match (history.tip, expected.last()) {
        (None, Some(last)) => v.mismatch(
            branch.clone(),
            format!("is gone, but the journal snapshotted {}", last.commit),
        ),
        (Some(tip), Some(last)) if Some(tip) != oid(&last.commit) => v.mismatch(
            format!("commit {tip}"),
            format!(
                "is the tip of {branch}, but the journal's last snapshot is {}",
                last.commit
            ),
        ),
        (Some(tip), None) if !history.commits.is_empty() => v.mismatch(
            format!("commit {tip}"),
            format!("is on {branch}, but the journal snapshotted nothing"),
        ),
        _ => {}
    }
    if history
        .below
        .is_some_and(|below| Some(below) == history.tip)
        && !expected.is_empty()
    {
        v.mismatch(
            format!("commit {}", history.tip.map(|t| t.to_string()).unwrap_or_default()),
            format!("is the tip of {branch} and carries no Autopack-Run trailer of this run (added by hand?)"),
        );
    }
    for commit in &on_branch {
        if !known.contains(&commit.id) {
            v.mismatch(
                format!("commit {}", commit.id),
                format!("is on {branch} but the journal does not know it (added by hand?)"),
            );
        }
    }
    let present: BTreeSet<Oid> = on_branch.iter().map(|c| c.id).collect();
    for snapshot in &expected {
        if oid(&snapshot.commit).is_none_or(|id| !present.contains(&id)) {
            v.mismatch(
                format!("commit {}", snapshot.commit),
                format!(
                    "was snapshotted for phase {} but is not on {branch}",
                    snapshot.phase_id
                ),
            );
        }
    }
    // Each of the run's commits: its tree, its trailers.
    let by_commit: BTreeMap<&str, &crate::verify::AppliedPatch> = recorded
        .applied
        .iter()
        .map(|a| (a.commit.as_str(), a))
        .collect();
    for commit in &on_branch {
        let id = commit.id.to_string();
        let Some(applied) = by_commit.get(id.as_str()) else {
            continue;
        };
        let subject = format!("commit {id}");
        match commit.parent {
            Some(parent) => match tree_after(repo, parent, applied.patch.as_bytes()) {
                Ok(tree) if tree == commit.tree => {}
                Ok(_) => v.mismatch(
                    subject.clone(),
                    format!(
                        "its tree is not the journal's patch of phase {} (entry {}) applied to its parent",
                        applied.phase_id, applied.entry
                    ),
                ),
                Err(e) => v.mismatch(
                    subject.clone(),
                    format!("the journal's patch of phase {} does not apply to its parent: {e}", applied.phase_id),
                ),
            },
            None => v.mismatch(subject.clone(), "has no parent"),
        }
        let trailer = |key: &str| commit.trailers.get(key).map(String::as_str);
        if trailer("Autopack-Phase") != Some(applied.phase_id.as_str()) {
            v.mismatch(
                subject.clone(),
                format!(
                    "its Autopack-Phase trailer does not name phase {}",
                    applied.phase_id
                ),
            );
        }
        if let Some(digest) = trailer("Autopack-Patch-SHA256")
            && digest != Digest::of(applied.patch.as_bytes()).to_hex()
        {
            v.mismatch(
                subject.clone(),
                "its Autopack-Patch-SHA256 is not the journal's patch",
            );
        }
        if let Some(position) = trailer("Autopack-Journal") {
            let known = JournalPosition::parse(position).is_some_and(|p| {
                p.entries >= 1
                    && recorded
                        .line_hashes
                        .get(p.entries as usize - 1)
                        .is_some_and(|h| *h == p.head)
            });
            if !known {
                v.mismatch(
                    subject.clone(),
                    format!("its Autopack-Journal trailer ({position}) names a position the journal does not have"),
                );
            }
        }
    }
    v.checked(format!(
        "{branch}: {} commit(s) against the journal's patches",
        on_branch.len()
    ));
}

fn check_tags(v: &mut Verification, recorded: &RecordedJournal, history: &BranchHistory) {
    let expected: BTreeMap<String, &CommitId> = recorded
        .snapshots
        .iter()
        .map(|s| (format!("refs/tags/{}", s.tag), &s.commit))
        .collect();
    for (name, commit) in &expected {
        match history.tags.get(name) {
            None => v.mismatch(
                name.clone(),
                format!("is missing (the journal tagged {commit})"),
            ),
            Some(target) if Some(*target) != oid(commit) => v.mismatch(
                name.clone(),
                format!("points to {target}, but the journal tagged {commit}"),
            ),
            Some(_) => {}
        }
    }
    for (name, target) in &history.tags {
        if !expected.contains_key(name) {
            v.mismatch(
                name.clone(),
                format!("points to {target} but the journal made no such tag"),
            );
        }
    }
    v.checked(format!("{} snapshot tag(s)", expected.len()));
}

fn check_artefacts(v: &mut Verification, root: &RunsRoot, recorded: &RecordedJournal) {
    let Some(record) = recorded.supervisor.record() else {
        return;
    };
    let run_id = &record.run_id;
    let mut files: Vec<(PathBuf, String)> = vec![(
        root.run_summary(run_id),
        autopack_layout::render::run_summary(record),
    )];
    for tier in &record.tiers {
        files.push((
            root.tier_summary(run_id, tier.tier_index, &tier.tier_id, &tier.name),
            autopack_layout::render::tier_summary(record, tier),
        ));
        for phase in &tier.phases {
            files.push((
                root.phase_summary(run_id, phase.phase_index, &phase.phase_id),
                autopack_layout::render::phase_summary(record, phase),
            ));
        }
    }
    let count = files.len();
    for (path, want) in files {
        match std::fs::read_to_string(&path) {
            Ok(text) if text == want => {}
            Ok(_) => v.mismatch(
                path.display().to_string(),
                "differs from the summary the journal gives (edited?)",
            ),
            Err(e) => v.mismatch(path.display().to_string(), format!("cannot be read: {e}")),
        }
    }
    // The run's issue index, compared as data (its layout depends on its size).
    if let Some(ledger) = recorded.supervisor.ledger() {
        let path = root.run_issue_index(run_id);
        let want = serde_json::to_value(ledger.run_issue_index(run_id)).ok();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let got = serde_json::from_str::<serde_json::Value>(&text).ok();
                if got.is_none() || got != want {
                    v.mismatch(
                        path.display().to_string(),
                        "differs from the issues the journal recorded (edited?)",
                    );
                }
            }
            Err(e) => v.mismatch(path.display().to_string(), format!("cannot be read: {e}")),
        }
    }
    v.checked(format!("{count} summaries and the run issue index"));
}

fn check_attestation(
    v: &mut Verification,
    root: &RunsRoot,
    recorded: &RecordedJournal,
    tip: Option<&CommitId>,
    key: Option<&VerifyingKey>,
) {
    let dir = root.run_dir(&recorded.run_id);
    let path = dir.join(STATEMENT_FILE);
    let subject = path.display().to_string();
    let want = match attestation::statement(recorded, tip) {
        Ok(s) => s,
        Err(e) => {
            v.mismatch(subject, e.to_string());
            return;
        }
    };
    match std::fs::read(&path) {
        Ok(bytes) => match Statement::from_json(&bytes) {
            Ok(got) => {
                if let Some(problem) = statement_difference(&got, &want) {
                    v.mismatch(subject.clone(), problem);
                }
            }
            Err(e) => v.mismatch(subject.clone(), format!("is not an in-toto statement: {e}")),
        },
        Err(e) => v.mismatch(subject.clone(), format!("cannot be read: {e}")),
    }
    if let Some(key) = key {
        let path = dir.join(ENVELOPE_FILE);
        let subject = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => match Envelope::from_json(&text)
                .map_err(|e| e.to_string())
                .and_then(|envelope| envelope.verify(key).map_err(|e| e.to_string()))
            {
                Ok(signed) => {
                    if let Some(problem) = statement_difference(&signed, &want) {
                        v.mismatch(subject, format!("is signed, but {problem}"));
                    }
                }
                Err(e) => v.mismatch(subject, format!("does not verify: {e}")),
            },
            Err(e) => v.mismatch(subject, format!("cannot be read: {e}")),
        }
    }
    v.checked("the attestation".to_owned());
}

/// What differs between an attestation found and the one the journal gives, named by
/// the first top-level field of the predicate that differs.
fn statement_difference(got: &Statement, want: &Statement) -> Option<String> {
    if got.subject != want.subject {
        let names = |s: &Statement| {
            s.subject
                .iter()
                .map(|d| format!("{:?}", d.digest))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Some(format!(
            "its subject ({}) is not the integration branch's tip ({})",
            names(got),
            names(want)
        ));
    }
    if got.predicate_type != want.predicate_type {
        return Some(format!("its predicate type is {}", got.predicate_type));
    }
    if got.predicate == want.predicate {
        return None;
    }
    let field = match (&got.predicate, &want.predicate) {
        (serde_json::Value::Object(g), serde_json::Value::Object(w)) => w
            .iter()
            .find(|(k, value)| g.get(*k) != Some(value))
            .map(|(k, _)| k.clone())
            .or_else(|| g.keys().find(|k| !w.contains_key(*k)).cloned()),
        _ => None,
    };
    Some(match field.as_deref() {
        Some("run_id") => "it attests another run".to_owned(),
        Some(field) => format!("its predicate's `{field}` differs from the journal's"),
        None => "its predicate differs from the journal's".to_owned(),
    })
}
