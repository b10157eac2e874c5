//! The background loop that turns BMC state into protocol state: every poll
//! interval (or at once after an apply or delete) it drives each unconverged
//! bare-metal server one step and reports it when `PowerState` matches, and
//! each one being released one step; every few seconds it reads the BMCs
//! again so hosts go DOWN and UP.
//!
//! It holds only a weak reference: dropping the driver ends it.

use std::sync::Weak;
use std::time::{Duration, Instant};

use super::{Inner, RedfishDriver, error_chain};

/// How often the hosts are read again when nothing asks for the inventory.
const HOSTS_EVERY: Duration = Duration::from_secs(10);

pub(super) fn spawn(inner: Weak<Inner>) {
    tokio::spawn(async move {
        let mut hosts_at = Instant::now();
        loop {
            let Some(strong) = inner.upgrade() else {
                return;
            };
            let driver = RedfishDriver { inner: strong };
            let interval = Duration::from_millis(driver.inner.config.poll_interval_ms.max(100));
            // Every server at once: a BMC that hangs (each call bounded by
            // its timeout) must not hold back the servers of the others.
            let mut steps = tokio::task::JoinSet::new();
            for id in driver.unconverged().await {
                let driver = driver.clone();
                steps.spawn(async move {
                    if let Err(e) = driver.converge(&id).await {
                        let why = error_chain(&e);
                        tracing::debug!(server = %id, error = %why, "BMC step failed; retrying");
                        driver
                            .note(&id, &format!("BMC step failed, retrying: {why}"))
                            .await;
                    }
                });
            }
            for id in driver.releasing().await {
                let driver = driver.clone();
                steps.spawn(async move {
                    if let Err(e) = driver.release_step(&id).await {
                        tracing::debug!(server = %id, error = %e.message(), "release step failed; retrying");
                        driver
                            .note(&id, &format!("release step failed, retrying: {}", e.message()))
                            .await;
                    }
                });
            }
            while steps.join_next().await.is_some() {}
            if hosts_at.elapsed() >= HOSTS_EVERY {
                driver.refresh_hosts().await;
                driver.repair_drift().await;
                hosts_at = Instant::now();
            }
            let wake = driver.inner.clone();
            drop(driver);
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = wake.wake.notified() => {}
            }
        }
    });
}
