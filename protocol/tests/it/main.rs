//! Integration tests for `hearth-protocol`: the exact bytes of the examples in
//! docs/PROTOCOL.md, how malformed envelopes are classified, and property tests that
//! encode→decode round-trips and that any chunking of a stream yields the same frames.

mod envelope;
mod roundtrip;
mod support;
