//! A system's charge for one month, as SPEC §6 defines it: catalog unit
//! price × quantity × time. Time starts at delivery confirmation (交付确认,
//! 000 art. 14) and stops once the exit is carried out and the resources are
//! reclaimed (000 art. 16), or when the system is forced offline at the end of
//! its usage period (002 art. 14); quantity is what the approved orders set at each
//! moment (a change counts from its approval), so a month with a change is
//! charged piecewise. Figures are in fen, pro rata to the second of the
//! month in China Standard Time.
//!
//! Priced: vCPU, memory, disks (system + data, the catalog's standard
//! storage class) and backup space — what a server line asks for. Items a
//! line does not carry (public IPs, bandwidth, security services) and
//! penalties are the statement's, not this estimate's.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use yunshu_domain::calendar::CHINA_STANDARD_TIME;
use yunshu_domain::catalog::BillingMode;
use yunshu_domain::catalog_data::{Catalog, CatalogEntry, Measure};
use yunshu_domain::order::{OrderKind, OrderState, WorkOrder};

use super::orders::OrderTrack;
use crate::desired::{self, Group};

/// One priced measure of the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CostItem {
    /// `vcpu`, `memory_gib`, `storage_gib` or `backup_gib`.
    pub measure: String,
    /// The catalog item charged.
    pub code: String,
    pub name: String,
    /// The item's unit price in fen per its unit and period, as printed.
    pub unit_price_fen: u64,
    pub unit: String,
    /// Units held at the end of the month's billed time (or now).
    pub units: u64,
    pub amount_fen: u64,
}

/// A system's charge for one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonthCost {
    /// `YYYY-MM`.
    pub month: String,
    pub catalog: String,
    /// Delivery confirmation; `None`: not delivered, nothing is charged.
    pub billing_from: Option<DateTime<Utc>>,
    /// Resources reclaimed after the exit, or the system forced offline at the
    /// end of its usage period (002 art. 14), whichever came first; `None`:
    /// still charged.
    pub billing_until: Option<DateTime<Utc>>,
    /// Seconds of the month charged so far.
    pub billed_seconds: i64,
    pub items: Vec<CostItem>,
    pub total_fen: u64,
    /// Whether the catalog prices vCPU and memory; `false` (e.g. Datong's
    /// catalog, whose tender prices are not public): the total is not a charge.
    pub priced: bool,
}

/// The catalog a system is charged from: Datong's for orders under Datong's
/// rules, Beijing's base catalog otherwise (the other presets publish none).
pub fn catalog_for(orders: &[(WorkOrder, OrderTrack)]) -> Catalog {
    if orders.iter().any(|(_, t)| t.policy.as_str() == "datong") {
        Catalog::datong_2023()
    } else {
        Catalog::beijing_2023()
    }
}

/// `YYYY-MM` → the month's first day.
pub fn parse_month(text: &str) -> Option<NaiveDate> {
    let (y, m) = text.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)
}

fn cst_midnight(day: NaiveDate) -> DateTime<Utc> {
    let naive = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    CHINA_STANDARD_TIME
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&naive))
}

