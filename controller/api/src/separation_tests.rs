//! 三员分立 and one-time activation (issue 16 item 7) through the real router.
//!
//! The Beijing procurement requirements (seed 003 §3.2.2.15) ask for separate
//! system, security and audit administrators, and SPEC §1 says the system
//! administrator cannot read tenant business data. So: no person holds two of
//! the three administrators' roles or one of them with a tenant-data role, and
//! a department's people get no password from the platform — they set their
//! own with a one-time activation code.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Duration;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use yunshu_domain::audit::AuditEntry;
use yunshu_store::{PageRequest, Store, records};

use crate::test_app::{App, Auth, PASSWORD, Reply, code};

/// `POST /api/v1/users` with every answer header: (status, cache-control, body).
async fn create_raw(app: &App, auth: &Auth, body: Value) -> (StatusCode, Option<String>, Value) {
    let mut req = Request::builder()
        .method("POST")
        .uri("/api/v1/users")
        .header(header::CONTENT_TYPE, "application/json");
    for (k, v) in auth {
        req = req.header(*k, v);
    }
    let response = app
        .router
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let cache = response
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, cache, body)
}

async fn sign_in(app: &App, user: &str, password: &str) -> Reply {
    app.call(
        "POST",
        "/api/v1/auth/login",
        Some(json!({"user": user, "password": password})),
        &[],
    )
    .await
}

/// (action, actor, target) of every audit entry.
async fn audit(app: &App) -> Vec<(String, String, String)> {
    let (entries, _) = records::list::<AuditEntry>(
        &*app.store,
        PageRequest {
            after: None,
            limit: 1000,
        },
    )
    .await
    .expect("audit");
    entries
        .into_iter()
        .map(|e| {
            (
                e.action.to_string(),
                e.actor.to_string(),
                e.target.to_string(),
            )
        })
        .collect()
}

fn person(id: &str, tenant: Option<&str>, roles: Value) -> Value {
    json!({"id": id, "display_name": id, "tenant": tenant, "roles": roles})
}

fn role(name: &str) -> Value {
    json!({"role": {"name": name}, "scope": {"type": "platform"}})
}

fn tenant_role(name: &str, tenant: &str) -> Value {
    json!({"role": {"name": name}, "scope": {"type": "tenant", "tenant": tenant}})
}

/// Each refused request is 409 ROLES_SEPARATED and writes nothing.
async fn refused_as_separated(app: &App, by: &Auth, bodies: Vec<Value>) {
    for body in bodies {
        let before = audit(app).await.len();
        let r = app
            .call("POST", "/api/v1/users", Some(body.clone()), by)
            .await;
        assert_eq!(
            code(&r),
            (StatusCode::CONFLICT, Some("ROLES_SEPARATED")),
            "{body}: {}",
            r.body
        );
        assert!(
            r.body["message_zh"]
                .as_str()
                .is_some_and(|m| m.contains("三员分立")),
            "{}",
            r.body
        );
        assert_eq!(audit(app).await.len(), before, "{body}");
        let id = body["id"].as_str().expect("id");
        assert!(
            records::get::<yunshu_domain::user::User>(&*app.store, id)
                .await
                .expect("store")
                .is_none(),
            "{id} was written"
        );
    }
}

