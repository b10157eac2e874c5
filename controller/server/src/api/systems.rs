//! Information systems (信息系统) over HTTP: `POST /api/v1/systems`,
//! `GET /api/v1/systems`, `GET /api/v1/systems/{number}`.
//!
//! Owns parsing and the wire shapes; numbering, scoping and audit are the
//! workflow's (`workflow::systems`). Must not call drivers.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use yunshu_domain::system::{
    Contact, InformationSystem, NetworkNature, PreApproval, RunSchedule, SecurityLevel, SystemType,
};
use yunshu_domain::{Name, Text};

use super::ApiError;
use super::orders::{ListQuery, workflow_error};
use crate::AppState;
use crate::auth::principal::Principal;
use crate::workflow::{self, Clock, systems::SystemFields};

/// `POST /api/v1/systems` body: the fields of the Beijing work order part 1
/// (004 附件1-3); the number is assigned by the controller.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSystemRequest {
    pub name: Name,
    pub system_type: SystemType,
    pub security_level: SecurityLevel,
    pub run_schedule: RunSchedule,
    pub network_nature: NetworkNature,
    pub contact: Contact,
    #[serde(default)]
    pub technical_contact: Option<Contact>,
    pub description: Text,
    /// 前置审批情况; absent means none.
    #[serde(default)]
    pub pre_approval: Option<PreApproval>,
}

#[derive(Debug, Serialize)]
pub struct SystemView {
    pub tenant: String,
    #[serde(flatten)]
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

#[derive(Debug, Serialize)]
pub struct SystemPage {
    pub items: Vec<SystemView>,
    pub next: Option<String>,
}

/// `POST /api/v1/systems`: a system of the caller's own tenant (`system_write`).
pub(crate) async fn system_create(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    super::ApiJson(req): super::ApiJson<CreateSystemRequest>,
) -> Result<(StatusCode, Json<SystemView>), ApiError> {
    let now = clock.map(|Extension(c)| c).unwrap_or_default().now();
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
pub(crate) async fn system_list(
    caller: Principal,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
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
pub(crate) async fn system_get(
    caller: Principal,
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Result<Json<SystemView>, ApiError> {
    let system = workflow::systems::system_get(&*state.store, &caller, &number)
        .await
        .map_err(workflow_error)?;
    Ok(Json(system.into()))
}
