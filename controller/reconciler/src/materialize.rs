//! One system at a time: compare what its orders ask for ([`desired`]) with the
//! resources it has, place what is missing — all of an order or none of it —
//! and write the new resources with their placements; ask for deletion of what
//! is no longer wanted. An order that fits nowhere waits with its own reason
//! and does not hold up the system's other orders.
//!
//! Crash safety: a resource's intent and its placement are one record written
//! with a "must not exist" compare, before any driver is called; the placement
//! index is rebuilt from those records at start, so a restart neither loses nor
//! double-counts capacity, and re-running this pass names the same resources
//! (stable ids) and skips the ones already written.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use yunshu_domain::alarm::{Alarm, AlarmCategory, AlarmLevel};
use yunshu_domain::ids::{AlarmId, AntiAffinityGroup, ImageId, StorageClassId};
use yunshu_domain::order::WorkOrder;
use yunshu_domain::resource::{Placement, Resource, ResourceSpec, VmSpec};
use yunshu_domain::{ErrorCode, OrderId, ProviderId, ResourceId, SystemNumber, Text};
use yunshu_placement::{Disk, PoolKey, Strategy, Unschedulable, VmRequest, VmShape};
use yunshu_store::audit::{self, AuditDraft};
use yunshu_store::{Revision, Txn, records};
use yunshu_workflow::desired::{self, Group};

use super::{ReconcileError, Reconciler};

/// Resources written per transaction (the store allows 128 ops; the audit
/// entry takes 2).
const CHUNK: usize = 100;

/// What a pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub created: Vec<ResourceId>,
    pub deleting: Vec<ResourceId>,
    /// Orders that fit nowhere now and wait with a reason (`schedule_note`);
    /// the system is looked at again with backoff.
    pub waiting: Vec<OrderId>,
}

/// The system's VMs with their revisions.
pub async fn resources_of(
    r: &Reconciler,
    system: &SystemNumber,
) -> Result<Vec<(Resource, Revision)>, ReconcileError> {
    let prefix = records::key::<Resource>(&desired::system_prefix(system));
    Ok(yunshu_store::page::scan_all_under(&*r.store, &prefix).await?)
}

/// An image id for the OS the applicant named ("麒麟 V10" → `kylin-v10`); a
/// name with no ASCII in it gets `os-<hash>`.
fn image_for(os: &str) -> Result<ImageId, ReconcileError> {
    const NAMES: [(&str, &str); 6] = [
        ("麒麟", "kylin"),
        ("统信", "uos"),
        ("欧拉", "openeuler"),
        ("龙蜥", "anolis"),
        ("中标", "neokylin"),
        ("红旗", "redflag"),
    ];
    let mut s = os.to_owned();
    for (zh, en) in NAMES {
        s = s.replace(zh, &format!("{en} "));
    }
    let slug: String = s
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '.')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
        .to_ascii_lowercase();
    let slug: String = slug.chars().take(48).collect();
    ImageId::new(&slug).or_else(|_| {
        let hash = yunshu_pki::sha256_hex(os.as_bytes());
        ImageId::new(format!("os-{}", &hash[..12]))
            .map_err(|e| ReconcileError::Invalid(e.to_string()))
    })
}

