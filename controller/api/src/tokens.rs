//! API tokens over HTTP: mint, list and revoke the caller's own tokens. What a
//! token is and may do is `yunshu_auth::tokens`'.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_auth::tokens::{self, ApiToken};
use yunshu_domain::user::Permission;

use crate::error::ApiError;
use crate::json::{ApiJson, ApiPath};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = CreateApiTokenRequest)]
pub struct CreateTokenRequest {
    pub name: String,
    /// `Permission`s (domain enum, snake_case) the token may use.
    #[schema(value_type = Vec<String>)]
    pub scopes: BTreeSet<Permission>,
    /// Days until it expires; default 90, at most 365.
    pub days: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// `Permission`s (domain enum, snake_case).
    #[schema(value_type = Vec<String>)]
    pub scopes: BTreeSet<Permission>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Only in the answer to its creation; never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub token: Option<String>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.id,
            name: t.name,
            scopes: t.scopes,
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
            token: None,
        }
    }
}

/// `POST /api/v1/auth/tokens`
#[utoipa::path(
    post,
    path = "/api/v1/auth/tokens",
    tag = "auth",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "The token; `token` is shown only here", body = TokenView),
        (status = 400, description = "Malformed body or invalid field (a stable code says which)", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: not a user, or scopes beyond the user's permissions", body = crate::error::ErrorBody),
        (status = 409, description = "TOKEN_ID_COLLISION; try again", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn create(
    caller: Principal,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, crate::auth::NoStore, Json<TokenView>), ApiError> {
    let (token, bearer) =
        tokens::create(&*state.store, &caller, &req.name, req.scopes, req.days).await?;
    let mut view = TokenView::from(token);
    view.token = Some(bearer);
    Ok((StatusCode::CREATED, crate::auth::NO_STORE, Json(view)))
}

/// `GET /api/v1/auth/tokens`: the caller's own tokens.
#[utoipa::path(
    get,
    path = "/api/v1/auth/tokens",
    tag = "auth",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The caller's tokens (never the secrets)", body = Vec<TokenView>),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: the caller is not a user", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn list(
    caller: Principal,
    State(state): State<AppState>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let tokens = tokens::list(&*state.store, &caller).await?;
    Ok(Json(tokens.into_iter().map(TokenView::from).collect()))
}

/// `DELETE /api/v1/auth/tokens/{id}`: revoke one of the caller's tokens.
#[utoipa::path(
    delete,
    path = "/api/v1/auth/tokens/{id}",
    tag = "auth",
    params(("id" = String, Path, description = "The token id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Revoked (also if it already was)"),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
        (status = 404, description = "TOKEN_NOT_FOUND", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn revoke(
    caller: Principal,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    tokens::revoke(&*state.store, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
