//! The work-order workflow through the real router: memory store, admin bearer to
//! create users, session cookie + CSRF for everyone else, and a manual clock
//! injected as a request extension so deadlines across the 2025 National Day
//! holiday are exact.

use axum::http::StatusCode;
use serde_json::json;
use yunshu_auth::Principal;
use yunshu_domain::order::{OrderState, WorkOrder};
use yunshu_domain::user::{Role, RoleBinding, RoleBindingFields, Scope};
use yunshu_domain::{Actor, UserId};
use yunshu_store::{Store, records};
use yunshu_workflow::{WorkflowError, orders};

use crate::test_app::{App, code, cst, line, system_body};

#[tokio::test]
async fn systems_are_numbered_in_order_per_tenant() {
    let app = App::with_users_at(cst(2025, 9, 26, 9)).await;
    let li = app.login("li").await;
    let zhao = app.login("zhao").await;
    // The demo seed holds 110105001 without a counter: numbering continues after it.
    let a = app.system_create(&li, "不动产登记系统").await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(
        (a.body["number"].as_str(), a.body["tenant"].as_str()),
        (Some("110105002"), Some("110105"))
    );
    let b = app.system_create(&li, "公积金系统").await;
    assert_eq!(b.body["number"], "110105003");
    let c = app.system_create(&zhao, "社保系统").await;
    assert_eq!(c.body["number"], "110106001");

    let mut bad = system_body("x");
    bad["security_level"] = json!("四级");
    let r = app.call("POST", "/api/v1/systems", Some(bad), &li).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // A refused creation burns no number.
    assert_eq!(
        app.system_create(&li, "档案系统").await.body["number"],
        "110105004"
    );

    let mine = app.call("GET", "/api/v1/systems", None, &zhao).await;
    assert_eq!(mine.status, StatusCode::OK);
    let numbers: Vec<&str> = mine.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|s| s["number"].as_str())
        .collect();
    assert_eq!(numbers, ["110106001"]);
    let r = app
        .call("GET", "/api/v1/systems/110105002", None, &zhao)
        .await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("SYSTEM_NOT_FOUND")));
    let r = app
        .call("GET", "/api/v1/systems/110105002", None, &li)
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // Reviewers see every tenant's systems, page by page.
    let sun = app.login("sun").await;
    let p1 = app.call("GET", "/api/v1/systems?limit=3", None, &sun).await;
    assert_eq!(p1.body["items"].as_array().map(Vec::len), Some(3));
    let next = p1.body["next"].as_str().expect("next").to_owned();
    let p2 = app
        .call(
            "GET",
            &format!("/api/v1/systems?limit=3&after={next}"),
            None,
            &sun,
        )
        .await;
    assert_eq!(
        p2.body["items"].as_array().map(Vec::len),
        Some(2),
        "{}",
        p2.body
    );
    assert!(p2.body["next"].is_null());
    // Reviewers create nothing for tenants; the platform admin reads no tenant data.
    assert_eq!(
        app.system_create(&sun, "x").await.status,
        StatusCode::FORBIDDEN
    );
    let r = app
        .call("GET", "/api/v1/systems", None, &App::admin())
        .await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
}

