//! A corpus of hostile patches, one or more per rule of the policy and per attack that got
//! through before (symlinks, git-dir aliases, sizes, protected paths, …). Each case asserts
//! the rule's name and path, and that nothing was written: branch tip, every ref, the host's
//! HEAD, index and work tree, and the object files. The dry check (`check_at`) gives the
//! same refusal for every case. Then the patches that weaken tests or touch protected paths
//! under `auditor_approve`: accepted, with the right holds.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use autopack_apply::{
    IntegrationBranch, PatchHold, PatchLimits, PatchPolicy, PolicyViolation, ProtectedAction,
    ProtectedPath, TestIntegrityFinding,
};
use autopack_core::patch_rules::default_protected_paths;
use autopack_core::vocabulary::BuilderMode;
use common::{Fixture, Snapshot};

/// The longest line `tweak_light` allows (the one table's value).
const TWEAK_LINE: usize = 2_000;

/// The common fixture plus what the corpus attacks: a CI workflow, a runner script, a test
/// file, git attribute and ignore files, and `filelink` -> `README` (a tracked symlink to a
/// file), committed on `main` with the checkout updated.
fn fixture() -> Fixture {
    let fx = Fixture::new();
    let root = fx.path();
    std::fs::create_dir_all(root.join(".github/workflows")).unwrap();
    std::fs::create_dir_all(root.join("tests")).unwrap();
    std::fs::write(root.join(".github/workflows/ci.yml"), "on: push\n").unwrap();
    std::fs::write(root.join("run_tests.sh"), "#!/bin/sh\npytest\n").unwrap();
    std::fs::write(
        root.join("tests/test_a.py"),
        "def test_a():\n    assert f() == 1\n    assert g()\n",
    )
    .unwrap();
    std::fs::write(root.join(".gitattributes"), "* text=auto\n").unwrap();
    std::fs::write(root.join(".gitignore"), "target/\n").unwrap();
    std::os::unix::fs::symlink("README", root.join("filelink")).unwrap();
    common::commit_all(&fx.repo(), "more");
    fx
}

