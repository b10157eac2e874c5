//! The administration tree over HTTP (003 §3.2.2.15, hierarchical
//! administration): `POST /api/v1/org-units` (the system administrator,
//! `tenant_manage`), `GET /api/v1/org-units` (the whole tree for platform
//! staff who manage tenants, users or read reports; a unit admin its own
//! subtree), `GET /api/v1/org-units/{id}/report` (the tenants at or below a
//! unit), `PUT /api/v1/tenants/{code}/org-unit` (attach a tenant).
//!
//! A unit outside the caller's subtree is `ORG_UNIT_NOT_FOUND` (404), never
//! "forbidden", like another tenant's objects. The tree's rules are
//! `yunshu_domain::org_unit`'s; who reaches what is `yunshu_auth::org`'s.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use yunshu_auth::{Principal, org};
use yunshu_domain::ids::OrgUnitId;
use yunshu_domain::org_unit::{self, OrgTree, OrgUnit, OrgUnitError};
use yunshu_domain::tenant::Tenant;
use yunshu_domain::user::{Permission, Scope};
use yunshu_domain::{ErrorCode, Name, TenantCode};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{Txn, records};
use yunshu_workflow::Clock;
use yunshu_workflow::org_report::{self, TenantReport};

use crate::context::audit_draft;
use crate::error::ApiError;
use crate::json::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::workflow_error::workflow_error;

/// An org-unit refusal with its status: an existing id conflicts, a unit
/// not found (or not the caller's to see) is 404, a bad tree shape is 400.
pub(crate) fn org_unit_error(e: &OrgUnitError) -> ApiError {
    let status = match e {
        OrgUnitError::Exists { .. } => StatusCode::CONFLICT,
        OrgUnitError::NotFound { .. } => StatusCode::NOT_FOUND,
        OrgUnitError::ParentNotFound { .. }
        | OrgUnitError::Cycle { .. }
        | OrgUnitError::TooDeep { .. } => StatusCode::BAD_REQUEST,
    };
    ApiError::refused(status, e.code(), e.to_string(), e.message_zh())
}

