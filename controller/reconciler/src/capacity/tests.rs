//! The 80 % rule on a hand-built index and the memory store, with time moved
//! by hand: an order opens above the line and not on it, once per pool and
//! resource however many passes run, closes when hosts are added, and breaches
//! once after 7 natural days.

use std::sync::{Mutex, RwLock};

use chrono::{DateTime, Duration, TimeZone, Utc};
use yunshu_domain::alarm::{Alarm, AlarmCategory, AlarmLevel};
use yunshu_domain::ids::{HostId, NetworkAreaId, PoolId, ZoneId};
use yunshu_domain::provider::{HostState, NetworkAreaKind};
use yunshu_domain::{Actor, Architecture, ProviderId, ResourceId};
use yunshu_placement::{HostRef, HostSpec, Index, PoolKey, PoolSpec, VmShape};
use yunshu_store::{PageRequest, RedbStore, Store, records};
use yunshu_workflow::capacity::orders;

use super::*;

const GIB: u64 = 1024;
const POOL: &str = "fsc-gov-arm64";

fn provider() -> ProviderId {
    ProviderId::new("sim").expect("id")
}

fn host(id: &str, memory_gib: u64) -> HostSpec {
    HostSpec {
        provider: provider(),
        pool: PoolId::new(POOL).expect("id"),
        id: HostId::new(id).expect("id"),
        cores: 64,
        memory_mib: memory_gib * GIB,
        reserved_memory_mib: 0,
        state: HostState::Ready,
        model: None,
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 2, 0, 0)
        .single()
        .expect("valid time")
}

struct Fixture {
    store: RedbStore,
    index: Mutex<Index>,
    snapshot: RwLock<Snapshot>,
    vms: u32,
}

impl Fixture {
    /// One arm64 pool of two hosts with 100 GiB each (200 GiB in all).
    fn new() -> Self {
        let mut index = Index::new();
        index
            .upsert_pool(PoolSpec {
                id: PoolId::new(POOL).expect("id"),
                key: PoolKey {
                    provider: provider(),
                    zone: ZoneId::new("fsc").expect("id"),
                    network_area: NetworkAreaId::new("fsc-gov").expect("id"),
                    arch: Architecture::Arm64,
                },
                area_kind: NetworkAreaKind::GovExtranet,
                vcpu_ratio: 4,
            })
            .expect("pool");
        for h in ["h1", "h2"] {
            index.upsert_host(host(h, 100)).expect("host");
        }
        Fixture {
            store: RedbStore::in_memory().expect("store"),
            index: Mutex::new(index),
            snapshot: RwLock::new(Snapshot::default()),
            vms: 0,
        }
    }

    /// Charges a VM of `memory_gib` to host `on`.
    fn vm(&mut self, on: &str, memory_gib: u64) {
        self.vms += 1;
        let href = HostRef {
            provider: provider(),
            host: HostId::new(on).expect("id"),
        };
        self.index
            .lock()
            .expect("index")
            .reserve_on(
                &href,
                ResourceId::new(format!("vm-{}", self.vms)).expect("id"),
                VmShape::new(2, memory_gib * GIB),
            )
            .expect("fits");
    }

    fn add_host(&self, id: &str, memory_gib: u64) {
        self.index
            .lock()
            .expect("index")
            .upsert_host(host(id, memory_gib))
            .expect("host");
    }

    async fn pass(&self, now: DateTime<Utc>) -> PassOutcome {
        pass(&self.store, &self.index, &self.snapshot, now)
            .await
            .expect("pass")
    }

    async fn orders(&self) -> Vec<ExpansionOrder> {
        orders(&self.store).await.expect("orders")
    }

    async fn alarm(&self, id: &str) -> Option<Alarm> {
        records::get::<Alarm>(&self.store, id)
            .await
            .expect("read")
            .map(|(a, _)| a)
    }

    async fn revision(&self) -> i64 {
        self.store.revision().await.expect("revision")
    }
}

