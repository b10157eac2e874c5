//! The SDK [`Driver`] over one OpenStack project.
//!
//! - [`table`]: what the driver holds — each resource's last accepted request,
//!   its observed state and the OpenStack ids behind it — and the protocol's
//!   reference graph over it (`DEPENDENCY_NOT_FOUND`, `RESOURCE_IN_USE`).
//! - [`network`]: VPC → Neutron network + router, subnet → Neutron subnet on
//!   the router, security group → Neutron group and rules, EIP → floating IP.
//! - [`compute`]: VM → Nova server on Neutron ports, from a matching flavor.
//! - [`volumes`]: volume → Cinder volume, attached through Nova.
//! - [`balancers`]: load balancer → Octavia load balancer, listeners, pools,
//!   health monitors and members.
//! - [`observe`]: polling Nova (`changes-since`) and Neutron
//!   (`revision_number`) into the event sink, power-state convergence, and
//!   drift (a server deleted behind yunshu's back is reported gone).
//! - [`crate::inventory`]: Placement and Nova into zones, pools and hosts.
//! - [`projects`]: which project (and session) each tenant's resources use.
//!
//! Every OpenStack object is named `ys-<id>` and tagged `yunshu` (servers also
//! carry `yunshu_id` metadata), and an Apply looks an object up by that name
//! before creating it: a retried Apply, or one after a driver restart, never
//! creates twice.

pub(crate) mod balancers;
pub(crate) mod compute;
pub(crate) mod network;
pub(crate) mod observe;
pub(crate) mod projects;
pub(crate) mod table;
pub(crate) mod volumes;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Mutex;
use yunshu_driver_sdk::{Driver, EventSink};
use yunshu_proto::errors::{reasons, status, status_with};
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1::{self, ResourceKind as K};

use crate::cloud::{Cloud, CloudError};
use crate::config::DriverConfig;
use crate::inventory::{self, Snapshot};
use projects::{Project, Projects, TenantMap};
use table::{Entry, Table};

/// The tag on every Neutron object and Nova server the driver makes.
pub(crate) const TAG: &str = "yunshu";

/// The kinds this driver serves, in creation order.
pub const KINDS: [K; 7] = [
    K::Vpc,
    K::Subnet,
    K::SecurityGroup,
    K::Vm,
    K::Volume,
    K::LoadBalancer,
    K::Eip,
];

/// A project key as the operator knows it.
pub(crate) fn project_label(key: &str) -> &str {
    if key == projects::DEFAULT {
        "the default project"
    } else {
        key
    }
}

