//! JUnit XML test reports (SPEC §13: "CI may read JUnit XML"): parsed, collected from a
//! workspace by globs, merged into one [`TestResults`].
//!
//! # Formats
//!
//! Parsing is [`junit_parser`]'s (lenient: no attribute is required, unknown elements are
//! skipped). The fixtures in `tests/fixtures/junit/` follow what these tools write:
//!
//! - **pytest** `--junitxml` (xunit2, its default): `<testsuites name="pytest tests">` around
//!   one `<testsuite name="pytest" errors= failures= skipped= tests= time= timestamp=
//!   hostname=>`; `<testcase classname="tests.test_x" name="test_y" time=>` (pytest's
//!   `xunit1` family adds `file=` and `line=`); `<failure message=>` with the traceback as
//!   text, `<error>` for errors in fixtures, `<skipped type="pytest.skip" message=>`
//!   (also for `xfail`), captured output in `<system-out>` / `<system-err>`.
//! - **cargo-nextest** (`[profile.ci.junit]`): `<testsuites name="nextest-run" tests=
//!   failures= errors= uuid= timestamp= time=>`, one `<testsuite name="crate::bin">` per
//!   binary, `<testcase name="mod::test" classname="crate::bin" timestamp= time=>`,
//!   `<failure type="test failure">` with `<system-out>` / `<system-err>` beside it;
//!   retries as `<flakyFailure>` (failed, then passed) and `<rerunFailure>` (failed again).
//! - **Jest** (`jest-junit`): `<testsuites name="jest tests" tests= failures= errors=
//!   time=>`, one `<testsuite name="{describe block or file}" errors= failures= skipped=
//!   timestamp= time= tests=>` per test file, `<testcase classname="{classname} {title}"
//!   name="{classname} {title}" time=>`, `<failure>` with the stack as text.
//! - **go-junit-report**: `<testsuites tests= failures=>`, `<testsuite name="pkg/path"
//!   tests= failures= errors= id= hostname= skipped= time= timestamp=>` with
//!   `<properties>`, `<testcase name="TestX" classname="pkg/path" time=>`, `<failure
//!   message="Failed" type="">`.
//! - **Maven Surefire**: a bare `<testsuite name="com.example.FooTest" ...>` root per
//!   class (`TEST-*.xml`), `<testcase name= classname= time=>`, `<failure message= type=>`,
//!   `<error>`, `<skipped>`, and `<flakyFailure>` / `<rerunFailure>` with
//!   `rerunFailingTestsCount`.
//!
//! # Test ids
//!
//! A test's id is `{classname}::{name}` when its `classname` attribute is non-empty, else
//! `{suite}::{name}` with the name of the innermost enclosing `<testsuite>` that has one,
//! else `{name}`. The id depends only on the report's text, so a base and a candidate
//! running the same tests give the same ids. Examples: pytest `tests.test_x::test_y`,
//! nextest `crate::bin::mod::test`, go `pkg/path::TestX`.
//!
//! The same id reported twice (pytest reports a test failing in its call and erroring in
//! teardown as two `<testcase>`s; two report files may hold one test) is merged: the worse
//! outcome wins ([`Outcome::merge`]), and a flake in either is a flake.
//!
//! # Reading untrusted files
//!
//! Report files are written by the test command, which is untrusted. [`collect`] walks the
//! workspace without following a symlink (a symlinked directory is not entered, and a
//! symlinked directory on a glob's literal prefix is an error); a matching symlink or
//! special file is refused ([`JunitError::Symlink`], [`JunitError::NotAFile`]) and never
//! opened; a regular file is opened with `O_NOFOLLOW | O_NONBLOCK` and must be the same
//! file (device and inode) that was examined. Globs are relative: an absolute glob or one
//! with a `..` component is [`JunitError::Glob`], so no report path leaves the workspace.
//! Reading is bounded: [`MAX_REPORT_BYTES`] per file, [`MAX_TOTAL_REPORT_BYTES`] and
//! [`MAX_REPORTS`] per collection. The gate reads reports only after the attempt's whole
//! process tree has been reaped, so nothing rewrites them while they are read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// The largest report file read (64 MiB); a larger one is [`JunitError::TooLarge`].
pub const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

/// The most bytes one [`collect`] reads over all its files (256 MiB).
pub const MAX_TOTAL_REPORT_BYTES: u64 = 256 * 1024 * 1024;

