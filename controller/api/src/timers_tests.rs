//! Time-driven behaviour through the real router and a manual clock: overdue
//! steps raise one alarm each (visible to the tenant, acknowledged by staff,
//! cleared when the step ends) and usage periods send their notice, expire and
//! force the system offline on the Yongjia 002 art. 14 dates.

use axum::http::StatusCode;
use chrono::NaiveDate;
use serde_json::{Value, json};
use yunshu_store::{Store, records};
use yunshu_workflow::timers::{self, TickReport};
use yunshu_workflow::usage::UsageTerm;

use crate::test_app::{App, Auth, code, cst, line};

async fn new_system(app: &App, auth: &Auth, name: &str) -> String {
    let r = app.system_create(auth, name).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["number"].as_str().expect("number").to_owned()
}

async fn yongjia_order(app: &App, auth: &Auth, sys: &str) -> String {
    order_under(app, auth, sys, "yongjia").await
}

async fn order_under(app: &App, auth: &Auth, sys: &str, policy: &str) -> String {
    let r = app
        .call(
            "POST",
            "/api/v1/orders",
            Some(json!({"kind": "onboarding", "system": sys, "policy": policy, "lines": [line("web-01", 2)]})),
            auth,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().expect("id").to_owned()
}

async fn tick(app: &App) -> TickReport {
    timers::tick(&*app.store, app.clock.now())
        .await
        .expect("tick")
}

async fn alarms(app: &App, auth: &Auth, query: &str) -> Vec<Value> {
    let r = app
        .call("GET", &format!("/api/v1/alarms{query}"), None, auth)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn an_overdue_step_raises_one_alarm_that_staff_acknowledge_and_the_step_clears() {
    // Friday before the 2025 National Day holiday.
    let app = App::with_users_at(cst(2025, 9, 26, 9)).await;
    let (li, zhao, sun) = (
        app.login("li").await,
        app.login("zhao").await,
        app.login("sun").await,
    );
    let sys = new_system(&app, &li, "不动产登记系统").await;
    let id = yongjia_order(&app, &li, &sys).await;
    let submitted = app.step(&li, &id, "submitted").await;
    // 3 working days (002 art. 9): Sun 28 Sep (调休), Mon 29, Tue 30 Sep.
    assert_eq!(submitted["deadline"]["due_date"], "2025-09-30");

    app.clock.set(cst(2025, 9, 30, 23));
    assert_eq!(tick(&app).await, TickReport::default(), "not late yet");

    // The holiday ends; nobody accepted the order in time.
    app.clock.set(cst(2025, 10, 9, 9));
    let first = tick(&app).await;
    assert_eq!(first.overdue_raised, 1);
    assert_eq!(tick(&app).await.overdue_raised, 0, "raised once only");

    let seen = alarms(&app, &sun, "?acknowledged=false&category=order_overdue").await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let alarm = &seen[0];
    assert_eq!(alarm["level"], "major");
    assert_eq!(alarm["level_zh"], "重要");
    assert_eq!(
        alarm["raised_at"], "2025-09-30T16:00:00Z",
        "at 24:00 CST of the due day"
    );
    assert!(
        alarm["trigger"]
            .as_str()
            .expect("trigger")
            .contains("002 art. 9"),
        "{alarm}"
    );
    assert!(
        alarm["content"].as_str().expect("content").contains(&id),
        "{alarm}"
    );
    let alarm_id = alarm["id"].as_str().expect("id").to_owned();

    // The tenant sees its own order's alarm; another tenant gets 404.
    assert_eq!(alarms(&app, &li, "").await.len(), 1);
    assert!(alarms(&app, &zhao, "").await.is_empty());
    let r = app
        .call("GET", &format!("/api/v1/alarms/{alarm_id}"), None, &zhao)
        .await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("ALARM_NOT_FOUND")));
    // A tenant user may see it but not acknowledge it.
    let ack = format!("/api/v1/alarms/{alarm_id}/ack");
    let r = app.call("POST", &ack, None, &li).await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    // The auditor and the platform admin see no alarms at all.
    let r = app
        .call("GET", "/api/v1/alarms", None, &app.login("qian").await)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // The reviewer accepts (late): the next pass clears the alarm.
    app.step(&sun, &id, "accepted").await;
    assert_eq!(tick(&app).await.overdue_cleared, 1);
    let r = app.call("POST", &ack, None, &sun).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["acknowledged_by"], "sun");
    assert!(r.body["cleared_at"].is_string(), "{}", r.body);
    let audits = app.audit_count().await;
    let r = app.call("POST", &ack, None, &sun).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("ALARM_ALREADY_ACKNOWLEDGED"))
    );
    assert_eq!(
        app.audit_count().await,
        audits,
        "a refused ack writes nothing"
    );
    assert!(
        alarms(&app, &sun, "?acknowledged=false").await.is_empty(),
        "nothing open"
    );
}

