//! The three-tier system of issue 14 as orders, resolved to resources: ids,
//! kinds, references and owning orders; a change that adds a web server; an
//! exit; names that resolve to nothing.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use yunshu_domain::Actor;
use yunshu_domain::order::{OrderKind, OrderRequest, OrderState, WorkOrder};
use yunshu_domain::resource::{BackupSchedule, LbAlgorithm, RuleRemoteSpec};

use std::collections::BTreeMap;

use super::*;
use crate::desired::{Life, collect, resources};
use crate::orders::OrderTrack;
use yunshu_domain::ids::ZoneId;

fn at(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, 0, 0)
        .single()
        .expect("time")
}

fn system() -> SystemNumber {
    "110105001".parse().expect("system")
}

fn line(name: &str, qty: u32, form: &str, area: &str, backup: u32) -> Value {
    json!({
        "server": {
            "server_name": name, "network_area": area, "form": form,
            "architecture": "arm64", "vcpu": 4, "memory_gib": 8, "system_disk_gib": 100,
            "data_disk_gib": 0, "os": "麒麟 V10", "purpose": "应用", "backup_gib": backup
        },
        "requested_qty": qty
    })
}

fn three_tier() -> Value {
    json!({
        "lines": [line("web", 2, "vm", "gov_extranet", 0), line("db", 1, "vm", "gov_extranet", 0),
                  line("bm", 1, "bare_metal", "gov_extranet", 0)],
        "network": {"vpc_cidr": "10.20.0.0/16", "subnets": [
            {"network_area": "gov_extranet", "cidr": "10.20.1.0/24"}]},
        "security_groups": [
            {"name": "web", "servers": ["web"], "rules": [
                {"protocol": "tcp", "ports": {"from": 80, "to": 80}, "remote": {"cidr": "0.0.0.0/0"}}]},
            {"name": "db", "servers": ["db"], "rules": [
                {"protocol": "tcp", "ports": {"from": 3306, "to": 3306}, "remote": {"group": "web"}}]}],
        "load_balancers": [{"name": "web-lb", "network_area": "internet", "members": "web",
            "listeners": [{"protocol": "http", "port": 80, "backend_port": 8080,
                "health_check": {"protocol": "http", "path": "/healthz"}}]}],
        "waf_policies": [{"name": "web-waf", "load_balancer": "web-lb", "mode": "block",
            "rule_sets": ["sqli", "xss"]}],
        "public_ips": [{"purpose": "门户", "server_name": "web-lb", "ports": [80], "bandwidth_mbps": 20}],
        "volumes": [{"name": "db-data", "server_name": "db", "size_gib": 200, "tier": "high_performance"}],
        "backup_policies": [{"name": "db-nightly", "target": "db", "backup_type": "incremental",
            "window": {"every": "daily", "hour": 2}, "retention_days": 7, "capacity_gib": 200}]
    })
}

fn approved(id: &str, kind: OrderKind, request: Value, h: u32) -> (WorkOrder, OrderTrack) {
    let mut o = WorkOrder::new(
        id.parse().expect("id"),
        kind,
        system(),
        "li".parse().expect("user"),
        at(1),
    );
    *o.request_edit().expect("draft") =
        serde_json::from_value::<OrderRequest>(request).expect("request");
    let actor: Actor = "user:sun".parse().expect("actor");
    for to in [
        OrderState::Submitted,
        OrderState::Accepted,
        OrderState::Approved,
    ] {
        o.transition(to, actor.clone(), at(h), None).expect("move");
    }
    let track = OrderTrack {
        order: o.id().clone(),
        policy: crate::deadline::default_policy(),
        current: None,
        past: Vec::new(),
        delivered_at: None,
        emergency: None,
    };
    (o, track)
}

/// (id, kind) of every want, by id.
fn kinds(d: &Desired) -> Vec<(String, &'static str)> {
    d.wants
        .iter()
        .map(|(id, w)| (id.to_string(), w.item.kind().as_str()))
        .collect()
}

fn ids_of(d: &Desired, kind: &str) -> Vec<String> {
    kinds(d)
        .into_iter()
        .filter(|(_, k)| *k == kind)
        .map(|(id, _)| id)
        .collect()
}

