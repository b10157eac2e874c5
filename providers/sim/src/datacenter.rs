//! The simulated datacenter as the simulator runs it: the config checked and
//! turned into indexed tables (by position, with `HashMap` id → position), plus the
//! live counters the capacity rules read — per host allocated vCPU and memory and
//! the resources placed on it, per storage class used GiB, per network area used
//! bandwidth, per public IP pool the addresses in use.
//!
//! Counters are kept up to date by `rules` on every accepted Apply and every
//! completed Delete, so no check ever scans all resources.

use std::collections::{BTreeSet, HashMap};

use yunshu_domain::Architecture;
use yunshu_domain::ids::{HostId, NetworkAreaId, PoolId, StorageClassId, ZoneId};
use yunshu_domain::provider::{IopsClass, MAX_VCPU_RATIO, NetworkAreaKind};
use yunshu_proto::convert::arch_to_wire;
use yunshu_proto::v1;

use crate::config::SimConfig;
use crate::error::SimError;
use crate::net::{AddressBook, Cidr};

/// More hosts than this is surely a typo in a count (and would eat the machine).
pub const MAX_HOSTS: u64 = 1_000_000;

/// Longest server model name a config may give (a model is a short product name).
const MAX_MODEL_CHARS: usize = 128;

/// A resource's key: (kind number, id), the listing order.
pub(crate) type Key = (i32, String);

pub(crate) struct ZoneRt {
    pub id: String,
    pub name: String,
}

pub(crate) struct AreaRt {
    pub id: String,
    pub zone: usize,
    pub name: String,
    pub kind: v1::NetworkAreaKind,
    /// `None` when the config gives this area no bandwidth (total 0).
    pub bandwidth_total: Option<u64>,
    pub bandwidth_used: u64,
    /// Public IP pools of this area, by position in `Datacenter::ip_pools`.
    pub ip_pools: Vec<usize>,
}

pub(crate) struct PoolRt {
    pub id: String,
    pub zone: usize,
    pub area: usize,
    pub arch: v1::Architecture,
    pub cpu_model: String,
    pub clock_mhz: u32,
    pub vcpu_ratio: u32,
    /// Model of the pool's servers (`host_models` by pool id), given to hosts
    /// added later; empty when the config names none.
    pub host_model: String,
}

pub(crate) struct HostRt {
    pub id: String,
    pub pool: usize,
    pub cores: u32,
    pub memory_mib: u64,
    pub reserved_memory_mib: u64,
    pub state: v1::HostState,
    /// Hardware model (`Host.model`); empty when the config names none.
    pub model: String,
    pub vcpu_used: u64,
    pub memory_used_mib: u64,
    /// VMs and bare-metal servers placed here (to stop them when the host goes down).
    pub residents: BTreeSet<Key>,
}

impl HostRt {
    /// Memory VMs may use: never more (memory is not overcommitted).
    pub fn usable_memory_mib(&self) -> u64 {
        self.memory_mib.saturating_sub(self.reserved_memory_mib)
    }
}

pub(crate) struct StorageRt {
    pub id: String,
    pub zone: usize,
    pub name: String,
    pub capacity_gib: u64,
    pub iops_class: v1::IopsClass,
    pub iops_per_disk: u32,
    pub used_gib: u64,
}

pub(crate) struct IpPoolRt {
    pub id: String,
    pub zone: usize,
    pub area: usize,
    pub cidrs: Vec<String>,
    pub book: AddressBook,
}

pub(crate) struct Datacenter {
    pub zones: Vec<ZoneRt>,
    pub areas: Vec<AreaRt>,
    pub pools: Vec<PoolRt>,
    pub hosts: Vec<HostRt>,
    pub storage: Vec<StorageRt>,
    pub ip_pools: Vec<IpPoolRt>,
    zone_index: HashMap<String, usize>,
    area_index: HashMap<String, usize>,
    pool_index: HashMap<String, usize>,
    host_index: HashMap<String, usize>,
    storage_index: HashMap<String, usize>,
    /// Areas with a bandwidth entry, in config order (what the inventory lists).
    bandwidth_order: Vec<usize>,
    /// Increases on every inventory change (host state).
    pub revision: u64,
}

