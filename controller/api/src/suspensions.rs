//! Suspending (暂停服务) and resuming an information system over HTTP (002
//! art. 18; 004 art. 27, agreement art. 9 (15)):
//! `GET /api/v1/systems/{number}/suspension` for everyone who sees the
//! system (the department learns why), `POST …/suspension` and
//! `POST …/suspension/resume` for the management unit. The record and its
//! rules are `workflow::suspension`'s; the reconciler powers the servers off
//! and on.

use axum::Json;
use axum::extract::{Extension, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::Text;
use yunshu_workflow::suspension::Suspension;
use yunshu_workflow::{self as workflow, Clock};

use crate::error::ApiError;
use crate::json::ApiPath;
use crate::state::AppState;
use crate::workflow_error::workflow_error;

/// One suspension: who decided it, when and why, and its lifting.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SuspensionEntryView {
    /// `user:<id>` of the approver who suspended the system.
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: String,
    pub resumed_by: Option<String>,
    pub resumed_at: Option<DateTime<Utc>>,
    pub resume_reason: Option<String>,
}

/// A system's suspension state and its history, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SuspensionView {
    pub system: String,
    /// While `true` the system's servers are powered off (disks, addresses,
    /// network and backups kept) and the system is still charged.
    pub suspended: bool,
    /// The suspension in force, if any.
    pub current: Option<SuspensionEntryView>,
    pub history: Vec<SuspensionEntryView>,
}

impl From<Suspension> for SuspensionView {
    fn from(s: Suspension) -> Self {
        let history: Vec<SuspensionEntryView> = s
            .history
            .iter()
            .map(|e| SuspensionEntryView {
                by: e.by.to_string(),
                at: e.at,
                reason: e.reason.as_str().to_owned(),
                resumed_by: e.resumed.as_ref().map(|r| r.by.to_string()),
                resumed_at: e.resumed.as_ref().map(|r| r.at),
                resume_reason: e.resumed.as_ref().map(|r| r.reason.as_str().to_owned()),
            })
            .collect();
        let suspended = s.is_suspended();
        let current = if suspended {
            history.last().map(|e| SuspensionEntryView {
                by: e.by.clone(),
                at: e.at,
                reason: e.reason.clone(),
                resumed_by: None,
                resumed_at: None,
                resume_reason: None,
            })
        } else {
            None
        };
        SuspensionView {
            system: s.system.to_string(),
            suspended,
            current,
            history,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspensionBody {
    /// Why (required, 1–4000 characters): the security risk or event, or
    /// that it is dealt with.
    #[schema(value_type = String)]
    pub reason: Text,
}

/// `GET /api/v1/systems/{number}/suspension`.
#[utoipa::path(
    get,
    path = "/api/v1/systems/{number}/suspension",
    tag = "systems",
    params(("number" = String, Path, description = "The system number")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The suspension state (an empty history when never suspended)", body = SuspensionView),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND (another tenant's system too)", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn suspension_get(
    caller: Principal,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<SuspensionView>, ApiError> {
    let s = workflow::suspension::get(&*state.store, &caller, &number)
        .await
        .map_err(workflow_error)?;
    Ok(Json(s.into()))
}

/// `POST /api/v1/systems/{number}/suspension`: the management unit
/// (`order_approve`) suspends a system with a major security risk (002 art.
/// 18 "暂停服务"; 004 art. 27 "暂时中断该系统的云服务"): its servers are
/// powered off, everything else kept. Audited `system.suspend`.
#[utoipa::path(
    post,
    path = "/api/v1/systems/{number}/suspension",
    tag = "systems",
    params(("number" = String, Path, description = "The system number")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = SuspensionBody,
    responses(
        (status = 200, description = "Suspended", body = SuspensionView),
        (status = 400, description = "Malformed body or a blank reason", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs order_approve", body = crate::error::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "SYSTEM_ALREADY_SUSPENDED", body = crate::error::ErrorBody),
        (status = 503, description = "BUSY: the record changed meanwhile, retry; or the store is unavailable", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn suspension_suspend(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(number): ApiPath<String>,
    crate::json::ApiJson(req): crate::json::ApiJson<SuspensionBody>,
) -> Result<Json<SuspensionView>, ApiError> {
    let now = crate::context::now_of(clock);
    let s = workflow::suspension::suspend(&*state.store, &caller, &number, req.reason, now)
        .await
        .map_err(workflow_error)?;
    Ok(Json(s.into()))
}

/// `POST /api/v1/systems/{number}/suspension/resume`: the management unit
/// lifts the suspension once the event is dealt with ("事件处理完毕后恢复服务",
/// 004 art. 27); the servers power on again unless the system is also
/// offline or exited. Audited `system.resume`.
#[utoipa::path(
    post,
    path = "/api/v1/systems/{number}/suspension/resume",
    tag = "systems",
    params(("number" = String, Path, description = "The system number")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = SuspensionBody,
    responses(
        (status = 200, description = "Resumed", body = SuspensionView),
        (status = 400, description = "Malformed body or a blank reason", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs order_approve", body = crate::error::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "SYSTEM_NOT_SUSPENDED", body = crate::error::ErrorBody),
        (status = 503, description = "BUSY: the record changed meanwhile, retry; or the store is unavailable", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn suspension_resume(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(number): ApiPath<String>,
    crate::json::ApiJson(req): crate::json::ApiJson<SuspensionBody>,
) -> Result<Json<SuspensionView>, ApiError> {
    let now = crate::context::now_of(clock);
    let s = workflow::suspension::resume(&*state.store, &caller, &number, req.reason, now)
        .await
        .map_err(workflow_error)?;
    Ok(Json(s.into()))
}
