//! Suspending and resuming an information system (002 art. 18 "对存在重大安全
//! 风险问题且未及时整改的应用系统采取断网、下线、暂停服务等必要措施"; 004 art. 27 and
//! agreement art. 9 (15) "暂时中断该系统的云服务…事件处理完毕后恢复服务"), through
//! the real router: only the management unit decides, with a reason, each
//! decision audited with the record; the department sees why. (The servers
//! powered off and on: the e2e test `suspension.rs`.)

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::test_app::{App, Auth, code};

async fn new_system(app: &App, auth: &Auth, name: &str) -> String {
    let r = app.system_create(auth, name).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["number"].as_str().expect("number").to_owned()
}

async fn audited(app: &App, qian: &Auth, action: &str, sys: &str) -> Vec<Value> {
    let r = app
        .call(
            "GET",
            &format!("/api/v1/audit?action={action}&target=suspension/{sys}"),
            None,
            qian,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

/// 002 art. 18, 004 art. 27: the approver suspends a system with a reason
/// and lifts the suspension with another; each is audited with its reason;
/// the department sees the state and why. Refusals write nothing: 403 for the
/// department and the reviewer, 404 for another tenant's user and the
/// security administrator (no system of a tenant is theirs to see), 400 for a
/// blank or missing reason, 409 for a second suspension or a resumption of a
/// system not suspended.
#[tokio::test]
async fn seed_002_art_18_the_approver_suspends_and_resumes_a_system_audited() {
    let app = App::with_users().await;
    let (wang, zhao, zhou, sun, xu, qian) = (
        app.login("wang").await,
        app.login("zhao").await,
        app.login("zhou").await,
        app.login("sun").await,
        app.login("xu").await,
        app.login("qian").await,
    );
    let sys = new_system(&app, &wang, "暂停服务系统").await;
    let path = format!("/api/v1/systems/{sys}/suspension");
    let resume = format!("{path}/resume");
    let reason = json!({"reason": "高危漏洞逾期未整改（安全检查通报）"});

    // Never suspended: an empty history, for the department too.
    let r = app.call("GET", &path, None, &wang).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["suspended"], false, "{}", r.body);
    assert_eq!(r.body["history"], json!([]), "{}", r.body);

    let before = app.audit_count().await;
    let r = app.call("POST", &path, Some(reason.clone()), &wang).await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    let r = app.call("POST", &path, Some(reason.clone()), &sun).await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    for who in [&zhao, &xu] {
        let r = app.call("POST", &path, Some(reason.clone()), who).await;
        assert_eq!(
            code(&r),
            (StatusCode::NOT_FOUND, Some("SYSTEM_NOT_FOUND")),
            "{}",
            r.body
        );
    }
    let r = app.call("GET", &path, None, &zhao).await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("SYSTEM_NOT_FOUND")));
    for bad in [json!({"reason": "   "}), json!({})] {
        let r = app.call("POST", &path, Some(bad), &zhou).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    }
    let r = app.call("POST", &resume, Some(reason.clone()), &zhou).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("SYSTEM_NOT_SUSPENDED")),
        "{}",
        r.body
    );
    assert!(
        r.body["message_zh"]
            .as_str()
            .unwrap_or("")
            .contains("未处于暂停服务状态"),
        "{}",
        r.body
    );
    assert_eq!(app.audit_count().await, before, "a refusal writes nothing");

    // Suspended by the approver; twice is a conflict.
    let r = app.call("POST", &path, Some(reason.clone()), &zhou).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["suspended"], true, "{}", r.body);
    assert_eq!(r.body["current"]["by"], "user:zhou", "{}", r.body);
    let r = app.call("POST", &path, Some(reason.clone()), &zhou).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("SYSTEM_ALREADY_SUSPENDED")),
        "{}",
        r.body
    );
    assert!(
        r.body["message_zh"]
            .as_str()
            .unwrap_or("")
            .contains("已暂停服务"),
        "{}",
        r.body
    );
    // The department sees that and why (004 art. 27 "同步通知该单位").
    let r = app.call("GET", &path, None, &wang).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["suspended"], true, "{}", r.body);
    assert_eq!(
        r.body["current"]["reason"],
        "高危漏洞逾期未整改（安全检查通报）"
    );
    // The department cannot lift it either.
    let r = app
        .call("POST", &resume, Some(json!({"reason": "已整改"})), &wang)
        .await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    let r = app
        .call("POST", &resume, Some(json!({"reason": " "})), &zhou)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // Resumed once the event is dealt with; twice is a conflict.
    let r = app
        .call(
            "POST",
            &resume,
            Some(json!({"reason": "漏洞已修复，复测通过"})),
            &zhou,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["suspended"], false, "{}", r.body);
    assert!(r.body["current"].is_null(), "{}", r.body);
    let r = app
        .call("POST", &resume, Some(json!({"reason": "再次"})), &zhou)
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("SYSTEM_NOT_SUSPENDED"))
    );

    // Each decision audited once, with its reason.
    let s = audited(&app, &qian, "system.suspend", &sys).await;
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0]["actor"], "user:zhou", "{s:?}");
    assert!(
        s[0]["detail"].as_str().unwrap_or("").contains("高危漏洞"),
        "{s:?}"
    );
    let s = audited(&app, &qian, "system.resume", &sys).await;
    assert_eq!(s.len(), 1, "{s:?}");
    assert!(
        s[0]["detail"].as_str().unwrap_or("").contains("复测通过"),
        "{s:?}"
    );
    assert_eq!(app.audit_count().await, before + 2);

    // A second suspension keeps the first in the history.
    let r = app
        .call(
            "POST",
            &path,
            Some(json!({"reason": "再次发现风险"})),
            &zhou,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.call("GET", &path, None, &wang).await;
    let history = r.body["history"].as_array().cloned().unwrap_or_default();
    assert_eq!(history.len(), 2, "{}", r.body);
    assert_eq!(history[0]["resume_reason"], "漏洞已修复，复测通过");
    assert_eq!(history[0]["resumed_by"], "user:zhou");
    assert!(history[1]["resumed_at"].is_null(), "{}", r.body);
}

