//! Service catalogs over HTTP: `GET /api/v1/catalogs`, `GET
//! /api/v1/catalogs/{id}` (JSON, or the file itself with `?format=csv|toml|json`)
//! and `POST /api/v1/catalogs/import?format=…` (the file as the body).
//!
//! Owns the wire shapes. The per-row error details of a refused import go out
//! through [`workflow_error`](crate::workflow_error); validation is the
//! domain's, storage and permission the workflow's.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::catalog_data::{Catalog, CatalogFormat};
use yunshu_workflow::rules::Origin;
use yunshu_workflow::{Clock, catalogs};

use crate::context::now_of;
use crate::error::ApiError;
use crate::json::{ApiPath, ApiQuery};
use crate::state::AppState;
use crate::workflow_error::workflow_error;

/// A catalog file format on the wire.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FormatParam {
    Json,
    Toml,
    Csv,
}

impl From<FormatParam> for CatalogFormat {
    fn from(f: FormatParam) -> Self {
        match f {
            FormatParam::Json => CatalogFormat::Json,
            FormatParam::Toml => CatalogFormat::Toml,
            FormatParam::Csv => CatalogFormat::Csv,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The body's format.
    #[param(inline)]
    pub format: FormatParam,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Download the catalog as a file in this format instead of the JSON view.
    #[param(inline)]
    pub format: Option<FormatParam>,
}

/// A catalog in a list: its header and size.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CatalogSummary {
    pub id: String,
    pub name: String,
    pub source: Option<String>,
    /// `max_unit_price`, `list_price` or `unpriced`.
    pub price_basis: String,
    pub items: usize,
    pub origin: Origin,
}

impl CatalogSummary {
    fn new(c: &Catalog, origin: Origin) -> Self {
        CatalogSummary {
            id: c.id().to_string(),
            name: c.name().to_string(),
            source: c.source().map(ToString::to_string),
            price_basis: c.price_basis().as_str().to_owned(),
            items: c.len(),
            origin,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CatalogList {
    pub items: Vec<CatalogSummary>,
}

fn catalog_json(c: &Catalog, origin: Origin) -> Result<serde_json::Value, ApiError> {
    let mut value: serde_json::Value =
        serde_json::from_str(&c.write(CatalogFormat::Json)).map_err(ApiError::internal)?;
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "origin".into(),
            serde_json::to_value(origin).map_err(ApiError::internal)?,
        );
    }
    Ok(value)
}

/// `GET /api/v1/catalogs`: every catalog, shipped and imported.
#[utoipa::path(
    get,
    path = "/api/v1/catalogs",
    tag = "catalogs",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Every catalog", body = CatalogList),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn catalog_list(
    _caller: Principal,
    State(state): State<AppState>,
) -> Result<Json<CatalogList>, ApiError> {
    let all = catalogs::list(&*state.store)
        .await
        .map_err(workflow_error)?;
    Ok(Json(CatalogList {
        items: all
            .iter()
            .map(|(c, o)| CatalogSummary::new(c, *o))
            .collect(),
    }))
}

/// `GET /api/v1/catalogs/{id}`: the catalog with its items, or the file.
#[utoipa::path(
    get,
    path = "/api/v1/catalogs/{id}",
    tag = "catalogs",
    params(("id" = String, Path, description = "Catalog id, e.g. beijing-2023"), ExportQuery),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The catalog (header, items, origin); with `format`, the file",
            content(
                (serde_json::Value = "application/json"),
                (String = "text/csv"),
                (String = "application/toml"),
            )),
        (status = 400, description = "Malformed query", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 404, description = "CATALOG_NOT_FOUND", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn catalog_get(
    _caller: Principal,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let (catalog, origin) = catalogs::get(&*state.store, &id)
        .await
        .map_err(workflow_error)?;
    Ok(match q.format {
        None => Json(catalog_json(&catalog, origin)?).into_response(),
        Some(f) => {
            let content_type = match f {
                FormatParam::Json => "application/json",
                FormatParam::Toml => "application/toml",
                FormatParam::Csv => "text/csv; charset=utf-8",
            };
            (
                [(header::CONTENT_TYPE, content_type)],
                catalog.write(f.into()),
            )
                .into_response()
        }
    })
}

/// `POST /api/v1/catalogs/import?format=csv|toml|json`: the body is the file.
#[utoipa::path(
    post,
    path = "/api/v1/catalogs/import",
    tag = "catalogs",
    params(ImportQuery),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    request_body(content = String, content_type = "text/plain",
        description = "The catalog file (see controller/domain/data/catalog/README.md)"),
    responses(
        (status = 201, description = "Imported", body = CatalogSummary),
        (status = 400, description = "CATALOG_IMPORT_INVALID with `details.issues` (one per bad row; nothing written), or a malformed query", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs catalog_manage", body = crate::error::ErrorBody),
        (status = 409, description = "CATALOG_BUILTIN_READONLY", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn catalog_import(
    caller: Principal,
    State(state): State<AppState>,
    clock: Option<Extension<Clock>>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CatalogSummary>), ApiError> {
    let text = std::str::from_utf8(&body).map_err(|_| {
        ApiError::refused(
            StatusCode::BAD_REQUEST,
            "BODY_NOT_UTF8",
            "The catalog file must be UTF-8 text.",
            "服务目录文件须为 UTF-8 编码的文本。",
        )
    })?;
    let catalog = catalogs::import(&*state.store, &caller, q.format.into(), text, now_of(clock))
        .await
        .map_err(workflow_error)?;
    Ok((
        StatusCode::CREATED,
        Json(CatalogSummary::new(&catalog, Origin::Operator)),
    ))
}
