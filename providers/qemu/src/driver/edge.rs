//! Load balancers and public IPs: what the outside sees of a VPC.
//!
//! A balancer is an HAProxy in its VPC's namespace (`crate::lb`) on an
//! address of its subnet (VIP, allocated like a VM's), members by VM id. A
//! public IP is an address of the driver's public pool routed from the
//! driver's public namespace into the VPC through an uplink and mapped onto
//! its target's private address (`crate::firewall::render_nat`: DNAT in,
//! SNAT out for a VM). The public namespace stands for the internet: nothing
//! touches the host's own interfaces.

use std::net::Ipv4Addr;

use yunshu_driver_sdk::cidr::{Cidr, parse_ip};
use yunshu_proto::errors::{reasons, status};
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1::{self, ResourceKind as K, resource_spec::Spec};

use super::network::{address_in, vpc_of_subnet};
use super::{Entry, QemuDriver, Resources, internal, invalid, missing, spec_of};
use crate::firewall::{self, Binding};
use crate::lb::{self, Balance, Check, Listener, Mode, Server};
use crate::{QemuError, net};

/// The public pool (TEST-NET-2, RFC 5737: never routed on the internet, so
/// it cannot shadow a real address even if it leaked).
pub(super) const PUBLIC_CIDR: &str = "198.51.100.0/24";

/// Addresses the pool keeps for itself (network, the first nine, broadcast).
const PUBLIC_FIRST_HOST: u32 = 10;

/// The half of the public pool an area's public IPs come from, and how many
/// it gives out: the government extranet area the lower /25 (from .10), the
/// internet area the upper /25 (from .129).
pub(super) fn public_range(area: &str) -> (String, u32) {
    if area == super::INTERNET_AREA {
        ("198.51.100.128/25".to_owned(), 126)
    } else {
        ("198.51.100.0/25".to_owned(), 127 - PUBLIC_FIRST_HOST)
    }
}

fn lb_spec(request: &v1::ApplyRequest) -> Option<&v1::LoadBalancerSpec> {
    match spec_of(request)? {
        Spec::LoadBalancer(lb) => Some(lb),
        _ => None,
    }
}

fn eip_spec(request: &v1::ApplyRequest) -> Option<&v1::EipSpec> {
    match spec_of(request)? {
        Spec::Eip(e) => Some(e),
        _ => None,
    }
}

fn port(n: u32, what: &str) -> Result<u16, Status> {
    u16::try_from(n)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| invalid(format!("{what} {n} is not a port (1–65535)")))
}

/// The private address a public IP's target answers on, and its VPC.
fn target_of(resources: &Resources, id: &str) -> Option<(String, Ipv4Addr, bool)> {
    let vm = QemuDriver::get_entry(resources, K::Vm, id);
    let balancer = QemuDriver::get_entry(resources, K::LoadBalancer, id);
    let (entry, key, outbound): (&Entry, &str, bool) = match (vm, balancer) {
        (Some(e), _) => (e, "private_ip", true),
        (None, Some(e)) => (e, "vip", false),
        _ => return None,
    };
    let subnet = match spec_of(&entry.request)? {
        Spec::Vm(vm) => vm.nics.first()?.subnet.clone(),
        Spec::LoadBalancer(lb) => lb.subnet.clone(),
        _ => return None,
    };
    let vpc = vpc_of_subnet(resources, &subnet)?.to_owned();
    let address = entry.state.outputs.get(key)?.parse().ok()?;
    Some((vpc, address, outbound))
}

impl QemuDriver {
    fn lb_dir(&self, id: &str) -> std::path::PathBuf {
        self.inner.config.state_dir.join("lbs").join(id)
    }

    /// The driver's public namespace (see `net::public_namespace`).
    pub(super) fn public_ns(&self) -> String {
        net::public_namespace(&self.inner.config.state_dir.display().to_string())
    }

    /// Checks a balancer or public IP against what exists.
    pub(super) fn check_edge(
        &self,
        resources: &Resources,
        request: &v1::ApplyRequest,
    ) -> Result<(), Status> {
        if let Some(lb) = lb_spec(request) {
            if lb.subnet.is_empty() {
                return Err(invalid(
                    "a load balancer needs a subnet to take its address from",
                ));
            }
            if QemuDriver::get_entry(resources, K::Subnet, &lb.subnet).is_none() {
                return Err(missing("subnet", &lb.subnet));
            }
            let mut ports = Vec::new();
            for l in &lb.listeners {
                let p = port(l.port, "listener port")?;
                if ports.contains(&p) {
                    return Err(invalid(format!("two listeners on port {p}")));
                }
                ports.push(p);
                for m in &l.members {
                    port(m.port, "member port")?;
                    if QemuDriver::get_entry(resources, K::Vm, &m.target).is_none() {
                        return Err(missing("vm", &m.target));
                    }
                }
            }
        } else if let Some(eip) = eip_spec(request) {
            // Bound to what exists; mapped once the target has a private
            // address (a VM without a NIC has none yet).
            if !eip.bind_to.is_empty()
                && QemuDriver::get_entry(resources, K::Vm, &eip.bind_to).is_none()
                && QemuDriver::get_entry(resources, K::LoadBalancer, &eip.bind_to).is_none()
            {
                return Err(missing("vm or load_balancer", &eip.bind_to));
            }
        } else {
            return Err(invalid("not a balancer or public IP"));
        }
        Ok(())
    }

