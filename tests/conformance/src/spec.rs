//! Valid (and deliberately invalid) resources for whatever driver is under test.
//!
//! The kit knows nothing about the provider in advance, so everything it creates is
//! derived from the driver's own `GetInventory`: a host that is UP, its pool's
//! architecture, a storage class of the same zone. It cannot see allocation either,
//! so shapes are kept small (1 vCPU, 512 MiB by default) to fit on any UP host.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use yunshu_proto::v1::{self, ResourceKind, resource_spec::Spec};

use crate::Options;

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
    #[error("the inventory has no network area to place {0:?} in")]
    NoNetworkArea(ResourceKind),
    #[error("the inventory has no storage class for {0:?}")]
    NoStorageClass(ResourceKind),
}

/// Where VMs go: a host that was UP with room for the small shape.
#[derive(Clone, Debug)]
struct VmTarget {
    placement: v1::Placement,
    arch: v1::Architecture,
}

/// Builds requests for the kinds under test, with ids under the run prefix.
#[derive(Debug)]
pub struct SpecFactory {
    prefix: String,
    tenant: String,
    kinds: Vec<ResourceKind>,
    vm: Option<VmTarget>,
    /// Zone and network area for kinds that are not placed on a host.
    network: Option<v1::Placement>,
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

const KNOWN_KINDS: [ResourceKind; 4] = [
    ResourceKind::Vm,
    ResourceKind::Vpc,
    ResourceKind::Volume,
    ResourceKind::SecurityGroup,
];

impl SpecFactory {
    /// Picks placements for `kinds` from `inventory`.
    pub fn from_inventory(
        inventory: &v1::Inventory,
        kinds: &[ResourceKind],
        options: &Options,
    ) -> Result<Self, SetupError> {
        if let Some(k) = kinds.iter().find(|k| !KNOWN_KINDS.contains(k)) {
            return Err(SetupError::UnsupportedKind(*k));
        }
        if kinds.is_empty() {
            return Err(SetupError::NoKinds(String::new()));
        }
        let vm = pick_host(inventory, options);
        if kinds.contains(&ResourceKind::Vm) && vm.is_none() {
            return Err(SetupError::NoHost {
                vcpu: options.vm_vcpu,
                memory_mib: options.vm_memory_mib,
            });
        }
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
        for kind in kinds {
            if *kind != ResourceKind::Vm && network.is_none() {
                return Err(SetupError::NoNetworkArea(*kind));
            }
        }
        let zone = network.as_ref().map(|p| p.zone.clone()).unwrap_or_default();
        let storage_class = best_storage_class(inventory, &zone);
        if kinds.contains(&ResourceKind::Volume) && storage_class.is_none() {
            return Err(SetupError::NoStorageClass(ResourceKind::Volume));
        }
        Ok(Self {
            prefix: options.run_prefix.clone(),
            tenant: options.tenant.clone(),
            kinds: kinds.to_vec(),
            vm,
            network,
            storage_class,
            image: options.vm_image.clone(),
            vcpu: options.vm_vcpu,
            memory_mib: options.vm_memory_mib,
            disk_gib: options.disk_gib,
            counter: AtomicU64::new(0),
            cidrs: Mutex::new(HashMap::new()),
        })
    }

    /// The kinds this run exercises.
    pub fn kinds(&self) -> &[ResourceKind] {
        &self.kinds
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
            (_, _, Some(p)) => p.clone(),
            _ => v1::Placement::default(),
        }
    }

    /// A valid spec of `kind`; generation 2 and later differ from generation 1
    /// where the kind has something harmless to change.
    pub fn spec(&self, kind: ResourceKind, id: &str, generation: u64) -> v1::ResourceSpec {
        let updated = generation >= 2;
        let storage_class = self.storage_class.clone().unwrap_or_default();
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
                ..Default::default()
            }),
            ResourceKind::Volume => Spec::Volume(v1::VolumeSpec {
                size_gib: if updated {
                    self.disk_gib * 2
                } else {
                    self.disk_gib
                },
                storage_class,
                attach_to: String::new(),
            }),
            ResourceKind::SecurityGroup => Spec::SecurityGroup(v1::SecurityGroupSpec {
                rules: if updated {
                    vec![ssh_rule()]
                } else {
                    Vec::new()
                },
            }),
            // A VPC has nothing harmless to change: generation 2 keeps the CIDR.
            _ => Spec::Vpc(v1::VpcSpec {
                cidr: self.cidr_for(id),
            }),
        };
        v1::ResourceSpec { spec: Some(spec) }
    }

    /// A complete, valid Apply request.
    pub fn request(&self, kind: ResourceKind, id: &str, generation: u64) -> v1::ApplyRequest {
        v1::ApplyRequest {
            kind: kind as i32,
            id: id.to_owned(),
            generation,
            idempotency_key: Self::idempotency_key(id, generation),
            spec: Some(self.spec(kind, id, generation)),
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

/// The UP host with the most unreserved memory whose pool fits the small shape and
/// whose zone has storage for the system disk. Allocation is invisible to the kit,
/// so "most unreserved memory" is the best guess at "has room".
fn pick_host(inventory: &v1::Inventory, options: &Options) -> Option<VmTarget> {
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
    best.map(|(host, pool)| VmTarget {
        placement: v1::Placement {
            zone: pool.zone.clone(),
            network_area: pool.network_area.clone(),
            pool: pool.id.clone(),
            host: host.id.clone(),
        },
        arch: v1::Architecture::try_from(pool.arch).unwrap_or(v1::Architecture::X8664),
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
        assert_eq!(
            SpecFactory::from_inventory(&inv, &[ResourceKind::Eip], &opts).err(),
            Some(SetupError::UnsupportedKind(ResourceKind::Eip))
        );
    }
}
