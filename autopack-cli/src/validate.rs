//! Checks a `.autonomous_runs/` tree: every file it knows is parsed with the right type
//! (strictly: unknown fields are errors), every run journal is replayed, and a finished
//! run must have its SPEC §10 artefacts. Every problem is reported with its file; files
//! it does not know are listed as unchecked, not as problems.
//!
//! Trees written by the first implementation are accepted: its spellings and naive
//! timestamps are read by the typed readers, its run issue index may sit at
//! `{run_id}/issues/run_issue_index.json`, and its backlog one level above the root.

use std::fs;
use std::path::{Path, PathBuf};

use autopack::core::ids::RunId;
use autopack::issues::{PhaseIssueFile, ProjectBacklog, RunIssueIndex};
use autopack::layout::{FsRunStore, FsyncPolicy, RunsRoot};
use autopack::strategy::{Ruleset, Strategy};
use serde::Serialize;
use serde::de::DeserializeOwned;

use autopack::runner::{RUN_CONFIG_FILE, RunConfig};

/// One problem, naming its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file (or folder) at fault.
    pub file: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// What [`validate_tree`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Validation {
    /// The root checked.
    pub root: PathBuf,
    /// Files parsed and found valid or invalid.
    pub checked: Vec<PathBuf>,
    /// Files not known to the checker (not problems).
    pub unchecked: Vec<PathBuf>,
    /// Every problem.
    pub problems: Vec<Problem>,
}

impl Validation {
    fn problem(&mut self, file: &Path, message: impl Into<String>) {
        self.problems.push(Problem {
            file: file.to_owned(),
            message: message.into(),
        });
    }

    fn read(&mut self, file: &Path) -> Option<String> {
        self.checked.push(file.to_owned());
        match fs::read(file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Some(text),
                Err(_) => {
                    self.problem(file, "not valid UTF-8");
                    None
                }
            },
            Err(e) => {
                self.problem(file, format!("cannot be read: {e}"));
                None
            }
        }
    }

    fn json<T: DeserializeOwned>(&mut self, file: &Path) -> Option<T> {
        let text = self.read(file)?;
        match autopack::core::json::from_str::<T>(&text, file.display().to_string()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(file, strip_source(&e.to_string(), file));
                None
            }
        }
    }

    fn markdown(&mut self, file: &Path) {
        if let Some(text) = self.read(file)
            && text.trim().is_empty()
        {
            self.problem(file, "is empty");
        }
    }

    fn jsonl<T: DeserializeOwned>(&mut self, file: &Path) {
        let Some(text) = self.read(file) else { return };
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            if let Err(e) = autopack::core::json::from_str::<T>(line, format!("line {}", n + 1)) {
                self.problem(file, e.to_string());
            }
        }
        if !text.is_empty() && !text.ends_with('\n') {
            self.problem(
                file,
                "the last line is torn (no newline): a writer crashed mid-append",
            );
        }
    }
}