/// Where a group may go: the providers it may use and, in each, the pool keys
/// of its architecture and network-area kind (and zone, if the order names one).
fn candidate_keys(r: &Reconciler, group: &Group) -> Vec<(PoolKey, StorageClassId)> {
    let inventories = r.inventories.lock().unwrap_or_else(|e| e.into_inner());
    let mut keys = Vec::new();
    for (provider, inv) in inventories.iter() {
        if group.provider.as_ref().is_some_and(|p| p != provider) {
            continue;
        }
        let mut areas: Vec<_> = inv
            .areas
            .iter()
            .filter(|(_, (zone, kind))| {
                *kind == group.server.network_area && group.zone.as_ref().is_none_or(|z| z == zone)
            })
            .collect();
        areas.sort_by(|a, b| a.0.cmp(b.0));
        for (area, (zone, _)) in areas {
            // The system disk goes to the zone's first storage class.
            let Some(class) = inv
                .index
                .storage_classes
                .iter()
                .filter(|s| &s.key.zone == zone)
                .map(|s| s.key.class.clone())
                .min()
            else {
                continue;
            };
            keys.push((
                PoolKey {
                    provider: provider.clone(),
                    zone: zone.clone(),
                    network_area: area.clone(),
                    arch: group.server.architecture,
                },
                class,
            ));
        }
    }
    keys
}

fn shape(group: &Group, class: &StorageClassId, anti: &AntiAffinityGroup) -> VmShape {
    let mut s = VmShape::new(
        group.server.vcpu.get(),
        u64::from(group.server.memory_gib.get()) * 1024,
    );
    s.disks.push(Disk {
        storage_class: class.clone(),
        size_gib: u64::from(group.server.system_disk_gib.get()),
    });
    if group.server.data_disk_gib > 0 {
        s.disks.push(Disk {
            storage_class: class.clone(),
            size_gib: u64::from(group.server.data_disk_gib),
        });
    }
    s.anti_affinity = Some(anti.clone());
    s
}

fn anti_group(system: &SystemNumber, name: &str) -> Option<AntiAffinityGroup> {
    let hash = yunshu_pki::sha256_hex(name.as_bytes());
    AntiAffinityGroup::new(format!("{system}-{}", &hash[..8])).ok()
}

/// Places `ids` of `group` on one candidate key, all or none. Returns the
/// placements with the storage class used, or the last refusal.
fn place_group(
    r: &Reconciler,
    system: &SystemNumber,
    name: &str,
    group: &Group,
    ids: &[ResourceId],
) -> Result<Vec<(yunshu_placement::Placement, StorageClassId)>, Option<Unschedulable>> {
    let anti = anti_group(system, name).ok_or(None)?;
    let mut last = None;
    for (key, class) in candidate_keys(r, group) {
        let requests: Vec<VmRequest> = ids
            .iter()
            .map(|id| VmRequest {
                alloc: id.clone(),
                key: key.clone(),
                shape: shape(group, &class, &anti),
            })
            .collect();
        let mut index = r.index.lock().unwrap_or_else(|e| e.into_inner());
        match index.place_all(&requests, Strategy::Spread) {
            Ok(p) => return Ok(p.into_iter().map(|p| (p, class.clone())).collect()),
            Err(u) => last = Some(u),
        }
    }
    Err(last)
}

fn vm_resource(
    id: ResourceId,
    system: &SystemNumber,
    group: &Group,
    placement: yunshu_placement::Placement,
    class: StorageClassId,
    anti: Option<AntiAffinityGroup>,
    now: DateTime<Utc>,
) -> Result<Resource, ReconcileError> {
    let spec = ResourceSpec::Vm(VmSpec {
        arch: group.server.architecture,
        vcpu: group.server.vcpu,
        memory_mib: std::num::NonZeroU64::from(group.server.memory_gib)
            .saturating_mul(std::num::NonZeroU64::new(1024).unwrap_or(std::num::NonZeroU64::MIN)),
        system_disk_gib: group.server.system_disk_gib,
        system_disk_class: Some(class.clone()),
        data_disks: std::num::NonZeroU32::new(group.server.data_disk_gib)
            .map(|size_gib| yunshu_domain::resource::DiskSpec {
                size_gib,
                storage_class: class.clone(),
            })
            .into_iter()
            .collect(),
        image: image_for(group.server.os.as_str())?,
        network_area: placement.network_area.clone(),
        zone: placement.zone.clone(),
        anti_affinity_group: anti,
        nics: Vec::new(),
        security_groups: Vec::new(),
    });
    let mut resource = Resource::new(id, system.clone(), Some(group.order.clone()), spec, now)
        .map_err(|e| ReconcileError::Invalid(e.to_string()))?;
    resource.place(Placement {
        provider: placement.provider,
        zone: placement.zone,
        network_area: Some(placement.network_area),
        pool: Some(placement.pool),
        host: Some(placement.host),
    });
    Ok(resource)
}

