//! The ledger: the three levels as state, recording, resolving, queries and views.

use std::collections::BTreeMap;

use autopack_core::ids::{IssueKey, PhaseId, ProjectId, RunId, TierId};
use autopack_core::vocabulary::{
    Complexity, DebtStatus, IssueCategory, IssueSource, IssueStatus, Severity, TaskCategory,
};
use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aging::{AgingThresholds, BacklogItem, BacklogView};
use crate::model::{
    BacklogEntry, IssueCounts, IssueRecord, PhaseIssueFile, ProjectBacklog, RunIssueEntry,
    RunIssueIndex, TierSighting,
};

/// The issue fields of one report (a Builder's suggested issue, an Auditor finding, a
/// flaky CI run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportedIssue {
    /// The stable key of the logical problem.
    pub issue_key: IssueKey,
    /// The reported severity.
    pub severity: Severity,
    /// Who reported it.
    pub source: IssueSource,
    /// The issue category.
    pub category: IssueCategory,
    /// Whether the failure was expected.
    #[serde(default)]
    pub expected_fail: bool,
    /// Evidence (test ids, log paths).
    #[serde(default)]
    pub evidence_refs: Vec<String>,
}

/// One issue seen in one phase: what [`Ledger::record`] takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueObservation {
    /// The run.
    pub run_id: RunId,
    /// The phase's tier.
    pub tier_id: TierId,
    /// The phase's index in the plan.
    pub phase_index: u32,
    /// The phase.
    pub phase_id: PhaseId,
    /// The phase's task category.
    pub task_category: TaskCategory,
    /// The phase's complexity.
    pub complexity: Complexity,
    /// The issue.
    pub issue: ReportedIssue,
}

/// How new a recorded key was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Novelty {
    /// The project had never seen the key.
    NewInProject,
    /// Known to the project, first time in this run.
    NewInRun,
    /// Known to the run, first time in this phase.
    NewInPhase,
    /// Already recorded in this phase: only occurrence counts rose.
    Repeat,
}

/// A severity that rose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct SeverityUpgrade {
    /// Before.
    pub from: Severity,
    /// After.
    pub to: Severity,
}

/// What one [`Ledger::record`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct RecordOutcome {
    /// How new the key was, at the most global level where it was new.
    pub novelty: Novelty,
    /// The key's effective severity in the run after this record.
    pub effective_severity: Severity,
    /// The key's effective severity in the run rose (only for keys the run already knew).
    pub severity_upgrade: Option<SeverityUpgrade>,
    /// The backlog's `base_severity` rose (only for keys the project already knew).
    pub base_severity_upgrade: Option<SeverityUpgrade>,
    /// `age_in_runs` rose.
    pub aged_in_runs: bool,
    /// `age_in_tiers` rose.
    pub aged_in_tiers: bool,
    /// The key became `needs_cleanup` with this record.
    pub newly_needs_cleanup: bool,
    /// The key was `resolved` and is reopened: a regression.
    pub regression: bool,
}

/// What [`Ledger::resolve`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolveOutcome {
    /// The key was open or needed cleanup and is now resolved.
    Resolved,
    /// The key was resolved already; nothing changed.
    AlreadyResolved,
}

/// A record or resolve that was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// A phase recorded before in the same run is reported with a different value of a
    /// field that is fixed per phase (`phase_index`, `tier_id`, `task_category`,
    /// `complexity`).
    #[error(
        "{field} of phase {phase_id} in run {run_id} was recorded as {recorded:?}, not {given:?}"
    )]
    PhaseConflict {
        /// The run.
        run_id: RunId,
        /// The phase.
        phase_id: PhaseId,
        /// The field that disagrees.
        field: &'static str,
        /// The value recorded first.
        recorded: String,
        /// The value given now.
        given: String,
    },
    /// [`Ledger::resolve`] of a key the backlog does not hold.
    #[error("issue_key {0} is not in the backlog")]
    UnknownIssueKey(IssueKey),
    /// More distinct keys, runs, tiers or phases than the ledger indexes (2^32 − 1).
    #[error("too many distinct {0} for one ledger")]
    Capacity(&'static str),
}

/// A snapshot that does not describe a consistent ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {field}: {message}")]
pub struct LoadError {
    /// Which part of the snapshot (`backlog issues_by_key.K`, `run R issues_by_key.K`, …).
    pub location: String,
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Everything a ledger holds, as playbook views: what a store checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LedgerSnapshot {
    /// The thresholds that decide `needs_cleanup` when recording.
    pub aging_thresholds: AgingThresholds,
    /// The project backlog.
    pub backlog: ProjectBacklog,
    /// The runs the ledger holds in detail, sorted by run id.
    pub runs: Vec<RunSnapshot>,
}

/// One run of a [`LedgerSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunSnapshot {
    /// The run issue index.
    pub index: RunIssueIndex,
    /// The run's phase issue files, by phase index.
    pub phases: Vec<PhaseIssueFile>,
}

/// How [`Ledger::top_keys`] ranks keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TopBy {
    /// Most distinct runs.
    Runs,
    /// Most distinct tiers.
    Tiers,
    /// Most reports.
    Occurrences,
}

/// A backlog key with its age, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyAge {
    /// The key.
    pub issue_key: IssueKey,
    /// Its category.
    pub category: IssueCategory,
    /// The highest severity ever reported.
    pub base_severity: Severity,
    /// Its status.
    pub status: IssueStatus,
    /// Distinct runs.
    pub age_in_runs: u32,
    /// Distinct tiers.
    pub age_in_tiers: u32,
    /// Reports across runs.
    pub occurrence_count: u64,
    /// The last run that saw it.
    pub last_seen_run_id: RunId,
    /// When it was last seen.
    #[serde(with = "crate::time")]
    #[schemars(with = "DateTime<Utc>")]
    pub last_seen_at: DateTime<Utc>,
}

type Map<K, V> = FxHashMap<K, V>;
type Idx = u32;

/// The backlog level of one key.
#[derive(Debug, Clone)]
struct KeyEntry {
    key: IssueKey,
    category: IssueCategory,
    base_severity: Severity,
    status: IssueStatus,
    age_in_runs: u32,
    age_in_tiers: u32,
    first_seen_run: Option<Idx>,
    last_seen_run: Idx,
    last_seen_at: DateTime<Utc>,
    /// Known `(run, tier)` sightings; `age_in_tiers` counts their distinct tier ids, and
    /// imported entries may know fewer than it.
    seen_in_tiers: Vec<(Idx, Idx)>,
    occurrence_count: u64,
    regression_count: u32,
}

impl KeyEntry {
    fn knows_run(&self, run: Idx) -> bool {
        self.last_seen_run == run
            || self.first_seen_run == Some(run)
            || self.seen_in_tiers.iter().any(|&(r, _)| r == run)
    }

    fn effective(&self) -> Severity {
        if self.status == IssueStatus::NeedsCleanup {
            Severity::Major
        } else {
            self.base_severity
        }
    }
}

