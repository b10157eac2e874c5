//! Work orders (工单) over HTTP: create, list, read, edit, transitions and line
//! approval under `/api/v1/orders`.
//!
//! Owns parsing and the wire shapes; refusals map to HTTP in one place
//! ([`workflow_error`]). Who may do what, the state machine, deadlines and
//! audit belong to `workflow::orders` and the domain.
//! Must not call drivers: approval only records approved quantities.

use std::num::NonZeroU32;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::calendar::{Calendar, Deadline, Step};
use yunshu_domain::ids::ZoneId;
use yunshu_domain::order::{HistoryEntry, OrderKind, OrderRequest, OrderState};
use yunshu_domain::order_line::{
    BastionAccountRequest, CrossZoneAccess, PublicIpRequest, ResourceLine, ServerRequest,
};
use yunshu_domain::order_services::{
    BackupPolicyRequest, LoadBalancerRequest, NetworkRequest, SecurityGroupRequest,
    SnapshotRequest, VolumeRequest, WafPolicyRequest,
};
use yunshu_domain::{ProviderId, SystemNumber, Text};
use yunshu_workflow::deadline::{self, PolicyName, StepClock};
use yunshu_workflow::orders::{self, Loaded, OrderDraft};
use yunshu_workflow::{self as workflow, Clock};

use crate::context::{calendar, now_of};
use crate::error::ApiError;
use crate::json::{ApiJson, ApiPath, ApiQuery};
use crate::paging::ListQuery;
use crate::state::AppState;
use crate::workflow_error::workflow_error;

/// One requested server row. Only the requested quantity: approved quantities
/// are the reviewer's (000 art. 12), so an applicant cannot send one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineInput {
    /// A `ServerRequest` (domain type).
    #[schema(value_type = Object)]
    pub server: ServerRequest,
    #[schema(value_type = u32, minimum = 1)]
    pub quantity: NonZeroU32,
}

/// The editable part of an order (000 附件3; 004 附件1-3).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct OrderInput {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub provider: Option<ProviderId>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub zone: Option<ZoneId>,
    #[serde(default)]
    pub lines: Vec<LineInput>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub public_ips: Vec<PublicIpRequest>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub bastion_accounts: Vec<BastionAccountRequest>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub cross_zone_access: Vec<CrossZoneAccess>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub note: Option<Text>,
    /// A `NetworkRequest` (domain type): `{vpc_cidr, subnets: [{network_area,
    /// cidr}]}`; absent = the system's network, or the default one.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub network: Option<NetworkRequest>,
    /// `SecurityGroupRequest`s (domain type): `{name, rules, servers, remove}`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub security_groups: Vec<SecurityGroupRequest>,
    /// `LoadBalancerRequest`s (domain type): `{name, network_area, listeners,
    /// members, remove}`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub load_balancers: Vec<LoadBalancerRequest>,
    /// `WafPolicyRequest`s (domain type): `{name, load_balancer, mode,
    /// rule_sets, cc_limit, allow_cidrs, deny_cidrs, remove}`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub waf_policies: Vec<WafPolicyRequest>,
    /// `VolumeRequest`s (domain type): `{name, server_name, size_gib, tier,
    /// remove}`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub volumes: Vec<VolumeRequest>,
    /// `BackupPolicyRequest`s (domain type): `{name, target, backup_type,
    /// window, retention_days, capacity_gib, remove}`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub backup_policies: Vec<BackupPolicyRequest>,
    /// `SnapshotRequest`s (domain type): `{name, source, remove}`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub snapshots: Vec<SnapshotRequest>,
}

impl From<OrderInput> for OrderRequest {
    fn from(i: OrderInput) -> Self {
        OrderRequest {
            provider: i.provider,
            zone: i.zone,
            lines: i
                .lines
                .into_iter()
                .map(|l| ResourceLine::new(l.server, l.quantity))
                .collect(),
            public_ips: i.public_ips,
            bastion_accounts: i.bastion_accounts,
            cross_zone_access: i.cross_zone_access,
            note: i.note,
            network: i.network,
            security_groups: i.security_groups,
            load_balancers: i.load_balancers,
            waf_policies: i.waf_policies,
            volumes: i.volumes,
            backup_policies: i.backup_policies,
            snapshots: i.snapshots,
        }
    }
}

/// `POST /api/v1/orders` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateOrderRequest {
    /// An `OrderKind` (domain enum, snake_case).
    #[schema(value_type = String)]
    pub kind: OrderKind,
    /// The information system's number.
    #[schema(value_type = String)]
    pub system: SystemNumber,
    /// Deadline policy: `datong` | `yongjia` | `beijing` (default `beijing`).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub policy: Option<PolicyName>,
    #[serde(flatten)]
    pub request: OrderInput,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// The target `OrderState` (domain enum, snake_case).
    #[schema(value_type = String)]
    pub to: OrderState,
    /// Required when refusing or rejecting (000 art. 12).
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineApproveRequest {
    pub quantity: u32,
}

