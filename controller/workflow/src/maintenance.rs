//! Planned maintenance windows (计划内维护), announced ahead to the systems
//! they affect: 000 art. 18 ("因调整可能影响云上政务信息系统正常运行的，要提前
//! 3 个工作日通知政务云使用部门") and 004 art. 19 ("云平台计划内升级维护应提前
//! 至少 3 个工作日通知使用单位").
//!
//! Owns the record `maintenance/<id>`: who announced which provider (and,
//! optionally, which of its zones) would be down from when to when, what is
//! affected and why; the notice rule (the window may start at the earliest at
//! the end of the policy's `maintenance_notice` step counted from the
//! announcement); an emergency repair (故障抢修), which is not planned
//! maintenance and so owes no notice, but must say why; cancellation; and who
//! sees which window. Every write goes with its audit entry in one
//! transaction. Must not notify anyone by other channels (the list is the
//! notice: tenants read it in the API and on the portal's dashboard) or touch
//! resources.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::calendar::{Step, local_date};
use yunshu_domain::ids::ZoneId;
use yunshu_domain::resource::Resource;
use yunshu_domain::user::Permission;
use yunshu_domain::{Actor, ProviderId, Record, Text};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{Revision, Store, Txn, page, records};

use super::rules::Rules;
use super::{WorkflowError, audit_draft};

/// Who cancelled a window, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    pub by: Actor,
    pub at: DateTime<Utc>,
    pub reason: Text,
}

/// The notice a planned window was held to when it was announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Working days of notice (3 under 000 art. 18 and 004 art. 19).
    pub working_days: u32,
    /// The earliest start the rule allowed: the end of the last notice day.
    pub earliest_start: DateTime<Utc>,
    /// Citation of the rule, e.g. `"000 art. 18"`.
    pub source: String,
}

/// One announced maintenance window of a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    pub id: String,
    pub provider: ProviderId,
    /// The zones affected; empty: the whole provider.
    #[serde(default)]
    pub zones: Vec<ZoneId>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// What is affected (e.g. "存储扩容期间云主机可能短暂中断").
    pub affects: Text,
    /// Why the work is done.
    pub reason: Text,
    /// An emergency repair (故障抢修): exempt from the notice.
    #[serde(default)]
    pub emergency: bool,
    /// Why it could not wait for the notice; present exactly when `emergency`.
    #[serde(default)]
    pub emergency_reason: Option<Text>,
    /// The notice the window was held to; `None` for an emergency, or when no
    /// policy in force sets `maintenance_notice`.
    #[serde(default)]
    pub notice: Option<Notice>,
    pub announced_by: Actor,
    pub announced_at: DateTime<Utc>,
    #[serde(default)]
    pub cancelled: Option<Cancellation>,
}

impl Record for MaintenanceWindow {
    const KIND: &'static str = "maintenance";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.id.clone()
    }
}

impl MaintenanceWindow {
    /// Where the window stands at `now`: `upcoming`, `in_progress`,
    /// `cancelled` (before its end) or `ended` (cancelled or not: once its
    /// time is over nobody needs to prepare for it).
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        if now >= self.ends_at {
            "ended"
        } else if self.cancelled.is_some() {
            "cancelled"
        } else if now >= self.starts_at {
            "in_progress"
        } else {
            "upcoming"
        }
    }

    /// Whether the window concerns a resource placed on `provider` in `zone`.
    pub fn affects_placement(&self, provider: &ProviderId, zone: &ZoneId) -> bool {
        &self.provider == provider && (self.zones.is_empty() || self.zones.contains(zone))
    }
}

/// What an announcement asks for.
#[derive(Debug, Clone)]
pub struct Announcement {
    pub provider: ProviderId,
    pub zones: Vec<ZoneId>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub affects: Text,
    pub reason: Text,
    pub emergency: bool,
    pub emergency_reason: Option<Text>,
}

/// The notice planned maintenance owes when announced at `now`: the longest
/// `maintenance_notice` of the policies in force. A window may affect systems
/// under any of them, and the platform cannot announce one window twice, so
/// the strictest rule holds for all (Datong 000 art. 18 and Beijing 004 art.
/// 19 both say 3 working days; Yongjia sets none). `None`: no policy sets one.
///
/// Errors: `CALENDAR_YEAR_UNKNOWN` when the calendar lacks the year.
pub fn notice_at(rules: &Rules, now: DateTime<Utc>) -> Result<Option<Notice>, WorkflowError> {
    let mut best: Option<Notice> = None;
    for (policy, _) in rules.policies() {
        let Some(deadline) = policy
            .deadline(Step::MaintenanceNotice, now, &rules.calendar)
            .map_err(WorkflowError::invalid)?
        else {
            continue;
        };
        let later = best
            .as_ref()
            .is_none_or(|b| deadline.due_at() > b.earliest_start);
        if later {
            best = Some(Notice {
                working_days: deadline.period.amount(),
                earliest_start: deadline.due_at(),
                source: deadline.source.clone(),
            });
        }
    }
    Ok(best)
}

