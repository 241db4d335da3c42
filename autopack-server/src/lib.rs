//! # autopack-server
//!
//! Autopack's HTTP service: the first implementation's 19 endpoints (listed in `docs/CONTRACT.md`) served
//! over the library, so its clients run unchanged, plus pull-model workers (remote
//! Builders and Auditors take attempts with a lease and answer exactly those), a
//! Server-Sent Events stream per run, bearer tokens with roles and an OpenAPI document
//! generated from the handlers (`/openapi.json`, an offline page at `/docs`).
//!
//! The Supervisor stays the only thing that advances state: each run is driven by its own
//! session thread stepping an [`autopack::driver::Driver`]; handlers only read what the
//! session published and hand it answers. A `builder_result` or `auditor_result` is
//! answered once the Supervisor has processed it (gate, CI, snapshot as far as they go).
//! Everything that touches a repository or a store is the [`host::RunHost`]'s:
//! `autopack serve` wires the CLI's (git, filesystem or PostgreSQL stores, sandboxed CI);
//! `testing::MemoryHost` (feature `testing`) keeps everything in memory.
//!
//! ```
//! use std::sync::Arc;
//! use autopack_server::{Server, ServerConfig, testing::MemoryHost};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let server = Server::new(Arc::new(MemoryHost::new()), ServerConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let url = format!("http://{}", listener.local_addr().unwrap());
//! let running = tokio::spawn(server.clone().serve(listener, std::future::pending()));
//!
//! let health: serde_json::Value = reqwest::get(format!("{url}/health")).await.unwrap()
//!     .json().await.unwrap();
//! assert_eq!(health["status"], "healthy");
//! running.abort();
//! # }
//! ```
//!
//! Benchmarks, their goals and every figure: `PERFORMANCE.md` in the repository.

// The README's example runs as a doctest too, so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod attempts;
pub mod auth;
pub mod error;
pub mod host;
pub mod openapi;
pub mod repository;
mod routes;
pub mod seed;
mod session;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use autopack::core::ids::RunId;

pub use session::{RunEvent, RunView, Session, SessionObserver};

use crate::auth::Tokens;
use crate::host::RunHost;
use crate::session::{AttemptIds, RunSlot};

/// The address `autopack serve` listens on unless told otherwise (the first
/// implementation's).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8000";

/// How the service behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Bearer tokens; none serves loopback clients only.
    pub tokens: Tokens,
    /// Largest request body (413 above).
    pub body_limit: usize,
    /// How long a read may take.
    pub read_timeout: Duration,
    /// How long a result submission may wait for the Supervisor (gate, CI, snapshot).
    pub result_timeout: Duration,
    /// A lease's length when the worker asks for none.
    pub lease_ttl: Duration,
    /// The longest lease handed out.
    pub max_lease_ttl: Duration,
    /// How often time passing is journaled while an attempt is out.
    pub tick: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tokens: Tokens::default(),
            // A patch may be 8 MiB (autopack_apply::MAX_PATCH_BYTES); JSON escaping and
            // the other fields need room beside it.
            body_limit: 20 * 1024 * 1024 - 1,
            read_timeout: Duration::from_secs(30),
            result_timeout: Duration::from_secs(60 * 60),
            lease_ttl: Duration::from_secs(15 * 60),
            max_lease_ttl: Duration::from_secs(6 * 60 * 60),
            tick: Duration::from_secs(60),
        }
    }
}

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Without tokens only loopback addresses are served.
    #[error(
        "refusing to listen on {addr} without bearer tokens: configure tokens (--tokens FILE or AUTOPACK_SERVER_TOKENS) or listen on a loopback address"
    )]
    NeedsTokens {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The listener failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// The service: a cheap handle (clone it freely).
#[derive(Clone)]
pub struct Server {
    state: Arc<AppState>,
}

pub(crate) struct AppState {
    pub(crate) host: Arc<dyn RunHost>,
    pub(crate) config: ServerConfig,
    pub(crate) runs: RwLock<BTreeMap<RunId, Arc<RunSlot>>>,
    /// Runs whose start is under way (a second start of the same id is refused).
    pub(crate) starting: Mutex<std::collections::BTreeSet<RunId>>,
    pub(crate) ids: Arc<AttemptIds>,
    /// The session threads, joined when the server stops (so their runs' leases are
    /// released before the process exits).
    pub(crate) sessions: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Server {
    /// A service over `host`.
    pub fn new(host: Arc<dyn RunHost>, config: ServerConfig) -> Server {
        Server {
            state: Arc::new(AppState {
                host,
                config,
                runs: RwLock::new(BTreeMap::new()),
                starting: Mutex::new(Default::default()),
                ids: Arc::new(AttemptIds::new()),
                sessions: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The router (for embedding in a larger axum application, or for in-process
    /// tests with `tower::ServiceExt::oneshot`). Requests need a
    /// `ConnectInfo<SocketAddr>` extension when no tokens are configured
    /// ([`Server::serve`] provides it; tests add `MockConnectInfo`).
    pub fn router(&self) -> axum::Router {
        routes::router(Arc::clone(&self.state))
    }

    /// Checks that `addr` may be served with this configuration.
    ///
    /// # Errors
    /// [`ServerError::NeedsTokens`] for a non-loopback address without tokens.
    pub fn check_listen(&self, addr: SocketAddr) -> Result<(), ServerError> {
        if self.state.config.tokens.is_empty() && !addr.ip().is_loopback() {
            return Err(ServerError::NeedsTokens { addr });
        }
        Ok(())
    }

    /// Continues every unfinished run the store holds (after a restart), each on its
    /// own session. Returns what happened to each.
    ///
    /// # Errors
    /// The store cannot be listed.
    pub async fn resume_unfinished(&self) -> Result<Vec<(RunId, Result<(), String>)>, String> {
        routes::resume_unfinished(&self.state).await
    }

    /// Serves on `listener` until `shutdown` completes; then stops driving its runs
    /// (their sessions return at their next wait; `resume` continues them).
    ///
    /// # Errors
    /// [`ServerError::NeedsTokens`], or the listener fails.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        self.check_listen(listener.local_addr()?)?;
        let app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        let me = self.clone();
        // Event streams last as long as their runs: stop driving first, which ends them,
        // so the graceful shutdown does not wait for dashboards to hang up.
        let shutdown = async move {
            shutdown.await;
            me.detach_all();
        };
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        self.detach_all();
        // Each session returns at its next wait (after the step in progress).
        let sessions = std::mem::take(
            &mut *self
                .state
                .sessions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let _ = tokio::task::spawn_blocking(move || {
            for session in sessions {
                let _ = session.join();
            }
        })
        .await;
        result.map_err(ServerError::Io)
    }

    /// Stops driving every run and ends their event streams (the server is going away).
    pub fn detach_all(&self) {
        for slot in self
            .state
            .runs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
        {
            slot.detach();
            slot.close_events();
        }
    }
}
