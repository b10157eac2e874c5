//! The driver's configuration file (TOML, or JSON when the path ends in
//! `.json`): BMC endpoints and what Redfish does not report about their
//! systems.
//!
//! A BMC password is read from a file (`password_file`) or an environment
//! variable (`password_env`), never from the file itself or the command line,
//! where it would end up in shell histories and `ps`; it is held in a
//! [`Secret`] whose `Debug` prints nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("BMC {bmc}: {message}")]
    Bmc { bmc: String, message: String },
    #[error("image {image:?}: {message}")]
    Image { image: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// A password: never printed, never serialised.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that sends it to the BMC.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the driver keeps its key, certificate and resources.
    pub state_dir: PathBuf,
    /// How often unconverged servers are polled (power state), ms.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// How long a ForceOff may take to show in `PowerState` on delete
    /// before the server's message and a warning call it late, s: BMCs
    /// apply resets late (sushy's fake driver 1–11 s on purpose).
    #[serde(default = "default_power_timeout")]
    pub power_timeout_s: u64,
    /// Image name, as orders carry it (`kylin-v10`), → the URL the BMC
    /// fetches as virtual media. An image not here is refused.
    #[serde(default)]
    pub images: BTreeMap<String, String>,
    pub bmcs: Vec<BmcConfig>,
}

fn default_poll_ms() -> u64 {
    1000
}

fn default_power_timeout() -> u64 {
    60
}

/// One BMC (or one Redfish aggregator) and the systems behind it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BmcConfig {
    /// Short name, the prefix of its hosts' ids (`<name>-<system id>`).
    pub name: String,
    /// `https://bmc.example:443` (the service root is `<url>/redfish/v1`).
    pub url: String,
    pub username: String,
    /// File holding the password (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// PEM of the CA the BMC's certificate chains to (BMCs mostly have
    /// self-signed ones); without it the system's roots are used. There is
    /// no switch to turn verification off.
    #[serde(default)]
    pub ca_pem: Option<PathBuf>,
    /// What every system of this BMC is, unless `systems` says otherwise.
    #[serde(flatten)]
    pub defaults: SystemFacts,
    /// Per Redfish system id: overrides of `defaults`. Systems of the BMC not
    /// listed here are served with the defaults.
    #[serde(default)]
    pub systems: BTreeMap<String, SystemOverride>,
    /// Serve only the systems listed in `systems` (a BMC shared with
    /// machines yunshu must not touch).
    #[serde(default)]
    pub only_listed: bool,
}

/// What Redfish does not say (or not reliably) about a system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemFacts {
    pub zone: String,
    pub network_area: String,
    /// `gov_extranet` (政务外网区), `internet` (互联网区) or `other` (专线,
    /// also spelt `dedicated` as in the simulator's files).
    #[serde(default = "default_area_kind")]
    pub network_area_kind: String,
    /// `x86_64`, `arm64` or `c86`.
    #[serde(default = "default_arch")]
    pub arch: String,
    /// Hardware model as orders name it; when empty, Redfish's `Model`.
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub cpu_model: String,
    pub clock_mhz: u32,
}

fn default_area_kind() -> String {
    "gov_extranet".to_owned()
}

fn default_arch() -> String {
    "x86_64".to_owned()
}

/// Per-system overrides.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemOverride {
    pub zone: Option<String>,
    pub network_area: Option<String>,
    pub network_area_kind: Option<String>,
    pub arch: Option<String>,
    pub model: Option<String>,
    pub cpu_model: Option<String>,
    pub clock_mhz: Option<u32>,
}

impl BmcConfig {
    /// The facts of system `id`: the defaults with its overrides.
    pub fn facts(&self, id: &str) -> SystemFacts {
        let mut f = self.defaults.clone();
        if let Some(o) = self.systems.get(id) {
            let set = |dst: &mut String, src: &Option<String>| {
                if let Some(v) = src {
                    dst.clone_from(v);
                }
            };
            set(&mut f.zone, &o.zone);
            set(&mut f.network_area, &o.network_area);
            set(&mut f.network_area_kind, &o.network_area_kind);
            set(&mut f.arch, &o.arch);
            set(&mut f.model, &o.model);
            set(&mut f.cpu_model, &o.cpu_model);
            if let Some(c) = o.clock_mhz {
                f.clock_mhz = c;
            }
        }
        f
    }

