//! `yunshu-sim-driver`: the **simulator** driver as a process. It registers with a
//! yunshu controller using a one-time bootstrap token and serves the driver
//! protocol over mutual TLS. A datacenter in memory — never a real cloud.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use yunshu_driver_sdk::EventLog;
use yunshu_driver_sdk::cli::{self, Defaults, ServeArgs, error_chain as chain};
use yunshu_sim::{Sim, SimConfig};

/// yunshu simulator driver (模拟器): a datacenter in memory for demos, development
/// and scale tests.
#[derive(Debug, Parser)]
#[command(name = "yunshu-sim-driver", version, about)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
    /// Where the driver keeps its key and certificate.
    #[arg(long, default_value = "sim-driver-state", env = "YUNSHU_STATE_DIR")]
    state_dir: PathBuf,
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
}

fn main() -> ExitCode {
    let args: Args = cli::parse(Defaults {
        provider: "sim",
        listen: "127.0.0.1:7443",
    });
    let format = args.serve.log_format.clone();
    cli::run(&format, run(args))
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
        provider = %args.serve.provider,
        "starting the yunshu SIMULATOR driver (a datacenter in memory, not a real cloud)"
    );
    args.serve.serve(Arc::new(sim), log, args.state_dir).await
}
