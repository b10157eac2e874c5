//! Load balancers as Octavia load balancers.
//!
//! Created in one call as a fully populated tree (load balancer `ys-<id>` on
//! the subnet; per listener `ys-<id>-<n>` its pool, health monitor and
//! members — each member a VM's first address). Octavia refuses any change
//! while a load balancer is `PENDING_*`, so an update makes one change per
//! Apply and answers `UNAVAILABLE` while more remain: the controller's retry
//! makes the next one, and the observer reports RUNNING once Octavia is
//! ACTIVE with nothing left to change.

use std::collections::HashMap;

use serde_json::{Value, json};
use yunshu_proto::errors::status;
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1;

use super::network::{ensure, find as find_network, str_of};
use super::table::{Deps, OsIds};
use super::{Built, Project, invalid, os_name, os_status};
use crate::cloud::Service;

fn protocol(p: i32, field: &str) -> Result<&'static str, Status> {
    match v1::Protocol::try_from(p).unwrap_or(v1::Protocol::Unspecified) {
        v1::Protocol::Http => Ok("HTTP"),
        v1::Protocol::Https => Ok("HTTPS"),
        v1::Protocol::Tcp => Ok("TCP"),
        v1::Protocol::Udp => Ok("UDP"),
        other => Err(invalid(
            field,
            format!("{other:?} is not a load-balancer protocol"),
        )),
    }
}

/// Octavia's algorithms weigh members in round robin and least connections
/// alike, so the weighted variants are those two with the members' weights.
fn algorithm(a: i32) -> &'static str {
    match v1::LbAlgorithm::try_from(a).unwrap_or(v1::LbAlgorithm::RoundRobin) {
        v1::LbAlgorithm::WeightedLeastConnections => "LEAST_CONNECTIONS",
        _ => "ROUND_ROBIN",
    }
}

/// The members of listener `i` as Octavia members; a VM without an address
/// cannot be one (noted in `skipped`).
async fn members(
    project: &Project<'_>,
    i: usize,
    l: &v1::Listener,
    deps: &Deps,
    subnet: &str,
    skipped: &mut Vec<String>,
) -> Result<Vec<Value>, Status> {
    let mut out = Vec::new();
    for (k, m) in l.members.iter().enumerate() {
        let field = format!("load_balancer.listeners[{i}].members[{k}].target");
        let d = deps
            .get(&field)
            .ok_or_else(|| invalid(&field, "unresolved"))?;
        let Some(port) = d.os.ports.first() else {
            skipped.push(d.id.clone());
            continue;
        };
        let p = project
            .cloud
            .get(Service::Network, &format!("ports/{port}"))
            .await
            .map_err(|e| os_status("reading a member's port", &e))?;
        let Some(fixed) = p["port"]["fixed_ips"].as_array().and_then(|a| a.first()) else {
            skipped.push(d.id.clone());
            continue;
        };
        out.push(json!({
            "name": d.id,
            "address": fixed["ip_address"],
            "subnet_id": fixed["subnet_id"].as_str().unwrap_or(subnet),
            "protocol_port": m.port,
            "weight": if m.weight == 0 { 1 } else { m.weight },
        }));
    }
    Ok(out)
}

fn monitor(l: &v1::Listener, proto: &str) -> Option<Value> {
    let h = l.health_check.as_ref()?;
    let kind = match v1::Protocol::try_from(h.protocol).unwrap_or(v1::Protocol::Unspecified) {
        v1::Protocol::Http => "HTTP",
        v1::Protocol::Https => "HTTPS",
        v1::Protocol::Udp => "UDP-CONNECT",
        _ if proto == "UDP" => "UDP-CONNECT",
        _ => "TCP",
    };
    let mut m = json!({
        "type": kind,
        "delay": h.interval_seconds.max(1),
        "timeout": h.timeout_seconds.max(1),
        "max_retries": h.healthy_threshold.clamp(1, 10),
        "max_retries_down": h.unhealthy_threshold.clamp(1, 10),
    });
    if matches!(kind, "HTTP" | "HTTPS") {
        m["url_path"] = json!(if h.path.is_empty() {
            "/"
        } else {
            h.path.as_str()
        });
    }
    Some(m)
}

async fn find(project: &Project<'_>, id: &str) -> Result<Option<Value>, Status> {
    let v = project
        .cloud
        .get(
            Service::LoadBalancer,
            &format!("lbaas/loadbalancers?name={}", os_name(id)),
        )
        .await
        .map_err(|e| os_status("listing load balancers", &e))?;
    Ok(v["loadbalancers"]
        .as_array()
        .and_then(|a| a.first())
        .cloned())
}

