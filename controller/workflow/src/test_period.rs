//! Extending a work order's test period (延长测试时间, seed 002 art. 10:
//! "测试时间一般不超过 15 天；经政务云平台主管部门同意，确有必要的可以延长测试
//! 时间") with a recorded approval: who, why and until when, kept on the step's
//! clock and audited in the same transaction as the order.
//!
//! Owns the checks of an extension: only the management unit's approver
//! (`order_approve`), only while the order's test period runs, only under a
//! policy whose test period names `extension_max`, and never beyond that many
//! of the step's units past the original due date. The deadline arithmetic is
//! `yunshu_domain::calendar`'s.

use chrono::{DateTime, NaiveDate, Utc};
use yunshu_auth::Principal;
use yunshu_domain::Text;
use yunshu_domain::calendar::Step;
use yunshu_domain::user::Permission;

use super::deadline::StepExtension;
use super::orders::{self, Loaded};
use super::{WorkflowError, rules};

/// Moves the due date of `id`'s running test period to `until`, approved by
/// `caller` for `reason`.
///
/// Errors: `ORDER_NOT_FOUND`; `FORBIDDEN` without `order_approve`;
/// `TEST_PERIOD_NOT_RUNNING` when the order is not in its test period;
/// `TEST_PERIOD_NOT_EXTENDABLE` when its policy allows no extension;
/// `TEST_PERIOD_EXTENSION_REFUSED` when `until` is not later than the current
/// due date or beyond the policy's bound; `ORDER_CONFLICT` on a lost race.
/// A refusal writes nothing.
pub async fn extend(
    store: &dyn yunshu_store::Store,
    caller: &Principal,
    id: &str,
    until: NaiveDate,
    reason: Text,
    now: DateTime<Utc>,
) -> Result<Loaded, WorkflowError> {
    let mut loaded = orders::order_get(store, caller, id).await?;
    let tenant = loaded.order.tenant().clone();
    if !caller.can(Permission::OrderApprove, Some(&tenant)) {
        return Err(WorkflowError::Forbidden);
    }
    let not_running = || WorkflowError::TestPeriodNotRunning { id: id.to_owned() };
    let clock = loaded.track.current.as_ref().ok_or_else(not_running)?;
    let deadline = match (&clock.deadline, clock.step) {
        (Some(d), Step::TestPeriod) => d.clone(),
        _ => return Err(not_running()),
    };
    let rules = rules::load(store).await?;
    let policy =
        rules
            .policy(&loaded.track.policy)
            .ok_or_else(|| WorkflowError::PolicyUnknown {
                name: loaded.track.policy.to_string(),
            })?;
    let not_extendable = || WorkflowError::TestPeriodNotExtendable {
        id: id.to_owned(),
        policy: loaded.track.policy.to_string(),
    };
    let rule = policy.step(Step::TestPeriod).ok_or_else(not_extendable)?;
    let original_due = clock
        .extensions
        .first()
        .map_or(deadline.due_date, |e| e.previous_due);
    let latest = rule
        .extension_limit(original_due, &rules.calendar)
        .map_err(WorkflowError::invalid)?
        .ok_or_else(not_extendable)?;
    if until <= deadline.due_date || until > latest {
        return Err(WorkflowError::TestPeriodExtensionRefused {
            id: id.to_owned(),
            current_due: deadline.due_date,
            latest,
        });
    }
    let at = now.max(loaded.order.updated_at());
    let detail = format!(
        "test_period {} -> {until} (latest {latest}): {reason}",
        deadline.due_date
    );
    if let Some(current) = loaded.track.current.as_mut() {
        current.extensions.push(StepExtension {
            by: caller.actor.clone(),
            at,
            reason,
            previous_due: deadline.due_date,
            until,
        });
        if let Some(d) = current.deadline.as_mut() {
            d.due_date = until;
        }
    }
    orders::save(
        store,
        caller,
        &mut loaded,
        "order.test_period_extend",
        Some(detail),
        at,
    )
    .await?;
    Ok(loaded)
}
