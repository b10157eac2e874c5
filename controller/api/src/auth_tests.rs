//! Users, login, sessions, CSRF, lockout and scoping through the real router.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::test_app::{App, Reply, code};

fn tenant_admin(id: &str, tenant: &str) -> Value {
    json!({
        "id": id, "display_name": "王管理", "tenant": tenant, "password": "Zhengwuyun2026",
        "roles": [{"role": {"name": "tenant_admin"}, "scope": {"type": "tenant", "tenant": tenant}}]
    })
}

#[tokio::test]
async fn admin_creates_a_tenant_admin_who_logs_in() {
    let app = App::new().await;
    let r = app
        .create_user(&App::admin(), tenant_admin("wang", "110105"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.get("password_hash").is_none());
    let session = app.login_with("wang", "Zhengwuyun2026").await;
    let me = app.call("GET", "/api/v1/auth/me", None, &session).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["actor"], "user:wang");
    assert_eq!(me.body["tenant"], "110105");
    // Logout ends the session for good.
    let out = app
        .call("POST", "/api/v1/auth/logout", None, &session)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let me = app.call("GET", "/api/v1/auth/me", None, &session).await;
    assert_eq!(
        (me.status, me.body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("AUTH_REQUIRED"))
    );
}

#[tokio::test]
async fn changes_need_the_csrf_token() {
    let app = App::new().await;
    app.create_user(&App::admin(), tenant_admin("wang", "110105"))
        .await;
    let session = app.login_with("wang", "Zhengwuyun2026").await;
    let no_csrf = vec![session[0].clone()];
    let user = json!({
        "id": "li", "display_name": "李经办", "tenant": "110105", "password": "Jingban20261",
        "roles": [{"role": {"name": "tenant_user"}, "scope": {"type": "tenant", "tenant": "110105"}}]
    });
    let r = app.create_user(&no_csrf, user.clone()).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("CSRF_FAILED"))
    );
    let r = app.create_user(&session, user).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn tenant_admins_manage_only_their_own_tenant() {
    let app = App::new().await;
    app.create_user(&App::admin(), tenant_admin("wang", "110105"))
        .await;
    let session = app.login_with("wang", "Zhengwuyun2026").await;
    // Another tenant: not found, never forbidden (SPEC §1).
    let r = app
        .create_user(&session, tenant_admin("zhao", "110106"))
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("TENANT_NOT_FOUND"))
    );
    let foreign_user_in_own_scope = json!({
        "id": "zhao", "display_name": "赵", "tenant": "110106", "password": "Zhengwuyun2026",
        "roles": [{"role": {"name": "tenant_user"}, "scope": {"type": "tenant", "tenant": "110105"}}]
    });
    let r = app.create_user(&session, foreign_user_in_own_scope).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("TENANT_NOT_FOUND"))
    );
    // A tenant admin cannot make platform staff.
    let reviewer = json!({
        "id": "sun", "display_name": "孙审核", "password": "Shenhe202612",
        "roles": [{"role": {"name": "reviewer"}, "scope": {"type": "platform"}}]
    });
    let r = app.create_user(&session, reviewer).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_users_are_refused_and_nothing_is_written() {
    let app = App::new().await;
    // A platform user manager types no password (the user activates).
    let typed = tenant_admin("wang", "110105");
    let r = app
        .call("POST", "/api/v1/users", Some(typed), &App::admin())
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("PASSWORD_SET_BY_USER"))
    );
    assert!(
        r.body["message_zh"]
            .as_str()
            .is_some_and(|m| m.contains("密码"))
    );
    let r = app
        .create_user(&App::admin(), tenant_admin("Bad Id!", "110105"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = app
        .create_user(&App::admin(), tenant_admin("wang", "999999"))
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("TENANT_NOT_FOUND"))
    );
    // Nothing of the refused requests exists: the name is still free.
    let r = app
        .create_user(&App::admin(), tenant_admin("wang", "110105"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .create_user(&App::admin(), tenant_admin("wang", "110105"))
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("USER_EXISTS"))
    );
}

