//! [`PgRulesetStore`] and [`PgStrategyStore`]: rulesets and frozen strategies.

use std::sync::atomic::{AtomicU64, Ordering};

use autopack_core::ids::{ProjectId, RunId};
use autopack_strategy::{Ruleset, RulesetStore, Strategy, StrategyStore};

use crate::connection::Db;
use crate::error::PgStoreError;

/// Project rulesets, versioned 1, 2, 3, … per project (the `rulesets` table).
#[derive(Debug)]
pub struct PgRulesetStore {
    db: Db,
    writer: String,
    saves: AtomicU64,
}

impl PgRulesetStore {
    /// A store on `db`.
    pub fn new(db: Db) -> PgRulesetStore {
        PgRulesetStore {
            db,
            writer: crate::writer_id(),
            saves: AtomicU64::new(0),
        }
    }

    /// The projects that have a ruleset, sorted.
    ///
    /// # Errors
    /// The database's errors; a stored project id that is not valid.
    pub fn projects(&self) -> Result<Vec<ProjectId>, PgStoreError> {
        let rows = self.db.with("list projects", |c| {
            c.query("SELECT DISTINCT project_id FROM rulesets", &[])
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let text: String = row.get(0);
            out.push(
                ProjectId::new(&text).map_err(|e| {
                    PgStoreError::corrupt("rulesets", format!("project {text:?}"), e)
                })?,
            );
        }
        out.sort();
        Ok(out)
    }

    fn parse(project: &ProjectId, version: i32, text: &str) -> Result<Ruleset, PgStoreError> {
        let key = format!("project {project} version {version}");
        let ruleset = Ruleset::from_json(text, &format!("rulesets {key}"))
            .map_err(|e| PgStoreError::corrupt("rulesets", key.clone(), e))?;
        if &ruleset.project_id != project {
            return Err(PgStoreError::corrupt(
                "rulesets",
                key,
                format!("holds the ruleset of project {}", ruleset.project_id),
            ));
        }
        Ok(ruleset)
    }
}

fn version_u32(table: &'static str, key: &str, version: i32) -> Result<u32, PgStoreError> {
    u32::try_from(version).map_err(|_| {
        PgStoreError::corrupt(
            table,
            key.to_owned(),
            format!("version {version} is not positive"),
        )
    })
}

impl RulesetStore for PgRulesetStore {
    type Error = PgStoreError;

    fn save_new_version(&self, ruleset: &Ruleset) -> Result<u32, PgStoreError> {
        let project = ruleset.project_id.as_str();
        let token = format!(
            "{}#{}",
            self.writer,
            self.saves.fetch_add(1, Ordering::Relaxed)
        );
        let version = self.db.transaction("save a ruleset", true, |tx| {
            // A retry of a save whose commit succeeded finds its row.
            if let Some(row) = tx.query_opt(
                "SELECT version FROM rulesets WHERE saved_by = $1",
                &[&token],
            )? {
                return Ok(row.get::<_, i32>(0));
            }
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('autopack ruleset ' || $1))",
                &[&project],
            )?;
            let last: i32 = tx
                .query_one(
                    "SELECT coalesce(max(version), 0) FROM rulesets WHERE project_id = $1",
                    &[&project],
                )?
                .get(0);
            let next = last.saturating_add(1);
            let mut stored = ruleset.clone();
            stored.version = format!("v{next}");
            tx.execute(
                "INSERT INTO rulesets (project_id, version, ruleset, saved_by) VALUES ($1, $2, $3, $4)",
                &[&project, &next, &stored.to_json(), &token],
            )?;
            Ok(next)
        })?;
        version_u32("rulesets", &format!("project {project}"), version)
    }

    fn load_latest(&self, project_id: &ProjectId) -> Result<Option<Ruleset>, PgStoreError> {
        let row = self.db.with("read a ruleset", |c| {
            c.query_opt(
                "SELECT version, ruleset FROM rulesets WHERE project_id = $1 ORDER BY version DESC LIMIT 1",
                &[&project_id.as_str()],
            )
        })?;
        row.map(|r| Self::parse(project_id, r.get(0), r.get::<_, &str>(1)))
            .transpose()
    }

    fn load_version(
        &self,
        project_id: &ProjectId,
        version: u32,
    ) -> Result<Option<Ruleset>, PgStoreError> {
        let Ok(v) = i32::try_from(version) else {
            return Ok(None);
        };
        let row = self.db.with("read a ruleset", |c| {
            c.query_opt(
                "SELECT ruleset FROM rulesets WHERE project_id = $1 AND version = $2",
                &[&project_id.as_str(), &v],
            )
        })?;
        row.map(|r| Self::parse(project_id, v, r.get::<_, &str>(0)))
            .transpose()
    }

    fn list_versions(&self, project_id: &ProjectId) -> Result<Vec<u32>, PgStoreError> {
        let rows = self.db.with("list ruleset versions", |c| {
            c.query(
                "SELECT version FROM rulesets WHERE project_id = $1 ORDER BY version",
                &[&project_id.as_str()],
            )
        })?;
        let key = format!("project {project_id}");
        rows.iter()
            .map(|r| version_u32("rulesets", &key, r.get(0)))
            .collect()
    }
}

