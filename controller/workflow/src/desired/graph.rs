//! From what a system's orders ask for ([`Asked`]) to the resources that make
//! it real: a stable id for each, what each needs (its references, proto
//! "References between resources"), and the order it belongs to.
//!
//! Pure and level-based like the rest of `desired`: the same orders always give
//! the same resources with the same ids, so a pass after a crash names the same
//! things. Names that resolve to nothing (a load balancer in front of a server
//! group the system does not have) are not guessed at: the item is left out and
//! the order that asked for it gets a [`Problem`] with the reason.
//!
//! Defaults (issue 14): a system with servers or load balancers gets the VPC of
//! its orders (or [`NetworkRequest::DEFAULT_VPC`]) and one subnet per network
//! area it uses (an area without an explicit subnet takes the next free
//! [`AUTO_SUBNET_PREFIX`] of the VPC — 4,093 addresses, a quarter of a smaller
//! VPC —, sized once: a subnet cannot change after it is created), and the security group `default`: inbound only from the VPC,
//! outbound anywhere. Every server joins `default`; named groups add rules and
//! the server groups they list. A server line with backup space and no backup
//! policy naming it gets a daily incremental backup at 02:00 Beijing time kept
//! [`AUTO_BACKUP_RETENTION_DAYS`] days.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;

use yunshu_domain::ids::ZoneId;
use yunshu_domain::order_line::{ServerForm, ServerRequest};
use yunshu_domain::order_services::{
    BackupWindow, DEFAULT_SECURITY_GROUP, NetworkRequest, RuleRemote, VolumeTier,
};
use yunshu_domain::provider::NetworkAreaKind;
use yunshu_domain::resource::{
    BackupSchedule, BackupType, Cidr, Direction, IpProtocol, Listener, ResourceKind,
    RuleRemoteSpec, SecurityRule, WafPolicySpec,
};
use yunshu_domain::{OrderId, ResourceId, SystemNumber};

use super::{Asked, Group};

/// The prefix length of a subnet the orders do not give (at least a quarter
/// of the VPC, so every network area fits in it).
pub const AUTO_SUBNET_PREFIX: u8 = 20;

/// Days an automatic backup (a line's backup space without a policy) is kept.
pub const AUTO_BACKUP_RETENTION_DAYS: u32 = 30;

/// Every resource a system should have, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub wants: BTreeMap<ResourceId, Want>,
    /// Items left out because a name they use resolves to nothing.
    pub problems: Vec<Problem>,
    /// The provider and zone the orders name last, if any.
    pub provider: Option<yunshu_domain::ProviderId>,
    pub zone: Option<yunshu_domain::ids::ZoneId>,
}

/// Why an item of an order was left out, in both languages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub order: OrderId,
    pub reason: String,
    pub reason_zh: String,
}

/// Which zone a resource lives in: the system's main zone (where its first
/// resources went, or the zone its orders name) or another zone an order
/// names. Each zone has its own VPC and subnets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    Main,
    Zone(ZoneId),
}

impl Slot {
    /// The slot of an order's zone: the main zone's own name means `Main`.
    pub fn of(zone: Option<&ZoneId>, main: Option<&ZoneId>) -> Slot {
        match zone {
            Some(z) if Some(z) != main => Slot::Zone(z.clone()),
            _ => Slot::Main,
        }
    }

    /// The zone, given the main one.
    pub fn zone<'a>(&'a self, main: &'a ZoneId) -> &'a ZoneId {
        match self {
            Slot::Main => main,
            Slot::Zone(z) => z,
        }
    }

    fn id_part(&self) -> String {
        match self {
            Slot::Main => "main".to_owned(),
            Slot::Zone(z) => format!("z{}", h8(z.as_str())),
        }
    }
}

/// One resource to have, before placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// The order whose approval asked for it (last).
    pub order: OrderId,
    /// The zone it lives in.
    pub slot: Slot,
    pub item: Item,
}