/// The most report files one [`collect`] reads (Surefire writes one per test class).
pub const MAX_REPORTS: usize = 10_000;

/// The longest failure message kept per test, in bytes (cut on a character boundary).
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// The deepest element nesting a report may have. Real reports nest a few levels (suites
/// in suites, a failure in a test case); the parser recurses into nested suites, so a
/// report written to overflow its stack is refused before it is parsed.
pub const MAX_NESTING: usize = 256;

/// How a test ended.
///
/// Ordered by severity (`Skipped < Passed < Failed < Errored`): merging two reports of one
/// test keeps the greater.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `<skipped>` (pytest's `xfail` too): not run, neither passing nor failing.
    Skipped,
    /// No `<failure>`, `<error>` or `<skipped>` (possibly after `<flakyFailure>`s).
    Passed,
    /// `<failure>`: an assertion failed.
    Failed,
    /// `<error>`: the test could not run to an assertion (a fixture, a panic in set-up).
    Errored,
}

impl Outcome {
    /// Failed or errored: the outcomes that make a test fail.
    pub fn is_failing(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Errored)
    }

    /// The worse of two outcomes of one test.
    pub fn merge(self, other: Outcome) -> Outcome {
        self.max(other)
    }
}

/// One test's result in a report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TestResult {
    /// How it ended.
    pub outcome: Outcome,
    /// Whether the report shows it failing and then passing within the run (nextest's and
    /// Surefire's `<flakyFailure>` / `<flakyError>` on a passing test).
    pub flaky: bool,
    /// The failure's or error's `message` attribute, else its text, trimmed, at most
    /// [`MAX_MESSAGE_BYTES`]; `None` for passing and skipped tests. (junit-parser 1.7 drops
    /// entity references such as `&apos;` from element text and joins the pieces with
    /// newlines; attributes are unescaped whole. For display, never for ids.)
    pub message: Option<String>,
}

impl TestResult {
    fn merge(&mut self, other: TestResult) {
        if other.outcome > self.outcome {
            self.outcome = other.outcome;
            self.message = other.message;
        }
        self.flaky |= other.flaky;
    }
}

/// The tests of one or more reports, by id (see the module documentation for the rule).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TestResults {
    /// Every test, by id, sorted.
    pub tests: BTreeMap<String, TestResult>,
    /// The report files read, relative to the workspace, sorted (one entry per
    /// [`parse_report`] call, named by the path it was given).
    pub reports: Vec<PathBuf>,
}

impl TestResults {
    /// The ids of the failing (failed or errored) tests, sorted.
    pub fn failing(&self) -> impl Iterator<Item = &str> {
        self.tests
            .iter()
            .filter(|(_, t)| t.outcome.is_failing())
            .map(|(id, _)| id.as_str())
    }

    /// The ids of the tests the report shows flaking within the run, sorted.
    pub fn flaky(&self) -> impl Iterator<Item = &str> {
        self.tests
            .iter()
            .filter(|(_, t)| t.flaky)
            .map(|(id, _)| id.as_str())
    }

    /// The outcome of test `id`, if the reports name it.
    pub fn outcome(&self, id: &str) -> Option<Outcome> {
        self.tests.get(id).map(|t| t.outcome)
    }

    /// Adds `other`'s tests and reports; a test in both keeps the worse outcome.
    pub fn merge(&mut self, other: TestResults) {
        for (id, result) in other.tests {
            self.insert(id, result);
        }
        self.reports.extend(other.reports);
        self.reports.sort();
        self.reports.dedup();
    }

    fn insert(&mut self, id: String, result: TestResult) {
        match self.tests.entry(id) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(result);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().merge(result),
        }
    }
}

