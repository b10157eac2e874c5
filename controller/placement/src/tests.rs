//! Tests of the whole crate through `Index`: hard rules, strategies and
//! tie-breaks, all-or-nothing, reasons, reports, and a randomized run (fixed
//! seed) that checks the index's invariants after every step.

use std::collections::{BTreeSet, HashMap, HashSet};

use yunshu_domain::{
    Architecture, ErrorCode, ProviderId, ResourceId,
    ids::{AntiAffinityGroup, HostId, NetworkAreaId, PoolId, StorageClassId, ZoneId},
    provider::{HostState, NetworkAreaKind},
};

use crate::*;

const GIB: u64 = 1024;

fn provider() -> ProviderId {
    ProviderId::new("sim").expect("id")
}

fn key(zone: &str, area: &str, arch: Architecture) -> PoolKey {
    PoolKey {
        provider: provider(),
        zone: ZoneId::new(zone).expect("id"),
        network_area: NetworkAreaId::new(area).expect("id"),
        arch,
    }
}

fn pool_spec(id: &str, key: &PoolKey, ratio: u32) -> PoolSpec {
    PoolSpec {
        id: PoolId::new(id).expect("id"),
        key: key.clone(),
        area_kind: NetworkAreaKind::GovExtranet,
        vcpu_ratio: ratio,
    }
}

fn pref(id: &str) -> PoolRef {
    PoolRef {
        provider: provider(),
        pool: PoolId::new(id).expect("id"),
    }
}

fn host_spec(pool: &str, id: &str, cores: u32, memory_gib: u64) -> HostSpec {
    HostSpec {
        provider: provider(),
        pool: PoolId::new(pool).expect("id"),
        id: HostId::new(id).expect("id"),
        cores,
        memory_mib: memory_gib * GIB,
        reserved_memory_mib: 0,
        state: HostState::Ready,
        model: None,
    }
}

fn href(id: &str) -> HostRef {
    HostRef {
        provider: provider(),
        host: HostId::new(id).expect("id"),
    }
}

fn rid(s: &str) -> ResourceId {
    ResourceId::new(s).expect("id")
}

fn req(alloc: &str, key: &PoolKey, vcpu: u32, memory_gib: u64) -> VmRequest {
    VmRequest {
        alloc: rid(alloc),
        key: key.clone(),
        shape: VmShape::new(vcpu, memory_gib * GIB),
    }
}

fn x86() -> PoolKey {
    key("a", "extranet", Architecture::X86_64)
}

/// One x86 pool "p" (ratio 4) with the given (host id, cores, memory GiB).
fn index_with(hosts: &[(&str, u32, u64)]) -> Index {
    let mut idx = Index::new();
    idx.upsert_pool(pool_spec("p", &x86(), 4)).expect("pool");
    for (id, cores, mem) in hosts {
        idx.upsert_host(host_spec("p", id, *cores, *mem))
            .expect("host");
    }
    idx
}

/// Places `request` and checks the host it lands on.
fn check(idx: &mut Index, request: &VmRequest, strategy: Strategy, expected_host: &str) {
    let p = idx.place(request, strategy).expect("placed");
    assert_eq!(p.host.as_str(), expected_host, "{strategy:?} {request:?}");
    check_consistent(idx);
}

fn reason(idx: &mut Index, request: &VmRequest) -> Reason {
    let before = idx.clone();
    let err = idx
        .place(request, Strategy::Spread)
        .expect_err("should not fit");
    assert_eq!(*idx, before, "a failed placement changed the index");
    *err.reason
}

#[test]
fn spread_takes_most_free_memory_and_pack_least_that_fits() {
    let mut idx = index_with(&[("h1", 32, 64), ("h2", 32, 256), ("h3", 32, 128)]);
    check(&mut idx, &req("vm1", &x86(), 2, 16), Strategy::Spread, "h2");
    check(&mut idx, &req("vm2", &x86(), 2, 16), Strategy::Pack, "h1");
    // h1 has 48 GiB left, h3 128, h2 240: pack for 64 skips h1.
    check(&mut idx, &req("vm3", &x86(), 2, 64), Strategy::Pack, "h3");
    check(&mut idx, &req("vm4", &x86(), 2, 64), Strategy::Spread, "h2");
}

#[test]
fn ties_go_to_the_smaller_host_id_whatever_the_insertion_order() {
    // Inserted out of order: ranks are renumbered.
    let mut idx = index_with(&[("h3", 16, 64), ("h1", 16, 64), ("h2", 16, 64)]);
    check(&mut idx, &req("vm1", &x86(), 1, 8), Strategy::Spread, "h1");
    check(&mut idx, &req("vm2", &x86(), 1, 8), Strategy::Spread, "h2");
    check(&mut idx, &req("vm3", &x86(), 1, 8), Strategy::Spread, "h3");
    // All at 56 GiB free now: pack's walk meets h3 first but must answer h1.
    check(&mut idx, &req("vm4", &x86(), 1, 8), Strategy::Pack, "h1");
    check(&mut idx, &req("vm5", &x86(), 1, 8), Strategy::Pack, "h1");
    // Same answers from a fresh index built in another order.
    let mut again = index_with(&[("h1", 16, 64), ("h2", 16, 64), ("h3", 16, 64)]);
    for (i, s) in ["h1", "h2", "h3"].iter().enumerate() {
        check(
            &mut again,
            &req(&format!("vm{i}"), &x86(), 1, 8),
            Strategy::Spread,
            s,
        );
    }
}

