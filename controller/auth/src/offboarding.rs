//! Offboarding (issue 16 item 12): a manager disables or re-enables a user,
//! resets their password, removes one of their role bindings, or ends all their
//! sessions and API tokens.
//!
//! Who may: the same rule as who may create that user — a platform user
//! manager (`user_manage`) for every user, a tenant admin
//! (`tenant_user_manage`) for its own department's users, a unit admin for
//! the users of the tenants under its unit and the unit admins strictly
//! below it (`users::Manages`). Anyone else's user
//! (another department's, platform staff) is `UserNotFound`, never "forbidden",
//! so a tenant admin cannot learn who exists elsewhere.
//!
//! Each change is written with its one audit entry in one store transaction,
//! guarded by the revisions it read (`UserChanged` if someone else wrote
//! meanwhile); nothing is written on a refusal.
//!
//! Decisions:
//! - Disabling deletes every session of the user and revokes every API token
//!   of theirs for good: re-enabling restores sign-in, not old credentials.
//!   (A disabled user's credentials are also refused by [`crate::resolve`]
//!   while disabled, so a credential created in a race cannot act either.)
//! - A password reset ends the user's sessions and clears the lockout count;
//!   API tokens are left alone (revoke them with [`revoke_credentials`]).
//! - A user keeps at least one role binding: removing the last one is
//!   `UserRolesRequired` (disable the user instead).
//! - Nobody offboards themselves (`UserIsCaller`): not even their own
//!   password, which would end their own sessions; another manager does it.
//! - Credentials beyond what one transaction can carry
//!   ([`yunshu_store::MAX_TXN_OPS`]) are ended by follow-up transactions right
//!   after the audited one, covered by its entry.

use chrono::{DateTime, Utc};
use yunshu_domain::user::{Permission, RoleBinding, User, UserState};
use yunshu_domain::{Record, UserId};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{MAX_TXN_OPS, Revision, Store, Txn, TxnOutcome, page, records};

use crate::activation::{self, Activation, Issued};
use crate::tokens::ApiToken;
use crate::users::{Manages, may_grant};
use crate::{AuthError, Principal, audit_draft, lockout, passwords, sessions};

/// Loads user `id` if `caller` manages them: `Forbidden` for a caller who
/// manages nobody, `UserNotFound` for a user that does not exist or that the
/// caller may not manage, `UserIsCaller` for the caller themselves.
pub(crate) async fn managed(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
) -> Result<(User, Revision), AuthError> {
    let manages = Manages::of(caller)?;
    let not_found = || AuthError::UserNotFound { id: id.to_owned() };
    let Ok(user_id) = UserId::new(id.to_owned()) else {
        return Err(not_found());
    };
    let (user, revision) = records::get::<User>(store, user_id.as_str())
        .await?
        .ok_or_else(not_found)?;
    // A tenant admin manages its own department's users, a unit admin the
    // users below its unit; never platform staff.
    if !manages.user(caller, &user) {
        return Err(not_found());
    }
    // Never on oneself: a manager must not lock themselves (maybe the last
    // admin) out by a slip; another manager does it.
    if caller.user.as_ref() == Some(&user.id) {
        return Err(AuthError::UserIsCaller);
    }
    Ok((user, revision))
}

/// One credential to end: a session key to delete, or a token to revoke.
enum End {
    Session(String),
    Token {
        key: String,
        revision: Revision,
        revoked: Vec<u8>,
    },
}

impl End {
    fn add_to(&self, txn: Txn) -> Txn {
        match self {
            End::Session(key) => txn.delete(key.clone()),
            End::Token {
                key,
                revision,
                revoked,
            } => txn
                .when_mod_revision(key.clone(), *revision)
                .put(key.clone(), revoked.clone()),
        }
    }
}

/// What ending credentials did, for the audit detail and the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ended {
    pub sessions: usize,
    pub tokens: usize,
}

/// The live sessions of `user` and, with `tokens`, their valid API tokens.
async fn credentials_of(
    store: &dyn Store,
    user: &UserId,
    tokens: bool,
) -> Result<Vec<End>, AuthError> {
    let mut out: Vec<End> = sessions::keys_of(store, user)
        .await?
        .into_iter()
        .map(End::Session)
        .collect();
    if tokens {
        let now = Utc::now();
        let prefix = format!("{}{}/", records::prefix::<ApiToken>(), user);
        for (mut token, revision) in page::scan_all_under::<ApiToken>(store, &prefix).await? {
            if token.user != *user || token.revoked_at.is_some() || token.expires_at <= now {
                continue;
            }
            token.revoked_at = Some(now);
            out.push(End::Token {
                key: records::key::<ApiToken>(&token.id()),
                revision,
                revoked: records::encode(&token),
            });
        }
    }
    Ok(out)
}

