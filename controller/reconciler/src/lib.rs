//! The reconciler: approved work orders become resources through the drivers,
//! level-triggered like a Kubernetes controller (SPEC §4–5, issue 6).
//!
//! ```text
//! store watch (work_order/…) ─▶ systems queue ─▶ materialize: desired vs stored,
//!                                                  place all-or-nothing, write
//!                                                  intent+placement (1 txn/chunk)
//!                                       │ new / changed resource ids (Fresh)
//!                                       ▼
//! periodic resync (Resync) ───▶ resources queue ─▶ worker: Apply / Delete via the
//!                                                  driver (idempotency key
//!                                                  id@generation) ─▶ status writer
//!                                                  (batched) ─▶ order completion
//! ```
//!
//! Owns the placement index of the leader (rebuilt at start from inventory and
//! the stored placements), the two work queues and their workers, every call
//! to a driver (`connect`: the mTLS client; `health`: the health loop every
//! replica runs), and the capacity manager (`capacity`: snapshot, 80 % rule,
//! expansion orders) that runs after every inventory refresh and every
//! placement or release. What is desired (`yunshu_workflow::desired`) and the
//! records it writes for others to read (`yunshu_workflow::resources`,
//! `yunshu_workflow::capacity`) are the workflow's.
//!
//! Must not speak HTTP (it does not depend on the api crate, nor the api on
//! it), and must run in one replica at a time (the leader); every write it
//! makes is compared on the revision it read, so a stale leader's write fails
//! rather than overwrites.

mod book;
mod build;
pub mod capacity;
mod complete;
pub mod connect;
pub mod health;
pub mod materialize;
mod observe;
pub mod orphans;
pub mod providers;
pub mod queue;
mod refs;
pub mod status;
mod wire;
pub mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use yunshu_domain::order::WorkOrder;
use yunshu_domain::resource::Resource;
use yunshu_domain::{Actor, OrderId, ProviderId, ResourceId, SystemNumber};
use yunshu_drivers::DriverPki;
use yunshu_placement::{HostRef, Index};
use yunshu_store::{Store, StoreError, records};
use yunshu_workflow::orders::OrderTrack;

use self::providers::{Inventory, Providers};
use self::queue::{Backoff, Priority, WorkQueue};
use self::status::StatusWriter;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Provider(#[from] providers::ProviderError),
    #[error("driver call failed: {0}")]
    Driver(yunshu_proto::tonic::Status),
    #[error("a concurrent write changed the records; retrying from what is stored")]
    Conflict,
    #[error("invalid value: {0}")]
    Invalid(String),
    #[error(transparent)]
    Workflow(#[from] Box<yunshu_workflow::WorkflowError>),
}

/// How the reconciler runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Concurrent resource workers (driver calls in flight).
    pub resource_workers: usize,
    pub system_workers: usize,
    /// Every managed resource is re-checked this often (drift, lost events).
    pub resync_every: Duration,
    /// Inventory is re-read this often (new hosts, maintenance).
    pub inventory_every: Duration,
    /// A capacity pass runs at least this often even when nothing changed, so
    /// an expansion order's due time is noticed.
    pub capacity_every: Duration,
    /// Each pool's figures are kept once per this interval (the trend).
    pub capacity_sample_every: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            resource_workers: 64,
            system_workers: 4,
            resync_every: Duration::from_secs(600),
            inventory_every: Duration::from_secs(30),
            capacity_every: Duration::from_secs(60),
            capacity_sample_every: Duration::from_secs(3600),
        }
    }
}

/// The component that writes as the reconciler (audit entries, alarms).
pub fn actor() -> Actor {
    Actor::System("reconciler".to_owned())
}

