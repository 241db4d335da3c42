//! The router: every endpoint, the permission check, limits and the JSON fallbacks.

mod agents;
mod reports;
mod runs;
mod workers;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;

use autopack::core::ids::RunId;

use crate::AppState;
use crate::auth::{Access, Principal};
use crate::error::ApiError;
use crate::session::{RunSlot, RunView};

pub(crate) use runs::resume_unfinished;

type AppStateRef = State<Arc<AppState>>;

/// The OpenAPI document's source: every handler and the types it reads and writes.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Autopack Supervisor",
        description = "The first implementation's HTTP contract (SEED_API.md) served over the Autopack library, with pull-model workers, run event streams and bearer-token roles. Without tokens the server serves loopback clients only and needs no header; with tokens every request but `/`, `/health`, `/openapi.json` and `/docs` needs `Authorization: Bearer TOKEN` (roles: builder, auditor, operator, viewer).",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        reports::info, reports::health, runs::start, runs::get_run, runs::update_status,
        runs::record_issue, runs::issue_index, reports::backlog, agents::builder_result,
        agents::auditor_request, agents::auditor_result, runs::integration_status,
        reports::run_metrics, reports::tier_metrics, reports::backlog_summary,
        reports::budget_analysis, reports::run_summary, reports::docs, reports::openapi,
        runs::abort, runs::promote, runs::events, workers::lease, workers::result,
        workers::heartbeat,
    ),
    components(schemas(
        crate::error::ErrorBody, crate::error::ValidationBody, crate::error::FieldProblem,
        crate::session::RunEvent,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "service", description = "Information, health, this document"),
        (name = "runs", description = "Runs: start, read, abort, promote, events"),
        (name = "phases", description = "The first implementation's phase endpoints"),
        (name = "issues", description = "The issue ledger"),
        (name = "metrics", description = "Metrics"),
        (name = "reports", description = "Reports"),
        (name = "workers", description = "Pull-model Builders and Auditors"),
    )
)]
pub(crate) struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// What a route needs, by method and route pattern: the one permission table.
pub(crate) fn access(method: &Method, route: &str) -> Access {
    match (method, route) {
        (&Method::GET, "/" | "/health" | "/openapi.json" | "/docs" | "/redoc") => Access::Public,
        (&Method::GET, _) => Access::Read,
        (_, "/runs/{run_id}/phases/{phase_id}/record_issue") => Access::ReportIssues,
        (_, "/runs/{run_id}/phases/{phase_id}/builder_result") => Access::SubmitBuilder,
        (
            _,
            "/runs/{run_id}/phases/{phase_id}/auditor_request"
            | "/runs/{run_id}/phases/{phase_id}/auditor_result",
        ) => Access::SubmitAuditor,
        (
            _,
            "/workers/lease"
            | "/workers/attempts/{attempt_id}/result"
            | "/workers/attempts/{attempt_id}/heartbeat",
        ) => Access::Work,
        _ => Access::Operate,
    }
}

/// Identifies the caller and applies the permission table; without tokens, only
/// loopback peers are served.
async fn authorize(
    State(state): AppStateRef,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let needed = access(request.method(), &route);
    let principal = if state.config.tokens.is_empty() {
        // The extractor also reads a test's `MockConnectInfo`.
        let (mut parts, body) = request.into_parts();
        let peer = ConnectInfo::<SocketAddr>::from_request_parts(&mut parts, &())
            .await
            .ok()
            .map(|c| c.0);
        request = Request::from_parts(parts, body);
        match peer {
            Some(peer) if peer.ip().is_loopback() => Principal::anonymous(),
            _ => {
                return Err(ApiError::forbidden(
                    "this server has no tokens and serves loopback clients only",
                ));
            }
        }
    } else if needed == Access::Public {
        Principal {
            role: crate::auth::Role::Viewer,
            name: "public".into(),
            anonymous: false,
        }
    } else {
        let header = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        state
            .config
            .tokens
            .identify(header)
            .map_err(|e| ApiError::unauthorized(e.to_string()))?
    };
    if !principal.may(needed) {
        return Err(ApiError::forbidden(format!(
            "the {} role may not {} ({} {route})",
            principal.role,
            match needed {
                Access::Operate => "operate runs",
                Access::SubmitBuilder => "answer Builder attempts",
                Access::SubmitAuditor => "answer Auditor attempts",
                Access::ReportIssues => "report issues",
                Access::Work => "take attempts",
                Access::Read | Access::Public => "read",
            },
            request.method(),
        )));
    }
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

async fn not_found() -> ApiError {
    ApiError::not_found("Not Found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// A timeout as a JSON error, not tower-http's empty body.
async fn timeout_as_json(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() == StatusCode::REQUEST_TIMEOUT
        && response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_none()
    {
        return ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "the request took longer than the server's limit",
        )
        .into_response();
    }
    response
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let config = &state.config;
    let reads = Router::new()
        .route("/", get(reports::info))
        .route("/health", get(reports::health))
        .route("/openapi.json", get(reports::openapi))
        .route("/docs", get(reports::docs))
        .route("/redoc", get(reports::docs))
        .route("/runs/{run_id}", get(runs::get_run))
        .route("/runs/{run_id}/issues/index", get(runs::issue_index))
        .route(
            "/runs/{run_id}/integration_status",
            get(runs::integration_status),
        )
        .route("/project/issues/backlog", get(reports::backlog))
        .route("/metrics/runs", get(reports::run_metrics))
        .route("/metrics/tiers/{run_id}", get(reports::tier_metrics))
        .route(
            "/reports/issue_backlog_summary",
            get(reports::backlog_summary),
        )
        .route("/reports/budget_analysis", get(reports::budget_analysis))
        .route("/reports/run_summary/{run_id}", get(reports::run_summary))
        .route("/runs/start", post(runs::start))
        .route(
            "/runs/{run_id}/phases/{phase_id}/update_status",
            post(runs::update_status),
        )
        .route(
            "/runs/{run_id}/phases/{phase_id}/record_issue",
            post(runs::record_issue),
        )
        .route(
            "/runs/{run_id}/phases/{phase_id}/auditor_request",
            post(agents::auditor_request),
        )
        .route("/workers/lease", post(workers::lease))
        .route(
            "/workers/attempts/{attempt_id}/heartbeat",
            post(workers::heartbeat),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.read_timeout,
        ));
    // Answers wait for the Supervisor (gate, CI, snapshot): a longer limit.
    let results = Router::new()
        .route(
            "/runs/{run_id}/phases/{phase_id}/builder_result",
            post(agents::builder_result),
        )
        .route(
            "/runs/{run_id}/phases/{phase_id}/auditor_result",
            post(agents::auditor_result),
        )
        .route(
            "/workers/attempts/{attempt_id}/result",
            post(workers::result),
        )
        .route("/runs/{run_id}/abort", post(runs::abort))
        .route("/runs/{run_id}/promote", post(runs::promote))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.result_timeout,
        ));
    // A stream lasts as long as its run.
    let streams = Router::new().route("/runs/{run_id}/events", get(runs::events));
    Router::new()
        .merge(reads)
        .merge(results)
        .merge(streams)
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            authorize,
        ))
        .layer(axum::middleware::from_fn(timeout_as_json))
        .layer(DefaultBodyLimit::max(config.body_limit))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

