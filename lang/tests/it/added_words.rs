//! The words a document's edits added since its last full scan (`DocWords::added`), kept up
//! to date edit by edit: they must always equal what a from-scratch computation gives — the
//! identifiers of the current text that the scanned base does not hold, with their counts —
//! through edits that add, remove and re-add words, undo, multi-line edits and rescans; and a
//! completion on the edited document must equal one on a freshly opened copy of its text.

use std::collections::BTreeMap;

use hearth_lang::api::ContentChange;
use hearth_lang::words::DocWords;
use hearth_lang::{LangService, Position};
use proptest::prelude::*;

use crate::support::{URI, change, edit, with_doc};

fn full_scan(text: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    hearth_lang::ident::scan(text, |name, _| {
        *counts.entry(name.to_owned()).or_insert(0) += 1
    });
    counts
}

/// The tracked words of the test document, making the document track them if it did not.
fn words(service: &LangService) -> std::sync::Arc<DocWords> {
    let docs = service.documents();
    let snap = docs.snapshot(1, URI).expect("open");
    docs.words(1, URI, &snap)
}

/// The tracked added words, as name → count.
fn added(words: &DocWords) -> BTreeMap<String, u64> {
    words
        .added()
        .iter()
        .map(|e| (e.name.to_string(), u64::from(e.count)))
        .collect()
}

/// Checks the tracked state against a from-scratch computation over `text`.
fn check(service: &LangService) -> Result<(), TestCaseError> {
    let text = service.documents().text(1, URI).expect("open");
    let w = words(service);
    let scratch: BTreeMap<String, u64> = full_scan(&text)
        .into_iter()
        .filter(|(name, _)| w.base().get(name).is_none())
        .collect();
    prop_assert_eq!(added(&w), scratch);
    // Sorted as a vocabulary's entries are, each name once.
    for pair in w.added().windows(2) {
        prop_assert_eq!(pair[0].order(&pair[1]), std::cmp::Ordering::Less);
    }
    // And what the pre-incremental code computed from the delta at each completion.
    let from_delta: Vec<(String, u32)> = w
        .added_from_delta()
        .iter()
        .map(|e| (e.name.to_string(), e.count))
        .collect();
    let tracked: Vec<(String, u32)> = w
        .added()
        .iter()
        .map(|e| (e.name.to_string(), e.count))
        .collect();
    prop_assert_eq!(tracked, from_delta);
    prop_assert_eq!(w.counts(), full_scan(&text));
    Ok(())
}

fn apply(service: &LangService, version: &mut i64, changes: Vec<ContentChange>) {
    *version += 1;
    service
        .change(1, &change(URI, *version, changes))
        .expect("change");
}

#[test]
fn typing_deleting_and_retyping_a_word() {
    let service = with_doc("let alpha = beta;\n");
    check(&service).expect("tracked words agree with a full scan");
    let mut v = 1;
    // Type "gamma" a char at a time on a new line: only the whole word stays added.
    for (i, c) in "gamma".chars().enumerate() {
        apply(
            &service,
            &mut v,
            vec![edit(1, i as u32, 1, i as u32, &c.to_string())],
        );
        check(&service).expect("tracked words agree with a full scan");
    }
    assert_eq!(
        added(&words(&service)),
        BTreeMap::from([("gamma".to_owned(), 1)])
    );
    // A second one, then delete both.
    apply(&service, &mut v, vec![edit(1, 5, 1, 5, " gamma GAMMA")]);
    check(&service).expect("tracked words agree with a full scan");
    assert_eq!(
        added(&words(&service)),
        BTreeMap::from([("GAMMA".to_owned(), 1), ("gamma".to_owned(), 2)])
    );
    apply(&service, &mut v, vec![edit(1, 0, 1, 17, "")]);
    check(&service).expect("tracked words agree with a full scan");
    assert!(words(&service).added().is_empty());
    // Re-add; a word of the base is never "added", even when its count grows.
    apply(
        &service,
        &mut v,
        vec![edit(1, 0, 1, 0, "gamma alpha alpha")],
    );
    check(&service).expect("tracked words agree with a full scan");
    assert_eq!(
        added(&words(&service)),
        BTreeMap::from([("gamma".to_owned(), 1)])
    );
}

