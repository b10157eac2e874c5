//! Security headers on every answer, the API's and the portal's (issue 16
//! item 16): no MIME sniffing, no framing (clickjacking of the approval
//! buttons), no referrer leaving the site, no plugins, forms and `<base>`
//! only to this origin. Portal pages set their own, stricter policy with a
//! fresh script nonce per page (`yunshu_portal::app::content_security_policy`);
//! a header a handler already set is kept.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

const HEADERS: [(HeaderName, &str); 4] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "same-origin"),
    (
        header::CONTENT_SECURITY_POLICY,
        "frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'",
    ),
];

pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    for (name, value) in HEADERS {
        response
            .headers_mut()
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}
