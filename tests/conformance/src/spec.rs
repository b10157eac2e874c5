//! Valid (and deliberately invalid) resources for whatever driver is under test.
//!
//! The kit knows nothing about the provider in advance, so everything it creates is
//! derived from the driver's own `GetInventory`: a host that is UP, its pool's
//! architecture, a storage class of the same zone, another UP host (with its
//! model) for a bare-metal server, a network area with public IPs for EIPs. It
//! cannot see allocation either, so shapes are kept small (1 vCPU, 512 MiB by
//! default) to fit on any UP host, and the bare-metal host is never the VMs'.
//!
//! Specs of every kind can name other resources ([`Links`]): the lifecycle and
//! dependency checks build what a resource names first and pass the ids in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use yunshu_proto::v1::{self, ResourceKind, resource_spec::Spec};

use crate::Options;
use crate::graph::Slot;

/// Why the kit could not prepare resources for the driver.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SetupError {
    #[error("the driver's inventory could not be read: {0}")]
    Inventory(String),
    #[error("none of the requested kinds ({0}) is among the kinds the driver declares")]
    NoKinds(String),
    #[error("the kit has no spec for kind {0:?} (it knows vm, vpc, volume, security_group)")]
    UnsupportedKind(ResourceKind),
    #[error(
        "no VM placement: the inventory has no UP host with {vcpu} vCPU and {memory_mib} MiB free in a pool whose zone has a storage class"
    )]
    NoHost { vcpu: u32, memory_mib: u64 },
    #[error("no bare-metal placement: the inventory has no UP host other than the one VMs go on")]
    NoBareMetalHost,
    #[error("the inventory has no network area to place {0:?} in")]
    NoNetworkArea(ResourceKind),
    #[error("the inventory has no storage class for {0:?}")]
    NoStorageClass(ResourceKind),
    #[error("the inventory has no public IP pool with addresses for an EIP")]
    NoIpPool,
    #[error("GetInfo did not answer, so the kit cannot tell which kinds the driver declares")]
    NoDeclaredKinds,
}

/// Where VMs or a bare-metal server go: a host that was UP (with room for the
/// small shape, for VMs).
#[derive(Clone, Debug)]
struct ServerTarget {
    placement: v1::Placement,
    arch: v1::Architecture,
    /// `Host.model` of the host, asked for by bare-metal specs (may be empty).
    model: String,
}

/// Ids a spec names, one per kind of field (see [`Slot`]); `None` leaves the
/// field empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Links {
    pub vpc: Option<String>,
    pub subnet: Option<String>,
    pub security_group: Option<String>,
    pub target: Option<String>,
}

impl Links {
    pub fn set(&mut self, slot: Slot, id: String) {
        match slot {
            Slot::Vpc => self.vpc = Some(id),
            Slot::Subnet => self.subnet = Some(id),
            Slot::SecurityGroup => self.security_group = Some(id),
            Slot::Target => self.target = Some(id),
        }
    }
}

/// Builds requests for the kinds under test, with ids under the run prefix.
#[derive(Debug)]
pub struct SpecFactory {
    prefix: String,
    tenant: String,
    kinds: Vec<ResourceKind>,
    /// What the driver's GetInfo declares; `None` when it did not answer.
    declared: Option<Vec<ResourceKind>>,
    vm: Option<ServerTarget>,
    bare_metal: Option<ServerTarget>,
    /// Zone and network area for kinds that are not placed on a host.
    network: Option<v1::Placement>,
    /// Zone and network area with public addresses, for EIPs.
    eip_network: Option<v1::Placement>,
    storage_class: Option<String>,
    image: String,
    vcpu: u32,
    memory_mib: u64,
    disk_gib: u64,
    counter: AtomicU64,
    /// A VPC keeps its CIDR across generations; distinct VPCs get distinct CIDRs
    /// so that a driver refusing overlaps within a tenant is not tripped up.
    cidrs: Mutex<HashMap<String, String>>,
}

