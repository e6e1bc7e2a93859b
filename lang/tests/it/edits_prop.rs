//! Property: any sequence of edits (ranges anywhere, past the ends, inside surrogate pairs,
//! across CRLF) applied to a document's rope gives the same text as the same edits applied to a
//! plain `String` by the obvious reference implementation in `support.rs`.

use hearth_lang::api::ContentChange;
use hearth_lang::{Position, Range};
use proptest::prelude::*;

use crate::support::{URI, change, reference_apply, with_doc};

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("a"),
            Just("xy"),
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
            for c in &changes {
                reference_apply(&mut expected, c);
            }
            service.change(1, &change(URI, 2 + i as i64, changes)).expect("change");
            prop_assert_eq!(service.documents().text(1, URI), Some(expected.clone()));
        }
    }
}