/// What a resource is, with references resolved to resource ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Vpc {
        cidr: Cidr,
    },
    Subnet {
        vpc: ResourceId,
        cidr: Cidr,
        area: NetworkAreaKind,
    },
    SecurityGroup {
        rules: Vec<SecurityRule>,
    },
    /// A VM or a bare-metal server (`server.form`), member `member` of `group`.
    Server {
        group: String,
        member: u32,
        server: ServerRequest,
        subnet: ResourceId,
        security_groups: Vec<ResourceId>,
        /// Powered off with its disks kept: the system is offline (002 art.
        /// 14) or exited and in its data retention (002 art. 13).
        stopped: bool,
    },
    Volume {
        size_gib: NonZeroU32,
        tier: VolumeTier,
        attach_to: ResourceId,
        /// The backup policy or snapshot it is restored from.
        restore_from: Option<ResourceId>,
    },
    Eip {
        bandwidth_mbps: NonZeroU32,
        bind_to: ResourceId,
        area: NetworkAreaKind,
    },
    LoadBalancer {
        subnet: ResourceId,
        area: NetworkAreaKind,
        listeners: Vec<Listener>,
        members: Vec<ResourceId>,
    },
    WafPolicy {
        spec: WafPolicySpec,
    },
    BackupPolicy {
        target: ResourceId,
        backup_type: BackupType,
        schedule: BackupSchedule,
        retention_days: NonZeroU32,
        capacity_gib: NonZeroU32,
    },
    Snapshot {
        source: ResourceId,
    },
}

impl Item {
    pub fn kind(&self) -> ResourceKind {
        match self {
            Item::Vpc { .. } => ResourceKind::Vpc,
            Item::Subnet { .. } => ResourceKind::Subnet,
            Item::SecurityGroup { .. } => ResourceKind::SecurityGroup,
            Item::Server { server, .. } => match server.form {
                ServerForm::Vm => ResourceKind::Vm,
                ServerForm::BareMetal => ResourceKind::BareMetal,
            },
            Item::Volume { .. } => ResourceKind::Volume,
            Item::Eip { .. } => ResourceKind::Eip,
            Item::LoadBalancer { .. } => ResourceKind::LoadBalancer,
            Item::WafPolicy { .. } => ResourceKind::WafPolicy,
            Item::BackupPolicy { .. } => ResourceKind::BackupPolicy,
            Item::Snapshot { .. } => ResourceKind::Snapshot,
        }
    }

    /// The resources this one names: they are created before it and deleted
    /// after it.
    pub fn needs(&self) -> Vec<&ResourceId> {
        match self {
            Item::Vpc { .. } => Vec::new(),
            Item::Subnet { vpc, .. } => vec![vpc],
            Item::SecurityGroup { rules } => rules
                .iter()
                .filter_map(|r| match &r.remote {
                    RuleRemoteSpec::Group(g) => Some(g),
                    RuleRemoteSpec::Cidr(_) => None,
                })
                .collect(),
            Item::Server {
                subnet,
                security_groups,
                ..
            } => std::iter::once(subnet).chain(security_groups).collect(),
            Item::Volume {
                attach_to,
                restore_from,
                ..
            } => std::iter::once(attach_to).chain(restore_from).collect(),
            Item::Eip { bind_to, .. } => vec![bind_to],
            Item::LoadBalancer {
                subnet, members, ..
            } => std::iter::once(subnet).chain(members).collect(),
            Item::WafPolicy { spec } => spec.targets.iter().collect(),
            Item::BackupPolicy { target, .. } => vec![target],
            Item::Snapshot { source } => vec![source],
        }
    }
}

/// The first eight hex digits of the SHA-256 of `name`: ids stay ASCII and
/// short whatever the (often Chinese) name.
fn h8(name: &str) -> String {
    yunshu_pki::sha256_hex(name.as_bytes())[..8].to_owned()
}

/// Every id prefix of `system`'s resources, one per kind; each ends in `-`.
pub fn system_prefixes(system: &SystemNumber) -> Vec<String> {
    [
        "vm", "bm", "vpc", "subnet", "sg", "vol", "eip", "lb", "waf", "bak", "snap",
    ]
    .iter()
    .map(|k| format!("{k}-{system}-"))
    .collect()
}

fn rid(value: String) -> Option<ResourceId> {
    ResourceId::new(value).ok()
}

/// The VPC of `system` in `slot`.
pub fn vpc_id(system: &SystemNumber, slot: &Slot) -> Option<ResourceId> {
    rid(format!("vpc-{system}-{}", slot.id_part()))
}

