//! Notifications from the daemon: delivered in order to the one `Notifications` receiver,
//! dropped and counted (never blocking calls) when its buffer is full, and ended when the
//! connection closes.

use hearth_client::{Client, ClientConfig};
use hearth_server::{Limits, MethodError, RequestContext, Router, builtins};

use crate::support::{TestDaemon, TestDaemonExt, eventually, within};

/// `count(n)` sends `progress` notifications 0..n to the caller, then returns n.
fn counting_router() -> Router {
    builtins::add(Router::new()).method("count", |n: u64, ctx: RequestContext| async move {
        for i in 0..n {
            ctx.notify("progress", &i)
                .await
                .map_err(|e| MethodError::internal(e.to_string()))?;
        }
        Ok::<_, MethodError>(n)
    })
}

#[tokio::test]
async fn notifications_reach_the_receiver_in_order() {
    let daemon = TestDaemon::start_with(counting_router(), Limits::default());
    let client = daemon.client().await;
    let mut notes = client.notifications().expect("the first taker gets them");
    assert!(client.notifications().is_none(), "only once");
    assert!(client.clone().notifications().is_none(), "from any clone");

    let n: u64 = client.call("count", &5u64).await.expect("count");
    assert_eq!(n, 5);
    for expected in 0..5u64 {
        let note = within("a notification", notes.recv())
            .await
            .expect("the connection is open");
        assert_eq!(note.method, "progress");
        assert_eq!(note.params::<u64>().expect("a number"), expected);
    }
    assert_eq!(client.dropped_notifications(), 0);

    drop(client);
    assert!(
        within("the end of the stream", notes.recv())
            .await
            .is_none(),
        "the stream ends with the connection"
    );
}

#[tokio::test]
async fn a_full_buffer_drops_and_counts_instead_of_blocking() {
    let daemon = TestDaemon::start_with(counting_router(), Limits::default());
    let config = ClientConfig::default().with_notification_buffer(2);
    let client = Client::connect_with(daemon.path(), config)
        .await
        .expect("connect");
    let mut notes = client.notifications().expect("the receiver");

    // Nobody reads while the daemon sends ten: calls still complete.
    let n: u64 = client.call("count", &10u64).await.expect("count");
    assert_eq!(n, 10);
    // The daemon may send the answer before the notifications, so wait for all ten to have
    // been handled.
    eventually("eight notifications are dropped", || {
        client.dropped_notifications() == 8
    })
    .await;
    for expected in 0..2u64 {
        let note = notes.try_recv().expect("a buffered notification");
        assert_eq!(note.params::<u64>().expect("a number"), expected);
    }
    assert!(notes.try_recv().is_none());
}