/// Kinds the generic checks (idempotency, generations, list, watch …) can be
/// run on: their specs name nothing another resource must provide.
const KNOWN_KINDS: [ResourceKind; 4] = [
    ResourceKind::Vm,
    ResourceKind::Vpc,
    ResourceKind::Volume,
    ResourceKind::SecurityGroup,
];

impl SpecFactory {
    /// Picks placements for `kinds` from `inventory`; refuses kinds the kit has
    /// no dependency-free spec for, and kinds the inventory cannot place.
    pub fn from_inventory(
        inventory: &v1::Inventory,
        kinds: &[ResourceKind],
        options: &Options,
    ) -> Result<Self, SetupError> {
        let factory = Self::build(inventory, kinds, options);
        factory.check_kinds()?;
        Ok(factory)
    }

    /// Picks every placement the inventory offers, whatever the kinds; a kind
    /// that cannot be placed is refused when a request for it is built.
    pub(crate) fn build(
        inventory: &v1::Inventory,
        kinds: &[ResourceKind],
        options: &Options,
    ) -> Self {
        let vm = pick_host(inventory, options);
        // Keep everything of the run in the VM's zone and area when there is one, so
        // a provider that scopes networks per area sees a coherent set.
        let network = match &vm {
            Some(t) => Some(v1::Placement {
                zone: t.placement.zone.clone(),
                network_area: t.placement.network_area.clone(),
                ..Default::default()
            }),
            None => {
                let mut areas: Vec<_> = inventory.network_areas.iter().collect();
                areas.sort_by(|a, b| a.id.cmp(&b.id));
                areas.first().map(|a| v1::Placement {
                    zone: a.zone.clone(),
                    network_area: a.id.clone(),
                    ..Default::default()
                })
            }
        };
        let zone = network.as_ref().map(|p| p.zone.clone()).unwrap_or_default();
        let storage_class = best_storage_class(inventory, &zone);
        let bare_metal = pick_bare_metal_host(inventory, vm.as_ref(), network.as_ref());
        let eip_network = pick_eip_area(inventory, network.as_ref());
        Self {
            prefix: options.run_prefix.clone(),
            tenant: options.tenant.clone(),
            kinds: kinds.to_vec(),
            declared: None,
            vm,
            bare_metal,
            network,
            eip_network,
            storage_class,
            image: options.vm_image.clone(),
            vcpu: options.vm_vcpu,
            memory_mib: options.vm_memory_mib,
            disk_gib: options.disk_gib,
            counter: AtomicU64::new(0),
            cidrs: Mutex::new(HashMap::new()),
        }
    }

    /// The kinds the driver declares (GetInfo), for the checks that cover every
    /// kind and the references between them.
    pub fn with_declared(mut self, declared: &[ResourceKind]) -> Self {
        self.declared = Some(declared.to_vec());
        self
    }

    /// Whether the generic checks can run on `kinds`.
    pub(crate) fn check_kinds(&self) -> Result<(), SetupError> {
        if let Some(k) = self.kinds.iter().find(|k| !KNOWN_KINDS.contains(k)) {
            return Err(SetupError::UnsupportedKind(*k));
        }
        if self.kinds.is_empty() {
            return Err(SetupError::NoKinds(String::new()));
        }
        for kind in &self.kinds {
            self.can_place(*kind)?;
        }
        Ok(())
    }

    /// Whether a `kind` resource has somewhere to go.
    pub(crate) fn can_place(&self, kind: ResourceKind) -> Result<(), SetupError> {
        match kind {
            ResourceKind::Vm if self.vm.is_none() => Err(SetupError::NoHost {
                vcpu: self.vcpu,
                memory_mib: self.memory_mib,
            }),
            ResourceKind::Vm => Ok(()),
            ResourceKind::BareMetal if self.bare_metal.is_none() => {
                Err(SetupError::NoBareMetalHost)
            }
            ResourceKind::BareMetal => Ok(()),
            ResourceKind::Eip if self.eip_network.is_none() => Err(SetupError::NoIpPool),
            _ if self.network.is_none() => Err(SetupError::NoNetworkArea(kind)),
            ResourceKind::Volume if self.storage_class.is_none() => {
                Err(SetupError::NoStorageClass(kind))
            }
            _ => Ok(()),
        }
    }

