//! What a work order asks for: resource lines with requested and approved
//! quantities, public IPs and ports, bastion accounts and cross-area access — the
//! rows of Datong's resource requirement form (000 附件3).
//!
//! Owns the rule that a reviewer may lower a quantity but never raise it (000 art.
//! 12; SPEC §3). When a line may be approved is the work order's business (`order`).

use std::fmt;
use std::net::IpAddr;
use std::num::{NonZeroU16, NonZeroU32};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    arch::Architecture,
    error::ErrorCode,
    provider::NetworkAreaKind,
    text::{Name, Text},
};

/// Why a line of a work order was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LineError {
    #[error(
        "approved quantity {approved} exceeds requested quantity {requested}; reviewers may only lower"
    )]
    ApproveRaises { requested: u32, approved: u32 },
    #[error("cross-area access must join two different network areas, both ends are {area:?}")]
    CrossZoneSameArea { area: NetworkAreaKind },
}

impl ErrorCode for LineError {
    fn code(&self) -> &'static str {
        match self {
            LineError::ApproveRaises { .. } => "LINE_APPROVE_RAISES",
            LineError::CrossZoneSameArea { .. } => "CROSS_ZONE_SAME_AREA",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            LineError::ApproveRaises {
                requested,
                approved,
            } => format!("核定数量 {approved} 大于申请数量 {requested}：审核只能核减，不能增加"),
            LineError::CrossZoneSameArea { area } => {
                format!("跨域访问的源端和目的端不能同在 {} ", area.label_zh())
            }
        }
    }
}

/// Server form (服务器形态, 000 附件3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerForm {
    /// 虚拟机
    Vm,
    /// 实体独立服务器 (bare metal)
    BareMetal,
}

/// How strictly a server line's servers are kept apart (反亲和). A line of
/// two or more servers is one anti-affinity group: its members go on
/// different hosts so one host failure takes out one replica only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AntiAffinity {
    /// 强制分散: every member on its own host; a member that finds no free
    /// host waits as unschedulable (the default — what replicas are for).
    #[default]
    Hard,
    /// 尽量分散: on different hosts while there are any, on a shared host
    /// rather than not at all (OpenStack's soft-anti-affinity). For providers
    /// with fewer hosts than replicas, e.g. a one-host test environment.
    Soft,
}

impl AntiAffinity {
    pub fn is_hard(&self) -> bool {
        *self == AntiAffinity::Hard
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            AntiAffinity::Hard => "强制分散",
            AntiAffinity::Soft => "尽量分散",
        }
    }
}

/// One server row of the requirement form (000 附件3 "开通"): the shape of each of
/// `quantity` identical servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRequest {
    /// Server or VM name (服务器/虚拟机命名).
    pub server_name: Name,
    /// Network area (网络区域).
    pub network_area: NetworkAreaKind,
    pub form: ServerForm,
    pub architecture: Architecture,
    pub vcpu: NonZeroU32,
    pub memory_gib: NonZeroU32,
    pub system_disk_gib: NonZeroU32,
    /// Data disk capacity (数据盘容量); 0 when none.
    pub data_disk_gib: u32,
    /// Operating system (操作系统), as the applicant names it.
    pub os: Name,
    /// Purpose (服务器用途).
    pub purpose: Text,
    /// Backup space (备份空间); 0 when none. More than 0 gives each server a
    /// daily incremental backup of this size unless a backup policy names the
    /// group.
    pub backup_gib: u32,
    /// Bare metal only: the hardware model (the catalog's 配置, the provider's
    /// host model); `None` = any model with the cores and memory asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Name>,
    /// How the line's servers are kept apart; hard unless asked otherwise.
    #[serde(default, skip_serializing_if = "AntiAffinity::is_hard")]
    pub anti_affinity: AntiAffinity,
}

