//! The checks, and the one that judges the whole run's error statuses.

mod apply;
mod graph;
mod info;
mod list;
mod watch;

pub(crate) use info::{info, inventory};

use crate::names;
use crate::probe::{Ctx, Fail, SeenStatus};

/// How a check that did not fail ended.
pub(crate) enum Done {
    Passed,
    /// It does not apply to this driver (a kind it does not declare); why.
    Skipped(String),
}

/// Runs the resource check called `name`.
pub(crate) async fn run_resource_check(name: &'static str, ctx: &Ctx<'_>) -> Result<Done, Fail> {
    if let Some(kind) = crate::lifecycle_kind(name) {
        return graph::lifecycle(ctx, kind).await;
    }
    match name {
        names::APPLY_IDEMPOTENT => apply::apply_idempotent(ctx).await,
        names::REAPPLY_SAME_GENERATION_IS_NOOP => apply::reapply_same_generation_is_noop(ctx).await,
        names::APPLY_NEW_GENERATION_UPDATES => apply::apply_new_generation_updates(ctx).await,
        names::STALE_GENERATION_REFUSED => apply::stale_generation_refused(ctx).await,
        names::IDEMPOTENCY_KEY_NOT_REUSED => apply::idempotency_key_not_reused(ctx).await,
        names::DELETE_IDEMPOTENT => apply::delete_idempotent(ctx).await,
        names::GET_UNKNOWN_NOT_FOUND => apply::get_unknown_not_found(ctx).await,
        names::INVALID_SPEC_REJECTED => apply::invalid_spec_rejected(ctx).await,
        names::CONVERGES_TO_RUNNING => apply::converges_to_running(ctx).await,
        names::LIST_COMPLETE_PAGINATED => list::list_complete_paginated(ctx).await,
        names::WATCH_CREATE_UPDATE_DELETE_IN_ORDER => {
            watch::watch_create_update_delete_in_order(ctx).await
        }
        names::WATCH_RESUME_FROM_CURSOR => watch::watch_resume_from_cursor(ctx).await,
        names::DEPENDENCY_MISSING_REFUSED => return graph::dependency_missing_refused(ctx).await,
        names::DELETE_IN_USE_REFUSED => return graph::delete_in_use_refused(ctx).await,
        other => Err(Fail(format!("no such check {other:?}"))),
    }
    .map(|()| Done::Passed)
}

/// `errors_carry_reason`: every status the driver sent in this run had an
/// ErrorInfo reason, so the controller never has to parse message text.
pub(crate) fn errors_carry_reason(seen: &[SeenStatus]) -> Result<(), Fail> {
    let bare: Vec<String> = seen
        .iter()
        .filter(|s| s.reason.is_none())
        .map(|s| format!("{} in {} ({:?})", s.rpc, s.check, s.code))
        .collect();
    if bare.is_empty() {
        return Ok(());
    }
    let shown = bare.iter().take(6).cloned().collect::<Vec<_>>().join(", ");
    Err(Fail(format!(
        "{} of {} error statuses had no ErrorInfo reason in their details: {shown}{}",
        bare.len(),
        seen.len(),
        if bare.len() > 6 { ", …" } else { "" }
    )))
}
