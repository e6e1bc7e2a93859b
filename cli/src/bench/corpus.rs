//! The typing workload's material: the files of a corpus folder that simulated editors open,
//! and the identifiers they type, taken from other files of the same corpus (so each one is
//! in the daemon's index once the corpus is indexed). A small deterministic random generator
//! makes a run with the same flags pick the same files and words. Reading is done before the
//! run, never while keystrokes are timed; typing them is `typing.rs`'s job.

use std::io;
use std::path::{Path, PathBuf};

/// Files an editor may open: source files of these extensions, of this size.
const EXTENSIONS: [&str; 12] = [
    "rs", "c", "h", "cc", "cpp", "hpp", "py", "go", "js", "ts", "java", "rb",
];
const MIN_BYTES: u64 = 512;
const MAX_BYTES: u64 = 256 * 1024;
/// Identifiers typed are this long, in bytes (ASCII only: one UTF-16 unit per byte).
const MIN_WORD: usize = 4;
const MAX_WORD: usize = 32;
/// How many files the words are drawn from, and how many words are kept.
const WORD_FILES: usize = 400;
const WORDS: usize = 4000;

/// The default corpus: the cargo registry's unpacked sources.
pub(crate) fn default_root() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    Some(home.join("registry").join("src"))
}

/// splitmix64: enough randomness to spread editors over files, and reproducible.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The files found and the identifiers drawn from them.
pub(crate) struct Corpus {
    pub(crate) root: PathBuf,
    files: Vec<PathBuf>,
    pub(crate) words: Vec<String>,
}

impl Corpus {
    /// Walks `root` (skipping hidden entries and not following symbolic links) for source
    /// files, then draws identifiers from a sample of them.
    pub(crate) fn load(root: &Path, rng: &mut Rng) -> io::Result<Self> {
        let root = root.canonicalize()?;
        let mut files = Vec::new();
        let mut folders = vec![root.clone()];
        while let Some(folder) = folders.pop() {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let path = entry.path();
                if kind.is_dir() {
                    folders.push(path);
                } else if kind.is_file() && is_source(&path) {
                    let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    if (MIN_BYTES..=MAX_BYTES).contains(&size) {
                        files.push(path);
                    }
                }
            }
        }
        if files.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no source files ({}) of {MIN_BYTES} B to {} KiB under {}",
                    EXTENSIONS.join(", "),
                    MAX_BYTES / 1024,
                    root.display()
                ),
            ));
        }
        // The walk's order depends on the file system; sort so the seed alone decides.
        files.sort();
        let mut words = Vec::new();
        for _ in 0..WORD_FILES.min(files.len() * 4) {
            let Some(text) = read_text(&files[rng.below(files.len())]) else {
                continue;
            };
            let found = identifiers(&text);
            for _ in 0..(WORDS / WORD_FILES).min(found.len()) {
                words.push(found[rng.below(found.len())].to_owned());
            }
        }
        if words.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no identifiers of {MIN_WORD} to {MAX_WORD} characters in the files under {}",
                    root.display()
                ),
            ));
        }
        Ok(Self { root, files, words })
    }

    /// How many files editors may open.
    pub(crate) fn files(&self) -> usize {
        self.files.len()
    }

    /// A random file of the corpus that reads as UTF-8, with its text.
    pub(crate) fn pick_file(&self, rng: &mut Rng) -> Option<(PathBuf, String)> {
        (0..64).find_map(|_| {
            let path = &self.files[rng.below(self.files.len())];
            read_text(path).map(|text| (path.clone(), text))
        })
    }
}

fn is_source(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e))
}

fn read_text(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    String::from_utf8(bytes).ok()
}

/// The ASCII identifiers (`[A-Za-z_][A-Za-z0-9_]*`) of `text` that are `MIN_WORD` to
/// `MAX_WORD` long; runs that start with a digit are numbers, not identifiers.
pub(crate) fn identifiers(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80)
            {
                i += 1;
            }
            let word = &text[start..i];
            let ascii = word.is_ascii();
            let starts_well = !bytes[start].is_ascii_digit();
            if ascii && starts_well && (MIN_WORD..=MAX_WORD).contains(&word.len()) {
                out.push(word);
            }
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_ascii_words_that_do_not_start_with_a_digit() {
        let text = "fn render_frame(x: u32) { 123abc; déjà_vu; _tmp1 + self.count }";
        assert_eq!(
            identifiers(text),
            ["render_frame", "_tmp1", "self", "count"]
        );
    }

    #[test]
    fn the_same_seed_draws_the_same_numbers() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let draws: Vec<usize> = (0..5).map(|_| a.below(100)).collect();
        assert_eq!(draws, (0..5).map(|_| b.below(100)).collect::<Vec<_>>());
        assert!(draws.iter().all(|&d| d < 100));
    }
}
