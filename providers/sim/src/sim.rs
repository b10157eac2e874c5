//! [`Sim`], the simulator driver: implements `yunshu_driver_sdk::Driver` over the
//! rules engine (`rules::State`), drives time (per-kind delays on tokio timers),
//! reports every change through the SDK's `EventSink`, injects faults and lets an
//! operator take hosts down and up.
//!
//! Concurrency: one `std::sync::Mutex` guards the whole state and is never held
//! across an await. Events are appended while it is held, so the event order is
//! the order of the state changes. A timer completes a transition only if the
//! resource still carries the token the timer was given, so a later Apply or
//! Delete of the same resource always wins over an old timer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::watch;
use yunshu_driver_sdk::{Driver, EventSink};
use yunshu_proto::tonic::Status;
use yunshu_proto::v1;

use crate::config::{Delays, SimConfig};
use crate::datacenter::{Datacenter, Key};
use crate::error::SimError;
use crate::faults::{self, Call, Faults};
use crate::rules::{Applied, Deletion, HostUsage, State, StorageUsage, kind_label};

/// `DriverInfo.name` of the simulator.
pub const DRIVER_NAME: &str = "yunshu-sim";

/// Every kind of the protocol: the simulator models them all.
pub const KINDS: [v1::ResourceKind; 11] = [
    v1::ResourceKind::Vm,
    v1::ResourceKind::BareMetal,
    v1::ResourceKind::Volume,
    v1::ResourceKind::Vpc,
    v1::ResourceKind::Subnet,
    v1::ResourceKind::SecurityGroup,
    v1::ResourceKind::Eip,
    v1::ResourceKind::LoadBalancer,
    v1::ResourceKind::WafPolicy,
    v1::ResourceKind::BackupPolicy,
    v1::ResourceKind::Snapshot,
];

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy)]
enum Transition {
    Apply,
    Delete,
}

struct Shared {
    state: Mutex<State>,
    events: EventSink,
    faults: watch::Sender<Faults>,
    /// Whether the watch-dropping task runs (it needs a tokio runtime, which may
    /// only exist from the first call on).
    dropper_started: AtomicBool,
    architectures: Vec<v1::Architecture>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counters consistent (every
        // mutation is planned before it is applied), so keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn complete(&self, transition: Transition, key: &Key, token: u64) {
        let mut st = self.lock();
        match transition {
            Transition::Apply => {
                if let Some(state) = st.complete_apply(key, token, now_ms()) {
                    tracing::debug!(kind = key.0, id = %key.1, "simulator: running");
                    self.events.resource(v1::ChangeType::Updated, state);
                }
            }
            Transition::Delete => {
                if let Some(state) = st.complete_delete(key, token, now_ms()) {
                    tracing::debug!(kind = key.0, id = %key.1, "simulator: deleted");
                    self.events.resource(v1::ChangeType::Deleted, state);
                }
            }
        }
    }
}

/// The simulator driver: a datacenter in memory. Cheap to clone (clones share
/// the datacenter). Wrap it in `yunshu_driver_sdk::DriverService` to serve it.
#[derive(Clone)]
pub struct Sim {
    shared: Arc<Shared>,
}

impl Sim {
    /// Builds the datacenter of `config` (checking it) with the delays and faults
    /// it names. Changes are reported through `events`.
    pub fn new(config: SimConfig, events: EventSink) -> Result<Sim, SimError> {
        let dc = Datacenter::build(&config)?;
        tracing::info!(
            zones = dc.zones.len(),
            pools = dc.pools.len(),
            hosts = dc.hosts.len(),
            "simulator: datacenter built in memory (a simulator, not a real cloud)"
        );
        let architectures = dc.architectures();
        let faults = config.faults.to_faults().normalized();
        let sim = Sim {
            shared: Arc::new(Shared {
                state: Mutex::new(State::new(dc, config.delays)),
                events,
                faults: watch::channel(faults).0,
                dropper_started: AtomicBool::new(false),
                architectures,
            }),
        };
        sim.ensure_background();
        Ok(sim)
    }

