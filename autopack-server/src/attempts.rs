//! The attempt a run waits for, and who may answer it: pure data over a clock reading.
//!
//! A live run offers at most one agent attempt at a time (the Supervisor waits for one
//! answer). A worker *claims* it and gets a lease: a random token and a deadline. Only
//! that lease answers it; a lease that runs out becomes a failed attempt (the session
//! turns [`Board::expire`] into one). An attempt nobody leased may be answered directly by
//! a principal allowed to (an operator, or any client of a server without tokens), which
//! is how the first implementation's clients post `builder_result`.
//!
//! ```
//! use autopack_server::attempts::{Board, Claimant, Proof};
//! # use autopack::core::message::BuilderRequest;
//! # let request: BuilderRequest = serde_json::from_value(serde_json::json!({
//! #   "run_id": "r1", "tier_id": "t1", "phase_id": "p1", "phase_index": 0, "name": "One",
//! #   "task_category": "feature", "complexity": "low", "attempt": 1, "max_attempts": 3,
//! #   "incident_token_cap": 1000})).unwrap();
//! use autopack::driver::AgentCall;
//! use chrono::{Duration, Utc};
//!
//! let now = Utc::now();
//! let mut board = Board::default();
//! board.offer("a1".into(), AgentCall::Builder(request), now);
//! let worker = Claimant::new("builder:w1");
//! let lease = board.claim(&worker, Duration::seconds(60), now).unwrap();
//! // A second worker gets nothing: the attempt is leased.
//! assert!(board.claim(&Claimant::new("builder:w2"), Duration::seconds(60), now).is_none());
//! // Only the lease answers it.
//! assert!(board.submit("a1", &Proof::Token("guess".into()), now).is_err());
//! assert!(board.submit("a1", &Proof::Token(lease.token.clone()), now).is_ok());
//! ```

use autopack::core::record::AttemptRole;
use autopack::driver::AgentCall;
use chrono::{DateTime, Duration, Utc};
use subtle::ConstantTimeEq;

/// A claimed attempt: the token that answers it and until when.
#[derive(Clone, PartialEq, Eq)]
pub struct Lease {
    /// The secret that answers the attempt (random, 128 bits, hex).
    pub token: String,
    /// Who holds it (a principal and worker name, for messages; never the token).
    pub holder: String,
    /// When it runs out.
    pub deadline: DateTime<Utc>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("token", &"<redacted>")
            .field("holder", &self.holder)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// The attempt on offer.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// The server's id of the attempt (unique across the server's life).
    pub id: String,
    /// The request.
    pub call: AgentCall,
    /// When it was offered.
    pub since: DateTime<Utc>,
    /// Its lease, once claimed.
    pub lease: Option<Lease>,
    /// Answered (or its lease ran out): it can be neither claimed nor answered again.
    pub closed: bool,
}

/// Who asks for an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimant {
    /// A name for messages (`builder:worker-7`).
    pub name: String,
    /// The roles whose attempts it may take.
    pub roles: Vec<AttemptRole>,
}

impl Claimant {
    /// A claimant of both roles.
    pub fn new(name: impl Into<String>) -> Claimant {
        Claimant {
            name: name.into(),
            roles: vec![AttemptRole::Builder, AttemptRole::Auditor],
        }
    }

    /// The same, taking only `role`'s attempts.
    #[must_use]
    pub fn only(mut self, role: AttemptRole) -> Claimant {
        self.roles = vec![role];
        self
    }
}

/// What entitles an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// The lease's token.
    Token(String),
    /// The principal that holds the lease (a token holder answering through the first
    /// implementation's endpoints, which carry no lease token).
    Holder(String),
    /// Answering an attempt nobody leased (operators; clients of a server without
    /// tokens). A leased attempt still needs its lease.
    Unleased,
}

