//! The API's one error type: JSON with a machine code, a message naming what to fix, the bad
//! parameter, and for filters the position of the error.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, ToSchema, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status (not serialized: it is the response's status).
    #[serde(skip)]
    pub status: u16,
    /// Machine-readable code: `bad_parameter`, `bad_filter`, `budget_exceeded`, `busy`,
    /// `store_error`, `not_found`.
    pub code: &'static str,
    /// What went wrong and how to fix it.
    pub message: String,
    /// The query parameter at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<&'static str>,
    /// For `bad_filter`: the character position (0-based) of the error in the filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ApiError,
}

impl ApiError {
    /// A bad query parameter (400).
    pub fn param(parameter: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            code: "bad_parameter",
            message: message.into(),
            parameter: Some(parameter),
            position: None,
        }
    }

    /// A filter that does not parse (400), with its position.
    pub fn filter(e: &flowsight_query::filter::FilterError) -> ApiError {
        ApiError {
            status: 400,
            code: "bad_filter",
            message: e.to_string(),
            parameter: Some("filter"),
            position: Some(e.input[..e.pos.min(e.input.len())].chars().count()),
        }
    }

    /// A failure of the server's own (503 for budgets, 500 otherwise).
    pub fn server(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            parameter: None,
            position: None,
        }
    }
}

impl From<flowsight_query::engine::QueryError> for ApiError {
    fn from(e: flowsight_query::engine::QueryError) -> ApiError {
        match e {
            flowsight_query::engine::QueryError::Invalid(m) => ApiError {
                status: 400,
                code: "bad_parameter",
                message: m,
                parameter: None,
                position: None,
            },
            other => ApiError::server(500, "store_error", other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(ErrorBody { error: self })).into_response()
    }
}