    /// The kinds this run exercises.
    pub fn kinds(&self) -> &[ResourceKind] {
        &self.kinds
    }

    /// The kinds the driver declares, if GetInfo answered.
    pub fn declared(&self) -> Option<&[ResourceKind]> {
        self.declared.as_deref()
    }

    /// The kind used by checks that need many resources or only one kind: VPC when
    /// exercised (cheapest everywhere), else the first kind.
    pub fn primary_kind(&self) -> ResourceKind {
        if self.kinds.contains(&ResourceKind::Vpc) {
            ResourceKind::Vpc
        } else {
            self.kinds[0]
        }
    }

    /// A fresh id under the run prefix: lower-case letters, digits and dashes only,
    /// which any provider's naming rules accept.
    pub fn new_id(&self, label: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{}{label}-{n}", self.prefix)
    }

    /// The controller derives the key from id and generation; so does the kit.
    pub fn idempotency_key(id: &str, generation: u64) -> String {
        format!("{id}@{generation}")
    }

    pub fn placement(&self, kind: ResourceKind) -> v1::Placement {
        match (kind, &self.vm, &self.network) {
            (ResourceKind::Vm, Some(t), _) => t.placement.clone(),
            (ResourceKind::BareMetal, _, _) if self.bare_metal.is_some() => self
                .bare_metal
                .as_ref()
                .map(|t| t.placement.clone())
                .unwrap_or_default(),
            (ResourceKind::Eip, _, _) if self.eip_network.is_some() => {
                self.eip_network.clone().unwrap_or_default()
            }
            (_, _, Some(p)) => p.clone(),
            _ => v1::Placement::default(),
        }
    }

    /// A valid spec of `kind` that names nothing; generation 2 and later differ
    /// from generation 1 where the kind has something harmless to change.
    pub fn spec(&self, kind: ResourceKind, id: &str, generation: u64) -> v1::ResourceSpec {
        self.linked_spec(kind, id, generation, &Links::default())
    }

