//! Demo data for `yunshu serve --demo`: a demo tenant (使用单位) and one of its
//! information systems, written once and never overwritten (create-if-absent), so
//! restarting the demo keeps whatever the user did with it.
//!
//! Built through the domain constructors, so the demo passes the same validation as
//! real input. Provider inventory comes from the simulator driver, not from here.
//!
//! Demo users, one per role, all with the password [`DEMO_PASSWORD`] (printed
//! in the log and the README — a demo, never a production default): `demo`
//! (the demo department's administrator), `reviewer`, `approver`, `operator`
//! (the simulator's provider operator), and the three administrators kept
//! apart (三员分立, 003 §3.2.2.15): `admin` (system administrator: drivers,
//! settings, catalog, policy, tenants), `secadmin` (security administrator:
//! users and roles) and `auditor` (security auditor: the audit log).

use chrono::Utc;
use yunshu_domain::DomainError;
use yunshu_domain::system::{
    Contact, InformationSystem, NetworkNature, Phone, PreApproval, RunSchedule, SecurityLevel,
    SystemType,
};
use yunshu_domain::tenant::Tenant;
use yunshu_domain::{Name, SystemNumber, TenantCode, Text};
use yunshu_store::{Store, StoreError, records};

/// The demo tenant's code: 110105 is Beijing Chaoyang district's administrative
/// division code, a realistic shape for a department code.
pub const DEMO_TENANT: &str = "110105";

/// The demo users' password.
pub const DEMO_PASSWORD: &str = "Yunshu-Demo-2026";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo data is invalid")]
    Invalid(#[from] DomainError),
    #[error("cannot write demo data")]
    Store(#[from] StoreError),
    #[error("cannot hash the demo password")]
    Password,
    /// The store holds users the demo did not make: `--demo` would add seven
    /// accounts with a published password to a real installation.
    #[error(
        "--demo refused: the store already holds users the demo did not make (e.g. {user}); the demo's accounts have a published password"
    )]
    ForeignStore { user: String },
}

/// The demo's user ids (what a store made by the demo holds).
pub const DEMO_USERS: [&str; 7] = [
    "demo", "reviewer", "approver", "operator", "auditor", "admin", "secadmin",
];

/// Written when the demo seeds a store that held no one else's users: such a
/// store stays the demo's, whatever users are added to it later.
const MADE_BY_DEMO: &str = "demo/made";

/// Refuses to seed a store that holds users the demo did not make (issue 16
/// item 14). A store the demo made (marked), or one holding only the demo's
/// users or none, is fine.
pub async fn check_store(store: &dyn Store) -> Result<(), DemoError> {
    if store.get(MADE_BY_DEMO).await?.is_some() {
        return Ok(());
    }
    let mut after = None;
    loop {
        let (page, next) = records::list::<yunshu_domain::user::User>(
            store,
            yunshu_store::PageRequest {
                after: after.take(),
                limit: 500,
            },
        )
        .await?;
        if let Some(u) = page.iter().find(|u| !DEMO_USERS.contains(&u.id.as_str())) {
            return Err(DemoError::ForeignStore {
                user: u.id.to_string(),
            });
        }
        match next {
            Some(n) => after = Some(n),
            None => return Ok(()),
        }
    }
}

/// The demo users and their role bindings (user id, display name, role, scope).
fn demo_users(
    password_hash: &str,
) -> Result<Vec<(yunshu_domain::user::User, yunshu_domain::user::RoleBinding)>, DomainError> {
    use yunshu_domain::user::{Role, RoleBinding, RoleBindingFields, Scope, User, UserState};
    use yunshu_domain::{Actor, ProviderId, UserId};
    let tenant = TenantCode::new(DEMO_TENANT)?;
    let sim: ProviderId = ProviderId::new("sim")?;
    let people = [
        (
            "demo",
            "王演示（使用单位管理员）",
            Some(tenant.clone()),
            Role::TenantAdmin,
            Scope::Tenant {
                tenant: tenant.clone(),
            },
        ),
        ("reviewer", "孙审核", None, Role::Reviewer, Scope::Platform),
        ("approver", "周审批", None, Role::Approver, Scope::Platform),
        (
            "operator",
            "吴运维（模拟器）",
            None,
            Role::ProviderOperator {
                provider: sim.clone(),
            },
            Scope::Provider { provider: sim },
        ),
        ("auditor", "郑审计", None, Role::Auditor, Scope::Platform),
        (
            "admin",
            "钱管理员（系统管理员）",
            None,
            Role::PlatformAdmin,
            Scope::Platform,
        ),
        (
            "secadmin",
            "冯安全（安全管理员）",
            None,
            Role::SecurityAdmin,
            Scope::Platform,
        ),
    ];
    let now = Utc::now();
    let mut out = Vec::new();
    for (id, name, tenant, role, scope) in people {
        let user_id = UserId::new(id)?;
        let user = User {
            id: user_id.clone(),
            display_name: Name::new(name)?,
            tenant,
            org_unit: None,
            password_hash: Some(password_hash.to_owned()),
            state: UserState::Active,
            created_at: now,
        };
        let binding = RoleBinding::new(RoleBindingFields {
            id: format!("{id}.0").parse()?,
            user: user_id,
            role,
            scope,
            permissions: None,
            granted_by: Actor::System("demo".to_owned()),
            granted_at: now,
        })?;
        user.check_binding(&binding)?;
        out.push((user, binding));
    }
    Ok(out)
}

