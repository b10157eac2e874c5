//! Tenant networks inside network namespaces the driver makes: a VPC is a
//! namespace that routes between its guests. Each guest NIC is a tap in the
//! namespace with a host route to the guest's address and proxy ARP on, and
//! each subnet's gateway is an address on the namespace's loopback; guests
//! keep their subnet's prefix and reach each other through the namespace.
//!
//! Routed rather than bridged because the security groups need connection
//! tracking: this kernel has neither `br_netfilter` nor bridge conntrack, so
//! bridged traffic between two guests would pass nftables statelessly. Routed
//! traffic crosses the namespace's `inet` forward hook with full conntrack
//! (see `firewall`).
//!
//! Two tenants may use the same CIDR: their addresses live in different
//! namespaces and never meet. Nothing here touches the host's own interfaces.
//!
//! Namespace names are derived from the VPC id with a stable hash (FNV-1a),
//! so a restarted driver finds its namespaces again ([`list_vpcs`]).

use tokio::process::Command;

use crate::QemuError;

/// Every namespace this driver makes starts with this.
pub const PREFIX: &str = "ysvpc-";

/// Where the subnets' gateways live in every VPC namespace.
const GATEWAYS: &str = "lo";

/// FNV-1a, 64 bits: stable across builds and Rust versions (unlike the
/// standard library's hasher), so names survive an upgrade.
pub(crate) fn fnv1a(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The namespace of VPC `vpc_id`.
pub fn namespace(vpc_id: &str) -> String {
    format!("{PREFIX}{:016x}", fnv1a(vpc_id))
}

async fn ip(args: &[&str]) -> Result<String, QemuError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(QemuError::io("ip (iproute2)"))?;
    if !out.status.success() {
        return Err(QemuError::Command {
            command: format!("ip {}", args.join(" ")),
            output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The VPC namespaces that exist now.
pub async fn list_vpcs() -> Result<Vec<String>, QemuError> {
    Ok(ip(&["netns", "list"])
        .await?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(str::to_owned)
        .collect())
}

/// Writes `value` to `/proc/sys/<key>` inside namespace `ns` (per-namespace
/// network sysctls; the host's are not touched).
async fn sysctl(ns: &str, key: &str, value: &str) -> Result<(), QemuError> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c"])
        .arg(format!("echo {value} > /proc/sys/{key}"))
        .output()
        .await
        .map_err(QemuError::io("ip netns exec sh"))?;
    if !out.status.success() {
        return Err(QemuError::Command {
            command: format!("sysctl {key}={value} in {ns}"),
            output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// Creates the VPC's namespace (idempotent), routing on; returns its name.
pub async fn create_vpc(vpc_id: &str) -> Result<String, QemuError> {
    let ns = namespace(vpc_id);
    if !list_vpcs().await?.contains(&ns) {
        ip(&["netns", "add", &ns]).await?;
    }
    ip(&["-n", &ns, "link", "set", "lo", "up"]).await?;
    sysctl(&ns, "net/ipv4/ip_forward", "1").await?;
    Ok(ns)
}

/// Puts a subnet's gateway on the VPC's loopback as a /32 (idempotent:
/// `addr replace`); `prefix` only checks the gateway is an address of it.
pub async fn add_subnet(
    vpc_id: &str,
    gateway: std::net::Ipv4Addr,
    prefix: u8,
) -> Result<(), QemuError> {
    let ns = namespace(vpc_id);
    if prefix > 30 {
        return Err(QemuError::Guest(format!(
            "a /{prefix} subnet has no room for guests"
        )));
    }
    ip(&[
        "-n",
        &ns,
        "addr",
        "replace",
        &format!("{gateway}/32"),
        "dev",
        GATEWAYS,
    ])
    .await
    .map(|_| ())
}

/// Removes a subnet's gateway from the bridge (idempotent).
pub async fn remove_subnet(vpc_id: &str, gateway: std::net::Ipv4Addr) -> Result<(), QemuError> {
    let ns = namespace(vpc_id);
    match ip(&[
        "-n",
        &ns,
        "addr",
        "del",
        &format!("{gateway}/32"),
        "dev",
        GATEWAYS,
    ])
    .await
    {
        Ok(_) => Ok(()),
        Err(QemuError::Command { output, .. })
            if output.contains("Address not found") || output.contains("Cannot assign") =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The subnet gateways of the VPC (addresses on its loopback but 127/8).
pub async fn gateways(vpc_id: &str) -> Result<Vec<std::net::Ipv4Addr>, QemuError> {
    let ns = namespace(vpc_id);
    Ok(
        ip(&["-n", &ns, "-4", "-o", "addr", "show", "dev", GATEWAYS])
            .await?
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                words.find(|w| *w == "inet")?;
                let addr = words.next()?.split('/').next()?.parse().ok()?;
                (!std::net::Ipv4Addr::is_loopback(&addr)).then_some(addr)
            })
            .collect(),
    )
}

/// A tap in the VPC for a guest NIC with address `guest` (idempotent): up,
/// a host route to the guest, proxy ARP so the guest finds its gateway and
/// its neighbours through the namespace.
pub async fn add_tap(vpc_id: &str, tap: &str, guest: std::net::Ipv4Addr) -> Result<(), QemuError> {
    let ns = namespace(vpc_id);
    if ip(&["-n", &ns, "link", "show", tap]).await.is_err() {
        ip(&["-n", &ns, "tuntap", "add", "dev", tap, "mode", "tap"]).await?;
    }
    ip(&["-n", &ns, "link", "set", tap, "up"]).await?;
    sysctl(&ns, &format!("net/ipv4/conf/{tap}/proxy_arp"), "1").await?;
    ip(&[
        "-n",
        &ns,
        "route",
        "replace",
        &format!("{guest}/32"),
        "dev",
        tap,
    ])
    .await
    .map(|_| ())
}

/// Removes a guest's tap and its route (idempotent).
pub async fn remove_tap(vpc_id: &str, tap: &str) -> Result<(), QemuError> {
    let ns = namespace(vpc_id);
    if ip(&["-n", &ns, "link", "show", tap]).await.is_ok() {
        ip(&["-n", &ns, "link", "del", tap]).await?;
    }
    Ok(())
}

/// The name of the tap of `vm_id`'s NIC number `index` (≤ 15 bytes, stable;
/// always starting with `t`, which `crate::dhcp` relies on).
pub fn tap_name(vm_id: &str, index: usize) -> String {
    format!("t{:012x}{index:x}", fnv1a(vm_id) >> 16)
}

/// A locally administered MAC for `vm_id`'s NIC `index` (stable).
pub fn mac(vm_id: &str, index: usize) -> String {
    let h = fnv1a(&format!("{vm_id}/{index}")).to_be_bytes();
    format!("52:54:00:{:02x}:{:02x}:{:02x}", h[0], h[1], h[2])
}

/// Deletes the VPC's namespace with everything in it (idempotent).
pub async fn delete_vpc(vpc_id: &str) -> Result<(), QemuError> {
    let ns = namespace(vpc_id);
    if list_vpcs().await?.contains(&ns) {
        ip(&["netns", "del", &ns]).await?;
    }
    Ok(())
}

/// The namespace standing for the outside world of one driver (its public
/// addresses are routed there; tests call from it as "the internet"). Named
/// by a stable hash of `scope` (the driver's state directory), so two drivers
/// on one machine never share one.
pub fn public_namespace(scope: &str) -> String {
    format!("{PUBLIC_PREFIX}{:016x}", fnv1a(scope))
}

/// Every public namespace starts with this.
pub const PUBLIC_PREFIX: &str = "yspub-";

/// The address both ends of every uplink use on the public side: each VPC
/// routes its default there (`onlink`), and every VPC may use the same one
/// because each uplink is its own link.
pub const UPLINK_PEER: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 0, 1);

/// The uplink's name inside every VPC namespace.
pub const UPLINK: &str = "up0";

/// Creates the public namespace (idempotent), routing on.
pub async fn create_public(ns: &str) -> Result<(), QemuError> {
    if !namespaces().await?.iter().any(|n| n == ns) {
        ip(&["netns", "add", ns]).await?;
    }
    ip(&["-n", ns, "link", "set", "lo", "up"]).await?;
    sysctl(ns, "net/ipv4/ip_forward", "1").await
}

/// Deletes a namespace if it exists (idempotent).
pub async fn delete_namespace(ns: &str) -> Result<(), QemuError> {
    if namespaces().await?.iter().any(|n| n == ns) {
        ip(&["netns", "del", ns]).await?;
    }
    Ok(())
}

async fn namespaces() -> Result<Vec<String>, QemuError> {
    Ok(ip(&["netns", "list"])
        .await?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// The uplink's name in the public namespace for `vpc_id` (≤ 15 bytes).
fn uplink_outside(vpc_id: &str) -> String {
    format!("u{:012x}", fnv1a(vpc_id) >> 16)
}

/// A veth pair from the VPC to the public namespace (idempotent): the VPC's
/// default route goes out through it, public addresses come in.
pub async fn add_uplink(vpc_id: &str, public: &str) -> Result<(), QemuError> {
    let ns = namespace(vpc_id);
    let outside = uplink_outside(vpc_id);
    // An uplink whose outer end is not in this public namespace (left by an
    // earlier public namespace that is gone) is replaced, not trusted.
    let inside = ip(&["-n", &ns, "link", "show", UPLINK]).await.is_ok();
    let outer = ip(&["-n", public, "link", "show", &outside]).await.is_ok();
    if inside && !outer {
        ip(&["-n", &ns, "link", "del", UPLINK]).await?;
    }
    if !(inside && outer) {
        ip(&[
            "-n", public, "link", "add", &outside, "type", "veth", "peer", "name", UPLINK, "netns",
            &ns,
        ])
        .await?;
    }
    let peer = format!("{UPLINK_PEER}/32");
    ip(&["-n", public, "addr", "replace", &peer, "dev", &outside]).await?;
    ip(&["-n", public, "link", "set", &outside, "up"]).await?;
    ip(&["-n", &ns, "link", "set", UPLINK, "up"]).await?;
    ip(&[
        "-n",
        &ns,
        "route",
        "replace",
        "default",
        "via",
        &UPLINK_PEER.to_string(),
        "dev",
        UPLINK,
        "onlink",
    ])
    .await
    .map(|_| ())
}

/// Routes public address `eip` to the VPC: on its uplink inside, a host
/// route to that uplink outside (idempotent).
pub async fn add_public_ip(
    vpc_id: &str,
    public: &str,
    eip: std::net::Ipv4Addr,
) -> Result<(), QemuError> {
    add_uplink(vpc_id, public).await?;
    let ns = namespace(vpc_id);
    ip(&[
        "-n",
        &ns,
        "addr",
        "replace",
        &format!("{eip}/32"),
        "dev",
        UPLINK,
    ])
    .await?;
    ip(&[
        "-n",
        public,
        "route",
        "replace",
        &format!("{eip}/32"),
        "dev",
        &uplink_outside(vpc_id),
    ])
    .await
    .map(|_| ())
}

/// Takes public address `eip` away from the VPC (idempotent).
pub async fn remove_public_ip(
    vpc_id: &str,
    public: &str,
    eip: std::net::Ipv4Addr,
) -> Result<(), QemuError> {
    let ns = namespace(vpc_id);
    let _ = ip(&[
        "-n",
        &ns,
        "addr",
        "del",
        &format!("{eip}/32"),
        "dev",
        UPLINK,
    ])
    .await;
    let _ = ip(&["-n", public, "route", "del", &format!("{eip}/32")]).await;
    Ok(())
}

/// The public addresses on the VPC's uplink (none if it has no uplink).
pub async fn uplink_addresses(vpc_id: &str) -> Result<Vec<std::net::Ipv4Addr>, QemuError> {
    let ns = namespace(vpc_id);
    let Ok(out) = ip(&["-n", &ns, "-4", "-o", "addr", "show", "dev", UPLINK]).await else {
        return Ok(Vec::new());
    };
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect())
}

/// Puts a balancer's address on the VPC's loopback (like a gateway: guests
/// reach it through proxy ARP); idempotent.
pub async fn add_local_address(vpc_id: &str, address: std::net::Ipv4Addr) -> Result<(), QemuError> {
    let ns = namespace(vpc_id);
    ip(&[
        "-n",
        &ns,
        "addr",
        "replace",
        &format!("{address}/32"),
        "dev",
        GATEWAYS,
    ])
    .await
    .map(|_| ())
}

/// Removes an address put there by [`add_local_address`] (idempotent).
pub async fn remove_local_address(
    vpc_id: &str,
    address: std::net::Ipv4Addr,
) -> Result<(), QemuError> {
    let ns = namespace(vpc_id);
    let _ = ip(&[
        "-n",
        &ns,
        "addr",
        "del",
        &format!("{address}/32"),
        "dev",
        GATEWAYS,
    ])
    .await;
    Ok(())
}

/// Deletes the namespaces of the given VPCs when dropped (tests: however
/// they end), killing what still runs in them first (a DHCP server, a
/// balancer, a guest): a process would keep a deleted namespace alive.
pub struct DeleteOnDrop(pub Vec<String>);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        for vpc in &self.0 {
            let ns = namespace(vpc);
            if let Ok(out) = std::process::Command::new("ip")
                .args(["netns", "pids", &ns])
                .output()
            {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = std::process::Command::new("kill")
                        .args(["-9", pid])
                        .status();
                }
            }
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &ns])
                .output();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{mac, namespace, tap_name};

    #[test]
    fn namespace_names_are_stable_and_short() {
        assert_eq!(
            namespace("vpc-110105001-main"),
            namespace("vpc-110105001-main")
        );
        assert_ne!(
            namespace("vpc-110105001-main"),
            namespace("vpc-110105002-main")
        );
        assert_eq!(namespace("vpc-a").len(), "ysvpc-".len() + 16);
    }

    #[test]
    fn tap_names_fit_the_kernel_limit_and_macs_are_local() {
        let t = tap_name("vm-110105001-web-1", 0);
        assert!(t.len() <= 15, "{t}");
        assert_ne!(t, tap_name("vm-110105001-web-2", 0));
        assert_ne!(t, tap_name("vm-110105001-web-1", 1));
        assert!(mac("vm-a", 0).starts_with("52:54:00:"));
        assert_ne!(mac("vm-a", 0), mac("vm-b", 0));
    }
}
