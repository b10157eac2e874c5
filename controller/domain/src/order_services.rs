//! What a work order asks for besides servers: the network its servers sit in,
//! security groups, load balancers, WAF policies, data volumes, backup policies
//! and snapshots (000 附件3; 003 §3.1–3.2; 004 附件1–3).
//!
//! Every item is named, unique per kind within an order, and refers to the
//! order's servers (and to other items) by name; a change order changes or
//! removes an item by naming it again (`remove: true` removes). Which names
//! resolve is checked against the whole system by the workflow; this module
//! checks what one order can say about itself: shapes, ranges, and that a
//! network's subnets lie in its VPC without overlapping.
//!
//! Defaults, so a tenant who asks only for servers still gets a working
//! network: without a [`NetworkRequest`] the system gets the VPC
//! [`NetworkRequest::DEFAULT_VPC`] with one /20 per network area its servers
//! use; every system has the security group [`DEFAULT_SECURITY_GROUP`]
//! (inbound denied except from the system's own servers, outbound allowed).

use std::collections::BTreeSet;
use std::fmt;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    error::ErrorCode,
    provider::NetworkAreaKind,
    resource::{
        BackupType, CcLimit, Cidr, Direction, HealthProtocol, IpProtocol, Listener, PortRange,
        WafMode, WafRuleSet,
    },
    text::{Name, Text},
};

/// The security group every system has; servers join it unless an order puts
/// them in named groups only.
pub const DEFAULT_SECURITY_GROUP: &str = "default";

/// Most items of one kind in one order: more is a data-entry error or an abuse.
pub const MAX_ITEMS: usize = 64;

/// Why an order's network or service items were refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ServiceError {
    #[error("two {what} are named {name:?}; names must be unique")]
    NameTwice { what: &'static str, name: String },
    #[error("at most {max} {what} per order")]
    TooMany { what: &'static str, max: usize },
    #[error("the VPC {cidr} must be a /8 to /24 network")]
    VpcSize { cidr: Cidr },
    #[error("subnet {subnet} is not inside the VPC {vpc}")]
    SubnetOutsideVpc { subnet: Cidr, vpc: Cidr },
    #[error("subnets {a} and {b} overlap")]
    SubnetsOverlap { a: Cidr, b: Cidr },
    #[error("subnet {subnet} must be a /16 to /28 network")]
    SubnetSize { subnet: Cidr },
    #[error("network area {area:?} has two subnets; one per area")]
    AreaTwice { area: NetworkAreaKind },
    #[error("{item} {name:?}: {field} {reason}")]
    Invalid {
        item: &'static str,
        name: String,
        field: &'static str,
        reason: String,
        reason_zh: String,
    },
}

impl ErrorCode for ServiceError {
    fn code(&self) -> &'static str {
        match self {
            ServiceError::NameTwice { .. } => "ORDER_ITEM_NAME_TWICE",
            ServiceError::TooMany { .. } => "ORDER_ITEMS_TOO_MANY",
            ServiceError::VpcSize { .. } => "NETWORK_VPC_SIZE",
            ServiceError::SubnetOutsideVpc { .. } => "NETWORK_SUBNET_OUTSIDE_VPC",
            ServiceError::SubnetsOverlap { .. } => "NETWORK_SUBNETS_OVERLAP",
            ServiceError::SubnetSize { .. } => "NETWORK_SUBNET_SIZE",
            ServiceError::AreaTwice { .. } => "NETWORK_AREA_TWICE",
            ServiceError::Invalid { .. } => "ORDER_ITEM_INVALID",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            ServiceError::NameTwice { what, name } => {
                format!("有两个{}名为“{name}”，名称不能重复", what_zh(what))
            }
            ServiceError::TooMany { what, max } => {
                format!("每个工单最多 {max} 个{}", what_zh(what))
            }
            ServiceError::VpcSize { cidr } => format!("VPC 网段 {cidr} 须为 /8 至 /24"),
            ServiceError::SubnetOutsideVpc { subnet, vpc } => {
                format!("子网 {subnet} 不在 VPC 网段 {vpc} 之内")
            }
            ServiceError::SubnetsOverlap { a, b } => format!("子网 {a} 与 {b} 重叠"),
            ServiceError::SubnetSize { subnet } => format!("子网 {subnet} 须为 /16 至 /28"),
            ServiceError::AreaTwice { area } => {
                format!("{}有两个子网，每个网络区域只能有一个", area.label_zh())
            }
            ServiceError::Invalid {
                item,
                name,
                field,
                reason_zh,
                ..
            } => format!("{}“{name}”的 {field} {reason_zh}", what_zh(item)),
        }
    }
}