fn slug(
    field: &str,
    check: impl FnOnce() -> Result<(), yunshu_domain::ids::IdError>,
) -> Result<(), SimError> {
    check().map_err(|e| SimError::invalid(field, e.to_string()))
}

fn non_empty(field: &str, value: &str) -> Result<(), SimError> {
    if value.trim().is_empty() {
        return Err(SimError::invalid(field, "must not be empty"));
    }
    Ok(())
}

fn insert_unique(
    index: &mut HashMap<String, usize>,
    what: &'static str,
    id: &str,
    position: usize,
) -> Result<(), SimError> {
    if index.insert(id.to_owned(), position).is_some() {
        return Err(SimError::Duplicate {
            what,
            id: id.to_owned(),
        });
    }
    Ok(())
}

fn lookup(
    index: &HashMap<String, usize>,
    field: String,
    what: &'static str,
    id: &str,
) -> Result<usize, SimError> {
    index
        .get(id)
        .copied()
        .ok_or_else(|| SimError::UnknownReference {
            field,
            what,
            id: id.to_owned(),
        })
}

fn area_kind(kind: NetworkAreaKind) -> v1::NetworkAreaKind {
    match kind {
        NetworkAreaKind::GovExtranet => v1::NetworkAreaKind::GovExtranet,
        NetworkAreaKind::Internet => v1::NetworkAreaKind::Internet,
        NetworkAreaKind::Dedicated => v1::NetworkAreaKind::Other,
    }
}

fn iops_class(class: IopsClass) -> v1::IopsClass {
    match class {
        IopsClass::Standard => v1::IopsClass::Standard,
        IopsClass::HighPerformance => v1::IopsClass::High,
    }
}