/// The run level of one key.
#[derive(Debug, Clone)]
struct RunKey {
    severity: Severity,
    /// The key's backlog effective severity when the run first saw it.
    inherited: Severity,
    first_phase_index: u32,
    last_phase_index: u32,
    occurrence_count: u64,
    /// Run-local tier slots below 64 that saw the key.
    tier_mask: u64,
    /// Run-local tier slots from 64 on (rarely used; boxed so the entry stays small).
    #[allow(clippy::box_collection)] // A thin pointer: 8 bytes, not a `Vec`'s 24.
    more_tiers: Option<Box<Vec<u32>>>,
    /// The backlog's first run of the key, [`NO_RUN`] for none (keeps the entry small).
    first_seen_run: Idx,
}

/// `RunKey::first_seen_run` when there is none (interned indices stay below `Idx::MAX`).
const NO_RUN: Idx = Idx::MAX;

fn run_or_none(run: Option<Idx>) -> Idx {
    run.unwrap_or(NO_RUN)
}

impl RunKey {
    fn effective(&self) -> Severity {
        self.severity.max(self.inherited)
    }

    fn first_seen_run(&self) -> Option<Idx> {
        (self.first_seen_run != NO_RUN).then_some(self.first_seen_run)
    }

    fn has_tier(&self, slot: u32) -> bool {
        if slot < 64 {
            self.tier_mask & (1u64 << slot) != 0
        } else {
            self.more_tiers.as_ref().is_some_and(|m| m.contains(&slot))
        }
    }

    /// Adds a tier slot; returns whether it was new.
    fn add_tier(&mut self, slot: u32) -> bool {
        if self.has_tier(slot) {
            return false;
        }
        if slot < 64 {
            self.tier_mask |= 1u64 << slot;
        } else {
            self.more_tiers.get_or_insert_with(Box::default).push(slot);
        }
        true
    }

    fn tier_slots(&self) -> impl Iterator<Item = u32> + '_ {
        (0..64u32)
            .filter(|&s| self.tier_mask & (1u64 << s) != 0)
            .chain(self.more_tiers.iter().flat_map(|m| m.iter().copied()))
    }
}

/// The phase level of one key, as the views read it (see [`PhaseKeys`]).
#[derive(Debug, Clone, Copy)]
struct PhaseKey<'a> {
    severity: Severity,
    source: IssueSource,
    expected_fail: bool,
    occurrence_count: u64,
    extra: Option<&'a PhaseExtra>,
}

/// The hot part of a phase-level key: 8 bytes, so that a phase's table stays compact (a
/// large ledger holds hundreds of thousands of them, and their lookups are what misses
/// the cache).
#[derive(Debug, Clone, Copy)]
struct PhaseCell {
    /// Occurrences; [`BIG_COUNT`] means "at least that many, see `PhaseExtra::big_count`".
    count: u32,
    severity: Severity,
    source: IssueSource,
    expected_fail: bool,
}

/// The `PhaseCell::count` that defers to `PhaseExtra::big_count`.
const BIG_COUNT: u32 = u32::MAX;

/// The rarely needed part of a phase-level key: a category other than the key's,
/// evidence, and an occurrence count past `u32::MAX − 1`.
#[derive(Debug, Clone, Default)]
struct PhaseExtra {
    category: Option<IssueCategory>,
    evidence_refs: Vec<String>,
    /// The occurrence count when `PhaseCell::count` is [`BIG_COUNT`].
    big_count: u64,
}

/// The keys of one phase: compact hot cells, and the rare extras apart.
#[derive(Debug, Clone, Default)]
struct PhaseKeys {
    cells: Map<Idx, PhaseCell>,
    extras: Map<Idx, PhaseExtra>,
}

impl PhaseKeys {
    fn contains_key(&self, key: &Idx) -> bool {
        self.cells.contains_key(key)
    }

    fn keys(&self) -> impl Iterator<Item = &Idx> + '_ {
        self.cells.keys()
    }

    fn view(&self, key: Idx, cell: &PhaseCell) -> PhaseKey<'_> {
        let extra = self.extras.get(&key);
        PhaseKey {
            severity: cell.severity,
            source: cell.source,
            expected_fail: cell.expected_fail,
            occurrence_count: if cell.count == BIG_COUNT {
                extra.map_or(u64::from(BIG_COUNT), |x| x.big_count)
            } else {
                u64::from(cell.count)
            },
            extra,
        }
    }

    fn iter(&self) -> impl Iterator<Item = (Idx, PhaseKey<'_>)> + '_ {
        self.cells
            .iter()
            .map(|(&key, cell)| (key, self.view(key, cell)))
    }

    /// Files a key read from a snapshot.
    fn insert(
        &mut self,
        key: Idx,
        cell: PhaseCell,
        occurrence_count: u64,
        category: Option<IssueCategory>,
        evidence_refs: Vec<String>,
    ) {
        let big = occurrence_count >= u64::from(BIG_COUNT);
        let count = if big {
            BIG_COUNT
        } else {
            occurrence_count as u32
        };
        self.cells.insert(key, PhaseCell { count, ..cell });
        if big || category.is_some() || !evidence_refs.is_empty() {
            self.extras.insert(
                key,
                PhaseExtra {
                    category,
                    evidence_refs,
                    big_count: if big { occurrence_count } else { 0 },
                },
            );
        } else {
            self.extras.remove(&key);
        }
    }

    /// Records one report of `key`; returns whether the phase had not seen it.
    fn record(&mut self, key: Idx, issue: &ReportedIssue, key_category: &IssueCategory) -> bool {
        let mut new_in_phase = false;
        let cell = self.cells.entry(key).or_insert_with(|| {
            new_in_phase = true;
            PhaseCell {
                count: 0,
                severity: issue.severity,
                source: issue.source,
                expected_fail: issue.expected_fail,
            }
        });
        cell.severity = cell.severity.max(issue.severity);
        if cell.count < BIG_COUNT - 1 {
            cell.count += 1;
        } else {
            let extra = self.extras.entry(key).or_default();
            if cell.count == BIG_COUNT - 1 {
                cell.count = BIG_COUNT;
                extra.big_count = u64::from(BIG_COUNT);
            } else {
                extra.big_count = extra.big_count.saturating_add(1);
            }
        }
        let other_category = new_in_phase && issue.category != *key_category;
        if other_category || !issue.evidence_refs.is_empty() {
            let extra = self.extras.entry(key).or_default();
            if other_category {
                extra.category = Some(issue.category.clone());
            }
            for evidence in &issue.evidence_refs {
                if !extra.evidence_refs.contains(evidence) {
                    extra.evidence_refs.push(evidence.clone());
                }
            }
        }
        new_in_phase
    }
}

/// What `Ledger::locate` found.
#[derive(Debug, Clone, Copy)]
struct Located {
    run: Option<Idx>,
    slot: Option<Idx>,
    key: Option<Idx>,
}

