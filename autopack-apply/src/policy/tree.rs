//! The raw tree objects a check reads and writes: a cache per branch handle, lookups of a
//! path's entry, and git's tree entry order. Trees are read as bytes, not through libgit2's
//! tree objects: a splice copies the entries it keeps byte for byte.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

use git2::{ObjectType, Odb, Oid};

/// Mode of a tree entry that is a directory.
pub(crate) const MODE_TREE: i32 = 0o040000;
/// Mode of a symlink.
pub(crate) const MODE_LINK: i32 = 0o120000;
/// Mode of a submodule entry (a gitlink).
pub(crate) const MODE_COMMIT: i32 = 0o160000;
/// Mode of a regular file.
pub(crate) const MODE_BLOB: i32 = 0o100644;
/// Mode of an executable file.
pub(crate) const MODE_EXEC: i32 = 0o100755;

/// Raw tree objects a branch handle has read or written, and the tree of the last commit it
/// wrote: the base of a check is usually the tree the previous commit wrote, and its
/// directories are often the ones the previous patches touched. Reading one back costs a
/// file read, an inflate and a hash check (a directory of a hundred files is larger than
/// libgit2's object cache takes). Objects are immutable, so entries never go stale; the
/// cache is emptied when it would exceed [`TREE_CACHE_BYTES`].
#[derive(Default)]
pub(crate) struct TreeCache {
    trees: RefCell<HashMap<Oid, Arc<Vec<u8>>>>,
    bytes: Cell<usize>,
    last_commit: Cell<Option<(Oid, Oid)>>,
}

/// Upper bound of [`TreeCache`]'s tree bytes.
const TREE_CACHE_BYTES: usize = 16 << 20;

impl TreeCache {
    pub(super) fn get(&self, id: Oid) -> Option<Arc<Vec<u8>>> {
        self.trees.borrow().get(&id).cloned()
    }

    pub(super) fn put(&self, id: Oid, bytes: Arc<Vec<u8>>) {
        let mut trees = self.trees.borrow_mut();
        if self.bytes.get() + bytes.len() > TREE_CACHE_BYTES {
            trees.clear();
            self.bytes.set(0);
        }
        let len = bytes.len();
        if trees.insert(id, bytes).is_none() {
            self.bytes.set(self.bytes.get() + len);
        }
    }

    /// Remembers that `commit` (just written) has the tree `tree`.
    pub(crate) fn note_commit(&self, commit: Oid, tree: Oid) {
        self.last_commit.set(Some((commit, tree)));
    }

    pub(super) fn tree_of(&self, commit: Oid) -> Option<Oid> {
        self.last_commit
            .get()
            .and_then(|(c, tree)| (c == commit).then_some(tree))
    }
}

/// The trees a check reads, through the branch's [`TreeCache`].
pub(crate) struct Trees<'r> {
    pub(super) odb: Odb<'r>,
    pub(super) cache: &'r TreeCache,
    /// The entries of each tree looked into by [`Trees::entry`] during this check, by
    /// name: a large patch asks about the same few directories thousands of times (each
    /// file's parents for symlinks, its old and new path), and a scan of a directory's
    /// raw entries per question cost more than all the other per-file rules.
    index: HashMap<Oid, HashMap<Vec<u8>, (Oid, i32)>>,
}

impl<'r> Trees<'r> {
    pub(crate) fn new(odb: Odb<'r>, cache: &'r TreeCache) -> Trees<'r> {
        Trees {
            odb,
            cache,
            index: HashMap::new(),
        }
    }

    pub(super) fn raw(&mut self, id: Oid) -> Result<Arc<Vec<u8>>, git2::Error> {
        if let Some(bytes) = self.cache.get(id) {
            return Ok(bytes);
        }
        let object = self.odb.read(id)?;
        if object.kind() != ObjectType::Tree {
            return Err(git2::Error::from_str(&format!("{id} is not a tree")));
        }
        let bytes = Arc::new(object.data().to_vec());
        self.cache.put(id, Arc::clone(&bytes));
        Ok(bytes)
    }

    /// The id and mode at `path` (`/`-separated) under the tree `root`; `None` when there
    /// is none (or a tree on the way cannot be read).
    pub(super) fn entry(&mut self, root: Oid, path: &str) -> Option<(Oid, i32)> {
        let mut tree = root;
        let mut comps = path.split('/').peekable();
        while let Some(comp) = comps.next() {
            if !self.index.contains_key(&tree) {
                let bytes = self.raw(tree).ok()?;
                let entries = parse_tree(&bytes)
                    .ok()?
                    .into_iter()
                    .map(|e| (e.name.to_vec(), (e.id, e.mode)))
                    .collect();
                self.index.insert(tree, entries);
            }
            let found = *self.index.get(&tree)?.get(comp.as_bytes())?;
            if comps.peek().is_none() {
                return Some(found);
            }
            if found.1 != MODE_TREE {
                return None;
            }
            tree = found.0;
        }
        None
    }
}

/// One entry of a tree object: `{mode} {name}\0{id}` at `span` in the object's bytes.
pub(super) struct RawEntry<'a> {
    pub(super) mode: i32,
    pub(super) name: &'a [u8],
    pub(super) id: Oid,
    pub(super) span: std::ops::Range<usize>,
}

pub(super) fn parse_tree(bytes: &[u8]) -> Result<Vec<RawEntry<'_>>, git2::Error> {
    let bad = || git2::Error::from_str("malformed tree object");
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let space = rest.iter().position(|b| *b == b' ').ok_or_else(bad)?;
        let nul = rest.iter().position(|b| *b == 0).ok_or_else(bad)?;
        if nul < space || rest.len() < nul + 21 {
            return Err(bad());
        }
        let mode = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|m| i32::from_str_radix(m, 8).ok())
            .ok_or_else(bad)?;
        let id = Oid::from_bytes(&rest[nul + 1..nul + 21])?;
        out.push(RawEntry {
            mode,
            name: &rest[space + 1..nul],
            id,
            span: at..at + nul + 21,
        });
        at += nul + 21;
    }
    Ok(out)
}

/// Git's order of tree entries: by name, a tree's name read as if it ended in `/`.
pub(super) fn git_order(a: &[u8], a_tree: bool, b: &[u8], b_tree: bool) -> std::cmp::Ordering {
    let n = a.len().min(b.len());
    a[..n].cmp(&b[..n]).then_with(|| {
        let end = |name: &[u8], tree: bool| match name.get(n) {
            Some(c) => *c,
            None if tree => b'/',
            None => 0,
        };
        end(a, a_tree).cmp(&end(b, b_tree))
    })
}
