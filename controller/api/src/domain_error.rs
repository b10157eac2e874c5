//! Domain validation errors as API errors: 400 with the domain's stable code and
//! both languages.

use axum::http::StatusCode;
use yunshu_domain::ErrorCode;

use crate::error::ApiError;

/// Any domain error (they all carry a stable code and a Chinese message).
pub fn invalid(e: &impl ErrorCode) -> ApiError {
    ApiError::refused(
        StatusCode::BAD_REQUEST,
        e.code(),
        e.to_string(),
        e.message_zh(),
    )
}
