//! Private workspaces: independent clones of the host repository, one per role of a run,
//! where agents and CI do their work without any path back to the host.
//!
//! A workspace is a clone (objects copied, never hard-linked; no remote), not a linked
//! worktree, so nothing run inside it can write the host's refs, objects, hooks or config.
//! Workspaces live under a directory outside the host work tree (by default
//! `$TMPDIR/autopack-workspaces/`), one folder per run (`{run_id}-{repo hash}`) with a
//! sub-folder per [`Slot`], and are reused from attempt to attempt: an attempt's checkout
//! copies only the objects the workspace lacks, then resets the work tree to the commit
//! (untracked and ignored files removed), touching only the paths that differ — those an
//! `lstat` scan against the kept index finds changed (or that [`Workspace::finish`] found
//! at the end of the last attempt), and those that differ between the two commits.
//!
//! What an agent leaves in the workspace's own `.git` is not trusted: before a reuse the
//! `.git` folder must hold only directories and regular files (no symlink, no
//! `commondir`, no alternates, no `gitdir:` file), its config is rewritten, and its hooks
//! and `info/` are removed; otherwise the workspace is cloned anew. The change an agent
//! made is read against an index kept outside the workspace, so an agent's staging does
//! not change its patch.
//!
//! A run holds its folder's lock (`{folder}.lock`, an advisory file lock) while it works;
//! [`Workspaces::reclaim_stale`] removes folders whose lock nobody holds (left by a
//! crashed process).

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use autopack_core::ids::RunId;
use git2::{
    DiffFindOptions, DiffFormat, DiffOptions, Index, ObjectType, Oid, Repository,
    RepositoryOpenFlags, build::CheckoutBuilder,
};

/// Which checkout of a run a workspace is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The Builder's checkout of the integration tip.
    Builder,
    /// The Auditor's checkout of the candidate under review.
    Auditor,
    /// CI's throwaway checkout of the candidate.
    Ci,
}

impl Slot {
    /// The folder name.
    pub const fn name(self) -> &'static str {
        match self {
            Slot::Builder => "builder",
            Slot::Auditor => "auditor",
            Slot::Ci => "ci",
        }
    }
}

/// Refs written in a workspace beside its detached HEAD, so that an agent can diff.
pub mod refs {
    /// The commit the run's integration branch started from.
    pub const BASE: &str = "refs/autopack/base";
    /// The integration branch's tip when the workspace was checked out.
    pub const TIP: &str = "refs/autopack/tip";
}

/// Errors of [`Workspaces`] and [`Workspace`].
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// A file or directory could not be read, written or removed.
    #[error("workspace io: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// git failed.
    #[error("workspace git: {op} in {path}: {source}")]
    Git {
        /// What was being done.
        op: &'static str,
        /// The repository (host or workspace).
        path: PathBuf,
        /// The libgit2 error.
        #[source]
        source: git2::Error,
    },
    /// The workspace folder would lie inside the host's work tree.
    #[error(
        "workspace folder {dir} lies inside the host work tree {host}; choose a folder outside it"
    )]
    InsideHost {
        /// The workspace folder.
        dir: PathBuf,
        /// The host work tree.
        host: PathBuf,
    },
    /// The change holds content that is not UTF-8 text (patches are text; binary files
    /// are refused by the patch policy).
    #[error("the change in workspace {path} holds a file that is not UTF-8 text")]
    NotText {
        /// The workspace.
        path: PathBuf,
    },
    /// Another process holds the run's workspaces.
    #[error("workspaces {dir} are in use by another process (lock {lock})")]
    Busy {
        /// The run's folder.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
}

/// The workspaces of one run.
///
/// ```
/// use autopack_apply::workspace::{Slot, Workspaces};
/// use autopack_core::ids::RunId;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let host = tempfile::tempdir()?;
/// # let repo = git2::Repository::init(host.path())?;
/// # let sig = git2::Signature::new("t", "t@example.invalid", &git2::Time::new(1_700_000_000, 0))?;
/// # let mut tb = repo.treebuilder(None)?;
/// # tb.insert("README", repo.blob(b"hello\n")?, 0o100644)?;
/// # let tree = repo.find_tree(tb.write()?)?;
/// # let commit = repo.commit(Some("refs/heads/main"), &sig, &sig, "init", &tree, &[])?;
/// let parent = tempfile::tempdir()?;
/// let workspaces = Workspaces::open(host.path(), &RunId::new("run-1")?, parent.path())?;
/// let ws = workspaces.checkout(Slot::Builder, commit, &[])?;
/// std::fs::write(ws.path().join("README"), "hello, world\n")?;
/// let patch = ws.change()?.expect("a change");
/// assert!(patch.starts_with("diff --git a/README b/README"));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Workspaces {
    host: PathBuf,
    dir: PathBuf,
    _lock: File,
    recorded: RecordedCache,
}

/// One checked-out workspace.
#[derive(Debug)]
pub struct Workspace {
    path: PathBuf,
    index_path: PathBuf,
    commit: Oid,
    recorded: RecordedCache,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> WorkspaceError {
    let path = path.to_owned();
    move |source| WorkspaceError::Io { op, path, source }
}

fn git(op: &'static str, path: &Path) -> impl FnOnce(git2::Error) -> WorkspaceError {
    let path = path.to_owned();
    move |source| WorkspaceError::Git { op, path, source }
}

impl Workspaces {
    /// The default parent folder: `$TMPDIR/autopack-workspaces`.
    pub fn default_parent() -> PathBuf {
        std::env::temp_dir().join("autopack-workspaces")
    }

