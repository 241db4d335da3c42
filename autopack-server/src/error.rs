//! Every error the service answers, as JSON: `{"detail": "…"}` (the first implementation's
//! shape), with `state` and `event` for refused transitions; validation errors as
//! `{"detail": [{"type", "loc", "msg", "input"}]}` (422), `loc` naming the field.
//!
//! Request bodies and queries are read strictly through [`StrictJson`] and [`StrictQuery`]:
//! unknown fields, wrong types and missing fields are 422s naming the field; an
//! oversized body is 413; nothing a client sends is a 5xx.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One validation problem, as the first implementation's framework reported them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    /// `missing`, `value_error`, `json_invalid`, `extra_forbidden`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Where: `["body", "run", "run_id"]`, `["query", "severity"]`, `["path", "run_id"]`.
    pub loc: Vec<String>,
    /// What is wrong.
    pub msg: String,
    /// The value at fault, when short.
    pub input: Option<serde_json::Value>,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: serde_json::Value,
}

/// The body of an error other than a validation error.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in a sentence.
    pub detail: String,
    /// The state that refused an event (409 on an illegal transition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The event that was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

/// The body of a 422.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ValidationBody {
    /// Every problem found.
    pub detail: Vec<FieldProblem>,
}

impl ApiError {
    /// `status` with `{"detail": detail}`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: serde_json::json!({ "detail": detail.into() }),
        }
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 409 naming the state that refused the event.
    pub fn conflict(
        detail: impl Into<String>,
        state: impl Into<String>,
        event: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            body: serde_json::to_value(ErrorBody {
                detail: detail.into(),
                state: Some(state.into()),
                event: Some(event.into()),
            })
            .unwrap_or_default(),
        }
    }

    /// 422 with these problems.
    pub fn invalid(problems: Vec<FieldProblem>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: serde_json::to_value(ValidationBody { detail: problems }).unwrap_or_default(),
        }
    }

    /// 422 for one field.
    pub fn field(loc: &[&str], kind: &str, msg: impl Into<String>) -> ApiError {
        ApiError::invalid(vec![FieldProblem {
            kind: kind.into(),
            loc: loc.iter().map(|s| (*s).to_owned()).collect(),
            msg: msg.into(),
            input: None,
        }])
    }

    /// 500 for a failure of the server's own machinery (a journal, the repository),
    /// never for anything a client sent.
    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }

    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, detail)
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, detail)
    }

    /// The detail, as text.
    pub fn detail(&self) -> String {
        match &self.body["detail"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = axum::Json(self.body).into_response();
        *response.status_mut() = self.status;
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// The path of a JSON error as `loc` (`run.run_id` → `["body", "run", "run_id"]`,
/// `phases[2].name` → `["body", "phases", "2", "name"]`).
pub(crate) fn loc_of(root: &str, path: &str) -> Vec<String> {
    let mut loc = vec![root.to_owned()];
    if path != "." && path != "?" && !path.is_empty() {
        for part in path.split('.') {
            match part.split_once('[') {
                Some((name, rest)) => {
                    if !name.is_empty() {
                        loc.push(name.to_owned());
                    }
                    for index in rest.split('[') {
                        loc.push(index.trim_end_matches(']').to_owned());
                    }
                }
                None => loc.push(part.to_owned()),
            }
        }
    }
    loc
}

fn kind_of(message: &str) -> &'static str {
    if message.starts_with("missing field") {
        "missing"
    } else if message.starts_with("unknown field") {
        "extra_forbidden"
    } else if message.starts_with("invalid type") {
        "type_error"
    } else if message.contains("expected") && message.contains("at line") {
        "json_invalid"
    } else {
        "value_error"
    }
}

/// A JSON error of `root` (`body`, `query`) as a 422.
pub(crate) fn from_json_error(root: &str, err: &autopack::core::json::JsonError) -> ApiError {
    ApiError::invalid(vec![FieldProblem {
        kind: kind_of(&err.message).into(),
        loc: loc_of(root, &err.path),
        msg: err.message.clone(),
        input: None,
    }])
}

/// A JSON body read strictly: unknown fields, wrong types and missing fields are 422s
/// naming the field; a body over the server's limit is 413; an empty body is a 422
/// `missing` of `body`.
#[derive(Debug, Clone)]
pub struct StrictJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for StrictJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = bytes::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        parse_body(&bytes).map(StrictJson)
    }
}

/// Reads a JSON body (what [`StrictJson`] does after reading the bytes).
///
/// # Errors
/// 422 naming the field.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::field(
            &["body"],
            "missing",
            "a JSON body is required",
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::field(&["body"], "json_invalid", "the body is not UTF-8"))?;
    autopack::core::json::from_str(text, "request body").map_err(|e| from_json_error("body", &e))
}

/// A query string read strictly, as [`StrictJson`] reads bodies.
#[derive(Debug, Clone)]
pub struct StrictQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for StrictQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str::<T>(query)
            .map(StrictQuery)
            .map_err(|e| {
                let msg = e.to_string();
                // serde names the field in backticks: "missing field `severity`".
                let mut loc = vec!["query".to_owned()];
                if let Some(field) = msg.split('`').nth(1) {
                    loc.push(field.to_owned());
                }
                ApiError::invalid(vec![FieldProblem {
                    kind: kind_of(&msg).into(),
                    loc,
                    msg,
                    input: None,
                }])
            })
    }
}
