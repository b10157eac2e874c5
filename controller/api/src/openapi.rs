//! The OpenAPI 3 contract of `/api/v1`, generated from the handlers' annotations
//! (utoipa) and served at `GET /api/v1/openapi.json`. The generated document is
//! committed as `docs/openapi.json`; a test fails when the two drift.
//!
//! Domain types (`yunshu-domain`) carry no utoipa derive: fields of those types
//! are described loosely (`object`, `string`) by `#[schema(value_type = …)]` at
//! the wire structs of this crate. Mirrors of wire types defined elsewhere
//! (`yunshu_proto::bootstrap`, `yunshu_store::audit`) sit beside the handlers
//! that serve them.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;

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
                crate::auth::COOKIE,
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
        crate::version::version,
        crate::drivers::ca,
        crate::drivers::register,
        crate::drivers::renew,
        crate::drivers::create_token,
        crate::drivers::list_drivers,
        crate::resync::resync,
        crate::drivers::create_client_cert,
        crate::users::create_user,
        crate::users::list_users,
        crate::offboarding::user_disable,
        crate::offboarding::user_enable,
        crate::offboarding::user_password_reset,
        crate::offboarding::user_binding_remove,
        crate::offboarding::user_credentials_revoke,
        crate::tenants::tenant_create,
        crate::tenants::tenant_list,
        crate::bindings::user_binding_grant,
        crate::bindings::user_binding_adjust,
        crate::org_units::org_unit_create,
        crate::org_units::org_unit_list,
        crate::org_units::org_unit_report,
        crate::org_units::tenant_org_unit_set,
        crate::users::login,
        crate::users::activate,
        crate::users::logout,
        crate::users::me,
        crate::tokens::create,
        crate::tokens::list,
        crate::tokens::revoke,
        crate::audit::audit_list,
        crate::audit::audit_verify,
        crate::audit::audit_export,
        crate::systems::system_create,
        crate::systems::system_list,
        crate::systems::system_get,
        crate::orders::order_create,
        crate::orders::order_list,
        crate::orders::order_get,
        crate::orders::order_edit,
        crate::orders::order_transition,
        crate::orders::order_line_approve,
        crate::orders::order_emergency,
        crate::orders::order_test_period_extend,
        crate::orders::order_purge,
        crate::usage_terms::usage_term_get,
        crate::usage_terms::usage_extension_request,
        crate::usage_terms::usage_extend,
        crate::usage_terms::usage_force_offline,
        crate::suspensions::suspension_get,
        crate::suspensions::suspension_suspend,
        crate::suspensions::suspension_resume,
        crate::resources::resource_list,
        crate::resources::resource_events,
        crate::costs::system_cost,
        crate::expansions::expansion_get,
        crate::expansions::expansion_put,
        crate::maintenance::maintenance_list,
        crate::maintenance::maintenance_announce,
        crate::maintenance::maintenance_cancel,
        crate::alarms::alarm_list,
        crate::alarms::alarm_get,
        crate::alarms::alarm_ack,
        crate::capacity::capacity_get,
        crate::capacity::capacity_history,
        crate::capacity::expansion_order_list,
        crate::catalogs::catalog_list,
        crate::catalogs::catalog_get,
        crate::catalogs::catalog_import,
        crate::rules::calendar_get,
        crate::rules::calendar_year_get,
        crate::rules::calendar_year_put,
        crate::rules::policy_list,
        crate::rules::policy_get,
        crate::rules::policy_put,
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
    doc.info.version = crate::version::VERSION.to_owned();
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
