//! What a system should have, from its work orders: the server groups (服务器
//! rows, by name) with the quantities the reviewers approved, and the resource
//! ids of their members. Pure functions; the store is read by the caller.
//!
//! Level-based: the answer depends only on the orders' current states, never on
//! what happened before, so it can be recomputed after any crash. Rules, in the
//! order the orders were approved:
//! - an onboarding or go-live order from its approval until the system exits
//!   sets the groups of its lines to the **approved** quantities (000 art. 12:
//!   the approved quantities are what gets provisioned);
//! - an approved change order sets the groups it names (quantity 0 removes
//!   one); an emergency change (002 art. 12) does so from its filing, on the
//!   requested quantities, until reviewed;
//! - an approved exit order, or the onboarding order's exit, empties the system
//!   for billing and quota; under a policy with a data retention the
//!   reconciler's view ([`resources`]) keeps every resource with its servers
//!   powered off (002 art. 13: "所涉及的数据资源和日志应保留 3 个月"), and
//!   empties the system only once the order is `purged`;
//! - a system forced offline (002 art. 14) keeps its resources with its
//!   servers powered off, and loses its backups once they are no longer kept
//!   ("3 个月后不再保留备份数据").
//!
//! Must not place or write anything. Quota is this module's invariant: nothing
//! beyond the approved quantities is ever desired.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use yunshu_domain::Name;
use yunshu_domain::order::{OrderKind, OrderState, WorkOrder};
use yunshu_domain::order_line::{PublicIpRequest, ServerForm, ServerRequest};
use yunshu_domain::order_services::{
    BackupPolicyRequest, LoadBalancerRequest, NetworkRequest, SecurityGroupRequest,
    SnapshotRequest, VolumeRequest, WafPolicyRequest,
};
use yunshu_domain::{OrderId, ResourceId, SystemNumber};

use crate::orders::OrderTrack;

mod graph;

pub use graph::{
    AUTO_BACKUP_RETENTION_DAYS, Desired, Item, Problem, Slot, Want, plan, security_group_id,
    server_id, subnet_id, system_prefixes, vpc_id,
};

/// Every resource `system`'s orders ask for at `now`: the server groups with a
/// temporary expansion while it lasts, and everything wired to them.
/// `main_zone` is the system's main zone if known; `placed` says where servers
/// already placed are (their zone's network is the one they are wired to).
pub fn resources(
    system: &SystemNumber,
    orders: &[(WorkOrder, OrderTrack)],
    expansion: Option<&crate::expansion::Expansion>,
    life: Life,
    now: DateTime<Utc>,
    main_zone: Option<&yunshu_domain::ids::ZoneId>,
    placed: &BTreeMap<ResourceId, yunshu_domain::ids::ZoneId>,
) -> Desired {
    let exits = if life.exit_keeps_data {
        Exits::Retain
    } else {
        Exits::Clear
    };
    let mut asked = collect_inner(orders, None, exits);
    asked.stopped |= life.servers_stopped;
    if life.backups_dropped {
        asked.backup_policies.clear();
        asked.snapshots.clear();
        // Read only when a volume is created: a kept volume must not turn
        // into a problem (and so be deleted) because its source is gone.
        for (v, _) in asked.volumes.values_mut() {
            v.restore_from = None;
        }
    }
    let vms: BTreeMap<String, Group> = asked
        .groups
        .iter()
        .filter(|(_, g)| g.server.form == ServerForm::Vm)
        .map(|(n, g)| (n.clone(), g.clone()))
        .collect();
    for (name, g) in crate::expansion::apply(vms, expansion, now) {
        asked.groups.insert(name, g);
    }
    let mut d = plan(system, &asked, main_zone, placed);
    if life.backups_dropped {
        // The automatic backups of servers with `backup_gib` too.
        d.wants
            .retain(|_, w| !matches!(w.item, Item::BackupPolicy { .. } | Item::Snapshot { .. }));
    }
    d
}

