//! Information systems (信息系统) over HTTP: `POST /api/v1/systems`,
//! `GET /api/v1/systems`, `GET /api/v1/systems/{number}`.
//!
//! Owns parsing and the wire shapes; numbering, scoping and audit are the
//! workflow's (`workflow::systems`). Must not call drivers.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::system::{
    Contact, InformationSystem, NetworkNature, PreApproval, RunSchedule, SecurityLevel, SystemType,
};
use yunshu_domain::{Name, Text};
use yunshu_workflow::{self as workflow, Clock, systems::SystemFields};

use crate::error::ApiError;
use crate::json::{ApiPath, ApiQuery};
use crate::paging::ListQuery;
use crate::state::AppState;
use crate::workflow_error::workflow_error;

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
    /// The using unit requires 信创 (domestic chips): every server of the
    /// system's orders must be arm64 or c86 (`XINCHUANG_ARCH_REQUIRED`
    /// otherwise). Default `false`.
    #[serde(default)]
    pub xinchuang: bool,
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
        (status = 400, description = "Malformed body or invalid field (a stable code says which)", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
        (status = 409, description = "SYSTEM_NUMBERS_EXHAUSTED", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn system_create(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    crate::json::ApiJson(req): crate::json::ApiJson<CreateSystemRequest>,
) -> Result<(StatusCode, Json<SystemView>), ApiError> {
    let now = crate::context::now_of(clock);
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
        xinchuang: req.xinchuang,
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
        (status = 400, description = "Malformed query", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
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
        (status = 400, description = "Malformed system number", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND", body = crate::error::ErrorBody),
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
