//! Security issue 16 item 5 (and item 16's cookies): the API served over TLS
//! with a certificate from the controller's own CA; a driver bootstraps over
//! it trusting nothing but the CA its token pins, and refuses answers that
//! name another CA; browsers get `__Host-` `Secure` session cookies.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::routing::{get, post};
use yunshu_driver_sdk::EventLog;
use yunshu_driver_sdk::bootstrap::{self, BootstrapError, Credentials};
use yunshu_e2e::{Controller, RunningDriver, eventually};
use yunshu_proto::bootstrap::{BootstrapToken, CA_PATH, CaResponse, CertificateResponse};
use yunshu_server::tls::TlsSource;
use yunshu_sim::{Sim, SimConfig};
use yunshu_store::StoreSpec;

async fn tls_controller() -> Controller {
    Controller::start_configured(StoreSpec::Memory, |config| yunshu_server::ServeConfig {
        tls: Some(TlsSource::ControllerCa {
            names: vec!["127.0.0.1".into()],
        }),
        // A published password on loopback gives the test someone to sign in as.
        demo: true,
        ..config
    })
    .await
}

/// A client that trusts the controller CA only.
fn trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("pem"))
        .build()
        .expect("client")
}

async fn controller_ca(c: &Controller) -> String {
    let any = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let ca: CaResponse = any
        .get(format!("{}{CA_PATH}", c.url))
        .send()
        .await
        .expect("ca")
        .json()
        .await
        .expect("json");
    ca.ca_pem
}

