//! [`PgRunStore`]: run journals in the `run_journal` table.

use std::collections::HashMap;

use autopack_core::ids::RunId;
use autopack_core::journal::{JournalContents, RunStore};

use crate::connection::{Db, Durability};
use crate::error::PgStoreError;

const TABLE: &str = "run_journal";

/// Appends entry `$3` as number `$2` of run `$1` only when it comes right after the last
/// one stored: two writers cannot both write entry N, and an entry lost in a server
/// crash cannot be followed by a later one (a gap would be replayed as if nothing was
/// missing).
const APPEND: &str = "INSERT INTO run_journal (run_id, seq, entry)
    SELECT $1::text, $2::bigint, $3::text
    WHERE coalesce((SELECT max(seq) FROM run_journal WHERE run_id = $1), 0) = $2::bigint - 1
    ON CONFLICT DO NOTHING";

/// [`APPEND`], and only while lease token `$4` holds the run.
const APPEND_FENCED: &str = "INSERT INTO run_journal (run_id, seq, entry)
    SELECT $1::text, $2::bigint, $3::text
    WHERE coalesce((SELECT max(seq) FROM run_journal WHERE run_id = $1), 0) = $2::bigint - 1
      AND EXISTS (SELECT 1 FROM run_leases WHERE run_id = $1 AND token = $4)
    ON CONFLICT DO NOTHING";

/// Lists a run (with its first entry).
const LIST_RUN: &str = "INSERT INTO runs (run_id) VALUES ($1) ON CONFLICT DO NOTHING";

/// Run journals in PostgreSQL: entry N of a run is row `(run_id, N)`. See the
/// [crate docs](crate) for durability and concurrency.
///
/// Appends are checked against the stored journal: a second writer appending to the same
/// run gets [`PgStoreError::Conflict`] at its first append (run leases keep it from trying),
/// and a journal that lost entries in a server crash gets [`PgStoreError::LostEntries`],
/// never a silent gap.
#[derive(Debug)]
pub struct PgRunStore {
    db: Db,
    /// The number of entries of each run this store has read or written.
    lengths: HashMap<RunId, i64>,
    /// The run and lease token whose appends must hold the lease.
    fence: Option<(RunId, String)>,
}

impl PgRunStore {
    /// A store on `db`.
    pub fn new(db: Db) -> PgRunStore {
        PgRunStore {
            db,
            lengths: HashMap::new(),
            fence: None,
        }
    }

    /// The same store, appending to `lease`'s run only while `lease` holds it: a writer
    /// whose lease expired and was taken over cannot append another entry (a fencing
    /// token, checked by the server in the append itself).
    #[must_use]
    pub fn fenced_by(mut self, lease: &crate::PgRunLease) -> PgRunStore {
        self.fence = Some((lease.run_id().clone(), lease.token().to_owned()));
        self
    }

    fn lease_held(&self, run_id: &RunId, token: &str) -> Result<bool, PgStoreError> {
        self.db.with("check a run lease", |c| {
            c.query_opt(
                "SELECT 1 FROM run_leases WHERE run_id = $1 AND token = $2",
                &[&run_id.as_str(), &token],
            )
            .map(|row| row.is_some())
        })
    }

    fn key(run_id: &RunId, seq: i64) -> String {
        format!("run {run_id} entry {seq}")
    }

    fn stored_length(&self, run_id: &RunId) -> Result<i64, PgStoreError> {
        self.db.with("read the length of a run journal", |c| {
            c.query_one(
                "SELECT coalesce(max(seq), 0) FROM run_journal WHERE run_id = $1",
                &[&run_id.as_str()],
            )
            .map(|row| row.get::<_, i64>(0))
        })
    }
}

impl RunStore for PgRunStore {
    type Error = PgStoreError;

