//! Path rules of the `.autonomous_runs/` layout (SPEC §10), as pure functions.
//!
//! Nothing here touches the filesystem: a [`RunsRoot`] is a directory name, and every
//! method computes a path from validated ids ([`RunId`], [`PhaseId`], [`ProjectId`], ...).
//! Ids cannot hold `/`, `\`, `..`, a leading `.` or control characters (see
//! [`autopack_core::ids`]), so no computed path can leave the root.
//!
//! ```text
//! .autonomous_runs/
//!   project_ruleset_{project_id}.json                (latest; history in rulesets/)
//!   project_issue_backlog.json
//!   project_issue_journal.jsonl                      (the issue store's event journal)
//!   project_issue_checkpoint.json                    (the issue store's checkpoint manifest)
//!   {run_id}/
//!     run_summary.md
//!     journal.jsonl                                  (the Supervisor's input journal)
//!     project_implementation_strategy_v{N}.json
//!     run_issue_index.json
//!     tiers/tier_{idx:02}_{tier file stem}.md
//!     phases/phase_{idx:02}_{phase_id}.md
//!     issues/phase_{idx:02}_{phase_id}_issues.json
//!     incident/incident.json, incident/INCIDENT.md
//! ```
//!
//! # Tier file names
//! Decision: `tier_{idx:02}_{stem}.md`, where the stem is derived from the tier's human
//! name by [`tier_file_stem`]:
//! - a name that is already safe (1 to 64 bytes of ASCII letters, digits, `-` and `_`) is
//!   used as it is: `tier_01_Foundations.md`;
//! - any other name (spaces, unicode, punctuation, too long, empty) is sanitised (each run
//!   of other characters becomes one `_`, trimmed, at most 48 bytes; the tier id when
//!   nothing is left) and followed by `.` and 8 hex digits of a stable hash (FNV-1a, 64
//!   bits, folded) of the *original* name: `Data model (v2)` gives
//!   `tier_01_Data_model_v2.{8 hex digits}.md`.
//!
//! The two forms cannot collide (only the hashed form holds a `.`), and two names that
//! sanitise alike get different hashes; within a run the index alone already tells tiers
//! apart. The hash is computed here, not by `std`'s hasher, so it is stable across Rust
//! versions.
//!
//! # Legacy positions
//! Readers also accept the first implementation's positions: the run issue index under
//! `{run_id}/issues/run_issue_index.json` and the backlog one level above
//! `.autonomous_runs/`. [`RunsRoot::run_issue_index_candidates`] and
//! [`RunsRoot::backlog_candidates`] list the canonical path first. Writers always use the
//! canonical position.

use std::path::{Path, PathBuf};

use autopack_core::ids::{PhaseId, ProjectId, RunId, TierId};

/// File name of the project backlog.
pub const BACKLOG_FILE: &str = "project_issue_backlog.json";
/// File name of a run's summary.
pub const RUN_SUMMARY_FILE: &str = "run_summary.md";
/// File name of a run's issue index.
pub const RUN_ISSUE_INDEX_FILE: &str = "run_issue_index.json";
/// File name of a run's Supervisor journal.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// File name of the machine-readable incident inside `incident/`.
pub const INCIDENT_JSON_FILE: &str = "incident.json";
/// File name of the readable incident summary inside `incident/`.
pub const INCIDENT_MD_FILE: &str = "INCIDENT.md";
/// The conventional name of the root folder.
pub const DEFAULT_ROOT_NAME: &str = ".autonomous_runs";

/// Longest safe tier name used verbatim.
const MAX_VERBATIM_NAME: usize = 64;
/// Longest sanitised prefix before the hash.
const MAX_SANITISED_NAME: usize = 48;

/// The `.autonomous_runs/` folder, and every path of the layout below it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunsRoot {
    dir: PathBuf,
}

impl RunsRoot {
    /// The layout rooted at `dir` (conventionally a `.autonomous_runs` folder).
    pub fn new(dir: impl Into<PathBuf>) -> RunsRoot {
        RunsRoot { dir: dir.into() }
    }

    /// The root folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `project_ruleset_{project_id}.json`.
    pub fn ruleset(&self, project: &ProjectId) -> PathBuf {
        self.dir.join(format!("project_ruleset_{project}.json"))
    }

