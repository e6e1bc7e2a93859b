//! Integration tests of the `hearth` binary against a real `hearth-server` daemon: the
//! commands (`cli`), the load tester (`bench`) and the LSP gateway (`lsp`). One test binary;
//! helpers in `support`.

mod bench;
mod cli;
mod lang;
mod lifecycle;
mod lsp;
mod support;
mod tour;
mod typing;
