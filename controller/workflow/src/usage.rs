//! Usage periods (使用期) of information systems, as the order's deadline
//! policy sets them — Yongjia 002 art. 14: a period of at most 3 years
//! (`usage_period`), a notice one month before it ends
//! (`usage_renewal_notice`), an extension the tenant asks for before the end
//! and the management unit grants, and — with no extension asked for — a
//! forced offline, once the management unit approves it, within 15 working
//! days of the approval (`forced_offline_after_expiry`), after which backups
//! are kept 3 months (`offline_backup_retention`). A policy without `usage_period` (Datong 000,
//! Beijing 004: their seeds set none) gives its systems no usage period, so
//! no notice and no forced offline; a policy without one of the later steps
//! skips that step.
//!
//! Owns the record `usage_term/<system number>`: started by the onboarding
//! order's delivery confirmation (written in the same transaction), closed by
//! the exit order's completion, and the dates the timers act on. Must not
//! decide when to act (`timers.rs` does, on a clock it is given) or stop
//! resources (desired state and billing read `offline_at`: [`offline_since`]).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::calendar::{Calendar, Policy, Step, local_date};
use yunshu_domain::user::Permission;
use yunshu_domain::{Actor, Record, SystemNumber, TenantCode, Text};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{Revision, Store, Txn, records};

use super::rules::{PolicyName, Rules};
use super::{WorkflowError, audit_draft};

/// A tenant's request to extend (延期使用申请).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionRequest {
    pub by: Actor,
    pub at: DateTime<Utc>,
    pub until: NaiveDate,
    pub reason: Text,
}

/// Who approved a forced offline, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineApproval {
    pub by: Actor,
    pub at: DateTime<Utc>,
}

/// The usage period of one information system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTerm {
    pub system: SystemNumber,
    /// The deadline policy of the onboarding order that started the period:
    /// its `usage_period`, `usage_renewal_notice`, `forced_offline_after_expiry`
    /// and `offline_backup_retention` steps time this term. `None` only in
    /// records written before the policy was recorded: the timers take it
    /// from the system's delivered onboarding order once, and act on the term
    /// only after that (no rule, no forced offline).
    #[serde(default)]
    pub policy: Option<PolicyName>,
    pub starts_on: NaiveDate,
    /// Last day of use (China Standard Time).
    pub expires_on: NaiveDate,
    /// When the one-month notice went out (to the tenant and the management
    /// unit, as an alarm each can see).
    #[serde(default)]
    pub notice_sent_at: Option<DateTime<Utc>>,
    /// An extension asked for and not yet granted: while one is pending the
    /// system is not forced offline.
    #[serde(default)]
    pub extension_requested: Option<ExtensionRequest>,
    /// When the timers found the period over with no extension asked for.
    #[serde(default)]
    pub expired_at: Option<DateTime<Utc>>,
    /// The management unit's approval of the forced offline (经政务云主管部门
    /// 批准, 002 art. 14): it starts the offline window.
    #[serde(default)]
    pub offline_approved: Option<OfflineApproval>,
    /// The last day of the forced-offline window (approval + the policy's
    /// `forced_offline_after_expiry`, 15 working days under 002 art. 14).
    #[serde(default)]
    pub offline_due: Option<NaiveDate>,
    /// When the system was declared offline: from then on its servers are no
    /// longer desired (the reconciler stops them) and nothing is billed.
    #[serde(default)]
    pub offline_at: Option<DateTime<Utc>>,
    /// Backups are deleted after this day.
    #[serde(default)]
    pub backups_kept_until: Option<NaiveDate>,
    /// The system exited through an exit order: no more notices.
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
}

impl Record for UsageTerm {
    const KIND: &'static str = "usage_term";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.system.to_string()
    }
}

impl UsageTerm {
    /// A full period of `policy`'s `usage_period` starting on the day of
    /// `delivered_at`; `None` when the policy sets no usage period.
    pub fn starting(
        system: SystemNumber,
        policy: &Policy,
        delivered_at: DateTime<Utc>,
        calendar: &Calendar,
    ) -> Result<Option<UsageTerm>, WorkflowError> {
        let starts_on = local_date(delivered_at);
        let Some(expires_on) = policy
            .last_day(Step::UsagePeriod, starts_on, calendar)
            .map_err(WorkflowError::invalid)?
        else {
            return Ok(None);
        };
        Ok(Some(UsageTerm {
            system,
            policy: Some(PolicyName::new(policy.name())?),
            starts_on,
            expires_on,
            notice_sent_at: None,
            extension_requested: None,
            expired_at: None,
            offline_approved: None,
            offline_due: None,
            offline_at: None,
            backups_kept_until: None,
            closed_at: None,
        }))
    }

