//! Issue 17, "Clocks that really time the steps", with the real reconciler:
//! the onboarding order's own exit (live → exit requested → exited) is
//! reclaimed on the policy's `exit_reclaim` clock like an exit order (seed 002
//! art. 13, 000 art. 16), and the reconciler records the reclaim once every
//! server is powered off — then the data retention starts, the data kept
//! until the purge.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, People, RunningDriver, eventually};
use yunshu_sim::{Sim, SimConfig};

fn line(name: &str, quantity: u32) -> serde_json::Value {
    json!({
        "server": {
            "server_name": name, "network_area": "gov_extranet", "form": "vm",
            "architecture": "arm64", "vcpu": 4, "memory_gib": 8, "system_disk_gib": 50,
            "data_disk_gib": 100, "os": "麒麟 V10", "purpose": "应用服务器", "backup_gib": 0
        },
        "quantity": quantity
    })
}

/// Seed 002 art. 13 ("审核通过后，政务云服务供应商应当在 3 个工作日内终止有关服务，
/// 但所涉及的数据资源和日志应保留 3 个月"): the onboarding order's own exit is timed
/// as `exit_reclaim` from the decision and recorded as done by the reconciler
/// when the system is empty; `data_retention` follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_art_13_the_reconciler_records_the_onboarding_exits_reclaim() {
    let controller = Controller::start(Duration::from_secs(3600)).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Sim::new(SimConfig::demo(), log.sink()).expect("simulator");
    let token = controller.token("sim").await;
    let _driver =
        RunningDriver::start(Arc::new(sim), log, &controller.url, "sim", Some(token)).await;
    let people = People::create(&controller.url, &controller.admin_token).await;
    let (wang, sun, zhou) = (people.wang.clone(), people.sun.clone(), people.zhou.clone());
    let system = controller.create_system(&wang, "入云退出回收系统").await;
    let (s, body) = controller
        .api(
            "POST",
            "/api/v1/orders",
            &wang,
            Some(
                json!({"kind": "onboarding", "system": system, "provider": "sim",
                        "policy": "yongjia", "lines": [line("app", 1)]}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let order = body["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/orders/{order}/transitions");
    let get = || {
        let controller = &controller;
        let (wang, order) = (wang.clone(), order.clone());
        async move {
            controller
                .api("GET", &format!("/api/v1/orders/{order}"), &wang, None)
                .await
                .1
        }
    };
    let step = |who: &str, to: &str| json!({"to": to, "reason": format!("{who}: ok")});
    for (who, name, to) in [
        (&wang, "wang", "submitted"),
        (&sun, "sun", "accepted"),
        (&zhou, "zhou", "approved"),
    ] {
        let (s, body) = controller
            .api("POST", &path, who, Some(step(name, to)))
            .await;
        assert_eq!(s, 200, "{to}: {body}");
    }
    let ready = eventually(Duration::from_secs(30), || async {
        get().await["state"] == "test_env_ready"
    })
    .await;
    assert!(ready, "not provisioned: {}", get().await);
    for (who, name, to) in [
        (&wang, "wang", "delivered"),
        (&wang, "wang", "live"),
        (&wang, "wang", "exit_requested"),
        (&zhou, "zhou", "exited"),
    ] {
        let (s, body) = controller
            .api("POST", &path, who, Some(step(name, to)))
            .await;
        assert_eq!(s, 200, "{to}: {body}");
        if to == "exited" {
            // The reconciler may already have recorded the reclaim.
            let step = body["deadline"]["step"].clone();
            assert!(step == "exit_reclaim" || step == "data_retention", "{body}");
        }
    }
    let recorded = eventually(Duration::from_secs(30), || async {
        get().await["deadline"]["step"] == "data_retention"
    })
    .await;
    let body = get().await;
    assert!(recorded, "reclaim not recorded: {body}");
    let past = body["past_steps"].as_array().cloned().unwrap_or_default();
    let reclaim = past
        .iter()
        .find(|s| s["step"] == "exit_reclaim")
        .expect("exit_reclaim on the timeline");
    assert!(reclaim["finished_at"].is_string(), "{reclaim}");
    assert_eq!(reclaim["deadline"]["source"], "002 art. 13");
    // 002 art. 13: the service is terminated, the data kept: every server
    // powered off at its generation, its disks and network still there.
    let resources = || {
        let controller = &controller;
        let (wang, system) = (wang.clone(), system.clone());
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
    let kept = resources().await;
    let vms: Vec<_> = kept.iter().filter(|r| r["kind"] == "vm").collect();
    assert_eq!(vms.len(), 1, "{kept:?}");
    assert!(vms.iter().all(|r| r["phase"] == "stopped"), "{kept:?}");
    assert!(
        kept.iter()
            .any(|r| r["kind"] == "vpc" && r["phase"] == "running"),
        "the network is kept: {kept:?}"
    );
    // A purge before the 3 months is refused, then decided with a reason.
    let (s, body) = controller
        .api("POST", &path, &zhou, Some(step("zhou", "purged")))
        .await;
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["code"], "ORDER_RETENTION_RUNNING", "{body}");
    let (s, body) = controller
        .api(
            "POST",
            &format!("/api/v1/orders/{order}/purge"),
            &zhou,
            Some(json!({"reason": "数据已移交使用单位"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let gone = eventually(Duration::from_secs(30), || async {
        resources()
            .await
            .iter()
            .all(|r| r["phase"] == "deleted")
    })
    .await;
    assert!(gone, "purged: {:?}", resources().await);
}
