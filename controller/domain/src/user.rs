//! Users, roles and role bindings (SPEC §1).
//!
//! Owns which role may hold which permission and in which scope. Roles are
//! hierarchical: a higher admin grants a lower role and may narrow its permissions,
//! never widen them (003 §3.2.2.15). Recording grants in the audit log and checking
//! who may grant what are the workflow's job; password hashing lives in the server.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    error::ErrorCode,
    ids::{Actor, OrgUnitId, ProviderId, RoleBindingId, UserId},
    record::Record,
    tenant::TenantCode,
    text::Name,
};

/// Why a user or role binding was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UserError {
    #[error("role {role} cannot be bound in scope {scope}")]
    RoleScopeMismatch { role: String, scope: String },
    #[error("role {role} does not include permission {permission}; a binding may only narrow")]
    PermissionNotGrantable { role: String, permission: String },
    /// 三员分立 (003 §3.2.2.15): one person holds at most one of the system,
    /// security and audit administrators' roles, and none of them together
    /// with a tenant-data role or as a member of a tenant.
    #[error("{first} and {second} must be held by different people (separation of duties)")]
    RolesSeparated { first: String, second: String },
    /// A user is a member of a tenant or of an org unit, not both.
    #[error("user {user} cannot be a member of both a tenant and an org unit")]
    MemberOfBoth { user: String },
    #[error("user {user} belongs to tenant {user_tenant:?} but the binding is scoped to {scope}")]
    RoleTenantMismatch {
        user: String,
        user_tenant: Option<String>,
        scope: String,
    },
}

impl ErrorCode for UserError {
    fn code(&self) -> &'static str {
        match self {
            UserError::RoleScopeMismatch { .. } => "ROLE_SCOPE_MISMATCH",
            UserError::PermissionNotGrantable { .. } => "ROLE_PERMISSION_NOT_GRANTABLE",
            UserError::RoleTenantMismatch { .. } => "ROLE_TENANT_MISMATCH",
            UserError::RolesSeparated { .. } => "ROLES_SEPARATED",
            UserError::MemberOfBoth { .. } => "USER_MEMBER_OF_BOTH",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            UserError::RoleScopeMismatch { role, scope } => {
                format!("角色 {role} 不能在范围 {scope} 内授予")
            }
            UserError::PermissionNotGrantable { role, permission } => {
                format!("角色 {role} 不含权限 {permission}，授权只能收窄不能扩大")
            }
            UserError::RoleTenantMismatch { user, scope, .. } => {
                format!("用户 {user} 不属于授权范围 {scope} 对应的使用单位")
            }
            UserError::RolesSeparated { first, second } => {
                format!("{first} 与 {second} 须由不同人员担任（三员分立）")
            }
            UserError::MemberOfBoth { user } => {
                format!("用户 {user} 不能同时属于使用单位和组织机构")
            }
        }
    }
}

/// Whether a user may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    Active,
    Disabled,
}

/// A person who signs in to yunshu.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub display_name: Name,
    /// The tenant this person works for; `None` for platform staff (reviewers,
    /// approvers, auditors, provider operators, platform admins).
    pub tenant: Option<TenantCode>,
    /// The org unit (主管部门) this person works for, for the staff of a
    /// supervising unit who hold no tenant (its unit admins); never together
    /// with `tenant`. Absent in records written before: `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_unit: Option<OrgUnitId>,
    /// Opaque PHC string (`$argon2id$…`) written by the server; never shown.
    pub password_hash: Option<String>,
    pub state: UserState,
    pub created_at: DateTime<Utc>,
}

