//! Revocable API tokens for scripts and the CLI: `yst1.<id>.<secret>`, sent as
//! `Authorization: Bearer …`. A token acts as its user, narrowed to the scopes
//! (permissions) it was created with; only the secret's SHA-256 is stored.
//! Revoking takes effect on the next request.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use yunshu_domain::user::Permission;
use yunshu_domain::{Record, UserId};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{PageRequest, Store, StoreError, Txn, records};

use super::principal::{Principal, forbidden};
use crate::AppState;
use crate::api::{ApiError, ApiJson, ApiPath, audit_draft};

pub const PREFIX: &str = "yst1.";
const MAX_DAYS: i64 = 365;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub user: UserId,
    pub name: String,
    pub scopes: BTreeSet<Permission>,
    pub secret_sha256: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Record for ApiToken {
    const KIND: &'static str = "api_token";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        // The user first, so one user's tokens are one key range.
        format!("{}/{}", self.user, self.id)
    }
}

/// The token a bearer string names, if it is valid now.
pub async fn resolve(store: &dyn Store, bearer: &str) -> Result<Option<ApiToken>, StoreError> {
    let Some(rest) = bearer.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    let Some((user_and_id, secret)) = rest.rsplit_once('.') else {
        return Ok(None);
    };
    let Some((user, id)) = user_and_id.rsplit_once('.') else {
        return Ok(None);
    };
    let Some((token, _)) = records::get::<ApiToken>(store, &format!("{user}/{id}")).await? else {
        return Ok(None);
    };
    let valid = token.secret_sha256 == yunshu_pki::sha256_hex(secret.as_bytes())
        && token.revoked_at.is_none()
        && token.expires_at > Utc::now();
    Ok(valid.then_some(token))
}

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

fn user_of(caller: &Principal) -> Result<&UserId, ApiError> {
    // The admin token is not a user and cannot mint user tokens.
    caller.user.as_ref().ok_or_else(forbidden)
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
        (status = 400, description = "Malformed body or invalid field (a stable code says which)", body = crate::api::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::api::ErrorBody),
        (status = 403, description = "FORBIDDEN: not a user, or scopes beyond the user's permissions", body = crate::api::ErrorBody),
        (status = 409, description = "TOKEN_ID_COLLISION; try again", body = crate::api::ErrorBody),
    )
)]
pub(crate) async fn create(
    caller: Principal,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<TokenView>), ApiError> {
    let user = user_of(&caller)?.clone();
    let days = req.days.unwrap_or(90);
    let name = req.name.trim().to_owned();
    if !(1..=MAX_DAYS).contains(&days)
        || name.is_empty()
        || name.chars().count() > 100
        || req.scopes.is_empty()
    {
        return Err(ApiError::refused(
            StatusCode::BAD_REQUEST,
            "TOKEN_REQUEST_INVALID",
            format!(
                "A token needs a name (1–100 characters), at least one scope and 1–{MAX_DAYS} days."
            ),
            format!("令牌需要名称（1–100 字）、至少一个权限范围，有效期 1–{MAX_DAYS} 天。"),
        ));
    }
    // A token can never do more than its user (a higher admin narrows, never widens).
    let held: BTreeSet<Permission> = caller
        .bindings
        .iter()
        .flat_map(|b| b.effective_permissions())
        .collect();
    if !req.scopes.is_subset(&held) {
        return Err(forbidden());
    }
    let secret = yunshu_pki::random_hex(32);
    let now = Utc::now();
    let token = ApiToken {
        id: yunshu_pki::random_hex(8),
        user: user.clone(),
        name,
        scopes: req.scopes,
        secret_sha256: yunshu_pki::sha256_hex(secret.as_bytes()),
        created_at: now,
        expires_at: now + Duration::days(days),
        revoked_at: None,
    };
    let key = records::key::<ApiToken>(&token.id());
    let txn = Txn::new()
        .when_mod_revision(key.clone(), 0)
        .put(key.clone(), records::encode(&token));
    let draft = audit_draft(&caller.actor.to_string(), "api_token.create", &key, None)?;
    if let Appended::Conflict = audit::append(&*state.store, draft, txn).await? {
        return Err(ApiError::refused(
            StatusCode::CONFLICT,
            "TOKEN_ID_COLLISION",
            "Please try again.",
            "请重试。",
        ));
    }
    let bearer = format!("{PREFIX}{}.{}.{secret}", user, token.id);
    let mut view = TokenView::from(token);
    view.token = Some(bearer);
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/v1/auth/tokens`: the caller's own tokens.
#[utoipa::path(
    get,
    path = "/api/v1/auth/tokens",
    tag = "auth",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The caller's tokens (never the secrets)", body = Vec<TokenView>),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::api::ErrorBody),
        (status = 403, description = "FORBIDDEN: the caller is not a user", body = crate::api::ErrorBody),
    )
)]
pub(crate) async fn list(
    caller: Principal,
    State(state): State<AppState>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let user = user_of(&caller)?;
    let prefix = format!("{}{}/", records::prefix::<ApiToken>(), user);
    let page = state.store.range(&prefix, PageRequest::default()).await?;
    let tokens = page
        .items
        .iter()
        .map(|kv| records::decode::<ApiToken>(&kv.key, &kv.value).map(TokenView::from))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(tokens))
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
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::api::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::api::ErrorBody),
        (status = 404, description = "TOKEN_NOT_FOUND", body = crate::api::ErrorBody),
    )
)]
pub(crate) async fn revoke(
    caller: Principal,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let user = user_of(&caller)?;
    let not_found = || {
        ApiError::refused(
            StatusCode::NOT_FOUND,
            "TOKEN_NOT_FOUND",
            format!("No token {id}."),
            format!("未找到令牌 {id}。"),
        )
    };
    let record_id = format!("{user}/{id}");
    let (mut token, revision) = records::get::<ApiToken>(&*state.store, &record_id)
        .await?
        .ok_or_else(not_found)?;
    if token.revoked_at.is_some() {
        return Ok(StatusCode::NO_CONTENT);
    }
    token.revoked_at = Some(Utc::now());
    let key = records::key::<ApiToken>(&record_id);
    let txn = Txn::new()
        .when_mod_revision(key.clone(), revision)
        .put(key.clone(), records::encode(&token));
    let draft = audit_draft(&caller.actor.to_string(), "api_token.revoke", &key, None)?;
    audit::append(&*state.store, draft, txn).await?;
    Ok(StatusCode::NO_CONTENT)
}
