//! The report a unit admin reads about the tenants under its unit (003
//! §3.2.2.15 hierarchical administration): per tenant, how many information
//! systems, its work orders by state, its resources by kind, and what its
//! systems are charged this month so far ([`crate::cost`]). Figures only —
//! no system, order or resource one by one: a unit admin is not a tenant
//! user. Who may read it for which tenants is the caller's decision.
//!
//! Reads whole record kinds once and groups them by tenant, so one report is
//! three scans plus the orders of each system for its cost.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;
use yunshu_domain::TenantCode;
use yunshu_domain::calendar::CHINA_STANDARD_TIME;
use yunshu_domain::order::WorkOrder;
use yunshu_domain::resource::Resource;
use yunshu_domain::system::InformationSystem;
use yunshu_domain::tenant::Tenant;
use yunshu_store::{Store, page, records};

use crate::{WorkflowError, cost, expansion, usage};

/// One tenant's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantReport {
    pub tenant: String,
    pub name: String,
    /// The unit the tenant is attached to.
    pub org_unit: Option<String>,
    pub systems: usize,
    /// Work orders by state (`draft`, `submitted` … as the orders API spells them).
    pub orders_by_state: BTreeMap<String, usize>,
    /// Resources by kind (`vm`, `volume` …).
    pub resources_by_kind: BTreeMap<String, usize>,
    /// `YYYY-MM` (China Standard Time): the month `cost_fen` covers.
    pub month: String,
    /// What the tenant's systems are charged this month so far, in fen.
    pub cost_fen: u64,
    /// `false` when some system's catalog prices nothing (Datong's): then
    /// `cost_fen` is not a charge.
    pub priced: bool,
}

/// The reports of `tenants`, in their order, at `now`.
pub async fn tenant_reports(
    store: &dyn Store,
    tenants: &[Tenant],
    now: DateTime<Utc>,
) -> Result<Vec<TenantReport>, WorkflowError> {
    let wanted: BTreeSet<&TenantCode> = tenants.iter().map(|t| &t.code).collect();
    let today = now.with_timezone(&CHINA_STANDARD_TIME).date_naive();
    let first: NaiveDate = today.with_day(1).unwrap_or(today);
    let month = format!("{:04}-{:02}", first.year(), first.month());

    let systems =
        page::scan_all_under::<InformationSystem>(store, &records::prefix::<InformationSystem>())
            .await
            .map_err(WorkflowError::store("system scan"))?;
    let orders = page::scan_all_under::<WorkOrder>(store, &records::prefix::<WorkOrder>())
        .await
        .map_err(WorkflowError::store("order scan"))?;
    let resources = page::scan_all_under::<Resource>(store, &records::prefix::<Resource>())
        .await
        .map_err(WorkflowError::store("resource scan"))?;

    let mut out: BTreeMap<&TenantCode, TenantReport> = tenants
        .iter()
        .map(|t| {
            (
                &t.code,
                TenantReport {
                    tenant: t.code.to_string(),
                    name: t.name.to_string(),
                    org_unit: t.org_unit.as_ref().map(ToString::to_string),
                    systems: 0,
                    orders_by_state: BTreeMap::new(),
                    resources_by_kind: BTreeMap::new(),
                    month: month.clone(),
                    cost_fen: 0,
                    priced: true,
                },
            )
        })
        .collect();
    for (o, _) in &orders {
        if let Some(r) = out.get_mut(o.system().tenant()) {
            *r.orders_by_state.entry(o.state().to_string()).or_default() += 1;
        }
    }
    for (res, _) in &resources {
        if let Some(r) = out.get_mut(res.system().tenant()) {
            let kind = res.kind().as_str().to_owned();
            *r.resources_by_kind.entry(kind).or_default() += 1;
        }
    }
    for (s, _) in &systems {
        let tenant = s.number.tenant();
        if !wanted.contains(tenant) {
            continue;
        }
        let system_orders = expansion::orders_of(store, &s.number).await?;
        let catalog = cost::catalog_for(&system_orders);
        let term = usage::load(store, &s.number).await?;
        let offline_at = usage::offline_since(term.as_ref().map(|(t, _)| t));
        let charged = cost::month_cost(&system_orders, &catalog, first, offline_at, now);
        if let Some(r) = out.get_mut(tenant) {
            r.systems += 1;
            r.cost_fen = r.cost_fen.saturating_add(charged.total_fen);
            r.priced &= charged.priced || charged.total_fen == 0;
        }
    }
    Ok(tenants.iter().filter_map(|t| out.remove(&t.code)).collect())
}
