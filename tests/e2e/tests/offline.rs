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

use std::time::Duration;

use serde_json::{Value, json};
use yunshu_e2e::sim_cloud::{live_of as of, vm_line};
use yunshu_e2e::{Controller, SimCloud, eventually};
use yunshu_store::StoreSpec;
use yunshu_testkit::EtcdServer;

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
    let cloud = SimCloud::start(controller).await;
    let (system, order) = cloud
        .provisioned("强制下线系统", "yongjia", json!([vm_line("app", 2, 100)]))
        .await;
    // Delivered and live: the usage period runs.
    for to in ["delivered", "live"] {
        cloud.step(&cloud.people.wang, &order, to).await;
    }
    let before = cloud.resources(&system).await;
    assert_eq!(of(&before, "vm").len(), 2, "{before:?}");
    assert!(!of(&before, "backup_policy").is_empty(), "{before:?}");

    let store = yunshu_store::open_store(&spec, cloud.controller.dir.path())
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
    let off = cloud.vms_become(&system, 2, "stopped").await;
    let items = cloud.resources(&system).await;
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
        of(&cloud.resources(&system).await, "backup_policy").is_empty()
    })
    .await;
    let items = cloud.resources(&system).await;
    assert!(dropped, "backups still kept: {items:?}");
    assert_eq!(of(&items, "vm").len(), 2, "{items:?}");
    assert!(of(&items, "vm").iter().all(|v| v["phase"] == "stopped"));
    assert_eq!(of(&items, "volume").len(), of(&before, "volume").len());
    drop(etcd);
}
