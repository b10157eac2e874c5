//! A tiny guest built from Debian packages, for tests, probes and the demo:
//! the distribution kernel (`linux-image-<version>-<arch>`, unpacked from its
//! `.deb` with `dpkg-deb -x`, nothing installed) and an initramfs holding only
//! a static busybox and an `/init` that takes its address (by DHCP with
//! `ys.dhcp=1`, busybox `udhcpc`; else, or if no answer comes, from the
//! kernel command line), prints [`MARKER`] on the serial console, then
//! serves HTTP (busybox `httpd`) and waits.
//!
//! Built once per cache directory and reused: the kernel package is fetched
//! with `apt-get download` from the machine's Debian mirror.
//!
//! Two architectures, one layout per architecture in the cache
//! (`vmlinuz-<arch>`, `modules-<arch>/`, `initrd-<arch>-v<N>.cpio.gz`) and one
//! `/init` for both; what differs is in [`GuestArch`]:
//!
//! - `x86_64` (the host's own): the kernel package through the system's apt
//!   state, busybox from the host's `busybox-static`.
//! - `arm64` (foreign on an x86_64 host): the system's apt configuration is
//!   left alone (no `dpkg --add-architecture`): `apt-get` runs with a private
//!   state in the cache (`apt-arm64/`: its own package lists, cache and an
//!   empty dpkg status) and `APT::Architectures=arm64`, over the same Debian
//!   sources and keys. The static busybox comes from the arm64
//!   `busybox-static` `.deb`, unpacked like the kernel. Debian's arm64
//!   `vmlinuz` is an uncompressed `Image` (checked: bookworm, 6.1); were it
//!   gzip-compressed, it is unpacked here, since `-kernel` wants an `Image`.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::QemuError;

/// What the guest prints on its serial console once its userland runs.
pub const MARKER: &str = "YUNSHU-GUEST-UP";

/// Where the static busybox of Debian's `busybox-static` lives (the host's:
/// an x86_64 guest's, and the one that packs every initramfs).
const BUSYBOX: &str = "/bin/busybox";

/// The kernel modules an x86_64 guest needs for its virtio NIC, in load
/// order (each after what it depends on; Debian's amd64 kernel builds all of
/// virtio as modules), as paths under `lib/modules/<version>/kernel/`.
const NET_MODULES_X86_64: &[&str] = &[
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
];

/// The same for an arm64 guest on QEMU's `virt` machine, whose NIC is
/// virtio-net on PCIe. Debian's arm64 kernel builds the virtio core and ring
/// in (`CONFIG_VIRTIO=y`, `modules.builtin`) but the PCI transport, failover
/// and virtio-net as modules (`/boot/config-*` of bookworm's 6.1); load order
/// from the modules' `depends=`.
const NET_MODULES_ARM64: &[&str] = &[
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
];

/// Bumped whenever the initramfs's content changes, so caches rebuild it.
const INITRD_VERSION: u32 = 3;

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
    /// AArch64, emulated (TCG) on an x86_64 host.
    Arm64,
}

