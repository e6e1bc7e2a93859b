//! The checks every request passes before any handler runs, in this order: the `Host` header
//! must name the bridge itself (`localhost`, `127.0.0.1` or `[::1]` with the bridge's port;
//! else 403 — this defeats DNS rebinding); an `Origin` header, if present, must be the
//! bridge's own origin or one given with `--origin`, exactly (else 403; preflights of allowed
//! extra origins are answered here, without a token, since browsers never send one); and the
//! request must carry the token, as `Authorization: Bearer`, as the bridge's cookie, or — on
//! `GET /` only — as `?token=`, which is answered with the cookie and a redirect to `/` so the
//! token leaves the address bar. Anything else is 401 with a short text body: no page, no API.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::serve::Shared;

/// The name of the bridge's cookie: per port, so two bridges do not overwrite each other's
/// (cookies are scoped by host, not port).
pub(crate) fn cookie_name(port: u16) -> String {
    format!("hearth_bridge_{port}")
}

/// The middleware: Host, Origin, token.
pub(crate) async fn guard(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let Some(host) = allowed_host(headers, shared.port) else {
        return refuse(
            StatusCode::FORBIDDEN,
            "403 forbidden: the Host header does not name this bridge\n",
        );
    };
    // A request line in absolute form names its own authority, which then overrides Host
    // (RFC 9112 §3.2.2): it must name the bridge too.
    if req
        .uri()
        .authority()
        .is_some_and(|a| !a.as_str().eq_ignore_ascii_case(&host))
    {
        return refuse(
            StatusCode::FORBIDDEN,
            "403 forbidden: the request target does not name this bridge\n",
        );
    }
    let origin = match one_header(headers, header::ORIGIN) {
        Err(()) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "403 forbidden: more than one Origin\n",
            );
        }
        Ok(None) => None,
        Ok(Some(origin)) => {
            let own = origin.eq_ignore_ascii_case(&format!("http://{host}"));
            let extra = shared
                .origins
                .iter()
                .any(|o| o.as_bytes() == origin.as_bytes());
            if !own && !extra {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "403 forbidden: this Origin may not call the bridge\n",
                );
            }
            // Only extra origins get CORS headers; the bridge's own pages do not need them.
            extra.then(|| origin.to_owned())
        }
    };
    if req.method() == Method::OPTIONS
        && let Some(origin) = origin.as_deref()
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return preflight(origin);
    }
    let authorized = bearer_ok(&shared, headers) || cookie_ok(&shared, headers);
    if req.method() == Method::GET
        && req.uri().path() == "/"
        && let Some(given) = query_token(req.uri().query())
    {
        if shared.token.matches(given.as_bytes()) {
            return login(&shared);
        }
        return unauthorized();
    }
    if !authorized {
        return unauthorized();
    }
    let mut response = next.run(req).await;
    if let Some(origin) = origin {
        allow_origin(response.headers_mut(), &origin);
    }
    response
}

/// The `Host` value, lowercased, when it is one of the bridge's own names with its port.
fn allowed_host(headers: &HeaderMap, port: u16) -> Option<String> {
    let host = one_header(headers, header::HOST)
        .ok()??
        .to_ascii_lowercase();
    let (name, host_port) = match host.rsplit_once(':') {
        Some((name, p)) if !host.ends_with(']') => (name, p.parse::<u16>().ok()?),
        _ => (host.as_str(), 80),
    };
    (host_port == port && matches!(name, "localhost" | "127.0.0.1" | "[::1]")).then_some(host)
}

/// A header that must appear at most once, as text.
fn one_header(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>, ()> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(());
    }
    first.map(|v| v.to_str().map_err(|_| ())).transpose()
}

fn bearer_ok(shared: &Shared, headers: &HeaderMap) -> bool {
    headers.get_all(header::AUTHORIZATION).iter().any(|value| {
        let value = value.as_bytes();
        value.len() > 7
            && value[..7].eq_ignore_ascii_case(b"bearer ")
            && shared.token.matches(&value[7..])
    })
}

fn cookie_ok(shared: &Shared, headers: &HeaderMap) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, value)| name == shared.cookie_name && shared.token.matches(value.as_bytes()))
}

/// `token=` from a query string.
fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
}

/// The answer to `GET /?token=TOKEN`: the cookie, and a redirect that drops the token.
fn login(shared: &Shared) -> Response {
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/",
        shared.cookie_name,
        shared.token.as_str()
    );
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    let h = response.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static("/"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        h.insert(header::SET_COOKIE, value);
    }
    response
}

fn preflight(origin: &str) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    allow_origin(h, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}

fn allow_origin(h: &mut HeaderMap, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

fn unauthorized() -> Response {
    let mut response = refuse(
        StatusCode::UNAUTHORIZED,
        "401 unauthorized: open the URL `hearth bridge` printed, or send Authorization: Bearer TOKEN\n",
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn refuse(status: StatusCode, text: &'static str) -> Response {
    let mut response = (status, text).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(value).expect("value"));
        h
    }

    #[test]
    fn only_the_bridges_own_names_and_port_pass() {
        for ok in [
            "localhost:7727",
            "127.0.0.1:7727",
            "[::1]:7727",
            "LOCALHOST:7727",
        ] {
            assert!(allowed_host(&host(ok), 7727).is_some(), "{ok}");
        }
        for no in [
            "attacker.example:7727",
            "127.0.0.1.attacker.example:7727",
            "127.0.0.1:7728",
            "127.0.0.1",
            "localhost.:7727",
            "[::1]",
            "0.0.0.0:7727",
            "127.0.0.2:7727",
            "",
        ] {
            assert!(allowed_host(&host(no), 7727).is_none(), "{no:?}");
        }
        assert!(allowed_host(&HeaderMap::new(), 7727).is_none(), "missing");
        assert!(
            allowed_host(&host("localhost"), 80).is_some(),
            "port 80 may be left out"
        );
    }

    #[test]
    fn the_query_token_is_found_among_other_parameters() {
        assert_eq!(query_token(Some("a=1&token=abc")), Some("abc"));
        assert_eq!(query_token(Some("xtoken=abc")), None);
        assert_eq!(query_token(None), None);
    }
}
