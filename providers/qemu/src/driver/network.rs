//! VPCs, subnets and security groups: checked against what exists, built with
//! `crate::net` (namespaces, gateways, taps) and `crate::firewall` (one
//! nftables table per VPC namespace, rendered from every VM in it); the
//! guests' DHCP and DNS with `crate::dhcp` (one `dnsmasq` per VPC namespace
//! with VM NICs, in `dhcp/<vpc>/`, rendered from every VM in it).

use std::net::Ipv4Addr;

use yunshu_driver_sdk::cidr::{Cidr, fmt_ip, parse_ip};
use yunshu_proto::errors::{reasons, status};
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1::{self, ResourceKind as K, resource_spec::Spec};

use super::{Entry, QemuDriver, Resources, internal, invalid, missing, spec_of};
use crate::firewall::{self, Direction, Port, Proto, Rule};
use crate::{QemuError, dhcp, net};

/// The narrowest VPC and subnet this driver builds (room for a gateway and
/// guests) and the widest (a /8 is a whole private range).
const PREFIXES: std::ops::RangeInclusive<u8> = 8..=29;

fn parse_cidr(what: &str, text: &str) -> Result<Cidr, Status> {
    let cidr = Cidr::parse(text).map_err(|e| invalid(format!("{what}: {e}")))?;
    if !PREFIXES.contains(&cidr.prefix) {
        return Err(invalid(format!(
            "{what}: /{} is outside /{}–/{}",
            cidr.prefix,
            PREFIXES.start(),
            PREFIXES.end()
        )));
    }
    Ok(cidr)
}

/// A subnet's CIDR and gateway (given, or its first address).
pub(super) fn subnet_gateway(subnet: &v1::SubnetSpec) -> Result<(Cidr, u32), Status> {
    let cidr = parse_cidr("subnet", &subnet.cidr)?;
    let gateway = if subnet.gateway.is_empty() {
        cidr.first_host()
            .ok_or_else(|| invalid("the subnet has no room for a gateway"))?
    } else {
        parse_ip(&subnet.gateway).ok_or_else(|| {
            invalid(format!(
                "gateway {:?} is not an IPv4 address",
                subnet.gateway
            ))
        })?
    };
    if !cidr.contains(gateway) || gateway == cidr.net || gateway == cidr.last() {
        return Err(invalid(format!(
            "gateway {} is not a host address of {cidr}",
            fmt_ip(gateway)
        )));
    }
    Ok((cidr, gateway))
}

fn vpc_spec(entry: &Entry) -> Option<&v1::VpcSpec> {
    match spec_of(&entry.request) {
        Some(Spec::Vpc(v)) => Some(v),
        _ => None,
    }
}

pub(super) fn subnet_spec(entry: &Entry) -> Option<&v1::SubnetSpec> {
    match spec_of(&entry.request) {
        Some(Spec::Subnet(s)) => Some(s),
        _ => None,
    }
}

fn check_rules(resources: &Resources, id: &str, sg: &v1::SecurityGroupSpec) -> Result<(), Status> {
    for (n, rule) in sg.rules.iter().enumerate() {
        let n = n + 1;
        if rule.port_min > rule.port_max || rule.port_max > 65_535 {
            return Err(invalid(format!(
                "rule {n}: ports {}–{} are not a range of 0–65535",
                rule.port_min, rule.port_max
            )));
        }
        if rule.remote_cidr.is_empty() == rule.remote_group.is_empty() {
            return Err(invalid(format!(
                "rule {n}: exactly one of remote_cidr and remote_group"
            )));
        }
        if !rule.remote_cidr.is_empty() {
            Cidr::parse(&rule.remote_cidr).map_err(|e| invalid(format!("rule {n}: {e}")))?;
        }
        if !rule.remote_group.is_empty()
            && rule.remote_group != id
            && QemuDriver::get_entry(resources, K::SecurityGroup, &rule.remote_group).is_none()
        {
            return Err(missing("security group", &rule.remote_group));
        }
        if v1::Direction::try_from(rule.direction).unwrap_or_default() == v1::Direction::Unspecified
        {
            return Err(invalid(format!("rule {n}: direction is required")));
        }
    }
    Ok(())
}

