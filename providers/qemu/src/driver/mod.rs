//! The SDK [`Driver`] over real QEMU and real Linux networking: VPCs,
//! subnets, security groups and VMs (`GetInfo` declares exactly these; the
//! controller refuses orders needing more).
//!
//! - [`network`]: a VPC is a network namespace, a subnet a gateway in it, a
//!   security group nftables chains on its members' taps (`crate::net`,
//!   `crate::firewall`).
//! - [`waf`]: WAF policies, an nginx with ModSecurity and the OWASP CRS in
//!   front of each protected load balancer, declared only when those Debian
//!   packages are installed (`crate::waf`).
//! - [`compute`]: one QEMU process per VM, its NIC a tap in its subnet's VPC
//!   (its address by DHCP from the VPC's `dnsmasq`, `crate::dhcp`), its
//!   system disk a qcow2 throttled by its storage class.
//!
//! Every accepted request is kept in the state directory (`res/<kind>/<id>.pb`,
//! VMs in `vms/<id>/request.pb` beside their QEMU files) before anything is
//! built, so a restarted driver rebuilds what is missing — networks first,
//! then VMs (adopted if their QEMU still runs), then every VPC's firewall and
//! DHCP/DNS service (adopted if its `dnsmasq` still runs).
//!
//! The SDK has already checked generations and idempotency keys; what is here
//! is what only this driver knows: references that must resolve
//! (`DEPENDENCY_NOT_FOUND`), resources that may not go while named
//! (`RESOURCE_IN_USE`), memory and vCPUs of the host, addresses of a subnet.

mod compute;
mod edge;
mod metrics;
mod network;
mod storage;
mod volumes;
mod waf;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use prost::Message;
use tokio::sync::Mutex;
use yunshu_driver_sdk::{Driver, EventSink};
use yunshu_proto::errors::{reasons, status, status_with};
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1::{self, ResourceKind as K};

use crate::QemuError;
use crate::guest::GuestImage;
use crate::vm::Accel;

pub use compute::BOOT_TIMEOUT;

/// The inventory's names for this one host.
const ZONE: &str = "local";
const AREA: &str = "local-gov";
const POOL: &str = "local-x86_64";
const POOL_ARM64: &str = "local-arm64";
const POOL_C86: &str = "local-c86";

/// vCPUs per physical core the driver allows (SPEC: at most 4).
const VCPU_RATIO: u32 = 4;

/// The kinds this driver builds, in the order a restart rebuilds them.
const KINDS: [K; 10] = [
    K::Vpc,
    K::Subnet,
    K::SecurityGroup,
    K::Volume,
    K::Vm,
    K::LoadBalancer,
    K::Eip,
    K::Snapshot,
    K::BackupPolicy,
    // Declared only when its packages are installed (`info`).
    K::WafPolicy,
];

/// The network area public IPs and internet-facing balancers are placed in.
const INTERNET_AREA: &str = "local-internet";

/// What the driver is given.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    pub state_dir: PathBuf,
    pub image: GuestImage,
    pub accel: Accel,
    /// Memory kept for the host itself, never given to guests.
    pub reserved_memory_mib: u64,
    /// A second pool of arm64 guests (always TCG), carved out of this host.
    pub arm64: Option<Arm64Pool>,
    /// A pool of c86 (海光 Hygon) guests: x86_64 guests on QEMU's Hygon
    /// `Dhyana` CPU model, carved out of this host like the arm64 pool.
    pub c86: Option<C86Pool>,
}

/// The c86 pool: the cores and memory set aside for it (the x86_64 guest
/// image serves it: Hygon CPUs run x86_64 code).
#[derive(Debug, Clone)]
pub struct C86Pool {
    pub cores: u32,
    pub memory_mib: u64,
}

/// QEMU's model of the Hygon Dhyana CPU, what a c86 guest sees.
pub const C86_CPU_MODEL: &str = "Dhyana";

