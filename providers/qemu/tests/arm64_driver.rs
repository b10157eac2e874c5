//! 一云多芯 on one host: the driver offers an x86_64 pool and an arm64 pool
//! carved out of the same machine (cores and memory split, never promised
//! twice). An arm64 VM in a VPC boots under TCG and answers HTTP there; an
//! arm64 VM larger than the arm64 share is refused even though the x86_64
//! pool has room.

use std::time::{Duration, Instant};

use yunshu_driver_sdk::{Driver, EventLog};
use yunshu_proto::v1::{self, ResourceKind as K, resource_spec::Spec};
use yunshu_qemu::driver::{Arm64Pool, QemuConfig, QemuDriver};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::net;
use yunshu_qemu::vm::{Accel, ReapOnDrop};

fn request(kind: K, id: &str, spec: Spec) -> v1::ApplyRequest {
    v1::ApplyRequest {
        kind: kind as i32,
        id: id.to_owned(),
        generation: 1,
        idempotency_key: format!("{id}@1"),
        spec: Some(v1::ResourceSpec { spec: Some(spec) }),
        tenant: "110105".to_owned(),
        ..Default::default()
    }
}

fn arm_vm(id: &str, subnet: &str, group: &str, memory_mib: u64) -> v1::ApplyRequest {
    request(
        K::Vm,
        id,
        Spec::Vm(v1::VmSpec {
            arch: v1::Architecture::Arm64 as i32,
            vcpu: 1,
            memory_mib,
            image: "yunshu-tiny".to_owned(),
            nics: vec![v1::Nic {
                subnet: subnet.to_owned(),
                ip: String::new(),
            }],
            security_groups: vec![group.to_owned()],
            ..Default::default()
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm64_vm_boots_in_its_own_pool_and_the_pools_share_the_host_honestly() {
    let cache = guest::default_cache_dir();
    let x86 = guest::build(&cache, GuestArch::X86_64)
        .await
        .expect("x86_64 guest");
    let arm = guest::build(&cache, GuestArch::Arm64)
        .await
        .expect("arm64 guest");
    let state = tempfile::tempdir().expect("tempdir");
    let run = std::process::id();
    let (vpc, subnet, group) = (
        format!("vpc-arm-d-{run}"),
        format!("subnet-arm-d-{run}"),
        format!("sg-arm-d-{run}"),
    );
    let _reaper = ReapOnDrop(state.path().join("vms"));
    let _services = yunshu_qemu::dhcp::StopOnDrop(state.path().join("dhcp"));
    let _nets = net::DeleteOnDrop(vec![vpc.clone()]);
    let driver = QemuDriver::open(
        QemuConfig {
            state_dir: state.path().to_path_buf(),
            image: x86,
            accel: Accel::Tcg,
            reserved_memory_mib: 1024,
            c86: None,
            arm64: Some(Arm64Pool {
                image: arm,
                cores: 1,
                memory_mib: 1024,
            }),
        },
        EventLog::new(1000).sink(),
    )
    .await
    .expect("open");
    assert!(
        driver
            .info()
            .architectures
            .contains(&(v1::Architecture::Arm64 as i32))
    );
    let inventory = driver.inventory().await.expect("inventory");
    let pools: Vec<(String, i32)> = inventory
        .pools
        .iter()
        .map(|p| (p.id.clone(), p.arch))
        .collect();
    assert_eq!(pools.len(), 2, "{pools:?}");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let arm_host = inventory
        .hosts
        .iter()
        .find(|h| h.pool == "local-arm64")
        .expect("arm64 host");
    let x86_host = inventory
        .hosts
        .iter()
        .find(|h| h.pool == "local-x86_64")
        .expect("x86_64 host");
    assert_eq!(arm_host.memory_mib, 1024);
    assert_eq!(arm_host.cores + x86_host.cores, cores.max(2));
    assert_eq!(
        x86_host.memory_mib - x86_host.reserved_memory_mib + arm_host.memory_mib,
        yunshu_qemu::driver::host_memory_mib() - 1024,
        "the two pools together give out the host minus its reserve, once"
    );

    driver
        .apply(&request(
            K::Vpc,
            &vpc,
            Spec::Vpc(v1::VpcSpec {
                cidr: "10.7.0.0/16".to_owned(),
            }),
        ))
        .await
        .expect("vpc");
    driver
        .apply(&request(
            K::Subnet,
            &subnet,
            Spec::Subnet(v1::SubnetSpec {
                vpc: vpc.clone(),
                cidr: "10.7.1.0/24".to_owned(),
                gateway: String::new(),
            }),
        ))
        .await
        .expect("subnet");
    driver
        .apply(&request(
            K::SecurityGroup,
            &group,
            Spec::SecurityGroup(v1::SecurityGroupSpec {
                rules: vec![v1::SecurityRule {
                    direction: v1::Direction::Ingress as i32,
                    protocol: v1::Protocol::Tcp as i32,
                    port_min: 80,
                    port_max: 80,
                    remote_cidr: "10.7.0.0/16".to_owned(),
                    action: v1::RuleAction::Allow as i32,
                    priority: 100,
                    remote_group: String::new(),
                }],
            }),
        ))
        .await
        .expect("group");

    // More than the arm64 share: refused, though x86_64 has room.
    let e = driver
        .apply(&arm_vm(&format!("vm-arm-big-{run}"), &subnet, &group, 2048))
        .await
        .expect_err("over the arm64 share");
    assert_eq!(
        yunshu_proto::errors::reason(&e)
            .map(|r| r.reason)
            .as_deref(),
        Some("HOST_MEMORY_EXHAUSTED"),
        "{e:?}"
    );

    let id = format!("vm-arm-{run}");
    let accepted = driver
        .apply(&arm_vm(&id, &subnet, &group, 256))
        .await
        .expect("arm64 vm");
    let placement = accepted.placement.clone().expect("placement");
    assert_eq!(placement.pool, "local-arm64");
    assert_eq!(accepted.outputs["accelerator"], "tcg");
    let started = Instant::now();
    let up = loop {
        let s = driver.get(K::Vm, &id).await.expect("get").expect("vm");
        if s.phase == v1::Phase::Running as i32 {
            break s;
        }
        assert_ne!(s.phase, v1::Phase::Failed as i32, "{}", s.message);
        assert!(started.elapsed() < Duration::from_secs(180), "{s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("arm64 guest up in {} ms (TCG)", up.outputs["boot_ms"]);
    let pid = &up.outputs["pid"];
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert!(String::from_utf8_lossy(&cmdline).contains("qemu-system-aarch64"));
    let ip = &up.outputs["private_ip"];
    // The arm64 guest's busybox udhcpc got it from the VPC's dnsmasq.
    let serial =
        std::fs::read_to_string(state.path().join(format!("vms/{id}/serial.log"))).expect("serial");
    assert!(
        serial.lines().any(|l| l.trim() == format!("YS-DHCP {ip}")),
        "{serial}"
    );
    let mut page = None;
    for _ in 0..20 {
        let out = tokio::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &net::namespace(&vpc),
                "curl",
                "-s",
                "--max-time",
                "2",
            ])
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
    assert_eq!(page.as_deref(), Some(id.as_str()));
    for (kind, rid) in [
        (K::Vm, &id),
        (K::SecurityGroup, &group),
        (K::Subnet, &subnet),
        (K::Vpc, &vpc),
    ] {
        driver
            .delete(kind, rid)
            .await
            .expect("delete")
            .expect("existed");
    }
}
