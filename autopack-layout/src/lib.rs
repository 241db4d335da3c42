//! # autopack-layout
//!
//! The `.autonomous_runs/` layout of SPEC §10: pure path rules, filesystem adapters for
//! every store (atomic writes, advisory locks, a crash-safe JSON Lines journal), Markdown
//! summaries and incident packs, and readers for the first implementation's files.
//!
//! This crate is not implemented yet (issue 5); it holds no public items so that nothing
//! pretends to work.
