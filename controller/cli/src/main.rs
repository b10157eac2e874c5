//! `yunshu`: the one binary operators run. Subcommands parse flags and hand over to
//! the library crates; nothing here holds business logic.

mod client;
mod demo_driver;
mod driver_token;
mod logging;
mod session_cli;
mod shutdown;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use yunshu_server::{ServeConfig, serve};
use yunshu_store::StoreSpec;

/// yunshu (云枢): control plane and self-service portal of a government cloud.
#[derive(Debug, Parser)]
#[command(name = "yunshu", version, about)]
struct Cli {
    /// Log format: `human` for terminals, `json` for log collectors.
    #[arg(
        long,
        global = true,
        default_value = "human",
        env = "YUNSHU_LOG_FORMAT"
    )]
    log_format: logging::Format,
    /// Log filter, e.g. `info` or `yunshu_store=debug,info` (RUST_LOG syntax).
    #[arg(long, global = true, default_value = "info", env = "YUNSHU_LOG")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller: API, portal and operational endpoints.
    // Boxed: its many flags would make every other command as large.
    Serve(Box<ServeArgs>),
    /// Driver bootstrap tokens: `yunshu driver-token create --provider NAME --ttl 1h`.
    #[command(subcommand)]
    DriverToken(driver_token::Command),
    /// Log in and save an API token for the other commands.
    Login(session_cli::LoginArgs),
    /// Work orders: list, show, apply from a file, transition, review, approve.
    #[command(subcommand)]
    Orders(session_cli::OrdersCommand),
    /// Print the version.
    Version,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to serve HTTP on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "YUNSHU_LISTEN")]
    listen: SocketAddr,
    /// Directory for the embedded store file (created if missing).
    /// Default: ./yunshu-data, or ./.yunshu-demo with --demo.
    #[arg(long, env = "YUNSHU_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Store backend: `redb` (embedded file, one replica), `memory` (nothing kept),
    /// or `etcd://host:port[,host:port…][/namespace]` (production, several replicas;
    /// `etcds://…` for etcd over TLS, see --etcd-ca).
    #[arg(long, default_value = "redb", env = "YUNSHU_STORE", value_parser = parse_store)]
    store: StoreSpec,
    /// etcds://: PEM of the CA that signed the etcd members' certificates.
    #[arg(long, env = "YUNSHU_ETCD_CA")]
    etcd_ca: Option<PathBuf>,
    /// etcds://: this client's PEM certificate, for etcd's --client-cert-auth
    /// (with --etcd-key).
    #[arg(long, env = "YUNSHU_ETCD_CERT")]
    etcd_cert: Option<PathBuf>,
    /// The PEM private key of --etcd-cert.
    #[arg(long, env = "YUNSHU_ETCD_KEY")]
    etcd_key: Option<PathBuf>,
    /// etcd user (etcd authentication), over etcds:// only; with
    /// --etcd-password-file.
    #[arg(long, env = "YUNSHU_ETCD_USER")]
    etcd_user: Option<String>,
    /// File holding the password of --etcd-user (a trailing newline is ignored).
    #[arg(long, env = "YUNSHU_ETCD_PASSWORD_FILE")]
    etcd_password_file: Option<PathBuf>,
    /// File holding the store key that seals the driver CA's private key in
    /// the store: 32 bytes as 64 hex digits or base64 (`head -c 32
    /// /dev/urandom | base64`). Or set YUNSHU_STORE_KEY to the key itself.
    /// Without one the key is stored in clear.
    #[arg(long, env = "YUNSHU_STORE_KEY_FILE")]
    store_key_file: Option<PathBuf>,
    /// Seed a demo tenant, information system and provider topology.
    #[arg(long)]
    demo: bool,
    /// Platform admin bearer token file (created, mode 0600, if missing).
    /// Default: <data-dir>/admin-token.
    #[arg(long, env = "YUNSHU_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Lifetime of driver certificates, in seconds (drivers renew two thirds in).
    #[arg(long, default_value_t = 86_400, env = "YUNSHU_DRIVER_CERT_TTL")]
    driver_cert_ttl_seconds: u64,
    /// The portal's browser bundle directory (holds `pkg/`), as written by
    /// `cargo run -p yunshu-portal-build`. Default: $CARGO_TARGET_DIR/portal
    /// or target/portal.
    #[arg(long, env = "YUNSHU_PORTAL_ASSETS")]
    portal_assets: Option<PathBuf>,
    /// Take a request's source address from `X-Forwarded-For` (its first
    /// entry) for the sign-in rate limit: only behind a proxy or ingress
    /// that sets it, or every client could pick its own address.
    #[arg(long, env = "YUNSHU_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: bool,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key); re-read
    /// when the file changes.
    #[arg(
        long,
        env = "YUNSHU_TLS_CERT",
        requires = "tls_key",
        conflicts_with = "tls_from_ca"
    )]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "YUNSHU_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate from the controller's own CA for these
    /// host names or IP addresses (comma-separated): drivers trust it through
    /// their bootstrap token; browsers need the CA (`GET /api/v1/drivers/ca`).
    #[arg(long, env = "YUNSHU_TLS_FROM_CA", value_delimiter = ',')]
    tls_from_ca: Vec<String>,
    /// Mark the session cookie `Secure` (`__Host-`) though this process
    /// serves plain HTTP: TLS ends at a proxy or ingress in front.
    #[arg(long, env = "YUNSHU_SECURE_COOKIES")]
    secure_cookies: bool,
    /// File holding the bearer token Prometheus presents for /metrics.
    /// Without it only signed-in callers who may see capacity read them.
    #[arg(long, env = "YUNSHU_METRICS_TOKEN_FILE")]
    metrics_token_file: Option<PathBuf>,
}

