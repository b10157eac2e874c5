//! Tenant networks inside network namespaces the driver makes (issue 15,
//! networks, first step): a VPC is a namespace holding a Linux bridge, and
//! each subnet of the VPC is the gateway address on that bridge. Two tenants
//! may use the same CIDR: their addresses live in different namespaces and
//! never meet. Nothing here touches the host's own interfaces.
//!
//! Namespace names are derived from the VPC id with a stable hash (FNV-1a),
//! so a restarted driver finds its namespaces again ([`list_vpcs`]).

use tokio::process::Command;

use crate::QemuError;

/// Every namespace this driver makes starts with this.
pub const PREFIX: &str = "ysvpc-";

/// The bridge inside every VPC namespace (interface names are per namespace).
const BRIDGE: &str = "br0";

/// FNV-1a, 64 bits: stable across builds and Rust versions (unlike the
/// standard library's hasher), so names survive an upgrade.
fn fnv1a(text: &str) -> u64 {
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

/// Creates the VPC's namespace and bridge (idempotent); returns the namespace.
pub async fn create_vpc(vpc_id: &str) -> Result<String, QemuError> {
    let ns = namespace(vpc_id);
    if !list_vpcs().await?.contains(&ns) {
        ip(&["netns", "add", &ns]).await?;
    }
    if ip(&["-n", &ns, "link", "show", BRIDGE]).await.is_err() {
        ip(&["-n", &ns, "link", "add", BRIDGE, "type", "bridge"]).await?;
    }
    ip(&["-n", &ns, "link", "set", "lo", "up"]).await?;
    ip(&["-n", &ns, "link", "set", BRIDGE, "up"]).await?;
    Ok(ns)
}

/// Puts subnet `cidr`'s gateway (its first address) on the VPC's bridge
/// (idempotent: `addr replace`).
pub async fn add_subnet(
    vpc_id: &str,
    gateway: std::net::Ipv4Addr,
    prefix: u8,
) -> Result<(), QemuError> {
    let ns = namespace(vpc_id);
    ip(&[
        "-n",
        &ns,
        "addr",
        "replace",
        &format!("{gateway}/{prefix}"),
        "dev",
        BRIDGE,
    ])
    .await
    .map(|_| ())
}

/// Removes a subnet's gateway from the bridge (idempotent).
pub async fn remove_subnet(
    vpc_id: &str,
    gateway: std::net::Ipv4Addr,
    prefix: u8,
) -> Result<(), QemuError> {
    let ns = namespace(vpc_id);
    match ip(&[
        "-n",
        &ns,
        "addr",
        "del",
        &format!("{gateway}/{prefix}"),
        "dev",
        BRIDGE,
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

/// The IPv4 addresses (with prefix) on the VPC's bridge.
pub async fn gateways(vpc_id: &str) -> Result<Vec<String>, QemuError> {
    let ns = namespace(vpc_id);
    Ok(ip(&["-n", &ns, "-4", "-o", "addr", "show", "dev", BRIDGE])
        .await?
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next().map(str::to_owned)
        })
        .collect())
}

/// A tap device on the VPC's bridge for a guest's NIC (idempotent).
pub async fn add_tap(vpc_id: &str, tap: &str) -> Result<(), QemuError> {
    let ns = namespace(vpc_id);
    if ip(&["-n", &ns, "link", "show", tap]).await.is_err() {
        ip(&["-n", &ns, "tuntap", "add", "dev", tap, "mode", "tap"]).await?;
    }
    ip(&["-n", &ns, "link", "set", tap, "master", BRIDGE, "up"])
        .await
        .map(|_| ())
}

/// Deletes the VPC's namespace with everything in it (idempotent).
pub async fn delete_vpc(vpc_id: &str) -> Result<(), QemuError> {
    let ns = namespace(vpc_id);
    if list_vpcs().await?.contains(&ns) {
        ip(&["netns", "del", &ns]).await?;
    }
    Ok(())
}

/// Deletes the namespaces of the given VPCs when dropped (tests: however
/// they end).
pub struct DeleteOnDrop(pub Vec<String>);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        for vpc in &self.0 {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &namespace(vpc)])
                .output();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::namespace;

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
}
