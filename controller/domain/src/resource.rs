//! Resources: things a driver really creates (SPEC §2), each with a desired spec, a
//! generation and an observed status.
//!
//! Owns the spec shapes per kind and the generation rule: the generation starts at
//! 1 and is bumped exactly when the desired spec changes, and a driver can never
//! report a generation the controller has not asked for. Placement (which pool and
//! host) is the scheduler's; talking to drivers is the reconciler's.

use std::fmt;
use std::net::Ipv4Addr;
use std::num::{NonZeroU32, NonZeroU64};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    arch::Architecture,
    error::ErrorCode,
    ids::{AntiAffinityGroup, ImageId, NetworkAreaId, OrderId, ResourceId, StorageClassId, ZoneId},
    order_line::Port,
    record::Record,
    system::SystemNumber,
    tenant::TenantCode,
    text::Name,
};

/// Why a resource spec or status was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResourceError {
    #[error("invalid {kind} spec: {field} {reason}")]
    SpecInvalid {
        kind: ResourceKind,
        field: &'static str,
        reason: String,
    },
    #[error("a {from} resource cannot become a {to}; create a new resource instead")]
    KindChange {
        from: ResourceKind,
        to: ResourceKind,
    },
    #[error("observed generation {observed} is ahead of desired generation {generation}")]
    GenerationAhead { observed: u64, generation: u64 },
    #[error("invalid IPv4 CIDR {value:?}")]
    CidrInvalid { value: String },
}

impl ErrorCode for ResourceError {
    fn code(&self) -> &'static str {
        match self {
            ResourceError::SpecInvalid { .. } => "RESOURCE_SPEC_INVALID",
            ResourceError::KindChange { .. } => "RESOURCE_KIND_CHANGE",
            ResourceError::GenerationAhead { .. } => "RESOURCE_GENERATION_AHEAD",
            ResourceError::CidrInvalid { .. } => "CIDR_INVALID",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            ResourceError::SpecInvalid {
                kind,
                field,
                reason,
            } => format!("{kind} 资源规格无效：{field} {reason}"),
            ResourceError::KindChange { from, to } => {
                format!("资源类型不能从 {from} 改为 {to}，请新建资源")
            }
            ResourceError::GenerationAhead {
                observed,
                generation,
            } => format!("观测到的版本 {observed} 超前于期望版本 {generation}"),
            ResourceError::CidrInvalid { value } => format!("IPv4 网段“{value}”无效"),
        }
    }
}

/// Resource kind. `ssl_cert`, `vpn` and `bastion_account` come later (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Vm,
    BareMetal,
    Volume,
    Vpc,
    Subnet,
    SecurityGroup,
    Eip,
    LoadBalancer,
    WafPolicy,
    BackupPolicy,
    Snapshot,
}

impl ResourceKind {
    /// How deep the kind sits in the reference graph: a resource only names
    /// kinds of a lower rank, so creating by rank (and deleting in reverse)
    /// never waits on something not yet started.
    pub fn creation_rank(self) -> u8 {
        match self {
            ResourceKind::Vpc => 0,
            ResourceKind::Subnet => 1,
            ResourceKind::SecurityGroup => 2,
            ResourceKind::Vm | ResourceKind::BareMetal => 3,
            ResourceKind::Volume | ResourceKind::LoadBalancer => 4,
            ResourceKind::Eip
            | ResourceKind::WafPolicy
            | ResourceKind::BackupPolicy
            | ResourceKind::Snapshot => 5,
        }
    }

