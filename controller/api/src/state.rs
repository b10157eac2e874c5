//! The state every handler can reach: the store, readiness, metrics, the driver
//! PKI once loaded, the admin token's hash, the capacity figures the leader
//! publishes, and the signals between the API and the rest of the process.

use std::sync::{Arc, OnceLock};

use axum::http::StatusCode;
use yunshu_drivers::DriverPki;
use yunshu_store::Store;
use yunshu_workflow::capacity::SharedSnapshot;

use crate::error::ApiError;
use crate::{metrics, readiness};

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub readiness: readiness::Readiness,
    pub metrics: Arc<metrics::Metrics>,
    /// Loaded once the store answers (an etcd still starting must not stop the
    /// server from serving `/healthz`).
    pub pki: Arc<OnceLock<Arc<DriverPki>>>,
    /// SHA-256 of the platform admin bearer token; `None` disables admin endpoints.
    pub admin_token_sha256: Option<String>,
    /// SHA-256 of the token Prometheus presents for `/metrics`; `None`: only
    /// signed-in callers who may see capacity read the metrics.
    pub metrics_token_sha256: Option<String>,
    /// Poked when a driver registers or renews, so it is checked at once.
    pub driver_changed: Arc<tokio::sync::Notify>,
    /// The capacity figures the reconciler publishes while this replica leads;
    /// a follower serves the last figures it had (`leader: false`).
    pub capacity: SharedSnapshot,
    /// Poked by `POST /api/v1/admin/resync`: the leader's reconciler re-checks
    /// every resource and system now instead of at its next interval.
    pub resync: Arc<tokio::sync::Notify>,
    /// Set once the server begins to stop: open event streams end on it, so a
    /// graceful shutdown does not wait for browsers to go away.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// Rate limits and hashing slots in front of sign-in.
    pub login_gate: Arc<crate::login_gate::LoginGate>,
    /// Open event streams per caller (actor), bounded.
    pub streams: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    /// Whether `X-Forwarded-For` names the client (behind a proxy).
    pub trust_forwarded_for: bool,
    /// The browser reaches the API over HTTPS: the session cookie is
    /// `__Host-` and `Secure`.
    pub secure_cookies: bool,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, admin_token_sha256: Option<String>) -> Self {
        let readiness = readiness::Readiness::new(store.backend());
        Self {
            store,
            readiness,
            metrics: Arc::new(metrics::Metrics::new()),
            pki: Arc::new(OnceLock::new()),
            admin_token_sha256,
            metrics_token_sha256: None,
            driver_changed: Arc::new(tokio::sync::Notify::new()),
            capacity: Arc::default(),
            resync: Arc::new(tokio::sync::Notify::new()),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
            login_gate: Arc::default(),
            streams: Arc::default(),
            trust_forwarded_for: false,
            secure_cookies: false,
        }
    }

    /// The driver PKI, or 503 while the store has not answered yet.
    pub fn drivers(&self) -> Result<&Arc<DriverPki>, ApiError> {
        self.pki.get().ok_or_else(|| {
            ApiError::refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "DRIVERS_NOT_READY",
                "The controller is still starting (waiting for its store); retry shortly.",
                "控制器正在启动（等待数据存储），请稍后重试。",
            )
        })
    }
}
