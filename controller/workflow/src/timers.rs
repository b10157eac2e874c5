//! Time-driven work of the workflow: overdue steps raise alarms; usage periods
//! send their notice, expire, and force systems offline on the steps of the
//! term's policy (002 art. 14; a policy without a step skips it).
//!
//! Owns [`tick`], one pass over the stored orders and usage terms at a given
//! `now`, and [`run`], which calls it on an interval with a [`Clock`] (tests
//! pass a manual clock and call [`tick`] directly). Every action is written with
//! a compare on the record it changes (and alarms with "must not exist"), so a
//! pass repeated — by a restart, or by two replicas before leader election
//! exists — does nothing twice. Must not provision or stop resources: it records
//! `offline_at`; desired state (so the reconciler) and billing act on it.
//! Exited orders whose data retention is over are purged (`crate::purge`),
//! which empties their desired state.

use std::time::Duration;

use chrono::{DateTime, Utc};
use yunshu_domain::alarm::{Alarm, AlarmCategory, AlarmLevel};
use yunshu_domain::calendar::{Calendar, Policy, Step, end_of_day, local_date};
use yunshu_domain::ids::AlarmId;
use yunshu_domain::order::{OrderState, WorkOrder};
use yunshu_domain::{Actor, Text};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{Revision, Store, Txn, page, records};

use super::orders::OrderTrack;
use super::usage::{self, UsageTerm};
use super::{Clock, WorkflowError, alarms, rules};

/// What one pass did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub overdue_raised: usize,
    pub overdue_cleared: usize,
    pub notices_sent: usize,
    pub expired: usize,
    pub taken_offline: usize,
    pub purged: usize,
}

fn component() -> Actor {
    Actor::System("timers".to_owned())
}

/// Calls [`tick`] every `every` until the task is dropped. A failed pass is
/// logged and retried on the next interval: the store may be down for a while.
pub async fn run(store: std::sync::Arc<dyn Store>, clock: Clock, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match tick(&*store, clock.now()).await {
            Ok(r) if r != TickReport::default() => tracing::info!(?r, "timers pass"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "timers pass failed; retrying next interval"),
        }
    }
}

/// One pass at `now`.
pub async fn tick(store: &dyn Store, now: DateTime<Utc>) -> Result<TickReport, WorkflowError> {
    let mut report = TickReport::default();
    overdue_steps(store, now, &mut report).await?;
    usage_terms(store, now, &mut report).await?;
    purges(store, now, &mut report).await?;
    Ok(report)
}

/// The timers as a caller of the workflow: the approver's `order_approve`
/// and `order_read`, only to purge on the due date.
fn principal() -> Result<yunshu_auth::Principal, WorkflowError> {
    use yunshu_domain::user::{Permission, Role, RoleBinding, RoleBindingFields, Scope};
    let binding = RoleBinding::new(RoleBindingFields {
        id: "timers.system".parse().map_err(WorkflowError::invalid)?,
        user: "timers".parse().map_err(WorkflowError::invalid)?,
        role: Role::Approver,
        scope: Scope::Platform,
        permissions: Some([Permission::OrderRead, Permission::OrderApprove].into()),
        granted_by: component(),
        granted_at: DateTime::<Utc>::UNIX_EPOCH,
    })
    .map_err(WorkflowError::invalid)?;
    Ok(yunshu_auth::Principal {
        actor: component(),
        user: None,
        tenant: None,
        bindings: vec![binding],
        scopes: None,
        token_expires_at: None,
        org: Default::default(),
    })
}

/// The alarm id of a due purge: one per order.
fn purge_id(order: &str) -> Result<AlarmId, WorkflowError> {
    AlarmId::new(format!("pd-{order}")).map_err(WorkflowError::invalid)
}

