//! `reconcile --mix`: whole environments, not only VMs (issue 14). Each of N
//! systems files one onboarding order of the three-tier shape — a VPC with
//! two subnets, three security groups, two web VMs behind a WRR load balancer
//! with a health check and a WAF policy, a public IP on the load balancer, a
//! database VM with a 200 GiB 高性能 volume and a daily incremental backup, one
//! bare-metal server: 15 resources of 10 kinds —, all approved at once and
//! reconciled through the simulator over gRPC + mTLS to `test_env_ready`.
//!
//! The peer, in the same run on a fresh controller: the same number of
//! systems with the same number of resources each, all of them VMs (twelve
//! VMs and the VPC, subnet and default security group every system gets).
//! The figure to watch is the ratio of wall time per resource (issue 14's
//! target: at most 2 × the VM-only figure).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, CountingDriver, RunningDriver};
use yunshu_proto::v1;
use yunshu_sim::{Delays, Sim, SimConfig};
use yunshu_store::StoreSpec;

use crate::reconcile::{people, store_revision};
use crate::report::bench;

use yunshu_e2e::three_tier::{THREE_TIER_RESOURCES as PER_SYSTEM, server_line};

/// The three-tier order of issue 14's acceptance (x86_64 VMs, arm64 bare
/// metal).
fn three_tier(system: &str) -> Value {
    yunshu_e2e::three_tier::three_tier(system, "x86_64")
}

/// The peer: as many resources, all VMs (plus the network every system gets).
fn vms_only(system: &str) -> Value {
    json!({
        "kind": "onboarding", "system": system, "provider": "sim",
        "lines": [server_line("app", (PER_SYSTEM - 3) as u32, "vm", "x86_64")]
    })
}

/// A datacenter with room for `systems` of either shape: hosts for the VMs
/// (anti-affinity spreads a group over hosts), a free arm64 host per
/// bare-metal server, storage, public addresses and bandwidth for all.
fn datacenter(systems: u32) -> SimConfig {
    let mut config = SimConfig::demo();
    config.delays = Delays::zero();
    for pool in &mut config.pools {
        for template in &mut pool.hosts {
            template.count = systems + 100;
        }
    }
    for class in &mut config.storage_classes {
        class.capacity_gib = u64::from(systems) * 1000;
    }
    for b in &mut config.bandwidth {
        b.total_mbps = u64::from(systems) * 100;
    }
    for (i, p) in config.ip_pools.iter_mut().enumerate() {
        // A /20 each (4,096 addresses) instead of the demo's /25.
        p.cidrs = vec![format!("100.{}.0.0/20", 64 + i)];
    }
    config
}

/// Systems filed under one tenant (a tenant numbers at most 999).
const SYSTEMS_PER_TENANT: usize = 500;

/// The `n`th extra department of the bench and the token of its admin.
async fn tenant_admin(controller: &Controller, n: usize) -> anyhow::Result<String> {
    let code = format!("{}", 110105 + n);
    let (s, body) = controller
        .api(
            "POST",
            "/api/v1/tenants",
            &controller.admin_token,
            Some(json!({"code": code, "name": format!("基准测试单位{n}"), "supervising_unit": "基准测试"})),
        )
        .await;
    anyhow::ensure!(s == 201, "tenant: {body}");
    Ok(controller
        .user_token(
            &format!("admin{n}"),
            Some(&code),
            json!({"name": "tenant_admin"}),
            json!({"type": "tenant", "tenant": code}),
        )
        .await)
}

struct Run {
    wall: Duration,
    txns: i64,
    resources: usize,
    kinds: BTreeMap<&'static str, usize>,
}

