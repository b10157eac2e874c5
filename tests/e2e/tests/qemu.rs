//! The QEMU driver behind a real controller: it registers with a bootstrap
//! token, serves the protocol over mutual TLS, a VM applied through gRPC
//! boots a real guest (TCG) and is deleted with its process. An approved
//! order on provider qemu becomes real: the system's VPC (a namespace), its
//! subnet and default security group, and a VM whose guest boots and answers
//! HTTP inside the VPC; the order turns `test_env_ready` only then. An order
//! needing a kind the driver lacks (a bare-metal server) is refused at
//! approval with that kind, never left waiting.

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
            c86: None,
            arm64: None,
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
    for k in [
        v1::ResourceKind::Vpc,
        v1::ResourceKind::Subnet,
        v1::ResourceKind::SecurityGroup,
        v1::ResourceKind::Vm,
    ] {
        assert!(info.kinds.contains(&(k as i32)), "{k:?}");
    }
    assert!(!info.kinds.contains(&(v1::ResourceKind::BareMetal as i32)));
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

    // The controller's health check records what the driver offers; until
    // then nothing is approved or refused on a guess.
    c.wait_driver_healthy("qemu").await;

    // An order needing a bare-metal server: refused at approval, naming it.
    let (_, lb_order) = people
        .accepted_order_with(
            &c.url,
            "QEMU 裸金属试点",
            "qemu",
            json!({
                "lines": [yunshu_e2e::small_vm_line("app", 1),
                    yunshu_e2e::three_tier::server_line("bm", 1, "bare_metal", "arm64")]
            }),
        )
        .await;
    let (s, refusal) = c
        .api(
            "POST",
            &format!("/api/v1/orders/{lb_order}/transitions"),
            &people.zhou,
            Some(json!({"to": "approved"})),
        )
        .await;
    assert_eq!(s, 409, "{refusal}");
    assert_eq!(refusal["code"], "PROVIDER_KINDS_UNSUPPORTED", "{refusal}");
    let kinds = refusal["details"]["kinds"].to_string();
    assert!(kinds.contains("bare_metal"), "{refusal}");
    assert!(
        !kinds.contains("vpc") && !kinds.contains("\"vm\""),
        "{refusal}"
    );

    // An order for one VM: approved, built for real, ready only when the
    // guest has booted.
    let (system, order) = people
        .accepted_order(
            &c.url,
            "QEMU 试点系统",
            "qemu",
            vec![yunshu_e2e::small_vm_line("app", 1)],
        )
        .await;
    people.approve(&c.url, &order).await;
    let started = Instant::now();
    loop {
        let state = people.order_state(&c.url, &order).await;
        if state.as_deref() == Some("test_env_ready") {
            break;
        }
        if started.elapsed() > Duration::from_secs(240) {
            let (_, list) = c
                .api(
                    "GET",
                    &format!("/api/v1/systems/{system}/resources"),
                    &people.wang,
                    None,
                )
                .await;
            let (_, o) = c
                .api(
                    "GET",
                    &format!("/api/v1/orders/{order}"),
                    &people.wang,
                    None,
                )
                .await;
            panic!("order still {state:?}: {list}\n{o}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (s, list) = c
        .api(
            "GET",
            &format!("/api/v1/systems/{system}/resources"),
            &people.wang,
            None,
        )
        .await;
    assert_eq!(s, 200, "{list}");
    let items = list["items"].as_array().expect("items");
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        items.iter().filter(|r| r["kind"] == kind).collect()
    };
    let (vpcs, vms) = (of("vpc"), of("vm"));
    assert_eq!(
        (vpcs.len(), of("subnet").len(), vms.len()),
        (1, 1, 1),
        "{list}"
    );
    assert!(!of("security_group").is_empty(), "{list}");
    for r in items {
        assert_eq!(r["phase"], "running", "{r}");
    }
    let vpc_id = vpcs[0]["id"].as_str().expect("vpc id").to_owned();
    let _nets = yunshu_qemu::net::DeleteOnDrop(vec![vpc_id.clone()]);
    let ns = yunshu_qemu::net::namespace(&vpc_id);
    assert_eq!(vpcs[0]["outputs"]["namespace"], ns.as_str());
    let ip = vms[0]["outputs"]["private_ip"]
        .as_str()
        .expect("private_ip")
        .to_owned();
    let vm_id = vms[0]["id"].as_str().expect("vm id");
    // The guest answers inside its VPC (the default group lets the VPC in).
    let mut page = None;
    for _ in 0..20 {
        let out = tokio::process::Command::new("ip")
            .args(["netns", "exec", &ns, "curl", "-s", "--max-time", "2"])
            .arg(format!("http://{ip}/"))
            .output()
            .await
            .expect("curl");
        if out.status.success() {
            page = Some(String::from_utf8_lossy(&out.stdout).trim().to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(page.as_deref(), Some(vm_id), "the guest's page");
}
