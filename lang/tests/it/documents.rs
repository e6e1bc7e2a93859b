//! Open documents: incremental edits against whole replacement on multibyte text, the version
//! rules, all-or-nothing changes, per-connection ownership and `connection_closed`, and
//! positions that must not panic.

use hearth_lang::api::CloseParams;
use hearth_lang::{LangError, LangService};

use crate::support::{URI, change, complete_at, edit, open, whole, with_doc};

#[test]
fn incremental_edits_equal_whole_replacement_on_multibyte_text() {
    let text = "héllo 😀 wörld\r\nzweite Zeile €\n🎉🎉 end";
    let a = with_doc(text);
    let b = with_doc(text);
    // Replace "wörld" (after "héllo 😀 " = 6 + 2 + 1 = 9 units) with "world".
    a.change(1, &change(URI, 2, vec![edit(0, 9, 0, 14, "world")]))
        .expect("edit");
    // Insert between the two 🎉 (column 2), and delete "€" on line 1.
    a.change(
        1,
        &change(URI, 3, vec![edit(2, 2, 2, 2, "+"), edit(1, 13, 1, 14, "")]),
    )
    .expect("edits");
    let expected = "héllo 😀 world\r\nzweite Zeile \n🎉+🎉 end";
    b.change(1, &change(URI, 3, vec![whole(expected)]))
        .expect("replace");
    assert_eq!(a.documents().text(1, URI).as_deref(), Some(expected));
    assert_eq!(b.documents().text(1, URI).as_deref(), Some(expected));
}

#[test]
fn a_column_inside_a_surrogate_pair_means_the_char_start() {
    let s = with_doc("a😀b");
    s.change(1, &change(URI, 2, vec![edit(0, 2, 0, 2, "X")]))
        .expect("edit");
    assert_eq!(s.documents().text(1, URI).as_deref(), Some("aX😀b"));
}

#[test]
fn changes_apply_in_order_each_on_the_previous_result() {
    let s = with_doc("abc");
    s.change(
        1,
        &change(
            URI,
            2,
            vec![
                whole("one\ntwo"),
                edit(1, 0, 1, 3, "2"),
                edit(0, 3, 0, 3, "!"),
            ],
        ),
    )
    .expect("edits");
    assert_eq!(s.documents().text(1, URI).as_deref(), Some("one!\n2"));
}

#[test]
fn a_version_not_newer_changes_nothing() {
    let s = with_doc("abc");
    s.change(1, &change(URI, 5, vec![whole("v5")])).expect("v5");
    for v in [5, 4, -1] {
        let err = s
            .change(1, &change(URI, v, vec![whole("stale")]))
            .expect_err("stale");
        assert!(matches!(err, LangError::StaleVersion { version, current: 5, .. } if version == v));
        assert_eq!(err.to_method_error().code().0, -32602);
    }
    assert_eq!(s.documents().text(1, URI).as_deref(), Some("v5"));
    assert_eq!(s.documents().version(1, URI), Some(5));
}

#[test]
fn a_change_to_a_document_not_open_is_an_error() {
    let s = LangService::new();
    let err = s
        .change(1, &change(URI, 1, vec![whole("x")]))
        .expect_err("not open");
    assert!(matches!(&err, LangError::NotOpen { uri } if uri == URI));
    assert_eq!(err.to_string(), format!("document not open: {URI}"));
    assert_eq!(err.uri(), Some(URI));
}

#[test]
fn a_range_that_ends_before_it_starts_rejects_the_whole_change() {
    let s = with_doc("hello");
    let err = s
        .change(
            1,
            &change(URI, 2, vec![edit(0, 0, 0, 1, "J"), edit(0, 4, 0, 2, "x")]),
        )
        .expect_err("bad range");
    assert!(matches!(err, LangError::InvalidRange { index: 1, .. }));
    assert_eq!(s.documents().text(1, URI).as_deref(), Some("hello"));
    assert_eq!(s.documents().version(1, URI), Some(1));
}

#[test]
fn positions_past_the_end_are_clamped() {
    let s = with_doc("ab\ncd");
    s.change(
        1,
        &change(
            URI,
            2,
            vec![
                edit(0, 99, 0, 200, "!"),
                edit(40, 0, 50, 7, "?"),
                edit(u32::MAX, u32::MAX, u32::MAX, u32::MAX, "."),
            ],
        ),
    )
    .expect("clamped");
    assert_eq!(s.documents().text(1, URI).as_deref(), Some("ab!\ncd?."));
}

