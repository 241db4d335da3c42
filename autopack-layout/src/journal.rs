//! JSON Lines journals on disk, and [`FsRunStore`], the filesystem [`RunStore`].
//!
//! A journal is a file of single-line JSON documents, each ending in `\n`.
//!
//! - **Append is O(1)**: the file is opened once in append mode and the handle kept; one
//!   append is one `write` of the entry and its newline, under the journal's `.lock`
//!   sibling (so appenders in several processes never interleave).
//! - **Fsync policy** ([`FsyncPolicy`]): after every entry, or only at checkpoints
//!   ([`RunStore::sync`]). A newly created journal also fsyncs its directory.
//! - **Torn tails**: after a crash the last line may be half written. A last line without
//!   its trailing newline, or a last line that is not valid JSON, is a *torn tail*: it is
//!   cut (the file is truncated to the end of the last good line, and the truncation
//!   fsynced) and reported as a [`TornTail`] by the next read. Appends check the last byte
//!   first and cut a torn tail before writing, so a torn line is never merged with the
//!   next entry. Any *other* line that is not valid JSON is corruption, reported as
//!   [`LayoutError::CorruptJournal`] with its line and column, and left in place.
//! - **Reads check every line** for the errors above; a journal of 8 MiB or more is cut at
//!   line ends and checked on one thread per core (a resume of a run of 250,000 phases
//!   reads 310 MB: ~0.26 s to read the file, ~0.3 s to check it on two cores).
//!
//! Invariant: after any crash, a read returns a prefix of the appended entries, and with
//! [`FsyncPolicy::EveryEntry`] every entry whose append returned is in it.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use autopack_core::ids::RunId;
use autopack_core::journal::{JournalContents, RunStore, TornTail};

use crate::error::{LayoutError, Result};
use crate::fsio::{self, HeldLockFile};
use crate::paths::{JOURNAL_FILE, RunsRoot};

/// When appended entries are made durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum FsyncPolicy {
    /// `fdatasync` after every entry: an entry whose append returned survives a crash.
    #[default]
    EveryEntry,
    /// `fdatasync` only at checkpoints (`sync`): much faster; a crash may lose the entries
    /// appended since the last checkpoint, never more, and never leaves a merged line.
    AtCheckpoints,
}

/// One open journal file: an append handle and its lock file.
#[derive(Debug)]
pub(crate) struct JournalFile {
    lock: HeldLockFile,
    inner: JournalInner,
}

/// The part of a [`JournalFile`] used while its lock is held.
#[derive(Debug)]
pub(crate) struct JournalInner {
    pub(crate) path: PathBuf,
    file: File,
    policy: FsyncPolicy,
    buf: Vec<u8>,
    /// A torn tail cut while appending, reported by the next read.
    pub(crate) pending_torn: Option<TornTail>,
    /// Whether anything was appended since the last sync.
    dirty: bool,
}

impl JournalFile {
    /// Opens (creating) the journal at `path` for appending.
    pub(crate) fn open(path: &Path, policy: FsyncPolicy) -> Result<JournalFile> {
        let parent = path.parent().unwrap_or(Path::new("."));
        fsio::ensure_dir(parent)?;
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| LayoutError::io("open journal", path, e))?;
        if !existed {
            fsio::sync_dir(parent)?;
        }
        let lock = HeldLockFile::open(path)?;
        Ok(JournalFile {
            lock,
            inner: JournalInner {
                path: path.to_owned(),
                file,
                policy,
                buf: Vec::with_capacity(256),
                pending_torn: None,
                dirty: false,
            },
        })
    }

    /// Runs `f` with the journal's exclusive lock held.
    pub(crate) fn locked<R>(
        &mut self,
        f: impl FnOnce(&mut JournalInner) -> Result<R>,
    ) -> Result<R> {
        let result = {
            let _guard = self.lock.lock()?;
            f(&mut self.inner)
        };
        if result.is_ok() && self.inner.policy == FsyncPolicy::EveryEntry {
            self.inner.sync()?;
        }
        result
    }

    /// Appends one entry (no newline inside) and its newline.
    pub(crate) fn append(&mut self, entry: &str) -> Result<()> {
        self.locked(|j| {
            j.repair_tail()?;
            j.write_line(entry)
        })
    }

    /// Makes every appended entry durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.inner.sync()
    }

    /// Reads every entry, cutting a torn tail.
    pub(crate) fn read(&mut self) -> Result<JournalContents> {
        self.locked(|j| {
            let mut contents = read_journal(&j.path, Some(&j.file))?;
            contents.torn_tail = merge_torn(j.pending_torn.take(), contents.torn_tail);
            Ok(contents)
        })
    }
}

