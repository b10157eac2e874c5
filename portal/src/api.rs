//! The portal's only way to data: the controller's HTTP API.
//!
//! In the browser (`hydrate`) a call is a `fetch` to `/api/v1/…` with the
//! session cookie and, for changes, the CSRF token kept from the login. On the
//! server (`ssr`) the same call is dispatched in-process into the API router
//! with the page request's cookies, so a server-rendered page shows real data
//! and still passes through authentication, tenant scoping and audit — the
//! portal never reads the store.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::i18n::Lang;

/// An API error as the API reports it (`{code, message, message_zh}`), or a
/// transport failure (`code` NETWORK).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    #[serde(default)]
    pub status: u16,
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub message_zh: String,
    /// Structured detail (e.g. every bad row of a catalog import).
    #[serde(default)]
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn network(detail: impl Into<String>) -> Self {
        ApiError {
            status: 0,
            code: "NETWORK".to_owned(),
            message: format!("The controller could not be reached: {}", detail.into()),
            message_zh: "无法连接云枢服务，请稍后重试。".to_owned(),
            details: None,
        }
    }

    /// The message in `lang`.
    pub fn text(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh if !self.message_zh.is_empty() => &self.message_zh,
            _ => &self.message,
        }
    }

    /// Whether the caller must sign in (no or an expired session).
    pub fn needs_login(&self) -> bool {
        self.status == 401
    }
}

fn decode<T: DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, ApiError> {
    if (200..300).contains(&status) {
        return serde_json::from_slice(body)
            .map_err(|e| ApiError::network(format!("unexpected answer: {e}")));
    }
    let mut err: ApiError = serde_json::from_slice(body).unwrap_or_else(|_| ApiError {
        status,
        code: format!("HTTP_{status}"),
        message: String::from_utf8_lossy(body).chars().take(200).collect(),
        message_zh: String::new(),
        details: None,
    });
    err.status = status;
    Err(err)
}

/// `GET path` → JSON. The call is prepared now (on the server it reads the
/// page request's cookies from the reactive context) and sent when awaited.
pub fn get<T: DeserializeOwned + Send + 'static>(
    path: &str,
) -> impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static + use<T> {
    let call = imp::call("GET", path, None);
    async move {
        let (status, body) = call.await?;
        decode(status, &body)
    }
}

/// `POST path` with a JSON body → JSON.
pub fn post<T: DeserializeOwned + Send + 'static>(
    path: &str,
    body: &serde_json::Value,
) -> impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static + use<T> {
    let call = imp::call("POST", path, Some((body.to_string(), "application/json")));
    async move {
        let (status, bytes) = call.await?;
        decode(status, &bytes)
    }
}

/// `PATCH path` with a JSON body → JSON.
pub fn patch<T: DeserializeOwned + Send + 'static>(
    path: &str,
    body: &serde_json::Value,
) -> impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static + use<T> {
    let call = imp::call("PATCH", path, Some((body.to_string(), "application/json")));
    async move {
        let (status, bytes) = call.await?;
        decode(status, &bytes)
    }
}

/// `DELETE path` → nothing (the API answers 204).
pub fn delete(
    path: &str,
) -> impl std::future::Future<Output = Result<(), ApiError>> + Send + 'static + use<> {
    let call = imp::call("DELETE", path, None);
    async move {
        let (status, body) = call.await?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        decode::<serde_json::Value>(status, &body).map(|_| ())
    }
}

#[cfg(feature = "ssr")]
mod imp {
    use leptos::prelude::*;
    use tower::ServiceExt;

    use super::ApiError;

    /// The API router the portal's server-side calls go to (per served
    /// controller, provided as context with every page request).
    #[derive(Clone)]
    pub struct ApiRouter(pub axum::Router);

    /// Most bytes read from one in-process answer.
    const MAX_BODY: usize = 8 * 1024 * 1024;

