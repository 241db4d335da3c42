//! The filesystem primitives every adapter of this crate uses: atomic writes, exclusive
//! advisory locks and strict JSON reading.
//!
//! - [`write_atomic`] writes a temporary file beside the target, fsyncs it, renames it over
//!   the target and fsyncs the directory (the `atomic-write-file` crate does the dance), so
//!   a reader — or a process restarted after a crash — sees the old content or the new,
//!   never a mix. Missing parent directories are created, and their own parents fsynced.
//! - [`write_batch_atomic`] writes several files and then a commit point naming them
//!   (the issue store's checkpoint) with the same per-file guarantees but fewer sequential
//!   fsyncs: the temporary files are fsynced together, then renamed, then every directory
//!   touched is fsynced once, and only then is the commit point renamed and its directory
//!   fsynced.
//! - [`FileLock`] holds an exclusive advisory lock (`flock` via [`std::fs::File::lock`])
//!   on a `.lock` sibling of the file it guards; every read-modify-write of this crate
//!   holds one, so writers in several processes (or threads) lose nothing. The lock file
//!   is left in place: deleting it would race with a process about to lock it.
//! - [`read_json`] reads a file and parses it with [`autopack_core::json::from_str`], so a
//!   corrupt or truncated file is an error naming the file, the JSON path, the line and the
//!   column; it is never replaced silently.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use atomic_write_file::AtomicWriteFile;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{LayoutError, Result};

/// Writes `bytes` to `path` atomically and durably (write, fsync, rename, fsync dir).
///
/// # Errors
/// [`LayoutError::Io`] naming the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        ensure_dir(parent)?;
    }
    let mut file =
        AtomicWriteFile::open(path).map_err(|e| LayoutError::io("open for writing", path, e))?;
    file.write_all(bytes)
        .map_err(|e| LayoutError::io("write", path, e))?;
    file.commit()
        .map_err(|e| LayoutError::io("commit", path, e))
}

/// Fsyncs every file of `files` at once (one thread each but the first), so that the
/// filesystem can commit them together instead of one after another.
fn sync_files_together(files: &[(&File, &Path)]) -> Result<()> {
    fn one(file: &File, path: &Path) -> Result<()> {
        file.sync_all()
            .map_err(|e| LayoutError::io("sync", path, e))
    }
    match files {
        [] => Ok(()),
        [(file, path)] => one(file, path),
        [(first, first_path), rest @ ..] => std::thread::scope(|scope| {
            let handles: Vec<_> = rest
                .iter()
                .map(|&(file, path)| scope.spawn(move || one(file, path)))
                .collect();
            let mut result = one(first, first_path);
            for (handle, &(_, path)) in handles.into_iter().zip(rest) {
                let joined = handle.join().unwrap_or_else(|_| {
                    Err(LayoutError::io(
                        "sync",
                        path,
                        io::Error::other("sync thread panicked"),
                    ))
                });
                if result.is_ok() {
                    result = joined;
                }
            }
            result
        }),
    }
}

/// A file written to a temporary sibling, waiting to be renamed over its target.
struct Staged {
    target: PathBuf,
    tmp: PathBuf,
    file: File,
}

