//! Operator-maintained data through the router: calendar years, deadline
//! policies and service catalogs — read by everyone signed in, changed only
//! with the right permission, every bad upload refused with its own code and
//! nothing written.

use axum::http::StatusCode;
use serde_json::json;

use crate::test_app::{App, code, cst, line};

/// A made-up 2027 year for tests only (the real notice is not loaded here).
const TEST_2027: &str = r#"
year = 2027
source = "测试数据：2027 年节假日（非官方）"

[[holidays]]
name = "元旦"
start = 2027-01-01
end = 2027-01-03
"#;

const FAST_POLICY: &str = r#"
name = "fast"
title = "测试用快速规则"

[steps.accept_or_refuse]
amount = 1
unit = "working_days"
source = "test art. 1"
"#;

#[tokio::test]
async fn an_operator_adds_a_calendar_year_and_deadlines_use_it() {
    // Wednesday 30 December 2026: a 3-working-day step reaches into 2027.
    let app = App::with_users_at(cst(2026, 12, 30, 9)).await;
    let (li, zhou, admin) = (app.login("li").await, app.login("zhou").await, App::admin());
    let sys = app.system_create(&li, "跨年系统").await.body["number"]
        .as_str()
        .expect("n")
        .to_owned();
    let create =
        json!({"kind": "onboarding", "system": sys, "policy": "yongjia", "lines": [line("a", 1)]});
    let first = app
        .call("POST", "/api/v1/orders", Some(create.clone()), &li)
        .await;
    let first_id = first.body["id"].as_str().expect("id").to_owned();
    let r = app.step(&li, &first_id, "submitted").await;
    assert_eq!(r["deadline_unknown"], "CALENDAR_YEAR_UNKNOWN", "{r}");

    let r = app.call("GET", "/api/v1/calendar/2027", None, &li).await;
    assert_eq!(
        code(&r),
        (StatusCode::NOT_FOUND, Some("CALENDAR_YEAR_UNKNOWN"))
    );
    // Tenants may read the calendar but not change it.
    let r = app
        .call_text("PUT", "/api/v1/calendar/2027", TEST_2027, &li)
        .await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    // Bad files: each refused with its own code, nothing written.
    let audits = app.audit_count().await;
    for (path, body, want) in [
        ("/api/v1/calendar/2028", TEST_2027, "CALENDAR_YEAR_MISMATCH"),
        ("/api/v1/calendar/2027", "year = ", "CALENDAR_PARSE_FAILED"),
        (
            "/api/v1/calendar/2027",
            "year = 2027\nsource = \"x\"\n[[make_up_workdays]]\ndate = 2027-01-05\nholiday = \"元旦\"\n",
            "CALENDAR_MAKE_UP_NOT_WEEKEND",
        ),
    ] {
        let r = app.call_text("PUT", path, body, &zhou).await;
        assert_eq!(
            code(&r),
            (StatusCode::BAD_REQUEST, Some(want)),
            "{}",
            r.body
        );
    }
    assert_eq!(app.audit_count().await, audits);

    let r = app
        .call_text("PUT", "/api/v1/calendar/2027", TEST_2027, &admin)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["origin"], "operator");
    let r = app.call("GET", "/api/v1/calendar", None, &li).await;
    let years: Vec<_> = r.body["years"]
        .as_array()
        .expect("years")
        .iter()
        .map(|y| (y["year"].as_i64(), y["origin"].as_str()))
        .collect();
    assert_eq!(
        years,
        [
            (Some(2025), Some("built_in")),
            (Some(2026), Some("built_in")),
            (Some(2027), Some("operator"))
        ]
    );
    // A step started now is counted across New Year: Thu 31 Dec, Mon 4 Jan, Tue 5 Jan.
    let second = app.call("POST", "/api/v1/orders", Some(create), &li).await;
    let id = second.body["id"].as_str().expect("id").to_owned();
    let r = app.step(&li, &id, "submitted").await;
    assert_eq!(r["deadline"]["due_date"], "2027-01-05", "{r}");
}

#[tokio::test]
async fn operator_policies_are_validated_presets_are_read_only_and_orders_may_name_them() {
    let app = App::with_users_at(cst(2026, 3, 2, 9)).await;
    let (li, zhou) = (app.login("li").await, app.login("zhou").await);
    let r = app.call("GET", "/api/v1/policies", None, &li).await;
    let names: Vec<_> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(names, ["beijing", "datong", "yongjia"]);
    let r = app.call("GET", "/api/v1/policies/yongjia", None, &li).await;
    assert_eq!(r.body["steps"][0]["source"], "002 art. 9", "{}", r.body);
    let r = app.call("GET", "/api/v1/policies/nope", None, &li).await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("POLICY_UNKNOWN")));

    let audits = app.audit_count().await;
    let yongjia = include_str!("../../domain/data/policies/yongjia.toml");
    for (path, body, want) in [
        ("/api/v1/policies/fast", FAST_POLICY, StatusCode::FORBIDDEN),
        ("/api/v1/policies/yongjia", yongjia, StatusCode::CONFLICT),
        (
            "/api/v1/policies/other",
            FAST_POLICY,
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/policies/fast",
            &FAST_POLICY.replace("test art. 1", ""),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let who = if want == StatusCode::FORBIDDEN {
            &li
        } else {
            &zhou
        };
        let r = app.call_text("PUT", path, body, who).await;
        assert_eq!(r.status, want, "{path}: {}", r.body);
    }
    assert_eq!(app.audit_count().await, audits, "refusals write nothing");

    let r = app
        .call_text("PUT", "/api/v1/policies/fast", FAST_POLICY, &zhou)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let sys = app.system_create(&li, "快速系统").await.body["number"]
        .as_str()
        .expect("n")
        .to_owned();
    let r = app
        .call(
            "POST",
            "/api/v1/orders",
            Some(json!({"kind": "onboarding", "system": sys, "policy": "nope", "lines": [line("a", 1)]})),
            &li,
        )
        .await;
    assert_eq!(code(&r), (StatusCode::BAD_REQUEST, Some("POLICY_UNKNOWN")));
    let id = app.order_create(&li, &sys, Some("fast")).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Monday 2 March 2026 + 1 working day.
    let r = app.step(&li, &id, "submitted").await;
    assert_eq!(
        (&r["policy"], &r["deadline"]["due_date"]),
        (&json!("fast"), &json!("2026-03-03"))
    );
}

