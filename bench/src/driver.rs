//! `driver`: Apply throughput against the simulator over gRPC with mutual TLS, the
//! way the controller calls drivers: a real controller (in-process, memory store)
//! bootstraps a real simulator driver, and callers use a controller client
//! certificate. Zero simulated delays, so the figure is the control path itself
//! (TLS, HTTP/2, SDK validation, idempotency, the simulator's capacity checks).
//!
//! Each caller applies distinct 1-vCPU / 1 GiB VMs placed round-robin on the
//! x86_64 hosts; one channel (one HTTP/2 connection) is shared by all callers, as
//! the controller does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, RunningDriver};
use yunshu_proto::v1;
use yunshu_sim::{Delays, Sim, SimConfig};

use crate::report::bench;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Apply calls per concurrency level.
    #[arg(long, default_value_t = 5000)]
    ops: usize,
    /// Concurrency levels to measure.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 16, 64])]
    callers: Vec<usize>,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let controller = Controller::start(Duration::from_secs(3600)).await;
    let mut config = SimConfig::demo();
    config.delays = Delays::zero();
    // Enough hosts that every VM of the run fits without overcommitting memory.
    for pool in &mut config.pools {
        for template in &mut pool.hosts {
            template.count *= 100;
        }
    }
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Sim::new(config, log.sink())?;
    let token = controller.token("sim").await;
    let driver =
        RunningDriver::start(Arc::new(sim), log, &controller.url, "sim", Some(token)).await;
    let client = driver.client(&controller, "sim").await;

    let inventory = client
        .clone()
        .get_inventory(v1::GetInventoryRequest {})
        .await?
        .into_inner();
    let x86_pools: Vec<&v1::Pool> = inventory
        .pools
        .iter()
        .filter(|p| p.arch == v1::Architecture::X8664 as i32)
        .collect();
    let hosts: Arc<Vec<v1::Placement>> = Arc::new(
        inventory
            .hosts
            .iter()
            .filter_map(|h| {
                let pool = x86_pools.iter().find(|p| p.id == h.pool)?;
                Some(v1::Placement {
                    zone: pool.zone.clone(),
                    network_area: pool.network_area.clone(),
                    pool: pool.id.clone(),
                    host: h.id.clone(),
                })
            })
            .collect(),
    );
    anyhow::ensure!(!hosts.is_empty(), "the simulator has no x86_64 hosts");
    eprintln!(
        "# driver: {} x86_64 hosts, {} applies per level",
        hosts.len(),
        options.ops
    );

    for &callers in &options.callers {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let tasks = (0..callers).map(|_| {
            let mut client = client.clone();
            let next = next.clone();
            let hosts = hosts.clone();
            let ops = options.ops;
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= ops {
                        break;
                    }
                    let id = format!("bench-c{callers}-vm-{n}");
                    let request = v1::ApplyRequest {
                        kind: v1::ResourceKind::Vm as i32,
                        idempotency_key: format!("{id}@1"),
                        id,
                        generation: 1,
                        spec: Some(v1::ResourceSpec {
                            spec: Some(v1::resource_spec::Spec::Vm(v1::VmSpec {
                                arch: v1::Architecture::X8664 as i32,
                                vcpu: 1,
                                memory_mib: 1024,
                                system_disk: None,
                                image: "openEuler-22.03-LTS".into(),
                                ..Default::default()
                            })),
                        }),
                        placement: Some(hosts[n % hosts.len()].clone()),
                        tenant: "110105".into(),
                    };
                    let t = Instant::now();
                    client.apply(request).await?;
                    latencies.push(t.elapsed());
                }
                anyhow::Ok(latencies)
            })
        });
        let mut latencies = Vec::with_capacity(options.ops);
        for task in futures::future::join_all(tasks).await {
            latencies.extend(task??);
        }
        let secs = started.elapsed().as_secs_f64();
        latencies.sort();
        let pct = |p: f64| {
            let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[i].as_secs_f64() * 1000.0
        };
        bench(
            &format!("driver_apply_c{callers}"),
            latencies.len() as f64 / secs,
            "ops/s",
        );
        bench(&format!("driver_apply_c{callers}_p50"), pct(0.50), "ms");
        bench(&format!("driver_apply_c{callers}_p99"), pct(0.99), "ms");
    }
    drop(driver);
    Ok(())
}
