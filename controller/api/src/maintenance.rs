//! Planned maintenance windows (计划内维护, 000 art. 18, 004 art. 19) over
//! HTTP: `POST /api/v1/maintenance` (a provider operator for its provider, or
//! the approver), `GET /api/v1/maintenance` (each caller the windows that
//! concern it) and `POST /api/v1/maintenance/{id}/cancel`. The notice rule,
//! the emergency exemption and who sees what are `workflow::maintenance`'s.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::ids::ZoneId;
use yunshu_domain::{ProviderId, Text};
use yunshu_workflow::maintenance::{Announcement, MaintenanceWindow};
use yunshu_workflow::{self as workflow, Clock};

use crate::error::ApiError;
use crate::json::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::workflow_error::workflow_error;

/// A maintenance window as shown to people.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MaintenanceView {
    pub id: String,
    /// At the time of the answer: `upcoming`, `in_progress`, `cancelled`
    /// (before its end) or `ended`.
    pub status: String,
    pub provider: String,
    /// The zones affected; empty: the whole provider.
    pub zones: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// What is affected.
    pub affects: String,
    /// Why the work is done.
    pub reason: String,
    /// An emergency repair (故障抢修): not planned maintenance, so exempt from
    /// the 3-working-day notice; `emergency_reason` says why it could not wait.
    pub emergency: bool,
    pub emergency_reason: Option<String>,
    /// The notice the window was held to: `{working_days, earliest_start,
    /// source}`; `null` for an emergency repair.
    #[schema(value_type = Option<Object>)]
    pub notice: Option<workflow::maintenance::Notice>,
    pub announced_by: String,
    pub announced_at: DateTime<Utc>,
    /// `{by, at, reason}` once cancelled.
    #[schema(value_type = Option<Object>)]
    pub cancelled: Option<workflow::maintenance::Cancellation>,
}

impl MaintenanceView {
    fn new(w: MaintenanceWindow, now: DateTime<Utc>) -> Self {
        MaintenanceView {
            status: w.status(now).to_owned(),
            id: w.id,
            provider: w.provider.to_string(),
            zones: w.zones.iter().map(ToString::to_string).collect(),
            starts_at: w.starts_at,
            ends_at: w.ends_at,
            affects: w.affects.to_string(),
            reason: w.reason.to_string(),
            emergency: w.emergency,
            emergency_reason: w.emergency_reason.map(|r| r.to_string()),
            notice: w.notice,
            announced_by: w.announced_by.to_string(),
            announced_at: w.announced_at,
            cancelled: w.cancelled,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MaintenanceList {
    pub items: Vec<MaintenanceView>,
}

/// `POST /api/v1/maintenance`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnounceBody {
    #[schema(value_type = String)]
    pub provider: ProviderId,
    /// Zones of the provider affected; absent or empty: all of them.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub zones: Vec<ZoneId>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// What is affected (影响范围).
    #[schema(value_type = String)]
    pub affects: Text,
    /// Why (维护原因).
    #[schema(value_type = String)]
    pub reason: Text,
    /// An emergency repair (故障抢修), exempt from the notice; needs
    /// `emergency_reason`.
    #[serde(default)]
    pub emergency: bool,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub emergency_reason: Option<Text>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    #[schema(value_type = String)]
    pub reason: Text,
}

/// `GET /api/v1/maintenance`: platform staff see every window, a provider
/// operator its provider's, a tenant those touching a provider and zone
/// where its systems' resources are placed — and nothing else.
#[utoipa::path(
    get,
    path = "/api/v1/maintenance",
    tag = "maintenance",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The windows the caller may see, latest start first", body = MaintenanceList),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn maintenance_list(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
) -> Result<Json<MaintenanceList>, ApiError> {
    let now = crate::context::now_of(clock);
    let items = workflow::maintenance::list(&*state.store, &caller)
        .await
        .map_err(workflow_error)?;
    Ok(Json(MaintenanceList {
        items: items
            .into_iter()
            .map(|w| MaintenanceView::new(w, now))
            .collect(),
    }))
}

/// `POST /api/v1/maintenance`: announce planned maintenance at least 3 working
/// days ahead (000 art. 18, 004 art. 19; the policies' `maintenance_notice`),
/// or an emergency repair with its reason (no notice).
#[utoipa::path(
    post,
    path = "/api/v1/maintenance",
    tag = "maintenance",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = AnnounceBody,
    responses(
        (status = 201, description = "Announced", body = MaintenanceView),
        (status = 400, description = "Malformed body, MAINTENANCE_END_NOT_AFTER_START, MAINTENANCE_EMERGENCY_REASON_REQUIRED", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: not an operator of that provider nor the approver", body = crate::error::ErrorBody),
        (status = 409, description = "MAINTENANCE_NOTICE_TOO_SHORT: planned maintenance starting before the end of the notice (3 working days, 000 art. 18, 004 art. 19); details.earliest_start names the earliest allowed start", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn maintenance_announce(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiJson(req): ApiJson<AnnounceBody>,
) -> Result<(StatusCode, Json<MaintenanceView>), ApiError> {
    let now = crate::context::now_of(clock);
    let window = workflow::maintenance::announce(
        &*state.store,
        &caller,
        Announcement {
            provider: req.provider,
            zones: req.zones,
            starts_at: req.starts_at,
            ends_at: req.ends_at,
            affects: req.affects,
            reason: req.reason,
            emergency: req.emergency,
            emergency_reason: req.emergency_reason,
        },
        now,
    )
    .await
    .map_err(workflow_error)?;
    Ok((StatusCode::CREATED, Json(MaintenanceView::new(window, now))))
}

/// `POST /api/v1/maintenance/{id}/cancel`.
#[utoipa::path(
    post,
    path = "/api/v1/maintenance/{id}/cancel",
    tag = "maintenance",
    params(("id" = String, Path, description = "The window id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = CancelBody,
    responses(
        (status = 200, description = "Cancelled", body = MaintenanceView),
        (status = 400, description = "Malformed body", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: sees the window but does not manage it", body = crate::error::ErrorBody),
        (status = 404, description = "MAINTENANCE_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "MAINTENANCE_CANCEL_REFUSED: cancelled already or over", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn maintenance_cancel(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<CancelBody>,
) -> Result<Json<MaintenanceView>, ApiError> {
    let now = crate::context::now_of(clock);
    let window = workflow::maintenance::cancel(&*state.store, &caller, &id, req.reason, now)
        .await
        .map_err(workflow_error)?;
    Ok(Json(MaintenanceView::new(window, now)))
}
