//! `yunshu-redfish-driver`: a rack of physical servers behind Redfish BMCs,
//! served to a yunshu controller over the driver protocol with mutual TLS.
//! Registers with a one-time bootstrap token like every driver.
//!
//! Everything about the BMCs is in the configuration file (`--config`);
//! passwords come from files or environment variables it names, never from
//! the command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use yunshu_driver_sdk::{EventLog, ServeOptions};
use yunshu_redfish::{Config, RedfishDriver};

/// yunshu Redfish bare-metal driver.
#[derive(Debug, Parser)]
#[command(name = "yunshu-redfish-driver", version, about)]
struct Args {
    /// The configuration file (TOML; JSON when it ends in `.json`).
    #[arg(long, env = "YUNSHU_REDFISH_CONFIG")]
    config: PathBuf,
    /// Provider name this driver serves (lowercase letters, digits, '-').
    #[arg(long, default_value = "redfish", env = "YUNSHU_PROVIDER")]
    provider: String,
    /// The controller's HTTP API.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080",
        env = "YUNSHU_CONTROLLER"
    )]
    controller: String,
    /// PEM file of the CA the controller API's certificate chains to, when it
    /// is the operator's; a certificate from the controller's own CA is
    /// trusted through the bootstrap token.
    #[arg(long, env = "YUNSHU_CONTROLLER_CA")]
    controller_ca: Option<PathBuf>,
    /// One-time bootstrap token (`yunshu driver-token create`).
    #[arg(long, env = "YUNSHU_DRIVER_TOKEN")]
    token: Option<String>,
    /// Address to serve gRPC on.
    #[arg(long, default_value = "127.0.0.1:7445", env = "YUNSHU_LISTEN")]
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
    let config = Config::load(&args.config).map_err(|e| chain(&e))?;
    let state_dir = config.state_dir.clone();
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let driver = RedfishDriver::open(config, log.sink())
        .await
        .map_err(|e| chain(&e))?;
    let controller_ca_pem =
        yunshu_driver_sdk::server::read_controller_ca(args.controller_ca.as_deref())?;
    let options = ServeOptions {
        provider: args.provider,
        controller: args.controller,
        controller_ca_pem,
        token: args.token,
        state_dir,
        advertise: args.advertise,
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    // The servers keep running when the driver stops: a restarted driver
    // adopts them from its state directory.
    yunshu_driver_sdk::serve(Arc::new(driver), log, args.listen, options, shutdown)
        .await
        .map_err(|e| chain(&e))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
