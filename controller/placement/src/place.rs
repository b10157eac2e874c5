//! Choosing a host: [`Index::place`] for one VM, [`Index::place_all`] for an
//! order's VMs (all or nothing), and the diagnosis that turns a miss into a
//! [`Reason`].
//!
//! Owns the strategies and their tie-breaks. Must not change capacity figures
//! except through `Index::apply` / `Index::release`, so the index's invariants
//! stay in one module.
//!
//! A decision touches only the pools whose key matches and walks each pool's
//! ordered set from one end, skipping hosts that fail the vCPU or anti-affinity
//! rule; the full scan happens only on a miss, to explain it.

use std::collections::{HashMap, HashSet};

use yunshu_domain::{ResourceId, provider::HostState};

use crate::index::{HostEntry, Index, area_key, storage_key};
use crate::model::{Placement, Strategy, VmRequest, VmShape};
use crate::reason::{PoolLabel, Reason, Unschedulable};

/// A pool's best host for a request: (free memory, host slot).
type Candidate = (u64, u32);

impl Index {
    /// Places one VM and reserves its capacity. Idempotent: a request whose
    /// allocation already exists with the same shape and key returns the
    /// existing placement. Errors leave the index unchanged.
    pub fn place(
        &mut self,
        request: &VmRequest,
        strategy: Strategy,
    ) -> Result<Placement, Unschedulable> {
        let unschedulable = |reason| Unschedulable {
            alloc: request.alloc.clone(),
            reason,
        };
        if let Some(existing) = self.existing(request).map_err(unschedulable)? {
            return Ok(existing);
        }
        let slot = self.choose(request, strategy).map_err(unschedulable)?;
        self.apply(slot, request.alloc.clone(), request.shape.clone());
        Ok(self.placement(&request.alloc, slot))
    }

    /// Places every VM of an order or none: on the first VM that cannot be
    /// placed, everything this call reserved is released and the index is as
    /// before. Larger VMs are placed first (memory, then vCPU) because a greedy
    /// placement fails less often that way; the result is in request order.
    /// VMs already placed with the same shape are returned as they are.
    pub fn place_all(
        &mut self,
        requests: &[VmRequest],
        strategy: Strategy,
    ) -> Result<Vec<Placement>, Unschedulable> {
        let mut seen = HashSet::with_capacity(requests.len());
        for r in requests {
            if !seen.insert(&r.alloc) {
                return Err(Unschedulable {
                    alloc: r.alloc.clone(),
                    reason: Box::new(Reason::AllocationConflict { host: None }),
                });
            }
        }
        let mut order: Vec<usize> = (0..requests.len()).collect();
        order.sort_by(|&a, &b| {
            let (sa, sb) = (&requests[a].shape, &requests[b].shape);
            sb.memory_mib
                .cmp(&sa.memory_mib)
                .then(sb.vcpu.cmp(&sa.vcpu))
                .then(a.cmp(&b))
        });
        let mut placed: Vec<Option<Placement>> = vec![None; requests.len()];
        let mut new: Vec<ResourceId> = Vec::new();
        for i in order {
            let request = &requests[i];
            let result = match self.existing(request) {
                Ok(Some(p)) => Ok(p),
                Ok(None) => match self.choose(request, strategy) {
                    Ok(slot) => {
                        self.apply(slot, request.alloc.clone(), request.shape.clone());
                        new.push(request.alloc.clone());
                        Ok(self.placement(&request.alloc, slot))
                    }
                    Err(reason) => Err(reason),
                },
                Err(reason) => Err(reason),
            };
            match result {
                Ok(p) => placed[i] = Some(p),
                Err(reason) => {
                    // Reverse order, so each release sees the state its
                    // reservation left: the index returns to exactly before.
                    for alloc in new.iter().rev() {
                        self.release(alloc);
                    }
                    return Err(Unschedulable {
                        alloc: request.alloc.clone(),
                        reason,
                    });
                }
            }
        }
        Ok(placed.into_iter().flatten().collect())
    }

    /// The existing placement when the allocation is already recorded with the
    /// same shape and matching key; a conflict when recorded otherwise.
    fn existing(&self, request: &VmRequest) -> Result<Option<Placement>, Box<Reason>> {
        let Some(a) = self.allocations.get(&request.alloc) else {
            return Ok(None);
        };
        let pool = &self.pool(self.host(a.host).pool).spec;
        if a.shape == request.shape && pool.key == request.key {
            Ok(Some(self.placement(&request.alloc, a.host)))
        } else {
            Err(Box::new(Reason::AllocationConflict {
                host: Some(self.host_ref(a.host)),
            }))
        }
    }

