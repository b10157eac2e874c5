//! The embedded backend: one redb file in the data directory, or redb's in-memory
//! backend for tests and throw-away demos.
//!
//! Reads run on the caller's thread against a redb read snapshot (no I/O wait beyond
//! the page cache). Every write goes to one writer thread ([`writer`]), which commits
//! all writes queued at that moment in **one** redb transaction — group commit — so
//! that concurrent writers share the ≈ 3 ms fsync instead of queueing behind it.
//! Each queued transaction still gets its own revision and its own compare check,
//! exactly as if it had committed alone.
//!
//! redb's own file lock keeps a second process out; a file that is not a yunshu store
//! is refused at open with a message, never a panic.

mod codec;
mod leases;
mod tables;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, DatabaseError, ReadableDatabase};
use tokio::sync::{oneshot, watch as tokio_watch};

use crate::error::StoreError;
use crate::keys::{check_key, check_txn, prefix_end};
use crate::model::{
    KeyValue, LeaseId, Page, PageRequest, Revision, Txn, TxnOutcome, WatchStream, page_limit,
};
use crate::store::Store;
use leases::LeaseTable;
use writer::{Answer, Command, Writer};

/// Tuning of the embedded backend.
#[derive(Debug, Clone)]
pub struct RedbOptions {
    /// How many revisions of history are kept for watches to resume from.
    pub history: u64,
    /// fsync every commit (crash-safe). Off only for the in-memory backend and for
    /// benchmarks that say so.
    pub durable: bool,
}

impl Default for RedbOptions {
    fn default() -> Self {
        Self {
            history: 100_000,
            durable: true,
        }
    }
}

/// The embedded store. Cheap to share behind `Arc<dyn Store>`.
pub struct RedbStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    backend: &'static str,
    writer_tx: Option<mpsc::Sender<Command>>,
    writer: Option<JoinHandle<()>>,
    revision: tokio_watch::Receiver<Revision>,
    leases: Arc<LeaseTable>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer; joining it means the file is closed
        // (and its lock released) when the last handle is gone, so a restart in the
        // same process can reopen it at once.
        self.writer_tx.take();
        if let Some(handle) = self.writer.take() {
            let _ = handle.join();
        }
    }
}

impl RedbStore {
    /// Opens (or creates) the store file at `path`.
    ///
    /// Errors: [`StoreError::Locked`] if another process has it open,
    /// [`StoreError::Open`] if it is corrupt or not a yunshu store.
    pub fn open(path: &Path, options: RedbOptions) -> Result<Self, StoreError> {
        private_file(path)?;
        let db = Database::builder()
            .create(path)
            .map_err(|e| open_error(path, e))?;
        Self::start(db, Some(path.to_path_buf()), "redb", options)
    }

    /// A store that lives in memory and vanishes with the process.
    pub fn in_memory() -> Result<Self, StoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| open_error(Path::new(":memory:"), e))?;
        let options = RedbOptions {
            durable: false,
            ..RedbOptions::default()
        };
        Self::start(db, None, "memory", options)
    }

    fn start(
        db: Database,
        path: Option<PathBuf>,
        backend: &'static str,
        options: RedbOptions,
    ) -> Result<Self, StoreError> {
        let display = path.unwrap_or_else(|| PathBuf::from(":memory:"));
        let state = tables::initialise(&db, &display)?;
        let db = Arc::new(db);
        let leases = Arc::new(LeaseTable::load(&db, &display)?);
        let (rev_tx, rev_rx) = tokio_watch::channel(state.revision);
        let (writer_tx, writer_rx) = mpsc::channel();
        let writer = Writer::new(db.clone(), state, leases.clone(), rev_tx, options);
        let handle = std::thread::Builder::new()
            .name("yunshu-redb-writer".into())
            .spawn(move || writer.run(writer_rx))
            .map_err(|e| StoreError::backend("start writer thread", e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                backend,
                writer_tx: Some(writer_tx),
                writer: Some(handle),
                revision: rev_rx,
                leases,
            }),
        })
    }

    async fn submit(
        &self,
        op: &'static str,
        make: impl FnOnce(Reply) -> Command,
    ) -> Result<Answer, StoreError> {
        let (tx, rx) = oneshot::channel();
        let closed = || StoreError::Unavailable {
            op,
            reason: "the store is closing".into(),
        };
        self.inner
            .writer_tx
            .as_ref()
            .ok_or_else(closed)?
            .send(make(tx))
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }
}

pub(crate) type Reply = oneshot::Sender<Result<Answer, StoreError>>;

/// The store file readable by its owner only: it holds the driver CA's key,
/// password hashes and sessions (issue 16, low: it was created 0644). A new
/// file is created 0600 before redb writes to it; an existing one is narrowed.
fn private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e: std::io::Error| StoreError::Open {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map(drop)
            .map_err(io),
        Err(e) => Err(io(e)),
    }
}