    pub fn tenant(&self) -> &TenantCode {
        self.system.tenant()
    }

    /// The policy timing this term, if it is (still) known.
    pub fn policy<'r>(&self, rules: &'r Rules) -> Option<&'r Policy> {
        self.policy.as_ref().and_then(|name| rules.policy(name))
    }

    /// The first day the notice is due: the policy's `usage_renewal_notice`
    /// counted back from the expiry; `None` when the policy sends none.
    pub fn notice_on(
        &self,
        policy: &Policy,
        calendar: &Calendar,
    ) -> Result<Option<NaiveDate>, WorkflowError> {
        policy
            .last_day(Step::UsageRenewalNotice, self.expires_on, calendar)
            .map_err(WorkflowError::invalid)
    }
}

/// Since when `term` has the system forced offline (002 art. 14), if it has
/// and the system has not exited since: its servers are not desired from
/// then on and nothing is billed.
pub fn offline_since(term: Option<&UsageTerm>) -> Option<DateTime<Utc>> {
    term.filter(|t| t.closed_at.is_none())
        .and_then(|t| t.offline_at)
}

/// What `term` asks of the system's resources at `now` (002 art. 14): from
/// `offline_at` its servers are powered off, their disks kept ("完成应用系统
/// 强制下线和数据备份工作"); after `backups_kept_until` its backups are no
/// longer kept ("3 个月后不再保留备份数据"). A closed term asks nothing.
pub fn offline_effect(term: Option<&UsageTerm>, now: DateTime<Utc>) -> crate::desired::Life {
    let Some(term) = term.filter(|t| t.closed_at.is_none()) else {
        return crate::desired::Life::default();
    };
    let servers_stopped = term.offline_at.is_some_and(|at| at <= now);
    crate::desired::Life {
        exit_keeps_data: false,
        servers_stopped,
        backups_dropped: servers_stopped
            && term
                .backups_kept_until
                .is_some_and(|d| yunshu_domain::calendar::local_date(now) > d),
    }
}

/// The key of a system's usage term.
pub fn key(system: &SystemNumber) -> String {
    records::key::<UsageTerm>(&system.to_string())
}

/// The term of `system` with its revision, if any.
pub async fn load(
    store: &dyn Store,
    system: &SystemNumber,
) -> Result<Option<(UsageTerm, Revision)>, WorkflowError> {
    records::get::<UsageTerm>(store, &system.to_string())
        .await
        .map_err(WorkflowError::store("usage term read"))
}

fn term_missing(system: &SystemNumber) -> WorkflowError {
    WorkflowError::UsageTermNotFound {
        number: system.to_string(),
    }
}

/// The term of a system the caller may see (`SystemRead` in its tenant);
/// otherwise `SYSTEM_NOT_FOUND`.
pub async fn get(
    store: &dyn Store,
    caller: &Principal,
    number: &str,
) -> Result<UsageTerm, WorkflowError> {
    let system = super::systems::system_get(store, caller, number).await?;
    load(store, &system.number)
        .await?
        .map(|(t, _)| t)
        .ok_or_else(|| term_missing(&system.number))
}

/// The tenant admin asks to extend (`ChangeRequest` in the tenant). Accepted
/// only before the period ends ("使用单位应在使用期满前…提出申请", 002 art.
/// 14): a late request cannot hold off the forced offline; a pending request
/// stops it.
pub async fn request_extension(
    store: &dyn Store,
    caller: &Principal,
    number: &str,
    until: NaiveDate,
    reason: Text,
    now: DateTime<Utc>,
) -> Result<UsageTerm, WorkflowError> {
    let system = super::systems::system_get(store, caller, number).await?;
    if !caller.can(Permission::ChangeRequest, Some(system.tenant())) {
        return Err(WorkflowError::Forbidden);
    }
    let (mut term, rev) = load(store, &system.number)
        .await?
        .ok_or_else(|| term_missing(&system.number))?;
    if term.offline_at.is_some()
        || term.closed_at.is_some()
        || until <= term.expires_on
        || now >= yunshu_domain::calendar::end_of_day(term.expires_on)
    {
        return Err(WorkflowError::UsageExtensionRefused {
            number: system.number.to_string(),
        });
    }
    term.extension_requested = Some(ExtensionRequest {
        by: caller.actor.clone(),
        at: now,
        until,
        reason: reason.clone(),
    });
    save(
        store,
        caller,
        &term,
        rev,
        "usage.extension_request",
        format!("until {until}: {reason}"),
        now,
    )
    .await?;
    Ok(term)
}

