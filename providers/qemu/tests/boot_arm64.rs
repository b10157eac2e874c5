//! An arm64 guest on this x86_64 host: built from Debian's arm64 packages
//! through a private apt state, booted on QEMU's `virt` board under TCG, its
//! marker on the PL011 console; then on a VPC with a virtio-net-pci NIC, its
//! HTTP page answering from inside the VPC's namespace.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use yunshu_qemu::guest::{self, GuestArch, MARKER};
use yunshu_qemu::net;
use yunshu_qemu::vm::{Accel, Vm, VmConfig, VmNic};

/// Emulating a whole arm64 kernel boot in software takes its time.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// `curl` from inside namespace `ns`; the body, or `None` if nothing answered.
async fn fetch(ns: &str, url: &str) -> Option<String> {
    let out = tokio::process::Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-s", "--max-time", "3", url])
        .output()
        .await
        .expect("ip netns exec curl");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm64_guest_boots_under_tcg_and_answers_http_on_a_vpc() {
    let started = Instant::now();
    let image = guest::build(&guest::default_cache_dir(), GuestArch::Arm64)
        .await
        .expect("arm64 guest image from Debian packages");
    eprintln!(
        "arm64 guest image ready after {} ms",
        started.elapsed().as_millis()
    );
    let dir = tempfile::tempdir().expect("tempdir");

    // Alone: no NIC, the marker on the console.
    let mut vm = Vm::start(&VmConfig {
        name: "vm-arm64-1".to_owned(),
        dir: dir.path().join("vm-arm64-1"),
        image: image.clone(),
        // Asked for KVM, an arm64 guest still runs under TCG.
        accel: Accel::Kvm,
        cpu_model: None,
        vcpu: 1,
        memory_mib: 256,
        outlives_caller: false,
        nic: None,
        disks: Vec::new(),
    })
    .await
    .expect("start qemu-system-aarch64");
    let took = vm
        .wait_for_marker(BOOT_TIMEOUT)
        .await
        .expect("the arm64 guest's marker");
    eprintln!(
        "arm64 serial marker after {} ms under TCG",
        took.as_millis()
    );
    let serial = vm.serial().await;
    assert!(serial.contains(MARKER));
    let mut qmp = vm.qmp().await.expect("QMP");
    assert_eq!(qmp.status().await.expect("query-status"), "running");
    drop(qmp);
    vm.stop().await.expect("stop");

    // On a VPC: QEMU in the VPC's namespace, the guest's page answers there.
    let run = std::process::id();
    let vpc = format!("vpc-arm-{run}");
    let _cleanup = net::DeleteOnDrop(vec![vpc.clone()]);
    let gw = Ipv4Addr::new(10, 0, 1, 1);
    let ns = net::create_vpc(&vpc).await.expect("vpc");
    net::add_subnet(&vpc, gw, 24).await.expect("subnet");
    net::add_tap(&vpc, "tap0", Ipv4Addr::new(10, 0, 1, 10))
        .await
        .expect("tap");
    let mut vm = Vm::start(&VmConfig {
        name: "vm-arm64-2".to_owned(),
        dir: dir.path().join("vm-arm64-2"),
        image,
        accel: Accel::Tcg,
        cpu_model: None,
        vcpu: 1,
        memory_mib: 256,
        outlives_caller: false,
        nic: Some(VmNic {
            netns: ns.clone(),
            tap: "tap0".to_owned(),
            mac: "52:54:00:12:34:57".to_owned(),
            address: "10.0.1.10/24".to_owned(),
            gateway: Some(gw.to_string()),
            dhcp: false,
        }),
        disks: Vec::new(),
    })
    .await
    .expect("start qemu-system-aarch64 in the VPC namespace");
    let took = vm
        .wait_for_marker(BOOT_TIMEOUT)
        .await
        .expect("the arm64 guest's marker with a NIC");
    eprintln!(
        "arm64 serial marker with a NIC after {} ms under TCG",
        took.as_millis()
    );
    let mut page = None;
    for _ in 0..40 {
        page = fetch(&ns, "http://10.0.1.10/").await;
        if page.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        page.as_deref().map(str::trim),
        Some("vm-arm64-2"),
        "{}",
        vm.serial().await
    );
    vm.stop().await.expect("stop");
    net::delete_vpc(&vpc).await.expect("delete vpc");
}
