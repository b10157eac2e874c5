//! Bare metal: a bare-metal server (物理服务器) takes a whole empty host of the
//! requested model out of the VM pool, and gives it back on release.
//!
//! The host is charged with all its allocatable memory and all its vCPUs, so
//! no VM can land on it while it is taken; the allocation is an ordinary one
//! (same release, same rebuild from stored placements with `reserve_on`).
//! Among the hosts that qualify the smallest is taken (least memory, then
//! fewest cores, then host id), so big hosts stay for what needs them.

use yunshu_domain::provider::HostState;

use crate::index::Index;
use crate::model::{BareMetalRequest, Placement, VmShape};
use crate::reason::{PoolLabel, Reason, Unschedulable};

impl Index {
    /// Places one bare-metal server. Idempotent: the same allocation id again
    /// returns where it is. Errors leave the index unchanged.
    pub fn place_bare_metal(
        &mut self,
        request: &BareMetalRequest,
    ) -> Result<Placement, Unschedulable> {
        let refuse = |reason: Reason| Unschedulable {
            alloc: request.alloc.clone(),
            reason: Box::new(reason),
        };
        if let Some(a) = self.allocations.get(&request.alloc) {
            let pool = &self.pool(self.host(a.host).pool).spec;
            return if pool.key == request.key {
                Ok(self.placement(&request.alloc, a.host))
            } else {
                Err(refuse(Reason::AllocationConflict {
                    host: Some(self.host_ref(a.host)),
                }))
            };
        }
        let Some(pools) = self.pools_by_key.get(&request.key) else {
            return Err(refuse(Reason::NoPool {
                key: request.key.clone(),
                available: Vec::new(),
            }));
        };
        let (mut hosts, mut ready, mut empty, mut of_model) = (0u32, 0u32, 0u32, 0u32);
        let mut best: Option<(u64, u32, u32)> = None;
        let mut label = None;
        for &pool in pools {
            let p = self.pool(pool);
            label.get_or_insert_with(|| PoolLabel {
                key: request.key.clone(),
                area_kind: p.spec.area_kind,
            });
            for &slot in &p.members {
                let h = self.host(slot);
                hosts += 1;
                if h.state != HostState::Ready {
                    continue;
                }
                ready += 1;
                if h.allocations > 0 {
                    continue;
                }
                empty += 1;
                if request
                    .model
                    .as_ref()
                    .is_some_and(|m| h.model.as_deref() != Some(m.as_str()))
                {
                    continue;
                }
                of_model += 1;
                if h.allocatable_mib() < request.min_memory_mib || h.cores < request.min_cores {
                    continue;
                }
                let candidate = (h.allocatable_mib(), h.cores, slot);
                let smaller = best.is_none_or(|b| {
                    (candidate.0, candidate.1, &h.id) < (b.0, b.1, &self.host(b.2).id)
                });
                if smaller {
                    best = Some(candidate);
                }
            }
        }
        let Some((_, _, slot)) = best else {
            let Some(pool) = label else {
                return Err(refuse(Reason::NoPool {
                    key: request.key.clone(),
                    available: Vec::new(),
                }));
            };
            return Err(refuse(Reason::NoFreeHost {
                pool,
                model: request.model.clone(),
                hosts,
                ready,
                empty,
                of_model,
                need_mib: request.min_memory_mib,
                need_cores: request.min_cores,
            }));
        };
        let h = self.host(slot);
        let ratio = self.pool(h.pool).spec.vcpu_ratio;
        let shape = VmShape::new(
            u32::try_from(h.free_vcpu(ratio)).unwrap_or(u32::MAX),
            h.free_memory_mib(),
        );
        self.apply(slot, request.alloc.clone(), shape);
        Ok(self.placement(&request.alloc, slot))
    }
}
