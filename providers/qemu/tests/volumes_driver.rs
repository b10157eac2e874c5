//! Volumes, backups and snapshots through the QEMU driver's SDK trait: a
//! 高性能 volume is hot-plugged into a running guest with its class's I/O
//! throttle; data written through QEMU is in the backup the policy takes at
//! once; a volume restored from that policy holds that data although the
//! original was overwritten since; a snapshot of the VM is a full copy; what
//! a policy or snapshot names cannot be deleted; a detached volume leaves the
//! guest; everything deleted leaves no image behind.

use std::path::Path;
use std::time::{Duration, Instant};

use yunshu_driver_sdk::{Driver, EventLog};
use yunshu_proto::v1::{self, ResourceKind as K, resource_spec::Spec};
use yunshu_qemu::driver::{QemuConfig, QemuDriver};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::vm::{Accel, ReapOnDrop, Vm};

mod common;
use common::{hmp, reason, request};

fn volume(attach_to: &str, restore_from: &str, class: &str) -> Spec {
    Spec::Volume(v1::VolumeSpec {
        size_gib: 10,
        storage_class: class.to_owned(),
        attach_to: attach_to.to_owned(),
        restore_from: restore_from.to_owned(),
    })
}

async fn block_devices(dir: &Path) -> serde_json::Value {
    let vm = Vm::adopt(dir).expect("the VM's QEMU");
    let mut q = vm.qmp().await.expect("qmp");
    q.execute("query-block", None).await.expect("query-block")
}

