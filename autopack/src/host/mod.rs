//! Ready-made host adapters for the [`crate::driver`]: the governed apply path, CI in the
//! run's CI workspace and the host tripwire on git ([`GitApplier`], [`GitVerifier`],
//! [`GitTripwire`]), agents in private workspaces ([`InWorkspace`]), agents that are
//! external commands, plain or a preset for a real agent CLI ([`CommandAgent`],
//! [`AgentPreset`]), an Auditor for hosts without one ([`EscalatingAuditor`]), artefacts in `.autonomous_runs/` ([`FsArtefacts`]; over a ledger in PostgreSQL,
//! `PgArtefacts`, feature `postgres`), and the one patch
//! gate every patch takes ([`PatchGate`]; [`check_patch`] runs it on a commit, writing
//! nothing).

mod command;
mod escalating;
mod files;
#[cfg(feature = "git")]
mod git;
#[cfg(feature = "git")]
mod patch_gate;
#[cfg(feature = "postgres")]
mod postgres;
mod preset;
#[cfg(feature = "git")]
mod workspace;

pub use command::{AGENT_ENV, CommandAgent, DEFAULT_AGENT_TIMEOUT, DEFAULT_MAX_OUTPUT};
pub use escalating::EscalatingAuditor;
pub use files::{FsArtefacts, LayoutArtefacts, ProjectLedger};
#[cfg(feature = "git")]
pub use git::{GitApplier, GitTripwire, GitVerifier};
#[cfg(feature = "git")]
pub use patch_gate::{PatchCheckError, PatchGate, PatchVerdict, Refusal, check_patch};
#[cfg(feature = "postgres")]
pub use postgres::{PgArtefacts, PgProjectLedger};
pub use preset::{
    AgentPreset, AgentReport, AgentRole, Invocation, MAX_PROMPT_BYTES, PresetError, StdinUse,
    UnknownPreset, auditor_prompt, builder_prompt, result_json_in,
};
#[cfg(feature = "git")]
pub use workspace::InWorkspace;
