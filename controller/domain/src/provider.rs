//! Provider inventory (SPEC §2, §5): the provider platform, its zones (部署节点),
//! network areas (网络区域), resource pools per architecture, hosts and storage
//! classes.
//!
//! Owns the compliance rules a driver's reported inventory must meet: minimum CPU
//! clock per architecture (003 §3.2.1.1), at most 4 vCPU per physical core (003
//! §3.1.3 item 1001), a memory reserve below the host's memory (memory is never
//! overcommitted, 003 §3.2.1.1), and per-disk IOPS ranges for storage classes (003
//! §3.2.1.4–3.2.1.5). Capacity arithmetic and placement live in the scheduler.

use std::num::NonZeroU32;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    arch::Architecture,
    error::ErrorCode,
    ids::{HostId, NetworkAreaId, PoolId, ProviderId, StorageClassId, ZoneId},
    record::Record,
    text::Name,
};

/// Why inventory reported by a driver or an operator was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProviderError {
    #[error("{arch} pool clock {clock_mhz} MHz is below the minimum {min_mhz} MHz")]
    PoolClockTooLow {
        arch: Architecture,
        clock_mhz: u32,
        min_mhz: u32,
    },
    #[error("vCPU ratio {ratio} must be between 1 and {max} vCPU per physical core")]
    PoolVcpuRatioInvalid { ratio: u32, max: u32 },
    #[error(
        "host reserved memory {reserved_mib} MiB must be less than its memory {memory_mib} MiB"
    )]
    HostReserveExceedsMemory { memory_mib: u64, reserved_mib: u64 },
    #[error("{class:?} storage must offer {min}-{max} IOPS per disk, got {iops}")]
    StorageIopsOutOfClass {
        class: IopsClass,
        iops: u32,
        min: u32,
        max: u32,
    },
}

impl ErrorCode for ProviderError {
    fn code(&self) -> &'static str {
        match self {
            ProviderError::PoolClockTooLow { .. } => "POOL_CLOCK_TOO_LOW",
            ProviderError::PoolVcpuRatioInvalid { .. } => "POOL_VCPU_RATIO_INVALID",
            ProviderError::HostReserveExceedsMemory { .. } => "HOST_RESERVE_EXCEEDS_MEMORY",
            ProviderError::StorageIopsOutOfClass { .. } => "STORAGE_IOPS_OUT_OF_CLASS",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            ProviderError::PoolClockTooLow {
                arch,
                clock_mhz,
                min_mhz,
            } => format!("{arch} 资源池 CPU 主频 {clock_mhz} MHz 低于要求的 {min_mhz} MHz"),
            ProviderError::PoolVcpuRatioInvalid { ratio, max } => {
                format!("虚拟化比 {ratio} 无效：每个物理核最多 {max} 个 vCPU")
            }
            ProviderError::HostReserveExceedsMemory {
                memory_mib,
                reserved_mib,
            } => format!("宿主机预留内存 {reserved_mib} MiB 不小于其内存 {memory_mib} MiB"),
            ProviderError::StorageIopsOutOfClass {
                class,
                iops,
                min,
                max,
            } => format!(
                "{}存储单盘 IOPS 应为 {min}–{max}，实际 {iops}",
                class.label_zh()
            ),
        }
    }
}

/// Network area kind (网络区域). The areas are isolated from each other
/// (003 §2.3.2 (9)); crossing goes through a gateway (网闸, 000 附件3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkAreaKind {
    /// 政务外网区
    GovExtranet,
    /// 互联网区
    Internet,
    /// 业务专网 / 其它专网
    Dedicated,
}

impl NetworkAreaKind {
    /// The wire and API name (`gov_extranet`, `internet`, `dedicated`).
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkAreaKind::GovExtranet => "gov_extranet",
            NetworkAreaKind::Internet => "internet",
            NetworkAreaKind::Dedicated => "dedicated",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            NetworkAreaKind::GovExtranet => "政务外网区",
            NetworkAreaKind::Internet => "互联网区",
            NetworkAreaKind::Dedicated => "专网",
        }
    }
}

/// Provider (云服务商平台): one cloud service provider's platform, reached through
/// one driver process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub id: ProviderId,
    pub name: Name,
    pub created_at: DateTime<Utc>,
}

impl Record for Provider {
    const KIND: &'static str = "provider";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.id.to_string()
    }
}

/// Zone (部署节点), e.g. 北京城市副中心节点 (004 part 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub provider: ProviderId,
    pub id: ZoneId,
    pub name: Name,
}

impl Record for Zone {
    const KIND: &'static str = "zone";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        format!("{}/{}", self.provider, self.id)
    }
}

/// A network area of one zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkArea {
    pub provider: ProviderId,
    pub zone: ZoneId,
    pub id: NetworkAreaId,
    pub kind: NetworkAreaKind,
    pub name: Name,
}

