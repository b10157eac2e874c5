//! Information systems (信息系统): create with the next number, list and read,
//! scoped to what the caller may see.
//!
//! Owns number allocation: tenant code + `001`, `002` … in order (003 §2.2.5 (6)),
//! from a per-tenant counter record (`system_counter/<tenant>`) that is written
//! with a compare on its revision in the same transaction as the new system and
//! its audit entry, so two concurrent creations never get the same number and a
//! failed creation never burns one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::system::{
    Contact, InformationSystem, NetworkNature, PreApproval, RunSchedule, SecurityLevel, SystemType,
};
use yunshu_domain::user::Permission;
use yunshu_domain::{Name, Record, SystemNumber, TenantCode, Text};
use yunshu_store::audit::{self, Appended, AuditDraft};
use yunshu_store::page::{self, Page};
use yunshu_store::{PageRequest, Store, Txn, records};

use super::{WorkflowError, audit_draft};

/// Retries of a number allocation that lost a race before giving up.
const MAX_ATTEMPTS: usize = 16;

/// The last sequence number handed out for one tenant's systems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemCounter {
    pub tenant: TenantCode,
    pub last: u16,
}

impl Record for SystemCounter {
    const KIND: &'static str = "system_counter";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.tenant.to_string()
    }
}

/// What the applicant fills in; the number and creation time are assigned here.
#[derive(Debug, Clone)]
pub struct SystemFields {
    pub name: Name,
    pub system_type: SystemType,
    pub security_level: SecurityLevel,
    pub run_schedule: RunSchedule,
    pub network_nature: NetworkNature,
    pub contact: Contact,
    pub technical_contact: Option<Contact>,
    pub description: Text,
    pub pre_approval: PreApproval,
    /// 信创 required: servers only on arm64 or c86.
    pub xinchuang: bool,
}

/// Whether `caller` may read systems of `tenant` (platform roles with
/// `SystemRead` see all; the platform admin has no `SystemRead`, 003 §3.2.2.15).
fn visible(caller: &Principal, tenant: &TenantCode) -> bool {
    caller.can(Permission::SystemRead, Some(tenant))
}

/// Creates a system for the caller's own tenant with the next free number.
///
/// Errors: `FORBIDDEN` unless the caller holds `SystemWrite` in their tenant;
/// `SYSTEM_NUMBERS_EXHAUSTED` after 999; `SYSTEM_NUMBER_BUSY` if the counter kept
/// moving under us.
pub async fn system_create(
    store: &dyn Store,
    caller: &Principal,
    fields: SystemFields,
    now: DateTime<Utc>,
) -> Result<InformationSystem, WorkflowError> {
    let tenant = caller.tenant.clone().ok_or(WorkflowError::Forbidden)?;
    if !caller.can(Permission::SystemWrite, Some(&tenant)) {
        return Err(WorkflowError::Forbidden);
    }
    let counter_key = records::key::<SystemCounter>(tenant.as_str());
    for _ in 0..MAX_ATTEMPTS {
        let (last, counter_rev) = match records::get::<SystemCounter>(store, tenant.as_str())
            .await
            .map_err(WorkflowError::store("system counter read"))?
        {
            Some((c, rev)) => (c.last, rev),
            // First use: start after systems written without the counter (the
            // demo seed, imports).
            None => (highest_seq(store, &tenant).await?, 0),
        };
        let mut seq = u32::from(last) + 1;
        let number = loop {
            let number = SystemNumber::new(&tenant, seq).map_err(|_| {
                WorkflowError::SystemNumbersExhausted {
                    tenant: tenant.to_string(),
                }
            })?;
            let taken = records::get::<InformationSystem>(store, &number.to_string())
                .await
                .map_err(WorkflowError::store("system read"))?
                .is_some();
            if !taken {
                break number;
            }
            seq += 1;
        };
        let system = InformationSystem {
            number: number.clone(),
            name: fields.name.clone(),
            system_type: fields.system_type,
            security_level: fields.security_level,
            run_schedule: fields.run_schedule.clone(),
            network_nature: fields.network_nature,
            contact: fields.contact.clone(),
            technical_contact: fields.technical_contact.clone(),
            description: fields.description.clone(),
            pre_approval: fields.pre_approval.clone(),
            created_at: now,
            xinchuang: fields.xinchuang,
        };
        let counter = SystemCounter {
            tenant: tenant.clone(),
            last: number.seq(),
        };
        let system_key = records::key::<InformationSystem>(&number.to_string());
        let txn = Txn::new()
            .when_mod_revision(counter_key.clone(), counter_rev)
            .when_mod_revision(system_key.clone(), 0)
            .put(counter_key.clone(), records::encode(&counter))
            .put(system_key.clone(), records::encode(&system));
        let draft: AuditDraft = audit_draft(
            caller,
            "system.create",
            &system_key,
            Some(system.name.to_string()),
            now,
        )?;
        match audit::append(store, draft, txn)
            .await
            .map_err(WorkflowError::store("system create"))?
        {
            Appended::Committed { .. } => return Ok(system),
            // Another creation took the number first: read the counter again.
            Appended::Conflict => continue,
        }
    }
    Err(WorkflowError::SystemNumberBusy {
        tenant: tenant.to_string(),
    })
}

