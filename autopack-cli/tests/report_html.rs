//! `autopack report html` in a real browser: the sample project's run (a flaky test, a
//! phase revised after the Auditor), its page written by the binary, loaded from a
//! `file://` URL in headless Chromium, and the timeline and budget bars checked against
//! the run record. Needs Debian's `chromium` (`apt-get install -y chromium`); without it
//! the test fails saying so.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use autopack::core::record::RunRecord;
use autopack_examples::example::{ExampleOptions, run_example};
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions};
use serde_json::Value;

mod common;
use common::*;

const RUN: &str = "html-sample";

/// Debian's Chromium, or a `chromium` on `PATH`.
fn chromium() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/chromium");
    if debian.is_file() {
        return debian;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "this test needs Chromium: install Debian's `chromium` (apt-get install -y chromium); \
                 neither /usr/bin/chromium nor a chromium on PATH was found"
            )
        })
}

/// Where the screenshot is kept after the test.
fn artefact_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_html");
    std::fs::create_dir_all(&dir).expect("artefact folder");
    dir
}

/// What the page shows, measured by the browser: every phase row and every budget bar
/// with its box, visibility and text.
const MEASURE: &str = r#"
(() => {
  const box = (el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return { width: r.width, height: r.height,
             visible: s.display !== 'none' && s.visibility !== 'hidden' && s.opacity !== '0' };
  };
  const text = (el, sel) => { const e = el.querySelector(sel); return e ? e.textContent : null; };
  const phases = [...document.querySelectorAll('#timeline .phase')].map((el) => ({
    id: el.dataset.phaseId, box: box(el),
    builder: text(el, '.builder-attempts'), auditor: text(el, '.auditor-attempts'),
    tokens: text(el, '.phase-tokens'),
    cards: [...el.querySelectorAll('li.attempt')].map((c) => ({ box: box(c), text: c.textContent })),
  }));
  const bars = [...document.querySelectorAll('#budgets .bar')].map((el) => {
    const group = el.closest('.budget-group');
    return { budget: el.dataset.budget, scope: group.dataset.scope, tier: group.dataset.tierId || null,
             box: box(el), fill: box(el.querySelector('.bar-fill')),
             used: text(el, '.used'), cap: text(el, '.cap'), breached: el.classList.contains('breached') };
  });
  const issues = [...document.querySelectorAll('#issues tr.issue')].map((el) => el.dataset.issueKey);
  return JSON.stringify({ title: document.title, phases, bars, issues });
})()
"#;

fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

fn assert_shown(what: &str, b: &Value) {
    assert_eq!(b["visible"], true, "{what} is hidden: {b}");
    assert!(
        number(&b["width"]) > 0.0 && number(&b["height"]) > 0.0,
        "{what} has an empty box: {b}"
    );
}

fn bar<'a>(bars: &'a [Value], budget: &str, tier: Option<&str>) -> &'a Value {
    bars.iter()
        .find(|b| b["budget"] == budget && b["tier"].as_str() == tier)
        .unwrap_or_else(|| panic!("no {budget} bar for {tier:?}"))
}

fn check_bar(bars: &[Value], budget: &str, tier: Option<&str>, used: u64, cap: u64) {
    let b = bar(bars, budget, tier);
    let what = format!("{budget} bar ({tier:?})");
    assert_shown(&what, &b["box"]);
    assert_eq!(b["used"], used.to_string(), "{what}: {b}");
    assert_eq!(b["cap"], cap.to_string(), "{what}: {b}");
    if used > 0 {
        assert_shown(&format!("{what} fill"), &b["fill"]);
    }
}