impl Record for NetworkArea {
    const KIND: &'static str = "network_area";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        format!("{}/{}/{}", self.provider, self.zone, self.id)
    }
}

/// Default and maximum vCPU per physical core: physical / virtual ≥ 1/4
/// (003 §3.1.3 item 1001). A pool may be configured lower, never higher.
pub const MAX_VCPU_RATIO: u32 = 4;

fn default_vcpu_ratio() -> u32 {
    MAX_VCPU_RATIO
}

/// Resource pool (资源池): hosts of one architecture in one zone and network area.
/// Private fields keep the clock and ratio rules; deserialization re-checks them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PoolFields")]
pub struct Pool {
    provider: ProviderId,
    id: PoolId,
    zone: ZoneId,
    network_area: NetworkAreaId,
    arch: Architecture,
    cpu_model: Name,
    clock_mhz: u32,
    vcpu_ratio: u32,
}

/// The fields of a [`Pool`], before validation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PoolFields {
    pub provider: ProviderId,
    pub id: PoolId,
    pub zone: ZoneId,
    pub network_area: NetworkAreaId,
    pub arch: Architecture,
    /// CPU model as reported, e.g. `Kunpeng 920`, `Hygon C86 7285`.
    pub cpu_model: Name,
    /// Base clock in MHz (integer, so that 2.2 GHz is exactly 2200).
    pub clock_mhz: u32,
    /// vCPU per physical core; defaults to [`MAX_VCPU_RATIO`].
    #[serde(default = "default_vcpu_ratio")]
    pub vcpu_ratio: u32,
}

impl Pool {
    /// Refuses a clock below the architecture's minimum (`POOL_CLOCK_TOO_LOW`,
    /// 003 §3.2.1.1) and a vCPU ratio outside 1..=4 (`POOL_VCPU_RATIO_INVALID`).
    pub fn new(f: PoolFields) -> Result<Self, ProviderError> {
        let min_mhz = f.arch.min_clock_mhz();
        if f.clock_mhz < min_mhz {
            return Err(ProviderError::PoolClockTooLow {
                arch: f.arch,
                clock_mhz: f.clock_mhz,
                min_mhz,
            });
        }
        if !(1..=MAX_VCPU_RATIO).contains(&f.vcpu_ratio) {
            return Err(ProviderError::PoolVcpuRatioInvalid {
                ratio: f.vcpu_ratio,
                max: MAX_VCPU_RATIO,
            });
        }
        Ok(Pool {
            provider: f.provider,
            id: f.id,
            zone: f.zone,
            network_area: f.network_area,
            arch: f.arch,
            cpu_model: f.cpu_model,
            clock_mhz: f.clock_mhz,
            vcpu_ratio: f.vcpu_ratio,
        })
    }

    pub fn provider(&self) -> &ProviderId {
        &self.provider
    }
    pub fn id(&self) -> &PoolId {
        &self.id
    }
    pub fn zone(&self) -> &ZoneId {
        &self.zone
    }
    pub fn network_area(&self) -> &NetworkAreaId {
        &self.network_area
    }
    pub fn arch(&self) -> Architecture {
        self.arch
    }
    pub fn cpu_model(&self) -> &Name {
        &self.cpu_model
    }
    pub fn clock_mhz(&self) -> u32 {
        self.clock_mhz
    }
    pub fn vcpu_ratio(&self) -> u32 {
        self.vcpu_ratio
    }
}

impl TryFrom<PoolFields> for Pool {
    type Error = ProviderError;
    fn try_from(f: PoolFields) -> Result<Self, Self::Error> {
        Pool::new(f)
    }
}

impl Record for Pool {
    const KIND: &'static str = "pool";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        format!("{}/{}", self.provider, self.id)
    }
}

/// Whether a host takes new placements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    Ready,
    /// Drained by the provider; keeps its VMs, takes no new ones.
    Maintenance,
    Down,
}

/// A physical host (宿主机) in a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HostFields")]
pub struct Host {
    provider: ProviderId,
    pool: PoolId,
    id: HostId,
    cores: NonZeroU32,
    memory_mib: u64,
    reserved_memory_mib: u64,
    state: HostState,
}

/// The fields of a [`Host`], before validation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HostFields {
    pub provider: ProviderId,
    pub pool: PoolId,
    pub id: HostId,
    /// Physical cores.
    pub cores: NonZeroU32,
    pub memory_mib: u64,
    /// Memory kept for the hypervisor; never allocated to VMs.
    pub reserved_memory_mib: u64,
    pub state: HostState,
}