impl JournalInner {
    /// The file's current length.
    pub(crate) fn len(&self) -> Result<u64> {
        Ok(self
            .file
            .metadata()
            .map_err(|e| LayoutError::io("stat", &self.path, e))?
            .len())
    }

    /// The file's current length by seeking to its end: cheaper than a `stat`, and
    /// harmless, since appends always go to the end and reads use explicit offsets.
    fn end(&self) -> Result<u64> {
        (&self.file)
            .seek(io::SeekFrom::End(0))
            .map_err(|e| LayoutError::io("seek", &self.path, e))
    }

    /// Cuts a torn last line (one without its newline), remembering it for the next read.
    /// Returns the file length afterwards.
    pub(crate) fn repair_tail(&mut self) -> Result<u64> {
        let len = self.len()?;
        if len > 0 {
            let mut last = [0u8; 1];
            self.file
                .read_exact_at(&mut last, len - 1)
                .map_err(|e| LayoutError::io("read", &self.path, e))?;
            if last[0] != b'\n' {
                let torn = cut_torn_tail(&self.path, &self.file)?;
                let cut = torn.as_ref().map_or(0, |t| t.bytes);
                self.pending_torn = merge_torn(self.pending_torn.take(), torn);
                return Ok(len - cut);
            }
        }
        Ok(len)
    }

    /// As [`JournalInner::repair_tail`], but when the file is exactly `known` bytes long
    /// (the caller holds the lock and knows `known` ends a complete line it accounted
    /// for: appends only grow the file and a repair never cuts below a line end) nothing
    /// needs reading: the length check is one `lseek`.
    pub(crate) fn repair_tail_known(&mut self, known: Option<u64>) -> Result<u64> {
        if let Some(known) = known
            && self.end()? == known
        {
            return Ok(known);
        }
        self.repair_tail()
    }

    /// Writes the concatenation of `parts` and a newline in one `write` (the caller holds
    /// the lock); returns the bytes written.
    pub(crate) fn write_line_parts(&mut self, parts: &[&[u8]]) -> Result<u64> {
        if parts.iter().any(|p| p.contains(&b'\n')) {
            return Err(LayoutError::Newline {
                path: self.path.clone(),
            });
        }
        self.buf.clear();
        for part in parts {
            self.buf.extend_from_slice(part);
        }
        self.buf.push(b'\n');
        self.file
            .write_all(&self.buf)
            .map_err(|e| LayoutError::io("append", &self.path, e))?;
        self.dirty = true;
        Ok(self.buf.len() as u64)
    }

    /// The file and its path when entries were appended since the last sync (to be synced
    /// together with other files; call [`JournalInner::mark_synced`] afterwards).
    pub(crate) fn unsynced(&self) -> Option<(&File, &Path)> {
        self.dirty.then_some((&self.file, self.path.as_path()))
    }

    /// Records that the file returned by [`JournalInner::unsynced`] was synced.
    pub(crate) fn mark_synced(&mut self) {
        self.dirty = false;
    }

    /// Writes `entry` and a newline in one `write` (the caller holds the lock).
    pub(crate) fn write_line(&mut self, entry: &str) -> Result<()> {
        if entry.contains('\n') {
            return Err(LayoutError::Newline {
                path: self.path.clone(),
            });
        }
        self.buf.clear();
        self.buf.extend_from_slice(entry.as_bytes());
        self.buf.push(b'\n');
        self.file
            .write_all(&self.buf)
            .map_err(|e| LayoutError::io("append", &self.path, e))?;
        self.dirty = true;
        Ok(())
    }

