//! `yunshu-qemu-driver`: real virtual machines on this host through QEMU,
//! served to a yunshu controller over the driver protocol with mutual TLS.
//! Registers with a one-time bootstrap token like every driver. It builds
//! VPCs, subnets, security groups, VMs (an x86_64 pool and, unless turned
//! off, an arm64 pool and on hosts of four or more cores a c86 pool carved
//! out of this host), volumes, backups, load balancers and public
//! IPs; its `GetInfo` says so, and the controller refuses orders needing more.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use yunshu_driver_sdk::{EventLog, ServeOptions};
use yunshu_qemu::driver::{Arm64Pool, C86Pool, QemuConfig, QemuDriver, host_memory_mib};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::vm::Accel;

/// yunshu QEMU driver: one QEMU process per VM on this host.
#[derive(Debug, Parser)]
#[command(name = "yunshu-qemu-driver", version, about)]
struct Args {
    /// Provider name this driver serves (lowercase letters, digits, '-').
    #[arg(long, default_value = "qemu", env = "YUNSHU_PROVIDER")]
    provider: String,
    /// The controller's HTTP API.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080",
        env = "YUNSHU_CONTROLLER"
    )]
    controller: String,
    /// PEM file of the CA the controller API's certificate chains to, when it
    /// is the operator's (`yunshu serve --tls-cert`); a certificate from the
    /// controller's own CA is trusted through the bootstrap token.
    #[arg(long, env = "YUNSHU_CONTROLLER_CA")]
    controller_ca: Option<std::path::PathBuf>,
    /// One-time bootstrap token (`yunshu driver-token create`).
    #[arg(long, env = "YUNSHU_DRIVER_TOKEN")]
    token: Option<String>,
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
    /// Address to serve gRPC on.
    #[arg(long, default_value = "127.0.0.1:7444", env = "YUNSHU_LISTEN")]
    listen: SocketAddr,
    /// `host:port` the controller should dial (default: the bound address).
    #[arg(long)]
    advertise: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
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
    let controller_ca_pem =
        yunshu_driver_sdk::server::read_controller_ca(args.controller_ca.as_deref())?;
    let options = ServeOptions {
        provider: args.provider,
        controller: args.controller,
        controller_ca_pem,
        token: args.token,
        state_dir: args.state_dir,
        advertise: args.advertise,
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    // The VMs keep running when the driver stops: a restarted driver adopts them.
    yunshu_driver_sdk::serve(Arc::new(driver), log, args.listen, options, shutdown)
        .await
        .map_err(|e| e.to_string())
}
