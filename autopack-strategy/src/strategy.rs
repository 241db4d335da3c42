//! The compiled, frozen strategy of a run (`project_implementation_strategy_v{N}.json`).
//!
//! Every collection is a `BTreeMap` or a sorted `Vec` ([`PhaseStrategies`] is a `Vec`
//! sorted by phase id that reads and writes as a JSON map), so equal strategies serialise
//! to identical bytes.

use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Index;

use autopack_core::budget::{PhaseCaps, RunCaps, TierCaps};
use autopack_core::ids::{IssueKey, PhaseId, ProjectId, RunId, TierId};
use autopack_core::json::{self, JsonError};
use autopack_core::plan::{PhaseSpec, Plan};
use autopack_core::vocabulary::{
    BuilderMode, CiProfile, Complexity, IssueCategory, RunScope, SafetyProfile, Severity,
    TaskCategory,
};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use autopack_core::journal::chain::Digest;

use crate::patch_policy::PatchPolicySettings;
use crate::ruleset::AgingThresholds;

/// A compiled strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Strategy {
    /// The strategy version `N` of `project_implementation_strategy_v{N}.json`.
    pub version: u32,
    /// The run it was compiled for.
    pub run_id: RunId,
    /// The project whose ruleset was used.
    pub project_id: ProjectId,
    /// The ruleset's `version`.
    pub ruleset_version: String,
    /// The SHA-256 of the ruleset's canonical JSON (compact, fields in schema order): which
    /// ruleset exactly the strategy was compiled from. A run journal's first line binds
    /// it. Absent from strategies written before the field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruleset_sha256: Option<Digest>,
    /// The run's safety profile.
    pub safety_profile: SafetyProfile,
    /// The run's scope.
    pub run_scope: RunScope,
    /// Run token cap.
    pub run_token_cap: u64,
    /// Most phases the run may hold (planned plus inserted).
    pub run_max_phases: u32,
    /// Longest the run may take, in minutes.
    pub run_max_duration_minutes: u32,
    /// Distinct minor issues the run tolerates (phases × 3, inserted phases included).
    pub run_max_minor_issues_total: u32,
    /// The aging thresholds of the run's safety profile.
    pub aging_thresholds: AgingThresholds,
    /// Per-tier budgets, by tier id.
    pub tier_strategies: BTreeMap<TierId, TierStrategy>,
    /// Per-phase slices (planned and inserted), by phase id.
    // A sorted `Vec` with a map's lookups; its JSON (and schema) is that of
    // `BTreeMap<PhaseId, PhaseStrategy>`.
    pub phase_strategies: PhaseStrategies,
    /// The `debt_cleanup` phases the engine inserted, as plan phases, in phase order.
    pub inserted_phases: Vec<PhaseSpec>,
    /// Backlog keys that count as `major` in this run, sorted by key.
    pub effective_severity_upgrades: Vec<SeverityUpgrade>,
    /// What the engine noticed, sorted.
    pub diagnostics: Vec<Diagnostic>,
    /// What a patch may do in this run (the ruleset's `patch_policy`, resolved). A
    /// strategy written before the field existed reads as the built-in policy.
    #[serde(default)]
    pub patch_policy: PatchPolicySettings,
}

/// The budgets of one tier (SPEC §6 formulas).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierStrategy {
    /// The tier.
    pub tier_id: TierId,
    /// Its position.
    pub tier_index: u32,
    /// Its human name.
    pub name: String,
    /// Its phases, in execution order (inserted cleanup phases last).
    pub phase_ids: Vec<PhaseId>,
    /// Whether it holds a high-risk phase.
    pub high_risk: bool,
    /// Tokens the tier's phases may spend together.
    pub token_cap: u64,
    /// CI attempts the tier may run.
    pub ci_run_cap: u32,
    /// Distinct minor issues tolerated.
    pub max_minor_issues_tolerated: u32,
    /// Distinct major issues tolerated.
    pub max_major_issues_tolerated: u32,
}

impl TierStrategy {
    /// The tier's caps as the budget type.
    pub fn caps(&self) -> TierCaps {
        TierCaps {
            token_cap: self.token_cap,
            ci_run_cap: self.ci_run_cap,
            max_minor_issues_tolerated: self.max_minor_issues_tolerated,
            max_major_issues_tolerated: self.max_major_issues_tolerated,
        }
    }
}