    /// Starts the watch-dropping task once a tokio runtime is at hand.
    fn ensure_background(&self) {
        if self.shared.dropper_started.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self
            .shared
            .dropper_started
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            runtime.spawn(faults::drop_watchers(
                self.shared.faults.subscribe(),
                self.shared.events.clone(),
            ));
        }
    }

    /// Replaces the injected faults (takes effect for the next call; the watch
    /// dropper follows at once).
    pub fn set_faults(&self, faults: Faults) {
        let faults = faults.normalized();
        tracing::info!(
            error_rate = faults.error_rate,
            added_latency_ms = faults.added_latency.as_millis() as u64,
            drop_watch_every_ms = faults.drop_watch_every.map(|d| d.as_millis() as u64),
            "simulator: faults set"
        );
        self.shared.faults.send_replace(faults);
        self.ensure_background();
    }

    pub fn faults(&self) -> Faults {
        *self.shared.faults.borrow()
    }

    /// Replaces the per-kind delays for transitions started from now on.
    pub fn set_delays(&self, delays: Delays) {
        self.shared.lock().delays = delays;
    }

    /// Takes a host down, up or into maintenance. Emits HostChanged and
    /// InventoryChanged (the revision increases), then an UPDATED event for every
    /// VM or bare-metal server the change stopped (DOWN) or restarted (back from
    /// DOWN). Setting the state a host already has changes nothing.
    pub fn set_host_state(&self, host: &str, state: v1::HostState) -> Result<(), SimError> {
        if state == v1::HostState::Unspecified {
            return Err(SimError::InvalidHostState);
        }
        let mut st = self.shared.lock();
        let index = st
            .dc
            .host(host)
            .ok_or_else(|| SimError::UnknownHost(host.to_owned()))?;
        if let Some((revision, changed)) = st.set_host_state(index, state, now_ms()) {
            tracing::info!(
                host,
                state = state.as_str_name(),
                revision,
                affected = changed.len(),
                "simulator: host state changed"
            );
            self.shared.events.host(host, state);
            self.shared.events.inventory(revision);
            for resource in changed {
                self.shared
                    .events
                    .resource(v1::ChangeType::Updated, resource);
            }
        }
        Ok(())
    }

    /// Adds `count` Up hosts with `cores` and `memory_mib` (no reserve) to
    /// `pool`, as a provider expanding a pool does. Emits HostChanged (UP) for
    /// each and one InventoryChanged (the revision increases), so the controller
    /// sees the larger totals on its next inventory read. Returns the host ids.
    pub fn add_hosts(
        &self,
        pool: &str,
        count: u32,
        cores: u32,
        memory_mib: u64,
    ) -> Result<Vec<String>, SimError> {
        let mut st = self.shared.lock();
        let added = st.dc.add_hosts(pool, count, cores, memory_mib, 0)?;
        if !added.is_empty() {
            let revision = st.dc.revision;
            tracing::info!(pool, count, revision, "simulator: hosts added");
            for host in &added {
                self.shared.events.host(host, v1::HostState::Up);
            }
            self.shared.events.inventory(revision);
        }
        Ok(added)
    }

    /// What `host` carries now; `None` for an unknown host.
    pub fn host_usage(&self, host: &str) -> Option<HostUsage> {
        self.shared.lock().host_usage(host)
    }

    /// A storage class's used and total GiB; `None` for an unknown class.
    pub fn storage_usage(&self, class: &str) -> Option<StorageUsage> {
        self.shared.lock().storage_usage(class)
    }

    /// Resources held now, in every phase.
    pub fn resource_count(&self) -> usize {
        self.shared.lock().len()
    }

    async fn before(&self, call: Call) -> Result<(), Status> {
        self.ensure_background();
        let faults = self.faults();
        faults::before_call(faults, call).await
    }

    fn schedule(&self, transition: Transition, key: Key, token: u64, delay: Duration) {
        // Weak: a timer does not keep a dropped simulator alive.
        let shared: Weak<Shared> = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(shared) = shared.upgrade() {
                shared.complete(transition, &key, token);
            }
        });
    }
}

