//! Pure rendering of a [`RunRecord`](autopack_core::record::RunRecord): run, tier and
//! phase summaries (Markdown a person reads after the run) and the incident pack of a
//! failed run.
//!
//! Every function here is a pure function of its arguments (no clock, no filesystem), so
//! the same record always renders to the same bytes; [`crate::artefacts`] writes the
//! results atomically. Timestamps are written as UTC RFC 3339; numbers with thousands
//! separators; human names are escaped so they cannot break a Markdown table.
//!
//! What each summary holds:
//! - `run_summary.md`: state, profile, scope, strategy version, timings, the failure and
//!   its reason, run budgets used against caps (tokens, phases, minutes, distinct minor
//!   issues) and CI runs, debt status and unresolved majors, a table of tiers (state,
//!   cleanliness, usage, distinct issue counts, link to the tier summary), a table of
//!   phases, and the state history with timestamps.
//! - tier summaries: state, cleanliness, timings, tier budgets used against caps, breaches,
//!   the blocked reason, the tier's phases, the state history.
//! - in both, a table of more than [`SUMMARY_PHASE_ROWS`] phases becomes their counts by
//!   state and the phases neither complete nor queued (in progress, failed, skipped; the
//!   first [`SUMMARY_PHASE_ROWS`]), each linking to its phase summary: the size of a
//!   summary, and so the cost of a checkpoint, stays bounded in a 100,000-phase run;
//!   likewise a state history of more than [`SUMMARY_HISTORY_ROWS`] entries (the run
//!   enters several states per phase) shows its first [`HISTORY_HEAD`] and last
//!   [`HISTORY_TAIL`] entries.
//! - phase summaries: state, category, complexity, builder mode, commit and snapshot tag,
//!   failure reason, attempts and CI runs against their caps, tokens against the incident
//!   cap, distinct issue counts, every attempt with its reason, every CI run, the state
//!   history.
//! - the incident pack ([`Incident`], for runs that ended `DONE_FAILED_*`): the failure,
//!   the failing tier and phase, run usage against caps, the last attempts and their
//!   reasons, CI runs, every tier's state and breaches, and state histories; as JSON
//!   ([`incident_json`]) and as Markdown ([`incident_markdown`]).
//!
//! The module is split along its concepts: [`run_summary`] (`run.rs`), [`tier_summary`]
//! and [`phase_summary`] (`tier.rs`, `phase.rs`), the incident pack (`incident.rs`), and
//! the tables and cell formatting they share (`pieces.rs`).

mod incident;
mod phase;
mod pieces;
mod run;
mod tier;

pub use incident::{
    INCIDENT_LAST_ATTEMPTS, Incident, IncidentPhase, IncidentTier, IncidentTierLine, incident,
    incident_json, incident_markdown,
};
pub use phase::phase_summary;
pub use pieces::{HISTORY_HEAD, HISTORY_TAIL, SUMMARY_HISTORY_ROWS, SUMMARY_PHASE_ROWS};
pub use run::run_summary;
pub use tier::tier_summary;
