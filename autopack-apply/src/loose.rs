//! Writing loose objects to `.git/objects` the way git and libgit2 do (zlib at the best-speed
//! level in a temporary file, then a hard link into `xx/yyyy…`, read-only), without
//! libgit2's write path.
//!
//! Why not `git_odb_write`: before every write libgit2 "freshens" the object, and when the
//! object is new (always, for a patch's blob, trees and commit) that miss rescans the pack
//! directory (stat, `multi-pack-index`, opendir, getdents); then its tree builder and commit
//! writer read the headers of the objects they point to back from disk. For a one-file
//! patch those syscalls and the repeated zlib set-up cost more than the writes themselves.

use std::cell::RefCell;
use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::Compression;
use flate2::write::ZlibEncoder;
use git2::{ObjectType, Odb, OdbLookupFlags, Oid};

/// Distinguishes temporary files of concurrent writers in one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes loose objects into one repository's object directory.
pub(crate) struct LooseWriter {
    objects: PathBuf,
    fsync: bool,
    /// Part of temporary file names (`getpid` is a system call each time).
    pid: u32,
    /// One compressor for every object: setting up zlib allocates and clears a few hundred
    /// kilobytes, more work than compressing a small tree.
    encoder: RefCell<ZlibEncoder<Vec<u8>>>,
}

impl std::fmt::Debug for LooseWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LooseWriter")
            .field("objects", &self.objects)
            .field("fsync", &self.fsync)
            .finish()
    }
}

impl LooseWriter {
    /// `objects` is the repository's `objects` directory; `fsync` mirrors
    /// `core.fsyncObjectFiles`.
    pub(crate) fn new(objects: PathBuf, fsync: bool) -> LooseWriter {
        LooseWriter {
            objects,
            fsync,
            pid: std::process::id(),
            // Best speed, as git's `core.looseCompression` default and libgit2.
            encoder: RefCell::new(ZlibEncoder::new(Vec::new(), Compression::fast())),
        }
    }

    /// Writes `data` as an object of `kind`; returns its id.
    pub(crate) fn write(&self, odb: &Odb<'_>, kind: ObjectType, data: &[u8]) -> io::Result<Oid> {
        let id = Oid::hash_object(kind, data).map_err(io::Error::other)?;
        self.write_hashed(odb, id, kind, data)?;
        Ok(id)
    }

    /// Writes `data`, whose id libgit2 already computed as `id`, as an object of `kind`,
    /// unless `odb` already has it (then libgit2 writes it, which only freshens the
    /// existing copy so that `git gc` keeps it).
    pub(crate) fn write_hashed(
        &self,
        odb: &Odb<'_>,
        id: Oid,
        kind: ObjectType,
        data: &[u8],
    ) -> io::Result<()> {
        // No refresh: a pack that appeared since the last scan only means a duplicate loose
        // copy, which git tolerates.
        if odb.exists_ext(id, OdbLookupFlags::NO_REFRESH) {
            odb.write(kind, data).map_err(io::Error::other)?;
            return Ok(());
        }
        let compressed = {
            let mut encoder = self.encoder.borrow_mut();
            write!(encoder, "{} {}\0", kind.str(), data.len())?;
            encoder.write_all(data)?;
            // Finishes the stream, hands back its bytes and resets the compressor.
            encoder.reset(Vec::new())?
        };
        let hex = id.to_string();
        let dir = self.objects.join(&hex[..2]);
        let target = dir.join(&hex[2..]);
        let tmp = self.objects.join(format!(
            "tmp_obj_autopack_{}_{}",
            self.pid,
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = self
            .write_tmp(&tmp, &compressed)
            .and_then(|()| link(&tmp, &dir, &target));
        let removed = fs::remove_file(&tmp);
        result?;
        removed
    }

    fn write_tmp(&self, tmp: &Path, compressed: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(tmp)?;
        file.write_all(compressed)?;
        if self.fsync {
            file.sync_all()?;
        }
        Ok(())
    }
}

/// Links the finished temporary file into place (creating the fan-out directory on first
/// use); an existing object with that id is the same object.
fn link(tmp: &Path, dir: &Path, target: &Path) -> io::Result<()> {
    let linked = match fs::hard_link(tmp, target) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            match fs::create_dir(dir) {
                Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            fs::hard_link(tmp, target)
        }
        other => other,
    };
    match linked {
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

// The compressor must not cost `IntegrationBranch` its `Send`.
const _: () = {
    const fn send<T: Send>() {}
    send::<crate::IntegrationBranch>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_objects_libgit2_reads_back_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let odb = repo.odb().unwrap();
        let objects = dir.path().join(".git/objects");
        let writer = LooseWriter::new(objects.clone(), false);
        let data = b"some content\n".repeat(100);
        // A fresh repository has no fan-out directories: the first write creates one.
        let id = writer.write(&odb, ObjectType::Blob, &data).unwrap();
        assert_eq!(id, Oid::hash_object(ObjectType::Blob, &data).unwrap());
        let read = odb.read(id).unwrap();
        assert_eq!((read.kind(), read.data()), (ObjectType::Blob, &data[..]));
        // Again: already there, nothing changes.
        assert_eq!(writer.write(&odb, ObjectType::Blob, &data).unwrap(), id);
        // The compressor is reused: a second, different object comes out right too.
        let other = writer.write(&odb, ObjectType::Blob, b"other\n").unwrap();
        assert_eq!(repo.find_blob(other).unwrap().content(), b"other\n");
        let hex = id.to_string();
        let file = objects.join(&hex[..2]).join(&hex[2..]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o444
        );
        let leftovers: Vec<_> = fs::read_dir(&objects)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("tmp_"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
