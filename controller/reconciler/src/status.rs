//! Writes the observed state of resources, as the driver last reported it, in
//! its own key space `resource_status/<id>` (the record is
//! `yunshu_workflow::resources::StatusRecord`).
//!
//! Kept apart from the resource's desired state so that the reconciler (the
//! only writer here) never races the materializer (the only writer of
//! `resource/<id>`) on one key, and so observations can be written in batches:
//! the [`StatusWriter`] gathers what the workers report and commits up to
//! [`BATCH`] of them per transaction — 10,000 VMs turning Running cost ~100
//! durable writes, not 10,000 (MACHINE-FACTS: ≈ 3 ms per fsync).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use yunshu_domain::ResourceId;
use yunshu_store::{Store, Txn, records};
use yunshu_workflow::resources::StatusRecord;

/// Most observations written in one transaction (below the store's 128 ops).
pub const BATCH: usize = 120;

enum Item {
    Put(StatusRecord),
    Delete(ResourceId),
    Flush(oneshot::Sender<()>),
}

/// Batches status writes. Cheap to clone.
#[derive(Clone)]
pub struct StatusWriter {
    tx: mpsc::Sender<Item>,
}

impl StatusWriter {
    /// Starts the writer task on `store`.
    pub fn start(store: Arc<dyn Store>) -> (StatusWriter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4 * BATCH);
        let task = tokio::spawn(run(store, rx));
        (StatusWriter { tx }, task)
    }

    pub async fn put(&self, record: StatusRecord) {
        // The writer outlives every worker; a closed channel means shutdown.
        let _ = self.tx.send(Item::Put(record)).await;
    }

    pub async fn delete(&self, id: ResourceId) {
        let _ = self.tx.send(Item::Delete(id)).await;
    }

    /// Waits until everything sent before is durable.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Item::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// What makes two observations the same, without the time they were made.
fn fingerprint(r: &StatusRecord) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    r.status.phase.hash(&mut h);
    r.status.message.hash(&mut h);
    r.status.observed_generation.hash(&mut h);
    r.outputs.hash(&mut h);
    h.finish()
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Item>) {
    let mut pending: Vec<Item> = Vec::with_capacity(BATCH);
    // What this writer last made durable per resource (a fingerprint), so a
    // repeat of the same observation costs no write.
    let mut written: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    while let Some(first) = rx.recv().await {
        pending.push(first);
        // Take what is already waiting, up to a batch; no timer: under load the
        // channel fills while the previous commit runs, which is the batching.
        while pending.len() < BATCH {
            match rx.try_recv() {
                Ok(item) => pending.push(item),
                Err(_) => break,
            }
        }
        let mut txn = Txn::new();
        let mut waiters = Vec::new();
        // One op per key per transaction: the last report of a key wins.
        let mut last = std::collections::HashMap::new();
        for item in pending.drain(..) {
            match item {
                Item::Put(r) => {
                    last.insert(r.id.to_string(), Some(r));
                }
                Item::Delete(id) => {
                    last.insert(id.to_string(), None);
                }
                Item::Flush(done) => waiters.push(done),
            }
        }
        let mut wrote = Vec::with_capacity(last.len());
        for (id, record) in last {
            let print = record.as_ref().map(fingerprint);
            if print.is_some() && written.get(&id) == print.as_ref() {
                // The Apply answer and the watch event report the same
                // state: one durable write is enough.
                continue;
            }
            let key = records::key::<StatusRecord>(&id);
            txn = match record {
                Some(r) => txn.put(key, records::encode(&r)),
                None => txn.delete(key),
            };
            wrote.push((id, print));
        }
        if wrote.is_empty() {
            for w in waiters {
                let _ = w.send(());
            }
            continue;
        }
        let mut delay = Duration::from_millis(50);
        loop {
            match store.txn(txn.clone()).await {
                Ok(_) => {
                    for (id, print) in wrote.drain(..) {
                        match print {
                            Some(p) => written.insert(id, p),
                            None => written.remove(&id),
                        };
                    }
                    break;
                }
                Err(e) => {
                    // Observations are re-derived by the next resync, but losing
                    // them would stall order completion: keep trying.
                    tracing::warn!(error = %e, "status batch not written; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        for w in waiters {
            let _ = w.send(());
        }
    }
}