/// Why reports could not be read. Every variant names the file or the glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JunitError {
    /// A glob is invalid, absolute, or has a `..` component (it would leave the workspace).
    #[error("JUnit report glob {glob:?}: {reason}")]
    Glob {
        /// The glob as configured.
        glob: String,
        /// Why it is refused.
        reason: String,
    },
    /// The file (or a directory on a glob's literal prefix) is a symbolic link: report
    /// paths are never followed through one.
    #[error("JUnit report {file}: is a symbolic link; refused, not followed")]
    Symlink {
        /// The path, relative to the workspace.
        file: PathBuf,
    },
    /// The path matches but is not a regular file (a FIFO, socket or device).
    #[error("JUnit report {file}: not a regular file")]
    NotAFile {
        /// The path, relative to the workspace.
        file: PathBuf,
    },
    /// The file is larger than the limit.
    #[error("JUnit report {file}: {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The path, relative to the workspace.
        file: PathBuf,
        /// Its size, or the bytes read when it grew while being read.
        size: u64,
        /// The limit that applied ([`MAX_REPORT_BYTES`] or what was left of
        /// [`MAX_TOTAL_REPORT_BYTES`]).
        limit: u64,
    },
    /// More files match than [`MAX_REPORTS`].
    #[error("JUnit reports: {count} files match {globs:?}, over the limit of {limit}")]
    TooManyReports {
        /// Files found when the walk stopped.
        count: usize,
        /// The limit.
        limit: usize,
        /// The globs.
        globs: Vec<String>,
    },
    /// Listing, examining, opening, reading or removing failed.
    #[error("JUnit report {file}: {reason}")]
    Io {
        /// The path, relative to the workspace.
        file: PathBuf,
        /// The system's error.
        reason: String,
    },
    /// The file is not a JUnit report the parser can read.
    #[error("JUnit report {file}: cannot parse: {reason}")]
    Parse {
        /// The path, relative to the workspace.
        file: PathBuf,
        /// The parser's error, with its causes.
        reason: String,
    },
}

fn io_error(file: &Path, e: &std::io::Error) -> JunitError {
    JunitError::Io {
        file: file.to_owned(),
        reason: e.to_string(),
    }
}

/// Parses one report's bytes; `file` names it in errors and in [`TestResults::reports`].
///
/// # Errors
/// [`JunitError::Parse`] when the bytes are not XML with a `<testsuites>`, `<testsuite>`
/// or `<testrun>` root, or nest deeper than [`MAX_NESTING`].
pub fn parse_report(file: &Path, xml: &[u8]) -> Result<TestResults, JunitError> {
    check_nesting(file, xml)?;
    let suites = junit_parser::from_reader(xml).map_err(|e| JunitError::Parse {
        file: file.to_owned(),
        reason: error_chain(&e),
    })?;
    let mut results = TestResults {
        tests: BTreeMap::new(),
        reports: vec![file.to_owned()],
    };
    // Nested suites, walked with an explicit stack (the depth is bounded already, but
    // this costs nothing).
    let mut stack: Vec<(&junit_parser::TestSuite, &str)> =
        suites.suites.iter().map(|s| (s, "")).collect();
    stack.reverse();
    while let Some((suite, outer)) = stack.pop() {
        let name = if suite.name.is_empty() {
            outer
        } else {
            suite.name.as_str()
        };
        for case in &suite.cases {
            let (id, result) = test_of(case, name);
            results.insert(id, result);
        }
        stack.extend(suite.suites.iter().rev().map(|s| (s, name)));
    }
    Ok(results)
}

/// The id and result of one `<testcase>` inside the suite named `suite`.
fn test_of(case: &junit_parser::TestCase, suite: &str) -> (String, TestResult) {
    use junit_parser::{RerunOrFlakyKind, TestStatus};
    let name = &case.original_name;
    let id = match case.classname.as_deref() {
        Some(classname) if !classname.is_empty() => format!("{classname}::{name}"),
        _ if !suite.is_empty() => format!("{suite}::{name}"),
        _ => name.clone(),
    };
    let (outcome, message) = match &case.status {
        TestStatus::Success => (Outcome::Passed, None),
        TestStatus::Skipped(_) => (Outcome::Skipped, None),
        TestStatus::Failure(f) => (Outcome::Failed, message_of(&f.message, &f.text)),
        TestStatus::Error(e) => (Outcome::Errored, message_of(&e.message, &e.text)),
    };
    // A passing test with flaky runs failed first and passed on a retry within the run;
    // `rerun*` elements only ever accompany a final failure.
    let flaky = outcome == Outcome::Passed
        && case.reruns.iter().any(|r| {
            matches!(
                r.kind,
                RerunOrFlakyKind::FlakyFailure | RerunOrFlakyKind::FlakyError
            )
        });
    (
        id,
        TestResult {
            outcome,
            flaky,
            message,
        },
    )
}