    /// The kind's name in the portal's Chinese.
    pub fn label_zh(self) -> &'static str {
        match self {
            ResourceKind::Vm => "云主机",
            ResourceKind::BareMetal => "物理服务器",
            ResourceKind::Volume => "云硬盘",
            ResourceKind::Vpc => "私有网络",
            ResourceKind::Subnet => "子网",
            ResourceKind::SecurityGroup => "安全组",
            ResourceKind::Eip => "公网 IP",
            ResourceKind::LoadBalancer => "负载均衡",
            ResourceKind::WafPolicy => "WAF 防护策略",
            ResourceKind::BackupPolicy => "备份策略",
            ResourceKind::Snapshot => "快照",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Vm => "vm",
            ResourceKind::BareMetal => "bare_metal",
            ResourceKind::Volume => "volume",
            ResourceKind::Vpc => "vpc",
            ResourceKind::Subnet => "subnet",
            ResourceKind::SecurityGroup => "security_group",
            ResourceKind::Eip => "eip",
            ResourceKind::LoadBalancer => "load_balancer",
            ResourceKind::WafPolicy => "waf_policy",
            ResourceKind::BackupPolicy => "backup_policy",
            ResourceKind::Snapshot => "snapshot",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IPv4 network in CIDR notation with no host bits set, e.g. `10.0.0.0/16`.
/// Tenants' ranges may overlap (one VPC per tenant, 003 §3.2.2.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(value: &str) -> Result<Self, ResourceError> {
        let invalid = || ResourceError::CidrInvalid {
            value: value.to_string(),
        };
        let (addr, prefix) = value.split_once('/').ok_or_else(invalid)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| invalid())?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        if prefix > 32 {
            return Err(invalid());
        }
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        if u32::from(addr) & !mask != 0 {
            return Err(invalid());
        }
        Ok(Cidr { addr, prefix })
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// First and last address of the network, as numbers.
    fn bounds(&self) -> (u32, u32) {
        let size = 1u64 << (32 - u32::from(self.prefix));
        let first = u32::from(self.addr);
        let last = u64::from(first) + size - 1;
        (first, u32::try_from(last).unwrap_or(u32::MAX))
    }

    /// Whether every address of `other` is in this network.
    pub fn contains(&self, other: &Cidr) -> bool {
        let (a, b) = self.bounds();
        let (c, d) = other.bounds();
        a <= c && d <= b
    }

    /// Whether the two networks share an address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let (a, b) = self.bounds();
        let (c, d) = other.bounds();
        a <= d && c <= b
    }

    /// Addresses a subnet of this size can hand to servers and load balancers:
    /// all but the network, gateway and broadcast addresses.
    pub fn host_capacity(&self) -> u64 {
        (1u64 << (32 - u32::from(self.prefix))).saturating_sub(3)
    }

    /// The `n`-th (0-based) sub-network of length `prefix`, if it fits.
    pub fn subnet(&self, prefix: u8, n: u32) -> Option<Cidr> {
        if prefix < self.prefix || prefix > 32 {
            return None;
        }
        let count = 1u64 << (prefix - self.prefix);
        if u64::from(n) >= count {
            return None;
        }
        let size = 1u64 << (32 - u32::from(prefix));
        let addr = u64::from(u32::from(self.addr)) + u64::from(n) * size;
        Some(Cidr {
            addr: Ipv4Addr::from(u32::try_from(addr).ok()?),
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl TryFrom<String> for Cidr {
    type Error = ResourceError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Cidr::parse(&value)
    }
}

impl From<Cidr> for String {
    fn from(value: Cidr) -> String {
        value.to_string()
    }
}

/// A data disk of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSpec {
    pub size_gib: NonZeroU32,
    pub storage_class: StorageClassId,
}

/// Desired spec of a virtual machine (云主机).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSpec {
    pub arch: Architecture,
    pub vcpu: NonZeroU32,
    pub memory_mib: NonZeroU64,
    pub system_disk_gib: NonZeroU32,
    /// Storage class of the system disk; `None` lets the provider choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_disk_class: Option<StorageClassId>,
    #[serde(default)]
    pub data_disks: Vec<DiskSpec>,
    pub image: ImageId,
    pub network_area: NetworkAreaId,
    pub zone: ZoneId,
    /// VMs sharing a group are placed on different hosts.
    #[serde(default)]
    pub anti_affinity_group: Option<AntiAffinityGroup>,
    /// The group is soft (尽量分散): a shared host rather than none.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anti_affinity_soft: bool,
    /// Subnet resources, one NIC each.
    #[serde(default)]
    pub nics: Vec<ResourceId>,
    /// Security-group resources the VM's NICs join.
    #[serde(default)]
    pub security_groups: Vec<ResourceId>,
    /// Powered off with its disks kept: the system is offline or exited and
    /// in its data retention (002 art. 13, 14).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
}

impl VmSpec {
    /// Most data disks one VM may carry; virtio-blk and most platforms allow more,
    /// but more than this is almost surely a data-entry error.
    pub const MAX_DATA_DISKS: usize = 16;
}

/// Desired spec of a bare-metal server (物理服务器): a whole host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BareMetalSpec {
    pub arch: Architecture,
    /// The host model asked for (the provider's `Host.model`); `None` = any.
    #[serde(default)]
    pub flavor: Option<Name>,
    pub image: ImageId,
    pub zone: ZoneId,
    pub network_area: NetworkAreaId,
    /// Subnet resources, one NIC each.
    #[serde(default)]
    pub nics: Vec<ResourceId>,
    /// Powered off, as [`VmSpec::stopped`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
}