/// Where a phase slice came from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PhaseOrigin {
    /// A phase of the plan.
    Plan,
    /// A `debt_cleanup` phase inserted for aged backlog keys.
    DebtCleanup,
}

/// Which layer of defaults a slice's values came from (the highest that applied).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DefaultsSource {
    /// The ruleset overrides the category.
    Ruleset,
    /// The built-in high-risk defaults.
    BuiltinHighRisk,
    /// The built-in normal defaults.
    Builtin,
    /// The fallback for unknown categories.
    Fallback,
}

/// The frozen settings of one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseStrategy {
    /// The phase.
    pub phase_id: PhaseId,
    /// Its tier.
    pub tier_id: TierId,
    /// Its position in the run.
    pub phase_index: u32,
    /// Its category (canonical spelling).
    pub task_category: TaskCategory,
    /// Effective complexity (never below `high` for a high-risk phase).
    pub complexity: Complexity,
    /// Builder mode (the plan's, else the category's).
    pub builder_mode: BuilderMode,
    /// Builder attempts.
    pub max_builder_attempts: u32,
    /// Auditor attempts.
    pub max_auditor_attempts: u32,
    /// Tokens the phase may spend.
    pub incident_token_cap: u64,
    /// CI profile.
    pub ci_profile: CiProfile,
    /// CI retries.
    pub ci_max_retries: u32,
    /// Whether its patches apply without an Auditor `approve`.
    pub auto_apply: bool,
    /// The Auditor profile to request.
    pub auditor_profile: Option<String>,
    /// Whether the phase is high-risk.
    pub high_risk: bool,
    /// Severity of issues filed in this phase by default.
    pub default_severity: Severity,
    /// Path globs its patches must stay inside (copied from the plan).
    pub scope: Vec<String>,
    /// Planned or inserted.
    pub origin: PhaseOrigin,
    /// Which defaults layer applied.
    pub defaults_source: DefaultsSource,
    /// For inserted cleanup phases: the backlog keys to resolve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleanup_issue_keys: Vec<IssueKey>,
}

impl PhaseStrategy {
    /// The phase's caps as the budget type.
    pub fn caps(&self) -> PhaseCaps {
        PhaseCaps {
            max_builder_attempts: self.max_builder_attempts,
            max_auditor_attempts: self.max_auditor_attempts,
            incident_token_cap: self.incident_token_cap,
        }
    }
}

/// The per-phase slices of a [`Strategy`], by phase id: a `Vec` sorted by id with the
/// read API of a `BTreeMap<PhaseId, PhaseStrategy>` (`get`, `contains_key`, `keys`,
/// `values`, `iter`, `len`, indexing), written and read as the same JSON map.
///
/// A slice is normally filed under its own `phase_id`; a strategy read from JSON whose
/// map key differs from the slice's `phase_id` keeps that key (as a `BTreeMap` would).
#[derive(Debug, Clone, Default)]
pub struct PhaseStrategies {
    /// Sorted by key, keys distinct.
    slices: Vec<PhaseStrategy>,
    /// The key of each slice, when some key is not its slice's `phase_id` (or a slice was
    /// lent mutably); `None` means every key is its slice's `phase_id`.
    keys: Option<Vec<PhaseId>>,
}

impl PhaseStrategies {
    /// No slices.
    pub fn new() -> PhaseStrategies {
        PhaseStrategies::default()
    }

    /// The slices, each filed under its own `phase_id`; when two share an id the later
    /// one is kept (as inserting them into a map would). Free of copies when `slices` is
    /// already sorted by id without duplicates.
    pub fn from_slices(mut slices: Vec<PhaseStrategy>) -> PhaseStrategies {
        if !slices.windows(2).all(|w| w[0].phase_id < w[1].phase_id) {
            slices.sort_by(|a, b| a.phase_id.cmp(&b.phase_id));
            // Keep the last of each run of equal ids.
            slices.reverse();
            slices.dedup_by(|later, kept| later.phase_id == kept.phase_id);
            slices.reverse();
        }
        PhaseStrategies { slices, keys: None }
    }