/// Refuses XML nested deeper than [`MAX_NESTING`]: one pass of quick-xml's reader, which
/// does not recurse. Malformed XML is left to the parser, whose error is the better one.
fn check_nesting(file: &Path, xml: &[u8]) -> Result<(), JunitError> {
    use quick_xml::events::Event;
    // Only nested suites make the parser recurse, and they cannot nest deeper than there
    // are suite tags: most reports have a few, and the full pass (a sixth of the parse's
    // time) is skipped.
    let suite_tags = xml
        .split(|&b| b == b'<')
        .filter(|tag| tag.starts_with(b"testsuite"))
        .count();
    if suite_tags <= MAX_NESTING {
        return Ok(());
    }
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut depth = 0usize;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(_)) => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(JunitError::Parse {
                        file: file.to_owned(),
                        reason: format!("elements nested deeper than {MAX_NESTING}"),
                    });
                }
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Eof) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
        buf.clear();
    }
}

fn message_of(message: &str, text: &str) -> Option<String> {
    let m = message.trim();
    let m = if m.is_empty() { text.trim() } else { m };
    if m.is_empty() {
        return None;
    }
    let mut end = m.len().min(MAX_MESSAGE_BYTES);
    while !m.is_char_boundary(end) {
        end -= 1;
    }
    Some(m[..end].to_owned())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Compiled report globs: what matches, and where the walk must start.
struct ReportGlobs {
    set: GlobSet,
    /// The literal directory prefix of each glob (relative; empty = the workspace root),
    /// minimal: no root lies under another.
    roots: Vec<PathBuf>,
    /// The most components a matching path can have (`None` when a glob has `**` or an
    /// alternation): the walk enters no directory deeper than a match can lie.
    max_components: Option<usize>,
    globs: Vec<String>,
}

fn is_glob_meta(c: char) -> bool {
    matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\')
}

impl ReportGlobs {
    fn new(globs: &[String]) -> Result<ReportGlobs, JunitError> {
        let mut builder = GlobSetBuilder::new();
        let mut roots: Vec<PathBuf> = Vec::new();
        let mut max_components = Some(0);
        for configured in globs {
            let refuse = |reason: &str| JunitError::Glob {
                glob: configured.clone(),
                reason: reason.to_owned(),
            };
            // Paths are matched as `reports/a.xml`, never `./reports/a.xml`.
            let mut glob = configured.as_str();
            while let Some(rest) = glob.strip_prefix("./") {
                glob = rest.trim_start_matches('/');
            }
            if glob.is_empty() {
                return Err(refuse("empty"));
            }
            let path = Path::new(glob);
            if path.is_absolute() {
                return Err(refuse("absolute; globs are relative to the workspace"));
            }
            if path
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
            {
                return Err(refuse("has a `..` component; it would leave the workspace"));
            }
            let compiled = GlobBuilder::new(glob)
                .literal_separator(true)
                .build()
                .map_err(|e| refuse(&e.to_string()))?;
            builder.add(compiled);
            // The directories before the first component with a metacharacter; the last
            // component is the file's name, never a directory to start from.
            let parts: Vec<&str> = glob.split('/').filter(|p| !p.is_empty()).collect();
            let mut root = PathBuf::new();
            for part in &parts[..parts.len().saturating_sub(1)] {
                if *part == "." {
                    continue;
                }
                if part.chars().any(is_glob_meta) {
                    break;
                }
                root.push(part);
            }
            roots.push(root);
            max_components = match max_components {
                Some(n) if !glob.contains("**") && !glob.contains('{') => Some(n.max(parts.len())),
                _ => None,
            };
        }
        let set = builder.build().map_err(|e| JunitError::Glob {
            glob: globs.join(", "),
            reason: e.to_string(),
        })?;
        roots.sort();
        roots.dedup();
        let mut minimal: Vec<PathBuf> = Vec::new();
        for root in roots {
            if !minimal.iter().any(|m| root.starts_with(m)) {
                minimal.push(root);
            }
        }
        Ok(ReportGlobs {
            set,
            roots: minimal,
            max_components,
            globs: globs.to_vec(),
        })
    }

    /// Every path under `workspace` that matches, relative and sorted, with the metadata
    /// of the entry itself (never of a link's target).
    fn find(&self, workspace: &Path) -> Result<Vec<(PathBuf, Metadata)>, JunitError> {
        let mut found = Vec::new();
        for root in &self.roots {
            // Each directory on the literal prefix must be a real directory.
            let mut at = PathBuf::new();
            let mut present = true;
            for part in root.components() {
                at.push(part);
                match std::fs::symlink_metadata(workspace.join(&at)) {
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(JunitError::Symlink { file: at });
                    }
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        present = false;
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        present = false;
                        break;
                    }
                    Err(e) => return Err(io_error(&at, &e)),
                }
            }
            if present {
                self.walk(workspace, root, &mut found)?;
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    fn walk(
        &self,
        workspace: &Path,
        root: &Path,
        found: &mut Vec<(PathBuf, Metadata)>,
    ) -> Result<(), JunitError> {
        let mut dirs = vec![root.to_owned()];
        while let Some(dir) = dirs.pop() {
            let entries = match std::fs::read_dir(workspace.join(&dir)) {
                Ok(entries) => entries,
                // Removed since it was listed: nothing to read there.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(&dir, &e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_error(&dir, &e))?;
                let rel = dir.join(entry.file_name());
                // `DirEntry::file_type` and `metadata` never follow a symlink; the type
                // usually comes with the listing, so only matches cost a `stat`.
                let file_type = entry.file_type().map_err(|e| io_error(&rel, &e))?;
                if file_type.is_dir() {
                    // The repository's own database is never a report.
                    let deep_enough = self
                        .max_components
                        .is_some_and(|max| rel.components().count() >= max);
                    if entry.file_name() != ".git" && !deep_enough {
                        dirs.push(rel);
                    }
                    continue;
                }
                if self.set.is_match(&rel) {
                    if found.len() >= MAX_REPORTS {
                        return Err(JunitError::TooManyReports {
                            count: found.len() + 1,
                            limit: MAX_REPORTS,
                            globs: self.globs.clone(),
                        });
                    }
                    let meta = entry.metadata().map_err(|e| io_error(&rel, &e))?;
                    found.push((rel, meta));
                }
            }
        }
        Ok(())
    }
}

/// Reads and merges every report under `workspace` whose path (relative, `/`-separated)
/// matches one of `globs` (`*` within a directory, `**` across; `.git` is never
/// searched). No matching file gives empty [`TestResults`] (`reports` empty).
///
/// # Errors
/// A bad glob; a matching symlink or special file; a file over [`MAX_REPORT_BYTES`]; more
/// than [`MAX_TOTAL_REPORT_BYTES`] or [`MAX_REPORTS`] in all; a file that cannot be read
/// or parsed. One bad file fails the whole collection: partial results could hide a
/// failing test.
pub fn collect(workspace: &Path, globs: &[String]) -> Result<TestResults, JunitError> {
    let mut results = TestResults::default();
    if globs.is_empty() {
        return Ok(results);
    }
    let matcher = ReportGlobs::new(globs)?;
    let mut budget = MAX_TOTAL_REPORT_BYTES;
    for (rel, meta) in matcher.find(workspace)? {
        let bytes = read_report(workspace, &rel, &meta, budget)?;
        budget -= bytes.len() as u64;
        let report = parse_report(&rel, &bytes)?;
        for (id, result) in report.tests {
            results.insert(id, result);
        }
        // `find` lists each path once, sorted.
        results.reports.push(rel);
    }
    Ok(results)
}

/// Removes every file under `workspace` that matches `globs` (a symlink is removed itself,
/// its target untouched; directories are left), so that the next attempt cannot be judged
/// by an earlier attempt's report. Returns how many were removed.
///
/// A symlinked directory on a glob's literal prefix is removed too (the link only).
///
/// # Errors
/// A bad glob, or a file or link that cannot be removed.
pub fn remove_reports(workspace: &Path, globs: &[String]) -> Result<usize, JunitError> {
    if globs.is_empty() {
        return Ok(0);
    }
    let matcher = ReportGlobs::new(globs)?;
    let mut removed = 0;
    // A symlinked directory on a literal prefix (the command made `reports` a link) is
    // removed itself, its target untouched: the next attempt starts without it. Each pass
    // removes one link of a prefix's components, so the passes are bounded.
    let most_passes = matcher
        .roots
        .iter()
        .map(|r| r.components().count())
        .sum::<usize>()
        + 1;
    let mut found = None;
    for _ in 0..most_passes {
        match matcher.find(workspace) {
            Ok(f) => {
                found = Some(f);
                break;
            }
            Err(JunitError::Symlink { file }) => {
                std::fs::remove_file(workspace.join(&file)).map_err(|e| io_error(&file, &e))?;
                removed += 1;
            }
            Err(e) => return Err(e),
        }
    }
    let found = match found {
        Some(f) => f,
        None => matcher.find(workspace)?,
    };
    for (rel, _) in found {
        match std::fs::remove_file(workspace.join(&rel)) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&rel, &e)),
        }
    }
    Ok(removed)
}

