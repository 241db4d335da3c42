//! Pull-model workers: a remote Builder or Auditor leases the next attempt any run here
//! waits for, keeps its lease alive, and answers exactly that attempt with its token.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use autopack::core::message::{parse_auditor_result, parse_builder_result};
use autopack::core::record::AttemptRole;
use autopack::driver::AgentCall;
use autopack::supervisor::AgentOutcome;

use super::AppStateRef;
use super::agents::{Answer, attempt_of, refusal_error, submit};
use crate::AppState;
use crate::attempts::{Claimant, Proof};
use crate::auth::{Access, Principal};
use crate::error::{ApiError, StrictJson, from_json_error};
use crate::seed;
use crate::session::{RunSlot, lock};

/// `POST /workers/lease`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LeaseRequest {
    /// `builder` or `auditor`.
    #[schema(value_type = String)]
    role: AttemptRole,
    /// A name for logs and messages.
    worker: Option<String>,
    /// How long the lease should last (the server's default when absent; capped).
    lease_seconds: Option<u64>,
}

/// An attempt leased to a worker.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct LeaseGrant {
    /// The attempt: answer it at `/workers/attempts/{attempt_id}/result`.
    attempt_id: String,
    /// The secret that answers it. Keep it to yourself.
    lease_token: String,
    /// When the lease runs out (then the attempt fails; heartbeat to extend it).
    deadline: DateTime<Utc>,
    /// The run.
    run_id: String,
    /// The phase.
    phase_id: String,
    /// `builder` or `auditor`.
    role: String,
    /// The attempt number.
    attempt: u32,
    /// The integration branch's tip the attempt works on (a patch applies to it).
    tip_commit: Option<String>,
    /// The Builder or Auditor request (`schemas/builder_request.schema.json`,
    /// `schemas/auditor_request.schema.json`).
    #[schema(value_type = Object)]
    request: serde_json::Value,
}

fn may_take(principal: &Principal, role: AttemptRole) -> bool {
    principal.may(match role {
        AttemptRole::Builder => Access::SubmitBuilder,
        AttemptRole::Auditor => Access::SubmitAuditor,
    })
}

fn ttl(state: &AppState, asked: Option<u64>) -> chrono::Duration {
    let secs = asked
        .map(std::time::Duration::from_secs)
        .unwrap_or(state.config.lease_ttl)
        .min(state.config.max_lease_ttl)
        .max(std::time::Duration::from_secs(1));
    chrono::Duration::from_std(secs).unwrap_or(chrono::Duration::minutes(15))
}

fn driven(state: &AppState) -> Vec<Arc<RunSlot>> {
    state
        .runs
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .values()
        .filter(|s| s.driven_here())
        .cloned()
        .collect()
}

/// `POST /workers/lease`: the oldest open attempt of the role, leased to the caller;
/// 204 when no run waits for one.
#[utoipa::path(post, path = "/workers/lease", tag = "workers",
    request_body = LeaseRequest,
    responses(
        (status = 200, body = LeaseGrant),
        (status = 204, description = "Nothing to do now"),
        (status = 403, description = "The caller's role takes no attempts of that role", body = crate::error::ErrorBody),
    ))]
