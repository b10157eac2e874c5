//! Authentication for the driver-administration endpoints (driver bootstrap
//! tokens, the driver registry, controller client certificates): the platform
//! admin bearer token that `yunshu serve` reads from (or writes to) its admin
//! token file, or any user credential (session or API token) of someone who
//! holds `driver_manage` — so a platform admin can use them from the portal.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use yunshu_domain::user::Permission;

use super::ApiError;
use crate::AppState;
use crate::auth::principal::Principal;

/// Present on a request allowed to manage drivers; `actor` is who, for the
/// audit log (`user:platform-admin` for the admin token).
pub struct PlatformAdmin {
    pub actor: String,
}

impl FromRequestParts<AppState> for PlatformAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let denied = || {
            ApiError::refused(
                StatusCode::UNAUTHORIZED,
                "ADMIN_TOKEN_REQUIRED",
                "This needs the platform admin token (Authorization: Bearer …) or a platform admin's sign-in.",
                "此操作需要平台管理员令牌（Authorization: Bearer …）或平台管理员登录。",
            )
        };
        // The principal extractor knows the admin token, sessions (with their
        // CSRF check) and API tokens; anything it cannot authenticate is the
        // same 401 as before users existed.
        let caller = Principal::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::UNAUTHORIZED {
                    denied()
                } else {
                    e
                }
            })?;
        caller.require(Permission::DriverManage, None)?;
        Ok(PlatformAdmin {
            actor: caller.actor.to_string(),
        })
    }
}
