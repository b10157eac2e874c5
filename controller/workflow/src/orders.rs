//! Work orders (工单) over the store: create a draft, edit it while editable, move
//! it through the SPEC §3 states, let reviewers lower line quantities, and keep
//! each step's deadline clock.
//!
//! Stored as two records written together: the domain [`WorkOrder`] at
//! `work_order/<id>` (what the reconciler reads: the approved quantities) and its
//! [`OrderTrack`] at `work_order_track/<id>` (policy, step deadlines, delivery
//! confirmation time). Every mutation compares both revisions and appends its
//! audit entry in the same transaction; a lost race is `ORDER_CONFLICT` and
//! writes nothing.
//!
//! Must not provision: approval only records approved quantities; the reconciler
//! turns them into resources.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::order::{OrderKind, OrderRequest, OrderState, WorkOrder};
use yunshu_domain::system::InformationSystem;
use yunshu_domain::user::Permission;
use yunshu_domain::{OrderId, Record, SystemNumber, TenantCode, Text};
use yunshu_store::audit::{self, Appended};
use yunshu_store::page::{self, Page};
use yunshu_store::{Revision, Store, Txn, records};

use super::deadline::{self, PolicyName, StepClock};
use super::{WorkflowError, audit_draft};
use super::{rules, usage};

/// Workflow bookkeeping kept beside a work order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTrack {
    pub order: OrderId,
    /// The deadline policy chosen at creation (a SPEC §3 preset or an operator's).
    pub policy: PolicyName,
    /// The step the order is in now, when its policy limits that step.
    #[serde(default)]
    pub current: Option<StepClock>,
    /// Finished steps with their deadlines, for overdue reports.
    #[serde(default)]
    pub past: Vec<StepClock>,
    /// Delivery confirmation (交付确认): billing starts here (000 art. 14).
    #[serde(default)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// An emergency change filed with the management unit (应急变更报备, 002
    /// art. 12): the change is carried out on the requested quantities at once
    /// and the review finishes afterwards (后补手续).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency: Option<EmergencyFiling>,
}

/// Who filed an emergency change, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyFiling {
    pub by: yunshu_domain::Actor,
    pub at: DateTime<Utc>,
    pub reason: Text,
}

impl Record for OrderTrack {
    const KIND: &'static str = "work_order_track";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.order.to_string()
    }
}

/// An order as read, with the revisions a later write compares against.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub order: WorkOrder,
    pub track: OrderTrack,
    order_rev: Revision,
    track_rev: Revision,
}

/// What the applicant asks for when creating a draft.
#[derive(Debug, Clone)]
pub struct OrderDraft {
    pub kind: OrderKind,
    pub system: SystemNumber,
    pub policy: Option<PolicyName>,
    pub request: OrderRequest,
}

/// Whether `caller` may see orders of `tenant`: tenant users their own tenant's,
/// reviewers and approvers (platform `OrderRead`) all.
fn visible(caller: &Principal, tenant: &TenantCode) -> bool {
    caller.can(Permission::OrderRead, Some(tenant))
}

/// Whether `caller` may see `order`: as [`visible`], or as the operator of the
/// provider the order names once it is approved — the provider has work to do
/// from then on (000 art. 13); drafts and orders in review stay the tenant's
/// and the management unit's business.
fn order_visible(caller: &Principal, order: &WorkOrder) -> bool {
    use OrderState::*;
    visible(caller, order.tenant())
        || (matches!(
            order.state(),
            Approved | TestEnvReady | Delivered | Live | ExitRequested | Exited | Purged
        ) && order
            .request()
            .provider
            .as_ref()
            .is_some_and(|p| caller.providers_with(Permission::OrderRead).contains(&p)))
}

/// The permission needed to draft, edit or submit an order of `kind`: change and
/// exit are the tenant admin's to request (SPEC §1).
fn applicant_permission(kind: OrderKind) -> Permission {
    match kind {
        OrderKind::Onboarding | OrderKind::GoLive => Permission::OrderDraft,
        OrderKind::Change => Permission::ChangeRequest,
        OrderKind::Exit => Permission::ExitRequest,
    }
}

