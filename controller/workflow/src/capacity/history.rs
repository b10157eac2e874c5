//! Capacity over time: one sample per pool per interval (an hour by default)
//! of every resource's allocated and total figures, kept [`RETAIN_DAYS`]
//! days. The provider operator's trend chart, the 80 % line's history and
//! the daily platform figures of the supervision export (003 §2.2.4) read
//! them.
//!
//! Keys sort by time first (`capacity_sample/<unix seconds, 12 digits>/
//! <provider>/<pool>`), so a window is one range read and pruning walks from
//! the oldest key. A sample holds the figures of the first capacity pass of
//! its interval; a new leader writing the same interval again overwrites it
//! with figures as current, so nothing is lost or doubled.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};
use yunshu_domain::Record;
use yunshu_placement::PoolCapacity;
use yunshu_store::{MAX_TXN_OPS, PageRequest, Store, StoreError, Txn, records};

use super::{resource_label, resources};

/// How long samples are kept.
pub const RETAIN_DAYS: i64 = 90;

/// At most this many expired samples are deleted per sampling round, so a
/// leader that was away long catches up over several rounds.
const PRUNE_PER_ROUND: usize = 1_000;

/// One resource's figures in a sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Figure {
    /// `vcpu`, `memory`, `storage:<class>`, `bandwidth` or `public_ips`.
    pub resource: String,
    pub allocated: u64,
    pub total: u64,
}

/// A pool's figures at the start of one sampling interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacitySample {
    pub at: DateTime<Utc>,
    pub provider: String,
    pub pool: String,
    pub figures: Vec<Figure>,
}

impl Record for CapacitySample {
    const KIND: &'static str = "capacity_sample";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        format!("{}/{}/{}", stamp(self.at), self.provider, self.pool)
    }
}

/// Twelve digits of Unix seconds: keys sort in time order until year 33658.
fn stamp(at: DateTime<Utc>) -> String {
    format!("{:012}", at.timestamp().max(0))
}

/// The start of the interval of length `every` that holds `now`.
pub fn bucket(now: DateTime<Utc>, every: std::time::Duration) -> DateTime<Utc> {
    let every = i64::try_from(every.as_secs()).unwrap_or(i64::MAX).max(1);
    let secs = now.timestamp().div_euclid(every) * every;
    DateTime::from_timestamp(secs, 0).unwrap_or(now)
}

fn sample_of(at: DateTime<Utc>, pool: &PoolCapacity) -> CapacitySample {
    CapacitySample {
        at,
        provider: pool.pool.provider.to_string(),
        pool: pool.pool.pool.to_string(),
        figures: resources(pool)
            .into_iter()
            .map(|(r, u)| Figure {
                resource: resource_label(&r),
                allocated: u.allocated,
                total: u.total,
            })
            .collect(),
    }
}

/// Writes every pool's sample for the interval starting `at`, then deletes
/// samples older than [`RETAIN_DAYS`] before `at`. Returns (written, pruned).
pub async fn record(
    store: &dyn Store,
    pools: &[PoolCapacity],
    at: DateTime<Utc>,
) -> Result<(usize, usize), StoreError> {
    for chunk in pools.chunks(MAX_TXN_OPS) {
        let mut txn = Txn::new();
        for pool in chunk {
            let sample = sample_of(at, pool);
            txn = txn.put(
                records::key::<CapacitySample>(&sample.id()),
                records::encode(&sample),
            );
        }
        store.txn(txn).await?;
    }
    let pruned = prune(store, at - ChronoDuration::days(RETAIN_DAYS)).await?;
    Ok((pools.len(), pruned))
}

/// Deletes up to [`PRUNE_PER_ROUND`] samples taken before `cutoff`.
async fn prune(store: &dyn Store, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
    let prefix = records::prefix::<CapacitySample>();
    let end = format!("{prefix}{}", stamp(cutoff));
    let page = store
        .range(
            &prefix,
            PageRequest {
                after: None,
                limit: PRUNE_PER_ROUND,
            },
        )
        .await?;
    let old: Vec<String> = page
        .items
        .into_iter()
        .map(|kv| kv.key)
        .take_while(|k| *k < end)
        .collect();
    for chunk in old.chunks(MAX_TXN_OPS) {
        let txn = chunk.iter().fold(Txn::new(), |t, k| t.delete(k.clone()));
        store.txn(txn).await?;
    }
    Ok(old.len())
}

/// Every sample taken at or after `since`, oldest first.
pub async fn since(
    store: &dyn Store,
    since: DateTime<Utc>,
) -> Result<Vec<CapacitySample>, StoreError> {
    let prefix = records::prefix::<CapacitySample>();
    // Keys strictly after "<prefix><since − 1 s>/~" are those at or after `since`.
    let mut after = Some(format!(
        "{prefix}{}/~",
        stamp(since - ChronoDuration::seconds(1))
    ));
    let mut out = Vec::new();
    loop {
        let page = store
            .range(
                &prefix,
                PageRequest {
                    after: after.take(),
                    limit: 0,
                },
            )
            .await?;
        for kv in &page.items {
            out.push(records::decode::<CapacitySample>(&kv.key, &kv.value)?);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}