#[test]
fn undo_restores_the_scanned_state() {
    let text = "fn main() {\n    let total = count + 1;\n}\n";
    let service = with_doc(text);
    let before = words(&service).counts();
    let mut v = 1;
    // Rename `count` to `counter`, edit inside `total`, then undo both (reverse order).
    apply(&service, &mut v, vec![edit(1, 16, 1, 21, "counter")]);
    apply(&service, &mut v, vec![edit(1, 10, 1, 10, "X")]);
    check(&service).expect("tracked words agree with a full scan");
    assert_eq!(
        added(&words(&service)),
        BTreeMap::from([("counter".to_owned(), 1), ("toXtal".to_owned(), 1)])
    );
    apply(&service, &mut v, vec![edit(1, 10, 1, 11, "")]);
    apply(&service, &mut v, vec![edit(1, 16, 1, 23, "count")]);
    check(&service).expect("tracked words agree with a full scan");
    assert_eq!(service.documents().text(1, URI).expect("open"), text);
    assert!(words(&service).added().is_empty());
    assert_eq!(words(&service).counts(), before);
}

#[test]
fn multi_line_edits_and_joins() {
    let service = with_doc("one two\nthree four\nfive\n");
    check(&service).expect("tracked words agree with a full scan"); // tracks the words from here on
    let mut v = 1;
    // Replace across lines, joining "tw|o" and "fo|ur" into a new word.
    apply(&service, &mut v, vec![edit(0, 6, 1, 8, "\nsix\nseven_ei")]);
    check(&service).expect("tracked words agree with a full scan");
    assert_eq!(
        service.documents().text(1, URI).expect("open"),
        "one tw\nsix\nseven_eiur\nfive\n"
    );
    assert_eq!(
        added(&words(&service)),
        BTreeMap::from([
            ("seven_eiur".to_owned(), 1),
            ("six".to_owned(), 1),
            ("tw".to_owned(), 1),
        ])
    );
    // Several changes in one request, each on the previous result.
    apply(
        &service,
        &mut v,
        vec![
            edit(0, 0, 0, 3, "uno\r\ndos"),
            edit(1, 3, 2, 0, ""),
            edit(0, 0, 0, 0, "six "),
        ],
    );
    check(&service).expect("tracked words agree with a full scan");
}

#[test]
fn a_rescan_agrees_with_the_tracked_state() {
    let service = with_doc("base words here\n");
    check(&service).expect("tracked words agree with a full scan");
    let mut v = 1;
    // More distinct new words than a delta may hold: the next use rescans.
    let many: String = (0..hearth_lang::words::REBUILD_AFTER + 10)
        .map(|i| format!("w{i} "))
        .collect();
    apply(&service, &mut v, vec![edit(1, 0, 1, 0, "typed")]);
    let tracked = words(&service).counts();
    assert_eq!(
        tracked,
        DocWords::scan(&ropey::Rope::from_str(
            &service.documents().text(1, URI).expect("open")
        ))
        .counts()
    );
    apply(&service, &mut v, vec![edit(1, 5, 1, 5, &many)]);
    let w = words(&service);
    // Rescanned: every word is in the new base, nothing is added.
    assert!(w.added().is_empty());
    assert!(w.base().get("w4100").is_some());
    check(&service).expect("tracked words agree with a full scan");
}

/// Words that exist in the initial text, words that do not, and joins between them.
fn piece() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("alpha"),
        Just("al"),
        Just("Alpha"),
        Just("beta"),
        Just("be"),
        Just("gamma"),
        Just("GAM"),
        Just("ßtraße"),
        Just("x"),
        Just("9"),
        Just(" "),
        Just("\n"),
        Just("\r\n"),
        Just("("),
    ]
}

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 0..12).prop_map(|p| p.concat())
}

fn position() -> impl Strategy<Value = Position> {
    (0u32..6, 0u32..30).prop_map(|(l, c)| Position::new(l, c))
}

fn changes() -> impl Strategy<Value = Vec<ContentChange>> {
    proptest::collection::vec(
        (position(), position(), text()).prop_map(|(a, b, text)| ContentChange {
            range: Some(hearth_lang::Range::new(a.min(b), a.max(b))),
            text,
        }),
        1..3,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// Any sequence of ranged edits (an undo is one more edit) keeps the added words equal to
    /// a from-scratch computation, and completion on the edited document equal to completion
    /// on a fresh copy of its text.
    #[test]
    fn added_words_equal_a_from_scratch_computation(
        initial in text(),
        batches in proptest::collection::vec(changes(), 1..10),
        at in position(),
    ) {
        let service = with_doc(&initial);
        check(&service)?;
        let mut v = 1;
        for changes in batches {
            apply(&service, &mut v, changes);
            check(&service)?;
        }
        // The same text, scanned from scratch, completes the same.
        let text = service.documents().text(1, URI).expect("open");
        let fresh = with_doc(&text);
        let params = crate::support::complete_at(at.line, at.character, Some(1000));
        let edited = service.complete(1, &params).expect("complete");
        let scanned = fresh.complete(1, &params).expect("complete");
        prop_assert_eq!(edited, scanned);
    }
}