/// Whether the caller may announce or cancel maintenance of `provider`: an
/// operator of that provider (its provider-scoped binding; `ExpansionHandle`
/// is the provider's own work on its platform), or the platform's approver
/// (`OrderApprove` platform-wide).
fn may_manage(caller: &Principal, provider: &ProviderId) -> bool {
    caller.can(Permission::OrderApprove, None)
        || caller
            .providers_with(Permission::ExpansionHandle)
            .contains(&provider)
}

/// Announces a window (`POST /api/v1/maintenance`). Refusals write nothing.
///
/// Errors: `FORBIDDEN` (not an operator of that provider nor the approver),
/// `MAINTENANCE_END_NOT_AFTER_START`, `MAINTENANCE_EMERGENCY_REASON_REQUIRED`,
/// `MAINTENANCE_NOTICE_TOO_SHORT` (planned, starting before the end of the
/// notice; names the earliest allowed start).
pub async fn announce(
    store: &dyn Store,
    caller: &Principal,
    req: Announcement,
    now: DateTime<Utc>,
) -> Result<MaintenanceWindow, WorkflowError> {
    if !may_manage(caller, &req.provider) {
        return Err(WorkflowError::Forbidden);
    }
    if req.ends_at <= req.starts_at {
        return Err(WorkflowError::MaintenanceEndNotAfterStart {
            starts_at: req.starts_at,
            ends_at: req.ends_at,
        });
    }
    let notice = if req.emergency {
        // 故障抢修 is repair of a fault, not a planned adjustment: 000 art. 18
        // and 004 art. 19 ask notice of planned work only; the reason is what
        // lets people check that afterwards.
        if req.emergency_reason.is_none() {
            return Err(WorkflowError::MaintenanceEmergencyReasonRequired);
        }
        None
    } else {
        let rules = super::rules::load(store).await?;
        let notice = notice_at(&rules, now)?;
        if let Some(n) = &notice
            && req.starts_at < n.earliest_start
        {
            return Err(WorkflowError::MaintenanceNoticeTooShort {
                earliest_start: n.earliest_start,
                working_days: n.working_days,
                citation: n.source.clone(),
            });
        }
        notice
    };
    let mut zones = req.zones;
    zones.sort();
    zones.dedup();
    let suffix: u32 = rand::rng().random();
    let window = MaintenanceWindow {
        id: format!("MW-{}-{suffix:08x}", local_date(now).format("%Y%m%d")),
        provider: req.provider,
        zones,
        starts_at: req.starts_at,
        ends_at: req.ends_at,
        affects: req.affects,
        reason: req.reason,
        emergency: req.emergency,
        emergency_reason: if req.emergency {
            req.emergency_reason
        } else {
            None
        },
        notice,
        announced_by: caller.actor.clone(),
        announced_at: now,
        cancelled: None,
    };
    let detail = format!(
        "{} {}{} {} .. {}{}: {}",
        if window.emergency {
            "emergency"
        } else {
            "planned"
        },
        window.provider,
        if window.zones.is_empty() {
            String::new()
        } else {
            format!(
                " zones {}",
                window
                    .zones
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            )
        },
        window.starts_at.to_rfc3339(),
        window.ends_at.to_rfc3339(),
        window
            .emergency_reason
            .as_ref()
            .map(|r| format!(" (故障抢修: {r})"))
            .unwrap_or_default(),
        window.affects,
    );
    save(
        store,
        caller,
        &window,
        0,
        "maintenance.announce",
        detail,
        now,
    )
    .await?;
    Ok(window)
}

/// Cancels a window the caller manages (`POST /api/v1/maintenance/{id}/cancel`).
///
/// Errors: `MAINTENANCE_NOT_FOUND` (missing or not visible to the caller),
/// `FORBIDDEN` (visible but not the caller's to manage: a tenant),
/// `MAINTENANCE_CANCEL_REFUSED` (cancelled already, or over).
pub async fn cancel(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
    reason: Text,
    now: DateTime<Utc>,
) -> Result<MaintenanceWindow, WorkflowError> {
    let not_found = || WorkflowError::MaintenanceNotFound { id: id.to_owned() };
    let (mut window, rev) = records::get::<MaintenanceWindow>(store, id)
        .await
        .map_err(WorkflowError::store("maintenance read"))?
        .ok_or_else(not_found)?;
    let scope = Visibility::of(store, caller).await?;
    if !scope.sees(&window) {
        return Err(not_found());
    }
    if !may_manage(caller, &window.provider) {
        return Err(WorkflowError::Forbidden);
    }
    if window.cancelled.is_some() || window.ends_at <= now {
        return Err(WorkflowError::MaintenanceCancelRefused { id: id.to_owned() });
    }
    let detail = reason.to_string();
    window.cancelled = Some(Cancellation {
        by: caller.actor.clone(),
        at: now,
        reason,
    });
    save(
        store,
        caller,
        &window,
        rev,
        "maintenance.cancel",
        detail,
        now,
    )
    .await?;
    Ok(window)
}

