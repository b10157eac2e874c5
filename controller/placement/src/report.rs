//! The capacity report: per pool, total / allocated / free of every resource, the
//! allocated ratio, and fragmentation — the largest VM that can still be placed
//! right now — so an aggregate 70 % that hides "no host fits a 64-vCPU VM" shows.
//!
//! Owns read-only views of the index. Must not change it nor decide placements.

use serde::Serialize;
use yunshu_domain::{
    ids::{HostId, StorageClassId},
    provider::{HostState, NetworkAreaKind},
};

use crate::index::{Index, area_key};
use crate::model::{HostRef, PoolKey, PoolRef};

/// Total, allocated and free of one resource. `allocated` may exceed `total`
/// after an inventory shrink (existing allocations are kept); `free` is then 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub total: u64,
    pub allocated: u64,
}

impl Usage {
    pub fn free(&self) -> u64 {
        self.total.saturating_sub(self.allocated)
    }

    /// allocated / total; 0 for an unused resource with no capacity, 1 for an
    /// allocated one with none (so it shows as full, never as NaN).
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            return if self.allocated == 0 { 0.0 } else { 1.0 };
        }
        self.allocated as f64 / self.total as f64
    }
}

/// Room on one schedulable host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShapeRoom {
    pub host: HostId,
    pub free_memory_mib: u64,
    pub free_vcpu: u64,
}

/// The largest VM shapes that fit right now (schedulable hosts only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LargestShape {
    /// The host with the most free memory (ties: smaller host id) and its free
    /// vCPU: the biggest-memory VM has at most this many vCPU.
    pub by_memory: Option<ShapeRoom>,
    /// The host with the most free vCPU (ties: smaller host id) and its free memory.
    pub by_vcpu: Option<ShapeRoom>,
}

/// One resource of a pool, for [`PoolCapacity::over_threshold`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "resource", content = "class", rename_all = "snake_case")]
pub enum Resource {
    Vcpu,
    Memory,
    Storage(StorageClassId),
    Bandwidth,
    PublicIps,
}

/// Capacity of one pool. Memory and vCPU count every host of the pool (down and
/// maintenance hosts too: their VMs still use them); storage, bandwidth and
/// public IPs are the zone / area figures the pool shares with its neighbours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolCapacity {
    pub pool: PoolRef,
    pub key: PoolKey,
    pub area_kind: NetworkAreaKind,
    pub vcpu_ratio: u32,
    pub hosts: u32,
    pub hosts_schedulable: u32,
    /// ratio × cores.
    pub vcpu: Usage,
    /// memory − reserve.
    pub memory_mib: Usage,
    /// Sorted by class.
    pub storage_gib: Vec<(StorageClassId, Usage)>,
    pub bandwidth_mbps: Usage,
    pub public_ips: Usage,
    pub largest: LargestShape,
}

impl PoolCapacity {
    /// Resources whose allocated ratio is above `threshold` (e.g. 0.80), with the
    /// ratio, in a fixed order: vCPU, memory, storage by class, bandwidth, IPs.
    pub fn over_threshold(&self, threshold: f64) -> Vec<(Resource, f64)> {
        let mut all = vec![
            (Resource::Vcpu, self.vcpu.ratio()),
            (Resource::Memory, self.memory_mib.ratio()),
        ];
        for (class, u) in &self.storage_gib {
            all.push((Resource::Storage(class.clone()), u.ratio()));
        }
        all.push((Resource::Bandwidth, self.bandwidth_mbps.ratio()));
        all.push((Resource::PublicIps, self.public_ips.ratio()));
        all.retain(|(_, r)| *r > threshold);
        all
    }
}

/// One host's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostUsage {
    pub host: HostRef,
    pub pool: PoolRef,
    pub state: HostState,
    pub vcpu: Usage,
    pub memory_mib: Usage,
    pub allocations: u32,
}

impl Index {
    /// The capacity of one pool; `None` if it is not in the index. O(hosts of the pool).
    pub fn capacity(&self, pool: &PoolRef) -> Option<PoolCapacity> {
        let slot = *self.pool_slots.get(pool)?;
        let p = self.pool(slot);
        let ratio = p.spec.vcpu_ratio;
        let (mut vcpu, mut memory) = (Usage::default(), Usage::default());
        let mut schedulable = 0;
        let mut largest = LargestShape::default();
        // Members are in host-id order, so strict `>` keeps the smaller id on ties.
        for &m in &p.members {
            let h = self.host(m);
            vcpu.total += h.vcpu_capacity(ratio);
            vcpu.allocated += h.used_vcpu;
            memory.total += h.allocatable_mib();
            memory.allocated += h.used_memory_mib;
            if h.state != HostState::Ready {
                continue;
            }
            schedulable += 1;
            let room = ShapeRoom {
                host: h.id.clone(),
                free_memory_mib: h.free_memory_mib(),
                free_vcpu: h.free_vcpu(ratio),
            };
            if largest
                .by_memory
                .as_ref()
                .is_none_or(|b| room.free_memory_mib > b.free_memory_mib)
            {
                largest.by_memory = Some(room.clone());
            }
            if largest
                .by_vcpu
                .as_ref()
                .is_none_or(|b| room.free_vcpu > b.free_vcpu)
            {
                largest.by_vcpu = Some(room);
            }
        }
        let key = &p.spec.key;
        let mut storage_gib: Vec<(StorageClassId, Usage)> = self
            .storage
            .iter()
            .filter(|(k, _)| k.provider == key.provider && k.zone == key.zone)
            .map(|(k, u)| (k.class.clone(), *u))
            .collect();
        storage_gib.sort_by(|a, b| a.0.cmp(&b.0));
        let area = area_key(key);
        Some(PoolCapacity {
            pool: pool.clone(),
            key: key.clone(),
            area_kind: p.spec.area_kind,
            vcpu_ratio: ratio,
            hosts: u32::try_from(p.members.len()).unwrap_or(u32::MAX),
            hosts_schedulable: schedulable,
            vcpu,
            memory_mib: memory,
            storage_gib,
            bandwidth_mbps: self.bandwidth.get(&area).copied().unwrap_or_default(),
            public_ips: self.public_ips.get(&area).copied().unwrap_or_default(),
            largest,
        })
    }

    /// Every pool's capacity, sorted by pool.
    pub fn capacity_report(&self) -> Vec<PoolCapacity> {
        let mut pools: Vec<&PoolRef> = self.pool_slots.keys().collect();
        pools.sort();
        pools.into_iter().filter_map(|p| self.capacity(p)).collect()
    }

    /// Which resources of `pool` are above `threshold` (e.g. 0.80); empty for an
    /// unknown pool.
    pub fn over_threshold(&self, pool: &PoolRef, threshold: f64) -> Vec<(Resource, f64)> {
        self.capacity(pool)
            .map(|c| c.over_threshold(threshold))
            .unwrap_or_default()
    }

    /// One host's figures; `None` if it is not in the index.
    pub fn host_usage(&self, host: &HostRef) -> Option<HostUsage> {
        let slot = *self.host_slots.get(host)?;
        let h = self.host(slot);
        let p = &self.pool(h.pool).spec;
        Some(HostUsage {
            host: host.clone(),
            pool: p.pool_ref(),
            state: h.state,
            vcpu: Usage {
                total: h.vcpu_capacity(p.vcpu_ratio),
                allocated: h.used_vcpu,
            },
            memory_mib: Usage {
                total: h.allocatable_mib(),
                allocated: h.used_memory_mib,
            },
            allocations: h.allocations,
        })
    }
}
