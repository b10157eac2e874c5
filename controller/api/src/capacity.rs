//! Capacity over HTTP: `GET /api/v1/capacity` (the leader's capacity snapshot:
//! per pool total / allocated / free / ratio of every resource and the largest
//! VM that fits now) and `GET /api/v1/expansion-orders` (filter `open`).
//!
//! Owns the wire shapes and who may read them: platform staff with
//! `capacity_read` (approvers) see every provider; provider operators see their
//! own provider's pools and orders only; everyone else gets 403. Must not
//! compute figures or decide the 80 % rule: the reconciler's capacity manager
//! does and writes them to the store (`yunshu_workflow::capacity`).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::ProviderId;
use yunshu_domain::provider::NetworkAreaKind;
use yunshu_domain::user::Permission;
use yunshu_placement::{PoolCapacity, ShapeRoom, Usage};
use yunshu_workflow::WorkflowError;
use yunshu_workflow::capacity::{self, ExpansionOrder, THRESHOLD_PERCENT, over_line};

use crate::error::ApiError;
use crate::json::ApiQuery;
use crate::state::AppState;
use crate::workflow_error::workflow_error;

/// Which providers' capacity the caller may read; `None` = every provider.
fn readable(caller: &Principal) -> Result<Option<Vec<ProviderId>>, ApiError> {
    if caller.can(Permission::CapacityRead, None) {
        return Ok(None);
    }
    let mine: Vec<ProviderId> = caller
        .providers_with(Permission::CapacityRead)
        .into_iter()
        .cloned()
        .collect();
    if mine.is_empty() {
        return Err(workflow_error(WorkflowError::Forbidden));
    }
    Ok(Some(mine))
}

fn may_read(reach: &Option<Vec<ProviderId>>, provider: &ProviderId) -> bool {
    reach.as_ref().is_none_or(|mine| mine.contains(provider))
}

/// Total, allocated and free of one resource.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageView {
    pub total: u64,
    pub allocated: u64,
    pub free: u64,
    /// allocated / total (0 to 1; 1 when something is allocated of nothing).
    pub ratio: f64,
    /// Allocated above the 80 % expansion line.
    pub over_line: bool,
}

impl From<Usage> for UsageView {
    fn from(u: Usage) -> Self {
        UsageView {
            total: u.total,
            allocated: u.allocated,
            free: u.free(),
            ratio: u.ratio(),
            over_line: over_line(&u),
        }
    }
}

/// One storage class of the pool's zone, in GiB.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StorageUsageView {
    pub class: String,
    pub total: u64,
    pub allocated: u64,
    pub free: u64,
    pub ratio: f64,
    pub over_line: bool,
}

/// Room on one host.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShapeView {
    pub host: String,
    pub vcpu: u64,
    pub memory_mib: u64,
}

impl From<&ShapeRoom> for ShapeView {
    fn from(r: &ShapeRoom) -> Self {
        ShapeView {
            host: r.host.to_string(),
            vcpu: r.free_vcpu,
            memory_mib: r.free_memory_mib,
        }
    }
}

/// Fragmentation: the largest VM shapes that can be placed right now, on
/// schedulable hosts. `None` when no host takes VMs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LargestVmView {
    /// The most memory one VM can get (and the vCPU free beside it).
    pub by_memory: Option<ShapeView>,
    /// The most vCPU one VM can get (and the memory free beside it).
    pub by_vcpu: Option<ShapeView>,
}

/// One resource pool (资源池).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoolCapacityView {
    pub provider: String,
    pub pool: String,
    pub zone: String,
    pub network_area: String,
    /// `gov_extranet`, `internet` or `dedicated`.
    pub network_area_kind: &'static str,
    pub arch: String,
    /// vCPU per physical core.
    pub vcpu_ratio: u32,
    pub hosts: u32,
    pub hosts_schedulable: u32,
    /// vCPU: ratio × cores.
    pub vcpu: UsageView,
    /// Memory less each host's reserve (never overcommitted).
    pub memory_mib: UsageView,
    /// Storage classes of the pool's zone (shared with its other pools).
    pub storage_gib: Vec<StorageUsageView>,
    /// Of the pool's zone and network area (shared with its other pools).
    pub bandwidth_mbps: UsageView,
    pub public_ips: UsageView,
    pub largest_vm: LargestVmView,
    /// Set when the controller takes no new VMs on the pool although its
    /// driver reports it, e.g. `POOL_CLOCK_BELOW_MINIMUM` (ARM ≥ 2.4 GHz,
    /// C86 and x86 ≥ 2.2 GHz, 003 §3.2.1.1); its hosts are not schedulable.
    pub unusable: Option<PoolUnusableView>,
}

