//! A [`Store`] whose every write holds only while a leader's term holds.
//!
//! The leader hands this wrapper, built on its election key and term (the key's
//! mod revision when it won), to everything that writes as the leader (the
//! reconciler, the timers). Each transaction gets one more compare — the
//! election key is still at that revision — so a deposed leader that has not
//! noticed yet (a paused process, a partition) cannot overwrite its
//! successor's work: its writes conflict and change nothing. Reads, watches and
//! leases pass through unchanged.
//!
//! Must not be used for the election itself (it would fence its own renewals).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{KeyValue, LeaseId, Page, PageRequest, Revision, Txn, TxnOutcome, WatchStream};
use crate::store::Store;

/// `inner`, with every write fenced on `key` being at `term`.
pub struct Fenced {
    inner: Arc<dyn Store>,
    key: String,
    term: Revision,
}

impl Fenced {
    pub fn new(inner: Arc<dyn Store>, key: &str, term: Revision) -> Self {
        Fenced {
            inner,
            key: key.to_owned(),
            term,
        }
    }

    fn fence(&self, txn: Txn) -> Txn {
        crate::election::fence(txn, &self.key, self.term)
    }

    fn deposed(&self) -> StoreError {
        StoreError::Unavailable {
            op: "fenced write",
            reason: format!(
                "leadership of term {} on {} is lost; the write was refused",
                self.term, self.key
            ),
        }
    }
}

#[async_trait]
impl Store for Fenced {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.inner.get(key).await
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<Revision, StoreError> {
        match self
            .inner
            .txn(self.fence(Txn::new().put(key, value)))
            .await?
        {
            TxnOutcome::Committed { revision } => Ok(revision),
            TxnOutcome::Conflict => Err(self.deposed()),
        }
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        if self.inner.get(key).await?.is_none() {
            return Ok(false);
        }
        match self.inner.txn(self.fence(Txn::new().delete(key))).await? {
            TxnOutcome::Committed { .. } => Ok(true),
            TxnOutcome::Conflict => Err(self.deposed()),
        }
    }

    async fn range(&self, prefix: &str, page: PageRequest) -> Result<Page, StoreError> {
        self.inner.range(prefix, page).await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        self.inner.txn(self.fence(txn)).await
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, StoreError> {
        self.inner.watch(prefix, from).await
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        self.inner.revision().await
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.inner.compact(revision).await
    }

    async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        self.inner.lease_grant(ttl).await
    }

    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<Duration, StoreError> {
        self.inner.lease_keep_alive(lease).await
    }

    async fn lease_revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.inner.lease_revoke(lease).await
    }

    async fn put_with_lease(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: LeaseId,
    ) -> Result<Revision, StoreError> {
        match self
            .inner
            .txn(self.fence(Txn::new().put_with_lease(key, value, lease)))
            .await?
        {
            TxnOutcome::Committed { revision } => Ok(revision),
            TxnOutcome::Conflict => Err(self.deposed()),
        }
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.inner.health().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RedbStore;

    #[tokio::test]
    async fn writes_hold_only_while_the_term_holds() {
        let inner: Arc<dyn Store> = Arc::new(RedbStore::in_memory().expect("store"));
        let term = inner.put("leader/x", b"a".to_vec()).await.expect("put");
        let fenced = Fenced::new(inner.clone(), "leader/x", term);
        fenced
            .put("work/1", b"1".to_vec())
            .await
            .expect("leader writes");
        assert!(fenced.delete("work/1").await.expect("delete"));
        assert!(!fenced.delete("work/1").await.expect("gone"));
        // Another leader takes over: the key moves on.
        inner
            .put("leader/x", b"b".to_vec())
            .await
            .expect("takeover");
        assert!(fenced.put("work/2", b"2".to_vec()).await.is_err());
        let outcome = fenced
            .txn(Txn::new().put("work/3", b"3".to_vec()))
            .await
            .expect("txn");
        assert!(!outcome.is_committed());
        assert!(inner.get("work/2").await.expect("get").is_none());
        assert!(inner.get("work/3").await.expect("get").is_none());
    }
}