    /// The complete lines in `[from, to)` (the caller holds the lock and knows `from` is
    /// the start of a line and `to` the end of one).
    pub(crate) fn lines_between(&self, from: u64, to: u64) -> Result<Vec<String>> {
        if to <= from {
            return Ok(Vec::new());
        }
        let mut bytes = vec![0u8; (to - from) as usize];
        self.file
            .read_exact_at(&mut bytes, from)
            .map_err(|e| LayoutError::io("read", &self.path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| LayoutError::CorruptJournal {
            path: self.path.clone(),
            line: 0,
            column: 0,
            message: format!("not valid UTF-8: {e}"),
        })?;
        Ok(text.lines().map(str::to_owned).collect())
    }

    /// The last complete line ending at `len` (the caller holds the lock).
    pub(crate) fn last_line(&self, len: u64) -> Result<Option<String>> {
        if len == 0 {
            return Ok(None);
        }
        let mut end = len - 1; // the final newline
        let mut collected: Vec<u8> = Vec::new();
        let mut block = vec![0u8; 4096];
        loop {
            let start = end.saturating_sub(block.len() as u64);
            let chunk = &mut block[..(end - start) as usize];
            self.file
                .read_exact_at(chunk, start)
                .map_err(|e| LayoutError::io("read", &self.path, e))?;
            if let Some(pos) = chunk.iter().rposition(|&b| b == b'\n') {
                let mut line = chunk[pos + 1..].to_vec();
                line.extend_from_slice(&collected);
                collected = line;
                break;
            }
            let mut line = chunk.to_vec();
            line.extend_from_slice(&collected);
            collected = line;
            if start == 0 {
                break;
            }
            end = start;
        }
        String::from_utf8(collected)
            .map(Some)
            .map_err(|e| LayoutError::CorruptJournal {
                path: self.path.clone(),
                line: 0,
                column: 0,
                message: format!("last line is not valid UTF-8: {e}"),
            })
    }

    /// Makes every appended entry durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        if self.dirty {
            self.file
                .sync_data()
                .map_err(|e| LayoutError::io("sync", &self.path, e))?;
            self.dirty = false;
        }
        Ok(())
    }
}

fn merge_torn(earlier: Option<TornTail>, later: Option<TornTail>) -> Option<TornTail> {
    match (earlier, later) {
        (Some(a), Some(b)) => Some(TornTail {
            offset: a.offset.min(b.offset),
            bytes: a.bytes + b.bytes,
        }),
        (a, b) => a.or(b),
    }
}

/// Reads a journal at `path` (the caller holds its lock), cutting a torn tail through
/// `handle` or a fresh handle. A missing file reads empty.
pub(crate) fn read_journal(path: &Path, handle: Option<&File>) -> Result<JournalContents> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(JournalContents::default()),
        Err(e) => return Err(LayoutError::io("read journal", path, e)),
    };
    let good_len = check_lines(path, &bytes)?;
    let mut torn_tail = None;
    let len = bytes.len();
    let mut good = bytes;
    if good_len < len {
        truncate(path, handle, good_len as u64)?;
        torn_tail = Some(TornTail {
            offset: good_len as u64,
            bytes: (len - good_len) as u64,
        });
        good.truncate(good_len);
    }
    // Every line of the good part was checked to be UTF-8 JSON.
    let text = String::from_utf8(good).map_err(|e| LayoutError::CorruptJournal {
        path: path.to_owned(),
        line: 0,
        column: 0,
        message: format!("not valid UTF-8: {e}"),
    })?;
    let mut contents = JournalContents::from_text(text);
    contents.torn_tail = torn_tail;
    Ok(contents)
}

/// Journals at least this long are checked on several threads (a resume of a long run
/// reads hundreds of megabytes, and checking is most of a read's time).
const PARALLEL_CHECK_FROM: usize = 8 << 20;

/// Checks that `bytes` is a run of complete JSON lines; returns the length of the good
/// prefix (a last line that is not, or has no newline, is torn).
///
/// A long journal is cut at line boundaries into one part per core, checked at once; the
/// outcome is the one a check from the first line to the last would give.
fn check_lines(path: &Path, bytes: &[u8]) -> Result<usize> {
    let threads = if bytes.len() >= PARALLEL_CHECK_FROM {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
    } else {
        1
    };
    check_in_parts(path, bytes, threads)
}

