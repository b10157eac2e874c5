//! Networks through the QEMU driver's SDK trait: a VPC, a subnet and two
//! security groups, two VMs in the subnet. Ingress is default deny: the VM
//! whose group allows HTTP answers, the other does not; changing the group's
//! rule closes the port; what is named cannot be deleted; a driver restart
//! brings everything back (the same QEMU processes, the firewall reloaded);
//! the guests' addresses come by DHCP;
//! deleting everything leaves no namespace, no QEMU and no state behind.

use std::time::Duration;

use yunshu_driver_sdk::{Driver, EventLog};
use yunshu_proto::v1::{self, ResourceKind as K, resource_spec::Spec};
use yunshu_qemu::driver::{QemuConfig, QemuDriver};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::net;
use yunshu_qemu::vm::{Accel, ReapOnDrop, is_qemu};

mod common;
use common::{fetch, reason, request, running};

fn http_from_anywhere(port: u32) -> v1::SecurityRule {
    v1::SecurityRule {
        direction: v1::Direction::Ingress as i32,
        protocol: v1::Protocol::Tcp as i32,
        port_min: port,
        port_max: port,
        remote_cidr: "0.0.0.0/0".to_owned(),
        action: v1::RuleAction::Allow as i32,
        priority: 100,
        remote_group: String::new(),
    }
}

