//! Readiness: is the store answering? This is the state `/readyz` reports and
//! the gauge `yunshu_store_ready` shows; the server's monitor probes the store
//! and records each outcome here.

use std::sync::{Arc, RwLock};

/// The current readiness, shared by the monitor and `/readyz`. Cheap to clone.
#[derive(Clone)]
pub struct Readiness {
    inner: Arc<RwLock<Status>>,
}

/// What `/readyz` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub ready: bool,
    pub store: &'static str,
    /// Why not ready (the last probe error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Failed probes in a row.
    pub failures: u32,
}

impl Readiness {
    /// Not ready until the first probe of `store` (the backend's name) answers.
    pub fn new(store: &'static str) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Status {
                ready: false,
                store,
                reason: Some("the store has not been probed yet".into()),
                failures: 0,
            })),
        }
    }

    pub fn status(&self) -> Status {
        self.inner
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Records the outcome of one probe (`Err` carries the reason) and returns
    /// the status after it.
    pub fn record(&self, outcome: Result<(), String>) -> Status {
        let mut status = self.inner.write().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(()) => {
                status.ready = true;
                status.reason = None;
                status.failures = 0;
            }
            Err(reason) => {
                status.ready = false;
                status.reason = Some(reason);
                status.failures = status.failures.saturating_add(1);
            }
        }
        status.clone()
    }
}
