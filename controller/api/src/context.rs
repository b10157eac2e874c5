//! What handlers share besides the request itself: "now" (the request's clock,
//! which tests inject), the working-day calendar in force, and the audit entry
//! of a handler that writes a record itself.

use axum::extract::Extension;
use chrono::{DateTime, Utc};
use yunshu_domain::calendar::Calendar;
use yunshu_store::audit::AuditDraft;
use yunshu_workflow::{self as workflow, Clock};

use crate::error::ApiError;
use crate::state::AppState;
use crate::workflow_error::workflow_error;

/// The request's clock (tests inject one), or the system clock.
pub fn now_of(clock: Option<Extension<Clock>>) -> DateTime<Utc> {
    clock.map(|Extension(c)| c).unwrap_or_default().now()
}

/// The working-day calendar in force (shipped years plus the operator's).
pub async fn calendar(state: &AppState) -> Result<Calendar, ApiError> {
    Ok(workflow::rules::load(&*state.store)
        .await
        .map_err(workflow_error)?
        .calendar)
}

/// An audit draft for `action` on `target` by `actor` (`user:…` or `system:…`).
pub fn audit_draft(
    actor: &str,
    action: &str,
    target: &str,
    detail: Option<String>,
) -> Result<AuditDraft, ApiError> {
    let invalid =
        |e: &dyn std::fmt::Display| ApiError::internal(std::io::Error::other(e.to_string()));
    Ok(AuditDraft {
        at: Utc::now(),
        actor: actor.parse().map_err(|e| invalid(&e))?,
        action: yunshu_domain::audit::AuditAction::new(action).map_err(|e| invalid(&e))?,
        target: yunshu_domain::Text::new(target).map_err(|e| invalid(&e))?,
        detail: detail
            .map(yunshu_domain::Text::new)
            .transpose()
            .map_err(|e| invalid(&e))?,
    })
}
