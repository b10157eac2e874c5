//! The reconciler's view of the drivers: one mTLS client per registered provider
//! (dialled on first use, dropped on a transport error so the next call
//! re-dials) and their inventory, translated into the placement index's terms.
//! Each client is pinned to the certificate its registry record names; every
//! listing of the registry (each driver-record write, and every 30 s) hands the
//! fresh record to the client's pins, so a channel reconnecting after a renewal
//! accepts the new certificate and, after the grace, no longer the old one.
//!
//! Owns the proto → placement translation. Must not place anything.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use yunshu_domain::ids::{HostId, NetworkAreaId, PoolId, StorageClassId, ZoneId};
use yunshu_domain::order_services::VolumeTier;
use yunshu_domain::provider::{HostState, NetworkAreaKind};
use yunshu_domain::resource::ResourceKind;
use yunshu_domain::{Architecture, ProviderId};
use yunshu_drivers::DriverPki;
use yunshu_drivers::registry::DriverRecord;
use yunshu_placement::{
    AreaKey, BandwidthSpec, HostSpec, PoolKey, PoolSpec, ProviderInventory, PublicIpSpec,
    StorageClassSpec, StorageKey,
};
use yunshu_proto::tonic::transport::Channel;
use yunshu_proto::v1;
use yunshu_proto::v1::driver_client::DriverClient;
use yunshu_store::{PageRequest, Store, records};
use yunshu_workflow::capacity::PoolRefusal;

