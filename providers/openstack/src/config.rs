//! What the driver is told: where the cloud is, as whom, and how yunshu's
//! names map onto it. Secrets come from the environment or files, never from
//! the command line (visible in `ps`) and never into logs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;

use crate::cloud::{CloudConfigInput, Credentials};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {name} is not set (in the environment or the openrc file)")]
    Missing { what: &'static str, name: String },
    #[error("image map entry {entry:?}: expected ORDER_IMAGE=GLANCE_IMAGE")]
    ImageMap { entry: String },
    #[error("tenant mapping {entry:?}: expected TENANT_CODE={what}")]
    TenantMap { entry: String, what: &'static str },
    #[error("tenant {tenant:?} is mapped twice")]
    TenantTwice { tenant: String },
    #[error(
        "tenant {tenant:?} → project {project:?}: the default credentials are an application \
         credential, which Keystone binds to its own project; give this tenant its own openrc \
         (--tenant-openrc) instead"
    )]
    CannotRescope { tenant: String, project: String },
    #[error("expected `default` or `refuse`, not {given:?}")]
    Unmapped { given: String },
}

/// `OS_*` variables as an openrc file or the environment gives them.
#[derive(Debug, Default, Clone)]
pub struct OsVars(BTreeMap<String, String>);

impl OsVars {
    /// The `OS_*` variables of this process's environment.
    pub fn from_env() -> OsVars {
        OsVars(
            std::env::vars()
                .filter(|(k, _)| k.starts_with("OS_"))
                .collect(),
        )
    }

    /// `export OS_X=value` lines of an openrc file (quotes stripped; anything
    /// else in the file is ignored: it is read, never executed).
    pub fn from_openrc(path: &Path) -> Result<OsVars, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Ok(OsVars::parse(&text))
    }

    pub fn parse(text: &str) -> OsVars {
        let mut vars = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            let line = line.strip_prefix("export ").unwrap_or(line);
            if let Some((k, v)) = line.split_once('=')
                && k.starts_with("OS_")
            {
                let v = v.trim().trim_matches('"').trim_matches('\'');
                vars.insert(k.trim().to_owned(), v.to_owned());
            }
        }
        OsVars(vars)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn need(&self, what: &'static str, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .map(str::to_owned)
            .ok_or_else(|| ConfigError::Missing {
                what,
                name: name.to_owned(),
            })
    }

    /// Keystone v3: an application credential if one is given, else a password.
    pub fn cloud(&self, what: &'static str) -> Result<CloudConfigInput, ConfigError> {
        let auth_url = self.need(what, "OS_AUTH_URL")?;
        let credentials = if let Some(id) = self.get("OS_APPLICATION_CREDENTIAL_ID") {
            Credentials::ApplicationCredential {
                id: id.to_owned(),
                secret: SecretString::from(self.need(what, "OS_APPLICATION_CREDENTIAL_SECRET")?),
            }
        } else {
            let domain = |name: &str, id: &str| {
                self.get(name)
                    .or_else(|| self.get(id))
                    .unwrap_or("default")
                    .to_owned()
            };
            Credentials::Password {
                username: self.need(what, "OS_USERNAME")?,
                user_domain: domain("OS_USER_DOMAIN_NAME", "OS_USER_DOMAIN_ID"),
                password: SecretString::from(self.need(what, "OS_PASSWORD")?),
                project: self.need(what, "OS_PROJECT_NAME")?,
                project_domain: domain("OS_PROJECT_DOMAIN_NAME", "OS_PROJECT_DOMAIN_ID"),
            }
        };
        Ok(CloudConfigInput {
            auth_url,
            region: self.get("OS_REGION_NAME").map(str::to_owned),
            credentials,
        })
    }
}

/// Order image names ("麒麟 V10", "openEuler-22.03-LTS") → Glance image
/// names, from `ORDER=GLANCE` pairs; an unmapped name is looked up in Glance
/// as it is, then the default is used.
pub fn parse_image_map(entries: &[String]) -> Result<BTreeMap<String, String>, ConfigError> {
    entries
        .iter()
        .map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .ok_or_else(|| ConfigError::ImageMap { entry: e.clone() })
        })
        .collect()
}

