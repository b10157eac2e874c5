//! DHCP and DNS through the QEMU driver: two tenants' VPCs with the same
//! CIDR, two VMs in one, one in the other. Each guest gets the address the
//! driver reserved for it by DHCP from its own VPC's `dnsmasq` (its console
//! says `YS-DHCP <address>`), resolves its neighbour's name through its
//! gateway and not the other VPC's names. A VM added is a reload (`SIGHUP`,
//! same process); the service is found again after a driver restart (no
//! second process); a VM removed takes its name away; the last VM of a VPC
//! going stops its service, and nothing is left when everything is deleted.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use yunshu_driver_sdk::{Driver, EventLog};
use yunshu_proto::v1::{self, ResourceKind as K, resource_spec::Spec};
use yunshu_qemu::driver::{QemuConfig, QemuDriver};
use yunshu_qemu::guest::{self, DHCP_FAILED, DHCP_MARKER, GuestArch};
use yunshu_qemu::vm::{Accel, ReapOnDrop, is_alive};
use yunshu_qemu::{dhcp, net};

mod common;
use common::{fetch, request, running};

fn vm(id: &str, subnet: &str, group: &str, ip: &str) -> v1::ApplyRequest {
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
                ip: ip.to_owned(),
            }],
            security_groups: vec![group.to_owned()],
            ..Default::default()
        }),
    )
}

/// The address the guest's console says DHCP gave it (`None`: no lease).
fn leased(state: &Path, vm: &str) -> Option<String> {
    let serial =
        std::fs::read_to_string(state.join(format!("vms/{vm}/serial.log"))).unwrap_or_default();
    assert!(
        !serial.contains(DHCP_FAILED),
        "{vm} fell back to its static address:\n{serial}"
    );
    serial
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{DHCP_MARKER} ")))
        .map(str::to_owned)
}

/// The pids of every live `dnsmasq` whose command line names `state`.
fn dnsmasqs(state: &Path) -> Vec<u32> {
    let needle = state.display().to_string();
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).ok()?)
                .into_owned();
            (cmdline.starts_with("dnsmasq") && cmdline.contains(&needle)).then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// The pid of VPC `vpc`'s running `dnsmasq`.
fn service(state: &Path, vpc: &str) -> Option<u32> {
    dhcp::running_pid(&state.join("dhcp").join(vpc))
}