/// Reads one matched file, refusing links and special files, within `budget` bytes.
fn read_report(
    workspace: &Path,
    rel: &Path,
    meta: &Metadata,
    budget: u64,
) -> Result<Vec<u8>, JunitError> {
    if meta.file_type().is_symlink() {
        return Err(JunitError::Symlink {
            file: rel.to_owned(),
        });
    }
    if !meta.is_file() {
        return Err(JunitError::NotAFile {
            file: rel.to_owned(),
        });
    }
    let limit = MAX_REPORT_BYTES.min(budget);
    if meta.len() > limit {
        return Err(JunitError::TooLarge {
            file: rel.to_owned(),
            size: meta.len(),
            limit,
        });
    }
    // O_NOFOLLOW: a link swapped in since the listing is not followed; O_NONBLOCK: a FIFO
    // swapped in cannot block the open.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(workspace.join(rel))
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                JunitError::Symlink {
                    file: rel.to_owned(),
                }
            } else {
                io_error(rel, &e)
            }
        })?;
    let opened = file.metadata().map_err(|e| io_error(rel, &e))?;
    if !opened.is_file() || opened.dev() != meta.dev() || opened.ino() != meta.ino() {
        return Err(JunitError::NotAFile {
            file: rel.to_owned(),
        });
    }
    read_bounded(file, rel, limit)
}