fn vm(id: &str, subnet: &str, group: &str) -> v1::ApplyRequest {
    request(
        K::Vm,
        id,
        1,
        Spec::Vm(v1::VmSpec {
            arch: v1::Architecture::X8664 as i32,
            vcpu: 1,
            memory_mib: 192,
            system_disk: Some(v1::Disk {
                size_gib: 20,
                storage_class: "local-standard".to_owned(),
            }),
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

/// The page at `url`, retried while the guest's httpd comes up.
async fn page(ns: &str, url: &str) -> Option<String> {
    for _ in 0..20 {
        if let Some(p) = fetch(ns, url).await {
            return Some(p);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_groups_decide_who_answers_and_everything_survives_a_restart() {
    let image = guest::build(&guest::default_cache_dir(), GuestArch::X86_64)
        .await
        .expect("guest image");
    let state = tempfile::tempdir().expect("tempdir");
    let run = std::process::id();
    let (vpc, subnet) = (format!("vpc-sg-{run}"), format!("subnet-sg-{run}"));
    let _reaper = ReapOnDrop(state.path().join("vms"));
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
    let log = EventLog::new(1000);
    let driver = QemuDriver::open(config.clone(), log.sink())
        .await
        .expect("open");
    let info = driver.info();
    for k in [K::Vpc, K::Subnet, K::SecurityGroup, K::Vm] {
        assert!(info.kinds.contains(&(k as i32)), "{k:?} not declared");
    }

    // A subnet before its VPC: refused, nothing made.
    let subnet_req = request(
        K::Subnet,
        &subnet,
        1,
        Spec::Subnet(v1::SubnetSpec {
            vpc: vpc.clone(),
            cidr: "10.0.1.0/24".to_owned(),
            gateway: String::new(),
        }),
    );
    let e = driver.apply(&subnet_req).await.expect_err("no VPC yet");
    assert_eq!(reason(&e), "DEPENDENCY_NOT_FOUND", "{e:?}");
    assert!(driver.list(None, None, 10).await.expect("list").is_empty());

    let vpc_req = request(
        K::Vpc,
        &vpc,
        1,
        Spec::Vpc(v1::VpcSpec {
            cidr: "10.0.0.0/16".to_owned(),
        }),
    );
    let made = driver.apply(&vpc_req).await.expect("vpc");
    assert_eq!(made.phase, v1::Phase::Running as i32);
    let ns = made.outputs["namespace"].clone();
    let made = driver.apply(&subnet_req).await.expect("subnet");
    assert_eq!(made.outputs["gateway"], "10.0.1.1");
    let web = format!("sg-web-{run}");
    let quiet = format!("sg-quiet-{run}");
    driver
        .apply(&request(
            K::SecurityGroup,
            &web,
            1,
            Spec::SecurityGroup(v1::SecurityGroupSpec {
                rules: vec![http_from_anywhere(80)],
            }),
        ))
        .await
        .expect("web group");
    driver
        .apply(&request(
            K::SecurityGroup,
            &quiet,
            1,
            Spec::SecurityGroup(v1::SecurityGroupSpec { rules: Vec::new() }),
        ))
        .await
        .expect("quiet group");

    let (a, b) = (format!("vm-web-{run}"), format!("vm-quiet-{run}"));
    driver.apply(&vm(&a, &subnet, &web)).await.expect("vm a");
    driver.apply(&vm(&b, &subnet, &quiet)).await.expect("vm b");
    let sa = running(&driver, &a).await;
    let sb = running(&driver, &b).await;
    let (ip_a, ip_b) = (
        sa.outputs["private_ip"].clone(),
        sb.outputs["private_ip"].clone(),
    );
    assert_eq!((ip_a.as_str(), ip_b.as_str()), ("10.0.1.2", "10.0.1.3"));
    // Each guest got that address by DHCP from the VPC's dnsmasq (running as
    // root here: the state directory is a private tempdir).
    for (id, ip) in [(&a, &ip_a), (&b, &ip_b)] {
        let serial = std::fs::read_to_string(state.path().join(format!("vms/{id}/serial.log")))
            .expect("serial");
        assert!(
            serial.lines().any(|l| l.trim() == format!("YS-DHCP {ip}")),
            "{id}: {serial}"
        );
    }
    assert!(
        state.path().join(format!("vms/{a}/system.qcow2")).exists(),
        "the system disk"
    );

    // Default deny inbound: only the group that allows HTTP answers.
    assert_eq!(
        page(&ns, &format!("http://{ip_a}/")).await.as_deref(),
        Some(a.as_str())
    );
    assert_eq!(fetch(&ns, &format!("http://{ip_b}/")).await, None);

    // A new generation of the group: port 80 closes, for the VM already running.
    driver
        .apply(&request(
            K::SecurityGroup,
            &web,
            2,
            Spec::SecurityGroup(v1::SecurityGroupSpec {
                rules: vec![http_from_anywhere(8080)],
            }),
        ))
        .await
        .expect("web group, generation 2");
    assert_eq!(fetch(&ns, &format!("http://{ip_a}/")).await, None);

    // What is named cannot go.
    for (kind, id) in [
        (K::Vpc, &vpc),
        (K::Subnet, &subnet),
        (K::SecurityGroup, &web),
    ] {
        let e = driver.delete(kind, id).await.expect_err("in use");
        assert_eq!(reason(&e), "RESOURCE_IN_USE", "{kind:?}: {e:?}");
    }

    // Restart: the same QEMU processes, the firewall as it was.
    driver
        .apply(&request(
            K::SecurityGroup,
            &web,
            3,
            Spec::SecurityGroup(v1::SecurityGroupSpec {
                rules: vec![http_from_anywhere(80)],
            }),
        ))
        .await
        .expect("web group, generation 3");
    let pid_a: u32 = sa.outputs["pid"].parse().expect("pid");
    drop(driver);
    let driver = QemuDriver::open(config.clone(), log.sink())
        .await
        .expect("reopen");
    let again = running(&driver, &a).await;
    assert_eq!(again.outputs["pid"], pid_a.to_string());
    assert_eq!(again.outputs["private_ip"], ip_a);
    assert_eq!(
        page(&ns, &format!("http://{ip_a}/")).await.as_deref(),
        Some(a.as_str())
    );
    assert_eq!(fetch(&ns, &format!("http://{ip_b}/")).await, None);
    assert_eq!(driver.list(None, None, 100).await.expect("list").len(), 6);

    // Everything deleted, newest first: nothing left behind.
    let pid_b: u32 = sb.outputs["pid"].parse().expect("pid");
    for (kind, id) in [
        (K::Vm, &a),
        (K::Vm, &b),
        (K::SecurityGroup, &web),
        (K::SecurityGroup, &quiet),
        (K::Subnet, &subnet),
        (K::Vpc, &vpc),
    ] {
        driver
            .delete(kind, id)
            .await
            .unwrap_or_else(|e| panic!("delete {id}: {e:?}"))
            .expect("it existed");
    }
    assert!(!is_qemu(pid_a) && !is_qemu(pid_b), "QEMU left behind");
    assert!(!net::list_vpcs().await.expect("netns").contains(&ns));
    assert!(driver.list(None, None, 100).await.expect("list").is_empty());
    let left: Vec<_> = std::fs::read_dir(state.path().join("vms"))
        .expect("vms dir")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
