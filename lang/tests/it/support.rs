//! Shared helpers: a service with one open document, short constructors for params, and a
//! reference implementation of LSP positions over a plain `String` (written independently of
//! the rope code, to check it).

use hearth_lang::api::{ChangeParams, CompleteParams, ContentChange, OpenParams};
use hearth_lang::{LangService, Position, Range};

pub(crate) const URI: &str = "file:///t/a.rs";

pub(crate) fn open(service: &LangService, conn: u64, uri: &str, text: &str, version: i64) {
    service
        .open(
            conn,
            OpenParams {
                uri: uri.into(),
                text: text.into(),
                version,
                language: None,
            },
        )
        .expect("open");
}

pub(crate) fn with_doc(text: &str) -> LangService {
    let s = LangService::new();
    open(&s, 1, URI, text, 1);
    s
}

pub(crate) fn edit(sl: u32, sc: u32, el: u32, ec: u32, text: &str) -> ContentChange {
    ContentChange {
        range: Some(Range::new(Position::new(sl, sc), Position::new(el, ec))),
        text: text.into(),
    }
}

pub(crate) fn whole(text: &str) -> ContentChange {
    ContentChange {
        range: None,
        text: text.into(),
    }
}

pub(crate) fn change(uri: &str, version: i64, changes: Vec<ContentChange>) -> ChangeParams {
    ChangeParams {
        uri: uri.into(),
        version,
        changes,
    }
}

pub(crate) fn complete_at(line: u32, character: u32, limit: Option<u32>) -> CompleteParams {
    CompleteParams {
        uri: URI.into(),
        position: Position::new(line, character),
        limit,
    }
}

/// Labels of a completion at the end of the document's last line.
pub(crate) fn labels(service: &LangService, line: u32, character: u32) -> Vec<String> {
    service
        .complete(1, &complete_at(line, character, None))
        .expect("complete")
        .items
        .into_iter()
        .map(|i| i.label)
        .collect()
}

/// The byte offset of `pos` in `text`, by the LSP rules, computed the slow and obvious way:
/// lines split at LF, CR, CRLF; columns counted in UTF-16; past the end of a line → its end;
/// past the last line → end of text; inside a surrogate pair → before that char.
pub(crate) fn reference_offset(text: &str, pos: Position) -> usize {
    let mut line_starts = vec![0];
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => line_starts.push(i + 1),
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                line_starts.push(i + 2);
                i += 1;
            }
            b'\r' => line_starts.push(i + 1),
            _ => {}
        }
        i += 1;
    }
    let Some(&start) = line_starts.get(pos.line as usize) else {
        return text.len();
    };
    let mut units = 0u64;
    for (off, c) in text[start..].char_indices() {
        if c == '\n' || c == '\r' {
            return start + off;
        }
        let next = units + c.len_utf16() as u64;
        if next > u64::from(pos.character) {
            return start + off;
        }
        units = next;
    }
    text.len()
}

/// Applies one change to a `String` with [`reference_offset`].
pub(crate) fn reference_apply(text: &mut String, change: &hearth_lang::api::ContentChange) {
    match change.range {
        None => *text = change.text.clone(),
        Some(r) => {
            let s = reference_offset(text, r.start);
            let e = reference_offset(text, r.end).max(s);
            text.replace_range(s..e, &change.text);
        }
    }
}
