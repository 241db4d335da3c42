//! [`PgRunLeases`]: one live writer per run across hosts, as rows of `run_leases` with a
//! holder, a heartbeat and an expiry judged by the server's clock.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use autopack_core::ids::RunId;
use autopack_core::lease::{Acquired, HeldLease, LeaseError, LeaseHolder, RunLeases};
use chrono::{DateTime, Utc};

use crate::connection::{Db, RetryPolicy};
use crate::error::PgStoreError;

const TABLE: &str = "run_leases";

/// Run leases in PostgreSQL. A lease lasts `ttl` from its last renewal; while it is held a
/// heartbeat thread (on a connection of its own) renews it every third of `ttl`, so a
/// holder that dies — or is cut off from the server — loses it within `ttl`, and the next
/// [`RunLeases::acquire`] takes it over ([`Acquired::taken_over`] names the dead holder).
/// A holder whose heartbeat found the lease taken learns it from [`PgRunLease::lost`]
/// and [`HeldLease::renew`]; a [`PgRunStore`](crate::PgRunStore) fenced with the lease
/// ([`PgRunStore::fenced_by`](crate::PgRunStore::fenced_by)) refuses its appends.
#[derive(Debug, Clone)]
pub struct PgRunLeases {
    db: Db,
    ttl: Duration,
}

impl PgRunLeases {
    /// How long a lease lasts without a heartbeat, by default.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

    /// Leases on `db` lasting `ttl` (at least one second) past each renewal.
    pub fn new(db: Db, ttl: Duration) -> PgRunLeases {
        PgRunLeases {
            db,
            ttl: ttl.max(Duration::from_secs(1)),
        }
    }

    /// The current holder of `run_id`'s lease, live or expired.
    ///
    /// # Errors
    /// The database's errors; a holder row that does not parse.
    pub fn holder(&self, run_id: &RunId) -> Result<Option<LeaseHolder>, PgStoreError> {
        let row = self.db.with("read a run lease", |c| {
            c.query_opt(
                "SELECT holder, expires_at FROM run_leases WHERE run_id = $1",
                &[&run_id.as_str()],
            )
        })?;
        row.map(|r| parse_holder(run_id, r.get(0), r.get(1)))
            .transpose()
    }
}

fn parse_holder(
    run_id: &RunId,
    text: &str,
    expires_at: DateTime<Utc>,
) -> Result<LeaseHolder, PgStoreError> {
    let holder: LeaseHolder =
        autopack_core::json::from_str_named(text, || format!("{TABLE} run {run_id}"))
            .map_err(|e| PgStoreError::corrupt(TABLE, format!("run {run_id}"), e))?;
    Ok(holder.expiring_at(expires_at))
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// What a transaction of [`RunLeases::acquire`] found.
enum Found {
    Taken {
        expires_at: DateTime<Utc>,
        taken_over: Option<(String, DateTime<Utc>)>,
    },
    Held {
        holder: String,
        expires_at: DateTime<Utc>,
    },
}

impl RunLeases for PgRunLeases {
    type Error = PgStoreError;
    type Lease = PgRunLease;

    fn acquire(
        &self,
        run_id: &RunId,
        holder: LeaseHolder,
    ) -> Result<Acquired<PgRunLease>, LeaseError<PgStoreError>> {
        let token = crate::writer_id();
        let stored_holder = LeaseHolder {
            expires_at: None,
            ..holder.clone()
        };
        let holder_json = serde_json::to_string(&stored_holder).expect("holders serialise");
        let run = run_id.as_str();
        let ttl = seconds(self.ttl);
        let found = self
            .db
            .transaction("take a run lease", true, |tx| {
                let inserted = tx.query_opt(
                    "INSERT INTO run_leases (run_id, token, holder, expires_at)
                     VALUES ($1, $2, $3, now() + make_interval(secs => $4))
                     ON CONFLICT DO NOTHING RETURNING expires_at",
                    &[&run, &token, &holder_json, &ttl],
                )?;
                if let Some(row) = inserted {
                    return Ok(Found::Taken {
                        expires_at: row.get(0),
                        taken_over: None,
                    });
                }
                let row = tx.query_one(
                    "SELECT token, holder, expires_at, expires_at <= now() FROM run_leases
                     WHERE run_id = $1 FOR UPDATE",
                    &[&run],
                )?;
                let (current, current_holder, expires_at, expired): (
                    String,
                    String,
                    DateTime<Utc>,
                    bool,
                ) = (row.get(0), row.get(1), row.get(2), row.get(3));
                if current == token {
                    // Our own insert, retried after its reply was lost.
                    return Ok(Found::Taken {
                        expires_at,
                        taken_over: None,
                    });
                }
                if !expired {
                    return Ok(Found::Held {
                        holder: current_holder,
                        expires_at,
                    });
                }
                let expires: DateTime<Utc> = tx
                    .query_one(
                        "UPDATE run_leases SET token = $2, holder = $3,
                         expires_at = now() + make_interval(secs => $4)
                         WHERE run_id = $1 RETURNING expires_at",
                        &[&run, &token, &holder_json, &ttl],
                    )?
                    .get(0);
                Ok(Found::Taken {
                    expires_at: expires,
                    taken_over: Some((current_holder, expires_at)),
                })
            })
            .map_err(LeaseError::Store)?;
        match found {
            Found::Held { holder, expires_at } => Err(LeaseError::Held {
                run_id: run_id.clone(),
                holder: parse_holder(run_id, &holder, expires_at).map_err(LeaseError::Store)?,
            }),
            Found::Taken {
                expires_at,
                taken_over,
            } => {
                let taken_over = taken_over
                    .map(|(text, at)| parse_holder(run_id, &text, at))
                    .transpose()
                    .map_err(LeaseError::Store)?;
                let heartbeat = Heartbeat::start(&self.db, run_id, &token, self.ttl)
                    .map_err(LeaseError::Store)?;
                Ok(Acquired {
                    lease: PgRunLease {
                        db: self.db.clone(),
                        run_id: run_id.clone(),
                        token,
                        holder: holder.expiring_at(expires_at),
                        ttl: self.ttl,
                        heartbeat: Some(heartbeat),
                    },
                    taken_over,
                })
            }
        }
    }
}

/// A held lease of [`PgRunLeases`]; dropping it stops the heartbeat and releases it.
#[derive(Debug)]
pub struct PgRunLease {
    db: Db,
    run_id: RunId,
    token: String,
    holder: LeaseHolder,
    ttl: Duration,
    heartbeat: Option<Heartbeat>,
}

impl PgRunLease {
    /// The lease's token: the `run_leases.token` of its row while it is held.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The run.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// Why the heartbeat found the lease gone, if it did.
    pub fn lost(&self) -> Option<String> {
        self.heartbeat.as_ref().and_then(Heartbeat::lost)
    }

    /// Forgets the lease without releasing it, as a holder that dies does: the row stays
    /// until it expires (for tests of takeover).
    pub fn abandon(mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.stop();
        }
        self.token.clear();
    }
}

