//! `Idempotency-Key` on POST: a retried request with the same key (from the same
//! caller, to the same path) gets the first answer again instead of doing the
//! thing twice. The first answer is kept for 24 hours on a store lease.
//!
//! While the first request is still running, a duplicate gets 409
//! `IDEMPOTENCY_IN_PROGRESS`; a key reused for a different body gets 422
//! `IDEMPOTENCY_KEY_REUSED`. Server errors are not remembered, so a retry after
//! one runs again.
//!
//! Only an authenticated caller's requests are remembered, under who the
//! caller is (not the credential: a user's session and token share keys), so
//! anonymous requests never write to the store (issue 16 item 4). Answers that
//! carry secrets say `Cache-Control: no-store` and are never kept, nor are
//! answers over [`MAX_STORED`].

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use yunshu_store::{Store, Txn, TxnOutcome};

use yunshu_auth::Principal;

use crate::error::ApiError;
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";
const KEEP: Duration = Duration::from_secs(24 * 3600);
/// Bodies larger than this are not buffered for replay (uploads); the key is
/// then ignored, which is still safe: the request just runs.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Largest answer kept for replay; a larger one is answered but not kept (a
/// retry then runs again, which the handlers' own checks make safe).
pub const MAX_STORED: usize = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
enum Stored {
    InProgress {
        request_sha256: String,
    },
    Done {
        request_sha256: String,
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
}

fn refused(status: StatusCode, code: &'static str, en: &str, zh: &str) -> Response {
    ApiError::refused(status, code, en, zh).into_response()
}

pub(crate) async fn idempotency(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(key) = (req.method() == Method::POST)
        .then(|| req.headers().get(HEADER))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return next.run(req).await;
    };
    if key.is_empty() || key.len() > 255 {
        return refused(
            StatusCode::BAD_REQUEST,
            "IDEMPOTENCY_KEY_INVALID",
            "Idempotency-Key must be 1 to 255 characters.",
            "Idempotency-Key 须为 1 到 255 个字符。",
        );
    }
    let (mut parts, body) = req.into_parts();
    // Who is asking: an unauthenticated request runs (and is refused by its
    // handler) without writing anything here.
    let caller = match Principal::from_request_parts(&mut parts, &state).await {
        Ok(p) => p.actor.to_string(),
        Err(_) => return next.run(Request::from_parts(parts, body)).await,
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            "The request body is too large.",
            "请求体过大。",
        );
    };
    let store = &*state.store;
    let scope = format!("{caller}|{}|{key}", parts.uri.path());
    let store_key = format!("idempotency/{}", yunshu_pki::sha256_hex(scope.as_bytes()));
    let request_sha256 = yunshu_pki::sha256_hex(&bytes);

    match begin(store, &store_key, &request_sha256).await {
        Ok(Begin::Run(lease)) => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            finish(store, &store_key, lease, request_sha256, response).await
        }
        Ok(Begin::Replay(response)) => response,
        Err(response) => response,
    }
}

enum Begin {
    Run(i64),
    Replay(Response),
}

async fn begin(store: &dyn Store, key: &str, request_sha256: &str) -> Result<Begin, Response> {
    let unavailable = |e: yunshu_store::StoreError| ApiError::from(e).into_response();
    if let Some(kv) = store.get(key).await.map_err(unavailable)? {
        return match serde_json::from_slice::<Stored>(&kv.value) {
            Ok(Stored::Done {
                request_sha256: first,
                status,
                content_type,
                body,
            }) if first == request_sha256 => {
                let mut response = Response::new(Body::from(Bytes::from(body)));
                *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    response.headers_mut().insert(header::CONTENT_TYPE, ct);
                }
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                Ok(Begin::Replay(response))
            }
            Ok(Stored::InProgress {
                request_sha256: first,
            }) if first == request_sha256 => Err(refused(
                StatusCode::CONFLICT,
                "IDEMPOTENCY_IN_PROGRESS",
                "A request with this Idempotency-Key is still running; retry shortly.",
                "相同 Idempotency-Key 的请求仍在处理中，请稍后重试。",
            )),
            _ => Err(refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "This Idempotency-Key was used for a different request.",
                "该 Idempotency-Key 已用于另一个不同的请求。",
            )),
        };
    }
    let lease = store.lease_grant(KEEP).await.map_err(unavailable)?;
    let marker = serde_json::to_vec(&Stored::InProgress {
        request_sha256: request_sha256.to_owned(),
    })
    .unwrap_or_default();
    let txn = Txn::new()
        .when_mod_revision(key, 0)
        .put_with_lease(key, marker, lease);
    match store.txn(txn).await.map_err(unavailable)? {
        TxnOutcome::Committed { .. } => Ok(Begin::Run(lease)),
        // A duplicate started between our read and our write.
        TxnOutcome::Conflict => Err(refused(
            StatusCode::CONFLICT,
            "IDEMPOTENCY_IN_PROGRESS",
            "A request with this Idempotency-Key is still running; retry shortly.",
            "相同 Idempotency-Key 的请求仍在处理中，请稍后重试。",
        )),
    }
}

async fn finish(
    store: &dyn Store,
    key: &str,
    lease: i64,
    request_sha256: String,
    response: Response,
) -> Response {
    let status = response.status();
    if status.is_server_error() {
        // Not remembered: the retry should run again.
        let _ = store.lease_revoke(lease).await;
        return response;
    }
    let secret = response
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("no-store"));
    if secret {
        // A token, key or bootstrap secret: shown once, never kept.
        let _ = store.lease_revoke(lease).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        let _ = store.lease_revoke(lease).await;
        return Response::from_parts(parts, Body::empty());
    };
    if bytes.len() > MAX_STORED {
        let _ = store.lease_revoke(lease).await;
        return Response::from_parts(parts, Body::from(bytes));
    }
    let stored = Stored::Done {
        request_sha256,
        status: status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: bytes.to_vec(),
    };
    if let Err(e) = store
        .put_with_lease(key, serde_json::to_vec(&stored).unwrap_or_default(), lease)
        .await
    {
        tracing::warn!(error = %e, "cannot remember an idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}
