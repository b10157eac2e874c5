//! The values placement takes and gives: inventory specs (pools, hosts, storage
//! classes, bandwidth, public IPs), the VM shape and request, the resulting
//! [`Placement`] and the [`Strategy`].
//!
//! Owns the names of things only. It must not hold capacity arithmetic (that is
//! `index`) nor validation beyond what a constructor can check alone.

use serde::{Deserialize, Serialize};
use yunshu_domain::{
    Architecture, ProviderId, ResourceId,
    ids::{AntiAffinityGroup, HostId, NetworkAreaId, PoolId, StorageClassId, ZoneId},
    provider::{Host, HostState, MAX_VCPU_RATIO, NetworkAreaKind, Pool, StorageClass},
};

/// vCPU per physical core when the provider does not say (proto3 `0`): the
/// maximum 003 §3.1.3 item 1001 allows.
pub const DEFAULT_VCPU_RATIO: u32 = MAX_VCPU_RATIO;

/// What a request must match: provider, zone (部署节点), network area (网络区域)
/// and architecture. Several pools may share one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PoolKey {
    pub provider: ProviderId,
    pub zone: ZoneId,
    pub network_area: NetworkAreaId,
    pub arch: Architecture,
}

/// A pool's identity: pool ids are unique within a provider.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PoolRef {
    pub provider: ProviderId,
    pub pool: PoolId,
}

/// A host's identity: host ids are unique within a provider.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostRef {
    pub provider: ProviderId,
    pub host: HostId,
}

/// Where a storage class's capacity is shared: every pool of the zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StorageKey {
    pub provider: ProviderId,
    pub zone: ZoneId,
    pub class: StorageClassId,
}

/// Where bandwidth and public IPs are shared: every pool of one network area of
/// one zone (proto `Bandwidth` and `IpPool` carry zone + network area).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AreaKey {
    pub provider: ProviderId,
    pub zone: ZoneId,
    pub network_area: NetworkAreaId,
}

/// Resource pool (资源池) as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    pub id: PoolId,
    pub key: PoolKey,
    /// For reason texts: 政务外网区, 互联网区 …
    pub area_kind: NetworkAreaKind,
    /// vCPU per physical core; 1..=4. [`Index::upsert_pool`](crate::Index::upsert_pool)
    /// refuses anything else.
    pub vcpu_ratio: u32,
}

impl PoolSpec {
    /// A validated domain pool; its ratio is already within 1..=4.
    pub fn from_domain(pool: &Pool, area_kind: NetworkAreaKind) -> Self {
        PoolSpec {
            id: pool.id().clone(),
            key: PoolKey {
                provider: pool.provider().clone(),
                zone: pool.zone().clone(),
                network_area: pool.network_area().clone(),
                arch: pool.arch(),
            },
            area_kind,
            vcpu_ratio: pool.vcpu_ratio(),
        }
    }

    pub fn pool_ref(&self) -> PoolRef {
        PoolRef {
            provider: self.key.provider.clone(),
            pool: self.id.clone(),
        }
    }
}

/// A physical host (宿主机) as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSpec {
    pub provider: ProviderId,
    pub pool: PoolId,
    pub id: HostId,
    /// Physical cores; at least 1.
    pub cores: u32,
    pub memory_mib: u64,
    /// Kept for the hypervisor, never given to VMs; below `memory_mib`.
    pub reserved_memory_mib: u64,
    /// Only `Ready` hosts take new VMs; the others keep theirs.
    pub state: HostState,
    /// Hardware model, as bare-metal orders name it; `None` when unknown.
    #[serde(default)]
    pub model: Option<String>,
}

impl HostSpec {
    pub fn host_ref(&self) -> HostRef {
        HostRef {
            provider: self.provider.clone(),
            host: self.id.clone(),
        }
    }
}

impl From<&Host> for HostSpec {
    fn from(h: &Host) -> Self {
        HostSpec {
            provider: h.provider().clone(),
            pool: h.pool().clone(),
            id: h.id().clone(),
            cores: h.cores(),
            memory_mib: h.memory_mib(),
            reserved_memory_mib: h.reserved_memory_mib(),
            state: h.state(),
            model: None,
        }
    }
}

/// Capacity of one storage class (存储类型) in one zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageClassSpec {
    pub key: StorageKey,
    pub capacity_gib: u64,
}