/// The arm64 pool (一云多芯 on one host): its guest image and the cores and
/// memory set aside for it. The x86_64 pool gets the rest, so the two pools
/// together never promise more than the host has.
#[derive(Debug, Clone)]
pub struct Arm64Pool {
    pub image: GuestImage,
    pub cores: u32,
    pub memory_mib: u64,
}

/// One resource: the request it was built from and what is observed.
pub(crate) struct Entry {
    request: v1::ApplyRequest,
    state: v1::ResourceState,
}

/// Resources by (kind number, id): the order `List` pages in.
type Resources = BTreeMap<(i32, String), Entry>;

struct Inner {
    config: QemuConfig,
    host: String,
    cores: u32,
    memory_mib: u64,
    resources: Mutex<Resources>,
    events: EventSink,
    /// The WAF packages, if installed (`waf::detect`).
    waf: Option<crate::waf::Packages>,
}

/// The QEMU driver.
#[derive(Clone)]
pub struct QemuDriver {
    inner: Arc<Inner>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The host's memory in MiB (`/proc/meminfo` MemTotal).
pub fn host_memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

/// The host CPU's clock in MHz (`/proc/cpuinfo`, the highest listed), 0 if
/// the kernel does not say. Guests run on it (under KVM) or on QEMU's
/// translation of it (TCG).
fn host_clock_mhz() -> u32 {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
        .fold(0.0_f64, f64::max) as u32
}

fn spec_of(request: &v1::ApplyRequest) -> Option<&v1::resource_spec::Spec> {
    request.spec.as_ref()?.spec.as_ref()
}

fn internal(e: QemuError) -> Status {
    status(Code::Unavailable, "QEMU_ERROR", e.to_string())
}

fn invalid(message: impl Into<String>) -> Status {
    status(Code::InvalidArgument, reasons::INVALID_SPEC, message)
}

fn missing(kind: &str, id: &str) -> Status {
    status_with(
        Code::FailedPrecondition,
        reasons::DEPENDENCY_NOT_FOUND,
        format!("{kind} {id} does not exist on this driver"),
        [
            ("id".to_owned(), id.to_owned()),
            ("kind".to_owned(), kind.to_owned()),
        ],
    )
}

/// A resource that is named: `by` holds (kind label, id) of who names it.
fn in_use(id: &str, by: &[(String, String)]) -> Status {
    let names: Vec<String> = by.iter().map(|(k, i)| format!("{k} {i}")).collect();
    let (first_kind, first) = by.first().cloned().unwrap_or_default();
    status_with(
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
    )
}

/// Ids become file and directory names: nothing that could climb out.
fn check_id(id: &str) -> Result<(), Status> {
    if id
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

/// `vm`, `security_group` …: the proto name without its prefix.
fn kind_label(kind: i32) -> String {
    K::try_from(kind)
        .unwrap_or(K::Unspecified)
        .as_str_name()
        .trim_start_matches("RESOURCE_KIND_")
        .to_ascii_lowercase()
}

fn not_found_ok(e: std::io::Error) -> Result<(), std::io::Error> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

impl QemuDriver {
    /// Opens the state directory and brings back everything in it: networks,
    /// then VMs (adopted if their QEMU runs, started again if not), then the
    /// firewalls and every VPC's DHCP/DNS service (adopted if it runs).
    pub async fn open(config: QemuConfig, events: EventSink) -> Result<QemuDriver, QemuError> {
        for dir in ["vms", "res", "lbs", "volumes", "snapshots", "backups"] {
            let dir = config.state_dir.join(dir);
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(QemuError::io(format!("state dir {}", dir.display())))?;
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        // The arm64 and c86 pools are carved out of the host's cores; the
        // x86_64 pool keeps at least one, so no core is promised twice.
        let carved = config.arm64.as_ref().map_or(0, |a| a.cores.max(1))
            + config.c86.as_ref().map_or(0, |c| c.cores.max(1));
        if carved > 0 && carved >= cores {
            return Err(QemuError::Config(format!(
                "the arm64 and c86 pools ask for {carved} of this host's {cores} cores; the x86_64 pool needs one"
            )));
        }
        let driver = QemuDriver {
            inner: Arc::new(Inner {
                config,
                host,
                cores,
                memory_mib: host_memory_mib(),
                resources: Mutex::new(BTreeMap::new()),
                events,
                waf: waf::detect(),
            }),
        };
        let mut resources = driver.inner.resources.lock().await;
        for kind in KINDS {
            for request in driver.saved(kind).await? {
                let built = match kind {
                    K::Vm => Ok(driver.recover_vm(&resources, &request).await?),
                    K::LoadBalancer | K::Eip => driver.build_edge(&resources, &request).await,
                    K::WafPolicy => Ok(driver.waf_state(&resources, &request)),
                    // Their disks are in place and plugged where they were.
                    K::Volume | K::Snapshot | K::BackupPolicy => {
                        Ok(driver.state_of(&request, v1::Phase::Running, ""))
                    }
                    _ => driver.build_network(&resources, &request).await,
                };
                let state = built.map_err(|e| QemuError::Guest(e.message().to_owned()))?;
                resources.insert((kind as i32, request.id.clone()), Entry { request, state });
            }
        }
        driver.sync_firewalls(&resources).await?;
        driver.sync_dhcp(&resources).await?;
        driver.sync_edges(&resources).await?;
        drop(resources);
        driver.schedule_backups();
        Ok(driver)
    }

    /// The requests of `kind` kept in the state directory.
    async fn saved(&self, kind: K) -> Result<Vec<v1::ApplyRequest>, QemuError> {
        let (dir, in_subdir) = match kind {
            K::Vm => (self.inner.config.state_dir.join("vms"), true),
            _ => (self.kind_dir(kind), false),
        };
        let mut out = Vec::new();
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(QemuError::io("read the state dir")(e)),
        };
        while let Some(e) = entries
            .next_entry()
            .await
            .map_err(QemuError::io("read the state dir"))?
        {
            let path = if in_subdir {
                e.path().join("request.pb")
            } else {
                e.path()
            };
            let Ok(bytes) = tokio::fs::read(&path).await else {
                continue;
            };
            match v1::ApplyRequest::decode(bytes.as_slice()) {
                Ok(request) => out.push(request),
                Err(_) => tracing::warn!(file = %path.display(), "unreadable request: left alone"),
            }
        }
        Ok(out)
    }

    fn kind_dir(&self, kind: K) -> PathBuf {
        self.inner
            .config
            .state_dir
            .join("res")
            .join(kind_label(kind as i32))
    }

    fn vm_dir(&self, id: &str) -> PathBuf {
        self.inner.config.state_dir.join("vms").join(id)
    }

    /// Keeps the accepted request (before anything is built: a crash in
    /// between is repaired by `open`).
    async fn save(&self, request: &v1::ApplyRequest) -> Result<(), Status> {
        let kind = K::try_from(request.kind).unwrap_or(K::Unspecified);
        let (dir, file) = match kind {
            K::Vm => {
                let dir = self.vm_dir(&request.id);
                (dir.clone(), dir.join("request.pb"))
            }
            _ => {
                let dir = self.kind_dir(kind);
                (dir.clone(), dir.join(format!("{}.pb", request.id)))
            }
        };
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| internal(QemuError::io("state dir")(e)))?;
        tokio::fs::write(&file, request.encode_to_vec())
            .await
            .map_err(|e| internal(QemuError::io(format!("write {}", file.display()))(e)))
    }

    async fn forget(&self, kind: K, id: &str) -> Result<(), Status> {
        let removed = match kind {
            K::Vm => tokio::fs::remove_dir_all(self.vm_dir(id)).await,
            _ => tokio::fs::remove_file(self.kind_dir(kind).join(format!("{id}.pb"))).await,
        };
        removed
            .or_else(not_found_ok)
            .map_err(|e| internal(QemuError::io(format!("forget {id}"))(e)))
    }

    fn state_of(
        &self,
        request: &v1::ApplyRequest,
        phase: v1::Phase,
        message: &str,
    ) -> v1::ResourceState {
        let mut outputs = std::collections::HashMap::new();
        if let Some(v1::resource_spec::Spec::Vm(vm)) = spec_of(request) {
            // arm64 guests are always translated (TCG) on this host.
            let accel = if vm.arch == v1::Architecture::Arm64 as i32 {
                crate::vm::Accel::Tcg
            } else {
                self.inner.config.accel
            };
            outputs.insert("accelerator".to_owned(), accel.as_str().to_owned());
        }
        let running = phase == v1::Phase::Running;
        let vm_pool = match spec_of(request) {
            Some(v1::resource_spec::Spec::Vm(vm)) => {
                self.pool_of(v1::Architecture::try_from(vm.arch).unwrap_or_default())
            }
            _ => None,
        };
        v1::ResourceState {
            kind: request.kind,
            id: request.id.clone(),
            generation: request.generation,
            observed_generation: if running { request.generation } else { 0 },
            phase: phase as i32,
            message: message.to_owned(),
            placement: Some(v1::Placement {
                zone: ZONE.to_owned(),
                network_area: AREA.to_owned(),
                pool: vm_pool.as_ref().map(|p| p.0.to_owned()).unwrap_or_default(),
                host: vm_pool.map(|p| p.1).unwrap_or_default(),
            }),
            outputs,
            idempotency_key: request.idempotency_key.clone(),
            tenant: request.tenant.clone(),
            spec: request.spec.clone(),
            updated_unix_ms: now_ms(),
        }
    }

    /// (cores, memory MiB) the pool of `arch` may give guests.
    fn budget(&self, arch: v1::Architecture) -> Option<(u32, u64)> {
        let i = &self.inner;
        let usable = i.memory_mib.saturating_sub(i.config.reserved_memory_mib);
        let (arm_cores, arm_memory) = i
            .config
            .arm64
            .as_ref()
            .map_or((0, 0), |a| (a.cores, a.memory_mib));
        let (c86_cores, c86_memory) = i
            .config
            .c86
            .as_ref()
            .map_or((0, 0), |c| (c.cores, c.memory_mib));
        match arch {
            v1::Architecture::X8664 => Some((
                i.cores.saturating_sub(arm_cores + c86_cores).max(1),
                usable.saturating_sub(arm_memory + c86_memory),
            )),
            v1::Architecture::Arm64 if i.config.arm64.is_some() => {
                Some((arm_cores.max(1), arm_memory.min(usable)))
            }
            v1::Architecture::C86 if i.config.c86.is_some() => {
                Some((c86_cores.max(1), c86_memory.min(usable)))
            }
            _ => None,
        }
    }

    /// The pool, host id and image of `arch`.
    fn pool_of(&self, arch: v1::Architecture) -> Option<(&'static str, String, GuestImage)> {
        match arch {
            v1::Architecture::X8664 => Some((
                POOL,
                self.inner.host.clone(),
                self.inner.config.image.clone(),
            )),
            v1::Architecture::Arm64 => self.inner.config.arm64.as_ref().map(|a| {
                (
                    POOL_ARM64,
                    format!("{}-arm64", self.inner.host),
                    a.image.clone(),
                )
            }),
            v1::Architecture::C86 => self.inner.config.c86.as_ref().map(|_| {
                (
                    POOL_C86,
                    format!("{}-c86", self.inner.host),
                    self.inner.config.image.clone(),
                )
            }),
            _ => None,
        }
    }

    fn pools(&self) -> Vec<v1::Pool> {
        let mut pools = vec![v1::Pool {
            id: POOL.to_owned(),
            zone: ZONE.to_owned(),
            network_area: AREA.to_owned(),
            arch: v1::Architecture::X8664 as i32,
            cpu_model: format!("QEMU ({})", self.inner.config.accel.as_str()),
            clock_mhz: host_clock_mhz(),
            vcpu_ratio: VCPU_RATIO,
        }];
        if self.inner.config.arm64.is_some() {
            pools.push(v1::Pool {
                id: POOL_ARM64.to_owned(),
                zone: ZONE.to_owned(),
                network_area: AREA.to_owned(),
                arch: v1::Architecture::Arm64 as i32,
                cpu_model: "QEMU Cortex-A57 (tcg)".to_owned(),
                clock_mhz: host_clock_mhz(),
                vcpu_ratio: VCPU_RATIO,
            });
        }
        if self.inner.config.c86.is_some() {
            pools.push(v1::Pool {
                id: POOL_C86.to_owned(),
                zone: ZONE.to_owned(),
                network_area: AREA.to_owned(),
                arch: v1::Architecture::C86 as i32,
                cpu_model: format!(
                    "QEMU Hygon {C86_CPU_MODEL} ({})",
                    self.inner.config.accel.as_str()
                ),
                clock_mhz: host_clock_mhz(),
                vcpu_ratio: VCPU_RATIO,
            });
        }
        pools
    }

    fn hosts(&self) -> Vec<v1::Host> {
        let i = &self.inner;
        [
            v1::Architecture::X8664,
            v1::Architecture::Arm64,
            v1::Architecture::C86,
        ]
        .into_iter()
        .filter_map(|arch| {
            let (pool, host, _) = self.pool_of(arch)?;
            let (cores, memory) = self.budget(arch)?;
            // The reserve is kept out of the x86_64 host's memory; the
            // arm64 and c86 hosts' shares are already net of it.
            let (memory_mib, reserved) = if arch == v1::Architecture::X8664 {
                (
                    memory + i.config.reserved_memory_mib,
                    i.config.reserved_memory_mib,
                )
            } else {
                (memory, 0)
            };
            Some(v1::Host {
                id: host,
                pool: pool.to_owned(),
                cores,
                memory_mib,
                reserved_memory_mib: reserved,
                state: v1::HostState::Up as i32,
                model: String::new(),
            })
        })
        .collect()
    }

    /// Who names `id` (of `kind`) among the resources: (kind label, id) each.
    fn users_of(resources: &Resources, kind: K, id: &str) -> Vec<(String, String)> {
        use v1::resource_spec::Spec;
        resources
            .values()
            .filter(|e| match spec_of(&e.request) {
                Some(Spec::Subnet(s)) => kind == K::Vpc && s.vpc == id,
                Some(Spec::Vm(vm)) => match kind {
                    K::Subnet => vm.nics.iter().any(|n| n.subnet == id),
                    K::SecurityGroup => vm.security_groups.iter().any(|g| g == id),
                    _ => false,
                },
                Some(Spec::SecurityGroup(sg)) => {
                    kind == K::SecurityGroup
                        && e.request.id != id
                        && sg.rules.iter().any(|r| r.remote_group == id)
                }
                Some(Spec::LoadBalancer(lb)) => match kind {
                    K::Subnet => lb.subnet == id,
                    K::Vm => lb
                        .listeners
                        .iter()
                        .any(|l| l.members.iter().any(|m| m.target == id)),
                    _ => false,
                },
                Some(Spec::Eip(eip)) => {
                    matches!(kind, K::Vm | K::LoadBalancer) && eip.bind_to == id
                }
                Some(Spec::Volume(v)) => kind == K::Vm && v.attach_to == id,
                Some(Spec::Snapshot(snap)) => {
                    matches!(kind, K::Vm | K::Volume) && snap.source == id
                }
                Some(Spec::BackupPolicy(b)) => matches!(kind, K::Vm | K::Volume) && b.target == id,
                Some(Spec::WafPolicy(w)) => {
                    matches!(kind, K::Eip | K::LoadBalancer) && w.targets.iter().any(|t| t == id)
                }
                _ => false,
            })
            .map(|e| (kind_label(e.request.kind), e.request.id.clone()))
            .collect()
    }

    /// Announces an applied resource on the watch stream and returns it.
    fn emit(&self, existed: bool, state: v1::ResourceState) -> Result<v1::ResourceState, Status> {
        let change = if existed {
            v1::ChangeType::Updated
        } else {
            v1::ChangeType::Created
        };
        self.inner.events.resource(change, state.clone());
        Ok(state)
    }

    fn get_entry<'a>(resources: &'a Resources, kind: K, id: &str) -> Option<&'a Entry> {
        resources.get(&(kind as i32, id.to_owned()))
    }
}

