//! The service on the wire: hearth-server's `Service` over an in-memory stream, with the
//! handlers from `rpc::register`. Checks that document notifications are applied in order
//! before a later request reads the document, that a bad change gets `$/error` with the URI,
//! and that request errors carry the URI too.

use std::sync::Arc;

use bytes::BytesMut;
use hearth_lang::LangService;
use hearth_lang::api::CompleteResult;
use hearth_server::Router;
use hearth_server::protocol::{Encoder, FrameDecoder, Message};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Peer {
    rd: tokio::io::ReadHalf<tokio::io::DuplexStream>,
    wr: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    buf: BytesMut,
    frames: FrameDecoder,
}

impl Peer {
    fn start() -> Self {
        let service = Arc::new(LangService::new());
        let router = hearth_lang::rpc::register(Router::new(), service);
        let server = hearth_server::Server::builder().router(router).service();
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        tokio::spawn(async move { server.serve(theirs).await });
        let (rd, wr) = tokio::io::split(ours);
        Self {
            rd,
            wr,
            buf: BytesMut::new(),
            frames: FrameDecoder::new(1 << 20),
        }
    }

    async fn send(&mut self, frames: &[u8]) {
        self.wr.write_all(frames).await.expect("write");
    }

    async fn next(&mut self) -> Message {
        loop {
            if let Some(f) = self.frames.decode(&mut self.buf).expect("frame") {
                return Message::decode(f).expect("message");
            }
            let n = self.rd.read_buf(&mut self.buf).await.expect("read");
            assert_ne!(n, 0, "closed early");
        }
    }
}

fn notification(out: &mut BytesMut, method: &str, params: serde_json::Value) {
    Encoder::default()
        .notification(out, method, &params)
        .expect("encode");
}

fn request(out: &mut BytesMut, id: u64, method: &str, params: serde_json::Value) {
    Encoder::default()
        .request(out, id, method, &params)
        .expect("encode");
}

#[tokio::test]
async fn notifications_apply_in_order_before_a_later_request() {
    let mut peer = Peer::start();
    let uri = "file:///w/a.rs";
    let mut out = BytesMut::new();
    // One write: open, two edits, a stale edit, then a completion — all in one burst.
    notification(
        &mut out,
        "doc/open",
        json!({"uri": uri, "text": "", "version": 1, "language": "rust"}),
    );
    notification(
        &mut out,
        "doc/change",
        json!({"uri": uri, "version": 2, "changes": [{"text": "alphabet alpaca\n"}]}),
    );
    notification(
        &mut out,
        "doc/change",
        json!({"uri": uri, "version": 3, "changes": [
            {"range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}}, "text": "alp"}
        ]}),
    );
    notification(
        &mut out,
        "doc/change",
        json!({"uri": uri, "version": 3, "changes": [{"text": "stale"}]}),
    );
    request(
        &mut out,
        1,
        "complete",
        json!({"uri": uri, "position": {"line": 1, "character": 3}}),
    );
    peer.send(&out).await;

    let mut error = None;
    let mut response = None;
    // The `$/error` and the response may come in either order.
    while response.is_none() || error.is_none() {
        match peer.next().await {
            Message::Notification(n) if n.method() == "$/error" => {
                let v: serde_json::Value =
                    hearth_server::protocol::from_msgpack(&n.params).expect("params");
                error = Some(v);
            }
            Message::Response(r) => response = Some(r),
            other => panic!("unexpected {other:?}"),
        }
    }
    let error = error.expect("$/error for the stale change");
    assert_eq!(error["code"], -32602);
    assert_eq!(error["data"]["uri"], uri);
    let r = response.expect("response");
    let result: CompleteResult =
        hearth_server::protocol::from_msgpack(&r.outcome.expect("ok")).expect("result");
    assert_eq!(result.prefix, "alp");
    let labels: Vec<_> = result.items.iter().map(|i| i.label.as_str()).collect();
    assert_eq!(labels, ["alpaca", "alphabet"]);
}

#[tokio::test]
async fn a_request_on_a_document_not_open_names_it() {
    let mut peer = Peer::start();
    let mut out = BytesMut::new();
    request(
        &mut out,
        7,
        "complete",
        json!({"uri": "file:///nope", "position": {"line": 0, "character": 0}}),
    );
    request(&mut out, 8, "complete", json!({"uri": 5}));
    peer.send(&out).await;
    for _ in 0..2 {
        let Message::Response(r) = peer.next().await else {
            panic!("expected a response");
        };
        let e = r.outcome.expect_err("error");
        assert_eq!(e.code.0, -32602);
        if r.id == 7 {
            assert_eq!(e.message, "document not open: file:///nope");
            let data: serde_json::Value =
                hearth_server::protocol::from_msgpack(&e.data.expect("data")).expect("data");
            assert_eq!(data, json!({"uri": "file:///nope"}));
        } else {
            assert!(e.message.starts_with("invalid params for complete"));
        }
    }
}

#[tokio::test]
async fn workspace_index_then_symbols() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.rs"), "fn wire_symbol() {}\n").expect("write");
    let mut peer = Peer::start();
    let mut out = BytesMut::new();
    request(
        &mut out,
        1,
        "workspace/index",
        json!({"root": dir.path().to_str().expect("utf-8 path")}),
    );
    peer.send(&out).await;
    let Message::Response(r) = peer.next().await else {
        panic!("expected a response");
    };
    let stats: serde_json::Value =
        hearth_server::protocol::from_msgpack(&r.outcome.expect("ok")).expect("stats");
    assert_eq!(stats["files"], 1);
    assert_eq!(stats["identifiers"], 2);
    let mut out = BytesMut::new();
    request(&mut out, 2, "symbols", json!({"query": "wire_symbol"}));
    peer.send(&out).await;
    let Message::Response(r) = peer.next().await else {
        panic!("expected a response");
    };
    let symbols: serde_json::Value =
        hearth_server::protocol::from_msgpack(&r.outcome.expect("ok")).expect("symbols");
    assert_eq!(symbols[0]["name"], "wire_symbol");
    assert_eq!(symbols[0]["line"], 0);
}
