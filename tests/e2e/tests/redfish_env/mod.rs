//! The test BMC of `tests/redfish` (sushy-tools over libvirt + QEMU), as the
//! Redfish driver's tests see it: its settings from `$YUNSHU_RF_HOME/env`
//! (default `~/.cache/yunshu-redfish/env`), a driver configuration for it,
//! and the serial console logs of its two machines.
//!
//! A missing environment is a failure, not a skip: CI brings the BMC up
//! (`scripts/test` runs `tests/redfish/up`), and a run without it must say
//! so.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Image name as orders carry it (`image_for("麒麟 V10")`) and as the
/// conformance kit is told to ask for.
pub const IMAGE: &str = "kylin-v10";
/// What the configuration says the machines are (sushy reports no Model).
pub const MODEL: &str = "QEMU-i440fx-TCG";
pub const ZONE: &str = "rack-lab";
pub const AREA: &str = "rack-lab-gov";
pub const BMC: &str = "lab";

pub struct RedfishEnv {
    pub url: String,
    pub user: String,
    pub password: String,
    pub cacert: PathBuf,
    pub media_url: String,
    pub marker: String,
    pub console_dir: PathBuf,
    pub backend: String,
}

fn home() -> PathBuf {
    std::env::var_os("YUNSHU_RF_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/yunshu-redfish")
        })
}

impl RedfishEnv {
    /// Reads the environment `tests/redfish/up` wrote; panics with what to
    /// do when it is not there.
    pub fn load() -> RedfishEnv {
        let path = home().join("env");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the test BMC is not up ({}: {e}): run `tests/redfish/up` first \
                 (scripts/test does it)",
                path.display()
            )
        });
        let mut vars = HashMap::new();
        for line in text.lines() {
            let line = line.trim().trim_start_matches("export ");
            for pair in line.split_whitespace() {
                if let Some((k, v)) = pair.split_once('=') {
                    vars.insert(k.to_owned(), v.trim_matches('"').to_owned());
                }
            }
        }
        let get = |k: &str| {
            vars.get(k).cloned().unwrap_or_else(|| {
                panic!(
                    "{} has no {k}: run `tests/redfish/up` again",
                    path.display()
                )
            })
        };
        RedfishEnv {
            url: get("REDFISH_URL"),
            user: get("REDFISH_USER"),
            password: get("REDFISH_PASSWORD"),
            cacert: PathBuf::from(get("REDFISH_CACERT")),
            media_url: get("REDFISH_MEDIA_URL"),
            marker: get("REDFISH_MARKER"),
            console_dir: PathBuf::from(get("REDFISH_CONSOLE_DIR")),
            backend: get("REDFISH_BACKEND"),
        }
    }

    /// A driver configuration for this BMC with its state in `state_dir`;
    /// the password goes to a 0600 file there, as an operator would keep it.
    pub fn config(&self, state_dir: &Path) -> yunshu_redfish::Config {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(state_dir).expect("state dir");
        let secret = state_dir.join("bmc.pass");
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&secret)
                .expect("password file");
            f.write_all(self.password.as_bytes()).expect("write");
        }
        let text = format!(
            r#"
state_dir = {state:?}
poll_interval_ms = 500

[images]
{IMAGE:?} = {media:?}

[[bmcs]]
name = {BMC:?}
url = {url:?}
username = {user:?}
password_file = {secret:?}
ca_pem = {ca:?}
zone = {ZONE:?}
network_area = {AREA:?}
network_area_kind = "gov_extranet"
arch = "x86_64"
model = {MODEL:?}
cpu_model = "QEMU TCG (sushy-tools libvirt)"
clock_mhz = 2400
"#,
            state = state_dir.display().to_string(),
            media = self.media_url,
            url = self.url,
            user = self.user,
            secret = secret.display().to_string(),
            ca = self.cacert.display().to_string(),
        );
        let path = state_dir.join("redfish.toml");
        std::fs::write(&path, text).expect("config");
        yunshu_redfish::Config::load(&path).expect("config loads")
    }

    /// A client of the BMC, to check what the driver did.
    pub fn bmc(&self) -> yunshu_redfish::redfish::Bmc {
        let ca = std::fs::read(&self.cacert).expect("CA");
        yunshu_redfish::redfish::Bmc::new(
            "check",
            &self.url,
            &self.user,
            yunshu_redfish::config::Secret::new(self.password.clone()),
            Some(&ca),
        )
        .expect("client")
    }

    pub fn console(&self, domain: &str) -> PathBuf {
        self.console_dir.join(format!("{domain}.log"))
    }
}

/// The console log of a machine from an offset on: what it printed since.
pub fn console_since(path: &Path, offset: u64) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset).unwrap_or(0).min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// The console log's length now (0 if it does not exist yet).
pub fn console_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