#[tokio::test]
async fn beijing_onboarding_reviewer_lowers_a_line_and_approval_stores_it() {
    let app = App::with_users_at(cst(2025, 9, 26, 9)).await;
    let (li, wang, sun, qian) = (
        app.login("li").await,
        app.login("wang").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let sys = app.system_create(&li, "不动产登记系统").await.body["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let r = app.order_create(&li, &sys, None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        (r.body["state"].as_str(), r.body["policy"].as_str()),
        (Some("draft"), Some("beijing"))
    );
    let id = r.body["id"].as_str().expect("id").to_owned();

    app.step(&li, &id, "submitted").await;
    app.step(&sun, &id, "accepted").await;
    // Reviewers may reduce quantities to reasonable values, never raise them (000 art. 12).
    let path = format!("/api/v1/orders/{id}/lines/0/approve");
    let r = app
        .call("POST", &path, Some(json!({"quantity": 2})), &sun)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let raise = format!("/api/v1/orders/{id}/lines/1/approve");
    let r = app
        .call("POST", &raise, Some(json!({"quantity": 5})), &sun)
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("LINE_APPROVE_RAISES"))
    );
    let r = app
        .call(
            "POST",
            &format!("/api/v1/orders/{id}/lines/9/approve"),
            Some(json!({"quantity": 1})),
            &sun,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::NOT_FOUND, Some("ORDER_LINE_NOT_FOUND"))
    );
    // Applicants cannot approve lines or orders.
    let r = app
        .call("POST", &path, Some(json!({"quantity": 1})), &li)
        .await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    let r = app.transition(&li, &id, "approved", None).await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    // The reviewer accepts and reviews; approval is the management unit's (审批).
    let r = app.transition(&sun, &id, "approved", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Approved on Tuesday 30 September 2025, the eve of National Day.
    app.clock.set(cst(2025, 9, 30, 10));
    let approved = app.step(&qian, &id, "approved").await;
    let lines = approved["request"]["lines"].as_array().expect("lines");
    let qty: Vec<(u64, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["requested_qty"].as_u64().unwrap_or(0),
                l["approved_qty"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        qty,
        [(3, 2), (2, 2)],
        "lowered line kept, untouched line approved in full"
    );
    // Provision within 3 working days (004 art. 13): 1–8 October are off, so the
    // days are 9, 10 and Saturday 11 October (a make-up working day, 调休).
    let d = &approved["deadline"];
    assert_eq!(d["step"], "provision_after_approval");
    assert_eq!(d["due_date"], "2025-10-11", "{d}");
    assert_eq!(d["working_days_left"], 3);
    assert_eq!(d["overdue"], false);
    app.clock.set(cst(2025, 10, 10, 9));
    let r = app.order_get(&li, &id).await;
    assert_eq!(
        r.body["deadline"]["working_days_left"], 1,
        "{}",
        r.body["deadline"]
    );

    // What the reconciler reads: the stored order with approved quantities.
    let (stored, _) = records::get::<WorkOrder>(&*app.store, &id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored.state(), OrderState::Approved);
    let approved_qty: Vec<Option<u32>> = stored
        .request()
        .lines
        .iter()
        .map(|l| l.approved_qty())
        .collect();
    assert_eq!(approved_qty, [Some(2), Some(2)]);

    // Delivery confirmation is the tenant admin's, and billing starts then.
    app.step(&qian, &id, "test_env_ready").await;
    let r = app.transition(&li, &id, "delivered", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    app.clock.set(cst(2025, 10, 13, 15));
    let delivered = app.step(&wang, &id, "delivered").await;
    assert_eq!(delivered["delivered_at"], json!(cst(2025, 10, 13, 15)));
    assert!(
        delivered["deadline"].is_null(),
        "Beijing sets no test period"
    );
    assert_eq!(delivered["history"].as_array().map(Vec::len), Some(5));

    let v = yunshu_store::audit::verify(&*app.store)
        .await
        .expect("verify");
    assert!(v.intact, "{v:?}");
}

#[tokio::test]
async fn yongjia_refusal_needs_a_reason_then_resubmission_is_approved() {
    let app = App::with_users_at(cst(2025, 9, 26, 9)).await;
    let (li, sun, qian) = (
        app.login("li").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let sys = app.system_create(&li, "公积金系统").await.body["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let id = app.order_create(&li, &sys, Some("yongjia")).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Submitted on Monday 29 September: accept or refuse within 3 working days
    // (002 art. 9): 30 September, 9 and 10 October.
    app.clock.set(cst(2025, 9, 29, 9));
    let submitted = app.step(&li, &id, "submitted").await;
    assert_eq!(submitted["policy"], "yongjia");
    assert_eq!(submitted["deadline"]["step"], "accept_or_refuse");
    assert_eq!(submitted["deadline"]["due_date"], "2025-10-10");

    let before = app.order_get(&sun, &id).await.body;
    let audits = app.audit_count().await;
    for reason in [None, Some("   ")] {
        let r = app.transition(&sun, &id, "refused", reason).await;
        assert_eq!(
            code(&r),
            (StatusCode::BAD_REQUEST, Some("ORDER_REASON_REQUIRED")),
            "{}",
            r.body
        );
    }
    assert_eq!(
        app.order_get(&sun, &id).await.body,
        before,
        "nothing changed"
    );
    assert_eq!(app.audit_count().await, audits);

    app.clock.set(cst(2025, 9, 30, 9));
    let refused = app
        .transition(&sun, &id, "refused", Some("资源需求说明不全"))
        .await;
    assert_eq!(refused.status, StatusCode::OK, "{}", refused.body);
    assert_eq!(refused.body["history"][1]["reason"], "资源需求说明不全");
    assert!(refused.body["deadline"].is_null());
    assert_eq!(refused.body["past_steps"][0]["step"], "accept_or_refuse");

    // The applicant edits and resubmits (000 art. 12).
    let edit = json!({"lines": [line("web-01", 2)], "note": "补充说明"});
    let r = app
        .call("PUT", &format!("/api/v1/orders/{id}"), Some(edit), &li)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["request"]["lines"].as_array().map(Vec::len), Some(1));
    app.step(&li, &id, "submitted").await;
    app.clock.set(cst(2025, 10, 9, 9));
    let accepted = app.step(&sun, &id, "accepted").await;
    // Review opinion within 5 working days of acceptance: 10, 11 (调休), 13, 14, 15 October.
    assert_eq!(accepted["deadline"]["due_date"], "2025-10-15");
    let approved = app.step(&qian, &id, "approved").await;
    assert_eq!(approved["request"]["lines"][0]["approved_qty"], 2);
    let states: Vec<&str> = approved["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["to"].as_str())
        .collect();
    assert_eq!(
        states,
        ["submitted", "refused", "submitted", "accepted", "approved"]
    );
    // Yongjia: test environment within 3 working days of approval (002 art. 10):
    // 10, 11 (调休) and 13 October.
    assert_eq!(approved["deadline"]["due_date"], "2025-10-13");
}

#[tokio::test]
async fn tenants_are_isolated_and_bad_transitions_change_nothing() {
    let app = App::with_users_at(cst(2025, 9, 26, 9)).await;
    let (li, zhao, sun, qian) = (
        app.login("li").await,
        app.login("zhao").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let sys = app.system_create(&li, "不动产登记系统").await.body["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let id = app.order_create(&li, &sys, None).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Another tenant: "not found", never "forbidden" (SPEC §1).
    let r = app.order_get(&zhao, &id).await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("ORDER_NOT_FOUND")));
    let r = app.transition(&zhao, &id, "submitted", None).await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("ORDER_NOT_FOUND")));
    let r = app
        .call("GET", &format!("/api/v1/systems/{sys}"), None, &zhao)
        .await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("SYSTEM_NOT_FOUND")));
    let r = app.order_create(&zhao, &sys, None).await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("SYSTEM_NOT_FOUND")));
    let r = app.call("GET", "/api/v1/orders", None, &zhao).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(0));
    // The platform admin runs yunshu but reads no tenant business data (003 §3.2.2.15).
    let r = app.call("GET", "/api/v1/orders", None, &App::admin()).await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    let r = app.order_get(&App::admin(), &id).await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("ORDER_NOT_FOUND")));

    // Bad transitions: refused with the domain's code, nothing written.
    let before = app.order_get(&li, &id).await.body;
    let audits = app.audit_count().await;
    let r = app.transition(&qian, &id, "approved", None).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("ORDER_TRANSITION_FORBIDDEN")),
        "{}",
        r.body
    );
    let r = app.transition(&li, &id, "live", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app.transition(&li, &id, "bogus", None).await;
    assert_eq!(code(&r), (StatusCode::BAD_REQUEST, Some("BODY_INVALID")));
    let r = app
        .call(
            "POST",
            &format!("/api/v1/orders/{id}/lines/0/approve"),
            Some(json!({"quantity": 1})),
            &sun,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("ORDER_NOT_IN_REVIEW"))
    );
    assert_eq!(app.order_get(&li, &id).await.body, before);
    assert_eq!(app.audit_count().await, audits);

    // Once submitted, the request is frozen until refused or rejected.
    app.step(&li, &id, "submitted").await;
    let edit = json!({"lines": [line("web-01", 9)]});
    let r = app
        .call("PUT", &format!("/api/v1/orders/{id}"), Some(edit), &li)
        .await;
    assert_eq!(code(&r), (StatusCode::CONFLICT, Some("ORDER_NOT_EDITABLE")));
    // Applicants cannot set approved quantities through the request body.
    let sneaky = json!({"kind": "onboarding", "system": sys, "lines": [{"server": line("a", 1)["server"], "quantity": 1, "approved_qty": 1}]});
    let r = app.call("POST", "/api/v1/orders", Some(sneaky), &li).await;
    assert_eq!(code(&r), (StatusCode::BAD_REQUEST, Some("BODY_INVALID")));
}