/// Most servers one line may ask for, and one order in all. Catalogs and
/// policies set the real limits; these are the ceilings no stored order may
/// pass, so that no order can make the control plane plan, place or hold
/// billions of servers (issue 16 item 1: a quantity of 4,294,967,295 filed
/// as an emergency change crash-looped every leader).
pub const MAX_LINE_QUANTITY: u32 = 1_000;
pub const MAX_ORDER_SERVERS: u32 = 2_000;
/// Sanity ceilings of one server's shape, far above any catalog.
pub const MAX_VCPU: u32 = 512;
pub const MAX_MEMORY_GIB: u32 = 16_384;
pub const MAX_DISK_GIB: u32 = 65_536;

/// Refuses lines over [`MAX_LINE_QUANTITY`], an order over
/// [`MAX_ORDER_SERVERS`] and shapes over the sanity ceilings.
pub fn check_ceilings(lines: &[ResourceLine]) -> Result<(), crate::order_services::ServiceError> {
    use crate::order_services::ServiceError;
    let over = |s: &ServerRequest, field: &'static str, max: u32, unit: &str, unit_zh: &str| {
        ServiceError::Invalid {
            item: "server",
            name: s.server_name.to_string(),
            field,
            reason: format!("must be at most {max}{unit}"),
            reason_zh: format!("不能超过 {max}{unit_zh}"),
        }
    };
    let mut total: u64 = 0;
    for l in lines {
        let s = l.server();
        if l.requested_qty() > MAX_LINE_QUANTITY {
            return Err(over(s, "quantity", MAX_LINE_QUANTITY, "", " 台"));
        }
        for (field, value, max, unit, unit_zh) in [
            ("vcpu", s.vcpu.get(), MAX_VCPU, "", " 核"),
            (
                "memory_gib",
                s.memory_gib.get(),
                MAX_MEMORY_GIB,
                " GiB",
                " GiB",
            ),
            (
                "system_disk_gib",
                s.system_disk_gib.get(),
                MAX_DISK_GIB,
                " GiB",
                " GiB",
            ),
            (
                "data_disk_gib",
                s.data_disk_gib,
                MAX_DISK_GIB,
                " GiB",
                " GiB",
            ),
            ("backup_gib", s.backup_gib, MAX_DISK_GIB, " GiB", " GiB"),
        ] {
            if value > max {
                return Err(over(s, field, max, unit, unit_zh));
            }
        }
        total += u64::from(l.requested_qty());
    }
    if total > u64::from(MAX_ORDER_SERVERS) {
        return Err(ServiceError::TooMany {
            what: "servers",
            max: MAX_ORDER_SERVERS as usize,
        });
    }
    Ok(())
}

/// A requested server row with its requested and approved quantities.
/// Invariant: `approved ≤ requested`; deserialization re-checks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ResourceLineFields")]
pub struct ResourceLine {
    server: ServerRequest,
    requested_qty: NonZeroU32,
    approved_qty: Option<u32>,
}

#[derive(Deserialize)]
struct ResourceLineFields {
    server: ServerRequest,
    requested_qty: NonZeroU32,
    #[serde(default)]
    approved_qty: Option<u32>,
}

impl TryFrom<ResourceLineFields> for ResourceLine {
    type Error = LineError;
    fn try_from(f: ResourceLineFields) -> Result<Self, Self::Error> {
        let mut line = ResourceLine::new(f.server, f.requested_qty);
        if let Some(q) = f.approved_qty {
            line.approve(q)?;
        }
        Ok(line)
    }
}

impl ResourceLine {
    /// A new, not yet reviewed line.
    pub fn new(server: ServerRequest, requested_qty: NonZeroU32) -> Self {
        ResourceLine {
            server,
            requested_qty,
            approved_qty: None,
        }
    }

    pub fn server(&self) -> &ServerRequest {
        &self.server
    }

    pub fn requested_qty(&self) -> u32 {
        self.requested_qty.get()
    }

    /// What the reviewer approved; `None` while not yet reviewed. The controller
    /// provisions this, never the requested quantity (SPEC §3).
    pub fn approved_qty(&self) -> Option<u32> {
        self.approved_qty
    }

