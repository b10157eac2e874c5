//! The driver against the test BMC of `tests/redfish` (sushy-tools over
//! libvirt), without a controller: provision a system, power it off and on
//! through `stopped`, restart the driver (it adopts the server from its
//! state directory), refuse a second server on the same system, switch it
//! off behind the driver's back (it is switched on again), release.
//!
//! Needs `tests/redfish/up` (scripts/test runs it); fails, not skips,
//! without it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use yunshu_driver_sdk::{Driver, EventLog, reasons};
use yunshu_proto::v1;
use yunshu_redfish::redfish::{Bmc, Power};
use yunshu_redfish::{Config, RedfishDriver};

struct Env {
    vars: std::collections::HashMap<String, String>,
}

impl Env {
    fn load() -> Env {
        let home = std::env::var_os("YUNSHU_RF_HOME").map_or_else(
            || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/yunshu-redfish"),
            PathBuf::from,
        );
        let path = home.join("env");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the test BMC is not up ({}: {e}): run `tests/redfish/up` first",
                path.display()
            )
        });
        let vars = text
            .lines()
            .flat_map(|l| l.trim_start_matches("export ").split_whitespace())
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Env { vars }
    }

    fn get(&self, k: &str) -> &str {
        self.vars
            .get(k)
            .unwrap_or_else(|| panic!("no {k}: run `tests/redfish/up` again"))
    }

    fn config(&self, dir: &Path) -> Config {
        let pass = dir.join("bmc.pass");
        std::fs::write(&pass, self.get("REDFISH_PASSWORD")).expect("password file");
        let text = format!(
            r#"state_dir = {dir:?}
poll_interval_ms = 500
[images]
"kylin-v10" = {media:?}
[[bmcs]]
name = "lab"
url = {url:?}
username = {user:?}
password_file = {pass:?}
ca_pem = {ca:?}
zone = "rack-lab"
network_area = "rack-lab-gov"
model = "QEMU-i440fx-TCG"
clock_mhz = 2400
"#,
            dir = dir.display().to_string(),
            media = self.get("REDFISH_MEDIA_URL"),
            url = self.get("REDFISH_URL"),
            user = self.get("REDFISH_USER"),
            pass = pass.display().to_string(),
            ca = self.get("REDFISH_CACERT"),
        );
        let path = dir.join("redfish.toml");
        std::fs::write(&path, text).expect("config");
        Config::load(&path).expect("config")
    }

    fn bmc(&self) -> Bmc {
        let ca = std::fs::read(self.get("REDFISH_CACERT")).expect("CA");
        Bmc::new(
            "check",
            self.get("REDFISH_URL"),
            self.get("REDFISH_USER"),
            yunshu_redfish::config::Secret::new(self.get("REDFISH_PASSWORD")),
            Some(&ca),
        )
        .expect("client")
    }
}

fn request(
    kind: v1::ResourceKind,
    id: &str,
    generation: u64,
    spec: v1::resource_spec::Spec,
    host: &str,
) -> v1::ApplyRequest {
    v1::ApplyRequest {
        kind: kind as i32,
        id: id.to_owned(),
        generation,
        idempotency_key: format!("{id}@{generation}"),
        spec: Some(v1::ResourceSpec { spec: Some(spec) }),
        placement: Some(v1::Placement {
            zone: "rack-lab".into(),
            network_area: "rack-lab-gov".into(),
            host: host.to_owned(),
            ..Default::default()
        }),
        tenant: "110105".into(),
    }
}

fn server(stopped: bool) -> v1::resource_spec::Spec {
    v1::resource_spec::Spec::BareMetal(v1::BareMetalSpec {
        arch: v1::Architecture::X8664 as i32,
        model: "QEMU-i440fx-TCG".into(),
        image: "kylin-v10".into(),
        nics: vec![v1::Nic {
            subnet: "sn".into(),
            ip: String::new(),
        }],
        stopped,
    })
}

