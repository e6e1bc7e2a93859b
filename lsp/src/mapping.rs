//! The translation between LSP's shapes (`lsp-types`) and the language service's, as
//! docs/LANGUAGE.md gives them: document notifications, `complete` ↔ `CompletionList`,
//! `symbols` ↔ `SymbolInformation[]`, and `file:` URIs ↔ paths. Pure functions and plain
//! serde structs; this crate does not depend on `hearth-lang` (the gateway talks to a daemon,
//! and needs only the wire contract). Sending and error handling are `gateway.rs`'s.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use lsp_types as lsp;
use serde::{Deserialize, Serialize};

/// `doc/open` params.
#[derive(Debug, Serialize)]
pub(crate) struct DocOpen<'a> {
    pub(crate) uri: &'a str,
    pub(crate) text: &'a str,
    pub(crate) version: i64,
    pub(crate) language: &'a str,
}

/// One edit of `doc/change`.
#[derive(Debug, Serialize)]
pub(crate) struct DocEdit<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) range: Option<lsp::Range>,
    pub(crate) text: &'a str,
}

/// `doc/change` params.
#[derive(Debug, Serialize)]
pub(crate) struct DocChange<'a> {
    pub(crate) uri: &'a str,
    pub(crate) version: i64,
    pub(crate) changes: Vec<DocEdit<'a>>,
}

/// `doc/close` params.
#[derive(Debug, Serialize)]
pub(crate) struct DocClose<'a> {
    pub(crate) uri: &'a str,
}

impl<'a> DocOpen<'a> {
    pub(crate) fn from_lsp(p: &'a lsp::DidOpenTextDocumentParams) -> Self {
        Self {
            uri: p.text_document.uri.as_str(),
            text: &p.text_document.text,
            version: i64::from(p.text_document.version),
            language: &p.text_document.language_id,
        }
    }
}

impl<'a> DocChange<'a> {
    pub(crate) fn from_lsp(p: &'a lsp::DidChangeTextDocumentParams) -> Self {
        Self {
            uri: p.text_document.uri.as_str(),
            version: i64::from(p.text_document.version),
            // `rangeLength` is deprecated in LSP and redundant with `range`: not sent.
            changes: p
                .content_changes
                .iter()
                .map(|c| DocEdit {
                    range: c.range,
                    text: &c.text,
                })
                .collect(),
        }
    }
}

/// `complete` params.
#[derive(Debug, Serialize)]
pub(crate) struct Complete<'a> {
    pub(crate) uri: &'a str,
    pub(crate) position: lsp::Position,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) limit: Option<u32>,
}

/// One item of `complete`'s result.
#[derive(Debug, Deserialize)]
pub(crate) struct HearthItem {
    pub(crate) label: String,
    #[serde(default)]
    pub(crate) detail: Option<String>,
}

/// `complete`'s result.
#[derive(Debug, Deserialize)]
pub(crate) struct CompleteResult {
    pub(crate) prefix: String,
    pub(crate) items: Vec<HearthItem>,
    pub(crate) incomplete: bool,
}

/// The completion list for the editor: hearth's rank order kept in `sortText` (zero-padded
/// rank), kind TEXT (the service is lexical), and a `textEdit` that replaces the prefix the
/// service completed (its length counted in UTF-16 code units, as the position is).
pub(crate) fn completion_list(
    result: CompleteResult,
    position: lsp::Position,
) -> lsp::CompletionList {
    let prefix_units = u32::try_from(result.prefix.encode_utf16().count()).unwrap_or(u32::MAX);
    let start = lsp::Position {
        line: position.line,
        character: position.character.saturating_sub(prefix_units),
    };
    let range = lsp::Range {
        start,
        end: position,
    };
    let items = result
        .items
        .into_iter()
        .enumerate()
        .map(|(rank, item)| lsp::CompletionItem {
            kind: Some(lsp::CompletionItemKind::TEXT),
            detail: item.detail,
            sort_text: Some(format!("{rank:05}")),
            text_edit: Some(lsp::CompletionTextEdit::Edit(lsp::TextEdit {
                range,
                new_text: item.label.clone(),
            })),
            label: item.label,
            ..Default::default()
        })
        .collect();
    lsp::CompletionList {
        is_incomplete: result.incomplete,
        items,
    }
}

/// `symbols` params.
#[derive(Debug, Serialize)]
pub(crate) struct Symbols<'a> {
    pub(crate) query: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) limit: Option<u32>,
}

