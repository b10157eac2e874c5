//! `GET /api/v1/version`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::state::AppState;

/// Name and version of this build, as `/api/v1/version` and the logs report them.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    #[schema(value_type = String)]
    pub name: &'static str,
    #[schema(value_type = String)]
    pub version: &'static str,
    /// The API generation served under `/api/<api>`.
    #[schema(value_type = String)]
    pub api: &'static str,
    /// The store backend: `redb`, `memory` or `etcd`.
    #[schema(value_type = String)]
    pub store: &'static str,
    /// The store's current revision (each committed write advances it); absent
    /// while the store does not answer. For SREs comparing replicas and writes.
    pub store_revision: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/version",
    tag = "meta",
    responses((status = 200, description = "Name, version, API generation and store backend", body = VersionInfo))
)]
pub(crate) async fn version(State(state): State<AppState>) -> Json<VersionInfo> {
    Json(VersionInfo {
        name: "yunshu",
        version: VERSION,
        api: "v1",
        store: state.store.backend(),
        store_revision: state.store.revision().await.ok(),
    })
}
