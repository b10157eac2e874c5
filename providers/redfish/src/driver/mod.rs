//! The SDK [`Driver`] over the configured BMCs.
//!
//! - [`hosts`]: every Redfish system is a host (`<bmc>-<system id>`), in one
//!   pool per (zone, network area, architecture); a BMC that does not answer
//!   makes its hosts DOWN.
//! - [`bare_metal`]: a server is a whole system: ownership recorded first,
//!   then virtual media, boot once from CD, power; [`poller`] reports
//!   RUNNING / STOPPED when `PowerState` says so at that generation.
//! - [`network`]: VPCs and subnets as address plans of the provisioning
//!   network ([`crate::ipam`]), security groups as recorded rules that the
//!   rack's switch ACLs enforce, not this driver (it says so in each
//!   group's message and outputs).
//!
//! The SDK has already checked generations and idempotency keys; what is
//! here is what only this driver knows: references that must resolve
//! (`DEPENDENCY_NOT_FOUND`), resources that may not go while named
//! (`RESOURCE_IN_USE`), systems that are someone else's.

mod bare_metal;
mod hosts;
mod network;
mod poller;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::sync::{Mutex, Notify};
use yunshu_driver_sdk::cli::error_chain;
use yunshu_driver_sdk::{Driver, EventSink};
use yunshu_proto::errors::{reasons, status, status_with};
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1::{self, ResourceKind as K};

use crate::config::{Config, ConfigError};
use crate::redfish::{Bmc, RedfishError};
use crate::store::{Record, Store, StoreError, kind_label};

pub use hosts::HostView;

/// The kinds this driver serves.
const KINDS: [K; 4] = [K::Vpc, K::Subnet, K::SecurityGroup, K::BareMetal];