    fn key(&self, i: usize) -> &PhaseId {
        match &self.keys {
            Some(keys) => &keys[i],
            None => &self.slices[i].phase_id,
        }
    }

    fn position<Q>(&self, key: &Q) -> Option<usize>
    where
        PhaseId: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match &self.keys {
            Some(keys) => keys.binary_search_by(|k| k.borrow().cmp(key)).ok(),
            None => self
                .slices
                .binary_search_by(|s| s.phase_id.borrow().cmp(key))
                .ok(),
        }
    }

    /// Copies every key out of its slice, before a slice is lent mutably (the caller may
    /// change its `phase_id`; its key does not change).
    fn pin_keys(&mut self) -> &mut Vec<PhaseId> {
        let slices = &self.slices;
        self.keys
            .get_or_insert_with(|| slices.iter().map(|s| s.phase_id.clone()).collect())
    }

    /// The slice filed under `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&PhaseStrategy>
    where
        PhaseId: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.position(key).map(|i| &self.slices[i])
    }

    /// The slice filed under `key`, mutably.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut PhaseStrategy>
    where
        PhaseId: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let i = self.position(key)?;
        self.pin_keys();
        self.slices.get_mut(i)
    }

    /// Whether a slice is filed under `key`.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        PhaseId: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.position(key).is_some()
    }

    /// Files `slice` under `key`; returns the slice it replaced.
    pub fn insert(&mut self, key: PhaseId, slice: PhaseStrategy) -> Option<PhaseStrategy> {
        let found = match &self.keys {
            Some(keys) => keys.binary_search(&key),
            None => self.slices.binary_search_by(|s| s.phase_id.cmp(&key)),
        };
        if self.keys.is_none() && key != slice.phase_id {
            self.pin_keys();
        }
        match found {
            Ok(i) => {
                if let Some(keys) = &mut self.keys {
                    keys[i] = key;
                }
                Some(std::mem::replace(&mut self.slices[i], slice))
            }
            Err(i) => {
                if let Some(keys) = &mut self.keys {
                    keys.insert(i, key);
                }
                self.slices.insert(i, slice);
                None
            }
        }
    }

    /// Removes the slice filed under `key`.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<PhaseStrategy>
    where
        PhaseId: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let i = self.position(key)?;
        if let Some(keys) = &mut self.keys {
            keys.remove(i);
        }
        Some(self.slices.remove(i))
    }

    /// Number of slices.
    pub fn len(&self) -> usize {
        self.slices.len()
    }

    /// Whether there is no slice.
    pub fn is_empty(&self) -> bool {
        self.slices.is_empty()
    }

    /// `(key, slice)` pairs, by key.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (&PhaseId, &PhaseStrategy)> + ExactSizeIterator {
        (0..self.slices.len()).map(|i| (self.key(i), &self.slices[i]))
    }

    /// Keys, sorted.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &PhaseId> + ExactSizeIterator {
        (0..self.slices.len()).map(|i| self.key(i))
    }

    /// Slices, by key.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &PhaseStrategy> + ExactSizeIterator {
        self.slices.iter()
    }

    /// Slices, by key, mutably.
    pub fn values_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = &mut PhaseStrategy> + ExactSizeIterator {
        self.pin_keys();
        self.slices.iter_mut()
    }
}

impl PartialEq for PhaseStrategies {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<Q> Index<&Q> for PhaseStrategies
where
    PhaseId: Borrow<Q>,
    Q: Ord + ?Sized,
{
    type Output = PhaseStrategy;

    /// # Panics
    /// When no slice is filed under `key` (as `BTreeMap` indexing does).
    fn index(&self, key: &Q) -> &PhaseStrategy {
        match self.get(key) {
            Some(slice) => slice,
            None => panic!("no phase strategy under this key"),
        }
    }
}

impl<'a> IntoIterator for &'a PhaseStrategies {
    type Item = (&'a PhaseId, &'a PhaseStrategy);
    type IntoIter = std::iter::Zip<PhaseKeys<'a>, std::slice::Iter<'a, PhaseStrategy>>;

