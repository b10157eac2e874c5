//! The portal's usage-period section (seed 002 art. 14) as the server renders
//! the system page: an expired period offers the management unit's approver
//! (`order_approve`) the forced offline and the department neither that nor
//! an extension request (asked for before the end only). The browser tests
//! (`tests/e2e/tests/portal.rs`) cannot reach an expired period: it takes
//! three years of real time.

use axum::http::StatusCode;
use serde_json::json;
use yunshu_store::{Store, records};
use yunshu_workflow::usage::UsageTerm;

use crate::test_app::{App, line};

#[tokio::test]
async fn seed_002_art_14_the_portal_offers_the_forced_offline_of_an_expired_period_to_the_approver()
{
    // Real time: the portal's own API calls read the real clock, and the
    // sessions must be valid for them.
    let app = App::with_users().await;
    let (li, wang, sun, zhou) = (
        app.login("li").await,
        app.login("wang").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let r = app.system_create(&li, "门户使用期系统").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let sys = r.body["number"].as_str().expect("number").to_owned();
    let r = app
        .call(
            "POST",
            "/api/v1/orders",
            Some(json!({"kind": "onboarding", "system": sys, "policy": "yongjia", "lines": [line("web-01", 1)]})),
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
    let path = format!("/systems/{sys}");
    // Running: the department may ask for an extension; nothing to force.
    let html = app.portal_page(&path, &wang).await;
    assert!(html.contains("id=\"usage-request\""), "{html}");
    assert!(!html.contains("id=\"usage-force-offline\""), "{html}");

    // The period ended the day before yesterday (no extension asked for).
    let (mut term, _) = records::get::<UsageTerm>(&*app.store, &sys)
        .await
        .expect("read")
        .expect("term started at delivery");
    term.expires_on = (app.clock.now() - chrono::Duration::days(2)).date_naive();
    app.store
        .put(&records::key::<UsageTerm>(&sys), records::encode(&term))
        .await
        .expect("write");
    let report = yunshu_workflow::timers::tick(&*app.store, app.clock.now())
        .await
        .expect("tick");
    assert_eq!(report.expired, 1);

    let html = app.portal_page(&path, &zhou).await;
    assert!(html.contains("id=\"usage-expired\""), "{html}");
    assert!(html.contains("id=\"usage-force-offline\""), "{html}");
    assert!(html.contains("批准强制下线"), "{html}");
    let html = app.portal_page(&path, &wang).await;
    assert!(html.contains("id=\"usage-expired\""), "{html}");
    assert!(!html.contains("id=\"usage-force-offline\""), "{html}");
    assert!(!html.contains("id=\"usage-request\""), "too late: {html}");
}