    /// The password, from its file or variable.
    pub fn password(&self) -> Result<Secret, ConfigError> {
        let bmc = |message: String| ConfigError::Bmc {
            bmc: self.name.clone(),
            message,
        };
        match (&self.password_file, &self.password_env) {
            (Some(path), None) => std::fs::read_to_string(path)
                .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
                .map_err(|e| bmc(format!("password file {}: {e}", path.display()))),
            (None, Some(var)) => std::env::var(var)
                .map(Secret::new)
                .map_err(|_| bmc(format!("environment variable {var} is not set"))),
            _ => Err(bmc(
                "give exactly one of password_file and password_env".to_owned()
            )),
        }
    }

    /// The CA PEM, if configured.
    pub fn ca_pem(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        self.ca_pem
            .as_ref()
            .map(|p| {
                std::fs::read(p).map_err(|e| ConfigError::Bmc {
                    bmc: self.name.clone(),
                    message: format!("CA file {}: {e}", p.display()),
                })
            })
            .transpose()
    }
}

/// Architecture names of the configuration → protocol values.
pub fn parse_arch(text: &str) -> Option<yunshu_proto::v1::Architecture> {
    use yunshu_proto::v1::Architecture as A;
    match text {
        "x86_64" => Some(A::X8664),
        "arm64" | "aarch64" => Some(A::Arm64),
        "c86" => Some(A::C86),
        _ => None,
    }
}

/// Network area kinds of the configuration → protocol values.
pub fn parse_area_kind(text: &str) -> Option<yunshu_proto::v1::NetworkAreaKind> {
    use yunshu_proto::v1::NetworkAreaKind as K;
    match text {
        "gov_extranet" => Some(K::GovExtranet),
        "internet" => Some(K::Internet),
        "other" | "dedicated" => Some(K::Other),
        _ => None,
    }
}

