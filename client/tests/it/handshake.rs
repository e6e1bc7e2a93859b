//! Against scripted daemons: the `$/hello` version check (refused with `$/fatal`, or answered
//! with another protocol version), answers for unknown ids, and bytes that are not hearth
//! protocol.

use hearth_client::protocol::reserved::{FATAL, Fatal};
use hearth_client::protocol::{ErrorCode, FrameError};
use hearth_client::{Client, CloseReason, Error, ProtocolError};
use serde::de::IgnoredAny;

use crate::support::{FakeDaemon, fake_hello, within};

#[tokio::test]
async fn a_fatal_naming_other_versions_is_a_version_mismatch() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        let hello = peer.request().await.expect("the client's $/hello");
        assert_eq!(hello.method(), "$/hello");
        let client: serde_json::Value =
            hearth_client::protocol::from_msgpack(&hello.params).expect("hello params");
        assert!(client["client"].is_string(), "{client}");
        let fatal = Fatal {
            code: ErrorCode::UNSUPPORTED_VERSION.0,
            message: "this daemon speaks protocol 3".into(),
            supported: vec![3],
        };
        peer.send(|enc, buf| enc.notification(buf, FATAL, &fatal))
            .await;
    });
    let err = daemon.connect_err("versions differ").await;
    match &err {
        Error::VersionMismatch { client, daemon } => {
            assert_eq!(client, &[1, 2]);
            assert_eq!(daemon, &[3]);
        }
        other => panic!("expected a version mismatch, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "protocol version mismatch: this client speaks versions 1, 2, the daemon speaks version 3"
    );
    daemon.finish().await;
}

#[tokio::test]
async fn a_hello_with_another_protocol_is_a_version_mismatch() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.answer_hello(3).await;
        // Stay until the client hangs up.
        peer.expect_hang_up().await;
    });
    let err = daemon.connect_err("versions differ").await;
    assert!(
        matches!(&err, Error::VersionMismatch { client, daemon } if client == &[1, 2] && daemon == &[3]),
        "{err:?}"
    );
    daemon.finish().await;
}

#[tokio::test]
async fn a_daemon_that_hangs_up_at_once_fails_the_connect() {
    let daemon = FakeDaemon::start(|peer| async move { drop(peer) });
    let err = daemon.connect_err("nobody answers").await;
    assert!(
        matches!(
            &err,
            Error::Closed {
                reason: CloseReason::Eof
            } | Error::Io(_)
        ),
        "{err:?}"
    );
    daemon.finish().await;
}

#[tokio::test]
async fn answers_to_unknown_ids_are_ignored() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        let hello = peer.request().await.expect("the client's $/hello");
        peer.send(|enc, buf| enc.response(buf, 987_654, &"stray"))
            .await;
        let result = fake_hello(2);
        peer.send(|enc, buf| enc.response(buf, hello.id, &result))
            .await;
        let echo = peer.request().await.expect("the echo");
        peer.echo(&echo).await;
        peer.expect_hang_up().await;
    });
    let client = within("connect", Client::connect(daemon.path()))
        .await
        .expect("the stray answer is ignored");
    assert_eq!(client.hello().server, "fake 0.0.0");
    let back: String = client.call("echo", "hi").await.expect("echo");
    assert_eq!(back, "hi");
    daemon.finish_after(client).await;
}

/// A version 2 daemon that answers the client's first call with `garbage`, then expects the
/// client to hang up; returns the daemon, the client and the error that call failed with.
async fn first_call_answered_with(garbage: &'static [u8]) -> (FakeDaemon, Client, Error) {
    let daemon = FakeDaemon::start_v2(move |mut peer| async move {
        let _call = peer.request().await.expect("a call");
        peer.send_bytes(garbage).await;
        peer.expect_hang_up().await;
    });
    let client = daemon.client().await;
    let err = within("the call", client.call::<_, IgnoredAny>("anything", &()))
        .await
        .expect_err("the daemon sent garbage");
    (daemon, client, err)
}

#[tokio::test]
async fn an_invalid_frame_closes_the_connection_with_a_protocol_error() {
    // A frame of length zero.
    let (daemon, client, err) = first_call_answered_with(&[0, 0, 0, 0]).await;
    assert!(
        matches!(
            &err,
            Error::Protocol(ProtocolError::Frame(FrameError::Empty))
        ),
        "{err:?}"
    );
    assert!(client.is_closed());
    let next = client.call::<_, IgnoredAny>("anything", &()).await;
    assert!(
        matches!(
            next,
            Err(Error::Closed {
                reason: CloseReason::Protocol(_)
            })
        ),
        "{next:?}"
    );
    daemon.finish().await;
}

#[tokio::test]
async fn a_message_that_is_not_an_envelope_is_a_protocol_error() {
    // A frame holding the string "oops" instead of an envelope array.
    let (daemon, _client, err) =
        first_call_answered_with(&[0, 0, 0, 5, 0xa4, b'o', b'o', b'p', b's']).await;
    assert!(
        matches!(&err, Error::Protocol(ProtocolError::Decode(_))),
        "{err:?}"
    );
    daemon.finish().await;
}