fn what_zh(what: &str) -> &'static str {
    match what {
        "servers" | "server" => "服务器",
        "security groups" | "security group" => "安全组",
        "load balancers" | "load balancer" => "负载均衡",
        "WAF policies" | "WAF policy" => "WAF 策略",
        "volumes" | "volume" => "数据卷",
        "backup policies" | "backup policy" => "备份策略",
        "snapshots" | "snapshot" => "快照",
        "public IPs" | "public IP" => "公网 IP",
        "subnets" => "子网",
        _ => "条目",
    }
}

fn invalid(
    item: &'static str,
    name: &Name,
    field: &'static str,
    reason: &str,
    reason_zh: &str,
) -> ServiceError {
    ServiceError::Invalid {
        item,
        name: name.to_string(),
        field,
        reason: reason.to_owned(),
        reason_zh: reason_zh.to_owned(),
    }
}

/// The system's private network in its zone (专有网络): a VPC and one subnet
/// per network area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRequest {
    pub vpc_cidr: Cidr,
    /// At most one per network area; an area the servers use but that has no
    /// subnet here gets the next free /24 of the VPC.
    #[serde(default)]
    pub subnets: Vec<SubnetRequest>,
}

/// One subnet of the system's VPC, in one network area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetRequest {
    pub network_area: NetworkAreaKind,
    pub cidr: Cidr,
}

impl NetworkRequest {
    /// The VPC of a system whose orders name none.
    pub const DEFAULT_VPC: &'static str = "10.0.0.0/16";

    /// Subnets inside the VPC, no two overlapping, one per area, sizes sane.
    pub fn validate(&self) -> Result<(), ServiceError> {
        if !(8..=24).contains(&self.vpc_cidr.prefix()) {
            return Err(ServiceError::VpcSize {
                cidr: self.vpc_cidr,
            });
        }
        if self.subnets.len() > MAX_ITEMS {
            return Err(ServiceError::TooMany {
                what: "subnets",
                max: MAX_ITEMS,
            });
        }
        let mut areas = BTreeSet::new();
        for (i, s) in self.subnets.iter().enumerate() {
            if !(16..=28).contains(&s.cidr.prefix()) {
                return Err(ServiceError::SubnetSize { subnet: s.cidr });
            }
            if !self.vpc_cidr.contains(&s.cidr) {
                return Err(ServiceError::SubnetOutsideVpc {
                    subnet: s.cidr,
                    vpc: self.vpc_cidr,
                });
            }
            if !areas.insert(s.network_area) {
                return Err(ServiceError::AreaTwice {
                    area: s.network_area,
                });
            }
            if let Some(other) = self.subnets[..i].iter().find(|o| o.cidr.overlaps(&s.cidr)) {
                return Err(ServiceError::SubnetsOverlap {
                    a: other.cidr,
                    b: s.cidr,
                });
            }
        }
        Ok(())
    }
}

/// Where a security rule lets traffic come from (ingress) or go to (egress).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleRemote {
    /// An IPv4 network.
    Cidr(Cidr),
    /// The members of a security group of the system, by name.
    Group(Name),
}

fn ingress() -> Direction {
    Direction::Ingress
}

