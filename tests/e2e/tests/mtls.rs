//! Driver identity end to end: bootstrap with one-time tokens, mutual TLS both
//! ways, renewal without downtime. Every negative case passes because the
//! connection or the request is refused.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use yunshu_driver_sdk::bootstrap::{self, BootstrapError, register};
use yunshu_driver_sdk::tonic::Status;
use yunshu_driver_sdk::{Driver, EventLog, v1};
use yunshu_e2e::{Controller, RunningDriver, eventually, get_info};

/// The smallest driver: no inventory, no resources. Enough to test identity.
struct Tiny;

#[async_trait]
impl Driver for Tiny {
    fn info(&self) -> v1::DriverInfo {
        v1::DriverInfo {
            name: "tiny-test-driver".into(),
            version: "0".into(),
            kinds: vec![v1::ResourceKind::Vpc as i32],
            ..Default::default()
        }
    }
    async fn inventory(&self) -> Result<v1::Inventory, Status> {
        Ok(v1::Inventory::default())
    }
    async fn apply(&self, r: &v1::ApplyRequest) -> Result<v1::ResourceState, Status> {
        Ok(v1::ResourceState {
            kind: r.kind,
            id: r.id.clone(),
            generation: r.generation,
            ..Default::default()
        })
    }
    async fn get(&self, _: v1::ResourceKind, _: &str) -> Result<Option<v1::ResourceState>, Status> {
        Ok(None)
    }
    async fn delete(
        &self,
        _: v1::ResourceKind,
        _: &str,
    ) -> Result<Option<v1::ResourceState>, Status> {
        Ok(None)
    }
    async fn list(
        &self,
        _: Option<v1::ResourceKind>,
        _: Option<(v1::ResourceKind, String)>,
        _: usize,
    ) -> Result<Vec<v1::ResourceState>, Status> {
        Ok(Vec::new())
    }
}

async fn start_tiny(controller: &Controller, provider: &str) -> RunningDriver {
    let token = controller.token(provider).await;
    RunningDriver::start(
        Arc::new(Tiny),
        EventLog::new(16),
        &controller.url,
        provider,
        Some(token),
    )
    .await
}

async fn registered_healthy(controller: &Controller, provider: &str) -> bool {
    let drivers = controller.drivers().await;
    drivers.as_array().is_some_and(|list| {
        list.iter()
            .any(|d| d["provider"] == provider && d["health"]["state"] == "healthy")
    })
}

const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn registered_driver_is_reached_over_mtls_and_marked_healthy() {
    let c = Controller::start(Duration::from_secs(3600)).await;
    let d = start_tiny(&c, "tiny").await;
    assert!(
        eventually(PATIENCE, || registered_healthy(&c, "tiny")).await,
        "registry: {}",
        c.drivers().await
    );
    let (cert, key, ca) = c.client_identity().await;
    let info = get_info(&d.endpoint, "tiny", &ca, Some((&cert, &key)))
        .await
        .expect("a controller identity is accepted");
    assert_eq!(info.provider, "tiny");
    assert_eq!(info.name, "tiny-test-driver");
    assert_eq!(
        info.protocol_version,
        v1::ProtocolVersion::ProtocolVersion1 as i32
    );
    // A driver that measures nothing says so rather than answer zeros.
    let refused = d
        .client(&c, "tiny")
        .await
        .get_metrics(v1::GetMetricsRequest { ids: Vec::new() })
        .await
        .expect_err("no metrics");
    assert_eq!(refused.code(), yunshu_proto::tonic::Code::Unimplemented);
    assert_eq!(
        yunshu_proto::errors::reason(&refused).map(|r| r.reason),
        Some("METRICS_UNSUPPORTED".to_owned())
    );
    let listed = c.drivers().await;
    assert_eq!(listed[0]["endpoint"], d.endpoint.as_str());
    assert!(
        listed[0].get("renewal_token_sha256").is_none(),
        "no secrets in the API"
    );
}

