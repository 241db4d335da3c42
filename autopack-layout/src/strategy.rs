//! Filesystem adapters of the strategy crate's stores: [`FsRulesetStore`] and
//! [`FsStrategyStore`].
//!
//! # Rulesets
//! Every saved version is kept, immutable, at
//! `.autonomous_runs/rulesets/project_ruleset_{project_id}_v{N}.json`, and the latest is
//! mirrored at `.autonomous_runs/project_ruleset_{project_id}.json`, the file SPEC §10 names
//! and people read and edit. The history is authoritative: a crash between the two writes
//! leaves the mirror one version behind, and the next save rewrites it. A project with no
//! history but a `project_ruleset_{project_id}.json` (written by hand, or by the first
//! implementation) has that file as its only version, numbered by its `version` field
//! (`v{N}`, else 1). Saves hold the mirror's lock, so concurrent savers get distinct
//! version numbers.
//!
//! # Strategies
//! `.autonomous_runs/{run_id}/project_implementation_strategy_v{N}.json`, written once and
//! frozen: saving identical content again succeeds, different content is
//! [`LayoutError::StrategyConflict`]. The check and the write hold the file's lock.
//!
//! Every file is written atomically, and a corrupt file is an error naming it with the line
//! and column.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use autopack_core::ids::{ProjectId, RunId};
use autopack_strategy::{Ruleset, RulesetError, RulesetStore, Strategy, StrategyStore};

use crate::error::{LayoutError, Result};
use crate::fsio::{self, FileLock};
use crate::paths::{self, RunsRoot};

/// Folder of ruleset versions, inside the root.
pub const RULESET_HISTORY_DIR: &str = "rulesets";

/// The filesystem [`RulesetStore`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct FsRulesetStore {
    root: RunsRoot,
}

impl FsRulesetStore {
    /// A store under `root`.
    pub fn new(root: RunsRoot) -> FsRulesetStore {
        FsRulesetStore { root }
    }

    /// `rulesets/project_ruleset_{project_id}_v{N}.json`.
    pub fn version_path(&self, project: &ProjectId, version: u32) -> PathBuf {
        self.root
            .dir()
            .join(RULESET_HISTORY_DIR)
            .join(format!("project_ruleset_{project}_v{version}.json"))
    }