    /// `project_issue_backlog.json` (canonical position).
    pub fn backlog(&self) -> PathBuf {
        self.dir.join(BACKLOG_FILE)
    }

    /// Where a backlog is looked for, canonical first, then the first implementation's
    /// position one level above the root.
    pub fn backlog_candidates(&self) -> Vec<PathBuf> {
        let mut out = vec![self.backlog()];
        if let Some(parent) = self.dir.parent() {
            out.push(parent.join(BACKLOG_FILE));
        }
        out
    }

    /// `{run_id}/`.
    pub fn run_dir(&self, run: &RunId) -> PathBuf {
        self.dir.join(run.as_str())
    }

    /// `{run_id}/run_summary.md`.
    pub fn run_summary(&self, run: &RunId) -> PathBuf {
        self.run_dir(run).join(RUN_SUMMARY_FILE)
    }

    /// `{run_id}/journal.jsonl`: the Supervisor's input journal.
    pub fn journal(&self, run: &RunId) -> PathBuf {
        self.run_dir(run).join(JOURNAL_FILE)
    }

    /// `{run_id}/project_implementation_strategy_v{N}.json`.
    pub fn strategy(&self, run: &RunId, version: u32) -> PathBuf {
        self.run_dir(run).join(strategy_file_name(version))
    }

    /// `{run_id}/run_issue_index.json` (canonical position).
    pub fn run_issue_index(&self, run: &RunId) -> PathBuf {
        self.run_dir(run).join(RUN_ISSUE_INDEX_FILE)
    }

    /// Where a run issue index is looked for: canonical first, then the first
    /// implementation's `{run_id}/issues/run_issue_index.json`.
    pub fn run_issue_index_candidates(&self, run: &RunId) -> Vec<PathBuf> {
        vec![
            self.run_issue_index(run),
            self.issues_dir(run).join(RUN_ISSUE_INDEX_FILE),
        ]
    }

    /// `{run_id}/tiers/`.
    pub fn tiers_dir(&self, run: &RunId) -> PathBuf {
        self.run_dir(run).join("tiers")
    }

    /// `{run_id}/tiers/tier_{idx:02}_{stem}.md`; see [`tier_file_stem`].
    pub fn tier_summary(&self, run: &RunId, tier_index: u32, tier: &TierId, name: &str) -> PathBuf {
        self.tiers_dir(run)
            .join(tier_file_name(tier_index, tier, name))
    }

    /// `{run_id}/phases/`.
    pub fn phases_dir(&self, run: &RunId) -> PathBuf {
        self.run_dir(run).join("phases")
    }

    /// `{run_id}/phases/phase_{idx:02}_{phase_id}.md`.
    pub fn phase_summary(&self, run: &RunId, phase_index: u32, phase: &PhaseId) -> PathBuf {
        self.phases_dir(run)
            .join(format!("phase_{phase_index:02}_{phase}.md"))
    }

    /// `{run_id}/issues/`.
    pub fn issues_dir(&self, run: &RunId) -> PathBuf {
        self.run_dir(run).join("issues")
    }

    /// `{run_id}/issues/phase_{idx:02}_{phase_id}_issues.json`.
    pub fn phase_issues(&self, run: &RunId, phase_index: u32, phase: &PhaseId) -> PathBuf {
        self.issues_dir(run)
            .join(format!("phase_{phase_index:02}_{phase}_issues.json"))
    }

    /// `{run_id}/incident/`.
    pub fn incident_dir(&self, run: &RunId) -> PathBuf {
        self.run_dir(run).join("incident")
    }

    /// `{run_id}/incident/incident.json`.
    pub fn incident_json(&self, run: &RunId) -> PathBuf {
        self.incident_dir(run).join(INCIDENT_JSON_FILE)
    }

    /// `{run_id}/incident/INCIDENT.md`.
    pub fn incident_markdown(&self, run: &RunId) -> PathBuf {
        self.incident_dir(run).join(INCIDENT_MD_FILE)
    }
}

/// `project_implementation_strategy_v{N}.json`.
pub fn strategy_file_name(version: u32) -> String {
    format!("project_implementation_strategy_v{version}.json")
}

