//! The alarm centre over HTTP: `GET /api/v1/alarms` (filters: acknowledged,
//! category, minimum level), `GET /api/v1/alarms/{id}`,
//! `POST /api/v1/alarms/{id}/ack`.
//!
//! Owns the wire shapes; visibility and acknowledgement rules are the
//! workflow's (`workflow::alarms`).

use axum::Json;
use axum::extract::{Extension, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::alarm::{Alarm, AlarmCategory, AlarmLevel};
use yunshu_workflow::alarms::{self, AlarmFilter};
use yunshu_workflow::{self as workflow, Clock};

use crate::context::now_of;
use crate::error::ApiError;
use crate::json::{ApiPath, ApiQuery};
use crate::state::AppState;
use crate::workflow_error::workflow_error;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlarmQuery {
    /// `true`: only acknowledged; `false`: only open ones.
    pub acknowledged: Option<bool>,
    /// `order_overdue`, `usage_expiring`, `usage_expired`, `capacity`,
    /// `purge_due`, `other`.
    #[param(value_type = Option<String>)]
    pub category: Option<AlarmCategory>,
    /// Only alarms at least this severe: `info` < `minor` < `major` < `critical`.
    #[param(value_type = Option<String>)]
    pub min_level: Option<AlarmLevel>,
    pub after: Option<String>,
    pub limit: Option<usize>,
}

/// An alarm as the alarm centre shows it: time, condition, content, level,
/// acknowledgement (003 §2.2.1 (5)).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlarmView {
    pub id: String,
    pub raised_at: DateTime<Utc>,
    #[schema(value_type = String)]
    pub level: AlarmLevel,
    pub level_zh: &'static str,
    #[schema(value_type = String)]
    pub category: AlarmCategory,
    pub category_zh: &'static str,
    /// 触发条件
    pub trigger: String,
    /// 告警内容
    pub content: String,
    pub tenant: Option<String>,
    /// The record the alarm is about, e.g. `work_order/WO-…`.
    pub subject: Option<String>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// When the condition stopped holding.
    pub cleared_at: Option<DateTime<Utc>>,
}

impl From<Alarm> for AlarmView {
    fn from(a: Alarm) -> Self {
        AlarmView {
            id: a.id().to_string(),
            raised_at: a.raised_at(),
            level: a.level(),
            level_zh: a.level().label_zh(),
            category: a.category(),
            category_zh: a.category().label_zh(),
            trigger: a.trigger().to_string(),
            content: a.content().to_string(),
            tenant: a.tenant().map(ToString::to_string),
            subject: a.subject().map(ToString::to_string),
            acknowledged_by: a.acknowledged().map(|k| k.by.to_string()),
            acknowledged_at: a.acknowledged().map(|k| k.at),
            cleared_at: a.cleared_at(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlarmPage {
    pub items: Vec<AlarmView>,
    pub next: Option<String>,
}

/// `GET /api/v1/alarms`: the alarms the caller may see.
#[utoipa::path(
    get,
    path = "/api/v1/alarms",
    tag = "alarms",
    params(AlarmQuery),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "One page of alarms", body = AlarmPage),
        (status = 400, description = "Malformed query", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: the caller's roles see no alarms", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn alarm_list(
    caller: Principal,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AlarmQuery>,
) -> Result<Json<AlarmPage>, ApiError> {
    let filter = AlarmFilter {
        acknowledged: q.acknowledged,
        category: q.category,
        min_level: q.min_level,
    };
    let page = alarms::list(
        &*state.store,
        &caller,
        &filter,
        q.after.as_deref(),
        workflow::page_limit(q.limit),
    )
    .await
    .map_err(workflow_error)?;
    Ok(Json(AlarmPage {
        items: page.items.into_iter().map(AlarmView::from).collect(),
        next: page.next,
    }))
}

/// `GET /api/v1/alarms/{id}`: an alarm the caller may not see is 404.
#[utoipa::path(
    get,
    path = "/api/v1/alarms/{id}",
    tag = "alarms",
    params(("id" = String, Path, description = "Alarm id")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The alarm", body = AlarmView),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 404, description = "ALARM_NOT_FOUND", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn alarm_get(
    caller: Principal,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AlarmView>, ApiError> {
    let alarm = alarms::get(&*state.store, &caller, &id)
        .await
        .map_err(workflow_error)?;
    Ok(Json(alarm.into()))
}

/// `POST /api/v1/alarms/{id}/ack`: 状态确认, once.
#[utoipa::path(
    post,
    path = "/api/v1/alarms/{id}/ack",
    tag = "alarms",
    params(("id" = String, Path, description = "Alarm id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Acknowledged", body = AlarmView),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: the caller sees it but may not acknowledge it", body = crate::error::ErrorBody),
        (status = 404, description = "ALARM_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "ALARM_ALREADY_ACKNOWLEDGED", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn alarm_ack(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AlarmView>, ApiError> {
    let alarm = alarms::acknowledge(&*state.store, &caller, &id, now_of(clock))
        .await
        .map_err(workflow_error)?;
    Ok(Json(alarm.into()))
}
