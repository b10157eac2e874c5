//! Crash safety of the reconciler (issues 6 and 14): a real `yunshu serve`
//! process on redb is SIGKILLed 20 times at random moments while it turns two
//! approved orders into resources in the simulator — 1,000 VMs, and beside
//! them every other kind (per system a load balancer with a WAF policy and a
//! public IP, 100 data volumes, 100 backup policies, the VPC, subnets and
//! security group) —, and restarted on the same data directory each time.
//! Once it has converged: every resource exists exactly once in the driver and
//! runs, both orders are `test_env_ready`, the capacity figures add up to the
//! VMs' specs, and the simulator never had to refuse an Apply or a Delete (it
//! refuses a host without room, a missing dependency, a delete of something
//! still named) nor holds more on a host than its memory less the reserve.
//! Then one system exits while the controller is killed 5 more times: all of
//! its resources go, the other system keeps all of its own.
//!
//! The simulator runs in this test process, so it outlives every controller.
//! Needs the `yunshu` binary (`cargo build -p yunshu`; `cargo test --workspace`
//! builds it). `YUNSHU_TEST_SEED` repeats a run's kill moments.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use yunshu_domain::Architecture;
use yunshu_driver_sdk::{Driver, EventLog};
use yunshu_e2e::{
    CountingDriver, People, RunningDriver, XorShift, YunshuProcess, api_at, list_all, list_vms,
    small_vm_line, try_api_at,
};
use yunshu_proto::v1;
use yunshu_sim::{Delays, Sim, SimConfig};

const KILLS: usize = 20;
/// Kills while the first system's exit is carried out.
const EXIT_KILLS: usize = 5;
const SYSTEMS: usize = 2;
/// Per system: five server groups of 100 (2 vCPU / 4 GiB each).
const GROUPS: usize = 5;
const PER_GROUP: u32 = 100;
const VM_MEMORY_MIB: u64 = 4 * 1024;
const VM_VCPU: u64 = 2;

/// The demo datacenter with room for exactly nine server groups per x86
/// 政务外网 pool: 100 hosts (a group of 100 needs 100 hosts: anti-affinity)
/// with 36 GiB usable each (44 GiB less 8 GiB reserve = nine 4 GiB VMs). Ten
/// groups in all: the first pool fills to the last MiB, the tenth group goes
/// to the other zone. Double-counted capacity would leave a group unplaceable;
/// lost capacity would make the simulator refuse.
fn datacenter() -> SimConfig {
    let mut config = SimConfig::demo();
    config.delays = Delays::uniform(100);
    for pool in &mut config.pools {
        if pool.arch == Architecture::X86_64 && pool.network_area.ends_with("-gov") {
            for template in &mut pool.hosts {
                template.count = 100;
                template.memory_mib = 44 * 1024;
                template.reserved_memory_mib = 8 * 1024;
            }
        }
    }
    config
}

/// One system's onboarding order: five server groups, and beside the VMs
/// every other kind — a load balancer over `app0` with a WAF policy and a
/// public IP, a data volume on each `app1` member, a backup policy on each
/// `app2` member (and the VPC, subnet and security group every system gets).
fn items() -> serde_json::Value {
    let lines: Vec<_> = (0..GROUPS)
        .map(|g| small_vm_line(&format!("app{g}"), PER_GROUP))
        .collect();
    serde_json::json!({
        "lines": lines,
        "load_balancers": [{"name": "lb", "network_area": "internet", "members": "app0",
            "listeners": [{"protocol": "http", "port": 80, "backend_port": 8080,
                "algorithm": "weighted_least_connections",
                "health_check": {"protocol": "http", "path": "/"}}]}],
        "waf_policies": [{"name": "waf", "load_balancer": "lb", "mode": "block",
            "rule_sets": ["sqli"]}],
        "public_ips": [{"purpose": "门户", "server_name": "lb", "ports": [80], "bandwidth_mbps": 10}],
        "volumes": [{"name": "data", "server_name": "app1", "size_gib": 10, "tier": "standard"}],
        "backup_policies": [{"name": "nightly", "target": "app2", "backup_type": "full",
            "window": {"every": "daily", "hour": 1}, "retention_days": 7, "capacity_gib": 20}]
    })
}

