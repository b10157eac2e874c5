//! Capacity as everyone reads it (SPEC §4 "80 % expansion trigger"; 003
//! §4.1.2.2 (1), commitment 6; 004 附件3 item 4): the capacity [`Snapshot`]
//! the leader's capacity manager publishes (per pool total / allocated / free /
//! ratio of every resource and the largest VM that still fits), the expansion
//! line, the **expansion order** (扩容单) records and the figures over time
//! ([`history`]).
//!
//! The capacity manager in the reconciler computes the figures, decides the
//! 80 % rule and writes the orders; the API and `/metrics` read what is here.
//! Must not place anything nor read the placement index.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_domain::ids::PoolId;
use yunshu_domain::{ProviderId, Record};
use yunshu_placement::{PoolCapacity, Resource, Usage};
use yunshu_store::{Store, StoreError, page};

pub mod history;

/// The expansion line: a resource allocated above this share of its total
/// opens an expansion order (003 §4.1.2.2 (1)).
pub const THRESHOLD_PERCENT: u64 = 80;

/// An expansion order is due this many natural days after it opened
/// (commitment 6; overdue = SLA breach, 004 附件3 item 4, coefficient 20 %).
pub const EXPANSION_DAYS: i64 = 7;

/// The last capacity figures the leader computed. Followers keep the last one
/// they had, marked `leader: false` (or the empty default).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Whether this replica leads and keeps the figures current.
    pub leader: bool,
    /// When the figures were computed; `None` before the first pass.
    pub computed_at: Option<DateTime<Utc>>,
    /// Every pool of the index, sorted by (provider, pool).
    pub pools: Vec<PoolCapacity>,
    /// Expansion orders open after the pass.
    pub expansion_orders_open: usize,
    /// Pools the controller's inventory intake refused to place on, with
    /// why, sorted by (provider, pool); kept across passes, replaced per
    /// provider at each inventory read.
    pub pool_refusals: Vec<PoolRefusal>,
}

/// A pool the controller takes no new VMs on although its driver reports it,
/// and why: e.g. a clock below the minimum of its architecture (ARM ≥ 2.4 GHz,
/// C86 and x86 ≥ 2.2 GHz, seed 003 §3.2.1.1 and §3.1.3 item 1001),
/// `POOL_CLOCK_BELOW_MINIMUM`. Its hosts count as not schedulable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRefusal {
    pub provider: ProviderId,
    pub pool: PoolId,
    /// Stable code.
    pub code: &'static str,
    pub message: String,
    pub message_zh: String,
}

/// The snapshot shared between the reconciler (writer) and the API and
/// metrics (readers).
pub type SharedSnapshot = Arc<RwLock<Snapshot>>;

/// Marks the shared snapshot as no longer kept current (leadership lost); the
/// figures stay for readers.
pub fn mark_follower(snapshot: &RwLock<Snapshot>) {
    snapshot.write().unwrap_or_else(|e| e.into_inner()).leader = false;
}

/// Expansion order (扩容单): a provider must add capacity to one resource of
/// one pool within [`EXPANSION_DAYS`] natural days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpansionOrder {
    pub id: String,
    pub provider: ProviderId,
    pub pool: PoolId,
    /// `vcpu`, `memory`, `storage:<class>`, `bandwidth` or `public_ips`.
    pub resource: String,
    /// 1 for the first order of this pool and resource, then 2, 3 …; with the
    /// "must not exist" create this keeps one open order per pool and resource.
    pub seq: u32,
    pub ratio_at_open: f64,
    pub allocated_at_open: u64,
    pub total_at_open: u64,
    pub opened_at: DateTime<Utc>,
    /// opened_at + 7 natural days.
    pub due_at: DateTime<Utc>,
    /// When the ratio was seen back at or under the line.
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ratio_at_close: Option<f64>,
    /// When the pass first saw the order open after `due_at` (SLA breach).
    #[serde(default)]
    pub breached_at: Option<DateTime<Utc>>,
}

impl Record for ExpansionOrder {
    const KIND: &'static str = "expansion_order";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.id.clone()
    }
}

impl ExpansionOrder {
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    /// The major alarm raised with the order.
    pub fn alarm_id(&self) -> String {
        format!("cap-{}", self.id)
    }

    /// The critical alarm raised at the SLA breach.
    pub fn breach_alarm_id(&self) -> String {
        format!("capsla-{}", self.id)
    }

    /// What an order is about: one resource of one pool of one provider.
    pub fn key(&self) -> (ProviderId, PoolId, String) {
        (
            self.provider.clone(),
            self.pool.clone(),
            self.resource.clone(),
        )
    }
}

/// A resource's name in orders, the API and metric labels.
pub fn resource_label(r: &Resource) -> String {
    match r {
        Resource::Vcpu => "vcpu".to_owned(),
        Resource::Memory => "memory".to_owned(),
        Resource::Storage(class) => format!("storage:{class}"),
        Resource::Bandwidth => "bandwidth".to_owned(),
        Resource::PublicIps => "public_ips".to_owned(),
    }
}

/// The unit of a resource's figures.
pub fn resource_unit(r: &Resource) -> &'static str {
    match r {
        Resource::Vcpu => "vCPU",
        Resource::Memory => "MiB",
        Resource::Storage(_) => "GiB",
        Resource::Bandwidth => "Mbps",
        Resource::PublicIps => "个",
    }
}

/// Every resource of a pool with its figures, in a fixed order: vCPU, memory,
/// storage by class, bandwidth, public IPs.
pub fn resources(c: &PoolCapacity) -> Vec<(Resource, Usage)> {
    let mut all = vec![(Resource::Vcpu, c.vcpu), (Resource::Memory, c.memory_mib)];
    for (class, u) in &c.storage_gib {
        all.push((Resource::Storage(class.clone()), *u));
    }
    all.push((Resource::Bandwidth, c.bandwidth_mbps));
    all.push((Resource::PublicIps, c.public_ips));
    all
}

/// Whether `u` is allocated above the line. Exact integer arithmetic, so 80 %
/// on the dot is not over; an allocation with no total (inventory shrank to
/// nothing) is.
pub fn over_line(u: &Usage) -> bool {
    if u.total == 0 {
        return u.allocated > 0;
    }
    u128::from(u.allocated) * 100 > u128::from(u.total) * u128::from(THRESHOLD_PERCENT)
}

/// Every expansion order, open ones first, each group by opening time.
pub async fn orders(store: &dyn Store) -> Result<Vec<ExpansionOrder>, StoreError> {
    let mut all: Vec<ExpansionOrder> = page::scan_all::<ExpansionOrder>(store)
        .await?
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    all.sort_by(|a, b| {
        b.is_open()
            .cmp(&a.is_open())
            .then(a.opened_at.cmp(&b.opened_at))
            .then(a.id.cmp(&b.id))
    });
    Ok(all)
}
