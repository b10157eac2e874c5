//! Operational endpoints for SREs and Kubernetes probes.

use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use yunshu_auth::Principal;
use yunshu_domain::user::Permission;

use crate::error::ApiError;

use crate::readiness::Status;
use crate::state::AppState;

/// Liveness: the process serves HTTP. Never touches the store, so a store outage
/// does not get the pod restarted (readiness covers that).
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: 200 when the store answered the last probe, 503 with the reason
/// otherwise.
pub(crate) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Status>) {
    let status = state.readiness.status();
    let code = if status.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(status))
}

/// Prometheus metrics. They carry every provider's capacity, so they need a
/// credential (issue 16, low): the scrape token (`yunshu serve
/// --metrics-token-file`, `Authorization: Bearer …`), or a caller who may see
/// capacity or runs the platform (`capacity_read`, `settings_manage`).
pub(crate) async fn metrics(
    State(state): State<AppState>,
    request: Request,
) -> Result<impl IntoResponse, ApiError> {
    let (mut parts, _) = request.into_parts();
    let scraper = state.metrics_token_sha256.as_deref().is_some_and(|want| {
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|token| {
                yunshu_pki::constant_time_eq(
                    yunshu_pki::sha256_hex(token.as_bytes()).as_bytes(),
                    want.as_bytes(),
                )
            })
    });
    if !scraper {
        let caller = Principal::from_request_parts(&mut parts, &state).await?;
        if !caller.can(Permission::SettingsManage, None) {
            caller.require(Permission::CapacityRead, None)?;
        }
    }
    let status = state.readiness.status();
    state.metrics.store_ready.set(i64::from(status.ready));
    if status.ready
        && let Ok(rev) = state.store.revision().await
    {
        state.metrics.store_revision.set(rev);
    }
    {
        let snapshot = state.capacity.read().unwrap_or_else(|e| e.into_inner());
        state.metrics.observe_capacity(&snapshot);
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    ))
}