/// What a system's life says about its resources at some instant, beyond
/// its orders: its usage term (002 art. 14, see `crate::usage::offline_effect`)
/// and whether an exit keeps its data (002 art. 13).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Life {
    /// The system is forced offline: its servers are powered off.
    pub servers_stopped: bool,
    /// Its backups are past the policy's `offline_backup_retention`.
    pub backups_dropped: bool,
    /// The policy of the system's exit keeps the data (`data_retention`,
    /// 002 art. 13): the exit powers the servers off and keeps everything
    /// until the purge. Otherwise (000 art. 16 "收回…清除", Beijing) the
    /// exit reclaims everything at once.
    pub exit_keeps_data: bool,
}

/// How [`collect_inner`] reads an exit (an exit order, or the onboarding
/// order's own exit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exits {
    /// Every exit empties the system (quota, problems before approval).
    Clear,
    /// The onboarding order's own exit keeps what it set (billing, which
    /// ends the charge at the exit itself); an exit order empties.
    KeepOnboarding,
    /// An exit keeps everything, powered off, until the order is `purged`
    /// (the data retention, 002 art. 13): the reconciler's view.
    Retain,
}

/// One server group of a system: `quantity` identical servers (VMs or bare
/// metal, `server.form`) named `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub server: ServerRequest,
    pub quantity: u32,
    /// The order whose approval set this group last.
    pub order: OrderId,
    pub provider: Option<yunshu_domain::ProviderId>,
    pub zone: Option<yunshu_domain::ids::ZoneId>,
}

/// When the order's approval took effect (or its emergency filing), if it has.
fn effective_at(order: &WorkOrder, track: &OrderTrack) -> Option<DateTime<Utc>> {
    let approved = order
        .history()
        .iter()
        .rev()
        .find(|h| h.to == OrderState::Approved)
        .map(|h| h.at);
    match (approved, &track.emergency) {
        (Some(a), _) => Some(a),
        (None, Some(e)) if in_review(order.state()) => Some(e.at),
        _ => None,
    }
}

fn in_review(s: OrderState) -> bool {
    matches!(
        s,
        OrderState::Submitted | OrderState::Accepted | OrderState::ExpertReview
    )
}

/// What one order does to the groups.
enum Effect<'a> {
    Set(&'a WorkOrder, bool),
    Clear,
    Nothing,
}

fn effect<'a>(order: &'a WorkOrder, track: &OrderTrack) -> Effect<'a> {
    use OrderState::*;
    match (order.kind(), order.state()) {
        (OrderKind::Onboarding | OrderKind::GoLive, Exited | Purged) => Effect::Clear,
        (
            OrderKind::Onboarding | OrderKind::GoLive,
            Approved | TestEnvReady | Delivered | Live | ExitRequested,
        ) => Effect::Set(order, false),
        (OrderKind::Change, Approved | Delivered) => Effect::Set(order, false),
        (OrderKind::Change, s) if in_review(s) && track.emergency.is_some() => {
            Effect::Set(order, true)
        }
        (OrderKind::Exit, Approved | Exited | Purged) => Effect::Clear,
        _ => Effect::Nothing,
    }
}

/// Everything a system's orders ask for now, before ids and references are
/// resolved: server groups (VM and bare metal) by name, the network, and the
/// other items by name, each with the order whose approval set it last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Asked {
    pub groups: BTreeMap<String, Group>,
    /// The network asked for each zone (`None`: the system's main zone).
    pub networks: BTreeMap<Option<yunshu_domain::ids::ZoneId>, (NetworkRequest, OrderId)>,
    /// The zone each order names (`None`: the system's main zone); an item
    /// lives in its order's zone unless it is wired to something elsewhere.
    pub order_zones: BTreeMap<OrderId, Option<yunshu_domain::ids::ZoneId>>,
    pub security_groups: BTreeMap<String, (SecurityGroupRequest, OrderId)>,
    pub load_balancers: BTreeMap<String, (LoadBalancerRequest, OrderId)>,
    pub waf_policies: BTreeMap<String, (WafPolicyRequest, OrderId)>,
    pub volumes: BTreeMap<String, (VolumeRequest, OrderId)>,
    pub backup_policies: BTreeMap<String, (BackupPolicyRequest, OrderId)>,
    pub snapshots: BTreeMap<String, (SnapshotRequest, OrderId)>,
    /// By the name of what the address maps to (a server group or a load
    /// balancer).
    pub public_ips: BTreeMap<String, (PublicIpRequest, OrderId)>,
    /// Where the orders asked for things, in the order they took effect (the
    /// last one that names a provider or zone wins).
    pub provider: Option<yunshu_domain::ProviderId>,
    pub zone: Option<yunshu_domain::ids::ZoneId>,
    /// The servers are powered off: the system has exited and its data is
    /// kept until the purge (002 art. 13), or it is forced offline.
    pub stopped: bool,
}

