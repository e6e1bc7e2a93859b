//! Completion ranking: exact-case prefix matches first, then case-insensitive ones, then fuzzy;
//! ties by frequency then label; the prefix itself and the word being typed not offered;
//! limit and `incomplete`; document and workspace merged.

use std::path::{Path, PathBuf};

use hearth_lang::api::Source;
use hearth_lang::{Index, LangService};

use crate::support::{complete_at, labels, with_doc};

#[test]
fn prefix_matches_rank_before_fuzzy_ones_then_frequency_then_label() {
    // getValue ×3, getter ×1, GetAll ×1, gadget (fuzzy "get": g…e…t) ×5, unrelated ×9.
    let s = with_doc(
        "getValue getValue getValue getter GetAll gadget gadget gadget gadget gadget \
         other other other other other other other other other\nget",
    );
    assert_eq!(labels(&s, 1, 3), ["getValue", "getter", "GetAll", "gadget"]);
}

#[test]
fn the_prefix_itself_is_not_offered() {
    let s = with_doc("foo foo foobar\nfoo");
    let r = s.complete(1, &complete_at(1, 3, None)).expect("complete");
    assert_eq!(r.prefix, "foo");
    let labels: Vec<_> = r.items.iter().map(|i| i.label.as_str()).collect();
    assert_eq!(labels, ["foobar"]);
}

#[test]
fn the_word_being_typed_is_offered_only_if_it_occurs_elsewhere() {
    // Cursor after "fo" in "fooz": the word "fooz" occurs only there.
    let s = with_doc("football\nfooz");
    assert_eq!(labels(&s, 1, 2), ["football"]);
    // Now "fooz" occurs once more: offered.
    let s = with_doc("football fooz\nfooz");
    assert_eq!(labels(&s, 1, 2), ["fooz", "football"]);
}

#[test]
fn empty_prefix_gives_nothing() {
    let s = with_doc("alpha beta\n  \n9x");
    for (line, col) in [(1, 2), (0, 6), (2, 2), (0, 0)] {
        let r = s
            .complete(1, &complete_at(line, col, None))
            .expect("complete");
        assert!(r.items.is_empty(), "{line}:{col}");
        assert!(!r.incomplete);
        assert_eq!(r.prefix, "");
    }
}

#[test]
fn limit_and_incomplete() {
    let words: Vec<String> = (0..30).map(|i| format!("item{i:02}")).collect();
    let s = with_doc(&format!("{}\nit", words.join(" ")));
    let r = s
        .complete(1, &complete_at(1, 2, Some(5)))
        .expect("complete");
    assert_eq!(r.items.len(), 5);
    assert!(r.incomplete);
    let r = s
        .complete(1, &complete_at(1, 2, Some(100)))
        .expect("complete");
    assert_eq!(r.items.len(), 30);
    assert!(!r.incomplete);
    let r = s
        .complete(1, &complete_at(1, 2, Some(0)))
        .expect("complete");
    assert!(r.items.is_empty());
    assert!(r.incomplete);
}

#[test]
fn document_and_workspace_are_merged() {
    let s = with_doc("parse_local parse_shared\npars");
    s.set_index(Index::from_texts(
        Path::new("/ws"),
        [
            (
                PathBuf::from("/ws/src/lib.rs"),
                "fn parse_remote() {}\nparse_shared",
            ),
            (PathBuf::from("/ws/src/b.rs"), "parse_shared parse_shared"),
        ],
    ));
    let r = s.complete(1, &complete_at(1, 4, None)).expect("complete");
    let got: Vec<(&str, Source, Option<&str>)> = r
        .items
        .iter()
        .map(|i| (i.label.as_str(), i.source, i.detail.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            // 1 in the document + 3 in the workspace.
            ("parse_shared", Source::Document, Some("1 in document")),
            ("parse_local", Source::Document, Some("1 in document")),
            ("parse_remote", Source::Workspace, Some("src/lib.rs:1")),
        ]
    );
}

#[test]
fn non_ascii_prefixes() {
    let s = with_doc("größe größer grün\ngrö");
    // "grö" is 3 UTF-16 units.
    assert_eq!(labels(&s, 1, 3), ["größe", "größer"]);
}

#[test]
fn results_are_deterministic() {
    let text: String = (0..500)
        .map(|i| format!("name{} ", i % 37))
        .chain(["\nnam".to_owned()])
        .collect();
    let a = with_doc(&text);
    let b = LangService::new();
    crate::support::open(&b, 7, crate::support::URI, &text, 1);
    let ra = a.complete(1, &complete_at(1, 3, None)).expect("a");
    let rb = b.complete(7, &complete_at(1, 3, None)).expect("b");
    assert_eq!(ra, rb);
    assert_eq!(ra.items.len(), 37);
}