#[tokio::test]
async fn orders_list_in_pages_scoped_to_the_tenant() {
    let app = App::with_users_at(cst(2025, 9, 26, 9)).await;
    let (li, zhao, sun) = (
        app.login("li").await,
        app.login("zhao").await,
        app.login("sun").await,
    );
    let a = app.system_create(&li, "甲系统").await.body["number"]
        .as_str()
        .expect("n")
        .to_owned();
    let b = app.system_create(&zhao, "乙系统").await.body["number"]
        .as_str()
        .expect("n")
        .to_owned();
    for _ in 0..3 {
        assert_eq!(
            app.order_create(&li, &a, None).await.status,
            StatusCode::CREATED
        );
        assert_eq!(
            app.order_create(&zhao, &b, None).await.status,
            StatusCode::CREATED
        );
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/orders?limit=2".to_owned();
    loop {
        let r = app.call("GET", &path, None, &li).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for o in r.body["items"].as_array().expect("items") {
            assert_eq!(o["tenant"], "110105");
            seen.push(o["id"].as_str().expect("id").to_owned());
        }
        match r.body["next"].as_str() {
            Some(next) => path = format!("/api/v1/orders?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3);
    let all = app
        .call("GET", "/api/v1/orders?limit=100", None, &sun)
        .await;
    assert_eq!(all.body["items"].as_array().map(Vec::len), Some(6));
}

#[tokio::test]
async fn a_lost_race_is_an_order_conflict_and_writes_nothing() {
    let app = App::with_users_at(cst(2025, 9, 26, 9)).await;
    let li = app.login("li").await;
    let sys = app.system_create(&li, "甲系统").await.body["number"]
        .as_str()
        .expect("n")
        .to_owned();
    let id = app.order_create(&li, &sys, None).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let user = UserId::new("li").expect("id");
    let binding = RoleBinding::new(RoleBindingFields {
        id: "li.0".parse().expect("id"),
        user: user.clone(),
        role: Role::TenantUser,
        scope: Scope::Tenant {
            tenant: "110105".parse().expect("tenant"),
        },
        permissions: None,
        granted_by: "user:platform-admin".parse().expect("actor"),
        granted_at: chrono::Utc::now(),
    })
    .expect("binding");
    let caller = Principal {
        actor: Actor::User(user.clone()),
        user: Some(user),
        tenant: Some("110105".parse().expect("tenant")),
        bindings: vec![binding],
        scopes: None,
        token_expires_at: None,
        org: Default::default(),
    };
    let store: &dyn Store = &*app.store;
    let now = app.clock.now();
    let mut first = orders::order_get(store, &caller, &id).await.expect("get");
    let mut second = first.clone();
    first
        .order
        .transition(OrderState::Submitted, caller.actor.clone(), now, None)
        .expect("submit");
    orders::save(store, &caller, &mut first, "order.transition", None, now)
        .await
        .expect("first wins");
    let audits = app.audit_count().await;
    second
        .order
        .request_edit()
        .expect("still a draft in this copy")
        .note = None;
    let lost = orders::save(store, &caller, &mut second, "order.edit", None, now).await;
    assert!(
        matches!(lost, Err(WorkflowError::OrderConflict { .. })),
        "{lost:?}"
    );
    assert_eq!(app.audit_count().await, audits);
    let r = app.order_get(&li, &id).await;
    assert_eq!(r.body["state"], "submitted");
}

#[tokio::test]
async fn yongjia_change_then_exit_with_their_deadlines() {
    let app = App::with_users_at(cst(2025, 9, 26, 9)).await;
    // Everything below happens from Thursday 25 September 2025 on.
    app.clock.set(cst(2025, 9, 25, 8));
    let (wang, sun, qian) = (
        app.login("wang").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let sys = app.system_create(&wang, "社保查询系统").await.body["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let create = |kind: &str| json!({"kind": kind, "system": sys, "policy": "yongjia", "lines": [line("app-01", 2)]});

    // Change (变更): review within 5 working days, then execute within 3 (002 art. 12).
    let r = app
        .call("POST", "/api/v1/orders", Some(create("change")), &wang)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let change = r.body["id"].as_str().expect("id").to_owned();
    // Thursday 25 September 2025: 26, 28 (调休 Sunday), 29, 30 September, 9 October.
    app.clock.set(cst(2025, 9, 25, 9));
    let submitted = app.step(&wang, &change, "submitted").await;
    assert_eq!(submitted["deadline"]["step"], "change_review");
    assert_eq!(submitted["deadline"]["due_date"], "2025-10-09");
    app.clock.set(cst(2025, 9, 26, 9));
    app.step(&sun, &change, "accepted").await;
    // Approved 30 September: 9, 10, 11 (调休 Saturday) October.
    app.clock.set(cst(2025, 9, 30, 9));
    let approved = app.step(&qian, &change, "approved").await;
    assert_eq!(approved["deadline"]["step"], "change_execute");
    assert_eq!(approved["deadline"]["due_date"], "2025-10-11");
    app.clock.set(cst(2025, 10, 10, 9));
    let delivered = app.step(&wang, &change, "delivered").await;
    assert!(delivered["delivered_at"].is_string(), "{delivered}");

    // Exit (退出): review 5 wd, stop within 3 wd, keep data and logs 3 months (002 art. 13).
    let r = app
        .call("POST", "/api/v1/orders", Some(create("exit")), &wang)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let exit = r.body["id"].as_str().expect("id").to_owned();
    app.clock.set(cst(2025, 10, 13, 9));
    let submitted = app.step(&wang, &exit, "submitted").await;
    assert_eq!(submitted["deadline"]["step"], "exit_review");
    assert_eq!(submitted["deadline"]["due_date"], "2025-10-20");
    app.clock.set(cst(2025, 10, 14, 9));
    app.step(&sun, &exit, "accepted").await;
    app.clock.set(cst(2025, 10, 15, 9));
    let approved = app.step(&qian, &exit, "approved").await;
    assert_eq!(approved["deadline"]["step"], "exit_reclaim");
    assert_eq!(approved["deadline"]["due_date"], "2025-10-20");
    app.clock.set(cst(2025, 10, 17, 9));
    let exited = app.step(&qian, &exit, "exited").await;
    assert_eq!(exited["deadline"]["step"], "data_retention");
    assert_eq!(exited["deadline"]["due_date"], "2026-01-17");
    app.clock.set(cst(2026, 1, 19, 9));
    let purged = app.step(&qian, &exit, "purged").await;
    assert!(purged["deadline"].is_null(), "{purged}");
}

#[tokio::test]
async fn an_emergency_change_is_filed_once_reported_and_reviewed_afterwards() {
    let app = App::with_users_at(cst(2025, 9, 26, 9)).await;
    let (li, wang, sun, zhou) = (
        app.login("li").await,
        app.login("wang").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let sys = app.system_create(&wang, "应急指挥系统").await.body["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let create = |kind: &str| json!({"kind": kind, "system": sys, "policy": "yongjia", "lines": [line("app-01", 4)]});
    let change = app
        .call("POST", "/api/v1/orders", Some(create("change")), &wang)
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let onboarding = app
        .call("POST", "/api/v1/orders", Some(create("onboarding")), &wang)
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = |id: &str| format!("/api/v1/orders/{id}/emergency");
    let body = json!({"reason": "汛期应急，访问量激增"});
    // Not before it is submitted, not for other kinds, not by a tenant user,
    // not without a reason; each refusal writes nothing.
    let audits = app.audit_count().await;
    let r = app
        .call("POST", &path(&change), Some(body.clone()), &wang)
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("ORDER_EMERGENCY_NOT_ALLOWED"))
    );
    app.step(&wang, &change, "submitted").await;
    app.step(&wang, &onboarding, "submitted").await;
    let r = app
        .call("POST", &path(&onboarding), Some(body.clone()), &wang)
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("ORDER_EMERGENCY_NOT_ALLOWED"))
    );
    let r = app
        .call("POST", &path(&change), Some(body.clone()), &li)
        .await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    let r = app
        .call("POST", &path(&change), Some(json!({"reason": ""})), &wang)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(
        app.audit_count().await,
        audits + 2,
        "only the two submissions"
    );

    let r = app
        .call("POST", &path(&change), Some(body.clone()), &wang)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["emergency"]["by"], "user:wang");
    assert_eq!(r.body["state"], "submitted", "the paperwork is still to do");
    let r = app.call("POST", &path(&change), Some(body), &wang).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("ORDER_EMERGENCY_NOT_ALLOWED")),
        "once"
    );
    // Reported to the management unit as an alarm.
    let r = app
        .call(
            "GET",
            &format!("/api/v1/alarms/emergency-{change}"),
            None,
            &sun,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body["content"]
            .as_str()
            .expect("content")
            .contains("汛期应急")
    );
    // The review finishes afterwards as usual, and may still lower the line.
    app.step(&sun, &change, "accepted").await;
    let r = app
        .call(
            "POST",
            &format!("/api/v1/orders/{change}/lines/0/approve"),
            Some(json!({"quantity": 2})),
            &sun,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let approved = app.step(&zhou, &change, "approved").await;
    assert!(approved["emergency"].is_object());
}

#[tokio::test]
async fn a_provider_operator_sees_approved_orders_naming_its_platform_only() {
    let app = App::with_users_at(cst(2025, 9, 26, 9)).await;
    let (li, sun, zhou, op) = (
        app.login("li").await,
        app.login("sun").await,
        app.login("zhou").await,
        app.login("op").await,
    );
    let sys = app.system_create(&li, "供应商可见系统").await.body["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let mut ids = Vec::new();
    for provider in ["sim", "other"] {
        let r = app
            .call(
                "POST",
                "/api/v1/orders",
                Some(json!({"kind": "onboarding", "system": sys, "provider": provider, "lines": [line("a", 1)]})),
                &li,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.body["id"].as_str().expect("id").to_owned());
    }
    let get = |id: &str| format!("/api/v1/orders/{id}");
    for id in &ids {
        app.step(&li, id, "submitted").await;
        app.step(&sun, id, "accepted").await;
        // In review the order is the tenant's and the management unit's business.
        let r = app.call("GET", &get(id), None, &op).await;
        assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("ORDER_NOT_FOUND")));
        app.step(&zhou, id, "approved").await;
    }
    let r = app.call("GET", &get(&ids[0]), None, &op).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.call("GET", &get(&ids[1]), None, &op).await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("ORDER_NOT_FOUND")));
    let r = app.call("GET", "/api/v1/orders", None, &op).await;
    let listed: Vec<_> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(listed, [ids[0].clone()]);
    // Seeing is not acting: the operator cannot move the order.
    let r = app.transition(&op, &ids[0], "test_env_ready", None).await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
}

