//! What an identifier is, and the scanner that finds them in text.
//!
//! An identifier starts with `_` or a char with the Unicode `XID_Start` property and goes on
//! with `XID_Continue` chars (so `[A-Za-z_][A-Za-z0-9_]*` in ASCII, plus letters of other
//! scripts). A run that starts with a digit (`123abc`) is a number, not an identifier.
//! Identifiers of one char (`i`, `x`, `_`) are not collected: they are everywhere and
//! completing them saves nothing. Identifiers longer than [`MAX_IDENT_BYTES`] are not
//! collected either (minified code, base64, hashes); the prefix a user types is not limited
//! by either rule.
//!
//! Lines are counted at LF, CR and CRLF, like positions (`position.rs`).

/// Identifiers shorter than this many chars are not collected.
pub const MIN_IDENT_CHARS: usize = 2;
/// Identifiers longer than this many bytes are not collected.
pub const MAX_IDENT_BYTES: usize = 128;

/// Whether `c` may start an identifier.
#[inline]
pub fn is_ident_start(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic() || c == '_'
    } else {
        unicode_ident::is_xid_start(c)
    }
}

/// Whether `c` may continue an identifier.
#[inline]
pub fn is_ident_continue(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '_'
    } else {
        unicode_ident::is_xid_continue(c)
    }
}

/// Calls `found(identifier, line)` for every identifier in `text`, in order; `line` is
/// zero-based.
pub fn scan<'a>(text: &'a str, mut found: impl FnMut(&'a str, u32)) {
    let bytes = text.as_bytes();
    let mut line: u32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() {
            if b == b'\n' {
                line = line.saturating_add(1);
                i += 1;
                continue;
            }
            if b == b'\r' {
                // CRLF counts once: the LF is skipped with the CR.
                line = line.saturating_add(1);
                i += if bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                continue;
            }
            if !(b.is_ascii_alphanumeric() || b == b'_') {
                i += 1;
                continue;
            }
            // Fast path: a run of ASCII identifier bytes not followed by a non-ASCII char.
            let mut end = i + 1;
            while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                end += 1;
            }
            if end == bytes.len() || bytes[end].is_ascii() {
                let len = end - i;
                if !b.is_ascii_digit() && (MIN_IDENT_CHARS..=MAX_IDENT_BYTES).contains(&len) {
                    found(&text[i..end], line);
                }
                i = end;
                continue;
            }
        }
        // A run of identifier chars (or a non-ASCII char that is not one).
        let start = i;
        let mut chars = text[start..].char_indices();
        let Some((_, first)) = chars.next() else {
            break;
        };
        if !is_ident_continue(first) {
            i += first.len_utf8();
            continue;
        }
        let mut end = start + first.len_utf8();
        let mut n_chars = 1;
        for (off, c) in chars {
            if !is_ident_continue(c) {
                break;
            }
            end = start + off + c.len_utf8();
            n_chars += 1;
        }
        if is_ident_start(first) && n_chars >= MIN_IDENT_CHARS && end - start <= MAX_IDENT_BYTES {
            found(&text[start..end], line);
        }
        i = end;
    }
}

/// The identifier chars immediately before char index `at` in `text` (given as chars), or ""
/// when they do not form an identifier (they start with a digit). At most 256 chars back.
pub fn prefix_before(chars_before: impl Iterator<Item = char>) -> String {
    let mut rev: Vec<char> = chars_before
        .take(256)
        .take_while(|&c| is_ident_continue(c))
        .collect();
    rev.reverse();
    match rev.first() {
        Some(&c) if is_ident_start(c) => rev.into_iter().collect(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(text: &str) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        scan(text, |s, l| out.push((s.to_owned(), l)));
        out
    }

    #[test]
    fn ascii_identifiers_with_lines() {
        assert_eq!(
            idents("fn foo_bar(x: u32) -> Baz2 {\n  _ab\r\n9lives __\rend"),
            vec![
                ("fn".into(), 0),
                ("foo_bar".into(), 0),
                ("u32".into(), 0),
                ("Baz2".into(), 0),
                ("_ab".into(), 1),
                ("__".into(), 2),
                ("end".into(), 3),
            ]
        );
    }

    #[test]
    fn unicode_identifiers() {
        assert_eq!(
            idents("größe = 😀 naïve·x café1"),
            vec![
                ("größe".into(), 0),
                // U+00B7 MIDDLE DOT is XID_Continue.
                ("naïve·x".into(), 0),
                ("café1".into(), 0),
            ]
        );
    }

    /// The rules, char by char, with no fast path.
    fn naive(text: &str) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        let mut line = 0;
        let mut word = String::new();
        let mut prev_cr = false;
        for c in text.chars().chain(['\n']) {
            if is_ident_continue(c) {
                word.push(c);
            } else {
                let first = word.chars().next();
                if first.is_some_and(is_ident_start)
                    && word.chars().count() >= MIN_IDENT_CHARS
                    && word.len() <= MAX_IDENT_BYTES
                {
                    out.push((word.clone(), line));
                }
                word.clear();
            }
            if c == '\r' || (c == '\n' && !prev_cr) {
                line += 1;
            }
            prev_cr = c == '\r';
        }
        out
    }

    #[test]
    fn fast_path_agrees_with_the_rules() {
        for text in [
            "abcé d",
            "aé b",
            "9é xy",
            "é9a",
            "ab😀cd",
            "x_1é\r\nyz",
            "__ é",
            "abc",
            "a\u{300}b",
            "ñandú_2 über",
            "12ab cd34 _9",
        ] {
            assert_eq!(idents(text), naive(text), "{text:?}");
        }
    }

    #[test]
    fn too_long_is_skipped() {
        let long = "a".repeat(MAX_IDENT_BYTES + 1);
        assert_eq!(idents(&format!("{long} ok")), vec![("ok".into(), 0)]);
    }

    #[test]
    fn prefix() {
        let p = |s: &str| prefix_before(s.chars().rev());
        assert_eq!(p("let foo"), "foo");
        assert_eq!(p("x.größ"), "größ");
        assert_eq!(p("a 12ab"), "");
        assert_eq!(p("foo "), "");
        assert_eq!(p(""), "");
        assert_eq!(p("_"), "_");
    }
}