impl Host {
    /// Refuses a reserve not below the host's memory (`HOST_RESERVE_EXCEEDS_MEMORY`).
    pub fn new(f: HostFields) -> Result<Self, ProviderError> {
        if f.reserved_memory_mib >= f.memory_mib {
            return Err(ProviderError::HostReserveExceedsMemory {
                memory_mib: f.memory_mib,
                reserved_mib: f.reserved_memory_mib,
            });
        }
        Ok(Host {
            provider: f.provider,
            pool: f.pool,
            id: f.id,
            cores: f.cores,
            memory_mib: f.memory_mib,
            reserved_memory_mib: f.reserved_memory_mib,
            state: f.state,
        })
    }

    pub fn provider(&self) -> &ProviderId {
        &self.provider
    }
    pub fn pool(&self) -> &PoolId {
        &self.pool
    }
    pub fn id(&self) -> &HostId {
        &self.id
    }
    pub fn cores(&self) -> u32 {
        self.cores.get()
    }
    pub fn memory_mib(&self) -> u64 {
        self.memory_mib
    }
    pub fn reserved_memory_mib(&self) -> u64 {
        self.reserved_memory_mib
    }
    pub fn state(&self) -> HostState {
        self.state
    }
    pub fn set_state(&mut self, state: HostState) {
        self.state = state;
    }

    /// Memory VMs may use in total: memory minus reserve. Never overcommitted
    /// (003 §3.2.1.1).
    pub fn allocatable_memory_mib(&self) -> u64 {
        self.memory_mib - self.reserved_memory_mib
    }

    /// vCPUs this host offers at the pool's ratio.
    pub fn vcpu_capacity(&self, pool: &Pool) -> u64 {
        u64::from(self.cores.get()) * u64::from(pool.vcpu_ratio())
    }
}

impl TryFrom<HostFields> for Host {
    type Error = ProviderError;
    fn try_from(f: HostFields) -> Result<Self, Self::Error> {
        Host::new(f)
    }
}

impl Record for Host {
    const KIND: &'static str = "host";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        format!("{}/{}", self.provider, self.id)
    }
}

/// IOPS class of a storage class (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IopsClass {
    /// 普通性能存储: 2000–5000 IOPS per disk (003 §3.2.1.4).
    Standard,
    /// 高性能存储: 10000–25000 IOPS per disk (003 §3.2.1.5).
    HighPerformance,
}

impl IopsClass {
    /// Inclusive per-disk IOPS range.
    pub fn range(self) -> (u32, u32) {
        match self {
            IopsClass::Standard => (2_000, 5_000),
            IopsClass::HighPerformance => (10_000, 25_000),
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            IopsClass::Standard => "普通性能",
            IopsClass::HighPerformance => "高性能",
        }
    }
}

/// Storage class (存储类型) offered in a zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StorageClassFields")]
pub struct StorageClass {
    provider: ProviderId,
    zone: ZoneId,
    id: StorageClassId,
    name: Name,
    capacity_gib: u64,
    iops_class: IopsClass,
    iops_per_disk: u32,
}

/// The fields of a [`StorageClass`], before validation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StorageClassFields {
    pub provider: ProviderId,
    pub zone: ZoneId,
    pub id: StorageClassId,
    pub name: Name,
    pub capacity_gib: u64,
    pub iops_class: IopsClass,
    /// Per-disk IOPS the provider guarantees.
    pub iops_per_disk: u32,
}

impl StorageClass {
    /// Refuses IOPS outside the class range (`STORAGE_IOPS_OUT_OF_CLASS`).
    pub fn new(f: StorageClassFields) -> Result<Self, ProviderError> {
        let (min, max) = f.iops_class.range();
        if !(min..=max).contains(&f.iops_per_disk) {
            return Err(ProviderError::StorageIopsOutOfClass {
                class: f.iops_class,
                iops: f.iops_per_disk,
                min,
                max,
            });
        }
        Ok(StorageClass {
            provider: f.provider,
            zone: f.zone,
            id: f.id,
            name: f.name,
            capacity_gib: f.capacity_gib,
            iops_class: f.iops_class,
            iops_per_disk: f.iops_per_disk,
        })
    }

    pub fn provider(&self) -> &ProviderId {
        &self.provider
    }
    pub fn zone(&self) -> &ZoneId {
        &self.zone
    }
    pub fn id(&self) -> &StorageClassId {
        &self.id
    }
    pub fn name(&self) -> &Name {
        &self.name
    }
    pub fn capacity_gib(&self) -> u64 {
        self.capacity_gib
    }
    pub fn iops_class(&self) -> IopsClass {
        self.iops_class
    }
    pub fn iops_per_disk(&self) -> u32 {
        self.iops_per_disk
    }
}

impl TryFrom<StorageClassFields> for StorageClass {
    type Error = ProviderError;
    fn try_from(f: StorageClassFields) -> Result<Self, Self::Error> {
        StorageClass::new(f)
    }
}

