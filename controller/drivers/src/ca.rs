//! The driver CA, kept in the store so every controller replica signs with the
//! same one. The first replica to start creates it; the others read it.
//!
//! With a store key (issue 16 item 6) the CA's private key is stored sealed
//! ([`yunshu_pki::envelope`]): a dump of the store then holds no key that
//! signs driver or controller certificates. A key stored in clear (before the
//! installation had a store key) is sealed in place at the first start with
//! one.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use yunshu_domain::Record;
use yunshu_pki::CertificateAuthority;
use yunshu_pki::envelope::{self, EnvelopeError, MasterKey, Sealed};
use yunshu_store::{Revision, Store, Txn, TxnOutcome, records};

use crate::DriversError;

/// The record's id and, with its kind, the associated data of its sealed key:
/// a sealed key copied onto another record does not open.
const CA_ID: &str = "default";

/// The CA as stored. Exactly one of `key_pem` and `sealed_key` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredCa {
    pub cert_pem: String,
    /// The private key in clear: schema 1 records, and installations without a
    /// store key. As sensitive as the store itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_pem: Option<String>,
    /// The private key sealed with the store key (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_key: Option<SealedKey>,
}

/// [`Sealed`] as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedKey {
    pub key_id: String,
    pub wrapped_key: String,
    pub ciphertext: String,
}

impl From<Sealed> for SealedKey {
    fn from(s: Sealed) -> Self {
        Self {
            key_id: s.key_id,
            wrapped_key: s.wrapped_key,
            ciphertext: s.ciphertext,
        }
    }
}

impl From<&SealedKey> for Sealed {
    fn from(s: &SealedKey) -> Self {
        Self {
            key_id: s.key_id.clone(),
            wrapped_key: s.wrapped_key.clone(),
            ciphertext: s.ciphertext.clone(),
        }
    }
}

impl Record for StoredCa {
    const KIND: &'static str = "driver_ca";
    /// 2: the key may be sealed (`sealed_key`); schema 1 records (`key_pem`)
    /// still read, and an older binary refuses a sealed record as too new
    /// instead of misreading it.
    const SCHEMA_VERSION: u32 = 2;
    fn id(&self) -> String {
        CA_ID.into()
    }
}

/// Why the stored CA key cannot be used with the store key given: each stops
/// the start, since signing with another CA would strand every driver.
#[derive(Debug, thiserror::Error)]
pub enum CaKeyError {
    #[error(
        "the driver CA key in the store is sealed and no store key was given: start with --store-key-file <file> or YUNSHU_STORE_KEY set to the installation's store key"
    )]
    StoreKeyMissing,
    #[error(
        "the driver CA key in the store does not open with the store key given: start with the installation's store key (--store-key-file or YUNSHU_STORE_KEY)"
    )]
    WrongStoreKey(#[source] EnvelopeError),
    #[error("the stored driver CA has neither a key in clear nor a sealed one")]
    NoKey,
}

/// The context sealed keys are bound to.
fn context() -> String {
    records::key::<StoredCa>(CA_ID)
}

static CLEAR_WARNED: AtomicBool = AtomicBool::new(false);

