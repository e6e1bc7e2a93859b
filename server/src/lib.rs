//! `hearth-server` builds hearth daemons: register methods with typed (serde) params and
//! results on a [`Router`], bind a [`Server`] to an owner-only Unix socket, and [`run`] it.
//! Requests on one connection run concurrently and are answered as they finish; cancel,
//! disconnect and shutdown stop handlers; a panicking handler fails only its own request;
//! every queue is bounded (see [`Limits`]). `hearthd` is this library plus [`builtins`].
//!
//! ```no_run
//! use hearth_server::{MethodError, RequestContext, Router, Server};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let router = Router::new().method("greet", |name: String, _ctx: RequestContext| async move {
//!     Ok::<_, MethodError>(format!("hello, {name}"))
//! });
//! let server = Server::builder().router(router).bind().await?;
//! let handle = server.handle(); // handle.shutdown() from a signal handler, say
//! server.run().await?;
//! # drop(handle); Ok(()) }
//! ```
//!
//! Handlers are async ([`Router::method`], [`Router::raw_method`]): each request's future runs
//! concurrently with the connection's other requests. A handler that never waits can instead
//! be synchronous ([`Router::sync_method`], [`Router::sync_raw_method`]): a plain function
//! called inline on the connection's task with a borrowed [`RequestContext`] the connection
//! reuses, which saves the future and the context every async call costs. It must not block
//! (its connection reads and answers nothing while it runs); to the caller the two kinds are
//! the same.
//!
//! ```
//! use hearth_server::{MethodError, RequestContext, Router};
//!
//! let router = Router::new()
//!     // Waits for something: async.
//!     .method("nap", |ms: u64, _ctx: RequestContext| async move {
//!         tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
//!         Ok::<_, MethodError>(ms)
//!     })
//!     // Answers at once: synchronous, called inline.
//!     .sync_method("len", |s: String, _ctx: &RequestContext| Ok(s.len()));
//! assert_eq!(router.methods().count(), 2);
//! ```
//!
//! Wire format: `hearth-protocol` and docs/PROTOCOL.md. Signals, logging and flags are the
//! business of the `hearthd` binary (`daemon/`), not the library's.
//!
//! [`run`]: Server::run

mod budget;
pub mod builtins;
mod client;
mod config;
mod connection;
mod context;
mod error;
mod in_flight;
mod params;
mod router;
mod server;
mod socket;
mod stats;
mod stream;
mod tcp_token;
#[cfg(test)]
mod v2_tests;

pub use config::{Limits, ServerInfo};
pub use context::{NotificationContext, Notifier, RequestContext};
pub use error::{ClientRequestError, MethodError, NotifyError, ServeError, StartError};
pub use router::Router;
pub use server::{Server, ServerBuilder, ServerHandle, Service, default_socket_path};
pub use stream::Overflow;
pub use tcp_token::FILE_NAME as TCP_TOKEN_FILE;

pub use hearth_protocol as protocol;
