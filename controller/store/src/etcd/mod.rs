//! The production backend: a real etcd cluster through `etcd-client`.
//!
//! All of yunshu's keys live under one namespace prefix (default `/yunshu/`), so one
//! etcd cluster can serve several installations. The client connects lazily and
//! reconnects by itself: when etcd is down, calls fail fast with
//! [`StoreError::Unavailable`] and the server's readiness monitor retries with
//! backoff; nothing here blocks start-up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Certificate, Client, Compare as EtcdCompare, CompareOp, ConnectOptions, EventType, GetOptions,
    Identity, PutOptions, TlsOptions, Txn as EtcdTxn, TxnOp, WatchOptions,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::StoreError;
use crate::keys::{check_key, check_txn, prefix_end};
use crate::model::{
    Compare, EventKind, KeyValue, LeaseId, Op, Page, PageRequest, Revision, Txn, TxnOutcome,
    WatchBatch, WatchEvent, WatchStream, page_limit,
};
use crate::store::Store;

/// Where the etcd cluster is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `host:port` or `http://host:port`, one per member.
    pub endpoints: Vec<String>,
    /// Prefix of every key yunshu writes.
    pub namespace: String,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// `etcds://`: TLS to every member.
    pub tls: Option<EtcdTls>,
    /// An etcd user (etcd's own authentication, `etcdctl auth enable`).
    pub auth: Option<EtcdAuth>,
}

/// TLS to etcd (`etcds://`): the files are read when the store is opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdTls {
    /// PEM of the CA that signed the members' server certificates. Required:
    /// etcd clusters are signed by a private CA, never by public roots.
    pub ca_file: Option<PathBuf>,
    /// PEM of this client's certificate, for `--client-cert-auth` clusters.
    pub cert_file: Option<PathBuf>,
    /// PEM of its private key.
    pub key_file: Option<PathBuf>,
}

/// An etcd user; the password is read from `password_file` when the store is
/// opened (never held in the configuration, so never in a log of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdAuth {
    pub user: String,
    pub password_file: PathBuf,
}

/// The etcd flags of `yunshu serve` as given, before
/// [`crate::StoreSpec::with_etcd_options`] checks them against the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdOptions {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
}

impl EtcdOptions {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl EtcdConfig {
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            namespace: "/yunshu/".into(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            tls: None,
            auth: None,
        }
    }

    /// Takes the etcd flags, refusing combinations that cannot work or that
    /// would weaken what the operator asked for.
    pub fn apply(&mut self, options: EtcdOptions) -> Result<(), StoreError> {
        let wants_tls =
            options.ca_file.is_some() || options.cert_file.is_some() || options.key_file.is_some();
        match &mut self.tls {
            Some(tls) => {
                tls.ca_file = options.ca_file;
                tls.cert_file = options.cert_file;
                tls.key_file = options.key_file;
            }
            None if wants_tls => {
                return Err(invalid(
                    "--etcd-ca, --etcd-cert and --etcd-key are for etcd over TLS: write the store as etcds://host:port",
                ));
            }
            None => {}
        }
        self.auth = match (options.user, options.password_file) {
            (Some(user), Some(password_file)) => Some(EtcdAuth {
                user,
                password_file,
            }),
            (None, None) => None,
            _ => {
                return Err(invalid("--etcd-user and --etcd-password-file go together"));
            }
        };
        self.check()
    }

    /// The rules [`EtcdConfig::apply`] enforces, for configurations built in code too.
    fn check(&self) -> Result<(), StoreError> {
        if let Some(tls) = &self.tls {
            if tls.ca_file.is_none() {
                return Err(invalid(
                    "etcds:// needs --etcd-ca <pem file>: the CA that signed the etcd members' certificates",
                ));
            }
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                return Err(invalid("--etcd-cert and --etcd-key go together"));
            }
        } else if self.auth.is_some() {
            return Err(invalid(
                "--etcd-user over plain etcd:// would send the password in clear: use etcds://",
            ));
        }
        Ok(())
    }
}