// Hand-written so a password hash never lands in a log line.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("display_name", &self.display_name)
            .field("tenant", &self.tenant)
            .field("org_unit", &self.org_unit)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl User {
    /// Checks that `binding` can apply to this user: tenant-scoped roles only for
    /// members of that tenant, unit-scoped roles only for members of that
    /// unit, platform and provider roles only for platform staff.
    pub fn check_binding(&self, binding: &RoleBinding) -> Result<(), UserError> {
        if self.tenant.is_some() && self.org_unit.is_some() {
            return Err(UserError::MemberOfBoth {
                user: self.id.to_string(),
            });
        }
        let ok = match (&binding.scope, &self.tenant) {
            (Scope::Tenant { tenant }, Some(mine)) => tenant == mine,
            (Scope::Tenant { .. }, None) => false,
            (Scope::OrgUnit { unit }, _) => self.org_unit.as_ref() == Some(unit),
            (Scope::Platform | Scope::Provider { .. }, mine) => {
                mine.is_none() && self.org_unit.is_none()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(UserError::RoleTenantMismatch {
                user: self.id.to_string(),
                user_tenant: self.tenant.as_ref().map(ToString::to_string),
                scope: binding.scope.to_string(),
            })
        }
    }
}

impl Record for User {
    const KIND: &'static str = "user";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.id.to_string()
    }
}

/// One thing a user may do. Handlers check permissions, never roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    SystemRead,
    SystemWrite,
    OrderRead,
    OrderDraft,
    OrderSubmit,
    /// Accept or refuse a submitted order (受理).
    OrderAccept,
    /// Review an order, lower quantities, ask for expert review (审核, 000 art. 12).
    OrderReview,
    /// Final approval or rejection (审批).
    OrderApprove,
    /// Confirm delivery (交付确认, 000 art. 14).
    DeliveryConfirm,
    ChangeRequest,
    ExitRequest,
    ResourceRead,
    BillRead,
    /// Manage the users of one's own tenant.
    TenantUserManage,
    CatalogManage,
    PolicyManage,
    ReportRead,
    CapacityRead,
    /// Work on expansion orders (扩容, 003 §4.1.2.2 (1)).
    ExpansionHandle,
    AuditRead,
    /// Create, offboard and list users; grant and remove role bindings
    /// (安全管理员).
    UserManage,
    RoleManage,
    DriverManage,
    SettingsManage,
    /// Register departments (使用单位) (系统管理员).
    TenantManage,
}

/// A role from SPEC §1.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Role {
    /// Tenant user (使用单位经办人).
    TenantUser,
    /// Tenant admin: the department's IT head.
    TenantAdmin,
    /// Reviewer (审核), e.g. Datong 数字政府服务中心, Beijing 市公服中心.
    Reviewer,
    /// Approver (审批): the cloud management unit (政务云管理部门).
    Approver,
    /// Provider operator (云服务商) of one provider platform.
    ProviderOperator { provider: ProviderId },
    /// Security auditor (安全审计员): the audit administrator of 三员分立.
    Auditor,
    /// Platform admin, the system administrator (系统管理员) of 三员分立: runs
    /// yunshu (drivers, settings, catalog, policy, tenants), never manages users
    /// or roles and never reads tenant business data (003 §3.2.2.15). Stored as
    /// `platform_admin`, as before the split.
    PlatformAdmin,
    /// Security administrator (安全管理员, 安全保密管理员) of 三员分立: users,
    /// role bindings and offboarding; no drivers, settings or business data.
    SecurityAdmin,
    /// Unit admin (分级管理员) of a supervising unit (主管部门), bound at
    /// [`Scope::OrgUnit`]: manages the users of every tenant under the unit
    /// and the unit admins of the units strictly below it, and reads those
    /// tenants' reports — nothing of the units beside or above it, and no
    /// system, order or resource of a tenant one by one (003 §3.2.2.15:
    /// 上级管理员可以创建下级管理员以及下级用户).
    UnitAdmin,
}

/// The three administrators of 三员分立 (003 §3.2.2.15): one person holds at
/// most one of them, and none together with a tenant-data role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminDuty {
    /// 系统管理员 ([`Role::PlatformAdmin`]).
    System,
    /// 安全管理员 ([`Role::SecurityAdmin`]).
    Security,
    /// 安全审计员 ([`Role::Auditor`]).
    Audit,
}

