//! A JSON body extractor whose rejections use the API's error body, so a
//! malformed request gets `{code, message, message_zh}` like every other error.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(body_refusal(&rejection)),
        }
    }
}

fn body_refusal(rejection: &JsonRejection) -> ApiError {
    let detail = rejection.body_text();
    ApiError::refused(
        StatusCode::BAD_REQUEST,
        "BODY_INVALID",
        format!("The request body is not the JSON this endpoint expects: {detail}"),
        format!("请求体不是该接口要求的 JSON：{detail}"),
    )
}

/// A query-string extractor whose rejections use the API's error body
/// (`QUERY_INVALID`), not axum's plain text.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => {
                let detail = rejection.body_text();
                Err(ApiError::refused(
                    StatusCode::BAD_REQUEST,
                    "QUERY_INVALID",
                    format!("The query string is not what this endpoint expects: {detail}"),
                    format!("查询参数不符合该接口的要求：{detail}"),
                ))
            }
        }
    }
}

/// A path-parameter extractor whose rejections use the API's error body
/// (`PATH_INVALID`), not axum's plain text.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => {
                let detail = rejection.body_text();
                Err(ApiError::refused(
                    StatusCode::BAD_REQUEST,
                    "PATH_INVALID",
                    format!("The URL path is not what this endpoint expects: {detail}"),
                    format!("URL 路径不符合该接口的要求：{detail}"),
                ))
            }
        }
    }
}
