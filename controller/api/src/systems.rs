//! Information systems (信息系统) over HTTP: `POST /api/v1/systems`,
//! `GET /api/v1/systems`, `GET /api/v1/systems/{number}`.
//!
//! Owns parsing and the wire shapes; numbering, scoping and audit are the
//! workflow's (`workflow::systems`). Must not call drivers.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use yunshu_domain::calendar::Calendar;
use yunshu_domain::system::{
    Contact, InformationSystem, NetworkNature, PreApproval, RunSchedule, SecurityLevel,
    SystemNumber, SystemType,
};
use yunshu_domain::{Name, Text};

use super::orders::{ListQuery, calendar, workflow_error};
use super::{ApiError, ApiPath, ApiQuery};
use crate::AppState;
use yunshu_auth::Principal;
use yunshu_workflow::{self as workflow, Clock, systems::SystemFields};

/// `POST /api/v1/systems` body: the fields of the Beijing work order part 1
/// (004 附件1-3); the number is assigned by the controller.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSystemRequest {
    #[schema(value_type = String)]
    pub name: Name,
    /// A `SystemType` (domain enum, snake_case).
    #[schema(value_type = String)]
    pub system_type: SystemType,
    /// A `SecurityLevel` (domain enum).
    #[schema(value_type = String)]
    pub security_level: SecurityLevel,
    /// A `RunSchedule` (domain enum).
    #[schema(value_type = serde_json::Value)]
    pub run_schedule: RunSchedule,
    /// A `NetworkNature` (domain enum, snake_case).
    #[schema(value_type = String)]
    pub network_nature: NetworkNature,
    #[schema(value_type = Object)]
    pub contact: Contact,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub technical_contact: Option<Contact>,
    #[schema(value_type = String)]
    pub description: Text,
    /// 前置审批情况; absent means none.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub pre_approval: Option<PreApproval>,
}

/// The system as stored (`InformationSystem`, flattened) plus its tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SystemView {
    pub tenant: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub system: InformationSystem,
}

