//! `GET /api/v1/version`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::AppState;

#[derive(Debug, Serialize)]
pub struct VersionInfo {
    pub name: &'static str,
    pub version: &'static str,
    /// The API generation served under `/api/<api>`.
    pub api: &'static str,
    /// The store backend: `redb`, `memory` or `etcd`.
    pub store: &'static str,
}

pub(crate) async fn version(State(state): State<AppState>) -> Json<VersionInfo> {
    Json(VersionInfo {
        name: "yunshu",
        version: crate::VERSION,
        api: "v1",
        store: state.store.backend(),
    })
}
