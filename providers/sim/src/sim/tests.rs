//! Behaviour of the simulator driver: phases and events, the capacity rules it
//! enforces, fault injection, host failures, listing, scale, and one run over
//! gRPC through the SDK's `DriverService`.

use std::collections::HashMap;
use std::time::Instant;

use futures::StreamExt;
use yunshu_driver_sdk::EventLog;
use yunshu_proto::errors::{reason, reasons};
use yunshu_proto::tonic::Code;
use yunshu_proto::v1::resource_spec::Spec;

use super::*;
use crate::config::{HostStateConfig, HostTemplate};
use crate::rules::sim_reasons;

type Watch = tokio_stream::wrappers::ReceiverStream<Result<v1::WatchEvent, Status>>;

const ZONE: &str = "fsc";
const AREA: &str = "fsc-gov";
const NET_AREA: &str = "fsc-net";
const POOL: &str = "fsc-gov-x86_64";
const HOST: &str = "fsc-gov-x86_64-h0001";
const HOST2: &str = "fsc-gov-x86_64-h0002";
const ARM_HOST: &str = "fsc-gov-arm64-h0001";
/// 512 GiB − 16 GiB reserve in the demo.
const USABLE_MIB: u64 = 496 * 1024;
const GIB: u64 = 1024;

fn sim_with(delays: Delays) -> (Sim, EventLog) {
    let log = EventLog::new(10_000);
    let mut config = SimConfig::demo();
    config.delays = delays;
    (Sim::new(config, log.sink()).expect("demo builds"), log)
}

fn placement(host: &str) -> v1::Placement {
    let pool = host.rsplit_once("-h").map_or("", |(p, _)| p);
    let area = if pool.contains("-net-") {
        NET_AREA
    } else {
        AREA
    };
    v1::Placement {
        zone: ZONE.into(),
        network_area: area.into(),
        pool: pool.into(),
        host: host.into(),
    }
}

fn request(
    kind: v1::ResourceKind,
    id: &str,
    generation: u64,
    spec: Spec,
    placement: v1::Placement,
) -> v1::ApplyRequest {
    v1::ApplyRequest {
        kind: kind as i32,
        id: id.into(),
        generation,
        idempotency_key: format!("{id}@{generation}"),
        spec: Some(v1::ResourceSpec { spec: Some(spec) }),
        placement: Some(placement),
        tenant: "110101001".into(),
    }
}

fn vm_spec(vcpu: u32, memory_mib: u64) -> v1::VmSpec {
    v1::VmSpec {
        arch: v1::Architecture::X8664 as i32,
        vcpu,
        memory_mib,
        system_disk: Some(v1::Disk {
            size_gib: 40,
            storage_class: "fsc-standard".into(),
        }),
        image: "openEuler-22.03-LTS".into(),
        ..Default::default()
    }
}

fn vm(id: &str, generation: u64, host: &str, vcpu: u32, memory_mib: u64) -> v1::ApplyRequest {
    request(
        v1::ResourceKind::Vm,
        id,
        generation,
        Spec::Vm(vm_spec(vcpu, memory_mib)),
        placement(host),
    )
}

fn eip(id: &str, mbps: u32) -> v1::ApplyRequest {
    request(
        v1::ResourceKind::Eip,
        id,
        1,
        Spec::Eip(v1::EipSpec {
            bandwidth_mbps: mbps,
            bind_to: String::new(),
        }),
        v1::Placement {
            zone: ZONE.into(),
            network_area: NET_AREA.into(),
            ..Default::default()
        },
    )
}

fn plain(kind: v1::ResourceKind, id: &str, spec: Spec) -> v1::ApplyRequest {
    request(kind, id, 1, spec, v1::Placement::default())
}

fn vpc(id: &str, cidr: &str) -> v1::ApplyRequest {
    plain(
        v1::ResourceKind::Vpc,
        id,
        Spec::Vpc(v1::VpcSpec { cidr: cidr.into() }),
    )
}

fn subnet(id: &str, vpc: &str, cidr: &str) -> v1::ApplyRequest {
    plain(
        v1::ResourceKind::Subnet,
        id,
        Spec::Subnet(v1::SubnetSpec {
            vpc: vpc.into(),
            cidr: cidr.into(),
            gateway: String::new(),
        }),
    )
}

/// Asserts `status` has `code` and `reason`; returns its metadata.
fn refused(status: Status, code: Code, want: &str) -> HashMap<String, String> {
    assert_eq!(status.code(), code, "{status:?}");
    let info = reason(&status).expect("error carries ErrorInfo");
    assert_eq!(info.reason, want, "{status:?}");
    info.metadata
}

async fn next_event(watch: &mut Watch) -> v1::watch_event::Event {
    let item = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("an event within 5 s")
        .expect("stream open")
        .expect("not an error");
    item.event.expect("event set")
}

