//! `yunshu-conformance`: runs the driver conformance kit against one endpoint and
//! prints the report: one `PASS`/`FAIL`/`SKIP` line per check (28 checks; a
//! `lifecycle_<kind>` check is skipped for a kind the driver does not declare)
//! and `N passed, M failed, K skipped`. Exit code 0 when no check failed, 1
//! otherwise (also when the endpoint could not be reached).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use yunshu_conformance::{Options, run};
use yunshu_proto::tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use yunshu_proto::v1::{ResourceKind, driver_client::DriverClient};

/// Checks that a yunshu provider driver honours the yunshu.provider.v1 contract.
#[derive(Debug, Parser)]
#[command(name = "yunshu-conformance", version)]
struct Args {
    /// Driver endpoint, e.g. https://127.0.0.1:50051 (http:// with --insecure-plaintext).
    #[arg(long)]
    endpoint: String,
    /// PEM of the CA that signed the driver's certificate.
    #[arg(long, required_unless_present = "insecure_plaintext")]
    ca: Option<PathBuf>,
    /// PEM client certificate (the controller's identity).
    #[arg(long, required_unless_present = "insecure_plaintext")]
    cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, required_unless_present = "insecure_plaintext")]
    key: Option<PathBuf>,
    /// DNS name to verify in the driver's certificate (default: the endpoint's host).
    #[arg(long)]
    domain: Option<String>,
    /// Talk to the driver without TLS. Only for drivers under development.
    #[arg(long, conflicts_with_all = ["ca", "cert", "key", "domain"])]
    insecure_plaintext: bool,
    /// Seconds to wait for asynchronous convergence.
    #[arg(long, default_value_t = 30)]
    patience_secs: u64,
    /// Kinds the generic checks exercise, comma-separated (vm, vpc, volume,
    /// security_group). Every kind the driver declares is run end to end by the
    /// lifecycle_<kind> and reference checks regardless.
    #[arg(long, value_delimiter = ',', default_value = "vm,vpc", value_parser = parse_kind)]
    kinds: Vec<ResourceKind>,
    /// Prefix of resource ids (default conf-<random>-).
    #[arg(long)]
    prefix: Option<String>,
    /// Tenant code put on every request.
    #[arg(long, default_value = "conformance")]
    tenant: String,
    /// VM image.
    #[arg(long)]
    image: Option<String>,
}

fn parse_kind(s: &str) -> Result<ResourceKind, String> {
    let wire = format!(
        "RESOURCE_KIND_{}",
        s.trim().to_ascii_uppercase().replace('-', "_")
    );
    match ResourceKind::from_str_name(&wire) {
        Some(ResourceKind::Unspecified) | None => Err(format!("unknown resource kind {s:?}")),
        Some(k) => Ok(k),
    }
}

async fn connect(args: &Args) -> Result<Channel> {
    let mut endpoint = Endpoint::from_shared(args.endpoint.clone())
        .with_context(|| format!("bad endpoint {:?}", args.endpoint))?
        .connect_timeout(Duration::from_secs(10));
    if args.insecure_plaintext {
        if !args.endpoint.starts_with("http://") {
            bail!("--insecure-plaintext needs an http:// endpoint");
        }
        eprintln!("{}", "!".repeat(72));
        eprintln!("!! WARNING: --insecure-plaintext: no TLS, no driver authentication.");
        eprintln!("!! Use only for a driver under development on this machine. Real");
        eprintln!("!! drivers speak mutual TLS; a pass here proves nothing about that.");
        eprintln!("{}", "!".repeat(72));
    } else {
        if !args.endpoint.starts_with("https://") {
            bail!("mutual TLS needs an https:// endpoint (or --insecure-plaintext)");
        }
        let read = |p: &Option<PathBuf>, what: &str| -> Result<Vec<u8>> {
            let p = p
                .as_ref()
                .with_context(|| format!("--{what} is required"))?;
            std::fs::read(p).with_context(|| format!("reading --{what} {}", p.display()))
        };
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&args.ca, "ca")?))
            .identity(Identity::from_pem(
                read(&args.cert, "cert")?,
                read(&args.key, "key")?,
            ));
        if let Some(domain) = &args.domain {
            tls = tls.domain_name(domain.clone());
        }
        endpoint = endpoint.tls_config(tls).context("TLS configuration")?;
    }
    endpoint
        .connect()
        .await
        .with_context(|| format!("connecting to {}", args.endpoint))
}

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let args = Args::parse();
    let channel = connect(&args).await?;
    let mut options = Options {
        patience: Duration::from_secs(args.patience_secs),
        kinds: args.kinds.clone(),
        tenant: args.tenant.clone(),
        ..Options::default()
    };
    if let Some(prefix) = &args.prefix {
        options.run_prefix.clone_from(prefix);
    }
    if let Some(image) = &args.image {
        options.vm_image.clone_from(image);
    }
    println!(
        "yunshu-conformance: {} (ids prefixed {:?})",
        args.endpoint, options.run_prefix
    );
    let report = run(DriverClient::new(channel), &options).await;
    print!("{report}");
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
