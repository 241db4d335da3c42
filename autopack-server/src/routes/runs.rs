//! Runs: start, read, the seed's phase endpoints that are not agent answers, abort,
//! promotion, the event stream.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;

use autopack::core::ids::{IssueKey, RunId};
use autopack::core::lifecycle::{PhaseState, StateMachine};
use autopack::core::message::SuggestedIssue;
use autopack::core::plan::{Plan, PlanError};
use autopack::core::vocabulary::{IssueCategory, IssueSource, Severity};
use autopack::supervisor::Input;

use super::{AppStateRef, blocking, host_error};
use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, FieldProblem, StrictJson, StrictQuery, from_json_error, loc_of};
use crate::seed::{self, RecordIssueQuery, UpdateStatus};
use crate::session::{Command, RunView, Session, SessionSettings};

pub(super) fn json_bytes(status: StatusCode, bytes: bytes::Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// The plan a `POST /runs/start` body holds, or the client's error.
fn plan_of(body: &[u8]) -> Result<Plan, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::field(&["body"], "json_invalid", "the body is not UTF-8"))?;
    if text.trim().is_empty() {
        return Err(ApiError::field(
            &["body"],
            "missing",
            "a JSON body is required",
        ));
    }
    Plan::from_json(text, "request body").map_err(|e| match e {
        PlanError::Json(json) => from_json_error("body", &json),
        PlanError::TooLarge(too) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, too.to_string()),
        PlanError::Invalid { errors, .. } => ApiError::invalid(
            errors
                .problems()
                .iter()
                .map(|p| FieldProblem {
                    kind: "value_error".into(),
                    loc: loc_of("body", &p.path),
                    msg: p.to_string(),
                    input: None,
                })
                .collect(),
        ),
        other => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
    })
}

/// `POST /runs/start`: validates the plan, prepares the run on the host (ruleset,
/// strategy, integration branch, lease) and starts its session.
#[utoipa::path(post, path = "/runs/start", tag = "runs",
    request_body(content = Object, description = "A plan (SPEC §3): `{run, tiers, phases}`; see `schemas/plan.schema.json`."),
    responses(
        (status = 201, description = "The run, started", body = seed::Run),
        (status = 400, description = "The run exists", body = crate::error::ErrorBody),
        (status = 422, description = "Not a valid plan (every problem, by field)", body = crate::error::ValidationBody),
    ))]
pub(super) async fn start(
    State(state): AppStateRef,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    let plan = plan_of(&body)?;
    let run_id = plan.run.run_id.clone();
    {
        let mut starting = super::super::session::lock(&state.starting);
        let known = state
            .runs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(&run_id);
        if known || !starting.insert(run_id.clone()) {
            return Err(ApiError::bad_request(format!("run {run_id} exists")));
        }
    }
    let host = Arc::clone(&state.host);
    let in_store = blocking("listing runs", move || host.run_ids()).await;
    let result = match in_store {
        Ok(ids) if ids.contains(&run_id) => {
            Err(ApiError::bad_request(format!("run {run_id} exists")))
        }
        Ok(_) => {
            start_session(&state, run_id.clone(), move |host, session| {
                host.start(plan, session)
            })
            .await
        }
        Err(e) => Err(e),
    };
    super::super::session::lock(&state.starting).remove(&run_id);
    let view = result?;
    Ok(json_bytes(StatusCode::CREATED, view.run_json.clone()))
}

