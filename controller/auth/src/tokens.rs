//! Revocable API tokens for scripts and the CLI: `yst1.<user>.<id>.<secret>`,
//! presented as a bearer credential. A token acts as its user, narrowed to the
//! scopes (permissions) it was created with; only the secret's SHA-256 is
//! stored. Revoking takes effect on the next request.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use yunshu_domain::user::Permission;
use yunshu_domain::{Record, UserId};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{PageRequest, Store, StoreError, Txn, records};

use crate::{AuthError, Principal, audit_draft};

pub const PREFIX: &str = "yst1.";
/// Longest lifetime of a token.
pub const MAX_DAYS: i64 = 365;
/// Lifetime of a token when the request does not say.
pub const DEFAULT_DAYS: i64 = 90;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub user: UserId,
    pub name: String,
    pub scopes: BTreeSet<Permission>,
    pub secret_sha256: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Record for ApiToken {
    const KIND: &'static str = "api_token";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        // The user first, so one user's tokens are one key range.
        format!("{}/{}", self.user, self.id)
    }
}

/// The token a bearer string names, if it is valid now.
pub async fn resolve(store: &dyn Store, bearer: &str) -> Result<Option<ApiToken>, StoreError> {
    let Some(rest) = bearer.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    let Some((user_and_id, secret)) = rest.rsplit_once('.') else {
        return Ok(None);
    };
    let Some((user, id)) = user_and_id.rsplit_once('.') else {
        return Ok(None);
    };
    let Some((token, _)) = records::get::<ApiToken>(store, &format!("{user}/{id}")).await? else {
        return Ok(None);
    };
    let valid = token.secret_sha256 == yunshu_pki::sha256_hex(secret.as_bytes())
        && token.revoked_at.is_none()
        && token.expires_at > Utc::now();
    Ok(valid.then_some(token))
}

/// Mints a token for the calling user named `name`, limited to `scopes`, valid
/// `days` (default [`DEFAULT_DAYS`], at most [`MAX_DAYS`]). Returns the stored
/// token and the bearer string, which is shown once and never again.
///
/// Errors: `Forbidden` for the admin token (not a user) or scopes beyond the
/// caller's permissions (a token caller: its own scopes);
/// `TokenOutlivesCaller` for a life beyond the calling token's; `TokenRequestInvalid`; `TokenIdCollision` (retry).
pub async fn create(
    store: &dyn Store,
    caller: &Principal,
    name: &str,
    scopes: BTreeSet<Permission>,
    days: Option<i64>,
) -> Result<(ApiToken, String), AuthError> {
    let user = caller.user_id()?.clone();
    let days = days.unwrap_or(DEFAULT_DAYS);
    let name = name.trim().to_owned();
    if !(1..=MAX_DAYS).contains(&days)
        || name.is_empty()
        || name.chars().count() > 100
        || scopes.is_empty()
    {
        return Err(AuthError::TokenRequestInvalid { max_days: MAX_DAYS });
    }
    // A token can never do more than its caller: the user's permissions,
    // narrowed by the scopes of the token the caller presented, if any.
    if !scopes.is_subset(&caller.permissions()) {
        return Err(AuthError::Forbidden);
    }
    let now = Utc::now();
    // Nor live longer than the token that minted it.
    if let Some(limit) = caller.token_expires_at
        && now + Duration::days(days) > limit
    {
        return Err(AuthError::TokenOutlivesCaller { expires_at: limit });
    }
    let secret = yunshu_pki::random_hex(32);
    let token = ApiToken {
        id: yunshu_pki::random_hex(8),
        user: user.clone(),
        name,
        scopes,
        secret_sha256: yunshu_pki::sha256_hex(secret.as_bytes()),
        created_at: now,
        expires_at: now + Duration::days(days),
        revoked_at: None,
    };
    let key = records::key::<ApiToken>(&token.id());
    let txn = Txn::new()
        .when_mod_revision(key.clone(), 0)
        .put(key.clone(), records::encode(&token));
    let draft = audit_draft(&caller.actor, "api_token.create", &key, None)?;
    if let Appended::Conflict = audit::append(store, draft, txn).await? {
        return Err(AuthError::TokenIdCollision);
    }
    let bearer = format!("{PREFIX}{}.{}.{secret}", user, token.id);
    Ok((token, bearer))
}

/// The calling user's own tokens (`Forbidden` for the admin token).
pub async fn list(store: &dyn Store, caller: &Principal) -> Result<Vec<ApiToken>, AuthError> {
    let user = caller.user_id()?;
    let prefix = format!("{}{}/", records::prefix::<ApiToken>(), user);
    let page = store.range(&prefix, PageRequest::default()).await?;
    Ok(page
        .items
        .iter()
        .map(|kv| records::decode::<ApiToken>(&kv.key, &kv.value))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Revokes one of the calling user's tokens. Idempotent: revoking a revoked
/// token succeeds and changes nothing. `TokenNotFound` for another user's.
pub async fn revoke(store: &dyn Store, caller: &Principal, id: &str) -> Result<(), AuthError> {
    let user = caller.user_id()?;
    let record_id = format!("{user}/{id}");
    let (mut token, revision) = records::get::<ApiToken>(store, &record_id)
        .await?
        .ok_or_else(|| AuthError::TokenNotFound { id: id.to_owned() })?;
    if token.revoked_at.is_some() {
        return Ok(());
    }
    token.revoked_at = Some(Utc::now());
    let key = records::key::<ApiToken>(&record_id);
    let txn = Txn::new()
        .when_mod_revision(key.clone(), revision)
        .put(key.clone(), records::encode(&token));
    let draft = audit_draft(&caller.actor, "api_token.revoke", &key, None)?;
    audit::append(store, draft, txn).await?;
    Ok(())
}