/// The highest sequence among the tenant's stored systems (0 when none).
async fn highest_seq(store: &dyn Store, tenant: &TenantCode) -> Result<u16, WorkflowError> {
    let prefix = records::key::<InformationSystem>(tenant.as_str());
    let mut after = None;
    let mut highest = 0;
    loop {
        let page = store
            .range(
                &prefix,
                PageRequest {
                    after: after.clone(),
                    limit: 0,
                },
            )
            .await
            .map_err(WorkflowError::store("system scan"))?;
        for kv in &page.items {
            let id = kv
                .key
                .strip_prefix(&records::prefix::<InformationSystem>())
                .unwrap_or_default();
            // Keys of longer tenant codes share the prefix; only our own count.
            if let Ok(n) = SystemNumber::parse(id)
                && n.tenant() == tenant
            {
                highest = highest.max(n.seq());
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(highest),
        }
    }
}

/// One system, if the caller may see it; otherwise `SYSTEM_NOT_FOUND` (never
/// "forbidden": SPEC §1).
pub async fn system_get(
    store: &dyn Store,
    caller: &Principal,
    number: &str,
) -> Result<InformationSystem, WorkflowError> {
    let not_found = || WorkflowError::SystemNotFound {
        number: number.chars().take(64).collect(),
    };
    let parsed = SystemNumber::parse(number).map_err(|_| not_found())?;
    if !visible(caller, parsed.tenant()) {
        return Err(not_found());
    }
    records::get::<InformationSystem>(store, &parsed.to_string())
        .await
        .map_err(WorkflowError::store("system read"))?
        .map(|(s, _)| s)
        .ok_or_else(not_found)
}

/// Systems the caller may see, in number order. Platform roles with `SystemRead`
/// see every tenant's; tenant users their own. `FORBIDDEN` without `SystemRead`
/// anywhere (e.g. the platform admin, 003 §3.2.2.15).
pub async fn system_list(
    store: &dyn Store,
    caller: &Principal,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<InformationSystem>, WorkflowError> {
    let prefix = if caller.can(Permission::SystemRead, None) {
        records::prefix::<InformationSystem>()
    } else {
        match &caller.tenant {
            Some(t) if visible(caller, t) => records::key::<InformationSystem>(t.as_str()),
            _ => return Err(WorkflowError::Forbidden),
        }
    };
    page::scan(store, &prefix, after, limit, |s: &InformationSystem| {
        visible(caller, s.tenant())
    })
    .await
    .map_err(WorkflowError::store("system list"))
}
