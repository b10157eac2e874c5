//! Issue 17, suspending and resuming a system, with the real reconciler and
//! simulator: the management unit suspends a system with a major security
//! risk (002 art. 18 "暂停服务"; 004 art. 27 "暂时中断该系统的云服务") through
//! the HTTP API, and its servers are powered off through the driver — disks,
//! network and backups kept; lifting the suspension ("事件处理完毕后恢复服务")
//! powers them on again. The API's own rules (who may, reasons, 409s, audit)
//! are `yunshu-api`'s `suspension_tests`.

use serde_json::{Value, json};
use yunshu_e2e::sim_cloud::{live_of as of, vm_line};
use yunshu_e2e::{Controller, SimCloud};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_art_18_004_art_27_a_suspended_system_is_powered_off_and_resumed() {
    let cloud =
        SimCloud::start(Controller::start(std::time::Duration::from_secs(3600)).await).await;
    let (controller, wang, zhou) = (&cloud.controller, &cloud.people.wang, &cloud.people.zhou);
    let (system, _) = cloud
        .provisioned("暂停服务系统", "yongjia", json!([vm_line("app", 2, 100)]))
        .await;
    let running = cloud.vms_become(&system, 2, "running").await;
    let before = cloud.resources(&system).await;
    assert!(running, "not provisioned: {before:?}");
    assert!(!of(&before, "backup_policy").is_empty(), "{before:?}");

    // Suspended by the management unit: every server powered off, the rest kept.
    let suspension = format!("/api/v1/systems/{system}/suspension");
    let (s, body) = controller
        .api(
            "POST",
            &suspension,
            zhou,
            Some(json!({"reason": "高危漏洞逾期未整改"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
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
    // The department sees it, and why.
    let (s, body) = controller.api("GET", &suspension, wang, None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["suspended"], true, "{body}");
    assert_eq!(body["current"]["reason"], "高危漏洞逾期未整改", "{body}");

    // Resumed once the event is dealt with: powered on again, same servers.
    let (s, body) = controller
        .api(
            "POST",
            &format!("{suspension}/resume"),
            zhou,
            Some(json!({"reason": "已整改，复测通过"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let on = cloud.vms_become(&system, 2, "running").await;
    let items = cloud.resources(&system).await;
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
