//! Open documents: [`Document`] (a rope, its version, and its identifiers once asked for, kept
//! up to date edit by edit — `words.rs`) and [`DocumentStore`], which keeps each connection's
//! documents apart.
//!
//! Ownership: a document belongs to the connection that opened it. Two connections may open
//! the same URI; each gets its own copy and sees only its own. `connection_closed` drops all
//! of a connection's documents.
//!
//! Locking: connections are spread over [`SHARDS`] mutexes, each held only to find, add or
//! remove a connection's entry; each connection's documents sit behind their own mutex, held
//! while an edit is applied (which costs what the edit changes) or while a snapshot is taken
//! (a rope clone is O(1)). So no lock is shared by all connections, and no work on one
//! connection waits for another's. Nothing is awaited while any of these `std` mutexes is held.
//! A poisoned mutex is used anyway: every update leaves the data consistent (edits are made on
//! a clone and committed by assignment).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ropey::Rope;
use rustc_hash::FxHashMap;

use crate::api::{ChangeParams, OpenParams};
use crate::error::LangError;
use crate::position::position_to_char;
use crate::words::{self, Delta, DocWords};

/// Number of mutexes connections are spread over.
pub const SHARDS: usize = 16;

/// Bounds on what a connection may keep open, so that no client can make the daemon hold
/// unbounded text (a frame bounds one message, not what edits add up to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentLimits {
    /// Documents one connection may have open at once.
    pub max_documents: usize,
    /// Largest document, in UTF-8 bytes, after open or after a change.
    pub max_document_bytes: usize,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        Self {
            max_documents: 512,
            max_document_bytes: 64 << 20,
        }
    }
}

/// One open document.
#[derive(Debug, Clone)]
pub struct Document {
    rope: Rope,
    version: i64,
    language: Option<String>,
    /// Names this exact text: new at every open and every applied change (a reopen may reuse
    /// a version number with other text).
    generation: u64,
    /// The identifiers of this text, once something asked for them; then kept up to date
    /// by edits (see `words.rs`).
    words: Option<Arc<DocWords>>,
}

/// Source of [`Document::generation`]s.
static GENERATION: AtomicU64 = AtomicU64::new(0);

fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Relaxed)
}

impl Document {
    /// A document with `text` at `version`.
    pub fn new(text: &str, version: i64, language: Option<String>) -> Self {
        Self {
            rope: Rope::from_str(text),
            version,
            language,
            generation: next_generation(),
            words: None,
        }
    }

    /// The text.
    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    /// The version.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The language id given at open.
    pub fn language(&self) -> Option<&str> {
        self.language.as_deref()
    }

    /// Applies `params` (all of its changes, or none of them): the version must be newer, no
    /// range may end before it starts, and the result may not exceed `max_bytes`. Positions
    /// past the end are clamped.
    pub fn apply(&mut self, params: &ChangeParams, max_bytes: usize) -> Result<(), LangError> {
        if params.version <= self.version {
            return Err(LangError::StaleVersion {
                uri: params.uri.clone(),
                version: params.version,
                current: self.version,
            });
        }
        // A rope clone shares its tree: edits copy only the nodes they touch, and the
        // document changes only if every edit applies.
        let mut rope = self.rope.clone();
        // What the edits did to the identifier counts, while the words are being tracked
        // (until a whole-text change, after which they are rescanned on next use).
        let mut pending = self.words.as_ref().map(|_| Delta::default());
        for (index, change) in params.changes.iter().enumerate() {
            match change.range {
                None => {
                    rope = Rope::from_str(&change.text);
                    pending = None;
                }
                Some(range) => {
                    if range.start > range.end {
                        return Err(LangError::InvalidRange {
                            uri: params.uri.clone(),
                            index,
                        });
                    }
                    let start = position_to_char(&rope, range.start);
                    // Clamping can only move `end` back to `start`'s line end, never before
                    // `start`: positions are ordered and clamping is monotonic.
                    let end = position_to_char(&rope, range.end).max(start);
                    let Some(pending) = pending.as_mut() else {
                        rope.remove(start..end);
                        rope.insert(start, &change.text);
                        continue;
                    };
                    let (wide_start, wide_end) = words::widen(&rope, start, end);
                    words::tally(&rope, wide_start, wide_end, -1, pending);
                    rope.remove(start..end);
                    rope.insert(start, &change.text);
                    let inserted = change.text.chars().count();
                    let new_end = wide_end - (end - start) + inserted;
                    words::tally(&rope, wide_start, new_end, 1, pending);
                }
            }
        }
        if rope.len_bytes() > max_bytes {
            return Err(LangError::TooLarge {
                uri: params.uri.clone(),
                bytes: rope.len_bytes(),
                max: max_bytes,
            });
        }
        self.words = match (self.words.take(), pending) {
            (Some(mut w), Some(pending)) => {
                Arc::make_mut(&mut w).apply(pending);
                Some(w)
            }
            _ => None,
        };
        self.rope = rope;
        self.version = params.version;
        self.generation = next_generation();
        Ok(())
    }
}

/// A read-only view of a document at one version, taken without holding any lock after.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The text.
    pub rope: Rope,
    /// Its version.
    pub version: i64,
    /// Which text it is (see [`Document`]).
    generation: u64,
    /// Its identifiers, if tracked.
    pub words: Option<Arc<DocWords>>,
}

/// One connection's documents by URI.
type ConnDocs = FxHashMap<String, Document>;
/// Connection id → its documents; one of the store's shards.
type Shard = FxHashMap<u64, Arc<Mutex<ConnDocs>>>;

