//! Users and login over HTTP: create a user with role bindings, list users, log
//! in and out, who am I. What each step checks and writes is
//! `yunshu_auth::users`'; this file owns the wire shapes and the cookie.

use axum::Extension;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_auth::users::{self, Grant, NewUser};
use yunshu_domain::user::{Permission, Role, RoleBinding, Scope, User, UserState};

use crate::auth::{expired_cookie, session_cookie, session_of};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RoleRequest {
    /// A `Role` (domain type, `{"name": …}`).
    #[schema(value_type = Object)]
    pub role: Role,
    /// A `Scope` (domain type, `{"type": …}`).
    #[schema(value_type = Object)]
    pub scope: Scope,
    /// Narrow the role to these permissions (default: all of the role's).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub permissions: Option<std::collections::BTreeSet<Permission>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateUserRequest {
    pub id: String,
    pub display_name: String,
    /// The user's department (使用单位) code; absent for platform staff.
    pub tenant: Option<String>,
    /// The user's org unit (主管部门), for a unit admin (`unit_admin` at
    /// `{"type": "org_unit", "unit": …}`); never together with `tenant`.
    #[serde(default)]
    pub org_unit: Option<String>,
    /// Only a tenant admin may set one, for its own department's users.
    /// Absent: the answer carries a one-time activation code and the user sets
    /// their own password (`POST /api/v1/activate`). A platform user manager
    /// must leave it out (`PASSWORD_SET_BY_USER`).
    #[serde(default)]
    pub password: Option<String>,
    pub roles: Vec<RoleRequest>,
}

/// A one-time activation code: the user sets their own password with it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActivationView {
    /// Shown only here, never stored (only its SHA-256 is).
    pub code: String,
    /// The code works once, until then (72 hours).
    pub expires_at: chrono::DateTime<Utc>,
    /// The portal page that sets the password: `/activate#<code>` (the code in
    /// the fragment never reaches a server log).
    pub link: String,
}

