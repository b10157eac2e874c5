//! Offboarding over HTTP (issue 16 item 12): disable and re-enable a user,
//! reset a password, remove a role binding, end all of a user's sessions and
//! API tokens. Who may, and what each writes, is `yunshu_auth::offboarding`'s;
//! this file owns the wire shapes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_auth::offboarding::{self, Ended, Reset};
use yunshu_domain::user::{User, UserState};

use crate::error::ApiError;
use crate::json::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::users::UserListItem;

/// What ending a user's credentials did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CredentialsEnded {
    /// Sessions ended.
    pub sessions_ended: usize,
    /// API tokens revoked.
    pub tokens_revoked: usize,
}

impl From<Ended> for CredentialsEnded {
    fn from(e: Ended) -> Self {
        Self {
            sessions_ended: e.sessions,
            tokens_revoked: e.tokens,
        }
    }
}

/// A user after a state change, with what the change ended.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserStateChanged {
    pub user: UserListItem,
    pub ended: CredentialsEnded,
}

async fn state_answer(
    state: &AppState,
    user: User,
    ended: Ended,
) -> Result<Json<UserStateChanged>, ApiError> {
    let bindings = yunshu_auth::principal::bindings_of(&*state.store, &user.id).await?;
    Ok(Json(UserStateChanged {
        user: UserListItem::of(user, bindings),
        ended: ended.into(),
    }))
}

/// `POST /api/v1/users/{id}/disable`: the user can no longer sign in; every
/// session of theirs ends and every API token is revoked, at once.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/disable",
    tag = "users",
    params(("id" = String, Path, description = "The user id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Disabled (also if it already was: then nothing is written)", body = UserStateChanged),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs user_manage or tenant_user_manage (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
        (status = 404, description = "USER_NOT_FOUND: no such user, or one the caller does not manage", body = crate::error::ErrorBody),
        (status = 409, description = "USER_IS_CALLER: not on one's own account; USER_CHANGED: changed meanwhile, try again", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn user_disable(
    caller: Principal,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserStateChanged>, ApiError> {
    let (user, ended) =
        offboarding::set_state(&*state.store, &caller, &id, UserState::Disabled).await?;
    state_answer(&state, user, ended).await
}

/// `POST /api/v1/users/{id}/enable`: the user may sign in again (their old
/// sessions and tokens stay ended).
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/enable",
    tag = "users",
    params(("id" = String, Path, description = "The user id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Active (also if it already was: then nothing is written)", body = UserStateChanged),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs user_manage or tenant_user_manage (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
        (status = 404, description = "USER_NOT_FOUND: no such user, or one the caller does not manage", body = crate::error::ErrorBody),
        (status = 409, description = "USER_IS_CALLER: not on one's own account; USER_CHANGED: changed meanwhile, try again", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn user_enable(
    caller: Principal,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserStateChanged>, ApiError> {
    let (user, ended) =
        offboarding::set_state(&*state.store, &caller, &id, UserState::Active).await?;
    state_answer(&state, user, ended).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordResetRequest {
    /// The new password; absent or null: the server generates one and
    /// returns it once.
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasswordReset {
    /// The generated password, only when a tenant admin set none; shown only here.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub password: Option<String>,
    /// A platform user manager's reset: the password is cleared and the user
    /// sets a new one with this one-time code; shown only here.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub activation: Option<crate::users::ActivationView>,
    /// Sessions of the user that were ended.
    pub sessions_ended: usize,
}

/// `POST /api/v1/users/{id}/password`: a new password (given or generated);
/// the user's sessions end and their failed-login count is cleared. Their API
/// tokens stay (end them with `revoke-credentials`).
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/password",
    tag = "users",
    params(("id" = String, Path, description = "The user id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = PasswordResetRequest,
    responses(
        (status = 200, description = "Reset; a generated `password` or a platform manager's one-time `activation` is shown only here (Cache-Control: no-store)", body = PasswordReset,
            headers(("cache-control" = String, description = "`no-store`"))),
        (status = 400, description = "PASSWORD_TOO_WEAK; PASSWORD_SET_BY_USER: a platform user manager typed a password; or a malformed body", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs user_manage or tenant_user_manage (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
        (status = 404, description = "USER_NOT_FOUND: no such user, or one the caller does not manage", body = crate::error::ErrorBody),
        (status = 409, description = "USER_IS_CALLER: not on one's own account; USER_CHANGED: changed meanwhile, try again", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn user_password_reset(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<axum::Extension<yunshu_workflow::Clock>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PasswordResetRequest>,
) -> Result<(crate::auth::NoStore, Json<PasswordReset>), ApiError> {
    let now = crate::context::now_of(clock);
    let (reset, ended) =
        offboarding::reset_password(&*state.store, &caller, &id, req.password, now).await?;
    let (password, activation) = match reset {
        Reset::Typed => (None, None),
        Reset::Generated(p) => (Some(p), None),
        Reset::Activation(issued) => (None, Some(issued.into())),
    };
    Ok((
        crate::auth::NO_STORE,
        Json(PasswordReset {
            password,
            activation,
            sessions_ended: ended.sessions,
        }),
    ))
}

/// `DELETE /api/v1/users/{id}/bindings/{binding}`: removes one role binding;
/// its permissions are gone from the user's next request. A user keeps at
/// least one binding.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{id}/bindings/{binding}",
    tag = "users",
    params(
        ("id" = String, Path, description = "The user id"),
        ("binding" = String, Path, description = "The role binding id (from the users list)"),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "USER_ROLES_REQUIRED: the user's last binding", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs user_manage or tenant_user_manage (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
        (status = 404, description = "USER_NOT_FOUND or ROLE_BINDING_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "USER_IS_CALLER: not on one's own account; USER_CHANGED: changed meanwhile, try again", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn user_binding_remove(
    caller: Principal,
    State(state): State<AppState>,
    ApiPath((id, binding)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    offboarding::remove_binding(&*state.store, &caller, &id, &binding).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/users/{id}/revoke-credentials`: ends every session and
/// revokes every API token of the user, without disabling them.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/revoke-credentials",
    tag = "users",
    params(("id" = String, Path, description = "The user id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Ended (recorded even when there was nothing to end)", body = CredentialsEnded),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs user_manage or tenant_user_manage (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
        (status = 404, description = "USER_NOT_FOUND: no such user, or one the caller does not manage", body = crate::error::ErrorBody),
        (status = 409, description = "USER_IS_CALLER: not on one's own account; USER_CHANGED: changed meanwhile, try again", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn user_credentials_revoke(
    caller: Principal,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CredentialsEnded>, ApiError> {
    let ended = offboarding::revoke_credentials(&*state.store, &caller, &id).await?;
    Ok(Json(ended.into()))
}