#[tokio::test]
async fn client_without_a_certificate_is_refused() {
    let c = Controller::start(Duration::from_secs(3600)).await;
    let d = start_tiny(&c, "tiny").await;
    assert!(eventually(PATIENCE, || registered_healthy(&c, "tiny")).await);
    let ca = c.ca_pem().await;
    let refused = get_info(&d.endpoint, "tiny", &ca, None).await;
    assert!(refused.is_err(), "{refused:?}");
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused() {
    let c = Controller::start(Duration::from_secs(3600)).await;
    let d = start_tiny(&c, "tiny").await;
    assert!(eventually(PATIENCE, || registered_healthy(&c, "tiny")).await);
    let rogue_ca = yunshu_pki::CertificateAuthority::generate().expect("rogue ca");
    let rogue = rogue_ca
        .issue_controller(Duration::from_secs(600))
        .expect("rogue identity");
    let ca = c.ca_pem().await;
    let refused = get_info(
        &d.endpoint,
        "tiny",
        &ca,
        Some((&rogue.cert_pem, &rogue.key_pem)),
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
}

#[tokio::test]
async fn a_driver_certificate_cannot_act_as_the_controller() {
    let c = Controller::start(Duration::from_secs(3600)).await;
    let a = start_tiny(&c, "alpha").await;
    let b = start_tiny(&c, "beta").await;
    assert!(eventually(PATIENCE, || registered_healthy(&c, "alpha")).await);
    assert!(eventually(PATIENCE, || registered_healthy(&c, "beta")).await);
    // Driver alpha's own certificate (serverAuth only) against driver beta.
    let saved: serde_json::Value = serde_json::from_slice(
        &std::fs::read(a.state_dir.join("credentials.json")).expect("alpha credentials"),
    )
    .expect("json");
    let (cert, key) = (
        saved["cert_pem"].as_str().expect("cert"),
        saved["key_pem"].as_str().expect("key"),
    );
    let ca = c.ca_pem().await;
    let refused = get_info(&b.endpoint, "beta", &ca, Some((cert, key))).await;
    assert!(refused.is_err(), "{refused:?}");
}

/// The controller's API as the SDK's bootstrap reaches it.
fn api(c: &Controller) -> bootstrap::Controller {
    bootstrap::Controller::new(&c.url, None).expect("loopback http is allowed")
}

fn refused_with(result: Result<impl std::fmt::Debug, BootstrapError>, status: u16, code: &str) {
    match result {
        Err(BootstrapError::Refused {
            status: s, code: c, ..
        }) => assert_eq!((s, c.as_str()), (status, code)),
        other => panic!("expected HTTP {status} {code}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_cannot_be_used_twice() {
    let c = Controller::start(Duration::from_secs(3600)).await;
    let api = api(&c);
    let token = c.token("tiny").await;
    register(&api, &token, "tiny", "127.0.0.1:1")
        .await
        .expect("first use");
    refused_with(
        register(&api, &token, "tiny", "127.0.0.1:2").await,
        401,
        "TOKEN_USED",
    );
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let c = Controller::start(Duration::from_secs(3600)).await;
    let (status, body) = c.create_token("tiny", 1).await;
    assert_eq!(status, 201);
    let token = body["token"].as_str().expect("token").to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    refused_with(
        register(&api(&c), &token, "tiny", "127.0.0.1:1").await,
        401,
        "TOKEN_EXPIRED",
    );
}

#[tokio::test]
async fn a_driver_claiming_another_providers_name_is_refused() {
    let c = Controller::start(Duration::from_secs(3600)).await;
    let token = c.token("alpha").await;
    refused_with(
        register(&api(&c), &token, "beta", "127.0.0.1:1").await,
        403,
        "PROVIDER_MISMATCH",
    );
    assert_eq!(
        c.drivers().await,
        serde_json::json!([]),
        "nothing registered"
    );
}

#[tokio::test]
async fn a_forged_or_foreign_token_is_refused() {
    let c = Controller::start(Duration::from_secs(3600)).await;
    let real = c.token("tiny").await;
    // Same id, another secret.
    let mut parts: Vec<String> = real.split('.').map(str::to_owned).collect();
    parts[2] = "0".repeat(64);
    refused_with(
        register(&api(&c), &parts.join("."), "tiny", "127.0.0.1:1").await,
        401,
        "TOKEN_INVALID",
    );
    // A token naming another CA: the driver refuses to trust this controller.
    let mut parts: Vec<String> = real.split('.').map(str::to_owned).collect();
    parts[3] = "f".repeat(64);
    let r = register(&api(&c), &parts.join("."), "tiny", "127.0.0.1:1").await;
    assert!(matches!(r, Err(BootstrapError::CaMismatch { .. })), "{r:?}");
}

#[tokio::test]
async fn the_certificate_is_renewed_before_expiry_without_downtime() {
    // Six-second certificates: renewal two thirds in, at about four seconds.
    let c = Controller::start(Duration::from_secs(6)).await;
    let d = start_tiny(&c, "tiny").await;
    assert!(eventually(PATIENCE, || registered_healthy(&c, "tiny")).await);
    let first = c.drivers().await[0]["fingerprint"].clone();
    let (cert, key, ca) = c.client_identity().await;
    // Call on fresh connections across two renewals: every call must succeed.
    let started = std::time::Instant::now();
    let mut calls = 0;
    while started.elapsed() < Duration::from_secs(9) {
        get_info(&d.endpoint, "tiny", &ca, Some((&cert, &key)))
            .await
            .unwrap_or_else(|e| panic!("call {calls} failed during renewal: {e}"));
        calls += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let after = c.drivers().await;
    assert_ne!(after[0]["fingerprint"], first, "the certificate changed");
    assert!(!after[0]["renewed_at"].is_null());
    assert!(calls > 20);
}

#[tokio::test]
async fn a_restarted_driver_keeps_its_identity_without_a_new_token() {
    let c = Controller::start(Duration::from_secs(3600)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let token = c.token("tiny").await;
    let first = RunningDriver::start_at(
        Arc::new(Tiny),
        EventLog::new(4),
        &c.url,
        "tiny",
        Some(token),
        state.clone(),
    )
    .await;
    assert!(eventually(PATIENCE, || registered_healthy(&c, "tiny")).await);
    let first_fingerprint = c.drivers().await[0]["fingerprint"].clone();
    drop(first);
    // Same state directory, no token, a new port: the saved credentials renew and
    // the registry follows the driver to its new endpoint.
    let second = RunningDriver::start_at(
        Arc::new(Tiny),
        EventLog::new(4),
        &c.url,
        "tiny",
        None,
        state,
    )
    .await;
    let endpoint = second.endpoint.clone();
    assert!(
        eventually(PATIENCE, || async {
            let d = c.drivers().await;
            d[0]["endpoint"] == endpoint.as_str() && d[0]["health"]["state"] == "healthy"
        })
        .await,
        "registry follows the restarted driver: {}",
        c.drivers().await
    );
    assert_ne!(c.drivers().await[0]["fingerprint"], first_fingerprint);
}

#[tokio::test]
async fn admin_endpoints_refuse_bad_requests_with_codes() {
    let c = Controller::start(Duration::from_secs(3600)).await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/admin/driver-tokens", c.url);
    let r = http
        .post(&url)
        .json(&serde_json::json!({"provider": "x"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status().as_u16(), 401);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["code"], "ADMIN_TOKEN_REQUIRED");
    assert!(body["message_zh"].as_str().is_some_and(|m| !m.is_empty()));
    let r = http
        .post(&url)
        .bearer_auth(&c.admin_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json")["code"],
        "BODY_INVALID"
    );
    let (status, body) = c.create_token("Not_A_Label", 60).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("PROVIDER_NAME_INVALID"))
    );
    let (status, body) = c.create_token("ok", 0).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("TTL_INVALID")));
}