/// Desired spec of a block volume (云硬盘).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub size_gib: NonZeroU32,
    pub storage_class: StorageClassId,
    pub zone: ZoneId,
    #[serde(default)]
    pub attached_to: Option<ResourceId>,
    /// A backup policy or snapshot whose latest copy the volume starts as
    /// when it is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<ResourceId>,
}

/// Desired spec of a VPC (专有网络).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcSpec {
    pub cidr: Cidr,
}

/// Desired spec of a subnet of a VPC in one zone and network area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetSpec {
    pub vpc: ResourceId,
    pub cidr: Cidr,
    pub zone: ZoneId,
    pub network_area: NetworkAreaId,
}

/// Traffic direction of a security-group rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Ingress,
    Egress,
}

/// IP protocol of a security-group rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpProtocol {
    Tcp,
    Udp,
    Icmp,
    Any,
}

/// An inclusive port range; `from ≤ to` is checked by [`ResourceSpec::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRange {
    pub from: Port,
    pub to: Port,
}

/// The other end of a security rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleRemoteSpec {
    Cidr(Cidr),
    /// The members of a security-group resource.
    Group(ResourceId),
}

/// One allow rule of a security group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityRule {
    pub direction: Direction,
    pub protocol: IpProtocol,
    /// `None` means all ports (and is the only choice for ICMP).
    #[serde(default)]
    pub ports: Option<PortRange>,
    pub remote: RuleRemoteSpec,
}

/// Desired spec of a security group (安全组).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupSpec {
    #[serde(default)]
    pub rules: Vec<SecurityRule>,
}

/// Desired spec of an elastic public IP (公网IP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EipSpec {
    pub bandwidth_mbps: NonZeroU32,
    #[serde(default)]
    pub bound_to: Option<ResourceId>,
}

/// Listener protocol of a load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerProtocol {
    Tcp,
    Udp,
    Http,
    Https,
}

/// How a load balancer spreads connections (003 §3.2.1.10: WRR, WLC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LbAlgorithm {
    RoundRobin,
    /// 加权轮询
    #[default]
    WeightedRoundRobin,
    /// 加权最小连接数
    WeightedLeastConnections,
}

/// How a health check probes a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthProtocol {
    Tcp,
    Http,
}

fn five() -> u32 {
    5
}
fn three() -> u32 {
    3
}

/// A listener's health check: unhealthy members stop receiving traffic
/// (003 §3.2.1.10 "健康检查").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub protocol: HealthProtocol,
    /// Default: the listener's backend port.
    #[serde(default)]
    pub port: Option<Port>,
    /// HTTP only, e.g. `/healthz`.
    #[serde(default)]
    pub path: Option<Name>,
    #[serde(default = "five")]
    pub interval_seconds: u32,
    #[serde(default = "three")]
    pub timeout_seconds: u32,
    #[serde(default = "three")]
    pub healthy_threshold: u32,
    #[serde(default = "three")]
    pub unhealthy_threshold: u32,
}

/// One listener of a load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub protocol: ListenerProtocol,
    pub port: Port,
    pub backend_port: Port,
    #[serde(default)]
    pub algorithm: LbAlgorithm,
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// 会话保持
    #[serde(default)]
    pub session_persistence: bool,
}

/// Desired spec of a load balancer (负载均衡).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerSpec {
    pub subnet: ResourceId,
    pub listeners: Vec<Listener>,
    #[serde(default)]
    pub members: Vec<ResourceId>,
}

/// Whether a WAF policy only reports or also blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WafMode {
    Detect,
    Block,
}

/// OWASP rule families a WAF policy can enable (003 §3.2.1.14: injection, XSS
/// and the rest of the OWASP Top 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WafRuleSet {
    Sqli,
    Xss,
    Rce,
    Lfi,
    Rfi,
    Scanner,
    Protocol,
}

impl WafRuleSet {
    /// The rule set's name on the wire, OWASP CRS 4 style.
    pub fn wire_name(self) -> &'static str {
        match self {
            WafRuleSet::Sqli => "owasp-crs-4/sqli",
            WafRuleSet::Xss => "owasp-crs-4/xss",
            WafRuleSet::Rce => "owasp-crs-4/rce",
            WafRuleSet::Lfi => "owasp-crs-4/lfi",
            WafRuleSet::Rfi => "owasp-crs-4/rfi",
            WafRuleSet::Scanner => "owasp-crs-4/scanner",
            WafRuleSet::Protocol => "owasp-crs-4/protocol",
        }
    }
}

