//! The audit log over HTTP: list and verify. Every audited change writes its
//! entry in the same store transaction as the change (`yunshu_store::audit`).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::user::Permission;
use yunshu_store::PageRequest;
use yunshu_store::audit::{self};

use crate::error::ApiError;
use crate::json::ApiQuery;
use crate::state::AppState;

/// Mirror of `yunshu_store::audit::Verification`.
#[derive(utoipa::ToSchema)]
#[schema(as = AuditVerification)]
#[allow(dead_code)]
pub struct VerificationDoc {
    /// Entries read.
    entries: u64,
    /// True when every entry hashes right, links to its predecessor, sequence
    /// numbers have no gap, and the head names the last entry.
    intact: bool,
    /// The first sequence number where the chain breaks, and why.
    broken_at: Option<u64>,
    reason: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Return entries after this cursor (the previous page's `next`).
    pub after: Option<String>,
    pub limit: Option<usize>,
    /// Exactly this actor, e.g. `user:sun` or `system:timers`.
    pub actor: Option<String>,
    /// Actions starting with this, e.g. `order.` or `alarm.acknowledge`.
    pub action: Option<String>,
    /// Targets starting with this, e.g. `work_order/WO-20251009-`.
    pub target: Option<String>,
    /// At or after this instant (RFC 3339).
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Before this instant (RFC 3339).
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

impl AuditQuery {
    fn filter(&self) -> AuditFilter {
        AuditFilter {
            actor: self.actor.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            from: self.from,
            until: self.until,
        }
    }
}

/// Which entries to return; every given condition must hold.
#[derive(Debug, Default)]
struct AuditFilter {
    /// Exactly this actor, e.g. `user:sun` or `system:timers`.
    actor: Option<String>,
    /// Actions starting with this, e.g. `order.` or `alarm.acknowledge`.
    action: Option<String>,
    /// Targets starting with this, e.g. `work_order/WO-20251009-`.
    target: Option<String>,
    /// At or after this instant (RFC 3339).
    from: Option<chrono::DateTime<chrono::Utc>>,
    /// Before this instant (RFC 3339).
    until: Option<chrono::DateTime<chrono::Utc>>,
}

impl AuditFilter {
    fn keeps(&self, e: &yunshu_domain::audit::AuditEntry) -> bool {
        self.actor
            .as_ref()
            .is_none_or(|a| e.actor.to_string() == *a)
            && self
                .action
                .as_ref()
                .is_none_or(|a| e.action.as_str().starts_with(a.as_str()))
            && self
                .target
                .as_ref()
                .is_none_or(|t| e.target.as_str().starts_with(t.as_str()))
            && self.from.is_none_or(|f| e.at >= f)
            && self.until.is_none_or(|u| e.at < u)
    }
}

/// Entries after `after` that `filter` keeps, at most `limit` (0 = all), and the
/// cursor of the next page.
async fn filtered(
    store: &dyn yunshu_store::Store,
    filter: &AuditFilter,
    mut after: Option<String>,
    limit: usize,
) -> Result<(Vec<yunshu_domain::audit::AuditEntry>, Option<String>), ApiError> {
    let mut out = Vec::new();
    loop {
        let (items, next) = audit::list(
            store,
            PageRequest {
                after: after.clone(),
                limit: 1000,
            },
        )
        .await?;
        let count = items.len();
        for (i, e) in items.into_iter().enumerate() {
            if !filter.keeps(&e) {
                continue;
            }
            out.push(e);
            if limit > 0 && out.len() == limit {
                let more = i + 1 < count || next.is_some();
                // The cursor is the store key of the last entry returned.
                let cursor = more.then(|| audit::cursor_of(out.last().map_or(0, |e| e.seq)));
                return Ok((out, cursor));
            }
        }
        match next {
            Some(n) => after = Some(n),
            None => return Ok((out, None)),
        }
    }
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
        (status = 400, description = "Malformed query", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn audit_list(
    caller: Principal,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require(Permission::AuditRead, None)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let (items, next) = filtered(&*state.store, &q.filter(), q.after, limit).await?;
    Ok(Json(AuditPage { items, next }))
}

/// A text cell a spreadsheet will not run: a cell starting with `=`, `+`,
/// `-`, `@`, tab or carriage return is a formula to Excel and WPS, and a
/// failed-login target is whatever an anonymous caller typed (issue 16, low).
/// The leading apostrophe is the spreadsheet convention for "text".
fn csv_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// `GET /api/v1/audit/export`: every entry the filter keeps (`after` and `limit`
/// are ignored), as CSV with the hashes, so an outside auditor can re-check the
/// chain (seq, prev_hash, hash). A text cell that would start with `=`, `+`,
/// `-`, `@`, tab or CR gets a leading `'` (spreadsheets would run it as a
/// formula): strip that one apostrophe before re-hashing such a row.
#[utoipa::path(
    get,
    path = "/api/v1/audit/export",
    tag = "audit",
    params(AuditQuery),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "CSV: seq,at,actor,action,target,detail,prev_hash,hash", content_type = "text/csv", body = String),
        (status = 400, description = "Malformed query", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: auditors only", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn audit_export(
    caller: Principal,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    caller.require(Permission::AuditRead, None)?;
    let (items, _) = filtered(&*state.store, &q.filter(), None, 0).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "seq",
        "at",
        "actor",
        "action",
        "target",
        "detail",
        "prev_hash",
        "hash",
    ])
    .map_err(ApiError::internal)?;
    for e in &items {
        w.write_record([
            e.seq.to_string(),
            e.at.to_rfc3339(),
            csv_cell(&e.actor.to_string()),
            csv_cell(e.action.as_str()),
            csv_cell(e.target.as_ref()),
            csv_cell(
                &e.detail
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ),
            e.prev_hash.to_string(),
            e.hash.to_string(),
        ])
        .map_err(ApiError::internal)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ApiError::internal(e.into_error()))?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"yunshu-audit.csv\"",
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /api/v1/audit/verify`: walks the hash chain.
#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    tag = "audit",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The result of walking the hash chain", body = VerificationDoc),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN (or a missing/wrong X-CSRF-Token)", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn audit_verify(
    caller: Principal,
    State(state): State<AppState>,
) -> Result<Json<audit::Verification>, ApiError> {
    caller.require(Permission::AuditRead, None)?;
    Ok(Json(audit::verify(&*state.store).await?))
}

#[cfg(test)]
mod csv_tests {
    use super::csv_cell;

    /// Security issue (low): CSV formula injection in the audit export.
    #[test]
    fn formula_cells_are_exported_as_text() {
        for formula in [
            "=HYPERLINK(\"http://x\")",
            "+1+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
        ] {
            assert_eq!(csv_cell(formula), format!("'{formula}"));
        }
        assert_eq!(csv_cell("user/wang"), "user/wang");
        assert_eq!(csv_cell("提交 -> 受理"), "提交 -> 受理");
    }
}
