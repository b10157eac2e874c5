//! The QEMU driver passes the driver conformance kit over real mutual TLS for
//! every kind it declares (VPC, subnet, security group, VM, volume, load
//! balancer, public IP, snapshot, backup policy, and WAF policy when its
//! packages are installed, as they are where the tests run): a real controller
//! bootstraps it, the kit connects with a controller client certificate. The
//! generic checks run on VPCs and security groups (cheap to make many of);
//! the lifecycle and reference checks cover every declared kind, VMs with
//! real guests booting under TCG.

use std::sync::Arc;
use std::time::Duration;

use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, RunningDriver};
use yunshu_proto::v1::ResourceKind as K;
use yunshu_qemu::driver::{QemuConfig, QemuDriver};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::vm::{Accel, ReapOnDrop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qemu_driver_passes_the_conformance_kit_for_every_kind_it_declares() {
    let image = guest::build(&guest::default_cache_dir(), GuestArch::X86_64)
        .await
        .expect("guest image");
    let namespaces_before = yunshu_qemu::net::list_vpcs().await.expect("netns");
    let state = tempfile::tempdir().expect("tempdir");
    let _reaper = ReapOnDrop(state.path().join("vms"));
    let _balancers = yunshu_qemu::lb::StopOnDrop(state.path().join("lbs"));
    let _wafs = yunshu_qemu::waf::StopOnDrop(state.path().join("waf"));
    let controller = Controller::start(Duration::from_secs(3600)).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let qemu = QemuDriver::open(
        QemuConfig {
            state_dir: state.path().to_path_buf(),
            image,
            accel: Accel::Tcg,
            reserved_memory_mib: 1024,
            c86: None,
            arm64: None,
        },
        log.sink(),
    )
    .await
    .expect("open");
    let token = controller.token("qemu").await;
    let driver =
        RunningDriver::start(Arc::new(qemu), log, &controller.url, "qemu", Some(token)).await;
    let client = driver.client(&controller, "qemu").await;
    let options = yunshu_conformance::Options {
        kinds: vec![K::Vpc, K::SecurityGroup],
        vm_memory_mib: 256,
        // Guests boot under TCG on a busy 2-core host.
        patience: Duration::from_secs(120),
        call_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let report = yunshu_conformance::run(client, &options).await;
    println!("{report}");
    assert!(report.passed(), "{report}");
    let lifecycle_run: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.name.starts_with("lifecycle_") && !c.skipped)
        .map(|c| c.name.as_str())
        .collect();
    for k in [
        "lifecycle_vpc",
        "lifecycle_subnet",
        "lifecycle_security_group",
        "lifecycle_vm",
        "lifecycle_waf_policy",
    ] {
        assert!(lifecycle_run.contains(&k), "{k} did not run: {report}");
    }
    // The kit deletes what it made: no namespace, no QEMU left.
    let left: Vec<String> = yunshu_qemu::net::list_vpcs()
        .await
        .expect("netns")
        .into_iter()
        .filter(|n| !namespaces_before.contains(n))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let vms = std::fs::read_dir(state.path().join("vms"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(vms, 0, "VM directories left");
}
