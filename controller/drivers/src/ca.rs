//! The driver CA, kept in the store so every controller replica signs with the
//! same one. The first replica to start creates it; the others read it.

use serde::{Deserialize, Serialize};
use yunshu_domain::Record;
use yunshu_pki::CertificateAuthority;
use yunshu_store::{Store, records};

use crate::DriversError;

/// The CA as stored. The key is as sensitive as the store itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredCa {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Record for StoredCa {
    const KIND: &'static str = "driver_ca";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        "default".into()
    }
}

pub async fn load_or_create(store: &dyn Store) -> Result<CertificateAuthority, DriversError> {
    if let Some((stored, _)) = records::get::<StoredCa>(store, "default").await? {
        return Ok(CertificateAuthority::from_pem(
            &stored.cert_pem,
            &stored.key_pem,
        )?);
    }
    let fresh = CertificateAuthority::generate()?;
    let record = StoredCa {
        cert_pem: fresh.cert_pem().to_owned(),
        key_pem: fresh.key_pem().to_owned(),
    };
    if records::create(store, &record).await?.is_some() {
        tracing::info!(fingerprint = %fresh.fingerprint()?, "created the driver CA");
        return Ok(fresh);
    }
    // Another replica won the race: use its CA.
    let (stored, _) = records::get::<StoredCa>(store, "default")
        .await?
        .ok_or_else(|| yunshu_store::StoreError::Corrupt {
            key: "driver_ca/default".into(),
            reason: "vanished right after a conflicting create".into(),
        })?;
    Ok(CertificateAuthority::from_pem(
        &stored.cert_pem,
        &stored.key_pem,
    )?)
}