#[async_trait]
impl Driver for QemuDriver {
    fn info(&self) -> v1::DriverInfo {
        v1::DriverInfo {
            name: "yunshu-qemu".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kinds: KINDS
                .iter()
                .filter(|k| **k != K::WafPolicy || self.inner.waf.is_some())
                .map(|k| *k as i32)
                .collect(),
            architectures: [
                v1::Architecture::X8664,
                v1::Architecture::Arm64,
                v1::Architecture::C86,
            ]
            .into_iter()
            .filter(|a| self.pool_of(*a).is_some())
            .map(|a| a as i32)
            .collect(),
            simulator: false,
            ..Default::default()
        }
    }

    async fn inventory(&self) -> Result<v1::Inventory, Status> {
        let i = &self.inner;
        Ok(v1::Inventory {
            zones: vec![v1::Zone {
                id: ZONE.to_owned(),
                name: "本机".to_owned(),
            }],
            network_areas: vec![
                v1::NetworkArea {
                    id: AREA.to_owned(),
                    zone: ZONE.to_owned(),
                    name: "本机政务外网区".to_owned(),
                    kind: v1::NetworkAreaKind::GovExtranet as i32,
                },
                v1::NetworkArea {
                    id: INTERNET_AREA.to_owned(),
                    zone: ZONE.to_owned(),
                    name: "本机互联网区".to_owned(),
                    kind: v1::NetworkAreaKind::Internet as i32,
                },
            ],
            // Public IPs are routed to any VPC; each area gets its own half
            // of the pool and its own bandwidth, so the controller can place
            // a public IP beside what it binds to without counting twice.
            ip_pools: [AREA, INTERNET_AREA]
                .into_iter()
                .map(|area| {
                    let (cidr, total) = edge::public_range(area);
                    v1::IpPool {
                        id: format!("{area}-public"),
                        zone: ZONE.to_owned(),
                        network_area: area.to_owned(),
                        cidrs: vec![cidr],
                        total,
                    }
                })
                .collect(),
            bandwidth: [AREA, INTERNET_AREA]
                .into_iter()
                .map(|area| v1::Bandwidth {
                    zone: ZONE.to_owned(),
                    network_area: area.to_owned(),
                    total_mbps: 1_000,
                })
                .collect(),
            pools: self.pools(),
            hosts: self.hosts(),
            storage_classes: storage::classes(&i.config.state_dir),
            revision: 1,
        })
    }

