//! Ready-made host adapters for the [`crate::driver`]: the governed apply path and the
//! preflight gate on git ([`GitApplier`], [`GitVerifier`]), agents that are external
//! commands ([`CommandAgent`]), and artefacts in `.autonomous_runs/` ([`FsArtefacts`]).

mod command;
mod files;
mod git;
mod preset;

pub use command::{CommandAgent, DEFAULT_AGENT_TIMEOUT, DEFAULT_MAX_OUTPUT};
pub use files::FsArtefacts;
pub use git::{GitApplier, GitVerifier};
pub use preset::{
    AgentPreset, AgentReport, AgentRole, Invocation, MAX_PROMPT_BYTES, PresetError, StdinUse,
    UnknownPreset, auditor_prompt, builder_prompt, result_json_in,
};
