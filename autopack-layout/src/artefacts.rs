//! Writing a run's readable artefacts into the layout: the renderings of
//! [`crate::render`], each written atomically.
//!
//! [`write_run_artefacts`] writes every summary of a run (the end of a run, a resume's
//! repair); [`write_selected_artefacts`] writes the run summary and only the tier and
//! phase summaries named (a checkpoint that knows what changed since the last one);
//! [`write_incident_pack`] writes the incident pack alone. All of them write under the run
//! summary's lock, so two writers of the same run do not interleave, and they write the
//! files in batches ([`fsio::write_batch_atomic`]): each file is atomic, the files of a
//! batch are fsynced together, and a summary is renamed into place only after the files
//! it links to.

use std::path::PathBuf;

use autopack_core::ids::RunId;
use autopack_core::record::RunRecord;

use crate::error::{LayoutError, Result};
use crate::fsio::{self, FileLock};
use crate::paths::RunsRoot;
use crate::render;

/// The files a writer of this module wrote, in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WrittenArtefacts {
    /// Every file written.
    pub files: Vec<PathBuf>,
    /// The incident pack's JSON file, when the run ended `DONE_FAILED_*`.
    pub incident: Option<PathBuf>,
}

/// The tier and phase summaries [`write_selected_artefacts`] writes, by position in the
/// record: `tiers` are indices in [`RunRecord::tiers`], `phases` pairs of (tier index,
/// index in that tier's `phases`). Order and duplicates do not matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Tiers whose summary to write.
    pub tiers: Vec<usize>,
    /// Phases whose summary to write; their tiers' summaries (which list them) are
    /// written too.
    pub phases: Vec<(usize, usize)>,
}

/// How many files one batch of [`write_run_artefacts`] holds: each batch costs three
/// sequential fsync rounds, and renders its files just before writing them.
const BATCH: usize = 64;

/// One file of a run's artefacts, rendered when its batch is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    IncidentJson,
    IncidentMarkdown,
    Phase(usize, usize),
    Tier(usize),
    RunSummary,
}

/// Renders `run` and writes `run_summary.md`, one summary per tier and per phase, and —
/// when the run ended `DONE_FAILED_*` — the incident pack (`incident/incident.json` and
/// `incident/INCIDENT.md`). Each file is written atomically; the whole set is written
/// under the run summary's lock, so two writers of the same run do not interleave.
///
/// Phase and tier summaries are written before the run summary that links to them, and
/// the incident pack before both, so a reader that sees a summary sees what it links to.
/// The files are written in batches of 64 (fsynced together), rendered batch by batch.
///
/// # Errors
/// The first [`crate::LayoutError`] met; files written before it stay written.
pub fn write_run_artefacts(root: &RunsRoot, run: &RunRecord) -> Result<WrittenArtefacts> {
    let _lock = FileLock::acquire(&root.run_summary(&run.run_id))?;
    let mut items = incident_items(run);
    for (t, tier) in run.tiers.iter().enumerate() {
        items.extend((0..tier.phases.len()).map(|p| Item::Phase(t, p)));
    }
    items.extend((0..run.tiers.len()).map(Item::Tier));
    items.push(Item::RunSummary);
    write_items(root, run, &items)
}

/// Writes the run summary, the incident pack when the run ended `DONE_FAILED_*`, and the
/// summaries of the tiers and phases `selection` names (and of the tiers of those
/// phases): what a checkpoint writes when it knows that nothing else changed since the
/// previous one. Given the same record, each file written is byte for byte what
/// [`write_run_artefacts`] writes; its cost depends on what is selected, not on the size
/// of the run (but for the run and tier summaries' phase counts, see
/// [`render::SUMMARY_PHASE_ROWS`]).
///
/// # Errors
/// [`LayoutError::Invalid`] naming the run summary when a position is not in `run`
/// (nothing is written then); otherwise as [`write_run_artefacts`].
pub fn write_selected_artefacts(
    root: &RunsRoot,
    run: &RunRecord,
    selection: &Selection,
) -> Result<WrittenArtefacts> {
    let summary = root.run_summary(&run.run_id);
    let mut phases = selection.phases.clone();
    phases.sort_unstable();
    phases.dedup();
    let mut tiers = selection.tiers.clone();
    tiers.extend(phases.iter().map(|&(t, _)| t));
    tiers.sort_unstable();
    tiers.dedup();
    for &(t, p) in &phases {
        let known = run.tiers.get(t).is_some_and(|tier| p < tier.phases.len());
        if !known {
            return Err(LayoutError::Invalid {
                path: summary,
                message: format!("no phase at position {p} of tier position {t} in the run"),
            });
        }
    }
    if let Some(&t) = tiers.iter().find(|&&t| t >= run.tiers.len()) {
        return Err(LayoutError::Invalid {
            path: summary,
            message: format!(
                "no tier at position {t} (the run has {} tiers)",
                run.tiers.len()
            ),
        });
    }
    let _lock = FileLock::acquire(&summary)?;
    let mut items = incident_items(run);
    items.extend(phases.iter().map(|&(t, p)| Item::Phase(t, p)));
    items.extend(tiers.iter().map(|&t| Item::Tier(t)));
    items.push(Item::RunSummary);
    write_items(root, run, &items)
}

