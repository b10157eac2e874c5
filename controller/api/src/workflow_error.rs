//! Workflow refusals as API errors: the one mapping of [`WorkflowError`] to
//! HTTP statuses. Codes and both languages come from the workflow or the
//! domain unchanged; structured detail (every bad row of a catalog upload, the
//! totals a temporary expansion would reach) goes to `details`.

use axum::http::StatusCode;
use yunshu_domain::ErrorCode;
use yunshu_domain::catalog_data::CatalogImportError;
use yunshu_domain::order::OrderError;
use yunshu_workflow::WorkflowError;

use crate::error::ApiError;

/// The one mapping of workflow refusals to HTTP statuses. Codes come from the
/// workflow or the domain unchanged.
pub fn workflow_error(e: WorkflowError) -> ApiError {
    let status = match &e {
        WorkflowError::SystemNotFound { .. } | WorkflowError::OrderNotFound { .. } => {
            StatusCode::NOT_FOUND
        }
        WorkflowError::Forbidden => StatusCode::FORBIDDEN,
        WorkflowError::OrderConflict { .. } | WorkflowError::SystemNumbersExhausted { .. } => {
            StatusCode::CONFLICT
        }
        WorkflowError::SystemNumberBusy { .. } | WorkflowError::Busy => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        WorkflowError::PolicyUnknown { .. } => StatusCode::BAD_REQUEST,
        WorkflowError::PolicyPresetReadOnly { .. }
        | WorkflowError::UsageExtensionRefused { .. }
        | WorkflowError::UsageOfflineRefused { .. }
        | WorkflowError::SystemAlreadySuspended { .. }
        | WorkflowError::SystemNotSuspended { .. }
        | WorkflowError::CatalogBuiltInReadOnly { .. }
        | WorkflowError::EmergencyNotAllowed { .. }
        | WorkflowError::EmergencyNotInPolicy { .. }
        | WorkflowError::TestPeriodNotRunning { .. }
        | WorkflowError::RetentionRunning { .. }
        | WorkflowError::TestPeriodNotExtendable { .. }
        | WorkflowError::TestPeriodExtensionRefused { .. }
        | WorkflowError::ProviderLacksKinds { .. }
        | WorkflowError::OrderItemsUnresolved { .. }
        | WorkflowError::ExpansionRefused { .. }
        | WorkflowError::ExpansionWindowExceeded { .. } => StatusCode::CONFLICT,
        WorkflowError::CatalogNotFound { .. } => StatusCode::NOT_FOUND,
        // acknowledging twice is a state conflict, not bad input
        WorkflowError::Invalid(yunshu_domain::DomainError::Alarm(_)) => StatusCode::CONFLICT,
        WorkflowError::AlarmNotFound { .. } | WorkflowError::UsageTermNotFound { .. } => {
            StatusCode::NOT_FOUND
        }
        WorkflowError::Order(o) => match o {
            // bad input: fix the request and send it again
            OrderError::ReasonRequired { .. } | OrderError::Line(_) => StatusCode::BAD_REQUEST,
            OrderError::LineNotFound { .. } => StatusCode::NOT_FOUND,
            // the order's state does not allow this now
            OrderError::TransitionForbidden { .. }
            | OrderError::NotEditable { .. }
            | OrderError::NotInReview { .. }
            | OrderError::TimeBackwards { .. }
            | OrderError::HistoryInconsistent { .. } => StatusCode::CONFLICT,
        },
        WorkflowError::Invalid(_) => StatusCode::BAD_REQUEST,
        WorkflowError::MaintenanceEndNotAfterStart { .. }
        | WorkflowError::MaintenanceEmergencyReasonRequired => StatusCode::BAD_REQUEST,
        // 409, not 400: the body is well formed and the same window is
        // accepted when announced early enough; it conflicts with the clock.
        WorkflowError::MaintenanceNoticeTooShort { .. }
        | WorkflowError::MaintenanceCancelRefused { .. } => StatusCode::CONFLICT,
        WorkflowError::MaintenanceNotFound { .. } => StatusCode::NOT_FOUND,
        // bad input like any other invalid field: fix the lines and send again
        WorkflowError::OutsideCatalog { .. } => StatusCode::BAD_REQUEST,
        WorkflowError::Store { .. } => {
            return match e {
                WorkflowError::Store { source, .. } => ApiError::from(source),
                other => ApiError::internal(other),
            };
        }
    };
    let details = match &e {
        WorkflowError::Invalid(yunshu_domain::DomainError::CatalogImport(c)) => issues_json(c),
        WorkflowError::ExpansionRefused {
            totals: Some(t), ..
        } => serde_json::to_value(t).unwrap_or_default(),
        WorkflowError::ExpansionWindowExceeded {
            used_days,
            requested_days,
            max_days_in_window,
            window_days,
            ..
        } => serde_json::json!({
            "used_days": used_days,
            "requested_days": requested_days,
            "max_days_in_window": max_days_in_window,
            "window_days": window_days,
        }),
        WorkflowError::ProviderLacksKinds { provider, kinds } => {
            serde_json::json!({"provider": provider, "kinds": kinds})
        }
        WorkflowError::OrderItemsUnresolved { problems } => serde_json::json!({
            "problems": problems
                .iter()
                .map(|(en, zh)| serde_json::json!({"message": en, "message_zh": zh}))
                .collect::<Vec<_>>()
        }),
        WorkflowError::OutsideCatalog { catalog, issues } => {
            serde_json::json!({"catalog": catalog, "issues": issues})
        }
        WorkflowError::MaintenanceNoticeTooShort {
            earliest_start,
            working_days,
            citation,
        } => serde_json::json!({
            "earliest_start": earliest_start,
            "working_days": working_days,
            "source": citation,
        }),
        _ => serde_json::Value::Null,
    };
    ApiError::refused(status, e.code(), e.to_string(), e.message_zh()).with_details(details)
}

/// The per-row problems of a refused import, for `details.issues`.
fn issues_json(e: &CatalogImportError) -> serde_json::Value {
    let issues: Vec<serde_json::Value> = e
        .issues
        .iter()
        .map(|i| {
            serde_json::json!({
                "row": i.row,
                "line": i.line,
                "item_code": i.item_code,
                "field": i.field,
                "code": i.code(),
                "message": i.to_string(),
                "message_zh": i.message_zh(),
            })
        })
        .collect();
    serde_json::json!({ "issues": issues })
}