#[test]
fn a_three_tier_order_becomes_every_kind_wired_by_reference() {
    let orders = vec![approved("WO-1", OrderKind::Onboarding, three_tier(), 2)];
    let d = resources(
        &system(),
        &orders,
        None,
        Life::default(),
        at(3),
        None,
        &BTreeMap::new(),
    );
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    let count = |k: &str| ids_of(&d, k).len();
    assert_eq!(count("vpc"), 1);
    assert_eq!(
        count("subnet"),
        2,
        "gov_extranet (explicit) and internet (the LB's)"
    );
    assert_eq!(count("security_group"), 3, "default, web, db");
    assert_eq!(count("vm"), 3);
    assert_eq!(count("bare_metal"), 1);
    assert_eq!(count("volume"), 1);
    assert_eq!(count("load_balancer"), 1);
    assert_eq!(count("eip"), 1);
    assert_eq!(count("waf_policy"), 1);
    assert_eq!(count("backup_policy"), 1);
    assert!(d.wants.values().all(|w| w.order.as_str() == "WO-1"));

    let sys = system();
    let vpc = vpc_id(&sys, &Slot::Main).expect("id");
    let gov = subnet_id(&sys, &Slot::Main, NetworkAreaKind::GovExtranet).expect("id");
    let net = subnet_id(&sys, &Slot::Main, NetworkAreaKind::Internet).expect("id");
    match &d.wants[&net].item {
        Item::Subnet { cidr, vpc: v, .. } => {
            assert_eq!(v, &vpc);
            // The first /20 overlaps the explicit 10.20.1.0/24: the next
            // free one of the VPC.
            assert_eq!(cidr.to_string(), "10.20.16.0/20");
        }
        other => panic!("{other:?}"),
    }
    let web1 = server_id(&sys, ServerForm::Vm, "web", 1).expect("id");
    let web2 = server_id(&sys, ServerForm::Vm, "web", 2).expect("id");
    let db1 = server_id(&sys, ServerForm::Vm, "db", 1).expect("id");
    let sg_web = security_group_id(&sys, "web").expect("id");
    let sg_db = security_group_id(&sys, "db").expect("id");
    let sg_default = security_group_id(&sys, "default").expect("id");
    let needs = |id: &ResourceId| -> Vec<ResourceId> {
        d.wants[id].item.needs().into_iter().cloned().collect()
    };
    assert_eq!(
        needs(&web1),
        vec![gov.clone(), sg_default.clone(), sg_web.clone()]
    );
    assert_eq!(needs(&db1), vec![gov.clone(), sg_default, sg_db.clone()]);
    assert_eq!(
        needs(&sg_db),
        vec![sg_web],
        "the db group lets the web group in"
    );
    let lb = &ids_of(&d, "load_balancer")[0];
    let lb: ResourceId = lb.parse().expect("id");
    assert_eq!(needs(&lb), vec![net, web1, web2]);
    match &d.wants[&lb].item {
        Item::LoadBalancer { listeners, .. } => {
            assert_eq!(listeners[0].algorithm, LbAlgorithm::WeightedRoundRobin);
            assert!(listeners[0].health_check.is_some());
        }
        other => panic!("{other:?}"),
    }
    let eip: ResourceId = ids_of(&d, "eip")[0].parse().expect("id");
    assert_eq!(needs(&eip), vec![lb.clone()]);
    let waf: ResourceId = ids_of(&d, "waf_policy")[0].parse().expect("id");
    assert_eq!(needs(&waf), vec![lb]);
    let vol: ResourceId = ids_of(&d, "volume")[0].parse().expect("id");
    assert_eq!(needs(&vol), vec![db1.clone()]);
    let bak: ResourceId = ids_of(&d, "backup_policy")[0].parse().expect("id");
    assert_eq!(needs(&bak), vec![db1]);
    match &d.wants[&bak].item {
        // 02:00 Beijing time is 18:00 UTC.
        Item::BackupPolicy { schedule, .. } => {
            assert_eq!(*schedule, BackupSchedule::Daily { hour: 18 })
        }
        other => panic!("{other:?}"),
    }
    // Every reference points at a wanted resource: the graph is closed.
    for (id, w) in &d.wants {
        for n in w.item.needs() {
            assert!(
                d.wants.contains_key(n),
                "{id} needs {n}, which is not wanted"
            );
        }
    }
    // Ids carry the system and the kind; every kind's prefix is listed.
    let prefixes = system_prefixes(&sys);
    for id in d.wants.keys() {
        assert!(
            prefixes.iter().any(|p| id.as_str().starts_with(p.as_str())),
            "{id}"
        );
    }
    // Same orders, same answer.
    assert_eq!(
        d,
        resources(
            &system(),
            &orders,
            None,
            Life::default(),
            at(3),
            None,
            &BTreeMap::new()
        )
    );
}

