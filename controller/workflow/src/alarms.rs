//! The alarm centre (告警中心, 003 §2.2.1 (5)): raising alarms exactly once,
//! listing what a caller may see, acknowledging.
//!
//! Owns alarm ids that make raising idempotent (the id names the condition, e.g.
//! `od-<order>-<step start>`; the record is created with a "must not exist"
//! compare, so two replicas or a restarted timer never raise the same alarm
//! twice), who sees an alarm (a tenant's alarms: that tenant's users and platform
//! staff; capacity alarms: capacity readers) and who may acknowledge it. Must not
//! decide *when* a condition holds: `timers.rs` (deadlines, usage periods) and
//! later the capacity manager do, and call [`raise`].

use chrono::{DateTime, Utc};
use yunshu_auth::Principal;
use yunshu_domain::Actor;
use yunshu_domain::alarm::{Alarm, AlarmCategory, AlarmLevel};
use yunshu_domain::user::Permission;
use yunshu_store::audit::{self, Appended};
use yunshu_store::page::{self, Page};
use yunshu_store::{Revision, Store, Txn, records};

use super::{WorkflowError, audit_draft};

/// Adds "create `alarm` unless it exists" to `txn`. Committing the result either
/// raises the alarm together with the rest of `txn`, or conflicts (already
/// raised) and writes nothing.
pub fn raise_in(txn: Txn, alarm: &Alarm) -> Txn {
    let key = records::key::<Alarm>(alarm.id().as_ref());
    txn.when_mod_revision(key.clone(), 0)
        .put(key, records::encode(alarm))
}

/// Raises `alarm` on behalf of `component`, with its audit entry, unless an alarm
/// with the same id exists. Returns whether it was raised now.
pub async fn raise(
    store: &dyn Store,
    component: &Actor,
    alarm: &Alarm,
) -> Result<bool, WorkflowError> {
    let key = records::key::<Alarm>(alarm.id().as_ref());
    let draft = super::system_audit_draft(
        component,
        "alarm.raise",
        &key,
        alarm.trigger().as_str(),
        alarm.raised_at(),
    )?;
    match audit::append(store, draft, raise_in(Txn::new(), alarm))
        .await
        .map_err(WorkflowError::store("alarm raise"))?
    {
        Appended::Committed { .. } => {
            tracing::warn!(
                alarm = %alarm.id(),
                level = alarm.level().label_zh(),
                trigger = alarm.trigger().as_str(),
                "alarm raised"
            );
            Ok(true)
        }
        Appended::Conflict => Ok(false),
    }
}

/// Marks an alarm's condition as over (e.g. the late step finished). No effect
/// on an alarm already cleared or missing.
pub async fn clear(
    store: &dyn Store,
    component: &Actor,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), WorkflowError> {
    let Some((mut alarm, rev)) = records::get::<Alarm>(store, id)
        .await
        .map_err(WorkflowError::store("alarm read"))?
    else {
        return Ok(());
    };
    if alarm.cleared_at().is_some() {
        return Ok(());
    }
    alarm.clear(at);
    let key = records::key::<Alarm>(id);
    let txn = Txn::new()
        .when_mod_revision(key.clone(), rev)
        .put(key.clone(), records::encode(&alarm));
    let draft = super::system_audit_draft(component, "alarm.clear", &key, "condition over", at)?;
    // A lost race means someone else cleared or acknowledged it: both fine, the
    // next pass sees the new record.
    audit::append(store, draft, txn)
        .await
        .map_err(WorkflowError::store("alarm clear"))?;
    Ok(())
}

/// Whether `caller` may see `alarm`.
pub fn visible(caller: &Principal, alarm: &Alarm) -> bool {
    match alarm.category() {
        AlarmCategory::Capacity => caller.can(Permission::CapacityRead, None),
        // Order and usage alarms: the tenant concerned and platform order staff.
        _ => caller.can(Permission::OrderRead, alarm.tenant()),
    }
}