/// What to do with a tenant no mapping names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unmapped {
    /// Its resources go to the default project (`--openrc`).
    #[default]
    Default,
    /// Its Applies are refused (`PERMISSION_DENIED`, `TENANT_NOT_MAPPED`):
    /// for clouds where every department must have a project of its own.
    Refuse,
}

impl std::str::FromStr for Unmapped {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "default" => Ok(Unmapped::Default),
            "refuse" => Ok(Unmapped::Refuse),
            other => Err(ConfigError::Unmapped {
                given: other.to_owned(),
            }),
        }
    }
}

/// One tenant's own project: the session its resources are made with.
#[derive(Debug, Clone)]
pub struct TenantProject {
    /// The yunshu tenant code (使用单位代码) as the controller sends it.
    pub tenant: String,
    pub cloud: CloudConfigInput,
}

/// `CODE=PROJECT` pairs: each tenant's resources in the named project, as the
/// default credentials' user (password auth: the same user, scoped to that
/// project, which it must be a member of).
pub fn rescoped_projects(
    default: &CloudConfigInput,
    entries: &[String],
) -> Result<Vec<TenantProject>, ConfigError> {
    entries
        .iter()
        .map(|e| {
            let (tenant, project) = pair(e, "PROJECT")?;
            let mut cloud = default.clone();
            match &mut cloud.credentials {
                Credentials::Password { project: p, .. } => *p = project,
                Credentials::ApplicationCredential { .. } => {
                    return Err(ConfigError::CannotRescope { tenant, project });
                }
            }
            Ok(TenantProject { tenant, cloud })
        })
        .collect()
}

/// `CODE=OPENRC_FILE` pairs: each tenant's resources made with the
/// credentials of its own openrc (e.g. an application credential of its
/// project).
pub fn openrc_projects(entries: &[String]) -> Result<Vec<TenantProject>, ConfigError> {
    entries
        .iter()
        .map(|e| {
            let (tenant, file) = pair(e, "OPENRC_FILE")?;
            let cloud = OsVars::from_openrc(Path::new(&file))?.cloud("tenant openrc")?;
            Ok(TenantProject { tenant, cloud })
        })
        .collect()
}

fn pair(entry: &str, what: &'static str) -> Result<(String, String), ConfigError> {
    entry
        .split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .ok_or_else(|| ConfigError::TenantMap {
            entry: entry.to_owned(),
            what,
        })
}

/// A tenant named by two mappings is a configuration mistake, not a choice.
pub fn refuse_twice(projects: &[TenantProject]) -> Result<(), ConfigError> {
    let mut seen = std::collections::BTreeSet::new();
    for p in projects {
        if !seen.insert(p.tenant.as_str()) {
            return Err(ConfigError::TenantTwice {
                tenant: p.tenant.clone(),
            });
        }
    }
    Ok(())
}

