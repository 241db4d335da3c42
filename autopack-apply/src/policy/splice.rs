//! Applying a checked patch: a scratch tree holding only the declared paths, libgit2's
//! apply in memory, then a splice of the results into the base's trees. The cost grows
//! with the patch and the depth of its paths, not with the size of the repository.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use git2::{Config, Diff, Index, IndexEntry, IndexTime, ObjectType, Odb, Oid, Repository};

use super::lines::FileLines;
use super::tree::{
    MODE_BLOB, MODE_EXEC, MODE_LINK, MODE_TREE, RawEntry, Trees, git_order, parse_tree,
};
use super::{CheckError, PolicyViolation, SymlinkChange, direct};
use crate::loose::LooseWriter;

/// An entry of a tree being rebuilt: kept from the base (its bytes are copied) or new.
enum Slot<'a> {
    Kept(&'a RawEntry<'a>),
    New { name: &'a [u8], mode: i32, id: Oid },
}

impl Slot<'_> {
    fn name(&self) -> &[u8] {
        match self {
            Slot::Kept(e) => e.name,
            Slot::New { name, .. } => name,
        }
    }

    fn mode(&self) -> i32 {
        match self {
            Slot::Kept(e) => e.mode,
            Slot::New { mode, .. } => *mode,
        }
    }
}

/// The tree object holding `slots`, in git's order.
fn serialize_tree(base: &[u8], mut slots: Vec<Slot<'_>>) -> Vec<u8> {
    slots.sort_by(|a, b| {
        git_order(
            a.name(),
            a.mode() == MODE_TREE,
            b.name(),
            b.mode() == MODE_TREE,
        )
    });
    let mut out = Vec::with_capacity(base.len() + 64);
    for slot in &slots {
        match slot {
            Slot::Kept(e) => out.extend_from_slice(&base[e.span.clone()]),
            Slot::New { name, mode, id } => {
                out.extend_from_slice(format!("{mode:o} ").as_bytes());
                out.extend_from_slice(name);
                out.push(0);
                out.extend_from_slice(id.as_bytes());
            }
        }
    }
    out
}

/// What the post-image must satisfy (the rules only the applied result can show).
pub(super) struct PostImageRules<'a> {
    /// Largest blob a patch may leave behind.
    pub(super) max_file_bytes: u64,
    /// Whether a symlink may appear (or stay changed) in the result.
    pub(super) allow_symlinks: bool,
    /// The builder mode's name, for the refusal.
    pub(super) mode: Option<&'a str>,
}

/// The parsed patch: libgit2's diff, each file's hunks, and the paths it declares.
pub(super) struct Parsed<'a> {
    pub(super) diff: &'a Diff<'a>,
    pub(super) files: &'a [FileLines],
    pub(super) declared: &'a BTreeSet<String>,
}

