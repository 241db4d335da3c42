//! The record of started processes, so a host killed with `kill -9` can clean up on resume.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::SandboxError;
use crate::procfs;

/// One job's main process, as recorded when it started.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StartedProcess {
    /// The host-side pid (also its process group id).
    pub pid: u32,
    /// Field 22 of `/proc/PID/stat` (clock ticks after boot): with `pid`, an identity that
    /// survives pid reuse.
    pub start_time: u64,
    /// Whether it is PID 1 of its own PID namespace (killing it kills every process of
    /// the job). When `false`, only its process group can be killed after a host crash.
    pub own_pid_namespace: bool,
}

/// Told about every job process as it starts and after it (and its tree) is gone.
pub trait ProcessLog: Send + Sync {
    /// The job's main process has started.
    fn started(&self, p: &StartedProcess);
    /// The job's main process and everything it left behind are gone.
    fn ended(&self, p: &StartedProcess);
}

/// A [`ProcessLog`] kept as a JSON file listing the processes alive now. Each change
/// rewrites the file atomically (a temporary file in the same directory, then rename), so
/// a host killed at any moment leaves either the old or the new list. Write failures are
/// ignored: the log is a best-effort aid for [`reap_leftovers`], never a reason to stop a
/// job.
#[derive(Debug)]
pub struct FileProcessLog {
    path: PathBuf,
    alive: Mutex<Vec<StartedProcess>>,
}

impl FileProcessLog {
    /// A log at `path`, starting from what the file lists now (so entries of a crashed
    /// host are kept until reaped). A missing file is an empty list.
    ///
    /// # Errors
    /// [`SandboxError::ProcessLog`] when the file exists but cannot be read or parsed.
    pub fn open(path: impl Into<PathBuf>) -> Result<FileProcessLog, SandboxError> {
        let path = path.into();
        let alive = FileProcessLog::read(&path)?;
        Ok(FileProcessLog {
            path,
            alive: Mutex::new(alive),
        })
    }

    /// The processes a log file lists; empty when the file does not exist.
    ///
    /// # Errors
    /// [`SandboxError::ProcessLog`] when it cannot be read or is not the expected JSON.
    pub fn read(path: &Path) -> Result<Vec<StartedProcess>, SandboxError> {
        let err = |reason: String| SandboxError::ProcessLog {
            path: path.to_owned(),
            reason,
        };
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// The processes listed now.
    pub fn alive(&self) -> Vec<StartedProcess> {
        self.alive.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Kills the listed processes that are still alive ([`reap_leftovers`]), empties the
    /// list and returns how many were killed.
    pub fn reap(&self) -> usize {
        let Ok(mut alive) = self.alive.lock() else {
            return 0;
        };
        let killed = reap_leftovers(&alive);
        alive.clear();
        self.write(&alive);
        killed
    }

    fn write(&self, alive: &[StartedProcess]) {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let Ok(json) = serde_json::to_vec_pretty(alive) else {
            return;
        };
        let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else {
            return;
        };
        if std::io::Write::write_all(&mut tmp, &json).is_ok() {
            let _ = tmp.as_file().sync_all();
            let _ = tmp.persist(&self.path);
        }
    }
}

impl ProcessLog for FileProcessLog {
    fn started(&self, p: &StartedProcess) {
        if let Ok(mut alive) = self.alive.lock() {
            alive.push(p.clone());
            self.write(&alive);
        }
    }

    fn ended(&self, p: &StartedProcess) {
        if let Ok(mut alive) = self.alive.lock() {
            alive.retain(|a| a != p);
            self.write(&alive);
        }
    }
}

/// Sends `SIGKILL` to each recorded process that is still alive *and* has the recorded
/// start time (a reused pid belongs to someone else and is left alone), and to its process
/// group. Returns how many recorded processes were killed.
pub fn reap_leftovers(recorded: &[StartedProcess]) -> usize {
    let mut killed = 0;
    for p in recorded {
        let Ok(raw) = i32::try_from(p.pid) else {
            continue;
        };
        if raw <= 1 || procfs::live_start_time(p.pid) != Some(p.start_time) {
            continue;
        }
        let pid = Pid::from_raw(raw);
        // The group first: once the leader is gone its members are harder to find.
        let _ = killpg(pid, Signal::SIGKILL);
        if kill(pid, Signal::SIGKILL).is_ok() {
            killed += 1;
        }
    }
    killed
}
