//! Which accelerator this host can really use. `/dev/kvm` opening and QEMU's
//! `query-kvm` saying "enabled" are not enough: on nested hosts without the
//! CPU features a kernel needs, a Linux guest hangs under KVM after "Probing
//! EDD" (MACHINE-FACTS, checked 2026-12-05). So a probe guest is booted under
//! KVM with a timeout; only if it prints its marker is KVM used, otherwise
//! TCG. The answer is the driver's to report in `GetInfo`.

use std::path::Path;
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
