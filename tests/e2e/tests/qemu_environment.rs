//! A whole environment on real infrastructure, through the controller
//! (issue 15's acceptance): one approved order on provider `qemu` for two
//! x86_64 web VMs behind a load balancer with a public IP, an x86_64
//! database VM with a data volume, and an arm64 application VM, all in one
//! VPC.
//!
//! The web line asks for soft anti-affinity (尽量分散): this driver is one
//! host, so its two members share it rather than wait for a second host.
//!
//! - The order turns `test_env_ready` only when every guest has booted
//!   (serial markers) and everything else runs.
//! - HTTP to the public IP, from the driver's "internet" namespace, reaches
//!   both web guests in turn (weighted round robin); a paused web guest
//!   fails its health checks and leaves the rotation, and comes back.
//! - Another tenant's VPC with the same CIDR cannot reach the web guests.
//! - Data written to the database volume (by QEMU's own block layer, as the
//!   guest would) is in the backup a change order's backup policy takes,
//!   and a second change order restores it into a new volume of the
//!   database VM that holds the same bytes.
//! - `GetMetrics` over the driver protocol counts each guest's CPU time and
//!   memory, the web guests' traffic and the database guest's disk reads.
//! - The exit order deletes everything: no QEMU, HAProxy or dnsmasq
//!   process, disk image, namespace (and with them no bridge, tap or
//!   nftables rule) left.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, People, RunningDriver};
use yunshu_proto::v1;
use yunshu_qemu::driver::{Arm64Pool, QemuConfig, QemuDriver};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::vm::{Accel, ReapOnDrop, Vm};
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
            c86: None,
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
    let mut web_line = line("web", 2, "x86_64");
    web_line["server"]["anti_affinity"] = json!("soft");
    let order = approved(
        &c,
        &people,
        json!({
            "kind": "onboarding", "system": system, "provider": "qemu",
            "lines": [web_line, line("db", 1, "x86_64"), line("app", 1, "arm64")],
            "network": {"vpc_cidr": "10.30.0.0/16", "subnets": [
                {"network_area": "gov_extranet", "cidr": "10.30.1.0/24"},
                {"network_area": "internet", "cidr": "10.30.2.0/24"}]},
            "security_groups": [{"name": "web", "servers": ["web"], "rules": [
                {"protocol": "tcp", "ports": {"from": 80, "to": 80}, "remote": {"cidr": "0.0.0.0/0"}}]}],
            "load_balancers": [{"name": "web-lb", "network_area": "internet", "members": "web",
                "listeners": [{"protocol": "http", "port": 80, "backend_port": 80,
                    "algorithm": "weighted_round_robin",
                    "health_check": {"protocol": "http", "path": "/", "interval_seconds": 2,
                        "timeout_seconds": 1, "healthy_threshold": 1, "unhealthy_threshold": 2}}]}],
            "public_ips": [{"purpose": "门户访问", "server_name": "web-lb", "ports": [80], "bandwidth_mbps": 20}],
            "volumes": [{"name": "db-data", "server_name": "db", "size_gib": 20, "tier": "standard"}]
        }),
    )
    .await;
    wait_state(&c, &people, &order, "test_env_ready", &system).await;
    let items = resources(&c, &people, &system).await;
    let of = |items: &[Value], kind: &str| -> Vec<Value> {
        items
            .iter()
            .filter(|r| r["kind"] == kind)
            .cloned()
            .collect()
    };
    for r in &items {
        assert_eq!(r["phase"], "running", "{r}");
    }
    let vms = of(&items, "vm");
    assert_eq!(vms.len(), 4, "{items:?}");
    let arm_vms: Vec<&Value> = vms.iter().filter(|v| v["pool"] == "local-arm64").collect();
    assert_eq!(arm_vms.len(), 1, "one arm64 guest: {items:?}");
    // The web VMs are the balancer's members; the public IP is the balancer's.
    let balancer = of(&items, "load_balancer");
    assert_eq!(balancer.len(), 1, "{items:?}");
    let mut web: Vec<String> = vms
        .iter()
        .filter_map(|v| v["id"].as_str())
        .filter(|id| {
            balancer[0]["connects_to"]
                .as_array()
                .is_some_and(|c| c.iter().any(|m| m == id))
        })
        .map(str::to_owned)
        .collect();
    web.sort();
    assert_eq!(web.len(), 2, "{balancer:?}");
    let web_ips: Vec<String> = vms
        .iter()
        .filter(|v| web.iter().any(|w| v["id"] == w.as_str()))
        .map(|v| {
            v["outputs"]["private_ip"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let vpc = of(&items, "vpc")[0]["id"].as_str().expect("vpc").to_owned();
    let _nets = net::DeleteOnDrop(vec![vpc.clone()]);
    let public_ip = items
        .iter()
        .find_map(|r| r["outputs"]["public_ip"].as_str())
        .expect("a public IP")
        .to_owned();

    // The internet side: both web guests in turn through the public IP.
    let url = format!("http://{public_ip}/");
    let mut seen = answers(&public, &url, 4).await;
    seen.sort();
    seen.dedup();
    assert_eq!(seen, web, "round robin over both web guests");
    // A paused web guest fails its health checks and leaves the rotation.
    let paused = Vm::adopt(&state.path().join("vms").join(&web[0])).expect("web VM runs");
    let mut qmp = paused.qmp().await.expect("qmp");
    qmp.execute("stop", None).await.expect("stop");
    let left = Instant::now();
    loop {
        let got = answers(&public, &url, 4).await;
        if got.iter().all(|g| *g == web[1]) {
            break;
        }
        assert!(left.elapsed() < Duration::from_secs(30), "{got:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    qmp.execute("cont", None).await.expect("cont");
    drop(qmp);

    // Another tenant's VPC with the same CIDR: the web guests are not there.
    let mut grpc = driver.client(&c, "qemu").await;
    let other_vpc = format!("vpc-other-{}", std::process::id());
    let _other = net::DeleteOnDrop(vec![other_vpc.clone()]);
    grpc.apply(v1::ApplyRequest {
        kind: v1::ResourceKind::Vpc as i32,
        id: other_vpc.clone(),
        generation: 1,
        idempotency_key: format!("{other_vpc}@1"),
        spec: Some(v1::ResourceSpec {
            spec: Some(v1::resource_spec::Spec::Vpc(v1::VpcSpec {
                cidr: "10.30.0.0/16".to_owned(),
            })),
        }),
        tenant: "110199".to_owned(),
        ..Default::default()
    })
    .await
    .expect("other tenant's VPC");
    for ip in &web_ips {
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

    // Data on the database volume, written through QEMU's block layer while
    // the guest runs (what a write inside the guest ends up as).
    let data = of(&items, "volume")[0].clone();
    let db_vm = data["outputs"]["attached_to"]
        .as_str()
        .expect("attached")
        .to_owned();
    let db = Vm::adopt(&state.path().join("vms").join(&db_vm)).expect("db VM runs");
    let drive = |volume: &Value| {
        volume["outputs"]["device"]
            .as_str()
            .and_then(|d| d.rsplit("virtio-").next())
            .expect("device")
            .to_owned()
    };
    hmp_qemu_io(&db, &drive(&data), "write -P 0x5a 0 1M").await;

    // A change order adds a nightly full backup of it: its first copy is
    // taken when the policy is applied.
    let backup = approved(
        &c,
        &people,
        json!({"kind": "change", "system": system, "note": "数据库卷备份",
            "backup_policies": [{"name": "db-nightly", "target": "db-data", "backup_type": "full",
                "window": {"every": "daily", "hour": 2}, "retention_days": 7, "capacity_gib": 20}]}),
    )
    .await;
    let policy = wait_running(&c, &people, &system, "backup_policy", 1).await[0]["id"]
        .as_str()
        .expect("policy")
        .to_owned();
    let copies: Vec<_> = std::fs::read_dir(state.path().join("backups").join(&policy))
        .expect("backups dir")
        .flatten()
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_holds_pattern(&copies[0].path());

    // Another change order restores it into a new volume of the database VM.
    let restore = approved(
        &c,
        &people,
        json!({"kind": "change", "system": system, "note": "从备份恢复",
            "volumes": [{"name": "db-restored", "server_name": "db", "size_gib": 20,
                "tier": "standard", "restore_from": "db-nightly"}]}),
    )
    .await;
    let volumes = wait_running(&c, &people, &system, "volume", 2).await;
    let restored = volumes
        .iter()
        .find(|v| v["outputs"]["restored_from"] == policy.as_str())
        .expect("a restored volume")
        .clone();
    assert_eq!(restored["outputs"]["attached_to"], db_vm.as_str());
    let id = restored["id"].as_str().expect("id");
    assert_holds_pattern(&state.path().join("volumes").join(format!("{id}.qcow2")));
    // Usage counters over the driver protocol: every guest ran, the web
    // guests answered HTTP, the database guest read its disks.
    let metrics = grpc
        .get_metrics(v1::GetMetricsRequest { ids: Vec::new() })
        .await
        .expect("metrics")
        .into_inner()
        .vms;
    assert_eq!(metrics.len(), 4, "{metrics:?}");
    for m in &metrics {
        assert!(m.cpu_time_ms > 0 && m.memory_resident_mib > 0, "{m:?}");
    }
    for w in &web {
        let m = metrics.iter().find(|m| &m.id == w).expect("web metrics");
        assert!(m.net_tx_bytes > 0 && m.net_rx_bytes > 0, "{m:?}");
    }
    // Each guest's kernel read its disks' partition tables at boot (QEMU's
    // block statistics count guest I/O, not the test's qemu-io writes).
    let m = metrics.iter().find(|m| m.id == db_vm).expect("db metrics");
    assert!(m.disk_read_bytes > 0 && m.disk_read_ops > 0, "{m:?}");
    for o in [&backup, &restore] {
        let (_, got) = c
            .api("GET", &format!("/api/v1/orders/{o}"), &people.wang, None)
            .await;
        assert_eq!(got["state"], "approved", "{got}");
    }

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

async fn resources(c: &Controller, people: &People, system: &str) -> Vec<Value> {
    let (_, list) = c
        .api(
            "GET",
            &format!("/api/v1/systems/{system}/resources"),
            &people.wang,
            None,
        )
        .await;
    list["items"].as_array().cloned().unwrap_or_default()
}

/// The system's resources of `kind` once `n` of them run.
async fn wait_running(
    c: &Controller,
    people: &People,
    system: &str,
    kind: &str,
    n: usize,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let of: Vec<Value> = resources(c, people, system)
            .await
            .into_iter()
            .filter(|r| r["kind"] == kind)
            .collect();
        if of.len() == n && of.iter().all(|r| r["phase"] == "running") {
            return of;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{n} {kind} not running: {of:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `qemu-io` on one of `vm`'s drives through the HMP: QEMU's own block
/// layer writes what a write inside the guest would. (Its report goes to
/// QEMU's stdout, not the monitor: check the effect, not the answer.)
async fn hmp_qemu_io(vm: &Vm, drive: &str, command: &str) {
    let mut qmp = vm.qmp().await.expect("qmp");
    qmp.execute(
        "human-monitor-command",
        Some(json!({"command-line": format!("qemu-io {drive} \"{command}\"")})),
    )
    .await
    .expect("qemu-io");
}

/// The image's first MiB is the pattern written to the database volume:
/// read by `qemu-io`, read-only and sharing the image with a running QEMU.
fn assert_holds_pattern(image: &std::path::Path) {
    let out = std::process::Command::new("qemu-io")
        .args(["-r", "-U", "-f", "qcow2", "-c", "read -P 0x5a 0 1M"])
        .arg(image)
        .output()
        .expect("qemu-io");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && text.contains("read 1048576/1048576")
            && !text.contains("verification failed"),
        "{} does not hold the data written: {text}{}",
        image.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
