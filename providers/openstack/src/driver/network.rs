//! VPCs, subnets, security groups and EIPs as Neutron objects.
//!
//! | yunshu | Neutron |
//! |---|---|
//! | VPC | network `ys-<id>` + router `ys-<id>` with its gateway on the external network |
//! | subnet | subnet `ys-<id>` in the VPC's network, an interface of the VPC's router |
//! | security group | security group `ys-<id>`; its rules exactly the spec's (ALLOW only) |
//! | EIP | floating IP on the external network (description `ys-<id>`), on a VM's first port |
//!
//! Each step looks its object up by name before creating it, so an Apply
//! retried after a failure half-way continues where it stopped.

use std::collections::HashMap;

use serde_json::{Value, json};
use yunshu_driver_sdk::cidr::Cidr;
use yunshu_proto::tonic::Status;
use yunshu_proto::v1::{self, ResourceKind as K};

use super::table::{Deps, OsIds};
use super::{Built, Project, TAG, invalid, os_name, os_status};
use crate::cloud::{Cloud, CloudError, Service};

/// The external network's id, if there is one by that name.
pub async fn find_external(cloud: &Cloud, name: &str) -> Result<Option<String>, CloudError> {
    let v = cloud
        .get(
            Service::Network,
            &format!("networks?name={name}&router:external=true"),
        )
        .await?;
    Ok(first(&v, "networks").and_then(|n| str_of(n, "id")))
}

fn first<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).and_then(Value::as_array).and_then(|a| a.first())
}

pub(crate) fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Neutron's JSON key for a collection and for one of its objects.
fn keys(collection: &str) -> (String, String) {
    let plural = collection.replace('-', "_");
    let singular = plural.strip_suffix('s').unwrap_or(&plural).to_owned();
    (plural, singular)
}

/// The object of `collection` matching `filter` (e.g. `name=ys-x`), if any.
pub(super) async fn find(
    project: &Project<'_>,
    collection: &str,
    filter: &str,
) -> Result<Option<Value>, Status> {
    let (plural, _) = keys(collection);
    let v = project
        .cloud
        .get(Service::Network, &format!("{collection}?{filter}"))
        .await
        .map_err(|e| os_status(&format!("listing {collection}"), &e))?;
    Ok(first(&v, &plural).cloned())
}

/// Finds `collection`'s object by `filter` or creates it from `body`, and
/// tags it; returns the object.
pub(super) async fn ensure(
    project: &Project<'_>,
    collection: &str,
    filter: &str,
    body: Value,
) -> Result<Value, Status> {
    if let Some(found) = find(project, collection, filter).await? {
        return Ok(found);
    }
    let (_, singular) = keys(collection);
    let created = project
        .cloud
        .post(
            Service::Network,
            collection,
            json!({ singular.as_str(): body }),
        )
        .await
        .map_err(|e| os_status(&format!("creating a {singular}"), &e))?;
    let obj = created.get(&singular).cloned().unwrap_or(Value::Null);
    if let Some(id) = str_of(&obj, "id") {
        // The tag lets the observer list only yunshu's objects; a failure
        // here is retried by the next Apply (the object is found by name).
        project
            .cloud
            .put(
                Service::Network,
                &format!("{collection}/{id}/tags/{TAG}"),
                Value::Null,
            )
            .await
            .map_err(|e| os_status(&format!("tagging {singular} {id}"), &e))?;
    }
    Ok(obj)
}