/// The current step's deadline as shown to people.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadlineView {
    /// A `Step` (domain enum, snake_case).
    #[schema(value_type = String)]
    pub step: Step,
    #[schema(value_type = String)]
    pub step_zh: &'static str,
    pub started_at: DateTime<Utc>,
    /// Last day (China Standard Time) on which the step is on time.
    pub due_date: NaiveDate,
    /// First overdue instant (24:00 CST of `due_date`).
    pub due_at: DateTime<Utc>,
    /// 0 on the due day, negative when late; `None` if the calendar does not
    /// cover the days in between.
    pub working_days_left: Option<i64>,
    pub overdue: bool,
    /// The rule's citation, e.g. `002 art. 9`.
    pub source: String,
}

impl DeadlineView {
    fn new(d: &Deadline, now: DateTime<Utc>, calendar: &Calendar) -> Self {
        DeadlineView {
            step: d.step,
            step_zh: d.step.name_zh(),
            started_at: d.started_at,
            due_date: d.due_date,
            due_at: d.due_at(),
            working_days_left: deadline::working_days_left(d, now, calendar),
            overdue: d.is_overdue(now),
            source: d.source.clone(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: String,
    /// An `OrderKind` (domain enum, snake_case).
    #[schema(value_type = String)]
    pub kind: OrderKind,
    #[schema(value_type = String)]
    pub kind_zh: &'static str,
    pub system: String,
    pub tenant: String,
    /// An `OrderState` (domain enum, snake_case).
    #[schema(value_type = String)]
    pub state: OrderState,
    #[schema(value_type = String)]
    pub state_zh: &'static str,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Lines carry `requested_qty` and, once reviewed, `approved_qty` — what the
    /// controller provisions (SPEC §3).
    #[schema(value_type = Object)]
    pub request: OrderRequest,
    /// `HistoryEntry` records (domain type), oldest first.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<HistoryEntry>,
    #[schema(value_type = String)]
    pub policy: String,
    /// The deadline of the step the order is in, when its policy sets one.
    pub deadline: Option<DeadlineView>,
    /// Why the current step's deadline is unknown (a calendar error code).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub deadline_unknown: Option<String>,
    /// Delivery confirmation (交付确认): billing starts here (000 art. 14).
    pub delivered_at: Option<DateTime<Utc>>,
    /// An emergency change filing `{by, at, reason}` (002 art. 12), if any.
    #[schema(value_type = Option<Object>)]
    pub emergency: Option<orders::EmergencyFiling>,
    /// Set while the approved order cannot be placed: why, in both languages
    /// (the reconciler retries; a capacity alarm was raised).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub unschedulable: Option<yunshu_workflow::resources::ScheduleNote>,
    /// `StepClock` records of the steps already left.
    #[schema(value_type = Vec<Object>)]
    pub past_steps: Vec<StepClock>,
    /// Approved extensions of the current step's deadline (the test period,
    /// 002 art. 10), oldest first: `{by, at, reason, previous_due, until}`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>, required = false)]
    pub deadline_extensions: Vec<yunshu_workflow::deadline::StepExtension>,
}

impl OrderView {
    fn new(l: Loaded, now: DateTime<Utc>, calendar: &Calendar) -> Self {
        let o = &l.order;
        let current = l.track.current.as_ref();
        OrderView {
            id: o.id().to_string(),
            kind: o.kind(),
            kind_zh: o.kind().label_zh(),
            system: o.system().to_string(),
            tenant: o.tenant().to_string(),
            state: o.state(),
            state_zh: o.state().label_zh(),
            created_by: o.created_by().to_string(),
            created_at: o.created_at(),
            updated_at: o.updated_at(),
            request: o.request().clone(),
            history: o.history().to_vec(),
            policy: l.track.policy.to_string(),
            deadline: current
                .and_then(|c| c.deadline.as_ref())
                .map(|d| DeadlineView::new(d, now, calendar)),
            deadline_unknown: current.and_then(|c| c.unknown.clone()),
            delivered_at: l.track.delivered_at,
            emergency: l.track.emergency.clone(),
            unschedulable: None,
            past_steps: l.track.past.clone(),
            deadline_extensions: current.map(|c| c.extensions.clone()).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderPage {
    pub items: Vec<OrderView>,
    pub next: Option<String>,
}

/// `POST /api/v1/orders`: a draft for one of the caller's tenant's systems.
#[utoipa::path(
    post,
    path = "/api/v1/orders",
    tag = "orders",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = CreateOrderRequest,
    responses(
        (status = 201, description = "The new draft order", body = OrderView),
        (status = 400, description = "Malformed body or invalid field (a stable code says which)", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "A concurrent change; try again", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn order_create(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiJson(req): ApiJson<CreateOrderRequest>,
) -> Result<(StatusCode, Json<OrderView>), ApiError> {
    let now = now_of(clock);
    let draft = OrderDraft {
        kind: req.kind,
        system: req.system,
        policy: req.policy,
        request: req.request.into(),
    };
    let loaded = orders::order_create(&*state.store, &caller, draft, now)
        .await
        .map_err(workflow_error)?;
    Ok((
        StatusCode::CREATED,
        Json(OrderView::new(loaded, now, &calendar(&state).await?)),
    ))
}

/// `GET /api/v1/orders?after=&limit=`: orders the caller may see, by id.
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "orders",
    params(ListQuery),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "One page of orders", body = OrderPage),
        (status = 400, description = "Malformed query", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn order_list(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<OrderPage>, ApiError> {
    let now = now_of(clock);
    let page = orders::order_list(
        &*state.store,
        &caller,
        q.after.as_deref(),
        workflow::page_limit(q.limit),
    )
    .await
    .map_err(workflow_error)?;
    let cal = calendar(&state).await?;
    Ok(Json(OrderPage {
        items: page
            .items
            .into_iter()
            .map(|l| OrderView::new(l, now, &cal))
            .collect(),
        next: page.next,
    }))
}

/// `GET /api/v1/orders/{id}`: another tenant's order is 404 `ORDER_NOT_FOUND`.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    params(("id" = String, Path, description = "The order id"),),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 400, description = "Malformed order id", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND (also for another tenant's order) or ORDER_LINE_NOT_FOUND", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn order_get(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<OrderView>, ApiError> {
    let now = now_of(clock);
    let loaded = orders::order_get(&*state.store, &caller, &id)
        .await
        .map_err(workflow_error)?;
    let mut view = OrderView::new(loaded, now, &calendar(&state).await?);
    view.unschedulable = yunshu_store::records::get::<yunshu_workflow::resources::ScheduleNote>(
        &*state.store,
        &view.id,
    )
    .await?
    .map(|(n, _)| n);
    Ok(Json(view))
}

/// `PUT /api/v1/orders/{id}`: replaces the request while draft, refused or
/// rejected (`ORDER_NOT_EDITABLE` otherwise).
#[utoipa::path(
    put,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    params(("id" = String, Path, description = "The order id"),),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = OrderInput,
    responses(
        (status = 200, description = "The edited order", body = OrderView),
        (status = 400, description = "Malformed body or invalid field (a stable code says which)", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND (also for another tenant's order) or ORDER_LINE_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "The order's state does not allow this now, or a concurrent change", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn order_edit(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<OrderInput>,
) -> Result<Json<OrderView>, ApiError> {
    let now = now_of(clock);
    let loaded = orders::order_edit(&*state.store, &caller, &id, req.into(), now)
        .await
        .map_err(workflow_error)?;
    Ok(Json(OrderView::new(loaded, now, &calendar(&state).await?)))
}

/// `POST /api/v1/orders/{id}/transitions` `{to, reason}`.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/transitions",
    tag = "orders",
    params(("id" = String, Path, description = "The order id"),),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = TransitionRequest,
    responses(
        (status = 200, description = "The order in its new state", body = OrderView),
        (status = 400, description = "Malformed body or invalid field (a stable code says which)", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND (also for another tenant's order) or ORDER_LINE_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "The order's state does not allow this now (ORDER_TRANSITION_FORBIDDEN; ORDER_RETENTION_RUNNING: `purged` before the data retention is over — see `POST /api/v1/orders/{id}/purge`), or a concurrent change", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn order_transition(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<TransitionRequest>,
) -> Result<Json<OrderView>, ApiError> {
    let now = now_of(clock);
    // A blank reason is no reason: the domain then says ORDER_REASON_REQUIRED.
    let reason = req
        .reason
        .filter(|r| !r.trim().is_empty())
        .map(Text::new)
        .transpose()
        .map_err(|e| crate::domain_error::invalid(&e))?;
    let loaded = orders::order_transition(&*state.store, &caller, &id, req.to, reason, now)
        .await
        .map_err(workflow_error)?;
    Ok(Json(OrderView::new(loaded, now, &calendar(&state).await?)))
}

/// `POST /api/v1/orders/{id}/lines/{index}/approve` `{quantity}`: `index` is
/// 0-based, as in the order's `request.lines`.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/lines/{index}/approve",
    tag = "orders",
    params(
        ("id" = String, Path, description = "The order id"),
        ("index" = u32, Path, description = "0-based index into `request.lines`"),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = LineApproveRequest,
    responses(
        (status = 200, description = "The order with the approved quantity recorded", body = OrderView),
        (status = 400, description = "Malformed body or invalid field (a stable code says which)", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND (also for another tenant's order) or ORDER_LINE_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "The order's state does not allow this now, or a concurrent change", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn order_line_approve(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath((id, index)): ApiPath<(String, usize)>,
    ApiJson(req): ApiJson<LineApproveRequest>,
) -> Result<Json<OrderView>, ApiError> {
    let now = now_of(clock);
    let loaded = orders::order_line_approve(&*state.store, &caller, &id, index, req.quantity, now)
        .await
        .map_err(workflow_error)?;
    Ok(Json(OrderView::new(loaded, now, &calendar(&state).await?)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyRequest {
    /// Why the change cannot wait for the review (reported to the management unit).
    #[schema(value_type = String)]
    pub reason: Text,
}

/// `POST /api/v1/orders/{id}/emergency` `{reason}`: file a change order in
/// review as an emergency change (002 art. 12: change first, paperwork after).
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/emergency",
    tag = "orders",
    params(("id" = String, Path, description = "The order id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = EmergencyRequest,
    responses(
        (status = 200, description = "Filed; the change is carried out at once", body = OrderView),
        (status = 400, description = "Malformed body (a reason is required)", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs change_request", body = crate::error::ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "ORDER_EMERGENCY_NOT_ALLOWED (not a change in review, or filed already), ORDER_EMERGENCY_NOT_IN_POLICY (the order's policy has no emergency changes), or a concurrent change", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn order_emergency(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<EmergencyRequest>,
) -> Result<Json<OrderView>, ApiError> {
    let now = now_of(clock);
    let loaded = orders::order_emergency(&*state.store, &caller, &id, req.reason, now)
        .await
        .map_err(workflow_error)?;
    Ok(Json(OrderView::new(loaded, now, &calendar(&state).await?)))
}

/// `POST /api/v1/orders/{id}/purge` `{reason}`: the management unit decides
/// to purge an exited system's data before its retention is over (002 art.
/// 13 keeps it "以备政府监管部门监管审计需要", so only by an explicit decision):
/// the order moves to `purged`, audited as `order.purge_early` with the
/// reason, and the reconciler deletes the system's resources. Once the
/// retention is over the timers purge by themselves.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/purge",
    tag = "orders",
    params(("id" = String, Path, description = "The order id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = PurgeRequest,
    responses(
        (status = 200, description = "Purged: the order is `purged`", body = OrderView),
        (status = 400, description = "Malformed body (a reason is required)", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs order_approve (the management unit's approver)", body = crate::error::ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "ORDER_TRANSITION_FORBIDDEN: the order is not `exited`; or a concurrent change", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn order_purge(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PurgeRequest>,
) -> Result<Json<OrderView>, ApiError> {
    let now = now_of(clock);
    let loaded = yunshu_workflow::purge::early(&*state.store, &caller, &id, req.reason, now)
        .await
        .map_err(workflow_error)?;
    Ok(Json(OrderView::new(loaded, now, &calendar(&state).await?)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// Why the data is purged before its retention is over, kept in the
    /// order's history and the audit log.
    #[schema(value_type = String)]
    pub reason: Text,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestPeriodExtensionRequest {
    /// The new last day of the test period (China Standard Time), later than
    /// the current one and within the policy's `extension_max`.
    pub until: chrono::NaiveDate,
    /// Why the extension is needed (确有必要), kept with the approval.
    #[schema(value_type = String)]
    pub reason: Text,
}

/// `POST /api/v1/orders/{id}/test-period/extensions` `{until, reason}`: the
/// management unit approves a longer test period (002 art. 10: "经政务云平台
/// 主管部门同意，确有必要的可以延长测试时间"); who, when, why and until when are
/// kept on the step and audited.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/test-period/extensions",
    tag = "orders",
    params(("id" = String, Path, description = "The order id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body = TestPeriodExtensionRequest,
    responses(
        (status = 200, description = "Extended; `deadline` shows the new due date, `deadline_extensions` the approvals", body = OrderView),
        (status = 400, description = "Malformed body (a date and a reason are required), or CALENDAR_YEAR_UNKNOWN (the bound runs into a year the calendar lacks)", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs order_approve (the management unit's approver)", body = crate::error::ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "TEST_PERIOD_NOT_RUNNING, TEST_PERIOD_NOT_EXTENDABLE (the policy allows no extension), TEST_PERIOD_EXTENSION_REFUSED (not later than the current due date, or beyond the policy's bound), or a concurrent change", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn order_test_period_extend(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<TestPeriodExtensionRequest>,
) -> Result<Json<OrderView>, ApiError> {
    let now = now_of(clock);
    let loaded = yunshu_workflow::test_period::extend(
        &*state.store,
        &caller,
        &id,
        req.until,
        req.reason,
        now,
    )
    .await
    .map_err(workflow_error)?;
    Ok(Json(OrderView::new(loaded, now, &calendar(&state).await?)))
}
