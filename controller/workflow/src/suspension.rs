//! Suspending (暂停服务) and resuming an information system for a security
//! risk: 002 art. 18 ("对存在重大安全风险问题且未及时整改的应用系统采取断网、下线、
//! 暂停服务等必要措施") and 004 art. 27 / agreement art. 9 (15) ("可暂时中断该系统的
//! 云服务并同步通知该单位，事件处理完毕后恢复服务").
//!
//! Owns the record `suspension/<system number>`: every suspension of the
//! system with who decided it, when and why, and when, by whom and why it was
//! lifted — the history is kept, never rewritten, so a later review sees each
//! measure taken. Only the management unit decides (`OrderApprove`: the
//! approver). The security administrator of 三员分立 does not: that role
//! manages users and roles and reads no system (no `SystemRead`), and the
//! seed gives the measure to the 政务云平台主管部门 (002 art. 18; the
//! 信息安全行政主管部门 it acts with is an authority outside yunshu, not the
//! platform's 安全管理员).
//!
//! Must not stop anything itself: while a suspension is open the reconciler
//! powers the system's servers off ([`effect`] → `desired::Life::servers_stopped`),
//! keeping disks, addresses, network and backups, and powers them on again
//! once it is lifted (unless the system is also offline or exited).
//!
//! Billing: a suspended system is still charged (`cost` does not read this
//! record). 004 art. 27 interrupts the service because of an event of the
//! department's own system (“使用单位的信息系统出现严重影响…的事件”), not a
//! failure of the provider; the resources stay reserved for it (disks,
//! addresses, host capacity), and the agreement's fee terms (art. 7) and
//! penalties (附件 2, 3) deduct only for the provider's faults. The forced
//! offline of 002 art. 14 ends the charge because the service ends; a
//! suspension is temporary by definition ("暂时中断…恢复服务").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::user::Permission;
use yunshu_domain::{Actor, Record, SystemNumber, Text};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{Revision, Store, Txn, records};

use super::{WorkflowError, audit_draft};

/// Who lifted a suspension, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resumption {
    pub by: Actor,
    pub at: DateTime<Utc>,
    pub reason: Text,
}

/// One suspension of a system; open while `resumed` is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspensionEntry {
    pub by: Actor,
    pub at: DateTime<Utc>,
    /// Why: the security risk or event (required, 002 art. 18 asks for a
    /// risk "未及时整改"; the department is told why, 004 art. 27 "同步通知").
    pub reason: Text,
    #[serde(default)]
    pub resumed: Option<Resumption>,
}

/// The suspensions of one information system, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    pub system: SystemNumber,
    #[serde(default)]
    pub history: Vec<SuspensionEntry>,
}

impl Record for Suspension {
    const KIND: &'static str = "suspension";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.system.to_string()
    }
}

impl Suspension {
    /// The suspension in force, if any: the last one, when not lifted.
    pub fn current(&self) -> Option<&SuspensionEntry> {
        self.history.last().filter(|e| e.resumed.is_none())
    }

    pub fn is_suspended(&self) -> bool {
        self.current().is_some()
    }
}

/// Whether `s` has the system's servers powered off (a suspension in force).
pub fn effect(s: Option<&Suspension>) -> bool {
    s.is_some_and(Suspension::is_suspended)
}

/// The key of a system's suspension record.
pub fn key(system: &SystemNumber) -> String {
    records::key::<Suspension>(&system.to_string())
}

/// The record of `system` with its revision, if it was ever suspended.
pub async fn load(
    store: &dyn Store,
    system: &SystemNumber,
) -> Result<Option<(Suspension, Revision)>, WorkflowError> {
    records::get::<Suspension>(store, &system.to_string())
        .await
        .map_err(WorkflowError::store("suspension read"))
}

/// The suspensions of a system the caller may see (`SystemRead` in its
/// tenant: the department sees why its system is suspended); an empty history
/// when never suspended. Otherwise `SYSTEM_NOT_FOUND`.
pub async fn get(
    store: &dyn Store,
    caller: &Principal,
    number: &str,
) -> Result<Suspension, WorkflowError> {
    let system = super::systems::system_get(store, caller, number).await?;
    Ok(load(store, &system.number)
        .await?
        .map(|(s, _)| s)
        .unwrap_or(Suspension {
            system: system.number,
            history: Vec::new(),
        }))
}

