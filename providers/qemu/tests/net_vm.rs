//! A guest on a VPC: QEMU runs inside the VPC's namespace with a virtio NIC on
//! a tap routed by the VPC's namespace; the guest asks DHCP for its address,
//! gets no answer (no DHCP server in this VPC), says so on its console and
//! takes the address from the kernel command line instead, and serves HTTP.
//! From inside the VPC its page answers; from another tenant's VPC with the
//! same CIDR and gateway it does not.

use std::net::Ipv4Addr;
use std::time::Duration;

use yunshu_qemu::guest::{self, DHCP_FAILED, DHCP_MARKER, GuestArch};
use yunshu_qemu::net;
use yunshu_qemu::vm::{Accel, Vm, VmConfig, VmNic};

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
async fn a_guest_on_a_vpc_answers_inside_it_and_not_from_another_tenants_vpc() {
    let image = guest::build(&guest::default_cache_dir(), GuestArch::X86_64)
        .await
        .expect("guest image");
    let run = std::process::id();
    let (a, b) = (format!("vpc-net-a-{run}"), format!("vpc-net-b-{run}"));
    let _cleanup = net::DeleteOnDrop(vec![a.clone(), b.clone()]);
    let gw = Ipv4Addr::new(10, 0, 1, 1);
    let ns_a = net::create_vpc(&a).await.expect("vpc a");
    let ns_b = net::create_vpc(&b).await.expect("vpc b");
    net::add_subnet(&a, gw, 24).await.expect("subnet a");
    net::add_subnet(&b, gw, 24).await.expect("subnet b");
    net::add_tap(&a, "tap0", Ipv4Addr::new(10, 0, 1, 10))
        .await
        .expect("tap");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut vm = Vm::start(&VmConfig {
        name: "vm-net-1".to_owned(),
        dir: dir.path().join("vm-net-1"),
        image,
        accel: Accel::Tcg,
        cpu_model: None,
        vcpu: 1,
        memory_mib: 256,
        outlives_caller: false,
        nic: Some(VmNic {
            netns: ns_a.clone(),
            tap: "tap0".to_owned(),
            mac: "52:54:00:12:34:56".to_owned(),
            address: "10.0.1.10/24".to_owned(),
            gateway: Some(gw.to_string()),
            dhcp: true,
        }),
        disks: Vec::new(),
    })
    .await
    .expect("start QEMU in the VPC namespace");
    vm.wait_for_marker(Duration::from_secs(120))
        .await
        .expect("the guest's marker");
    // No DHCP server here: the fallback to the static address, said aloud.
    let serial = vm.serial().await;
    assert!(serial.contains(DHCP_FAILED), "{serial}");
    assert!(
        !serial.contains(&format!("{DHCP_MARKER} ")),
        "a lease from nowhere: {serial}"
    );

    // Inside its VPC: the guest's own page (its hostname).
    let mut page = None;
    for _ in 0..20 {
        page = fetch(&ns_a, "http://10.0.1.10/").await;
        if page.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        page.as_deref().map(str::trim),
        Some("vm-net-1"),
        "{}",
        vm.serial().await
    );
    // Another tenant's VPC with the same CIDR: nothing answers there.
    assert_eq!(fetch(&ns_b, "http://10.0.1.10/").await, None);
    vm.stop().await.expect("stop");
    net::delete_vpc(&a).await.expect("delete a");
    net::delete_vpc(&b).await.expect("delete b");
}