/// Why an answer or claim was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No such attempt is on offer (answered already, or never offered here).
    #[error("attempt {id} is not awaited: {now}")]
    NotAwaited {
        /// The attempt named.
        id: String,
        /// What is awaited instead.
        now: String,
    },
    /// The attempt is leased and the proof is not its lease.
    #[error("attempt {id} is leased to {holder}; only its lease token answers it")]
    LeasedToOther {
        /// The attempt.
        id: String,
        /// Its holder.
        holder: String,
    },
    /// The proof is a holder or token, but the attempt was never leased.
    #[error("attempt {id} was not leased; lease it first (POST /workers/lease)")]
    NotLeased {
        /// The attempt.
        id: String,
    },
}

/// The attempt a run waits for.
#[derive(Debug, Clone, Default)]
pub struct Board {
    offer: Option<Offer>,
}

impl Board {
    /// The attempt on offer, answered or not.
    pub fn current(&self) -> Option<&Offer> {
        self.offer.as_ref()
    }

    /// The attempt on offer and still open.
    pub fn open(&self) -> Option<&Offer> {
        self.offer.as_ref().filter(|o| !o.closed)
    }

    /// Offers `call` under `id`. The same attempt offered again (the session publishes
    /// after every step) keeps its id and lease; returns whether it is new.
    pub fn offer(&mut self, id: String, call: AgentCall, now: DateTime<Utc>) -> bool {
        if let Some(o) = &self.offer
            && o.call == call
        {
            return false;
        }
        self.offer = Some(Offer {
            id,
            call,
            since: now,
            lease: None,
            closed: false,
        });
        true
    }

    /// Nothing is awaited any more (the run ended).
    pub fn clear(&mut self) {
        self.offer = None;
    }

    /// Leases the open attempt to `claimant` for `ttl`, when it takes that role and
    /// nobody holds it.
    pub fn claim(
        &mut self,
        claimant: &Claimant,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Option<Lease> {
        let offer = self.offer.as_mut().filter(|o| !o.closed)?;
        if offer.lease.is_some() || !claimant.roles.contains(&offer.call.role()) {
            return None;
        }
        let lease = Lease {
            token: new_token(),
            holder: claimant.name.clone(),
            deadline: now + ttl,
        };
        offer.lease = Some(lease.clone());
        Some(lease)
    }

    /// Extends the lease of attempt `id` to `now + ttl`.
    ///
    /// # Errors
    /// As [`Board::submit`], without closing anything.
    pub fn heartbeat(
        &mut self,
        id: &str,
        token: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, Refusal> {
        let offer = self.open_mut(id)?;
        match &mut offer.lease {
            Some(lease) if tokens_equal(&lease.token, token) && lease.deadline >= now => {
                lease.deadline = now + ttl;
                Ok(lease.deadline)
            }
            Some(lease) => Err(Refusal::LeasedToOther {
                id: id.to_owned(),
                holder: lease.holder.clone(),
            }),
            None => Err(Refusal::NotLeased { id: id.to_owned() }),
        }
    }

    /// Closes attempt `id` for an answer entitled by `proof`, and returns it.
    ///
    /// # Errors
    /// [`Refusal::NotAwaited`] when `id` is not the open attempt (or its lease ran out);
    /// [`Refusal::LeasedToOther`] when the proof is not its lease;
    /// [`Refusal::NotLeased`] for a token or holder proof of an attempt nobody leased.
    pub fn submit(
        &mut self,
        id: &str,
        proof: &Proof,
        now: DateTime<Utc>,
    ) -> Result<AgentCall, Refusal> {
        let offer = self.open_mut(id)?;
        let entitled = match (&offer.lease, proof) {
            (Some(lease), Proof::Token(token)) => tokens_equal(&lease.token, token),
            (Some(lease), Proof::Holder(holder)) => &lease.holder == holder,
            (Some(_), Proof::Unleased) => false,
            (None, Proof::Unleased) => true,
            (None, Proof::Token(_) | Proof::Holder(_)) => {
                return Err(Refusal::NotLeased { id: id.to_owned() });
            }
        };
        match &offer.lease {
            Some(lease) if !entitled => Err(Refusal::LeasedToOther {
                id: id.to_owned(),
                holder: lease.holder.clone(),
            }),
            Some(lease) if lease.deadline < now => Err(Refusal::NotAwaited {
                id: id.to_owned(),
                now: format!("its lease ran out at {}", lease.deadline.to_rfc3339()),
            }),
            _ => {
                offer.closed = true;
                Ok(offer.call.clone())
            }
        }
    }

    /// Opens attempt `id` again: its answer was refused after [`Board::submit`] closed it
    /// (the run moved on meanwhile, or the answer did not fit).
    pub fn reopen(&mut self, id: &str) {
        if let Some(o) = self.offer.as_mut().filter(|o| o.id == id) {
            o.closed = false;
        }
    }

    /// The open attempt whose lease ran out by `now`, closed: the session reports it as
    /// a failed attempt.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Option<(AgentCall, Lease)> {
        let offer = self.offer.as_mut().filter(|o| !o.closed)?;
        let lease = offer.lease.as_ref().filter(|l| l.deadline < now)?.clone();
        offer.closed = true;
        Some((offer.call.clone(), lease))
    }

    /// When the open attempt's lease runs out.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.open()?.lease.as_ref().map(|l| l.deadline)
    }