/// What the driver holds of each kind for one system (VMs apart).
const PER_SYSTEM: [(&str, usize); 7] = [
    ("RESOURCE_KIND_LOAD_BALANCER", 1),
    ("RESOURCE_KIND_WAF_POLICY", 1),
    ("RESOURCE_KIND_EIP", 1),
    ("RESOURCE_KIND_VOLUME", PER_GROUP as usize),
    ("RESOURCE_KIND_BACKUP_POLICY", PER_GROUP as usize),
    ("RESOURCE_KIND_SECURITY_GROUP", 1),
    ("RESOURCE_KIND_VM", GROUPS * PER_GROUP as usize),
];

/// The live resources of `system` in the driver, counted by kind; panics on
/// an id listed twice.
fn census(all: &[v1::ResourceState], system: &str) -> BTreeMap<&'static str, usize> {
    let mut seen = BTreeSet::new();
    let mut out = BTreeMap::new();
    for r in all {
        if r.phase == v1::Phase::Deleted as i32 || r.id.split('-').nth(1) != Some(system) {
            continue;
        }
        assert!(seen.insert((r.kind, r.id.clone())), "{} listed twice", r.id);
        let kind = v1::ResourceKind::try_from(r.kind).map_or("?", |k| k.as_str_name());
        *out.entry(kind).or_insert(0) += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_twenty_times_the_controller_still_creates_every_vm_exactly_once() {
    let test_started = Instant::now();
    let mut rng = XorShift::from_env();
    eprintln!("crash: seed {} (YUNSHU_TEST_SEED repeats it)", rng.seed());
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut yunshu = YunshuProcess::start(data, dir.path().join("yunshu.log"), &[]);
    yunshu.wait_healthy(Duration::from_secs(30)).await;
    let url = yunshu.url.clone();
    let admin = yunshu.admin_token();
    // The driver CA is loaded once the store answers.
    assert!(
        yunshu_e2e::eventually(Duration::from_secs(30), || async {
            try_api_at(&url, "GET", "/api/v1/drivers/ca", "", None)
                .await
                .is_ok_and(|(s, _)| s == 200)
        })
        .await,
        "driver CA never served; log:\n{}",
        yunshu.log_text()
    );

    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Arc::new(Sim::new(datacenter(), log.sink()).expect("simulator"));
    let driver = Arc::new(CountingDriver::new(sim.clone()));
    let (s, body) = api_at(
        &url,
        "POST",
        "/api/v1/admin/driver-tokens",
        &admin,
        Some(serde_json::json!({"provider": "sim", "ttl_seconds": 3600})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let token = body["token"].as_str().expect("token").to_owned();
    let running = RunningDriver::start(driver.clone(), log, &url, "sim", Some(token)).await;
    assert!(
        yunshu_e2e::eventually(Duration::from_secs(30), || async {
            let (_, body) = api_at(&url, "GET", "/api/v1/admin/drivers", &admin, None).await;
            body.as_array()
                .is_some_and(|l| l.iter().any(|d| d["provider"] == "sim"))
        })
        .await,
        "the simulator never registered"
    );

    let people = People::create(&url, &admin).await;
    let mut orders = Vec::new();
    let mut systems = Vec::new();
    for i in 0..SYSTEMS {
        let (system, order) = people
            .accepted_order_with(&url, &format!("崩溃测试系统{i}"), "sim", items())
            .await;
        orders.push(order);
        systems.push(system);
    }
    let approved_at = Instant::now();
    for order in &orders {
        people.approve(&url, order).await;
    }

    // Kill at random moments; restart on the same data directory each time.
    // The random delay runs from the moment the restarted controller's
    // reconciler is up (its capacity figures say it leads), so kills land in
    // placement, in the intent writes and among the driver calls, not only
    // before the reconciler has started (it needs a few seconds for that in a
    // debug build, far longer than 400 ms).
    let mut progress = Vec::new();
    for _ in 0..KILLS {
        let leads = yunshu_e2e::eventually(Duration::from_secs(60), || async {
            try_api_at(&url, "GET", "/api/v1/capacity", &people.zhou, None)
                .await
                .is_ok_and(|(s, body)| s == 200 && body["leader"] == true)
        })
        .await;
        assert!(
            leads,
            "the reconciler never started; log:\n{}",
            tail(&yunshu.log_text(), 60)
        );
        tokio::time::sleep(Duration::from_millis(rng.range(50, 400))).await;
        yunshu.kill();
        progress.push(sim.resource_count());
        yunshu.restart();
        yunshu.wait_healthy(Duration::from_secs(30)).await;
    }
    let restarted_at = Instant::now();
    eprintln!("crash: {KILLS} SIGKILLs; resources in the simulator at each kill: {progress:?}");

    let ready = std::cell::Cell::new(0);
    let converged = yunshu_e2e::eventually(Duration::from_secs(300), || {
        let (people, orders, url, ready) = (&people, &orders, &url, &ready);
        async move {
            let mut n = 0;
            for order in orders {
                if people.order_state(url, order).await.as_deref() == Some("test_env_ready") {
                    n += 1;
                }
            }
            ready.set(n);
            n == orders.len()
        }
    })
    .await;
    let convergence = restarted_at.elapsed();
    let vms = list_vms(&*sim).await;
    assert!(
        converged,
        "{}/{} orders ready after 300 s; the simulator has {} VMs; log tail:\n{}",
        ready.get(),
        orders.len(),
        vms.len(),
        tail(&yunshu.log_text(), 60)
    );
    eprintln!(
        "crash: converged {:.1} s after the last restart ({:.1} s after approval)",
        convergence.as_secs_f64(),
        approved_at.elapsed().as_secs_f64()
    );

    // Exactly once, all running.
    let expected = SYSTEMS * GROUPS * PER_GROUP as usize;
    let ids: BTreeSet<&str> = vms.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids.len(), vms.len(), "an id listed twice");
    assert_eq!(vms.len(), expected, "exactly the approved VMs");
    let not_running: Vec<_> = vms
        .iter()
        .filter(|v| v.phase != v1::Phase::Running as i32)
        .map(|v| (&v.id, v.phase))
        .collect();
    assert!(not_running.is_empty(), "not running: {not_running:?}");

    // Every other kind exactly once per system, all running.
    let all = list_all(&*sim).await;
    for system in &systems {
        let counts = census(&all, system);
        for (kind, n) in PER_SYSTEM {
            assert_eq!(
                counts.get(kind).copied().unwrap_or(0),
                n,
                "{system} {kind}: {counts:?}"
            );
        }
    }
    let not_running: Vec<_> = all
        .iter()
        .filter(|r| r.phase != v1::Phase::Running as i32)
        .map(|r| (&r.id, r.phase))
        .collect();
    assert!(not_running.is_empty(), "not running: {not_running:?}");

    // Never overcommitted: the simulator refused nothing, and no host holds
    // more than its memory less the reserve (or more vCPU than it may hand out).
    let refusals = driver.refusals();
    assert!(refusals.is_empty(), "the simulator refused: {refusals:?}");
    let inventory = sim.inventory().await.expect("inventory");
    let (mut used_mib, mut used_vcpu) = (0, 0);
    for host in &inventory.hosts {
        let usage = sim.host_usage(&host.id).expect("host");
        assert!(
            usage.memory_used_mib <= usage.memory_usable_mib
                && usage.memory_used_mib <= host.memory_mib - host.reserved_memory_mib,
            "{}: {usage:?}",
            host.id
        );
        assert!(
            usage.vcpu_used <= usage.vcpu_capacity,
            "{}: {usage:?}",
            host.id
        );
        used_mib += usage.memory_used_mib;
        used_vcpu += usage.vcpu_used;
    }
    assert_eq!(used_mib, expected as u64 * VM_MEMORY_MIB);
    assert_eq!(used_vcpu, expected as u64 * VM_VCPU);

    // The controller's capacity figures: the sum of the VMs' specs, neither
    // lost nor counted twice across 20 restarts.
    let last = std::cell::Cell::new((0, 0));
    let figures_agree = yunshu_e2e::eventually(Duration::from_secs(30), || {
        let (url, zhou, last) = (&url, &people.zhou, &last);
        async move {
            let Ok((200, body)) = try_api_at(url, "GET", "/api/v1/capacity", zhou, None).await
            else {
                return false;
            };
            let pools = body["pools"].as_array().cloned().unwrap_or_default();
            let sum = |field: &str| -> u64 {
                pools
                    .iter()
                    .map(|p| p[field]["allocated"].as_u64().unwrap_or(0))
                    .sum()
            };
            last.set((sum("memory_mib"), sum("vcpu")));
            body["leader"] == true
                && last.get() == (expected as u64 * VM_MEMORY_MIB, expected as u64 * VM_VCPU)
        }
    })
    .await;
    assert!(
        figures_agree,
        "capacity allocated (memory MiB, vCPU) = {:?}, VMs ask for ({}, {})",
        last.get(),
        expected as u64 * VM_MEMORY_MIB,
        expected as u64 * VM_VCPU
    );
    // Nothing left behind: the first system exits while the controller is
    // killed again and again; every one of its resources goes (in reverse
    // order: the simulator refuses to delete what is still named), the
    // other system keeps all of its own.
    let (s, body) = api_at(
        &url,
        "POST",
        "/api/v1/orders",
        &people.wang,
        Some(serde_json::json!({"kind": "exit", "system": systems[0], "note": "下线"})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let exit = body["id"].as_str().expect("id").to_owned();
    for (who, to) in [(&people.wang, "submitted"), (&people.sun, "accepted")] {
        let (s, body) = api_at(
            &url,
            "POST",
            &format!("/api/v1/orders/{exit}/transitions"),
            who,
            Some(serde_json::json!({"to": to, "reason": "e2e"})),
        )
        .await;
        assert_eq!(s, 200, "{to}: {body}");
    }
    people.approve(&url, &exit).await;
    for _ in 0..EXIT_KILLS {
        let leads = yunshu_e2e::eventually(Duration::from_secs(60), || async {
            try_api_at(&url, "GET", "/api/v1/capacity", &people.zhou, None)
                .await
                .is_ok_and(|(s, body)| s == 200 && body["leader"] == true)
        })
        .await;
        assert!(leads, "the reconciler never started");
        tokio::time::sleep(Duration::from_millis(rng.range(50, 400))).await;
        yunshu.kill();
        yunshu.restart();
        yunshu.wait_healthy(Duration::from_secs(30)).await;
    }
    let exited = yunshu_e2e::eventually(Duration::from_secs(120), || {
        let (people, url, exit) = (&people, &url, &exit);
        async move { people.order_state(url, exit).await.as_deref() == Some("exited") }
    })
    .await;
    let all = list_all(&*sim).await;
    let left = census(&all, &systems[0]);
    assert!(
        exited && left.is_empty(),
        "exit not carried out; left behind: {left:?}"
    );
    let kept = census(&all, &systems[1]);
    for (kind, n) in PER_SYSTEM {
        assert_eq!(kept.get(kind).copied().unwrap_or(0), n, "{kind}: {kept:?}");
    }
    let refusals = driver.refusals();
    assert!(refusals.is_empty(), "the simulator refused: {refusals:?}");

    let log_text = yunshu.log_text();
    assert!(!log_text.contains("panicked"), "{}", tail(&log_text, 60));
    if std::env::var_os("YUNSHU_TEST_LOG").is_some() {
        for line in log_text.lines().filter(|l| {
            ["leads", "adopted", "moved", "serving on", "WARN", "ERROR"]
                .iter()
                .any(|w| l.contains(w))
        }) {
            eprintln!("{line}");
        }
    }
    eprintln!(
        "crash: {KILLS} kills, {expected} VMs exactly once, {} applies accepted, test wall time {:.1} s",
        driver.applied.load(std::sync::atomic::Ordering::Relaxed),
        test_started.elapsed().as_secs_f64()
    );
    yunshu.kill();
    drop(running);
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
