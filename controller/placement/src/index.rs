//! The placement [`Index`]: pools, hosts, zone-level shared capacities and the
//! allocations charged against them.
//!
//! Owns the capacity arithmetic and its invariants: a reservation never makes a
//! host's VM memory exceed memory − reserve, nor its vCPUs exceed ratio × cores,
//! nor a storage class, bandwidth or public-IP figure exceed its total; members of
//! one anti-affinity group never share a host. Inventory updates (a host that
//! shrinks, goes down, a ratio lowered) keep existing allocations and only lower
//! the free figures. Must not choose hosts (that is `place`) nor word reasons for
//! users (that is `reason`).
//!
//! Per pool, schedulable hosts sit in a `BTreeSet` ordered by (free memory, host
//! id), so a decision walks from one end instead of scanning every host.

use std::collections::{BTreeSet, HashMap, HashSet};

use thiserror::Error;
use yunshu_domain::{
    ErrorCode, ProviderId, ResourceId,
    ids::{AntiAffinityGroup, HostId, StorageClassId},
    provider::{HostState, MAX_VCPU_RATIO},
};

use crate::model::{
    AreaKey, BandwidthSpec, HostRef, HostSpec, Placement, PoolKey, PoolRef, PoolSpec, PublicIpSpec,
    SharedRequest, StorageClassSpec, StorageKey, VmShape,
};
use crate::report::Usage;

/// Why an inventory update or a recorded allocation was refused. The index is
/// unchanged after any error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IndexError {
    #[error("pool {pool}: vCPU ratio {ratio} must be between 1 and {max}")]
    PoolRatioInvalid { pool: String, ratio: u32, max: u32 },
    #[error("pool {pool} still has hosts; remove them first")]
    PoolNotEmpty { pool: String },
    #[error(
        "pool {pool} has hosts; its provider, zone, network area and architecture cannot change"
    )]
    PoolKeyChanged { pool: String },
    #[error("host {host} names pool {pool}, which is not in the index")]
    PoolUnknown { host: String, pool: String },
    #[error("host {host} reports 0 cores")]
    HostCoresZero { host: String },
    #[error(
        "host {host}: reserved memory {reserved_mib} MiB must be below its memory {memory_mib} MiB"
    )]
    HostReserveExceedsMemory {
        host: String,
        memory_mib: u64,
        reserved_mib: u64,
    },
    #[error("host {host} is not in the index")]
    HostUnknown { host: String },
    #[error(
        "host {host} holds {allocations} allocations; release them before moving or removing it"
    )]
    HostHasAllocations { host: String, allocations: u32 },
    #[error("VM shape {vcpu} vCPU / {memory_mib} MiB is invalid: both must be at least 1")]
    ShapeInvalid { vcpu: u32, memory_mib: u64 },
    #[error("allocation {alloc} already exists on host {host} with another shape or host")]
    AllocationExists { alloc: String, host: String },
    #[error("host {host}: {need_mib} MiB memory requested but only {free_mib} MiB free")]
    MemoryOvercommit {
        host: String,
        need_mib: u64,
        free_mib: u64,
    },
    #[error("host {host}: {need} vCPU requested but only {free} vCPU free")]
    VcpuOvercommit { host: String, need: u64, free: u64 },
    #[error("host {host} already holds a member of anti-affinity group {group}")]
    AntiAffinityConflict { host: String, group: String },
    #[error("zone {zone}: storage class {class}: {need_gib} GiB requested but {free_gib} GiB free")]
    StorageOvercommit {
        zone: String,
        class: String,
        need_gib: u64,
        free_gib: u64,
    },
    #[error("{zone}/{network_area}: {need_mbps} Mbps requested but {free_mbps} Mbps free")]
    BandwidthOvercommit {
        zone: String,
        network_area: String,
        need_mbps: u64,
        free_mbps: u64,
    },
    #[error("{zone}/{network_area}: {need} public IPs requested but {free} free")]
    PublicIpsOvercommit {
        zone: String,
        network_area: String,
        need: u64,
        free: u64,
    },
}

