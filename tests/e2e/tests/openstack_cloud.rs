//! The OpenStack driver behind a real controller, against the test OpenStack
//! of `tests/openstack` (`tests/openstack/up`; scripts/test runs it):
//! - an approved order becomes a Neutron network, subnet, router and security
//!   group and a Nova server, and is ready when the server is ACTIVE;
//! - that server deleted in Nova behind yunshu's back (a plain REST DELETE)
//!   is reported gone by the driver's poller and re-created by the
//!   controller, on the same ports;
//! - with Placement holding all but 32 GiB of the host's memory for another
//!   consumer, an order for a 48 GiB VM is not placed: it waits with the
//!   controller's reason and nothing is made in Nova; and the driver itself
//!   refuses such a VM (`HOST_MEMORY_EXHAUSTED`) if asked directly.

mod openstack_env;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yunshu_driver_sdk::{Driver, EventLog};
use yunshu_e2e::{Controller, People, RunningDriver};
use yunshu_openstack::cloud::Service;

async fn resources(c: &Controller, people: &People, system: &str) -> Vec<Value> {
    let (s, list) = c
        .api(
            "GET",
            &format!("/api/v1/systems/{system}/resources"),
            &people.wang,
            None,
        )
        .await;
    assert_eq!(s, 200, "{list}");
    list["items"].as_array().cloned().unwrap_or_default()
}

