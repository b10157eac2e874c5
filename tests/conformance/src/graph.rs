//! The reference graph of `driver.proto` (the comment above `ErrorInfo`) as the
//! kit builds and probes it: which spec field names which kinds, and the order
//! in which a resource's dependencies must exist before it can be applied.
//!
//! Pure: no calls here. `checks::graph` executes the plans against the driver.

use yunshu_proto::v1::ResourceKind;

/// The part of a spec a reference fills (`SpecFactory::linked_spec` puts the id
/// in the field of the kind being built).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// subnet.vpc
    Vpc,
    /// vm.nics[0].subnet, bare_metal.nics[0].subnet, load_balancer.subnet
    Subnet,
    /// vm.security_groups[0], security rule remote_group
    SecurityGroup,
    /// volume.attach_to, eip.bind_to, listener member target, waf target,
    /// backup target, snapshot source
    Target,
}

/// One kind of reference: a field of `from` naming one of `to`.
#[derive(Debug)]
pub(crate) struct Edge {
    pub from: ResourceKind,
    pub field: &'static str,
    pub slot: Slot,
    /// Acceptable kinds, cheapest to build first (the kit builds the first one
    /// the driver declares; bare metal, which takes a whole host, comes last).
    pub to: &'static [ResourceKind],
    /// The referring spec is invalid without it.
    pub required: bool,
}

use ResourceKind as K;

/// Every reference `driver.proto` lists, in its order.
pub(crate) const EDGES: [Edge; 12] = [
    Edge {
        from: K::Subnet,
        field: "subnet.vpc",
        slot: Slot::Vpc,
        to: &[K::Vpc],
        required: true,
    },
    Edge {
        from: K::Vm,
        field: "vm.nics[].subnet",
        slot: Slot::Subnet,
        to: &[K::Subnet],
        required: false,
    },
    Edge {
        from: K::BareMetal,
        field: "bare_metal.nics[].subnet",
        slot: Slot::Subnet,
        to: &[K::Subnet],
        required: false,
    },
    // A balancer listens on an address of its subnet: a real one has
    // nowhere to serve without it (the controller always names one).
    Edge {
        from: K::LoadBalancer,
        field: "load_balancer.subnet",
        slot: Slot::Subnet,
        to: &[K::Subnet],
        required: true,
    },
    Edge {
        from: K::Vm,
        field: "vm.security_groups[]",
        slot: Slot::SecurityGroup,
        to: &[K::SecurityGroup],
        required: false,
    },
    Edge {
        from: K::SecurityGroup,
        field: "security_group.rules[].remote_group",
        slot: Slot::SecurityGroup,
        to: &[K::SecurityGroup],
        required: false,
    },
    Edge {
        from: K::Volume,
        field: "volume.attach_to",
        slot: Slot::Target,
        to: &[K::Vm, K::BareMetal],
        required: false,
    },
    Edge {
        from: K::Eip,
        field: "eip.bind_to",
        slot: Slot::Target,
        to: &[K::Vm, K::LoadBalancer, K::BareMetal],
        required: false,
    },
    Edge {
        from: K::LoadBalancer,
        field: "load_balancer.listeners[].members[].target",
        slot: Slot::Target,
        to: &[K::Vm, K::BareMetal],
        required: false,
    },
    Edge {
        from: K::WafPolicy,
        field: "waf_policy.targets[]",
        slot: Slot::Target,
        to: &[K::Eip, K::LoadBalancer],
        required: false,
    },
    Edge {
        from: K::BackupPolicy,
        field: "backup_policy.target",
        slot: Slot::Target,
        to: &[K::Volume, K::Vm, K::BareMetal],
        required: true,
    },
    Edge {
        from: K::Snapshot,
        field: "snapshot.source",
        slot: Slot::Target,
        to: &[K::Volume, K::Vm],
        required: true,
    },
];

