//! HTTP: the router, the operational endpoints and `/api/v1`.
//!
//! Owns parsing, authorisation (later) and mapping errors to HTTP. Must not call
//! drivers or hold business rules: those belong to the workflow and the domain.

mod error;
mod observe;
mod ops;
mod version;

pub use error::{ApiError, ErrorBody};

use axum::Router;
use axum::routing::get;

use crate::AppState;

/// The whole HTTP surface of `yunshu serve`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/version", get(version::version))
        .fallback(error::not_found);
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .nest("/api/v1", api)
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}

#[cfg(test)]
mod tests;
