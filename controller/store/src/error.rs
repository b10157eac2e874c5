//! The store's one error type. Callers branch on the variant, never on the text.

use std::path::PathBuf;

use crate::model::{LeaseId, Revision};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached right now (etcd down, connection refused,
    /// timeout). Retrying later may succeed.
    #[error("store unavailable during {op}: {reason}")]
    Unavailable { op: &'static str, reason: String },

    /// The caller asked for something the store refuses whatever its state:
    /// an empty key, an oversized value, too many operations in one transaction.
    /// Nothing was written.
    #[error("invalid store request: {0}")]
    InvalidArgument(String),

    /// A watch asked for history the store no longer keeps. Re-list and watch
    /// from the listing's revision + 1.
    #[error("revision {requested} is compacted; the oldest revision still kept is {oldest}")]
    Compacted {
        requested: Revision,
        oldest: Revision,
    },

    /// The lease does not exist: never granted, revoked, or expired.
    #[error("lease {0} not found or expired")]
    LeaseNotFound(LeaseId),

    /// The store file could not be opened as a yunshu store.
    #[error("cannot open store file {path}: {reason}")]
    Open { path: PathBuf, reason: String },

    /// Another process holds the store file.
    #[error(
        "store file {path} is locked by another process (is another `yunshu serve` running with this data directory?)"
    )]
    Locked { path: PathBuf },

    /// A stored record could not be decoded: the file or the key space holds data
    /// this binary does not understand.
    #[error("corrupt or foreign record at {key}: {reason}")]
    Corrupt { key: String, reason: String },

    /// A file the etcd connection needs (TLS material, the password) cannot be read.
    #[error("cannot read the etcd {what} file {path}")]
    EtcdFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// etcd refused the configured user: a wrong name or password, or
    /// authentication not enabled on the cluster. Retrying cannot help.
    #[error("etcd refused user {user:?}: {reason} (check --etcd-user and --etcd-password-file)")]
    EtcdAuth { user: String, reason: String },

    /// The backend failed in a way the caller cannot fix by retrying the same call.
    #[error("store backend failed during {op}")]
    Backend {
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// True when the same call may succeed later (the reconciler backs off on these).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    pub(crate) fn backend(
        op: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Backend {
            op,
            source: Box::new(source),
        }
    }
}