    /// The host for `request` under `strategy`, or why there is none. Reads only.
    fn choose(&self, request: &VmRequest, strategy: Strategy) -> Result<u32, Box<Reason>> {
        let shape = &request.shape;
        if !shape.is_valid() {
            return Err(Box::new(Reason::ShapeInvalid {
                vcpu: shape.vcpu,
                memory_mib: shape.memory_mib,
            }));
        }
        let Some(pools) = self.pools_by_key.get(&request.key) else {
            return Err(Box::new(self.no_pool(request)));
        };
        if let Some(reason) = self.shared_reason(request) {
            return Err(Box::new(reason));
        }

        let group = shape
            .anti_affinity
            .as_ref()
            .and_then(|g| self.groups.get(g));
        let found = self.choose_among(pools, shape, strategy, group);
        // A soft group shares a host only when every host is taken or full:
        // the second walk drops just the group rule, every other rule holds.
        let found = match found {
            None if shape.anti_affinity_soft && group.is_some() => {
                self.choose_among(pools, shape, strategy, None)
            }
            found => found,
        };
        found.ok_or_else(|| Box::new(self.diagnose(request, pools)))
    }

    /// The best host in `pools` for `shape` that holds no member of `group`.
    fn choose_among(
        &self,
        pools: &[u32],
        shape: &VmShape,
        strategy: Strategy,
        group: Option<&HashMap<u32, u32>>,
    ) -> Option<u32> {
        let need_vcpu = u64::from(shape.vcpu);
        let mut best: Option<Candidate> = None;
        for &pool in pools {
            let p = self.pool(pool);
            let ratio = p.spec.vcpu_ratio;
            let fits = |slot: u32, h: &HostEntry| {
                h.free_vcpu(ratio) >= need_vcpu && !group.is_some_and(|g| g.contains_key(&slot))
            };
            let found = match strategy {
                // Right end first: most free memory; equal free memory meets
                // ascending host ids (inverted rank), so the first fit wins.
                Strategy::Spread => p
                    .by_free
                    .iter()
                    .rev()
                    .take_while(|(free, _, _)| *free >= shape.memory_mib)
                    .find(|(_, _, slot)| fits(*slot, self.host(*slot)))
                    .map(|&(free, _, slot)| (free, slot)),
                // Least free memory that fits. Within one free figure the walk
                // meets descending host ids, so look back for a smaller id.
                Strategy::Pack => {
                    let first = p
                        .by_free
                        .range((shape.memory_mib, 0, 0)..)
                        .find(|(_, _, slot)| fits(*slot, self.host(*slot)));
                    first.map(|&(free, inv_rank, slot)| {
                        let smaller_id = if inv_rank < u32::MAX {
                            p.by_free
                                .range((free, inv_rank + 1, 0)..=(free, u32::MAX, u32::MAX))
                                .rev()
                                .find(|(_, _, s)| fits(*s, self.host(*s)))
                                .map(|&(_, _, s)| s)
                        } else {
                            None
                        };
                        (free, smaller_id.unwrap_or(slot))
                    })
                }
            };
            if let Some(c) = found {
                best = Some(match best {
                    None => c,
                    Some(b) => self.better(strategy, b, c),
                });
            }
        }
        best.map(|(_, slot)| slot)
    }

    /// The better of two pools' candidates: strategy first, then host id, then
    /// pool id (pools are visited in pool-id order, so keeping `a` on a full tie
    /// keeps the smaller pool).
    fn better(&self, strategy: Strategy, a: Candidate, b: Candidate) -> Candidate {
        let by_free = match strategy {
            Strategy::Spread => b.0.cmp(&a.0),
            Strategy::Pack => a.0.cmp(&b.0),
        };
        let ord = by_free.then_with(|| self.host(a.1).id.cmp(&self.host(b.1).id));
        if ord.is_gt() { b } else { a }
    }

    fn no_pool(&self, request: &VmRequest) -> Reason {
        let k = &request.key;
        let mut available: Vec<_> = self
            .pools_by_key
            .keys()
            .filter(|o| {
                o.provider == k.provider && o.zone == k.zone && o.network_area == k.network_area
            })
            .map(|o| o.arch)
            .collect();
        available.sort();
        available.dedup();
        Reason::NoPool {
            key: k.clone(),
            available,
        }
    }