fn invalid(message: &str) -> StoreError {
    StoreError::InvalidArgument(message.to_owned())
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|source| StoreError::EtcdFile {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// The TLS options of `tls`, its files read now.
fn tls_options(tls: &EtcdTls) -> Result<TlsOptions, StoreError> {
    let mut options = TlsOptions::new();
    if let Some(ca) = &tls.ca_file {
        options = options.ca_certificate(Certificate::from_pem(read_file("CA", ca)?));
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        options = options.identity(Identity::from_pem(
            read_file("client certificate", cert)?,
            read_file("client key", key)?,
        ));
    }
    Ok(options)
}

/// The etcd-backed store.
pub struct EtcdStore {
    client: Client,
    namespace: String,
    /// The user and password not yet authenticated because etcd did not answer
    /// when the store was opened; [`Store::health`] tries again.
    pending_user: tokio::sync::Mutex<Option<(String, String)>>,
    /// Over TLS: a refused client certificate reaches the client as a closed
    /// connection only (TLS 1.3 refuses after the handshake), so errors say so.
    tls: bool,
}

impl EtcdStore {
    /// Builds a client; does not wait for etcd to answer (see [`Store::health`]).
    /// With a user, authenticates once: a refusal is
    /// [`StoreError::EtcdAuth`], an etcd that does not answer is tried again
    /// by [`Store::health`].
    pub async fn connect(config: EtcdConfig) -> Result<Self, StoreError> {
        if config.endpoints.is_empty() {
            return Err(StoreError::InvalidArgument(
                "at least one etcd endpoint is needed".into(),
            ));
        }
        config.check()?;
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let endpoints: Vec<String> = config
            .endpoints
            .iter()
            .map(|e| {
                if e.contains("://") {
                    e.clone()
                } else {
                    format!("{scheme}://{e}")
                }
            })
            .collect();
        let mut options = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            .with_timeout(config.request_timeout)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(true)
            // etcd's simple tokens expire (5 min by default): authenticate again.
            .with_auto_token_refresh(true);
        if let Some(tls) = &config.tls {
            options = options.with_tls(tls_options(tls)?);
        }
        // The user is added after connecting: with one in the options the
        // client authenticates inside `connect` and fails when etcd is down.
        let client = Client::connect(&endpoints, Some(options))
            .await
            .map_err(|e| map_err("connect", e))?;
        let store = Self {
            client,
            namespace: config.namespace,
            pending_user: tokio::sync::Mutex::new(None),
            tls: config.tls.is_some(),
        };
        if let Some(auth) = &config.auth {
            let password = String::from_utf8(read_file("password", &auth.password_file)?)
                .map_err(|_| invalid("the etcd password file is not UTF-8"))?;
            // A file written by `echo` ends in a newline that is not part of it.
            let password = password.trim_end_matches(['\n', '\r']).to_owned();
            *store.pending_user.lock().await = Some((auth.user.clone(), password));
            if let Err(e) = store.authenticate().await {
                if !e.is_retryable() {
                    return Err(e);
                }
                tracing::warn!(error = %e, "etcd did not answer the authentication; trying again");
            }
        }
        Ok(store)
    }

    /// `err`, with the likely TLS cause named when etcd closed the connection.
    fn hint(&self, err: StoreError) -> StoreError {
        match err {
            StoreError::Unavailable { op, reason } if self.tls => StoreError::Unavailable {
                op,
                reason: format!(
                    "{reason} (over TLS: if etcd is up, it refused this client's certificate — check --etcd-cert/--etcd-key against etcd's --trusted-ca-file — or --etcd-ca does not hold the CA of etcd's certificate)"
                ),
            },
            other => other,
        }
    }

    /// Authenticates the pending user, if any. Every clone of the client
    /// shares the credentials and the token, so this serves all calls.
    async fn authenticate(&self) -> Result<(), StoreError> {
        let mut pending = self.pending_user.lock().await;
        let Some((user, password)) = pending.clone() else {
            return Ok(());
        };
        match self
            .client
            .clone()
            .update_user(Some((user.clone(), password)))
            .await
        {
            Ok(()) => {
                *pending = None;
                Ok(())
            }
            Err(e) => match map_err("authenticate", e) {
                e @ StoreError::Unavailable { .. } => Err(self.hint(e)),
                StoreError::InvalidArgument(reason) => Err(StoreError::EtcdAuth { user, reason }),
                StoreError::Backend { source, .. } => Err(StoreError::EtcdAuth {
                    user,
                    reason: source.to_string(),
                }),
                other => Err(StoreError::EtcdAuth {
                    user,
                    reason: other.to_string(),
                }),
            },
        }
    }

    fn full(&self, key: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.namespace.len() + key.len());
        out.extend_from_slice(self.namespace.as_bytes());
        out.extend_from_slice(key.as_bytes());
        out
    }

    fn convert(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        convert_kv(&self.namespace, kv)
    }
}

fn convert_kv(namespace: &str, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    let full = kv.key();
    let key = full
        .strip_prefix(namespace.as_bytes())
        .and_then(|k| std::str::from_utf8(k).ok())
        .ok_or_else(|| StoreError::Corrupt {
            key: String::from_utf8_lossy(full).into_owned(),
            reason: "key outside the namespace or not UTF-8".into(),
        })?;
    Ok(KeyValue {
        key: key.to_owned(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: (kv.lease() != 0).then_some(kv.lease()),
    })
}

/// Maps client errors onto the store's, by gRPC code (never by message text, except
/// for the two etcd conditions that share a code with others).
fn map_err(op: &'static str, e: etcd_client::Error) -> StoreError {
    use tonic::Code;
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            let msg = status.message().to_owned();
            match status.code() {
                Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Aborted
                | Code::Cancelled
                | Code::Unknown => StoreError::Unavailable {
                    op,
                    // The transport's causes (a closed connection, a
                    // certificate refused) are in the source, not the message.
                    reason: match std::error::Error::source(&status) {
                        Some(source) => format!("{msg}: {}", causes(source)),
                        None => msg,
                    },
                },
                Code::NotFound if msg.contains("lease") => StoreError::LeaseNotFound(0),
                Code::OutOfRange => StoreError::Compacted {
                    requested: 0,
                    oldest: 0,
                },
                Code::InvalidArgument | Code::FailedPrecondition => {
                    StoreError::InvalidArgument(msg)
                }
                _ => StoreError::Backend {
                    op,
                    source: Box::new(etcd_client::Error::GRpcStatus(status)),
                },
            }
        }
        // The client reports a keep-alive of an expired lease this way.
        etcd_client::Error::LeaseKeepAliveError(_) => StoreError::LeaseNotFound(0),
        // The causes say why: refused, or a TLS handshake that failed (no
        // client certificate, an unknown CA).
        etcd_client::Error::TransportError(t) => StoreError::Unavailable {
            op,
            reason: causes(&t),
        },
        etcd_client::Error::IoError(io) => StoreError::Unavailable {
            op,
            reason: io.to_string(),
        },
        other => StoreError::Backend {
            op,
            source: Box::new(other),
        },
    }
}

