//! Leader election over the [`Store`] trait: which `yunshu serve` replica runs the
//! reconcilers and timers.
//!
//! Owns one leader key (e.g. `leader/controller`), the leases it attaches to it, and
//! the [`Leadership`] channel it publishes. It must not know etcd or redb types (it
//! works on any [`Store`]; with the embedded redb store the one replica simply
//! always wins), and it must not decide what a leader does: callers watch
//! [`Election::leadership`] and start or stop their own work.
//!
//! # How it works
//!
//! A candidate grants a lease of `ttl` and writes its id to the key with a
//! "must not exist" compare (`mod revision == 0`), attached to the lease. The
//! winner's **term** is the key's mod revision. Losers read the key, publish
//! `Follower { leader }` and watch the key from the revision they read; when it is
//! deleted (resign, or lease expiry — both backends emit a delete event then) they
//! campaign again. A follower also re-reads the key every TTL (every TTL/4 while
//! its watch is broken), so a lost watch delays a takeover, never prevents it.
//!
//! The leader renews its lease every TTL/3 and keeps a **local deadline**: the
//! instant before the last successful keep-alive was sent, plus the TTL, minus a
//! safety margin (TTL/5). The store cannot expire the lease before that instant,
//! so until then nobody else can hold the key. The leader reports `Follower` as
//! soon as a keep-alive fails, the key no longer holds its id at its term, or the
//! deadline passes with no answer (a hung store call does not keep it leading).
//!
//! # Fencing
//!
//! Leadership seen on the channel is a belief that may be stale by the time work
//! is written (a paused process, a slow write). So **every write made because this
//! replica leads must carry a compare on the leader key's mod revision (`term`)**:
//! build it with [`Election::fence`] (or [`fence`]). A deposed leader's fenced
//! transaction then fails with [`TxnOutcome::Conflict`](crate::TxnOutcome::Conflict),
//! because its key was deleted and a successor's put has a newer mod revision.
//! Reads and idempotent, re-checked work need no fence; anything that must not run
//! twice does.
//!
//! Candidate ids must be unique among live replicas (the pod name, say): a
//! candidate that finds its own id in the key under a lease it does not hold (a
//! previous incarnation that crashed) deletes that stale key so it need not wait
//! for the lease to expire.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};

use crate::error::StoreError;
use crate::model::{EventKind, LeaseId, Revision, Txn, TxnOutcome, WatchBatch, WatchStream};
use crate::store::Store;

/// The lease TTL used by `yunshu serve`: a crashed leader is replaced in under
/// three seconds (TTL, plus etcd's expiry check, plus one campaign round trip).
pub const DEFAULT_TTL: Duration = Duration::from_secs(2);

/// What this candidate currently believes about the election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// This candidate leads. `term` is the leader key's mod revision: fence every
    /// leader-only write with it ([`Election::fence`]).
    Leader { term: Revision },
    /// Someone else leads (`Some(candidate id)`), or nobody is known to (`None`:
    /// not yet campaigned, between leaders, store unreachable, or stopped).
    Follower { leader: Option<String> },
}

impl Leadership {
    pub fn is_leader(&self) -> bool {
        matches!(self, Leadership::Leader { .. })
    }

    /// The term while leading.
    pub fn term(&self) -> Option<Revision> {
        match self {
            Leadership::Leader { term } => Some(*term),
            Leadership::Follower { .. } => None,
        }
    }
}

/// Why an election call failed.
#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    /// The lease could not be revoked on resign; it expires within one TTL, so the
    /// hand-over is late, not lost.
    #[error("cannot revoke lease {lease} of the leader key on resign")]
    ResignRevoke {
        lease: LeaseId,
        #[source]
        source: StoreError,
    },
}

/// Adds the fencing compare to `txn`: it commits only while `key` is still at
/// `term`, i.e. while the leader of that term has not been deposed.
pub fn fence(txn: Txn, key: &str, term: Revision) -> Txn {
    txn.when_mod_revision(key, term)
}

/// One candidate, campaigning in a spawned task from [`Election::new`] until it
/// resigns or is dropped.
///
/// Dropping it stops campaigning and revokes its lease in the background (best
/// effort: if the runtime is shutting down, the lease expires within one TTL).
pub struct Election {
    shared: Arc<Shared>,
    leadership: watch::Receiver<Leadership>,
    task: JoinHandle<()>,
}