    /// The projects that have a ruleset in the layout (`project_ruleset_{id}.json`),
    /// sorted.
    ///
    /// # Errors
    /// [`LayoutError::Io`] when the layout cannot be listed.
    pub fn projects(&self) -> Result<Vec<ProjectId>> {
        let mut out: Vec<ProjectId> = list_names(self.root.dir())?
            .iter()
            .filter_map(|name| crate::paths::parse_ruleset_file_name(name))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn history(&self, project: &ProjectId) -> Result<Vec<u32>> {
        let dir = self.root.dir().join(RULESET_HISTORY_DIR);
        let prefix = format!("project_ruleset_{project}_v");
        let mut out = Vec::new();
        for name in list_names(&dir)? {
            let Some(rest) = name
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(".json"))
            else {
                continue;
            };
            if !rest.is_empty()
                && rest.bytes().all(|b| b.is_ascii_digit())
                && !rest.starts_with('0')
                && let Ok(v) = rest.parse()
            {
                out.push(v);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn read(path: &Path) -> Result<Option<Ruleset>> {
        let Some(text) = fsio::read_text(path)? else {
            return Ok(None);
        };
        // The layout's copies were size-checked when they came in (a host reads a user's
        // ruleset with `Ruleset::from_json_limited` before saving it here): a raised limit
        // must not make the saved copy unreadable.
        match Ruleset::from_json_limited(&text, &path.display().to_string(), u64::MAX) {
            Ok(r) => Ok(Some(r)),
            Err(RulesetError::Json(e)) => Err(LayoutError::Json(e)),
            Err(e) => Err(LayoutError::Invalid {
                path: path.to_owned(),
                message: e.to_string(),
            }),
        }
    }

    /// The hand-written mirror, when there is no history.
    fn mirror_only(&self, project: &ProjectId) -> Result<Option<(u32, Ruleset)>> {
        Ok(Self::read(&self.root.ruleset(project))?.map(|r| (r.version_number().unwrap_or(1), r)))
    }
}

impl RulesetStore for FsRulesetStore {
    type Error = LayoutError;

    fn save_new_version(&self, ruleset: &Ruleset) -> Result<u32> {
        let project = &ruleset.project_id;
        let mirror = self.root.ruleset(project);
        let _lock = FileLock::acquire(&mirror)?;
        let last = match self.history(project)?.last() {
            Some(&v) => Some(v),
            None => self.mirror_only(project)?.map(|(v, _)| v),
        };
        let next = match last {
            Some(v) => v
                .checked_add(1)
                .ok_or_else(|| LayoutError::VersionOverflow {
                    path: mirror.clone(),
                })?,
            None => 1,
        };
        let mut stored = ruleset.clone();
        stored.version = format!("v{next}");
        let text = stored.to_json();
        fsio::write_atomic(&self.version_path(project, next), text.as_bytes())?;
        fsio::write_atomic(&mirror, text.as_bytes())?;
        Ok(next)
    }

    fn load_latest(&self, project_id: &ProjectId) -> Result<Option<Ruleset>> {
        match self.history(project_id)?.last() {
            Some(&v) => Self::read(&self.version_path(project_id, v)),
            None => Ok(self.mirror_only(project_id)?.map(|(_, r)| r)),
        }
    }

    fn load_version(&self, project_id: &ProjectId, version: u32) -> Result<Option<Ruleset>> {
        if self.history(project_id)?.is_empty() {
            return Ok(self
                .mirror_only(project_id)?
                .filter(|(v, _)| *v == version)
                .map(|(_, r)| r));
        }
        Self::read(&self.version_path(project_id, version))
    }

    fn list_versions(&self, project_id: &ProjectId) -> Result<Vec<u32>> {
        let history = self.history(project_id)?;
        if history.is_empty() {
            return Ok(self
                .mirror_only(project_id)?
                .map(|(v, _)| vec![v])
                .unwrap_or_default());
        }
        Ok(history)
    }
}

/// The filesystem [`StrategyStore`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct FsStrategyStore {
    root: RunsRoot,
}

impl FsStrategyStore {
    /// A store under `root`.
    pub fn new(root: RunsRoot) -> FsStrategyStore {
        FsStrategyStore { root }
    }

    fn read(path: &Path) -> Result<Option<Strategy>> {
        let Some(text) = fsio::read_text(path)? else {
            return Ok(None);
        };
        Ok(Some(Strategy::from_json(
            &text,
            &path.display().to_string(),
        )?))
    }
}

impl StrategyStore for FsStrategyStore {
    type Error = LayoutError;

    fn save(&self, strategy: &Strategy) -> Result<()> {
        let path = self.root.strategy(&strategy.run_id, strategy.version);
        let _lock = FileLock::acquire(&path)?;
        let text = strategy.to_json();
        if let Some(existing) = fsio::read_text(&path)? {
            if existing == text {
                return Ok(());
            }
            // Not byte-identical: equal content written differently is still the same.
            return match Strategy::from_json(&existing, &path.display().to_string()) {
                Ok(stored) if &stored == strategy => Ok(()),
                Ok(_) => Err(LayoutError::StrategyConflict { path }),
                Err(e) => Err(e.into()),
            };
        }
        fsio::write_atomic(&path, text.as_bytes())
    }

    fn load(&self, run_id: &RunId, version: u32) -> Result<Option<Strategy>> {
        Self::read(&self.root.strategy(run_id, version))
    }

    fn load_latest(&self, run_id: &RunId) -> Result<Option<Strategy>> {
        match self.list_versions(run_id)?.last() {
            Some(&v) => self.load(run_id, v),
            None => Ok(None),
        }
    }

    fn list_versions(&self, run_id: &RunId) -> Result<Vec<u32>> {
        let mut out: Vec<u32> = list_names(&self.root.run_dir(run_id))?
            .iter()
            .filter_map(|n| paths::parse_strategy_file_name(n))
            .collect();
        out.sort_unstable();
        Ok(out)
    }
}

/// File names in `dir` (empty when it does not exist).
fn list_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LayoutError::io("list", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LayoutError::io("list", dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}
