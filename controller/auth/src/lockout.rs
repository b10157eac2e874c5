//! Lockout after repeated failed logins: five failures within fifteen minutes
//! lock the account for the rest of that window. The counter is a store key on a
//! lease, so it expires by itself on every backend and every replica sees it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use yunshu_store::{Store, StoreError};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Serialize, Deserialize)]
struct Failures {
    count: u32,
}

fn key(user: &str) -> String {
    // Only the store crate should know keys; this one is private to auth and not
    // a domain record, so it lives beside its only user.
    format!("login_failure/{user}")
}

/// Whether `user` is locked out now.
pub async fn is_locked(store: &dyn Store, user: &str) -> Result<bool, StoreError> {
    Ok(match store.get(&key(user)).await? {
        Some(kv) => serde_json::from_slice::<Failures>(&kv.value)
            .map(|f| f.count >= MAX_FAILURES)
            .unwrap_or(false),
        None => false,
    })
}

/// Counts a failure; returns the count in the current window.
pub async fn record_failure(store: &dyn Store, user: &str) -> Result<u32, StoreError> {
    let key = key(user);
    let (count, lease) = match store.get(&key).await? {
        Some(kv) => {
            let count = serde_json::from_slice::<Failures>(&kv.value)
                .map(|f| f.count)
                .unwrap_or(0);
            match kv.lease {
                Some(lease) => (count + 1, lease),
                None => (count + 1, store.lease_grant(WINDOW).await?),
            }
        }
        None => (1, store.lease_grant(WINDOW).await?),
    };
    let value = serde_json::to_vec(&Failures { count }).unwrap_or_default();
    match store.put_with_lease(&key, value.clone(), lease).await {
        Ok(_) => Ok(count),
        // The window ended between our read and our write: start a new one.
        Err(StoreError::LeaseNotFound(_)) => {
            let lease = store.lease_grant(WINDOW).await?;
            let value = serde_json::to_vec(&Failures { count: 1 }).unwrap_or_default();
            store.put_with_lease(&key, value, lease).await?;
            Ok(1)
        }
        Err(e) => Err(e),
    }
}

/// A successful login clears the count.
pub async fn clear(store: &dyn Store, user: &str) -> Result<(), StoreError> {
    store.delete(&key(user)).await.map(|_| ())
}
