//! The audit log over HTTP: list and verify. Every audited change writes its
//! entry in the same store transaction as the change (`yunshu_store::audit`).

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use yunshu_store::PageRequest;
use yunshu_store::audit::{self, AuditDraft};

use super::{ApiError, ApiQuery};
use crate::AppState;
use crate::auth::Principal;
use yunshu_domain::user::Permission;

/// An audit draft for `action` on `target` by `actor` (`user:…` or `system:…`).
pub(crate) fn audit_draft(
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Return entries after this cursor (the previous page's `next`).
    pub after: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Audit entries in sequence order.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<yunshu_domain::audit::AuditEntry>,
    pub next: Option<String>,
}

/// `GET /api/v1/audit`: the audit log in sequence order, for auditors
/// (安全审计员). The platform admin cannot read it: whoever administers the
/// system must not also audit it (separation of duties, 003 §3.2.2.15).
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditQuery),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "One page of the audit log", body = AuditPage),
        (status = 400, description = "Malformed query", body = crate::api::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::api::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::api::ErrorBody),
    )
)]
pub(crate) async fn audit_list(
    caller: Principal,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require(Permission::AuditRead, None)?;
    let (items, next) = audit::list(
        &*state.store,
        PageRequest {
            after: q.after,
            limit: q.limit.unwrap_or(100).min(1000),
        },
    )
    .await?;
    Ok(Json(AuditPage { items, next }))
}

/// `GET /api/v1/audit/verify`: walks the hash chain.
#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    tag = "audit",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The result of walking the hash chain", body = crate::api::openapi::VerificationDoc),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::api::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::api::ErrorBody),
    )
)]
pub(crate) async fn audit_verify(
    caller: Principal,
    State(state): State<AppState>,
) -> Result<Json<audit::Verification>, ApiError> {
    caller.require(Permission::AuditRead, None)?;
    Ok(Json(audit::verify(&*state.store).await?))
}
