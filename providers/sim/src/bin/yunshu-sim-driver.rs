//! `yunshu-sim-driver`: the **simulator** driver as a process. It registers with a
//! yunshu controller using a one-time bootstrap token and serves the driver
//! protocol over mutual TLS. A datacenter in memory — never a real cloud.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use yunshu_domain::error::chain;
use yunshu_driver_sdk::{EventLog, ServeOptions};
use yunshu_sim::{Sim, SimConfig};

/// yunshu simulator driver (模拟器): a datacenter in memory for demos, development
/// and scale tests.
#[derive(Debug, Parser)]
#[command(name = "yunshu-sim-driver", version, about)]
struct Args {
    /// Provider name this driver serves (lowercase letters, digits, '-').
    #[arg(long, default_value = "sim", env = "YUNSHU_PROVIDER")]
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
    /// One-time bootstrap token (`yunshu driver-token create`); only needed until
    /// credentials are saved in --state-dir.
    #[arg(long, env = "YUNSHU_DRIVER_TOKEN")]
    token: Option<String>,
    /// Where the driver keeps its key and certificate.
    #[arg(long, default_value = "sim-driver-state", env = "YUNSHU_STATE_DIR")]
    state_dir: PathBuf,
    /// Address to serve gRPC on.
    #[arg(long, default_value = "127.0.0.1:7443", env = "YUNSHU_LISTEN")]
    listen: SocketAddr,
    /// `host:port` the controller should dial (default: the bound address).
    #[arg(long)]
    advertise: Option<String>,
    /// Datacenter file (TOML or JSON); default: the built-in demo datacenter.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Fault injection: fraction (0.0–1.0) of Apply/Delete/Get calls that fail
    /// with UNAVAILABLE (overrides the config file).
    #[arg(long)]
    error_rate: Option<f64>,
    /// Fault injection: milliseconds added to every call.
    #[arg(long)]
    added_latency_ms: Option<u64>,
    /// Fault injection: cut every watch stream this often (milliseconds).
    #[arg(long)]
    drop_watch_every_ms: Option<u64>,
    /// Exit when the process that started this one exits (used by
    /// `yunshu serve --demo`, so a killed demo leaves no driver behind).
    #[arg(long)]
    exit_with_parent: bool,
    /// Log format: human or json.
    #[arg(long, default_value = "human")]
    log_format: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if args.log_format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
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
    let mut config = match &args.config {
        Some(path) => SimConfig::load(path).map_err(|e| chain(&e))?,
        None => SimConfig::demo(),
    };
    if let Some(rate) = args.error_rate {
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!("--error-rate {rate} must be between 0.0 and 1.0"));
        }
        config.faults.error_rate = rate;
    }
    if let Some(ms) = args.added_latency_ms {
        config.faults.added_latency_ms = ms;
    }
    if let Some(ms) = args.drop_watch_every_ms {
        config.faults.drop_watch_every_ms = Some(ms);
    }
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Sim::new(config, log.sink()).map_err(|e| chain(&e))?;
    tracing::info!(
        provider = %args.provider,
        "starting the yunshu SIMULATOR driver (a datacenter in memory, not a real cloud)"
    );
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
    #[cfg(unix)]
    let exit_with_parent = args.exit_with_parent;
    #[cfg(unix)]
    let shutdown = async move {
        let orphaned = async {
            if !exit_with_parent {
                return std::future::pending().await;
            }
            // A child whose parent died is re-parented: its parent id changes.
            let parent = std::os::unix::process::parent_id();
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                if std::os::unix::process::parent_id() != parent {
                    tracing::info!("the parent process is gone; stopping");
                    return;
                }
            }
        };
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return shutdown.await,
            };
        tokio::select! {
            () = shutdown => {}
            _ = term.recv() => {}
            () = orphaned => {}
        }
    };
    yunshu_driver_sdk::serve(Arc::new(sim), log, args.listen, options, shutdown)
        .await
        .map_err(|e| chain(&e))
}
