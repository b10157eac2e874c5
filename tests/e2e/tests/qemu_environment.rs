//! A whole environment on real infrastructure, through the controller: one
//! approved order on provider `qemu` for an x86_64 web VM with a public IP,
//! an x86_64 database VM with a data volume and a backup policy, and an
//! arm64 application VM, all in one VPC.
//!
//! Two web VMs behind a balancer cannot come from one order here: a line is
//! an anti-affinity group and this driver is one host, so the controller
//! (rightly) refuses to put two members on it. The balancer's rotation and
//! health checks are proven against the driver in
//! `providers/qemu/tests/edge_driver.rs`.
//!
//! - The order turns `test_env_ready` only when every guest has booted
//!   (serial markers) and everything else runs.
//! - HTTP to the public IP, from the driver's "internet" namespace, reaches
//!   the web guest.
//! - Another tenant's VPC with the same CIDR cannot reach the web guests.
//! - The policy's first backup exists; a volume restored from it (through
//!   the driver protocol: the controller has no restore request yet) equals
//!   it byte for byte.
//! - The exit order deletes everything: no QEMU process, HAProxy, disk
//!   image, namespace (and with them no bridge, tap or nftables rule) left.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, People, RunningDriver};
use yunshu_proto::v1;
use yunshu_qemu::driver::{Arm64Pool, QemuConfig, QemuDriver};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::vm::{Accel, ReapOnDrop};
use yunshu_qemu::{lb, net};

fn line(name: &str, quantity: u32, arch: &str) -> Value {
    json!({
        "server": {
            "server_name": name, "network_area": "gov_extranet", "form": "vm",
            "architecture": arch, "vcpu": 1, "memory_gib": 1, "system_disk_gib": 20,
            "data_disk_gib": 0, "os": "麒麟 V10", "purpose": "应用服务器", "backup_gib": 0
        },
        "quantity": quantity
    })
}

async fn approved(c: &Controller, people: &People, body: Value) -> String {
    let (s, created) = c
        .api("POST", "/api/v1/orders", &people.wang, Some(body))
        .await;
    assert_eq!(s, 201, "{created}");
    let order = created["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/orders/{order}/transitions");
    for (who, to) in [
        (&people.wang, "submitted"),
        (&people.sun, "accepted"),
        (&people.zhou, "approved"),
    ] {
        let (s, body) = c
            .api("POST", &path, who, Some(json!({"to": to, "reason": "e2e"})))
            .await;
        assert_eq!(s, 200, "{to}: {body}");
    }
    order
}

