//! `reconcile`: VMs in approved work orders reconciled to running through the
//! simulator over gRPC + mTLS, end to end — an in-process `yunshu serve` (its
//! elected reconciler, placement, store writes) and a real simulator driver.
//!
//! Wall time runs from the first approval to the moment every order is
//! `test_env_ready` (all its VMs observed running at their generation); store
//! transactions are the store revision's growth over that time (each committed
//! transaction is one revision), reported per 1,000 VMs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, RunningDriver};
use yunshu_proto::v1;
use yunshu_sim::{Delays, Sim, SimConfig};
use yunshu_store::StoreSpec;

use crate::report::bench;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// VMs in all.
    #[arg(long, default_value_t = 10_000)]
    vms: u32,
    /// `redb` or `etcd` (a one-node etcd on loopback, started here).
    #[arg(long, default_value = "redb")]
    store: String,
    /// VMs per order (five lines per order).
    #[arg(long, default_value_t = 500)]
    per_order: u32,
    /// After convergence, start a resync of every resource and approve one
    /// more order meanwhile: how long until it runs (issue 6: within 1 s while
    /// 100,000 resources are being resynced).
    #[arg(long)]
    resync_probe: bool,
    /// Whole three-tier environments instead of VMs (every kind; issue 14),
    /// against a VM-only peer with as many resources, in the same run.
    #[arg(long)]
    mix: bool,
    /// Systems for `--mix` (15 resources each).
    #[arg(long, default_value_t = 1000)]
    systems: u32,
}

