//! `yunshu serve --demo`: seeds the demo data set (`yunshu_workflow::demo`: a
//! demo tenant, one of its information systems and one user per role) once the
//! store answers, and says in the log how to sign in.

use yunshu_api::readiness::Readiness;
use yunshu_store::Store;
use yunshu_workflow::demo::{DEMO_PASSWORD, DEMO_TENANT, seed};

/// Waits for the store to be ready, then seeds; logs the outcome. Runs in the
/// background so that an etcd still starting does not block the server.
pub async fn seed_when_ready(store: &dyn Store, readiness: &Readiness) {
    let mut delay = std::time::Duration::from_millis(100);
    while !readiness.status().ready {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(5));
    }
    match seed(store).await {
        Ok(0) => tracing::info!(tenant = DEMO_TENANT, "demo data already present"),
        Ok(n) => tracing::info!(
            tenant = DEMO_TENANT,
            records = n,
            users = "demo reviewer approver operator auditor admin",
            password = DEMO_PASSWORD,
            "demo data seeded (demo users sign in at / with this password)"
        ),
        Err(e) => tracing::error!(
            error = %yunshu_domain::error::chain(&e),
            "cannot seed demo data"
        ),
    }
}