impl QemuDriver {
    /// Checks a VPC, subnet or security group against what exists.
    pub(super) fn check_network(
        &self,
        resources: &Resources,
        request: &v1::ApplyRequest,
    ) -> Result<(), Status> {
        match spec_of(request) {
            Some(Spec::Vpc(vpc)) => {
                let cidr = parse_cidr("vpc", &vpc.cidr)?;
                // A narrower VPC must still hold the subnets it has.
                for e in resources.values() {
                    if let Some(s) = subnet_spec(e).filter(|s| s.vpc == request.id)
                        && let Ok(sub) = Cidr::parse(&s.cidr)
                        && !cidr.contains_cidr(&sub)
                    {
                        return Err(invalid(format!(
                            "subnet {} ({sub}) would lie outside {cidr}",
                            e.request.id
                        )));
                    }
                }
            }
            Some(Spec::Subnet(subnet)) => {
                let (cidr, _) = subnet_gateway(subnet)?;
                let vpc = Self::get_entry(resources, K::Vpc, &subnet.vpc)
                    .and_then(vpc_spec)
                    .ok_or_else(|| missing("vpc", &subnet.vpc))?;
                let vpc_cidr = parse_cidr("vpc", &vpc.cidr)?;
                if !vpc_cidr.contains_cidr(&cidr) {
                    return Err(invalid(format!(
                        "subnet {cidr} lies outside VPC {vpc_cidr}"
                    )));
                }
                for e in resources.values() {
                    if e.request.id != request.id
                        && let Some(other) = subnet_spec(e).filter(|s| s.vpc == subnet.vpc)
                        && let Ok(o) = Cidr::parse(&other.cidr)
                        && o.overlaps(&cidr)
                    {
                        return Err(invalid(format!(
                            "subnet {cidr} overlaps subnet {} ({o}) of the same VPC",
                            e.request.id
                        )));
                    }
                }
                // Moving a subnet under its guests would strand them.
                if let Some(old) =
                    Self::get_entry(resources, K::Subnet, &request.id).and_then(subnet_spec)
                    && old != subnet
                {
                    let users = Self::users_of(resources, K::Subnet, &request.id);
                    if !users.is_empty() {
                        return Err(super::in_use(&request.id, &users));
                    }
                }
            }
            Some(Spec::SecurityGroup(sg)) => check_rules(resources, &request.id, sg)?,
            _ => return Err(invalid("not a network resource")),
        }
        Ok(())
    }

    /// Builds a checked VPC, subnet or security group (idempotent, also after
    /// a restart); its state is RUNNING once built.
    pub(super) async fn build_network(
        &self,
        resources: &Resources,
        request: &v1::ApplyRequest,
    ) -> Result<v1::ResourceState, Status> {
        let mut state = self.state_of(request, v1::Phase::Running, "");
        match spec_of(request) {
            Some(Spec::Vpc(vpc)) => {
                let ns = net::create_vpc(&request.id).await.map_err(internal)?;
                state.outputs.insert("namespace".to_owned(), ns);
                state.outputs.insert("cidr".to_owned(), vpc.cidr.clone());
            }
            Some(Spec::Subnet(subnet)) => {
                let (cidr, gateway) = subnet_gateway(subnet)?;
                if let Some(old) =
                    Self::get_entry(resources, K::Subnet, &request.id).and_then(subnet_spec)
                    && let Ok((_, old_gw)) = subnet_gateway(old)
                    && (old.vpc != subnet.vpc || old_gw != gateway)
                {
                    net::remove_subnet(&old.vpc, Ipv4Addr::from(old_gw))
                        .await
                        .map_err(internal)?;
                }
                net::add_subnet(&subnet.vpc, Ipv4Addr::from(gateway), cidr.prefix)
                    .await
                    .map_err(internal)?;
                state.outputs.insert("cidr".to_owned(), cidr.to_string());
                state.outputs.insert("gateway".to_owned(), fmt_ip(gateway));
            }
            Some(Spec::SecurityGroup(sg)) => {
                state
                    .outputs
                    .insert("rules".to_owned(), sg.rules.len().to_string());
            }
            _ => return Err(invalid("not a network resource")),
        }
        Ok(state)
    }

