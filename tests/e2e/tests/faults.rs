//! The reconciler under a misbehaving provider (issue 6): the simulator fails
//! 10 % of its Apply/Delete/Get calls with UNAVAILABLE (retryable) and adds
//! 20 ms to every call. Two approved server groups (200 VMs) still converge:
//! the order reaches `test_env_ready` with exactly the approved VMs, all
//! running, and the driver never had to refuse anything for good.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use yunshu_domain::Architecture;
use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, CountingDriver, People, RunningDriver, list_vms, small_vm_line};
use yunshu_proto::v1;
use yunshu_sim::{Delays, Faults, Sim, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_errors_and_added_latency_still_converge_to_exactly_the_approved_vms() {
    let started = Instant::now();
    let controller = Controller::start(Duration::from_secs(3600)).await;
    let mut config = SimConfig::demo();
    config.delays = Delays::uniform(20);
    // A group of 100 needs 100 hosts (anti-affinity).
    for pool in &mut config.pools {
        if pool.arch == Architecture::X86_64 && pool.network_area.ends_with("-gov") {
            for template in &mut pool.hosts {
                template.count = 100;
            }
        }
    }
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Arc::new(Sim::new(config, log.sink()).expect("simulator"));
    sim.set_faults(Faults {
        error_rate: 0.1,
        added_latency: Duration::from_millis(20),
        drop_watch_every: None,
    });
    let driver = Arc::new(CountingDriver::new(sim.clone()));
    let token = controller.token("sim").await;
    let _running =
        RunningDriver::start(driver.clone(), log, &controller.url, "sim", Some(token)).await;

    let url = controller.url.clone();
    let people = People::create(&url, &controller.admin_token).await;
    let lines = vec![small_vm_line("web", 100), small_vm_line("db", 100)];
    let (_, order) = people
        .accepted_order(&url, "故障注入系统", "sim", lines)
        .await;
    let approved = Instant::now();
    people.approve(&url, &order).await;

    let ready = yunshu_e2e::eventually(Duration::from_secs(180), || async {
        people.order_state(&url, &order).await.as_deref() == Some("test_env_ready")
    })
    .await;
    let converged = approved.elapsed();
    let vms = list_vms(&*sim).await;
    assert!(
        ready,
        "order not ready; the simulator has {} VMs",
        vms.len()
    );
    let ids: BTreeSet<&str> = vms.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids.len(), vms.len(), "an id listed twice");
    assert_eq!(vms.len(), 200, "exactly the approved quantity");
    assert!(
        vms.iter().all(|v| v.phase == v1::Phase::Running as i32),
        "all running"
    );
    assert!(driver.refusals().is_empty(), "{:?}", driver.refusals());
    let faulted = driver.retryable.load(Ordering::Relaxed);
    assert!(faulted > 0, "the faults were injected");
    eprintln!(
        "faults: 200 VMs converged {:.1} s after approval through {faulted} injected Apply failures \
         ({} applies accepted); test wall time {:.1} s",
        converged.as_secs_f64(),
        driver.applied.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
}

/// A retried refusal is shown on the resource while it lasts, then replaced
/// by what the driver reports once it goes through. Found with the OpenStack
/// driver: an Apply answered UNAVAILABLE for minutes left the resource's
/// older "waiting for …", so the order page named the wrong cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_refusal_is_shown_on_the_resource_until_it_goes_through() {
    let controller = Controller::start(Duration::from_secs(3600)).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Arc::new(Sim::new(SimConfig::demo(), log.sink()).expect("simulator"));
    sim.set_faults(Faults {
        error_rate: 1.0,
        added_latency: Duration::ZERO,
        drop_watch_every: None,
    });
    let token = controller.token("sim").await;
    let _running =
        RunningDriver::start(sim.clone(), log, &controller.url, "sim", Some(token)).await;
    let url = controller.url.clone();
    let people = People::create(&url, &controller.admin_token).await;
    let (system, order) = people
        .accepted_order(&url, "重试显示系统", "sim", vec![small_vm_line("web", 1)])
        .await;
    people.approve(&url, &order).await;

    let messages = || async {
        let (_, list) = yunshu_e2e::api_at(
            &url,
            "GET",
            &format!("/api/v1/systems/{system}/resources"),
            &people.wang,
            None,
        )
        .await;
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| format!("{} {}", r["id"], r["message"]))
            .collect::<Vec<_>>()
    };
    let shown = yunshu_e2e::eventually(Duration::from_secs(60), || async {
        messages()
            .await
            .iter()
            .any(|m| m.contains("INJECTED_FAULT"))
    })
    .await;
    assert!(shown, "the refusal is not shown: {:?}", messages().await);

    sim.set_faults(Faults::default());
    let ready = yunshu_e2e::eventually(Duration::from_secs(120), || async {
        people.order_state(&url, &order).await.as_deref() == Some("test_env_ready")
    })
    .await;
    assert!(ready, "order not ready: {:?}", messages().await);
    let left: Vec<String> = messages()
        .await
        .into_iter()
        .filter(|m| m.contains("INJECTED_FAULT"))
        .collect();
    assert!(left.is_empty(), "an old refusal still shown: {left:?}");
}