impl Datacenter {
    /// Checks `config` and builds the tables. The rules are the ones the
    /// controller's domain model applies to reported inventory (minimum clock per
    /// architecture, at most 4 vCPU per core, reserve below memory, IOPS within the
    /// class), so whatever the simulator reports is accepted.
    pub fn build(config: &SimConfig) -> Result<Datacenter, SimError> {
        if config.zones.is_empty() {
            return Err(SimError::invalid("zones", "at least one zone is required"));
        }
        let mut dc = Datacenter {
            zones: Vec::new(),
            areas: Vec::new(),
            pools: Vec::new(),
            hosts: Vec::new(),
            storage: Vec::new(),
            ip_pools: Vec::new(),
            zone_index: HashMap::new(),
            area_index: HashMap::new(),
            pool_index: HashMap::new(),
            host_index: HashMap::new(),
            storage_index: HashMap::new(),
            bandwidth_order: Vec::new(),
            revision: 1,
        };

        for (i, z) in config.zones.iter().enumerate() {
            slug(&format!("zones[{i}].id"), || ZoneId::new(&z.id).map(drop))?;
            non_empty(&format!("zones[{i}].name"), &z.name)?;
            insert_unique(&mut dc.zone_index, "zone", &z.id, dc.zones.len())?;
            dc.zones.push(ZoneRt {
                id: z.id.clone(),
                name: z.name.clone(),
            });
        }

        for (i, a) in config.network_areas.iter().enumerate() {
            slug(&format!("network_areas[{i}].id"), || {
                NetworkAreaId::new(&a.id).map(drop)
            })?;
            non_empty(&format!("network_areas[{i}].name"), &a.name)?;
            let zone = lookup(
                &dc.zone_index,
                format!("network_areas[{i}].zone"),
                "zone",
                &a.zone,
            )?;
            insert_unique(&mut dc.area_index, "network area", &a.id, dc.areas.len())?;
            dc.areas.push(AreaRt {
                id: a.id.clone(),
                zone,
                name: a.name.clone(),
                kind: area_kind(a.kind),
                bandwidth_total: None,
                bandwidth_used: 0,
                ip_pools: Vec::new(),
            });
        }

        let mut total_hosts: u64 = 0;
        for (i, p) in config.pools.iter().enumerate() {
            let field = |name: &str| format!("pools[{i}].{name}");
            slug(&field("id"), || PoolId::new(&p.id).map(drop))?;
            non_empty(&field("cpu_model"), &p.cpu_model)?;
            let (zone, area) = dc.zone_area(&field("zone"), &p.zone, &p.network_area)?;
            let min = p.arch.min_clock_mhz();
            if p.clock_mhz < min {
                return Err(SimError::invalid(
                    field("clock_mhz"),
                    format!(
                        "{} MHz is below the {} minimum of {min} MHz (003 §3.2.1.1)",
                        p.clock_mhz, p.arch
                    ),
                ));
            }
            if p.vcpu_ratio == 0 || p.vcpu_ratio > MAX_VCPU_RATIO {
                return Err(SimError::invalid(
                    field("vcpu_ratio"),
                    format!("must be 1 to {MAX_VCPU_RATIO} vCPU per physical core"),
                ));
            }
            let pool = dc.pools.len();
            insert_unique(&mut dc.pool_index, "pool", &p.id, pool)?;
            dc.pools.push(PoolRt {
                id: p.id.clone(),
                zone,
                area,
                arch: arch_to_wire(p.arch),
                cpu_model: p.cpu_model.clone(),
                clock_mhz: p.clock_mhz,
                vcpu_ratio: p.vcpu_ratio,
                host_model: String::new(),
            });

            let pool_hosts: u64 = p.hosts.iter().map(|t| u64::from(t.count)).sum();
            total_hosts += pool_hosts;
            if total_hosts > MAX_HOSTS {
                return Err(SimError::invalid(
                    field("hosts"),
                    format!("more than {MAX_HOSTS} hosts in total"),
                ));
            }
            let width = pool_hosts.to_string().len().max(4);
            // Numbering runs across the pool's templates per prefix, so two
            // templates with the default prefix never collide.
            let mut numbers: HashMap<String, u64> = HashMap::new();
            for (j, t) in p.hosts.iter().enumerate() {
                let tfield = |name: &str| format!("pools[{i}].hosts[{j}].{name}");
                if t.cores == 0 {
                    return Err(SimError::invalid(tfield("cores"), "must be at least 1"));
                }
                if t.memory_mib == 0 {
                    return Err(SimError::invalid(
                        tfield("memory_mib"),
                        "must be at least 1",
                    ));
                }
                if t.reserved_memory_mib >= t.memory_mib {
                    return Err(SimError::invalid(
                        tfield("reserved_memory_mib"),
                        format!(
                            "{} MiB must be less than the host's memory {} MiB",
                            t.reserved_memory_mib, t.memory_mib
                        ),
                    ));
                }
                let prefix = t.id_prefix.clone().unwrap_or_else(|| format!("{}-h", p.id));
                let counter = numbers.entry(prefix.clone()).or_insert(0);
                for _ in 0..t.count {
                    *counter += 1;
                    let id = format!("{prefix}{:0width$}", *counter);
                    slug(&tfield("id_prefix"), || HostId::new(&id).map(drop))?;
                    insert_unique(&mut dc.host_index, "host", &id, dc.hosts.len())?;
                    dc.hosts.push(HostRt {
                        id,
                        pool,
                        cores: t.cores,
                        memory_mib: t.memory_mib,
                        reserved_memory_mib: t.reserved_memory_mib,
                        state: t.state.to_wire(),
                        model: String::new(),
                        vcpu_used: 0,
                        memory_used_mib: 0,
                        residents: BTreeSet::new(),
                    });
                }
            }
        }

        dc.assign_models(config)?;

        for (i, s) in config.storage_classes.iter().enumerate() {
            let field = |name: &str| format!("storage_classes[{i}].{name}");
            slug(&field("id"), || StorageClassId::new(&s.id).map(drop))?;
            non_empty(&field("name"), &s.name)?;
            let zone = lookup(&dc.zone_index, field("zone"), "zone", &s.zone)?;
            let (min, max) = s.iops_class.range();
            if !(min..=max).contains(&s.iops_per_disk) {
                return Err(SimError::invalid(
                    field("iops_per_disk"),
                    format!(
                        "{:?} storage offers {min}-{max} IOPS per disk, got {}",
                        s.iops_class, s.iops_per_disk
                    ),
                ));
            }
            insert_unique(
                &mut dc.storage_index,
                "storage class",
                &s.id,
                dc.storage.len(),
            )?;
            dc.storage.push(StorageRt {
                id: s.id.clone(),
                zone,
                name: s.name.clone(),
                capacity_gib: s.capacity_gib,
                iops_class: iops_class(s.iops_class),
                iops_per_disk: s.iops_per_disk,
                used_gib: 0,
            });
        }

        for (i, b) in config.bandwidth.iter().enumerate() {
            let (_, area) =
                dc.zone_area(&format!("bandwidth[{i}].zone"), &b.zone, &b.network_area)?;
            if dc.areas[area].bandwidth_total.is_some() {
                return Err(SimError::Duplicate {
                    what: "bandwidth entry for network area",
                    id: b.network_area.clone(),
                });
            }
            dc.areas[area].bandwidth_total = Some(b.total_mbps);
            dc.bandwidth_order.push(area);
        }

        let mut ip_ids = HashMap::new();
        let mut all_ranges: Vec<(Cidr, String)> = Vec::new();
        for (i, p) in config.ip_pools.iter().enumerate() {
            let field = |name: &str| format!("ip_pools[{i}].{name}");
            slug(&field("id"), || PoolId::new(&p.id).map(drop))?;
            let (zone, area) = dc.zone_area(&field("zone"), &p.zone, &p.network_area)?;
            insert_unique(&mut ip_ids, "ip pool", &p.id, i)?;
            if p.cidrs.is_empty() {
                return Err(SimError::invalid(field("cidrs"), "at least one CIDR"));
            }
            let mut cidrs = Vec::new();
            for (k, text) in p.cidrs.iter().enumerate() {
                let cidr = Cidr::parse(text).map_err(|reason| {
                    SimError::invalid(format!("ip_pools[{i}].cidrs[{k}]"), reason)
                })?;
                all_ranges.push((cidr, p.id.clone()));
                cidrs.push(cidr);
            }
            let book = AddressBook::from_cidrs(&cidrs);
            if book.total() > u64::from(u32::MAX) {
                return Err(SimError::invalid(
                    field("cidrs"),
                    "more addresses than an inventory can report (2^32 - 1)",
                ));
            }
            dc.areas[area].ip_pools.push(dc.ip_pools.len());
            dc.ip_pools.push(IpPoolRt {
                id: p.id.clone(),
                zone,
                area,
                cidrs: p.cidrs.clone(),
                book,
            });
        }
        // Overlapping ranges would hand one address out twice.
        all_ranges.sort_by_key(|(c, _)| (c.net, c.prefix));
        for pair in all_ranges.windows(2) {
            if let [(a, a_pool), (b, b_pool)] = pair
                && a.overlaps(b)
            {
                return Err(SimError::invalid(
                    "ip_pools",
                    format!("{a} (pool {a_pool}) overlaps {b} (pool {b_pool})"),
                ));
            }
        }

        if !(0.0..=1.0).contains(&config.faults.error_rate) {
            return Err(SimError::invalid(
                "faults.error_rate",
                "must be between 0.0 and 1.0",
            ));
        }
        Ok(dc)
    }

