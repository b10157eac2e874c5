//! The resources the driver holds, in (kind, id) order for `List`, and the
//! protocol's reference graph over them.

use std::collections::BTreeMap;

use yunshu_proto::errors::{reasons, status_with};
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1::{self, ResourceKind as K};

use yunshu_driver_sdk::refs::references;

/// The OpenStack objects behind one resource.
#[derive(Debug, Clone, Default)]
pub(crate) struct OsIds {
    /// The network, subnet, security group, floating IP or server.
    pub id: String,
    /// A VPC's router; a subnet's VPC router.
    pub router: String,
    /// A subnet's network.
    pub network: String,
    /// A VM's ports, one per NIC in order.
    pub ports: Vec<String>,
    /// Neutron's `revision_number` last seen (0: none yet).
    pub revision: i64,
}

pub(crate) struct Entry {
    pub request: v1::ApplyRequest,
    pub state: v1::ResourceState,
    pub os: OsIds,
    /// Delete accepted: it no longer counts as a dependency.
    pub deleting: bool,
}

impl Entry {
    pub fn spec(&self) -> Option<&v1::resource_spec::Spec> {
        self.request.spec.as_ref().and_then(|s| s.spec.as_ref())
    }
}

type Key = (i32, String);

/// A resource named by an Apply, resolved: the field, its kind and OpenStack ids.
#[derive(Debug, Clone)]
pub(crate) struct Dep {
    pub field: String,
    pub id: String,
    pub kind: K,
    pub os: OsIds,
    pub spec: Option<v1::resource_spec::Spec>,
}

/// The resolved references of one spec, by field.
#[derive(Debug, Clone, Default)]
pub(crate) struct Deps(pub Vec<Dep>);

impl Deps {
    pub fn get(&self, field: &str) -> Option<&Dep> {
        self.0.iter().find(|d| d.field == field)
    }
}

#[derive(Default)]
pub(crate) struct Table {
    entries: BTreeMap<Key, Entry>,
}

fn label(kind: K) -> &'static str {
    match kind {
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
        K::Unspecified => "unspecified",
    }
}

impl Table {
    pub fn get(&self, kind: K, id: &str) -> Option<&Entry> {
        self.entries.get(&(kind as i32, id.to_owned()))
    }

    pub fn get_mut(&mut self, kind: K, id: &str) -> Option<&mut Entry> {
        self.entries.get_mut(&(kind as i32, id.to_owned()))
    }

    pub fn put(&mut self, kind: K, entry: Entry) {
        self.entries
            .insert((kind as i32, entry.request.id.clone()), entry);
    }

    pub fn remove(&mut self, kind: K, id: &str) -> Option<Entry> {
        self.entries.remove(&(kind as i32, id.to_owned()))
    }

    pub fn entries(&self) -> impl Iterator<Item = (K, &Entry)> {
        self.entries
            .iter()
            .map(|((k, _), e)| (K::try_from(*k).unwrap_or(K::Unspecified), e))
    }

    /// `tenant`'s resource (kind, id), unless it is being deleted. Another
    /// tenant's is not there at all: it lives in another project, and
    /// naming it must not even tell that it exists.
    fn live(&self, kind: K, id: &str, tenant: &str) -> Option<&Entry> {
        self.get(kind, id)
            .filter(|e| !e.deleting && e.request.tenant == tenant)
    }

    /// The resources `spec` (of `tenant`) names: a missing (or deleting, or
    /// another tenant's) one is `DEPENDENCY_NOT_FOUND`, one of a kind the
    /// field does not take is `INVALID_SPEC`. A security group may name
    /// itself.
    pub fn resolve(
        &self,
        own_kind: K,
        own_id: &str,
        tenant: &str,
        spec: &v1::resource_spec::Spec,
    ) -> Result<Deps, Status> {
        let mut out = Vec::new();
        for r in references(spec) {
            if own_kind == K::SecurityGroup && r.id == own_id {
                out.push(Dep {
                    field: r.field,
                    id: r.id,
                    kind: own_kind,
                    os: self
                        .get(own_kind, own_id)
                        .map(|e| e.os.clone())
                        .unwrap_or_default(),
                    spec: None,
                });
                continue;
            }
            let found = r
                .kinds
                .iter()
                .find_map(|k| self.live(*k, &r.id, tenant).map(|e| (*k, e)));
            let Some((kind, entry)) = found else {
                let other = super::KINDS
                    .iter()
                    .find(|k| self.live(**k, &r.id, tenant).is_some());
                if let Some(other) = other {
                    return Err(super::invalid(
                        &r.field,
                        format!(
                            "{:?} is a {}; the field names a {}",
                            r.id,
                            label(*other),
                            r.kinds
                                .iter()
                                .map(|k| label(*k))
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ),
                    ));
                }
                return Err(status_with(
                    Code::FailedPrecondition,
                    reasons::DEPENDENCY_NOT_FOUND,
                    format!(
                        "openstack: {}: no {} {:?} (or it is being deleted)",
                        r.field,
                        r.kinds
                            .iter()
                            .map(|k| label(*k))
                            .collect::<Vec<_>>()
                            .join(" or "),
                        r.id
                    ),
                    [
                        ("field".to_owned(), r.field.clone()),
                        ("id".to_owned(), r.id.clone()),
                    ],
                ));
            };
            out.push(Dep {
                field: r.field,
                id: r.id,
                kind,
                os: entry.os.clone(),
                spec: entry.spec().cloned(),
            });
        }
        Ok(Deps(out))
    }

