//! JSON Schemas of the documents this crate reads and writes.
//!
//! The rendered schemas are checked in under `schemas/{name}.schema.json` at the workspace
//! root; a test compares them with [`core_schemas`] and fails when they are stale
//! (`AUTOPACK_BLESS=1 cargo test -p autopack-core --test schema_current` rewrites them).
//!
//! ```
//! let names: Vec<&str> = autopack_core::schema::core_schemas().iter().map(|(n, _)| *n).collect();
//! assert!(names.contains(&"plan"));
//! assert!(names.contains(&"builder_result"));
//! ```

use schemars::{Schema, schema_for};

use crate::message::{
    AuditorRequest, AuditorResult, BuilderRequest, BuilderResult, ProbeResult, SuggestedIssue,
};
use crate::plan::Plan;

/// Every schema of this crate, by file stem: `plan`, `builder_request`, `builder_result`,
/// `auditor_request`, `auditor_result`, `probe_result`, `suggested_issue`.
pub fn core_schemas() -> Vec<(&'static str, Schema)> {
    vec![
        ("plan", schema_for!(Plan)),
        ("builder_request", schema_for!(BuilderRequest)),
        ("builder_result", schema_for!(BuilderResult)),
        ("auditor_request", schema_for!(AuditorRequest)),
        ("auditor_result", schema_for!(AuditorResult)),
        ("probe_result", schema_for!(ProbeResult)),
        ("suggested_issue", schema_for!(SuggestedIssue)),
    ]
}
