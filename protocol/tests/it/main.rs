//! Integration tests for `hearth-protocol`: the exact bytes of the examples in
//! docs/PROTOCOL.md, how malformed envelopes are classified, and property tests that
//! encode→decode round-trips and that any chunking of a stream yields the same frames; and
//! the language-neutral vectors of conformance/frames.json and conformance/build_id.json that
//! every client runs too.

mod build_id;
mod conformance;
mod envelope;
mod roundtrip;
mod support;