    fn into_iter(self) -> Self::IntoIter {
        let keys = match &self.keys {
            Some(keys) => PhaseKeys::Stored(keys.iter()),
            None => PhaseKeys::Own(self.slices.iter()),
        };
        keys.zip(self.slices.iter())
    }
}

/// The keys of a [`PhaseStrategies`], by key (see `IntoIterator for &PhaseStrategies`).
#[derive(Debug, Clone)]
pub enum PhaseKeys<'a> {
    /// Each key is its slice's `phase_id`.
    Own(std::slice::Iter<'a, PhaseStrategy>),
    /// Keys stored apart from the slices.
    Stored(std::slice::Iter<'a, PhaseId>),
}

impl<'a> Iterator for PhaseKeys<'a> {
    type Item = &'a PhaseId;

    fn next(&mut self) -> Option<&'a PhaseId> {
        match self {
            PhaseKeys::Own(slices) => slices.next().map(|s| &s.phase_id),
            PhaseKeys::Stored(keys) => keys.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            PhaseKeys::Own(slices) => slices.size_hint(),
            PhaseKeys::Stored(keys) => keys.size_hint(),
        }
    }
}

impl IntoIterator for PhaseStrategies {
    type Item = (PhaseId, PhaseStrategy);
    type IntoIter = std::vec::IntoIter<(PhaseId, PhaseStrategy)>;

    fn into_iter(self) -> Self::IntoIter {
        let pairs: Vec<(PhaseId, PhaseStrategy)> = match self.keys {
            Some(keys) => keys.into_iter().zip(self.slices).collect(),
            None => self
                .slices
                .into_iter()
                .map(|s| (s.phase_id.clone(), s))
                .collect(),
        };
        pairs.into_iter()
    }
}

impl FromIterator<(PhaseId, PhaseStrategy)> for PhaseStrategies {
    fn from_iter<I: IntoIterator<Item = (PhaseId, PhaseStrategy)>>(iter: I) -> Self {
        let mut pairs: Vec<(PhaseId, PhaseStrategy)> = iter.into_iter().collect();
        if !pairs.windows(2).all(|w| w[0].0 < w[1].0) {
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            // Keep the last of each run of equal keys.
            pairs.reverse();
            pairs.dedup_by(|later, kept| later.0 == kept.0);
            pairs.reverse();
        }
        if pairs.iter().all(|(k, s)| *k == s.phase_id) {
            PhaseStrategies {
                slices: pairs.into_iter().map(|(_, s)| s).collect(),
                keys: None,
            }
        } else {
            let (keys, slices) = pairs.into_iter().unzip();
            PhaseStrategies {
                slices,
                keys: Some(keys),
            }
        }
    }
}

impl From<BTreeMap<PhaseId, PhaseStrategy>> for PhaseStrategies {
    fn from(map: BTreeMap<PhaseId, PhaseStrategy>) -> Self {
        map.into_iter().collect()
    }
}

impl From<PhaseStrategies> for BTreeMap<PhaseId, PhaseStrategy> {
    fn from(slices: PhaseStrategies) -> Self {
        slices.into_iter().collect()
    }
}

impl Serialize for PhaseStrategies {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.slices.len()))?;
        for (key, slice) in self.iter() {
            map.serialize_entry(key, slice)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for PhaseStrategies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SlicesVisitor;
        impl<'de> serde::de::Visitor<'de> for SlicesVisitor {
            type Value = PhaseStrategies;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of phase ids to phase strategies")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<PhaseStrategies, A::Error> {
                // A strategy we wrote lists its slices sorted, each under its own id: they
                // become the sorted `Vec` as they are, with no map built. Otherwise the
                // result is what a `BTreeMap` would hold (the last of equal keys wins).
                let mut slices: Vec<PhaseStrategy> =
                    Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 16));
                // Only built once a key differs from its slice's id.
                let mut keys: Option<Vec<PhaseId>> = None;
                while let Some((key, slice)) = map.next_entry::<PhaseId, PhaseStrategy>()? {
                    if let Some(keys) = &mut keys {
                        keys.push(key);
                    } else if key != slice.phase_id {
                        let mut pinned: Vec<PhaseId> =
                            slices.iter().map(|s| s.phase_id.clone()).collect();
                        pinned.push(key);
                        keys = Some(pinned);
                    }
                    slices.push(slice);
                }
                match keys {
                    None if slices.windows(2).all(|w| w[0].phase_id < w[1].phase_id) => {
                        Ok(PhaseStrategies { slices, keys: None })
                    }
                    None => Ok(PhaseStrategies::from_slices(slices)),
                    Some(keys) => Ok(keys
                        .into_iter()
                        .zip(slices)
                        .collect::<BTreeMap<_, _>>()
                        .into()),
                }
            }
        }
        deserializer.deserialize_map(SlicesVisitor)
    }
}

