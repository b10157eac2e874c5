//! Free temporary expansion (免费的云资源扩展服务): for a short time a system may
//! run up to 20 % more than its approved resources without a new order — the
//! providers' commitment in the Beijing procurement (seed 003 §5, "短期内提供免费
//! 的云资源扩展服务（不超过原有资源的 20%）").
//!
//! Owns the record `work_order_expansion/<system>` (named under the work-order
//! key space so the reconciler's order watch sees it change) and the 20 % rule,
//! counted on vCPU and on memory over all of the system's approved server
//! groups. The reconciler adds the extra members while the expansion lasts and
//! removes them when it ends. Must not provision anything itself.
//!
//! "短期内" is counted by the policy's [`ExpansionRule`] (the system's
//! deadline policy's `[temporary_expansion]`, else the Beijing preset's, from
//! seed 003): days per grant, and days of all grants within a rolling period.
//! The record keeps the grants that ran (`history`), so a renewal — a new
//! grant, whether the last one is still running or ended — is counted with
//! them and an expansion cannot be renewed for ever.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::calendar::{ExpansionRule, Policy, Preset};
use yunshu_domain::order::WorkOrder;
use yunshu_domain::user::Permission;
use yunshu_domain::{Actor, Record, SystemNumber};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{PageRequest, Store, Txn, records};

use super::orders::OrderTrack;
use super::{WorkflowError, audit_draft};
use crate::desired::{self, Group};

/// At most this share over the approved resources, in percent (seed 003).
pub const LIMIT_PERCENT: u64 = 20;
/// "短期": the longest one grant may last when no policy says (the Beijing
/// preset's `max_days_per_grant`).
pub const MAX_DAYS: i64 = 90;

/// A grant that ran: from its request until it ended (its `until`, or the
/// moment a later grant replaced it or it was ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// A system's temporary expansion: extra members per server group, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expansion {
    pub system: SystemNumber,
    /// Server name → extra VMs beyond the approved quantity.
    pub extra: BTreeMap<String, u32>,
    pub until: DateTime<Utc>,
    pub requested_by: Actor,
    pub requested_at: DateTime<Utc>,
    /// The system's earlier grants still inside the policy's period, for the
    /// renewal rule (records written before it have none).
    #[serde(default)]
    pub history: Vec<Grant>,
}

impl Record for Expansion {
    const KIND: &'static str = "work_order_expansion";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.system.to_string()
    }
}

impl Expansion {
    /// Whether it still applies at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        now < self.until
    }

    /// Every grant that has run up to `now`, this one included (cut at `now`
    /// when it still runs): what a new grant is counted with.
    pub fn grants_until(&self, now: DateTime<Utc>) -> Vec<Grant> {
        let mut grants = self.history.clone();
        let end = self.until.min(now);
        if !self.extra.is_empty() && end > self.requested_at {
            grants.push(Grant {
                from: self.requested_at,
                until: end,
            });
        }
        grants
    }
}

/// Days (rounded up) of `grants` inside `[from, to)`.
pub fn days_within(grants: &[Grant], from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    let seconds: i64 = grants
        .iter()
        .map(|g| {
            let (a, b) = (g.from.max(from), g.until.min(to));
            if b > a { (b - a).num_seconds() } else { 0 }
        })
        .sum();
    (seconds + 86_399) / 86_400
}

/// The rule for `system`'s expansion: its deadline policy's (the policy of
/// its first order), else the Beijing preset's.
pub async fn rule_for(
    store: &dyn Store,
    orders: &[(WorkOrder, OrderTrack)],
) -> Result<ExpansionRule, WorkflowError> {
    let policy = orders
        .iter()
        .min_by_key(|(o, _)| o.created_at())
        .map(|(_, t)| t.policy.clone())
        .unwrap_or_else(super::deadline::default_policy);
    let rules = super::rules::load(store).await?;
    let preset = Policy::preset(Preset::Beijing);
    Ok(rules
        .policy(&policy)
        .and_then(Policy::temporary_expansion)
        .or(preset.temporary_expansion())
        .cloned()
        .unwrap_or(ExpansionRule {
            max_days_per_grant: MAX_DAYS,
            window_days: 365,
            max_days_in_window: MAX_DAYS,
            source: "003 四 4.1.2.2(3)".into(),
            note: None,
        }))
}

/// Approved and expanded totals of a system, for the 20 % rule and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Totals {
    pub approved_vcpu: u64,
    pub approved_memory_gib: u64,
    pub extra_vcpu: u64,
    pub extra_memory_gib: u64,
}

impl Totals {
    fn within_limit(&self) -> bool {
        self.extra_vcpu * 100 <= self.approved_vcpu * LIMIT_PERCENT
            && self.extra_memory_gib * 100 <= self.approved_memory_gib * LIMIT_PERCENT
    }
}