pub(super) async fn lease(
    State(state): AppStateRef,
    Extension(principal): Extension<Principal>,
    StrictJson(body): StrictJson<LeaseRequest>,
) -> Result<Response, ApiError> {
    if !may_take(&principal, body.role) {
        return Err(ApiError::forbidden(format!(
            "the {} role takes no {} attempts",
            principal.role,
            seed::role_word(body.role)
        )));
    }
    let claimant = Claimant::new(principal.holder()).only(body.role);
    let ttl = ttl(&state, body.lease_seconds);
    let mut slots: Vec<(DateTime<Utc>, Arc<RunSlot>)> = driven(&state)
        .into_iter()
        .filter_map(|slot| {
            let since = lock(&slot.board)
                .open()
                .filter(|o| o.lease.is_none() && o.call.role() == body.role)
                .map(|o| o.since)?;
            Some((since, slot))
        })
        .collect();
    slots.sort_by_key(|(since, _)| *since);
    for (_, slot) in slots {
        let mut board = lock(&slot.board);
        let Some(lease) = board.claim(&claimant, ttl, Utc::now()) else {
            continue;
        };
        let Some(offer) = board.current() else {
            continue;
        };
        let request = match &offer.call {
            AgentCall::Builder(r) => serde_json::to_value(r),
            AgentCall::Auditor(r) => serde_json::to_value(r),
        }
        .unwrap_or_default();
        tracing::info!(target: "autopack::server", run_id = %slot.run_id, attempt_id = %offer.id, holder = %lease.holder, worker = body.worker.as_deref().unwrap_or(""), "attempt leased");
        return Ok(axum::Json(LeaseGrant {
            attempt_id: offer.id.clone(),
            lease_token: lease.token,
            deadline: lease.deadline,
            run_id: slot.run_id.to_string(),
            phase_id: offer.call.phase_id().to_string(),
            role: seed::role_word(offer.call.role()).into(),
            attempt: offer.call.attempt(),
            tip_commit: slot
                .view()
                .and_then(|v| v.record.integration_tip.as_ref().map(|c| c.to_string())),
            request,
        })
        .into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The live run offering attempt `id`.
fn slot_of(state: &AppState, id: &str) -> Result<Arc<RunSlot>, ApiError> {
    driven(state)
        .into_iter()
        .find(|s| lock(&s.board).current().is_some_and(|o| o.id == id))
        .ok_or_else(|| {
            ApiError::conflict(
                format!("attempt {id} is not awaited by any run here (answered, expired, or never offered)"),
                "unknown",
                "answer",
            )
        })
}

/// A failed attempt, as a worker reports it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkerFailure {
    /// Why, in a sentence.
    reason: String,
    /// Tokens spent anyway.
    #[serde(default)]
    tokens_used: u64,
}

/// `POST /workers/attempts/{attempt_id}/result`: exactly one of `result` and `failure`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttemptAnswer {
    /// The lease's token.
    lease_token: String,
    /// A Builder or Auditor result (`schemas/builder_result.schema.json`,
    /// `schemas/auditor_result.schema.json`).
    #[schema(value_type = Option<Object>)]
    result: Option<serde_json::Value>,
    /// Or: the attempt failed.
    failure: Option<WorkerFailure>,
}

/// What became of an answered attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AttemptAnswered {
    /// The run.
    run_id: String,
    /// The phase.
    phase_id: String,
    /// How the Supervisor recorded the attempt (`succeeded`, `failed`, `revise`, …).
    attempt_outcome: Option<String>,
    /// Why, when it failed.
    reason: Option<String>,
    /// The phase state now.
    phase_state: String,
    /// The run state now.
    run_state: String,
    /// The phase's commit, when it got that far.
    commit_sha: Option<String>,
}

/// `POST /workers/attempts/{attempt_id}/result`: answers the leased attempt; replies once
/// the Supervisor has processed it (gate, CI, snapshot as far as they go).
#[utoipa::path(post, path = "/workers/attempts/{attempt_id}/result", tag = "workers",
    params(("attempt_id" = String, Path)),
    request_body = AttemptAnswer,
    responses(
        (status = 200, body = AttemptAnswered),
        (status = 403, description = "Not this attempt's lease", body = crate::error::ErrorBody),
        (status = 409, description = "The attempt is not awaited (answered, expired)", body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ValidationBody),
    ))]