/// Loads the CA (creating it on first start), sealing or opening its key with
/// `store_key`. See [`CaKeyError`] for the refusals.
pub async fn load_or_create(
    store: &dyn Store,
    store_key: Option<&MasterKey>,
) -> Result<CertificateAuthority, DriversError> {
    // Each pass either returns or lost a compare-and-swap to another replica,
    // which has then written a record the next pass reads.
    loop {
        let Some((stored, revision)) = records::get::<StoredCa>(store, CA_ID).await? else {
            let fresh = CertificateAuthority::generate()?;
            let record = StoredCa {
                cert_pem: fresh.cert_pem().to_owned(),
                key_pem: None,
                sealed_key: None,
            };
            let record = with_key(record, fresh.key_pem(), store_key);
            if records::create(store, &record).await?.is_some() {
                tracing::info!(
                    fingerprint = %fresh.fingerprint()?,
                    sealed = store_key.is_some(),
                    "created the driver CA"
                );
                warn_if_clear(store_key);
                return Ok(fresh);
            }
            continue;
        };
        match (&stored.sealed_key, &stored.key_pem, store_key) {
            (Some(sealed), _, Some(master)) => {
                let key_pem = envelope::open(master, &context(), &sealed.into())
                    .map_err(CaKeyError::WrongStoreKey)?;
                let key_pem = String::from_utf8(key_pem).map_err(|_| {
                    CaKeyError::WrongStoreKey(EnvelopeError::Corrupt("the key is not UTF-8"))
                })?;
                return Ok(CertificateAuthority::from_pem(&stored.cert_pem, &key_pem)?);
            }
            (Some(_), _, None) => return Err(CaKeyError::StoreKeyMissing.into()),
            (None, Some(key_pem), Some(master)) => {
                let ca = CertificateAuthority::from_pem(&stored.cert_pem, key_pem)?;
                let sealed = with_key(stored.clone(), key_pem, Some(master));
                if replace(store, &sealed, revision).await? {
                    tracing::info!(
                        store_key = %master.id(),
                        "sealed the driver CA key stored in clear with the store key"
                    );
                    return Ok(ca);
                }
            }
            (None, Some(key_pem), None) => {
                warn_if_clear(None);
                return Ok(CertificateAuthority::from_pem(&stored.cert_pem, key_pem)?);
            }
            (None, None, _) => return Err(CaKeyError::NoKey.into()),
        }
    }
}

/// `record` holding `key_pem`, sealed when there is a store key.
fn with_key(mut record: StoredCa, key_pem: &str, store_key: Option<&MasterKey>) -> StoredCa {
    match store_key {
        Some(master) => {
            record.key_pem = None;
            record.sealed_key = Some(envelope::seal(master, &context(), key_pem.as_bytes()).into());
        }
        None => {
            record.key_pem = Some(key_pem.to_owned());
            record.sealed_key = None;
        }
    }
    record
}

/// Writes `record` if the stored one is still at `revision`.
async fn replace(
    store: &dyn Store,
    record: &StoredCa,
    revision: Revision,
) -> Result<bool, DriversError> {
    let key = context();
    let txn = Txn::new()
        .when_mod_revision(key.clone(), revision)
        .put(key, records::encode(record));
    Ok(matches!(
        store.txn(txn).await?,
        TxnOutcome::Committed { .. }
    ))
}