fn busy(lb: &Value) -> Status {
    status(
        Code::Unavailable,
        "LOAD_BALANCER_BUSY",
        format!(
            "openstack: load balancer {} is {}; retry once Octavia has finished",
            lb["name"].as_str().unwrap_or(""),
            lb["provisioning_status"].as_str().unwrap_or("?")
        ),
    )
}

pub async fn load_balancer(
    project: &Project<'_>,
    req: &v1::ApplyRequest,
    spec: &v1::LoadBalancerSpec,
    deps: &Deps,
) -> Result<Built, Status> {
    let subnet_os = &deps
        .get("load_balancer.subnet")
        .ok_or_else(|| {
            invalid(
                "load_balancer.subnet",
                "required by Octavia (the VIP's subnet)",
            )
        })?
        .os;
    let subnet = subnet_os.id.clone();
    let mut skipped = Vec::new();
    let mut listeners = Vec::new();
    for (i, l) in spec.listeners.iter().enumerate() {
        let proto = protocol(
            l.protocol,
            &format!("load_balancer.listeners[{i}].protocol"),
        )?;
        let mut pool = json!({
            "name": format!("{}-{i}", os_name(&req.id)),
            "protocol": proto,
            "lb_algorithm": algorithm(l.algorithm),
            "members": members(project, i, l, deps, &subnet, &mut skipped).await?,
        });
        if l.session_persistence {
            pool["session_persistence"] = json!({"type": "SOURCE_IP"});
        }
        if let Some(m) = monitor(l, proto) {
            pool["healthmonitor"] = m;
        }
        listeners.push((
            json!({
                "name": format!("{}-{i}", os_name(&req.id)),
                "protocol": proto,
                "protocol_port": l.port,
            }),
            pool,
        ));
    }
    let lb = match find(project, &req.id).await? {
        Some(lb) => {
            update(project, &lb, &listeners).await?;
            lb
        }
        None => {
            let (vip_port, vip_address) = vip_port(project, &req.id, subnet_os).await?;
            let tree: Vec<Value> = listeners
                .iter()
                .map(|(l, p)| {
                    let mut l = l.clone();
                    l["default_pool"] = p.clone();
                    l
                })
                .collect();
            let v = project
                .cloud
                .post(
                    Service::LoadBalancer,
                    "lbaas/loadbalancers",
                    // All three: Octavia checks they agree, and its
                    // no-op network driver cannot read them off the port.
                    json!({"loadbalancer": {"name": os_name(&req.id), "vip_subnet_id": subnet,
                        "vip_port_id": vip_port, "vip_address": vip_address,
                        "listeners": tree}}),
                )
                .await
                .map_err(|e| os_status("creating the load balancer", &e))?;
            v["loadbalancer"].clone()
        }
    };
    let id = str_of(&lb, "id").unwrap_or_default();
    let vip_port = str_of(&lb, "vip_port_id").unwrap_or_default();
    let outputs = HashMap::from([
        ("loadbalancer_id".to_owned(), id.clone()),
        (
            "vip".to_owned(),
            str_of(&lb, "vip_address").unwrap_or_default(),
        ),
    ]);
    let message = if skipped.is_empty() {
        "Octavia: provisioning".to_owned()
    } else {
        format!(
            "members without an address (no NIC) left out: {}",
            skipped.join(", ")
        )
    };
    Ok(Built {
        os: OsIds {
            id,
            ports: vec![vip_port],
            ..Default::default()
        },
        phase: v1::Phase::Provisioning,
        converged: false,
        message,
        outputs,
    })
}