#[tokio::test]
async fn an_order_opens_above_the_line_and_not_on_it() {
    let mut f = Fixture::new();
    // 160 of 200 GiB: exactly 80 %, not above.
    f.vm("h1", 80);
    f.vm("h2", 80);
    let o = f.pass(t0()).await;
    assert_eq!((o.opened.len(), o.open), (0, 0), "{o:?}");
    assert!(f.orders().await.is_empty());
    {
        let snap = f.snapshot.read().expect("snapshot");
        assert!(snap.leader);
        assert_eq!(snap.computed_at, Some(t0()));
        assert_eq!(snap.pools.len(), 1);
        assert_eq!(snap.pools[0].memory_mib.allocated, 160 * GIB);
        assert_eq!(snap.pools[0].memory_mib.total, 200 * GIB);
    }

    // One more GiB: 161 / 200 = 80.5 %.
    f.vm("h1", 1);
    let o = f.pass(t0()).await;
    assert_eq!((o.opened.len(), o.open, o.failed), (1, 1, 0), "{o:?}");
    let orders = f.orders().await;
    let [order] = orders.as_slice() else {
        panic!("one order: {orders:?}");
    };
    assert_eq!(
        (
            order.provider.as_str(),
            order.pool.as_str(),
            order.resource.as_str()
        ),
        ("sim", POOL, "memory")
    );
    assert_eq!(
        (order.allocated_at_open, order.total_at_open),
        (161 * GIB, 200 * GIB)
    );
    assert!((order.ratio_at_open - 0.805).abs() < 1e-9);
    assert_eq!(order.opened_at, t0());
    assert_eq!(order.due_at, t0() + Duration::days(7));
    assert!(order.is_open() && order.breached_at.is_none());

    let alarm = f.alarm(&order.alarm_id()).await.expect("alarm raised");
    assert_eq!(alarm.level(), AlarmLevel::Major);
    assert_eq!(alarm.category(), AlarmCategory::Capacity);
    assert_eq!(
        alarm.trigger().as_str(),
        "资源池 fsc-gov-arm64 内存分配率 > 80%"
    );
    let content = alarm.content().as_str();
    for figure in [
        "164864 MiB",
        "204800 MiB",
        "80.5%",
        order.id.as_str(),
        "2026-03-09 10:00",
    ] {
        assert!(content.contains(figure), "{figure} missing from {content}");
    }
    assert_eq!(
        alarm.subject().map(|s| s.as_str().to_owned()),
        Some(format!("expansion_order/{}", order.id))
    );
    assert_eq!(
        f.snapshot.read().expect("snapshot").expansion_orders_open,
        1
    );

    // The order and its alarm were written by the reconciler, audited.
    let (entries, _) = yunshu_store::audit::list(&f.store, PageRequest::default())
        .await
        .expect("audit");
    let last = entries.last().expect("an entry");
    assert_eq!(last.actor, Actor::System("reconciler".to_owned()));
    assert_eq!(
        last.action,
        yunshu_domain::audit::AuditAction::new("expansion_order.open").expect("action")
    );
}

#[tokio::test]
async fn one_order_per_pool_and_resource_however_many_passes() {
    let mut f = Fixture::new();
    f.vm("h1", 90);
    f.vm("h2", 90);
    f.pass(t0()).await;
    let after_first = f.revision().await;
    for minutes in 1..=5 {
        let o = f.pass(t0() + Duration::minutes(minutes)).await;
        assert_eq!((o.opened.len(), o.open), (0, 1), "{o:?}");
    }
    // Climbing further keeps the same order.
    f.vm("h1", 5);
    f.pass(t0() + Duration::hours(1)).await;
    assert_eq!(
        f.revision().await,
        after_first,
        "repeated passes write nothing"
    );
    assert_eq!(f.orders().await.len(), 1);
}