/// Puts a term on `sys` ending on `expires_on`, as if delivered long ago.
async fn term_ending(app: &App, sys: &str, expires_on: NaiveDate) {
    let (mut term, _) = records::get::<UsageTerm>(&*app.store, sys)
        .await
        .expect("read")
        .expect("term started at delivery");
    term.expires_on = expires_on;
    app.store
        .put(&records::key::<UsageTerm>(sys), records::encode(&term))
        .await
        .expect("write");
}

async fn deliver(app: &App, sys: &str, li: &Auth, wang: &Auth, sun: &Auth, zhou: &Auth) {
    deliver_under(app, sys, "yongjia", [li, wang, sun, zhou]).await;
}

/// Delivers an onboarding order of `sys` under `policy`; `[li, wang, sun, zhou]`.
async fn deliver_under(app: &App, sys: &str, policy: &str, who: [&Auth; 4]) -> String {
    let [li, wang, sun, zhou] = who;
    let id = order_under(app, li, sys, policy).await;
    app.step(li, &id, "submitted").await;
    app.step(sun, &id, "accepted").await;
    app.step(zhou, &id, "approved").await;
    app.step(zhou, &id, "test_env_ready").await;
    app.step(wang, &id, "delivered").await;
    id
}

#[tokio::test]
async fn usage_period_notice_expiry_and_forced_offline_follow_yongjia_art_14() {
    let app = App::with_users_at(cst(2025, 10, 13, 10)).await;
    let (li, wang, zhao, sun, zhou) = (
        app.login("li").await,
        app.login("wang").await,
        app.login("zhao").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let a = new_system(&app, &li, "甲系统").await;
    let b = new_system(&app, &li, "乙系统").await;
    let term_path = |s: &str| format!("/api/v1/systems/{s}/usage-term");
    let r = app.call("GET", &term_path(&a), None, &li).await;
    assert_eq!(
        code(&r),
        (StatusCode::NOT_FOUND, Some("USAGE_TERM_NOT_FOUND")),
        "no period before delivery"
    );
    deliver(&app, &a, &li, &wang, &sun, &zhou).await;
    deliver(&app, &b, &li, &wang, &sun, &zhou).await;
    // Delivery confirmation starts a 3-year period.
    let r = app.call("GET", &term_path(&a), None, &li).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (&r.body["starts_on"], &r.body["expires_on"]),
        (&json!("2025-10-13"), &json!("2028-10-13"))
    );
    let r = app.call("GET", &term_path(&a), None, &zhao).await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("SYSTEM_NOT_FOUND")));

    // Both periods end on Tuesday 30 June 2026 (dates the shipped calendar covers).
    let end = NaiveDate::from_ymd_opt(2026, 6, 30).expect("date");
    term_ending(&app, &a, end).await;
    term_ending(&app, &b, end).await;
    // A's record is as written before terms kept their policy: the first pass
    // takes it from the delivered onboarding order.
    let (mut legacy, _) = records::get::<UsageTerm>(&*app.store, &a)
        .await
        .expect("read")
        .expect("term");
    legacy.policy = None;
    app.store
        .put(&records::key::<UsageTerm>(&a), records::encode(&legacy))
        .await
        .expect("write");

    app.clock.set(cst(2026, 5, 29, 9));
    assert_eq!(tick(&app).await.notices_sent, 0, "more than a month left");
    let r = app.call("GET", &term_path(&a), None, &li).await;
    assert_eq!(r.body["policy"], "yongjia", "{}", r.body);
    app.clock.set(cst(2026, 5, 30, 9));
    assert_eq!(tick(&app).await.notices_sent, 2, "one month before: notice");
    assert_eq!(tick(&app).await.notices_sent, 0, "once");
    let notices = alarms(&app, &wang, "?category=usage_expiring").await;
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(alarms(&app, &zhao, "").await.is_empty());
    // The tenant admin acknowledges its own notice.
    let nid = notices[0]["id"].as_str().expect("id");
    let r = app
        .call("POST", &format!("/api/v1/alarms/{nid}/ack"), None, &wang)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // B asks for an extension before the end; a tenant user may not, and an
    // extension to a date before the end is refused.
    let ext = |s: &str| format!("/api/v1/systems/{s}/usage-term/extension-request");
    let body = json!({"until": "2027-06-30", "reason": "二期建设未完成"});
    let r = app.call("POST", &ext(&b), Some(body.clone()), &li).await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    let r = app
        .call(
            "POST",
            &ext(&b),
            Some(json!({"until": "2026-01-01", "reason": "x"})),
            &wang,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("USAGE_EXTENSION_REFUSED"))
    );
    let r = app.call("POST", &ext(&b), Some(body), &wang).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The day after the end: A (no request) expires; B does not. The forced
    // offline waits for the management unit's approval (经政务云主管部门批准).
    app.clock.set(cst(2026, 7, 1, 9));
    assert_eq!(tick(&app).await.expired, 1);
    let r = app.call("GET", &term_path(&a), None, &li).await;
    assert!(r.body["expired_at"].is_string(), "{}", r.body);
    assert!(r.body["offline_due"].is_null(), "not approved: {}", r.body);
    let r = app.call("GET", &term_path(&b), None, &li).await;
    assert!(r.body["expired_at"].is_null(), "{}", r.body);
    // A request after the end is too late (使用期满前提出申请) and cannot
    // hold off the offline.
    let r = app
        .call(
            "POST",
            &ext(&a),
            Some(json!({"until": "2027-06-30", "reason": "迟到的申请"})),
            &wang,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("USAGE_EXTENSION_REFUSED"))
    );
    app.clock.set(cst(2026, 7, 22, 9));
    assert_eq!(
        tick(&app).await.taken_offline,
        0,
        "never without approval (15 working days after the end have passed)"
    );

    // The approver (not the tenant) approves A on Wednesday 22 July: 15
    // working days from then = Wednesday 12 August 2026. B (extension
    // pending) cannot be.
    let offline = |s: &str| format!("/api/v1/systems/{s}/usage-term/force-offline");
    let r = app.call("POST", &offline(&a), None, &wang).await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    let r = app.call("POST", &offline(&b), None, &zhou).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("USAGE_OFFLINE_REFUSED"))
    );
    let r = app.call("POST", &offline(&a), None, &zhou).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["offline_due"], "2026-08-12", "{}", r.body);
    assert_eq!(r.body["offline_approved"]["by"], "user:zhou", "{}", r.body);
    let r = app.call("POST", &offline(&a), None, &zhou).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("USAGE_OFFLINE_REFUSED")),
        "approved once"
    );

    app.clock.set(cst(2026, 8, 12, 23));
    assert_eq!(tick(&app).await.taken_offline, 0, "still inside the window");
    app.clock.set(cst(2026, 8, 13, 9));
    assert_eq!(tick(&app).await.taken_offline, 1);
    let r = app.call("GET", &term_path(&a), None, &li).await;
    assert!(r.body["offline_at"].is_string(), "{}", r.body);
    assert_eq!(
        r.body["backups_kept_until"], "2026-11-13",
        "3 months of backups"
    );

    // The approver grants B's extension; A, offline, cannot be extended.
    let extend = |s: &str| format!("/api/v1/systems/{s}/usage-term/extend");
    let r = app
        .call(
            "POST",
            &extend(&b),
            Some(json!({"until": "2027-06-30"})),
            &wang,
        )
        .await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    let r = app
        .call(
            "POST",
            &extend(&b),
            Some(json!({"until": "2030-01-01"})),
            &zhou,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("USAGE_EXTENSION_REFUSED")),
        "more than 3 years"
    );
    let r = app
        .call(
            "POST",
            &extend(&b),
            Some(json!({"until": "2027-06-30"})),
            &zhou,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["expires_on"], "2027-06-30");
    assert!(r.body["extension_requested"].is_null());
    let r = app
        .call(
            "POST",
            &extend(&a),
            Some(json!({"until": "2027-06-30"})),
            &zhou,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("USAGE_EXTENSION_REFUSED"))
    );
    assert_eq!(tick(&app).await, TickReport::default());
}