impl Record for StorageClass {
    const KIND: &'static str = "storage_class";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        format!("{}/{}/{}", self.provider, self.zone, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool_fields(arch: Architecture, clock_mhz: u32, vcpu_ratio: u32) -> PoolFields {
        PoolFields {
            provider: ProviderId::new("sim").expect("id"),
            id: PoolId::new("arm-a").expect("id"),
            zone: ZoneId::new("fuzhongxin").expect("id"),
            network_area: NetworkAreaId::new("extranet").expect("id"),
            arch,
            cpu_model: Name::new("Kunpeng 920").expect("name"),
            clock_mhz,
            vcpu_ratio,
        }
    }

    fn check_pool(arch: Architecture, clock: u32, ratio: u32, expected: Option<&str>) {
        let got = Pool::new(pool_fields(arch, clock, ratio));
        assert_eq!(
            got.err().map(|e| e.code()),
            expected,
            "{arch} {clock} {ratio}"
        );
    }

    #[test]
    fn pool_rules() {
        check_pool(Architecture::Arm64, 2400, 4, None);
        check_pool(Architecture::Arm64, 2399, 4, Some("POOL_CLOCK_TOO_LOW"));
        check_pool(Architecture::Arm64, 2200, 4, Some("POOL_CLOCK_TOO_LOW"));
        check_pool(Architecture::X86_64, 2200, 4, None);
        check_pool(Architecture::C86, 2199, 4, Some("POOL_CLOCK_TOO_LOW"));
        check_pool(Architecture::C86, 2500, 2, None);
        check_pool(
            Architecture::X86_64,
            3000,
            5,
            Some("POOL_VCPU_RATIO_INVALID"),
        );
        check_pool(
            Architecture::X86_64,
            3000,
            0,
            Some("POOL_VCPU_RATIO_INVALID"),
        );
    }

    #[test]
    fn pool_serde_defaults_ratio_and_rechecks() {
        let json = r#"{"provider":"sim","id":"x86-a","zone":"z1","network_area":"internet",
            "arch":"x86_64","cpu_model":"Xeon Gold 6330","clock_mhz":2800}"#;
        let pool: Pool = serde_json::from_str(json).expect("valid");
        assert_eq!(pool.vcpu_ratio(), 4);
        assert_eq!(pool.id(), &PoolId::new("x86-a").expect("id"));
        assert_eq!(Record::id(&pool), "sim/x86-a");
        let back: Pool =
            serde_json::from_str(&serde_json::to_string(&pool).expect("ser")).expect("de");
        assert_eq!(back, pool);
        let slow = json.replace("2800", "2000");
        assert!(serde_json::from_str::<Pool>(&slow).is_err());
    }

    fn host(memory_mib: u64, reserved: u64) -> Result<Host, ProviderError> {
        Host::new(HostFields {
            provider: ProviderId::new("sim").expect("id"),
            pool: PoolId::new("arm-a").expect("id"),
            id: HostId::new("h-001").expect("id"),
            cores: NonZeroU32::new(64).expect("nz"),
            memory_mib,
            reserved_memory_mib: reserved,
            state: HostState::Ready,
        })
    }

    #[test]
    fn host_rules() {
        let h = host(512 * 1024, 16 * 1024).expect("valid");
        assert_eq!(h.allocatable_memory_mib(), 496 * 1024);
        let pool = Pool::new(pool_fields(Architecture::Arm64, 2600, 4)).expect("pool");
        assert_eq!(h.vcpu_capacity(&pool), 256);
        assert_eq!(
            host(1024, 1024).map_err(|e| e.code()),
            Err("HOST_RESERVE_EXCEEDS_MEMORY")
        );
        let json = serde_json::to_string(&h).expect("ser");
        assert_eq!(serde_json::from_str::<Host>(&json).expect("de"), h);
        assert!(
            serde_json::from_str::<Host>(&json.replace(r#""cores":64"#, r#""cores":0"#)).is_err()
        );
    }

    fn check_storage(class: IopsClass, iops: u32, ok: bool) {
        let got = StorageClass::new(StorageClassFields {
            provider: ProviderId::new("sim").expect("id"),
            zone: ZoneId::new("z1").expect("id"),
            id: StorageClassId::new("ssd").expect("id"),
            name: Name::new("SSD 云硬盘").expect("name"),
            capacity_gib: 100_000,
            iops_class: class,
            iops_per_disk: iops,
        });
        assert_eq!(got.is_ok(), ok, "{class:?} {iops}");
    }

    #[test]
    fn storage_iops_ranges() {
        check_storage(IopsClass::Standard, 2000, true);
        check_storage(IopsClass::Standard, 5000, true);
        check_storage(IopsClass::Standard, 5001, false);
        check_storage(IopsClass::HighPerformance, 10_000, true);
        check_storage(IopsClass::HighPerformance, 9_999, false);
        check_storage(IopsClass::HighPerformance, 25_001, false);
    }
}
