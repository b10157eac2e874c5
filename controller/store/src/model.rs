//! The store's data model, shared by every backend (etcd's, deliberately).

use std::pin::Pin;

use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// A store-wide, strictly increasing write counter. Every committed write
/// (put, delete, transaction with writes, lease expiry) gets the next one; all
/// writes of one transaction share it.
pub type Revision = i64;

/// A lease: keys attached to it are deleted when it expires or is revoked.
pub type LeaseId = i64;

/// One key with its value and history counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the write that created the key (since it last did not exist).
    pub create_revision: Revision,
    /// Revision of the last write to the key: what [`Compare::ModRevision`] checks.
    pub mod_revision: Revision,
    /// Number of writes since creation (1 after the first put).
    pub version: i64,
    /// The lease the key is attached to, if any.
    pub lease: Option<LeaseId>,
}

/// A condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key's mod revision equals `revision`; `0` means "the key does not exist".
    ModRevision { key: String, revision: Revision },
}

impl Compare {
    pub fn key(&self) -> &str {
        match self {
            Compare::ModRevision { key, .. } => key,
        }
    }
}

/// A write inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        key: String,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    },
    Delete {
        key: String,
    },
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }
}

/// A multi-key transaction: if every compare holds, every op is applied at one
/// revision; otherwise nothing is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }

    /// Require `key` to be at `revision` (0: absent).
    pub fn when_mod_revision(mut self, key: impl Into<String>, revision: Revision) -> Self {
        self.compares.push(Compare::ModRevision {
            key: key.into(),
            revision,
        });
        self
    }

    pub fn put(mut self, key: impl Into<String>, value: Vec<u8>) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value,
            lease: None,
        });
        self
    }

    pub fn put_with_lease(
        mut self,
        key: impl Into<String>,
        value: Vec<u8>,
        lease: LeaseId,
    ) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value,
            lease: Some(lease),
        });
        self
    }

    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }
}

/// What a transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Every compare held and every op was applied; `revision` is the store
    /// revision after the transaction.
    Committed { revision: Revision },
    /// A compare failed; nothing was written.
    Conflict,
}

impl TxnOutcome {
    pub fn is_committed(&self) -> bool {
        matches!(self, TxnOutcome::Committed { .. })
    }
}

/// Where a paginated range starts and how much it returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Return keys strictly after this one (the previous page's `next`).
    pub after: Option<String>,
    /// At most this many items; 0 means the backend default (1,000).
    pub limit: usize,
}

/// One page of a range, in ascending key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<KeyValue>,
    /// Cursor for the next page, `None` on the last one.
    pub next: Option<String>,
    /// Store revision the page was read at: watch from `revision + 1` to follow on.
    pub revision: Revision,
}

impl Page {
    /// A page whose cursor is its last key when `more` items follow.
    pub(crate) fn new(items: Vec<KeyValue>, more: bool, revision: Revision) -> Self {
        let next = if more {
            items.last().map(|kv| kv.key.clone())
        } else {
            None
        };
        Self {
            items,
            next,
            revision,
        }
    }
}

/// Default and maximum page size.
pub(crate) const DEFAULT_PAGE: usize = 1000;
pub(crate) const MAX_PAGE: usize = 10_000;

pub(crate) fn page_limit(req: &PageRequest) -> usize {
    match req.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change to one key. For a delete, `kv.value` is empty, `kv.mod_revision` is
/// the revision of the deletion and the other counters are 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
}

/// All the changes to watched keys made at one revision, in the order written.
/// A watcher that has handled a batch resumes from `revision + 1` and neither
/// misses nor repeats anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchBatch {
    pub revision: Revision,
    pub events: Vec<WatchEvent>,
}

/// A watch: batches in revision order. An `Err` item ends it (compacted history,
/// lost connection); resume with a new watch from the last revision seen + 1.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchBatch, StoreError>> + Send>>;
