//! Keeps `/readyz` true: a background monitor probes the store, retrying with
//! exponential backoff and jitter while it fails, records each outcome in the
//! API's [`Readiness`], and logs each change once (not every probe), so an
//! etcd outage reads as "unavailable since …, recovered after N attempts" in
//! the log rather than a flood.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use yunshu_api::readiness::{Readiness, Status};
use yunshu_store::Store;

/// Probe interval while healthy.
const HEALTHY_INTERVAL: Duration = Duration::from_secs(5);
/// First retry delay while failing; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A probe that takes longer than this counts as a failure.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Probes once now; used at start-up so `/readyz` is right from the first request.
pub async fn probe(readiness: &Readiness, store: &dyn Store) -> Status {
    let result = match tokio::time::timeout(PROBE_TIMEOUT, store.health()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(yunshu_domain::error::chain(&e)),
        Err(_) => Err(format!("the store did not answer within {PROBE_TIMEOUT:?}")),
    };
    readiness.record(result)
}

/// Runs until the task is aborted.
pub async fn monitor(readiness: Readiness, store: Arc<dyn Store>) {
    let mut backoff = MIN_BACKOFF;
    let mut was_ready = readiness.status().ready;
    loop {
        let status = probe(&readiness, &*store).await;
        if status.ready != was_ready || (!status.ready && status.failures == 1) {
            if status.ready {
                tracing::info!(store = status.store, "store reachable again; ready");
            } else {
                tracing::warn!(
                    store = status.store,
                    reason = status.reason.as_deref().unwrap_or(""),
                    "store unavailable; not ready, retrying with backoff"
                );
            }
        } else if !status.ready && status.failures.is_power_of_two() {
            tracing::warn!(
                store = status.store,
                failures = status.failures,
                reason = status.reason.as_deref().unwrap_or(""),
                "store still unavailable"
            );
        }
        was_ready = status.ready;
        let wait = if status.ready {
            backoff = MIN_BACKOFF;
            HEALTHY_INTERVAL
        } else {
            let wait = jitter(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
            wait
        };
        tokio::time::sleep(wait).await;
    }
}

/// ±20 % so that many replicas do not probe a recovering etcd in lockstep.
fn jitter(d: Duration) -> Duration {
    let factor = rand::rng().random_range(0.8..1.2);
    d.mul_f64(factor)
}
