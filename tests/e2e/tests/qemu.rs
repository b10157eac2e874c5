//! The QEMU driver (issue 15, first part) behind a real controller: it
//! registers with a bootstrap token, serves the protocol over mutual TLS, a
//! VM applied through gRPC boots a real guest (TCG) and is deleted with its
//! process; and since it offers VMs only, an order that needs the system
//! network (VPC, subnet, security group) is refused at approval with the
//! kinds it lacks, never left waiting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, People, RunningDriver};
use yunshu_proto::v1;
use yunshu_qemu::driver::{QemuConfig, QemuDriver};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::vm::{Accel, is_qemu};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qemu_driver_boots_a_vm_over_mtls_and_orders_it_cannot_build_are_refused() {
    let image = guest::build(&guest::default_cache_dir(), GuestArch::X86_64)
        .await
        .expect("guest image");
    let state = tempfile::tempdir().expect("tempdir");
    let _reaper = yunshu_qemu::vm::ReapOnDrop(state.path().join("vms"));
    let c = Controller::start(Duration::from_secs(3600)).await;
    let people = People::create(&c.url, &c.admin_token).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let qemu = QemuDriver::open(
        QemuConfig {
            state_dir: state.path().to_path_buf(),
            image,
            accel: Accel::Tcg,
            reserved_memory_mib: 1024,
        },
        log.sink(),
    )
    .await
    .expect("open");
    let token = c.token("qemu").await;
    let driver = RunningDriver::start(Arc::new(qemu), log, &c.url, "qemu", Some(token)).await;

    // Over gRPC with the controller's client certificate.
    let mut client = driver.client(&c, "qemu").await;
    let info = client
        .get_info(v1::GetInfoRequest {})
        .await
        .expect("GetInfo")
        .into_inner();
    assert_eq!(info.name, "yunshu-qemu");
    assert_eq!(info.provider, "qemu");
    assert!(!info.simulator, "a real driver");
    assert_eq!(info.kinds, vec![v1::ResourceKind::Vm as i32]);
    let apply = v1::ApplyRequest {
        kind: v1::ResourceKind::Vm as i32,
        id: "vm-qemu-e2e-1".to_owned(),
        generation: 1,
        idempotency_key: "vm-qemu-e2e-1@1".to_owned(),
        spec: Some(v1::ResourceSpec {
            spec: Some(v1::resource_spec::Spec::Vm(v1::VmSpec {
                arch: v1::Architecture::X8664 as i32,
                vcpu: 1,
                memory_mib: 256,
                image: "yunshu-tiny".to_owned(),
                ..Default::default()
            })),
        }),
        tenant: "110105".to_owned(),
        ..Default::default()
    };
    client.apply(apply).await.expect("Apply");
    let started = Instant::now();
    let up = loop {
        let s = client
            .get(v1::GetRequest {
                kind: v1::ResourceKind::Vm as i32,
                id: "vm-qemu-e2e-1".to_owned(),
            })
            .await
            .expect("Get")
            .into_inner();
        if s.phase == v1::Phase::Running as i32 {
            break s;
        }
        assert_ne!(s.phase, v1::Phase::Failed as i32, "{}", s.message);
        assert!(started.elapsed() < Duration::from_secs(180), "{s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(up.outputs["accelerator"], "tcg");
    let pid: u32 = up.outputs["pid"].parse().expect("pid");
    let serial = std::fs::read_to_string(state.path().join("vms/vm-qemu-e2e-1/serial.log"))
        .expect("console");
    assert!(serial.contains(guest::MARKER), "{serial}");
    let deleted = client
        .delete(v1::DeleteRequest {
            kind: v1::ResourceKind::Vm as i32,
            id: "vm-qemu-e2e-1".to_owned(),
        })
        .await
        .expect("Delete")
        .into_inner();
    assert!(deleted.existed);
    assert!(!is_qemu(pid), "no QEMU left");

    // The controller's health check records what the driver offers; an
    // order on provider qemu that needs the system network is refused at
    // approval, naming the kinds.
    let system = c.create_system(&people.wang, "QEMU 试点系统").await;
    let body = json!({
        "kind": "onboarding", "system": system, "provider": "qemu",
        "lines": [yunshu_e2e::three_tier::server_line("app", 1, "vm", "x86_64")]
    });
    let (s, created) = c
        .api("POST", "/api/v1/orders", &people.wang, Some(body))
        .await;
    assert_eq!(s, 201, "{created}");
    let order = created["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/orders/{order}/transitions");
    for (who, to) in [(&people.wang, "submitted"), (&people.sun, "accepted")] {
        let (s, body) = c.api("POST", &path, who, Some(json!({"to": to}))).await;
        assert_eq!(s, 200, "{to}: {body}");
    }
    // The offer is recorded with the health the check writes: wait for it
    // (until then nothing is refused on a guess).
    let started = Instant::now();
    loop {
        let (_, body) = c
            .api("GET", "/api/v1/admin/drivers", &c.admin_token, None)
            .await;
        let healthy = body.as_array().is_some_and(|l| {
            l.iter()
                .any(|d| d["provider"] == "qemu" && d["health"].to_string().contains("healthy"))
        });
        if healthy {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, refusal) = c
        .api("POST", &path, &people.zhou, Some(json!({"to": "approved"})))
        .await;
    assert_eq!(s, 409, "{refusal}");
    assert_eq!(refusal["code"], "PROVIDER_KINDS_UNSUPPORTED", "{refusal}");
    let kinds = refusal["details"]["kinds"].to_string();
    for k in ["vpc", "subnet", "security_group"] {
        assert!(kinds.contains(k), "{k} missing: {refusal}");
    }
}
