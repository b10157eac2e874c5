//! Observed state from the drivers' `Watch` streams (issue 6: "observed status
//! from driver Watch, and periodic Get/List resync").
//!
//! One task per registered driver follows its stream from the last cursor
//! handled, so a dropped stream resumes without losing or repeating events; a
//! cursor the driver no longer holds (`CURSOR_EXPIRED`, a restarted driver)
//! costs a resync of every stored resource instead.
//!
//! - A managed resource's new state is recorded at once (batched by the
//!   status writer, which skips repeats of what it last wrote).
//! - A managed resource gone from the driver without a deletion request is
//!   drift: it is queued for a check turn (read back, re-applied under a fresh
//!   key), ahead of the periodic resync.
//! - A resource created in the driver that yunshu does not hold is reported as
//!   an orphan now rather than at the next resync.
//! - Host and inventory changes ask for an inventory refresh (debounced), so
//!   placement stops using a host that went down.
//!
//! Must not decide what should exist, and must not write resource intent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use yunshu_domain::ResourceId;
use yunshu_domain::resource::{Phase, Resource, ResourceStatus};
use yunshu_proto::tonic::Code;
use yunshu_proto::v1;
use yunshu_store::records;
use yunshu_workflow::resources::StatusRecord;

use super::queue::Priority;
use super::{Reconciler, orphans, worker};

/// How often the set of registered drivers is re-read even without a
/// registration seen on the store watch (a watch that failed, a driver moved).
const DISCOVER_EVERY: Duration = Duration::from_secs(30);