/// One change towards `listeners` (pool algorithm, then the member list), or
/// nothing when they match; `UNAVAILABLE` while Octavia is busy or after a
/// change when more remain.
async fn update(
    project: &Project<'_>,
    lb: &Value,
    listeners: &[(Value, Value)],
) -> Result<(), Status> {
    if lb["provisioning_status"] != "ACTIVE" {
        return Err(busy(lb));
    }
    let mut changed = false;
    for (_, want) in listeners {
        let name = want["name"].as_str().unwrap_or("");
        let pools = project
            .cloud
            .get(Service::LoadBalancer, &format!("lbaas/pools?name={name}"))
            .await
            .map_err(|e| os_status("listing pools", &e))?;
        let Some(pool) = pools["pools"].as_array().and_then(|a| a.first()) else {
            return Err(invalid(
                "load_balancer.listeners",
                "adding or removing listeners is not supported by this driver",
            ));
        };
        let pid = pool["id"].as_str().unwrap_or("");
        if pool["lb_algorithm"] != want["lb_algorithm"] {
            if changed {
                return Err(busy(lb));
            }
            project
                .cloud
                .put(
                    Service::LoadBalancer,
                    &format!("lbaas/pools/{pid}"),
                    json!({"pool": {"lb_algorithm": want["lb_algorithm"]}}),
                )
                .await
                .map_err(|e| os_status("changing the pool's algorithm", &e))?;
            changed = true;
        }
        let have = project
            .cloud
            .get(Service::LoadBalancer, &format!("lbaas/pools/{pid}/members"))
            .await
            .map_err(|e| os_status("listing members", &e))?;
        let key = |m: &Value| {
            (
                m["address"].as_str().unwrap_or("").to_owned(),
                m["protocol_port"].as_u64().unwrap_or(0),
                m["weight"].as_u64().unwrap_or(1),
            )
        };
        let mut a: Vec<_> = have["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(key)
            .collect();
        let mut b: Vec<_> = want["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(key)
            .collect();
        a.sort();
        b.sort();
        if a != b {
            if changed {
                return Err(busy(lb));
            }
            // Octavia's batch update replaces the whole member list.
            project
                .cloud
                .put(
                    Service::LoadBalancer,
                    &format!("lbaas/pools/{pid}/members"),
                    json!({"members": want["members"]}),
                )
                .await
                .map_err(|e| os_status("setting the pool's members", &e))?;
            changed = true;
        }
    }
    Ok(())
}

/// The Neutron port of load balancer `id`'s VIP, found by name or made; its
/// id and address. The driver makes it rather than leaving it to Octavia so
/// that it is a port Neutron knows whatever Octavia's network driver (a
/// floating IP binds to a Neutron port: with Octavia's own the test cloud's
/// no-op driver named a port Neutron had never seen, and the EIP on the
/// balancer never bound), and so that its life is yunshu's: deleted with the
/// balancer (Octavia leaves a port it did not make).
async fn vip_port(
    project: &Project<'_>,
    id: &str,
    subnet: &OsIds,
) -> Result<(String, String), Status> {
    let name = vip_port_name(id);
    let port = ensure(
        project,
        "ports",
        &format!("name={name}"),
        json!({"name": name, "network_id": subnet.network,
            "fixed_ips": [{"subnet_id": subnet.id}],
            "description": format!("VIP of yunshu load balancer {id}")}),
    )
    .await?;
    let address = port["fixed_ips"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["subnet_id"] == subnet.id.as_str())
        .and_then(|f| str_of(f, "ip_address"));
    match (str_of(&port, "id"), address) {
        (Some(pid), Some(ip)) => Ok((pid, ip)),
        _ => Err(status(
            Code::Unavailable,
            "VIP_PORT_INCOMPLETE",
            format!(
                "openstack: port {name} has no address on subnet {} yet",
                subnet.id
            ),
        )),
    }
}

fn vip_port_name(id: &str) -> String {
    format!("{}-vip", os_name(id))
}

/// Deletes the VIP port this driver made for load balancer `id` (by name, so
/// one made before a failed create goes too); nothing when there is none.
pub async fn delete_vip_port(project: &Project<'_>, id: &str) -> Result<(), Status> {
    if let Some(p) = find_network(project, "ports", &format!("name={}", vip_port_name(id))).await?
        && let Some(pid) = str_of(&p, "id")
    {
        project
            .cloud
            .delete(Service::Network, &format!("ports/{pid}"))
            .await
            .map_err(|e| os_status("deleting the load balancer's VIP port", &e))?;
    }
    Ok(())
}

/// Starts a cascade delete; `true` when Octavia has no such load balancer
/// and its VIP port is gone.
pub async fn delete(project: &Project<'_>, id: &str, os: &OsIds) -> Result<bool, Status> {
    if os.id.is_empty() {
        delete_vip_port(project, id).await?;
        return Ok(true);
    }
    match project
        .cloud
        .call(
            Service::LoadBalancer,
            crate::cloud::Method::Delete,
            &format!("lbaas/loadbalancers/{}?cascade=true", os.id),
            None,
        )
        .await
    {
        Ok(_) => Ok(false),
        Err(e) if e.is_not_found() => {
            delete_vip_port(project, id).await?;
            Ok(true)
        }
        Err(e) => Err(os_status("deleting the load balancer", &e)),
    }
}

/// The phase of an Octavia load balancer.
pub fn phase_of(lb: &Value) -> v1::Phase {
    match lb["provisioning_status"].as_str().unwrap_or("") {
        "ACTIVE" => v1::Phase::Running,
        "ERROR" => v1::Phase::Failed,
        "DELETED" => v1::Phase::Deleted,
        _ => v1::Phase::Provisioning,
    }
}