impl ErrorCode for IndexError {
    fn code(&self) -> &'static str {
        match self {
            IndexError::PoolRatioInvalid { .. } => "POOL_VCPU_RATIO_INVALID",
            IndexError::PoolNotEmpty { .. } => "POOL_NOT_EMPTY",
            IndexError::PoolKeyChanged { .. } => "POOL_KEY_CHANGED",
            IndexError::PoolUnknown { .. } => "POOL_UNKNOWN",
            IndexError::HostCoresZero { .. } => "HOST_CORES_ZERO",
            IndexError::HostReserveExceedsMemory { .. } => "HOST_RESERVE_EXCEEDS_MEMORY",
            IndexError::HostUnknown { .. } => "HOST_UNKNOWN",
            IndexError::HostHasAllocations { .. } => "HOST_HAS_ALLOCATIONS",
            IndexError::ShapeInvalid { .. } => "VM_SHAPE_INVALID",
            IndexError::AllocationExists { .. } => "ALLOCATION_EXISTS",
            IndexError::MemoryOvercommit { .. } => "HOST_MEMORY_OVERCOMMIT",
            IndexError::VcpuOvercommit { .. } => "HOST_VCPU_OVERCOMMIT",
            IndexError::AntiAffinityConflict { .. } => "ANTI_AFFINITY_CONFLICT",
            IndexError::StorageOvercommit { .. } => "STORAGE_CLASS_OVERCOMMIT",
            IndexError::BandwidthOvercommit { .. } => "BANDWIDTH_OVERCOMMIT",
            IndexError::PublicIpsOvercommit { .. } => "PUBLIC_IPS_OVERCOMMIT",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            IndexError::PoolRatioInvalid { pool, ratio, max } => {
                format!("资源池 {pool} 的虚拟化比 {ratio} 无效：应为 1 到 {max}")
            }
            IndexError::PoolNotEmpty { pool } => format!("资源池 {pool} 仍有宿主机，请先移除"),
            IndexError::PoolKeyChanged { pool } => {
                format!("资源池 {pool} 已有宿主机，不能更改其云服务商、部署节点、网络区域或架构")
            }
            IndexError::PoolUnknown { host, pool } => {
                format!("宿主机 {host} 所属资源池 {pool} 不存在")
            }
            IndexError::HostCoresZero { host } => format!("宿主机 {host} 的物理核数为 0"),
            IndexError::HostReserveExceedsMemory {
                host,
                memory_mib,
                reserved_mib,
            } => format!("宿主机 {host} 预留内存 {reserved_mib} MiB 不小于其内存 {memory_mib} MiB"),
            IndexError::HostUnknown { host } => format!("宿主机 {host} 不存在"),
            IndexError::HostHasAllocations { host, allocations } => {
                format!("宿主机 {host} 上还有 {allocations} 个已分配虚拟机，请先释放")
            }
            IndexError::ShapeInvalid { vcpu, memory_mib } => {
                format!("虚拟机规格 {vcpu} vCPU / {memory_mib} MiB 无效：两者都至少为 1")
            }
            IndexError::AllocationExists { alloc, host } => {
                format!("分配 {alloc} 已存在于宿主机 {host}，且规格或位置不同")
            }
            IndexError::MemoryOvercommit {
                host,
                need_mib,
                free_mib,
            } => {
                format!("宿主机 {host} 需要 {need_mib} MiB 内存，仅剩 {free_mib} MiB（内存不超分）")
            }
            IndexError::VcpuOvercommit { host, need, free } => {
                format!("宿主机 {host} 需要 {need} 个 vCPU，仅剩 {free} 个")
            }
            IndexError::AntiAffinityConflict { host, group } => {
                format!("宿主机 {host} 上已有反亲和组 {group} 的成员")
            }
            IndexError::StorageOvercommit {
                zone,
                class,
                need_gib,
                free_gib,
            } => {
                format!("部署节点 {zone} 存储类型 {class} 需要 {need_gib} GiB，仅剩 {free_gib} GiB")
            }
            IndexError::BandwidthOvercommit {
                zone,
                network_area,
                need_mbps,
                free_mbps,
            } => format!(
                "部署节点 {zone} 网络区域 {network_area} 需要带宽 {need_mbps} Mbps，仅剩 {free_mbps} Mbps"
            ),
            IndexError::PublicIpsOvercommit {
                zone,
                network_area,
                need,
                free,
            } => format!(
                "部署节点 {zone} 网络区域 {network_area} 需要 {need} 个公网 IP，仅剩 {free} 个"
            ),
        }
    }
}

/// One provider's whole inventory, for [`Index::sync_provider`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderInventory {
    pub pools: Vec<PoolSpec>,
    pub hosts: Vec<HostSpec>,
    pub storage_classes: Vec<StorageClassSpec>,
    pub bandwidth: Vec<BandwidthSpec>,
    pub public_ips: Vec<PublicIpSpec>,
}