/// Everything the driver needs to run.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The default project's session: the resources of tenants with no
    /// project of their own (see `unmapped`), and the cloud-wide reads
    /// (volume types, the external network).
    pub tenant: CloudConfigInput,
    /// Tenants with a project of their own: their resources are made (and
    /// watched) there, with that project's session.
    pub projects: Vec<TenantProject>,
    /// What happens to the resources of a tenant `projects` does not name.
    pub unmapped: Unmapped,
    /// The operator's session for what a project member may not read or do:
    /// Placement, hypervisors and making flavors. `None`: the tenant's.
    pub operator: Option<CloudConfigInput>,
    /// The yunshu zone and network-area ids; a Nova availability zone `az`
    /// becomes zone `<zone_prefix><az>`.
    pub zone_prefix: String,
    pub area_suffix: String,
    pub internet_area_suffix: String,
    pub images: BTreeMap<String, String>,
    /// Glance image used when an order's image is neither mapped nor found.
    pub default_image: String,
    /// The external network floating IPs and router gateways come from.
    pub external_network: String,
    /// Clock rate reported for pools: Nova does not tell it.
    pub clock_mhz: u32,
    /// The architecture of hosts whose Placement traits and hypervisor CPU
    /// info say none (Nova's fake driver, some virt drivers); `None`: such
    /// hosts are not offered.
    pub default_arch: Option<yunshu_proto::v1::Architecture>,
    /// IOPS per disk of the storage classes (Cinder does not tell it without
    /// QoS specs).
    pub iops_per_disk: u32,
    /// The internet uplink sold as EIP bandwidth (Neutron does not know it);
    /// 0: no bandwidth reported.
    pub bandwidth_mbps: u64,
    /// The capacity, in GiB, to plan with for a Cinder backend pool that
    /// states "infinite"; 0: such pools count for nothing (and with no other
    /// pool, no Cinder type is offered).
    pub infinite_storage_gib: u64,
    /// How often OpenStack is polled for changes.
    pub poll_every: Duration,
    /// Where the driver keeps its resource records (`res/` inside), so a
    /// restart still lists what it made and finishes deletions it began;
    /// `None`: in memory only (tests that do not restart).
    pub state_dir: Option<std::path::PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openrc_lines_are_read_not_run() {
        let vars = OsVars::parse(
            "# comment\nexport OS_AUTH_URL=http://k:5000/v3\nexport OS_USERNAME='u'\n\
             OS_PASSWORD=\"p w\"\nexport OS_PROJECT_NAME=p\nexport PATH=/evil\n",
        );
        let cloud = vars.cloud("tenant").expect("complete");
        assert_eq!(cloud.auth_url, "http://k:5000/v3");
        match cloud.credentials {
            Credentials::Password {
                username,
                user_domain,
                ..
            } => {
                assert_eq!(username, "u");
                assert_eq!(user_domain, "default");
            }
            Credentials::ApplicationCredential { .. } => panic!("password expected"),
        }
        assert!(vars.get("PATH").is_none());
    }

    #[test]
    fn a_missing_password_is_named() {
        let vars = OsVars::parse("OS_AUTH_URL=x\nOS_USERNAME=u\nOS_PROJECT_NAME=p\n");
        let err = vars.cloud("tenant").expect_err("no password");
        assert!(err.to_string().contains("OS_PASSWORD"), "{err}");
    }

    fn password_default() -> CloudConfigInput {
        OsVars::parse("OS_AUTH_URL=x\nOS_USERNAME=u\nOS_PASSWORD=p\nOS_PROJECT_NAME=shared\n")
            .cloud("tenant")
            .expect("complete")
    }

    #[test]
    fn a_tenant_project_rescopes_the_default_user() {
        let got = rescoped_projects(&password_default(), &["110105 = dept-110105".to_owned()])
            .expect("ok");
        assert_eq!(got[0].tenant, "110105");
        match &got[0].cloud.credentials {
            Credentials::Password {
                project, username, ..
            } => {
                assert_eq!((project.as_str(), username.as_str()), ("dept-110105", "u"));
            }
            Credentials::ApplicationCredential { .. } => panic!("password expected"),
        }
        assert!(matches!(
            rescoped_projects(&password_default(), &["110105".to_owned()]),
            Err(ConfigError::TenantMap { .. })
        ));
    }

    #[test]
    fn an_application_credential_cannot_be_rescoped() {
        let app = OsVars::parse(
            "OS_AUTH_URL=x\nOS_APPLICATION_CREDENTIAL_ID=i\nOS_APPLICATION_CREDENTIAL_SECRET=s\n",
        )
        .cloud("tenant")
        .expect("complete");
        let err = rescoped_projects(&app, &["110105=dept".to_owned()]).expect_err("refused");
        assert!(err.to_string().contains("--tenant-openrc"), "{err}");
    }

    #[test]
    fn a_tenant_mapped_twice_is_refused() {
        let twice = rescoped_projects(
            &password_default(),
            &["110105=a".to_owned(), "110105=b".to_owned()],
        )
        .expect("parsed");
        assert!(matches!(
            refuse_twice(&twice),
            Err(ConfigError::TenantTwice { .. })
        ));
        assert!("refuse".parse::<Unmapped>().is_ok());
        assert!("drop".parse::<Unmapped>().is_err());
    }

    #[test]
    fn image_map_pairs() {
        let map = parse_image_map(&["麒麟 V10=fake-image".to_owned()]).expect("ok");
        assert_eq!(map.get("麒麟 V10").map(String::as_str), Some("fake-image"));
        assert!(parse_image_map(&["nothing".to_owned()]).is_err());
    }
}