impl Election {
    /// Starts campaigning for `key` as `candidate_id` with leases of `ttl`
    /// ([`DEFAULT_TTL`] in production; etcd rounds it up to whole seconds).
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (like `tokio::spawn`).
    pub fn new(store: Arc<dyn Store>, key: &str, candidate_id: String, ttl: Duration) -> Self {
        let shared = Arc::new(Shared {
            store,
            key: key.to_owned(),
            candidate: candidate_id,
            ttl,
            lease: Mutex::new(None),
            revoke_on_stop: AtomicBool::new(true),
        });
        let (tx, leadership) = watch::channel(Leadership::Follower { leader: None });
        let campaign = Campaign {
            shared: shared.clone(),
            tx,
        };
        let task = tokio::spawn(campaign.run());
        Self {
            shared,
            leadership,
            task,
        }
    }

    /// The leadership channel: starts as `Follower { leader: None }`; every change
    /// is sent once. After the election stops it reads `Follower { leader: None }`.
    pub fn leadership(&self) -> watch::Receiver<Leadership> {
        self.leadership.clone()
    }

    /// The leader key this candidate campaigns for.
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    pub fn candidate_id(&self) -> &str {
        &self.shared.candidate
    }

    /// Adds the fencing compare on this election's key at `term` (see the module
    /// docs): the transaction conflicts once the leader of `term` is deposed.
    pub fn fence(&self, txn: Txn, term: Revision) -> Txn {
        fence(txn, &self.shared.key, term)
    }

    /// Stops campaigning and revokes the lease now, so another candidate takes
    /// over at once instead of after the TTL. Idempotent in effect: a lease that
    /// already expired is not an error.
    pub async fn resign(mut self) -> Result<(), ElectionError> {
        self.shared.revoke_on_stop.store(false, Ordering::SeqCst);
        self.task.abort();
        // Cancelled (or panicked): either way the campaign no longer renews the lease.
        let _ = (&mut self.task).await;
        let Some(lease) = self.shared.take_lease() else {
            return Ok(());
        };
        match self.shared.store.lease_revoke(lease).await {
            Ok(()) | Err(StoreError::LeaseNotFound(_)) => {
                tracing::info!(
                    candidate = %self.shared.candidate,
                    key = %self.shared.key,
                    "resigned from the election"
                );
                Ok(())
            }
            Err(source) => Err(ElectionError::ResignRevoke { lease, source }),
        }
    }

    /// Test only: stops the task the way a crash would, leaving the lease to
    /// expire on its own.
    #[cfg(test)]
    fn crash(self) {
        self.shared.revoke_on_stop.store(false, Ordering::SeqCst);
        self.task.abort();
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        // The campaign's own drop publishes `Follower` and revokes (best effort).
        self.task.abort();
    }
}

/// State both the handle and the campaign task see.
struct Shared {
    store: Arc<dyn Store>,
    key: String,
    candidate: String,
    ttl: Duration,
    /// The lease of the current attempt or term, for resign and drop to revoke.
    lease: Mutex<Option<LeaseId>>,
    /// Cleared by `resign` (which revokes itself) and by the crash simulation.
    revoke_on_stop: AtomicBool,
}

impl Shared {
    fn set_lease(&self, lease: Option<LeaseId>) {
        *self.lease.lock().unwrap_or_else(|p| p.into_inner()) = lease;
    }

    fn take_lease(&self) -> Option<LeaseId> {
        self.lease.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Renew this often while leading.
    fn keep_alive_every(&self) -> Duration {
        self.ttl / 3
    }

    /// Subtracted from the lease deadline: slack for clock-rate differences and
    /// for a caller between checking leadership and writing (fencing covers the
    /// rest).
    fn margin(&self) -> Duration {
        self.ttl / 5
    }

    /// Retry pause after a store error, and re-read period without a watch.
    fn poll(&self) -> Duration {
        self.ttl / 4
    }
}

/// Won a term: what the leader loop needs.
struct Term {
    lease: LeaseId,
    term: Revision,
    deadline: Instant,
}

/// The campaign task. Dropping it (task end or abort) publishes `Follower` and,
/// unless told not to, revokes the lease in the background.
struct Campaign {
    shared: Arc<Shared>,
    tx: watch::Sender<Leadership>,
}

impl Campaign {
    async fn run(self) {
        let mut failing = false;
        loop {
            match self.attempt().await {
                Ok(Some(won)) => {
                    failing = false;
                    self.lead(won).await;
                }
                Ok(None) => failing = false,
                Err(e) => {
                    // One warning per outage, not one per retry.
                    if failing {
                        tracing::debug!(candidate = %self.shared.candidate, error = %e, "campaign still failing");
                    } else {
                        tracing::warn!(candidate = %self.shared.candidate, error = %e, "campaign failed; retrying");
                    }
                    failing = true;
                    self.publish(Leadership::Follower { leader: None }, "store unreachable");
                    sleep(self.shared.poll()).await;
                }
            }
        }
    }

