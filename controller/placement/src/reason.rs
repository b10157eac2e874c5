//! Why a VM could not be placed, worded so an operator can act: which pool, which
//! resource, how far off. English is `Display`; Chinese is
//! [`ErrorCode::message_zh`]; the code is stable API (add codes, never rename).
//!
//! Owns wording only. It must not decide placement; `place` diagnoses and fills
//! the figures.

use serde::Serialize;
use thiserror::Error;
use yunshu_domain::{
    Architecture, ErrorCode, ResourceId,
    ids::{AntiAffinityGroup, NetworkAreaId, StorageClassId, ZoneId},
    provider::NetworkAreaKind,
};

use crate::model::{HostRef, PoolKey};

/// The pools a request matched, as people name them: architecture, network
/// area (kind and id) and zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolLabel {
    pub key: PoolKey,
    pub area_kind: NetworkAreaKind,
}

impl PoolLabel {
    fn area_kind_en(&self) -> &'static str {
        self.area_kind.as_str()
    }

    /// `arm64 pool, 政务外网区 (gov_extranet, area extranet), zone a` — the Chinese
    /// area name stays in the English text because that is what operators call it.
    fn en(&self) -> String {
        format!(
            "{} pool, {} ({}, area {}), zone {}",
            self.key.arch,
            self.area_kind.label_zh(),
            self.area_kind_en(),
            self.key.network_area,
            self.key.zone
        )
    }

    fn zh(&self) -> String {
        format!(
            "{} 资源池，{}（{}），部署节点 {}",
            self.key.arch,
            self.area_kind.label_zh(),
            self.key.network_area,
            self.key.zone
        )
    }
}

/// What stopped a placement. Figures are those at the moment of the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The shape asks for 0 vCPU or 0 memory.
    ShapeInvalid { vcpu: u32, memory_mib: u64 },
    /// The allocation id is already placed with another shape or key, or twice
    /// in one order.
    AllocationConflict { host: Option<HostRef> },
    /// No pool of this architecture in this zone and network area.
    NoPool {
        key: PoolKey,
        /// Architectures that do have a pool there.
        available: Vec<Architecture>,
    },
    /// The zone does not offer this storage class.
    StorageClassUnknown { zone: ZoneId, class: StorageClassId },
    StorageClassFull {
        zone: ZoneId,
        class: StorageClassId,
        need_gib: u64,
        free_gib: u64,
        total_gib: u64,
    },
    BandwidthExhausted {
        zone: ZoneId,
        network_area: NetworkAreaId,
        need_mbps: u64,
        free_mbps: u64,
        total_mbps: u64,
    },
    PublicIpsExhausted {
        zone: ZoneId,
        network_area: NetworkAreaId,
        need: u64,
        free: u64,
        total: u64,
    },
    /// Every host of the matching pools is down or in maintenance (or there are none).
    NoSchedulableHost {
        pool: PoolLabel,
        hosts: u32,
        down: u32,
        maintenance: u32,
    },
    /// No schedulable host has this much memory free.
    Memory {
        pool: PoolLabel,
        need_mib: u64,
        schedulable_hosts: u32,
        unschedulable_hosts: u32,
        largest_free_mib: u64,
    },
    /// Hosts have the memory, but none has the vCPUs at the pool's ratio.
    VcpuRatio {
        pool: PoolLabel,
        need_vcpu: u32,
        need_mib: u64,
        vcpu_ratio: u32,
        hosts_with_memory: u32,
        schedulable_hosts: u32,
        largest_free_vcpu: u64,
    },
    /// No empty, schedulable host of the model (and size) a bare-metal server
    /// asks for.
    NoFreeHost {
        pool: PoolLabel,
        model: Option<String>,
        hosts: u32,
        ready: u32,
        /// Ready hosts without a VM or server on them.
        empty: u32,
        /// Empty hosts of the model asked for.
        of_model: u32,
        need_mib: u64,
        need_cores: u32,
    },
    /// Hosts fit the shape, but each already holds a member of the group.
    AntiAffinity {
        pool: PoolLabel,
        group: AntiAffinityGroup,
        need_vcpu: u32,
        need_mib: u64,
        hosts_fitting: u32,
    },
}

/// Renders MiB as GiB: `64 GiB`, or `1.5 GiB` when not whole.
fn gib(mib: u64) -> String {
    if mib.is_multiple_of(1024) {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{:.1} GiB", mib as f64 / 1024.0)
    }
}