#[derive(Debug, Clone)]
struct PhaseState {
    id: PhaseId,
    phase_index: u32,
    tier: Idx,
    /// The run-local slot of `tier`.
    tier_slot: u32,
    task_category: TaskCategory,
    complexity: Complexity,
    keys: PhaseKeys,
}

#[derive(Debug, Clone, Default)]
struct RunState {
    keys: Map<Idx, RunKey>,
    /// Run-local tier slot → global tier.
    tiers: Vec<Idx>,
    tier_slots: Map<Idx, u32>,
    phase_slots: Map<PhaseId, Idx>,
    phases: Vec<PhaseState>,
}

/// The run-local slot of a tier (split from `RunState` for disjoint borrows).
fn tier_slot(tiers: &mut Vec<Idx>, slots: &mut Map<Idx, u32>, tier: Idx) -> u32 {
    if let Some(&slot) = slots.get(&tier) {
        return slot;
    }
    let slot = tiers.len() as u32;
    tiers.push(tier);
    slots.insert(tier, slot);
    slot
}

impl RunState {
    fn tier_slot(&mut self, tier: Idx) -> u32 {
        tier_slot(&mut self.tiers, &mut self.tier_slots, tier)
    }

    /// The phases (by phase index, then id) that list each key.
    fn phases_by_key(&self) -> Map<Idx, Vec<&PhaseState>> {
        let mut by_key: Map<Idx, Vec<&PhaseState>> = Map::default();
        for phase in &self.phases {
            for &key in phase.keys.keys() {
                by_key.entry(key).or_default().push(phase);
            }
        }
        for phases in by_key.values_mut() {
            phases.sort_by(|a, b| {
                a.phase_index
                    .cmp(&b.phase_index)
                    .then_with(|| a.id.cmp(&b.id))
            });
        }
        by_key
    }
}

/// Interned strings: id ↔ dense index.
#[derive(Debug, Clone)]
struct Interner<T> {
    by_name: Map<T, Idx>,
    names: Vec<T>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            by_name: Map::default(),
            names: Vec::new(),
        }
    }
}

impl<T: Clone + Eq + std::hash::Hash + std::borrow::Borrow<str>> Interner<T> {
    fn get(&self, name: &str) -> Option<Idx> {
        self.by_name.get(name).copied()
    }

    fn intern(&mut self, name: &T) -> Idx {
        if let Some(idx) = self.get(name.borrow()) {
            return idx;
        }
        // Capacity is checked before any mutation (see `Ledger::check`).
        let idx = self.names.len() as Idx;
        self.names.push(name.clone());
        self.by_name.insert(name.clone(), idx);
        idx
    }

    fn has_room(&self) -> bool {
        self.names.len() < Idx::MAX as usize
    }

    fn name(&self, idx: Idx) -> &T {
        &self.names[idx as usize]
    }
}

/// The three-level issue ledger of one project (see the crate docs).
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    project_id: Option<ProjectId>,
    thresholds: AgingThresholds,
    keys: Map<IssueKey, Idx>,
    entries: Vec<KeyEntry>,
    run_ids: Interner<RunId>,
    tier_ids: Interner<TierId>,
    runs: Map<Idx, RunState>,
    /// Views changed since the last [`Ledger::take_changes`], when tracking is on.
    pub(crate) changes: Option<Box<crate::changes::Changes>>,
}

impl Ledger {
    /// An empty ledger that ages keys with `thresholds`.
    pub fn new(thresholds: AgingThresholds) -> Ledger {
        Ledger {
            thresholds,
            ..Ledger::default()
        }
    }

    /// Names the project in the backlog view.
    pub fn with_project(mut self, project_id: ProjectId) -> Ledger {
        self.set_project(project_id);
        self
    }

    /// The project whose keys these are, when known.
    pub fn project(&self) -> Option<&ProjectId> {
        self.project_id.as_ref()
    }

    /// Names the project whose keys these are (the backlog view records it).
    pub fn set_project(&mut self, project_id: ProjectId) {
        self.project_id = Some(project_id);
    }

    /// The thresholds used when recording.
    pub fn thresholds(&self) -> AgingThresholds {
        self.thresholds
    }

    /// Changes the thresholds (a new run under another ruleset or safety profile) and
    /// marks every unresolved minor key that has now reached one as `needs_cleanup`;
    /// returns those keys, sorted. Raising thresholds never reopens a key.
    pub fn set_thresholds(&mut self, thresholds: AgingThresholds) -> Vec<IssueKey> {
        self.thresholds = thresholds;
        let mut newly: Vec<IssueKey> = Vec::new();
        for entry in &mut self.entries {
            if entry.status == IssueStatus::Open
                && entry.base_severity == Severity::Minor
                && thresholds.reached(entry.age_in_runs, entry.age_in_tiers)
            {
                entry.status = IssueStatus::NeedsCleanup;
                newly.push(entry.key.clone());
            }
        }
        if let Some(changes) = &mut self.changes {
            changes.backlog += newly.len() as u64;
        }
        newly.sort();
        newly
    }

    /// Whether [`Ledger::set_thresholds`] with `thresholds` would change anything: other
    /// thresholds, or an open minor key that has reached them (a status kept as an
    /// imported file wrote it, say).
    pub fn would_set_thresholds_change(&self, thresholds: AgingThresholds) -> bool {
        thresholds != self.thresholds
            || self.entries.iter().any(|e| {
                e.status == IssueStatus::Open
                    && e.base_severity == Severity::Minor
                    && thresholds.reached(e.age_in_runs, e.age_in_tiers)
            })
    }

    pub(crate) fn run_name(&self, run: Idx) -> &RunId {
        self.run_ids.name(run)
    }

    /// The `(phase_index, phase_id)` of a run's phase slot.
    pub(crate) fn phase_of_slot(&self, run: Idx, slot: Idx) -> Option<(u32, &PhaseId)> {
        let phase = self.runs.get(&run)?.phases.get(slot as usize)?;
        Some((phase.phase_index, &phase.id))
    }

    /// Distinct keys of a run (0 for a run the ledger does not hold).
    pub fn run_key_count(&self, run_id: &RunId) -> usize {
        self.run(run_id).map_or(0, |r| r.keys.len())
    }

    /// Distinct keys of a phase of a run (0 when the run recorded nothing in it).
    pub fn phase_key_count(&self, run_id: &RunId, phase_id: &PhaseId) -> usize {
        self.run(run_id)
            .and_then(|r| {
                r.phase_slots
                    .get(phase_id.as_str())
                    .map(|&s| r.phases[s as usize].keys.cells.len())
            })
            .unwrap_or(0)
    }