fn count(ends: &[End]) -> Ended {
    let sessions = ends.iter().filter(|e| matches!(e, End::Session(_))).count();
    Ended {
        sessions,
        tokens: ends.len() - sessions,
    }
}

/// Commits `txn` (the change, with `base_ops` operations) with its audit entry
/// and as many of `ends` as fit, then ends the rest in follow-up transactions.
async fn commit(
    store: &dyn Store,
    caller: &Principal,
    action: &str,
    user: &UserId,
    txn: Txn,
    base_ops: usize,
    ends: Vec<End>,
) -> Result<Ended, AuthError> {
    let ended = count(&ends);
    let detail = format!(
        "ended {} sessions, revoked {} API tokens",
        ended.sessions, ended.tokens
    );
    let target = records::key::<User>(user.as_str());
    let draft = audit_draft(&caller.actor, action, &target, Some(detail))?;
    // Two operations of the transaction are the audit entry and its head.
    let room = MAX_TXN_OPS.saturating_sub(base_ops + 2);
    let (now, later) = ends.split_at(room.min(ends.len()));
    let txn = now.iter().fold(txn, |t, e| e.add_to(t));
    if let Appended::Conflict = audit::append(store, draft, txn).await? {
        return Err(AuthError::UserChanged {
            id: user.to_string(),
        });
    }
    for chunk in later.chunks(MAX_TXN_OPS) {
        let txn = chunk.iter().fold(Txn::new(), |t, e| e.add_to(t));
        if let TxnOutcome::Conflict = store.txn(txn).await? {
            // A token changed meanwhile (its owner revoked it): one by one,
            // and a token that moved again is left as its owner set it.
            for e in chunk {
                store.txn(e.add_to(Txn::new())).await?;
            }
        }
    }
    Ok(ended)
}

/// Disables (`Disabled`) or re-enables (`Active`) user `id`. Disabling ends
/// every session and revokes every API token of the user at once. Setting the
/// state the user already has changes and records nothing.
///
/// Errors: `Forbidden`, `UserNotFound`, `UserIsCaller`, `UserChanged`.
pub async fn set_state(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
    state: UserState,
) -> Result<(User, Ended), AuthError> {
    let (mut user, revision) = managed(store, caller, id).await?;
    if user.state == state {
        return Ok((user, Ended::default()));
    }
    user.state = state;
    let key = records::key::<User>(user.id.as_str());
    let txn = Txn::new()
        .when_mod_revision(key.clone(), revision)
        .put(key, records::encode(&user));
    let (action, ends) = match state {
        UserState::Disabled => ("user.disable", credentials_of(store, &user.id, true).await?),
        UserState::Active => ("user.enable", Vec::new()),
    };
    let ended = commit(store, caller, action, &user.id, txn, 1, ends).await?;
    Ok((user, ended))
}

/// What a password reset handed out.
#[derive(Debug, Clone)]
pub enum Reset {
    /// The manager typed the new password (a tenant admin).
    Typed,
    /// A generated password, shown once (a tenant admin that typed none).
    Generated(String),
    /// A platform user manager never sets a password: the user's password is
    /// cleared (no sign-in until activated) and a one-time activation code is
    /// shown once instead (issue 16 item 7, 003 §3.2.2.15).
    Activation(Issued),
}

