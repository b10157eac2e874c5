//! Issue 17, "Clocks that really time the steps", with the real reconciler:
//! the onboarding order's own exit (live → exit requested → exited) is
//! reclaimed on the policy's `exit_reclaim` clock like an exit order (seed 002
//! art. 13, 000 art. 16), and the reconciler records the reclaim once every
//! server is powered off — then the data retention starts, the data kept
//! until the purge.

use std::time::Duration;

use serde_json::json;
use yunshu_e2e::sim_cloud::vm_line;
use yunshu_e2e::{Controller, SimCloud, eventually};

/// Seed 002 art. 13 ("审核通过后，政务云服务供应商应当在 3 个工作日内终止有关服务，
/// 但所涉及的数据资源和日志应保留 3 个月"): the onboarding order's own exit is timed
/// as `exit_reclaim` from the decision and recorded as done by the reconciler
/// when the system is empty; `data_retention` follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_art_13_the_reconciler_records_the_onboarding_exits_reclaim() {
    let cloud = SimCloud::start(Controller::start(Duration::from_secs(3600)).await).await;
    let (controller, wang, zhou) = (&cloud.controller, &cloud.people.wang, &cloud.people.zhou);
    let (system, order) = cloud
        .provisioned("入云退出回收系统", "yongjia", json!([vm_line("app", 1, 0)]))
        .await;
    for (who, to) in [
        (wang, "delivered"),
        (wang, "live"),
        (wang, "exit_requested"),
        (zhou, "exited"),
    ] {
        let body = cloud.step(who, &order, to).await;
        if to == "exited" {
            // The reconciler may already have recorded the reclaim.
            let step = body["deadline"]["step"].clone();
            assert!(step == "exit_reclaim" || step == "data_retention", "{body}");
        }
    }
    let recorded = eventually(Duration::from_secs(30), || async {
        cloud.order(&order).await["deadline"]["step"] == "data_retention"
    })
    .await;
    let body = cloud.order(&order).await;
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
    let kept = cloud.resources(&system).await;
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
        .api(
            "POST",
            &format!("/api/v1/orders/{order}/transitions"),
            zhou,
            Some(json!({"to": "purged", "reason": "zhou: ok"})),
        )
        .await;
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["code"], "ORDER_RETENTION_RUNNING", "{body}");
    let (s, body) = controller
        .api(
            "POST",
            &format!("/api/v1/orders/{order}/purge"),
            zhou,
            Some(json!({"reason": "数据已移交使用单位"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let gone = eventually(Duration::from_secs(30), || async {
        cloud
            .resources(&system)
            .await
            .iter()
            .all(|r| r["phase"] == "deleted")
    })
    .await;
    assert!(gone, "purged: {:?}", cloud.resources(&system).await);
}
