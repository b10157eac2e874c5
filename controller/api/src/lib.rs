//! HTTP: the router, the operational endpoints (`/healthz`, `/readyz`,
//! `/metrics`) and `/api/v1` — every handler, the extractors (who is calling,
//! JSON, path and query with our error shape), idempotency keys, server-sent
//! events, the OpenAPI document, and the one mapping of every lower layer's
//! error to a status and a stable code.
//!
//! Owns parsing, authorisation checks at the door and the wire shapes. This is
//! the one crate where HTTP types appear. Must not call drivers (it does not
//! depend on the reconciler: it reads what the reconciler writes to the store)
//! nor hold business rules: those belong to `yunshu_workflow`, `yunshu_auth`
//! and the domain.

mod alarms;
mod audit;
mod auth;
mod auth_error;
mod bindings;
mod capacity;
mod catalogs;
mod context;
mod costs;
mod domain_error;
mod drivers;
mod error;
mod expansions;
mod headers;
mod idempotency;
mod json;
pub mod login_gate;
mod maintenance;
pub mod metrics;
mod observe;
mod offboarding;
pub mod openapi;
mod ops;
mod orders;
mod org_units;
mod paging;
pub mod readiness;
mod resources;
mod resync;
mod router;
mod rules;
mod state;
mod suspensions;
mod systems;
mod tenants;
mod tokens;
mod usage_terms;
mod users;
mod version;
mod workflow_error;

pub use error::{ApiError, ErrorBody};
pub use json::{ApiJson, ApiPath, ApiQuery};
pub use router::{router, router_with_portal};
pub use state::AppState;
pub use version::VERSION;

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod isolation_tests;
#[cfg(test)]
mod maintenance_tests;
#[cfg(test)]
mod offboarding_tests;
#[cfg(test)]
mod org_unit_tests;
#[cfg(test)]
mod portal_usage_tests;
#[cfg(test)]
mod retention_tests;
#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod seed_clock_tests;
#[cfg(test)]
mod seed_limits_tests;
#[cfg(test)]
mod separation_tests;
#[cfg(test)]
mod suspension_tests;
#[cfg(test)]
mod test_app;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod timers_tests;
#[cfg(test)]
mod workflow_tests;
