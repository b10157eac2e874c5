//! Users and login over HTTP: create a user with role bindings, log in and out,
//! who am I.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use yunshu_domain::tenant::Tenant;
use yunshu_domain::user::{
    Permission, Role, RoleBinding, RoleBindingFields, Scope, User, UserState,
};
use yunshu_domain::{Name, TenantCode, UserId};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{Txn, records};

use super::principal::{Principal, bindings_of, forbidden};
use super::{lockout, passwords, sessions};
use crate::AppState;
use crate::api::{ApiError, ApiJson, audit_draft, domain_invalid};

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
    pub password: String,
    pub roles: Vec<RoleRequest>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub display_name: String,
    pub tenant: Option<String>,
    /// `Role`s (domain type, `{"name": …}`).
    #[schema(value_type = Vec<Object>)]
    pub roles: Vec<Role>,
}

fn not_found_tenant(code: &str) -> ApiError {
    ApiError::refused(
        StatusCode::NOT_FOUND,
        "TENANT_NOT_FOUND",
        format!("No tenant {code}."),
        format!("未找到使用单位 {code}。"),
    )
}

/// May `caller` grant `role` at `scope`? Platform user managers may grant any
/// role; tenant admins only tenant roles in their own tenant (SPEC §1: a higher
/// admin creates lower admins and users).
fn may_grant(caller: &Principal, role: &Role, scope: &Scope) -> bool {
    if caller.can(Permission::UserManage, None) {
        return true;
    }
    match (role, scope) {
        (Role::TenantUser | Role::TenantAdmin, Scope::Tenant { tenant }) => {
            caller.can(Permission::TenantUserManage, Some(tenant))
        }
        _ => false,
    }
}

/// `POST /api/v1/users`
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "The new user", body = UserView),
        (status = 400, description = "Malformed body or invalid field (a stable code says which)", body = crate::api::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::api::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::api::ErrorBody),
        (status = 404, description = "TENANT_NOT_FOUND", body = crate::api::ErrorBody),
        (status = 409, description = "USER_EXISTS", body = crate::api::ErrorBody),
    )
)]
pub(crate) async fn create_user(
    caller: Principal,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let id = UserId::new(req.id.clone()).map_err(|e| domain_invalid(&e))?;
    let display_name = Name::new(&req.display_name).map_err(|e| domain_invalid(&e))?;
    let tenant = req
        .tenant
        .as_deref()
        .map(TenantCode::new)
        .transpose()
        .map_err(|e| domain_invalid(&e))?;
    if req.roles.is_empty() {
        return Err(ApiError::refused(
            StatusCode::BAD_REQUEST,
            "USER_ROLES_REQUIRED",
            "A user needs at least one role.",
            "用户至少需要一个角色。",
        ));
    }
    if let Some(t) = &tenant {
        // A tenant the caller may not see is "not found", never "forbidden".
        let visible = caller.can(Permission::UserManage, None) || caller.tenant.as_ref() == Some(t);
        if !visible
            || records::get::<Tenant>(&*state.store, t.as_str())
                .await?
                .is_none()
        {
            return Err(not_found_tenant(t.as_str()));
        }
    }
    for r in &req.roles {
        if !may_grant(&caller, &r.role, &r.scope) {
            return Err(forbidden());
        }
    }
    passwords::check_strength(&req.password)?;
    let user = User {
        id: id.clone(),
        display_name,
        tenant: tenant.clone(),
        password_hash: Some(passwords::hash(req.password).await?),
        state: UserState::Active,
        created_at: Utc::now(),
    };
    let mut bindings = Vec::new();
    for (n, r) in req.roles.into_iter().enumerate() {
        let binding = RoleBinding::new(RoleBindingFields {
            id: format!("{id}.{n}")
                .parse()
                .map_err(|e| domain_invalid(&e))?,
            user: id.clone(),
            role: r.role,
            scope: r.scope,
            permissions: r.permissions,
            granted_by: caller.actor.clone(),
            granted_at: Utc::now(),
        })
        .map_err(|e| domain_invalid(&e))?;
        user.check_binding(&binding)
            .map_err(|e| domain_invalid(&e))?;
        bindings.push(binding);
    }
    let user_key = records::key::<User>(id.as_str());
    let mut txn = Txn::new()
        .when_mod_revision(user_key.clone(), 0)
        .put(user_key.clone(), records::encode(&user));
    for b in &bindings {
        let key = records::key::<RoleBinding>(&yunshu_domain::Record::id(b));
        txn = txn
            .when_mod_revision(key.clone(), 0)
            .put(key, records::encode(b));
    }
    let roles: Vec<Role> = bindings.iter().map(|b| b.role().clone()).collect();
    let detail = serde_json::to_string(&roles).ok();
    let draft = audit_draft(&caller.actor.to_string(), "user.create", &user_key, detail)?;
    match audit::append(&*state.store, draft, txn).await? {
        Appended::Committed { .. } => {}
        Appended::Conflict => {
            return Err(ApiError::refused(
                StatusCode::CONFLICT,
                "USER_EXISTS",
                format!("User {id} already exists."),
                format!("用户 {id} 已存在。"),
            ));
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(UserView {
            id: id.to_string(),
            display_name: user.display_name.to_string(),
            tenant: tenant.map(|t| t.to_string()),
            roles,
        }),
    ))
}

/// One user in the users list: who, where, what roles at which scope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserListItem {
    pub id: String,
    pub display_name: String,
    pub tenant: Option<String>,
    /// `active` or `disabled`.
    pub state: String,
    pub created_at: chrono::DateTime<Utc>,
    /// `RoleBinding`s (domain type: role, scope, permissions, granted by/at).
    #[schema(value_type = Vec<Object>)]
    pub bindings: Vec<RoleBinding>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserList {
    pub items: Vec<UserListItem>,
}