#[test]
fn a_change_adds_a_web_server_to_the_load_balancer_and_an_exit_keeps_then_purges_everything() {
    let onboard = approved("WO-1", OrderKind::Onboarding, three_tier(), 2);
    let change = approved(
        "WO-2",
        OrderKind::Change,
        json!({"lines": [line("web", 3, "vm", "gov_extranet", 0)]}),
        3,
    );
    let d = resources(
        &system(),
        &[onboard.clone(), change.clone()],
        None,
        Life::default(),
        at(4),
        None,
        &BTreeMap::new(),
    );
    let lb: ResourceId = ids_of(&d, "load_balancer")[0].parse().expect("id");
    match &d.wants[&lb].item {
        Item::LoadBalancer { members, .. } => assert_eq!(members.len(), 3),
        other => panic!("{other:?}"),
    }
    let web3 = server_id(&system(), ServerForm::Vm, "web", 3).expect("id");
    assert_eq!(d.wants[&web3].order.as_str(), "WO-2");
    // The LB is still the onboarding order's.
    assert_eq!(d.wants[&lb].order.as_str(), "WO-1");

    let removal = approved(
        "WO-3",
        OrderKind::Change,
        json!({"waf_policies": [{"name": "web-waf", "load_balancer": "web-lb", "mode": "block",
            "rule_sets": ["sqli"], "remove": true}]}),
        5,
    );
    let d = resources(
        &system(),
        &[onboard.clone(), change.clone(), removal.clone()],
        None,
        Life::default(),
        at(6),
        None,
        &BTreeMap::new(),
    );
    assert!(ids_of(&d, "waf_policy").is_empty(), "removed by name");

    // 002 art. 13: an approved exit terminates the service but keeps the
    // data: every resource stays, its servers powered off, until the purge.
    let mut exit = approved("WO-4", OrderKind::Exit, json!({}), 7);
    let before = resources(
        &system(),
        &[onboard.clone(), change.clone(), removal.clone()],
        None,
        Life {
            exit_keeps_data: true,
            ..Life::default()
        },
        at(6),
        None,
        &BTreeMap::new(),
    );
    let d = resources(
        &system(),
        &[
            onboard.clone(),
            change.clone(),
            removal.clone(),
            exit.clone(),
        ],
        None,
        Life {
            exit_keeps_data: true,
            ..Life::default()
        },
        at(8),
        None,
        &BTreeMap::new(),
    );
    assert_eq!(
        kinds(&d),
        kinds(&before),
        "nothing removed before the purge"
    );
    let servers: Vec<bool> = d
        .wants
        .values()
        .filter_map(|w| match &w.item {
            Item::Server { stopped, .. } => Some(*stopped),
            _ => None,
        })
        .collect();
    assert_eq!(servers, vec![true; 5], "every server powered off");
    // Quota and billing read the exit as emptying the system.
    assert!(
        collect(&[
            onboard.clone(),
            change.clone(),
            removal.clone(),
            exit.clone()
        ])
        .groups
        .is_empty()
    );

    // A policy that keeps nothing (000 art. 16 "收回…清除"): reclaimed at once.
    let clears = resources(
        &system(),
        &[
            onboard.clone(),
            change.clone(),
            removal.clone(),
            exit.clone(),
        ],
        None,
        Life::default(),
        at(8),
        None,
        &BTreeMap::new(),
    );
    assert!(clears.wants.is_empty(), "{:?}", kinds(&clears));

    let actor: Actor = "user:zhou".parse().expect("actor");
    for to in [OrderState::Exited, OrderState::Purged] {
        exit.0
            .transition(to, actor.clone(), at(9), None)
            .expect("move");
    }
    let d = resources(
        &system(),
        &[onboard, change, removal, exit],
        None,
        Life {
            exit_keeps_data: true,
            ..Life::default()
        },
        at(10),
        None,
        &BTreeMap::new(),
    );
    assert!(d.wants.is_empty(), "purged: {:?}", kinds(&d));
}