impl Config {
    /// Reads and checks `path` (JSON when it ends in `.json`, else TOML).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let json = path.extension().is_some_and(|e| e == "json");
        let config = Config::parse(&text, json).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        config.check()?;
        Ok(config)
    }

    /// Parses without checking (tests, and `load`).
    pub fn parse(text: &str, json: bool) -> Result<Config, String> {
        if json {
            serde_json::from_str(text).map_err(|e| e.to_string())
        } else {
            // toml's Display quotes the offending line: a password written
            // into the file by mistake (`password = "…"`, refused as an
            // unknown field) would land in the log. Line number and message
            // only.
            toml::from_str(text).map_err(|e| {
                let line = e
                    .span()
                    .map(|s| text.get(..s.start).unwrap_or(text).lines().count().max(1));
                match line {
                    Some(line) => format!("line {line}: {}", e.message()),
                    None => e.message().to_owned(),
                }
            })
        }
    }

    /// Refuses what would fail later, at the first order: unknown
    /// architectures or area kinds, clocks the controller refuses, duplicate
    /// BMC names, image URLs a BMC cannot fetch, both or neither password
    /// source.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.bmcs.is_empty() {
            return Err(ConfigError::Invalid("no BMC configured".to_owned()));
        }
        let mut names = std::collections::BTreeSet::new();
        for b in &self.bmcs {
            let bmc = |message: String| ConfigError::Bmc {
                bmc: b.name.clone(),
                message,
            };
            if b.name.is_empty()
                || !b
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(bmc("name may hold only letters, digits, '-' and '_'".into()));
            }
            if !names.insert(b.name.clone()) {
                return Err(bmc("configured twice".to_owned()));
            }
            // The password (basic auth) or a session token goes with every
            // request: never in clear text.
            if !b.url.starts_with("https://") {
                return Err(bmc(format!("url {:?} is not https", b.url)));
            }
            if b.password_file.is_some() == b.password_env.is_some() {
                return Err(bmc(
                    "give exactly one of password_file and password_env".to_owned()
                ));
            }
            let ids = std::iter::once(None).chain(b.systems.keys().map(Some));
            for id in ids {
                let f = id.map_or_else(|| b.defaults.clone(), |id| b.facts(id));
                let what = id.map_or_else(|| "defaults".to_owned(), |id| format!("system {id}"));
                let arch = parse_arch(&f.arch)
                    .ok_or_else(|| bmc(format!("{what}: unknown arch {:?}", f.arch)))?;
                parse_area_kind(&f.network_area_kind).ok_or_else(|| {
                    bmc(format!(
                        "{what}: network_area_kind {:?} is not gov_extranet, internet or other",
                        f.network_area_kind
                    ))
                })?;
                // The protocol's floor (proto/README.md, GetInventory).
                let floor = if arch == yunshu_proto::v1::Architecture::Arm64 {
                    2400
                } else {
                    2200
                };
                if f.clock_mhz < floor {
                    return Err(bmc(format!(
                        "{what}: clock_mhz {} is below the {floor} MHz the controller requires",
                        f.clock_mhz
                    )));
                }
                if f.zone.is_empty() || f.network_area.is_empty() {
                    return Err(bmc(format!("{what}: zone and network_area are required")));
                }
            }
        }
        for (image, url) in &self.images {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Image {
                    image: image.clone(),
                    message: format!("{url:?} is not an http(s) URL a BMC can fetch"),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
state_dir = "/var/lib/yunshu-redfish"
[images]
"kylin-v10" = "http://media.example/kylin.iso"

[[bmcs]]
name = "rack1"
url = "https://10.0.0.5"
username = "admin"
password_env = "RACK1_PASS"
zone = "bj-1"
network_area = "bj-1-gov"
model = "R4900 G5"
clock_mhz = 2600

[bmcs.systems."sys-2"]
model = "TaiShan 200 2280"
arch = "arm64"
"#;

    fn check(text: &str, json: bool) -> Result<Config, String> {
        let c = Config::parse(text, json)?;
        c.check().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn toml_with_defaults_and_overrides() {
        let c = check(TOML, false).expect("valid");
        assert_eq!(c.poll_interval_ms, 1000);
        let b = &c.bmcs[0];
        assert_eq!(b.facts("sys-1").model, "R4900 G5");
        assert_eq!(b.facts("sys-1").arch, "x86_64");
        assert_eq!(b.facts("sys-1").network_area_kind, "gov_extranet");
        let s2 = b.facts("sys-2");
        assert_eq!(
            (s2.model.as_str(), s2.arch.as_str()),
            ("TaiShan 200 2280", "arm64")
        );
        assert_eq!(s2.zone, "bj-1");
    }

    #[test]
    fn json_is_accepted_too() {
        let json = r#"{"state_dir": "s", "images": {},
            "bmcs": [{"name": "b", "url": "https://127.0.0.1:48000", "username": "u",
                      "password_file": "/nonexistent", "zone": "z", "network_area": "a",
                      "clock_mhz": 2400}]}"#;
        let c = check(json, true).expect("valid");
        assert_eq!(c.bmcs[0].defaults.arch, "x86_64");
        // The file is read only when the password is needed.
        let err = c.bmcs[0].password().expect_err("no such file");
        assert!(err.to_string().contains("/nonexistent"), "{err}");
    }

    #[test]
    fn refusals() {
        let cases = [
            (
                TOML.replace("password_env = \"RACK1_PASS\"", ""),
                "exactly one",
            ),
            (
                TOML.replace("clock_mhz = 2600", "clock_mhz = 1800"),
                "below",
            ),
            (
                TOML.replace("arch = \"arm64\"", "arch = \"mips\""),
                "unknown arch",
            ),
            (
                TOML.replace("http://media.example", "nfs://media.example"),
                "not an http(s) URL",
            ),
            (TOML.replace("https://10.0.0.5", "10.0.0.5"), "not https"),
            (
                TOML.replace("https://10.0.0.5", "http://10.0.0.5"),
                "not https",
            ),
            (
                TOML.replace("username", "user_name"),
                "missing field `username`",
            ),
        ];
        for (text, want) in cases {
            let err = check(&text, false).expect_err(want);
            assert!(err.contains(want), "{want}: {err}");
        }
        // arm64 needs 2400 MHz: the override inherits 2600, fine; 2300 is not.
        let arm = TOML.replace("arch = \"arm64\"", "arch = \"arm64\"\nclock_mhz = 2300");
        assert!(
            check(&arm, false)
                .expect_err("arm64 floor")
                .contains("2400")
        );
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let c = check(include_str!("../examples/redfish.toml"), false).expect("example");
        assert_eq!(c.bmcs.len(), 2);
        assert_eq!(
            c.bmcs[0].facts("System.Embedded.2").model,
            "H3C UniServer R4900 G5 (GPU)"
        );
    }

    #[test]
    fn a_password_written_into_the_file_is_refused_without_being_repeated() {
        let text = TOML.replace(
            "password_env = \"RACK1_PASS\"",
            "password = \"hunter2-in-the-file\"",
        );
        let err = check(&text, false).expect_err("unknown field");
        assert!(err.contains("password"), "{err}");
        assert!(!err.contains("hunter2"), "the password was repeated: {err}");
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "hunter2");
    }
}