/// The management unit suspends a system (`OrderApprove`), audited as
/// `system.suspend` with the reason, in the same transaction as the record.
///
/// Errors: `SYSTEM_NOT_FOUND`; `FORBIDDEN`; `SYSTEM_ALREADY_SUSPENDED`;
/// `BUSY` when the record changed meanwhile.
pub async fn suspend(
    store: &dyn Store,
    caller: &Principal,
    number: &str,
    reason: Text,
    now: DateTime<Utc>,
) -> Result<Suspension, WorkflowError> {
    let (mut s, rev) = approvers_record(store, caller, number).await?;
    if s.is_suspended() {
        return Err(WorkflowError::SystemAlreadySuspended {
            number: s.system.to_string(),
        });
    }
    s.history.push(SuspensionEntry {
        by: caller.actor.clone(),
        at: now,
        reason: reason.clone(),
        resumed: None,
    });
    save(store, caller, &s, rev, "system.suspend", reason, now).await?;
    Ok(s)
}

/// The management unit lifts the suspension in force (`OrderApprove`; "事件
/// 处理完毕后恢复服务", 004 art. 27), audited as `system.resume` with the
/// reason.
///
/// Errors: `SYSTEM_NOT_FOUND`; `FORBIDDEN`; `SYSTEM_NOT_SUSPENDED`; `BUSY`.
pub async fn resume(
    store: &dyn Store,
    caller: &Principal,
    number: &str,
    reason: Text,
    now: DateTime<Utc>,
) -> Result<Suspension, WorkflowError> {
    let (mut s, rev) = approvers_record(store, caller, number).await?;
    let not_suspended = WorkflowError::SystemNotSuspended {
        number: s.system.to_string(),
    };
    let Some(open) = s.history.last_mut().filter(|e| e.resumed.is_none()) else {
        return Err(not_suspended);
    };
    open.resumed = Some(Resumption {
        by: caller.actor.clone(),
        at: now,
        reason: reason.clone(),
    });
    save(store, caller, &s, rev, "system.resume", reason, now).await?;
    Ok(s)
}

/// The system's record (empty when never suspended, at revision 0: "must not
/// exist") for a decision only the approver takes.
async fn approvers_record(
    store: &dyn Store,
    caller: &Principal,
    number: &str,
) -> Result<(Suspension, Revision), WorkflowError> {
    let system = super::systems::system_get(store, caller, number).await?;
    if !caller.can(Permission::OrderApprove, Some(system.tenant())) {
        return Err(WorkflowError::Forbidden);
    }
    Ok(load(store, &system.number).await?.unwrap_or((
        Suspension {
            system: system.number,
            history: Vec::new(),
        },
        0,
    )))
}

async fn save(
    store: &dyn Store,
    caller: &Principal,
    s: &Suspension,
    rev: Revision,
    action: &str,
    reason: Text,
    now: DateTime<Utc>,
) -> Result<(), WorkflowError> {
    let key = key(&s.system);
    let txn = Txn::new()
        .when_mod_revision(key.clone(), rev)
        .put(key.clone(), records::encode(s));
    let draft = audit_draft(caller, action, &key, Some(reason.as_str().to_owned()), now)?;
    match audit::append(store, draft, txn)
        .await
        .map_err(WorkflowError::store("suspension write"))?
    {
        Appended::Committed { .. } => Ok(()),
        Appended::Conflict => Err(WorkflowError::Busy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(resumed: bool) -> SuspensionEntry {
        let at = DateTime::<Utc>::from_timestamp(1_760_000_000, 0).unwrap_or_default();
        SuspensionEntry {
            by: "user:zhou".parse::<Actor>().expect("actor"),
            at,
            reason: Text::new("未整改的高危漏洞").expect("text"),
            resumed: resumed.then(|| Resumption {
                by: "user:zhou".parse::<Actor>().expect("actor"),
                at,
                reason: Text::new("已整改").expect("text"),
            }),
        }
    }

    #[test]
    fn only_an_open_last_entry_suspends() {
        let system: SystemNumber = "110105001".parse().expect("number");
        let mut s = Suspension {
            system,
            history: vec![],
        };
        assert!(!effect(Some(&s)) && !effect(None));
        s.history.push(entry(true));
        assert!(!effect(Some(&s)));
        s.history.push(entry(false));
        assert!(effect(Some(&s)));
        assert_eq!(
            s.current().map(|e| e.reason.as_str()),
            Some("未整改的高危漏洞")
        );
    }
}
