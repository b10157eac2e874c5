//! The capacity manager (SPEC §4 "80 % expansion trigger"; 003 §4.1.2.2 (1),
//! commitment 6; 004 附件3 item 4): after every inventory refresh and every
//! placement or release, one pass over the leader's placement index
//!
//! - publishes the capacity [`Snapshot`] (per pool total / allocated / free /
//!   ratio of every resource and the largest VM that still fits) that the API
//!   and `/metrics` read (the types are `yunshu_workflow::capacity`'s);
//! - opens an **expansion order** (扩容单) with a `Capacity` alarm when a
//!   resource of a pool is allocated above 80 %, at most one open order per
//!   (pool, resource), due 7 natural days later;
//! - closes the order and clears its alarms once the ratio is back at or under
//!   80 % (the provider added capacity, or VMs went);
//! - records an SLA breach once when an order is still open after its due time.
//!
//! Owns the `expansion_order/<id>` records and the alarm ids `cap-<order>` and
//! `capsla-<order>`. Must not change the index nor place anything, and must
//! not read the clock: callers pass `now`, so tests move time. Every write is
//! compared on what the pass read and carries its audit entry (actor
//! `system:reconciler`) in the same transaction, so a repeated or concurrent
//! pass writes nothing twice; a lost race is left to the next pass.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use yunshu_domain::alarm::{Alarm, AlarmCategory, AlarmLevel};
use yunshu_domain::calendar::CHINA_STANDARD_TIME;
use yunshu_domain::ids::{AlarmId, PoolId};
use yunshu_domain::{ProviderId, Text};
use yunshu_placement::{Index, PoolCapacity, Resource, Usage};
use yunshu_store::audit::{self, Appended, AuditDraft};
use yunshu_store::{Revision, Store, StoreError, Txn, page, records};
use yunshu_workflow::alarms;
use yunshu_workflow::capacity::{
    EXPANSION_DAYS, ExpansionOrder, PoolRefusal, SharedSnapshot, Snapshot, THRESHOLD_PERCENT,
    history, over_line, resource_label, resource_unit, resources,
};

#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error("cannot list expansion orders")]
    ListOrders(#[source] StoreError),
    #[error("cannot read alarm {id}")]
    ReadAlarm {
        id: String,
        #[source]
        source: StoreError,
    },
    #[error("cannot write expansion order {id}")]
    WriteOrder {
        id: String,
        #[source]
        source: StoreError,
    },
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
}

fn invalid(what: &'static str) -> impl FnOnce(yunshu_domain::text::TextError) -> CapacityError {
    move |e| CapacityError::Invalid {
        what,
        reason: e.to_string(),
    }
}

/// The reconciler's handle on the capacity manager.
pub struct Capacity {
    pub snapshot: SharedSnapshot,
    dirty: Notify,
}

impl Capacity {
    pub fn new(snapshot: SharedSnapshot) -> Self {
        Capacity {
            snapshot,
            dirty: Notify::new(),
        }
    }

    /// Asks for a pass soon. Calls made while a pass runs coalesce into one
    /// more pass, so a burst of placements costs two passes, not hundreds.
    pub fn changed(&self) {
        self.dirty.notify_one();
    }

    /// Replaces `provider`'s pool refusals in the snapshot with `refusals`
    /// (what its last inventory read refused), kept sorted.
    pub fn set_refusals(&self, provider: &ProviderId, refusals: &[PoolRefusal]) {
        let mut s = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
        s.pool_refusals.retain(|r| &r.provider != provider);
        s.pool_refusals.extend(refusals.iter().cloned());
        s.pool_refusals
            .sort_by(|a, b| (&a.provider, &a.pool).cmp(&(&b.provider, &b.pool)));
    }
}

/// `EXP-<hash of provider/pool/resource>-<seq>`: short enough for alarm ids
/// (64 characters) whatever the provider and pool ids are; the fields carry
/// the readable names.
fn order_id(provider: &ProviderId, pool: &PoolId, resource: &str, seq: u32) -> String {
    let hash = yunshu_pki::sha256_hex(format!("{provider}/{pool}/{resource}").as_bytes());
    format!("EXP-{}-{seq:04}", &hash[..10])
}

fn resource_zh(r: &Resource) -> String {
    match r {
        Resource::Vcpu => "vCPU ".to_owned(),
        Resource::Memory => "内存".to_owned(),
        Resource::Storage(class) => format!("存储 {class} "),
        Resource::Bandwidth => "带宽".to_owned(),
        Resource::PublicIps => "公网 IP ".to_owned(),
    }
}