    fn open_mut(&mut self, id: &str) -> Result<&mut Offer, Refusal> {
        let now = match &self.offer {
            Some(o) if o.id == id && !o.closed => None,
            Some(o) if !o.closed => Some(format!(
                "the run waits for attempt {} ({} attempt {} of phase {})",
                o.id,
                crate::seed::role_word(o.call.role()),
                o.call.attempt(),
                o.call.phase_id()
            )),
            Some(o) if o.id == id => Some("it was answered already, or its lease ran out".into()),
            _ => Some("the run waits for no agent attempt".into()),
        };
        match now {
            None => Ok(self.offer.as_mut().expect("checked above")),
            Some(now) => Err(Refusal::NotAwaited {
                id: id.to_owned(),
                now,
            }),
        }
    }
}

/// Compares two secrets in time independent of where they differ.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// 128 random bits from the OS, hex.
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 16];
    // The OS's random source does not fail on Linux after boot; a zeroed token would still
    // be unique per attempt id, which is not a secret worth panicking over.
    let _ = getrandom::getrandom(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use autopack::core::message::BuilderRequest;
    use proptest::prelude::*;

    fn call(attempt: u32) -> AgentCall {
        let request: BuilderRequest = serde_json::from_value(serde_json::json!({
            "run_id": "r1", "tier_id": "t1", "phase_id": "p1", "phase_index": 0,
            "name": "One", "task_category": "feature", "complexity": "low",
            "attempt": attempt, "max_attempts": 3, "incident_token_cap": 1000
        }))
        .unwrap();
        AgentCall::Builder(request)
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn an_unleased_attempt_is_answered_directly_once() {
        let mut board = Board::default();
        board.offer("a1".into(), call(1), t(0));
        assert!(board.submit("a1", &Proof::Unleased, t(1)).is_ok());
        assert!(matches!(
            board.submit("a1", &Proof::Unleased, t(1)),
            Err(Refusal::NotAwaited { .. })
        ));
    }

    #[test]
    fn a_leased_attempt_needs_its_lease() {
        let mut board = Board::default();
        board.offer("a1".into(), call(1), t(0));
        let lease = board
            .claim(&Claimant::new("w1"), Duration::seconds(10), t(0))
            .unwrap();
        assert!(matches!(
            board.submit("a1", &Proof::Unleased, t(1)),
            Err(Refusal::LeasedToOther { .. })
        ));
        assert!(matches!(
            board.submit("a1", &Proof::Holder("w2".into()), t(1)),
            Err(Refusal::LeasedToOther { .. })
        ));
        assert!(
            board
                .submit("a1", &Proof::Holder("w1".into()), t(1))
                .is_ok()
        );
        let _ = lease;
    }

    #[test]
    fn a_lease_runs_out_into_an_expiry_and_answers_nothing_after() {
        let mut board = Board::default();
        board.offer("a1".into(), call(1), t(0));
        let lease = board
            .claim(&Claimant::new("w1"), Duration::seconds(10), t(0))
            .unwrap();
        assert_eq!(board.next_deadline(), Some(t(10)));
        assert!(board.expire(t(10)).is_none());
        assert!(
            board
                .heartbeat("a1", &lease.token, Duration::seconds(10), t(5))
                .is_ok()
        );
        assert!(board.expire(t(12)).is_none());
        let (expired, _) = board.expire(t(16)).unwrap();
        assert_eq!(expired, call(1));
        assert!(
            board
                .submit("a1", &Proof::Token(lease.token), t(16))
                .is_err()
        );
    }

    #[test]
    fn a_new_attempt_replaces_the_old_one_and_the_same_keeps_its_lease() {
        let mut board = Board::default();
        assert!(board.offer("a1".into(), call(1), t(0)));
        board.claim(&Claimant::new("w1"), Duration::seconds(10), t(0));
        assert!(!board.offer("a2".into(), call(1), t(1)));
        assert_eq!(board.current().unwrap().id, "a1");
        assert!(board.current().unwrap().lease.is_some());
        assert!(board.offer("a3".into(), call(2), t(2)));
        assert!(board.current().unwrap().lease.is_none());
    }

    #[test]
    fn a_claimant_takes_only_its_roles() {
        let mut board = Board::default();
        board.offer("a1".into(), call(1), t(0));
        let auditor = Claimant::new("a").only(AttemptRole::Auditor);
        assert!(board.claim(&auditor, Duration::seconds(1), t(0)).is_none());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Claim(u8),
        SubmitToken(u8),
        SubmitUnleased,
        Expire,
        Wait(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..4).prop_map(Op::Claim),
            (0u8..4).prop_map(Op::SubmitToken),
            Just(Op::SubmitUnleased),
            Just(Op::Expire),
            (0u8..20).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// However workers race, an attempt is answered or expired at most once, and only
        /// by its lease when it has one.
        #[test]
        fn an_attempt_closes_at_most_once(ops in proptest::collection::vec(op(), 1..40)) {
            let mut board = Board::default();
            board.offer("a1".into(), call(1), t(0));
            let mut now = 0i64;
            let mut tokens: Vec<Option<String>> = vec![None; 4];
            let mut closings = 0;
            for op in ops {
                match op {
                    Op::Claim(w) => {
                        if let Some(lease) = board.claim(&Claimant::new(format!("w{w}")), Duration::seconds(10), t(now)) {
                            prop_assert!(tokens.iter().all(Option::is_none), "claimed twice");
                            tokens[usize::from(w)] = Some(lease.token);
                        }
                    }
                    Op::SubmitToken(w) => {
                        let token = tokens[usize::from(w)].clone().unwrap_or_else(|| "x".into());
                        if board.submit("a1", &Proof::Token(token), t(now)).is_ok() {
                            prop_assert!(tokens[usize::from(w)].is_some());
                            closings += 1;
                        }
                    }
                    Op::SubmitUnleased => {
                        if board.submit("a1", &Proof::Unleased, t(now)).is_ok() {
                            prop_assert!(tokens.iter().all(Option::is_none));
                            closings += 1;
                        }
                    }
                    Op::Expire => {
                        if board.expire(t(now)).is_some() {
                            closings += 1;
                        }
                    }
                    Op::Wait(s) => now += i64::from(s),
                }
            }
            prop_assert!(closings <= 1);
        }
    }
}
