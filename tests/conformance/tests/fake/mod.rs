//! A tiny in-memory driver built on the SDK, to run the kit against in tests:
//! VMs, VPCs and subnets, RUNNING the moment they are applied, with the two
//! references between them enforced (subnet.vpc, vm.nics[].subnet). [`Faults`]
//! break it on purpose, to prove the kit can fail.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use yunshu_driver_sdk::tonic::transport::{Channel, Endpoint, Server};
use yunshu_driver_sdk::tonic::{Code, Status};
use yunshu_driver_sdk::v1::{self, ResourceKind, driver_client::DriverClient, resource_spec::Spec};
use yunshu_driver_sdk::{Driver, DriverService, EventLog, EventSink, reasons, status, status_with};

/// Ways to break the fake.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Delete of a missing resource errors (without a reason, too).
    pub delete_missing_errors: bool,
    /// List loses the first item after every page boundary.
    pub list_drops_after_token: bool,
    /// A VM with 0 vCPU is accepted.
    pub accept_zero_vcpu: bool,
    /// References are not checked: a subnet of a missing VPC is accepted, a VPC
    /// with subnets can be deleted.
    pub ignore_references: bool,
    /// A VM asked to be powered off (`stopped`) keeps running.
    pub ignore_power: bool,
}

type Key = (i32, String);

pub struct Fake {
    resources: Mutex<BTreeMap<Key, v1::ResourceState>>,
    sink: EventSink,
    faults: Faults,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn invalid(message: &str) -> Status {
    status(Code::InvalidArgument, reasons::INVALID_SPEC, message)
}

fn valid_cidr(cidr: &str) -> bool {
    cidr.split_once('/').is_some_and(|(ip, len)| {
        ip.parse::<Ipv4Addr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 32)
    })
}