/// Every window the caller may see, latest start first; empty for a caller
/// who sees none (a tenant with nothing placed on a provider under
/// maintenance learns nothing about it, not even that it exists).
pub async fn list(
    store: &dyn Store,
    caller: &Principal,
) -> Result<Vec<MaintenanceWindow>, WorkflowError> {
    let scope = Visibility::of(store, caller).await?;
    let mut windows: Vec<MaintenanceWindow> =
        page::scan_all_under::<MaintenanceWindow>(store, &records::prefix::<MaintenanceWindow>())
            .await
            .map_err(WorkflowError::store("maintenance list"))?
            .into_iter()
            .map(|(w, _)| w)
            .filter(|w| scope.sees(w))
            .collect();
    windows.sort_by(|a, b| b.starts_at.cmp(&a.starts_at).then(a.id.cmp(&b.id)));
    Ok(windows)
}

/// Which windows a caller sees.
enum Visibility {
    /// Platform staff: every window.
    All,
    /// Operators: their providers' windows, and where the caller is also a
    /// tenant member, the placements below.
    Providers(Vec<ProviderId>, BTreeSet<(ProviderId, ZoneId)>),
    /// Tenants: windows touching a provider and zone where one of their
    /// systems' resources is placed, and nothing else.
    Placements(BTreeSet<(ProviderId, ZoneId)>),
}

impl Visibility {
    async fn of(store: &dyn Store, caller: &Principal) -> Result<Visibility, WorkflowError> {
        // Staff of the management unit (reviewer, approver) and the platform
        // admin, who runs the providers' drivers: windows are about the
        // platform, not a tenant's business data.
        if caller.can(Permission::OrderRead, None) || caller.can(Permission::DriverManage, None) {
            return Ok(Visibility::All);
        }
        let placements = placements_seen(store, caller).await?;
        let providers: Vec<ProviderId> = caller
            .providers_with(Permission::OrderRead)
            .into_iter()
            .cloned()
            .collect();
        Ok(if providers.is_empty() {
            Visibility::Placements(placements)
        } else {
            Visibility::Providers(providers, placements)
        })
    }

    fn sees(&self, w: &MaintenanceWindow) -> bool {
        let placed = |p: &BTreeSet<(ProviderId, ZoneId)>| {
            p.iter()
                .any(|(provider, zone)| w.affects_placement(provider, zone))
        };
        match self {
            Visibility::All => true,
            Visibility::Providers(mine, p) => mine.contains(&w.provider) || placed(p),
            Visibility::Placements(p) => placed(p),
        }
    }
}

/// Where the resources of the systems the caller may read are placed. Scans
/// every resource: the store has no index by tenant, and the listing is read
/// far less often than resources change.
async fn placements_seen(
    store: &dyn Store,
    caller: &Principal,
) -> Result<BTreeSet<(ProviderId, ZoneId)>, WorkflowError> {
    if !caller.permissions().contains(&Permission::ResourceRead) {
        return Ok(BTreeSet::new());
    }
    let resources = page::scan_all_under::<Resource>(store, &records::prefix::<Resource>())
        .await
        .map_err(WorkflowError::store("maintenance placements"))?;
    Ok(resources
        .into_iter()
        .filter(|(r, _)| caller.can(Permission::ResourceRead, Some(r.tenant())))
        .filter_map(|(r, _)| r.placement().map(|p| (p.provider.clone(), p.zone.clone())))
        .collect())
}

async fn save(
    store: &dyn Store,
    caller: &Principal,
    window: &MaintenanceWindow,
    rev: Revision,
    action: &str,
    detail: String,
    now: DateTime<Utc>,
) -> Result<(), WorkflowError> {
    let key = records::key::<MaintenanceWindow>(&window.id);
    let txn = Txn::new()
        .when_mod_revision(key.clone(), rev)
        .put(key.clone(), records::encode(window));
    let draft = audit_draft(caller, action, &key, Some(detail), now)?;
    match audit::append(store, draft, txn)
        .await
        .map_err(WorkflowError::store("maintenance write"))?
    {
        Appended::Committed { .. } => Ok(()),
        Appended::Conflict => Err(WorkflowError::Busy),
    }
}
