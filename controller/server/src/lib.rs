//! The yunshu controller process: the HTTP API (`/api/v1`), operational endpoints
//! (`/healthz`, `/readyz`, `/metrics`), and — in later issues — the work-order
//! workflow, the scheduler and the reconciler.
//!
//! Handlers never call drivers; the reconciler never sees HTTP types (STYLE.md).

pub mod api;
mod demo;

pub mod metrics;
pub mod readiness;

mod serve;
#[cfg(test)]
mod test_app;

pub use serve::{ServeConfig, ServeError, serve};

use std::sync::Arc;

use yunshu_store::Store;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub readiness: readiness::Readiness,
    pub metrics: Arc<metrics::Metrics>,
    /// Loaded once the store answers (an etcd still starting must not stop the
    /// server from serving `/healthz`).
    pub pki: Arc<std::sync::OnceLock<Arc<yunshu_drivers::DriverPki>>>,
    /// SHA-256 of the platform admin bearer token; `None` disables admin endpoints.
    pub admin_token_sha256: Option<String>,
    /// Poked when a driver registers or renews, so it is checked at once.
    pub driver_changed: Arc<tokio::sync::Notify>,
    /// The capacity figures the reconciler publishes while this replica leads;
    /// a follower serves the last figures it had (`leader: false`).
    pub capacity: yunshu_workflow::capacity::SharedSnapshot,
    /// Poked by `POST /api/v1/admin/resync`: the leader's reconciler re-checks
    /// every resource and system now instead of at its next interval.
    pub resync: Arc<tokio::sync::Notify>,
    /// Set once the server begins to stop: open event streams end on it, so a
    /// graceful shutdown does not wait for browsers to go away.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, admin_token_sha256: Option<String>) -> Self {
        let readiness = readiness::Readiness::new(store.backend());
        Self {
            store,
            readiness,
            metrics: Arc::new(metrics::Metrics::new()),
            pki: Arc::new(std::sync::OnceLock::new()),
            admin_token_sha256,
            driver_changed: Arc::new(tokio::sync::Notify::new()),
            capacity: Arc::default(),
            resync: Arc::new(tokio::sync::Notify::new()),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }
}

impl AppState {
    /// The driver PKI, or 503 while the store has not answered yet.
    pub fn drivers(&self) -> Result<&Arc<yunshu_drivers::DriverPki>, api::ApiError> {
        self.pki.get().ok_or_else(|| {
            api::ApiError::refused(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "DRIVERS_NOT_READY",
                "The controller is still starting (waiting for its store); retry shortly.",
                "控制器正在启动（等待数据存储），请稍后重试。",
            )
        })
    }
}

/// Name and version of this build, as `/api/v1/version` and the logs report them.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