/// 004 art. 27 (the same measure under Beijing's rules): a system of
/// another department cannot be looked at through the suspension endpoints
/// — 404 whatever the verb, as for any object of another tenant.
#[tokio::test]
async fn seed_004_art_27_another_departments_suspension_is_not_found() {
    let app = App::with_users().await;
    let (wang, zhao, zhou) = (
        app.login("wang").await,
        app.login("zhao").await,
        app.login("zhou").await,
    );
    let sys = new_system(&app, &wang, "北京暂停系统").await;
    let path = format!("/api/v1/systems/{sys}/suspension");
    let r = app
        .call(
            "POST",
            &path,
            Some(json!({"reason": "严重影响平台安全"})),
            &zhou,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.call("GET", &path, None, &zhao).await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("SYSTEM_NOT_FOUND")));
    let r = app
        .call(
            "POST",
            &format!("{path}/resume"),
            Some(json!({"reason": "x"})),
            &zhao,
        )
        .await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("SYSTEM_NOT_FOUND")));
    let r = app
        .call("GET", "/api/v1/systems/110106999/suspension", None, &zhou)
        .await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("SYSTEM_NOT_FOUND")));
}

/// 002 art. 18, 004 art. 27 ("同步通知该单位") in the portal as the server
/// renders the system page: the approver is offered "暂停服务" with a reason
/// box, then "恢复服务"; the department sees "已暂停（原因：…）" and no form.
#[tokio::test]
async fn seed_002_art_18_the_system_page_offers_suspension_to_the_approver_and_shows_it_to_the_department()
 {
    // Real time: the portal's own API calls read the real clock.
    let app = App::with_users().await;
    let (wang, zhou) = (app.login("wang").await, app.login("zhou").await);
    let sys = new_system(&app, &wang, "门户暂停系统").await;
    let path = format!("/systems/{sys}");
    let html = app.portal_page(&path, &zhou).await;
    assert!(html.contains("id=\"suspension-form\""), "{html}");
    assert!(html.contains("暂停服务"), "{html}");
    let html = app.portal_page(&path, &wang).await;
    assert!(html.contains("正常提供服务"), "{html}");
    assert!(!html.contains("id=\"suspension-form\""), "{html}");

    let r = app
        .call(
            "POST",
            &format!("/api/v1/systems/{sys}/suspension"),
            Some(json!({"reason": "高危漏洞逾期未整改"})),
            &zhou,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let html = app.portal_page(&path, &wang).await;
    assert!(
        html.contains("已暂停（原因：高危漏洞逾期未整改）"),
        "{html}"
    );
    assert!(!html.contains("id=\"suspension-form\""), "{html}");
    let html = app.portal_page(&path, &zhou).await;
    assert!(html.contains("恢复服务"), "{html}");
    assert!(html.contains("id=\"suspension-form\""), "{html}");
}

/// 004 art. 27 ("暂时中断…恢复服务"), billing: a suspension for an event of
/// the department's own system does not end or pause the charge — two
/// identical Beijing systems delivered at the same instant, one suspended
/// for ten days of May, cost the same for May, and neither has a
/// `billing_until` (unlike the forced offline of 002 art. 14).
#[tokio::test]
async fn seed_004_art_27_a_suspended_system_is_still_charged() {
    let app = App::with_users_at(crate::test_app::cst(2026, 4, 1, 10)).await;
    let (li, wang, sun, zhou) = (
        app.login("li").await,
        app.login("wang").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let mut systems = Vec::new();
    for name in ["计费甲系统", "计费乙系统"] {
        let sys = new_system(&app, &li, name).await;
        let r = app
            .call(
                "POST",
                "/api/v1/orders",
                Some(
                    json!({"kind": "onboarding", "system": sys, "policy": "beijing",
                            "lines": [crate::test_app::line("web-01", 2)]}),
                ),
                &li,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id = r.body["id"].as_str().expect("id").to_owned();
        app.step(&li, &id, "submitted").await;
        app.step(&sun, &id, "accepted").await;
        app.step(&zhou, &id, "approved").await;
        app.step(&zhou, &id, "test_env_ready").await;
        app.step(&wang, &id, "delivered").await;
        systems.push(sys);
    }
    let path = format!("/api/v1/systems/{}/suspension", systems[0]);
    app.clock.set(crate::test_app::cst(2026, 5, 10, 9));
    let r = app
        .call(
            "POST",
            &path,
            Some(json!({"reason": "严重影响平台安全的事件"})),
            &zhou,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.clock.set(crate::test_app::cst(2026, 5, 20, 9));
    let r = app
        .call(
            "POST",
            &format!("{path}/resume"),
            Some(json!({"reason": "事件处理完毕"})),
            &zhou,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.clock.set(crate::test_app::cst(2026, 6, 15, 9));
    let cost = |sys: &str| format!("/api/v1/systems/{sys}/cost?month=2026-05");
    let suspended = app.call("GET", &cost(&systems[0]), None, &wang).await;
    let running = app.call("GET", &cost(&systems[1]), None, &wang).await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.body);
    assert!(
        suspended.body["total_fen"].as_u64().is_some_and(|t| t > 0),
        "{}",
        suspended.body
    );
    for k in ["total_fen", "billed_seconds", "billing_until"] {
        assert_eq!(
            suspended.body[k], running.body[k],
            "{k}: {} vs {}",
            suspended.body, running.body
        );
    }
    assert!(
        suspended.body["billing_until"].is_null(),
        "{}",
        suspended.body
    );
}
