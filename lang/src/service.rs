//! [`LangService`]: the language service as plain methods over a [`DocumentStore`] and the
//! shared workspace [`Index`] — no sockets, no async, so it can be tested, benchmarked and
//! fuzzed directly. `rpc.rs` binds these methods to the wire.
//!
//! The index is an `ArcSwap<Index>`: a request loads the current `Arc` (no lock, one atomic
//! reference count) and works on that snapshot even if a re-index finishes meanwhile; a
//! re-index builds the new index completely aside and publishes it with one store, so readers
//! see the old index or the new one, never a mix. The old one is freed when its last reader
//! drops its `Arc`. Two re-indexes at once both build; the one that finishes last wins.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwap;

use crate::api::{
    ChangeParams, CloseParams, CompleteParams, CompleteResult, DEFAULT_LIMIT, IndexStats,
    MAX_LIMIT, OpenParams, Symbol, SymbolsParams,
};
use crate::complete;
use crate::document::{DocumentLimits, DocumentStore};
use crate::error::LangError;
use crate::ident::{self, is_ident_continue};
use crate::index::{Index, build_index};
use crate::position::position_to_char;

/// The language service: every connection's open documents and one workspace index.
#[derive(Debug)]
pub struct LangService {
    docs: DocumentStore,
    index: ArcSwap<Index>,
}

impl Default for LangService {
    fn default() -> Self {
        Self::new()
    }
}

fn limit(requested: Option<u32>) -> usize {
    requested.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT) as usize
}

impl LangService {
    /// A service with no documents, an empty index and the default document limits.
    pub fn new() -> Self {
        Self::with_limits(DocumentLimits::default())
    }

    /// A service with these document limits.
    pub fn with_limits(limits: DocumentLimits) -> Self {
        Self {
            docs: DocumentStore::with_limits(limits),
            index: ArcSwap::from_pointee(Index::empty()),
        }
    }

    /// The open documents.
    pub fn documents(&self) -> &DocumentStore {
        &self.docs
    }

    /// `doc/open` from connection `conn`. Reopening replaces the document. Refused past the
    /// document limits.
    pub fn open(&self, conn: u64, params: OpenParams) -> Result<(), LangError> {
        self.docs.open(conn, params)
    }

    /// `doc/change` from connection `conn`: all changes or none.
    pub fn change(&self, conn: u64, params: &ChangeParams) -> Result<(), LangError> {
        self.docs.change(conn, params)
    }

    /// `doc/close` from connection `conn`.
    pub fn close(&self, conn: u64, params: &CloseParams) -> Result<(), LangError> {
        self.docs.close(conn, &params.uri)
    }

    /// Drops every document connection `conn` opened. The daemon must call this when a
    /// connection ends, or its documents stay in memory.
    pub fn connection_closed(&self, conn: u64) {
        self.docs.connection_closed(conn);
    }

    /// `complete` from connection `conn` (see `complete.rs` for the ranking rules). A
    /// position past the end of its line or of the document is clamped.
    pub fn complete(
        &self,
        conn: u64,
        params: &CompleteParams,
    ) -> Result<CompleteResult, LangError> {
        let snap = self.docs.snapshot(conn, &params.uri)?;
        let at = position_to_char(&snap.rope, params.position);
        let prefix = ident::prefix_before(snap.rope.chars_at(at).reversed());
        if prefix.is_empty() {
            return Ok(CompleteResult {
                prefix,
                items: Vec::new(),
                incomplete: false,
            });
        }
        let mut word = prefix.clone();
        word.extend(
            snap.rope
                .chars_at(at)
                .take(256)
                .take_while(|&c| is_ident_continue(c)),
        );
        let doc = self.docs.words(conn, &params.uri, &snap);
        let index = self.index.load();
        let (items, incomplete) =
            complete::complete(&doc, &index, &prefix, &word, limit(params.limit));
        Ok(CompleteResult {
            prefix,
            items,
            incomplete,
        })
    }

    /// `symbols`: fuzzy search of the workspace index.
    pub fn symbols(&self, params: &SymbolsParams) -> Vec<Symbol> {
        complete::symbols(&self.index.load(), &params.query, limit(params.limit))
    }

    /// `workspace/index`: builds an index of `root` on this thread and, unless `cancel` was
    /// set, makes it the service's index. `progress(files_done, files_total)` is called on
    /// this thread as files are read. Blocks for as long as the walk takes: call it from
    /// a blocking thread.
    pub fn index_workspace(
        &self,
        root: &Path,
        cancel: &AtomicBool,
        progress: impl FnMut(u64, u64),
    ) -> Result<IndexStats, LangError> {
        let index = build_index(root, cancel, progress)?;
        let stats = index.stats();
        self.index.store(Arc::new(index));
        Ok(stats)
    }

    /// Makes `index` the service's index (tests, benchmarks, an index built elsewhere).
    pub fn set_index(&self, index: Index) {
        self.index.store(Arc::new(index));
    }

    /// The current index.
    pub fn index(&self) -> Arc<Index> {
        self.index.load_full()
    }
}
