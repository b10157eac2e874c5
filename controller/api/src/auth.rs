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

/// The session cookie's name over plain HTTP (a loopback demo, tests).
pub const COOKIE: &str = "yunshu_session";
/// Its name over HTTPS: the `__Host-` prefix makes the browser refuse it
/// unless it is `Secure`, set by this very host and for path `/` — so neither
/// a plain-HTTP page nor a sibling subdomain can plant or overwrite a session
/// (issue 16 item 16).
pub const SECURE_COOKIE: &str = "__Host-yunshu_session";

fn cookie_name(secure: bool) -> &'static str {
    if secure { SECURE_COOKIE } else { COOKIE }
}
/// The header that echoes the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The `Set-Cookie` value for a new session; `secure` when the API is reached
/// over HTTPS.
pub fn session_cookie(id: &str, secure: bool) -> String {
    let name = cookie_name(secure);
    let flag = if secure { "; Secure" } else { "" };
    format!(
        "{name}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{flag}",
        TTL.as_secs()
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub fn expired_cookie(secure: bool) -> String {
    let name = cookie_name(secure);
    let flag = if secure { "; Secure" } else { "" };
    format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{flag}")
}

/// The session id from a `Cookie` header, if present. Over HTTPS only the
/// `__Host-` cookie counts: a plain one could have been planted.
pub fn session_from_cookie_header(header: &str, secure: bool) -> Option<&str> {
    let name = cookie_name(secure);
    header
        .split(';')
        .map(str::trim)
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
}

/// The session id the request's `Cookie` header carries.
pub fn session_of(headers: &axum::http::HeaderMap, secure: bool) -> Option<&str> {
    headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| session_from_cookie_header(h, secure))
}

/// `Cache-Control: no-store` on an answer carrying a secret (a token, a key, a
/// renewal token): no cache keeps it, nor the idempotency layer.
pub type NoStore = [(header::HeaderName, &'static str); 1];
pub const NO_STORE: NoStore = [(header::CACHE_CONTROL, "no-store")];

/// The credential a request presents: a bearer header wins over a cookie; a
/// session request that changes something echoes its CSRF token.
fn credential(parts: &Parts, secure: bool) -> Option<Credential<'_>> {
    match read_credential(&parts.headers, secure)? {
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
pub(crate) fn read_credential(
    headers: &axum::http::HeaderMap,
    secure: bool,
) -> Option<Credential<'_>> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(Credential::Bearer(bearer));
    }
    Some(Credential::Session {
        id: session_of(headers, secure)?,
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
            credential(parts, state.secure_cookies),
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
            session_from_cookie_header("a=1; yunshu_session=abc; b=2", false),
            Some("abc")
        );
        assert_eq!(session_from_cookie_header("yunshu_session=", false), None);
        assert_eq!(session_from_cookie_header("other=1", false), None);
        assert!(session_cookie("x", false).contains("HttpOnly; SameSite=Strict"));
    }

    /// Security issue item 16: over HTTPS the session cookie is `__Host-` and
    /// `Secure`, and a plain-named cookie (which a plain-HTTP page or a
    /// sibling subdomain could plant) is not read as a session.
    #[test]
    fn cookies_over_tls_are_secure_host_cookies_and_plain_ones_are_ignored() {
        let set = session_cookie("abc", true);
        assert!(
            set.starts_with("__Host-yunshu_session=abc; Path=/;"),
            "{set}"
        );
        assert!(
            set.contains("; Secure") && set.contains("HttpOnly"),
            "{set}"
        );
        assert!(!session_cookie("abc", false).contains("Secure"));
        assert!(expired_cookie(true).starts_with("__Host-yunshu_session=;"));
        assert!(expired_cookie(true).contains("; Secure"));
        assert_eq!(
            session_from_cookie_header("yunshu_session=planted", true),
            None
        );
        assert_eq!(
            session_from_cookie_header("yunshu_session=planted; __Host-yunshu_session=real", true),
            Some("real")
        );
        assert_eq!(
            session_from_cookie_header("__Host-yunshu_session=real", false),
            None
        );
    }
}