/// The permissions needed to move an order of `kind` from `from` to `to`; all of
/// them are required. Transitions the table does not allow still map to
/// something, so the caller learns "forbidden" before "invalid transition" only
/// when they could never do it anyway.
pub fn transition_permissions(
    kind: OrderKind,
    from: OrderState,
    to: OrderState,
) -> Vec<Permission> {
    use OrderState::*;
    match to {
        Draft => vec![applicant_permission(kind)],
        Submitted => {
            let mut p = vec![Permission::OrderSubmit];
            if applicant_permission(kind) != Permission::OrderDraft {
                p.push(applicant_permission(kind));
            }
            p
        }
        // 受理 / 不予受理
        Accepted | Refused => vec![Permission::OrderAccept],
        // large or complex requests go to experts (000 art. 12)
        ExpertReview => vec![Permission::OrderReview],
        // 审批: the cloud management unit decides
        Approved | Rejected => vec![Permission::OrderApprove],
        // TODO-correctness: the reconciler marks these once the provider's
        // resources are observed (test env ready, go-live configured, reclaimed,
        // data purged); until it does, the approver records the provider's notice.
        TestEnvReady | Exited | Purged => vec![Permission::OrderApprove],
        Live if kind == OrderKind::GoLive => vec![Permission::OrderApprove],
        // withdrawing an exit request is the requester's call
        Live if from == ExitRequested => vec![Permission::ExitRequest],
        // 交付确认 and declaring the tested system live: the tenant admin (000 art. 14)
        Delivered | Live => vec![Permission::DeliveryConfirm],
        ExitRequested => vec![Permission::ExitRequest],
    }
}

fn order_not_found(id: &str) -> WorkflowError {
    WorkflowError::OrderNotFound {
        id: id.chars().take(64).collect(),
    }
}

/// A fresh order id: `WO-<yyyymmdd>-<8 hex>`, so ids sort roughly by creation day.
fn new_order_id(now: DateTime<Utc>) -> Result<OrderId, WorkflowError> {
    let day = deadline_local_day(now);
    let suffix: u32 = rand::rng().random();
    OrderId::new(format!("WO-{day}-{suffix:08x}")).map_err(WorkflowError::invalid)
}

fn deadline_local_day(now: DateTime<Utc>) -> String {
    yunshu_domain::calendar::local_date(now)
        .format("%Y%m%d")
        .to_string()
}

