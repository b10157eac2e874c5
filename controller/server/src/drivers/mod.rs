//! Drivers as the controller sees them: the CA that identifies both sides of the
//! mutual TLS, one-time bootstrap tokens, the registry of registered drivers, the
//! mTLS client, and the health loop (SPEC §5).
//!
//! Owns driver identity and reachability. Must not decide what a driver should
//! create: that is the reconciler's.

pub mod ca;
pub mod client;
pub mod health;
pub mod registry;
pub mod tokens;

use std::time::Duration;

use yunshu_pki::{CertificateAuthority, KeyedCertificate, PkiError};
use yunshu_store::{Store, StoreError};

/// Default lifetime of a driver certificate; drivers renew two thirds in.
pub const DEFAULT_DRIVER_CERT_TTL: Duration = Duration::from_secs(24 * 3600);
/// Lifetime of this replica's client certificate; re-issued at every start.
const CONTROLLER_CERT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum DriversError {
    #[error("store failed")]
    Store(#[from] StoreError),
    #[error("certificate authority failed")]
    Pki(#[from] PkiError),
}

/// The controller's side of driver mTLS.
pub struct DriverPki {
    pub ca: CertificateAuthority,
    /// This replica's client certificate (EKU clientAuth).
    pub identity: KeyedCertificate,
    pub driver_cert_ttl: Duration,
}

impl DriverPki {
    /// Loads the CA from the store (creating it on first start) and issues this
    /// replica's client certificate.
    pub async fn load(store: &dyn Store, driver_cert_ttl: Duration) -> Result<Self, DriversError> {
        let ca = ca::load_or_create(store).await?;
        let identity = ca.issue_controller(CONTROLLER_CERT_TTL)?;
        Ok(Self {
            ca,
            identity,
            driver_cert_ttl,
        })
    }
}