    /// The phases a run recorded something in, by phase index then id.
    pub fn phases_of(&self, run_id: &RunId) -> Vec<(u32, PhaseId)> {
        let mut out: Vec<(u32, PhaseId)> = self
            .run(run_id)
            .map(|r| {
                r.phases
                    .iter()
                    .map(|p| (p.phase_index, p.id.clone()))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Checks `obs` against what the ledger holds without changing anything.
    ///
    /// # Errors
    /// As [`Ledger::record`].
    pub fn check(&self, obs: &IssueObservation) -> Result<(), LedgerError> {
        self.locate(obs).map(drop)
    }

    /// Validates `obs` and finds what it refers to, without changing anything.
    fn locate(&self, obs: &IssueObservation) -> Result<Located, LedgerError> {
        let mut located = Located {
            run: self.run_ids.get(obs.run_id.as_str()),
            slot: None,
            key: None,
        };
        if let Some(run) = located.run.and_then(|r| self.runs.get(&r)) {
            if let Some(&slot) = run.phase_slots.get(obs.phase_id.as_str()) {
                located.slot = Some(slot);
                let phase = &run.phases[slot as usize];
                let conflict = |field: &'static str, recorded: String, given: String| {
                    Err(LedgerError::PhaseConflict {
                        run_id: obs.run_id.clone(),
                        phase_id: obs.phase_id.clone(),
                        field,
                        recorded,
                        given,
                    })
                };
                if phase.phase_index != obs.phase_index {
                    return conflict(
                        "phase_index",
                        phase.phase_index.to_string(),
                        obs.phase_index.to_string(),
                    );
                }
                let tier = self.tier_ids.name(phase.tier);
                if *tier != obs.tier_id {
                    return conflict("tier_id", tier.to_string(), obs.tier_id.to_string());
                }
                if phase.task_category != obs.task_category {
                    return conflict(
                        "task_category",
                        phase.task_category.to_string(),
                        obs.task_category.to_string(),
                    );
                }
                if phase.complexity != obs.complexity {
                    return conflict(
                        "complexity",
                        phase.complexity.to_string(),
                        obs.complexity.to_string(),
                    );
                }
            } else if run.phases.len() >= Idx::MAX as usize {
                return Err(LedgerError::Capacity("phases"));
            }
        }
        located.key = self.keys.get(obs.issue.issue_key.as_str()).copied();
        if located.key.is_none() && self.entries.len() >= Idx::MAX as usize {
            return Err(LedgerError::Capacity("issue keys"));
        }
        if !self.run_ids.has_room() && self.run_ids.get(obs.run_id.as_str()).is_none() {
            return Err(LedgerError::Capacity("runs"));
        }
        if !self.tier_ids.has_room() && self.tier_ids.get(obs.tier_id.as_str()).is_none() {
            return Err(LedgerError::Capacity("tiers"));
        }
        Ok(located)
    }

    /// Records one issue seen in one phase, at all three levels, at time `now`.
    ///
    /// O(1) amortised: a handful of hash-map lookups; strings are cloned only the first
    /// time a key, run, tier or phase is seen.
    ///
    /// # Errors
    /// [`LedgerError::PhaseConflict`] when the phase was recorded before in this run with
    /// another `phase_index`, `tier_id`, `task_category` or `complexity`;
    /// [`LedgerError::Capacity`] past 2^32 − 1 distinct keys, runs, tiers or phases. On
    /// error nothing was changed.
    pub fn record(
        &mut self,
        obs: &IssueObservation,
        now: DateTime<Utc>,
    ) -> Result<RecordOutcome, LedgerError> {
        let located = self.locate(obs)?;
        Ok(self.apply(obs, located, now))
    }

    /// Applies a located observation. Infallible.
    fn apply(
        &mut self,
        obs: &IssueObservation,
        located: Located,
        now: DateTime<Utc>,
    ) -> RecordOutcome {
        let issue = &obs.issue;
        let run_idx = match located.run {
            Some(run) => run,
            None => self.run_ids.intern(&obs.run_id),
        };

        // Backlog level: find or create the key.
        let (key_idx, new_in_project) = match located.key {
            Some(idx) => (idx, false),
            None => {
                let idx = self.entries.len() as Idx;
                self.entries.push(KeyEntry {
                    key: issue.issue_key.clone(),
                    category: issue.category.clone(),
                    base_severity: issue.severity,
                    status: IssueStatus::Open,
                    age_in_runs: 0,
                    age_in_tiers: 0,
                    first_seen_run: Some(run_idx),
                    last_seen_run: run_idx,
                    last_seen_at: now,
                    seen_in_tiers: Vec::new(),
                    occurrence_count: 0,
                    regression_count: 0,
                });
                self.keys.insert(issue.issue_key.clone(), idx);
                (idx, true)
            }
        };
        let entry = &mut self.entries[key_idx as usize];
        let inherited_before = entry.effective();
        let status_before = entry.status;

        let mut base_severity_upgrade = None;
        if !new_in_project && issue.severity > entry.base_severity {
            base_severity_upgrade = Some(SeverityUpgrade {
                from: entry.base_severity,
                to: issue.severity,
            });
        }
        entry.base_severity = entry.base_severity.max(issue.severity);
        entry.occurrence_count = entry.occurrence_count.saturating_add(1);
        entry.last_seen_at = now;
        let regression = status_before == IssueStatus::Resolved;
        if regression {
            entry.status = IssueStatus::Open;
            entry.regression_count = entry.regression_count.saturating_add(1);
        }

        // Run level.
        let run = self.runs.entry(run_idx).or_default();
        let mut new_in_run = false;
        let run_key = run.keys.entry(key_idx).or_insert_with(|| {
            new_in_run = true;
            RunKey {
                severity: issue.severity,
                inherited: if new_in_project {
                    issue.severity
                } else {
                    inherited_before
                },
                first_phase_index: obs.phase_index,
                last_phase_index: obs.phase_index,
                occurrence_count: 0,
                tier_mask: 0,
                more_tiers: None,
                first_seen_run: run_or_none(entry.first_seen_run),
            }
        });
        let effective_before = run_key.effective();
        run_key.severity = run_key.severity.max(issue.severity);
        run_key.occurrence_count = run_key.occurrence_count.saturating_add(1);
        run_key.first_phase_index = run_key.first_phase_index.min(obs.phase_index);
        run_key.last_phase_index = run_key.last_phase_index.max(obs.phase_index);
        let effective = run_key.effective();
        let severity_upgrade =
            (!new_in_run && effective > effective_before).then_some(SeverityUpgrade {
                from: effective_before,
                to: effective,
            });

        // Aging: distinct runs, and distinct tier ids (below).
        let mut aged_in_runs = false;
        if new_in_project || (new_in_run && !entry.knows_run(run_idx)) {
            entry.age_in_runs = entry.age_in_runs.saturating_add(1);
            aged_in_runs = true;
        }
        entry.last_seen_run = run_idx;

        // Phase level.
        let slot = match located.slot {
            Some(slot) => slot,
            None => {
                let tier = self.tier_ids.intern(&obs.tier_id);
                let tier_slot = tier_slot(&mut run.tiers, &mut run.tier_slots, tier);
                let slot = run.phases.len() as Idx;
                run.phases.push(PhaseState {
                    id: obs.phase_id.clone(),
                    phase_index: obs.phase_index,
                    tier,
                    tier_slot,
                    task_category: obs.task_category.clone(),
                    complexity: obs.complexity,
                    keys: PhaseKeys::default(),
                });
                run.phase_slots.insert(obs.phase_id.clone(), slot);
                slot
            }
        };
        let phase = &mut run.phases[slot as usize];
        let (tier_idx, tier_slot) = (phase.tier, phase.tier_slot);
        let new_in_phase = phase.keys.record(key_idx, issue, &entry.category);

        // Aging by tiers: distinct tier ids, so the same tier in the next run of the plan
        // does not age the key again (the runs threshold counts runs). A repeat in a known
        // phase is in a known tier.
        let mut aged_in_tiers = false;
        if new_in_phase
            && run_key.add_tier(tier_slot)
            && !entry.seen_in_tiers.contains(&(run_idx, tier_idx))
        {
            let new_tier = !entry.seen_in_tiers.iter().any(|&(_, t)| t == tier_idx);
            entry.seen_in_tiers.push((run_idx, tier_idx));
            if new_tier {
                entry.age_in_tiers = entry.age_in_tiers.saturating_add(1);
                aged_in_tiers = true;
            }
        }
        let mut newly_needs_cleanup = false;
        if entry.base_severity == Severity::Major && entry.status == IssueStatus::NeedsCleanup {
            // Cleanup is for minor debt: a key upgraded to major is open (and effective
            // major anyway), whatever the order of its reports.
            entry.status = IssueStatus::Open;
        }
        if entry.status == IssueStatus::Open
            && entry.base_severity == Severity::Minor
            && self
                .thresholds
                .reached(entry.age_in_runs, entry.age_in_tiers)
        {
            entry.status = IssueStatus::NeedsCleanup;
            newly_needs_cleanup = status_before != IssueStatus::NeedsCleanup;
        }

        if let Some(changes) = &mut self.changes {
            // The record changes the backlog entry, the run's index entry and the phase's
            // file; an effective upgrade also shows in every other phase of the run that
            // lists the key.
            let upgraded = severity_upgrade.is_some();
            changes.note_record(
                run_idx,
                slot,
                upgraded.then(|| {
                    run.phases
                        .iter()
                        .enumerate()
                        .filter(|&(s, p)| s as Idx != slot && p.keys.contains_key(&key_idx))
                        .map(|(s, _)| s as Idx)
                }),
            );
        }
        let novelty = if new_in_project {
            Novelty::NewInProject
        } else if new_in_run {
            Novelty::NewInRun
        } else if new_in_phase {
            Novelty::NewInPhase
        } else {
            Novelty::Repeat
        };
        RecordOutcome {
            novelty,
            effective_severity: effective,
            severity_upgrade,
            base_severity_upgrade,
            aged_in_runs,
            aged_in_tiers,
            newly_needs_cleanup,
            regression,
        }
    }

    /// Marks `key` resolved at `now`. Seeing it again reopens it as a regression; its ages
    /// continue from where they were.
    ///
    /// # Errors
    /// [`LedgerError::UnknownIssueKey`] when the backlog does not hold the key.
    pub fn resolve(
        &mut self,
        key: &IssueKey,
        now: DateTime<Utc>,
    ) -> Result<ResolveOutcome, LedgerError> {
        let _ = now; // Kept in the signature for journals and future `resolved_at`.
        let idx = self
            .keys
            .get(key.as_str())
            .copied()
            .ok_or_else(|| LedgerError::UnknownIssueKey(key.clone()))?;
        let entry = &mut self.entries[idx as usize];
        if entry.status == IssueStatus::Resolved {
            return Ok(ResolveOutcome::AlreadyResolved);
        }
        entry.status = IssueStatus::Resolved;
        if let Some(changes) = &mut self.changes {
            changes.backlog += 1;
        }
        Ok(ResolveOutcome::Resolved)
    }

    /// Drops the detailed (run and phase level) state of a run, e.g. once its index and
    /// phase files are written; the backlog keeps what it learnt. Returns whether the run
    /// was held.
    pub fn forget_run(&mut self, run_id: &RunId) -> bool {
        match self.run_ids.get(run_id.as_str()) {
            Some(idx) => self.runs.remove(&idx).is_some(),
            None => false,
        }
    }

    /// Runs held in detail, sorted.
    pub fn runs(&self) -> Vec<RunId> {
        let mut runs: Vec<RunId> = self
            .runs
            .keys()
            .map(|&r| self.run_ids.name(r).clone())
            .collect();
        runs.sort();
        runs
    }

    /// Distinct keys in the backlog (all statuses).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the backlog holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The backlog status of `key`.
    pub fn status(&self, key: &IssueKey) -> Option<IssueStatus> {
        self.entry(key).map(|e| e.status)
    }

    /// The backlog entry of `key`, as written in the backlog view.
    pub fn backlog_entry(&self, key: &IssueKey) -> Option<BacklogEntry> {
        self.entry(key).map(|e| self.backlog_entry_of(e))
    }

    fn entry(&self, key: &IssueKey) -> Option<&KeyEntry> {
        self.keys
            .get(key.as_str())
            .map(|&i| &self.entries[i as usize])
    }

    fn run(&self, run_id: &RunId) -> Option<&RunState> {
        self.run_ids
            .get(run_id.as_str())
            .and_then(|r| self.runs.get(&r))
    }

    // ---- queries -------------------------------------------------------------------

    /// Distinct keys of a run by effective severity (zero for an unknown run).
    pub fn run_counts(&self, run_id: &RunId) -> IssueCounts {
        let mut counts = IssueCounts::default();
        if let Some(run) = self.run(run_id) {
            for key in run.keys.values() {
                counts.add(key.effective());
            }
        }
        counts
    }

    /// Distinct keys seen in one tier of a run, by their effective severity in the run.
    pub fn tier_counts(&self, run_id: &RunId, tier_id: &TierId) -> IssueCounts {
        let mut counts = IssueCounts::default();
        let Some(run) = self.run(run_id) else {
            return counts;
        };
        let Some(&slot) = self
            .tier_ids
            .get(tier_id.as_str())
            .and_then(|t| run.tier_slots.get(&t))
        else {
            return counts;
        };
        for key in run.keys.values() {
            if key.has_tier(slot) {
                counts.add(key.effective());
            }
        }
        counts
    }

    /// Distinct keys per tier of a run, sorted by tier id.
    pub fn tier_counts_by_tier(&self, run_id: &RunId) -> BTreeMap<TierId, IssueCounts> {
        let mut by_tier: BTreeMap<TierId, IssueCounts> = BTreeMap::new();
        if let Some(run) = self.run(run_id) {
            for key in run.keys.values() {
                for slot in key.tier_slots() {
                    by_tier
                        .entry(self.tier_ids.name(run.tiers[slot as usize]).clone())
                        .or_default()
                        .add(key.effective());
                }
            }
        }
        by_tier
    }

    /// Distinct keys of one phase by effective severity.
    pub fn phase_counts(&self, run_id: &RunId, phase_id: &PhaseId) -> IssueCounts {
        self.phase_issue_file(run_id, phase_id)
            .map(|f| IssueCounts {
                minor: f.minor_issue_count,
                major: f.major_issue_count,
            })
            .unwrap_or_default()
    }

    /// The run's `debt_status` (SPEC §6): `clean` with no distinct minor key,
    /// `excess_minor_issues` with more than `max_minor_issues_total`, else
    /// `has_minor_issues`. Major keys do not count here.
    pub fn debt_status(&self, run_id: &RunId, max_minor_issues_total: u32) -> DebtStatus {
        let minor = self.run_counts(run_id).minor;
        if minor == 0 {
            DebtStatus::Clean
        } else if minor > max_minor_issues_total {
            DebtStatus::ExcessMinorIssues
        } else {
            DebtStatus::HasMinorIssues
        }
    }

    /// The `limit` backlog keys ranked by `by` (ties: the other ages, then key), with
    /// their ages. Resolved keys are included; filter on `status` if needed.
    pub fn top_keys(&self, by: TopBy, limit: usize) -> Vec<KeyAge> {
        let mut ranked: Vec<&KeyEntry> = self.entries.iter().collect();
        let rank = |e: &KeyEntry| -> (u64, u64, u64) {
            let (runs, tiers, occ) = (
                u64::from(e.age_in_runs),
                u64::from(e.age_in_tiers),
                e.occurrence_count,
            );
            match by {
                TopBy::Runs => (runs, tiers, occ),
                TopBy::Tiers => (tiers, runs, occ),
                TopBy::Occurrences => (occ, runs, tiers),
            }
        };
        ranked.sort_by(|a, b| rank(b).cmp(&rank(a)).then_with(|| a.key.cmp(&b.key)));
        ranked
            .into_iter()
            .take(limit)
            .map(|e| KeyAge {
                issue_key: e.key.clone(),
                category: e.category.clone(),
                base_severity: e.base_severity,
                status: e.status,
                age_in_runs: e.age_in_runs,
                age_in_tiers: e.age_in_tiers,
                occurrence_count: e.occurrence_count,
                last_seen_run_id: self.run_ids.name(e.last_seen_run).clone(),
                last_seen_at: e.last_seen_at,
            })
            .collect()
    }

    // ---- views ---------------------------------------------------------------------

    /// The phase issue file of one phase, if the run recorded anything in it.
    pub fn phase_issue_file(&self, run_id: &RunId, phase_id: &PhaseId) -> Option<PhaseIssueFile> {
        let run = self.run(run_id)?;
        let slot = *run.phase_slots.get(phase_id.as_str())?;
        Some(self.phase_file_of(run_id, run, &run.phases[slot as usize]))
    }

    /// Every phase issue file of a run, by phase index then id.
    pub fn phase_issue_files(&self, run_id: &RunId) -> Vec<PhaseIssueFile> {
        let Some(run) = self.run(run_id) else {
            return Vec::new();
        };
        let mut phases: Vec<&PhaseState> = run.phases.iter().collect();
        phases.sort_by(|a, b| {
            a.phase_index
                .cmp(&b.phase_index)
                .then_with(|| a.id.cmp(&b.id))
        });
        phases
            .into_iter()
            .map(|p| self.phase_file_of(run_id, run, p))
            .collect()
    }

    fn phase_file_of(&self, run_id: &RunId, run: &RunState, phase: &PhaseState) -> PhaseIssueFile {
        let mut counts = IssueCounts::default();
        let mut issues: Vec<IssueRecord> = phase
            .keys
            .iter()
            .map(|(key_idx, pk)| {
                let entry = &self.entries[key_idx as usize];
                let rk = run.keys.get(&key_idx);
                let effective = rk.map_or(pk.severity, |rk| rk.effective()).max(pk.severity);
                counts.add(effective);
                IssueRecord {
                    issue_key: entry.key.clone(),
                    severity: pk.severity,
                    effective_severity: effective,
                    source: pk.source,
                    category: pk
                        .extra
                        .and_then(|x| x.category.clone())
                        .unwrap_or_else(|| entry.category.clone()),
                    task_category: phase.task_category.clone(),
                    complexity: phase.complexity,
                    expected_fail: pk.expected_fail,
                    occurrence_count: pk.occurrence_count,
                    first_seen_run: rk
                        .and_then(RunKey::first_seen_run)
                        .map(|r| self.run_ids.name(r).clone()),
                    last_seen_run: run_id.clone(),
                    evidence_refs: pk
                        .extra
                        .map(|x| x.evidence_refs.clone())
                        .unwrap_or_default(),
                }
            })
            .collect();
        issues.sort_by(|a, b| a.issue_key.cmp(&b.issue_key));
        PhaseIssueFile {
            run_id: run_id.clone(),
            phase_id: phase.id.clone(),
            phase_index: phase.phase_index,
            tier_id: self.tier_ids.name(phase.tier).clone(),
            issues,
            minor_issue_count: counts.minor,
            major_issue_count: counts.major,
            issue_state: counts.issue_state(),
        }
    }

    /// The run issue index of a run (empty for a run the ledger does not hold).
    pub fn run_issue_index(&self, run_id: &RunId) -> RunIssueIndex {
        let mut index = RunIssueIndex {
            run_id: run_id.clone(),
            issues_by_key: BTreeMap::new(),
            minor_issue_count: 0,
            major_issue_count: 0,
        };
        let Some(run) = self.run(run_id) else {
            return index;
        };
        let mut counts = IssueCounts::default();
        let phases_by_key = run.phases_by_key();
        for (&key_idx, rk) in &run.keys {
            let entry = &self.entries[key_idx as usize];
            counts.add(rk.effective());
            let mut tiers: Vec<TierId> = rk
                .tier_slots()
                .map(|slot| self.tier_ids.name(run.tiers[slot as usize]).clone())
                .collect();
            tiers.sort();
            let phases = phases_by_key.get(&key_idx).map_or(&[][..], Vec::as_slice);
            index.issues_by_key.insert(
                entry.key.clone(),
                RunIssueEntry {
                    category: entry.category.clone(),
                    severity: rk.severity,
                    effective_severity: rk.effective(),
                    first_phase_index: rk.first_phase_index,
                    last_phase_index: rk.last_phase_index,
                    occurrence_count: rk.occurrence_count,
                    seen_in_tiers: tiers,
                    seen_in_phases: phases.iter().map(|p| p.id.clone()).collect(),
                },
            );
        }
        index.minor_issue_count = counts.minor;
        index.major_issue_count = counts.major;
        index
    }

    /// The project backlog.
    pub fn backlog(&self) -> ProjectBacklog {
        ProjectBacklog {
            project_id: self.project_id.clone(),
            issues_by_key: self
                .entries
                .iter()
                .map(|e| (e.key.clone(), self.backlog_entry_of(e)))
                .collect(),
        }
    }

    fn backlog_entry_of(&self, e: &KeyEntry) -> BacklogEntry {
        let mut seen: Vec<TierSighting> = e
            .seen_in_tiers
            .iter()
            .map(|&(r, t)| TierSighting {
                run_id: self.run_ids.name(r).clone(),
                tier_id: self.tier_ids.name(t).clone(),
            })
            .collect();
        seen.sort();
        BacklogEntry {
            category: e.category.clone(),
            base_severity: e.base_severity,
            age_in_runs: e.age_in_runs,
            age_in_tiers: e.age_in_tiers,
            first_seen_run_id: e.first_seen_run.map(|r| self.run_ids.name(r).clone()),
            last_seen_run_id: self.run_ids.name(e.last_seen_run).clone(),
            last_seen_at: e.last_seen_at,
            seen_in_tiers: seen,
            status: e.status,
            occurrence_count: e.occurrence_count,
            regression_count: e.regression_count,
        }
    }

    // ---- snapshots -----------------------------------------------------------------

    /// Everything the ledger holds, as views.
    pub fn snapshot(&self) -> LedgerSnapshot {
        LedgerSnapshot {
            aging_thresholds: self.thresholds,
            backlog: self.backlog(),
            runs: self
                .runs()
                .iter()
                .map(|run| RunSnapshot {
                    index: self.run_issue_index(run),
                    phases: self.phase_issue_files(run),
                })
                .collect(),
        }
    }

    /// A ledger holding only a backlog (for instance one read from
    /// `project_issue_backlog.json`, of this or the first implementation).
    ///
    /// # Errors
    /// As [`Ledger::from_snapshot`].
    pub fn from_backlog(
        backlog: &ProjectBacklog,
        thresholds: AgingThresholds,
    ) -> Result<Ledger, LoadError> {
        Ledger::from_snapshot(&LedgerSnapshot {
            aging_thresholds: thresholds,
            backlog: backlog.clone(),
            runs: Vec::new(),
        })
    }

    /// Rebuilds a ledger from its views; `Ledger::from_snapshot(&l.snapshot())` holds the
    /// same state as `l`.
    ///
    /// Imported backlog entries may list fewer runs and tiers than their ages count (the
    /// first implementation kept counts only). Their ages continue from the counts: the
    /// runs named in the entry (`first_seen_run_id`, `last_seen_run_id`, `seen_in_tiers`)
    /// are not counted again, and a tier of such a run that is not listed ages the key
    /// once more: a conservative choice (a key can only age sooner, never later).
    /// Statuses are kept as written; they are not re-derived from the thresholds.
    ///
    /// # Errors
    /// A [`LoadError`] naming the field when an age is smaller than the runs or tiers the
    /// entry lists, when a run index names a key the backlog lacks, or when a phase file
    /// contradicts its run index.
    pub fn from_snapshot(snapshot: &LedgerSnapshot) -> Result<Ledger, LoadError> {
        let mut ledger = Ledger::new(snapshot.aging_thresholds);
        ledger.project_id = snapshot.backlog.project_id.clone();
        for (key, b) in &snapshot.backlog.issues_by_key {
            let location = || format!("backlog issues_by_key.{key}");
            let first_seen_run = b
                .first_seen_run_id
                .as_ref()
                .map(|r| ledger.run_ids.intern(r));
            let last_seen_run = ledger.run_ids.intern(&b.last_seen_run_id);
            let mut seen: Vec<(Idx, Idx)> = b
                .seen_in_tiers
                .iter()
                .map(|s| {
                    (
                        ledger.run_ids.intern(&s.run_id),
                        ledger.tier_ids.intern(&s.tier_id),
                    )
                })
                .collect();
            seen.sort_unstable();
            seen.dedup();
            let mut runs: Vec<Idx> = seen.iter().map(|&(r, _)| r).collect();
            runs.push(last_seen_run);
            runs.extend(first_seen_run);
            runs.sort_unstable();
            runs.dedup();
            if (b.age_in_runs as usize) < runs.len() {
                return Err(LoadError {
                    location: location(),
                    field: "age_in_runs",
                    message: format!(
                        "{} is less than the {} distinct runs the entry names",
                        b.age_in_runs,
                        runs.len()
                    ),
                });
            }
            let mut tiers: Vec<Idx> = seen.iter().map(|&(_, t)| t).collect();
            tiers.sort_unstable();
            tiers.dedup();
            if (b.age_in_tiers as usize) < tiers.len() {
                return Err(LoadError {
                    location: location(),
                    field: "age_in_tiers",
                    message: format!(
                        "{} is less than the {} distinct tiers in seen_in_tiers",
                        b.age_in_tiers,
                        tiers.len()
                    ),
                });
            }
            let idx = ledger.entries.len() as Idx;
            ledger.entries.push(KeyEntry {
                key: key.clone(),
                category: b.category.clone(),
                base_severity: b.base_severity,
                status: b.status,
                age_in_runs: b.age_in_runs,
                age_in_tiers: b.age_in_tiers,
                first_seen_run,
                last_seen_run,
                last_seen_at: b.last_seen_at,
                seen_in_tiers: seen,
                occurrence_count: b.occurrence_count.max(u64::from(b.age_in_tiers)),
                regression_count: b.regression_count,
            });
            ledger.keys.insert(key.clone(), idx);
        }
        for run in &snapshot.runs {
            ledger.load_run(run)?;
        }
        Ok(ledger)
    }

    fn load_run(&mut self, snap: &RunSnapshot) -> Result<(), LoadError> {
        let run_id = &snap.index.run_id;
        let run_idx = self.run_ids.intern(run_id);
        let mut state = RunState::default();
        for file in &snap.phases {
            let location = || format!("run {run_id} phase {}", file.phase_id);
            if file.run_id != *run_id {
                return Err(LoadError {
                    location: location(),
                    field: "run_id",
                    message: format!("names run {}", file.run_id),
                });
            }
            if state.phase_slots.contains_key(file.phase_id.as_str()) {
                return Err(LoadError {
                    location: location(),
                    field: "phase_id",
                    message: "appears twice".into(),
                });
            }
            let Some(first) = file.issues.first() else {
                continue;
            };
            let slot = state.phases.len() as Idx;
            let tier = self.tier_ids.intern(&file.tier_id);
            let mut phase = PhaseState {
                id: file.phase_id.clone(),
                phase_index: file.phase_index,
                tier,
                tier_slot: state.tier_slot(tier),
                task_category: first.task_category.clone(),
                complexity: first.complexity,
                keys: PhaseKeys::default(),
            };
            for issue in &file.issues {
                let Some(&key_idx) = self.keys.get(issue.issue_key.as_str()) else {
                    return Err(LoadError {
                        location: location(),
                        field: "issue_key",
                        message: format!("{} is not in the backlog", issue.issue_key),
                    });
                };
                let category = (issue.category != self.entries[key_idx as usize].category)
                    .then(|| issue.category.clone());
                phase.keys.insert(
                    key_idx,
                    PhaseCell {
                        count: 0,
                        severity: issue.severity,
                        source: issue.source,
                        expected_fail: issue.expected_fail,
                    },
                    issue.occurrence_count,
                    category,
                    issue.evidence_refs.clone(),
                );
            }
            state.phase_slots.insert(file.phase_id.clone(), slot);
            state.phases.push(phase);
        }
        for (key, e) in &snap.index.issues_by_key {
            let location = || format!("run {run_id} issues_by_key.{key}");
            let Some(&key_idx) = self.keys.get(key.as_str()) else {
                return Err(LoadError {
                    location: location(),
                    field: "issue_key",
                    message: "not in the backlog".into(),
                });
            };
            let mut first_seen_run = None;
            for phase_id in &e.seen_in_phases {
                let Some(&slot) = state.phase_slots.get(phase_id.as_str()) else {
                    return Err(LoadError {
                        location: location(),
                        field: "seen_in_phases",
                        message: format!("phase {phase_id} has no issue file listing the key"),
                    });
                };
                let listed = state.phases[slot as usize].keys.contains_key(&key_idx);
                if !listed {
                    return Err(LoadError {
                        location: location(),
                        field: "seen_in_phases",
                        message: format!(
                            "the issue file of phase {phase_id} does not list the key"
                        ),
                    });
                }
            }
            let listing = state
                .phases
                .iter()
                .filter(|p| p.keys.contains_key(&key_idx))
                .count();
            if listing != e.seen_in_phases.len() {
                return Err(LoadError {
                    location: location(),
                    field: "seen_in_phases",
                    message: format!(
                        "lists {} phases, but {listing} issue files list the key",
                        e.seen_in_phases.len()
                    ),
                });
            }
            for file in &snap.phases {
                if let Some(issue) = file.issues.iter().find(|i| i.issue_key == *key) {
                    first_seen_run = issue
                        .first_seen_run
                        .as_ref()
                        .map(|r| self.run_ids.intern(r));
                    break;
                }
            }
            let mut run_key = RunKey {
                severity: e.severity,
                inherited: e.effective_severity,
                first_phase_index: e.first_phase_index,
                last_phase_index: e.last_phase_index,
                occurrence_count: e.occurrence_count,
                tier_mask: 0,
                more_tiers: None,
                first_seen_run: run_or_none(first_seen_run),
            };
            for tier_id in &e.seen_in_tiers {
                let tier = self.tier_ids.intern(tier_id);
                run_key.add_tier(state.tier_slot(tier));
            }
            state.keys.insert(key_idx, run_key);
        }
        for phase in &state.phases {
            for key_idx in phase.keys.keys() {
                if !state.keys.contains_key(key_idx) {
                    return Err(LoadError {
                        location: format!("run {run_id} phase {}", phase.id),
                        field: "issues",
                        message: format!(
                            "{} is missing from the run issue index",
                            self.entries[*key_idx as usize].key
                        ),
                    });
                }
            }
        }
        self.runs.insert(run_idx, state);
        Ok(())
    }
}

impl BacklogView for Ledger {
    fn items(&self) -> Vec<BacklogItem> {
        let mut items: Vec<BacklogItem> = self
            .entries
            .iter()
            .map(|e| BacklogItem {
                issue_key: e.key.clone(),
                category: e.category.clone(),
                base_severity: e.base_severity,
                status: e.status,
                age_in_runs: e.age_in_runs,
                age_in_tiers: e.age_in_tiers,
                last_seen_run_id: self.run_ids.name(e.last_seen_run).clone(),
            })
            .collect();
        items.sort_by(|a, b| a.issue_key.cmp(&b.issue_key));
        items
    }
}

#[cfg(test)]
mod phase_keys_tests {
    use super::*;

    fn issue(severity: Severity) -> ReportedIssue {
        ReportedIssue {
            issue_key: IssueKey::new("k").unwrap(),
            severity,
            source: IssueSource::Test,
            category: IssueCategory::new("test_failure").unwrap(),
            expected_fail: false,
            evidence_refs: Vec::new(),
        }
    }

    fn count(keys: &PhaseKeys, key: Idx) -> u64 {
        keys.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, pk)| pk.occurrence_count)
            .unwrap()
    }