    /// Builds a checked balancer or public IP (idempotent, also after a
    /// restart).
    pub(super) async fn build_edge(
        &self,
        resources: &Resources,
        request: &v1::ApplyRequest,
    ) -> Result<v1::ResourceState, Status> {
        let mut state = self.state_of(request, v1::Phase::Running, "");
        if let Some(spec) = lb_spec(request) {
            let place = address_in(resources, &spec.subnet, &request.id, "")?;
            // A balancer moved to another subnet leaves its old address.
            if let Some(old) = QemuDriver::get_entry(resources, K::LoadBalancer, &request.id)
                && let Some(old_vip) = old.state.outputs.get("vip").and_then(|a| parse_ip(a))
                && Ipv4Addr::from(old_vip) != place.address
                && let Some(old_vpc) =
                    lb_spec(&old.request).and_then(|l| vpc_of_subnet(resources, &l.subnet))
            {
                net::remove_local_address(old_vpc, Ipv4Addr::from(old_vip))
                    .await
                    .map_err(internal)?;
            }
            net::add_local_address(&place.vpc, place.address)
                .await
                .map_err(internal)?;
            let listeners = listeners_of(resources, spec);
            let dir = self.lb_dir(&request.id);
            let config = lb::render(place.address, &listeners, &dir.join("admin.sock"));
            let pid = lb::apply(&net::namespace(&place.vpc), &dir, &config)
                .await
                .map_err(internal)?;
            state
                .outputs
                .insert("vip".to_owned(), place.address.to_string());
            state.outputs.insert("pid".to_owned(), pid.to_string());
        } else if let Some(spec) = eip_spec(request) {
            let area = request
                .placement
                .as_ref()
                .map(|p| p.network_area.as_str())
                .unwrap_or_default();
            let address = self.public_address(resources, &request.id, area)?;
            state
                .outputs
                .insert("public_ip".to_owned(), address.to_string());
            if !spec.bind_to.is_empty() {
                state
                    .outputs
                    .insert("bound_to".to_owned(), spec.bind_to.clone());
                if target_of(resources, &spec.bind_to).is_none() {
                    state.message = format!(
                        "{} has no private address yet: mapped when it has one",
                        spec.bind_to
                    );
                }
            }
            state
                .outputs
                .insert("bandwidth_mbps".to_owned(), spec.bandwidth_mbps.to_string());
        }
        Ok(state)
    }

    /// The public address of `id`: the one it holds or the lowest free one
    /// of its area's range.
    fn public_address(
        &self,
        resources: &Resources,
        id: &str,
        area: &str,
    ) -> Result<Ipv4Addr, Status> {
        let (range, _) = public_range(area);
        let pool = Cidr::parse(&range).map_err(invalid)?;
        let first = if pool.net & 0xff == 0 {
            pool.net + PUBLIC_FIRST_HOST
        } else {
            pool.net + 1
        };
        let mut taken = Vec::new();
        for e in resources
            .values()
            .filter(|e| e.request.kind == K::Eip as i32)
        {
            if let Some(a) = e.state.outputs.get("public_ip").and_then(|a| parse_ip(a)) {
                if e.request.id == id {
                    return Ok(Ipv4Addr::from(a));
                }
                taken.push(a);
            }
        }
        (first..pool.last())
            .find(|a| !taken.contains(a))
            .map(Ipv4Addr::from)
            .ok_or_else(|| {
                status(
                    Code::FailedPrecondition,
                    reasons::IP_POOL_EXHAUSTED,
                    format!("the public pool {PUBLIC_CIDR} has no free address"),
                )
            })
    }

    /// Takes a balancer down (its HAProxy, its address); a public IP is
    /// unrouted by the `sync_edges` after the delete.
    pub(super) async fn destroy_edge(
        &self,
        resources: &Resources,
        entry_request: &v1::ApplyRequest,
        outputs: &std::collections::HashMap<String, String>,
    ) -> Result<(), Status> {
        if let Some(spec) = lb_spec(entry_request) {
            let dir = self.lb_dir(&entry_request.id);
            lb::stop(&dir).await.map_err(internal)?;
            if let (Some(vpc), Some(vip)) = (
                vpc_of_subnet(resources, &spec.subnet),
                outputs.get("vip").and_then(|a| a.parse::<Ipv4Addr>().ok()),
            ) {
                net::remove_local_address(vpc, vip)
                    .await
                    .map_err(internal)?;
            }
            tokio::fs::remove_dir_all(&dir)
                .await
                .or_else(super::not_found_ok)
                .map_err(|e| internal(QemuError::io("remove the balancer dir")(e)))?;
        }
        Ok(())
    }

