//! A system's usage period (使用期, 002 art. 14) over HTTP:
//! `GET /api/v1/systems/{number}/usage-term`, the tenant's extension request,
//! the reviewer's extension and the management unit's approval of a forced
//! offline. The term's clock, notices and expiry are
//! `workflow::usage`'s.

use axum::Json;
use axum::extract::{Extension, State};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::Text;
use yunshu_workflow::rules::Rules;
use yunshu_workflow::{self as workflow, Clock};

use crate::error::ApiError;
use crate::json::ApiPath;
use crate::state::AppState;
use crate::workflow_error::workflow_error;

/// A system's usage period (使用期, 002 art. 14) as shown to people.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageTermView {
    pub system: String,
    /// The deadline policy whose steps time this period (002 art. 14); a
    /// system under a policy without `usage_period` has no period at all.
    pub policy: Option<String>,
    pub starts_on: NaiveDate,
    /// Last day of use.
    pub expires_on: NaiveDate,
    /// The day the notice is due (one month before the end under 002 art. 14);
    /// `null` when the policy sends none.
    pub notice_on: Option<NaiveDate>,
    pub notice_sent_at: Option<DateTime<Utc>>,
    /// A pending extension request: `{by, at, until, reason}`.
    #[schema(value_type = Option<Object>)]
    pub extension_requested: Option<workflow::usage::ExtensionRequest>,
    pub expired_at: Option<DateTime<Utc>>,
    /// The management unit's approval of the forced offline: `{by, at}`.
    #[schema(value_type = Option<Object>)]
    pub offline_approved: Option<workflow::usage::OfflineApproval>,
    /// Forced offline is complete by this day (end + the policy's
    /// `forced_offline_after_expiry` from its approval: 15 working days under
    /// 002 art. 14); `null` until approved.
    pub offline_due: Option<NaiveDate>,
    pub offline_at: Option<DateTime<Utc>>,
    pub backups_kept_until: Option<NaiveDate>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl UsageTermView {
    fn new(t: workflow::usage::UsageTerm, rules: &Rules) -> Self {
        let notice_on = t
            .policy(rules)
            .and_then(|p| t.notice_on(p, &rules.calendar).ok().flatten());
        UsageTermView {
            system: t.system.to_string(),
            policy: t.policy.as_ref().map(|p| p.as_str().to_owned()),
            notice_on,
            starts_on: t.starts_on,
            expires_on: t.expires_on,
            notice_sent_at: t.notice_sent_at,
            extension_requested: t.extension_requested,
            expired_at: t.expired_at,
            offline_approved: t.offline_approved,
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
    /// The new last day of use: after the current one, at most the policy's
    /// usage period (3 years under 002 art. 14) from today.
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
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN", body = crate::error::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND or USAGE_TERM_NOT_FOUND (starts at delivery confirmation)", body = crate::error::ErrorBody),
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
    Ok(Json(UsageTermView::new(term, &rules(&state).await?)))
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
        (status = 400, description = "Malformed body", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs change_request", body = crate::error::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND or USAGE_TERM_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "USAGE_EXTENSION_REFUSED: not after the current end, asked for after the period ended (002 art. 14), or the system is offline or exited", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn usage_extension_request(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(number): ApiPath<String>,
    crate::json::ApiJson(req): crate::json::ApiJson<ExtensionRequestBody>,
) -> Result<Json<UsageTermView>, ApiError> {
    let now = crate::context::now_of(clock);
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
    Ok(Json(UsageTermView::new(term, &rules(&state).await?)))
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
        (status = 400, description = "Malformed body", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs order_approve", body = crate::error::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND or USAGE_TERM_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "USAGE_EXTENSION_REFUSED", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn usage_extend(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(number): ApiPath<String>,
    crate::json::ApiJson(req): crate::json::ApiJson<ExtendBody>,
) -> Result<Json<UsageTermView>, ApiError> {
    let now = crate::context::now_of(clock);
    let rules = rules(&state).await?;
    let term = workflow::usage::grant_extension(
        &*state.store,
        &caller,
        &number,
        req.until,
        &rules.calendar,
        now,
    )
    .await
    .map_err(workflow_error)?;
    Ok(Json(UsageTermView::new(term, &rules)))
}

/// `POST /api/v1/systems/{number}/usage-term/force-offline`: the management
/// unit approves the forced offline of a system whose usage period is over
/// with no extension asked for (`order_approve`; 经政务云主管部门批准, 002
/// art. 14). The policy's `forced_offline_after_expiry` (15 working days)
/// runs from today; at its end the timers take the system offline.
#[utoipa::path(
    post,
    path = "/api/v1/systems/{number}/usage-term/force-offline",
    tag = "systems",
    params(("number" = String, Path, description = "The system number")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Approved; `offline_due` set", body = UsageTermView),
        (status = 400, description = "CALENDAR_YEAR_UNKNOWN: the window reaches a year the calendar does not hold (an operator adds it)", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs order_approve", body = crate::error::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND or USAGE_TERM_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "USAGE_OFFLINE_REFUSED: not expired, an extension pending, approved already, offline or exited, or the policy sets no forced offline", body = crate::error::ErrorBody),
        (status = 503, description = "BUSY: the term changed meanwhile, retry; or the store is unavailable", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn usage_force_offline(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<UsageTermView>, ApiError> {
    let now = crate::context::now_of(clock);
    let term = workflow::usage::approve_offline(&*state.store, &caller, &number, now)
        .await
        .map_err(workflow_error)?;
    Ok(Json(UsageTermView::new(term, &rules(&state).await?)))
}

async fn rules(state: &AppState) -> Result<Rules, ApiError> {
    workflow::rules::load(&*state.store)
        .await
        .map_err(workflow_error)
}
