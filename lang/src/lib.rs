//! `hearth-lang` is the language service hearthd serves: it keeps each connection's open
//! documents as ropes (edits cost what they change), builds a workspace index of identifiers
//! shared by all connections, and answers identifier completion and fuzzy symbol search
//! quickly on an index of millions of occurrences. Positions follow LSP (zero-based lines,
//! UTF-16 columns).
//!
//! The service is a library first: [`LangService`] has plain methods (`open`, `change`,
//! `close`, `complete`, `symbols`, `index_workspace`, `connection_closed`) usable without
//! sockets. [`rpc::register`] puts them on a `hearth_server::Router`. The contract for client
//! authors is docs/LANGUAGE.md.
//!
//! ```
//! use hearth_lang::{LangService, api::{OpenParams, CompleteParams}, Position};
//!
//! let service = LangService::new();
//! service.open(1, OpenParams {
//!     uri: "file:///a.rs".into(),
//!     text: "let counter = 1;\ncou".into(),
//!     version: 1,
//!     language: None,
//! })?;
//! let result = service.complete(1, &CompleteParams {
//!     uri: "file:///a.rs".into(),
//!     position: Position::new(1, 3),
//!     limit: None,
//! })?;
//! assert_eq!(result.prefix, "cou");
//! assert_eq!(result.items[0].label, "counter");
//! # Ok::<(), hearth_lang::LangError>(())
//! ```

pub mod api;
#[doc(hidden)]
pub mod bench_support;
mod complete;
pub mod document;
mod error;
pub mod ident;
pub mod index;
pub mod position;
pub mod rpc;
mod service;
pub mod vocab;
pub mod words;

pub use complete::{COMPLETE_PREFIX_CAP, SYMBOLS_PREFIX_CAP};
pub use document::{DocumentLimits, DocumentStore};
pub use error::LangError;
pub use index::{Index, build_index};
pub use position::{Position, Range};
pub use service::LangService;