/// The addresses guest `ip` (in namespace `ns`) is told for `name` by its
/// DNS server: busybox `nslookup` in the guest (`/cgi-bin/resolve`), the
/// `Address:` lines after a `Name:` line. Retried while its httpd comes up.
async fn resolve(ns: &str, ip: &str, name: &str) -> Vec<String> {
    let url = format!("http://{ip}/cgi-bin/resolve?{name}");
    for _ in 0..40 {
        if let Some(text) = fetch(ns, &url).await {
            let mut named = false;
            let mut out = Vec::new();
            for line in text.lines() {
                if line.starts_with("Name:") {
                    named = true;
                } else if let Some(a) = line.strip_prefix("Address:").filter(|_| named) {
                    out.push(a.trim().to_owned());
                }
            }
            return out;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("{url}: no answer from the guest");
}

fn uid_of(pid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|u| u.split_whitespace().next()?.parse().ok())
        .expect("Uid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_get_their_reserved_address_and_their_vpcs_names_by_dhcp_and_dns() {
    let image = guest::build(&guest::default_cache_dir(), GuestArch::X86_64)
        .await
        .expect("guest image");
    let state = tempfile::tempdir().expect("tempdir");
    // Reachable by the `dnsmasq` user, so the service drops root (a state
    // directory only root may enter keeps it root: the other driver tests).
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let s = state.path();
    let run = std::process::id();
    let (vpc_a, vpc_b) = (format!("vpc-dns-a-{run}"), format!("vpc-dns-b-{run}"));
    let (sub_a, sub_b) = (format!("subnet-dns-a-{run}"), format!("subnet-dns-b-{run}"));
    let web = format!("sg-dns-{run}");
    let (a1, a2, b1) = (
        format!("vm-dns-a1-{run}"),
        format!("vm-dns-a2-{run}"),
        format!("vm-dns-b1-{run}"),
    );
    let _reaper = ReapOnDrop(s.join("vms"));
    let _services = dhcp::StopOnDrop(s.join("dhcp"));
    let _nets = net::DeleteOnDrop(vec![vpc_a.clone(), vpc_b.clone()]);
    let config = QemuConfig {
        state_dir: s.to_path_buf(),
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

    // Two tenants' VPCs, the same CIDR, the same subnet.
    for (vpc, subnet) in [(&vpc_a, &sub_a), (&vpc_b, &sub_b)] {
        driver
            .apply(&request(
                K::Vpc,
                vpc,
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
                subnet,
                1,
                Spec::Subnet(v1::SubnetSpec {
                    vpc: vpc.clone(),
                    cidr: "10.0.1.0/24".to_owned(),
                    gateway: String::new(),
                }),
            ))
            .await
            .expect("subnet");
    }
    driver
        .apply(&request(
            K::SecurityGroup,
            &web,
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
    // No VM NIC yet: no service.
    assert!(dnsmasqs(s).is_empty(), "{:?}", dnsmasqs(s));

    driver.apply(&vm(&a1, &sub_a, &web, "")).await.expect("a1");
    let first = service(s, &vpc_a).expect("VPC A's service with its first VM");
    assert_ne!(uid_of(first), 0, "dnsmasq kept root");
    // A second VM of the VPC: a reload of the same process.
    driver.apply(&vm(&a2, &sub_a, &web, "")).await.expect("a2");
    assert_eq!(service(s, &vpc_a), Some(first), "reloaded, not restarted");
    // The other tenant's VM asks for the address its neighbour got there.
    driver
        .apply(&vm(&b1, &sub_b, &web, "10.0.1.20"))
        .await
        .expect("b1");
    let mut ips = Vec::new();
    for id in [&a1, &a2, &b1] {
        ips.push(running(&driver, id).await.outputs["private_ip"].clone());
    }
    assert_eq!(ips, ["10.0.1.2", "10.0.1.3", "10.0.1.20"]);
    for (id, ip) in [&a1, &a2, &b1].into_iter().zip(&ips) {
        assert_eq!(leased(s, id).as_deref(), Some(ip.as_str()), "{id}");
    }
    let pid_b = service(s, &vpc_b).expect("VPC B's service");
    assert_ne!(pid_b, first);
    assert_eq!(dnsmasqs(s), {
        let mut p = vec![first, pid_b];
        p.sort_unstable();
        p
    });

    // Names through the gateway, inside the guest: its neighbour's, by
    // itself and in its subnet's domain; not the other VPC's.
    let (ns_a, ns_b) = (net::namespace(&vpc_a), net::namespace(&vpc_b));
    assert_eq!(resolve(&ns_a, &ips[0], &a2).await, ["10.0.1.3"]);
    assert_eq!(
        resolve(&ns_a, &ips[0], &format!("{a2}.{sub_a}.internal")).await,
        ["10.0.1.3"]
    );
    assert!(resolve(&ns_a, &ips[0], &b1).await.is_empty());
    assert_eq!(resolve(&ns_b, &ips[2], &b1).await, ["10.0.1.20"]);
    assert!(resolve(&ns_b, &ips[2], &a1).await.is_empty());

    // Driver restart: both services found again, no second process.
    drop(driver);
    let driver = QemuDriver::open(config.clone(), log.sink())
        .await
        .expect("reopen");
    assert_eq!(service(s, &vpc_a), Some(first));
    assert_eq!(service(s, &vpc_b), Some(pid_b));
    assert_eq!(dnsmasqs(s).len(), 2, "{:?}", dnsmasqs(s));
    assert_eq!(resolve(&ns_a, &ips[0], &a2).await, ["10.0.1.3"]);

    // A VM removed: its name (and lease) go, its neighbour's stay.
    driver
        .delete(K::Vm, &a2)
        .await
        .expect("delete a2")
        .expect("a2");
    assert!(resolve(&ns_a, &ips[0], &a2).await.is_empty());
    assert_eq!(resolve(&ns_a, &ips[0], &a1).await, ["10.0.1.2"]);
    let leases = std::fs::read_to_string(s.join(format!("dhcp/{vpc_a}/leases"))).expect("leases");
    assert!(
        leases.contains(&net::mac(&a1, 0)) && !leases.contains(&net::mac(&a2, 0)),
        "{leases}"
    );

    // The last VM of VPC B goes: so does its service; then its subnet and VPC.
    driver
        .delete(K::Vm, &b1)
        .await
        .expect("delete b1")
        .expect("b1");
    assert_eq!(service(s, &vpc_b), None);
    assert!(!is_alive(pid_b), "VPC B's dnsmasq left behind");
    for (kind, id) in [(K::Subnet, &sub_b), (K::Vpc, &vpc_b)] {
        driver
            .delete(kind, id)
            .await
            .expect("delete")
            .expect("it existed");
    }
    let a_pid = service(s, &vpc_a).expect("VPC A's service still there");
    for (kind, id) in [
        (K::Vm, &a1),
        (K::SecurityGroup, &web),
        (K::Subnet, &sub_a),
        (K::Vpc, &vpc_a),
    ] {
        driver
            .delete(kind, id)
            .await
            .expect("delete")
            .expect("it existed");
    }
    assert!(!is_alive(a_pid), "VPC A's dnsmasq left behind");
    assert!(dnsmasqs(s).is_empty(), "{:?}", dnsmasqs(s));
    let left: Vec<_> = std::fs::read_dir(s.join("dhcp"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}
