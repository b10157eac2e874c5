//! The event log behind `Watch`: every change a driver reports gets a sequence
//! number (the cursor); watchers replay from a cursor, then follow live. The log
//! keeps the last `capacity` events; a cursor older than that is refused with
//! `CURSOR_EXPIRED` and the controller re-lists.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use yunshu_proto::errors::{reasons, status};
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1;

/// Events kept for resuming watchers.
pub const DEFAULT_CAPACITY: usize = 100_000;

struct Inner {
    events: VecDeque<(u64, v1::WatchEvent)>,
    capacity: usize,
    next: u64,
}

/// The log. Cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Mutex<Inner>>,
    /// Latest sequence number appended.
    latest: watch::Sender<u64>,
    /// Bumped to cut every open stream (fault injection, shutdown).
    epoch: watch::Sender<u64>,
}

/// What a driver holds to report changes. Cheap to clone.
#[derive(Clone)]
pub struct EventSink {
    log: EventLog,
}

impl EventLog {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                events: VecDeque::new(),
                capacity: capacity.max(1),
                next: 1,
            })),
            latest: watch::channel(0).0,
            epoch: watch::channel(0).0,
        }
    }

    pub fn sink(&self) -> EventSink {
        EventSink { log: self.clone() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append(&self, event: v1::watch_event::Event) {
        let seq = {
            let mut inner = self.lock();
            let seq = inner.next;
            inner.next += 1;
            let record = v1::WatchEvent {
                cursor: seq.to_string(),
                event: Some(event),
            };
            inner.events.push_back((seq, record));
            while inner.events.len() > inner.capacity {
                inner.events.pop_front();
            }
            seq
        };
        self.latest.send_replace(seq);
    }

    /// Ends every open watch stream with UNAVAILABLE; watchers resume from their
    /// last cursor and lose nothing.
    pub fn disconnect_watchers(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }

    /// Events after `after`, at most `max`; `Err` if `after` has left the log.
    fn read_after(&self, after: u64, max: usize) -> Result<Vec<v1::WatchEvent>, Status> {
        let inner = self.lock();
        let oldest = inner.events.front().map_or(inner.next, |(s, _)| *s);
        if after + 1 < oldest {
            return Err(status(
                Code::FailedPrecondition,
                reasons::CURSOR_EXPIRED,
                format!(
                    "cursor {after} is older than the oldest event kept ({oldest}); list again"
                ),
            ));
        }
        let skip = (after + 1).saturating_sub(oldest) as usize;
        Ok(inner
            .events
            .iter()
            .skip(skip)
            .take(max)
            .map(|(_, e)| e.clone())
            .collect())
    }

    /// A watch stream starting after `cursor` ("" = from now).
    pub fn watch(
        &self,
        cursor: &str,
    ) -> Result<ReceiverStream<Result<v1::WatchEvent, Status>>, Status> {
        let mut after = if cursor.is_empty() {
            *self.latest.borrow()
        } else {
            cursor.parse::<u64>().map_err(|_| {
                status(
                    Code::InvalidArgument,
                    reasons::CURSOR_EXPIRED,
                    format!("cursor {cursor:?} is not one this driver issued"),
                )
            })?
        };
        if after > *self.latest.borrow() {
            return Err(status(
                Code::InvalidArgument,
                reasons::CURSOR_EXPIRED,
                format!("cursor {after} is ahead of this driver's log (restarted driver?)"),
            ));
        }
        // Validate now so a bad cursor fails the call, not the first message.
        self.read_after(after, 0)?;
        let log = self.clone();
        let mut latest = self.latest.subscribe();
        let mut epoch = self.epoch.subscribe();
        epoch.borrow_and_update();
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                loop {
                    match log.read_after(after, 512) {
                        Ok(batch) if batch.is_empty() => break,
                        Ok(batch) => {
                            for event in batch {
                                after = event.cursor.parse().unwrap_or(after);
                                if tx.send(Ok(event)).await.is_err() {
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
                tokio::select! {
                    changed = latest.changed() => if changed.is_err() { return },
                    _ = epoch.changed() => {
                        let _ = tx.send(Err(status(
                            Code::Unavailable,
                            reasons::WATCH_DROPPED,
                            "watch stream dropped; resume from your last cursor",
                        ))).await;
                        return;
                    }
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(ReceiverStream::new(rx))
    }
}

impl EventSink {
    pub fn resource(&self, change: v1::ChangeType, state: v1::ResourceState) {
        self.log
            .append(v1::watch_event::Event::Resource(v1::ResourceChanged {
                r#type: change as i32,
                state: Some(state),
            }));
    }

    pub fn host(&self, host: &str, state: v1::HostState) {
        self.log
            .append(v1::watch_event::Event::Host(v1::HostChanged {
                host: host.to_owned(),
                state: state as i32,
            }));
    }

    pub fn inventory(&self, revision: u64) {
        self.log
            .append(v1::watch_event::Event::Inventory(v1::InventoryChanged {
                revision,
            }));
    }

    /// See [`EventLog::disconnect_watchers`].
    pub fn disconnect_watchers(&self) {
        self.log.disconnect_watchers();
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn resume_from_cursor_and_expiry() {
        let log = EventLog::new(3);
        let sink = log.sink();
        for r in 1..=2 {
            sink.inventory(r);
        }
        let mut w = log.watch("1").expect("watch");
        let e = w.next().await.expect("event").expect("ok");
        assert_eq!(e.cursor, "2");
        sink.inventory(3);
        assert_eq!(w.next().await.expect("event").expect("ok").cursor, "3");
        sink.inventory(4);
        sink.inventory(5);
        // Capacity 3 keeps 3..=5: cursor 1 (next would be 2) has expired.
        let err = log.watch("1").expect_err("expired");
        assert_eq!(err.code(), Code::FailedPrecondition);
        log.watch("2").expect("cursor 2 resumes at 3");
        assert!(
            log.watch("99").is_err(),
            "a cursor from the future is refused"
        );
    }

    #[tokio::test]
    async fn disconnect_ends_streams_with_unavailable() {
        let log = EventLog::new(10);
        let mut w = log.watch("").expect("watch");
        log.disconnect_watchers();
        let err = w.next().await.expect("item").expect_err("dropped");
        assert_eq!(err.code(), Code::Unavailable);
    }
}