/// Sets or removes the named items of one order in `into`.
fn merge<T: Clone>(
    into: &mut BTreeMap<String, (T, OrderId)>,
    items: &[T],
    order: &OrderId,
    name: impl Fn(&T) -> String,
    removed: impl Fn(&T) -> bool,
) {
    for item in items {
        if removed(item) {
            into.remove(&name(item));
        } else {
            into.insert(name(item), (item.clone(), order.clone()));
        }
    }
}

/// What `orders` (all of one system's) ask for now.
pub fn collect(orders: &[(WorkOrder, OrderTrack)]) -> Asked {
    collect_assuming(orders, None)
}

/// The problems `candidate` would have if it were approved at `now` on top
/// of the system's `orders` (which may include it in its current state):
/// names that resolve to nothing, restores from no backup, a subnet it
/// outgrows. Checked before submission and approval so such an order is
/// refused with the reasons instead of approved and half carried out.
pub fn problems_if_approved(
    system: &SystemNumber,
    orders: &[(WorkOrder, OrderTrack)],
    candidate: &OrderId,
    now: DateTime<Utc>,
) -> Vec<Problem> {
    let asked = collect_assuming(orders, Some((candidate, now)));
    plan(system, &asked, None, &BTreeMap::new())
        .problems
        .into_iter()
        .filter(|p| &p.order == candidate)
        .collect()
}

fn collect_assuming(
    orders: &[(WorkOrder, OrderTrack)],
    approved: Option<(&OrderId, DateTime<Utc>)>,
) -> Asked {
    collect_inner(orders, approved, Exits::Clear)
}

/// [`collect_assuming`], reading exits as `exits` says.
fn collect_inner(
    orders: &[(WorkOrder, OrderTrack)],
    approved: Option<(&OrderId, DateTime<Utc>)>,
    exits: Exits,
) -> Asked {
    let assumed = |o: &WorkOrder| approved.filter(|(id, _)| *id == o.id()).map(|(_, at)| at);
    let mut effective: Vec<(DateTime<Utc>, &WorkOrder, &OrderTrack)> = orders
        .iter()
        .filter_map(|(o, t)| {
            assumed(o)
                .or_else(|| effective_at(o, t))
                .map(|at| (at, o, t))
        })
        .collect();
    // Ties (same instant) resolve by id so the answer never depends on read order.
    effective.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id().cmp(b.1.id())));
    let mut asked = Asked::default();
    for (_, order, track) in effective {
        // An exit read as retained powers the servers off (after what the
        // order itself set: the onboarding order's own exit keeps its groups).
        let mut retained = false;
        let effect = match assumed(order) {
            Some(_) if order.kind() == OrderKind::Exit => Effect::Clear,
            Some(_) => Effect::Set(order, false),
            None => match (effect(order, track), exits) {
                (Effect::Clear, Exits::KeepOnboarding) if order.kind() != OrderKind::Exit => {
                    Effect::Set(order, false)
                }
                (Effect::Clear, Exits::Retain) if order.state() != OrderState::Purged => {
                    retained = true;
                    if order.kind() == OrderKind::Exit {
                        Effect::Nothing
                    } else {
                        Effect::Set(order, false)
                    }
                }
                (e, _) => e,
            },
        };
        match effect {
            Effect::Clear => asked = Asked::default(),
            Effect::Nothing => {}
            Effect::Set(order, requested) => {
                asked.stopped = false;
                let id = order.id();
                let r = order.request();
                for line in &r.lines {
                    let quantity = if requested {
                        line.requested_qty()
                    } else {
                        line.approved_qty().unwrap_or(line.requested_qty())
                    };
                    let name = line.server().server_name.to_string();
                    if quantity == 0 {
                        asked.groups.remove(&name);
                        continue;
                    }
                    asked.groups.insert(
                        name,
                        Group {
                            server: line.server().clone(),
                            quantity,
                            order: id.clone(),
                            provider: r.provider.clone(),
                            zone: r.zone.clone(),
                        },
                    );
                }
                asked.order_zones.insert(id.clone(), r.zone.clone());
                if let Some(n) = &r.network {
                    asked
                        .networks
                        .insert(r.zone.clone(), (n.clone(), id.clone()));
                }
                let by_name = |n: &Name| n.to_string();
                merge(
                    &mut asked.security_groups,
                    &r.security_groups,
                    id,
                    |g| by_name(&g.name),
                    |g| g.remove,
                );
                merge(
                    &mut asked.load_balancers,
                    &r.load_balancers,
                    id,
                    |l| by_name(&l.name),
                    |l| l.remove,
                );
                merge(
                    &mut asked.waf_policies,
                    &r.waf_policies,
                    id,
                    |w| by_name(&w.name),
                    |w| w.remove,
                );
                merge(
                    &mut asked.volumes,
                    &r.volumes,
                    id,
                    |v| by_name(&v.name),
                    |v| v.remove,
                );
                merge(
                    &mut asked.backup_policies,
                    &r.backup_policies,
                    id,
                    |b| by_name(&b.name),
                    |b| b.remove,
                );
                merge(
                    &mut asked.snapshots,
                    &r.snapshots,
                    id,
                    |s| by_name(&s.name),
                    |s| s.remove,
                );
                merge(
                    &mut asked.public_ips,
                    &r.public_ips,
                    id,
                    |p| by_name(&p.server_name),
                    |p| p.remove,
                );
                if r.provider.is_some() {
                    asked.provider = r.provider.clone();
                }
                if r.zone.is_some() {
                    asked.zone = r.zone.clone();
                }
            }
        }
        if retained {
            asked.stopped = true;
        }
    }
    asked
}