/// An operator's policy with every usage step, shorter than Yongjia's so the
/// whole period fits the shipped calendar; no `offline_backup_retention`.
const SHORT_USAGE_POLICY: &str = r#"
name = "short"
title = "测试用短使用期规则"

[steps.usage_period]
amount = 6
unit = "months"
source = "test art. 14"

[steps.usage_renewal_notice]
amount = 10
unit = "natural_days"
source = "test art. 14"

[steps.forced_offline_after_expiry]
amount = 2
unit = "working_days"
source = "test art. 14"
"#;

/// 002 art. 14 is Yongjia's rule: the usage period, its notice and the forced
/// offline are read from the order's policy. Beijing (004) and Datong (000)
/// set no usage period, so their systems never get one — no notice, no
/// expiry, no forced offline — and an operator's policy times its own.
#[tokio::test]
async fn usage_period_002_art_14_comes_from_the_policy_offline_ends_the_charge_none_under_beijing_004_datong_000()
 {
    let app = App::with_users_at(cst(2025, 10, 13, 10)).await;
    let (li, wang, sun, zhou) = (
        app.login("li").await,
        app.login("wang").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let r = app
        .call_text("PUT", "/api/v1/policies/short", SHORT_USAGE_POLICY, &zhou)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let who = [&li, &wang, &sun, &zhou];
    let term_path = |s: &str| format!("/api/v1/systems/{s}/usage-term");
    let mut systems = Vec::new();
    for policy in ["yongjia", "beijing", "datong", "short"] {
        let sys = new_system(&app, &li, &format!("{policy}系统")).await;
        deliver_under(&app, &sys, policy, who).await;
        systems.push(sys);
    }
    let [y, b, d, s] = [0, 1, 2, 3].map(|i| systems[i].clone());
    let r = app.call("GET", &term_path(&y), None, &li).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (
            &r.body["policy"],
            &r.body["expires_on"],
            &r.body["notice_on"]
        ),
        (
            &json!("yongjia"),
            &json!("2028-10-13"),
            &json!("2028-09-13")
        ),
        "3 years, notice 1 month before (002 art. 14)"
    );
    for sys in [&b, &d] {
        let r = app.call("GET", &term_path(sys), None, &li).await;
        assert_eq!(
            code(&r),
            (StatusCode::NOT_FOUND, Some("USAGE_TERM_NOT_FOUND")),
            "no usage period under a policy without one"
        );
    }
    let r = app.call("GET", &term_path(&s), None, &li).await;
    assert_eq!(
        (
            &r.body["policy"],
            &r.body["expires_on"],
            &r.body["notice_on"]
        ),
        (&json!("short"), &json!("2026-04-13"), &json!("2026-04-03")),
        "{}",
        r.body
    );

    // Only the operator's short period acts within the shipped calendar (the
    // other steps' overdue alarms are not this test's).
    let usage_acts = |r: TickReport| (r.notices_sent, r.expired, r.taken_offline);
    app.clock.set(cst(2026, 4, 2, 9));
    assert_eq!(usage_acts(tick(&app).await), (0, 0, 0));
    app.clock.set(cst(2026, 4, 3, 9));
    assert_eq!(tick(&app).await.notices_sent, 1, "10 days before the end");
    app.clock.set(cst(2026, 4, 14, 9));
    let report = tick(&app).await;
    assert_eq!((report.expired, report.taken_offline), (1, 0));
    let r = app
        .call(
            "POST",
            &format!("/api/v1/systems/{s}/usage-term/force-offline"),
            None,
            &zhou,
        )
        .await;
    assert_eq!(
        r.body["offline_due"], "2026-04-16",
        "2 working days: {}",
        r.body
    );
    app.clock.set(cst(2026, 4, 16, 23));
    assert_eq!(tick(&app).await.taken_offline, 0);
    app.clock.set(cst(2026, 4, 17, 9));
    assert_eq!(tick(&app).await.taken_offline, 1);
    let r = app.call("GET", &term_path(&s), None, &li).await;
    assert!(r.body["offline_at"].is_string(), "{}", r.body);
    assert!(
        r.body["backups_kept_until"].is_null(),
        "the policy keeps no backups after offline: {}",
        r.body
    );
    // 002 art. 14: the forced offline ends the charge — the month of the
    // offline is charged up to it, the months after are not charged at all
    // (the Beijing system, still in use, is).
    let cost = |sys: &str, month: &str| format!("/api/v1/systems/{sys}/cost?month={month}");
    app.clock.set(cst(2026, 6, 15, 9));
    let r = app.call("GET", &cost(&s, "2026-04"), None, &wang).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["billing_until"], "2026-04-17T01:00:00Z",
        "{}",
        r.body
    );
    assert!(
        r.body["total_fen"].as_u64().is_some_and(|t| t > 0),
        "{}",
        r.body
    );
    let r = app.call("GET", &cost(&s, "2026-05"), None, &wang).await;
    assert_eq!(
        (&r.body["billed_seconds"], &r.body["total_fen"]),
        (&json!(0), &json!(0)),
        "{}",
        r.body
    );
    let r = app.call("GET", &cost(&b, "2026-05"), None, &wang).await;
    assert!(
        r.body["total_fen"].as_u64().is_some_and(|t| t > 0),
        "{}",
        r.body
    );

    // Years later nothing has happened to the Beijing and Datong systems.
    app.clock.set(cst(2026, 12, 31, 9));
    assert_eq!(usage_acts(tick(&app).await), (0, 0, 0));
    let usage: Vec<_> = alarms(&app, &wang, "")
        .await
        .into_iter()
        .filter(|a| {
            a["category"]
                .as_str()
                .is_some_and(|c| c.starts_with("usage"))
        })
        .collect();
    assert_eq!(
        usage.len(),
        2,
        "the short system's notice and expiry only: {usage:?}"
    );
    for a in &usage {
        let subject = a["subject"].as_str().unwrap_or_default();
        assert!(subject.ends_with(&s), "{a}");
    }
}