/// Key of a schedulable host in its pool's ordered set: (free memory MiB,
/// `u32::MAX - rank`, host slot). The inverted rank makes a walk from the right
/// end meet equal free memory in ascending host-id order (Spread's tie-break);
/// the slot only finds the host.
pub(crate) type FreeKey = (u64, u32, u32);

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PoolEntry {
    pub(crate) spec: PoolSpec,
    /// Host slots sorted by host id; a host's rank is its order here.
    pub(crate) members: Vec<u32>,
    /// Schedulable (`Ready`) hosts only, so walks never skip down hosts.
    pub(crate) by_free: BTreeSet<FreeKey>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HostEntry {
    pub(crate) id: HostId,
    pub(crate) pool: u32,
    pub(crate) cores: u32,
    pub(crate) memory_mib: u64,
    pub(crate) reserved_memory_mib: u64,
    pub(crate) state: HostState,
    pub(crate) model: Option<String>,
    /// Order of the host id within its pool; gaps allowed, order preserved.
    pub(crate) rank: u32,
    pub(crate) used_memory_mib: u64,
    pub(crate) used_vcpu: u64,
    pub(crate) allocations: u32,
}

impl HostEntry {
    pub(crate) fn allocatable_mib(&self) -> u64 {
        self.memory_mib.saturating_sub(self.reserved_memory_mib)
    }
    /// Saturates: a host shrunk under its allocations has 0 free, not a wrap.
    pub(crate) fn free_memory_mib(&self) -> u64 {
        self.allocatable_mib().saturating_sub(self.used_memory_mib)
    }
    pub(crate) fn vcpu_capacity(&self, ratio: u32) -> u64 {
        u64::from(self.cores) * u64::from(ratio)
    }
    pub(crate) fn free_vcpu(&self, ratio: u32) -> u64 {
        self.vcpu_capacity(ratio).saturating_sub(self.used_vcpu)
    }
    fn key(&self, slot: u32) -> FreeKey {
        (self.free_memory_mib(), u32::MAX - self.rank, slot)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Allocation {
    pub(crate) host: u32,
    pub(crate) shape: VmShape,
}

/// The placement index. Rebuild it after a restart from the driver inventory
/// ([`Index::sync_provider`] or the `upsert_*` calls) and then the stored
/// reservations ([`Index::reserve_on`]), in that order; keep it current from
/// watch events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Index {
    pub(crate) pools: Vec<Option<PoolEntry>>,
    pub(crate) pool_slots: HashMap<PoolRef, u32>,
    /// Pool slots per key, sorted by pool ref so multi-pool ties are deterministic.
    pub(crate) pools_by_key: HashMap<PoolKey, Vec<u32>>,
    pub(crate) hosts: Vec<Option<HostEntry>>,
    pub(crate) host_slots: HashMap<HostRef, u32>,
    free_host_slots: Vec<u32>,
    pub(crate) allocations: HashMap<ResourceId, Allocation>,
    /// Allocations of resources not on a host (volumes, EIPs).
    pub(crate) shared_allocations: HashMap<ResourceId, SharedRequest>,
    pub(crate) storage: HashMap<StorageKey, Usage>,
    pub(crate) bandwidth: HashMap<AreaKey, Usage>,
    pub(crate) public_ips: HashMap<AreaKey, Usage>,
    /// Host slots holding a member of each anti-affinity group.
    /// Counts, not a set: a soft group may hold several members on one host,
    /// and the host stays taken until the last of them is released.
    pub(crate) groups: HashMap<AntiAffinityGroup, HashMap<u32, u32>>,
}

fn pool_name(r: &PoolRef) -> String {
    format!("{}/{}", r.provider, r.pool)
}

fn host_name(provider: &ProviderId, host: &HostId) -> String {
    format!("{provider}/{host}")
}

impl Index {
    pub fn new() -> Self {
        Index::default()
    }

    pub(crate) fn pool(&self, slot: u32) -> &PoolEntry {
        match self.pools.get(slot as usize) {
            Some(Some(p)) => p,
            // Slots are only handed out by this module and pools with hosts are
            // never removed, so a dangling slot is a bug here, not bad input.
            _ => unreachable!("pool slot {slot} dangling"),
        }
    }

    pub(crate) fn host(&self, slot: u32) -> &HostEntry {
        match self.hosts.get(slot as usize) {
            Some(Some(h)) => h,
            _ => unreachable!("host slot {slot} dangling"),
        }
    }

    fn host_mut(&mut self, slot: u32) -> &mut HostEntry {
        match self.hosts.get_mut(slot as usize) {
            Some(Some(h)) => h,
            _ => unreachable!("host slot {slot} dangling"),
        }
    }

    fn pool_mut(&mut self, slot: u32) -> &mut PoolEntry {
        match self.pools.get_mut(slot as usize) {
            Some(Some(p)) => p,
            _ => unreachable!("pool slot {slot} dangling"),
        }
    }

    pub(crate) fn host_ref(&self, slot: u32) -> HostRef {
        let h = self.host(slot);
        HostRef {
            provider: self.pool(h.pool).spec.key.provider.clone(),
            host: h.id.clone(),
        }
    }

    /// Takes the host out of its pool's ordered set before its free figure changes.
    fn unlist(&mut self, slot: u32) {
        let h = self.host(slot);
        if h.state == HostState::Ready {
            let (pool, key) = (h.pool, h.key(slot));
            self.pool_mut(pool).by_free.remove(&key);
        }
    }

    /// Puts the host back with its current free figure (if schedulable).
    fn list(&mut self, slot: u32) {
        let h = self.host(slot);
        if h.state == HostState::Ready {
            let (pool, key) = (h.pool, h.key(slot));
            self.pool_mut(pool).by_free.insert(key);
        }
    }

    // ------------------------------------------------------------ pools

    /// Adds or updates a pool. Idempotent. A ratio change keeps allocations (free
    /// vCPU may drop to 0). Errors: `PoolRatioInvalid` outside 1..=4;
    /// `PoolKeyChanged` when a pool with hosts would change provider, zone, area
    /// or architecture (its allocations were checked against the old key).
    pub fn upsert_pool(&mut self, spec: PoolSpec) -> Result<(), IndexError> {
        let pref = spec.pool_ref();
        if !(1..=MAX_VCPU_RATIO).contains(&spec.vcpu_ratio) {
            return Err(IndexError::PoolRatioInvalid {
                pool: pool_name(&pref),
                ratio: spec.vcpu_ratio,
                max: MAX_VCPU_RATIO,
            });
        }
        if let Some(&slot) = self.pool_slots.get(&pref) {
            let old_key = self.pool(slot).spec.key.clone();
            if old_key != spec.key {
                if !self.pool(slot).members.is_empty() {
                    return Err(IndexError::PoolKeyChanged {
                        pool: pool_name(&pref),
                    });
                }
                self.unindex_pool_key(&old_key, slot);
                self.index_pool_key(spec.key.clone(), slot);
            }
            self.pool_mut(slot).spec = spec;
            return Ok(());
        }
        let slot = u32::try_from(self.pools.len()).unwrap_or(u32::MAX);
        let key = spec.key.clone();
        self.pools.push(Some(PoolEntry {
            spec,
            members: Vec::new(),
            by_free: BTreeSet::new(),
        }));
        self.pool_slots.insert(pref, slot);
        self.index_pool_key(key, slot);
        Ok(())
    }

    fn index_pool_key(&mut self, key: PoolKey, slot: u32) {
        let mut slots = self.pools_by_key.remove(&key).unwrap_or_default();
        slots.push(slot);
        slots.sort_by(|a, b| self.pool(*a).spec.id.cmp(&self.pool(*b).spec.id));
        self.pools_by_key.insert(key, slots);
    }

    fn unindex_pool_key(&mut self, key: &PoolKey, slot: u32) {
        if let Some(slots) = self.pools_by_key.get_mut(key) {
            slots.retain(|s| *s != slot);
            if slots.is_empty() {
                self.pools_by_key.remove(key);
            }
        }
    }

    /// Removes an empty pool; `Ok(false)` if it was not there (idempotent).
    /// `PoolNotEmpty` while it has hosts.
    pub fn remove_pool(&mut self, pool: &PoolRef) -> Result<bool, IndexError> {
        let Some(&slot) = self.pool_slots.get(pool) else {
            return Ok(false);
        };
        if !self.pool(slot).members.is_empty() {
            return Err(IndexError::PoolNotEmpty {
                pool: pool_name(pool),
            });
        }
        let key = self.pool(slot).spec.key.clone();
        self.unindex_pool_key(&key, slot);
        self.pool_slots.remove(pool);
        // The slot stays empty: pools are few, and reuse would need a free list.
        self.pools[slot as usize] = None;
        Ok(true)
    }

    // ------------------------------------------------------------ hosts

    /// Adds or updates a host (inventory rebuild or a watch event). Idempotent.
    /// A host that shrinks or goes down keeps its allocations; only its free
    /// figures drop (never below 0). Errors: `HostCoresZero`,
    /// `HostReserveExceedsMemory`, `PoolUnknown`, `HostHasAllocations` when it would move pool
    /// while holding VMs.
    pub fn upsert_host(&mut self, spec: HostSpec) -> Result<(), IndexError> {
        let href = spec.host_ref();
        let name = || host_name(&spec.provider, &spec.id);
        if spec.cores == 0 {
            return Err(IndexError::HostCoresZero { host: name() });
        }
        if spec.reserved_memory_mib >= spec.memory_mib {
            return Err(IndexError::HostReserveExceedsMemory {
                host: name(),
                memory_mib: spec.memory_mib,
                reserved_mib: spec.reserved_memory_mib,
            });
        }
        let pref = PoolRef {
            provider: spec.provider.clone(),
            pool: spec.pool.clone(),
        };
        let Some(&pool) = self.pool_slots.get(&pref) else {
            return Err(IndexError::PoolUnknown {
                host: name(),
                pool: pool_name(&pref),
            });
        };
        if let Some(&slot) = self.host_slots.get(&href) {
            let h = self.host(slot);
            if h.pool != pool {
                if h.allocations > 0 {
                    return Err(IndexError::HostHasAllocations {
                        host: name(),
                        allocations: h.allocations,
                    });
                }
                self.detach_host(slot);
                self.host_mut(slot).pool = pool;
                self.attach_host(slot);
            }
            self.unlist(slot);
            let h = self.host_mut(slot);
            h.cores = spec.cores;
            h.memory_mib = spec.memory_mib;
            h.reserved_memory_mib = spec.reserved_memory_mib;
            h.state = spec.state;
            h.model = spec.model;
            self.list(slot);
            return Ok(());
        }
        let entry = HostEntry {
            id: spec.id,
            pool,
            cores: spec.cores,
            memory_mib: spec.memory_mib,
            reserved_memory_mib: spec.reserved_memory_mib,
            state: spec.state,
            model: spec.model,
            rank: 0,
            used_memory_mib: 0,
            used_vcpu: 0,
            allocations: 0,
        };
        let slot = match self.free_host_slots.pop() {
            Some(s) => {
                self.hosts[s as usize] = Some(entry);
                s
            }
            None => {
                self.hosts.push(Some(entry));
                u32::try_from(self.hosts.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.host_slots.insert(href, slot);
        self.attach_host(slot);
        Ok(())
    }

    /// Adds an unlisted host to its pool's members with an order-preserving rank,
    /// then lists it.
    fn attach_host(&mut self, slot: u32) {
        let pool = self.host(slot).pool;
        let last = self.pool(pool).members.last().copied();
        match last {
            // Inventory arrives sorted (sync_provider sorts), so the common case
            // appends with the next rank.
            None => self.host_mut(slot).rank = 0,
            Some(l) if self.host(l).id < self.host(slot).id => {
                let next = self.host(l).rank.saturating_add(1);
                if next == u32::MAX {
                    self.pool_mut(pool).members.push(slot);
                    self.renumber(pool);
                    return;
                }
                self.host_mut(slot).rank = next;
            }
            Some(_) => {
                let members = &self.pool(pool).members;
                let id = &self.host(slot).id;
                let at = members.partition_point(|m| self.host(*m).id < *id);
                self.pool_mut(pool).members.insert(at, slot);
                self.renumber(pool);
                return;
            }
        }
        self.pool_mut(pool).members.push(slot);
        self.list(slot);
    }

    /// Gives every member rank = position and rebuilds the ordered set. O(n log n)
    /// for the pool; only when a host id arrives out of order.
    fn renumber(&mut self, pool: u32) {
        let members = std::mem::take(&mut self.pool_mut(pool).members);
        let mut set = BTreeSet::new();
        for (rank, &m) in members.iter().enumerate() {
            let h = self.host_mut(m);
            h.rank = u32::try_from(rank).unwrap_or(u32::MAX - 1);
            if h.state == HostState::Ready {
                set.insert(h.key(m));
            }
        }
        let p = self.pool_mut(pool);
        p.members = members;
        p.by_free = set;
    }

    fn detach_host(&mut self, slot: u32) {
        self.unlist(slot);
        let pool = self.host(slot).pool;
        self.pool_mut(pool).members.retain(|m| *m != slot);
    }

    /// Sets a host's state from a `HostChanged` watch event. Only `Ready` hosts
    /// take new VMs; the others keep theirs.
    pub fn set_host_state(&mut self, host: &HostRef, state: HostState) -> Result<(), IndexError> {
        let slot = self.host_slot(host)?;
        self.unlist(slot);
        self.host_mut(slot).state = state;
        self.list(slot);
        Ok(())
    }

    /// Removes a host; `Ok(false)` if it was not there (idempotent).
    /// `HostHasAllocations` while VMs are recorded on it: mark it down instead, or
    /// release them first.
    pub fn remove_host(&mut self, host: &HostRef) -> Result<bool, IndexError> {
        let Some(&slot) = self.host_slots.get(host) else {
            return Ok(false);
        };
        let allocations = self.host(slot).allocations;
        if allocations > 0 {
            return Err(IndexError::HostHasAllocations {
                host: host_name(&host.provider, &host.host),
                allocations,
            });
        }
        self.detach_host(slot);
        self.host_slots.remove(host);
        self.hosts[slot as usize] = None;
        self.free_host_slots.push(slot);
        Ok(true)
    }

    fn host_slot(&self, host: &HostRef) -> Result<u32, IndexError> {
        self.host_slots
            .get(host)
            .copied()
            .ok_or_else(|| IndexError::HostUnknown {
                host: host_name(&host.provider, &host.host),
            })
    }

    // ------------------------------------------------------------ zone-level capacity

    /// Sets a storage class's capacity; allocations are kept (free may drop to 0).
    pub fn upsert_storage_class(&mut self, spec: StorageClassSpec) {
        self.storage.entry(spec.key).or_default().total = spec.capacity_gib;
    }

    /// Removes a storage class. While disks are still charged to it, it stays
    /// with capacity 0 so their release still balances.
    pub fn remove_storage_class(&mut self, key: &StorageKey) {
        remove_usage(&mut self.storage, key);
    }

    /// Sets an area's bandwidth; allocations are kept.
    pub fn upsert_bandwidth(&mut self, spec: BandwidthSpec) {
        self.bandwidth.entry(spec.area).or_default().total = spec.total_mbps;
    }

    /// Sets an area's public IP count; allocations are kept.
    pub fn upsert_public_ips(&mut self, spec: PublicIpSpec) {
        self.public_ips.entry(spec.area).or_default().total = spec.total;
    }

    /// Replaces everything the index knows of one provider with `inventory`, all
    /// or nothing (a refused item leaves the index unchanged). Hosts missing from
    /// the inventory are removed, or marked `Down` while they still hold
    /// allocations; pools missing and empty are removed; missing capacities drop
    /// to 0 (kept while allocated, so releases balance).
    pub fn sync_provider(
        &mut self,
        provider: &ProviderId,
        inventory: ProviderInventory,
    ) -> Result<(), IndexError> {
        let mut next = self.clone();
        next.sync_provider_in_place(provider, inventory)?;
        *self = next;
        Ok(())
    }

    fn sync_provider_in_place(
        &mut self,
        provider: &ProviderId,
        mut inv: ProviderInventory,
    ) -> Result<(), IndexError> {
        inv.pools.retain(|p| &p.key.provider == provider);
        inv.hosts.retain(|h| &h.provider == provider);
        let pools: HashSet<PoolRef> = inv.pools.iter().map(PoolSpec::pool_ref).collect();
        let hosts: HashSet<HostRef> = inv.hosts.iter().map(HostSpec::host_ref).collect();

        // Hosts first out of pools that go away, so an emptied pool can be removed.
        let mut stale: Vec<HostRef> = self
            .host_slots
            .keys()
            .filter(|h| &h.provider == provider && !hosts.contains(*h))
            .cloned()
            .collect();
        stale.sort();
        for h in stale {
            let slot = self.host_slot(&h)?;
            if self.host(slot).allocations > 0 {
                self.set_host_state(&h, HostState::Down)?;
            } else {
                self.remove_host(&h)?;
            }
        }
        for p in inv.pools {
            self.upsert_pool(p)?;
        }
        // Sorted, so ranks are appended instead of renumbered.
        inv.hosts.sort_by(|a, b| a.id.cmp(&b.id));
        for h in inv.hosts {
            self.upsert_host(h)?;
        }
        let mut stale_pools: Vec<PoolRef> = self
            .pool_slots
            .keys()
            .filter(|p| &p.provider == provider && !pools.contains(*p))
            .cloned()
            .collect();
        stale_pools.sort();
        for p in stale_pools {
            let slot = self.pool_slots[&p];
            if self.pool(slot).members.is_empty() {
                self.remove_pool(&p)?;
            }
        }

        let storage: HashSet<StorageKey> =
            inv.storage_classes.iter().map(|s| s.key.clone()).collect();
        let stale: Vec<StorageKey> = self
            .storage
            .keys()
            .filter(|k| &k.provider == provider && !storage.contains(*k))
            .cloned()
            .collect();
        for k in stale {
            remove_usage(&mut self.storage, &k);
        }
        for s in inv.storage_classes {
            self.upsert_storage_class(s);
        }
        let areas: HashSet<AreaKey> = inv.bandwidth.iter().map(|b| b.area.clone()).collect();
        let stale: Vec<AreaKey> = self
            .bandwidth
            .keys()
            .filter(|k| &k.provider == provider && !areas.contains(*k))
            .cloned()
            .collect();
        for k in stale {
            remove_usage(&mut self.bandwidth, &k);
        }
        for b in inv.bandwidth {
            self.upsert_bandwidth(b);
        }
        let areas: HashSet<AreaKey> = inv.public_ips.iter().map(|b| b.area.clone()).collect();
        let stale: Vec<AreaKey> = self
            .public_ips
            .keys()
            .filter(|k| &k.provider == provider && !areas.contains(*k))
            .cloned()
            .collect();
        for k in stale {
            remove_usage(&mut self.public_ips, &k);
        }
        for ip in inv.public_ips {
            self.upsert_public_ips(ip);
        }
        Ok(())
    }

    // ------------------------------------------------------------ allocations

    /// Records an allocation on a named host: the rebuild path after a restart
    /// (stored reservations) and the path for VMs placed elsewhere. Enforces
    /// every hard rule except matching and schedulability (a VM that exists on a
    /// host in maintenance is still there): memory never overcommitted, vCPU ≤
    /// ratio × cores, storage, bandwidth, public IPs, anti-affinity. Idempotent
    /// for the same host and shape; `AllocationExists` otherwise. On error nothing
    /// is recorded.
    pub fn reserve_on(
        &mut self,
        host: &HostRef,
        alloc: ResourceId,
        shape: VmShape,
    ) -> Result<Placement, IndexError> {
        if !shape.is_valid() {
            return Err(IndexError::ShapeInvalid {
                vcpu: shape.vcpu,
                memory_mib: shape.memory_mib,
            });
        }
        let slot = self.host_slot(host)?;
        if let Some(existing) = self.allocations.get(&alloc) {
            if existing.host == slot && existing.shape == shape {
                return Ok(self.placement(&alloc, slot));
            }
            return Err(IndexError::AllocationExists {
                alloc: alloc.to_string(),
                host: self.host(existing.host).id.to_string(),
            });
        }
        self.check_host(slot, &shape)
            .map_err(|e| e.into_error(host))?;
        let key = self.pool(self.host(slot).pool).spec.key.clone();
        self.check_shared(&key, &shape)?;
        self.apply(slot, alloc.clone(), shape);
        Ok(self.placement(&alloc, slot))
    }

    /// The host-level hard rules for `shape` on `slot`, ignoring schedulability.
    pub(crate) fn check_host(&self, slot: u32, shape: &VmShape) -> Result<(), HostMiss> {
        let h = self.host(slot);
        let ratio = self.pool(h.pool).spec.vcpu_ratio;
        if h.free_memory_mib() < shape.memory_mib {
            return Err(HostMiss::Memory {
                need: shape.memory_mib,
                free: h.free_memory_mib(),
            });
        }
        if h.free_vcpu(ratio) < u64::from(shape.vcpu) {
            return Err(HostMiss::Vcpu {
                need: u64::from(shape.vcpu),
                free: h.free_vcpu(ratio),
            });
        }
        // A soft group's member may share a host: the rebuild path records
        // where it already is, and `choose` only shares when nothing else fits.
        if let Some(g) = &shape.anti_affinity
            && !shape.anti_affinity_soft
            && self.groups.get(g).is_some_and(|s| s.contains_key(&slot))
        {
            return Err(HostMiss::Group(g.clone()));
        }
        Ok(())
    }

    /// The zone-level rules: storage per class, bandwidth and public IPs of the area.
    pub(crate) fn check_shared(&self, key: &PoolKey, shape: &VmShape) -> Result<(), IndexError> {
        for (class, need) in shape.storage_by_class() {
            if need == 0 {
                continue;
            }
            let free = self
                .storage
                .get(&storage_key(key, class))
                .map_or(0, Usage::free);
            if free < need {
                return Err(IndexError::StorageOvercommit {
                    zone: key.zone.to_string(),
                    class: class.to_string(),
                    need_gib: need,
                    free_gib: free,
                });
            }
        }
        let area = area_key(key);
        if shape.bandwidth_mbps > 0 {
            let free = self.bandwidth.get(&area).map_or(0, Usage::free);
            if free < shape.bandwidth_mbps {
                return Err(IndexError::BandwidthOvercommit {
                    zone: key.zone.to_string(),
                    network_area: key.network_area.to_string(),
                    need_mbps: shape.bandwidth_mbps,
                    free_mbps: free,
                });
            }
        }
        if shape.public_ips > 0 {
            let free = self.public_ips.get(&area).map_or(0, Usage::free);
            if free < shape.public_ips {
                return Err(IndexError::PublicIpsOvercommit {
                    zone: key.zone.to_string(),
                    network_area: key.network_area.to_string(),
                    need: shape.public_ips,
                    free,
                });
            }
        }
        Ok(())
    }

    /// Charges `shape` to host `slot` and the zone-level figures. Callers have
    /// checked the rules; this only does arithmetic.
    pub(crate) fn apply(&mut self, slot: u32, alloc: ResourceId, shape: VmShape) {
        self.unlist(slot);
        let h = self.host_mut(slot);
        h.used_memory_mib = h.used_memory_mib.saturating_add(shape.memory_mib);
        h.used_vcpu = h.used_vcpu.saturating_add(u64::from(shape.vcpu));
        h.allocations += 1;
        self.list(slot);
        let key = self.pool(self.host(slot).pool).spec.key.clone();
        self.charge_shared(&key, &shape, true);
        if let Some(g) = &shape.anti_affinity {
            *self
                .groups
                .entry(g.clone())
                .or_default()
                .entry(slot)
                .or_default() += 1;
        }
        self.allocations
            .insert(alloc, Allocation { host: slot, shape });
    }

    fn charge_shared(&mut self, key: &PoolKey, shape: &VmShape, add: bool) {
        let change = |u: &mut Usage, n: u64| {
            u.allocated = if add {
                u.allocated.saturating_add(n)
            } else {
                u.allocated.saturating_sub(n)
            };
        };
        for (class, gib) in shape.storage_by_class() {
            if gib > 0 {
                change(
                    self.storage.entry(storage_key(key, class)).or_default(),
                    gib,
                );
            }
        }
        let area = area_key(key);
        if shape.bandwidth_mbps > 0 {
            change(
                self.bandwidth.entry(area.clone()).or_default(),
                shape.bandwidth_mbps,
            );
        }
        if shape.public_ips > 0 {
            change(self.public_ips.entry(area).or_default(), shape.public_ips);
        }
    }

    /// Releases an allocation (exit orders, rollback). Idempotent: `None` when it
    /// was not there. Gives back exactly what the reservation took.
    pub fn release(&mut self, alloc: &ResourceId) -> Option<Placement> {
        if self.release_shared(alloc) {
            return None;
        }
        self.release_host(alloc)
    }

    /// Releases whatever `alloc` holds, on a host or zone-level; whether it
    /// held anything.
    pub fn release_any(&mut self, alloc: &ResourceId) -> bool {
        self.release_shared(alloc) || self.release_host(alloc).is_some()
    }

    fn release_host(&mut self, alloc: &ResourceId) -> Option<Placement> {
        let placement = {
            let a = self.allocations.get(alloc)?;
            self.placement(alloc, a.host)
        };
        let Allocation { host: slot, shape } = self.allocations.remove(alloc)?;
        self.unlist(slot);
        let h = self.host_mut(slot);
        h.used_memory_mib = h.used_memory_mib.saturating_sub(shape.memory_mib);
        h.used_vcpu = h.used_vcpu.saturating_sub(u64::from(shape.vcpu));
        h.allocations = h.allocations.saturating_sub(1);
        self.list(slot);
        let key = self.pool(self.host(slot).pool).spec.key.clone();
        self.charge_shared(&key, &shape, false);
        if let Some(g) = &shape.anti_affinity
            && let Some(set) = self.groups.get_mut(g)
        {
            if let Some(n) = set.get_mut(&slot) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    set.remove(&slot);
                }
            }
            if set.is_empty() {
                self.groups.remove(g);
            }
        }
        Some(placement)
    }

    /// Where an allocation is, if recorded.
    pub fn allocation(&self, alloc: &ResourceId) -> Option<Placement> {
        self.allocations
            .get(alloc)
            .map(|a| self.placement(alloc, a.host))
    }

    /// The allocations on `provider`'s hosts (a resync of one driver).
    pub fn allocations_of(&self, provider: &str) -> Vec<ResourceId> {
        self.allocations
            .iter()
            .filter(|(_, a)| {
                self.pool(self.host(a.host).pool).spec.key.provider.as_str() == provider
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Number of recorded allocations (on hosts and zone-level).
    pub fn allocation_count(&self) -> usize {
        self.allocations.len() + self.shared_allocations.len()
    }

    pub(crate) fn placement(&self, alloc: &ResourceId, slot: u32) -> Placement {
        let h = self.host(slot);
        let p = &self.pool(h.pool).spec;
        Placement {
            alloc: alloc.clone(),
            provider: p.key.provider.clone(),
            zone: p.key.zone.clone(),
            network_area: p.key.network_area.clone(),
            pool: p.id.clone(),
            host: h.id.clone(),
        }
    }
}

/// Which host-level rule a host failed, for `reserve_on` errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostMiss {
    Memory { need: u64, free: u64 },
    Vcpu { need: u64, free: u64 },
    Group(AntiAffinityGroup),
}

impl HostMiss {
    fn into_error(self, host: &HostRef) -> IndexError {
        let host = host_name(&host.provider, &host.host);
        match self {
            HostMiss::Memory { need, free } => IndexError::MemoryOvercommit {
                host,
                need_mib: need,
                free_mib: free,
            },
            HostMiss::Vcpu { need, free } => IndexError::VcpuOvercommit { host, need, free },
            HostMiss::Group(g) => IndexError::AntiAffinityConflict {
                host,
                group: g.to_string(),
            },
        }
    }
}

pub(crate) fn storage_key(key: &PoolKey, class: &StorageClassId) -> StorageKey {
    StorageKey {
        provider: key.provider.clone(),
        zone: key.zone.clone(),
        class: class.clone(),
    }
}

pub(crate) fn area_key(key: &PoolKey) -> AreaKey {
    AreaKey {
        provider: key.provider.clone(),
        zone: key.zone.clone(),
        network_area: key.network_area.clone(),
    }
}

fn remove_usage<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Usage>, key: &K) {
    match map.get_mut(key) {
        Some(u) if u.allocated > 0 => u.total = 0,
        Some(_) => {
            map.remove(key);
        }
        None => {}
    }
}