/// The VM groups `orders` (all of one system's) ask for, by server name
/// (billing, temporary expansion and the vCPU/memory quota count VMs).
pub fn groups(orders: &[(WorkOrder, OrderTrack)]) -> BTreeMap<String, Group> {
    collect(orders)
        .groups
        .into_iter()
        .filter(|(_, g)| g.server.form == ServerForm::Vm)
        .collect()
}

/// The VM groups `orders` held before the onboarding order's own exit
/// (live → exit requested → exited) emptied them: as [`groups`], for billing,
/// which ends the charge at that exit — so months before it keep their charge
/// when read afterwards (000 art. 16, 002 art. 13). An exit order still empties.
pub fn groups_charged(orders: &[(WorkOrder, OrderTrack)]) -> BTreeMap<String, Group> {
    collect_inner(orders, None, Exits::KeepOnboarding)
        .groups
        .into_iter()
        .filter(|(_, g)| g.server.form == ServerForm::Vm)
        .collect()
}

/// The id of member `n` (1-based) of group `name` of `system`:
/// `vm-<system>-<8 hex of the name's SHA-256>-<n>`. Stable, so recomputing
/// after a crash names the same VMs; short enough for any name (names may be
/// Chinese, ids are ASCII slugs).
pub fn member_id(system: &SystemNumber, name: &str, n: u32) -> Option<ResourceId> {
    server_id(system, ServerForm::Vm, name, n)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;
    use yunshu_domain::Actor;

    use super::*;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, 0, 0)
            .single()
            .expect("time")
    }

    fn order(id: &str, kind: OrderKind, lines: &[(&str, u32, Option<u32>)]) -> WorkOrder {
        let mut o = WorkOrder::new(
            id.parse().expect("id"),
            kind,
            "110105001".parse().expect("system"),
            "li".parse().expect("user"),
            at(1),
        );
        let request = o.request_edit().expect("draft");
        request.lines = lines
            .iter()
            .map(|(name, qty, _)| {
                serde_json::from_value(json!({
                    "server": {
                        "server_name": name, "network_area": "gov_extranet", "form": "vm",
                        "architecture": "arm64", "vcpu": 4, "memory_gib": 8, "system_disk_gib": 100,
                        "data_disk_gib": 0, "os": "麒麟 V10", "purpose": "应用", "backup_gib": 0
                    },
                    "requested_qty": qty
                }))
                .expect("line")
            })
            .collect();
        o
    }

    fn approve(o: &mut WorkOrder, h: u32, approved: &[Option<u32>]) {
        let actor: Actor = "user:sun".parse().expect("actor");
        o.transition(OrderState::Submitted, actor.clone(), at(h), None)
            .expect("submit");
        o.transition(OrderState::Accepted, actor.clone(), at(h), None)
            .expect("accept");
        for (i, q) in approved.iter().enumerate() {
            if let Some(q) = q {
                o.line_approve(i, *q).expect("lower");
            }
        }
        o.transition(OrderState::Approved, actor, at(h), None)
            .expect("approve");
    }

    fn track(o: &WorkOrder) -> OrderTrack {
        OrderTrack {
            order: o.id().clone(),
            policy: crate::deadline::default_policy(),
            current: None,
            past: Vec::new(),
            delivered_at: None,
            emergency: None,
        }
    }

    fn quantities(g: &BTreeMap<String, Group>) -> Vec<(String, u32)> {
        g.iter().map(|(k, v)| (k.clone(), v.quantity)).collect()
    }

    #[test]
    fn approved_quantities_then_changes_then_exit() {
        let mut onboard = order(
            "WO-1",
            OrderKind::Onboarding,
            &[("web", 3, None), ("db", 2, None)],
        );
        let draft = order("WO-0", OrderKind::Onboarding, &[("x", 9, None)]);
        assert!(
            groups(&[(draft.clone(), track(&draft))]).is_empty(),
            "drafts ask nothing"
        );
        // The reviewer lowered web to 2: only 2 are desired.
        approve(&mut onboard, 2, &[Some(2), None]);
        let all = vec![
            (onboard.clone(), track(&onboard)),
            (draft.clone(), track(&draft)),
        ];
        assert_eq!(
            quantities(&groups(&all)),
            [("db".into(), 2), ("web".into(), 2)]
        );

        let mut change = order(
            "WO-2",
            OrderKind::Change,
            &[("web", 5, None), ("db", 1, Some(0))],
        );
        let mut all2 = all.clone();
        all2.push((change.clone(), track(&change)));
        assert_eq!(
            quantities(&groups(&all2)),
            [("db".into(), 2), ("web".into(), 2)],
            "unapproved change does nothing"
        );
        approve(&mut change, 3, &[None, Some(0)]);
        all2.pop();
        all2.push((change.clone(), track(&change)));
        assert_eq!(
            quantities(&groups(&all2)),
            [("web".into(), 5)],
            "db removed, web scaled"
        );

        let mut exit = order("WO-3", OrderKind::Exit, &[]);
        approve(&mut exit, 4, &[]);
        all2.push((exit.clone(), track(&exit)));
        assert!(groups(&all2).is_empty());
    }

    #[test]
    fn an_emergency_change_applies_its_requested_quantities_while_in_review() {
        let mut onboard = order("WO-1", OrderKind::Onboarding, &[("web", 2, None)]);
        approve(&mut onboard, 2, &[]);
        let mut change = order("WO-2", OrderKind::Change, &[("web", 6, None)]);
        change
            .transition(
                OrderState::Submitted,
                "user:wang".parse().expect("a"),
                at(3),
                None,
            )
            .expect("submit");
        let mut t = track(&change);
        let all = vec![
            (onboard.clone(), track(&onboard)),
            (change.clone(), t.clone()),
        ];
        assert_eq!(quantities(&groups(&all)), [("web".into(), 2)]);
        t.emergency = Some(crate::orders::EmergencyFiling {
            by: "user:wang".parse().expect("actor"),
            at: at(3),
            reason: yunshu_domain::Text::new("应急").expect("text"),
        });
        let all = vec![(onboard, track(&change)), (change, t)];
        assert_eq!(quantities(&groups(&all)), [("web".into(), 6)]);
    }

    #[test]
    fn member_ids_are_stable_ascii_slugs() {
        let sys: SystemNumber = "110105001".parse().expect("system");
        let a = member_id(&sys, "应用服务器", 1).expect("id");
        assert_eq!(a, member_id(&sys, "应用服务器", 1).expect("id"));
        assert!(a.as_str().starts_with("vm-110105001-"), "{a}");
        assert_ne!(a, member_id(&sys, "应用服务器", 2).expect("id"));
        assert_ne!(a, member_id(&sys, "数据库服务器", 1).expect("id"));
    }
}