/// One allow rule; everything a group's rules do not allow inbound is denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityRuleRequest {
    #[serde(default = "ingress")]
    pub direction: Direction,
    pub protocol: IpProtocol,
    /// `None` = every port (the only choice for ICMP).
    #[serde(default)]
    pub ports: Option<PortRange>,
    pub remote: RuleRemote,
    #[serde(default)]
    pub description: Option<Text>,
}

/// A security group (安全组) and the server groups that join it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupRequest {
    pub name: Name,
    #[serde(default)]
    pub rules: Vec<SecurityRuleRequest>,
    /// Server groups (by name) that join it; empty = none besides those that
    /// name it. Servers always join [`DEFAULT_SECURITY_GROUP`] too.
    #[serde(default)]
    pub servers: Vec<Name>,
    /// In a change order: remove this group.
    #[serde(default)]
    pub remove: bool,
}

/// Most rules of one security group.
pub const MAX_RULES: usize = 100;

impl SecurityGroupRequest {
    pub fn validate(&self) -> Result<(), ServiceError> {
        const ITEM: &str = "security group";
        if self.rules.len() > MAX_RULES {
            return Err(invalid(
                ITEM,
                &self.name,
                "rules",
                &format!("has more than {MAX_RULES} rules"),
                &format!("超过 {MAX_RULES} 条"),
            ));
        }
        for rule in &self.rules {
            if let Some(p) = rule.ports {
                if p.from > p.to {
                    return Err(invalid(
                        ITEM,
                        &self.name,
                        "ports",
                        "range starts after it ends",
                        "端口范围起点大于终点",
                    ));
                }
                if rule.protocol == IpProtocol::Icmp {
                    return Err(invalid(
                        ITEM,
                        &self.name,
                        "ports",
                        "cannot be set for ICMP",
                        "ICMP 不能指定端口",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A load balancer (负载均衡) in front of one server group: every member of
/// the group, now and after a change, is a backend of every listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerRequest {
    pub name: Name,
    pub network_area: NetworkAreaKind,
    /// The same listeners a load balancer resource has.
    pub listeners: Vec<Listener>,
    /// The server group (line name) behind it.
    pub members: Name,
    /// In a change order: remove this load balancer.
    #[serde(default)]
    pub remove: bool,
}

/// Most listeners of one load balancer.
pub const MAX_LISTENERS: usize = 16;

impl LoadBalancerRequest {
    pub fn validate(&self) -> Result<(), ServiceError> {
        const ITEM: &str = "load balancer";
        let bad =
            |field: &'static str, en: &str, zh: &str| invalid(ITEM, &self.name, field, en, zh);
        if self.remove {
            return Ok(());
        }
        if self.listeners.is_empty() {
            return Err(bad("listeners", "must not be empty", "不能为空"));
        }
        if self.listeners.len() > MAX_LISTENERS {
            return Err(bad(
                "listeners",
                &format!("has more than {MAX_LISTENERS}"),
                &format!("超过 {MAX_LISTENERS} 个"),
            ));
        }
        let mut ports = BTreeSet::new();
        for l in &self.listeners {
            if !ports.insert(l.port) {
                return Err(bad(
                    "listeners",
                    &format!("use port {} twice", l.port),
                    &format!("端口 {} 重复", l.port),
                ));
            }
            let Some(h) = &l.health_check else {
                continue;
            };
            if !(1..=300).contains(&h.interval_seconds) {
                return Err(bad(
                    "health_check.interval_seconds",
                    "must be 1-300",
                    "须为 1–300 秒",
                ));
            }
            if h.timeout_seconds == 0 || h.timeout_seconds >= h.interval_seconds {
                return Err(bad(
                    "health_check.timeout_seconds",
                    "must be at least 1 and shorter than the interval",
                    "须至少 1 秒且短于检查间隔",
                ));
            }
            for t in [h.healthy_threshold, h.unhealthy_threshold] {
                if !(1..=10).contains(&t) {
                    return Err(bad(
                        "health_check thresholds",
                        "must be 1-10",
                        "阈值须为 1–10",
                    ));
                }
            }
            if h.path.is_some() && h.protocol != HealthProtocol::Http {
                return Err(bad(
                    "health_check.path",
                    "is for HTTP checks only",
                    "仅 HTTP 检查可设置路径",
                ));
            }
            if h.path
                .as_ref()
                .is_some_and(|p| !p.as_str().starts_with('/'))
            {
                return Err(bad("health_check.path", "must start with /", "须以 / 开头"));
            }
        }
        Ok(())
    }
}

/// A WAF policy (WAF 防护, 000 ZW0205) in front of a load balancer's public side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WafPolicyRequest {
    pub name: Name,
    /// The load balancer (by name) it protects.
    pub load_balancer: Name,
    pub mode: WafMode,
    pub rule_sets: Vec<WafRuleSet>,
    #[serde(default)]
    pub cc_limit: Option<CcLimit>,
    /// 白名单
    #[serde(default)]
    pub allow_cidrs: Vec<Cidr>,
    /// 黑名单
    #[serde(default)]
    pub deny_cidrs: Vec<Cidr>,
    #[serde(default)]
    pub remove: bool,
}

/// Most entries of a WAF allow or deny list.
pub const MAX_WAF_CIDRS: usize = 256;

impl WafPolicyRequest {
    pub fn validate(&self) -> Result<(), ServiceError> {
        const ITEM: &str = "WAF policy";
        let bad =
            |field: &'static str, en: &str, zh: &str| invalid(ITEM, &self.name, field, en, zh);
        if self.remove {
            return Ok(());
        }
        if self.rule_sets.is_empty() {
            return Err(bad("rule_sets", "must not be empty", "不能为空"));
        }
        if self.allow_cidrs.len() > MAX_WAF_CIDRS || self.deny_cidrs.len() > MAX_WAF_CIDRS {
            return Err(bad(
                "allow_cidrs/deny_cidrs",
                &format!("have more than {MAX_WAF_CIDRS} entries"),
                &format!("超过 {MAX_WAF_CIDRS} 条"),
            ));
        }
        if let Some(cc) = self.cc_limit
            && cc.period_seconds.get() > 3600
        {
            return Err(bad(
                "cc_limit.period_seconds",
                "must be at most 3600",
                "不能超过 3600 秒",
            ));
        }
        if let Some(both) = self
            .allow_cidrs
            .iter()
            .find(|c| self.deny_cidrs.contains(c))
        {
            return Err(bad(
                "allow_cidrs",
                &format!("and deny_cidrs both list {both}"),
                &format!("与黑名单同时包含 {both}"),
            ));
        }
        Ok(())
    }
}

/// Storage tier of a data volume (003 §3.1: 普通 2,000–5,000 IOPS, 高性能
/// 10,000–25,000 IOPS per disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeTier {
    Standard,
    HighPerformance,
}

impl VolumeTier {
    pub fn label_zh(self) -> &'static str {
        match self {
            VolumeTier::Standard => "普通",
            VolumeTier::HighPerformance => "高性能",
        }
    }
}

impl fmt::Display for VolumeTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VolumeTier::Standard => "standard",
            VolumeTier::HighPerformance => "high_performance",
        })
    }
}

