//! One-time activation (issue 16 item 7; 003 §3.2.2.15): a user created — or
//! whose password is reset — by a platform user manager gets no password from
//! that manager. The manager's answer carries a one-time code instead; the
//! user sets their own password with it ([`activate`]), so nobody on the
//! platform side ever knows a department's password.
//!
//! Only the code's SHA-256 is stored (`activation/<sha256>`); a code works
//! once, for [`LIFETIME_HOURS`], and only while the user has no password.
//! Until then the account cannot sign in: it has no hash, so sign-in fails
//! like a wrong password (`LoginFailed`).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use yunshu_domain::user::User;
use yunshu_domain::{Actor, Record, UserId};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{Store, Txn, records};

use crate::{AuthError, audit_draft, passwords};

/// How long an activation code works.
pub const LIFETIME_HOURS: i64 = 72;

/// A pending activation: the SHA-256 of its code and whose it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Activation {
    pub code_sha256: String,
    pub user: UserId,
    pub created_by: Actor,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Record for Activation {
    const KIND: &'static str = "activation";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.code_sha256.clone()
    }
}

/// A code just issued: shown once to the manager, never stored.
#[derive(Debug, Clone)]
pub struct Issued {
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

/// A fresh activation for `user` (128 random bits) and the stored record.
pub(crate) fn issue(user: &UserId, by: &Actor, now: DateTime<Utc>) -> (Activation, Issued) {
    let code = yunshu_pki::random_hex(16);
    let expires_at = now + Duration::hours(LIFETIME_HOURS);
    let record = Activation {
        code_sha256: yunshu_pki::sha256_hex(code.as_bytes()),
        user: user.clone(),
        created_by: by.clone(),
        created_at: now,
        expires_at,
    };
    (record, Issued { code, expires_at })
}

/// Adds the activation record to `txn` (must not exist yet).
pub(crate) fn put(txn: Txn, record: &Activation) -> Txn {
    let key = records::key::<Activation>(&record.id());
    txn.when_mod_revision(key.clone(), 0)
        .put(key, records::encode(record))
}

/// Sets the password of the user `code` was issued for, at `now`, and uses the
/// code up: one transaction with its audit entry (`user.activate`).
///
/// Errors: `ActivationInvalid` for a code that is unknown, used, expired, or
/// whose user meanwhile has a password or is gone (one answer for all, so a
/// stranger learns nothing); `PasswordTooWeak`. Nothing is written on either.
pub async fn activate(
    store: &dyn Store,
    code: &str,
    password: String,
    now: DateTime<Utc>,
) -> Result<User, AuthError> {
    let sha = yunshu_pki::sha256_hex(code.trim().as_bytes());
    let (activation, revision) = records::get::<Activation>(store, &sha)
        .await?
        .ok_or(AuthError::ActivationInvalid)?;
    if activation.expires_at <= now {
        return Err(AuthError::ActivationInvalid);
    }
    let (mut user, user_revision) = records::get::<User>(store, activation.user.as_str())
        .await?
        .ok_or(AuthError::ActivationInvalid)?;
    if user.password_hash.is_some() {
        return Err(AuthError::ActivationInvalid);
    }
    passwords::check_strength(&password)?;
    user.password_hash = Some(passwords::hash(password).await?);
    let key = records::key::<Activation>(&sha);
    let user_key = records::key::<User>(user.id.as_str());
    let txn = Txn::new()
        .when_mod_revision(key.clone(), revision)
        .delete(key)
        .when_mod_revision(user_key.clone(), user_revision)
        .put(user_key.clone(), records::encode(&user));
    let mut draft = audit_draft(
        &Actor::User(user.id.clone()),
        "user.activate",
        &user_key,
        Some(format!("issued by {}", activation.created_by)),
    )?;
    draft.at = now;
    match audit::append(store, draft, txn).await? {
        Appended::Committed { .. } => Ok(user),
        // Used (or the user changed) between the read and the write.
        Appended::Conflict => Err(AuthError::ActivationInvalid),
    }
}