    /// Takes a VPC or subnet down (a security group is only rules: the
    /// firewall sync after the delete drops them).
    pub(super) async fn destroy_network(
        &self,
        _resources: &Resources,
        request: &v1::ApplyRequest,
    ) -> Result<(), Status> {
        match spec_of(request) {
            Some(Spec::Vpc(_)) => {
                // A process in a deleted namespace would keep it alive.
                dhcp::remove(&self.dhcp_dir(&request.id))
                    .await
                    .map_err(internal)?;
                net::delete_vpc(&request.id).await.map_err(internal)
            }
            Some(Spec::Subnet(subnet)) => match subnet_gateway(subnet) {
                Ok((_, gw)) => net::remove_subnet(&subnet.vpc, Ipv4Addr::from(gw))
                    .await
                    .map_err(internal),
                Err(_) => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Loads every VPC's firewall from the VMs in it and their groups.
    pub(super) async fn sync_firewalls(&self, resources: &Resources) -> Result<(), QemuError> {
        let vpcs: Vec<String> = resources
            .values()
            .filter(|e| e.request.kind == K::Vpc as i32)
            .map(|e| e.request.id.clone())
            .collect();
        for vpc in vpcs {
            let ports = ports_of(resources, &vpc);
            firewall::apply(&net::namespace(&vpc), &ports).await?;
        }
        Ok(())
    }
}

impl QemuDriver {
    /// Where the DHCP/DNS service of VPC `vpc` keeps its files.
    pub(super) fn dhcp_dir(&self, vpc: &str) -> std::path::PathBuf {
        self.inner.config.state_dir.join("dhcp").join(vpc)
    }

    /// Makes every VPC's DHCP/DNS service serve exactly its VM NICs (each
    /// subnet that has one, each NIC its reservation and names); stops the
    /// service of a VPC without VM NICs and of a VPC that is gone. Cheap when
    /// nothing changed: the files are compared, no process is touched.
    pub(super) async fn sync_dhcp(&self, resources: &Resources) -> Result<(), QemuError> {
        use std::collections::BTreeMap;
        let mut vpcs: BTreeMap<&str, BTreeMap<&str, dhcp::Subnet>> = resources
            .values()
            .filter(|e| e.request.kind == K::Vpc as i32)
            .map(|e| (e.request.id.as_str(), BTreeMap::new()))
            .collect();
        let mut macs = std::collections::BTreeSet::new();
        for e in resources.values() {
            let Some(Spec::Vm(vm)) = spec_of(&e.request) else {
                continue;
            };
            let Some(nic) = vm.nics.first() else {
                continue;
            };
            let Some(address) = e
                .state
                .outputs
                .get("private_ip")
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            let Some(subnet) =
                Self::get_entry(resources, K::Subnet, &nic.subnet).and_then(subnet_spec)
            else {
                continue;
            };
            let Ok((cidr, gateway)) = subnet_gateway(subnet) else {
                continue;
            };
            let Some(subnets) = vpcs.get_mut(subnet.vpc.as_str()) else {
                continue;
            };
            let mac = net::mac(&e.request.id, 0);
            // MACs are 24 bits of a hash: two VMs of a VPC may share one, and
            // a reservation is by MAC. The second keeps its static address.
            if !macs.insert((subnet.vpc.as_str(), mac.clone())) {
                tracing::warn!(vm = %e.request.id, %mac, "MAC shared in the VPC: no DHCP reservation");
                continue;
            }
            subnets
                .entry(nic.subnet.as_str())
                .or_insert_with(|| dhcp::Subnet {
                    id: nic.subnet.clone(),
                    network: Ipv4Addr::from(cidr.net),
                    prefix: cidr.prefix,
                    gateway: Ipv4Addr::from(gateway),
                    hosts: Vec::new(),
                })
                .hosts
                .push(dhcp::Host {
                    name: e.request.id.clone(),
                    mac,
                    address,
                });
        }
        for (vpc, subnets) in &vpcs {
            let subnets: Vec<dhcp::Subnet> = subnets.values().cloned().collect();
            dhcp::apply(&net::namespace(vpc), &self.dhcp_dir(vpc), &subnets).await?;
        }
        // The directories of VPCs that are gone.
        let root = self.inner.config.state_dir.join("dhcp");
        let Ok(mut entries) = tokio::fs::read_dir(&root).await else {
            return Ok(());
        };
        while let Some(e) = entries
            .next_entry()
            .await
            .map_err(QemuError::io("read the DHCP dir"))?
        {
            if !vpcs.contains_key(e.file_name().to_string_lossy().as_ref()) {
                dhcp::remove(&e.path()).await?;
            }
        }
        Ok(())
    }
}

/// An address in a subnet for a VM's NIC or a balancer.
pub(super) struct Place {
    pub vpc: String,
    pub gateway: Ipv4Addr,
    pub prefix: u8,
    pub address: Ipv4Addr,
}

/// The address of `subnet` held by resource `id` of `kind` (a VM's NIC, a
/// balancer's VIP), if it has one there.
fn held_in(entry: &Entry, subnet: &str) -> Option<u32> {
    let (in_subnet, key) = match spec_of(&entry.request) {
        Some(Spec::Vm(vm)) => (vm.nics.iter().any(|n| n.subnet == subnet), "private_ip"),
        Some(Spec::LoadBalancer(lb)) => (lb.subnet == subnet, "vip"),
        _ => (false, ""),
    };
    if !in_subnet {
        return None;
    }
    entry.state.outputs.get(key).and_then(|a| parse_ip(a))
}

/// Where resource `own` goes in `subnet`: the address `wanted` (checked) or,
/// if empty, the one it already holds there or the lowest free one.
pub(super) fn address_in(
    resources: &Resources,
    subnet_id: &str,
    own: &str,
    wanted: &str,
) -> Result<Place, Status> {
    let subnet = QemuDriver::get_entry(resources, K::Subnet, subnet_id)
        .and_then(subnet_spec)
        .ok_or_else(|| missing("subnet", subnet_id))?;
    let (cidr, gateway) = subnet_gateway(subnet)?;
    let mut kept = None;
    let mut taken = Vec::new();
    for e in resources.values() {
        if let Some(a) = held_in(e, subnet_id) {
            if e.request.id == own {
                kept = Some(a);
            } else {
                taken.push(a);
            }
        }
    }
    let usable = |a: u32| cidr.contains(a) && a != cidr.net && a != cidr.last() && a != gateway;
    let address = if wanted.is_empty() {
        match kept {
            Some(a) => a,
            None => (cidr.net + 1..cidr.last())
                .find(|a| usable(*a) && !taken.contains(a))
                .ok_or_else(|| {
                    status(
                        Code::FailedPrecondition,
                        reasons::IP_POOL_EXHAUSTED,
                        format!("subnet {subnet_id} ({cidr}) has no free address"),
                    )
                })?,
        }
    } else {
        let a = parse_ip(wanted)
            .ok_or_else(|| invalid(format!("{wanted:?} is not an IPv4 address")))?;
        if !usable(a) {
            return Err(invalid(format!(
                "{wanted} is not a guest address of {cidr}"
            )));
        }
        if taken.contains(&a) {
            return Err(invalid(format!("{wanted} is already taken in {subnet_id}")));
        }
        a
    };
    Ok(Place {
        vpc: subnet.vpc.clone(),
        gateway: Ipv4Addr::from(gateway),
        prefix: cidr.prefix,
        address: Ipv4Addr::from(address),
    })
}

/// The VPC of a subnet id.
pub(super) fn vpc_of_subnet<'a>(resources: &'a Resources, subnet: &str) -> Option<&'a str> {
    QemuDriver::get_entry(resources, K::Subnet, subnet)
        .and_then(subnet_spec)
        .map(|s| s.vpc.as_str())
}

/// A VM NIC in a VPC.
struct NicIn<'a> {
    tap: String,
    address: Ipv4Addr,
    /// Its subnet's gateway.
    gateway: Option<Ipv4Addr>,
    groups: &'a [String],
}