fn parse_store(s: &str) -> Result<StoreSpec, String> {
    s.parse()
        .map_err(|e: yunshu_store::StoreError| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.log_format, &cli.log_level) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match cli.command {
        Command::Version => {
            println!("yunshu {}", yunshu_server::VERSION);
            ExitCode::SUCCESS
        }
        Command::Serve(args) => run_serve(*args),
        Command::DriverToken(cmd) => driver_token::run(cmd),
        Command::Login(args) => session_cli::login(args),
        Command::Orders(cmd) => session_cli::orders(cmd),
    }
}

fn run_serve(mut args: ServeArgs) -> ExitCode {
    // The store crate checks the etcd flags against the store (issue 16 item 6).
    let etcd = yunshu_store::EtcdOptions {
        ca_file: args.etcd_ca.take(),
        cert_file: args.etcd_cert.take(),
        key_file: args.etcd_key.take(),
        user: args.etcd_user.take(),
        password_file: args.etcd_password_file.take(),
    };
    args.store = match args.store.with_etcd_options(etcd) {
        Ok(store) => store,
        Err(e) => {
            tracing::error!(error = %e, "unusable etcd options");
            return ExitCode::from(2);
        }
    };
    let store_key_env = std::env::var(yunshu_server::store_key::STORE_KEY_ENV).ok();
    let store_key = match yunshu_server::store_key::load(
        args.store_key_file.as_deref(),
        store_key_env.as_deref(),
    ) {
        Ok(key) => key,
        Err(e) => {
            let chain = yunshu_domain::error::chain(&e);
            tracing::error!(error = %chain, "unusable store key");
            return ExitCode::from(2);
        }
    };
    let data_dir = args.data_dir.unwrap_or_else(|| {
        PathBuf::from(if args.demo {
            ".yunshu-demo"
        } else {
            "yunshu-data"
        })
    });
    let admin_token_file = args
        .admin_token_file
        .clone()
        .unwrap_or_else(|| data_dir.join("admin-token"));
    let config = ServeConfig {
        demo: args.demo,
        admin_token_file: Some(admin_token_file.clone()),
        driver_cert_ttl: std::time::Duration::from_secs(args.driver_cert_ttl_seconds.max(6)),
        reconciler: yunshu_reconciler::Config::default(),
        portal_assets: args.portal_assets.clone(),
        trust_forwarded_for: args.trust_forwarded_for,
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(yunshu_server::tls::TlsSource::Files { cert, key }),
            _ if !args.tls_from_ca.is_empty() => {
                Some(yunshu_server::tls::TlsSource::ControllerCa {
                    names: args.tls_from_ca,
                })
            }
            _ => None,
        },
        secure_cookies: args.secure_cookies,
        metrics_token_file: args.metrics_token_file.clone(),
        ..ServeConfig::new(args.listen, data_dir.clone(), args.store)
    };
    let config = ServeConfig {
        store_key,
        ..config
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("yunshu")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let demo = config.demo;
    let listen = config.listen;
    let result = runtime.block_on(async move {
        if demo {
            tokio::spawn(demo_driver::run(listen, data_dir, admin_token_file));
        }
        serve(config, shutdown::signal()).await
    });
    // Dropping the runtime drops the demo driver task, which kills its child.
    drop(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain = yunshu_domain::error::chain(&e);
            tracing::error!(error = %chain, "yunshu serve failed");
            ExitCode::FAILURE
        }
    }
}
