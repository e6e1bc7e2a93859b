//! Fuzz target: `Message::decode_any` (at the default depth and at small depths) of an
//! arbitrary frame body, either protocol version. Checks: no panic; a body that decodes at
//! some depth decodes the same at every larger depth; `Message::decode` agrees with it on
//! version 1 bodies; a decoded message re-encoded in its version with the `Encoder`'s raw
//! methods is one frame that decodes to the same message and version; and `value::skip`
//! agrees with `rmpv` on where a well-formed value ends and how deep it nests.

#![no_main]

use bytes::{Bytes, BytesMut};
use hearth_protocol::{DEFAULT_MAX_DEPTH, Encoder, FrameDecoder, Message, Version, value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let full = Message::decode_any(body.clone(), DEFAULT_MAX_DEPTH);

    for depth in 0..=3 {
        if let Ok(shallow) = Message::decode_any(body.clone(), depth) {
            assert_eq!(Ok(&shallow), full.as_ref(), "depth {depth} vs default");
        }
    }
    if let Ok(d) = &full
        && d.version == Version::V1
    {
        assert_eq!(
            Message::decode(body.clone()).as_ref(),
            Ok(&d.message),
            "decode vs decode_any"
        );
    }

    if let Ok(end) = value::skip(data, DEFAULT_MAX_DEPTH) {
        // `skip` checked every declared length against the input, so rmpv cannot be made
        // to allocate beyond it here.
        let mut rd = data;
        let v = rmpv::decode::read_value(&mut rd).expect("rmpv reads what skip accepted");
        assert_eq!(data.len() - rd.len(), end, "value length: skip vs rmpv");
        assert!(hearth_fuzz::rmpv_depth(&v) <= DEFAULT_MAX_DEPTH);
    }

    let Ok(decoded) = full else { return };
    let msg = decoded.message;
    let mut wire = BytesMut::new();
    let enc = Encoder::new(usize::MAX).with_version(decoded.version);
    hearth_fuzz::encode(&enc, &mut wire, &msg).expect("re-encodes");
    let frame = FrameDecoder::new(u32::MAX as usize)
        .decode(&mut wire)
        .expect("a valid header")
        .expect("a whole frame");
    assert!(wire.is_empty(), "exactly one frame");
    let again = Message::decode_any(frame, DEFAULT_MAX_DEPTH).expect("re-decodes");
    assert_eq!(
        (again.version, &again.message),
        (decoded.version, &msg),
        "re-decoded"
    );
});