async fn wait_state(c: &Controller, people: &People, order: &str, want: &str, system: &str) {
    let started = Instant::now();
    loop {
        let (_, o) = c
            .api(
                "GET",
                &format!("/api/v1/orders/{order}"),
                &people.wang,
                None,
            )
            .await;
        if o["state"] == want {
            return;
        }
        if started.elapsed() > Duration::from_secs(300) {
            let (_, list) = c
                .api(
                    "GET",
                    &format!("/api/v1/systems/{system}/resources"),
                    &people.wang,
                    None,
                )
                .await;
            panic!("order {order} not {want}: {o}\n{list}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn fetch(ns: &str, url: &str) -> Option<String> {
    let out = tokio::process::Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-s", "--max-time", "2", url])
        .output()
        .await
        .expect("curl");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

async fn answers(ns: &str, url: &str, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let started = Instant::now();
    while seen.len() < n {
        match fetch(ns, url).await {
            Some(p) => seen.push(p),
            None => {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "{url}: {seen:?}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    seen
}

fn processes_naming(path: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        if stat.split_whitespace().nth(2) == Some("Z") {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(path) {
            found.push(cmdline);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_becomes_a_real_environment_on_qemu_and_its_exit_leaves_nothing() {
    let cache = guest::default_cache_dir();
    let x86 = guest::build(&cache, GuestArch::X86_64)
        .await
        .expect("x86_64 guest");
    let arm = guest::build(&cache, GuestArch::Arm64)
        .await
        .expect("arm64 guest");
    let state = tempfile::tempdir().expect("tempdir");
    let state_path = state.path().display().to_string();
    let _reaper = ReapOnDrop(state.path().join("vms"));
    let _balancers = lb::StopOnDrop(state.path().join("lbs"));
    let public = net::public_namespace(&state_path);
    let c = Controller::start(Duration::from_secs(3600)).await;
    let people = People::create(&c.url, &c.admin_token).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let qemu = QemuDriver::open(
        QemuConfig {
            state_dir: state.path().to_path_buf(),
            image: x86,
            accel: Accel::Tcg,
            reserved_memory_mib: 1024,
            arm64: Some(Arm64Pool {
                image: arm,
                cores: 1,
                memory_mib: 2048,
            }),
        },
        log.sink(),
    )
    .await
    .expect("open");
    let token = c.token("qemu").await;
    let driver = RunningDriver::start(Arc::new(qemu), log, &c.url, "qemu", Some(token)).await;
    c.wait_driver_healthy("qemu").await;

    let system = c.create_system(&people.wang, "QEMU 政务门户").await;
    let order = approved(
        &c,
        &people,
        json!({
            "kind": "onboarding", "system": system, "provider": "qemu",
            "lines": [line("web", 1, "x86_64"), line("db", 1, "x86_64"), line("app", 1, "arm64")],
            "network": {"vpc_cidr": "10.30.0.0/16", "subnets": [
                {"network_area": "gov_extranet", "cidr": "10.30.1.0/24"}]},
            "security_groups": [{"name": "web", "servers": ["web"], "rules": [
                {"protocol": "tcp", "ports": {"from": 80, "to": 80}, "remote": {"cidr": "0.0.0.0/0"}}]}],
            "public_ips": [{"purpose": "门户访问", "server_name": "web", "ports": [80], "bandwidth_mbps": 20}],
            "volumes": [{"name": "db-data", "server_name": "db", "size_gib": 20, "tier": "standard"}],
            "backup_policies": [{"name": "db-nightly", "target": "db", "backup_type": "full",
                "window": {"every": "daily", "hour": 2}, "retention_days": 7, "capacity_gib": 20}]
        }),
    )
    .await;
    wait_state(&c, &people, &order, "test_env_ready", &system).await;
    let (_, list) = c
        .api(
            "GET",
            &format!("/api/v1/systems/{system}/resources"),
            &people.wang,
            None,
        )
        .await;
    let items = list["items"].as_array().expect("items").clone();
    let of = |kind: &str| -> Vec<Value> {
        items
            .iter()
            .filter(|r| r["kind"] == kind)
            .cloned()
            .collect()
    };
    for r in &items {
        assert_eq!(r["phase"], "running", "{r}");
    }
    let vms = of("vm");
    assert_eq!(vms.len(), 3, "{list}");
    let arm_vms: Vec<&Value> = vms.iter().filter(|v| v["pool"] == "local-arm64").collect();
    assert_eq!(arm_vms.len(), 1, "one arm64 guest: {list}");
    // The web VM is the one the public IP is bound to.
    let bound = items
        .iter()
        .find_map(|r| r["outputs"]["bound_to"].as_str())
        .expect("a bound public IP")
        .to_owned();
    let web: Vec<(String, String)> = vms
        .iter()
        .filter(|v| v["id"] == bound.as_str())
        .map(|v| {
            (
                v["id"].as_str().unwrap_or_default().to_owned(),
                v["outputs"]["private_ip"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(web.len(), 1, "{list}");
    let vpc = of("vpc")[0]["id"].as_str().expect("vpc").to_owned();
    let _nets = net::DeleteOnDrop(vec![vpc.clone()]);
    let public_ip = items
        .iter()
        .find_map(|r| r["outputs"]["public_ip"].as_str())
        .expect("a public IP")
        .to_owned();

    // The internet side: the web guest through the public IP.
    let url = format!("http://{public_ip}/");
    assert_eq!(answers(&public, &url, 2).await, vec![web[0].0.clone(); 2]);

    // Another tenant's VPC with the same CIDR: the web guests are not there.
    let mut grpc = driver.client(&c, "qemu").await;
    let other_vpc = format!("vpc-other-{}", std::process::id());
    let _other = net::DeleteOnDrop(vec![other_vpc.clone()]);
    let apply =
        |kind: v1::ResourceKind, id: &str, spec: v1::resource_spec::Spec| v1::ApplyRequest {
            kind: kind as i32,
            id: id.to_owned(),
            generation: 1,
            idempotency_key: format!("{id}@1"),
            spec: Some(v1::ResourceSpec { spec: Some(spec) }),
            tenant: "110199".to_owned(),
            ..Default::default()
        };
    grpc.apply(apply(
        v1::ResourceKind::Vpc,
        &other_vpc,
        v1::resource_spec::Spec::Vpc(v1::VpcSpec {
            cidr: "10.30.0.0/16".to_owned(),
        }),
    ))
    .await
    .expect("other tenant's VPC");
    for (_, ip) in &web {
        assert_eq!(
            fetch(&net::namespace(&other_vpc), &format!("http://{ip}/")).await,
            None,
            "{ip} answered in another tenant's VPC"
        );
    }
    grpc.delete(v1::DeleteRequest {
        kind: v1::ResourceKind::Vpc as i32,
        id: other_vpc.clone(),
    })
    .await
    .expect("delete the other VPC");

    // The backup policy's first backup, and a volume restored from it.
    let policy = of("backup_policy")[0]["id"]
        .as_str()
        .expect("policy")
        .to_owned();
    let backups: Vec<_> = std::fs::read_dir(state.path().join("backups").join(&policy))
        .expect("backups dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let restored_id = format!("vol-restored-{}", std::process::id());
    grpc.apply(apply(
        v1::ResourceKind::Volume,
        &restored_id,
        v1::resource_spec::Spec::Volume(v1::VolumeSpec {
            size_gib: 20,
            storage_class: "local-standard".to_owned(),
            attach_to: String::new(),
            restore_from: policy.clone(),
        }),
    ))
    .await
    .expect("restore");
    let compare = std::process::Command::new("qemu-img")
        .args(["compare", "-f", "qcow2", "-F", "qcow2"])
        .arg(&backups[0])
        .arg(
            state
                .path()
                .join("volumes")
                .join(format!("{restored_id}.qcow2")),
        )
        .output()
        .expect("qemu-img compare");
    assert!(
        compare.status.success(),
        "restored ≠ backup: {}",
        String::from_utf8_lossy(&compare.stdout)
    );
    grpc.delete(v1::DeleteRequest {
        kind: v1::ResourceKind::Volume as i32,
        id: restored_id,
    })
    .await
    .expect("delete the restored volume");

    // Delivered, then the system exits: nothing is left.
    let (s, body) = c
        .api(
            "POST",
            &format!("/api/v1/orders/{order}/transitions"),
            &people.wang,
            Some(json!({"to": "delivered"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let exit = approved(
        &c,
        &people,
        json!({"kind": "exit", "system": system, "note": "系统下线"}),
    )
    .await;
    wait_state(&c, &people, &exit, "exited", &system).await;
    let started = Instant::now();
    while !processes_naming(&state_path).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "processes left: {:?}",
            processes_naming(&state_path)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let namespaces = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns");
    let namespaces = String::from_utf8_lossy(&namespaces.stdout);
    assert!(!namespaces.contains(&net::namespace(&vpc)), "{namespaces}");
    assert!(!namespaces.contains(&public), "{namespaces}");
    for dir in ["vms", "volumes", "snapshots", "backups", "lbs"] {
        let left: Vec<_> = std::fs::read_dir(state.path().join(dir))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
}
