//! The store traits' conformance suites, unchanged, against PostgreSQL; then what only a
//! database store has to show: leases across writers, fencing, typed errors for bad rows.

use std::time::Duration;

use autopack_core::ids::{ProjectId, RunId};
use autopack_core::journal::RunStore;
use autopack_core::lease::{HeldLease, LeaseError, LeaseHolder, RunLeases};
use autopack_issues::IssueStore;
use autopack_issues::testing::{at, observation};
use autopack_postgres::{
    PgIssueLedger, PgIssueStore, PgRulesetStore, PgRunLeases, PgRunStore, PgStoreError,
    PgStrategyStore, testing,
};
use chrono::Utc;

#[test]
fn run_store_conformance() {
    autopack_core::journal::testing::run_store_conformance(|| PgRunStore::new(testing::fresh_db()));
}

#[test]
fn issue_store_conformance() {
    autopack_issues::testing::run_conformance_suite(|| {
        PgIssueStore::new(testing::fresh_db(), ProjectId::new("conformance").unwrap())
    });
}

#[test]
fn ruleset_store_conformance() {
    autopack_strategy::testing::ruleset_store_conformance(|| {
        PgRulesetStore::new(testing::fresh_db())
    });
}

#[test]
fn strategy_store_conformance() {
    autopack_strategy::testing::strategy_store_conformance(|| {
        PgStrategyStore::new(testing::fresh_db())
    });
}

fn run(id: &str) -> RunId {
    RunId::new(id).unwrap()
}

fn holder(pid: u32) -> LeaseHolder {
    LeaseHolder::new(pid, "host-test", Utc::now())
}

#[test]
fn a_lease_refuses_a_second_writer_naming_the_holder_and_is_released_on_drop() {
    let db = testing::fresh_db();
    let leases = PgRunLeases::new(db.clone(), Duration::from_secs(30));
    let first = leases.acquire(&run("r1"), holder(10)).unwrap();
    assert!(first.taken_over.is_none());
    assert!(first.lease.holder().expires_at.is_some());
    let refused = leases.acquire(&run("r1"), holder(11)).unwrap_err();
    assert!(
        matches!(&refused, LeaseError::Held { holder, .. } if holder.pid == 10),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("process 10 on host-test"),
        "{refused}"
    );
    // Another run is free.
    assert!(leases.acquire(&run("r2"), holder(11)).is_ok());
    drop(first);
    let second = leases.acquire(&run("r1"), holder(11)).unwrap();
    assert!(
        second.taken_over.is_none(),
        "a released lease is not taken over"
    );
}

#[test]
fn an_abandoned_lease_is_taken_over_after_expiry_and_its_holder_fenced_off() {
    let db = testing::fresh_db();
    let leases = PgRunLeases::new(db.clone(), Duration::from_secs(1));
    let r = run("r-expire");
    let dead = leases.acquire(&r, holder(20)).unwrap().lease;
    let mut dead_journal = PgRunStore::new(db.clone()).fenced_by(&dead);
    dead_journal.append(&r, "{\"n\":1}").unwrap();
    dead.abandon();
    assert!(matches!(
        leases.acquire(&r, holder(21)),
        Err(LeaseError::Held { .. })
    ));
    std::thread::sleep(Duration::from_millis(1300));
    let taken = leases.acquire(&r, holder(21)).unwrap();
    assert_eq!(taken.taken_over.as_ref().map(|h| h.pid), Some(20));
    // The dead writer, were it only paused, can no longer append.
    let err = dead_journal.append(&r, "{\"n\":2}").unwrap_err();
    assert!(
        matches!(
            err,
            PgStoreError::Conflict {
                table: "run_leases",
                ..
            }
        ),
        "{err}"
    );
    let mut journal = PgRunStore::new(db).fenced_by(&taken.lease);
    journal.append(&r, "{\"n\":2}").unwrap();
    assert_eq!(journal.read(&r).unwrap().len(), 2);
}

#[test]
fn a_held_lease_is_kept_alive_by_its_heartbeat() {
    let db = testing::fresh_db();
    let leases = PgRunLeases::new(db, Duration::from_secs(1));
    let r = run("r-heartbeat");
    let mut held = leases.acquire(&r, holder(30)).unwrap().lease;
    std::thread::sleep(Duration::from_millis(2500));
    assert!(matches!(
        leases.acquire(&r, holder(31)),
        Err(LeaseError::Held { .. })
    ));
    assert!(held.lost().is_none());
    held.renew(Utc::now() + chrono::Duration::seconds(5))
        .unwrap();
}