/// The three-tier order of issue 14 as a tenant sends it: network, security
/// groups, a load balancer with a WAF policy and a public IP, a volume, a
/// backup policy and a bare-metal server.
pub(crate) fn three_tier_order(system: &str) -> serde_json::Value {
    let mut bm = line("bm", 1);
    bm["server"]["form"] = json!("bare_metal");
    bm["server"]["model"] = json!("TaiShan 200 2280");
    json!({
        "kind": "onboarding", "system": system,
        "lines": [line("web", 2), line("db", 1), bm],
        "network": {"vpc_cidr": "10.20.0.0/16", "subnets": [
            {"network_area": "gov_extranet", "cidr": "10.20.1.0/24"},
            {"network_area": "internet", "cidr": "10.20.2.0/24"}]},
        "security_groups": [
            {"name": "web", "servers": ["web"], "rules": [
                {"protocol": "tcp", "ports": {"from": 80, "to": 80}, "remote": {"cidr": "10.20.2.0/24"}}]},
            {"name": "db", "servers": ["db"], "rules": [
                {"protocol": "tcp", "ports": {"from": 3306, "to": 3306}, "remote": {"group": "web"}}]}],
        "load_balancers": [{"name": "web-lb", "network_area": "internet", "members": "web",
            "listeners": [{"protocol": "http", "port": 80, "backend_port": 8080,
                "algorithm": "weighted_round_robin",
                "health_check": {"protocol": "http", "path": "/healthz"}}]}],
        "waf_policies": [{"name": "web-waf", "load_balancer": "web-lb", "mode": "block",
            "rule_sets": ["sqli", "xss"], "cc_limit": {"requests": 100, "period_seconds": 60}}],
        "public_ips": [{"purpose": "门户访问", "server_name": "web-lb", "ports": [80], "bandwidth_mbps": 20}],
        "volumes": [{"name": "db-data", "server_name": "db", "size_gib": 200, "tier": "high_performance"}],
        "backup_policies": [{"name": "db-nightly", "target": "db", "backup_type": "incremental",
            "window": {"every": "daily", "hour": 2}, "retention_days": 7, "capacity_gib": 200}]
    })
}