fn open_error(path: &Path, e: DatabaseError) -> StoreError {
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            StoreError::Locked {
                path: path.to_path_buf(),
            }
        }
        DatabaseError::UpgradeRequired(v) => StoreError::Open {
            path: path.to_path_buf(),
            reason: format!("the file uses redb file format {v}, which this build cannot read"),
        },
        other => StoreError::Open {
            path: path.to_path_buf(),
            reason: format!("not a readable redb file ({other})"),
        },
    }
}

/// `?` for redb results: any redb error becomes [`StoreError::Backend`] for `op`.
pub(crate) trait OrBackend<T> {
    fn or_backend(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> OrBackend<T> for Result<T, E> {
    fn or_backend(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::backend(op, e.into()))
    }
}

fn unexpected(op: &'static str, answer: Answer) -> StoreError {
    StoreError::Unavailable {
        op,
        reason: format!("writer answered {answer:?}"),
    }
}

#[async_trait]
impl Store for RedbStore {
    fn backend(&self) -> &'static str {
        self.inner.backend
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        check_key(key)?;
        let rtx = self.inner.db.begin_read().or_backend("get")?;
        let kv = rtx.open_table(tables::KV).or_backend("get")?;
        let found = kv.get(key.as_bytes()).or_backend("get")?;
        found.map(|v| codec::decode_kv(key, v.value())).transpose()
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        match self
            .submit("delete", |reply| Command::Delete(key.to_owned(), reply))
            .await?
        {
            Answer::Deleted(existed) => Ok(existed),
            other => Err(unexpected("delete", other)),
        }
    }

    async fn range(&self, prefix: &str, page: PageRequest) -> Result<Page, StoreError> {
        let limit = page_limit(&page);
        let rtx = self.inner.db.begin_read().or_backend("range")?;
        let revision = tables::read_meta(&rtx, tables::META_REVISION).or_backend("range")?;
        let kv = rtx.open_table(tables::KV).or_backend("range")?;
        let mut start = prefix.as_bytes().to_vec();
        if let Some(after) = &page.after {
            // Strictly after the cursor: the cursor followed by a NUL is the next key.
            let mut next = after.as_bytes().to_vec();
            next.push(0);
            start = start.max(next);
        }
        let end = prefix_end(prefix.as_bytes());
        let iter = match &end {
            Some(end) => kv.range::<&[u8]>(start.as_slice()..end.as_slice()),
            None => kv.range::<&[u8]>(start.as_slice()..),
        }
        .or_backend("range")?;
        let mut items = Vec::with_capacity(limit.min(1024));
        let mut more = false;
        for entry in iter {
            let (k, v) = entry.or_backend("range")?;
            if items.len() == limit {
                more = true;
                break;
            }
            let key = codec::decode_key(k.value())?;
            items.push(codec::decode_kv(&key, v.value())?);
        }
        Ok(Page::new(items, more, revision))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        check_txn(&txn)?;
        match self.submit("txn", |reply| Command::Txn(txn, reply)).await? {
            Answer::Txn(outcome) => Ok(outcome),
            other => Err(unexpected("txn", other)),
        }
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, StoreError> {
        let current = *self.inner.revision.borrow();
        let from = if from <= 0 { current + 1 } else { from };
        watch::start(
            Arc::downgrade(&self.inner.db),
            self.inner.revision.clone(),
            prefix.to_owned(),
            from,
        )
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        Ok(*self.inner.revision.borrow())
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        match self
            .submit("compact", |reply| Command::Compact(revision, reply))
            .await?
        {
            Answer::Done => Ok(()),
            other => Err(unexpected("compact", other)),
        }
    }

    async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        if ttl.is_zero() {
            return Err(StoreError::InvalidArgument(
                "lease TTL must be positive".into(),
            ));
        }
        match self
            .submit("lease_grant", |reply| Command::LeaseGrant(ttl, reply))
            .await?
        {
            Answer::Lease(id) => Ok(id),
            other => Err(unexpected("lease_grant", other)),
        }
    }

    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<Duration, StoreError> {
        // A keep-alive is not persisted (as in etcd): after a restart every lease gets
        // a full TTL again, which errs on the side of keeping keys.
        self.inner.leases.keep_alive(lease)
    }

    async fn lease_revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        match self
            .submit("lease_revoke", |reply| Command::LeaseRevoke(lease, reply))
            .await?
        {
            Answer::Done => Ok(()),
            other => Err(unexpected("lease_revoke", other)),
        }
    }

    async fn health(&self) -> Result<(), StoreError> {
        let rtx = self.inner.db.begin_read().or_backend("health")?;
        tables::read_meta(&rtx, tables::META_REVISION).or_backend("health")?;
        if self.inner.writer_tx.is_none() {
            return Err(StoreError::Unavailable {
                op: "health",
                reason: "writer stopped".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