/// Frozen strategies of runs, by run and version (the `strategies` table).
#[derive(Debug)]
pub struct PgStrategyStore {
    db: Db,
}

impl PgStrategyStore {
    /// A store on `db`.
    pub fn new(db: Db) -> PgStrategyStore {
        PgStrategyStore { db }
    }

    fn parse(run_id: &RunId, version: i32, text: &str) -> Result<Strategy, PgStoreError> {
        let key = format!("run {run_id} version {version}");
        let strategy = Strategy::from_json(text, &format!("strategies {key}"))
            .map_err(|e| PgStoreError::corrupt("strategies", key.clone(), e))?;
        if &strategy.run_id != run_id || i64::from(strategy.version) != i64::from(version) {
            return Err(PgStoreError::corrupt(
                "strategies",
                key,
                format!(
                    "holds strategy v{} of run {}",
                    strategy.version, strategy.run_id
                ),
            ));
        }
        Ok(strategy)
    }
}

impl StrategyStore for PgStrategyStore {
    type Error = PgStoreError;

    fn save(&self, strategy: &Strategy) -> Result<(), PgStoreError> {
        let run = strategy.run_id.as_str();
        let key = format!("run {run} version {}", strategy.version);
        let version = i32::try_from(strategy.version).map_err(|_| PgStoreError::Invalid {
            field: "strategy.version".to_owned(),
            message: format!("{} is out of range", strategy.version),
        })?;
        let text = strategy.to_json();
        let stored: String = self.db.transaction("save a strategy", true, |tx| {
            tx.execute(
                "INSERT INTO strategies (run_id, version, strategy) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&run, &version, &text],
            )?;
            tx.query_one(
                "SELECT strategy FROM strategies WHERE run_id = $1 AND version = $2",
                &[&run, &version],
            )
            .map(|r| r.get(0))
        })?;
        if stored == text {
            Ok(())
        } else {
            Err(PgStoreError::conflict(
                "strategies",
                key,
                "already stored with different content; a strategy is frozen once saved",
            ))
        }
    }

    fn load(&self, run_id: &RunId, version: u32) -> Result<Option<Strategy>, PgStoreError> {
        let Ok(v) = i32::try_from(version) else {
            return Ok(None);
        };
        let row = self.db.with("read a strategy", |c| {
            c.query_opt(
                "SELECT strategy FROM strategies WHERE run_id = $1 AND version = $2",
                &[&run_id.as_str(), &v],
            )
        })?;
        row.map(|r| Self::parse(run_id, v, r.get::<_, &str>(0)))
            .transpose()
    }

    fn load_latest(&self, run_id: &RunId) -> Result<Option<Strategy>, PgStoreError> {
        let row = self.db.with("read a strategy", |c| {
            c.query_opt(
                "SELECT version, strategy FROM strategies WHERE run_id = $1 ORDER BY version DESC LIMIT 1",
                &[&run_id.as_str()],
            )
        })?;
        row.map(|r| Self::parse(run_id, r.get(0), r.get::<_, &str>(1)))
            .transpose()
    }

    fn list_versions(&self, run_id: &RunId) -> Result<Vec<u32>, PgStoreError> {
        let rows = self.db.with("list strategy versions", |c| {
            c.query(
                "SELECT version FROM strategies WHERE run_id = $1 ORDER BY version",
                &[&run_id.as_str()],
            )
        })?;
        let key = format!("run {run_id}");
        rows.iter()
            .map(|r| version_u32("strategies", &key, r.get(0)))
            .collect()
    }
}