/// The leader's reconciler state. Shared by its tasks.
pub struct Reconciler {
    pub store: Arc<dyn Store>,
    pub providers: Providers,
    pub index: Mutex<Index>,
    pub inventories: Mutex<HashMap<ProviderId, Inventory>>,
    pub systems: WorkQueue<SystemNumber>,
    pub resources: WorkQueue<ResourceId>,
    pub status: StatusWriter,
    /// Orders that could not be placed, with the reason (en, zh).
    pub unschedulable: Mutex<HashMap<OrderId, (String, String)>>,
    /// The capacity snapshot this reconciler publishes and the signal that
    /// asks for a capacity pass.
    pub capacity: capacity::Capacity,
    /// Resources whose next turn reads the driver back first (drift seen on
    /// a driver's watch stream).
    suspects: Mutex<HashSet<ResourceId>>,
    /// Which orders each system has, and which are approved (see `book.rs`).
    book: Mutex<book::OrderBook>,
    /// Who names whom among the stored resources (see `refs.rs`).
    pub refs: Mutex<refs::Refs>,
    /// Asks the inventory task for a read now (a driver reported host or
    /// inventory changes); bursts of events collapse into one read.
    inventory_wanted: tokio::sync::Notify,
}

impl Reconciler {
    /// Reads inventory from every registered driver into the index.
    pub async fn refresh_inventory(&self) {
        let providers = match self.providers.registered().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list drivers");
                return;
            }
        };
        for provider in providers {
            match self.providers.inventory(&provider).await {
                Ok(inv) => {
                    let Ok(pid) = provider.parse::<ProviderId>() else {
                        continue;
                    };
                    let result = self
                        .index
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .sync_provider(&pid, inv.index.clone());
                    match result {
                        Ok(()) => {
                            for r in &inv.refusals {
                                tracing::warn!(%provider, pool = %r.pool, code = r.code, "{}", r.message);
                            }
                            self.capacity.set_refusals(&pid, &inv.refusals);
                            self.inventories
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(pid, inv);
                        }
                        Err(e) => {
                            tracing::warn!(%provider, error = %e, "inventory refused by the index")
                        }
                    }
                }
                Err(e) => tracing::warn!(%provider, error = %e, "inventory not read"),
            }
        }
        // Totals may have changed (hosts added, taken down): recheck the line.
        self.capacity.changed();
    }

    /// Records the placements already stored (after a restart) in the index and
    /// queues every resource: unconverged ones as fresh work.
    async fn adopt_stored(&self) -> Result<usize, ReconcileError> {
        let mut stored = yunshu_store::page::scan_all::<Resource>(&*self.store).await?;
        // Networks before what sits in them: a server's turn ahead of its
        // subnet's would only find it not running yet and back off.
        stored.sort_by_key(|(res, _)| res.kind().creation_rank());
        let n = stored.len();
        for (res, _) in stored {
            self.adopt(&res);
            self.resources.add(res.id().clone(), Priority::Resync);
        }
        Ok(n)
    }

    /// Records a stored resource's references and the capacity its placement
    /// holds in the index.
    fn adopt(&self, res: &Resource) {
        use yunshu_domain::resource::ResourceSpec;
        self.refs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(res);
        let Some(p) = res.placement() else {
            return;
        };
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let result = match (res.spec(), &p.host) {
            (ResourceSpec::Vm(vm), Some(host)) => {
                let mut shape = yunshu_placement::VmShape::new(vm.vcpu.get(), vm.memory_mib.get());
                shape.anti_affinity = vm.anti_affinity_group.clone();
                shape.anti_affinity_soft = vm.anti_affinity_soft;
                if let Some(class) = &vm.system_disk_class {
                    shape.disks.push(yunshu_placement::Disk {
                        storage_class: class.clone(),
                        size_gib: u64::from(vm.system_disk_gib.get()),
                    });
                }
                for d in &vm.data_disks {
                    shape.disks.push(yunshu_placement::Disk {
                        storage_class: d.storage_class.clone(),
                        size_gib: u64::from(d.size_gib.get()),
                    });
                }
                let href = HostRef {
                    provider: p.provider.clone(),
                    host: host.clone(),
                };
                index
                    .reserve_on(&href, res.id().clone(), shape)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            // A bare-metal server holds its whole host.
            (ResourceSpec::BareMetal(_), Some(host)) => {
                let href = HostRef {
                    provider: p.provider.clone(),
                    host: host.clone(),
                };
                match index.host_usage(&href) {
                    Some(u) => {
                        let shape = yunshu_placement::VmShape::new(
                            u32::try_from(u.vcpu.total).unwrap_or(u32::MAX),
                            u.memory_mib.total,
                        );
                        index
                            .reserve_on(&href, res.id().clone(), shape)
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }
                    None => Err(format!("host {host} is not in the inventory")),
                }
            }
            (spec, _) => match build::shared_request(res.id(), spec, p) {
                Some(req) => index.reserve_shared(&req).map_err(|e| e.to_string()),
                None => Ok(()),
            },
        };
        if let Err(e) = result {
            // Stored placements are facts: report, never move silently.
            tracing::error!(resource = %res.id(), error = %e, "stored placement not adoptable");
        }
    }

    async fn queue_all_systems(&self) -> Result<(), ReconcileError> {
        let all = yunshu_store::page::scan_all::<WorkOrder>(&*self.store).await?;
        self.book
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reset(all.iter().map(|(o, _)| o));
        for (o, _) in all {
            self.systems.add(o.system().clone(), Priority::Fresh);
        }
        Ok(())
    }
}