impl GuestArch {
    /// Debian's name of the architecture (kernel package suffix).
    fn debian(self) -> &'static str {
        match self {
            GuestArch::X86_64 => "amd64",
            GuestArch::Arm64 => "arm64",
        }
    }

    /// The modules the guest's `/init` loads for its NIC, in load order.
    fn net_modules(self) -> &'static [&'static str] {
        match self {
            GuestArch::X86_64 => NET_MODULES_X86_64,
            GuestArch::Arm64 => NET_MODULES_ARM64,
        }
    }

    /// Whether packages of this architecture come through a private apt
    /// state and its busybox from a `.deb`, rather than from the host's own
    /// apt state and `/bin/busybox`.
    fn foreign(self) -> bool {
        let host = if cfg!(target_arch = "aarch64") {
            GuestArch::Arm64
        } else {
            GuestArch::X86_64
        };
        self != host
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

/// The `-o` options of every `apt-get`/`apt-cache` call for `arch`: none for
/// the host's own architecture (the system's apt state, as before); for a
/// foreign one a private apt state under `dir/apt-<arch>/`, so that neither
/// the system's package lists nor its dpkg architectures change. The sources
/// and keys stay the system's: the same Debian mirror, the same trust.
fn apt_options(dir: &Path, arch: GuestArch) -> Vec<String> {
    if !arch.foreign() {
        return Vec::new();
    }
    let state = apt_state(dir, arch);
    [
        format!("APT::Architecture={}", arch.debian()),
        format!("APT::Architectures={}", arch.debian()),
        format!("Dir::State::Lists={}", state.join("lists").display()),
        // Empty: nothing of the host's installed packages is the guest's.
        format!("Dir::State::status={}", state.join("status").display()),
        format!("Dir::Cache={}", state.join("cache").display()),
        // Run as root, apt downloads as user `_apt`, who may not write into a
        // cache under root's home; the state is private anyway.
        "APT::Sandbox::User=root".to_owned(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_owned(), o])
    .collect()
}

fn apt_state(dir: &Path, arch: GuestArch) -> PathBuf {
    dir.join(format!("apt-{}", arch.debian()))
}

/// For a foreign architecture: creates the private apt state and fetches its
/// package lists (≈ 26 MB for arm64, a few seconds), every time a kernel is
/// fetched, so that the lists name what the mirror still has.
async fn apt_update(dir: &Path, arch: GuestArch) -> Result<(), QemuError> {
    if !arch.foreign() {
        return Ok(());
    }
    let state = apt_state(dir, arch);
    for sub in ["lists/partial", "cache/archives/partial"] {
        tokio::fs::create_dir_all(state.join(sub))
            .await
            .map_err(QemuError::io(format!("apt state {}", state.display())))?;
    }
    tokio::fs::write(state.join("status"), "")
        .await
        .map_err(QemuError::io("apt state status"))?;
    run(
        Command::new("apt-get")
            .args(apt_options(dir, arch))
            .args(["update", "-qq"]),
        &format!("apt-get update ({} package lists)", arch.debian()),
    )
    .await?;
    Ok(())
}

/// The versioned kernel package the `linux-image-<arch>` metapackage names.
async fn kernel_package(dir: &Path, arch: GuestArch) -> Result<String, QemuError> {
    let meta = format!("linux-image-{}", arch.debian());
    let deps = run(
        Command::new("apt-cache")
            .args(apt_options(dir, arch))
            .args(["depends", &meta]),
        "apt-cache depends",
    )
    .await?;
    deps.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_owned)
        .ok_or_else(|| QemuError::Guest(format!("{meta} names no kernel package: {deps}")))
}

/// The static busybox that goes into `arch`'s initramfs: the host's for its
/// own architecture, else the one unpacked from that architecture's
/// `busybox-static` package into the cache.
fn busybox(dir: &Path, arch: GuestArch) -> PathBuf {
    if arch.foreign() {
        dir.join(format!("busybox-{}", arch.debian()))
    } else {
        PathBuf::from(BUSYBOX)
    }
}

