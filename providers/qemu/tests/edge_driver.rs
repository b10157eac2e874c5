//! Load balancers and public IPs through the QEMU driver's SDK trait: two web
//! VMs behind an HAProxy balancer (weighted round robin, HTTP health check)
//! with a public IP; from the driver's public namespace ("the internet")
//! HTTP through the public IP reaches both guests in turn; a paused guest
//! (QMP `stop`) leaves the rotation and returns when resumed; a public IP on
//! a VM reaches that VM; what is named cannot be deleted; deleting
//! everything leaves no HAProxy, no public namespace and no VPC namespace.

use std::time::{Duration, Instant};

use yunshu_driver_sdk::{Driver, EventLog};
use yunshu_proto::v1::{self, ResourceKind as K, resource_spec::Spec};
use yunshu_qemu::driver::{QemuConfig, QemuDriver};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::vm::{Accel, ReapOnDrop, Vm};
use yunshu_qemu::{lb, net};

mod common;
use common::{answers, fetch, reason, request, running};

fn vm(id: &str, subnet: &str, group: &str) -> v1::ApplyRequest {
    request(
        K::Vm,
        id,
        1,
        Spec::Vm(v1::VmSpec {
            arch: v1::Architecture::X8664 as i32,
            vcpu: 1,
            memory_mib: 192,
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
async fn a_public_ip_on_a_balancer_reaches_both_guests_and_a_paused_one_leaves_the_rotation() {
    let image = guest::build(&guest::default_cache_dir(), GuestArch::X86_64)
        .await
        .expect("guest image");
    let state = tempfile::tempdir().expect("tempdir");
    let run = std::process::id();
    let (vpc, subnet, group) = (
        format!("vpc-lb-{run}"),
        format!("subnet-lb-{run}"),
        format!("sg-lb-{run}"),
    );
    let _reaper = ReapOnDrop(state.path().join("vms"));
    let _balancers = lb::StopOnDrop(state.path().join("lbs"));
    let _services = yunshu_qemu::dhcp::StopOnDrop(state.path().join("dhcp"));
    let _nets = net::DeleteOnDrop(vec![vpc.clone()]);
    let config = QemuConfig {
        state_dir: state.path().to_path_buf(),
        image,
        accel: Accel::Tcg,
        reserved_memory_mib: 1024,
        c86: None,
        arm64: None,
    };
    let public = net::public_namespace(&state.path().display().to_string());
    struct DropNs(String);
    impl Drop for DropNs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .output();
        }
    }
    let _public = DropNs(public.clone());
    let log = EventLog::new(1000);
    let driver = QemuDriver::open(config, log.sink()).await.expect("open");
    for k in [K::LoadBalancer, K::Eip] {
        assert!(driver.info().kinds.contains(&(k as i32)), "{k:?}");
    }

    driver
        .apply(&request(
            K::Vpc,
            &vpc,
            1,
            Spec::Vpc(v1::VpcSpec {
                cidr: "10.0.0.0/16".to_owned(),
            }),
        ))
        .await
        .expect("vpc");
    driver
        .apply(&request(
            K::Subnet,
            &subnet,
            1,
            Spec::Subnet(v1::SubnetSpec {
                vpc: vpc.clone(),
                cidr: "10.0.1.0/24".to_owned(),
                gateway: String::new(),
            }),
        ))
        .await
        .expect("subnet");
    driver
        .apply(&request(
            K::SecurityGroup,
            &group,
            1,
            Spec::SecurityGroup(v1::SecurityGroupSpec {
                rules: vec![v1::SecurityRule {
                    direction: v1::Direction::Ingress as i32,
                    protocol: v1::Protocol::Tcp as i32,
                    port_min: 80,
                    port_max: 80,
                    remote_cidr: "0.0.0.0/0".to_owned(),
                    action: v1::RuleAction::Allow as i32,
                    priority: 100,
                    remote_group: String::new(),
                }],
            }),
        ))
        .await
        .expect("group");
    let (w1, w2) = (format!("vm-web1-{run}"), format!("vm-web2-{run}"));
    driver
        .apply(&vm(&w1, &subnet, &group))
        .await
        .expect("web 1");
    driver
        .apply(&vm(&w2, &subnet, &group))
        .await
        .expect("web 2");

    // A balancer naming a VM that does not exist: refused.
    let member = |target: &str| v1::Member {
        target: target.to_owned(),
        port: 80,
        weight: 1,
    };
    let balancer = |members: Vec<v1::Member>| {
        Spec::LoadBalancer(v1::LoadBalancerSpec {
            subnet: subnet.clone(),
            listeners: vec![v1::Listener {
                protocol: v1::Protocol::Http as i32,
                port: 80,
                algorithm: v1::LbAlgorithm::WeightedRoundRobin as i32,
                health_check: Some(v1::HealthCheck {
                    protocol: v1::Protocol::Http as i32,
                    port: 0,
                    path: "/".to_owned(),
                    interval_seconds: 1,
                    timeout_seconds: 1,
                    healthy_threshold: 1,
                    unhealthy_threshold: 2,
                }),
                session_persistence: false,
                members,
            }],
        })
    };
    let lb_id = format!("lb-web-{run}");
    let e = driver
        .apply(&request(
            K::LoadBalancer,
            &lb_id,
            1,
            balancer(vec![member("vm-nope")]),
        ))
        .await
        .expect_err("no such member");
    assert_eq!(reason(&e), "DEPENDENCY_NOT_FOUND", "{e:?}");
    let made = driver
        .apply(&request(
            K::LoadBalancer,
            &lb_id,
            1,
            balancer(vec![member(&w1), member(&w2)]),
        ))
        .await
        .expect("balancer");
    let vip = made.outputs["vip"].clone();
    let eip_id = format!("eip-lb-{run}");
    let eip = driver
        .apply(&request(
            K::Eip,
            &eip_id,
            1,
            Spec::Eip(v1::EipSpec {
                bandwidth_mbps: 20,
                bind_to: lb_id.clone(),
            }),
        ))
        .await
        .expect("public ip");
    let public_ip = eip.outputs["public_ip"].clone();
    assert!(public_ip.starts_with("198.51.100."), "{public_ip}");
    running(&driver, &w1).await;
    running(&driver, &w2).await;

    // From the internet side: both guests in turn, once the balancer's
    // health checks have seen them up (they start while guests boot).
    let url = format!("http://{public_ip}/");
    let started = Instant::now();
    loop {
        let seen = answers(&public, &url, 4).await;
        if seen.contains(&w1) && seen.contains(&w2) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "both guests never answered: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seen = answers(&public, &url, 6).await;
    assert!(
        seen.windows(2).all(|p| p[0] != p[1]),
        "round robin: {seen:?}"
    );
    // The VPC's own address of the balancer answers inside the VPC only.
    assert_eq!(fetch(&public, &format!("http://{vip}/")).await, None);

    // A paused guest fails its health checks and leaves the rotation.
    let w2_dir = state.path().join("vms").join(&w2);
    let paused = Vm::adopt(&w2_dir).expect("web 2's QEMU");
    let mut qmp = paused.qmp().await.expect("qmp");
    qmp.execute("stop", None).await.expect("stop");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let seen = answers(&public, &url, 6).await;
    assert!(
        seen.iter().all(|p| *p == w1),
        "only web 1 while web 2 is paused: {seen:?}"
    );
    qmp.execute("cont", None).await.expect("cont");
    // QEMU serves one QMP client at a time: let the driver have it back.
    drop(qmp);
    let started = Instant::now();
    loop {
        let seen = answers(&public, &url, 4).await;
        if seen.contains(&w2) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "web 2 did not return"
        );
    }

    // A public IP on a VM: that VM's page.
    let vm_eip = driver
        .apply(&request(
            K::Eip,
            &format!("eip-vm-{run}"),
            1,
            Spec::Eip(v1::EipSpec {
                bandwidth_mbps: 5,
                bind_to: w1.clone(),
            }),
        ))
        .await
        .expect("vm public ip");
    let vm_ip = vm_eip.outputs["public_ip"].clone();
    assert_ne!(vm_ip, public_ip);
    assert_eq!(
        answers(&public, &format!("http://{vm_ip}/"), 1).await,
        vec![w1.clone()]
    );

    // Named things stay.
    let e = driver
        .delete(K::LoadBalancer, &lb_id)
        .await
        .expect_err("bound");
    assert_eq!(reason(&e), "RESOURCE_IN_USE", "{e:?}");
    let e = driver.delete(K::Vm, &w2).await.expect_err("a member");
    assert_eq!(reason(&e), "RESOURCE_IN_USE", "{e:?}");

    // Everything goes, and with it every process and namespace.
    let haproxy = lb::running_pid(&state.path().join("lbs").join(&lb_id)).expect("HAProxy");
    for (kind, id) in [
        (K::Eip, format!("eip-vm-{run}")),
        (K::Eip, eip_id.clone()),
        (K::LoadBalancer, lb_id.clone()),
        (K::Vm, w1.clone()),
        (K::Vm, w2.clone()),
        (K::SecurityGroup, group.clone()),
        (K::Subnet, subnet.clone()),
        (K::Vpc, vpc.clone()),
    ] {
        driver
            .delete(kind, &id)
            .await
            .unwrap_or_else(|e| panic!("delete {id}: {e:?}"))
            .expect("it existed");
    }
    // Gone, or a zombie awaiting its reaper (init here is slow to reap).
    let left = std::fs::read_to_string(format!("/proc/{haproxy}/stat")).unwrap_or_default();
    assert!(
        left.is_empty() || left.split_whitespace().nth(2) == Some("Z"),
        "HAProxy left: {left}"
    );
    let namespaces = tokio::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .await
        .expect("ip netns");
    let namespaces = String::from_utf8_lossy(&namespaces.stdout);
    assert!(!namespaces.contains(&public), "{namespaces}");
    assert!(!namespaces.contains(&net::namespace(&vpc)), "{namespaces}");
}
