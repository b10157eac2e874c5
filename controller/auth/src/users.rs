//! Users and signing in: create a user with role bindings, list the users a
//! caller manages, check a password (with lockout) and start a session.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use yunshu_domain::ids::OrgUnitId;
use yunshu_domain::org_unit::OrgUnit;
use yunshu_domain::tenant::Tenant;
use yunshu_domain::user::{
    Permission, Role, RoleBinding, RoleBindingFields, Scope, User, UserState, separation_conflict,
};
use yunshu_domain::{Actor, Name, TenantCode, UserId};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{Txn, page, records};

use crate::activation::{self, Issued};
use crate::principal::bindings_of;
use crate::sessions::{self, Session};
use crate::{AuthError, Principal, audit_draft, lockout, passwords};

/// A role to grant at a scope, optionally narrowed to some of its permissions.
#[derive(Debug, Clone)]
pub struct Grant {
    pub role: Role,
    pub scope: Scope,
    pub permissions: Option<BTreeSet<Permission>>,
}

/// A user to create, as the caller typed it (checked by [`create`]).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    pub display_name: String,
    /// The user's department (使用单位) code; `None` for platform staff.
    pub tenant: Option<String>,
    /// The user's org unit (主管部门), for a unit admin; never with `tenant`.
    pub org_unit: Option<String>,
    /// Only a tenant admin may set it (for its own department's users); when
    /// `None` the user gets a one-time activation code and sets their own.
    pub password: Option<String>,
    pub grants: Vec<Grant>,
}

/// May `caller` grant `role` at `scope`? Platform user managers may grant any
/// role; tenant admins only tenant roles in their own tenant; unit admins
/// tenant roles in the tenants under their unit and the unit-admin role of
/// units strictly below it — never their own unit or one above (SPEC §1,
/// 003 §3.2.2.15: a higher admin creates lower admins and users).
pub(crate) fn may_grant(caller: &Principal, role: &Role, scope: &Scope) -> bool {
    if caller.can(Permission::UserManage, None) {
        return true;
    }
    match (role, scope) {
        (Role::TenantUser | Role::TenantAdmin, Scope::Tenant { tenant }) => {
            caller.can(Permission::TenantUserManage, Some(tenant))
        }
        (Role::UnitAdmin, Scope::OrgUnit { unit }) => {
            caller.can_in_unit(Permission::TenantUserManage, unit, true)
        }
        _ => false,
    }
}

/// Whom a caller manages: every user (a platform user manager), its own
/// department's (a tenant admin), and for a unit admin the users of the
/// tenants under its unit and the members of the units strictly below it.
pub(crate) struct Manages {
    everyone: bool,
    own: Option<TenantCode>,
    unit_tenants: BTreeSet<TenantCode>,
}

impl Manages {
    /// `Forbidden` for a caller who manages nobody.
    pub(crate) fn of(caller: &Principal) -> Result<Self, AuthError> {
        let everyone = caller.can(Permission::UserManage, None);
        let own = caller
            .tenant
            .clone()
            .filter(|t| caller.can(Permission::TenantUserManage, Some(t)));
        let unit_tenants = caller.tenants_in_units(Permission::TenantUserManage);
        let unit_admin = caller.bindings.iter().any(|b| {
            matches!(b.scope(), Scope::OrgUnit { .. }) && b.allows(Permission::TenantUserManage)
        }) && caller
            .scopes
            .as_ref()
            .is_none_or(|s| s.contains(&Permission::TenantUserManage));
        if !everyone && own.is_none() && !unit_admin {
            return Err(AuthError::Forbidden);
        }
        Ok(Manages {
            everyone,
            own,
            unit_tenants,
        })
    }

    /// Whether the caller manages `user`.
    pub(crate) fn user(&self, caller: &Principal, user: &User) -> bool {
        if self.everyone {
            return true;
        }
        match (&user.tenant, &user.org_unit) {
            (Some(t), _) => self.own.as_ref() == Some(t) || self.unit_tenants.contains(t),
            (None, Some(u)) => caller.can_in_unit(Permission::TenantUserManage, u, true),
            (None, None) => false,
        }
    }
}

/// A user just created: the user, their bindings, and the one-time activation
/// code when no password was set (shown once, never stored).
#[derive(Debug, Clone)]
pub struct Created {
    pub user: User,
    pub bindings: Vec<RoleBinding>,
    pub activation: Option<Issued>,
}

