//! Shared helpers: real repositories with a checkout, and a snapshot of everything the
//! crate must never touch.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use autopack_apply::{BranchOptions, CommitInfo, CommitSignature, IntegrationBranch, Role};
use autopack_core::ids::{PhaseId, RunId, TierId};
use git2::{Repository, Signature, Time};

pub const T0: i64 = 1_700_000_000;

pub fn sig() -> Signature<'static> {
    Signature::new("Test", "test@example.invalid", &Time::new(T0, 0)).unwrap()
}

pub fn commit_sig() -> CommitSignature {
    CommitSignature {
        name: "autopack".into(),
        email: "autopack@example.invalid".into(),
        seconds: T0,
        offset_minutes: 0,
    }
}

pub fn info(phase: &str) -> CommitInfo {
    CommitInfo {
        tier_id: TierId::new("t1").unwrap(),
        phase_id: PhaseId::new(phase).unwrap(),
        role: Role::Builder,
        message: format!("Phase {phase}"),
        signature: commit_sig(),
        provenance: None,
    }
}

/// Stages every file of `repo`'s work tree and commits it on HEAD (on top of HEAD's commit
/// when there is one).
pub fn commit_all(repo: &Repository, message: &str) -> git2::Oid {
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig(), &sig(), message, &tree, &parents)
        .unwrap()
}

/// A patch adding a one-line file at `path`, the path quoted as git quotes it (C-style,
/// octal bytes).
pub fn quoted_new_file(path: &str) -> String {
    let mut q = String::new();
    for b in path.bytes() {
        match b {
            b'"' | b'\\' => {
                q.push('\\');
                q.push(b as char);
            }
            0x20..=0x7e => q.push(b as char),
            _ => q.push_str(&format!("\\{b:03o}")),
        }
    }
    format!(
        "diff --git \"a/{q}\" \"b/{q}\"\nnew file mode 100644\n--- /dev/null\n+++ \"b/{q}\"\n@@ -0,0 +1 @@\n+x\n"
    )
}

pub fn run(id: &str) -> RunId {
    RunId::new(id).unwrap()
}

/// A repository with a checkout on `main`: README, src/lib.rs, src/util.rs, docs/guide.md,
/// run.sh (executable) and `link` -> `src` (a symlinked directory).
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = Repository::init(root).unwrap();
        repo.set_head("refs/heads/main").unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::write(root.join("README"), "hello\n").unwrap();
        std::fs::write(root.join("src/lib.rs"), "pub fn a() {}\n\npub fn b() {}\n").unwrap();
        std::fs::write(root.join("src/util.rs"), "pub fn util() {}\n").unwrap();
        std::fs::write(root.join("docs/guide.md"), "# Guide\n\nRead me.\n").unwrap();
        std::fs::write(root.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::os::unix::fs::symlink("src", root.join("link")).unwrap();
        commit_all(&repo, "initial");
        Fixture { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn repo(&self) -> Repository {
        Repository::open(self.path()).unwrap()
    }

    pub fn branch(&self, run_id: &str) -> IntegrationBranch {
        IntegrationBranch::create(self.path(), &run(run_id), "main", BranchOptions::default())
            .unwrap()
    }

    /// Content of `path` at `commit`.
    pub fn blob_at(&self, commit: git2::Oid, path: &str) -> Option<Vec<u8>> {
        let repo = self.repo();
        let tree = repo.find_commit(commit).unwrap().tree().unwrap();
        let entry = tree.get_path(Path::new(path)).ok()?;
        Some(repo.find_blob(entry.id()).unwrap().content().to_vec())
    }
}

/// Everything that must not change: HEAD, the index file, work-tree files, and every ref
/// outside `refs/heads/autonomous/` and `refs/tags/autonomous/`.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub head: Vec<u8>,
    pub index: Option<Vec<u8>>,
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    pub refs: BTreeMap<String, String>,
    pub packed_refs: Option<Vec<u8>>,
}

impl Snapshot {
    pub fn take(root: &Path) -> Snapshot {
        let git = root.join(".git");
        let mut files = BTreeMap::new();
        walk(root, root, &mut files);
        let repo = Repository::open(root).unwrap();
        let mut refs = BTreeMap::new();
        for r in repo.references().unwrap() {
            let r = r.unwrap();
            let name = r.name().unwrap().to_owned();
            if name.starts_with("refs/heads/autonomous/")
                || name.starts_with("refs/tags/autonomous/")
            {
                continue;
            }
            let target = match r.target() {
                Some(id) => id.to_string(),
                None => format!("-> {:?}", r.symbolic_target()),
            };
            refs.insert(name, target);
        }
        Snapshot {
            head: std::fs::read(git.join("HEAD")).unwrap(),
            index: std::fs::read(git.join("index")).ok(),
            files,
            refs,
            packed_refs: std::fs::read(git.join("packed-refs")).ok(),
        }
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path == root.join(".git") {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(root).unwrap().to_owned();
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            out.insert(rel, format!("symlink:{}", target.display()).into_bytes());
        } else if meta.is_dir() {
            walk(root, &path, out);
        } else {
            use std::os::unix::fs::PermissionsExt;
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend(format!("\nmode:{:o}", meta.permissions().mode()).bytes());
            out.insert(rel, bytes);
        }
    }
}
