//! Everything the bridge refuses: no token or a wrong one (401 on every path, the page
//! included, and nothing of the page in the answer), a foreign or missing `Host` (403), a
//! foreign `Origin` on POST and on the WebSocket upgrade (403), a `text/plain` cross-site POST,
//! an oversize body (413), preflights from origins not allowed — and, for contrast, that the
//! same requests pass with everything right.

use bytes::Bytes;
use http_body_util::Full;

use crate::support::Setup;

/// How often the daemon was asked for `method`.
fn calls(s: &Setup, method: &str) -> u64 {
    s.server
        .handle
        .stats()
        .methods
        .get(method)
        .copied()
        .unwrap_or(0)
}

/// Every path the bridge serves, and a few it does not.
const PATHS: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/app.js"),
    ("GET", "/app.css"),
    ("GET", "/v2/hello"),
    ("GET", "/v2/openapi.json"),
    ("GET", "/v2/ws"),
    ("POST", "/v2/call/echo"),
    ("POST", "/v2/call/$/stats"),
    ("GET", "/nope"),
    ("OPTIONS", "/v2/call/echo"),
];

#[tokio::test]
async fn without_the_token_every_path_is_401_and_nothing_else() {
    let s = Setup::start().await;
    let wrong = "0".repeat(64);
    let short = &s.token[..32];
    for &(method, path) in PATHS {
        let attempts = [
            ("none", None),
            (
                "wrong bearer",
                Some(("authorization", format!("Bearer {wrong}"))),
            ),
            (
                "short bearer",
                Some(("authorization", format!("Bearer {short}"))),
            ),
            (
                "basic",
                Some(("authorization", format!("Basic {}", s.token))),
            ),
            (
                "wrong cookie",
                Some(("cookie", format!("hearth_bridge_{}={wrong}", s.port))),
            ),
            (
                "other cookie name",
                Some(("cookie", format!("hearth_bridge_1={}", s.token))),
            ),
        ];
        for (what, header) in attempts {
            let mut req = s
                .req(method, path)
                .header("content-type", "application/json");
            if let Some((name, value)) = header {
                req = req.header(name, value);
            }
            let answer = s
                .send(req.body(Full::new(Bytes::from("null"))).expect("req"))
                .await;
            assert_eq!(
                answer.status, 401,
                "{method} {path} with {what}: {answer:?}"
            );
            assert!(
                !answer.body.contains('<'),
                "no page in a 401: {:?}",
                answer.body
            );
            assert!(answer.header("set-cookie").is_none(), "{method} {path}");
            assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        }
    }
    // The query token opens only `/`; elsewhere it is not a credential.
    for path in ["/v2/hello", "/app.js", "/nope"] {
        let req = s
            .req("GET", &format!("{path}?token={}", s.token))
            .body(Full::default())
            .expect("req");
        assert_eq!(s.send(req).await.status, 401, "{path}?token=");
    }
    let req = s
        .req("GET", &format!("/?token={wrong}"))
        .body(Full::default())
        .expect("req");
    let answer = s.send(req).await;
    assert_eq!(answer.status, 401, "/?token=wrong");
    assert!(answer.header("set-cookie").is_none());
    // Nothing reached the daemon.
    assert_eq!(calls(&s, "echo"), 0);
}

#[tokio::test]
async fn a_foreign_or_missing_host_is_403_even_with_the_token() {
    let s = Setup::start().await;
    let port = s.port;
    let hosts = [
        Some(format!("attacker.example:{port}")),
        Some("attacker.example".to_owned()),
        Some(format!("127.0.0.1.attacker.example:{port}")),
        Some(format!("localhost.attacker.example:{port}")),
        Some(format!("127.0.0.1:{}", port.wrapping_add(1))),
        Some(format!("127.0.0.2:{port}")),
        Some(format!("0.0.0.0:{port}")),
        None,
    ];
    for host in hosts {
        for &(method, path) in PATHS {
            let mut req = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", s.bearer())
                .header("content-type", "application/json");
            if let Some(host) = &host {
                req = req.header("host", host);
            }
            let answer = s
                .send(req.body(Full::new(Bytes::from("null"))).expect("req"))
                .await;
            assert_eq!(
                answer.status, 403,
                "{method} {path} Host {host:?}: {answer:?}"
            );
        }
        // The upgrade itself, with every header a browser sends.
        let mut upgrade = hyper::Request::get("/v2/ws")
            .header("authorization", s.bearer())
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
        if let Some(host) = &host {
            upgrade = upgrade.header("host", host);
        }
        let answer = s.send(upgrade.body(Full::default()).expect("req")).await;
        assert_eq!(answer.status, 403, "ws Host {host:?}");
    }
    // A request target in absolute form must name the bridge too, whatever Host says.
    let req = hyper::Request::get("http://attacker.example/v2/hello")
        .header("host", s.host())
        .header("authorization", s.bearer())
        .body(Full::default())
        .expect("req");
    assert_eq!(s.send(req).await.status, 403, "absolute-form target");
    // The bridge's own names pass.
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let req = hyper::Request::get("/v2/hello")
            .header("host", host.as_str())
            .header("authorization", s.bearer())
            .body(Full::default())
            .expect("req");
        assert_eq!(s.send(req).await.status, 200, "Host {host}");
    }
}

/// Origins a page elsewhere would send: another site, another loopback port, the same host
/// over https, an opaque origin.
fn foreign_origins(s: &Setup) -> Vec<String> {
    vec![
        "http://attacker.example".into(),
        format!("http://127.0.0.1:{}", s.port.wrapping_add(1)),
        format!("https://127.0.0.1:{}", s.port),
        format!("http://127.0.0.1:{}/", s.port),
        "null".into(),
    ]
}

