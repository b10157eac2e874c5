//! The portal in real headless Chromium (issue 7): a tenant signs in, sees the
//! department's information system on the server-rendered, hydrated
//! dashboard; the language switch turns every visible label to English and
//! the choice survives a reload; a wrong password is refused next to the form;
//! empty fields are flagged next to the field. Screenshots: `target/e2e/`.
//!
//! Needs the browser bundle (`cargo run -p yunshu-portal-build --release`,
//! which `scripts/test` runs first).

use std::time::Duration;

use yunshu_e2e::browser::Browser;
use yunshu_e2e::{Controller, People};

const PASSWORD: &str = "E2e-Zhengwuyun-2026";

fn assets() -> std::path::PathBuf {
    yunshu_portal::server::default_assets_dir()
}

/// Every visible text of the page body.
async fn body_text(b: &Browser) -> String {
    b.text("body").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_signs_in_sees_the_dashboard_and_switches_to_english() {
    assert!(
        yunshu_portal::server::has_bundle(&assets()),
        "no portal bundle in {}: run `cargo run -p yunshu-portal-build --release` first",
        assets().display()
    );
    let Some(b) = Browser::start().await else {
        return;
    };
    let c = Controller::start(Duration::from_secs(3600)).await;
    let people = People::create(&c.url, &c.admin_token).await;
    let system = c.create_system(&people.wang, "不动产登记系统").await;

    // Not signed in: the dashboard sends the browser to sign in.
    b.open(&format!("{}/", c.url)).await;
    let url = b.client.current_url().await.expect("url");
    assert_eq!(url.path(), "/login", "{url}");
    assert_eq!(b.text("h1").await, "登录");

    // Empty fields are flagged next to the field, nothing is sent.
    b.click("#login-submit").await;
    assert_eq!(
        b.text_until("#user-error", |t| t == "请输入用户名").await,
        "请输入用户名"
    );
    assert_eq!(b.text("#password-error").await, "请输入密码");

    // A wrong password: the API's refusal, in Chinese, under the form.
    b.fill("#user", "wang").await;
    b.fill("#password", "not-the-password").await;
    b.click("#login-submit").await;
    let refusal_text = b.text_until("#login-error", |t| !t.is_empty()).await;
    assert!(
        !refusal_text.is_ascii(),
        "a Chinese refusal message: {refusal_text:?}"
    );
    b.screenshot("portal-login-refused-zh").await;

    // The right password: the dashboard, rendered with the tenant's data.
    b.fill("#password", PASSWORD).await;
    b.click("#login-submit").await;
    assert_eq!(b.text_until("h1", |t| t == "工作台").await, "工作台");
    b.hydrated().await;
    assert_eq!(b.text("#who").await, "wang");
    let systems = b.text("#systems").await;
    assert!(systems.contains(&system), "{systems}");
    assert!(systems.contains("不动产登记系统"), "{systems}");
    // First contentful paint of this server-rendered page (loopback).
    let fcp = b
        .client
        .execute(
            "const e = performance.getEntriesByName('first-contentful-paint')[0]; return e ? e.startTime : null;",
            vec![],
        )
        .await
        .expect("fcp");
    eprintln!("portal: dashboard first contentful paint {fcp} ms");
    if let Some(ms) = fcp.as_f64() {
        assert!(ms > 0.0, "{ms}");
    }
    b.screenshot("portal-dashboard-zh").await;

    // The language switch relabels every visible label at once…
    let chinese = body_text(&b).await;
    b.click("#lang-switch").await;
    assert_eq!(b.text_until("h1", |t| t == "Dashboard").await, "Dashboard");
    let english = body_text(&b).await;
    for label in [
        "Information systems",
        "Orders in progress",
        "Number",
        "Name",
        "System type",
        "MLPS level",
        "Sign out",
        "Profile",
        "中文",
    ] {
        assert!(english.contains(label), "{label:?} missing in {english}");
    }
    // …and no Chinese is left but the data (system and tenant names) and
    // the switch back to 中文.
    let data = ["不动产登记系统", "中文"];
    let mut leftover = english.clone();
    for d in data {
        leftover = leftover.replace(d, "");
    }
    assert!(
        !leftover
            .chars()
            .any(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch)),
        "untranslated labels: {leftover}\n(chinese page was: {chinese})"
    );
    b.screenshot("portal-dashboard-en").await;

    // The choice is remembered: a reload renders English on the server.
    b.open(&format!("{}/", c.url)).await;
    assert_eq!(b.text("h1").await, "Dashboard");
    b.close().await;
}