impl From<&StorageClass> for StorageClassSpec {
    fn from(s: &StorageClass) -> Self {
        StorageClassSpec {
            key: StorageKey {
                provider: s.provider().clone(),
                zone: s.zone().clone(),
                class: s.id().clone(),
            },
            capacity_gib: s.capacity_gib(),
        }
    }
}

/// Bandwidth of one network area of one zone (proto `Bandwidth`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandwidthSpec {
    pub area: AreaKey,
    pub total_mbps: u64,
}

/// Public IPv4 addresses of one network area of one zone: the sum of
/// `IpPool.total` over the area's IP pools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicIpSpec {
    pub area: AreaKey,
    pub total: u64,
}

/// A disk of a VM, charged to its storage class in the VM's zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    pub storage_class: StorageClassId,
    pub size_gib: u64,
}

/// What one VM consumes. Stored with its allocation, so a release gives back
/// exactly what the reservation took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmShape {
    /// At least 1.
    pub vcpu: u32,
    /// At least 1.
    pub memory_mib: u64,
    #[serde(default)]
    pub disks: Vec<Disk>,
    #[serde(default)]
    pub bandwidth_mbps: u64,
    #[serde(default)]
    pub public_ips: u64,
    /// Anti-affinity group (反亲和组): members go on different hosts.
    #[serde(default)]
    pub anti_affinity: Option<AntiAffinityGroup>,
    /// The group is soft: a host already holding a member is taken when no
    /// other host fits, instead of refusing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anti_affinity_soft: bool,
}

impl VmShape {
    /// A VM with no disks, network or group.
    pub fn new(vcpu: u32, memory_mib: u64) -> Self {
        VmShape {
            vcpu,
            memory_mib,
            disks: Vec::new(),
            bandwidth_mbps: 0,
            public_ips: 0,
            anti_affinity: None,
            anti_affinity_soft: false,
        }
    }

    pub(crate) fn is_valid(&self) -> bool {
        self.vcpu > 0 && self.memory_mib > 0
    }

    /// GiB per storage class, disks of one class summed; sorted by class so
    /// checks and reasons are deterministic.
    pub(crate) fn storage_by_class(&self) -> Vec<(&StorageClassId, u64)> {
        let mut out: Vec<(&StorageClassId, u64)> = Vec::with_capacity(self.disks.len());
        for d in &self.disks {
            match out.iter_mut().find(|(c, _)| *c == &d.storage_class) {
                Some((_, gib)) => *gib = gib.saturating_add(d.size_gib),
                None => out.push((&d.storage_class, d.size_gib)),
            }
        }
        out.sort_by(|a, b| a.0.cmp(b.0));
        out
    }
}

/// One VM to place. `alloc` is the VM's resource id: the allocation's key, so a
/// retry with the same id finds the allocation instead of making a second one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRequest {
    pub alloc: ResourceId,
    pub key: PoolKey,
    pub shape: VmShape,
}

/// Where a VM went; mirrors proto `Placement` plus the provider and the
/// allocation id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub alloc: ResourceId,
    pub provider: ProviderId,
    pub zone: ZoneId,
    pub network_area: NetworkAreaId,
    pub pool: PoolId,
    pub host: HostId,
}

/// How candidates are ordered. Ties go to the smaller host id, so the same index
/// and request always give the same host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Most free memory first: spreads load and blast radius.
    #[default]
    Spread,
    /// Least free memory that fits: keeps big holes for big VMs.
    Pack,
}

/// What a resource that is not on a host takes from its zone: storage by
/// class (a volume), bandwidth and public IPs of one network area (an EIP).
/// Stored with its allocation, so a release gives back exactly this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedRequest {
    pub alloc: ResourceId,
    pub provider: ProviderId,
    pub zone: ZoneId,
    /// Where bandwidth and public IPs are charged; `None` for storage only.
    #[serde(default)]
    pub network_area: Option<NetworkAreaId>,
    #[serde(default)]
    pub disks: Vec<Disk>,
    #[serde(default)]
    pub bandwidth_mbps: u64,
    #[serde(default)]
    pub public_ips: u64,
}

/// One bare-metal server to place: a whole empty host of the key's pools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BareMetalRequest {
    pub alloc: ResourceId,
    pub key: PoolKey,
    /// The host model asked for; `None` = any model.
    #[serde(default)]
    pub model: Option<String>,
    /// What the order asked for: a host with less is not taken.
    pub min_memory_mib: u64,
    pub min_cores: u32,
}
