//! The work-order workflow (工单流程) over the store: information systems and their
//! numbers, work orders from draft to purge, who may move an order where, and the
//! deadline of the step an order is in (SPEC §2–3); with them the records
//! everyone reads about what the orders asked for and got — what a system's
//! orders ask for ([`desired`]), how its resources are doing ([`resources`]),
//! capacity and expansion orders ([`capacity`]), alarms, usage periods, costs,
//! catalogs and rules — and the demo data set ([`demo`]).
//!
//! Owns: allocating system numbers (tenant code + 001, 002 …, 003 §2.2.5 (6)),
//! scoping every read to what the caller may see (another tenant's object is "not
//! found", never "forbidden", SPEC §1), the permission each transition needs,
//! writing every change together with its audit entry in one store transaction
//! compared on the record's revision (optimistic concurrency), and starting each
//! step's deadline clock.
//!
//! Must not: speak HTTP (the `api` crate parses requests and maps
//! [`WorkflowError`] to statuses), call drivers or create real resources (the
//! reconciler provisions the *approved* quantities it reads from the store and
//! is the only writer of resources, their status and expansion orders), or
//! read the wall clock deep inside (callers pass `now`, see [`Clock`]). The
//! OpenAPI schemas of the types the API returns as they are derive only with
//! the `openapi` feature, which the `api` crate turns on.

pub mod alarms;
pub mod capacity;
pub mod catalogs;
mod clock;
pub mod cost;
pub mod deadline;
pub mod demo;
pub mod desired;
mod error;
pub mod expansion;
pub mod maintenance;
pub mod offers;
pub mod order_catalog;
pub mod orders;
pub mod org_report;
pub mod purge;
pub mod reclaim;
pub mod resources;
pub mod rules;
pub mod suspension;
pub mod systems;
pub mod test_period;
pub mod timers;
pub mod usage;

pub use clock::Clock;
pub use deadline::PolicyName;
pub use error::WorkflowError;
pub use yunshu_store::page::{Page, limit as page_limit};

use chrono::{DateTime, Utc};
use yunshu_auth::Principal;
use yunshu_domain::Text;
use yunshu_domain::audit::AuditAction;
use yunshu_store::audit::AuditDraft;

/// The audit entry for `action` on `target` by a component (timers, the
/// reconciler) rather than a person.
pub(crate) fn system_audit_draft(
    component: &yunshu_domain::Actor,
    action: &str,
    target: &str,
    detail: &str,
    at: DateTime<Utc>,
) -> Result<AuditDraft, WorkflowError> {
    Ok(AuditDraft {
        at,
        actor: component.clone(),
        action: AuditAction::new(action).map_err(WorkflowError::invalid)?,
        target: Text::new(target).map_err(WorkflowError::invalid)?,
        detail: Some(Text::new(detail).map_err(WorkflowError::invalid)?),
    })
}

/// The audit entry for `action` on `target` by the caller at `now`.
fn audit_draft(
    caller: &Principal,
    action: &str,
    target: &str,
    detail: Option<String>,
    now: DateTime<Utc>,
) -> Result<AuditDraft, WorkflowError> {
    Ok(AuditDraft {
        at: now,
        actor: caller.actor.clone(),
        action: AuditAction::new(action).map_err(WorkflowError::invalid)?,
        target: Text::new(target).map_err(WorkflowError::invalid)?,
        detail: detail
            .map(|d| Text::new(d.chars().take(2000).collect::<String>()))
            .transpose()
            .map_err(WorkflowError::invalid)?,
    })
}