    /// A spec of `kind` naming the resources in `links` (the fields of the kind
    /// that take them; a kind's required reference left empty makes an invalid
    /// spec, which only the refusal checks send on purpose).
    pub(crate) fn linked_spec(
        &self,
        kind: ResourceKind,
        id: &str,
        generation: u64,
        links: &Links,
    ) -> v1::ResourceSpec {
        let updated = generation >= 2;
        let storage_class = self.storage_class.clone().unwrap_or_default();
        let nics = || -> Vec<v1::Nic> {
            links
                .subnet
                .iter()
                .map(|s| v1::Nic {
                    subnet: s.clone(),
                    ip: String::new(),
                })
                .collect()
        };
        let target = links.target.clone().unwrap_or_default();
        let spec = match kind {
            ResourceKind::Vm => Spec::Vm(v1::VmSpec {
                arch: self.vm.as_ref().map_or(v1::Architecture::X8664, |t| t.arch) as i32,
                vcpu: self.vcpu,
                memory_mib: if updated {
                    self.memory_mib * 2
                } else {
                    self.memory_mib
                },
                system_disk: Some(v1::Disk {
                    size_gib: self.disk_gib,
                    storage_class,
                }),
                image: self.image.clone(),
                nics: nics(),
                security_groups: links.security_group.iter().cloned().collect(),
                ..Default::default()
            }),
            ResourceKind::BareMetal => Spec::BareMetal(v1::BareMetalSpec {
                stopped: false,
                arch: self
                    .bare_metal
                    .as_ref()
                    .map_or(v1::Architecture::X8664, |t| t.arch) as i32,
                model: self
                    .bare_metal
                    .as_ref()
                    .map(|t| t.model.clone())
                    .unwrap_or_default(),
                image: self.image.clone(),
                nics: nics(),
            }),
            ResourceKind::Volume => Spec::Volume(v1::VolumeSpec {
                size_gib: if updated {
                    self.disk_gib * 2
                } else {
                    self.disk_gib
                },
                storage_class,
                attach_to: target,
                restore_from: String::new(),
            }),
            ResourceKind::Subnet => {
                let vpc = links.vpc.clone().unwrap_or_default();
                Spec::Subnet(v1::SubnetSpec {
                    // The first half of its VPC's block: inside it, and leaving
                    // room for a sibling.
                    cidr: half(&self.cidr_for(if vpc.is_empty() { id } else { &vpc })),
                    vpc,
                    gateway: String::new(),
                })
            }
            ResourceKind::SecurityGroup => {
                let mut rules = if updated {
                    vec![ssh_rule()]
                } else {
                    Vec::new()
                };
                if let Some(peer) = &links.security_group {
                    rules.push(v1::SecurityRule {
                        direction: v1::Direction::Ingress as i32,
                        protocol: v1::Protocol::Tcp as i32,
                        port_min: 443,
                        port_max: 443,
                        remote_cidr: String::new(),
                        action: v1::RuleAction::Allow as i32,
                        priority: 110,
                        remote_group: peer.clone(),
                    });
                }
                Spec::SecurityGroup(v1::SecurityGroupSpec { rules })
            }
            ResourceKind::Eip => Spec::Eip(v1::EipSpec {
                bandwidth_mbps: if updated { 20 } else { 10 },
                bind_to: target,
            }),
            ResourceKind::LoadBalancer => Spec::LoadBalancer(v1::LoadBalancerSpec {
                subnet: links.subnet.clone().unwrap_or_default(),
                listeners: vec![v1::Listener {
                    protocol: v1::Protocol::Http as i32,
                    port: 80,
                    algorithm: if updated {
                        v1::LbAlgorithm::WeightedRoundRobin
                    } else {
                        v1::LbAlgorithm::RoundRobin
                    } as i32,
                    health_check: Some(v1::HealthCheck {
                        protocol: v1::Protocol::Http as i32,
                        port: 8080,
                        path: "/healthz".to_owned(),
                        interval_seconds: 5,
                        timeout_seconds: 2,
                        healthy_threshold: 2,
                        unhealthy_threshold: 3,
                    }),
                    session_persistence: false,
                    members: links
                        .target
                        .iter()
                        .map(|t| v1::Member {
                            target: t.clone(),
                            port: 8080,
                            weight: 1,
                        })
                        .collect(),
                }],
            }),
            ResourceKind::WafPolicy => Spec::WafPolicy(v1::WafPolicySpec {
                rule_sets: vec!["owasp-crs-4/sqli".to_owned(), "owasp-crs-4/xss".to_owned()],
                mode: if updated {
                    v1::WafMode::Block
                } else {
                    v1::WafMode::Detect
                } as i32,
                allow_cidrs: Vec::new(),
                deny_cidrs: vec!["192.0.2.0/24".to_owned()],
                cc_limit: Some(v1::CcRateLimit {
                    requests: 100,
                    period_seconds: 60,
                }),
                targets: links.target.iter().cloned().collect(),
            }),
            ResourceKind::BackupPolicy => Spec::BackupPolicy(v1::BackupPolicySpec {
                target,
                r#type: v1::BackupType::Full as i32,
                schedule: "0 2 * * *".to_owned(),
                retention_days: if updated { 14 } else { 7 },
            }),
            ResourceKind::Snapshot => Spec::Snapshot(v1::SnapshotSpec { source: target }),
            // A VPC has nothing harmless to change: generation 2 keeps the CIDR.
            ResourceKind::Vpc | ResourceKind::Unspecified => Spec::Vpc(v1::VpcSpec {
                cidr: self.cidr_for(id),
            }),
        };
        v1::ResourceSpec { spec: Some(spec) }
    }