/// Opens a session for `run_id`, runs `drive` on a thread of its own, waits for the
/// first view and registers the run.
async fn start_session(
    state: &Arc<AppState>,
    run_id: RunId,
    drive: impl FnOnce(
        &dyn crate::host::RunHost,
        Session,
    ) -> Result<autopack::core::lifecycle::RunState, crate::host::HostFailure>
    + Send
    + 'static,
) -> Result<Arc<RunView>, ApiError> {
    let settings = SessionSettings {
        tick: state.config.tick,
    };
    let (session, slot, started) = Session::open(run_id.clone(), settings, Arc::clone(&state.ids));
    let host = Arc::clone(&state.host);
    let thread_slot = Arc::clone(&slot);
    let spawned = std::thread::Builder::new()
        .name(format!("run-{run_id}"))
        .spawn(move || match drive(host.as_ref(), session) {
            Ok(state) => {
                tracing::info!(target: "autopack::server", run_id = %thread_slot.run_id, %state, "run session ended");
                thread_slot.start_failed(crate::host::HostFailure::Machinery(
                    "the run ended before it was published".into(),
                ));
            }
            Err(failure) => {
                tracing::error!(target: "autopack::server", run_id = %thread_slot.run_id, error = %failure, "run session failed");
                thread_slot.start_failed(failure);
            }
        });
    match spawned {
        Ok(handle) => {
            let mut sessions = super::super::session::lock(&state.sessions);
            sessions.retain(|h| !h.is_finished());
            sessions.push(handle);
        }
        Err(e) => {
            return Err(ApiError::internal(format!(
                "starting a thread for run {run_id}: {e}"
            )));
        }
    }
    let view = started
        .await
        .map_err(|_| {
            ApiError::internal(format!("the session of run {run_id} ended before starting"))
        })?
        .map_err(|e| host_error(&format!("starting run {run_id}"), e))?;
    state
        .runs
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(run_id, slot);
    Ok(view)
}

/// Continues every unfinished run of the store.
pub(crate) async fn resume_unfinished(
    state: &Arc<AppState>,
) -> Result<Vec<(RunId, Result<(), String>)>, String> {
    let host = Arc::clone(&state.host);
    let ids = tokio::task::spawn_blocking(move || host.run_ids())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for run_id in ids {
        let unfinished = match state.slot(&run_id).await {
            Ok((_, view)) => !view.record.state.is_terminal(),
            Err(e) => {
                out.push((run_id, Err(e.detail())));
                continue;
            }
        };
        if !unfinished {
            continue;
        }
        let id = run_id.clone();
        let result = start_session(state, run_id.clone(), move |host, session| {
            host.resume(&id, session)
        })
        .await
        .map(|_| ())
        .map_err(|e| e.detail());
        out.push((run_id, result));
    }
    Ok(out)
}

/// `GET /runs/{run_id}`.
#[utoipa::path(get, path = "/runs/{run_id}", tag = "runs",
    params(("run_id" = String, Path, description = "The run")),
    responses((status = 200, body = seed::Run), (status = 404, body = crate::error::ErrorBody)))]
pub(super) async fn get_run(
    State(state): AppStateRef,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    let run_id = seed::run_id(&run_id)?;
    let (_, view) = state.slot(&run_id).await?;
    Ok(json_bytes(StatusCode::OK, view.run_json.clone()))
}

/// `GET /runs/{run_id}/issues/index`.
#[utoipa::path(get, path = "/runs/{run_id}/issues/index", tag = "issues",
    params(("run_id" = String, Path, description = "The run")),
    responses((status = 200, description = "`{run_id, issues_by_key}`", body = Object), (status = 404, body = crate::error::ErrorBody)))]
pub(super) async fn issue_index(
    State(state): AppStateRef,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    let run_id = seed::run_id(&run_id)?;
    let (_, view) = state.slot(&run_id).await?;
    Ok(axum::Json(&view.issue_index).into_response())
}

/// `GET /runs/{run_id}/integration_status`.
#[utoipa::path(get, path = "/runs/{run_id}/integration_status", tag = "runs",
    params(("run_id" = String, Path, description = "The run")),
    responses((status = 200, body = seed::IntegrationStatusReply), (status = 404, body = crate::error::ErrorBody)))]
pub(super) async fn integration_status(
    State(state): AppStateRef,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    let run_id = seed::run_id(&run_id)?;
    state.slot(&run_id).await?;
    let host = Arc::clone(&state.host);
    let id = run_id.clone();
    let status = blocking("reading the integration branch", move || {
        host.integration_status(&id)
    })
    .await?;
    Ok(axum::Json(seed::IntegrationStatusReply {
        branch: status.branch,
        commits_ahead_of_main: status.commits_ahead,
        current_commit: status.current_commit,
    })
    .into_response())
}

/// `POST …/update_status`: only the Supervisor moves phases. The state asked for is
/// checked against the lifecycle: the phase's own state is a no-op (200); anything else
/// is 409 naming the state and the event (the lifecycle's, when the table has one).
#[utoipa::path(post, path = "/runs/{run_id}/phases/{phase_id}/update_status", tag = "phases",
    params(("run_id" = String, Path), ("phase_id" = String, Path)),
    request_body = seed::UpdateStatus,
    responses(
        (status = 200, body = seed::UpdateStatusReply),
        (status = 400, description = "Not a phase state", body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "A transition only the Supervisor makes, or none the lifecycle has", body = crate::error::ErrorBody),
    ))]
