//! One QEMU process per VM. Its directory holds what it needs and what it
//! says: the QMP socket (`qmp.sock`), the serial console (`serial.log`) and
//! the process id (`qemu.pid`). A VM started with `outlives_caller` keeps
//! running when the driver stops or is killed, in its own process group, and
//! is found again by [`Vm::adopt`]; otherwise it is killed when its handle is
//! dropped, so a failing test leaves no QEMU behind.
//!
//! The guest's architecture picks the board: an x86_64 guest runs on `pc`
//! under the configured accelerator with its console on `ttyS0`; an arm64
//! guest on `virt` always under TCG — the accelerator the probe chose is for
//! the host's own architecture, and KVM cannot run a foreign one — with its
//! console on the board's PL011, `ttyAMA0`. Its CPU is a Cortex-A57, not
//! `max`: `max` emulates pointer authentication in software and the tiny
//! guest took 7.4 s to its marker instead of 1.7 s (2026-12-05, this host).
//! `virt` has a PCIe root, so NIC and disks are the same `virtio-*-pci`
//! devices on both.

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
    /// A named CPU model instead of the board's default (e.g. `Dhyana`, the
    /// Hygon CPU of the c86 pool); x86_64 only.
    pub cpu_model: Option<&'static str>,
    pub vcpu: u32,
    pub memory_mib: u64,
    /// Keep running when this process ends (a driver's VMs), rather than be
    /// killed with the handle (a probe's or a test's).
    pub outlives_caller: bool,
    /// A virtio NIC on a tap in a VPC namespace (`net::add_tap`); QEMU then
    /// runs inside that namespace.
    pub nic: Option<VmNic>,
    /// Virtio disks, in order (the system disk first).
    pub disks: Vec<VmDisk>,
}

/// A qcow2 image given to the guest as a virtio disk.
#[derive(Debug, Clone)]
pub struct VmDisk {
    /// Also the QEMU drive id (letters, digits, `-`).
    pub id: String,
    pub path: PathBuf,
    /// QEMU's I/O throttle for the storage class (`throttling.iops-total`).
    pub iops: Option<u32>,
}

/// A VM's network interface.
#[derive(Debug, Clone)]
pub struct VmNic {
    pub netns: String,
    pub tap: String,
    pub mac: String,
    /// The guest's address with prefix, e.g. `10.0.1.10/24`.
    pub address: String,
    pub gateway: Option<String>,
    /// The guest asks DHCP for its address (`ys.dhcp=1`; `address` and
    /// `gateway` are then what it expects, and what it falls back to if no
    /// answer comes).
    pub dhcp: bool,
}

fn binary(arch: GuestArch) -> &'static str {
    match arch {
        GuestArch::X86_64 => "qemu-system-x86_64",
        GuestArch::Arm64 => "qemu-system-aarch64",
    }
}

/// Board, CPU and accelerator for `arch` (see the module docs).
fn machine(arch: GuestArch, accel: Accel) -> Vec<&'static str> {
    match arch {
        GuestArch::X86_64 => vec!["-machine", "pc", "-accel", accel.as_str()],
        GuestArch::Arm64 => vec![
            "-machine",
            "virt",
            "-cpu",
            "cortex-a57",
            "-accel",
            Accel::Tcg.as_str(),
        ],
    }
}

/// The kernel's name of the serial console QEMU's `-serial` is wired to.
fn console(arch: GuestArch) -> &'static str {
    match arch {
        GuestArch::X86_64 => "ttyS0",
        GuestArch::Arm64 => "ttyAMA0",
    }
}

/// Kills every QEMU named by a `<dir>/<vm>/qemu.pid` when dropped: a driver's
/// VMs outlive it on purpose, a test's must not, however the test ends.
pub struct ReapOnDrop(pub PathBuf);

impl Drop for ReapOnDrop {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return;
        };
        for e in entries.flatten() {
            if let Ok(pid) = std::fs::read_to_string(e.path().join("qemu.pid")) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", pid.trim()])
                    .status();
            }
        }
    }
}

/// A running QEMU process: started here (a child) or adopted after a restart.
pub struct Vm {
    child: Option<Child>,
    pid: u32,
    dir: PathBuf,
}

/// Whether process `pid` exists and has not exited (a zombie has).
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.split_whitespace().nth(2).is_some_and(|st| st != "Z"))
        .unwrap_or(false)
}

/// Whether `pid` is a live QEMU process. Only for a process started a while
/// ago (right after the spawn its command line may still be the parent's,
/// before `exec`): to adopt one after a restart.
pub fn is_qemu(pid: u32) -> bool {
    is_alive(pid)
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains("qemu-system"))
            .unwrap_or(false)
}

