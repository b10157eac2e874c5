//! VPCs, subnets and security groups on a rack that has no switch or
//! firewall the driver could program.
//!
//! Declaring them is what lets the controller's orders (which always make a
//! VPC, subnets and a `default` security group beside the servers) land on
//! this provider; what the driver does with them is real but limited, and
//! says so:
//! - a VPC is an address plan: its CIDR is checked;
//! - a subnet is a range of it: checked inside its VPC, not overlapping its
//!   siblings; bare-metal NICs get their addresses from it ([`crate::ipam`]);
//! - a security group's rules are checked and recorded; they are enforced
//!   by the provider's rack switch ACLs, not by this driver, and the group's
//!   message and `enforcement` output say that plainly.

use std::collections::HashMap;

use yunshu_driver_sdk::cidr::Cidr;
use yunshu_proto::tonic::Status;
use yunshu_proto::v1::{self, ResourceKind as K};

use super::{RedfishDriver, Resources, invalid, resolve, spec_of};
use crate::store::Record;

/// What a security group's state says about who enforces it.
pub const SECURITY_GROUP_MESSAGE: &str = "rules recorded; enforced by the provider's rack switch ACLs, not by this driver (a BMC has no firewall)";

fn cidr_of(text: &str, what: &str) -> Result<Cidr, Status> {
    Cidr::parse(text).map_err(|e| invalid(format!("{what}: {e}")))
}

impl RedfishDriver {
    pub(super) async fn apply_network(
        &self,
        request: &v1::ApplyRequest,
    ) -> Result<v1::ResourceState, Status> {
        use v1::resource_spec::Spec;
        let mut resources = self.inner.resources.lock().await;
        let key = (request.kind, request.id.clone());
        let existed = resources.contains_key(&key);
        let mut outputs = HashMap::new();
        let mut message = String::new();
        match request.spec.as_ref().and_then(|s| s.spec.as_ref()) {
            Some(Spec::Vpc(vpc)) => {
                let cidr = cidr_of(&vpc.cidr, "vpc cidr")?;
                // A narrowed VPC must still hold its subnets.
                for r in resources.values() {
                    if let Some(Spec::Subnet(s)) = spec_of(&r.state)
                        && s.vpc == request.id
                        && let Ok(sc) = Cidr::parse(&s.cidr)
                        && !cidr.contains_cidr(&sc)
                    {
                        return Err(invalid(format!(
                            "subnet {} ({sc}) would fall outside {cidr}",
                            r.state.id
                        )));
                    }
                }
                outputs.insert("cidr".to_owned(), cidr.to_string());
            }
            Some(Spec::Subnet(subnet)) => {
                let vpc = resolve(&resources, "vpc", K::Vpc, &subnet.vpc)?;
                let Some(Spec::Vpc(vpc_spec)) = spec_of(&vpc.state) else {
                    return Err(invalid(format!("{} is not a VPC", subnet.vpc)));
                };
                let vpc_cidr = cidr_of(&vpc_spec.cidr, "vpc cidr")?;
                let cidr = cidr_of(&subnet.cidr, "subnet cidr")?;
                if !vpc_cidr.contains_cidr(&cidr) {
                    return Err(invalid(format!(
                        "subnet {cidr} is not inside VPC {} ({vpc_cidr})",
                        subnet.vpc
                    )));
                }
                if cidr.prefix > 30 {
                    return Err(invalid(format!("subnet {cidr} has no room for servers")));
                }
                let gateway = crate::ipam::gateway(&cidr, &subnet.gateway)
                    .filter(|g| cidr.contains(*g))
                    .ok_or_else(|| {
                        invalid(format!(
                            "gateway {:?} is not an address of {cidr}",
                            subnet.gateway
                        ))
                    })?;
                for r in resources.values() {
                    if let Some(Spec::Subnet(other)) = spec_of(&r.state)
                        && r.state.id != request.id
                        && other.vpc == subnet.vpc
                        && Cidr::parse(&other.cidr).is_ok_and(|o| o.overlaps(&cidr))
                    {
                        return Err(invalid(format!(
                            "subnet {cidr} overlaps subnet {} ({}) of the same VPC",
                            r.state.id, other.cidr
                        )));
                    }
                }
                // Addresses already given must stay inside.
                for r in resources.values() {
                    for (k, v) in &r.state.outputs {
                        if k.ends_with(".subnet")
                            && v == &request.id
                            && let Some(ip) = r
                                .state
                                .outputs
                                .get(&k.replace(".subnet", ".ip"))
                                .and_then(|ip| yunshu_driver_sdk::cidr::parse_ip(ip))
                            && !cidr.contains(ip)
                        {
                            return Err(invalid(format!(
                                "{} holds an address of this subnet outside {cidr}",
                                r.state.id
                            )));
                        }
                    }
                }
                outputs.insert("cidr".to_owned(), cidr.to_string());
                outputs.insert("gateway".to_owned(), crate::ipam::show(gateway));
            }
            Some(Spec::SecurityGroup(group)) => {
                for (i, rule) in group.rules.iter().enumerate() {
                    let what = format!("rule {i}");
                    if rule.port_min > rule.port_max || rule.port_max > 65535 {
                        return Err(invalid(format!(
                            "{what}: ports {}-{} are not a range",
                            rule.port_min, rule.port_max
                        )));
                    }
                    if rule.remote_cidr.is_empty() == rule.remote_group.is_empty() {
                        return Err(invalid(format!(
                            "{what}: name exactly one of remote_cidr and remote_group"
                        )));
                    }
                    if !rule.remote_cidr.is_empty() {
                        cidr_of(&rule.remote_cidr, &what)?;
                    }
                    if !rule.remote_group.is_empty() && rule.remote_group != request.id {
                        resolve(
                            &resources,
                            "remote_group",
                            K::SecurityGroup,
                            &rule.remote_group,
                        )?;
                    }
                    if rule.direction == v1::Direction::Unspecified as i32
                        || rule.protocol == v1::Protocol::Unspecified as i32
                        || rule.action == v1::RuleAction::Unspecified as i32
                    {
                        return Err(invalid(format!(
                            "{what}: direction, protocol and action are required"
                        )));
                    }
                }
                outputs.insert("enforcement".to_owned(), "rack-switch-acl".to_owned());
                outputs.insert("rules".to_owned(), group.rules.len().to_string());
                message = SECURITY_GROUP_MESSAGE.to_owned();
            }
            _ => return Err(invalid("not a network spec")),
        }
        let mut state = Self::state_for(request, v1::Phase::Running, &message);
        state.outputs = outputs;
        let change = if existed {
            v1::ChangeType::Updated
        } else {
            v1::ChangeType::Created
        };
        self.commit(
            &mut resources,
            Record {
                state,
                booted: false,
            },
            change,
        )
    }

    /// The subnet `id`'s CIDR and gateway, for a NIC.
    pub(super) fn subnet_range(
        resources: &Resources,
        field: &str,
        id: &str,
    ) -> Result<(Cidr, Option<u32>), Status> {
        let r = resolve(resources, field, K::Subnet, id)?;
        match spec_of(&r.state) {
            Some(v1::resource_spec::Spec::Subnet(s)) => {
                let cidr = cidr_of(&s.cidr, "subnet cidr")?;
                Ok((cidr, crate::ipam::gateway(&cidr, &s.gateway)))
            }
            _ => Err(invalid(format!("{id} is not a subnet"))),
        }
    }
}
