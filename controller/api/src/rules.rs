//! The working-day calendar and deadline policies over HTTP:
//! `GET /api/v1/calendar`, `GET|PUT /api/v1/calendar/{year}`,
//! `GET /api/v1/policies`, `GET|PUT /api/v1/policies/{name}`. A PUT body is the
//! file itself, in the format of `controller/domain/data/` (TOML).
//!
//! Owns the wire shapes. Validation is the domain's, storage and permission
//! (`policy_manage`) the workflow's (`workflow::rules`).

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::Serialize;
use yunshu_auth::Principal;
use yunshu_domain::ErrorCode;
use yunshu_domain::calendar::{CalendarYear, Policy};
use yunshu_domain::user::Permission;
use yunshu_workflow::Clock;
use yunshu_workflow::rules::{self, Origin, PolicyName};

use crate::context::now_of;
use crate::error::ApiError;
use crate::json::ApiPath;
use crate::state::AppState;
use crate::workflow_error::workflow_error;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HolidayView {
    pub name: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MakeUpDayView {
    pub date: NaiveDate,
    pub holiday: String,
}

/// One year of the calendar: public holidays and make-up working days (调休).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CalendarYearView {
    pub year: i32,
    /// The State Council notice the year follows.
    pub source: String,
    pub origin: Origin,
    pub holidays: Vec<HolidayView>,
    pub make_up_workdays: Vec<MakeUpDayView>,
}