/// The first pair of `roles` that one person may not hold together, for a user
/// who is a member of a tenant when `tenant_member`: two different
/// administrators of 三员分立, or an administrator together with a tenant-data
/// role or a tenant membership (003 §3.2.2.15; SPEC §1: the platform admin
/// cannot read tenant business data).
pub fn separation_conflict<'a>(
    tenant_member: bool,
    roles: impl IntoIterator<Item = &'a Role>,
) -> Option<(String, String)> {
    let roles: Vec<&Role> = roles.into_iter().collect();
    for (i, a) in roles.iter().enumerate() {
        let Some(duty) = a.admin_duty() else {
            continue;
        };
        if tenant_member {
            return Some(("tenant_member".to_owned(), a.to_string()));
        }
        for b in &roles[i + 1..] {
            let clash = match b.admin_duty() {
                Some(other) => other != duty,
                None => b.holds_tenant_data(),
            };
            if clash {
                return Some((a.to_string(), b.to_string()));
            }
        }
        for b in &roles[..i] {
            if b.holds_tenant_data() {
                return Some((b.to_string(), a.to_string()));
            }
        }
    }
    None
}

impl Role {
    /// The permissions a binding of this role grants unless narrowed.
    pub fn default_permissions(&self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::TenantUser => &[
                SystemRead,
                SystemWrite,
                OrderRead,
                OrderDraft,
                OrderSubmit,
                ResourceRead,
                BillRead,
            ],
            Role::TenantAdmin => &[
                SystemRead,
                SystemWrite,
                OrderRead,
                OrderDraft,
                OrderSubmit,
                ResourceRead,
                BillRead,
                TenantUserManage,
                DeliveryConfirm,
                ChangeRequest,
                ExitRequest,
            ],
            Role::Reviewer => &[
                SystemRead,
                OrderRead,
                OrderAccept,
                OrderReview,
                ResourceRead,
                ReportRead,
            ],
            Role::Approver => &[
                SystemRead,
                OrderRead,
                OrderApprove,
                ResourceRead,
                BillRead,
                CatalogManage,
                PolicyManage,
                ReportRead,
                CapacityRead,
            ],
            // Sees orders assigned to its platform and capacity, never tenant data (SPEC §1).
            Role::ProviderOperator { .. } => &[OrderRead, CapacityRead, ExpansionHandle],
            Role::Auditor => &[AuditRead, ReportRead],
            // No SystemRead/ResourceRead/BillRead on purpose (003 §3.2.2.15),
            // and since 三员分立 no UserManage/RoleManage: the security admin's.
            Role::PlatformAdmin => &[
                DriverManage,
                SettingsManage,
                CatalogManage,
                PolicyManage,
                TenantManage,
            ],
            Role::SecurityAdmin => &[UserManage, RoleManage],
            // Users of the tenants below and their reports; no tenant data
            // beyond the reports' figures.
            Role::UnitAdmin => &[TenantUserManage, ReportRead],
        }
    }

    /// Which administrator of 三员分立 this role is, if any.
    pub fn admin_duty(&self) -> Option<AdminDuty> {
        match self {
            Role::PlatformAdmin => Some(AdminDuty::System),
            Role::SecurityAdmin => Some(AdminDuty::Security),
            Role::Auditor => Some(AdminDuty::Audit),
            _ => None,
        }
    }

    /// Whether this role reads a tenant's business data. A unit admin reads
    /// the reports of the tenants below it, so none of 三员分立's platform
    /// administrators may hold it too.
    pub fn holds_tenant_data(&self) -> bool {
        matches!(self, Role::TenantUser | Role::TenantAdmin | Role::UnitAdmin)
    }

    fn name(&self) -> &'static str {
        match self {
            Role::TenantUser => "tenant_user",
            Role::TenantAdmin => "tenant_admin",
            Role::Reviewer => "reviewer",
            Role::Approver => "approver",
            Role::ProviderOperator { .. } => "provider_operator",
            Role::Auditor => "auditor",
            Role::PlatformAdmin => "platform_admin",
            Role::SecurityAdmin => "security_admin",
            Role::UnitAdmin => "unit_admin",
        }
    }

    /// Whether this role can be bound in `scope`.
    pub fn fits_scope(&self, scope: &Scope) -> bool {
        match (self, scope) {
            (Role::TenantUser | Role::TenantAdmin, Scope::Tenant { .. }) => true,
            (Role::ProviderOperator { provider }, Scope::Provider { provider: p }) => provider == p,
            (Role::UnitAdmin, Scope::OrgUnit { .. }) => true,
            (
                Role::Reviewer
                | Role::Approver
                | Role::Auditor
                | Role::PlatformAdmin
                | Role::SecurityAdmin,
                Scope::Platform,
            ) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::ProviderOperator { provider } => write!(f, "provider_operator({provider})"),
            other => f.write_str(other.name()),
        }
    }
}