/// The totals of `extra` over `groups`; `None` if `extra` names a group the
/// system does not have.
pub fn totals(groups: &BTreeMap<String, Group>, extra: &BTreeMap<String, u32>) -> Option<Totals> {
    let mut t = Totals {
        approved_vcpu: 0,
        approved_memory_gib: 0,
        extra_vcpu: 0,
        extra_memory_gib: 0,
    };
    for g in groups.values() {
        t.approved_vcpu += u64::from(g.quantity) * u64::from(g.server.vcpu.get());
        t.approved_memory_gib += u64::from(g.quantity) * u64::from(g.server.memory_gib.get());
    }
    for (name, n) in extra {
        let g = groups.get(name)?;
        t.extra_vcpu += u64::from(*n) * u64::from(g.server.vcpu.get());
        t.extra_memory_gib += u64::from(*n) * u64::from(g.server.memory_gib.get());
    }
    Some(t)
}

/// The groups with an active expansion's extra members added.
pub fn apply(
    mut groups: BTreeMap<String, Group>,
    expansion: Option<&Expansion>,
    now: DateTime<Utc>,
) -> BTreeMap<String, Group> {
    if let Some(e) = expansion.filter(|e| e.active(now)) {
        // The 20 % is of what is approved now: a change order that lowered
        // the approval after the expansion was granted shrinks what it may
        // add. Members are added group by group, in name order, while the
        // next one stays within the line.
        let (approved_vcpu, approved_memory) = groups.values().fold((0u64, 0u64), |(v, m), g| {
            let q = u64::from(g.quantity);
            (
                v + q * u64::from(g.server.vcpu.get()),
                m + q * u64::from(g.server.memory_gib.get()),
            )
        });
        let (mut vcpu, mut memory) = (0u64, 0u64);
        for (name, n) in &e.extra {
            if let Some(g) = groups.get_mut(name) {
                let (v, m) = (
                    u64::from(g.server.vcpu.get()),
                    u64::from(g.server.memory_gib.get()),
                );
                let mut added = 0;
                while added < *n
                    && (vcpu + v) * 100 <= approved_vcpu * LIMIT_PERCENT
                    && (memory + m) * 100 <= approved_memory * LIMIT_PERCENT
                {
                    vcpu += v;
                    memory += m;
                    added += 1;
                }
                g.quantity = g.quantity.saturating_add(added);
            }
        }
    }
    groups
}

/// Every order of `system` with its track.
pub async fn orders_of(
    store: &dyn Store,
    system: &SystemNumber,
) -> Result<Vec<(WorkOrder, OrderTrack)>, WorkflowError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = records::list::<WorkOrder>(
            store,
            PageRequest {
                after: after.take(),
                limit: 500,
            },
        )
        .await
        .map_err(WorkflowError::store("order scan"))?;
        for o in page.into_iter().filter(|o| o.system() == system) {
            if let Some((t, _)) = records::get::<OrderTrack>(store, o.id().as_str())
                .await
                .map_err(WorkflowError::store("order track read"))?
            {
                out.push((o, t));
            }
        }
        match next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// The system's expansion, if any, with the current totals.
pub async fn get(
    store: &dyn Store,
    caller: &Principal,
    number: &str,
) -> Result<(Option<Expansion>, Totals), WorkflowError> {
    let system = super::systems::system_get(store, caller, number).await?;
    let groups = desired::groups(&orders_of(store, &system.number).await?);
    let expansion = records::get::<Expansion>(store, &system.number.to_string())
        .await
        .map_err(WorkflowError::store("expansion read"))?
        .map(|(e, _)| e);
    let extra = expansion
        .as_ref()
        .map(|e| e.extra.clone())
        .unwrap_or_default();
    let t = totals(&groups, &extra).unwrap_or(Totals {
        approved_vcpu: 0,
        approved_memory_gib: 0,
        extra_vcpu: 0,
        extra_memory_gib: 0,
    });
    Ok((expansion, t))
}