/// Reads the version out of a `project_implementation_strategy_v{N}.json` file name.
pub fn parse_strategy_file_name(name: &str) -> Option<u32> {
    let digits = name
        .strip_prefix("project_implementation_strategy_v")?
        .strip_suffix(".json")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

/// Reads the project id out of a `project_ruleset_{project_id}.json` file name.
pub fn parse_ruleset_file_name(name: &str) -> Option<ProjectId> {
    let id = name
        .strip_prefix("project_ruleset_")?
        .strip_suffix(".json")?;
    ProjectId::new(id).ok()
}

/// `tier_{idx:02}_{stem}.md`.
pub fn tier_file_name(tier_index: u32, tier: &TierId, name: &str) -> String {
    format!("tier_{tier_index:02}_{}.md", tier_file_stem(tier, name))
}

/// The file stem a tier's human `name` gives (the rules are in the [module docs](self)).
///
/// ```
/// use autopack_core::ids::TierId;
/// use autopack_layout::paths::tier_file_stem;
///
/// let t = TierId::new("t1").unwrap();
/// assert_eq!(tier_file_stem(&t, "Foundations"), "Foundations");
/// let a = tier_file_stem(&t, "Data model");
/// let b = tier_file_stem(&t, "Data/model");
/// assert!(a.starts_with("Data_model.") && b.starts_with("Data_model."));
/// assert_ne!(a, b);
/// assert!(tier_file_stem(&t, "データ").starts_with("t1."));
/// ```
pub fn tier_file_stem(tier: &TierId, name: &str) -> String {
    let verbatim = !name.is_empty()
        && name.len() <= MAX_VERBATIM_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if verbatim {
        return name.to_owned();
    }
    let mut sanitised = String::with_capacity(name.len().min(MAX_SANITISED_NAME));
    let mut pending_gap = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            if pending_gap && !sanitised.is_empty() {
                sanitised.push('_');
            }
            pending_gap = false;
            if sanitised.len() >= MAX_SANITISED_NAME {
                break;
            }
            sanitised.push(c);
        } else {
            pending_gap = true;
        }
    }
    let sanitised = sanitised.trim_matches('_');
    let prefix = if sanitised.is_empty() {
        tier.as_str()
    } else {
        sanitised
    };
    format!("{prefix}.{:08x}", short_hash(name))
}