    /// A complete, valid Apply request.
    pub fn request(&self, kind: ResourceKind, id: &str, generation: u64) -> v1::ApplyRequest {
        self.request_with(kind, id, generation, self.spec(kind, id, generation))
    }

    /// An Apply request naming the resources in `links`; refused when the
    /// inventory has nowhere to put `kind`.
    pub(crate) fn linked_request(
        &self,
        kind: ResourceKind,
        id: &str,
        generation: u64,
        links: &Links,
    ) -> Result<v1::ApplyRequest, SetupError> {
        self.can_place(kind)?;
        let spec = self.linked_spec(kind, id, generation, links);
        Ok(self.request_with(kind, id, generation, spec))
    }

    fn request_with(
        &self,
        kind: ResourceKind,
        id: &str,
        generation: u64,
        spec: v1::ResourceSpec,
    ) -> v1::ApplyRequest {
        v1::ApplyRequest {
            kind: kind as i32,
            id: id.to_owned(),
            generation,
            idempotency_key: Self::idempotency_key(id, generation),
            spec: Some(spec),
            placement: Some(self.placement(kind)),
            tenant: self.tenant.clone(),
        }
    }

    /// A spec of `kind` that is well-formed on the wire but that every driver must
    /// refuse, with what is wrong with it.
    pub fn invalid_spec(&self, kind: ResourceKind, id: &str) -> (&'static str, v1::ResourceSpec) {
        let mut spec = self.spec(kind, id, 1);
        let what = match spec.spec.as_mut() {
            Some(Spec::Vm(vm)) => {
                vm.vcpu = 0;
                "vm with 0 vCPU"
            }
            Some(Spec::Volume(v)) => {
                v.size_gib = 0;
                "volume of 0 GiB"
            }
            Some(Spec::SecurityGroup(sg)) => {
                let mut rule = ssh_rule();
                rule.port_min = 443;
                rule.port_max = 22;
                sg.rules = vec![rule];
                "security rule with port_min > port_max"
            }
            Some(Spec::Vpc(vpc)) => {
                vpc.cidr = "not-a-cidr".to_owned();
                "vpc with CIDR \"not-a-cidr\""
            }
            _ => "spec",
        };
        (what, spec)
    }

    /// A valid spec of some other kind than `kind`, to send under `kind`.
    pub fn other_kind_spec(&self, kind: ResourceKind, id: &str) -> v1::ResourceSpec {
        let other = if kind == ResourceKind::Vpc {
            ResourceKind::SecurityGroup
        } else {
            ResourceKind::Vpc
        };
        self.spec(other, id, 1)
    }

    fn cidr_for(&self, id: &str) -> String {
        let mut cidrs = self.cidrs.lock().unwrap_or_else(|p| p.into_inner());
        let n = cidrs.len();
        cidrs
            .entry(id.to_owned())
            .or_insert_with(|| format!("10.{}.{}.0/24", (n / 256) % 256, n % 256))
            .clone()
    }
}

fn ssh_rule() -> v1::SecurityRule {
    v1::SecurityRule {
        direction: v1::Direction::Ingress as i32,
        protocol: v1::Protocol::Tcp as i32,
        port_min: 22,
        port_max: 22,
        remote_cidr: "10.0.0.0/8".to_owned(),
        action: v1::RuleAction::Allow as i32,
        priority: 100,
        remote_group: String::new(),
    }
}

/// The storage class of `zone` with the most capacity (ties: smallest id).
fn best_storage_class(inventory: &v1::Inventory, zone: &str) -> Option<String> {
    inventory
        .storage_classes
        .iter()
        .filter(|s| s.zone == zone)
        .max_by(|a, b| a.capacity_gib.cmp(&b.capacity_gib).then(b.id.cmp(&a.id)))
        .map(|s| s.id.clone())
}

