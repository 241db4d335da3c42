//! One connection to the server, re-established with bounded backoff when it breaks, and
//! the schema migrated on the first connect.

use std::collections::HashMap;
use std::error::Error as _;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::{Client, NoTls, Statement};

use crate::error::PgStoreError;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Any 64-bit key for the advisory lock that serialises schema migrations of processes
/// connecting at once ("autopack" in ASCII).
const MIGRATION_LOCK: i64 = 0x6175_746f_7061_636b;

/// How long to keep trying when the server is unreachable or a transaction must be
/// retried: delays double from `first_delay` up to `max_delay`, until `max_wait` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay before the second attempt.
    pub first_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
    /// How long to keep trying in all; then the operation fails with
    /// [`PgStoreError::Unavailable`].
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    /// 50 ms doubling to 2 s, for up to 30 s: a server restart is waited out, a server
    /// that is gone ends the run within half a minute.
    fn default() -> RetryPolicy {
        RetryPolicy {
            first_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            max_wait: Duration::from_secs(30),
        }
    }
}

/// When appended entries become durable, as `autopack_layout::FsyncPolicy` for files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every append commits synchronously: durable when it returns.
    EveryEntry,
    /// Appends commit asynchronously (visible at once to every reader, durable within
    /// the server's `wal_writer_delay`) and a sync (a checkpoint) waits for the disk. A
    /// server *crash* can lose the appends since the last sync; a restart cannot. Lost
    /// entries are detected, never papered over ([`PgStoreError::LostEntries`]).
    #[default]
    AtCheckpoints,
}

/// Where the stores are and how they behave.
#[derive(Debug, Clone)]
pub struct PgConfig {
    config: postgres::Config,
    url: String,
    /// The retry policy.
    pub retry: RetryPolicy,
    /// When appends become durable.
    pub durability: Durability,
}

impl PgConfig {
    /// Parses a connection string (`postgres://user@host:port/db` or `host=... dbname=...`).
    ///
    /// # Errors
    /// [`PgStoreError::Url`] when it does not parse.
    pub fn new(url: &str) -> Result<PgConfig, PgStoreError> {
        let mut config = postgres::Config::from_str(url).map_err(|e| PgStoreError::Url {
            message: format!("{e} (expected postgres://user@host:port/database)"),
        })?;
        if config.get_application_name().is_none() {
            config.application_name("autopack");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        Ok(PgConfig {
            config,
            url: url.to_owned(),
            retry: RetryPolicy::default(),
            durability: Durability::default(),
        })
    }

    /// The same configuration with another retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> PgConfig {
        self.retry = retry;
        self
    }

    /// The same configuration with another durability.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> PgConfig {
        self.durability = durability;
        self
    }

    /// The connection string as given (it may hold a password: never log it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server and database, without credentials, for messages.
    pub fn server(&self) -> String {
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .map(|h| match h {
                postgres::config::Host::Tcp(name) => name.clone(),
                postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let db = self.config.get_dbname().unwrap_or("(default database)");
        format!("{}:{port}/{db}", hosts.join(","))
    }
}

/// Whether a failure is worth another attempt, and whether the connection must be made
/// again first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    No,
    /// The transaction lost a race (serialisation failure, deadlock): run it again.
    Transaction,
    /// The connection is gone or the server is restarting: reconnect, then run it again.
    Reconnect,
}

fn classify(error: &postgres::Error) -> Retry {
    if let Some(code) = error.code() {
        return if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
        {
            Retry::Transaction
        } else if code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
        {
            Retry::Reconnect
        } else {
            Retry::No
        };
    }
    let io = error
        .source()
        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
    if error.is_closed() || io || error.to_string().starts_with("error connecting") {
        Retry::Reconnect
    } else {
        Retry::No
    }
}

/// A live connection and the statements prepared on it.
pub struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    /// `sql` prepared on this connection, once: a query sent as text is parsed and
    /// planned by the server at every call, one round trip more.
    ///
    /// # Errors
    /// The server refuses the statement.
    pub fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }
}

impl Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

struct Inner {
    client: Option<Conn>,
    migrated: bool,
}

/// A connection to the server shared by the stores made from it (clones share it). Every
/// operation runs through [`Db::with`], which reconnects with bounded backoff when the
/// connection breaks and runs the operation again: the stores' operations are written to
/// be safe to run twice (a retried append finds its own rows).
#[derive(Clone)]
pub struct Db {
    config: Arc<PgConfig>,
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("server", &self.config.server())
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Connects (waiting for the server within the retry policy) and migrates the schema
    /// to this version's.
    ///
    /// # Errors
    /// [`PgStoreError::Unavailable`] when the server cannot be reached,
    /// [`PgStoreError::Migration`] when the schema cannot be brought up to date.
    pub fn connect(config: PgConfig) -> Result<Db, PgStoreError> {
        let db = Db {
            config: Arc::new(config),
            inner: Arc::new(Mutex::new(Inner {
                client: None,
                migrated: false,
            })),
        };
        db.with("connect", |_| Ok(()))?;
        Ok(db)
    }

    /// Connects to `url` with the default policies.
    ///
    /// # Errors
    /// As [`Db::connect`], or [`PgStoreError::Url`].
    pub fn open(url: &str) -> Result<Db, PgStoreError> {
        Db::connect(PgConfig::new(url)?)
    }

