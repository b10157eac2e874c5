//! One system at a time: compare what its orders ask for
//! ([`desired::resources`]: every kind, with references) with the resources it
//! has; place and write what is missing — all of an order or none of it —;
//! change what is wanted differently (a load balancer's members, a rule, a
//! volume's size); ask for deletion of what is no longer wanted. An order that
//! cannot go ahead (it fits nowhere, names nothing, needs a kind its provider
//! lacks) waits with its own reason and does not hold up the system's other
//! orders.
//!
//! Crash safety: a resource's intent and its placement are one record written
//! with a "must not exist" compare, before any driver is called; the placement
//! index is rebuilt from those records at start, so a restart neither loses nor
//! double-counts capacity, and re-running this pass names the same resources
//! (stable ids) and skips the ones already written. Ordering — create what a
//! resource names first, delete it last — is the worker's, at apply time.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use yunshu_domain::alarm::{Alarm, AlarmCategory, AlarmLevel};
use yunshu_domain::ids::{AlarmId, AntiAffinityGroup, StorageClassId, ZoneId};
use yunshu_domain::order::WorkOrder;
use yunshu_domain::order_line::ServerForm;
use yunshu_domain::resource::{
    BareMetalSpec, Placement, Resource, ResourceKind, ResourceSpec, VmSpec,
};
use yunshu_domain::{OrderId, ResourceId, SystemNumber, Text};
use yunshu_placement::{Disk, PoolKey, Strategy, VmRequest, VmShape};
use yunshu_store::audit::{self, AuditDraft};
use yunshu_store::{Revision, Txn, records};
use yunshu_workflow::desired::{self, Desired, Item, Slot, Want};
use yunshu_workflow::resources::ScheduleNote;

use super::build::{self, Refusal, Reserved, Site};
use super::{ReconcileError, Reconciler};

/// Resources written per transaction (the store allows 128 ops; the audit
/// entry takes 2).
const CHUNK: usize = 100;

/// What a pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub created: Vec<ResourceId>,
    /// Wanted resources whose spec changed (a new generation to apply).
    pub updated: Vec<ResourceId>,
    pub deleting: Vec<ResourceId>,
    /// Orders that cannot go ahead now and wait with a reason
    /// (`schedule_note`); the system is looked at again with backoff.
    pub waiting: Vec<OrderId>,
}

/// Every resource of `system`, of every kind, with its revision.
pub async fn resources_of(
    r: &Reconciler,
    system: &SystemNumber,
) -> Result<Vec<(Resource, Revision)>, ReconcileError> {
    let mut out = Vec::new();
    for prefix in desired::system_prefixes(system) {
        let prefix = records::key::<Resource>(&prefix);
        out.extend(yunshu_store::page::scan_all_under(&*r.store, &prefix).await?);
    }
    Ok(out)
}

/// The system's main site when it has one: the provider and zone of its main
/// VPC, or (a system from before networks) of its first placed resource.
pub(crate) fn main_site(system: &SystemNumber, existing: &[(Resource, Revision)]) -> Option<Site> {
    let main_vpc = desired::vpc_id(system, &Slot::Main);
    let placed = existing
        .iter()
        .find(|(res, _)| Some(res.id()) == main_vpc.as_ref())
        .or_else(|| {
            existing
                .iter()
                .filter(|(res, _)| res.placement().is_some())
                .min_by(|a, b| a.0.id().cmp(b.0.id()))
        })?;
    let p = placed.0.placement()?;
    Some(Site {
        provider: p.provider.clone(),
        zone: p.zone.clone(),
    })
}

/// Where a new system may go: every zone (by id) of every provider (by id;
/// only the one its orders name, if any) that has the network areas its main
/// zone needs.
fn candidate_sites(r: &Reconciler, d: &Desired) -> Vec<Site> {
    let areas: BTreeSet<_> = d
        .wants
        .values()
        .filter(|w| w.slot == Slot::Main)
        .filter_map(|w| match &w.item {
            Item::Subnet { area, .. } => Some(*area),
            _ => None,
        })
        .collect();
    let inventories = r.inventories.lock().unwrap_or_else(|e| e.into_inner());
    let mut providers: Vec<_> = inventories
        .keys()
        .filter(|p| d.provider.as_ref().is_none_or(|want| want == *p))
        .cloned()
        .collect();
    providers.sort();
    let mut out = Vec::new();
    for provider in providers {
        let Some(inv) = inventories.get(&provider) else {
            continue;
        };
        let mut zones: Vec<_> = inv.areas.values().map(|(z, _)| z.clone()).collect();
        zones.sort();
        zones.dedup();
        for zone in zones {
            if d.zone.as_ref().is_some_and(|z| z != &zone) {
                continue;
            }
            let covers = areas
                .iter()
                .all(|a| inv.areas.values().any(|(z, k)| z == &zone && k == a));
            if covers {
                out.push(Site {
                    provider: provider.clone(),
                    zone,
                });
            }
        }
    }
    out
}

