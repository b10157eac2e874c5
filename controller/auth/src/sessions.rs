//! Login sessions: a random id the client keeps (the `api` crate puts it in an
//! HttpOnly, SameSite=Strict cookie); the store keeps only its SHA-256, on a
//! lease, so a session ends by itself after its TTL on every replica. Each
//! session has a CSRF token the client must echo on every request that changes
//! something (checked by [`crate::resolve`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_domain::UserId;
use yunshu_store::{PageRequest, Store, StoreError};

pub const TTL: Duration = Duration::from_secs(8 * 3600);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub user: UserId,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
}

fn key(id: &str) -> String {
    format!("session/{}", yunshu_pki::sha256_hex(id.as_bytes()))
}

/// Starts a session; returns its id (for the cookie) and the session.
pub async fn create(store: &dyn Store, user: UserId) -> Result<(String, Session), StoreError> {
    let id = yunshu_pki::random_hex(32);
    let session = Session {
        user,
        csrf_token: yunshu_pki::random_hex(16),
        created_at: Utc::now(),
    };
    let lease = store.lease_grant(TTL).await?;
    let value = serde_json::to_vec(&session).unwrap_or_default();
    store.put_with_lease(&key(&id), value, lease).await?;
    Ok((id, session))
}

pub async fn get(store: &dyn Store, id: &str) -> Result<Option<Session>, StoreError> {
    if id.len() != 64 {
        return Ok(None);
    }
    Ok(store
        .get(&key(id))
        .await?
        .and_then(|kv| serde_json::from_slice(&kv.value).ok()))
}

/// Ends a session now (revoking its lease removes the key everywhere).
pub async fn end(store: &dyn Store, id: &str) -> Result<(), StoreError> {
    if let Some(kv) = store.get(&key(id)).await? {
        match kv.lease {
            Some(lease) => match store.lease_revoke(lease).await {
                Ok(()) | Err(StoreError::LeaseNotFound(_)) => {}
                Err(e) => return Err(e),
            },
            None => {
                store.delete(&key(id)).await?;
            }
        }
    }
    Ok(())
}

/// The store keys of every live session of `user` (for ending them in an
/// audited transaction: offboarding). Reads every session in store-sized pages.
pub async fn keys_of(store: &dyn Store, user: &UserId) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .range(
                "session/",
                PageRequest {
                    after: after.take(),
                    limit: 0,
                },
            )
            .await?;
        for kv in &page.items {
            // A value that does not parse names nobody; leave it to its lease.
            if serde_json::from_slice::<Session>(&kv.value).is_ok_and(|s| &s.user == user) {
                out.push(kv.key.clone());
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}
