//! Writing a run's readable artefacts into the layout: the renderings of
//! [`crate::render`], each written atomically.

use std::path::PathBuf;

use autopack_core::record::RunRecord;

use crate::error::Result;
use crate::fsio::{self, FileLock};
use crate::paths::RunsRoot;
use crate::render;

/// The files [`write_run_artefacts`] wrote, in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WrittenArtefacts {
    /// Every file written.
    pub files: Vec<PathBuf>,
    /// The incident pack's JSON file, when the run ended `DONE_FAILED_*`.
    pub incident: Option<PathBuf>,
}

/// Renders `run` and writes `run_summary.md`, one summary per tier and per phase, and —
/// when the run ended `DONE_FAILED_*` — the incident pack (`incident/incident.json` and
/// `incident/INCIDENT.md`). Each file is written atomically; the whole set is written
/// under the run summary's lock, so two writers of the same run do not interleave.
///
/// Phase and tier summaries are written before the run summary that links to them, and
/// the incident pack before both, so a reader that sees a summary sees what it links to.
///
/// # Errors
/// The first [`crate::LayoutError`] met; files written before it stay written.
pub fn write_run_artefacts(root: &RunsRoot, run: &RunRecord) -> Result<WrittenArtefacts> {
    let run_id = &run.run_id;
    let _lock = FileLock::acquire(&root.run_summary(run_id))?;
    let mut written = WrittenArtefacts::default();
    if let Some(incident) = render::incident(run) {
        let json = root.incident_json(run_id);
        fsio::write_atomic(&json, render::incident_json(&incident).as_bytes())?;
        let md = root.incident_markdown(run_id);
        fsio::write_atomic(&md, render::incident_markdown(&incident).as_bytes())?;
        written.files.push(json.clone());
        written.files.push(md);
        written.incident = Some(json);
    }
    for phase in run.phases() {
        let path = root.phase_summary(run_id, phase.phase_index, &phase.phase_id);
        fsio::write_atomic(&path, render::phase_summary(run, phase).as_bytes())?;
        written.files.push(path);
    }
    for tier in &run.tiers {
        let path = root.tier_summary(run_id, tier.tier_index, &tier.tier_id, &tier.name);
        fsio::write_atomic(&path, render::tier_summary(run, tier).as_bytes())?;
        written.files.push(path);
    }
    let path = root.run_summary(run_id);
    fsio::write_atomic(&path, render::run_summary(run).as_bytes())?;
    written.files.push(path);
    Ok(written)
}

/// Reads a run's incident pack back (`None` when the run has none).
///
/// # Errors
/// [`crate::LayoutError::Json`] naming the file, line and column when it is corrupt.
pub fn read_incident(
    root: &RunsRoot,
    run_id: &autopack_core::ids::RunId,
) -> Result<Option<render::Incident>> {
    fsio::read_json(&root.incident_json(run_id))
}