fn revision(obj: &Value) -> i64 {
    obj.get("revision_number")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn running(os: OsIds, outputs: HashMap<String, String>) -> Built {
    Built {
        os,
        phase: v1::Phase::Running,
        converged: true,
        message: String::new(),
        outputs,
    }
}

pub async fn vpc(
    project: &Project<'_>,
    req: &v1::ApplyRequest,
    spec: &v1::VpcSpec,
    _prior: Option<OsIds>,
) -> Result<Built, Status> {
    Cidr::parse(&spec.cidr).map_err(|e| invalid("vpc.cidr", e))?;
    let name = os_name(&req.id);
    let net = ensure(
        project,
        "networks",
        &format!("name={name}"),
        json!({"name": name, "admin_state_up": true, "description": format!("yunshu VPC {} ({})", req.id, spec.cidr)}),
    )
    .await?;
    let router = ensure(
        project,
        "routers",
        &format!("name={name}"),
        json!({"name": name, "external_gateway_info": {"network_id": project.external_network}}),
    )
    .await?;
    let os = OsIds {
        id: str_of(&net, "id").unwrap_or_default(),
        router: str_of(&router, "id").unwrap_or_default(),
        network: String::new(),
        ports: Vec::new(),
        revision: revision(&net),
    };
    let outputs = HashMap::from([
        ("network_id".to_owned(), os.id.clone()),
        ("router_id".to_owned(), os.router.clone()),
        ("cidr".to_owned(), spec.cidr.clone()),
    ]);
    Ok(running(os, outputs))
}

pub async fn subnet(
    project: &Project<'_>,
    req: &v1::ApplyRequest,
    spec: &v1::SubnetSpec,
    prior: Option<OsIds>,
    deps: &Deps,
) -> Result<Built, Status> {
    let cidr = Cidr::parse(&spec.cidr).map_err(|e| invalid("subnet.cidr", e))?;
    let vpc = deps
        .get("subnet.vpc")
        .ok_or_else(|| invalid("subnet.vpc", "required"))?;
    if let Some(v1::resource_spec::Spec::Vpc(v)) = &vpc.spec
        && let Ok(block) = Cidr::parse(&v.cidr)
        && !block.contains_cidr(&cidr)
    {
        return Err(invalid(
            "subnet.cidr",
            format!("{} is not inside its VPC's {}", spec.cidr, v.cidr),
        ));
    }
    if let Some(p) = &prior
        && !p.id.is_empty()
    {
        // Neutron cannot move a subnet to another network or block.
        let current = project
            .cloud
            .get(Service::Network, &format!("subnets/{}", p.id))
            .await;
        if let Ok(cur) = current
            && let Some(s) = cur.get("subnet")
            && (str_of(s, "cidr").as_deref() != Some(spec.cidr.as_str())
                || str_of(s, "network_id").as_deref() != Some(vpc.os.id.as_str()))
        {
            return Err(invalid(
                "subnet",
                "a subnet's VPC and CIDR cannot change in OpenStack; make a new subnet",
            ));
        }
    }
    let name = os_name(&req.id);
    let mut body = json!({
        "name": name,
        "network_id": vpc.os.id,
        "ip_version": 4,
        "cidr": spec.cidr,
    });
    if !spec.gateway.is_empty() {
        body["gateway_ip"] = json!(spec.gateway);
    }
    let sub = ensure(project, "subnets", &format!("name={name}"), body).await?;
    let id = str_of(&sub, "id").unwrap_or_default();
    // Attach to the VPC's router unless it already is (a retried Apply).
    let ports = project
        .cloud
        .get(
            Service::Network,
            &format!("ports?device_id={}&network_id={}", vpc.os.router, vpc.os.id),
        )
        .await
        .map_err(|e| os_status("listing the router's ports", &e))?;
    let attached = ports
        .get("ports")
        .and_then(Value::as_array)
        .is_some_and(|ps| {
            ps.iter().any(|p| {
                p.get("fixed_ips")
                    .and_then(Value::as_array)
                    .is_some_and(|ips| {
                        ips.iter()
                            .any(|ip| str_of(ip, "subnet_id").as_deref() == Some(id.as_str()))
                    })
            })
        });
    if !attached {
        project
            .cloud
            .put(
                Service::Network,
                &format!("routers/{}/add_router_interface", vpc.os.router),
                json!({"subnet_id": id}),
            )
            .await
            .map_err(|e| os_status("attaching the subnet to the VPC's router", &e))?;
    }
    let os = OsIds {
        id: id.clone(),
        router: vpc.os.router.clone(),
        network: vpc.os.id.clone(),
        ports: Vec::new(),
        revision: revision(&sub),
    };
    let outputs = HashMap::from([
        ("subnet_id".to_owned(), id),
        ("cidr".to_owned(), spec.cidr.clone()),
        (
            "gateway".to_owned(),
            str_of(&sub, "gateway_ip").unwrap_or_default(),
        ),
    ]);
    Ok(running(os, outputs))
}

/// A rule as Neutron states it, in a form two rules compare equal in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RuleKey {
    direction: &'static str,
    protocol: Option<&'static str>,
    port_min: Option<u32>,
    port_max: Option<u32>,
    remote_ip_prefix: Option<String>,
    remote_group_id: Option<String>,
}