/// `qemu-io` on an image file that no VM uses: whether `script` succeeded.
fn qemu_io(image: &Path, script: &str) -> (bool, String) {
    let out = std::process::Command::new("qemu-io")
        .args(["-r", "-f", "qcow2", "-c", script])
        .arg(image)
        .output()
        .expect("qemu-io");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (
        out.status.success() && !text.contains("Pattern verification failed"),
        text,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_what_was_written_before_and_volumes_plug_into_running_guests() {
    let image = guest::build(&guest::default_cache_dir(), GuestArch::X86_64)
        .await
        .expect("guest image");
    let state = tempfile::tempdir().expect("tempdir");
    let _reaper = ReapOnDrop(state.path().join("vms"));
    let driver = QemuDriver::open(
        QemuConfig {
            state_dir: state.path().to_path_buf(),
            image,
            accel: Accel::Tcg,
            reserved_memory_mib: 1024,
            c86: None,
            arm64: None,
        },
        EventLog::new(1000).sink(),
    )
    .await
    .expect("open");
    for k in [K::Volume, K::Snapshot, K::BackupPolicy] {
        assert!(driver.info().kinds.contains(&(k as i32)), "{k:?}");
    }
    let vm = "vm-disk-1";
    driver
        .apply(&request(
            K::Vm,
            vm,
            1,
            Spec::Vm(v1::VmSpec {
                arch: v1::Architecture::X8664 as i32,
                vcpu: 1,
                memory_mib: 192,
                image: "yunshu-tiny".to_owned(),
                ..Default::default()
            }),
        ))
        .await
        .expect("vm");
    let started = Instant::now();
    while driver.get(K::Vm, vm).await.expect("get").expect("vm").phase != v1::Phase::Running as i32
    {
        assert!(started.elapsed() < Duration::from_secs(180), "no boot");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let vm_dir = state.path().join("vms").join(vm);

    // Refusals change nothing.
    let e = driver
        .apply(&request(
            K::Volume,
            "vol-x",
            1,
            volume("vm-nope", "", "local-high"),
        ))
        .await
        .expect_err("no such VM");
    assert_eq!(reason(&e), "DEPENDENCY_NOT_FOUND");
    let e = driver
        .apply(&request(K::Volume, "vol-x", 1, volume("", "", "gold")))
        .await
        .expect_err("no such class");
    assert_eq!(reason(&e), "INVALID_SPEC");

    // A 高性能 volume plugged into the running guest, with its throttle.
    let made = driver
        .apply(&request(
            K::Volume,
            "vol-1",
            1,
            volume(vm, "", "local-high"),
        ))
        .await
        .expect("volume");
    assert_eq!(made.phase, v1::Phase::Running as i32);
    let blocks = block_devices(&vm_dir).await;
    let plugged = blocks
        .as_array()
        .and_then(|l| {
            l.iter().find(|b| {
                b["inserted"]["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with("vol-1.qcow2"))
            })
        })
        .unwrap_or_else(|| panic!("vol-1 not in the guest: {blocks}"));
    assert_eq!(plugged["inserted"]["iops"], 20_000, "{plugged}");
    let system = blocks
        .as_array()
        .and_then(|l| l.iter().find(|b| b["device"] == "system"))
        .expect("system disk");
    assert_eq!(system["inserted"]["iops"], 0, "no class given: unthrottled");
    let drive = plugged["device"].as_str().expect("drive id").to_owned();

    // Data written through QEMU, then a policy: its first backup at once.
    // (QEMU prints qemu-io's report on its own stdout; the monitor says
    // only what went wrong.)
    let said = hmp(&vm_dir, &format!("qemu-io {drive} \"write -P 0x5a 0 1M\"")).await;
    assert!(said.trim().is_empty(), "{said}");
    let policy = driver
        .apply(&request(
            K::BackupPolicy,
            "bak-1",
            1,
            Spec::BackupPolicy(v1::BackupPolicySpec {
                target: "vol-1".to_owned(),
                r#type: v1::BackupType::Full as i32,
                schedule: "0 2 * * *".to_owned(),
                retention_days: 7,
            }),
        ))
        .await
        .expect("policy");
    assert_eq!(policy.outputs["backups"], "1");
    let e = driver
        .apply(&request(
            K::BackupPolicy,
            "bak-bad",
            1,
            Spec::BackupPolicy(v1::BackupPolicySpec {
                target: "vol-1".to_owned(),
                r#type: v1::BackupType::Full as i32,
                schedule: "every night".to_owned(),
                retention_days: 7,
            }),
        ))
        .await
        .expect_err("not a schedule");
    assert_eq!(reason(&e), "INVALID_SPEC");

    // The original is overwritten; the restored volume holds what was.
    let said = hmp(&vm_dir, &format!("qemu-io {drive} \"write -z 0 1M\"")).await;
    assert!(said.trim().is_empty(), "{said}");
    driver
        .apply(&request(
            K::Volume,
            "vol-2",
            1,
            volume("", "bak-1", "local-standard"),
        ))
        .await
        .expect("restored volume");
    let restored = state.path().join("volumes/vol-2.qcow2");
    let (ok, text) = qemu_io(&restored, "read -P 0x5a 0 1M");
    assert!(ok, "the restored volume lacks the data: {text}");
    // The original was overwritten: a snapshot of it now reads zeros.
    driver
        .apply(&request(
            K::Snapshot,
            "snap-vol",
            1,
            Spec::Snapshot(v1::SnapshotSpec {
                source: "vol-1".to_owned(),
            }),
        ))
        .await
        .expect("volume snapshot");
    let now = state.path().join("snapshots/snap-vol.qcow2");
    assert!(
        qemu_io(&now, "read -P 0x00 0 1M").0,
        "the original still holds the old data"
    );
    assert!(!qemu_io(&now, "read -P 0x5a 0 1M").0);

    // A snapshot of the VM: a full copy of its system disk.
    driver
        .apply(&request(
            K::Snapshot,
            "snap-1",
            1,
            Spec::Snapshot(v1::SnapshotSpec {
                source: vm.to_owned(),
            }),
        ))
        .await
        .expect("snapshot");
    let (ok, text) = qemu_io(&state.path().join("snapshots/snap-1.qcow2"), "read 0 4k");
    assert!(ok, "{text}");

    // What is named stays.
    let e = driver
        .delete(K::Volume, "vol-1")
        .await
        .expect_err("backed up");
    assert_eq!(reason(&e), "RESOURCE_IN_USE", "{e:?}");
    let e = driver.delete(K::Vm, vm).await.expect_err("has a volume");
    assert_eq!(reason(&e), "RESOURCE_IN_USE", "{e:?}");

    // Detached: it leaves the guest.
    driver
        .apply(&request(
            K::Volume,
            "vol-1",
            2,
            volume("", "", "local-high"),
        ))
        .await
        .expect("detach");
    let started = Instant::now();
    loop {
        let blocks = block_devices(&vm_dir).await.to_string();
        if !blocks.contains("vol-1.qcow2") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still plugged: {blocks}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    for (kind, id) in [
        (K::BackupPolicy, "bak-1"),
        (K::Snapshot, "snap-1"),
        (K::Snapshot, "snap-vol"),
        (K::Volume, "vol-2"),
        (K::Volume, "vol-1"),
        (K::Vm, vm),
    ] {
        driver
            .delete(kind, id)
            .await
            .unwrap_or_else(|e| panic!("delete {id}: {e:?}"))
            .expect("it existed");
    }
    for dir in ["volumes", "snapshots", "backups", "vms"] {
        let left: Vec<_> = std::fs::read_dir(state.path().join(dir))
            .expect("dir")
            .collect();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
}
