//! Drivers as the controller records them (SPEC §5): the CA that identifies
//! both sides of the mutual TLS, kept in the store so every replica signs with
//! the same one; one-time bootstrap tokens (redeemed in one transaction with
//! the registry write); the registry of registered drivers and how they are
//! doing.
//!
//! Owns driver identity and registration. Must not dial a driver or decide
//! what one should create: the mTLS client, the health loop and every driver
//! call are the reconciler's; the bootstrap endpoints are the API's. No gRPC
//! and no HTTP here.

pub mod ca;
pub mod registry;
pub mod tokens;

use std::time::Duration;

use yunshu_pki::envelope::MasterKey;
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
    #[error(transparent)]
    CaKey(#[from] ca::CaKeyError),
}

impl DriversError {
    /// Whether retrying cannot help: the operator must give the right store key.
    pub fn is_fatal(&self) -> bool {
        matches!(self, DriversError::CaKey(_))
    }
}

/// The controller's side of driver mTLS.
pub struct DriverPki {
    pub ca: CertificateAuthority,
    /// This replica's client certificate (EKU clientAuth).
    pub identity: KeyedCertificate,
    pub driver_cert_ttl: Duration,
}

impl DriverPki {
    /// Loads the CA from the store (creating it on first start; its key sealed
    /// with `store_key` when given) and issues this replica's client certificate.
    pub async fn load(
        store: &dyn Store,
        driver_cert_ttl: Duration,
        store_key: Option<&MasterKey>,
    ) -> Result<Self, DriversError> {
        let ca = ca::load_or_create(store, store_key).await?;
        let identity = ca.issue_controller(CONTROLLER_CERT_TTL)?;
        Ok(Self {
            ca,
            identity,
            driver_cert_ttl,
        })
    }
}
