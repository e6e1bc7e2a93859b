//! The WebSocket relay: envelopes both ways unchanged (hello, calls, partials, a daemon
//! request answered by the browser), many calls in flight answered out of order, refusals of
//! anything but version 2 binary envelopes (with close codes and reasons), and closing the
//! WebSocket cancelling its calls at the daemon.

use futures_util::{SinkExt, StreamExt};
use rmpv::Value as Mp;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{Setup, Ws, bounded, mp, unmp};

fn request(id: u64, method: &str, params: Mp) -> Message {
    Message::Binary(
        mp(&Mp::Array(vec![
            2.into(),
            0.into(),
            id.into(),
            method.into(),
            params,
        ]))
        .into(),
    )
}

fn request_with(id: u64, method: &str, params: Mp, opts: Vec<(Mp, Mp)>) -> Message {
    let envelope = Mp::Array(vec![
        2.into(),
        0.into(),
        id.into(),
        method.into(),
        params,
        Mp::Map(opts),
    ]);
    Message::Binary(mp(&envelope).into())
}

/// The next binary message, decoded.
async fn next(ws: &mut Ws) -> Mp {
    loop {
        match bounded(ws.next()).await {
            Some(Ok(Message::Binary(b))) => return unmp(&b),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a binary message, got {other:?}"),
        }
    }
}

/// The close frame that ends the WebSocket.
async fn closed(ws: &mut Ws) -> (CloseCode, String) {
    loop {
        match bounded(ws.next()).await {
            Some(Ok(Message::Close(Some(frame)))) => return (frame.code, frame.reason.to_string()),
            Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

fn map(pairs: &[(&str, Mp)]) -> Mp {
    Mp::Map(
        pairs
            .iter()
            .map(|(k, v)| (Mp::from(*k), v.clone()))
            .collect(),
    )
}

#[tokio::test]
async fn envelopes_cross_unchanged_both_ways() {
    let s = Setup::start().await;
    let mut ws = s.ws().await;
    ws.send(request(1, "$/hello", Mp::Nil)).await.expect("send");
    let hello = next(&mut ws).await;
    assert_eq!(hello[0], Mp::from(2));
    assert_eq!(hello[1], Mp::from(1));
    assert_eq!(hello[2], Mp::from(1));
    assert_eq!(hello[3], Mp::Nil);
    let protocol = hello[4]
        .as_map()
        .expect("hello result")
        .iter()
        .find(|(k, _)| k.as_str() == Some("protocol"));
    assert_eq!(protocol.map(|(_, v)| v.clone()), Some(Mp::from(2)));
    // A streamed call: its partials, then its response.
    let opts = vec![(Mp::from("stream"), Mp::from(true))];
    ws.send(request_with(2, "count", map(&[("n", 2.into())]), opts))
        .await
        .expect("send");
    assert_eq!(
        next(&mut ws).await,
        Mp::Array(vec![2.into(), 4.into(), 2.into(), 0.into(), 0.into()])
    );
    assert_eq!(
        next(&mut ws).await,
        Mp::Array(vec![2.into(), 4.into(), 2.into(), 1.into(), 1.into()])
    );
    assert_eq!(
        next(&mut ws).await,
        Mp::Array(vec![2.into(), 1.into(), 2.into(), Mp::Nil, 2.into()])
    );
    // A request from the daemon, answered by the browser side.
    let ask = map(&[("method", "editor/config".into()), ("params", Mp::Nil)]);
    ws.send(request(3, "ask", ask)).await.expect("send");
    let asked = next(&mut ws).await;
    assert_eq!(
        (asked[0].clone(), asked[1].clone(), asked[3].clone()),
        (2.into(), 0.into(), "editor/config".into())
    );
    let answer = Mp::Array(vec![
        2.into(),
        1.into(),
        asked[2].clone(),
        Mp::Nil,
        map(&[("tab", 4.into())]),
    ]);
    ws.send(Message::Binary(mp(&answer).into()))
        .await
        .expect("send");
    assert_eq!(
        next(&mut ws).await,
        Mp::Array(vec![
            2.into(),
            1.into(),
            3.into(),
            Mp::Nil,
            map(&[("tab", 4.into())])
        ])
    );
}

#[tokio::test]
async fn many_calls_are_in_flight_at_once_and_answered_as_they_finish() {
    let s = Setup::start().await;
    let mut ws = s.ws().await;
    for id in 1..=3 {
        ws.send(request(id, "gate", Mp::Nil)).await.expect("send");
    }
    s.gate.wait_entered(3).await;
    ws.send(request(4, "echo", "quick".into()))
        .await
        .expect("send");
    assert_eq!(
        next(&mut ws).await,
        Mp::Array(vec![2.into(), 1.into(), 4.into(), Mp::Nil, "quick".into()])
    );
    s.gate.open();
    let mut ids: Vec<u64> = Vec::new();
    for _ in 0..3 {
        ids.push(next(&mut ws).await[2].as_u64().expect("id"));
    }
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3]);
}

#[tokio::test]
async fn closing_the_websocket_cancels_its_calls() {
    let s = Setup::start().await;
    let mut ws = s.ws().await;
    ws.send(request(1, "gate", Mp::Nil)).await.expect("send");
    ws.send(request(2, "gate", Mp::Nil)).await.expect("send");
    s.gate.wait_entered(2).await;
    ws.close(None).await.expect("close");
    bounded(s.gate.wait_left(2)).await;
    s.server
        .wait_stats("the calls to end", |st| {
            st.in_flight == 0 && st.connections == 1
        })
        .await;
}

#[tokio::test]
async fn anything_but_version_2_binary_envelopes_is_refused_with_a_reason() {
    let s = Setup::start().await;
    let v1 = Mp::Array(vec![1.into(), 0.into(), 1.into(), "echo".into(), Mp::Nil]);
    let cases: Vec<(Message, CloseCode, &str)> = vec![
        (
            Message::Binary(mp(&v1).into()),
            CloseCode::Policy,
            "version 2 only",
        ),
        (
            Message::Binary(mp(&map(&[("v", 2.into())])).into()),
            CloseCode::Policy,
            "version 2 only",
        ),
        (
            Message::Text("[2,0,1,\"echo\",null]".into()),
            CloseCode::Unsupported,
            "binary messages only",
        ),
    ];
    for (message, code, reason) in cases {
        let mut ws = s.ws().await;
        ws.send(request(1, "echo", Mp::Nil)).await.expect("send");
        assert_eq!(next(&mut ws).await[4], Mp::Nil);
        ws.send(message).await.expect("send");
        let (got, why) = closed(&mut ws).await;
        assert_eq!(got, code, "{why}");
        assert!(why.contains(reason), "{why}");
    }
    // Larger than the daemon's max_frame.
    let max = s.server.handle.limits().max_frame;
    let mut ws = s.ws().await;
    let big = request(1, "echo", Mp::Binary(vec![0; max]));
    let _ = ws.send(big).await;
    let (got, _) = closed(&mut ws).await;
    assert_eq!(got, CloseCode::Size);
    s.server
        .wait_stats("the refused connections to close", |st| st.connections == 1)
        .await;
}
