//! Watches on the embedded backend: replay history from the log table, then follow
//! the writer's revision signal. Reading the log (rather than receiving events
//! pushed by the writer) means a slow watcher can never lose events or slow the
//! writer down; it only falls behind until history is compacted past it.

use std::sync::Weak;

use redb::{Database, ReadableDatabase};
use tokio::sync::{mpsc, watch as tokio_watch};
use tokio_stream::wrappers::ReceiverStream;

use super::{OrBackend, codec, tables};
use crate::error::StoreError;
use crate::model::{Revision, WatchBatch, WatchStream};

/// Batches buffered per watcher before it waits for its consumer.
const BUFFER: usize = 256;
/// Revisions read from the log per read transaction.
const CHUNK: i64 = 512;

pub(crate) fn start(
    db: Weak<Database>,
    mut revision: tokio_watch::Receiver<Revision>,
    prefix: String,
    from: Revision,
) -> Result<WatchStream, StoreError> {
    // Refuse a compacted start at once, so the caller gets the error from `watch`.
    if let Some(db) = db.upgrade() {
        let (_, compact) = read_chunk(&db, &prefix, from, from - 1)?;
        if from < compact {
            return Err(StoreError::Compacted {
                requested: from,
                oldest: compact,
            });
        }
    }
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let mut next = from;
        loop {
            let latest = *revision.borrow_and_update();
            while next <= latest {
                let upto = latest.min(next + CHUNK - 1);
                let Some(db) = db.upgrade() else { return };
                let read = read_chunk(&db, &prefix, next, upto);
                drop(db);
                match read {
                    Ok((batches, compact)) if next >= compact => {
                        for batch in batches {
                            if tx.send(Ok(batch)).await.is_err() {
                                return;
                            }
                        }
                        next = upto + 1;
                    }
                    Ok((_, compact)) => {
                        let _ = tx
                            .send(Err(StoreError::Compacted {
                                requested: next,
                                oldest: compact,
                            }))
                            .await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
            tokio::select! {
                changed = revision.changed() => {
                    if changed.is_err() {
                        let _ = tx.send(Err(StoreError::Unavailable {
                            op: "watch",
                            reason: "the store was closed".into(),
                        })).await;
                        return;
                    }
                }
                _ = tx.closed() => return,
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// Batches for revisions `from..=upto` touching `prefix`, and the compact revision
/// seen in the same snapshot.
fn read_chunk(
    db: &Database,
    prefix: &str,
    from: Revision,
    upto: Revision,
) -> Result<(Vec<WatchBatch>, Revision), StoreError> {
    let rtx = db.begin_read().or_backend("watch")?;
    let compact = tables::read_meta(&rtx, tables::META_COMPACT).or_backend("watch")?;
    let mut out = Vec::new();
    if from > upto || from < compact {
        return Ok((out, compact));
    }
    let log = rtx.open_table(tables::LOG).or_backend("watch")?;
    for entry in log
        .range(from.max(0) as u64..=upto.max(0) as u64)
        .or_backend("watch")?
    {
        let (rev, bytes) = entry.or_backend("watch")?;
        let revision = rev.value() as Revision;
        let events: Vec<_> = codec::decode_log(revision, bytes.value())?
            .into_iter()
            .filter(|e| e.kv.key.starts_with(prefix))
            .collect();
        if !events.is_empty() {
            out.push(WatchBatch { revision, events });
        }
    }
    Ok((out, compact))
}