/// Whether `caller` may acknowledge `alarm`: platform staff who act on it, or
/// the tenant admin for the tenant's own usage-period alarms.
fn may_acknowledge(caller: &Principal, alarm: &Alarm) -> bool {
    if !visible(caller, alarm) {
        return false;
    }
    let staff = [
        Permission::OrderAccept,
        Permission::OrderApprove,
        Permission::ExpansionHandle,
    ]
    .into_iter()
    .any(|p| caller.can(p, None));
    let tenant_admin = matches!(
        alarm.category(),
        AlarmCategory::UsageExpiring | AlarmCategory::UsageExpired
    ) && caller.can(Permission::DeliveryConfirm, alarm.tenant());
    staff || tenant_admin
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct AlarmFilter {
    pub acknowledged: Option<bool>,
    pub category: Option<AlarmCategory>,
    /// Only alarms at least this severe.
    pub min_level: Option<AlarmLevel>,
}

/// Alarms the caller may see, by id. `FORBIDDEN` for a caller who can see none
/// (e.g. an auditor or the platform admin, who read the audit log instead).
pub async fn list(
    store: &dyn Store,
    caller: &Principal,
    filter: &AlarmFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<Alarm>, WorkflowError> {
    let any = caller.can(Permission::CapacityRead, None)
        || caller.can(Permission::OrderRead, None)
        || caller
            .tenant
            .as_ref()
            .is_some_and(|t| caller.can(Permission::OrderRead, Some(t)));
    if !any {
        return Err(WorkflowError::Forbidden);
    }
    page::scan(
        store,
        &records::prefix::<Alarm>(),
        after,
        limit,
        |a: &Alarm| {
            visible(caller, a)
                && filter
                    .acknowledged
                    .is_none_or(|want| want == a.acknowledged().is_some())
                && filter.category.is_none_or(|c| c == a.category())
                && filter.min_level.is_none_or(|l| a.level() >= l)
        },
    )
    .await
    .map_err(WorkflowError::store("alarm list"))
}

async fn get_visible(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
) -> Result<(Alarm, Revision), WorkflowError> {
    let not_found = || WorkflowError::AlarmNotFound {
        id: id.chars().take(64).collect(),
    };
    let found = records::get::<Alarm>(store, id)
        .await
        .map_err(WorkflowError::store("alarm read"))?;
    match found {
        Some((alarm, rev)) if visible(caller, &alarm) => Ok((alarm, rev)),
        _ => Err(not_found()),
    }
}

/// One alarm the caller may see; otherwise `ALARM_NOT_FOUND`.
pub async fn get(store: &dyn Store, caller: &Principal, id: &str) -> Result<Alarm, WorkflowError> {
    Ok(get_visible(store, caller, id).await?.0)
}

/// Acknowledges (状态确认) an alarm. `ALARM_ALREADY_ACKNOWLEDGED` the second time.
pub async fn acknowledge(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Alarm, WorkflowError> {
    // A lost race (a timer clearing the alarm meanwhile) is retried on the new
    // record; a concurrent acknowledgement then fails the domain check.
    for _ in 0..3 {
        let (mut alarm, rev) = get_visible(store, caller, id).await?;
        if !may_acknowledge(caller, &alarm) {
            return Err(WorkflowError::Forbidden);
        }
        let by = caller.user.clone().ok_or(WorkflowError::Forbidden)?;
        alarm
            .acknowledge(by, now.max(alarm.raised_at()))
            .map_err(WorkflowError::invalid)?;
        let key = records::key::<Alarm>(alarm.id().as_ref());
        let txn = Txn::new()
            .when_mod_revision(key.clone(), rev)
            .put(key.clone(), records::encode(&alarm));
        let draft = audit_draft(caller, "alarm.acknowledge", &key, None, now)?;
        match audit::append(store, draft, txn)
            .await
            .map_err(WorkflowError::store("alarm acknowledge"))?
        {
            Appended::Committed { .. } => return Ok(alarm),
            Appended::Conflict => continue,
        }
    }
    Err(WorkflowError::Busy)
}