#[async_trait]
impl Driver for Sim {
    fn info(&self) -> v1::DriverInfo {
        v1::DriverInfo {
            name: DRIVER_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol_version: yunshu_proto::PROTOCOL_VERSION as i32,
            provider: String::new(),
            kinds: KINDS.iter().map(|k| *k as i32).collect(),
            architectures: self
                .shared
                .architectures
                .iter()
                .map(|a| *a as i32)
                .collect(),
            simulator: true,
        }
    }

    async fn inventory(&self) -> Result<v1::Inventory, Status> {
        self.before(Call::Inventory).await?;
        Ok(self.shared.lock().dc.inventory())
    }

    async fn apply(&self, request: &v1::ApplyRequest) -> Result<v1::ResourceState, Status> {
        self.before(Call::Apply).await?;
        let key: Key = (request.kind, request.id.clone());
        let (reply, timer) = {
            let mut st = self.shared.lock();
            let (state, created, token) = match st.apply(request, now_ms()) {
                Ok(Applied::Unchanged(state)) => return Ok(state),
                Ok(Applied::Accepted {
                    state,
                    created,
                    token,
                }) => (state, created, token),
                Err(refused) => {
                    tracing::debug!(
                        kind = request.kind,
                        id = %request.id,
                        code = ?refused.code(),
                        message = refused.message(),
                        "simulator: apply refused"
                    );
                    return Err(refused);
                }
            };
            let kind = v1::ResourceKind::try_from(request.kind).unwrap_or_default();
            tracing::debug!(
                kind = kind_label(kind),
                id = %request.id,
                generation = request.generation,
                "simulator: provisioning"
            );
            let change = if created {
                v1::ChangeType::Created
            } else {
                v1::ChangeType::Updated
            };
            self.shared.events.resource(change, state.clone());
            let delay = st.delays.for_kind(kind);
            if delay.is_zero() {
                match st.complete_apply(&key, token, now_ms()) {
                    Some(running) => {
                        self.shared
                            .events
                            .resource(v1::ChangeType::Updated, running.clone());
                        (running, None)
                    }
                    None => (state, None),
                }
            } else {
                (state, Some((token, delay)))
            }
        };
        if let Some((token, delay)) = timer {
            self.schedule(Transition::Apply, key, token, delay);
        }
        Ok(reply)
    }

    async fn get(
        &self,
        kind: v1::ResourceKind,
        id: &str,
    ) -> Result<Option<v1::ResourceState>, Status> {
        self.before(Call::Get).await?;
        Ok(self.shared.lock().get(kind, id))
    }

    async fn delete(
        &self,
        kind: v1::ResourceKind,
        id: &str,
    ) -> Result<Option<v1::ResourceState>, Status> {
        self.before(Call::Delete).await?;
        let key: Key = (kind as i32, id.to_owned());
        let (reply, timer) = {
            let mut st = self.shared.lock();
            let (state, token) = match st.begin_delete(kind, id, now_ms())? {
                None => return Ok(None),
                Some(Deletion::AlreadyDeleting(state)) => return Ok(Some(state)),
                Some(Deletion::Started { state, token }) => (state, token),
            };
            tracing::debug!(kind = kind_label(kind), id, "simulator: deleting");
            self.shared
                .events
                .resource(v1::ChangeType::Updated, state.clone());
            let delay = st.delays.for_kind(kind);
            if delay.is_zero() {
                match st.complete_delete(&key, token, now_ms()) {
                    Some(gone) => {
                        self.shared
                            .events
                            .resource(v1::ChangeType::Deleted, gone.clone());
                        (gone, None)
                    }
                    None => (state, None),
                }
            } else {
                (state, Some((token, delay)))
            }
        };
        if let Some((token, delay)) = timer {
            self.schedule(Transition::Delete, key, token, delay);
        }
        Ok(Some(reply))
    }

    async fn list(
        &self,
        kind: Option<v1::ResourceKind>,
        after: Option<(v1::ResourceKind, String)>,
        limit: usize,
    ) -> Result<Vec<v1::ResourceState>, Status> {
        self.before(Call::List).await?;
        Ok(self.shared.lock().list(kind, after, limit))
    }
}

#[cfg(test)]
mod tests;
