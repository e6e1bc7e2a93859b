//! Workspace indexing over a temporary folder: `.gitignore` honoured, hidden, binary and
//! over-1-MiB files skipped, progress reported, cancellation, atomic replacement on
//! re-index, and `symbols` (exact name first, file URIs, zero-based lines).

use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use hearth_lang::api::SymbolsParams;
use hearth_lang::{LangError, LangService};

use crate::support::{URI, labels, open};

fn write(root: &Path, rel: &str, contents: &[u8]) {
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("mkdir");
    }
    fs::write(path, contents).expect("write");
}

/// A folder with two indexed files and several that must be skipped.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, ".gitignore", b"ignored/\n*.log\n");
    write(
        root,
        "src/lib.rs",
        b"pub fn render_frame() {}\nlet render_count = 1;\n",
    );
    write(
        root,
        "src/main.rs",
        b"fn main() {\n    render_frame();\n}\n",
    );
    write(root, "ignored/secret.rs", b"render_ignored");
    write(root, "debug.log", b"render_logged");
    write(root, ".hidden/file.rs", b"render_hidden");
    let mut binary = b"render_binary ".to_vec();
    binary.push(0);
    write(root, "image.bin", &binary);
    let mut big = b"render_big ".to_vec();
    big.resize((1 << 20) + 1, b' ');
    write(root, "big.txt", &big);
    dir
}

fn index(service: &LangService, root: &Path) -> hearth_lang::api::IndexStats {
    service
        .index_workspace(root, &AtomicBool::new(false), |_, _| {})
        .expect("index")
}

fn names(service: &LangService) -> Vec<String> {
    service
        .index()
        .vocab()
        .entries()
        .iter()
        .map(|e| e.name.to_string())
        .collect()
}

#[test]
fn gitignore_hidden_binary_and_big_files_are_skipped() {
    let dir = workspace();
    let s = LangService::new();
    let mut calls = Vec::new();
    let stats = s
        .index_workspace(dir.path(), &AtomicBool::new(false), |done, total| {
            calls.push((done, total))
        })
        .expect("index");
    let names = names(&s);
    assert!(names.contains(&"render_frame".to_owned()));
    assert!(names.contains(&"render_count".to_owned()));
    for skipped in [
        "render_ignored",
        "render_logged",
        "render_hidden",
        "render_binary",
        "render_big",
    ] {
        assert!(!names.contains(&skipped.to_owned()), "{skipped} indexed");
    }
    // src/lib.rs, src/main.rs, .gitignore is hidden; image.bin is read then skipped.
    assert_eq!(stats.files, 2);
    let lib = "pub fn render_frame() {}\nlet render_count = 1;\n";
    let main = "fn main() {\n    render_frame();\n}\n";
    assert_eq!(stats.bytes, (lib.len() + main.len()) as u64);
    // pub fn render_frame let render_count | fn main render_frame ("1" is a number).
    assert_eq!(stats.identifiers, 8);
    // Progress: the count first, then once per file read, ending at the total.
    assert_eq!(calls.first(), Some(&(0, 3)));
    assert_eq!(calls.last(), Some(&(3, 3)));
    assert_eq!(calls.len(), 4);
}

#[test]
fn symbols_put_the_exact_name_first_with_uri_and_line() {
    let dir = workspace();
    let s = LangService::new();
    index(&s, dir.path());
    let found = s.symbols(&SymbolsParams {
        query: "render_frame".into(),
        limit: None,
    });
    let root = dir.path().canonicalize().expect("canonical");
    assert_eq!(found[0].name, "render_frame");
    assert_eq!(
        found[0].uri,
        format!("file://{}", root.join("src/lib.rs").display())
    );
    assert_eq!(found[0].line, 0);
    let found = s.symbols(&SymbolsParams {
        query: "rcount".into(),
        limit: None,
    });
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].name.as_str(), found[0].line), ("render_count", 1));
    assert!(
        s.symbols(&SymbolsParams {
            query: String::new(),
            limit: None
        })
        .is_empty()
    );
    let limited = s.symbols(&SymbolsParams {
        query: "r".into(),
        limit: Some(1),
    });
    assert_eq!(limited.len(), 1);
}

#[test]
fn reindexing_replaces_the_index_as_a_whole() {
    let dir = workspace();
    let s = LangService::new();
    index(&s, dir.path());
    let before = s.index();
    write(dir.path(), "src/lib.rs", b"fn brand_new() {}\n");
    fs::remove_file(dir.path().join("src/main.rs")).expect("rm");
    index(&s, dir.path());
    // A reader holding the old index still sees all of it…
    assert!(before.vocab().get("render_frame").is_some());
    assert!(before.vocab().get("brand_new").is_none());
    // …and the new one has none of it.
    let after = s.index();
    assert!(after.vocab().get("render_frame").is_none());
    assert!(after.vocab().get("brand_new").is_some());
    assert_eq!(after.stats().files, 1);
}

#[test]
fn a_cancelled_walk_keeps_the_previous_index() {
    let dir = workspace();
    let s = LangService::new();
    index(&s, dir.path());
    let err = s
        .index_workspace(dir.path(), &AtomicBool::new(true), |_, _| {})
        .expect_err("cancelled");
    assert!(matches!(err, LangError::Cancelled));
    assert!(s.index().vocab().get("render_frame").is_some());
}

#[test]
fn a_root_that_is_not_a_folder_is_an_error() {
    let dir = workspace();
    let s = LangService::new();
    let missing = dir.path().join("nope");
    let err = s
        .index_workspace(&missing, &AtomicBool::new(false), |_, _| {})
        .expect_err("missing");
    assert_eq!(err.to_method_error().code().0, -32602);
    let file = dir.path().join("src/lib.rs");
    let err = s
        .index_workspace(&file, &AtomicBool::new(false), |_, _| {})
        .expect_err("file");
    assert!(matches!(err, LangError::NotADirectory { .. }));
}

#[test]
fn completion_offers_indexed_identifiers_with_their_location() {
    let dir = workspace();
    let s = LangService::new();
    index(&s, dir.path());
    open(&s, 1, URI, "rend", 1);
    assert_eq!(labels(&s, 0, 4), ["render_frame", "render_count"]);
    let r = s
        .complete(1, &crate::support::complete_at(0, 4, None))
        .expect("complete");
    assert_eq!(r.items[1].detail.as_deref(), Some("src/lib.rs:2"));
}

#[test]
fn progress_is_reported_a_bounded_number_of_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..300 {
        write(dir.path(), &format!("f{i:03}.txt"), b"word_here");
    }
    let s = LangService::new();
    let mut calls = Vec::new();
    s.index_workspace(dir.path(), &AtomicBool::new(false), |d, t| {
        calls.push((d, t))
    })
    .expect("index");
    assert_eq!(calls.first(), Some(&(0, 300)));
    assert_eq!(calls.last(), Some(&(300, 300)));
    assert!(calls.len() <= 2 + hearth_lang::index::PROGRESS_STEPS as usize + 1);
    assert!(calls.windows(2).all(|w| w[0].0 < w[1].0), "increasing");
}