/// Every ref (autonomous ones too) and every object file, by name and bytes.
fn store(root: &Path) -> (BTreeMap<String, String>, BTreeMap<String, Vec<u8>>) {
    let repo = git2::Repository::open(root).unwrap();
    let refs = repo
        .references()
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (
                r.name().unwrap().to_owned(),
                format!("{:?} {:?}", r.target(), r.symbolic_target()),
            )
        })
        .collect();
    let mut objects = BTreeMap::new();
    let mut stack = vec![root.join(".git/objects")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                objects.insert(
                    p.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    (refs, objects)
}

/// The refusal of `patch`, asserting nothing was written (by the check and the dry check,
/// which must agree).
fn refusal(
    policy: &PatchPolicy,
    fx: &Fixture,
    branch: &IntegrationBranch,
    patch: &[u8],
) -> PolicyViolation {
    let before = Snapshot::take(fx.path());
    let stored = store(fx.path());
    let tip = branch.tip().unwrap();
    let err = policy.check(branch, patch).expect_err("refused");
    let v = err
        .violation()
        .unwrap_or_else(|| panic!("not a violation: {err}"))
        .clone();
    let repo = fx.repo();
    let dry = policy.check_at(&repo, tip, patch).expect_err("dry refused");
    assert_eq!(dry.violation(), Some(&v), "the dry check agrees");
    assert_eq!(branch.tip().unwrap(), tip, "branch tip unchanged");
    assert_eq!(Snapshot::take(fx.path()), before, "HEAD, index, work tree");
    assert!(
        store(fx.path()) == stored,
        "refs and object files unchanged"
    );
    assert!(
        v.to_string().starts_with(v.rule()),
        "message names the rule: {v}"
    );
    v
}

fn new_file(path: &str) -> String {
    format!(
        "diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+x\n"
    )
}

fn edit(path: &str, old: &str, new: &str) -> String {
    format!(
        "diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-{old}\n+{new}\n"
    )
}

struct Case {
    name: &'static str,
    patch: Vec<u8>,
    rule: &'static str,
    /// Part of the path the refusal names (`None`: a rule about the whole text).
    path: Option<String>,
    policy: Option<PatchPolicy>,
}

fn case(name: &'static str, patch: impl Into<Vec<u8>>, rule: &'static str, path: &str) -> Case {
    Case {
        name,
        patch: patch.into(),
        rule,
        path: (!path.is_empty()).then(|| path.to_owned()),
        policy: None,
    }
}

fn roomy() -> PatchLimits {
    PatchLimits {
        max_files: 10,
        max_changed_lines: 10_000,
        max_patch_bytes: 1 << 20,
        max_line_bytes: 10_000,
        max_file_bytes: 1 << 20,
    }
}

fn corpus() -> Vec<Case> {
    let protected = || {
        PatchPolicy::for_mode(&BuilderMode::TweakLight)
            .protect(&default_protected_paths(&["bash run_tests.sh"]))
            .unwrap()
    };
    let with = |mut c: Case, policy: PatchPolicy| {
        c.policy = Some(policy);
        c
    };
    let long_path: String = (0..100)
        .map(|i| format!("{i:049}"))
        .collect::<Vec<_>>()
        .join("/");
    let mut fifty_mb = new_file("big.txt").into_bytes();
    fifty_mb.truncate(fifty_mb.len() - 2);
    fifty_mb.extend(std::iter::repeat_n(b'y', 50 << 20));
    fifty_mb.push(b'\n');
    let long_line = format!(
        "diff --git a/src/long.rs b/src/long.rs\nnew file mode 100644\n--- /dev/null\n+++ b/src/long.rs\n@@ -0,0 +1 @@\n+{}\n",
        "z".repeat(TWEAK_LINE + 1)
    );
    let lines: String = (0..100).map(|i| format!("+line {i:04}\n")).collect();
    let big_file = format!(
        "diff --git a/big b/big\nnew file mode 100644\n--- /dev/null\n+++ b/big\n@@ -0,0 +1,100 @@\n{lines}"
    );
    let small_files = PatchPolicy::with_limits(PatchLimits {
        max_file_bytes: 512,
        ..roomy()
    });
    let link_edit = "diff --git a/filelink b/filelink\n--- a/filelink\n+++ b/filelink\n@@ -1 +1 @@\n-README\n\\ No newline at end of file\n+/etc/passwd\n\\ No newline at end of file\n";
    let link_retype = "diff --git a/filelink b/filelink\ndeleted file mode 120000\n--- a/filelink\n+++ /dev/null\n@@ -1 +0,0 @@\n-README\n\\ No newline at end of file\ndiff --git a/filelink b/filelink\nnew file mode 100644\n--- /dev/null\n+++ b/filelink\n@@ -0,0 +1 @@\n+pwned\n";
    let link_mode = "diff --git a/filelink b/filelink\nold mode 120000\nnew mode 100644\n";
    let to_link = "diff --git a/README b/README\nold mode 100644\nnew mode 120000\n";
    let new_link = "diff --git a/evil b/evil\nnew file mode 120000\n--- /dev/null\n+++ b/evil\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n";
    let link_rename = "diff --git a/filelink b/moved\nsimilarity index 100%\nrename from filelink\nrename to moved\n";
    let gitlink = "diff --git a/vendor/lib b/vendor/lib\nnew file mode 160000\nindex 0000000..1111111\n--- /dev/null\n+++ b/vendor/lib\n@@ -0,0 +1 @@\n+Subproject commit 1111111111111111111111111111111111111111\n";
    let git_binary = "diff --git a/blob.bin b/blob.bin\nnew file mode 100644\nindex 0000000..e69de29\nGIT binary patch\nliteral 5\nMcmZ?wbYf*;0026W3jhEB\n\nliteral 0\nHcmV?d00001\n\n";
    let binary_marker = "diff --git a/blob.bin b/blob.bin\nnew file mode 100644\nindex 0000000..e69de29\nBinary files /dev/null and b/blob.bin differ\n";
    let three = format!("{}{}{}", new_file("a"), new_file("b"), new_file("c"));
    let many_lines: String = (0..201).map(|i| format!("+line {i}\n")).collect();
    let too_many_lines = format!(
        "diff --git a/many b/many\nnew file mode 100644\n--- /dev/null\n+++ b/many\n@@ -0,0 +1,201 @@\n{many_lines}"
    );
    let rename_away = "diff --git a/run_tests.sh b/scripts/run.sh\nsimilarity index 100%\nrename from run_tests.sh\nrename to scripts/run.sh\n";
    let runner_exit = "diff --git a/run_tests.sh b/run_tests.sh\n--- a/run_tests.sh\n+++ b/run_tests.sh\n@@ -1,2 +1,2 @@\n #!/bin/sh\n-pytest\n+exit 0\n";
    vec![
        // Symlinks.
        case(
            "symlink edited as a plain hunk",
            link_edit,
            "symlink",
            "filelink",
        ),
        case(
            "symlink retyped (delete + add)",
            link_retype,
            "symlink",
            "filelink",
        ),
        case("symlink retyped (mode)", link_mode, "symlink", "filelink"),
        case("file turned into a symlink", to_link, "symlink", "README"),
        case("new symlink", new_link, "symlink", "evil"),
        case("symlink renamed", link_rename, "symlink", "moved"),
        case(
            "through a symlinked dir (edit)",
            edit("link/util.rs", "pub fn util() {}", "evil()"),
            "through_symlink",
            "link/util.rs",
        ),
        case(
            "through a symlinked dir (new)",
            new_file("link/new.rs"),
            "through_symlink",
            "link/new.rs",
        ),
        // Git-dir aliases (git's own rules: NTFS and HFS+).
        case(
            ".git",
            new_file(".git/hooks/pre-commit"),
            "git_dir_component",
            ".git/hooks",
        ),
        case(
            ".GIT",
            new_file("sub/.GIT/config"),
            "git_dir_component",
            ".GIT",
        ),
        case(
            "zero-width non-joiner (quoted)",
            common::quoted_new_file(".g\u{200c}it/config"),
            "git_dir_component",
            "it/config",
        ),
        case(
            "zero-width joiner (raw)",
            new_file("sub/.gi\u{200d}t/config"),
            "git_dir_component",
            "t/config",
        ),
        case(
            "byte order mark",
            common::quoted_new_file("\u{feff}.git/config"),
            "git_dir_component",
            "config",
        ),
        case(
            "NTFS short name",
            new_file("git~1/config"),
            "git_dir_component",
            "git~1/config",
        ),
        case(
            "NTFS short name, upper case",
            new_file("GIT~1/hooks/x"),
            "git_dir_component",
            "GIT~1",
        ),
        case(
            "NTFS stream",
            new_file(".git::$INDEX_ALLOCATION/config"),
            "git_dir_component",
            ".git::$INDEX_ALLOCATION",
        ),
        case(
            "trailing space",
            new_file(".git /x"),
            "git_dir_component",
            ".git /x",
        ),
        case(
            "trailing dot",
            new_file(".git./config"),
            "git_dir_component",
            ".git.",
        ),
        case(
            "trailing dots",
            new_file("a/.git.../config"),
            "git_dir_component",
            ".git...",
        ),
        // Other path rules.
        case(
            "absolute +++",
            "diff --git a/passwd b/passwd\nnew file mode 100644\n--- /dev/null\n+++ /etc/passwd\n@@ -0,0 +1 @@\n+x\n",
            "absolute_path",
            "/etc/passwd",
        ),
        case(
            "absolute header",
            "diff --git /etc/passwd /etc/passwd\nnew file mode 100644\n--- /dev/null\n+++ b/passwd\n@@ -0,0 +1 @@\n+x\n",
            "absolute_path",
            "/etc/passwd",
        ),
        case(
            "double slash",
            "diff --git a//etc/passwd b//etc/passwd\nnew file mode 100644\n--- /dev/null\n+++ b//etc/passwd\n@@ -0,0 +1 @@\n+x\n",
            "absolute_path",
            "/etc/passwd",
        ),
        case(
            "rename to absolute",
            "diff --git a/README b/README\nsimilarity index 100%\nrename from README\nrename to /tmp/README\n",
            "absolute_path",
            "/tmp/README",
        ),
        case(
            "parent component",
            new_file("../outside"),
            "parent_component",
            "../outside",
        ),
        case(
            "nested parent component",
            new_file("src/../../x"),
            "parent_component",
            "src/../../x",
        ),
        case(
            "dot component",
            new_file("src/./x"),
            "malformed_path",
            "src/./x",
        ),
        case("backslash", new_file("src\\x"), "malformed_path", "src\\x"),
        case(
            "Windows device name",
            new_file("docs/con"),
            "unportable_path",
            "docs/con",
        ),
        case("colon", new_file("docs/a:b"), "unportable_path", "docs/a:b"),
        case(
            "trailing dot name",
            new_file("docs/notes."),
            "unportable_path",
            "docs/notes.",
        ),
        case(
            "5,000-byte path",
            new_file(&long_path),
            "path_too_long",
            &long_path[..49],
        ),
        case(
            "300-byte component",
            new_file(&format!("src/{}", "c".repeat(300))),
            "component_too_long",
            "src/ccc",
        ),
        // Submodules.
        case("submodule entry", gitlink, "submodule", "vendor/lib"),
        case(
            ".gitmodules",
            new_file(".gitmodules"),
            "submodule",
            ".gitmodules",
        ),
        case(
            ".gitmodules, NTFS trailing space",
            new_file(".gitmodules "),
            "submodule",
            ".gitmodules",
        ),
        case(
            ".gitmodules, NTFS short name",
            new_file("GITMOD~1"),
            "submodule",
            "GITMOD~1",
        ),
        // Content.
        case("GIT binary patch", git_binary, "binary", "blob.bin"),
        case("Binary files marker", binary_marker, "binary", "blob.bin"),
        case(
            "NUL byte",
            edit("README", "hello", "hel\0lo"),
            "binary",
            "README",
        ),
        case(
            "not a git diff",
            "--- a/README\n+++ b/README\n@@ -1 +1 @@\n-hello\n+bye\n",
            "not_git_diff",
            "",
        ),
        case("empty", "", "not_git_diff", ""),
        // Sizes.
        case("50 MB single line", fifty_mb, "patch_too_large", ""),
        case(
            "line over tweak_light's 1,000 bytes",
            long_line,
            "line_too_long",
            "src/long.rs",
        ),
        with(
            case(
                "file over the file size limit",
                big_file,
                "file_too_large",
                "big",
            ),
            small_files,
        ),
        case("too many files", three, "too_many_files", "c"),
        case("too many lines", too_many_lines, "too_many_lines", "many"),
        // Protected paths (the defaults for `bash run_tests.sh`).
        with(
            case(
                "CI workflow edit",
                edit(".github/workflows/ci.yml", "on: push", "on: never"),
                "protected_path",
                ".github/workflows/ci.yml",
            ),
            protected(),
        ),
        with(
            case(
                "runner script turned into exit 0",
                runner_exit,
                "protected_path",
                "run_tests.sh",
            ),
            protected(),
        ),
        with(
            case(
                "rename away from a protected path",
                rename_away,
                "protected_path",
                "run_tests.sh",
            ),
            protected(),
        ),
        with(
            case(
                ".autonomous_runs",
                new_file(".autonomous_runs/x"),
                "protected_path",
                ".autonomous_runs/x",
            ),
            protected(),
        ),
        with(
            case(
                "ruleset file",
                new_file("config/project_ruleset_p1.json"),
                "protected_path",
                "config/project_ruleset_p1.json",
            ),
            protected(),
        ),
        with(
            case(
                "the CLI's settings file",
                new_file("autopack.toml"),
                "protected_path",
                "autopack.toml",
            ),
            protected(),
        ),
        with(
            case(
                ".gitattributes",
                edit(".gitattributes", "* text=auto", "* binary"),
                "protected_path",
                ".gitattributes",
            ),
            protected(),
        ),
        with(
            case(
                ".gitignore",
                edit(".gitignore", "target/", "*"),
                "protected_path",
                ".gitignore",
            ),
            protected(),
        ),
        with(
            case(
                "nested .gitignore",
                new_file("src/.gitignore"),
                "protected_path",
                "src/.gitignore",
            ),
            protected(),
        ),
        // Scope and applying.
        with(
            case(
                "outside the scope",
                edit("README", "hello", "bye"),
                "outside_scope",
                "README",
            ),
            PatchPolicy::for_mode(&BuilderMode::TweakLight)
                .scope(&["src/**"])
                .unwrap(),
        ),
        case(
            "stale hunk",
            edit("README", "goodbye", "bye"),
            "does_not_apply",
            "README",
        ),
        case(
            "file exists",
            new_file("README"),
            "does_not_apply",
            "README",
        ),
    ]
}

#[test]
fn every_hostile_patch_is_refused_by_name_and_writes_nothing() {
    let fx = fixture();
    let branch = fx.branch("r1");
    let cases = corpus();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let default = PatchPolicy::for_mode(&BuilderMode::TweakLight);
    for c in &cases {
        let policy = c.policy.as_ref().unwrap_or(&default);
        let v = refusal(policy, &fx, &branch, &c.patch);
        assert_eq!(v.rule(), c.rule, "{}: {v}", c.name);
        match &c.path {
            Some(part) => {
                let path = v
                    .path()
                    .unwrap_or_else(|| panic!("{}: no path in {v}", c.name));
                assert!(
                    path.contains(part.as_str()),
                    "{}: {path:?} lacks {part:?}",
                    c.name
                );
            }
            None => assert_eq!(v.path(), None, "{}", c.name),
        }
    }
}

#[test]
fn size_refusals_name_the_limit_the_size_and_the_mode() {
    let fx = fixture();
    let branch = fx.branch("r1");
    let tweak = PatchPolicy::for_mode(&BuilderMode::TweakLight);
    let long_line = format!(
        "diff --git a/src/long.rs b/src/long.rs\nnew file mode 100644\n--- /dev/null\n+++ b/src/long.rs\n@@ -0,0 +1 @@\n+{}\n",
        "z".repeat(TWEAK_LINE + 1)
    );
    assert_eq!(
        refusal(&tweak, &fx, &branch, long_line.as_bytes()),
        PolicyViolation::LineTooLong {
            path: "src/long.rs".into(),
            bytes: TWEAK_LINE as u64 + 1,
            max: TWEAK_LINE as u64,
            mode: Some("tweak_light".into()),
        }
    );
    let content: String = (0..300).map(|i| format!("+{i:0999}\n")).collect();
    let big = format!(
        "diff --git a/big b/big\nnew file mode 100644\n--- /dev/null\n+++ b/big\n@@ -0,0 +1,300 @@\n{content}"
    );
    // tweak_light's file size limit, the rest roomy.
    let policy = PatchPolicy::with_limits(PatchLimits {
        max_file_bytes: PatchLimits::for_mode(&BuilderMode::TweakLight).max_file_bytes,
        ..roomy()
    });
    let v = refusal(&policy, &fx, &branch, big.as_bytes());
    assert_eq!(
        v,
        PolicyViolation::FileTooLarge {
            path: "big".into(),
            bytes: 300_000,
            max: 256 * 1024,
            mode: None,
        }
    );
}

fn holds(
    policy: &PatchPolicy,
    fx: &Fixture,
    branch: &IntegrationBranch,
    patch: &str,
) -> Vec<PatchHold> {
    let tip = branch.tip().unwrap();
    let checked = policy.check(branch, patch.as_bytes()).expect("accepted");
    let dry = policy
        .check_at(&fx.repo(), tip, patch.as_bytes())
        .expect("dry accepted");
    assert_eq!(dry.holds(), checked.holds(), "the dry check agrees");
    assert_eq!(dry.tree(), checked.tree());
    checked.holds().to_vec()
}

fn integrity(path: &str, finding: TestIntegrityFinding) -> PatchHold {
    PatchHold::TestIntegrity {
        path: path.into(),
        finding,
    }
}

#[test]
fn test_tampering_is_accepted_with_a_test_integrity_hold() {
    let fx = fixture();
    let branch = fx.branch("r1");
    let policy = PatchPolicy::for_mode(&BuilderMode::TweakLight);
    let delete = "diff --git a/tests/test_a.py b/tests/test_a.py\ndeleted file mode 100644\n--- a/tests/test_a.py\n+++ /dev/null\n@@ -1,3 +0,0 @@\n-def test_a():\n-    assert f() == 1\n-    assert g()\n";
    assert_eq!(
        holds(&policy, &fx, &branch, delete),
        vec![integrity(
            "tests/test_a.py",
            TestIntegrityFinding::DeletedTest
        )]
    );
    let rename = "diff --git a/tests/test_a.py b/old/a.py\nsimilarity index 100%\nrename from tests/test_a.py\nrename to old/a.py\n";
    assert_eq!(
        holds(&policy, &fx, &branch, rename),
        vec![integrity(
            "tests/test_a.py",
            TestIntegrityFinding::RenamedTest {
                to: "old/a.py".into()
            }
        )]
    );
    let skip = "diff --git a/tests/test_a.py b/tests/test_a.py\n--- a/tests/test_a.py\n+++ b/tests/test_a.py\n@@ -1,3 +1,4 @@\n+@pytest.mark.skip(reason=\"flaky\")\n def test_a():\n     assert f() == 1\n     assert g()\n";
    assert_eq!(
        holds(&policy, &fx, &branch, skip),
        vec![integrity(
            "tests/test_a.py",
            TestIntegrityFinding::SkipMarker {
                marker: "@pytest.mark.skip".into()
            }
        )]
    );
    let weaken = "diff --git a/tests/test_a.py b/tests/test_a.py\n--- a/tests/test_a.py\n+++ b/tests/test_a.py\n@@ -1,3 +1,2 @@\n def test_a():\n-    assert f() == 1\n-    assert g()\n+    pass\n";
    assert_eq!(
        holds(&policy, &fx, &branch, weaken),
        vec![integrity(
            "tests/test_a.py",
            TestIntegrityFinding::RemovedAssertions { removed: 2 }
        )]
    );
    // An ordinary edit holds nothing.
    assert!(holds(&policy, &fx, &branch, &edit("README", "hello", "bye")).is_empty());
}

#[test]
fn protected_paths_under_auditor_approve_are_accepted_with_a_hold() {
    let fx = fixture();
    let branch = fx.branch("r1");
    let approve: Vec<ProtectedPath> = default_protected_paths(&["bash run_tests.sh"])
        .into_iter()
        .map(|p| ProtectedPath {
            action: ProtectedAction::AuditorApprove,
            ..p
        })
        .collect();
    let policy = PatchPolicy::for_mode(&BuilderMode::TweakLight)
        .protect(&approve)
        .unwrap();
    let ci = edit(".github/workflows/ci.yml", "on: push", "on: never");
    assert_eq!(
        holds(&policy, &fx, &branch, &ci),
        vec![PatchHold::ProtectedPath {
            path: ".github/workflows/ci.yml".into(),
            pattern: ".github/workflows/**".into()
        }]
    );
    let runner = "diff --git a/run_tests.sh b/run_tests.sh\n--- a/run_tests.sh\n+++ b/run_tests.sh\n@@ -1,2 +1,2 @@\n #!/bin/sh\n-pytest\n+exit 0\n";
    assert_eq!(
        holds(&policy, &fx, &branch, runner),
        vec![PatchHold::ProtectedPath {
            path: "run_tests.sh".into(),
            pattern: "run_tests.sh".into()
        }]
    );
    // A refusing rule wins over an approving one for the same path.
    let mixed = PatchPolicy::for_mode(&BuilderMode::TweakLight)
        .protect(&[
            ProtectedPath {
                pattern: ".github/**".into(),
                action: ProtectedAction::AuditorApprove,
            },
            ProtectedPath::refuse(".github/workflows/**"),
        ])
        .unwrap();
    assert_eq!(
        refusal(&mixed, &fx, &branch, ci.as_bytes()),
        PolicyViolation::ProtectedPath {
            path: ".github/workflows/ci.yml".into(),
            pattern: ".github/workflows/**".into()
        }
    );
    // `for_mode` alone already protects the defaults; only an explicit empty rule list
    // lets CI configuration through.
    assert_eq!(
        PatchPolicy::for_mode(&BuilderMode::TweakLight)
            .protected()
            .len(),
        autopack_core::patch_rules::DEFAULT_PROTECTED_PATTERNS.len()
    );
    assert_eq!(
        refusal(
            &PatchPolicy::for_mode(&BuilderMode::TweakLight),
            &fx,
            &branch,
            ci.as_bytes()
        )
        .rule(),
        "protected_path"
    );
    assert!(
        PatchPolicy::for_mode(&BuilderMode::TweakLight)
            .protect(&[])
            .unwrap()
            .check(&branch, ci.as_bytes())
            .is_ok()
    );
}

#[test]
fn a_dry_check_writes_nothing_and_gives_the_tree_a_real_check_gives() {
    let fx = fixture();
    let branch = fx.branch("r1");
    let policy = PatchPolicy::for_mode(&BuilderMode::TweakLight);
    let patch = format!(
        "{}{}",
        edit("src/util.rs", "pub fn util() {}", "pub fn util() { 1 }"),
        new_file("src/deep/er/new.rs")
    );
    let before = Snapshot::take(fx.path());
    let stored = store(fx.path());
    let tip = branch.tip().unwrap();
    let repo = fx.repo();
    let dry = policy.check_at(&repo, tip, patch.as_bytes()).unwrap();
    assert!(
        store(fx.path()) == stored,
        "object store and refs byte-identical"
    );
    assert_eq!(Snapshot::take(fx.path()), before);
    assert!(
        repo.find_tree(dry.tree()).is_err(),
        "the dry tree was not written"
    );
    // A dry result names no branch: no branch commits it.
    assert!(branch.commit(&dry, &common::info("p1")).is_err());
    assert!(store(fx.path()) == stored);
    let real = policy.check(&branch, patch.as_bytes()).unwrap();
    assert_eq!(real.tree(), dry.tree());
    assert_eq!(real.changes(), dry.changes());
    assert_eq!(
        (real.insertions(), real.deletions()),
        (dry.insertions(), dry.deletions())
    );
    assert!(repo.find_tree(real.tree()).is_ok());
}

#[test]
fn a_dry_check_on_something_that_is_not_a_commit_is_an_error_not_a_panic() {
    let fx = fixture();
    let repo = fx.repo();
    let policy = PatchPolicy::for_mode(&BuilderMode::TweakLight);
    let patch = edit("README", "hello", "bye");
    let blob = repo.blob(b"not a commit\n").unwrap();
    let err = policy
        .check_at(&repo, blob, patch.as_bytes())
        .expect_err("a blob is no base");
    assert!(err.violation().is_none(), "{err}");
    assert!(err.to_string().contains("read base tree"), "{err}");
    // A patch over the limit is refused before the base is even looked at.
    let tiny = PatchPolicy::for_mode(&BuilderMode::TweakLight).with_max_patch_bytes(4);
    let err = tiny
        .check_at(&repo, blob, patch.as_bytes())
        .expect_err("too large");
    assert_eq!(
        err.violation().map(PolicyViolation::rule),
        Some("patch_too_large")
    );
}
