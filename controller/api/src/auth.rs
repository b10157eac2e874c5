//! Who is calling, as HTTP carries it: the session cookie (HttpOnly,
//! SameSite=Strict) and the `X-CSRF-Token` header it needs on every request
//! that changes something, the `Authorization: Bearer` header, the
//! [`Principal`] extractor every handler authorises against, the
//! [`PlatformAdmin`] extractor of the driver-administration endpoints.
//!
//! What a credential means is `yunshu_auth`'s: this file only finds it in the
//! request and hands it to [`yunshu_auth::resolve`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use yunshu_auth::sessions::TTL;
use yunshu_auth::{Credential, Principal};
use yunshu_domain::user::Permission;

use crate::error::ApiError;
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "yunshu_session";
/// The header that echoes the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        TTL.as_secs()
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub fn expired_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session id from a `Cookie` header, if present.
pub fn session_from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .map(str::trim)
        .find_map(|pair| pair.strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
}

/// The session id the request's `Cookie` header carries.
pub fn session_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(session_from_cookie_header)
}

/// `Cache-Control: no-store` on an answer carrying a secret (a token, a key, a
/// renewal token): no cache keeps it, nor the idempotency layer.
pub type NoStore = [(header::HeaderName, &'static str); 1];
pub const NO_STORE: NoStore = [(header::CACHE_CONTROL, "no-store")];

/// The credential a request presents: a bearer header wins over a cookie; a
/// session request that changes something echoes its CSRF token.
fn credential(parts: &Parts) -> Option<Credential<'_>> {
    match read_credential(&parts.headers)? {
        Credential::Session { id, .. } => Some(Credential::Session {
            id,
            csrf: parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()),
            changes: !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS),
        }),
        bearer => Some(bearer),
    }
}

/// The credential in `headers` as for a read (no CSRF token): also for
/// re-checking a long-lived read (an event stream) after it began.
pub(crate) fn read_credential(headers: &axum::http::HeaderMap) -> Option<Credential<'_>> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(Credential::Bearer(bearer));
    }
    Some(Credential::Session {
        id: session_of(headers)?,
        csrf: None,
        changes: false,
    })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(yunshu_auth::resolve(
            &*state.store,
            state.admin_token_sha256.as_deref(),
            credential(parts),
        )
        .await?)
    }
}

/// Present on a request allowed to manage drivers (driver bootstrap tokens,
/// the driver registry, controller client certificates): the platform admin
/// bearer token that `yunshu serve` reads from (or writes to) its admin token
/// file, or any user credential (session or API token) of someone who holds
/// `driver_manage` — so a platform admin can use them from the portal. `actor`
/// is who, for the audit log (`user:platform-admin` for the admin token).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_header_parsing() {
        assert_eq!(
            session_from_cookie_header("a=1; yunshu_session=abc; b=2"),
            Some("abc")
        );
        assert_eq!(session_from_cookie_header("yunshu_session="), None);
        assert_eq!(session_from_cookie_header("other=1"), None);
        assert!(session_cookie("x").contains("HttpOnly; SameSite=Strict"));
    }
}
