//! Zone-level allocations: what a resource that is not on a host takes from
//! its zone — storage by class (volumes), bandwidth and public IPs of one
//! network area (EIPs). The same figures VMs' disks and addresses are charged
//! to, so the capacity report and the 80 % rule see them move.
//!
//! All or nothing: a request whose figures do not all fit changes nothing.
//! Idempotent: the same request again finds its allocation.

use yunshu_domain::ResourceId;

use crate::index::Index;
use crate::model::{AreaKey, SharedRequest, StorageKey};
use crate::reason::{Reason, Unschedulable};
use crate::report::Usage;

impl Index {
    /// Reserves `request`'s storage, bandwidth and public IPs. The same request
    /// again is a no-op; another request under the same allocation id is an
    /// `ALLOCATION_CONFLICT` (release it first). Errors change nothing.
    pub fn reserve_shared(&mut self, request: &SharedRequest) -> Result<(), Unschedulable> {
        let refuse = |reason: Reason| Unschedulable {
            alloc: request.alloc.clone(),
            reason: Box::new(reason),
        };
        if let Some(existing) = self.shared_allocations.get(&request.alloc) {
            return if existing == request {
                Ok(())
            } else {
                Err(refuse(Reason::AllocationConflict { host: None }))
            };
        }
        if self.allocations.contains_key(&request.alloc) {
            return Err(refuse(Reason::AllocationConflict { host: None }));
        }
        if let Some(reason) = self.shared_shortfall(request) {
            return Err(refuse(reason));
        }
        self.charge(request, true);
        self.shared_allocations
            .insert(request.alloc.clone(), request.clone());
        Ok(())
    }

    /// The zone-level allocation recorded under `alloc`, if any.
    pub fn shared_allocation(&self, alloc: &ResourceId) -> Option<&SharedRequest> {
        self.shared_allocations.get(alloc)
    }

    /// Gives back what `alloc` reserved zone-level; whether it held anything.
    pub(crate) fn release_shared(&mut self, alloc: &ResourceId) -> bool {
        match self.shared_allocations.remove(alloc) {
            Some(request) => {
                self.charge(&request, false);
                true
            }
            None => false,
        }
    }

    /// The first figure that does not fit, as a reason.
    fn shared_shortfall(&self, r: &SharedRequest) -> Option<Reason> {
        let mut by_class: Vec<(&yunshu_domain::ids::StorageClassId, u64)> = Vec::new();
        for d in &r.disks {
            match by_class.iter_mut().find(|(c, _)| *c == &d.storage_class) {
                Some((_, gib)) => *gib = gib.saturating_add(d.size_gib),
                None => by_class.push((&d.storage_class, d.size_gib)),
            }
        }
        by_class.sort_by(|a, b| a.0.cmp(b.0));
        for (class, need) in by_class {
            let key = StorageKey {
                provider: r.provider.clone(),
                zone: r.zone.clone(),
                class: class.clone(),
            };
            match self.storage.get(&key) {
                None => {
                    return Some(Reason::StorageClassUnknown {
                        zone: r.zone.clone(),
                        class: class.clone(),
                    });
                }
                Some(u) if u.free() < need => {
                    return Some(Reason::StorageClassFull {
                        zone: r.zone.clone(),
                        class: class.clone(),
                        need_gib: need,
                        free_gib: u.free(),
                        total_gib: u.total,
                    });
                }
                Some(_) => {}
            }
        }
        if r.bandwidth_mbps == 0 && r.public_ips == 0 {
            return None;
        }
        let Some(area) = &r.network_area else {
            return Some(Reason::BandwidthExhausted {
                zone: r.zone.clone(),
                network_area: yunshu_domain::ids::NetworkAreaId::new("none").ok()?,
                need_mbps: r.bandwidth_mbps,
                free_mbps: 0,
                total_mbps: 0,
            });
        };
        let key = AreaKey {
            provider: r.provider.clone(),
            zone: r.zone.clone(),
            network_area: area.clone(),
        };
        if r.bandwidth_mbps > 0 {
            let u = self.bandwidth.get(&key).copied().unwrap_or_default();
            if u.free() < r.bandwidth_mbps {
                return Some(Reason::BandwidthExhausted {
                    zone: r.zone.clone(),
                    network_area: area.clone(),
                    need_mbps: r.bandwidth_mbps,
                    free_mbps: u.free(),
                    total_mbps: u.total,
                });
            }
        }
        if r.public_ips > 0 {
            let u = self.public_ips.get(&key).copied().unwrap_or_default();
            if u.free() < r.public_ips {
                return Some(Reason::PublicIpsExhausted {
                    zone: r.zone.clone(),
                    network_area: area.clone(),
                    need: r.public_ips,
                    free: u.free(),
                    total: u.total,
                });
            }
        }
        None
    }

    fn charge(&mut self, r: &SharedRequest, add: bool) {
        let change = |u: &mut Usage, n: u64| {
            u.allocated = if add {
                u.allocated.saturating_add(n)
            } else {
                u.allocated.saturating_sub(n)
            };
        };
        for d in &r.disks {
            if d.size_gib > 0 {
                let key = StorageKey {
                    provider: r.provider.clone(),
                    zone: r.zone.clone(),
                    class: d.storage_class.clone(),
                };
                change(self.storage.entry(key).or_default(), d.size_gib);
            }
        }
        if let Some(area) = &r.network_area {
            let key = AreaKey {
                provider: r.provider.clone(),
                zone: r.zone.clone(),
                network_area: area.clone(),
            };
            if r.bandwidth_mbps > 0 {
                change(
                    self.bandwidth.entry(key.clone()).or_default(),
                    r.bandwidth_mbps,
                );
            }
            if r.public_ips > 0 {
                change(self.public_ips.entry(key).or_default(), r.public_ips);
            }
        }
    }
}
