//! DHCP and DNS for the guests: one `dnsmasq` (Debian package
//! `dnsmasq-base`, the binary without its system service) per VPC namespace
//! that has at least one VM NIC, serving every such subnet of that VPC: each
//! subnet its own static-only DHCP range, its gateway as router and DNS
//! server, its own search domain. Each VM NIC has a reservation
//! (`dhcp-host=<mac>,<ip>,<name>`, lease [`LEASE`]) and DNS names:
//! `<vm>` and `<vm>.<subnet>.internal` (ids made DNS labels by [`label`]),
//! for every VM of the VPC; nothing else is answered and nothing is
//! forwarded (`--no-resolv`, no upstream), `*.internal` is never asked of
//! anyone else.
//!
//! Why one process per VPC and not per subnet: two `dnsmasq` in one
//! namespace share UDP port 67 through `SO_REUSEPORT`, and the kernel hands
//! each *unicast* packet (a guest renewing its lease at its gateway) to one
//! of them by a hash of the addresses — measured on this host (dnsmasq
//! 2.90), the other subnet's process got it and the renewal went unanswered. One process per namespace
//! gets every packet; the subnets stay apart by their ranges and
//! reservations (an unknown MAC gets nothing: the ranges are `static`).
//! Two VPCs — two tenants with the same CIDR too — never meet: each has its
//! own namespace and its own process.
//!
//! How it fits the routed VPC (`crate::net`): guest taps have no address and
//! the gateways are /32s on the namespace's `lo`, so `--bridge-interface=lo,t*`
//! makes a request arriving on a guest tap (every tap name starts with `t`)
//! count as arriving on `lo`, where `--listen-address` (the gateways) finds
//! the subnet; `--bind-interfaces` binds DNS to exactly those gateways (not
//! `127.0.0.1`, not the uplink's public addresses). `--except-interface=lo`
//! is not used: the gateways live on `lo`. A request arriving on the uplink
//! matches no gateway and is ignored.
//!
//! The files live in the driver's state directory, `dhcp/<vpc>/`:
//! `dnsmasq.conf` (everything that needs a restart to change: gateways,
//! ranges), `hosts.dhcp` (`--dhcp-hostsfile`) and `hosts` (`--addn-hosts`),
//! re-read on `SIGHUP` when a VM comes; `leases`, `dnsmasq.pid`,
//! `dnsmasq.log`. When a VM goes, its lease would keep its name in DNS and
//! its address from the next VM given it (dnsmasq keeps leases in memory; a
//! `SIGHUP` leaves them, and dropping one would take its D-Bus interface or
//! a forged DHCPRELEASE), so then the process is restarted with that lease
//! purged from the lease file. Guests cannot put names into DNS
//! (`--dhcp-ignore-names`).
//!
//! `dnsmasq` daemonizes, so the service keeps answering while the driver
//! restarts; the pid file (checked against `/proc`) finds it again. It drops
//! root for the `dnsmasq` user when that user can reach the state directory
//! (it re-reads the hosts files after dropping root); where it cannot (a
//! state directory only root may enter) it stays root, with a warning.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::QemuError;

/// Every VM's DNS name is `<vm>.<subnet>.`[`DOMAIN`] (and `<vm>`).
pub const DOMAIN: &str = "internal";

/// The lease time of every reservation.
pub const LEASE: &str = "1h";

/// The interfaces whose DHCP requests count as arriving on `lo`: guest taps
/// (`net::tap_name` starts every one with `t`; the namespace's other links
/// are `lo` and the uplink `up0`).
const TAPS: &str = "t*";

/// One VM NIC's reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The VM id (its DNS name is [`label`] of it).
    pub name: String,
    pub mac: String,
    pub address: Ipv4Addr,
}

/// A subnet served, with the reservations of its VM NICs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// The subnet id (its domain is `<label>.internal`).
    pub id: String,
    /// The network address and prefix length.
    pub network: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub hosts: Vec<Host>,
}

/// `id` as a DNS label: lower case, letters, digits and `-` (anything else
/// becomes `-`), no `-` at either end, at most 63 bytes; empty if nothing
/// is left.
pub fn label(id: &str) -> String {
    let mapped: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let mut out = mapped.trim_matches('-').to_owned();
    out.truncate(63);
    out.trim_end_matches('-').to_owned()
}

fn netmask(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0))
}

