//! `typing_quality [corpus folder] [words]`: the completion quality of `hearth bench --workload
//! typing`, measured offline against the library (no daemon, no clock, so it can compare
//! ranking rules on a loaded machine). It indexes the folder (default: the cargo registry's
//! sources, the bench's corpus), draws identifiers from 400 of its source files as the bench
//! does (ASCII, 4–32 bytes, 10 per file), and has 10 editors each open a source file and type
//! words on new lines at random places, one char per keystroke, completing after each. Quality
//! is the bench's: the share of keystrokes with 2+ chars of the word typed (not all of it)
//! whose completion has the word in its top 10. The seeds differ from the bench's, so the
//! figure is comparable between builds of this example, not digit for digit with the bench.
//! It also prints the misses by the number of chars typed.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use hearth_lang::api::{ChangeParams, CompleteParams, ContentChange, OpenParams};
use hearth_lang::bench_support::Rng;
use hearth_lang::{LangService, Position, Range};

const EXTENSIONS: [&str; 12] = [
    "rs", "c", "h", "cc", "cpp", "hpp", "py", "go", "js", "ts", "java", "rb",
];
const TOP: usize = 10;
const EDITORS: u64 = 10;

fn source_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let (Ok(kind), path) = (entry.file_type(), entry.path()) else {
                continue;
            };
            if kind.is_dir() {
                folders.push(path);
            } else if kind.is_file()
                && path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e))
                && entry
                    .metadata()
                    .is_ok_and(|m| (512..=256 * 1024).contains(&m.len()))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn words_of(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    hearth_lang::ident::scan(text, |w, _| {
        if w.is_ascii() && (4..=32).contains(&w.len()) {
            out.push(w);
        }
    });
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let root = args.next().map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        home.join(".cargo/registry/src")
    });
    let words_per_editor: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100);
    let service = LangService::new();
    let stats = service
        .index_workspace(&root, &AtomicBool::new(false), |_, _| {})
        .expect("index the corpus");
    eprintln!(
        "indexed {} files, {} occurrences",
        stats.files, stats.identifiers
    );
    let files = source_files(&root);
    let mut rng = Rng::new(1);
    let mut words = Vec::new();
    for _ in 0..400 {
        let Ok(text) = std::fs::read_to_string(&files[rng.below(files.len())]) else {
            continue;
        };
        let found = words_of(&text);
        for _ in 0..10.min(found.len()) {
            words.push(found[rng.below(found.len())].to_owned());
        }
    }
    let (mut judged, mut hits) = (0u64, 0u64);
    // Misses by chars typed (the last bucket: 6 or more).
    let mut misses = [0u64; 7];
    for editor in 0..EDITORS {
        let mut rng = Rng::new(editor + 1);
        let text = loop {
            if let Ok(t) = std::fs::read_to_string(&files[rng.below(files.len())]) {
                break t;
            }
        };
        let lines = text.lines().count().max(1) as u32;
        let uri = format!("file:///editor{editor}");
        service
            .open(
                editor,
                OpenParams {
                    uri: uri.clone(),
                    text,
                    version: 0,
                    language: None,
                },
            )
            .expect("open");
        let mut version = 0;
        for added in 0..words_per_editor as u32 {
            let word = &words[rng.below(words.len())];
            // Each word typed so far opened a line.
            let line = rng.below((lines + added) as usize) as u32;
            for (typed, c) in word.chars().enumerate() {
                let at = Position::new(line, typed as u32);
                let text = if typed == 0 {
                    format!("{c}\n")
                } else {
                    c.to_string()
                };
                version += 1;
                service
                    .change(
                        editor,
                        &ChangeParams {
                            uri: uri.clone(),
                            version,
                            changes: vec![ContentChange {
                                range: Some(Range::new(at, at)),
                                text,
                            }],
                        },
                    )
                    .expect("change");
                let typed = typed + 1;
                if typed < 2 || typed >= word.len() {
                    continue;
                }
                let r = service
                    .complete(
                        editor,
                        &CompleteParams {
                            uri: uri.clone(),
                            position: Position::new(line, typed as u32),
                            limit: None,
                        },
                    )
                    .expect("complete");
                judged += 1;
                let hit = r.items.iter().take(TOP).any(|i| i.label == *word);
                hits += u64::from(hit);
                if !hit {
                    misses[typed.min(6)] += 1;
                }
            }
        }
    }
    println!(
        "quality {:.4} ({hits} of {judged} keystrokes with 2+ chars typed had the word in the top {TOP})",
        hits as f64 / judged as f64
    );
    println!(
        "misses by chars typed: 2: {}, 3: {}, 4: {}, 5: {}, 6+: {}",
        misses[2], misses[3], misses[4], misses[5], misses[6]
    );
}
