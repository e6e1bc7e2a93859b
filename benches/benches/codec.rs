//! Criterion benches for the wire codec, in nanoseconds per message: encoding a request (typed
//! params) and a response (raw result), cutting and decoding a request frame and a response
//! frame, and decoding a request plus deserializing its params into a typed struct. Buffers
//! are cleared and reused, never reallocated, so the numbers are the codec's and not the
//! allocator's; the decode benches refill their buffer with one small copy per message.
//! Sockets, tasks and the daemon are out of scope here.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hearth_benches::{
    SAMPLE_ID, SAMPLE_METHOD, SampleParams, framed_request, framed_response, sample_params,
    sample_params_msgpack,
};
use hearth_protocol::{DEFAULT_MAX_FRAME, Encoder, FrameDecoder, Message};

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));
    let enc = Encoder::default();
    let mut buf = BytesMut::with_capacity(256);

    let params = sample_params();
    group.bench_function("request", |b| {
        b.iter(|| {
            buf.clear();
            enc.request(
                &mut buf,
                black_box(SAMPLE_ID),
                black_box(SAMPLE_METHOD),
                black_box(&params),
            )
            .expect("encodes");
            black_box(&buf);
        });
    });

    let result = sample_params_msgpack();
    group.bench_function("response_raw", |b| {
        b.iter(|| {
            buf.clear();
            enc.response_raw(&mut buf, black_box(SAMPLE_ID), black_box(&result))
                .expect("encodes");
            black_box(&buf);
        });
    });
    group.finish();
}

/// Puts `wire` in `buf` (reusing its allocation once the previous frame is dropped) and cuts
/// and decodes the one message in it.
fn cut_and_decode(frames: &mut FrameDecoder, buf: &mut BytesMut, wire: &[u8]) -> Message {
    buf.clear();
    buf.extend_from_slice(wire);
    let frame = frames
        .decode(buf)
        .expect("valid header")
        .expect("a whole frame");
    Message::decode(frame).expect("a valid message")
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    let mut frames = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut buf = BytesMut::with_capacity(256);

    let request = framed_request();
    group.bench_function("request", |b| {
        b.iter(|| black_box(cut_and_decode(&mut frames, &mut buf, black_box(&request))));
    });

    let response = framed_response();
    group.bench_function("response", |b| {
        b.iter(|| black_box(cut_and_decode(&mut frames, &mut buf, black_box(&response))));
    });

    group.bench_function("request_typed_params", |b| {
        b.iter(
            || match cut_and_decode(&mut frames, &mut buf, black_box(&request)) {
                Message::Request(req) => {
                    let params: SampleParams =
                        hearth_protocol::from_msgpack(&req.params).expect("typed params");
                    black_box(params)
                }
                other => panic!("not a request: {other:?}"),
            },
        );
    });
    group.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