impl From<yunshu_auth::activation::Issued> for ActivationView {
    fn from(issued: yunshu_auth::activation::Issued) -> Self {
        Self {
            link: format!("/activate#{}", issued.code),
            code: issued.code,
            expires_at: issued.expires_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub display_name: String,
    pub tenant: Option<String>,
    /// `Role`s (domain type, `{"name": …}`).
    #[schema(value_type = Vec<Object>)]
    pub roles: Vec<Role>,
    /// Present when no password was set: hand it to the user, once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub activation: Option<ActivationView>,
}

/// `POST /api/v1/users`
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "The new user; without a password, a one-time `activation` (Cache-Control: no-store)", body = UserView,
            headers(("cache-control" = String, description = "`no-store`"))),
        (status = 400, description = "Malformed body or invalid field (a stable code says which); PASSWORD_SET_BY_USER: a platform user manager typed a password; PASSWORD_TOO_WEAK", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
        (status = 404, description = "TENANT_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "USER_EXISTS; ROLES_SEPARATED: roles one person may not hold together (三员分立: system, security and audit administrators apart, none of them with a tenant-data role)", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn create_user(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<yunshu_workflow::Clock>>,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, crate::auth::NoStore, Json<UserView>), ApiError> {
    let new = NewUser {
        id: req.id,
        display_name: req.display_name,
        tenant: req.tenant,
        org_unit: req.org_unit,
        password: req.password,
        grants: req
            .roles
            .into_iter()
            .map(|r| Grant {
                role: r.role,
                scope: r.scope,
                permissions: r.permissions,
            })
            .collect(),
    };
    let now = crate::context::now_of(clock);
    let created = users::create(&*state.store, &caller, new, now).await?;
    Ok((
        StatusCode::CREATED,
        crate::auth::NO_STORE,
        Json(UserView {
            id: created.user.id.to_string(),
            display_name: created.user.display_name.to_string(),
            tenant: created.user.tenant.map(|t| t.to_string()),
            roles: created.bindings.iter().map(|b| b.role().clone()).collect(),
            activation: created.activation.map(ActivationView::from),
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ActivateRequest {
    /// The one-time code from the account's creation (or a reset by a
    /// platform user manager).
    pub code: String,
    /// The password the user chooses.
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Activated {
    /// Who may now sign in with the new password.
    pub user: String,
}

/// `POST /api/v1/activate`: anonymous; the user sets their own password with
/// a one-time activation code, then signs in.
#[utoipa::path(
    post,
    path = "/api/v1/activate",
    tag = "auth",
    request_body = ActivateRequest,
    responses(
        (status = 200, description = "The password is set; the code is used up", body = Activated),
        (status = 400, description = "ACTIVATION_INVALID: the code is unknown, used or expired; PASSWORD_TOO_WEAK; or a malformed body", body = crate::error::ErrorBody),
        (status = 429, description = "LOGIN_RATE_LIMITED: too many unsuccessful attempts from this address. `Retry-After` says when to try again", body = crate::error::ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn activate(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    clock: Option<Extension<yunshu_workflow::Clock>>,
    ApiJson(req): ApiJson<ActivateRequest>,
) -> Result<Response, ApiError> {
    // Guessing codes shares the sign-in limit per source address.
    let source = match admit(&state, peer, &headers) {
        Ok(source) => source,
        Err(retry) => {
            return Ok(too_many(
                "LOGIN_RATE_LIMITED",
                retry,
                "Too many attempts from this address; wait and try again.",
                "此地址尝试过多，请稍后再试。",
            ));
        }
    };
    let now = crate::context::now_of(clock);
    let user =
        yunshu_auth::activation::activate(&*state.store, &req.code, req.password, now).await?;
    state.login_gate.succeeded(source);
    Ok(Json(Activated {
        user: user.id.to_string(),
    })
    .into_response())
}

/// One user in the users list: who, where, what roles at which scope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserListItem {
    pub id: String,
    pub display_name: String,
    pub tenant: Option<String>,
    /// The org unit of a unit admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub org_unit: Option<String>,
    /// `active` or `disabled`.
    pub state: String,
    pub created_at: chrono::DateTime<Utc>,
    /// `RoleBinding`s (domain type: role, scope, permissions, granted by/at).
    #[schema(value_type = Vec<Object>)]
    pub bindings: Vec<RoleBinding>,
}

impl UserListItem {
    pub(crate) fn of(user: User, bindings: Vec<RoleBinding>) -> Self {
        Self {
            id: user.id.to_string(),
            display_name: user.display_name.to_string(),
            tenant: user.tenant.map(|t| t.to_string()),
            org_unit: user.org_unit.map(|u| u.to_string()),
            state: match user.state {
                UserState::Active => "active",
                UserState::Disabled => "disabled",
            }
            .to_owned(),
            created_at: user.created_at,
            bindings,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserList {
    pub items: Vec<UserListItem>,
}

/// `GET /api/v1/users`: the users the caller manages — every user for a
/// platform user manager, a department's own users for its tenant admin, the
/// users of the tenants under its unit and the unit admins below it for a
/// unit admin.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Users with their role bindings, by id", body = UserList),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs user_manage or tenant_user_manage", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn list_users(
    caller: Principal,
    State(state): State<AppState>,
) -> Result<Json<UserList>, ApiError> {
    let items = users::list(&*state.store, &caller)
        .await?
        .into_iter()
        .map(|(user, bindings)| UserListItem::of(user, bindings))
        .collect();
    Ok(Json(UserList { items }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub user: String,
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    pub user: String,
    pub display_name: String,
    pub tenant: Option<String>,
    /// `Role`s (domain type, `{"name": …}`).
    #[schema(value_type = Vec<Object>)]
    pub roles: Vec<Role>,
    /// Echo in `X-CSRF-Token` on every request that changes something.
    pub csrf_token: String,
}

/// `POST /api/v1/auth/login`: sets the `yunshu_session` cookie.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = LoginResponse,
            headers(("set-cookie" = String, description = "`yunshu_session=…; HttpOnly; SameSite=Strict` (over HTTPS `__Host-yunshu_session=…; …; Secure`)"))),
        (status = 400, description = "Malformed body or invalid field (a stable code says which)", body = crate::error::ErrorBody),
        (status = 401, description = "LOGIN_FAILED", body = crate::error::ErrorBody),
        (status = 423, description = "ACCOUNT_LOCKED after repeated failures", body = crate::error::ErrorBody),
        (status = 429, description = "LOGIN_RATE_LIMITED: too many unsuccessful attempts from this address; LOGIN_BUSY: no hashing slot free. `Retry-After` says when to try again", body = crate::error::ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let source = match admit(&state, peer, &headers) {
        Ok(source) => source,
        Err(retry) => {
            return Ok(too_many(
                "LOGIN_RATE_LIMITED",
                retry,
                "Too many sign-in attempts from this address; wait and try again.",
                "此地址登录尝试过多，请稍后再试。",
            ));
        }
    };
    let gate = &state.login_gate;
    // Bounds the memory argon2 takes however many attempts arrive at once.
    let Some(_slot) = gate.hash_slot().await else {
        return Ok(too_many(
            "LOGIN_BUSY",
            std::time::Duration::from_secs(1),
            "Sign-in is busy; try again in a moment.",
            "登录繁忙，请稍后再试。",
        ));
    };
    let signed_in = users::login(&*state.store, &req.user, req.password).await?;
    gate.succeeded(source);
    let body = LoginResponse {
        user: signed_in.user.id.to_string(),
        display_name: signed_in.user.display_name.to_string(),
        tenant: signed_in.user.tenant.map(|t| t.to_string()),
        roles: signed_in.roles,
        csrf_token: signed_in.session.csrf_token,
    };
    Ok((
        [(
            header::SET_COOKIE,
            session_cookie(&signed_in.session_id, state.secure_cookies),
        )],
        Json(body),
    )
        .into_response())
}

/// The caller's source address if the per-source limit lets it try now;
/// otherwise how long until it may.
fn admit(
    state: &AppState,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> Result<IpAddr, std::time::Duration> {
    let source = source_address(state, peer.map(|Extension(ConnectInfo(p))| p), headers);
    state
        .login_gate
        .admit(source, std::time::Instant::now())
        .map(|()| source)
}

/// Who is signing in, for the per-source limit: the peer, or behind a
/// trusted proxy the first `X-Forwarded-For` entry. In-process callers
/// without a peer share one bucket.
fn source_address(state: &AppState, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
    let forwarded = state
        .trust_forwarded_for
        .then(|| headers.get("x-forwarded-for"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    forwarded
        .or(peer.map(|p| p.ip()))
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// 429 with `Retry-After` in whole seconds.
fn too_many(code: &'static str, retry: std::time::Duration, en: &str, zh: &str) -> Response {
    let mut response =
        ApiError::refused(StatusCode::TOO_MANY_REQUESTS, code, en, zh).into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(retry.as_secs().max(1)),
    );
    response
}

/// `POST /api/v1/auth/logout`: ends the session and expires the cookie.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "Missing or wrong X-CSRF-Token", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn logout(
    _caller: Principal,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(id) = session_of(&headers, state.secure_cookies) {
        yunshu_auth::sessions::end(&*state.store, id).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, expired_cookie(state.secure_cookies))],
    )
        .into_response())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub actor: String,
    pub tenant: Option<String>,
    /// `Role`s (domain type, `{"name": …}`).
    #[schema(value_type = Vec<Object>)]
    pub roles: Vec<Role>,
    /// Every permission the caller holds (after narrowing and token scopes).
    #[schema(value_type = Vec<String>)]
    pub permissions: std::collections::BTreeSet<Permission>,
}

/// `GET /api/v1/auth/me`
#[utoipa::path(
    get,
    path = "/api/v1/auth/me",
    tag = "auth",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Who the caller is and what they may do", body = Me),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn me(caller: Principal) -> Json<Me> {
    Json(Me {
        actor: caller.actor.to_string(),
        tenant: caller.tenant.as_ref().map(ToString::to_string),
        roles: caller.roles().into_iter().cloned().collect(),
        permissions: caller.permissions(),
    })
}
