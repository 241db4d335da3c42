//! The host tripwire: proof after every agent and CI attempt that nothing reached the host
//! repository behind the governed path.
//!
//! [`HostSnapshot::capture`] reads what an escape would change: every ref with its target,
//! HEAD, the index file, the hooks and the config. [`changes`] compares two snapshots and
//! names each difference, ignoring only the run's own integration branch
//! `refs/heads/autonomous/{run_id}` and its snapshot tags `refs/tags/autonomous/{run_id}/…`,
//! which the governed path writes. The comparison is pure; [`Tripwire`] keeps the
//! baseline between checks.
//!
//! A sandbox keeps agents and CI out of the host; the tripwire is the defence in depth for
//! a weaker sandbox (or `--no-sandbox`). A person who commits to the host repository while
//! a run is going trips it too: the run then ends rather than guess who moved the ref.
//!
//! ```
//! use autopack_apply::tripwire::{HostSnapshot, changes};
//! use autopack_core::ids::RunId;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let repo = git2::Repository::init(dir.path())?;
//! # let sig = git2::Signature::new("t", "t@example.invalid", &git2::Time::new(1_700_000_000, 0))?;
//! # let tree = repo.find_tree(repo.treebuilder(None)?.write()?)?;
//! # let c = repo.commit(Some("refs/heads/main"), &sig, &sig, "init", &tree, &[])?;
//! let run = RunId::new("run-1")?;
//! let before = HostSnapshot::capture(dir.path())?;
//! repo.reference("refs/heads/autonomous/run-1", c, true, "the run's own branch")?;
//! assert!(changes(&before, &HostSnapshot::capture(dir.path())?, &run).is_empty());
//! repo.reference("refs/heads/evil", c, true, "an escape")?;
//! let found = changes(&before, &HostSnapshot::capture(dir.path())?, &run);
//! assert_eq!(found[0].to_string(), format!("ref refs/heads/evil was created at {c}"));
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use autopack_core::ids::RunId;
use git2::{ObjectType, Oid, Repository};

/// What the tripwire watches in a host repository.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostSnapshot {
    /// Every ref (`refs/…`) and its target: an object id, or `-> name` for a symbolic ref.
    pub refs: BTreeMap<String, String>,
    /// HEAD's target, as for refs.
    pub head: String,
    /// A digest of the index file (`None`: no index).
    pub index: Option<String>,
    /// Each file under the hooks folder (path relative to it) and a digest of its mode and
    /// content.
    pub hooks: BTreeMap<String, String>,
    /// A digest of the repository's config file (`None`: none).
    pub config: Option<String>,
}

/// One difference found by [`changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostChange {
    /// A ref appeared.
    RefCreated {
        /// Its name.
        name: String,
        /// Its target.
        to: String,
    },
    /// A ref now points elsewhere.
    RefMoved {
        /// Its name.
        name: String,
        /// The old target.
        from: String,
        /// The new target.
        to: String,
    },
    /// A ref disappeared.
    RefDeleted {
        /// Its name.
        name: String,
        /// Its old target.
        was: String,
    },
    /// HEAD moved.
    Head {
        /// The old target.
        from: String,
        /// The new target.
        to: String,
    },
    /// The index file changed.
    Index,
    /// A hook was added, changed or removed.
    Hook {
        /// Its path under the hooks folder.
        name: String,
    },
    /// The config file changed.
    Config,
}

impl fmt::Display for HostChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostChange::RefCreated { name, to } => write!(f, "ref {name} was created at {to}"),
            HostChange::RefMoved { name, from, to } => {
                write!(f, "ref {name} moved from {from} to {to}")
            }
            HostChange::RefDeleted { name, was } => {
                write!(f, "ref {name} (at {was}) was deleted")
            }
            HostChange::Head { from, to } => write!(f, "HEAD moved from {from} to {to}"),
            HostChange::Index => f.write_str("the index file changed"),
            HostChange::Hook { name } => write!(f, "hook {name} was added, changed or removed"),
            HostChange::Config => f.write_str("the repository config changed"),
        }
    }
}