    async fn apply(&self, request: &v1::ApplyRequest) -> Result<v1::ResourceState, Status> {
        use v1::resource_spec::Spec;
        check_id(&request.id)?;
        let mut resources = self.inner.resources.lock().await;
        let key = (request.kind, request.id.clone());
        let existed = resources.contains_key(&key);
        let state = match spec_of(request) {
            Some(Spec::Vm(_)) => {
                let state = self.apply_vm(&mut resources, request).await?;
                // Its address may be what a public IP bound to it waits for;
                // other VMs leave the NAT tables as they are.
                if !Self::users_of(&resources, K::Vm, &request.id)
                    .iter()
                    .any(|(kind, _)| kind == "eip")
                {
                    return self.emit(existed, state);
                }
                self.sync_edges(&resources).await.map_err(internal)?;
                state
            }
            Some(Spec::Vpc(_) | Spec::Subnet(_) | Spec::SecurityGroup(_)) => {
                self.check_network(&resources, request)?;
                self.save(request).await?;
                let state = self.build_network(&resources, request).await?;
                resources.insert(
                    key,
                    Entry {
                        request: request.clone(),
                        state: state.clone(),
                    },
                );
                if matches!(spec_of(request), Some(Spec::SecurityGroup(_))) {
                    self.sync_firewalls(&resources).await.map_err(internal)?;
                }
                state
            }
            Some(Spec::LoadBalancer(_) | Spec::Eip(_)) => {
                self.check_edge(&resources, request)?;
                self.save(request).await?;
                let state = self.build_edge(&resources, request).await?;
                resources.insert(
                    key,
                    Entry {
                        request: request.clone(),
                        state: state.clone(),
                    },
                );
                self.sync_edges(&resources).await.map_err(internal)?;
                state
            }
            Some(Spec::WafPolicy(_)) => self.apply_waf(&mut resources, request).await?,
            Some(Spec::Volume(_) | Spec::Snapshot(_) | Spec::BackupPolicy(_)) => {
                self.check_storage(&resources, request)?;
                self.save(request).await?;
                let state = self.build_storage(&resources, request).await?;
                resources.insert(
                    key,
                    Entry {
                        request: request.clone(),
                        state: state.clone(),
                    },
                );
                state
            }
            _ => {
                return Err(status(
                    Code::InvalidArgument,
                    reasons::KIND_UNSUPPORTED,
                    "this QEMU driver builds VPCs, subnets, security groups, VMs, \
                     volumes, snapshots, backup policies, load balancers and public IPs",
                ));
            }
        };
        self.emit(existed, state)
    }

