//! The driver against the test OpenStack of `tests/openstack` directly (no
//! controller): inventory from Placement, then a VPC, subnet, security group,
//! VM and EIP made, powered off and on, and deleted, with the time each step
//! took. Needs `tests/openstack/up` (scripts/test runs it).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use yunshu_driver_sdk::{Driver, EventLog};
use yunshu_openstack::OpenStackDriver;
use yunshu_openstack::config::{DriverConfig, OsVars};
use yunshu_proto::v1::{self, ResourceKind as K, resource_spec::Spec};

fn home() -> PathBuf {
    std::env::var_os("YUNSHU_OS_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/yunshu-openstack")
        })
}

fn openrc(name: &str) -> OsVars {
    let path = home().join(name);
    assert!(
        path.exists(),
        "{} is missing: start the test OpenStack with `tests/openstack/up`",
        path.display()
    );
    OsVars::from_openrc(&path).expect("openrc")
}

fn config() -> DriverConfig {
    DriverConfig {
        tenant: openrc("openrc.yunshu").cloud("tenant").expect("tenant"),
        projects: Vec::new(),
        unmapped: Default::default(),
        operator: Some(openrc("openrc").cloud("operator").expect("operator")),
        zone_prefix: String::new(),
        area_suffix: "gov".to_owned(),
        internet_area_suffix: "internet".to_owned(),
        images: Default::default(),
        default_image: "fake-image".to_owned(),
        external_network: "public".to_owned(),
        clock_mhz: 2600,
        default_arch: Some(v1::Architecture::X8664),
        iops_per_disk: 3000,
        bandwidth_mbps: 1000,
        // The test cloud's fake Cinder backend says "infinite".
        infinite_storage_gib: 1000,
        poll_every: Duration::from_secs(1),
        state_dir: None,
    }
}

fn request(
    kind: K,
    id: &str,
    generation: u64,
    spec: Spec,
    placement: v1::Placement,
) -> v1::ApplyRequest {
    v1::ApplyRequest {
        kind: kind as i32,
        id: id.to_owned(),
        generation,
        idempotency_key: format!("{id}-{generation}"),
        spec: Some(v1::ResourceSpec { spec: Some(spec) }),
        placement: Some(placement),
        tenant: "t1".to_owned(),
    }
}

