//! Which files hold a project's issue ledger: the ledger is keyed by project, so one
//! project's run never reads or ages another's keys (SPEC §14).
//!
//! A layout's first project keeps the unsuffixed files of SPEC §10
//! (`project_issue_backlog.json`, `project_issue_journal.jsonl`,
//! `project_issue_checkpoint.json`), which is what single-project layouts and the first
//! implementation have; the backlog records its project (`"project_id"`). Every other
//! project has its own, suffixed like its ruleset: `project_issue_backlog_{project}.json`,
//! `project_issue_journal_{project}.jsonl`, `project_issue_checkpoint_{project}.json`.
//!
//! A backlog that names no project (the first implementation's, or one written before
//! ledgers were keyed) belongs to the layout's only project; in a layout with several
//! rulesets it is [`LayoutError::AmbiguousProject`], naming them — never guessed.
//!
//! ```
//! use autopack_core::ids::ProjectId;
//! use autopack_layout::RunsRoot;
//! use autopack_layout::project::ledger_files;
//!
//! let dir = tempfile::tempdir()?;
//! let root = RunsRoot::new(dir.path());
//! let a = ProjectId::new("alpha")?;
//! // A new layout: the project takes the unsuffixed files.
//! let files = ledger_files(&root, &a, &[a.clone()])?;
//! assert!(files.backlog.ends_with("project_issue_backlog.json"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::PathBuf;

use autopack_core::ids::ProjectId;
use serde::Deserialize;

use crate::error::{LayoutError, Result};
use crate::fsio;
use crate::paths::RunsRoot;

/// The files of one project's issue ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerFiles {
    /// The project (`None`: the unsuffixed files, whoever owns them).
    pub project: Option<ProjectId>,
    /// The event journal.
    pub journal: PathBuf,
    /// The checkpoint manifest.
    pub manifest: PathBuf,
    /// The base checkpoint the journal continues (an import, a migration).
    pub base: PathBuf,
    /// The materialised backlog.
    pub backlog: PathBuf,
    /// Where a backlog to import into a new ledger is looked for (the first
    /// implementation's position too, for the unsuffixed files).
    pub import_from: Vec<PathBuf>,
}

impl LedgerFiles {
    /// The unsuffixed files of SPEC §10.
    pub fn unsuffixed(root: &RunsRoot, project: Option<ProjectId>) -> LedgerFiles {
        LedgerFiles {
            project,
            journal: root.dir().join(crate::issues::ISSUE_JOURNAL_FILE),
            manifest: root.dir().join(crate::issues::ISSUE_CHECKPOINT_FILE),
            base: root.dir().join(crate::issues::ISSUE_BASE_FILE),
            backlog: root.backlog(),
            import_from: root.backlog_candidates(),
        }
    }

    /// The files of a project that does not own the unsuffixed ones.
    pub fn suffixed(root: &RunsRoot, project: ProjectId) -> LedgerFiles {
        let backlog = root
            .dir()
            .join(format!("project_issue_backlog_{project}.json"));
        LedgerFiles {
            journal: root
                .dir()
                .join(format!("project_issue_journal_{project}.jsonl")),
            manifest: root
                .dir()
                .join(format!("project_issue_checkpoint_{project}.json")),
            base: root
                .dir()
                .join(format!("project_issue_base_{project}.json")),
            import_from: vec![backlog.clone()],
            backlog,
            project: Some(project),
        }
    }

    /// Whether these are the unsuffixed files.
    pub fn is_unsuffixed(&self, root: &RunsRoot) -> bool {
        self.backlog == root.backlog()
    }

    /// Whether any of the files exists.
    pub fn exists(&self) -> bool {
        [&self.journal, &self.manifest, &self.base, &self.backlog]
            .iter()
            .any(|p| p.exists())
    }
}

/// The project a backlog file names, read without keeping its entries.
#[derive(Deserialize)]
struct Owner {
    #[serde(default)]
    project_id: Option<ProjectId>,
}