/// The open documents of all connections.
#[derive(Debug)]
pub struct DocumentStore {
    shards: Box<[Mutex<Shard>]>,
    limits: DocumentLimits,
}

impl Default for DocumentStore {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DocumentStore {
    /// An empty store with the default limits.
    pub fn new() -> Self {
        Self::with_limits(DocumentLimits::default())
    }

    /// An empty store with these limits.
    pub fn with_limits(limits: DocumentLimits) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            limits,
        }
    }

    /// The limits.
    pub fn limits(&self) -> DocumentLimits {
        self.limits
    }

    fn shard(&self, conn: u64) -> &Mutex<Shard> {
        // `conn % SHARDS` is below SHARDS, so it fits and indexes in bounds.
        &self.shards[(conn % SHARDS as u64) as usize]
    }

    fn conn(&self, conn: u64) -> Option<Arc<Mutex<ConnDocs>>> {
        lock(self.shard(conn)).get(&conn).cloned()
    }

    /// Opens a document for `conn`. Opening a URI the connection already has open replaces
    /// it (text and version). Refused past the limits.
    pub fn open(&self, conn: u64, params: OpenParams) -> Result<(), LangError> {
        if params.text.len() > self.limits.max_document_bytes {
            return Err(LangError::TooLarge {
                uri: params.uri,
                bytes: params.text.len(),
                max: self.limits.max_document_bytes,
            });
        }
        let doc = Document::new(&params.text, params.version, params.language);
        let docs = lock(self.shard(conn)).entry(conn).or_default().clone();
        let mut docs = lock(&docs);
        if docs.len() >= self.limits.max_documents && !docs.contains_key(&params.uri) {
            return Err(LangError::TooManyDocuments {
                uri: params.uri,
                max: self.limits.max_documents,
            });
        }
        docs.insert(params.uri, doc);
        Ok(())
    }

    /// Applies a change to one of `conn`'s documents (see [`Document::apply`]).
    pub fn change(&self, conn: u64, params: &ChangeParams) -> Result<(), LangError> {
        let not_open = || LangError::NotOpen {
            uri: params.uri.clone(),
        };
        let docs = self.conn(conn).ok_or_else(not_open)?;
        let mut docs = lock(&docs);
        docs.get_mut(&params.uri)
            .ok_or_else(not_open)?
            .apply(params, self.limits.max_document_bytes)
    }

    /// Closes one of `conn`'s documents.
    pub fn close(&self, conn: u64, uri: &str) -> Result<(), LangError> {
        let removed = self
            .conn(conn)
            .and_then(|docs| lock(&docs).remove(uri))
            .is_some();
        if removed {
            Ok(())
        } else {
            Err(LangError::NotOpen {
                uri: uri.to_owned(),
            })
        }
    }

    /// Drops every document `conn` has open.
    pub fn connection_closed(&self, conn: u64) {
        let docs = lock(self.shard(conn)).remove(&conn);
        drop(docs); // freed outside the shard lock
    }

    /// A snapshot of one of `conn`'s documents.
    pub fn snapshot(&self, conn: u64, uri: &str) -> Result<Snapshot, LangError> {
        let not_open = || LangError::NotOpen {
            uri: uri.to_owned(),
        };
        let docs = self.conn(conn).ok_or_else(not_open)?;
        let docs = lock(&docs);
        let doc = docs.get(uri).ok_or_else(not_open)?;
        Ok(Snapshot {
            rope: doc.rope.clone(),
            version: doc.version,
            generation: doc.generation,
            words: doc.words.clone(),
        })
    }

    /// The identifiers of `snap`'s text: the tracked ones, or — the first time, or when the
    /// tracked difference has grown large — a full scan made now (without any lock held),
    /// kept if the document still has that text.
    pub fn words(&self, conn: u64, uri: &str, snap: &Snapshot) -> Arc<DocWords> {
        if let Some(w) = &snap.words
            && !w.is_stale()
        {
            return w.clone();
        }
        let words = Arc::new(DocWords::scan(&snap.rope));
        if let Some(docs) = self.conn(conn)
            && let Some(doc) = lock(&docs).get_mut(uri)
            && doc.generation == snap.generation
        {
            doc.words = Some(words.clone());
        }
        words
    }

    /// The identifier counts tracked for one of `conn`'s documents, if they are tracked
    /// (tests: they must equal a full scan's).
    #[doc(hidden)]
    pub fn tracked_counts(
        &self,
        conn: u64,
        uri: &str,
    ) -> Option<std::collections::BTreeMap<String, u64>> {
        let docs = self.conn(conn)?;
        let docs = lock(&docs);
        docs.get(uri)?.words.as_ref().map(|w| w.counts())
    }

    /// The text of one of `conn`'s documents (for tests and tools).
    pub fn text(&self, conn: u64, uri: &str) -> Option<String> {
        let docs = self.conn(conn)?;
        let docs = lock(&docs);
        docs.get(uri).map(|d| d.rope.to_string())
    }

    /// The version of one of `conn`'s documents.
    pub fn version(&self, conn: u64, uri: &str) -> Option<i64> {
        let docs = self.conn(conn)?;
        let docs = lock(&docs);
        docs.get(uri).map(|d| d.version)
    }

    /// How many documents `conn` has open.
    pub fn open_count(&self, conn: u64) -> usize {
        self.conn(conn).map_or(0, |docs| lock(&docs).len())
    }
}
