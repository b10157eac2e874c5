//! A router-level test harness shared by the API tests: the memory store, the
//! demo tenant 110105 and a second tenant 110106, users of every role, and
//! requests through `oneshot` as a browser (cookie + CSRF) or a script (bearer)
//! would send them.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use yunshu_store::{RedbStore, records};

use crate::AppState;

pub const ADMIN: &str = "admin-secret";
pub const PASSWORD: &str = "Zhengwuyun2026";

/// Headers that authenticate a request.
pub type Auth = Vec<(&'static str, String)>;

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub set_cookie: Option<String>,
}

pub struct App {
    pub router: axum::Router,
}

impl App {
    /// Users: li (tenant user, 110105), wang (tenant admin, 110105), zhao (tenant
    /// user, 110106), sun (reviewer), zhou (approver), qian (auditor), op
    /// (provider operator of `sim`).
    pub async fn with_users() -> Self {
        let app = Self::new().await;
        app.add_users().await;
        app
    }

    /// The two tenants and no users (tests that create their own).
    pub async fn new() -> Self {
        let store = Arc::new(RedbStore::in_memory().expect("store"));
        crate::demo::seed(&*store)
            .await
            .expect("demo tenant 110105");
        let other = yunshu_domain::tenant::Tenant {
            code: yunshu_domain::TenantCode::new("110106").expect("code"),
            name: yunshu_domain::Name::new("另一个委办局").expect("name"),
            supervising_unit: yunshu_domain::Name::new("区政府").expect("name"),
            created_at: chrono::Utc::now(),
        };
        records::create(&*store, &other)
            .await
            .expect("tenant 110106");
        let state = AppState::new(store, Some(yunshu_pki::sha256_hex(ADMIN.as_bytes())));
        Self {
            router: crate::api::router(state),
        }
    }

    async fn add_users(&self) {
        for (id, tenant, role, scope) in [
            (
                "li",
                Some("110105"),
                json!({"name": "tenant_user"}),
                json!({"type": "tenant", "tenant": "110105"}),
            ),
            (
                "wang",
                Some("110105"),
                json!({"name": "tenant_admin"}),
                json!({"type": "tenant", "tenant": "110105"}),
            ),
            (
                "zhao",
                Some("110106"),
                json!({"name": "tenant_user"}),
                json!({"type": "tenant", "tenant": "110106"}),
            ),
            (
                "sun",
                None,
                json!({"name": "reviewer"}),
                json!({"type": "platform"}),
            ),
            (
                "zhou",
                None,
                json!({"name": "approver"}),
                json!({"type": "platform"}),
            ),
            (
                "qian",
                None,
                json!({"name": "auditor"}),
                json!({"type": "platform"}),
            ),
            (
                "op",
                None,
                json!({"name": "provider_operator", "provider": "sim"}),
                json!({"type": "provider", "provider": "sim"}),
            ),
        ] {
            let r = self
                .call(
                    "POST",
                    "/api/v1/users",
                    Some(json!({
                        "id": id, "display_name": id, "tenant": tenant, "password": PASSWORD,
                        "roles": [{"role": role, "scope": scope}]
                    })),
                    &App::admin(),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{id}: {}", r.body);
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        auth: &[(&str, String)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in auth {
            req = req.header(*k, v);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        let response = self.router.clone().oneshot(req).await.expect("infallible");
        let status = response.status();
        let set_cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            set_cookie,
        }
    }

    pub fn admin() -> Auth {
        vec![("authorization", format!("Bearer {ADMIN}"))]
    }

    /// Logs in with the shared test password.
    pub async fn login(&self, user: &str) -> Auth {
        self.login_with(user, PASSWORD).await
    }

    /// Logs in; the headers a browser sends next (cookie + CSRF token).
    pub async fn login_with(&self, user: &str, password: &str) -> Auth {
        let r = self
            .call(
                "POST",
                "/api/v1/auth/login",
                Some(json!({"user": user, "password": password})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "login {user}: {}", r.body);
        let cookie = r.set_cookie.expect("Set-Cookie");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        vec![
            ("cookie", cookie.split(';').next().expect("pair").to_owned()),
            (
                "x-csrf-token",
                r.body["csrf_token"].as_str().expect("csrf").to_owned(),
            ),
        ]
    }
}