/// 002 art. 14: a system forced offline keeps everything with its servers
/// powered off; once its backups are no longer kept they go, and a volume
/// restored from one stays.
#[test]
fn seed_002_art_14_offline_powers_servers_off_and_later_drops_backups_only() {
    let mut request = three_tier();
    // An automatic backup too (the line's `backup_gib`).
    request["lines"][1]["server"]["backup_gib"] = json!(100);
    let orders = vec![approved("WO-1", OrderKind::Onboarding, request, 2)];
    let running = resources(
        &system(),
        &orders,
        None,
        Life::default(),
        at(3),
        None,
        &BTreeMap::new(),
    );
    let offline = Life {
        servers_stopped: true,
        backups_dropped: false,
        ..Life::default()
    };
    let d = resources(
        &system(),
        &orders,
        None,
        offline,
        at(3),
        None,
        &BTreeMap::new(),
    );
    assert_eq!(kinds(&d), kinds(&running));
    assert!(d.wants.values().all(|w| match &w.item {
        Item::Server { stopped, .. } => *stopped,
        _ => true,
    }));
    assert!(
        !ids_of(&running, "backup_policy").is_empty(),
        "{:?}",
        kinds(&running)
    );
    let gone = Life {
        servers_stopped: true,
        backups_dropped: true,
        ..Life::default()
    };
    let d = resources(
        &system(),
        &orders,
        None,
        gone,
        at(3),
        None,
        &BTreeMap::new(),
    );
    assert!(ids_of(&d, "backup_policy").is_empty());
    assert!(ids_of(&d, "snapshot").is_empty());
    assert_eq!(ids_of(&d, "volume"), ids_of(&running, "volume"));
    assert_eq!(ids_of(&d, "vm"), ids_of(&running, "vm"));
}

#[test]
fn servers_alone_get_the_default_network_and_backup_space_a_backup() {
    let orders = vec![approved(
        "WO-1",
        OrderKind::Onboarding,
        json!({"lines": [line("app", 2, "vm", "internet", 100)]}),
        2,
    )];
    let d = resources(
        &system(),
        &orders,
        None,
        Life::default(),
        at(3),
        None,
        &BTreeMap::new(),
    );
    assert!(d.problems.is_empty());
    let sys = system();
    match &d.wants[&vpc_id(&sys, &Slot::Main).expect("id")].item {
        Item::Vpc { cidr } => assert_eq!(cidr.to_string(), NetworkRequest::DEFAULT_VPC),
        other => panic!("{other:?}"),
    }
    assert_eq!(ids_of(&d, "subnet").len(), 1);
    match &d.wants[&security_group_id(&sys, "default").expect("id")].item {
        Item::SecurityGroup { rules } => {
            assert!(rules.iter().any(|r| r.direction == Direction::Ingress
                && r.remote == RuleRemoteSpec::Cidr(Cidr::parse("10.0.0.0/16").expect("cidr"))));
        }
        other => panic!("{other:?}"),
    }
    let backups = ids_of(&d, "backup_policy");
    assert_eq!(backups.len(), 2, "one per server");
}

