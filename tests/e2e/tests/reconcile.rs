//! Approved orders become VMs in the simulator over real gRPC + mTLS: a tenant
//! applies, a reviewer lowers a line, the approver approves, and the reconciler
//! places and creates exactly the approved quantity, never more, then moves the
//! order to test_env_ready; an exit order deletes them all and releases the
//! capacity.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, People, RunningDriver, eventually, list_vms_grpc};
use yunshu_proto::v1;
use yunshu_sim::{Delays, Sim, SimConfig};

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

/// Reads `GET …/resources/events` until a `resources` event lists `n` VMs all
/// running; returns the phases of the VMs of every list received (the
/// system's network resources are listed too and not counted).
async fn follow_until_running(url: String, bearer: String, n: usize) -> Vec<Vec<String>> {
    let mut resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(bearer)
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap_or_default();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let (mut text, mut lists) = (String::new(), Vec::new());
    while let Some(chunk) = resp.chunk().await.expect("stream") {
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) else {
                continue; // a keep-alive comment
            };
            assert!(frame.contains("event: resources"), "{frame}");
            let list: serde_json::Value = serde_json::from_str(data.trim()).expect("json");
            let phases: Vec<String> = list["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter(|r| r["kind"] == "vm")
                .map(|r| r["phase"].as_str().unwrap_or_default().to_owned())
                .collect();
            let done = phases.len() == n && phases.iter().all(|p| p == "running");
            lists.push(phases);
            if done {
                return lists;
            }
        }
    }
    panic!("the stream ended: {lists:?}")
}

