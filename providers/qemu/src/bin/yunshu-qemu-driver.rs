//! `yunshu-qemu-driver`: real virtual machines on this host through QEMU,
//! served to a yunshu controller over the driver protocol with mutual TLS.
//! Registers with a one-time bootstrap token like every driver. It builds
//! VPCs, subnets, security groups, VMs (an x86_64 pool and, unless turned
//! off, an arm64 pool and on hosts of four or more cores a c86 pool carved
//! out of this host), volumes, backups, load balancers and public
//! IPs; its `GetInfo` says so, and the controller refuses orders needing more.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use yunshu_driver_sdk::EventLog;
use yunshu_driver_sdk::cli::{self, Defaults, ServeArgs};
use yunshu_qemu::driver::{Arm64Pool, C86Pool, QemuConfig, QemuDriver, host_memory_mib};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::vm::Accel;

/// yunshu QEMU driver: one QEMU process per VM on this host.
#[derive(Debug, Parser)]
#[command(name = "yunshu-qemu-driver", version, about)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
    /// Key, certificate and the VMs' directories (`<dir>/vms/<id>`).
    #[arg(long, default_value = "qemu-driver-state", env = "YUNSHU_STATE_DIR")]
    state_dir: PathBuf,
    /// Where the tiny guest built from Debian packages is kept (default
    /// `$YUNSHU_GUEST_CACHE`, else `$HOME/.cache/yunshu-guest`).
    #[arg(long)]
    guest_cache: Option<PathBuf>,
    /// Memory kept for the host, never given to guests (MiB).
    #[arg(long, default_value_t = 2048)]
    reserved_memory_mib: u64,
    /// Cores set aside for the arm64 pool (0 = no arm64 pool; default: a
    /// quarter of the cores, at least one, when the host has two or more).
    #[arg(long)]
    arm64_cores: Option<u32>,
    /// Memory set aside for the arm64 pool (MiB; default: a quarter of the
    /// host's memory).
    #[arg(long)]
    arm64_memory_mib: Option<u64>,
    /// Cores set aside for the c86 (海光 Hygon) pool: x86_64 guests on QEMU's
    /// `Dhyana` CPU model (0 = no c86 pool; default: a quarter of the cores
    /// when the host has four or more).
    #[arg(long)]
    c86_cores: Option<u32>,
    /// Memory set aside for the c86 pool (MiB; default: a quarter of the
    /// host's memory).
    #[arg(long)]
    c86_memory_mib: Option<u64>,
    /// `auto` boots a probe guest under KVM and falls back to TCG.
    #[arg(long, default_value = "auto", value_parser = ["auto", "kvm", "tcg"])]
    accel: String,
}

fn main() -> ExitCode {
    let args: Args = cli::parse(Defaults {
        provider: "qemu",
        listen: "127.0.0.1:7444",
    });
    let format = args.serve.log_format.clone();
    cli::run(&format, run(args))
}

async fn run(args: Args) -> Result<(), String> {
    let cache = args.guest_cache.unwrap_or_else(guest::default_cache_dir);
    let image = guest::build(&cache, GuestArch::X86_64)
        .await
        .map_err(|e| format!("building the guest image: {e}"))?;
    let accel = match args.accel.as_str() {
        "kvm" => Accel::Kvm,
        "tcg" => Accel::Tcg,
        _ => {
            let probe = yunshu_qemu::accel::probe_cached(
                &image,
                &args.state_dir.join("kvm-probe"),
                Duration::from_secs(20),
            )
            .await
            .map_err(|e| format!("accelerator probe: {e}"))?;
            tracing::info!(accel = probe.accel.as_str(), reason = %probe.reason, "accelerator chosen");
            probe.accel
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let arm64_cores = args
        .arm64_cores
        .unwrap_or(if cores >= 2 { (cores / 4).max(1) } else { 0 });
    let arm64 = if arm64_cores == 0 {
        None
    } else {
        match guest::build(&cache, GuestArch::Arm64).await {
            Ok(image) => Some(Arm64Pool {
                image,
                cores: arm64_cores,
                memory_mib: args
                    .arm64_memory_mib
                    .unwrap_or_else(|| host_memory_mib() / 4),
            }),
            Err(e) => {
                // x86_64 guests are still worth serving; say why arm64 is not.
                tracing::warn!(error = %e, "no arm64 pool: its guest could not be built");
                None
            }
        }
    };
    let c86_cores = args
        .c86_cores
        .unwrap_or(if cores >= 4 { cores / 4 } else { 0 });
    let c86 = (c86_cores > 0).then(|| C86Pool {
        cores: c86_cores,
        memory_mib: args.c86_memory_mib.unwrap_or_else(|| host_memory_mib() / 4),
    });
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let driver = QemuDriver::open(
        QemuConfig {
            state_dir: args.state_dir.clone(),
            image,
            accel,
            reserved_memory_mib: args.reserved_memory_mib,
            c86,
            arm64,
        },
        log.sink(),
    )
    .await
    .map_err(|e| format!("opening {}: {e}", args.state_dir.display()))?;
    // The VMs keep running when the driver stops: a restarted driver adopts them.
    args.serve
        .serve(Arc::new(driver), log, args.state_dir)
        .await
}