/// Whether the console in `dir` shows the guest's marker.
pub async fn marker_seen(dir: &Path) -> bool {
    tokio::fs::read(dir.join("serial.log"))
        .await
        .map(|b| String::from_utf8_lossy(&b).contains(MARKER))
        .unwrap_or(false)
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
        // QEMU's own complaints (bad option, no memory) go to qemu.log beside
        // the console, where an operator looks first.
        let stderr = std::fs::File::create(config.dir.join("qemu.log"))
            .map_err(QemuError::io("create qemu.log"))?;
        let mut command = match &config.nic {
            // `ip netns exec` enters the namespace and execs QEMU: same pid.
            Some(nic) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &nic.netns, binary(config.image.arch)]);
                c
            }
            None => Command::new(binary(config.image.arch)),
        };
        let arch = config.image.arch;
        let mut append = format!(
            "console={} quiet panic=-1 hostname={}",
            console(arch),
            config.name
        );
        if let Some(nic) = &config.nic {
            append.push_str(&format!(" ys.ip={}", nic.address));
            if let Some(gw) = &nic.gateway {
                append.push_str(&format!(" ys.gw={gw}"));
            }
            if nic.dhcp {
                append.push_str(" ys.dhcp=1");
            }
            command
                .args([
                    "-netdev",
                    &format!("tap,id=n0,ifname={},script=no,downscript=no", nic.tap),
                ])
                .args([
                    "-device",
                    &format!("virtio-net-pci,netdev=n0,mac={}", nic.mac),
                ]);
        }
        for disk in &config.disks {
            let mut drive = format!(
                "file={},if=none,id={},format=qcow2,cache=none,aio=threads",
                disk.path.display(),
                disk.id
            );
            if let Some(iops) = disk.iops {
                drive.push_str(&format!(",throttling.iops-total={iops}"));
            }
            command.args(["-drive", &drive]).args([
                "-device",
                &format!("virtio-blk-pci,drive={0},id=dev-{0}", disk.id),
            ]);
        }
        command
            .arg("-name")
            .arg(&config.name)
            .args(machine(arch, config.accel))
            .args(
                config
                    .cpu_model
                    .filter(|_| arch == GuestArch::X86_64)
                    .map(|m| ["-cpu", m])
                    .into_iter()
                    .flatten(),
            )
            .args(["-smp", &config.vcpu.to_string()])
            .args(["-m", &format!("{}M", config.memory_mib)])
            .arg("-kernel")
            .arg(&config.image.kernel)
            .arg("-initrd")
            .arg(&config.image.initrd)
            .args(["-append", &append])
            .args(["-nodefaults", "-no-user-config", "-display", "none"])
            .args(["-serial", &format!("file:{}", serial.display())])
            .args([
                "-qmp",
                &format!("unix:{},server=on,wait=off", qmp.display()),
            ])
            .arg("-no-reboot")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(!config.outlives_caller);
        if config.outlives_caller {
            // Its own process group: a signal to the driver's group (Ctrl-C,
            // a service manager stopping it) does not reach the guests.
            command.process_group(0);
        }
        let child = command
            .spawn()
            .map_err(QemuError::io(binary(config.image.arch)))?;
        let pid = child
            .id()
            .ok_or_else(|| QemuError::Guest("QEMU exited at once".to_owned()))?;
        tokio::fs::write(config.dir.join("qemu.pid"), pid.to_string())
            .await
            .map_err(QemuError::io("write qemu.pid"))?;
        Ok(Vm {
            child: Some(child),
            pid,
            dir: config.dir.clone(),
        })
    }

    /// The QEMU process of the VM in `dir` if it still runs (after a driver
    /// restart: the pid file names it and `/proc` says it is QEMU).
    pub fn adopt(dir: &Path) -> Option<Vm> {
        let pid: u32 = std::fs::read_to_string(dir.join("qemu.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        is_qemu(pid).then(|| Vm {
            child: None,
            pid,
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn exited(&mut self) -> bool {
        match &mut self.child {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => !is_qemu(self.pid),
        }
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
            if self.exited() {
                let log = tokio::fs::read_to_string(self.dir.join("qemu.log"))
                    .await
                    .unwrap_or_default();
                return Err(QemuError::Guest(format!(
                    "QEMU exited before the guest came up: {} {}",
                    log.trim(),
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
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if self.exited() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill().await
    }

    /// Kills the process at once (no guest shutdown) and waits for it.
    pub async fn kill(mut self) -> Result<(), QemuError> {
        match &mut self.child {
            Some(c) => c.kill().await.map_err(QemuError::io("kill QEMU")),
            None => {
                // Not our child (adopted): signal it and wait for /proc to
                // let it go (init reaps it).
                let _ = Command::new("kill")
                    .args(["-9", &self.pid.to_string()])
                    .status()
                    .await;
                let started = Instant::now();
                while is_qemu(self.pid) {
                    if started.elapsed() > Duration::from_secs(10) {
                        return Err(QemuError::Timeout {
                            what: format!("QEMU {} to go", self.pid),
                            seconds: 10,
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(())
            }
        }
    }
}