fn next_month(first: NaiveDate) -> NaiveDate {
    let (y, m) = if first.month() == 12 {
        (first.year() + 1, 1)
    } else {
        (first.year(), first.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(first)
}

/// When an order changes what is charged: an approval (or emergency filing)
/// sets groups; an exit clears them once carried out (reclaimed), not when
/// approved — the charge runs until the resources are gone.
fn charged_from(order: &WorkOrder, track: &OrderTrack) -> Option<DateTime<Utc>> {
    let reached = |s: OrderState| {
        order
            .history()
            .iter()
            .rev()
            .find(|h| h.to == s)
            .map(|h| h.at)
    };
    match order.kind() {
        OrderKind::Exit => reached(OrderState::Exited),
        _ => reached(OrderState::Approved).or(track.emergency.as_ref().map(|e| e.at)),
    }
}

/// The entry pricing `measure` for a server of `arch`: an item tagged for the
/// architecture wins over an untagged one; storage is the standard class.
fn entry(
    catalog: &Catalog,
    measure: Measure,
    arch: yunshu_domain::Architecture,
) -> Option<&CatalogEntry> {
    let fitting = catalog.entries().iter().filter(|e| {
        let r = e.resource();
        r.measure == measure
            && e.price().is_some()
            && e.arch().is_none_or(|tag| tag.admits(arch))
            && (measure != Measure::StorageGib
                || r.class.as_ref().is_none_or(|c| c.as_str() == "standard"))
    });
    let all: Vec<&CatalogEntry> = fitting.collect();
    all.iter()
        .find(|e| e.arch().is_some())
        .or(all.first())
        .copied()
}

/// Units of `measure` one server of `group` holds.
fn units(group: &Group, measure: Measure) -> u64 {
    let s = &group.server;
    u64::from(match measure {
        Measure::Vcpu => s.vcpu.get(),
        Measure::MemoryGib => s.memory_gib.get(),
        Measure::StorageGib => s.system_disk_gib.get().saturating_add(s.data_disk_gib),
        Measure::BackupGib => s.backup_gib,
        _ => 0,
    })
}

const MEASURES: [Measure; 4] = [
    Measure::Vcpu,
    Measure::MemoryGib,
    Measure::StorageGib,
    Measure::BackupGib,
];

/// Fen per month for `units` of `e` (its price is per `quantity` units, per
/// month or per year), times 1,000,000 to keep precision until the end.
fn micro_fen_per_month(e: &CatalogEntry, units: u64) -> u128 {
    let price = u128::from(e.price().map_or(0, |f| f.0));
    let per = u128::from(e.resource().quantity.max(1));
    let yearly = matches!(e.billing(), BillingMode::Yearly);
    let per_month = price * u128::from(units) * 1_000_000 / per;
    if yearly { per_month / 12 } else { per_month }
}

/// The system's charge for the month starting `first` (CST), up to `now`.
/// `offline_at`: when the system was forced offline (002 art. 14,
/// [`crate::usage::offline_since`]); nothing is charged from then on.
pub fn month_cost(
    orders: &[(WorkOrder, OrderTrack)],
    catalog: &Catalog,
    first: NaiveDate,
    offline_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> MonthCost {
    let month_start = cst_midnight(first);
    let month_end = cst_midnight(next_month(first));
    let month_secs = (month_end - month_start).num_seconds().max(1);
    let billing_from = orders
        .iter()
        .filter(|(o, _)| matches!(o.kind(), OrderKind::Onboarding | OrderKind::GoLive))
        .filter_map(|(_, t)| t.delivered_at)
        .min();
    // An exit order carried out, or the onboarding order's own exit path
    // (live → exit requested → exited): the charge ends there.
    let billing_until = orders
        .iter()
        .filter_map(|(o, t)| match o.kind() {
            OrderKind::Exit => charged_from(o, t),
            OrderKind::Onboarding => o
                .history()
                .iter()
                .rev()
                .find(|h| h.to == OrderState::Exited)
                .map(|h| h.at),
            _ => None,
        })
        .max();
    // A forced offline (002 art. 14) ends the charge too, if it came first.
    // A suspension (002 art. 18, 004 art. 27) does not: the interruption is
    // temporary, for the department's own event, and everything stays
    // reserved for it (`crate::suspension`, docs/seed-rules.md).
    let billing_until = match (billing_until, offline_at) {
        (Some(exit), Some(offline)) => Some(exit.min(offline)),
        (exit, offline) => exit.or(offline),
    };
    // Moments at which what is charged changes, oldest first.
    let mut moments: Vec<(DateTime<Utc>, usize)> = orders
        .iter()
        .enumerate()
        .filter_map(|(i, (o, t))| charged_from(o, t).map(|at| (at, i)))
        .collect();
    moments.sort();
    let window_start = billing_from.map_or(month_end, |f| f.max(month_start));
    let window_end = billing_until.unwrap_or(month_end).min(month_end).min(now);
    let mut amounts: BTreeMap<&'static str, (u128, u64, Option<&CatalogEntry>)> = BTreeMap::new();
    let mut billed = 0i64;
    for (k, (at, _)) in moments.iter().enumerate() {
        let seg_start = (*at).max(window_start);
        let seg_end = moments
            .get(k + 1)
            .map_or(window_end, |(next, _)| (*next).min(window_end));
        let secs = (seg_end - seg_start).num_seconds();
        // The groups after the first k+1 changes; exits not yet carried out
        // are left out, so their servers are still charged.
        let upto: Vec<(WorkOrder, OrderTrack)> = moments[..=k]
            .iter()
            .map(|(_, i)| orders[*i].clone())
            .collect();
        // The onboarding order's own exit is not read back into the past: its
        // groups are charged until the exit (`billing_until`).
        let groups = desired::groups_charged(&upto);
        for m in MEASURES {
            let slot = amounts.entry(m.as_str()).or_insert((0, 0, None));
            let mut held = 0u64;
            for g in groups.values() {
                let Some(e) = entry(catalog, m, g.server.architecture) else {
                    continue;
                };
                let n = units(g, m).saturating_mul(u64::from(g.quantity));
                held = held.saturating_add(n);
                if secs > 0 {
                    slot.0 += micro_fen_per_month(e, n) * secs as u128 / month_secs as u128;
                }
                slot.2 = Some(e);
            }
            slot.1 = held;
        }
        if secs > 0 {
            billed += secs;
        }
    }
    let items: Vec<CostItem> = MEASURES
        .iter()
        .filter_map(|m| {
            let (micro, units, e) = amounts.get(m.as_str())?;
            let e = (*e)?;
            Some(CostItem {
                measure: m.as_str().to_owned(),
                code: e.code().as_str().to_owned(),
                name: e.name().to_string(),
                unit_price_fen: e.price().map_or(0, |f| f.0),
                unit: e.unit().printed().to_owned(),
                units: *units,
                amount_fen: u64::try_from((micro + 500_000) / 1_000_000).unwrap_or(u64::MAX),
            })
        })
        .collect();
    MonthCost {
        month: first.format("%Y-%m").to_string(),
        catalog: catalog.id().to_string(),
        billing_from,
        billing_until,
        billed_seconds: billed,
        total_fen: items.iter().map(|i| i.amount_fen).sum(),
        priced: ["vcpu", "memory_gib"]
            .iter()
            .all(|m| items.iter().any(|i| i.measure == *m)),
        items,
    }
}