use super::connect;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("no driver is registered for provider {0}")]
    NotRegistered(String),
    #[error(transparent)]
    Connect(#[from] connect::ConnectError),
    #[error("driver call failed: {0}")]
    Call(#[from] yunshu_proto::tonic::Status),
    #[error(transparent)]
    Store(#[from] yunshu_store::StoreError),
    #[error("inventory of {provider} is invalid: {reason}")]
    Inventory { provider: String, reason: String },
}

/// Driver clients by provider.
pub struct Providers {
    pki: Arc<DriverPki>,
    store: Arc<dyn Store>,
    clients: Mutex<HashMap<String, (DriverClient<Channel>, connect::Pins)>>,
}

impl Providers {
    pub fn new(pki: Arc<DriverPki>, store: Arc<dyn Store>) -> Self {
        Providers {
            pki,
            store,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// A client for `provider` (a cheap clone of a shared channel).
    pub async fn client(&self, provider: &str) -> Result<DriverClient<Channel>, ProviderError> {
        if let Some(c) = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(provider)
        {
            return Ok(c.0.clone());
        }
        let (record, _) = records::get::<DriverRecord>(&*self.store, provider)
            .await?
            .ok_or_else(|| ProviderError::NotRegistered(provider.to_owned()))?;
        let pins = Arc::new(RwLock::new(record));
        let c = connect::connect_pinned(&self.pki, pins.clone()).await?;
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(provider.to_owned(), (c.clone(), pins));
        Ok(c)
    }

    /// Drops the cached client after a transport failure (the driver may have
    /// moved or renewed its certificate): the next call dials again.
    pub fn forget(&self, provider: &str) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(provider);
    }

    /// The providers with a registered driver. Refreshes each cached client's
    /// pins from the records read; a client whose driver moved, or whose
    /// record is gone, is dropped (the next call dials the record as it is).
    pub async fn registered(&self) -> Result<Vec<String>, ProviderError> {
        let (items, _) =
            records::list::<DriverRecord>(&*self.store, PageRequest::default()).await?;
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.retain(|provider, (_, pins)| {
            let Some(fresh) = items.iter().find(|d| &d.provider == provider) else {
                return false;
            };
            let mut pinned = pins.write().unwrap_or_else(|e| e.into_inner());
            if pinned.endpoint != fresh.endpoint {
                return false;
            }
            *pinned = fresh.clone();
            true
        });
        drop(clients);
        Ok(items.into_iter().map(|d| d.provider).collect())
    }

    /// The provider's inventory, for the placement index, with each network
    /// area's kind (requests name kinds: 政务外网区, 互联网区).
    pub async fn inventory(&self, provider: &str) -> Result<Inventory, ProviderError> {
        let mut c = self.client(provider).await?;
        let inv = match c.get_inventory(v1::GetInventoryRequest {}).await {
            Ok(r) => r.into_inner(),
            Err(e) => {
                self.forget(provider);
                return Err(e.into());
            }
        };
        let info = match c.get_info(v1::GetInfoRequest {}).await {
            Ok(r) => r.into_inner(),
            Err(e) => {
                self.forget(provider);
                return Err(e.into());
            }
        };
        let mut translated = translate(provider, &inv)?;
        translated.kinds = info
            .kinds
            .iter()
            .filter_map(|k| v1::ResourceKind::try_from(*k).ok())
            .filter_map(yunshu_proto::convert::kind_from_wire)
            .collect();
        Ok(translated)
    }
}

/// A provider's inventory in placement terms.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub index: ProviderInventory,
    /// Network area id → (zone, kind).
    pub areas: HashMap<NetworkAreaId, (ZoneId, NetworkAreaKind)>,
    /// Storage class id → (zone, tier): volumes ask for a tier.
    pub storage_tiers: HashMap<StorageClassId, (ZoneId, VolumeTier)>,
    /// The kinds the driver says it can create (`GetInfo.kinds`).
    pub kinds: BTreeSet<ResourceKind>,
    /// Pools this intake refused to place on, with why (their hosts are in
    /// the index as not schedulable).
    pub refusals: Vec<PoolRefusal>,
}

/// The controller's own check of a pool the driver reports, not the driver's
/// word: a pool clocked below its architecture's minimum (ARM ≥ 2.4 GHz, C86
/// and x86 ≥ 2.2 GHz: seed 003 §3.2.1.1, §3.1.3 item 1001) takes no new VMs.
/// A clock of 0 (the driver does not say) is below every minimum.
fn pool_refusal(
    pid: &ProviderId,
    pool: &PoolId,
    arch: Architecture,
    clock_mhz: u32,
) -> Option<PoolRefusal> {
    let min = arch.min_clock_mhz();
    (clock_mhz < min).then(|| PoolRefusal {
        provider: pid.clone(),
        pool: pool.clone(),
        code: "POOL_CLOCK_BELOW_MINIMUM",
        message: format!(
            "pool {pool} ({arch}) is clocked at {clock_mhz} MHz, below the {min} MHz minimum for {arch} (003 §3.2.1.1): no new VMs are placed on it"
        ),
        message_zh: format!(
            "资源池 {pool}（{arch}）主频 {clock_mhz} MHz，低于 {arch} 架构最低主频 {min} MHz（003 §3.2.1.1），不再分配新的云主机"
        ),
    })
}

fn bad(provider: &str, reason: impl Into<String>) -> ProviderError {
    ProviderError::Inventory {
        provider: provider.to_owned(),
        reason: reason.into(),
    }
}

fn id<T: std::str::FromStr>(provider: &str, what: &str, v: &str) -> Result<T, ProviderError> {
    v.parse()
        .map_err(|_| bad(provider, format!("{what} id {v:?} is not a valid id")))
}

fn translate(provider: &str, inv: &v1::Inventory) -> Result<Inventory, ProviderError> {
    let pid: ProviderId = id(provider, "provider", provider)?;
    let mut areas = HashMap::new();
    for a in &inv.network_areas {
        let kind = match v1::NetworkAreaKind::try_from(a.kind) {
            Ok(v1::NetworkAreaKind::GovExtranet) => NetworkAreaKind::GovExtranet,
            Ok(v1::NetworkAreaKind::Internet) => NetworkAreaKind::Internet,
            _ => NetworkAreaKind::Dedicated,
        };
        areas.insert(
            id::<NetworkAreaId>(provider, "network area", &a.id)?,
            (id::<ZoneId>(provider, "zone", &a.zone)?, kind),
        );
    }
    let mut pools = Vec::new();
    let mut refusals = Vec::new();
    for p in &inv.pools {
        let arch = v1::Architecture::try_from(p.arch)
            .ok()
            .and_then(yunshu_proto::convert::arch_from_wire)
            .ok_or_else(|| bad(provider, format!("pool {} has no architecture", p.id)))?;
        let area: NetworkAreaId = id(provider, "network area", &p.network_area)?;
        let kind = areas
            .get(&area)
            .map(|(_, k)| *k)
            .ok_or_else(|| bad(provider, format!("pool {} names unknown area", p.id)))?;
        let pool_id = id::<PoolId>(provider, "pool", &p.id)?;
        refusals.extend(pool_refusal(&pid, &pool_id, arch, p.clock_mhz));
        pools.push(PoolSpec {
            id: pool_id,
            key: PoolKey {
                provider: pid.clone(),
                zone: id(provider, "zone", &p.zone)?,
                network_area: area,
                arch,
            },
            area_kind: kind,
            vcpu_ratio: if p.vcpu_ratio == 0 {
                yunshu_placement::DEFAULT_VCPU_RATIO
            } else {
                p.vcpu_ratio
            },
        });
    }
    let mut hosts = Vec::new();
    for h in &inv.hosts {
        let state = match v1::HostState::try_from(h.state) {
            Ok(v1::HostState::Up) => HostState::Ready,
            Ok(v1::HostState::Maintenance) => HostState::Maintenance,
            _ => HostState::Down,
        };
        let pool: PoolId = id(provider, "pool", &h.pool)?;
        // A refused pool's hosts keep what they hold and take nothing new.
        let state = if state == HostState::Ready && refusals.iter().any(|r| r.pool == pool) {
            HostState::Maintenance
        } else {
            state
        };
        hosts.push(HostSpec {
            provider: pid.clone(),
            pool,
            id: id::<HostId>(provider, "host", &h.id)?,
            cores: h.cores,
            memory_mib: h.memory_mib,
            reserved_memory_mib: h.reserved_memory_mib,
            state,
            model: (!h.model.is_empty()).then(|| h.model.clone()),
        });
    }
    let storage_classes = inv
        .storage_classes
        .iter()
        .map(|s| {
            Ok(StorageClassSpec {
                key: StorageKey {
                    provider: pid.clone(),
                    zone: id(provider, "zone", &s.zone)?,
                    class: id::<StorageClassId>(provider, "storage class", &s.id)?,
                },
                capacity_gib: s.capacity_gib,
            })
        })
        .collect::<Result<Vec<_>, ProviderError>>()?;
    let area_key = |zone: &str, area: &str| -> Result<AreaKey, ProviderError> {
        Ok(AreaKey {
            provider: pid.clone(),
            zone: id(provider, "zone", zone)?,
            network_area: id(provider, "network area", area)?,
        })
    };
    let bandwidth = inv
        .bandwidth
        .iter()
        .map(|b| {
            Ok(BandwidthSpec {
                area: area_key(&b.zone, &b.network_area)?,
                total_mbps: b.total_mbps,
            })
        })
        .collect::<Result<Vec<_>, ProviderError>>()?;
    // The proto has IP pools; placement counts public IPs per zone and area.
    let mut ips: HashMap<AreaKey, u64> = HashMap::new();
    for p in &inv.ip_pools {
        *ips.entry(area_key(&p.zone, &p.network_area)?).or_default() += u64::from(p.total);
    }
    let public_ips = ips
        .into_iter()
        .map(|(area, total)| PublicIpSpec { area, total })
        .collect();
    let mut storage_tiers = HashMap::new();
    for s in &inv.storage_classes {
        let tier = match v1::IopsClass::try_from(s.iops_class) {
            Ok(v1::IopsClass::High) => VolumeTier::HighPerformance,
            _ => VolumeTier::Standard,
        };
        storage_tiers.insert(
            id::<StorageClassId>(provider, "storage class", &s.id)?,
            (id::<ZoneId>(provider, "zone", &s.zone)?, tier),
        );
    }
    Ok(Inventory {
        storage_tiers,
        kinds: BTreeSet::new(),
        refusals,
        index: ProviderInventory {
            pools,
            hosts,
            storage_classes,
            bandwidth,
            public_ips,
        },
        areas,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(id: &str, arch: v1::Architecture, clock_mhz: u32) -> v1::Pool {
        v1::Pool {
            id: id.to_owned(),
            zone: "z1".to_owned(),
            network_area: "gov".to_owned(),
            arch: arch as i32,
            cpu_model: "test".to_owned(),
            clock_mhz,
            vcpu_ratio: 4,
        }
    }

    /// Seed 003 §3.2.1.1 (and §3.1.3 item 1001): vCPU ARM 架构主频不低于
    /// 2.4GHz，C86 和 x86 主频不低于 2.2GHz. The controller's own intake checks
    /// the clock a driver reports: a slower pool (or one whose driver gives no
    /// clock) is refused with `POOL_CLOCK_BELOW_MINIMUM`, its hosts are not
    /// schedulable (the index places nothing there and capacity shows 0
    /// schedulable hosts), and pools at the minimum are used as before.
    #[test]
    fn seed_003_3_2_1_1_pools_below_the_clock_minimum_are_not_placed_on() {
        use v1::Architecture::{Arm64, C86, X8664};
        let pools = [
            pool("arm-slow", Arm64, 2300),
            pool("arm-ok", Arm64, 2400),
            pool("x86-ok", X8664, 2200),
            pool("c86-slow", C86, 2199),
            pool("x86-unknown", X8664, 0),
        ];
        let inv = v1::Inventory {
            network_areas: vec![v1::NetworkArea {
                id: "gov".to_owned(),
                zone: "z1".to_owned(),
                name: "政务外网区".to_owned(),
                kind: v1::NetworkAreaKind::GovExtranet as i32,
            }],
            hosts: pools
                .iter()
                .map(|p| v1::Host {
                    id: format!("h-{}", p.id),
                    pool: p.id.clone(),
                    cores: 32,
                    memory_mib: 128 * 1024,
                    reserved_memory_mib: 4096,
                    state: v1::HostState::Up as i32,
                    model: String::new(),
                })
                .collect(),
            pools: pools.to_vec(),
            ..Default::default()
        };
        let translated = translate("sim", &inv).expect("inventory");
        let refused: Vec<(&str, &str)> = translated
            .refusals
            .iter()
            .map(|r| (r.pool.as_str(), r.code))
            .collect();
        assert_eq!(
            refused,
            [
                ("arm-slow", "POOL_CLOCK_BELOW_MINIMUM"),
                ("c86-slow", "POOL_CLOCK_BELOW_MINIMUM"),
                ("x86-unknown", "POOL_CLOCK_BELOW_MINIMUM"),
            ]
        );
        assert!(translated.refusals[0].message.contains("2400 MHz"));
        assert!(translated.refusals[0].message_zh.contains("最低主频"));

        let mut index = yunshu_placement::Index::new();
        let pid: ProviderId = "sim".parse().expect("id");
        index
            .sync_provider(&pid, translated.index.clone())
            .expect("index");
        let schedulable: Vec<(String, u32, u32)> = index
            .capacity_report()
            .iter()
            .map(|c| (c.pool.pool.to_string(), c.hosts, c.hosts_schedulable))
            .collect();
        for (pool, hosts, ok) in schedulable {
            let expected = u32::from(!pool.ends_with("slow") && !pool.ends_with("unknown"));
            assert_eq!((hosts, ok), (1, expected), "{pool}");
        }
    }
}