/// Where a role binding applies. Every query is filtered by scope (SPEC §1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Scope {
    Platform,
    Tenant {
        tenant: TenantCode,
    },
    Provider {
        provider: ProviderId,
    },
    /// An org unit and everything below it (module `org_unit`).
    OrgUnit {
        unit: OrgUnitId,
    },
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Platform => f.write_str("platform"),
            Scope::Tenant { tenant } => write!(f, "tenant:{tenant}"),
            Scope::Provider { provider } => write!(f, "provider:{provider}"),
            Scope::OrgUnit { unit } => write!(f, "org_unit:{unit}"),
        }
    }
}

/// A grant of one role to one user in one scope, optionally narrowed to a subset of
/// the role's permissions. Fields are private so a binding can never hold a
/// permission its role lacks; deserialization runs the same checks as [`RoleBinding::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RoleBindingFields")]
pub struct RoleBinding {
    id: RoleBindingId,
    user: UserId,
    role: Role,
    scope: Scope,
    permissions: Option<BTreeSet<Permission>>,
    granted_by: Actor,
    granted_at: DateTime<Utc>,
}

/// The fields of a [`RoleBinding`], before validation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RoleBindingFields {
    pub id: RoleBindingId,
    pub user: UserId,
    pub role: Role,
    pub scope: Scope,
    /// `None` grants all of the role's default permissions.
    #[serde(default)]
    pub permissions: Option<BTreeSet<Permission>>,
    pub granted_by: Actor,
    pub granted_at: DateTime<Utc>,
}

impl RoleBinding {
    /// Refuses a role outside its scope (`ROLE_SCOPE_MISMATCH`) and a narrowed set
    /// with a permission the role lacks (`ROLE_PERMISSION_NOT_GRANTABLE`).
    pub fn new(fields: RoleBindingFields) -> Result<Self, UserError> {
        if !fields.role.fits_scope(&fields.scope) {
            return Err(UserError::RoleScopeMismatch {
                role: fields.role.to_string(),
                scope: fields.scope.to_string(),
            });
        }
        if let Some(narrowed) = &fields.permissions {
            let allowed = fields.role.default_permissions();
            if let Some(p) = narrowed.iter().find(|p| !allowed.contains(p)) {
                return Err(UserError::PermissionNotGrantable {
                    role: fields.role.to_string(),
                    permission: format!("{p:?}"),
                });
            }
        }
        Ok(RoleBinding {
            id: fields.id,
            user: fields.user,
            role: fields.role,
            scope: fields.scope,
            permissions: fields.permissions,
            granted_by: fields.granted_by,
            granted_at: fields.granted_at,
        })
    }

    pub fn id(&self) -> &RoleBindingId {
        &self.id
    }
    pub fn user(&self) -> &UserId {
        &self.user
    }
    pub fn role(&self) -> &Role {
        &self.role
    }
    pub fn scope(&self) -> &Scope {
        &self.scope
    }
    pub fn narrowed(&self) -> Option<&BTreeSet<Permission>> {
        self.permissions.as_ref()
    }
    pub fn granted_by(&self) -> &Actor {
        &self.granted_by
    }
    pub fn granted_at(&self) -> DateTime<Utc> {
        self.granted_at
    }

    /// The permissions this binding actually grants.
    pub fn effective_permissions(&self) -> BTreeSet<Permission> {
        match &self.permissions {
            Some(p) => p.clone(),
            None => self.role.default_permissions().iter().copied().collect(),
        }
    }

    pub fn allows(&self, permission: Permission) -> bool {
        match &self.permissions {
            Some(p) => p.contains(&permission),
            None => self.role.default_permissions().contains(&permission),
        }
    }
}