/// A data volume (云硬盘) for every member of a server group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRequest {
    pub name: Name,
    /// The server group (line name) each of whose members gets one.
    pub server_name: Name,
    pub size_gib: NonZeroU32,
    pub tier: VolumeTier,
    /// Restore (恢复): the new volume starts as the latest copy of this
    /// backup policy or snapshot of the system (by item name), member for
    /// member; it takes effect when the volume is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<Name>,
    #[serde(default)]
    pub remove: bool,
}

/// Largest data volume, GiB.
pub const MAX_VOLUME_GIB: u32 = 32_768;

impl VolumeRequest {
    pub fn validate(&self) -> Result<(), ServiceError> {
        if self.size_gib.get() > MAX_VOLUME_GIB {
            return Err(invalid(
                "volume",
                &self.name,
                "size_gib",
                &format!("must be at most {MAX_VOLUME_GIB}"),
                &format!("不能超过 {MAX_VOLUME_GIB} GiB"),
            ));
        }
        Ok(())
    }
}

/// When a backup runs, in Beijing time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "every", rename_all = "snake_case")]
pub enum BackupWindow {
    Daily {
        hour: u8,
    },
    /// `weekday`: 1 = Monday … 7 = Sunday (ISO 8601).
    Weekly {
        weekday: u8,
        hour: u8,
    },
}