/// Applies `diff` to `base` (declared paths only) and splices the result into the base's
/// trees; returns the new root tree. With a `writer`, the post-image blobs and new trees
/// are written as loose objects; without one (a dry check) nothing is written anywhere and
/// the ids are the same.
pub(super) fn apply_spliced(
    repo: &Repository,
    writer: Option<&LooseWriter>,
    trees: &mut Trees<'_>,
    base: Oid,
    patch: &Parsed<'_>,
    rules: &PostImageRules<'_>,
) -> Result<Oid, CheckError> {
    let (diff, files, declared) = (patch.diff, patch.files, patch.declared);
    let git = |op: &'static str| move |source| CheckError::Git { op, source };
    let odb = repo.odb().map_err(git("object store"))?;
    // Preimage of every declared path present in the base.
    let mut before: BTreeMap<String, (Oid, i32)> = BTreeMap::new();
    for path in declared {
        if let Some((id, mode)) = trees.entry(base, path) {
            if mode == MODE_TREE {
                // A file where the base has a directory: let libgit2 see a conflict.
                return Err(PolicyViolation::DoesNotApply {
                    path: path.clone(),
                    reason: "a directory exists at this path".into(),
                }
                .into());
            }
            before.insert(path.clone(), (id, mode));
        }
    }
    let (after, post_data) =
        match direct::apply(&odb, diff, files, &before).map_err(git("read preimage"))? {
            Some(done) => done,
            None => with_libgit2(&odb, diff, declared, &before)?,
        };
    for (path, (id, mode)) in &after {
        let (path, mode) = (path.clone(), *mode);
        if mode == MODE_LINK && !rules.allow_symlinks {
            // The delta checks see every symlink a header declares; this is the last word
            // on what the apply actually produced.
            return Err(PolicyViolation::Symlink {
                path,
                change: SymlinkChange::Created,
            }
            .into());
        }
        if mode != MODE_BLOB && mode != MODE_EXEC && mode != MODE_LINK {
            return Err(PolicyViolation::TreeMismatch {
                path,
                reason: format!("has mode {mode:o}"),
            }
            .into());
        }
        // The post-image size: new content is in memory; a blob the patch only moves is
        // the base's.
        let bytes = match post_data.get(id) {
            Some(data) => data.len() as u64,
            None => odb.read_header(*id).map_err(git("read post-image"))?.0 as u64,
        };
        if bytes > rules.max_file_bytes {
            return Err(PolicyViolation::FileTooLarge {
                path,
                bytes,
                max: rules.max_file_bytes,
                mode: rules.mode.map(str::to_owned),
            }
            .into());
        }
    }
    let mut edits: BTreeMap<String, Option<(Oid, i32)>> = BTreeMap::new();
    for path in declared {
        let old = before.get(path);
        let new = after.get(path);
        if old == new {
            return Err(PolicyViolation::TreeMismatch {
                path: path.clone(),
                reason: "declared but unchanged".into(),
            }
            .into());
        }
        edits.insert(path.clone(), new.copied());
    }
    let blobs: BTreeSet<Oid> = edits.values().flatten().map(|(id, _)| *id).collect();
    let edits: Vec<(Vec<&str>, Blob)> = edits
        .iter()
        .map(|(p, v)| (p.split('/').collect(), *v))
        .collect();
    let refs: Vec<Edit<'_>> = edits.iter().map(|(c, v)| (c.as_slice(), *v)).collect();
    let mut new_trees = Vec::new();
    let root = match splice(trees, Some(base), &refs, "", &mut new_trees)? {
        Some(id) => id,
        None => {
            let empty = Oid::hash_object(ObjectType::Tree, &[]).map_err(git("empty tree"))?;
            new_trees.push((empty, Vec::new()));
            empty
        }
    };
    // Blobs first, then trees children first: every object on disk is complete.
    let io = |source| CheckError::Io {
        op: "write object",
        source,
    };
    if let Some(loose) = writer {
        for id in blobs {
            // A blob the patch only moves (a rename) is the base's and already stored.
            if let Some(data) = post_data.get(&id) {
                loose
                    .write_hashed(&odb, id, ObjectType::Blob, data)
                    .map_err(io)?;
            }
        }
    }
    for (id, bytes) in new_trees {
        if let Some(loose) = writer {
            loose
                .write_hashed(&odb, id, ObjectType::Tree, &bytes)
                .map_err(io)?;
        }
        // A dry check's cache is its own: trees that exist only there never reach a
        // branch's cache.
        trees.cache.put(id, Arc::new(bytes));
    }
    Ok(root)
}

