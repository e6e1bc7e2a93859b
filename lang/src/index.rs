//! The workspace index: [`Index`] (the files of one folder and a [`Vocab`] of their
//! identifiers) and [`build_index`], which walks a folder and builds one.
//!
//! The walk uses the `ignore` crate: `.gitignore`, `.ignore` and global git excludes are
//! honoured even outside a git repository (`require_git(false)`), hidden files and folders are
//! skipped, symlinks are not followed. A file is skipped when it is larger than
//! [`MAX_FILE_BYTES`] or looks binary (a NUL byte in its first [`BINARY_SNIFF_BYTES`]); text
//! that is not UTF-8 is read lossily. Files are read and scanned on a few scoped threads; the
//! calling thread merges their results and reports progress, so the progress callback is an
//! `FnMut` called on one thread. A cancellation flag is checked for every walk entry and every
//! file; a cancelled build returns [`LangError::Cancelled`] and builds nothing.
//!
//! Files are numbered in path order, so the index does not depend on thread timing: each
//! identifier's first location is its first occurrence in the first file (by path) holding it.
//!
//! Swapping the service's index for a new one is `service.rs`'s business.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;
use std::time::Instant;

use rustc_hash::FxHashMap;

use crate::api::IndexStats;
use crate::error::LangError;
use crate::ident;
use crate::vocab::{Tally, Vocab};

/// Files larger than this are not indexed.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// A NUL byte within this many leading bytes marks a file as binary.
pub const BINARY_SNIFF_BYTES: usize = 8 << 10;
/// Most threads used to read files.
pub const MAX_THREADS: usize = 4;

/// The identifiers of one folder's files.
#[derive(Debug, Default)]
pub struct Index {
    root: PathBuf,
    files: Vec<PathBuf>,
    /// `files` relative to `root`, for display; made once, not per completion item.
    display: Vec<Box<str>>,
    vocab: Vocab,
    stats: IndexStats,
}

impl Index {
    /// An index of nothing.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The folder indexed (canonical), or empty for the empty index.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The identifiers.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// What the build counted.
    pub fn stats(&self) -> IndexStats {
        self.stats
    }

    /// The absolute path of file number `file`.
    pub fn file(&self, file: u32) -> Option<&Path> {
        self.files.get(file as usize).map(PathBuf::as_path)
    }

    /// File number `file` relative to the root, for display.
    pub fn display_path(&self, file: u32) -> &str {
        self.display.get(file as usize).map_or("", |s| s)
    }

    fn new(root: PathBuf, files: Vec<PathBuf>, vocab: Vocab, stats: IndexStats) -> Self {
        let display = files
            .iter()
            .map(|p| {
                let rel = p.strip_prefix(&root).unwrap_or(p);
                rel.display().to_string().into_boxed_str()
            })
            .collect();
        Self {
            root,
            files,
            display,
            vocab,
            stats,
        }
    }

    /// `file://` + the absolute path of file number `file` (not percent-encoded).
    pub fn file_uri(&self, file: u32) -> String {
        match self.file(file) {
            Some(p) => format!("file://{}", p.display()),
            None => String::new(),
        }
    }

