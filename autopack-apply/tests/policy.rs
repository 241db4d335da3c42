//! One hostile patch per policy rule, on a real repository; each asserts the exact rule
//! and path, and that nothing the invariant protects changed.

mod common;

use autopack_apply::{
    ChangeKind, IntegrationBranch, PatchLimits, PatchPolicy, PolicyViolation, ProtectedPath,
    SymlinkChange,
};
use autopack_core::vocabulary::BuilderMode;
use common::{Fixture, Snapshot};

fn tweak() -> PatchPolicy {
    PatchPolicy::for_mode(&BuilderMode::TweakLight)
}

fn violation(
    policy: &PatchPolicy,
    fx: &Fixture,
    branch: &IntegrationBranch,
    patch: &str,
) -> PolicyViolation {
    let before = Snapshot::take(fx.path());
    let tip = branch.tip().unwrap();
    let err = policy
        .check(branch, patch.as_bytes())
        .expect_err("patch should be rejected");
    assert_eq!(
        Snapshot::take(fx.path()),
        before,
        "check must not touch HEAD, index, work tree or refs"
    );
    assert_eq!(branch.tip().unwrap(), tip);
    let v = err
        .violation()
        .unwrap_or_else(|| panic!("not a violation: {err}"))
        .clone();
    assert!(
        v.to_string().starts_with(v.rule()),
        "message names the rule: {v}"
    );
    v
}

const NEW_FILE: &str =
    "diff --git a/{p} b/{p}\nnew file mode 100644\n--- /dev/null\n+++ b/{p}\n@@ -0,0 +1 @@\n+x\n";

fn new_file(p: &str) -> String {
    NEW_FILE.replace("{p}", p)
}

#[test]
fn a_good_patch_passes_and_touches_exactly_its_paths() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let patch = "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,3 @@\n-pub fn a() {}\n+pub fn a() { b() }\n \n pub fn b() {}\n";
    let checked = tweak().check(&branch, patch.as_bytes()).unwrap();
    assert_eq!(checked.changes().len(), 1);
    assert_eq!(checked.changes()[0].path, "src/lib.rs");
    assert_eq!(checked.changes()[0].kind, ChangeKind::Modified);
    assert_eq!((checked.insertions(), checked.deletions()), (1, 1));
    let repo = fx.repo();
    let base = repo
        .find_commit(checked.base_tip())
        .unwrap()
        .tree()
        .unwrap();
    let new = repo.find_tree(checked.tree()).unwrap();
    let diff = repo
        .diff_tree_to_tree(Some(&base), Some(&new), None)
        .unwrap();
    let paths: Vec<_> = diff
        .deltas()
        .map(|d| d.new_file().path().unwrap().to_owned())
        .collect();
    assert_eq!(paths, vec![std::path::PathBuf::from("src/lib.rs")]);
}

