//! The [`Store`] trait: the only way yunshu reads and writes durable state.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{KeyValue, LeaseId, Page, PageRequest, Revision, Txn, TxnOutcome, WatchStream};

/// A revisioned key-value store with transactions, watches and leases.
///
/// Every implementation passes [`crate::conformance`]. Requests that break the limits
/// in [`crate::MAX_KEY_BYTES`], [`crate::MAX_VALUE_BYTES`] and [`crate::MAX_TXN_OPS`]
/// fail with [`StoreError::InvalidArgument`] and write nothing.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Short backend name for logs and `/api/v1/version` ("redb", "memory", "etcd").
    fn backend(&self) -> &'static str;

    /// The key's current value, or `None`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Writes `value` unconditionally; returns the new revision.
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<Revision, StoreError> {
        match self.txn(Txn::new().put(key, value)).await? {
            TxnOutcome::Committed { revision } => Ok(revision),
            TxnOutcome::Conflict => Err(StoreError::InvalidArgument(
                "an unconditional put cannot conflict".into(),
            )),
        }
    }

    /// Deletes the key. Returns whether it existed; deleting a missing key is not an
    /// error and writes nothing.
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;

    /// Keys starting with `prefix`, ascending, one page at a time. Pages are read
    /// with a key cursor: a key that exists for the whole listing appears exactly
    /// once, whatever is written meanwhile.
    async fn range(&self, prefix: &str, page: PageRequest) -> Result<Page, StoreError>;

    /// Applies every op at one revision if every compare holds; otherwise nothing.
    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError>;

    /// Changes to keys starting with `prefix`, from `from` (inclusive; 0 = only
    /// changes after now), as one batch per revision.
    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, StoreError>;

    /// The current store revision.
    async fn revision(&self) -> Result<Revision, StoreError>;

    /// Forgets history at and before `revision`: watches from there fail with
    /// [`StoreError::Compacted`].
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;

    /// Grants a lease of (at least) `ttl`. etcd rounds up to whole seconds.
    async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId, StoreError>;

    /// Renews the lease for another full TTL; returns that TTL.
    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<Duration, StoreError>;

    /// Revokes the lease and deletes its keys now.
    async fn lease_revoke(&self, lease: LeaseId) -> Result<(), StoreError>;

    /// Attaches `key` to `lease` with `value` (unconditionally).
    async fn put_with_lease(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: LeaseId,
    ) -> Result<Revision, StoreError> {
        match self
            .txn(Txn::new().put_with_lease(key, value, lease))
            .await?
        {
            TxnOutcome::Committed { revision } => Ok(revision),
            TxnOutcome::Conflict => Err(StoreError::InvalidArgument(
                "an unconditional put cannot conflict".into(),
            )),
        }
    }

    /// A cheap round trip proving the store answers now (readiness probes).
    async fn health(&self) -> Result<(), StoreError>;
}
