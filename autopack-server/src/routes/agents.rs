//! Agent answers: the seed's `builder_result`, `auditor_request`, `auditor_result`, and
//! the one path every answer takes to the session (also the workers').

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use autopack::core::message::{AuditorResult, BuilderResult};
use autopack::core::record::{AttemptOutcome, AttemptRole, PhaseRecord};
use autopack::driver::AgentCall;
use autopack::supervisor::AgentOutcome;

use super::AppStateRef;
use crate::attempts::{Offer, Proof, Refusal};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, StrictJson};
use crate::seed::{self, SeedAuditorRequest, SeedAuditorResult, SeedBuilderResult};
use crate::session::{Command, Processed, RunSlot, lock};

/// An answer to an agent attempt.
pub(super) enum Answer {
    Builder(AgentOutcome<BuilderResult>),
    Auditor(AgentOutcome<AuditorResult>),
}

impl Answer {
    fn role(&self) -> AttemptRole {
        match self {
            Answer::Builder(_) => AttemptRole::Builder,
            Answer::Auditor(_) => AttemptRole::Auditor,
        }
    }
}

pub(super) fn refusal_error(refusal: Refusal, state: String) -> ApiError {
    match refusal {
        Refusal::LeasedToOther { .. } => ApiError::forbidden(refusal.to_string()),
        Refusal::NotAwaited { .. } | Refusal::NotLeased { .. } => {
            ApiError::conflict(refusal.to_string(), state, "answer")
        }
    }
}

/// Closes attempt `id` for `proof` and hands `answer` to the session; waits until the
/// Supervisor has processed it.
pub(super) async fn submit(
    slot: &Arc<RunSlot>,
    id: &str,
    proof: &Proof,
    answer: Answer,
) -> Result<(AgentCall, Processed), ApiError> {
    let state = slot
        .view()
        .map(|v| seed::word(&v.record.state))
        .unwrap_or_default();
    let call = {
        let mut board = lock(&slot.board);
        match board.open() {
            Some(o) if o.id == id && o.call.role() != answer.role() => {
                return Err(ApiError::conflict(
                    format!(
                        "attempt {id} is a {} attempt; this is a {} answer",
                        seed::role_word(o.call.role()),
                        seed::role_word(answer.role())
                    ),
                    state,
                    "answer",
                ));
            }
            _ => {}
        }
        board
            .submit(id, proof, Utc::now())
            .map_err(|r| refusal_error(r, state))?
    };
    let result = slot
        .send(|reply| match answer {
            Answer::Builder(outcome) => Command::Builder { outcome, reply },
            Answer::Auditor(outcome) => Command::Auditor { outcome, reply },
        })
        .await;
    match result {
        Ok(processed) => Ok((call, processed)),
        Err(err) => {
            if err.status == StatusCode::CONFLICT {
                lock(&slot.board).reopen(id);
            }
            Err(err)
        }
    }
}

/// The open attempt of `role` for `phase_id`, or a 409 saying what the run waits for.
fn awaited(slot: &RunSlot, phase_id: &str, role: AttemptRole) -> Result<Offer, ApiError> {
    let board = lock(&slot.board);
    if let Some(o) = board.open()
        && o.call.phase_id().as_str() == phase_id
        && o.call.role() == role
    {
        return Ok(o.clone());
    }
    let view = slot.view();
    let phase_state = view
        .as_ref()
        .and_then(|v| seed::find_phase(&v.record, phase_id).map(|(_, p)| seed::word(&p.state)))
        .unwrap_or_else(|| "unknown".into());
    let waits = match board.open() {
        Some(o) => format!(
            "the run waits for {} attempt {} of phase {}",
            seed::role_word(o.call.role()),
            o.call.attempt(),
            o.call.phase_id()
        ),
        None => match view {
            Some(v) => format!("the run is {}", seed::word(&v.record.state)),
            None => "the run is starting".into(),
        },
    };
    Err(ApiError::conflict(
        format!(
            "phase {phase_id} is {phase_state} and awaits no {} result: {waits}",
            seed::role_word(role)
        ),
        phase_state,
        format!("{}_result", seed::role_word(role)),
    ))
}

