//! Driver bootstrap and renewal endpoints (contract: `yunshu_proto::bootstrap`),
//! and the admin endpoints that mint tokens and list drivers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_drivers::registry::{DriverRecord, Health};
use yunshu_drivers::tokens::{self, TokenError};
use yunshu_proto::bootstrap::{CaResponse, CertificateResponse, RegisterRequest, RenewRequest};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{PageRequest, Txn, records};

use crate::auth::{NO_STORE, NoStore, PlatformAdmin};
use crate::context::audit_draft;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::state::AppState;

/// The registry entry as the admin API shows it: no secrets.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DriverView {
    pub provider: String,
    pub endpoint: String,
    pub fingerprint: String,
    pub not_after_unix: i64,
    pub registered_at: DateTime<Utc>,
    pub renewed_at: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub health: Health,
    pub driver_name: Option<String>,
    pub driver_version: Option<String>,
    pub simulator: Option<bool>,
}

impl From<DriverRecord> for DriverView {
    fn from(r: DriverRecord) -> Self {
        Self {
            provider: r.provider,
            endpoint: r.endpoint,
            fingerprint: r.fingerprint,
            not_after_unix: r.not_after_unix,
            registered_at: r.registered_at,
            renewed_at: r.renewed_at,
            last_seen: r.last_seen,
            health: r.health,
            driver_name: r.driver_name,
            driver_version: r.driver_version,
            simulator: r.simulator,
        }
    }
}

/// Mirror of `yunshu_proto::bootstrap::CaResponse`.
#[derive(utoipa::ToSchema)]
#[schema(as = CaResponse)]
#[allow(dead_code)]
pub struct CaResponseDoc {
    /// The driver CA certificate, PEM.
    ca_pem: String,
    /// SHA-256 of the CA certificate (hex).
    fingerprint: String,
}

/// Mirror of `yunshu_proto::bootstrap::RegisterRequest`.
#[derive(utoipa::ToSchema)]
#[schema(as = RegisterRequest)]
#[allow(dead_code)]
pub struct RegisterRequestDoc {
    /// The whole bootstrap token string.
    token: String,
    /// The provider the driver claims to serve: must be the token's.
    provider: String,
    /// `host:port` where the controller reaches the driver's gRPC server.
    endpoint: String,
    /// PKCS#10 certificate signing request, PEM.
    csr_pem: String,
}

/// Mirror of `yunshu_proto::bootstrap::RenewRequest`.
#[derive(utoipa::ToSchema)]
#[schema(as = RenewRequest)]
#[allow(dead_code)]
pub struct RenewRequestDoc {
    provider: String,
    /// The one-time renewal token from the last registration or renewal.
    renewal_token: String,
    csr_pem: String,
    /// The endpoint may move with a restart; the registry follows it.
    endpoint: String,
}

/// Mirror of `yunshu_proto::bootstrap::CertificateResponse`.
#[derive(utoipa::ToSchema)]
#[schema(as = CertificateResponse)]
#[allow(dead_code)]
pub struct CertificateResponseDoc {
    certificate_pem: String,
    ca_pem: String,
    /// One-time secret for the next renewal.
    renewal_token: String,
    not_after_unix: i64,
}

/// Longest TTL a bootstrap token may have.
const MAX_TOKEN_TTL_SECONDS: u64 = 7 * 24 * 3600;

fn bad(code: &'static str, en: impl Into<String>, zh: impl Into<String>) -> ApiError {
    ApiError::refused(StatusCode::BAD_REQUEST, code, en, zh)
}

fn check_provider(provider: &str) -> Result<(), ApiError> {
    yunshu_pki::check_provider_name(provider).map_err(|_| {
        bad(
            "PROVIDER_NAME_INVALID",
            format!("Provider name {provider:?} must be 1–63 lowercase letters, digits or '-'."),
            format!("云服务商名称“{provider}”须为 1–63 位小写字母、数字或“-”。"),
        )
    })
}

fn check_endpoint(endpoint: &str) -> Result<(), ApiError> {
    let ok = endpoint
        .rsplit_once(':')
        .is_some_and(|(host, port)| valid_host(host) && port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(())
    } else {
        Err(bad(
            "ENDPOINT_INVALID",
            format!(
                "Driver endpoint {endpoint:?} must be host:port with an IP address or a host name (letters, digits, '-', dots; no wildcard)."
            ),
            format!(
                "驱动地址“{endpoint}”须为 主机:端口，主机为 IP 地址或域名（字母、数字、连字符和点，不能含通配符）。"
            ),
        ))
    }
}

/// Whether `host` may become a certificate's subject name: an IP address
/// (IPv6 in brackets) or an RFC 1123 host name. A wildcard (`*.example`) or
/// anything else would give a driver a certificate that names more than its
/// own endpoint (issue 16 item 9).
fn valid_host(host: &str) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    let label = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    (1..=253).contains(&host.len())
        && host.split('.').all(label)
        // All-numeric names are mistyped IPv4 addresses, not hosts.
        && !host.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

