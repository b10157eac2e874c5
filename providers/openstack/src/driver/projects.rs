//! Which OpenStack project each yunshu tenant's resources live in.
//!
//! A tenant named by `--tenant-project`/`--tenant-openrc` has a project of its
//! own and a session scoped to it (Keystone tokens, and application
//! credentials, are bound to one project); every other tenant goes to the
//! default project, or is refused when the operator says so. Every call for a
//! resource goes through its tenant's [`Project`], and the observer polls each
//! project with its own session.

use std::collections::BTreeMap;
use std::ops::Deref;

use yunshu_proto::errors::status_with;
use yunshu_proto::tonic::{Code, Status};

use super::Inner;
use crate::cloud::Cloud;
use crate::config::Unmapped;

/// The key of the default project (tenant codes are never empty).
pub(crate) const DEFAULT: &str = "";

/// The reason a tenant with no project is refused.
pub const TENANT_NOT_MAPPED: &str = "TENANT_NOT_MAPPED";

/// Tenant code → project key, without the sessions (so it can be reasoned
/// about, and tested, on its own).
#[derive(Debug, Clone, Default)]
pub(crate) struct TenantMap {
    mapped: std::collections::BTreeSet<String>,
    unmapped: Unmapped,
}

impl TenantMap {
    pub fn new(mapped: impl IntoIterator<Item = String>, unmapped: Unmapped) -> TenantMap {
        TenantMap {
            mapped: mapped.into_iter().collect(),
            unmapped,
        }
    }

    /// The project key `tenant`'s resources live under: its own code when it
    /// has a project, else the default project's — or a refusal.
    pub fn key_of<'t>(&self, tenant: &'t str) -> Result<&'t str, Status> {
        if !tenant.is_empty() && self.mapped.contains(tenant) {
            return Ok(tenant);
        }
        match self.unmapped {
            Unmapped::Default => Ok(DEFAULT),
            Unmapped::Refuse => Err(status_with(
                Code::PermissionDenied,
                TENANT_NOT_MAPPED,
                format!(
                    "openstack: tenant {tenant:?} has no OpenStack project in this cloud; \
                     the provider must map it (--tenant-project or --tenant-openrc) \
                     before it can be served"
                ),
                [("tenant".to_owned(), tenant.to_owned())],
            )),
        }
    }
}

/// The sessions: the default project's and each mapped tenant's.
pub(crate) struct Projects {
    pub default: Cloud,
    pub tenants: BTreeMap<String, Cloud>,
    pub map: TenantMap,
}

impl Projects {
    pub fn session(&self, key: &str) -> Option<&Cloud> {
        if key == DEFAULT {
            Some(&self.default)
        } else {
            self.tenants.get(key)
        }
    }
}

/// The driver as seen from one project: the shared state (through `Deref`)
/// and the session every call for this project's resources goes through.
pub(crate) struct Project<'a> {
    inner: &'a Inner,
    /// This project's session.
    pub cloud: &'a Cloud,
    /// The tenant code it serves, or [`DEFAULT`].
    pub key: &'a str,
}

impl Deref for Project<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        self.inner
    }
}

impl Inner {
    /// The project `tenant`'s resources live in, or why it is refused.
    pub fn project<'a>(&'a self, tenant: &'a str) -> Result<Project<'a>, Status> {
        let key = self.projects.map.key_of(tenant)?;
        // A mapped tenant always has its session (both come from one list at
        // start), so this finds it.
        self.project_by_key(key)
    }

    /// The project a resource was made in (its recorded key), or why the
    /// driver cannot reach it: its mapping was removed since.
    pub fn project_by_key<'a>(&'a self, key: &'a str) -> Result<Project<'a>, Status> {
        let cloud = self.projects.session(key).ok_or_else(|| {
            status_with(
                Code::Unavailable,
                "PROJECT_NOT_CONFIGURED",
                format!(
                    "openstack: the resource lives in the project of tenant {key:?}, which this \
                     driver is no longer configured for; restore its --tenant-project or \
                     --tenant-openrc mapping"
                ),
                [("project".to_owned(), key.to_owned())],
            )
        })?;
        Ok(Project {
            inner: self,
            cloud,
            key,
        })
    }

    /// Every project, the default first: what the observer polls.
    pub fn all_projects(&self) -> Vec<Project<'_>> {
        std::iter::once(DEFAULT)
            .chain(self.projects.tenants.keys().map(String::as_str))
            .filter_map(|k| self.project_by_key(k).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_tenants_have_their_own_key_others_the_default() {
        let map = TenantMap::new(["110105".to_owned()], Unmapped::Default);
        assert_eq!(map.key_of("110105").ok(), Some("110105"));
        assert_eq!(map.key_of("110108").ok(), Some(DEFAULT));
        assert_eq!(map.key_of("").ok(), Some(DEFAULT));
    }

    #[test]
    fn an_unmapped_tenant_is_refused_when_the_operator_says_so() {
        let map = TenantMap::new(["110105".to_owned()], Unmapped::Refuse);
        assert_eq!(map.key_of("110105").ok(), Some("110105"));
        let refused = map.key_of("110108").expect_err("refused");
        assert_eq!(refused.code(), Code::PermissionDenied);
        assert_eq!(
            yunshu_proto::errors::reason(&refused).map(|r| r.reason),
            Some(TENANT_NOT_MAPPED.to_owned())
        );
        assert!(
            refused.message().contains("110108"),
            "{}",
            refused.message()
        );
        // The empty code never matches a mapping.
        assert!(map.key_of("").is_err());
    }
}