/// Files, reviews and approves one order per system, built by `order`, and
/// waits until every order is `test_env_ready`; checks the driver holds
/// exactly `PER_SYSTEM × systems` resources, each once and running.
async fn one(systems: u32, order: fn(&str) -> Value, label: &str) -> anyhow::Result<Run> {
    let controller = Controller::start_on(
        StoreSpec::Redb,
        Duration::from_secs(3600),
        yunshu_reconciler::Config::default(),
    )
    .await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Arc::new(CountingDriver::new(Arc::new(Sim::new(
        datacenter(systems),
        log.sink(),
    )?)));
    let token = controller.token("sim").await;
    let _driver = RunningDriver::start(sim.clone(), log, &controller.url, "sim", Some(token)).await;
    let (wang, sun, zhou) = people(&controller).await?;
    // The approval check reads what the driver offers: wait for its GetInfo.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = controller
            .api(
                "GET",
                "/api/v1/admin/drivers",
                &controller.admin_token,
                None,
            )
            .await;
        let healthy = body.as_array().is_some_and(|l| {
            l.iter()
                .any(|d| d["health"].to_string().contains("healthy"))
        });
        if healthy {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "driver never healthy: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A tenant numbers at most 999 systems: a further department (and its
    // admin) for every 500.
    let mut admins = vec![wang];
    for t in 1..(systems as usize).div_ceil(SYSTEMS_PER_TENANT) {
        admins.push(tenant_admin(&controller, t).await?);
    }
    let mut orders = Vec::new();
    for i in 0..systems {
        let admin = &admins[i as usize / SYSTEMS_PER_TENANT];
        let system = controller
            .create_system(admin, &format!("{label}{i}"))
            .await;
        let (s, body) = controller
            .api("POST", "/api/v1/orders", admin, Some(order(&system)))
            .await;
        anyhow::ensure!(s == 201, "order: {body}");
        let id = body["id"].as_str().unwrap_or_default().to_owned();
        let path = format!("/api/v1/orders/{id}/transitions");
        for (who, to) in [(admin, "submitted"), (&sun, "accepted")] {
            let (s, body) = controller
                .api("POST", &path, who, Some(json!({"to": to})))
                .await;
            anyhow::ensure!(s == 200, "{to}: {body}");
        }
        orders.push((id, admin.clone()));
    }
    let before = store_revision(&controller).await?;
    eprintln!("# reconcile --mix: {systems} systems ({label}); approving");
    let started = Instant::now();
    for (id, _) in &orders {
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
    // Orders become ready roughly in approval order: look from the first
    // one not yet seen ready.
    let mut next = 0;
    while next < orders.len() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "not converged after 1800 s: {next}/{} orders ready",
            orders.len()
        );
        let (id, admin) = &orders[next];
        let (s, body) = controller
            .api("GET", &format!("/api/v1/orders/{id}"), admin, None)
            .await;
        anyhow::ensure!(s == 200, "order {id}: {body}");
        if body["state"] == "test_env_ready" {
            next += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let wall = started.elapsed();
    let after = store_revision(&controller).await?;

    let all = yunshu_e2e::list_all(&*sim).await;
    let mut kinds: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut ids = std::collections::BTreeSet::new();
    for r in &all {
        anyhow::ensure!(r.phase == v1::Phase::Running as i32, "{} not running", r.id);
        anyhow::ensure!(ids.insert((r.kind, r.id.clone())), "{} listed twice", r.id);
        let kind = v1::ResourceKind::try_from(r.kind).map_or("?", |k| k.as_str_name());
        *kinds.entry(kind).or_insert(0) += 1;
    }
    let expected = PER_SYSTEM * systems as usize;
    anyhow::ensure!(
        all.len() == expected,
        "driver has {} resources, expected {expected}: {kinds:?}",
        all.len()
    );
    anyhow::ensure!(sim.refusals().is_empty(), "refused: {:?}", sim.refusals());
    Ok(Run {
        wall,
        txns: after - before,
        resources: all.len(),
        kinds,
    })
}

pub async fn run(systems: u32) -> anyhow::Result<()> {
    let mix = one(systems, three_tier, "三层系统").await?;
    eprintln!("# mix: {:?}", mix.kinds);
    let peer = one(systems, vms_only, "纯云主机系统").await?;
    eprintln!("# peer: {:?}", peer.kinds);
    let report = |name: &str, r: &Run| {
        bench(name, r.wall.as_secs_f64(), "s");
        bench(
            &format!("{name}_resources_per_second"),
            r.resources as f64 / r.wall.as_secs_f64(),
            "res/s",
        );
        bench(
            &format!("{name}_store_txns_per_1000_resources"),
            r.txns as f64 * 1000.0 / r.resources as f64,
            "txn",
        );
    };
    report(&format!("reconcile_mix_{systems}_systems_redb"), &mix);
    report(&format!("reconcile_vm_only_{systems}_systems_redb"), &peer);
    let per = |r: &Run| r.wall.as_secs_f64() / r.resources as f64;
    bench(
        "reconcile_mix_per_resource_vs_vm_only",
        per(&mix) / per(&peer),
        "x",
    );
    Ok(())
}