fn strip_source(message: &str, file: &Path) -> String {
    let prefix = format!("{}: ", file.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_owned()
}

/// The `.autonomous_runs/` folder of `dir`: `dir/.autonomous_runs` when it exists, else
/// `dir` itself when it is such a folder or holds project files directly.
pub fn find_root(dir: &Path) -> PathBuf {
    let inner = dir.join(autopack::runner::RUNS_DIR);
    if inner.is_dir() {
        inner
    } else {
        dir.to_owned()
    }
}

fn sorted_entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    out.sort();
    Ok(out)
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Checks the tree at `root` (a `.autonomous_runs/` folder).
pub fn validate_tree(root: &Path) -> Validation {
    let mut v = Validation {
        root: root.to_owned(),
        ..Validation::default()
    };
    let entries = match sorted_entries(root) {
        Ok(entries) => entries,
        Err(e) => {
            v.problem(root, format!("cannot be listed: {e}"));
            return v;
        }
    };
    if entries.is_empty() {
        v.problem(root, "is empty: no ruleset, backlog or run found");
    }
    for path in entries {
        let name = name_of(&path);
        if name.ends_with(".lock") {
            continue;
        }
        if path.is_dir() {
            if name == "rulesets" {
                check_ruleset_history(&mut v, &path);
            } else {
                check_run(&mut v, root, &path, &name);
            }
            continue;
        }
        check_project_file(&mut v, &path, &name);
    }
    // The first implementation's backlog position, one level above the root.
    if let Some(parent) = root.parent() {
        let legacy = parent.join(autopack::layout::paths::BACKLOG_FILE);
        if legacy.is_file() && root.join(autopack::runner::RUNS_DIR).as_path() != legacy {
            let _: Option<ProjectBacklog> = v.json(&legacy);
        }
    }
    v
}

fn check_project_file(v: &mut Validation, path: &Path, name: &str) {
    if let Some(project) = autopack::layout::paths::parse_ruleset_file_name(name) {
        if let Some(text) = v.read(path) {
            match Ruleset::from_json(&text, &path.display().to_string()) {
                Ok(r) if r.project_id != project => v.problem(
                    path,
                    format!(
                        "project_id: {} does not match the file name (project {project})",
                        r.project_id
                    ),
                ),
                Ok(_) => {}
                Err(e) => v.problem(path, strip_source(&e.to_string(), path)),
            }
        }
        return;
    }
    // Each project's ledger files: the unsuffixed ones, or suffixed `_{project_id}`
    // (`autopack::layout::project`).
    let ledger_file = |stem: &str, ext: &str| {
        name.strip_prefix(stem)
            .and_then(|rest| rest.strip_suffix(ext))
            .is_some_and(|mid| {
                mid.is_empty()
                    || mid
                        .strip_prefix('_')
                        .is_some_and(|id| autopack::core::ids::ProjectId::new(id).is_ok())
            })
    };
    if ledger_file("project_issue_backlog", ".json") {
        let _: Option<ProjectBacklog> = v.json(path);
    } else if ledger_file("project_issue_journal", ".jsonl") {
        v.jsonl::<autopack::issues::JournalEntry>(path);
    } else if ledger_file("project_issue_checkpoint", ".json") {
        let _: Option<serde_json::Value> = v.json(path);
    } else {
        v.unchecked.push(path.to_owned());
    }
}

fn check_ruleset_history(v: &mut Validation, dir: &Path) {
    let Ok(entries) = sorted_entries(dir) else {
        v.problem(dir, "cannot be listed");
        return;
    };
    for path in entries {
        let name = name_of(&path);
        if name.ends_with(".lock") {
            continue;
        }
        if name.starts_with("project_ruleset_") && name.ends_with(".json") {
            if let Some(text) = v.read(&path)
                && let Err(e) = Ruleset::from_json(&text, &path.display().to_string())
            {
                v.problem(&path, strip_source(&e.to_string(), &path));
            }
        } else {
            v.unchecked.push(path);
        }
    }
}

fn check_run(v: &mut Validation, root: &Path, dir: &Path, name: &str) {
    let run_id = match RunId::new(name) {
        Ok(id) => id,
        Err(e) => {
            v.problem(dir, format!("is not a run folder: {e}"));
            return;
        }
    };
    let Ok(entries) = sorted_entries(dir) else {
        v.problem(dir, "cannot be listed");
        return;
    };
    for path in entries {
        let file = name_of(&path);
        if file.ends_with(".lock") {
            continue;
        }
        if path.is_dir() {
            match file.as_str() {
                "tiers" | "phases" => check_markdown_dir(v, &path),
                "issues" => check_issues_dir(v, &path, &run_id),
                "incident" => check_incident_dir(v, &path),
                _ => v.unchecked.push(path),
            }
            continue;
        }
        if autopack::layout::paths::parse_strategy_file_name(&file).is_some() {
            if let Some(text) = v.read(&path) {
                match Strategy::from_json(&text, &path.display().to_string()) {
                    Ok(s) if s.run_id != run_id => v.problem(
                        &path,
                        format!(
                            "run_id: {} does not match the run folder {run_id}",
                            s.run_id
                        ),
                    ),
                    Ok(_) => {}
                    Err(e) => v.problem(&path, strip_source(&e.to_string(), &path)),
                }
            }
            continue;
        }
        match file.as_str() {
            "journal.jsonl" => v.jsonl::<autopack::core::journal::chain::Sealed<
                autopack::driver::JournalEntry,
            >>(&path),
            "run_summary.md" => v.markdown(&path),
            "run_issue_index.json" => check_index(v, &path, &run_id),
            f if f == RUN_CONFIG_FILE => {
                let _: Option<RunConfig> = v.json(&path);
            }
            _ => v.unchecked.push(path),
        }
    }
    // A journal must replay; a finished run must have its artefacts.
    if dir.join(autopack::layout::paths::JOURNAL_FILE).is_file() {
        let layout = RunsRoot::new(root);
        let mut store = FsRunStore::new(layout.clone(), FsyncPolicy::AtCheckpoints);
        match autopack::driver::replay_journal(&mut store, &run_id) {
            Ok(sup) => {
                if let Some(record) = sup.record()
                    && record.state.is_terminal()
                {
                    let expected = autopack::runner::expected_artefacts(&layout, "", record);
                    for path in expected.into_iter().skip(2) {
                        let legacy_index = dir.join("issues").join("run_issue_index.json");
                        let legacy_ok =
                            path == layout.run_issue_index(&run_id) && legacy_index.is_file();
                        if !path.is_file() && !legacy_ok {
                            v.problem(
                                &path,
                                format!(
                                    "missing: run {run_id} ended {} and SPEC §10 lists this file",
                                    record.state
                                ),
                            );
                        }
                    }
                }
            }
            Err(e) => v.problem(&layout.journal(&run_id), format!("does not replay: {e}")),
        }
    }
}

fn check_index(v: &mut Validation, path: &Path, run_id: &RunId) {
    if let Some(index) = v.json::<RunIssueIndex>(path)
        && &index.run_id != run_id
    {
        v.problem(
            path,
            format!(
                "run_id: {} does not match the run folder {run_id}",
                index.run_id
            ),
        );
    }
}

fn check_markdown_dir(v: &mut Validation, dir: &Path) {
    let Ok(entries) = sorted_entries(dir) else {
        v.problem(dir, "cannot be listed");
        return;
    };
    for path in entries {
        let name = name_of(&path);
        if name.ends_with(".lock") {
            continue;
        }
        if name.ends_with(".md") {
            v.markdown(&path);
        } else {
            v.unchecked.push(path);
        }
    }
}

fn check_issues_dir(v: &mut Validation, dir: &Path, run_id: &RunId) {
    let Ok(entries) = sorted_entries(dir) else {
        v.problem(dir, "cannot be listed");
        return;
    };
    for path in entries {
        let name = name_of(&path);
        if name.ends_with(".lock") {
            continue;
        }
        if name == "run_issue_index.json" {
            check_index(v, &path, run_id);
        } else if name.starts_with("phase_") && name.ends_with("_issues.json") {
            if let Some(file) = v.json::<PhaseIssueFile>(&path) {
                if &file.run_id != run_id {
                    v.problem(
                        &path,
                        format!(
                            "run_id: {} does not match the run folder {run_id}",
                            file.run_id
                        ),
                    );
                }
                let expected = format!(
                    "phase_{:02}_{}_issues.json",
                    file.phase_index, file.phase_id
                );
                if name != expected {
                    v.problem(&path, format!("phase_id/phase_index: the file holds phase {} (index {}), expected the name {expected}", file.phase_id, file.phase_index));
                }
            }
        } else {
            v.unchecked.push(path);
        }
    }
}

fn check_incident_dir(v: &mut Validation, dir: &Path) {
    let Ok(entries) = sorted_entries(dir) else {
        v.problem(dir, "cannot be listed");
        return;
    };
    for path in entries {
        match name_of(&path).as_str() {
            n if n.ends_with(".lock") => {}
            "incident.json" => {
                let _: Option<autopack::layout::render::Incident> = v.json(&path);
            }
            "INCIDENT.md" => v.markdown(&path),
            _ => v.unchecked.push(path),
        }
    }
}

/// Replays every run journal kept in `stores` (a database: the files of `root` are
/// checked by [`validate_tree`]); each journal that does not replay is a problem named
/// by the store and run.
///
/// # Errors
/// The store's runs cannot be listed.
pub fn validate_store_journals(
    root: &Path,
    stores: &autopack::runner::Stores,
) -> anyhow::Result<Vec<Problem>> {
    use autopack::core::journal::RunStore as _;
    let layout = autopack::layout::RunsRoot::new(root);
    let mut journal = stores.journal(&layout);
    let mut problems = Vec::new();
    for run in journal.runs()? {
        if let Err(e) = autopack::driver::replay_journal(&mut journal, &run) {
            problems.push(Problem {
                file: PathBuf::from(stores.journal_name(&layout, &run)),
                message: format!("does not replay: {e}"),
            });
        }
    }
    Ok(problems)
}