    async fn get(&self, kind: K, id: &str) -> Result<Option<v1::ResourceState>, Status> {
        let resources = self.inner.resources.lock().await;
        Ok(Self::get_entry(&resources, kind, id).map(|e| e.state.clone()))
    }

    async fn delete(&self, kind: K, id: &str) -> Result<Option<v1::ResourceState>, Status> {
        let mut resources = self.inner.resources.lock().await;
        let Some(entry) = Self::get_entry(&resources, kind, id) else {
            return Ok(None);
        };
        let users = Self::users_of(&resources, kind, id);
        if !users.is_empty() {
            return Err(in_use(id, &users));
        }
        let request = entry.request.clone();
        match kind {
            K::Vm => self.destroy_vm(&resources, &request).await?,
            K::LoadBalancer | K::Eip => {
                let outputs = entry.state.outputs.clone();
                self.destroy_edge(&resources, &request, &outputs).await?
            }
            K::Volume | K::Snapshot | K::BackupPolicy => self.destroy_storage(&request).await?,
            // Its nginx goes in the `sync_edges` after the removal.
            K::WafPolicy => {}
            _ => self.destroy_network(&resources, &request).await?,
        }
        self.forget(kind, id).await?;
        let Some(entry) = resources.remove(&(kind as i32, id.to_owned())) else {
            return Ok(None);
        };
        if matches!(kind, K::Vm | K::SecurityGroup) {
            self.sync_firewalls(&resources).await.map_err(internal)?;
        }
        if matches!(kind, K::Vm | K::Subnet | K::Vpc) {
            self.sync_dhcp(&resources).await.map_err(internal)?;
        }
        if matches!(kind, K::Eip | K::WafPolicy) {
            self.sync_edges(&resources).await.map_err(internal)?;
        }
        let mut state = entry.state;
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
            .map(|(_, e)| e.state.clone())
            .collect())
    }

    async fn metrics(&self, ids: &[String]) -> Result<Vec<v1::VmMetrics>, Status> {
        let targets = {
            let resources = self.inner.resources.lock().await;
            self.metric_targets(&resources, ids)
        };
        Ok(Self::sample(targets).await)
    }
}
