//! Which accelerator this host can really use. `/dev/kvm` opening and QEMU's
//! `query-kvm` saying "enabled" are not enough: on nested hosts without the
//! CPU features a kernel needs, a Linux guest hangs under KVM after "Probing
//! EDD" (MACHINE-FACTS, checked 2026-12-05). So a probe guest is booted under
//! KVM with a timeout; only if it prints its marker is KVM used, otherwise
//! TCG. The answer is the driver's to report in `GetInfo`.
//!
//! A probe that finds no KVM waits out its whole timeout (20 s in the
//! driver) on every start. [`probe_cached`] keeps the verdict in the probe's
//! directory with what decided it — QEMU's version, the kernel release, the
//! CPU's flags and the probe guest's kernel — and boots a probe again only
//! when one of them changed (a new QEMU, a new kernel, a moved VM).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::QemuError;
use crate::guest::GuestImage;
use crate::vm::{Accel, Vm, VmConfig};

/// What the probe found, and why.
#[derive(Debug, Clone)]
pub struct Probe {
    pub accel: Accel,
    pub reason: String,
}

/// Boots `image` under KVM in `dir` and waits at most `timeout` for its
/// marker.
pub async fn probe(image: &GuestImage, dir: &Path, timeout: Duration) -> Result<Probe, QemuError> {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Ok(Probe {
            accel: Accel::Tcg,
            reason: "/dev/kvm cannot be opened".to_owned(),
        });
    }
    let config = VmConfig {
        name: "kvm-probe".to_owned(),
        dir: dir.to_path_buf(),
        image: image.clone(),
        accel: Accel::Kvm,
        cpu_model: None,
        vcpu: 1,
        memory_mib: 256,
        outlives_caller: false,
        nic: None,
        disks: Vec::new(),
    };
    let mut vm = Vm::start(&config).await?;
    let outcome = vm.wait_for_marker(timeout).await;
    let tail = vm.serial().await;
    vm.kill().await?;
    Ok(match outcome {
        Ok(took) => Probe {
            accel: Accel::Kvm,
            reason: format!("a guest booted under KVM in {} ms", took.as_millis()),
        },
        Err(e) => Probe {
            accel: Accel::Tcg,
            reason: format!(
                "no guest under KVM ({e}); last console line: {:?}",
                tail.lines().last().unwrap_or_default()
            ),
        },
    })
}

/// What decides whether KVM works here: a change in any of these probes again.
async fn probe_key(image: &GuestImage) -> String {
    let qemu = tokio::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .await
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let flags = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("flags"))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let kvm = Path::new("/dev/kvm").exists();
    format!(
        "qemu={qemu};kernel={};cpu={:016x};kvm={kvm};guest={}",
        kernel.trim(),
        crate::net::fnv1a(&flags),
        image.kernel.display()
    )
}

fn verdict_path(dir: &Path) -> PathBuf {
    dir.join("verdict")
}

/// The verdict kept in `dir` for `key`, if there is one.
fn read_verdict(dir: &Path, key: &str) -> Option<Probe> {
    let text = std::fs::read_to_string(verdict_path(dir)).ok()?;
    let mut lines = text.lines();
    if lines.next()? != key {
        return None;
    }
    let accel = match lines.next()? {
        "kvm" => Accel::Kvm,
        "tcg" => Accel::Tcg,
        _ => return None,
    };
    Some(Probe {
        accel,
        reason: format!(
            "{} (probed before with the same QEMU, kernel and CPU)",
            lines.next().unwrap_or_default()
        ),
    })
}

fn write_verdict(dir: &Path, key: &str, probe: &Probe) -> Result<(), QemuError> {
    std::fs::create_dir_all(dir).map_err(QemuError::io("probe dir"))?;
    let tmp = dir.join("verdict.tmp");
    std::fs::write(
        &tmp,
        format!(
            "{key}\n{}\n{}\n",
            probe.accel.as_str(),
            probe.reason.replace('\n', " ")
        ),
    )
    .map_err(QemuError::io("probe verdict"))?;
    std::fs::rename(&tmp, verdict_path(dir)).map_err(QemuError::io("probe verdict"))
}

/// [`probe`], unless a verdict for this same QEMU, kernel, CPU and guest is
/// kept in `dir`.
pub async fn probe_cached(
    image: &GuestImage,
    dir: &Path,
    timeout: Duration,
) -> Result<Probe, QemuError> {
    let key = probe_key(image).await;
    if let Some(kept) = read_verdict(dir, &key) {
        return Ok(kept);
    }
    let found = probe(image, dir, timeout).await?;
    write_verdict(dir, &key, &found)?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_verdict_answers_only_for_the_same_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let probe = Probe {
            accel: Accel::Tcg,
            reason: "no guest under KVM\n(timed out)".to_owned(),
        };
        assert!(read_verdict(dir.path(), "k1").is_none(), "nothing kept yet");
        write_verdict(dir.path(), "k1", &probe).expect("write");
        let kept = read_verdict(dir.path(), "k1").expect("kept");
        assert_eq!(kept.accel, Accel::Tcg);
        assert!(
            kept.reason.starts_with("no guest under KVM (timed out)"),
            "{}",
            kept.reason
        );
        assert!(
            read_verdict(dir.path(), "k2").is_none(),
            "another QEMU or kernel probes again"
        );
    }
}