/// The DNS names of each host, in order: a VM whose label is empty or
/// already taken in the VPC (two ids that differ only in what [`label`]
/// maps away) gets none.
fn names(subnets: &[Subnet]) -> Vec<Vec<Option<String>>> {
    let mut seen = std::collections::BTreeSet::new();
    subnets
        .iter()
        .map(|s| {
            s.hosts
                .iter()
                .map(|h| {
                    let l = label(&h.name);
                    (!l.is_empty() && seen.insert(l.clone())).then_some(l)
                })
                .collect()
        })
        .collect()
}

/// Whom `dnsmasq` runs as once started (see the module docs).
fn user_for(dir: &Path) -> &'static str {
    use std::os::unix::fs::PermissionsExt;
    let reachable = dir
        .ancestors()
        .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if !reachable {
        return "root";
    }
    let has_user = std::fs::read_to_string("/etc/passwd")
        .is_ok_and(|p| p.lines().any(|l| l.starts_with("dnsmasq:")));
    if has_user { "dnsmasq" } else { "nobody" }
}

/// The configuration of the VPC's `dnsmasq` whose files are in `dir`
/// (absolute), running as `user`.
pub fn render_config(dir: &Path, subnets: &[Subnet], user: &str) -> String {
    let d = dir.display();
    let mut out = String::new();
    let _ = writeln!(out, "# yunshu-qemu: DHCP and DNS of one VPC (rendered)");
    for line in [
        "no-resolv",
        "no-hosts",
        "bind-interfaces",
        "dhcp-authoritative",
        "dhcp-ignore-names",
    ] {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "local=/{DOMAIN}/");
    let _ = writeln!(out, "bridge-interface=lo,{TAPS}");
    let _ = writeln!(out, "user={user}");
    let _ = writeln!(out, "pid-file={d}/dnsmasq.pid");
    let _ = writeln!(out, "log-facility={d}/dnsmasq.log");
    let _ = writeln!(out, "dhcp-leasefile={d}/leases");
    let _ = writeln!(out, "dhcp-hostsfile={d}/hosts.dhcp");
    let _ = writeln!(out, "addn-hosts={d}/hosts");
    for (n, s) in subnets.iter().enumerate() {
        let tag = format!("s{n}");
        let _ = writeln!(out, "# subnet {}", s.id);
        let _ = writeln!(out, "listen-address={}", s.gateway);
        let _ = writeln!(
            out,
            "dhcp-range=set:{tag},{},static,{},{LEASE}",
            s.network,
            netmask(s.prefix)
        );
        let _ = writeln!(out, "dhcp-option=tag:{tag},option:router,{}", s.gateway);
        let _ = writeln!(out, "dhcp-option=tag:{tag},option:dns-server,{}", s.gateway);
        let domain = label(&s.id);
        if !domain.is_empty() {
            let _ = writeln!(out, "domain={domain}.{DOMAIN},{}/{}", s.network, s.prefix);
        }
    }
    out
}

/// `--dhcp-hostsfile`: one `<mac>,<ip>[,<name>]` per VM NIC.
pub fn render_dhcp_hosts(subnets: &[Subnet]) -> String {
    let mut out = String::new();
    for (s, names) in subnets.iter().zip(names(subnets)) {
        for (h, name) in s.hosts.iter().zip(names) {
            let _ = match name {
                Some(n) => writeln!(out, "{},{},{n}", h.mac, h.address),
                None => writeln!(out, "{},{}", h.mac, h.address),
            };
        }
    }
    out
}

/// `--addn-hosts`: `<ip> <vm>.<subnet>.internal <vm>` per named VM NIC.
pub fn render_hosts(subnets: &[Subnet]) -> String {
    let mut out = String::new();
    for (s, names) in subnets.iter().zip(names(subnets)) {
        let domain = label(&s.id);
        for (h, name) in s.hosts.iter().zip(names) {
            let Some(n) = name else { continue };
            if domain.is_empty() {
                let _ = writeln!(out, "{} {n}", h.address);
            } else {
                let _ = writeln!(out, "{} {n}.{domain}.{DOMAIN} {n}", h.address);
            }
        }
    }
    out
}

/// The pid of the `dnsmasq` whose files are in `dir`, if it runs: the pid
/// file names it, `/proc` says it is alive and `dnsmasq` with this
/// directory's configuration (not a recycled pid).
pub fn running_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join("dnsmasq.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline);
    let conf = dir.join("dnsmasq.conf");
    (crate::vm::is_alive(pid)
        && cmdline.contains("dnsmasq")
        && cmdline.contains(&*conf.to_string_lossy()))
    .then_some(pid)
}

async fn signal(signal: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .await;
}

