//! The rules deadlines are counted by, as the operator maintains them: the
//! working-day calendar (the shipped 2025–2026 years plus years an operator adds
//! when the State Council publishes the next notice) and the deadline policies
//! (the three SPEC §3 presets plus policies an operator writes).
//!
//! Owns the records `calendar_year/<year>` and `policy/<name>` (each holds the
//! operator's TOML text, in the format of `controller/domain/data/`, so what was
//! uploaded is what is shown and re-validated on every load) and [`Rules`], the
//! merged view a deadline is computed on. Every change is audited in the same
//! transaction. Must not compute deadlines itself (`deadline.rs` does, on a
//! [`Rules`]) or keep rules in process memory across requests: several replicas
//! serve the API, so each request reads the current rules from the store.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::calendar::{Calendar, CalendarYear, Policy, Preset};
use yunshu_domain::user::Permission;
use yunshu_domain::{Actor, Record};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{Store, Txn, records};

use super::{WorkflowError, audit_draft};

/// The name of a deadline policy: a preset (`datong`, `yongjia`, `beijing`) or an
/// operator's. Same rule as a policy file's `name`: 1–32 of `a-z 0-9 _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PolicyName(String);

impl PolicyName {
    pub fn new(name: impl Into<String>) -> Result<Self, WorkflowError> {
        let name = name.into();
        let ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(PolicyName(name))
        } else {
            Err(WorkflowError::PolicyUnknown {
                name: name.chars().take(64).collect(),
            })
        }
    }

    pub fn preset(p: Preset) -> Self {
        PolicyName(Policy::preset(p).name().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PolicyName {
    type Error = WorkflowError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        PolicyName::new(s)
    }
}

impl From<PolicyName> for String {
    fn from(p: PolicyName) -> String {
        p.0
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A calendar year an operator added or corrected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarYearRecord {
    pub year: i32,
    /// The uploaded file, verbatim.
    pub toml: String,
    pub updated_by: Actor,
    pub updated_at: DateTime<Utc>,
}

impl Record for CalendarYearRecord {
    const KIND: &'static str = "calendar_year";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.year.to_string()
    }
}

/// A deadline policy an operator wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub name: PolicyName,
    pub toml: String,
    pub updated_by: Actor,
    pub updated_at: DateTime<Utc>,
}

impl Record for PolicyRecord {
    const KIND: &'static str = "policy";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.name.to_string()
    }
}

/// Where a calendar year or a policy comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Shipped with yunshu (`controller/domain/data/`).
    BuiltIn,
    /// Added or corrected by an operator.
    Operator,
}

// Parsed once: the shipped data cannot change while the process runs.
static BUILT_IN_CALENDAR: LazyLock<Calendar> = LazyLock::new(Calendar::china);
static PRESETS: LazyLock<Vec<Policy>> =
    LazyLock::new(|| Preset::ALL.iter().map(|p| Policy::preset(*p)).collect());

/// The calendar and policies in force: shipped data merged with the operator's.
#[derive(Debug, Clone)]
pub struct Rules {
    pub calendar: Calendar,
    policies: BTreeMap<PolicyName, (Policy, Origin)>,
    years: BTreeMap<i32, Origin>,
}

impl Rules {
    /// Only the shipped calendar and presets.
    pub fn built_in() -> Rules {
        let policies = PRESETS
            .iter()
            .map(|p| {
                (
                    PolicyName(p.name().to_owned()),
                    (p.clone(), Origin::BuiltIn),
                )
            })
            .collect();
        let calendar = BUILT_IN_CALENDAR.clone();
        let years = calendar.years().map(|y| (y, Origin::BuiltIn)).collect();
        Rules {
            calendar,
            policies,
            years,
        }
    }

    pub fn policy(&self, name: &PolicyName) -> Option<&Policy> {
        self.policies.get(name).map(|(p, _)| p)
    }

    pub fn policies(&self) -> impl Iterator<Item = (&Policy, Origin)> {
        self.policies.values().map(|(p, o)| (p, *o))
    }

    pub fn years(&self) -> impl Iterator<Item = (i32, Origin)> + '_ {
        self.years.iter().map(|(y, o)| (*y, *o))
    }
}

fn is_preset(name: &PolicyName) -> bool {
    PRESETS.iter().any(|p| p.name() == name.as_str())
}