/// A backup policy (备份策略) for every member of a server group, or for every
/// volume of a volume item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupPolicyRequest {
    pub name: Name,
    /// A server group (line name) or a volume item (by name).
    pub target: Name,
    pub backup_type: BackupType,
    pub window: BackupWindow,
    pub retention_days: NonZeroU32,
    /// Backup space (备份空间) per target, GiB; billed.
    pub capacity_gib: NonZeroU32,
    #[serde(default)]
    pub remove: bool,
}

/// Longest backup retention, days (ten years).
pub const MAX_RETENTION_DAYS: u32 = 3650;

impl BackupPolicyRequest {
    pub fn validate(&self) -> Result<(), ServiceError> {
        const ITEM: &str = "backup policy";
        let bad =
            |field: &'static str, en: &str, zh: &str| invalid(ITEM, &self.name, field, en, zh);
        let (weekday, hour) = match self.window {
            BackupWindow::Daily { hour } => (1, hour),
            BackupWindow::Weekly { weekday, hour } => (weekday, hour),
        };
        if hour > 23 {
            return Err(bad("window.hour", "must be 0-23", "须为 0–23 点"));
        }
        if !(1..=7).contains(&weekday) {
            return Err(bad(
                "window.weekday",
                "must be 1-7",
                "须为 1–7（周一至周日）",
            ));
        }
        if self.retention_days.get() > MAX_RETENTION_DAYS {
            return Err(bad(
                "retention_days",
                &format!("must be at most {MAX_RETENTION_DAYS}"),
                &format!("不能超过 {MAX_RETENTION_DAYS} 天"),
            ));
        }
        if self.capacity_gib.get() > MAX_VOLUME_GIB * 4 {
            return Err(bad(
                "capacity_gib",
                &format!("must be at most {}", MAX_VOLUME_GIB * 4),
                &format!("不能超过 {} GiB", MAX_VOLUME_GIB * 4),
            ));
        }
        Ok(())
    }
}

/// A one-off snapshot (快照) of every member of a server group or every volume
/// of a volume item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRequest {
    pub name: Name,
    /// A server group (line name) or a volume item (by name).
    pub source: Name,
    #[serde(default)]
    pub remove: bool,
}