/// Seed 003 §3.2.1.1 (内存不超分), §4.1.2.2 (4) (按内存不复用方式分配), §2.4.1 (12).
#[test]
fn memory_is_never_overcommitted() {
    let mut idx = index_with(&[("h1", 64, 64)]);
    check(&mut idx, &req("vm1", &x86(), 1, 32), Strategy::Spread, "h1");
    check(&mut idx, &req("vm2", &x86(), 1, 32), Strategy::Spread, "h1");
    let r = reason(
        &mut idx,
        &VmRequest {
            alloc: rid("vm3"),
            key: x86(),
            shape: VmShape::new(1, 1),
        },
    );
    assert_eq!(r.code(), "HOST_MEMORY_INSUFFICIENT");
    // The reserve is never given to VMs.
    let mut idx = Index::new();
    idx.upsert_pool(pool_spec("p", &x86(), 4)).expect("pool");
    let mut h = host_spec("p", "h1", 64, 64);
    h.reserved_memory_mib = 8 * GIB;
    idx.upsert_host(h).expect("host");
    assert_eq!(
        reason(&mut idx, &req("vm1", &x86(), 1, 57)).code(),
        "HOST_MEMORY_INSUFFICIENT"
    );
    check(&mut idx, &req("vm1", &x86(), 1, 56), Strategy::Spread, "h1");
}

#[test]
fn vcpu_stays_within_ratio_times_cores() {
    let mut idx = Index::new();
    idx.upsert_pool(pool_spec("p", &x86(), 2)).expect("pool");
    idx.upsert_host(host_spec("p", "h1", 8, 512)).expect("host");
    check(&mut idx, &req("vm1", &x86(), 8, 8), Strategy::Spread, "h1");
    check(&mut idx, &req("vm2", &x86(), 8, 8), Strategy::Spread, "h1");
    let r = reason(&mut idx, &req("vm3", &x86(), 1, 8));
    assert_eq!(r.code(), "HOST_VCPU_RATIO_EXHAUSTED");
    let en = r.message_en();
    assert!(en.contains("1 of 1 hosts have 8 GiB memory free but none has 1 vCPU free at 2 vCPU per core; largest free 0 vCPU"), "{en}");
    // Raising the ratio to 4 frees 16 vCPU without touching allocations.
    idx.upsert_pool(pool_spec("p", &x86(), 4)).expect("pool");
    check(&mut idx, &req("vm3", &x86(), 16, 8), Strategy::Spread, "h1");
    assert!(idx.upsert_pool(pool_spec("p", &x86(), 5)).is_err());
    assert!(idx.upsert_pool(pool_spec("p", &x86(), 0)).is_err());
}

#[test]
fn arch_zone_and_area_must_match() {
    let mut idx = index_with(&[("h1", 64, 512)]);
    let arm = key("a", "extranet", Architecture::Arm64);
    idx.upsert_pool(pool_spec("c", &key("a", "extranet", Architecture::C86), 4))
        .expect("pool");
    let r = reason(&mut idx, &req("vm1", &arm, 1, 1));
    assert_eq!(r.code(), "NO_POOL_MATCHES");
    assert_eq!(
        r.message_en(),
        "no arm64 pool in network area extranet, zone a (provider sim); pools there are x86_64, c86"
    );
    assert!(
        r.message_zh().contains("仅有 x86_64、c86 资源池"),
        "{}",
        r.message_zh()
    );
    let other_zone = key("b", "extranet", Architecture::X86_64);
    let r = reason(&mut idx, &req("vm1", &other_zone, 1, 1));
    assert!(
        r.message_en().ends_with("there is no pool at all there"),
        "{}",
        r.message_en()
    );
    let other_area = key("a", "internet", Architecture::X86_64);
    assert_eq!(
        reason(&mut idx, &req("vm1", &other_area, 1, 1)).code(),
        "NO_POOL_MATCHES"
    );
}

#[test]
fn unschedulable_hosts_get_nothing() {
    let mut idx = index_with(&[("h1", 64, 512), ("h2", 64, 64)]);
    idx.set_host_state(&href("h1"), HostState::Maintenance)
        .expect("state");
    check(&mut idx, &req("vm1", &x86(), 1, 8), Strategy::Spread, "h2");
    idx.set_host_state(&href("h2"), HostState::Down)
        .expect("state");
    let r = reason(&mut idx, &req("vm2", &x86(), 1, 8));
    assert_eq!(r.code(), "NO_SCHEDULABLE_HOST");
    assert!(
        r.message_en()
            .contains("none of the 2 hosts takes new VMs (1 down, 1 in maintenance)"),
        "{}",
        r.message_en()
    );
    // A down host keeps its VM; back up, it takes new ones again.
    assert_eq!(
        idx.allocation(&rid("vm1")).expect("kept").host.as_str(),
        "h2"
    );
    idx.set_host_state(&href("h1"), HostState::Ready)
        .expect("state");
    check(&mut idx, &req("vm2", &x86(), 1, 8), Strategy::Spread, "h1");
}

#[test]
fn memory_reason_reads_like_the_operator_needs() {
    let arm = key("a", "extranet", Architecture::Arm64);
    let mut idx = Index::new();
    idx.upsert_pool(pool_spec("arm", &arm, 4)).expect("pool");
    for (i, gib) in [32, 48, 40].iter().enumerate() {
        idx.upsert_host(host_spec("arm", &format!("h{i}"), 64, *gib))
            .expect("host");
    }
    let mut down = host_spec("arm", "h9", 64, 512);
    down.state = HostState::Down;
    idx.upsert_host(down).expect("host");
    let err = idx
        .place(&req("vm1", &arm, 8, 64), Strategy::Spread)
        .expect_err("too big");
    assert_eq!(err.code(), "HOST_MEMORY_INSUFFICIENT");
    assert_eq!(
        err.to_string(),
        "cannot place vm1: arm64 pool, 政务外网区 (gov_extranet, area extranet), zone a: \
         0 of 3 hosts (1 more down or in maintenance) have 64 GiB memory free; largest free 48 GiB"
    );
    assert_eq!(
        err.message_zh(),
        "无法放置 vm1：arm64 资源池，政务外网区（extranet），部署节点 a：\
         3 台宿主机（另有 1 台故障或维护中）中没有一台有 64 GiB 空闲内存；最大空闲 48 GiB"
    );
}

