//! Platform-admin authentication for the admin endpoints, until users and roles
//! arrive: a bearer token that `yunshu serve` reads from (or writes to) its admin
//! token file, compared by SHA-256.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::ApiError;
use crate::AppState;

/// Present on a request that carried the admin bearer token.
pub struct PlatformAdmin;

impl FromRequestParts<AppState> for PlatformAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let denied = || {
            ApiError::refused(
                StatusCode::UNAUTHORIZED,
                "ADMIN_TOKEN_REQUIRED",
                "This needs the platform admin token (Authorization: Bearer …).",
                "此操作需要平台管理员令牌（Authorization: Bearer …）。",
            )
        };
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(denied)?;
        if state.is_admin_token(presented) {
            Ok(PlatformAdmin)
        } else {
            Err(denied())
        }
    }
}
