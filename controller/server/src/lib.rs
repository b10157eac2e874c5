//! The yunshu controller process: the HTTP API (`/api/v1`), operational endpoints
//! (`/healthz`, `/readyz`, `/metrics`), and — in later issues — the work-order
//! workflow, the scheduler and the reconciler.
//!
//! Handlers never call drivers; the reconciler never sees HTTP types (STYLE.md).

pub mod api;
pub mod demo;
pub mod metrics;
pub mod readiness;
mod serve;

pub use serve::{ServeConfig, ServeError, serve};

use std::sync::Arc;

use yunshu_store::Store;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub readiness: readiness::Readiness,
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let readiness = readiness::Readiness::new(store.backend());
        Self {
            store,
            readiness,
            metrics: Arc::new(metrics::Metrics::new()),
        }
    }
}

/// Name and version of this build, as `/api/v1/version` and the logs report them.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
