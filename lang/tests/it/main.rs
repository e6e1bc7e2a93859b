//! hearth-lang's integration tests, one binary: documents and versions, the words edits add
//! (against a from-scratch computation), completion ranking, workspace indexing and symbols, a
//! property test of edits against a plain `String`, and the service on the wire through
//! hearth-server.

mod added_words;
mod completion;
mod documents;
mod edits_prop;
mod indexing;
mod support;
mod wire;
