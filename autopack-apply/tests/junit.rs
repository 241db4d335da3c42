//! JUnit reports: the fixtures of real tools, collection from a workspace, and the gate
//! judging attempts by their reports against a baseline, with real shell processes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use autopack_apply::junit::{self, MAX_REPORT_BYTES};
use autopack_apply::{Baseline, GateVerdict, JunitError, Outcome, PreflightGate, TestResults};
use autopack_core::vocabulary::CiProfile;

fn fixture(name: &str) -> TestResults {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/junit")
        .join(name);
    let bytes = std::fs::read(&path).unwrap();
    junit::parse_report(Path::new(name), &bytes).unwrap()
}

fn outcomes(r: &TestResults) -> Vec<(&str, Outcome)> {
    r.tests
        .iter()
        .map(|(id, t)| (id.as_str(), t.outcome))
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

use Outcome::{Errored, Failed, Passed, Skipped};

#[test]
fn pytest_report() {
    let r = fixture("pytest.xml");
    assert_eq!(
        outcomes(&r),
        [
            ("tests.test_io::test_known_bug", Skipped),
            ("tests.test_io::test_network", Skipped),
            ("tests.test_io::test_reads_config", Errored),
            ("tests.test_math::test_add", Passed),
            ("tests.test_math::test_divide", Failed),
            ("tests.test_math::test_parametrized[1-2]", Passed),
        ]
    );
    assert_eq!(
        r.tests["tests.test_math::test_divide"].message.as_deref(),
        Some("assert 0.5 == 2")
    );
    assert_eq!(
        r.tests["tests.test_io::test_reads_config"]
            .message
            .as_deref(),
        Some("failed on setup with \"FileNotFoundError: config.toml\"")
    );
    assert_eq!(r.reports, [PathBuf::from("pytest.xml")]);
}

#[test]
fn nextest_report_with_flaky_and_rerun_failures() {
    let r = fixture("nextest.xml");
    assert_eq!(
        outcomes(&r),
        [
            ("mycrate::integration::end_to_end", Passed),
            ("mycrate::integration::ignored_slow", Skipped),
            ("mycrate::integration::test_failure_assert", Failed),
            ("mycrate::parser::tests::parses_empty", Passed),
            ("mycrate::parser::tests::retries_then_passes", Passed),
        ]
    );
    assert_eq!(
        r.flaky().collect::<Vec<_>>(),
        ["mycrate::parser::tests::retries_then_passes"]
    );
    let message = r.tests["mycrate::integration::test_failure_assert"]
        .message
        .clone()
        .unwrap();
    // junit-parser 1.7 drops entity references (`&apos;`) in element text and joins the
    // pieces with newlines; attributes are unescaped whole.
    assert!(message.starts_with("thread"), "{message}");
    assert!(
        message.contains("panicked at tests/integration.rs:19:5:"),
        "{message}"
    );
}

#[test]
fn jest_report() {
    let r = fixture("jest.xml");
    assert_eq!(
        outcomes(&r),
        [
            (" formats money:: formats money", Passed),
            ("cart adds an item::cart adds an item", Passed),
            ("cart applies a discount::cart applies a discount", Failed),
            ("cart checks out::cart checks out", Skipped),
        ]
    );
    assert!(
        r.tests["cart applies a discount::cart applies a discount"]
            .message
            .as_deref()
            .unwrap()
            .starts_with("Error: expect(received).toBe(expected)")
    );
}

#[test]
fn go_junit_report_and_surefire() {
    let r = fixture("go-junit-report.xml");
    assert_eq!(
        outcomes(&r),
        [
            ("example.com/shop/cart::TestAdd", Passed),
            ("example.com/shop/cart::TestTotal", Failed),
            ("example.com/shop/cart::TestTotal/with_discount", Failed),
        ]
    );
    // Surefire: a bare <testsuite> root, rerun and flaky failures.
    let r = fixture("TEST-com.example.CalculatorTest.xml");
    assert_eq!(
        outcomes(&r),
        [
            ("com.example.CalculatorTest::adds", Passed),
            ("com.example.CalculatorTest::divides", Failed),
            ("com.example.CalculatorTest::multiplies", Passed),
            ("com.example.CalculatorTest::parses", Errored),
        ]
    );
    assert_eq!(
        r.flaky().collect::<Vec<_>>(),
        ["com.example.CalculatorTest::multiplies"]
    );
    assert_eq!(
        r.tests["com.example.CalculatorTest::divides"]
            .message
            .as_deref(),
        Some("expected: <2> but was: <0>")
    );
}

/// A pytest-format report: `(classname::name, "pass" | "fail" | "error" | "skip")`.
fn report(cases: &[(&str, &str)]) -> String {
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" tests="0">"#,
    );
    for (id, outcome) in cases {
        let (classname, name) = id.split_once("::").unwrap();
        let body = match *outcome {
            "pass" => "",
            "fail" => r#"<failure message="assert False">E assert False</failure>"#,
            "error" => r#"<error message="setup failed">E boom</error>"#,
            "skip" => r#"<skipped type="pytest.skip" message="later"/>"#,
            other => panic!("outcome {other}"),
        };
        xml.push_str(&format!(
            r#"<testcase classname="{classname}" name="{name}" time="0.001">{body}</testcase>"#
        ));
    }
    xml.push_str("</testsuite></testsuites>\n");
    xml
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn collect_merges_matching_files_and_walks_only_where_globs_point() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "reports/a.xml",
        &report(&[("m::a", "pass"), ("m::both", "pass")]),
    );
    write(
        dir.path(),
        "reports/b.xml",
        &report(&[("m::b", "fail"), ("m::both", "error")]),
    );
    write(
        dir.path(),
        "reports/deep/c.xml",
        &report(&[("m::c", "fail")]),
    );
    write(dir.path(), "reports/notes.txt", "not a report");
    write(dir.path(), ".git/x.xml", "not a report either");
    let r = junit::collect(dir.path(), &["reports/*.xml".into()]).unwrap();
    assert_eq!(
        r.reports,
        [
            PathBuf::from("reports/a.xml"),
            PathBuf::from("reports/b.xml")
        ]
    );
    assert_eq!(r.failing().collect::<Vec<_>>(), ["m::b", "m::both"]);
    assert_eq!(r.outcome("m::both"), Some(Errored));
    let r = junit::collect(dir.path(), &["**/*.xml".into()]).unwrap();
    assert_eq!(r.reports.len(), 3, "{:?}", r.reports);
    assert_eq!(r.failing().collect::<Vec<_>>(), ["m::b", "m::both", "m::c"]);
    // No match, and no globs: empty results, no report.
    assert!(
        junit::collect(dir.path(), &["out/*.xml".into()])
            .unwrap()
            .reports
            .is_empty()
    );
    assert!(junit::collect(dir.path(), &[]).unwrap().reports.is_empty());
}