    /// Opens (creating it when missing) the workspace folder of `run_id` for the host
    /// repository at `host`, under `parent`, and takes its lock.
    ///
    /// # Errors
    /// [`WorkspaceError::InsideHost`] when `parent` lies inside the host work tree,
    /// [`WorkspaceError::Busy`] when another process holds the lock, I/O and git errors.
    pub fn open(host: &Path, run_id: &RunId, parent: &Path) -> Result<Workspaces, WorkspaceError> {
        let repo = Repository::open(host).map_err(git("open host repository", host))?;
        let host_tree = repo
            .workdir()
            .unwrap_or_else(|| repo.path())
            .canonicalize()
            .map_err(io("resolve host work tree", host))?;
        std::fs::create_dir_all(parent).map_err(io("create workspace parent", parent))?;
        let parent = parent
            .canonicalize()
            .map_err(io("resolve workspace parent", parent))?;
        if parent.starts_with(&host_tree) {
            return Err(WorkspaceError::InsideHost {
                dir: parent,
                host: host_tree,
            });
        }
        let hash = Oid::hash_object(ObjectType::Blob, host_tree.as_os_str().as_encoded_bytes())
            .map_err(git("hash host path", host))?;
        let dir = parent.join(format!("{run_id}-{}", &hash.to_string()[..12]));
        let lock_path = lock_path(&dir);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("open workspace lock", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(WorkspaceError::Busy {
                    dir,
                    lock: lock_path,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io("lock workspaces", &lock_path)(e));
            }
        }
        std::fs::create_dir_all(&dir).map_err(io("create workspace folder", &dir))?;
        Ok(Workspaces {
            host: host_tree,
            dir,
            _lock: lock,
            recorded: RecordedCache::default(),
        })
    }

    /// The run's workspace folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The host work tree.
    pub fn host(&self) -> &Path {
        &self.host
    }

    /// Checks `commit` out (detached) in the `slot` workspace, copying from the host only
    /// the objects the workspace lacks; the work tree is reset to the commit exactly
    /// (untracked and ignored files removed). Each of `beside` (e.g. [`refs::BASE`] and
    /// [`refs::TIP`] with their commits) is written as a ref of the workspace, so an agent
    /// can diff against it.
    ///
    /// # Errors
    /// I/O and git errors, naming the path.
    pub fn checkout(
        &self,
        slot: Slot,
        commit: Oid,
        beside: &[(&str, Oid)],
    ) -> Result<Workspace, WorkspaceError> {
        let path = self.dir.join(slot.name());
        let index_path = self.dir.join(format!("{}.index", slot.name()));
        let commit_path = self.dir.join(format!("{}.commit", slot.name()));
        let host = Repository::open(&self.host).map_err(git("open host", &self.host))?;
        let (repo, fresh) = match open_trusted(&path) {
            Some(repo) => (repo, false),
            None => (clone(&self.host, &path)?, true),
        };
        copy_missing(&host, &repo, commit, &path)?;
        for (name, target) in beside {
            copy_missing(&host, &repo, *target, &path)?;
            repo.reference(name, *target, true, "autopack: beside the checkout")
                .map_err(git("set a ref beside the checkout", &path))?;
        }
        let previous = std::fs::read_to_string(&commit_path)
            .ok()
            .and_then(|t| Oid::from_str(t.trim()).ok())
            .filter(|_| !fresh && index_path.is_file());
        match previous {
            Some(previous) => reset(&repo, &path, &index_path, &self.recorded, previous, commit)?,
            None => {
                full_checkout(&repo, &path, commit)?;
                let index_src = repo.path().join("index");
                std::fs::copy(&index_src, &index_path).map_err(io("keep index", &index_path))?;
            }
        }
        std::fs::write(&commit_path, commit.to_string())
            .map_err(io("record the checkout", &commit_path))?;
        Ok(Workspace {
            path,
            index_path,
            commit,
            recorded: self.recorded.clone(),
        })
    }

    /// Removes the run's workspaces and releases the lock.
    ///
    /// # Errors
    /// When the folder cannot be removed.
    pub fn remove(self) -> Result<(), WorkspaceError> {
        remove_dir(&self.dir)?;
        let lock = lock_path(&self.dir);
        let _ = std::fs::remove_file(&lock);
        Ok(())
    }

    /// Removes every run folder under `parent` whose lock no process holds: what crashed
    /// processes left. Returns the folders removed.
    ///
    /// # Errors
    /// When `parent` cannot be listed or a folder cannot be removed.
    pub fn reclaim_stale(parent: &Path) -> Result<Vec<PathBuf>, WorkspaceError> {
        let mut removed = Vec::new();
        let entries = match std::fs::read_dir(parent) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
            Err(e) => return Err(io("list workspaces", parent)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io("list workspaces", parent))?;
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !is_dir {
                continue;
            }
            let lock_path = lock_path(&path);
            let Ok(lock) = File::options()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lock_path)
            else {
                continue;
            };
            if lock.try_lock().is_ok() {
                remove_dir(&path)?;
                let _ = std::fs::remove_file(&lock_path);
                removed.push(path);
            }
        }
        Ok(removed)
    }
}

fn lock_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    dir.with_file_name(name)
}

fn remove_dir(dir: &Path) -> Result<(), WorkspaceError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove workspace", dir)(e)),
    }
}

/// What `.git` of a reused workspace may hold at its top level; anything else an agent
/// made (`commondir`, `worktrees/`, `modules/`, …) is removed, and `config`, `hooks/`
/// and `info/` are replaced.
const GIT_DIR_KEEP: &[&str] = &[
    "HEAD",
    "index",
    "objects",
    "refs",
    "packed-refs",
    "logs",
    "ORIG_HEAD",
    "FETCH_HEAD",
];

const WORKSPACE_CONFIG: &str = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n";

