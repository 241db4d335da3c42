//! Several processes (stand-ins for hosts) recording into one project's ledger at once.

use std::process::Command;

use autopack_core::ids::{IssueKey, ProjectId};
use autopack_core::vocabulary::{IssueStatus, Severity};
use autopack_issues::testing::{at, observation};
use autopack_issues::{IssueObservation, IssueStore};
use autopack_postgres::{Db, PgIssueLedger, PgIssueStore, testing};

const WRITERS: usize = 8;
const KEYS_PER_WRITER: usize = 2_500;
/// Keys every writer records too, twice (in two tiers), so counts across writers matter.
const COMMON_KEYS: usize = 10;
const CHILD_ENV: &str = "AUTOPACK_PG_WRITER";

fn project() -> ProjectId {
    ProjectId::new("shared-project").unwrap()
}

/// What writer `w` records, in the batches it records them in: its own keys, then the
/// common keys in tiers t1 and t2. Even writers append one observation at a time, odd
/// ones 25 at a time (a phase's worth of issues).
fn batches(w: usize) -> Vec<Vec<IssueObservation>> {
    let run = format!("run-{w}");
    let mut all: Vec<IssueObservation> = (0..KEYS_PER_WRITER)
        .map(|i| observation(&run, "t1", (i / 100) as u32, &format!("w{w}-k{i}")))
        .collect();
    for tier in ["t1", "t2"] {
        for c in 0..COMMON_KEYS {
            let mut obs = observation(&run, tier, 100, &format!("common-{c}"));
            // One writer reports common-1 as major: the key is upgraded, whoever is first.
            if w == 3 && c == 1 {
                obs.issue.severity = Severity::Major;
            }
            all.push(obs);
        }
    }
    let size = if w.is_multiple_of(2) { 1 } else { 25 };
    all.chunks(size).map(<[_]>::to_vec).collect()
}

/// The body of one writer process, started by `eight_processes_record_into_one_project`.
#[test]
#[ignore = "a child process of eight_processes_record_into_one_project, which starts it"]
fn writer_process() {
    let spec = std::env::var(CHILD_ENV).expect("started by the parent test");
    let (w, url) = spec.split_once(' ').expect("writer and URL");
    let w: usize = w.parse().unwrap();
    let db = Db::open(url).unwrap();
    let mut ledger = PgIssueLedger::open(db, project(), None).unwrap();
    for (i, batch) in batches(w).iter().enumerate() {
        ledger.record_all(batch, at(i as i64)).unwrap();
    }
}

#[test]
fn eight_processes_record_into_one_project() {
    let url = testing::shared().database().unwrap();
    // common-0 was seen and resolved before: the first writer to see it again makes it a
    // regression, the others add occurrences.
    let mut before = PgIssueLedger::open(Db::open(&url).unwrap(), project(), None).unwrap();
    before
        .record(&observation("run-before", "t1", 0, "common-0"), at(0))
        .unwrap();
    before
        .resolve(&IssueKey::new("common-0").unwrap(), at(1))
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WRITERS)
        .map(|w| {
            Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "writer_process",
                    "--test-threads",
                    "1",
                ])
                .env(CHILD_ENV, format!("{w} {url}"))
                .output_async()
        })
        .collect();
    for (w, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "writer {w} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let db = Db::open(&url).unwrap();
    let ledger = PgIssueLedger::open(db.clone(), project(), None).unwrap();
    let backlog = ledger.ledger().backlog();
    assert_eq!(
        backlog.issues_by_key.len(),
        WRITERS * KEYS_PER_WRITER + COMMON_KEYS
    );
    let regressed = &backlog.issues_by_key["common-0"];
    assert_eq!(regressed.regression_count, 1, "{regressed:?}");
    assert_ne!(regressed.status, IssueStatus::Resolved, "{regressed:?}");
    assert_eq!(
        backlog.issues_by_key["common-1"].base_severity,
        Severity::Major
    );
    assert_eq!(
        backlog.issues_by_key["common-2"].base_severity,
        Severity::Minor
    );
    let own = backlog
        .issues_by_key
        .iter()
        .filter(|(k, _)| !k.as_str().starts_with("common-"));
    assert_eq!(own.clone().count(), WRITERS * KEYS_PER_WRITER);
    for (key, entry) in own {
        assert_eq!(
            (
                entry.age_in_runs,
                entry.age_in_tiers,
                entry.occurrence_count
            ),
            (1, 1, 1),
            "{key}"
        );
    }
    for c in 0..COMMON_KEYS {
        let entry = &backlog.issues_by_key[format!("common-{c}").as_str()];
        let before = u64::from(c == 0);
        assert_eq!(
            entry.age_in_runs,
            WRITERS as u32 + before as u32,
            "common-{c}"
        );
        assert_eq!(entry.age_in_tiers, 2, "common-{c}");
        assert_eq!(
            entry.occurrence_count,
            2 * WRITERS as u64 + before,
            "common-{c}"
        );
    }
    // The journal holds every observation exactly once, gap-free.
    let stored = PgIssueStore::new(db, project()).load().unwrap();
    let expected = WRITERS * (KEYS_PER_WRITER + 2 * COMMON_KEYS) + 2;
    assert_eq!(stored.journal.len(), expected);
    assert!(
        stored
            .journal
            .iter()
            .enumerate()
            .all(|(i, e)| e.seq == i as u64 + 1)
    );
    for w in 0..WRITERS {
        let index = ledger
            .ledger()
            .run_issue_index(&autopack_core::ids::RunId::new(format!("run-{w}")).unwrap());
        assert_eq!(
            index.issues_by_key.len(),
            KEYS_PER_WRITER + COMMON_KEYS,
            "run-{w}"
        );
    }
}

trait OutputAsync {
    fn output_async(&mut self) -> std::process::Child;
}

impl OutputAsync for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}