/// Short lowercase name of a kind, for ids and messages.
pub(crate) fn label(kind: ResourceKind) -> &'static str {
    match kind {
        K::Unspecified => "unspecified",
        K::Vm => "vm",
        K::BareMetal => "bare_metal",
        K::Volume => "volume",
        K::Vpc => "vpc",
        K::Subnet => "subnet",
        K::SecurityGroup => "security_group",
        K::Eip => "eip",
        K::LoadBalancer => "load_balancer",
        K::WafPolicy => "waf_policy",
        K::BackupPolicy => "backup_policy",
        K::Snapshot => "snapshot",
    }
}

/// `vm or bare_metal`.
pub(crate) fn kinds_text(kinds: &[ResourceKind]) -> String {
    kinds
        .iter()
        .map(|k| label(*k))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// What a node's reference points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ref {
    /// An earlier node of the same plan (built first).
    Node(usize),
    /// A fixed id (one the driver does not hold, to provoke a refusal).
    Id(String),
}

/// One resource of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    pub kind: ResourceKind,
    pub links: Vec<(Slot, Ref)>,
}

/// Why a plan cannot be made: a required reference has no kind the driver
/// declares (the check is skipped, not failed: the driver is not wrong).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unplannable(pub String);

fn first_declared(edge: &Edge, declared: &[ResourceKind]) -> Option<ResourceKind> {
    edge.to.iter().copied().find(|k| declared.contains(k))
}

/// Adds `kind` to `nodes` after what it needs: every required reference, and
/// with `full` every optional one the driver's kinds allow; `fixed` fills one
/// edge (by field) with a given reference instead. Returns the node's index.
fn add(
    kind: ResourceKind,
    declared: &[ResourceKind],
    full: bool,
    fixed: Option<(&Edge, Ref)>,
    nodes: &mut Vec<Node>,
) -> Result<usize, Unplannable> {
    let mut links = Vec::new();
    for edge in EDGES.iter().filter(|e| e.from == kind) {
        if let Some((f, r)) = &fixed
            && f.field == edge.field
        {
            links.push((edge.slot, r.clone()));
            continue;
        }
        if !edge.required && !full {
            continue;
        }
        let Some(to) = first_declared(edge, declared) else {
            if edge.required {
                return Err(Unplannable(format!(
                    "a {} needs a {} ({}), and the driver declares none of those kinds",
                    label(kind),
                    kinds_text(edge.to),
                    edge.field
                )));
            }
            continue;
        };
        // Dependencies carry only what they must: chains stay short.
        let at = add(to, declared, false, None, nodes)?;
        links.push((edge.slot, Ref::Node(at)));
    }
    nodes.push(Node { kind, links });
    Ok(nodes.len() - 1)
}

/// The resources to build, in dependency order, for one `kind` resource (the
/// last node) naming everything the driver's kinds allow.
pub(crate) fn lifecycle_plan(
    kind: ResourceKind,
    declared: &[ResourceKind],
) -> Result<Vec<Node>, Unplannable> {
    let mut nodes = Vec::new();
    add(kind, declared, true, None, &mut nodes)?;
    Ok(nodes)
}

/// The edges a driver declaring `declared` can be probed on: both ends
/// declared.
pub(crate) fn probeable(declared: &[ResourceKind]) -> impl Iterator<Item = &'static Edge> + '_ {
    EDGES
        .iter()
        .filter(|e| declared.contains(&e.from) && first_declared(e, declared).is_some())
}

/// For `edge`: the target with its dependencies, then (last) a referrer naming
/// it and nothing optional. Returns the plan and the target's index.
pub(crate) fn in_use_plan(
    edge: &Edge,
    declared: &[ResourceKind],
) -> Result<(Vec<Node>, usize), Unplannable> {
    let to = first_declared(edge, declared).ok_or_else(|| {
        Unplannable(format!(
            "the driver declares no {} for {}",
            kinds_text(edge.to),
            edge.field
        ))
    })?;
    let mut nodes = Vec::new();
    let target = add(to, declared, false, None, &mut nodes)?;
    add(
        edge.from,
        declared,
        false,
        Some((edge, Ref::Node(target))),
        &mut nodes,
    )?;
    Ok((nodes, target))
}

