//! The reference graph between resource specs, as `driver.proto` states it
//! above `ErrorInfo`: which fields of a spec name another resource by id, and
//! which kinds that resource may be.
//!
//! The graph is the protocol's, so it lives in the SDK and every driver
//! enforces the same one. Only the graph lives here (pure, spec in,
//! references out); a driver resolves the references against the resources
//! it holds, refuses an Apply naming a missing one (`DEPENDENCY_NOT_FOUND`)
//! or one of the wrong kind (`INVALID_SPEC`), and a Delete of a resource
//! still named (`RESOURCE_IN_USE`) — see the simulator's `rules` and the
//! OpenStack driver's `driver::table`.

use yunshu_proto::v1::ResourceKind as K;
use yunshu_proto::v1::resource_spec::Spec;

/// Kinds a subnet reference may name.
const SUBNET: &[K] = &[K::Subnet];
/// Kinds a security-group reference may name.
const SECURITY_GROUP: &[K] = &[K::SecurityGroup];
/// A compute resource: what a volume attaches to, an LB member is.
const SERVER: &[K] = &[K::Vm, K::BareMetal];

/// One field of a spec that names another resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Where in the spec, e.g. `vm.nics[0].subnet`, for messages and metadata.
    pub field: String,
    pub id: String,
    /// The kinds the named resource may have, in the order they are looked up.
    pub kinds: &'static [K],
}

fn push(out: &mut Vec<Reference>, field: String, id: &str, kinds: &'static [K]) {
    // An empty optional reference (detached volume, unbound EIP, LB without
    // subnet) names nothing; required ones are refused empty by `spec`.
    if !id.is_empty() {
        out.push(Reference {
            field,
            id: id.to_owned(),
            kinds,
        });
    }
}

/// Every resource `spec` names, in field order.
pub fn references(spec: &Spec) -> Vec<Reference> {
    let mut out = Vec::new();
    match spec {
        Spec::Vpc(_) => {}
        Spec::Subnet(s) => push(&mut out, "subnet.vpc".to_owned(), &s.vpc, &[K::Vpc]),
        Spec::Vm(vm) => {
            for (i, nic) in vm.nics.iter().enumerate() {
                push(
                    &mut out,
                    format!("vm.nics[{i}].subnet"),
                    &nic.subnet,
                    SUBNET,
                );
            }
            for (i, sg) in vm.security_groups.iter().enumerate() {
                push(
                    &mut out,
                    format!("vm.security_groups[{i}]"),
                    sg,
                    SECURITY_GROUP,
                );
            }
        }
        Spec::BareMetal(bm) => {
            for (i, nic) in bm.nics.iter().enumerate() {
                push(
                    &mut out,
                    format!("bare_metal.nics[{i}].subnet"),
                    &nic.subnet,
                    SUBNET,
                );
            }
        }
        Spec::SecurityGroup(sg) => {
            for (i, rule) in sg.rules.iter().enumerate() {
                push(
                    &mut out,
                    format!("security_group.rules[{i}].remote_group"),
                    &rule.remote_group,
                    SECURITY_GROUP,
                );
            }
        }
        Spec::Volume(v) => {
            push(
                &mut out,
                "volume.attach_to".to_owned(),
                &v.attach_to,
                SERVER,
            );
            push(
                &mut out,
                "volume.restore_from".to_owned(),
                &v.restore_from,
                &[K::BackupPolicy, K::Snapshot],
            );
        }
        Spec::Eip(e) => push(
            &mut out,
            "eip.bind_to".to_owned(),
            &e.bind_to,
            &[K::Vm, K::BareMetal, K::LoadBalancer],
        ),
        Spec::LoadBalancer(lb) => {
            push(
                &mut out,
                "load_balancer.subnet".to_owned(),
                &lb.subnet,
                SUBNET,
            );
            for (i, l) in lb.listeners.iter().enumerate() {
                for (k, m) in l.members.iter().enumerate() {
                    push(
                        &mut out,
                        format!("load_balancer.listeners[{i}].members[{k}].target"),
                        &m.target,
                        SERVER,
                    );
                }
            }
        }
        Spec::WafPolicy(w) => {
            for (i, t) in w.targets.iter().enumerate() {
                push(
                    &mut out,
                    format!("waf_policy.targets[{i}]"),
                    t,
                    &[K::Eip, K::LoadBalancer],
                );
            }
        }
        Spec::BackupPolicy(b) => push(
            &mut out,
            "backup_policy.target".to_owned(),
            &b.target,
            &[K::Vm, K::BareMetal, K::Volume],
        ),
        Spec::Snapshot(s) => push(
            &mut out,
            "snapshot.source".to_owned(),
            &s.source,
            &[K::Volume, K::Vm],
        ),
    }
    out
}

#[cfg(test)]
mod tests {
    use yunshu_proto::v1;

    use super::*;

    #[test]
    fn every_field_of_the_graph_is_found() {
        let vm = Spec::Vm(v1::VmSpec {
            nics: vec![
                v1::Nic {
                    subnet: "sn-1".into(),
                    ip: String::new(),
                },
                v1::Nic {
                    subnet: "sn-2".into(),
                    ip: String::new(),
                },
            ],
            security_groups: vec!["sg-1".into()],
            ..Default::default()
        });
        let fields: Vec<(String, String)> = references(&vm)
            .into_iter()
            .map(|r| (r.field, r.id))
            .collect();
        assert_eq!(
            fields,
            [
                ("vm.nics[0].subnet".to_owned(), "sn-1".to_owned()),
                ("vm.nics[1].subnet".to_owned(), "sn-2".to_owned()),
                ("vm.security_groups[0]".to_owned(), "sg-1".to_owned()),
            ]
        );
        let lb = Spec::LoadBalancer(v1::LoadBalancerSpec {
            subnet: String::new(),
            listeners: vec![v1::Listener {
                members: vec![v1::Member {
                    target: "bm-1".into(),
                    port: 80,
                    weight: 1,
                }],
                ..Default::default()
            }],
        });
        let refs = references(&lb);
        assert_eq!(refs.len(), 1, "an empty subnet names nothing");
        assert_eq!(refs[0].kinds, [K::Vm, K::BareMetal]);
        let eip = Spec::Eip(v1::EipSpec {
            bandwidth_mbps: 10,
            bind_to: "lb-1".into(),
        });
        assert_eq!(
            references(&eip)[0].kinds,
            [K::Vm, K::BareMetal, K::LoadBalancer]
        );
        assert!(references(&Spec::Vpc(v1::VpcSpec::default())).is_empty());
    }
}
