//! The end of an exited system's data retention (002 art. 13: "所涉及的数据资源
//! 和日志应保留 3 个月以备政府监管部门监管审计需要"; 000 art. 16: "做好相关数据、
//! 文档等资源移交和清除工作"). After the exit is decided and the service is
//! terminated (servers powered off: `exited`), the system's disks, backups and
//! logs stay until the policy's `data_retention` is over; then the order moves
//! to `purged`, which empties the system's desired state, so the reconciler
//! deletes the resources.
//!
//! Owns when a purge may happen: by itself on the due date ([`purge_due`],
//! called by the timers), or earlier only by an explicit decision of the
//! management unit with a reason ([`early`], audited as `order.purge_early`).
//! A policy without `data_retention` (Datong 000, Beijing 004) keeps nothing
//! after the reclaim: the purge is due at once.

use chrono::{DateTime, NaiveDate, Utc};
use yunshu_auth::Principal;
use yunshu_domain::Text;
use yunshu_domain::calendar::Step;
use yunshu_domain::order::OrderState;

use super::WorkflowError;
use super::orders::{self, Loaded, OrderTrack};

/// Whether the data retention of an exited order `track` is over at `now`:
/// `Ok` when a purge is due, or the last day data is kept (`None` when not
/// known yet: the reclaim is not done, or the calendar could not say).
pub fn retention_over(track: &OrderTrack, now: DateTime<Utc>) -> Result<(), Option<NaiveDate>> {
    match &track.current {
        None => Ok(()),
        Some(c) if c.step == Step::DataRetention => match &c.deadline {
            Some(d) if now >= d.due_at() => Ok(()),
            Some(d) => Err(Some(d.due_date)),
            None => Err(None),
        },
        Some(_) => Err(None),
    }
}

/// The refusal of a purge while the data is kept.
pub(crate) fn running(id: &str, until: Option<NaiveDate>) -> WorkflowError {
    WorkflowError::RetentionRunning {
        id: id.to_owned(),
        until,
    }
}

/// Purges exited order `id` before its data retention is over: an explicit
/// decision of the management unit (`order_approve`), with `reason`, audited
/// as `order.purge_early` in the same transaction as the move.
///
/// Errors: `ORDER_NOT_FOUND`; `FORBIDDEN`; `ORDER_TRANSITION_FORBIDDEN` when
/// the order is not `exited`; `ORDER_CONFLICT` on a lost race.
pub async fn early(
    store: &dyn yunshu_store::Store,
    caller: &Principal,
    id: &str,
    reason: Text,
    now: DateTime<Utc>,
) -> Result<Loaded, WorkflowError> {
    orders::transition_as(
        store,
        caller,
        id,
        OrderState::Purged,
        Some(reason),
        now,
        orders::Purge::Early,
    )
    .await
}

/// Purges `loaded` (exited, its retention over) as `caller` (the timers):
/// the due date has come. `Ok(false)` when it is not due.
pub async fn purge_due(
    store: &dyn yunshu_store::Store,
    caller: &Principal,
    loaded: &Loaded,
    now: DateTime<Utc>,
) -> Result<bool, WorkflowError> {
    if loaded.order.state() != OrderState::Exited || retention_over(&loaded.track, now).is_err() {
        return Ok(false);
    }
    let reason =
        Text::new("数据保留期满，按期清除（002 art. 13）").map_err(WorkflowError::invalid)?;
    orders::transition_as(
        store,
        caller,
        loaded.order.id().as_str(),
        OrderState::Purged,
        Some(reason),
        now,
        orders::Purge::WhenDue,
    )
    .await?;
    Ok(true)
}