fn read_bounded(file: File, rel: &Path, limit: u64) -> Result<Vec<u8>, JunitError> {
    let mut bytes = Vec::new();
    // One byte past the limit tells a file that grew from one that fits exactly.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(rel, &e))?;
    if bytes.len() as u64 > limit {
        return Err(JunitError::TooLarge {
            file: rel.to_owned(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// The failing test ids of a profile's command on the base commit: a test failing there
/// already is not the candidate's fault (SPEC §13). Journaled by the host once per run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Baseline {
    /// Ids of the tests failing (failed or errored) on the base, sorted.
    pub failing: BTreeSet<String>,
}

impl Baseline {
    /// The failing tests of `results`.
    pub fn from_results(results: &TestResults) -> Baseline {
        Baseline {
            failing: results.failing().map(str::to_owned).collect(),
        }
    }

    /// Whether test `id` fails on the base.
    pub fn contains(&self, id: &str) -> bool {
        self.failing.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> TestResults {
        parse_report(Path::new("r.xml"), xml.as_bytes()).unwrap()
    }

    #[test]
    fn ids_follow_classname_then_suite_then_name() {
        let r = parse(
            r#"<testsuites><testsuite name="outer">
                 <testcase classname="a.b" name="t1"/>
                 <testcase name="t2"/>
                 <testsuite name=""><testcase name="t3"/></testsuite>
                 <testsuite name="inner"><testcase name="t4" classname=""/></testsuite>
               </testsuite><testsuite><testcase name="t5"/></testsuite></testsuites>"#,
        );
        let ids: Vec<&str> = r.tests.keys().map(String::as_str).collect();
        assert_eq!(
            ids,
            ["a.b::t1", "inner::t4", "outer::t2", "outer::t3", "t5"]
        );
    }

    #[test]
    fn outcomes_messages_and_merging() {
        let r = parse(
            r#"<testsuite name="s">
                 <testcase name="ok"/>
                 <testcase name="skip"><skipped message="later"/></testcase>
                 <testcase name="fail"><failure message=" boom ">trace</failure></testcase>
                 <testcase name="text"><failure>  only text  </failure></testcase>
                 <testcase name="err"><error type="E"/></testcase>
                 <testcase name="twice"><failure message="call"/></testcase>
                 <testcase name="twice"><error message="teardown"/></testcase>
                 <testcase name="twice"/>
               </testsuite>"#,
        );
        let get = |id: &str| r.tests[id].clone();
        assert_eq!(get("s::ok").outcome, Outcome::Passed);
        assert_eq!(get("s::skip").outcome, Outcome::Skipped);
        assert_eq!(get("s::fail").message.as_deref(), Some("boom"));
        assert_eq!(get("s::text").message.as_deref(), Some("only text"));
        assert_eq!(get("s::err").outcome, Outcome::Errored);
        assert_eq!(get("s::err").message, None);
        assert_eq!(get("s::twice").outcome, Outcome::Errored);
        assert_eq!(get("s::twice").message.as_deref(), Some("teardown"));
        assert_eq!(
            r.failing().collect::<Vec<_>>(),
            ["s::err", "s::fail", "s::text", "s::twice"]
        );
    }

    #[test]
    fn flaky_runs_mark_a_passing_test_and_reruns_do_not() {
        let r = parse(
            r#"<testsuites name="nextest-run"><testsuite name="c::bin">
                 <testcase name="f" classname="c::bin"><flakyFailure type="test failure" message="x"/></testcase>
                 <testcase name="r" classname="c::bin"><failure type="test failure"/><rerunFailure type="test failure"/></testcase>
               </testsuite></testsuites>"#,
        );
        assert_eq!(r.flaky().collect::<Vec<_>>(), ["c::bin::f"]);
        assert_eq!(r.outcome("c::bin::f"), Some(Outcome::Passed));
        assert_eq!(r.outcome("c::bin::r"), Some(Outcome::Failed));
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let xml = format!(
            r#"<testsuite name="s"><testcase name="t"><failure message="{long}"/></testcase></testsuite>"#
        );
        let m = parse(&xml).tests["s::t"].message.clone().unwrap();
        assert!(m.len() <= MAX_MESSAGE_BYTES && m.len() >= MAX_MESSAGE_BYTES - 1);
    }

    #[test]
    fn bad_input_is_a_parse_error_naming_the_file() {
        for bad in [
            "",
            "not xml at all",
            "<html></html>",
            "<testsuite name='s'><testcase name='t'>",
            "<testsuite tests='many'/>",
        ] {
            let err = parse_report(Path::new("out/r.xml"), bad.as_bytes()).unwrap_err();
            assert!(
                matches!(&err, JunitError::Parse { file, .. } if file == Path::new("out/r.xml")),
                "{bad:?}: {err}"
            );
            assert!(err.to_string().contains("out/r.xml"), "{err}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_before_the_parser_recurses() {
        let depth = 100_000;
        let xml = format!(
            "<testsuites>{}{}</testsuites>",
            "<testsuite name='s'>".repeat(depth),
            "</testsuite>".repeat(depth)
        );
        let err = parse_report(Path::new("deep.xml"), xml.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, JunitError::Parse { reason, .. } if reason.contains("nested deeper")),
            "{err}"
        );
        let ok = format!(
            "<testsuites>{}<testcase name='t'/>{}</testsuites>",
            "<testsuite name='s'>".repeat(MAX_NESTING - 2),
            "</testsuite>".repeat(MAX_NESTING - 2)
        );
        assert_eq!(parse(&ok).tests.len(), 1);
    }

    #[test]
    fn leading_dot_slash_is_dropped_from_globs() {
        let g = ReportGlobs::new(&["./reports/*.xml".into(), "././/x/junit.xml".into()]).unwrap();
        assert!(g.set.is_match("reports/a.xml"));
        assert!(g.set.is_match("x/junit.xml"));
        assert_eq!(g.roots, [PathBuf::from("reports"), PathBuf::from("x")]);
        assert!(matches!(
            ReportGlobs::new(&["./".into()]),
            Err(JunitError::Glob { .. })
        ));
    }

    #[test]
    fn globs_that_leave_the_workspace_are_refused() {
        for glob in ["/etc/*.xml", "../x.xml", "a/../../x.xml", ""] {
            let err = ReportGlobs::new(&[glob.to_owned()]).err().unwrap();
            assert!(matches!(err, JunitError::Glob { .. }), "{glob}: {err}");
        }
        let g = ReportGlobs::new(&[
            "target/nextest/ci/junit.xml".into(),
            "target/**/*.xml".into(),
            "reports/*.xml".into(),
            "**/TEST-*.xml".into(),
        ])
        .unwrap();
        assert_eq!(g.roots, [PathBuf::new()]);
        let g = ReportGlobs::new(&[
            "target/nextest/ci/junit.xml".into(),
            "target/**/*.xml".into(),
            "reports/*.xml".into(),
        ])
        .unwrap();
        assert_eq!(g.roots, [PathBuf::from("reports"), PathBuf::from("target")]);
        assert!(g.set.is_match("reports/a.xml"));
        assert!(
            !g.set.is_match("reports/sub/a.xml"),
            "`*` stays in a directory"
        );
        assert!(g.set.is_match("target/a/b/c.xml"));
    }
}
