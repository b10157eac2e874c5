//! Operational endpoints for SREs and Kubernetes probes.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

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

pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
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
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
