//! Granting and adjusting a role binding of an existing user (003 §3.2.2.15:
//! 上级管理员可以对下级管理员以及下级用户的权限进行设置、调整; revoking is
//! [`crate::offboarding::remove_binding`]).
//!
//! Who may: whoever manages the user (`offboarding::managed`: a user outside
//! the caller's reach is `UserNotFound`) and may grant the role at its scope
//! (`users::may_grant`: a unit admin never at its own unit or above). Each
//! change is written with its one audit entry in one transaction, compared on
//! the user and every binding of theirs as read, so the 三员分立 check made on
//! them still holds when it lands (`UserChanged` otherwise). Nothing is written
//! on a refusal.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use yunshu_domain::Record;
use yunshu_domain::user::{Permission, RoleBinding, RoleBindingFields, User};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{Revision, Store, Txn, page, records};

use crate::offboarding::managed;
use crate::users::{Grant, may_grant, separated};
use crate::{AuthError, Principal, audit_draft};

/// The bindings of `user` with the revisions they were read at.
async fn bindings_read(
    store: &dyn Store,
    user: &User,
) -> Result<Vec<(RoleBinding, Revision)>, AuthError> {
    let prefix = format!("{}{}.", records::prefix::<RoleBinding>(), user.id);
    Ok(page::scan_all_under::<RoleBinding>(store, &prefix)
        .await?
        .into_iter()
        .filter(|(b, _)| b.user() == &user.id)
        .collect())
}

/// The transaction's guard: the user and every binding as read.
fn guarded(user: &User, revision: Revision, bindings: &[(RoleBinding, Revision)]) -> Txn {
    let mut txn = Txn::new().when_mod_revision(records::key::<User>(user.id.as_str()), revision);
    for (b, rev) in bindings {
        txn = txn.when_mod_revision(records::key::<RoleBinding>(&Record::id(b)), *rev);
    }
    txn
}

fn describe(b: &RoleBinding) -> String {
    match b.narrowed() {
        Some(p) => format!(
            "{} ({} at {}, narrowed to {p:?})",
            b.id(),
            b.role(),
            b.scope()
        ),
        None => format!("{} ({} at {})", b.id(), b.role(), b.scope()),
    }
}

async fn commit(
    store: &dyn Store,
    caller: &Principal,
    action: &str,
    user: &User,
    txn: Txn,
    detail: String,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    let target = records::key::<User>(user.id.as_str());
    let mut draft = audit_draft(&caller.actor, action, &target, Some(detail))?;
    draft.at = now;
    match audit::append(store, draft, txn).await? {
        Appended::Committed { .. } => Ok(()),
        Appended::Conflict => Err(AuthError::UserChanged {
            id: user.id.to_string(),
        }),
    }
}

/// Grants `grant` to user `id` at `now` as a new binding `<id>.<n>`.
///
/// Errors: `Forbidden` (a caller who manages nobody, or a role it may not
/// grant), `UserNotFound`, `UserIsCaller`, `Invalid` (a binding the user
/// cannot hold: `ROLE_SCOPE_MISMATCH`, `ROLE_TENANT_MISMATCH`,
/// `ROLE_PERMISSION_NOT_GRANTABLE`), `RoleBindingExists`, `RolesSeparated`,
/// `UserChanged`.
pub async fn grant(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
    grant: Grant,
    now: DateTime<Utc>,
) -> Result<RoleBinding, AuthError> {
    let (user, revision) = managed(store, caller, id).await?;
    if !may_grant(caller, &grant.role, &grant.scope) {
        return Err(AuthError::Forbidden);
    }
    let bindings = bindings_read(store, &user).await?;
    if bindings
        .iter()
        .any(|(b, _)| b.role() == &grant.role && b.scope() == &grant.scope)
    {
        return Err(AuthError::RoleBindingExists {
            role: grant.role.to_string(),
            scope: grant.scope.to_string(),
        });
    }
    // `<user>.<n>` like the bindings made with the user, after the highest
    // number in use.
    let next = bindings
        .iter()
        .filter_map(|(b, _)| b.id().as_str().rsplit('.').next()?.parse::<u64>().ok())
        .max()
        .map_or(0, |n| n + 1);
    let binding = RoleBinding::new(RoleBindingFields {
        id: format!("{}.{next}", user.id)
            .parse()
            .map_err(AuthError::invalid)?,
        user: user.id.clone(),
        role: grant.role,
        scope: grant.scope,
        permissions: grant.permissions,
        granted_by: caller.actor.clone(),
        granted_at: now,
    })
    .map_err(AuthError::invalid)?;
    user.check_binding(&binding).map_err(AuthError::invalid)?;
    separated(
        user.tenant.is_some() || user.org_unit.is_some(),
        bindings
            .iter()
            .map(|(b, _)| b.role())
            .chain([binding.role()]),
    )?;
    let key = records::key::<RoleBinding>(&Record::id(&binding));
    let txn = guarded(&user, revision, &bindings)
        .when_mod_revision(key.clone(), 0)
        .put(key, records::encode(&binding));
    commit(
        store,
        caller,
        "user.role_binding.grant",
        &user,
        txn,
        describe(&binding),
        now,
    )
    .await?;
    Ok(binding)
}

/// Sets which of its role's permissions binding `binding` of user `id` grants
/// (`None`: all of them), at `now`; the caller becomes its grantor.
///
/// Errors: as [`grant`], and `RoleBindingNotFound`; never `RoleBindingExists`
/// or `RolesSeparated` (the role does not change).
pub async fn adjust(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
    binding: &str,
    permissions: Option<BTreeSet<Permission>>,
    now: DateTime<Utc>,
) -> Result<(RoleBinding, RoleBinding), AuthError> {
    let (user, revision) = managed(store, caller, id).await?;
    let bindings = bindings_read(store, &user).await?;
    let (old, _) = bindings
        .iter()
        .find(|(b, _)| b.id().as_str() == binding)
        .cloned()
        .ok_or_else(|| AuthError::RoleBindingNotFound {
            id: binding.to_owned(),
        })?;
    if !may_grant(caller, old.role(), old.scope()) {
        return Err(AuthError::Forbidden);
    }
    let new = RoleBinding::new(RoleBindingFields {
        id: old.id().clone(),
        user: user.id.clone(),
        role: old.role().clone(),
        scope: old.scope().clone(),
        permissions,
        granted_by: caller.actor.clone(),
        granted_at: now,
    })
    .map_err(AuthError::invalid)?;
    let key = records::key::<RoleBinding>(&Record::id(&new));
    let txn = guarded(&user, revision, &bindings).put(key, records::encode(&new));
    let detail = format!("{} -> {}", describe(&old), describe(&new));
    commit(
        store,
        caller,
        "user.role_binding.adjust",
        &user,
        txn,
        detail,
        now,
    )
    .await?;
    Ok((old, new))
}
