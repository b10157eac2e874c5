//! Who names whom: the leader's in-memory index of the references between
//! stored resources (`ResourceSpec::references`), both ways, and of which
//! provider holds each stored resource (a driver's watch events and its
//! read-back concern only its own).
//!
//! Why: a resource is applied only once everything it names runs, and deleted
//! only once nothing stored names it any more; when a resource starts running
//! or goes away, the ones waiting on it are woken at once instead of at their
//! next backoff. Scanning a system's resources for every such event would cost
//! a range read per resource; this costs a hash lookup.
//!
//! Kept current by the only writer of resources (materialize writes, the
//! worker's final delete) and rebuilt from the store at start, like the
//! placement index.

use std::collections::{BTreeSet, HashMap};

use yunshu_domain::resource::Resource;
use yunshu_domain::{ProviderId, ResourceId};

#[derive(Debug, Default)]
pub struct Refs {
    /// Every stored resource and the provider it is placed with.
    stored: HashMap<ResourceId, Option<ProviderId>>,
    /// Resource → what its stored spec names (itself excluded).
    names: HashMap<ResourceId, BTreeSet<ResourceId>>,
    /// Resource → the stored resources that name it.
    named_by: HashMap<ResourceId, BTreeSet<ResourceId>>,
}

impl Refs {
    /// Records `res` as stored now (replacing what it named before).
    pub fn record(&mut self, res: &Resource) {
        let id = res.id();
        self.stored
            .insert(id.clone(), res.placement().map(|p| p.provider.clone()));
        let now: BTreeSet<ResourceId> = res
            .spec()
            .references()
            .into_iter()
            .filter(|r| *r != id)
            .cloned()
            .collect();
        self.unlink(id);
        for target in &now {
            self.named_by
                .entry(target.clone())
                .or_default()
                .insert(id.clone());
        }
        if !now.is_empty() {
            self.names.insert(id.clone(), now);
        }
    }

    /// Forgets `id` (its record is gone); returns what it named.
    pub fn forget(&mut self, id: &ResourceId) -> BTreeSet<ResourceId> {
        self.stored.remove(id);
        self.unlink(id)
    }

    /// Whether `id` is a stored resource.
    pub fn is_stored(&self, id: &ResourceId) -> bool {
        self.stored.contains_key(id)
    }

    /// Where a stored resource is placed: `None` if not stored, `Some(None)`
    /// if stored but not placed yet.
    pub fn provider_of(&self, id: &ResourceId) -> Option<Option<&ProviderId>> {
        self.stored.get(id).map(Option::as_ref)
    }

    /// The stored resources placed with `provider`.
    pub fn of_provider(&self, provider: &str) -> Vec<ResourceId> {
        self.stored
            .iter()
            .filter(|(_, p)| p.as_ref().is_some_and(|p| p.as_str() == provider))
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn unlink(&mut self, id: &ResourceId) -> BTreeSet<ResourceId> {
        let before = self.names.remove(id).unwrap_or_default();
        for target in &before {
            if let Some(users) = self.named_by.get_mut(target) {
                users.remove(id);
                if users.is_empty() {
                    self.named_by.remove(target);
                }
            }
        }
        before
    }

    /// The stored resources that name `id`.
    pub fn users(&self, id: &ResourceId) -> Vec<ResourceId> {
        self.named_by
            .get(id)
            .map(|u| u.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use chrono::{TimeZone, Utc};
    use yunshu_domain::resource::{EipSpec, LoadBalancerSpec, ResourceSpec};

    use super::*;

    fn id(s: &str) -> ResourceId {
        ResourceId::new(s).expect("id")
    }

    fn res(name: &str, spec: ResourceSpec) -> Resource {
        Resource::new(
            id(name),
            "110105001".parse().expect("system"),
            None,
            spec,
            Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
                .single()
                .expect("time"),
        )
        .expect("valid")
    }

    fn lb(members: &[&str]) -> ResourceSpec {
        ResourceSpec::LoadBalancer(LoadBalancerSpec {
            subnet: id("subnet-a"),
            listeners: vec![yunshu_domain::resource::Listener {
                protocol: yunshu_domain::resource::ListenerProtocol::Tcp,
                port: yunshu_domain::order_line::Port::new(80).expect("port"),
                backend_port: yunshu_domain::order_line::Port::new(80).expect("port"),
                algorithm: Default::default(),
                health_check: None,
                session_persistence: false,
            }],
            members: members.iter().map(|m| id(m)).collect(),
        })
    }

    #[test]
    fn users_follow_stored_specs_both_ways() {
        let mut refs = Refs::default();
        refs.record(&res("lb-1", lb(&["vm-1", "vm-2"])));
        refs.record(&res(
            "eip-1",
            ResourceSpec::Eip(EipSpec {
                bandwidth_mbps: NonZeroU32::new(5).expect("nz"),
                bound_to: Some(id("lb-1")),
            }),
        ));
        assert_eq!(refs.users(&id("vm-1")), [id("lb-1")]);
        assert_eq!(refs.users(&id("subnet-a")), [id("lb-1")]);
        assert_eq!(refs.users(&id("lb-1")), [id("eip-1")]);
        // The LB drops a member: that VM is free to go.
        refs.record(&res("lb-1", lb(&["vm-2"])));
        assert!(refs.users(&id("vm-1")).is_empty());
        assert_eq!(refs.users(&id("vm-2")), [id("lb-1")]);
        // The EIP goes: it named the LB.
        assert!(refs.is_stored(&id("eip-1")));
        assert_eq!(refs.forget(&id("eip-1")), BTreeSet::from([id("lb-1")]));
        assert!(refs.users(&id("lb-1")).is_empty());
        assert!(!refs.is_stored(&id("eip-1")));
        assert!(refs.of_provider("sim").is_empty(), "none placed");
    }
}