fn area_slug(area: NetworkAreaKind) -> &'static str {
    match area {
        NetworkAreaKind::GovExtranet => "gov",
        NetworkAreaKind::Internet => "net",
        NetworkAreaKind::Dedicated => "ded",
    }
}

/// The subnet of `system` in `area` of `slot`.
pub fn subnet_id(system: &SystemNumber, slot: &Slot, area: NetworkAreaKind) -> Option<ResourceId> {
    match slot {
        Slot::Main => rid(format!("subnet-{system}-{}", area_slug(area))),
        other => rid(format!(
            "subnet-{system}-{}-{}",
            other.id_part(),
            area_slug(area)
        )),
    }
}

/// The security group `name` of `system` (`default` has a readable id).
pub fn security_group_id(system: &SystemNumber, name: &str) -> Option<ResourceId> {
    if name == DEFAULT_SECURITY_GROUP {
        rid(format!("sg-{system}-default"))
    } else {
        rid(format!("sg-{system}-{}", h8(name)))
    }
}

/// Member `n` (1-based) of server group `name`: `vm-…` or `bm-…`.
pub fn server_id(
    system: &SystemNumber,
    form: ServerForm,
    name: &str,
    n: u32,
) -> Option<ResourceId> {
    let kind = match form {
        ServerForm::Vm => "vm",
        ServerForm::BareMetal => "bm",
    };
    rid(format!("{kind}-{system}-{}-{n}", h8(name)))
}

fn item_id(kind: &str, system: &SystemNumber, name: &str, n: Option<u32>) -> Option<ResourceId> {
    match n {
        Some(n) => rid(format!("{kind}-{system}-{}-{n}", h8(name))),
        None => rid(format!("{kind}-{system}-{}", h8(name))),
    }
}

/// The UTC schedule of a backup window in Beijing time (UTC+8, no DST).
fn utc_schedule(window: BackupWindow) -> BackupSchedule {
    let utc = |hour: u8| (u16::from(hour) + 24 - 8) % 24;
    match window {
        BackupWindow::Daily { hour } => BackupSchedule::Daily {
            hour: u8::try_from(utc(hour)).unwrap_or(0),
        },
        BackupWindow::Weekly { weekday, hour } => BackupSchedule::Weekly {
            // Before 08:00 Beijing time is the previous day in UTC.
            weekday: if hour < 8 {
                if weekday <= 1 { 7 } else { weekday - 1 }
            } else {
                weekday
            },
            hour: u8::try_from(utc(hour)).unwrap_or(0),
        },
    }
}

/// The most members one group is planned with: the line ceiling plus the
/// free temporary expansion on top of it (20 %).
pub const MAX_GROUP_MEMBERS: u32 = yunshu_domain::order_line::MAX_LINE_QUANTITY * 6 / 5;

struct Plan<'a> {
    system: &'a SystemNumber,
    main: Option<&'a ZoneId>,
    /// Where servers already placed are (a member may sit in another zone
    /// than its group asks for: it went where there was room).
    placed: &'a BTreeMap<ResourceId, ZoneId>,
    desired: Desired,
}

impl Plan<'_> {
    fn want(&mut self, id: Option<ResourceId>, order: &OrderId, slot: &Slot, item: Item) {
        if let Some(id) = id {
            self.desired.wants.insert(
                id,
                Want {
                    order: order.clone(),
                    slot: slot.clone(),
                    item,
                },
            );
        }
    }

    fn problem(&mut self, order: &OrderId, reason: String, reason_zh: String) {
        self.desired.problems.push(Problem {
            order: order.clone(),
            reason,
            reason_zh,
        });
    }

    fn members(&self, group: &str, g: &Group) -> Vec<ResourceId> {
        self.members_at(group, g)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// The members of a group with the slot each is (or is to be) in; never
    /// more than the line ceiling, whatever an old stored order says (the
    /// order hears why from [`plan`]).
    fn members_at(&self, group: &str, g: &Group) -> Vec<(ResourceId, Slot)> {
        (1..=g.quantity.min(MAX_GROUP_MEMBERS))
            .filter_map(|n| server_id(self.system, g.server.form, group, n))
            .map(|id| {
                let slot = match self.placed.get(&id) {
                    Some(z) => Slot::of(Some(z), self.main),
                    None => Slot::of(g.zone.as_ref(), self.main),
                };
                (id, slot)
            })
            .collect()
    }
}

