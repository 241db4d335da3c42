//! # autopack-issues
//!
//! The three-level issue ledger of SPEC §4 (phase issue files, the run issue index and the
//! project backlog), with deduplication by issue key, aging by distinct runs and tiers,
//! severity upgrades and regressions, behind an `IssueStore` trait with an in-memory
//! implementation.
//!
//! This crate is not implemented yet (issue 3); it holds no public items so that nothing
//! pretends to work.
