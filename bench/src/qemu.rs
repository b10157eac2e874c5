//! `qemu`: from approval to every guest's serial marker through the real QEMU
//! driver — an in-process `yunshu serve` and the QEMU driver over gRPC + mTLS
//! on this host, orders of one-vCPU / 1 GiB VMs (one line per VM: a line is
//! an anti-affinity group and this driver is one host).
//!
//! Wall time runs from the approval to the order's `test_env_ready` (every VM
//! observed RUNNING, which this driver reports when the guest's marker is on
//! its console). The control plane's share is the wall time minus the
//! slowest guest's own boot (QEMU start to marker, the driver's `boot_ms`):
//! approval, placement, the reconciler's writes, gRPC and the driver's
//! networking and disks.
//!
//! Counts asked beyond what the host may carry (4 vCPU per core; the arm64
//! pool gets its own cores) are capped and the cap is printed: the product
//! refuses them, the bench does not pretend.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, People, RunningDriver};
use yunshu_qemu::driver::{Arm64Pool, QemuConfig, QemuDriver};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::vm::{Accel, ReapOnDrop};

use crate::report::bench;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// x86_64 VM counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,10,50")]
    x86: Vec<u32>,
    /// arm64 VM counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,5")]
    arm64: Vec<u32>,
    /// Cores set aside for the arm64 pool in its runs.
    #[arg(long, default_value_t = 1)]
    arm64_cores: u32,
}

fn line(name: &str, arch: &str) -> serde_json::Value {
    json!({
        "server": {
            "server_name": name, "network_area": "gov_extranet", "form": "vm",
            "architecture": arch, "vcpu": 1, "memory_gib": 1, "system_disk_gib": 20,
            "data_disk_gib": 0, "os": "openEuler 22.03", "purpose": "bench", "backup_gib": 0
        },
        "quantity": 1
    })
}

/// Deletes the driver's "internet" namespace of a run when dropped.
struct PublicOnDrop(String);

impl Drop for PublicOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

/// One run: `n` VMs of `arch` on a fresh controller and driver.
async fn run_one(
    arch: &str,
    n: u32,
    accel: Accel,
    arm64: Option<Arm64Pool>,
    x86: guest::GuestImage,
) -> anyhow::Result<(f64, f64)> {
    let state = tempfile::tempdir()?;
    let _reaper = ReapOnDrop(state.path().join("vms"));
    // Nothing of a run outlives it: balancers, DHCP services, namespaces.
    let _balancers = yunshu_qemu::lb::StopOnDrop(state.path().join("lbs"));
    let _services = yunshu_qemu::dhcp::StopOnDrop(state.path().join("dhcp"));
    let c = Controller::start(Duration::from_secs(3600)).await;
    let people = People::create(&c.url, &c.admin_token).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let qemu = QemuDriver::open(
        QemuConfig {
            state_dir: state.path().to_path_buf(),
            image: x86,
            accel,
            reserved_memory_mib: 1024,
            c86: None,
            arm64,
        },
        log.sink(),
    )
    .await?;
    let token = c.token("qemu").await;
    let _driver = RunningDriver::start(Arc::new(qemu), log, &c.url, "qemu", Some(token)).await;
    // The driver's offer must be recorded before approval (else refused).
    c.wait_driver_healthy("qemu").await;
    let lines: Vec<serde_json::Value> = (1..=n).map(|i| line(&format!("s{i}"), arch)).collect();
    let (system, order) = people
        .accepted_order(&c.url, &format!("bench {arch} {n}"), "qemu", lines)
        .await;
    let approved = Instant::now();
    people.approve(&c.url, &order).await;
    loop {
        if people.order_state(&c.url, &order).await.as_deref() == Some("test_env_ready") {
            break;
        }
        anyhow::ensure!(
            approved.elapsed() < Duration::from_secs(900),
            "{n} {arch} VMs not ready in 900 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wall = approved.elapsed().as_secs_f64();
    let (_, list) = c
        .api(
            "GET",
            &format!("/api/v1/systems/{system}/resources"),
            &people.wang,
            None,
        )
        .await;
    let vpcs: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["kind"] == "vpc")
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    let _nets = yunshu_qemu::net::DeleteOnDrop(vpcs);
    let _public = PublicOnDrop(yunshu_qemu::net::public_namespace(
        &state.path().display().to_string(),
    ));
    let slowest_boot_ms = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["outputs"]["boot_ms"].as_str()?.parse::<f64>().ok())
        .fold(0.0_f64, f64::max);
    let control = (wall - slowest_boot_ms / 1000.0).max(0.0);
    Ok((wall, control))
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let cache = guest::default_cache_dir();
    let x86 = guest::build(&cache, GuestArch::X86_64).await?;
    let arm = guest::build(&cache, GuestArch::Arm64).await?;
    let probe_dir = tempfile::tempdir()?;
    let probe = yunshu_qemu::accel::probe(&x86, probe_dir.path(), Duration::from_secs(20)).await?;
    let accel = probe.accel;
    println!(
        "# accelerator: x86_64 {} ({}), arm64 tcg",
        accel.as_str(),
        probe.reason
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let cases = options
        .x86
        .iter()
        .map(|n| ("x86_64", *n))
        .chain(options.arm64.iter().map(|n| ("arm64", *n)));
    for (arch, asked) in cases {
        // 4 vCPU per core: the most one-vCPU guests the pool may hold.
        let (cap, arm64) = if arch == "arm64" {
            (
                options.arm64_cores * 4,
                Some(Arm64Pool {
                    image: arm.clone(),
                    cores: options.arm64_cores,
                    memory_mib: 8 * 1024,
                }),
            )
        } else {
            (cores * 4, None)
        };
        let n = asked.min(cap);
        if n < asked {
            println!(
                "# {arch}: {asked} asked, {n} measured (the pool holds {cap} one-vCPU guests at 4 per core)"
            );
        }
        let (wall, control) = run_one(arch, n, accel, arm64, x86.clone()).await?;
        let name = format!("qemu_{arch}_{n}");
        bench(&format!("{name}_approval_to_marker"), wall, "s");
        bench(&format!("{name}_control_plane"), control, "s");
        bench(
            &format!("{name}_control_plane_share"),
            100.0 * control / wall.max(1e-9),
            "%",
        );
    }
    Ok(())
}
