//! Fuzz target: `Message::decode` (and `decode_with_depth` with small depths) of an arbitrary
//! frame body. Checks: no panic; a body that decodes at some depth decodes the same at every
//! larger depth; a decoded message re-encoded with the `Encoder`'s raw methods is one frame
//! that decodes to the same message; and `value::skip` agrees with `rmpv` on where a
//! well-formed value ends and how deep it nests.

#![no_main]

use bytes::{Bytes, BytesMut};
use hearth_protocol::{DEFAULT_MAX_DEPTH, Encoder, FrameDecoder, Message, value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let full = Message::decode(body.clone());

    for depth in 0..=3 {
        if let Ok(shallow) = Message::decode_with_depth(body.clone(), depth) {
            assert_eq!(Ok(&shallow), full.as_ref(), "depth {depth} vs default");
        }
    }

    if let Ok(end) = value::skip(data, DEFAULT_MAX_DEPTH) {
        // `skip` checked every declared length against the input, so rmpv cannot be made
        // to allocate beyond it here.
        let mut rd = data;
        let v = rmpv::decode::read_value(&mut rd).expect("rmpv reads what skip accepted");
        assert_eq!(data.len() - rd.len(), end, "value length: skip vs rmpv");
        assert!(hearth_fuzz::rmpv_depth(&v) <= DEFAULT_MAX_DEPTH);
    }

    let Ok(msg) = full else { return };
    let mut wire = BytesMut::new();
    hearth_fuzz::encode(&Encoder::new(usize::MAX), &mut wire, &msg).expect("re-encodes");
    let frame = FrameDecoder::new(u32::MAX as usize)
        .decode(&mut wire)
        .expect("a valid header")
        .expect("a whole frame");
    assert!(wire.is_empty(), "exactly one frame");
    assert_eq!(Message::decode(frame).as_ref(), Ok(&msg), "re-decoded");
});