    /// One try for the key: `Some` when won; `None` when someone else held it and
    /// has since gone (campaign again at once).
    async fn attempt(&self) -> Result<Option<Term>, StoreError> {
        let s = &self.shared;
        let sent = Instant::now();
        let lease = self
            .bounded("lease_grant", s.store.lease_grant(s.ttl))
            .await?;
        s.set_lease(Some(lease));
        let txn = Txn::new().when_mod_revision(&s.key, 0).put_with_lease(
            &s.key,
            s.candidate.as_bytes().to_vec(),
            lease,
        );
        match self.bounded("txn", s.store.txn(txn)).await {
            Ok(TxnOutcome::Committed { revision }) => {
                return Ok(Some(Term {
                    lease,
                    term: revision,
                    deadline: sent + s.ttl.saturating_sub(s.margin()),
                }));
            }
            Ok(TxnOutcome::Conflict) => self.drop_lease(lease).await,
            Err(e) => {
                // The put may have committed before the error: revoking undoes it.
                self.drop_lease(lease).await;
                return Err(e);
            }
        }
        self.follow().await.map(|()| None)
    }

    /// Revokes an unused lease (best effort: it expires within the TTL anyway).
    async fn drop_lease(&self, lease: LeaseId) {
        let s = &self.shared;
        s.set_lease(None);
        match timeout(s.poll(), s.store.lease_revoke(lease)).await {
            Ok(Ok(())) | Ok(Err(StoreError::LeaseNotFound(_))) => {}
            Ok(Err(e)) => tracing::debug!(lease, error = %e, "cannot revoke an unused lease"),
            Err(_) => tracing::debug!(lease, "revoking an unused lease timed out"),
        }
    }