/// Why the controller places nothing new on a pool.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoolUnusableView {
    /// Stable code, e.g. `POOL_CLOCK_BELOW_MINIMUM`.
    pub code: &'static str,
    pub message: String,
    pub message_zh: String,
}

fn area_kind(kind: NetworkAreaKind) -> &'static str {
    kind.as_str()
}

impl From<&PoolCapacity> for PoolCapacityView {
    fn from(c: &PoolCapacity) -> Self {
        PoolCapacityView {
            provider: c.pool.provider.to_string(),
            pool: c.pool.pool.to_string(),
            zone: c.key.zone.to_string(),
            network_area: c.key.network_area.to_string(),
            network_area_kind: area_kind(c.area_kind),
            arch: c.key.arch.to_string(),
            vcpu_ratio: c.vcpu_ratio,
            hosts: c.hosts,
            hosts_schedulable: c.hosts_schedulable,
            vcpu: c.vcpu.into(),
            memory_mib: c.memory_mib.into(),
            storage_gib: c
                .storage_gib
                .iter()
                .map(|(class, u)| StorageUsageView {
                    class: class.to_string(),
                    total: u.total,
                    allocated: u.allocated,
                    free: u.free(),
                    ratio: u.ratio(),
                    over_line: over_line(u),
                })
                .collect(),
            bandwidth_mbps: c.bandwidth_mbps.into(),
            public_ips: c.public_ips.into(),
            largest_vm: LargestVmView {
                by_memory: c.largest.by_memory.as_ref().map(ShapeView::from),
                by_vcpu: c.largest.by_vcpu.as_ref().map(ShapeView::from),
            },
            unusable: None,
        }
    }
}

/// The capacity snapshot.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CapacityView {
    /// False on a replica that does not lead: the figures are the last it had
    /// (or none) and may be stale.
    pub leader: bool,
    /// When the figures were computed; `null` before the first pass.
    pub computed_at: Option<DateTime<Utc>>,
    /// The expansion line, in percent.
    pub threshold_percent: u64,
    /// Sorted by provider and pool.
    pub pools: Vec<PoolCapacityView>,
}

