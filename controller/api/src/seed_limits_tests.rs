//! Issue 17, "Limits checked by the server": the seeds' numbered limits
//! refused by the server for every client, through the router — the order's
//! service catalog at save and submission (003 §3.2.1.1; 000 附件1
//! ZW010201/ZW010203), 信创 catalog items (000 附件1 备注), and catalog
//! imports priced above the published maximum (003 §3.1.3). Each refusal
//! writes nothing (no order, no audit entry). `docs/seed-rules.md` lists them.

use axum::http::StatusCode;
use serde_json::{Value, json};
use yunshu_domain::order::WorkOrder;
use yunshu_store::{Store, records};

use crate::test_app::{App, Auth, code, cst, line};

/// A VM line of `arch` with `vcpu` and `memory_gib`.
fn vm(name: &str, arch: &str, vcpu: u32, memory_gib: u32) -> Value {
    let mut l = line(name, 1);
    l["server"]["architecture"] = json!(arch);
    l["server"]["vcpu"] = json!(vcpu);
    l["server"]["memory_gib"] = json!(memory_gib);
    l
}

async fn system(app: &App, auth: &Auth) -> String {
    app.system_create(auth, "限额测试系统").await.body["number"]
        .as_str()
        .expect("number")
        .to_owned()
}

async fn order_count(app: &App) -> usize {
    records::list::<WorkOrder>(&*app.store, yunshu_store::PageRequest::default())
        .await
        .expect("orders")
        .0
        .len()
}

/// The `(line, code)` pairs of a refusal's `details.issues`.
fn issues(body: &Value) -> Vec<(u64, String)> {
    body["details"]["issues"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    (
                        i["line"].as_u64().unwrap_or_default(),
                        i["code"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Seed 003 §3.2.1.1 (性能范围: 1–16 核, 1–64 GB) via the Beijing catalog
/// (items 1001/1002, 003 §3.1.3): a 17-vCPU / 65 GiB VM is refused at save
/// (POST and PUT) with both problems listed, every bad line named; nothing is
/// written. 100,000 vCPU is refused too (by the sanity ceiling first).
#[tokio::test]
async fn seed_003_3_2_1_1_beijing_shape_limits_are_refused_at_save() {
    let app = App::with_users_at(cst(2026, 3, 2, 9)).await;
    let li = app.login("li").await;
    let sys = system(&app, &li).await;
    let (orders, audits) = (order_count(&app).await, app.audit_count().await);

    let body = json!({"kind": "onboarding", "system": sys, "lines": [
        vm("ok-01", "x86_64", 16, 64),
        vm("big-01", "x86_64", 17, 65),
        vm("arm-01", "arm64", 32, 8),
    ]});
    let r = app.call("POST", "/api/v1/orders", Some(body), &li).await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("SHAPE_VCPU_NOT_ALLOWED")),
        "{}",
        r.body
    );
    assert_eq!(r.body["details"]["catalog"], "beijing-2023", "{}", r.body);
    assert_eq!(
        issues(&r.body),
        [
            (2, "SHAPE_VCPU_NOT_ALLOWED".to_owned()),
            (2, "SHAPE_MEMORY_NOT_ALLOWED".to_owned()),
            (3, "SHAPE_VCPU_NOT_ALLOWED".to_owned()),
        ],
        "{}",
        r.body
    );
    assert!(
        r.body["message_zh"]
            .as_str()
            .is_some_and(|m| m.contains("big-01") && m.contains("arm-01")),
        "{}",
        r.body
    );

    let body =
        json!({"kind": "onboarding", "system": sys, "lines": [vm("huge", "x86_64", 100_000, 8)]});
    let r = app.call("POST", "/api/v1/orders", Some(body), &li).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(order_count(&app).await, orders, "nothing written");
    assert_eq!(app.audit_count().await, audits, "no audit entry");

    // A valid order passes; editing it to 17 vCPU / 65 GiB is refused and
    // leaves it as it was.
    let good =
        json!({"kind": "onboarding", "system": sys, "lines": [vm("web-01", "x86_64", 16, 64)]});
    let r = app.call("POST", "/api/v1/orders", Some(good), &li).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let audits = app.audit_count().await;
    let edit = json!({"lines": [vm("web-01", "x86_64", 17, 65)]});
    let r = app
        .call("PUT", &format!("/api/v1/orders/{id}"), Some(edit), &li)
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("SHAPE_VCPU_NOT_ALLOWED")),
        "{}",
        r.body
    );
    assert_eq!(app.audit_count().await, audits);
    let r = app.order_get(&li, &id).await;
    assert_eq!(
        r.body["request"]["lines"][0]["server"]["vcpu"], 16,
        "{}",
        r.body
    );
    let edit = json!({"lines": [vm("web-01", "x86_64", 100_000, 8)]});
    let r = app
        .call("PUT", &format!("/api/v1/orders/{id}"), Some(edit), &li)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(app.audit_count().await, audits);
    app.step(&li, &id, "submitted").await;
}

