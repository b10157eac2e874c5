//! Router tests through `oneshot`, on the in-memory store.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use yunshu_store::RedbStore;

use crate::state::AppState;

async fn app() -> (AppState, axum::Router) {
    let store = Arc::new(RedbStore::in_memory().expect("memory store"));
    let state = AppState::new(store, Some(yunshu_pki::sha256_hex(b"admin")));
    // What the server's readiness monitor does at start-up.
    let probed = state.store.health().await.map_err(|e| e.to_string());
    state.readiness.record(probed);
    let pki =
        yunshu_drivers::DriverPki::load(&*state.store, std::time::Duration::from_secs(3600), None)
            .await
            .expect("pki");
    let _ = state.pki.set(Arc::new(pki));
    (state.clone(), super::router(state))
}

async fn get(router: &axum::Router, path: &str) -> (StatusCode, String) {
    get_as(router, path, None).await
}

async fn get_as(router: &axum::Router, path: &str, bearer: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::get(path);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn healthz_and_readyz_are_ok_on_a_working_store() {
    let (_, router) = app().await;
    assert_eq!(get(&router, "/healthz").await.0, StatusCode::OK);
    let (status, body) = get(&router, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["ready"], true);
    assert_eq!(json["store"], "memory");
}

#[tokio::test]
async fn version_names_the_build_and_store() {
    let (_, router) = app().await;
    let (status, body) = get(&router, "/api/v1/version").await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["name"], "yunshu");
    assert_eq!(json["version"], crate::version::VERSION);
    assert_eq!(json["api"], "v1");
    assert_eq!(json["store"], "memory");
}

