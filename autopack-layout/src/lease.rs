//! The filesystem lease of a run ([`FsRunLeases`]), and the reclaiming of what a dead
//! writer left in the layout ([`remove_stale_temp_files`]).
//!
//! The lease is an exclusive advisory lock (`flock`) on `{run_id}/run.lease`, held by an
//! open descriptor for the writer's whole life: the kernel releases it when the process
//! ends, however it ends, so a lease is never left behind by a dead process and never
//! needs an expiry. The file records the holder (pid, host, since) for the refusal
//! message; a clean release empties it, so a holder record found by the next writer that
//! gets the lock names a writer that died ([`Acquired::taken_over`]).
//!
//! ```
//! use autopack_core::ids::RunId;
//! use autopack_core::lease::{LeaseError, RunLeases};
//! use autopack_layout::{FsRunLeases, RunsRoot};
//!
//! let dir = tempfile::tempdir()?;
//! let leases = FsRunLeases::new(RunsRoot::new(dir.path()));
//! let run = RunId::new("run-1")?;
//! let held = leases.acquire(&run, FsRunLeases::this_process())?;
//! // A second writer (here: the same process, another descriptor) is refused.
//! assert!(matches!(leases.acquire(&run, FsRunLeases::this_process()), Err(LeaseError::Held { .. })));
//! drop(held);
//! assert!(leases.acquire(&run, FsRunLeases::this_process())?.taken_over.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use autopack_core::ids::RunId;
use autopack_core::lease::{Acquired, HeldLease, LeaseError, LeaseHolder, RunLeases};
use chrono::{DateTime, Utc};

use crate::error::{LayoutError, Result};
use crate::fsio;
use crate::paths::RunsRoot;

/// The lease file in a run's folder.
pub const LEASE_FILE: &str = "run.lease";

/// Leases of the runs of one layout; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct FsRunLeases {
    root: RunsRoot,
}

/// A held [`FsRunLeases`] lease; released (and its record emptied) on drop.
#[derive(Debug)]
pub struct FsRunLease {
    file: File,
    path: PathBuf,
    holder: LeaseHolder,
}

impl FsRunLeases {
    /// The leases of the runs under `root`.
    pub fn new(root: RunsRoot) -> FsRunLeases {
        FsRunLeases { root }
    }

    /// `{run_id}/run.lease`.
    pub fn path(&self, run_id: &RunId) -> PathBuf {
        self.root.run_dir(run_id).join(LEASE_FILE)
    }

    /// This process on this host, from now.
    pub fn this_process() -> LeaseHolder {
        LeaseHolder::new(std::process::id(), this_host(), Utc::now())
    }

    /// The holder recorded in `run_id`'s lease file, if any (whether or not it is alive).
    ///
    /// # Errors
    /// [`LayoutError::Io`] when the file exists but cannot be read.
    pub fn recorded_holder(&self, run_id: &RunId) -> Result<Option<LeaseHolder>> {
        let path = self.path(run_id);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(parse_holder(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LayoutError::io("read", &path, e)),
        }
    }
}

fn parse_holder(text: &str) -> Option<LeaseHolder> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// The host name, as the kernel reports it (`unknown` where it cannot be read).
pub fn this_host() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

impl RunLeases for FsRunLeases {
    type Error = LayoutError;
    type Lease = FsRunLease;

    fn acquire(
        &self,
        run_id: &RunId,
        holder: LeaseHolder,
    ) -> std::result::Result<Acquired<FsRunLease>, LeaseError<LayoutError>> {
        let path = self.path(run_id);
        let store = LeaseError::Store;
        fsio::ensure_dir(&self.root.run_dir(run_id)).map_err(store)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| LeaseError::Store(LayoutError::io("open", &path, e)))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LeaseError::Held {
                    run_id: run_id.clone(),
                    holder: live_holder(&path),
                });
            }
            Err(TryLockError::Error(e)) => {
                return Err(LeaseError::Store(LayoutError::io("lock", &path, e)));
            }
        }
        let mut previous = String::new();
        file.read_to_string(&mut previous)
            .map_err(|e| LeaseError::Store(LayoutError::io("read", &path, e)))?;
        let taken_over = parse_holder(&previous);
        let record = serde_json::to_string(&holder).map_err(|e| {
            LeaseError::Store(LayoutError::Serialize {
                path: path.clone(),
                message: e.to_string(),
            })
        })?;
        let write = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(record.as_bytes())?;
            file.write_all(b"\n")
        };
        write(&mut file).map_err(|e| LeaseError::Store(LayoutError::io("write", &path, e)))?;
        Ok(Acquired {
            lease: FsRunLease { file, path, holder },
            taken_over,
        })
    }
}

