//! # autopack-apply
//!
//! The governed apply path of SPEC §8 and the preflight gate of SPEC §9: integration
//! branches `autonomous/{run_id}` written through git2 without touching HEAD, the index or
//! the work tree; the patch policy; snapshot tags; CI worktrees; the preflight gate with
//! retries and flake detection; and promotion to a protected branch.
//!
//! This crate is not implemented yet (issue 6); it holds no public items so that nothing
//! pretends to work.
