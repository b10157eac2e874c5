//! The caller of a request, resolved once per request by [`resolve`]:
//! - a bearer credential that is the platform admin token → the platform admin;
//! - a bearer credential that is an API token (`yst1.…`) → its user, narrowed to
//!   the token's scopes;
//! - a session id → that user with the role bindings stored for them; a request
//!   that changes something must echo the session's CSRF token (SameSite=Strict
//!   already stops cross-site posts; the token is the second lock);
//! - nothing, or anything that names nobody active → [`AuthError::Unauthenticated`].

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use yunshu_domain::ids::IdError;
use yunshu_domain::ids::OrgUnitId;
use yunshu_domain::user::{
    Permission, Role, RoleBinding, RoleBindingFields, Scope, User, UserState,
};
use yunshu_domain::{Actor, DomainError, ProviderId, TenantCode, UserId};
use yunshu_store::{PageRequest, Store, StoreError, records};

use crate::org::{self, OrgReach};
use crate::{AuthError, sessions, tokens};

#[derive(Debug, Clone)]
pub struct Principal {
    pub actor: Actor,
    /// `None` for the admin token.
    pub user: Option<UserId>,
    pub tenant: Option<TenantCode>,
    pub bindings: Vec<RoleBinding>,
    /// An API token's scopes: the caller may use only these permissions.
    pub scopes: Option<BTreeSet<Permission>>,
    /// When the API token the caller presented expires; a token it mints
    /// may not outlive it.
    pub token_expires_at: Option<DateTime<Utc>>,
    /// What the caller's unit-scoped bindings reach (unit admins), resolved
    /// at authentication; empty for everyone else.
    pub org: OrgReach,
}

/// What a request presented to say who it is.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// `Authorization: Bearer …`: the platform admin token or an API token.
    Bearer(&'a str),
    /// A session id (from the session cookie). `csrf` is the token the request
    /// echoed; it must match when the request `changes` something.
    Session {
        id: &'a str,
        csrf: Option<&'a str>,
        changes: bool,
    },
}

impl Principal {
    /// Whether some binding allows `permission` at platform scope or in `tenant`.
    pub fn can(&self, permission: Permission, tenant: Option<&TenantCode>) -> bool {
        if self
            .scopes
            .as_ref()
            .is_some_and(|s| !s.contains(&permission))
        {
            return false;
        }
        self.bindings.iter().any(|b| {
            b.allows(permission)
                && match (b.scope(), tenant) {
                    (Scope::Platform, _) => true,
                    (Scope::Tenant { tenant: mine }, Some(t)) => mine == t,
                    (Scope::Tenant { .. }, None) => false,
                    (Scope::OrgUnit { unit }, Some(t)) => self.org.reaches_tenant(unit, t),
                    (Scope::OrgUnit { .. }, None) => false,
                    (Scope::Provider { .. }, _) => false,
                }
        })
    }

    /// Whether some unit-scoped binding allows `permission` at `unit` or
    /// above it (`strictly`: only above it). Platform bindings do not count:
    /// callers check those with [`Principal::can`].
    pub fn can_in_unit(&self, permission: Permission, unit: &OrgUnitId, strictly: bool) -> bool {
        if self
            .scopes
            .as_ref()
            .is_some_and(|s| !s.contains(&permission))
        {
            return false;
        }
        self.bindings.iter().any(|b| {
            b.allows(permission)
                && match b.scope() {
                    Scope::OrgUnit { unit: bound } if strictly => {
                        self.org.strictly_below(bound, unit)
                    }
                    Scope::OrgUnit { unit: bound } => self.org.within(bound, unit),
                    _ => false,
                }
        })
    }

    /// The tenants some unit-scoped binding of the caller reaches with
    /// `permission`.
    pub fn tenants_in_units(&self, permission: Permission) -> BTreeSet<TenantCode> {
        if self
            .scopes
            .as_ref()
            .is_some_and(|s| !s.contains(&permission))
        {
            return BTreeSet::new();
        }
        self.bindings
            .iter()
            .filter(|b| b.allows(permission))
            .filter_map(|b| match b.scope() {
                Scope::OrgUnit { unit } => self.org.units.get(unit),
                _ => None,
            })
            .flat_map(|r| r.tenants.iter().cloned())
            .collect()
    }

    /// The providers whose scope grants `permission` to the caller (provider
    /// operators: SPEC §1).
    pub fn providers_with(&self, permission: Permission) -> Vec<&ProviderId> {
        if self
            .scopes
            .as_ref()
            .is_some_and(|s| !s.contains(&permission))
        {
            return Vec::new();
        }
        self.bindings
            .iter()
            .filter(|b| b.allows(permission))
            .filter_map(|b| match b.scope() {
                Scope::Provider { provider } => Some(provider),
                _ => None,
            })
            .collect()
    }

    /// [`Principal::can`], or [`AuthError::Forbidden`].
    pub fn require(
        &self,
        permission: Permission,
        tenant: Option<&TenantCode>,
    ) -> Result<(), AuthError> {
        if self.can(permission, tenant) {
            Ok(())
        } else {
            Err(AuthError::Forbidden)
        }
    }

