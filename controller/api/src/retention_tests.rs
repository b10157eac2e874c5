//! Issue 17, "Exit keeps data for the retention period, then purges": an
//! exited system's data is kept for the policy's `data_retention` (002 art.
//! 13: "所涉及的数据资源和日志应保留 3 个月以备政府监管部门监管审计需要"), purged
//! by the timers on the due date, or earlier only by the management unit's
//! explicit, audited decision; a policy that keeps nothing (000 art. 16
//! "清除工作") purges at once. Through the real router and a manual clock;
//! the timers' pass as the leader runs it. (The servers powered off in the
//! meantime and deleted after the purge: `desired::graph::tests` and the e2e
//! test `exit_retention`.)

use axum::http::StatusCode;
use serde_json::json;
use yunshu_workflow::timers::{self, TickReport};

use crate::test_app::{App, Auth, code, cst, line};

async fn new_system(app: &App, auth: &Auth, name: &str) -> String {
    let r = app.system_create(auth, name).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["number"].as_str().expect("number").to_owned()
}

/// An exit order of `policy` for a new system, decided and `exited` (the
/// reconciler's move once the servers are off, made here by the approver).
async fn exited(app: &App, name: &str, policy: &str) -> String {
    let (wang, sun, zhou) = (
        app.login("wang").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let sys = new_system(app, &wang, name).await;
    let r = app
        .call(
            "POST",
            "/api/v1/orders",
            Some(json!({"kind": "exit", "system": sys, "policy": policy, "lines": [line("app-01", 1)]})),
            &wang,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    app.step(&wang, &id, "submitted").await;
    app.step(&sun, &id, "accepted").await;
    app.step(&zhou, &id, "approved").await;
    app.step(&zhou, &id, "exited").await;
    id
}

async fn tick(app: &App) -> TickReport {
    timers::tick(&*app.store, app.clock.now())
        .await
        .expect("tick")
}

async fn state(app: &App, auth: &Auth, id: &str) -> String {
    let r = app.order_get(auth, id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["state"].as_str().expect("state").to_owned()
}

async fn audited(app: &App, action: &str, id: &str) -> usize {
    let qian = app.login("qian").await;
    let r = app
        .call(
            "GET",
            &format!("/api/v1/audit?action={action}&target=work_order/{id}"),
            None,
            &qian,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().expect("items").len()
}

/// 002 art. 13: under Yongjia the data is kept 3 months from the exit; a
/// purge asked for before then is refused (409 `ORDER_RETENTION_RUNNING`,
/// naming the last day and the way to decide otherwise) and changes nothing;
/// the timers raise no overdue alarm for it, and on the due date purge the
/// order themselves, with a `purge_due` alarm raised and cleared.
#[tokio::test]
async fn seed_002_art_13_data_is_kept_for_the_retention_then_purged_on_the_due_date() {
    let app = App::with_users_at(cst(2025, 10, 20, 9)).await;
    let zhou = app.login("zhou").await;
    let id = exited(&app, "退出保留期系统", "yongjia").await;
    let r = app.order_get(&zhou, &id).await;
    assert_eq!(r.body["deadline"]["step"], "data_retention", "{}", r.body);
    assert_eq!(r.body["deadline"]["due_date"], "2026-01-20", "{}", r.body);

    let r = app.transition(&zhou, &id, "purged", None).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("ORDER_RETENTION_RUNNING"))
    );
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("2026-01-20"),
        "{}",
        r.body
    );
    assert_eq!(state(&app, &zhou, &id).await, "exited");

    // A day before the end: nothing; after it (24:00 CST of the last day).
    app.clock.set(cst(2026, 1, 20, 23));
    assert_eq!(tick(&app).await, TickReport::default());
    app.clock.set(cst(2026, 1, 21, 0));
    let report = tick(&app).await;
    assert_eq!((report.purged, report.overdue_raised), (1, 0), "{report:?}");
    assert_eq!(state(&app, &zhou, &id).await, "purged");
    let r = app
        .call("GET", "/api/v1/alarms?category=purge_due", None, &zhou)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let alarms = r.body["items"].as_array().expect("items");
    assert_eq!(alarms.len(), 1, "{}", r.body);
    assert!(!alarms[0]["cleared_at"].is_null(), "{}", r.body);
    assert_eq!(audited(&app, "order.transition", &id).await, 5);
    // A second pass does nothing more.
    assert_eq!(tick(&app).await.purged, 0);
}

/// 002 art. 13: purging before the end of the retention is an explicit
/// decision of the management unit: `POST /api/v1/orders/{id}/purge` with a
/// reason, by the approver only (the department gets 403 or 404, a blank
/// reason 400, an order not exited 409), audited as `order.purge_early`.
#[tokio::test]
async fn seed_002_art_13_an_early_purge_needs_the_approvers_audited_decision() {
    let app = App::with_users_at(cst(2025, 10, 20, 9)).await;
    let (wang, zhou) = (app.login("wang").await, app.login("zhou").await);
    let id = exited(&app, "提前清除系统", "yongjia").await;
    let path = format!("/api/v1/orders/{id}/purge");

    let r = app
        .call(
            "POST",
            &path,
            Some(json!({"reason": "单位撤并，数据已移交"})),
            &wang,
        )
        .await;
    assert!(
        matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{}: {}",
        r.status,
        r.body
    );
    let r = app
        .call("POST", &path, Some(json!({"reason": "  "})), &zhou)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = app.call("POST", &path, Some(json!({})), &zhou).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(state(&app, &zhou, &id).await, "exited");
    assert_eq!(audited(&app, "order.purge_early", &id).await, 0);

    let r = app
        .call(
            "POST",
            &path,
            Some(json!({"reason": "单位撤并，数据已移交"})),
            &zhou,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "purged");
    assert_eq!(audited(&app, "order.purge_early", &id).await, 1);

    // Not exited (purged already; or still approved): refused.
    let r = app
        .call("POST", &path, Some(json!({"reason": "再次清除"})), &zhou)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = app
        .call(
            "POST",
            "/api/v1/orders/WO-00000000-9999/purge",
            Some(json!({"reason": "不存在"})),
            &zhou,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}

/// 000 art. 16 ("收回云资源…做好相关数据、文档等资源移交和清除工作"): Datong and
/// Beijing keep nothing after the exit, so the purge is due at once — by the
/// approver's move or the next timers pass.
#[tokio::test]
async fn seed_000_art_16_a_policy_without_retention_purges_at_once() {
    let app = App::with_users_at(cst(2025, 10, 20, 9)).await;
    let zhou = app.login("zhou").await;
    let datong = exited(&app, "大同退出系统", "datong").await;
    let r = app.transition(&zhou, &datong, "purged", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let beijing = exited(&app, "北京退出系统", "beijing").await;
    assert_eq!(tick(&app).await.purged, 1);
    assert_eq!(state(&app, &zhou, &beijing).await, "purged");
}

/// 002 art. 13 in the portal, as the server renders the order page: an
/// exited order shows the last day its data is kept; the approver gets the
/// early-purge form (reason and confirmation), the department does not.
#[tokio::test]
async fn seed_002_art_13_the_order_page_shows_the_retention_and_offers_the_approver_an_early_purge()
{
    // Real time: the portal's own API calls read the real clock.
    let app = App::with_users().await;
    let (wang, zhou) = (app.login("wang").await, app.login("zhou").await);
    let id = exited(&app, "门户保留期系统", "yongjia").await;
    let due = app.order_get(&zhou, &id).await.body["deadline"]["due_date"]
        .as_str()
        .expect("due date")
        .to_owned();
    let path = format!("/orders/{id}");
    let html = app.portal_page(&path, &zhou).await;
    assert!(html.contains("id=\"retention-due\""), "{html}");
    assert!(html.contains(&due), "{due}: {html}");
    assert!(html.contains("id=\"purge-form\""), "{html}");
    let html = app.portal_page(&path, &wang).await;
    assert!(html.contains("id=\"retention-due\""), "{html}");
    assert!(!html.contains("id=\"purge-form\""), "{html}");
}