/// Exited orders whose data retention is over are purged (002 art. 13; see
/// `crate::purge`): a `purge_due` alarm says the purge is due, and is
/// cleared once it is done — left standing, it tells the operator a purge
/// could not be made (the order changed, the store refused).
async fn purges(
    store: &dyn Store,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<(), WorkflowError> {
    let caller = principal()?;
    for (order, _) in page::scan_all::<WorkOrder>(store)
        .await
        .map_err(WorkflowError::store("timers scan"))?
    {
        if order.state() != OrderState::Exited {
            continue;
        }
        let loaded = match super::orders::order_get(store, &caller, order.id().as_str()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(order = %order.id(), error = %e, "purge check failed");
                continue;
            }
        };
        if super::purge::retention_over(&loaded.track, now).is_err() {
            continue;
        }
        let id = purge_id(order.id().as_str())?;
        let alarm = Alarm::new(
            id.clone(),
            now,
            AlarmLevel::Info,
            text(format!(
                "数据保留期满，待清除：工单 {}（{}）",
                order.id(),
                loaded.track.policy
            ))?,
            text(format!(
                "信息系统 {} 已退出，数据资源和日志的保留期已满（依据 002 art. 13 或所适用规则），按期清除。",
                order.system()
            ))?,
        )
        .about(
            AlarmCategory::PurgeDue,
            Some(order.tenant().clone()),
            Some(text(records::key::<WorkOrder>(order.id().as_str()))?),
        );
        alarms::raise(store, &component(), &alarm).await?;
        match super::purge::purge_due(store, &caller, &loaded, now).await {
            Ok(true) => {
                alarms::clear(store, &component(), id.as_ref(), now).await?;
                report.purged += 1;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(order = %order.id(), error = %e, "purge due but not made"),
        }
    }
    Ok(())
}

/// The alarm id of an overdue step: one per order and step start, so a step
/// entered again (after a refusal and resubmission) raises again.
fn overdue_id(order: &str, started_at: DateTime<Utc>) -> Result<AlarmId, WorkflowError> {
    AlarmId::new(format!("od-{order}-{}", started_at.timestamp())).map_err(WorkflowError::invalid)
}

fn text(s: String) -> Result<Text, WorkflowError> {
    Text::new(s).map_err(WorkflowError::invalid)
}

async fn overdue_steps(
    store: &dyn Store,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<(), WorkflowError> {
    // TODO-perf: a due-date index would make this proportional to overdue
    // orders rather than to all orders; fine at thousands of orders a year.
    for (track, _) in page::scan_all::<OrderTrack>(store)
        .await
        .map_err(WorkflowError::store("timers scan"))?
    {
        let order_id = track.order.to_string();
        // Steps left after their deadline: their alarm's condition is over.
        for past in &track.past {
            if let (Some(d), Some(done)) = (&past.deadline, past.finished_at)
                && done > d.due_at()
            {
                let id = overdue_id(&order_id, past.started_at)?;
                if let Some((alarm, _)) = records::get::<Alarm>(store, id.as_ref())
                    .await
                    .map_err(WorkflowError::store("alarm read"))?
                    && alarm.cleared_at().is_none()
                {
                    alarms::clear(store, &component(), id.as_ref(), done).await?;
                    report.overdue_cleared += 1;
                }
            }
        }
        let Some(current) = &track.current else {
            continue;
        };
        let Some(deadline) = &current.deadline else {
            continue;
        };
        // The data retention's end is a purge that is due, not a breach:
        // `purges` acts on it.
        if current.step == Step::DataRetention || !deadline.is_overdue(now) {
            continue;
        }
        let Some((order, _)) = records::get::<WorkOrder>(store, &order_id)
            .await
            .map_err(WorkflowError::store("order read"))?
        else {
            continue;
        };
        let id = overdue_id(&order_id, current.started_at)?;
        let alarm = Alarm::new(
            id,
            deadline.due_at(),
            AlarmLevel::Major,
            text(format!(
                "工单环节超时：{}（{}，依据 {}）",
                deadline.step.name_zh(),
                track.policy,
                deadline.source
            ))?,
            text(format!(
                "工单 {order_id}（信息系统 {}）的“{}”环节应于 {} 前完成，现已超时。",
                order.system(),
                deadline.step.name_zh(),
                deadline.due_date
            ))?,
        )
        .about(
            AlarmCategory::OrderOverdue,
            Some(order.tenant().clone()),
            Some(text(records::key::<WorkOrder>(&order_id))?),
        );
        if alarms::raise(store, &component(), &alarm).await? {
            report.overdue_raised += 1;
        }
    }
    Ok(())
}

async fn usage_terms(
    store: &dyn Store,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<(), WorkflowError> {
    let mut loaded = None;
    let terms = page::scan_all::<UsageTerm>(store)
        .await
        .map_err(WorkflowError::store("timers scan"))?;
    for (mut term, rev) in terms {
        if term.closed_at.is_some() || term.offline_at.is_some() {
            continue;
        }
        if term.policy.is_none() {
            // A term written before terms recorded their policy: take the
            // policy of the onboarding order whose delivery started it, once;
            // the next pass times the term by it.
            match delivered_under(store, &term).await {
                Ok(Some(policy)) => {
                    term.policy = Some(policy);
                    commit(store, &term, rev, None, "usage.policy_recorded", now).await?;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(system = %term.system, error = %e, "usage period's policy not found")
                }
            }
            continue;
        }
        let rules = match &loaded {
            Some(r) => r,
            None => &*loaded.insert(rules::load(store).await?),
        };
        let number = term.system.to_string();
        // A term whose policy is unknown (an operator's policy removed, or a
        // record from before the policy was kept) has no rule to follow:
        // never force a system offline without one.
        let Some(policy) = term.policy(rules) else {
            tracing::warn!(system = %number, policy = ?term.policy, "usage period has no known policy; skipped");
            continue;
        };
        // One term's problem (a year missing from the calendar) must not stop
        // the others; it is retried on every pass until an operator fixes it.
        if let Err(e) = usage_term(store, policy, &rules.calendar, term, rev, now, report).await {
            tracing::warn!(system = %number, error = %e, "usage period not processed");
        }
    }
    Ok(())
}

/// The policy of the system's delivered onboarding order, if any.
async fn delivered_under(
    store: &dyn Store,
    term: &UsageTerm,
) -> Result<Option<rules::PolicyName>, WorkflowError> {
    Ok(super::expansion::orders_of(store, &term.system)
        .await?
        .into_iter()
        .find(|(o, t)| {
            o.kind() == yunshu_domain::order::OrderKind::Onboarding && t.delivered_at.is_some()
        })
        .map(|(_, t)| t.policy))
}

async fn usage_term(
    store: &dyn Store,
    policy: &Policy,
    cal: &Calendar,
    mut term: UsageTerm,
    rev: Revision,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<(), WorkflowError> {
    let today = local_date(now);
    let number = term.system.to_string();
    let subject = Some(text(usage::key(&term.system))?);
    let tenant = Some(term.tenant().clone());
    let source = |step: Step| {
        policy
            .step(step)
            .map_or_else(String::new, |r| r.source().to_owned())
    };
    // 1. the policy's notice time before the end (one month, 002 art. 14):
    // notify the tenant and the management unit
    if term.notice_sent_at.is_none()
        && let Some(notice_on) = term.notice_on(policy, cal)?
        && today >= notice_on
        && today <= term.expires_on
    {
        term.notice_sent_at = Some(now);
        let alarm = Alarm::new(
            AlarmId::new(format!(
                "usage-expiring-{number}-{}",
                term.expires_on.format("%Y%m%d")
            ))
            .map_err(WorkflowError::invalid)?,
            now,
            AlarmLevel::Minor,
            text(format!(
                "资源使用期满前通知（{}，依据 {}）",
                policy.title(),
                source(Step::UsageRenewalNotice)
            ))?,
            text(format!(
                "信息系统 {number} 的云资源使用期将于 {} 届满；如需继续使用，请在届满前提出延期申请。",
                term.expires_on
            ))?,
        )
        .about(AlarmCategory::UsageExpiring, tenant, subject);
        if commit(store, &term, rev, Some(&alarm), "usage.notice", now).await? {
            report.notices_sent += 1;
        }
        return Ok(());
    }
    // 2. over, and no extension asked for: expired; the forced offline waits
    // for the management unit's approval (`usage::approve_offline`), which
    // starts its window (15 working days, 002 art. 14)
    if term.expired_at.is_none()
        && term.extension_requested.is_none()
        && now >= end_of_day(term.expires_on)
    {
        term.expired_at = Some(now);
        let then = match policy.step(Step::ForcedOfflineAfterExpiry) {
            Some(rule) => {
                let p = rule.period();
                let unit = match p.unit() {
                    yunshu_domain::calendar::Unit::WorkingDays => "个工作日",
                    yunshu_domain::calendar::Unit::NaturalDays => "天",
                    yunshu_domain::calendar::Unit::Months => "个月",
                    yunshu_domain::calendar::Unit::Years => "年",
                };
                format!("经主管部门批准后 {}{unit}内强制下线并备份数据", p.amount())
            }
            None => "请办理延期或退出手续".to_owned(),
        };
        let alarm = Alarm::new(
            AlarmId::new(format!(
                "usage-expired-{number}-{}",
                term.expires_on.format("%Y%m%d")
            ))
            .map_err(WorkflowError::invalid)?,
            now,
            AlarmLevel::Major,
            text(format!(
                "资源使用期已满且未申请延期（{}，依据 {}）",
                policy.title(),
                source(Step::UsagePeriod)
            ))?,
            text(format!(
                "信息系统 {number} 的云资源使用期已于 {} 届满且未申请延期，{then}。",
                term.expires_on
            ))?,
        )
        .about(AlarmCategory::UsageExpired, tenant, subject);
        if commit(store, &term, rev, Some(&alarm), "usage.expire", now).await? {
            report.expired += 1;
        }
        return Ok(());
    }
    // 3. the approved window is over with still no extension asked for:
    // offline
    if let Some(due) = term.offline_due
        && term.extension_requested.is_none()
        && now >= end_of_day(due)
    {
        term.offline_at = Some(now);
        term.backups_kept_until = policy
            .last_day(Step::OfflineBackupRetention, today, cal)
            .map_err(WorkflowError::invalid)?;
        if commit(store, &term, rev, None, "usage.force_offline", now).await? {
            report.taken_offline += 1;
        }
    }
    Ok(())
}

/// Writes `term` (compared on `rev`) and raises `alarm` with it, audited.
/// Returns false when someone else changed the term first.
async fn commit(
    store: &dyn Store,
    term: &UsageTerm,
    rev: Revision,
    alarm: Option<&Alarm>,
    action: &str,
    now: DateTime<Utc>,
) -> Result<bool, WorkflowError> {
    let key = usage::key(&term.system);
    let mut txn = Txn::new()
        .when_mod_revision(key.clone(), rev)
        .put(key.clone(), records::encode(term));
    if let Some(a) = alarm {
        txn = alarms::raise_in(txn, a);
    }
    let draft = super::system_audit_draft(
        &component(),
        action,
        &key,
        &format!("expires_on {}", term.expires_on),
        now,
    )?;
    match audit::append(store, draft, txn)
        .await
        .map_err(WorkflowError::store("usage term write"))?
    {
        Appended::Committed { .. } => Ok(true),
        Appended::Conflict => Ok(false),
    }
}