/// The tripwire could not read the host repository.
#[derive(Debug, thiserror::Error)]
#[error("tripwire: cannot read {what} of {path}: {reason}")]
pub struct TripwireError {
    /// What was being read.
    pub what: &'static str,
    /// The repository.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

fn digest(bytes: &[u8]) -> String {
    // libgit2's object hash: a digest from a maintained implementation, not ours.
    Oid::hash_object(ObjectType::Blob, bytes)
        .map(|o| o.to_string())
        .unwrap_or_default()
}

impl HostSnapshot {
    /// Reads the snapshot of the repository at `repo`.
    ///
    /// # Errors
    /// [`TripwireError`] naming what could not be read.
    pub fn capture(repo: &Path) -> Result<HostSnapshot, TripwireError> {
        let err = |what: &'static str| {
            let path = repo.to_owned();
            move |e: &dyn fmt::Display| TripwireError {
                what,
                path,
                reason: e.to_string(),
            }
        };
        let r = Repository::open(repo).map_err(|e| err("the repository")(&e))?;
        let target = |reference: &git2::Reference<'_>| match reference.symbolic_target_bytes() {
            Some(name) => format!("-> {}", String::from_utf8_lossy(name)),
            None => reference
                .target()
                .map(|o| o.to_string())
                .unwrap_or_default(),
        };
        let mut refs = BTreeMap::new();
        for reference in r.references().map_err(|e| err("the refs")(&e))? {
            let reference = reference.map_err(|e| err("a ref")(&e))?;
            let name = String::from_utf8_lossy(reference.name_bytes()).into_owned();
            refs.insert(name, target(&reference));
        }
        let head = match r.find_reference("HEAD") {
            Ok(h) => target(&h),
            Err(e) if e.code() == git2::ErrorCode::NotFound => String::new(),
            Err(e) => return Err(err("HEAD")(&e)),
        };
        let git_dir = r.path().to_owned();
        let read_opt = |path: &Path, what: &'static str| match std::fs::read(path) {
            Ok(bytes) => Ok(Some(digest(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err(what)(&e)),
        };
        let index = read_opt(&git_dir.join("index"), "the index")?;
        let config = read_opt(&git_dir.join("config"), "the config")?;
        let mut hooks = BTreeMap::new();
        let hooks_dir = git_dir.join("hooks");
        let mut stack = vec![hooks_dir.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(err("the hooks")(&e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| err("the hooks")(&e))?;
                let path = entry.path();
                let meta = std::fs::symlink_metadata(&path).map_err(|e| err("a hook")(&e))?;
                let name = path
                    .strip_prefix(&hooks_dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                let content = if meta.file_type().is_symlink() {
                    std::fs::read_link(&path)
                        .map(|t| t.as_os_str().as_encoded_bytes().to_vec())
                        .map_err(|e| err("a hook")(&e))?
                } else {
                    std::fs::read(&path).map_err(|e| err("a hook")(&e))?
                };
                use std::os::unix::fs::PermissionsExt;
                let mut keyed = format!("{:o}\0", meta.permissions().mode()).into_bytes();
                keyed.extend_from_slice(&content);
                hooks.insert(name, digest(&keyed));
            }
        }
        Ok(HostSnapshot {
            refs,
            head,
            index,
            hooks,
            config,
        })
    }
}

/// Whether the governed path of `run_id` may write `name`.
fn governed(name: &str, run_id: &RunId) -> bool {
    let branch = crate::refs::integration_ref(run_id);
    let tags = format!("refs/tags/autonomous/{run_id}/");
    name == branch || name.starts_with(&tags)
}

/// Every difference between `before` and `after` except the run's own branch and tags.
pub fn changes(before: &HostSnapshot, after: &HostSnapshot, run_id: &RunId) -> Vec<HostChange> {
    let mut out = Vec::new();
    for (name, was) in &before.refs {
        if governed(name, run_id) {
            continue;
        }
        match after.refs.get(name) {
            None => out.push(HostChange::RefDeleted {
                name: name.clone(),
                was: was.clone(),
            }),
            Some(to) if to != was => out.push(HostChange::RefMoved {
                name: name.clone(),
                from: was.clone(),
                to: to.clone(),
            }),
            Some(_) => {}
        }
    }
    for (name, to) in &after.refs {
        if !governed(name, run_id) && !before.refs.contains_key(name) {
            out.push(HostChange::RefCreated {
                name: name.clone(),
                to: to.clone(),
            });
        }
    }
    if before.head != after.head {
        out.push(HostChange::Head {
            from: before.head.clone(),
            to: after.head.clone(),
        });
    }
    if before.index != after.index {
        out.push(HostChange::Index);
    }
    let hook_names: std::collections::BTreeSet<&String> =
        before.hooks.keys().chain(after.hooks.keys()).collect();
    for name in hook_names {
        if before.hooks.get(name) != after.hooks.get(name) {
            out.push(HostChange::Hook { name: name.clone() });
        }
    }
    if before.config != after.config {
        out.push(HostChange::Config);
    }
    out
}

/// A baseline of the host and the run it guards.
#[derive(Debug)]
pub struct Tripwire {
    repo: PathBuf,
    run_id: RunId,
    baseline: HostSnapshot,
}

impl Tripwire {
    /// Takes the baseline of the repository at `repo` for run `run_id`.
    ///
    /// # Errors
    /// [`TripwireError`] when the repository cannot be read.
    pub fn arm(repo: &Path, run_id: &RunId) -> Result<Tripwire, TripwireError> {
        Ok(Tripwire {
            repo: repo.to_owned(),
            run_id: run_id.clone(),
            baseline: HostSnapshot::capture(repo)?,
        })
    }