fn not_found(id: &str) -> ApiError {
    org_unit_error(&OrgUnitError::NotFound { id: id.to_owned() })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrgUnitRequest {
    /// 1–64 ASCII letters, digits, `-`, `_`, `.`, e.g. `beijing`.
    #[schema(value_type = String)]
    pub id: OrgUnitId,
    /// e.g. 北京市, 朝阳区发展和改革委员会.
    #[schema(value_type = String)]
    pub name: Name,
    /// The unit above; absent for a root.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub parent: Option<OrgUnitId>,
}

/// One unit with its place in the tree.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrgUnitView {
    pub id: String,
    pub name: String,
    pub parent: Option<String>,
    /// 1 for a root.
    pub depth: usize,
    /// 省级, 市级, 区县级, 委办局, 处室, then 第N级.
    pub level_zh: String,
    /// The tenants attached to this unit itself.
    pub tenants: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

fn view(tree: &OrgTree, tenants: &[Tenant], u: &OrgUnit) -> OrgUnitView {
    let depth = tree.depth(&u.id);
    OrgUnitView {
        id: u.id.to_string(),
        name: u.name.to_string(),
        parent: u.parent.as_ref().map(ToString::to_string),
        depth,
        level_zh: org_unit::level_zh(depth),
        tenants: tenants
            .iter()
            .filter(|t| t.org_unit.as_ref() == Some(&u.id))
            .map(|t| t.code.to_string())
            .collect(),
        created_at: u.created_at,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrgUnitList {
    /// Parents before children, then by id.
    pub items: Vec<OrgUnitView>,
}

/// `POST /api/v1/org-units`.
#[utoipa::path(
    post,
    path = "/api/v1/org-units",
    tag = "users",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = CreateOrgUnitRequest,
    responses(
        (status = 201, description = "Created", body = OrgUnitView),
        (status = 400, description = "ORG_UNIT_PARENT_NOT_FOUND; ORG_UNIT_CYCLE: its own parent; ORG_UNIT_TOO_DEEP: more than 8 levels; or a malformed body", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs tenant_manage (the system administrator)", body = crate::error::ErrorBody),
        (status = 409, description = "ORG_UNIT_EXISTS", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn org_unit_create(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiJson(req): ApiJson<CreateOrgUnitRequest>,
) -> Result<(StatusCode, Json<OrgUnitView>), ApiError> {
    caller.require(Permission::TenantManage, None)?;
    let now = crate::context::now_of(clock);
    let unit = OrgUnit {
        id: req.id,
        name: req.name,
        parent: req.parent,
        created_at: now,
    };
    let tree = org::tree(&*state.store).await?;
    tree.check_new(&unit).map_err(|e| org_unit_error(&e))?;
    let key = records::key::<OrgUnit>(unit.id.as_str());
    let mut txn = Txn::new()
        .when_mod_revision(key.clone(), 0)
        .put(key.clone(), records::encode(&unit));
    // The parent as checked: units are never deleted through the API, but
    // the compare keeps the depth check honest whatever wrote meanwhile.
    if let Some(p) = &unit.parent {
        let (_, rev) = records::get::<OrgUnit>(&*state.store, p.as_str())
            .await?
            .ok_or_else(|| {
                org_unit_error(&OrgUnitError::ParentNotFound {
                    parent: p.to_string(),
                })
            })?;
        txn = txn.when_mod_revision(records::key::<OrgUnit>(p.as_str()), rev);
    }
    let mut draft = audit_draft(
        &caller.actor.to_string(),
        "org_unit.create",
        &key,
        Some(format!(
            "{} under {}",
            unit.name,
            unit.parent.as_ref().map_or("(root)", |p| p.as_str())
        )),
    )?;
    draft.at = now;
    match audit::append(&*state.store, draft, txn).await? {
        Appended::Committed { .. } => {
            let tree = OrgTree::new(tree.units().cloned().chain([unit.clone()]));
            Ok((StatusCode::CREATED, Json(view(&tree, &[], &unit))))
        }
        Appended::Conflict => Err(org_unit_error(&OrgUnitError::Exists {
            id: unit.id.to_string(),
        })),
    }
}

/// Whether the caller sees every unit: the platform staff who register
/// tenants, manage users or read reports.
fn sees_all(caller: &Principal) -> bool {
    caller.can(Permission::TenantManage, None)
        || caller.can(Permission::UserManage, None)
        || caller.can(Permission::ReportRead, None)
}

/// Whether the caller sees unit `id`: all of them, or `id` at or below a unit
/// it administers.
fn sees(caller: &Principal, id: &OrgUnitId) -> bool {
    sees_all(caller)
        || caller.can_in_unit(Permission::TenantUserManage, id, false)
        || caller.can_in_unit(Permission::ReportRead, id, false)
}

/// Parents before children, then by id.
fn ordered(tree: &OrgTree, mut units: Vec<&OrgUnit>) -> Vec<OrgUnit> {
    units.sort_by(|a, b| (tree.depth(&a.id), &a.id).cmp(&(tree.depth(&b.id), &b.id)));
    units.into_iter().cloned().collect()
}

/// `GET /api/v1/org-units`.
#[utoipa::path(
    get,
    path = "/api/v1/org-units",
    tag = "users",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Every unit the caller sees: all for the system and security administrators and report readers, its own subtree for a unit admin", body = OrgUnitList),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: neither platform staff nor a unit admin", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn org_unit_list(
    caller: Principal,
    State(state): State<AppState>,
) -> Result<Json<OrgUnitList>, ApiError> {
    let unit_admin = caller
        .bindings
        .iter()
        .any(|b| matches!(b.scope(), Scope::OrgUnit { .. }));
    if !sees_all(&caller) && !unit_admin {
        return Err(yunshu_auth::AuthError::Forbidden.into());
    }
    let tree = org::tree(&*state.store).await?;
    let tenants = org::tenants(&*state.store).await?;
    let visible = tree.units().filter(|u| sees(&caller, &u.id)).collect();
    let items = ordered(&tree, visible)
        .iter()
        .map(|u| view(&tree, &tenants, u))
        .collect();
    Ok(Json(OrgUnitList { items }))
}

/// A unit's report: the unit and, per tenant at or below it, its figures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrgUnitReport {
    pub unit: OrgUnitView,
    /// The units below it, parents first.
    pub units_below: Vec<OrgUnitView>,
    pub tenants: Vec<TenantReport>,
}

/// `GET /api/v1/org-units/{id}/report`.
#[utoipa::path(
    get,
    path = "/api/v1/org-units/{id}/report",
    tag = "users",
    params(("id" = String, Path, description = "The org unit id")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Per tenant at or below the unit: systems, orders by state, resources by kind, this month's charge", body = OrgUnitReport),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs report_read (platform) or a unit admin's binding (the system administrator reads no tenant figures)", body = crate::error::ErrorBody),
        (status = 404, description = "ORG_UNIT_NOT_FOUND: no such unit, or one outside the caller's subtree", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn org_unit_report(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<OrgUnitReport>, ApiError> {
    let platform = caller.can(Permission::ReportRead, None);
    let unit_reader = caller
        .bindings
        .iter()
        .any(|b| matches!(b.scope(), Scope::OrgUnit { .. }) && b.allows(Permission::ReportRead));
    if !platform && !unit_reader {
        return Err(yunshu_auth::AuthError::Forbidden.into());
    }
    let Ok(unit_id) = OrgUnitId::new(id.clone()) else {
        return Err(not_found(&id));
    };
    if !platform && !caller.can_in_unit(Permission::ReportRead, &unit_id, false) {
        return Err(not_found(&id));
    }
    let tree = org::tree(&*state.store).await?;
    let Some(unit) = tree.get(&unit_id) else {
        return Err(not_found(&id));
    };
    let below = tree.below(&unit_id);
    let all_tenants = org::tenants(&*state.store).await?;
    let tenants: Vec<Tenant> = all_tenants
        .iter()
        .filter(|t| {
            t.org_unit
                .as_ref()
                .is_some_and(|u| u == &unit_id || below.contains(u))
        })
        .cloned()
        .collect();
    let now = crate::context::now_of(clock);
    let reports = org_report::tenant_reports(&*state.store, &tenants, now)
        .await
        .map_err(workflow_error)?;
    let units_below = ordered(&tree, below.iter().filter_map(|u| tree.get(u)).collect())
        .iter()
        .map(|u| view(&tree, &all_tenants, u))
        .collect();
    Ok(Json(OrgUnitReport {
        unit: view(&tree, &all_tenants, unit),
        units_below,
        tenants: reports,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantOrgUnitRequest {
    /// The unit to attach the tenant to; null detaches it.
    #[schema(value_type = Option<String>)]
    pub org_unit: Option<OrgUnitId>,
}

/// Checks that unit `id` exists; the revision to compare on.
pub(crate) async fn unit_revision(
    state: &AppState,
    id: &OrgUnitId,
) -> Result<yunshu_store::Revision, ApiError> {
    match records::get::<OrgUnit>(&*state.store, id.as_str()).await? {
        Some((_, rev)) => Ok(rev),
        None => Err(not_found(id.as_str())),
    }
}

/// `PUT /api/v1/tenants/{code}/org-unit`: attaches a tenant to a unit (or
/// detaches it); the unit admins above see it from their next request.
#[utoipa::path(
    put,
    path = "/api/v1/tenants/{code}/org-unit",
    tag = "users",
    params(("code" = String, Path, description = "The tenant code")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = TenantOrgUnitRequest,
    responses(
        (status = 200, description = "Attached", body = crate::tenants::TenantView),
        (status = 400, description = "A malformed body", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs tenant_manage (the system administrator)", body = crate::error::ErrorBody),
        (status = 404, description = "TENANT_NOT_FOUND; ORG_UNIT_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "TENANT_CHANGED: changed meanwhile, try again", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn tenant_org_unit_set(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(code): ApiPath<String>,
    ApiJson(req): ApiJson<TenantOrgUnitRequest>,
) -> Result<Json<crate::tenants::TenantView>, ApiError> {
    caller.require(Permission::TenantManage, None)?;
    let tenant_missing =
        || ApiError::from(yunshu_auth::AuthError::TenantNotFound { code: code.clone() });
    let Ok(tenant_code) = TenantCode::new(code.clone()) else {
        return Err(tenant_missing());
    };
    let (mut tenant, rev) = records::get::<Tenant>(&*state.store, tenant_code.as_str())
        .await?
        .ok_or_else(tenant_missing)?;
    let key = records::key::<Tenant>(tenant_code.as_str());
    let mut txn = Txn::new().when_mod_revision(key.clone(), rev);
    if let Some(u) = &req.org_unit {
        let unit_rev = unit_revision(&state, u).await?;
        txn = txn.when_mod_revision(records::key::<OrgUnit>(u.as_str()), unit_rev);
    }
    let before = tenant.org_unit.clone();
    tenant.org_unit = req.org_unit;
    let txn = txn.put(key.clone(), records::encode(&tenant));
    let now = crate::context::now_of(clock);
    let show = |u: &Option<OrgUnitId>| u.as_ref().map_or("(none)".to_owned(), ToString::to_string);
    let mut draft = audit_draft(
        &caller.actor.to_string(),
        "tenant.org_unit.set",
        &key,
        Some(format!("{} -> {}", show(&before), show(&tenant.org_unit))),
    )?;
    draft.at = now;
    match audit::append(&*state.store, draft, txn).await? {
        Appended::Committed { .. } => Ok(Json(tenant.into())),
        Appended::Conflict => Err(ApiError::refused(
            StatusCode::CONFLICT,
            "TENANT_CHANGED",
            format!("Tenant {code} or its unit changed meanwhile; reload and try again."),
            format!("使用单位 {code} 或其组织机构已被他人修改，请刷新后重试。"),
        )),
    }
}