/// Sets (or replaces) the system's expansion: the tenant admin
/// (`ChangeRequest`) asks, and it takes effect at once if it stays within 20 %
/// of the approved vCPU and memory, lasts at most the policy's days per grant
/// (90) and, with the grants before it, at most the policy's days within its
/// period (90 in any 365): `EXPANSION_WINDOW_EXCEEDED` otherwise. A grant
/// replacing one still running is a renewal: the days that one ran count. An
/// empty `extra` ends it (always allowed).
pub async fn set(
    store: &dyn Store,
    caller: &Principal,
    number: &str,
    extra: BTreeMap<String, u32>,
    days: i64,
    now: DateTime<Utc>,
) -> Result<(Expansion, Totals), WorkflowError> {
    let system = super::systems::system_get(store, caller, number).await?;
    if !caller.can(Permission::ChangeRequest, Some(system.tenant())) {
        return Err(WorkflowError::Forbidden);
    }
    let extra: BTreeMap<String, u32> = extra.into_iter().filter(|(_, n)| *n > 0).collect();
    let orders = orders_of(store, &system.number).await?;
    let rule = rule_for(store, &orders).await?;
    let groups = desired::groups(&orders);
    let refused = |t: Option<Totals>| WorkflowError::ExpansionRefused {
        number: system.number.to_string(),
        totals: t,
    };
    let t = totals(&groups, &extra).ok_or_else(|| refused(None))?;
    let ending = extra.is_empty();
    if !ending && (!(1..=rule.max_days_per_grant).contains(&days) || !t.within_limit()) {
        return Err(refused(Some(t)));
    }
    let (previous, revision) = records::get::<Expansion>(store, &system.number.to_string())
        .await
        .map_err(WorkflowError::store("expansion read"))?
        .map_or((None, 0), |(e, r)| (Some(e), r));
    let window = Duration::days(rule.window_days);
    // Grants wholly before any period a later grant can be counted in are
    // dropped, so the record stays small.
    let history: Vec<Grant> = previous
        .map(|p| p.grants_until(now))
        .unwrap_or_default()
        .into_iter()
        .filter(|g| g.until > now - window)
        .collect();
    let until = if ending {
        now
    } else {
        now + Duration::days(days)
    };
    if !ending {
        let used_days = days_within(&history, until - window, now);
        if used_days + days > rule.max_days_in_window {
            return Err(WorkflowError::ExpansionWindowExceeded {
                number: system.number.to_string(),
                used_days,
                requested_days: days,
                max_days_in_window: rule.max_days_in_window,
                window_days: rule.window_days,
                citation: rule.source.clone(),
            });
        }
    }
    let expansion = Expansion {
        system: system.number.clone(),
        extra,
        until,
        requested_by: caller.actor.clone(),
        requested_at: now,
        history,
    };
    let key = records::key::<Expansion>(&expansion.id());
    // On the record as read: two renewals at once are counted one after the
    // other, never both against the same history.
    let txn = Txn::new()
        .when_mod_revision(key.clone(), revision)
        .put(key.clone(), records::encode(&expansion));
    let detail = format!(
        "+{} vCPU / +{} GiB over {} vCPU / {} GiB approved, until {}",
        t.extra_vcpu, t.extra_memory_gib, t.approved_vcpu, t.approved_memory_gib, expansion.until
    );
    let draft = audit_draft(caller, "expansion.set", &key, Some(detail), now)?;
    match audit::append(store, draft, txn)
        .await
        .map_err(WorkflowError::store("expansion write"))?
    {
        Appended::Committed { .. } => Ok((expansion, t)),
        Appended::Conflict => Err(WorkflowError::Busy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> BTreeMap<String, Group> {
        let server: yunshu_domain::order_line::ServerRequest =
            serde_json::from_value(serde_json::json!({
                "server_name": "web", "network_area": "gov_extranet", "form": "vm",
                "architecture": "arm64", "vcpu": 4, "memory_gib": 8, "system_disk_gib": 100,
                "data_disk_gib": 0, "os": "麒麟 V10", "purpose": "应用", "backup_gib": 0
            }))
            .expect("server");
        let g = Group {
            server,
            quantity: 10,
            order: "WO-1".parse().expect("id"),
            provider: None,
            zone: None,
        };
        [("web".to_owned(), g)].into()
    }

    #[test]
    fn twenty_percent_of_vcpu_and_memory() {
        let g = groups();
        let ok = totals(&g, &[("web".to_owned(), 2)].into()).expect("totals");
        assert_eq!((ok.approved_vcpu, ok.extra_vcpu), (40, 8));
        assert!(ok.within_limit(), "exactly 20 %");
        let over = totals(&g, &[("web".to_owned(), 3)].into()).expect("totals");
        assert!(!over.within_limit());
        assert!(totals(&g, &[("db".to_owned(), 1)].into()).is_none());
    }

    fn two_more_web_for_a_day(now: DateTime<Utc>) -> Expansion {
        Expansion {
            system: "110105001".parse().expect("system"),
            extra: [("web".to_owned(), 2)].into(),
            until: now + Duration::days(1),
            requested_by: "user:wang".parse().expect("actor"),
            requested_at: now,
            history: Vec::new(),
        }
    }

    #[test]
    fn an_expansion_adds_members_only_while_active() {
        let now = Utc::now();
        let e = two_more_web_for_a_day(now);
        assert_eq!(apply(groups(), Some(&e), now)["web"].quantity, 12);
        assert_eq!(
            apply(groups(), Some(&e), now + Duration::days(2))["web"].quantity,
            10
        );
    }

    #[test]
    fn a_later_lower_approval_shrinks_the_expansion_to_twenty_percent_of_it() {
        let now = Utc::now();
        let e = two_more_web_for_a_day(now);
        // Granted at 10 approved (2 extra = 20 %); a change order then
        // approves 5: 20 % of 5 × 4 vCPU is 4 vCPU, one member, not two.
        let mut lowered = groups();
        if let Some(g) = lowered.get_mut("web") {
            g.quantity = 5;
        }
        assert_eq!(apply(lowered.clone(), Some(&e), now)["web"].quantity, 6);
        if let Some(g) = lowered.get_mut("web") {
            g.quantity = 4;
        }
        assert_eq!(
            apply(lowered, Some(&e), now)["web"].quantity,
            4,
            "16 vCPU: 3.2 < 4"
        );
    }
}