    /// Follows the current holder until the key is deleted.
    async fn follow(&self) -> Result<(), StoreError> {
        let s = &self.shared;
        let Some(kv) = self.bounded("get", s.store.get(&s.key)).await? else {
            return Ok(());
        };
        if kv.value == s.candidate.as_bytes() {
            // Ours, under a lease this task does not hold: a previous incarnation's.
            tracing::info!(candidate = %s.candidate, "deleting a stale leader key left by this candidate");
            let stale = Txn::new()
                .when_mod_revision(&s.key, kv.mod_revision)
                .delete(&s.key);
            self.bounded("txn", s.store.txn(stale)).await?;
            return Ok(());
        }
        let mut seen = kv.mod_revision;
        self.publish(
            Leadership::Follower {
                leader: Some(String::from_utf8_lossy(&kv.value).into_owned()),
            },
            "another candidate holds the key",
        );
        let mut watch = self.open_watch(seen + 1).await;
        let recheck_every = |watch: &Option<WatchStream>| {
            Instant::now() + if watch.is_some() { s.ttl } else { s.poll() }
        };
        let mut recheck = recheck_every(&watch);
        loop {
            tokio::select! {
                item = next_batch(&mut watch) => match item {
                    Some(Ok(batch)) => {
                        seen = batch.revision;
                        for event in batch.events.into_iter().filter(|e| e.kv.key == s.key) {
                            match event.kind {
                                EventKind::Delete => return Ok(()),
                                EventKind::Put => self.publish(
                                    Leadership::Follower {
                                        leader: Some(String::from_utf8_lossy(&event.kv.value).into_owned()),
                                    },
                                    "another candidate holds the key",
                                ),
                            }
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(candidate = %s.candidate, error = %e, "leader watch ended; polling");
                        watch = None;
                        recheck = recheck.min(recheck_every(&watch));
                    }
                    None => {
                        watch = None;
                        recheck = recheck.min(recheck_every(&watch));
                    }
                },
                () = sleep_until(recheck) => {
                    let Some(kv) = self.bounded("get", s.store.get(&s.key)).await? else {
                        return Ok(());
                    };
                    self.publish(
                        Leadership::Follower {
                            leader: Some(String::from_utf8_lossy(&kv.value).into_owned()),
                        },
                        "another candidate holds the key",
                    );
                    seen = seen.max(kv.mod_revision);
                    if watch.is_none() {
                        watch = self.open_watch(seen + 1).await;
                    }
                    recheck = recheck_every(&watch);
                }
            }
        }
    }

    /// A campaign call with a time limit, so a store that hangs instead of failing
    /// (a partition) delays the campaign rather than stopping it for good.
    async fn bounded<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let limit = self.shared.ttl * 2;
        match timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable {
                op,
                reason: format!("no answer within {limit:?}"),
            }),
        }
    }

    async fn open_watch(&self, from: Revision) -> Option<WatchStream> {
        let s = &self.shared;
        match timeout(s.ttl, s.store.watch(&s.key, from)).await {
            Ok(Ok(w)) => Some(w),
            Ok(Err(e)) => {
                tracing::debug!(candidate = %s.candidate, error = %e, "cannot watch the leader key; polling");
                None
            }
            Err(_) => None,
        }
    }

    /// Leads until the term cannot be proven any more, then steps down.
    async fn lead(&self, won: Term) {
        let s = &self.shared;
        let Term {
            lease,
            term,
            mut deadline,
        } = won;
        self.publish(Leadership::Leader { term }, "won the campaign");
        let mut watch = match timeout_at(deadline, s.store.watch(&s.key, term + 1)).await {
            Ok(Ok(w)) => Some(w),
            _ => None,
        };
        // Fixed per round: watch batches for other keys under the prefix must not
        // postpone the keep-alive.
        let mut tick = Instant::now() + s.keep_alive_every();
        let reason = loop {
            tokio::select! {
                () = sleep_until(tick.min(deadline)) => {}
                item = next_batch(&mut watch) => match item {
                    Some(Ok(batch)) => {
                        if batch.events.iter().any(|e| e.kv.key == s.key) {
                            break "the leader key was deleted or overwritten".to_owned();
                        }
                        continue;
                    }
                    Some(Err(_)) | None => {
                        // Keep-alives and the re-read below still prove the term.
                        watch = None;
                        continue;
                    }
                },
            }
            if Instant::now() >= deadline {
                break "the lease deadline passed".to_owned();
            }
            let sent = Instant::now();
            tick = sent + s.keep_alive_every();
            match timeout_at(deadline, s.store.lease_keep_alive(lease)).await {
                Ok(Ok(granted)) => deadline = sent + granted.min(s.ttl).saturating_sub(s.margin()),
                Ok(Err(e)) => break format!("keep-alive failed: {e}"),
                Err(_) => break "keep-alive did not answer before the lease deadline".to_owned(),
            }
            match timeout_at(deadline, s.store.get(&s.key)).await {
                Ok(Ok(Some(kv)))
                    if kv.mod_revision == term && kv.value == s.candidate.as_bytes() => {}
                Ok(Ok(_)) => break "the leader key no longer holds this candidate".to_owned(),
                Ok(Err(e)) => break format!("cannot read the leader key: {e}"),
                Err(_) => {
                    break "reading the leader key did not answer before the lease deadline"
                        .to_owned();
                }
            }
            if watch.is_none() {
                watch = match timeout_at(deadline, s.store.watch(&s.key, term + 1)).await {
                    Ok(Ok(w)) => Some(w),
                    _ => None,
                };
            }
        };
        self.publish(Leadership::Follower { leader: None }, &reason);
        self.drop_lease(lease).await;
    }

    /// Sends `new` if it differs from the current value, logging the change once.
    fn publish(&self, new: Leadership, reason: &str) {
        let mut old = None;
        self.tx.send_if_modified(|current| {
            if *current == new {
                return false;
            }
            old = Some(std::mem::replace(current, new.clone()));
            true
        });
        let Some(old) = old else { return };
        let candidate = &self.shared.candidate;
        let key = &self.shared.key;
        match (&old, &new) {
            (_, Leadership::Leader { term }) => {
                tracing::info!(%candidate, %key, term, "became leader");
            }
            (Leadership::Leader { term }, Leadership::Follower { .. }) => {
                tracing::warn!(%candidate, %key, term, reason, "stepped down as leader");
            }
            (
                _,
                Leadership::Follower {
                    leader: Some(leader),
                },
            ) => {
                tracing::info!(%candidate, %key, %leader, "following");
            }
            (_, Leadership::Follower { leader: None }) => {
                tracing::info!(%candidate, %key, reason, "no leader known");
            }
        }
    }
}