/// Runs the reconciler until the task is dropped, publishing capacity figures
/// into `snapshot`.
pub async fn run(
    store: Arc<dyn Store>,
    pki: Arc<DriverPki>,
    config: Config,
    snapshot: yunshu_workflow::capacity::SharedSnapshot,
    resync: Arc<tokio::sync::Notify>,
) {
    let (status, _writer) = StatusWriter::start(store.clone());
    let r = Arc::new(Reconciler {
        providers: Providers::new(pki, store.clone()),
        store: store.clone(),
        index: Mutex::new(Index::new()),
        inventories: Mutex::new(HashMap::new()),
        systems: WorkQueue::new(Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }),
        resources: WorkQueue::new(Backoff::default()),
        status,
        unschedulable: Mutex::new(HashMap::new()),
        capacity: capacity::Capacity::new(snapshot),
        suspects: Mutex::new(HashSet::new()),
        book: Mutex::new(book::OrderBook::default()),
        refs: Mutex::new(refs::Refs::default()),
        inventory_wanted: tokio::sync::Notify::new(),
    });
    run_with(r, config, resync).await;
}

/// Runs an already built reconciler (tests and benchmarks hold on to it).
pub async fn run_with(r: Arc<Reconciler>, config: Config, resync: Arc<tokio::sync::Notify>) {
    r.refresh_inventory().await;
    // Watch before the first full pass so nothing written meanwhile is missed.
    let from = match r.store.revision().await {
        Ok(rev) => rev + 1,
        Err(_) => 0,
    };
    match r.adopt_stored().await {
        Ok(n) => tracing::info!(resources = n, "reconciler adopted stored resources"),
        Err(e) => tracing::error!(error = %e, "reconciler could not read stored resources"),
    }
    if let Err(e) = r.queue_all_systems().await {
        tracing::error!(error = %e, "reconciler could not list orders");
    }
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(watch_orders(r.clone(), from));
    tasks.spawn(watch_system_records(
        r.clone(),
        from,
        records::prefix::<yunshu_workflow::usage::UsageTerm>(),
        |key, value| {
            records::decode::<yunshu_workflow::usage::UsageTerm>(key, value)
                .ok()
                .map(|t| t.system)
        },
    ));
    tasks.spawn(watch_system_records(
        r.clone(),
        from,
        records::prefix::<yunshu_workflow::suspension::Suspension>(),
        |key, value| {
            records::decode::<yunshu_workflow::suspension::Suspension>(key, value)
                .ok()
                .map(|s| s.system)
        },
    ));
    tasks.spawn(observe::run(r.clone()));
    // An operator's resync request: everything is queued as low-priority work,
    // so it never delays a newly approved order (Fresh goes first).
    tasks.spawn({
        let r = r.clone();
        async move {
            loop {
                resync.notified().await;
                tracing::info!("resync requested");
                if let Err(e) = r.adopt_stored_ids().await {
                    tracing::warn!(error = %e, "resync listing failed");
                }
            }
        }
    });
    for _ in 0..config.system_workers {
        tasks.spawn(system_worker(r.clone()));
    }
    for _ in 0..config.resource_workers {
        tasks.spawn(resource_worker(r.clone()));
    }
    tasks.spawn(complete::run(r.clone()));
    // After adopt_stored: the index holds every stored placement by now.
    tasks.spawn(capacity::run(
        r.clone(),
        config.capacity_every,
        config.capacity_sample_every,
    ));
    tasks.spawn({
        let r = r.clone();
        async move {
            let mut tick = tokio::time::interval(config.inventory_every);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = r.inventory_wanted.notified() => {}
                }
                r.refresh_inventory().await;
            }
        }
    });
    tasks.spawn({
        let r = r.clone();
        async move {
            let mut tick = tokio::time::interval(config.resync_every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = r.adopt_stored_ids().await {
                    tracing::warn!(error = %e, "resync listing failed");
                }
                // Systems too: a temporary expansion that ended shrinks them.
                if let Err(e) = r.queue_all_systems().await {
                    tracing::warn!(error = %e, "resync of systems failed");
                }
                match orphans::pass(&r).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::warn!(orphans = n, "drivers hold resources yunshu does not know")
                    }
                    Err(e) => tracing::warn!(error = %e, "orphan check failed"),
                }
            }
        }
    });
    // The tasks run until this future is dropped (leadership lost, shutdown).
    while tasks.join_next().await.is_some() {}
}

