//! `yunshu-redfish-driver`: a rack of physical servers behind Redfish BMCs,
//! served to a yunshu controller over the driver protocol with mutual TLS.
//! Registers with a one-time bootstrap token like every driver.
//!
//! Everything about the BMCs is in the configuration file (`--config`);
//! passwords come from files or environment variables it names, never from
//! the command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use yunshu_driver_sdk::EventLog;
use yunshu_driver_sdk::cli::{self, Defaults, ServeArgs, error_chain};
use yunshu_redfish::{Config, RedfishDriver};

/// yunshu Redfish bare-metal driver.
#[derive(Debug, Parser)]
#[command(name = "yunshu-redfish-driver", version, about)]
struct Args {
    /// The configuration file (TOML; JSON when it ends in `.json`).
    #[arg(long, env = "YUNSHU_REDFISH_CONFIG")]
    config: PathBuf,
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> ExitCode {
    let args: Args = cli::parse(Defaults {
        provider: "redfish",
        listen: "127.0.0.1:7445",
    });
    let format = args.serve.log_format.clone();
    cli::run(&format, run(args))
}

async fn run(args: Args) -> Result<(), String> {
    let config = Config::load(&args.config).map_err(|e| error_chain(&e))?;
    let state_dir = config.state_dir.clone();
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let driver = RedfishDriver::open(config, log.sink())
        .await
        .map_err(|e| error_chain(&e))?;
    // The servers keep running when the driver stops: a restarted driver
    // adopts them from its state directory.
    let driver = Arc::new(driver);
    let served = args.serve.serve(driver.clone(), log, state_dir).await;
    driver.logout().await;
    served
}