/// Checks `names` are unique and at most [`MAX_ITEMS`].
pub(crate) fn unique<'a>(
    what: &'static str,
    names: impl Iterator<Item = &'a Name>,
) -> Result<(), ServiceError> {
    let mut seen = BTreeSet::new();
    for (i, n) in names.enumerate() {
        if i >= MAX_ITEMS {
            return Err(ServiceError::TooMany {
                what,
                max: MAX_ITEMS,
            });
        }
        if !seen.insert(n.as_str()) {
            return Err(ServiceError::NameTwice {
                what,
                name: n.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check<T: serde::de::DeserializeOwned>(
        value: serde_json::Value,
        validate: impl Fn(&T) -> Result<(), ServiceError>,
        expected: Result<(), &str>,
    ) {
        let item: T = serde_json::from_value(value.clone()).expect("parses");
        assert_eq!(validate(&item).map_err(|e| e.code()), expected, "{value}");
    }

    #[test]
    fn networks() {
        let v = NetworkRequest::validate;
        check(json!({"vpc_cidr": "10.8.0.0/16"}), v, Ok(()));
        check(
            json!({"vpc_cidr": "10.8.0.0/16", "subnets": [
                {"network_area": "gov_extranet", "cidr": "10.8.1.0/24"},
                {"network_area": "internet", "cidr": "10.8.2.0/24"}]}),
            v,
            Ok(()),
        );
        check(
            json!({"vpc_cidr": "10.0.0.0/28"}),
            v,
            Err("NETWORK_VPC_SIZE"),
        );
        check(
            json!({"vpc_cidr": "10.8.0.0/16", "subnets": [
                {"network_area": "gov_extranet", "cidr": "10.9.1.0/24"}]}),
            v,
            Err("NETWORK_SUBNET_OUTSIDE_VPC"),
        );
        check(
            json!({"vpc_cidr": "10.8.0.0/16", "subnets": [
                {"network_area": "gov_extranet", "cidr": "10.8.0.0/20"},
                {"network_area": "internet", "cidr": "10.8.1.0/24"}]}),
            v,
            Err("NETWORK_SUBNETS_OVERLAP"),
        );
        check(
            json!({"vpc_cidr": "10.8.0.0/16", "subnets": [
                {"network_area": "internet", "cidr": "10.8.1.0/24"},
                {"network_area": "internet", "cidr": "10.8.2.0/24"}]}),
            v,
            Err("NETWORK_AREA_TWICE"),
        );
        check(
            json!({"vpc_cidr": "10.8.0.0/16", "subnets": [
                {"network_area": "internet", "cidr": "10.8.1.0/30"}]}),
            v,
            Err("NETWORK_SUBNET_SIZE"),
        );
    }

    #[test]
    fn security_groups() {
        let v = SecurityGroupRequest::validate;
        check(
            json!({"name": "web", "rules": [
                {"protocol": "tcp", "ports": {"from": 80, "to": 443}, "remote": {"cidr": "0.0.0.0/0"}},
                {"protocol": "tcp", "ports": {"from": 3306, "to": 3306}, "remote": {"group": "app"}},
                {"protocol": "icmp", "remote": {"cidr": "10.0.0.0/8"}}]}),
            v,
            Ok(()),
        );
        check(
            json!({"name": "web", "rules": [
                {"protocol": "tcp", "ports": {"from": 443, "to": 80}, "remote": {"cidr": "0.0.0.0/0"}}]}),
            v,
            Err("ORDER_ITEM_INVALID"),
        );
        check(
            json!({"name": "web", "rules": [
                {"protocol": "icmp", "ports": {"from": 1, "to": 1}, "remote": {"cidr": "0.0.0.0/0"}}]}),
            v,
            Err("ORDER_ITEM_INVALID"),
        );
        // Direction defaults to ingress.
        let g: SecurityGroupRequest = serde_json::from_value(
            json!({"name": "x", "rules": [{"protocol": "any", "remote": {"cidr": "0.0.0.0/0"}}]}),
        )
        .expect("parses");
        assert_eq!(g.rules[0].direction, Direction::Ingress);
    }

    fn lb(listeners: serde_json::Value) -> serde_json::Value {
        json!({"name": "web-lb", "network_area": "internet", "members": "web", "listeners": listeners})
    }

    #[test]
    fn load_balancers() {
        let v = LoadBalancerRequest::validate;
        check(
            lb(
                json!([{"protocol": "http", "port": 80, "backend_port": 8080,
                "algorithm": "weighted_round_robin",
                "health_check": {"protocol": "http", "path": "/healthz"}}]),
            ),
            v,
            Ok(()),
        );
        check(lb(json!([])), v, Err("ORDER_ITEM_INVALID"));
        check(
            lb(json!([{"protocol": "tcp", "port": 80, "backend_port": 80},
                      {"protocol": "http", "port": 80, "backend_port": 8080}])),
            v,
            Err("ORDER_ITEM_INVALID"),
        );
        check(
            lb(json!([{"protocol": "tcp", "port": 80, "backend_port": 80,
                "health_check": {"protocol": "tcp", "interval_seconds": 5, "timeout_seconds": 5}}])),
            v,
            Err("ORDER_ITEM_INVALID"),
        );
        check(
            lb(json!([{"protocol": "tcp", "port": 80, "backend_port": 80,
                "health_check": {"protocol": "tcp", "path": "/x"}}])),
            v,
            Err("ORDER_ITEM_INVALID"),
        );
        // The algorithm defaults to WRR.
        let l: LoadBalancerRequest = serde_json::from_value(lb(
            json!([{"protocol": "tcp", "port": 80, "backend_port": 80}]),
        ))
        .expect("parses");
        assert_eq!(
            l.listeners[0].algorithm,
            crate::resource::LbAlgorithm::WeightedRoundRobin
        );
        assert!(
            serde_json::from_value::<LoadBalancerRequest>(lb(
                json!([{"protocol": "tcp", "port": 0, "backend_port": 80}])
            ))
            .is_err(),
            "port 0"
        );
    }

    #[test]
    fn waf_policies() {
        let v = WafPolicyRequest::validate;
        let base = json!({"name": "waf", "load_balancer": "web-lb", "mode": "block",
            "rule_sets": ["sqli", "xss"], "cc_limit": {"requests": 100, "period_seconds": 60},
            "deny_cidrs": ["203.0.113.0/24"]});
        check(base.clone(), v, Ok(()));
        let mut empty = base.clone();
        empty["rule_sets"] = json!([]);
        check(empty, v, Err("ORDER_ITEM_INVALID"));
        let mut both = base.clone();
        both["allow_cidrs"] = json!(["203.0.113.0/24"]);
        check(both, v, Err("ORDER_ITEM_INVALID"));
        let mut long = base;
        long["cc_limit"]["period_seconds"] = json!(7200);
        check(long, v, Err("ORDER_ITEM_INVALID"));
    }

    #[test]
    fn volumes_backups_and_names() {
        check(
            json!({"name": "db-data", "server_name": "db", "size_gib": 200, "tier": "high_performance"}),
            VolumeRequest::validate,
            Ok(()),
        );
        check(
            json!({"name": "db-data", "server_name": "db", "size_gib": 40000, "tier": "standard"}),
            VolumeRequest::validate,
            Err("ORDER_ITEM_INVALID"),
        );
        let b = json!({"name": "nightly", "target": "db", "backup_type": "incremental",
            "window": {"every": "daily", "hour": 2}, "retention_days": 7, "capacity_gib": 200});
        check(b.clone(), BackupPolicyRequest::validate, Ok(()));
        let mut late = b.clone();
        late["window"] = json!({"every": "weekly", "weekday": 8, "hour": 2});
        check(
            late,
            BackupPolicyRequest::validate,
            Err("ORDER_ITEM_INVALID"),
        );
        let mut long = b;
        long["retention_days"] = json!(5000);
        check(
            long,
            BackupPolicyRequest::validate,
            Err("ORDER_ITEM_INVALID"),
        );

        let n = |s: &str| Name::new(s).expect("name");
        assert_eq!(unique("volumes", [n("a"), n("b")].iter()), Ok(()));
        assert_eq!(
            unique("volumes", [n("a"), n("a")].iter()).map_err(|e| e.code()),
            Err("ORDER_ITEM_NAME_TWICE")
        );
        let many: Vec<Name> = (0..=MAX_ITEMS).map(|i| n(&format!("v{i}"))).collect();
        assert_eq!(
            unique("volumes", many.iter()).map_err(|e| e.code()),
            Err("ORDER_ITEMS_TOO_MANY")
        );
        assert!(
            ServiceError::AreaTwice {
                area: NetworkAreaKind::Internet
            }
            .message_zh()
            .contains("互联网区")
        );
    }
}