/// CC (HTTP flood) protection: at most `requests` per client in `period_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CcLimit {
    pub requests: NonZeroU32,
    pub period_seconds: NonZeroU32,
}

/// Desired spec of a WAF policy (云WAF, 000 catalog ZW0205).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WafPolicySpec {
    pub mode: WafMode,
    /// Domains it serves, when the tenant names them (informational).
    #[serde(default)]
    pub domains: Vec<Name>,
    /// EIP or load-balancer resources it protects.
    #[serde(default)]
    pub targets: Vec<ResourceId>,
    #[serde(default)]
    pub rule_sets: Vec<WafRuleSet>,
    #[serde(default)]
    pub cc_limit: Option<CcLimit>,
    #[serde(default)]
    pub allow_cidrs: Vec<Cidr>,
    #[serde(default)]
    pub deny_cidrs: Vec<Cidr>,
}

/// When a backup runs, in UTC hours (callers convert from Beijing time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "every", rename_all = "snake_case")]
pub enum BackupSchedule {
    Daily {
        hour: u8,
    },
    /// `weekday`: 1 = Monday … 7 = Sunday (ISO 8601).
    Weekly {
        weekday: u8,
        hour: u8,
    },
}

/// Backup method (003 §2.3.5 (2): 完整备份、差异备份和增量备份).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupType {
    #[default]
    Full,
    Differential,
    Incremental,
}

/// Desired spec of a backup policy (备份, 000 catalog ZW010218–ZW0102021).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupPolicySpec {
    pub targets: Vec<ResourceId>,
    #[serde(default)]
    pub backup_type: BackupType,
    pub schedule: BackupSchedule,
    pub retention_days: NonZeroU32,
    /// Backup space (备份空间) billed to the system.
    pub capacity_gib: NonZeroU32,
}

/// Desired spec of a snapshot of a volume or VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSpec {
    pub source: ResourceId,
}

/// Desired spec, one variant per [`ResourceKind`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "spec", rename_all = "snake_case")]
pub enum ResourceSpec {
    Vm(VmSpec),
    BareMetal(BareMetalSpec),
    Volume(VolumeSpec),
    Vpc(VpcSpec),
    Subnet(SubnetSpec),
    SecurityGroup(SecurityGroupSpec),
    Eip(EipSpec),
    LoadBalancer(LoadBalancerSpec),
    WafPolicy(WafPolicySpec),
    BackupPolicy(BackupPolicySpec),
    Snapshot(SnapshotSpec),
}

impl ResourceSpec {
    /// Whether the spec asks for a server powered off (never true of other
    /// kinds).
    pub fn stopped(&self) -> bool {
        match self {
            ResourceSpec::Vm(vm) => vm.stopped,
            ResourceSpec::BareMetal(bm) => bm.stopped,
            _ => false,
        }
    }

    pub fn kind(&self) -> ResourceKind {
        match self {
            ResourceSpec::Vm(_) => ResourceKind::Vm,
            ResourceSpec::BareMetal(_) => ResourceKind::BareMetal,
            ResourceSpec::Volume(_) => ResourceKind::Volume,
            ResourceSpec::Vpc(_) => ResourceKind::Vpc,
            ResourceSpec::Subnet(_) => ResourceKind::Subnet,
            ResourceSpec::SecurityGroup(_) => ResourceKind::SecurityGroup,
            ResourceSpec::Eip(_) => ResourceKind::Eip,
            ResourceSpec::LoadBalancer(_) => ResourceKind::LoadBalancer,
            ResourceSpec::WafPolicy(_) => ResourceKind::WafPolicy,
            ResourceSpec::BackupPolicy(_) => ResourceKind::BackupPolicy,
            ResourceSpec::Snapshot(_) => ResourceKind::Snapshot,
        }
    }