/// Opens a workspace left by an earlier attempt, if its `.git` can be trusted after
/// clean-up; `None` means: clone anew.
fn open_trusted(path: &Path) -> Option<Repository> {
    let git_dir = path.join(".git");
    let meta = std::fs::symlink_metadata(&git_dir).ok()?;
    if !meta.is_dir() || !only_dirs_and_files(&git_dir) {
        let _ = remove_dir(path);
        return None;
    }
    let entries = std::fs::read_dir(&git_dir).ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !GIT_DIR_KEEP.iter().any(|k| name == *k) {
            let p = entry.path();
            let removed = if entry.file_type().ok()?.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            removed.ok()?;
        }
    }
    let _ = std::fs::remove_dir_all(git_dir.join("objects/info"));
    std::fs::write(git_dir.join("config"), WORKSPACE_CONFIG).ok()?;
    let repo =
        Repository::open_ext(&git_dir, RepositoryOpenFlags::NO_SEARCH, &[] as &[&str]).ok()?;
    // The work tree is where we put it, whatever an agent wrote in the config.
    repo.set_workdir(path, false).ok()?;
    Some(repo)
}

/// Whether the `.git` folder `dir` holds only directories and regular files. Inside
/// `objects/`, only the fan-out and pack folders themselves are checked: a link among
/// object files is never followed for a write (objects are written to a temporary file
/// and renamed), and listing every loose object would cost a stat per object.
fn only_dirs_and_files(dir: &Path) -> bool {
    let objects = dir.join("objects");
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return false;
        };
        let in_objects = dir == objects;
        for entry in entries {
            let Ok(entry) = entry else { return false };
            let Ok(kind) = entry.file_type() else {
                return false;
            };
            if kind.is_dir() {
                if !in_objects {
                    stack.push(entry.path());
                }
            } else if !kind.is_file() {
                return false;
            }
        }
    }
    true
}

/// A fresh clone of the host: objects copied (never hard-linked), no remote left, nothing
/// checked out yet.
fn clone(host: &Path, path: &Path) -> Result<Repository, WorkspaceError> {
    remove_dir(path)?;
    let mut checkout = CheckoutBuilder::new();
    checkout.dry_run();
    let repo = git2::build::RepoBuilder::new()
        .clone_local(git2::build::CloneLocal::NoLinks)
        .with_checkout(checkout)
        .clone(&host.to_string_lossy(), path)
        .or_else(|e| {
            // A host whose HEAD is unborn or detached on nothing cannot be cloned as such;
            // an empty repository is filled object by object instead.
            let _ = remove_dir(path);
            Repository::init(path).map_err(|_| e)
        })
        .map_err(git("clone host", path))?;
    if repo.find_remote("origin").is_ok() {
        repo.remote_delete("origin")
            .map_err(git("remove the host remote", path))?;
    }
    std::fs::write(repo.path().join("config"), WORKSPACE_CONFIG)
        .map_err(io("write workspace config", path))?;
    let _ = std::fs::remove_dir_all(repo.path().join("hooks"));
    let repo = Repository::open_ext(repo.path(), RepositoryOpenFlags::NO_SEARCH, &[] as &[&str])
        .map_err(git("open workspace", path))?;
    repo.set_workdir(path, false)
        .map_err(git("set workspace work tree", path))?;
    Ok(repo)
}

/// Copies `commit` and what it reaches from the host's object database into the
/// workspace's, children before parents, so an object present in the workspace always has
/// everything it reaches.
fn copy_missing(
    host: &Repository,
    ws: &Repository,
    commit: Oid,
    path: &Path,
) -> Result<(), WorkspaceError> {
    let hodb = host.odb().map_err(git("open host objects", path))?;
    let wodb = ws.odb().map_err(git("open workspace objects", path))?;
    if wodb.exists(commit) {
        return Ok(());
    }
    enum Visit {
        Enter(Oid),
        Exit(Oid),
    }
    let mut seen = HashSet::new();
    let mut stack = vec![Visit::Enter(commit)];
    while let Some(visit) = stack.pop() {
        match visit {
            Visit::Enter(id) => {
                if !seen.insert(id) || wodb.exists(id) {
                    continue;
                }
                stack.push(Visit::Exit(id));
                let (_, kind) = hodb
                    .read_header(id)
                    .map_err(git("read host object", path))?;
                match kind {
                    ObjectType::Commit => {
                        let c = host
                            .find_commit(id)
                            .map_err(git("read host commit", path))?;
                        stack.push(Visit::Enter(c.tree_id()));
                        stack.extend(c.parent_ids().map(Visit::Enter));
                    }
                    ObjectType::Tree => {
                        let t = host.find_tree(id).map_err(git("read host tree", path))?;
                        for entry in t.iter() {
                            // Submodule entries name commits of another repository.
                            if entry.kind() != Some(ObjectType::Commit) {
                                stack.push(Visit::Enter(entry.id()));
                            }
                        }
                    }
                    ObjectType::Tag => {
                        let t = host.find_tag(id).map_err(git("read host tag", path))?;
                        stack.push(Visit::Enter(t.target_id()));
                    }
                    _ => {}
                }
            }
            Visit::Exit(id) => {
                let object = hodb.read(id).map_err(git("read host object", path))?;
                wodb.write(object.kind(), object.data())
                    .map_err(git("write workspace object", path))?;
            }
        }
    }
    Ok(())
}

