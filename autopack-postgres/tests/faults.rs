//! The server stopped, restarted or unreachable under a writer; rows lost behind a
//! store's back. These tests stop their server, so they have one of their own and take
//! turns.

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use autopack_core::ids::{ProjectId, RunId};
use autopack_core::journal::RunStore;
use autopack_core::lease::{HeldLease, LeaseHolder, RunLeases};
use autopack_issues::testing::{at, observation};
use autopack_postgres::testing::TestServer;
use autopack_postgres::{
    Db, PgConfig, PgIssueLedger, PgRunLeases, PgRunStore, PgStoreError, RetryPolicy,
};
use chrono::Utc;

fn server() -> MutexGuard<'static, TestServer> {
    static SERVER: OnceLock<Mutex<TestServer>> = OnceLock::new();
    SERVER
        .get_or_init(|| Mutex::new(TestServer::start().unwrap_or_else(|e| panic!("{e}"))))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn run(id: &str) -> RunId {
    RunId::new(id).unwrap()
}

#[test]
fn a_server_restart_between_two_steps_is_waited_out_and_nothing_is_lost() {
    let server = server();
    let db = Db::open(&server.database().unwrap()).unwrap();
    let r = run("r-restart");
    let mut journal = PgRunStore::new(db.clone());
    let project = ProjectId::new("p-restart").unwrap();
    let mut ledger = PgIssueLedger::open(db.clone(), project.clone(), None).unwrap();
    let leases = PgRunLeases::new(db.clone(), Duration::from_secs(10));
    let mut lease = leases
        .acquire(&r, LeaseHolder::new(1, "h", Utc::now()))
        .unwrap()
        .lease;
    journal.append(&r, "{\"step\":1}").unwrap();
    ledger
        .record(&observation("r-restart", "t1", 0, "k1"), at(0))
        .unwrap();

    server.stop().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(1500));
            server.start_again().unwrap();
        });
        // Issued while the server is down: each waits for it and then goes through.
        journal.append(&r, "{\"step\":2}").unwrap();
        ledger
            .record(&observation("r-restart", "t1", 0, "k2"), at(1))
            .unwrap();
    });
    journal.sync(&r).unwrap();
    assert_eq!(
        PgRunStore::new(db.clone())
            .read(&r)
            .unwrap()
            .entries()
            .collect::<Vec<_>>(),
        vec!["{\"step\":1}", "{\"step\":2}"]
    );
    let reopened = PgIssueLedger::open(db, project, None).unwrap();
    assert_eq!(reopened.ledger().backlog().issues_by_key.len(), 2);
    assert!(lease.lost().is_none());
    lease.renew(Utc::now()).unwrap();
}

#[test]
fn an_unreachable_server_fails_within_the_retry_policy_then_the_journal_continues() {
    let server = server();
    let url = server.database().unwrap();
    let quick = RetryPolicy {
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        max_wait: Duration::from_secs(1),
    };
    let db = Db::connect(PgConfig::new(&url).unwrap().with_retry(quick)).unwrap();
    let r = run("r-down");
    let mut journal = PgRunStore::new(db.clone());
    journal.append(&r, "{\"step\":1}").unwrap();
    server.stop().unwrap();
    let err = journal.append(&r, "{\"step\":2}").unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("127.0.0.1") && text.contains("append to a run journal"),
        "{text}"
    );
    server.start_again().unwrap();
    // Nothing half-written: the refused entry is not there, and the next one follows.
    journal.append(&r, "{\"step\":2}").unwrap();
    assert_eq!(journal.read(&r).unwrap().len(), 2);
}

#[test]
fn entries_lost_behind_a_store_are_detected_not_papered_over() {
    let server = server();
    let db = Db::open(&server.database().unwrap()).unwrap();
    let r = run("r-lost");
    let mut journal = PgRunStore::new(db.clone());
    for i in 1..=3 {
        journal.append(&r, &format!("{{\"step\":{i}}}")).unwrap();
    }
    // As a crash of a server with unsynchronised commits would leave it.
    db.with("test", |c| {
        c.batch_execute("DELETE FROM run_journal WHERE seq = 3")
    })
    .unwrap();
    let err = journal.append(&r, "{\"step\":4}").unwrap_err();
    assert!(
        matches!(
            err,
            PgStoreError::LostEntries {
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{err}"
    );

    let project = ProjectId::new("p-lost").unwrap();
    let mut ledger = PgIssueLedger::open(db.clone(), project, None).unwrap();
    ledger
        .record(&observation("r-lost", "t1", 0, "k1"), at(0))
        .unwrap();
    ledger
        .record(&observation("r-lost", "t1", 0, "k2"), at(1))
        .unwrap();
    db.with("test", |c| {
        c.batch_execute(
            "DELETE FROM issue_journal WHERE seq = 2; UPDATE issue_projects SET last_seq = 1",
        )
    })
    .unwrap();
    let err = ledger
        .record(&observation("r-lost", "t1", 0, "k3"), at(2))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("entries up to 1, but 2 were written"),
        "{err}"
    );
}
