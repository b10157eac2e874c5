//! yunshu's transactional key-value store.
//!
//! One [`Store`] trait, two backends that behave the same:
//! - [`RedbStore`]: embedded, one file in the data directory (or in memory for tests),
//!   the default for a single replica;
//! - [`EtcdStore`]: a real etcd cluster, for production and several replicas.
//!
//! The model is etcd's: every write gets a store-wide **revision**; each key carries
//! its create revision, mod revision and version; transactions compare mod revisions
//! (optimistic concurrency); watches replay history from a revision and then follow
//! live changes; leases expire keys. The [`conformance`] suite states these promises
//! as tests and every backend runs it.
//!
//! This crate owns keys and encodings ([`records`]); callers hold `Arc<dyn Store>`.
//! It must not know about HTTP, drivers or work-order rules.

pub mod audit;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod election;
mod error;
mod etcd;
pub mod fenced;
mod keys;
mod model;
mod open;
pub mod page;
pub mod records;
mod redb;
mod store;

pub use error::StoreError;
pub use etcd::{EtcdAuth, EtcdConfig, EtcdOptions, EtcdStore, EtcdTls};
pub use keys::{MAX_KEY_BYTES, MAX_TXN_OPS, MAX_VALUE_BYTES, prefix_end};
pub use model::{
    Compare, EventKind, KeyValue, LeaseId, Op, Page, PageRequest, Revision, Txn, TxnOutcome,
    WatchBatch, WatchEvent, WatchStream,
};
pub use open::{REDB_FILE, StoreSpec, open_store};
pub use redb::{RedbOptions, RedbStore};
pub use store::Store;
