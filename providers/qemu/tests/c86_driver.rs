//! 一云多芯's third chip: the c86 (海光 Hygon) pool is x86_64 guests on
//! QEMU's Hygon `Dhyana` CPU model, carved out of the host like the arm64
//! pool. The driver offers the architecture and the pool; a c86 VM boots
//! and its virtual CPU says `HygonGenuine`; an x86_64 VM beside it does not;
//! pools that would take every core are refused at start.

use serde_json::json;
use yunshu_driver_sdk::{Driver, EventLog};
use yunshu_proto::v1::{self, ResourceKind as K};
use yunshu_qemu::driver::{Arm64Pool, C86Pool, QemuConfig, QemuDriver};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::vm::{Accel, ReapOnDrop, Vm};

mod common;
use common::{request, running, tiny_vm};

/// The CPU vendor the guest of the VM in `dir` sees (QOM of its first CPU).
async fn vendor(dir: &std::path::Path) -> String {
    let vm = Vm::adopt(dir).expect("qemu");
    let mut q = vm.qmp().await.expect("qmp");
    let cpus = q.execute("query-cpus-fast", None).await.expect("cpus");
    let path = cpus[0]["qom-path"].as_str().expect("qom path").to_owned();
    q.execute("qom-get", Some(json!({"path": path, "property": "vendor"})))
        .await
        .expect("vendor")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c86_vm_runs_on_a_hygon_cpu_in_its_own_pool() {
    let image = guest::build(&guest::default_cache_dir(), GuestArch::X86_64)
        .await
        .expect("guest image");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let state = tempfile::tempdir().expect("tempdir");
    let _reaper = ReapOnDrop(state.path().join("vms"));

    // Pools asking for every core leave the x86_64 pool none: refused.
    let greedy = QemuDriver::open(
        QemuConfig {
            state_dir: state.path().to_path_buf(),
            image: image.clone(),
            accel: Accel::Tcg,
            reserved_memory_mib: 1024,
            c86: Some(C86Pool {
                cores: cores.saturating_sub(1).max(1),
                memory_mib: 1024,
            }),
            arm64: Some(Arm64Pool {
                image: image.clone(),
                cores: 1,
                memory_mib: 1024,
            }),
        },
        EventLog::new(100).sink(),
    )
    .await;
    assert!(
        matches!(&greedy, Err(e) if e.to_string().contains("x86_64 pool needs one")),
        "{:?}",
        greedy.err()
    );

    let driver = QemuDriver::open(
        QemuConfig {
            state_dir: state.path().to_path_buf(),
            image,
            accel: Accel::Tcg,
            reserved_memory_mib: 1024,
            c86: Some(C86Pool {
                cores: 1,
                memory_mib: 1024,
            }),
            arm64: None,
        },
        EventLog::new(1000).sink(),
    )
    .await
    .expect("open");
    assert!(
        driver
            .info()
            .architectures
            .contains(&(v1::Architecture::C86 as i32))
    );
    let inventory = driver.inventory().await.expect("inventory");
    let pool = inventory
        .pools
        .iter()
        .find(|p| p.arch == v1::Architecture::C86 as i32)
        .expect("a c86 pool");
    assert_eq!(pool.id, "local-c86");
    assert!(pool.cpu_model.contains("Dhyana"), "{}", pool.cpu_model);
    let host = inventory
        .hosts
        .iter()
        .find(|h| h.pool == "local-c86")
        .expect("c86 host");
    assert_eq!((host.cores, host.memory_mib), (1, 1024));

    // A c86 VM boots on the Hygon model; an x86_64 one beside it does not.
    for (id, arch) in [
        ("vm-c86-1", v1::Architecture::C86),
        ("vm-x86-1", v1::Architecture::X8664),
    ] {
        driver
            .apply(&request(K::Vm, id, 1, tiny_vm(arch, 256)))
            .await
            .expect("vm");
    }
    for id in ["vm-c86-1", "vm-x86-1"] {
        running(&driver, id).await;
    }
    let vms = state.path().join("vms");
    assert_eq!(vendor(&vms.join("vm-c86-1")).await, "HygonGenuine");
    assert_ne!(vendor(&vms.join("vm-x86-1")).await, "HygonGenuine");
    // Its pool's budget is its own: a c86 VM larger than the pool is refused.
    let e = driver
        .apply(&request(
            K::Vm,
            "vm-c86-big",
            1,
            tiny_vm(v1::Architecture::C86, 2048),
        ))
        .await
        .expect_err("over the c86 pool's memory");
    assert!(e.message().contains("C86"), "{}", e.message());
    for id in ["vm-c86-1", "vm-x86-1"] {
        driver.delete(K::Vm, id).await.expect("delete");
    }
}