#[test]
fn anti_affinity_members_go_to_different_hosts() {
    let mut idx = index_with(&[("h1", 64, 512), ("h2", 64, 512), ("h3", 64, 512)]);
    let group = AntiAffinityGroup::new("web").expect("id");
    let member = |i: usize| {
        let mut r = req(&format!("web{i}"), &x86(), 2, 4);
        r.shape.anti_affinity = Some(group.clone());
        r
    };
    // Pack would stack them all on one host without the group.
    let four: Vec<VmRequest> = (0..4).map(member).collect();
    let before = idx.clone();
    let err = idx
        .place_all(&four, Strategy::Pack)
        .expect_err("only 3 hosts");
    assert_eq!(idx, before);
    assert_eq!(err.code(), "ANTI_AFFINITY_TOO_FEW_HOSTS");
    assert!(err.to_string().contains("anti-affinity group web leaves too few hosts: all 3 hosts with 2 vCPU and 4 GiB free already hold a member"), "{err}");
    assert!(
        err.message_zh().contains("反亲和组 web"),
        "{}",
        err.message_zh()
    );

    let placed = idx.place_all(&four[..3], Strategy::Pack).expect("3 fit");
    let hosts: HashSet<_> = placed.iter().map(|p| p.host.clone()).collect();
    assert_eq!(hosts.len(), 3);
    // Releasing one frees its host for the fourth member.
    assert!(idx.release(&rid("web1")).is_some());
    let p = idx.place(&four[3], Strategy::Pack).expect("fits now");
    assert_eq!(p.host, placed[1].host);
    check_consistent(&idx);
}

#[test]
fn soft_anti_affinity_spreads_while_it_can_then_shares_a_host() {
    let mut idx = index_with(&[("h1", 64, 512), ("h2", 64, 512)]);
    let group = AntiAffinityGroup::new("web").expect("id");
    let member = |i: usize, soft: bool| {
        let mut r = req(&format!("web{i}"), &x86(), 2, 4);
        r.shape.anti_affinity = Some(group.clone());
        r.shape.anti_affinity_soft = soft;
        r
    };
    let three: Vec<VmRequest> = (0..3).map(|i| member(i, true)).collect();
    // Pack would stack the first two on one host; the group still spreads them.
    let placed = idx
        .place_all(&three, Strategy::Pack)
        .expect("soft: 3 fit on 2 hosts");
    let hosts: HashSet<_> = placed.iter().map(|p| p.host.clone()).collect();
    assert_eq!(hosts.len(), 2, "{placed:?}");
    check_consistent(&idx);
    // A hard member of the same group finds both hosts taken.
    let err = idx
        .place(&member(3, false), Strategy::Pack)
        .expect_err("hard member: no host without a member");
    assert_eq!(err.code(), "ANTI_AFFINITY_TOO_FEW_HOSTS");
    // The shared host stays taken until its last member leaves: release one
    // of the two members sharing a host, a hard member still cannot go there.
    let shared = placed
        .iter()
        .find(|p| placed.iter().filter(|q| q.host == p.host).count() == 2)
        .expect("two share a host")
        .clone();
    assert!(idx.release(&shared.alloc).is_some());
    check_consistent(&idx);
    idx.place(&member(3, false), Strategy::Pack)
        .expect_err("the other member still holds that host");
    // The rebuild path records a soft member where it already is.
    let mut again = idx.clone();
    let host = HostRef {
        provider: x86().provider.clone(),
        host: shared.host.clone(),
    };
    again
        .reserve_on(&host, rid("web9"), member(9, true).shape)
        .expect("soft member may join a host of its group");
    check_consistent(&again);
}

#[test]
fn place_all_is_all_or_nothing_and_returns_request_order() {
    let mut idx = index_with(&[("h1", 64, 128), ("h2", 64, 64)]);
    let order = vec![
        req("small", &x86(), 1, 8),
        req("big", &x86(), 1, 120),
        req("mid", &x86(), 1, 56),
    ];
    let before = idx.clone();
    // Request order would put `small` on h1 and then fail `big`; largest-first fits all.
    let placed = idx.place_all(&order, Strategy::Spread).expect("fits");
    let got: Vec<(&str, &str)> = placed
        .iter()
        .map(|p| (p.alloc.as_str(), p.host.as_str()))
        .collect();
    assert_eq!(got, [("small", "h1"), ("big", "h1"), ("mid", "h2")]);
    // Same order again: idempotent, nothing new.
    assert_eq!(
        idx.place_all(&order, Strategy::Spread).expect("again"),
        placed
    );
    assert_eq!(idx.allocation_count(), 3);
    for r in &order {
        idx.release(&r.alloc);
    }
    assert_eq!(idx, before);

    let too_much: Vec<VmRequest> = ["a", "b", "c", "d"]
        .iter()
        .map(|a| req(a, &x86(), 1, 64))
        .collect();
    let err = idx
        .place_all(&too_much, Strategy::Pack)
        .expect_err("room for 3 of 4");
    assert_eq!(err.code(), "HOST_MEMORY_INSUFFICIENT");
    assert_eq!(idx, before);
    let dup = vec![req("a", &x86(), 1, 1), req("a", &x86(), 1, 1)];
    assert_eq!(
        idx.place_all(&dup, Strategy::Pack).expect_err("dup").code(),
        "ALLOCATION_CONFLICT"
    );
    assert_eq!(idx, before);
}

fn disk(class: &str, gib: u64) -> Disk {
    Disk {
        storage_class: StorageClassId::new(class).expect("id"),
        size_gib: gib,
    }
}

fn area() -> AreaKey {
    AreaKey {
        provider: provider(),
        zone: ZoneId::new("a").expect("id"),
        network_area: NetworkAreaId::new("extranet").expect("id"),
    }
}