pub(super) async fn update_status(
    State(state): AppStateRef,
    Path((run_id, phase_id)): Path<(String, String)>,
    StrictJson(body): StrictJson<UpdateStatus>,
) -> Result<Response, ApiError> {
    let run_id = seed::run_id(&run_id)?;
    let phase_id = seed::phase_id(&phase_id)?;
    let (_, view) = state.slot(&run_id).await?;
    let (_, phase) = seed::find_phase(&view.record, phase_id.as_str()).ok_or_else(|| {
        ApiError::not_found(format!("phase {phase_id} not found in run {run_id}"))
    })?;
    let wanted: PhaseState = body.state.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "{} is not a phase state (one of {})",
            body.state,
            PhaseState::NAMES.join(", ")
        ))
    })?;
    let current = phase.state;
    if wanted == current {
        return Ok(axum::Json(seed::UpdateStatusReply {
            message: format!("phase {phase_id} is {current} already; nothing changed"),
            phase: seed::phase_row(phase),
        })
        .into_response());
    }
    let event = PhaseState::TABLE
        .iter()
        .find(|t| t.from.contains(current) && t.to == wanted)
        .map(|t| t.on);
    Err(match event {
        Some(event) => ApiError::conflict(
            format!(
                "phase {phase_id} is {current}; {current} → {wanted} ({event}) is the Supervisor's to make: submit the Builder's or Auditor's result instead"
            ),
            current.as_str(),
            event.to_string(),
        ),
        None => ApiError::conflict(
            format!(
                "phase {phase_id} is {current}; the phase lifecycle has no transition to {wanted}"
            ),
            current.as_str(),
            format!("set_state({wanted})"),
        ),
    })
}

/// The optional body of `record_issue`: a bare JSON array of evidence references.
fn evidence_of(body: &[u8]) -> Result<Vec<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    crate::error::parse_body(body)
}

fn query_field<T>(field: &str, parsed: Result<T, impl std::fmt::Display>) -> Result<T, ApiError> {
    parsed.map_err(|e| ApiError::field(&["query", field], "value_error", e.to_string()))
}

/// `POST …/record_issue`: an issue reported from outside an attempt, recorded by the
/// Supervisor into the run's ledger (phase file, run index, backlog).
#[utoipa::path(post, path = "/runs/{run_id}/phases/{phase_id}/record_issue", tag = "phases",
    params(("run_id" = String, Path), ("phase_id" = String, Path), RecordIssueQuery),
    request_body(content = Vec<String>, description = "Optional evidence references"),
    responses(
        (status = 200, body = seed::RecordIssueReply),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "The run is not running here", body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ValidationBody),
    ))]
pub(super) async fn record_issue(
    State(state): AppStateRef,
    Path((run_id, phase_id)): Path<(String, String)>,
    StrictQuery(query): StrictQuery<RecordIssueQuery>,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    let run_id = seed::run_id(&run_id)?;
    let phase_id = seed::phase_id(&phase_id)?;
    let issue_key = query_field("issue_key", IssueKey::new(&query.issue_key))?;
    let severity: Severity = query_field("severity", word_of(&query.severity))?;
    let source: IssueSource = query_field("source", word_of(&query.source))?;
    let category = query_field("category", IssueCategory::new(&query.category))?;
    let evidence_refs = evidence_of(&body)?;
    let (slot, view) = state.slot(&run_id).await?;
    if seed::find_phase(&view.record, phase_id.as_str()).is_none() {
        return Err(ApiError::not_found(format!(
            "phase {phase_id} not found in run {run_id}"
        )));
    }
    let issue = SuggestedIssue {
        issue_key: issue_key.clone(),
        severity,
        source,
        category,
        expected_fail: false,
        evidence_refs,
        description: String::new(),
    };
    let processed = slot
        .send(|reply| Command::Interject {
            input: Input::IssuesReported {
                at: chrono::Utc::now(),
                phase_id: phase_id.clone(),
                issues: vec![issue],
            },
            issue: Some((phase_id.clone(), issue_key.clone())),
            reply,
        })
        .await?;
    let (phase_file, run_index_entry, project_backlog_entry) =
        processed.issue_views.unwrap_or_default();
    Ok(axum::Json(seed::RecordIssueReply {
        message: format!("issue {issue_key} recorded for phase {phase_id}"),
        phase_file,
        run_index_entry,
        project_backlog_entry,
    })
    .into_response())
}