/// [`check_lines`] with `bytes` cut into at most `threads` parts.
fn check_in_parts(path: &Path, bytes: &[u8], threads: usize) -> Result<usize> {
    let parts = split_at_lines(bytes, threads);
    let checks: Vec<std::result::Result<(usize, usize), BadLine>> = match parts.as_slice() {
        [] => Vec::new(),
        [only] => vec![check_part(only, true)],
        [first, rest @ ..] => std::thread::scope(|scope| {
            let last_index = rest.len() - 1;
            let handles: Vec<_> = rest
                .iter()
                .enumerate()
                .map(|(i, &part)| {
                    let last = i == last_index;
                    std::thread::Builder::new()
                        .spawn_scoped(scope, move || check_part(part, last))
                        // No thread to be had: this part is checked on this thread.
                        .map_err(|_| (part, last))
                })
                .collect();
            let mut checks = vec![check_part(first, false)];
            checks.extend(handles.into_iter().map(|handle| {
                match handle {
                    // `check_part` does not panic; if it ever did, so does this read.
                    Ok(thread) => thread
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    Err((part, last)) => check_part(part, last),
                }
            }));
            checks
        }),
    };
    let mut offset = 0usize;
    let mut lines_before = 0usize;
    for (part, check) in parts.iter().zip(checks) {
        match check {
            // Only the last part can stop short (at a torn last line).
            Ok((good, _)) if good < part.len() => return Ok(offset + good),
            Ok((_, lines)) => {
                offset += part.len();
                lines_before += lines;
            }
            Err(bad) => {
                return Err(LayoutError::CorruptJournal {
                    path: path.to_owned(),
                    line: lines_before + bad.line,
                    column: bad.column,
                    message: bad.message,
                });
            }
        }
    }
    Ok(offset)
}

/// Cuts `bytes` into at most `parts` pieces of about equal length, each but the last
/// ending just after a newline.
fn split_at_lines(bytes: &[u8], parts: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(parts);
    let mut start = 0usize;
    for k in 1..parts {
        let target = (bytes.len() / parts * k).max(start);
        let Some(nl) = bytes[target..].iter().position(|&b| b == b'\n') else {
            break;
        };
        let end = target + nl + 1;
        if end < bytes.len() {
            pieces.push(&bytes[start..end]);
            start = end;
        }
    }
    if start < bytes.len() {
        pieces.push(&bytes[start..]);
    }
    pieces
}

/// A line that is not JSON, numbered from 1 within its part.
struct BadLine {
    line: usize,
    column: usize,
    message: String,
}

/// Checks the lines of `part`, which ends just after a newline unless it is the
/// journal's `last` part; returns the length of its good prefix and how many lines that
/// holds. In the last part, a last line that is not JSON, or has no newline, is torn: the
/// good prefix stops before it.
fn check_part(part: &[u8], last: bool) -> std::result::Result<(usize, usize), BadLine> {
    let mut start = 0usize;
    let mut line_no = 0usize;
    let mut good_len = 0usize;
    let mut good_lines = 0usize;
    while start < part.len() {
        line_no += 1;
        let Some(nl) = part[start..].iter().position(|&b| b == b'\n') else {
            // A last line without its newline: torn.
            break;
        };
        let end = start + nl;
        let line = &part[start..end];
        let is_last = last && end + 1 == part.len();
        let checked = std::str::from_utf8(line)
            .map_err(|e| (0, format!("not valid UTF-8: {e}")))
            .and_then(|text| {
                serde_json::from_str::<serde::de::IgnoredAny>(text)
                    .map(|_| text)
                    .map_err(|e| (e.column(), strip_position(&e.to_string())))
            });
        match checked {
            Ok(_) => {
                good_len = end + 1;
                good_lines = line_no;
            }
            Err(_) if is_last => break,
            Err((column, message)) => {
                return Err(BadLine {
                    line: line_no,
                    column,
                    message,
                });
            }
        }
        start = end + 1;
    }
    Ok((good_len, good_lines))
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(idx) => message[..idx].to_owned(),
        None => message.to_owned(),
    }
}

fn truncate(path: &Path, handle: Option<&File>, len: u64) -> Result<()> {
    let owned;
    let file = match handle {
        Some(file) => file,
        None => {
            owned = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| LayoutError::io("open journal", path, e))?;
            &owned
        }
    };
    file.set_len(len)
        .map_err(|e| LayoutError::io("truncate journal", path, e))?;
    file.sync_all()
        .map_err(|e| LayoutError::io("sync journal", path, e))
}

/// Cuts everything after the last newline (the caller holds the lock and has seen that
/// the file does not end in one).
fn cut_torn_tail(path: &Path, file: &File) -> Result<Option<TornTail>> {
    let len = file
        .metadata()
        .map_err(|e| LayoutError::io("stat", path, e))?
        .len();
    // Scan backwards in blocks for the last newline.
    let mut end = len;
    let mut block = vec![0u8; 64 * 1024];
    let mut cut_at = 0u64;
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let chunk = &mut block[..(end - start) as usize];
        file.read_exact_at(chunk, start)
            .map_err(|e| LayoutError::io("read", path, e))?;
        if let Some(pos) = chunk.iter().rposition(|&b| b == b'\n') {
            cut_at = start + pos as u64 + 1;
            break;
        }
        end = start;
    }
    if cut_at == len {
        return Ok(None);
    }
    truncate(path, Some(file), cut_at)?;
    Ok(Some(TornTail {
        offset: cut_at,
        bytes: len - cut_at,
    }))
}

