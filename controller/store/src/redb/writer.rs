//! The single writer thread and its group commit.
//!
//! The writer takes every command queued at the moment (up to [`MAX_BATCH`]),
//! applies them one after another inside one redb write transaction — each with its
//! own compare check and its own revision, so the result is exactly that of running
//! them one by one — and commits once. Nobody is answered before the commit is
//! durable; if the commit fails, everyone in the batch gets the error and nothing of
//! the batch is visible.

use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableTable, Table, WriteTransaction};
use tokio::sync::watch as tokio_watch;

use super::codec::{self, StoredKv};
use super::leases::LeaseTable;
use super::tables::{self, State};
use super::{RedbOptions, Reply};
use crate::error::StoreError;
use crate::model::{
    Compare, EventKind, KeyValue, LeaseId, Op, Revision, Txn, TxnOutcome, WatchEvent,
};

/// Most commands committed together. Large enough to amortise the fsync over a
/// burst, small enough to bound one commit's latency.
const MAX_BATCH: usize = 512;
/// How often expired leases are looked for when no writes arrive.
const LEASE_TICK: Duration = Duration::from_millis(50);

pub(crate) enum Command {
    Txn(Txn, Reply),
    Delete(String, Reply),
    LeaseGrant(Duration, Reply),
    LeaseRevoke(LeaseId, Reply),
    Compact(Revision, Reply),
}

/// The writer's answer to one command.
#[derive(Debug)]
pub(crate) enum Answer {
    Txn(TxnOutcome),
    Deleted(bool),
    Lease(LeaseId),
    Done,
}

/// What one command asks of the batch: internal lease expiries carry no reply.
enum Work {
    Txn(Txn),
    Delete(String),
    LeaseGrant(Duration),
    LeaseRevoke(LeaseId),
    LeaseExpire(LeaseId),
    Compact(Revision),
}

pub(crate) struct Writer {
    db: Arc<Database>,
    state: State,
    leases: Arc<LeaseTable>,
    revision: tokio_watch::Sender<Revision>,
    options: RedbOptions,
}

impl Writer {
    pub fn new(
        db: Arc<Database>,
        state: State,
        leases: Arc<LeaseTable>,
        revision: tokio_watch::Sender<Revision>,
        options: RedbOptions,
    ) -> Self {
        Self {
            db,
            state,
            leases,
            revision,
            options,
        }
    }

