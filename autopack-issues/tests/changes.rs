//! Property test of change tracking: every view whose content a change alters is reported
//! by `Ledger::take_changes` (a store that rewrites only those views misses nothing).

use std::collections::BTreeMap;

use autopack_core::ids::{IssueKey, PhaseId, RunId, TierId};
use autopack_core::vocabulary::{Complexity, IssueCategory, IssueSource, Severity, TaskCategory};
use autopack_issues::{AgingThresholds, IssueObservation, Ledger, ReportedIssue, ViewKey};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// (run, tier, phase within tier, key, major?)
    Record(u8, u8, u8, u8, bool),
    Resolve(u8),
    Thresholds(u32, u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..3, 0u8..3, 0u8..2, 0u8..6, proptest::bool::weighted(0.2))
            .prop_map(|(r, t, p, k, m)| Op::Record(r, t, p, k, m)),
        1 => (0u8..6).prop_map(Op::Resolve),
        1 => (1u32..4, 1u32..3).prop_map(|(r, t)| Op::Thresholds(r, t)),
    ]
}

fn obs(run: u8, tier: u8, phase: u8, key: u8, major: bool) -> IssueObservation {
    IssueObservation {
        run_id: RunId::new(format!("run-{run}")).unwrap(),
        tier_id: TierId::new(format!("t{tier}")).unwrap(),
        phase_index: u32::from(tier) * 10 + u32::from(phase),
        phase_id: PhaseId::new(format!("t{tier}-p{phase}")).unwrap(),
        task_category: TaskCategory::Tests,
        complexity: Complexity::Medium,
        issue: ReportedIssue {
            issue_key: IssueKey::new(format!("k{key}")).unwrap(),
            severity: if major {
                Severity::Major
            } else {
                Severity::Minor
            },
            source: IssueSource::Test,
            category: IssueCategory::new("test_failure").unwrap(),
            expected_fail: false,
            evidence_refs: Vec::new(),
        },
    }
}

/// Every view's canonical JSON.
fn views(ledger: &Ledger) -> BTreeMap<ViewKey, String> {
    ledger
        .views()
        .into_iter()
        .map(|view| {
            let text = match &view {
                ViewKey::Backlog => ledger.backlog().to_json(),
                ViewKey::RunIndex { run_id } => ledger.run_issue_index(run_id).to_json(),
                ViewKey::PhaseFile {
                    run_id, phase_id, ..
                } => ledger
                    .phase_issue_file(run_id, phase_id)
                    .map(|f| f.to_json())
                    .unwrap_or_default(),
            };
            (view, text)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_changed_view_is_reported(ops in proptest::collection::vec(op(), 1..40)) {
        let mut ledger = Ledger::new(AgingThresholds::default());
        ledger.track_changes(true);
        for (i, op) in ops.iter().enumerate() {
            let before = views(&ledger);
            let at = Utc.timestamp_opt(1_700_000_000 + i as i64, 0).unwrap();
            match *op {
                Op::Record(r, t, p, k, m) => {
                    ledger.record(&obs(r, t, p, k, m), at).unwrap();
                }
                Op::Resolve(k) => {
                    let _ = ledger.resolve(&IssueKey::new(format!("k{k}")).unwrap(), at);
                }
                Op::Thresholds(runs, tiers) => {
                    ledger.set_thresholds(AgingThresholds { runs, tiers });
                }
            }
            let changed: BTreeMap<ViewKey, u64> = ledger.take_changes().into_iter().collect();
            for (view, text) in views(&ledger) {
                if before.get(&view) != Some(&text) {
                    prop_assert!(
                        changed.get(&view).is_some_and(|&n| n > 0),
                        "op {i} {op:?} changed {view:?} unreported; reported {changed:?}"
                    );
                }
            }
            for (view, n) in &changed {
                prop_assert!(*n > 0);
                prop_assert!(ledger.view_len(view) > 0 || *view == ViewKey::Backlog);
            }
        }
    }
}
