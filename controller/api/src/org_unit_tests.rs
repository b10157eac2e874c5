//! Hierarchical administration (003 §3.2.2.15: 上级管理员可以创建下级管理员以及
//! 下级用户，并可以对其权限进行设置、调整; 管理员对于角色权限的操作要求能够被记录)
//! through the real router: a five-level tree, a unit admin in the middle of
//! it managing the users below and nothing beside or above it, reading the
//! reports of the tenants below, every grant, adjustment and revocation
//! audited; and the tree's refusals.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{Value, json};
use yunshu_domain::audit::AuditEntry;
use yunshu_domain::org_unit::OrgUnit;
use yunshu_store::{page, records};

use crate::test_app::{App, Auth, PASSWORD, Reply, code};

impl App {
    /// Every audit entry's (action, actor, target), in order.
    async fn audit_trail(&self) -> Vec<(String, String, String)> {
        let mut entries: Vec<AuditEntry> =
            page::scan_all_under::<AuditEntry>(&*self.store, &records::prefix::<AuditEntry>())
                .await
                .expect("audit")
                .into_iter()
                .map(|(e, _)| e)
                .collect();
        entries.sort_by_key(|e| e.seq);
        entries
            .into_iter()
            .map(|e| {
                (
                    e.action.as_str().to_owned(),
                    e.actor.to_string(),
                    e.target.to_string(),
                )
            })
            .collect()
    }

    async fn org_unit_count(&self) -> usize {
        page::scan_all_under::<OrgUnit>(&*self.store, &records::prefix::<OrgUnit>())
            .await
            .expect("units")
            .len()
    }

    async fn unit(&self, auth: &Auth, id: &str, name: &str, parent: Option<&str>) -> Reply {
        self.call(
            "POST",
            "/api/v1/org-units",
            Some(json!({"id": id, "name": name, "parent": parent})),
            auth,
        )
        .await
    }

    async fn tenant(&self, auth: &Auth, code: &str, name: &str, unit: &str) -> Reply {
        self.call(
            "POST",
            "/api/v1/tenants",
            Some(json!({
                "code": code, "name": name, "supervising_unit": "上级主管部门", "org_unit": unit
            })),
            auth,
        )
        .await
    }
}