fn line(name: &str, quantity: u32) -> serde_json::Value {
    json!({
        "server": {
            "server_name": name, "network_area": "gov_extranet", "form": "vm",
            "architecture": "x86_64", "vcpu": 2, "memory_gib": 4, "system_disk_gib": 40,
            "data_disk_gib": 0, "os": "openEuler 22.03", "purpose": "bench", "backup_gib": 0
        },
        "quantity": quantity
    })
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    if options.mix {
        anyhow::ensure!(options.store == "redb", "--mix runs on redb");
        return crate::reconcile_mix::run(options.systems).await;
    }
    let _etcd;
    let spec = match options.store.as_str() {
        "redb" => StoreSpec::Redb,
        "etcd" => {
            let etcd = yunshu_testkit::EtcdServer::start()?;
            let spec: StoreSpec = format!("etcd://{}/bench", etcd.endpoint()).parse()?;
            _etcd = etcd;
            spec
        }
        other => anyhow::bail!("unknown store {other:?}: redb or etcd"),
    };
    let controller = Controller::start_on(
        spec,
        Duration::from_secs(3600),
        yunshu_reconciler::Config::default(),
    )
    .await;
    let mut config = SimConfig::demo();
    config.delays = Delays::zero();
    // Room for every VM: 2 vCPU / 4 GiB each, one group of up to 100 per host set.
    let hosts_per_pool = (options.vms / 20).max(100);
    for pool in &mut config.pools {
        for template in &mut pool.hosts {
            template.count = hosts_per_pool;
        }
    }
    for class in &mut config.storage_classes {
        class.capacity_gib = u64::from(options.vms) * 100;
    }
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Arc::new(yunshu_e2e::CountingDriver::new(Arc::new(Sim::new(
        config,
        log.sink(),
    )?)));
    let token = controller.token("sim").await;
    let driver = RunningDriver::start(sim.clone(), log, &controller.url, "sim", Some(token)).await;
    let mut client = driver.client(&controller, "sim").await;

    let (wang, sun, zhou) = people(&controller).await?;

    let orders_n = options.vms.div_ceil(options.per_order);
    let mut orders = Vec::new();
    let mut remaining = options.vms;
    for i in 0..orders_n {
        let system = controller
            .create_system(&wang, &format!("基准系统{i}"))
            .await;
        let here = remaining.min(options.per_order);
        remaining -= here;
        let lines: Vec<_> = (0..5)
            .map(|l| line(&format!("g{l}"), here / 5 + u32::from(l < here % 5)))
            .filter(|v| v["quantity"].as_u64().unwrap_or(0) > 0)
            .collect();
        let (s, body) = controller
            .api(
                "POST",
                "/api/v1/orders",
                &wang,
                Some(json!({"kind": "onboarding", "system": system, "provider": "sim", "lines": lines})),
            )
            .await;
        anyhow::ensure!(s == 201, "order: {body}");
        let id = body["id"].as_str().unwrap_or_default().to_owned();
        let path = format!("/api/v1/orders/{id}/transitions");
        for (who, to) in [(&wang, "submitted"), (&sun, "accepted")] {
            let (s, body) = controller
                .api("POST", &path, who, Some(json!({"to": to})))
                .await;
            anyhow::ensure!(s == 200, "{to}: {body}");
        }
        orders.push(id);
    }
    let before = store_revision(&controller).await?;
    eprintln!(
        "# reconcile: {} VMs in {} orders on {}; approving",
        options.vms,
        orders.len(),
        options.store
    );
    let started = Instant::now();
    for id in &orders {
        let (s, body) = controller
            .api(
                "POST",
                &format!("/api/v1/orders/{id}/transitions"),
                &zhou,
                Some(json!({"to": "approved"})),
            )
            .await;
        anyhow::ensure!(s == 200, "approve: {body}");
    }
    let approved_in = started.elapsed();
    let mut ready = 0;
    while ready < orders.len() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(900),
            "not converged after 900 s: {ready}/{} orders ready",
            orders.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = 0;
        for id in &orders {
            let (_, body) = controller
                .api("GET", &format!("/api/v1/orders/{id}"), &wang, None)
                .await;
            if body["state"] == "test_env_ready" {
                ready += 1;
            }
        }
    }
    let wall = started.elapsed();
    let after = store_revision(&controller).await?;

    // Exactly once: the driver holds every VM, each running, none twice.
    let mut ids = std::collections::BTreeSet::new();
    let mut token = String::new();
    loop {
        let page = client
            .list(v1::ListRequest {
                kind: v1::ResourceKind::Vm as i32,
                page_size: 1000,
                page_token: token.clone(),
            })
            .await?
            .into_inner();
        for vm in page.items {
            anyhow::ensure!(
                vm.phase == v1::Phase::Running as i32,
                "{} not running",
                vm.id
            );
            anyhow::ensure!(ids.insert(vm.id.clone()), "{} listed twice", vm.id);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    anyhow::ensure!(
        ids.len() == options.vms as usize,
        "driver has {} VMs, expected {}",
        ids.len(),
        options.vms
    );
    if options.resync_probe {
        resync_probe(&controller, &sim, &wang, &sun, &zhou, options.vms).await?;
    }
    let txns = (after - before) as f64;
    eprintln!(
        "# approvals took {:.2} s; {} store transactions",
        approved_in.as_secs_f64(),
        after - before
    );
    let name = format!("reconcile_{}_vms_{}", options.vms, options.store);
    bench(&name, wall.as_secs_f64(), "s");
    bench(
        &format!("{name}_store_txns_per_1000_vms"),
        txns * 1000.0 / f64::from(options.vms),
        "txn",
    );
    bench(
        &format!("{name}_vms_per_second"),
        f64::from(options.vms) / wall.as_secs_f64(),
        "vm/s",
    );
    Ok(())
}

/// The bench tenant and its three people: the tenant admin who files
/// orders, the reviewer and the approver.
pub(crate) async fn people(controller: &Controller) -> anyhow::Result<(String, String, String)> {
    let admin = controller.admin_token.clone();
    let (s, body) = controller
        .api(
            "POST",
            "/api/v1/tenants",
            &admin,
            Some(json!({"code": "110105", "name": "基准测试单位", "supervising_unit": "基准测试"})),
        )
        .await;
    anyhow::ensure!(s == 201, "tenant: {body}");
    let tenant = json!({"type": "tenant", "tenant": "110105"});
    let platform = json!({"type": "platform"});
    let wang = controller
        .user_token(
            "wang",
            Some("110105"),
            json!({"name": "tenant_admin"}),
            tenant,
        )
        .await;
    let sun = controller
        .user_token("sun", None, json!({"name": "reviewer"}), platform.clone())
        .await;
    let zhou = controller
        .user_token("zhou", None, json!({"name": "approver"}), platform)
        .await;

    Ok((wang, sun, zhou))
}

/// The store's revision as the controller reports it.
pub(crate) async fn store_revision(controller: &Controller) -> anyhow::Result<i64> {
    let body: serde_json::Value = reqwest::get(format!("{}/api/v1/version", controller.url))
        .await?
        .json()
        .await?;
    body["store_revision"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no store_revision in /api/v1/version: {body}"))
}

/// Approves one more order while every resource is being resynced and times
/// its pickup; also times the resync itself (until the driver stops seeing
/// its reads).
async fn resync_probe(
    controller: &Controller,
    sim: &yunshu_e2e::CountingDriver<Sim>,
    wang: &str,
    sun: &str,
    zhou: &str,
    vms: u32,
) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering;
    let system = controller.create_system(wang, "新批准系统").await;
    let (s, body) = controller
        .api(
            "POST",
            "/api/v1/orders",
            wang,
            Some(json!({"kind": "onboarding", "system": system, "provider": "sim", "lines": [line("new", 1)]})),
        )
        .await;
    anyhow::ensure!(s == 201, "order: {body}");
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    let path = format!("/api/v1/orders/{id}/transitions");
    for (who, to) in [(wang, "submitted"), (sun, "accepted")] {
        let (s, body) = controller
            .api("POST", &path, who, Some(json!({"to": to})))
            .await;
        anyhow::ensure!(s == 200, "{to}: {body}");
    }
    // The resync reads every resource back with Get (and re-applies drift).
    let applied_before = sim.got.load(Ordering::Relaxed);
    let resync_started = Instant::now();
    let (s, body) = controller
        .api(
            "POST",
            "/api/v1/admin/resync",
            &controller.admin_token,
            None,
        )
        .await;
    anyhow::ensure!(s == 202, "resync: {body}");
    // Let the resync get going before the new order arrives.
    while sim.got.load(Ordering::Relaxed) < applied_before + u64::from(vms / 10).max(100) {
        anyhow::ensure!(
            resync_started.elapsed() < Duration::from_secs(60),
            "resync never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let approved = Instant::now();
    let (s, body) = controller
        .api("POST", &path, zhou, Some(json!({"to": "approved"})))
        .await;
    anyhow::ensure!(s == 200, "approve: {body}");
    loop {
        let (_, body) = controller
            .api("GET", &format!("/api/v1/orders/{id}"), wang, None)
            .await;
        if body["state"] == "test_env_ready" {
            break;
        }
        anyhow::ensure!(
            approved.elapsed() < Duration::from_secs(120),
            "new order not ready"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pickup = approved.elapsed();
    let resynced_at_pickup = sim.got.load(Ordering::Relaxed) - applied_before;
    // The resync is over when its Gets stop.
    let mut last = sim.got.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = sim.got.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let resync = resync_started
        .elapsed()
        .saturating_sub(Duration::from_millis(500));
    eprintln!(
        "# resync probe: new order ready {:.0} ms after approval, {resynced_at_pickup} of {vms} resources re-read by then; the resync took {:.1} s",
        pickup.as_secs_f64() * 1000.0,
        resync.as_secs_f64()
    );
    bench(
        &format!("reconcile_fresh_order_during_resync_of_{vms}"),
        pickup.as_secs_f64() * 1000.0,
        "ms",
    );
    bench(
        &format!("reconcile_resync_of_{vms}"),
        resync.as_secs_f64(),
        "s",
    );
    Ok(())
}
