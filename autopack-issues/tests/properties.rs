//! Property tests of the ledger's invariants.

use std::collections::{BTreeMap, BTreeSet};

use autopack_core::ids::{IssueKey, PhaseId, RunId, TierId};
use autopack_core::vocabulary::{Complexity, IssueCategory, IssueSource, Severity, TaskCategory};
use autopack_issues::{AgingThresholds, IssueObservation, Ledger, ReportedIssue};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

/// (run, tier, phase within tier, key, major?)
type Op = (u8, u8, u8, u8, bool);

fn op() -> impl Strategy<Value = Op> {
    (
        0u8..4,
        0u8..3,
        0u8..3,
        0u8..8,
        proptest::bool::weighted(0.2),
    )
}

fn obs(&(run, tier, phase, key, major): &Op) -> IssueObservation {
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
            evidence_refs: vec![],
        },
    }
}

fn record_all(ops: &[Op], thresholds: AgingThresholds) -> Ledger {
    let mut ledger = Ledger::new(thresholds);
    let now = Utc.timestamp_opt(1_763_896_577, 0).unwrap();
    for op in ops {
        ledger.record(&obs(op), now).unwrap();
    }
    ledger
}

fn run_id(r: u8) -> RunId {
    RunId::new(format!("run-{r}")).unwrap()
}