#[test]
fn collect_refuses_links_special_files_and_oversized_reports() {
    let (dir, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(outside.path(), "secret.xml", &report(&[("s::t", "pass")]));
    std::fs::create_dir_all(dir.path().join("reports")).unwrap();
    // A symlinked report file.
    std::os::unix::fs::symlink(
        outside.path().join("secret.xml"),
        dir.path().join("reports/r.xml"),
    )
    .unwrap();
    let err = junit::collect(dir.path(), &["reports/*.xml".into()]).unwrap_err();
    assert_eq!(
        err,
        JunitError::Symlink {
            file: "reports/r.xml".into()
        }
    );
    assert!(err.to_string().contains("reports/r.xml"), "{err}");
    std::fs::remove_file(dir.path().join("reports/r.xml")).unwrap();

    // A symlinked directory on the glob's literal prefix is refused; under `**` it is
    // not entered.
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linked")).unwrap();
    let err = junit::collect(dir.path(), &["linked/*.xml".into()]).unwrap_err();
    assert_eq!(
        err,
        JunitError::Symlink {
            file: "linked".into()
        }
    );
    let r = junit::collect(dir.path(), &["**/*.xml".into()]).unwrap();
    assert!(r.reports.is_empty(), "{:?}", r.reports);
    std::fs::remove_file(dir.path().join("linked")).unwrap();

    // A FIFO is never opened (it would block).
    let fifo = dir.path().join("reports/fifo.xml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let err = junit::collect(dir.path(), &["reports/*.xml".into()]).unwrap_err();
    assert_eq!(
        err,
        JunitError::NotAFile {
            file: "reports/fifo.xml".into()
        }
    );
    std::fs::remove_file(&fifo).unwrap();

    // Over the size limit (a sparse file: nothing is written or read).
    let big = std::fs::File::create(dir.path().join("reports/big.xml")).unwrap();
    big.set_len(MAX_REPORT_BYTES + 1).unwrap();
    let err = junit::collect(dir.path(), &["reports/*.xml".into()]).unwrap_err();
    assert_eq!(
        err,
        JunitError::TooLarge {
            file: "reports/big.xml".into(),
            size: MAX_REPORT_BYTES + 1,
            limit: MAX_REPORT_BYTES
        }
    );
    std::fs::remove_file(dir.path().join("reports/big.xml")).unwrap();

    // Not JUnit: a parse error naming the file.
    write(dir.path(), "reports/bad.xml", "<html>");
    let err = junit::collect(dir.path(), &["reports/*.xml".into()]).unwrap_err();
    assert!(
        matches!(&err, JunitError::Parse { file, .. } if file == Path::new("reports/bad.xml")),
        "{err}"
    );
    // Globs that would leave the workspace.
    for glob in ["../*.xml", "/tmp/*.xml"] {
        let err = junit::collect(dir.path(), &[glob.into()]).unwrap_err();
        assert!(matches!(err, JunitError::Glob { .. }), "{glob}: {err}");
    }
}

#[test]
fn remove_reports_removes_links_not_their_targets() {
    let (dir, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(outside.path(), "keep.xml", "outside");
    write(dir.path(), "reports/a.xml", "stale");
    write(dir.path(), "reports/keep.txt", "not matched");
    std::os::unix::fs::symlink(
        outside.path().join("keep.xml"),
        dir.path().join("reports/l.xml"),
    )
    .unwrap();
    assert_eq!(
        junit::remove_reports(dir.path(), &["reports/*.xml".into()]).unwrap(),
        2
    );
    assert!(!dir.path().join("reports/a.xml").exists());
    assert!(std::fs::symlink_metadata(dir.path().join("reports/l.xml")).is_err());
    assert_eq!(
        std::fs::read_to_string(outside.path().join("keep.xml")).unwrap(),
        "outside"
    );
    assert!(dir.path().join("reports/keep.txt").exists());
}

// ---- The gate with reports ------------------------------------------------------------

const GLOB: &str = "reports/*.xml";

fn gate() -> PreflightGate {
    let mut g = PreflightGate::new("sh ci.sh", "sh ci.sh");
    g.backoff = Duration::ZERO;
    g.timeout = Duration::from_secs(20);
    g.normal_junit = vec![GLOB.into()];
    g.strict_junit = vec![GLOB.into()];
    g
}

/// A checkout whose CI script writes `cases` to `reports/junit.xml` and exits `exit`.
fn checkout(cases: &[(&str, &str)], exit: i32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "expected.xml", &report(cases));
    write(
        dir.path(),
        "ci.sh",
        &format!("mkdir -p reports && cp expected.xml reports/junit.xml && exit {exit}\n"),
    );
    dir
}

#[test]
fn a_base_failure_does_not_fail_the_candidate_and_is_reported_known() {
    // The base fails `known` and `fixed`; the candidate fixes `fixed`, `known` still fails.
    let base = checkout(
        &[
            ("t.a::known", "fail"),
            ("t.a::fixed", "fail"),
            ("t.a::ok", "pass"),
        ],
        1,
    );
    let baseline = gate()
        .baseline(base.path(), CiProfile::Normal)
        .unwrap()
        .unwrap();
    assert_eq!(baseline.failing, set(&["t.a::fixed", "t.a::known"]));

    let candidate = checkout(
        &[
            ("t.a::known", "fail"),
            ("t.a::fixed", "pass"),
            ("t.a::ok", "pass"),
        ],
        1,
    );
    let report = gate()
        .run_with_baseline(candidate.path(), CiProfile::Normal, 6, Some(&baseline))
        .unwrap();
    assert_eq!(report.verdict, GateVerdict::Green, "{report:?}");
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(report.known_failures, set(&["t.a::known"]));
    assert!(report.new_failures.is_empty() && report.failing_tests.is_empty());
    // Without the baseline the same candidate is red, with its exact failing test.
    let report = gate().run(candidate.path(), CiProfile::Normal, 6).unwrap();
    assert_eq!(report.verdict, GateVerdict::Red);
    assert_eq!(report.failing_tests, set(&["t.a::known"]));
    assert_eq!(report.new_failures, set(&["t.a::known"]));
}

#[test]
fn a_new_failure_is_red_with_its_exact_id() {
    let baseline = Baseline {
        failing: set(&["t.a::known"]),
    };
    let candidate = checkout(
        &[
            ("t.a::known", "fail"),
            ("t.b::broken", "error"),
            ("t.a::ok", "pass"),
        ],
        1,
    );
    let report = gate()
        .run_with_baseline(candidate.path(), CiProfile::Strict, 6, Some(&baseline))
        .unwrap();
    assert_eq!(report.verdict, GateVerdict::Red);
    assert_eq!(report.attempts.len(), 3, "red attempts are retried");
    assert_eq!(report.failing_tests, set(&["t.a::known", "t.b::broken"]));
    assert_eq!(report.new_failures, set(&["t.b::broken"]));
    assert_eq!(report.known_failures, set(&["t.a::known"]));
    let tests = report.attempts[2].tests.as_ref().unwrap();
    assert_eq!(
        tests.tests["t.b::broken"].message.as_deref(),
        Some("setup failed")
    );
    // Exit 0 does not hide a failing test the report names.
    let swallowed = checkout(&[("t.b::broken", "fail")], 0);
    let report = gate()
        .run_with_baseline(swallowed.path(), CiProfile::Normal, 6, Some(&baseline))
        .unwrap();
    assert_eq!(report.verdict, GateVerdict::Red);
    assert_eq!(report.new_failures, set(&["t.b::broken"]));
}

#[test]
fn a_test_failing_then_passing_is_flaky_per_test() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "red.xml",
        &report(&[("t.a::flaky", "fail"), ("t.a::ok", "pass")]),
    );
    write(
        dir.path(),
        "green.xml",
        &report(&[("t.a::flaky", "pass"), ("t.a::ok", "pass")]),
    );
    write(
        dir.path(),
        "ci.sh",
        "mkdir -p reports\nif [ -e marker ]; then cp green.xml reports/junit.xml; exit 0; fi\n\
         touch marker; cp red.xml reports/junit.xml; exit 1\n",
    );
    let report = gate().run(dir.path(), CiProfile::Normal, 6).unwrap();
    assert_eq!(report.verdict, GateVerdict::Flaky);
    assert_eq!(report.flaky_tests, set(&["t.a::flaky"]));
    assert_eq!(report.failing_tests, set(&["t.a::flaky"]));
    assert!(report.new_failures.is_empty());
    assert_eq!(report.ci_runs_used, 2);
}

#[test]
fn a_bad_exit_without_a_report_or_without_failures_is_red() {
    // No report at all: judged by the exit code, as without JUnit.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ci.sh", "echo build failed; exit 2\n");
    let baseline = Baseline {
        failing: set(&["t.a::known"]),
    };
    let report = gate()
        .run_with_baseline(dir.path(), CiProfile::Normal, 6, Some(&baseline))
        .unwrap();
    assert_eq!(report.verdict, GateVerdict::Red);
    assert!(
        report
            .attempts
            .iter()
            .all(|a| a.tests.is_none() && a.report_error.is_none())
    );
    assert!(report.failing_tests.is_empty());
    assert_eq!(report.attempts[0].output_tail, "build failed\n");
    // A report whose tests all pass, under a non-zero exit: something else broke.
    let dir = checkout(&[("t.a::ok", "pass"), ("t.a::known", "skip")], 1);
    let report = gate()
        .run_with_baseline(dir.path(), CiProfile::Normal, 6, Some(&baseline))
        .unwrap();
    assert_eq!(report.verdict, GateVerdict::Red);
    assert!(report.attempts[0].tests.is_some());
    // No report and exit 0: green, as today.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ci.sh", "exit 0\n");
    let report = gate().run(dir.path(), CiProfile::Normal, 6).unwrap();
    assert_eq!(report.verdict, GateVerdict::Green);
    // A baseline of a base that wrote no report is none.
    assert_eq!(
        gate().baseline(dir.path(), CiProfile::Normal).unwrap(),
        None
    );
}

#[test]
fn a_symlinked_report_is_refused_and_its_target_never_judges() {
    let (dir, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Were the target read, its only failure is known and the attempt would be green.
    write(
        outside.path(),
        "planted.xml",
        &report(&[("t.a::known", "fail")]),
    );
    let baseline = Baseline {
        failing: set(&["t.a::known"]),
    };
    write(
        dir.path(),
        "ci.sh",
        &format!(
            "mkdir -p reports && ln -s {} reports/junit.xml; exit 1\n",
            outside.path().join("planted.xml").display()
        ),
    );
    let report = gate()
        .run_with_baseline(dir.path(), CiProfile::Normal, 6, Some(&baseline))
        .unwrap();
    assert_eq!(report.verdict, GateVerdict::Red);
    for a in &report.attempts {
        assert!(a.tests.is_none());
        assert_eq!(
            a.report_error,
            Some(JunitError::Symlink {
                file: "reports/junit.xml".into()
            })
        );
    }
    // The link was removed before each retry (else `ln -s` would fail and print).
    assert!(
        report.attempts.iter().all(|a| a.output_tail.is_empty()),
        "{report:?}"
    );
    assert!(outside.path().join("planted.xml").exists());
    // A baseline taken through a link is an error naming it, not a set of failures.
    let err = gate().baseline(dir.path(), CiProfile::Normal).unwrap_err();
    assert!(err.to_string().contains("reports/junit.xml"), "{err}");
}

#[test]
fn a_symlinked_report_directory_is_refused_and_removed_before_a_retry() {
    let (dir, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(
        outside.path(),
        "junit.xml",
        &report(&[("t.a::known", "fail")]),
    );
    let baseline = Baseline {
        failing: set(&["t.a::known"]),
    };
    // `ln -s` fails (and says so) when `reports` is still there from the last attempt.
    write(
        dir.path(),
        "ci.sh",
        &format!(
            "ln -s {} reports || exit 3; exit 1\n",
            outside.path().display()
        ),
    );
    let report = gate()
        .run_with_baseline(dir.path(), CiProfile::Normal, 6, Some(&baseline))
        .unwrap();
    assert_eq!(report.verdict, GateVerdict::Red);
    assert_eq!(report.attempts.len(), 3);
    for a in &report.attempts {
        assert_eq!(a.exit_code, Some(1), "{a:?}");
        assert_eq!(
            a.report_error,
            Some(JunitError::Symlink {
                file: "reports".into()
            })
        );
    }
    assert!(outside.path().join("junit.xml").exists());
}

#[test]
fn a_stale_report_never_judges_a_later_attempt() {
    let dir = tempfile::tempdir().unwrap();
    // Left by an earlier run: would make the attempt green under the baseline.
    write(
        dir.path(),
        "reports/junit.xml",
        &report(&[("t.a::known", "fail")]),
    );
    write(dir.path(), "first.xml", &report(&[("t.a::broken", "fail")]));
    // The first attempt writes a report; the later ones write none.
    write(
        dir.path(),
        "ci.sh",
        "if [ -e reports/junit.xml ]; then echo stale; fi\n\
         if [ ! -e marker ]; then touch marker; mkdir -p reports; cp first.xml reports/junit.xml; fi\n\
         exit 1\n",
    );
    let baseline = Baseline {
        failing: set(&["t.a::known"]),
    };
    let report = gate()
        .run_with_baseline(dir.path(), CiProfile::Normal, 6, Some(&baseline))
        .unwrap();
    assert_eq!(report.verdict, GateVerdict::Red);
    assert!(
        report
            .attempts
            .iter()
            .all(|a| !a.output_tail.contains("stale"))
    );
    let first = report.attempts[0].tests.as_ref().unwrap();
    assert_eq!(first.failing().collect::<Vec<_>>(), ["t.a::broken"]);
    assert!(report.attempts[1].tests.is_none() && report.attempts[2].tests.is_none());
    // The last red attempt wrote no report: no exact failures to name.
    assert!(report.failing_tests.is_empty());
}

#[test]
fn a_real_nextest_report_drives_the_gate() {
    // cargo-nextest's layout: `target/nextest/ci/junit.xml`, one failing test (retried and
    // failing again) and one that failed and passed on nextest's own retry.
    let dir = tempfile::tempdir().unwrap();
    let xml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit/nextest.xml"),
    )
    .unwrap();
    write(dir.path(), "nextest.xml", &xml);
    write(
        dir.path(),
        "ci.sh",
        "mkdir -p target/nextest/ci && cp nextest.xml target/nextest/ci/junit.xml; exit 100\n",
    );
    let mut g = gate();
    g.normal_junit = vec!["target/nextest/ci/junit.xml".into()];
    let baseline = g.baseline(dir.path(), CiProfile::Normal).unwrap().unwrap();
    assert_eq!(
        baseline.failing,
        set(&["mycrate::integration::test_failure_assert"])
    );
    let report = g
        .run_with_baseline(dir.path(), CiProfile::Normal, 6, Some(&baseline))
        .unwrap();
    // Known failure only: passes; nextest's own retry makes it flaky.
    assert_eq!(report.verdict, GateVerdict::Flaky);
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(
        report.flaky_tests,
        set(&["mycrate::parser::tests::retries_then_passes"])
    );
    assert_eq!(
        report.known_failures,
        set(&["mycrate::integration::test_failure_assert"])
    );
    let report = g.run(dir.path(), CiProfile::Normal, 6).unwrap();
    assert_eq!(report.verdict, GateVerdict::Red);
    assert_eq!(
        report.new_failures,
        set(&["mycrate::integration::test_failure_assert"])
    );
}
