//! A system's resources over HTTP: `GET /api/v1/systems/{number}/resources`
//! (desired shape, placement and what the reconciler last observed) and the
//! same list as a live stream, `GET …/resources/events`.
//!
//! The stream is server-sent events, so the portal's order page shows
//! provisioning progress as it happens instead of re-reading the list on a
//! timer. Each `resources` event carries the whole list (the body of
//! `GET …/resources`): a browser that reconnects (EventSource does so by
//! itself) needs no cursor, and a system holds tens of resources, not
//! thousands. The list is sent once on connect, then again whenever a store
//! watch on the system's resource and status keys fires and the list differs
//! from the last one sent. Changes are gathered for [`SETTLE`] first, so a
//! batch of 100 status writes costs one event, not 100.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, stream};
use serde::Serialize;
use yunshu_auth::Principal;
use yunshu_domain::resource::Resource;
use yunshu_domain::system::{InformationSystem, SystemNumber};
use yunshu_store::{StoreError, WatchBatch};
use yunshu_workflow::resources::StatusRecord;
use yunshu_workflow::{self as workflow};

use crate::error::ApiError;
use crate::json::ApiPath;
use crate::state::AppState;
use crate::workflow_error::workflow_error;

/// One resource of a system as its tenant sees it: desired shape, placement
/// (zone and pool; hosts are the provider's business) and observed state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResourceView {
    pub id: String,
    /// `vm`, `volume`, … (domain `ResourceKind`).
    pub kind: String,
    /// The work order that asked for it.
    pub order: Option<String>,
    pub vcpu: Option<u32>,
    pub memory_gib: Option<u64>,
    pub zone: Option<String>,
    pub network_area: Option<String>,
    pub pool: Option<String>,
    pub generation: u64,
    /// `pending`, `provisioning`, `running`, `failed`, `deleting` … (observed).
    pub phase: String,
    pub message: Option<String>,
    pub observed_generation: u64,
    pub deletion_requested_at: Option<DateTime<Utc>>,
    /// What the driver reports for the tenant: addresses, endpoints …
    pub outputs: std::collections::BTreeMap<String, String>,
    /// The resources this one is wired to (its subnet, security groups, the
    /// servers behind a load balancer …), by id.
    pub connects_to: Vec<String>,
    /// What it is, in numbers and identifiers (`4 vCPU / 8 GiB x86_64`,
    /// `200 GiB fsc-high`, `10.0.0.0/20`, `HTTP :80→8080 WRR` …).
    pub summary: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResourceList {
    pub items: Vec<ResourceView>,
}

/// `GET /api/v1/systems/{number}/resources`: the system's resources with their
/// live state (what the reconciler last observed).
#[utoipa::path(
    get,
    path = "/api/v1/systems/{number}/resources",
    tag = "systems",
    params(("number" = String, Path, description = "The system number")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The system's resources", body = ResourceList),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs resource_read", body = crate::error::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn resource_list(
    caller: Principal,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<ResourceList>, ApiError> {
    let system = readable_system(&state, &caller, &number).await?;
    Ok(Json(ResourceList {
        items: resource_views(&*state.store, &system.number).await?,
    }))
}

/// The system `number` if the caller may read its resources (another
/// tenant's system is `SYSTEM_NOT_FOUND`).
pub(crate) async fn readable_system(
    state: &AppState,
    caller: &Principal,
    number: &str,
) -> Result<InformationSystem, ApiError> {
    use yunshu_domain::user::Permission;
    let system = workflow::systems::system_get(&*state.store, caller, number)
        .await
        .map_err(workflow_error)?;
    caller.require(Permission::ResourceRead, Some(system.tenant()))?;
    Ok(system)
}

/// A system's resources with what the reconciler last observed of each.
pub(crate) async fn resource_views(
    store: &dyn yunshu_store::Store,
    number: &SystemNumber,
) -> Result<Vec<ResourceView>, ApiError> {
    use yunshu_domain::resource::{Resource, ResourceSpec};
    let mut resources = Vec::new();
    for prefix in yunshu_workflow::desired::system_prefixes(number) {
        let prefix = yunshu_store::records::key::<Resource>(&prefix);
        resources.extend(yunshu_store::page::scan_all_under::<Resource>(store, &prefix).await?);
    }
    let mut items = Vec::with_capacity(resources.len());
    for (res, _) in resources {
        let observed = yunshu_store::records::get::<yunshu_workflow::resources::StatusRecord>(
            store,
            res.id().as_str(),
        )
        .await?
        .map(|(s, _)| s);
        let (status, outputs) = match observed {
            Some(s) => (s.status, s.outputs),
            None => (res.status().clone(), Default::default()),
        };
        let (vcpu, memory_gib) = match res.spec() {
            ResourceSpec::Vm(vm) => (Some(vm.vcpu.get()), Some(vm.memory_mib.get() / 1024)),
            _ => (None, None),
        };
        let placement = res.placement();
        items.push(ResourceView {
            id: res.id().to_string(),
            kind: res.kind().as_str().to_owned(),
            order: res.order().map(ToString::to_string),
            vcpu,
            memory_gib,
            zone: placement.map(|p| p.zone.to_string()),
            network_area: placement.and_then(|p| p.network_area.as_ref().map(ToString::to_string)),
            pool: placement.and_then(|p| p.pool.as_ref().map(ToString::to_string)),
            generation: res.generation(),
            phase: serde_json::to_value(status.phase)
                .ok()
                .and_then(|v| v.as_str().map(ToOwned::to_owned))
                .unwrap_or_default(),
            message: status.message,
            observed_generation: status.observed_generation,
            deletion_requested_at: res.deletion_requested_at(),
            outputs,
            connects_to: res
                .spec()
                .references()
                .iter()
                .map(|r| r.to_string())
                .collect(),
            summary: res.spec().summary(),
        });
    }
    Ok(items)
}

/// How long changes are gathered before the list is re-read.
const SETTLE: Duration = Duration::from_millis(200);

/// Most event streams one caller may hold open at once (a browser tab holds
/// one; a script that leaks them would otherwise hold the server's memory).
pub const MAX_STREAMS_PER_CALLER: usize = 8;

/// One of a caller's open streams; given back when dropped.
struct StreamSlot {
    streams: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    caller: String,
}

impl StreamSlot {
    fn take(state: &AppState, caller: String) -> Result<StreamSlot, ApiError> {
        let mut open = state.streams.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(caller.clone()).or_default();
        if *n >= MAX_STREAMS_PER_CALLER {
            return Err(ApiError::refused(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "STREAMS_TOO_MANY",
                format!(
                    "At most {MAX_STREAMS_PER_CALLER} event streams may be open at once; close one first."
                ),
                format!("同时打开的事件流不能超过 {MAX_STREAMS_PER_CALLER} 个，请先关闭一个。"),
            ));
        }
        *n += 1;
        Ok(StreamSlot {
            streams: state.streams.clone(),
            caller,
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.caller) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.caller);
            }
        }
    }
}

