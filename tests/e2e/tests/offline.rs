//! Issue 17, "Usage period and forced offline", with the real reconciler and
//! simulator on a real etcd: a system forced offline (002 art. 14: "完成应用
//! 系统强制下线和数据备份工作") has its servers powered off through the driver
//! — disks, network and backups kept — and once its backups are no longer
//! kept ("3 个月后不再保留备份数据") loses its backup policies only.
//!
//! The timers' decision (`offline_at`, `backups_kept_until` on the usage
//! term, proved through the HTTP API in `yunshu-api`'s `timers_tests`) is
//! written here into the shared store, as the timers would after three
//! years; what this test proves is what the reconciler and driver do with it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, People, RunningDriver, eventually};
use yunshu_sim::{Sim, SimConfig};
use yunshu_store::StoreSpec;
use yunshu_testkit::EtcdServer;

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

/// Sets `fields` on the stored usage term of `system`, as the timers would.
async fn set_term(store: &dyn yunshu_store::Store, system: &str, fields: Value) {
    let key = format!("usage_term/{system}");
    let kv = store.get(&key).await.expect("read").expect("a usage term");
    let mut stored: Value = serde_json::from_slice(&kv.value).expect("json");
    for (k, v) in fields.as_object().expect("object") {
        stored["data"][k] = v.clone();
    }
    store
        .put(&key, serde_json::to_vec(&stored).expect("bytes"))
        .await
        .expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_art_14_a_system_forced_offline_is_powered_off_and_later_loses_its_backups() {
    let etcd = EtcdServer::start().unwrap_or_else(|e| panic!("{e}"));
    let spec: StoreSpec = format!("etcd://{}/offline", etcd.endpoint())
        .parse()
        .expect("store spec");
    let controller = Controller::start_on(
        spec.clone(),
        Duration::from_secs(3600),
        yunshu_reconciler::Config::default(),
    )
    .await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Sim::new(SimConfig::demo(), log.sink()).expect("simulator");
    let token = controller.token("sim").await;
    let _driver =
        RunningDriver::start(Arc::new(sim), log, &controller.url, "sim", Some(token)).await;
    let people = People::create(&controller.url, &controller.admin_token).await;
    let (wang, sun, zhou) = (people.wang.clone(), people.sun.clone(), people.zhou.clone());
    let system = controller.create_system(&wang, "强制下线系统").await;
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
    let state = || {
        let (controller, wang, order) = (&controller, wang.clone(), order.clone());
        async move {
            controller
                .api("GET", &format!("/api/v1/orders/{order}"), &wang, None)
                .await
                .1["state"]
                .clone()
        }
    };
    let ready = eventually(Duration::from_secs(30), || async {
        state().await == "test_env_ready"
    })
    .await;
    assert!(ready, "not provisioned: {}", state().await);
    for to in ["delivered", "live"] {
        let (s, body) = controller.api("POST", &path, &wang, Some(step(to))).await;
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
    let before = resources().await;
    assert_eq!(of(&before, "vm").len(), 2, "{before:?}");
    assert!(!of(&before, "backup_policy").is_empty(), "{before:?}");

    let store = yunshu_store::open_store(&spec, controller.dir.path())
        .await
        .expect("the shared etcd");
    let now = chrono::Utc::now();
    let kept_until = (now + chrono::Duration::days(90)).date_naive();
    set_term(
        &*store,
        &system,
        json!({"offline_at": now, "backups_kept_until": kept_until}),
    )
    .await;
    let off = eventually(Duration::from_secs(30), || async {
        let items = resources().await;
        let vms = of(&items, "vm");
        vms.len() == 2 && vms.iter().all(|v| v["phase"] == "stopped")
    })
    .await;
    let items = resources().await;
    assert!(off, "servers not powered off: {items:?}");
    for kind in ["volume", "vpc", "subnet", "backup_policy"] {
        assert_eq!(
            of(&items, kind).len(),
            of(&before, kind).len(),
            "{kind} kept: {items:?}"
        );
    }

    // Three months on: the backups are no longer kept; everything else is.
    set_term(
        &*store,
        &system,
        json!({"backups_kept_until": (now - chrono::Duration::days(1)).date_naive()}),
    )
    .await;
    let dropped = eventually(Duration::from_secs(30), || async {
        of(&resources().await, "backup_policy").is_empty()
    })
    .await;
    let items = resources().await;
    assert!(dropped, "backups still kept: {items:?}");
    assert_eq!(of(&items, "vm").len(), 2, "{items:?}");
    assert!(of(&items, "vm").iter().all(|v| v["phase"] == "stopped"));
    assert_eq!(of(&items, "volume").len(), of(&before, "volume").len());
    drop(etcd);
}
