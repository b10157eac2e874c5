//! IPv4 arithmetic every driver needs: CIDR parsing (strict: host bits must
//! be zero), containment and overlap, dotted formatting. Addresses are plain
//! `u32`s; they become dotted strings only in outputs and messages.

use std::net::Ipv4Addr;

/// An IPv4 network, `net/prefix`, with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub net: u32,
    pub prefix: u8,
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl Cidr {
    /// Parses `a.b.c.d/p`. Refuses host bits so that a typo such as `10.0.0.1/8`
    /// is reported instead of silently meaning `10.0.0.0/8`.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a CIDR (expected a.b.c.d/prefix)"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("{prefix:?} is not a prefix length (0-32)"))?;
        let net = u32::from(addr);
        let m = mask(prefix);
        if net & !m != 0 {
            return Err(format!(
                "{text} has host bits set; the network is {}/{prefix}",
                fmt_ip(net & m)
            ));
        }
        Ok(Cidr { net, prefix })
    }

    /// Number of addresses, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    pub fn last(&self) -> u32 {
        self.net | !mask(self.prefix)
    }

    pub fn contains(&self, addr: u32) -> bool {
        addr & mask(self.prefix) == self.net
    }

    pub fn contains_cidr(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.net)
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other.net) || other.contains(self.net)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", fmt_ip(self.net), self.prefix)
    }
}

pub fn fmt_ip(addr: u32) -> String {
    Ipv4Addr::from(addr).to_string()
}

pub fn parse_ip(text: &str) -> Option<u32> {
    text.parse::<Ipv4Addr>().ok().map(u32::from)
}

impl Cidr {
    /// The first address that may be given to a host (network + 1), if the
    /// network has room for hosts besides its network and broadcast addresses.
    pub fn first_host(&self) -> Option<u32> {
        (self.prefix <= 30).then_some(self.net + 1)
    }
}