/// Loose objects in the repository (the fixture has no packs).
fn loose_objects(fx: &Fixture) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for dir in std::fs::read_dir(fx.path().join(".git/objects")).unwrap() {
        let dir = dir.unwrap();
        let name = dir.file_name().to_string_lossy().into_owned();
        if name.len() != 2 || !dir.path().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(dir.path()).unwrap() {
            out.insert(format!(
                "{name}{}",
                file.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    out
}

#[test]
fn a_check_writes_only_the_objects_the_commit_keeps() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let before = loose_objects(&fx);
    // A patch that does not apply leaves nothing behind: the scratch tree and libgit2's
    // apply stay in memory.
    let stale =
        "diff --git a/README b/README\n--- a/README\n+++ b/README\n@@ -1 +1 @@\n-goodbye\n+bye\n";
    assert!(tweak().check(&branch, stale.as_bytes()).is_err());
    assert_eq!(loose_objects(&fx), before);
    // A good one writes the post-image blob and the trees along its path, nothing else.
    let patch = "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,3 @@\n-pub fn a() {}\n+pub fn a() { b() }\n \n pub fn b() {}\n";
    let checked = tweak().check(&branch, patch.as_bytes()).unwrap();
    let repo = fx.repo();
    let root = repo.find_tree(checked.tree()).unwrap();
    let src = root.get_path(std::path::Path::new("src")).unwrap().id();
    let blob = root
        .get_path(std::path::Path::new("src/lib.rs"))
        .unwrap()
        .id();
    let expected: std::collections::BTreeSet<String> = [checked.tree(), src, blob]
        .iter()
        .map(|id| id.to_string())
        .collect();
    let added: std::collections::BTreeSet<String> =
        loose_objects(&fx).difference(&before).cloned().collect();
    assert_eq!(added, expected);
}

#[test]
fn new_nested_file_rename_and_delete_splice_correctly() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let patch = concat!(
        "diff --git a/src/deep/new.rs b/src/deep/new.rs\nnew file mode 100644\n--- /dev/null\n+++ b/src/deep/new.rs\n@@ -0,0 +1 @@\n+fn new() {}\n",
        "diff --git a/docs/guide.md b/docs/guide.md\ndeleted file mode 100644\n--- a/docs/guide.md\n+++ /dev/null\n@@ -1,3 +0,0 @@\n-# Guide\n-\n-Read me.\n",
    );
    let checked = tweak().check(&branch, patch.as_bytes()).unwrap();
    let repo = fx.repo();
    let base = repo
        .find_commit(checked.base_tip())
        .unwrap()
        .tree()
        .unwrap();
    let new = repo.find_tree(checked.tree()).unwrap();
    let diff = repo
        .diff_tree_to_tree(Some(&base), Some(&new), None)
        .unwrap();
    let mut paths: Vec<String> = diff
        .deltas()
        .map(|d| {
            d.new_file()
                .path()
                .or(d.old_file().path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    paths.sort();
    assert_eq!(paths, ["docs/guide.md", "src/deep/new.rs"]);
    assert!(
        new.get_path(std::path::Path::new("docs")).is_err(),
        "empty directory disappears"
    );

    let rename = "diff --git a/src/util.rs b/src/helpers.rs\nsimilarity index 100%\nrename from src/util.rs\nrename to src/helpers.rs\n";
    let checked = tweak().check(&branch, rename.as_bytes()).unwrap();
    assert_eq!(checked.changes()[0].kind, ChangeKind::Renamed);
    assert_eq!(
        checked.changes()[0].old_path.as_deref(),
        Some("src/util.rs")
    );
    let new = repo.find_tree(checked.tree()).unwrap();
    assert!(new.get_path(std::path::Path::new("src/helpers.rs")).is_ok());
    assert!(new.get_path(std::path::Path::new("src/util.rs")).is_err());
}

#[test]
fn rejects_non_git_diffs() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let plain = "--- a/README\n+++ b/README\n@@ -1 +1 @@\n-hello\n+bye\n";
    assert!(matches!(
        violation(&tweak(), &fx, &branch, plain),
        PolicyViolation::NotGitDiff { .. }
    ));
    assert!(matches!(
        violation(&tweak(), &fx, &branch, "hello"),
        PolicyViolation::NotGitDiff { .. }
    ));
    assert!(matches!(
        violation(&tweak(), &fx, &branch, ""),
        PolicyViolation::NotGitDiff { .. }
    ));
}

#[test]
fn rejects_absolute_paths_in_every_header() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let abs = |p: &str| PolicyViolation::AbsolutePath { path: p.into() };
    // libgit2 alone would turn this into `passwd`.
    let plus = "diff --git a/passwd b/passwd\nnew file mode 100644\n--- /dev/null\n+++ /etc/passwd\n@@ -0,0 +1 @@\n+x\n";
    assert_eq!(violation(&tweak(), &fx, &branch, plus), abs("/etc/passwd"));
    let header = "diff --git /etc/passwd /etc/passwd\nnew file mode 100644\n--- /dev/null\n+++ b/passwd\n@@ -0,0 +1 @@\n+x\n";
    assert_eq!(
        violation(&tweak(), &fx, &branch, header),
        abs("/etc/passwd")
    );
    let double = "diff --git a//etc/passwd b//etc/passwd\nnew file mode 100644\n--- /dev/null\n+++ b//etc/passwd\n@@ -0,0 +1 @@\n+x\n";
    assert_eq!(
        violation(&tweak(), &fx, &branch, double),
        abs("a//etc/passwd")
    );
    let rename = "diff --git a/README b/README\nsimilarity index 100%\nrename from README\nrename to /tmp/README\n";
    assert_eq!(
        violation(&tweak(), &fx, &branch, rename),
        abs("/tmp/README")
    );
}

#[test]
fn rejects_parent_components() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    assert_eq!(
        violation(&tweak(), &fx, &branch, &new_file("../outside")),
        PolicyViolation::ParentComponent {
            path: "../outside".into()
        }
    );
    assert_eq!(
        violation(&tweak(), &fx, &branch, &new_file("src/../../x")),
        PolicyViolation::ParentComponent {
            path: "src/../../x".into()
        }
    );
}

#[test]
fn rejects_git_dir_components() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    assert_eq!(
        violation(&tweak(), &fx, &branch, &new_file(".git/hooks/pre-commit")),
        PolicyViolation::GitDirComponent {
            path: ".git/hooks/pre-commit".into()
        }
    );
    assert_eq!(
        violation(&tweak(), &fx, &branch, &new_file("sub/.GIT/config")),
        PolicyViolation::GitDirComponent {
            path: "sub/.GIT/config".into()
        }
    );
}