fn sign(
    state: &AppState,
    csr_pem: &str,
    provider: &str,
    endpoint: &str,
) -> Result<yunshu_pki::IssuedCertificate, ApiError> {
    let host = endpoint
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']').to_owned())
        .unwrap_or_default();
    let pki = state.drivers()?;
    pki.ca
        .sign_driver(csr_pem, provider, &[host], pki.driver_cert_ttl)
        .map_err(|e| match e {
            yunshu_pki::PkiError::BadCsr(_) => bad(
                "CSR_INVALID",
                "The certificate signing request is invalid or its signature does not verify.",
                "证书签名请求无效或签名校验失败。",
            ),
            other => ApiError::internal(other),
        })
}

/// `GET /api/v1/drivers/ca`: the driver CA certificate drivers pin.
#[utoipa::path(
    get,
    path = "/api/v1/drivers/ca",
    tag = "drivers",
    responses((status = 200, description = "The driver CA", body = CaResponseDoc))
)]
pub(crate) async fn ca(State(state): State<AppState>) -> Result<Json<CaResponse>, ApiError> {
    Ok(Json(CaResponse {
        ca_pem: state.drivers()?.ca.cert_pem().to_owned(),
        fingerprint: state
            .drivers()?
            .ca
            .fingerprint()
            .map_err(ApiError::internal)?,
    }))
}

fn token_refusal(e: TokenError) -> ApiError {
    let unauthorized =
        |code, en: String, zh: String| ApiError::refused(StatusCode::UNAUTHORIZED, code, en, zh);
    match e {
        TokenError::Invalid => unauthorized(
            "TOKEN_INVALID",
            "The bootstrap token is malformed or unknown.".into(),
            "引导令牌格式错误或不存在。".into(),
        ),
        TokenError::Expired(at) => unauthorized(
            "TOKEN_EXPIRED",
            format!("The bootstrap token expired at {at}."),
            format!("引导令牌已于 {at} 过期。"),
        ),
        TokenError::Used(at) => unauthorized(
            "TOKEN_USED",
            format!("The bootstrap token was already used at {at}; tokens are one-time."),
            format!("引导令牌已于 {at} 使用过，令牌仅可使用一次。"),
        ),
        TokenError::ProviderMismatch {
            issued_for,
            claimed,
        } => ApiError::refused(
            StatusCode::FORBIDDEN,
            "PROVIDER_MISMATCH",
            format!("This token is for provider {issued_for:?}; the driver claims {claimed:?}."),
            format!("该令牌签发给云服务商“{issued_for}”，驱动却声称是“{claimed}”。"),
        ),
        TokenError::Store(e) => e.into(),
    }
}