/// Resets the password of user `id` at `now`, ends the user's sessions and
/// clears their lockout count; API tokens are left alone.
///
/// A tenant admin sets `password` as typed, or a generated one when `None`.
/// A platform user manager may not type one (`PasswordSetByUser`): the user's
/// password is cleared and they get a new activation code; their earlier
/// unused codes die.
///
/// Errors: `Forbidden`, `UserNotFound`, `UserIsCaller`, `PasswordSetByUser`,
/// `PasswordTooWeak`, `UserChanged`.
pub async fn reset_password(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
    password: Option<String>,
    now: DateTime<Utc>,
) -> Result<(Reset, Ended), AuthError> {
    let (mut user, revision) = managed(store, caller, id).await?;
    let platform_side = caller.can(Permission::UserManage, None);
    let key = records::key::<User>(user.id.as_str());
    let (reset, txn, ops) = if platform_side {
        if password.is_some() {
            return Err(AuthError::PasswordSetByUser);
        }
        user.password_hash = None;
        let (record, issued) = activation::issue(&user.id, &caller.actor, now);
        let mut txn = activation::put(Txn::new(), &record);
        let mut ops = 1;
        for (old, rev) in
            page::scan_all_under::<Activation>(store, &records::prefix::<Activation>()).await?
        {
            if old.user == user.id {
                let old_key = records::key::<Activation>(&Record::id(&old));
                txn = txn.when_mod_revision(old_key.clone(), rev).delete(old_key);
                ops += 1;
            }
        }
        (Reset::Activation(issued), txn, ops)
    } else {
        let (password, reset) = match password {
            Some(p) => (p, Reset::Typed),
            // 64 random bits; the fixed letter and digit satisfy the rule
            // whatever the hex digits are.
            None => {
                let p = format!("Ys{}9", yunshu_pki::random_hex(8));
                (p.clone(), Reset::Generated(p))
            }
        };
        passwords::check_strength(&password)?;
        user.password_hash = Some(passwords::hash(password).await?);
        (reset, Txn::new(), 0)
    };
    let txn = txn
        .when_mod_revision(key.clone(), revision)
        .put(key, records::encode(&user))
        .delete(lockout::key(user.id.as_str()));
    let ends = credentials_of(store, &user.id, false).await?;
    let ended = commit(
        store,
        caller,
        "user.password_reset",
        &user.id,
        txn,
        ops + 2,
        ends,
    )
    .await?;
    Ok((reset, ended))
}

/// Removes role binding `binding` from user `id`; the permissions it granted
/// are gone from the user's next request (sessions and tokens included).
///
/// Errors: `Forbidden` (also a role the caller could not grant),
/// `UserNotFound`, `UserIsCaller`, `RoleBindingNotFound`, `UserRolesRequired` (the user's last
/// binding), `UserChanged`.
pub async fn remove_binding(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
    binding: &str,
) -> Result<RoleBinding, AuthError> {
    let (user, revision) = managed(store, caller, id).await?;
    let prefix = format!("{}{}.", records::prefix::<RoleBinding>(), user.id);
    let bindings: Vec<(RoleBinding, Revision)> =
        page::scan_all_under::<RoleBinding>(store, &prefix)
            .await?
            .into_iter()
            .filter(|(b, _)| b.user() == &user.id)
            .collect();
    let (removed, _) = bindings
        .iter()
        .find(|(b, _)| b.id().to_string() == binding)
        .cloned()
        .ok_or_else(|| AuthError::RoleBindingNotFound {
            id: binding.to_owned(),
        })?;
    if !may_grant(caller, removed.role(), removed.scope()) {
        return Err(AuthError::Forbidden);
    }
    if bindings.len() < 2 {
        return Err(AuthError::UserRolesRequired);
    }
    // Every binding at the revision read: two removals racing for the last
    // two cannot both succeed.
    let user_key = records::key::<User>(user.id.as_str());
    let mut txn = Txn::new().when_mod_revision(user_key, revision);
    for (b, rev) in &bindings {
        txn = txn.when_mod_revision(records::key::<RoleBinding>(&Record::id(b)), *rev);
    }
    txn = txn.delete(records::key::<RoleBinding>(&Record::id(&removed)));
    let target = records::key::<User>(user.id.as_str());
    let detail = format!(
        "binding {} ({} at {})",
        binding,
        removed.role(),
        removed.scope()
    );
    let draft = audit_draft(
        &caller.actor,
        "user.role_binding.remove",
        &target,
        Some(detail),
    )?;
    match audit::append(store, draft, txn).await? {
        Appended::Committed { .. } => Ok(removed),
        Appended::Conflict => Err(AuthError::UserChanged {
            id: user.id.to_string(),
        }),
    }
}

/// Ends every session and revokes every API token of user `id` without
/// disabling them: they can sign in again. Always recorded, even when there
/// was nothing to end.
///
/// Errors: `Forbidden`, `UserNotFound`, `UserIsCaller`, `UserChanged`.
pub async fn revoke_credentials(
    store: &dyn Store,
    caller: &Principal,
    id: &str,
) -> Result<Ended, AuthError> {
    let (user, revision) = managed(store, caller, id).await?;
    let key = records::key::<User>(user.id.as_str());
    // The user record is only compared, so the entry and the ends stay one
    // decision about the user as read.
    let txn = Txn::new().when_mod_revision(key, revision);
    let ends = credentials_of(store, &user.id, true).await?;
    commit(
        store,
        caller,
        "user.credentials_revoke",
        &user.id,
        txn,
        0,
        ends,
    )
    .await
}