fn created(r: &Reply) {
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

fn unit_admin(unit: &str) -> Value {
    json!({"role": {"name": "unit_admin"}, "scope": {"type": "org_unit", "unit": unit}})
}

fn tenant_role(name: &str, tenant: &str) -> Value {
    json!({"role": {"name": name}, "scope": {"type": "tenant", "tenant": tenant}})
}

/// 河北省 → 石家庄市 → 长安区 → 长安区发展和改革局 → 投资科, with a sibling
/// subtree 桥西区 → 桥西区发展和改革局; tenants at 投资科 (130102001), at
/// 长安区发改局 (the demo tenant 110105, attached afterwards), at 桥西区发改局
/// (130104001) and at 石家庄市 (130100001). Returns the system administrator.
async fn five_levels(app: &App) -> Auth {
    let he = app.login("he").await;
    for (id, name, parent) in [
        ("hebei", "河北省", None),
        ("shijiazhuang", "石家庄市", Some("hebei")),
        ("changan", "长安区", Some("shijiazhuang")),
        ("changan-fgw", "长安区发展和改革局", Some("changan")),
        (
            "changan-fgw-tz",
            "长安区发展和改革局投资科",
            Some("changan-fgw"),
        ),
        ("qiaoxi", "桥西区", Some("shijiazhuang")),
        ("qiaoxi-fgw", "桥西区发展和改革局", Some("qiaoxi")),
    ] {
        created(&app.unit(&he, id, name, parent).await);
    }
    created(
        &app.tenant(&he, "130102001", "长安区发改局投资科", "changan-fgw-tz")
            .await,
    );
    created(
        &app.tenant(&he, "130104001", "桥西区发改局", "qiaoxi-fgw")
            .await,
    );
    created(
        &app.tenant(&he, "130100001", "石家庄市政务服务管理局", "shijiazhuang")
            .await,
    );
    let r = app
        .call(
            "PUT",
            "/api/v1/tenants/110105/org-unit",
            Some(json!({"org_unit": "changan-fgw"})),
            &he,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["org_unit"], "changan-fgw");
    he
}

#[tokio::test]
async fn seed_003_3_2_2_15_a_unit_admin_manages_users_of_departments_below_and_nothing_beside() {
    let app = App::with_users().await;
    let he = five_levels(&app).await;
    let tree = app.call("GET", "/api/v1/org-units", None, &he).await;
    let levels: Vec<(&str, &str)> = tree.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| {
            (
                u["id"].as_str().expect("id"),
                u["level_zh"].as_str().expect("level"),
            )
        })
        .collect();
    assert!(levels.contains(&("changan-fgw-tz", "处室")), "{levels:?}");
    assert!(levels.contains(&("hebei", "省级")), "{levels:?}");

    // The security administrator appoints the level-3 unit admin.
    let xu = app.login("xu").await;
    created(
        &app.create_user(
            &xu,
            json!({"id": "ca-admin", "display_name": "长安区管理员", "org_unit": "changan",
                   "password": PASSWORD, "roles": [unit_admin("changan")]}),
        )
        .await,
    );
    // A sibling department's user, created by the security administrator.
    created(
        &app.create_user(
            &xu,
            json!({"id": "qx-user", "display_name": "桥西用户", "tenant": "130104001",
                   "password": PASSWORD, "roles": [tenant_role("tenant_user", "130104001")]}),
        )
        .await,
    );
    let ca = app.login("ca-admin").await;
    let before = app.audit_trail().await.len();

    // A user and a role in a department at level 5.
    let r = app
        .create_user(
            &ca,
            json!({"id": "tz-user", "display_name": "投资科经办人", "tenant": "130102001",
                   "password": PASSWORD, "roles": [tenant_role("tenant_user", "130102001")]}),
        )
        .await;
    created(&r);
    let r = app
        .call(
            "POST",
            "/api/v1/users/tz-user/bindings",
            Some(tenant_role("tenant_admin", "130102001")),
            &ca,
        )
        .await;
    created(&r);
    let granted = r.body["binding"]["id"].as_str().expect("id").to_owned();
    assert_eq!(granted, "tz-user.1");
    // Adjust: narrow it; then revoke it.
    let r = app
        .call(
            "PATCH",
            &format!("/api/v1/users/tz-user/bindings/{granted}"),
            Some(json!({"permissions": ["order_read", "delivery_confirm"]})),
            &ca,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["after"]["permissions"],
        json!(["order_read", "delivery_confirm"])
    );
    let tz = app.login("tz-user").await;
    let me = app.call("GET", "/api/v1/auth/me", None, &tz).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let r = app
        .call(
            "DELETE",
            &format!("/api/v1/users/tz-user/bindings/{granted}"),
            None,
            &ca,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // A unit admin for the unit below (level 4).
    created(
        &app.create_user(
            &ca,
            json!({"id": "fgw-admin", "display_name": "发改局管理员", "org_unit": "changan-fgw",
                   "password": PASSWORD, "roles": [unit_admin("changan-fgw")]}),
        )
        .await,
    );
    // Every grant, adjustment and revocation is one audit entry by the unit admin.
    let trail: Vec<(String, String, String)> =
        app.audit_trail().await.into_iter().skip(before).collect();
    let changes: Vec<(&str, &str, &str)> = trail
        .iter()
        .filter(|(a, _, _)| a != "auth.login" && a != "user.activate")
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        changes,
        vec![
            ("user.create", "user:ca-admin", "user/tz-user"),
            ("user.role_binding.grant", "user:ca-admin", "user/tz-user"),
            ("user.role_binding.adjust", "user:ca-admin", "user/tz-user"),
            ("user.role_binding.remove", "user:ca-admin", "user/tz-user"),
            ("user.create", "user:ca-admin", "user/fgw-admin"),
        ],
        "{trail:?}"
    );

    // Beside (桥西区) and above (石家庄市): not found, and nothing written.
    let before = app.audit_trail().await.len();
    for (tenant, unit) in [("130104001", "qiaoxi-fgw"), ("130100001", "shijiazhuang")] {
        let r = app
            .create_user(
                &ca,
                json!({"id": "x-user", "display_name": "越权", "tenant": tenant,
                       "roles": [tenant_role("tenant_user", tenant)]}),
            )
            .await;
        assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("TENANT_NOT_FOUND")));
        let r = app
            .create_user(
                &ca,
                json!({"id": "x-admin", "display_name": "越权", "org_unit": unit,
                       "roles": [unit_admin(unit)]}),
            )
            .await;
        assert_eq!(
            code(&r),
            (StatusCode::NOT_FOUND, Some("ORG_UNIT_NOT_FOUND"))
        );
    }
    for (method, path, body) in [
        ("POST", "/api/v1/users/qx-user/disable", None),
        ("DELETE", "/api/v1/users/qx-user/bindings/qx-user.0", None),
        (
            "POST",
            "/api/v1/users/qx-user/bindings",
            Some(tenant_role("tenant_admin", "130104001")),
        ),
    ] {
        let r = app.call(method, path, body, &ca).await;
        assert_eq!(
            code(&r),
            (StatusCode::NOT_FOUND, Some("USER_NOT_FOUND")),
            "{path}"
        );
    }
    // The level-4 admin cannot touch the level-3 admin above it.
    let fgw = app.login("fgw-admin").await;
    let r = app
        .call("POST", "/api/v1/users/ca-admin/disable", None, &fgw)
        .await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("USER_NOT_FOUND")));
    let changes: Vec<String> = app
        .audit_trail()
        .await
        .into_iter()
        .skip(before)
        .map(|(a, _, _)| a)
        .filter(|a| a != "auth.login")
        .collect();
    assert!(changes.is_empty(), "{changes:?}");

    // The users list: the tenants' below (110105, with the demo seed's
    // `demo`, sits under 长安区发改局) and
    // the unit admin below; not itself, not 桥西区, not platform staff.
    let r = app.call("GET", "/api/v1/users", None, &ca).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ids: BTreeSet<&str> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| u["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from(["demo", "fgw-admin", "li", "tz-user", "wang"]),
        "{}",
        r.body
    );

    // The tree it sees: its own subtree only.
    let r = app.call("GET", "/api/v1/org-units", None, &ca).await;
    let units: Vec<&str> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| u["id"].as_str().expect("id"))
        .collect();
    assert_eq!(units, vec!["changan", "changan-fgw", "changan-fgw-tz"]);
}