/// The files of `project`'s ledger under `root`; `projects` are the layout's projects
/// (those with a ruleset), which decide whose a backlog naming no project is.
///
/// # Errors
/// [`LayoutError::AmbiguousProject`], or a backlog that cannot be read.
pub fn ledger_files(
    root: &RunsRoot,
    project: &ProjectId,
    projects: &[ProjectId],
) -> Result<LedgerFiles> {
    let unsuffixed = LedgerFiles::unsuffixed(root, Some(project.clone()));
    let suffixed = LedgerFiles::suffixed(root, project.clone());
    if suffixed.exists() {
        return Ok(suffixed);
    }
    let owner = match fsio::read_json_first::<Owner>(&unsuffixed.import_from) {
        Ok(owner) => owner,
        // A damaged backlog does not say whose it is (the store rebuilds it from the
        // journal): it is the one project of the layout without files of its own.
        Err(err @ (LayoutError::Json(_) | LayoutError::Invalid { .. })) => {
            let mut candidates: Vec<ProjectId> = projects
                .iter()
                .chain(std::iter::once(project))
                .filter(|p| !LedgerFiles::suffixed(root, (*p).clone()).exists())
                .cloned()
                .collect();
            candidates.sort();
            candidates.dedup();
            return if candidates == [project.clone()] {
                Ok(unsuffixed)
            } else {
                Err(LayoutError::Invalid {
                    path: unsuffixed.backlog.clone(),
                    message: format!(
                        "damaged, and whose it is cannot be told (one of {}): {err}",
                        candidates
                            .iter()
                            .map(ProjectId::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            };
        }
        Err(err) => return Err(err),
    };
    let Some((path, owner)) = owner else {
        // No backlog yet. A ledger journal or manifest without one is the unsuffixed
        // files' owner before its first checkpoint: only the layout's only project can be
        // that owner, as a second project needs a ruleset of its own first.
        let started =
            unsuffixed.journal.exists() || unsuffixed.manifest.exists() || unsuffixed.base.exists();
        let others: Vec<ProjectId> = projects.iter().filter(|p| *p != project).cloned().collect();
        return Ok(if started && !others.is_empty() {
            suffixed
        } else {
            unsuffixed
        });
    };
    match owner.project_id {
        Some(owner) if &owner == project => Ok(unsuffixed),
        Some(_) => Ok(suffixed),
        None => {
            let mut candidates: Vec<ProjectId> = projects.to_vec();
            if !candidates.contains(project) {
                candidates.push(project.clone());
            }
            candidates.sort();
            candidates.dedup();
            if candidates.len() == 1 {
                Ok(unsuffixed)
            } else {
                Err(LayoutError::AmbiguousProject { path, candidates })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ProjectId {
        ProjectId::new(s).unwrap()
    }

    #[test]
    fn the_owner_keeps_the_unsuffixed_files_and_others_get_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let root = RunsRoot::new(dir.path());
        let (a, b) = (id("alpha"), id("beta"));
        std::fs::write(
            root.backlog(),
            r#"{"project_id": "alpha", "issues_by_key": {}}"#,
        )
        .unwrap();
        let both = [a.clone(), b.clone()];
        assert!(ledger_files(&root, &a, &both).unwrap().is_unsuffixed(&root));
        let files = ledger_files(&root, &b, &both).unwrap();
        assert!(files.backlog.ends_with("project_issue_backlog_beta.json"));
        assert!(files.journal.ends_with("project_issue_journal_beta.jsonl"));
        assert!(
            files
                .manifest
                .ends_with("project_issue_checkpoint_beta.json")
        );
        assert_eq!(files.import_from, vec![files.backlog.clone()]);
    }

    #[test]
    fn a_backlog_naming_no_project_is_the_only_projects_or_ambiguous() {
        let dir = tempfile::tempdir().unwrap();
        let root = RunsRoot::new(dir.path().join(".autonomous_runs"));
        std::fs::create_dir_all(root.dir()).unwrap();
        // The first implementation's position, one level up.
        std::fs::write(
            dir.path().join("project_issue_backlog.json"),
            r#"{"issues_by_key": {}}"#,
        )
        .unwrap();
        let (a, b) = (id("alpha"), id("beta"));
        assert!(
            ledger_files(&root, &a, std::slice::from_ref(&a))
                .unwrap()
                .is_unsuffixed(&root)
        );
        assert!(ledger_files(&root, &a, &[]).unwrap().is_unsuffixed(&root));
        let err = ledger_files(&root, &a, &[a.clone(), b.clone()]).unwrap_err();
        assert!(
            matches!(&err, LayoutError::AmbiguousProject { candidates, .. } if candidates == &[a.clone(), b.clone()])
        );
        let text = err.to_string();
        assert!(
            text.contains("alpha, beta") && text.contains("project_id"),
            "{text}"
        );
        // A run of a project without a ruleset in the layout is a candidate too.
        assert!(ledger_files(&root, &b, std::slice::from_ref(&a)).is_err());
    }

    #[test]
    fn a_damaged_backlog_is_the_project_without_files_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let root = RunsRoot::new(dir.path());
        let (a, b) = (id("alpha"), id("beta"));
        std::fs::write(root.backlog(), "{\"project_id\": \"al").unwrap();
        let both = [a.clone(), b.clone()];
        let err = ledger_files(&root, &a, &both).unwrap_err().to_string();
        assert!(err.contains("alpha, beta"), "{err}");
        std::fs::write(LedgerFiles::suffixed(&root, b.clone()).journal, "").unwrap();
        assert!(ledger_files(&root, &a, &both).unwrap().is_unsuffixed(&root));
        assert!(!ledger_files(&root, &b, &both).unwrap().is_unsuffixed(&root));
    }

    #[test]
    fn a_second_project_before_the_first_checkpoint_gets_its_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = RunsRoot::new(dir.path());
        let (a, b) = (id("alpha"), id("beta"));
        assert!(
            ledger_files(&root, &a, std::slice::from_ref(&a))
                .unwrap()
                .is_unsuffixed(&root)
        );
        std::fs::write(root.dir().join(crate::issues::ISSUE_JOURNAL_FILE), "").unwrap();
        assert!(
            !ledger_files(&root, &b, &[a.clone(), b.clone()])
                .unwrap()
                .is_unsuffixed(&root)
        );
    }
}
