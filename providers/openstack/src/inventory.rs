//! The cloud's capacity as the protocol's inventory, from Placement and Nova.
//!
//! - Zones: Nova availability zones (`os-availability-zone/detail`), each with
//!   a government-extranet area (tenant networks, VMs) and an internet area
//!   (floating IPs of the external network).
//! - Hosts: Placement resource providers with VCPU and MEMORY_MB inventories,
//!   joined with Nova's hypervisors (their id is the provider's uuid) for the
//!   service host name, up/down state and CPU info.
//! - Pools: one per (zone, architecture); the architecture from the
//!   provider's `HW_ARCH_*` trait, else the hypervisor's `cpu_info`.
//! - vCPU ratio: the VCPU `allocation_ratio` (at most 4, the protocol's cap).
//! - A host whose MEMORY_MB `allocation_ratio` is above 1 is refused: yunshu
//!   never overcommits memory (003 §3.2.1.1), and a pool that promises more
//!   memory than it has cannot be placed on honestly. It is left out of the
//!   inventory (the protocol has no "refused" pool), logged, and listed in
//!   [`Snapshot::refusals`].
//! - Storage classes: the hypervisors' local disk (Placement DISK_GB), where
//!   VMs' system disks live; Cinder volume types when their backends have a
//!   finite size.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use yunshu_proto::tonic::Status;
use yunshu_proto::v1;

use crate::cloud::{Cloud, Service};
use crate::driver::network::str_of;
use crate::driver::{Inner, os_status};

/// The protocol's vCPU ratio cap.
const MAX_VCPU_RATIO: f64 = 4.0;

/// A pool (or host) not offered, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub pool: String,
    pub host: String,
    pub code: &'static str,
    pub message: String,
}

/// What the driver checks an Apply's placement against.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub zone: String,
    /// Nova's availability zone name of `zone`.
    pub az: String,
    pub pool: String,
    pub arch: i32,
    pub up: bool,
    /// MEMORY_MB Placement can still allocate: total × ratio − reserved − used.
    pub free_memory_mib: u64,
    pub free_vcpus: u64,
    /// The Placement resource provider.
    pub rp: String,
}

/// (free MEMORY_MB, free VCPU) of one provider now, by Placement's rule: two
/// calls, where the whole inventory takes a dozen.
pub(crate) async fn host_free(inner: &Inner, rp: &str) -> Result<(u64, u64), Status> {
    let op = inner.operator();
    let invs = get(
        op,
        Service::Placement,
        &format!("resource_providers/{rp}/inventories"),
    )
    .await?;
    let usages = get(
        op,
        Service::Placement,
        &format!("resource_providers/{rp}/usages"),
    )
    .await?;
    let free = |class| Class::of(&invs, &usages, class).map_or(0, |c| c.free());
    Ok((free("MEMORY_MB"), free("VCPU")))
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub inventory: v1::Inventory,
    pub architectures: Vec<i32>,
    pub refusals: Vec<Refusal>,
    pub hosts: HashMap<String, HostFacts>,
}

/// The storage class of a zone's Nova local disks.
pub(crate) fn local_class(zone: &str) -> String {
    slug(&format!("{zone}-local"))
}

/// The storage class a Cinder volume type is offered as in a zone.
pub(crate) fn type_class(zone: &str, volume_type: &str) -> String {
    slug(&format!("{zone}-{volume_type}"))
}

/// A slug the controller accepts as an id: lowercase ASCII letters, digits,
/// '-', '_' and '.', starting with a letter or digit.
pub(crate) fn slug(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_start_matches(['-', '_', '.']).to_owned();
    if s.is_empty() { "x".to_owned() } else { s }
}

pub(crate) fn arch_label(arch: v1::Architecture) -> &'static str {
    match arch {
        v1::Architecture::Arm64 => "arm64",
        v1::Architecture::C86 => "c86",
        _ => "x86_64",
    }
}

/// One Placement inventory class of a provider.
#[derive(Debug, Clone, Copy, Default)]
struct Class {
    total: u64,
    reserved: u64,
    ratio: f64,
    used: u64,
}

impl Class {
    fn of(inventories: &Value, usages: &Value, name: &str) -> Option<Class> {
        let inv = inventories.get("inventories")?.get(name)?;
        Some(Class {
            total: inv.get("total")?.as_u64()?,
            reserved: inv.get("reserved").and_then(Value::as_u64).unwrap_or(0),
            ratio: inv
                .get("allocation_ratio")
                .and_then(Value::as_f64)
                .unwrap_or(1.0),
            used: usages
                .get("usages")
                .and_then(|u| u.get(name))
                .and_then(Value::as_u64)
                .unwrap_or(0),
        })
    }

