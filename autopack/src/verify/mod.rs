//! Runs anyone can verify: a run's journal re-derived without trusting stored views
//! ([`RecordedJournal`]), the promotion attestation built from it ([`attestation`]), and
//! the result of checking a run against it ([`Verification`]).
//!
//! The checks over a repository (`autopack verify`) are
//! `runner::verify_run` (feature `git`); what is here is pure.
//!
//! ```
//! use autopack::verify::Verification;
//! use autopack_core::ids::RunId;
//!
//! let mut v = Verification::new(RunId::new("r1").unwrap());
//! assert!(v.is_ok());
//! v.mismatch("commit 1234", "is on the branch but the journal does not know it");
//! assert!(!v.is_ok());
//! assert!(v.render_text().contains("MISMATCH commit 1234"));
//! ```

pub mod attestation;
mod recorded;

pub use recorded::{AppliedPatch, RecordedJournal, RecordedSnapshot};

use autopack_core::ids::RunId;
use autopack_core::journal::chain::Digest;
use autopack_core::lifecycle::RunState;
use serde::Serialize;

/// One thing that does not match the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// What: a file, a journal entry, a commit, a tag, the attestation.
    pub subject: String,
    /// How it differs.
    pub problem: String,
}

/// What verifying a run found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// The run.
    pub run_id: RunId,
    /// Journal entries followed.
    pub entries: usize,
    /// The hash of the last of them.
    pub head: Option<Digest>,
    /// The state the journal leaves the run in.
    pub final_state: Option<RunState>,
    /// What was checked, in order.
    pub checked: Vec<String>,
    /// Everything that did not match.
    pub mismatches: Vec<Mismatch>,
}

impl Verification {
    /// Nothing checked yet.
    pub fn new(run_id: RunId) -> Verification {
        Verification {
            run_id,
            entries: 0,
            head: None,
            final_state: None,
            checked: Vec::new(),
            mismatches: Vec::new(),
        }
    }

    /// Whether everything matched.
    pub fn is_ok(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// Notes a mismatch.
    pub fn mismatch(&mut self, subject: impl Into<String>, problem: impl Into<String>) {
        self.mismatches.push(Mismatch {
            subject: subject.into(),
            problem: problem.into(),
        });
    }

    /// Notes a check made.
    pub fn checked(&mut self, what: String) {
        self.checked.push(what);
    }

    /// The result as lines a person reads: the checks, then each mismatch.
    pub fn render_text(&self) -> String {
        let mut out = format!(
            "run {}: {} journal entries, head {}, state {}\n",
            self.run_id,
            self.entries,
            self.head.map_or_else(|| "none".to_owned(), |h| h.to_hex()),
            self.final_state
                .map_or_else(|| "none".to_owned(), |s| s.to_string()),
        );
        for check in &self.checked {
            out.push_str(&format!("checked {check}\n"));
        }
        for m in &self.mismatches {
            out.push_str(&format!("MISMATCH {}: {}\n", m.subject, m.problem));
        }
        out.push_str(if self.is_ok() {
            "verified: everything matches the journal\n"
        } else {
            "NOT verified\n"
        });
        out
    }
}