fn shape(
    server: &yunshu_domain::order_line::ServerRequest,
    class: &StorageClassId,
    anti: &AntiAffinityGroup,
) -> VmShape {
    let mut s = VmShape::new(server.vcpu.get(), u64::from(server.memory_gib.get()) * 1024);
    s.disks.push(Disk {
        storage_class: class.clone(),
        size_gib: u64::from(server.system_disk_gib.get()),
    });
    if server.data_disk_gib > 0 {
        s.disks.push(Disk {
            storage_class: class.clone(),
            size_gib: u64::from(server.data_disk_gib),
        });
    }
    s.anti_affinity = Some(anti.clone());
    s.anti_affinity_soft = !server.anti_affinity.is_hard();
    s
}

fn anti_group(system: &SystemNumber, name: &str) -> Option<AntiAffinityGroup> {
    let hash = yunshu_pki::sha256_hex(name.as_bytes());
    AntiAffinityGroup::new(format!("{system}-{}", &hash[..8])).ok()
}

/// The system and data disks' storage class: the zone's first standard (普通)
/// class by id — what the catalog prices a server's disks at —, else its
/// first class of any tier.
fn system_disk_class(r: &Reconciler, site: &Site) -> Option<StorageClassId> {
    let inventories = r.inventories.lock().unwrap_or_else(|e| e.into_inner());
    inventories.get(&site.provider).and_then(|inv| {
        let in_zone = || {
            inv.index
                .storage_classes
                .iter()
                .filter(|s| s.key.zone == site.zone)
                .map(|s| &s.key.class)
        };
        in_zone()
            .filter(|c| {
                inv.storage_tiers
                    .get(*c)
                    .is_some_and(|(_, t)| *t == yunshu_domain::order_services::VolumeTier::Standard)
            })
            .min()
            .or_else(|| in_zone().min())
            .cloned()
    })
}

/// The zones of the main site's provider where a server of `want` may go:
/// its own slot's zone first, then every other zone (by id) that has its
/// network area — a group spills over to another zone when its own is full,
/// and gets that zone's network.
fn server_zones(r: &Reconciler, main: &Site, want: &Want) -> Vec<ZoneId> {
    let Item::Server { server, .. } = &want.item else {
        return Vec::new();
    };
    let first = want.slot.zone(&main.zone).clone();
    let inventories = r.inventories.lock().unwrap_or_else(|e| e.into_inner());
    let mut others: Vec<ZoneId> = inventories
        .get(&main.provider)
        .map(|inv| {
            inv.areas
                .values()
                .filter(|(z, k)| *k == server.network_area && *z != first)
                .map(|(z, _)| z.clone())
                .collect()
        })
        .unwrap_or_default();
    others.sort();
    others.dedup();
    std::iter::once(first).chain(others).collect()
}

/// Places the members `ids` of one VM group together (anti-affinity), in the
/// first zone where all of them fit. Reserves them in the index.
fn place_vms(
    r: &Reconciler,
    main: &Site,
    system: &SystemNumber,
    group: &str,
    want: &Want,
    ids: &[ResourceId],
) -> Result<Vec<yunshu_placement::Placement>, Refusal> {
    let Item::Server { server, .. } = &want.item else {
        return Ok(Vec::new());
    };
    if !build::supports(r, main, ResourceKind::Vm) {
        return Err(Refusal::new(
            format!(
                "the driver of provider {} does not offer VMs",
                main.provider
            ),
            format!("云服务商 {} 的驱动不提供云主机", main.provider),
        ));
    }
    let anti = anti_group(system, group)
        .ok_or_else(|| Refusal::new("invalid group name", "服务器组名称无效"))?;
    let mut last = None;
    for zone in server_zones(r, main, want) {
        let site = Site {
            provider: main.provider.clone(),
            zone,
        };
        let (Ok(area), Some(class)) = (
            build::area_id(r, &site, server.network_area),
            system_disk_class(r, &site),
        ) else {
            continue;
        };
        let key = PoolKey {
            provider: site.provider.clone(),
            zone: site.zone.clone(),
            network_area: area,
            arch: server.architecture,
        };
        let requests: Vec<VmRequest> = ids
            .iter()
            .map(|id| VmRequest {
                alloc: id.clone(),
                key: key.clone(),
                shape: shape(server, &class, &anti),
            })
            .collect();
        let placed = r
            .index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .place_all(&requests, Strategy::Spread);
        match placed {
            Ok(p) => return Ok(p),
            Err(u) => last = Some(Refusal::from_code(&u)),
        }
    }
    Err(last.unwrap_or_else(|| {
        Refusal::new(
            format!(
                "provider {} has no {} pool with storage for {}",
                main.provider,
                server.architecture,
                server.network_area.label_zh()
            ),
            format!(
                "云服务商 {} 没有{}的 {} 资源池或可用存储",
                main.provider,
                server.network_area.label_zh(),
                server.architecture
            ),
        )
    }))
}