    /// Sets the approved quantity. Lowering, even to 0, is allowed; raising above the
    /// request is refused with `LINE_APPROVE_RAISES` — reviewers reduce to reasonable
    /// values (000 art. 12), a larger need is a new request. Idempotent.
    pub fn approve(&mut self, qty: u32) -> Result<(), LineError> {
        if qty > self.requested_qty.get() {
            return Err(LineError::ApproveRaises {
                requested: self.requested_qty.get(),
                approved: qty,
            });
        }
        self.approved_qty = Some(qty);
        Ok(())
    }

    /// Approves the full request if nothing was approved yet.
    pub(crate) fn approve_in_full_if_unset(&mut self) {
        if self.approved_qty.is_none() {
            self.approved_qty = Some(self.requested_qty.get());
        }
    }

    /// Forgets any approval: a resubmitted order is reviewed afresh.
    pub(crate) fn clear_approval(&mut self) {
        self.approved_qty = None;
    }
}

/// A TCP/UDP port, 1–65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Port(NonZeroU16);

impl Port {
    /// `None` for port 0.
    pub fn new(port: u16) -> Option<Self> {
        NonZeroU16::new(port).map(Port)
    }

    pub fn get(self) -> u16 {
        self.0.get()
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A public IP request (公网IP, 000 附件3 安全防护需求): what for, which server it maps
/// to, and which ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicIpRequest {
    /// 公网 IP 用途
    pub purpose: Text,
    /// 映射的虚拟机名称: a server group (each member gets one address) or a
    /// load balancer of the system (one address).
    pub server_name: Name,
    /// 端口
    pub ports: Vec<Port>,
    /// Internet bandwidth of the address, Mbps (default [`Self::DEFAULT_MBPS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_mbps: Option<NonZeroU32>,
    /// In a change order: release the addresses of `server_name`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remove: bool,
}

impl PublicIpRequest {
    /// Bandwidth of an address whose request does not say.
    pub const DEFAULT_MBPS: u32 = 5;

    pub fn bandwidth(&self) -> u32 {
        self.bandwidth_mbps
            .map_or(Self::DEFAULT_MBPS, NonZeroU32::get)
    }
}

/// A bastion-host account request (堡垒机账号开通, 000 附件3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BastionAccountRequest {
    /// 账号使用人
    pub holder: Name,
    /// 账号名
    pub account: Name,
    /// 使用部门
    pub department: Name,
    /// 需访问的虚机名称
    pub servers: Vec<Name>,
}

/// One end of a cross-area access (区域, 名称, IP, 端口).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEndpoint {
    pub area: NetworkAreaKind,
    pub name: Name,
    pub ip: IpAddr,
    pub port: Option<Port>,
}

/// A cross-area access need between 政务外网 and 互联网 through the gateway (网闸,
/// 000 附件3). The areas are isolated by default (003 §2.3.2 (9)), so both ends must
/// lie in different areas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CrossZoneAccessFields")]
pub struct CrossZoneAccess {
    source: AccessEndpoint,
    destination: AccessEndpoint,
}

#[derive(Deserialize)]
struct CrossZoneAccessFields {
    source: AccessEndpoint,
    destination: AccessEndpoint,
}

impl TryFrom<CrossZoneAccessFields> for CrossZoneAccess {
    type Error = LineError;
    fn try_from(f: CrossZoneAccessFields) -> Result<Self, Self::Error> {
        CrossZoneAccess::new(f.source, f.destination)
    }
}

impl CrossZoneAccess {
    /// Refuses two ends in the same area (`CROSS_ZONE_SAME_AREA`).
    pub fn new(source: AccessEndpoint, destination: AccessEndpoint) -> Result<Self, LineError> {
        if source.area == destination.area {
            return Err(LineError::CrossZoneSameArea { area: source.area });
        }
        Ok(CrossZoneAccess {
            source,
            destination,
        })
    }

    pub fn source(&self) -> &AccessEndpoint {
        &self.source
    }

