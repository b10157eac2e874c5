//! A tiny guest built from Debian packages, for tests, probes and the demo:
//! the distribution kernel (`linux-image-<version>-<arch>`, unpacked from its
//! `.deb` with `dpkg-deb -x`, nothing installed) and an initramfs holding only
//! a static busybox and an `/init` that prints [`MARKER`] on the serial
//! console, then serves HTTP (busybox `httpd`) and waits.
//!
//! Built once per cache directory and reused: the kernel package is fetched
//! with `apt-get download` from the machine's Debian mirror.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::QemuError;

/// What the guest prints on its serial console once its userland runs.
pub const MARKER: &str = "YUNSHU-GUEST-UP";

/// Where the static busybox of Debian's `busybox-static` lives.
const BUSYBOX: &str = "/bin/busybox";

/// The kernel modules a guest needs for its virtio NIC, in load order (each
/// after what it depends on; Debian builds them as modules), as paths under
/// `lib/modules/<version>/kernel/`.
const NET_MODULES: &[&str] = &[
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
];

/// Bumped whenever the initramfs's content changes, so caches rebuild it.
const INITRD_VERSION: u32 = 2;

/// Where guests are cached unless told otherwise: `$YUNSHU_GUEST_CACHE`, else
/// `$HOME/.cache/yunshu-guest` (the kernel package is ≈ 70 MB: fetch once).
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("YUNSHU_GUEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home =
                std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
            home.join(".cache/yunshu-guest")
        })
}

/// A CPU architecture a guest can be built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestArch {
    X86_64,
}

impl GuestArch {
    /// Debian's name of the architecture (kernel package suffix).
    fn debian(self) -> &'static str {
        match self {
            GuestArch::X86_64 => "amd64",
        }
    }
}