/// The resources `asked` (one system's, server groups already with any
/// temporary expansion) stands for; `main_zone` is the system's main zone if
/// known (an order naming it is in the main slot).
pub fn plan(
    system: &SystemNumber,
    asked: &Asked,
    main_zone: Option<&ZoneId>,
    placed: &BTreeMap<ResourceId, ZoneId>,
) -> Desired {
    let mut p = Plan {
        system,
        main: main_zone,
        placed,
        desired: Desired {
            provider: asked.provider.clone(),
            zone: asked.zone.clone(),
            ..Desired::default()
        },
    };
    let order_slot = |o: &OrderId| -> Slot {
        Slot::of(asked.order_zones.get(o).and_then(|z| z.as_ref()), main_zone)
    };
    // A group over the ceiling (stored before the ceiling existed) is planned
    // at the ceiling, and its order hears why.
    for (name, g) in &asked.groups {
        if g.quantity > MAX_GROUP_MEMBERS {
            p.problem(
                &g.order,
                format!(
                    "server group {name:?} asks for {} servers; at most {MAX_GROUP_MEMBERS} are planned",
                    g.quantity
                ),
                format!(
                    "服务器组“{name}”申请 {} 台，超过上限，只按 {MAX_GROUP_MEMBERS} 台规划",
                    g.quantity
                ),
            );
        }
    }
    // Subnets needed, per slot and area, with the earliest order needing each
    // (the order whose completion waits for it).
    let groups: Vec<(&String, &Group)> = asked.groups.iter().collect();
    let mut areas: BTreeMap<(Slot, NetworkAreaKind), OrderId> = BTreeMap::new();
    let member_slots: Vec<(Slot, NetworkAreaKind, &OrderId)> = groups
        .iter()
        .flat_map(|(name, g)| {
            p.members_at(name, g)
                .into_iter()
                .map(|(_, slot)| (slot, g.server.network_area, &g.order))
                .collect::<Vec<_>>()
        })
        .collect();
    // Addresses each subnet must hold: one per server and load balancer.
    let mut nics: BTreeMap<(Slot, NetworkAreaKind), (u64, OrderId)> = BTreeMap::new();
    let used: Vec<(Slot, NetworkAreaKind, &OrderId)> = member_slots
        .into_iter()
        .chain(
            asked
                .load_balancers
                .values()
                .map(|(l, o)| (order_slot(o), l.network_area, o)),
        )
        .collect();
    for (slot, area, order) in used {
        let n = nics
            .entry((slot.clone(), area))
            .or_insert_with(|| (0, order.clone()));
        n.0 += 1;
        // The latest order is the one that outgrew the subnet.
        if *order > n.1 {
            n.1 = order.clone();
        }
        let first = areas.entry((slot, area)).or_insert_with(|| order.clone());
        if order < first {
            *first = order.clone();
        }
    }
    if areas.is_empty() {
        // Nothing sits in a network: the items that need servers resolve to
        // nothing.
        report_orphans(&mut p, asked);
        return p.desired;
    }
    let Some(any_cidr) = Cidr::parse(NetworkRequest::DEFAULT_VPC).ok() else {
        return p.desired;
    };

    // One VPC per slot, one subnet per area of it.
    let slots: BTreeSet<Slot> = areas.keys().map(|(s, _)| s.clone()).collect();
    let mut vpc_cidrs: BTreeMap<Slot, Cidr> = BTreeMap::new();
    for slot in &slots {
        let asked_net = asked
            .networks
            .iter()
            .find(|(z, _)| Slot::of(z.as_ref(), main_zone) == *slot)
            .map(|(_, n)| n);
        let vpc_cidr = asked_net.map_or(any_cidr, |(n, _)| n.vpc_cidr);
        vpc_cidrs.insert(slot.clone(), vpc_cidr);
        let first_order = areas
            .iter()
            .filter(|((s, _), _)| s == slot)
            .map(|(_, o)| o)
            .min()
            .cloned();
        let Some(first_order) = first_order else {
            continue;
        };
        let vpc_order = asked_net.map_or(first_order, |(_, o)| o.clone());
        let vpc = vpc_id(system, slot);
        p.want(vpc.clone(), &vpc_order, slot, Item::Vpc { cidr: vpc_cidr });
        let explicit: BTreeMap<NetworkAreaKind, Cidr> = asked_net
            .iter()
            .flat_map(|(n, _)| n.subnets.iter().map(|s| (s.network_area, s.cidr)))
            .collect();
        let mut taken: Vec<Cidr> = explicit.values().copied().collect();
        let mut next = 0u32;
        let auto_prefix = AUTO_SUBNET_PREFIX.max(vpc_cidr.prefix().saturating_add(2));
        let slot_areas: Vec<(NetworkAreaKind, OrderId)> = areas
            .iter()
            .filter(|((s, _), _)| s == slot)
            .map(|((_, a), o)| (*a, o.clone()))
            .collect();
        for (area, order) in slot_areas {
            let cidr = match explicit.get(&area) {
                Some(c) => Some(*c),
                None => loop {
                    let Some(c) = vpc_cidr.subnet(auto_prefix, next) else {
                        break None;
                    };
                    next += 1;
                    if !taken.iter().any(|t| t.overlaps(&c)) {
                        taken.push(c);
                        break Some(c);
                    }
                },
            };
            let (Some(cidr), Some(vpc)) = (cidr, vpc.clone()) else {
                p.problem(
                    &order,
                    format!("the VPC {vpc_cidr} has no room left for a subnet"),
                    format!("VPC 网段 {vpc_cidr} 已无可分配的子网"),
                );
                continue;
            };
            if let Some((n, last)) = nics.get(&(slot.clone(), area))
                && *n > cidr.host_capacity()
            {
                p.problem(
                    last,
                    format!(
                        "the {} subnet {cidr} has room for {} servers and load balancers; the orders put {n} in it (ask for a larger subnet)",
                        area.as_str(),
                        cidr.host_capacity()
                    ),
                    format!(
                        "{}子网 {cidr} 最多容纳 {} 台服务器和负载均衡，订单需要 {n} 个地址（请申请更大的子网）",
                        area.label_zh(),
                        cidr.host_capacity()
                    ),
                );
            }
            p.want(
                subnet_id(system, slot, area),
                &order,
                slot,
                Item::Subnet { vpc, cidr, area },
            );
        }
    }
    let subnet_of = |slot: &Slot, area: NetworkAreaKind| -> Option<ResourceId> {
        areas
            .contains_key(&(slot.clone(), area))
            .then(|| subnet_id(system, slot, area))
            .flatten()
    };

    // Security groups (system-wide, in the main slot): `default`, then the
    // named ones.
    let mut sg_names: BTreeSet<String> = asked.security_groups.keys().cloned().collect();
    sg_names.insert(DEFAULT_SECURITY_GROUP.to_owned());
    let mut joins: BTreeMap<String, Vec<ResourceId>> = BTreeMap::new();
    // Inbound only from the system's own networks, outbound anywhere.
    let mut default_rules: Vec<SecurityRule> = vpc_cidrs
        .values()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|c| SecurityRule {
            direction: Direction::Ingress,
            protocol: IpProtocol::Any,
            ports: None,
            remote: RuleRemoteSpec::Cidr(*c),
        })
        .collect();
    default_rules.push(SecurityRule {
        direction: Direction::Egress,
        protocol: IpProtocol::Any,
        ports: None,
        remote: RuleRemoteSpec::Cidr(Cidr::parse("0.0.0.0/0").unwrap_or(any_cidr)),
    });
    let mut default_extra = Vec::new();
    let mut default_order = areas.values().min().cloned();
    for (name, (g, order)) in &asked.security_groups {
        let mut rules = Vec::new();
        let mut broken = None;
        for r in &g.rules {
            let remote = match &r.remote {
                RuleRemote::Cidr(c) => RuleRemoteSpec::Cidr(*c),
                RuleRemote::Group(n) if sg_names.contains(n.as_str()) => {
                    match security_group_id(system, n.as_str()) {
                        Some(id) => RuleRemoteSpec::Group(id),
                        None => continue,
                    }
                }
                RuleRemote::Group(n) => {
                    broken = Some(n.to_string());
                    break;
                }
            };
            rules.push(SecurityRule {
                direction: r.direction,
                protocol: r.protocol,
                ports: r.ports,
                remote,
            });
        }
        if let Some(missing) = broken {
            p.problem(
                order,
                format!("security group {name:?} names the group {missing:?}, which the system does not have"),
                format!("安全组“{name}”引用的安全组“{missing}”不存在"),
            );
            continue;
        }
        for srv in &g.servers {
            match asked.groups.get(srv.as_str()) {
                Some(_) => joins
                    .entry(srv.to_string())
                    .or_default()
                    .extend(security_group_id(system, name)),
                None => p.problem(
                    order,
                    format!("security group {name:?} lists the servers {srv:?}, which the system does not have"),
                    format!("安全组“{name}”所列服务器“{srv}”不存在"),
                ),
            }
        }
        if name == DEFAULT_SECURITY_GROUP {
            default_extra = rules;
            default_order = Some(order.clone());
        } else {
            p.want(
                security_group_id(system, name),
                order,
                &Slot::Main,
                Item::SecurityGroup { rules },
            );
        }
    }
    let mut rules = default_rules;
    rules.extend(default_extra);
    if let Some(order) = &default_order {
        p.want(
            security_group_id(system, DEFAULT_SECURITY_GROUP),
            order,
            &Slot::Main,
            Item::SecurityGroup { rules },
        );
    }

    // Servers, each in its own slot's subnet.
    let default_sg = security_group_id(system, DEFAULT_SECURITY_GROUP);
    for (name, g) in &groups {
        let mut sgs: Vec<ResourceId> = default_sg.iter().cloned().collect();
        if let Some(extra) = joins.get(name.as_str()) {
            for id in extra {
                if !sgs.contains(id) {
                    sgs.push(id.clone());
                }
            }
        }
        for (n, (id, slot)) in p.members_at(name, g).into_iter().enumerate() {
            let Some(subnet) = subnet_of(&slot, g.server.network_area) else {
                continue;
            };
            p.want(
                Some(id),
                &g.order,
                &slot,
                Item::Server {
                    group: (*name).clone(),
                    member: u32::try_from(n + 1).unwrap_or(u32::MAX),
                    server: g.server.clone(),
                    subnet,
                    security_groups: if g.server.form == ServerForm::Vm {
                        sgs.clone()
                    } else {
                        Vec::new()
                    },
                    stopped: asked.stopped,
                },
            );
        }
    }

    // Volumes: one per member of the server group they name, in its zone.
    let mut volume_ids: BTreeMap<String, Vec<(ResourceId, Slot)>> = BTreeMap::new();
    let mut restoring: Vec<(ResourceId, ResourceId, String, OrderId)> = Vec::new();
    for (name, (v, order)) in &asked.volumes {
        let Some(g) = asked.groups.get(v.server_name.as_str()) else {
            p.problem(
                order,
                format!(
                    "volume {name:?} is for the servers {:?}, which the system does not have",
                    v.server_name.as_str()
                ),
                format!("数据卷“{name}”所属服务器“{}”不存在", v.server_name),
            );
            continue;
        };
        let members = p.members_at(v.server_name.as_str(), g);
        for (i, (m, slot)) in members.into_iter().enumerate() {
            let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let id = item_id("vol", system, name, Some(n));
            if let Some(id) = &id {
                volume_ids
                    .entry(name.clone())
                    .or_default()
                    .push((id.clone(), slot.clone()));
            }
            // Member n restores from member n of the source; whether that
            // exists is checked once every source is planned.
            let restore_from = v.restore_from.as_ref().and_then(|src| {
                let kind = if asked.backup_policies.contains_key(src.as_str()) {
                    "bak"
                } else {
                    "snap"
                };
                item_id(kind, system, src.as_str(), Some(n))
            });
            if let (Some(id), Some(src)) = (&id, &restore_from) {
                restoring.push((id.clone(), src.clone(), name.clone(), order.clone()));
            }
            p.want(
                id,
                order,
                &slot,
                Item::Volume {
                    size_gib: v.size_gib,
                    tier: v.tier,
                    attach_to: m,
                    restore_from,
                },
            );
        }
    }

    // Load balancers, in their order's zone.
    let mut lb_ids: BTreeMap<String, (ResourceId, NetworkAreaKind, Slot)> = BTreeMap::new();
    for (name, (l, order)) in &asked.load_balancers {
        let Some(g) = asked.groups.get(l.members.as_str()) else {
            p.problem(
                order,
                format!("load balancer {name:?} is in front of the servers {:?}, which the system does not have", l.members.as_str()),
                format!("负载均衡“{name}”的后端服务器“{}”不存在", l.members),
            );
            continue;
        };
        let slot = order_slot(order);
        let Some(subnet) = subnet_of(&slot, l.network_area) else {
            continue;
        };
        let members = p.members(l.members.as_str(), g);
        let id = item_id("lb", system, name, None);
        if let Some(id) = &id {
            lb_ids.insert(name.clone(), (id.clone(), l.network_area, slot.clone()));
        }
        p.want(
            id,
            order,
            &slot,
            Item::LoadBalancer {
                subnet,
                area: l.network_area,
                listeners: l.listeners.clone(),
                members,
            },
        );
    }

    // Public IPs: one per member of a server group, or one for a load
    // balancer, in the zone of what they map to.
    for (target, (ip, order)) in &asked.public_ips {
        let bandwidth = NonZeroU32::new(ip.bandwidth()).unwrap_or(NonZeroU32::MIN);
        if let Some((lb, area, slot)) = lb_ids.get(target) {
            p.want(
                item_id("eip", system, target, Some(1)),
                order,
                slot,
                Item::Eip {
                    bandwidth_mbps: bandwidth,
                    bind_to: lb.clone(),
                    area: *area,
                },
            );
        } else if let Some(g) = asked.groups.get(target) {
            for (i, (m, slot)) in p.members_at(target, g).into_iter().enumerate() {
                let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
                p.want(
                    item_id("eip", system, target, Some(n)),
                    order,
                    &slot,
                    Item::Eip {
                        bandwidth_mbps: bandwidth,
                        bind_to: m,
                        area: g.server.network_area,
                    },
                );
            }
        } else {
            p.problem(
                order,
                format!("a public IP maps to {target:?}, which is neither a server group nor a load balancer of the system"),
                format!("公网 IP 映射的“{target}”既不是本系统的服务器也不是负载均衡"),
            );
        }
    }

    // WAF policies, in front of a load balancer.
    for (name, (w, order)) in &asked.waf_policies {
        let Some((lb, _, slot)) = lb_ids.get(w.load_balancer.as_str()) else {
            p.problem(
                order,
                format!("WAF policy {name:?} protects the load balancer {:?}, which the system does not have", w.load_balancer.as_str()),
                format!("WAF 策略“{name}”防护的负载均衡“{}”不存在", w.load_balancer),
            );
            continue;
        };
        p.want(
            item_id("waf", system, name, None),
            order,
            slot,
            Item::WafPolicy {
                spec: WafPolicySpec {
                    mode: w.mode,
                    domains: Vec::new(),
                    targets: vec![lb.clone()],
                    rule_sets: w.rule_sets.clone(),
                    cc_limit: w.cc_limit,
                    allow_cidrs: w.allow_cidrs.clone(),
                    deny_cidrs: w.deny_cidrs.clone(),
                },
            },
        );
    }

    // Backup policies: explicit ones, then the lines' backup space.
    let mut backed_up: BTreeSet<String> = BTreeSet::new();
    for (name, (b, order)) in &asked.backup_policies {
        let targets: Vec<(ResourceId, Slot)> = match (
            asked.groups.get(b.target.as_str()),
            volume_ids.get(b.target.as_str()),
        ) {
            (Some(g), _) => p.members_at(b.target.as_str(), g),
            (None, Some(v)) => v.clone(),
            (None, None) => {
                p.problem(
                    order,
                    format!("backup policy {name:?} backs up {:?}, which is neither a server group nor a volume of the system", b.target.as_str()),
                    format!("备份策略“{name}”的对象“{}”既不是本系统的服务器也不是数据卷", b.target),
                );
                continue;
            }
        };
        backed_up.insert(b.target.to_string());
        for (i, (t, slot)) in targets.into_iter().enumerate() {
            let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
            p.want(
                item_id("bak", system, name, Some(n)),
                order,
                &slot,
                Item::BackupPolicy {
                    target: t,
                    backup_type: b.backup_type,
                    schedule: utc_schedule(b.window),
                    retention_days: b.retention_days,
                    capacity_gib: b.capacity_gib,
                },
            );
        }
    }
    for (name, g) in &groups {
        let Some(capacity) = NonZeroU32::new(g.server.backup_gib) else {
            continue;
        };
        if backed_up.contains(name.as_str()) {
            continue;
        }
        let auto = format!("auto/{name}");
        for (i, (t, slot)) in p.members_at(name, g).into_iter().enumerate() {
            let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
            p.want(
                item_id("bak", system, &auto, Some(n)),
                &g.order,
                &slot,
                Item::BackupPolicy {
                    target: t,
                    backup_type: BackupType::Incremental,
                    schedule: utc_schedule(BackupWindow::Daily { hour: 2 }),
                    retention_days: NonZeroU32::new(AUTO_BACKUP_RETENTION_DAYS)
                        .unwrap_or(NonZeroU32::MIN),
                    capacity_gib: capacity,
                },
            );
        }
    }

    // Snapshots.
    for (name, (snap, order)) in &asked.snapshots {
        let sources: Vec<(ResourceId, Slot)> = match (
            asked.groups.get(snap.source.as_str()),
            volume_ids.get(snap.source.as_str()),
        ) {
            (Some(g), _) if g.server.form == ServerForm::Vm => {
                p.members_at(snap.source.as_str(), g)
            }
            (_, Some(v)) => v.clone(),
            _ => {
                p.problem(
                    order,
                    format!("snapshot {name:?} is of {:?}, which is neither a VM group nor a volume of the system", snap.source.as_str()),
                    format!("快照“{name}”的来源“{}”既不是本系统的云主机也不是数据卷", snap.source),
                );
                continue;
            }
        };
        for (i, (src, slot)) in sources.into_iter().enumerate() {
            let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
            p.want(
                item_id("snap", system, name, Some(n)),
                order,
                &slot,
                Item::Snapshot { source: src },
            );
        }
    }
    check_restores(&mut p, restoring);
    p.desired
}