/// 登录失败处理 of 等保三级 (GB/T 22239-2019), which seed 003 §2.4.1 (1) requires.
#[tokio::test]
async fn repeated_failures_lock_the_account_and_are_audited() {
    let app = App::new().await;
    app.create_user(&App::admin(), tenant_admin("wang", "110105"))
        .await;
    for _ in 0..5 {
        let r = app
            .call(
                "POST",
                "/api/v1/auth/login",
                Some(json!({"user": "wang", "password": "wrong-password-1"})),
                &[],
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("LOGIN_FAILED"))
        );
    }
    // Locked now, even with the right password.
    let r = app
        .call(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"user": "wang", "password": "Zhengwuyun2026"})),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::LOCKED, Some("ACCOUNT_LOCKED"))
    );
    // Unknown users get the same answer as wrong passwords.
    let r = app
        .call(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"user": "nobody", "password": "whatever-123"})),
            &[],
        )
        .await;
    assert_eq!(r.body["code"], "LOGIN_FAILED");
    // The platform admin may not read the audit log; an auditor may.
    let denied = app.call("GET", "/api/v1/audit", None, &App::admin()).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let auditor = json!({
        "id": "qian", "display_name": "钱审计", "password": "Shenji202612",
        "roles": [{"role": {"name": "auditor"}, "scope": {"type": "platform"}}]
    });
    assert_eq!(
        app.create_user(&App::admin(), auditor).await.status,
        StatusCode::CREATED
    );
    let qian = app.login_with("qian", "Shenji202612").await;
    let audit = app
        .call("GET", "/api/v1/audit?limit=100", None, &qian)
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "auth.login_failed")
            .count(),
        6,
        "{actions:?}"
    );
    assert!(actions.contains(&"user.create"));
    let verify = app.call("GET", "/api/v1/audit/verify", None, &qian).await;
    assert_eq!(verify.body["intact"], true, "{}", verify.body);
}

