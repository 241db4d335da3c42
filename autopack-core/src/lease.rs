//! One writer per run: a run's lease.
//!
//! Whoever appends to a run's journal (`autopack run`, `autopack resume`, an embedding
//! host) holds the run's lease for as long as it works. A second writer is refused at
//! once with [`LeaseError::Held`], naming the holder; a lease whose holder is gone (its
//! process died, or — for stores that rely on time — it expired) is taken over, and the
//! taker is told whom it took it from ([`Acquired::taken_over`]), so it knows that what
//! the dead writer left (ref locks, workspaces, processes) can be reclaimed.
//!
//! The store is a trait so that a filesystem lease (an advisory lock held by the process,
//! `autopack_layout::FsRunLeases`) and a database lease with an expiry can stand behind
//! the same host code. [`MemoryLeases`] keeps leases in memory with explicit expiry, for
//! tests and single-process hosts.
//!
//! ```
//! use autopack_core::ids::RunId;
//! use autopack_core::lease::{LeaseError, LeaseHolder, MemoryLeases, RunLeases};
//! use chrono::{TimeZone, Utc};
//!
//! let leases = MemoryLeases::default();
//! let run = RunId::new("run-1")?;
//! let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
//! let first = leases.acquire(&run, LeaseHolder::new(10, "host-a", now))?;
//! let refused = leases.acquire(&run, LeaseHolder::new(11, "host-b", now));
//! assert!(matches!(refused, Err(LeaseError::Held { ref holder, .. }) if holder.pid == 10));
//! drop(first);
//! assert!(leases.acquire(&run, LeaseHolder::new(11, "host-b", now)).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::RunId;

/// Who holds (or held) a run's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseHolder {
    /// The holder's process id.
    pub pid: u32,
    /// The holder's host name.
    pub host: String,
    /// When the holder took the lease.
    pub since: DateTime<Utc>,
    /// When a store that relies on time gives the lease up unless it is renewed; `None`
    /// for leases that last as long as the holder's process (the filesystem lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl LeaseHolder {
    /// A holder that keeps the lease for as long as it lives.
    pub fn new(pid: u32, host: impl Into<String>, since: DateTime<Utc>) -> LeaseHolder {
        LeaseHolder {
            pid,
            host: host.into(),
            since,
            expires_at: None,
        }
    }

    /// The same holder with an expiry.
    #[must_use]
    pub fn expiring_at(mut self, at: DateTime<Utc>) -> LeaseHolder {
        self.expires_at = Some(at);
        self
    }

    /// Whether the lease has expired at `now` (never, without an expiry).
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

impl fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "process {} on {} (since {})",
            self.pid,
            self.host,
            crate::clock::timestamp::format_utc(self.since)
        )?;
        if let Some(at) = self.expires_at {
            write!(f, ", expiring {}", crate::clock::timestamp::format_utc(at))?;
        }
        Ok(())
    }
}

/// A lease taken.
#[derive(Debug)]
pub struct Acquired<L> {
    /// The lease; dropping it releases it.
    pub lease: L,
    /// The holder it was taken over from: a writer that is gone and may have left work
    /// half done.
    pub taken_over: Option<LeaseHolder>,
}

/// Why a lease was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError<E: std::error::Error + 'static> {
    /// Another live writer holds the run.
    #[error(
        "run {run_id} is being written by {holder}; wait for it to finish or stop that process first"
    )]
    Held {
        /// The run.
        run_id: RunId,
        /// Its current holder.
        holder: LeaseHolder,
    },
    /// The lease was lost (expired and taken by another writer) while it was held.
    #[error("the lease of run {run_id} was lost: {reason}")]
    Lost {
        /// The run.
        run_id: RunId,
        /// What happened.
        reason: String,
    },
    /// The store failed.
    #[error("lease store: {0}")]
    Store(#[source] E),
}

/// A held lease. Released when dropped.
pub trait HeldLease {
    /// The error of the store behind it.
    type Error: std::error::Error + 'static;

    /// The holder recorded for this lease.
    fn holder(&self) -> &LeaseHolder;

    /// Keeps the lease until `until` (stores without expiry accept and ignore it).
    ///
    /// # Errors
    /// [`LeaseError::Lost`] when another writer took it meanwhile.
    fn renew(&mut self, until: DateTime<Utc>) -> Result<(), LeaseError<Self::Error>>;
}

/// Where a run's leases are kept.
pub trait RunLeases {
    /// The store's error.
    type Error: std::error::Error + 'static;
    /// A lease of this store.
    type Lease: HeldLease<Error = Self::Error>;

    /// Takes the lease of `run_id` for `holder`: at once, or [`LeaseError::Held`] naming
    /// the live holder. A lease whose holder is gone is taken over.
    ///
    /// # Errors
    /// [`LeaseError::Held`], or [`LeaseError::Store`].
    fn acquire(
        &self,
        run_id: &RunId,
        holder: LeaseHolder,
    ) -> Result<Acquired<Self::Lease>, LeaseError<Self::Error>>;
}

type Table = Arc<Mutex<BTreeMap<RunId, (u64, LeaseHolder)>>>;

/// Leases in memory, with expiry judged at each `acquire` by the new holder's `since`.
/// Clones share the table.
#[derive(Debug, Clone, Default)]
pub struct MemoryLeases {
    table: Table,
    next_token: Arc<Mutex<u64>>,
}

/// A lease of [`MemoryLeases`].
#[derive(Debug)]
pub struct MemoryLease {
    table: Table,
    run_id: RunId,
    token: u64,
    holder: LeaseHolder,
}