pub(super) async fn result(
    State(state): AppStateRef,
    Path(attempt_id): Path<String>,
    Extension(principal): Extension<Principal>,
    StrictJson(body): StrictJson<AttemptAnswer>,
) -> Result<Response, ApiError> {
    let slot = slot_of(&state, &attempt_id)?;
    let role = lock(&slot.board)
        .current()
        .map(|o| o.call.role())
        .unwrap_or(AttemptRole::Builder);
    if !may_take(&principal, role) {
        return Err(ApiError::forbidden(format!(
            "the {} role answers no {} attempts",
            principal.role,
            seed::role_word(role)
        )));
    }
    let answer = match (body.result, body.failure) {
        (Some(result), None) => {
            let text = result.to_string();
            match role {
                AttemptRole::Builder => Answer::Builder(AgentOutcome::Returned(
                    parse_builder_result(&text, "result")
                        .map_err(|e| from_json_error("body", &prefixed(e)))?,
                )),
                AttemptRole::Auditor => Answer::Auditor(AgentOutcome::Returned(
                    parse_auditor_result(&text, "result")
                        .map_err(|e| from_json_error("body", &prefixed(e)))?,
                )),
            }
        }
        (None, Some(f)) => match role {
            AttemptRole::Builder => Answer::Builder(AgentOutcome::Failed {
                reason: f.reason,
                tokens_used: f.tokens_used,
            }),
            AttemptRole::Auditor => Answer::Auditor(AgentOutcome::Failed {
                reason: f.reason,
                tokens_used: f.tokens_used,
            }),
        },
        _ => {
            return Err(ApiError::field(
                &["body"],
                "value_error",
                "give exactly one of result and failure",
            ));
        }
    };
    let (call, processed) =
        submit(&slot, &attempt_id, &Proof::Token(body.lease_token), answer).await?;
    let record = &processed.view.record;
    let (_, phase) = seed::find_phase(record, call.phase_id().as_str())
        .ok_or_else(|| ApiError::internal(format!("phase {} vanished", call.phase_id())))?;
    let attempt = attempt_of(phase, &call);
    Ok(axum::Json(AttemptAnswered {
        run_id: record.run_id.to_string(),
        phase_id: phase.phase_id.to_string(),
        attempt_outcome: attempt.map(|a| seed::word(&a.outcome)),
        reason: attempt.map(|a| a.reason.clone()).filter(|r| !r.is_empty()),
        phase_state: seed::word(&phase.state),
        run_state: seed::word(&record.state),
        commit_sha: seed::phase_commit(phase),
    })
    .into_response())
}

/// A result's JSON error, its path under `result`.
fn prefixed(mut e: autopack::core::json::JsonError) -> autopack::core::json::JsonError {
    e.path = if e.path == "." || e.path.is_empty() {
        "result".into()
    } else {
        format!("result.{}", e.path)
    };
    e
}

/// `POST /workers/attempts/{attempt_id}/heartbeat`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Heartbeat {
    /// The lease's token.
    lease_token: String,
    /// How long from now (the server's default when absent; capped).
    lease_seconds: Option<u64>,
}

/// The lease's new deadline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct LeaseExtended {
    /// When it runs out now.
    deadline: DateTime<Utc>,
}

/// `POST /workers/attempts/{attempt_id}/heartbeat`: extends the lease.
#[utoipa::path(post, path = "/workers/attempts/{attempt_id}/heartbeat", tag = "workers",
    params(("attempt_id" = String, Path)),
    request_body = Heartbeat,
    responses(
        (status = 200, body = LeaseExtended),
        (status = 403, description = "Not this attempt's lease", body = crate::error::ErrorBody),
        (status = 409, description = "The attempt is not awaited", body = crate::error::ErrorBody),
    ))]
pub(super) async fn heartbeat(
    State(state): AppStateRef,
    Path(attempt_id): Path<String>,
    StrictJson(body): StrictJson<Heartbeat>,
) -> Result<Response, ApiError> {
    let slot = slot_of(&state, &attempt_id)?;
    let ttl = ttl(&state, body.lease_seconds);
    let deadline = lock(&slot.board)
        .heartbeat(&attempt_id, &body.lease_token, ttl, Utc::now())
        .map_err(|r| refusal_error(r, "leased".into()))?;
    Ok(axum::Json(LeaseExtended { deadline }).into_response())
}