#[tokio::test]
async fn no_credentials_and_a_wrong_bearer_are_401() {
    let app = App::new().await;
    let r = app.call("GET", "/api/v1/auth/me", None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .call(
            "GET",
            "/api/v1/auth/me",
            None,
            &[("authorization", "Bearer nope".into())],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_tokens_act_as_their_user_within_their_scopes_until_revoked() {
    let app = App::new().await;
    app.create_user(&App::admin(), tenant_admin("wang", "110105"))
        .await;
    let session = app.login_with("wang", "Zhengwuyun2026").await;
    let r = app
        .call(
            "POST",
            "/api/v1/auth/tokens",
            Some(json!({"name": "备份脚本", "scopes": ["order_read"], "days": 30})),
            &session,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let bearer = vec![(
        "authorization",
        format!("Bearer {}", r.body["token"].as_str().expect("token")),
    )];
    let id = r.body["id"].as_str().expect("id").to_owned();
    let me = app.call("GET", "/api/v1/auth/me", None, &bearer).await;
    assert_eq!(
        (me.status, me.body["actor"].as_str()),
        (StatusCode::OK, Some("user:wang"))
    );
    // Outside its scopes: refused although the user could do it.
    let user = json!({
        "id": "li", "display_name": "李经办", "tenant": "110105", "password": "Jingban20261",
        "roles": [{"role": {"name": "tenant_user"}, "scope": {"type": "tenant", "tenant": "110105"}}]
    });
    let r = app.create_user(&bearer, user).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // A token cannot be wider than its user.
    let r = app
        .call(
            "POST",
            "/api/v1/auth/tokens",
            Some(json!({"name": "x", "scopes": ["driver_manage"]})),
            &session,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Listing never shows the secret; revoking ends it.
    let list = app.call("GET", "/api/v1/auth/tokens", None, &session).await;
    assert!(list.body[0].get("token").is_none(), "{}", list.body);
    let r = app
        .call(
            "DELETE",
            &format!("/api/v1/auth/tokens/{id}"),
            None,
            &session,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let me = app.call("GET", "/api/v1/auth/me", None, &bearer).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_department_admin_lists_only_its_own_users_and_the_platform_admin_everyone() {
    let app = App::with_users().await;
    let ids = |r: &Reply| -> Vec<(String, Option<String>)> {
        r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|u| {
                (
                    u["id"].as_str().unwrap_or_default().to_owned(),
                    u["tenant"].as_str().map(str::to_owned),
                )
            })
            .collect()
    };
    let wang = app.login("wang").await;
    let own = app.call("GET", "/api/v1/users", None, &wang).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    let own = ids(&own);
    assert!(own.iter().any(|(id, _)| id == "li"), "{own:?}");
    assert!(
        own.iter().all(|(_, t)| t.as_deref() == Some("110105")),
        "another department's or platform staff leak: {own:?}"
    );
    let all = app.call("GET", "/api/v1/users", None, &App::admin()).await;
    let all = ids(&all);
    assert!(all.iter().any(|(id, _)| id == "zhao"), "{all:?}");
    assert!(
        all.iter().any(|(_, t)| t.is_none()),
        "platform staff listed: {all:?}"
    );
    // Bindings carry role and scope, never a password hash.
    let raw = app.call("GET", "/api/v1/users", None, &App::admin()).await;
    assert!(!raw.body.to_string().contains("argon2"), "{}", raw.body);
}

/// Security issue item 2: a token may mint only tokens with a subset of its
/// own scopes and no longer life — a read-only token minted a full-scope
/// 365-day token before.
#[tokio::test]
async fn token_scope_escalation_a_token_cannot_mint_a_wider_or_longer_token() {
    let app = App::new().await;
    app.create_user(&App::admin(), tenant_admin("wang", "110105"))
        .await;
    let session = app.login_with("wang", "Zhengwuyun2026").await;
    let r = app
        .call(
            "POST",
            "/api/v1/auth/tokens",
            Some(json!({"name": "只读", "scopes": ["order_read"], "days": 30})),
            &session,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let read_only = vec![(
        "authorization",
        format!("Bearer {}", r.body["token"].as_str().expect("token")),
    )];
    let before = app
        .call("GET", "/api/v1/auth/tokens", None, &session)
        .await
        .body;
    // Wider scopes than the calling token: refused though the user holds them.
    let r = app
        .call(
            "POST",
            "/api/v1/auth/tokens",
            Some(json!({"name": "全权", "scopes": ["order_read", "user_manage"], "days": 10})),
            &read_only,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::FORBIDDEN, Some("FORBIDDEN")),
        "{}",
        r.body
    );
    // The same scope for longer than the calling token lives: refused.
    let r = app
        .call(
            "POST",
            "/api/v1/auth/tokens",
            Some(json!({"name": "长期", "scopes": ["order_read"], "days": 365})),
            &read_only,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::FORBIDDEN, Some("TOKEN_OUTLIVES_CALLER")),
        "{}",
        r.body
    );
    assert!(
        r.body["message_zh"]
            .as_str()
            .is_some_and(|m| m.contains("有效期"))
    );
    assert_eq!(
        app.call("GET", "/api/v1/auth/tokens", None, &session)
            .await
            .body,
        before,
        "nothing minted"
    );
    // A subset for a shorter life is fine.
    let r = app
        .call(
            "POST",
            "/api/v1/auth/tokens",
            Some(json!({"name": "子令牌", "scopes": ["order_read"], "days": 7})),
            &read_only,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

/// Security issue items 3 and 10: 40 parallel wrong passwords for one
/// account were all hashed (40 × 401, ≈ 0.9 GB). Now each attempt is counted
/// before its hash — at most five reach it, the rest are locked out — and one
/// source is cut at its limit with 429 and Retry-After.
#[tokio::test]
async fn login_flood_parallel_guesses_are_counted_before_the_hash() {
    let app = App::new().await;
    app.create_user(&App::admin(), tenant_admin("wang", "110105"))
        .await;
    let guesses = (0..40).map(|i| {
        app.call(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"user": "wang", "password": format!("wrong-guess-{i}")})),
            &[],
        )
    });
    let replies = futures::future::join_all(guesses).await;
    let count = |code: &str| replies.iter().filter(|r| r.body["code"] == code).count();
    let (checked, locked, limited) = (
        count("LOGIN_FAILED"),
        count("ACCOUNT_LOCKED"),
        count("LOGIN_RATE_LIMITED"),
    );
    assert_eq!(checked + locked + limited, 40, "{replies:?}");
    assert!(checked <= 5, "{checked} guesses reached the hash");
    // In-process calls share one source: it is cut at its allowance.
    assert_eq!(limited, 40 - crate::login_gate::SOURCE_MAX as usize);
    let r = app
        .call(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"user": "wang", "password": "Zhengwuyun2026"})),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("LOGIN_RATE_LIMITED"))
    );
}

/// Security issue (low): newlines and control characters in a user name typed
/// at sign-in reach the audit log escaped — before, such a failed sign-in was
/// not audited at all (the log refuses control characters).
#[tokio::test]
async fn control_characters_in_a_failed_sign_in_are_audited_escaped() {
    let app = App::new().await;
    let before = app.audit_count().await;
    let r = app
        .call(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"user": "wang\n2026-12-06 INFO forged\u{1}", "password": "whatever-123"})),
            &[],
        )
        .await;
    assert_eq!(r.body["code"], "LOGIN_FAILED", "{}", r.body);
    assert_eq!(
        app.audit_count().await,
        before + 1,
        "the failure is audited"
    );
    let (entries, _) = yunshu_store::records::list::<yunshu_domain::audit::AuditEntry>(
        &*app.store,
        yunshu_store::PageRequest::default(),
    )
    .await
    .expect("audit");
    let failed = entries
        .iter()
        .rev()
        .find(|e| e.action.as_str() == "auth.login_failed")
        .expect("entry");
    let target = failed.target.to_string();
    assert!(!target.chars().any(char::is_control), "{target:?}");
    assert!(
        target.contains("wang\\n2026-12-06 INFO forged\\u{1}"),
        "{target}"
    );
}