/// Checks `commit` out over everything in the work tree (a new clone, or no record of the
/// last checkout).
fn full_checkout(repo: &Repository, path: &Path, commit: Oid) -> Result<(), WorkspaceError> {
    repo.set_head_detached(commit)
        .map_err(git("detach HEAD", path))?;
    let mut checkout = CheckoutBuilder::new();
    checkout.force().remove_untracked(true).remove_ignored(true);
    repo.checkout_head(Some(&mut checkout))
        .map_err(git("check out", path))?;
    // libgit2's checkout leaves out of the index a file that was untracked and already
    // held the target's content; reading the tree in sets every entry (keeping the stat
    // data of entries that did not change, so nothing is hashed again).
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(git("read commit", path))?;
    let mut index = repo.index().map_err(git("open index", path))?;
    index
        .read_tree(&tree)
        .and_then(|()| index.write())
        .map_err(git("write index", path))
}

/// Brings a reused work tree from `previous` (as the kept index records it) to `commit`,
/// touching only what differs: the paths the last attempt changed (found by comparing the
/// work tree with the kept index's stat data) and the paths that differ between the two
/// commits.
fn reset(
    repo: &Repository,
    path: &Path,
    index_path: &Path,
    recorded: &RecordedCache,
    previous: Oid,
    commit: Oid,
) -> Result<(), WorkspaceError> {
    let (present, unsure) = match take_scan(&scan_path(index_path)) {
        Some(scan) => scan,
        None => changed_paths(path, index_path, &*recorded.get(index_path)?)?,
    };
    // What the scan saw differ goes first (libgit2 leaves a file the agent turned into a
    // link); the scan never entered a linked directory, so no removal leaves the tree.
    for p in &present {
        let full = path.join(std::ffi::OsStr::from_bytes(p));
        std::fs::remove_file(&full).map_err(io("undo a change", &full))?;
    }
    let mut paths: Vec<Vec<u8>> = present.into_iter().chain(unsure).collect();
    let tree_of = |id: Oid| {
        repo.find_commit(id)
            .and_then(|c| c.tree())
            .map_err(git("read commit", path))
    };
    let new_tree = tree_of(commit)?;
    if previous != commit {
        let old_tree = tree_of(previous)?;
        let diff = repo
            .diff_tree_to_tree(Some(&old_tree), Some(&new_tree), None)
            .map_err(git("diff commits", path))?;
        for delta in diff.deltas() {
            for file in [delta.old_file(), delta.new_file()] {
                if let Some(p) = file.path_bytes() {
                    paths.push(p.to_vec());
                }
            }
        }
    }
    paths.sort();
    paths.dedup();
    // The agent may have rewritten the workspace's index: libgit2 starts from the kept one.
    let index_file = repo.path().join("index");
    std::fs::copy(index_path, &index_file).map_err(io("restore index", &index_file))?;
    repo.set_head_detached(commit)
        .map_err(git("detach HEAD", path))?;
    if paths.is_empty() {
        return Ok(());
    }
    let mut checkout = CheckoutBuilder::new();
    checkout
        .force()
        .remove_untracked(true)
        .remove_ignored(true)
        .disable_pathspec_match(true);
    for p in &paths {
        checkout.path(p.as_slice());
    }
    repo.checkout_tree(new_tree.as_object(), Some(&mut checkout))
        .map_err(git("check out", path))?;
    // Same index repair as a full checkout, for the paths touched.
    let mut index = repo.index().map_err(git("open index", path))?;
    index.read(true).map_err(git("read index", path))?;
    for p in &paths {
        let rel = Path::new(std::ffi::OsStr::from_bytes(p));
        match new_tree.get_path(rel) {
            Ok(entry) if entry.kind() == Some(ObjectType::Blob) => {
                if index.get_path(rel, 0).is_none_or(|e| e.id != entry.id()) {
                    index.add_path(rel).map_err(git("index a path", path))?;
                }
            }
            _ => {
                let _ = index.remove_path(rel);
            }
        }
    }
    index.write().map_err(git("write index", path))?;
    std::fs::copy(&index_file, index_path).map_err(io("keep index", index_path))?;
    Ok(())
}

/// The work-tree paths that may differ from the kept index: first those that do — files
/// whose type, size, inode or modification time differ from what the index recorded, and
/// files it does not list (ignored ones included) — then those whose content must be
/// compared: files written no earlier than the index (equal stat data proves nothing
/// then), and files the index lists that are gone. Read with plain `lstat`s, never following a link: cheaper than libgit2's
/// status walk, and the one libgit2 then makes is limited to these paths.
fn changed_paths(
    root: &Path,
    index_path: &Path,
    expected: &Recorded,
) -> Result<Found, WorkspaceError> {
    use std::os::unix::fs::MetadataExt;
    let stamp = std::fs::metadata(index_path).map_err(io("read kept index", index_path))?;
    let stamp = (stamp.mtime(), stamp.mtime_nsec());
    // The top level is read here; its directories are walked on every core, since a stat
    // costs microseconds here and a work tree holds thousands of files.
    let mut top = Scan::default();
    let mut dirs = Vec::new();
    let entries = std::fs::read_dir(root).map_err(io("list work tree", root))?;
    for entry in entries {
        let entry = entry.map_err(io("list work tree", root))?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        top.visit(entry, Vec::new(), expected, stamp, &mut dirs)?;
    }
    let lanes = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(dirs.len().max(1));
    let mut shares: Vec<Vec<(PathBuf, Vec<u8>)>> = (0..lanes).map(|_| Vec::new()).collect();
    for (i, dir) in dirs.into_iter().enumerate() {
        shares[i % lanes].push(dir);
    }
    let walk = |share: &[(PathBuf, Vec<u8>)]| -> Result<Scan, WorkspaceError> {
        let mut scan = Scan::default();
        let mut stack = share.to_vec();
        while let Some((dir, prefix)) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(io("list work tree", &dir))?;
            for entry in entries {
                let entry = entry.map_err(io("list work tree", &dir))?;
                scan.visit(entry, prefix.clone(), expected, stamp, &mut stack)?;
            }
        }
        Ok(scan)
    };
    let mut scans = vec![top];
    std::thread::scope(|scope| -> Result<(), WorkspaceError> {
        let handles: Vec<_> = shares[1..]
            .iter()
            .map(|share| {
                std::thread::Builder::new()
                    .spawn_scoped(scope, || walk(share))
                    .map_err(|_| share)
            })
            .collect();
        scans.push(walk(&shares[0])?);
        for handle in handles {
            scans.push(match handle {
                Ok(handle) => handle.join().map_err(|_| WorkspaceError::Io {
                    op: "scan work tree",
                    path: root.to_owned(),
                    source: std::io::Error::other("a scanning thread panicked"),
                })??,
                // No thread to be had (the process is at its limit): this one walks it.
                Err(share) => walk(share)?,
            });
        }
        Ok(())
    })?;
    let mut differ = Vec::new();
    let mut unsure = Vec::new();
    let mut seen = HashSet::new();
    for scan in scans {
        differ.extend(scan.differ);
        unsure.extend(scan.racy);
        seen.extend(scan.seen);
    }
    unsure.extend(expected.keys().filter(|p| !seen.contains(*p)).cloned());
    Ok((differ, unsure))
}

