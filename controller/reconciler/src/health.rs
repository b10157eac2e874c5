//! Checks every registered driver periodically: dial it with mTLS, ask `GetInfo`,
//! check that it says it serves the provider it is registered for, and record
//! the outcome (health, last seen) in the registry.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use yunshu_drivers::DriverPki;
use yunshu_drivers::registry::{DriverRecord, Health};
use yunshu_proto::v1::GetInfoRequest;
use yunshu_store::{PageRequest, Store, Txn, records};

/// Check interval while every driver is healthy.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Check interval while some driver is not (yet) healthy.
const RETRY_INTERVAL: Duration = Duration::from_secs(2);
/// After a registration, give the driver a moment to start serving.
const SETTLE: Duration = Duration::from_millis(300);

/// Checks every driver once; returns whether all are healthy.
pub async fn check_all(store: &dyn Store, pki: &DriverPki) -> bool {
    let drivers = match records::list::<DriverRecord>(store, PageRequest::default()).await {
        Ok((drivers, _)) => drivers,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list drivers for the health check");
            return false;
        }
    };
    let mut all_healthy = true;
    for driver in drivers {
        let health = probe(pki, &driver).await;
        all_healthy &= health.is_ok();
        if let Ok(info) = &health {
            offer(store, info).await;
        }
        record(store, &driver.provider, health).await;
    }
    all_healthy
}

async fn probe(
    pki: &DriverPki,
    driver: &DriverRecord,
) -> Result<yunshu_proto::v1::DriverInfo, String> {
    let mut client = super::connect::connect(pki, driver)
        .await
        .map_err(|e| yunshu_domain::error::chain(&e))?;
    let info = client
        .get_info(GetInfoRequest {})
        .await
        .map_err(|s| format!("GetInfo failed: {}", s.message()))?
        .into_inner();
    if info.provider != driver.provider {
        return Err(format!(
            "driver says it serves {:?}, registered for {:?}",
            info.provider, driver.provider
        ));
    }
    Ok(info)
}

/// Records the kinds the driver offers, read at approval (an order needing a
/// kind its provider lacks is refused there).
async fn offer(store: &dyn Store, info: &yunshu_proto::v1::DriverInfo) {
    let kinds = info
        .kinds()
        .filter_map(yunshu_proto::convert::kind_from_wire)
        .collect();
    let offer = yunshu_workflow::offers::ProviderOffer {
        provider: info.provider.clone(),
        kinds,
        driver: format!("{} {}", info.name, info.version),
        checked_at: Utc::now(),
    };
    match yunshu_workflow::offers::record(store, &offer).await {
        Ok(true) => tracing::info!(
            provider = %offer.provider,
            kinds = ?offer.kinds,
            "driver offers these kinds"
        ),
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(error = %e, provider = %offer.provider, "cannot record what the driver offers")
        }
    }
}

/// Writes the outcome with a compare on the record, so a concurrent renewal is
/// never overwritten by a stale copy.
async fn record(
    store: &dyn Store,
    provider: &str,
    outcome: Result<yunshu_proto::v1::DriverInfo, String>,
) {
    for _ in 0..3 {
        let Ok(Some((mut current, revision))) = records::get::<DriverRecord>(store, provider).await
        else {
            return;
        };
        let was = current.health.clone();
        match &outcome {
            Ok(info) => {
                current.health = Health::Healthy;
                current.last_seen = Some(Utc::now());
                current.driver_name = Some(info.name.clone());
                current.driver_version = Some(info.version.clone());
                current.simulator = Some(info.simulator);
            }
            Err(reason) => current.health = Health::Unreachable(reason.clone()),
        }
        if was != current.health {
            match &current.health {
                Health::Healthy => tracing::info!(provider, "driver healthy"),
                Health::Unreachable(reason) => {
                    tracing::warn!(provider, reason, "driver unreachable")
                }
                Health::Unknown => {}
            }
        }
        let key = records::key::<DriverRecord>(provider);
        let txn = Txn::new()
            .when_mod_revision(key.clone(), revision)
            .put(key, records::encode(&current));
        match store.txn(txn).await {
            Ok(outcome) if outcome.is_committed() => return,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, provider, "cannot record driver health");
                return;
            }
        }
    }
}

/// Runs forever (the task is aborted at shutdown).
pub async fn run(store: Arc<dyn Store>, pki: Arc<DriverPki>, changed: Arc<tokio::sync::Notify>) {
    loop {
        let healthy = check_all(&*store, &pki).await;
        let wait = if healthy { INTERVAL } else { RETRY_INTERVAL };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = changed.notified() => tokio::time::sleep(SETTLE).await,
        }
    }
}
