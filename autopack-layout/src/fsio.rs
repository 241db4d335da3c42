//! The filesystem primitives every adapter of this crate uses: atomic writes, exclusive
//! advisory locks and strict JSON reading.
//!
//! - [`write_atomic`] writes a temporary file beside the target, fsyncs it, renames it over
//!   the target and fsyncs the directory (the `atomic-write-file` crate does the dance), so
//!   a reader — or a process restarted after a crash — sees the old content or the new,
//!   never a mix. Missing parent directories are created, and their own parents fsynced.
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
