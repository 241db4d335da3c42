//! Service information, the backlog, metrics, reports and the API's own documents.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{AppStateRef, blocking};
use crate::error::{ApiError, StrictQuery};
use crate::seed;

/// `GET /`.
#[utoipa::path(get, path = "/", tag = "service", responses((status = 200, body = seed::ServiceInfo)))]
pub(super) async fn info() -> axum::Json<seed::ServiceInfo> {
    axum::Json(seed::ServiceInfo {
        service: "Autopack Supervisor".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: "Governs autonomous builds: budgets, CI gates, rules and an issue ledger around code-writing agents".into(),
    })
}

/// `GET /health`.
#[utoipa::path(get, path = "/health", tag = "service", responses((status = 200, body = seed::Health)))]
pub(super) async fn health() -> axum::Json<seed::Health> {
    axum::Json(seed::Health {
        status: "healthy".into(),
    })
}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "service", responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub(super) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document_json(),
    )
        .into_response()
}

/// `GET /docs` and `GET /redoc`: a page that renders `/openapi.json` with no network.
#[utoipa::path(get, path = "/docs", tag = "service", responses((status = 200, description = "HTML", content_type = "text/html")))]
pub(super) async fn docs() -> Html<&'static str> {
    Html(crate::openapi::DOCS_PAGE)
}

/// `GET /project/issues/backlog`.
#[utoipa::path(get, path = "/project/issues/backlog", tag = "issues",
    responses((status = 200, description = "`{project_id, issues_by_key}`", body = Object)))]
pub(super) async fn backlog(State(state): AppStateRef) -> Result<Response, ApiError> {
    let host = Arc::clone(&state.host);
    let backlog = blocking("reading the backlog", move || host.backlog()).await?;
    Ok(axum::Json(serde_json::json!({
        "project_id": backlog.project_id,
        "issues_by_key": backlog.issues_by_key,
    }))
    .into_response())
}

/// `GET /metrics/runs`'s query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct RunsQuery {
    /// Only runs in this state.
    status: Option<String>,
}

/// `GET /metrics/runs?status=`.
#[utoipa::path(get, path = "/metrics/runs", tag = "metrics", params(RunsQuery),
    responses((status = 200, body = seed::RunMetrics), (status = 400, description = "Not a run state", body = crate::error::ErrorBody)))]
pub(super) async fn run_metrics(
    State(state): AppStateRef,
    StrictQuery(query): StrictQuery<RunsQuery>,
) -> Result<Response, ApiError> {
    let wanted = match &query.status {
        Some(s) => Some(
            seed::parse_run_state(s)
                .ok_or_else(|| ApiError::bad_request(format!("{s} is not a run state")))?,
        ),
        None => None,
    };
    let runs: Vec<seed::RunMetric> = state
        .all_views()
        .await?
        .iter()
        .filter(|v| wanted.is_none_or(|w| v.record.state == w))
        .map(|v| seed::run_metric(&v.record))
        .collect();
    Ok(axum::Json(seed::RunMetrics {
        total_runs: u32::try_from(runs.len()).unwrap_or(u32::MAX),
        runs,
    })
    .into_response())
}

/// `GET /metrics/tiers/{run_id}`.
#[utoipa::path(get, path = "/metrics/tiers/{run_id}", tag = "metrics", params(("run_id" = String, Path)),
    responses((status = 200, body = seed::TierMetrics), (status = 404, body = crate::error::ErrorBody)))]
pub(super) async fn tier_metrics(
    State(state): AppStateRef,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    let run_id = seed::run_id(&run_id)?;
    let (_, view) = state.slot(&run_id).await?;
    Ok(axum::Json(seed::tier_metrics(&view.record)).into_response())
}

/// `GET /reports/issue_backlog_summary`.
#[utoipa::path(get, path = "/reports/issue_backlog_summary", tag = "reports",
    responses((status = 200, body = seed::BacklogSummary)))]
pub(super) async fn backlog_summary(State(state): AppStateRef) -> Result<Response, ApiError> {
    let host = Arc::clone(&state.host);
    let backlog = blocking("reading the backlog", move || host.backlog()).await?;
    Ok(axum::Json(seed::backlog_summary(&backlog)).into_response())
}

/// `GET /reports/budget_analysis` (the seed answered 500 once a run existed).
#[utoipa::path(get, path = "/reports/budget_analysis", tag = "reports",
    responses((status = 200, body = seed::BudgetAnalysis)))]
pub(super) async fn budget_analysis(State(state): AppStateRef) -> Result<Response, ApiError> {
    let views = state.all_views().await?;
    Ok(axum::Json(seed::budget_analysis(views.iter().map(|v| &v.record))).into_response())
}

/// `GET /reports/run_summary/{run_id}`.
#[utoipa::path(get, path = "/reports/run_summary/{run_id}", tag = "reports", params(("run_id" = String, Path)),
    responses((status = 200, body = seed::RunSummary), (status = 404, body = crate::error::ErrorBody)))]
pub(super) async fn run_summary(
    State(state): AppStateRef,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    let run_id = seed::run_id(&run_id)?;
    let (_, view) = state.slot(&run_id).await?;
    let distinct = u32::try_from(view.issue_index.issues_by_key.len()).unwrap_or(u32::MAX);
    Ok(axum::Json(seed::run_summary(&view.record, distinct)).into_response())
}
