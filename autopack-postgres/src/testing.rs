//! A throwaway PostgreSQL server for tests, and the stores' conformance runs.
//!
//! [`TestServer::start`] runs `initdb` into a temporary directory and starts the server on
//! a free loopback port (trust authentication, loopback only). PostgreSQL refuses to run
//! as root, so under root the server runs as the unprivileged user `postgres` (Debian's
//! package creates it; `.ci/run` creates it when missing). The binaries are taken from
//! `AUTOPACK_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`, else `PATH`.
//!
//! With `AUTOPACK_TEST_POSTGRES_URL` set, [`shared`] uses that server instead (the role
//! needs `CREATEDB`). Every test gets a database of its own ([`TestServer::database`]).
//! There is no skipping: without a server, tests fail with a message saying what to
//! install.
//!
//! A started server is stopped when its [`TestServer`] is dropped, and also when the test
//! process ends without dropping it (the [`shared`] one is never dropped; a watcher
//! process stops it once the test process is gone), so no server outlives its tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::connection::Db;

/// Why a test server could not be had.
#[derive(Debug, thiserror::Error)]
#[error("test PostgreSQL server: {0}")]
pub struct TestServerError(String);

fn fail(message: impl Into<String>) -> TestServerError {
    TestServerError(message.into())
}

/// A PostgreSQL server for tests: one this process started, or an existing one.
#[derive(Debug)]
pub struct TestServer {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Started(Started),
    External { url: String },
}

#[derive(Debug)]
struct Started {
    /// Holds `data/` and the log; removed on drop.
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// The uid and gid the server runs as, when this process is root.
    run_as: Option<(u32, u32)>,
}

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

/// The server this test process shares between its tests: `AUTOPACK_TEST_POSTGRES_URL`'s,
/// or one started on first use.
///
/// # Panics
/// When no server can be had: the message says why and what to install.
pub fn shared() -> &'static TestServer {
    static SHARED: OnceLock<TestServer> = OnceLock::new();
    SHARED.get_or_init(|| {
        let server = match std::env::var("AUTOPACK_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Ok(TestServer {
                kind: Kind::External { url },
            }),
            _ => TestServer::start(),
        };
        server.unwrap_or_else(|e| panic!("{e}"))
    })
}

/// A fresh database on the [`shared`] server, connected with the default policies.
///
/// # Panics
/// When no server can be had or the database cannot be created.
pub fn fresh_db() -> Db {
    let url = shared().database().unwrap_or_else(|e| panic!("{e}"));
    Db::open(&url).unwrap_or_else(|e| panic!("connecting to the test database: {e}"))
}

impl TestServer {
    /// Starts a server of this process's own (a test that restarts its server needs one).
    ///
    /// # Errors
    /// When the binaries are missing, `initdb` fails, or the server does not come up.
    pub fn start() -> Result<TestServer, TestServerError> {
        let bin = binaries()?;
        let run_as = unprivileged_user()?;
        let dir = tempfile::Builder::new()
            .prefix("autopack-pg-")
            .tempdir()
            .map_err(|e| fail(format!("temporary directory: {e}")))?;
        if let Some((uid, gid)) = run_as {
            nix::unistd::chown(dir.path(), Some(uid.into()), Some(gid.into()))
                .map_err(|e| fail(format!("chown {}: {e}", dir.path().display())))?;
        }
        let data = dir.path().join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "-U",
                "autopack",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-instructions",
                "-D",
            ])
            .arg(&data);
        run(&mut initdb, run_as, dir.path())?;
        let port = free_port()?;
        let server = Started {
            dir,
            bin,
            port,
            run_as,
        };
        server.write_settings()?;
        server.pg_ctl_start()?;
        server.watch_parent()?;
        Ok(TestServer {
            kind: Kind::Started(server),
        })
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        match &self.kind {
            Kind::Started(s) => format!("postgres://autopack@127.0.0.1:{}/{db}", s.port),
            Kind::External { url } => with_database(url, db),
        }
    }

    /// Creates a new, empty database and returns its URL.
    ///
    /// # Errors
    /// When the server refuses.
    pub fn database(&self) -> Result<String, TestServerError> {
        let name = format!(
            "autopack_test_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        let admin = self.url("postgres");
        let mut client = connect_waiting(&admin, Duration::from_secs(20))?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|e| fail(format!("CREATE DATABASE {name}: {e}")))?;
        Ok(self.url(&name))
    }

    /// Stops the server (fast shutdown: connections are closed, nothing committed is lost).
    ///
    /// # Errors
    /// For a server this process did not start, or when `pg_ctl` fails.
    pub fn stop(&self) -> Result<(), TestServerError> {
        self.started()?.pg_ctl(&["stop", "-m", "fast", "-w"])
    }

    /// Starts the server again after [`TestServer::stop`], on the same port.
    ///
    /// # Errors
    /// As [`TestServer::stop`].
    pub fn start_again(&self) -> Result<(), TestServerError> {
        self.started()?.pg_ctl_start()
    }

    /// Stops the server as a crash does (`immediate`: no shutdown checkpoint).
    ///
    /// # Errors
    /// As [`TestServer::stop`].
    pub fn crash(&self) -> Result<(), TestServerError> {
        self.started()?.pg_ctl(&["stop", "-m", "immediate", "-w"])
    }

    fn started(&self) -> Result<&Started, TestServerError> {
        match &self.kind {
            Kind::Started(s) => Ok(s),
            Kind::External { .. } => Err(fail("this server was not started by the tests")),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Kind::Started(s) = &self.kind {
            let _ = s.pg_ctl(&["stop", "-m", "immediate", "-w"]);
        }
    }
}