    /// The resources this spec names (proto "References between resources"):
    /// they must exist before it is applied and outlive it.
    pub fn references(&self) -> Vec<&ResourceId> {
        match self {
            ResourceSpec::Vm(vm) => vm.nics.iter().chain(&vm.security_groups).collect(),
            ResourceSpec::BareMetal(bm) => bm.nics.iter().collect(),
            ResourceSpec::Volume(v) => v.attached_to.iter().collect(),
            ResourceSpec::Vpc(_) => Vec::new(),
            ResourceSpec::Subnet(s) => vec![&s.vpc],
            ResourceSpec::SecurityGroup(g) => g
                .rules
                .iter()
                .filter_map(|r| match &r.remote {
                    RuleRemoteSpec::Group(id) => Some(id),
                    RuleRemoteSpec::Cidr(_) => None,
                })
                .collect(),
            ResourceSpec::Eip(e) => e.bound_to.iter().collect(),
            ResourceSpec::LoadBalancer(lb) => {
                std::iter::once(&lb.subnet).chain(&lb.members).collect()
            }
            ResourceSpec::WafPolicy(w) => w.targets.iter().collect(),
            ResourceSpec::BackupPolicy(b) => b.targets.iter().collect(),
            ResourceSpec::Snapshot(s) => vec![&s.source],
        }
    }

    /// Checks the rules types alone cannot express (`RESOURCE_SPEC_INVALID`). Shape
    /// limits (cores, memory) are catalog data and checked by `catalog`.
    pub fn validate(&self) -> Result<(), ResourceError> {
        let kind = self.kind();
        let invalid = |field: &'static str, reason: &str| ResourceError::SpecInvalid {
            kind,
            field,
            reason: reason.to_string(),
        };
        match self {
            ResourceSpec::Vm(vm) if vm.data_disks.len() > VmSpec::MAX_DATA_DISKS => {
                Err(invalid("data_disks", "has more than 16 disks"))
            }
            ResourceSpec::SecurityGroup(sg) => {
                for rule in &sg.rules {
                    if let Some(p) = rule.ports {
                        if p.from > p.to {
                            return Err(invalid("ports", "range starts after it ends"));
                        }
                        if rule.protocol == IpProtocol::Icmp {
                            return Err(invalid("ports", "cannot be set for ICMP"));
                        }
                    }
                }
                Ok(())
            }
            ResourceSpec::LoadBalancer(lb) => {
                if lb.listeners.is_empty() {
                    return Err(invalid("listeners", "must not be empty"));
                }
                let mut seen = std::collections::BTreeSet::new();
                for l in &lb.listeners {
                    if !seen.insert(l.port) {
                        return Err(invalid("listeners", "use the same port twice"));
                    }
                }
                Ok(())
            }
            ResourceSpec::WafPolicy(w) if w.rule_sets.is_empty() => {
                Err(invalid("rule_sets", "must not be empty"))
            }
            ResourceSpec::BackupPolicy(b) => {
                if b.targets.is_empty() {
                    return Err(invalid("targets", "must not be empty"));
                }
                let (weekday, hour) = match b.schedule {
                    BackupSchedule::Daily { hour } => (1, hour),
                    BackupSchedule::Weekly { weekday, hour } => (weekday, hour),
                };
                if hour > 23 {
                    return Err(invalid("schedule.hour", "must be 0-23"));
                }
                if !(1..=7).contains(&weekday) {
                    return Err(invalid("schedule.weekday", "must be 1-7"));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Observed lifecycle phase, as reported by the driver or decided by the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Pending,
    Provisioning,
    Running,
    Stopped,
    Failed,
    Deleting,
    Deleted,
    /// No pool can take it; waits with the reason in the message (SPEC §4).
    Unschedulable,
}

/// What the controller last observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceStatus {
    pub phase: Phase,
    /// Human-readable detail from the driver or scheduler; not parsed by code.
    #[serde(default)]
    pub message: Option<String>,
    /// The generation the driver last applied; 0 before the first apply.
    pub observed_generation: u64,
}

impl ResourceStatus {
    /// The status of a resource nobody has looked at yet.
    pub fn pending() -> Self {
        ResourceStatus {
            phase: Phase::Pending,
            message: None,
            observed_generation: 0,
        }
    }
}

/// Where the controller placed a resource (SPEC §4): the provider and zone
/// and, where they apply, the network area (subnets, servers, EIPs, load
/// balancers), pool and host (servers). Written with the resource's intent in
/// one store transaction, so capacity is never counted twice or lost across a
/// restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub provider: crate::ids::ProviderId,
    pub zone: ZoneId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_area: Option<NetworkAreaId>,
    /// For VMs and bare metal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<crate::ids::PoolId>,
    /// For VMs and bare metal.
    #[serde(default)]
    pub host: Option<crate::ids::HostId>,
}

/// A resource owned by one information system. Fields are private so the
/// generation rule holds; deserialization re-checks spec and generations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ResourceFields")]
pub struct Resource {
    id: ResourceId,
    system: SystemNumber,
    order: Option<OrderId>,
    spec: ResourceSpec,
    generation: u64,
    status: ResourceStatus,
    created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    placement: Option<Placement>,
    /// When deletion was asked for (an exit order, a change scaling down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deletion_requested_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct ResourceFields {
    id: ResourceId,
    system: SystemNumber,
    #[serde(default)]
    order: Option<OrderId>,
    spec: ResourceSpec,
    generation: u64,
    status: ResourceStatus,
    created_at: DateTime<Utc>,
    #[serde(default)]
    placement: Option<Placement>,
    #[serde(default)]
    deletion_requested_at: Option<DateTime<Utc>>,
}

impl TryFrom<ResourceFields> for Resource {
    type Error = ResourceError;
    fn try_from(f: ResourceFields) -> Result<Self, Self::Error> {
        f.spec.validate()?;
        if f.generation == 0 || f.status.observed_generation > f.generation {
            return Err(ResourceError::GenerationAhead {
                observed: f.status.observed_generation,
                generation: f.generation,
            });
        }
        Ok(Resource {
            id: f.id,
            system: f.system,
            order: f.order,
            spec: f.spec,
            generation: f.generation,
            status: f.status,
            created_at: f.created_at,
            placement: f.placement,
            deletion_requested_at: f.deletion_requested_at,
        })
    }
}

impl Resource {
    /// A new resource at generation 1, pending. `order` is the work order whose
    /// approval asked for it, if any.
    pub fn new(
        id: ResourceId,
        system: SystemNumber,
        order: Option<OrderId>,
        spec: ResourceSpec,
        created_at: DateTime<Utc>,
    ) -> Result<Self, ResourceError> {
        spec.validate()?;
        Ok(Resource {
            id,
            system,
            order,
            spec,
            generation: 1,
            status: ResourceStatus::pending(),
            created_at,
            placement: None,
            deletion_requested_at: None,
        })
    }