    /// `RESOURCE_IN_USE` if a live resource other than (kind, id) names it.
    pub fn refuse_delete(&self, kind: K, id: &str) -> Result<(), Status> {
        for (other_kind, e) in self.entries() {
            if e.deleting || (other_kind == kind && e.request.id == id) {
                continue;
            }
            let Some(spec) = e.spec() else { continue };
            if let Some(r) = references(spec)
                .into_iter()
                .find(|r| r.id == id && r.kinds.contains(&kind))
            {
                return Err(status_with(
                    Code::FailedPrecondition,
                    reasons::RESOURCE_IN_USE,
                    format!(
                        "openstack: {} {id} is named by {} {} ({}); delete or change that one first",
                        label(kind),
                        label(other_kind),
                        e.request.id,
                        r.field
                    ),
                    [
                        ("used_by".to_owned(), e.request.id.clone()),
                        ("used_by_kind".to_owned(), label(other_kind).to_owned()),
                        ("field".to_owned(), r.field),
                    ],
                ));
            }
        }
        Ok(())
    }

    pub fn list(
        &self,
        kind: Option<K>,
        after: Option<(K, String)>,
        limit: usize,
    ) -> Vec<v1::ResourceState> {
        let after = after.map(|(k, id)| (k as i32, id));
        self.entries
            .iter()
            .filter(|(key, _)| kind.is_none_or(|k| key.0 == k as i32))
            .filter(|(key, _)| after.as_ref().is_none_or(|a| *key > a))
            .take(limit)
            .map(|(_, e)| e.state.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yunshu_proto::v1::resource_spec::Spec;

    fn vpc(id: &str, tenant: &str) -> Entry {
        Entry {
            request: v1::ApplyRequest {
                kind: K::Vpc as i32,
                id: id.to_owned(),
                generation: 1,
                tenant: tenant.to_owned(),
                spec: Some(v1::ResourceSpec {
                    spec: Some(Spec::Vpc(v1::VpcSpec {
                        cidr: "10.0.0.0/16".to_owned(),
                    })),
                }),
                ..Default::default()
            },
            state: v1::ResourceState::default(),
            os: OsIds {
                id: format!("net-{id}"),
                ..Default::default()
            },
            deleting: false,
        }
    }

    fn subnet_of(vpc: &str) -> Spec {
        Spec::Subnet(v1::SubnetSpec {
            vpc: vpc.to_owned(),
            cidr: "10.0.1.0/24".to_owned(),
            gateway: String::new(),
        })
    }

    #[test]
    fn another_tenants_resource_is_not_found_not_used() {
        let mut table = Table::default();
        table.put(K::Vpc, vpc("vpc-a", "110105"));
        let own = table
            .resolve(K::Subnet, "sub-a", "110105", &subnet_of("vpc-a"))
            .expect("its own VPC");
        assert_eq!(
            own.get("subnet.vpc").map(|d| d.os.id.as_str()),
            Some("net-vpc-a")
        );
        // The same name from another tenant: it lives in another project,
        // and the answer must not tell that it exists.
        let refused = table
            .resolve(K::Subnet, "sub-b", "110108", &subnet_of("vpc-a"))
            .expect_err("another tenant's VPC");
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert_eq!(
            yunshu_proto::errors::reason(&refused).map(|r| r.reason),
            Some(reasons::DEPENDENCY_NOT_FOUND.to_owned())
        );
        assert!(
            !refused.message().contains("110105"),
            "{}",
            refused.message()
        );
    }
}
