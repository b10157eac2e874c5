//! Offboarding (issue 16 item 12) through the real router: disable/enable,
//! password reset, removing a role binding, revoking a user's credentials —
//! who may, what stops working at once, one audit entry each, nothing written
//! on a refusal.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use yunshu_domain::audit::AuditEntry;
use yunshu_domain::user::{RoleBinding, User};
use yunshu_store::{PageRequest, records};

use crate::test_app::{App, Auth, PASSWORD, code};

impl App {
    /// A bearer API token of the user behind `session`.
    async fn token_of(&self, session: &Auth) -> Auth {
        let r = self
            .call(
                "POST",
                "/api/v1/auth/tokens",
                Some(json!({"name": "script", "scopes": ["system_read"]})),
                session,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let token = r.body["token"].as_str().expect("token").to_owned();
        vec![("authorization", format!("Bearer {token}"))]
    }

    async fn me_status(&self, auth: &Auth) -> StatusCode {
        self.call("GET", "/api/v1/auth/me", None, auth).await.status
    }

    async fn sign_in_status(&self, user: &str, password: &str) -> StatusCode {
        self.call(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"user": user, "password": password})),
            &[],
        )
        .await
        .status
    }

    /// The stored user and their bindings: what a refusal must leave alone.
    async fn user_snapshot(&self, id: &str) -> (Option<User>, Vec<RoleBinding>) {
        let user = records::get::<User>(&*self.store, id)
            .await
            .expect("store")
            .map(|(u, _)| u);
        let uid = yunshu_domain::UserId::new(id.to_owned()).expect("id");
        let bindings = yunshu_auth::principal::bindings_of(&*self.store, &uid)
            .await
            .expect("store");
        (user, bindings)
    }

    /// Audit entries after the first `from`: (action, actor, target).
    async fn audit_since(&self, from: usize) -> Vec<(String, String, String)> {
        let (entries, _) = records::list::<AuditEntry>(&*self.store, PageRequest::default())
            .await
            .expect("audit");
        let mut entries = entries;
        entries.sort_by_key(|e| e.seq);
        entries
            .into_iter()
            .skip(from)
            .map(|e| {
                (
                    e.action.as_str().to_owned(),
                    e.actor.to_string(),
                    e.target.to_string(),
                )
            })
            .collect()
    }
}