/// Writes `content` to `path` (readable by the `dnsmasq` user) unless it
/// is there already; whether it changed. Written beside and renamed, so
/// `dnsmasq` never reads half a file.
async fn write_if_changed(path: &Path, content: &str) -> Result<bool, QemuError> {
    use std::os::unix::fs::PermissionsExt;
    if tokio::fs::read_to_string(path)
        .await
        .is_ok_and(|old| old == content)
    {
        return Ok(false);
    }
    let mut next = path.as_os_str().to_owned();
    next.push(".next");
    let next = PathBuf::from(next);
    tokio::fs::write(&next, content)
        .await
        .map_err(QemuError::io(format!("write {}", next.display())))?;
    tokio::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o644))
        .await
        .map_err(QemuError::io(format!("chmod {}", next.display())))?;
    tokio::fs::rename(&next, path)
        .await
        .map_err(QemuError::io(format!("install {}", path.display())))?;
    Ok(true)
}

/// The lease file's lines that are not one of `subnets`' reservations (a
/// VM that went, or moved): (all lines, the stale ones).
async fn leases(dir: &Path, subnets: &[Subnet]) -> (Vec<String>, Vec<String>) {
    let text = tokio::fs::read_to_string(dir.join("leases"))
        .await
        .unwrap_or_default();
    let reserved = |line: &str| {
        let mut words = line.split_whitespace().skip(1);
        let (Some(mac), Some(ip)) = (words.next(), words.next()) else {
            return false;
        };
        subnets.iter().flat_map(|s| &s.hosts).any(|h| {
            h.mac.eq_ignore_ascii_case(mac) && ip.parse::<Ipv4Addr>().is_ok_and(|a| a == h.address)
        })
    };
    let all: Vec<String> = text.lines().map(str::to_owned).collect();
    let stale = all.iter().filter(|l| !reserved(l)).cloned().collect();
    (all, stale)
}