impl AppState {
    /// The slot of a run: one driven or read here, else loaded from the store.
    pub(crate) async fn slot(
        self: &Arc<Self>,
        run_id: &RunId,
    ) -> Result<(Arc<RunSlot>, Arc<RunView>), ApiError> {
        if let Some(found) = self.known(run_id) {
            return Ok(found);
        }
        let host = Arc::clone(&self.host);
        let id = run_id.clone();
        let loaded = tokio::task::spawn_blocking(move || host.load(&id))
            .await
            .map_err(|e| ApiError::internal(format!("loading run {run_id}: {e}")))?
            .map_err(|e| ApiError::internal(format!("loading run {run_id}: {e}")))?;
        let Some(stored) = loaded else {
            return Err(ApiError::not_found(format!("run {run_id} not found")));
        };
        let slot = RunSlot::stored(RunView::new(stored.record, stored.issue_index));
        let mut runs = self
            .runs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A finished run is cached; one still running elsewhere is read afresh next time.
        let slot = if slot.view().is_some_and(|v| v.record.state.is_terminal()) {
            Arc::clone(runs.entry(run_id.clone()).or_insert(slot))
        } else {
            slot
        };
        drop(runs);
        let view = slot
            .view()
            .ok_or_else(|| ApiError::not_found(format!("run {run_id} not found")))?;
        Ok((slot, view))
    }

    fn known(&self, run_id: &RunId) -> Option<(Arc<RunSlot>, Arc<RunView>)> {
        let runs = self
            .runs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = runs.get(run_id)?;
        Some((Arc::clone(slot), slot.view()?))
    }

    /// Every run: those known here and those the store holds.
    pub(crate) async fn all_views(self: &Arc<Self>) -> Result<Vec<Arc<RunView>>, ApiError> {
        let host = Arc::clone(&self.host);
        let ids = tokio::task::spawn_blocking(move || host.run_ids())
            .await
            .map_err(|e| ApiError::internal(format!("listing runs: {e}")))?
            .map_err(|e| ApiError::internal(format!("listing runs: {e}")))?;
        let mut all: std::collections::BTreeSet<RunId> = ids.into_iter().collect();
        all.extend(
            self.runs
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .keys()
                .cloned(),
        );
        let mut out = Vec::with_capacity(all.len());
        for id in all {
            match self.slot(&id).await {
                Ok((_, view)) => out.push(view),
                // A run being started is not listed yet.
                Err(e) if e.status == StatusCode::NOT_FOUND => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// Runs `f` on a blocking thread (the host's calls touch disks and databases).
pub(crate) async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T, crate::host::HostFailure> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("{what}: {e}")))?
        .map_err(|e| host_error(what, e))
}

/// A host failure as the client's error.
pub(crate) fn host_error(what: &str, failure: crate::host::HostFailure) -> ApiError {
    use crate::host::HostFailure;
    match failure {
        HostFailure::Exists(m) | HostFailure::Invalid(m) => ApiError::bad_request(m),
        HostFailure::Elsewhere(m) => ApiError::new(StatusCode::CONFLICT, m),
        HostFailure::Machinery(m) => ApiError::internal(format!("{what}: {m}")),
    }
}
