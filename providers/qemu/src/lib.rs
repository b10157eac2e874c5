//! The QEMU driver's machinery (issue 15). This first part holds what every
//! later one stands on:
//!
//! - [`guest`]: a tiny guest built on this machine from Debian packages — the
//!   distribution kernel unpacked from its `.deb` and a busybox initramfs whose
//!   init prints [`guest::MARKER`] on the serial console. Nothing is downloaded
//!   from outside the package registries.
//! - [`accel`]: which accelerator to use, decided by booting that guest under
//!   KVM with a timeout, not by asking QEMU (`query-kvm` says "enabled" on
//!   machines where a Linux guest then hangs, see MACHINE-FACTS).
//! - [`vm`]: one QEMU process per VM with its serial log and QMP socket in its
//!   own directory; [`qmp`]: the QMP client it is controlled with.
//!
//! - [`net`] and [`firewall`]: VPCs as routing network namespaces, security
//!   groups as nftables tables in them; [`dhcp`]: a `dnsmasq` per VPC
//!   namespace giving guests their addresses (reservations) and VM names.
//! - [`waf`]: an nginx with ModSecurity and the OWASP CRS per load balancer a
//!   WAF policy protects (Debian's packages; served only when installed).
//! - [`driver`]: the SDK `Driver` over them: VPCs, subnets, security groups
//!   and VMs, which survive a driver restart (found again from the state
//!   directory and the running processes); memory is never overcommitted.
//!
//! Volumes, public IPs, load balancers and backups are the next parts.

pub mod accel;
pub mod cron;
pub mod dhcp;
pub mod driver;
pub mod firewall;
pub mod guest;
pub mod lb;
pub mod net;
pub mod qmp;
pub mod vm;
pub mod waf;

/// Why a QEMU operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} failed: {output}")]
    Command { command: String, output: String },
    #[error("QMP: {0}")]
    Qmp(String),
    #[error("{0}")]
    Guest(String),
    #[error("timed out after {seconds} s: {what}")]
    Timeout { what: String, seconds: u64 },
    /// The driver's configuration promises what the host does not have.
    #[error("configuration: {0}")]
    Config(String),
}

impl QemuError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> QemuError {
        let what = what.into();
        move |source| QemuError::Io { what, source }
    }
}