#[tokio::test]
async fn a_foreign_origin_is_403_on_post_and_on_the_websocket_upgrade() {
    let s = Setup::start().await;
    for origin in foreign_origins(&s) {
        // The browser would attach the cookie: SameSite does not separate ports of one host.
        let req = s
            .req("POST", "/v2/call/echo")
            .header("cookie", s.cookie())
            .header("origin", origin.as_str())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from("1")))
            .expect("req");
        let answer = s.send(req).await;
        assert_eq!(answer.status, 403, "POST from {origin}: {answer:?}");
        assert!(answer.header("access-control-allow-origin").is_none());
        let ws = s
            .ws_request()
            .header("cookie", s.cookie())
            .header("origin", origin.as_str())
            .body(())
            .expect("req");
        assert_eq!(
            s.ws_with(ws).await.err(),
            Some(403),
            "WebSocket from {origin}"
        );
    }
    assert_eq!(calls(&s, "echo"), 0, "nothing reached the daemon");
    // The bridge's own origin passes, on each of its names.
    for origin in [s.origin(), format!("http://localhost:{}", s.port)] {
        let host = origin.trim_start_matches("http://").to_owned();
        let req = hyper::Request::post("/v2/call/echo")
            .header("host", host)
            .header("cookie", s.cookie())
            .header("origin", origin.as_str())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from("1")))
            .expect("req");
        assert_eq!(s.send(req).await.status, 200, "own origin {origin}");
    }
    let _ws = s.ws().await;
}

#[tokio::test]
async fn a_simple_text_plain_cross_site_post_never_reaches_the_daemon() {
    let s = Setup::start().await;
    // What an HTML form or a no-cors fetch from another page sends: no preflight.
    let req = s
        .req("POST", "/v2/call/shutdown")
        .header("cookie", s.cookie())
        .header("origin", "http://attacker.example")
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from("{}")))
        .expect("req");
    assert_eq!(s.send(req).await.status, 403);
    // Even without an Origin (an old browser, a proxy that strips it), only JSON is accepted.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let req = s
            .req("POST", "/v2/call/shutdown")
            .header("cookie", s.cookie())
            .header("content-type", content_type)
            .body(Full::new(Bytes::from("{}")))
            .expect("req");
        let answer = s.send(req).await;
        assert_eq!(answer.status, 415, "{content_type}: {answer:?}");
    }
    let req = s
        .req("POST", "/v2/call/shutdown")
        .header("cookie", s.cookie())
        .body(Full::new(Bytes::from("{}")))
        .expect("req");
    assert_eq!(s.send(req).await.status, 415, "no Content-Type");
    assert_eq!(calls(&s, "shutdown"), 0);
    assert!(!s.server.handle.is_shutting_down());
}

#[tokio::test]
async fn an_oversize_body_is_413() {
    let s = Setup::start().await;
    let big = format!("\"{}\"", "x".repeat(1 << 20));
    // With a Content-Length, refused before reading.
    let answer = s.send(s.post("/v2/call/echo", &big)).await;
    assert_eq!(
        answer.status,
        413,
        "{:?}",
        &answer.body[..answer.body.len().min(200)]
    );
    // Chunked, without a length: refused when the limit is crossed.
    let body = http_body_util::StreamBody::new(futures_util::stream::iter((0..20).map(|_| {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(vec![
            b' ';
            64 * 1024
        ])))
    })));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", s.port))
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let req = s
        .req("POST", "/v2/call/echo")
        .header("authorization", s.bearer())
        .header("content-type", "application/json")
        .body(body)
        .expect("req");
    let response = crate::support::bounded(sender.send_request(req))
        .await
        .expect("response");
    assert_eq!(response.status(), 413);
    // Just under the limit passes.
    let fits = format!("\"{}\"", "x".repeat((1 << 20) - 2));
    assert_eq!(s.send(s.post("/v2/call/echo", &fits)).await.status, 200);
}

#[tokio::test]
async fn preflights_are_answered_only_for_origins_given_with_origin() {
    let allowed = "http://localhost:5173";
    let s = Setup::with(|c| c.origins = vec![allowed.to_owned()]).await;
    let preflight = |origin: &str| {
        s.req("OPTIONS", "/v2/call/echo")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .body(Full::default())
            .expect("req")
    };
    let answer = s.send(preflight(allowed)).await;
    assert_eq!(answer.status, 204);
    assert_eq!(answer.header("access-control-allow-origin"), Some(allowed));
    for origin in [
        "http://attacker.example",
        "http://localhost:5174",
        "http://localhost:5173/",
        "*",
    ] {
        let answer = s.send(preflight(origin)).await;
        assert_eq!(answer.status, 403, "{origin}");
        assert!(answer.header("access-control-allow-origin").is_none());
    }
    // The allowed origin's real request gets its CORS header, never `*`.
    let req = s
        .req("POST", "/v2/call/echo")
        .header("origin", allowed)
        .header("authorization", s.bearer())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from("7")))
        .expect("req");
    let answer = s.send(req).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-origin"), Some(allowed));
    // Without --origin, no preflight is answered at all.
    let plain = Setup::start().await;
    let req = plain
        .req("OPTIONS", "/v2/call/echo")
        .header("origin", allowed)
        .header("access-control-request-method", "POST")
        .body(Full::default())
        .expect("req");
    assert_eq!(plain.send(req).await.status, 403);
}

#[tokio::test]
async fn an_oversize_request_head_is_431() {
    let s = Setup::start().await;
    let req = s
        .req("GET", "/v2/hello")
        .header("authorization", s.bearer())
        .header("x-pad", "x".repeat(32 * 1024))
        .body(Full::default())
        .expect("req");
    assert_eq!(s.send(req).await.status, 431);
}
