//! The OpenAPI 3 contract of `/api/v1`, generated from the handlers' annotations
//! (utoipa) and served at `GET /api/v1/openapi.json`. The generated document is
//! committed as `docs/openapi.json`; a test fails when the two drift.
//!
//! Domain types (`yunshu-domain`) carry no utoipa derive: fields of those types
//! are described loosely (`object`, `string`) by `#[schema(value_type = …)]` at
//! the wire structs here in the server crate.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::ErrorBody;

/// Mirror of `yunshu_proto::bootstrap::CaResponse`.
#[derive(ToSchema)]
#[schema(as = CaResponse)]
#[allow(dead_code)]
pub struct CaResponseDoc {
    /// The driver CA certificate, PEM.
    ca_pem: String,
    /// SHA-256 of the CA certificate (hex).
    fingerprint: String,
}

/// Mirror of `yunshu_proto::bootstrap::RegisterRequest`.
#[derive(ToSchema)]
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
#[derive(ToSchema)]
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
#[derive(ToSchema)]
#[schema(as = CertificateResponse)]
#[allow(dead_code)]
pub struct CertificateResponseDoc {
    certificate_pem: String,
    ca_pem: String,
    /// One-time secret for the next renewal.
    renewal_token: String,
    not_after_unix: i64,
}

/// Mirror of `yunshu_store::audit::Verification`.
#[derive(ToSchema)]
#[schema(as = AuditVerification)]
#[allow(dead_code)]
pub struct VerificationDoc {
    /// Entries read.
    entries: u64,
    /// True when every entry hashes right, links to its predecessor, sequence
    /// numbers have no gap, and the head names the last entry.
    intact: bool,
    /// The first sequence number where the chain breaks, and why.
    broken_at: Option<u64>,
    reason: Option<String>,
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The platform admin token, or an API token `yst1.<user>.<id>.<secret>` \
                         from `POST /api/v1/auth/tokens`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::auth::COOKIE,
                "The login session cookie set by `POST /api/v1/auth/login`.",
            ))),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The session's `csrf_token`, required with the session cookie on every \
                 request that changes something.",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "yunshu 云枢 API",
        description = "The control plane API of the yunshu government cloud. Every error is \
                       `{code, message, message_zh, details}` (`ErrorBody`); codes are stable. \
                       POSTs accept an optional `Idempotency-Key` header.",
        license(name = "see the repository"),
    ),
    paths(
        openapi_json,
        super::version::version,
        super::drivers::ca,
        super::drivers::register,
        super::drivers::renew,
        super::drivers::create_token,
        super::drivers::list_drivers,
        super::resync::resync,
        super::drivers::create_client_cert,
        super::users::create_user,
        super::users::list_users,
        super::tenants::tenant_create,
        super::tenants::tenant_list,
        super::users::login,
        super::users::logout,
        super::users::me,
        super::tokens::create,
        super::tokens::list,
        super::tokens::revoke,
        super::audit::audit_list,
        super::audit::audit_verify,
        super::audit::audit_export,
        super::systems::system_create,
        super::systems::system_list,
        super::systems::system_get,
        super::orders::order_create,
        super::orders::order_list,
        super::orders::order_get,
        super::orders::order_edit,
        super::orders::order_transition,
        super::orders::order_line_approve,
        super::orders::order_emergency,
        super::systems::usage_term_get,
        super::systems::usage_extension_request,
        super::systems::usage_extend,
        super::systems::resource_list,
        super::resource_events::resource_events,
        super::costs::system_cost,
        super::systems::expansion_get,
        super::systems::expansion_put,
        super::alarms::alarm_list,
        super::alarms::alarm_get,
        super::alarms::alarm_ack,
        super::capacity::capacity_get,
        super::capacity::capacity_history,
        super::capacity::expansion_order_list,
        super::catalogs::catalog_list,
        super::catalogs::catalog_get,
        super::catalogs::catalog_import,
        super::rules::calendar_get,
        super::rules::calendar_year_get,
        super::rules::calendar_year_put,
        super::rules::policy_list,
        super::rules::policy_get,
        super::rules::policy_put,
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "meta", description = "Version and this contract"),
        (name = "drivers", description = "Driver bootstrap and certificate renewal"),
        (name = "admin", description = "Platform admin: driver tokens, registry, certificates"),
        (name = "auth", description = "Login sessions and API tokens"),
        (name = "users", description = "Users and role bindings"),
        (name = "audit", description = "The tamper-evident audit log (auditors only)"),
        (name = "systems", description = "Information systems (信息系统)"),
        (name = "orders", description = "Work orders (工单)"),
        (name = "alarms", description = "The alarm centre (告警中心)"),
        (name = "capacity", description = "Pool capacity and expansion orders (扩容单, the 80% rule)"),
        (name = "catalogs", description = "Service catalogs (服务目录) and their import"),
        (name = "rules", description = "Working-day calendar and deadline policies"),
    )
)]
pub struct ApiDoc;

/// The contract as served and as committed in `docs/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = crate::VERSION.to_owned();
    doc
}

/// `GET /api/v1/openapi.json`
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "This OpenAPI 3 document", body = Object))
)]
pub(crate) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    fn committed() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
    }

    /// The committed contract is what the code generates. To accept a change:
    /// `YUNSHU_BLESS=1 cargo test -p yunshu-api openapi`.
    #[test]
    fn openapi_matches_docs_openapi_json() {
        let generated = super::document()
            .to_pretty_json()
            .expect("the OpenAPI document serialises")
            + "\n";
        let path = committed();
        if std::env::var_os("YUNSHU_BLESS").is_some() {
            std::fs::write(&path, &generated).expect("write docs/openapi.json");
            return;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "docs/openapi.json is out of date with the code's OpenAPI annotations; \
             regenerate it with `YUNSHU_BLESS=1 cargo test -p yunshu-api openapi` \
             and review the diff"
        );
    }
}
