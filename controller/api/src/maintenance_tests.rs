//! Planned maintenance announced ahead (000 art. 18, 004 art. 19) through the
//! HTTP API: the notice on the working-day calendar, emergency repairs, bad
//! input, and who sees which window.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::test_app::{App, code, cst};

fn window(provider: &str, zones: &[&str], starts: &str, ends: &str) -> Value {
    json!({
        "provider": provider,
        "zones": zones,
        "starts_at": starts,
        "ends_at": ends,
        "affects": "存储扩容期间云主机可能短暂中断",
        "reason": "存储集群扩容",
    })
}

fn rfc(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339()
}

async fn list(app: &App, auth: &crate::test_app::Auth) -> Vec<Value> {
    let r = app.call("GET", "/api/v1/maintenance", None, auth).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

/// A resource of `system` placed on `provider`/`zone`, as the reconciler
/// records it.
async fn place(app: &App, system: &str, provider: &str, zone: &str) {
    use yunshu_domain::resource::{Cidr, Placement, Resource, ResourceSpec, VpcSpec};
    let mut res = Resource::new(
        yunshu_domain::ResourceId::new(format!("vpc-{system}-a")).expect("id"),
        system.parse().expect("number"),
        None,
        ResourceSpec::Vpc(VpcSpec {
            cidr: Cidr::try_from("10.0.0.0/16".to_owned()).expect("cidr"),
        }),
        app.clock.now(),
    )
    .expect("resource");
    res.place(Placement {
        provider: yunshu_domain::ProviderId::new(provider).expect("provider"),
        zone: yunshu_domain::ids::ZoneId::new(zone).expect("zone"),
        network_area: None,
        pool: None,
        host: None,
    });
    yunshu_store::records::create(&*app.store, &res)
        .await
        .expect("resource write");
}

#[tokio::test]
async fn seed_000_art_18_and_004_art_19_maintenance_is_announced_three_working_days_ahead() {
    // Friday 4 December 2026, 10:00: Mon 7 (1), Tue 8 (2), Wed 9 (3) are the
    // notice days; the window may start when Wednesday is over.
    let app = App::with_users_at(cst(2026, 12, 4, 10)).await;
    let op = app.login("op").await;
    let before = app.audit_count().await;
    let early = window(
        "sim",
        &[],
        &rfc(cst(2026, 12, 9, 22)),
        &rfc(cst(2026, 12, 10, 2)),
    );
    let r = app
        .call("POST", "/api/v1/maintenance", Some(early), &op)
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("MAINTENANCE_NOTICE_TOO_SHORT")),
        "{}",
        r.body
    );
    let earliest = cst(2026, 12, 10, 0);
    assert_eq!(r.body["details"]["earliest_start"], json!(earliest));
    assert_eq!(r.body["details"]["working_days"], 3);
    assert!(
        r.body["message_zh"]
            .as_str()
            .is_some_and(|m| m.contains("3 个工作日") && m.contains("2026-12-10 00:00:00"))
    );
    assert_eq!(
        app.audit_count().await,
        before,
        "nothing written on refusal"
    );
    assert!(list(&app, &op).await.is_empty());

    let on_time = window("sim", &[], &rfc(earliest), &rfc(cst(2026, 12, 10, 4)));
    let r = app
        .call("POST", "/api/v1/maintenance", Some(on_time), &op)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["emergency"], false);
    assert_eq!(r.body["status"], "upcoming");
    assert_eq!(r.body["notice"]["working_days"], 3);
    assert_eq!(r.body["notice"]["earliest_start"], json!(earliest));
    let source = r.body["notice"]["source"].as_str().unwrap_or_default();
    assert!(
        source == "000 art. 18" || source == "004 art. 19",
        "{source}"
    );
    assert_eq!(app.audit_count().await, before + 1);
    assert_eq!(list(&app, &op).await.len(), 1);

    // Across a holiday: Thursday 30 April 2026, 1–5 May off (劳动节): Wed 6
    // (1), Thu 7 (2), Fri 8 (3); the earliest start is Saturday 9 May 00:00.
    app.clock.set(cst(2026, 4, 30, 10));
    let r = app
        .call(
            "POST",
            "/api/v1/maintenance",
            Some(window(
                "sim",
                &[],
                &rfc(cst(2026, 5, 8, 20)),
                &rfc(cst(2026, 5, 9, 6)),
            )),
            &op,
        )
        .await;
    assert_eq!(
        code(&r).1,
        Some("MAINTENANCE_NOTICE_TOO_SHORT"),
        "{}",
        r.body
    );
    assert_eq!(
        r.body["details"]["earliest_start"],
        json!(cst(2026, 5, 9, 0))
    );
}

