//! The 80 % rule end to end, with the simulator over real gRPC + mTLS: an
//! approved order fills a small arm64 pool past 80 % of its memory, the
//! capacity API shows the figures and the largest VM still placeable, a
//! capacity alarm and one expansion order due 7 days later appear; the
//! provider adds a host, the reconciler re-reads the inventory, and the order
//! closes itself and the alarm clears.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use yunshu_domain::Architecture;
use yunshu_domain::provider::{IopsClass, NetworkAreaKind};
use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, RunningDriver, eventually};
use yunshu_sim::config::{
    HostStateConfig, HostTemplate, NetworkAreaConfig, PoolConfig, StorageClassConfig, ZoneConfig,
};
use yunshu_sim::{Delays, Sim, SimConfig};

const POOL: &str = "fsc-gov-arm64";
const GIB: u64 = 1024;

/// One zone, one 政务外网区, one arm64 pool of two hosts with 16 cores and
/// 32 GiB each (64 GiB, 128 vCPU at 4:1), one roomy storage class.
fn small_datacenter() -> SimConfig {
    let mut config = SimConfig::demo();
    config.zones = vec![ZoneConfig {
        id: "fsc".into(),
        name: "城市副中心".into(),
    }];
    config.network_areas = vec![NetworkAreaConfig {
        id: "fsc-gov".into(),
        zone: "fsc".into(),
        name: "政务外网区".into(),
        kind: NetworkAreaKind::GovExtranet,
    }];
    config.pools = vec![PoolConfig {
        id: POOL.into(),
        zone: "fsc".into(),
        network_area: "fsc-gov".into(),
        arch: Architecture::Arm64,
        cpu_model: "Kunpeng 920-7260".into(),
        clock_mhz: 2600,
        vcpu_ratio: 4,
        hosts: vec![HostTemplate {
            count: 2,
            id_prefix: None,
            cores: 16,
            memory_mib: 32 * GIB,
            reserved_memory_mib: 0,
            state: HostStateConfig::Up,
        }],
    }];
    config.storage_classes = vec![StorageClassConfig {
        id: "fsc-standard".into(),
        zone: "fsc".into(),
        name: "普通性能云盘".into(),
        capacity_gib: 10_000,
        iops_class: IopsClass::Standard,
        iops_per_disk: 5_000,
    }];
    config.bandwidth = Vec::new();
    config.ip_pools = Vec::new();
    config.delays = Delays::uniform(20);
    config
}