/// libgit2's apply, on a scratch tree holding only the declared paths in a repository
/// whose only object store is in memory: the post-image of every declared path that
/// stays, and the bytes of the blobs the apply made.
pub(super) fn with_libgit2(
    odb: &Odb<'_>,
    diff: &Diff<'_>,
    declared: &BTreeSet<String>,
    before: &BTreeMap<String, (Oid, i32)>,
) -> Result<direct::PostImage, CheckError> {
    let git = |op: &'static str| move |source| CheckError::Git { op, source };
    let first = declared.iter().next().cloned().unwrap_or_default();
    let scratch = Repository::from_odb(Odb::new().map_err(git("scratch object store"))?)
        .map_err(git("scratch repository"))?;
    // An empty configuration: nothing read from disk, and the user's settings (case
    // folding, file modes) cannot change how a patch applies to trees.
    scratch
        .set_config(&Config::new().map_err(git("scratch configuration"))?)
        .map_err(git("scratch configuration"))?;
    let scratch_odb = scratch.odb().map_err(git("scratch object store"))?;
    scratch_odb
        .add_new_mempack_backend(1)
        .map_err(git("scratch object store"))?;
    let mut scratch_index = Index::new().map_err(git("new index"))?;
    for (path, (id, mode)) in before {
        // A gitlink's commit is usually absent; apply then fails as it would on disk.
        // (The repository is not added as an alternate of the scratch store: every write
        // there would then look for the object on disk first, rescanning the pack
        // directory on each miss.)
        if let Ok(object) = odb.read(*id) {
            scratch_odb
                .write(object.kind(), object.data())
                .map_err(git("copy preimage"))?;
        }
        scratch_index
            .add(&index_entry(path, *id, *mode))
            .map_err(git("scratch index"))?;
    }
    let scratch_tree_id = scratch_index
        .write_tree_to(&scratch)
        .map_err(git("write scratch tree"))?;
    let scratch_tree = scratch
        .find_tree(scratch_tree_id)
        .map_err(git("read scratch tree"))?;
    let post = scratch
        .apply_to_tree(&scratch_tree, diff, None)
        .map_err(|e| PolicyViolation::DoesNotApply {
            path: declared
                .iter()
                .find(|p| e.message().contains(p.as_str()))
                .cloned()
                .unwrap_or_else(|| first.clone()),
            reason: e.message().to_owned(),
        })?;
    // Post-image of the declared paths; anything else in the result is undeclared.
    let mut after = BTreeMap::new();
    let mut data = HashMap::new();
    for entry in post.iter() {
        let path = String::from_utf8_lossy(&entry.path).into_owned();
        if !declared.contains(&path) {
            return Err(PolicyViolation::TreeMismatch {
                path,
                reason: "changed but not declared".into(),
            }
            .into());
        }
        if before.get(&path).map(|(id, _)| *id) != Some(entry.id)
            && let Ok(object) = scratch_odb.read(entry.id)
        {
            data.insert(entry.id, object.data().to_vec());
        }
        after.insert(path, (entry.id, entry.mode as i32));
    }
    Ok((after, data))
}