#[test]
fn storage_bandwidth_and_ips_are_shared_zone_capacities() {
    let mut idx = index_with(&[("h1", 64, 512)]);
    let ssd = StorageKey {
        provider: provider(),
        zone: ZoneId::new("a").expect("id"),
        class: StorageClassId::new("ssd").expect("id"),
    };
    idx.upsert_storage_class(StorageClassSpec {
        key: ssd.clone(),
        capacity_gib: 1000,
    });
    idx.upsert_bandwidth(BandwidthSpec {
        area: area(),
        total_mbps: 100,
    });
    idx.upsert_public_ips(PublicIpSpec {
        area: area(),
        total: 2,
    });
    let mut vm = req("vm1", &x86(), 1, 1);
    vm.shape.disks = vec![disk("ssd", 500), disk("ssd", 300)];
    vm.shape.bandwidth_mbps = 60;
    vm.shape.public_ips = 1;
    idx.place(&vm, Strategy::Spread).expect("fits");

    let mut vm2 = req("vm2", &x86(), 1, 1);
    vm2.shape.disks = vec![disk("ssd", 201)];
    let r = reason(&mut idx, &vm2);
    assert_eq!(r.code(), "STORAGE_CLASS_FULL");
    assert_eq!(
        r.message_en(),
        "zone a: storage class ssd has 200 GiB of 1000 GiB free; 201 GiB needed"
    );
    vm2.shape.disks = vec![disk("hdd", 1)];
    assert_eq!(reason(&mut idx, &vm2).code(), "STORAGE_CLASS_UNKNOWN");
    vm2.shape.disks.clear();
    vm2.shape.bandwidth_mbps = 41;
    assert_eq!(reason(&mut idx, &vm2).code(), "BANDWIDTH_EXHAUSTED");
    vm2.shape.bandwidth_mbps = 40;
    vm2.shape.public_ips = 2;
    assert_eq!(reason(&mut idx, &vm2).code(), "PUBLIC_IPS_EXHAUSTED");
    vm2.shape.public_ips = 1;
    idx.place(&vm2, Strategy::Spread).expect("fits exactly");

    // Shrinking the class keeps the allocation; free drops to 0.
    idx.upsert_storage_class(StorageClassSpec {
        key: ssd.clone(),
        capacity_gib: 500,
    });
    let cap = idx.capacity(&pref("p")).expect("pool");
    assert_eq!(
        cap.storage_gib[0].1,
        Usage {
            total: 500,
            allocated: 800
        }
    );
    assert_eq!(cap.storage_gib[0].1.free(), 0);
    assert_eq!(
        cap.bandwidth_mbps,
        Usage {
            total: 100,
            allocated: 100
        }
    );
    assert_eq!(
        cap.public_ips,
        Usage {
            total: 2,
            allocated: 2
        }
    );
    idx.release(&rid("vm1"));
    let cap = idx.capacity(&pref("p")).expect("pool");
    assert_eq!(
        cap.storage_gib[0].1,
        Usage {
            total: 500,
            allocated: 0
        }
    );
    assert_eq!(cap.bandwidth_mbps.allocated, 40);
    check_consistent(&idx);
}

#[test]
fn release_is_idempotent_and_gives_back_exactly() {
    let mut idx = index_with(&[("h1", 8, 64)]);
    let before = idx.clone();
    idx.place(&req("vm1", &x86(), 4, 16), Strategy::Spread)
        .expect("fits");
    assert_eq!(
        idx.release(&rid("vm1")).expect("was there").host.as_str(),
        "h1"
    );
    assert_eq!(idx.release(&rid("vm1")), None);
    assert_eq!(idx, before);
}

#[test]
fn a_shrinking_host_keeps_its_allocations() {
    let mut idx = index_with(&[("h1", 16, 64)]);
    idx.place(&req("vm1", &x86(), 8, 48), Strategy::Spread)
        .expect("fits");
    idx.upsert_host(host_spec("p", "h1", 4, 32))
        .expect("shrink");
    let u = idx.host_usage(&href("h1")).expect("host");
    assert_eq!(
        u.memory_mib,
        Usage {
            total: 32 * GIB,
            allocated: 48 * GIB
        }
    );
    assert_eq!(
        u.vcpu,
        Usage {
            total: 16,
            allocated: 8
        }
    );
    assert_eq!(u.allocations, 1);
    assert_eq!(
        reason(&mut idx, &req("vm2", &x86(), 1, 1)).code(),
        "HOST_MEMORY_INSUFFICIENT"
    );
    // Removing or moving it is refused while it holds the VM.
    assert_eq!(
        idx.remove_host(&href("h1")).expect_err("held").code(),
        "HOST_HAS_ALLOCATIONS"
    );
    idx.upsert_pool(pool_spec("q", &x86(), 4)).expect("pool");
    assert!(idx.upsert_host(host_spec("q", "h1", 4, 32)).is_err());
    idx.release(&rid("vm1"));
    assert!(idx.remove_host(&href("h1")).expect("empty"));
    assert!(!idx.remove_host(&href("h1")).expect("idempotent"));
    check_consistent(&idx);
}

#[test]
fn reserve_on_rebuilds_after_restart_and_refuses_overcommit() {
    let mut idx = index_with(&[("h1", 4, 64), ("h2", 4, 64)]);
    let shape = VmShape::new(8, 40 * GIB);
    idx.reserve_on(&href("h1"), rid("vm1"), shape.clone())
        .expect("recorded");
    // Idempotent for the same host and shape.
    idx.reserve_on(&href("h1"), rid("vm1"), shape.clone())
        .expect("again");
    let e = idx
        .reserve_on(&href("h2"), rid("vm1"), shape.clone())
        .expect_err("elsewhere");
    assert_eq!(e.code(), "ALLOCATION_EXISTS");
    let e = idx
        .reserve_on(&href("h1"), rid("vm2"), VmShape::new(1, 25 * GIB))
        .expect_err("overcommit");
    assert_eq!(e.code(), "HOST_MEMORY_OVERCOMMIT");
    assert!(e.message_zh().contains("内存不超分"));
    let e = idx
        .reserve_on(&href("h1"), rid("vm2"), VmShape::new(9, GIB))
        .expect_err("vcpu");
    assert_eq!(e.code(), "HOST_VCPU_OVERCOMMIT");
    let e = idx
        .reserve_on(&href("nope"), rid("vm2"), VmShape::new(1, GIB))
        .expect_err("unknown");
    assert_eq!(e.code(), "HOST_UNKNOWN");
    // A host in maintenance still records the VM that is on it.
    idx.set_host_state(&href("h2"), HostState::Maintenance)
        .expect("state");
    idx.reserve_on(&href("h2"), rid("vm3"), VmShape::new(1, GIB))
        .expect("recorded");
    // Placement sees the recorded VMs: vm1 took 40 of h1's 64 GiB.
    assert_eq!(
        reason(&mut idx, &req("vm4", &x86(), 1, 25)).code(),
        "HOST_MEMORY_INSUFFICIENT"
    );
    // And the same allocation id through place is idempotent only with the same key and shape.
    let mut again = req("vm1", &x86(), 8, 40);
    assert_eq!(
        idx.place(&again, Strategy::Spread)
            .expect("same")
            .host
            .as_str(),
        "h1"
    );
    again.shape.vcpu = 4;
    assert_eq!(reason(&mut idx, &again).code(), "ALLOCATION_CONFLICT");
    check_consistent(&idx);
}