#[test]
fn a_default_subnet_holds_hundreds_and_an_outgrown_one_is_the_growing_orders_problem() {
    // 500 servers in one area: the default /20 holds them (a /24 would not:
    // the crash test's systems found that out).
    let orders = vec![approved(
        "WO-1",
        OrderKind::Onboarding,
        json!({"lines": [line("app", 500, "vm", "gov_extranet", 0)]}),
        2,
    )];
    let d = resources(
        &system(),
        &orders,
        None,
        Life::default(),
        at(3),
        None,
        &BTreeMap::new(),
    );
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    let gov = subnet_id(&system(), &Slot::Main, NetworkAreaKind::GovExtranet).expect("id");
    match &d.wants[&gov].item {
        Item::Subnet { cidr, .. } => {
            assert_eq!(cidr.to_string(), "10.0.0.0/20");
            assert_eq!(cidr.host_capacity(), 4093);
        }
        other => panic!("{other:?}"),
    }

    // An explicit /24 holds 253; a change that asks for 300 is refused with
    // the figures, on the change, not on the onboarding order.
    let onboard = approved(
        "WO-1",
        OrderKind::Onboarding,
        json!({"lines": [line("app", 200, "vm", "gov_extranet", 0)],
               "network": {"vpc_cidr": "10.20.0.0/16", "subnets": [
                   {"network_area": "gov_extranet", "cidr": "10.20.1.0/24"}]}}),
        2,
    );
    let d = resources(
        &system(),
        std::slice::from_ref(&onboard),
        None,
        Life::default(),
        at(3),
        None,
        &BTreeMap::new(),
    );
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    let grow = approved(
        "WO-2",
        OrderKind::Change,
        json!({"lines": [line("app", 300, "vm", "gov_extranet", 0)]}),
        4,
    );
    let d = resources(
        &system(),
        &[onboard, grow],
        None,
        Life::default(),
        at(5),
        None,
        &BTreeMap::new(),
    );
    assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
    assert_eq!(d.problems[0].order.as_str(), "WO-2");
    assert!(
        d.problems[0].reason.contains("room for 253"),
        "{}",
        d.problems[0].reason
    );
    assert!(
        d.problems[0].reason_zh.contains("300"),
        "{}",
        d.problems[0].reason_zh
    );
}

#[test]
fn names_that_resolve_to_nothing_are_problems_of_the_order_that_used_them() {
    let mut bad = three_tier();
    bad["load_balancers"][0]["members"] = json!("nope");
    bad["volumes"][0]["server_name"] = json!("ghost");
    let orders = vec![approved("WO-1", OrderKind::Onboarding, bad, 2)];
    let d = resources(
        &system(),
        &orders,
        None,
        Life::default(),
        at(3),
        None,
        &BTreeMap::new(),
    );
    assert!(ids_of(&d, "load_balancer").is_empty());
    assert!(ids_of(&d, "volume").is_empty());
    // The WAF and the public IP on the missing LB go too.
    assert!(ids_of(&d, "waf_policy").is_empty());
    assert!(ids_of(&d, "eip").is_empty());
    assert_eq!(d.problems.len(), 4, "{:?}", d.problems);
    assert!(d.problems.iter().all(|p| p.order.as_str() == "WO-1"));
    assert!(d.problems.iter().any(|p| p.reason_zh.contains("nope")));
    // The rest still stands.
    assert_eq!(ids_of(&d, "vm").len(), 3);
}

