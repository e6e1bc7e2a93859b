//! Shared fixtures for hearth's benchmarks: a small typed params struct ([`SampleParams`], about
//! 32 bytes of MessagePack), the 32-byte `echo` params the round-trip benches send, and helpers
//! that build framed messages with hearth's own [`Encoder`], so every bench measures the bytes a
//! real peer would send. Nothing in this file is timed or touches a socket. Two submodules hold
//! the reusable moving parts: [`raw_echo`] (a plain blocking Unix-socket echo server and client,
//! the baseline the daemon is compared with) and [`hot_path`] (fixed, deterministic workloads
//! for counting instructions under callgrind). The timing itself lives in the bench targets
//! under `benches/`.

pub mod hot_path;
pub mod raw_echo;

use bytes::BytesMut;
use hearth_protocol::Encoder;
use serde::{Deserialize, Serialize};

/// The request id every fixture uses: big enough to need a `uint16`, like a busy client's.
pub const SAMPLE_ID: u64 = 4242;

/// The method name every fixture request uses.
pub const SAMPLE_METHOD: &str = "goto";

/// Params of a typical small editor call; encodes to a 34-byte MessagePack map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleParams {
    /// A short path.
    pub uri: String,
    /// A line number that needs one byte.
    pub line: u32,
    /// A column that fits a positive fixint.
    pub col: u32,
    /// A flag.
    pub dirty: bool,
}

/// The params value every fixture uses.
pub fn sample_params() -> SampleParams {
    SampleParams {
        uri: "src/lib.rs".to_owned(),
        line: 120,
        col: 8,
        dirty: true,
    }
}

/// [`sample_params`] as MessagePack, the way hearth encodes it (a map keyed by field name).
pub fn sample_params_msgpack() -> Vec<u8> {
    hearth_protocol::to_msgpack(&sample_params()).expect("the sample params encode")
}

/// One whole framed request: `[1, 0, SAMPLE_ID, SAMPLE_METHOD, sample_params()]` with its
/// 4-byte length header.
pub fn framed_request() -> BytesMut {
    let mut out = BytesMut::new();
    Encoder::default()
        .request(&mut out, SAMPLE_ID, SAMPLE_METHOD, &sample_params())
        .expect("the sample request encodes");
    out
}

/// One whole framed success response to [`framed_request`], carrying the sample params back
/// as its result (what `echo` answers).
pub fn framed_response() -> BytesMut {
    let mut out = BytesMut::new();
    Encoder::default()
        .response_raw(&mut out, SAMPLE_ID, &sample_params_msgpack())
        .expect("the sample response encodes");
    out
}

/// The method the round-trip benches call: hearthd's built-in `echo`.
pub const ECHO_METHOD: &str = "echo";

/// Size in bytes of [`echo_params`].
pub const ECHO_PARAMS_LEN: usize = 32;

/// The params every round-trip bench sends to `echo`: exactly [`ECHO_PARAMS_LEN`] bytes of
/// MessagePack (a 31-character string behind its one-byte fixstr header).
pub fn echo_params() -> Vec<u8> {
    let text = "hearth echo params, 32 bytes ok";
    debug_assert_eq!(text.len(), ECHO_PARAMS_LEN - 1);
    hearth_protocol::to_msgpack(text).expect("a short string encodes")
}

/// One whole framed `echo` request with [`echo_params`]: 45 bytes on the wire for an id below
/// 128, the same bytes `hearth_client::Client::call_raw` sends for that id. The raw baseline
/// echoes exactly these bytes.
pub fn framed_echo_request(id: u64) -> BytesMut {
    let mut out = BytesMut::new();
    Encoder::default()
        .request_raw(&mut out, id, ECHO_METHOD, &echo_params())
        .expect("the echo request encodes");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_protocol::{DEFAULT_MAX_FRAME, FrameDecoder, Message};

    #[test]
    fn fixtures_are_the_sizes_the_benches_claim() {
        assert_eq!(sample_params_msgpack().len(), 34);
        let mut wire = framed_request();
        let frame = FrameDecoder::new(DEFAULT_MAX_FRAME)
            .decode(&mut wire)
            .expect("valid header")
            .expect("whole frame");
        assert!(wire.is_empty());
        match Message::decode(frame).expect("decodes") {
            Message::Request(req) => {
                assert_eq!(req.id, SAMPLE_ID);
                assert_eq!(req.method(), SAMPLE_METHOD);
                let params: SampleParams =
                    hearth_protocol::from_msgpack(&req.params).expect("typed params");
                assert_eq!(params, sample_params());
            }
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn echo_fixtures_are_the_sizes_the_benches_claim() {
        assert_eq!(echo_params().len(), ECHO_PARAMS_LEN);
        let mut wire = framed_echo_request(1);
        assert_eq!(wire.len(), 45);
        let frame = FrameDecoder::new(DEFAULT_MAX_FRAME)
            .decode(&mut wire)
            .expect("valid header")
            .expect("whole frame");
        match Message::decode(frame).expect("decodes") {
            Message::Request(req) => {
                assert_eq!(req.method(), ECHO_METHOD);
                assert_eq!(&req.params[..], &echo_params()[..]);
            }
            other => panic!("not a request: {other:?}"),
        }
    }
}