/// A group's members still to place: (group name, group, member ids).
type Missing<'a> = (&'a str, &'a Group, &'a Vec<ResourceId>);

/// vCPU and memory, the two resources the 20 % rule and the quota count.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Footprint {
    vcpu: u64,
    memory_mib: u64,
}

impl Footprint {
    fn of_group(g: &Group) -> Self {
        Footprint {
            vcpu: u64::from(g.server.vcpu.get()),
            memory_mib: u64::from(g.server.memory_gib.get()) * 1024,
        }
    }

    fn of_resource(res: &Resource) -> Self {
        match res.spec() {
            ResourceSpec::Vm(vm) => Footprint {
                vcpu: u64::from(vm.vcpu.get()),
                memory_mib: vm.memory_mib.get(),
            },
            _ => Footprint::default(),
        }
    }

    fn times(self, n: u32) -> Self {
        Footprint {
            vcpu: self.vcpu * u64::from(n),
            memory_mib: self.memory_mib * u64::from(n),
        }
    }

    fn plus(self, o: Self) -> Self {
        Footprint {
            vcpu: self.vcpu + o.vcpu,
            memory_mib: self.memory_mib + o.memory_mib,
        }
    }

    fn within(self, limit: Self) -> bool {
        self.vcpu <= limit.vcpu && self.memory_mib <= limit.memory_mib
    }
}