impl JsonSchema for PhaseStrategies {
    fn inline_schema() -> bool {
        <BTreeMap<PhaseId, PhaseStrategy> as JsonSchema>::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        <BTreeMap<PhaseId, PhaseStrategy> as JsonSchema>::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        <BTreeMap<PhaseId, PhaseStrategy> as JsonSchema>::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        <BTreeMap<PhaseId, PhaseStrategy> as JsonSchema>::json_schema(generator)
    }
}

/// Why a backlog key counts as `major` in this run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeReason {
    /// The backlog marked it `needs_cleanup`.
    NeedsCleanup,
    /// Its `age_in_runs` reached the runs threshold.
    AgedRuns,
    /// Its `age_in_tiers` reached the tiers threshold.
    AgedTiers,
}

/// A minor backlog key that counts as `major` in this run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeverityUpgrade {
    /// The key.
    pub issue_key: IssueKey,
    /// Its category.
    pub category: IssueCategory,
    /// Its recorded severity.
    pub base_severity: Severity,
    /// Its severity in this run.
    pub effective_severity: Severity,
    /// Why.
    pub reason: UpgradeReason,
    /// Distinct runs that saw it.
    pub age_in_runs: u32,
    /// Distinct tiers that saw it.
    pub age_in_tiers: u32,
}

/// Why some cleanup could not be scheduled.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CleanupLimit {
    /// `max_cleanup_phases_per_run` was reached.
    MaxCleanupPhasesPerRun,
    /// The run's `max_phases` left no room.
    MaxPhases,
    /// The plan has no tier to hold them.
    NoTier,
}

/// Something the engine noticed while compiling; never an error.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Diagnostic {
    /// A phase's category has no built-in or ruleset defaults; the fallback applied.
    CategoryFellBack {
        /// The phase.
        phase_id: PhaseId,
        /// Its category.
        task_category: TaskCategory,
    },
    /// A phase's builder mode is not one of the known labels.
    UnknownBuilderMode {
        /// The phase.
        phase_id: PhaseId,
        /// The label.
        builder_mode: BuilderMode,
    },
    /// A high-risk phase was planned below `high`; it was raised.
    HighRiskComplexityRaised {
        /// The phase.
        phase_id: PhaseId,
        /// The plan's complexity.
        planned: Complexity,
    },
    /// Keys needing cleanup were left for a later run.
    CleanupDidNotFit {
        /// Cleanup phases the keys would have needed.
        needed_phases: u32,
        /// Cleanup phases inserted.
        inserted_phases: u32,
        /// Keys left unscheduled.
        deferred_keys: u32,
        /// The limit that stopped insertion.
        limit: CleanupLimit,
    },
    /// The plan alone holds more phases than `max_phases`; it should be split.
    PlanExceedsMaxPhases {
        /// Planned phases.
        phases: u32,
        /// The cap.
        max_phases: u32,
    },
    /// A `single_tier` run was given a plan with several tiers.
    SingleTierRunWithManyTiers {
        /// Tiers in the plan.
        tiers: u32,
    },
}

impl Strategy {
    /// The run caps as the budget type.
    pub fn run_caps(&self) -> RunCaps {
        RunCaps {
            token_cap: self.run_token_cap,
            max_phases: self.run_max_phases,
            max_duration_minutes: self.run_max_duration_minutes,
            max_minor_issues_total: self.run_max_minor_issues_total,
        }
    }

    /// The slice of a phase.
    pub fn phase(&self, phase_id: &PhaseId) -> Option<&PhaseStrategy> {
        self.phase_strategies.get(phase_id)
    }

