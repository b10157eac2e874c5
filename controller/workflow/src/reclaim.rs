//! The onboarding order's own exit path (live → exit requested → exited)
//! timed like an exit order: once the management unit has decided the exit
//! (`exited`), the provider's reclaim runs on the policy's `exit_reclaim`
//! clock (000 art. 16 "2 个工作日内收回云资源并终止计费"; 002 art. 13 "3 个工作日
//! 内终止有关服务") until the reconciler sees the system has nothing left; then
//! the data retention starts (002 art. 13), as after an exit order's `exited`.
//!
//! Owns [`finish`], which the reconciler calls; it does not look at resources.

use chrono::{DateTime, Utc};
use yunshu_auth::Principal;
use yunshu_domain::calendar::Step;
use yunshu_domain::order::{OrderKind, OrderState};
use yunshu_domain::user::Permission;

use super::orders::{self, Loaded};
use super::{WorkflowError, deadline, rules};

/// Whether `loaded` waits for its reclaim: an onboarding order exited whose
/// `exit_reclaim` clock runs.
pub fn waits(loaded: &Loaded) -> bool {
    loaded.order.kind() == OrderKind::Onboarding
        && loaded.order.state() == OrderState::Exited
        && loaded
            .track
            .current
            .as_ref()
            .is_some_and(|c| c.step == Step::ExitReclaim)
}

/// Records that the resources of exited onboarding order `id` are reclaimed:
/// closes its `exit_reclaim` step at `now` and starts the data retention.
/// `Ok(false)` when the order does not wait for a reclaim (already recorded,
/// another kind or state): nothing is written.
///
/// Errors: `ORDER_NOT_FOUND`; `FORBIDDEN` without `order_approve`;
/// `ORDER_CONFLICT` on a lost race.
pub async fn finish(
    store: &dyn yunshu_store::Store,
    caller: &Principal,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, WorkflowError> {
    let mut loaded = orders::order_get(store, caller, id).await?;
    let tenant = loaded.order.tenant().clone();
    if !caller.can(Permission::OrderApprove, Some(&tenant)) {
        return Err(WorkflowError::Forbidden);
    }
    if !waits(&loaded) {
        return Ok(false);
    }
    let rules = rules::load(store).await?;
    let policy =
        rules
            .policy(&loaded.track.policy)
            .ok_or_else(|| WorkflowError::PolicyUnknown {
                name: loaded.track.policy.to_string(),
            })?;
    let at = now.max(loaded.order.updated_at());
    let track = &mut loaded.track;
    if let Some(mut done) = track.current.take() {
        done.finished_at = Some(at);
        track.past.push(done);
    }
    track.current = Some(deadline::step_start(
        policy,
        &rules.calendar,
        Step::DataRetention,
        at,
    ))
    .filter(|c| c.deadline.is_some() || c.unknown.is_some());
    orders::save(
        store,
        caller,
        &mut loaded,
        "order.reclaimed",
        Some("exit_reclaim done: the system has nothing left".to_owned()),
        at,
    )
    .await?;
    Ok(true)
}