    /// Records where the scheduler placed it.
    pub fn place(&mut self, placement: Placement) {
        self.placement = Some(placement);
    }

    pub fn placement(&self) -> Option<&Placement> {
        self.placement.as_ref()
    }

    /// Asks for deletion (once; the first time counts). Bumps the generation so
    /// the reconciler sees new desired state.
    pub fn request_deletion(&mut self, at: DateTime<Utc>) {
        if self.deletion_requested_at.is_none() {
            self.deletion_requested_at = Some(at);
            self.generation += 1;
        }
    }

    pub fn deletion_requested_at(&self) -> Option<DateTime<Utc>> {
        self.deletion_requested_at
    }

    pub fn id(&self) -> &ResourceId {
        &self.id
    }
    pub fn kind(&self) -> ResourceKind {
        self.spec.kind()
    }
    pub fn system(&self) -> &SystemNumber {
        &self.system
    }
    /// The owning tenant, derived from the system number.
    pub fn tenant(&self) -> &TenantCode {
        self.system.tenant()
    }
    pub fn order(&self) -> Option<&OrderId> {
        self.order.as_ref()
    }
    pub fn spec(&self) -> &ResourceSpec {
        &self.spec
    }
    pub fn generation(&self) -> u64 {
        self.generation
    }
    pub fn status(&self) -> &ResourceStatus {
        &self.status
    }
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// Replaces the desired spec. Bumps the generation and returns `true` only if the
    /// spec differs, so applying the same spec twice is a no-op. Refuses a different
    /// kind (`RESOURCE_KIND_CHANGE`) and invalid specs; on error nothing changes.
    pub fn set_spec(&mut self, spec: ResourceSpec) -> Result<bool, ResourceError> {
        if spec.kind() != self.kind() {
            return Err(ResourceError::KindChange {
                from: self.kind(),
                to: spec.kind(),
            });
        }
        spec.validate()?;
        if spec == self.spec {
            return Ok(false);
        }
        self.spec = spec;
        self.generation += 1;
        Ok(true)
    }

    /// Records an observation. Refuses an observed generation ahead of the desired
    /// one (`RESOURCE_GENERATION_AHEAD`): a driver cannot have applied a spec it was
    /// never sent.
    pub fn observe(&mut self, status: ResourceStatus) -> Result<(), ResourceError> {
        if status.observed_generation > self.generation {
            return Err(ResourceError::GenerationAhead {
                observed: status.observed_generation,
                generation: self.generation,
            });
        }
        self.status = status;
        Ok(())
    }