/// How often an open stream checks that its credential still holds.
const RECHECK: Duration = Duration::from_secs(5);

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
        (status = 200, description = "A `text/event-stream`: an event `resources` whose data is a ResourceList, on connect and after every change; it ends when the server stops or, within seconds, when the credential that opened it stops being valid (sign-out, revoked token, disabled user)", content_type = "text/event-stream", body = String),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs resource_read", body = crate::error::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 429, description = "STREAMS_TOO_MANY: the caller already holds the most open streams", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn resource_events(
    caller: Principal,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    ApiPath(number): ApiPath<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let system = readable_system(&state, &caller, &number).await?;
    let slot = StreamSlot::take(&state, caller.actor.to_string())?;
    // The revision is read before the first list: a change between the two is
    // seen by the watch and costs one more (identical, so skipped) read.
    let from = state.store.revision().await? + 1;
    let first = list_json(&state, &system.number).await?;
    // Two watches over every system's resources, filtered to this one's ids
    // (`<kind>-<system>-…`), rather than two per kind.
    let changes = stream::select(
        state
            .store
            .watch(&yunshu_store::records::prefix::<Resource>(), from)
            .await?,
        state
            .store
            .watch(&yunshu_store::records::prefix::<StatusRecord>(), from)
            .await?,
    );
    let mut stopping = state.stopping.subscribe();
    let stopping = async move {
        // An error means the sender is gone: the server is stopping too.
        let _ = stopping.wait_for(|s| *s).await;
    };
    // A stream outlives its request: it ends once the credential that opened
    // it no longer does — signed out, token revoked, user disabled (issue 16,
    // low). A store that does not answer is not a sign-out.
    let revoked = {
        let (store, admin) = (state.store.clone(), state.admin_token_sha256.clone());
        let secure = state.secure_cookies;
        async move {
            loop {
                tokio::time::sleep(RECHECK).await;
                let credential = crate::auth::read_credential(&headers, secure);
                match yunshu_auth::resolve(&*store, admin.as_deref(), credential).await {
                    Err(yunshu_auth::AuthError::Unauthenticated) => return,
                    _ => continue,
                }
            }
        }
    };
    let stop = Box::pin(async move {
        tokio::select! {
            () = stopping => {}
            () = revoked => {}
        }
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
        .map(move |json| {
            // Held as long as the stream lives: dropped with it.
            let _slot = &slot;
            Ok(Event::default().event("resources").data(json))
        });
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
    /// Whether a batch touches a resource of this system.
    fn concerns(&self, batch: &WatchBatch) -> bool {
        let prefixes = yunshu_workflow::desired::system_prefixes(&self.number);
        batch.events.iter().any(|ev| {
            let id = ev.kv.key.rsplit_once('/').map_or("", |(_, id)| id);
            prefixes.iter().any(|p| id.starts_with(p.as_str()))
        })
    }

    /// The next list that differs from the last one sent; `None` ends the
    /// stream (the watch failed, e.g. history compacted: the browser
    /// reconnects and starts from a fresh list).
    async fn next(mut self) -> Option<(String, Self)> {
        loop {
            match self.changes.next().await? {
                Ok(batch) if self.concerns(&batch) => {}
                Ok(_) => continue,
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