impl Reconciler {
    /// Looks again, now, at the resources that name `id` (it started
    /// running, or was stopped as asked) — once every status handed to the
    /// writer before is durable. A woken user checks `id` by reading its status record from
    /// the store (`worker::first_unready`); woken while the observation that
    /// `id` runs is still in the writer's batch, it finds `id` unready, waits,
    /// and nothing wakes it again (the OpenStack e2e saw an EIP on a load
    /// balancer stay pending). Costs nothing when nobody names `id`.
    pub async fn wake_users_when_recorded(&self, id: &ResourceId) {
        let users = self
            .refs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .users(id);
        if users.is_empty() {
            return;
        }
        self.status.flush().await;
        for u in users {
            self.resources.add(u, Priority::Fresh);
        }
    }

    /// Asks for an inventory read soon (see `inventory_wanted`).
    pub fn wants_inventory(&self) {
        self.inventory_wanted.notify_one();
    }

    /// Queues every stored resource for a low-priority re-check.
    async fn adopt_stored_ids(&self) -> Result<(), ReconcileError> {
        for (res, _) in yunshu_store::page::scan_all::<Resource>(&*self.store).await? {
            self.resources.add(res.id().clone(), Priority::Resync);
        }
        Ok(())
    }
}

/// Orders changing → their system is looked at again.
async fn watch_orders(r: Arc<Reconciler>, mut from: yunshu_store::Revision) {
    let prefixes = [
        records::prefix::<WorkOrder>(),
        records::prefix::<OrderTrack>(),
        records::prefix::<yunshu_workflow::expansion::Expansion>(),
    ];
    loop {
        let mut watch = match r.store.watch("work_order", from).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "order watch failed; relisting");
                let _ = r.queue_all_systems().await;
                from = r.store.revision().await.map(|v| v + 1).unwrap_or(0);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        while let Some(batch) = watch.next().await {
            let Ok(batch) = batch else {
                break;
            };
            from = batch.revision + 1;
            for ev in batch.events {
                if !prefixes.iter().any(|p| ev.kv.key.starts_with(p.as_str())) {
                    continue;
                }
                let order_prefix = records::prefix::<WorkOrder>();
                if ev.kind == yunshu_store::EventKind::Delete
                    && let Some(id) = ev.kv.key.strip_prefix(order_prefix.as_str())
                {
                    if let Ok(id) = id.parse::<OrderId>() {
                        r.book.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                    }
                } else if ev.kv.key.starts_with(order_prefix.as_str())
                    && let Ok(o) = records::decode::<WorkOrder>(&ev.kv.key, &ev.kv.value)
                {
                    r.book.lock().unwrap_or_else(|e| e.into_inner()).upsert(&o);
                    r.systems.add(o.system().clone(), Priority::Fresh);
                } else if let Ok(e) = records::decode::<yunshu_workflow::expansion::Expansion>(
                    &ev.kv.key,
                    &ev.kv.value,
                ) {
                    r.systems.add(e.system.clone(), Priority::Fresh);
                } else if let Ok(t) = records::decode::<OrderTrack>(&ev.kv.key, &ev.kv.value)
                    && let Ok(Some((o, _))) =
                        records::get::<WorkOrder>(&*r.store, t.order.as_str()).await
                {
                    r.systems.add(o.system().clone(), Priority::Fresh);
                }
            }
        }
    }
}