/// Fetches and unpacks the kernel into `dir/vmlinuz-<arch>` (and, for a
/// foreign architecture, busybox into `dir/busybox-<arch>`).
async fn kernel(dir: &Path, arch: GuestArch) -> Result<PathBuf, QemuError> {
    let target = dir.join(format!("vmlinuz-{}", arch.debian()));
    let modules = modules_dir(dir, arch);
    let busybox = busybox(dir, arch);
    if target.exists()
        && modules.join("virtio_net.ko").exists()
        && (!arch.foreign() || busybox.exists())
    {
        return Ok(target);
    }
    let work = dir.join(format!("kernel-{}.work", arch.debian()));
    let _ = tokio::fs::remove_dir_all(&work).await;
    tokio::fs::create_dir_all(&work)
        .await
        .map_err(QemuError::io("kernel work dir"))?;
    apt_update(dir, arch).await?;
    let mut packages = vec![kernel_package(dir, arch).await?];
    if arch.foreign() {
        packages.push("busybox-static".to_owned());
    }
    run(
        Command::new("apt-get")
            .args(apt_options(dir, arch))
            .args(["download", "-qq"])
            .args(&packages)
            .current_dir(&work),
        "apt-get download (the kernel)",
    )
    .await?;
    let root = work.join("root");
    for deb in all_with_suffix(&work, ".deb").await? {
        run(
            Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root),
            "dpkg-deb -x",
        )
        .await?;
    }
    let vmlinuz = first_with_prefix(&root.join("boot"), "vmlinuz-").await?;
    let version_dir = first_with_prefix(&root.join("lib/modules"), "").await?;
    tokio::fs::create_dir_all(&modules)
        .await
        .map_err(QemuError::io("modules dir"))?;
    for m in arch.net_modules() {
        let from = version_dir.join("kernel").join(m);
        let name = Path::new(m).file_name().unwrap_or_default();
        tokio::fs::copy(&from, modules.join(name))
            .await
            .map_err(QemuError::io(format!("module {}", from.display())))?;
    }
    // Copy then rename, so a crash never leaves a half-written file under
    // the name that means "done".
    if arch.foreign() {
        let partial = dir.join(format!("busybox-{}.partial", arch.debian()));
        tokio::fs::copy(root.join("bin/busybox"), &partial)
            .await
            .map_err(QemuError::io("busybox from busybox-static"))?;
        tokio::fs::rename(&partial, &busybox)
            .await
            .map_err(QemuError::io("busybox into place"))?;
    }
    let partial = dir.join(format!("vmlinuz-{}.partial", arch.debian()));
    if is_gzip(&vmlinuz).await? {
        // QEMU's `-kernel` for AArch64 wants the `Image` itself.
        let out = std::fs::File::create(&partial).map_err(QemuError::io("unpack kernel"))?;
        run(
            Command::new("gzip")
                .arg("-dc")
                .arg(&vmlinuz)
                .stdout(std::process::Stdio::from(out)),
            "gzip -dc (the kernel)",
        )
        .await?;
    } else {
        tokio::fs::copy(&vmlinuz, &partial)
            .await
            .map_err(QemuError::io("copy kernel"))?;
    }
    tokio::fs::rename(&partial, &target)
        .await
        .map_err(QemuError::io("kernel into place"))?;
    let _ = tokio::fs::remove_dir_all(&work).await;
    Ok(target)
}

/// Whether `path` starts with gzip's magic bytes.
async fn is_gzip(path: &Path) -> Result<bool, QemuError> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(QemuError::io(format!("open {}", path.display())))?;
    let mut magic = [0u8; 2];
    match file.read_exact(&mut magic).await {
        Ok(_) => Ok(magic == [0x1f, 0x8b]),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(QemuError::io(format!("read {}", path.display()))(e)),
    }
}