/// Where [`Workspace::change`] leaves its scan for the next checkout of the slot.
fn scan_path(index_path: &Path) -> PathBuf {
    index_path.with_extension("scan")
}

/// Writes a scan: each path NUL-terminated, behind `D` (differs) or `U` (to compare). A
/// scan that cannot be written is simply not reused.
fn keep_scan(path: &Path, differ: &[Vec<u8>], unsure: &[Vec<u8>]) {
    let mut out = Vec::new();
    for (mark, paths) in [(b'D', differ), (b'U', unsure)] {
        for p in paths {
            out.push(mark);
            out.extend_from_slice(p);
            out.push(0);
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let written = tempfile::NamedTempFile::new_in(dir).and_then(|mut tmp| {
        std::io::Write::write_all(&mut tmp, &out)?;
        tmp.persist(path).map_err(|e| e.error)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
}

/// Reads and removes the scan [`Workspace::change`] left, if any: it describes the work
/// tree only until the next checkout.
fn take_scan(path: &Path) -> Option<Found> {
    let bytes = std::fs::read(path).ok()?;
    std::fs::remove_file(path).ok()?;
    let (mut differ, mut unsure) = (Vec::new(), Vec::new());
    for record in bytes.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        match record.split_first()? {
            (b'D', p) => differ.push(p.to_vec()),
            (b'U', p) => unsure.push(p.to_vec()),
            _ => return None,
        }
    }
    Some((differ, unsure))
}

/// Work-tree paths (bytes, `/`-separated) that differ, and those whose content must be
/// compared.
type Found = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// The kept index's stat data, by path.
type Recorded = std::collections::HashMap<Vec<u8>, Entry>;

/// The kept index's stat data of each slot, read once per version of the file (a no-op
/// attempt does not parse the index at all).
#[derive(Debug, Clone, Default)]
struct RecordedCache(std::sync::Arc<std::sync::Mutex<RecordedBySlot>>);

/// The cache's content: each kept index's stamp and stat data.
type RecordedBySlot = std::collections::HashMap<PathBuf, (IndexStamp, std::sync::Arc<Recorded>)>;

/// What identifies one version of the kept index file.
type IndexStamp = (i64, i64, u64, u64);

impl RecordedCache {
    /// The stat data of the kept index at `index_path`, parsed only when the file changed.
    fn get(&self, index_path: &Path) -> Result<std::sync::Arc<Recorded>, WorkspaceError> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(index_path).map_err(io("read kept index", index_path))?;
        let stamp = (meta.mtime(), meta.mtime_nsec(), meta.len(), meta.ino());
        let mut cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, recorded)) = cache.get(index_path)
            && *at == stamp
        {
            return Ok(std::sync::Arc::clone(recorded));
        }
        let index = Index::open(index_path).map_err(git("read kept index", index_path))?;
        let recorded: Recorded = index
            .iter()
            .map(|e| {
                let entry = Entry {
                    mode: e.mode,
                    size: e.file_size,
                    ino: e.ino,
                    seconds: e.mtime.seconds(),
                    nanoseconds: e.mtime.nanoseconds(),
                };
                (e.path, entry)
            })
            .collect();
        let recorded = std::sync::Arc::new(recorded);
        cache.insert(
            index_path.to_owned(),
            (stamp, std::sync::Arc::clone(&recorded)),
        );
        Ok(recorded)
    }
}

/// What the kept index recorded of a file.
#[derive(Debug, Clone, Copy)]
struct Entry {
    mode: u32,
    size: u32,
    ino: u32,
    seconds: i32,
    nanoseconds: u32,
}

/// What one lane of [`changed_paths`] found.
#[derive(Debug, Default)]
struct Scan {
    differ: Vec<Vec<u8>>,
    racy: Vec<Vec<u8>>,
    seen: Vec<Vec<u8>>,
}