/// Creates a draft order for one of the caller's tenant's systems.
///
/// Errors: `SYSTEM_NOT_FOUND` for a system of another tenant or none;
/// `FORBIDDEN` without the permission for this kind (`order_draft`, or
/// `change_request` / `exit_request` for change and exit orders).
pub async fn order_create(
    store: &dyn Store,
    caller: &Principal,
    draft: OrderDraft,
    now: DateTime<Utc>,
) -> Result<Loaded, WorkflowError> {
    let system_missing = || WorkflowError::SystemNotFound {
        number: draft.system.to_string(),
    };
    if caller.tenant.as_ref() != Some(draft.system.tenant()) {
        // Platform staff have no tenant and draft nothing; another tenant's
        // system is "not found" (SPEC §1).
        return Err(if caller.tenant.is_some() {
            system_missing()
        } else {
            WorkflowError::Forbidden
        });
    }
    let tenant = draft.system.tenant().clone();
    if !caller.can(applicant_permission(draft.kind), Some(&tenant)) {
        return Err(WorkflowError::Forbidden);
    }
    records::get::<InformationSystem>(store, &draft.system.to_string())
        .await
        .map_err(WorkflowError::store("system read"))?
        .ok_or_else(system_missing)?;
    let created_by = caller.user.clone().ok_or(WorkflowError::Forbidden)?;
    draft.request.validate().map_err(WorkflowError::invalid)?;
    let policy = draft
        .policy
        .clone()
        .unwrap_or_else(deadline::default_policy);
    // Refuse an unknown policy now, not at the first transition.
    if rules::load(store).await?.policy(&policy).is_none() {
        return Err(WorkflowError::PolicyUnknown {
            name: policy.to_string(),
        });
    }
    // The catalog's limits on the server, for every client (issue 17).
    super::order_catalog::check(store, &policy, &draft.system, &draft.request).await?;
    // Ids are random: a collision is astronomically rare, but retry rather than
    // overwrite.
    for _ in 0..4 {
        let id = new_order_id(now)?;
        let mut order = WorkOrder::new(
            id.clone(),
            draft.kind,
            draft.system.clone(),
            created_by.clone(),
            now,
        );
        *order.request_edit()? = draft.request.clone();
        let track = OrderTrack {
            order: id.clone(),
            policy: policy.clone(),
            current: None,
            past: Vec::new(),
            delivered_at: None,
            emergency: None,
        };
        let mut loaded = Loaded {
            order,
            track,
            order_rev: 0,
            track_rev: 0,
        };
        let detail = format!("{} {} {}", draft.kind, draft.system, loaded.track.policy);
        match save(
            store,
            caller,
            &mut loaded,
            "order.create",
            Some(detail),
            now,
        )
        .await
        {
            Ok(()) => return Ok(loaded),
            Err(WorkflowError::OrderConflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(WorkflowError::OrderConflict {
        id: "new".to_owned(),
    })
}

/// An order the caller may see; otherwise `ORDER_NOT_FOUND` (never forbidden).
pub async fn order_get(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
) -> Result<Loaded, WorkflowError> {
    let oid = OrderId::new(id).map_err(|_| order_not_found(id))?;
    let (order, order_rev) = records::get::<WorkOrder>(store, oid.as_str())
        .await
        .map_err(WorkflowError::store("order read"))?
        .ok_or_else(|| order_not_found(id))?;
    if !order_visible(caller, &order) {
        return Err(order_not_found(id));
    }
    let (track, track_rev) = match records::get::<OrderTrack>(store, oid.as_str())
        .await
        .map_err(WorkflowError::store("order track read"))?
    {
        Some(t) => t,
        // An order written without the workflow (imports, older data): start a
        // track on the default policy; the first write creates it.
        None => (
            OrderTrack {
                order: oid,
                policy: deadline::default_policy(),
                current: None,
                past: Vec::new(),
                delivered_at: None,
                emergency: None,
            },
            0,
        ),
    };
    Ok(Loaded {
        order,
        track,
        order_rev,
        track_rev,
    })
}

/// Orders the caller may see, in id order. `FORBIDDEN` without `OrderRead`
/// anywhere (e.g. the platform admin: tenant business data, 003 §3.2.2.15).
pub async fn order_list(
    store: &dyn Store,
    caller: &Principal,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<Loaded>, WorkflowError> {
    let any_scope = caller.can(Permission::OrderRead, None)
        || caller.tenant.as_ref().is_some_and(|t| visible(caller, t))
        || !caller.providers_with(Permission::OrderRead).is_empty();
    if !any_scope {
        return Err(WorkflowError::Forbidden);
    }
    let orders = page::scan(
        store,
        &records::prefix::<WorkOrder>(),
        after,
        limit,
        |o: &WorkOrder| order_visible(caller, o),
    )
    .await
    .map_err(WorkflowError::store("order list"))?;
    let mut items = Vec::with_capacity(orders.items.len());
    for o in orders.items {
        items.push(order_get(store, caller, o.id().as_str()).await?);
    }
    Ok(Page {
        items,
        next: orders.next,
    })
}

/// Replaces the request of an order while it is draft, refused or rejected
/// (`ORDER_NOT_EDITABLE` otherwise); the applicant may edit and resubmit (000
/// art. 12).
pub async fn order_edit(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
    request: OrderRequest,
    now: DateTime<Utc>,
) -> Result<Loaded, WorkflowError> {
    let mut loaded = order_get(store, caller, id).await?;
    let tenant = loaded.order.tenant().clone();
    if !caller.can(applicant_permission(loaded.order.kind()), Some(&tenant)) {
        return Err(WorkflowError::Forbidden);
    }
    request.validate().map_err(WorkflowError::invalid)?;
    super::order_catalog::check(store, &loaded.track.policy, loaded.order.system(), &request)
        .await?;
    *loaded.order.request_edit()? = request;
    save(store, caller, &mut loaded, "order.edit", None, now).await?;
    Ok(loaded)
}

/// Refuses `order` when, approved now on top of its system's orders
/// (`system_orders`), some of its items would resolve to nothing
/// (`ORDER_ITEMS_UNRESOLVED`).
fn check_items_resolve(
    order: &WorkOrder,
    system_orders: &[(WorkOrder, OrderTrack)],
    now: DateTime<Utc>,
) -> Result<(), WorkflowError> {
    if order.kind() == OrderKind::Exit {
        return Ok(());
    }
    let problems =
        crate::desired::problems_if_approved(order.system(), system_orders, order.id(), now);
    if problems.is_empty() {
        return Ok(());
    }
    Err(WorkflowError::OrderItemsUnresolved {
        problems: problems
            .into_iter()
            .map(|p| (p.reason, p.reason_zh))
            .collect(),
    })
}

/// The checks an order passes before it is submitted, approved or filed as
/// an emergency: its items resolve, and (approval, emergency) its provider
/// offers every kind. The system's orders are read once for both.
async fn check_before(
    store: &dyn Store,
    order: &WorkOrder,
    offers_too: bool,
    now: DateTime<Utc>,
) -> Result<(), WorkflowError> {
    if order.kind() == OrderKind::Exit {
        return Ok(());
    }
    let system_orders = crate::expansion::orders_of(store, order.system()).await?;
    if offers_too {
        crate::offers::check(store, order, &system_orders).await?;
    }
    check_items_resolve(order, &system_orders, now)
}

/// Moves an order to `to`, recording who, when and why; closes the current
/// step's clock and starts the next one under the order's policy.
///
/// Errors: `ORDER_NOT_FOUND`; `FORBIDDEN` without the step's permission;
/// the domain's `ORDER_TRANSITION_FORBIDDEN` / `ORDER_REASON_REQUIRED` (nothing
/// changes); `ORDER_CONFLICT` on a lost race.
pub async fn order_transition(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
    to: OrderState,
    reason: Option<Text>,
    now: DateTime<Utc>,
) -> Result<Loaded, WorkflowError> {
    transition_as(store, caller, id, to, reason, now, Purge::WhenDue).await
}

/// When a move to `purged` may happen (002 art. 13; see `crate::purge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purge {
    /// Only once the data retention is over: `ORDER_RETENTION_RUNNING` before.
    WhenDue,
    /// The management unit's explicit decision to purge earlier, with a
    /// reason; audited as `order.purge_early`.
    Early,
}

/// [`order_transition`], saying when a purge may happen.
pub(crate) async fn transition_as(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
    to: OrderState,
    reason: Option<Text>,
    now: DateTime<Utc>,
    purge: Purge,
) -> Result<Loaded, WorkflowError> {
    let mut loaded = order_get(store, caller, id).await?;
    let (kind, from) = (loaded.order.kind(), loaded.order.state());
    let tenant = loaded.order.tenant().clone();
    for p in transition_permissions(kind, from, to) {
        if !caller.can(p, Some(&tenant)) {
            return Err(WorkflowError::Forbidden);
        }
    }
    let early = to == OrderState::Purged && purge == Purge::Early;
    if to == OrderState::Purged && from == OrderState::Exited && !early {
        super::purge::retention_over(&loaded.track, now)
            .map_err(|until| super::purge::running(id, until))?;
    }
    if early && reason.is_none() {
        return Err(WorkflowError::Order(
            yunshu_domain::order::OrderError::ReasonRequired { to },
        ));
    }
    if to == OrderState::Submitted {
        super::order_catalog::check(
            store,
            &loaded.track.policy,
            loaded.order.system(),
            loaded.order.request(),
        )
        .await?;
    }
    if matches!(to, OrderState::Submitted | OrderState::Approved) {
        check_before(store, &loaded.order, to == OrderState::Approved, now).await?;
    }
    // Replicas' clocks differ by milliseconds; never let that refuse a step with
    // ORDER_TIME_BACKWARDS.
    let at = now.max(loaded.order.updated_at());
    let detail = match &reason {
        Some(r) => format!("{from} -> {to}: {r}"),
        None => format!("{from} -> {to}"),
    };
    loaded
        .order
        .transition(to, caller.actor.clone(), at, reason)?;
    let track = &mut loaded.track;
    let rules = rules::load(store).await?;
    let policy = rules
        .policy(&track.policy)
        .ok_or_else(|| WorkflowError::PolicyUnknown {
            name: track.policy.to_string(),
        })?;
    // A change or exit review keeps its clock from submission to the decision
    // (002 art. 12, 13), a test period started at the test environment through
    // delivery (002 art. 10); every other move closes the step and starts the
    // next.
    let next = deadline::step_entered_under(policy, kind, to);
    if !deadline::continues(kind, track.current.as_ref(), to, next) {
        if let Some(mut done) = track.current.take() {
            done.finished_at = Some(at);
            track.past.push(done);
        }
        track.current = next
            .map(|step| deadline::step_start(policy, &rules.calendar, step, at))
            // a step the policy does not limit has no clock to show
            .filter(|c| c.deadline.is_some() || c.unknown.is_some());
    }
    if to == OrderState::Delivered {
        // 交付确认: billing starts now (000 art. 14; SPEC §6)
        track.delivered_at = Some(at);
    }
    let with = usage_term_change(store, &loaded.order, to, policy, &rules.calendar, at).await?;
    save_with(
        store,
        caller,
        &mut loaded,
        if early {
            "order.purge_early"
        } else {
            "order.transition"
        },
        Some(detail),
        at,
        with,
    )
    .await?;
    Ok(loaded)
}

/// Sets the approved quantity of line `index` (0-based). Reviewers may lower
/// quantities to reasonable values, never raise them (000 art. 12): the domain
/// refuses with `LINE_APPROVE_RAISES`; only while accepted or in expert review
/// (`ORDER_NOT_IN_REVIEW`).
pub async fn order_line_approve(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
    index: usize,
    quantity: u32,
    now: DateTime<Utc>,
) -> Result<Loaded, WorkflowError> {
    let mut loaded = order_get(store, caller, id).await?;
    let tenant = loaded.order.tenant().clone();
    if !caller.can(Permission::OrderReview, Some(&tenant)) {
        return Err(WorkflowError::Forbidden);
    }
    let requested = loaded
        .order
        .request()
        .lines
        .get(index)
        .map(|l| l.requested_qty());
    loaded.order.line_approve(index, quantity)?;
    let detail = format!(
        "line {index}: requested {} approved {quantity}",
        requested.unwrap_or_default()
    );
    save(
        store,
        caller,
        &mut loaded,
        "order.line_approve",
        Some(detail),
        now,
    )
    .await?;
    Ok(loaded)
}

/// Files a change order as an emergency (应急变更, 002 art. 12): "因应急需要等
/// 特殊情况的，可在向政务云平台主管部门报备后先行变更、后补办相关手续". The tenant
/// admin (`ChangeRequest`) files it, with a reason, while the order is in
/// review; the reconciler then carries out the requested quantities without
/// waiting, and reviewers finish the paperwork on the usual deadlines (a
/// reviewer's reduction still applies afterwards). Filing is reported to the
/// management unit as an alarm in the same transaction.
///
/// Errors: `ORDER_EMERGENCY_NOT_ALLOWED` for other kinds or states, or a second
/// filing; `ORDER_EMERGENCY_NOT_IN_POLICY` when the order's policy has no
/// `[emergency_change]` (of the presets only Yongjia's seed provides for it).
pub async fn order_emergency(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
    reason: Text,
    now: DateTime<Utc>,
) -> Result<Loaded, WorkflowError> {
    use yunshu_domain::alarm::{Alarm, AlarmCategory, AlarmLevel};
    let mut loaded = order_get(store, caller, id).await?;
    let tenant = loaded.order.tenant().clone();
    if !caller.can(Permission::ChangeRequest, Some(&tenant)) {
        return Err(WorkflowError::Forbidden);
    }
    let in_review = matches!(
        loaded.order.state(),
        OrderState::Submitted | OrderState::Accepted | OrderState::ExpertReview
    );
    if loaded.order.kind() != OrderKind::Change || !in_review || loaded.track.emergency.is_some() {
        return Err(WorkflowError::EmergencyNotAllowed { id: id.to_owned() });
    }
    // Only where the order's policy provides for it (002 art. 12, Yongjia).
    let allowed = rules::load(store)
        .await?
        .policy(&loaded.track.policy)
        .is_some_and(|p| p.emergency_change().is_some());
    if !allowed {
        return Err(WorkflowError::EmergencyNotInPolicy {
            id: id.to_owned(),
            policy: loaded.track.policy.to_string(),
        });
    }
    // Carried out at once, like an approval: the same checks.
    check_before(store, &loaded.order, true, now).await?;
    loaded.track.emergency = Some(EmergencyFiling {
        by: caller.actor.clone(),
        at: now,
        reason: reason.clone(),
    });
    let alarm = Alarm::new(
        yunshu_domain::ids::AlarmId::new(format!("emergency-{id}"))
            .map_err(WorkflowError::invalid)?,
        now,
        AlarmLevel::Major,
        Text::new("应急变更报备（永嘉 002 第十二条）").map_err(WorkflowError::invalid)?,
        Text::new(format!(
            "信息系统 {} 的变更工单 {id} 已报备为应急变更，先行变更、后补手续。原因：{reason}",
            loaded.order.system()
        ))
        .map_err(WorkflowError::invalid)?,
    )
    .about(
        AlarmCategory::Other,
        Some(tenant),
        Some(Text::new(records::key::<WorkOrder>(id)).map_err(WorkflowError::invalid)?),
    );
    let with = super::alarms::raise_in(Txn::new(), &alarm);
    save_with(
        store,
        caller,
        &mut loaded,
        "order.emergency",
        Some(reason.to_string()),
        now,
        with,
    )
    .await?;
    Ok(loaded)
}

/// Writes the order and its track, compared on the revisions they were read at,
/// with the audit entry in the same transaction. Updates the revisions.
pub async fn save(
    store: &dyn Store,
    caller: &Principal,
    loaded: &mut Loaded,
    action: &str,
    detail: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), WorkflowError> {
    save_with(store, caller, loaded, action, detail, now, Txn::new()).await
}

/// The usage-period change a transition brings, as operations to commit with
/// it: delivery of an onboarding order starts the system's period when its
/// policy sets one (002 art. 14; an existing period is kept), completion of an
/// exit order — or of the onboarding order's own exit path — closes it.
async fn usage_term_change(
    store: &dyn Store,
    order: &WorkOrder,
    to: OrderState,
    policy: &yunshu_domain::calendar::Policy,
    calendar: &yunshu_domain::calendar::Calendar,
    at: DateTime<Utc>,
) -> Result<Txn, WorkflowError> {
    let starts = order.kind() == OrderKind::Onboarding && to == OrderState::Delivered;
    let closes =
        matches!(order.kind(), OrderKind::Exit | OrderKind::Onboarding) && to == OrderState::Exited;
    if !starts && !closes {
        return Ok(Txn::new());
    }
    let key = usage::key(order.system());
    match (usage::load(store, order.system()).await?, starts) {
        (None, true) => {
            let Some(term) =
                usage::UsageTerm::starting(order.system().clone(), policy, at, calendar)?
            else {
                return Ok(Txn::new());
            };
            Ok(Txn::new()
                .when_mod_revision(key.clone(), 0)
                .put(key, records::encode(&term)))
        }
        (Some((mut term, rev)), false) if term.closed_at.is_none() => {
            term.closed_at = Some(at);
            Ok(Txn::new()
                .when_mod_revision(key.clone(), rev)
                .put(key, records::encode(&term)))
        }
        _ => Ok(Txn::new()),
    }
}

/// [`save`], committing the operations of `with` in the same transaction.
pub async fn save_with(
    store: &dyn Store,
    caller: &Principal,
    loaded: &mut Loaded,
    action: &str,
    detail: Option<String>,
    now: DateTime<Utc>,
    with: Txn,
) -> Result<(), WorkflowError> {
    let id = loaded.order.id().to_string();
    let order_key = records::key::<WorkOrder>(&id);
    let track_key = records::key::<OrderTrack>(&id);
    let txn = with
        .when_mod_revision(order_key.clone(), loaded.order_rev)
        .when_mod_revision(track_key.clone(), loaded.track_rev)
        .put(order_key.clone(), records::encode(&loaded.order))
        .put(track_key, records::encode(&loaded.track));
    let draft = audit_draft(caller, action, &order_key, detail, now)?;
    match audit::append(store, draft, txn)
        .await
        .map_err(WorkflowError::store("order write"))?
    {
        Appended::Committed { revision, .. } => {
            loaded.order_rev = revision;
            loaded.track_rev = revision;
            Ok(())
        }
        Appended::Conflict => Err(WorkflowError::OrderConflict { id }),
    }
}