    /// An index built from in-memory files (path, text), numbered in the order given — for
    /// tests and benchmarks.
    pub fn from_texts<'a>(
        root: &Path,
        files: impl IntoIterator<Item = (PathBuf, &'a str)>,
    ) -> Self {
        let started = Instant::now();
        let mut tallies = FxHashMap::default();
        let mut paths = Vec::new();
        let mut stats = IndexStats::default();
        for (path, text) in files {
            let Ok(n) = u32::try_from(paths.len()) else {
                break;
            };
            paths.push(path);
            stats.files += 1;
            stats.bytes += text.len() as u64;
            for (name, t) in scan_file(text, n) {
                merge_into(&mut tallies, name, t);
            }
        }
        let vocab = Vocab::build(tallies);
        stats.identifiers = vocab.occurrences();
        stats.ms = elapsed_ms(started);
        Self::new(root.to_owned(), paths, vocab, stats)
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One file's identifiers with their counts and first lines.
fn scan_file(text: &str, file: u32) -> Vec<(Box<str>, Tally)> {
    let mut local: FxHashMap<&str, Tally> = FxHashMap::default();
    ident::scan(text, |name, line| {
        local
            .entry(name)
            .and_modify(|t| t.add(file, line))
            .or_insert(Tally {
                count: 1,
                file,
                line,
            });
    });
    local.into_iter().map(|(k, t)| (Box::from(k), t)).collect()
}

fn merge_into(tallies: &mut FxHashMap<Box<str>, Tally>, name: Box<str>, t: Tally) {
    match tallies.get_mut(&name) {
        Some(have) => have.merge(t),
        None => {
            tallies.insert(name, t);
        }
    }
}

/// What reading one file gave.
enum FileResult {
    Indexed {
        bytes: u64,
        idents: Vec<(Box<str>, Tally)>,
    },
    Skipped,
}

/// Reads and scans one file; `Skipped` when it is unreadable, too large or binary.
fn read_file(path: &Path, file: u32) -> FileResult {
    let Ok(f) = std::fs::File::open(path) else {
        return FileResult::Skipped;
    };
    let mut buf = Vec::new();
    // Read one byte more than allowed, so a file that grew since the walk is still caught.
    if f.take(MAX_FILE_BYTES + 1).read_to_end(&mut buf).is_err()
        || buf.len() as u64 > MAX_FILE_BYTES
        || buf[..buf.len().min(BINARY_SNIFF_BYTES)].contains(&0)
    {
        return FileResult::Skipped;
    }
    let text = String::from_utf8_lossy(&buf);
    FileResult::Indexed {
        bytes: buf.len() as u64,
        idents: scan_file(&text, file),
    }
}

/// How many progress reports a build makes at most, besides the first and the last.
pub const PROGRESS_STEPS: u64 = 128;

/// Walks `root` and indexes its files (see the module). `progress(files_done, files_total)`
/// is called on this thread once the walk has counted the files, then as files are read —
/// after every `ceil(files_total / PROGRESS_STEPS)`-th file and after the last — so a caller can
/// forward each call to the client as it is.
pub fn build_index(
    root: &Path,
    cancel: &AtomicBool,
    mut progress: impl FnMut(u64, u64),
) -> Result<Index, LangError> {
    let started = Instant::now();
    let root = root.canonicalize().map_err(|source| LangError::BadRoot {
        root: root.to_owned(),
        source,
    })?;
    if !root.is_dir() {
        return Err(LangError::NotADirectory { root });
    }

    let mut paths = Vec::new();
    for entry in ignore::WalkBuilder::new(&root)
        .require_git(false)
        .follow_links(false)
        .build()
    {
        if cancel.load(Relaxed) {
            return Err(LangError::Cancelled);
        }
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        if entry.metadata().is_ok_and(|m| m.len() <= MAX_FILE_BYTES) {
            paths.push(entry.into_path());
        }
    }
    paths.sort_unstable();
    let total = paths.len() as u64;
    let step = total.div_ceil(PROGRESS_STEPS).max(1);
    progress(0, total);

    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_THREADS)
        .min(paths.len().max(1));
    let mut tallies: FxHashMap<Box<str>, Tally> = FxHashMap::default();
    let mut stats = IndexStats::default();
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<FileResult>(64);
        for _ in 0..threads {
            let tx = tx.clone();
            let (paths, next) = (&paths, &next);
            s.spawn(move || {
                loop {
                    if cancel.load(Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Relaxed);
                    let (Some(path), Ok(file)) = (paths.get(i), u32::try_from(i)) else {
                        break;
                    };
                    if tx.send(read_file(path, file)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Ends when every worker has finished (each drops its sender).
        let mut done = 0u64;
        for result in rx {
            done += 1;
            if let FileResult::Indexed { bytes, idents } = result {
                stats.files += 1;
                stats.bytes += bytes;
                for (name, t) in idents {
                    merge_into(&mut tallies, name, t);
                }
            }
            if done == total || done.is_multiple_of(step) {
                progress(done, total);
            }
        }
    });
    if cancel.load(Relaxed) {
        return Err(LangError::Cancelled);
    }
    let vocab = Vocab::build(tallies);
    stats.identifiers = vocab.occurrences();
    stats.ms = elapsed_ms(started);
    Ok(Index::new(root, paths, vocab, stats))
}
