//! The HTML run report over a scripted run: what it shows, that hostile text stays text,
//! and that the page is the same bytes every time.

mod common;

use autopack::report::html::html;
use autopack::report::tier_report;
use autopack::supervisor::{AgentOutcome, CiReport, SupervisorConfig};
use autopack_core::budget::TierBreach;
use autopack_core::message::AuditorRecommendation;
use autopack_core::record::CiVerdict;
use autopack_core::vocabulary::{IssueCategory, RunScope, SafetyProfile, Severity};
use common::*;

const HOSTILE_NAME: &str = r#"<script>alert("phase")</script> & "quoted" 'name'"#;
const HOSTILE_CATEGORY: &str = r#"<img src=x onerror="alert(1)"> & <script>"#;
const HOSTILE_NOTES: &str = r#"revise: </div><script>alert("notes")</script> & more"#;

/// Two tiers: `docs-1` (hostile name) is rejected by the gate once and its CI is flaky,
/// `tests-1` goes red once, `schema-1` (high risk) is revised by the Auditor before it is
/// approved. `docs-1` reports an issue of a hostile category.
fn scripted() -> Outcome {
    let mut plan = plan(
        "html-run",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[
            &[("docs-1", "docs"), ("tests-1", "tests")],
            &[("schema-1", "schema_change")],
        ],
    );
    plan.phases[0].name = HOSTILE_NAME.to_owned();
    plan.tiers[1].name = format!("Tier & {HOSTILE_NAME}");
    let mut audits = 0;
    let mut ci_runs = 0;
    let script = Script {
        builder: Box::new(|r| {
            let mut out = success(r, 12_000 + u64::from(r.attempt) * 1_000);
            if r.phase_id.as_str() == "docs-1"
                && let AgentOutcome::Returned(res) = &mut out
            {
                let mut found = issue("docs-lint", Severity::Minor);
                found.category = IssueCategory::new(HOSTILE_CATEGORY).expect("a label");
                res.suggested_issues.push(found);
            }
            out
        }),
        auditor: Box::new(move |r| {
            audits += 1;
            let recommendation = if audits == 1 {
                AuditorRecommendation::Revise
            } else {
                AuditorRecommendation::Approve
            };
            let mut out = audit(r, recommendation);
            if let AgentOutcome::Returned(res) = &mut out
                && audits == 1
            {
                res.review_notes = HOSTILE_NOTES.to_owned();
            }
            out
        }),
        gate: Box::new(|r| {
            if r.phase_id.as_str() == "docs-1" && r.attempt == 1 {
                Err((
                    "protected_path".to_owned(),
                    "touches a protected path".to_owned(),
                ))
            } else {
                Ok(commit(&format!("{}-{}", r.phase_id, r.attempt)))
            }
        }),
        ci: Box::new(move |r| {
            ci_runs += 1;
            let verdict = match (r.phase_id.as_str(), ci_runs) {
                ("docs-1", _) => CiVerdict::Flaky,
                ("tests-1", 2) => CiVerdict::Red,
                _ => CiVerdict::Green,
            };
            CiReport {
                verdict,
                attempts: if verdict == CiVerdict::Green { 1 } else { 2 },
                failing_tests: if verdict == CiVerdict::Red {
                    vec!["tests::flaky_once".to_owned()]
                } else {
                    Vec::new()
                },
                flaky_tests: if verdict == CiVerdict::Flaky {
                    vec!["tests::flaky_once".to_owned()]
                } else {
                    Vec::new()
                },
                ..green(r)
            }
        }),
        ..Script::default()
    };
    drive(&plan, SupervisorConfig::default(), script, 1_000)
}

fn page_of(out: &Outcome) -> String {
    html(out.record(), out.supervisor.ledger().expect("a ledger"))
}

#[test]
fn the_scripted_run_did_what_the_page_is_to_show() {
    let out = scripted();
    let record = out.record();
    let docs = record.phases().find(|p| p.phase_id.as_str() == "docs-1");
    let docs = docs.expect("docs-1");
    assert_eq!(docs.attempts.len(), 2, "{:?}", docs.attempts);
    assert_eq!(docs.ci_runs[0].verdict, CiVerdict::Flaky);
    let schema = record.phases().find(|p| p.phase_id.as_str() == "schema-1");
    assert!(schema.expect("schema-1").usage.auditor_attempts >= 2);
}

