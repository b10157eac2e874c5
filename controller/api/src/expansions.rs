//! Temporary expansion of a system (临时扩容) over HTTP:
//! `GET` and `PUT /api/v1/systems/{number}/temporary-expansion`. The limit and
//! what the expansion adds to the desired groups are `workflow::expansion`'s.

use axum::Json;
use axum::extract::{Extension, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_workflow::{self as workflow, Clock};

use crate::error::ApiError;
use crate::json::ApiPath;
use crate::state::AppState;
use crate::workflow_error::workflow_error;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpansionRequest {
    /// Server group name → extra VMs; `{}` ends the expansion.
    pub extra: std::collections::BTreeMap<String, u32>,
    /// How long, 1 to the policy's days per grant (90); ignored when ending.
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
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN", body = crate::error::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn expansion_get(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<ExpansionView>, ApiError> {
    let now = crate::context::now_of(clock);
    let (e, totals) = workflow::expansion::get(&*state.store, &caller, &number)
        .await
        .map_err(workflow_error)?;
    Ok(Json(expansion_view(number, e, totals, now)))
}

/// `PUT /api/v1/systems/{number}/temporary-expansion`: the tenant admin runs
/// extra VMs of existing server groups for up to 90 days, free, within 20 % of
/// the approved vCPU and memory (seed 003); no new order needed. A renewal is
/// a new grant: with the earlier ones it stays within the policy's free days in
/// its period (90 in any 365 by default), else `EXPANSION_WINDOW_EXCEEDED`.
#[utoipa::path(
    put,
    path = "/api/v1/systems/{number}/temporary-expansion",
    tag = "systems",
    params(("number" = String, Path, description = "The system number")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = ExpansionRequest,
    responses(
        (status = 200, description = "In force; the reconciler adds (or removes) the VMs", body = ExpansionView),
        (status = 400, description = "Malformed body", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs change_request", body = crate::error::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "EXPANSION_REFUSED (beyond 20 %, longer than the policy's days per grant, or an unknown server group), with the totals in `details`; EXPANSION_WINDOW_EXCEEDED (a grant or renewal beyond the policy's free days within its period, seed 003 \"短期内\"), with `used_days`, `requested_days`, `max_days_in_window` and `window_days` in `details`", body = crate::error::ErrorBody),
        (status = 503, description = "BUSY: the expansion changed meanwhile; send the request again", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn expansion_put(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(number): ApiPath<String>,
    crate::json::ApiJson(req): crate::json::ApiJson<ExpansionRequest>,
) -> Result<Json<ExpansionView>, ApiError> {
    let now = crate::context::now_of(clock);
    let (e, totals) =
        workflow::expansion::set(&*state.store, &caller, &number, req.extra, req.days, now)
            .await
            .map_err(workflow_error)?;
    Ok(Json(expansion_view(number, Some(e), totals, now)))
}