#[test]
fn documents_belong_to_the_connection_that_opened_them() {
    let s = LangService::new();
    open(&s, 1, URI, "from one", 1);
    open(&s, 2, URI, "from two", 1);
    // Connection 3 has nothing open: it cannot change or read either copy.
    assert!(s.change(3, &change(URI, 2, vec![whole("x")])).is_err());
    assert!(s.complete(3, &complete_at(0, 1, None)).is_err());
    s.change(2, &change(URI, 2, vec![whole("two changed")]))
        .expect("own doc");
    assert_eq!(s.documents().text(1, URI).as_deref(), Some("from one"));
    assert_eq!(s.documents().text(2, URI).as_deref(), Some("two changed"));

    s.connection_closed(1);
    assert_eq!(s.documents().open_count(1), 0);
    assert!(s.documents().text(1, URI).is_none());
    assert_eq!(s.documents().text(2, URI).as_deref(), Some("two changed"));
    let err = s
        .complete(1, &complete_at(0, 1, None))
        .expect_err("closed connection");
    assert_eq!(err.to_method_error().code().0, -32602);
    assert_eq!(
        err.to_method_error().message(),
        format!("document not open: {URI}")
    );
}

#[test]
fn close_drops_the_document_and_reopen_replaces() {
    let s = with_doc("first");
    open(&s, 1, URI, "second", 1);
    assert_eq!(s.documents().text(1, URI).as_deref(), Some("second"));
    s.close(1, &CloseParams { uri: URI.into() }).expect("close");
    assert!(s.documents().text(1, URI).is_none());
    assert!(matches!(
        s.close(1, &CloseParams { uri: URI.into() }),
        Err(LangError::NotOpen { .. })
    ));
}

#[test]
fn reopening_with_the_same_version_does_not_reuse_stale_identifiers() {
    let s = with_doc("alphabet alp");
    assert_eq!(crate::support::labels(&s, 0, 12), ["alphabet"]);
    open(&s, 1, URI, "alpaca alp", 1);
    assert_eq!(crate::support::labels(&s, 0, 10), ["alpaca"]);
}

#[test]
fn no_position_panics() {
    let text = "a😀\r\n€\r\rx\n";
    let s = with_doc(text);
    let cols = [0, 1, 2, 3, 4, 5, 100, u32::MAX];
    for line in [0, 1, 2, 3, 4, 5, u32::MAX] {
        for &c in &cols {
            s.complete(1, &complete_at(line, c, Some(5)))
                .expect("complete");
        }
    }
    let edits = [(0, 2, 0, 2), (0, 1, 0, 3), (1, 0, 0, 0), (9, 9, 0, 0)];
    for (v, (sl, sc, el, ec)) in (2..).zip(edits) {
        let _ = s.change(1, &change(URI, v, vec![edit(sl, sc, el, ec, "😀")]));
    }
}

#[test]
fn documents_are_bounded_per_connection_and_in_size() {
    let s = LangService::with_limits(hearth_lang::DocumentLimits {
        max_documents: 2,
        max_document_bytes: 10,
    });
    let open_doc = |conn: u64, uri: &str, text: &str| {
        s.open(
            conn,
            hearth_lang::api::OpenParams {
                uri: uri.into(),
                text: text.into(),
                version: 1,
                language: None,
            },
        )
    };
    open_doc(1, "a", "0123456789").expect("at the size limit");
    let err = open_doc(1, "b", "0123456789x").expect_err("too large");
    assert!(matches!(
        &err,
        LangError::TooLarge {
            bytes: 11,
            max: 10,
            ..
        }
    ));
    assert_eq!(err.uri(), Some("b"));
    open_doc(1, "b", "b").expect("second");
    let err = open_doc(1, "c", "c").expect_err("third");
    assert!(matches!(err, LangError::TooManyDocuments { max: 2, .. }));
    assert_eq!(err.to_method_error().code().0, -32602);
    // Reopening an open one is not a new document; another connection has its own count.
    open_doc(1, "b", "b2").expect("reopen");
    open_doc(2, "c", "c").expect("other connection");

    // A change that would grow a document past the limit changes nothing.
    let err = s
        .change(1, &change("b", 2, vec![edit(0, 2, 0, 2, "too much text")]))
        .expect_err("too large");
    assert!(matches!(err, LangError::TooLarge { .. }));
    assert_eq!(s.documents().text(1, "b").as_deref(), Some("b2"));
    assert_eq!(s.documents().version(1, "b"), Some(1));
    s.close(1, &CloseParams { uri: "a".into() }).expect("close");
    open_doc(1, "c", "c").expect("room again");
}