/// `10.1.2.0/24` → `10.1.2.0/25`; anything unparsable unchanged (the driver
/// then says what is wrong with it).
fn half(cidr: &str) -> String {
    match cidr
        .split_once('/')
        .map(|(net, len)| (net, len.parse::<u8>()))
    {
        Some((net, Ok(len))) if len < 32 => format!("{net}/{}", len + 1),
        _ => cidr.to_owned(),
    }
}

/// The UP host with the most unreserved memory whose pool fits the small shape and
/// whose zone has storage for the system disk. Allocation is invisible to the kit,
/// so "most unreserved memory" is the best guess at "has room".
fn pick_host(inventory: &v1::Inventory, options: &Options) -> Option<ServerTarget> {
    let mut best: Option<(&v1::Host, &v1::Pool)> = None;
    for host in &inventory.hosts {
        if host.state != v1::HostState::Up as i32 {
            continue;
        }
        let Some(pool) = inventory.pools.iter().find(|p| p.id == host.pool) else {
            continue;
        };
        if pool.arch == v1::Architecture::Unspecified as i32 {
            continue;
        }
        let free = host.memory_mib.saturating_sub(host.reserved_memory_mib);
        let vcpus = u64::from(host.cores) * u64::from(pool.vcpu_ratio.max(1));
        if free < options.vm_memory_mib
            || vcpus < u64::from(options.vm_vcpu)
            || best_storage_class(inventory, &pool.zone).is_none()
        {
            continue;
        }
        let better = match best {
            None => true,
            Some((b, _)) => {
                let bfree = b.memory_mib.saturating_sub(b.reserved_memory_mib);
                free > bfree || (free == bfree && host.id < b.id)
            }
        };
        if better {
            best = Some((host, pool));
        }
    }
    best.map(|(host, pool)| server_target(host, pool))
}

fn server_target(host: &v1::Host, pool: &v1::Pool) -> ServerTarget {
    ServerTarget {
        placement: v1::Placement {
            zone: pool.zone.clone(),
            network_area: pool.network_area.clone(),
            pool: pool.id.clone(),
            host: host.id.clone(),
        },
        arch: v1::Architecture::try_from(pool.arch).unwrap_or(v1::Architecture::X8664),
        model: host.model.clone(),
    }
}

/// A whole host for a bare-metal server: UP, not the host the kit's VMs go on
/// (a bare-metal server takes the whole machine), in the VMs' zone and network
/// area when possible (NICs on the run's subnets), the most unreserved memory
/// first, ties to the smaller id.
fn pick_bare_metal_host(
    inventory: &v1::Inventory,
    vm: Option<&ServerTarget>,
    network: Option<&v1::Placement>,
) -> Option<ServerTarget> {
    let vm_host = vm.map(|t| t.placement.host.as_str());
    let mut candidates: Vec<(&v1::Host, &v1::Pool)> = inventory
        .hosts
        .iter()
        .filter(|h| h.state == v1::HostState::Up as i32 && Some(h.id.as_str()) != vm_host)
        .filter_map(|h| {
            let pool = inventory.pools.iter().find(|p| p.id == h.pool)?;
            (pool.arch != v1::Architecture::Unspecified as i32).then_some((h, pool))
        })
        .collect();
    let near = |pool: &v1::Pool| {
        network.is_some_and(|n| n.zone == pool.zone && n.network_area == pool.network_area)
    };
    candidates.sort_by(|(a, ap), (b, bp)| {
        let free = |h: &v1::Host| h.memory_mib.saturating_sub(h.reserved_memory_mib);
        near(bp)
            .cmp(&near(ap))
            .then(free(b).cmp(&free(a)))
            .then(a.id.cmp(&b.id))
    });
    candidates
        .first()
        .map(|(host, pool)| server_target(host, pool))
}

