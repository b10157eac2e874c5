//! Loopback ports for the servers tests start.
//!
//! A port handed out here is only known free at the moment it is checked; the
//! server the test starts binds it a little later. With `bind(:0)` the port came
//! from the kernel's ephemeral range — the same range every outgoing `connect()`
//! draws its local port from — so in that gap a client socket (a replica's
//! connection to etcd, an HTTP client of a parallel test) could take it and the
//! server then failed with "Address already in use" (CI, failover test). Ports
//! are therefore chosen *below* the ephemeral range, where no client socket ever
//! lands, and each is handed out once per process.

use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The lowest port handed out: above the well-known ports and the demo's
/// fixed 8080 (the test OpenStack's fixed ports, 43306…49876, lie in the
/// ephemeral range and so outside this one).
const LOWEST: u16 = 15_000;

/// What this process has handed out, and where it looks next.
struct Picker {
    /// Ports already handed out (never given twice).
    given: Vec<u16>,
    /// The next candidate's offset into the range; `None` before the first.
    cursor: Option<u32>,
}

static PICKER: Mutex<Picker> = Mutex::new(Picker {
    given: Vec::new(),
    cursor: None,
});

/// A port on 127.0.0.1 that was free a moment ago and lies outside the
/// kernel's ephemeral range, so no outgoing connection can take it before the
/// caller binds it. Another process picking ports the same way could, so
/// callers that start servers still fail clearly on a clash.
pub fn free_port() -> std::io::Result<u16> {
    let Some(highest) = ephemeral_low().and_then(|low| low.checked_sub(1)) else {
        return kernel_port();
    };
    if highest <= LOWEST {
        return kernel_port();
    }
    let span = u32::from(highest - LOWEST) + 1;
    let mut picker = PICKER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for _ in 0..span.min(4096) {
        let offset = picker.next_offset(span);
        let Ok(port) = u16::try_from(u32::from(LOWEST) + offset) else {
            continue;
        };
        if picker.given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            picker.given.push(port);
            return Ok(port);
        }
    }
    kernel_port()
}

impl Picker {
    /// The next candidate offset in `0..span`. The first starts at a place
    /// drawn from the process id and the clock, so test processes running
    /// side by side (and runs one after another) look in different places;
    /// later ones step by a prime so they sweep the whole span.
    fn next_offset(&mut self, span: u32) -> u32 {
        const STEP: u32 = 7_919;
        let base = self.cursor.unwrap_or_else(seed) % span;
        self.cursor = Some((base + STEP) % span);
        base
    }
}

fn seed() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::process::id().wrapping_mul(2_654_435_761) ^ nanos
}

/// The start of the kernel's ephemeral port range (Linux), if readable.
fn ephemeral_low() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

/// Where the ephemeral range cannot be read (or leaves no room below it): a
/// port from the kernel, as before.
fn kernel_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_and_never_given_twice() {
        let ports: Vec<u16> = (0..200).map(|_| free_port().expect("port")).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "a port was handed out twice");
        if let Some(low) = ephemeral_low()
            && low > LOWEST + 1
        {
            assert!(
                ports.iter().all(|&p| p >= LOWEST && p < low),
                "ports outside {LOWEST}..{low}: {ports:?}"
            );
        }
        for port in ports {
            TcpListener::bind(("127.0.0.1", port)).expect("a handed-out port binds");
        }
    }
}