impl Staged {
    fn new(target: &Path, bytes: &[u8]) -> Result<Staged> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let parent = parent_of(target);
        ensure_dir(parent)?;
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        loop {
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = parent.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(file) => {
                    let staged = Staged {
                        target: target.to_owned(),
                        tmp,
                        file,
                    };
                    let written = (&staged.file).write_all(bytes);
                    if let Err(e) = written {
                        let _ = fs::remove_file(&staged.tmp);
                        return Err(LayoutError::io("write", target, e));
                    }
                    return Ok(staged);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(LayoutError::io("open for writing", &tmp, e)),
            }
        }
    }

    fn rename(&self) -> Result<()> {
        fs::rename(&self.tmp, &self.target).map_err(|e| LayoutError::io("rename", &self.target, e))
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes several files atomically and durably, `last` strictly after all of `files`
/// (a commit point naming them), with as few sequential fsyncs as possible:
///
/// 1. every file is written to a temporary sibling; the temporary files (and `also_sync`,
///    e.g. a journal the commit point covers) are fsynced together;
/// 2. each of `files` is renamed over its target, and each directory touched is fsynced
///    once (the directories together);
/// 3. `last` is renamed over its target and its directory fsynced.
///
/// Each file is atomic (a reader sees the old content or the new), and once `last` is
/// durable so are all of `files`. On error the temporary files are removed.
///
/// # Errors
/// [`LayoutError::Io`] naming the file.
pub fn write_batch_atomic(
    files: &[(PathBuf, Vec<u8>)],
    last: (&Path, &[u8]),
    also_sync: Option<(&File, &Path)>,
) -> Result<()> {
    let mut staged = Vec::with_capacity(files.len() + 1);
    let result = write_batch_staged(files, last, also_sync, &mut staged);
    // An injected crash leaves its temporary files behind, as a real one would.
    if result.is_err() && !fail::injected() {
        for s in &staged {
            let _ = fs::remove_file(&s.tmp);
        }
    }
    result
}

fn write_batch_staged(
    files: &[(PathBuf, Vec<u8>)],
    last: (&Path, &[u8]),
    also_sync: Option<(&File, &Path)>,
    staged: &mut Vec<Staged>,
) -> Result<()> {
    for (path, bytes) in files {
        fail::step(path)?;
        staged.push(Staged::new(path, bytes)?);
    }
    fail::step(last.0)?;
    staged.push(Staged::new(last.0, last.1)?);
    let mut to_sync: Vec<(&File, &Path)> = staged
        .iter()
        .map(|s| (&s.file, s.target.as_path()))
        .collect();
    to_sync.extend(also_sync);
    sync_files_together(&to_sync)?;
    let (last_staged, views) = match staged.split_last() {
        Some(split) => split,
        None => return Ok(()),
    };
    let mut dirs: Vec<&Path> = Vec::new();
    for view in views {
        fail::step(&view.target)?;
        view.rename()?;
        let dir = parent_of(&view.target);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    let handles = dirs
        .iter()
        .map(|dir| File::open(dir).map_err(|e| LayoutError::io("open directory", dir, e)))
        .collect::<Result<Vec<File>>>()?;
    let pairs: Vec<(&File, &Path)> = handles.iter().zip(dirs.iter().copied()).collect();
    sync_files_together(&pairs)?;
    fail::step(&last_staged.target)?;
    last_staged.rename()?;
    sync_dir(parent_of(&last_staged.target))
}

/// Writes several files, each atomically (a reader sees its old content or its new), with
/// one fsync latency: the temporary files and `also_sync` (e.g. a journal) are fsynced
/// together, then renamed over their targets in order. The directories are not fsynced:
/// after a power loss some of the renames may be undone, each such file keeping its old
/// content, never a mix. That suits files whose agreement is checked when they are read
/// (the issue store's views against its manifest, both rebuilt from a journal when they
/// disagree), where [`write_batch_atomic`]'s ordering would cost two more fsync rounds.
///
/// # Errors
/// [`LayoutError::Io`] naming the file; on error the temporary files are removed.
pub fn write_batch_renamed(
    files: &[(PathBuf, Vec<u8>)],
    also_sync: Option<(&File, &Path)>,
) -> Result<()> {
    let mut staged = Vec::with_capacity(files.len());
    let result = (|| {
        for (path, bytes) in files {
            fail::step(path)?;
            staged.push(Staged::new(path, bytes)?);
        }
        let mut to_sync: Vec<(&File, &Path)> = staged
            .iter()
            .map(|s| (&s.file, s.target.as_path()))
            .collect();
        to_sync.extend(also_sync);
        sync_files_together(&to_sync)?;
        for file in &staged {
            fail::step(&file.target)?;
            file.rename()?;
        }
        Ok(())
    })();
    if result.is_err() && !fail::injected() {
        for s in &staged {
            let _ = fs::remove_file(&s.tmp);
        }
    }
    result
}

/// Crash injection for tests: a write of [`write_batch_atomic`] fails at an armed step
/// (each temporary file written and each rename is a step), as if the process died there.
pub(crate) mod fail {
    use std::path::Path;

    use crate::error::{LayoutError, Result};

    // Unarmed outside tests: one thread-local read per step.
    thread_local! {
        static ARMED: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
        static FIRED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Fails the `steps`-th step from now (0: the next), on this thread.
    #[cfg(test)]
    pub(crate) fn arm(steps: Option<usize>) {
        ARMED.with(|a| a.set(steps));
        FIRED.with(|f| f.set(false));
    }

    /// Whether the armed step was reached.
    pub(crate) fn injected() -> bool {
        FIRED.with(std::cell::Cell::get)
    }

    pub(crate) fn step(path: &Path) -> Result<()> {
        {
            let hit = ARMED.with(|a| match a.get() {
                Some(0) => {
                    a.set(None);
                    true
                }
                Some(n) => {
                    a.set(Some(n - 1));
                    false
                }
                None => false,
            });
            if hit {
                FIRED.with(|f| f.set(true));
                return Err(LayoutError::io(
                    "injected crash before",
                    path,
                    std::io::Error::other("injected crash"),
                ));
            }
        }
        Ok(())
    }
}

/// Serialises `value` as pretty JSON (with a trailing newline) and writes it atomically.
///
/// # Errors
/// [`LayoutError::Serialize`] or [`LayoutError::Io`].
pub fn write_json_atomic<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| LayoutError::Serialize {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Reads `path` as text; `None` when it does not exist.
///
/// # Errors
/// [`LayoutError::Io`] for any other failure (including invalid UTF-8).
pub fn read_text(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LayoutError::io("read", path, e)),
    }
}

/// Reads `path` as bytes; `None` when it does not exist.
///
/// # Errors
/// [`LayoutError::Io`] for any other failure.
pub fn read_bytes(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LayoutError::io("read", path, e)),
    }
}