/// Every VM NIC in `vpc`.
fn nics_in<'a>(resources: &'a Resources, vpc: &str) -> Vec<NicIn<'a>> {
    resources
        .values()
        .filter_map(|e| {
            let Some(Spec::Vm(vm)) = spec_of(&e.request) else {
                return None;
            };
            let nic = vm.nics.first()?;
            let subnet = QemuDriver::get_entry(resources, K::Subnet, &nic.subnet)
                .and_then(subnet_spec)
                .filter(|s| s.vpc == vpc)?;
            let address = e.state.outputs.get("private_ip")?.parse().ok()?;
            Some(NicIn {
                tap: net::tap_name(&e.request.id, 0),
                address,
                gateway: subnet_gateway(subnet)
                    .ok()
                    .map(|(_, gw)| Ipv4Addr::from(gw)),
                groups: vm.security_groups.as_slice(),
            })
        })
        .collect()
}

fn proto_of(p: i32) -> (Proto, Option<(u16, u16)>) {
    match v1::Protocol::try_from(p).unwrap_or_default() {
        v1::Protocol::Tcp => (Proto::Tcp, None),
        v1::Protocol::Udp => (Proto::Udp, None),
        v1::Protocol::Icmp => (Proto::Icmp, None),
        v1::Protocol::Http => (Proto::Tcp, Some((80, 80))),
        v1::Protocol::Https => (Proto::Tcp, Some((443, 443))),
        v1::Protocol::Any | v1::Protocol::Unspecified => (Proto::Any, None),
    }
}