#[test]
fn rejects_new_symlinks_and_mode_changes_to_symlinks() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let new_link = "diff --git a/evil b/evil\nnew file mode 120000\n--- /dev/null\n+++ b/evil\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n";
    assert_eq!(
        violation(&tweak(), &fx, &branch, new_link),
        PolicyViolation::Symlink {
            path: "evil".into(),
            change: SymlinkChange::Created
        }
    );
    let mode_change = "diff --git a/README b/README\nold mode 100644\nnew mode 120000\n";
    assert_eq!(
        violation(&tweak(), &fx, &branch, mode_change),
        PolicyViolation::Symlink {
            path: "README".into(),
            change: SymlinkChange::Retyped
        }
    );
}

#[test]
fn rejects_submodules_and_gitmodules() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let gitlink = "diff --git a/vendor/lib b/vendor/lib\nnew file mode 160000\nindex 0000000..1111111\n--- /dev/null\n+++ b/vendor/lib\n@@ -0,0 +1 @@\n+Subproject commit 1111111111111111111111111111111111111111\n";
    assert_eq!(
        violation(&tweak(), &fx, &branch, gitlink),
        PolicyViolation::Submodule {
            path: "vendor/lib".into()
        }
    );
    assert_eq!(
        violation(&tweak(), &fx, &branch, &new_file(".gitmodules")),
        PolicyViolation::Submodule {
            path: ".gitmodules".into()
        }
    );
}

#[test]
fn rejects_writing_through_a_symlinked_directory() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let patch = "diff --git a/link/util.rs b/link/util.rs\n--- a/link/util.rs\n+++ b/link/util.rs\n@@ -1 +1 @@\n-pub fn util() {}\n+pub fn util() { evil() }\n";
    assert_eq!(
        violation(&tweak(), &fx, &branch, patch),
        PolicyViolation::ThroughSymlink {
            path: "link/util.rs".into(),
            symlink: "link".into()
        }
    );
    assert_eq!(
        violation(&tweak(), &fx, &branch, &new_file("link/new.rs")),
        PolicyViolation::ThroughSymlink {
            path: "link/new.rs".into(),
            symlink: "link".into()
        }
    );
}

#[test]
fn rejects_binary_content() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let git_binary = "diff --git a/blob.bin b/blob.bin\nnew file mode 100644\nindex 0000000..e69de29\nGIT binary patch\nliteral 5\nMcmZ?wbYf*;0026W3jhEB\n\nliteral 0\nHcmV?d00001\n\n";
    assert_eq!(
        violation(&tweak(), &fx, &branch, git_binary),
        PolicyViolation::Binary {
            path: "blob.bin".into()
        }
    );
    let marker = "diff --git a/blob.bin b/blob.bin\nnew file mode 100644\nindex 0000000..e69de29\nBinary files /dev/null and b/blob.bin differ\n";
    assert_eq!(
        violation(&tweak(), &fx, &branch, marker),
        PolicyViolation::Binary {
            path: "blob.bin".into()
        }
    );
    let nul =
        "diff --git a/README b/README\n--- a/README\n+++ b/README\n@@ -1 +1 @@\n-hello\n+hel\0lo\n";
    assert_eq!(
        violation(&tweak(), &fx, &branch, nul),
        PolicyViolation::Binary {
            path: "README".into()
        }
    );
}

#[test]
fn rejects_paths_outside_the_scope_and_protected_paths() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let scoped = tweak().scope(&["src/**"]).unwrap();
    let readme =
        "diff --git a/README b/README\n--- a/README\n+++ b/README\n@@ -1 +1 @@\n-hello\n+bye\n";
    assert_eq!(
        violation(&scoped, &fx, &branch, readme),
        PolicyViolation::OutsideScope {
            path: "README".into(),
            scope: vec!["src/**".into()]
        }
    );
    assert!(
        scoped
            .check(&branch, new_file("src/a/b.rs").as_bytes())
            .is_ok()
    );
    let shallow = tweak().scope(&["src/*"]).unwrap();
    assert!(matches!(
        violation(&shallow, &fx, &branch, &new_file("src/a/b.rs")),
        PolicyViolation::OutsideScope { .. }
    ));
    let protected = tweak()
        .protect(&[ProtectedPath::refuse(".github/**")])
        .unwrap();
    assert_eq!(
        violation(
            &protected,
            &fx,
            &branch,
            &new_file(".github/workflows/ci.yml")
        ),
        PolicyViolation::ProtectedPath {
            path: ".github/workflows/ci.yml".into(),
            pattern: ".github/**".into()
        }
    );
}