/// Reads and parses a JSON file; `None` when it does not exist.
///
/// # Errors
/// [`LayoutError::Json`] naming the file, JSON path, line and column; [`LayoutError::Io`].
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match read_text(path)? {
        None => Ok(None),
        Some(text) => Ok(Some(autopack_core::json::from_str(
            &text,
            path.display().to_string(),
        )?)),
    }
}

/// Reads the first of `candidates` that exists.
///
/// # Errors
/// As [`read_json`], for the first file found.
pub fn read_json_first<T: DeserializeOwned>(
    candidates: &[PathBuf],
) -> Result<Option<(PathBuf, T)>> {
    for path in candidates {
        if let Some(value) = read_json(path)? {
            return Ok(Some((path.clone(), value)));
        }
    }
    Ok(None)
}

/// Creates `dir` and any missing parents, fsyncing the parent of each directory created.
///
/// # Errors
/// [`LayoutError::Io`] naming the directory.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        ensure_dir(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(LayoutError::io("create directory", dir, e)),
    }
}

/// Fsyncs a directory, so that entries created or renamed in it survive a crash.
///
/// # Errors
/// [`LayoutError::Io`] naming the directory.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let handle = File::open(dir).map_err(|e| LayoutError::io("open directory", dir, e))?;
    handle
        .sync_all()
        .map_err(|e| LayoutError::io("sync directory", dir, e))
}

/// The lock file that guards `path`: `path` with `.lock` appended.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// An exclusive advisory lock on the `.lock` sibling of a file, released on drop.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Blocks until the exclusive lock guarding `path` is held.
    ///
    /// # Errors
    /// [`LayoutError::Io`] naming the lock file.
    pub fn acquire(path: &Path) -> Result<FileLock> {
        let lock = lock_path(path);
        if let Some(parent) = lock.parent() {
            ensure_dir(parent)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|e| LayoutError::io("open lock file", &lock, e))?;
        file.lock().map_err(|e| LayoutError::io("lock", &lock, e))?;
        Ok(FileLock { file, path: lock })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlocking first is explicit.
        let _ = self.file.unlock();
    }
}

/// A lock file kept open, locked and unlocked many times (for hot paths such as journal
/// appends, where reopening the lock file every time would cost a syscall or two).
#[derive(Debug)]
pub(crate) struct HeldLockFile {
    file: File,
    path: PathBuf,
}