/// Seed 003 §3.2.1.1 at submission: an order stored outside its catalog
/// (written before the rule, or not through the workflow) cannot be
/// submitted; its state and audit chain stay as they were.
#[tokio::test]
async fn seed_003_3_2_1_1_an_order_outside_its_catalog_is_refused_at_submit() {
    let app = App::with_users_at(cst(2026, 3, 2, 9)).await;
    let li = app.login("li").await;
    let sys = system(&app, &li).await;
    let good =
        json!({"kind": "onboarding", "system": sys, "lines": [vm("web-01", "x86_64", 4, 8)]});
    let r = app.call("POST", "/api/v1/orders", Some(good), &li).await;
    let id = r.body["id"].as_str().expect("id").to_owned();
    // Older data: the same order with a 17-vCPU / 65 GiB line.
    let (mut stored, _) = records::get::<WorkOrder>(&*app.store, &id)
        .await
        .expect("get")
        .expect("stored");
    let mut wide: yunshu_domain::order_line::ResourceLine = serde_json::from_value(
        json!({"server": vm("web-01", "x86_64", 17, 65)["server"], "requested_qty": 1}),
    )
    .expect("line");
    std::mem::swap(
        &mut stored.request_edit().expect("draft").lines[0],
        &mut wide,
    );
    app.store
        .put(&records::key::<WorkOrder>(&id), records::encode(&stored))
        .await
        .expect("put");
    let audits = app.audit_count().await;
    let r = app.transition(&li, &id, "submitted", None).await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("SHAPE_VCPU_NOT_ALLOWED")),
        "{}",
        r.body
    );
    assert_eq!(issues(&r.body).len(), 2, "{}", r.body);
    assert_eq!(app.audit_count().await, audits);
    assert_eq!(app.order_get(&li, &id).await.body["state"], "draft");
}

/// Seed 000 附件1 ZW010201 (vCPU 每次最小增加单位为 2 核，最高上限为 64 核) and
/// ZW010203 (内存每次最小增加单位为 2GB，最高上限为 512GB): under Datong's rules
/// an odd vCPU count or memory size is refused, an even one within the limits
/// passes.
#[tokio::test]
async fn seed_000_att1_zw010201_zw010203_datong_steps_of_two() {
    let app = App::with_users_at(cst(2026, 3, 2, 9)).await;
    let li = app.login("li").await;
    let sys = system(&app, &li).await;
    let (orders, audits) = (order_count(&app).await, app.audit_count().await);
    let create = |lines: Vec<Value>| json!({"kind": "onboarding", "system": sys, "policy": "datong", "lines": lines});
    let r = app
        .call(
            "POST",
            "/api/v1/orders",
            Some(create(vec![
                vm("odd-01", "x86_64", 3, 8),
                vm("odd-02", "arm64", 4, 7),
            ])),
            &li,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("SHAPE_VCPU_NOT_ALLOWED")),
        "{}",
        r.body
    );
    assert_eq!(r.body["details"]["catalog"], "datong-2023");
    assert_eq!(
        issues(&r.body),
        [
            (1, "SHAPE_VCPU_NOT_ALLOWED".to_owned()),
            (2, "SHAPE_MEMORY_NOT_ALLOWED".to_owned()),
        ]
    );
    // 1 vCPU is allowed in Beijing, not in Datong (minimum one step of 2).
    let r = app
        .call(
            "POST",
            "/api/v1/orders",
            Some(create(vec![vm("one", "x86_64", 1, 2)])),
            &li,
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("SHAPE_VCPU_NOT_ALLOWED"))
    );
    assert_eq!(order_count(&app).await, orders);
    assert_eq!(app.audit_count().await, audits);
    let r = app
        .call(
            "POST",
            "/api/v1/orders",
            Some(create(vec![
                vm("x86-01", "x86_64", 64, 512),
                vm("xc-01", "arm64", 2, 2),
                vm("hg-01", "c86", 8, 16),
            ])),
            &li,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    app.step(&li, &id, "submitted").await;
}