    /// The budgets of a tier.
    pub fn tier(&self, tier_id: &TierId) -> Option<&TierStrategy> {
        self.tier_strategies.get(tier_id)
    }

    /// Tiers in execution order (`tier_index`, then id).
    pub fn tiers_in_order(&self) -> Vec<&TierStrategy> {
        let mut tiers: Vec<_> = self.tier_strategies.values().collect();
        tiers.sort_by(|a, b| (a.tier_index, &a.tier_id).cmp(&(b.tier_index, &b.tier_id)));
        tiers
    }

    /// Phases in execution order: tier by tier, each tier's `phase_ids` in order.
    pub fn phases_in_order(&self) -> Vec<&PhaseStrategy> {
        self.tiers_in_order()
            .into_iter()
            .flat_map(|t| t.phase_ids.iter())
            .filter_map(|id| self.phase_strategies.get(id))
            .collect()
    }

    /// The plan the run executes: `plan` with the inserted cleanup phases appended.
    pub fn effective_plan(&self, plan: &Plan) -> Plan {
        let mut out = plan.clone();
        out.phases.extend(self.inserted_phases.iter().cloned());
        out
    }

    /// Pretty JSON with a trailing newline; identical strategies give identical bytes.
    pub fn to_json(&self) -> String {
        let mut out = serde_json::to_string_pretty(self).unwrap_or_default();
        out.push('\n');
        out
    }

    /// Reads a strategy strictly; `source` is named in errors.
    ///
    /// # Errors
    /// A [`JsonError`] with the JSON path.
    pub fn from_json(text: &str, source: &str) -> Result<Strategy, JsonError> {
        json::from_str(text, source)
    }

    /// A readable multi-line rendering (also available through `Display`).
    pub fn render_text(&self) -> String {
        self.to_string()
    }
}

/// `project_implementation_strategy_v{N}.json`.
pub fn strategy_file_name(version: u32) -> String {
    format!("project_implementation_strategy_v{version}.json")
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Strategy v{} for run {} (project {}, ruleset {})",
            self.version, self.run_id, self.project_id, self.ruleset_version
        )?;
        writeln!(
            f,
            "safety profile {}, run scope {}",
            self.safety_profile, self.run_scope
        )?;
        writeln!(
            f,
            "run caps: {} tokens, {} phases, {} minutes, {} minor issues",
            self.run_token_cap,
            self.run_max_phases,
            self.run_max_duration_minutes,
            self.run_max_minor_issues_total
        )?;
        writeln!(f, "aging: {}", self.aging_thresholds)?;
        for tier in self.tiers_in_order() {
            writeln!(f)?;
            writeln!(
                f,
                "tier {} {:?} (index {}{}): {} tokens, {} CI runs, {} minor / {} major tolerated",
                tier.tier_id,
                tier.name,
                tier.tier_index,
                if tier.high_risk { ", high-risk" } else { "" },
                tier.token_cap,
                tier.ci_run_cap,
                tier.max_minor_issues_tolerated,
                tier.max_major_issues_tolerated
            )?;
            for id in &tier.phase_ids {
                let Some(p) = self.phase_strategies.get(id) else {
                    continue;
                };
                write!(
                    f,
                    "  [{}] {} {} {}{} mode={} builder={} auditor={} tokens={} ci={}x{} {}",
                    p.phase_index,
                    p.phase_id,
                    p.task_category,
                    p.complexity,
                    if p.high_risk { " HIGH-RISK" } else { "" },
                    p.builder_mode,
                    p.max_builder_attempts,
                    p.max_auditor_attempts,
                    p.incident_token_cap,
                    p.ci_profile,
                    p.ci_max_retries,
                    if p.auto_apply {
                        "auto-apply"
                    } else {
                        "needs-approve"
                    },
                )?;
                if let Some(profile) = &p.auditor_profile {
                    write!(f, " audit={profile}")?;
                }
                if p.origin == PhaseOrigin::DebtCleanup {
                    write!(f, " cleanup of {} keys", p.cleanup_issue_keys.len())?;
                }
                writeln!(f)?;
            }
        }
        self.render_patch_policy(f)?;
        if !self.effective_severity_upgrades.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "effective severity upgrades ({}):",
                self.effective_severity_upgrades.len()
            )?;
            for u in &self.effective_severity_upgrades {
                writeln!(
                    f,
                    "  {} ({}) {} -> {}: {} ({} runs, {} tiers)",
                    u.issue_key,
                    u.category,
                    u.base_severity,
                    u.effective_severity,
                    u.reason,
                    u.age_in_runs,
                    u.age_in_tiers
                )?;
            }
        }
        if !self.diagnostics.is_empty() {
            writeln!(f)?;
            writeln!(f, "diagnostics ({}):", self.diagnostics.len())?;
            for d in &self.diagnostics {
                writeln!(f, "  {d}")?;
            }
        }
        Ok(())
    }
}

