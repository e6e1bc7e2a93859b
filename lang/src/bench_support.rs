//! Deterministic workloads for benchmarks and the callgrind guard: a generated workspace of
//! about a million identifier occurrences (no files, no clock, no randomness beyond a fixed
//! seed), an open document of prefixes to complete, and [`complete_workload`], which runs a
//! fixed list of completions; and [`Typist`], which types generated identifiers into that
//! document one keystroke at a time, completing after each (the path an editor drives). Not
//! part of the service's API.

use std::path::PathBuf;

use crate::api::{ChangeParams, CompleteParams, ContentChange, OpenParams};
use crate::index::Index;
use crate::position::{Position, Range};
use crate::service::LangService;

/// The connection the workload's document belongs to.
pub const CONN: u64 = 1;
/// The workload document's URI.
pub const URI: &str = "file:///bench/typing.rs";

/// Prefixes completed by [`complete_workload`], one per line of its document: short and long,
/// prefix and fuzzy, both cases, and ones that match nothing.
pub const PREFIXES: &[&str] = &[
    "g",
    "ge",
    "get",
    "getU",
    "get_user",
    "gtvl",
    "Se",
    "set_conf",
    "cfg",
    "usr",
    "parseReq",
    "ha",
    "HandlerCo",
    "tk",
    "to_str",
    "valu",
    "xq",
    "zzzz",
    "Re",
    "id",
    "bu",
    "bufR",
    "ne",
    "newS",
];

const WORDS: &[&str] = &[
    "get",
    "set",
    "user",
    "value",
    "config",
    "parse",
    "request",
    "handler",
    "token",
    "buffer",
    "new",
    "id",
    "name",
    "path",
    "file",
    "read",
    "write",
    "stream",
    "state",
    "cache",
    "index",
    "node",
    "tree",
    "list",
    "map",
    "key",
    "entry",
    "item",
    "len",
    "size",
    "count",
    "error",
    "result",
    "option",
    "string",
    "bytes",
    "frame",
    "message",
    "client",
    "server",
    "socket",
    "conn",
    "session",
    "context",
    "event",
    "queue",
    "task",
    "future",
    "timer",
    "deadline",
    "limit",
    "budget",
    "stats",
    "counter",
    "render",
    "layout",
    "view",
    "model",
    "store",
    "update",
    "insert",
    "remove",
    "delete",
    "find",
    "search",
    "match",
    "score",
    "rank",
    "sort",
    "merge",
    "split",
    "join",
    "to",
    "from",
    "into",
    "as",
    "is",
    "has",
    "with",
    "by",
    "for",
    "open",
    "close",
    "start",
    "stop",
    "run",
    "spawn",
    "send",
    "recv",
    "poll",
    "wake",
    "lock",
    "guard",
    "ref",
    "mut",
    "box",
    "arc",
    "rope",
    "line",
    "char",
    "byte",
    "offset",
    "range",
    "position",
    "document",
    "workspace",
    "symbol",
    "complete",
    "prefix",
    "fuzzy",
    "query",
];

/// SplitMix64: a fixed, dependency-free generator (also the offline typing examples').
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose draws depend on `seed` alone.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Below `n`, skewed towards 0 (roughly Zipf-like: a few words are everywhere).
    fn skewed(&mut self, n: usize) -> usize {
        let a = (self.next_u64() % n as u64) as usize;
        let b = (self.next_u64() % n as u64) as usize;
        a * b / n
    }
}

fn capitalized(w: &str, out: &mut String) {
    let mut cs = w.chars();
    if let Some(c) = cs.next() {
        out.extend(c.to_uppercase());
        out.push_str(cs.as_str());
    }
}

/// One generated identifier: one to three words, snake_case, camelCase or PascalCase,
/// sometimes with a number.
fn identifier(rng: &mut Rng, out: &mut String) {
    let words = 1 + rng.skewed(3);
    let style = rng.next_u64() % 3;
    for i in 0..words {
        let w = WORDS[rng.skewed(WORDS.len())];
        match (style, i) {
            (0, 0) | (1, 0) => out.push_str(w),
            (0, _) => {
                out.push('_');
                out.push_str(w);
            }
            _ => capitalized(w, out),
        }
    }
    if rng.next_u64().is_multiple_of(8) {
        out.push_str(&(rng.next_u64() % 100).to_string());
    }
}

/// Generated source files holding `occurrences` identifier occurrences in all (identifiers of
/// two chars or more only, so each counts), 1000 per file, 10 per line.
pub fn generated_files(occurrences: usize) -> Vec<(PathBuf, String)> {
    let mut rng = Rng(0x6865_6172_7468);
    let mut files = Vec::new();
    let mut made = 0;
    while made < occurrences {
        let mut text = String::new();
        let in_file = (occurrences - made).min(1000);
        for i in 0..in_file {
            identifier(&mut rng, &mut text);
            text.push_str(if i % 10 == 9 { ";\n" } else { " = " });
        }
        made += in_file;
        files.push((
            PathBuf::from(format!("/bench/src/f{:05}.rs", files.len())),
            text,
        ));
    }
    files
}

