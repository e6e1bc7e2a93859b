//! LSP positions over a rope: [`Position`] (zero-based line, `character` in UTF-16 code units)
//! and [`Range`], and the conversions between them and the rope's char indices.
//!
//! Lines are split at LF, CR and CRLF only, as LSP says (ropey is built with `cr_lines` and
//! without `unicode_lines`). Every conversion is total: a line past the end of the document
//! means the end of the document; a `character` past the end of its line means the end of that
//! line (LSP's own rule); a `character` that falls between the two halves of a surrogate pair
//! means the start of that char. Nothing here panics on any input.

use ropey::Rope;
use serde::{Deserialize, Serialize};

/// A place in a document: zero-based line and UTF-16 code unit offset within the line.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Position {
    /// Zero-based line number.
    pub line: u32,
    /// Zero-based offset in UTF-16 code units from the start of the line.
    pub character: u32,
}

impl Position {
    /// A position.
    pub const fn new(line: u32, character: u32) -> Self {
        Self { line, character }
    }
}

/// A span between two positions; `end` is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Range {
    /// Where the span starts.
    pub start: Position,
    /// Where it ends (exclusive).
    pub end: Position,
}

impl Range {
    /// A range.
    pub const fn new(start: Position, end: Position) -> Self {
        Self { start, end }
    }
}

/// The char index just past the last char of `line` that is not part of its line break.
/// `line` must be a valid line index.
fn line_content_end(rope: &Rope, line: usize) -> usize {
    let start = rope.line_to_char(line);
    let slice = rope.line(line);
    let mut len = slice.len_chars();
    if len > 0 && slice.char(len - 1) == '\n' {
        len -= 1;
    }
    if len > 0 && slice.char(len - 1) == '\r' {
        len -= 1;
    }
    start + len
}

/// The char index `pos` names in `rope`, clamped as the module says.
pub fn position_to_char(rope: &Rope, pos: Position) -> usize {
    let line = pos.line as usize;
    // `len_lines` counts the empty line after a final line break, so it is at least 1.
    if line >= rope.len_lines() {
        return rope.len_chars();
    }
    let start = rope.line_to_char(line);
    let end = line_content_end(rope, line);
    let start_cu = rope.char_to_utf16_cu(start);
    let end_cu = rope.char_to_utf16_cu(end);
    let target = start_cu.saturating_add(pos.character as usize).min(end_cu);
    // Inside a surrogate pair ropey answers the char the unit belongs to: its start.
    rope.utf16_cu_to_char(target)
}

/// The position of char index `char_idx` (clamped to the end of the document).
pub fn char_to_position(rope: &Rope, char_idx: usize) -> Position {
    let char_idx = char_idx.min(rope.len_chars());
    let line = rope.char_to_line(char_idx);
    let start = rope.line_to_char(line);
    let character = rope.char_to_utf16_cu(char_idx) - rope.char_to_utf16_cu(start);
    Position {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        character: u32::try_from(character).unwrap_or(u32::MAX),
    }
}

/// The byte offset `pos` names in `rope` (see [`position_to_char`]).
pub fn position_to_byte(rope: &Rope, pos: Position) -> usize {
    rope.char_to_byte(position_to_char(rope, pos))
}

/// The position of byte offset `byte` (clamped to the end; inside a char means that char).
pub fn byte_to_position(rope: &Rope, byte: usize) -> Position {
    let byte = byte.min(rope.len_bytes());
    char_to_position(rope, rope.byte_to_char(byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, character: u32) -> Position {
        Position::new(line, character)
    }

    fn byte_at(text: &str, p: Position) -> usize {
        position_to_byte(&Rope::from_str(text), p)
    }

    #[test]
    fn ascii() {
        let t = "abc\ndef";
        assert_eq!(byte_at(t, pos(0, 0)), 0);
        assert_eq!(byte_at(t, pos(0, 3)), 3);
        assert_eq!(byte_at(t, pos(1, 1)), 5);
        assert_eq!(byte_to_position(&Rope::from_str(t), 5), pos(1, 1));
    }

    #[test]
    fn two_and_three_byte_chars_are_one_unit() {
        // é is 2 bytes, € is 3 bytes; each is one UTF-16 unit.
        let t = "é€x";
        assert_eq!(byte_at(t, pos(0, 1)), 2);
        assert_eq!(byte_at(t, pos(0, 2)), 5);
        assert_eq!(byte_at(t, pos(0, 3)), 6);
        let r = Rope::from_str(t);
        assert_eq!(byte_to_position(&r, 5), pos(0, 2));
        // Inside é: that char.
        assert_eq!(byte_to_position(&r, 1), pos(0, 0));
    }

    #[test]
    fn four_byte_chars_are_surrogate_pairs() {
        // 😀 is 4 bytes and two UTF-16 units.
        let t = "a😀b";
        assert_eq!(byte_at(t, pos(0, 1)), 1);
        assert_eq!(byte_at(t, pos(0, 3)), 5);
        assert_eq!(byte_at(t, pos(0, 4)), 6);
        // Between the two halves: the start of the emoji.
        assert_eq!(byte_at(t, pos(0, 2)), 1);
        assert_eq!(char_to_position(&Rope::from_str(t), 2), pos(0, 3));
    }

    #[test]
    fn crlf_and_cr_lines() {
        let t = "ab\r\ncd\ref\n";
        assert_eq!(byte_at(t, pos(1, 0)), 4);
        assert_eq!(byte_at(t, pos(2, 1)), 8);
        // Past the end of a CRLF line: before the CR, not between CR and LF.
        assert_eq!(byte_at(t, pos(0, 9)), 2);
        assert_eq!(byte_at(t, pos(1, 9)), 6);
        // The empty line after the final LF.
        assert_eq!(byte_at(t, pos(3, 0)), t.len());
        let r = Rope::from_str(t);
        assert_eq!(byte_to_position(&r, 7), pos(2, 0));
    }

    #[test]
    fn unicode_line_separators_are_not_lines() {
        let t = "a\u{2028}b\u{85}c";
        assert_eq!(Rope::from_str(t).len_lines(), 1);
        assert_eq!(byte_at(t, pos(0, 4)), t.len() - 1);
    }

    #[test]
    fn past_the_end() {
        let t = "ab\ncd";
        assert_eq!(byte_at(t, pos(0, 99)), 2);
        assert_eq!(byte_at(t, pos(1, u32::MAX)), 5);
        assert_eq!(byte_at(t, pos(7, 0)), 5);
        assert_eq!(byte_at(t, pos(u32::MAX, u32::MAX)), 5);
        assert_eq!(byte_at("", pos(0, 5)), 0);
        assert_eq!(byte_to_position(&Rope::from_str(t), 999), pos(1, 2));
    }

    #[test]
    fn round_trip_every_char() {
        let t = "x😀é\r\n€\r\n\n🎉🎉z";
        let r = Rope::from_str(t);
        for c in 0..=r.len_chars() {
            if c > 0 && r.char(c - 1) == '\r' && r.get_char(c) == Some('\n') {
                continue; // between CR and LF: no position names it
            }
            let p = char_to_position(&r, c);
            assert_eq!(position_to_char(&r, p), c, "char {c} at {p:?}");
        }
    }
}
