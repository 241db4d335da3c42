//! Storage-agnostic traits for rulesets and strategies, with in-memory implementations.
//!
//! `autopack-layout` provides the filesystem adapters; both kinds run the conformance
//! suites of `crate::testing` (feature `testing`).
//!
//! Contracts:
//! - [`RulesetStore`]: versions are numbered 1, 2, 3, … per project; `save` assigns the next
//!   number and stores the ruleset with `version` rewritten to `v{N}`; saved versions never
//!   change.
//! - [`StrategyStore`]: a strategy is stored under its `run_id` and `version` and is
//!   frozen: saving the same bytes again succeeds (so a resumed run may repeat the save),
//!   saving different content under an existing version fails.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use autopack_core::ids::{ProjectId, RunId};

use crate::ruleset::Ruleset;
use crate::strategy::Strategy;

/// Versioned storage of project rulesets.
pub trait RulesetStore {
    /// The store's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Stores `ruleset` as the next version of its project and returns that version number.
    ///
    /// # Errors
    /// Storage failures.
    fn save_new_version(&self, ruleset: &Ruleset) -> Result<u32, Self::Error>;

    /// The latest version of a project's ruleset, if any.
    ///
    /// # Errors
    /// Storage or parse failures.
    fn load_latest(&self, project_id: &ProjectId) -> Result<Option<Ruleset>, Self::Error>;

    /// One version of a project's ruleset, if stored.
    ///
    /// # Errors
    /// Storage or parse failures.
    fn load_version(
        &self,
        project_id: &ProjectId,
        version: u32,
    ) -> Result<Option<Ruleset>, Self::Error>;

    /// The stored version numbers of a project, ascending.
    ///
    /// # Errors
    /// Storage failures.
    fn list_versions(&self, project_id: &ProjectId) -> Result<Vec<u32>, Self::Error>;
}

/// Storage of the frozen strategies of runs.
pub trait StrategyStore {
    /// The store's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Stores `strategy` under its `run_id` and `version`. Saving identical content again
    /// succeeds; different content under an existing version is an error.
    ///
    /// # Errors
    /// A conflict with a stored version, or storage failures.
    fn save(&self, strategy: &Strategy) -> Result<(), Self::Error>;

    /// One version of a run's strategy, if stored.
    ///
    /// # Errors
    /// Storage or parse failures.
    fn load(&self, run_id: &RunId, version: u32) -> Result<Option<Strategy>, Self::Error>;

    /// The highest stored version of a run's strategy, if any.
    ///
    /// # Errors
    /// Storage or parse failures.
    fn load_latest(&self, run_id: &RunId) -> Result<Option<Strategy>, Self::Error>;

    /// The stored version numbers of a run, ascending.
    ///
    /// # Errors
    /// Storage failures.
    fn list_versions(&self, run_id: &RunId) -> Result<Vec<u32>, Self::Error>;
}

/// Errors of the in-memory stores.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryStoreError {
    /// A different strategy is already stored under this run and version.
    #[error("strategy v{version} of run {run_id} is already stored with different content")]
    StrategyConflict {
        /// The run.
        run_id: RunId,
        /// The version.
        version: u32,
    },
    /// A project already holds `u32::MAX` ruleset versions.
    #[error("project {0} has no ruleset version number left")]
    VersionOverflow(ProjectId),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another thread cannot leave these maps half-updated: every update is a
    // single insert.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An in-memory [`RulesetStore`].
#[derive(Debug, Default)]
pub struct MemoryRulesetStore {
    rulesets: Mutex<BTreeMap<ProjectId, BTreeMap<u32, Ruleset>>>,
}

impl MemoryRulesetStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl RulesetStore for MemoryRulesetStore {
    type Error = MemoryStoreError;

    fn save_new_version(&self, ruleset: &Ruleset) -> Result<u32, MemoryStoreError> {
        let mut map = lock(&self.rulesets);
        let versions = map.entry(ruleset.project_id.clone()).or_default();
        let next = match versions.keys().next_back() {
            Some(last) => last
                .checked_add(1)
                .ok_or_else(|| MemoryStoreError::VersionOverflow(ruleset.project_id.clone()))?,
            None => 1,
        };
        let mut stored = ruleset.clone();
        stored.version = format!("v{next}");
        versions.insert(next, stored);
        Ok(next)
    }

    fn load_latest(&self, project_id: &ProjectId) -> Result<Option<Ruleset>, MemoryStoreError> {
        let map = lock(&self.rulesets);
        Ok(map
            .get(project_id)
            .and_then(|v| v.values().next_back().cloned()))
    }

    fn load_version(
        &self,
        project_id: &ProjectId,
        version: u32,
    ) -> Result<Option<Ruleset>, MemoryStoreError> {
        let map = lock(&self.rulesets);
        Ok(map.get(project_id).and_then(|v| v.get(&version).cloned()))
    }

    fn list_versions(&self, project_id: &ProjectId) -> Result<Vec<u32>, MemoryStoreError> {
        let map = lock(&self.rulesets);
        Ok(map
            .get(project_id)
            .map(|v| v.keys().copied().collect())
            .unwrap_or_default())
    }
}

/// An in-memory [`StrategyStore`].
#[derive(Debug, Default)]
pub struct MemoryStrategyStore {
    strategies: Mutex<BTreeMap<RunId, BTreeMap<u32, Strategy>>>,
}

impl MemoryStrategyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl StrategyStore for MemoryStrategyStore {
    type Error = MemoryStoreError;

    fn save(&self, strategy: &Strategy) -> Result<(), MemoryStoreError> {
        let mut map = lock(&self.strategies);
        let versions = map.entry(strategy.run_id.clone()).or_default();
        match versions.get(&strategy.version) {
            Some(existing) if existing == strategy => Ok(()),
            Some(_) => Err(MemoryStoreError::StrategyConflict {
                run_id: strategy.run_id.clone(),
                version: strategy.version,
            }),
            None => {
                versions.insert(strategy.version, strategy.clone());
                Ok(())
            }
        }
    }

    fn load(&self, run_id: &RunId, version: u32) -> Result<Option<Strategy>, MemoryStoreError> {
        let map = lock(&self.strategies);
        Ok(map.get(run_id).and_then(|v| v.get(&version).cloned()))
    }

    fn load_latest(&self, run_id: &RunId) -> Result<Option<Strategy>, MemoryStoreError> {
        let map = lock(&self.strategies);
        Ok(map
            .get(run_id)
            .and_then(|v| v.values().next_back().cloned()))
    }

    fn list_versions(&self, run_id: &RunId) -> Result<Vec<u32>, MemoryStoreError> {
        let map = lock(&self.strategies);
        Ok(map
            .get(run_id)
            .map(|v| v.keys().copied().collect())
            .unwrap_or_default())
    }
}