#[test]
fn capacity_report_shows_fragmentation_and_thresholds() {
    let mut idx = index_with(&[("h1", 16, 128), ("h2", 16, 128)]);
    // 64 vCPU per host at ratio 4. Leave 24 vCPU / 8 GiB on h1, 40 vCPU / 64 GiB on h2.
    idx.reserve_on(&href("h1"), rid("vm1"), VmShape::new(40, 120 * GIB))
        .expect("rec");
    idx.reserve_on(&href("h2"), rid("vm2"), VmShape::new(24, 64 * GIB))
        .expect("rec");
    let cap = idx.capacity(&pref("p")).expect("pool");
    assert_eq!(cap.hosts, 2);
    assert_eq!(
        cap.vcpu,
        Usage {
            total: 128,
            allocated: 64
        }
    );
    assert_eq!(
        cap.memory_mib,
        Usage {
            total: 256 * GIB,
            allocated: 184 * GIB
        }
    );
    let by_mem = cap.largest.by_memory.clone().expect("room");
    assert_eq!(
        (
            by_mem.host.as_str(),
            by_mem.free_memory_mib,
            by_mem.free_vcpu
        ),
        ("h2", 64 * GIB, 40)
    );
    let by_vcpu = cap.largest.by_vcpu.clone().expect("room");
    assert_eq!(by_vcpu.host.as_str(), "h2");
    // 50 % vCPU in aggregate, yet no 64-vCPU VM fits anywhere.
    assert!(by_vcpu.free_vcpu < 64);
    assert_eq!(
        cap.over_threshold(0.70),
        vec![(Resource::Memory, 184.0 / 256.0)]
    );
    assert!(idx.over_threshold(&pref("p"), 0.80).is_empty());
    assert!(idx.over_threshold(&pref("nope"), 0.0).is_empty());
    assert_eq!(idx.capacity_report().len(), 1);
}

#[test]
fn sync_provider_replaces_inventory_keeping_allocations() {
    let mut idx = Index::new();
    let inv = |hosts: Vec<HostSpec>| ProviderInventory {
        pools: vec![pool_spec("p", &x86(), 4)],
        hosts,
        storage_classes: vec![],
        bandwidth: vec![BandwidthSpec {
            area: area(),
            total_mbps: 10,
        }],
        public_ips: vec![],
    };
    idx.sync_provider(
        &provider(),
        inv(vec![
            host_spec("p", "h2", 8, 64),
            host_spec("p", "h1", 8, 64),
            host_spec("p", "h3", 8, 64),
        ]),
    )
    .expect("sync");
    idx.place(&req("vm1", &x86(), 1, 8), Strategy::Spread)
        .expect("fits");
    // h1 (holding vm1) and h3 vanish: h1 is kept as down, h3 removed.
    idx.sync_provider(&provider(), inv(vec![host_spec("p", "h2", 8, 64)]))
        .expect("sync");
    assert_eq!(
        idx.host_usage(&href("h1")).expect("kept").state,
        HostState::Down
    );
    assert!(idx.host_usage(&href("h3")).is_none());
    // A bad item refuses the whole sync.
    let before = idx.clone();
    let mut bad = host_spec("p", "h4", 8, 64);
    bad.cores = 0;
    assert!(
        idx.sync_provider(&provider(), inv(vec![host_spec("p", "h5", 8, 64), bad]))
            .is_err()
    );
    assert_eq!(idx, before);
    check_consistent(&idx);
}

// ---------------------------------------------------------------- invariants

/// Recomputes every derived figure from the allocations and compares.
fn check_consistent(idx: &Index) {
    let mut used: HashMap<u32, (u64, u64, u32)> = HashMap::new();
    let mut storage: HashMap<StorageKey, u64> = HashMap::new();
    let mut bandwidth: HashMap<AreaKey, u64> = HashMap::new();
    let mut ips: HashMap<AreaKey, u64> = HashMap::new();
    let mut groups: HashMap<AntiAffinityGroup, HashMap<u32, u32>> = HashMap::new();
    for a in idx.allocations.values() {
        let e = used.entry(a.host).or_default();
        e.0 += a.shape.memory_mib;
        e.1 += u64::from(a.shape.vcpu);
        e.2 += 1;
        let key = &idx.pool(idx.host(a.host).pool).spec.key;
        for d in &a.shape.disks {
            let k = StorageKey {
                provider: key.provider.clone(),
                zone: key.zone.clone(),
                class: d.storage_class.clone(),
            };
            *storage.entry(k).or_default() += d.size_gib;
        }
        let area = AreaKey {
            provider: key.provider.clone(),
            zone: key.zone.clone(),
            network_area: key.network_area.clone(),
        };
        *bandwidth.entry(area.clone()).or_default() += a.shape.bandwidth_mbps;
        *ips.entry(area).or_default() += a.shape.public_ips;
        if let Some(g) = &a.shape.anti_affinity {
            let n = groups
                .entry(g.clone())
                .or_default()
                .entry(a.host)
                .or_default();
            *n += 1;
            // Only a soft member may join a host that already holds one.
            assert!(
                *n == 1 || a.shape.anti_affinity_soft,
                "group {g} twice on one host"
            );
        }
    }
    assert_eq!(groups, idx.groups);
    for r in idx.shared_allocations.values() {
        for d in &r.disks {
            let k = StorageKey {
                provider: r.provider.clone(),
                zone: r.zone.clone(),
                class: d.storage_class.clone(),
            };
            *storage.entry(k).or_default() += d.size_gib;
        }
        if let Some(a) = &r.network_area {
            let area = AreaKey {
                provider: r.provider.clone(),
                zone: r.zone.clone(),
                network_area: a.clone(),
            };
            *bandwidth.entry(area.clone()).or_default() += r.bandwidth_mbps;
            *ips.entry(area).or_default() += r.public_ips;
        }
    }
    for (slot, h) in idx.hosts.iter().enumerate() {
        let Some(h) = h else { continue };
        let (mem, vcpu, n) = used.get(&(slot as u32)).copied().unwrap_or_default();
        assert_eq!(
            (h.used_memory_mib, h.used_vcpu, h.allocations),
            (mem, vcpu, n)
        );
    }
    for (k, u) in &idx.storage {
        assert_eq!(u.allocated, storage.get(k).copied().unwrap_or(0), "{k:?}");
    }
    for (k, u) in &idx.bandwidth {
        assert_eq!(u.allocated, bandwidth.get(k).copied().unwrap_or(0));
    }
    for (k, u) in &idx.public_ips {
        assert_eq!(u.allocated, ips.get(k).copied().unwrap_or(0));
    }
    for p in idx.pools.iter().flatten() {
        let ids: Vec<&HostId> = p.members.iter().map(|m| &idx.host(*m).id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "members sorted by id");
        let ranks: Vec<u32> = p.members.iter().map(|m| idx.host(*m).rank).collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "ranks follow ids");
        let expected: BTreeSet<(u64, u32, u32)> = p
            .members
            .iter()
            .filter(|m| idx.host(**m).state == HostState::Ready)
            .map(|&m| {
                (
                    idx.host(m).free_memory_mib(),
                    u32::MAX - idx.host(m).rank,
                    m,
                )
            })
            .collect();
        assert_eq!(p.by_free, expected);
    }
}