    /// Routes every bound public IP into its VPC and loads each VPC's NAT
    /// table; unroutes what is no longer bound. The public namespace exists
    /// while any public IP is bound and goes with the last one (taking the
    /// uplinks with it).
    pub(super) async fn sync_edges(&self, resources: &Resources) -> Result<(), QemuError> {
        // WAFs first: a public IP's HTTP ports may go to one (`super::waf`).
        let wafs = self.sync_wafs(resources).await?;
        let public = self.public_ns();
        let mut by_vpc: std::collections::BTreeMap<String, Vec<Binding>> = resources
            .values()
            .filter(|e| e.request.kind == K::Vpc as i32)
            .map(|e| (e.request.id.clone(), Vec::new()))
            .collect();
        for e in resources.values() {
            let Some(spec) = eip_spec(&e.request) else {
                continue;
            };
            let Some(public_ip) = e
                .state
                .outputs
                .get("public_ip")
                .and_then(|a| a.parse().ok())
            else {
                continue;
            };
            if let Some((vpc, private, outbound)) = target_of(resources, &spec.bind_to)
                && let Some(list) = by_vpc.get_mut(&vpc)
            {
                list.push(Binding {
                    public: public_ip,
                    private,
                    outbound,
                    waf: wafs
                        .get(&spec.bind_to)
                        .map(|w| (w.address, w.ports.clone())),
                });
            }
        }
        let any = by_vpc.values().any(|b| !b.is_empty());
        if !any {
            for vpc in by_vpc.keys() {
                firewall::apply_nat(&net::namespace(vpc), net::UPLINK, &[]).await?;
            }
            net::delete_namespace(&public).await?;
            return self.reap_wafs(&wafs).await;
        }
        net::create_public(&public).await?;
        for (vpc, bindings) in &by_vpc {
            let ns = net::namespace(vpc);
            if bindings.is_empty() {
                firewall::apply_nat(&ns, net::UPLINK, &[]).await?;
                continue;
            }
            net::add_uplink(vpc, &public).await?;
            // Addresses on the uplink that are no longer bound go.
            for stale in net::uplink_addresses(vpc).await? {
                if !bindings.iter().any(|b| b.public == stale) {
                    net::remove_public_ip(vpc, &public, stale).await?;
                }
            }
            for b in bindings {
                net::add_public_ip(vpc, &public, b.public).await?;
            }
            firewall::apply_nat(&ns, net::UPLINK, bindings).await?;
        }
        self.reap_wafs(&wafs).await
    }
}

/// The HAProxy listeners of a balancer spec: members by their VMs' private
/// addresses (a member without one yet is left out until it has one).
fn listeners_of(resources: &Resources, spec: &v1::LoadBalancerSpec) -> Vec<Listener> {
    spec.listeners
        .iter()
        .map(|l| {
            let protocol = v1::Protocol::try_from(l.protocol).unwrap_or_default();
            let mode = if matches!(protocol, v1::Protocol::Http) {
                Mode::Http
            } else {
                Mode::Tcp
            };
            let balance = if l.algorithm == v1::LbAlgorithm::WeightedLeastConnections as i32 {
                Balance::LeastConnections
            } else {
                Balance::RoundRobin
            };
            let check = l.health_check.as_ref().map(|h| Check {
                http_path: matches!(
                    v1::Protocol::try_from(h.protocol).unwrap_or_default(),
                    v1::Protocol::Http
                )
                .then(|| {
                    if h.path.is_empty() {
                        "/".to_owned()
                    } else {
                        h.path.clone()
                    }
                }),
                port: u16::try_from(h.port).ok().filter(|p| *p > 0),
                interval_s: if h.interval_seconds == 0 {
                    2
                } else {
                    h.interval_seconds
                },
                timeout_s: if h.timeout_seconds == 0 {
                    2
                } else {
                    h.timeout_seconds
                },
                rise: if h.healthy_threshold == 0 {
                    2
                } else {
                    h.healthy_threshold
                },
                fall: if h.unhealthy_threshold == 0 {
                    3
                } else {
                    h.unhealthy_threshold
                },
            });
            let servers = l
                .members
                .iter()
                .filter_map(|m| {
                    let e = QemuDriver::get_entry(resources, K::Vm, &m.target)?;
                    let address = e.state.outputs.get("private_ip")?.parse().ok()?;
                    Some(Server {
                        // HAProxy names: the VM id with anything odd made '_'.
                        name: m
                            .target
                            .chars()
                            .map(|c| {
                                if c.is_ascii_alphanumeric() || c == '-' {
                                    c
                                } else {
                                    '_'
                                }
                            })
                            .collect(),
                        address,
                        port: u16::try_from(m.port).unwrap_or(80),
                        weight: if m.weight == 0 { 1 } else { m.weight },
                    })
                })
                .collect();
            Listener {
                port: u16::try_from(l.port).unwrap_or(80),
                mode,
                balance,
                check,
                sticky: l.session_persistence,
                servers,
            }
        })
        .collect()
}