/// Once per process: a key in clear is what a store dump hands out.
fn warn_if_clear(store_key: Option<&MasterKey>) {
    if store_key.is_none() && !CLEAR_WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "the driver CA private key is stored in clear: anyone with a copy of the store can sign driver and controller certificates; give a store key (--store-key-file or YUNSHU_STORE_KEY) to seal it"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use yunshu_store::{RedbOptions, RedbStore};

    use super::*;

    /// The stored bytes of the CA record, as `etcdctl get` or a backup shows them.
    async fn dump(store: &dyn Store) -> String {
        let kv = store.get(&context()).await.expect("get").expect("stored");
        String::from_utf8(kv.value).expect("JSON")
    }

    fn signs(ca: &CertificateAuthority) {
        let (csr, _key) = yunshu_pki::driver_csr("sim").expect("csr");
        ca.sign_driver(&csr, "sim", &[], Duration::from_secs(60))
            .expect("the CA signs");
    }

    fn refused(result: Result<CertificateAuthority, DriversError>) -> DriversError {
        match result {
            Ok(_) => panic!("the CA was loaded"),
            Err(e) => e,
        }
    }

    fn key_error(err: DriversError) -> CaKeyError {
        match err {
            DriversError::CaKey(e) => e,
            other => panic!("expected a CA key error, got {other}"),
        }
    }

    /// Issue 16 item 6: with a store key, the stored record holds the CA key
    /// sealed only, and the same key opens it again.
    #[tokio::test]
    async fn a_store_dump_does_not_hold_the_ca_key_in_clear() {
        let store = RedbStore::in_memory().expect("store");
        let key = MasterKey::generate();
        let created = load_or_create(&store, Some(&key)).await.expect("create");
        let raw = dump(&store).await;
        assert!(!raw.contains("PRIVATE KEY"), "{raw}");
        assert!(
            raw.contains("sealed_key") && raw.contains(&key.id()),
            "{raw}"
        );
        let again = load_or_create(&store, Some(&key)).await.expect("load");
        assert_eq!(
            again.fingerprint().expect("fp"),
            created.fingerprint().expect("fp")
        );
        signs(&again);
    }

    /// A sealed CA key with another store key, or with none, stops the start
    /// with an error naming the fix, and changes nothing.
    #[tokio::test]
    async fn a_wrong_or_missing_store_key_is_refused_with_the_fix() {
        let store = RedbStore::in_memory().expect("store");
        load_or_create(&store, Some(&MasterKey::generate()))
            .await
            .expect("create");
        let before = dump(&store).await;
        let wrong = refused(load_or_create(&store, Some(&MasterKey::generate())).await);
        assert!(wrong.is_fatal());
        let message = yunshu_domain::error::chain(&wrong);
        assert!(matches!(key_error(wrong), CaKeyError::WrongStoreKey(_)));
        assert!(message.contains("--store-key-file"), "{message}");
        let missing = refused(load_or_create(&store, None).await);
        assert!(missing.is_fatal());
        assert!(
            missing.to_string().contains("YUNSHU_STORE_KEY"),
            "{missing}"
        );
        assert!(matches!(key_error(missing), CaKeyError::StoreKeyMissing));
        assert_eq!(dump(&store).await, before);
    }

    /// A CA stored in clear — by this version without a key, or by schema 1 —
    /// is sealed in place by the first start with a store key, and is the same CA.
    #[tokio::test]
    async fn a_ca_key_stored_in_clear_is_sealed_in_place_by_a_start_with_a_store_key() {
        let store = RedbStore::in_memory().expect("store");
        let clear = load_or_create(&store, None).await.expect("create in clear");
        assert!(dump(&store).await.contains("PRIVATE KEY"));
        let again = load_or_create(&store, None).await.expect("load in clear");
        assert_eq!(
            again.fingerprint().expect("fp"),
            clear.fingerprint().expect("fp")
        );

        let key = MasterKey::generate();
        let sealed = load_or_create(&store, Some(&key)).await.expect("seal");
        assert_eq!(
            sealed.fingerprint().expect("fp"),
            clear.fingerprint().expect("fp")
        );
        assert!(!dump(&store).await.contains("PRIVATE KEY"));

        // A record as schema 1 wrote it.
        let old = RedbStore::in_memory().expect("store");
        let ca = CertificateAuthority::generate().expect("ca");
        let v1 = serde_json::json!({
            "kind": "driver_ca",
            "schema_version": 1,
            "data": { "cert_pem": ca.cert_pem(), "key_pem": ca.key_pem() },
        });
        old.put(&context(), v1.to_string().into_bytes())
            .await
            .expect("put");
        let migrated = load_or_create(&old, Some(&key)).await.expect("migrate");
        assert_eq!(
            migrated.fingerprint().expect("fp"),
            ca.fingerprint().expect("fp")
        );
        assert!(!dump(&old).await.contains("PRIVATE KEY"));
        signs(&migrated);
    }

    /// The sealed CA survives a restart of a file store and still signs.
    #[tokio::test]
    async fn the_sealed_ca_still_signs_after_a_restart_with_the_store_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        let key = MasterKey::parse(&"ab".repeat(32)).expect("key");
        let first = {
            let store = RedbStore::open(&path, RedbOptions::default()).expect("open");
            load_or_create(&store, Some(&key)).await.expect("create")
        };
        let store = RedbStore::open(&path, RedbOptions::default()).expect("reopen");
        let reloaded = load_or_create(&store, Some(&key)).await.expect("reload");
        assert_eq!(
            reloaded.fingerprint().expect("fp"),
            first.fingerprint().expect("fp")
        );
        signs(&reloaded);
    }
}
