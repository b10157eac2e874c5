//! Lockout after repeated failed logins: five failures within fifteen minutes
//! lock the account for the rest of that window. The counter is a store key on a
//! lease, so it expires by itself on every backend and every replica sees it.
//!
//! An attempt is counted *before* its password is checked, by a
//! compare-and-swap ([`begin_attempt`]), and a success clears the count: 40
//! parallel guesses used to read "not locked" together and all reach the
//! hash; now at most [`MAX_FAILURES`] do (issue 16 item 10).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use yunshu_store::{Store, StoreError, Txn, TxnOutcome};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Serialize, Deserialize)]
struct Failures {
    count: u32,
}

pub(crate) fn key(user: &str) -> String {
    // Only the store crate should know keys; this one is private to auth and not
    // a domain record, so it lives beside its only user.
    format!("login_failure/{user}")
}

/// Counts an attempt at `user` before its password is checked: `Ok(false)`
/// when the account is locked (nothing counted), `Ok(true)` when the attempt
/// may go on. Atomic against parallel attempts on every backend.
pub async fn begin_attempt(store: &dyn Store, user: &str) -> Result<bool, StoreError> {
    let key = key(user);
    // A handful of lost races at most: each retry reads the winner's count.
    for _ in 0..16 {
        let current = store.get(&key).await?;
        let (count, revision, lease) = match &current {
            Some(kv) => (
                serde_json::from_slice::<Failures>(&kv.value)
                    .map(|f| f.count)
                    .unwrap_or(0),
                kv.mod_revision,
                kv.lease,
            ),
            None => (0, 0, None),
        };
        if count >= MAX_FAILURES {
            return Ok(false);
        }
        let lease = match lease {
            Some(l) => l,
            None => store.lease_grant(WINDOW).await?,
        };
        let value = serde_json::to_vec(&Failures { count: count + 1 }).unwrap_or_default();
        let txn = Txn::new()
            .when_mod_revision(key.clone(), revision)
            .put_with_lease(key.clone(), value, lease);
        match store.txn(txn).await {
            Ok(TxnOutcome::Committed { .. }) => return Ok(true),
            Ok(TxnOutcome::Conflict) => continue,
            // The window's lease ended between our read and our write.
            Err(StoreError::LeaseNotFound(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    // Still contended after that many rounds: treat as locked, never as open.
    Ok(false)
}

/// The failures counted for `user` in the current window.
pub async fn failures(store: &dyn Store, user: &str) -> Result<u32, StoreError> {
    Ok(match store.get(&key(user)).await? {
        Some(kv) => serde_json::from_slice::<Failures>(&kv.value)
            .map(|f| f.count)
            .unwrap_or(0),
        None => 0,
    })
}

/// A successful login clears the count.
pub async fn clear(store: &dyn Store, user: &str) -> Result<(), StoreError> {
    store.delete(&key(user)).await.map(|_| ())
}
