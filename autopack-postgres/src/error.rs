//! The one error type of every PostgreSQL store.

use std::time::Duration;

/// Why a PostgreSQL store failed. Every variant names what it was doing and, for bad data,
/// the table and key at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgStoreError {
    /// The connection string does not parse.
    #[error("store URL: {message}")]
    Url {
        /// What is wrong with it.
        message: String,
    },
    /// The server could not be reached (or reached again) within the retry policy.
    #[error(
        "PostgreSQL at {server} is unreachable: {operation} gave up after {attempts} attempts over {waited:?}: {source}"
    )]
    Unavailable {
        /// The server, without credentials.
        server: String,
        /// What the store was doing.
        operation: String,
        /// How many times it tried.
        attempts: u32,
        /// How long it kept trying.
        waited: Duration,
        /// The last failure.
        #[source]
        source: postgres::Error,
    },
    /// The server refused a statement (not a connection failure).
    #[error("PostgreSQL: {operation}: {source}")]
    Query {
        /// What the store was doing.
        operation: String,
        /// The server's error.
        #[source]
        source: postgres::Error,
    },
    /// The schema could not be migrated.
    #[error("PostgreSQL schema migration failed: {message}")]
    Migration {
        /// The migration tool's error.
        message: String,
    },
    /// A row does not hold what the store wrote (hand-edited, hostile, or from a newer
    /// version).
    #[error("table {table}, {key}: {message}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row's key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// Another writer got there first (a journal entry, a strategy version, a lease).
    #[error("table {table}, {key}: {message}")]
    Conflict {
        /// The table.
        table: &'static str,
        /// The row's key.
        key: String,
        /// What conflicts.
        message: String,
    },
    /// The database lost entries this process had written and read (a server that crashed
    /// before unsynchronised commits reached its disk).
    #[error(
        "table {table}, {key}: the database holds entries up to {found}, but {expected} were written; entries written since the last sync were lost in a server crash"
    )]
    LostEntries {
        /// The table.
        table: &'static str,
        /// The journal's key.
        key: String,
        /// The last entry this process wrote or read.
        expected: u64,
        /// The last entry the database holds.
        found: u64,
    },
    /// A value given to the store is not acceptable (an entry with a newline, say).
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault.
        field: String,
        /// Why.
        message: String,
    },
}

impl PgStoreError {
    pub(crate) fn corrupt(
        table: &'static str,
        key: impl Into<String>,
        message: impl ToString,
    ) -> Self {
        PgStoreError::Corrupt {
            table,
            key: key.into(),
            message: message.to_string(),
        }
    }

    pub(crate) fn conflict(
        table: &'static str,
        key: impl Into<String>,
        message: impl ToString,
    ) -> Self {
        PgStoreError::Conflict {
            table,
            key: key.into(),
            message: message.to_string(),
        }
    }

    /// Whether the database could not be reached (as opposed to refusing or holding bad
    /// data): a host may wait and try again later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, PgStoreError::Unavailable { .. })
    }
}
