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

mod scan;

use scan::{RecordedCache, changed_paths, keep_scan, scan_path, take_scan};

/// Refs written in a workspace beside its detached HEAD, so that an agent can diff.
pub mod refs {
    /// The commit the run's integration branch started from.
    pub const BASE: &str = "refs/autopack/base";
    /// The integration branch's tip when the workspace was checked out.
    pub const TIP: &str = "refs/autopack/tip";
}

/// Errors of [`Workspaces`] and [`Workspace`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// [`WorkspaceError::Busy`] when another process holds the lock for more than 30 s
    /// (a reclaimer holds it only while it removes a dead run's folder), I/O and git
    /// errors.
    pub fn open(host: &Path, run_id: &RunId, parent: &Path) -> Result<Workspaces, WorkspaceError> {
        Workspaces::open_waiting(host, run_id, parent, RECLAIM_WAIT)
    }

    /// [`Workspaces::open`], waiting at most `wait` for the folder's lock (which another
    /// run's [`Workspaces::reclaim_stale`] may hold for a moment).
    ///
    /// # Errors
    /// As [`Workspaces::open`].
    pub fn open_waiting(
        host: &Path,
        run_id: &RunId,
        parent: &Path,
        wait: std::time::Duration,
    ) -> Result<Workspaces, WorkspaceError> {
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
        // Another run's `reclaim_stale` may hold the lock for a moment while it removes
        // this folder (left by a writer of this run that died): wait for it. A live
        // writer of this run is kept out by the run's lease, so a lock held longer is a
        // process that outlived its run.
        let waited = std::time::Instant::now();
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if waited.elapsed() < wait => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
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
                // The lock file stays: removing it while another process waits on it
                // would let that process and a third one lock two different files.
                remove_dir(&path)?;
                removed.push(path);
            }
        }
        Ok(removed)
    }
}

/// How long [`Workspaces::open`] waits for a reclaimer that holds the folder's lock.
const RECLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

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
    // Whatever a link in the work tree points at, libgit2 may write through it (a tracked
    // link becoming a file is opened and truncated, not replaced); the checkout recreates
    // the commit's links.
    remove_links_under(path, path)?;
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

/// Removes the links on the way to `rel` under `root` (its directories and the path
/// itself, never following one), recording each removed link's path in `removed`.
fn remove_links_on(
    root: &Path,
    rel: &[u8],
    removed: &mut Vec<Vec<u8>>,
) -> Result<(), WorkspaceError> {
    let mut end = 0;
    loop {
        let next = rel[end..]
            .iter()
            .position(|b| *b == b'/')
            .map_or(rel.len(), |i| end + i);
        let prefix = &rel[..next];
        let full = root.join(std::ffi::OsStr::from_bytes(prefix));
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                std::fs::remove_file(&full).map_err(io("remove a link", &full))?;
                removed.push(prefix.to_vec());
                return Ok(());
            }
            Ok(meta) if meta.is_dir() && next < rel.len() => end = next + 1,
            // A file or nothing: nothing below it can be reached through a link.
            _ => return Ok(()),
        }
    }
}

/// Removes every link in the work tree under `dir` (not `.git`), never following one.
fn remove_links_under(root: &Path, dir: &Path) -> Result<(), WorkspaceError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("list work tree", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io("list work tree", dir))?;
        let full = entry.path();
        if dir == root && entry.file_name() == ".git" {
            continue;
        }
        let kind = entry.file_type().map_err(io("list work tree", &full))?;
        if kind.is_symlink() {
            std::fs::remove_file(&full).map_err(io("remove a link", &full))?;
        } else if kind.is_dir() {
            remove_links_under(root, &full)?;
        }
    }
    Ok(())
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
    // Never write through a link: every link on the way to a path that changes is removed
    // first (libgit2 opens a tracked link that becomes a file and writes through it, and a
    // directory an agent replaced by a link would take the new files). A removed link is
    // checked out again, so one the commit keeps comes back as the commit has it.
    let mut removed = Vec::new();
    for p in &paths {
        remove_links_on(path, p, &mut removed)?;
    }
    if !removed.is_empty() {
        paths.extend(removed);
        paths.sort();
        paths.dedup();
    }
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
        .show_untracked_content(true);
    // No TYPECHANGE records: libgit2 prints one (a symlink turned into a file) as a
    // single section its own patch parser refuses; without them a type change is a
    // deletion and an addition of the path, as `git diff` writes it.
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
mod tests;