    pub fn call(
        method: &'static str,
        path: &str,
        body: Option<(String, &'static str)>,
    ) -> impl std::future::Future<Output = Result<(u16, Vec<u8>), ApiError>> + Send + 'static + use<>
    {
        // Read the context now: the future may be polled outside the owner.
        let router = use_context::<ApiRouter>();
        let cookie = use_context::<axum::http::request::Parts>().and_then(|p| {
            p.headers
                .get(axum::http::header::COOKIE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        let path = path.to_owned();
        async move {
            let Some(ApiRouter(router)) = router else {
                return Err(ApiError::network("no API router in context"));
            };
            let (body, content_type) = body.unwrap_or_default();
            let mut req = axum::http::Request::builder()
                .method(method)
                .uri(&path)
                .header(axum::http::header::ACCEPT, "application/json")
                .header(
                    axum::http::header::CONTENT_TYPE,
                    if content_type.is_empty() {
                        "application/json"
                    } else {
                        content_type
                    },
                );
            if let Some(c) = cookie {
                req = req.header(axum::http::header::COOKIE, c);
            }
            let req = req
                .body(axum::body::Body::from(body))
                .map_err(|e| ApiError::network(e.to_string()))?;
            let resp = router
                .oneshot(req)
                .await
                .map_err(|e| ApiError::network(e.to_string()))?;
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(resp.into_body(), MAX_BODY)
                .await
                .map_err(|e| ApiError::network(e.to_string()))?;
            Ok((status, bytes.to_vec()))
        }
    }
}

#[cfg(feature = "ssr")]
pub use imp::ApiRouter;

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
mod imp {
    use wasm_bindgen::JsCast;

    use super::ApiError;

    /// Where the login keeps the session's CSRF token for this tab.
    pub const CSRF_KEY: &str = "yunshu_csrf";

    pub fn call(
        method: &'static str,
        path: &str,
        body: Option<(String, &'static str)>,
    ) -> impl std::future::Future<Output = Result<(u16, Vec<u8>), ApiError>> + Send + 'static + use<>
    {
        let path = path.to_owned();
        // Browser futures are not Send; the portal runs them on the one
        // browser thread only.
        send_wrapper::SendWrapper::new(async move {
            let window = web_sys::window().ok_or_else(|| ApiError::network("no window"))?;
            let init = web_sys::RequestInit::new();
            init.set_method(method);
            init.set_credentials(web_sys::RequestCredentials::SameOrigin);
            let headers = web_sys::Headers::new().map_err(|_| ApiError::network("headers"))?;
            let _ = headers.set("Accept", "application/json");
            if let Some((b, content_type)) = &body {
                let _ = headers.set("Content-Type", content_type);
                init.set_body(&wasm_bindgen::JsValue::from_str(b));
            }
            if method != "GET"
                && let Ok(Some(storage)) = window.session_storage()
                && let Ok(Some(token)) = storage.get_item(CSRF_KEY)
            {
                let _ = headers.set("X-CSRF-Token", &token);
            }
            init.set_headers(&headers);
            let request = web_sys::Request::new_with_str_and_init(&path, &init)
                .map_err(|_| ApiError::network("request"))?;
            let resp = wasm_bindgen_futures::JsFuture::from(window.fetch_with_request(&request))
                .await
                .map_err(|e| ApiError::network(format!("{e:?}")))?;
            let resp: web_sys::Response = resp
                .dyn_into()
                .map_err(|_| ApiError::network("not a response"))?;
            let status = resp.status();
            let buf = resp.array_buffer().map_err(|_| ApiError::network("body"))?;
            let buf = wasm_bindgen_futures::JsFuture::from(buf)
                .await
                .map_err(|_| ApiError::network("body"))?;
            Ok((status, js_sys::Uint8Array::new(&buf).to_vec()))
        })
    }
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
pub use imp::CSRF_KEY;

/// `POST path` with a body of another type (a catalog file) → JSON.
pub fn post_text<T: DeserializeOwned + Send + 'static>(
    path: &str,
    body: String,
    content_type: &'static str,
) -> impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static + use<T> {
    send_text("POST", path, body, content_type)
}

/// `PUT path` with a file as its body (a policy or calendar year) → JSON.
pub fn put_text<T: DeserializeOwned + Send + 'static>(
    path: &str,
    body: String,
) -> impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static + use<T> {
    send_text("PUT", path, body, "text/plain")
}

fn send_text<T: DeserializeOwned + Send + 'static>(
    method: &'static str,
    path: &str,
    body: String,
    content_type: &'static str,
) -> impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static + use<T> {
    let call = imp::call(method, path, Some((body, content_type)));
    async move {
        let (status, bytes) = call.await?;
        decode(status, &bytes)
    }
}

// Neither feature (`cargo check` of the bare crate): calls fail cleanly.
#[cfg(not(any(feature = "ssr", feature = "hydrate")))]
mod imp {
    use super::ApiError;

    pub fn call(
        _method: &'static str,
        _path: &str,
        _body: Option<(String, &'static str)>,
    ) -> impl std::future::Future<Output = Result<(u16, Vec<u8>), ApiError>> + Send + 'static + use<>
    {
        async { Err(ApiError::network("built without ssr or hydrate")) }
    }
}

/// Follows a server-sent event stream at `path`: `on_event` gets each event
/// named `event`, decoded from JSON. The browser's `EventSource` reconnects by
/// itself after a dropped connection; the stream closes when the calling
/// component is dropped (the page is left). On the server this does nothing:
/// a server-rendered page shows the state at rendering time.
pub fn follow<T: DeserializeOwned + 'static>(
    path: &str,
    event: &'static str,
    on_event: impl Fn(T) + 'static,
) {
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;
        let Ok(source) = web_sys::EventSource::new(path) else {
            return;
        };
        let listener =
            Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                if let Some(text) = ev.data().as_string()
                    && let Ok(value) = serde_json::from_str::<T>(&text)
                {
                    on_event(value);
                }
            });
        let _ = source.add_event_listener_with_callback(event, listener.as_ref().unchecked_ref());
        // The browser objects are not Send; the page runs on the one browser
        // thread, and cleanup runs there too.
        let held = send_wrapper::SendWrapper::new((source, listener));
        leptos::prelude::on_cleanup(move || {
            let (source, _listener) = &*held;
            source.close();
        });
    }
    #[cfg(not(all(feature = "hydrate", not(feature = "ssr"))))]
    {
        let _ = (path, event, on_event);
    }
}