impl RuleKey {
    fn from_neutron(r: &Value) -> Option<(String, RuleKey)> {
        let id = str_of(r, "id")?;
        let direction = match r.get("direction").and_then(Value::as_str)? {
            "ingress" => "ingress",
            _ => "egress",
        };
        let protocol = match r.get("protocol").and_then(Value::as_str) {
            Some("tcp") | Some("6") => Some("tcp"),
            Some("udp") | Some("17") => Some("udp"),
            Some("icmp") | Some("1") => Some("icmp"),
            Some(_) => Some("other"),
            None => None,
        };
        let port = |k: &str| {
            r.get(k)
                .and_then(Value::as_u64)
                .and_then(|p| u32::try_from(p).ok())
        };
        Some((
            id,
            RuleKey {
                direction,
                protocol,
                port_min: port("port_range_min"),
                port_max: port("port_range_max"),
                remote_ip_prefix: str_of(r, "remote_ip_prefix"),
                remote_group_id: str_of(r, "remote_group_id"),
            },
        ))
    }

    fn body(&self, group: &str) -> Value {
        json!({
            "security_group_id": group,
            "direction": self.direction,
            "ethertype": "IPv4",
            "protocol": self.protocol,
            "port_range_min": self.port_min,
            "port_range_max": self.port_max,
            "remote_ip_prefix": self.remote_ip_prefix,
            "remote_group_id": self.remote_group_id,
        })
    }
}

/// The spec's rules as Neutron rules; a DENY rule cannot be said in Neutron
/// (its groups only allow), so it is refused rather than dropped.
fn rule_keys(spec: &v1::SecurityGroupSpec, deps: &Deps, own: &str) -> Result<Vec<RuleKey>, Status> {
    let mut out = Vec::new();
    for (i, r) in spec.rules.iter().enumerate() {
        let field = format!("security_group.rules[{i}]");
        if r.action == v1::RuleAction::Deny as i32 {
            return Err(invalid(
                &format!("{field}.action"),
                "DENY rules cannot be expressed in OpenStack: Neutron security groups only allow traffic; \
                 drop the rule (what no rule allows is denied) or use a provider that filters with DENY",
            ));
        }
        let direction = if r.direction == v1::Direction::Egress as i32 {
            "egress"
        } else {
            "ingress"
        };
        let proto = v1::Protocol::try_from(r.protocol).unwrap_or(v1::Protocol::Any);
        // HTTP(S) are TCP to Neutron; their default ports when none is given.
        let (protocol, default_port) = match proto {
            v1::Protocol::Tcp => (Some("tcp"), None),
            v1::Protocol::Udp => (Some("udp"), None),
            v1::Protocol::Icmp => (Some("icmp"), None),
            v1::Protocol::Http => (Some("tcp"), Some(80)),
            v1::Protocol::Https => (Some("tcp"), Some(443)),
            v1::Protocol::Any | v1::Protocol::Unspecified => (None, None),
        };
        let (port_min, port_max) = match (protocol, r.port_min, r.port_max) {
            (Some("tcp") | Some("udp"), 0, 0) => (default_port, default_port),
            (Some("tcp") | Some("udp"), lo, 0) => (Some(lo), Some(lo)),
            (Some("tcp") | Some("udp"), lo, hi) => (Some(lo.max(1)), Some(hi)),
            _ => (None, None),
        };
        let remote_group_id = if r.remote_group.is_empty() {
            None
        } else if r.remote_group == own {
            Some(String::new()) // filled with the group's own id below
        } else {
            let dep = deps
                .get(&format!("{field}.remote_group"))
                .ok_or_else(|| invalid(&format!("{field}.remote_group"), "unresolved"))?;
            Some(dep.os.id.clone())
        };
        let remote_ip_prefix = if remote_group_id.is_some() {
            None
        } else if r.remote_cidr.is_empty() {
            Some("0.0.0.0/0".to_owned())
        } else {
            Cidr::parse(&r.remote_cidr).map_err(|e| invalid(&format!("{field}.remote_cidr"), e))?;
            Some(r.remote_cidr.clone())
        };
        let key = RuleKey {
            direction,
            protocol,
            port_min,
            port_max,
            remote_ip_prefix,
            remote_group_id,
        };
        if !out.contains(&key) {
            out.push(key);
        }
    }
    Ok(out)
}