fn time(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time")).expect("RFC 3339")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_past_80_percent_opens_an_expansion_order_that_closes_when_hosts_are_added() {
    let reconciler = yunshu_reconciler::Config {
        // Short, so the provider's new host is seen within the test.
        inventory_every: Duration::from_millis(300),
        capacity_every: Duration::from_secs(1),
        // One trend sample a second instead of an hour.
        capacity_sample_every: Duration::from_secs(1),
        ..Default::default()
    };
    let controller = Controller::start_with(Duration::from_secs(3600), reconciler).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Arc::new(Sim::new(small_datacenter(), log.sink()).expect("simulator"));
    let token = controller.token("sim").await;
    let _driver = RunningDriver::start(sim.clone(), log, &controller.url, "sim", Some(token)).await;

    let (s, body) = controller
        .api(
            "POST",
            "/api/v1/tenants",
            &controller.admin_token,
            Some(json!({"code": "110105", "name": "朝阳区政务服务数据管理局", "supervising_unit": "朝阳区人民政府"})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let platform = json!({"type": "platform"});
    let wang = controller
        .user_token(
            "wang",
            Some("110105"),
            json!({"name": "tenant_admin"}),
            json!({"type": "tenant", "tenant": "110105"}),
        )
        .await;
    let sun = controller
        .user_token("sun", None, json!({"name": "reviewer"}), platform.clone())
        .await;
    let zhou = controller
        .user_token("zhou", None, json!({"name": "approver"}), platform)
        .await;
    let op = controller
        .user_token(
            "op",
            None,
            json!({"name": "provider_operator", "provider": "sim"}),
            json!({"type": "provider", "provider": "sim"}),
        )
        .await;

    // Before any order: the pool is there, empty, and nothing is open.
    let seen = eventually(Duration::from_secs(10), || {
        let controller = &controller;
        let zhou = zhou.clone();
        async move {
            let (_, body) = controller.api("GET", "/api/v1/capacity", &zhou, None).await;
            body["pools"][0]["pool"] == POOL
        }
    })
    .await;
    assert!(seen, "the pool never showed in /api/v1/capacity");

    let (s, body) = controller
        .api(
            "POST",
            "/api/v1/systems",
            &wang,
            Some(json!({
                "name": "不动产登记系统", "system_type": "business_production",
                "security_level": "level2", "run_schedule": "7x24",
                "network_nature": "gov_extranet",
                "contact": {"name": "王管理", "phone": "13800138002"},
                "description": "测试"
            })),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let system = body["number"].as_str().expect("number").to_owned();
    // Two VMs of 28 GiB, one per host (anti-affinity): 56 of 64 GiB = 87.5 %.
    let line = json!({
        "server": {
            "server_name": "db", "network_area": "gov_extranet", "form": "vm",
            "architecture": "arm64", "vcpu": 4, "memory_gib": 28, "system_disk_gib": 50,
            "data_disk_gib": 100, "os": "麒麟 V10", "purpose": "数据库", "backup_gib": 0
        },
        "quantity": 2
    });
    let (s, body) = controller
        .api(
            "POST",
            "/api/v1/orders",
            &wang,
            Some(
                json!({"kind": "onboarding", "system": system, "provider": "sim", "lines": [line]}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let order = body["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/orders/{order}/transitions");
    for (who, to) in [
        (&wang, "submitted"),
        (&sun, "accepted"),
        (&zhou, "approved"),
    ] {
        let (s, body) = controller
            .api("POST", &path, who, Some(json!({"to": to, "reason": "ok"})))
            .await;
        assert_eq!(s, 200, "{to}: {body}");
    }

    // The figures, the alarm and the order follow within seconds.
    let over = eventually(Duration::from_secs(15), || {
        let controller = &controller;
        let zhou = zhou.clone();
        async move {
            let (_, body) = controller.api("GET", "/api/v1/capacity", &zhou, None).await;
            body["pools"][0]["memory_mib"]["over_line"] == true
        }
    })
    .await;
    let (_, capacity) = controller.api("GET", "/api/v1/capacity", &zhou, None).await;
    assert!(over, "memory never went over the line: {capacity}");
    let pool = &capacity["pools"][0];
    assert_eq!(capacity["leader"], true);
    assert_eq!(
        (
            &pool["provider"],
            &pool["zone"],
            &pool["network_area"],
            &pool["arch"]
        ),
        (
            &json!("sim"),
            &json!("fsc"),
            &json!("fsc-gov"),
            &json!("arm64")
        )
    );
    assert_eq!(pool["memory_mib"]["total"], 64 * GIB);
    assert_eq!(pool["memory_mib"]["allocated"], 56 * GIB);
    assert_eq!(pool["memory_mib"]["free"], 8 * GIB);
    assert_eq!(pool["memory_mib"]["ratio"], 0.875);
    assert_eq!(pool["vcpu"]["total"], 128);
    assert_eq!(pool["vcpu"]["allocated"], 8);
    assert_eq!(pool["vcpu"]["over_line"], false);
    // Fragmentation: 8 GiB are free, but no VM can get more than 4 GiB.
    assert_eq!(pool["largest_vm"]["by_memory"]["memory_mib"], 4 * GIB);
    assert_eq!(pool["largest_vm"]["by_vcpu"]["vcpu"], 60);
    assert_eq!(pool["storage_gib"][0]["class"], "fsc-standard");
    assert_eq!(pool["storage_gib"][0]["allocated"], 300);
    println!("GET /api/v1/capacity pool: {pool:#}");

    // The trend (sampled each second here, hourly by default) will show the
    // pool above the line, then under it once the provider expands it.
    let memory_ratios = |body: &Value| -> Vec<f64> {
        body["pools"][0]["points"]
            .as_array()
            .map(|points| {
                points
                    .iter()
                    .filter_map(|p| {
                        let f = p["figures"]
                            .as_array()?
                            .iter()
                            .find(|f| f["resource"] == "memory")?;
                        Some(f["allocated"].as_f64()? / f["total"].as_f64()?)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let history_until = |done: fn(&[f64]) -> bool| {
        let controller = &controller;
        let op = op.clone();
        async move {
            let mut ratios = Vec::new();
            for _ in 0..50 {
                let (s, body) = controller
                    .api("GET", "/api/v1/capacity/history?days=1", &op, None)
                    .await;
                assert_eq!(s, 200, "{body}");
                ratios = memory_ratios(&body);
                if done(&ratios) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            ratios
        }
    };
    let ratios = history_until(|r| r.contains(&0.875)).await;
    assert!(
        ratios.contains(&0.875),
        "the trend records 87.5 %: {ratios:?}"
    );

    let alarms = |ack: &'static str| {
        let controller = &controller;
        let zhou = zhou.clone();
        async move {
            controller
                .api(
                    "GET",
                    &format!("/api/v1/alarms?category=capacity{ack}"),
                    &zhou,
                    None,
                )
                .await
                .1
        }
    };
    let body = alarms("").await;
    let items = body["items"].as_array().expect("alarms");
    assert_eq!(items.len(), 1, "{body}");
    let alarm = &items[0];
    assert_eq!(alarm["trigger"], "资源池 fsc-gov-arm64 内存分配率 > 80%");
    assert_eq!(alarm["level"], "major");
    assert!(alarm["cleared_at"].is_null(), "{alarm}");
    let content = alarm["content"].as_str().expect("content");
    assert!(
        content.contains("57344 MiB") && content.contains("65536 MiB") && content.contains("87.5%"),
        "{content}"
    );

    let (s, body) = controller
        .api("GET", "/api/v1/expansion-orders?open=true", &op, None)
        .await;
    assert_eq!(s, 200, "{body}");
    let items = body["items"].as_array().expect("orders");
    assert_eq!(items.len(), 1, "{body}");
    let expansion = &items[0];
    assert_eq!(
        (
            &expansion["provider"],
            &expansion["pool"],
            &expansion["resource"]
        ),
        (&json!("sim"), &json!(POOL), &json!("memory"))
    );
    assert_eq!(
        time(&expansion["due_at"]) - time(&expansion["opened_at"]),
        chrono::Duration::days(7),
        "{expansion}"
    );
    assert!(expansion["closed_at"].is_null());
    let id = expansion["id"].as_str().expect("id").to_owned();
    assert!(
        alarm["subject"].as_str().is_some_and(|s| s.ends_with(&id)),
        "{alarm}"
    );

    // /metrics carries the same figures.
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", controller.url))
        .bearer_auth(&controller.admin_token)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for line in [
        "yunshu_pool_allocated_ratio{provider=\"sim\",pool=\"fsc-gov-arm64\",resource=\"memory\"} 0.875",
        "yunshu_pool_capacity{provider=\"sim\",pool=\"fsc-gov-arm64\",resource=\"memory\"} 65536",
        "yunshu_pool_largest_vm_memory_mib{provider=\"sim\",pool=\"fsc-gov-arm64\"} 4096",
        "yunshu_expansion_orders_open 1",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }

    // The provider expands the pool: 56 of 96 GiB is under the line again.
    let added = sim.add_hosts(POOL, 1, 16, 32 * GIB).expect("hosts added");
    assert_eq!(added.len(), 1);
    let closed = eventually(Duration::from_secs(15), || {
        let controller = &controller;
        let op = op.clone();
        async move {
            let (_, body) = controller
                .api("GET", "/api/v1/expansion-orders?open=false", &op, None)
                .await;
            body["items"][0]["closed_at"].is_string()
        }
    })
    .await;
    assert!(closed, "the expansion order did not close itself");
    let (_, body) = controller
        .api("GET", "/api/v1/expansion-orders?open=true", &zhou, None)
        .await;
    assert_eq!(body["items"], json!([]), "{body}");
    let body = alarms("").await;
    assert!(body["items"][0]["cleared_at"].is_string(), "{body}");
    let (_, capacity) = controller.api("GET", "/api/v1/capacity", &zhou, None).await;
    let pool = &capacity["pools"][0];
    assert_eq!(pool["memory_mib"]["total"], 96 * GIB);
    assert_eq!(pool["hosts"], 3);
    assert_eq!(pool["largest_vm"]["by_memory"]["memory_mib"], 32 * GIB);

    let ratios = history_until(|r| r.last().is_some_and(|x| *x < 0.8)).await;
    let above = ratios.iter().position(|r| *r == 0.875);
    let below_after = above.is_some_and(|i| ratios[i..].iter().any(|r| *r < 0.8));
    assert!(
        below_after,
        "the trend shows 87.5 %, then under the line: {ratios:?}"
    );
}
