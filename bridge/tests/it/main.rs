//! Integration tests of `hearth-bridge` against an in-process hearth server on a temporary
//! socket: `refusals` (everything the bridge must refuse, and how), `api` (the JSON API),
//! `websocket` (the relay) and `startup` (listen addresses, the URL file, the token, the
//! binary). Shared set-up is in `support`.

mod api;
mod refusals;
mod startup;
mod support;
mod websocket;
