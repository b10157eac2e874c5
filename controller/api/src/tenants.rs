//! Tenants (使用单位) over HTTP: `POST /api/v1/tenants` and `GET
//! /api/v1/tenants`, for the platform admin (`user_manage`), who registers a
//! department before creating its admins. The records are names and codes, not
//! the tenant's business data, so the platform admin may read them.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::tenant::Tenant;
use yunshu_domain::user::Permission;
use yunshu_domain::{Name, TenantCode};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{PageRequest, Txn, records};
use yunshu_workflow::Clock;

use crate::context::audit_draft;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// 3–12 digits, e.g. the administrative division code 110105.
    #[schema(value_type = String)]
    pub code: TenantCode,
    /// 使用单位全称
    #[schema(value_type = String)]
    pub name: Name,
    /// 主管单位
    #[schema(value_type = String)]
    pub supervising_unit: Name,
    /// The org unit of the administration tree to attach it to
    /// (`/api/v1/org-units`); absent: none yet.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub org_unit: Option<yunshu_domain::ids::OrgUnitId>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantView {
    pub code: String,
    pub name: String,
    pub supervising_unit: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The org unit it is attached to.
    pub org_unit: Option<String>,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        TenantView {
            code: t.code.to_string(),
            name: t.name.to_string(),
            supervising_unit: t.supervising_unit.to_string(),
            created_at: t.created_at,
            org_unit: t.org_unit.map(|u| u.to_string()),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantList {
    pub items: Vec<TenantView>,
}

/// `POST /api/v1/tenants`.
#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    tag = "users",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = CreateTenantRequest,
    responses(
        (status = 201, description = "Registered", body = TenantView),
        (status = 400, description = "Malformed body or invalid field", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs tenant_manage (the system administrator)", body = crate::error::ErrorBody),
        (status = 404, description = "ORG_UNIT_NOT_FOUND: the `org_unit` named", body = crate::error::ErrorBody),
        (status = 409, description = "TENANT_EXISTS (or its unit changed meanwhile)", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn tenant_create(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiJson(req): ApiJson<CreateTenantRequest>,
) -> Result<(StatusCode, Json<TenantView>), ApiError> {
    caller.require(Permission::TenantManage, None)?;
    let now = crate::context::now_of(clock);
    let tenant = Tenant {
        code: req.code,
        name: req.name,
        supervising_unit: req.supervising_unit,
        created_at: now,
        org_unit: req.org_unit,
    };
    let key = records::key::<Tenant>(tenant.code.as_str());
    let mut txn = Txn::new()
        .when_mod_revision(key.clone(), 0)
        .put(key.clone(), records::encode(&tenant));
    if let Some(u) = &tenant.org_unit {
        let rev = crate::org_units::unit_revision(&state, u).await?;
        txn = txn.when_mod_revision(
            records::key::<yunshu_domain::org_unit::OrgUnit>(u.as_str()),
            rev,
        );
    }
    let mut draft = audit_draft(
        &caller.actor.to_string(),
        "tenant.create",
        &key,
        Some(tenant.name.to_string()),
    )?;
    draft.at = now;
    match audit::append(&*state.store, draft, txn).await? {
        Appended::Committed { .. } => Ok((StatusCode::CREATED, Json(tenant.into()))),
        Appended::Conflict => Err(ApiError::refused(
            StatusCode::CONFLICT,
            "TENANT_EXISTS",
            format!("Tenant {} is already registered.", tenant.code),
            format!("使用单位 {} 已登记。", tenant.code),
        )),
    }
}

/// `GET /api/v1/tenants`.
#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    tag = "users",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Every tenant", body = TenantList),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs tenant_manage or user_manage", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn tenant_list(
    caller: Principal,
    State(state): State<AppState>,
) -> Result<Json<TenantList>, ApiError> {
    // The system administrator registers departments; the security
    // administrator picks one when creating a department's user.
    if !caller.can(Permission::UserManage, None) {
        caller.require(Permission::TenantManage, None)?;
    }
    let mut items = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = records::list::<Tenant>(
            &*state.store,
            PageRequest {
                after: after.take(),
                limit: 1000,
            },
        )
        .await?;
        items.extend(page.into_iter().map(TenantView::from));
        match next {
            Some(n) => after = Some(n),
            None => return Ok(Json(TenantList { items })),
        }
    }
}