/// Zone and network area for EIPs: the run's own area when it has public
/// addresses, else the first area (by id) that has.
fn pick_eip_area(
    inventory: &v1::Inventory,
    network: Option<&v1::Placement>,
) -> Option<v1::Placement> {
    let mut pools: Vec<&v1::IpPool> = inventory.ip_pools.iter().filter(|p| p.total > 0).collect();
    pools.sort_by(|a, b| a.network_area.cmp(&b.network_area).then(a.id.cmp(&b.id)));
    let own = network.and_then(|n| {
        pools
            .iter()
            .find(|p| p.zone == n.zone && p.network_area == n.network_area)
    });
    own.or_else(|| pools.first()).map(|p| v1::Placement {
        zone: p.zone.clone(),
        network_area: p.network_area.clone(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory() -> v1::Inventory {
        v1::Inventory {
            zones: vec![v1::Zone {
                id: "z".into(),
                name: "z".into(),
            }],
            network_areas: vec![v1::NetworkArea {
                id: "a".into(),
                zone: "z".into(),
                ..Default::default()
            }],
            pools: vec![v1::Pool {
                id: "p".into(),
                zone: "z".into(),
                network_area: "a".into(),
                arch: v1::Architecture::Arm64 as i32,
                clock_mhz: 2600,
                vcpu_ratio: 2,
                ..Default::default()
            }],
            hosts: vec![
                v1::Host {
                    id: "down".into(),
                    pool: "p".into(),
                    cores: 64,
                    memory_mib: 1 << 20,
                    state: v1::HostState::Down as i32,
                    ..Default::default()
                },
                v1::Host {
                    id: "up".into(),
                    pool: "p".into(),
                    cores: 8,
                    memory_mib: 8192,
                    reserved_memory_mib: 1024,
                    state: v1::HostState::Up as i32,
                    model: String::new(),
                },
            ],
            storage_classes: vec![v1::StorageClass {
                id: "ssd".into(),
                zone: "z".into(),
                capacity_gib: 100,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn picks_an_up_host_and_its_pool() {
        let f = SpecFactory::from_inventory(
            &inventory(),
            &[ResourceKind::Vm, ResourceKind::Vpc],
            &Options::default(),
        )
        .expect("factory");
        let p = f.placement(ResourceKind::Vm);
        assert_eq!(
            (p.zone.as_str(), p.pool.as_str(), p.host.as_str()),
            ("z", "p", "up")
        );
        let req = f.request(ResourceKind::Vm, "x", 2);
        let Some(Spec::Vm(vm)) = req.spec.and_then(|s| s.spec) else {
            panic!("vm spec")
        };
        assert_eq!(vm.arch, v1::Architecture::Arm64 as i32);
        assert_eq!(vm.memory_mib, 1024);
        assert_eq!(f.placement(ResourceKind::Vpc).host, "");
        assert_eq!(
            f.spec(ResourceKind::Vpc, "v", 1),
            f.spec(ResourceKind::Vpc, "v", 2)
        );
        assert_ne!(
            f.spec(ResourceKind::Vpc, "v", 1),
            f.spec(ResourceKind::Vpc, "w", 1)
        );
    }

    #[test]
    fn no_up_host_is_a_setup_error_for_vms_only() {
        let mut inv = inventory();
        inv.hosts.retain(|h| h.id == "down");
        let opts = Options::default();
        assert!(matches!(
            SpecFactory::from_inventory(&inv, &[ResourceKind::Vm], &opts),
            Err(SetupError::NoHost { .. })
        ));
        assert!(SpecFactory::from_inventory(&inv, &[ResourceKind::Vpc], &opts).is_ok());
        let f = SpecFactory::build(&inv, &[], &opts);
        assert_eq!(f.can_place(ResourceKind::Vpc), Ok(()));
        assert_eq!(
            f.can_place(ResourceKind::BareMetal),
            Err(SetupError::NoBareMetalHost)
        );
        assert_eq!(f.can_place(ResourceKind::Eip), Err(SetupError::NoIpPool));
        assert_eq!(
            SpecFactory::from_inventory(&inv, &[ResourceKind::Eip], &opts).err(),
            Some(SetupError::UnsupportedKind(ResourceKind::Eip))
        );
    }

    #[test]
    fn bare_metal_gets_another_host_and_its_model_eips_an_area_with_addresses() {
        let mut inv = inventory();
        inv.hosts.push(v1::Host {
            id: "bm".into(),
            pool: "p".into(),
            cores: 8,
            memory_mib: 4096,
            reserved_memory_mib: 0,
            state: v1::HostState::Up as i32,
            model: "TaiShan 200 2280".into(),
        });
        inv.ip_pools.push(v1::IpPool {
            id: "eips".into(),
            zone: "z".into(),
            network_area: "a".into(),
            cidrs: vec!["203.0.113.0/28".into()],
            total: 16,
        });
        let f = SpecFactory::build(&inv, &[ResourceKind::Vm], &Options::default());
        assert_eq!(f.placement(ResourceKind::Vm).host, "up");
        assert_eq!(f.placement(ResourceKind::BareMetal).host, "bm");
        let Some(Spec::BareMetal(bm)) = f.spec(ResourceKind::BareMetal, "b", 1).spec else {
            panic!("bare-metal spec")
        };
        assert_eq!(
            (bm.model.as_str(), bm.arch),
            ("TaiShan 200 2280", v1::Architecture::Arm64 as i32)
        );
        let eip = f.placement(ResourceKind::Eip);
        assert_eq!((eip.zone.as_str(), eip.network_area.as_str()), ("z", "a"));
    }

    #[test]
    fn linked_specs_name_what_they_are_given() {
        let f = SpecFactory::build(&inventory(), &[], &Options::default());
        let links = Links {
            vpc: Some("v".into()),
            subnet: Some("s".into()),
            security_group: Some("g".into()),
            target: Some("t".into()),
        };
        let spec = |kind| f.linked_spec(kind, "x", 1, &links).spec;
        let Some(Spec::Vm(vm)) = spec(ResourceKind::Vm) else {
            panic!("vm")
        };
        assert_eq!(
            (vm.nics[0].subnet.as_str(), vm.security_groups.as_slice()),
            ("s", &["g".to_owned()][..])
        );
        let Some(Spec::Subnet(sn)) = spec(ResourceKind::Subnet) else {
            panic!("subnet")
        };
        let vpc_cidr = f.cidr_for("v");
        assert_eq!(sn.vpc, "v");
        assert_eq!(sn.cidr, half(&vpc_cidr));
        assert!(sn.cidr.ends_with("/25"), "{}", sn.cidr);
        let Some(Spec::SecurityGroup(sg)) = spec(ResourceKind::SecurityGroup) else {
            panic!("sg")
        };
        assert_eq!(sg.rules[0].remote_group, "g");
        assert!(sg.rules[0].remote_cidr.is_empty(), "exactly one remote");
        let Some(Spec::LoadBalancer(lb)) = spec(ResourceKind::LoadBalancer) else {
            panic!("lb")
        };
        assert_eq!(
            (
                lb.subnet.as_str(),
                lb.listeners[0].members[0].target.as_str()
            ),
            ("s", "t")
        );
        for (kind, want) in [
            (ResourceKind::Volume, "t"),
            (ResourceKind::Eip, "t"),
            (ResourceKind::BackupPolicy, "t"),
            (ResourceKind::Snapshot, "t"),
        ] {
            let named = match spec(kind) {
                Some(Spec::Volume(v)) => v.attach_to,
                Some(Spec::Eip(e)) => e.bind_to,
                Some(Spec::BackupPolicy(b)) => b.target,
                Some(Spec::Snapshot(s)) => s.source,
                other => panic!("{other:?}"),
            };
            assert_eq!(named, want, "{kind:?}");
        }
        let Some(Spec::WafPolicy(waf)) = spec(ResourceKind::WafPolicy) else {
            panic!("waf")
        };
        assert_eq!(waf.targets, ["t"]);
        assert_eq!(half("10.0.3.0/24"), "10.0.3.0/25");
        assert_eq!(half("junk"), "junk");
    }
}