impl From<InformationSystem> for SystemView {
    fn from(system: InformationSystem) -> Self {
        SystemView {
            tenant: system.tenant().to_string(),
            system,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SystemPage {
    pub items: Vec<SystemView>,
    pub next: Option<String>,
}

/// `POST /api/v1/systems`: a system of the caller's own tenant (`system_write`).
#[utoipa::path(
    post,
    path = "/api/v1/systems",
    tag = "systems",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = CreateSystemRequest,
    responses(
        (status = 201, description = "The system, with its assigned number", body = SystemView),
        (status = 400, description = "Malformed body or invalid field (a stable code says which)", body = crate::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::ErrorBody),
        (status = 409, description = "SYSTEM_NUMBERS_EXHAUSTED", body = crate::ErrorBody),
    )
)]
pub(crate) async fn system_create(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    super::ApiJson(req): super::ApiJson<CreateSystemRequest>,
) -> Result<(StatusCode, Json<SystemView>), ApiError> {
    let now = super::orders::now_of(clock);
    let fields = SystemFields {
        name: req.name,
        system_type: req.system_type,
        security_level: req.security_level,
        run_schedule: req.run_schedule,
        network_nature: req.network_nature,
        contact: req.contact,
        technical_contact: req.technical_contact,
        description: req.description,
        pre_approval: req.pre_approval.unwrap_or(PreApproval::None),
    };
    let system = workflow::systems::system_create(&*state.store, &caller, fields, now)
        .await
        .map_err(workflow_error)?;
    Ok((StatusCode::CREATED, Json(system.into())))
}

/// `GET /api/v1/systems?after=&limit=`: the caller's tenant's systems, or all for
/// platform roles with `system_read`.
#[utoipa::path(
    get,
    path = "/api/v1/systems",
    tag = "systems",
    params(ListQuery),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "One page of systems", body = SystemPage),
        (status = 400, description = "Malformed query", body = crate::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::ErrorBody),
    )
)]
pub(crate) async fn system_list(
    caller: Principal,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<SystemPage>, ApiError> {
    let page = workflow::systems::system_list(
        &*state.store,
        &caller,
        q.after.as_deref(),
        workflow::page_limit(q.limit),
    )
    .await
    .map_err(workflow_error)?;
    Ok(Json(SystemPage {
        items: page.items.into_iter().map(SystemView::from).collect(),
        next: page.next,
    }))
}

/// `GET /api/v1/systems/{number}`: another tenant's system is 404
/// `SYSTEM_NOT_FOUND`, never 403 (SPEC §1).
#[utoipa::path(
    get,
    path = "/api/v1/systems/{number}",
    tag = "systems",
    params(("number" = String, Path, description = "The system number")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The system", body = SystemView),
        (status = 400, description = "Malformed system number", body = crate::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND", body = crate::ErrorBody),
    )
)]
pub(crate) async fn system_get(
    caller: Principal,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<SystemView>, ApiError> {
    let system = workflow::systems::system_get(&*state.store, &caller, &number)
        .await
        .map_err(workflow_error)?;
    Ok(Json(system.into()))
}

/// A system's usage period (使用期, 002 art. 14) as shown to people.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageTermView {
    pub system: String,
    pub starts_on: NaiveDate,
    /// Last day of use.
    pub expires_on: NaiveDate,
    /// The day the one-month notice is due.
    pub notice_on: Option<NaiveDate>,
    pub notice_sent_at: Option<DateTime<Utc>>,
    /// A pending extension request: `{by, at, until, reason}`.
    #[schema(value_type = Option<Object>)]
    pub extension_requested: Option<workflow::usage::ExtensionRequest>,
    pub expired_at: Option<DateTime<Utc>>,
    /// Forced offline is complete by this day (end + 15 working days).
    pub offline_due: Option<NaiveDate>,
    pub offline_at: Option<DateTime<Utc>>,
    pub backups_kept_until: Option<NaiveDate>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl UsageTermView {
    fn new(t: workflow::usage::UsageTerm, calendar: &Calendar) -> Self {
        UsageTermView {
            system: t.system.to_string(),
            notice_on: t.notice_on(calendar).ok(),
            starts_on: t.starts_on,
            expires_on: t.expires_on,
            notice_sent_at: t.notice_sent_at,
            extension_requested: t.extension_requested,
            expired_at: t.expired_at,
            offline_due: t.offline_due,
            offline_at: t.offline_at,
            backups_kept_until: t.backups_kept_until,
            closed_at: t.closed_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionRequestBody {
    /// The new last day of use asked for.
    pub until: NaiveDate,
    #[schema(value_type = String)]
    pub reason: Text,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    /// The new last day of use: after the current one, at most 3 years from today.
    pub until: NaiveDate,
}

/// `GET /api/v1/systems/{number}/usage-term`.
#[utoipa::path(
    get,
    path = "/api/v1/systems/{number}/usage-term",
    tag = "systems",
    params(("number" = String, Path, description = "The system number")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The usage period", body = UsageTermView),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::ErrorBody),
        (status = 403, description = "FORBIDDEN", body = crate::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND or USAGE_TERM_NOT_FOUND (starts at delivery confirmation)", body = crate::ErrorBody),
    )
)]
pub(crate) async fn usage_term_get(
    caller: Principal,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<UsageTermView>, ApiError> {
    let term = workflow::usage::get(&*state.store, &caller, &number)
        .await
        .map_err(workflow_error)?;
    Ok(Json(UsageTermView::new(term, &calendar(&state).await?)))
}

/// `POST /api/v1/systems/{number}/usage-term/extension-request`: the tenant
/// admin asks to extend before the end; while pending, the system is not forced
/// offline (002 art. 14).
#[utoipa::path(
    post,
    path = "/api/v1/systems/{number}/usage-term/extension-request",
    tag = "systems",
    params(("number" = String, Path, description = "The system number")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = ExtensionRequestBody,
    responses(
        (status = 200, description = "Recorded", body = UsageTermView),
        (status = 400, description = "Malformed body", body = crate::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs change_request", body = crate::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND or USAGE_TERM_NOT_FOUND", body = crate::ErrorBody),
        (status = 409, description = "USAGE_EXTENSION_REFUSED", body = crate::ErrorBody),
    )
)]
pub(crate) async fn usage_extension_request(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(number): ApiPath<String>,
    super::ApiJson(req): super::ApiJson<ExtensionRequestBody>,
) -> Result<Json<UsageTermView>, ApiError> {
    let now = super::orders::now_of(clock);
    let term = workflow::usage::request_extension(
        &*state.store,
        &caller,
        &number,
        req.until,
        req.reason,
        now,
    )
    .await
    .map_err(workflow_error)?;
    Ok(Json(UsageTermView::new(term, &calendar(&state).await?)))
}

/// `POST /api/v1/systems/{number}/usage-term/extend`: the management unit
/// grants an extension (`order_approve`).
#[utoipa::path(
    post,
    path = "/api/v1/systems/{number}/usage-term/extend",
    tag = "systems",
    params(("number" = String, Path, description = "The system number")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = ExtendBody,
    responses(
        (status = 200, description = "Extended", body = UsageTermView),
        (status = 400, description = "Malformed body", body = crate::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs order_approve", body = crate::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND or USAGE_TERM_NOT_FOUND", body = crate::ErrorBody),
        (status = 409, description = "USAGE_EXTENSION_REFUSED", body = crate::ErrorBody),
    )
)]
pub(crate) async fn usage_extend(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(number): ApiPath<String>,
    super::ApiJson(req): super::ApiJson<ExtendBody>,
) -> Result<Json<UsageTermView>, ApiError> {
    let now = super::orders::now_of(clock);
    let cal = calendar(&state).await?;
    let term =
        workflow::usage::grant_extension(&*state.store, &caller, &number, req.until, &cal, now)
            .await
            .map_err(workflow_error)?;
    Ok(Json(UsageTermView::new(term, &cal)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpansionRequest {
    /// Server group name → extra VMs; `{}` ends the expansion.
    pub extra: std::collections::BTreeMap<String, u32>,
    /// How long, 1–90 days.
    pub days: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExpansionView {
    pub system: String,
    pub extra: std::collections::BTreeMap<String, u32>,
    pub until: Option<DateTime<Utc>>,
    pub active: bool,
    pub totals: workflow::expansion::Totals,
    /// The share allowed over the approved resources (seed 003).
    pub limit_percent: u64,
}

fn expansion_view(
    number: String,
    e: Option<workflow::expansion::Expansion>,
    totals: workflow::expansion::Totals,
    now: DateTime<Utc>,
) -> ExpansionView {
    ExpansionView {
        system: number,
        active: e
            .as_ref()
            .is_some_and(|e| e.active(now) && !e.extra.is_empty()),
        extra: e.as_ref().map(|e| e.extra.clone()).unwrap_or_default(),
        until: e.map(|e| e.until),
        totals,
        limit_percent: workflow::expansion::LIMIT_PERCENT,
    }
}

/// `GET /api/v1/systems/{number}/temporary-expansion`: the free expansion in
/// force and the approved totals it is measured against.
#[utoipa::path(
    get,
    path = "/api/v1/systems/{number}/temporary-expansion",
    tag = "systems",
    params(("number" = String, Path, description = "The system number")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The expansion (inactive when none)", body = ExpansionView),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::ErrorBody),
        (status = 403, description = "FORBIDDEN", body = crate::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND", body = crate::ErrorBody),
    )
)]
pub(crate) async fn expansion_get(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<ExpansionView>, ApiError> {
    let now = super::orders::now_of(clock);
    let (e, totals) = workflow::expansion::get(&*state.store, &caller, &number)
        .await
        .map_err(workflow_error)?;
    Ok(Json(expansion_view(number, e, totals, now)))
}

/// `PUT /api/v1/systems/{number}/temporary-expansion`: the tenant admin runs
/// extra VMs of existing server groups for up to 90 days, free, within 20 % of
/// the approved vCPU and memory (seed 003); no new order needed.
#[utoipa::path(
    put,
    path = "/api/v1/systems/{number}/temporary-expansion",
    tag = "systems",
    params(("number" = String, Path, description = "The system number")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = ExpansionRequest,
    responses(
        (status = 200, description = "In force; the reconciler adds (or removes) the VMs", body = ExpansionView),
        (status = 400, description = "Malformed body", body = crate::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs change_request", body = crate::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND", body = crate::ErrorBody),
        (status = 409, description = "EXPANSION_REFUSED, with the totals in `details`", body = crate::ErrorBody),
    )
)]
pub(crate) async fn expansion_put(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(number): ApiPath<String>,
    super::ApiJson(req): super::ApiJson<ExpansionRequest>,
) -> Result<Json<ExpansionView>, ApiError> {
    let now = super::orders::now_of(clock);
    let (e, totals) =
        workflow::expansion::set(&*state.store, &caller, &number, req.extra, req.days, now)
            .await
            .map_err(workflow_error)?;
    Ok(Json(expansion_view(number, Some(e), totals, now)))
}

/// One resource of a system as its tenant sees it: desired shape, placement
/// (zone and pool; hosts are the provider's business) and observed state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResourceView {
    pub id: String,
    /// `vm`, `volume`, … (domain `ResourceKind`).
    pub kind: String,
    /// The work order that asked for it.
    pub order: Option<String>,
    pub vcpu: Option<u32>,
    pub memory_gib: Option<u64>,
    pub zone: Option<String>,
    pub network_area: Option<String>,
    pub pool: Option<String>,
    pub generation: u64,
    /// `pending`, `provisioning`, `running`, `failed`, `deleting` … (observed).
    pub phase: String,
    pub message: Option<String>,
    pub observed_generation: u64,
    pub deletion_requested_at: Option<DateTime<Utc>>,
    /// What the driver reports for the tenant: addresses, endpoints …
    pub outputs: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResourceList {
    pub items: Vec<ResourceView>,
}

/// `GET /api/v1/systems/{number}/resources`: the system's resources with their
/// live state (what the reconciler last observed).
#[utoipa::path(
    get,
    path = "/api/v1/systems/{number}/resources",
    tag = "systems",
    params(("number" = String, Path, description = "The system number")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The system's resources", body = ResourceList),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs resource_read", body = crate::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND", body = crate::ErrorBody),
    )
)]
pub(crate) async fn resource_list(
    caller: Principal,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<ResourceList>, ApiError> {
    let system = readable_system(&state, &caller, &number).await?;
    Ok(Json(ResourceList {
        items: resource_views(&*state.store, &system.number).await?,
    }))
}

/// The system `number` if the caller may read its resources (another
/// tenant's system is `SYSTEM_NOT_FOUND`).
pub(crate) async fn readable_system(
    state: &AppState,
    caller: &Principal,
    number: &str,
) -> Result<InformationSystem, ApiError> {
    use yunshu_domain::user::Permission;
    let system = workflow::systems::system_get(&*state.store, caller, number)
        .await
        .map_err(workflow_error)?;
    caller.require(Permission::ResourceRead, Some(system.tenant()))?;
    Ok(system)
}

/// A system's resources with what the reconciler last observed of each.
pub(crate) async fn resource_views(
    store: &dyn yunshu_store::Store,
    number: &SystemNumber,
) -> Result<Vec<ResourceView>, ApiError> {
    use yunshu_domain::resource::{Resource, ResourceSpec};
    let prefix =
        yunshu_store::records::key::<Resource>(&yunshu_workflow::desired::system_prefix(number));
    let resources = yunshu_store::page::scan_all_under::<Resource>(store, &prefix).await?;
    let mut items = Vec::with_capacity(resources.len());
    for (res, _) in resources {
        let observed = yunshu_store::records::get::<yunshu_workflow::resources::StatusRecord>(
            store,
            res.id().as_str(),
        )
        .await?
        .map(|(s, _)| s);
        let (status, outputs) = match observed {
            Some(s) => (s.status, s.outputs),
            None => (res.status().clone(), Default::default()),
        };
        let (vcpu, memory_gib) = match res.spec() {
            ResourceSpec::Vm(vm) => (Some(vm.vcpu.get()), Some(vm.memory_mib.get() / 1024)),
            _ => (None, None),
        };
        let placement = res.placement();
        items.push(ResourceView {
            id: res.id().to_string(),
            kind: res.kind().as_str().to_owned(),
            order: res.order().map(ToString::to_string),
            vcpu,
            memory_gib,
            zone: placement.map(|p| p.zone.to_string()),
            network_area: placement.map(|p| p.network_area.to_string()),
            pool: placement.map(|p| p.pool.to_string()),
            generation: res.generation(),
            phase: serde_json::to_value(status.phase)
                .ok()
                .and_then(|v| v.as_str().map(ToOwned::to_owned))
                .unwrap_or_default(),
            message: status.message,
            observed_generation: status.observed_generation,
            deletion_requested_at: res.deletion_requested_at(),
            outputs,
        });
    }
    Ok(items)
}
