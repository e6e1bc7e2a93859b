//! The params and results of the service's methods, exactly as they travel (serde; structs
//! are MessagePack maps with these field names). docs/LANGUAGE.md describes them for client
//! authors; `rpc.rs` binds them to method names.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::position::{Position, Range};

/// `doc/open`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenParams {
    /// The document's URI (any string; compared byte for byte).
    pub uri: String,
    /// The whole text.
    pub text: String,
    /// The client's version number; each change must carry a larger one.
    pub version: i64,
    /// A language id, e.g. "rust" (kept, not used yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// One edit of `doc/change`, in LSP's content-change shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentChange {
    /// What to replace; absent means the whole text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    /// The new text.
    pub text: String,
}

/// `doc/change`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeParams {
    /// The document.
    pub uri: String,
    /// The version after the changes.
    pub version: i64,
    /// Edits applied in order, each to the text the previous one produced.
    pub changes: Vec<ContentChange>,
}

/// `doc/close`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseParams {
    /// The document.
    pub uri: String,
}

/// `complete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteParams {
    /// An open document of the caller's connection.
    pub uri: String,
    /// The cursor.
    pub position: Position,
    /// At most this many items (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Items returned when the request names no limit.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest limit honoured; larger ones are lowered to it.
pub const MAX_LIMIT: u32 = 1000;

/// Where a completion item came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The open document (it may also be in the workspace index).
    Document,
    /// Only the workspace index.
    Workspace,
}

/// One completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionItem {
    /// The identifier to insert.
    pub label: String,
    /// The fuzzy matcher's score (higher is better); items are already in rank order.
    pub score: u32,
    /// Where it came from.
    pub source: Source,
    /// For the user: "3 in document", or "src/lib.rs:12" (workspace; 1-based line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Result of `complete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteResult {
    /// The identifier chars before the cursor ("" when there are none: then no items).
    pub prefix: String,
    /// Best first.
    pub items: Vec<CompletionItem>,
    /// More candidates matched than were returned (or may have: see docs/LANGUAGE.md).
    pub incomplete: bool,
}

/// `symbols`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolsParams {
    /// What to look for (fuzzy).
    pub query: String,
    /// At most this many (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// One result of `symbols`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symbol {
    /// The identifier.
    pub name: String,
    /// `file://` + the absolute path of the file where it first occurs.
    pub uri: String,
    /// Zero-based line of that first occurrence.
    pub line: u32,
}

/// `workspace/index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexParams {
    /// The folder to index.
    pub root: PathBuf,
}

/// Result of `workspace/index`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexStats {
    /// Files indexed (skipped ones not counted).
    pub files: u64,
    /// Identifier occurrences indexed.
    pub identifiers: u64,
    /// Bytes read from the files indexed.
    pub bytes: u64,
    /// Wall-clock milliseconds the indexing took.
    pub ms: u64,
}

/// Progress of `workspace/index` (to be streamed as partial results).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexProgress {
    /// Files read (indexed or skipped) so far.
    pub files_done: u64,
    /// Files the walk found.
    pub files_total: u64,
}