    pub fn roles(&self) -> Vec<&Role> {
        self.bindings.iter().map(RoleBinding::role).collect()
    }

    /// Every permission the caller holds, after narrowing and token scopes.
    pub fn permissions(&self) -> BTreeSet<Permission> {
        self.bindings
            .iter()
            .flat_map(RoleBinding::effective_permissions)
            .filter(|p| self.scopes.as_ref().is_none_or(|s| s.contains(p)))
            .collect()
    }

    /// The user behind the caller; the admin token is not a user.
    pub fn user_id(&self) -> Result<&UserId, AuthError> {
        self.user.as_ref().ok_or(AuthError::Forbidden)
    }

    /// The installation's admin token: the bootstrap credential, not a person.
    /// It acts as the system administrator and as the security administrator
    /// (so it can set up the first security admin, and every user after that
    /// when no person holds the role yet) — never as an auditor, never with a
    /// tenant-data role, and held to the activation rule like every platform
    /// user manager: it never sets or learns a password (issue 16 item 7).
    fn platform_admin() -> Result<Self, AuthError> {
        let built = |e: DomainError| AuthError::Build {
            what: "the platform admin identity",
            source: e,
        };
        let actor: Actor = "user:platform-admin"
            .parse()
            .map_err(|e: IdError| built(e.into()))?;
        let mut bindings = Vec::new();
        for (n, role) in [Role::PlatformAdmin, Role::SecurityAdmin]
            .into_iter()
            .enumerate()
        {
            bindings.push(
                RoleBinding::new(RoleBindingFields {
                    id: format!("platform-admin.token{n}")
                        .parse()
                        .map_err(|e: IdError| built(e.into()))?,
                    user: UserId::new("platform-admin").map_err(|e| built(e.into()))?,
                    role,
                    scope: Scope::Platform,
                    permissions: None,
                    granted_by: actor.clone(),
                    granted_at: Utc::now(),
                })
                .map_err(|e| built(e.into()))?,
            );
        }
        Ok(Self {
            actor,
            user: None,
            tenant: None,
            bindings,
            scopes: None,
            token_expires_at: None,
            org: OrgReach::default(),
        })
    }
}

/// The role bindings of `user` (ids start with `<user>.`).
pub async fn bindings_of(store: &dyn Store, user: &UserId) -> Result<Vec<RoleBinding>, StoreError> {
    let prefix = format!("{}{}.", records::prefix::<RoleBinding>(), user);
    let page = store.range(&prefix, PageRequest::default()).await?;
    let mut out = Vec::new();
    for kv in page.items {
        let binding: RoleBinding = records::decode(&kv.key, &kv.value)?;
        if binding.user() == user {
            out.push(binding);
        }
    }
    Ok(out)
}

/// Who presented `credential`. `admin_token_sha256` is the SHA-256 (hex) of the
/// platform admin token, the only form the server keeps; `None` disables it.
pub async fn resolve(
    store: &dyn Store,
    admin_token_sha256: Option<&str>,
    credential: Option<Credential<'_>>,
) -> Result<Principal, AuthError> {
    match credential.ok_or(AuthError::Unauthenticated)? {
        Credential::Bearer(bearer) => {
            let bearer = bearer.trim();
            if admin_token_sha256 == Some(yunshu_pki::sha256_hex(bearer.as_bytes()).as_str()) {
                return Principal::platform_admin();
            }
            let token = tokens::resolve(store, bearer)
                .await?
                .ok_or(AuthError::Unauthenticated)?;
            let mut principal = user_principal(store, &token.user).await?;
            principal.scopes = Some(token.scopes);
            principal.token_expires_at = Some(token.expires_at);
            Ok(principal)
        }
        Credential::Session { id, csrf, changes } => {
            let session = sessions::get(store, id)
                .await?
                .ok_or(AuthError::Unauthenticated)?;
            // Constant time: how much of a guess matched must not show.
            let echoed = csrf.is_some_and(|c| {
                yunshu_pki::constant_time_eq(c.as_bytes(), session.csrf_token.as_bytes())
            });
            if changes && !echoed {
                return Err(AuthError::CsrfFailed);
            }
            user_principal(store, &session.user).await
        }
    }
}

/// The principal of an active user with their stored role bindings.
async fn user_principal(store: &dyn Store, id: &UserId) -> Result<Principal, AuthError> {
    let (user, _) = records::get::<User>(store, id.as_str())
        .await?
        .ok_or(AuthError::Unauthenticated)?;
    if user.state != UserState::Active {
        return Err(AuthError::Unauthenticated);
    }
    let bindings = bindings_of(store, &user.id).await?;
    let org = org::reach(store, &bindings).await?;
    Ok(Principal {
        actor: Actor::User(user.id.clone()),
        user: Some(user.id),
        tenant: user.tenant,
        bindings,
        scopes: None,
        token_expires_at: None,
        org,
    })
}