/// `POST /api/v1/drivers/register`: a driver redeems a one-time bootstrap token
/// for a client certificate.
#[utoipa::path(
    post,
    path = "/api/v1/drivers/register",
    tag = "drivers",
    request_body = RegisterRequestDoc,
    responses(
        (status = 200, description = "The driver's certificate and a renewal token", body = CertificateResponseDoc),
        (status = 400, description = "Malformed body, provider name, endpoint or CSR", body = crate::error::ErrorBody),
        (status = 401, description = "TOKEN_INVALID, TOKEN_EXPIRED or TOKEN_USED", body = crate::error::ErrorBody),
        (status = 403, description = "PROVIDER_MISMATCH", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn register(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(NoStore, Json<CertificateResponse>), ApiError> {
    check_provider(&req.provider)?;
    check_endpoint(&req.endpoint)?;
    // Sign before redeeming: a bad CSR must not burn the token.
    let issued = sign(&state, &req.csr_pem, &req.provider, &req.endpoint)?;
    let renewal_token = yunshu_pki::random_hex(32);
    let now = Utc::now();
    let record = DriverRecord {
        provider: req.provider.clone(),
        endpoint: req.endpoint.clone(),
        fingerprint: issued.fingerprint.clone(),
        // A new registration trusts no certificate the driver had before.
        previous_fingerprint: None,
        previous_until_unix: None,
        not_after_unix: issued.not_after_unix,
        renewal_token_sha256: yunshu_pki::sha256_hex(renewal_token.as_bytes()),
        registered_at: now,
        renewed_at: None,
        last_seen: None,
        health: Health::Unknown,
        driver_name: None,
        driver_version: None,
        simulator: None,
    };
    let registry_write = Txn::new().put(
        records::key::<DriverRecord>(&record.provider),
        records::encode(&record),
    );
    let draft = audit_draft(
        &format!("system:driver-{}", req.provider),
        "driver.register",
        &records::key::<DriverRecord>(&req.provider),
        Some(format!(
            "endpoint {} certificate sha256 {}",
            req.endpoint, issued.fingerprint
        )),
    )?;
    tokens::redeem(
        &*state.store,
        &req.token,
        &req.provider,
        now,
        registry_write,
        draft,
    )
    .await
    .map_err(token_refusal)?;
    tracing::info!(
        provider = %req.provider,
        endpoint = %req.endpoint,
        fingerprint = %issued.fingerprint,
        "driver registered"
    );
    state.driver_changed.notify_one();
    Ok((
        NO_STORE,
        Json(CertificateResponse {
            certificate_pem: issued.cert_pem,
            ca_pem: state.drivers()?.ca.cert_pem().to_owned(),
            renewal_token,
            not_after_unix: issued.not_after_unix,
        }),
    ))
}

/// `POST /api/v1/drivers/renew`: a registered driver renews its certificate.
#[utoipa::path(
    post,
    path = "/api/v1/drivers/renew",
    tag = "drivers",
    request_body = RenewRequestDoc,
    responses(
        (status = 200, description = "A new certificate and renewal token", body = CertificateResponseDoc),
        (status = 400, description = "Malformed body, provider name, endpoint or CSR", body = crate::error::ErrorBody),
        (status = 401, description = "RENEWAL_DENIED", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn renew(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RenewRequest>,
) -> Result<(NoStore, Json<CertificateResponse>), ApiError> {
    let denied = || {
        ApiError::refused(
            StatusCode::UNAUTHORIZED,
            "RENEWAL_DENIED",
            "Unknown provider or wrong renewal token; bootstrap again with a new token.",
            "云服务商不存在或续期令牌错误，请使用新的引导令牌重新注册。",
        )
    };
    check_provider(&req.provider)?;
    check_endpoint(&req.endpoint)?;
    let (mut record, revision) = records::get::<DriverRecord>(&*state.store, &req.provider)
        .await?
        .ok_or_else(denied)?;
    if record.renewal_token_sha256 != yunshu_pki::sha256_hex(req.renewal_token.as_bytes()) {
        return Err(denied());
    }
    let issued = sign(&state, &req.csr_pem, &req.provider, &req.endpoint)?;
    let renewal_token = yunshu_pki::random_hex(32);
    record.endpoint = req.endpoint.clone();
    let now = Utc::now();
    record.renewed(issued.fingerprint.clone(), now.timestamp());
    record.not_after_unix = issued.not_after_unix;
    record.renewal_token_sha256 = yunshu_pki::sha256_hex(renewal_token.as_bytes());
    record.renewed_at = Some(now);
    let key = records::key::<DriverRecord>(&record.provider);
    let txn = Txn::new()
        .when_mod_revision(key.clone(), revision)
        .put(key, records::encode(&record));
    let draft = audit_draft(
        &format!("system:driver-{}", req.provider),
        "driver.renew",
        &records::key::<DriverRecord>(&req.provider),
        Some(format!("certificate sha256 {}", issued.fingerprint)),
    )?;
    match audit::append(&*state.store, draft, txn).await? {
        Appended::Committed { .. } => {}
        // The same renewal token raced itself: only one wins.
        Appended::Conflict => return Err(denied()),
    }
    tracing::info!(provider = %req.provider, fingerprint = %issued.fingerprint, "driver certificate renewed");
    state.driver_changed.notify_one();
    Ok((
        NO_STORE,
        Json(CertificateResponse {
            certificate_pem: issued.cert_pem,
            ca_pem: state.drivers()?.ca.cert_pem().to_owned(),
            renewal_token,
            not_after_unix: issued.not_after_unix,
        }),
    ))
}

/// Longest life of a controller client certificate taken by an admin.
pub const MAX_CLIENT_CERT_TTL_SECONDS: u64 = 3600;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = CreateDriverTokenRequest)]
pub struct CreateTokenRequest {
    pub provider: String,
    /// Seconds; default one hour.
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CreateDriverTokenResponse)]
pub struct CreateTokenResponse {
    pub token: String,
    pub id: String,
    pub provider: String,
    pub expires_at: chrono::DateTime<Utc>,
}

/// `POST /api/v1/admin/driver-tokens`: a one-time bootstrap token for a driver.
#[utoipa::path(
    post,
    path = "/api/v1/admin/driver-tokens",
    tag = "admin",
    security(("bearer" = []), ("session" = [])),
    request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "The token (shown once)", body = CreateTokenResponse),
        (status = 400, description = "Malformed body, provider name or TTL", body = crate::error::ErrorBody),
        (status = 401, description = "ADMIN_TOKEN_REQUIRED", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs driver_manage", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn create_token(
    admin: PlatformAdmin,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, NoStore, Json<CreateTokenResponse>), ApiError> {
    check_provider(&req.provider)?;
    let ttl = req.ttl_seconds.unwrap_or(3600);
    if ttl == 0 || ttl > MAX_TOKEN_TTL_SECONDS {
        return Err(bad(
            "TTL_INVALID",
            format!("ttl_seconds must be between 1 and {MAX_TOKEN_TTL_SECONDS}."),
            format!("有效期（秒）须在 1 到 {MAX_TOKEN_TTL_SECONDS} 之间。"),
        ));
    }
    let now = Utc::now();
    let expires_at = now + chrono::Duration::seconds(ttl as i64);
    let fingerprint = state
        .drivers()?
        .ca
        .fingerprint()
        .map_err(ApiError::internal)?;
    let draft = audit_draft(
        &admin.actor,
        "driver_token.create",
        "driver_token/-",
        Some(format!("provider {} expires {expires_at}", req.provider)),
    )?;
    let token = tokens::create(
        &*state.store,
        &req.provider,
        &fingerprint,
        now,
        expires_at,
        draft,
    )
    .await?;
    tracing::info!(provider = %req.provider, token_id = %token.id, %expires_at, "driver bootstrap token created");
    Ok((
        StatusCode::CREATED,
        NO_STORE,
        Json(CreateTokenResponse {
            id: token.id.clone(),
            token: token.to_string(),
            provider: req.provider,
            expires_at,
        }),
    ))
}

/// `GET /api/v1/admin/drivers`: the driver registry, without secrets.
#[utoipa::path(
    get,
    path = "/api/v1/admin/drivers",
    tag = "admin",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Registered drivers", body = Vec<DriverView>),
        (status = 401, description = "ADMIN_TOKEN_REQUIRED", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs driver_manage", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn list_drivers(
    _: PlatformAdmin,
    State(state): State<AppState>,
) -> Result<Json<Vec<DriverView>>, ApiError> {
    let (drivers, _) = records::list::<DriverRecord>(&*state.store, PageRequest::default()).await?;
    Ok(Json(drivers.into_iter().map(DriverView::from).collect()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ClientCertRequest {
    /// Seconds; default one hour, at most a day.
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientCertResponse {
    pub certificate_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

/// `POST /api/v1/admin/controller-certificates`: a short-lived controller client
/// identity, for running the driver conformance kit (`yunshu-conformance`) or
/// debugging a driver by hand. Drivers accept it like a controller replica's.
#[utoipa::path(
    post,
    path = "/api/v1/admin/controller-certificates",
    tag = "admin",
    security(("bearer" = []), ("session" = [])),
    request_body = ClientCertRequest,
    responses(
        (status = 201, description = "A controller client certificate and key", body = ClientCertResponse),
        (status = 400, description = "Malformed body or TTL", body = crate::error::ErrorBody),
        (status = 401, description = "ADMIN_TOKEN_REQUIRED", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs driver_manage", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn create_client_cert(
    admin: PlatformAdmin,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ClientCertRequest>,
) -> Result<(StatusCode, NoStore, Json<ClientCertResponse>), ApiError> {
    let ttl = req.ttl_seconds.unwrap_or(MAX_CLIENT_CERT_TTL_SECONDS);
    if ttl == 0 || ttl > MAX_CLIENT_CERT_TTL_SECONDS {
        return Err(bad(
            "TTL_INVALID",
            format!("ttl_seconds must be between 1 and {MAX_CLIENT_CERT_TTL_SECONDS}."),
            format!("有效期（秒）须在 1 到 {MAX_CLIENT_CERT_TTL_SECONDS} 之间。"),
        ));
    }
    let pki = state.drivers()?;
    let issued = pki
        .ca
        .issue_controller(std::time::Duration::from_secs(ttl))
        .map_err(ApiError::internal)?;
    // It can List/Apply/Delete on every provider: who took one, and until
    // when, is in the audit log before the key leaves (issue 16 item 8).
    let fingerprint = yunshu_pki::fingerprint(&issued.cert_pem).map_err(ApiError::internal)?;
    let draft = audit_draft(
        &admin.actor,
        "controller_certificate.issue",
        &format!("controller_certificate/{fingerprint}"),
        Some(format!("valid {ttl} s")),
    )?;
    if let Appended::Conflict = audit::append(&*state.store, draft, Txn::new()).await? {
        return Err(ApiError::internal(std::io::Error::other(
            "the audit log moved while recording a controller certificate",
        )));
    }
    tracing::warn!(
        ttl_seconds = ttl,
        actor = %admin.actor,
        %fingerprint,
        "issued a controller client certificate to an admin"
    );
    Ok((
        StatusCode::CREATED,
        NO_STORE,
        Json(ClientCertResponse {
            certificate_pem: issued.cert_pem,
            key_pem: issued.key_pem,
            ca_pem: pki.ca.cert_pem().to_owned(),
        }),
    ))
}