/// Creates a user and their role bindings in one audited transaction, at `now`.
///
/// A platform user manager (`user_manage`) never sets a password: the user
/// gets a one-time activation code instead, so no one on the platform side
/// knows a department's password (003 §3.2.2.15). A tenant admin may set its
/// own department's users' passwords, or leave it to activation too.
///
/// Errors: `Invalid` (id, name, tenant code, a binding the user cannot hold),
/// `UserRolesRequired`, `TenantNotFound` (also for a tenant the caller may not
/// see), `Forbidden` (a role the caller may not grant), `RolesSeparated`
/// (三员分立), `PasswordSetByUser`, `PasswordTooWeak`, `UserExists`. Nothing
/// is written on any of them.
pub async fn create(
    store: &dyn yunshu_store::Store,
    caller: &Principal,
    new: NewUser,
    now: DateTime<Utc>,
) -> Result<Created, AuthError> {
    let id = UserId::new(new.id.clone()).map_err(AuthError::invalid)?;
    let display_name = Name::new(&new.display_name).map_err(AuthError::invalid)?;
    let tenant = new
        .tenant
        .as_deref()
        .map(TenantCode::new)
        .transpose()
        .map_err(AuthError::invalid)?;
    let org_unit = new
        .org_unit
        .as_deref()
        .map(OrgUnitId::new)
        .transpose()
        .map_err(AuthError::invalid)?;
    if new.grants.is_empty() {
        return Err(AuthError::UserRolesRequired);
    }
    if let Some(t) = &tenant {
        // A tenant the caller may not see is "not found", never "forbidden".
        let visible = caller.can(Permission::UserManage, None)
            || caller.tenant.as_ref() == Some(t)
            || caller
                .tenants_in_units(Permission::TenantUserManage)
                .contains(t);
        if !visible || records::get::<Tenant>(store, t.as_str()).await?.is_none() {
            return Err(AuthError::TenantNotFound {
                code: t.to_string(),
            });
        }
    }
    if let Some(u) = &org_unit {
        // Unit admins create members of the units strictly below their own.
        let visible = caller.can(Permission::UserManage, None)
            || caller.can_in_unit(Permission::TenantUserManage, u, true);
        if !visible || records::get::<OrgUnit>(store, u.as_str()).await?.is_none() {
            return Err(AuthError::OrgUnitNotFound { id: u.to_string() });
        }
    }
    for g in &new.grants {
        if !may_grant(caller, &g.role, &g.scope) {
            return Err(AuthError::Forbidden);
        }
    }
    separated(
        tenant.is_some() || org_unit.is_some(),
        new.grants.iter().map(|g| &g.role),
    )?;
    let password_hash = match new.password {
        Some(_) if caller.can(Permission::UserManage, None) => {
            return Err(AuthError::PasswordSetByUser);
        }
        Some(p) => {
            passwords::check_strength(&p)?;
            Some(passwords::hash(p).await?)
        }
        None => None,
    };
    let activation = password_hash
        .is_none()
        .then(|| activation::issue(&id, &caller.actor, now));
    let user = User {
        id: id.clone(),
        display_name,
        tenant,
        org_unit,
        password_hash,
        state: UserState::Active,
        created_at: now,
    };
    let mut bindings = Vec::new();
    for (n, g) in new.grants.into_iter().enumerate() {
        let binding = RoleBinding::new(RoleBindingFields {
            id: format!("{id}.{n}").parse().map_err(AuthError::invalid)?,
            user: id.clone(),
            role: g.role,
            scope: g.scope,
            permissions: g.permissions,
            granted_by: caller.actor.clone(),
            granted_at: now,
        })
        .map_err(AuthError::invalid)?;
        user.check_binding(&binding).map_err(AuthError::invalid)?;
        bindings.push(binding);
    }
    let user_key = records::key::<User>(id.as_str());
    let mut txn = Txn::new()
        .when_mod_revision(user_key.clone(), 0)
        .put(user_key.clone(), records::encode(&user));
    for b in &bindings {
        let key = records::key::<RoleBinding>(&yunshu_domain::Record::id(b));
        txn = txn
            .when_mod_revision(key.clone(), 0)
            .put(key, records::encode(b));
    }
    if let Some((record, _)) = &activation {
        txn = activation::put(txn, record);
    }
    let roles: Vec<&Role> = bindings.iter().map(RoleBinding::role).collect();
    let detail = serde_json::to_string(&roles)
        .ok()
        .map(|r| match &activation {
            Some((a, _)) => format!("{r}; activation until {}", a.expires_at.to_rfc3339()),
            None => r,
        });
    let mut draft = audit_draft(&caller.actor, "user.create", &user_key, detail)?;
    draft.at = now;
    match audit::append(store, draft, txn).await? {
        Appended::Committed { .. } => Ok(Created {
            user,
            bindings,
            activation: activation.map(|(_, issued)| issued),
        }),
        Appended::Conflict => Err(AuthError::UserExists { id: id.to_string() }),
    }
}