/// A per-system record under `prefix` changing → its system (`system_of`
/// the key and value) is looked at again: its servers power off or on. For
/// usage terms (a system forced offline, 002 art. 14; closed by an exit) and
/// suspensions (002 art. 18, 004 art. 27). The end of a term's backup
/// retention is a date, not a write: the periodic resync sees it.
async fn watch_system_records(
    r: Arc<Reconciler>,
    mut from: yunshu_store::Revision,
    prefix: String,
    system_of: fn(&str, &[u8]) -> Option<SystemNumber>,
) {
    loop {
        let mut watch = match r.store.watch(&prefix, from).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, %prefix, "record watch failed; relisting");
                let _ = r.queue_all_systems().await;
                from = r.store.revision().await.map(|v| v + 1).unwrap_or(0);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        while let Some(batch) = watch.next().await {
            let Ok(batch) = batch else {
                break;
            };
            from = batch.revision + 1;
            for ev in batch.events {
                if let Some(system) = system_of(&ev.kv.key, &ev.kv.value) {
                    r.systems.add(system, Priority::Fresh);
                }
            }
        }
    }
}

async fn system_worker(r: Arc<Reconciler>) {
    while let Some((system, priority)) = r.systems.next().await {
        match materialize::system(&r, &system, Utc::now()).await {
            Ok(outcome) => {
                if outcome.waiting.is_empty() {
                    r.systems.forget(&system);
                } else {
                    // Some order fits nowhere yet: look again with backoff
                    // (capacity may come); the rest of the system went ahead.
                    let delay = r.systems.retry(system.clone(), priority);
                    tracing::info!(%system, waiting = outcome.waiting.len(), ?delay, "orders wait for capacity");
                }
                if !(outcome.created.is_empty() && outcome.deleting.is_empty()) {
                    r.capacity.changed();
                }
                for id in outcome
                    .created
                    .into_iter()
                    .chain(outcome.updated)
                    .chain(outcome.deleting)
                {
                    r.resources.add(id, Priority::Fresh);
                }
            }
            Err(e) => {
                let delay = r.systems.retry(system.clone(), priority);
                tracing::info!(%system, error = %e, ?delay, "system not reconciled; retrying");
            }
        }
        r.systems.done(&system);
    }
}

async fn resource_worker(r: Arc<Reconciler>) {
    while let Some((id, priority)) = r.resources.next().await {
        let read_back = r.take_suspect(&id) || priority == Priority::Resync;
        match worker::turn(&r, &id, read_back).await {
            Ok(worker::Turn::Converged | worker::Turn::Failed) => r.resources.forget(&id),
            Ok(worker::Turn::Pending) => {
                r.resources.retry(id.clone(), priority);
            }
            Err(e) => {
                let delay = r.resources.retry(id.clone(), priority);
                tracing::debug!(resource = %id, error = %e, ?delay, "resource turn failed");
            }
        }
        r.resources.done(&id);
    }
}