fn word_of<T: serde::de::DeserializeOwned>(word: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(word.to_owned())).map_err(|e| e.to_string())
}

/// `POST /runs/{run_id}/abort`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AbortBody {
    /// Why.
    reason: String,
}

/// `POST /runs/{run_id}/abort` (operator): the run ends `DONE_FAILED_MANUAL_ABORT`.
#[utoipa::path(post, path = "/runs/{run_id}/abort", tag = "runs",
    params(("run_id" = String, Path)),
    request_body = AbortBody,
    responses((status = 200, body = seed::Run), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub(super) async fn abort(
    State(state): AppStateRef,
    Path(run_id): Path<String>,
    Extension(principal): Extension<Principal>,
    StrictJson(body): StrictJson<AbortBody>,
) -> Result<Response, ApiError> {
    let run_id = seed::run_id(&run_id)?;
    let (slot, _) = state.slot(&run_id).await?;
    let processed = slot
        .send(|reply| Command::Interject {
            input: Input::Abort {
                at: chrono::Utc::now(),
                reason: format!("{} (by {})", body.reason, principal.holder()),
            },
            issue: None,
            reply,
        })
        .await?;
    Ok(json_bytes(StatusCode::OK, processed.view.run_json.clone()))
}

/// `POST /runs/{run_id}/promote`'s reply.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct PromoteReply {
    /// The branch promoted to.
    target: String,
    /// Its commit now.
    commit: String,
    /// What happened.
    message: String,
}

/// `POST /runs/{run_id}/promote` (operator): the integration branch of a finished,
/// eligible run goes to the base branch (a fast-forward).
#[utoipa::path(post, path = "/runs/{run_id}/promote", tag = "runs",
    params(("run_id" = String, Path)),
    responses((status = 200, body = PromoteReply), (status = 400, description = "Not eligible", body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub(super) async fn promote(
    State(state): AppStateRef,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    let run_id = seed::run_id(&run_id)?;
    let (_, view) = state.slot(&run_id).await?;
    if let Err(refusals) = autopack::promotion::eligibility(&view.record) {
        return Err(ApiError::bad_request(format!(
            "run {run_id} is not eligible for promotion: {}",
            refusals
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let host = Arc::clone(&state.host);
    let record = view.record.clone();
    let id = run_id.clone();
    let promoted = blocking("promoting", move || host.promote(&id, &record)).await?;
    Ok(axum::Json(PromoteReply {
        target: promoted.target,
        commit: promoted.commit,
        message: promoted.message,
    })
    .into_response())
}

/// `GET /runs/{run_id}/events`: Server-Sent Events — every event so far, then the next
/// ones as they happen; the stream ends with the run.
#[utoipa::path(get, path = "/runs/{run_id}/events", tag = "runs",
    params(("run_id" = String, Path)),
    responses((status = 200, description = "text/event-stream of RunEvent JSON (`event:` its kind, `id:` its number)", body = crate::RunEvent), (status = 404, body = crate::error::ErrorBody)))]
pub(super) async fn events(
    State(state): AppStateRef,
    Path(run_id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let run_id = seed::run_id(&run_id)?;
    let (slot, _) = state.slot(&run_id).await?;
    let (history, live) = slot.events.subscribe();
    let last = history.last().map_or(0, |e| e.seq);
    let past = stream::iter(history);
    let next = match live {
        Some(rx) => tokio_stream::wrappers::BroadcastStream::new(rx)
            // A lagging reader skips what it missed (the run does not wait for it).
            .filter_map(move |item| async move { item.ok().filter(|e| e.seq > last) })
            .boxed(),
        None => stream::empty().boxed(),
    };
    let stream = past.chain(next).map(|item| {
        Ok(Event::default()
            .event(item.event.name())
            .id(item.seq.to_string())
            .json_data(&item.event)
            .unwrap_or_else(|_| Event::default().comment("unserialisable event")))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