#[tokio::test]
async fn network_and_service_items_are_checked_over_http_and_bad_ones_write_nothing() {
    let app = App::with_users_at(cst(2026, 3, 2, 9)).await;
    let li = app.login("li").await;
    let sys = app.system_create(&li, "门户网站").await.body["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let ok = app
        .call("POST", "/api/v1/orders", Some(three_tier_order(&sys)), &li)
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(ok.body["request"]["load_balancers"][0]["name"], "web-lb");
    assert_eq!(
        ok.body["request"]["lines"][2]["server"]["model"],
        "TaiShan 200 2280"
    );
    let before = app.audit_count().await;
    let bad = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut body = three_tier_order(&sys);
        edit(&mut body);
        body
    };
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            bad(&|b| b["network"]["subnets"][0]["cidr"] = json!("10.99.1.0/24")),
            "NETWORK_SUBNET_OUTSIDE_VPC",
        ),
        (
            bad(&|b| b["network"]["subnets"][1]["cidr"] = json!("10.20.1.128/25")),
            "NETWORK_SUBNETS_OVERLAP",
        ),
        (
            bad(&|b| {
                let lb = b["load_balancers"][0].clone();
                b["load_balancers"] = json!([lb.clone(), lb]);
            }),
            "ORDER_ITEM_NAME_TWICE",
        ),
        (
            bad(&|b| b["load_balancers"][0]["listeners"] = json!([])),
            "ORDER_ITEM_INVALID",
        ),
        (
            bad(&|b| b["waf_policies"][0]["rule_sets"] = json!([])),
            "ORDER_ITEM_INVALID",
        ),
        (
            bad(&|b| b["lines"][0]["server"]["model"] = json!("R4900")),
            "ORDER_ITEM_INVALID",
        ),
        (
            bad(&|b| {
                b["volumes"] = json!(
                    (0..65)
                        .map(|i| json!({"name": format!("v{i}"), "server_name": "db",
                        "size_gib": 10, "tier": "standard"}))
                        .collect::<Vec<_>>()
                )
            }),
            "ORDER_ITEMS_TOO_MANY",
        ),
    ];
    for (body, expected) in cases {
        let r = app.call("POST", "/api/v1/orders", Some(body), &li).await;
        assert_eq!(
            code(&r),
            (StatusCode::BAD_REQUEST, Some(expected)),
            "{}",
            r.body
        );
        assert!(r.body["message_zh"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Malformed items never reach the domain checks: serde refuses them.
    let r = app
        .call(
            "POST",
            "/api/v1/orders",
            Some(bad(&|b| b["volumes"][0]["tier"] = json!("gold"))),
            &li,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // Editing a draft into a bad one is refused the same way.
    let id = ok.body["id"].as_str().expect("id");
    let r = app
        .call(
            "PUT",
            &format!("/api/v1/orders/{id}"),
            Some(bad(&|b| b["network"]["vpc_cidr"] = json!("10.20.0.0/28"))),
            &li,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("NETWORK_VPC_SIZE")),
        "{}",
        r.body
    );
    assert_eq!(app.audit_count().await, before, "nothing written");
}

#[tokio::test]
async fn an_order_needing_a_kind_its_provider_lacks_is_refused_at_approval() {
    use yunshu_domain::resource::ResourceKind as K;
    let app = App::with_users_at(cst(2026, 3, 2, 9)).await;
    let (li, sun, zhou) = (
        app.login("li").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    // What the health check records after GetInfo: a driver of VMs and
    // networks only.
    let offer = yunshu_workflow::offers::ProviderOffer {
        provider: "sim".to_owned(),
        kinds: [K::Vm, K::Vpc, K::Subnet, K::SecurityGroup, K::Volume]
            .into_iter()
            .collect(),
        driver: "vm-only-driver 1.0".to_owned(),
        checked_at: cst(2026, 3, 2, 8),
    };
    assert!(
        yunshu_workflow::offers::record(&*app.store, &offer)
            .await
            .expect("recorded")
    );
    let sys = app.system_create(&li, "门户网站").await.body["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let mut body = three_tier_order(&sys);
    body["provider"] = json!("sim");
    let r = app.call("POST", "/api/v1/orders", Some(body), &li).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    app.step(&li, &id, "submitted").await;
    app.step(&sun, &id, "accepted").await;
    let before = app.audit_count().await;
    let r = app.transition(&zhou, &id, "approved", None).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("PROVIDER_KINDS_UNSUPPORTED")),
        "{}",
        r.body
    );
    assert_eq!(
        r.body["details"]["kinds"],
        json!([
            "bare_metal",
            "eip",
            "load_balancer",
            "waf_policy",
            "backup_policy"
        ])
    );
    let zh = r.body["message_zh"].as_str().expect("zh");
    assert!(zh.contains("负载均衡") && zh.contains("物理服务器"), "{zh}");
    assert_eq!(app.audit_count().await, before, "nothing written");
    assert_eq!(app.order_get(&li, &id).await.body["state"], "accepted");

    // Once the driver offers everything, the same order is approved.
    let all = yunshu_workflow::offers::ProviderOffer {
        kinds: [
            K::Vm,
            K::BareMetal,
            K::Volume,
            K::Vpc,
            K::Subnet,
            K::SecurityGroup,
            K::Eip,
            K::LoadBalancer,
            K::WafPolicy,
            K::BackupPolicy,
            K::Snapshot,
        ]
        .into_iter()
        .collect(),
        ..offer
    };
    assert!(
        yunshu_workflow::offers::record(&*app.store, &all)
            .await
            .expect("recorded")
    );
    let r = app.transition(&zhou, &id, "approved", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// A server line's anti-affinity (反亲和) is hard unless the applicant asks
/// for soft; the server keeps what was asked and refuses what is no policy.
#[tokio::test]
async fn a_server_line_may_ask_for_soft_anti_affinity_and_nothing_else() {
    let app = App::with_users_at(cst(2025, 9, 26, 9)).await;
    let li = app.login("li").await;
    let sys = app.system_create(&li, "不动产登记系统").await.body["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let mut soft = line("web-01", 2);
    soft["server"]["anti_affinity"] = json!("soft");
    let body = json!({"kind": "onboarding", "system": sys, "lines": [soft, line("db-01", 2)]});
    let r = app.call("POST", "/api/v1/orders", Some(body), &li).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let got = app.order_get(&li, &id).await.body;
    let lines = got["request"]["lines"].as_array().expect("lines");
    assert_eq!(lines[0]["server"]["anti_affinity"], "soft", "{got}");
    // Hard is the default and is not spelled out.
    assert!(lines[1]["server"].get("anti_affinity").is_none(), "{got}");

    let audits = app.audit_count().await;
    let mut bad = line("web-01", 2);
    bad["server"]["anti_affinity"] = json!("sometimes");
    let body = json!({"kind": "onboarding", "system": sys, "lines": [bad]});
    let r = app.call("POST", "/api/v1/orders", Some(body), &li).await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("BODY_INVALID")),
        "{}",
        r.body
    );
    let r = app
        .call(
            "PUT",
            &format!("/api/v1/orders/{id}"),
            Some(json!({"lines": [{"server": {"anti_affinity": 1}, "quantity": 1}]})),
            &li,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("BODY_INVALID")),
        "{}",
        r.body
    );
    assert_eq!(app.order_get(&li, &id).await.body, got);
    assert_eq!(app.audit_count().await, audits);
}

/// Items that name what the system does not have are refused when the order
/// is submitted (and again at approval), with every reason, and nothing is
/// written: a volume for servers the system lacks, a restore from a backup
/// policy that does not exist. A restore from the system's own backup policy,
/// filed as a change once the onboarding order is approved, passes.
#[tokio::test]
async fn items_naming_nothing_are_refused_at_submission_and_a_real_restore_passes() {
    let app = App::with_users_at(cst(2026, 3, 2, 9)).await;
    let (li, wang, sun, zhou) = (
        app.login("li").await,
        app.login("wang").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let sys = app.system_create(&li, "不动产登记系统").await.body["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let mut body = three_tier_order(&sys);
    body["volumes"][0]["server_name"] = json!("ghost");
    let r = app.call("POST", "/api/v1/orders", Some(body), &li).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "a draft may be unfinished: {}",
        r.body
    );
    let id = r.body["id"].as_str().expect("id").to_owned();
    let before = app.order_get(&li, &id).await.body;
    let audits = app.audit_count().await;
    let r = app.transition(&li, &id, "submitted", None).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("ORDER_ITEMS_UNRESOLVED")),
        "{}",
        r.body
    );
    let zh = r.body["message_zh"].as_str().expect("zh");
    assert!(zh.contains("ghost"), "{zh}");
    // The volume and the backup policy that targets it both fail to resolve.
    assert!(
        r.body["details"]["problems"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{}",
        r.body
    );
    assert_eq!(app.order_get(&li, &id).await.body, before);
    assert_eq!(app.audit_count().await, audits);

    // Fixed, it goes through.
    let r = app
        .call(
            "PUT",
            &format!("/api/v1/orders/{id}"),
            Some(three_tier_order(&sys)),
            &li,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.step(&li, &id, "submitted").await;
    app.step(&sun, &id, "accepted").await;
    app.step(&zhou, &id, "approved").await;

    // A change restoring from a backup policy the system does not have.
    let restore = |from: &str| {
        json!({"kind": "change", "system": sys, "volumes": [{"name": "db-restored",
            "server_name": "db", "size_gib": 200, "tier": "standard", "restore_from": from}]})
    };
    let r = app
        .call("POST", "/api/v1/orders", Some(restore("nightly")), &wang)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let bad = r.body["id"].as_str().expect("id").to_owned();
    let r = app.transition(&wang, &bad, "submitted", None).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("ORDER_ITEMS_UNRESOLVED")),
        "{}",
        r.body
    );
    assert!(
        r.body["message_zh"]
            .as_str()
            .is_some_and(|m| m.contains("恢复来源")),
        "{}",
        r.body
    );
    // From its own backup policy: submitted.
    let r = app
        .call("POST", "/api/v1/orders", Some(restore("db-nightly")), &wang)
        .await;
    let good = r.body["id"].as_str().expect("id").to_owned();
    app.step(&wang, &good, "submitted").await;
}

/// Security issue item 1: quantities and shapes over the ceilings are refused
/// over HTTP when the order is saved, so no stored order can ask the
/// reconciler for billions of servers (an emergency change needs a saved
/// order first).
#[tokio::test]
async fn unbounded_quantities_are_refused_when_the_order_is_saved() {
    let app = App::with_users_at(cst(2026, 3, 2, 9)).await;
    let wang = app.login("wang").await;
    let sys = app.system_create(&wang, "社保查询系统").await.body["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let audits = app.audit_count().await;
    let order = |line: serde_json::Value| json!({"kind": "change", "system": sys, "lines": [line]});
    let mut huge = line("app-01", 1);
    huge["quantity"] = json!(u32::MAX);
    let mut wide = line("app-01", 1);
    wide["server"]["vcpu"] = json!(100_000);
    let many: Vec<serde_json::Value> = (0..3).map(|i| line(&format!("app-{i}"), 1000)).collect();
    for (body, field) in [
        (order(huge), "quantity"),
        (order(wide), "vcpu"),
        (
            json!({"kind": "change", "system": sys, "lines": many}),
            "servers",
        ),
    ] {
        let r = app.call("POST", "/api/v1/orders", Some(body), &wang).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(
            r.body["code"] == "ORDER_ITEM_INVALID" || r.body["code"] == "ORDER_ITEMS_TOO_MANY",
            "{}",
            r.body
        );
        assert!(
            r.body["message"]
                .as_str()
                .is_some_and(|m| m.contains(field)),
            "{}",
            r.body
        );
    }
    let listed = app.call("GET", "/api/v1/orders", None, &wang).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(0));
    assert_eq!(app.audit_count().await, audits);
}

/// Security issue (low): an event stream ended only with the server; now it
/// ends within seconds of the sign-out that invalidates its credential.
#[tokio::test]
async fn an_event_stream_ends_when_its_session_is_signed_out() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let app = App::with_users_at(cst(2026, 3, 2, 9)).await;
    let wang = app.login("wang").await;
    let sys = app.system_create(&wang, "社保查询系统").await.body["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let mut req = axum::http::Request::get(format!("/api/v1/systems/{sys}/resources/events"));
    for (k, v) in &wang {
        req = req.header(*k, v);
    }
    let response = app
        .router
        .clone()
        .oneshot(req.body(axum::body::Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let reader = tokio::spawn(async move {
        // Frames until the stream ends.
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
        std::time::Instant::now()
    });
    // Still open after a re-check has passed.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert!(!reader.is_finished(), "the stream ended while signed in");
    let out = app.call("POST", "/api/v1/auth/logout", None, &wang).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    let signed_out = std::time::Instant::now();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(12), reader)
        .await
        .expect("the stream outlived the sign-out")
        .expect("reader");
    assert!(ended.duration_since(signed_out) <= std::time::Duration::from_secs(6));
}

/// Security issue (low): event streams were unlimited per user; a caller now
/// holds at most MAX_STREAMS_PER_CALLER, and a closed one frees its place.
#[tokio::test]
async fn a_caller_holds_a_bounded_number_of_event_streams() {
    use tower::ServiceExt;
    let app = App::with_users_at(cst(2026, 3, 2, 9)).await;
    let wang = app.login("wang").await;
    let sys = app.system_create(&wang, "社保查询系统").await.body["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let open = || {
        let mut req = axum::http::Request::get(format!("/api/v1/systems/{sys}/resources/events"));
        for (k, v) in &wang {
            req = req.header(*k, v);
        }
        app.router
            .clone()
            .oneshot(req.body(axum::body::Body::empty()).expect("request"))
    };
    let mut streams = Vec::new();
    for _ in 0..crate::resources::MAX_STREAMS_PER_CALLER {
        let r = open().await.expect("infallible");
        assert_eq!(r.status(), StatusCode::OK);
        streams.push(r);
    }
    let refused = open().await.expect("infallible");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another user is not held back by wang's streams.
    let li = app.login("li").await;
    let r = app.call("GET", "/api/v1/orders", None, &li).await;
    assert_eq!(r.status, StatusCode::OK);
    drop(streams.pop());
    let again = open().await.expect("infallible");
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "a closed stream frees its place"
    );
}

#[tokio::test]
async fn temporary_expansion_cannot_be_renewed_beyond_the_policy_window() {
    // The Beijing policy (the default) reads "短期内" (seed 003) as at most 90
    // days a grant and 90 days in any 365; a renewal is a new grant.
    let t0 = cst(2025, 3, 3, 9);
    let app = App::with_users_at(t0).await;
    let (li, wang, sun, zhou) = (
        app.login("li").await,
        app.login("wang").await,
        app.login("sun").await,
        app.login("zhou").await,
    );
    let sys = app.system_create(&li, "不动产登记系统").await.body["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let id = app.order_create(&li, &sys, None).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.step(&li, &id, "submitted").await;
    app.step(&sun, &id, "accepted").await;
    app.step(&zhou, &id, "approved").await;
    // web-01 ×3 and db-01 ×2 of 4 vCPU: one more web server is the 20 %.
    let path = format!("/api/v1/systems/{sys}/temporary-expansion");
    let expand = |days: i64| json!({"extra": {"web-01": 1}, "days": days});
    let days = |n: i64| chrono::Duration::days(n);

    let r = app.call("PUT", &path, Some(expand(91)), &wang).await;
    assert_eq!(code(&r), (StatusCode::CONFLICT, Some("EXPANSION_REFUSED")));
    let r = app.call("PUT", &path, Some(expand(60)), &wang).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let audited = app.audit_count().await;

    // 30 days in, renewing for 90 more would make 120 free days.
    app.clock.set(t0 + days(30));
    let r = app.call("PUT", &path, Some(expand(90)), &wang).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("EXPANSION_WINDOW_EXCEEDED")),
        "{}",
        r.body
    );
    assert_eq!(
        (
            &r.body["details"]["used_days"],
            &r.body["details"]["max_days_in_window"]
        ),
        (&json!(30), &json!(90))
    );
    assert!(
        r.body["message_zh"]
            .as_str()
            .is_some_and(|m| m.contains("003")),
        "{}",
        r.body
    );
    assert_eq!(app.audit_count().await, audited, "a refusal writes nothing");
    let r = app.call("GET", &path, None, &wang).await;
    assert_eq!(r.body["until"], json!(t0 + days(60)), "the grant stands");
    // 30 + 60 = 90: allowed, and the last renewal possible.
    let r = app.call("PUT", &path, Some(expand(60)), &wang).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Ended: a new expansion straight after still counts the 90 days.
    app.clock.set(t0 + days(91));
    let r = app.call("GET", &path, None, &wang).await;
    assert_eq!(r.body["active"], false);
    let r = app.call("PUT", &path, Some(expand(1)), &wang).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("EXPANSION_WINDOW_EXCEEDED"))
    );
    // Ending is always allowed (this one had run its course already).
    let r = app
        .call("PUT", &path, Some(json!({"extra": {}, "days": 1})), &wang)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Most of a year on, the 90 days are still within the 365.
    app.clock.set(t0 + days(300));
    let r = app.call("PUT", &path, Some(expand(10)), &wang).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("EXPANSION_WINDOW_EXCEEDED"))
    );
    // Once they have left it, a full grant again.
    app.clock.set(t0 + days(90 + 365 - 90));
    let r = app.call("PUT", &path, Some(expand(90)), &wang).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