    /// Whether the driver has applied the current spec.
    pub fn is_up_to_date(&self) -> bool {
        self.status.observed_generation == self.generation
    }
}

impl Record for Resource {
    const KIND: &'static str = "resource";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn vm(vcpu: u32) -> ResourceSpec {
        ResourceSpec::Vm(VmSpec {
            stopped: false,
            arch: Architecture::C86,
            vcpu: NonZeroU32::new(vcpu).expect("nz"),
            memory_mib: NonZeroU64::new(8192).expect("nz"),
            system_disk_gib: NonZeroU32::new(40).expect("nz"),
            system_disk_class: None,
            data_disks: vec![DiskSpec {
                size_gib: NonZeroU32::new(100).expect("nz"),
                storage_class: StorageClassId::new("ssd").expect("id"),
            }],
            image: ImageId::new("kylin-v10-sp3").expect("id"),
            network_area: NetworkAreaId::new("extranet").expect("id"),
            zone: ZoneId::new("fuzhongxin").expect("id"),
            anti_affinity_group: Some(AntiAffinityGroup::new("web").expect("id")),
            anti_affinity_soft: false,
            nics: Vec::new(),
            security_groups: Vec::new(),
        })
    }

    fn resource(spec: ResourceSpec) -> Resource {
        Resource::new(
            ResourceId::new("vm-0001").expect("id"),
            "110105001".parse().expect("number"),
            Some(OrderId::new("WO-1").expect("id")),
            spec,
            Utc.with_ymd_and_hms(2026, 4, 2, 0, 0, 0)
                .single()
                .expect("date"),
        )
        .expect("valid")
    }

    fn check_cidr(input: &str, ok: bool) {
        assert_eq!(Cidr::parse(input).is_ok(), ok, "{input}");
    }

    #[test]
    fn cidr_parsing() {
        check_cidr("10.0.0.0/16", true);
        check_cidr("0.0.0.0/0", true);
        check_cidr("192.168.1.7/32", true);
        check_cidr("10.0.0.1/16", false); // host bits set
        check_cidr("10.0.0.0/33", false);
        check_cidr("10.0.0.0", false);
        check_cidr("10.0.0.0/", false);
        check_cidr("10.0.0.0/+8", false);
        check_cidr("fe80::/10", false);
        assert_eq!(
            Cidr::parse("10.1.0.0/16").expect("ok").to_string(),
            "10.1.0.0/16"
        );
    }

    #[test]
    fn cidr_containment_overlap_and_subnets() {
        let c = |v: &str| Cidr::parse(v).expect("cidr");
        let vpc = c("10.8.0.0/16");
        assert!(vpc.contains(&c("10.8.3.0/24")));
        assert!(vpc.contains(&vpc));
        assert!(!vpc.contains(&c("10.9.0.0/24")));
        assert!(!c("10.8.3.0/24").contains(&vpc));
        assert!(vpc.overlaps(&c("10.0.0.0/8")));
        assert!(!c("10.8.0.0/24").overlaps(&c("10.8.1.0/24")));
        assert_eq!(vpc.subnet(24, 0), Some(c("10.8.0.0/24")));
        assert_eq!(vpc.subnet(24, 255), Some(c("10.8.255.0/24")));
        assert_eq!(vpc.subnet(24, 256), None);
        assert_eq!(vpc.subnet(8, 0), None);
        assert_eq!(c("0.0.0.0/0").subnet(1, 1), Some(c("128.0.0.0/1")));
    }

    #[test]
    fn generation_bumps_only_on_change() {
        let mut r = resource(vm(4));
        assert_eq!(r.generation(), 1);
        assert_eq!(r.set_spec(vm(4)), Ok(false));
        assert_eq!(r.generation(), 1);
        assert_eq!(r.set_spec(vm(8)), Ok(true));
        assert_eq!(r.generation(), 2);
        let vpc = ResourceSpec::Vpc(VpcSpec {
            cidr: Cidr::parse("10.0.0.0/16").expect("cidr"),
        });
        assert_eq!(
            r.set_spec(vpc).map_err(|e| e.code()),
            Err("RESOURCE_KIND_CHANGE")
        );
        assert_eq!(r.generation(), 2);
    }

