//! Property: any sequence of edits (ranges anywhere, past the ends, inside surrogate pairs,
//! across CRLF) applied to a document's rope gives the same text as the same edits applied to a
//! plain `String` by the obvious reference implementation in `support.rs`; and the identifier
//! counts the document keeps up to date edit by edit equal a full scan of the result.

use hearth_lang::api::ContentChange;
use hearth_lang::{Position, Range};
use proptest::prelude::*;

use std::collections::BTreeMap;

use crate::support::{URI, change, reference_apply, with_doc};

fn full_scan(text: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    hearth_lang::ident::scan(text, |name, _| {
        *counts.entry(name.to_owned()).or_insert(0) += 1
    });
    counts
}

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("a"),
            Just("xy"),
            Just("b_1"),
            Just("9"),
            Just("é"),
            Just("€"),
            Just("😀"),
            Just("\n"),
            Just("\r\n"),
            Just("\r"),
            Just(" "),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

fn position() -> impl Strategy<Value = Position> {
    (0u32..7, 0u32..14).prop_map(|(l, c)| Position::new(l, c))
}

fn content_change() -> impl Strategy<Value = ContentChange> {
    prop_oneof![
        8 => (position(), position(), text()).prop_map(|(a, b, text)| ContentChange {
            range: Some(Range::new(a.min(b), a.max(b))),
            text,
        }),
        1 => text().prop_map(|text| ContentChange { range: None, text }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn rope_edits_match_string_edits(
        initial in text(),
        batches in proptest::collection::vec(proptest::collection::vec(content_change(), 1..4), 1..8),
    ) {
        let service = with_doc(&initial);
        let mut expected = initial.clone();
        for (i, changes) in batches.into_iter().enumerate() {
            // Make the document track its identifiers (again, after a whole-text change), as
            // a completion does.
            let docs = service.documents();
            docs.words(1, URI, &docs.snapshot(1, URI).expect("open"));
            let whole = changes.iter().any(|c| c.range.is_none());
            for c in &changes {
                reference_apply(&mut expected, c);
            }
            service.change(1, &change(URI, 2 + i as i64, changes)).expect("change");
            prop_assert_eq!(service.documents().text(1, URI), Some(expected.clone()));
            match service.documents().tracked_counts(1, URI) {
                Some(tracked) => prop_assert_eq!(tracked, full_scan(&expected)),
                None => prop_assert!(whole, "tracking stopped without a whole-text change"),
            }
        }
    }
}
