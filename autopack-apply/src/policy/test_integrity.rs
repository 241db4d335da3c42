//! Test integrity (SPEC §13), classified from the diff alone: a patch that deletes or
//! renames a test file, adds a skip marker, or removes more assertions from a test file
//! than it adds. None of these refuses the patch: each becomes a
//! [`PatchHold::TestIntegrity`] on the checked patch, and the host makes the phase strict
//! CI + Auditor `approve` + an issue. Heuristics on text, so they err towards holding.

use autopack_core::patch_rules::{PatchHold, TestIntegrityFinding};

use super::lines::FileLines;
use super::{ChangeKind, ChangedPath};

/// Directories whose files are tests.
const TEST_DIRS: &[&str] = &["tests", "test", "__tests__", "spec"];

/// File-name endings of tests (`*_test.go`, `*.spec.ts`, …).
const TEST_SUFFIXES: &[&str] = &[
    "_test.py",
    "_test.go",
    "_test.rb",
    "_spec.rb",
    "_test.rs",
    "Test.java",
    "Tests.java",
    "Test.kt",
    "Tests.kt",
    "Test.cs",
    "Tests.cs",
];

/// Script endings a `.test.` / `.spec.` file name may have.
const SCRIPT_EXTENSIONS: &[&str] = &["js", "ts", "jsx", "tsx", "mjs", "cjs", "mts", "cts"];

/// Whether `path` (repository-relative, `/`-separated) is a test file: anything under a
/// `tests/`, `test/`, `__tests__/` or `spec/` directory (which covers Rust's `tests/**/*.rs`),
/// `test_*.py`, `conftest.py`, `*_test.{py,go,rb,rs}`, `*_spec.rb`,
/// `*.test.{js,ts,jsx,tsx,…}`, `*.spec.{js,ts,…}`, `*Test(s).java`, `*Test(s).kt`,
/// `*Test(s).cs`.
pub fn is_test_path(path: &str) -> bool {
    let mut comps: Vec<&str> = path.split('/').collect();
    let Some(name) = comps.pop() else {
        return false;
    };
    if comps.iter().any(|c| TEST_DIRS.contains(c)) {
        return true;
    }
    if (name.starts_with("test_") && name.ends_with(".py")) || name == "conftest.py" {
        return true;
    }
    if TEST_SUFFIXES
        .iter()
        .any(|s| name.len() > s.len() && name.ends_with(s))
    {
        return true;
    }
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 3
        && matches!(parts[parts.len() - 2], "test" | "spec")
        && SCRIPT_EXTENSIONS.contains(&parts[parts.len() - 1])
}

/// Skip and ignore markers, most specific first (the first match names the finding).
/// Focus markers (`it.only`, `fit(`) are here too: they silently skip every other test.
const SKIP_MARKERS: &[&str] = &[
    "@pytest.mark.skipif",
    "@pytest.mark.skip",
    "@pytest.mark.xfail",
    "pytest.skip(",
    "pytest.xfail(",
    "@unittest.skipIf",
    "@unittest.skipUnless",
    "@unittest.expectedFailure",
    "@unittest.skip",
    "raise unittest.SkipTest",
    "raise SkipTest",
    "self.skipTest(",
    "#[ignore",
    "it.skip(",
    "test.skip(",
    "describe.skip(",
    "it.todo(",
    "test.todo(",
    "it.only(",
    "test.only(",
    "describe.only(",
    "xit(",
    "xtest(",
    "xdescribe(",
    "fit(",
    "fdescribe(",
    "t.SkipNow(",
    "t.Skipf(",
    "t.Skip(",
    "@Disabled",
    "@Ignore",
    "[Ignore",
    "(Skip =",
    "(Skip=",
    "skip(\"",
    "pending(",
    "xit \"",
    "xit '",
];

/// Marks of an assertion line.
const ASSERTIONS: &[&str] = &[
    "assert",
    "expect(",
    "expect!(",
    "self.assert",
    "require.",
    "should",
    "t.Error",
    "t.Fatal",
    "XCTAssert",
    "EXPECT_",
    "ASSERT_",
    "Assert.",
    "verify(",
];