#[tokio::test]
async fn the_api_over_tls_from_the_controller_ca_bootstraps_a_driver_and_sets_host_cookies() {
    let c = tls_controller().await;
    assert!(c.url.starts_with("https://127.0.0.1:"), "{}", c.url);
    let ca = controller_ca(&c).await;
    let http = trusting(&ca);
    // The certificate chains to the controller CA and names the address.
    let health = http
        .get(format!("{}/healthz", c.url))
        .send()
        .await
        .expect("https with the controller CA as the only root");
    assert!(health.status().is_success());
    // Plain HTTP on the TLS port gets no answer.
    let plain = c.url.replacen("https://", "http://", 1);
    let refused = reqwest::Client::new()
        .get(format!("{plain}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        refused.is_err() || !refused.as_ref().is_ok_and(|r| r.status().is_success()),
        "plain HTTP is not served: {refused:?}"
    );

    // A driver registers over HTTPS with nothing but its token.
    let token = http
        .post(format!("{}/api/v1/admin/driver-tokens", c.url))
        .bearer_auth(&c.admin_token)
        .json(&serde_json::json!({"provider": "tls-sim", "ttl_seconds": 600}))
        .send()
        .await
        .expect("token")
        .json::<serde_json::Value>()
        .await
        .expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let state = tempfile::tempdir().expect("tempdir");
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Arc::new(Sim::new(SimConfig::demo(), log.sink()).expect("simulator"));
    let driver = RunningDriver::start_at(
        sim,
        log,
        &c.url,
        "tls-sim",
        Some(token),
        state.path().to_path_buf(),
    )
    .await;
    let registered = eventually(Duration::from_secs(20), || async {
        let Ok(r) = http
            .get(format!("{}/api/v1/admin/drivers", c.url))
            .bearer_auth(&c.admin_token)
            .send()
            .await
        else {
            return false;
        };
        let drivers: serde_json::Value = r.json().await.unwrap_or_default();
        drivers.as_array().is_some_and(|all| {
            all.iter()
                .any(|d| d["provider"] == "tls-sim" && d["health"]["state"] == "healthy")
        })
    })
    .await;
    assert!(registered, "the driver registered over TLS and is reached");
    let saved = Credentials::load(state.path())
        .expect("load")
        .expect("saved");
    assert_eq!(
        yunshu_pki::fingerprint(&saved.ca_pem).expect("fp"),
        yunshu_pki::fingerprint(&ca).expect("fp")
    );
    drop(driver);

    // Sign-in over HTTPS: a `__Host-` cookie marked Secure.
    let login = http
        .post(format!("{}/api/v1/auth/login", c.url))
        .json(&serde_json::json!({"user": "reviewer", "password": yunshu_workflow_demo_password()}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("set-cookie")
        .to_owned();
    assert!(cookie.starts_with("__Host-yunshu_session="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
    let session = cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("session id");
    let me = |name: &'static str| {
        let http = http.clone();
        let url = format!("{}/api/v1/auth/me", c.url);
        let session = session.clone();
        async move {
            http.get(url)
                .header("cookie", format!("{name}={session}"))
                .send()
                .await
                .expect("me")
                .status()
                .as_u16()
        }
    };
    assert_eq!(me("__Host-yunshu_session").await, 200);
    // The same id under the plain name (which anyone on plain HTTP could set)
    // is no session.
    assert_eq!(me("yunshu_session").await, 401);
}

/// The demo's published password (the demo runs only on loopback).
fn yunshu_workflow_demo_password() -> &'static str {
    "Yunshu-Demo-2026"
}

#[test]
fn a_driver_sends_its_secrets_in_clear_only_to_a_loopback_controller() {
    for ok in [
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://[::1]:8080",
        "https://yunshu.example.gov.cn",
        "https://10.0.0.5:8443/",
    ] {
        assert!(bootstrap::Controller::new(ok, None).is_ok(), "{ok}");
    }
    for insecure in ["http://10.0.0.5:8080", "http://yunshu.example.gov.cn"] {
        assert!(
            matches!(
                bootstrap::Controller::new(insecure, None),
                Err(BootstrapError::InsecureController { .. })
            ),
            "{insecure}"
        );
    }
    assert!(matches!(
        bootstrap::Controller::new("ftp://127.0.0.1", None),
        Err(BootstrapError::BadControllerUrl { .. })
    ));
}

/// A fake controller on loopback whose answers name `answer_ca` while
/// `GET /drivers/ca` serves `served_ca`: what a man in the middle or a
/// swapped controller would do.
async fn fake_controller(served_ca: String, answer_ca: String) -> String {
    let answer = CertificateResponse {
        certificate_pem: answer_ca.clone(),
        ca_pem: answer_ca,
        renewal_token: "next".into(),
        not_after_unix: 4_000_000_000,
    };
    let app = axum::Router::new()
        .route(
            CA_PATH,
            get(move || {
                let ca_pem = served_ca.clone();
                async move {
                    let fingerprint = yunshu_pki::fingerprint(&ca_pem).unwrap_or_default();
                    Json(CaResponse {
                        ca_pem,
                        fingerprint,
                    })
                }
            }),
        )
        .route(
            yunshu_proto::bootstrap::REGISTER_PATH,
            post({
                let answer = answer.clone();
                move || async move { Json(answer) }
            }),
        )
        .route(
            yunshu_proto::bootstrap::RENEW_PATH,
            post(move || async move { Json(answer) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn register_and_renew_answers_naming_another_ca_are_refused() {
    let pinned = yunshu_pki::CertificateAuthority::generate().expect("ca");
    let other = yunshu_pki::CertificateAuthority::generate().expect("ca");
    let url = fake_controller(pinned.cert_pem().to_owned(), other.cert_pem().to_owned()).await;
    let api = bootstrap::Controller::new(&url, None).expect("loopback");
    let token = BootstrapToken {
        id: yunshu_pki::random_hex(8),
        secret: yunshu_pki::random_hex(32),
        ca_fingerprint: pinned.fingerprint().expect("fp"),
    }
    .to_string();
    let registered = bootstrap::register(&api, &token, "sim", "127.0.0.1:1").await;
    assert!(
        matches!(registered, Err(BootstrapError::CaChanged { .. })),
        "{registered:?}"
    );
    let current = Credentials {
        provider: "sim".into(),
        key_pem: String::new(),
        cert_pem: String::new(),
        ca_pem: pinned.cert_pem().to_owned(),
        renewal_token: "secret".into(),
        issued_unix: 0,
        not_after_unix: 4_000_000_000,
    };
    let renewed = bootstrap::renew(&api, &current, "127.0.0.1:1").await;
    assert!(
        matches!(renewed, Err(BootstrapError::CaChanged { .. })),
        "{renewed:?}"
    );
}