    /// Applies `host_models`. A key is a host id, a pool id or an architecture
    /// name (`x86_64`, `arm64`, `c86`); the most specific entry wins (host, then
    /// pool, then architecture) whatever the key order. Architecture keys let a
    /// config (the demo above all) say "every arm64 server is a TaiShan" and
    /// stay valid when pools are replaced or renamed.
    fn assign_models(&mut self, config: &SimConfig) -> Result<(), SimError> {
        let mut by_arch: Vec<(v1::Architecture, &String)> = Vec::new();
        let mut by_pool: Vec<(usize, &String)> = Vec::new();
        let mut by_host: Vec<(usize, &String)> = Vec::new();
        for (key, model) in &config.host_models {
            let field = format!("host_models.{key}");
            non_empty(&field, model)?;
            // Bare-metal specs are compared with it exactly, so no stray spaces.
            if model.chars().count() > MAX_MODEL_CHARS
                || model.chars().any(char::is_control)
                || model.trim() != model
            {
                return Err(SimError::invalid(
                    field,
                    format!(
                        "a model name is 1-{MAX_MODEL_CHARS} printable characters without leading or trailing spaces"
                    ),
                ));
            }
            let arch = Architecture::ALL
                .into_iter()
                .find(|a| a.as_str() == key.as_str());
            match (arch, self.pool(key), self.host(key)) {
                (Some(a), None, None) => by_arch.push((arch_to_wire(a), model)),
                (None, Some(p), None) => by_pool.push((p, model)),
                (None, None, Some(h)) => by_host.push((h, model)),
                (None, None, None) => {
                    return Err(SimError::UnknownReference {
                        field,
                        what: "host, pool or architecture",
                        id: key.clone(),
                    });
                }
                _ => {
                    return Err(SimError::invalid(
                        field,
                        "names more than one of a host, a pool and an architecture",
                    ));
                }
            }
        }
        for (arch, model) in by_arch {
            for p in 0..self.pools.len() {
                if self.pools[p].arch == arch {
                    self.set_pool_model(p, model);
                }
            }
        }
        for (p, model) in by_pool {
            self.set_pool_model(p, model);
        }
        for (h, model) in by_host {
            self.hosts[h].model.clone_from(model);
        }
        Ok(())
    }

