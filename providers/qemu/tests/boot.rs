//! A real guest boots: built from Debian packages, the accelerator chosen by
//! the probe, the marker on the serial console, run state read over QMP, and
//! no QEMU process left after stop.

use std::time::Duration;

use yunshu_qemu::guest::{self, GuestArch, MARKER};
use yunshu_qemu::vm::{Vm, VmConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_guest_boots_under_the_probed_accelerator_and_stops_cleanly() {
    let image = guest::build(&guest::default_cache_dir(), GuestArch::X86_64)
        .await
        .expect("guest image from Debian packages");
    let dir = tempfile::tempdir().expect("tempdir");
    let probe =
        yunshu_qemu::accel::probe(&image, &dir.path().join("probe"), Duration::from_secs(20))
            .await
            .expect("probe");
    eprintln!("accelerator: {:?} ({})", probe.accel, probe.reason);

    let config = VmConfig {
        name: "vm-test-1".to_owned(),
        dir: dir.path().join("vm-test-1"),
        image,
        accel: probe.accel,
        cpu_model: None,
        vcpu: 1,
        memory_mib: 256,
        outlives_caller: false,
        nic: None,
        disks: Vec::new(),
    };
    let mut vm = Vm::start(&config).await.expect("start QEMU");
    let pid = vm.pid();
    let took = vm
        .wait_for_marker(Duration::from_secs(120))
        .await
        .expect("the guest's marker");
    eprintln!(
        "serial marker after {} ms under {:?}",
        took.as_millis(),
        probe.accel
    );
    assert!(vm.serial().await.contains(MARKER));
    let mut qmp = vm.qmp().await.expect("QMP");
    assert_eq!(qmp.status().await.expect("query-status"), "running");
    let name = qmp.execute("query-name", None).await.expect("query-name");
    assert_eq!(name["name"], "vm-test-1");
    drop(qmp);
    vm.stop().await.expect("stop");
    assert!(
        !yunshu_qemu::vm::is_qemu(pid),
        "QEMU {pid} still running after stop"
    );
}