/// The holder of a lease someone else holds: its record, which it writes right after
/// taking the lock (so a reader may briefly find it empty).
fn live_holder(path: &Path) -> LeaseHolder {
    for _ in 0..20 {
        if let Some(holder) = fs::read_to_string(path).ok().and_then(|t| parse_holder(&t)) {
            return holder;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    LeaseHolder::new(0, "an unknown host (its lease record is empty)", Utc::now())
}

impl FsRunLease {
    /// The lease file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl HeldLease for FsRunLease {
    type Error = LayoutError;

    fn holder(&self) -> &LeaseHolder {
        &self.holder
    }

    /// The lock lasts as long as the process: nothing to renew.
    fn renew(&mut self, _until: DateTime<Utc>) -> std::result::Result<(), LeaseError<LayoutError>> {
        Ok(())
    }
}

impl Drop for FsRunLease {
    fn drop(&mut self) {
        // An empty record tells the next writer that this one ended cleanly.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Temporary files older than this are no write in progress, whoever made them.
const ABANDONED_AFTER: Duration = Duration::from_secs(600);

/// Removes the temporary files that atomic writes left in `dir` (and, with `recursive`,
/// its subfolders) when their writer died between writing and renaming: this crate's
/// `.{name}.{pid}-{n}.tmp` whose process is gone, and any `.{name}.XXXXXX` or `.tmp`
/// sibling older than ten minutes. With `owned` (the caller holds the lease of
/// everything in `dir`, e.g. a run's folder) every such file is stale, whatever its age.
/// Returns the files removed.
///
/// # Errors
/// [`LayoutError::Io`] when a folder cannot be listed or a file removed.
pub fn remove_stale_temp_files(dir: &Path, recursive: bool, owned: bool) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(LayoutError::io("list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| LayoutError::io("list", dir, e))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| LayoutError::io("stat", &path, e))?;
        if kind.is_dir() {
            if recursive {
                removed.extend(remove_stale_temp_files(&path, true, owned)?);
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let name = entry.file_name();
        let Some(temp) = name.to_str().and_then(temp_file_kind) else {
            continue;
        };
        let stale = owned
            || match temp {
                TempFile::Ours { pid } => !process_alive(pid),
                TempFile::Other => entry
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|m| SystemTime::now().duration_since(m).ok())
                    .is_some_and(|age| age >= ABANDONED_AFTER),
            };
        if stale {
            match fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LayoutError::io("remove", &path, e)),
            }
        }
    }
    Ok(removed)
}

#[derive(Debug, PartialEq, Eq)]
enum TempFile {
    /// `.{name}.{pid}-{n}.tmp`, written by this crate's batch writes.
    Ours { pid: u32 },
    /// `.{name}.XXXXXX` (six alphanumerics: single atomic writes) or another `.{name}.tmp`.
    Other,
}

fn temp_file_kind(name: &str) -> Option<TempFile> {
    let rest = name.strip_prefix('.')?;
    if let Some(stem) = rest.strip_suffix(".tmp") {
        let ours = stem
            .rsplit_once('.')
            .and_then(|(_, tail)| tail.split_once('-'))
            .and_then(|(pid, n)| {
                (n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty())
                    .then(|| pid.parse().ok())
                    .flatten()
            });
        return Some(match ours {
            Some(pid) => TempFile::Ours { pid },
            None => TempFile::Other,
        });
    }
    let (base, suffix) = rest.rsplit_once('.')?;
    (!base.is_empty() && suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(TempFile::Other)
}

fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_told_apart_from_real_files() {
        assert_eq!(
            temp_file_kind(".run_summary.md.4242-7.tmp"),
            Some(TempFile::Ours { pid: 4242 })
        );
        assert_eq!(
            temp_file_kind(".run_summary.md.a9ZkQ2"),
            Some(TempFile::Other)
        );
        assert_eq!(temp_file_kind(".x.tmp"), Some(TempFile::Other));
        assert_eq!(temp_file_kind("run_summary.md"), None);
        assert_eq!(temp_file_kind(".gitignore"), None);
        assert_eq!(temp_file_kind(".journal.jsonl"), None);
        assert_eq!(temp_file_kind(".run_summary.md.lock"), None);
    }

    #[test]
    fn a_dead_holder_is_reported_as_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let leases = FsRunLeases::new(RunsRoot::new(dir.path()));
        let run = RunId::new("r1").unwrap();
        // What a writer killed with SIGKILL leaves: a record, and no lock.
        fs::create_dir_all(dir.path().join("r1")).unwrap();
        let dead = LeaseHolder::new(999_999, "elsewhere", Utc::now());
        fs::write(leases.path(&run), serde_json::to_string(&dead).unwrap()).unwrap();
        let taken = leases.acquire(&run, FsRunLeases::this_process()).unwrap();
        assert_eq!(taken.taken_over, Some(dead));
        assert_eq!(
            leases.recorded_holder(&run).unwrap().map(|h| h.pid),
            Some(std::process::id())
        );
        let err = leases
            .acquire(&run, FsRunLeases::this_process())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("process {}", std::process::id())),
            "{err}"
        );
        drop(taken);
        assert_eq!(leases.recorded_holder(&run).unwrap(), None);
    }

    #[test]
    fn stale_temp_files_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("r1/phases");
        fs::create_dir_all(&sub).unwrap();
        let dead = sub.join(".phase_00_a.md.999999-3.tmp");
        let live = sub.join(format!(".phase_01_b.md.{}-4.tmp", std::process::id()));
        let young = sub.join(".phase_02_c.md.Ab12Cd");
        let real = sub.join("phase_00_a.md");
        for f in [&dead, &live, &young, &real] {
            fs::write(f, "x").unwrap();
        }
        let removed = remove_stale_temp_files(dir.path(), true, false).unwrap();
        assert_eq!(removed, vec![dead.clone()]);
        assert!(live.exists() && young.exists() && real.exists());
        // The lease holder of the folder owns every temporary file in it.
        let removed = remove_stale_temp_files(dir.path(), true, true).unwrap();
        assert_eq!(removed.len(), 2);
        assert!(real.exists());
    }
}
