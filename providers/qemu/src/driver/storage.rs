//! Storage classes and disk images. Both classes live in the driver's state
//! directory and differ by QEMU's I/O throttle per disk, so 普通 and 高性能
//! differ measurably on the same host disk. Images are thin qcow2 files made
//! with `qemu-img`: a 20 GiB disk costs a few hundred KiB until written.

use std::path::Path;

use tokio::process::Command;
use yunshu_proto::v1;

use super::ZONE;
use crate::QemuError;

/// (id, name, class, IOPS per disk). The figures sit inside the bands of
/// `IopsClass` in driver.proto.
const CLASSES: [(&str, &str, v1::IopsClass, u32); 2] = [
    ("local-standard", "普通云盘", v1::IopsClass::Standard, 3_000),
    ("local-high", "高性能云盘", v1::IopsClass::High, 20_000),
];

/// The size in GiB of the filesystem holding `dir` (`df`), 0 if unknown.
/// Images are thin (qcow2 grows as written), so the classes offer the
/// filesystem's size and the controller accounts nominal sizes against it;
/// offering only what is free now would refuse disks that take a few
/// hundred KiB.
fn filesystem_gib(dir: &Path) -> u64 {
    std::process::Command::new("df")
        .args(["-B1G", "--output=size"])
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)
                .and_then(|l| l.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The storage classes, sized by the state directory's filesystem.
pub(super) fn classes(state_dir: &Path) -> Vec<v1::StorageClass> {
    let free = filesystem_gib(state_dir);
    CLASSES
        .iter()
        .map(|(id, name, class, iops)| v1::StorageClass {
            id: (*id).to_owned(),
            zone: ZONE.to_owned(),
            name: (*name).to_owned(),
            capacity_gib: free,
            iops_class: *class as i32,
            iops_per_disk: *iops,
        })
        .collect()
}

/// The IOPS throttle of storage class `id`, if this driver has it.
pub(super) fn iops_of(id: &str) -> Option<u32> {
    CLASSES
        .iter()
        .find(|(c, ..)| *c == id)
        .map(|(.., iops)| *iops)
}

/// Creates a thin qcow2 image of `size_gib` at `path` unless it exists.
pub(super) async fn create_image(path: &Path, size_gib: u64) -> Result<(), QemuError> {
    if tokio::fs::try_exists(path).await.unwrap_or(false) {
        return Ok(());
    }
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(path)
        .arg(format!("{size_gib}G"))
        .output()
        .await
        .map_err(QemuError::io("qemu-img (qemu-utils)"))?;
    if !out.status.success() {
        return Err(QemuError::Command {
            command: format!("qemu-img create {}", path.display()),
            output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}
