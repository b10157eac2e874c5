//! The Redfish driver passes the driver conformance kit over real mutual TLS
//! for every kind it declares (VPC, subnet, security group, bare metal),
//! against the test BMC of `tests/redfish`: sushy-tools over libvirt, whose
//! two "bare-metal servers" are QEMU machines that really boot the virtual
//! media. `lifecycle_bare_metal` provisions one, powers it off through
//! `stopped` and on again, and releases it.

mod redfish_env;

use std::sync::Arc;
use std::time::{Duration, Instant};

use redfish_env::{IMAGE, RedfishEnv};
use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, RunningDriver};
use yunshu_proto::v1::ResourceKind as K;
use yunshu_redfish::RedfishDriver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redfish_driver_passes_the_conformance_kit_for_every_kind_it_declares() {
    let env = RedfishEnv::load();
    let state = tempfile::tempdir().expect("tempdir");
    let config = env.config(state.path());
    let controller = Controller::start(Duration::from_secs(3600)).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let redfish = RedfishDriver::open(config, log.sink()).await.expect("open");
    assert_eq!(
        redfish.host_views().iter().filter(|h| h.up).count(),
        2,
        "the test BMC serves two systems"
    );
    let token = controller.token("redfish").await;
    let driver = RunningDriver::start(
        Arc::new(redfish.clone()),
        log,
        &controller.url,
        "redfish",
        Some(token),
    )
    .await;
    let client = driver.client(&controller, "redfish").await;
    let options = yunshu_conformance::Options {
        kinds: vec![K::Vpc, K::SecurityGroup],
        vm_image: IMAGE.to_owned(),
        // Power changes land late on a BMC; machines boot under TCG on a
        // busy 2-core host.
        patience: Duration::from_secs(120),
        call_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let started = Instant::now();
    let report = yunshu_conformance::run(client, &options).await;
    println!("{report}");
    println!("conformance run: {:.1} s", started.elapsed().as_secs_f64());
    assert!(report.passed(), "{report}");
    let run: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.name.starts_with("lifecycle_") && !c.skipped)
        .map(|c| c.name.as_str())
        .collect();
    for k in [
        "lifecycle_vpc",
        "lifecycle_subnet",
        "lifecycle_security_group",
        "lifecycle_bare_metal",
    ] {
        assert!(run.contains(&k), "{k} did not run: {report}");
    }
    // The kit deletes what it made: every system is free again, powered off.
    assert_eq!(redfish.free_hosts().await.len(), 2, "systems left held");
    let bmc = env.bmc();
    for system in bmc.systems().await.expect("systems") {
        assert_eq!(
            system.power,
            yunshu_redfish::redfish::Power::Off,
            "{} left powered",
            system.name
        );
    }
}