/// One pass over `system`.
pub async fn system(
    r: &Reconciler,
    system: &SystemNumber,
    now: DateTime<Utc>,
) -> Result<Outcome, ReconcileError> {
    let orders = r.orders_of(system).await?;
    let expansion =
        records::get::<yunshu_workflow::expansion::Expansion>(&*r.store, &system.to_string())
            .await?
            .map(|(e, _)| e);
    // Approved groups plus a free temporary expansion while it lasts.
    let groups =
        yunshu_workflow::expansion::apply(desired::groups(&orders), expansion.as_ref(), now);
    // A driver registered since the last inventory read: read it now rather
    // than wait for the periodic refresh.
    if groups.values().any(|g| candidate_keys(r, g).is_empty()) {
        r.refresh_inventory().await;
    }
    let mut wanted: BTreeMap<ResourceId, &str> = BTreeMap::new();
    for (name, g) in &groups {
        for n in 1..=g.quantity {
            if let Some(id) = desired::member_id(system, name, n) {
                wanted.insert(id, name.as_str());
            }
        }
    }
    let existing = resources_of(r, system).await?;
    let have: BTreeSet<&ResourceId> = existing.iter().map(|(res, _)| res.id()).collect();

    // Quota at every instant, not only at rest: what the system holds —
    // including VMs still being deleted — plus what is created now never
    // exceeds what its orders allow (approved + temporary expansion). When a
    // change swaps one group for another, the new members wait for the old
    // ones to be gone (the worker queues the system when a deletion ends).
    let allowed = groups.values().fold(Footprint::default(), |f, g| {
        f.plus(Footprint::of_group(g).times(g.quantity))
    });
    let mut held = existing.iter().fold(Footprint::default(), |f, (res, _)| {
        f.plus(Footprint::of_resource(res))
    });
    // Place everything missing first; write nothing unless all of it fits.
    let mut missing: BTreeMap<&str, Vec<ResourceId>> = BTreeMap::new();
    let mut waiting = 0usize;
    for (id, name) in &wanted {
        if have.contains(id) {
            continue;
        }
        let Some(group) = groups.get(*name) else {
            continue;
        };
        let next = held.plus(Footprint::of_group(group));
        if next.within(allowed) {
            held = next;
            missing.entry(name).or_default().push(id.clone());
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        tracing::info!(%system, waiting, "new VMs wait for the deletion of replaced ones (quota)");
    }
    // All or nothing per order: an order whose groups do not all fit waits
    // whole, with its own reason, and holds nothing; the other orders of the
    // system go ahead (one order's failure never holds another hostage).
    let mut by_order: BTreeMap<&OrderId, Vec<Missing>> = BTreeMap::new();
    for (name, ids) in &missing {
        if let Some(group) = groups.get(*name) {
            by_order
                .entry(&group.order)
                .or_default()
                .push((name, group, ids));
        }
    }
    let mut placed = Vec::new();
    let mut waiting_orders: BTreeSet<OrderId> = BTreeSet::new();
    for (order, wanted_groups) in &by_order {
        let mut mine = Vec::new();
        let mut refused = None;
        for (name, group, ids) in wanted_groups {
            match place_group(r, system, name, group, ids) {
                Ok(p) => mine.extend(p.into_iter().map(|(p, c)| (*name, p, c))),
                Err(reason) => {
                    refused = Some((*group, reason));
                    break;
                }
            }
        }
        match refused {
            None => placed.extend(mine),
            Some((group, reason)) => {
                {
                    let mut index = r.index.lock().unwrap_or_else(|e| e.into_inner());
                    for (_, p, _) in &mine {
                        index.release(&p.alloc);
                    }
                }
                unschedulable(r, system, group, reason, now).await?;
                waiting_orders.insert((*order).clone());
            }
        }
    }
    // Orders with nothing left to place no longer wait.
    for (order, _) in &orders {
        if waiting_orders.contains(order.id()) {
            continue;
        }
        let key = records::key::<yunshu_workflow::resources::ScheduleNote>(order.id().as_str());
        if r.store.get(&key).await?.is_some() {
            r.store.delete(&key).await?;
            r.unschedulable
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(order.id());
        }
    }
    let mut outcome = Outcome {
        waiting: waiting_orders.into_iter().collect(),
        ..Outcome::default()
    };
    let mut batch = Vec::new();
    for (name, p, class) in placed {
        let Some(group) = groups.get(name) else {
            continue;
        };
        let id = p.alloc.clone();
        batch.push(vm_resource(
            id.clone(),
            system,
            group,
            p,
            class,
            anti_group(system, name),
            now,
        )?);
        outcome.created.push(id);
    }
    for (i, chunk) in batch.chunks(CHUNK).enumerate() {
        let mut txn = Txn::new();
        for res in chunk {
            let key = records::key::<Resource>(res.id().as_str());
            txn = txn
                .when_mod_revision(key.clone(), 0)
                .put(key, records::encode(res));
        }
        let detail = format!("{} VMs placed and created", chunk.len());
        if let Err(e) = commit(r, txn, "resource.create", system, detail, now).await {
            // What was not written must not hold capacity; the next pass
            // places it again.
            let mut index = r.index.lock().unwrap_or_else(|e| e.into_inner());
            for res in batch.iter().skip(i * CHUNK) {
                index.release(res.id());
            }
            return Err(e);
        }
    }

    // Ask for deletion of what no order wants any more.
    let mut deletions = Vec::new();
    for (mut res, rev) in existing {
        if wanted.contains_key(res.id()) || res.deletion_requested_at().is_some() {
            continue;
        }
        res.request_deletion(now);
        deletions.push((res, rev));
    }
    for chunk in deletions.chunks(CHUNK) {
        let mut txn = Txn::new();
        for (res, rev) in chunk {
            let key = records::key::<Resource>(res.id().as_str());
            txn = txn
                .when_mod_revision(key.clone(), *rev)
                .put(key, records::encode(res));
            outcome.deleting.push(res.id().clone());
        }
        let detail = format!("{} VMs no longer wanted", chunk.len());
        commit(r, txn, "resource.delete_request", system, detail, now).await?;
    }
    Ok(outcome)
}

async fn commit(
    r: &Reconciler,
    txn: Txn,
    action: &str,
    system: &SystemNumber,
    detail: String,
    now: DateTime<Utc>,
) -> Result<(), ReconcileError> {
    let draft = AuditDraft {
        at: now,
        actor: super::actor(),
        action: yunshu_domain::audit::AuditAction::new(action)
            .map_err(|e| ReconcileError::Invalid(e.to_string()))?,
        target: Text::new(format!("system/{system}"))
            .map_err(|e| ReconcileError::Invalid(e.to_string()))?,
        detail: Some(Text::new(detail).map_err(|e| ReconcileError::Invalid(e.to_string()))?),
    };
    match audit::append(&*r.store, draft, txn).await? {
        audit::Appended::Committed { .. } => Ok(()),
        // Someone wrote these keys meanwhile (another leader, a retry that
        // committed): the next pass starts from what is stored.
        audit::Appended::Conflict => Err(ReconcileError::Conflict),
    }
}

/// Records that `group` fits nowhere: a capacity alarm naming the reason, once
/// per order and group (the alarm id names them).
async fn unschedulable(
    r: &Reconciler,
    system: &SystemNumber,
    group: &Group,
    reason: Option<Unschedulable>,
    now: DateTime<Utc>,
) -> Result<(), ReconcileError> {
    let (en, zh) = match &reason {
        Some(u) => (u.to_string(), u.message_zh()),
        None => (
            "no registered provider offers this architecture and network area".to_owned(),
            "没有已注册的供应商提供该架构与网络区域的资源池".to_owned(),
        ),
    };
    tracing::warn!(%system, order = %group.order, reason = %en, "order unschedulable");
    let hash = yunshu_pki::sha256_hex(group.server.server_name.as_str().as_bytes());
    let id = AlarmId::new(format!("unsched-{}-{}", group.order, &hash[..8]))
        .map_err(|e| ReconcileError::Invalid(e.to_string()))?;
    let text = |s: String| Text::new(s).map_err(|e| ReconcileError::Invalid(e.to_string()));
    let alarm = Alarm::new(
        id,
        now,
        AlarmLevel::Major,
        text(format!("资源不足，工单 {} 无法调度", group.order))?,
        text(format!("{zh}（{en}）"))?,
    )
    .about(
        AlarmCategory::Capacity,
        None,
        Some(text(records::key::<WorkOrder>(group.order.as_str()))?),
    );
    yunshu_workflow::alarms::raise(&*r.store, &super::actor(), &alarm)
        .await
        .map_err(|e| ReconcileError::Invalid(e.to_string()))?;
    let note = yunshu_workflow::resources::ScheduleNote {
        order: group.order.clone(),
        reason: en.clone(),
        reason_zh: zh.clone(),
        at: now,
    };
    r.store
        .put(
            &records::key::<yunshu_workflow::resources::ScheduleNote>(group.order.as_str()),
            records::encode(&note),
        )
        .await?;
    let mut u = r.unschedulable.lock().unwrap_or_else(|e| e.into_inner());
    u.insert(group.order.clone(), (en, zh));
    Ok(())
}

/// The provider of a placed resource.
pub fn provider_of(res: &Resource) -> Option<&ProviderId> {
    res.placement().map(|p| &p.provider)
}

#[cfg(test)]
mod tests {
    use super::image_for;

    #[test]
    fn images_from_os_names() {
        let image = |s| image_for(s).expect("image").to_string();
        assert_eq!(image("麒麟 V10"), "kylin-v10");
        assert_eq!(image("openEuler 22.03"), "openeuler-22.03");
        assert!(image("某国产系统").starts_with("os-"));
    }
}
