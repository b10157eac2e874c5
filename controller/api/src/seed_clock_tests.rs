//! Issue 17, "Clocks that really time the steps": the seeds' step limits timed
//! through the real router and a manual clock — a change or exit review from
//! submission to the decision (seed 002 art. 12, 13), the test period from the
//! test environment under Yongjia (002 art. 10) or from delivery confirmation
//! under Datong (000 art. 14) and its recorded extension, emergency changes
//! only where the policy allows them (002 art. 12), and the onboarding order's
//! own exit path (reviewed like an exit; past months' charges kept).

use axum::http::StatusCode;
use serde_json::{Value, json};
use yunshu_workflow::timers::{self, TickReport};

use crate::test_app::{App, Auth, code, cst, line};

async fn new_system(app: &App, auth: &Auth, name: &str) -> String {
    let r = app.system_create(auth, name).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["number"].as_str().expect("number").to_owned()
}

async fn new_order(app: &App, auth: &Auth, sys: &str, kind: &str, policy: &str) -> String {
    let r = app
        .call(
            "POST",
            "/api/v1/orders",
            Some(json!({"kind": kind, "system": sys, "policy": policy, "lines": [line("app-01", 2)]})),
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

async fn overdue_alarms(app: &App, auth: &Auth) -> Vec<Value> {
    let r = app
        .call("GET", "/api/v1/alarms?category=order_overdue", None, auth)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().expect("items").clone()
}

/// Seed 002 (永嘉) art. 12: "政务云平台主管部门应当在 5 个工作日内完成变更审核" —
/// the review is one step from submission to the decision. Acceptance and
/// expert review do not stop its clock; a review still open after the fifth
/// working day is overdue on the order and raises one alarm, cleared by the
/// late approval.
#[tokio::test]
async fn seed_002_art_12_change_review_is_timed_from_submission_to_approval() {
    let app = App::with_users_at(cst(2025, 9, 25, 8)).await;
    let (wang, sun, zhou) = (
        app.login("wang").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let sys = new_system(&app, &wang, "变更审核计时系统").await;
    let change = new_order(&app, &wang, &sys, "change", "yongjia").await;
    // Thu 25 Sep 2025: 26, 28 (调休 Sunday), 29, 30 Sep, 9 Oct.
    app.clock.set(cst(2025, 9, 25, 9));
    let submitted = app.step(&wang, &change, "submitted").await;
    assert_eq!(submitted["deadline"]["step"], "change_review");
    assert_eq!(submitted["deadline"]["due_date"], "2025-10-09");
    let started = submitted["deadline"]["started_at"].clone();

    // Accepted the next day and sent to experts: the same clock runs on.
    app.clock.set(cst(2025, 9, 26, 9));
    for to in ["accepted", "expert_review"] {
        let r = app.step(&sun, &change, to).await;
        assert_eq!(r["deadline"]["step"], "change_review", "{to}: {r}");
        assert_eq!(r["deadline"]["started_at"], started, "{to}: not restarted");
        assert_eq!(r["deadline"]["due_date"], "2025-10-09");
        assert!(
            r["past_steps"].as_array().is_some_and(Vec::is_empty),
            "{to}: the review is not finished: {r}"
        );
    }
    app.clock.set(cst(2025, 10, 9, 20));
    assert_eq!(tick(&app).await.overdue_raised, 0, "due by tonight");

    // Friday 10 October: the sixth working day, still no decision.
    app.clock.set(cst(2025, 10, 10, 9));
    let r = app.order_get(&wang, &change).await;
    assert_eq!(r.body["deadline"]["overdue"], true, "{}", r.body);
    assert_eq!(r.body["deadline"]["working_days_left"], -1);
    assert_eq!(tick(&app).await.overdue_raised, 1);
    let seen = overdue_alarms(&app, &sun).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0]["trigger"]
            .as_str()
            .is_some_and(|t| t.contains("变更审核") && t.contains("002 art. 12")),
        "{}",
        seen[0]
    );

    // Approved late: the review is recorded as finished then, the alarm clears
    // and the execution clock (3 wd) starts.
    app.clock.set(cst(2025, 10, 13, 9));
    let approved = app.step(&zhou, &change, "approved").await;
    assert_eq!(approved["deadline"]["step"], "change_execute");
    let past = approved["past_steps"].as_array().expect("past");
    assert_eq!(past.len(), 1, "one review step: {past:?}");
    assert_eq!(past[0]["step"], "change_review");
    assert_eq!(past[0]["started_at"], started);
    assert_eq!(past[0]["finished_at"], json!(cst(2025, 10, 13, 9)));
    assert_eq!(tick(&app).await.overdue_cleared, 1);
}

/// Seed 002 art. 13: "政务云平台主管部门应当在 5 个工作日内完成终止审核" — the exit
/// review is timed like the change review, through acceptance to approval.
#[tokio::test]
async fn seed_002_art_13_exit_review_is_timed_from_submission_to_approval() {
    let app = App::with_users_at(cst(2025, 10, 13, 8)).await;
    let (wang, sun, zhou) = (
        app.login("wang").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let sys = new_system(&app, &wang, "退出审核计时系统").await;
    let exit = new_order(&app, &wang, &sys, "exit", "yongjia").await;
    // Mon 13 Oct 2025 + 5 wd = Mon 20 Oct.
    app.clock.set(cst(2025, 10, 13, 9));
    let submitted = app.step(&wang, &exit, "submitted").await;
    assert_eq!(submitted["deadline"]["due_date"], "2025-10-20");
    app.clock.set(cst(2025, 10, 14, 9));
    let accepted = app.step(&sun, &exit, "accepted").await;
    assert_eq!(accepted["deadline"]["step"], "exit_review");
    assert_eq!(accepted["deadline"]["due_date"], "2025-10-20");
    app.clock.set(cst(2025, 10, 21, 9));
    let r = app.order_get(&wang, &exit).await;
    assert_eq!(r.body["deadline"]["overdue"], true, "{}", r.body);
    assert_eq!(tick(&app).await.overdue_raised, 1);
    let approved = app.step(&zhou, &exit, "approved").await;
    assert_eq!(approved["deadline"]["step"], "exit_reclaim");
    assert_eq!(approved["past_steps"][0]["step"], "exit_review");
    assert_eq!(tick(&app).await.overdue_cleared, 1);
}

/// An onboarding order of `policy` moved to approved (the review on the day).
async fn approved_onboarding(app: &App, sys: &str, policy: &str) -> String {
    let (wang, sun, zhou) = (
        app.login("wang").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let id = new_order(app, &wang, sys, "onboarding", policy).await;
    app.step(&wang, &id, "submitted").await;
    app.step(&sun, &id, "accepted").await;
    app.step(&zhou, &id, "approved").await;
    id
}

fn extension(until: &str, reason: &str) -> Value {
    json!({"until": until, "reason": reason})
}

/// Seed 002 art. 10: "在 3 个工作日内提供测试环境，测试时间一般不超过 15 天；经政务
/// 云平台主管部门同意，确有必要的可以延长测试时间". Under Yongjia the 15 natural days
/// run from the test environment (`test_env_ready`), on through delivery
/// confirmation; only the management unit's approver extends them, with a
/// reason and a date within the policy's `extension_max` (15 more days past
/// the original end), each approval kept on the order and audited; a refused
/// extension writes nothing; the extended period is then timed to its new end.
#[tokio::test]
async fn seed_002_art_10_test_period_runs_from_the_test_environment_and_extends_with_approval() {
    let app = App::with_users_at(cst(2025, 11, 3, 9)).await;
    let (wang, sun, zhou) = (
        app.login("wang").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let sys = new_system(&app, &wang, "测试期计时系统").await;
    let id = approved_onboarding(&app, &sys, "yongjia").await;
    let path = format!("/api/v1/orders/{id}/test-period/extensions");
    // Not in its test period yet.
    let r = app
        .call(
            "POST",
            &path,
            Some(extension("2025-12-01", "未到测试期")),
            &zhou,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("TEST_PERIOD_NOT_RUNNING"))
    );

    // Tue 4 Nov 2025: the test environment is provided; 15 days: 19 Nov.
    app.clock.set(cst(2025, 11, 4, 9));
    let ready = app.step(&zhou, &id, "test_env_ready").await;
    assert_eq!(ready["deadline"]["step"], "test_period", "{ready}");
    assert_eq!(ready["deadline"]["due_date"], "2025-11-19");
    assert_eq!(ready["deadline"]["source"], "002 art. 10");
    let started = ready["deadline"]["started_at"].clone();
    app.clock.set(cst(2025, 11, 6, 9));
    let delivered = app.step(&wang, &id, "delivered").await;
    assert_eq!(delivered["deadline"]["step"], "test_period");
    assert_eq!(
        delivered["deadline"]["started_at"], started,
        "not restarted"
    );
    assert_eq!(delivered["deadline"]["due_date"], "2025-11-19");

    // Refusals change nothing: not the tenant, not the reviewer; a date not
    // later than the current end or beyond 15 more days; no reason.
    let audits = app.audit_count().await;
    for (who, body, want) in [
        (
            &wang,
            extension("2025-12-01", "自行延长"),
            (StatusCode::FORBIDDEN, Some("FORBIDDEN")),
        ),
        (
            &sun,
            extension("2025-12-01", "审核人员延长"),
            (StatusCode::FORBIDDEN, Some("FORBIDDEN")),
        ),
        (
            &zhou,
            extension("2025-11-19", "不延长"),
            (StatusCode::CONFLICT, Some("TEST_PERIOD_EXTENSION_REFUSED")),
        ),
        (
            &zhou,
            extension("2025-12-05", "超出上限"),
            (StatusCode::CONFLICT, Some("TEST_PERIOD_EXTENSION_REFUSED")),
        ),
    ] {
        let r = app.call("POST", &path, Some(body.clone()), who).await;
        assert_eq!(code(&r), want, "{body}: {}", r.body);
    }
    let r = app
        .call("POST", &path, Some(json!({"until": "2025-12-01"})), &zhou)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(app.audit_count().await, audits, "refusals write nothing");
    let r = app.order_get(&wang, &id).await;
    assert_eq!(r.body["deadline"]["due_date"], "2025-11-19");
    assert!(r.body.get("deadline_extensions").is_none(), "{}", r.body);

    // The approver extends to 1 Dec, then once more to the bound, 4 Dec
    // (19 Nov + 15 days): who, when, why and until when are kept.
    app.clock.set(cst(2025, 11, 18, 10));
    let r = app
        .call(
            "POST",
            &path,
            Some(extension("2025-12-01", "等保三级测评报告尚未出具")),
            &zhou,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["deadline"]["due_date"], "2025-12-01");
    assert_eq!(r.body["deadline"]["started_at"], started);
    let approval = &r.body["deadline_extensions"][0];
    assert_eq!(approval["by"], "user:zhou");
    assert_eq!(approval["at"], json!(cst(2025, 11, 18, 10)));
    assert_eq!(approval["reason"], "等保三级测评报告尚未出具");
    assert_eq!(approval["previous_due"], "2025-11-19");
    assert_eq!(approval["until"], "2025-12-01");
    assert_eq!(app.audit_count().await, audits + 1, "audited");
    let r = app
        .call(
            "POST",
            &path,
            Some(extension("2025-12-05", "再延长")),
            &zhou,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("TEST_PERIOD_EXTENSION_REFUSED")),
        "bounded from the original end, not the extended one"
    );
    let r = app
        .call(
            "POST",
            &path,
            Some(extension("2025-12-04", "再延长至上限")),
            &zhou,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["deadline_extensions"].as_array().map(Vec::len),
        Some(2)
    );

    // Timed to the new end: not overdue on 20 Nov, overdue on 5 Dec.
    app.clock.set(cst(2025, 11, 20, 9));
    assert_eq!(tick(&app).await.overdue_raised, 0);
    app.clock.set(cst(2025, 12, 5, 9));
    let r = app.order_get(&wang, &id).await;
    assert_eq!(r.body["deadline"]["overdue"], true, "{}", r.body);
    assert_eq!(tick(&app).await.overdue_raised, 1);
    // Going live ends the test period; the approvals stay with the step.
    let live = app.step(&wang, &id, "live").await;
    let past = live["past_steps"].as_array().expect("past");
    let test = past
        .iter()
        .find(|s| s["step"] == "test_period")
        .expect("test period recorded");
    assert_eq!(test["extensions"].as_array().map(Vec::len), Some(2));
    assert_eq!(tick(&app).await.overdue_cleared, 1);
}

/// Seed 000 (大同) art. 14: "确认之日起 30 个工作日内完成迁移和测试" — under
/// Datong the test period runs from delivery confirmation (not from the test
/// environment), and the policy provides no extension.
#[tokio::test]
async fn seed_000_art_14_datong_test_period_runs_from_delivery_confirmation() {
    let app = App::with_users_at(cst(2025, 10, 30, 9)).await;
    let (wang, zhou) = (app.login("wang").await, app.login("zhou").await);
    let sys = new_system(&app, &wang, "大同测试期系统").await;
    let id = approved_onboarding(&app, &sys, "datong").await;
    let ready = app.step(&zhou, &id, "test_env_ready").await;
    assert!(ready["deadline"].is_null(), "{ready}");
    // Mon 3 Nov 2025 + 30 working days: 15 December.
    app.clock.set(cst(2025, 11, 3, 9));
    let delivered = app.step(&wang, &id, "delivered").await;
    assert_eq!(delivered["deadline"]["step"], "test_period");
    assert_eq!(delivered["deadline"]["due_date"], "2025-12-15");
    assert_eq!(delivered["deadline"]["source"], "000 art. 14");
    let audits = app.audit_count().await;
    let r = app
        .call(
            "POST",
            &format!("/api/v1/orders/{id}/test-period/extensions"),
            Some(extension("2025-12-20", "延长")),
            &zhou,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("TEST_PERIOD_NOT_EXTENDABLE"))
    );
    assert_eq!(app.audit_count().await, audits);
}

/// Seed 002 art. 12: "因应急需要等特殊情况的，可在向政务云平台主管部门报备后先行变更、
/// 后补办相关手续" is Yongjia's rule: an emergency change is accepted only under a
/// policy whose data allows it (`[emergency_change]`); under Beijing or Datong
/// the filing is refused with 409 ORDER_EMERGENCY_NOT_IN_POLICY and nothing is
/// written.
#[tokio::test]
async fn seed_002_art_12_emergency_change_only_under_a_policy_that_allows_it() {
    let app = App::with_users_at(cst(2025, 11, 3, 9)).await;
    let wang = app.login("wang").await;
    let sys = new_system(&app, &wang, "应急变更规则系统").await;
    let body = json!({"reason": "汛期应急，访问量激增"});
    for policy in ["beijing", "datong"] {
        let change = new_order(&app, &wang, &sys, "change", policy).await;
        app.step(&wang, &change, "submitted").await;
        let audits = app.audit_count().await;
        let r = app
            .call(
                "POST",
                &format!("/api/v1/orders/{change}/emergency"),
                Some(body.clone()),
                &wang,
            )
            .await;
        assert_eq!(
            code(&r),
            (StatusCode::CONFLICT, Some("ORDER_EMERGENCY_NOT_IN_POLICY")),
            "{policy}: {}",
            r.body
        );
        assert!(r.body["message_zh"].is_string(), "{}", r.body);
        assert_eq!(app.audit_count().await, audits, "{policy}: nothing written");
        let r = app.order_get(&wang, &change).await;
        assert!(r.body["emergency"].is_null(), "{}", r.body);
        let r = app
            .call(
                "GET",
                &format!("/api/v1/alarms/emergency-{change}"),
                None,
                &app.login("sun").await,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "no report raised");
    }
    let change = new_order(&app, &wang, &sys, "change", "yongjia").await;
    app.step(&wang, &change, "submitted").await;
    let r = app
        .call(
            "POST",
            &format!("/api/v1/orders/{change}/emergency"),
            Some(body),
            &wang,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "yongjia allows it: {}", r.body);
}

/// Seed 002 art. 13 ("5 个工作日内完成终止审核…审核通过后…终止有关服务") and 000
/// art. 16 ("收回云资源并终止计费") on the onboarding order's own exit path (live →
/// exit requested → exited): the request is timed as an exit review, an
/// overdue one raises its alarm; the exit ends the charge there — and does not
/// zero the months before it when they are read afterwards.
#[tokio::test]
async fn seed_002_art_13_onboarding_exit_is_reviewed_and_keeps_past_months_charges() {
    let app = App::with_users_at(cst(2025, 12, 1, 9)).await;
    let (wang, zhou) = (app.login("wang").await, app.login("zhou").await);
    let sys = new_system(&app, &wang, "入云退出计费系统").await;
    let id = approved_onboarding(&app, &sys, "yongjia").await;
    app.step(&zhou, &id, "test_env_ready").await;
    app.clock.set(cst(2025, 12, 11, 0));
    app.step(&wang, &id, "delivered").await;
    app.clock.set(cst(2025, 12, 15, 9));
    app.step(&wang, &id, "live").await;
    let cost = |month: &str| format!("/api/v1/systems/{sys}/cost?month={month}");
    app.clock.set(cst(2026, 1, 5, 9));
    let december = app.call("GET", &cost("2025-12"), None, &wang).await;
    assert_eq!(december.status, StatusCode::OK, "{}", december.body);
    let december_total = december.body["total_fen"].as_u64().expect("total");
    assert!(december_total > 0, "{}", december.body);
    assert_eq!(december.body["billed_seconds"], 21 * 86_400);

    // Mon 5 Jan 2026: the exit is requested; 5 wd: Mon 12 Jan.
    let requested = app.step(&wang, &id, "exit_requested").await;
    assert_eq!(requested["deadline"]["step"], "exit_review", "{requested}");
    assert_eq!(requested["deadline"]["due_date"], "2026-01-12");
    assert_eq!(requested["deadline"]["source"], "002 art. 13");
    app.clock.set(cst(2026, 1, 13, 9));
    assert_eq!(tick(&app).await.overdue_raised, 1, "a late exit review");
    // Exited at 00:00 on 14 Jan: the review ends, the alarm clears.
    app.clock.set(cst(2026, 1, 14, 0));
    let exited = app.step(&zhou, &id, "exited").await;
    assert!(
        exited["past_steps"]
            .as_array()
            .expect("past")
            .iter()
            .any(|s| s["step"] == "exit_review"),
        "{exited}"
    );
    assert_eq!(tick(&app).await.overdue_cleared, 1);

    // Read afterwards: December keeps its charge; January is charged to the
    // exit (13 days); February nothing.
    app.clock.set(cst(2026, 2, 10, 9));
    let again = app.call("GET", &cost("2025-12"), None, &wang).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(
        again.body["total_fen"].as_u64(),
        Some(december_total),
        "December is not zeroed by the exit: {}",
        again.body
    );
    assert_eq!(again.body["billing_until"], json!(cst(2026, 1, 14, 0)));
    let january = app.call("GET", &cost("2026-01"), None, &wang).await;
    assert_eq!(
        january.body["billed_seconds"],
        13 * 86_400,
        "{}",
        january.body
    );
    assert!(january.body["total_fen"].as_u64().is_some_and(|t| t > 0));
    let february = app.call("GET", &cost("2026-02"), None, &wang).await;
    assert_eq!(february.body["total_fen"], 0, "{}", february.body);
}

/// Seed 002 art. 13 ("审核通过后，政务云服务供应商应当在 3 个工作日内终止有关服务") on
/// the onboarding order's own exit path: once the exit is decided (`exited`)
/// the reclaim is timed as `exit_reclaim`, like an exit order's; late, it
/// raises its alarm; when the reconciler finds the system empty
/// (`reclaim::finish`, called here as the reconciler does) the step ends and
/// the 3-month data retention starts.
#[tokio::test]
async fn seed_002_art_13_onboarding_exit_reclaim_is_timed_like_an_exit_order() {
    let app = App::with_users_at(cst(2025, 12, 1, 9)).await;
    let (wang, zhou) = (app.login("wang").await, app.login("zhou").await);
    let sys = new_system(&app, &wang, "入云退出回收系统").await;
    let id = approved_onboarding(&app, &sys, "yongjia").await;
    app.step(&zhou, &id, "test_env_ready").await;
    app.step(&wang, &id, "delivered").await;
    app.step(&wang, &id, "live").await;
    app.step(&wang, &id, "exit_requested").await;
    // Mon 5 Jan 2026: exit decided; 3 wd: Thu 8 Jan.
    app.clock.set(cst(2026, 1, 5, 9));
    let exited = app.step(&zhou, &id, "exited").await;
    assert_eq!(exited["deadline"]["step"], "exit_reclaim", "{exited}");
    assert_eq!(exited["deadline"]["due_date"], "2026-01-08");
    assert_eq!(exited["deadline"]["source"], "002 art. 13");
    app.clock.set(cst(2026, 1, 9, 9));
    assert_eq!(tick(&app).await.overdue_raised, 1, "a late reclaim");

    // The reconciler records the reclaim: retention for 3 months from then.
    let reconciler = yunshu_auth::Principal {
        actor: yunshu_domain::Actor::System("reconciler".to_owned()),
        user: None,
        tenant: None,
        bindings: vec![
            yunshu_domain::user::RoleBinding::new(yunshu_domain::user::RoleBindingFields {
                id: "reconciler.system".parse().expect("id"),
                user: yunshu_domain::UserId::new("reconciler").expect("user"),
                role: yunshu_domain::user::Role::Approver,
                scope: yunshu_domain::user::Scope::Platform,
                permissions: None,
                granted_by: yunshu_domain::Actor::System("test".to_owned()),
                granted_at: app.clock.now(),
            })
            .expect("binding"),
        ],
        scopes: None,
        token_expires_at: None,
        org: Default::default(),
    };
    let done = yunshu_workflow::reclaim::finish(&*app.store, &reconciler, &id, app.clock.now())
        .await
        .expect("finish");
    assert!(done);
    let again = yunshu_workflow::reclaim::finish(&*app.store, &reconciler, &id, app.clock.now())
        .await
        .expect("finish");
    assert!(!again, "recorded once");
    let r = app.order_get(&wang, &id).await;
    assert_eq!(r.body["deadline"]["step"], "data_retention", "{}", r.body);
    assert_eq!(r.body["deadline"]["due_date"], "2026-04-09");
    let past = r.body["past_steps"].as_array().expect("past");
    let reclaim = past
        .iter()
        .find(|s| s["step"] == "exit_reclaim")
        .expect("reclaim recorded");
    assert_eq!(reclaim["finished_at"], json!(cst(2026, 1, 9, 9)));
    assert_eq!(tick(&app).await.overdue_cleared, 1);
}