#[test]
fn the_page_shows_timeline_budgets_cleanliness_issues_and_promotion() {
    let out = scripted();
    let record = out.record();
    let page = page_of(&out);
    for phase in record.phases() {
        assert!(
            page.contains(&format!("data-phase-id=\"{}\"", phase.phase_id)),
            "phase {}",
            phase.phase_id
        );
        assert!(page.contains(&format!(
            "Builder attempts {} / {}",
            phase.usage.builder_attempts, phase.caps.max_builder_attempts
        )));
    }
    for tier in &record.tiers {
        assert!(page.contains(&format!(
            "data-budget=\"tier-ci-runs\"><span class=\"bar-label\">CI runs</span><span class=\"bar-track\"><span class=\"bar-fill\" style=\"width:{}"
            , per_mille_text(u64::from(tier.usage.ci_runs), u64::from(tier.caps.ci_run_cap))
        )), "tier {} CI bar", tier.tier_id);
    }
    assert!(page.contains(&format!(
        "<span class=\"used\">{}</span> / <span class=\"cap\">{}</span>",
        record.usage.tokens, record.caps.token_cap
    )));
    assert!(page.contains("CI normal: flaky (2 attempts)"));
    assert!(page.contains("Patch gate: <span class=\"muted\">no CI (see reason)</span>"));
    assert!(page.contains("Auditor #1"));
    assert!(page.contains("id=\"cleanliness\""));
    assert!(page.contains("data-issue-key=\"docs-lint\""));
    let tiers = tier_report(record);
    if tiers.promotion_eligible {
        assert!(page.contains("Eligible"));
    } else {
        for reason in &tiers.refusals {
            assert!(page.contains(&escape(reason)), "{reason}");
        }
    }
}

/// What the page's bars say for `used` of `cap`, to one decimal of a percent.
fn per_mille_text(used: u64, cap: u64) -> String {
    let n = if used == 0 {
        0
    } else {
        // A cap of 0 with something used is a full bar.
        (used * 1000)
            .checked_div(cap)
            .map_or(1000, |n| n.clamp(1, 1000))
    };
    format!("{}.{}%", n / 10, n % 10)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[test]
fn hostile_names_notes_and_categories_are_escaped() {
    let page = page_of(&scripted());
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("</div><script"));
    for hostile in [HOSTILE_NAME, HOSTILE_CATEGORY, HOSTILE_NOTES] {
        assert!(page.contains(&escape(hostile)), "{hostile} escaped");
    }
    assert!(page.contains(
        "&lt;script&gt;alert(&quot;phase&quot;)&lt;/script&gt; &amp; &quot;quoted&quot;"
    ));
}

#[test]
fn the_page_needs_nothing_from_outside() {
    let page = page_of(&scripted());
    for outside in [
        "http:", "https:", "file:", "<link", "<script", "<img", "<iframe", "<object", "<embed",
        "@import", "url(",
    ] {
        assert!(!page.contains(outside), "{outside} in the page");
    }
}

#[test]
fn a_used_up_ci_cap_marks_the_tier_bar_breached() {
    let out = scripted();
    let mut record = out.record().clone();
    let cap = record.tiers[0].caps.ci_run_cap;
    record.tiers[0].usage.ci_runs = cap;
    record.tiers[0].breaches = vec![TierBreach::CiRunsUsedUp { cap }];
    let page = html(&record, out.supervisor.ledger().expect("a ledger"));
    assert!(page.contains(&format!(
        "<div class=\"bar breached\" data-budget=\"tier-ci-runs\"><span class=\"bar-label\">CI runs</span><span class=\"bar-track\"><span class=\"bar-fill\" style=\"width:100.0%\"></span></span><span class=\"bar-figures\"><span class=\"used\">{cap}</span> / <span class=\"cap\">{cap}</span> — breached</span></div>"
    )));
    assert!(page.contains(&format!("tier CI run cap used up: all {cap} CI runs spent")));
}

#[test]
fn the_page_is_the_same_every_time() {
    let first = page_of(&scripted());
    assert_eq!(first, page_of(&scripted()));
    // One tag a line, so a change reads as a diff (the page itself has no such breaks).
    insta::assert_snapshot!("html_report", first.replace("><", ">\n<"));
}