/// What entitles a seed endpoint's answer: the caller's lease, or (operators and clients
/// of a server without tokens) an attempt nobody leased.
fn seed_proof(principal: &Principal, offer: &Offer) -> Proof {
    match &offer.lease {
        _ if principal.anonymous => Proof::Unleased,
        None if principal.role == Role::Operator => Proof::Unleased,
        _ => Proof::Holder(principal.holder()),
    }
}

fn check_ids(body_run: &str, body_phase: &str, run: &str, phase: &str) -> Result<(), ApiError> {
    if body_run != run {
        return Err(ApiError::field(
            &["body", "run_id"],
            "value_error",
            format!("run_id {body_run} is not the path's run {run}"),
        ));
    }
    if body_phase != phase {
        return Err(ApiError::field(
            &["body", "phase_id"],
            "value_error",
            format!("phase_id {body_phase} is not the path's phase {phase}"),
        ));
    }
    Ok(())
}

/// The attempt record of `call` in the phase, once processed.
pub(super) fn attempt_of<'p>(
    phase: &'p PhaseRecord,
    call: &AgentCall,
) -> Option<&'p autopack::core::record::AttemptRecord> {
    phase
        .attempts
        .iter()
        .rev()
        .find(|a| a.role == call.role() && a.number == call.attempt())
}

/// `POST …/builder_result`: answers the Builder attempt the phase awaits; replies once
/// the Supervisor has processed it. A patch the gate refuses is a 422 (the attempt counts
/// as failed and the next one is offered).
#[utoipa::path(post, path = "/runs/{run_id}/phases/{phase_id}/builder_result", tag = "phases",
    params(("run_id" = String, Path), ("phase_id" = String, Path)),
    request_body = seed::SeedBuilderResult,
    responses(
        (status = 200, body = seed::BuilderResultReply),
        (status = 403, description = "The attempt is leased to someone else", body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "No Builder result is awaited for this phase", body = crate::error::ErrorBody),
        (status = 422, description = "Invalid body, or a patch the gate refused", body = crate::error::ValidationBody),
    ))]
pub(super) async fn builder_result(
    State(state): AppStateRef,
    Path((run_id, phase_id)): Path<(String, String)>,
    Extension(principal): Extension<Principal>,
    StrictJson(body): StrictJson<SeedBuilderResult>,
) -> Result<Response, ApiError> {
    let run = seed::run_id(&run_id)?;
    let phase = seed::phase_id(&phase_id)?;
    check_ids(&body.run_id, &body.phase_id, &run_id, &phase_id)?;
    let (slot, _) = state.slot(&run).await?;
    let offer = awaited(&slot, &phase_id, AttemptRole::Builder)?;
    let proof = seed_proof(&principal, &offer);
    let result = body.into_result(phase.clone());
    let (call, processed) = submit(
        &slot,
        &offer.id,
        &proof,
        Answer::Builder(AgentOutcome::Returned(result)),
    )
    .await?;
    let record = &processed.view.record;
    let (_, phase_record) = seed::find_phase(record, phase.as_str())
        .ok_or_else(|| ApiError::internal(format!("phase {phase} vanished from run {run}")))?;
    let attempt = attempt_of(phase_record, &call);
    let run_state = seed::word(&record.state);
    let phase_state = seed::word(&phase_record.state);
    if let Some(a) = attempt
        && a.outcome == AttemptOutcome::Failed
        && a.reason.starts_with("gate rejected")
    {
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: serde_json::json!({
                "detail": a.reason,
                "phase_state": phase_state,
                "run_state": run_state,
            }),
        });
    }
    let message = match attempt {
        Some(a) if a.outcome == AttemptOutcome::Failed => {
            format!("builder attempt {} failed: {}", call.attempt(), a.reason)
        }
        _ => format!("builder attempt {} processed", call.attempt()),
    };
    Ok(axum::Json(seed::BuilderResultReply {
        message,
        commit_sha: seed::phase_commit(phase_record),
        phase_state,
        run_state,
    })
    .into_response())
}

