//! The demo page: `/` (HTML), `/app.js` and `/app.css`, embedded at build time with
//! `include_str!` so there is no build step and nothing external. Served only to
//! authenticated requests (the guard runs first), with a Content-Security-Policy that allows
//! nothing but this bridge: scripts and styles from itself, connections to itself (HTTP and
//! its WebSocket), no framing. The page never sees the token: it rides in the HttpOnly cookie.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`.
pub(crate) async fn index() -> Response {
    asset(
        include_str!("../static/index.html"),
        "text/html; charset=utf-8",
    )
}

/// `GET /app.js`.
pub(crate) async fn script() -> Response {
    asset(
        include_str!("../static/app.js"),
        "text/javascript; charset=utf-8",
    )
}

/// `GET /app.css`.
pub(crate) async fn style() -> Response {
    asset(include_str!("../static/app.css"), "text/css; charset=utf-8")
}

fn asset(text: &'static str, content_type: &'static str) -> Response {
    let mut response = text.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