/// Writes the incident pack of `run` (`incident/incident.json`, then
/// `incident/INCIDENT.md`) under the run summary's lock; nothing when the run did not end
/// `DONE_FAILED_*`.
///
/// # Errors
/// As [`write_run_artefacts`].
pub fn write_incident_pack(root: &RunsRoot, run: &RunRecord) -> Result<WrittenArtefacts> {
    let items = incident_items(run);
    if items.is_empty() {
        return Ok(WrittenArtefacts::default());
    }
    let _lock = FileLock::acquire(&root.run_summary(&run.run_id))?;
    write_items(root, run, &items)
}

fn incident_items(run: &RunRecord) -> Vec<Item> {
    if run.state.failure().is_some() {
        vec![Item::IncidentJson, Item::IncidentMarkdown]
    } else {
        Vec::new()
    }
}

/// Renders and writes `items` in order, in batches; the caller holds the lock.
fn write_items(root: &RunsRoot, run: &RunRecord, items: &[Item]) -> Result<WrittenArtefacts> {
    let mut written = WrittenArtefacts::default();
    let incident = if items.contains(&Item::IncidentJson) {
        render::incident(run)
    } else {
        None
    };
    for batch in items.chunks(BATCH) {
        let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::with_capacity(batch.len());
        for &item in batch {
            if let Some(file) = render_item(root, run, incident.as_ref(), item) {
                files.push(file);
            }
        }
        let Some((last_path, last_bytes)) = files.pop() else {
            continue;
        };
        fsio::write_batch_atomic(&files, (&last_path, &last_bytes), None)?;
        written
            .files
            .extend(files.into_iter().map(|(path, _)| path));
        written.files.push(last_path);
    }
    if incident.is_some() {
        written.incident = Some(root.incident_json(&run.run_id));
    }
    Ok(written)
}

fn render_item(
    root: &RunsRoot,
    run: &RunRecord,
    incident: Option<&render::Incident>,
    item: Item,
) -> Option<(PathBuf, Vec<u8>)> {
    let run_id = &run.run_id;
    Some(match item {
        Item::IncidentJson => (
            root.incident_json(run_id),
            render::incident_json(incident?).into_bytes(),
        ),
        Item::IncidentMarkdown => (
            root.incident_markdown(run_id),
            render::incident_markdown(incident?).into_bytes(),
        ),
        Item::Phase(t, p) => {
            let phase = run.tiers.get(t)?.phases.get(p)?;
            (
                root.phase_summary(run_id, phase.phase_index, &phase.phase_id),
                render::phase_summary(run, phase).into_bytes(),
            )
        }
        Item::Tier(t) => {
            let tier = run.tiers.get(t)?;
            (
                root.tier_summary(run_id, tier.tier_index, &tier.tier_id, &tier.name),
                render::tier_summary(run, tier).into_bytes(),
            )
        }
        Item::RunSummary => (
            root.run_summary(run_id),
            render::run_summary(run).into_bytes(),
        ),
    })
}

/// Reads a run's incident pack back (`None` when the run has none).
///
/// # Errors
/// [`crate::LayoutError::Json`] naming the file, line and column when it is corrupt.
pub fn read_incident(root: &RunsRoot, run_id: &RunId) -> Result<Option<render::Incident>> {
    fsio::read_json(&root.incident_json(run_id))
}