#[tokio::test]
async fn seed_000_art_18_emergency_repair_is_exempt_but_needs_a_reason() {
    let now = cst(2026, 12, 4, 10);
    let app = App::with_users_at(now).await;
    let op = app.login("op").await;
    let before = app.audit_count().await;
    let mut body = window("sim", &["z1"], &rfc(now), &rfc(cst(2026, 12, 4, 12)));
    body["emergency"] = json!(true);
    let r = app
        .call("POST", "/api/v1/maintenance", Some(body.clone()), &op)
        .await;
    assert_eq!(
        code(&r),
        (
            StatusCode::BAD_REQUEST,
            Some("MAINTENANCE_EMERGENCY_REASON_REQUIRED")
        ),
        "{}",
        r.body
    );
    assert_eq!(app.audit_count().await, before);
    body["emergency_reason"] = json!("存储控制器故障，须立即更换");
    let r = app
        .call("POST", "/api/v1/maintenance", Some(body), &op)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["emergency"], true);
    assert_eq!(r.body["emergency_reason"], "存储控制器故障，须立即更换");
    assert!(r.body["notice"].is_null(), "{}", r.body);
    assert_eq!(r.body["zones"], json!(["z1"]));
    assert_eq!(r.body["status"], "in_progress");
    assert_eq!(app.audit_count().await, before + 1);
}

#[tokio::test]
async fn maintenance_hostile_inputs_are_refused_and_write_nothing() {
    let now = cst(2026, 12, 4, 10);
    let app = App::with_users_at(now).await;
    let op = app.login("op").await;
    let wang = app.login("wang").await;
    let zhou = app.login("zhou").await;
    let later = cst(2026, 12, 14, 0);
    let before = app.audit_count().await;
    let cases: Vec<(&crate::test_app::Auth, Value, StatusCode, Option<&str>)> = vec![
        // end before start, and end equal to start
        (
            &op,
            window("sim", &[], &rfc(later), &rfc(cst(2026, 12, 13, 0))),
            StatusCode::BAD_REQUEST,
            Some("MAINTENANCE_END_NOT_AFTER_START"),
        ),
        (
            &op,
            window("sim", &[], &rfc(later), &rfc(later)),
            StatusCode::BAD_REQUEST,
            Some("MAINTENANCE_END_NOT_AFTER_START"),
        ),
        // another provider's maintenance
        (
            &op,
            window("taiji", &[], &rfc(later), &rfc(cst(2026, 12, 14, 4))),
            StatusCode::FORBIDDEN,
            Some("FORBIDDEN"),
        ),
        // a tenant announcing
        (
            &wang,
            window("sim", &[], &rfc(later), &rfc(cst(2026, 12, 14, 4))),
            StatusCode::FORBIDDEN,
            Some("FORBIDDEN"),
        ),
        // unknown field, bad provider id, empty text, not a time
        (
            &op,
            {
                let mut w = window("sim", &[], &rfc(later), &rfc(cst(2026, 12, 14, 4)));
                w["notice_days"] = json!(0);
                w
            },
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            &zhou,
            window("../etc", &[], &rfc(later), &rfc(cst(2026, 12, 14, 4))),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            &op,
            {
                let mut w = window("sim", &[], &rfc(later), &rfc(cst(2026, 12, 14, 4)));
                w["affects"] = json!("");
                w
            },
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            &op,
            window("sim", &[], "next monday", &rfc(cst(2026, 12, 14, 4))),
            StatusCode::BAD_REQUEST,
            None,
        ),
        // an emergency reason does not shorten planned work's notice
        (
            &op,
            {
                let mut w = window("sim", &[], &rfc(now), &rfc(cst(2026, 12, 4, 12)));
                w["emergency_reason"] = json!("想早点做");
                w
            },
            StatusCode::CONFLICT,
            Some("MAINTENANCE_NOTICE_TOO_SHORT"),
        ),
    ];
    for (auth, body, status, want) in cases {
        let r = app
            .call("POST", "/api/v1/maintenance", Some(body.clone()), auth)
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        if let Some(c) = want {
            assert_eq!(r.body["code"], c, "{body}");
        }
        assert!(r.body["message_zh"].is_string(), "{}", r.body);
    }
    assert_eq!(app.audit_count().await, before, "nothing written");
    assert!(list(&app, &zhou).await.is_empty());

    // the approver may announce for any provider
    let r = app
        .call(
            "POST",
            "/api/v1/maintenance",
            Some(window(
                "taiji",
                &[],
                &rfc(later),
                &rfc(cst(2026, 12, 14, 4)),
            )),
            &zhou,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn tenants_see_only_maintenance_touching_their_resources_and_cancel_is_audited() {
    let app = App::with_users_at(cst(2026, 12, 4, 10)).await;
    let op = app.login("op").await;
    let wang = app.login("wang").await;
    let zhao = app.login("zhao").await;
    let zhou = app.login("zhou").await;
    let r = app.system_create(&wang, "不动产登记系统").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let number = r.body["number"].as_str().expect("number").to_owned();
    place(&app, &number, "sim", "z1").await;

    let (s, e) = (rfc(cst(2026, 12, 14, 0)), rfc(cst(2026, 12, 14, 4)));
    let mut ids = Vec::new();
    for (auth, provider, zones) in [
        (&op, "sim", vec![]),
        (&op, "sim", vec!["z1"]),
        (&op, "sim", vec!["z2"]),
        (&zhou, "taiji", vec![]),
    ] {
        let r = app
            .call(
                "POST",
                "/api/v1/maintenance",
                Some(window(provider, &zones, &s, &e)),
                auth,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.body["id"].as_str().expect("id").to_owned());
    }
    let seen = |items: Vec<Value>| {
        let mut v: Vec<String> = items
            .iter()
            .filter_map(|w| w["id"].as_str().map(str::to_owned))
            .collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    // wang's system is on sim/z1: the whole-provider and the z1 windows
    assert_eq!(
        seen(list(&app, &wang).await),
        sorted(vec![ids[0].clone(), ids[1].clone()])
    );
    // zhao's tenant has nothing placed anywhere: nothing at all
    assert!(list(&app, &zhao).await.is_empty());
    // the provider operator: its own provider's
    assert_eq!(seen(list(&app, &op).await), sorted(ids[..3].to_vec()));
    // the approver: all
    assert_eq!(seen(list(&app, &zhou).await), sorted(ids.clone()));

    // cancel: hidden from zhao, not wang's to cancel, needs a reason, audited
    let path = format!("/api/v1/maintenance/{}/cancel", ids[1]);
    let reason = json!({"reason": "扩容设备未到货"});
    let r = app.call("POST", &path, Some(reason.clone()), &zhao).await;
    assert_eq!(
        code(&r),
        (StatusCode::NOT_FOUND, Some("MAINTENANCE_NOT_FOUND"))
    );
    let r = app.call("POST", &path, Some(reason.clone()), &wang).await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    let r = app
        .call(
            "POST",
            &format!("/api/v1/maintenance/{}/cancel", ids[3]),
            Some(reason.clone()),
            &op,
        )
        .await;
    assert_eq!(code(&r).0, StatusCode::NOT_FOUND, "another provider's");
    let r = app.call("POST", &path, Some(json!({})), &op).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let before = app.audit_count().await;
    let r = app.call("POST", &path, Some(reason.clone()), &op).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["cancelled"]["reason"], "扩容设备未到货");
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(app.audit_count().await, before + 1);
    let r = app.call("POST", &path, Some(reason), &op).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("MAINTENANCE_CANCEL_REFUSED"))
    );
    assert_eq!(app.audit_count().await, before + 1);
    let shown = list(&app, &wang).await;
    assert!(
        shown
            .iter()
            .any(|w| w["id"] == ids[1].as_str() && w["cancelled"]["reason"] == "扩容设备未到货")
    );
}

