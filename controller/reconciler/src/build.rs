//! From a wanted resource ([`Want`]) to the record the reconciler writes: the
//! spec in the provider's terms (network area ids, storage classes, images),
//! the placement, and for what takes capacity the reservation in the index —
//! a whole host for bare metal, storage for volumes, an address and bandwidth
//! for EIPs. VMs are placed by group in `materialize` (anti-affinity).
//!
//! Every system lives in one zone of one provider (its [`Site`]): the VPC is
//! zonal and every subnet, server, volume and address must be in the VPC's
//! zone. Must not write to the store.

use std::num::NonZeroU32;

use yunshu_domain::ids::{ImageId, NetworkAreaId, StorageClassId, ZoneId};
use yunshu_domain::order_line::ServerForm;
use yunshu_domain::order_services::VolumeTier;
use yunshu_domain::provider::NetworkAreaKind;
use yunshu_domain::resource::{
    BackupPolicySpec, BareMetalSpec, EipSpec, LoadBalancerSpec, Placement, Resource, ResourceKind,
    ResourceSpec, SecurityGroupSpec, SnapshotSpec, SubnetSpec, VolumeSpec, VpcSpec,
};
use yunshu_domain::{ErrorCode, Name, ProviderId, ResourceId, SystemNumber};
use yunshu_placement::{BareMetalRequest, Disk, PoolKey, SharedRequest};
use yunshu_workflow::desired::{Item, Want};

use super::Reconciler;

/// Where a system's resources live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub provider: ProviderId,
    pub zone: ZoneId,
}

/// Why a want cannot be built now, in both languages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub reason_zh: String,
}

impl Refusal {
    pub fn new(reason: impl Into<String>, reason_zh: impl Into<String>) -> Self {
        Refusal {
            reason: reason.into(),
            reason_zh: reason_zh.into(),
        }
    }

    pub fn from_code(e: &impl ErrorCode) -> Self {
        Refusal::new(e.to_string(), e.message_zh())
    }
}

/// The network area of `kind` in the site's zone (the smallest id when there
/// are several).
pub fn area_id(
    r: &Reconciler,
    site: &Site,
    kind: NetworkAreaKind,
) -> Result<NetworkAreaId, Refusal> {
    let inventories = r.inventories.lock().unwrap_or_else(|e| e.into_inner());
    inventories
        .get(&site.provider)
        .and_then(|inv| {
            inv.areas
                .iter()
                .filter(|(_, (zone, k))| zone == &site.zone && *k == kind)
                .map(|(id, _)| id.clone())
                .min()
        })
        .ok_or_else(|| {
            Refusal::new(
                format!(
                    "zone {} of provider {} has no {} network area",
                    site.zone,
                    site.provider,
                    kind.label_zh()
                ),
                format!(
                    "云服务商 {} 的部署节点 {} 没有{}",
                    site.provider,
                    site.zone,
                    kind.label_zh()
                ),
            )
        })
}

/// The storage class of `tier` in the site's zone (the smallest id).
fn storage_class(r: &Reconciler, site: &Site, tier: VolumeTier) -> Result<StorageClassId, Refusal> {
    let inventories = r.inventories.lock().unwrap_or_else(|e| e.into_inner());
    inventories
        .get(&site.provider)
        .and_then(|inv| {
            inv.storage_tiers
                .iter()
                .filter(|(_, (zone, t))| zone == &site.zone && *t == tier)
                .map(|(id, _)| id.clone())
                .min()
        })
        .ok_or_else(|| {
            Refusal::new(
                format!("zone {} offers no {tier} storage", site.zone),
                format!("部署节点 {} 没有{}存储", site.zone, tier.label_zh()),
            )
        })
}

/// Whether the provider's driver said it can create `kind` (a driver that
/// declares nothing is taken at its word for VMs only).
pub fn supports(r: &Reconciler, site: &Site, kind: ResourceKind) -> bool {
    let inventories = r.inventories.lock().unwrap_or_else(|e| e.into_inner());
    inventories.get(&site.provider).is_some_and(|inv| {
        inv.kinds.contains(&kind) || (inv.kinds.is_empty() && kind == ResourceKind::Vm)
    })
}

