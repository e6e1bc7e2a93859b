//! [`TestDaemon`]: a real `hearth-server` on a fresh socket in a multi-thread runtime of its own,
//! on a thread of its own, so a test can kill it outright — every connection vanishes at once
//! with no goodbye, as when a process dies — which [`TestServer`](crate::TestServer), living in
//! the test's own runtime, cannot. Also [`private_dir`], the 0700 temporary folder a daemon's
//! socket needs. What a client crate adds on top (a connected client, a TCP config) stays in
//! that crate's tests: this crate depends on no client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use hearth_protocol::reserved::Stats;
use hearth_server::{Limits, Router, ServeError, Server, ServerHandle, builtins};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// A daemon serving on a temporary socket, in a multi-thread runtime of its own on a thread of
/// its own. [`TestDaemon::kill`] drops that runtime: every connection vanishes at once with no
/// goodbye, as when the process dies. Dropping the `TestDaemon` kills it too, so a failing test
/// leaves nothing running; the socket's folder goes with it.
pub struct TestDaemon {
    _dir: TempDir,
    path: PathBuf,
    tcp: Option<SocketAddr>,
    handle: ServerHandle,
    kill: Option<oneshot::Sender<()>>,
    /// Ends with the server's result, or `None` when it was killed.
    thread: Option<JoinHandle<Option<Result<(), ServeError>>>>,
}

impl TestDaemon {
    /// The built-in methods (`echo`, `sleep`, `shutdown`…) with default limits.
    pub fn start() -> Self {
        Self::start_with(builtins::router(), Limits::default())
    }

    /// The built-in methods with default limits, also listening on a loopback TCP port.
    pub fn start_tcp() -> Self {
        Self::start_on(builtins::router(), Limits::default(), true)
    }

    /// Serves `router` under `limits`, also listening on a loopback TCP port.
    pub fn start_tcp_with(router: Router, limits: Limits) -> Self {
        Self::start_on(router, limits, true)
    }

    /// Serves `router` under `limits`.
    pub fn start_with(router: Router, limits: Limits) -> Self {
        Self::start_on(router, limits, false)
    }

    fn start_on(router: Router, limits: Limits, tcp: bool) -> Self {
        let dir = private_dir();
        let path = dir.path().join("hearthd.sock");
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let socket = path.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the daemon");
            let mut builder = Server::builder()
                .socket(socket)
                .router(router)
                .limits(limits);
            if tcp {
                builder = builder.listen_tcp(SocketAddr::from(([127, 0, 0, 1], 0)));
            }
            let bound = runtime.block_on(builder.bind());
            let server = match bound {
                Ok(server) => server,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return None;
                }
            };
            let _ = ready_tx.send(Ok((server.handle(), server.tcp_addr())));
            let outcome = runtime.block_on(async move {
                let run = tokio::spawn(server.run());
                tokio::select! {
                    ran = run => Some(ran.expect("the server task does not panic")),
                    // Killed, or the `TestDaemon` was dropped.
                    _ = kill_rx => None,
                }
            });
            // Whatever still runs (connections, handlers) is dropped here, sockets included.
            drop(runtime);
            outcome
        });
        let (handle, tcp) = match ready_rx.recv() {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => panic!("the test daemon did not start: {e}"),
            Err(_) => panic!("the test daemon thread died while starting"),
        };
        Self {
            _dir: dir,
            path,
            tcp,
            handle,
            kill: Some(kill_tx),
            thread: Some(thread),
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The TCP address, for a daemon started with [`start_tcp`](Self::start_tcp).
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp.expect("a daemon started with start_tcp")
    }

    /// The server's handle: shutdown, counters.
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// The server's counters, read directly (a `$/stats` call would count itself in flight).
    pub fn stats(&self) -> Stats {
        self.handle.stats()
    }

    /// Kills the daemon: drops its runtime, and with it every connection. Returns once it is
    /// gone. Killing a daemon that is already gone does nothing.
    pub fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Waits (blocking) until the server stopped by itself, after a shutdown, and returns its
    /// result.
    pub fn wait_stopped(mut self) -> Result<(), ServeError> {
        let thread = self.thread.take().expect("the daemon thread");
        match thread.join() {
            Ok(Some(result)) => result,
            Ok(None) => panic!("the daemon was killed, not stopped"),
            Err(_) => panic!("the daemon thread panicked"),
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh temporary folder only we can use, as the daemon requires of its socket's folder.
/// (`tempfile` creates folders with the default mode, which the umask may leave open.)
pub fn private_dir() -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .expect("making the temporary folder private");
    dir
}
