//! Incremental and differential backups through the QEMU driver: the first
//! copy of a policy is full; the next ones hold only the clusters a QMP
//! dirty bitmap marked — since the previous copy (incremental) or since the
//! full one (differential) — as qcow2 layers over the copy they build on; a
//! volume restored from the newest copy holds every write; a lost bitmap
//! restarts the chain with a full copy instead of a wrong partial one.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use yunshu_driver_sdk::{Driver, EventLog};
use yunshu_proto::v1::{self, ResourceKind as K, resource_spec::Spec};
use yunshu_qemu::driver::{QemuConfig, QemuDriver};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::vm::{Accel, ReapOnDrop, Vm};

mod common;
use common::{hmp, request, running, tiny_vm};

/// Writes `pattern` over `len` at `offset` of `drive` through QEMU's block
/// layer in the running guest (what a write inside the guest becomes).
async fn write(dir: &Path, drive: &str, pattern: u8, offset: &str, len: &str) {
    let said = hmp(
        dir,
        &format!("qemu-io {drive} \"write -P {pattern:#x} {offset} {len}\""),
    )
    .await;
    assert!(said.trim().is_empty(), "{said}");
}

/// `qemu-img info` of an image (read-only, shared with a running QEMU).
fn info(image: &Path) -> Value {
    let out = std::process::Command::new("qemu-img")
        .args(["info", "-U", "--output=json"])
        .arg(image)
        .output()
        .expect("qemu-img info");
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Whether `image` (through its backing files) reads `pattern` there.
fn holds(image: &Path, pattern: u8, offset: &str, len: &str) -> bool {
    let out = std::process::Command::new("qemu-io")
        .args(["-r", "-U", "-f", "qcow2", "-c"])
        .arg(format!("read -P {pattern:#x} {offset} {len}"))
        .arg(image)
        .output()
        .expect("qemu-io");
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.contains("read ") && !text.contains("verification failed")
}

fn copies(state: &Path, policy: &str) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(state.join("backups").join(policy))
        .expect("backups dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    all.sort();
    all
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn policy(target: &str, kind: v1::BackupType) -> Spec {
    Spec::BackupPolicy(v1::BackupPolicySpec {
        target: target.to_owned(),
        r#type: kind as i32,
        schedule: "0 2 * * *".to_owned(),
        retention_days: 7,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_copies_hold_only_what_changed_and_restore_whole() {
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
    let vm = "vm-chain-1";
    driver
        .apply(&request(
            K::Vm,
            vm,
            1,
            tiny_vm(v1::Architecture::X8664, 192),
        ))
        .await
        .expect("vm");
    running(&driver, vm).await;
    let vm_dir = state.path().join("vms").join(vm);
    let made = driver
        .apply(&request(
            K::Volume,
            "vol-c",
            1,
            Spec::Volume(v1::VolumeSpec {
                size_gib: 10,
                storage_class: "local-standard".to_owned(),
                attach_to: vm.to_owned(),
                restore_from: String::new(),
            }),
        ))
        .await
        .expect("volume");
    let drive = made.outputs["device"]
        .rsplit("virtio-")
        .next()
        .expect("drive id")
        .to_owned();

    // Incremental: full first, then only what changed since the last copy.
    write(&vm_dir, &drive, 0xa1, "0", "4M").await;
    let first = driver
        .apply(&request(
            K::BackupPolicy,
            "bak-inc",
            1,
            policy("vol-c", v1::BackupType::Incremental),
        ))
        .await
        .expect("policy");
    assert_eq!(first.outputs["last_backup_kind"], "full", "{first:?}");
    write(&vm_dir, &drive, 0xb2, "8M", "1M").await;
    assert_eq!(
        driver.back_up_now("bak-inc").await.expect("backup"),
        "incremental"
    );
    write(&vm_dir, &drive, 0xc3, "16M", "1M").await;
    assert_eq!(
        driver.back_up_now("bak-inc").await.expect("backup"),
        "incremental"
    );
    let chain = copies(state.path(), "bak-inc");
    assert_eq!(chain.len(), 3, "{chain:?}");
    let (full, inc1, inc2) = (&chain[0], &chain[1], &chain[2]);
    assert!(
        name(full).ends_with(".qcow2") && !name(full).contains(".inc"),
        "{chain:?}"
    );
    // Each incremental copy is a layer over the one before …
    assert_eq!(info(inc1)["backing-filename"], name(full).as_str());
    assert_eq!(info(inc2)["backing-filename"], name(inc1).as_str());
    // … holding about what changed (1 MiB), not the 4 MiB of the full copy.
    let size = |p: &Path| info(p)["actual-size"].as_u64().expect("size");
    assert!(size(full) >= 4 << 20, "full copy {} bytes", size(full));
    assert!(
        size(inc2) < 3 << 20 && size(inc2) < size(full),
        "incremental {} bytes against a full {}",
        size(inc2),
        size(full)
    );
    // The layer alone has only its own write; through the chain, every one.
    assert!(holds(inc2, 0xc3, "16M", "1M"));
    assert!(holds(inc2, 0xb2, "8M", "1M") && holds(inc2, 0xa1, "0", "4M"));
    assert!(
        !holds(inc1, 0xc3, "16M", "1M"),
        "inc1 predates the third write"
    );

    // A restored volume is the newest copy, flattened.
    driver
        .apply(&request(
            K::Volume,
            "vol-r",
            1,
            Spec::Volume(v1::VolumeSpec {
                size_gib: 10,
                storage_class: "local-standard".to_owned(),
                attach_to: String::new(),
                restore_from: "bak-inc".to_owned(),
            }),
        ))
        .await
        .expect("restore");
    let restored = state.path().join("volumes/vol-r.qcow2");
    assert!(
        info(&restored).get("backing-filename").is_none(),
        "standalone"
    );
    for (p, at, len) in [(0xa1, "0", "4M"), (0xb2, "8M", "1M"), (0xc3, "16M", "1M")] {
        assert!(holds(&restored, p, at, len), "{p:#x} at {at} not restored");
    }

    // Differential: every copy builds on the full one and holds everything
    // since it.
    driver
        .apply(&request(
            K::BackupPolicy,
            "bak-diff",
            1,
            policy("vol-c", v1::BackupType::Differential),
        ))
        .await
        .expect("differential policy");
    write(&vm_dir, &drive, 0xd4, "24M", "1M").await;
    assert_eq!(
        driver.back_up_now("bak-diff").await.expect("backup"),
        "differential"
    );
    write(&vm_dir, &drive, 0xe5, "32M", "1M").await;
    assert_eq!(
        driver.back_up_now("bak-diff").await.expect("backup"),
        "differential"
    );
    let diffs = copies(state.path(), "bak-diff");
    assert_eq!(diffs.len(), 3, "{diffs:?}");
    assert_eq!(
        info(&diffs[2])["backing-filename"],
        name(&diffs[0]).as_str()
    );
    assert!(holds(&diffs[2], 0xd4, "24M", "1M") && holds(&diffs[2], 0xe5, "32M", "1M"));
    // The incremental policy's bitmap was unaffected by the other policy.
    assert_eq!(
        driver.back_up_now("bak-inc").await.expect("backup"),
        "incremental"
    );
    let newest = copies(state.path(), "bak-inc").pop().expect("copy");
    assert!(holds(&newest, 0xd4, "24M", "1M") && holds(&newest, 0xe5, "32M", "1M"));

    // Without its bitmap (as after QEMU was killed) a partial copy would
    // miss writes: the chain starts again with a full copy.
    let bitmaps: Vec<String> = {
        let q = Vm::adopt(&vm_dir).expect("qemu");
        let mut q = q.qmp().await.expect("qmp");
        let blocks = q.execute("query-block", None).await.expect("query-block");
        blocks
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["device"] == drive.as_str())
            .flat_map(|b| {
                b["inserted"]["dirty-bitmaps"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|m| m["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(bitmaps.len(), 2, "one per policy: {bitmaps:?}");
    {
        let q = Vm::adopt(&vm_dir).expect("qemu");
        let mut q = q.qmp().await.expect("qmp");
        for b in &bitmaps {
            q.execute(
                "block-dirty-bitmap-remove",
                Some(json!({"node": drive, "name": b})),
            )
            .await
            .expect("remove bitmap");
        }
    }
    write(&vm_dir, &drive, 0xf6, "40M", "1M").await;
    assert_eq!(driver.back_up_now("bak-inc").await.expect("backup"), "full");
    let newest = copies(state.path(), "bak-inc").pop().expect("copy");
    assert!(info(&newest).get("backing-filename").is_none());
    assert!(holds(&newest, 0xf6, "40M", "1M") && holds(&newest, 0xa1, "0", "4M"));

    // Deleting the policies removes every copy of their chains.
    for (k, id) in [
        (K::BackupPolicy, "bak-inc"),
        (K::BackupPolicy, "bak-diff"),
        (K::Volume, "vol-r"),
        (K::Volume, "vol-c"),
        (K::Vm, vm),
    ] {
        driver.delete(k, id).await.expect("delete");
    }
    let left: Vec<_> = std::fs::read_dir(state.path().join("backups"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}