/// An image id for the OS the applicant named ("麒麟 V10" → `kylin-v10`); a
/// name with no ASCII in it gets `os-<hash>`.
pub fn image_for(os: &str) -> Result<ImageId, Refusal> {
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
        ImageId::new(format!("os-{}", &hash[..12])).map_err(|e| Refusal::from_code(&e))
    })
}

fn placement(site: &Site, area: Option<NetworkAreaId>) -> Placement {
    Placement {
        provider: site.provider.clone(),
        zone: site.zone.clone(),
        network_area: area,
        pool: None,
        host: None,
    }
}

/// The spec and placement of a want that is not a server, without reserving
/// anything (updates compare specs with this).
pub fn spec_of(
    r: &Reconciler,
    site: &Site,
    want: &Want,
) -> Result<(ResourceSpec, Placement), Refusal> {
    let nz = |v: u32| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
    Ok(match &want.item {
        Item::Vpc { cidr } => (
            ResourceSpec::Vpc(VpcSpec { cidr: *cidr }),
            placement(site, None),
        ),
        Item::Subnet { vpc, cidr, area } => {
            let area_id = area_id(r, site, *area)?;
            (
                ResourceSpec::Subnet(SubnetSpec {
                    vpc: vpc.clone(),
                    cidr: *cidr,
                    zone: site.zone.clone(),
                    network_area: area_id.clone(),
                }),
                placement(site, Some(area_id)),
            )
        }
        Item::SecurityGroup { rules } => (
            ResourceSpec::SecurityGroup(SecurityGroupSpec {
                rules: rules.clone(),
            }),
            placement(site, None),
        ),
        Item::Volume {
            size_gib,
            tier,
            attach_to,
            restore_from,
        } => (
            ResourceSpec::Volume(VolumeSpec {
                size_gib: *size_gib,
                storage_class: storage_class(r, site, *tier)?,
                zone: site.zone.clone(),
                attached_to: Some(attach_to.clone()),
                restore_from: restore_from.clone(),
            }),
            placement(site, None),
        ),
        Item::Eip {
            bandwidth_mbps,
            bind_to,
            area,
        } => (
            ResourceSpec::Eip(EipSpec {
                bandwidth_mbps: *bandwidth_mbps,
                bound_to: Some(bind_to.clone()),
            }),
            placement(site, Some(area_id(r, site, *area)?)),
        ),
        Item::LoadBalancer {
            subnet,
            area,
            listeners,
            members,
        } => (
            ResourceSpec::LoadBalancer(LoadBalancerSpec {
                subnet: subnet.clone(),
                listeners: listeners.clone(),
                members: members.clone(),
            }),
            placement(site, Some(area_id(r, site, *area)?)),
        ),
        Item::WafPolicy { spec } => (ResourceSpec::WafPolicy(spec.clone()), placement(site, None)),
        Item::BackupPolicy {
            target,
            backup_type,
            schedule,
            retention_days,
            capacity_gib,
        } => (
            ResourceSpec::BackupPolicy(BackupPolicySpec {
                targets: vec![target.clone()],
                backup_type: *backup_type,
                schedule: *schedule,
                retention_days: *retention_days,
                capacity_gib: nz(capacity_gib.get()),
            }),
            placement(site, None),
        ),
        Item::Snapshot { source } => (
            ResourceSpec::Snapshot(SnapshotSpec {
                source: source.clone(),
            }),
            placement(site, None),
        ),
        Item::Server { server, .. } => {
            // Servers are placed with their group; their spec is built there.
            return Err(Refusal::new(
                format!("{} is placed with its group", server.server_name),
                format!("{} 随其服务器组放置", server.server_name),
            ));
        }
    })
}

/// What a built resource reserved in the index (released if its order does
/// not go ahead, or the write fails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    Nothing,
    Held(ResourceId),
}