    /// What Placement would still allocate (its own capacity rule).
    fn free(&self) -> u64 {
        let capacity = ((self.total.saturating_sub(self.reserved)) as f64 * self.ratio) as u64;
        capacity.saturating_sub(self.used)
    }
}

/// The architecture Placement traits or the hypervisor's CPU info state.
fn architecture(traits: &[String], cpu_info: Option<&Value>) -> Option<v1::Architecture> {
    if traits.iter().any(|t| t == "HW_ARCH_AARCH64") {
        return Some(v1::Architecture::Arm64);
    }
    let vendor = cpu_info
        .and_then(|c| c.get("vendor"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if traits.iter().any(|t| t == "HW_ARCH_X86_64") {
        // A Hygon (海光) x86_64 is the protocol's c86.
        return Some(if vendor.eq_ignore_ascii_case("hygon") {
            v1::Architecture::C86
        } else {
            v1::Architecture::X8664
        });
    }
    match cpu_info.and_then(|c| c.get("arch")).and_then(Value::as_str) {
        Some("aarch64") | Some("arm64") => Some(v1::Architecture::Arm64),
        Some("x86_64") if vendor.eq_ignore_ascii_case("hygon") => Some(v1::Architecture::C86),
        Some("x86_64") => Some(v1::Architecture::X8664),
        _ => None,
    }
}

async fn get(cloud: &Cloud, service: Service, path: &str) -> Result<Value, Status> {
    cloud
        .get(service, path)
        .await
        .map_err(|e| os_status(&format!("reading {path}"), &e))
}

/// Service host → (availability zone, nova-compute up).
async fn zones(cloud: &Cloud) -> Result<(Vec<String>, HashMap<String, (String, bool)>), Status> {
    let v = get(cloud, Service::Compute, "os-availability-zone/detail").await?;
    let mut names = Vec::new();
    let mut hosts = HashMap::new();
    for z in v
        .get("availabilityZoneInfo")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = str_of(z, "zoneName") else {
            continue;
        };
        let Some(hs) = z.get("hosts").and_then(Value::as_object) else {
            continue;
        };
        let mut computes = false;
        for (host, services) in hs {
            if let Some(c) = services.get("nova-compute") {
                computes = true;
                let up = c.get("available").and_then(Value::as_bool).unwrap_or(false)
                    && c.get("active").and_then(Value::as_bool).unwrap_or(false);
                hosts.insert(host.clone(), (name.clone(), up));
            }
        }
        // The "internal" zone holds only control services: not a zone for VMs.
        if computes && !names.contains(&name) {
            names.push(name);
        }
    }
    Ok((names, hosts))
}

/// Reads the whole inventory; every figure comes from the cloud except the
/// clock rate and the internet bandwidth, which OpenStack does not know
/// (configured).
pub(crate) async fn read(inner: &Inner) -> Result<Snapshot, Status> {
    let op = inner.operator();
    let cfg = &inner.config;
    let (az_names, service_hosts) = zones(op).await?;
    let hypervisors = get(op, Service::Compute, "os-hypervisors/detail").await?;
    let mut by_uuid: HashMap<String, Value> = HashMap::new();
    for h in hypervisors
        .get("hypervisors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(id) = str_of(h, "id") {
            by_uuid.insert(id, h.clone());
        }
    }
    let rps = get(op, Service::Placement, "resource_providers").await?;
    let mut inventory = v1::Inventory::default();
    let mut refusals = Vec::new();
    let mut hosts = HashMap::new();
    // pool id → (zone, arch, cpu model, min vcpu ratio)
    let mut pools: BTreeMap<String, (String, v1::Architecture, String, f64)> = BTreeMap::new();
    let mut revision_basis: u64 = 0;
    // zone → DISK_GB Placement can still allocate: VMs' system disks are
    // the hypervisors' local disks.
    let mut local_disk_gib: BTreeMap<String, u64> = BTreeMap::new();
    for rp in rps
        .get("resource_providers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(uuid) = str_of(rp, "uuid") else {
            continue;
        };
        revision_basis =
            revision_basis.wrapping_add(rp.get("generation").and_then(Value::as_u64).unwrap_or(0));
        let invs = get(
            op,
            Service::Placement,
            &format!("resource_providers/{uuid}/inventories"),
        )
        .await?;
        let usages = get(
            op,
            Service::Placement,
            &format!("resource_providers/{uuid}/usages"),
        )
        .await?;
        let (Some(vcpu), Some(mem)) = (
            Class::of(&invs, &usages, "VCPU"),
            Class::of(&invs, &usages, "MEMORY_MB"),
        ) else {
            // Not a compute node (a network or sharing provider).
            continue;
        };
        let traits_v = get(
            op,
            Service::Placement,
            &format!("resource_providers/{uuid}/traits"),
        )
        .await?;
        let traits: Vec<String> = traits_v
            .get("traits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        let hv = by_uuid.get(&uuid);
        let service_host = hv
            .and_then(|h| h.get("service"))
            .and_then(|s| str_of(s, "host"))
            .or_else(|| str_of(rp, "name"))
            .unwrap_or_else(|| uuid.clone());
        let host_id = slug(&service_host);
        let Some((az, service_up)) = service_hosts.get(&service_host).cloned() else {
            tracing::warn!(host = %service_host, "compute node in no availability zone; not offered");
            continue;
        };
        let zone = slug(&format!("{}{az}", cfg.zone_prefix));
        let cpu_info = hv.and_then(|h| h.get("cpu_info"));
        // cpu_info is a JSON object, or a JSON string of one in older Novas.
        let cpu_info_owned: Option<Value> = match cpu_info {
            Some(Value::String(s)) => serde_json::from_str(s).ok(),
            other => other.cloned(),
        };
        let Some(arch) = architecture(&traits, cpu_info_owned.as_ref()).or(cfg.default_arch) else {
            let message = format!(
                "host {service_host}: neither Placement traits (HW_ARCH_*) nor the hypervisor's cpu_info say its architecture; not offered"
            );
            tracing::warn!("{message}");
            refusals.push(Refusal {
                pool: String::new(),
                host: host_id,
                code: "ARCHITECTURE_UNKNOWN",
                message,
            });
            continue;
        };
        let pool = slug(&format!("{zone}-{}", arch_label(arch)));
        if mem.ratio > 1.0 {
            let message = format!(
                "host {service_host} (pool {pool}): Placement's MEMORY_MB allocation_ratio is {}; yunshu never overcommits memory (003 §3.2.1.1), so it is not offered — set it to 1.0 to onboard it",
                mem.ratio
            );
            tracing::warn!("{message}");
            refusals.push(Refusal {
                pool,
                host: host_id,
                code: "MEMORY_OVERCOMMITTED",
                message,
            });
            continue;
        }
        if let Some(disk) = Class::of(&invs, &usages, "DISK_GB") {
            *local_disk_gib.entry(zone.clone()).or_default() += disk.free();
        }
        let ratio = vcpu.ratio.clamp(1.0, MAX_VCPU_RATIO);
        let model = cpu_info_owned
            .as_ref()
            .and_then(|c| str_of(c, "model"))
            .unwrap_or_default();
        let entry = pools
            .entry(pool.clone())
            .or_insert((zone.clone(), arch, model.clone(), ratio));
        entry.3 = entry.3.min(ratio);
        let hv_up = hv.is_none_or(|h| {
            h.get("state").and_then(Value::as_str) != Some("down")
                && h.get("status").and_then(Value::as_str) != Some("disabled")
        });
        let up = service_up && hv_up;
        inventory.hosts.push(v1::Host {
            id: host_id.clone(),
            pool: pool.clone(),
            cores: u32::try_from(vcpu.total.saturating_sub(vcpu.reserved)).unwrap_or(u32::MAX),
            memory_mib: mem.total,
            // What Placement already holds for anyone counts as reserved:
            // yunshu may only place into what is still free.
            reserved_memory_mib: mem.reserved.saturating_add(mem.used),
            state: if up {
                v1::HostState::Up
            } else {
                v1::HostState::Down
            } as i32,
            model,
        });
        hosts.insert(
            host_id,
            HostFacts {
                zone: zone.clone(),
                az: az.clone(),
                pool,
                arch: arch as i32,
                up,
                free_memory_mib: mem.free(),
                free_vcpus: vcpu.free(),
                rp: uuid.clone(),
            },
        );
    }
    let mut architectures: Vec<i32> = Vec::new();
    for (id, (zone, arch, model, ratio)) in &pools {
        if !architectures.contains(&(*arch as i32)) {
            architectures.push(*arch as i32);
        }
        inventory.pools.push(v1::Pool {
            id: id.clone(),
            zone: zone.clone(),
            network_area: format!("{zone}-{}", cfg.area_suffix),
            arch: *arch as i32,
            cpu_model: model.clone(),
            clock_mhz: cfg.clock_mhz,
            vcpu_ratio: *ratio as u32,
        });
    }
    // Storage: Cinder volume types, with the scheduler's pool capacity.
    let types = get(&inner.projects.default, Service::Volume, "types").await?;
    let pools_v = get(op, Service::Volume, "scheduler-stats/get_pools?detail=true")
        .await
        .unwrap_or(Value::Null);
    // A backend saying "infinite" (thin NFS, the fake driver) gives no figure
    // to plan with: it counts only with the operator's `infinite_storage_gib`.
    let capacity_gib: u64 = pools_v
        .get("pools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("capabilities")?.get("total_capacity_gb"))
        .map(|total| match total {
            Value::String(s) if s.eq_ignore_ascii_case("infinite") => cfg.infinite_storage_gib,
            other => other.as_f64().map_or(0, |g| g as u64),
        })
        .sum();
    let (ext_cidrs, ext_total) = external_pool(inner).await?;
    for (i, az) in az_names.iter().enumerate() {
        let zone = slug(&format!("{}{az}", cfg.zone_prefix));
        inventory.zones.push(v1::Zone {
            id: zone.clone(),
            name: az.clone(),
        });
        let gov = format!("{zone}-{}", cfg.area_suffix);
        let internet = format!("{zone}-{}", cfg.internet_area_suffix);
        inventory.network_areas.push(v1::NetworkArea {
            id: gov.clone(),
            zone: zone.clone(),
            name: format!("{az} 政务外网区"),
            kind: v1::NetworkAreaKind::GovExtranet as i32,
        });
        inventory.network_areas.push(v1::NetworkArea {
            id: internet.clone(),
            zone: zone.clone(),
            name: format!("{az} 互联网区"),
            kind: v1::NetworkAreaKind::Internet as i32,
        });
        if let Some(gib) = local_disk_gib.get(&zone) {
            inventory.storage_classes.push(v1::StorageClass {
                id: local_class(&zone),
                zone: zone.clone(),
                name: format!("{az} local disk (Nova)"),
                capacity_gib: *gib,
                iops_class: v1::IopsClass::Standard as i32,
                iops_per_disk: cfg.iops_per_disk,
            });
        }
        // Cinder's types, when its backends state a size (or the operator
        // gives one for backends that say "infinite").
        for t in types
            .get("volume_types")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|_| capacity_gib > 0)
        {
            let Some(name) = str_of(t, "name") else {
                continue;
            };
            inventory.storage_classes.push(v1::StorageClass {
                id: type_class(&zone, &name),
                zone: zone.clone(),
                name,
                capacity_gib,
                iops_class: v1::IopsClass::Standard as i32,
                iops_per_disk: cfg.iops_per_disk,
            });
        }
        // One external network: its addresses are offered once, in the first zone.
        if i == 0 && ext_total > 0 {
            inventory.ip_pools.push(v1::IpPool {
                id: slug(&format!("{zone}-{}", cfg.external_network)),
                zone: zone.clone(),
                network_area: internet.clone(),
                cidrs: ext_cidrs.clone(),
                total: ext_total,
            });
            if cfg.bandwidth_mbps > 0 {
                inventory.bandwidth.push(v1::Bandwidth {
                    zone: zone.clone(),
                    network_area: internet,
                    total_mbps: cfg.bandwidth_mbps,
                });
            }
        }
    }
    inventory.revision = revision_basis.wrapping_add(
        inventory
            .hosts
            .iter()
            .filter(|h| h.state == v1::HostState::Up as i32)
            .count() as u64,
    );
    Ok(Snapshot {
        inventory,
        architectures,
        refusals,
        hosts,
    })
}

