//! The JSON API and the login: the token URL sets the cookie and redirects to `/`; the page
//! and its assets load with the cookie; `/v2/hello`, calls with results and errors (and their
//! statuses), `deadline_ms`, NDJSON streams, the OpenAPI document; and an HTTP client that
//! goes away cancels its call at the daemon.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;

use crate::support::{Setup, bounded};

#[tokio::test]
async fn the_token_url_sets_the_cookie_and_redirects_the_token_away() {
    let s = Setup::start().await;
    let path = s
        .url
        .split_once(&s.host())
        .expect("url names the host")
        .1
        .to_owned();
    let answer = s
        .send(s.req("GET", &path).body(Full::default()).expect("req"))
        .await;
    assert_eq!(answer.status, 303, "{answer:?}");
    assert_eq!(answer.header("location"), Some("/"));
    let cookie = answer.header("set-cookie").expect("a cookie");
    assert!(cookie.starts_with(&format!("{}; ", s.cookie())), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(
            cookie.split("; ").any(|a| a == attribute),
            "{attribute} in {cookie}"
        );
    }
    assert!(!answer.body.contains(&s.token));
    // With the cookie, the page and its assets load, and none of them holds the token.
    for (path, kind) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
    ] {
        let req = s
            .req("GET", path)
            .header("cookie", s.cookie())
            .body(Full::default())
            .expect("req");
        let answer = s.send(req).await;
        assert_eq!(answer.status, 200, "{path}");
        assert!(
            answer
                .header("content-type")
                .is_some_and(|t| t.starts_with(kind)),
            "{path}"
        );
        assert!(
            answer
                .header("content-security-policy")
                .is_some_and(|c| c.contains("frame-ancestors 'none'"))
        );
        assert!(
            !answer.body.contains(&s.token),
            "{path} must not hold the token"
        );
    }
}

#[tokio::test]
async fn hello_is_the_daemons_hello_as_json() {
    let s = Setup::start().await;
    let answer = s.send(s.get("/v2/hello")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let hello = answer.json();
    assert_eq!(hello["protocol"], 2);
    assert_eq!(hello["supported"], json!([1, 2]));
    let methods = hello["methods"].as_array().expect("methods");
    assert!(methods.contains(&json!("echo")) && methods.contains(&json!("$/stats")));
    assert_eq!(
        hello["limits"]["max_frame"],
        s.server.handle.limits().max_frame
    );
}

#[tokio::test]
async fn calls_answer_results_and_errors_with_mapped_statuses() {
    let s = Setup::start().await;
    let answer = s
        .send(s.post("/v2/call/echo", r#"{"a": [1, -2, 2.5, null, true, "x"]}"#))
        .await;
    assert_eq!(
        (answer.status, answer.json()),
        (200, json!({"result": {"a": [1, -2, 2.5, null, true, "x"]}}))
    );
    // No body is null params.
    let answer = s.send(s.post("/v2/call/echo", "")).await;
    assert_eq!(answer.json(), json!({"result": null}));
    // Reserved methods work too; the path keeps their slash.
    let answer = s.send(s.post("/v2/call/$/stats", "null")).await;
    assert_eq!(answer.status, 200);
    assert!(answer.json()["result"]["requests_total"].as_u64().is_some());
    let cases = [
        ("/v2/call/no.such.method", "null", 404, -32601),
        ("/v2/call/sleep", r#"{"ms": "long"}"#, 400, -32602),
        ("/v2/call/sleep?deadline_ms=0", r#"{"ms": 1}"#, 504, -32002),
        ("/v2/call/count", r#"{"n": 10000000}"#, 400, -32602),
    ];
    for (path, body, status, code) in cases {
        let answer = s.send(s.post(path, body)).await;
        let error = &answer.json()["error"];
        assert_eq!(
            (answer.status, error["code"].as_i64()),
            (status, Some(code)),
            "{path}: {answer:?}"
        );
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let answer = s.send(s.post("/v2/call/echo", "{nope")).await;
    assert_eq!(answer.status, 400, "bad JSON");
    let answer = s.send(s.post("/v2/call/echo?stream=maybe", "1")).await;
    assert_eq!(answer.status, 400, "bad stream flag");
}

#[tokio::test]
async fn a_newer_call_with_the_same_supersede_key_replaces_the_older() {
    let s = Setup::start().await;
    let first = tokio::spawn({
        let req = s.post("/v2/call/gate?supersede=k", "null");
        let port = s.port;
        async move { send_on(port, req).await }
    });
    s.gate.wait_entered(1).await;
    let second = tokio::spawn({
        let req = s.post("/v2/call/gate?supersede=k", "null");
        let port = s.port;
        async move { send_on(port, req).await }
    });
    let (status, body) = bounded(first).await.expect("first");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("-32801"), "{body}");
    s.gate.open();
    let (status, body) = bounded(second).await.expect("second");
    assert_eq!((status, body.as_str()), (200, r#"{"result":"opened"}"#));
}

async fn send_on(port: u16, req: hyper::Request<Full<Bytes>>) -> (u16, String) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let response = sender.send_request(req).await.expect("response");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn stream_1_sends_partials_as_ndjson_then_the_result() {
    let s = Setup::start().await;
    let answer = s
        .send(s.post("/v2/call/count?stream=1", r#"{"n": 3}"#))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<serde_json::Value> = answer
        .body
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(
        lines,
        vec![
            json!({"partial": 0}),
            json!({"partial": 1}),
            json!({"partial": 2}),
            json!({"result": 3})
        ]
    );
    assert!(answer.body.ends_with('\n'));
    // An error before any partial gets its status.
    let answer = s.send(s.post("/v2/call/nothing?stream=1", "null")).await;
    assert_eq!(answer.status, 404);
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let s = Setup::start().await;
    let answer = s.send(s.get("/v2/openapi.json")).await;
    assert_eq!(answer.status, 200);
    let doc = answer.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in ["/v2/hello", "/v2/call/{method}", "/v2/ws"] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
}

#[tokio::test]
async fn an_http_client_going_away_cancels_its_call() {
    let s = Setup::start().await;
    let response = tokio::spawn({
        let req = s.post("/v2/call/gate", "null");
        let port = s.port;
        async move { send_on(port, req).await }
    });
    s.gate.wait_entered(1).await;
    assert_eq!(s.server.handle.stats().in_flight, 1);
    response.abort(); // drops the connection
    bounded(s.gate.wait_left(1)).await;
    s.server
        .wait_stats("the call to end", |st| st.in_flight == 0)
        .await;
    // The same for a stream.
    let held = tokio::spawn({
        let req = s.post("/v2/call/gate?stream=1", "null");
        let port = s.port;
        async move { send_on(port, req).await }
    });
    s.gate.wait_entered(2).await;
    held.abort();
    bounded(s.gate.wait_left(2)).await;
    s.server
        .wait_stats("the streamed call to end", |st| st.in_flight == 0)
        .await;
}
