//! What every driver binary's `main` does the same way: the options to serve
//! the protocol (controller, its CA, bootstrap token, listen address),
//! logging to stderr, the runtime, stopping on SIGINT or SIGTERM (what
//! Kubernetes sends before it kills a pod), and errors turned into the exit
//! code. A driver's binary keeps only what is its own: how to open its cloud.
//!
//! ```ignore
//! #[derive(clap::Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     serve: ServeArgs,
//!     #[arg(long)]
//!     config: PathBuf,
//! }
//! fn main() -> ExitCode {
//!     let args: Args = cli::parse(cli::Defaults { provider: "mycloud", listen: "127.0.0.1:7446" });
//!     let format = args.serve.log_format;
//!     cli::run(format, async move {
//!         let log = EventLog::new(events::DEFAULT_CAPACITY);
//!         let driver = MyCloud::open(&args.config, log.sink()).await.map_err(|e| cli::error_chain(&e))?;
//!         args.serve.serve(Arc::new(driver), log, "mycloud-state".into()).await
//!     })
//! }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tracing_subscriber::EnvFilter;

use crate::{Driver, EventLog, ServeOptions};

/// The options every driver takes to serve the protocol: flatten them into
/// the driver's own arguments (`#[command(flatten)]`) and give the driver's
/// defaults with [`parse`].
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Provider name this driver serves (lowercase letters, digits, '-').
    #[arg(long, env = "YUNSHU_PROVIDER")]
    pub provider: String,
    /// The controller's HTTP API.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080",
        env = "YUNSHU_CONTROLLER"
    )]
    pub controller: String,
    /// PEM file of the CA the controller API's certificate chains to, when it
    /// is the operator's (`yunshu serve --tls-cert`); a certificate from the
    /// controller's own CA is trusted through the bootstrap token.
    #[arg(long, env = "YUNSHU_CONTROLLER_CA")]
    pub controller_ca: Option<PathBuf>,
    /// One-time bootstrap token (`yunshu driver-token create`); only needed
    /// until credentials are saved in the state directory.
    #[arg(long, env = "YUNSHU_DRIVER_TOKEN")]
    pub token: Option<String>,
    /// Address to serve gRPC on.
    #[arg(long, env = "YUNSHU_LISTEN")]
    pub listen: SocketAddr,
    /// `host:port` the controller should dial (default: the bound address).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Exit when the process that started this one exits (used by
    /// `yunshu serve --demo`, so a killed demo leaves no driver behind).
    #[arg(long)]
    pub exit_with_parent: bool,
    /// Log format on stderr: human or json (one object per line, for log
    /// collectors). The level comes from RUST_LOG (default info).
    #[arg(long, default_value = "human", value_parser = ["human", "json"], env = "YUNSHU_LOG_FORMAT")]
    pub log_format: String,
}

/// What differs between drivers among the [`ServeArgs`]: their defaults.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub provider: &'static str,
    pub listen: &'static str,
}

/// Parses the command line of a driver whose arguments flatten
/// [`ServeArgs`], with the driver's defaults (shown in `--help`); exits
/// with clap's message on bad arguments.
pub fn parse<T: clap::Parser>(defaults: Defaults) -> T {
    let mut matches = command::<T>(defaults).get_matches();
    T::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.exit())
}

/// `T`'s command with the driver's defaults for the [`ServeArgs`] that
/// differ between drivers (required no more once they have one).
fn command<T: clap::CommandFactory>(defaults: Defaults) -> clap::Command {
    T::command()
        .mut_arg("provider", |a| {
            a.default_value(defaults.provider).required(false)
        })
        .mut_arg("listen", |a| {
            a.default_value(defaults.listen).required(false)
        })
}

/// Logs to stderr in `log_format`, runs `main` on a multi-threaded runtime
/// and turns its error into a logged message and a failing exit code.
pub fn run(log_format: &str, main: impl Future<Output = Result<(), String>>) -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if log_format == "json" {
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
    match runtime.block_on(main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

impl ServeArgs {
    /// Serves `driver` with these options, its key and certificate in
    /// `state_dir`, until SIGINT or SIGTERM (or, with `--exit-with-parent`,
    /// until the parent process exits).
    pub async fn serve<D: Driver>(
        self,
        driver: Arc<D>,
        log: EventLog,
        state_dir: PathBuf,
    ) -> Result<(), String> {
        let controller_ca_pem = crate::server::read_controller_ca(self.controller_ca.as_deref())?;
        let options = ServeOptions {
            provider: self.provider,
            controller: self.controller,
            controller_ca_pem,
            token: self.token,
            state_dir,
            advertise: self.advertise,
        };
        crate::serve(
            driver,
            log,
            self.listen,
            options,
            stopped(self.exit_with_parent),
        )
        .await
        .map_err(|e| error_chain(&e))
    }
}

/// Resolves on SIGINT, SIGTERM, or — with `exit_with_parent` — once the
/// parent process is gone.
pub async fn stopped(exit_with_parent: bool) {
    let interrupted = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
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
                Err(_) => return interrupted.await,
            };
        tokio::select! {
            () = interrupted => {}
            _ = term.recv() => tracing::info!("SIGTERM; stopping"),
            () = orphaned => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = exit_with_parent;
        interrupted.await;
    }
}

/// `e` and its sources, `: `-separated, for a one-line error.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Args {
        #[command(flatten)]
        serve: ServeArgs,
        #[arg(long, default_value = "x")]
        own: String,
    }

    fn parse_from(argv: &[&str]) -> Result<Args, clap::Error> {
        let defaults = Defaults {
            provider: "qemu",
            listen: "127.0.0.1:7444",
        };
        let mut matches = command::<Args>(defaults).try_get_matches_from(argv)?;
        <Args as clap::FromArgMatches>::from_arg_matches_mut(&mut matches)
    }

    #[test]
    fn the_drivers_defaults_apply_and_flags_override_them() {
        let a = parse_from(&["d"]).expect("defaults");
        assert_eq!(a.serve.provider, "qemu");
        assert_eq!(a.serve.listen.to_string(), "127.0.0.1:7444");
        assert_eq!(a.serve.log_format, "human");
        assert_eq!(a.own, "x");
        let a = parse_from(&[
            "d",
            "--provider",
            "q2",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .expect("flags");
        assert_eq!(
            (a.serve.provider.as_str(), a.serve.listen.port()),
            ("q2", 0)
        );
        assert_eq!(a.serve.log_format, "json");
        assert!(parse_from(&["d", "--log-format", "xml"]).is_err());
    }
}