impl HeldLease for PgRunLease {
    type Error = PgStoreError;

    fn holder(&self) -> &LeaseHolder {
        &self.holder
    }

    fn renew(&mut self, until: DateTime<Utc>) -> Result<(), LeaseError<PgStoreError>> {
        if let Some(reason) = self.lost() {
            return Err(LeaseError::Lost {
                run_id: self.run_id.clone(),
                reason,
            });
        }
        let wanted = (until - Utc::now())
            .to_std()
            .unwrap_or_default()
            .max(self.ttl);
        match renew(&self.db, &self.run_id, &self.token, wanted).map_err(LeaseError::Store)? {
            Some(expires_at) => {
                self.holder.expires_at = Some(expires_at);
                Ok(())
            }
            None => Err(LeaseError::Lost {
                run_id: self.run_id.clone(),
                reason: "it expired and was taken by another writer".to_owned(),
            }),
        }
    }
}

impl Drop for PgRunLease {
    fn drop(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.stop();
        }
        if self.token.is_empty() {
            return;
        }
        // Best effort, and quick: a lease that cannot be released expires.
        let quick = RetryPolicy {
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            max_wait: Duration::from_millis(500),
        };
        let released = self.db.with_policy(quick, "release a run lease", |c| {
            c.execute(
                "DELETE FROM run_leases WHERE run_id = $1 AND token = $2",
                &[&self.run_id.as_str(), &self.token],
            )
        });
        if let Err(error) = released {
            tracing::warn!(run_id = %self.run_id, %error, "run lease not released; it expires on its own");
        }
    }
}

/// Extends the lease by `by` from the server's now; `None` when the token no longer holds it.
fn renew(
    db: &Db,
    run_id: &RunId,
    token: &str,
    by: Duration,
) -> Result<Option<DateTime<Utc>>, PgStoreError> {
    let secs = seconds(by);
    db.with("renew a run lease", |c| {
        c.query_opt(
            "UPDATE run_leases SET expires_at = now() + make_interval(secs => $3)
             WHERE run_id = $1 AND token = $2 RETURNING expires_at",
            &[&run_id.as_str(), &token, &secs],
        )
        .map(|row| row.map(|r| r.get(0)))
    })
}

#[derive(Debug, Default)]
struct Beat {
    stop: bool,
    lost: Option<String>,
}

/// The thread that renews a lease every third of its time to live.
#[derive(Debug)]
struct Heartbeat {
    state: Arc<(Mutex<Beat>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    fn start(
        db: &Db,
        run_id: &RunId,
        token: &str,
        ttl: Duration,
    ) -> Result<Heartbeat, PgStoreError> {
        // Its own connection, with retries that end before the lease would expire, so a
        // heartbeat never waits behind the run's own queries.
        let mut config = db.config().clone();
        config.retry.max_wait = config.retry.max_wait.min(ttl / 2);
        let db = Db::connect(config)?;
        let state = Arc::new((Mutex::new(Beat::default()), Condvar::new()));
        let shared = Arc::clone(&state);
        let (run_id, token) = (run_id.clone(), token.to_owned());
        let thread = std::thread::Builder::new()
            .name(format!("lease {run_id}"))
            .spawn(move || {
                let (lock, wake) = &*shared;
                let mut beat = lock.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    let (next, _) = wake
                        .wait_timeout_while(beat, ttl / 3, |b| !b.stop)
                        .unwrap_or_else(PoisonError::into_inner);
                    beat = next;
                    if beat.stop {
                        return;
                    }
                    drop(beat);
                    let outcome = renew(&db, &run_id, &token, ttl);
                    beat = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    match outcome {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            beat.lost =
                                Some("it expired and was taken by another writer".to_owned());
                            return;
                        }
                        Err(error) => {
                            tracing::warn!(%run_id, %error, "run lease heartbeat failed");
                        }
                    }
                }
            })
            .map_err(|e| PgStoreError::Invalid {
                field: "lease heartbeat".to_owned(),
                message: format!("cannot start its thread: {e}"),
            })?;
        Ok(Heartbeat {
            state,
            thread: Some(thread),
        })
    }

    fn lost(&self) -> Option<String> {
        self.state
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lost
            .clone()
    }

    fn stop(mut self) {
        self.state
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stop = true;
        self.state.1.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
