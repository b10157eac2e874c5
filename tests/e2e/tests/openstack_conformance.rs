//! The OpenStack driver passes the driver conformance kit over real mutual
//! TLS for every kind it declares (VPC, subnet, security group, VM, volume,
//! EIP),
//! against the test OpenStack of `tests/openstack` (Keystone, Nova with the
//! fake virt driver, Neutron, Placement, Glance, Cinder): a real controller
//! bootstraps the driver, the kit connects with a controller client
//! certificate. Needs `tests/openstack/up` (scripts/test runs it).

mod openstack_env;

use std::sync::Arc;
use std::time::{Duration, Instant};

use yunshu_driver_sdk::{Driver, EventLog};
use yunshu_e2e::{Controller, RunningDriver};
use yunshu_proto::v1::ResourceKind as K;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openstack_driver_passes_the_conformance_kit_for_every_kind_it_declares() {
    // What an interrupted earlier run left in the shared test cloud.
    openstack_env::sweep(&openstack_env::tenant_cloud().await).await;
    openstack_env::release_memory(&openstack_env::operator_cloud().await).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let driver = openstack_env::open(log.sink()).await;
    let declared: Vec<i32> = driver.info().kinds;
    let controller = Controller::start(Duration::from_secs(3600)).await;
    let token = controller.token("openstack").await;
    let running = RunningDriver::start(
        Arc::new(driver),
        log,
        &controller.url,
        "openstack",
        Some(token),
    )
    .await;
    let client = running.client(&controller, "openstack").await;
    let options = yunshu_conformance::Options {
        kinds: vec![K::Vpc, K::SecurityGroup],
        vm_image: "麒麟 V10".to_owned(),
        vm_memory_mib: 512,
        disk_gib: 1,
        // Nova boots a fake server in seconds, but every call crosses
        // Keystone-authenticated APIs on a busy 2-core machine.
        patience: Duration::from_secs(120),
        call_timeout: Duration::from_secs(60),
        list_count: 8,
        ..Default::default()
    };
    let started = Instant::now();
    let report = yunshu_conformance::run(client, &options).await;
    println!("{report}");
    println!(
        "conformance against OpenStack took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(report.passed(), "{report}");
    let ran: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.name.starts_with("lifecycle_") && !c.skipped)
        .map(|c| c.name.as_str())
        .collect();
    for (kind, check) in [
        (K::Vpc, "lifecycle_vpc"),
        (K::Subnet, "lifecycle_subnet"),
        (K::SecurityGroup, "lifecycle_security_group"),
        (K::Vm, "lifecycle_vm"),
        (K::Volume, "lifecycle_volume"),
        (K::LoadBalancer, "lifecycle_load_balancer"),
        (K::Eip, "lifecycle_eip"),
    ] {
        assert!(
            declared.contains(&(kind as i32)),
            "{check}: kind not declared"
        );
        assert!(ran.contains(&check), "{check} did not run: {report}");
    }
}