impl HeldLockFile {
    pub(crate) fn open(guarded: &Path) -> Result<HeldLockFile> {
        let path = lock_path(guarded);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LayoutError::io("open lock file", &path, e))?;
        Ok(HeldLockFile { file, path })
    }

    pub(crate) fn lock(&self) -> Result<LockedGuard<'_>> {
        self.file
            .lock()
            .map_err(|e| LayoutError::io("lock", &self.path, e))?;
        Ok(LockedGuard { file: &self.file })
    }
}

/// Releases a [`HeldLockFile`] lock on drop.
pub(crate) struct LockedGuard<'a> {
    file: &'a File,
}

impl Drop for LockedGuard<'_> {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        n: u32,
    }

    #[test]
    fn atomic_write_creates_parents_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/c.json");
        write_json_atomic(&path, &Doc { n: 1 }).unwrap();
        write_json_atomic(&path, &Doc { n: 2 }).unwrap();
        assert_eq!(read_json::<Doc>(&path).unwrap(), Some(Doc { n: 2 }));
        assert_eq!(
            read_json::<Doc>(&dir.path().join("missing.json")).unwrap(),
            None
        );
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("c.json")]);
    }

    #[test]
    fn batch_writes_every_file_then_the_last_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, m) = (
            dir.path().join("x/a.json"),
            dir.path().join("x/y/b.json"),
            dir.path().join("m.json"),
        );
        let journal = File::create(dir.path().join("j")).unwrap();
        for round in 0..2u8 {
            write_batch_atomic(
                &[
                    (a.clone(), vec![b'a', round]),
                    (b.clone(), vec![b'b', round]),
                ],
                (&m, &[b'm', round]),
                Some((&journal, dir.path())),
            )
            .unwrap();
            assert_eq!(fs::read(&a).unwrap(), [b'a', round]);
            assert_eq!(fs::read(&b).unwrap(), [b'b', round]);
            assert_eq!(fs::read(&m).unwrap(), [b'm', round]);
        }
        write_batch_atomic(&[], (&m, b"only"), None).unwrap();
        assert_eq!(fs::read(&m).unwrap(), b"only");
        let mut names: Vec<_> = fs::read_dir(dir.path().join("x"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json"), "y".into()]);
    }

    #[test]
    fn corrupt_json_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        fs::write(&path, "{\n  \"n\": 1,\n  \"n2\": [1, 2\n").unwrap();
        let err = read_json::<Doc>(&path).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with(&path.display().to_string()), "{text}");
        let LayoutError::Json(json) = err else {
            panic!("{text}")
        };
        assert!(json.line >= 3, "{json:?}");
        fs::write(&path, "{\"n\": 1").unwrap();
        let LayoutError::Json(json) = read_json::<Doc>(&path).unwrap_err() else {
            panic!()
        };
        assert_eq!((json.line, json.column), (1, 7));
        assert!(json.message.contains("EOF"), "{}", json.message);
        // The corrupt file is left alone.
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"n\": 1");
    }

    #[test]
    fn first_candidate_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
        assert!(
            read_json_first::<Doc>(&[a.clone(), b.clone()])
                .unwrap()
                .is_none()
        );
        write_json_atomic(&b, &Doc { n: 2 }).unwrap();
        assert_eq!(
            read_json_first::<Doc>(&[a.clone(), b.clone()]).unwrap(),
            Some((b.clone(), Doc { n: 2 }))
        );
        write_json_atomic(&a, &Doc { n: 1 }).unwrap();
        assert_eq!(
            read_json_first::<Doc>(&[a.clone(), b]).unwrap(),
            Some((a, Doc { n: 1 }))
        );
    }

    #[test]
    fn locks_exclude_each_other_across_handles() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.json");
        let held = FileLock::acquire(&target).unwrap();
        assert_eq!(held.path(), dir.path().join("x.json.lock"));
        let other = File::options().write(true).open(held.path()).unwrap();
        assert!(
            other.try_lock().is_err(),
            "a second handle must not get the lock"
        );
        drop(held);
        assert!(other.try_lock().is_ok());
    }
}