/// Whether the driver comes to run exactly `n` VMs within 15 s.
async fn running_count_reaches(
    client: &v1::driver_client::DriverClient<yunshu_proto::tonic::transport::Channel>,
    n: usize,
) -> bool {
    eventually(Duration::from_secs(15), || {
        let mut client = client.clone();
        async move {
            list_vms_grpc(&mut client)
                .await
                .iter()
                .filter(|v| v.phase == v1::Phase::Running as i32)
                .count()
                == n
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_quantities_are_provisioned_once_and_an_exit_reclaims_them() {
    let controller = Controller::start(Duration::from_secs(3600)).await;
    let mut config = SimConfig::demo();
    // Non-zero: the reconciler must see PROVISIONING turn into RUNNING.
    config.delays = Delays::uniform(20);
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Sim::new(config, log.sink()).expect("simulator");
    let token = controller.token("sim").await;
    let driver =
        RunningDriver::start(Arc::new(sim), log, &controller.url, "sim", Some(token)).await;
    let mut client = driver.client(&controller, "sim").await;

    let people = People::create(&controller.url, &controller.admin_token).await;
    let (wang, sun, zhou) = (people.wang.clone(), people.sun.clone(), people.zhou.clone());
    let system = controller.create_system(&wang, "不动产登记系统").await;

    let (s, body) = controller
        .api(
            "POST",
            "/api/v1/orders",
            &wang,
            Some(
                json!({"kind": "onboarding", "system": system, "provider": "sim",
                        "lines": [line("web", 5), line("db", 2)]}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let order = body["id"].as_str().expect("id").to_owned();
    // The tenant follows the system's resources as they change, as the
    // portal's order page does.
    let follower = tokio::spawn(follow_until_running(
        format!(
            "{}/api/v1/systems/{system}/resources/events",
            controller.url
        ),
        wang.clone(),
        5,
    ));
    let step = |who: &str, to: &str| json!({"to": to, "reason": format!("{who}: ok")});
    let path = format!("/api/v1/orders/{order}/transitions");
    assert_eq!(
        controller
            .api("POST", &path, &wang, Some(step("wang", "submitted")))
            .await
            .0,
        200
    );
    assert_eq!(
        controller
            .api("POST", &path, &sun, Some(step("sun", "accepted")))
            .await
            .0,
        200
    );
    // The reviewer lowers web from 5 to 3: 5 VMs in all, not 7.
    let (s, body) = controller
        .api(
            "POST",
            &format!("/api/v1/orders/{order}/lines/0/approve"),
            &sun,
            Some(json!({"quantity": 3})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = controller
        .api("POST", &path, &zhou, Some(step("zhou", "approved")))
        .await;
    assert_eq!(s, 200, "{body}");

    let ready = eventually(Duration::from_secs(30), || {
        let controller = &controller;
        let (wang, order) = (wang.clone(), order.clone());
        async move {
            let (_, body) = controller
                .api("GET", &format!("/api/v1/orders/{order}"), &wang, None)
                .await;
            body["state"] == "test_env_ready"
        }
    })
    .await;
    let vms = list_vms_grpc(&mut client).await;
    assert!(ready, "order not ready; driver has {} VMs", vms.len());
    let lists = tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("the event stream shows all 5 running within 10 s of the order being ready")
        .expect("follower");
    assert_eq!(lists.first(), Some(&Vec::new()), "first event: nothing yet");
    assert_eq!(vms.len(), 5, "exactly the approved quantity");
    assert!(vms.iter().all(|v| v.phase == v1::Phase::Running as i32));
    assert!(vms.iter().all(|v| v.tenant == "110105"));
    let hosts: std::collections::BTreeSet<_> = vms
        .iter()
        .filter_map(|v| v.placement.as_ref().map(|p| p.host.clone()))
        .collect();
    assert!(
        hosts.len() >= 3,
        "anti-affinity spreads a group's replicas: {hosts:?}"
    );
    // The tenant sees its VMs and their live state.
    let (s, body) = controller
        .api(
            "GET",
            &format!("/api/v1/systems/{system}/resources"),
            &wang,
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    let of_kind =
        |k: &str| -> Vec<&serde_json::Value> { items.iter().filter(|r| r["kind"] == k).collect() };
    let vms = of_kind("vm");
    assert_eq!(vms.len(), 5, "{body}");
    assert!(
        vms.iter()
            .all(|r| r["phase"] == "running" && r["vcpu"] == 4),
        "{body}"
    );
    // A tenant who asks only for servers gets a network: one VPC, one subnet
    // for the area the servers are in, the default security group, and every
    // VM wired to the subnet and the group.
    let (vpc, subnet, sg) = (of_kind("vpc"), of_kind("subnet"), of_kind("security_group"));
    assert_eq!((vpc.len(), subnet.len(), sg.len()), (1, 1, 1), "{body}");
    assert!(
        [&vpc, &subnet, &sg]
            .iter()
            .all(|k| k[0]["phase"] == "running"),
        "{body}"
    );
    assert_eq!(subnet[0]["connects_to"], json!([vpc[0]["id"]]));
    assert!(
        vms.iter()
            .all(|v| v["connects_to"] == json!([subnet[0]["id"], sg[0]["id"]])),
        "{body}"
    );
    // The reconciler's move is on the order's timeline and in the audit log.
    let (_, body) = controller
        .api("GET", &format!("/api/v1/orders/{order}"), &wang, None)
        .await;
    let last = body["history"]
        .as_array()
        .and_then(|h| h.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["actor"], "system:reconciler", "{last}");

    // A free temporary expansion (seed 003: at most 20 % over the approved
    // resources): 20 vCPU approved, so one more 4-vCPU web VM, not two.
    let exp = format!("/api/v1/systems/{system}/temporary-expansion");
    let (s, body) = controller
        .api(
            "PUT",
            &exp,
            &wang,
            Some(json!({"extra": {"web": 2}, "days": 7})),
        )
        .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (409, Some("EXPANSION_REFUSED")),
        "{body}"
    );
    assert_eq!(body["details"]["approved_vcpu"], 20, "{body}");
    let (s, body) = controller
        .api(
            "PUT",
            &exp,
            &wang,
            Some(json!({"extra": {"web": 1}, "days": 7})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["active"], true);
    assert!(
        running_count_reaches(&client, 6).await,
        "the expansion's VM runs"
    );
    // Ending it early removes the extra VM again.
    let (s, body) = controller
        .api("PUT", &exp, &wang, Some(json!({"extra": {}, "days": 1})))
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(
        running_count_reaches(&client, 5).await,
        "back to the approved quantity"
    );

    // Exit: every VM goes, the order reaches exited.
    let (s, body) = controller
        .api(
            "POST",
            "/api/v1/orders",
            &wang,
            Some(json!({"kind": "exit", "system": system})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let exit = body["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/orders/{exit}/transitions");
    assert_eq!(
        controller
            .api("POST", &path, &wang, Some(step("wang", "submitted")))
            .await
            .0,
        200
    );
    assert_eq!(
        controller
            .api("POST", &path, &sun, Some(step("sun", "accepted")))
            .await
            .0,
        200
    );
    assert_eq!(
        controller
            .api("POST", &path, &zhou, Some(step("zhou", "approved")))
            .await
            .0,
        200
    );
    let exited = eventually(Duration::from_secs(30), || {
        let controller = &controller;
        let (wang, exit) = (wang.clone(), exit.clone());
        async move {
            let (_, body) = controller
                .api("GET", &format!("/api/v1/orders/{exit}"), &wang, None)
                .await;
            body["state"] == "exited"
        }
    })
    .await;
    let left = list_vms_grpc(&mut client).await;
    assert!(exited, "exit not done; driver still has {} VMs", left.len());
    assert!(
        left.iter().all(|v| v.phase == v1::Phase::Deleted as i32),
        "{left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_in_the_driver_is_reported_and_left_alone() {
    let config = yunshu_reconciler::Config {
        resync_every: Duration::from_millis(300),
        ..Default::default()
    };
    let controller = Controller::start_with(Duration::from_secs(3600), config).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Sim::new(SimConfig::demo(), log.sink()).expect("simulator");
    let token = controller.token("sim").await;
    let driver =
        RunningDriver::start(Arc::new(sim), log, &controller.url, "sim", Some(token)).await;
    let mut client = driver.client(&controller, "sim").await;
    // Someone creates a VM on the provider's side, not through yunshu.
    let inventory = client
        .get_inventory(v1::GetInventoryRequest {})
        .await
        .expect("inventory")
        .into_inner();
    let host = inventory.hosts.first().expect("a host");
    let pool = inventory
        .pools
        .iter()
        .find(|p| p.id == host.pool)
        .expect("pool");
    client
        .apply(v1::ApplyRequest {
            kind: v1::ResourceKind::Vm as i32,
            id: "console-made-vm".into(),
            generation: 1,
            idempotency_key: "console-made-vm@1".into(),
            spec: Some(v1::ResourceSpec {
                spec: Some(v1::resource_spec::Spec::Vm(v1::VmSpec {
                    arch: pool.arch,
                    vcpu: 2,
                    memory_mib: 2048,
                    system_disk: Some(v1::Disk {
                        size_gib: 40,
                        storage_class: inventory
                            .storage_classes
                            .iter()
                            .find(|s| s.zone == pool.zone)
                            .expect("class")
                            .id
                            .clone(),
                    }),
                    image: "kylin-v10".into(),
                    ..Default::default()
                })),
            }),
            placement: Some(v1::Placement {
                zone: pool.zone.clone(),
                network_area: pool.network_area.clone(),
                pool: pool.id.clone(),
                host: host.id.clone(),
            }),
            tenant: "110105".into(),
        })
        .await
        .expect("apply behind yunshu's back");
    let zhou = controller
        .user_token(
            "zhou",
            None,
            json!({"name": "approver"}),
            json!({"type": "platform"}),
        )
        .await;
    let reported = eventually(Duration::from_secs(15), || {
        let controller = &controller;
        let zhou = zhou.clone();
        async move {
            let (_, body) = controller
                .api("GET", "/api/v1/alarms?category=capacity", &zhou, None)
                .await;
            body["items"].as_array().is_some_and(|a| {
                a.iter().any(|x| {
                    x["content"]
                        .as_str()
                        .is_some_and(|c| c.contains("console-made-vm"))
                })
            })
        }
    })
    .await;
    assert!(reported, "the orphan was not reported");
    let vms = list_vms_grpc(&mut client).await;
    assert!(
        vms.iter().any(|v| v.id == "console-made-vm"
            && v.phase != v1::Phase::Deleting as i32
            && v.phase != v1::Phase::Deleted as i32),
        "never deleted silently: {vms:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_that_fits_nowhere_waits_whole_with_a_reason() {
    let controller = Controller::start(Duration::from_secs(3600)).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    // The demo pools have 3 hosts each; four replicas of one group must go on
    // four different hosts (anti-affinity).
    let sim = Sim::new(SimConfig::demo(), log.sink()).expect("simulator");
    let token = controller.token("sim").await;
    let driver =
        RunningDriver::start(Arc::new(sim), log, &controller.url, "sim", Some(token)).await;
    let mut client = driver.client(&controller, "sim").await;
    let people = People::create(&controller.url, &controller.admin_token).await;
    let (_, order) = people
        .accepted_order(
            &controller.url,
            "大数据平台",
            "sim",
            vec![line("node", 4), line("web", 1)],
        )
        .await;
    let (s, body) = controller
        .api(
            "POST",
            &format!("/api/v1/orders/{order}/transitions"),
            &people.zhou,
            Some(json!({"to": "approved"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let waiting = eventually(Duration::from_secs(15), || {
        let controller = &controller;
        let (wang, order) = (people.wang.clone(), order.clone());
        async move {
            let (_, body) = controller
                .api("GET", &format!("/api/v1/orders/{order}"), &wang, None)
                .await;
            body["unschedulable"]["reason"].is_string()
        }
    })
    .await;
    let (_, view) = controller
        .api(
            "GET",
            &format!("/api/v1/orders/{order}"),
            &people.wang,
            None,
        )
        .await;
    assert!(waiting, "no reason on the order: {view}");
    assert_eq!(view["state"], "approved", "{view}");
    assert!(
        view["unschedulable"]["reason_zh"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{view}"
    );
    // Nothing of the order was created, not even the group that would fit.
    assert!(list_vms_grpc(&mut client).await.is_empty());
}

/// Regression (issue 14): one approved order that fits nowhere used to hold
/// every later order of the same system at `approved` forever, with the
/// reason shown on the first order only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_that_fits_nowhere_does_not_hold_up_the_next_order_of_its_system() {
    let controller = Controller::start(Duration::from_secs(3600)).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Sim::new(SimConfig::demo(), log.sink()).expect("simulator");
    let token = controller.token("sim").await;
    let driver =
        RunningDriver::start(Arc::new(sim), log, &controller.url, "sim", Some(token)).await;
    let mut client = driver.client(&controller, "sim").await;
    let people = People::create(&controller.url, &controller.admin_token).await;
    // Four replicas of one group on pools of three hosts: fits nowhere.
    let (system, stuck) = people
        .accepted_order(&controller.url, "大数据平台", "sim", vec![line("node", 4)])
        .await;
    people.approve(&controller.url, &stuck).await;
    // A second order of the same system, approved after the first waits.
    let (s, body) = controller
        .api(
            "POST",
            "/api/v1/orders",
            &people.wang,
            Some(
                json!({"kind": "onboarding", "system": system, "provider": "sim",
                "lines": [line("web", 1)]}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let next = body["id"].as_str().expect("id").to_owned();
    for (who, to) in [(&people.wang, "submitted"), (&people.sun, "accepted")] {
        let (s, body) = controller
            .api(
                "POST",
                &format!("/api/v1/orders/{next}/transitions"),
                who,
                Some(json!({"to": to})),
            )
            .await;
        assert_eq!(s, 200, "{to}: {body}");
    }
    people.approve(&controller.url, &next).await;

    let ready = eventually(Duration::from_secs(30), || {
        let (people, url, next) = (&people, controller.url.clone(), next.clone());
        async move { people.order_state(&url, &next).await.as_deref() == Some("test_env_ready") }
    })
    .await;
    let view = |order: String| {
        let (controller, wang) = (&controller, people.wang.clone());
        async move {
            controller
                .api("GET", &format!("/api/v1/orders/{order}"), &wang, None)
                .await
                .1
        }
    };
    let next_view = view(next.clone()).await;
    assert!(ready, "the second order never got its VM: {next_view}");
    assert!(next_view["unschedulable"].is_null(), "{next_view}");
    // The first order still waits, whole, with its own reason.
    let stuck_view = view(stuck.clone()).await;
    assert_eq!(stuck_view["state"], "approved", "{stuck_view}");
    assert!(
        stuck_view["unschedulable"]["reason_zh"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{stuck_view}"
    );
    let vms = list_vms_grpc(&mut client).await;
    assert_eq!(vms.len(), 1, "only the second order's VM: {vms:?}");
}

/// The state of every VM in `system` as the tenant sees it: (id, phase); its
/// network resources are left out.
async fn phases(controller: &Controller, bearer: &str, system: &str) -> Vec<(String, String)> {
    let (_, body) = controller
        .api(
            "GET",
            &format!("/api/v1/systems/{system}/resources"),
            bearer,
            None,
        )
        .await;
    body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|r| r["kind"] == "vm")
                .map(|r| {
                    (
                        r["id"].as_str().unwrap_or_default().to_owned(),
                        r["phase"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_on_the_driver_watch_stream_is_seen_and_corrected_without_a_resync() {
    // No periodic resync within the test: only the watch stream can explain
    // what the controller learns.
    let config = yunshu_reconciler::Config {
        resync_every: Duration::from_secs(3600),
        inventory_every: Duration::from_secs(3600),
        ..Default::default()
    };
    let controller = Controller::start_with(Duration::from_secs(3600), config).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Sim::new(SimConfig::demo(), log.sink()).expect("simulator");
    let provider_console = sim.clone();
    let token = controller.token("sim").await;
    let driver =
        RunningDriver::start(Arc::new(sim), log, &controller.url, "sim", Some(token)).await;
    let mut client = driver.client(&controller, "sim").await;
    let people = People::create(&controller.url, &controller.admin_token).await;
    let (system, order) = people
        .accepted_order(
            &controller.url,
            "公积金管理系统",
            "sim",
            vec![yunshu_e2e::small_vm_line("app", 2)],
        )
        .await;
    people.approve(&controller.url, &order).await;
    let ready = eventually(Duration::from_secs(30), || {
        let (people, url, order) = (&people, &controller.url, order.clone());
        async move { people.order_state(url, &order).await.as_deref() == Some("test_env_ready") }
    })
    .await;
    assert!(ready, "order not ready");
    let vms = list_vms_grpc(&mut client).await;
    assert_eq!(vms.len(), 2, "{vms:?}");

    // Someone deletes a VM on the provider's console: the controller hears it
    // on the stream and creates it again under the same id.
    let victim = vms[0].id.clone();
    client
        .delete(v1::DeleteRequest {
            kind: v1::ResourceKind::Vm as i32,
            id: victim.clone(),
        })
        .await
        .expect("delete behind yunshu's back");
    let gone = eventually(Duration::from_secs(5), || {
        let mut client = client.clone();
        let victim = victim.clone();
        async move {
            !list_vms_grpc(&mut client)
                .await
                .iter()
                .any(|v| v.id == victim && v.phase == v1::Phase::Running as i32)
        }
    })
    .await;
    assert!(gone, "the console delete never took effect");
    let back = eventually(Duration::from_secs(10), || {
        let mut client = client.clone();
        let victim = victim.clone();
        async move {
            let vms = list_vms_grpc(&mut client).await;
            vms.len() == 2
                && vms.iter().all(|v| v.phase == v1::Phase::Running as i32)
                && vms.iter().any(|v| v.id == victim)
        }
    })
    .await;
    assert!(
        back,
        "the deleted VM was not re-created: {:?}",
        list_vms_grpc(&mut client).await
    );

    // A host goes down on the provider's side: its VM shows stopped to the
    // tenant, and running again once the host is back.
    let other = vms[1].clone();
    let host = other.placement.as_ref().expect("placement").host.clone();
    provider_console
        .set_host_state(&host, v1::HostState::Down)
        .expect("host down");
    let stopped = eventually(Duration::from_secs(10), || {
        let (controller, wang, system, id) = (&controller, &people.wang, &system, &other.id);
        async move {
            phases(controller, wang, system)
                .await
                .iter()
                .any(|(i, p)| i == id && p == "stopped")
        }
    })
    .await;
    assert!(
        stopped,
        "the stop was not observed: {:?}",
        phases(&controller, &people.wang, &system).await
    );
    provider_console
        .set_host_state(&host, v1::HostState::Up)
        .expect("host up");
    let running = eventually(Duration::from_secs(10), || {
        let (controller, wang, system) = (&controller, &people.wang, &system);
        async move {
            let p = phases(controller, wang, system).await;
            p.len() == 2 && p.iter().all(|(_, p)| p == "running")
        }
    })
    .await;
    assert!(
        running,
        "the restart was not observed: {:?}",
        phases(&controller, &people.wang, &system).await
    );
}
