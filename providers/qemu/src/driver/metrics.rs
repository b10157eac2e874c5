//! Usage counters of running VMs (`GetMetrics`), read where the host keeps
//! them — nothing estimated:
//!
//! - CPU time: the QEMU process's user + system time (`/proc/<pid>/stat`,
//!   in the kernel's fixed 100 Hz USER_HZ ticks). That is every vCPU plus
//!   the emulation work done for the guest, what the host spent on it.
//! - Memory: the process's resident set (`VmRSS` of `/proc/<pid>/status`):
//!   what the guest has touched plus QEMU itself, not the configured size.
//! - Disks: QMP `query-blockstats`, summed over the VM's drives.
//! - Network: the VM's tap in its VPC namespace (`ip -s -j link`), turned
//!   to the guest's side (what the tap receives, the guest sent).
//!
//! A VM whose QEMU is not running has no sample and is left out.

use yunshu_proto::v1::{self, ResourceKind as K, resource_spec::Spec};

use super::network::vpc_of_subnet;
use super::{QemuDriver, Resources, now_ms, spec_of};
use crate::net;
use crate::vm::Vm;

/// Kernel ticks per second in `/proc/<pid>/stat` (USER_HZ, fixed ABI).
const USER_HZ: u64 = 100;

/// utime + stime of `pid`, ms.
fn cpu_time_ms(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count after its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 1000 / USER_HZ)
}

/// Resident memory of `pid`, MiB.
fn resident_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024)
}

/// (read bytes, written bytes, read ops, write ops) over every drive.
async fn disk_counters(vm: &Vm) -> Option<(u64, u64, u64, u64)> {
    let mut q = vm.qmp().await.ok()?;
    let stats = q.execute("query-blockstats", None).await.ok()?;
    let mut sum = (0, 0, 0, 0);
    for s in stats.as_array()? {
        let n = |k: &str| s["stats"][k].as_u64().unwrap_or(0);
        sum.0 += n("rd_bytes");
        sum.1 += n("wr_bytes");
        sum.2 += n("rd_operations");
        sum.3 += n("wr_operations");
    }
    Some(sum)
}

/// (bytes the tap received, bytes it sent) in `netns`.
async fn tap_counters(netns: &str, tap: &str) -> Option<(u64, u64)> {
    let out = tokio::process::Command::new("ip")
        .args(["-n", netns, "-s", "-j", "link", "show", "dev", tap])
        .output()
        .await
        .ok()?;
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let stats = &links.get(0)?["stats64"];
    Some((
        stats["rx"]["bytes"].as_u64()?,
        stats["tx"]["bytes"].as_u64()?,
    ))
}

/// What to sample for one VM: read under the driver's lock, sampled after it.
pub(super) struct Target {
    id: String,
    dir: std::path::PathBuf,
    /// (namespace, tap) of each NIC.
    taps: Vec<(String, String)>,
}

impl QemuDriver {
    /// The VMs named in `ids` (all when empty) and where their counters are.
    pub(super) fn metric_targets(&self, resources: &Resources, ids: &[String]) -> Vec<Target> {
        resources
            .values()
            .filter(|e| e.request.kind == K::Vm as i32)
            .filter(|e| ids.is_empty() || ids.contains(&e.request.id))
            .filter_map(|e| match spec_of(&e.request) {
                Some(Spec::Vm(spec)) => Some((e, spec)),
                _ => None,
            })
            .map(|(e, spec)| {
                let id = e.request.id.clone();
                let taps = spec
                    .nics
                    .iter()
                    .enumerate()
                    .filter_map(|(i, nic)| {
                        let vpc = vpc_of_subnet(resources, &nic.subnet)?;
                        Some((net::namespace(vpc), net::tap_name(&id, i)))
                    })
                    .collect();
                Target {
                    dir: self.vm_dir(&id),
                    id,
                    taps,
                }
            })
            .collect()
    }

    /// A sample of each target whose QEMU runs (without the driver's lock:
    /// QMP and `ip` take milliseconds per VM).
    pub(super) async fn sample(targets: Vec<Target>) -> Vec<v1::VmMetrics> {
        let mut out = Vec::new();
        for t in targets {
            let Some(vm) = Vm::adopt(&t.dir) else {
                continue;
            };
            let pid = vm.pid();
            let mut m = v1::VmMetrics {
                id: t.id,
                sampled_unix_ms: now_ms(),
                cpu_time_ms: cpu_time_ms(pid).unwrap_or(0),
                memory_resident_mib: resident_mib(pid).unwrap_or(0),
                ..Default::default()
            };
            if let Some((rd, wr, rd_ops, wr_ops)) = disk_counters(&vm).await {
                (m.disk_read_bytes, m.disk_write_bytes) = (rd, wr);
                (m.disk_read_ops, m.disk_write_ops) = (rd_ops, wr_ops);
            }
            for (netns, tap) in &t.taps {
                if let Some((tap_rx, tap_tx)) = tap_counters(netns, tap).await {
                    // The tap receives what the guest sends, and the reverse.
                    m.net_tx_bytes += tap_rx;
                    m.net_rx_bytes += tap_tx;
                }
            }
            out.push(m);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_resident_memory() {
        let pid = std::process::id();
        // Spend a little CPU so the figure cannot be an untouched zero.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i ^ (x >> 3));
        }
        assert!(x != 1);
        assert!(cpu_time_ms(pid).is_some_and(|ms| ms > 0));
        assert!(resident_mib(pid).is_some_and(|m| m > 0));
        assert_eq!(cpu_time_ms(u32::MAX), None);
    }
}