/// Places one bare-metal server in the first zone with a free host of its
/// model. Reserves the host in the index.
fn place_bare_metal(
    r: &Reconciler,
    main: &Site,
    id: &ResourceId,
    want: &Want,
) -> Result<yunshu_placement::Placement, Refusal> {
    let Item::Server { server, .. } = &want.item else {
        return Err(Refusal::new("not a server", "不是服务器"));
    };
    if !build::supports(r, main, ResourceKind::BareMetal) {
        return Err(Refusal::new(
            format!(
                "the driver of provider {} does not offer bare metal",
                main.provider
            ),
            format!("云服务商 {} 的驱动不提供物理服务器", main.provider),
        ));
    }
    let mut last = None;
    for zone in server_zones(r, main, want) {
        let site = Site {
            provider: main.provider.clone(),
            zone,
        };
        let Ok(area) = build::area_id(r, &site, server.network_area) else {
            continue;
        };
        let request = yunshu_placement::BareMetalRequest {
            alloc: id.clone(),
            key: PoolKey {
                provider: site.provider.clone(),
                zone: site.zone.clone(),
                network_area: area,
                arch: server.architecture,
            },
            model: server.model.as_ref().map(ToString::to_string),
            min_memory_mib: u64::from(server.memory_gib.get()) * 1024,
            // A bare-metal line's vCPUs count threads: two per core.
            min_cores: server.vcpu.get().div_ceil(2),
        };
        let placed = r
            .index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .place_bare_metal(&request);
        match placed {
            Ok(p) => return Ok(p),
            Err(u) => last = Some(Refusal::from_code(&u)),
        }
    }
    Err(last.unwrap_or_else(|| {
        Refusal::new(
            format!(
                "provider {} has no {} pool",
                main.provider,
                server.network_area.label_zh()
            ),
            format!(
                "云服务商 {} 没有{}资源池",
                main.provider,
                server.network_area.label_zh()
            ),
        )
    }))
}

/// The record of a placed server (VM or bare metal).
fn server_resource(
    r: &Reconciler,
    system: &SystemNumber,
    id: &ResourceId,
    want: &Want,
    p: &yunshu_placement::Placement,
    now: DateTime<Utc>,
) -> Result<Resource, Refusal> {
    let Item::Server {
        server,
        subnet,
        security_groups,
        group,
        stopped,
        ..
    } = &want.item
    else {
        return Err(Refusal::new("not a server", "不是服务器"));
    };
    let site = Site {
        provider: p.provider.clone(),
        zone: p.zone.clone(),
    };
    let image = build::image_for(server.os.as_str())?;
    let spec = match server.form {
        ServerForm::Vm => {
            let class = system_disk_class(r, &site).ok_or_else(|| {
                Refusal::new(
                    format!("zone {} has no storage class for system disks", site.zone),
                    format!("部署节点 {} 没有可用于系统盘的存储类型", site.zone),
                )
            })?;
            ResourceSpec::Vm(VmSpec {
                stopped: *stopped,
                arch: server.architecture,
                vcpu: server.vcpu,
                memory_mib: std::num::NonZeroU64::from(server.memory_gib).saturating_mul(
                    std::num::NonZeroU64::new(1024).unwrap_or(std::num::NonZeroU64::MIN),
                ),
                system_disk_gib: server.system_disk_gib,
                system_disk_class: Some(class.clone()),
                data_disks: std::num::NonZeroU32::new(server.data_disk_gib)
                    .map(|size_gib| yunshu_domain::resource::DiskSpec {
                        size_gib,
                        storage_class: class.clone(),
                    })
                    .into_iter()
                    .collect(),
                image,
                network_area: p.network_area.clone(),
                zone: p.zone.clone(),
                anti_affinity_group: anti_group(system, group),
                anti_affinity_soft: !server.anti_affinity.is_hard(),
                nics: vec![subnet.clone()],
                security_groups: security_groups.clone(),
            })
        }
        ServerForm::BareMetal => ResourceSpec::BareMetal(BareMetalSpec {
            stopped: *stopped,
            arch: server.architecture,
            flavor: server.model.clone(),
            image,
            zone: p.zone.clone(),
            network_area: p.network_area.clone(),
            nics: vec![subnet.clone()],
        }),
    };
    let mut res = Resource::new(
        id.clone(),
        system.clone(),
        Some(want.order.clone()),
        spec,
        now,
    )
    .map_err(|e| Refusal::from_code(&e))?;
    res.place(Placement {
        provider: p.provider.clone(),
        zone: p.zone.clone(),
        network_area: Some(p.network_area.clone()),
        pool: Some(p.pool.clone()),
        host: Some(p.host.clone()),
    });
    Ok(res)
}