#[test]
fn weekly_windows_before_eight_move_to_the_previous_utc_day() {
    let orders = vec![approved(
        "WO-1",
        OrderKind::Onboarding,
        json!({"lines": [line("db", 1, "vm", "gov_extranet", 0)],
            "backup_policies": [{"name": "weekly", "target": "db", "backup_type": "full",
                "window": {"every": "weekly", "weekday": 1, "hour": 3},
                "retention_days": 28, "capacity_gib": 100}]}),
        2,
    )];
    let d = resources(
        &system(),
        &orders,
        None,
        Life::default(),
        at(3),
        None,
        &BTreeMap::new(),
    );
    let bak: ResourceId = ids_of(&d, "backup_policy")[0].parse().expect("id");
    match &d.wants[&bak].item {
        Item::BackupPolicy { schedule, .. } => {
            assert_eq!(
                *schedule,
                BackupSchedule::Weekly {
                    weekday: 7,
                    hour: 19
                }
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(collect(&orders).groups.len(), 1);
}

#[test]
fn an_order_naming_another_zone_gets_its_own_network_there() {
    let onboard = approved(
        "WO-1",
        OrderKind::Onboarding,
        json!({"lines": [line("app", 1, "vm", "gov_extranet", 0)]}),
        2,
    );
    let backup_site = approved(
        "WO-2",
        OrderKind::Change,
        json!({"zone": "miyun", "lines": [line("dr", 1, "vm", "gov_extranet", 0)],
            "volumes": [{"name": "dr-data", "server_name": "dr", "size_gib": 50, "tier": "standard"}]}),
        3,
    );
    let main: ZoneId = "fsc".parse().expect("zone");
    let d = resources(
        &system(),
        &[onboard, backup_site],
        None,
        Life::default(),
        at(4),
        Some(&main),
        &BTreeMap::new(),
    );
    let sys = system();
    let miyun = Slot::Zone("miyun".parse().expect("zone"));
    assert_eq!(ids_of(&d, "vpc").len(), 2, "one VPC per zone");
    let dr = server_id(&sys, ServerForm::Vm, "dr", 1).expect("id");
    assert_eq!(d.wants[&dr].slot, miyun);
    match &d.wants[&dr].item {
        Item::Server { subnet, .. } => assert_eq!(
            Some(subnet.clone()),
            subnet_id(&sys, &miyun, NetworkAreaKind::GovExtranet)
        ),
        other => panic!("{other:?}"),
    }
    let vol: ResourceId = ids_of(&d, "volume")[0].parse().expect("id");
    assert_eq!(d.wants[&vol].slot, miyun, "a volume lives with its server");
    // Naming the main zone is the main slot: no second network.
    let same = approved(
        "WO-3",
        OrderKind::Onboarding,
        json!({"zone": "fsc", "lines": [line("app", 1, "vm", "gov_extranet", 0)]}),
        2,
    );
    let d = resources(
        &system(),
        &[same],
        None,
        Life::default(),
        at(4),
        Some(&main),
        &BTreeMap::new(),
    );
    assert_eq!(
        ids_of(&d, "vpc"),
        [vpc_id(&sys, &Slot::Main).expect("id").to_string()]
    );
}

#[test]
fn a_server_that_spilled_to_another_zone_is_wired_to_that_zones_network() {
    let orders = vec![approved(
        "WO-1",
        OrderKind::Onboarding,
        json!({"lines": [line("web", 2, "vm", "gov_extranet", 0)],
            "volumes": [{"name": "web-data", "server_name": "web", "size_gib": 20, "tier": "standard"}]}),
        2,
    )];
    let sys = system();
    let main: ZoneId = "fsc".parse().expect("zone");
    let web2 = server_id(&sys, ServerForm::Vm, "web", 2).expect("id");
    // Member 2 found room only in zone "tz".
    let placed = BTreeMap::from([
        (
            server_id(&sys, ServerForm::Vm, "web", 1).expect("id"),
            main.clone(),
        ),
        (web2.clone(), "tz".parse().expect("zone")),
    ]);
    let d = resources(
        &sys,
        &orders,
        None,
        Life::default(),
        at(3),
        Some(&main),
        &placed,
    );
    let tz = Slot::Zone("tz".parse().expect("zone"));
    assert_eq!(ids_of(&d, "vpc").len(), 2, "main and tz");
    match &d.wants[&web2].item {
        Item::Server { subnet, .. } => assert_eq!(
            Some(subnet.clone()),
            subnet_id(&sys, &tz, NetworkAreaKind::GovExtranet)
        ),
        other => panic!("{other:?}"),
    }
    // Its volume is in its zone too.
    let vol2 = d
        .wants
        .iter()
        .find(|(_, w)| matches!(&w.item, Item::Volume { attach_to, .. } if *attach_to == web2))
        .map(|(id, _)| id.clone())
        .expect("volume of web-2");
    assert_eq!(d.wants[&vol2].slot, tz);
}

/// A change restores the database's volume from its backup policy into a new
/// volume: member for member, created after the policy (it needs it), and a
/// source that is no backup policy or snapshot is the change's problem.
#[test]
fn a_restored_volume_needs_its_backup_policy_and_an_unknown_source_is_a_problem() {
    let onboard = approved("WO-1", OrderKind::Onboarding, three_tier(), 2);
    let restore = approved(
        "WO-2",
        OrderKind::Change,
        json!({"volumes": [{"name": "db-restored", "server_name": "db", "size_gib": 200,
            "tier": "standard", "restore_from": "db-nightly"}]}),
        3,
    );
    let d = resources(
        &system(),
        &[onboard.clone(), restore],
        None,
        Life::default(),
        at(4),
        None,
        &BTreeMap::new(),
    );
    let policy: ResourceId = ids_of(&d, "backup_policy")[0].parse().expect("id");
    let restored: Vec<&Want> = d
        .wants
        .values()
        .filter(|w| {
            matches!(
                &w.item,
                Item::Volume {
                    restore_from: Some(_),
                    ..
                }
            )
        })
        .collect();
    assert_eq!(restored.len(), 1, "{:?}", kinds(&d));
    assert_eq!(restored[0].order.as_str(), "WO-2");
    assert!(
        restored[0].item.needs().contains(&&policy),
        "{:?}",
        restored[0].item
    );
    assert!(d.problems.is_empty(), "{:?}", d.problems);

    let ghost = approved(
        "WO-3",
        OrderKind::Change,
        json!({"volumes": [{"name": "db-restored", "server_name": "db", "size_gib": 200,
            "tier": "standard", "restore_from": "no-such-backup"}]}),
        5,
    );
    let d = resources(
        &system(),
        &[onboard, ghost],
        None,
        Life::default(),
        at(6),
        None,
        &BTreeMap::new(),
    );
    assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
    assert!(
        d.problems[0].reason_zh.contains("恢复来源"),
        "{:?}",
        d.problems
    );
    assert_eq!(d.problems[0].order.as_str(), "WO-3");
    // The volume is still planned, empty rather than waiting on nothing.
    assert!(d.wants.values().all(|w| !matches!(
        &w.item,
        Item::Volume {
            restore_from: Some(_),
            ..
        }
    )));
}

/// Security issue item 1: an order stored before the ceilings with a
/// quantity of 4,294,967,295 is planned at the ceiling (bounded work, no
/// out-of-memory leader) and its order hears why.
#[test]
fn unbounded_quantities_a_stored_huge_group_is_planned_at_the_ceiling() {
    let mut huge = line("web", 1, "vm", "gov_extranet", 0);
    huge["requested_qty"] = json!(u32::MAX);
    let orders = vec![approved(
        "WO-1",
        OrderKind::Onboarding,
        json!({"lines": [huge]}),
        2,
    )];
    let d = resources(
        &system(),
        &orders,
        None,
        Life::default(),
        at(3),
        None,
        &BTreeMap::new(),
    );
    assert_eq!(ids_of(&d, "vm").len(), MAX_GROUP_MEMBERS as usize);
    assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
    assert!(
        d.problems[0].reason.contains("4294967295"),
        "{:?}",
        d.problems
    );
}

/// 002 art. 13 for the onboarding order's own exit (live → exit requested →
/// exited): its resources stay, servers powered off, until it is purged.
#[test]
fn seed_002_art_13_the_onboarding_orders_own_exit_keeps_its_resources_powered_off() {
    let (mut onboard, track) = approved("WO-1", OrderKind::Onboarding, three_tier(), 2);
    let running = resources(
        &system(),
        &[(onboard.clone(), track.clone())],
        None,
        Life {
            exit_keeps_data: true,
            ..Life::default()
        },
        at(3),
        None,
        &BTreeMap::new(),
    );
    let actor: Actor = "user:zhou".parse().expect("actor");
    for to in [
        OrderState::TestEnvReady,
        OrderState::Delivered,
        OrderState::Live,
        OrderState::ExitRequested,
        OrderState::Exited,
    ] {
        onboard
            .transition(to, actor.clone(), at(4), None)
            .expect("move");
    }
    let d = resources(
        &system(),
        &[(onboard.clone(), track.clone())],
        None,
        Life {
            exit_keeps_data: true,
            ..Life::default()
        },
        at(5),
        None,
        &BTreeMap::new(),
    );
    assert_eq!(kinds(&d), kinds(&running));
    assert!(d.wants.values().all(|w| match &w.item {
        Item::Server { stopped, .. } => *stopped,
        _ => true,
    }));
    onboard
        .transition(OrderState::Purged, actor, at(6), None)
        .expect("purge");
    let d = resources(
        &system(),
        &[(onboard, track)],
        None,
        Life {
            exit_keeps_data: true,
            ..Life::default()
        },
        at(7),
        None,
        &BTreeMap::new(),
    );
    assert!(d.wants.is_empty(), "{:?}", kinds(&d));
}