/// The demo tenant and system, validated.
pub fn demo_records() -> Result<(Tenant, InformationSystem), DomainError> {
    let now = Utc::now();
    let code = TenantCode::new(DEMO_TENANT)?;
    let tenant = Tenant {
        code: code.clone(),
        name: Name::new("演示区政务服务数据管理局")?,
        supervising_unit: Name::new("演示区人民政府办公室")?,
        created_at: now,
        org_unit: None,
    };
    let system = InformationSystem {
        number: SystemNumber::new(&code, 1)?,
        name: Name::new("一网通办政务服务平台（演示）")?,
        system_type: SystemType::PublicService,
        security_level: SecurityLevel::Level3,
        run_schedule: RunSchedule::AllDay,
        network_nature: NetworkNature::GovExtranetAndInternet,
        contact: Contact {
            name: Name::new("张演示")?,
            phone: Phone::new("13800138000")?,
            email: None,
            landline: None,
        },
        technical_contact: None,
        description: Text::new(
            "演示数据：面向企业和群众的在线办事系统，用于体验云枢的申请、审批与交付流程。",
        )?,
        pre_approval: PreApproval::None,
        created_at: now,
        xinchuang: false,
    };
    Ok((tenant, system))
}

/// Writes the demo records that are missing. Idempotent.
pub async fn seed(store: &dyn Store) -> Result<usize, DemoError> {
    check_store(store).await?;
    store.put(MADE_BY_DEMO, b"1".to_vec()).await?;
    let (tenant, system) = demo_records()?;
    let mut written = 0;
    if records::create(store, &tenant).await?.is_some() {
        written += 1;
    }
    if records::create(store, &system).await?.is_some() {
        written += 1;
    }
    let hash = yunshu_auth::passwords::hash(DEMO_PASSWORD.to_owned())
        .await
        .map_err(|_| DemoError::Password)?;
    for (user, binding) in demo_users(&hash)? {
        if records::create(store, &user).await?.is_some() {
            records::create(store, &binding).await?;
            written += 1;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use yunshu_store::RedbStore;

    use super::*;

    #[tokio::test]
    async fn seeding_twice_writes_once_and_reads_back() {
        let store = RedbStore::in_memory().expect("store");
        assert_eq!(
            seed(&store).await.expect("seed"),
            9,
            "tenant, system, 7 users"
        );
        assert_eq!(seed(&store).await.expect("seed again"), 0);
        let (tenant, _) = records::get::<Tenant>(&store, DEMO_TENANT)
            .await
            .expect("get")
            .expect("present");
        assert_eq!(tenant.code.to_string(), DEMO_TENANT);
        let (system, _) = records::get::<InformationSystem>(&store, "110105001")
            .await
            .expect("get")
            .expect("present");
        assert_eq!(system.tenant().to_string(), DEMO_TENANT);
    }

    /// Security issue item 14: `--demo` never adds its published-password
    /// accounts to a store that holds someone else's users.
    #[tokio::test]
    async fn demo_refuses_a_store_with_users_it_did_not_make() {
        let store = RedbStore::in_memory().expect("store");
        let foreign = RedbStore::in_memory().expect("store");
        seed(&store).await.expect("an empty store is fine");
        let hash = yunshu_auth::passwords::hash("Zhengwuyun2026".to_owned())
            .await
            .expect("hash");
        let (mut li, _) = demo_users(&hash).expect("users").remove(0);
        li.id = yunshu_domain::UserId::new("li").expect("id");
        // A user added to the demo's own store later: still the demo's.
        records::create(&store, &li)
            .await
            .expect("a user added to the demo");
        seed(&store)
            .await
            .expect("the demo's store stays the demo's");
        // Someone else's store: refused, nothing written.
        records::create(&foreign, &li).await.expect("a real user");
        let before = foreign.revision().await.expect("revision");
        let refused = seed(&foreign).await.expect_err("foreign users");
        assert!(
            matches!(&refused, DemoError::ForeignStore { user } if user == "li"),
            "{refused}"
        );
        assert_eq!(
            foreign.revision().await.expect("revision"),
            before,
            "nothing written"
        );
    }
}
