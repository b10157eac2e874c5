//! The resources the driver holds, in (kind, id) order for `List`, and the
//! protocol's reference graph over them.
//!
//! With a state directory every entry is also a record on disk (the SDK's
//! [`RecordDir`]): what was asked, the OpenStack ids behind it, the project
//! it lives in, and whether it is being deleted. A restarted driver so still lists what it made and
//! finishes the deletions it had begun — a load balancer or volume half-way
//! through its delete would otherwise be forgotten and left in the project.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use yunshu_driver_sdk::records::{self, RecordDir, RecordError};
use yunshu_proto::errors::{reasons, status_with};
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1::{self, ResourceKind as K};

use yunshu_driver_sdk::refs::references;

/// The OpenStack objects behind one resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The project it was made in (a tenant code, or the default project's
    /// key): where it is watched and deleted, whatever the mapping says now.
    pub project: String,
    /// Delete accepted: it no longer counts as a dependency.
    pub deleting: bool,
    /// A delete begun before a restart, not asked of OpenStack again yet: the
    /// next Delete sends it again (it may never have gone out). Not recorded.
    pub resume: bool,
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
    /// Where entries are kept across restarts (`None`: memory only).
    records: Option<RecordDir<OnDisk>>,
}

/// One entry as kept on disk; protocol messages as their wire bytes.
#[derive(Serialize, Deserialize)]
pub(crate) struct OnDisk {
    request: Vec<u8>,
    state: Vec<u8>,
    os: OsIds,
    #[serde(default)]
    project: String,
    #[serde(default)]
    deleting: bool,
}

impl OnDisk {
    fn of(entry: &Entry) -> OnDisk {
        OnDisk {
            request: records::encode(&entry.request),
            state: records::encode(&entry.state),
            os: entry.os.clone(),
            project: entry.project.clone(),
            deleting: entry.deleting,
        }
    }

    fn entry(self) -> Option<Entry> {
        Some(Entry {
            request: records::decode(&self.request)?,
            state: records::decode(&self.state)?,
            os: self.os,
            project: self.project,
            deleting: self.deleting,
            resume: self.deleting,
        })
    }
}

fn save_to(records: Option<&RecordDir<OnDisk>>, entry: &Entry) -> Result<(), Status> {
    match records {
        Some(r) => r
            .save(entry.request.kind, &entry.request.id, &OnDisk::of(entry))
            .map_err(|e| unsaved(&e)),
        None => Ok(()),
    }
}

