//! The whole HTTP surface: `/healthz`, `/readyz`, `/metrics` and every route
//! of `/api/v1`, with the idempotency and request-observation layers, and the
//! portal behind every other path when `yunshu serve` serves it.

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;
use crate::{
    alarms, audit, capacity, catalogs, costs, drivers, error, expansions, headers, idempotency,
    observe, openapi, ops, orders, resources, resync, rules, systems, tenants, tokens, usage_terms,
    users, version,
};

/// The whole HTTP surface of `yunshu serve`.
pub fn router(state: AppState) -> Router {
    routes(state, None)
}

/// [`router`] with the self-service portal answering every path that is not
/// the API's (pages under `/`, the browser bundle under `/pkg`). The portal
/// renders pages by calling a plain [`router`] in-process.
pub fn router_with_portal(state: AppState, portal_assets: &std::path::Path) -> Router {
    let portal = yunshu_portal::server::router(router(state.clone()), portal_assets);
    routes(state, Some(portal))
}

fn routes(state: AppState, portal: Option<Router>) -> Router {
    let api = Router::new()
        .route("/version", get(version::version))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/drivers/ca", get(drivers::ca))
        .route("/drivers/register", post(drivers::register))
        .route("/drivers/renew", post(drivers::renew))
        .route("/admin/driver-tokens", post(drivers::create_token))
        .route("/admin/drivers", get(drivers::list_drivers))
        .route("/admin/resync", post(resync::resync))
        .route(
            "/admin/controller-certificates",
            post(drivers::create_client_cert),
        )
        .route("/users", get(users::list_users).post(users::create_user))
        .route(
            "/users/{id}/disable",
            post(crate::offboarding::user_disable),
        )
        .route("/users/{id}/enable", post(crate::offboarding::user_enable))
        .route(
            "/users/{id}/password",
            post(crate::offboarding::user_password_reset),
        )
        .route(
            "/users/{id}/bindings",
            post(crate::bindings::user_binding_grant),
        )
        .route(
            "/users/{id}/bindings/{binding}",
            axum::routing::delete(crate::offboarding::user_binding_remove)
                .patch(crate::bindings::user_binding_adjust),
        )
        .route(
            "/users/{id}/revoke-credentials",
            post(crate::offboarding::user_credentials_revoke),
        )
        .route(
            "/tenants",
            get(tenants::tenant_list).post(tenants::tenant_create),
        )
        .route(
            "/tenants/{code}/org-unit",
            axum::routing::put(crate::org_units::tenant_org_unit_set),
        )
        .route(
            "/org-units",
            get(crate::org_units::org_unit_list).post(crate::org_units::org_unit_create),
        )
        .route(
            "/org-units/{id}/report",
            get(crate::org_units::org_unit_report),
        )
        .route("/auth/login", post(users::login))
        .route("/activate", post(users::activate))
        .route("/auth/logout", post(users::logout))
        .route("/auth/me", get(users::me))
        .route("/auth/tokens", post(tokens::create).get(tokens::list))
        .route("/auth/tokens/{id}", axum::routing::delete(tokens::revoke))
        .route("/audit", get(audit::audit_list))
        .route("/audit/verify", get(audit::audit_verify))
        .route("/audit/export", get(audit::audit_export))
        .route(
            "/systems",
            get(systems::system_list).post(systems::system_create),
        )
        .route("/systems/{number}", get(systems::system_get))
        .route(
            "/systems/{number}/usage-term",
            get(usage_terms::usage_term_get),
        )
        .route(
            "/systems/{number}/usage-term/extension-request",
            post(usage_terms::usage_extension_request),
        )
        .route("/systems/{number}/resources", get(resources::resource_list))
        .route("/systems/{number}/cost", get(costs::system_cost))
        .route(
            "/systems/{number}/resources/events",
            get(resources::resource_events),
        )
        .route(
            "/systems/{number}/temporary-expansion",
            get(expansions::expansion_get).put(expansions::expansion_put),
        )
        .route(
            "/systems/{number}/usage-term/extend",
            post(usage_terms::usage_extend),
        )
        .route(
            "/systems/{number}/usage-term/force-offline",
            post(usage_terms::usage_force_offline),
        )
        .route(
            "/systems/{number}/suspension",
            get(crate::suspensions::suspension_get).post(crate::suspensions::suspension_suspend),
        )
        .route(
            "/systems/{number}/suspension/resume",
            post(crate::suspensions::suspension_resume),
        )
        .route(
            "/maintenance",
            get(crate::maintenance::maintenance_list)
                .post(crate::maintenance::maintenance_announce),
        )
        .route(
            "/maintenance/{id}/cancel",
            post(crate::maintenance::maintenance_cancel),
        )
        .route("/alarms", get(alarms::alarm_list))
        .route("/alarms/{id}", get(alarms::alarm_get))
        .route("/alarms/{id}/ack", post(alarms::alarm_ack))
        .route("/capacity", get(capacity::capacity_get))
        .route("/capacity/history", get(capacity::capacity_history))
        .route("/expansion-orders", get(capacity::expansion_order_list))
        .route("/catalogs", get(catalogs::catalog_list))
        .route("/catalogs/import", post(catalogs::catalog_import))
        .route("/catalogs/{id}", get(catalogs::catalog_get))
        .route("/calendar", get(rules::calendar_get))
        .route(
            "/calendar/{year}",
            get(rules::calendar_year_get).put(rules::calendar_year_put),
        )
        .route("/policies", get(rules::policy_list))
        .route(
            "/policies/{name}",
            get(rules::policy_get).put(rules::policy_put),
        )
        .route(
            "/orders",
            get(orders::order_list).post(orders::order_create),
        )
        .route(
            "/orders/{id}",
            get(orders::order_get).put(orders::order_edit),
        )
        .route("/orders/{id}/transitions", post(orders::order_transition))
        .route("/orders/{id}/emergency", post(orders::order_emergency))
        .route("/orders/{id}/purge", post(orders::order_purge))
        .route(
            "/orders/{id}/test-period/extensions",
            post(orders::order_test_period_extend),
        )
        .route(
            "/orders/{id}/lines/{index}/approve",
            post(orders::order_line_approve),
        )
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency,
        ));
    let top = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .nest("/api/v1", api);
    let top = match portal {
        Some(portal) => top.fallback_service(portal),
        None => top.fallback(error::not_found),
    };
    top.layer(axum::middleware::from_fn(headers::security_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}