#[tokio::test]
async fn seed_003_3_2_2_15_a_unit_admin_reads_the_reports_of_the_tenants_below_only() {
    let app = App::with_users().await;
    let _he = five_levels(&app).await;
    let xu = app.login("xu").await;
    created(
        &app.create_user(
            &xu,
            json!({"id": "ca-admin", "display_name": "长安区管理员", "org_unit": "changan",
                   "password": PASSWORD, "roles": [unit_admin("changan")]}),
        )
        .await,
    );
    let ca = app.login("ca-admin").await;
    let r = app
        .call("GET", "/api/v1/org-units/changan/report", None, &ca)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let tenants: Vec<&str> = r.body["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .map(|t| t["tenant"].as_str().expect("code"))
        .collect();
    assert_eq!(tenants, vec!["110105", "130102001"], "{}", r.body);
    // The demo tenant's system is counted, with this month's charge.
    let demo = &r.body["tenants"][0];
    assert_eq!(demo["systems"], 1, "{demo}");
    assert!(
        demo["month"].as_str().is_some_and(|m| m.len() == 7),
        "{demo}"
    );
    assert_eq!(r.body["unit"]["level_zh"], "区县级");
    assert_eq!(r.body["units_below"].as_array().map(Vec::len), Some(2));

    // A unit below: yes; beside or above: not found.
    let r = app
        .call("GET", "/api/v1/org-units/changan-fgw-tz/report", None, &ca)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for unit in ["qiaoxi", "qiaoxi-fgw", "shijiazhuang", "hebei", "nowhere"] {
        let r = app
            .call(
                "GET",
                &format!("/api/v1/org-units/{unit}/report"),
                None,
                &ca,
            )
            .await;
        assert_eq!(
            code(&r),
            (StatusCode::NOT_FOUND, Some("ORG_UNIT_NOT_FOUND")),
            "{unit}"
        );
    }
    // A tenant-data permission the unit admin does not hold: a system of a
    // tenant below, one by one, stays the tenant's.
    let r = app
        .call("GET", "/api/v1/systems/110105001", None, &ca)
        .await;
    assert_ne!(r.status, StatusCode::OK, "{}", r.body);

    // 三员分立: the system administrator reads no tenant figures; the
    // approver (platform report reader) reads every unit's.
    let he = app.login("he").await;
    let r = app
        .call("GET", "/api/v1/org-units/changan/report", None, &he)
        .await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    let zhou = app.login("zhou").await;
    let r = app
        .call("GET", "/api/v1/org-units/hebei/report", None, &zhou)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["tenants"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn seed_003_3_2_2_15_hostile_trees_and_grants_are_refused_and_nothing_is_written() {
    let app = App::with_users().await;
    let he = five_levels(&app).await;
    let units = app.org_unit_count().await;
    let audit = app.audit_trail().await.len();

    // Its own parent, an unknown parent, a duplicate, a bad id.
    let r = app.unit(&he, "loop", "环", Some("loop")).await;
    assert_eq!(code(&r), (StatusCode::BAD_REQUEST, Some("ORG_UNIT_CYCLE")));
    let r = app.unit(&he, "orphan", "孤儿", Some("nowhere")).await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("ORG_UNIT_PARENT_NOT_FOUND"))
    );
    let r = app.unit(&he, "changan", "重复", Some("shijiazhuang")).await;
    assert_eq!(code(&r), (StatusCode::CONFLICT, Some("ORG_UNIT_EXISTS")));
    let r = app.unit(&he, "a/b", "坏标识", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // Only the system administrator builds the tree.
    let xu = app.login("xu").await;
    let r = app.unit(&xu, "xu-unit", "安全", None).await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    let r = app
        .call(
            "PUT",
            "/api/v1/tenants/110106/org-unit",
            Some(json!({"org_unit": "nowhere"})),
            &he,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::NOT_FOUND, Some("ORG_UNIT_NOT_FOUND"))
    );
    assert_eq!(app.org_unit_count().await, units);
    // Changes (not sign-ins) recorded since entry `from`.
    let changes = |t: Vec<(String, String, String)>, from: usize| {
        t.into_iter()
            .skip(from)
            .filter(|(a, _, _)| a != "auth.login")
            .count()
    };
    assert_eq!(changes(app.audit_trail().await, audit), 0);

    // Eight levels deep is the most: the ninth is refused.
    let mut parent = "changan-fgw-tz".to_owned();
    for depth in 6..=8 {
        let id = format!("level-{depth}");
        created(
            &app.unit(&he, &id, &format!("第{depth}级"), Some(&parent))
                .await,
        );
        parent = id;
    }
    let r = app.unit(&he, "level-9", "第9级", Some(&parent)).await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("ORG_UNIT_TOO_DEEP"))
    );

    // A unit admin cannot make a unit admin of its own unit or one above,
    // nor widen a binding beyond its role.
    created(
        &app.create_user(
            &xu,
            json!({"id": "ca-admin", "display_name": "长安区管理员", "org_unit": "changan",
                   "password": PASSWORD, "roles": [unit_admin("changan")]}),
        )
        .await,
    );
    let ca = app.login("ca-admin").await;
    created(
        &app.create_user(
            &ca,
            json!({"id": "fgw-admin", "display_name": "发改局管理员", "org_unit": "changan-fgw",
                   "password": PASSWORD, "roles": [unit_admin("changan-fgw")]}),
        )
        .await,
    );
    let audit = app.audit_trail().await.len();
    for unit in ["changan", "shijiazhuang", "hebei"] {
        let r = app
            .call(
                "POST",
                "/api/v1/users/fgw-admin/bindings",
                Some(unit_admin(unit)),
                &ca,
            )
            .await;
        assert_eq!(
            code(&r),
            (StatusCode::FORBIDDEN, Some("FORBIDDEN")),
            "{unit}"
        );
    }
    // Nor widen its own: it does not manage itself.
    let r = app
        .call(
            "POST",
            "/api/v1/users/ca-admin/bindings",
            Some(unit_admin("changan-fgw")),
            &ca,
        )
        .await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("USER_NOT_FOUND")));
    // A unit admin role is held by a member of that unit only.
    let r = app
        .call(
            "POST",
            "/api/v1/users/fgw-admin/bindings",
            Some(unit_admin("changan-fgw-tz")),
            &ca,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("ROLE_TENANT_MISMATCH"))
    );
    let r = app
        .call(
            "PATCH",
            "/api/v1/users/fgw-admin/bindings/fgw-admin.0",
            Some(json!({"permissions": ["user_manage"]})),
            &ca,
        )
        .await;
    assert_eq!(
        code(&r),
        (
            StatusCode::BAD_REQUEST,
            Some("ROLE_PERMISSION_NOT_GRANTABLE")
        )
    );
    let r = app
        .call(
            "POST",
            "/api/v1/users/fgw-admin/bindings",
            Some(unit_admin("changan-fgw")),
            &ca,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("ROLE_BINDING_EXISTS"))
    );
    // 三员分立: a unit's member holds none of the platform administrators' roles.
    let r = app
        .create_user(
            &xu,
            json!({"id": "mixed", "display_name": "混合", "org_unit": "hebei",
                   "roles": [unit_admin("hebei"), {"role": {"name": "auditor"}, "scope": {"type": "platform"}}]}),
        )
        .await;
    assert_eq!(code(&r), (StatusCode::CONFLICT, Some("ROLES_SEPARATED")));
    let r = app
        .create_user(
            &xu,
            json!({"id": "both", "display_name": "两属", "org_unit": "hebei", "tenant": "110106",
                   "roles": [unit_admin("hebei")]}),
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("USER_MEMBER_OF_BOTH"))
    );
    assert_eq!(
        changes(app.audit_trail().await, audit),
        0,
        "nothing written"
    );
}