    pub fn destination(&self) -> &AccessEndpoint {
        &self.destination
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn nz(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).expect("non-zero")
    }

    pub(crate) fn server() -> ServerRequest {
        ServerRequest {
            server_name: Name::new("web-01").expect("name"),
            network_area: NetworkAreaKind::GovExtranet,
            form: ServerForm::Vm,
            architecture: Architecture::Arm64,
            vcpu: nz(4),
            memory_gib: nz(8),
            system_disk_gib: nz(100),
            data_disk_gib: 500,
            os: Name::new("麒麟 V10").expect("name"),
            purpose: Text::new("应用服务器").expect("text"),
            backup_gib: 200,
            model: None,
            anti_affinity: AntiAffinity::Hard,
        }
    }

    fn check(requested: u32, approve: u32, expected: Result<Option<u32>, LineError>) {
        let mut line = ResourceLine::new(server(), nz(requested));
        let got = line.approve(approve).map(|()| line.approved_qty());
        assert_eq!(got, expected, "requested {requested}, approve {approve}");
    }

    #[test]
    fn approve_never_raises() {
        check(3, 3, Ok(Some(3)));
        check(3, 2, Ok(Some(2)));
        check(3, 0, Ok(Some(0)));
        check(
            3,
            4,
            Err(LineError::ApproveRaises {
                requested: 3,
                approved: 4,
            }),
        );
    }

    #[test]
    fn refused_approval_leaves_line_unchanged() {
        let mut line = ResourceLine::new(server(), nz(2));
        line.approve(1).expect("lower");
        assert!(line.approve(5).is_err());
        assert_eq!(line.approved_qty(), Some(1));
    }

    #[test]
    fn serde_rechecks_invariant() {
        let mut line = ResourceLine::new(server(), nz(3));
        line.approve(2).expect("lower");
        let json = serde_json::to_string(&line).expect("ser");
        assert_eq!(
            serde_json::from_str::<ResourceLine>(&json).expect("de"),
            line
        );
        let raised = json.replace(r#""approved_qty":2"#, r#""approved_qty":9"#);
        assert!(serde_json::from_str::<ResourceLine>(&raised).is_err());
        let zero_vcpu = json.replace(r#""vcpu":4"#, r#""vcpu":0"#);
        assert!(serde_json::from_str::<ResourceLine>(&zero_vcpu).is_err());
        let zero_qty = json.replace(r#""requested_qty":3"#, r#""requested_qty":0"#);
        assert!(serde_json::from_str::<ResourceLine>(&zero_qty).is_err());
    }

    fn endpoint(area: NetworkAreaKind, ip: &str) -> AccessEndpoint {
        AccessEndpoint {
            area,
            name: Name::new("db").expect("name"),
            ip: ip.parse().expect("ip"),
            port: Port::new(3306),
        }
    }

    #[test]
    fn cross_zone_needs_two_areas() {
        let ok = CrossZoneAccess::new(
            endpoint(NetworkAreaKind::Internet, "203.0.113.5"),
            endpoint(NetworkAreaKind::GovExtranet, "10.1.2.3"),
        )
        .expect("valid");
        let json = serde_json::to_string(&ok).expect("ser");
        assert_eq!(
            serde_json::from_str::<CrossZoneAccess>(&json).expect("de"),
            ok
        );
        let same = CrossZoneAccess::new(
            endpoint(NetworkAreaKind::GovExtranet, "10.1.2.4"),
            endpoint(NetworkAreaKind::GovExtranet, "10.1.2.3"),
        );
        assert_eq!(same.map_err(|e| e.code()), Err("CROSS_ZONE_SAME_AREA"));
        let bad = json.replace("internet", "gov_extranet");
        assert!(serde_json::from_str::<CrossZoneAccess>(&bad).is_err());
    }

    #[test]
    fn port_zero_refused() {
        assert!(Port::new(0).is_none());
        assert!(serde_json::from_str::<Port>("0").is_err());
        assert_eq!(serde_json::from_str::<Port>("443").expect("de").get(), 443);
    }
}