#[tokio::test]
async fn catalogs_are_listed_exported_and_imported_with_every_bad_row_reported() {
    let app = App::with_users().await;
    let (li, zhou) = (app.login("li").await, app.login("zhou").await);
    let r = app.call("GET", "/api/v1/catalogs", None, &li).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let list: Vec<_> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().expect("id").to_owned(),
                c["items"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        list,
        [
            ("beijing-2023".to_owned(), Some(23)),
            ("datong-2023".to_owned(), Some(86))
        ]
    );
    let r = app
        .call("GET", "/api/v1/catalogs/beijing-2023", None, &li)
        .await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(23));
    let csv = app
        .call_text("GET", "/api/v1/catalogs/beijing-2023?format=csv", "", &li)
        .await;
    let csv = csv.body.as_str().expect("csv text").to_owned();
    assert!(csv.contains("1001"), "{csv}");
    let r = app.call("GET", "/api/v1/catalogs/nope", None, &li).await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("CATALOG_NOT_FOUND")));

    // Re-import the Beijing catalog under a new id as CSV.
    let mine = csv.replacen("beijing-2023", "city-2026", 1);
    let import = "/api/v1/catalogs/import?format=csv";
    let r = app.call_text("POST", import, &mine, &li).await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
    let r = app.call_text("POST", import, &csv, &zhou).await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("CATALOG_BUILTIN_READONLY"))
    );
    // Break two rows: every problem is reported, nothing is written.
    let audits = app.audit_count().await;
    let broken = mine
        .replacen("\n1001,", "\n,", 1)
        .replacen("\n1002,", "\n1003,", 1);
    assert_ne!(broken, mine, "the CSV has the codes to break");
    let r = app.call_text("POST", import, &broken, &zhou).await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("CATALOG_IMPORT_INVALID")),
        "{}",
        r.body
    );
    let issues = r.body["details"]["issues"].as_array().expect("issues");
    assert!(issues.len() >= 2, "{issues:?}");
    assert!(
        issues
            .iter()
            .all(|i| i["row"].is_u64() && i["message_zh"].is_string()),
        "{issues:?}"
    );
    assert_eq!(app.audit_count().await, audits);
    let r = app
        .call("GET", "/api/v1/catalogs/city-2026", None, &li)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = app.call_text("POST", import, &mine, &zhou).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        (&r.body["id"], &r.body["items"], &r.body["origin"]),
        (&json!("city-2026"), &json!(23), &json!("operator"))
    );
    let r = app
        .call("GET", "/api/v1/catalogs/city-2026", None, &li)
        .await;
    assert_eq!(r.body["origin"], "operator", "{}", r.body);
}

#[tokio::test]
async fn auditors_filter_the_log_and_export_it_as_csv_with_its_hashes() {
    let app = App::with_users().await;
    let (li, qian) = (app.login("li").await, app.login("qian").await);
    for name in ["甲系统", "乙系统", "丙系统"] {
        assert_eq!(
            app.system_create(&li, name).await.status,
            StatusCode::CREATED
        );
    }
    let page = app
        .call(
            "GET",
            "/api/v1/audit?actor=user:li&action=system.&limit=2",
            None,
            &qian,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let items = page.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{}", page.body);
    assert!(items.iter().all(|e| e["action"] == "system.create"));
    let next = page.body["next"].as_str().expect("a third entry remains");
    let rest = app
        .call(
            "GET",
            &format!("/api/v1/audit?actor=user:li&action=system.&after={next}"),
            None,
            &qian,
        )
        .await;
    assert_eq!(rest.body["items"].as_array().map(Vec::len), Some(1));
    assert!(rest.body["next"].is_null());

    let csv = app
        .call_text("GET", "/api/v1/audit/export?action=system.", "", &qian)
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    let text = csv.body.as_str().expect("csv").to_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "seq,at,actor,action,target,detail,prev_hash,hash");
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].contains("system.create") && lines[1].contains("甲系统"));
    // Tenants and the platform admin may not export.
    for who in [li, App::admin()] {
        let r = app.call("GET", "/api/v1/audit/export", None, &who).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
}
