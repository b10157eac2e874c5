//! One QEMU process per VM. Its directory holds what it needs and what it
//! says: the QMP socket (`qmp.sock`) and the serial console (`serial.log`).
//! The process is killed if its handle is dropped, so a failing caller leaves
//! no QEMU behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::QemuError;
use crate::guest::{GuestArch, GuestImage, MARKER};
use crate::qmp::Qmp;

/// How QEMU executes guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    /// Software emulation (QEMU's tiny code generator).
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// What a VM is started with.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub name: String,
    /// The VM's own directory (created).
    pub dir: PathBuf,
    pub image: GuestImage,
    pub accel: Accel,
    pub vcpu: u32,
    pub memory_mib: u64,
}

fn binary(arch: GuestArch) -> &'static str {
    match arch {
        GuestArch::X86_64 => "qemu-system-x86_64",
    }
}

/// A running QEMU process.
pub struct Vm {
    child: Child,
    dir: PathBuf,
}

impl Vm {
    pub async fn start(config: &VmConfig) -> Result<Vm, QemuError> {
        tokio::fs::create_dir_all(&config.dir)
            .await
            .map_err(QemuError::io(format!("VM dir {}", config.dir.display())))?;
        let qmp = config.dir.join("qmp.sock");
        let serial = config.dir.join("serial.log");
        let _ = tokio::fs::remove_file(&qmp).await;
        let _ = tokio::fs::remove_file(&serial).await;
        let mut command = Command::new(binary(config.image.arch));
        command
            .arg("-name")
            .arg(&config.name)
            .args(["-machine", "pc", "-accel", config.accel.as_str()])
            .args(["-smp", &config.vcpu.to_string()])
            .args(["-m", &format!("{}M", config.memory_mib)])
            .arg("-kernel")
            .arg(&config.image.kernel)
            .arg("-initrd")
            .arg(&config.image.initrd)
            .args([
                "-append",
                &format!("console=ttyS0 quiet panic=-1 hostname={}", config.name),
            ])
            .args(["-nodefaults", "-no-user-config", "-display", "none"])
            .args(["-serial", &format!("file:{}", serial.display())])
            .args([
                "-qmp",
                &format!("unix:{},server=on,wait=off", qmp.display()),
            ])
            .arg("-no-reboot")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = command
            .spawn()
            .map_err(QemuError::io(binary(config.image.arch)))?;
        Ok(Vm {
            child,
            dir: config.dir.clone(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// What the guest printed on its serial console so far.
    pub async fn serial(&self) -> String {
        tokio::fs::read(self.dir.join("serial.log"))
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits until the guest prints [`MARKER`]; how long it took.
    pub async fn wait_for_marker(&mut self, timeout: Duration) -> Result<Duration, QemuError> {
        let started = Instant::now();
        loop {
            if self.serial().await.contains(MARKER) {
                return Ok(started.elapsed());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(QemuError::Guest(format!(
                    "QEMU exited ({status}) before the guest came up: {}",
                    self.serial().await
                )));
            }
            if started.elapsed() > timeout {
                return Err(QemuError::Timeout {
                    what: format!("serial marker of {}", self.dir.display()),
                    seconds: timeout.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A QMP connection (the socket appears shortly after the start).
    pub async fn qmp(&self) -> Result<Qmp, QemuError> {
        let path = self.dir.join("qmp.sock");
        let started = Instant::now();
        loop {
            match Qmp::connect(&path).await {
                Ok(q) => return Ok(q),
                Err(e) if started.elapsed() > Duration::from_secs(10) => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Ends the VM (QMP `quit`) and waits for its process; kills it if it
    /// does not go within 10 s.
    pub async fn stop(mut self) -> Result<(), QemuError> {
        if let Ok(mut q) = self.qmp().await {
            // The answer may not arrive: QEMU closes the socket as it quits.
            let _ = q.execute("quit", None).await;
        }
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(r) => r.map(|_| ()).map_err(QemuError::io("wait for QEMU")),
            Err(_) => self.child.kill().await.map_err(QemuError::io("kill QEMU")),
        }
    }

    /// Kills the process at once (no guest shutdown).
    pub async fn kill(mut self) -> Result<(), QemuError> {
        self.child.kill().await.map_err(QemuError::io("kill QEMU"))
    }
}