/// 000 art. 18 in the portal, as the server renders the dashboard: the
/// department whose system runs on the provider sees the window, in Chinese;
/// another department sees that none concerns it.
#[tokio::test]
async fn seed_000_art_18_the_dashboard_lists_maintenance_for_the_affected_department() {
    // Real time: the portal's own API calls read the real clock. An emergency
    // repair needs no notice, so the test does not depend on which years the
    // working-day calendar holds.
    let app = App::with_users().await;
    let now = app.clock.now();
    let (op, wang, zhao) = (
        app.login("op").await,
        app.login("wang").await,
        app.login("zhao").await,
    );
    let r = app.system_create(&wang, "门户维护公告系统").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let number = r.body["number"].as_str().expect("number").to_owned();
    place(&app, &number, "sim", "z1").await;
    let mut body = window(
        "sim",
        &["z1"],
        &rfc(now + chrono::TimeDelta::hours(2)),
        &rfc(now + chrono::TimeDelta::hours(5)),
    );
    body["emergency"] = json!(true);
    body["emergency_reason"] = json!("存储控制器故障，须立即更换");
    let r = app
        .call("POST", "/api/v1/maintenance", Some(body), &op)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let html = app.portal_page("/", &wang).await;
    assert!(html.contains("计划维护公告"), "{html}");
    assert!(html.contains("id=\"maintenance\""), "{html}");
    assert!(html.contains("存储扩容期间云主机可能短暂中断"), "{html}");
    assert!(html.contains("故障抢修"), "{html}");
    assert!(html.contains("存储控制器故障，须立即更换"), "{html}");
    assert!(html.contains("待开始"), "{html}");
    let html = app.portal_page("/", &zhao).await;
    assert!(!html.contains("id=\"maintenance\""), "{html}");
    assert!(!html.contains("存储扩容期间云主机可能短暂中断"), "{html}");
    assert!(html.contains("近期没有影响本单位信息系统的维护"), "{html}");
}