async fn wait_ready(c: &Controller, people: &People, system: &str, order: &str) -> Duration {
    let started = Instant::now();
    loop {
        let state = people.order_state(&c.url, order).await;
        if state.as_deref() == Some("test_env_ready") {
            return started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(300) {
            let (_, o) = c
                .api(
                    "GET",
                    &format!("/api/v1/orders/{order}"),
                    &people.wang,
                    None,
                )
                .await;
            panic!(
                "order still {state:?}: {:?}\n{o}",
                resources(c, people, system).await
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_deleted_in_nova_is_recreated_and_what_placement_cannot_fit_is_not_placed() {
    let cloud = openstack_env::tenant_cloud().await;
    openstack_env::sweep(&cloud).await;
    // Someone else's memory in Placement: 32 GiB stay free for yunshu.
    let op = openstack_env::operator_cloud().await;
    openstack_env::hold_memory(&op, 32 * 1024).await;
    let c = Controller::start(Duration::from_secs(3600)).await;
    let people = People::create(&c.url, &c.admin_token).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let driver = openstack_env::open(log.sink()).await;
    let inventory = driver.inventory().await.expect("inventory");
    let host = inventory.hosts.first().expect("a compute host").clone();
    let pool = inventory
        .pools
        .iter()
        .find(|p| p.id == host.pool)
        .expect("its pool")
        .clone();
    let free_mib = host.memory_mib - host.reserved_memory_mib;
    assert!(
        free_mib <= 32 * 1024,
        "Placement's other consumers count as reserved: {host:?}"
    );
    let direct = driver.clone();
    let token = c.token("openstack").await;
    let _running =
        RunningDriver::start(Arc::new(driver), log, &c.url, "openstack", Some(token)).await;
    c.wait_driver_healthy("openstack").await;

    // One VM: approved, built in OpenStack, ready once Nova says ACTIVE.
    let (system, order) = people
        .accepted_order(
            &c.url,
            "OpenStack 试点系统",
            "openstack",
            vec![yunshu_e2e::small_vm_line("app", 1)],
        )
        .await;
    people.approve(&c.url, &order).await;
    let took = wait_ready(&c, &people, &system, &order).await;
    println!("order ready in {:.1}s", took.as_secs_f64());
    let items = resources(&c, &people, &system).await;
    let vm = items
        .iter()
        .find(|r| r["kind"] == "vm")
        .expect("a vm")
        .clone();
    let vm_id = vm["id"].as_str().expect("id").to_owned();
    let first = vm["outputs"]["server_id"]
        .as_str()
        .expect("server_id")
        .to_owned();
    let server = cloud
        .get(Service::Compute, &format!("servers/{first}"))
        .await
        .expect("the server is in Nova");
    assert_eq!(server["server"]["status"], "ACTIVE", "{server}");
    assert_eq!(server["server"]["metadata"]["yunshu_id"], vm_id.as_str());
    assert_eq!(server["server"]["flavor"]["vcpus"], 2, "{server}");
    assert_eq!(server["server"]["flavor"]["ram"], 4096, "{server}");

    // Deleted in Nova, not through yunshu.
    cloud
        .delete(Service::Compute, &format!("servers/{first}"))
        .await
        .expect("DELETE in Nova");
    let started = Instant::now();
    let second = loop {
        let items = resources(&c, &people, &system).await;
        let now = items.iter().find(|r| r["id"] == vm_id.as_str());
        if let Some(r) = now
            && r["phase"] == "running"
            && let Some(s) = r["outputs"]["server_id"].as_str()
            && !s.is_empty()
            && s != first
        {
            break s.to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "not re-created: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "server re-created after deletion in Nova in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let again = cloud
        .get(Service::Compute, &format!("servers/{second}"))
        .await
        .expect("the new server is in Nova");
    assert_eq!(again["server"]["metadata"]["yunshu_id"], vm_id.as_str());
    let tagged = cloud
        .get(Service::Compute, "servers?tags=yunshu")
        .await
        .expect("servers");
    assert_eq!(
        tagged["servers"].as_array().map(Vec::len),
        Some(1),
        "exactly one server for the one VM: {tagged}"
    );

    // More memory than Placement says the host has left: not placed.
    let mut big = yunshu_e2e::small_vm_line("big", 1);
    big["server"]["memory_gib"] = json!(48);
    let (big_system, big_order) = people
        .accepted_order(&c.url, "OpenStack 超大主机", "openstack", vec![big])
        .await;
    people.approve(&c.url, &big_order).await;
    let started = Instant::now();
    let note = loop {
        let (_, o) = c
            .api(
                "GET",
                &format!("/api/v1/orders/{big_order}"),
                &people.wang,
                None,
            )
            .await;
        if o["unschedulable"].is_object() {
            break o["unschedulable"].clone();
        }
        assert_ne!(o["state"], "test_env_ready", "placed: {o}");
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no reason given: {o}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("refused: {note}");
    let reason = note["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("memory") || reason.contains("MiB") || reason.contains("fits"),
        "{note}"
    );
    assert!(
        resources(&c, &people, &big_system)
            .await
            .iter()
            .all(|r| r["kind"] != "vm"),
        "no VM resource for the refused order"
    );
    let tagged = cloud
        .get(Service::Compute, "servers?tags=yunshu")
        .await
        .expect("servers");
    assert_eq!(
        tagged["servers"].as_array().map(Vec::len),
        Some(1),
        "nothing made in Nova for it: {tagged}"
    );

    // The driver re-checks on its own: a scheduler bug cannot hide.
    let refused = direct
        .apply(&yunshu_proto::v1::ApplyRequest {
            kind: yunshu_proto::v1::ResourceKind::Vm as i32,
            id: "too-big".to_owned(),
            generation: 1,
            idempotency_key: "too-big-1".to_owned(),
            spec: Some(yunshu_proto::v1::ResourceSpec {
                spec: Some(yunshu_proto::v1::resource_spec::Spec::Vm(
                    yunshu_proto::v1::VmSpec {
                        arch: pool.arch,
                        vcpu: 2,
                        memory_mib: 48 * 1024,
                        system_disk: Some(yunshu_proto::v1::Disk {
                            size_gib: 20,
                            storage_class: String::new(),
                        }),
                        image: "麒麟 V10".to_owned(),
                        ..Default::default()
                    },
                )),
            }),
            placement: Some(yunshu_proto::v1::Placement {
                zone: pool.zone.clone(),
                network_area: pool.network_area.clone(),
                pool: pool.id.clone(),
                host: host.id.clone(),
            }),
            tenant: "t".to_owned(),
        })
        .await
        .expect_err("48 GiB do not fit in 32");
    assert_eq!(
        yunshu_proto::errors::reason(&refused).map(|r| r.reason),
        Some(yunshu_proto::errors::reasons::HOST_MEMORY_EXHAUSTED.to_owned()),
        "{refused:?}"
    );
    openstack_env::release_memory(&op).await;
    openstack_env::sweep(&cloud).await;
}