/// A record that could not be written: the call fails and is retried (what
/// was made in OpenStack is found again by name).
fn unsaved(e: &RecordError) -> Status {
    status_with(
        Code::Unavailable,
        "STATE_NOT_SAVED",
        format!(
            "openstack: the driver's state directory: {}",
            yunshu_driver_sdk::cli::error_chain(e)
        ),
        [],
    )
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
    /// The entries recorded under `state_dir` (none without one).
    pub fn open(state_dir: Option<&Path>) -> Result<Table, RecordError> {
        let Some(dir) = state_dir else {
            return Ok(Table::default());
        };
        let records = RecordDir::open(dir)?;
        let mut entries = BTreeMap::new();
        for entry in records.load(OnDisk::entry)? {
            entries.insert((entry.request.kind, entry.request.id.clone()), entry);
        }
        Ok(Table {
            entries,
            records: Some(records),
        })
    }

    pub fn get(&self, kind: K, id: &str) -> Option<&Entry> {
        self.entries.get(&(kind as i32, id.to_owned()))
    }

    pub fn get_mut(&mut self, kind: K, id: &str) -> Option<&mut Entry> {
        self.entries.get_mut(&(kind as i32, id.to_owned()))
    }

    /// Holds `entry`, on disk first: an entry that cannot be recorded is
    /// not held either.
    pub fn put(&mut self, kind: K, entry: Entry) -> Result<(), Status> {
        save_to(self.records.as_ref(), &entry)?;
        self.entries
            .insert((kind as i32, entry.request.id.clone()), entry);
        Ok(())
    }

    /// Marks (kind, id) as being deleted, recorded before OpenStack is asked
    /// so a restart carries the deletion on; returns the phase it had (for
    /// [`Table::undo_delete`]). Nothing changes when it cannot be recorded.
    pub fn begin_delete(&mut self, kind: K, id: &str) -> Result<i32, Status> {
        let Some(entry) = self.entries.get_mut(&(kind as i32, id.to_owned())) else {
            return Ok(v1::Phase::Deleted as i32);
        };
        let was = (
            entry.deleting,
            entry.state.phase,
            entry.state.updated_unix_ms,
        );
        entry.deleting = true;
        entry.state.phase = v1::Phase::Deleting as i32;
        entry.state.updated_unix_ms = super::now_ms();
        if let Err(e) = save_to(self.records.as_ref(), entry) {
            (
                entry.deleting,
                entry.state.phase,
                entry.state.updated_unix_ms,
            ) = was;
            return Err(e);
        }
        Ok(was.1)
    }

    /// A delete that did not start after all: back to `phase`, and it may be
    /// named again. Held so even when that cannot be recorded (logged): after
    /// a restart the record would still say deleting, and the controller's
    /// next Apply of it writes it afresh.
    pub fn undo_delete(&mut self, kind: K, id: &str, phase: i32) -> Option<&Entry> {
        let entry = self.entries.get_mut(&(kind as i32, id.to_owned()))?;
        entry.deleting = false;
        entry.resume = false;
        entry.state.phase = phase;
        entry.state.updated_unix_ms = super::now_ms();
        if let Err(e) = save_to(self.records.as_ref(), entry) {
            tracing::warn!(id, error = %e.message(), "recording that the delete did not start");
        }
        Some(&*entry)
    }

    /// Forgets (kind, id). A record that cannot be removed is logged: it
    /// comes back after a restart as a resource OpenStack no longer has,
    /// which the observer then reports gone.
    pub fn remove(&mut self, kind: K, id: &str) -> Option<Entry> {
        if let Some(r) = &self.records
            && let Err(e) = r.remove(kind as i32, id)
        {
            tracing::error!(kind = ?kind, id, error = %yunshu_driver_sdk::cli::error_chain(&e), "removing the record");
        }
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
            project: tenant.to_owned(),
            deleting: false,
            resume: false,
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
        table.put(K::Vpc, vpc("vpc-a", "110105")).expect("put");
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

    #[test]
    fn entries_and_a_begun_delete_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut table = Table::open(Some(dir.path())).expect("open");
        table.put(K::Vpc, vpc("vpc-a", "110105")).expect("put");
        table.put(K::Vpc, vpc("vpc-b", "110105")).expect("put");
        table.begin_delete(K::Vpc, "vpc-b").expect("deleting");
        drop(table);

        let mut again = Table::open(Some(dir.path())).expect("reopen");
        let a = again.get(K::Vpc, "vpc-a").expect("vpc-a kept");
        assert_eq!((a.os.id.as_str(), a.deleting), ("net-vpc-a", false));
        assert_eq!(a.request.tenant, "110105");
        let b = again.get(K::Vpc, "vpc-b").expect("vpc-b kept");
        assert!(b.deleting, "the delete that began is carried on");
        assert!(b.resume, "and is asked of OpenStack again");
        assert_eq!(b.project, "110105");
        assert_eq!(b.state.phase, v1::Phase::Deleting as i32);
        assert_eq!(again.list(None, None, 10).len(), 2);

        again.remove(K::Vpc, "vpc-b");
        drop(again);
        let last = Table::open(Some(dir.path())).expect("reopen");
        assert!(last.get(K::Vpc, "vpc-b").is_none());
        assert!(last.get(K::Vpc, "vpc-a").is_some());
    }

    #[test]
    fn an_entry_that_cannot_be_recorded_is_not_held() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut table = Table::open(Some(dir.path())).expect("open");
        // The kind's directory is a file: the record cannot be written.
        std::fs::write(dir.path().join("res/vpc"), b"not a directory").expect("block");
        let refused = table
            .put(K::Vpc, vpc("vpc-a", "110105"))
            .expect_err("unsaved");
        assert_eq!(refused.code(), Code::Unavailable);
        assert!(table.get(K::Vpc, "vpc-a").is_none());
    }
}
