//! Protocol version 2 from the client's side, against scripted daemons (a raw peer speaking
//! the wire format): the handshake and its fallback to version 1, request options, streamed
//! calls and their cancellation, and the daemon's own requests served by the client.

use hearth_client::protocol::Version;
use hearth_client::{Client, Error};
use serde::de::IgnoredAny;

use crate::support::{FakeDaemon, within};

#[tokio::test]
async fn a_v2_daemon_gets_a_v2_connection() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.answer_hello(2).await;
        assert_eq!(peer.version(), Version::V2);
        let echo = peer.request().await.expect("the echo");
        assert!(echo.options.is_default(), "a plain call sends no options");
        peer.send(|enc, buf| enc.response_raw(buf, echo.id, &echo.params))
            .await;
        assert!(peer.request().await.is_none());
    });
    let client = within("connect", Client::connect(daemon.path()))
        .await
        .expect("connect");
    assert_eq!(client.protocol_version(), Version::V2);
    assert_eq!(client.hello().protocol, 2);
    let back: u32 = client.call("echo", &7u32).await.expect("echo");
    assert_eq!(back, 7);
    drop(client);
    daemon.finish().await;
}

#[tokio::test]
async fn a_v1_only_daemon_gets_a_second_connection_in_v1() {
    let daemon = FakeDaemon::start_v1_only(|mut peer| async move {
        peer.answer_hello(1).await;
        assert_eq!(
            peer.version(),
            Version::V1,
            "the second hello is in version 1"
        );
        let echo = peer.request().await.expect("the echo");
        peer.send(|enc, buf| enc.response_raw(buf, echo.id, &echo.params))
            .await;
        assert!(peer.request().await.is_none());
    });
    let client = within("connect", Client::connect(daemon.path()))
        .await
        .expect("falling back to version 1");
    assert_eq!(client.protocol_version(), Version::V1);
    assert_eq!(client.hello().protocol, 1);
    let back: String = client.call("echo", "hi").await.expect("echo");
    assert_eq!(back, "hi");
    // Options cannot be sent in version 1: a clear error, and nothing reaches the daemon.
    let err = client
        .request("echo", &1u8)
        .deadline(std::time::Duration::from_millis(5))
        .send::<IgnoredAny>()
        .await
        .expect_err("no options in version 1");
    assert!(
        matches!(err, Error::Unsupported { version: 1, .. }),
        "{err:?}"
    );
    assert!(!err.is_connection_lost());
    drop(client);
    daemon.finish().await;
}