/// The skip marker on `line`, if any. A marker must start a word (`exit(` is not `xit(`).
pub(crate) fn skip_marker(line: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(line);
    SKIP_MARKERS.iter().copied().find(|m| starts_word(&text, m))
}

/// Whether `line` asserts something.
pub(crate) fn is_assertion(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    ASSERTIONS.iter().any(|m| starts_word(&text, m))
}

/// Whether `needle` occurs in `text` at the start of a word.
fn starts_word(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(at, _)| {
        text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

/// Files whose added lines are read for skip markers: tests, and code that can hold tests
/// inline (Rust's `#[ignore]` in `src/`), but not prose that may quote a marker.
fn may_hold_tests(path: &str) -> bool {
    const PROSE: &[&str] = &[".md", ".rst", ".txt", ".adoc", ".html"];
    is_test_path(path) || !PROSE.iter().any(|e| path.ends_with(e))
}

/// The test-integrity holds of a patch whose files are `changes` (with their changed
/// lines, in the same order). One hold per file and finding, in patch order.
pub(crate) fn findings(changes: &[(&ChangedPath, &FileLines)]) -> Vec<PatchHold> {
    let mut out = Vec::new();
    let mut hold = |path: &str, finding| {
        let hold = PatchHold::TestIntegrity {
            path: path.to_owned(),
            finding,
        };
        if !out.contains(&hold) {
            out.push(hold);
        }
    };
    for (change, lines) in changes {
        let source = change.old_path.as_deref().unwrap_or(&change.path);
        match change.kind {
            ChangeKind::Deleted if is_test_path(&change.path) => {
                hold(&change.path, TestIntegrityFinding::DeletedTest);
                continue;
            }
            ChangeKind::Renamed if is_test_path(source) => hold(
                source,
                TestIntegrityFinding::RenamedTest {
                    to: change.path.clone(),
                },
            ),
            _ => {}
        }
        if may_hold_tests(&change.path)
            && let Some(marker) = lines.added.iter().find_map(|l| skip_marker(l))
        {
            hold(
                &change.path,
                TestIntegrityFinding::SkipMarker {
                    marker: marker.to_owned(),
                },
            );
        }
        if is_test_path(source) || is_test_path(&change.path) {
            let removed = lines.removed.iter().filter(|l| is_assertion(l)).count();
            let added = lines.added.iter().filter(|l| is_assertion(l)).count();
            if removed > added {
                hold(
                    &change.path,
                    TestIntegrityFinding::RemovedAssertions {
                        removed: removed - added,
                    },
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::lines::file_lines;

    #[test]
    fn test_paths() {
        for path in [
            "tests/a.rs",
            "crate/tests/deep/x.rs",
            "test/x.js",
            "src/__tests__/x.js",
            "spec/models/user_spec.rb",
            "pkg/test_util.py",
            "pkg/util_test.py",
            "conftest.py",
            "server/handler_test.go",
            "web/app.test.tsx",
            "web/app.spec.ts",
            "src/FooTest.java",
            "src/FooTests.java",
            "src/FooTest.kt",
            "src/FooTests.cs",
            "lib/user_spec.rb",
        ] {
            assert!(is_test_path(path), "{path}");
        }
        for path in [
            "src/lib.rs",
            "src/testing.rs",
            "contest.py",
            "test.py",
            "Test.java",
            "docs/testing.md",
            "app.test",
            "latest/x.rs",
        ] {
            assert!(!is_test_path(path), "{path}");
        }
    }

    #[test]
    fn markers_start_a_word() {
        assert_eq!(skip_marker(b"    xit('works', () => {"), Some("xit("));
        assert_eq!(skip_marker(b"    process.exit(1)"), None);
        assert_eq!(
            skip_marker(b"@pytest.mark.skipif(sys.platform == 'win32')"),
            Some("@pytest.mark.skipif")
        );
        assert_eq!(skip_marker(b"#[ignore = \"slow\"]"), Some("#[ignore"));
        assert_eq!(skip_marker(b"\tt.Skip(\"later\")"), Some("t.Skip("));
        assert!(is_assertion(b"    assert_eq!(a, b);"));
        assert!(is_assertion(b"    self.assertEqual(a, b)"));
        assert!(is_assertion(b"  expect(x).toBe(1)"));
        assert!(!is_assertion(b"    let reassert = 1;"));
    }

    fn holds_of(patch: &str) -> Vec<PatchHold> {
        let diff = git2::Diff::from_buffer(patch.as_bytes()).unwrap();
        let lines = file_lines(&diff).unwrap();
        let changes: Vec<ChangedPath> = diff
            .deltas()
            .map(|d| {
                let path = d
                    .new_file()
                    .path()
                    .or(d.old_file().path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let kind = match d.status() {
                    git2::Delta::Added => ChangeKind::Added,
                    git2::Delta::Deleted => ChangeKind::Deleted,
                    git2::Delta::Renamed => ChangeKind::Renamed,
                    _ => ChangeKind::Modified,
                };
                let old_path = (kind == ChangeKind::Renamed)
                    .then(|| d.old_file().path().unwrap().to_string_lossy().into_owned());
                ChangedPath {
                    path,
                    old_path,
                    kind,
                }
            })
            .collect();
        let pairs: Vec<_> = changes.iter().zip(lines.iter()).collect();
        findings(&pairs)
    }

    #[test]
    fn findings_from_diffs() {
        let deleted = "diff --git a/tests/a.py b/tests/a.py\ndeleted file mode 100644\n--- a/tests/a.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-def test_a():\n-    assert 1\n";
        assert_eq!(
            holds_of(deleted),
            vec![PatchHold::TestIntegrity {
                path: "tests/a.py".into(),
                finding: TestIntegrityFinding::DeletedTest
            }]
        );
        let renamed = "diff --git a/tests/a.py b/old/a.py\nsimilarity index 100%\nrename from tests/a.py\nrename to old/a.py\n";
        assert_eq!(
            holds_of(renamed),
            vec![PatchHold::TestIntegrity {
                path: "tests/a.py".into(),
                finding: TestIntegrityFinding::RenamedTest {
                    to: "old/a.py".into()
                }
            }]
        );
        let skip = "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,2 +1,3 @@\n #[test]\n+#[ignore]\n fn t() {}\n";
        assert_eq!(
            holds_of(skip),
            vec![PatchHold::TestIntegrity {
                path: "src/lib.rs".into(),
                finding: TestIntegrityFinding::SkipMarker {
                    marker: "#[ignore".into()
                }
            }]
        );
        let weaker = "diff --git a/tests/t.rs b/tests/t.rs\n--- a/tests/t.rs\n+++ b/tests/t.rs\n@@ -1,4 +1,3 @@\n fn t() {\n-    assert_eq!(f(), 1);\n-    assert!(g());\n+    assert!(true);\n }\n";
        assert_eq!(
            holds_of(weaker),
            vec![PatchHold::TestIntegrity {
                path: "tests/t.rs".into(),
                finding: TestIntegrityFinding::RemovedAssertions { removed: 1 }
            }]
        );
        // Prose quoting a marker, and a test edit that keeps its assertions, hold nothing.
        let doc = "diff --git a/docs/x.md b/docs/x.md\n--- a/docs/x.md\n+++ b/docs/x.md\n@@ -1 +1,2 @@\n a\n+Use `it.skip(` to skip.\n";
        assert!(holds_of(doc).is_empty());
        let same = "diff --git a/tests/t.rs b/tests/t.rs\n--- a/tests/t.rs\n+++ b/tests/t.rs\n@@ -1 +1 @@\n-    assert_eq!(f(), 1);\n+    assert_eq!(f(), 2);\n";
        assert!(holds_of(same).is_empty());
    }
}
