//! `yunshu-openstack-driver`: one OpenStack project served to a yunshu
//! controller over the driver protocol with mutual TLS. Registers with a
//! one-time bootstrap token like every driver.
//!
//! Credentials come from an openrc file (`--openrc`, the `export OS_*=…`
//! lines are read, never run) or the `OS_*` environment, never the command
//! line; an operator openrc (`--operator-openrc`) is used for what a project
//! member may not do: read Placement and hypervisors, make flavors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use yunshu_driver_sdk::EventLog;
use yunshu_driver_sdk::cli::{self, Defaults, ServeArgs, error_chain};
use yunshu_openstack::OpenStackDriver;
use yunshu_openstack::config::{
    DriverConfig, OsVars, Unmapped, openrc_projects, parse_image_map, refuse_twice,
    rescoped_projects,
};
use yunshu_proto::v1::Architecture;

/// yunshu OpenStack driver.
#[derive(Debug, Parser)]
#[command(name = "yunshu-openstack-driver", version, about)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
    /// Key, certificate and the resource records (`res/`).
    #[arg(
        long,
        default_value = "openstack-driver-state",
        env = "YUNSHU_STATE_DIR"
    )]
    state_dir: PathBuf,
    /// The tenant's openrc file (default: the `OS_*` environment).
    #[arg(long, env = "YUNSHU_OS_OPENRC")]
    openrc: Option<PathBuf>,
    /// The operator's openrc file, for Placement, hypervisors and flavors
    /// (default: the tenant's credentials).
    #[arg(long, env = "YUNSHU_OS_OPERATOR_OPENRC")]
    operator_openrc: Option<PathBuf>,
    /// `TENANT_CODE=PROJECT`, repeatable: that tenant's resources are made in
    /// its own project, as the `--openrc` user scoped to it (password auth;
    /// the user must be a member there).
    #[arg(long = "tenant-project")]
    tenant_projects: Vec<String>,
    /// `TENANT_CODE=OPENRC_FILE`, repeatable: that tenant's resources are
    /// made with its own credentials (e.g. an application credential of its
    /// project).
    #[arg(long = "tenant-openrc")]
    tenant_openrcs: Vec<String>,
    /// Tenants no mapping names: `default` (the `--openrc` project) or
    /// `refuse` (their orders fail with TENANT_NOT_MAPPED).
    #[arg(long, default_value = "default")]
    unmapped_tenants: Unmapped,
    /// Zone id = this prefix + the Nova availability zone.
    #[arg(long, default_value = "")]
    zone_prefix: String,
    /// Network-area id suffixes: `<zone>-<suffix>`.
    #[arg(long, default_value = "gov")]
    area_suffix: String,
    #[arg(long, default_value = "internet")]
    internet_area_suffix: String,
    /// `ORDER_IMAGE=GLANCE_IMAGE`, repeatable (e.g. `麒麟 V10=kylin-v10-sp3`).
    #[arg(long = "image")]
    images: Vec<String>,
    /// Glance image for an order image neither mapped nor found by name.
    #[arg(long, default_value = "fake-image")]
    default_image: String,
    /// The external network (floating IPs, router gateways).
    #[arg(long, default_value = "public")]
    external_network: String,
    /// Clock rate of the pools in MHz (Nova does not report it).
    #[arg(long, default_value_t = 2600)]
    clock_mhz: u32,
    /// Architecture of hosts whose traits and CPU info say none
    /// (`x86_64`, `arm64`, `c86`; empty: such hosts are not offered).
    #[arg(long, default_value = "")]
    default_arch: String,
    /// IOPS per disk of the storage classes.
    #[arg(long, default_value_t = 3000)]
    iops_per_disk: u32,
    /// Internet bandwidth sold as EIP bandwidth, Mbit/s (0: none reported).
    #[arg(long, default_value_t = 1000)]
    bandwidth_mbps: u64,
    /// GiB to plan with for a Cinder backend pool that states "infinite"
    /// (0: such pools offer nothing).
    #[arg(long, default_value_t = 0)]
    infinite_storage_gib: u64,
    /// Seconds between polls of Nova and Neutron.
    #[arg(long, default_value_t = 2)]
    poll_seconds: u64,
}

fn main() -> ExitCode {
    let args: Args = cli::parse(Defaults {
        provider: "openstack",
        listen: "127.0.0.1:7445",
    });
    let format = args.serve.log_format.clone();
    cli::run(&format, run(args))
}

fn arch(text: &str) -> Result<Option<Architecture>, String> {
    match text {
        "" => Ok(None),
        "x86_64" => Ok(Some(Architecture::X8664)),
        "arm64" | "aarch64" => Ok(Some(Architecture::Arm64)),
        "c86" => Ok(Some(Architecture::C86)),
        other => Err(format!(
            "--default-arch {other:?}: expected x86_64, arm64 or c86"
        )),
    }
}

async fn run(args: Args) -> Result<(), String> {
    let tenant_vars = match &args.openrc {
        Some(p) => OsVars::from_openrc(p).map_err(|e| e.to_string())?,
        None => OsVars::from_env(),
    };
    let tenant = tenant_vars.cloud("tenant").map_err(|e| e.to_string())?;
    let operator = match &args.operator_openrc {
        Some(p) => Some(
            OsVars::from_openrc(p)
                .and_then(|v| v.cloud("operator"))
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let mut projects =
        rescoped_projects(&tenant, &args.tenant_projects).map_err(|e| e.to_string())?;
    projects.extend(openrc_projects(&args.tenant_openrcs).map_err(|e| e.to_string())?);
    refuse_twice(&projects).map_err(|e| e.to_string())?;
    let config = DriverConfig {
        tenant,
        projects,
        unmapped: args.unmapped_tenants,
        operator,
        zone_prefix: args.zone_prefix,
        area_suffix: args.area_suffix,
        internet_area_suffix: args.internet_area_suffix,
        images: parse_image_map(&args.images).map_err(|e| e.to_string())?,
        default_image: args.default_image,
        external_network: args.external_network,
        clock_mhz: args.clock_mhz,
        default_arch: arch(&args.default_arch)?,
        iops_per_disk: args.iops_per_disk,
        bandwidth_mbps: args.bandwidth_mbps,
        infinite_storage_gib: args.infinite_storage_gib,
        poll_every: Duration::from_secs(args.poll_seconds.max(1)),
        state_dir: Some(args.state_dir.clone()),
    };
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let driver = OpenStackDriver::open(config, log.sink())
        .await
        .map_err(|e| format!("opening OpenStack: {}", error_chain(&e)))?;
    for r in driver.refusals().await {
        tracing::warn!(code = r.code, pool = %r.pool, host = %r.host, "{}", r.message);
    }
    args.serve
        .serve(Arc::new(driver), log, args.state_dir)
        .await
}