/// The rules in force now. A stored record that no longer validates (written by
/// a newer release, or edited by hand) is skipped with a warning rather than
/// stopping every order: the shipped data still answers.
pub async fn load(store: &dyn Store) -> Result<Rules, WorkflowError> {
    let mut rules = Rules::built_in();
    let years = yunshu_store::page::scan_all::<CalendarYearRecord>(store)
        .await
        .map_err(WorkflowError::store("rules read"))?;
    for (year, _) in years {
        match CalendarYear::parse_toml(&year.toml) {
            Ok(parsed) => {
                rules.years.insert(parsed.year(), Origin::Operator);
                rules.calendar.replace_year(parsed);
            }
            Err(e) => tracing::warn!(year = year.year, error = %e, "stored calendar year skipped"),
        }
    }
    let policies = yunshu_store::page::scan_all::<PolicyRecord>(store)
        .await
        .map_err(WorkflowError::store("rules read"))?;
    for (policy, _) in policies {
        match Policy::parse_toml(&policy.toml) {
            Ok(parsed) if parsed.name() == policy.name.as_str() && !is_preset(&policy.name) => {
                rules
                    .policies
                    .insert(policy.name.clone(), (parsed, Origin::Operator));
            }
            Ok(_) => tracing::warn!(policy = %policy.name, "stored policy name mismatch; skipped"),
            Err(e) => tracing::warn!(policy = %policy.name, error = %e, "stored policy skipped"),
        }
    }
    Ok(rules)
}

/// Adds or corrects a calendar year (`PolicyManage`). The text is validated in
/// full first (`CALENDAR_*` codes); nothing is written when it fails.
pub async fn put_year(
    store: &dyn Store,
    caller: &Principal,
    toml: String,
    now: DateTime<Utc>,
) -> Result<CalendarYear, WorkflowError> {
    if !caller.can(Permission::PolicyManage, None) {
        return Err(WorkflowError::Forbidden);
    }
    let parsed = CalendarYear::parse_toml(&toml).map_err(WorkflowError::invalid)?;
    let record = CalendarYearRecord {
        year: parsed.year(),
        toml,
        updated_by: caller.actor.clone(),
        updated_at: now,
    };
    let detail = format!("{} ({})", parsed.year(), parsed.source());
    write(store, caller, &record, "calendar.put", detail, now).await?;
    Ok(parsed)
}

/// Adds or replaces an operator policy (`PolicyManage`). The presets cannot be
/// overwritten (`POLICY_PRESET_READONLY`): orders cite them by name, and their
/// text is the seeds'. Write a new policy instead.
pub async fn put_policy(
    store: &dyn Store,
    caller: &Principal,
    toml: String,
    now: DateTime<Utc>,
) -> Result<Policy, WorkflowError> {
    if !caller.can(Permission::PolicyManage, None) {
        return Err(WorkflowError::Forbidden);
    }
    let parsed = Policy::parse_toml(&toml).map_err(WorkflowError::invalid)?;
    let name = PolicyName::new(parsed.name())?;
    if is_preset(&name) {
        return Err(WorkflowError::PolicyPresetReadOnly {
            name: name.to_string(),
        });
    }
    let record = PolicyRecord {
        name,
        toml,
        updated_by: caller.actor.clone(),
        updated_at: now,
    };
    let detail = format!("{} ({})", parsed.name(), parsed.title());
    write(store, caller, &record, "policy.put", detail, now).await?;
    Ok(parsed)
}

async fn write<T: Record + Serialize>(
    store: &dyn Store,
    caller: &Principal,
    record: &T,
    action: &str,
    detail: String,
    now: DateTime<Utc>,
) -> Result<(), WorkflowError> {
    let key = records::key::<T>(&record.id());
    // Last writer wins on purpose (an operator correcting a year); the audit
    // chain still orders the writes, and its head compare serialises them.
    let txn = Txn::new().put(key.clone(), records::encode(record));
    let draft = audit_draft(caller, action, &key, Some(detail), now)?;
    match audit::append(store, draft, txn)
        .await
        .map_err(WorkflowError::store("rules write"))?
    {
        Appended::Committed { .. } => Ok(()),
        Appended::Conflict => Err(WorkflowError::Busy),
    }
}
