//! One-time bootstrap tokens (like kubelet TLS bootstrap): minted by a platform
//! admin for one provider, valid for a TTL, redeemed once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_domain::Record;
use yunshu_proto::bootstrap::BootstrapToken;
use yunshu_store::audit::{self, Appended, AuditDraft};
use yunshu_store::{Store, StoreError, Txn, records};

/// A token as stored: only the secret's hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredToken {
    pub id: String,
    pub provider: String,
    pub secret_sha256: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

impl Record for StoredToken {
    const KIND: &'static str = "driver_token";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.id.clone()
    }
}

/// Why a token was not accepted. Each maps to a stable API code.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed or unknown")]
    Invalid,
    #[error("the token expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the token was already used at {0}")]
    Used(DateTime<Utc>),
    #[error("the token was issued for provider {issued_for:?}, not {claimed:?}")]
    ProviderMismatch { issued_for: String, claimed: String },
    #[error("store failed")]
    Store(#[from] StoreError),
}

/// Mints a token for `provider`, valid until `expires_at`; audited as `audit`
/// (whose target is filled in here).
pub async fn create(
    store: &dyn Store,
    provider: &str,
    ca_fingerprint: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    mut audit: AuditDraft,
) -> Result<BootstrapToken, StoreError> {
    let token = BootstrapToken {
        id: yunshu_pki::random_hex(8),
        secret: yunshu_pki::random_hex(32),
        ca_fingerprint: ca_fingerprint.to_owned(),
    };
    let record = StoredToken {
        id: token.id.clone(),
        provider: provider.to_owned(),
        secret_sha256: yunshu_pki::sha256_hex(token.secret.as_bytes()),
        created_at: now,
        expires_at,
        used_at: None,
    };
    let key = records::key::<StoredToken>(&record.id);
    let txn = Txn::new()
        .when_mod_revision(key.clone(), 0)
        .put(key.clone(), records::encode(&record));
    audit.target = target(&key)?;
    match audit::append(store, audit, txn).await? {
        Appended::Committed { .. } => Ok(token),
        Appended::Conflict => Err(StoreError::Unavailable {
            op: "driver token create",
            reason: "token id collision; try again".into(),
        }),
    }
}

fn target(key: &str) -> Result<yunshu_domain::Text, StoreError> {
    yunshu_domain::Text::new(key).map_err(|e| StoreError::InvalidArgument(e.to_string()))
}

/// Checks the token for `provider` and marks it used, atomically: of two drivers
/// racing with one token, exactly one gets through. `then` (the registry entry)
/// and the audit entry are written in the same transaction, so a used token
/// always has its driver and its audit record.
pub async fn redeem(
    store: &dyn Store,
    token: &str,
    provider: &str,
    now: DateTime<Utc>,
    then: Txn,
    audit: AuditDraft,
) -> Result<StoredToken, TokenError> {
    let parsed = BootstrapToken::parse(token).map_err(|_| TokenError::Invalid)?;
    let (mut stored, revision) = records::get::<StoredToken>(store, &parsed.id)
        .await?
        .ok_or(TokenError::Invalid)?;
    if stored.secret_sha256 != yunshu_pki::sha256_hex(parsed.secret.as_bytes()) {
        return Err(TokenError::Invalid);
    }
    if let Some(at) = stored.used_at {
        return Err(TokenError::Used(at));
    }
    if stored.expires_at <= now {
        return Err(TokenError::Expired(stored.expires_at));
    }
    if stored.provider != provider {
        return Err(TokenError::ProviderMismatch {
            issued_for: stored.provider.clone(),
            claimed: provider.to_owned(),
        });
    }
    stored.used_at = Some(now);
    let key = records::key::<StoredToken>(&stored.id);
    let mut txn = then.when_mod_revision(key.clone(), revision);
    txn = txn.put(key, records::encode(&stored));
    match audit::append(store, audit, txn).await? {
        Appended::Committed { .. } => Ok(stored),
        // Someone redeemed it between our read and our write.
        Appended::Conflict => Err(TokenError::Used(now)),
    }
}