#[tokio::test]
async fn unknown_paths_get_the_error_body_in_both_languages() {
    let (_, router) = app().await;
    let (status, body) = get(&router, "/api/v1/no-such-thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["code"], "NOT_FOUND");
    assert!(
        json["message"]
            .as_str()
            .expect("message")
            .contains("/api/v1/no-such-thing")
    );
    assert!(
        json["message_zh"]
            .as_str()
            .expect("message_zh")
            .contains("未找到")
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let (_, router) = app().await;
    get(&router, "/api/v1/version").await;
    get(&router, "/api/v1/version").await;
    let (status, body) = get_as(&router, "/metrics", Some("admin")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains(
            r#"yunshu_http_requests_total{method="GET",route="/api/v1/version",status="200"} 2"#
        ),
        "{body}"
    );
    assert!(body.contains("yunshu_store_ready 1"), "{body}");
    assert!(body.contains("# EOF"), "OpenMetrics text ends with # EOF");
}

#[tokio::test]
async fn readyz_is_503_with_a_reason_when_the_store_fails() {
    let (state, router) = app().await;
    // A readiness that was never probed successfully is not ready.
    let fresh = AppState {
        readiness: crate::readiness::Readiness::new("memory"),
        ..state
    };
    let router2 = super::router(fresh);
    let (status, body) = get(&router2, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("not been probed"), "{body}");
    drop(router);
}

async fn post_json(
    router: &axum::Router,
    path: &str,
    body: serde_json::Value,
    key: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let mut req = Request::post(path)
        .header("authorization", "Bearer admin")
        .header("content-type", "application/json");
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let response = router
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or_default(),
    )
}

#[tokio::test]
async fn idempotency_key_replays_the_first_answer() {
    let (_, router) = app().await;
    let body = serde_json::json!({"code": "110105", "name": "朝阳区政务服务管理局", "supervising_unit": "朝阳区人民政府"});
    let (s1, _, first) = post_json(&router, "/api/v1/tenants", body.clone(), Some("k-1")).await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    let (s2, h2, second) = post_json(&router, "/api/v1/tenants", body.clone(), Some("k-1")).await;
    assert_eq!(
        s2,
        StatusCode::CREATED,
        "the first answer, not USER_EXISTS: {second}"
    );
    assert_eq!(first, second);
    assert_eq!(
        h2.get("idempotent-replayed").map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    // Without a key, the request runs again.
    let (s3, _, third) = post_json(&router, "/api/v1/tenants", body, None).await;
    assert_eq!(s3, StatusCode::CONFLICT, "{third}");
    // The same key with another body is refused.
    let other = serde_json::json!({"code": "110106", "name": "丰台区", "supervising_unit": "丰台区人民政府"});
    let (s4, _, err) = post_json(&router, "/api/v1/tenants", other, Some("k-1")).await;
    assert_eq!(
        (s4, err["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("IDEMPOTENCY_KEY_REUSED")
        )
    );
}

async fn idempotency_records(state: &AppState) -> usize {
    state
        .store
        .range("idempotency/", yunshu_store::PageRequest::default())
        .await
        .expect("range")
        .items
        .len()
}

/// Security issue item 4: anonymous POSTs with fresh `Idempotency-Key`s
/// wrote to the store (20 POSTs moved the revision by 41); they write
/// nothing now, and answers carrying secrets are never kept.
#[tokio::test]
async fn anonymous_store_writes_through_idempotency_key_are_gone() {
    let (state, router) = app().await;
    let before = state.store.revision().await.expect("revision");
    for i in 0..20 {
        let response = router
            .clone()
            .oneshot(
                Request::post("/api/v1/orders")
                    .header("content-type", "application/json")
                    .header("idempotency-key", format!("anon-{i}"))
                    .body(Body::from("{}"))
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(state.store.revision().await.expect("revision"), before);
    assert_eq!(idempotency_records(&state).await, 0);

    // A bootstrap token is a secret: shown once, never kept for a replay
    // (a retry mints another) and marked for no cache.
    let body = serde_json::json!({"provider": "acme", "ttl_seconds": 600});
    let (s1, h1, first) = post_json(
        &router,
        "/api/v1/admin/driver-tokens",
        body.clone(),
        Some("k-2"),
    )
    .await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    assert_eq!(
        h1.get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );
    let (_, h2, second) =
        post_json(&router, "/api/v1/admin/driver-tokens", body, Some("k-2")).await;
    assert!(h2.get("idempotent-replayed").is_none());
    assert_ne!(first["token"], second["token"]);
    assert_eq!(idempotency_records(&state).await, 0, "no secret kept");
}

/// Security issue item 8: a controller client certificate (List/Apply/Delete
/// on every provider) is audited and lives at most an hour.
#[tokio::test]
async fn controller_certificates_are_audited_and_short_lived() {
    let (state, router) = app().await;
    let path = "/api/v1/admin/controller-certificates";
    let (s, _, err) = post_json(
        &router,
        path,
        serde_json::json!({"ttl_seconds": 86_400}),
        None,
    )
    .await;
    assert_eq!(
        (s, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("TTL_INVALID"))
    );
    let (s, h, issued) =
        post_json(&router, path, serde_json::json!({"ttl_seconds": 600}), None).await;
    assert_eq!(s, StatusCode::CREATED, "{issued}");
    assert_eq!(
        h.get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );
    let fingerprint = yunshu_pki::fingerprint(issued["certificate_pem"].as_str().expect("pem"))
        .expect("fingerprint");
    let (entries, _) = yunshu_store::records::list::<yunshu_domain::audit::AuditEntry>(
        &*state.store,
        yunshu_store::PageRequest::default(),
    )
    .await
    .expect("audit");
    let entry = entries
        .iter()
        .find(|e| e.action.as_str() == "controller_certificate.issue")
        .expect("an audit entry");
    assert_eq!(entry.actor.to_string(), "user:platform-admin");
    assert!(entry.target.as_str().contains(&fingerprint), "{entry:?}");
}

#[tokio::test]
async fn openapi_json_is_served_and_is_the_committed_contract() {
    let (_, router) = app().await;
    let (status, body) = get(&router, "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let served: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(served["info"]["version"], crate::version::VERSION);
    assert!(served["paths"]["/api/v1/orders/{id}/transitions"]["post"].is_object());
}

#[tokio::test]
async fn bad_query_and_path_parameters_get_the_error_body() {
    let (_, router) = app().await;
    for (path, code) in [
        ("/api/v1/orders?limit=-1", "QUERY_INVALID"),
        ("/api/v1/orders/o/lines/x/approve", "PATH_INVALID"),
    ] {
        let method = if path.ends_with("approve") {
            "POST"
        } else {
            "GET"
        };
        let response = router
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .header("authorization", "Bearer admin")
                    .header("content-type", "application/json")
                    .body(Body::from("{\"quantity\":1}"))
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("json body");
        assert_eq!(json["code"], code, "{path}");
    }
}

/// Security issue item 13: unknown methods fold into one metric label, so a
/// client cannot add time series by inventing methods.
#[tokio::test]
async fn unknown_http_methods_fold_into_one_metrics_label() {
    let (_, router) = app().await;
    for m in ["BREW", "PROPFIND", "X-INVENTED-1", "X-INVENTED-2"] {
        let _ = router
            .clone()
            .oneshot(
                Request::builder()
                    .method(m)
                    .uri("/api/v1/orders")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
    }
    let (_, body) = get_as(&router, "/metrics", Some("admin")).await;
    for m in ["BREW", "PROPFIND", "X-INVENTED"] {
        assert!(!body.contains(m), "{m} became a label");
    }
    assert!(body.contains("method=\"other\""), "{body}");
}

/// Security issue item 16: every answer, API and portal alike, carries the
/// security headers (no sniffing, no framing, no referrer off-site).
#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let (_, router) = app().await;
    for path in ["/healthz", "/api/v1/orders", "/api/v1/nope"] {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let h = response.headers();
        assert_eq!(
            h.get("x-content-type-options").map(|v| v.as_bytes()),
            Some(&b"nosniff"[..]),
            "{path}"
        );
        assert_eq!(
            h.get("x-frame-options").map(|v| v.as_bytes()),
            Some(&b"DENY"[..]),
            "{path}"
        );
        assert_eq!(
            h.get("referrer-policy").map(|v| v.as_bytes()),
            Some(&b"same-origin"[..]),
            "{path}"
        );
        let csp = h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
}

/// Security issue 16 (low): `/metrics` publishes every provider's capacity,
/// so it needs the scrape token or a caller who may see capacity or runs the
/// platform; anonymous callers get nothing.
#[tokio::test]
async fn metrics_need_the_scrape_token_or_a_platform_caller() {
    let (mut state, _) = app().await;
    state.metrics_token_sha256 = Some(yunshu_pki::sha256_hex(b"scrape-me"));
    let router = super::router(state);
    assert_eq!(get(&router, "/metrics").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get_as(&router, "/metrics", Some("not-the-token")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = get_as(&router, "/metrics", Some("scrape-me")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("yunshu_store_ready"), "{body}");
    // The installation's admin token runs the platform.
    assert_eq!(
        get_as(&router, "/metrics", Some("admin")).await.0,
        StatusCode::OK
    );
}

/// Security issue 16 (low): of the people, only those who see every
/// provider's capacity (the approver) or run the platform read `/metrics`; a
/// tenant, the auditor and a provider's operator (who sees its own provider
/// only) are forbidden.
#[tokio::test]
async fn metrics_are_not_for_tenants() {
    let app = crate::test_app::App::with_users().await;
    for (user, want) in [
        ("li", StatusCode::FORBIDDEN),
        ("wang", StatusCode::FORBIDDEN),
        ("qian", StatusCode::FORBIDDEN),
        ("zhou", StatusCode::OK),
        ("op", StatusCode::FORBIDDEN),
        ("he", StatusCode::OK),
    ] {
        let auth = app.login(user).await;
        let r = app.call("GET", "/metrics", None, &auth).await;
        assert_eq!(r.status, want, "{user}: {}", r.body);
    }
}

/// Security issue item 16: a portal page allows only scripts carrying this
/// response's nonce (the hydration bootstrap and what it loads); the nonce is
/// new on every page, and the page's scripts carry it.
#[tokio::test]
async fn portal_pages_allow_only_scripts_with_a_fresh_nonce() {
    let (state, _) = app().await;
    // No bundle needed: the page and its bootstrap script render without it.
    let router = crate::router_with_portal(state, std::path::Path::new("/nonexistent"));
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let response = router
            .clone()
            .oneshot(Request::get("/login").body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("no script nonce in {csp}"))
            .to_owned();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            !csp.contains("'unsafe-eval'") && !csp.contains("script-src 'unsafe-inline'"),
            "{csp}"
        );
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let html = String::from_utf8_lossy(&body);
        let scripts = html.matches("<script").count();
        assert!(scripts > 0, "the page has its hydration script");
        assert_eq!(
            html.matches(&format!("nonce=\"{nonce}\"")).count(),
            scripts,
            "every script carries the nonce: {html}"
        );
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "a fresh nonce per page");
}

/// Security issue item 9: a driver's endpoint becomes its certificate's name,
/// so wildcards and anything but an IP address or a host name are refused
/// before the bootstrap token is looked at.
#[tokio::test]
async fn driver_endpoints_must_be_plain_host_names_or_addresses() {
    let (_, router) = app().await;
    let register = |endpoint: &str| {
        serde_json::json!({"token": "ysd1.nope", "provider": "acme", "endpoint": endpoint,
            "csr_pem": "-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n"})
    };
    for bad in [
        "*.evil.example:7444",
        "*:7444",
        "evil..example:7444",
        "-evil.example:7444",
        "ev il.example:7444",
        "999.1.1.1:7444",
        "[::1:7444",
        "driver.example:0",
    ] {
        let (s, _, err) = post_json(&router, "/api/v1/drivers/register", register(bad), None).await;
        assert_eq!(
            (s, err["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("ENDPOINT_INVALID")),
            "{bad}: {err}"
        );
    }
    for good in [
        "driver-1.acme.example:7444",
        "127.0.0.1:7444",
        "[::1]:7444",
        "localhost:7444",
    ] {
        let (_, _, err) =
            post_json(&router, "/api/v1/drivers/register", register(good), None).await;
        assert_ne!(
            err["code"].as_str(),
            Some("ENDPOINT_INVALID"),
            "{good}: {err}"
        );
    }
}
