//! The API's one error type and its JSON body.
//!
//! Codes are API: add new ones, never rename them. A 4xx speaks to the user in both
//! languages; a 5xx says little and the detail goes to the log.

use axum::Json;
use axum::extract::OriginalUri;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// `{code, message, message_zh, details}` — every API error looks like this.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `AUTH_REQUIRED`.
    #[schema(value_type = String)]
    pub code: &'static str,
    pub message: String,
    pub message_zh: String,
    /// Extra structured detail, when there is any.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    #[schema(value_type = Option<Object>, required = false)]
    pub details: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no such resource: {path}")]
    NotFound { path: String },
    #[error("the store is unavailable")]
    StoreUnavailable(#[source] yunshu_store::StoreError),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A refusal the caller can act on: bad input, bad credentials, a conflict.
    #[error("{code}: {message}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
        message_zh: String,
        /// Structured detail, e.g. every bad row of an upload; `Null` if none.
        details: serde_json::Value,
    },
}

impl ApiError {
    /// A 4xx with a stable code and both languages.
    pub fn refused(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        message_zh: impl Into<String>,
    ) -> Self {
        ApiError::Refused {
            status,
            code,
            message: message.into(),
            message_zh: message_zh.into(),
            details: serde_json::Value::Null,
        }
    }

    /// Adds structured detail to a refusal (no effect on other errors).
    pub fn with_details(mut self, value: serde_json::Value) -> Self {
        if let ApiError::Refused { details, .. } = &mut self {
            *details = value;
        }
        self
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(e))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Refused { status, .. } => *status,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (code, message, message_zh, details) = match self {
            ApiError::Refused {
                code,
                message,
                message_zh,
                details,
                ..
            } => (*code, message.clone(), message_zh.clone(), details.clone()),
            ApiError::NotFound { path } => (
                "NOT_FOUND",
                format!("No resource at {path}."),
                format!("未找到资源：{path}。"),
                serde_json::Value::Null,
            ),
            ApiError::StoreUnavailable(_) => (
                "STORE_UNAVAILABLE",
                "The data store is unavailable; try again shortly.".to_owned(),
                "数据存储暂不可用，请稍后重试。".to_owned(),
                serde_json::Value::Null,
            ),
            ApiError::Internal(_) => (
                "INTERNAL",
                "Something went wrong on our side; it has been logged.".to_owned(),
                "系统内部错误，已记录日志。".to_owned(),
                serde_json::Value::Null,
            ),
        };
        ErrorBody {
            code,
            message,
            message_zh,
            details,
        }
    }
}

impl From<yunshu_store::StoreError> for ApiError {
    fn from(e: yunshu_store::StoreError) -> Self {
        if e.is_retryable() {
            ApiError::StoreUnavailable(e)
        } else {
            ApiError::Internal(Box::new(e))
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %yunshu_domain::error::chain(&self), "request failed");
        }
        (status, Json(self.body())).into_response()
    }
}

/// The fallback of every router: nested routers see a stripped URI, so the path is
/// taken from the original request.
pub(crate) async fn not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::NotFound {
        path: uri.path().to_owned(),
    }
}