/// Follows every registered driver's stream until dropped; the per-driver
/// tasks live in a `JoinSet`, so they end with it (leadership lost). A driver
/// registering is noticed on the store's watch, so its stream is open before
/// the reconciler's first call to it.
pub async fn run(r: Arc<Reconciler>) {
    let registered = Arc::new(tokio::sync::Notify::new());
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(registrations(r.clone(), registered.clone()));
    let mut following: HashMap<String, tokio::task::AbortHandle> = HashMap::new();
    loop {
        while tasks.try_join_next().is_some() {}
        match r.providers.registered().await {
            Ok(providers) => {
                for p in providers {
                    let alive = following.get(&p).is_some_and(|t| !t.is_finished());
                    if !alive {
                        let handle = tasks.spawn(follow(r.clone(), p.clone()));
                        following.insert(p, handle);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list drivers to watch"),
        }
        tokio::select! {
            () = tokio::time::sleep(DISCOVER_EVERY) => {}
            () = registered.notified() => {}
        }
    }
}

/// Signals `registered` whenever a driver record is written.
async fn registrations(r: Arc<Reconciler>, registered: Arc<tokio::sync::Notify>) {
    let prefix = records::prefix::<yunshu_drivers::registry::DriverRecord>();
    loop {
        let from = r.store.revision().await.map(|v| v + 1).unwrap_or(0);
        // Anything registered before `from` is in the next listing.
        registered.notify_one();
        match r.store.watch(&prefix, from).await {
            Ok(mut w) => {
                while let Some(Ok(batch)) = w.next().await {
                    if !batch.events.is_empty() {
                        registered.notify_one();
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "driver registration watch failed"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn expired(s: &yunshu_proto::tonic::Status) -> bool {
    yunshu_proto::errors::reason(s)
        .is_some_and(|i| i.reason == yunshu_proto::errors::reasons::CURSOR_EXPIRED)
}

/// One driver's stream, resumed from the last cursor handled.
async fn follow(r: Arc<Reconciler>, provider: String) {
    // Empty = from now: what happened before is covered by the reconciler's
    // start (every stored resource is queued) and by the Apply answers.
    let mut cursor = String::new();
    let mut pause = Duration::from_millis(100);
    let mut first = true;
    loop {
        let stream = match r.providers.client(&provider).await {
            Ok(mut c) => {
                c.watch(v1::WatchRequest {
                    cursor: cursor.clone(),
                })
                .await
            }
            Err(e) => {
                tracing::debug!(%provider, error = %e, "watch: no client yet");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let mut stream = match stream {
            Ok(s) => s.into_inner(),
            Err(s) => {
                lost(&r, &provider, &mut cursor, &s).await;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        pause = Duration::from_millis(100);
        tracing::info!(%provider, %cursor, "watching the driver");
        if first {
            // List, then watch: whatever changed before the stream opened is
            // found by reading each of this driver's resources back once.
            first = false;
            r.recheck_provider(&provider);
            // A driver just registered (or this replica just took the lead):
            // read its inventory now, not at the next periodic refresh, so
            // placement and the capacity figures include it at once.
            r.wants_inventory();
        }
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    cursor.clone_from(&event.cursor);
                    handle(&r, &provider, event).await;
                }
                Err(s) => {
                    lost(&r, &provider, &mut cursor, &s).await;
                    break;
                }
            }
        }
        tokio::time::sleep(pause).await;
    }
}

/// A stream that failed or ended: resume from `cursor`, or, when the driver
/// no longer holds it, start afresh and re-check everything.
async fn lost(
    r: &Reconciler,
    provider: &str,
    cursor: &mut String,
    s: &yunshu_proto::tonic::Status,
) {
    if expired(s) {
        tracing::warn!(%provider, %cursor, "watch cursor expired; resyncing every resource");
        cursor.clear();
        if let Err(e) = r.adopt_stored_ids().await {
            tracing::warn!(error = %e, "resync after an expired cursor failed");
        }
        r.wants_inventory();
    } else {
        if s.code() == Code::Unavailable {
            r.providers.forget(provider);
        }
        tracing::debug!(%provider, code = ?s.code(), "watch stream ended; resuming");
    }
}

async fn handle(r: &Arc<Reconciler>, provider: &str, event: v1::WatchEvent) {
    match event.event {
        Some(v1::watch_event::Event::Resource(changed)) => {
            let Some(state) = changed.state else {
                return;
            };
            resource(r, provider, changed.r#type, state).await;
        }
        Some(v1::watch_event::Event::Host(_) | v1::watch_event::Event::Inventory(_)) => {
            r.wants_inventory();
        }
        None => {}
    }
}

/// Whether a resource the reconciler knows is placed on a provider other than
/// the one whose driver reports it: its record's placement (`stored_with`:
/// `None` not stored, `Some(None)` stored but not placed) or its allocation.
fn placed_elsewhere(
    provider: &str,
    stored_with: Option<Option<&str>>,
    allocated_with: Option<&str>,
) -> bool {
    match (stored_with, allocated_with) {
        (Some(Some(p)), _) | (_, Some(p)) => p != provider,
        _ => false,
    }
}

async fn resource(r: &Arc<Reconciler>, provider: &str, change: i32, state: v1::ResourceState) {
    let Ok(id) = state.id.parse::<ResourceId>() else {
        return;
    };
    // A placed resource is in the index from the moment its intent is stored
    // (before any Apply) until its record is deleted: the cheap test of
    // "ours" that needs no store read per event. Ours *on this provider*: a
    // driver speaks only for what is placed with it, never for a resource
    // placed on another provider (issue 16 item 11).
    let stored_with = r
        .refs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .provider_of(&id)
        .map(|p| p.map(ToString::to_string));
    let allocated_with = r
        .index
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .allocation(&id)
        .map(|p| p.provider.to_string());
    if placed_elsewhere(
        provider,
        stored_with.as_ref().map(|p| p.as_deref()),
        allocated_with.as_deref(),
    ) {
        tracing::warn!(%provider, resource = %id, "a driver reported a resource placed on another provider; ignored");
        return;
    }
    let managed = stored_with.is_some() || allocated_with.is_some();
    let deleted =
        change == v1::ChangeType::Deleted as i32 || state.phase == v1::Phase::Deleted as i32;
    tracing::trace!(%provider, resource = %id, change, phase = state.phase, managed, "driver reported a change");
    if !managed {
        if change == v1::ChangeType::Created as i32 && !deleted {
            // Not in the index: either not ours or not placed by us. Only the
            // store can tell; a hit is an orphan.
            match records::get::<Resource>(&*r.store, id.as_str()).await {
                Ok(None) => {
                    if let Err(e) = orphans::raise(r, provider, &state).await {
                        tracing::warn!(resource = %id, error = %e, "orphan not reported");
                    }
                }
                Ok(Some(_)) => {}
                Err(e) => tracing::debug!(resource = %id, error = %e, "orphan check deferred"),
            }
        }
        return;
    }
    if deleted {
        // Ours and gone: either the delete we asked for (the turn finishes it
        // and releases the capacity) or drift (the check turn re-creates it).
        r.check(id);
        return;
    }
    let phase = worker::phase_from_wire(state.phase);
    let settled = matches!(phase, Phase::Running | Phase::Stopped);
    r.status
        .put(StatusRecord {
            id: id.clone(),
            status: ResourceStatus {
                phase,
                message: (!state.message.is_empty()).then_some(state.message),
                observed_generation: state.observed_generation,
            },
            outputs: state.outputs.into_iter().collect(),
            observed_at: Utc::now(),
        })
        .await;
    if settled {
        // What waits for this one to run (or, powered off as asked, to be
        // settled) may go now — once the observation is on record, which is
        // what a waiter reads. Off the watch loop, so events keep flowing
        // (and batching) while the write commits.
        let r = Arc::clone(r);
        tokio::spawn(async move { r.wake_users_when_recorded(&id).await });
    }
}

impl Reconciler {
    /// Queues every resource placed on `provider` for a low-priority read-back.
    fn recheck_provider(&self, provider: &str) {
        let mut ids = self
            .index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allocations_of(provider);
        ids.extend(
            self.refs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .of_provider(provider),
        );
        ids.sort();
        ids.dedup();
        for id in ids {
            // Resync turns read back first; behind new work.
            self.resources.add(id, Priority::Resync);
        }
    }

    /// Queues `id` for a turn that reads the driver's state back before
    /// acting (drift), ahead of low-priority resync work.
    pub fn check(&self, id: ResourceId) {
        self.suspects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone());
        self.resources.add(id, Priority::Fresh);
    }

    /// Whether the next turn of `id` must read back first; clears the mark.
    pub(super) fn take_suspect(&self, id: &ResourceId) -> bool {
        self.suspects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
    }
}

#[cfg(test)]
mod tests {
    use super::placed_elsewhere;

    /// Security issue item 11: a driver's watch events speak only for
    /// resources placed on its own provider.
    #[test]
    fn a_driver_cannot_report_for_a_resource_placed_on_another_provider() {
        assert!(placed_elsewhere("evil", Some(Some("sim")), None));
        assert!(placed_elsewhere("evil", None, Some("sim")));
        assert!(placed_elsewhere("evil", Some(None), Some("sim")));
        assert!(!placed_elsewhere("sim", Some(Some("sim")), Some("sim")));
        // Stored but not placed yet, or unknown: not another provider's.
        assert!(!placed_elsewhere("sim", Some(None), None));
        assert!(!placed_elsewhere("sim", None, None));
    }
}