/// Refuses roles one person may not hold together (三员分立, 003 §3.2.2.15):
/// `RolesSeparated`.
pub(crate) fn separated<'a>(
    tenant_member: bool,
    roles: impl IntoIterator<Item = &'a Role>,
) -> Result<(), AuthError> {
    match separation_conflict(tenant_member, roles) {
        Some((first, second)) => Err(AuthError::RolesSeparated { first, second }),
        None => Ok(()),
    }
}

/// The users `caller` manages, by id, with their role bindings: every user for
/// a platform user manager, a department's own users for its tenant admin,
/// the users below its unit for a unit admin ([`Manages`]); `Forbidden` for
/// anyone else.
pub async fn list(
    store: &dyn yunshu_store::Store,
    caller: &Principal,
) -> Result<Vec<(User, Vec<RoleBinding>)>, AuthError> {
    let manages = Manages::of(caller)?;
    let users = page::scan_all_under::<User>(store, &records::prefix::<User>()).await?;
    let mut out = Vec::new();
    for (user, _) in users {
        if !manages.user(caller, &user) {
            continue;
        }
        let bindings = bindings_of(store, &user.id).await?;
        out.push((user, bindings));
    }
    Ok(out)
}

/// A successful sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub roles: Vec<Role>,
    /// The new session's id: the client's to keep, never stored.
    pub session_id: String,
    pub session: Session,
}

/// Checks `password` for `user` and starts a session. Five failures within
/// fifteen minutes lock the account for the rest of that window
/// (`AccountLocked`); every failure and success is audited.
///
/// An unknown user costs the same argon2 verification as a wrong password, so
/// timing does not reveal who exists; both are `LoginFailed`.
/// At most `max` characters of untrusted `text`, with every control character
/// (newlines included) written as an escape: a user name typed at sign-in
/// reaches the audit log, which refuses control characters — such a failed
/// sign-in went unaudited — and must not start a forged line in a log
/// (issue 16, low).
pub fn printable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

pub async fn login(
    store: &dyn yunshu_store::Store,
    user: &str,
    password: String,
) -> Result<SignedIn, AuthError> {
    // Counted before the hash: a success clears it (issue 16 item 10).
    if !lockout::begin_attempt(store, user).await? {
        return Err(AuthError::AccountLocked {
            minutes: lockout::WINDOW.as_secs() / 60,
        });
    }
    let found = match UserId::new(user.to_owned()) {
        Ok(id) => records::get::<User>(store, id.as_str())
            .await?
            .map(|(u, _)| u),
        Err(_) => None,
    };
    let hash = found.as_ref().and_then(|u| u.password_hash.clone());
    let phc = match hash {
        Some(h) => h,
        None => passwords::dummy_hash().await.unwrap_or_default(),
    };
    let ok = passwords::verify(password, phc).await;
    let found = match found {
        Some(u) if ok && u.state == UserState::Active => u,
        _ => {
            let failures = lockout::failures(store, user).await?;
            let target = format!("user/{}", printable(user, 64));
            if let Ok(draft) = audit_draft(
                &Actor::System("auth".to_owned()),
                "auth.login_failed",
                &target,
                Some(format!("failure {failures} in the window")),
            ) {
                let _ = audit::record(store, draft).await;
            }
            return Err(AuthError::LoginFailed);
        }
    };
    lockout::clear(store, found.id.as_str()).await?;
    let (session_id, session) = sessions::create(store, found.id.clone()).await?;
    let roles = bindings_of(store, &found.id)
        .await?
        .iter()
        .map(|b| b.role().clone())
        .collect();
    let draft = audit_draft(
        &Actor::User(found.id.clone()),
        "auth.login",
        &records::key::<User>(found.id.as_str()),
        None,
    )?;
    audit::record(store, draft).await?;
    Ok(SignedIn {
        user: found,
        roles,
        session_id,
        session,
    })
}