    /// The first zone-level shortfall (storage by class, bandwidth, public IPs),
    /// with the figures a reason shows.
    fn shared_reason(&self, request: &VmRequest) -> Option<Reason> {
        let k = &request.key;
        for (class, need) in request.shape.storage_by_class() {
            if need == 0 {
                continue;
            }
            match self.storage.get(&storage_key(k, class)) {
                None => {
                    return Some(Reason::StorageClassUnknown {
                        zone: k.zone.clone(),
                        class: class.clone(),
                    });
                }
                Some(u) if u.free() < need => {
                    return Some(Reason::StorageClassFull {
                        zone: k.zone.clone(),
                        class: class.clone(),
                        need_gib: need,
                        free_gib: u.free(),
                        total_gib: u.total,
                    });
                }
                Some(_) => {}
            }
        }
        let area = area_key(k);
        let need_mbps = request.shape.bandwidth_mbps;
        if need_mbps > 0 {
            let u = self.bandwidth.get(&area).copied().unwrap_or_default();
            if u.free() < need_mbps {
                return Some(Reason::BandwidthExhausted {
                    zone: k.zone.clone(),
                    network_area: k.network_area.clone(),
                    need_mbps,
                    free_mbps: u.free(),
                    total_mbps: u.total,
                });
            }
        }
        let need = request.shape.public_ips;
        if need > 0 {
            let u = self.public_ips.get(&area).copied().unwrap_or_default();
            if u.free() < need {
                return Some(Reason::PublicIpsExhausted {
                    zone: k.zone.clone(),
                    network_area: k.network_area.clone(),
                    need,
                    free: u.free(),
                    total: u.total,
                });
            }
        }
        None
    }

    /// Explains a miss by scanning every host of the matching pools, in the
    /// order an operator fixes things: hosts up, memory, vCPU, anti-affinity.
    fn diagnose(&self, request: &VmRequest, pools: &[u32]) -> Reason {
        let shape: &VmShape = &request.shape;
        let label = PoolLabel {
            key: request.key.clone(),
            area_kind: pools
                .first()
                .map(|&p| self.pool(p).spec.area_kind)
                .unwrap_or(yunshu_domain::provider::NetworkAreaKind::Dedicated),
        };
        let (mut hosts, mut down, mut maintenance) = (0u32, 0u32, 0u32);
        let (mut schedulable, mut mem_fit, mut vcpu_fit) = (0u32, 0u32, 0u32);
        let (mut largest_free_mib, mut largest_free_vcpu) = (0u64, 0u64);
        let mut ratio = 0;
        for &pool in pools {
            let p = self.pool(pool);
            ratio = ratio.max(p.spec.vcpu_ratio);
            for &slot in &p.members {
                let h = self.host(slot);
                hosts += 1;
                match h.state {
                    HostState::Ready => {}
                    HostState::Down => {
                        down += 1;
                        continue;
                    }
                    HostState::Maintenance => {
                        maintenance += 1;
                        continue;
                    }
                }
                schedulable += 1;
                largest_free_mib = largest_free_mib.max(h.free_memory_mib());
                if h.free_memory_mib() < shape.memory_mib {
                    continue;
                }
                mem_fit += 1;
                let free_vcpu = h.free_vcpu(p.spec.vcpu_ratio);
                largest_free_vcpu = largest_free_vcpu.max(free_vcpu);
                if free_vcpu >= u64::from(shape.vcpu) {
                    vcpu_fit += 1;
                }
            }
        }
        if schedulable == 0 {
            return Reason::NoSchedulableHost {
                pool: label,
                hosts,
                down,
                maintenance,
            };
        }
        if mem_fit == 0 {
            return Reason::Memory {
                pool: label,
                need_mib: shape.memory_mib,
                schedulable_hosts: schedulable,
                unschedulable_hosts: down + maintenance,
                largest_free_mib,
            };
        }
        if vcpu_fit == 0 {
            return Reason::VcpuRatio {
                pool: label,
                need_vcpu: shape.vcpu,
                need_mib: shape.memory_mib,
                vcpu_ratio: ratio,
                hosts_with_memory: mem_fit,
                schedulable_hosts: schedulable,
                largest_free_vcpu,
            };
        }
        match &shape.anti_affinity {
            Some(g) => Reason::AntiAffinity {
                pool: label,
                group: g.clone(),
                need_vcpu: shape.vcpu,
                need_mib: shape.memory_mib,
                hosts_fitting: vcpu_fit,
            },
            // A host fits every rule, so choose would have found it; answer with
            // the memory picture rather than panic if that ever disagrees.
            None => Reason::Memory {
                pool: label,
                need_mib: shape.memory_mib,
                schedulable_hosts: schedulable,
                unschedulable_hosts: down + maintenance,
                largest_free_mib,
            },
        }
    }
}

impl Index {
    /// Whether `alloc` could be placed right now, without reserving (a dry run
    /// for the approval screen). Same rules and reasons as [`Index::place`].
    pub fn check(
        &self,
        request: &VmRequest,
        strategy: Strategy,
    ) -> Result<Placement, Unschedulable> {
        let unschedulable = |reason| Unschedulable {
            alloc: request.alloc.clone(),
            reason,
        };
        if let Some(existing) = self.existing(request).map_err(unschedulable)? {
            return Ok(existing);
        }
        let slot = self.choose(request, strategy).map_err(unschedulable)?;
        Ok(self.placement(&request.alloc, slot))
    }
}