    #[test]
    fn hot_entries_stay_small() {
        // The phase tables of a large ledger are what misses the cache: keep them compact.
        assert_eq!(std::mem::size_of::<(Idx, PhaseCell)>(), 12);
        assert!(std::mem::size_of::<(Idx, RunKey)>() <= 48);
    }

    #[test]
    fn tier_slots_past_64_are_kept() {
        let mut rk = RunKey {
            severity: Severity::Minor,
            inherited: Severity::Minor,
            first_phase_index: 0,
            last_phase_index: 0,
            occurrence_count: 0,
            tier_mask: 0,
            more_tiers: None,
            first_seen_run: run_or_none(None),
        };
        assert_eq!(rk.first_seen_run(), None);
        for slot in [3, 70, 64, 3, 70] {
            rk.add_tier(slot);
        }
        assert!(rk.has_tier(64) && rk.has_tier(70) && !rk.has_tier(65));
        assert_eq!(rk.tier_slots().collect::<Vec<_>>(), [3, 70, 64]);
    }

    #[test]
    fn occurrence_counts_past_u32_are_kept_whole() {
        let category = IssueCategory::new("test_failure").unwrap();
        let cell = PhaseCell {
            count: 0,
            severity: Severity::Minor,
            source: IssueSource::Test,
            expected_fail: false,
        };
        let mut keys = PhaseKeys::default();
        // Crossing the boundary one report at a time.
        keys.insert(1, cell, u64::from(u32::MAX) - 2, None, Vec::new());
        for expected in [
            u64::from(u32::MAX) - 1,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
        ] {
            assert!(!keys.record(1, &issue(Severity::Minor), &category));
            assert_eq!(count(&keys, 1), expected);
        }
        // Loaded past the boundary, and saturating at the top.
        keys.insert(2, cell, u64::MAX - 1, None, Vec::new());
        assert!(!keys.record(2, &issue(Severity::Major), &category));
        assert!(!keys.record(2, &issue(Severity::Minor), &category));
        assert_eq!(count(&keys, 2), u64::MAX);
        assert!(
            keys.iter()
                .any(|(k, pk)| k == 2 && pk.severity == Severity::Major)
        );
        // Small counts need no extra.
        keys.insert(3, cell, 7, None, Vec::new());
        assert!(keys.record(4, &issue(Severity::Minor), &category));
        assert_eq!((count(&keys, 3), count(&keys, 4)), (7, 1));
        assert!(!keys.extras.contains_key(&3) && !keys.extras.contains_key(&4));
    }
}
