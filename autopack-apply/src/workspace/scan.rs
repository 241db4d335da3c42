//! Finding what changed in a work tree: an `lstat` scan against the kept index's stat
//! data, on every core, and the scan a finished attempt hands to the next checkout.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use git2::Index;

use super::{WorkspaceError, git, io};

/// The work-tree paths that may differ from the kept index: first those that do — files
/// whose type, size, inode or modification time differ from what the index recorded, and
/// files it does not list (ignored ones included) — then those whose content must be
/// compared: files written no earlier than the index (equal stat data proves nothing
/// then), and files the index lists that are gone. Read with plain `lstat`s, never following a link: cheaper than libgit2's
/// status walk, and the one libgit2 then makes is limited to these paths.
pub(super) fn changed_paths(
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
pub(super) fn scan_path(index_path: &Path) -> PathBuf {
    index_path.with_extension("scan")
}

/// Writes a scan: each path NUL-terminated, behind `D` (differs) or `U` (to compare). A
/// scan that cannot be written is simply not reused.
pub(super) fn keep_scan(path: &Path, differ: &[Vec<u8>], unsure: &[Vec<u8>]) {
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
pub(super) fn take_scan(path: &Path) -> Option<Found> {
    let bytes = std::fs::read(path).ok()?;
    std::fs::remove_file(path).ok()?;
    let (mut differ, mut unsure) = (Vec::new(), Vec::new());
    for record in bytes.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        // Only plain relative paths: a scan that says otherwise is not ours to follow.
        let plain = |p: &[u8]| {
            !p.is_empty()
                && !p.starts_with(b"/")
                && p.split(|b| *b == b'/')
                    .all(|c| !c.is_empty() && c != b"." && c != b"..")
        };
        if !record.get(1..).is_some_and(plain) {
            return None;
        }
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
pub(super) type Found = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// The kept index's stat data, by path.
pub(super) type Recorded = std::collections::HashMap<Vec<u8>, Entry>;

/// The kept index's stat data of each slot, read once per version of the file (a no-op
/// attempt does not parse the index at all).
#[derive(Debug, Clone, Default)]
pub(super) struct RecordedCache(std::sync::Arc<std::sync::Mutex<RecordedBySlot>>);

/// The cache's content: each kept index's stamp and stat data.
type RecordedBySlot = std::collections::HashMap<PathBuf, (IndexStamp, std::sync::Arc<Recorded>)>;

/// What identifies one version of the kept index file.
type IndexStamp = (i64, i64, u64, u64);

impl RecordedCache {
    /// The stat data of the kept index at `index_path`, parsed only when the file changed.
    pub(super) fn get(
        &self,
        index_path: &Path,
    ) -> Result<std::sync::Arc<Recorded>, WorkspaceError> {
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
pub(super) struct Entry {
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