    pub fn run(mut self, queue: mpsc::Receiver<Command>) {
        loop {
            let mut work = Vec::new();
            let mut replies = Vec::new();
            match queue.recv_timeout(LEASE_TICK) {
                Ok(cmd) => push(cmd, &mut work, &mut replies),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            while work.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(cmd) => push(cmd, &mut work, &mut replies),
                    Err(_) => break,
                }
            }
            for id in self.leases.expired(Instant::now()) {
                work.push(Work::LeaseExpire(id));
                replies.push(None);
            }
            if work.is_empty() {
                continue;
            }
            self.commit(work, replies);
        }
    }

    fn commit(&mut self, work: Vec<Work>, replies: Vec<Option<Reply>>) {
        match self.apply(&work) {
            Ok((answers, state, lease_changes)) => {
                self.state = state;
                for change in lease_changes {
                    match change {
                        LeaseChange::Granted(id, ttl) => self.leases.insert(id, ttl),
                        LeaseChange::Removed(id) => self.leases.remove(id),
                    }
                }
                self.revision.send_replace(self.state.revision);
                for (reply, answer) in replies.into_iter().zip(answers) {
                    if let Some(reply) = reply {
                        let _ = reply.send(answer);
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "store commit failed; the whole batch is rolled back");
                for reply in replies.into_iter().flatten() {
                    let _ = reply.send(Err(StoreError::Unavailable {
                        op: "commit",
                        reason: e.to_string(),
                    }));
                }
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn apply(
        &self,
        work: &[Work],
    ) -> Result<(Vec<Result<Answer, StoreError>>, State, Vec<LeaseChange>), redb::Error> {
        let mut wtx = self.db.begin_write()?;
        let durability = if self.options.durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        wtx.set_durability(durability)
            .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
        let (answers, state, changes) = {
            let mut batch = Batch::open(&wtx, self.state, &self.leases)?;
            let mut answers = Vec::with_capacity(work.len());
            for item in work {
                answers.push(batch.apply(item)?);
            }
            let history = self.options.history as i64;
            if batch.state.revision - batch.state.compact_revision > history + 1024 {
                batch.compact(batch.state.revision - history)?;
            }
            let (state, changes) = batch.finish()?;
            (answers, state, changes)
        };
        wtx.commit()?;
        Ok((answers, state, changes))
    }
}

fn push(cmd: Command, work: &mut Vec<Work>, replies: &mut Vec<Option<Reply>>) {
    let (item, reply) = match cmd {
        Command::Txn(t, r) => (Work::Txn(t), r),
        Command::Delete(k, r) => (Work::Delete(k), r),
        Command::LeaseGrant(ttl, r) => (Work::LeaseGrant(ttl), r),
        Command::LeaseRevoke(id, r) => (Work::LeaseRevoke(id), r),
        Command::Compact(rev, r) => (Work::Compact(rev), r),
    };
    work.push(item);
    replies.push(Some(reply));
}

enum LeaseChange {
    Granted(LeaseId, Duration),
    Removed(LeaseId),
}

/// The tables of one write transaction and the counters as they stand inside it.
struct Batch<'t> {
    kv: Table<'t, &'static [u8], &'static [u8]>,
    log: Table<'t, u64, &'static [u8]>,
    leases_table: Table<'t, u64, u64>,
    lease_keys: Table<'t, &'static [u8], ()>,
    meta: Table<'t, &'static str, u64>,
    state: State,
    leases: &'t LeaseTable,
    changes: Vec<LeaseChange>,
    now: Instant,
}

type Applied = Result<Result<Answer, StoreError>, redb::Error>;

impl<'t> Batch<'t> {
    fn open(
        wtx: &'t WriteTransaction,
        state: State,
        leases: &'t LeaseTable,
    ) -> Result<Self, redb::Error> {
        Ok(Self {
            kv: wtx.open_table(tables::KV)?,
            log: wtx.open_table(tables::LOG)?,
            leases_table: wtx.open_table(tables::LEASES)?,
            lease_keys: wtx.open_table(tables::LEASE_KEYS)?,
            meta: wtx.open_table(tables::META)?,
            state,
            leases,
            changes: Vec::new(),
            now: Instant::now(),
        })
    }

    fn apply(&mut self, work: &Work) -> Applied {
        match work {
            Work::Txn(txn) => self.txn(txn),
            Work::Delete(key) => {
                let rev = self.state.revision + 1;
                let mut events = Vec::new();
                let existed = self.delete_key(key, rev, &mut events)?;
                self.log_events(rev, events)?;
                Ok(Ok(Answer::Deleted(existed)))
            }
            Work::LeaseGrant(ttl) => {
                let id = self.state.next_lease;
                self.state.next_lease += 1;
                let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                self.leases_table.insert(id as u64, ttl_ms)?;
                self.changes.push(LeaseChange::Granted(id, *ttl));
                Ok(Ok(Answer::Lease(id)))
            }
            Work::LeaseRevoke(id) => {
                if !self.lease_alive(*id) {
                    return Ok(Err(StoreError::LeaseNotFound(*id)));
                }
                self.revoke(*id)?;
                Ok(Ok(Answer::Done))
            }
            Work::LeaseExpire(id) => {
                // Re-checked here: a keep-alive may have come in since it was listed.
                if self.leases.expired(self.now).contains(id) && self.lease_known(*id) {
                    tracing::debug!(lease = id, "lease expired; deleting its keys");
                    self.revoke(*id)?;
                }
                Ok(Ok(Answer::Done))
            }
            Work::Compact(rev) => {
                if *rev > self.state.revision {
                    return Ok(Err(StoreError::InvalidArgument(format!(
                        "cannot compact at {rev}: the store is at revision {}",
                        self.state.revision
                    ))));
                }
                if *rev > self.state.compact_revision {
                    self.compact(*rev)?;
                }
                Ok(Ok(Answer::Done))
            }
        }
    }

    fn txn(&mut self, txn: &Txn) -> Applied {
        for cmp in &txn.compares {
            let Compare::ModRevision { key, revision } = cmp;
            let current = match self.load(key)? {
                Some(Ok(kv)) => kv.mod_revision,
                Some(Err(e)) => return Ok(Err(e)),
                None => 0,
            };
            if current != *revision {
                return Ok(Ok(Answer::Txn(TxnOutcome::Conflict)));
            }
        }
        // Every lease is checked before the first write, so a bad one writes nothing.
        for op in &txn.ops {
            if let Op::Put {
                lease: Some(id), ..
            } = op
                && !self.lease_alive(*id)
            {
                return Ok(Err(StoreError::LeaseNotFound(*id)));
            }
        }
        let rev = self.state.revision + 1;
        let mut events = Vec::with_capacity(txn.ops.len());
        for op in &txn.ops {
            match op {
                Op::Put { key, value, lease } => {
                    self.put_key(key, value, *lease, rev, &mut events)?
                }
                Op::Delete { key } => {
                    self.delete_key(key, rev, &mut events)?;
                }
            }
        }
        self.log_events(rev, events)?;
        Ok(Ok(Answer::Txn(TxnOutcome::Committed {
            revision: self.state.revision,
        })))
    }

    /// Records the events of one revision; a revision with no change is not used.
    fn log_events(&mut self, rev: Revision, events: Vec<WatchEvent>) -> Result<(), redb::Error> {
        if events.is_empty() {
            return Ok(());
        }
        self.log
            .insert(rev as u64, codec::encode(&events).as_slice())?;
        self.state.revision = rev;
        Ok(())
    }

    fn load(&self, key: &str) -> Result<Option<Result<StoredKv, StoreError>>, redb::Error> {
        Ok(self
            .kv
            .get(key.as_bytes())?
            .map(|v| codec::decode_stored(key, v.value())))
    }

    fn put_key(
        &mut self,
        key: &str,
        value: &[u8],
        lease: Option<LeaseId>,
        rev: Revision,
        events: &mut Vec<WatchEvent>,
    ) -> Result<(), redb::Error> {
        // A record that does not decode is overwritten as if new: the put replaces it.
        let old = self.load(key)?.and_then(Result::ok);
        let (create_revision, version) = match &old {
            Some(o) => (o.create_revision, o.version + 1),
            None => (rev, 1),
        };
        let old_lease = old.and_then(|o| o.lease);
        if old_lease != lease {
            if let Some(old_lease) = old_lease {
                self.lease_keys
                    .remove(codec::lease_index_key(old_lease, key).as_slice())?;
            }
            if let Some(lease) = lease {
                self.lease_keys
                    .insert(codec::lease_index_key(lease, key).as_slice(), ())?;
            }
        }
        let stored = StoredKv {
            value: value.to_vec(),
            create_revision,
            mod_revision: rev,
            version,
            lease,
        };
        self.kv
            .insert(key.as_bytes(), codec::encode(&stored).as_slice())?;
        events.push(WatchEvent {
            kind: EventKind::Put,
            kv: stored.into_kv(key.to_owned()),
        });
        Ok(())
    }

    fn delete_key(
        &mut self,
        key: &str,
        rev: Revision,
        events: &mut Vec<WatchEvent>,
    ) -> Result<bool, redb::Error> {
        let old = self
            .kv
            .remove(key.as_bytes())?
            .map(|v| codec::decode_stored(key, v.value()));
        let Some(old) = old else { return Ok(false) };
        if let Ok(StoredKv {
            lease: Some(lease), ..
        }) = old
        {
            self.lease_keys
                .remove(codec::lease_index_key(lease, key).as_slice())?;
        }
        events.push(WatchEvent {
            kind: EventKind::Delete,
            kv: KeyValue {
                key: key.to_owned(),
                value: Vec::new(),
                create_revision: 0,
                mod_revision: rev,
                version: 0,
                lease: None,
            },
        });
        Ok(true)
    }

    fn lease_known(&self, id: LeaseId) -> bool {
        !self
            .changes
            .iter()
            .any(|c| matches!(c, LeaseChange::Removed(r) if *r == id))
    }

    /// Alive now, counting grants and revocations earlier in this batch.
    fn lease_alive(&self, id: LeaseId) -> bool {
        for change in self.changes.iter().rev() {
            match change {
                LeaseChange::Granted(g, _) if *g == id => return true,
                LeaseChange::Removed(r) if *r == id => return false,
                _ => {}
            }
        }
        self.leases.is_alive(id, self.now)
    }

    /// Deletes the lease and all its keys, at one revision.
    fn revoke(&mut self, id: LeaseId) -> Result<(), redb::Error> {
        let start = codec::lease_index_key(id, "");
        let end = codec::lease_index_key(id + 1, "");
        let mut keys = Vec::new();
        for entry in self
            .lease_keys
            .range::<&[u8]>(start.as_slice()..end.as_slice())?
        {
            let (k, _) = entry?;
            keys.push(String::from_utf8_lossy(&k.value()[8..]).into_owned());
        }
        let rev = self.state.revision + 1;
        let mut events = Vec::with_capacity(keys.len());
        for key in &keys {
            self.delete_key(key, rev, &mut events)?;
        }
        self.log_events(rev, events)?;
        self.leases_table.remove(id as u64)?;
        self.changes.push(LeaseChange::Removed(id));
        Ok(())
    }

    /// Drops history before `rev`: watches may start at `rev` or later.
    fn compact(&mut self, rev: Revision) -> Result<(), redb::Error> {
        self.log.retain_in(..rev.max(0) as u64, |_, _| false)?;
        self.state.compact_revision = rev;
        Ok(())
    }

    fn finish(mut self) -> Result<(State, Vec<LeaseChange>), redb::Error> {
        self.meta
            .insert(tables::META_REVISION, self.state.revision as u64)?;
        self.meta
            .insert(tables::META_COMPACT, self.state.compact_revision as u64)?;
        self.meta
            .insert(tables::META_NEXT_LEASE, self.state.next_lease as u64)?;
        Ok((self.state, self.changes))
    }
}
