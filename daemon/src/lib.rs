//! The `hearthd` crate: what the daemon serves, as a library so tests can serve exactly the
//! same thing in process. [`router`] puts the built-in methods (`hearth_server::builtins`) and
//! the language service (`hearth-lang`: documents, the workspace index, `complete`,
//! `symbols`) on one router, and drops a connection's documents when the connection ends.
//! The command line, logging and signals live in `main.rs`; the methods themselves live in
//! `hearth-server` and `hearth-lang`, not here.

use std::sync::Arc;

use hearth_lang::LangService;
use hearth_server::{Router, builtins};

pub use hearth_lang;

/// Everything `hearthd` serves: the built-ins (`echo`, `sleep`, `shutdown`, `count`, `ask`)
/// and the language service over `service`, whose documents a connection loses when it ends.
///
/// ```
/// use std::sync::Arc;
///
/// let router = hearthd::router(Arc::new(hearthd::hearth_lang::LangService::new()));
/// assert!(router.methods().any(|m| m == "complete"));
/// assert!(router.methods().any(|m| m == "echo"));
/// ```
pub fn router(service: Arc<LangService>) -> Router {
    let on_close = service.clone();
    hearth_lang::rpc::register(builtins::router(), service)
        .on_disconnect(move |conn| on_close.connection_closed(conn))
}