/// The firewall ports of `vpc`: each NIC with the rules of its groups, a
/// remote group meaning its members' addresses in this VPC.
fn ports_of(resources: &Resources, vpc: &str) -> Vec<Port> {
    let nics = nics_in(resources, vpc);
    nics.iter()
        .map(|nic| {
            let mut rules = Vec::new();
            for group in nic.groups {
                let Some(Spec::SecurityGroup(sg)) =
                    QemuDriver::get_entry(resources, K::SecurityGroup, group)
                        .and_then(|e| spec_of(&e.request))
                else {
                    continue;
                };
                for r in &sg.rules {
                    let (proto, fixed) = proto_of(r.protocol);
                    let ports = fixed.or_else(|| {
                        let whole = r.port_min == 0 && (r.port_max == 0 || r.port_max == 65_535);
                        (!whole && matches!(proto, Proto::Tcp | Proto::Udp)).then(|| {
                            (
                                u16::try_from(r.port_min).unwrap_or(u16::MAX),
                                u16::try_from(r.port_max).unwrap_or(u16::MAX),
                            )
                        })
                    });
                    let remote = if r.remote_group.is_empty() {
                        vec![r.remote_cidr.clone()]
                    } else {
                        nics.iter()
                            .filter(|n| n.groups.contains(&r.remote_group))
                            .map(|n| n.address.to_string())
                            .collect()
                    };
                    rules.push(Rule {
                        direction: if r.direction == v1::Direction::Egress as i32 {
                            Direction::Egress
                        } else {
                            Direction::Ingress
                        },
                        proto,
                        ports,
                        remote,
                        allow: r.action != v1::RuleAction::Deny as i32,
                        priority: r.priority,
                    });
                }
            }
            Port {
                tap: nic.tap.clone(),
                address: nic.address,
                gateway: nic.gateway,
                rules,
            }
        })
        .collect()
}