impl CalendarYearView {
    fn new(y: &CalendarYear, origin: Origin) -> Self {
        CalendarYearView {
            year: y.year(),
            source: y.source().to_owned(),
            origin,
            holidays: y
                .holidays()
                .iter()
                .map(|h| HolidayView {
                    name: h.name.clone(),
                    start: h.start,
                    end: h.end,
                })
                .collect(),
            make_up_workdays: y
                .make_up_workdays()
                .iter()
                .map(|m| MakeUpDayView {
                    date: m.date,
                    holiday: m.holiday.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CalendarView {
    /// Every year the calendar answers for, ascending. Deadlines that reach a
    /// year not listed are shown as unknown (`CALENDAR_YEAR_UNKNOWN`).
    pub years: Vec<CalendarYearView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StepRuleView {
    pub step: String,
    pub step_zh: String,
    pub amount: u32,
    /// `working_days`, `natural_days`, `months` or `years`.
    pub unit: String,
    /// The seed and article the limit comes from.
    pub source: String,
    pub note: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub name: String,
    pub title: String,
    pub origin: Origin,
    pub steps: Vec<StepRuleView>,
}

impl PolicyView {
    fn new(p: &Policy, origin: Origin) -> Self {
        PolicyView {
            name: p.name().to_owned(),
            title: p.title().to_owned(),
            origin,
            steps: p
                .steps()
                .map(|(step, rule)| StepRuleView {
                    step: step.as_str().to_owned(),
                    step_zh: step.name_zh().to_owned(),
                    amount: rule.period().amount(),
                    unit: rule.period().unit().as_str().to_owned(),
                    source: rule.source().to_owned(),
                    note: rule.note().map(ToOwned::to_owned),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyList {
    pub items: Vec<PolicyView>,
}

fn body_text(body: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(body.to_vec()).map_err(|_| {
        ApiError::refused(
            StatusCode::BAD_REQUEST,
            "BODY_NOT_UTF8",
            "The file must be UTF-8 text.",
            "文件须为 UTF-8 编码的文本。",
        )
    })
}

async fn load(state: &AppState) -> Result<rules::Rules, ApiError> {
    rules::load(&*state.store).await.map_err(workflow_error)
}

/// `GET /api/v1/calendar`: every year of the working-day calendar.
#[utoipa::path(
    get,
    path = "/api/v1/calendar",
    tag = "rules",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The calendar", body = CalendarView),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn calendar_get(
    _caller: Principal,
    State(state): State<AppState>,
) -> Result<Json<CalendarView>, ApiError> {
    let rules = load(&state).await?;
    let years = rules
        .years()
        .filter_map(|(y, origin)| {
            rules
                .calendar
                .year(y)
                .map(|cy| CalendarYearView::new(cy, origin))
        })
        .collect();
    Ok(Json(CalendarView { years }))
}

fn year_not_found(year: i32) -> ApiError {
    ApiError::refused(
        StatusCode::NOT_FOUND,
        "CALENDAR_YEAR_UNKNOWN",
        format!("No working-day calendar is loaded for year {year}."),
        format!("尚未载入 {year} 年的工作日历。"),
    )
}

/// `GET /api/v1/calendar/{year}`.
#[utoipa::path(
    get,
    path = "/api/v1/calendar/{year}",
    tag = "rules",
    params(("year" = i32, Path, description = "e.g. 2026")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The year", body = CalendarYearView),
        (status = 400, description = "Malformed year", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 404, description = "CALENDAR_YEAR_UNKNOWN", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn calendar_year_get(
    _caller: Principal,
    State(state): State<AppState>,
    ApiPath(year): ApiPath<i32>,
) -> Result<Json<CalendarYearView>, ApiError> {
    let rules = load(&state).await?;
    let origin = rules
        .years()
        .find(|(y, _)| *y == year)
        .map(|(_, o)| o)
        .ok_or_else(|| year_not_found(year))?;
    let cy = rules
        .calendar
        .year(year)
        .ok_or_else(|| year_not_found(year))?;
    Ok(Json(CalendarYearView::new(cy, origin)))
}

/// `PUT /api/v1/calendar/{year}`: add the next year's holiday notice, or correct
/// one (`policy_manage`). The body is the year file (TOML, as
/// `controller/domain/data/calendar/cn-2026.toml`); it must be for `{year}`.
#[utoipa::path(
    put,
    path = "/api/v1/calendar/{year}",
    tag = "rules",
    params(("year" = i32, Path, description = "The year the file is for")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body(content = String, content_type = "text/plain", description = "The calendar year file (TOML)"),
    responses(
        (status = 200, description = "Stored; deadlines from now on use it", body = CalendarYearView),
        (status = 400, description = "CALENDAR_* validation code, or CALENDAR_YEAR_MISMATCH; nothing written", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs policy_manage", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn calendar_year_put(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(year): ApiPath<i32>,
    body: axum::body::Bytes,
) -> Result<Json<CalendarYearView>, ApiError> {
    caller.require(Permission::PolicyManage, None)?;
    let text = body_text(&body)?;
    // Check the path against the file before anything is written.
    if let Ok(parsed) = CalendarYear::parse_toml(&text)
        && parsed.year() != year
    {
        return Err(ApiError::refused(
            StatusCode::BAD_REQUEST,
            "CALENDAR_YEAR_MISMATCH",
            format!("The file is for {}, not {year}.", parsed.year()),
            format!("文件为 {} 年的日历，而非 {year} 年。", parsed.year()),
        ));
    }
    let stored = rules::put_year(&*state.store, &caller, text, now_of(clock))
        .await
        .map_err(workflow_error)?;
    Ok(Json(CalendarYearView::new(&stored, Origin::Operator)))
}

/// `GET /api/v1/policies`: the presets and the operator's policies.
#[utoipa::path(
    get,
    path = "/api/v1/policies",
    tag = "rules",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Every deadline policy", body = PolicyList),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn policy_list(
    _caller: Principal,
    State(state): State<AppState>,
) -> Result<Json<PolicyList>, ApiError> {
    let rules = load(&state).await?;
    Ok(Json(PolicyList {
        items: rules
            .policies()
            .map(|(p, o)| PolicyView::new(p, o))
            .collect(),
    }))
}

fn policy_not_found(name: &str) -> ApiError {
    let e = yunshu_workflow::WorkflowError::PolicyUnknown {
        name: name.chars().take(64).collect(),
    };
    ApiError::refused(
        StatusCode::NOT_FOUND,
        e.code(),
        e.to_string(),
        e.message_zh(),
    )
}

/// `GET /api/v1/policies/{name}`.
#[utoipa::path(
    get,
    path = "/api/v1/policies/{name}",
    tag = "rules",
    params(("name" = String, Path, description = "e.g. yongjia")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The policy", body = PolicyView),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 404, description = "POLICY_UNKNOWN", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn policy_get(
    _caller: Principal,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<PolicyView>, ApiError> {
    let rules = load(&state).await?;
    let pn = PolicyName::new(name.clone()).map_err(|_| policy_not_found(&name))?;
    let (policy, origin) = rules
        .policies()
        .find(|(p, _)| p.name() == pn.as_str())
        .ok_or_else(|| policy_not_found(&name))?;
    Ok(Json(PolicyView::new(policy, origin)))
}

/// `PUT /api/v1/policies/{name}`: write an operator policy (`policy_manage`).
/// The body is a policy file (TOML, as `controller/domain/data/policies/*.toml`)
/// whose `name` is `{name}`; presets are read-only.
#[utoipa::path(
    put,
    path = "/api/v1/policies/{name}",
    tag = "rules",
    params(("name" = String, Path, description = "The policy's name")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body(content = String, content_type = "text/plain", description = "The policy file (TOML)"),
    responses(
        (status = 200, description = "Stored; new orders may name it", body = PolicyView),
        (status = 400, description = "POLICY_* validation code or POLICY_NAME_MISMATCH; nothing written", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs policy_manage", body = crate::error::ErrorBody),
        (status = 409, description = "POLICY_PRESET_READONLY", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn policy_put(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(name): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<Json<PolicyView>, ApiError> {
    caller.require(Permission::PolicyManage, None)?;
    let text = body_text(&body)?;
    if let Ok(parsed) = Policy::parse_toml(&text)
        && parsed.name() != name
    {
        return Err(ApiError::refused(
            StatusCode::BAD_REQUEST,
            "POLICY_NAME_MISMATCH",
            format!("The file defines policy {:?}, not {name:?}.", parsed.name()),
            format!("文件定义的时限规则为“{}”，而非“{name}”。", parsed.name()),
        ));
    }
    let stored = rules::put_policy(&*state.store, &caller, text, now_of(clock))
        .await
        .map_err(workflow_error)?;
    Ok(Json(PolicyView::new(&stored, Origin::Operator)))
}