#[tokio::test]
async fn the_order_closes_itself_when_hosts_are_added() {
    let mut f = Fixture::new();
    f.vm("h1", 90);
    f.vm("h2", 90);
    f.pass(t0()).await;
    let opened = f.orders().await.remove(0);

    // The provider racks a third host: 180 / 300 = 60 %.
    f.add_host("h3", 100);
    let later = t0() + Duration::days(2);
    let o = f.pass(later).await;
    assert_eq!((o.closed.len(), o.open), (1, 0), "{o:?}");
    let closed = f.orders().await.remove(0);
    assert_eq!(closed.id, opened.id);
    assert_eq!(closed.closed_at, Some(later));
    assert!(closed.breached_at.is_none());
    assert!(
        closed
            .ratio_at_close
            .is_some_and(|r| (r - 0.6).abs() < 1e-9)
    );
    let alarm = f.alarm(&opened.alarm_id()).await.expect("alarm");
    assert_eq!(alarm.cleared_at(), Some(later));
    let rev = f.revision().await;
    f.pass(later + Duration::minutes(1)).await;
    assert_eq!(
        f.revision().await,
        rev,
        "a closed order stays closed, quietly"
    );

    // Over the line again: a new order with its own alarm.
    f.vm("h3", 70);
    let o = f.pass(later + Duration::hours(1)).await;
    assert_eq!((o.opened.len(), o.open), (1, 1), "{o:?}");
    let orders = f.orders().await;
    assert_eq!(orders.len(), 2);
    assert!(orders[0].is_open() && orders[0].seq == 2 && orders[1].seq == 1);
    assert_ne!(orders[0].id, orders[1].id);
    let alarm = f.alarm(&orders[0].alarm_id()).await.expect("new alarm");
    assert!(alarm.cleared_at().is_none());
}

#[tokio::test]
async fn an_order_still_open_after_seven_days_breaches_once() {
    let mut f = Fixture::new();
    f.vm("h1", 95);
    f.vm("h2", 95);
    f.pass(t0()).await;
    let order = f.orders().await.remove(0);

    // On the due instant it is not late yet.
    let o = f.pass(order.due_at).await;
    assert!(o.breached.is_empty(), "{o:?}");
    let late = order.due_at + Duration::seconds(1);
    let o = f.pass(late).await;
    assert_eq!(o.breached, std::slice::from_ref(&order.id));
    let breached = f.orders().await.remove(0);
    assert_eq!(breached.breached_at, Some(late));
    assert!(breached.is_open());
    let alarm = f
        .alarm(&order.breach_alarm_id())
        .await
        .expect("breach alarm");
    assert_eq!(alarm.level(), AlarmLevel::Critical);
    assert_eq!(alarm.category(), AlarmCategory::Capacity);
    assert!(
        alarm.content().as_str().contains("20%"),
        "{}",
        alarm.content()
    );

    let rev = f.revision().await;
    for days in 8..=10 {
        let o = f.pass(t0() + Duration::days(days)).await;
        assert!(o.breached.is_empty(), "{o:?}");
    }
    assert_eq!(f.revision().await, rev, "the breach is recorded once");

    // Expanded at last: the order closes and both alarms clear.
    f.add_host("h3", 200);
    let done = t0() + Duration::days(11);
    let o = f.pass(done).await;
    assert_eq!(o.closed, std::slice::from_ref(&order.id));
    for id in [order.alarm_id(), order.breach_alarm_id()] {
        assert_eq!(f.alarm(&id).await.expect("alarm").cleared_at(), Some(done));
    }
    assert_eq!(
        f.orders().await[0].breached_at,
        Some(late),
        "the breach stays on record"
    );
}

#[tokio::test]
async fn orders_of_pools_not_in_the_index_stay_open() {
    let mut f = Fixture::new();
    f.vm("h1", 95);
    f.vm("h2", 95);
    f.pass(t0()).await;
    // A restarted leader before the driver answered: an empty index.
    let empty = Fixture {
        store: f.store,
        index: Mutex::new(Index::new()),
        snapshot: RwLock::new(Snapshot::default()),
        vms: 0,
    };
    let o = empty.pass(t0() + Duration::days(1)).await;
    assert_eq!((o.closed.len(), o.open), (0, 1), "{o:?}");
    let o = empty.pass(t0() + Duration::days(8)).await;
    assert_eq!(o.breached.len(), 1, "the deadline still counts: {o:?}");
}

#[test]
fn the_line_is_exact() {
    let u = |allocated, total| Usage { allocated, total };
    assert!(!over_line(&u(80, 100)));
    assert!(over_line(&u(81, 100)));
    assert!(!over_line(&u(4, 5)));
    assert!(!over_line(&u(0, 0)));
    assert!(
        over_line(&u(1, 0)),
        "allocated with no capacity left is over"
    );
    assert!(!over_line(&u(u64::MAX / 2, u64::MAX)));
}