pub async fn security_group(
    project: &Project<'_>,
    req: &v1::ApplyRequest,
    spec: &v1::SecurityGroupSpec,
    _prior: Option<OsIds>,
    deps: &Deps,
) -> Result<Built, Status> {
    // Refuse before anything is made.
    let mut wanted = rule_keys(spec, deps, &req.id)?;
    let name = os_name(&req.id);
    let group = ensure(
        project,
        "security-groups",
        &format!("name={name}"),
        json!({"name": name, "description": format!("yunshu security group {}", req.id)}),
    )
    .await?;
    let gid = str_of(&group, "id").unwrap_or_default();
    for k in &mut wanted {
        if k.remote_group_id.as_deref() == Some("") {
            k.remote_group_id = Some(gid.clone());
        }
    }
    let existing = project
        .cloud
        .get(
            Service::Network,
            &format!("security-group-rules?security_group_id={gid}"),
        )
        .await
        .map_err(|e| os_status("listing the group's rules", &e))?;
    let mut have: Vec<(String, RuleKey)> = existing
        .get("security_group_rules")
        .and_then(Value::as_array)
        .map(|rs| rs.iter().filter_map(RuleKey::from_neutron).collect())
        .unwrap_or_default();
    // Exactly the spec's rules: Neutron's default egress rules go too, as
    // does anything added behind yunshu's back.
    for (id, key) in &have {
        if !wanted.contains(key) {
            project
                .cloud
                .delete(Service::Network, &format!("security-group-rules/{id}"))
                .await
                .map_err(|e| os_status("deleting a rule", &e))?;
        }
    }
    have.retain(|(_, k)| wanted.contains(k));
    for key in &wanted {
        if have.iter().any(|(_, k)| k == key) {
            continue;
        }
        project
            .cloud
            .post(
                Service::Network,
                "security-group-rules",
                json!({ "security_group_rule": key.body(&gid) }),
            )
            .await
            .map_err(|e| os_status("creating a rule", &e))?;
    }
    let os = OsIds {
        id: gid.clone(),
        revision: revision(&group),
        ..Default::default()
    };
    let outputs = HashMap::from([
        ("security_group_id".to_owned(), gid),
        ("rules".to_owned(), wanted.len().to_string()),
    ]);
    Ok(running(os, outputs))
}