/// [`MemoryLeases`] never fail on their own.
#[derive(Debug, thiserror::Error)]
#[error("unreachable")]
#[non_exhaustive]
pub enum NoLeaseStoreError {}

impl MemoryLeases {
    /// Forgets a lease without releasing it, as a writer that dies does: the holder stays
    /// recorded until its expiry (forever, without one).
    pub fn abandon(lease: MemoryLease) {
        std::mem::forget(lease);
    }

    /// The current holder of `run_id`.
    pub fn holder(&self, run_id: &RunId) -> Option<LeaseHolder> {
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(run_id)
            .map(|(_, h)| h.clone())
    }
}

impl RunLeases for MemoryLeases {
    type Error = NoLeaseStoreError;
    type Lease = MemoryLease;

    fn acquire(
        &self,
        run_id: &RunId,
        holder: LeaseHolder,
    ) -> Result<Acquired<MemoryLease>, LeaseError<NoLeaseStoreError>> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let taken_over = match table.get(run_id) {
            Some((_, current)) if !current.expired(holder.since) => {
                return Err(LeaseError::Held {
                    run_id: run_id.clone(),
                    holder: current.clone(),
                });
            }
            Some((_, expired)) => Some(expired.clone()),
            None => None,
        };
        let token = {
            let mut next = self
                .next_token
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *next += 1;
            *next
        };
        table.insert(run_id.clone(), (token, holder.clone()));
        Ok(Acquired {
            lease: MemoryLease {
                table: Arc::clone(&self.table),
                run_id: run_id.clone(),
                token,
                holder,
            },
            taken_over,
        })
    }
}

impl HeldLease for MemoryLease {
    type Error = NoLeaseStoreError;

    fn holder(&self) -> &LeaseHolder {
        &self.holder
    }

    fn renew(&mut self, until: DateTime<Utc>) -> Result<(), LeaseError<NoLeaseStoreError>> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        match table.get_mut(&self.run_id) {
            Some((token, holder)) if *token == self.token => {
                holder.expires_at = Some(until);
                self.holder.expires_at = Some(until);
                Ok(())
            }
            Some((_, other)) => Err(LeaseError::Lost {
                run_id: self.run_id.clone(),
                reason: format!("it expired and was taken by {other}"),
            }),
            None => Err(LeaseError::Lost {
                run_id: self.run_id.clone(),
                reason: "it is no longer recorded".to_owned(),
            }),
        }
    }
}

impl Drop for MemoryLease {
    fn drop(&mut self) {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        // Only our own lease: one taken over after expiry belongs to its new holder.
        if table
            .get(&self.run_id)
            .is_some_and(|(t, _)| *t == self.token)
        {
            table.remove(&self.run_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_767_225_600 + s, 0).unwrap()
    }

    fn run() -> RunId {
        RunId::new("r1").unwrap()
    }

    #[test]
    fn a_live_holder_refuses_others_and_is_named() {
        let leases = MemoryLeases::default();
        let held = leases
            .acquire(&run(), LeaseHolder::new(1, "a", at(0)))
            .unwrap();
        assert!(held.taken_over.is_none());
        let err = leases
            .acquire(&run(), LeaseHolder::new(2, "b", at(5)))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("run r1"), "{text}");
        assert!(text.contains("process 1 on a"), "{text}");
        // Another run is independent.
        let other = RunId::new("r2").unwrap();
        assert!(
            leases
                .acquire(&other, LeaseHolder::new(2, "b", at(5)))
                .is_ok()
        );
    }

    #[test]
    fn an_abandoned_lease_is_taken_over_only_after_its_expiry() {
        let leases = MemoryLeases::default();
        let dead = leases
            .acquire(&run(), LeaseHolder::new(1, "a", at(0)).expiring_at(at(30)))
            .unwrap();
        MemoryLeases::abandon(dead.lease);
        assert!(matches!(
            leases.acquire(&run(), LeaseHolder::new(2, "b", at(29))),
            Err(LeaseError::Held { .. })
        ));
        let taken = leases
            .acquire(&run(), LeaseHolder::new(2, "b", at(30)))
            .unwrap();
        assert_eq!(taken.taken_over.map(|h| h.pid), Some(1));
        assert_eq!(leases.holder(&run()).map(|h| h.pid), Some(2));
    }

    #[test]
    fn a_lease_taken_over_is_lost_to_its_old_holder() {
        let leases = MemoryLeases::default();
        let mut slow = leases
            .acquire(&run(), LeaseHolder::new(1, "a", at(0)).expiring_at(at(10)))
            .unwrap()
            .lease;
        let fresh = leases
            .acquire(&run(), LeaseHolder::new(2, "b", at(11)))
            .unwrap();
        assert!(matches!(slow.renew(at(40)), Err(LeaseError::Lost { .. })));
        // The old holder's drop leaves the new holder's lease alone.
        drop(slow);
        assert_eq!(leases.holder(&run()).map(|h| h.pid), Some(2));
        drop(fresh);
        assert!(leases.holder(&run()).is_none());
    }

    #[test]
    fn renewing_moves_the_expiry() {
        let leases = MemoryLeases::default();
        let mut held = leases
            .acquire(&run(), LeaseHolder::new(1, "a", at(0)).expiring_at(at(10)))
            .unwrap()
            .lease;
        held.renew(at(100)).unwrap();
        assert!(matches!(
            leases.acquire(&run(), LeaseHolder::new(2, "b", at(50))),
            Err(LeaseError::Held { .. })
        ));
        assert_eq!(held.holder().expires_at, Some(at(100)));
    }
}
