//! Issue 17, suspending and resuming a system, with the real reconciler and
//! simulator: the management unit suspends a system with a major security
//! risk (002 art. 18 "暂停服务"; 004 art. 27 "暂时中断该系统的云服务") through
//! the HTTP API, and its servers are powered off through the driver — disks,
//! network and backups kept; lifting the suspension ("事件处理完毕后恢复服务")
//! powers them on again. The API's own rules (who may, reasons, 409s, audit)
//! are `yunshu-api`'s `suspension_tests`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, People, RunningDriver, eventually};
use yunshu_sim::{Sim, SimConfig};

fn line(name: &str, quantity: u32) -> Value {
    json!({
        "server": {
            "server_name": name, "network_area": "gov_extranet", "form": "vm",
            "architecture": "arm64", "vcpu": 4, "memory_gib": 8, "system_disk_gib": 50,
            "data_disk_gib": 100, "os": "麒麟 V10", "purpose": "应用服务器", "backup_gib": 100
        },
        "quantity": quantity
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_art_18_004_art_27_a_suspended_system_is_powered_off_and_resumed() {
    let controller = Controller::start(Duration::from_secs(3600)).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Sim::new(SimConfig::demo(), log.sink()).expect("simulator");
    let token = controller.token("sim").await;
    let _driver =
        RunningDriver::start(Arc::new(sim), log, &controller.url, "sim", Some(token)).await;
    let people = People::create(&controller.url, &controller.admin_token).await;
    let (wang, sun, zhou) = (people.wang.clone(), people.sun.clone(), people.zhou.clone());
    let system = controller.create_system(&wang, "暂停服务系统").await;
    let (s, body) = controller
        .api(
            "POST",
            "/api/v1/orders",
            &wang,
            Some(
                json!({"kind": "onboarding", "system": system, "provider": "sim",
                        "policy": "yongjia", "lines": [line("app", 2)]}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let order = body["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/orders/{order}/transitions");
    let step = |to: &str| json!({"to": to, "reason": "ok"});
    for (who, to) in [
        (&wang, "submitted"),
        (&sun, "accepted"),
        (&zhou, "approved"),
    ] {
        let (s, body) = controller.api("POST", &path, who, Some(step(to))).await;
        assert_eq!(s, 200, "{to}: {body}");
    }
    let resources = || {
        let (controller, wang, system) = (&controller, wang.clone(), system.clone());
        async move {
            let (s, res) = controller
                .api(
                    "GET",
                    &format!("/api/v1/systems/{system}/resources"),
                    &wang,
                    None,
                )
                .await;
            assert_eq!(s, 200, "{res}");
            res["items"].as_array().cloned().unwrap_or_default()
        }
    };
    let of = |items: &[Value], kind: &str| -> Vec<Value> {
        items
            .iter()
            .filter(|r| r["kind"] == kind && r["phase"] != "deleted")
            .cloned()
            .collect()
    };
    let vms_are = |phase: &'static str| {
        let resources = &resources;
        move || async move {
            let vms = of(&resources().await, "vm");
            vms.len() == 2 && vms.iter().all(|v| v["phase"] == phase)
        }
    };
    let running = eventually(Duration::from_secs(30), vms_are("running")).await;
    let before = resources().await;
    assert!(running, "not provisioned: {before:?}");
    assert!(!of(&before, "backup_policy").is_empty(), "{before:?}");

    // Suspended by the management unit: every server powered off, the rest kept.
    let suspension = format!("/api/v1/systems/{system}/suspension");
    let (s, body) = controller
        .api(
            "POST",
            &suspension,
            &zhou,
            Some(json!({"reason": "高危漏洞逾期未整改"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let off = eventually(Duration::from_secs(30), vms_are("stopped")).await;
    let items = resources().await;
    assert!(off, "servers not powered off: {items:?}");
    for kind in ["volume", "vpc", "subnet", "backup_policy"] {
        assert_eq!(
            of(&items, kind).len(),
            of(&before, kind).len(),
            "{kind} kept: {items:?}"
        );
    }
    // The department sees it, and why.
    let (s, body) = controller.api("GET", &suspension, &wang, None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["suspended"], true, "{body}");
    assert_eq!(body["current"]["reason"], "高危漏洞逾期未整改", "{body}");

    // Resumed once the event is dealt with: powered on again, same servers.
    let (s, body) = controller
        .api(
            "POST",
            &format!("{suspension}/resume"),
            &zhou,
            Some(json!({"reason": "已整改，复测通过"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let on = eventually(Duration::from_secs(30), vms_are("running")).await;
    let items = resources().await;
    assert!(on, "servers not powered on: {items:?}");
    let ids = |items: &[Value], kind: &str| -> Vec<Value> {
        let mut v: Vec<Value> = of(items, kind).iter().map(|r| r["id"].clone()).collect();
        v.sort_by_key(|x| x.to_string());
        v
    };
    for kind in ["vm", "volume", "vpc", "subnet", "backup_policy"] {
        assert_eq!(ids(&items, kind), ids(&before, kind), "{kind}: {items:?}");
    }
}