#[test]
fn rejects_patches_over_the_size_limits() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let three = format!("{}{}{}", new_file("a"), new_file("b"), new_file("c"));
    assert_eq!(
        violation(&tweak(), &fx, &branch, &three),
        PolicyViolation::TooManyFiles {
            files: 3,
            max: 2,
            path: "c".into()
        }
    );
    let lines: String = (0..201).map(|i| format!("+line {i}\n")).collect();
    let big = format!(
        "diff --git a/big b/big\nnew file mode 100644\n--- /dev/null\n+++ b/big\n@@ -0,0 +1,201 @@\n{lines}"
    );
    assert_eq!(
        violation(&tweak(), &fx, &branch, &big),
        PolicyViolation::TooManyLines {
            lines: 201,
            max: 200,
            path: "big".into()
        }
    );
    let roomy = PatchPolicy::with_limits(PatchLimits {
        max_files: 3,
        max_changed_lines: 1000,
        ..PatchLimits::for_mode(&BuilderMode::TweakLight)
    });
    assert!(roomy.check(&branch, big.as_bytes()).is_ok());
    assert!(roomy.check(&branch, three.as_bytes()).is_ok());
    assert_eq!(PatchLimits::for_mode(&BuilderMode::TweakLight).max_files, 2);
}

#[test]
fn rejects_patches_that_do_not_apply() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let stale =
        "diff --git a/README b/README\n--- a/README\n+++ b/README\n@@ -1 +1 @@\n-goodbye\n+bye\n";
    assert!(
        matches!(violation(&tweak(), &fx, &branch, stale), PolicyViolation::DoesNotApply { path, .. } if path == "README")
    );
    assert!(matches!(
        violation(&tweak(), &fx, &branch, &new_file("README")),
        PolicyViolation::DoesNotApply { path, .. } if path == "README"
    ));
    let missing = "diff --git a/nope b/nope\n--- a/nope\n+++ b/nope\n@@ -1 +1 @@\n-a\n+b\n";
    assert!(
        matches!(violation(&tweak(), &fx, &branch, missing), PolicyViolation::DoesNotApply { path, .. } if path == "nope")
    );
    // A file where the base has a directory, and a directory where it has a file.
    assert!(
        matches!(violation(&tweak(), &fx, &branch, &new_file("src")), PolicyViolation::DoesNotApply { path, .. } if path == "src")
    );
    assert!(matches!(
        violation(&tweak(), &fx, &branch, &new_file("README/x")),
        PolicyViolation::DoesNotApply { path, .. } if path == "README"
    ));
}

#[test]
fn rejects_declared_changes_that_change_nothing() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let noop = "diff --git a/README b/README\nold mode 100644\nnew mode 100644\n";
    let v = violation(&tweak(), &fx, &branch, noop);
    assert!(
        matches!(&v, PolicyViolation::TreeMismatch { path, .. } if path == "README")
            || matches!(&v, PolicyViolation::NotGitDiff { .. }),
        "{v:?}"
    );
}

#[test]
fn rejects_patches_over_the_byte_limit_before_parsing_them() {
    let fx = Fixture::new();
    let branch = fx.branch("r1");
    let patch = new_file("src/new.rs");
    assert_eq!(tweak().max_patch_bytes(), 64 * 1024);
    let exact = tweak().with_max_patch_bytes(patch.len() as u64);
    assert!(exact.check(&branch, patch.as_bytes()).is_ok());
    let under = tweak().with_max_patch_bytes(patch.len() as u64 - 1);
    assert_eq!(
        violation(&under, &fx, &branch, &patch),
        PolicyViolation::PatchTooLarge {
            bytes: patch.len() as u64,
            max: patch.len() as u64 - 1,
            mode: Some("tweak_light".into()),
        }
    );
    // The mode's default (64 KiB under tweak_light), checked before the text is read (a
    // NUL byte is not reached).
    let mut huge = new_file("src/new.rs");
    huge.push('\0');
    huge.extend(std::iter::repeat_n('x', 64 * 1024));
    let v = violation(&tweak(), &fx, &branch, &huge);
    assert_eq!(v.rule(), "patch_too_large");
    assert!(v.to_string().contains("65536"), "{v}");
    assert!(v.to_string().contains("tweak_light"), "{v}");
}
