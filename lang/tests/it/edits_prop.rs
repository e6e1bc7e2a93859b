//! Property: any sequence of edits (ranges anywhere, past the ends, inside surrogate pairs,
//! across CRLF) applied to a document's rope gives the same text as the same edits applied to a
//! plain `String` by the obvious reference implementation in `support.rs`; and the identifier
//! counts the document keeps up to date edit by edit equal a full scan of the result. And any
//! sequence of operations from two connections is handled without a panic, as a model says.

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

/// One thing a client may send.
#[derive(Debug, Clone)]
enum Op {
    Open(u64, String),
    Change(u64, i64, Vec<ContentChange>),
    Complete(u64, Position, u32),
    Close(u64),
    Disconnect(u64),
}

fn any_position() -> impl Strategy<Value = Position> {
    prop_oneof![
        4 => position(),
        1 => (any::<u32>(), any::<u32>()).prop_map(|(l, c)| Position::new(l, c)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let conn = 1u64..3;
    prop_oneof![
        1 => (conn.clone(), text()).prop_map(|(c, t)| Op::Open(c, t)),
        6 => (
            conn.clone(),
            -1i64..40,
            proptest::collection::vec(
                prop_oneof![
                    // Ranges in any order, start after end included.
                    4 => (any_position(), any_position(), text()).prop_map(|(a, b, text)| {
                        ContentChange { range: Some(Range::new(a, b)), text }
                    }),
                    1 => text().prop_map(|text| ContentChange { range: None, text }),
                ],
                0..3,
            ),
        )
            .prop_map(|(c, v, ch)| Op::Change(c, v, ch)),
        4 => (conn.clone(), any_position(), 0u32..5).prop_map(|(c, p, l)| Op::Complete(c, p, l)),
        1 => conn.clone().prop_map(Op::Close),
        1 => conn.prop_map(Op::Disconnect),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Whatever two connections send, in whatever order, the service answers or refuses; it
    /// never panics, and a connection's text stays what its own accepted changes made it.
    #[test]
    fn any_sequence_of_operations_is_handled(ops in proptest::collection::vec(op(), 1..40)) {
        let service = hearth_lang::LangService::new();
        let mut model: [Option<(String, i64)>; 3] = [None, None, None];
        for op in ops {
            match op {
                Op::Open(c, text) => {
                    crate::support::open(&service, c, URI, &text, 0);
                    model[c as usize] = Some((text, 0));
                }
                Op::Change(c, v, changes) => {
                    let accepted = service.change(c, &change(URI, v, changes.clone())).is_ok();
                    let slot = &mut model[c as usize];
                    let expect_ok = slot.as_ref().is_some_and(|(_, cur)| v > *cur)
                        && changes.iter().all(|ch| ch.range.is_none_or(|r| r.start <= r.end));
                    prop_assert_eq!(accepted, expect_ok);
                    if let (true, Some((text, cur))) = (accepted, slot.as_mut()) {
                        for ch in &changes {
                            reference_apply(text, ch);
                        }
                        *cur = v;
                    }
                }
                Op::Complete(c, p, limit) => {
                    let r = service.complete(
                        c,
                        &hearth_lang::api::CompleteParams {
                            uri: URI.into(),
                            position: p,
                            limit: Some(limit),
                        },
                    );
                    prop_assert_eq!(r.is_ok(), model[c as usize].is_some());
                    if let Ok(r) = r {
                        prop_assert!(r.items.len() <= limit as usize);
                    }
                }
                Op::Close(c) => {
                    let closed = service
                        .close(c, &hearth_lang::api::CloseParams { uri: URI.into() })
                        .is_ok();
                    prop_assert_eq!(closed, model[c as usize].take().is_some());
                }
                Op::Disconnect(c) => {
                    service.connection_closed(c);
                    model[c as usize] = None;
                }
            }
            for c in 1..3u64 {
                prop_assert_eq!(
                    service.documents().text(c, URI),
                    model[c as usize].as_ref().map(|(t, _)| t.clone())
                );
            }
        }
    }
}
