//! A JSON body extractor whose rejections use the API's error body, so a
//! malformed request gets `{code, message, message_zh}` like every other error.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::ApiError;

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
