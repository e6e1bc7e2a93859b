//! `hearth-bridge` lets browsers talk to a hearth daemon, which they cannot reach on its Unix
//! socket: an HTTP and WebSocket server on a loopback port that forwards to the daemon's socket
//! as an ordinary hearth client (so the daemon's owner-only check still applies). It is safe
//! without configuration: it refuses to listen beyond loopback, every request must name the
//! bridge itself in `Host` (which defeats DNS rebinding), carry no foreign `Origin`, and prove
//! the token printed at start-up (header or cookie). The contract — flags, paths, status codes,
//! limits — is `docs/BRIDGE.md`; this crate's modules follow it: [`listen`] (which addresses are
//! allowed), `guard` (Host, Origin, token), `api` (the JSON API), `ws` (the WebSocket relay),
//! `page` (the demo page) and `serve` (the accept loop and its bounds). The `hearth bridge`
//! command is [`run`]; tests and embedders use [`Bridge`]. [`msgpack_to_json`] renders a
//! daemon's answer as JSON, for the API here and for the `hearth` CLI's output.

mod api;
mod config;
mod daemon;
mod error;
mod guard;
mod json;
pub mod listen;
mod page;
mod serve;
mod token;
mod urlfile;
mod ws;

pub use config::{Args, Config, Limits};
pub use error::Error;
pub use json::{UnreadableAnswer, msgpack_to_json, to_json};
pub use serve::{Bridge, run};
pub use token::Token;
