//! Addresses of the rack's provisioning network. A BMC has no switch or
//! firewall to program, so a VPC and its subnets are address plans here:
//! their CIDRs are checked, and every bare-metal NIC gets an address of its
//! subnet that no other NIC of the driver holds. What is in use is whatever
//! the driver's resources say (their outputs are persisted), so nothing is
//! kept twice and a release is the resource going away.

use yunshu_driver_sdk::cidr::{Cidr, fmt_ip, parse_ip};

/// Why an address cannot be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("{ip} is not an address of subnet {cidr}")]
    Outside { ip: String, cidr: String },
    #[error("{ip} is the network, broadcast or gateway address of {cidr}")]
    Reserved { ip: String, cidr: String },
    #[error("{ip} is already given to another server")]
    Taken { ip: String },
    #[error("{0:?} is not an IPv4 address")]
    NotAnAddress(String),
    #[error("subnet {cidr} has no free address left")]
    Exhausted { cidr: String },
}

/// The gateway of a subnet: the one its spec names, else the first host.
pub fn gateway(cidr: &Cidr, named: &str) -> Option<u32> {
    if named.is_empty() {
        cidr.first_host()
    } else {
        parse_ip(named)
    }
}

/// An address of `cidr` for a NIC: `wanted` when given (checked), else the
/// lowest free one. `used` are addresses other NICs hold.
pub fn allocate(
    cidr: &Cidr,
    gateway: Option<u32>,
    wanted: &str,
    used: &[u32],
) -> Result<u32, IpamError> {
    let net = cidr.to_string();
    // /31 and /32 have no network or broadcast to skip (RFC 3021).
    let (first, last) = if cidr.prefix >= 31 {
        (cidr.net, cidr.last())
    } else {
        (cidr.net + 1, cidr.last() - 1)
    };
    let free = |a: u32| Some(a) != gateway && !used.contains(&a);
    if !wanted.is_empty() {
        let ip = parse_ip(wanted).ok_or_else(|| IpamError::NotAnAddress(wanted.to_owned()))?;
        if !cidr.contains(ip) {
            return Err(IpamError::Outside {
                ip: wanted.to_owned(),
                cidr: net,
            });
        }
        if ip < first || ip > last || Some(ip) == gateway {
            return Err(IpamError::Reserved {
                ip: wanted.to_owned(),
                cidr: net,
            });
        }
        if used.contains(&ip) {
            return Err(IpamError::Taken {
                ip: wanted.to_owned(),
            });
        }
        return Ok(ip);
    }
    (first..=last)
        .find(|a| free(*a))
        .ok_or(IpamError::Exhausted { cidr: net })
}

/// Dotted form, for outputs.
pub fn show(addr: u32) -> String {
    fmt_ip(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cidr: &str, gw: &str, wanted: &str, used: &[&str], expected: Result<&str, IpamError>) {
        let c = Cidr::parse(cidr).expect("cidr");
        let used: Vec<u32> = used.iter().filter_map(|u| parse_ip(u)).collect();
        let got = allocate(&c, gateway(&c, gw), wanted, &used).map(show);
        assert_eq!(
            got,
            expected.map(str::to_owned),
            "{cidr} {wanted:?} {used:?}"
        );
    }

    #[test]
    fn allocation() {
        check("10.0.0.0/24", "", "", &[], Ok("10.0.0.2"));
        check(
            "10.0.0.0/24",
            "",
            "",
            &["10.0.0.2", "10.0.0.3"],
            Ok("10.0.0.4"),
        );
        check("10.0.0.0/24", "10.0.0.254", "", &[], Ok("10.0.0.1"));
        check("10.0.0.0/24", "", "10.0.0.9", &[], Ok("10.0.0.9"));
        check(
            "10.0.0.0/24",
            "",
            "10.0.0.9",
            &["10.0.0.9"],
            Err(IpamError::Taken {
                ip: "10.0.0.9".into(),
            }),
        );
        check(
            "10.0.0.0/24",
            "",
            "10.0.1.9",
            &[],
            Err(IpamError::Outside {
                ip: "10.0.1.9".into(),
                cidr: "10.0.0.0/24".into(),
            }),
        );
        check(
            "10.0.0.0/24",
            "",
            "10.0.0.255",
            &[],
            Err(IpamError::Reserved {
                ip: "10.0.0.255".into(),
                cidr: "10.0.0.0/24".into(),
            }),
        );
        check(
            "10.0.0.0/30",
            "",
            "",
            &["10.0.0.2"],
            Err(IpamError::Exhausted {
                cidr: "10.0.0.0/30".into(),
            }),
        );
        check(
            "10.0.0.0/24",
            "",
            "x",
            &[],
            Err(IpamError::NotAnAddress("x".into())),
        );
    }
}