impl Scan {
    /// Looks at one directory entry: a directory goes to `dirs`, a file is compared.
    fn visit(
        &mut self,
        entry: std::fs::DirEntry,
        mut rel: Vec<u8>,
        expected: &Recorded,
        stamp: (i64, i64),
        dirs: &mut Vec<(PathBuf, Vec<u8>)>,
    ) -> Result<(), WorkspaceError> {
        use std::os::unix::fs::MetadataExt;
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(entry.file_name().as_encoded_bytes());
        let kind = entry
            .file_type()
            .map_err(io("stat work tree", &entry.path()))?;
        if kind.is_dir() {
            dirs.push((entry.path(), rel));
            return Ok(());
        }
        // `DirEntry::metadata` is an `fstatat` beside the directory, never following a
        // link: no path walk per file.
        let meta = entry
            .metadata()
            .map_err(io("stat work tree", &entry.path()))?;
        let same = expected.get(&rel).is_some_and(|e| {
            let mode = if meta.file_type().is_symlink() {
                0o120000
            } else if meta.mode() & 0o100 != 0 {
                0o100755
            } else {
                0o100644
            };
            e.mode == mode
                && u64::from(e.size) == (meta.size() & 0xffff_ffff)
                && u64::from(e.ino) == (meta.ino() & 0xffff_ffff)
                && i64::from(e.seconds) == meta.mtime()
                && (e.nanoseconds == 0 || i64::from(e.nanoseconds) == meta.mtime_nsec())
        });
        if !same {
            self.differ.push(rel.clone());
        } else if (meta.mtime(), meta.mtime_nsec()) >= stamp {
            // Written no earlier than the index: equal stat data proves nothing.
            self.racy.push(rel.clone());
        }
        if expected.contains_key(&rel) {
            self.seen.push(rel);
        }
        Ok(())
    }
}

impl Workspace {
    /// The workspace's directory (its work tree).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The commit checked out.
    pub fn commit(&self) -> Oid {
        self.commit
    }

    /// The change made in the work tree since the checkout, as a git-format diff (new,
    /// modified, deleted and renamed files, mode changes; binary files appear as
    /// `Binary files … differ`, which the patch policy refuses), or `None` when nothing
    /// changed. What the agent staged or committed in the workspace does not matter: the
    /// work tree is compared with the commit, through an index kept outside the workspace.
    ///
    /// # Errors
    /// git and I/O errors, naming the workspace.
    pub fn change(&self) -> Result<Option<String>, WorkspaceError> {
        self.read_change(false)
    }

    /// [`Workspace::change`] at the end of an attempt: the caller promises that nothing
    /// writes the work tree until the next [`Workspaces::checkout`] of this slot, which
    /// then starts from this scan instead of walking the work tree again (each walk costs
    /// a `stat` per file).
    ///
    /// # Errors
    /// As [`Workspace::change`].
    pub fn finish(self) -> Result<Option<String>, WorkspaceError> {
        self.read_change(true)
    }

    fn read_change(&self, keep: bool) -> Result<Option<String>, WorkspaceError> {
        // The kept index is the commit's tree with the stat data of the checkout: libgit2
        // compares only the paths whose stat data says they may have changed.
        let recorded = self.recorded.get(&self.index_path)?;
        let (present, unsure) = changed_paths(&self.path, &self.index_path, &recorded)?;
        if keep {
            keep_scan(&scan_path(&self.index_path), &present, &unsure);
        }
        let paths: Vec<Vec<u8>> = present.into_iter().chain(unsure).collect();
        if paths.is_empty() {
            return Ok(None);
        }
        // libgit2 also reads the workspace's own index, which the agent may have broken.
        let own = self.path.join(".git/index");
        std::fs::copy(&self.index_path, &own).map_err(io("restore index", &own))?;
        let repo = self.open()?;
        let index = Index::open(&self.index_path).map_err(git("read kept index", &self.path))?;
        let mut opts = diff_options();
        opts.disable_pathspec_match(true);
        for p in &paths {
            opts.pathspec(p.as_slice());
        }
        let diff = repo
            .diff_index_to_workdir(Some(&index), Some(&mut opts))
            .map_err(git("diff work tree", &self.path))?;
        patch_text(diff, &self.path)
    }

    /// The work tree's difference from `commit` (which must be in the workspace: the
    /// base or tip refs, or the commit checked out), as [`Workspace::change`] formats it.
    /// Every file is compared, so this reads the whole work tree.
    ///
    /// # Errors
    /// git and I/O errors, naming the workspace.
    pub fn change_since(&self, commit: Oid) -> Result<Option<String>, WorkspaceError> {
        let repo = self.open()?;
        let tree = repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(git("read commit", &self.path))?;
        let diff = repo
            .diff_tree_to_workdir(Some(&tree), Some(&mut diff_options()))
            .map_err(git("diff work tree", &self.path))?;
        patch_text(diff, &self.path)
    }

    fn open(&self) -> Result<Repository, WorkspaceError> {
        let path = &self.path;
        let repo = Repository::open_ext(
            path.join(".git"),
            RepositoryOpenFlags::NO_SEARCH,
            &[] as &[&str],
        )
        .map_err(git("open workspace", path))?;
        repo.set_workdir(path, false)
            .map_err(git("set workspace work tree", path))?;
        Ok(repo)
    }
}

fn diff_options() -> DiffOptions {
    let mut opts = DiffOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .show_untracked_content(true)
        .include_typechange(true);
    opts
}