impl Started {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn write_settings(&self) -> Result<(), TestServerError> {
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nmax_connections = 200\nshared_buffers = 64MB\nfsync = on\nlogging_collector = off\n",
            self.port,
            self.dir.path().display()
        );
        let conf = self.data().join("postgresql.conf");
        let mut text =
            std::fs::read_to_string(&conf).map_err(|e| fail(format!("{}: {e}", conf.display())))?;
        text.push_str(&settings);
        std::fs::write(&conf, text).map_err(|e| fail(format!("{}: {e}", conf.display())))
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), TestServerError> {
        let mut cmd = Command::new(self.bin.join("pg_ctl"));
        cmd.args(args).arg("-D").arg(self.data());
        run(&mut cmd, self.run_as, self.dir.path())
    }

    fn pg_ctl_start(&self) -> Result<(), TestServerError> {
        let log = self.dir.path().join("server.log");
        let mut cmd = Command::new(self.bin.join("pg_ctl"));
        cmd.args(["start", "-w", "-t", "60", "-l"])
            .arg(&log)
            .arg("-D")
            .arg(self.data());
        run(&mut cmd, self.run_as, self.dir.path()).map_err(|e| {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            fail(format!("{e}\nserver log:\n{tail}"))
        })?;
        connect_waiting(
            &format!("postgres://autopack@127.0.0.1:{}/postgres", self.port),
            Duration::from_secs(30),
        )
        .map(drop)
    }

    /// A watcher that stops the server once this process is gone, for servers never
    /// dropped (statics) and test processes killed.
    fn watch_parent(&self) -> Result<(), TestServerError> {
        let script = format!(
            "while [ -d /proc/{pid} ]; do sleep 1; done; '{pg_ctl}' stop -m immediate -D '{data}' >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.data().display(),
            dir = self.dir.path().display(),
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        cmd.spawn()
            .map(drop)
            .map_err(|e| fail(format!("starting the server's watcher: {e}")))
    }
}

fn run(cmd: &mut Command, run_as: Option<(u32, u32)>, cwd: &Path) -> Result<(), TestServerError> {
    if let Some((uid, gid)) = run_as {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(gid);
    }
    cmd.current_dir(cwd).stdin(Stdio::null());
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| fail(format!("{shown}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(fail(format!(
            "{shown} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

fn connect_waiting(url: &str, wait: Duration) -> Result<postgres::Client, TestServerError> {
    let started = Instant::now();
    loop {
        match postgres::Client::connect(url, postgres::NoTls) {
            Ok(client) => return Ok(client),
            Err(_) if started.elapsed() < wait => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(fail(format!("connecting to {url}: {e}"))),
        }
    }
}

/// `url` (a `postgres://` URL) naming database `db` instead of its own.
fn with_database(url: &str, db: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return format!("{url} dbname={db}");
    };
    let (head, rest) = url.split_at(scheme_end);
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{head}{authority}/{db}{query}")
}

fn free_port() -> Result<u16, TestServerError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| fail(format!("finding a free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| fail(format!("finding a free port: {e}")))
}

/// Where `initdb` and `pg_ctl` are.
fn binaries() -> Result<PathBuf, TestServerError> {
    if let Ok(dir) = std::env::var("AUTOPACK_PG_BIN")
        && !dir.is_empty()
    {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
        .ok_or_else(|| {
            fail("no PostgreSQL server binaries (initdb, pg_ctl) found: install the Debian package `postgresql` (`.ci/run` does), set AUTOPACK_PG_BIN to their directory, or set AUTOPACK_TEST_POSTGRES_URL to an existing server")
        })
}

/// The user to run the server as when this process is root.
fn unprivileged_user() -> Result<Option<(u32, u32)>, TestServerError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name("postgres")
        .map_err(|e| fail(format!("looking up user postgres: {e}")))?
        .ok_or_else(|| {
            fail("running as root, and PostgreSQL refuses to run as root: create the unprivileged user `postgres` (Debian's postgresql package does; `.ci/run` does when it is missing)")
        })?;
    Ok(Some((user.uid.as_raw(), user.gid.as_raw())))
}