/// A bootable guest: kernel and initramfs.
#[derive(Debug, Clone)]
pub struct GuestImage {
    pub arch: GuestArch,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

async fn run(command: &mut Command, what: &str) -> Result<String, QemuError> {
    let out = command.output().await.map_err(QemuError::io(what))?;
    if !out.status.success() {
        return Err(QemuError::Command {
            command: what.to_owned(),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The versioned kernel package the `linux-image-<arch>` metapackage names.
async fn kernel_package(arch: GuestArch) -> Result<String, QemuError> {
    let meta = format!("linux-image-{}", arch.debian());
    let deps = run(
        Command::new("apt-cache").args(["depends", &meta]),
        "apt-cache depends",
    )
    .await?;
    deps.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_owned)
        .ok_or_else(|| QemuError::Guest(format!("{meta} names no kernel package: {deps}")))
}

/// Fetches and unpacks the kernel into `dir/vmlinuz-<arch>`.
async fn kernel(dir: &Path, arch: GuestArch) -> Result<PathBuf, QemuError> {
    let target = dir.join(format!("vmlinuz-{}", arch.debian()));
    let modules = modules_dir(dir, arch);
    if target.exists() && modules.join("virtio_net.ko").exists() {
        return Ok(target);
    }
    let work = dir.join(format!("kernel-{}.work", arch.debian()));
    let _ = tokio::fs::remove_dir_all(&work).await;
    tokio::fs::create_dir_all(&work)
        .await
        .map_err(QemuError::io("kernel work dir"))?;
    let package = kernel_package(arch).await?;
    run(
        Command::new("apt-get")
            .args(["download", "-qq", &package])
            .current_dir(&work),
        "apt-get download (the kernel)",
    )
    .await?;
    let deb = first_with_suffix(&work, ".deb").await?;
    let root = work.join("root");
    run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root),
        "dpkg-deb -x",
    )
    .await?;
    let vmlinuz = first_with_prefix(&root.join("boot"), "vmlinuz-").await?;
    let version_dir = first_with_prefix(&root.join("lib/modules"), "").await?;
    tokio::fs::create_dir_all(&modules)
        .await
        .map_err(QemuError::io("modules dir"))?;
    for m in NET_MODULES {
        let from = version_dir.join("kernel").join(m);
        let name = Path::new(m).file_name().unwrap_or_default();
        tokio::fs::copy(&from, modules.join(name))
            .await
            .map_err(QemuError::io(format!("module {}", from.display())))?;
    }
    // Copy then rename, so a crash never leaves a half-written kernel under
    // the name that means "done".
    let partial = dir.join(format!("vmlinuz-{}.partial", arch.debian()));
    tokio::fs::copy(&vmlinuz, &partial)
        .await
        .map_err(QemuError::io("copy kernel"))?;
    tokio::fs::rename(&partial, &target)
        .await
        .map_err(QemuError::io("kernel into place"))?;
    let _ = tokio::fs::remove_dir_all(&work).await;
    Ok(target)
}

async fn first_matching(
    dir: &Path,
    keep: impl Fn(&str) -> bool,
    what: &str,
) -> Result<PathBuf, QemuError> {
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(QemuError::io(format!("read {}", dir.display())))?;
    while let Some(e) = entries
        .next_entry()
        .await
        .map_err(QemuError::io(format!("read {}", dir.display())))?
    {
        if keep(&e.file_name().to_string_lossy()) {
            return Ok(e.path());
        }
    }
    Err(QemuError::Guest(format!("no {what} in {}", dir.display())))
}

async fn first_with_suffix(dir: &Path, suffix: &str) -> Result<PathBuf, QemuError> {
    first_matching(dir, |n| n.ends_with(suffix), suffix).await
}

async fn first_with_prefix(dir: &Path, prefix: &str) -> Result<PathBuf, QemuError> {
    first_matching(dir, |n| n.starts_with(prefix), prefix).await
}

fn modules_dir(dir: &Path, arch: GuestArch) -> PathBuf {
    dir.join(format!("modules-{}", arch.debian()))
}

/// The guest's `/init`: busybox applets, the pseudo file systems, the virtio
/// NIC's modules, the address the kernel command line gives
/// (`ys.ip=10.0.1.10/24 ys.gw=10.0.1.1`), an HTTP page naming the guest,
/// then the marker on the console, and wait forever.
fn init_script() -> String {
    let modules: Vec<&str> = NET_MODULES
        .iter()
        .filter_map(|m| Path::new(m).file_name().and_then(|n| n.to_str()))
        .collect();
    format!(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         mkdir -p /proc /sys /dev /www\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sys /sys\n\
         mount -t devtmpfs dev /dev 2>/dev/null\n\
         for m in {modules}; do insmod /lib/modules/$m 2>/dev/null; done\n\
         for arg in $(cat /proc/cmdline); do\n\
           case $arg in ys.ip=*) YS_IP=${{arg#ys.ip=}};; ys.gw=*) YS_GW=${{arg#ys.gw=}};; esac\n\
         done\n\
         ip link set lo up\n\
         if [ -n \"$YS_IP\" ]; then\n\
           ip link set eth0 up && ip addr add \"$YS_IP\" dev eth0\n\
           [ -n \"$YS_GW\" ] && ip route add default via \"$YS_GW\"\n\
         fi\n\
         hostname \"$(cat /proc/sys/kernel/hostname)\"\n\
         echo \"$(hostname)\" > /www/index.html\n\
         httpd -p 80 -h /www 2>/dev/null\n\
         echo {MARKER}\n\
         while true; do sleep 3600; done\n",
        modules = modules.join(" ")
    )
}

/// Builds (or finds) the initramfs `dir/initrd-<arch>.cpio.gz`.
async fn initrd(dir: &Path, arch: GuestArch) -> Result<PathBuf, QemuError> {
    let target = dir.join(format!(
        "initrd-{}-v{INITRD_VERSION}.cpio.gz",
        arch.debian()
    ));
    if target.exists() {
        return Ok(target);
    }
    let root = dir.join(format!("initrd-{}.work", arch.debian()));
    let _ = tokio::fs::remove_dir_all(&root).await;
    tokio::fs::create_dir_all(root.join("bin"))
        .await
        .map_err(QemuError::io("initramfs root"))?;
    tokio::fs::create_dir_all(root.join("lib/modules"))
        .await
        .map_err(QemuError::io("initramfs root"))?;
    for m in NET_MODULES {
        let name = Path::new(m).file_name().unwrap_or_default();
        tokio::fs::copy(
            modules_dir(dir, arch).join(name),
            root.join("lib/modules").join(name),
        )
        .await
        .map_err(QemuError::io(format!("module {m} into the initramfs")))?;
    }
    tokio::fs::copy(BUSYBOX, root.join("bin/busybox"))
        .await
        .map_err(QemuError::io(format!(
            "{BUSYBOX} (Debian package busybox-static)"
        )))?;
    let init = root.join("init");
    tokio::fs::write(&init, init_script())
        .await
        .map_err(QemuError::io("write /init"))?;
    set_executable(&init).await?;
    let partial = dir.join(format!("initrd-{}.partial", arch.debian()));
    // newc cpio by busybox (Debian has no `cpio` installed by default).
    let script = format!(
        "cd '{}' && find . | {BUSYBOX} cpio -o -H newc 2>/dev/null | gzip -1 > '{}'",
        root.display(),
        partial.display()
    );
    run(
        Command::new("sh").arg("-c").arg(&script),
        "pack the initramfs",
    )
    .await?;
    tokio::fs::rename(&partial, &target)
        .await
        .map_err(QemuError::io("initramfs into place"))?;
    let _ = tokio::fs::remove_dir_all(&root).await;
    Ok(target)
}

async fn set_executable(path: &Path) -> Result<(), QemuError> {
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .await
        .map_err(QemuError::io(format!("chmod {}", path.display())))
}

/// The guest for `arch`, built into `cache` unless it is there already.
pub async fn build(cache: &Path, arch: GuestArch) -> Result<GuestImage, QemuError> {
    tokio::fs::create_dir_all(cache)
        .await
        .map_err(QemuError::io(format!("guest cache {}", cache.display())))?;
    Ok(GuestImage {
        arch,
        kernel: kernel(cache, arch).await?,
        initrd: initrd(cache, arch).await?,
    })
}