/// vCPU and memory, the two resources the 20 % rule and the quota count.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Footprint {
    vcpu: u64,
    memory_mib: u64,
}

impl Footprint {
    fn of_want(w: &Want) -> Self {
        match &w.item {
            Item::Server { server, .. } if server.form == ServerForm::Vm => Footprint {
                vcpu: u64::from(server.vcpu.get()),
                memory_mib: u64::from(server.memory_gib.get()) * 1024,
            },
            _ => Footprint::default(),
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

/// The spec a wanted, existing resource should have now, if it differs and may
/// change (servers are never respecified in place; a VPC's or subnet's network
/// cannot change once created).
fn respec(
    r: &Reconciler,
    site: &Site,
    res: &Resource,
    want: &Want,
) -> Result<Option<ResourceSpec>, Refusal> {
    if matches!(res.kind(), ResourceKind::Vm | ResourceKind::BareMetal) {
        // Only the power state changes in place (002 art. 13, 14): powered
        // off for the offline or the data retention, on again when lifted.
        let Item::Server { stopped, .. } = &want.item else {
            return Ok(None);
        };
        let mut spec = res.spec().clone();
        match &mut spec {
            ResourceSpec::Vm(vm) if vm.stopped != *stopped => vm.stopped = *stopped,
            ResourceSpec::BareMetal(bm) if bm.stopped != *stopped => bm.stopped = *stopped,
            _ => return Ok(None),
        }
        return Ok(Some(spec));
    }
    let (spec, _) = build::spec_of(r, site, want)?;
    if &spec == res.spec() {
        return Ok(None);
    }
    match (res.spec(), &spec) {
        (ResourceSpec::Vpc(_), _) | (ResourceSpec::Subnet(_), _) => Err(Refusal::new(
            format!("{}: a network cannot change once created", res.id()),
            format!("{}：网络创建后不能修改", res.id()),
        )),
        (ResourceSpec::Volume(a), ResourceSpec::Volume(b))
            if b.storage_class != a.storage_class =>
        {
            Err(Refusal::new(
                format!("{}: a volume's storage tier cannot change", res.id()),
                format!("{}：数据卷的存储类型不能修改", res.id()),
            ))
        }
        (ResourceSpec::Volume(a), ResourceSpec::Volume(b)) if b.size_gib < a.size_gib => {
            Err(Refusal::new(
                format!("{}: a volume can grow, never shrink", res.id()),
                format!("{}：数据卷只能扩容，不能缩小", res.id()),
            ))
        }
        _ => Ok(Some(spec)),
    }
}

/// What a pass would do at one main site, with its reservations held in the
/// index (released by [`Attempt::undo`] when another site is chosen).
struct Attempt {
    d: Desired,
    batch: Vec<Resource>,
    updates: Vec<(Resource, Revision)>,
    notes: BTreeMap<OrderId, Refusal>,
    /// Orders refused for want of capacity or a kind at this site (not for
    /// names that resolve to nothing: another site does not help those).
    refused: usize,
}

impl Attempt {
    fn undo(&self, r: &Reconciler) {
        let held: Vec<Reserved> = self
            .batch
            .iter()
            .map(|res| Reserved::Held(res.id().clone()))
            .collect();
        release(r, &held);
    }
}

/// Where the system's servers already are.
pub(crate) fn placed_zones(existing: &[(Resource, Revision)]) -> BTreeMap<ResourceId, ZoneId> {
    existing
        .iter()
        .filter(|(res, _)| matches!(res.kind(), ResourceKind::Vm | ResourceKind::BareMetal))
        .filter_map(|(res, _)| res.placement().map(|p| (res.id().clone(), p.zone.clone())))
        .collect()
}

/// What a system asks for, read once per pass: its orders, its temporary
/// expansion, what its usage term says (002 art. 14) and whether it is
/// suspended (002 art. 18).
pub(crate) struct Asks {
    pub orders: Vec<(WorkOrder, yunshu_workflow::orders::OrderTrack)>,
    pub expansion: Option<yunshu_workflow::expansion::Expansion>,
    pub life: desired::Life,
}

impl Asks {
    pub(crate) async fn read(
        r: &Reconciler,
        system: &SystemNumber,
        now: DateTime<Utc>,
    ) -> Result<Self, ReconcileError> {
        let orders = r.orders_of(system).await?;
        let expansion =
            records::get::<yunshu_workflow::expansion::Expansion>(&*r.store, &system.to_string())
                .await?
                .map(|(e, _)| e);
        let term =
            records::get::<yunshu_workflow::usage::UsageTerm>(&*r.store, &system.to_string())
                .await?
                .map(|(t, _)| t);
        let mut life = yunshu_workflow::usage::offline_effect(term.as_ref(), now);
        life.exit_keeps_data = exit_keeps_data(r, &orders).await?;
        // A suspension for a security risk (002 art. 18, 004 art. 27) powers
        // the servers off like a forced offline, keeping everything else;
        // lifting it powers them on unless the term or an exit still says off.
        let suspension =
            records::get::<yunshu_workflow::suspension::Suspension>(&*r.store, &system.to_string())
                .await?
                .map(|(s, _)| s);
        life.servers_stopped |= yunshu_workflow::suspension::effect(suspension.as_ref());
        Ok(Asks {
            orders,
            expansion,
            life,
        })
    }

    /// The system's desired resources at `now`.
    pub(crate) fn desired(
        &self,
        system: &SystemNumber,
        now: DateTime<Utc>,
        main_zone: Option<&ZoneId>,
        placed: &BTreeMap<ResourceId, ZoneId>,
    ) -> Desired {
        desired::resources(
            system,
            &self.orders,
            self.expansion.as_ref(),
            self.life,
            now,
            main_zone,
            placed,
        )
    }
}

/// Whether the policy of the system's exit (an exit order decided, or the
/// onboarding order's own exit) keeps the data for a retention (002 art.
/// 13). The rules are read only for a system that is exiting.
pub(crate) async fn exit_keeps_data(
    r: &Reconciler,
    orders: &[(WorkOrder, yunshu_workflow::orders::OrderTrack)],
) -> Result<bool, ReconcileError> {
    use yunshu_domain::order::{OrderKind, OrderState};
    let exiting = orders.iter().rev().find(|(o, _)| {
        matches!(
            (o.kind(), o.state()),
            (OrderKind::Exit, OrderState::Approved | OrderState::Exited)
                | (
                    OrderKind::Onboarding | OrderKind::GoLive,
                    OrderState::Exited
                )
        )
    });
    let Some((_, track)) = exiting else {
        return Ok(false);
    };
    let rules = yunshu_workflow::rules::load(&*r.store)
        .await
        .map_err(Box::new)?;
    Ok(rules.policy(&track.policy).is_some_and(|p| {
        p.step(yunshu_domain::calendar::Step::DataRetention)
            .is_some()
    }))
}

fn attempt(
    r: &Reconciler,
    system: &SystemNumber,
    asks: &Asks,
    existing: &[(Resource, Revision)],
    main: Option<&Site>,
    now: DateTime<Utc>,
) -> Attempt {
    let mut placed_at = placed_zones(existing);
    let main_zone = main.map(|m| &m.zone);
    let d0 = asks.desired(system, now, main_zone, &placed_at);
    let mut notes: BTreeMap<OrderId, Refusal> = BTreeMap::new();
    let mut out = Attempt {
        d: Desired::default(),
        batch: Vec::new(),
        updates: Vec::new(),
        notes: BTreeMap::new(),
        refused: 0,
    };
    let Some(main) = main else {
        for w in d0.wants.values() {
            notes.entry(w.order.clone()).or_insert_with(|| {
                Refusal::new(
                    "no registered provider has a zone with the network areas this system needs",
                    "没有已注册的云服务商提供本系统所需网络区域的部署节点",
                )
            });
        }
        for p in &d0.problems {
            notes
                .entry(p.order.clone())
                .or_insert_with(|| Refusal::new(p.reason.clone(), p.reason_zh.clone()));
        }
        out.d = d0;
        out.notes = notes;
        return out;
    };
    let have: BTreeMap<&ResourceId, (&Resource, Revision)> = existing
        .iter()
        .map(|(res, rev)| (res.id(), (res, *rev)))
        .collect();

    // 1. Servers first: where they land decides which zone's network they
    //    are wired to. All of an order's new servers fit, or none is kept.
    //    Quota at every instant, not only at rest: what the system holds —
    //    including VMs still being deleted — plus what is created now never
    //    exceeds what its orders allow (approved + temporary expansion).
    let allowed = d0
        .wants
        .values()
        .fold(Footprint::default(), |f, w| f.plus(Footprint::of_want(w)));
    let mut in_use = existing.iter().fold(Footprint::default(), |f, (res, _)| {
        f.plus(Footprint::of_resource(res))
    });
    let problem_orders: BTreeSet<&OrderId> = d0.problems.iter().map(|p| &p.order).collect();
    let mut servers: BTreeMap<&OrderId, BTreeMap<&str, Vec<&ResourceId>>> = BTreeMap::new();
    let mut server_want: BTreeMap<&str, &Want> = BTreeMap::new();
    let mut quota_waits = 0usize;
    for (id, w) in &d0.wants {
        let Item::Server { group, .. } = &w.item else {
            continue;
        };
        if have.contains_key(id) || problem_orders.contains(&w.order) {
            continue;
        }
        let next = in_use.plus(Footprint::of_want(w));
        if !next.within(allowed) {
            quota_waits += 1;
            continue;
        }
        in_use = next;
        server_want.entry(group.as_str()).or_insert(w);
        servers
            .entry(&w.order)
            .or_default()
            .entry(group.as_str())
            .or_default()
            .push(id);
    }
    if quota_waits > 0 {
        tracing::info!(%system, quota_waits, "new VMs wait for the deletion of replaced ones (quota)");
    }
    let mut new_servers: BTreeMap<ResourceId, yunshu_placement::Placement> = BTreeMap::new();
    let mut reserved_by: BTreeMap<OrderId, Vec<Reserved>> = BTreeMap::new();
    for (order, groups) in &servers {
        let mut mine: Vec<yunshu_placement::Placement> = Vec::new();
        let mut refused = None;
        for (group, ids) in groups {
            let Some(want) = server_want.get(group) else {
                continue;
            };
            let placed = match &want.item {
                Item::Server { server, .. } if server.form == ServerForm::BareMetal => ids
                    .iter()
                    .map(|id| place_bare_metal(r, main, id, want))
                    .collect::<Result<Vec<_>, _>>(),
                _ => {
                    let ids: Vec<ResourceId> = ids.iter().map(|i| (*i).clone()).collect();
                    place_vms(r, main, system, group, want, &ids)
                }
            };
            match placed {
                Ok(p) => mine.extend(p),
                Err(e) => {
                    // A bare-metal group placed partly before the miss.
                    refused = Some(e);
                    break;
                }
            }
        }
        match refused {
            None => {
                reserved_by
                    .entry((*order).clone())
                    .or_default()
                    .extend(mine.iter().map(|p| Reserved::Held(p.alloc.clone())));
                for p in mine {
                    placed_at.insert(p.alloc.clone(), p.zone.clone());
                    new_servers.insert(p.alloc.clone(), p);
                }
            }
            Some(why) => {
                let held: Vec<Reserved> = mine
                    .iter()
                    .map(|p| Reserved::Held(p.alloc.clone()))
                    .chain(
                        groups
                            .values()
                            .flatten()
                            .map(|id| Reserved::Held((*id).clone())),
                    )
                    .collect();
                release(r, &held);
                notes.insert((*order).clone(), why);
                out.refused += 1;
            }
        }
    }

    // 2. Everything else, against the servers' zones.
    let d = asks.desired(system, now, main_zone, &placed_at);
    for p in &d.problems {
        notes
            .entry(p.order.clone())
            .or_insert_with(|| Refusal::new(p.reason.clone(), p.reason_zh.clone()));
    }
    let site_of = |w: &Want| Site {
        provider: main.provider.clone(),
        zone: w.slot.zone(&main.zone).clone(),
    };
    // The system's network (VPCs, subnets, security groups) takes no
    // capacity and is shared by its orders: it is built whatever happens to
    // the order it was first asked for, so one order that fits nowhere never
    // leaves the others without a network.
    let mut missing: BTreeMap<&OrderId, Vec<(&ResourceId, &Want)>> = BTreeMap::new();
    for (id, w) in &d.wants {
        if have.contains_key(id) {
            continue;
        }
        let infra = matches!(
            w.item,
            Item::Vpc { .. } | Item::Subnet { .. } | Item::SecurityGroup { .. }
        );
        if infra {
            match build::build(r, &site_of(w), system, id, w, now) {
                Ok((res, _)) => out.batch.push(res),
                Err(why) => {
                    notes.entry(w.order.clone()).or_insert(why);
                }
            }
        } else if !notes.contains_key(&w.order) {
            missing.entry(&w.order).or_default().push((id, w));
        }
    }
    for (order, wants) in missing {
        let mut built: Vec<Resource> = Vec::new();
        let mut reserved: Vec<Reserved> = reserved_by.remove(order).unwrap_or_default();
        let mut refused: Option<Refusal> = None;
        for (id, w) in &wants {
            let made = match &w.item {
                Item::Server { .. } => match new_servers.get(*id) {
                    Some(p) => server_resource(r, system, id, w, p, now),
                    // Not placed this pass (quota): a later pass does it.
                    None => continue,
                },
                _ => build::build(r, &site_of(w), system, id, w, now).map(|(res, held)| {
                    reserved.push(held);
                    res
                }),
            };
            match made {
                Ok(res) => built.push(res),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        match refused {
            None => out.batch.extend(built),
            Some(why) => {
                release(r, &reserved);
                notes.insert(order.clone(), why);
                out.refused += 1;
            }
        }
    }
    // Servers of orders that were refused in step 2 are released above; any
    // placed server whose order has a problem is released too.
    for (order, held) in reserved_by {
        if notes.contains_key(&order) {
            release(r, &held);
        }
    }
    // Wanted, existing resources whose spec changed.
    for (id, w) in &d.wants {
        let Some((res, rev)) = have.get(id) else {
            continue;
        };
        if res.deletion_requested_at().is_some() {
            continue;
        }
        match respec(r, &site_of(w), res, w) {
            Ok(None) => {}
            Ok(Some(spec)) => match reserve_change(r, id, res, &spec) {
                Ok(()) => {
                    let mut changed = (*res).clone();
                    if changed.set_spec(spec).unwrap_or(false) {
                        out.updates.push((changed, *rev));
                    }
                }
                Err(why) => {
                    notes.entry(w.order.clone()).or_insert(why);
                }
            },
            Err(why) => {
                notes.entry(w.order.clone()).or_insert(why);
            }
        }
    }
    out.d = d;
    out.notes = notes;
    out
}

/// One pass over `system`.
pub async fn system(
    r: &Reconciler,
    system: &SystemNumber,
    now: DateTime<Utc>,
) -> Result<Outcome, ReconcileError> {
    let asks = Asks::read(r, system, now).await?;
    let existing = resources_of(r, system).await?;
    let chosen = match main_site(system, &existing) {
        Some(site) => attempt(r, system, &asks, &existing, Some(&site), now),
        None => {
            // A new system: the first site (provider, zone by id) where
            // everything its orders ask for fits; if none, the first one, with
            // what fits there.
            let probe = asks.desired(system, now, None, &BTreeMap::new());
            let mut sites = candidate_sites(r, &probe);
            if sites.is_empty() && !probe.wants.is_empty() {
                // A driver registered since the last inventory read: read it
                // now rather than wait for the periodic refresh.
                r.refresh_inventory().await;
                sites = candidate_sites(r, &probe);
            }
            let mut chosen = None;
            for site in &sites {
                let a = attempt(r, system, &asks, &existing, Some(site), now);
                if a.refused == 0 {
                    chosen = Some(a);
                    break;
                }
                a.undo(r);
            }
            match chosen {
                Some(a) => a,
                None => attempt(r, system, &asks, &existing, sites.first(), now),
            }
        }
    };
    let Attempt {
        d,
        mut batch,
        updates,
        notes,
        ..
    } = chosen;
    // Networks first, so the workers find what each resource names already
    // queued ahead of it.
    batch.sort_by_key(|res| res.kind().creation_rank());
    let mut outcome = Outcome::default();

    // Record why orders wait; forget the reasons of orders that no longer do.
    for (order, why) in &notes {
        note(r, system, order, why, now).await?;
    }
    for (order, _) in &asks.orders {
        if notes.contains_key(order.id()) {
            continue;
        }
        let key = records::key::<ScheduleNote>(order.id().as_str());
        if r.store.get(&key).await?.is_some() {
            r.store.delete(&key).await?;
        }
        r.unschedulable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(order.id());
    }
    outcome.waiting = notes.keys().cloned().collect();

    for (i, chunk) in batch.chunks(CHUNK).enumerate() {
        let mut txn = Txn::new();
        for res in chunk {
            let key = records::key::<Resource>(res.id().as_str());
            txn = txn
                .when_mod_revision(key.clone(), 0)
                .put(key, records::encode(res));
        }
        let detail = format!("{} resources placed and created", chunk.len());
        if let Err(e) = commit(r, txn, "resource.create", system, detail, now).await {
            // What was not written must not hold capacity; the next pass
            // places it again.
            let rest: Vec<Reserved> = batch
                .iter()
                .skip(i * CHUNK)
                .map(|res| Reserved::Held(res.id().clone()))
                .collect();
            release(r, &rest);
            return Err(e);
        }
        let mut refs = r.refs.lock().unwrap_or_else(|e| e.into_inner());
        for res in chunk {
            refs.record(res);
            outcome.created.push(res.id().clone());
        }
    }
    for chunk in updates.chunks(CHUNK) {
        let mut txn = Txn::new();
        for (res, rev) in chunk {
            let key = records::key::<Resource>(res.id().as_str());
            txn = txn
                .when_mod_revision(key.clone(), *rev)
                .put(key, records::encode(res));
        }
        let detail = format!("{} resources changed", chunk.len());
        commit(r, txn, "resource.update", system, detail, now).await?;
        let mut refs = r.refs.lock().unwrap_or_else(|e| e.into_inner());
        for (res, _) in chunk {
            refs.record(res);
            outcome.updated.push(res.id().clone());
        }
    }

    // Ask for deletion of what no order wants any more.
    let mut deletions = Vec::new();
    for (res, rev) in existing {
        if d.wants.contains_key(res.id()) || res.deletion_requested_at().is_some() {
            continue;
        }
        let mut res = res;
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
        let detail = format!("{} resources no longer wanted", chunk.len());
        commit(r, txn, "resource.delete_request", system, detail, now).await?;
    }
    Ok(outcome)
}

/// Gives back what `reserved` holds in the index.
fn release(r: &Reconciler, reserved: &[Reserved]) {
    let mut index = r.index.lock().unwrap_or_else(|e| e.into_inner());
    for h in reserved {
        if let Reserved::Held(id) = h {
            index.release_any(id);
        }
    }
}

/// A volume that grows or an EIP whose bandwidth changes takes the new
/// figures from its zone; if they do not fit, nothing changes.
fn reserve_change(
    r: &Reconciler,
    id: &ResourceId,
    res: &Resource,
    spec: &ResourceSpec,
) -> Result<(), Refusal> {
    let Some(place) = res.placement() else {
        return Ok(());
    };
    let (Some(old), Some(new)) = (
        build::shared_request(id, res.spec(), place),
        build::shared_request(id, spec, place),
    ) else {
        return Ok(());
    };
    if old == new {
        return Ok(());
    }
    let mut index = r.index.lock().unwrap_or_else(|e| e.into_inner());
    index.release_any(id);
    match index.reserve_shared(&new) {
        Ok(()) => Ok(()),
        Err(e) => {
            if let Err(again) = index.reserve_shared(&old) {
                tracing::error!(resource = %id, error = %again, "could not restore a reservation");
            }
            Err(Refusal::from_code(&e))
        }
    }
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

/// Records that `order` waits: a capacity alarm naming the reason (once: the
/// alarm id names the order and the reason) and the order's schedule note.
async fn note(
    r: &Reconciler,
    system: &SystemNumber,
    order: &OrderId,
    why: &Refusal,
    now: DateTime<Utc>,
) -> Result<(), ReconcileError> {
    let key = records::key::<ScheduleNote>(order.as_str());
    if let Some((old, _)) = records::get::<ScheduleNote>(&*r.store, order.as_str()).await?
        && old.reason == why.reason
    {
        return Ok(());
    }
    tracing::warn!(%system, %order, reason = %why.reason, "order waits");
    let hash = yunshu_pki::sha256_hex(why.reason.as_bytes());
    let id = AlarmId::new(format!("unsched-{order}-{}", &hash[..8]))
        .map_err(|e| ReconcileError::Invalid(e.to_string()))?;
    let text = |s: String| Text::new(s).map_err(|e| ReconcileError::Invalid(e.to_string()));
    let alarm = Alarm::new(
        id,
        now,
        AlarmLevel::Major,
        text(format!("工单 {order} 暂无法交付"))?,
        text(format!("{}（{}）", why.reason_zh, why.reason))?,
    )
    .about(
        AlarmCategory::Capacity,
        None,
        Some(text(records::key::<WorkOrder>(order.as_str()))?),
    );
    yunshu_workflow::alarms::raise(&*r.store, &super::actor(), &alarm)
        .await
        .map_err(|e| ReconcileError::Invalid(e.to_string()))?;
    let record = ScheduleNote {
        order: order.clone(),
        reason: why.reason.clone(),
        reason_zh: why.reason_zh.clone(),
        at: now,
    };
    r.store.put(&key, records::encode(&record)).await?;
    r.unschedulable
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(order.clone(), (why.reason.clone(), why.reason_zh.clone()));
    Ok(())
}

/// The provider of a placed resource.
pub fn provider_of(res: &Resource) -> Option<&yunshu_domain::ProviderId> {
    res.placement().map(|p| &p.provider)
}