/// An index of [`generated_files`].
pub fn generated_index(occurrences: usize) -> Index {
    let files = generated_files(occurrences);
    Index::from_texts(
        std::path::Path::new("/bench"),
        files.iter().map(|(p, t)| (p.clone(), t.as_str())),
    )
}

/// A service holding `index` and, for connection [`CONN`], the document [`URI`]: a few
/// hundred lines of generated code followed by one line per prefix in [`PREFIXES`].
pub fn service(index: Index) -> LangService {
    let service = LangService::new();
    service.set_index(index);
    let (_, body) = generated_files(3000).swap_remove(0);
    let mut text = body;
    for p in PREFIXES {
        text.push_str("    ");
        text.push_str(p);
        text.push('\n');
    }
    service
        .open(
            CONN,
            OpenParams {
                uri: URI.into(),
                text,
                version: 1,
                language: Some("rust".into()),
            },
        )
        .expect("within the default limits");
    service
}

/// The cursor after prefix number `i` of [`PREFIXES`] in [`service`]'s document.
pub fn prefix_position(i: usize) -> Position {
    // The generated body has 100 lines per 1000 identifiers, and ends with a line break.
    let line = 100 + i;
    let character = 4 + PREFIXES[i % PREFIXES.len()].encode_utf16().count();
    Position::new(
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(character).unwrap_or(u32::MAX),
    )
}

/// Completes every prefix of [`PREFIXES`] once; returns the number of items produced (so the
/// work cannot be optimized away).
pub fn complete_workload(service: &LangService) -> usize {
    let mut items = 0;
    for i in 0..PREFIXES.len() {
        let params = CompleteParams {
            uri: URI.into(),
            position: prefix_position(i),
            limit: None,
        };
        if let Ok(r) = service.complete(CONN, &params) {
            items += r.items.len();
        }
    }
    items
}

/// Types generated identifiers, one char per keystroke, on new lines after the last line of
/// [`service`]'s document: each keystroke is a `doc/change` inserting one char and then a
/// `complete` at the cursor, as an editor sends them. Every word ends with a line break, so
/// each typed word stays in the document and the words its edits added keep growing — the
/// state a real editing session is in between full rescans.
#[derive(Debug)]
pub struct Typist {
    rng: Rng,
    /// The line being typed on.
    line: u32,
    /// The next version to send.
    version: i64,
    word: String,
}

impl Default for Typist {
    fn default() -> Self {
        Self::new()
    }
}

impl Typist {
    /// A typist starting on the line after [`service`]'s document's last (fixed seed).
    pub fn new() -> Self {
        Self {
            rng: Rng(0x7479_7069_6e67),
            line: u32::try_from(100 + PREFIXES.len()).unwrap_or(u32::MAX),
            version: 2,
            word: String::new(),
        }
    }

    fn key(&mut self, service: &LangService, at: Position, text: &str) {
        let params = ChangeParams {
            uri: URI.into(),
            version: self.version,
            changes: vec![ContentChange {
                range: Some(Range::new(at, at)),
                text: text.into(),
            }],
        };
        self.version += 1;
        // The typist's own document, within the limits: cannot fail.
        let _ = service.change(CONN, &params);
    }

    /// Types `words` identifiers into [`service`]'s document (ASCII, a line each), completing
    /// after every char when `complete` is set; returns the number of items produced.
    pub fn type_words(&mut self, service: &LangService, words: usize, complete: bool) -> usize {
        let mut items = 0;
        for _ in 0..words {
            self.word.clear();
            let mut word = std::mem::take(&mut self.word);
            identifier(&mut self.rng, &mut word);
            // Half of them new to the generated vocabulary, as names a user makes up are.
            if self.rng.next_u64().is_multiple_of(2) {
                word.push_str("Typed");
            }
            for (col, c) in word.chars().enumerate() {
                let col = u32::try_from(col).unwrap_or(u32::MAX);
                let mut buf = [0u8; 4];
                self.key(
                    service,
                    Position::new(self.line, col),
                    c.encode_utf8(&mut buf),
                );
                if complete {
                    let params = CompleteParams {
                        uri: URI.into(),
                        position: Position::new(self.line, col + 1),
                        limit: None,
                    };
                    if let Ok(r) = service.complete(CONN, &params) {
                        items += r.items.len();
                    }
                }
            }
            let end = u32::try_from(word.len()).unwrap_or(u32::MAX);
            self.key(service, Position::new(self.line, end), "\n");
            self.line += 1;
            self.word = word;
        }
        items
    }
}
