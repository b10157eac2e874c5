//! The QEMU driver through its SDK trait: a VM applied boots and runs, is
//! refused what it cannot have (a NIC on a subnet it lacks, more memory than
//! the host), survives a driver restart (adopted: same QEMU process), is
//! started again if its QEMU died while the driver was down, is resized by a
//! restart, and is deleted with its process and directory.

use std::time::{Duration, Instant};

use yunshu_driver_sdk::{Driver, EventLog};
use yunshu_proto::tonic::Code;
use yunshu_proto::v1;
use yunshu_qemu::driver::{QemuConfig, QemuDriver};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::vm::{Accel, is_qemu};

fn request(id: &str, generation: u64, memory_mib: u64, nic: Option<&str>) -> v1::ApplyRequest {
    v1::ApplyRequest {
        kind: v1::ResourceKind::Vm as i32,
        id: id.to_owned(),
        generation,
        idempotency_key: format!("{id}@{generation}"),
        spec: Some(v1::ResourceSpec {
            spec: Some(v1::resource_spec::Spec::Vm(v1::VmSpec {
                arch: v1::Architecture::X8664 as i32,
                vcpu: 1,
                memory_mib,
                image: "yunshu-tiny".to_owned(),
                nics: nic
                    .map(|s| {
                        vec![v1::Nic {
                            subnet: s.to_owned(),
                            ..Default::default()
                        }]
                    })
                    .unwrap_or_default(),
                ..Default::default()
            })),
        }),
        tenant: "110105".to_owned(),
        ..Default::default()
    }
}

async fn running(driver: &QemuDriver, id: &str, generation: u64) -> v1::ResourceState {
    let started = Instant::now();
    loop {
        let s = driver
            .get(v1::ResourceKind::Vm, id)
            .await
            .expect("get")
            .expect("the VM");
        if s.phase == v1::Phase::Running as i32 && s.observed_generation == generation {
            return s;
        }
        assert_ne!(s.phase, v1::Phase::Failed as i32, "failed: {}", s.message);
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "not running at generation {generation}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn pid_of(s: &v1::ResourceState) -> u32 {
    s.outputs["pid"].parse().expect("pid output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_boots_survives_a_driver_restart_is_resized_and_deleted() {
    let image = guest::build(&guest::default_cache_dir(), GuestArch::X86_64)
        .await
        .expect("guest image");
    let state = tempfile::tempdir().expect("tempdir");
    let _reaper = yunshu_qemu::vm::ReapOnDrop(state.path().join("vms"));
    // The boot test runs the probe; here TCG, which every host can run.
    let config = QemuConfig {
        state_dir: state.path().to_path_buf(),
        image,
        accel: Accel::Tcg,
        reserved_memory_mib: 1024,
        c86: None,
        arm64: None,
    };
    let log = EventLog::new(1000);
    let driver = QemuDriver::open(config.clone(), log.sink())
        .await
        .expect("open");
    let info = driver.info();
    assert!(info.kinds.contains(&(v1::ResourceKind::Vm as i32)));
    assert!(!info.simulator);
    let inventory = driver.inventory().await.expect("inventory");
    let host = &inventory.hosts[0];
    assert!(host.cores >= 1 && host.memory_mib > 1024, "{host:?}");

    // Refusals change nothing.
    let e = driver
        .apply(&request("vm-t-0", 1, 256, Some("subnet-x")))
        .await
        .expect_err("no such subnet");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        yunshu_proto::errors::reason(&e)
            .map(|r| r.reason)
            .as_deref(),
        Some("DEPENDENCY_NOT_FOUND")
    );
    let e = driver
        .apply(&request("vm-t-0", 1, host.memory_mib, None))
        .await
        .expect_err("more than the host minus its reserve");
    assert_eq!(
        yunshu_proto::errors::reason(&e)
            .map(|r| r.reason)
            .as_deref(),
        Some("HOST_MEMORY_EXHAUSTED")
    );
    assert!(driver.list(None, None, 10).await.expect("list").is_empty());

    // Apply → boots → running.
    let accepted = driver
        .apply(&request("vm-t-1", 1, 256, None))
        .await
        .expect("apply");
    assert_eq!(accepted.phase, v1::Phase::Provisioning as i32);
    let up = running(&driver, "vm-t-1", 1).await;
    let pid = pid_of(&up);
    assert!(is_qemu(pid));
    eprintln!("booted in {} ms (TCG)", up.outputs["boot_ms"]);

    // Driver restart: the VM is adopted, not started again.
    drop(driver);
    let driver = QemuDriver::open(config.clone(), log.sink())
        .await
        .expect("reopen");
    let again = running(&driver, "vm-t-1", 1).await;
    assert_eq!(pid_of(&again), pid, "the same QEMU process");

    // Its QEMU dies while the driver is down: started again on open.
    drop(driver);
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_qemu(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let driver = QemuDriver::open(config.clone(), log.sink())
        .await
        .expect("reopen");
    let restarted = running(&driver, "vm-t-1", 1).await;
    assert_ne!(pid_of(&restarted), pid, "a new QEMU process");

    // Resize: generation 2 with more memory restarts it with that memory.
    driver
        .apply(&request("vm-t-1", 2, 384, None))
        .await
        .expect("resize");
    let resized = running(&driver, "vm-t-1", 2).await;
    let new_pid = pid_of(&resized);
    let cmdline = std::fs::read(format!("/proc/{new_pid}/cmdline")).expect("cmdline");
    assert!(String::from_utf8_lossy(&cmdline).contains("384M"));
    assert_eq!(driver.list(None, None, 10).await.expect("list").len(), 1);

    // Powered off (002 art. 13, 14: offline or in the data retention):
    // QEMU gone, disk kept, STOPPED at that generation — across a driver
    // restart too; generation 4 without the flag boots it again on its disk.
    let mut off = request("vm-t-1", 3, 384, None);
    if let Some(v1::ResourceSpec {
        spec: Some(v1::resource_spec::Spec::Vm(vm)),
    }) = off.spec.as_mut()
    {
        vm.stopped = true;
    }
    let stopped = driver.apply(&off).await.expect("power off");
    assert_eq!(stopped.phase, v1::Phase::Stopped as i32);
    assert_eq!(stopped.observed_generation, 3);
    assert!(!is_qemu(new_pid), "QEMU {new_pid} still runs");
    assert!(state.path().join("vms/vm-t-1/system.qcow2").exists());
    drop(driver);
    let driver = QemuDriver::open(config.clone(), log.sink())
        .await
        .expect("reopen");
    let still = driver
        .get(v1::ResourceKind::Vm, "vm-t-1")
        .await
        .expect("get")
        .expect("the VM");
    assert_eq!(still.phase, v1::Phase::Stopped as i32, "stays off");
    driver
        .apply(&request("vm-t-1", 4, 384, None))
        .await
        .expect("power on");
    let on = running(&driver, "vm-t-1", 4).await;
    let new_pid = pid_of(&on);

    // Delete: process and directory gone, nothing listed.
    let gone = driver
        .delete(v1::ResourceKind::Vm, "vm-t-1")
        .await
        .expect("delete")
        .expect("it existed");
    assert_eq!(gone.phase, v1::Phase::Deleted as i32);
    assert!(!is_qemu(new_pid), "QEMU {new_pid} left behind");
    assert!(!state.path().join("vms/vm-t-1").exists());
    assert!(
        driver
            .get(v1::ResourceKind::Vm, "vm-t-1")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        driver
            .delete(v1::ResourceKind::Vm, "vm-t-1")
            .await
            .expect("delete again")
            .is_none()
    );
}