    #[test]
    fn observation_cannot_run_ahead() {
        let mut r = resource(vm(4));
        assert!(!r.is_up_to_date());
        let running = ResourceStatus {
            phase: Phase::Running,
            message: None,
            observed_generation: 1,
        };
        r.observe(running.clone()).expect("ok");
        assert!(r.is_up_to_date());
        let ahead = ResourceStatus {
            observed_generation: 2,
            ..running
        };
        assert_eq!(
            r.observe(ahead).map_err(|e| e.code()),
            Err("RESOURCE_GENERATION_AHEAD")
        );
    }

    #[test]
    fn references_name_what_must_exist_first() {
        let id = |s: &str| ResourceId::new(s).expect("id");
        let mut v = match vm(2) {
            ResourceSpec::Vm(v) => v,
            _ => unreachable!("vm() builds a VM"),
        };
        v.nics = vec![id("subnet-a")];
        v.security_groups = vec![id("sg-default")];
        let refs = |spec: &ResourceSpec| -> Vec<String> {
            spec.references().iter().map(|r| r.to_string()).collect()
        };
        assert_eq!(refs(&ResourceSpec::Vm(v)), ["subnet-a", "sg-default"]);
        let lb = ResourceSpec::LoadBalancer(LoadBalancerSpec {
            subnet: id("subnet-a"),
            listeners: vec![],
            members: vec![id("vm-1"), id("vm-2")],
        });
        assert_eq!(refs(&lb), ["subnet-a", "vm-1", "vm-2"]);
        let sg = ResourceSpec::SecurityGroup(SecurityGroupSpec {
            rules: vec![
                SecurityRule {
                    direction: Direction::Ingress,
                    protocol: IpProtocol::Tcp,
                    ports: None,
                    remote: RuleRemoteSpec::Group(id("sg-web")),
                },
                SecurityRule {
                    direction: Direction::Ingress,
                    protocol: IpProtocol::Any,
                    ports: None,
                    remote: RuleRemoteSpec::Cidr(Cidr::parse("10.0.0.0/8").expect("cidr")),
                },
            ],
        });
        assert_eq!(refs(&sg), ["sg-web"]);
        assert!(
            refs(&ResourceSpec::Vpc(VpcSpec {
                cidr: Cidr::parse("10.0.0.0/16").expect("cidr")
            }))
            .is_empty()
        );
    }

    #[test]
    fn spec_rules() {
        let bad_backup = ResourceSpec::BackupPolicy(BackupPolicySpec {
            targets: vec![ResourceId::new("vm-1").expect("id")],
            backup_type: BackupType::Incremental,
            schedule: BackupSchedule::Weekly {
                weekday: 8,
                hour: 2,
            },
            retention_days: NonZeroU32::new(90).expect("nz"),
            capacity_gib: NonZeroU32::new(200).expect("nz"),
        });
        assert_eq!(
            bad_backup.validate().map_err(|e| e.code()),
            Err("RESOURCE_SPEC_INVALID")
        );
        let port = |p| Port::new(p).expect("port");
        let bad_sg = ResourceSpec::SecurityGroup(SecurityGroupSpec {
            rules: vec![SecurityRule {
                direction: Direction::Ingress,
                protocol: IpProtocol::Tcp,
                ports: Some(PortRange {
                    from: port(443),
                    to: port(80),
                }),
                remote: RuleRemoteSpec::Cidr(Cidr::parse("0.0.0.0/0").expect("cidr")),
            }],
        });
        assert!(bad_sg.validate().is_err());
        let lb = ResourceSpec::LoadBalancer(LoadBalancerSpec {
            subnet: ResourceId::new("subnet-1").expect("id"),
            listeners: vec![],
            members: vec![],
        });
        assert!(lb.validate().is_err());
    }

    #[test]
    fn serde_round_trip_and_refusal() {
        let r = resource(vm(4));
        let json = serde_json::to_string(&r).expect("ser");
        assert!(
            json.contains(r#""spec":{"kind":"vm","spec":{"arch":"c86""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Resource>(&json).expect("de"), r);
        assert_eq!(r.tenant().as_str(), "110105");
        let ahead = json.replace(r#""observed_generation":0"#, r#""observed_generation":5"#);
        assert!(serde_json::from_str::<Resource>(&ahead).is_err());
        let zero = json.replace(r#""vcpu":4"#, r#""vcpu":0"#);
        assert!(serde_json::from_str::<Resource>(&zero).is_err());
    }
}