fn cst(at: DateTime<Utc>) -> String {
    at.with_timezone(&CHINA_STANDARD_TIME)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PassOutcome {
    pub opened: Vec<String>,
    pub closed: Vec<String>,
    pub breached: Vec<String>,
    /// Open after the pass.
    pub open: usize,
    /// Writes refused (a concurrent writer) or failed; the next pass retries.
    pub failed: usize,
}

/// One pass at `now`: figures from `index`, orders from `store`, the result
/// into `snapshot`. Idempotent: a second pass on the same figures writes
/// nothing. Only listing the orders fails the pass; a failed write is logged
/// and counted, and the next pass tries again from what is stored.
pub async fn pass(
    store: &dyn Store,
    index: &Mutex<Index>,
    snapshot: &RwLock<Snapshot>,
    now: DateTime<Utc>,
) -> Result<PassOutcome, CapacityError> {
    let report = index
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .capacity_report();
    let stored = page::scan_all::<ExpansionOrder>(store)
        .await
        .map_err(CapacityError::ListOrders)?;
    let mut last_seq: HashMap<(ProviderId, PoolId, String), u32> = HashMap::new();
    let mut open: HashMap<(ProviderId, PoolId, String), (ExpansionOrder, Revision)> =
        HashMap::new();
    for (order, rev) in stored {
        let seq = last_seq.entry(order.key()).or_default();
        *seq = (*seq).max(order.seq);
        if order.is_open() {
            open.insert(order.key(), (order, rev));
        }
    }
    let mut outcome = PassOutcome {
        open: open.len(),
        ..PassOutcome::default()
    };
    let mut note = |result: Result<Option<String>, CapacityError>, into: &mut Vec<String>| {
        match result {
            Ok(Some(id)) => into.push(id),
            Ok(None) => outcome.failed += 1,
            Err(e) => {
                tracing::warn!(error = %yunshu_domain::error::chain(&e), "capacity write failed; the next pass retries");
                outcome.failed += 1;
            }
        }
    };
    let (mut opened, mut closed, mut breached) = (Vec::new(), Vec::new(), Vec::new());
    for cap in &report {
        for (resource, usage) in resources(cap) {
            let key = (
                cap.pool.provider.clone(),
                cap.pool.pool.clone(),
                resource_label(&resource),
            );
            match (over_line(&usage), open.remove(&key)) {
                (true, None) => {
                    let seq = last_seq.get(&key).copied().unwrap_or(0) + 1;
                    note(
                        open_order(store, cap, &resource, usage, seq, now).await,
                        &mut opened,
                    );
                }
                (false, Some((order, rev))) => {
                    note(
                        close_order(store, order, rev, usage, now).await,
                        &mut closed,
                    );
                }
                (true, Some((order, rev))) => {
                    if now > order.due_at && order.breached_at.is_none() {
                        note(
                            breach(store, order, rev, Some(usage), now).await,
                            &mut breached,
                        );
                    }
                }
                (false, None) => {}
            }
        }
    }
    // Orders of pools the index does not report now (a driver not read yet, a
    // pool removed): their figures are unknown, so they stay open and only
    // the deadline counts.
    for (_, (order, rev)) in open {
        if now > order.due_at && order.breached_at.is_none() {
            note(breach(store, order, rev, None, now).await, &mut breached);
        }
    }
    // Closed orders were among the open ones read above.
    outcome.open = (outcome.open + opened.len()).saturating_sub(closed.len());
    outcome.opened = opened;
    outcome.closed = closed;
    outcome.breached = breached;
    let mut current = snapshot.write().unwrap_or_else(|e| e.into_inner());
    // The inventory intake's refusals are not the pass's: keep them.
    let pool_refusals = std::mem::take(&mut current.pool_refusals);
    *current = Snapshot {
        leader: true,
        computed_at: Some(now),
        pools: report,
        expansion_orders_open: outcome.open,
        pool_refusals,
    };
    drop(current);
    Ok(outcome)
}

/// Commits `txn` with its audit entry. `Some(id)` when it landed, `None` when a
/// compare failed (someone else wrote first).
async fn commit(
    store: &dyn Store,
    txn: Txn,
    action: &str,
    order: &str,
    detail: String,
    now: DateTime<Utc>,
) -> Result<Option<String>, CapacityError> {
    let draft = AuditDraft {
        at: now,
        actor: super::actor(),
        action: yunshu_domain::audit::AuditAction::new(action).map_err(|e| {
            CapacityError::Invalid {
                what: "audit action",
                reason: e.to_string(),
            }
        })?,
        target: Text::new(records::key::<ExpansionOrder>(order)).map_err(invalid("target"))?,
        detail: Some(Text::new(detail).map_err(invalid("detail"))?),
    };
    match audit::append(store, draft, txn)
        .await
        .map_err(|source| CapacityError::WriteOrder {
            id: order.to_owned(),
            source,
        })? {
        Appended::Committed { .. } => Ok(Some(order.to_owned())),
        Appended::Conflict => Ok(None),
    }
}

fn alarm_id(id: String) -> Result<AlarmId, CapacityError> {
    AlarmId::new(id).map_err(|e| CapacityError::Invalid {
        what: "alarm id",
        reason: e.to_string(),
    })
}

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// Opens order number `seq` for `resource` of `cap` with its major alarm.
async fn open_order(
    store: &dyn Store,
    cap: &PoolCapacity,
    resource: &Resource,
    usage: Usage,
    seq: u32,
    now: DateTime<Utc>,
) -> Result<Option<String>, CapacityError> {
    let label = resource_label(resource);
    let (provider, pool) = (&cap.pool.provider, &cap.pool.pool);
    let order = ExpansionOrder {
        id: order_id(provider, pool, &label, seq),
        provider: provider.clone(),
        pool: pool.clone(),
        resource: label.clone(),
        seq,
        ratio_at_open: usage.ratio(),
        allocated_at_open: usage.allocated,
        total_at_open: usage.total,
        opened_at: now,
        due_at: now + chrono::Duration::days(EXPANSION_DAYS),
        closed_at: None,
        ratio_at_close: None,
        breached_at: None,
    };
    let (name, unit) = (resource_zh(resource), resource_unit(resource));
    let subject = records::key::<ExpansionOrder>(&order.id);
    let alarm = Alarm::new(
        alarm_id(order.alarm_id())?,
        now,
        AlarmLevel::Major,
        Text::new(format!("资源池 {pool} {name}分配率 > {THRESHOLD_PERCENT}%"))
            .map_err(invalid("alarm trigger"))?,
        Text::new(format!(
            "供应商 {provider} 资源池 {pool}（部署节点 {zone}，网络区域 {area}，架构 {arch}）\
             {name}已分配 {allocated} {unit}，总量 {total} {unit}，分配率 {ratio}，\
             超过 {THRESHOLD_PERCENT}% 扩容线。已生成扩容单 {id}，须于 {due}（北京时间）前\
             完成扩容（{EXPANSION_DAYS} 个自然日）。",
            zone = cap.key.zone,
            area = cap.key.network_area,
            arch = cap.key.arch,
            allocated = usage.allocated,
            total = usage.total,
            ratio = percent(usage.ratio()),
            id = order.id,
            due = cst(order.due_at),
        ))
        .map_err(invalid("alarm content"))?,
    )
    .about(
        AlarmCategory::Capacity,
        None,
        Some(Text::new(&subject).map_err(invalid("alarm subject"))?),
    );
    let txn = Txn::new()
        .when_mod_revision(subject.clone(), 0)
        .put(subject, records::encode(&order));
    let txn = alarms::raise_in(txn, &alarm);
    let detail = format!(
        "{label} of pool {provider}/{pool} allocated {} of {} ({}) > {THRESHOLD_PERCENT}%; due {}",
        usage.allocated,
        usage.total,
        percent(usage.ratio()),
        order.due_at.to_rfc3339(),
    );
    let done = commit(store, txn, "expansion_order.open", &order.id, detail, now).await?;
    if done.is_some() {
        tracing::warn!(
            order = %order.id, %provider, %pool, resource = %label,
            allocated = usage.allocated, total = usage.total,
            due_at = %order.due_at,
            "pool above the 80% expansion line: expansion order opened"
        );
    }
    Ok(done)
}

/// Adds "clear alarm `id` if raised and not cleared" to `txn`.
async fn clear_in(
    store: &dyn Store,
    txn: Txn,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Txn, CapacityError> {
    let found =
        records::get::<Alarm>(store, id)
            .await
            .map_err(|source| CapacityError::ReadAlarm {
                id: id.to_owned(),
                source,
            })?;
    Ok(match found {
        Some((mut alarm, rev)) if alarm.cleared_at().is_none() => {
            alarm.clear(now);
            let key = records::key::<Alarm>(id);
            txn.when_mod_revision(key.clone(), rev)
                .put(key, records::encode(&alarm))
        }
        _ => txn,
    })
}

/// Closes `order` (back at or under the line) and clears its alarms, in one
/// transaction, so a crash never leaves a closed order with a live alarm.
async fn close_order(
    store: &dyn Store,
    mut order: ExpansionOrder,
    rev: Revision,
    usage: Usage,
    now: DateTime<Utc>,
) -> Result<Option<String>, CapacityError> {
    order.closed_at = Some(now);
    order.ratio_at_close = Some(usage.ratio());
    let key = records::key::<ExpansionOrder>(&order.id);
    let mut txn = Txn::new()
        .when_mod_revision(key.clone(), rev)
        .put(key, records::encode(&order));
    txn = clear_in(store, txn, &order.alarm_id(), now).await?;
    txn = clear_in(store, txn, &order.breach_alarm_id(), now).await?;
    let detail = format!(
        "{} of pool {}/{} back to {} of {} ({})",
        order.resource,
        order.provider,
        order.pool,
        usage.allocated,
        usage.total,
        percent(usage.ratio())
    );
    let done = commit(store, txn, "expansion_order.close", &order.id, detail, now).await?;
    if done.is_some() {
        tracing::info!(
            order = %order.id, provider = %order.provider, pool = %order.pool,
            resource = %order.resource, late = order.breached_at.is_some(),
            "pool back under the expansion line: expansion order closed"
        );
    }
    Ok(done)
}

/// Records that `order` is past its due time, once, with a critical alarm.
/// `usage` is `None` when the pool's figures are unknown now.
async fn breach(
    store: &dyn Store,
    mut order: ExpansionOrder,
    rev: Revision,
    usage: Option<Usage>,
    now: DateTime<Utc>,
) -> Result<Option<String>, CapacityError> {
    order.breached_at = Some(now);
    let key = records::key::<ExpansionOrder>(&order.id);
    let still = usage.map_or_else(
        || "当前分配率未知（未读到该资源池的清单）".to_owned(),
        |u| format!("当前分配率仍为 {}", percent(u.ratio())),
    );
    let alarm = Alarm::new(
        alarm_id(order.breach_alarm_id())?,
        now,
        AlarmLevel::Critical,
        Text::new(format!(
            "扩容单 {} 超过 {EXPANSION_DAYS} 个自然日未完成",
            order.id
        ))
        .map_err(invalid("alarm trigger"))?,
        Text::new(format!(
            "供应商 {provider} 资源池 {pool} 的扩容单 {id}（资源 {resource}）于 {opened} 生成，\
             应于 {due}（北京时间）前完成扩容，{still}，构成扩容超时 SLA 违约\
             （004 附件3 第4项，扣罚系数 20%）。",
            provider = order.provider,
            pool = order.pool,
            id = order.id,
            resource = order.resource,
            opened = cst(order.opened_at),
            due = cst(order.due_at),
        ))
        .map_err(invalid("alarm content"))?,
    )
    .about(
        AlarmCategory::Capacity,
        None,
        Some(Text::new(&key).map_err(invalid("alarm subject"))?),
    );
    let txn = Txn::new()
        .when_mod_revision(key.clone(), rev)
        .put(key, records::encode(&order));
    let txn = alarms::raise_in(txn, &alarm);
    let detail = format!(
        "{} of pool {}/{} still above the line after the due time {}",
        order.resource,
        order.provider,
        order.pool,
        order.due_at.to_rfc3339()
    );
    let done = commit(store, txn, "expansion_order.breach", &order.id, detail, now).await?;
    if done.is_some() {
        tracing::error!(
            order = %order.id, provider = %order.provider, pool = %order.pool,
            resource = %order.resource, due_at = %order.due_at,
            "expansion order overdue: SLA breach recorded"
        );
    }
    Ok(done)
}

/// Runs passes for the leader's reconciler: on every [`Capacity::changed`],
/// and at least every `every` so a due time passes even when nothing changes.
/// Started after the stored placements are in the index, so the first pass
/// never mistakes a half-built index for freed capacity.
/// Also writes the pools' figures to the history once per `sample_every`.
pub async fn run(r: Arc<super::Reconciler>, every: Duration, sample_every: Duration) {
    let mut sampled: Option<DateTime<Utc>> = None;
    loop {
        let now = Utc::now();
        let result = pass(&*r.store, &r.index, &r.capacity.snapshot, now).await;
        let interval = history::bucket(now, sample_every);
        // Only the first pass of an interval copies the figures out. No pools
        // yet (inventories not read) is no figure: wait for them rather than
        // mark the interval done.
        let pools = (result.is_ok() && sampled != Some(interval)).then(|| {
            r.capacity
                .snapshot
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .pools
                .clone()
        });
        if let Some(pools) = pools.filter(|p| !p.is_empty()) {
            match history::record(&*r.store, &pools, interval).await {
                Ok((written, pruned)) => {
                    sampled = Some(interval);
                    tracing::debug!(written, pruned, at = %interval, "capacity sampled");
                }
                Err(e) => {
                    tracing::warn!(error = %yunshu_domain::error::chain(&e), "capacity sample not written; retried on the next pass")
                }
            }
        }
        match result {
            Ok(o) => {
                if !(o.opened.is_empty() && o.closed.is_empty() && o.breached.is_empty()) {
                    tracing::info!(
                        opened = o.opened.len(),
                        closed = o.closed.len(),
                        breached = o.breached.len(),
                        open = o.open,
                        "capacity pass"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %yunshu_domain::error::chain(&e), "capacity pass failed")
            }
        }
        tokio::select! {
            () = r.capacity.dirty.notified() => {}
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests;