/// One result of `symbols`.
#[derive(Debug, Deserialize)]
pub(crate) struct HearthSymbol {
    pub(crate) name: String,
    pub(crate) uri: String,
    pub(crate) line: u32,
}

/// `symbols` results as LSP symbol information: kind VARIABLE (the index knows identifiers,
/// not what they name), location the whole line of the first occurrence. The daemon's `file://`
/// URIs are not percent-encoded; they are encoded here so the editor gets valid URIs. A
/// symbol whose URI still does not parse is left out.
pub(crate) fn symbol_information(symbols: Vec<HearthSymbol>) -> Vec<lsp::SymbolInformation> {
    symbols
        .into_iter()
        .filter_map(|s| {
            let uri = match s.uri.strip_prefix("file://") {
                Some(path) => path_to_uri(Path::new(path)),
                None => lsp::Uri::from_str(&s.uri).ok(),
            }?;
            #[allow(deprecated)] // `deprecated` is a required field of the struct.
            Some(lsp::SymbolInformation {
                name: s.name,
                kind: lsp::SymbolKind::VARIABLE,
                tags: None,
                deprecated: None,
                location: lsp::Location {
                    uri,
                    range: lsp::Range {
                        start: lsp::Position {
                            line: s.line,
                            character: 0,
                        },
                        end: lsp::Position {
                            line: s.line.saturating_add(1),
                            character: 0,
                        },
                    },
                },
                container_name: None,
            })
        })
        .collect()
}

/// `workspace/index` params.
#[derive(Debug, Serialize)]
pub(crate) struct Index<'a> {
    pub(crate) root: &'a Path,
}

/// `workspace/index`'s result.
#[derive(Debug, Deserialize)]
pub(crate) struct IndexStats {
    pub(crate) files: u64,
    pub(crate) identifiers: u64,
    pub(crate) ms: u64,
}

/// `workspace/index`'s partial result (progress).
#[derive(Debug, Deserialize)]
pub(crate) struct IndexProgress {
    pub(crate) files_done: u64,
    pub(crate) files_total: u64,
}

/// The path of a `file:` URI (`file:///p`, `file://localhost/p`), percent-decoded; `None` for
/// other schemes, other hosts, or a relative path.
pub fn uri_to_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    if !path.starts_with('/') {
        return None;
    }
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(PathBuf::from(OsString::from_vec(out)))
}

/// A `file://` URI for an absolute path, percent-encoding every byte outside RFC 3986's
/// unreserved set and `/`.
pub fn path_to_uri(path: &Path) -> Option<lsp::Uri> {
    let mut s = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    lsp::Uri::from_str(&s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_round_trip_through_paths() {
        let path = Path::new("/tmp/a dir/é#1.rs");
        let uri = path_to_uri(path).expect("valid");
        assert_eq!(uri.as_str(), "file:///tmp/a%20dir/%C3%A9%231.rs");
        assert_eq!(uri_to_path(uri.as_str()).as_deref(), Some(path));
        assert_eq!(
            uri_to_path("file://localhost/x").as_deref(),
            Some(Path::new("/x"))
        );
        assert_eq!(uri_to_path("https://x/y"), None);
        assert_eq!(uri_to_path("file:///bad%zz"), None);
        assert_eq!(uri_to_path("file:///cut%4"), None);
    }

    #[test]
    fn completion_keeps_rank_and_replaces_the_prefix_in_utf16() {
        let result = CompleteResult {
            prefix: "é😀x".into(),
            items: vec![
                HearthItem {
                    label: "é😀xb".into(),
                    detail: None,
                },
                HearthItem {
                    label: "é😀xa".into(),
                    detail: Some("1 in document".into()),
                },
            ],
            incomplete: true,
        };
        let list = completion_list(
            result,
            lsp::Position {
                line: 3,
                character: 10,
            },
        );
        assert!(list.is_incomplete);
        let sort: Vec<_> = list.items.iter().map(|i| i.sort_text.clone()).collect();
        assert_eq!(sort, vec![Some("00000".into()), Some("00001".into())]);
        let Some(lsp::CompletionTextEdit::Edit(edit)) = &list.items[0].text_edit else {
            panic!("a plain text edit");
        };
        // é is 1 unit, 😀 is 2, x is 1.
        assert_eq!(edit.range.start.character, 6);
        assert_eq!(edit.new_text, "é😀xb");
    }
}