#[test]
fn a_second_journal_writer_is_refused_at_its_first_append() {
    let db = testing::fresh_db();
    let r = run("r-two");
    let mut a = PgRunStore::new(db.clone());
    let mut b = PgRunStore::new(db);
    a.append(&r, "{\"a\":1}").unwrap();
    b.append(&r, "{\"b\":1}").unwrap();
    let err = a.append(&r, "{\"a\":2}").unwrap_err();
    assert!(
        matches!(
            err,
            PgStoreError::Conflict {
                table: "run_journal",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("run r-two entry 2"), "{err}");
}

fn sql(db: &autopack_postgres::Db, statement: &str) {
    db.with("test statement", |c| c.batch_execute(statement))
        .unwrap();
}

#[test]
fn bad_rows_are_typed_errors_naming_table_and_key() {
    let db = testing::fresh_db();
    let r = run("r-bad");
    let mut journal = PgRunStore::new(db.clone());
    journal.append(&r, "{\"n\":1}").unwrap();
    journal.append(&r, "{\"n\":2}").unwrap();
    journal.append(&r, "{\"n\":3}").unwrap();
    sql(
        &db,
        "DELETE FROM run_journal WHERE run_id = 'r-bad' AND seq = 2",
    );
    let err = PgRunStore::new(db.clone()).read(&r).unwrap_err();
    assert!(
        err.to_string()
            .contains("table run_journal, run r-bad entry 2"),
        "{err}"
    );

    let project = ProjectId::new("p-bad").unwrap();
    let mut ledger = PgIssueLedger::open(db.clone(), project.clone(), None).unwrap();
    ledger
        .record(&observation("run-1", "t1", 0, "k1"), at(0))
        .unwrap();
    sql(
        &db,
        "UPDATE issue_journal SET event = '{\"event\":\"record\",\"at\":1}' WHERE project_id = 'p-bad'",
    );
    let err = PgIssueLedger::open(db.clone(), project, None).unwrap_err();
    assert!(
        err.to_string()
            .contains("table issue_journal, project p-bad seq 1"),
        "{err}"
    );

    sql(
        &db,
        "INSERT INTO strategies VALUES ('r-bad', 1, 'not json')",
    );
    let err = autopack_strategy::StrategyStore::load(&PgStrategyStore::new(db.clone()), &r, 1)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("table strategies, run r-bad version 1"),
        "{err}"
    );

    sql(
        &db,
        "INSERT INTO run_leases VALUES ('r-bad', 't', '[1,2]', now() + interval '1 hour')",
    );
    let err = PgRunLeases::new(db.clone(), Duration::from_secs(5))
        .acquire(&r, holder(1))
        .unwrap_err();
    assert!(
        err.to_string().contains("table run_leases, run r-bad"),
        "{err}"
    );

    sql(&db, "INSERT INTO runs (run_id) VALUES ('../escape')");
    let err = journal.runs().unwrap_err();
    assert!(err.to_string().contains("table runs"), "{err}");
}

#[test]
fn projects_do_not_share_keys() {
    let db = testing::fresh_db();
    let (a, b) = (
        ProjectId::new("proj-a").unwrap(),
        ProjectId::new("proj-b").unwrap(),
    );
    let mut la = PgIssueLedger::open(db.clone(), a.clone(), None).unwrap();
    let mut lb = PgIssueLedger::open(db.clone(), b.clone(), None).unwrap();
    la.record(&observation("run-1", "t1", 0, "shared"), at(0))
        .unwrap();
    lb.record(&observation("run-2", "t1", 0, "shared"), at(1))
        .unwrap();
    lb.record(&observation("run-3", "t1", 0, "shared"), at(2))
        .unwrap();
    let la = PgIssueLedger::open(db.clone(), a, None).unwrap();
    let lb = PgIssueLedger::open(db, b, None).unwrap();
    assert_eq!(la.ledger().backlog().issues_by_key["shared"].age_in_runs, 1);
    assert_eq!(lb.ledger().backlog().issues_by_key["shared"].age_in_runs, 2);
}

#[test]
fn a_checkpoint_compacts_what_later_opens_replay() {
    let db = testing::fresh_db();
    let project = ProjectId::new("p-checkpoint").unwrap();
    let mut ledger = PgIssueLedger::open(db.clone(), project.clone(), None).unwrap();
    for i in 0..20 {
        ledger
            .record(
                &observation(&format!("run-{i}"), "t1", 0, &format!("k{}", i % 5)),
                at(i),
            )
            .unwrap();
    }
    ledger.checkpoint().unwrap();
    ledger
        .record(&observation("run-20", "t1", 0, "k-last"), at(20))
        .unwrap();
    let stored = PgIssueStore::new(db.clone(), project.clone())
        .load()
        .unwrap();
    assert_eq!(stored.checkpoint.as_ref().map(|c| c.through), Some(20));
    assert_eq!(stored.journal.len(), 1);
    let reopened = PgIssueLedger::open(db, project, None).unwrap();
    assert_eq!(reopened.ledger().backlog(), ledger.ledger().backlog());
}