/// The external network's subnets and how many addresses their allocation
/// pools hold.
async fn external_pool(inner: &Inner) -> Result<(Vec<String>, u32), Status> {
    let v = get(
        &inner.projects.default,
        Service::Network,
        &format!("subnets?network_id={}", inner.external_network),
    )
    .await?;
    let mut cidrs = Vec::new();
    let mut total: u32 = 0;
    for s in v
        .get("subnets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(c) = str_of(s, "cidr") {
            cidrs.push(c);
        }
        for p in s
            .get("allocation_pools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(a), Some(b)) = (
                str_of(p, "start").and_then(|x| yunshu_driver_sdk::cidr::parse_ip(&x)),
                str_of(p, "end").and_then(|x| yunshu_driver_sdk::cidr::parse_ip(&x)),
            ) else {
                continue;
            };
            total = total.saturating_add(b.saturating_sub(a).saturating_add(1));
        }
    }
    Ok((cidrs, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placement_free_is_placement_rule() {
        let inv = json!({"inventories": {"MEMORY_MB": {"total": 1000, "reserved": 100, "allocation_ratio": 1.0}}});
        let use_ = json!({"usages": {"MEMORY_MB": 300}});
        let c = Class::of(&inv, &use_, "MEMORY_MB").expect("class");
        assert_eq!(c.free(), 600);
    }

    #[test]
    fn architecture_from_traits_then_cpu_info() {
        assert_eq!(
            architecture(&["HW_ARCH_AARCH64".to_owned()], None),
            Some(v1::Architecture::Arm64)
        );
        let hygon = json!({"arch": "x86_64", "vendor": "Hygon"});
        assert_eq!(architecture(&[], Some(&hygon)), Some(v1::Architecture::C86));
        assert_eq!(architecture(&[], Some(&json!({}))), None);
    }

    #[test]
    fn slugs_are_ids() {
        assert_eq!(slug("Nova AZ"), "nova-az");
        assert_eq!(slug("-x"), "x");
    }
}