    fn set_pool_model(&mut self, pool: usize, model: &str) {
        model.clone_into(&mut self.pools[pool].host_model);
        for h in self.hosts.iter_mut().filter(|h| h.pool == pool) {
            model.clone_into(&mut h.model);
        }
    }

    /// Resolves a zone and one of its network areas (config references).
    fn zone_area(&self, field: &str, zone: &str, area: &str) -> Result<(usize, usize), SimError> {
        let z = lookup(&self.zone_index, field.to_owned(), "zone", zone)?;
        let a = lookup(
            &self.area_index,
            field.replace(".zone", ".network_area"),
            "network area",
            area,
        )?;
        if self.areas[a].zone != z {
            return Err(SimError::invalid(
                field.replace(".zone", ".network_area"),
                format!("network area {area:?} belongs to another zone than {zone:?}"),
            ));
        }
        Ok((z, a))
    }

    pub fn zone(&self, id: &str) -> Option<usize> {
        self.zone_index.get(id).copied()
    }

    pub fn area(&self, id: &str) -> Option<usize> {
        self.area_index.get(id).copied()
    }

    pub fn pool(&self, id: &str) -> Option<usize> {
        self.pool_index.get(id).copied()
    }

    pub fn host(&self, id: &str) -> Option<usize> {
        self.host_index.get(id).copied()
    }

    pub fn storage_class(&self, id: &str) -> Option<usize> {
        self.storage_index.get(id).copied()
    }

    /// Adds `count` Up hosts to `pool` (a provider racking new servers): ids
    /// `<pool>-h<number>` continuing after the pool's hosts, skipping ids taken.
    /// Checks the rules of a config host template; bumps the inventory revision
    /// once. Returns the new host ids.
    pub fn add_hosts(
        &mut self,
        pool: &str,
        count: u32,
        cores: u32,
        memory_mib: u64,
        reserved_memory_mib: u64,
    ) -> Result<Vec<String>, SimError> {
        let p = self.pool(pool).ok_or_else(|| SimError::UnknownReference {
            field: "add_hosts.pool".to_owned(),
            what: "pool",
            id: pool.to_owned(),
        })?;
        if cores == 0 {
            return Err(SimError::invalid("add_hosts.cores", "must be at least 1"));
        }
        if memory_mib == 0 || reserved_memory_mib >= memory_mib {
            return Err(SimError::invalid(
                "add_hosts.memory_mib",
                format!(
                    "{memory_mib} MiB must be at least 1 and above the reserve {reserved_memory_mib} MiB"
                ),
            ));
        }
        if self.hosts.len() as u64 + u64::from(count) > MAX_HOSTS {
            return Err(SimError::invalid(
                "add_hosts.count",
                format!("more than {MAX_HOSTS} hosts in total"),
            ));
        }
        let mut number = self.hosts.iter().filter(|h| h.pool == p).count() as u64;
        let mut added = Vec::new();
        for _ in 0..count {
            let id = loop {
                number += 1;
                let id = format!("{pool}-h{number:04}");
                if !self.host_index.contains_key(&id) {
                    break id;
                }
            };
            slug("add_hosts.pool", || HostId::new(&id).map(drop))?;
            self.host_index.insert(id.clone(), self.hosts.len());
            self.hosts.push(HostRt {
                id: id.clone(),
                pool: p,
                cores,
                memory_mib,
                reserved_memory_mib,
                state: v1::HostState::Up,
                // A provider racks more of the pool's servers.
                model: self.pools[p].host_model.clone(),
                vcpu_used: 0,
                memory_used_mib: 0,
                residents: BTreeSet::new(),
            });
            added.push(id);
        }
        if !added.is_empty() {
            self.revision += 1;
        }
        Ok(added)
    }