    /// The configuration.
    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// A second, independent connection to the same server (for work that must not wait
    /// behind this one, such as a lease's heartbeat).
    ///
    /// # Errors
    /// As [`Db::connect`].
    pub fn reconnect_separately(&self) -> Result<Db, PgStoreError> {
        Db::connect((*self.config).clone())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves at worst a broken connection, which the
        // next operation replaces.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn establish(&self, inner: &mut Inner) -> Result<(), Failure> {
        if inner.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        inner.client = None;
        let mut client = self.config.config.connect(NoTls)?;
        if self.config.durability == Durability::AtCheckpoints {
            client.batch_execute("SET synchronous_commit = off")?;
        }
        if !inner.migrated {
            migrate(&mut client)?;
            inner.migrated = true;
        }
        inner.client = Some(Conn {
            client,
            statements: HashMap::new(),
        });
        Ok(())
    }

    /// Runs `op` on the connection; on a connection failure reconnects and runs it again,
    /// on a lost transaction race runs it again, each after a growing delay, until the
    /// retry policy's time is up.
    ///
    /// # Errors
    /// [`PgStoreError::Unavailable`] when the time is up, [`PgStoreError::Query`] for any
    /// other failure of `op`, [`PgStoreError::Migration`] when the schema cannot be migrated.
    pub fn with<T>(
        &self,
        operation: &str,
        op: impl FnMut(&mut Conn) -> Result<T, postgres::Error>,
    ) -> Result<T, PgStoreError> {
        self.with_policy(self.config.retry, operation, op)
    }

    /// [`Db::with`] under another retry policy (a quick one where waiting would hold a
    /// process up for nothing, such as releasing a lease that expires anyway).
    ///
    /// # Errors
    /// As [`Db::with`].
    pub fn with_policy<T>(
        &self,
        retry: RetryPolicy,
        operation: &str,
        mut op: impl FnMut(&mut Conn) -> Result<T, postgres::Error>,
    ) -> Result<T, PgStoreError> {
        let started = Instant::now();
        let mut delay = retry.first_delay;
        let mut attempts = 0u32;
        let mut inner = self.lock();
        loop {
            attempts += 1;
            let outcome = match self.establish(&mut inner) {
                Err(Failure::Migration(message)) => {
                    return Err(PgStoreError::Migration { message });
                }
                Err(Failure::Pg(error)) => Err(error),
                Ok(()) => match inner.client.as_mut() {
                    Some(client) => op(client),
                    None => unreachable!("establish leaves a client on success"),
                },
            };
            let error = match outcome {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let kind = classify(&error);
            if kind == Retry::No {
                return Err(PgStoreError::Query {
                    operation: operation.to_owned(),
                    source: error,
                });
            }
            if kind == Retry::Reconnect {
                inner.client = None;
            }
            let waited = started.elapsed();
            if waited + delay > retry.max_wait {
                return Err(PgStoreError::Unavailable {
                    server: self.config.server(),
                    operation: operation.to_owned(),
                    attempts,
                    waited,
                    source: error,
                });
            }
            tracing::warn!(
                server = %self.config.server(),
                operation,
                attempt = attempts,
                error = %error,
                "PostgreSQL operation failed; retrying in {delay:?}"
            );
            std::thread::sleep(delay);
            delay = (delay * 2).min(retry.max_delay);
        }
    }

    /// Runs `op` in a transaction (retried as a whole, as [`Db::with`]). When `durable`,
    /// its commit waits for the disk whatever the connection's durability.
    ///
    /// # Errors
    /// As [`Db::with`].
    pub fn transaction<T>(
        &self,
        operation: &str,
        durable: bool,
        mut op: impl FnMut(&mut postgres::Transaction<'_>) -> Result<T, postgres::Error>,
    ) -> Result<T, PgStoreError> {
        self.with(operation, |client| {
            let mut tx = client.transaction()?;
            if durable {
                tx.batch_execute("SET LOCAL synchronous_commit = on")?;
            }
            let value = op(&mut tx)?;
            tx.commit()?;
            Ok(value)
        })
    }
}

impl Db {
    /// Makes every commit this connection (and any other) made so far durable: a
    /// transaction that takes a transaction id commits synchronously, and a synchronous
    /// commit flushes the write-ahead log up to its own record, which follows them all. It
    /// writes no row, so it waits behind no lock.
    ///
    /// # Errors
    /// As [`Db::with`].
    pub fn sync(&self) -> Result<(), PgStoreError> {
        self.transaction("make appends durable", true, |tx| {
            tx.query_one("SELECT txid_current()", &[]).map(drop)
        })
    }
}

/// Why a connection could not be made ready.
enum Failure {
    Pg(postgres::Error),
    Migration(String),
}

impl From<postgres::Error> for Failure {
    fn from(error: postgres::Error) -> Failure {
        Failure::Pg(error)
    }
}

/// Migrates under an advisory lock, so processes connecting at once migrate one at a time
/// (the later ones find nothing to do).
fn migrate(client: &mut Client) -> Result<(), Failure> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let result = embedded::migrations::runner()
        .run(client)
        .map(drop)
        .map_err(|e| Failure::Migration(e.to_string()));
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    result?;
    unlocked?;
    Ok(())
}