async fn wait_phase(
    d: &OpenStackDriver,
    kind: K,
    id: &str,
    generation: u64,
    phase: v1::Phase,
) -> Duration {
    let t = Instant::now();
    loop {
        let s = d.get(kind, id).await.expect("get");
        if let Some(s) = &s
            && s.phase == phase as i32
            && s.observed_generation == generation
        {
            return t.elapsed();
        }
        assert!(t.elapsed() < Duration::from_secs(120), "{id}: {s:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_gone(d: &OpenStackDriver, kind: K, id: &str) -> Duration {
    let t = Instant::now();
    while d.get(kind, id).await.expect("get").is_some() {
        assert!(t.elapsed() < Duration::from_secs(120), "{id} not gone");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_on_its_network_is_made_powered_and_deleted_in_openstack() {
    let log = EventLog::new(1024);
    let t = Instant::now();
    let d = OpenStackDriver::open(config(), log.sink())
        .await
        .expect("open");
    println!(
        "open (2 Keystone logins, external network): {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let inv = d.inventory().await.expect("inventory");
    println!("inventory: {:?}\n{inv:#?}", t.elapsed());
    let host = inv.hosts.first().expect("a host");
    let pool = inv.pools.iter().find(|p| p.id == host.pool).expect("pool");
    let vm_place = v1::Placement {
        zone: pool.zone.clone(),
        network_area: pool.network_area.clone(),
        pool: pool.id.clone(),
        host: host.id.clone(),
    };
    let net_place = v1::Placement {
        zone: pool.zone.clone(),
        network_area: pool.network_area.clone(),
        ..Default::default()
    };
    let run = format!("live{}", std::process::id());
    let (vpc, subnet, sg, vm, eip) = (
        format!("{run}-vpc"),
        format!("{run}-subnet"),
        format!("{run}-sg"),
        format!("{run}-vm"),
        format!("{run}-eip"),
    );
    let t = Instant::now();
    d.apply(&request(
        K::Vpc,
        &vpc,
        1,
        Spec::Vpc(v1::VpcSpec {
            cidr: "10.20.0.0/16".into(),
        }),
        net_place.clone(),
    ))
    .await
    .expect("vpc");
    println!("vpc (network + router): {:?}", t.elapsed());
    let t = Instant::now();
    d.apply(&request(
        K::Subnet,
        &subnet,
        1,
        Spec::Subnet(v1::SubnetSpec {
            vpc: vpc.clone(),
            cidr: "10.20.1.0/24".into(),
            gateway: String::new(),
        }),
        net_place.clone(),
    ))
    .await
    .expect("subnet");
    println!("subnet (+ router interface): {:?}", t.elapsed());
    let deny = v1::SecurityRule {
        direction: v1::Direction::Ingress as i32,
        protocol: v1::Protocol::Tcp as i32,
        port_min: 22,
        port_max: 22,
        remote_cidr: "0.0.0.0/0".into(),
        action: v1::RuleAction::Deny as i32,
        priority: 1,
        remote_group: String::new(),
    };
    let refused = d
        .apply(&request(
            K::SecurityGroup,
            &sg,
            1,
            Spec::SecurityGroup(v1::SecurityGroupSpec {
                rules: vec![deny.clone()],
            }),
            net_place.clone(),
        ))
        .await
        .expect_err("DENY refused");
    assert_eq!(
        refused.code(),
        yunshu_proto::tonic::Code::InvalidArgument,
        "{refused:?}"
    );
    let allow = v1::SecurityRule {
        action: v1::RuleAction::Allow as i32,
        ..deny
    };
    let t = Instant::now();
    d.apply(&request(
        K::SecurityGroup,
        &sg,
        1,
        Spec::SecurityGroup(v1::SecurityGroupSpec { rules: vec![allow] }),
        net_place.clone(),
    ))
    .await
    .expect("sg");
    println!("security group + rule: {:?}", t.elapsed());
    let vm_spec = |stopped, memory_mib| {
        Spec::Vm(v1::VmSpec {
            arch: v1::Architecture::X8664 as i32,
            vcpu: 1,
            memory_mib,
            system_disk: Some(v1::Disk {
                size_gib: 1,
                storage_class: String::new(),
            }),
            data_disks: vec![],
            image: "openEuler-22.03-LTS".into(),
            nics: vec![v1::Nic {
                subnet: subnet.clone(),
                ip: String::new(),
            }],
            security_groups: vec![sg.clone()],
            stopped,
        })
    };
    let t = Instant::now();
    d.apply(&request(
        K::Vm,
        &vm,
        1,
        vm_spec(false, 512),
        vm_place.clone(),
    ))
    .await
    .expect("vm");
    println!("vm apply (flavor, image, port, server): {:?}", t.elapsed());
    println!(
        "vm running after {:?}",
        wait_phase(&d, K::Vm, &vm, 1, v1::Phase::Running).await
    );
    // The same request again creates nothing new.
    d.apply(&request(
        K::Vm,
        &vm,
        1,
        vm_spec(false, 512),
        vm_place.clone(),
    ))
    .await
    .expect("vm again");
    // Powered off and resized in one generation, as the conformance kit does.
    d.apply(&request(
        K::Vm,
        &vm,
        2,
        vm_spec(true, 1024),
        vm_place.clone(),
    ))
    .await
    .expect("stop");
    println!(
        "vm resized (Nova resize + confirm) and stopped after {:?}",
        wait_phase(&d, K::Vm, &vm, 2, v1::Phase::Stopped).await
    );
    d.apply(&request(
        K::Vm,
        &vm,
        3,
        vm_spec(false, 1024),
        vm_place.clone(),
    ))
    .await
    .expect("start");
    println!(
        "vm running again after {:?}",
        wait_phase(&d, K::Vm, &vm, 3, v1::Phase::Running).await
    );
    let eip_place = v1::Placement {
        zone: pool.zone.clone(),
        network_area: inv
            .ip_pools
            .first()
            .map(|p| p.network_area.clone())
            .unwrap_or_default(),
        ..Default::default()
    };
    let t = Instant::now();
    let e = d
        .apply(&request(
            K::Eip,
            &eip,
            1,
            Spec::Eip(v1::EipSpec {
                bandwidth_mbps: 10,
                bind_to: vm.clone(),
            }),
            eip_place,
        ))
        .await
        .expect("eip");
    println!("eip {:?} bound: {:?}", e.outputs.get("ip"), t.elapsed());
    let in_use = d
        .delete(K::Subnet, &subnet)
        .await
        .expect_err("subnet in use");
    assert_eq!(in_use.code(), yunshu_proto::tonic::Code::FailedPrecondition);
    let t = Instant::now();
    d.delete(K::Eip, &eip).await.expect("delete eip");
    d.delete(K::Vm, &vm).await.expect("delete vm");
    println!("vm gone after {:?}", wait_gone(&d, K::Vm, &vm).await);
    d.delete(K::SecurityGroup, &sg).await.expect("delete sg");
    d.delete(K::Subnet, &subnet).await.expect("delete subnet");
    d.delete(K::Vpc, &vpc).await.expect("delete vpc");
    println!("teardown: {:?}", t.elapsed());
    assert!(d.list(None, None, 100).await.expect("list").is_empty());
}

/// Tenant 110105 has a project of its own (`tests/openstack/bootstrap.py`
/// makes `yunshu-110105`): its VPC is made there, with that project's
/// session, and deleted from there; a tenant with no project is refused
/// when the operator says unmapped tenants are, and nothing is made for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_tenant_gets_its_own_project_and_an_unmapped_one_is_refused() {
    use yunshu_openstack::cloud::{Cloud, Service};
    use yunshu_openstack::config::{Unmapped, rescoped_projects};
    let mut config = config();
    config.projects =
        rescoped_projects(&config.tenant, &["110105=yunshu-110105".to_owned()]).expect("mapping");
    config.unmapped = Unmapped::Refuse;
    let own = Cloud::connect(&config.projects[0].cloud)
        .await
        .expect("the own project's session");
    let shared = Cloud::connect(&config.tenant)
        .await
        .expect("shared session");
    assert_ne!(own.project_id(), shared.project_id());
    let log = EventLog::new(1024);
    let d = OpenStackDriver::open(config, log.sink())
        .await
        .expect("open");
    let place = v1::Placement {
        zone: "nova".to_owned(),
        network_area: "nova-gov".to_owned(),
        ..Default::default()
    };
    let run = format!("own{}", std::process::id());
    let vpc = |id: &str, tenant: &str| {
        let mut r = request(
            K::Vpc,
            id,
            1,
            Spec::Vpc(v1::VpcSpec {
                cidr: "10.61.0.0/16".to_owned(),
            }),
            place.clone(),
        );
        r.tenant = tenant.to_owned();
        r
    };

    let refused = d
        .apply(&vpc(&format!("{run}-stray"), "110108"))
        .await
        .expect_err("an unmapped tenant is refused");
    assert_eq!(refused.code(), yunshu_proto::tonic::Code::PermissionDenied);
    assert!(
        refused.message().contains("110108"),
        "{}",
        refused.message()
    );
    assert!(
        d.get(K::Vpc, &format!("{run}-stray"))
            .await
            .expect("get")
            .is_none()
    );

    let id = format!("{run}-vpc");
    let t = Instant::now();
    d.apply(&vpc(&id, "110105"))
        .await
        .expect("VPC of tenant 110105");
    wait_phase(&d, K::Vpc, &id, 1, v1::Phase::Running).await;
    println!("VPC in the tenant's own project: {:?}", t.elapsed());
    let name = format!("ys-{id}");
    let found = own
        .get(Service::Network, &format!("networks?name={name}"))
        .await
        .expect("networks of the own project");
    let net = &found["networks"][0];
    assert_eq!(
        net["project_id"].as_str(),
        own.project_id().as_deref(),
        "{found}"
    );
    let in_shared = shared
        .get(
            Service::Network,
            &format!(
                "networks?name={name}&project_id={}",
                shared.project_id().unwrap_or_default()
            ),
        )
        .await
        .expect("networks of the shared project");
    assert_eq!(
        in_shared["networks"].as_array().map(Vec::len),
        Some(0),
        "{in_shared}"
    );

    d.delete(K::Vpc, &id).await.expect("delete");
    wait_gone(&d, K::Vpc, &id).await;
    let after = own
        .get(Service::Network, &format!("networks?name={name}"))
        .await
        .expect("networks");
    assert_eq!(
        after["networks"].as_array().map(Vec::len),
        Some(0),
        "{after}"
    );
}

/// A restarted driver still knows what it made (its records under the state
/// directory) and carries on a delete it had begun: a server whose delete
/// was asked just before the restart is followed until Nova lets it go, and
/// its port deleted then — without the record the port would be left in the
/// project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_driver_lists_what_it_made_and_finishes_a_begun_delete() {
    use yunshu_openstack::cloud::{Cloud, Service};
    let state = tempfile::tempdir().expect("state dir");
    let config = || DriverConfig {
        state_dir: Some(state.path().to_path_buf()),
        ..config()
    };
    let log = EventLog::new(1024);
    let d = OpenStackDriver::open(config(), log.sink())
        .await
        .expect("open");
    let inv = d.inventory().await.expect("inventory");
    let host = inv.hosts.first().expect("a host");
    let pool = inv.pools.iter().find(|p| p.id == host.pool).expect("pool");
    let net_place = v1::Placement {
        zone: pool.zone.clone(),
        network_area: pool.network_area.clone(),
        ..Default::default()
    };
    let vm_place = v1::Placement {
        pool: pool.id.clone(),
        host: host.id.clone(),
        ..net_place.clone()
    };
    let run = format!("restart{}", std::process::id());
    let (vpc, subnet, vm) = (
        format!("{run}-vpc"),
        format!("{run}-subnet"),
        format!("{run}-vm"),
    );
    d.apply(&request(
        K::Vpc,
        &vpc,
        1,
        Spec::Vpc(v1::VpcSpec {
            cidr: "10.62.0.0/16".into(),
        }),
        net_place.clone(),
    ))
    .await
    .expect("vpc");
    d.apply(&request(
        K::Subnet,
        &subnet,
        1,
        Spec::Subnet(v1::SubnetSpec {
            vpc: vpc.clone(),
            cidr: "10.62.1.0/24".into(),
            gateway: String::new(),
        }),
        net_place.clone(),
    ))
    .await
    .expect("subnet");
    d.apply(&request(
        K::Vm,
        &vm,
        1,
        Spec::Vm(v1::VmSpec {
            arch: v1::Architecture::X8664 as i32,
            vcpu: 1,
            memory_mib: 512,
            system_disk: Some(v1::Disk {
                size_gib: 1,
                storage_class: String::new(),
            }),
            image: "fake-image".into(),
            nics: vec![v1::Nic {
                subnet: subnet.clone(),
                ip: String::new(),
            }],
            ..Default::default()
        }),
        vm_place,
    ))
    .await
    .expect("vm");
    wait_phase(&d, K::Vm, &vm, 1, v1::Phase::Running).await;

    // The server's delete is asked, then the driver stops before its
    // observer has seen Nova finish (stopped first, so no poll in flight
    // completes the delete behind the test's back).
    d.close().await;
    let deleting = d.delete(K::Vm, &vm).await.expect("delete");
    assert_eq!(
        deleting.map(|s| s.phase),
        Some(v1::Phase::Deleting as i32),
        "the delete is under way, not done"
    );
    drop(d);

    let t = Instant::now();
    let log = EventLog::new(1024);
    let d = OpenStackDriver::open(config(), log.sink())
        .await
        .expect("reopen");
    let listed: Vec<String> = d
        .list(None, None, 100)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    for id in [&vpc, &subnet, &vm] {
        assert!(
            listed.contains(id),
            "{id} not listed after the restart: {listed:?}"
        );
    }
    println!(
        "reopened with {} resources in {:?}",
        listed.len(),
        t.elapsed()
    );
    // The controller asks again (it does, every turn, until the resource is
    // gone): the begun delete is sent once more, in case it never went out.
    let again = d.delete(K::Vm, &vm).await.expect("delete again");
    assert!(
        again.as_ref().is_none_or(
            |s| s.phase == v1::Phase::Deleting as i32 || s.phase == v1::Phase::Deleted as i32
        ),
        "{again:?}"
    );
    let gone = wait_gone(&d, K::Vm, &vm).await;
    println!("the begun delete finished {gone:?} after the restart");
    let cloud = Cloud::connect(&config().tenant).await.expect("session");
    let ports = cloud
        .get(Service::Network, &format!("ports?name=ys-{vm}-0"))
        .await
        .expect("ports");
    assert_eq!(ports["ports"].as_array().map(Vec::len), Some(0), "{ports}");

    // What it made before the restart it also deletes after it.
    d.delete(K::Subnet, &subnet).await.expect("subnet delete");
    wait_gone(&d, K::Subnet, &subnet).await;
    d.delete(K::Vpc, &vpc).await.expect("vpc delete");
    wait_gone(&d, K::Vpc, &vpc).await;
    let nets = cloud
        .get(Service::Network, &format!("networks?name=ys-{vpc}"))
        .await
        .expect("networks");
    assert_eq!(nets["networks"].as_array().map(Vec::len), Some(0), "{nets}");
    assert!(
        !state
            .path()
            .join("res/vm")
            .join(format!("{vm}.json"))
            .exists(),
        "the record goes with the resource"
    );
}

/// A volume's storage class is the Cinder volume type the inventory offered
/// it as (`tests/openstack/bootstrap.py` adds type `ssd` besides the
/// default); a class the cloud does not offer is refused, and so is moving an
/// existing volume to another type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volumes_storage_class_is_its_cinder_type() {
    use yunshu_openstack::cloud::{Cloud, Service};
    let log = EventLog::new(1024);
    let d = OpenStackDriver::open(config(), log.sink())
        .await
        .expect("open");
    let inv = d.inventory().await.expect("inventory");
    let class = |name: &str| {
        inv.storage_classes
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no storage class for type {name}: {inv:#?}"))
            .clone()
    };
    let (ssd, default) = (class("ssd"), class("__DEFAULT__"));
    let place = v1::Placement {
        zone: ssd.zone.clone(),
        ..Default::default()
    };
    let volume = |storage_class: &str| {
        Spec::Volume(v1::VolumeSpec {
            size_gib: 1,
            storage_class: storage_class.to_owned(),
            ..Default::default()
        })
    };
    let id = format!("vtype{}", std::process::id());
    let unknown = d
        .apply(&request(
            K::Volume,
            &format!("{id}-x"),
            1,
            volume("nova-gold"),
            place.clone(),
        ))
        .await
        .expect_err("a class the cloud does not offer");
    assert_eq!(
        unknown.code(),
        yunshu_proto::tonic::Code::InvalidArgument,
        "{unknown:?}"
    );
    d.apply(&request(K::Volume, &id, 1, volume(&ssd.id), place.clone()))
        .await
        .expect("volume of class ssd");
    wait_phase(&d, K::Volume, &id, 1, v1::Phase::Running).await;
    let cloud = Cloud::connect(&config().tenant).await.expect("session");
    let found = cloud
        .get(Service::Volume, &format!("volumes/detail?name=ys-{id}"))
        .await
        .expect("volumes");
    assert_eq!(found["volumes"][0]["volume_type"], "ssd", "{found}");
    let retype = d
        .apply(&request(
            K::Volume,
            &id,
            2,
            volume(&default.id),
            place.clone(),
        ))
        .await
        .expect_err("retype refused");
    assert!(retype.message().contains("retype"), "{}", retype.message());
    d.delete(K::Volume, &id).await.expect("delete");
    wait_gone(&d, K::Volume, &id).await;
}