/// The filesystem [`RunStore`]: `.autonomous_runs/{run_id}/journal.jsonl` per run.
///
/// ```
/// use autopack_core::ids::RunId;
/// use autopack_core::journal::RunStore;
/// use autopack_layout::journal::{FsRunStore, FsyncPolicy};
/// use autopack_layout::paths::RunsRoot;
///
/// let dir = tempfile::tempdir()?;
/// let mut store = FsRunStore::new(RunsRoot::new(dir.path()), FsyncPolicy::AtCheckpoints);
/// let run = RunId::new("run-1")?;
/// store.append(&run, r#"{"input":"start"}"#)?;
/// store.sync(&run)?;
/// assert_eq!(store.read(&run)?.entries().collect::<Vec<_>>(), [r#"{"input":"start"}"#]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FsRunStore {
    root: RunsRoot,
    policy: FsyncPolicy,
    open: HashMap<RunId, JournalFile>,
}

impl FsRunStore {
    /// A store under `root` with the given fsync policy.
    pub fn new(root: RunsRoot, policy: FsyncPolicy) -> FsRunStore {
        FsRunStore {
            root,
            policy,
            open: HashMap::new(),
        }
    }

    /// The layout it writes.
    pub fn root(&self) -> &RunsRoot {
        &self.root
    }

    fn journal(&mut self, run_id: &RunId) -> Result<&mut JournalFile> {
        if !self.open.contains_key(run_id) {
            let file = JournalFile::open(&self.root.journal(run_id), self.policy)?;
            self.open.insert(run_id.clone(), file);
        }
        match self.open.get_mut(run_id) {
            Some(file) => Ok(file),
            None => Err(LayoutError::io(
                "open journal",
                self.root.journal(run_id),
                io::Error::other("journal handle vanished"),
            )),
        }
    }
}

impl RunStore for FsRunStore {
    type Error = LayoutError;

    fn append(&mut self, run_id: &RunId, entry: &str) -> Result<()> {
        if entry.contains('\n') {
            return Err(LayoutError::Newline {
                path: self.root.journal(run_id),
            });
        }
        self.journal(run_id)?.append(entry)
    }

    fn read(&mut self, run_id: &RunId) -> Result<JournalContents> {
        if let Some(file) = self.open.get_mut(run_id) {
            return file.read();
        }
        let path = self.root.journal(run_id);
        if !path.exists() {
            return Ok(JournalContents::default());
        }
        let _lock = fsio::FileLock::acquire(&path)?;
        read_journal(&path, None)
    }

    fn sync(&mut self, run_id: &RunId) -> Result<()> {
        match self.open.get_mut(run_id) {
            Some(file) => file.sync(),
            None => Ok(()),
        }
    }

    fn runs(&mut self) -> Result<Vec<RunId>> {
        let dir = self.root.dir();
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(LayoutError::io("list", dir, e)),
        };
        let mut runs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| LayoutError::io("list", dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(run) = RunId::new(name) else { continue };
            if entry.path().join(JOURNAL_FILE).is_file() {
                runs.push(run);
            }
        }
        runs.sort();
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autopack_core::journal::testing::run_store_conformance;
    use proptest::prelude::*;

    #[test]
    fn conforms_with_both_policies() {
        let parent = tempfile::tempdir().unwrap();
        let mut n = 0;
        for policy in [FsyncPolicy::EveryEntry, FsyncPolicy::AtCheckpoints] {
            run_store_conformance(|| {
                n += 1;
                FsRunStore::new(RunsRoot::new(parent.path().join(format!("s{n}"))), policy)
            });
        }
    }

    fn store(dir: &Path) -> FsRunStore {
        FsRunStore::new(RunsRoot::new(dir), FsyncPolicy::AtCheckpoints)
    }