impl Fake {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, v1::ResourceState>> {
        self.resources.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// DEPENDENCY_NOT_FOUND unless (kind, id) is held.
    fn require(&self, kind: ResourceKind, id: &str) -> Result<(), Status> {
        if self.faults.ignore_references || self.lock().contains_key(&(kind as i32, id.to_owned()))
        {
            return Ok(());
        }
        Err(status(
            Code::FailedPrecondition,
            reasons::DEPENDENCY_NOT_FOUND,
            format!("no {kind:?} {id:?}"),
        ))
    }
}

/// The (kind, id) pairs `state`'s spec names.
fn names(state: &v1::ResourceState) -> Vec<(i32, String)> {
    match state.spec.as_ref().and_then(|s| s.spec.as_ref()) {
        Some(Spec::Subnet(s)) => vec![(ResourceKind::Vpc as i32, s.vpc.clone())],
        Some(Spec::Vm(vm)) => vm
            .nics
            .iter()
            .map(|n| (ResourceKind::Subnet as i32, n.subnet.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

#[async_trait]
impl Driver for Fake {
    fn info(&self) -> v1::DriverInfo {
        v1::DriverInfo {
            name: "fake".into(),
            version: "0.0.1".into(),
            kinds: vec![
                ResourceKind::Vm as i32,
                ResourceKind::Vpc as i32,
                ResourceKind::Subnet as i32,
            ],
            architectures: vec![v1::Architecture::X8664 as i32],
            simulator: true,
            ..Default::default()
        }
    }

    async fn inventory(&self) -> Result<v1::Inventory, Status> {
        Ok(v1::Inventory {
            zones: vec![v1::Zone {
                id: "z1".into(),
                name: "城市副中心".into(),
            }],
            network_areas: vec![v1::NetworkArea {
                id: "z1-gov".into(),
                zone: "z1".into(),
                name: "政务外网区".into(),
                kind: v1::NetworkAreaKind::GovExtranet as i32,
            }],
            pools: vec![v1::Pool {
                id: "z1-x86".into(),
                zone: "z1".into(),
                network_area: "z1-gov".into(),
                arch: v1::Architecture::X8664 as i32,
                cpu_model: "Xeon".into(),
                clock_mhz: 2600,
                vcpu_ratio: 4,
            }],
            hosts: vec![v1::Host {
                id: "h1".into(),
                pool: "z1-x86".into(),
                cores: 32,
                memory_mib: 128 * 1024,
                reserved_memory_mib: 4 * 1024,
                state: v1::HostState::Up as i32,
                model: String::new(),
            }],
            storage_classes: vec![v1::StorageClass {
                id: "ssd".into(),
                zone: "z1".into(),
                name: "高性能".into(),
                capacity_gib: 10_000,
                iops_class: v1::IopsClass::High as i32,
                iops_per_disk: 10_000,
            }],
            revision: 1,
            ..Default::default()
        })
    }

    async fn apply(&self, request: &v1::ApplyRequest) -> Result<v1::ResourceState, Status> {
        match request.spec.as_ref().and_then(|s| s.spec.as_ref()) {
            Some(Spec::Vm(vm)) => {
                if vm.vcpu == 0 && !self.faults.accept_zero_vcpu {
                    return Err(invalid("vcpu must be at least 1"));
                }
                if vm.memory_mib == 0 {
                    return Err(invalid("memory must be set"));
                }
                if request.placement.as_ref().map(|p| p.host.as_str()) != Some("h1") {
                    return Err(status(
                        Code::FailedPrecondition,
                        reasons::PLACEMENT_INVALID,
                        "unknown host",
                    ));
                }
                for nic in &vm.nics {
                    self.require(ResourceKind::Subnet, &nic.subnet)?;
                }
            }
            Some(Spec::Subnet(s)) if s.vpc.is_empty() || !valid_cidr(&s.cidr) => {
                return Err(invalid("a subnet needs a vpc and a CIDR"));
            }
            Some(Spec::Subnet(s)) => self.require(ResourceKind::Vpc, &s.vpc)?,
            Some(Spec::Vpc(vpc)) if !valid_cidr(&vpc.cidr) => {
                return Err(invalid("cidr is not an IPv4 CIDR"));
            }
            Some(Spec::Vpc(_)) => {}
            _ => {
                return Err(status(
                    Code::InvalidArgument,
                    reasons::KIND_UNSUPPORTED,
                    "fake knows vm, vpc and subnet",
                ));
            }
        }
        let powered_off = matches!(
            request.spec.as_ref().and_then(|s| s.spec.as_ref()),
            Some(Spec::Vm(vm)) if vm.stopped
        ) && !self.faults.ignore_power;
        let state = v1::ResourceState {
            kind: request.kind,
            id: request.id.clone(),
            generation: request.generation,
            observed_generation: request.generation,
            phase: if powered_off {
                v1::Phase::Stopped as i32
            } else {
                v1::Phase::Running as i32
            },
            message: String::new(),
            placement: request.placement.clone(),
            outputs: Default::default(),
            idempotency_key: request.idempotency_key.clone(),
            tenant: request.tenant.clone(),
            spec: request.spec.clone(),
            updated_unix_ms: now_ms(),
        };
        let previous = self
            .lock()
            .insert((request.kind, request.id.clone()), state.clone());
        let change = if previous.is_some() {
            v1::ChangeType::Updated
        } else {
            v1::ChangeType::Created
        };
        self.sink.resource(change, state.clone());
        Ok(state)
    }

    async fn get(&self, kind: ResourceKind, id: &str) -> Result<Option<v1::ResourceState>, Status> {
        Ok(self.lock().get(&(kind as i32, id.to_owned())).cloned())
    }

    async fn delete(
        &self,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<v1::ResourceState>, Status> {
        let key = (kind as i32, id.to_owned());
        if !self.faults.ignore_references {
            let held = self.lock();
            if let Some(by) = held.values().find(|s| names(s).contains(&key)) {
                return Err(status_with(
                    Code::FailedPrecondition,
                    reasons::RESOURCE_IN_USE,
                    format!("{kind:?} {id} is named by {}", by.id),
                    [("used_by".to_owned(), by.id.clone())],
                ));
            }
        }
        let removed = self.lock().remove(&key);
        match removed {
            Some(mut state) => {
                state.phase = v1::Phase::Deleted as i32;
                state.updated_unix_ms = now_ms();
                self.sink.resource(v1::ChangeType::Deleted, state.clone());
                Ok(Some(state))
            }
            None if self.faults.delete_missing_errors => Err(Status::internal("no such resource")),
            None => Ok(None),
        }
    }

    async fn list(
        &self,
        kind: Option<ResourceKind>,
        after: Option<(ResourceKind, String)>,
        limit: usize,
    ) -> Result<Vec<v1::ResourceState>, Status> {
        let skip = usize::from(self.faults.list_drops_after_token && after.is_some());
        let after = after.map(|(k, id)| (k as i32, id));
        Ok(self
            .lock()
            .iter()
            .filter(|(key, _)| after.as_ref().is_none_or(|a| *key > a))
            .filter(|(key, _)| kind.is_none_or(|k| key.0 == k as i32))
            .skip(skip)
            .take(limit)
            .map(|(_, s)| s.clone())
            .collect())
    }
}

/// Serves a fake with `faults` in plaintext on 127.0.0.1; returns its address.
pub async fn serve(faults: Faults) -> std::net::SocketAddr {
    let log = EventLog::new(10_000);
    let fake = Fake {
        resources: Mutex::new(BTreeMap::new()),
        sink: log.sink(),
        faults,
    };
    let svc = DriverService::new(Arc::new(fake), log, "fake").into_server();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    addr
}

/// A client of a freshly served fake.
pub async fn client(faults: Faults) -> DriverClient<Channel> {
    let addr = serve(faults).await;
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    DriverClient::new(channel)
}