    /// What changed since the baseline (empty: nothing).
    ///
    /// # Errors
    /// [`TripwireError`] when the repository cannot be read.
    pub fn check(&self) -> Result<Vec<HostChange>, TripwireError> {
        let now = HostSnapshot::capture(&self.repo)?;
        Ok(changes(&self.baseline, &now, &self.run_id))
    }

    /// The baseline.
    pub fn baseline(&self) -> &HostSnapshot {
        &self.baseline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run() -> RunId {
        RunId::new("r1").unwrap()
    }

    fn snap(refs: &[(&str, &str)]) -> HostSnapshot {
        HostSnapshot {
            refs: refs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            head: "-> refs/heads/main".into(),
            ..HostSnapshot::default()
        }
    }

    #[test]
    fn the_runs_own_branch_and_tags_are_ignored_and_nothing_else() {
        let before = snap(&[("refs/heads/main", "a"), ("refs/heads/autonomous/r1", "a")]);
        let after = snap(&[
            ("refs/heads/main", "a"),
            ("refs/heads/autonomous/r1", "b"),
            ("refs/tags/autonomous/r1/tier-t/phase-p", "c"),
        ]);
        assert!(changes(&before, &after, &run()).is_empty());
        // Another run's branch, or a look-alike of ours, is not governed by this run.
        let after = snap(&[
            ("refs/heads/main", "a"),
            ("refs/heads/autonomous/r1", "a"),
            ("refs/heads/autonomous/r10", "a"),
            ("refs/tags/autonomous/r1x/t", "a"),
        ]);
        let found = changes(&before, &after, &run());
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn every_kind_of_change_is_named() {
        let before = snap(&[("refs/heads/main", "a"), ("refs/heads/old", "o")]);
        let mut after = snap(&[("refs/heads/main", "b"), ("refs/heads/new", "n")]);
        after.head = "-> refs/heads/new".into();
        after.index = Some("x".into());
        after.config = Some("y".into());
        after.hooks.insert("post-commit".into(), "z".into());
        let text: Vec<String> = changes(&before, &after, &run())
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            text,
            [
                "ref refs/heads/main moved from a to b",
                "ref refs/heads/old (at o) was deleted",
                "ref refs/heads/new was created at n",
                "HEAD moved from -> refs/heads/main to -> refs/heads/new",
                "the index file changed",
                "hook post-commit was added, changed or removed",
                "the repository config changed",
            ]
        );
    }

    proptest! {
        /// A snapshot never differs from itself, and any change outside the run's own refs
        /// is found.
        #[test]
        fn identical_snapshots_have_no_changes_and_foreign_edits_are_found(
            refs in proptest::collection::btree_map("refs/heads/[a-z]{1,6}", "[0-9a-f]{4}", 0..8),
            name in "refs/(heads|tags)/[a-z]{1,6}",
            target in "[0-9a-f]{4}",
        ) {
            let before = HostSnapshot { refs: refs.clone(), ..HostSnapshot::default() };
            prop_assert!(changes(&before, &before.clone(), &run()).is_empty());
            let mut after = before.clone();
            let moved = after.refs.insert(name.clone(), target.clone()) != Some(target);
            prop_assert_eq!(!changes(&before, &after, &run()).is_empty(), moved);
        }
    }
}