/// Makes the `dnsmasq` of namespace `ns`, its files in `dir`, serve exactly
/// `subnets` (in order; hosts in order): started if none runs, `SIGHUP` if
/// only reservations were added or renamed, restarted if the gateways or
/// ranges changed or a lease belongs to no reservation any more. No subnets:
/// stopped and `dir` removed. Returns its pid.
pub async fn apply(ns: &str, dir: &Path, subnets: &[Subnet]) -> Result<Option<u32>, QemuError> {
    if subnets.iter().all(|s| s.hosts.is_empty()) {
        remove(dir).await?;
        return Ok(None);
    }
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(QemuError::io(format!("DHCP dir {}", dir.display())))?;
    // dnsmasq runs in `/` and re-reads its files by name: absolute paths.
    let dir = tokio::fs::canonicalize(dir)
        .await
        .map_err(QemuError::io(format!("DHCP dir {}", dir.display())))?;
    let dir = dir.as_path();
    let hosts_changed = write_if_changed(&dir.join("hosts.dhcp"), &render_dhcp_hosts(subnets))
        .await?
        | write_if_changed(&dir.join("hosts"), &render_hosts(subnets)).await?;
    let user = user_for(dir);
    let config = render_config(dir, subnets, user);
    let conf = dir.join("dnsmasq.conf");
    let same_config = tokio::fs::read_to_string(&conf)
        .await
        .is_ok_and(|old| old == config);
    let (all, stale) = leases(dir, subnets).await;
    if let Some(pid) = running_pid(dir)
        && same_config
        && stale.is_empty()
    {
        if hosts_changed {
            signal("-HUP", pid).await;
        }
        return Ok(Some(pid));
    }
    stop(dir).await?;
    if !stale.is_empty() {
        let kept: String = all
            .iter()
            .filter(|l| !stale.contains(l))
            .map(|l| format!("{l}\n"))
            .collect();
        tokio::fs::write(dir.join("leases"), kept)
            .await
            .map_err(QemuError::io("purge stale DHCP leases"))?;
    }
    write_if_changed(&conf, &config).await?;
    if user == "root" {
        tracing::warn!(
            dir = %dir.display(),
            "dnsmasq keeps running as root: the dnsmasq user cannot reach its directory"
        );
    }
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "dnsmasq"])
        .arg(format!("--conf-file={}", conf.display()))
        .output()
        .await
        .map_err(QemuError::io("dnsmasq (Debian package dnsmasq-base)"))?;
    if !out.status.success() {
        return Err(QemuError::Command {
            command: format!("dnsmasq --conf-file={} (in {ns})", conf.display()),
            output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    // The parent returns once the daemon is up; its pid file follows.
    for _ in 0..100 {
        if let Some(pid) = running_pid(dir) {
            return Ok(Some(pid));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(QemuError::Guest(format!(
        "dnsmasq in {ns} did not stay up (see {}/dnsmasq.log)",
        dir.display()
    )))
}

/// Stops the `dnsmasq` whose files are in `dir` and removes them
/// (idempotent).
pub async fn remove(dir: &Path) -> Result<(), QemuError> {
    stop(dir).await?;
    match tokio::fs::remove_dir_all(dir).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(QemuError::io(format!("remove {}", dir.display()))(e))
        }
        _ => Ok(()),
    }
}

/// Stops the `dnsmasq` whose files are in `dir` (idempotent).
pub async fn stop(dir: &Path) -> Result<(), QemuError> {
    let Some(pid) = running_pid(dir) else {
        return Ok(());
    };
    signal("-TERM", pid).await;
    for _ in 0..100 {
        if running_pid(dir).is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal("-KILL", pid).await;
    for _ in 0..100 {
        if running_pid(dir).is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(QemuError::Timeout {
        what: format!("dnsmasq {pid} to go"),
        seconds: 10,
    })
}

/// Kills every `dnsmasq` named by a `<dir>/<vpc>/dnsmasq.pid` when dropped:
/// a driver's outlive it on purpose, a test's must not.
pub struct StopOnDrop(pub PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return;
        };
        for e in entries.flatten() {
            if let Some(pid) = running_pid(&e.path()) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Vec<Subnet> {
        vec![
            Subnet {
                id: "subnet-web".to_owned(),
                network: Ipv4Addr::new(10, 0, 1, 0),
                prefix: 24,
                gateway: Ipv4Addr::new(10, 0, 1, 1),
                hosts: vec![
                    Host {
                        name: "vm-web-1".to_owned(),
                        mac: "52:54:00:00:00:01".to_owned(),
                        address: Ipv4Addr::new(10, 0, 1, 2),
                    },
                    Host {
                        name: "VM_Web.1".to_owned(),
                        mac: "52:54:00:00:00:02".to_owned(),
                        address: Ipv4Addr::new(10, 0, 1, 3),
                    },
                ],
            },
            Subnet {
                id: "subnet_db".to_owned(),
                network: Ipv4Addr::new(10, 0, 8, 0),
                prefix: 22,
                gateway: Ipv4Addr::new(10, 0, 8, 1),
                hosts: vec![Host {
                    name: "vm-db".to_owned(),
                    mac: "52:54:00:00:00:03".to_owned(),
                    address: Ipv4Addr::new(10, 0, 9, 7),
                }],
            },
        ]
    }

    #[test]
    fn each_subnet_has_its_gateway_range_and_options() {
        let cfg = render_config(Path::new("/state/dhcp/vpc-a"), &two(), "dnsmasq");
        for line in [
            "bind-interfaces",
            "no-resolv",
            "bridge-interface=lo,t*",
            "listen-address=10.0.1.1",
            "listen-address=10.0.8.1",
            "dhcp-range=set:s0,10.0.1.0,static,255.255.255.0,1h",
            "dhcp-range=set:s1,10.0.8.0,static,255.255.252.0,1h",
            "dhcp-option=tag:s1,option:router,10.0.8.1",
            "dhcp-option=tag:s1,option:dns-server,10.0.8.1",
            "domain=subnet-db.internal,10.0.8.0/22",
            "dhcp-hostsfile=/state/dhcp/vpc-a/hosts.dhcp",
            "dhcp-leasefile=/state/dhcp/vpc-a/leases",
            "user=dnsmasq",
        ] {
            assert!(cfg.lines().any(|l| l == line), "{line} missing:\n{cfg}");
        }
        assert!(!cfg.contains("127.0.0.1"), "{cfg}");
    }

    #[test]
    fn reservations_and_names_are_dns_labels_scoped_by_subnet() {
        let s = two();
        // The second id maps to the first one's label: no name of its own.
        assert_eq!(
            render_dhcp_hosts(&s),
            "52:54:00:00:00:01,10.0.1.2,vm-web-1\n\
             52:54:00:00:00:02,10.0.1.3\n\
             52:54:00:00:00:03,10.0.9.7,vm-db\n"
        );
        assert_eq!(
            render_hosts(&s),
            "10.0.1.2 vm-web-1.subnet-web.internal vm-web-1\n\
             10.0.9.7 vm-db.subnet-db.internal vm-db\n"
        );
        assert_eq!(label("VM_Web.1"), "vm-web-1");
        assert_eq!(label("--a--"), "a");
        assert_eq!(label("___"), "");
        assert_eq!(label(&"x".repeat(80)).len(), 63);
    }
}