impl TryFrom<RoleBindingFields> for RoleBinding {
    type Error = UserError;
    fn try_from(fields: RoleBindingFields) -> Result<Self, Self::Error> {
        RoleBinding::new(fields)
    }
}

impl Record for RoleBinding {
    const KIND: &'static str = "role_binding";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0)
            .single()
            .expect("date")
    }

    fn fields(role: Role, scope: Scope, permissions: Option<Vec<Permission>>) -> RoleBindingFields {
        RoleBindingFields {
            id: RoleBindingId::new("rb-1").expect("id"),
            user: UserId::new("zhangsan").expect("id"),
            role,
            scope,
            permissions: permissions.map(|p| p.into_iter().collect()),
            granted_by: "user:admin".parse().expect("actor"),
            granted_at: at(),
        }
    }

    fn tenant_scope() -> Scope {
        Scope::Tenant {
            tenant: TenantCode::new("110105").expect("code"),
        }
    }

    fn check(f: RoleBindingFields, expected_code: Option<&str>) {
        let got = RoleBinding::new(f);
        assert_eq!(
            got.as_ref().err().map(|e| e.code()),
            expected_code,
            "{got:?}"
        );
    }

    #[test]
    fn role_scope_rules() {
        check(fields(Role::TenantAdmin, tenant_scope(), None), None);
        check(fields(Role::Reviewer, Scope::Platform, None), None);
        check(
            fields(Role::TenantUser, Scope::Platform, None),
            Some("ROLE_SCOPE_MISMATCH"),
        );
        check(
            fields(Role::Auditor, tenant_scope(), None),
            Some("ROLE_SCOPE_MISMATCH"),
        );
        let sim = ProviderId::new("sim").expect("id");
        let other = ProviderId::new("taiji").expect("id");
        check(
            fields(
                Role::ProviderOperator {
                    provider: sim.clone(),
                },
                Scope::Provider {
                    provider: sim.clone(),
                },
                None,
            ),
            None,
        );
        check(
            fields(
                Role::ProviderOperator { provider: sim },
                Scope::Provider { provider: other },
                None,
            ),
            Some("ROLE_SCOPE_MISMATCH"),
        );
    }

    #[test]
    fn narrowing_only() {
        let narrowed = fields(
            Role::TenantAdmin,
            tenant_scope(),
            Some(vec![Permission::OrderRead, Permission::DeliveryConfirm]),
        );
        let b = RoleBinding::new(narrowed).expect("narrowed");
        assert!(b.allows(Permission::DeliveryConfirm));
        assert!(!b.allows(Permission::ExitRequest));
        check(
            fields(
                Role::TenantUser,
                tenant_scope(),
                Some(vec![Permission::AuditRead]),
            ),
            Some("ROLE_PERMISSION_NOT_GRANTABLE"),
        );
    }

    #[test]
    fn platform_admin_cannot_read_tenant_data() {
        let p = Role::PlatformAdmin.default_permissions();
        for forbidden in [
            Permission::SystemRead,
            Permission::ResourceRead,
            Permission::BillRead,
        ] {
            assert!(!p.contains(&forbidden));
        }
    }

    #[test]
    fn separation_of_three_admins_in_the_domain() {
        use Role::*;
        assert_eq!(separation_conflict(false, &[PlatformAdmin]), None);
        assert_eq!(separation_conflict(false, &[SecurityAdmin, Reviewer]), None);
        assert_eq!(separation_conflict(false, &[TenantAdmin, TenantUser]), None);
        for (a, b) in [
            (PlatformAdmin, SecurityAdmin),
            (SecurityAdmin, Auditor),
            (Auditor, PlatformAdmin),
            (PlatformAdmin, TenantUser),
            (TenantAdmin, SecurityAdmin),
        ] {
            assert!(separation_conflict(false, [&a, &b]).is_some(), "{a} {b}");
        }
        assert!(separation_conflict(true, &[Auditor]).is_some());
        assert_eq!(separation_conflict(true, &[TenantAdmin]), None);
        // The roles stored before the split keep their names.
        let json = serde_json::to_string(&PlatformAdmin).expect("ser");
        assert_eq!(json, r#"{"name":"platform_admin"}"#);
        assert!(
            !PlatformAdmin
                .default_permissions()
                .contains(&Permission::UserManage)
        );
    }

    #[test]
    fn unit_admin_is_bound_at_a_unit_and_kept_apart_from_the_platform_admins() {
        let unit = Scope::OrgUnit {
            unit: OrgUnitId::new("changan").expect("id"),
        };
        check(fields(Role::UnitAdmin, unit.clone(), None), None);
        check(
            fields(Role::UnitAdmin, Scope::Platform, None),
            Some("ROLE_SCOPE_MISMATCH"),
        );
        check(
            fields(Role::TenantAdmin, unit.clone(), None),
            Some("ROLE_SCOPE_MISMATCH"),
        );
        // Users of the tenants below and their reports; no business data.
        let p = Role::UnitAdmin.default_permissions();
        assert!(p.contains(&Permission::TenantUserManage) && p.contains(&Permission::ReportRead));
        assert!(!p.contains(&Permission::SystemRead) && !p.contains(&Permission::UserManage));
        for admin in [Role::PlatformAdmin, Role::SecurityAdmin, Role::Auditor] {
            assert!(separation_conflict(false, [&Role::UnitAdmin, &admin]).is_some());
        }
        // Held by a member of that unit only, never with a tenant too.
        let mut user = User {
            id: UserId::new("ca-admin").expect("id"),
            display_name: Name::new("长安区管理员").expect("name"),
            tenant: None,
            org_unit: Some(OrgUnitId::new("changan").expect("id")),
            password_hash: None,
            state: UserState::Active,
            created_at: at(),
        };
        let b = RoleBinding::new(fields(Role::UnitAdmin, unit, None)).expect("valid");
        assert_eq!(user.check_binding(&b), Ok(()));
        user.org_unit = Some(OrgUnitId::new("qiaoxi").expect("id"));
        assert_eq!(
            user.check_binding(&b).map_err(|e| e.code()),
            Err("ROLE_TENANT_MISMATCH")
        );
        user.tenant = Some(TenantCode::new("110105").expect("code"));
        assert_eq!(
            user.check_binding(&b).map_err(|e| e.code()),
            Err("USER_MEMBER_OF_BOTH")
        );
        let json = serde_json::to_string(&b).expect("ser");
        assert!(
            json.contains(r#""scope":{"type":"org_unit","unit":"changan"}"#),
            "{json}"
        );
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let b = RoleBinding::new(fields(
            Role::ProviderOperator {
                provider: ProviderId::new("sim").expect("id"),
            },
            Scope::Provider {
                provider: ProviderId::new("sim").expect("id"),
            },
            Some(vec![Permission::CapacityRead]),
        ))
        .expect("valid");
        let json = serde_json::to_string(&b).expect("ser");
        assert!(
            json.contains(r#""role":{"name":"provider_operator","provider":"sim"}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<RoleBinding>(&json).expect("de"), b);
        let bad = json.replace("capacity_read", "audit_read");
        assert!(serde_json::from_str::<RoleBinding>(&bad).is_err());
    }

    #[test]
    fn user_binding_tenant_match_and_hash_redacted() {
        let user = User {
            id: UserId::new("zhangsan").expect("id"),
            display_name: Name::new("张三").expect("name"),
            tenant: Some(TenantCode::new("110105").expect("code")),
            org_unit: None,
            password_hash: Some("$argon2id$v=19$secret".into()),
            state: UserState::Active,
            created_at: at(),
        };
        let b = RoleBinding::new(fields(Role::TenantUser, tenant_scope(), None)).expect("valid");
        assert_eq!(user.check_binding(&b), Ok(()));
        let platform =
            RoleBinding::new(fields(Role::Reviewer, Scope::Platform, None)).expect("valid");
        assert_eq!(
            user.check_binding(&platform).map_err(|e| e.code()),
            Err("ROLE_TENANT_MISMATCH")
        );
        assert!(!format!("{user:?}").contains("secret"));
    }
}