async fn next_resource(watch: &mut Watch) -> (v1::ChangeType, v1::ResourceState) {
    match next_event(watch).await {
        v1::watch_event::Event::Resource(r) => (
            v1::ChangeType::try_from(r.r#type).expect("known change"),
            r.state.expect("state"),
        ),
        other => panic!("expected a resource event, got {other:?}"),
    }
}

/// Events in the log after `after` (waits until none arrives for 50 ms).
async fn drain(log: &EventLog, after: &str) -> Vec<v1::watch_event::Event> {
    let mut w = log.watch(after).expect("watch");
    let mut out = Vec::new();
    while let Ok(Some(Ok(e))) = tokio::time::timeout(Duration::from_millis(50), w.next()).await {
        out.extend(e.event);
    }
    out
}

fn phase(state: &v1::ResourceState) -> v1::Phase {
    v1::Phase::try_from(state.phase).expect("known phase")
}

#[tokio::test]
async fn info_says_simulator() {
    let (sim, _) = sim_with(Delays::zero());
    let info = sim.info();
    assert_eq!(info.name, "yunshu-sim");
    assert!(info.simulator);
    assert_eq!(info.kinds.len(), 11);
    assert_eq!(info.architectures, [1, 2, 3]);
}

#[tokio::test]
async fn apply_and_delete_move_through_phases_with_events_in_order() {
    let (sim, log) = sim_with(Delays::uniform(30));
    let mut watch = log.watch("").expect("watch");

    let accepted = sim
        .apply(&vm("vm-1", 1, HOST, 2, 4 * GIB))
        .await
        .expect("accepted");
    assert_eq!(phase(&accepted), v1::Phase::Provisioning);
    assert_eq!(accepted.observed_generation, 0);
    assert!(accepted.message.contains("simulator"));
    assert_eq!(
        accepted.outputs.get("simulated").map(String::as_str),
        Some("true")
    );
    assert!(accepted.outputs.contains_key("private_ip"));

    let (change, state) = next_resource(&mut watch).await;
    assert_eq!(
        (change, phase(&state)),
        (v1::ChangeType::Created, v1::Phase::Provisioning)
    );
    let (change, state) = next_resource(&mut watch).await;
    assert_eq!(
        (change, phase(&state)),
        (v1::ChangeType::Updated, v1::Phase::Running)
    );
    assert_eq!(state.observed_generation, 1);
    let got = sim
        .get(v1::ResourceKind::Vm, "vm-1")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(phase(&got), v1::Phase::Running);

    let deleting = sim
        .delete(v1::ResourceKind::Vm, "vm-1")
        .await
        .expect("delete")
        .expect("existed");
    assert_eq!(phase(&deleting), v1::Phase::Deleting);
    let again = sim
        .delete(v1::ResourceKind::Vm, "vm-1")
        .await
        .expect("idempotent")
        .expect("still there");
    assert_eq!(phase(&again), v1::Phase::Deleting);
    let (change, state) = next_resource(&mut watch).await;
    assert_eq!(
        (change, phase(&state)),
        (v1::ChangeType::Updated, v1::Phase::Deleting)
    );
    let (change, state) = next_resource(&mut watch).await;
    assert_eq!(
        (change, phase(&state)),
        (v1::ChangeType::Deleted, v1::Phase::Deleted)
    );
    assert!(
        sim.get(v1::ResourceKind::Vm, "vm-1")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        sim.delete(v1::ResourceKind::Vm, "vm-1")
            .await
            .expect("gone is ok")
            .is_none()
    );
    assert_eq!(sim.host_usage(HOST).expect("host").memory_used_mib, 0);
}

#[tokio::test]
async fn zero_delay_transitions_happen_within_the_call() {
    let (sim, log) = sim_with(Delays::zero());
    let state = sim
        .apply(&vm("vm-1", 1, HOST, 2, 4 * GIB))
        .await
        .expect("accepted");
    assert_eq!(phase(&state), v1::Phase::Running);
    let gone = sim
        .delete(v1::ResourceKind::Vm, "vm-1")
        .await
        .expect("delete")
        .expect("existed");
    assert_eq!(phase(&gone), v1::Phase::Deleted);
    let kinds: Vec<(i32, i32)> = drain(&log, "0")
        .await
        .into_iter()
        .map(|e| match e {
            v1::watch_event::Event::Resource(r) => (r.r#type, r.state.map_or(0, |s| s.phase)),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    use v1::{ChangeType as C, Phase as P};
    assert_eq!(
        kinds,
        [
            (C::Created as i32, P::Provisioning as i32),
            (C::Updated as i32, P::Running as i32),
            (C::Updated as i32, P::Deleting as i32),
            (C::Deleted as i32, P::Deleted as i32),
        ]
    );
}

/// 002 art. 13, 14: a server asked to be powered off reports STOPPED at that
/// generation with its allocation kept, and runs again when the flag clears.
#[tokio::test]
async fn a_stopped_spec_powers_the_vm_off_and_a_later_generation_on() {
    let (sim, _log) = sim_with(Delays::zero());
    sim.apply(&vm("vm-1", 1, HOST, 2, 4 * GIB))
        .await
        .expect("running");
    let mut off = vm("vm-1", 2, HOST, 2, 4 * GIB);
    if let Some(v1::ResourceSpec {
        spec: Some(Spec::Vm(spec)),
    }) = off.spec.as_mut()
    {
        spec.stopped = true;
    }
    let state = sim.apply(&off).await.expect("powered off");
    assert_eq!(phase(&state), v1::Phase::Stopped);
    assert_eq!(state.observed_generation, 2);
    let on = sim
        .apply(&vm("vm-1", 3, HOST, 2, 4 * GIB))
        .await
        .expect("on again");
    assert_eq!(phase(&on), v1::Phase::Running);
    assert_eq!(on.observed_generation, 3);
}

#[tokio::test]
async fn a_newer_apply_wins_over_the_old_timer() {
    let (sim, log) = sim_with(Delays::uniform(60));
    let mut watch = log.watch("").expect("watch");
    sim.apply(&vm("vm-1", 1, HOST, 2, 4 * GIB))
        .await
        .expect("gen 1");
    let resized = sim
        .apply(&vm("vm-1", 2, HOST, 4, 8 * GIB))
        .await
        .expect("gen 2");
    assert_eq!((resized.generation, resized.observed_generation), (2, 0));
    let (c, s) = next_resource(&mut watch).await;
    assert_eq!((c, s.generation), (v1::ChangeType::Created, 1));
    let (c, s) = next_resource(&mut watch).await;
    assert_eq!(
        (c, s.generation, phase(&s)),
        (v1::ChangeType::Updated, 2, v1::Phase::Provisioning)
    );
    let (c, s) = next_resource(&mut watch).await;
    assert_eq!(
        (c, s.generation, s.observed_generation, phase(&s)),
        (v1::ChangeType::Updated, 2, 2, v1::Phase::Running)
    );
    // Nothing else: the generation-1 timer did not complete anything.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(drain(&log, "3").await.is_empty());

    // Delete while provisioning: the provisioning timer must not resurrect it.
    sim.apply(&vm("vm-2", 1, HOST, 2, 4 * GIB))
        .await
        .expect("vm-2");
    sim.delete(v1::ResourceKind::Vm, "vm-2")
        .await
        .expect("delete");
    let err = sim
        .apply(&vm("vm-2", 2, HOST, 2, 4 * GIB))
        .await
        .expect_err("deleting");
    refused(err, Code::Aborted, sim_reasons::RESOURCE_DELETING);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        sim.get(v1::ResourceKind::Vm, "vm-2")
            .await
            .expect("get")
            .is_none()
    );
    let phases: Vec<i32> = drain(&log, "3")
        .await
        .into_iter()
        .filter_map(|e| match e {
            v1::watch_event::Event::Resource(r) => r.state.map(|s| s.phase),
            _ => None,
        })
        .collect();
    use v1::Phase as P;
    assert_eq!(
        phases,
        [
            P::Provisioning as i32,
            P::Deleting as i32,
            P::Deleted as i32
        ]
    );
    assert_eq!(sim.host_usage(HOST).expect("host").memory_used_mib, 8 * GIB);
}

#[tokio::test]
async fn memory_overcommit_is_refused_and_changes_nothing() {
    let (sim, log) = sim_with(Delays::zero());
    sim.apply(&vm("big", 1, HOST, 8, 400 * GIB))
        .await
        .expect("fits");
    let before = sim.host_usage(HOST).expect("host");
    let cursor = drain(&log, "0").await.len().to_string();
    let err = sim
        .apply(&vm("too-big", 1, HOST, 8, 100 * GIB))
        .await
        .expect_err("overcommit");
    let md = refused(
        err,
        Code::FailedPrecondition,
        reasons::HOST_MEMORY_EXHAUSTED,
    );
    assert_eq!(md["host"], HOST);
    assert_eq!(md["free_mib"], (USABLE_MIB - 400 * GIB).to_string());
    assert_eq!(md["requested_mib"], (100 * GIB).to_string());
    assert_eq!(sim.host_usage(HOST).expect("host"), before);
    assert!(
        sim.get(v1::ResourceKind::Vm, "too-big")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        drain(&log, &cursor).await.is_empty(),
        "a refusal emits nothing"
    );
    // Exactly the rest fits.
    sim.apply(&vm("rest", 1, HOST, 8, USABLE_MIB - 400 * GIB))
        .await
        .expect("exact fit");
    assert_eq!(
        sim.host_usage(HOST).expect("host").memory_used_mib,
        USABLE_MIB
    );
}

#[tokio::test]
async fn vcpu_arch_placement_and_host_rules() {
    let (sim, _) = sim_with(Delays::zero());
    // 64 cores × ratio 4.
    sim.apply(&vm("a", 1, HOST, 200, 4 * GIB))
        .await
        .expect("fits");
    let md = refused(
        sim.apply(&vm("b", 1, HOST, 57, 4 * GIB))
            .await
            .expect_err("vcpu"),
        Code::FailedPrecondition,
        reasons::HOST_VCPU_EXHAUSTED,
    );
    assert_eq!(
        (md["free_vcpu"].as_str(), md["requested_vcpu"].as_str()),
        ("56", "57")
    );

    refused(
        sim.apply(&vm("c", 1, ARM_HOST, 2, 4 * GIB))
            .await
            .expect_err("arch"),
        Code::FailedPrecondition,
        reasons::ARCH_MISMATCH,
    );
    let mut unknown_host = vm("d", 1, HOST, 2, GIB);
    if let Some(p) = unknown_host.placement.as_mut() {
        p.host = "nowhere".into();
    }
    refused(
        sim.apply(&unknown_host).await.expect_err("unknown host"),
        Code::FailedPrecondition,
        reasons::PLACEMENT_INVALID,
    );
    let mut wrong_pool = vm("e", 1, HOST, 2, GIB);
    if let Some(p) = wrong_pool.placement.as_mut() {
        p.pool = "fsc-gov-c86".into();
    }
    refused(
        sim.apply(&wrong_pool).await.expect_err("host not in pool"),
        Code::FailedPrecondition,
        reasons::PLACEMENT_INVALID,
    );
    let mut wrong_zone = vm("f", 1, HOST, 2, GIB);
    if let Some(p) = wrong_zone.placement.as_mut() {
        p.zone = "zwc".into();
    }
    refused(
        sim.apply(&wrong_zone)
            .await
            .expect_err("area of another zone"),
        Code::FailedPrecondition,
        reasons::PLACEMENT_INVALID,
    );
    let mut no_host = vm("g", 1, HOST, 2, GIB);
    if let Some(p) = no_host.placement.as_mut() {
        p.host.clear();
    }
    refused(
        sim.apply(&no_host).await.expect_err("host required"),
        Code::FailedPrecondition,
        reasons::PLACEMENT_INVALID,
    );
    let mut disk_elsewhere = vm("h", 1, HOST, 2, GIB);
    if let Some(Spec::Vm(v)) = disk_elsewhere.spec.as_mut().and_then(|s| s.spec.as_mut()) {
        v.system_disk = Some(v1::Disk {
            size_gib: 40,
            storage_class: "zwc-standard".into(),
        });
    }
    refused(
        sim.apply(&disk_elsewhere)
            .await
            .expect_err("storage class of another zone"),
        Code::FailedPrecondition,
        reasons::PLACEMENT_INVALID,
    );

    // Bare metal takes the whole host.
    let bm = |id: &str, host: &str| {
        request(
            v1::ResourceKind::BareMetal,
            id,
            1,
            Spec::BareMetal(v1::BareMetalSpec {
                stopped: false,
                arch: v1::Architecture::X8664 as i32,
                model: crate::config::DEMO_MODEL_X86_64.into(),
                image: "Kylin-V10-SP3".into(),
                nics: vec![],
            }),
            placement(host),
        )
    };
    refused(
        sim.apply(&bm("bm-1", HOST))
            .await
            .expect_err("host has VMs"),
        Code::FailedPrecondition,
        reasons::HOST_MEMORY_EXHAUSTED,
    );
    sim.apply(&bm("bm-2", HOST2)).await.expect("empty host");
    refused(
        sim.apply(&vm("i", 1, HOST2, 1, 1))
            .await
            .expect_err("bare-metal host is full"),
        Code::FailedPrecondition,
        reasons::HOST_MEMORY_EXHAUSTED,
    );
}

#[tokio::test]
async fn resize_rechecks_without_its_own_old_allocation() {
    let (sim, _) = sim_with(Delays::zero());
    sim.apply(&vm("vm-1", 1, HOST, 4, 300 * GIB))
        .await
        .expect("gen 1");
    // 480 GiB fits only if the old 300 GiB is not counted twice.
    sim.apply(&vm("vm-1", 2, HOST, 8, 480 * GIB))
        .await
        .expect("grow");
    assert_eq!(
        sim.host_usage(HOST).expect("host").memory_used_mib,
        480 * GIB
    );
    assert_eq!(sim.host_usage(HOST).expect("host").vcpu_used, 8);
    let err = sim
        .apply(&vm("vm-1", 3, HOST, 8, 500 * GIB))
        .await
        .expect_err("over");
    refused(
        err,
        Code::FailedPrecondition,
        reasons::HOST_MEMORY_EXHAUSTED,
    );
    let held = sim
        .get(v1::ResourceKind::Vm, "vm-1")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(held.generation, 2, "the refused generation is not taken");
    assert_eq!(
        sim.host_usage(HOST).expect("host").memory_used_mib,
        480 * GIB
    );
    // Moving to another host releases the first.
    sim.apply(&vm("vm-1", 3, HOST2, 8, 100 * GIB))
        .await
        .expect("move");
    assert_eq!(sim.host_usage(HOST).expect("host").memory_used_mib, 0);
    assert_eq!(
        sim.host_usage(HOST2).expect("host").memory_used_mib,
        100 * GIB
    );
    // Stale generations are refused.
    refused(
        sim.apply(&vm("vm-1", 2, HOST2, 8, 100 * GIB))
            .await
            .expect_err("stale"),
        Code::FailedPrecondition,
        reasons::STALE_GENERATION,
    );
}

#[tokio::test]
async fn delete_releases_capacity() {
    let (sim, _) = sim_with(Delays::uniform(20));
    sim.apply(&vm("a", 1, HOST, 4, 300 * GIB)).await.expect("a");
    refused(
        sim.apply(&vm("b", 1, HOST, 4, 300 * GIB))
            .await
            .expect_err("full"),
        Code::FailedPrecondition,
        reasons::HOST_MEMORY_EXHAUSTED,
    );
    sim.delete(v1::ResourceKind::Vm, "a").await.expect("delete");
    // Still held while DELETING, like a real VM shutting down.
    assert_eq!(
        sim.host_usage(HOST).expect("host").memory_used_mib,
        300 * GIB
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(sim.host_usage(HOST).expect("host").memory_used_mib, 0);
    assert_eq!(
        sim.storage_usage("fsc-standard").expect("class").used_gib,
        0
    );
    sim.apply(&vm("b", 1, HOST, 4, 300 * GIB))
        .await
        .expect("fits now");
    assert_eq!(
        sim.storage_usage("fsc-standard").expect("class").used_gib,
        40
    );
}

#[tokio::test]
async fn storage_ip_pool_and_bandwidth_limits() {
    let (sim, _) = sim_with(Delays::zero());
    let volume = |id: &str, size_gib: u64, class: &str| {
        plain(
            v1::ResourceKind::Volume,
            id,
            Spec::Volume(v1::VolumeSpec {
                size_gib,
                storage_class: class.into(),
                attach_to: String::new(),
                restore_from: String::new(),
            }),
        )
    };
    sim.apply(&volume("v1", 30_000, "fsc-high"))
        .await
        .expect("fits");
    let md = refused(
        sim.apply(&volume("v2", 30_000, "fsc-high"))
            .await
            .expect_err("full"),
        Code::ResourceExhausted,
        reasons::STORAGE_EXHAUSTED,
    );
    assert_eq!(md["free_gib"], "20000");
    refused(
        sim.apply(&volume("v3", 10, "no-such-class"))
            .await
            .expect_err("unknown class"),
        Code::InvalidArgument,
        reasons::INVALID_SPEC,
    );

    // Bandwidth: 10,000 Mbps per area in the demo.
    refused(
        sim.apply(&eip("wide", 10_001))
            .await
            .expect_err("bandwidth"),
        Code::ResourceExhausted,
        reasons::BANDWIDTH_EXHAUSTED,
    );
    // The demo's 互联网区 pool is a /25: 128 addresses.
    let mut addresses = std::collections::HashSet::new();
    for i in 0..128 {
        let state = sim
            .apply(&eip(&format!("eip-{i}"), 1))
            .await
            .expect("address left");
        assert!(
            addresses.insert(state.outputs["public_ip"].clone()),
            "unique"
        );
    }
    refused(
        sim.apply(&eip("one-more", 1))
            .await
            .expect_err("pool empty"),
        Code::ResourceExhausted,
        reasons::IP_POOL_EXHAUSTED,
    );
    sim.delete(v1::ResourceKind::Eip, "eip-7")
        .await
        .expect("delete");
    sim.apply(&eip("one-more", 1))
        .await
        .expect("address released");
    let mut no_area = eip("no-area", 1);
    no_area.placement = None;
    refused(
        sim.apply(&no_area)
            .await
            .expect_err("eip needs zone and area"),
        Code::FailedPrecondition,
        reasons::PLACEMENT_INVALID,
    );
}

#[tokio::test]
async fn invalid_specs_are_refused() {
    let (sim, _) = sim_with(Delays::zero());
    for bad in [
        vm("zero-cpu", 1, HOST, 0, GIB),
        vm("zero-mem", 1, HOST, 1, 0),
        vpc("bad-cidr", "10.0.0.0/33"),
        vpc("host-bits", "10.0.0.1/16"),
        plain(
            v1::ResourceKind::SecurityGroup,
            "sg",
            Spec::SecurityGroup(v1::SecurityGroupSpec {
                rules: vec![v1::SecurityRule {
                    direction: v1::Direction::Ingress as i32,
                    protocol: v1::Protocol::Tcp as i32,
                    port_min: 443,
                    port_max: 80,
                    remote_cidr: "0.0.0.0/0".into(),
                    action: v1::RuleAction::Allow as i32,
                    priority: 1,
                    remote_group: String::new(),
                }],
            }),
        ),
        plain(
            v1::ResourceKind::LoadBalancer,
            "lb",
            Spec::LoadBalancer(v1::LoadBalancerSpec {
                subnet: String::new(),
                listeners: vec![v1::Listener {
                    protocol: v1::Protocol::Http as i32,
                    port: 0,
                    ..Default::default()
                }],
            }),
        ),
        plain(
            v1::ResourceKind::Vm,
            "kind-mismatch",
            Spec::Vpc(v1::VpcSpec {
                cidr: "10.0.0.0/16".into(),
            }),
        ),
    ] {
        let err = sim.apply(&bad).await.expect_err(&bad.id);
        refused(err, Code::InvalidArgument, reasons::INVALID_SPEC);
    }
    assert_eq!(sim.resource_count(), 0);
}

#[tokio::test]
async fn networks_addresses_and_dependencies() {
    let (sim, _) = sim_with(Delays::zero());
    // Overlapping VPC CIDRs across tenants are allowed (003 §3.2.2.12).
    sim.apply(&vpc("vpc-a", "10.0.0.0/16")).await.expect("a");
    let mut other_tenant = vpc("vpc-b", "10.0.0.0/16");
    other_tenant.tenant = "110101002".into();
    sim.apply(&other_tenant).await.expect("b overlaps a");

    let sn = sim
        .apply(&subnet("sn-a", "vpc-a", "10.0.1.0/24"))
        .await
        .expect("subnet");
    assert_eq!(sn.outputs["gateway"], "10.0.1.1");
    refused(
        sim.apply(&subnet("outside", "vpc-a", "10.1.0.0/24"))
            .await
            .expect_err("outside"),
        Code::InvalidArgument,
        reasons::INVALID_SPEC,
    );
    refused(
        sim.apply(&subnet("overlap", "vpc-a", "10.0.1.128/25"))
            .await
            .expect_err("overlap"),
        Code::InvalidArgument,
        reasons::INVALID_SPEC,
    );
    sim.apply(&subnet("sn-b", "vpc-b", "10.0.1.0/24"))
        .await
        .expect("same CIDR, other VPC");
    refused(
        sim.apply(&subnet("orphan", "vpc-x", "10.0.1.0/24"))
            .await
            .expect_err("no vpc"),
        Code::FailedPrecondition,
        reasons::DEPENDENCY_NOT_FOUND,
    );

    let with_nic = |id: &str, subnet: &str, ip: &str| {
        let mut spec = vm_spec(1, GIB);
        spec.nics = vec![v1::Nic {
            subnet: subnet.into(),
            ip: ip.into(),
        }];
        request(v1::ResourceKind::Vm, id, 1, Spec::Vm(spec), placement(HOST))
    };
    let a = sim
        .apply(&with_nic("vm-a", "sn-a", ""))
        .await
        .expect("vm-a");
    assert_eq!(a.outputs["private_ip"], "10.0.1.2");
    let b = sim
        .apply(&with_nic("vm-b", "sn-a", "10.0.1.50"))
        .await
        .expect("fixed");
    assert_eq!(b.outputs["private_ip"], "10.0.1.50");
    refused(
        sim.apply(&with_nic("vm-c", "sn-a", "10.0.1.50"))
            .await
            .expect_err("taken"),
        Code::FailedPrecondition,
        sim_reasons::IP_IN_USE,
    );
    refused(
        sim.apply(&with_nic("vm-d", "sn-a", "10.0.2.5"))
            .await
            .expect_err("outside subnet"),
        Code::InvalidArgument,
        reasons::INVALID_SPEC,
    );
    refused(
        sim.apply(&with_nic("vm-e", "sn-none", ""))
            .await
            .expect_err("no subnet"),
        Code::FailedPrecondition,
        reasons::DEPENDENCY_NOT_FOUND,
    );
    // A resize keeps the address.
    let mut grown = with_nic("vm-a", "sn-a", "");
    grown.generation = 2;
    let grown = sim.apply(&grown).await.expect("resize");
    assert_eq!(grown.outputs["private_ip"], "10.0.1.2");
    // Without NIC: a synthetic 10.x address.
    let bare = sim
        .apply(&vm("vm-f", 1, HOST, 1, GIB))
        .await
        .expect("no nic");
    assert!(bare.outputs["private_ip"].starts_with("10."));

    let lb = plain(
        v1::ResourceKind::LoadBalancer,
        "lb-1",
        Spec::LoadBalancer(v1::LoadBalancerSpec {
            subnet: "sn-a".into(),
            listeners: vec![v1::Listener {
                protocol: v1::Protocol::Https as i32,
                port: 443,
                algorithm: v1::LbAlgorithm::WeightedRoundRobin as i32,
                members: vec![v1::Member {
                    target: "vm-a".into(),
                    port: 8443,
                    weight: 10,
                }],
                ..Default::default()
            }],
        }),
    );
    let lb = sim.apply(&lb).await.expect("lb");
    assert_eq!(lb.outputs["vip"], "10.0.1.3");

    // In use: neither the subnet nor its VPC can go.
    refused(
        sim.delete(v1::ResourceKind::Subnet, "sn-a")
            .await
            .expect_err("in use"),
        Code::FailedPrecondition,
        reasons::RESOURCE_IN_USE,
    );
    refused(
        sim.delete(v1::ResourceKind::Vpc, "vpc-a")
            .await
            .expect_err("has subnets"),
        Code::FailedPrecondition,
        reasons::RESOURCE_IN_USE,
    );
    // The LB names vm-a as a member: it goes first.
    sim.delete(v1::ResourceKind::LoadBalancer, "lb-1")
        .await
        .expect("lb");
    for id in ["vm-a", "vm-b"] {
        sim.delete(v1::ResourceKind::Vm, id).await.expect("vm");
    }
    sim.delete(v1::ResourceKind::Subnet, "sn-a")
        .await
        .expect("now free");
    sim.delete(v1::ResourceKind::Vpc, "vpc-a")
        .await
        .expect("now empty");
    // A subnet's CIDR cannot change.
    let mut changed = subnet("sn-b", "vpc-b", "10.0.2.0/24");
    changed.generation = 2;
    refused(
        sim.apply(&changed).await.expect_err("immutable"),
        Code::InvalidArgument,
        reasons::INVALID_SPEC,
    );
}

#[tokio::test]
async fn fault_injection() {
    let (sim, _) = sim_with(Delays::zero());
    sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    for _ in 0..20 {
        refused(
            sim.apply(&vm("vm-1", 1, HOST, 1, GIB))
                .await
                .expect_err("rate 1.0"),
            Code::Unavailable,
            reasons::INJECTED_FAULT,
        );
        refused(
            sim.get(v1::ResourceKind::Vm, "vm-1")
                .await
                .expect_err("rate 1.0"),
            Code::Unavailable,
            reasons::INJECTED_FAULT,
        );
        refused(
            sim.delete(v1::ResourceKind::Vm, "vm-1")
                .await
                .expect_err("rate 1.0"),
            Code::Unavailable,
            reasons::INJECTED_FAULT,
        );
    }
    assert!(yunshu_proto::errors::is_retryable(Code::Unavailable));
    assert_eq!(sim.resource_count(), 0, "a failed call changes nothing");
    sim.list(None, None, 10)
        .await
        .expect("list is not failed at random");

    sim.set_faults(Faults::default());
    for i in 0..200 {
        sim.apply(&vm(&format!("vm-{i}"), 1, HOST, 1, GIB))
            .await
            .expect("rate 0.0");
    }

    sim.set_faults(Faults {
        error_rate: 0.5,
        ..Faults::default()
    });
    let mut failed = 0;
    for _ in 0..1000 {
        if sim.get(v1::ResourceKind::Vm, "vm-0").await.is_err() {
            failed += 1;
        }
    }
    assert!(
        (350..=650).contains(&failed),
        "{failed} of 1000 failed at rate 0.5"
    );

    sim.set_faults(Faults {
        added_latency: Duration::from_millis(40),
        ..Faults::default()
    });
    let started = Instant::now();
    sim.list(None, None, 1).await.expect("list");
    assert!(started.elapsed() >= Duration::from_millis(40));
}

#[tokio::test]
async fn dropped_watch_streams() {
    let (sim, log) = sim_with(Delays::zero());
    let mut watch = log.watch("").expect("watch");
    sim.set_faults(Faults {
        drop_watch_every: Some(Duration::from_millis(30)),
        ..Faults::default()
    });
    let item = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("dropped within 5 s")
        .expect("an item");
    assert_eq!(item.expect_err("dropped").code(), Code::Unavailable);
    sim.set_faults(Faults::default());
}

#[tokio::test]
async fn host_down_refuses_placement_stops_vms_and_emits_events() {
    let (sim, log) = sim_with(Delays::zero());
    sim.apply(&vm("vm-1", 1, HOST, 2, 4 * GIB))
        .await
        .expect("vm");
    let revision = sim.inventory().await.expect("inventory").revision;
    let mut watch = log.watch("").expect("watch");

    sim.set_host_state(HOST, v1::HostState::Down).expect("down");
    match next_event(&mut watch).await {
        v1::watch_event::Event::Host(h) => {
            assert_eq!(
                (h.host.as_str(), h.state),
                (HOST, v1::HostState::Down as i32)
            );
        }
        other => panic!("expected HostChanged, got {other:?}"),
    }
    match next_event(&mut watch).await {
        v1::watch_event::Event::Inventory(i) => assert_eq!(i.revision, revision + 1),
        other => panic!("expected InventoryChanged, got {other:?}"),
    }
    let (change, state) = next_resource(&mut watch).await;
    assert_eq!(
        (change, phase(&state)),
        (v1::ChangeType::Updated, v1::Phase::Stopped)
    );

    let inventory = sim.inventory().await.expect("inventory");
    assert_eq!(inventory.revision, revision + 1);
    let host = inventory
        .hosts
        .iter()
        .find(|h| h.id == HOST)
        .expect("listed");
    assert_eq!(host.state, v1::HostState::Down as i32);
    let md = refused(
        sim.apply(&vm("vm-2", 1, HOST, 2, 4 * GIB))
            .await
            .expect_err("down"),
        Code::FailedPrecondition,
        reasons::HOST_DOWN,
    );
    assert_eq!(md["state"], "HOST_STATE_DOWN");

    // Same state again: no event, no revision bump.
    sim.set_host_state(HOST, v1::HostState::Down)
        .expect("no-op");
    sim.set_host_state(HOST, v1::HostState::Up).expect("up");
    let _ = next_event(&mut watch).await;
    match next_event(&mut watch).await {
        v1::watch_event::Event::Inventory(i) => assert_eq!(i.revision, revision + 2),
        other => panic!("expected InventoryChanged, got {other:?}"),
    }
    let (_, state) = next_resource(&mut watch).await;
    assert_eq!(phase(&state), v1::Phase::Running);
    sim.apply(&vm("vm-2", 1, HOST, 2, 4 * GIB))
        .await
        .expect("up again");

    assert!(matches!(
        sim.set_host_state("nowhere", v1::HostState::Down),
        Err(SimError::UnknownHost(_))
    ));
    assert!(matches!(
        sim.set_host_state(HOST, v1::HostState::Unspecified),
        Err(SimError::InvalidHostState)
    ));
}

#[tokio::test]
async fn list_is_ordered_by_kind_then_id_and_pages() {
    let (sim, _) = sim_with(Delays::zero());
    for id in ["c", "a", "b"] {
        sim.apply(&vpc(id, "10.0.0.0/16")).await.expect("vpc");
        sim.apply(&vm(id, 1, HOST, 1, GIB)).await.expect("vm");
    }
    let all = sim.list(None, None, 100).await.expect("list");
    let keys: Vec<(i32, &str)> = all.iter().map(|s| (s.kind, s.id.as_str())).collect();
    assert_eq!(
        keys,
        [(1, "a"), (1, "b"), (1, "c"), (4, "a"), (4, "b"), (4, "c")]
    );

    let page = sim
        .list(None, Some((v1::ResourceKind::Vm, "b".into())), 2)
        .await
        .expect("page");
    let keys: Vec<(i32, &str)> = page.iter().map(|s| (s.kind, s.id.as_str())).collect();
    assert_eq!(keys, [(1, "c"), (4, "a")]);

    let vpcs = sim
        .list(
            Some(v1::ResourceKind::Vpc),
            Some((v1::ResourceKind::Vm, "z".into())),
            10,
        )
        .await
        .expect("kind filter");
    assert_eq!(vpcs.len(), 3);
    let after_vpcs = sim
        .list(
            Some(v1::ResourceKind::Vm),
            Some((v1::ResourceKind::Vpc, "a".into())),
            10,
        )
        .await
        .expect("cursor past the kind");
    assert!(after_vpcs.is_empty());
    let tail = sim
        .list(
            Some(v1::ResourceKind::Vpc),
            Some((v1::ResourceKind::Vpc, "a".into())),
            10,
        )
        .await
        .expect("tail");
    assert_eq!(
        tail.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["b", "c"]
    );
}

/// 10,000 hosts and 100,000 VMs applied with zero delay: indexes and per-host
/// counters keep every Apply O(log n).
#[tokio::test]
async fn scale_ten_thousand_hosts_hundred_thousand_resources() {
    const HOSTS: u32 = 10_000;
    const VMS: usize = 100_000;
    let mut config = SimConfig::demo();
    config.delays = Delays::zero();
    config.pools.truncate(1);
    config.pools[0].hosts = vec![HostTemplate {
        count: HOSTS,
        id_prefix: Some("scale-".into()),
        cores: 32,
        memory_mib: 128 * GIB,
        reserved_memory_mib: 8 * GIB,
        state: HostStateConfig::Up,
    }];
    let log = EventLog::new(1_000);
    let started = Instant::now();
    let sim = Sim::new(config, log.sink()).expect("builds");
    let built = started.elapsed();
    let host_ids: Vec<String> = (1..=HOSTS).map(|n| format!("scale-{n:05}")).collect();
    let started = Instant::now();
    for i in 0..VMS {
        let host = &host_ids[i % host_ids.len()];
        let mut req = vm(&format!("vm-{i:06}"), 1, host, 2, 4 * GIB);
        if let Some(p) = req.placement.as_mut() {
            p.pool = POOL.into();
        }
        if let Some(Spec::Vm(v)) = req.spec.as_mut().and_then(|s| s.spec.as_mut()) {
            v.system_disk = None;
        }
        sim.apply(&req).await.expect("fits");
    }
    let applied = started.elapsed();
    assert_eq!(sim.resource_count(), VMS);
    let usage = sim.host_usage("scale-00001").expect("host");
    assert_eq!(usage.resources, VMS / HOSTS as usize);
    assert_eq!(
        usage.memory_used_mib,
        4 * GIB * (VMS / HOSTS as usize) as u64
    );
    let started = Instant::now();
    let page = sim
        .list(None, Some((v1::ResourceKind::Vm, "vm-050000".into())), 1000)
        .await
        .expect("list");
    assert_eq!(page.first().map(|s| s.id.as_str()), Some("vm-050001"));
    let inventory = sim.inventory().await.expect("inventory");
    assert_eq!(inventory.hosts.len(), HOSTS as usize);
    eprintln!(
        "simulator scale: built {HOSTS} hosts in {built:?}, applied {VMS} VMs in {applied:?}, list+inventory in {:?}",
        started.elapsed()
    );
}

/// The simulator behind the SDK's gRPC service, over plaintext on loopback.
#[tokio::test]
async fn end_to_end_over_grpc() {
    use yunshu_proto::tonic::transport::Server;
    use yunshu_proto::v1::driver_client::DriverClient;

    let log = EventLog::new(10_000);
    let mut config = SimConfig::demo();
    config.delays = Delays::uniform(20);
    let sim = Sim::new(config, log.sink()).expect("demo");
    let service =
        yunshu_driver_sdk::DriverService::new(Arc::new(sim.clone()), log, "sim").into_server();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let mut client = DriverClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");

    let info = client
        .get_info(v1::GetInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    assert_eq!(
        (info.name.as_str(), info.simulator, info.provider.as_str()),
        ("yunshu-sim", true, "sim")
    );
    let inventory = client
        .get_inventory(v1::GetInventoryRequest {})
        .await
        .expect("inventory")
        .into_inner();
    assert_eq!(inventory.hosts.len(), 36);

    let mut events = client
        .watch(v1::WatchRequest {
            cursor: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = client
        .apply(vm("vm-1", 1, HOST, 2, 4 * GIB))
        .await
        .expect("apply")
        .into_inner();
    assert!(first.created && first.changed);
    let again = client
        .apply(vm("vm-1", 1, HOST, 2, 4 * GIB))
        .await
        .expect("same gen")
        .into_inner();
    assert!(!again.created && !again.changed);
    let mut phases = Vec::new();
    while phases.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.message())
            .await
            .expect("in time")
            .expect("ok")
            .expect("open");
        if let Some(v1::watch_event::Event::Resource(r)) = event.event {
            phases.push(r.state.map_or(0, |s| s.phase));
        }
    }
    assert_eq!(
        phases,
        [v1::Phase::Provisioning as i32, v1::Phase::Running as i32]
    );

    let err = client
        .apply(vm("vm-2", 1, HOST, 2, 500 * GIB))
        .await
        .expect_err("overcommit");
    refused(
        err,
        Code::FailedPrecondition,
        reasons::HOST_MEMORY_EXHAUSTED,
    );

    let got = client
        .get(v1::GetRequest {
            kind: v1::ResourceKind::Vm as i32,
            id: "vm-1".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.phase, v1::Phase::Running as i32);

    for i in 0..5 {
        client
            .apply(vpc(&format!("vpc-{i}"), "10.0.0.0/16"))
            .await
            .expect("vpc");
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list(v1::ListRequest {
                kind: 0,
                page_size: 2,
                page_token: token.clone(),
            })
            .await
            .expect("list")
            .into_inner();
        seen.extend(page.items.into_iter().map(|s| s.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ["vm-1", "vpc-0", "vpc-1", "vpc-2", "vpc-3", "vpc-4"]);

    let deleted = client
        .delete(v1::DeleteRequest {
            kind: v1::ResourceKind::Vm as i32,
            id: "vm-1".into(),
        })
        .await
        .expect("delete")
        .into_inner();
    assert!(deleted.existed);
    let missing = client
        .get(v1::GetRequest {
            kind: v1::ResourceKind::Vm as i32,
            id: "nothing".into(),
        })
        .await
        .expect_err("not found");
    assert_eq!(missing.code(), Code::NotFound);
    server.abort();
}

#[tokio::test]
async fn added_hosts_show_in_the_inventory_and_take_vms() {
    let (sim, log) = sim_with(Delays::zero());
    let before = sim.inventory().await.expect("inventory");
    let mut watch = log.watch("").expect("watch");

    let added = sim.add_hosts(POOL, 2, 32, 256 * GIB).expect("added");
    assert_eq!(added, ["fsc-gov-x86_64-h0004", "fsc-gov-x86_64-h0005"]);
    for host in &added {
        match next_event(&mut watch).await {
            v1::watch_event::Event::Host(h) => {
                assert_eq!((&h.host, h.state), (host, v1::HostState::Up as i32));
            }
            other => panic!("expected HostChanged, got {other:?}"),
        }
    }
    match next_event(&mut watch).await {
        v1::watch_event::Event::Inventory(i) => assert_eq!(i.revision, before.revision + 1),
        other => panic!("expected InventoryChanged, got {other:?}"),
    }
    let after = sim.inventory().await.expect("inventory");
    assert_eq!(after.hosts.len(), before.hosts.len() + 2);
    let new = after
        .hosts
        .iter()
        .find(|h| h.id == added[0])
        .expect("new host listed");
    assert_eq!(
        (new.pool.as_str(), new.cores, new.memory_mib),
        (POOL, 32, 256 * GIB)
    );
    // The new host takes a VM like any other.
    sim.apply(&vm("vm-new", 1, &added[1], 4, 8 * GIB))
        .await
        .expect("placed on a new host");

    assert!(matches!(
        sim.add_hosts("nowhere", 1, 8, GIB),
        Err(SimError::UnknownReference { .. })
    ));
    assert!(matches!(
        sim.add_hosts(POOL, 1, 0, GIB),
        Err(SimError::Invalid { .. })
    ));
    assert_eq!(
        sim.add_hosts(POOL, 0, 8, GIB).expect("nothing"),
        Vec::<String>::new()
    );
    assert_eq!(
        sim.inventory().await.expect("inventory").revision,
        before.revision + 1,
        "an empty addition changes nothing"
    );
}

// ------------------------------------------------------------ reference graph

const HOST3: &str = "fsc-gov-x86_64-h0003";

fn sg(id: &str, generation: u64, remote_group: &str) -> v1::ApplyRequest {
    let rule = v1::SecurityRule {
        direction: v1::Direction::Ingress as i32,
        protocol: v1::Protocol::Tcp as i32,
        port_min: 22,
        port_max: 22,
        remote_cidr: if remote_group.is_empty() {
            "10.0.0.0/8".into()
        } else {
            String::new()
        },
        action: v1::RuleAction::Allow as i32,
        priority: 100,
        remote_group: remote_group.into(),
    };
    request(
        v1::ResourceKind::SecurityGroup,
        id,
        generation,
        Spec::SecurityGroup(v1::SecurityGroupSpec { rules: vec![rule] }),
        v1::Placement::default(),
    )
}

fn nics(subnet: Option<&str>) -> Vec<v1::Nic> {
    subnet
        .map(|s| v1::Nic {
            subnet: s.into(),
            ip: String::new(),
        })
        .into_iter()
        .collect()
}

fn vm_ref(id: &str, generation: u64, subnet: Option<&str>, groups: &[&str]) -> v1::ApplyRequest {
    let mut spec = vm_spec(1, GIB);
    spec.nics = nics(subnet);
    spec.security_groups = groups.iter().map(|g| (*g).to_owned()).collect();
    request(
        v1::ResourceKind::Vm,
        id,
        generation,
        Spec::Vm(spec),
        placement(HOST),
    )
}

fn bare_metal(
    id: &str,
    generation: u64,
    host: &str,
    model: &str,
    subnet: Option<&str>,
) -> v1::ApplyRequest {
    request(
        v1::ResourceKind::BareMetal,
        id,
        generation,
        Spec::BareMetal(v1::BareMetalSpec {
            stopped: false,
            arch: v1::Architecture::X8664 as i32,
            model: model.into(),
            image: "Kylin-V10-SP3".into(),
            nics: nics(subnet),
        }),
        placement(host),
    )
}

fn volume(id: &str, generation: u64, attach_to: &str) -> v1::ApplyRequest {
    request(
        v1::ResourceKind::Volume,
        id,
        generation,
        Spec::Volume(v1::VolumeSpec {
            size_gib: 10,
            storage_class: "fsc-standard".into(),
            attach_to: attach_to.into(),
            restore_from: String::new(),
        }),
        v1::Placement {
            zone: ZONE.into(),
            ..Default::default()
        },
    )
}

fn bound_eip(id: &str, generation: u64, bind_to: &str) -> v1::ApplyRequest {
    let mut req = eip(id, 10);
    req.generation = generation;
    req.idempotency_key = format!("{id}@{generation}");
    if let Some(Spec::Eip(e)) = req.spec.as_mut().and_then(|s| s.spec.as_mut()) {
        e.bind_to = bind_to.into();
    }
    req
}

fn load_balancer(id: &str, generation: u64, subnet: &str, members: &[&str]) -> v1::ApplyRequest {
    request(
        v1::ResourceKind::LoadBalancer,
        id,
        generation,
        Spec::LoadBalancer(v1::LoadBalancerSpec {
            subnet: subnet.into(),
            listeners: vec![v1::Listener {
                protocol: v1::Protocol::Http as i32,
                port: 80,
                algorithm: v1::LbAlgorithm::RoundRobin as i32,
                members: members
                    .iter()
                    .map(|m| v1::Member {
                        target: (*m).into(),
                        port: 8080,
                        weight: 1,
                    })
                    .collect(),
                ..Default::default()
            }],
        }),
        v1::Placement::default(),
    )
}

fn waf(id: &str, generation: u64, targets: &[&str]) -> v1::ApplyRequest {
    request(
        v1::ResourceKind::WafPolicy,
        id,
        generation,
        Spec::WafPolicy(v1::WafPolicySpec {
            rule_sets: vec!["owasp-crs-4/sqli".into()],
            mode: v1::WafMode::Block as i32,
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            ..Default::default()
        }),
        v1::Placement::default(),
    )
}

fn backup(id: &str, generation: u64, target: &str) -> v1::ApplyRequest {
    request(
        v1::ResourceKind::BackupPolicy,
        id,
        generation,
        Spec::BackupPolicy(v1::BackupPolicySpec {
            target: target.into(),
            r#type: v1::BackupType::Incremental as i32,
            schedule: "0 2 * * *".into(),
            retention_days: 30,
        }),
        v1::Placement::default(),
    )
}

fn snapshot(id: &str, generation: u64, source: &str) -> v1::ApplyRequest {
    request(
        v1::ResourceKind::Snapshot,
        id,
        generation,
        Spec::Snapshot(v1::SnapshotSpec {
            source: source.into(),
        }),
        v1::Placement::default(),
    )
}

fn kind_of(req: &v1::ApplyRequest) -> v1::ResourceKind {
    v1::ResourceKind::try_from(req.kind).expect("known kind")
}

/// One edge of the graph: `referrer(generation, Some(target))` names the
/// target; `referrer(generation, None)` is the same resource without that
/// reference (for a required reference, naming the spare instead), or `None`
/// when the reference cannot be dropped (a subnet's VPC): then the referrer is
/// deleted to free the target.
struct Edge {
    field: &'static str,
    /// Dependencies of the target, then the target (last), then a spare.
    setup: Vec<v1::ApplyRequest>,
    target: (v1::ResourceKind, &'static str),
    referrer: Referrer,
}

/// Builds the referring resource at a generation, naming the target or not.
type Referrer = Box<dyn Fn(u64, Option<&str>) -> Option<v1::ApplyRequest>>;

fn edges() -> Vec<Edge> {
    let net = || {
        vec![
            vpc("vpc-1", "10.0.0.0/16"),
            subnet("sn-1", "vpc-1", "10.0.1.0/24"),
        ]
    };
    let bm_target = || bare_metal("bm-t", 1, HOST2, "", None);
    vec![
        Edge {
            field: "subnet.vpc",
            setup: vec![vpc("vpc-1", "10.0.0.0/16")],
            target: (v1::ResourceKind::Vpc, "vpc-1"),
            referrer: Box::new(|g, t| {
                t.map(|t| {
                    let mut r = subnet("sn-r", t, "10.0.1.0/24");
                    r.generation = g;
                    r
                })
            }),
        },
        Edge {
            field: "vm.nics[0].subnet",
            setup: net(),
            target: (v1::ResourceKind::Subnet, "sn-1"),
            referrer: Box::new(|g, t| Some(vm_ref("vm-r", g, t, &[]))),
        },
        Edge {
            field: "vm.security_groups[0]",
            setup: vec![sg("sg-1", 1, "")],
            target: (v1::ResourceKind::SecurityGroup, "sg-1"),
            referrer: Box::new(|g, t| {
                Some(vm_ref("vm-r", g, None, &t.into_iter().collect::<Vec<_>>()))
            }),
        },
        Edge {
            field: "security_group.rules[0].remote_group",
            setup: vec![sg("sg-1", 1, "")],
            target: (v1::ResourceKind::SecurityGroup, "sg-1"),
            referrer: Box::new(|g, t| Some(sg("sg-r", g, t.unwrap_or("")))),
        },
        Edge {
            field: "bare_metal.nics[0].subnet",
            setup: net(),
            target: (v1::ResourceKind::Subnet, "sn-1"),
            referrer: Box::new(|g, t| Some(bare_metal("bm-r", g, HOST3, "", t))),
        },
        Edge {
            field: "load_balancer.subnet",
            setup: net(),
            target: (v1::ResourceKind::Subnet, "sn-1"),
            referrer: Box::new(|g, t| Some(load_balancer("lb-r", g, t.unwrap_or(""), &[]))),
        },
        Edge {
            field: "volume.attach_to",
            setup: vec![vm("vm-t", 1, HOST, 1, GIB)],
            target: (v1::ResourceKind::Vm, "vm-t"),
            referrer: Box::new(|g, t| Some(volume("vol-r", g, t.unwrap_or("")))),
        },
        Edge {
            field: "volume.attach_to",
            setup: vec![bm_target()],
            target: (v1::ResourceKind::BareMetal, "bm-t"),
            referrer: Box::new(|g, t| Some(volume("vol-r", g, t.unwrap_or("")))),
        },
        Edge {
            field: "eip.bind_to",
            setup: vec![vm("vm-t", 1, HOST, 1, GIB)],
            target: (v1::ResourceKind::Vm, "vm-t"),
            referrer: Box::new(|g, t| Some(bound_eip("eip-r", g, t.unwrap_or("")))),
        },
        Edge {
            field: "eip.bind_to",
            setup: vec![bm_target()],
            target: (v1::ResourceKind::BareMetal, "bm-t"),
            referrer: Box::new(|g, t| Some(bound_eip("eip-r", g, t.unwrap_or("")))),
        },
        Edge {
            field: "eip.bind_to",
            setup: vec![load_balancer("lb-t", 1, "", &[])],
            target: (v1::ResourceKind::LoadBalancer, "lb-t"),
            referrer: Box::new(|g, t| Some(bound_eip("eip-r", g, t.unwrap_or("")))),
        },
        Edge {
            field: "load_balancer.listeners[0].members[0].target",
            setup: vec![vm("vm-t", 1, HOST, 1, GIB)],
            target: (v1::ResourceKind::Vm, "vm-t"),
            referrer: Box::new(|g, t| {
                Some(load_balancer(
                    "lb-r",
                    g,
                    "",
                    &t.into_iter().collect::<Vec<_>>(),
                ))
            }),
        },
        Edge {
            field: "load_balancer.listeners[0].members[0].target",
            setup: vec![bm_target()],
            target: (v1::ResourceKind::BareMetal, "bm-t"),
            referrer: Box::new(|g, t| {
                Some(load_balancer(
                    "lb-r",
                    g,
                    "",
                    &t.into_iter().collect::<Vec<_>>(),
                ))
            }),
        },
        Edge {
            field: "waf_policy.targets[0]",
            setup: vec![eip("eip-t", 10)],
            target: (v1::ResourceKind::Eip, "eip-t"),
            referrer: Box::new(|g, t| Some(waf("waf-r", g, &t.into_iter().collect::<Vec<_>>()))),
        },
        Edge {
            field: "waf_policy.targets[0]",
            setup: vec![load_balancer("lb-t", 1, "", &[])],
            target: (v1::ResourceKind::LoadBalancer, "lb-t"),
            referrer: Box::new(|g, t| Some(waf("waf-r", g, &t.into_iter().collect::<Vec<_>>()))),
        },
        Edge {
            field: "backup_policy.target",
            setup: vec![vm("vm-t", 1, HOST, 1, GIB), volume("spare", 1, "")],
            target: (v1::ResourceKind::Vm, "vm-t"),
            referrer: Box::new(|g, t| Some(backup("bp-r", g, t.unwrap_or("spare")))),
        },
        Edge {
            field: "backup_policy.target",
            setup: vec![bm_target(), volume("spare", 1, "")],
            target: (v1::ResourceKind::BareMetal, "bm-t"),
            referrer: Box::new(|g, t| Some(backup("bp-r", g, t.unwrap_or("spare")))),
        },
        Edge {
            field: "backup_policy.target",
            setup: vec![volume("vol-t", 1, ""), volume("spare", 1, "")],
            target: (v1::ResourceKind::Volume, "vol-t"),
            referrer: Box::new(|g, t| Some(backup("bp-r", g, t.unwrap_or("spare")))),
        },
        Edge {
            field: "snapshot.source",
            setup: vec![volume("vol-t", 1, ""), volume("spare", 1, "")],
            target: (v1::ResourceKind::Volume, "vol-t"),
            referrer: Box::new(|g, t| Some(snapshot("snap-r", g, t.unwrap_or("spare")))),
        },
        Edge {
            field: "snapshot.source",
            setup: vec![vm("vm-t", 1, HOST, 1, GIB), volume("spare", 1, "")],
            target: (v1::ResourceKind::Vm, "vm-t"),
            referrer: Box::new(|g, t| Some(snapshot("snap-r", g, t.unwrap_or("spare")))),
        },
    ]
}

#[tokio::test]
async fn every_reference_is_checked_held_and_freed() {
    for edge in edges() {
        let what = format!("{} -> {:?}", edge.field, edge.target.0);
        let (sim, log) = sim_with(Delays::zero());
        let referrer = |g, t| (edge.referrer)(g, t).expect("a referrer naming the target");

        // Missing: refused, and nothing changes (no resource, no event).
        let err = sim
            .apply(&referrer(1, Some("missing")))
            .await
            .expect_err(&what);
        let md = refused(err, Code::FailedPrecondition, reasons::DEPENDENCY_NOT_FOUND);
        assert_eq!(
            (md["field"].as_str(), md["id"].as_str()),
            (edge.field, "missing"),
            "{what}"
        );
        assert_eq!(sim.resource_count(), 0, "{what}");
        assert!(drain(&log, "").await.is_empty(), "{what}: no event");

        for req in &edge.setup {
            sim.apply(req)
                .await
                .unwrap_or_else(|e| panic!("{what}: setup {}: {e:?}", req.id));
        }
        let (kind, target) = edge.target;
        let named = referrer(1, Some(target));
        let (by_kind, by) = (kind_of(&named), named.id.clone());
        sim.apply(&named)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        let held = sim.resource_count();

        // Named: the target cannot go, and stays as it was.
        let err = sim.delete(kind, target).await.expect_err(&what);
        let md = refused(err, Code::FailedPrecondition, reasons::RESOURCE_IN_USE);
        assert_eq!(md["used_by"], by, "{what}");
        assert_eq!(md["field"], edge.field, "{what}");
        let state = sim.get(kind, target).await.expect("get").expect(&what);
        assert_eq!(phase(&state), v1::Phase::Running, "{what}");
        assert_eq!(sim.resource_count(), held, "{what}");

        // The referrer's own update drops the reference (or, where it cannot,
        // the referrer goes): the target is free.
        match (edge.referrer)(2, None) {
            Some(without) => {
                sim.apply(&without)
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
            }
            None => {
                sim.delete(by_kind, &by).await.expect(&what);
            }
        }
        let gone = sim.delete(kind, target).await.expect(&what).expect(&what);
        assert_eq!(phase(&gone), v1::Phase::Deleted, "{what}");
    }
}

#[tokio::test]
async fn a_reference_to_the_wrong_kind_is_an_invalid_spec() {
    let (sim, _) = sim_with(Delays::zero());
    sim.apply(&vpc("vpc-1", "10.0.0.0/16")).await.expect("vpc");
    sim.apply(&subnet("sn-1", "vpc-1", "10.0.1.0/24"))
        .await
        .expect("subnet");
    sim.apply(&eip("eip-1", 10)).await.expect("eip");
    sim.apply(&vm("vm-1", 1, HOST, 1, GIB)).await.expect("vm");
    sim.apply(&volume("vol-1", 1, "")).await.expect("volume");
    let held = sim.resource_count();
    for (bad, field) in [
        (subnet("sn-2", "sn-1", "10.0.2.0/24"), "subnet.vpc"),
        (vm_ref("vm-2", 1, Some("vpc-1"), &[]), "vm.nics[0].subnet"),
        (vm_ref("vm-2", 1, None, &["sn-1"]), "vm.security_groups[0]"),
        (volume("vol-2", 1, "eip-1"), "volume.attach_to"),
        (bound_eip("eip-2", 1, "vol-1"), "eip.bind_to"),
        (
            load_balancer("lb-2", 1, "vm-1", &[]),
            "load_balancer.subnet",
        ),
        (waf("waf-2", 1, &["vm-1"]), "waf_policy.targets[0]"),
        (backup("bp-2", 1, "eip-1"), "backup_policy.target"),
        (snapshot("snap-2", 1, "eip-1"), "snapshot.source"),
    ] {
        let err = sim.apply(&bad).await.expect_err(field);
        let md = refused(err, Code::InvalidArgument, reasons::INVALID_SPEC);
        assert_eq!(md["field"], field);
    }
    assert_eq!(sim.resource_count(), held, "refusals change nothing");
}

#[tokio::test]
async fn a_resource_being_deleted_is_no_dependency_and_blocks_nothing() {
    let (sim, _) = sim_with(Delays::zero());
    sim.apply(&vpc("vpc-1", "10.0.0.0/16")).await.expect("vpc");
    sim.apply(&subnet("sn-1", "vpc-1", "10.0.1.0/24"))
        .await
        .expect("subnet");
    sim.apply(&vm_ref("vm-1", 1, Some("sn-1"), &[]))
        .await
        .expect("vm");
    sim.apply(&volume("vol-1", 1, "vm-1"))
        .await
        .expect("volume");
    sim.apply(&snapshot("snap-1", 1, "vol-1"))
        .await
        .expect("snapshot");
    // Deletions now take a while: DELETING is visible.
    sim.set_delays(Delays::uniform(60_000));

    // A deleting snapshot does not hold its volume; a deleting volume is no
    // attachment for a new snapshot.
    sim.delete(v1::ResourceKind::Snapshot, "snap-1")
        .await
        .expect("snapshot deleting");
    sim.delete(v1::ResourceKind::Volume, "vol-1")
        .await
        .expect("volume free once its snapshot is deleting");
    let md = refused(
        sim.apply(&snapshot("snap-2", 1, "vol-1"))
            .await
            .expect_err("deleting source"),
        Code::FailedPrecondition,
        reasons::DEPENDENCY_NOT_FOUND,
    );
    assert_eq!(md["id"], "vol-1");

    // The VM is free too (its volume is deleting), but its address stays held
    // until it is gone, so the subnet still waits, naming it.
    sim.delete(v1::ResourceKind::Vm, "vm-1")
        .await
        .expect("vm deleting");
    let md = refused(
        sim.delete(v1::ResourceKind::Subnet, "sn-1")
            .await
            .expect_err("address still held"),
        Code::FailedPrecondition,
        reasons::RESOURCE_IN_USE,
    );
    assert_eq!(
        (md["used_by"].as_str(), md["in_use"].as_str()),
        ("vm-1", "1")
    );
}

#[tokio::test]
async fn a_deleting_subnet_still_holds_its_vpc() {
    let (sim, _) = sim_with(Delays::zero());
    sim.apply(&vpc("vpc-1", "10.0.0.0/16")).await.expect("vpc");
    sim.apply(&subnet("sn-1", "vpc-1", "10.0.1.0/24"))
        .await
        .expect("subnet");
    sim.set_delays(Delays::uniform(60_000));
    sim.delete(v1::ResourceKind::Subnet, "sn-1")
        .await
        .expect("subnet deleting");
    let md = refused(
        sim.delete(v1::ResourceKind::Vpc, "vpc-1")
            .await
            .expect_err("subnet registered until gone"),
        Code::FailedPrecondition,
        reasons::RESOURCE_IN_USE,
    );
    assert_eq!(md["used_by"], "sn-1");
}

#[tokio::test]
async fn references_follow_updates_and_count_every_referrer() {
    let (sim, _) = sim_with(Delays::zero());
    for id in ["vm-a", "vm-b"] {
        sim.apply(&vm(id, 1, HOST, 1, GIB)).await.expect("vm");
    }
    sim.apply(&load_balancer("lb-1", 1, "", &["vm-a"]))
        .await
        .expect("lb");
    sim.apply(&load_balancer("lb-2", 1, "", &["vm-a", "vm-b"]))
        .await
        .expect("lb");
    // lb-1 moves to vm-b: vm-a is still named by lb-2.
    sim.apply(&load_balancer("lb-1", 2, "", &["vm-b"]))
        .await
        .expect("lb-1 gen 2");
    let md = refused(
        sim.delete(v1::ResourceKind::Vm, "vm-a")
            .await
            .expect_err("lb-2"),
        Code::FailedPrecondition,
        reasons::RESOURCE_IN_USE,
    );
    assert_eq!(md["used_by"], "lb-2");
    sim.apply(&load_balancer("lb-2", 2, "", &["vm-b"]))
        .await
        .expect("lb-2 gen 2");
    sim.delete(v1::ResourceKind::Vm, "vm-a")
        .await
        .expect("free now");
    // vm-b is named twice; deleting one referrer is not enough.
    sim.delete(v1::ResourceKind::LoadBalancer, "lb-1")
        .await
        .expect("lb-1");
    let md = refused(
        sim.delete(v1::ResourceKind::Vm, "vm-b")
            .await
            .expect_err("lb-2"),
        Code::FailedPrecondition,
        reasons::RESOURCE_IN_USE,
    );
    assert_eq!(md["used_by"], "lb-2");
    // A refused update keeps the old references.
    refused(
        sim.apply(&load_balancer("lb-2", 3, "", &["vm-x"]))
            .await
            .expect_err("missing member"),
        Code::FailedPrecondition,
        reasons::DEPENDENCY_NOT_FOUND,
    );
    let held = sim
        .get(v1::ResourceKind::LoadBalancer, "lb-2")
        .await
        .expect("get")
        .expect("lb-2");
    assert_eq!(held.generation, 2);
    refused(
        sim.delete(v1::ResourceKind::Vm, "vm-b")
            .await
            .expect_err("still lb-2's member"),
        Code::FailedPrecondition,
        reasons::RESOURCE_IN_USE,
    );
}

#[tokio::test]
async fn a_security_group_may_name_itself() {
    let (sim, _) = sim_with(Delays::zero());
    sim.apply(&sg("sg-self", 1, "sg-self"))
        .await
        .expect("a rule on the group's own members");
    sim.delete(v1::ResourceKind::SecurityGroup, "sg-self")
        .await
        .expect("its own rule does not hold it")
        .expect("existed");
    // A rule names exactly one remote.
    let mut both = sg("sg-both", 1, "sg-x");
    if let Some(Spec::SecurityGroup(g)) = both.spec.as_mut().and_then(|s| s.spec.as_mut()) {
        g.rules[0].remote_cidr = "10.0.0.0/8".into();
    }
    refused(
        sim.apply(&both).await.expect_err("two remotes"),
        Code::InvalidArgument,
        reasons::INVALID_SPEC,
    );
    let mut neither = sg("sg-none", 1, "");
    if let Some(Spec::SecurityGroup(g)) = neither.spec.as_mut().and_then(|s| s.spec.as_mut()) {
        g.rules[0].remote_cidr.clear();
    }
    refused(
        sim.apply(&neither).await.expect_err("no remote"),
        Code::InvalidArgument,
        reasons::INVALID_SPEC,
    );
}

#[tokio::test]
async fn bare_metal_gets_its_model_and_shares_a_pool_with_vms() {
    let (sim, _) = sim_with(Delays::zero());
    let inventory = sim.inventory().await.expect("inventory");
    let model = |host: &str| {
        inventory
            .hosts
            .iter()
            .find(|h| h.id == host)
            .map(|h| h.model.clone())
    };
    assert_eq!(
        model(HOST).as_deref(),
        Some(crate::config::DEMO_MODEL_X86_64)
    );
    assert_eq!(
        model(ARM_HOST).as_deref(),
        Some(crate::config::DEMO_MODEL_ARM64)
    );
    assert!(inventory.hosts.iter().all(|h| !h.model.is_empty()));

    sim.apply(&vm("vm-1", 1, HOST, 2, 4 * GIB))
        .await
        .expect("a VM on the first host");
    let md = refused(
        sim.apply(&bare_metal(
            "bm-arm",
            1,
            HOST2,
            crate::config::DEMO_MODEL_ARM64,
            None,
        ))
        .await
        .expect_err("an x86 host is no TaiShan"),
        Code::FailedPrecondition,
        reasons::MODEL_UNAVAILABLE,
    );
    assert_eq!(
        (
            md["host"].as_str(),
            md["host_model"].as_str(),
            md["requested_model"].as_str()
        ),
        (
            HOST2,
            crate::config::DEMO_MODEL_X86_64,
            crate::config::DEMO_MODEL_ARM64
        )
    );
    assert_eq!(sim.host_usage(HOST2).expect("host").resources, 0);
    sim.apply(&bare_metal(
        "bm-1",
        1,
        HOST2,
        crate::config::DEMO_MODEL_X86_64,
        None,
    ))
    .await
    .expect("the model the host is");
    sim.apply(&bare_metal("bm-2", 1, HOST3, "", None))
        .await
        .expect("no model asked: whatever the host is");
    // The same pool: one VM host, two whole bare-metal hosts.
    for host in [HOST, HOST2, HOST3] {
        assert_eq!(sim.host_usage(host).expect("host").resources, 1, "{host}");
    }
    assert_eq!(
        sim.host_usage(HOST2).expect("host").memory_used_mib,
        USABLE_MIB
    );
    // A new generation is held to the same rule.
    refused(
        sim.apply(&bare_metal("bm-2", 2, HOST3, "R4900 G3", None))
            .await
            .expect_err("another model"),
        Code::FailedPrecondition,
        reasons::MODEL_UNAVAILABLE,
    );
}