/// FNV-1a over the bytes, 64 bits folded to 32: stable across platforms and versions.
fn short_hash(text: &str) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    ((hash >> 32) ^ (hash & 0xffff_ffff)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Component;

    fn run() -> RunId {
        RunId::new("run-1").unwrap()
    }

    #[test]
    fn layout_matches_the_spec() {
        let root = RunsRoot::new(".autonomous_runs");
        let run = run();
        let phase = PhaseId::new("p-3").unwrap();
        let tier = TierId::new("t1").unwrap();
        let project = ProjectId::new("Acme").unwrap();
        let cases: Vec<(PathBuf, &str)> = vec![
            (
                root.ruleset(&project),
                ".autonomous_runs/project_ruleset_Acme.json",
            ),
            (
                root.backlog(),
                ".autonomous_runs/project_issue_backlog.json",
            ),
            (
                root.run_summary(&run),
                ".autonomous_runs/run-1/run_summary.md",
            ),
            (root.journal(&run), ".autonomous_runs/run-1/journal.jsonl"),
            (
                root.strategy(&run, 3),
                ".autonomous_runs/run-1/project_implementation_strategy_v3.json",
            ),
            (
                root.run_issue_index(&run),
                ".autonomous_runs/run-1/run_issue_index.json",
            ),
            (
                root.tier_summary(&run, 1, &tier, "Foundations"),
                ".autonomous_runs/run-1/tiers/tier_01_Foundations.md",
            ),
            (
                root.phase_summary(&run, 7, &phase),
                ".autonomous_runs/run-1/phases/phase_07_p-3.md",
            ),
            (
                root.phase_issues(&run, 12, &phase),
                ".autonomous_runs/run-1/issues/phase_12_p-3_issues.json",
            ),
            (
                root.incident_json(&run),
                ".autonomous_runs/run-1/incident/incident.json",
            ),
            (
                root.incident_markdown(&run),
                ".autonomous_runs/run-1/incident/INCIDENT.md",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, Path::new(want));
        }
    }

    #[test]
    fn legacy_positions_come_after_the_canonical_ones() {
        let root = RunsRoot::new("/work/repo/.autonomous_runs");
        assert_eq!(
            root.backlog_candidates(),
            vec![
                PathBuf::from("/work/repo/.autonomous_runs/project_issue_backlog.json"),
                PathBuf::from("/work/repo/project_issue_backlog.json"),
            ]
        );
        assert_eq!(
            root.run_issue_index_candidates(&run())[1],
            PathBuf::from("/work/repo/.autonomous_runs/run-1/issues/run_issue_index.json")
        );
    }

    #[test]
    fn file_name_parsers_invert_the_builders() {
        assert_eq!(parse_strategy_file_name(&strategy_file_name(12)), Some(12));
        assert_eq!(
            parse_strategy_file_name("project_implementation_strategy_v.json"),
            None
        );
        assert_eq!(
            parse_strategy_file_name("project_implementation_strategy_v01.json"),
            None
        );
        assert_eq!(
            parse_strategy_file_name("project_implementation_strategy_v1.json.tmp"),
            None
        );
        assert_eq!(
            parse_ruleset_file_name("project_ruleset_Acme.json")
                .unwrap()
                .as_str(),
            "Acme"
        );
        assert_eq!(parse_ruleset_file_name("project_ruleset_..json"), None);
    }

    #[test]
    fn tier_stems_are_safe_deterministic_and_distinct() {
        let t = TierId::new("t1").unwrap();
        let names = [
            "Foundations",
            "Data model",
            "Data/model",
            "Data  model",
            "Data_model",
            "data model",
            "../../etc/passwd",
            "..",
            "",
            " ",
            "日本語",
            "日本",
            "Ünïcödé tier",
            "a\nb",
            "a\0b",
            "CON",
            &"x".repeat(300),
            &"x".repeat(301),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for name in names {
            let stem = tier_file_stem(&t, name);
            assert_eq!(stem, tier_file_stem(&t, name), "deterministic");
            assert!(seen.insert(stem.clone()), "{name:?} collides as {stem:?}");
            assert!(stem.len() <= 64, "{stem}");
            assert!(
                stem.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "{stem}"
            );
            assert!(!stem.starts_with('.') && !stem.contains(".."), "{stem}");
            let file = tier_file_name(3, &t, name);
            let path = RunsRoot::new("root").tier_summary(&run(), 3, &t, name);
            assert_eq!(path, Path::new("root/run-1/tiers").join(&file));
        }
        // A known value, so that a change of hash is a deliberate act.
        assert_eq!(
            tier_file_stem(&t, "Data model"),
            format!("Data_model.{:08x}", short_hash("Data model"))
        );
    }

    #[test]
    fn nothing_escapes_the_root() {
        // Hostile ids cannot be constructed at all...
        for bad in ["..", "../x", "a/b", "/etc", ".hidden", "a\\b", "x\0", "C:"] {
            assert!(RunId::new(bad).is_err(), "{bad}");
            assert!(PhaseId::new(bad).is_err(), "{bad}");
            assert!(ProjectId::new(bad).is_err(), "{bad}");
        }
        // ...and every path built from valid ids (and hostile names) stays below the root.
        let root = RunsRoot::new("/r/.autonomous_runs");
        let run = RunId::new("a.b-c_d").unwrap();
        let phase = PhaseId::new("p.1").unwrap();
        let tier = TierId::new("t.1").unwrap();
        let paths = [
            root.run_summary(&run),
            root.phase_summary(&run, 0, &phase),
            root.phase_issues(&run, 99, &phase),
            root.tier_summary(&run, 0, &tier, "../../../etc/passwd"),
            root.tier_summary(&run, 0, &tier, "/abs"),
            root.strategy(&run, u32::MAX),
            root.ruleset(&ProjectId::new("p").unwrap()),
        ];
        for path in paths {
            let rest = path.strip_prefix(root.dir()).unwrap();
            assert!(
                rest.components().all(|c| matches!(c, Component::Normal(_))),
                "{}",
                path.display()
            );
        }
    }
}