fn ok(r: &crate::test_app::Reply) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Seed 003 §3.2.2.1 (离岗管理: 及时终止离岗员工的所有访问权限).
#[tokio::test]
async fn disabling_ends_sessions_and_tokens_at_once_and_refuses_sign_in_until_enabled() {
    let app = App::with_users().await;
    let li = app.login("li").await;
    let li_token = app.token_of(&li).await;
    let wang = app.login("wang").await;
    assert_eq!(app.me_status(&li).await, StatusCode::OK);
    assert_eq!(app.me_status(&li_token).await, StatusCode::OK);

    let before = app.audit_count().await;
    let r = app
        .call("POST", "/api/v1/users/li/disable", None, &wang)
        .await;
    ok(&r);
    assert_eq!(r.body["user"]["state"], "disabled");
    assert_eq!(r.body["ended"]["sessions_ended"], 1);
    assert_eq!(r.body["ended"]["tokens_revoked"], 1);
    assert_eq!(
        app.audit_since(before).await,
        vec![(
            "user.disable".to_owned(),
            "user:wang".to_owned(),
            "user/li".to_owned()
        )]
    );
    // At once: the very next request with either credential is refused.
    assert_eq!(app.me_status(&li).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me_status(&li_token).await, StatusCode::UNAUTHORIZED);
    // The right password gets the same answer as a wrong one.
    let r = app
        .call(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"user": "li", "password": PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(code(&r), (StatusCode::UNAUTHORIZED, Some("LOGIN_FAILED")));
    // Disabling again changes and records nothing.
    let before = app.audit_count().await;
    let r = app
        .call("POST", "/api/v1/users/li/disable", None, &wang)
        .await;
    ok(&r);
    assert_eq!(app.audit_count().await, before);

    let r = app
        .call("POST", "/api/v1/users/li/enable", None, &wang)
        .await;
    ok(&r);
    assert_eq!(r.body["user"]["state"], "active");
    assert_eq!(
        app.audit_since(before).await,
        vec![(
            "user.enable".to_owned(),
            "user:wang".to_owned(),
            "user/li".to_owned()
        )]
    );
    assert_eq!(app.sign_in_status("li", PASSWORD).await, StatusCode::OK);
    // Re-enabling restores sign-in, not the old token.
    assert_eq!(app.me_status(&li_token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_password_reset_ends_sessions_clears_lockout_and_only_the_new_password_works() {
    let app = App::with_users().await;
    // Li's department admin: a platform user manager sets no passwords (its
    // reset hands out an activation code: separation_tests).
    let wang = app.login("wang").await;
    let li = app.login("li").await;
    let li_token = app.token_of(&li).await;
    for _ in 0..yunshu_auth::lockout::MAX_FAILURES {
        app.sign_in_status("li", "Wrongpass2026").await;
    }
    assert_eq!(
        app.sign_in_status("li", PASSWORD).await,
        StatusCode::LOCKED,
        "locked before the reset"
    );

    // A weak password is refused and nothing is written.
    let before = app.audit_count().await;
    let snapshot = app.user_snapshot("li").await;
    let r = app
        .call(
            "POST",
            "/api/v1/users/li/password",
            Some(json!({"password": "short1"})),
            &wang,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("PASSWORD_TOO_WEAK"))
    );
    assert!(
        r.body["message_zh"]
            .as_str()
            .is_some_and(|m| m.contains("密码"))
    );
    assert_eq!(app.audit_count().await, before);
    assert_eq!(app.user_snapshot("li").await, snapshot);
    assert_eq!(app.me_status(&li).await, StatusCode::OK);

    let r = app
        .call(
            "POST",
            "/api/v1/users/li/password",
            Some(json!({"password": "Neuerpass2027"})),
            &wang,
        )
        .await;
    ok(&r);
    assert_eq!(r.body["sessions_ended"], 1);
    assert!(r.body.get("password").is_none(), "{}", r.body);
    assert_eq!(
        app.audit_since(before).await,
        vec![(
            "user.password_reset".to_owned(),
            "user:wang".to_owned(),
            "user/li".to_owned()
        )]
    );
    assert_eq!(app.me_status(&li).await, StatusCode::UNAUTHORIZED);
    // Tokens are not sessions: revoke-credentials ends those.
    assert_eq!(app.me_status(&li_token).await, StatusCode::OK);
    assert_eq!(
        app.sign_in_status("li", PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    // The lockout was cleared, so the new password works at once.
    assert_eq!(
        app.sign_in_status("li", "Neuerpass2027").await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_generated_password_is_shown_once_without_caching_and_works() {
    let app = App::with_users().await;
    let wang = app.login("wang").await;
    let mut req = Request::builder()
        .method("POST")
        .uri("/api/v1/users/li/password")
        .header(header::CONTENT_TYPE, "application/json");
    for (k, v) in &wang {
        req = req.header(*k, v);
    }
    let response = app
        .router
        .clone()
        .oneshot(req.body(Body::from("{}")).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body: Value = serde_json::from_slice(&bytes).expect("json");
    let generated = body["password"].as_str().expect("generated password");
    assert!(generated.len() >= yunshu_auth::passwords::MIN_LENGTH);
    assert_eq!(app.sign_in_status("li", generated).await, StatusCode::OK);
    assert_eq!(
        app.sign_in_status("li", PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn removing_a_binding_takes_the_permission_away_on_the_next_request() {
    let app = App::with_users().await;
    let r = app
        .create_user(
            &App::admin(),
            json!({
                "id": "ma", "display_name": "马", "tenant": "110105", "password": PASSWORD,
                "roles": [
                    {"role": {"name": "tenant_user"}, "scope": {"type": "tenant", "tenant": "110105"}},
                    {"role": {"name": "tenant_admin"}, "scope": {"type": "tenant", "tenant": "110105"}}
                ]
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ma = app.login("ma").await;
    let wang = app.login("wang").await;
    let r = app.call("GET", "/api/v1/users", None, &ma).await;
    ok(&r);

    let before = app.audit_count().await;
    let r = app
        .call("DELETE", "/api/v1/users/ma/bindings/ma.1", None, &wang)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        app.audit_since(before).await,
        vec![(
            "user.role_binding.remove".to_owned(),
            "user:wang".to_owned(),
            "user/ma".to_owned()
        )]
    );
    // The same session, next request: the tenant admin permission is gone.
    let r = app.call("GET", "/api/v1/users", None, &ma).await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    assert_eq!(app.me_status(&ma).await, StatusCode::OK);

    // Refusals write nothing: the last binding, an unknown one.
    let before = app.audit_count().await;
    let snapshot = app.user_snapshot("ma").await;
    let r = app
        .call("DELETE", "/api/v1/users/ma/bindings/ma.0", None, &wang)
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("USER_ROLES_REQUIRED"))
    );
    let r = app
        .call("DELETE", "/api/v1/users/ma/bindings/ma.1", None, &wang)
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::NOT_FOUND, Some("ROLE_BINDING_NOT_FOUND"))
    );
    // Another user's binding through this user's path.
    let r = app
        .call("DELETE", "/api/v1/users/ma/bindings/li.0", None, &wang)
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::NOT_FOUND, Some("ROLE_BINDING_NOT_FOUND"))
    );
    assert_eq!(app.audit_count().await, before);
    assert_eq!(app.user_snapshot("ma").await, snapshot);
}

#[tokio::test]
async fn revoking_ends_sessions_and_tokens_but_the_user_can_sign_in_again() {
    let app = App::with_users().await;
    let li = app.login("li").await;
    let li_other = app.login("li").await;
    let li_token = app.token_of(&li).await;
    let wang = app.login("wang").await;

    let before = app.audit_count().await;
    let r = app
        .call("POST", "/api/v1/users/li/revoke-credentials", None, &wang)
        .await;
    ok(&r);
    assert_eq!(r.body["sessions_ended"], 2);
    assert_eq!(r.body["tokens_revoked"], 1);
    assert_eq!(
        app.audit_since(before).await,
        vec![(
            "user.credentials_revoke".to_owned(),
            "user:wang".to_owned(),
            "user/li".to_owned()
        )]
    );
    for auth in [&li, &li_other, &li_token] {
        assert_eq!(app.me_status(auth).await, StatusCode::UNAUTHORIZED);
    }
    // The manager's own session is untouched, and li is not disabled.
    assert_eq!(app.me_status(&wang).await, StatusCode::OK);
    let again = app.login("li").await;
    assert_eq!(app.me_status(&again).await, StatusCode::OK);
}

#[tokio::test]
async fn a_tenant_admin_cannot_offboard_another_tenants_user_nor_platform_staff() {
    let app = App::with_users().await;
    let wang = app.login("wang").await;
    let zhao = app.login("zhao").await;
    let li = app.login("li").await;
    let before = app.audit_count().await;
    let targets = ["zhao", "sun", "op", "nobody"];
    let mut snapshots = Vec::new();
    for t in targets {
        snapshots.push(app.user_snapshot(t).await);
    }
    let attempts = |user: &str| {
        vec![
            ("POST", format!("/api/v1/users/{user}/disable"), None),
            ("POST", format!("/api/v1/users/{user}/enable"), None),
            (
                "POST",
                format!("/api/v1/users/{user}/password"),
                Some(json!({"password": "Neuerpass2027"})),
            ),
            (
                "DELETE",
                format!("/api/v1/users/{user}/bindings/{user}.0"),
                None,
            ),
            (
                "POST",
                format!("/api/v1/users/{user}/revoke-credentials"),
                None,
            ),
        ]
    };
    for t in targets {
        for (method, path, body) in attempts(t) {
            let r = app.call(method, &path, body, &wang).await;
            assert_eq!(
                code(&r),
                (StatusCode::NOT_FOUND, Some("USER_NOT_FOUND")),
                "{method} {path}: {}",
                r.body
            );
            assert!(r.body["message_zh"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    // A tenant user manages nobody: forbidden, even for a colleague.
    for (method, path, body) in attempts("wang") {
        let r = app.call(method, &path, body, &li).await;
        assert_eq!(
            code(&r),
            (StatusCode::FORBIDDEN, Some("FORBIDDEN")),
            "{method} {path}"
        );
    }
    assert_eq!(app.audit_count().await, before);
    for (t, snapshot) in targets.into_iter().zip(snapshots) {
        assert_eq!(app.user_snapshot(t).await, snapshot, "{t}");
    }
    assert_eq!(app.me_status(&zhao).await, StatusCode::OK);
    assert_eq!(app.me_status(&wang).await, StatusCode::OK);
}

#[tokio::test]
async fn the_platform_admin_offboards_platform_staff() {
    let app = App::with_users().await;
    let sun = app.login("sun").await;
    let before = app.audit_count().await;
    let r = app
        .call("POST", "/api/v1/users/sun/disable", None, &App::admin())
        .await;
    ok(&r);
    assert_eq!(app.audit_count().await, before + 1);
    assert_eq!(app.me_status(&sun).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.sign_in_status("sun", PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_manager_cannot_offboard_themselves() {
    let app = App::with_users().await;
    let wang = app.login("wang").await;
    let before = app.audit_count().await;
    let snapshot = app.user_snapshot("wang").await;
    for (method, path, body) in [
        ("POST", "/api/v1/users/wang/disable", None),
        ("POST", "/api/v1/users/wang/enable", None),
        (
            "POST",
            "/api/v1/users/wang/password",
            Some(json!({"password": "Neuerpass2027"})),
        ),
        ("DELETE", "/api/v1/users/wang/bindings/wang.0", None),
        ("POST", "/api/v1/users/wang/revoke-credentials", None),
    ] {
        let r = app.call(method, path, body, &wang).await;
        assert_eq!(
            code(&r),
            (StatusCode::CONFLICT, Some("USER_IS_CALLER")),
            "{method} {path}: {}",
            r.body
        );
    }
    assert_eq!(app.audit_count().await, before);
    assert_eq!(app.user_snapshot("wang").await, snapshot);
    assert_eq!(app.me_status(&wang).await, StatusCode::OK);
}