    fn append(&mut self, run_id: &RunId, entry: &str) -> Result<(), PgStoreError> {
        if entry.contains('\n') {
            return Err(PgStoreError::Invalid {
                field: format!("journal entry of run {run_id}"),
                message: "holds a newline, which would split it in two".to_owned(),
            });
        }
        let length = match self.lengths.get(run_id) {
            Some(&n) => n,
            None => self.stored_length(run_id)?,
        };
        let seq = length + 1;
        let fence = self
            .fence
            .as_ref()
            .filter(|(run, _)| run == run_id)
            .map(|(_, token)| token.as_str());
        if seq == 1 {
            self.db.with("list a run", |c| {
                let list = c.statement(LIST_RUN)?;
                c.execute(&list, &[&run_id.as_str()])
            })?;
        }
        let inserted = self.db.with("append to a run journal", |c| match fence {
            Some(token) => {
                let append = c.statement(APPEND_FENCED)?;
                c.execute(&append, &[&run_id.as_str(), &seq, &entry, &token])
            }
            None => {
                let append = c.statement(APPEND)?;
                c.execute(&append, &[&run_id.as_str(), &seq, &entry])
            }
        })?;
        if inserted == 0 {
            // Our own insert whose reply was lost with the connection, another writer's
            // entry, or a journal shorter than we knew.
            let stored: Option<String> = self.db.with("read a run journal entry", |c| {
                c.query_opt(
                    "SELECT entry FROM run_journal WHERE run_id = $1 AND seq = $2",
                    &[&run_id.as_str(), &seq],
                )
                .map(|row| row.map(|r| r.get(0)))
            })?;
            match stored {
                Some(text) if text == entry => {}
                Some(_) => {
                    return Err(PgStoreError::conflict(
                        TABLE,
                        Self::key(run_id, seq),
                        "another writer appended this entry; a run has one writer (take its lease)",
                    ));
                }
                None if fence
                    .is_some_and(|token| !self.lease_held(run_id, token).unwrap_or(true)) =>
                {
                    return Err(PgStoreError::conflict(
                        "run_leases",
                        format!("run {run_id}"),
                        "this writer's lease expired and was taken over; it may not append",
                    ));
                }
                None => {
                    let found = self.stored_length(run_id)?;
                    return Err(PgStoreError::LostEntries {
                        table: TABLE,
                        key: format!("run {run_id}"),
                        expected: u64::try_from(length).unwrap_or(0),
                        found: u64::try_from(found).unwrap_or(0),
                    });
                }
            }
        }
        self.lengths.insert(run_id.clone(), seq);
        Ok(())
    }

    fn read(&mut self, run_id: &RunId) -> Result<JournalContents, PgStoreError> {
        let rows = self.db.with("read a run journal", |c| {
            c.query(
                "SELECT seq, entry FROM run_journal WHERE run_id = $1 ORDER BY seq",
                &[&run_id.as_str()],
            )
        })?;
        let mut entries = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let seq: i64 = row.get(0);
            let entry: String = row.get(1);
            let expected = i64::try_from(i).unwrap_or(i64::MAX) + 1;
            if seq != expected {
                return Err(PgStoreError::corrupt(
                    TABLE,
                    Self::key(run_id, expected),
                    format!("missing: the journal jumps to entry {seq}"),
                ));
            }
            if entry.contains('\n') {
                return Err(PgStoreError::corrupt(
                    TABLE,
                    Self::key(run_id, seq),
                    "holds a newline",
                ));
            }
            entries.push(entry);
        }
        let length = i64::try_from(entries.len()).unwrap_or(i64::MAX);
        if let Some(&known) = self.lengths.get(run_id)
            && known > length
        {
            return Err(PgStoreError::LostEntries {
                table: TABLE,
                key: format!("run {run_id}"),
                expected: u64::try_from(known).unwrap_or(0),
                found: u64::try_from(length).unwrap_or(0),
            });
        }
        self.lengths.insert(run_id.clone(), length);
        Ok(JournalContents::from_entries(entries))
    }

    fn sync(&mut self, run_id: &RunId) -> Result<(), PgStoreError> {
        let length = self.lengths.get(run_id).copied().unwrap_or(0);
        if length == 0 {
            return Ok(());
        }
        // A synchronous commit flushes the write-ahead log up to its own record, and with
        // it every asynchronous commit before: this makes every appended entry durable.
        let durable = self.db.config().durability == Durability::AtCheckpoints;
        self.db.transaction("sync a run journal", durable, |tx| {
            tx.execute(
                "UPDATE runs SET synced_seq = $2, synced_at = now() WHERE run_id = $1",
                &[&run_id.as_str(), &length],
            )
        })?;
        Ok(())
    }

    fn runs(&mut self) -> Result<Vec<RunId>, PgStoreError> {
        let rows = self
            .db
            .with("list runs", |c| c.query("SELECT run_id FROM runs", &[]))?;
        let mut runs = Vec::with_capacity(rows.len());
        for row in rows {
            let text: String = row.get(0);
            let id = RunId::new(&text)
                .map_err(|e| PgStoreError::corrupt("runs", format!("run {text:?}"), e))?;
            runs.push(id);
        }
        // Byte order, as the filesystem store lists them (the server's collation may differ).
        runs.sort();
        Ok(runs)
    }
}