/// `err` and its sources, `: `-separated.
fn causes(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

fn with_lease(err: StoreError, lease: LeaseId) -> StoreError {
    match err {
        StoreError::LeaseNotFound(_) => StoreError::LeaseNotFound(lease),
        other => other,
    }
}

#[async_trait]
impl Store for EtcdStore {
    fn backend(&self) -> &'static str {
        "etcd"
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        check_key(key)?;
        let resp = self
            .client
            .kv_client()
            .get(self.full(key), None)
            .await
            .map_err(|e| map_err("get", e))?;
        resp.kvs().first().map(|kv| self.convert(kv)).transpose()
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        let resp = self
            .client
            .kv_client()
            .delete(self.full(key), None)
            .await
            .map_err(|e| map_err("delete", e))?;
        Ok(resp.deleted() > 0)
    }

    async fn range(&self, prefix: &str, page: PageRequest) -> Result<Page, StoreError> {
        let limit = page_limit(&page);
        let full_prefix = self.full(prefix);
        let mut start = full_prefix.clone();
        if let Some(after) = &page.after {
            let mut next = self.full(after);
            next.push(0);
            start = start.max(next);
        }
        // The namespace prefix is never all 0xff, so the range end always exists.
        let end = prefix_end(&full_prefix).unwrap_or_default();
        let options = GetOptions::new().with_range(end).with_limit(limit as i64);
        let resp = self
            .client
            .kv_client()
            .get(start, Some(options))
            .await
            .map_err(|e| map_err("range", e))?;
        let items = resp
            .kvs()
            .iter()
            .map(|kv| self.convert(kv))
            .collect::<Result<Vec<_>, _>>()?;
        let revision = resp.header().map(|h| h.revision()).unwrap_or_default();
        Ok(Page::new(items, resp.more(), revision))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        check_txn(&txn)?;
        let compares: Vec<EtcdCompare> = txn
            .compares
            .iter()
            .map(|c| match c {
                Compare::ModRevision { key, revision } => {
                    EtcdCompare::mod_revision(self.full(key), CompareOp::Equal, *revision)
                }
            })
            .collect();
        let lease = txn.ops.iter().find_map(|op| match op {
            Op::Put { lease, .. } => *lease,
            Op::Delete { .. } => None,
        });
        let ops: Vec<TxnOp> = txn
            .ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value, lease } => {
                    let options = lease.map(|l| PutOptions::new().with_lease(l));
                    TxnOp::put(self.full(key), value.clone(), options)
                }
                Op::Delete { key } => TxnOp::delete(self.full(key), None),
            })
            .collect();
        let resp = self
            .client
            .kv_client()
            .txn(EtcdTxn::new().when(compares).and_then(ops))
            .await
            .map_err(|e| with_lease(map_err("txn", e), lease.unwrap_or_default()))?;
        if !resp.succeeded() {
            return Ok(TxnOutcome::Conflict);
        }
        let revision = resp.header().map(|h| h.revision()).unwrap_or_default();
        Ok(TxnOutcome::Committed { revision })
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, StoreError> {
        let mut options = WatchOptions::new().with_prefix();
        if from > 0 {
            options = options.with_start_revision(from);
        }
        let mut stream = self
            .client
            .watch_client()
            .watch(self.full(prefix), Some(options))
            .await
            .map_err(|e| map_err("watch", e))?;
        // The first response confirms the watch or says the start is compacted.
        let first = stream.message().await.map_err(|e| map_err("watch", e))?;
        if let Some(resp) = &first
            && resp.compact_revision() > 0
        {
            return Err(StoreError::Compacted {
                requested: from,
                oldest: resp.compact_revision(),
            });
        }
        let namespace = self.namespace.clone();
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            let mut pending = first;
            loop {
                let resp = match pending.take() {
                    Some(r) => r,
                    None => {
                        tokio::select! {
                            msg = stream.message() => match msg {
                                Ok(Some(r)) => r,
                                Ok(None) => {
                                    let _ = tx.send(Err(StoreError::Unavailable {
                                        op: "watch",
                                        reason: "etcd closed the watch stream".into(),
                                    })).await;
                                    return;
                                }
                                Err(e) => {
                                    let _ = tx.send(Err(map_err("watch", e))).await;
                                    return;
                                }
                            },
                            _ = tx.closed() => return,
                        }
                    }
                };
                if resp.compact_revision() > 0 {
                    let _ = tx
                        .send(Err(StoreError::Compacted {
                            requested: from,
                            oldest: resp.compact_revision(),
                        }))
                        .await;
                    return;
                }
                if resp.canceled() {
                    let _ = tx
                        .send(Err(StoreError::Unavailable {
                            op: "watch",
                            reason: format!("etcd cancelled the watch: {}", resp.cancel_reason()),
                        }))
                        .await;
                    return;
                }
                match batches(&namespace, resp.events()) {
                    Ok(batches) => {
                        for batch in batches {
                            if tx.send(Ok(batch)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        // A one-key read of a key that never exists: only the header is wanted.
        let resp = self
            .client
            .kv_client()
            .get(
                self.full("\u{0}revision-probe"),
                Some(GetOptions::new().with_count_only()),
            )
            .await
            .map_err(|e| map_err("revision", e))?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or_default())
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        match self.client.kv_client().compact(revision, None).await {
            Ok(_) => Ok(()),
            // Compacting at or below the current compaction point is already done.
            Err(e) => match map_err("compact", e) {
                StoreError::Compacted { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        if ttl.is_zero() {
            return Err(StoreError::InvalidArgument(
                "lease TTL must be positive".into(),
            ));
        }
        // etcd leases are whole seconds; round up so nobody gets less than asked.
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let resp = self
            .client
            .lease_client()
            .grant(secs as i64, None)
            .await
            .map_err(|e| map_err("lease_grant", e))?;
        Ok(resp.id())
    }

    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<Duration, StoreError> {
        let (mut keeper, mut responses) = self
            .client
            .lease_client()
            .keep_alive(lease)
            .await
            .map_err(|e| with_lease(map_err("lease_keep_alive", e), lease))?;
        keeper
            .keep_alive()
            .await
            .map_err(|e| with_lease(map_err("lease_keep_alive", e), lease))?;
        let resp = responses
            .message()
            .await
            .map_err(|e| with_lease(map_err("lease_keep_alive", e), lease))?;
        match resp {
            Some(r) if r.ttl() > 0 => Ok(Duration::from_secs(r.ttl() as u64)),
            _ => Err(StoreError::LeaseNotFound(lease)),
        }
    }

    async fn lease_revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.client
            .lease_client()
            .revoke(lease)
            .await
            .map_err(|e| with_lease(map_err("lease_revoke", e), lease))?;
        Ok(())
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.authenticate().await?;
        self.client
            .maintenance_client()
            .status()
            .await
            .map_err(|e| self.hint(map_err("health", e)))?;
        Ok(())
    }
}

/// Splits etcd's events into one batch per revision (etcd may put several
/// revisions in one response; it never splits one revision across responses).
fn batches(namespace: &str, events: &[etcd_client::Event]) -> Result<Vec<WatchBatch>, StoreError> {
    let mut out: Vec<WatchBatch> = Vec::new();
    for event in events {
        let Some(kv) = event.kv() else { continue };
        let mut kv = convert_kv(namespace, kv)?;
        let kind = match event.event_type() {
            EventType::Put => EventKind::Put,
            EventType::Delete => {
                kv.create_revision = 0;
                kv.version = 0;
                kv.lease = None;
                kv.value.clear();
                EventKind::Delete
            }
        };
        let revision = kv.mod_revision;
        let event = WatchEvent { kind, kv };
        match out.last_mut() {
            Some(batch) if batch.revision == revision => batch.events.push(event),
            _ => out.push(WatchBatch {
                revision,
                events: vec![event],
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