/// A diff as git-format patch text, renames found; `None` when empty.
fn patch_text(mut diff: git2::Diff<'_>, path: &Path) -> Result<Option<String>, WorkspaceError> {
    if diff.deltas().len() == 0 {
        return Ok(None);
    }
    let mut find = DiffFindOptions::new();
    find.renames(true).for_untracked(true);
    diff.find_similar(Some(&mut find))
        .map_err(git("find renames", path))?;
    let mut text = Vec::new();
    diff.print(DiffFormat::Patch, |_, _, line| {
        if matches!(line.origin(), '+' | '-' | ' ') {
            text.push(line.origin() as u8);
        }
        text.extend_from_slice(line.content());
        true
    })
    .map_err(git("print diff", path))?;
    match String::from_utf8(text) {
        Ok(text) if !text.is_empty() => Ok(Some(text)),
        Ok(_) => Ok(None),
        // Replacing the bytes would change the file behind the agent's back.
        Err(_) => Err(WorkspaceError::NotText {
            path: path.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Host {
        _dir: tempfile::TempDir,
        repo: Repository,
    }

    fn host() -> Host {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path().join("host")).unwrap();
        Host { _dir: dir, repo }
    }

    impl Host {
        /// Commits `files` on top of `parent` (no ref moved unless `main`).
        fn commit(&self, parent: Option<Oid>, files: &[(&str, &str)], main: bool) -> Oid {
            let base = parent.map(|p| self.repo.find_commit(p).unwrap().tree().unwrap());
            let mut tb = self.repo.treebuilder(base.as_ref()).unwrap();
            for (path, content) in files {
                let blob = self.repo.blob(content.as_bytes()).unwrap();
                tb.insert(path, blob, 0o100644).unwrap();
            }
            let tree = self.repo.find_tree(tb.write().unwrap()).unwrap();
            let sig =
                git2::Signature::new("t", "t@example.invalid", &git2::Time::new(1_700_000_000, 0))
                    .unwrap();
            let parents: Vec<git2::Commit<'_>> = parent
                .iter()
                .map(|p| self.repo.find_commit(*p).unwrap())
                .collect();
            let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
            self.repo
                .commit(
                    main.then_some("refs/heads/main"),
                    &sig,
                    &sig,
                    "c",
                    &tree,
                    &refs,
                )
                .unwrap()
        }
    }

    #[test]
    fn a_reused_workspace_follows_the_tip_and_reports_only_the_agents_change() {
        let h = host();
        let c1 = h.commit(None, &[("a", "1\n")], true);
        let parent = tempfile::tempdir().unwrap();
        let run = RunId::new("r").unwrap();
        let wss = Workspaces::open(h.repo.workdir().unwrap(), &run, parent.path()).unwrap();
        let ws = wss.checkout(Slot::Builder, c1, &[]).unwrap();
        assert_eq!(ws.change().unwrap(), None);
        std::fs::write(ws.path().join("b"), "2\n").unwrap();
        std::fs::write(ws.path().join("junk"), "x\n").unwrap();
        assert!(ws.change().unwrap().unwrap().contains("+++ b/b"));
        // A candidate that is on no ref of the host: its objects are copied over.
        let c2 = h.commit(Some(c1), &[("b", "2\n")], false);
        let ws = wss.checkout(Slot::Auditor, c2, &[(refs::TIP, c1)]).unwrap();
        let opened = Repository::open(ws.path()).unwrap();
        assert_eq!(
            opened.refname_to_id(refs::TIP).unwrap(),
            c1,
            "the tip beside it"
        );
        assert_eq!(
            ws.change_since(c1)
                .unwrap()
                .unwrap()
                .matches("diff --git")
                .count(),
            1
        );
        let ws = wss.checkout(Slot::Builder, c2, &[]).unwrap();
        assert_eq!(
            ws.change().unwrap(),
            None,
            "untracked junk is cleaned, b is committed"
        );
        assert!(!ws.path().join("junk").exists());
        std::fs::remove_file(ws.path().join("a")).unwrap();
        let change = ws.change().unwrap().unwrap();
        assert!(change.contains("deleted file mode"), "{change}");
    }

    /// Every file of the work tree (but `.git`) and its mode.
    fn files(root: &Path) -> std::collections::BTreeMap<String, (u32, Vec<u8>)> {
        use std::os::unix::fs::PermissionsExt;
        let mut out = std::collections::BTreeMap::new();
        let mut stack = vec![root.to_owned()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let e = e.unwrap();
                let rel = e
                    .path()
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if rel == ".git" {
                    continue;
                }
                let meta = std::fs::symlink_metadata(e.path()).unwrap();
                if meta.is_dir() {
                    stack.push(e.path());
                } else if meta.file_type().is_symlink() {
                    out.insert(rel, (0o120000, Vec::new()));
                } else {
                    let exec = meta.permissions().mode() & 0o100;
                    out.insert(rel, (exec, std::fs::read(e.path()).unwrap()));
                }
            }
        }
        out
    }

    #[test]
    fn a_reset_undoes_whatever_the_last_attempt_did_and_touches_nothing_else() {
        let h = host();
        let many: Vec<(String, String)> = (0..50)
            .map(|i| (format!("f{i}"), format!("{i}\n")))
            .collect();
        let refs: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let c1 = h.commit(None, &refs, true);
        let c2 = h.commit(Some(c1), &[("f1", "changed\n"), ("new", "n\n")], false);
        let parent = tempfile::tempdir().unwrap();
        let run = RunId::new("r").unwrap();
        let wss = Workspaces::open(h.repo.workdir().unwrap(), &run, parent.path()).unwrap();
        let ws = wss.checkout(Slot::Builder, c1, &[]).unwrap();
        let clean_c1 = files(ws.path());
        let untouched = std::fs::metadata(ws.path().join("f40")).unwrap();
        // Everything an agent may do to a work tree.
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(ws.path().join("f2"), "edited\n").unwrap();
        std::fs::remove_file(ws.path().join("f3")).unwrap();
        std::fs::write(ws.path().join("untracked"), "u\n").unwrap();
        std::fs::create_dir_all(ws.path().join("deep/er")).unwrap();
        std::fs::write(ws.path().join("deep/er/x"), "x\n").unwrap();
        std::fs::write(ws.path().join(".gitignore"), "ignored\n").unwrap();
        std::fs::write(ws.path().join("ignored"), "i\n").unwrap();
        std::fs::set_permissions(ws.path().join("f4"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::remove_file(ws.path().join("f5")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", ws.path().join("f5")).unwrap();
        let change = ws.change().unwrap().unwrap();
        for needle in [
            "+++ b/f2",
            "deleted file mode",
            "+++ b/untracked",
            "+++ b/deep/er/x",
            "new mode 100755",
            "b/f5",
        ] {
            assert!(change.contains(needle), "{needle} in {change}");
        }
        assert!(!change.contains("b/ignored"), "{change}");
        // Back to the same commit: exactly its files, and an untouched file not rewritten.
        let ws = wss.checkout(Slot::Builder, c1, &[]).unwrap();
        assert_eq!(files(ws.path()), clean_c1);
        assert_eq!(ws.change().unwrap(), None);
        let again = std::fs::metadata(ws.path().join("f40")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            (again.ino(), again.mtime_nsec()),
            (untouched.ino(), untouched.mtime_nsec())
        );
        // On to the next commit, after another edit.
        std::fs::write(ws.path().join("f6"), "edited\n").unwrap();
        let ws = wss.checkout(Slot::Builder, c2, &[]).unwrap();
        let mut want = clean_c1.clone();
        want.insert("f1".into(), (0, b"changed\n".to_vec()));
        want.insert("new".into(), (0, b"n\n".to_vec()));
        assert_eq!(files(ws.path()), want);
        assert_eq!(ws.change().unwrap(), None);
        // An agent that rewrites the workspace's own index changes nothing either.
        std::fs::write(ws.path().join(".git/index"), b"garbage").unwrap();
        std::fs::write(ws.path().join("f7"), "edited\n").unwrap();
        assert!(ws.change().unwrap().unwrap().contains("+++ b/f7"));
        let ws = wss.checkout(Slot::Builder, c2, &[]).unwrap();
        assert_eq!(files(ws.path()), want);
    }

    #[test]
    fn a_finished_attempt_hands_its_scan_to_the_next_checkout() {
        let h = host();
        let c1 = h.commit(None, &[("a", "1\n"), ("b", "2\n")], true);
        let parent = tempfile::tempdir().unwrap();
        let run = RunId::new("r").unwrap();
        let wss = Workspaces::open(h.repo.workdir().unwrap(), &run, parent.path()).unwrap();
        let ws = wss.checkout(Slot::Builder, c1, &[]).unwrap();
        let clean = files(ws.path());
        std::fs::write(ws.path().join("a"), "edited\n").unwrap();
        std::fs::write(ws.path().join("c"), "new\n").unwrap();
        let patch = ws.finish().unwrap().unwrap();
        assert!(
            patch.contains("+++ b/a") && patch.contains("+++ b/c"),
            "{patch}"
        );
        assert!(wss.dir().join("builder.scan").exists());
        // The next checkout undoes exactly what the scan found, and uses it up.
        let ws = wss.checkout(Slot::Builder, c1, &[]).unwrap();
        assert_eq!(files(ws.path()), clean);
        assert!(!wss.dir().join("builder.scan").exists());
        assert_eq!(ws.change().unwrap(), None);
    }

    #[test]
    fn a_workspace_whose_git_dir_an_agent_tampered_with_is_cloned_anew() {
        let h = host();
        let c1 = h.commit(None, &[("a", "1\n")], true);
        let parent = tempfile::tempdir().unwrap();
        let run = RunId::new("r").unwrap();
        let wss = Workspaces::open(h.repo.workdir().unwrap(), &run, parent.path()).unwrap();
        let ws = wss.checkout(Slot::Builder, c1, &[]).unwrap();
        let git_dir = ws.path().join(".git");
        // An agent points the workspace at the host: a commondir, a symlinked HEAD, a hook.
        std::fs::write(
            git_dir.join("commondir"),
            h.repo.path().display().to_string(),
        )
        .unwrap();
        std::fs::create_dir_all(git_dir.join("hooks")).unwrap();
        std::fs::write(git_dir.join("hooks/post-checkout"), "#!/bin/sh\n").unwrap();
        let ws = wss.checkout(Slot::Builder, c1, &[]).unwrap();
        assert!(!git_dir.join("commondir").exists() && !git_dir.join("hooks").exists());
        std::os::unix::fs::symlink(h.repo.path().join("HEAD"), git_dir.join("ORIG_HEAD")).unwrap();
        let ws2 = wss.checkout(Slot::Builder, c1, &[]).unwrap();
        assert!(std::fs::symlink_metadata(git_dir.join("ORIG_HEAD")).is_err());
        assert_eq!(ws2.change().unwrap(), None);
        let _ = ws;
    }

    #[test]
    fn workspaces_inside_the_host_work_tree_or_in_use_are_refused() {
        let h = host();
        h.commit(None, &[("a", "1\n")], true);
        let run = RunId::new("r").unwrap();
        let inside = h.repo.workdir().unwrap().join("ws");
        assert!(matches!(
            Workspaces::open(h.repo.workdir().unwrap(), &run, &inside),
            Err(WorkspaceError::InsideHost { .. })
        ));
        let parent = tempfile::tempdir().unwrap();
        let held = Workspaces::open(h.repo.workdir().unwrap(), &run, parent.path()).unwrap();
        assert!(matches!(
            Workspaces::open(h.repo.workdir().unwrap(), &run, parent.path()),
            Err(WorkspaceError::Busy { .. })
        ));
        // A held folder is not reclaimed; a released one is.
        assert!(Workspaces::reclaim_stale(parent.path()).unwrap().is_empty());
        let dir = held.dir().to_owned();
        drop(held);
        assert_eq!(Workspaces::reclaim_stale(parent.path()).unwrap(), vec![dir]);
    }
}