/// OpenStack's name for a yunshu resource.
pub(crate) fn os_name(id: &str) -> String {
    format!("ys-{id}")
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An OpenStack failure as the protocol's status: the controller decides on
/// the code, so a 400 (the cloud refuses the request as given) is terminal,
/// 403/413 (quota, policy) are exhaustion, anything else is worth retrying.
pub(crate) fn os_status(step: &str, e: &CloudError) -> Status {
    let message = format!("openstack: {step}: {e}");
    match e.http_status() {
        Some(400) => status(Code::InvalidArgument, reasons::INVALID_SPEC, message),
        Some(403) | Some(413) => status(
            Code::ResourceExhausted,
            "OPENSTACK_QUOTA_OR_POLICY",
            message,
        ),
        _ => status(Code::Unavailable, "OPENSTACK_UNAVAILABLE", message),
    }
}

pub(crate) fn invalid(field: &str, why: impl Into<String>) -> Status {
    status_with(
        Code::InvalidArgument,
        reasons::INVALID_SPEC,
        format!("openstack: {field}: {}", why.into()),
        [("field".to_owned(), field.to_owned())],
    )
}

pub(crate) struct Inner {
    pub config: DriverConfig,
    /// The default project's session and each mapped tenant's.
    pub projects: Projects,
    /// Placement, hypervisors and flavors (the operator's session, or the
    /// tenant's when none is configured).
    pub operator: Option<Cloud>,
    pub table: Mutex<Table>,
    pub events: EventSink,
    /// The last inventory read, to check placements against.
    pub snapshot: Mutex<Option<Snapshot>>,
    /// The external network's id (floating IPs, router gateways).
    pub external_network: String,
}

impl Inner {
    pub fn operator(&self) -> &Cloud {
        self.operator.as_ref().unwrap_or(&self.projects.default)
    }

    /// The inventory, read again when none was read yet.
    pub async fn snapshot(&self) -> Result<Snapshot, Status> {
        if let Some(s) = self.snapshot.lock().await.clone() {
            return Ok(s);
        }
        self.refresh_snapshot().await
    }

    pub async fn refresh_snapshot(&self) -> Result<Snapshot, Status> {
        let snap = inventory::read(self).await?;
        *self.snapshot.lock().await = Some(snap.clone());
        Ok(snap)
    }
}

/// The OpenStack driver; clones share one state.
#[derive(Clone)]
pub struct OpenStackDriver {
    inner: Arc<Inner>,
    /// The observer's task, stopped by [`OpenStackDriver::close`].
    observer: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

/// Why the driver could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("connecting the default project's session")]
    Tenant(#[source] CloudError),
    #[error("connecting the session of tenant {tenant:?}'s project")]
    TenantProject {
        tenant: String,
        #[source]
        source: CloudError,
    },
    #[error("connecting the operator's session")]
    Operator(#[source] CloudError),
    #[error("looking up the external network {name:?}")]
    ExternalNetwork {
        name: String,
        #[source]
        source: CloudError,
    },
    #[error("the external network {name:?} does not exist in this cloud")]
    NoExternalNetwork { name: String },
    #[error("reading the driver's resource records")]
    Records(#[source] yunshu_driver_sdk::records::RecordError),
}

impl OpenStackDriver {
    /// Connects the sessions (default project, each tenant's project, the
    /// operator), finds the external network, and starts the observer (it
    /// stops when the last clone of the driver is dropped).
    pub async fn open(config: DriverConfig, events: EventSink) -> Result<Self, OpenError> {
        // Each login is a Keystone round trip or two: the tenants' projects
        // are connected side by side, so fifty departments do not take fifty
        // times as long to start.
        let logins = config.projects.iter().map(|p| async move {
            Cloud::connect(&p.cloud)
                .await
                .map(|session| (p.tenant.clone(), session))
                .map_err(|source| OpenError::TenantProject {
                    tenant: p.tenant.clone(),
                    source,
                })
        });
        let (cloud, tenants) = tokio::join!(
            Cloud::connect(&config.tenant),
            futures::future::try_join_all(logins)
        );
        let cloud = cloud.map_err(OpenError::Tenant)?;
        let tenants: std::collections::BTreeMap<String, Cloud> = tenants?.into_iter().collect();
        let operator = match &config.operator {
            Some(op) => Some(Cloud::connect(op).await.map_err(OpenError::Operator)?),
            None => None,
        };
        let external_network = network::find_external(&cloud, &config.external_network)
            .await
            .map_err(|source| OpenError::ExternalNetwork {
                name: config.external_network.clone(),
                source,
            })?
            .ok_or_else(|| OpenError::NoExternalNetwork {
                name: config.external_network.clone(),
            })?;
        let table = Table::open(config.state_dir.as_deref()).map_err(OpenError::Records)?;
        let map = TenantMap::new(tenants.keys().cloned(), config.unmapped);
        let inner = Arc::new(Inner {
            config,
            projects: Projects {
                default: cloud,
                tenants,
                map,
            },
            operator,
            table: Mutex::new(table),
            events,
            snapshot: Mutex::new(None),
            external_network,
        });
        {
            let table = inner.table.lock().await;
            let mut unreachable: std::collections::BTreeMap<&str, usize> = Default::default();
            for (_, e) in table.entries() {
                if inner.project_by_key(&e.project).is_err() {
                    *unreachable.entry(e.project.as_str()).or_default() += 1;
                }
            }
            for (project, count) in unreachable {
                tracing::error!(
                    project,
                    resources = count,
                    "recorded resources live in a tenant project this driver is no longer \
                     configured for: they are not watched, and deleting them is refused until \
                     the mapping is restored"
                );
            }
        }
        let observer = observe::spawn(Arc::downgrade(&inner));
        Ok(OpenStackDriver {
            inner,
            observer: Arc::new(std::sync::Mutex::new(Some(observer))),
        })
    }

    /// Stops the observer and waits until it has (a poll in flight is cut
    /// short, as by a crash: every step it takes is asked again later). The
    /// driver answers calls still, but no longer watches OpenStack.
    pub async fn close(&self) {
        let task = self
            .observer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Pools not offered, with why (memory overcommitted in Placement).
    pub async fn refusals(&self) -> Vec<inventory::Refusal> {
        match self.inner.snapshot().await {
            Ok(s) => s.refusals,
            Err(_) => Vec::new(),
        }
    }
}

#[async_trait]
impl Driver for OpenStackDriver {
    fn info(&self) -> v1::DriverInfo {
        let architectures = self
            .inner
            .snapshot
            .try_lock()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.architectures.clone()))
            .unwrap_or_else(|| vec![v1::Architecture::X8664 as i32]);
        v1::DriverInfo {
            name: "yunshu-openstack".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kinds: KINDS.iter().map(|k| *k as i32).collect(),
            architectures,
            simulator: false,
            ..Default::default()
        }
    }

    async fn inventory(&self) -> Result<v1::Inventory, Status> {
        Ok(self.inner.refresh_snapshot().await?.inventory)
    }

    async fn apply(&self, request: &v1::ApplyRequest) -> Result<v1::ResourceState, Status> {
        let kind = K::try_from(request.kind).unwrap_or(K::Unspecified);
        if !KINDS.contains(&kind) {
            return Err(status(
                Code::Unimplemented,
                reasons::KIND_UNSUPPORTED,
                format!("openstack: this driver does not build {kind:?}"),
            ));
        }
        let Some(spec) = request.spec.as_ref().and_then(|s| s.spec.as_ref()) else {
            return Err(invalid("spec", "missing"));
        };
        let inner = &self.inner;
        let project = inner.project(&request.tenant)?;
        let (prior, deps) = {
            let table = inner.table.lock().await;
            if let Some(held) = table.get(kind, &request.id) {
                if held.request.tenant != request.tenant {
                    return Err(invalid(
                        "tenant",
                        format!(
                            "{} belongs to tenant {:?}; a resource cannot move to another tenant's project",
                            request.id, held.request.tenant
                        ),
                    ));
                }
                if held.project != project.key {
                    return Err(status_with(
                        Code::FailedPrecondition,
                        "PROJECT_CHANGED",
                        format!(
                            "openstack: {} was made in project {:?}, and tenant {:?} now maps to {:?}: \
                             resources are not moved between projects; restore the mapping, or \
                             delete it and apply it again",
                            request.id,
                            project_label(&held.project),
                            request.tenant,
                            project_label(project.key)
                        ),
                        [("project".to_owned(), held.project.clone())],
                    ));
                }
            }
            let deps = table.resolve(kind, &request.id, &request.tenant, spec)?;
            (table.get(kind, &request.id).map(|e| e.os.clone()), deps)
        };
        let p = &project;
        let built = match spec {
            v1::resource_spec::Spec::Vpc(s) => network::vpc(p, request, s, prior).await?,
            v1::resource_spec::Spec::Subnet(s) => {
                network::subnet(p, request, s, prior, &deps).await?
            }
            v1::resource_spec::Spec::SecurityGroup(s) => {
                network::security_group(p, request, s, prior, &deps).await?
            }
            v1::resource_spec::Spec::Eip(s) => network::eip(p, request, s, prior, &deps).await?,
            v1::resource_spec::Spec::Vm(s) => compute::vm(p, request, s, prior, &deps).await?,
            v1::resource_spec::Spec::Volume(s) => volumes::volume(p, request, s, &deps).await?,
            v1::resource_spec::Spec::LoadBalancer(s) => {
                balancers::load_balancer(p, request, s, &deps).await?
            }
            _ => {
                return Err(status(
                    Code::Unimplemented,
                    reasons::KIND_UNSUPPORTED,
                    format!("openstack: this driver does not build {kind:?}"),
                ));
            }
        };
        let mut table = inner.table.lock().await;
        let created = table.get(kind, &request.id).is_none();
        let state = v1::ResourceState {
            kind: request.kind,
            id: request.id.clone(),
            generation: request.generation,
            observed_generation: if built.converged {
                request.generation
            } else {
                table
                    .get(kind, &request.id)
                    .map_or(0, |e| e.state.observed_generation)
            },
            phase: built.phase as i32,
            message: built.message.clone(),
            placement: request.placement.clone(),
            outputs: built.outputs.clone(),
            idempotency_key: request.idempotency_key.clone(),
            tenant: request.tenant.clone(),
            spec: request.spec.clone(),
            updated_unix_ms: now_ms(),
        };
        table.put(
            kind,
            Entry {
                request: request.clone(),
                state: state.clone(),
                os: built.os,
                project: project.key.to_owned(),
                deleting: false,
                resume: false,
            },
        )?;
        inner.events.resource(
            if created {
                v1::ChangeType::Created
            } else {
                v1::ChangeType::Updated
            },
            state.clone(),
        );
        Ok(state)
    }

    async fn get(&self, kind: K, id: &str) -> Result<Option<v1::ResourceState>, Status> {
        Ok(self
            .inner
            .table
            .lock()
            .await
            .get(kind, id)
            .map(|e| e.state.clone()))
    }

    async fn delete(&self, kind: K, id: &str) -> Result<Option<v1::ResourceState>, Status> {
        let inner = &self.inner;
        let key;
        let (os, request, p, prior) = {
            let mut table = inner.table.lock().await;
            let Some(entry) = table.get(kind, id) else {
                return Ok(None);
            };
            // A delete under way is not asked again — unless it was begun
            // before a restart: it may never have reached OpenStack.
            if entry.deleting && !entry.resume {
                return Ok(Some(entry.state.clone()));
            }
            let resumed = entry.deleting;
            let (os, request) = (entry.os.clone(), entry.request.clone());
            key = entry.project.clone();
            // Its project's session first: nothing is marked for a resource
            // the driver cannot reach.
            let p = inner.project_by_key(&key)?;
            let prior = if resumed {
                if let Some(e) = table.get_mut(kind, id) {
                    e.resume = false;
                }
                None
            } else {
                table.refuse_delete(kind, id)?;
                // Deleting from now on: nothing may name it any more, and a
                // restart carries the deletion on.
                let prior = table.begin_delete(kind, id)?;
                if let Some(e) = table.get(kind, id) {
                    inner
                        .events
                        .resource(v1::ChangeType::Updated, e.state.clone());
                }
                Some(prior)
            };
            (os, request, p, prior)
        };
        let done = match kind {
            K::Vm => compute::delete(&p, &os, id).await,
            K::Volume => volumes::delete_step(&p, &os.id).await,
            K::LoadBalancer => balancers::delete(&p, id, &os).await,
            _ => network::delete(&p, kind, &request, &os).await,
        };
        let mut table = inner.table.lock().await;
        match done {
            // Gone in OpenStack already: gone here too.
            Ok(true) => {
                let state = table.remove(kind, id).map(|mut e| {
                    e.state.phase = v1::Phase::Deleted as i32;
                    e.state.updated_unix_ms = now_ms();
                    e.state
                });
                if let Some(s) = &state {
                    inner.events.resource(v1::ChangeType::Deleted, s.clone());
                }
                Ok(state)
            }
            // Going: the observer reports DELETED when OpenStack has finished.
            Ok(false) => Ok(table.get(kind, id).map(|e| e.state.clone())),
            Err(e) => {
                match prior {
                    // Not deleting after all: back as it was, and a retry
                    // starts over.
                    Some(phase) => {
                        if let Some(entry) = table.undo_delete(kind, id, phase) {
                            inner
                                .events
                                .resource(v1::ChangeType::Updated, entry.state.clone());
                        }
                    }
                    // A resumed delete stays a delete: asked again next time.
                    None => {
                        if let Some(entry) = table.get_mut(kind, id) {
                            entry.resume = true;
                        }
                    }
                }
                Err(e)
            }
        }
    }

    async fn list(
        &self,
        kind: Option<K>,
        after: Option<(K, String)>,
        limit: usize,
    ) -> Result<Vec<v1::ResourceState>, Status> {
        Ok(self.inner.table.lock().await.list(kind, after, limit))
    }
}

/// What an Apply built: the OpenStack ids, the phase right after, and whether
/// that already is convergence (network objects are there at once; a server
/// boots later and the observer reports it).
pub(crate) struct Built {
    pub os: table::OsIds,
    pub phase: v1::Phase,
    pub converged: bool,
    pub message: String,
    pub outputs: std::collections::HashMap<String, String>,
}