/// Every entry of `dir` whose name ends with `suffix`, sorted.
async fn all_with_suffix(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>, QemuError> {
    let mut found = Vec::new();
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(QemuError::io(format!("read {}", dir.display())))?;
    while let Some(e) = entries
        .next_entry()
        .await
        .map_err(QemuError::io(format!("read {}", dir.display())))?
    {
        if e.file_name().to_string_lossy().ends_with(suffix) {
            found.push(e.path());
        }
    }
    if found.is_empty() {
        return Err(QemuError::Guest(format!(
            "no {suffix} in {}",
            dir.display()
        )));
    }
    found.sort();
    Ok(found)
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

async fn first_with_prefix(dir: &Path, prefix: &str) -> Result<PathBuf, QemuError> {
    first_matching(dir, |n| n.starts_with(prefix), prefix).await
}

fn modules_dir(dir: &Path, arch: GuestArch) -> PathBuf {
    dir.join(format!("modules-{}", arch.debian()))
}

/// What the guest prints on its console once DHCP gave it an address,
/// followed by that address (`YS-DHCP 10.0.1.2`).
pub const DHCP_MARKER: &str = "YS-DHCP";

/// What the guest prints when no DHCP answer came and it took the address
/// on its command line instead.
pub const DHCP_FAILED: &str = "YS-DHCP-FAILED";

/// The guest's `/init`, the same for every architecture but for the NIC's
/// `modules` (file names, in load order): busybox applets, the pseudo file
/// systems, those modules, its address, an HTTP page naming the guest (and
/// `/cgi-bin/resolve?<name>`: what its DNS server says of a name), then the
/// marker on the console, and wait forever.
///
/// The address: with `ys.dhcp=1` on the kernel command line, busybox
/// `udhcpc` on `eth0` (four tries a second apart; it stays in the
/// background to renew, [`UDHCPC_SCRIPT`] applies what it gets) and
/// `YS-DHCP <address>` on the console; if no answer comes, `YS-DHCP-FAILED`
/// and the static address below. Without it, or as that fallback: the
/// address the command line gives (`ys.ip=10.0.1.10/24 ys.gw=10.0.1.1`).
fn init_script(modules: &[&str]) -> String {
    let modules: Vec<&str> = modules
        .iter()
        .filter_map(|m| Path::new(m).file_name().and_then(|n| n.to_str()))
        .collect();
    format!(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         mkdir -p /proc /sys /dev /www/cgi-bin /etc /run\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sys /sys\n\
         mount -t devtmpfs dev /dev 2>/dev/null\n\
         for m in {modules}; do insmod /lib/modules/$m 2>/dev/null; done\n\
         for arg in $(cat /proc/cmdline); do\n\
           case $arg in ys.ip=*) YS_IP=${{arg#ys.ip=}};; ys.gw=*) YS_GW=${{arg#ys.gw=}};; \
         ys.dhcp=*) YS_DHCP=${{arg#ys.dhcp=}};; esac\n\
         done\n\
         static() {{\n\
           ip link set eth0 up && ip addr add \"$YS_IP\" dev eth0\n\
           [ -n \"$YS_GW\" ] && ip route add default via \"$YS_GW\"\n\
         }}\n\
         ip link set lo up\n\
         if [ \"$YS_DHCP\" = 1 ]; then\n\
           ip link set eth0 up\n\
           if udhcpc -i eth0 -n -t 4 -T 1 -s /bin/ys-udhcpc >/dev/null 2>&1; then\n\
             echo \"{DHCP_MARKER} $(cat /run/ys-dhcp)\"\n\
           else\n\
             echo {DHCP_FAILED}\n\
             [ -n \"$YS_IP\" ] && static\n\
           fi\n\
         elif [ -n \"$YS_IP\" ]; then\n\
           static\n\
         fi\n\
         hostname \"$(cat /proc/sys/kernel/hostname)\"\n\
         echo \"$(hostname)\" > /www/index.html\n\
         printf '%s\\n' '#!/bin/sh' 'echo Content-Type: text/plain' 'echo' \
         'case \"$QUERY_STRING\" in *[!A-Za-z0-9.-]*|\"\") exit 0;; esac' \
         'nslookup \"$QUERY_STRING\" 2>&1' > /www/cgi-bin/resolve\n\
         chmod 755 /www/cgi-bin/resolve\n\
         httpd -p 80 -h /www 2>/dev/null\n\
         echo {MARKER}\n\
         while true; do sleep 3600; done\n",
        modules = modules.join(" ")
    )
}

/// The script busybox `udhcpc` runs on each event (`/bin/ys-udhcpc`): the
/// address and prefix, the default route, `/etc/resolv.conf` (the DNS
/// servers and search domain given), and the address in `/run/ys-dhcp`.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
  deconfig)
    ip addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    [ "$(cat /run/ys-dhcp 2>/dev/null)" = "$ip" ] || ip addr flush dev "$interface"
    ip addr replace "$ip/$mask" dev "$interface"
    set -- $router
    [ -n "$1" ] && ip route replace default via "$1" dev "$interface"
    : > /etc/resolv.conf
    [ -n "$domain" ] && echo "search $domain" >> /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    echo "$ip" > /run/ys-dhcp
    ;;
esac
exit 0
"#;

/// Builds (or finds) the initramfs `dir/initrd-<arch>-v<N>.cpio.gz`. Packed
/// by the host's busybox whatever the guest's architecture (cpio is data).
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
    for m in arch.net_modules() {
        let name = Path::new(m).file_name().unwrap_or_default();
        tokio::fs::copy(
            modules_dir(dir, arch).join(name),
            root.join("lib/modules").join(name),
        )
        .await
        .map_err(QemuError::io(format!("module {m} into the initramfs")))?;
    }
    let busybox = busybox(dir, arch);
    tokio::fs::copy(&busybox, root.join("bin/busybox"))
        .await
        .map_err(QemuError::io(format!(
            "{} (Debian package busybox-static)",
            busybox.display()
        )))?;
    let init = root.join("init");
    tokio::fs::write(&init, init_script(arch.net_modules()))
        .await
        .map_err(QemuError::io("write /init"))?;
    set_executable(&init).await?;
    let udhcpc = root.join("bin/ys-udhcpc");
    tokio::fs::write(&udhcpc, UDHCPC_SCRIPT)
        .await
        .map_err(QemuError::io("write /bin/ys-udhcpc"))?;
    set_executable(&udhcpc).await?;
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