/// Why the driver could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("configuration")]
    Config(#[from] ConfigError),
    #[error("BMC client")]
    Bmc(#[from] RedfishError),
    #[error("state directory")]
    Store(#[from] StoreError),
}

/// Resources by (kind number, id): the order `List` pages in.
type Resources = BTreeMap<(i32, String), Record>;

struct Inner {
    config: Config,
    bmcs: Vec<Bmc>,
    store: Store,
    resources: Mutex<Resources>,
    hosts: std::sync::Mutex<hosts::Hosts>,
    /// One lock per host: the BMC calls of one system never interleave
    /// (apply, the poller and delete all drive it).
    host_ops: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// The last reset sent to each system and when (`bmc/system`).
    resets: std::sync::Mutex<HashMap<String, (String, std::time::Instant)>>,
    /// When each release's first ForceOff went out (by server id).
    releases: std::sync::Mutex<HashMap<String, std::time::Instant>>,
    events: EventSink,
    revision: AtomicU64,
    /// Wakes the poller early (after an apply).
    wake: Notify,
}

/// The Redfish driver. Cheap to clone.
#[derive(Clone)]
pub struct RedfishDriver {
    inner: Arc<Inner>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn spec_of(state: &v1::ResourceState) -> Option<&v1::resource_spec::Spec> {
    state.spec.as_ref()?.spec.as_ref()
}

fn invalid(message: impl Into<String>) -> Status {
    status(Code::InvalidArgument, reasons::INVALID_SPEC, message)
}

fn store_failed(e: StoreError) -> Status {
    status(Code::Unavailable, "STATE_DIR_FAILED", error_chain(&e))
}

fn missing(field: &str, kind: K, id: &str) -> Status {
    status_with(
        Code::FailedPrecondition,
        reasons::DEPENDENCY_NOT_FOUND,
        format!(
            "{field} names {} {id}, which this driver does not hold",
            kind_label(kind as i32)
        ),
        [
            ("field".to_owned(), field.to_owned()),
            ("id".to_owned(), id.to_owned()),
        ],
    )
}

/// Ids become file names: nothing that could climb out.
fn check_id(id: &str) -> Result<(), Status> {
    if !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with('.')
    {
        Ok(())
    } else {
        Err(invalid(format!(
            "id {id:?} may hold only letters, digits, '-', '_' and '.'"
        )))
    }
}

/// The live record `(kind, id)` a field names: `DEPENDENCY_NOT_FOUND` when
/// there is none (or it is being deleted), `INVALID_SPEC` when the id is a
/// resource of another kind.
fn resolve<'a>(
    resources: &'a Resources,
    field: &str,
    kind: K,
    id: &str,
) -> Result<&'a Record, Status> {
    match resources.get(&(kind as i32, id.to_owned())) {
        Some(r) if r.state.phase != v1::Phase::Deleting as i32 => Ok(r),
        Some(_) => Err(missing(field, kind, id)),
        None => {
            if let Some(((other, _), _)) = resources.iter().find(|((_, i), _)| i == id) {
                return Err(invalid(format!(
                    "{field} must name a {}; {id} is a {}",
                    kind_label(kind as i32),
                    kind_label(*other)
                )));
            }
            Err(missing(field, kind, id))
        }
    }
}

impl RedfishDriver {
    /// Ends every BMC session the driver holds (on shutdown): BMCs have few
    /// session slots, and one left open counts until it times out there.
    pub async fn logout(&self) {
        futures::future::join_all(self.inner.bmcs.iter().map(Bmc::logout)).await;
    }

    /// Opens the state directory, adopts every resource in it (servers keep
    /// their systems; the poller picks up whatever had not converged) and
    /// reads the BMCs' systems. An unreachable BMC does not stop the driver:
    /// its hosts are reported once it answers.
    pub async fn open(config: Config, events: EventSink) -> Result<RedfishDriver, OpenError> {
        config.check()?;
        let mut bmcs = Vec::new();
        for b in &config.bmcs {
            let ca = b.ca_pem()?;
            bmcs.push(Bmc::new(
                &b.name,
                &b.url,
                &b.username,
                b.password()?,
                ca.as_deref(),
            )?);
        }
        let store = Store::open(&config.state_dir)?;
        let mut resources = Resources::new();
        for record in store.load()? {
            resources.insert((record.state.kind, record.state.id.clone()), record);
        }
        let adopted = resources.len();
        let hosts = hosts::Hosts::unread(bmcs.len());
        let driver = RedfishDriver {
            inner: Arc::new(Inner {
                config,
                bmcs,
                store,
                resources: Mutex::new(resources),
                hosts: std::sync::Mutex::new(hosts),
                host_ops: std::sync::Mutex::new(HashMap::new()),
                resets: std::sync::Mutex::new(HashMap::new()),
                releases: std::sync::Mutex::new(HashMap::new()),
                events,
                revision: AtomicU64::new(1),
                wake: Notify::new(),
            }),
        };
        driver.refresh_hosts().await;
        tracing::info!(
            adopted,
            hosts = driver.host_views().len(),
            "Redfish driver open"
        );
        poller::spawn(Arc::downgrade(&driver.inner));
        Ok(driver)
    }

    fn host_lock(&self, host: &str) -> Arc<Mutex<()>> {
        self.inner
            .host_ops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(host.to_owned())
            .or_default()
            .clone()
    }

    /// Persists `record`, puts it in the map and announces it.
    fn commit(
        &self,
        resources: &mut Resources,
        record: Record,
        change: v1::ChangeType,
    ) -> Result<v1::ResourceState, Status> {
        self.inner.store.save(&record).map_err(store_failed)?;
        let state = record.state.clone();
        resources.insert((state.kind, state.id.clone()), record);
        self.inner.events.resource(change, state.clone());
        Ok(state)
    }

    /// A new state for `request` at its generation, not yet converged.
    fn state_for(request: &v1::ApplyRequest, phase: v1::Phase, message: &str) -> v1::ResourceState {
        v1::ResourceState {
            kind: request.kind,
            id: request.id.clone(),
            generation: request.generation,
            observed_generation: if matches!(phase, v1::Phase::Running | v1::Phase::Stopped) {
                request.generation
            } else {
                0
            },
            phase: phase as i32,
            message: message.to_owned(),
            placement: request.placement.clone(),
            outputs: HashMap::new(),
            idempotency_key: request.idempotency_key.clone(),
            tenant: request.tenant.clone(),
            spec: request.spec.clone(),
            updated_unix_ms: now_ms(),
        }
    }

    /// Who names `id` (of `kind`): (kind label, id) each.
    fn users_of(resources: &Resources, kind: K, id: &str) -> Vec<(String, String)> {
        use v1::resource_spec::Spec;
        resources
            .values()
            // Only live referrers hold (proto/README.md): a server stuck
            // DELETING behind a dead BMC must not pin its subnet.
            .filter(|r| r.state.phase != v1::Phase::Deleting as i32)
            .filter(|r| match spec_of(&r.state) {
                Some(Spec::Subnet(s)) => kind == K::Vpc && s.vpc == id,
                Some(Spec::BareMetal(b)) => {
                    kind == K::Subnet && b.nics.iter().any(|n| n.subnet == id)
                }
                Some(Spec::SecurityGroup(g)) => {
                    kind == K::SecurityGroup
                        && r.state.id != id
                        && g.rules.iter().any(|rule| rule.remote_group == id)
                }
                _ => false,
            })
            .map(|r| (kind_label(r.state.kind), r.state.id.clone()))
            .collect()
    }

    /// Host ids of the systems no bare-metal server holds: the free pool.
    pub async fn free_hosts(&self) -> Vec<String> {
        let held = self.held_hosts().await;
        self.host_views()
            .into_iter()
            .map(|h| h.id)
            .filter(|h| !held.contains_key(h))
            .collect()
    }

    /// Host id → the bare-metal server holding it.
    pub async fn held_hosts(&self) -> BTreeMap<String, String> {
        let resources = self.inner.resources.lock().await;
        resources
            .values()
            .filter(|r| r.state.kind == K::BareMetal as i32)
            .filter_map(|r| {
                let host = r.state.placement.as_ref()?.host.clone();
                Some((host, r.state.id.clone()))
            })
            .collect()
    }
}

#[async_trait]
impl Driver for RedfishDriver {
    fn info(&self) -> v1::DriverInfo {
        let mut architectures: Vec<i32> = self
            .inner
            .config
            .bmcs
            .iter()
            .flat_map(|b| {
                std::iter::once(b.defaults.arch.clone())
                    .chain(b.systems.keys().map(|id| b.facts(id).arch))
            })
            .filter_map(|a| crate::config::parse_arch(&a))
            .map(|a| a as i32)
            .collect();
        architectures.sort_unstable();
        architectures.dedup();
        v1::DriverInfo {
            name: "yunshu-redfish".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kinds: KINDS.iter().map(|k| *k as i32).collect(),
            architectures,
            simulator: false,
            ..Default::default()
        }
    }

    async fn inventory(&self) -> Result<v1::Inventory, Status> {
        self.refresh_hosts().await;
        Ok(self.inventory_now())
    }

    async fn apply(&self, request: &v1::ApplyRequest) -> Result<v1::ResourceState, Status> {
        use v1::resource_spec::Spec;
        check_id(&request.id)?;
        let spec = request.spec.as_ref().and_then(|s| s.spec.as_ref());
        match spec {
            Some(Spec::BareMetal(_)) => self.apply_bare_metal(request).await,
            Some(Spec::Vpc(_) | Spec::Subnet(_) | Spec::SecurityGroup(_)) => {
                self.apply_network(request).await
            }
            _ => Err(status(
                Code::InvalidArgument,
                reasons::KIND_UNSUPPORTED,
                "this Redfish driver serves bare-metal servers, VPCs, subnets and security groups",
            )),
        }
    }

    async fn get(&self, kind: K, id: &str) -> Result<Option<v1::ResourceState>, Status> {
        let resources = self.inner.resources.lock().await;
        Ok(resources
            .get(&(kind as i32, id.to_owned()))
            .map(|r| r.state.clone()))
    }

    async fn delete(&self, kind: K, id: &str) -> Result<Option<v1::ResourceState>, Status> {
        if kind == K::BareMetal {
            return self.delete_bare_metal(id).await;
        }
        let mut resources = self.inner.resources.lock().await;
        let key = (kind as i32, id.to_owned());
        if !resources.contains_key(&key) {
            return Ok(None);
        }
        let users = Self::users_of(&resources, kind, id);
        if let Some((first_kind, first)) = users.first().cloned() {
            let names: Vec<String> = users.iter().map(|(k, i)| format!("{k} {i}")).collect();
            return Err(status_with(
                Code::FailedPrecondition,
                reasons::RESOURCE_IN_USE,
                format!(
                    "{id} is still named by {}; delete or change that first",
                    names.join(", ")
                ),
                [
                    ("used_by".to_owned(), first),
                    ("used_by_kind".to_owned(), first_kind),
                ],
            ));
        }
        self.inner
            .store
            .remove(kind as i32, id)
            .map_err(store_failed)?;
        let Some(record) = resources.remove(&key) else {
            return Ok(None);
        };
        let mut state = record.state;
        state.phase = v1::Phase::Deleted as i32;
        state.updated_unix_ms = now_ms();
        self.inner
            .events
            .resource(v1::ChangeType::Deleted, state.clone());
        Ok(Some(state))
    }

    async fn list(
        &self,
        kind: Option<K>,
        after: Option<(K, String)>,
        limit: usize,
    ) -> Result<Vec<v1::ResourceState>, Status> {
        let resources = self.inner.resources.lock().await;
        let start = after.map(|(k, id)| (k as i32, id));
        Ok(resources
            .iter()
            .filter(|(key, _)| start.as_ref().is_none_or(|s| *key > s))
            .filter(|(key, _)| kind.is_none_or(|k| key.0 == k as i32))
            .take(limit)
            .map(|(_, r)| r.state.clone())
            .collect())
    }
}

impl RedfishDriver {
    fn bump_revision(&self) -> u64 {
        let r = self.inner.revision.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner.events.inventory(r);
        r
    }
}

#[cfg(test)]
mod tests;
