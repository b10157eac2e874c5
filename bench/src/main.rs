//! yunshu's one benchmark binary.
//!
//! `cargo run --release -p yunshu-bench -- <name> [options]`; every benchmark ends
//! with lines `BENCH <name> <value> <unit>`. Peers are measured in the same run so
//! that their ratio is fair (same machine, same moment).

mod driver;
mod login_flood;
mod placement;
mod qemu;
mod reconcile;
mod reconcile_mix;
mod report;
mod store;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "yunshu-bench", about = "yunshu benchmarks")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Store throughput: redb and a one-node etcd on loopback, side by side.
    Store(store::Options),
    /// Driver Apply throughput: the simulator over gRPC + mTLS, 1/16/64 callers.
    Driver(driver::Options),
    /// Placement decisions per second on the in-memory index: 1k/10k/50k hosts.
    Placement(placement::Options),
    /// VMs in approved orders reconciled to running through the simulator;
    /// `--mix`: whole three-tier environments (every kind) against VMs only.
    Reconcile(reconcile::Options),
    /// Approval to every guest's serial marker on the real QEMU driver:
    /// x86_64 and arm64, with the accelerator used and the control plane's
    /// share (root: namespaces, nftables).
    Qemu(qemu::Options),
    /// 1,000 parallel wrong-password sign-ins from one address against a
    /// release server while other users sign in: peak memory, how the flood
    /// is answered, the legitimate sign-ins' latency.
    LoginFlood(login_flood::Options),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Warnings from the components under test go to stderr (RUST_LOG overrides).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.bench {
        Bench::Store(options) => runtime.block_on(store::run(options)),
        Bench::Driver(options) => runtime.block_on(driver::run(options)),
        Bench::Reconcile(options) => runtime.block_on(reconcile::run(options)),
        Bench::Qemu(options) => runtime.block_on(qemu::run(options)),
        Bench::LoginFlood(options) => runtime.block_on(login_flood::run(options)),
        // Pure CPU and single-threaded: runs on this thread, outside the runtime.
        Bench::Placement(options) => placement::run(options),
    }
}