fn check_page(record: &RunRecord, run_issue_keys: &[String], seen: &Value) {
    assert_eq!(seen["title"], format!("Autopack run {RUN}"));
    let phases = seen["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), record.phases().count(), "{seen}");
    for (phase, shown) in record.phases().zip(phases) {
        let id = phase.phase_id.as_str();
        assert_eq!(shown["id"], id);
        assert_shown(&format!("phase {id}"), &shown["box"]);
        assert_eq!(
            shown["builder"],
            format!(
                "Builder attempts {} / {}",
                phase.usage.builder_attempts, phase.caps.max_builder_attempts
            )
        );
        assert_eq!(
            shown["auditor"],
            format!(
                "Auditor attempts {} / {}",
                phase.usage.auditor_attempts, phase.caps.max_auditor_attempts
            )
        );
        assert_eq!(
            shown["tokens"],
            format!(
                "tokens {} / {}",
                phase.usage.tokens, phase.caps.incident_token_cap
            )
        );
        let cards = shown["cards"].as_array().expect("cards");
        assert_eq!(cards.len(), phase.attempts.len(), "phase {id}: {shown}");
        for (attempt, card) in phase.attempts.iter().zip(cards) {
            assert_shown(&format!("an attempt card of {id}"), &card["box"]);
            let text = card["text"].as_str().expect("text");
            let role = match attempt.role {
                autopack::core::record::AttemptRole::Builder => "Builder",
                autopack::core::record::AttemptRole::Auditor => "Auditor",
            };
            assert!(
                text.starts_with(&format!("{role} #{}", attempt.number)),
                "{id}: {text}"
            );
            assert!(
                text.contains(&format!("{} tokens", attempt.tokens)),
                "{id}: {text}"
            );
        }
        for ci in &phase.ci_runs {
            let verdict = serde_json::to_value(ci.verdict).expect("verdict");
            let line = format!(
                "CI {}: {} ({} attempt",
                ci.profile.as_str(),
                verdict.as_str().expect("a string"),
                ci.attempts
            );
            assert!(
                cards
                    .iter()
                    .any(|c| c["text"].as_str().is_some_and(|t| t.contains(&line))),
                "{id}: no card shows {line:?}"
            );
        }
    }
    let bars = seen["bars"].as_array().expect("bars");
    check_bar(
        bars,
        "run-tokens",
        None,
        record.usage.tokens,
        record.caps.token_cap,
    );
    check_bar(
        bars,
        "run-phases",
        None,
        u64::from(record.usage.phases),
        u64::from(record.caps.max_phases),
    );
    check_bar(
        bars,
        "run-minutes",
        None,
        record.usage.elapsed_minutes,
        u64::from(record.caps.max_duration_minutes),
    );
    for tier in &record.tiers {
        let id = Some(tier.tier_id.as_str());
        check_bar(
            bars,
            "tier-tokens",
            id,
            tier.usage.tokens,
            tier.caps.token_cap,
        );
        check_bar(
            bars,
            "tier-ci-runs",
            id,
            u64::from(tier.usage.ci_runs),
            u64::from(tier.caps.ci_run_cap),
        );
        let breached = tier.breaches.iter().any(|b| {
            matches!(
                b,
                autopack::core::budget::TierBreach::CiRuns { .. }
                    | autopack::core::budget::TierBreach::CiRunsUsedUp { .. }
            )
        });
        assert_eq!(bar(bars, "tier-ci-runs", id)["breached"], breached);
    }
    let mut issues: Vec<String> = seen["issues"]
        .as_array()
        .expect("issues")
        .iter()
        .map(|k| k.as_str().expect("a key").to_owned())
        .collect();
    issues.sort();
    assert_eq!(issues, run_issue_keys, "the run's issues");
}

#[test]
fn the_html_report_of_the_sample_run_renders_in_chromium() {
    let browser_path = chromium();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("greeter");
    let run = run_example(&ExampleOptions {
        dir: dir.clone(),
        run_id: RUN.into(),
        print: false,
        no_sandbox: false,
    })
    .expect("the sample run runs");
    let record = run.record;
    // What the page is to show happened: a flaky CI run and an Auditor's revision.
    assert!(
        record.phases().any(|p| p
            .ci_runs
            .iter()
            .any(|c| c.verdict == autopack::core::record::CiVerdict::Flaky)),
        "the sample run has a flaky phase"
    );
    assert!(
        record.phases().any(|p| p.attempts.iter().any(|a| a.outcome
            == autopack::core::record::AttemptOutcome::Revise
            || a.role == autopack::core::record::AttemptRole::Auditor)),
        "the sample run calls the Auditor"
    );

    let page = tmp.path().join("report").join("run.html");
    let out = autopack(&["report", "html", RUN, "--repo", s(&dir), "-o", s(&page)]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    assert_eq!(text(&out).0.trim(), s(&page));

    let options = LaunchOptions::default_builder()
        .path(Some(browser_path))
        // As root, Chromium refuses to start with its own sandbox.
        .sandbox(false)
        .headless(true)
        .window_size(Some((1280, 4000)))
        .args(vec![OsStr::new("--disable-dev-shm-usage")])
        .idle_browser_timeout(Duration::from_secs(60))
        .build()
        .expect("launch options");
    let browser = Browser::new(options).expect("chromium starts");
    let tab = browser.new_tab().expect("a tab");
    let url = format!("file://{}", s(&page));
    tab.navigate_to(&url)
        .expect("navigates")
        .wait_until_navigated()
        .expect("the page loads");
    let measured = tab.evaluate(MEASURE, false).expect("the page is measured");
    let json = measured
        .value
        .as_ref()
        .and_then(Value::as_str)
        .expect("a JSON string");
    let seen: Value = serde_json::from_str(json).expect("JSON");

    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .expect("a screenshot");
    let shot = artefact_dir().join(format!("{RUN}.png"));
    std::fs::write(&shot, &png).expect("screenshot written");
    std::fs::copy(&page, artefact_dir().join(format!("{RUN}.html"))).expect("page kept");
    println!("screenshot: {}", shot.display());
    assert!(png.len() > 1_000, "an empty screenshot");

    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(
            dir.join(".autonomous_runs")
                .join(RUN)
                .join("run_issue_index.json"),
        )
        .expect("the run issue index"),
    )
    .expect("JSON");
    let keys: Vec<String> = index["issues_by_key"]
        .as_object()
        .expect("keys")
        .keys()
        .cloned()
        .collect();
    assert!(!keys.is_empty(), "the sample run reports issues");
    check_page(&record, &keys, &seen);

    // A file where a folder is needed: the error names the path, the page is untouched.
    let before = std::fs::read(&page).expect("the page");
    let blocker = tmp.path().join("not-a-dir");
    std::fs::write(&blocker, "x").expect("file");
    let target = blocker.join("page.html");
    let out = autopack(&["report", "html", RUN, "--repo", s(&dir), "-o", s(&target)]);
    assert_eq!(code(&out), 2, "{:?}", text(&out));
    assert!(text(&out).1.contains(s(&target)), "{:?}", text(&out));
    // An unknown run is named, and nothing is written over the page.
    let out = autopack(&[
        "report",
        "html",
        "no-such-run",
        "--repo",
        s(&dir),
        "-o",
        s(&page),
    ]);
    assert_eq!(code(&out), 2);
    assert!(text(&out).1.contains("no-such-run"), "{:?}", text(&out));
    assert_eq!(std::fs::read(&page).expect("the page"), before);
}