/// A permutation of `ops` that keeps runs in order of first appearance but shuffles the
/// records within each run.
fn shuffle_within_runs(ops: &[Op], seed: &[usize]) -> Vec<Op> {
    let mut order: Vec<u8> = Vec::new();
    let mut by_run: BTreeMap<u8, Vec<Op>> = BTreeMap::new();
    for op in ops {
        if !order.contains(&op.0) {
            order.push(op.0);
        }
        by_run.entry(op.0).or_default().push(*op);
    }
    let mut out = Vec::new();
    for run in order {
        let mut records = by_run.remove(&run).unwrap_or_default();
        for (i, s) in seed.iter().enumerate() {
            if records.len() > 1 {
                let a = i % records.len();
                let b = s % records.len();
                records.swap(a, b);
            }
        }
        out.extend(records);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Counts at every level are distinct keys, never occurrences.
    #[test]
    fn counts_are_distinct_keys(ops in proptest::collection::vec(op(), 0..80)) {
        let ledger = record_all(&ops, AgingThresholds::default());
        for r in 0u8..4 {
            let in_run: BTreeSet<u8> = ops.iter().filter(|o| o.0 == r).map(|o| o.3).collect();
            let counts = ledger.run_counts(&run_id(r));
            prop_assert_eq!(counts.total() as usize, in_run.len());
            let index = ledger.run_issue_index(&run_id(r));
            prop_assert_eq!(index.issues_by_key.len(), in_run.len());
            prop_assert_eq!((index.minor_issue_count + index.major_issue_count) as usize, in_run.len());
            for t in 0u8..3 {
                let in_tier: BTreeSet<u8> =
                    ops.iter().filter(|o| o.0 == r && o.1 == t).map(|o| o.3).collect();
                let tier = TierId::new(format!("t{t}")).unwrap();
                prop_assert_eq!(ledger.tier_counts(&run_id(r), &tier).total() as usize, in_tier.len());
            }
            for file in ledger.phase_issue_files(&run_id(r)) {
                let in_phase: BTreeSet<u8> = ops
                    .iter()
                    .filter(|o| o.0 == r && format!("t{}-p{}", o.1, o.2) == file.phase_id.as_str())
                    .map(|o| o.3)
                    .collect();
                prop_assert_eq!(file.issues.len(), in_phase.len());
                prop_assert_eq!((file.minor_issue_count + file.major_issue_count) as usize, in_phase.len());
                let occurrences: u64 = file.issues.iter().map(|i| i.occurrence_count).sum();
                let expected = ops
                    .iter()
                    .filter(|o| o.0 == r && format!("t{}-p{}", o.1, o.2) == file.phase_id.as_str())
                    .count();
                prop_assert_eq!(occurrences as usize, expected);
            }
        }
        prop_assert_eq!(ledger.len(), ops.iter().map(|o| o.3).collect::<BTreeSet<_>>().len());
    }

    /// `age_in_runs` is the number of distinct runs, `age_in_tiers` the number of distinct
    /// tier ids, however often and in whatever order a key is recorded; `seen_in_tiers`
    /// lists every distinct (run, tier) sighting.
    #[test]
    fn ages_count_distinct_runs_and_tiers(ops in proptest::collection::vec(op(), 1..80)) {
        let ledger = record_all(&ops, AgingThresholds::default());
        let backlog = ledger.backlog();
        for (key, entry) in &backlog.issues_by_key {
            let mine: Vec<&Op> = ops.iter().filter(|o| format!("k{}", o.3) == key.as_str()).collect();
            let runs: BTreeSet<u8> = mine.iter().map(|o| o.0).collect();
            let sightings: BTreeSet<(u8, u8)> = mine.iter().map(|o| (o.0, o.1)).collect();
            let tiers: BTreeSet<u8> = mine.iter().map(|o| o.1).collect();
            prop_assert_eq!(entry.age_in_runs as usize, runs.len());
            prop_assert_eq!(entry.age_in_tiers as usize, tiers.len());
            prop_assert_eq!(entry.seen_in_tiers.len(), sightings.len());
            prop_assert_eq!(entry.occurrence_count as usize, mine.len());
        }
    }

    /// Base, run-effective and phase-effective severities never decrease.
    #[test]
    fn severity_never_decreases(ops in proptest::collection::vec(op(), 1..60)) {
        let mut ledger = Ledger::new(AgingThresholds::default());
        let now = Utc.timestamp_opt(1_763_896_577, 0).unwrap();
        let mut seen: BTreeMap<String, Severity> = BTreeMap::new();
        for op in &ops {
            let outcome = ledger.record(&obs(op), now).unwrap();
            if let Some(up) = outcome.severity_upgrade {
                prop_assert!(up.to > up.from);
            }
            let backlog = ledger.backlog();
            for (key, entry) in &backlog.issues_by_key {
                let slot = format!("backlog/{key}");
                let before = seen.get(&slot).copied().unwrap_or(Severity::Minor);
                prop_assert!(entry.base_severity >= before);
                seen.insert(slot, entry.base_severity);
            }
            for r in 0u8..4 {
                for (key, entry) in ledger.run_issue_index(&run_id(r)).issues_by_key {
                    prop_assert!(entry.effective_severity >= entry.severity);
                    let slot = format!("run-{r}/{key}");
                    let before = seen.get(&slot).copied().unwrap_or(Severity::Minor);
                    prop_assert!(entry.effective_severity >= before);
                    seen.insert(slot, entry.effective_severity);
                }
                for file in ledger.phase_issue_files(&run_id(r)) {
                    for issue in file.issues {
                        prop_assert!(issue.effective_severity >= issue.severity);
                        let slot = format!("run-{r}/{}/{}", file.phase_id, issue.issue_key);
                        let before = seen.get(&slot).copied().unwrap_or(Severity::Minor);
                        prop_assert!(issue.effective_severity >= before);
                        seen.insert(slot, issue.effective_severity);
                    }
                }
            }
        }
    }

    /// Within each run, recording order changes nothing; across runs, ages, severities,
    /// statuses, occurrences and tiers do not depend on order either.
    #[test]
    fn final_counts_do_not_depend_on_recording_order(
        ops in proptest::collection::vec(op(), 1..80),
        seed in proptest::collection::vec(0usize..1000, 0..80),
        permutation in Just(()).prop_perturb(|_, mut rng| {
            let mut v: Vec<u64> = (0..80).map(|_| rng.random()).collect();
            v.truncate(80);
            v
        }),
    ) {
        let thresholds = AgingThresholds::default();
        let grouped = shuffle_within_runs(&ops, &[]);
        let a = record_all(&grouped, thresholds);
        let b = record_all(&shuffle_within_runs(&ops, &seed), thresholds);
        prop_assert_eq!(a.snapshot(), b.snapshot());

        let mut shuffled: Vec<(u64, Op)> = ops.iter().enumerate().map(|(i, o)| (permutation[i], *o)).collect();
        shuffled.sort_by_key(|(p, _)| *p);
        let shuffled: Vec<Op> = shuffled.into_iter().map(|(_, o)| o).collect();
        let c = record_all(&shuffled, thresholds);
        let strip = |l: &Ledger| {
            l.backlog()
                .issues_by_key
                .into_iter()
                .map(|(k, e)| (k, (e.base_severity, e.age_in_runs, e.age_in_tiers, e.status, e.occurrence_count, e.seen_in_tiers)))
                .collect::<BTreeMap<_, _>>()
        };
        prop_assert_eq!(strip(&a), strip(&c));
        for r in 0u8..4 {
            let (ia, ic) = (a.run_issue_index(&run_id(r)), c.run_issue_index(&run_id(r)));
            prop_assert_eq!(ia.issues_by_key.len(), ic.issues_by_key.len());
            for (k, ea) in &ia.issues_by_key {
                let ec = &ic.issues_by_key[k];
                prop_assert_eq!((ea.severity, ea.occurrence_count, &ea.seen_in_tiers, &ea.seen_in_phases),
                    (ec.severity, ec.occurrence_count, &ec.seen_in_tiers, &ec.seen_in_phases));
            }
        }
    }
}