/// `GET /api/v1/capacity`: the pools the caller may see.
#[utoipa::path(
    get,
    path = "/api/v1/capacity",
    tag = "capacity",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The capacity snapshot", body = CapacityView),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: the caller may not read capacity", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn capacity_get(
    caller: Principal,
    State(state): State<AppState>,
) -> Result<Json<CapacityView>, ApiError> {
    let reach = readable(&caller)?;
    let snapshot = state.capacity.read().unwrap_or_else(|e| e.into_inner());
    Ok(Json(CapacityView {
        leader: snapshot.leader,
        computed_at: snapshot.computed_at,
        threshold_percent: THRESHOLD_PERCENT,
        pools: snapshot
            .pools
            .iter()
            .filter(|p| may_read(&reach, &p.pool.provider))
            .map(|p| {
                let mut view = PoolCapacityView::from(p);
                view.unusable = snapshot
                    .pool_refusals
                    .iter()
                    .find(|r| r.provider == p.pool.provider && r.pool == p.pool.pool)
                    .map(|r| PoolUnusableView {
                        code: r.code,
                        message: r.message.clone(),
                        message_zh: r.message_zh.clone(),
                    });
                view
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExpansionOrderQuery {
    /// `true`: only open orders; `false`: only closed ones.
    pub open: Option<bool>,
}

/// Expansion order (扩容单).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExpansionOrderView {
    pub id: String,
    pub provider: String,
    pub pool: String,
    /// `vcpu`, `memory`, `storage:<class>`, `bandwidth` or `public_ips`.
    pub resource: String,
    pub open: bool,
    pub ratio_at_open: f64,
    pub allocated_at_open: u64,
    pub total_at_open: u64,
    pub opened_at: DateTime<Utc>,
    /// opened_at + 7 natural days.
    pub due_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub ratio_at_close: Option<f64>,
    /// Set once when the order was seen open after `due_at` (SLA breach).
    pub breached_at: Option<DateTime<Utc>>,
}

impl From<ExpansionOrder> for ExpansionOrderView {
    fn from(o: ExpansionOrder) -> Self {
        ExpansionOrderView {
            open: o.is_open(),
            id: o.id,
            provider: o.provider.to_string(),
            pool: o.pool.to_string(),
            resource: o.resource,
            ratio_at_open: o.ratio_at_open,
            allocated_at_open: o.allocated_at_open,
            total_at_open: o.total_at_open,
            opened_at: o.opened_at,
            due_at: o.due_at,
            closed_at: o.closed_at,
            ratio_at_close: o.ratio_at_close,
            breached_at: o.breached_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExpansionOrderList {
    /// Open orders first, each group by opening time.
    pub items: Vec<ExpansionOrderView>,
}

/// `GET /api/v1/expansion-orders`: the orders of the providers the caller may see.
#[utoipa::path(
    get,
    path = "/api/v1/expansion-orders",
    tag = "capacity",
    params(ExpansionOrderQuery),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Expansion orders", body = ExpansionOrderList),
        (status = 400, description = "Malformed query", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: the caller may not read capacity", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn expansion_order_list(
    caller: Principal,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ExpansionOrderQuery>,
) -> Result<Json<ExpansionOrderList>, ApiError> {
    let reach = readable(&caller)?;
    let all = capacity::orders(&*state.store)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(ExpansionOrderList {
        items: all
            .into_iter()
            .filter(|o| may_read(&reach, &o.provider))
            .filter(|o| q.open.is_none_or(|want| want == o.is_open()))
            .map(ExpansionOrderView::from)
            .collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// How many days back, 1–90 (default 7).
    pub days: Option<u32>,
}

/// One pool's figures at one time.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryPoint {
    pub at: DateTime<Utc>,
    pub figures: Vec<capacity::history::Figure>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoolHistory {
    pub provider: String,
    pub pool: String,
    /// Oldest first, one per sampling interval (an hour by default).
    pub points: Vec<HistoryPoint>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CapacityHistory {
    pub since: DateTime<Utc>,
    pub threshold_percent: u64,
    /// Sorted by (provider, pool).
    pub pools: Vec<PoolHistory>,
}

/// `GET /api/v1/capacity/history`: each pool's allocated and total figures
/// over the last `days` days, for the providers the caller may see.
#[utoipa::path(
    get,
    path = "/api/v1/capacity/history",
    tag = "capacity",
    params(HistoryQuery),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Capacity samples per pool", body = CapacityHistory),
        (status = 400, description = "HISTORY_DAYS_INVALID or a malformed query", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: the caller may not read capacity", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn capacity_history(
    caller: Principal,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<CapacityHistory>, ApiError> {
    let reach = readable(&caller)?;
    let days = q.days.unwrap_or(7);
    let max = u32::try_from(capacity::history::RETAIN_DAYS).unwrap_or(90);
    if !(1..=max).contains(&days) {
        return Err(ApiError::refused(
            axum::http::StatusCode::BAD_REQUEST,
            "HISTORY_DAYS_INVALID",
            format!("days must be between 1 and {max}."),
            format!("天数须在 1 到 {max} 之间。"),
        ));
    }
    let since = Utc::now() - chrono::Duration::days(i64::from(days));
    let samples = capacity::history::since(&*state.store, since).await?;
    let mut pools: std::collections::BTreeMap<(String, String), Vec<HistoryPoint>> =
        std::collections::BTreeMap::new();
    for s in samples {
        let readable = ProviderId::new(&s.provider).is_ok_and(|p| may_read(&reach, &p));
        if readable {
            pools
                .entry((s.provider, s.pool))
                .or_default()
                .push(HistoryPoint {
                    at: s.at,
                    figures: s.figures,
                });
        }
    }
    Ok(Json(CapacityHistory {
        since,
        threshold_percent: THRESHOLD_PERCENT,
        pools: pools
            .into_iter()
            .map(|((provider, pool), points)| PoolHistory {
                provider,
                pool,
                points,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::Value;
    use yunshu_domain::ids::{HostId, NetworkAreaId, PoolId, ZoneId};
    use yunshu_domain::provider::HostState;
    use yunshu_domain::{Architecture, ResourceId};
    use yunshu_placement::{HostRef, HostSpec, Index, PoolKey, PoolSpec, VmShape};
    use yunshu_store::records;

    use super::*;
    use crate::test_app::App;

    fn pid(s: &str) -> ProviderId {
        ProviderId::new(s).expect("id")
    }

    /// One pool per provider, `sim` 90 % allocated.
    fn index() -> Index {
        let mut index = Index::new();
        for provider in ["sim", "other"] {
            index
                .upsert_pool(PoolSpec {
                    id: PoolId::new("fsc-gov-arm64").expect("id"),
                    key: PoolKey {
                        provider: pid(provider),
                        zone: ZoneId::new("fsc").expect("id"),
                        network_area: NetworkAreaId::new("fsc-gov").expect("id"),
                        arch: Architecture::Arm64,
                    },
                    area_kind: NetworkAreaKind::GovExtranet,
                    vcpu_ratio: 4,
                })
                .expect("pool");
            index
                .upsert_host(HostSpec {
                    provider: pid(provider),
                    pool: PoolId::new("fsc-gov-arm64").expect("id"),
                    id: HostId::new("h1").expect("id"),
                    cores: 8,
                    memory_mib: 10 * 1024,
                    reserved_memory_mib: 0,
                    state: HostState::Ready,
                    model: None,
                })
                .expect("host");
        }
        let host = HostRef {
            provider: pid("sim"),
            host: HostId::new("h1").expect("id"),
        };
        index
            .reserve_on(
                &host,
                ResourceId::new("vm-1").expect("id"),
                VmShape::new(4, 9 * 1024),
            )
            .expect("fits");
        index
    }

    fn order(provider: &str, open: bool) -> ExpansionOrder {
        let at = Utc
            .with_ymd_and_hms(2026, 3, 2, 2, 0, 0)
            .single()
            .expect("time");
        ExpansionOrder {
            id: format!("EXP-{provider}-0001"),
            provider: pid(provider),
            pool: PoolId::new("fsc-gov-arm64").expect("id"),
            resource: "memory".to_owned(),
            seq: 1,
            ratio_at_open: 0.9,
            allocated_at_open: 9 * 1024,
            total_at_open: 10 * 1024,
            opened_at: at,
            due_at: at + chrono::Duration::days(7),
            closed_at: (!open).then_some(at),
            ratio_at_close: None,
            breached_at: None,
        }
    }

    fn providers(body: &Value, list: &str) -> Vec<String> {
        body[list]
            .as_array()
            .expect("list")
            .iter()
            .map(|p| p["provider"].as_str().expect("provider").to_owned())
            .collect()
    }

    #[tokio::test]
    async fn approvers_see_every_provider_and_operators_their_own() {
        let app = App::with_users().await;
        {
            let mut snap = app.capacity.write().expect("snapshot");
            snap.leader = true;
            snap.pools = index().capacity_report();
        }
        records::create(&*app.store, &order("sim", true))
            .await
            .expect("order");
        records::create(&*app.store, &order("other", false))
            .await
            .expect("order");
        let zhou = app.login("zhou").await;
        let op = app.login("op").await;

        let r = app.call("GET", "/api/v1/capacity", None, &zhou).await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.body);
        assert_eq!(providers(&r.body, "pools"), ["other", "sim"]);
        let r = app.call("GET", "/api/v1/capacity", None, &op).await;
        assert_eq!(providers(&r.body, "pools"), ["sim"]);
        let sim = &r.body["pools"][0];
        assert_eq!(sim["memory_mib"]["allocated"], 9 * 1024);
        assert_eq!(sim["memory_mib"]["free"], 1024);
        assert_eq!(sim["memory_mib"]["over_line"], true);
        assert_eq!(sim["vcpu"]["total"], 32);
        assert_eq!(sim["largest_vm"]["by_memory"]["memory_mib"], 1024);
        assert_eq!(sim["largest_vm"]["by_vcpu"]["vcpu"], 28);
        assert_eq!(sim["network_area_kind"], "gov_extranet");
        assert_eq!(r.body["threshold_percent"], 80);
        assert!(sim["unusable"].is_null(), "{sim}");

        let list = "/api/v1/expansion-orders";
        let r = app.call("GET", list, None, &zhou).await;
        assert_eq!(providers(&r.body, "items"), ["sim", "other"], "open first");
        let r = app
            .call("GET", &format!("{list}?open=false"), None, &zhou)
            .await;
        assert_eq!(providers(&r.body, "items"), ["other"]);
        let r = app.call("GET", list, None, &op).await;
        assert_eq!(providers(&r.body, "items"), ["sim"]);
        assert_eq!(r.body["items"][0]["due_at"], "2026-03-09T02:00:00Z");
        let r = app
            .call("GET", &format!("{list}?open=maybe"), None, &zhou)
            .await;
        assert_eq!(r.status.as_u16(), 400, "{}", r.body);
    }

    /// Seed 003 §3.2.1.1 (ARM ≥ 2.4 GHz, C86 and x86 ≥ 2.2 GHz): a pool the
    /// reconciler's inventory intake refused shows in `GET /api/v1/capacity`
    /// with its code and both reasons (the intake itself is tested in
    /// `yunshu-reconciler` providers).
    #[tokio::test]
    async fn seed_003_3_2_1_1_a_pool_below_the_clock_minimum_shows_why_in_capacity() {
        let app = App::with_users().await;
        {
            let mut snap = app.capacity.write().expect("snapshot");
            snap.leader = true;
            snap.pools = index().capacity_report();
            let sim = snap
                .pools
                .iter()
                .find(|p| p.pool.provider.as_str() == "sim")
                .expect("sim pool")
                .pool
                .clone();
            snap.pool_refusals = vec![yunshu_workflow::capacity::PoolRefusal {
                provider: sim.provider,
                pool: sim.pool,
                code: "POOL_CLOCK_BELOW_MINIMUM",
                message: "clocked at 2300 MHz, below the 2400 MHz minimum".to_owned(),
                message_zh: "低于最低主频".to_owned(),
            }];
        }
        let zhou = app.login("zhou").await;
        let r = app.call("GET", "/api/v1/capacity", None, &zhou).await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.body);
        let pools = r.body["pools"].as_array().expect("pools");
        let by = |provider: &str| {
            pools
                .iter()
                .find(|p| p["provider"] == provider)
                .expect("pool")
        };
        assert_eq!(
            by("sim")["unusable"]["code"],
            "POOL_CLOCK_BELOW_MINIMUM",
            "{}",
            r.body
        );
        assert!(
            by("sim")["unusable"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("2400 MHz"))
        );
        assert!(by("other")["unusable"].is_null());
    }

    #[tokio::test]
    async fn history_keeps_one_sample_per_interval_prunes_after_90_days_and_is_scoped() {
        use yunshu_workflow::capacity::history;
        let app = App::with_users().await;
        let pools = index().capacity_report();
        let hour = std::time::Duration::from_secs(3600);
        let now = Utc::now();
        // Four hourly samples in the last 4 hours, one 100 days ago.
        let old = history::bucket(now - chrono::Duration::days(100), hour);
        history::record(&*app.store, &pools, old)
            .await
            .expect("old");
        let mut pruned = 0;
        for h in (0..4).rev() {
            let at = history::bucket(now - chrono::Duration::hours(h), hour);
            // Written twice in its interval: still one sample.
            for _ in 0..2 {
                let (written, p) = history::record(&*app.store, &pools, at)
                    .await
                    .expect("sample");
                assert_eq!(written, 2);
                pruned += p;
            }
        }
        assert_eq!(pruned, 2, "the 100-day-old sample of both pools went");

        let zhou = app.login("zhou").await;
        let op = app.login("op").await;
        let r = app
            .call("GET", "/api/v1/capacity/history?days=1", None, &zhou)
            .await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.body);
        assert_eq!(providers(&r.body, "pools"), ["other", "sim"]);
        let sim = &r.body["pools"][1];
        let points = sim["points"].as_array().expect("points");
        assert_eq!(points.len(), 4, "{sim}");
        assert!(
            points
                .windows(2)
                .all(|w| w[0]["at"].as_str() < w[1]["at"].as_str())
        );
        let memory = points[0]["figures"]
            .as_array()
            .expect("figures")
            .iter()
            .find(|f| f["resource"] == "memory")
            .cloned()
            .expect("memory");
        assert_eq!(memory["allocated"], 9 * 1024);
        assert_eq!(memory["total"], 10 * 1024);

        let r = app.call("GET", "/api/v1/capacity/history", None, &op).await;
        assert_eq!(
            providers(&r.body, "pools"),
            ["sim"],
            "an operator sees its own"
        );
        for bad in ["0", "91", "x"] {
            let r = app
                .call(
                    "GET",
                    &format!("/api/v1/capacity/history?days={bad}"),
                    None,
                    &zhou,
                )
                .await;
            assert_eq!(r.status.as_u16(), 400, "{bad}: {}", r.body);
        }
        let wang = app.login("wang").await;
        let r = app
            .call("GET", "/api/v1/capacity/history", None, &wang)
            .await;
        assert_eq!(r.status.as_u16(), 403, "a department user: {}", r.body);
    }
}