#[tokio::test]
async fn seed_003_3_2_2_15_the_portal_page_shows_a_unit_admin_its_subtree_and_users() {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let app = App::with_users().await;
    let _he = five_levels(&app).await;
    let xu = app.login("xu").await;
    created(
        &app.create_user(
            &xu,
            json!({"id": "ca-admin", "display_name": "长安区管理员", "org_unit": "changan",
                   "password": PASSWORD, "roles": [unit_admin("changan")]}),
        )
        .await,
    );
    let ca = app.login("ca-admin").await;
    let state = crate::AppState::new(app.store.clone(), None);
    // No bundle needed: the page renders on the server without it.
    let router = crate::router_with_portal(state, std::path::Path::new("/nonexistent"));
    let mut req = Request::get("/org");
    for (k, v) in &ca {
        req = req.header(*k, v);
    }
    let response = router
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let html = String::from_utf8_lossy(&bytes);
    for shown in [
        "分级管理",
        "长安区发展和改革局投资科",
        "处室",
        "130102001",
        "wang",
        "授权",
    ] {
        assert!(html.contains(shown), "{shown} missing from the page");
    }
    for hidden in ["桥西区", "石家庄市", "qx-user"] {
        assert!(!html.contains(hidden), "{hidden} shown on the page");
    }
}