/// For `edge`: a referrer naming `missing` (anything else it must name built
/// first). The referrer is the last node.
pub(crate) fn missing_plan(
    edge: &Edge,
    declared: &[ResourceKind],
    missing: &str,
) -> Result<Vec<Node>, Unplannable> {
    let mut nodes = Vec::new();
    add(
        edge.from,
        declared,
        false,
        Some((edge, Ref::Id(missing.to_owned()))),
        &mut nodes,
    )?;
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ResourceKind; 11] = [
        K::Vm,
        K::BareMetal,
        K::Volume,
        K::Vpc,
        K::Subnet,
        K::SecurityGroup,
        K::Eip,
        K::LoadBalancer,
        K::WafPolicy,
        K::BackupPolicy,
        K::Snapshot,
    ];

    fn kinds(plan: &[Node]) -> Vec<ResourceKind> {
        plan.iter().map(|n| n.kind).collect()
    }

    #[test]
    fn lifecycle_plans_build_dependencies_first() {
        let vm = lifecycle_plan(K::Vm, &ALL).expect("plan");
        assert_eq!(kinds(&vm), [K::Vpc, K::Subnet, K::SecurityGroup, K::Vm]);
        assert_eq!(
            vm[3].links,
            [
                (Slot::Subnet, Ref::Node(1)),
                (Slot::SecurityGroup, Ref::Node(2))
            ]
        );
        assert_eq!(vm[1].links, [(Slot::Vpc, Ref::Node(0))]);
        assert_eq!(
            kinds(&lifecycle_plan(K::LoadBalancer, &ALL).expect("plan")),
            [K::Vpc, K::Subnet, K::Vm, K::LoadBalancer]
        );
        assert_eq!(
            kinds(&lifecycle_plan(K::SecurityGroup, &ALL).expect("plan")),
            [K::SecurityGroup, K::SecurityGroup],
            "a peer group for remote_group"
        );
        assert_eq!(
            kinds(&lifecycle_plan(K::Snapshot, &ALL).expect("plan")),
            [K::Volume, K::Snapshot]
        );
        assert_eq!(
            kinds(&lifecycle_plan(K::Vpc, &ALL).expect("plan")),
            [K::Vpc]
        );
    }

    #[test]
    fn only_declared_kinds_are_built() {
        let declared = [K::Vm, K::Vpc];
        assert_eq!(
            kinds(&lifecycle_plan(K::Vm, &declared).expect("plan")),
            [K::Vm],
            "optional references without a declared kind are left out"
        );
        let err = lifecycle_plan(K::Snapshot, &[K::Snapshot, K::Eip]).expect_err("no source");
        assert!(err.0.contains("snapshot.source"), "{}", err.0);
        assert_eq!(
            kinds(&lifecycle_plan(K::BackupPolicy, &[K::BackupPolicy, K::Vm]).expect("plan")),
            [K::Vm, K::BackupPolicy],
            "the first declared acceptable kind"
        );
        assert_eq!(probeable(&declared).count(), 0);
        assert_eq!(probeable(&ALL).count(), EDGES.len());
    }

    #[test]
    fn refusal_plans() {
        let subnet_vpc = &EDGES[0];
        let (plan, target) = in_use_plan(subnet_vpc, &ALL).expect("plan");
        assert_eq!((kinds(&plan), target), (vec![K::Vpc, K::Subnet], 0));
        let missing = missing_plan(subnet_vpc, &ALL, "nope").expect("plan");
        assert_eq!(kinds(&missing), [K::Subnet]);
        assert_eq!(missing[0].links, [(Slot::Vpc, Ref::Id("nope".into()))]);
        let lb_member = EDGES
            .iter()
            .find(|e| e.field.ends_with("members[].target"))
            .expect("edge");
        let (plan, target) = in_use_plan(lb_member, &ALL).expect("plan");
        assert_eq!(
            (kinds(&plan), target),
            (vec![K::Vm, K::Vpc, K::Subnet, K::LoadBalancer], 0),
            "the LB names the member and the subnet it must have, nothing optional"
        );
    }
}