impl Strategy {
    /// The patch policy section of the text form: the limits of every builder mode a
    /// phase uses, the path limits, symlinks and the protected paths.
    fn render_patch_policy(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let policy = &self.patch_policy;
        writeln!(f)?;
        writeln!(
            f,
            "patch policy: paths ≤ {} bytes, components ≤ {} bytes, symlinks {}",
            policy.path_limits.max_path_bytes,
            policy.path_limits.max_component_bytes,
            if policy.allow_symlinks {
                "allowed"
            } else {
                "refused"
            }
        )?;
        let mut modes: Vec<&BuilderMode> = self
            .phase_strategies
            .values()
            .map(|p| &p.builder_mode)
            .collect();
        modes.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        modes.dedup();
        for mode in modes {
            let l = policy.limits_for(mode);
            writeln!(
                f,
                "  {mode}: {} files, {} changed lines, {} patch bytes, {} bytes per line, {} bytes per file{}",
                l.max_files,
                l.max_changed_lines,
                l.max_patch_bytes,
                l.max_line_bytes,
                l.max_file_bytes,
                if policy.builder_mode_limits.contains_key(mode.as_str()) {
                    " (ruleset)"
                } else {
                    ""
                }
            )?;
        }
        writeln!(
            f,
            "  protected ({} rules, plus the test runner scripts the CI commands name):",
            policy.protected_paths.len()
        )?;
        for rule in &policy.protected_paths {
            let action = match rule.action {
                autopack_core::patch_rules::ProtectedAction::Refuse => "refuse",
                autopack_core::patch_rules::ProtectedAction::AuditorApprove => "auditor_approve",
            };
            writeln!(f, "    {} {action}", rule.pattern)?;
        }
        Ok(())
    }
}

impl fmt::Display for UpgradeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpgradeReason::NeedsCleanup => "needs_cleanup",
            UpgradeReason::AgedRuns => "aged past the runs threshold",
            UpgradeReason::AgedTiers => "aged past the tiers threshold",
        })
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnostic::CategoryFellBack {
                phase_id,
                task_category,
            } => write!(
                f,
                "phase {phase_id}: category '{task_category}' is unknown; fallback defaults applied"
            ),
            Diagnostic::UnknownBuilderMode {
                phase_id,
                builder_mode,
            } => {
                write!(
                    f,
                    "phase {phase_id}: builder mode {builder_mode:?} is not a known label"
                )
            }
            Diagnostic::HighRiskComplexityRaised { phase_id, planned } => write!(
                f,
                "phase {phase_id}: high-risk phase planned as {planned}; raised to high"
            ),
            Diagnostic::CleanupDidNotFit {
                needed_phases,
                inserted_phases,
                deferred_keys,
                limit,
            } => {
                let why = match limit {
                    CleanupLimit::MaxCleanupPhasesPerRun => "max_cleanup_phases_per_run reached",
                    CleanupLimit::MaxPhases => "max_phases reached",
                    CleanupLimit::NoTier => "the plan has no tier",
                };
                write!(
                    f,
                    "debt cleanup needed {needed_phases} phases, {inserted_phases} inserted \
                     ({why}); {deferred_keys} keys deferred"
                )
            }
            Diagnostic::PlanExceedsMaxPhases { phases, max_phases } => write!(
                f,
                "the plan holds {phases} phases, more than max_phases {max_phases}; split it"
            ),
            Diagnostic::SingleTierRunWithManyTiers { tiers } => {
                write!(f, "single_tier run given a plan with {tiers} tiers")
            }
        }
    }
}