async fn wait_phase(d: &RedfishDriver, id: &str, generation: u64, phase: v1::Phase) -> Duration {
    let started = Instant::now();
    loop {
        let s = d
            .get(v1::ResourceKind::BareMetal, id)
            .await
            .expect("get")
            .expect("exists");
        if s.phase == phase as i32 && s.observed_generation == generation {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not {phase:?} at {generation}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_is_provisioned_power_cycled_adopted_after_restart_and_released() {
    let env = Env::load();
    let dir = tempfile::tempdir().expect("tempdir");
    let driver = RedfishDriver::open(env.config(dir.path()), EventLog::new(1000).sink())
        .await
        .expect("open");
    let inv = driver.inventory().await.expect("inventory");
    assert_eq!(inv.hosts.len(), 2, "{inv:?}");
    assert!(
        inv.hosts
            .iter()
            .all(|h| h.state == v1::HostState::Up as i32 && h.memory_mib >= 1024)
    );
    let host = inv.hosts[0].id.clone();
    use v1::ResourceKind as K;
    use v1::resource_spec::Spec;
    driver
        .apply(&request(
            K::Vpc,
            "vpc",
            1,
            Spec::Vpc(v1::VpcSpec {
                cidr: "10.9.0.0/16".into(),
            }),
            "",
        ))
        .await
        .expect("vpc");
    driver
        .apply(&request(
            K::Subnet,
            "sn",
            1,
            Spec::Subnet(v1::SubnetSpec {
                vpc: "vpc".into(),
                cidr: "10.9.1.0/24".into(),
                gateway: String::new(),
            }),
            "",
        ))
        .await
        .expect("subnet");

    // Provision.
    let s = driver
        .apply(&request(K::BareMetal, "bm", 1, server(false), &host))
        .await
        .expect("apply");
    assert_eq!(s.outputs["private_ip"], "10.9.1.2");
    let running = wait_phase(&driver, "bm", 1, v1::Phase::Running).await;
    println!("apply -> RUNNING: {:.1} s", running.as_secs_f64());
    // A second server on the same system is refused.
    let err = driver
        .apply(&request(K::BareMetal, "bm-2", 1, server(false), &host))
        .await
        .expect_err("held");
    let reason = yunshu_proto::errors::reason(&err).expect("reason").reason;
    assert_eq!(reason, reasons::PLACEMENT_INVALID, "{err:?}");
    // The subnet it names cannot go.
    let err = driver.delete(K::Subnet, "sn").await.expect_err("in use");
    assert_eq!(
        yunshu_proto::errors::reason(&err).expect("reason").reason,
        reasons::RESOURCE_IN_USE
    );

    // Power off through `stopped`, then restart the driver: it adopts.
    driver
        .apply(&request(K::BareMetal, "bm", 2, server(true), &host))
        .await
        .expect("stop");
    let stopped = wait_phase(&driver, "bm", 2, v1::Phase::Stopped).await;
    println!("stopped=true -> STOPPED: {:.1} s", stopped.as_secs_f64());
    drop(driver);
    let driver = RedfishDriver::open(env.config(dir.path()), EventLog::new(1000).sink())
        .await
        .expect("reopen");
    assert_eq!(
        driver.held_hosts().await.get(&host).map(String::as_str),
        Some("bm")
    );
    driver
        .apply(&request(K::BareMetal, "bm", 3, server(false), &host))
        .await
        .expect("start");
    let again = wait_phase(&driver, "bm", 3, v1::Phase::Running).await;
    println!("stopped=false -> RUNNING: {:.1} s", again.as_secs_f64());

    // Switched off behind the driver's back: driven back on.
    let bmc = env.bmc();
    let system = bmc
        .systems()
        .await
        .expect("systems")
        .into_iter()
        .find(|s| host.ends_with(&s.id))
        .expect("system");
    bmc.reset(&system, "ForceOff").await.expect("force off");
    let started = Instant::now();
    // Only a system seen Off and then On again proves the repair: a
    // ForceOff the BMC applies late would otherwise pass unrepaired.
    let mut seen_off = false;
    loop {
        let s = driver
            .get(K::BareMetal, "bm")
            .await
            .expect("get")
            .expect("exists");
        let now = bmc.system(&system.uri).await.expect("system").power;
        seen_off |= now == Power::Off;
        if seen_off && s.phase == v1::Phase::Running as i32 && now == Power::On {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not repaired: {s:?} {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "powered off behind its back -> On again: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Release. The delete sends ForceOff and answers at once, DELETING,
    // while the BMC still says On (it used to wait for PowerState Off, up to
    // power_timeout_s — longer than the controller waits for a call); the
    // poller finishes the release.
    let started = Instant::now();
    let first = driver.delete(K::BareMetal, "bm").await.expect("delete");
    let answered = started.elapsed();
    assert_eq!(first.expect("existed").phase, v1::Phase::Deleting as i32);
    loop {
        if driver.get(K::BareMetal, "bm").await.expect("get").is_none() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "not released: {:?}",
            driver.get(K::BareMetal, "bm").await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "release: delete answered in {:.2} s, released {:.1} s",
        answered.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        driver
            .delete(K::BareMetal, "bm")
            .await
            .expect("again")
            .is_none(),
        "deleting what is gone is not an error"
    );
    assert_eq!(driver.free_hosts().await.len(), 2);
    let system = bmc
        .systems()
        .await
        .expect("systems")
        .into_iter()
        .find(|s| host.ends_with(&s.id))
        .expect("system");
    assert_eq!(system.power, Power::Off);
    assert_eq!(system.boot_target, "Hdd");
    assert!(!bmc.cd(&system).await.expect("cd").inserted);
    driver.delete(K::Subnet, "sn").await.expect("subnet");
    driver.delete(K::Vpc, "vpc").await.expect("vpc");
}