impl Reason {
    /// Stable code; API.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::ShapeInvalid { .. } => "VM_SHAPE_INVALID",
            Reason::AllocationConflict { .. } => "ALLOCATION_CONFLICT",
            Reason::NoPool { .. } => "NO_POOL_MATCHES",
            Reason::StorageClassUnknown { .. } => "STORAGE_CLASS_UNKNOWN",
            Reason::StorageClassFull { .. } => "STORAGE_CLASS_FULL",
            Reason::BandwidthExhausted { .. } => "BANDWIDTH_EXHAUSTED",
            Reason::PublicIpsExhausted { .. } => "PUBLIC_IPS_EXHAUSTED",
            Reason::NoSchedulableHost { .. } => "NO_SCHEDULABLE_HOST",
            Reason::Memory { .. } => "HOST_MEMORY_INSUFFICIENT",
            Reason::VcpuRatio { .. } => "HOST_VCPU_RATIO_EXHAUSTED",
            Reason::AntiAffinity { .. } => "ANTI_AFFINITY_TOO_FEW_HOSTS",
            Reason::NoFreeHost { .. } => "BARE_METAL_NO_FREE_HOST",
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            Reason::ShapeInvalid { vcpu, memory_mib } => format!(
                "a VM needs at least 1 vCPU and 1 MiB memory; got {vcpu} vCPU, {memory_mib} MiB"
            ),
            Reason::AllocationConflict { host: Some(h) } => format!(
                "already placed on host {} with a different shape or location; release it first",
                h.host
            ),
            Reason::AllocationConflict { host: None } => {
                "the same VM appears twice in one order".to_string()
            }
            Reason::NoPool { key, available } => {
                let there = if available.is_empty() {
                    "there is no pool at all there".to_string()
                } else {
                    let a: Vec<&str> = available.iter().map(|a| a.as_str()).collect();
                    format!("pools there are {}", a.join(", "))
                };
                format!(
                    "no {} pool in network area {}, zone {} (provider {}); {there}",
                    key.arch, key.network_area, key.zone, key.provider
                )
            }
            Reason::StorageClassUnknown { zone, class } => {
                format!("zone {zone} offers no storage class {class}")
            }
            Reason::StorageClassFull {
                zone,
                class,
                need_gib,
                free_gib,
                total_gib,
            } => format!(
                "zone {zone}: storage class {class} has {free_gib} GiB of {total_gib} GiB free; {need_gib} GiB needed"
            ),
            Reason::BandwidthExhausted {
                zone,
                network_area,
                need_mbps,
                free_mbps,
                total_mbps,
            } => format!(
                "zone {zone}, network area {network_area}: {free_mbps} of {total_mbps} Mbps bandwidth free; {need_mbps} Mbps needed"
            ),
            Reason::PublicIpsExhausted {
                zone,
                network_area,
                need,
                free,
                total,
            } => format!(
                "zone {zone}, network area {network_area}: {free} of {total} public IPs free; {need} needed"
            ),
            Reason::NoSchedulableHost {
                pool,
                hosts,
                down,
                maintenance,
            } => format!(
                "{}: none of the {hosts} hosts takes new VMs ({down} down, {maintenance} in maintenance)",
                pool.en()
            ),
            Reason::Memory {
                pool,
                need_mib,
                schedulable_hosts,
                unschedulable_hosts,
                largest_free_mib,
            } => {
                let others = if *unschedulable_hosts > 0 {
                    format!(" ({unschedulable_hosts} more down or in maintenance)")
                } else {
                    String::new()
                };
                format!(
                    "{}: 0 of {schedulable_hosts} hosts{others} have {} memory free; largest free {}",
                    pool.en(),
                    gib(*need_mib),
                    gib(*largest_free_mib)
                )
            }
            Reason::VcpuRatio {
                pool,
                need_vcpu,
                need_mib,
                vcpu_ratio,
                hosts_with_memory,
                schedulable_hosts,
                largest_free_vcpu,
            } => format!(
                "{}: {hosts_with_memory} of {schedulable_hosts} hosts have {} memory free but none has {need_vcpu} vCPU free at {vcpu_ratio} vCPU per core; largest free {largest_free_vcpu} vCPU among them",
                pool.en(),
                gib(*need_mib)
            ),
            Reason::AntiAffinity {
                pool,
                group,
                need_vcpu,
                need_mib,
                hosts_fitting,
            } => format!(
                "{}: anti-affinity group {group} leaves too few hosts: all {hosts_fitting} hosts with {need_vcpu} vCPU and {} free already hold a member",
                pool.en(),
                gib(*need_mib)
            ),
            Reason::NoFreeHost {
                pool,
                model,
                hosts,
                ready,
                empty,
                of_model,
                need_mib,
                need_cores,
            } => format!(
                "{}: no free host for a bare-metal server{}: {hosts} hosts, {ready} up, {empty} without VMs, {of_model} of that model; at least {need_cores} cores and {} needed",
                pool.en(),
                model
                    .as_ref()
                    .map(|m| format!(" of model {m}"))
                    .unwrap_or_default(),
                gib(*need_mib)
            ),
        }
    }

    pub fn message_zh(&self) -> String {
        match self {
            Reason::ShapeInvalid { vcpu, memory_mib } => {
                format!(
                    "虚拟机至少需要 1 个 vCPU 和 1 MiB 内存，实际为 {vcpu} vCPU、{memory_mib} MiB"
                )
            }
            Reason::AllocationConflict { host: Some(h) } => {
                format!("已分配在宿主机 {}，但规格或位置不同；请先释放", h.host)
            }
            Reason::AllocationConflict { host: None } => {
                "同一虚拟机在一个工单中出现了两次".to_string()
            }
            Reason::NoPool { key, available } => {
                let there = if available.is_empty() {
                    "该处没有任何资源池".to_string()
                } else {
                    let a: Vec<&str> = available.iter().map(|a| a.as_str()).collect();
                    format!("该处仅有 {} 资源池", a.join("、"))
                };
                format!(
                    "云服务商 {} 部署节点 {} 网络区域 {} 没有 {} 资源池；{there}",
                    key.provider, key.zone, key.network_area, key.arch
                )
            }
            Reason::StorageClassUnknown { zone, class } => {
                format!("部署节点 {zone} 不提供存储类型 {class}")
            }
            Reason::StorageClassFull {
                zone,
                class,
                need_gib,
                free_gib,
                total_gib,
            } => format!(
                "部署节点 {zone} 存储类型 {class} 共 {total_gib} GiB，剩余 {free_gib} GiB，需要 {need_gib} GiB"
            ),
            Reason::BandwidthExhausted {
                zone,
                network_area,
                need_mbps,
                free_mbps,
                total_mbps,
            } => format!(
                "部署节点 {zone} 网络区域 {network_area} 带宽共 {total_mbps} Mbps，剩余 {free_mbps} Mbps，需要 {need_mbps} Mbps"
            ),
            Reason::PublicIpsExhausted {
                zone,
                network_area,
                need,
                free,
                total,
            } => format!(
                "部署节点 {zone} 网络区域 {network_area} 公网 IP 共 {total} 个，剩余 {free} 个，需要 {need} 个"
            ),
            Reason::NoSchedulableHost {
                pool,
                hosts,
                down,
                maintenance,
            } => format!(
                "{}：{hosts} 台宿主机均不接受新虚拟机（{down} 台故障，{maintenance} 台维护中）",
                pool.zh()
            ),
            Reason::Memory {
                pool,
                need_mib,
                schedulable_hosts,
                unschedulable_hosts,
                largest_free_mib,
            } => {
                let others = if *unschedulable_hosts > 0 {
                    format!("（另有 {unschedulable_hosts} 台故障或维护中）")
                } else {
                    String::new()
                };
                format!(
                    "{}：{schedulable_hosts} 台宿主机{others}中没有一台有 {} 空闲内存；最大空闲 {}",
                    pool.zh(),
                    gib(*need_mib),
                    gib(*largest_free_mib)
                )
            }
            Reason::VcpuRatio {
                pool,
                need_vcpu,
                need_mib,
                vcpu_ratio,
                hosts_with_memory,
                schedulable_hosts,
                largest_free_vcpu,
            } => format!(
                "{}：{schedulable_hosts} 台宿主机中有 {hosts_with_memory} 台有 {} 空闲内存，但按每核 {vcpu_ratio} 个 vCPU 的虚拟化比，没有一台有 {need_vcpu} 个空闲 vCPU；其中最多空闲 {largest_free_vcpu} 个",
                pool.zh(),
                gib(*need_mib)
            ),
            Reason::AntiAffinity {
                pool,
                group,
                need_vcpu,
                need_mib,
                hosts_fitting,
            } => format!(
                "{}：反亲和组 {group} 可用宿主机不足：有 {need_vcpu} vCPU 和 {} 空闲的 {hosts_fitting} 台宿主机上都已有该组成员",
                pool.zh(),
                gib(*need_mib)
            ),
            Reason::NoFreeHost {
                pool,
                model,
                hosts,
                ready,
                empty,
                of_model,
                need_mib,
                need_cores,
            } => format!(
                "{}：没有可用于物理服务器{}的空闲宿主机：共 {hosts} 台，可用 {ready} 台，其中无虚拟机的 {empty} 台，该型号 {of_model} 台；需要至少 {need_cores} 核、{} 内存",
                pool.zh(),
                model
                    .as_ref()
                    .map(|m| format!("（型号 {m}）"))
                    .unwrap_or_default(),
                gib(*need_mib)
            ),
        }
    }
}

/// A VM that could not be placed, and why. For a group placement, the first VM
/// that failed; nothing of the group was reserved.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
#[error("cannot place {alloc}: {}", reason.message_en())]
pub struct Unschedulable {
    pub alloc: ResourceId,
    /// Boxed: reasons carry pool labels and figures, and the miss path is cold.
    pub reason: Box<Reason>,
}

impl ErrorCode for Unschedulable {
    fn code(&self) -> &'static str {
        self.reason.code()
    }

    fn message_zh(&self) -> String {
        format!("无法放置 {}：{}", self.alloc, self.reason.message_zh())
    }
}