fn index_entry(path: &str, id: Oid, mode: i32) -> IndexEntry {
    IndexEntry {
        ctime: IndexTime::new(0, 0),
        mtime: IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: mode as u32,
        uid: 0,
        gid: 0,
        file_size: 0,
        id,
        flags: 0,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}

/// A blob id and mode, or `None` for a removal.
type Blob = Option<(Oid, i32)>;

type Edit<'a> = (&'a [&'a str], Blob);

/// Puts `name` → `value` into `slots` (`None` removes it).
fn set_slot<'a>(slots: &mut Vec<Slot<'a>>, name: &'a [u8], value: Option<(Oid, i32)>) {
    let at = slots.iter().position(|s| s.name() == name);
    match (at, value) {
        (Some(k), Some((id, mode))) => slots[k] = Slot::New { name, mode, id },
        (None, Some((id, mode))) => slots.push(Slot::New { name, mode, id }),
        (Some(k), None) => {
            slots.remove(k);
        }
        (None, None) => {}
    }
}

/// Applies `edits` (component paths → new blob or removal) to the tree `tree`, building the
/// new trees' bytes and recording them with their ids in `written` (children before
/// parents); `None` when the result is empty.
fn splice(
    trees: &mut Trees<'_>,
    tree: Option<Oid>,
    edits: &[Edit<'_>],
    prefix: &str,
    written: &mut Vec<(Oid, Vec<u8>)>,
) -> Result<Option<Oid>, CheckError> {
    let git = |op: &'static str| move |source| CheckError::Git { op, source };
    let base = match tree {
        Some(id) => trees.raw(id).map_err(git("read tree"))?,
        None => Arc::new(Vec::new()),
    };
    let entries = parse_tree(&base).map_err(git("read tree"))?;
    let mut slots: Vec<Slot<'_>> = entries.iter().map(Slot::Kept).collect();
    let mut i = 0;
    while i < edits.len() {
        let Some(name) = edits[i].0.first().copied() else {
            i += 1;
            continue;
        };
        let mut j = i;
        while j < edits.len() && edits[j].0.first() == Some(&name) {
            j += 1;
        }
        let group = &edits[i..j];
        i = j;
        let full = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let conflict = |reason: &str| -> CheckError {
            PolicyViolation::DoesNotApply {
                path: full.clone(),
                reason: reason.to_owned(),
            }
            .into()
        };
        let direct: Vec<_> = group.iter().filter(|(c, _)| c.len() == 1).collect();
        let nested: Vec<Edit<'_>> = group
            .iter()
            .filter(|(c, _)| c.len() > 1)
            .map(|(c, v)| (&c[1..], *v))
            .collect();
        let at = slots.iter().position(|s| s.name() == name.as_bytes());
        let existing = at.map(|k| match &slots[k] {
            Slot::Kept(e) => (e.id, e.mode),
            Slot::New { id, mode, .. } => (*id, *mode),
        });
        if let Some((_, value)) = direct.first() {
            match value {
                Some((id, mode)) => {
                    if !nested.is_empty() {
                        return Err(conflict("path is both a file and a directory"));
                    }
                    if matches!(existing, Some((_, MODE_TREE))) {
                        return Err(conflict("a directory exists at this path"));
                    }
                    set_slot(&mut slots, name.as_bytes(), Some((*id, *mode)));
                    continue;
                }
                None => {
                    set_slot(&mut slots, name.as_bytes(), None);
                    if nested.is_empty() {
                        continue;
                    }
                }
            }
        }
        let removed_here = matches!(direct.first(), Some((_, None)));
        let subtree = match existing {
            _ if removed_here => None,
            Some((id, MODE_TREE)) => Some(id),
            Some(_) => return Err(conflict("a file exists where a directory is needed")),
            None => None,
        };
        let new = splice(trees, subtree, &nested, &full, written)?;
        set_slot(&mut slots, name.as_bytes(), new.map(|id| (id, MODE_TREE)));
    }
    if slots.is_empty() {
        return Ok(None);
    }
    let bytes = serialize_tree(&base, slots);
    let id = Oid::hash_object(ObjectType::Tree, &bytes).map_err(git("hash tree"))?;
    written.push((id, bytes));
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tree::TreeCache;

    #[test]
    fn splice_builds_the_trees_libgit2_builds() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let blob = |s: &str| repo.blob(s.as_bytes()).unwrap();
        // Names whose byte order differs from git's tree order ("a" sorts as "a/").
        let mut sub = repo.treebuilder(None).unwrap();
        sub.insert("x", blob("x"), MODE_BLOB).unwrap();
        sub.insert("w", blob("w"), MODE_BLOB).unwrap();
        let sub = sub.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        for name in ["a-b", "a.c", "a0", "ab", "b"] {
            root.insert(name, blob(name), MODE_BLOB).unwrap();
        }
        root.insert("a", sub, MODE_TREE).unwrap();
        root.insert("c", sub, MODE_TREE).unwrap();
        let base = root.write().unwrap();
        let file = |s: &str| Some((blob(s), MODE_BLOB));
        let cases: Vec<Vec<(&str, Blob)>> = vec![
            vec![("a/y", file("y"))],
            vec![("a-", file("new"))],
            vec![("a.b/new", file("new")), ("a/x", None)],
            vec![("ab", None), ("b", Some((blob("b"), MODE_EXEC)))],
            vec![("c/deep/er", file("deep")), ("c/x", None)],
            vec![("a", None), ("zz", file("zz"))],
        ];
        for edits in cases {
            let mut sorted = edits.clone();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            let comps: Vec<(Vec<&str>, Blob)> = sorted
                .iter()
                .map(|(p, v)| (p.split('/').collect(), *v))
                .collect();
            let refs: Vec<Edit<'_>> = comps.iter().map(|(c, v)| (c.as_slice(), *v)).collect();
            let cache = TreeCache::default();
            let mut trees = Trees::new(repo.odb().unwrap(), &cache);
            let mut written = Vec::new();
            let ours = splice(&mut trees, Some(base), &refs, "", &mut written)
                .unwrap()
                .unwrap();
            let mut update = git2::build::TreeUpdateBuilder::new();
            for (path, value) in &edits {
                match value {
                    Some((id, MODE_EXEC)) => {
                        update.upsert(*path, *id, git2::FileMode::BlobExecutable)
                    }
                    Some((id, _)) => update.upsert(*path, *id, git2::FileMode::Blob),
                    None => update.remove(*path),
                };
            }
            let theirs = update
                .create_updated(&repo, &repo.find_tree(base).unwrap())
                .unwrap();
            assert_eq!(ours, theirs, "{edits:?}");
            for (id, bytes) in &written {
                assert_eq!(Oid::hash_object(ObjectType::Tree, bytes).unwrap(), *id);
            }
        }
    }
}