pub async fn eip(
    project: &Project<'_>,
    req: &v1::ApplyRequest,
    _spec: &v1::EipSpec,
    _prior: Option<OsIds>,
    deps: &Deps,
) -> Result<Built, Status> {
    // A VM without a NIC has no port a floating IP could point at: the
    // address is allocated and held for it, and the state says so.
    let mut unbound_note = String::new();
    let port = match deps.get("eip.bind_to") {
        None => None,
        Some(d) if d.kind == K::Vm => {
            let first = d.os.ports.first().cloned();
            if first.is_none() {
                unbound_note = format!(
                    "vm {} has no NIC: the address is held for it but not associated (Neutron binds a floating IP to a port)",
                    d.id
                );
            }
            first
        }
        // The load balancer's VIP port.
        Some(d) if d.kind == K::LoadBalancer => d.os.ports.first().cloned(),
        Some(d) => {
            return Err(invalid(
                "eip.bind_to",
                format!("binding to a {:?} is not supported by this driver", d.kind),
            ));
        }
    };
    let name = os_name(&req.id);
    let fip = ensure(
        project,
        "floatingips",
        &format!("description={name}"),
        json!({"floating_network_id": project.external_network, "description": name, "port_id": port}),
    )
    .await?;
    let id = str_of(&fip, "id").unwrap_or_default();
    let bound = str_of(&fip, "port_id");
    let fip = if bound != port {
        let v = project
            .cloud
            .put(
                Service::Network,
                &format!("floatingips/{id}"),
                json!({"floatingip": {"port_id": port}}),
            )
            .await
            .map_err(|e| os_status("binding the floating IP", &e))?;
        v.get("floatingip").cloned().unwrap_or(fip)
    } else {
        fip
    };
    let ip = str_of(&fip, "floating_ip_address").unwrap_or_default();
    let os = OsIds {
        id: id.clone(),
        revision: revision(&fip),
        ..Default::default()
    };
    let outputs = HashMap::from([
        ("ip".to_owned(), ip),
        ("floatingip_id".to_owned(), id),
        ("port_id".to_owned(), port.unwrap_or_default()),
    ]);
    let mut built = running(os, outputs);
    built.message = unbound_note;
    Ok(built)
}

/// Deletes a network-kind resource; `true` once it is gone (Neutron deletes
/// at once). A 409 (still in use inside Neutron, e.g. a port not yet released
/// by Nova) is retryable.
pub async fn delete(
    project: &Project<'_>,
    kind: K,
    req: &v1::ApplyRequest,
    os: &OsIds,
) -> Result<bool, Status> {
    let cloud = &project.cloud;
    let gone = |what: &str, e: CloudError| os_status(&format!("deleting {what}"), &e);
    match kind {
        K::Vpc => {
            if !os.router.is_empty() {
                cloud
                    .delete(Service::Network, &format!("routers/{}", os.router))
                    .await
                    .map_err(|e| gone("the router", e))?;
            }
            if !os.id.is_empty() {
                cloud
                    .delete(Service::Network, &format!("networks/{}", os.id))
                    .await
                    .map_err(|e| gone("the network", e))?;
            }
        }
        K::Subnet => {
            if !os.router.is_empty() && !os.id.is_empty() {
                let r = cloud
                    .put(
                        Service::Network,
                        &format!("routers/{}/remove_router_interface", os.router),
                        json!({"subnet_id": os.id}),
                    )
                    .await;
                // 404: the router or the interface is gone already.
                if let Err(e) = r
                    && !e.is_not_found()
                {
                    return Err(gone("the router interface", e));
                }
            }
            if !os.id.is_empty() {
                cloud
                    .delete(Service::Network, &format!("subnets/{}", os.id))
                    .await
                    .map_err(|e| gone("the subnet", e))?;
            }
        }
        K::SecurityGroup => {
            if !os.id.is_empty() {
                cloud
                    .delete(Service::Network, &format!("security-groups/{}", os.id))
                    .await
                    .map_err(|e| gone("the security group", e))?;
            }
        }
        K::Eip => {
            if !os.id.is_empty() {
                cloud
                    .delete(Service::Network, &format!("floatingips/{}", os.id))
                    .await
                    .map_err(|e| gone("the floating IP", e))?;
            }
        }
        _ => {
            return Err(invalid(
                "kind",
                format!("{kind:?} {} is not a network resource", req.id),
            ));
        }
    }
    Ok(true)
}