/// A restored volume's source must be a backup policy or snapshot this plan
/// has, with a member for each of the volume's members. Otherwise the order
/// hears why, and the volume is planned without the restore (an existing
/// volume keeps its data; a new one would start empty, so say so).
fn check_restores(p: &mut Plan<'_>, restoring: Vec<(ResourceId, ResourceId, String, OrderId)>) {
    for (volume, source, name, order) in restoring {
        let found =
            p.desired.wants.get(&source).is_some_and(|w| {
                matches!(w.item, Item::BackupPolicy { .. } | Item::Snapshot { .. })
            });
        if found {
            continue;
        }
        if let Some(Want {
            item: Item::Volume { restore_from, .. },
            ..
        }) = p.desired.wants.get_mut(&volume)
        {
            *restore_from = None;
        }
        p.problem(
            &order,
            format!("volume {name:?} is restored from {source}, which is not a backup policy or snapshot of the system (or has fewer members than the volume)"),
            format!("数据卷“{name}”的恢复来源 {source} 不是本系统的备份策略或快照（或份数少于数据卷）"),
        );
    }
}

/// With no server and no load balancer, every item that needs one has
/// nothing to attach to.
fn report_orphans(p: &mut Plan<'_>, asked: &Asked) {
    let items = asked
        .volumes
        .iter()
        .map(|(n, (_, o))| (n, o))
        .chain(asked.waf_policies.iter().map(|(n, (_, o))| (n, o)))
        .chain(asked.backup_policies.iter().map(|(n, (_, o))| (n, o)))
        .chain(asked.snapshots.iter().map(|(n, (_, o))| (n, o)))
        .chain(asked.public_ips.iter().map(|(n, (_, o))| (n, o)));
    let found: Vec<(String, OrderId)> = items.map(|(n, o)| (n.clone(), o.clone())).collect();
    for (name, order) in found {
        p.problem(
            &order,
            format!("{name:?} needs servers or a load balancer, and the system has none"),
            format!("“{name}”需要服务器或负载均衡，但本系统没有"),
        );
    }
}

#[cfg(test)]
mod tests;