/// xorshift64*: a fixed-seed generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Brute force: the host spread/pack must choose, by scanning every host; a
/// soft group's member falls back to ignoring the group.
fn brute_force(idx: &Index, request: &VmRequest, strategy: Strategy) -> Option<HostId> {
    let group = request
        .shape
        .anti_affinity
        .as_ref()
        .and_then(|g| idx.groups.get(g));
    brute_force_among(idx, request, strategy, group).or_else(|| {
        (request.shape.anti_affinity_soft && group.is_some())
            .then(|| brute_force_among(idx, request, strategy, None))
            .flatten()
    })
}

fn brute_force_among(
    idx: &Index,
    request: &VmRequest,
    strategy: Strategy,
    group: Option<&HashMap<u32, u32>>,
) -> Option<HostId> {
    let pools = idx.pools_by_key.get(&request.key)?;
    let mut best: Option<(u64, HostId)> = None;
    for &p in pools {
        let ratio = idx.pool(p).spec.vcpu_ratio;
        for &m in &idx.pool(p).members {
            let h = idx.host(m);
            if h.state != HostState::Ready
                || h.free_memory_mib() < request.shape.memory_mib
                || h.free_vcpu(ratio) < u64::from(request.shape.vcpu)
                || group.is_some_and(|g| g.contains_key(&m))
            {
                continue;
            }
            let c = (h.free_memory_mib(), h.id.clone());
            let better = match &best {
                None => true,
                Some(b) => match strategy {
                    Strategy::Spread => c.0 > b.0 || (c.0 == b.0 && c.1 < b.1),
                    Strategy::Pack => c.0 < b.0 || (c.0 == b.0 && c.1 < b.1),
                },
            };
            if better {
                best = Some(c);
            }
        }
    }
    best.map(|b| b.1)
}