/// `GET /api/v1/users`: the users the caller manages — every user for a
/// platform user manager, a department's own users for its tenant admin.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Users with their role bindings, by id", body = UserList),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::api::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs user_manage or tenant_user_manage", body = crate::api::ErrorBody),
    )
)]
pub(crate) async fn list_users(
    caller: Principal,
    State(state): State<AppState>,
) -> Result<Json<UserList>, ApiError> {
    let everyone = caller.can(Permission::UserManage, None);
    let own = caller
        .tenant
        .clone()
        .filter(|t| caller.can(Permission::TenantUserManage, Some(t)));
    if !everyone && own.is_none() {
        return Err(forbidden());
    }
    let users =
        crate::workflow::page::scan_all_under::<User>(&*state.store, &records::prefix::<User>())
            .await?;
    let mut items = Vec::new();
    for (user, _) in users {
        if !everyone && user.tenant != own {
            continue;
        }
        let bindings = bindings_of(&*state.store, &user.id).await?;
        items.push(UserListItem {
            id: user.id.to_string(),
            display_name: user.display_name.to_string(),
            tenant: user.tenant.map(|t| t.to_string()),
            state: match user.state {
                UserState::Active => "active",
                UserState::Disabled => "disabled",
            }
            .to_owned(),
            created_at: user.created_at,
            bindings,
        });
    }
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

fn login_failed() -> ApiError {
    ApiError::refused(
        StatusCode::UNAUTHORIZED,
        "LOGIN_FAILED",
        "Wrong user name or password.",
        "用户名或密码错误。",
    )
}

/// `POST /api/v1/auth/login`: sets the `yunshu_session` cookie.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = LoginResponse,
            headers(("set-cookie" = String, description = "`yunshu_session=…; HttpOnly; SameSite=Strict`"))),
        (status = 400, description = "Malformed body or invalid field (a stable code says which)", body = crate::api::ErrorBody),
        (status = 401, description = "LOGIN_FAILED", body = crate::api::ErrorBody),
        (status = 423, description = "ACCOUNT_LOCKED after repeated failures", body = crate::api::ErrorBody),
    )
)]
pub(crate) async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let store = &*state.store;
    if lockout::is_locked(store, &req.user).await? {
        return Err(ApiError::refused(
            StatusCode::LOCKED,
            "ACCOUNT_LOCKED",
            format!(
                "Too many failed logins; try again in {} minutes.",
                lockout::WINDOW.as_secs() / 60
            ),
            format!(
                "登录失败次数过多，请 {} 分钟后再试。",
                lockout::WINDOW.as_secs() / 60
            ),
        ));
    }
    let found = match UserId::new(req.user.clone()) {
        Ok(id) => records::get::<User>(store, id.as_str())
            .await?
            .map(|(u, _)| u),
        Err(_) => None,
    };
    let hash = found.as_ref().and_then(|u| u.password_hash.clone());
    // Verify even for unknown users so timing does not reveal who exists.
    let phc = match hash {
        Some(h) => h,
        None => passwords::dummy_hash().await.unwrap_or_default(),
    };
    let ok = passwords::verify(req.password, phc).await;
    let user = match found {
        Some(u) if ok && u.state == UserState::Active => u,
        _ => {
            let failures = lockout::record_failure(store, &req.user).await?;
            let target = format!("user/{}", req.user.chars().take(64).collect::<String>());
            if let Ok(draft) = audit_draft(
                "system:auth",
                "auth.login_failed",
                &target,
                Some(format!("failure {failures} in the window")),
            ) {
                let _ = audit::record(store, draft).await;
            }
            return Err(login_failed());
        }
    };
    lockout::clear(store, user.id.as_str()).await?;
    let (session_id, session) = sessions::create(store, user.id.clone()).await?;
    let roles = bindings_of(store, &user.id)
        .await?
        .iter()
        .map(|b| b.role().clone())
        .collect();
    let draft = audit_draft(
        &format!("user:{}", user.id),
        "auth.login",
        &records::key::<User>(user.id.as_str()),
        None,
    )?;
    audit::record(store, draft).await?;
    let body = LoginResponse {
        user: user.id.to_string(),
        display_name: user.display_name.to_string(),
        tenant: user.tenant.map(|t| t.to_string()),
        roles,
        csrf_token: session.csrf_token,
    };
    Ok((
        [(header::SET_COOKIE, sessions::cookie(&session_id))],
        Json(body),
    )
        .into_response())
}

/// `POST /api/v1/auth/logout`: ends the session and expires the cookie.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::api::ErrorBody),
        (status = 403, description = "Missing or wrong X-CSRF-Token", body = crate::api::ErrorBody),
    )
)]
pub(crate) async fn logout(
    _caller: Principal,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(id) = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(sessions::from_cookie_header)
    {
        sessions::end(&*state.store, id).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, sessions::expired_cookie())],
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
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::api::ErrorBody),
    )
)]
pub(crate) async fn me(caller: Principal) -> Json<Me> {
    Json(Me {
        actor: caller.actor.to_string(),
        tenant: caller.tenant.as_ref().map(ToString::to_string),
        roles: caller.roles().into_iter().cloned().collect(),
        permissions: caller
            .bindings
            .iter()
            .flat_map(RoleBinding::effective_permissions)
            .filter(|p| caller.scopes.as_ref().is_none_or(|s| s.contains(p)))
            .collect(),
    })
}