#[tokio::test]
async fn separation_of_three_admins_no_user_holds_two_admin_roles() {
    let app = App::with_users().await;
    // xu: security admin; he: system admin (platform_admin); qian: auditor.
    let xu = app.login("xu").await;
    let he = app.login("he").await;
    let qian = app.login("qian").await;
    refused_as_separated(
        &app,
        &xu,
        vec![
            person(
                "p1",
                None,
                json!([role("platform_admin"), role("security_admin")]),
            ),
            person("p2", None, json!([role("security_admin"), role("auditor")])),
            person("p3", None, json!([role("auditor"), role("platform_admin")])),
        ],
    )
    .await;
    // Each on their own is fine, made by the security administrator.
    for (id, name) in [
        ("sys2", "platform_admin"),
        ("sec2", "security_admin"),
        ("aud2", "auditor"),
    ] {
        let r = app
            .create_user(
                &xu,
                json!({"id": id, "display_name": id, "password": PASSWORD, "roles": [role(name)]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{id}: {}", r.body);
    }

    // The system administrator: drivers and tenants, no users, no audit log.
    let get = |path: &'static str, who: &'static str| {
        let auth = match who {
            "he" => he.clone(),
            "xu" => xu.clone(),
            _ => qian.clone(),
        };
        let app = &app;
        async move { app.call("GET", path, None, &auth).await.status }
    };
    assert_eq!(get("/api/v1/admin/drivers", "he").await, StatusCode::OK);
    assert_eq!(get("/api/v1/users", "he").await, StatusCode::FORBIDDEN);
    assert_eq!(get("/api/v1/audit", "he").await, StatusCode::FORBIDDEN);
    let r = app
        .call(
            "POST",
            "/api/v1/users",
            Some(person("p4", None, json!([role("reviewer")]))),
            &he,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app
        .call("POST", "/api/v1/users/sun/disable", None, &he)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let tenant = json!({"code": "110107", "name": "新委办局", "supervising_unit": "区政府"});
    let r = app
        .call("POST", "/api/v1/tenants", Some(tenant.clone()), &he)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // The security administrator: users, no drivers, tenants only to read,
    // no audit log.
    assert_eq!(get("/api/v1/users", "xu").await, StatusCode::OK);
    assert_eq!(get("/api/v1/tenants", "xu").await, StatusCode::OK);
    assert_eq!(
        get("/api/v1/admin/drivers", "xu").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(get("/api/v1/audit", "xu").await, StatusCode::FORBIDDEN);
    let r = app.call("POST", "/api/v1/tenants", Some(tenant), &xu).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    // The audit administrator reads the log — every change above is in it,
    // by who did it — and manages nothing.
    assert_eq!(get("/api/v1/audit", "qian").await, StatusCode::OK);
    assert_eq!(get("/api/v1/users", "qian").await, StatusCode::FORBIDDEN);
    assert_eq!(
        get("/api/v1/admin/drivers", "qian").await,
        StatusCode::FORBIDDEN
    );
    let log = audit(&app).await;
    assert!(
        log.contains(&(
            "user.create".to_owned(),
            "user:xu".to_owned(),
            "user/sec2".to_owned()
        )),
        "{log:?}"
    );
    assert!(
        log.contains(&(
            "user.activate".to_owned(),
            "user:aud2".to_owned(),
            "user/aud2".to_owned()
        )),
        "{log:?}"
    );
}

#[tokio::test]
async fn platform_admins_never_hold_tenant_data_roles() {
    let app = App::with_users().await;
    let xu = app.login("xu").await;
    refused_as_separated(
        &app,
        &xu,
        vec![
            // An administrator's role with a department's.
            person(
                "q1",
                None,
                json!([role("platform_admin"), tenant_role("tenant_user", "110105")]),
            ),
            person(
                "q2",
                Some("110105"),
                json!([
                    tenant_role("tenant_admin", "110105"),
                    role("security_admin")
                ]),
            ),
            // A department's member given an administrator's role.
            person("q3", Some("110105"), json!([role("auditor")])),
            person("q4", Some("110105"), json!([role("platform_admin")])),
        ],
    )
    .await;
    // The admin token is held to the same rule.
    refused_as_separated(
        &app,
        &App::admin(),
        vec![person(
            "q5",
            Some("110106"),
            json!([
                tenant_role("tenant_admin", "110106"),
                role("security_admin")
            ]),
        )],
    )
    .await;
    // A department's admin cannot grant an administrator's role at all.
    let wang = app.login("wang").await;
    let r = app
        .call(
            "POST",
            "/api/v1/users",
            Some(person("q6", None, json!([role("security_admin")]))),
            &wang,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // And neither administrator reads a department's business data.
    for who in ["he", "xu"] {
        let auth = app.login(who).await;
        let r = app
            .call("GET", "/api/v1/systems/110105001", None, &auth)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{who}: {}", r.body);
        let r = app.call("GET", "/api/v1/orders", None, &auth).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {}", r.body);
    }
}

#[tokio::test]
async fn a_tenant_admin_is_activated_once_by_the_tenant_and_the_admin_never_knows_the_password() {
    let app = App::with_users().await;
    let xu = app.login("xu").await;
    let chen = person(
        "chen",
        Some("110105"),
        json!([tenant_role("tenant_admin", "110105")]),
    );

    // The security administrator may not type a password.
    let mut typed = chen.clone();
    typed["password"] = json!("Zhengwuyun2026");
    let (status, _, body) = create_raw(&app, &xu, typed).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("PASSWORD_SET_BY_USER")),
        "{body}"
    );

    // Created without one: a one-time code, shown once, not cached.
    let (status, cache, body) = create_raw(&app, &xu, chen).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    let code_ = body["activation"]["code"]
        .as_str()
        .expect("activation code")
        .to_owned();
    assert_eq!(body["activation"]["link"], format!("/activate#{code_}"));
    // Only its SHA-256 is stored.
    let stored = app
        .store
        .range("activation/", PageRequest::default())
        .await
        .expect("store");
    assert_eq!(stored.items.len(), 1);
    assert_eq!(
        stored.items[0].key,
        format!("activation/{}", yunshu_pki::sha256_hex(code_.as_bytes()))
    );
    assert!(!String::from_utf8_lossy(&stored.items[0].value).contains(&code_));

    // Not activated: signing in fails like a wrong password.
    let r = sign_in(&app, "chen", "Zhengwuyun2026").await;
    assert_eq!(code(&r), (StatusCode::UNAUTHORIZED, Some("LOGIN_FAILED")));

    // A weak password is refused and the code still works.
    let r = app.activate(&code_, "short").await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("PASSWORD_TOO_WEAK"))
    );
    let r = app.activate(&code_, "Chenmima2026").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["user"], "chen");
    let r = sign_in(&app, "chen", "Chenmima2026").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Used once: a second use is refused and changes nothing.
    let r = app.activate(&code_, "Andere2026pass").await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("ACTIVATION_INVALID"))
    );
    assert_eq!(
        sign_in(&app, "chen", "Andere2026pass").await.status,
        StatusCode::UNAUTHORIZED
    );
    let log = audit(&app).await;
    assert!(
        log.contains(&(
            "user.activate".to_owned(),
            "user:chen".to_owned(),
            "user/chen".to_owned()
        )),
        "{log:?}"
    );

    // Expired after 72 hours.
    let (_, _, body) = create_raw(
        &app,
        &xu,
        person(
            "lin",
            Some("110106"),
            json!([tenant_role("tenant_admin", "110106")]),
        ),
    )
    .await;
    let late = body["activation"]["code"]
        .as_str()
        .expect("code")
        .to_owned();
    app.clock.set(chrono::Utc::now() + Duration::hours(73));
    let r = app.activate(&late, "Linmima20261").await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("ACTIVATION_INVALID"))
    );
    assert_eq!(
        code(&sign_in(&app, "lin", "Linmima20261").await),
        (StatusCode::UNAUTHORIZED, Some("LOGIN_FAILED"))
    );

    // A reset by the security administrator is an activation too: the old
    // password stops working and nobody but chen learns the new one.
    let r = app
        .call(
            "POST",
            "/api/v1/users/chen/password",
            Some(json!({"password": "Xuzhidao2026"})),
            &xu,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("PASSWORD_SET_BY_USER"))
    );
    let r = app
        .call("POST", "/api/v1/users/chen/password", Some(json!({})), &xu)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("password").is_none(), "{}", r.body);
    let again = r.body["activation"]["code"]
        .as_str()
        .expect("code")
        .to_owned();
    assert_eq!(
        sign_in(&app, "chen", "Chenmima2026").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.activate(&again, "Chenneu20261").await.status,
        StatusCode::OK
    );
    assert_eq!(
        sign_in(&app, "chen", "Chenneu20261").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_tenant_admin_may_still_type_its_own_users_password() {
    let app = App::with_users().await;
    let wang = app.login("wang").await;
    let (status, _, body) = create_raw(
        &app,
        &wang,
        json!({
            "id": "gao", "display_name": "高", "tenant": "110105", "password": "Gaomima20261",
            "roles": [tenant_role("tenant_user", "110105")]
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body.get("activation").is_none(), "{body}");
    assert_eq!(
        sign_in(&app, "gao", "Gaomima20261").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_admin_token_sets_up_the_first_security_admin() {
    let app = App::new().await;
    let r = app
        .create_user(
            &App::admin(),
            json!({"id": "anquan", "display_name": "安全管理员", "password": PASSWORD,
                   "roles": [role("security_admin")]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let anquan = app.login("anquan").await;
    let r = app.call("GET", "/api/v1/users", None, &anquan).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The token never reads the audit log nor a department's data.
    for path in ["/api/v1/audit", "/api/v1/orders"] {
        let r = app.call("GET", path, None, &App::admin()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
    }
}
