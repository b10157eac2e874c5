//! A router-level test harness shared by the API tests: the memory store, the
//! demo tenant 110105 and a second tenant 110106, users of every role, and
//! requests through `oneshot` as a browser (cookie + CSRF) or a script (bearer)
//! would send them.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, TimeZone, Utc};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use yunshu_domain::calendar::CHINA_STANDARD_TIME;
use yunshu_store::{RedbStore, records};
use yunshu_workflow::Clock;

use crate::state::AppState;

pub const ADMIN: &str = "admin-secret";
pub const PASSWORD: &str = "Zhengwuyun2026";

/// Headers that authenticate a request.
pub type Auth = Vec<(&'static str, String)>;

/// An instant in China Standard Time.
pub fn cst(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    CHINA_STANDARD_TIME
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("valid time")
        .with_timezone(&Utc)
}

/// A valid `POST /api/v1/systems` body.
pub fn system_body(name: &str) -> Value {
    json!({
        "name": name,
        "system_type": "business_production",
        "security_level": "level2",
        "run_schedule": "7x24",
        "network_nature": "gov_extranet",
        "contact": {"name": "李经办", "phone": "13800138001"},
        "description": "不动产登记业务办理"
    })
}

/// One server line of an order.
pub fn line(name: &str, quantity: u32) -> Value {
    json!({
        "server": {
            "server_name": name, "network_area": "gov_extranet", "form": "vm",
            "architecture": "arm64", "vcpu": 4, "memory_gib": 8, "system_disk_gib": 100,
            "data_disk_gib": 500, "os": "麒麟 V10", "purpose": "应用服务器", "backup_gib": 200
        },
        "quantity": quantity
    })
}

/// Status and error code of a reply.
pub fn code(r: &Reply) -> (StatusCode, Option<&str>) {
    (r.status, r.body["code"].as_str())
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub set_cookie: Option<String>,
}

pub struct App {
    pub router: axum::Router,
    pub store: Arc<RedbStore>,
    /// A manual clock every handler reads "now" from; starts at the real time.
    pub clock: Clock,
    /// The capacity snapshot the handlers serve (tests fill it by hand).
    pub capacity: yunshu_workflow::capacity::SharedSnapshot,
}

impl App {
    /// Users: li (tenant user, 110105), wang (tenant admin, 110105), zhao (tenant
    /// user, 110106), sun (reviewer), zhou (approver), qian (auditor), op
    /// (provider operator of `sim`), xu (security admin), he (platform admin,
    /// the system administrator); each activated with [`PASSWORD`].
    pub async fn with_users() -> Self {
        let app = Self::new().await;
        app.add_users().await;
        app
    }

    /// [`App::with_users`] with the clock set to `at`.
    pub async fn with_users_at(at: DateTime<Utc>) -> Self {
        let app = Self::with_users().await;
        app.clock.set(at);
        app
    }

    /// The two tenants and no users (tests that create their own).
    pub async fn new() -> Self {
        let store = Arc::new(RedbStore::in_memory().expect("store"));
        yunshu_workflow::demo::seed(&*store)
            .await
            .expect("demo tenant 110105");
        let other = yunshu_domain::tenant::Tenant {
            code: yunshu_domain::TenantCode::new("110106").expect("code"),
            name: yunshu_domain::Name::new("另一个委办局").expect("name"),
            supervising_unit: yunshu_domain::Name::new("区政府").expect("name"),
            created_at: chrono::Utc::now(),
            org_unit: None,
        };
        records::create(&*store, &other)
            .await
            .expect("tenant 110106");
        let state = AppState::new(
            store.clone(),
            Some(yunshu_pki::sha256_hex(ADMIN.as_bytes())),
        );
        let clock = Clock::manual(Utc::now());
        let capacity = state.capacity.clone();
        Self {
            capacity,
            router: crate::router(state).layer(Extension(clock.clone())),
            store,
            clock,
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
            (
                "xu",
                None,
                json!({"name": "security_admin"}),
                json!({"type": "platform"}),
            ),
            (
                "he",
                None,
                json!({"name": "platform_admin"}),
                json!({"type": "platform"}),
            ),
        ] {
            let r = self
                .create_user(
                    &App::admin(),
                    json!({
                        "id": id, "display_name": id, "tenant": tenant, "password": PASSWORD,
                        "roles": [{"role": role, "scope": scope}]
                    }),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{id}: {}", r.body);
        }
    }

    /// `POST /api/v1/users` as the portal does it: the body's `password`, if
    /// any, is not sent; the user is created with a one-time activation code
    /// and then sets that password themselves (`POST /api/v1/activate`).
    /// Returns the creation's answer, or the activation's when it failed.
    pub async fn create_user(&self, auth: &[(&str, String)], mut body: Value) -> Reply {
        let password = body
            .as_object_mut()
            .and_then(|o| o.remove("password"))
            .and_then(|p| p.as_str().map(str::to_owned));
        let r = self.call("POST", "/api/v1/users", Some(body), auth).await;
        let (Some(password), Some(code)) = (password, r.body["activation"]["code"].as_str()) else {
            return r;
        };
        let a = self.activate(code, &password).await;
        if a.status == StatusCode::OK { r } else { a }
    }

    /// `POST /api/v1/activate`, anonymous.
    pub async fn activate(&self, code: &str, password: &str) -> Reply {
        self.call(
            "POST",
            "/api/v1/activate",
            Some(json!({"code": code, "password": password})),
            &[],
        )
        .await
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
        let stream = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let body = if stream {
            first_event_data(response.into_body()).await
        } else {
            let bytes = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Reply {
            status,
            body,
            set_cookie,
        }
    }

    pub async fn system_create(&self, auth: &Auth, name: &str) -> Reply {
        self.call("POST", "/api/v1/systems", Some(system_body(name)), auth)
            .await
    }

    /// An onboarding draft with two lines (web-01 ×3, db-01 ×2).
    pub async fn order_create(&self, auth: &Auth, system: &str, policy: Option<&str>) -> Reply {
        let mut body = json!({
            "kind": "onboarding",
            "system": system,
            "lines": [line("web-01", 3), line("db-01", 2)],
            "note": "入云申请"
        });
        if let Some(p) = policy {
            body["policy"] = json!(p);
        }
        self.call("POST", "/api/v1/orders", Some(body), auth).await
    }

    pub async fn order_get(&self, auth: &Auth, id: &str) -> Reply {
        self.call("GET", &format!("/api/v1/orders/{id}"), None, auth)
            .await
    }

    pub async fn transition(&self, auth: &Auth, id: &str, to: &str, reason: Option<&str>) -> Reply {
        let mut body = json!({"to": to});
        if let Some(r) = reason {
            body["reason"] = json!(r);
        }
        self.call(
            "POST",
            &format!("/api/v1/orders/{id}/transitions"),
            Some(body),
            auth,
        )
        .await
    }

    /// Moves `id` to `to` and expects success.
    pub async fn step(&self, auth: &Auth, id: &str, to: &str) -> Value {
        let r = self.transition(auth, id, to, None).await;
        assert_eq!(r.status, StatusCode::OK, "{to}: {}", r.body);
        assert_eq!(r.body["state"], to);
        r.body
    }

    /// Number of audit entries so far.
    pub async fn audit_count(&self) -> usize {
        records::list::<yunshu_domain::audit::AuditEntry>(
            &*self.store,
            yunshu_store::PageRequest::default(),
        )
        .await
        .expect("audit")
        .0
        .len()
    }

    /// Sends a raw text body (file uploads).
    pub async fn call_text(
        &self,
        method: &str,
        path: &str,
        body: &str,
        auth: &[(&str, String)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in auth {
            req = req.header(*k, v);
        }
        let req = req
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::from(body.to_owned()))
            .expect("request");
        let response = self.router.clone().oneshot(req).await.expect("infallible");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            body: serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
            set_cookie: None,
        }
    }

    pub fn admin() -> Auth {
        vec![("authorization", format!("Bearer {ADMIN}"))]
    }

    /// Logs in with the shared test password.
    /// The HTML of the portal page `path` as the holder of `auth` sees it,
    /// rendered by the server (the portal's own API calls read the real
    /// clock, so tests of pages start from [`App::with_users`]).
    pub async fn portal_page(&self, path: &str, auth: &Auth) -> String {
        let portal = crate::router_with_portal(
            AppState::new(self.store.clone(), None),
            std::path::Path::new("/nonexistent"),
        );
        let mut req = Request::get(path);
        for (name, value) in auth {
            if *name == "cookie" {
                req = req.header("cookie", value);
            }
        }
        let resp = portal
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(body.to_vec()).expect("utf-8")
    }

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

/// The JSON data of the first event of a server-sent event stream (which does
/// not end by itself, so it cannot be read whole).
pub async fn first_event_data(mut body: Body) -> Value {
    let mut text = String::new();
    while !text.contains("\n\n") {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
            .await
            .expect("an event within 10 s")
            .expect("stream open")
            .expect("frame");
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    text.lines()
        .find_map(|l| l.strip_prefix("data:"))
        .and_then(|d| serde_json::from_str(d.trim()).ok())
        .unwrap_or(Value::Null)
}