    #[test]
    fn torn_tail_without_newline_is_cut_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunId::new("r").unwrap();
        let mut s = store(dir.path());
        s.append(&run, "{\"n\":1}").unwrap();
        s.append(&run, "{\"n\":2}").unwrap();
        let path = s.root().journal(&run);
        // A crash halfway through the third append.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"n\":3, \"pay").unwrap();
        let mut fresh = store(dir.path());
        let read = fresh.read(&run).unwrap();
        assert_eq!(
            read.entries().collect::<Vec<_>>(),
            ["{\"n\":1}", "{\"n\":2}"]
        );
        assert_eq!(
            read.torn_tail,
            Some(TornTail {
                offset: 16,
                bytes: 12
            })
        );
        assert_eq!(fs::read(&path).unwrap().len(), 16);
        // Reading again finds nothing more to cut.
        assert_eq!(fresh.read(&run).unwrap().torn_tail, None);
    }

    #[test]
    fn torn_tail_is_never_merged_with_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunId::new("r").unwrap();
        let mut s = store(dir.path());
        s.append(&run, "{\"n\":1}").unwrap();
        let path = s.root().journal(&run);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"n\":")
            .unwrap();
        // The same store (handle already open) appends after the crash of another writer.
        s.append(&run, "{\"n\":2}").unwrap();
        let read = s.read(&run).unwrap();
        assert_eq!(
            read.entries().collect::<Vec<_>>(),
            ["{\"n\":1}", "{\"n\":2}"]
        );
        assert_eq!(
            read.torn_tail,
            Some(TornTail {
                offset: 8,
                bytes: 5
            })
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"n\":1}\n{\"n\":2}\n");
    }

    #[test]
    fn invalid_last_line_is_torn_but_invalid_middle_line_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunId::new("r").unwrap();
        let path = RunsRoot::new(dir.path()).journal(&run);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "{\"a\":1}\n\0\0\0{\"b\"\n").unwrap();
        let read = store(dir.path()).read(&run).unwrap();
        assert_eq!(read.entries().collect::<Vec<_>>(), ["{\"a\":1}"]);
        assert_eq!(
            read.torn_tail,
            Some(TornTail {
                offset: 8,
                bytes: 8
            })
        );

        fs::write(&path, "{\"a\":1}\n{\"b\" 2}\n{\"c\":3}\n").unwrap();
        let err = store(dir.path()).read(&run).unwrap_err();
        let LayoutError::CorruptJournal { line, column, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!((*line, *column), (2, 6));
        assert!(
            err.to_string().contains("journal.jsonl: line 2, column 6"),
            "{err}"
        );
        // Corruption is reported, never repaired silently.
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"b\" 2}\n{\"c\":3}\n"
        );
    }

    #[test]
    fn every_entry_policy_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunId::new("r").unwrap();
        let mut s = FsRunStore::new(RunsRoot::new(dir.path()), FsyncPolicy::EveryEntry);
        for i in 0..10 {
            s.append(&run, &format!("{i}")).unwrap();
        }
        drop(s);
        let read = store(dir.path()).read(&run).unwrap();
        assert_eq!(read.len(), 10);
    }

    fn journal_line() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => (0u32..1000).prop_map(|n| format!("{{\"n\":{n}}}")),
            1 => Just("{\"b\" 2}".to_owned()),
            1 => Just(String::new()),
            1 => Just("[1, \"x\"]".to_owned()),
        ]
    }

    proptest! {
        #[test]
        fn checking_in_parts_agrees_with_checking_line_by_line(
            lines in proptest::collection::vec(journal_line(), 0..40),
            tail in proptest::option::of("[{}\"n:1 ]{0,6}"),
            threads in 2usize..6,
        ) {
            let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            if let Some(tail) = tail {
                text.push_str(&tail);
            }
            let path = Path::new("journal.jsonl");
            let outcome = |threads| {
                check_in_parts(path, text.as_bytes(), threads).map_err(|e| e.to_string())
            };
            prop_assert_eq!(outcome(threads), outcome(1));
        }
    }

    #[test]
    fn a_long_journal_is_cut_into_parts_at_line_ends() {
        let text = "{\"a\":1}\n{\"bb\":2}\n{\"c\":3}\n";
        let parts = split_at_lines(text.as_bytes(), 3);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.ends_with(b"\n")));
        assert_eq!(parts.concat(), text.as_bytes());
        assert_eq!(split_at_lines(b"", 4), Vec::<&[u8]>::new());
        assert_eq!(split_at_lines(b"{}", 4), vec![&b"{}"[..]]);
    }
}