/// The management unit grants an extension (`OrderApprove`): the period ends
/// on `until` (at most the policy's `usage_period` from today: 3 years under
/// 002 art. 14), the notice and expiry start over.
pub async fn grant_extension(
    store: &dyn Store,
    caller: &Principal,
    number: &str,
    until: NaiveDate,
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> Result<UsageTerm, WorkflowError> {
    let (system, mut term, rev) = approvers_term(store, caller, number).await?;
    let rules = super::rules::load(store).await?;
    let latest = match term.policy(&rules) {
        Some(policy) => policy
            .last_day(Step::UsagePeriod, local_date(now), calendar)
            .map_err(WorkflowError::invalid)?,
        None => None,
    };
    let Some(latest) = latest else {
        // the policy no longer sets a usage period: nothing to extend
        return Err(WorkflowError::UsageExtensionRefused {
            number: system.number.to_string(),
        });
    };
    if term.offline_at.is_some()
        || term.closed_at.is_some()
        || until <= term.expires_on
        || until > latest
    {
        return Err(WorkflowError::UsageExtensionRefused {
            number: system.number.to_string(),
        });
    }
    let old = term.expires_on;
    term.expires_on = until;
    term.extension_requested = None;
    term.notice_sent_at = None;
    term.expired_at = None;
    term.offline_approved = None;
    term.offline_due = None;
    save(
        store,
        caller,
        &term,
        rev,
        "usage.extend",
        format!("{old} -> {until}"),
        now,
    )
    .await?;
    Ok(term)
}

/// The management unit approves the forced offline of a system whose period
/// is over with no extension asked for (`OrderApprove`; 经政务云主管部门批准,
/// 002 art. 14): the provider has the policy's `forced_offline_after_expiry`
/// (15 working days) from today, after which the timers take it offline.
/// Errors: `USAGE_OFFLINE_REFUSED` when the period has not expired, an
/// extension is pending, it was approved already, the system is offline or
/// exited, or the policy sets no forced offline.
pub async fn approve_offline(
    store: &dyn Store,
    caller: &Principal,
    number: &str,
    now: DateTime<Utc>,
) -> Result<UsageTerm, WorkflowError> {
    let (system, mut term, rev) = approvers_term(store, caller, number).await?;
    let refused = || WorkflowError::UsageOfflineRefused {
        number: system.number.to_string(),
    };
    if term.expired_at.is_none()
        || term.extension_requested.is_some()
        || term.offline_approved.is_some()
        || term.offline_at.is_some()
        || term.closed_at.is_some()
    {
        return Err(refused());
    }
    let rules = super::rules::load(store).await?;
    let due = match term.policy(&rules) {
        Some(policy) => policy
            .last_day(
                Step::ForcedOfflineAfterExpiry,
                local_date(now),
                &rules.calendar,
            )
            .map_err(WorkflowError::invalid)?,
        None => None,
    };
    let Some(due) = due else {
        return Err(refused());
    };
    term.offline_approved = Some(OfflineApproval {
        by: caller.actor.clone(),
        at: now,
    });
    term.offline_due = Some(due);
    save(
        store,
        caller,
        &term,
        rev,
        "usage.approve_offline",
        format!("offline by {due}"),
        now,
    )
    .await?;
    Ok(term)
}

async fn save(
    store: &dyn Store,
    caller: &Principal,
    term: &UsageTerm,
    rev: Revision,
    action: &str,
    detail: String,
    now: DateTime<Utc>,
) -> Result<(), WorkflowError> {
    let key = key(&term.system);
    let txn = Txn::new()
        .when_mod_revision(key.clone(), rev)
        .put(key.clone(), records::encode(term));
    let draft = audit_draft(caller, action, &key, Some(detail), now)?;
    match audit::append(store, draft, txn)
        .await
        .map_err(WorkflowError::store("usage term write"))?
    {
        Appended::Committed { .. } => Ok(()),
        Appended::Conflict => Err(WorkflowError::Busy),
    }
}

/// The system and its usage term, for a decision only the approver takes
/// (an extension, a forced offline).
async fn approvers_term(
    store: &dyn Store,
    caller: &Principal,
    number: &str,
) -> Result<
    (
        yunshu_domain::system::InformationSystem,
        UsageTerm,
        Revision,
    ),
    WorkflowError,
> {
    let system = super::systems::system_get(store, caller, number).await?;
    if !caller.can(Permission::OrderApprove, Some(system.tenant())) {
        return Err(WorkflowError::Forbidden);
    }
    let (term, rev) = load(store, &system.number)
        .await?
        .ok_or_else(|| term_missing(&system.number))?;
    Ok((system, term, rev))
}