#[test]
fn randomized_sequences_keep_every_invariant() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let keys = [
        x86(),
        key("a", "extranet", Architecture::Arm64),
        key("b", "internet", Architecture::X86_64),
    ];
    let mut idx = Index::new();
    for (i, k) in keys.iter().enumerate() {
        idx.upsert_pool(pool_spec(&format!("p{i}"), k, 1 + (i as u32 % 4)))
            .expect("pool");
        for h in 0..6 {
            let id = format!("p{i}-h{}", (h * 7) % 6);
            idx.upsert_host(host_spec(
                &format!("p{i}"),
                &id,
                4 + 4 * h,
                16 + 16 * u64::from(h),
            ))
            .expect("host");
        }
    }
    idx.upsert_storage_class(StorageClassSpec {
        key: StorageKey {
            provider: provider(),
            zone: ZoneId::new("a").expect("id"),
            class: StorageClassId::new("ssd").expect("id"),
        },
        capacity_gib: 2000,
    });
    idx.upsert_bandwidth(BandwidthSpec {
        area: area(),
        total_mbps: 500,
    });
    let groups = ["g0", "g1"].map(|g| AntiAffinityGroup::new(g).expect("id"));
    let mut live: Vec<ResourceId> = Vec::new();
    let mut next_id = 0u32;
    let random_request = |rng: &mut Rng, next_id: &mut u32| {
        *next_id += 1;
        let mut shape = VmShape::new(1 << rng.below(5), 512 * (1 + rng.below(32)));
        if rng.below(3) == 0 {
            let g = rng.below(2) as usize;
            shape.anti_affinity = Some(groups[g].clone());
            // g1 is soft: its members share a host when none is free.
            shape.anti_affinity_soft = g == 1;
        }
        if rng.below(4) == 0 {
            shape.disks = vec![disk("ssd", 10 * (1 + rng.below(20)))];
            shape.bandwidth_mbps = rng.below(20);
        }
        VmRequest {
            alloc: rid(&format!("vm{next_id}")),
            key: keys[rng.below(3) as usize].clone(),
            shape,
        }
    };
    let (mut placed, mut refused) = (0, 0);
    for _ in 0..4000 {
        let strategy = if rng.below(2) == 0 {
            Strategy::Spread
        } else {
            Strategy::Pack
        };
        match rng.below(10) {
            0..=3 => {
                let r = random_request(&mut rng, &mut next_id);
                let expected = brute_force(&idx, &r, strategy);
                let before = idx.clone();
                match idx.place(&r, strategy) {
                    Ok(p) => {
                        assert_eq!(Some(p.host.clone()), expected, "{strategy:?}");
                        let u = idx
                            .host_usage(&HostRef {
                                provider: provider(),
                                host: p.host,
                            })
                            .expect("host");
                        assert!(
                            u.memory_mib.allocated <= u.memory_mib.total,
                            "memory overcommitted"
                        );
                        assert!(u.vcpu.allocated <= u.vcpu.total, "vCPU over ratio");
                        live.push(r.alloc);
                        placed += 1;
                    }
                    Err(e) => {
                        // Shared capacity may refuse even when a host fits.
                        if e.code() != "STORAGE_CLASS_FULL"
                            && e.code() != "BANDWIDTH_EXHAUSTED"
                            && e.code() != "STORAGE_CLASS_UNKNOWN"
                        {
                            assert_eq!(expected, None, "{e}");
                        }
                        assert_eq!(idx, before);
                        refused += 1;
                    }
                }
            }
            4 => {
                let n = 1 + rng.below(4);
                let rs: Vec<VmRequest> = (0..n)
                    .map(|_| random_request(&mut rng, &mut next_id))
                    .collect();
                let before = idx.clone();
                match idx.place_all(&rs, strategy) {
                    Ok(ps) => {
                        assert_eq!(ps.len(), rs.len());
                        live.extend(rs.into_iter().map(|r| r.alloc));
                    }
                    Err(_) => assert_eq!(idx, before, "place_all failed but changed the index"),
                }
            }
            5..=6 if !live.is_empty() => {
                let i = rng.below(live.len() as u64) as usize;
                let alloc = live.swap_remove(i);
                assert!(idx.release(&alloc).is_some());
                assert!(idx.release(&alloc).is_none());
            }
            7 => {
                // Watch event: a host grows, shrinks or changes state.
                let p = rng.below(3);
                let h = rng.below(6);
                let mut spec = host_spec(
                    &format!("p{p}"),
                    &format!("p{p}-h{h}"),
                    2 + rng.below(20) as u32,
                    8 + rng.below(100),
                );
                spec.state = [
                    HostState::Ready,
                    HostState::Ready,
                    HostState::Maintenance,
                    HostState::Down,
                ][rng.below(4) as usize];
                idx.upsert_host(spec).expect("upsert");
            }
            8 => {
                // Restart path: record an allocation on a named host.
                let r = random_request(&mut rng, &mut next_id);
                let host = href(&format!("p{}-h{}", rng.below(3), rng.below(6)));
                let before = idx.clone();
                match idx.reserve_on(&host, r.alloc.clone(), r.shape) {
                    Ok(_) => {
                        let u = idx.host_usage(&host).expect("host");
                        assert!(u.memory_mib.allocated <= u.memory_mib.total);
                        assert!(u.vcpu.allocated <= u.vcpu.total);
                        live.push(r.alloc);
                    }
                    Err(_) => assert_eq!(idx, before),
                }
            }
            _ => {
                // A new host out of id order, then sometimes removed again.
                let p = rng.below(3);
                let id = format!("p{p}-x{}", rng.below(4));
                idx.upsert_host(host_spec(&format!("p{p}"), &id, 8, 32))
                    .expect("host");
                if rng.below(2) == 0 {
                    let _ = idx.remove_host(&href(&id));
                }
            }
        }
        check_consistent(&idx);
    }
    assert!(
        placed > 200 && refused > 50,
        "placed {placed}, refused {refused}"
    );
}

#[test]
fn pools_sharing_a_key_compete_on_strategy_then_host_id() {
    let mut idx = index_with(&[("b1", 16, 64), ("b2", 16, 128)]);
    idx.upsert_pool(pool_spec("q", &x86(), 4)).expect("pool");
    idx.upsert_host(host_spec("q", "a1", 16, 64)).expect("host");
    idx.upsert_host(host_spec("q", "a2", 16, 128))
        .expect("host");
    // Equal free memory in both pools: the smaller host id wins, whatever the pool.
    check(&mut idx, &req("vm1", &x86(), 1, 8), Strategy::Spread, "a2");
    check(&mut idx, &req("vm2", &x86(), 1, 8), Strategy::Spread, "b2");
    check(&mut idx, &req("vm3", &x86(), 1, 8), Strategy::Pack, "a1");
    // A dry run answers the same as place without reserving.
    let before = idx.clone();
    let dry = idx
        .check(&req("vm4", &x86(), 1, 8), Strategy::Pack)
        .expect("fits");
    assert_eq!(dry.host.as_str(), "a1");
    assert_eq!(idx, before);
    assert_eq!(
        idx.check(&req("vm4", &x86(), 1, 1024), Strategy::Pack)
            .expect_err("too big")
            .code(),
        "HOST_MEMORY_INSUFFICIENT"
    );
}

#[test]
fn bad_inventory_is_refused_with_a_code() {
    let mut idx = index_with(&[]);
    let mut h = host_spec("p", "h1", 0, 64);
    assert_eq!(
        idx.upsert_host(h.clone()).expect_err("0 cores").code(),
        "HOST_CORES_ZERO"
    );
    h.cores = 8;
    h.reserved_memory_mib = h.memory_mib;
    let e = idx.upsert_host(h.clone()).expect_err("reserve");
    assert_eq!(e.code(), "HOST_RESERVE_EXCEEDS_MEMORY");
    assert!(e.message_zh().contains("预留内存"));
    let mut h = host_spec("nope", "h1", 8, 64);
    assert_eq!(
        idx.upsert_host(h.clone()).expect_err("pool").code(),
        "POOL_UNKNOWN"
    );
    h.pool = PoolId::new("p").expect("id");
    idx.upsert_host(h).expect("host");
    assert_eq!(
        idx.remove_pool(&pref("p")).expect_err("hosts").code(),
        "POOL_NOT_EMPTY"
    );
    let moved = pool_spec("p", &key("b", "extranet", Architecture::X86_64), 4);
    assert_eq!(
        idx.upsert_pool(moved).expect_err("key").code(),
        "POOL_KEY_CHANGED"
    );
    assert!(idx.remove_host(&href("h1")).expect("removed"));
    assert!(idx.remove_pool(&pref("p")).expect("removed"));
    assert!(!idx.remove_pool(&pref("p")).expect("idempotent"));
    check_consistent(&idx);
}