/// `POST …/auditor_request`: asks whether the phase awaits its Auditor, and for what.
/// The Supervisor decides when a review happens (a high-risk patch, a `needs_review`
/// Builder result, attempts exhausted); this endpoint does not change state.
#[utoipa::path(post, path = "/runs/{run_id}/phases/{phase_id}/auditor_request", tag = "phases",
    params(("run_id" = String, Path), ("phase_id" = String, Path)),
    request_body = seed::SeedAuditorRequest,
    responses(
        (status = 200, body = seed::AuditorRequestReply),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "The phase awaits no review", body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ValidationBody),
    ))]
pub(super) async fn auditor_request(
    State(state): AppStateRef,
    Path((run_id, phase_id)): Path<(String, String)>,
    StrictJson(body): StrictJson<SeedAuditorRequest>,
) -> Result<Response, ApiError> {
    let run = seed::run_id(&run_id)?;
    seed::phase_id(&phase_id)?;
    check_ids(&body.run_id, &body.phase_id, &run_id, &phase_id)?;
    let (slot, _) = state.slot(&run).await?;
    let offer = awaited(&slot, &phase_id, AttemptRole::Auditor)?;
    let AgentCall::Auditor(request) = &offer.call else {
        return Err(ApiError::internal(
            "an Auditor offer without an Auditor request",
        ));
    };
    Ok(axum::Json(seed::AuditorRequestReply {
        message: format!(
            "phase {phase_id} awaits Auditor attempt {} ({})",
            request.attempt, request.reason
        ),
        review_focus: body.review_focus.unwrap_or_else(|| "general".into()),
        auditor_profile: request.auditor_profile.clone().or(body.auditor_profile),
        reason: request.reason.to_string(),
        attempt: request.attempt,
    })
    .into_response())
}

/// `POST …/auditor_result`: answers the Auditor attempt the phase awaits.
#[utoipa::path(post, path = "/runs/{run_id}/phases/{phase_id}/auditor_result", tag = "phases",
    params(("run_id" = String, Path), ("phase_id" = String, Path)),
    request_body = seed::SeedAuditorResult,
    responses(
        (status = 200, body = seed::AuditorResultReply),
        (status = 403, description = "The attempt is leased to someone else", body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "No Auditor result is awaited for this phase", body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ValidationBody),
    ))]
pub(super) async fn auditor_result(
    State(state): AppStateRef,
    Path((run_id, phase_id)): Path<(String, String)>,
    Extension(principal): Extension<Principal>,
    StrictJson(body): StrictJson<SeedAuditorResult>,
) -> Result<Response, ApiError> {
    let run = seed::run_id(&run_id)?;
    let phase = seed::phase_id(&phase_id)?;
    check_ids(&body.run_id, &body.phase_id, &run_id, &phase_id)?;
    let recommendation = body.recommendation;
    let result = body.into_result(phase.clone())?;
    let had_patch = result.patch.is_some();
    let (slot, before) = state.slot(&run).await?;
    let commit_before =
        seed::find_phase(&before.record, phase.as_str()).and_then(|(_, p)| p.commit.clone());
    let offer = awaited(&slot, &phase_id, AttemptRole::Auditor)?;
    let proof = seed_proof(&principal, &offer);
    let (call, processed) = submit(
        &slot,
        &offer.id,
        &proof,
        Answer::Auditor(AgentOutcome::Returned(result)),
    )
    .await?;
    let record = &processed.view.record;
    let (_, phase_record) = seed::find_phase(record, phase.as_str())
        .ok_or_else(|| ApiError::internal(format!("phase {phase} vanished from run {run}")))?;
    let commit_after = phase_record.commit.clone();
    let applied = had_patch && commit_after.is_some() && commit_after != commit_before;
    let message = match attempt_of(phase_record, &call) {
        Some(a) if !a.reason.is_empty() => {
            format!("auditor attempt {}: {}", call.attempt(), a.reason)
        }
        _ => format!("auditor attempt {} processed", call.attempt()),
    };
    Ok(axum::Json(seed::AuditorResultReply {
        message,
        recommendation: recommendation.to_string(),
        patches_applied: u32::from(applied),
        commit_shas: if applied {
            commit_after.into_iter().map(String::from).collect()
        } else {
            Vec::new()
        },
        phase_state: seed::word(&phase_record.state),
        run_state: seed::word(&record.state),
    })
    .into_response())
}
