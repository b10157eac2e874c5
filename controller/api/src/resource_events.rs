//! `GET /api/v1/systems/{number}/resources/events`: a system's resources as a
//! server-sent event stream, so the portal's order page shows provisioning
//! progress as it happens instead of re-reading the list on a timer.
//!
//! Each `resources` event carries the whole list (the body of
//! `GET …/resources`): a browser that reconnects (EventSource does so by
//! itself) needs no cursor, and a system holds tens of resources, not
//! thousands. The list is sent once on connect, then again whenever a store
//! watch on the system's resource and status keys fires and the list differs
//! from the last one sent. Changes are gathered for [`SETTLE`] first, so a
//! batch of 100 status writes costs one event, not 100.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt, stream};

use super::systems::{ResourceList, readable_system, resource_views};
use super::{ApiError, ApiPath};
use crate::AppState;
use yunshu_auth::Principal;
use yunshu_domain::resource::Resource;
use yunshu_domain::system::SystemNumber;
use yunshu_store::records::key;
use yunshu_store::{StoreError, WatchBatch};
use yunshu_workflow::desired::system_prefix;
use yunshu_workflow::resources::StatusRecord;

/// How long changes are gathered before the list is re-read.
const SETTLE: Duration = Duration::from_millis(200);

/// Idle connections get a comment this often, so proxies keep them open and a
/// closed browser is noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[utoipa::path(
    get,
    path = "/api/v1/systems/{number}/resources/events",
    tag = "systems",
    params(("number" = String, Path, description = "The system number")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "A `text/event-stream`: an event `resources` whose data is a ResourceList, on connect and after every change; it does not end while the server runs", content_type = "text/event-stream", body = String),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs resource_read", body = crate::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND", body = crate::ErrorBody),
    )
)]
pub(crate) async fn resource_events(
    caller: Principal,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let system = readable_system(&state, &caller, &number).await?;
    // The revision is read before the first list: a change between the two is
    // seen by the watch and costs one more (identical, so skipped) read.
    let from = state.store.revision().await? + 1;
    let first = list_json(&state, &system.number).await?;
    let prefix = system_prefix(&system.number);
    let changes = stream::select(
        state.store.watch(&key::<Resource>(&prefix), from).await?,
        state
            .store
            .watch(&key::<StatusRecord>(&prefix), from)
            .await?,
    );
    let mut stopping = state.stopping.subscribe();
    let stop = Box::pin(async move {
        // An error means the sender is gone: the server is stopping too.
        let _ = stopping.wait_for(|s| *s).await;
    });
    let updates = stream::unfold(
        Follow {
            state,
            number: system.number,
            changes: Box::pin(changes),
            last: first.clone(),
        },
        Follow::next,
    );
    let events = stream::once(async move { first })
        .chain(updates)
        .take_until(stop)
        .map(|json| Ok(Event::default().event("resources").data(json)));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

async fn list_json(state: &AppState, number: &SystemNumber) -> Result<String, ApiError> {
    let items = resource_views(&*state.store, number).await?;
    serde_json::to_string(&ResourceList { items }).map_err(ApiError::internal)
}

type Changes = std::pin::Pin<Box<dyn Stream<Item = Result<WatchBatch, StoreError>> + Send>>;

/// The state of one follower: what it watches and what it sent last.
struct Follow {
    state: AppState,
    number: SystemNumber,
    changes: Changes,
    last: String,
}

impl Follow {
    /// The next list that differs from the last one sent; `None` ends the
    /// stream (the watch failed, e.g. history compacted: the browser
    /// reconnects and starts from a fresh list).
    async fn next(mut self) -> Option<(String, Self)> {
        loop {
            match self.changes.next().await? {
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, system = %self.number, "resource events: watch ended");
                    return None;
                }
            }
            // Gather what else lands meanwhile into this one read.
            let settle = tokio::time::sleep(SETTLE);
            tokio::pin!(settle);
            loop {
                tokio::select! {
                    _ = &mut settle => break,
                    more = self.changes.next() => match more {
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
            match list_json(&self.state, &self.number).await {
                Ok(json) if json == self.last => {}
                Ok(json) => {
                    self.last = json.clone();
                    return Some((json, self));
                }
                Err(e) => {
                    tracing::warn!(error = ?e, system = %self.number, "resource events: list failed");
                    return None;
                }
            }
        }
    }
}