fn shared(alloc: &str, disks: Vec<Disk>, mbps: u64, ips: u64) -> SharedRequest {
    SharedRequest {
        alloc: rid(alloc),
        provider: provider(),
        zone: ZoneId::new("a").expect("id"),
        network_area: Some(NetworkAreaId::new("extranet").expect("id")),
        disks,
        bandwidth_mbps: mbps,
        public_ips: ips,
    }
}

#[test]
fn volumes_and_public_ips_take_from_their_zone_all_or_nothing() {
    let mut idx = index_with(&[("h1", 64, 512)]);
    let ssd = StorageKey {
        provider: provider(),
        zone: ZoneId::new("a").expect("id"),
        class: StorageClassId::new("ssd").expect("id"),
    };
    idx.upsert_storage_class(StorageClassSpec {
        key: ssd.clone(),
        capacity_gib: 1000,
    });
    idx.upsert_bandwidth(BandwidthSpec {
        area: area(),
        total_mbps: 100,
    });
    idx.upsert_public_ips(PublicIpSpec {
        area: area(),
        total: 2,
    });
    let vol = shared("vol-1", vec![disk("ssd", 600)], 0, 0);
    idx.reserve_shared(&vol).expect("fits");
    idx.reserve_shared(&vol)
        .expect("the same request again is a no-op");
    assert_eq!(idx.storage[&ssd].allocated, 600);
    let other = shared("vol-1", vec![disk("ssd", 10)], 0, 0);
    assert_eq!(
        idx.reserve_shared(&other).map_err(|e| e.code()),
        Err("ALLOCATION_CONFLICT")
    );
    let before = idx.clone();
    let too_big = shared("vol-2", vec![disk("ssd", 401)], 0, 0);
    assert_eq!(
        idx.reserve_shared(&too_big).map_err(|e| e.code()),
        Err("STORAGE_CLASS_FULL")
    );
    assert_eq!(idx, before, "a refusal changes nothing");
    idx.reserve_shared(&shared("eip-1", vec![], 60, 1))
        .expect("fits");
    // A second address fits, its bandwidth does not: neither is charged.
    let before = idx.clone();
    assert_eq!(
        idx.reserve_shared(&shared("eip-2", vec![], 60, 1))
            .map_err(|e| e.code()),
        Err("BANDWIDTH_EXHAUSTED")
    );
    assert_eq!(idx, before);
    idx.reserve_shared(&shared("eip-2", vec![], 40, 1))
        .expect("fits");
    assert_eq!(
        idx.reserve_shared(&shared("eip-3", vec![], 0, 1))
            .map_err(|e| e.code()),
        Err("PUBLIC_IPS_EXHAUSTED")
    );
    check_consistent(&idx);
    // Released, the figures come back exactly.
    assert!(idx.release_any(&rid("eip-1")));
    assert!(!idx.release_any(&rid("eip-1")), "idempotent");
    assert!(idx.release(&rid("vol-1")).is_none(), "not on a host");
    assert_eq!(idx.storage[&ssd].allocated, 0);
    assert_eq!(idx.bandwidth[&area()].allocated, 40);
    assert_eq!(idx.public_ips[&area()].allocated, 1);
    assert_eq!(idx.allocation_count(), 1);
    check_consistent(&idx);
}

fn modelled(id: &str, model: &str, cores: u32, memory_gib: u64) -> HostSpec {
    HostSpec {
        model: Some(model.to_owned()),
        ..host_spec("p", id, cores, memory_gib)
    }
}

#[test]
fn bare_metal_takes_a_whole_empty_host_of_its_model_and_gives_it_back() {
    let mut idx = index_with(&[]);
    for h in [
        modelled("h1", "R4900", 64, 512),
        modelled("h2", "R4900", 32, 256),
        modelled("h3", "TaiShan", 64, 512),
    ] {
        idx.upsert_host(h).expect("host");
    }
    // A VM on h2 makes it not empty.
    idx.place(&req("vm1", &x86(), 2, 8), Strategy::Pack)
        .expect("vm");
    assert_eq!(
        idx.allocation(&rid("vm1")).expect("placed").host.as_str(),
        "h2"
    );
    let bm = |alloc: &str, model: Option<&str>| BareMetalRequest {
        alloc: rid(alloc),
        key: x86(),
        model: model.map(str::to_owned),
        min_memory_mib: 128 * GIB,
        min_cores: 16,
    };
    let p = idx
        .place_bare_metal(&bm("bm1", Some("R4900")))
        .expect("h1 is free");
    assert_eq!(p.host.as_str(), "h1");
    assert_eq!(
        idx.place_bare_metal(&bm("bm1", Some("R4900")))
            .expect("again")
            .host,
        p.host,
        "idempotent"
    );
    // Taken whole: no VM fits on h1 any more.
    let usage = idx.host_usage(&href("h1")).expect("usage");
    assert_eq!(usage.memory_mib.free(), 0);
    assert_eq!(usage.vcpu.free(), 0);
    check_consistent(&idx);
    // No other empty R4900: refused with a reason, nothing changes.
    let before = idx.clone();
    let err = idx
        .place_bare_metal(&bm("bm2", Some("R4900")))
        .expect_err("no free R4900");
    assert_eq!(err.code(), "BARE_METAL_NO_FREE_HOST");
    assert!(err.message_zh().contains("R4900"), "{}", err.message_zh());
    assert!(err.to_string().contains("0 of that model"), "{err}");
    assert_eq!(idx, before);
    // Any model: the TaiShan host.
    assert_eq!(
        idx.place_bare_metal(&bm("bm2", None))
            .expect("h3")
            .host
            .as_str(),
        "h3"
    );
    // Released, h1 takes VMs again.
    idx.release(&rid("bm1")).expect("released");
    idx.place(&req("vm2", &x86(), 8, 64), Strategy::Spread)
        .expect("vm on h1");
    assert_eq!(
        idx.allocation(&rid("vm2")).expect("placed").host.as_str(),
        "h1"
    );
    check_consistent(&idx);
}