/// Seed 003 §3.1.3 (各服务项最高限制单价; 注: 报价超出者作无效响应处理): an
/// operator catalog priced above Beijing's published maximum — by the same
/// item code, or by the same measure under another code, a yearly price
/// compared per month — is refused with every such row listed, and nothing
/// is written; at or under the maximum it is imported.
#[tokio::test]
async fn seed_003_3_1_3_catalog_priced_above_the_published_maximum_is_refused() {
    let app = App::with_users_at(cst(2026, 3, 2, 9)).await;
    let (li, zhou) = (app.login("li").await, app.login("zhou").await);
    let catalog = |vcpu: &str, memory_yearly: &str| {
        format!(
            r#"
id = "city-2026"
name = "某市政务云服务目录"
price_basis = "agreed"

[[items]]
code = "1001"
name = "vCPU"
unit = "1 CPU"
price = "{vcpu}"
billing = "monthly"
arch = "any"
measure = "vcpu"
quantity = 1

[[items]]
code = "MEM1"
name = "内存"
unit = "GB/年"
price = "{memory_yearly}"
billing = "yearly"
arch = "any"
measure = "memory_gib"
quantity = 1
"#
        )
    };
    let import = "/api/v1/catalogs/import?format=toml";
    let audits = app.audit_count().await;
    // 1001 is at most 14.02 元/月; memory (1002) at most 41.15 元/月 = 493.80 元/年.
    let r = app
        .call_text("POST", import, &catalog("14.03", "493.81"), &zhou)
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("CATALOG_IMPORT_INVALID")),
        "{}",
        r.body
    );
    let found: Vec<(Option<&str>, Option<&str>)> = r.body["details"]["issues"]
        .as_array()
        .expect("issues")
        .iter()
        .map(|i| (i["item_code"].as_str(), i["code"].as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (Some("1001"), Some("CATALOG_ROW_PRICE_ABOVE_MAXIMUM")),
            (Some("MEM1"), Some("CATALOG_ROW_PRICE_ABOVE_MAXIMUM")),
        ],
        "{}",
        r.body
    );
    assert_eq!(app.audit_count().await, audits, "nothing written");
    let r = app
        .call("GET", "/api/v1/catalogs/city-2026", None, &li)
        .await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("CATALOG_NOT_FOUND")));

    let r = app
        .call_text("POST", import, &catalog("14.02", "493.80"), &zhou)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

/// Seed 003 §2.1.1 (提供云服务要满足用户单位提出的信创改造需求) and §3.2.1.1
/// (一云多芯: 按需提供鲲鹏、飞腾、海光等各技术路线的计算资源): a system whose
/// using unit requires 信创 gets no x86_64 server — VM or bare metal — at
/// save or edit (400 `XINCHUANG_ARCH_REQUIRED`, every such line listed,
/// nothing written); arm64 and c86 lines pass (each placed only on a pool of
/// its architecture). A system without the requirement keeps x86_64.
#[tokio::test]
async fn seed_003_2_1_1_a_xinchuang_system_gets_no_x86_servers() {
    let app = App::with_users_at(cst(2026, 3, 2, 9)).await;
    let li = app.login("li").await;
    let mut body = crate::test_app::system_body("信创改造系统");
    body["xinchuang"] = json!(true);
    let r = app.call("POST", "/api/v1/systems", Some(body), &li).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["xinchuang"], true, "{}", r.body);
    let sys = r.body["number"].as_str().expect("number").to_owned();
    let (orders, audits) = (order_count(&app).await, app.audit_count().await);

    let mut metal = vm("db-01", "x86_64", 32, 256);
    metal["server"]["form"] = json!("bare_metal");
    let bad = json!({"kind": "onboarding", "system": sys, "lines": [
        vm("web-01", "arm64", 4, 8),
        vm("app-01", "x86_64", 4, 8),
        metal,
    ]});
    let r = app.call("POST", "/api/v1/orders", Some(bad), &li).await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("XINCHUANG_ARCH_REQUIRED")),
        "{}",
        r.body
    );
    assert_eq!(
        issues(&r.body),
        [
            (2, "XINCHUANG_ARCH_REQUIRED".to_owned()),
            (3, "XINCHUANG_ARCH_REQUIRED".to_owned()),
        ]
    );
    assert_eq!(order_count(&app).await, orders);
    assert_eq!(app.audit_count().await, audits);

    let good = json!({"kind": "onboarding", "system": sys, "lines": [
        vm("web-01", "arm64", 4, 8),
        vm("app-01", "c86", 8, 16),
    ]});
    let r = app.call("POST", "/api/v1/orders", Some(good), &li).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let edit = json!({"lines": [vm("web-01", "x86_64", 4, 8)]});
    let r = app
        .call("PUT", &format!("/api/v1/orders/{id}"), Some(edit), &li)
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::BAD_REQUEST, Some("XINCHUANG_ARCH_REQUIRED")),
        "{}",
        r.body
    );
    app.step(&li, &id, "submitted").await;

    // Without the requirement, x86_64 is fine.
    let other = system(&app, &li).await;
    let r = app
        .call(
            "POST",
            "/api/v1/orders",
            Some(json!({"kind": "onboarding", "system": other, "lines": [vm("app-01", "x86_64", 4, 8)]})),
            &li,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}