    /// vCPUs a host may hand out: cores × its pool's ratio.
    pub fn vcpu_capacity(&self, host: usize) -> u64 {
        let h = &self.hosts[host];
        u64::from(h.cores) * u64::from(self.pools[h.pool].vcpu_ratio)
    }

    pub fn architectures(&self) -> Vec<v1::Architecture> {
        let mut arches: Vec<v1::Architecture> = Vec::new();
        for p in &self.pools {
            if !arches.contains(&p.arch) {
                arches.push(p.arch);
            }
        }
        arches.sort_by_key(|a| *a as i32);
        arches
    }

    /// The inventory as the protocol reports it, with live host states.
    pub fn inventory(&self) -> v1::Inventory {
        v1::Inventory {
            zones: self
                .zones
                .iter()
                .map(|z| v1::Zone {
                    id: z.id.clone(),
                    name: z.name.clone(),
                })
                .collect(),
            network_areas: self
                .areas
                .iter()
                .map(|a| v1::NetworkArea {
                    id: a.id.clone(),
                    zone: self.zones[a.zone].id.clone(),
                    name: a.name.clone(),
                    kind: a.kind as i32,
                })
                .collect(),
            pools: self
                .pools
                .iter()
                .map(|p| v1::Pool {
                    id: p.id.clone(),
                    zone: self.zones[p.zone].id.clone(),
                    network_area: self.areas[p.area].id.clone(),
                    arch: p.arch as i32,
                    cpu_model: p.cpu_model.clone(),
                    clock_mhz: p.clock_mhz,
                    vcpu_ratio: p.vcpu_ratio,
                })
                .collect(),
            hosts: self
                .hosts
                .iter()
                .map(|h| v1::Host {
                    id: h.id.clone(),
                    pool: self.pools[h.pool].id.clone(),
                    cores: h.cores,
                    memory_mib: h.memory_mib,
                    reserved_memory_mib: h.reserved_memory_mib,
                    state: h.state as i32,
                    model: h.model.clone(),
                })
                .collect(),
            storage_classes: self
                .storage
                .iter()
                .map(|s| v1::StorageClass {
                    id: s.id.clone(),
                    zone: self.zones[s.zone].id.clone(),
                    name: s.name.clone(),
                    capacity_gib: s.capacity_gib,
                    iops_class: s.iops_class as i32,
                    iops_per_disk: s.iops_per_disk,
                })
                .collect(),
            bandwidth: self
                .bandwidth_order
                .iter()
                .map(|&a| {
                    let area = &self.areas[a];
                    v1::Bandwidth {
                        zone: self.zones[area.zone].id.clone(),
                        network_area: area.id.clone(),
                        total_mbps: area.bandwidth_total.unwrap_or(0),
                    }
                })
                .collect(),
            ip_pools: self
                .ip_pools
                .iter()
                .map(|p| v1::IpPool {
                    id: p.id.clone(),
                    zone: self.zones[p.zone].id.clone(),
                    network_area: self.areas[p.area].id.clone(),
                    cidrs: p.cidrs.clone(),
                    total: u32::try_from(p.book.total()).unwrap_or(u32::MAX),
                })
                .collect(),
            revision: self.revision,
        }
    }
}
