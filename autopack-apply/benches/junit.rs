//! Parsing a 10,000-test JUnit report: 20 suites of 500 tests in nextest's shape, 3% of
//! them failing with a message, a multi-line panic as text and `<system-out>` /
//! `<system-err>`, every tenth passing test with captured output (2.0 MB). The goal
//! is under 50 ms per report.
//!
//! Run: `cargo bench -p autopack-apply --bench junit`. An explicit pass first prints the
//! fastest and the median of 20 parses, from memory ([`junit::parse_report`]) and from a
//! file in a temporary workspace ([`junit::collect`], which also walks, checks and
//! reads); `AUTOPACK_BENCH_SKIP_CRITERION=1` then skips the criterion group
//! (`junit_report`).

use std::path::Path;
use std::time::{Duration, Instant};

use autopack_apply::junit;
use criterion::{Criterion, criterion_group, criterion_main};

const SUITES: usize = 20;
const PER_SUITE: usize = 500;

/// The report: deterministic, failures spread evenly (every 33rd test).
fn report() -> String {
    let mut xml = String::with_capacity(3 << 20);
    xml.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    xml.push('\n');
    xml.push_str(&format!(
        r#"<testsuites name="nextest-run" tests="{}" failures="{}" errors="0" uuid="45c50042-482e-477e-88a2-60cfcc3eaf95" timestamp="2026-12-01T14:10:12.664+00:00" time="73.112">"#,
        SUITES * PER_SUITE,
        (SUITES * PER_SUITE).div_ceil(33)
    ));
    xml.push('\n');
    let mut n = 0usize;
    for s in 0..SUITES {
        let suite = format!("crate_{s:02}::tests_{s:02}");
        xml.push_str(&format!(
            r#"    <testsuite name="{suite}" tests="{PER_SUITE}" disabled="0" errors="0" failures="0">"#
        ));
        xml.push('\n');
        for t in 0..PER_SUITE {
            let name = format!("module_{}::submodule::test_case_number_{t:04}", t % 17);
            xml.push_str(&format!(
                r#"        <testcase name="{name}" classname="{suite}" timestamp="2026-12-01T14:10:12.665+00:00" time="0.{:03}">"#,
                n % 1000
            ));
            if n.is_multiple_of(33) {
                xml.push_str(&format!(
                    r#"
            <failure message="assertion failed: left == right" type="test failure">thread &apos;{name}&apos; panicked at src/module_{m}.rs:{line}:9:
assertion `left == right` failed: values differ
  left: {n}
 right: {r}
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace</failure>
            <system-out>
running 1 test
test {name} ... FAILED

failures:

failures:
    {name}

test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 499 filtered out; finished in 0.01s

</system-out>
            <system-err>thread &apos;{name}&apos; panicked at src/module_{m}.rs:{line}:9:
assertion `left == right` failed: values differ
</system-err>
        "#,
                    m = t % 17,
                    line = 10 + t,
                    r = n + 1
                ));
            } else if n.is_multiple_of(10) {
                xml.push_str(&format!(
                    "\n            <system-out>running 1 test\ntest {name} ... ok\n</system-out>\n        "
                ));
            }
            xml.push_str("</testcase>\n");
            n += 1;
        }
        xml.push_str("    </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn fastest_and_median(mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[0], times[times.len() / 2])
}

fn bench(c: &mut Criterion) {
    let xml = report();
    let parsed = junit::parse_report(Path::new("junit.xml"), xml.as_bytes()).expect("parse");
    assert_eq!(parsed.tests.len(), SUITES * PER_SUITE);
    let failing = parsed.failing().count();
    assert_eq!(failing, (SUITES * PER_SUITE).div_ceil(33));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("target/nextest/ci")).expect("mkdir");
    std::fs::write(dir.path().join("target/nextest/ci/junit.xml"), &xml).expect("write");
    let globs = vec!["target/nextest/ci/junit.xml".to_owned()];
    println!(
        "report: {} tests in {SUITES} suites, {failing} failing, {:.2} MB",
        parsed.tests.len(),
        xml.len() as f64 / 1e6
    );
    let (fastest, median) = fastest_and_median(|| {
        junit::parse_report(Path::new("junit.xml"), xml.as_bytes()).expect("parse");
    });
    println!(
        "  parse_report: fastest {:.2} ms, median {:.2} ms",
        fastest.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3
    );
    let (fastest, median) = fastest_and_median(|| {
        junit::collect(dir.path(), &globs).expect("collect");
    });
    println!(
        "  collect (file): fastest {:.2} ms, median {:.2} ms",
        fastest.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3
    );
    if std::env::var_os("AUTOPACK_BENCH_SKIP_CRITERION").is_some() {
        return;
    }
    let mut group = c.benchmark_group("junit_report");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("parse_10k_tests", |b| {
        b.iter(|| junit::parse_report(Path::new("junit.xml"), xml.as_bytes()).expect("parse"))
    });
    group.bench_function("collect_10k_tests_file", |b| {
        b.iter(|| junit::collect(dir.path(), &globs).expect("collect"))
    });
    group.finish();
}

#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench);
}
use group::benches;
criterion_main!(benches);