impl Drop for Campaign {
    fn drop(&mut self) {
        self.publish(Leadership::Follower { leader: None }, "election stopped");
        if !self.shared.revoke_on_stop.load(Ordering::SeqCst) {
            return;
        }
        let Some(lease) = self.shared.take_lease() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = self.shared.store.clone();
            let ttl = self.shared.ttl;
            runtime.spawn(async move {
                let _ = timeout(ttl, store.lease_revoke(lease)).await;
            });
        }
    }
}

/// The next batch of an optional watch; pends forever without one.
async fn next_batch(watch: &mut Option<WatchStream>) -> Option<Result<WatchBatch, StoreError>> {
    match watch {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant as StdInstant;

    use yunshu_testkit::EtcdServer;

    use super::*;
    use crate::{EtcdConfig, EtcdStore, KeyValue, Page, PageRequest, RedbStore};

    const KEY: &str = "leader/controller";

    fn memory_store() -> Arc<dyn Store> {
        Arc::new(RedbStore::in_memory().expect("memory store"))
    }

    async fn etcd_server() -> EtcdServer {
        tokio::task::spawn_blocking(EtcdServer::start)
            .await
            .expect("join")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// One client per candidate, as separate replicas would have.
    async fn etcd_client(endpoint: String) -> Arc<dyn Store> {
        Arc::new(
            EtcdStore::connect(EtcdConfig::new(vec![endpoint]))
                .await
                .expect("connect"),
        )
    }

    fn candidates(stores: &[Arc<dyn Store>], ttl: Duration) -> Vec<Option<Election>> {
        stores
            .iter()
            .enumerate()
            .map(|(i, store)| Some(Election::new(store.clone(), KEY, format!("c{i}"), ttl)))
            .collect()
    }

    /// Indexes and terms of the candidates that report `Leader` now.
    fn leaders(elections: &[Option<Election>]) -> Vec<(usize, Revision)> {
        elections
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((i, e.as_ref()?.leadership().borrow().term()?)))
            .collect()
    }

    /// Waits until exactly one candidate other than `except` leads; returns it.
    async fn wait_one_leader(
        elections: &[Option<Election>],
        except: Option<usize>,
        patience: Duration,
    ) -> (usize, Revision) {
        let started = StdInstant::now();
        loop {
            let now = leaders(elections);
            if let [(i, term)] = now.as_slice()
                && Some(*i) != except
            {
                return (*i, *term);
            }
            assert!(
                started.elapsed() < patience,
                "no single leader after {patience:?}: {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn check_fenced(store: &dyn Store, key: &str, term: Revision, committed: bool) {
        let txn = fence(Txn::new().put("work/item", b"done".to_vec()), key, term);
        let outcome = store.txn(txn).await.expect("fenced txn");
        assert_eq!(
            outcome.is_committed(),
            committed,
            "term {term}: {outcome:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn single_candidate_on_redb_leads_promptly() {
        let store = memory_store();
        let started = StdInstant::now();
        let elections = candidates(std::slice::from_ref(&store), DEFAULT_TTL);
        let (_, term) = wait_one_leader(&elections, None, Duration::from_secs(1)).await;
        println!("redb: leader after {:?}", started.elapsed());
        let kv = store.get(KEY).await.expect("get").expect("leader key");
        assert_eq!(kv.value, b"c0");
        assert_eq!(kv.mod_revision, term);
        let election = elections[0].as_ref().expect("c0");
        let txn = election.fence(Txn::new().put("work/item", b"x".to_vec()), term);
        assert!(store.txn(txn).await.expect("txn").is_committed());
        // Still leading after several keep-alive rounds.
        tokio::time::sleep(DEFAULT_TTL * 2).await;
        assert_eq!(leaders(&elections), vec![(0, term)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deposed_leader_is_fenced_on_redb() {
        let store = memory_store();
        let ttl = Duration::from_secs(1);
        let mut elections = candidates(&[store.clone(), store.clone()], ttl);
        let (old, old_term) = wait_one_leader(&elections, None, Duration::from_secs(1)).await;
        check_fenced(&*store, KEY, old_term, true).await;
        elections[old].take().expect("leader").crash();
        // redb expires the lease itself and emits the delete the follower watches.
        let (_, new_term) =
            wait_one_leader(&elections, Some(old), ttl + Duration::from_secs(1)).await;
        assert!(new_term > old_term);
        check_fenced(&*store, KEY, old_term, false).await;
        check_fenced(&*store, KEY, new_term, true).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leader_steps_down_when_its_key_is_deleted() {
        let store = memory_store();
        let elections = candidates(std::slice::from_ref(&store), DEFAULT_TTL);
        let (_, term) = wait_one_leader(&elections, None, Duration::from_secs(1)).await;
        let mut rx = elections[0].as_ref().expect("c0").leadership();
        rx.mark_unchanged();
        store.delete(KEY).await.expect("delete");
        tokio::time::timeout(Duration::from_secs(1), rx.wait_for(|l| !l.is_leader()))
            .await
            .expect("stepped down in time")
            .expect("channel open");
        let (_, again) = wait_one_leader(&elections, None, Duration::from_secs(1)).await;
        assert!(again > term, "a new term: {again} > {term}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_to_neighbouring_keys_do_not_disturb_the_leader() {
        let store = memory_store();
        let ttl = Duration::from_secs(1);
        let elections = candidates(std::slice::from_ref(&store), ttl);
        let (_, term) = wait_one_leader(&elections, None, Duration::from_secs(1)).await;
        let mut rx = elections[0].as_ref().expect("c0").leadership();
        rx.mark_unchanged();
        // The watch is by prefix: these land in the leader's watch every 10 ms.
        let started = StdInstant::now();
        while started.elapsed() < ttl * 2 {
            store
                .put(&format!("{KEY}-other"), b"x".to_vec())
                .await
                .expect("put");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!rx.has_changed().expect("open"), "{:?}", *rx.borrow());
        assert_eq!(leaders(&elections), vec![(0, term)]);
    }

    /// A store whose every call hangs once `stalled` is set: a partition in which
    /// requests neither fail nor answer.
    struct Stalling {
        inner: Arc<dyn Store>,
        stalled: AtomicBool,
    }

    impl Stalling {
        async fn gate(&self) {
            if self.stalled.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
        }
    }

    #[async_trait::async_trait]
    impl Store for Stalling {
        fn backend(&self) -> &'static str {
            "stalling"
        }
        async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
            self.gate().await;
            self.inner.get(key).await
        }
        async fn delete(&self, key: &str) -> Result<bool, StoreError> {
            self.gate().await;
            self.inner.delete(key).await
        }
        async fn range(&self, prefix: &str, page: PageRequest) -> Result<Page, StoreError> {
            self.gate().await;
            self.inner.range(prefix, page).await
        }
        async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
            self.gate().await;
            self.inner.txn(txn).await
        }
        async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, StoreError> {
            self.gate().await;
            self.inner.watch(prefix, from).await
        }
        async fn revision(&self) -> Result<Revision, StoreError> {
            self.gate().await;
            self.inner.revision().await
        }
        async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
            self.gate().await;
            self.inner.compact(revision).await
        }
        async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
            self.gate().await;
            self.inner.lease_grant(ttl).await
        }
        async fn lease_keep_alive(&self, lease: LeaseId) -> Result<Duration, StoreError> {
            self.gate().await;
            self.inner.lease_keep_alive(lease).await
        }
        async fn lease_revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
            self.gate().await;
            self.inner.lease_revoke(lease).await
        }
        async fn health(&self) -> Result<(), StoreError> {
            self.gate().await;
            self.inner.health().await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leader_steps_down_before_its_lease_can_expire_when_calls_hang() {
        let inner = memory_store();
        let stalling = Arc::new(Stalling {
            inner: inner.clone(),
            stalled: AtomicBool::new(false),
        });
        let ttl = Duration::from_secs(1);
        let elections = candidates(&[stalling.clone() as Arc<dyn Store>], ttl);
        wait_one_leader(&elections, None, Duration::from_secs(1)).await;
        let mut rx = elections[0].as_ref().expect("c0").leadership();
        stalling.stalled.store(true, Ordering::SeqCst);
        let stalled = StdInstant::now();
        tokio::time::timeout(ttl, rx.wait_for(|l| !l.is_leader()))
            .await
            .expect("stepped down within the TTL")
            .expect("channel open");
        let after = stalled.elapsed();
        // The store has not expired the lease yet: nobody else could have led
        // while this candidate still believed it did.
        let key = inner.get(KEY).await.expect("get");
        assert!(key.is_some(), "stepped down only after the lease expired");
        println!("hung store: leader stepped down after {after:?} (ttl {ttl:?})");
        // Calls hung during the partition time out; the candidate leads again.
        stalling.stalled.store(false, Ordering::SeqCst);
        let healed = StdInstant::now();
        let (_, term) = wait_one_leader(&elections, None, ttl * 5).await;
        let old_term = key.map(|kv| kv.mod_revision).unwrap_or_default();
        assert!(term > old_term, "a new term: {term} > {old_term}");
        println!(
            "hung store: leading again {:?} after it answered",
            healed.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_leader_on_etcd_then_crash_and_resign_fail_over() {
        let server = etcd_server().await;
        let ttl = DEFAULT_TTL;
        let mut stores = Vec::new();
        for _ in 0..3 {
            stores.push(etcd_client(server.endpoint()).await);
        }
        let mut elections = candidates(&stores, ttl);
        let (first, first_term) = wait_one_leader(&elections, None, Duration::from_secs(5)).await;

        // Exactly one leader at every sampled moment, always the same one.
        let started = StdInstant::now();
        while started.elapsed() < Duration::from_secs(2) {
            assert_eq!(leaders(&elections), vec![(first, first_term)]);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // A crash: the task dies without revoking; the lease must expire.
        elections[first].take().expect("leader").crash();
        let crashed = StdInstant::now();
        let (second, second_term) =
            wait_one_leader(&elections, Some(first), ttl + Duration::from_secs(1)).await;
        let failover = crashed.elapsed();
        println!("etcd: failover after a crash took {failover:?} (ttl {ttl:?})");
        assert!(second_term > first_term);
        check_fenced(&*stores[second], KEY, first_term, false).await;
        check_fenced(&*stores[second], KEY, second_term, true).await;

        // A clean resign hands over at once.
        let resigning = elections[second].take().expect("leader");
        let resigned = StdInstant::now();
        resigning.resign().await.expect("resign");
        let (third, third_term) = wait_one_leader(&elections, Some(second), ttl).await;
        let handover = resigned.elapsed();
        println!("etcd: hand-over after resign took {handover:?}");
        assert!(third != first && third_term > second_term);
        assert!(handover < ttl / 4, "resign hand-over took {handover:?}");
        check_fenced(&*stores[third], KEY, second_term, false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_outage_deposes_the_leader_and_restart_elects_again() {
        let mut server = etcd_server().await;
        let endpoint = server.endpoint();
        let port: u16 = endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in endpoint");
        let ttl = DEFAULT_TTL;
        let stores = vec![
            etcd_client(endpoint.clone()).await,
            etcd_client(endpoint.clone()).await,
        ];
        let elections = candidates(&stores, ttl);
        wait_one_leader(&elections, None, Duration::from_secs(5)).await;

        server.kill();
        let killed = StdInstant::now();
        while !leaders(&elections).is_empty() {
            assert!(
                killed.elapsed() < ttl,
                "still leading {:?} after the store went away",
                killed.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        println!(
            "etcd outage: leader stepped down after {:?}",
            killed.elapsed()
        );

        let _restarted = tokio::task::spawn_blocking(move || EtcdServer::start_on(port))
            .await
            .expect("join")
            .unwrap_or_else(|e| panic!("{e}"));
        let restarted = StdInstant::now();
        wait_one_leader(&elections, None, Duration::from_secs(20)).await;
        println!(
            "etcd outage: a leader again {:?} after restart",
            restarted.elapsed()
        );
    }
}
