//! Granting and adjusting a user's role bindings over HTTP (003 §3.2.2.15:
//! 权限管理, 权限调整): `POST /api/v1/users/{id}/bindings` and `PATCH
//! /api/v1/users/{id}/bindings/{binding}`; revoking is `DELETE` on the same
//! path (`offboarding`). Who may and what each writes (one audit entry
//! each) is `yunshu_auth::bindings`'; this file owns the wire shapes.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_auth::users::Grant;
use yunshu_domain::user::{Permission, RoleBinding};

use crate::error::ApiError;
use crate::json::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::users::RoleRequest;

/// A binding as granted or adjusted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BindingView {
    /// The `RoleBinding` (domain type: id, role, scope, permissions, granted by/at).
    #[schema(value_type = Object)]
    pub binding: RoleBinding,
}

/// `POST /api/v1/users/{id}/bindings`: grants one more role.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/bindings",
    tag = "users",
    params(("id" = String, Path, description = "The user id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = RoleRequest,
    responses(
        (status = 201, description = "Granted; one audit entry `user.role_binding.grant`", body = BindingView),
        (status = 400, description = "ROLE_SCOPE_MISMATCH, ROLE_TENANT_MISMATCH (the user is not a member of the scope), ROLE_PERMISSION_NOT_GRANTABLE, or a malformed body", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: a role the caller may not grant (a unit admin: only at units strictly below its own), or a missing/wrong X-CSRF-Token", body = crate::error::ErrorBody),
        (status = 404, description = "USER_NOT_FOUND: no such user, or one the caller does not manage", body = crate::error::ErrorBody),
        (status = 409, description = "ROLE_BINDING_EXISTS; ROLES_SEPARATED (三员分立); USER_IS_CALLER; USER_CHANGED", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn user_binding_grant(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<yunshu_workflow::Clock>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<RoleRequest>,
) -> Result<(StatusCode, Json<BindingView>), ApiError> {
    let now = crate::context::now_of(clock);
    let grant = Grant {
        role: req.role,
        scope: req.scope,
        permissions: req.permissions,
    };
    let binding = yunshu_auth::bindings::grant(&*state.store, &caller, &id, grant, now).await?;
    Ok((StatusCode::CREATED, Json(BindingView { binding })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustBindingRequest {
    /// The role's permissions the binding grants from now on; null: all of
    /// the role's. A permission the role lacks is refused.
    #[schema(value_type = Option<Vec<String>>)]
    pub permissions: Option<std::collections::BTreeSet<Permission>>,
}

/// A binding before and after an adjustment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BindingAdjusted {
    #[schema(value_type = Object)]
    pub before: RoleBinding,
    #[schema(value_type = Object)]
    pub after: RoleBinding,
}

/// `PATCH /api/v1/users/{id}/bindings/{binding}`: sets which of its role's
/// permissions a binding grants.
#[utoipa::path(
    patch,
    path = "/api/v1/users/{id}/bindings/{binding}",
    tag = "users",
    params(
        ("id" = String, Path, description = "The user id"),
        ("binding" = String, Path, description = "The role binding id"),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = AdjustBindingRequest,
    responses(
        (status = 200, description = "Adjusted; one audit entry `user.role_binding.adjust`", body = BindingAdjusted),
        (status = 400, description = "ROLE_PERMISSION_NOT_GRANTABLE, or a malformed body", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: a binding the caller could not grant, or a missing/wrong X-CSRF-Token", body = crate::error::ErrorBody),
        (status = 404, description = "USER_NOT_FOUND or ROLE_BINDING_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "USER_IS_CALLER; USER_CHANGED", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn user_binding_adjust(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<yunshu_workflow::Clock>>,
    ApiPath((id, binding)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<AdjustBindingRequest>,
) -> Result<Json<BindingAdjusted>, ApiError> {
    let now = crate::context::now_of(clock);
    let (before, after) =
        yunshu_auth::bindings::adjust(&*state.store, &caller, &id, &binding, req.permissions, now)
            .await?;
    Ok(Json(BindingAdjusted { before, after }))
}
