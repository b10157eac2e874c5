//! The caller of a request, resolved once by an extractor:
//! - `Authorization: Bearer <admin token>` → the platform admin;
//! - the session cookie → that user with the role bindings stored for them; a
//!   request that changes something must echo the session's CSRF token in
//!   `X-CSRF-Token` (SameSite=Strict already stops cross-site posts; the token is
//!   the second lock);
//! - nothing → 401.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use chrono::Utc;
use yunshu_domain::user::{
    Permission, Role, RoleBinding, RoleBindingFields, Scope, User, UserState,
};
use yunshu_domain::{Actor, TenantCode, UserId};
use yunshu_store::{PageRequest, Store, StoreError, records};

use super::sessions;
use crate::AppState;
use crate::api::ApiError;

#[derive(Debug, Clone)]
pub struct Principal {
    pub actor: Actor,
    /// `None` for the admin token.
    pub user: Option<UserId>,
    pub tenant: Option<TenantCode>,
    pub bindings: Vec<RoleBinding>,
    /// An API token's scopes: the caller may use only these permissions.
    pub scopes: Option<std::collections::BTreeSet<Permission>>,
}

fn unauthenticated() -> ApiError {
    ApiError::refused(
        StatusCode::UNAUTHORIZED,
        "AUTH_REQUIRED",
        "Sign in first.",
        "请先登录。",
    )
}

pub fn forbidden() -> ApiError {
    ApiError::refused(
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
        "Your roles do not allow this.",
        "您的角色无权执行此操作。",
    )
}

impl Principal {
    /// Whether some binding allows `permission` at platform scope or in `tenant`.
    pub fn can(&self, permission: Permission, tenant: Option<&TenantCode>) -> bool {
        if self
            .scopes
            .as_ref()
            .is_some_and(|s| !s.contains(&permission))
        {
            return false;
        }
        self.bindings.iter().any(|b| {
            b.allows(permission)
                && match (b.scope(), tenant) {
                    (Scope::Platform, _) => true,
                    (Scope::Tenant { tenant: mine }, Some(t)) => mine == t,
                    (Scope::Tenant { .. }, None) => false,
                    (Scope::Provider { .. }, _) => false,
                }
        })
    }

    /// The providers whose scope grants `permission` to the caller (provider
    /// operators: SPEC §1).
    pub fn providers_with(&self, permission: Permission) -> Vec<&yunshu_domain::ProviderId> {
        if self
            .scopes
            .as_ref()
            .is_some_and(|s| !s.contains(&permission))
        {
            return Vec::new();
        }
        self.bindings
            .iter()
            .filter(|b| b.allows(permission))
            .filter_map(|b| match b.scope() {
                Scope::Provider { provider } => Some(provider),
                _ => None,
            })
            .collect()
    }

    pub fn require(
        &self,
        permission: Permission,
        tenant: Option<&TenantCode>,
    ) -> Result<(), ApiError> {
        if self.can(permission, tenant) {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    pub fn roles(&self) -> Vec<&Role> {
        self.bindings.iter().map(RoleBinding::role).collect()
    }

    fn platform_admin() -> Result<Self, ApiError> {
        let actor: Actor =
            "user:platform-admin"
                .parse()
                .map_err(|e: yunshu_domain::ids::IdError| {
                    ApiError::internal(std::io::Error::other(e.to_string()))
                })?;
        let binding = RoleBinding::new(RoleBindingFields {
            id: "platform-admin.token"
                .parse()
                .map_err(|e: yunshu_domain::ids::IdError| {
                    ApiError::internal(std::io::Error::other(e.to_string()))
                })?,
            user: UserId::new("platform-admin")
                .map_err(|e| ApiError::internal(std::io::Error::other(e.to_string())))?,
            role: Role::PlatformAdmin,
            scope: Scope::Platform,
            permissions: None,
            granted_by: actor.clone(),
            granted_at: Utc::now(),
        })
        .map_err(|e| ApiError::internal(std::io::Error::other(e.to_string())))?;
        Ok(Self {
            actor,
            user: None,
            tenant: None,
            bindings: vec![binding],
            scopes: None,
        })
    }
}

/// The role bindings of `user` (ids start with `<user>.`).
pub async fn bindings_of(store: &dyn Store, user: &UserId) -> Result<Vec<RoleBinding>, StoreError> {
    let prefix = format!("{}{}.", records::prefix::<RoleBinding>(), user);
    let page = store.range(&prefix, PageRequest::default()).await?;
    let mut out = Vec::new();
    for kv in page.items {
        let binding: RoleBinding = records::decode(&kv.key, &kv.value)?;
        if binding.user() == user {
            out.push(binding);
        }
    }
    Ok(out)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(bearer) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            let bearer = bearer.trim();
            if state.is_admin_token(bearer) {
                return Principal::platform_admin();
            }
            let token = super::tokens::resolve(&*state.store, bearer)
                .await?
                .ok_or_else(unauthenticated)?;
            let mut principal = user_principal(&*state.store, &token.user).await?;
            principal.scopes = Some(token.scopes);
            return Ok(principal);
        }
        let session_id = parts
            .headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(sessions::from_cookie_header)
            .ok_or_else(unauthenticated)?
            .to_owned();
        let session = sessions::get(&*state.store, &session_id)
            .await?
            .ok_or_else(unauthenticated)?;
        let changes = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if changes {
            let echoed = parts
                .headers
                .get(sessions::CSRF_HEADER)
                .and_then(|v| v.to_str().ok());
            if echoed != Some(session.csrf_token.as_str()) {
                return Err(ApiError::refused(
                    StatusCode::FORBIDDEN,
                    "CSRF_FAILED",
                    "Missing or wrong X-CSRF-Token header; reload the page and try again.",
                    "缺少或错误的 X-CSRF-Token 请求头，请刷新页面后重试。",
                ));
            }
        }
        user_principal(&*state.store, &session.user).await
    }
}

/// The principal of an active user with their stored role bindings.
async fn user_principal(store: &dyn Store, id: &UserId) -> Result<Principal, ApiError> {
    let (user, _) = records::get::<User>(store, id.as_str())
        .await?
        .ok_or_else(unauthenticated)?;
    if user.state != UserState::Active {
        return Err(unauthenticated());
    }
    let bindings = bindings_of(store, &user.id).await?;
    Ok(Principal {
        actor: Actor::User(user.id.clone()),
        user: Some(user.id),
        tenant: user.tenant,
        bindings,
        scopes: None,
    })
}
