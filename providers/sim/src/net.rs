//! The simulator's [`AddressBook`], the allocator behind public IP pools and
//! subnets, over the SDK's CIDR arithmetic (shared with real drivers).
//!
//! Addresses are plain `u32`s inside the simulator; they become dotted strings only
//! in outputs and messages.

use std::collections::HashMap;

pub(crate) use yunshu_driver_sdk::cidr::{Cidr, fmt_ip, parse_ip};

/// Allocatable addresses (a few contiguous spans) and who holds each one in use.
///
/// Allocation scans from a cursor that follows the last address taken, so filling
/// a pool in order costs O(1) per address; only a nearly full, fragmented pool
/// scans further (bounded by its size).
#[derive(Debug, Clone)]
pub(crate) struct AddressBook {
    /// (first address, count), in order; never overlapping.
    spans: Vec<(u32, u64)>,
    total: u64,
    used: HashMap<u32, String>,
    cursor: u64,
}

impl AddressBook {
    pub fn new(spans: Vec<(u32, u64)>) -> Self {
        let spans: Vec<(u32, u64)> = spans.into_iter().filter(|(_, n)| *n > 0).collect();
        let total = spans.iter().map(|(_, n)| n).sum();
        AddressBook {
            spans,
            total,
            used: HashMap::new(),
            cursor: 0,
        }
    }

    /// Every address of the CIDRs (a public pool hands out each one).
    pub fn from_cidrs(cidrs: &[Cidr]) -> Self {
        let mut spans: Vec<(u32, u64)> = cidrs.iter().map(|c| (c.net, c.size())).collect();
        spans.sort_unstable();
        AddressBook::new(spans)
    }

    /// A subnet's hosts: everything but the network, broadcast and gateway address.
    pub fn for_subnet(cidr: &Cidr, gateway: u32) -> Self {
        let first = u64::from(cidr.net) + 1;
        let last = u64::from(cidr.last()).saturating_sub(1);
        let gw = u64::from(gateway);
        let mut spans = Vec::new();
        if last >= first {
            if (first..=last).contains(&gw) {
                spans.push((cidr.net + 1, gw - first));
                spans.push((gateway.saturating_add(1), last - gw));
            } else {
                spans.push((cidr.net + 1, last - first + 1));
            }
        }
        AddressBook::new(spans)
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn in_use(&self) -> usize {
        self.used.len()
    }

    #[cfg(test)]
    pub fn free(&self) -> u64 {
        self.total.saturating_sub(self.used.len() as u64)
    }

    fn index_of(&self, addr: u32) -> Option<u64> {
        let mut base = 0;
        for &(start, n) in &self.spans {
            let a = u64::from(addr);
            let s = u64::from(start);
            if a >= s && a < s + n {
                return Some(base + a - s);
            }
            base += n;
        }
        None
    }

    fn addr_at(&self, mut index: u64) -> Option<u32> {
        for &(start, n) in &self.spans {
            if index < n {
                return u32::try_from(u64::from(start) + index).ok();
            }
            index -= n;
        }
        None
    }

    /// Whether `addr` is one this book can hand out.
    pub fn allocatable(&self, addr: u32) -> bool {
        self.index_of(addr).is_some()
    }

    /// The holder of the lowest address in use (deterministic, for messages).
    pub fn any_holder(&self) -> Option<&str> {
        self.used
            .iter()
            .min_by_key(|(addr, _)| **addr)
            .map(|(_, holder)| holder.as_str())
    }

    pub fn holder(&self, addr: u32) -> Option<&str> {
        self.used.get(&addr).map(String::as_str)
    }

    /// A free address that `skip` does not exclude (addresses picked earlier in the
    /// same plan), without taking it.
    pub fn pick(&self, skip: impl Fn(u32) -> bool) -> Option<u32> {
        if self.total == 0 {
            return None;
        }
        for step in 0..self.total {
            let index = (self.cursor + step) % self.total;
            let addr = self.addr_at(index)?;
            if !self.used.contains_key(&addr) && !skip(addr) {
                return Some(addr);
            }
        }
        None
    }

    pub fn take(&mut self, addr: u32, holder: &str) {
        self.used.insert(addr, holder.to_owned());
        if let Some(i) = self.index_of(addr) {
            self.cursor = (i + 1) % self.total.max(1);
        }
    }

    /// Frees `addr` if `holder` holds it (a stale release never frees another's).
    pub fn release(&mut self, addr: u32, holder: &str) {
        if self.used.get(&addr).is_some_and(|h| h == holder) {
            self.used.remove(&addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_rules() {
        let c = Cidr::parse("10.1.0.0/16").expect("valid");
        assert_eq!(c.size(), 65536);
        assert!(c.contains(parse_ip("10.1.255.255").expect("ip")));
        assert!(!c.contains(parse_ip("10.2.0.0").expect("ip")));
        assert!(c.contains_cidr(&Cidr::parse("10.1.4.0/24").expect("valid")));
        assert!(!c.contains_cidr(&Cidr::parse("10.0.0.0/8").expect("valid")));
        assert!(c.overlaps(&Cidr::parse("10.0.0.0/8").expect("valid")));
        assert!(Cidr::parse("10.1.0.1/16").is_err(), "host bits");
        assert!(Cidr::parse("10.1.0.0/33").is_err());
        assert!(Cidr::parse("10.1.0/16").is_err());
        assert!(Cidr::parse("10.1.0.0").is_err());
        assert_eq!(Cidr::parse("0.0.0.0/0").expect("valid").size(), 1 << 32);
        assert_eq!(c.to_string(), "10.1.0.0/16");
    }

    #[test]
    fn subnet_book_skips_network_gateway_broadcast() {
        let c = Cidr::parse("192.168.0.0/29").expect("valid");
        let gw = parse_ip("192.168.0.1").expect("ip");
        let mut book = AddressBook::for_subnet(&c, gw);
        assert_eq!(book.total(), 5);
        let mut got = Vec::new();
        while let Some(a) = book.pick(|_| false) {
            book.take(a, "vm/x");
            got.push(fmt_ip(a));
        }
        assert_eq!(
            got,
            [
                "192.168.0.2",
                "192.168.0.3",
                "192.168.0.4",
                "192.168.0.5",
                "192.168.0.6"
            ]
        );
        assert_eq!(book.free(), 0);
        book.release(parse_ip("192.168.0.4").expect("ip"), "vm/other");
        assert_eq!(book.free(), 0, "only the holder releases");
        book.release(parse_ip("192.168.0.4").expect("ip"), "vm/x");
        assert_eq!(
            book.pick(|_| false).map(fmt_ip).as_deref(),
            Some("192.168.0.4")
        );
    }

    #[test]
    fn pool_book_spans_cidrs() {
        let cidrs = [
            Cidr::parse("203.0.113.0/31").expect("valid"),
            Cidr::parse("198.51.100.8/30").expect("valid"),
        ];
        let book = AddressBook::from_cidrs(&cidrs);
        assert_eq!(book.total(), 6);
        assert!(book.allocatable(parse_ip("203.0.113.1").expect("ip")));
        assert!(!book.allocatable(parse_ip("203.0.113.2").expect("ip")));
    }
}
