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

use crate::test_app::{App, Auth, cst, line};

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