/// Builds the record of a want that is not a VM (VMs: `materialize`, by
/// group), reserving what it takes.
pub fn build(
    r: &Reconciler,
    site: &Site,
    system: &SystemNumber,
    id: &ResourceId,
    want: &Want,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Resource, Reserved), Refusal> {
    let kind = want.item.kind();
    if !supports(r, site, kind) {
        return Err(Refusal::new(
            format!(
                "the driver of provider {} does not offer {kind} resources",
                site.provider
            ),
            format!("云服务商 {} 的驱动不提供 {kind} 类资源", site.provider),
        ));
    }
    let (spec, place, reserved) = match &want.item {
        Item::Server {
            server,
            subnet,
            stopped,
            ..
        } if server.form == ServerForm::BareMetal => {
            let area = area_id(r, site, server.network_area)?;
            let key = PoolKey {
                provider: site.provider.clone(),
                zone: site.zone.clone(),
                network_area: area.clone(),
                arch: server.architecture,
            };
            let request = BareMetalRequest {
                alloc: id.clone(),
                key,
                model: server.model.as_ref().map(ToString::to_string),
                min_memory_mib: u64::from(server.memory_gib.get()) * 1024,
                // A bare-metal line's vCPUs count threads: two per core.
                min_cores: server.vcpu.get().div_ceil(2),
            };
            let p = r
                .index
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .place_bare_metal(&request)
                .map_err(|e| Refusal::from_code(&e))?;
            let flavor = server
                .model
                .clone()
                .or_else(|| Name::new(format!("{} 核", server.vcpu)).ok());
            (
                ResourceSpec::BareMetal(BareMetalSpec {
                    stopped: *stopped,
                    arch: server.architecture,
                    flavor,
                    image: image_for(server.os.as_str())?,
                    zone: site.zone.clone(),
                    network_area: area.clone(),
                    nics: vec![subnet.clone()],
                }),
                Placement {
                    provider: p.provider,
                    zone: p.zone,
                    network_area: Some(p.network_area),
                    pool: Some(p.pool),
                    host: Some(p.host),
                },
                Reserved::Held(id.clone()),
            )
        }
        _ => {
            let (spec, place) = spec_of(r, site, want)?;
            let shared = shared_request(id, &spec, &place);
            let reserved = match shared {
                Some(req) => {
                    r.index
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .reserve_shared(&req)
                        .map_err(|e| Refusal::from_code(&e))?;
                    Reserved::Held(id.clone())
                }
                None => Reserved::Nothing,
            };
            (spec, place, reserved)
        }
    };
    let release = |reserved: &Reserved| {
        if let Reserved::Held(id) = reserved {
            r.index
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .release_any(id);
        }
    };
    let mut resource = match Resource::new(
        id.clone(),
        system.clone(),
        Some(want.order.clone()),
        spec,
        now,
    ) {
        Ok(res) => res,
        Err(e) => {
            release(&reserved);
            return Err(Refusal::from_code(&e));
        }
    };
    resource.place(place);
    Ok((resource, reserved))
}

/// The zone-level reservation a volume or an EIP holds; `None` for others.
pub fn shared_request(
    id: &ResourceId,
    spec: &ResourceSpec,
    place: &Placement,
) -> Option<SharedRequest> {
    match spec {
        ResourceSpec::Volume(v) => Some(SharedRequest {
            alloc: id.clone(),
            provider: place.provider.clone(),
            zone: place.zone.clone(),
            network_area: None,
            disks: vec![Disk {
                storage_class: v.storage_class.clone(),
                size_gib: u64::from(v.size_gib.get()),
            }],
            bandwidth_mbps: 0,
            public_ips: 0,
        }),
        ResourceSpec::Eip(e) => Some(SharedRequest {
            alloc: id.clone(),
            provider: place.provider.clone(),
            zone: place.zone.clone(),
            network_area: place.network_area.clone(),
            disks: Vec::new(),
            bandwidth_mbps: u64::from(e.bandwidth_mbps.get()),
            public_ips: 1,
        }),
        _ => None,
    }
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
