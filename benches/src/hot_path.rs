//! Fixed workloads over hearth's hot path, made to be counted rather than timed: the
//! `hot_path` binary runs them under callgrind and `.ci/perf-guard.sh` compares instructions
//! per iteration with a committed baseline. Each workload does the same work on every run —
//! no sockets, no threads, no clock-driven branches on the measured path — so its instruction
//! count is a property of the code, not of the machine's mood.
//!
//! - [`CodecLoop`]: one typed call as the daemon sees it, without I/O: encode a request, cut its
//!   frame, decode the envelope, deserialize the params into a struct, encode the response.
//! - [`ServiceLoop`]: `echo` calls through the real connection code ([`Service::serve`]) over an
//!   in-memory `tokio::io::duplex` on a current-thread runtime, a fixed batch in flight — in
//!   version 1, or in version 2 with `supersede` and `deadline_ms` on every request
//!   ([`ServiceLoop::with_options`]).
//! - [`CompleteLoop`]: the language service's `complete` alone (no sockets, no serialization),
//!   the fixed 24-prefix workload of `hearth_lang::bench_support` over a generated index.
//!
//! Timing these is the criterion benches' job, not this module's.

use std::io;

use bytes::{Buf, BytesMut};
use hearth_lang::LangService;
use hearth_lang::bench_support;
use hearth_protocol::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME, Decoded, Encoder, FrameDecoder, Message, RequestOptions,
    Text, Version,
};
use hearth_server::{Server, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Runtime;

use crate::{ECHO_METHOD, SAMPLE_ID, SAMPLE_METHOD, SampleParams, echo_params, sample_params};

/// Encode → frame decode → envelope decode → typed params → encode response, with every
/// buffer reused between iterations.
#[derive(Debug)]
pub struct CodecLoop {
    enc: Encoder,
    frames: FrameDecoder,
    params: SampleParams,
    wire: BytesMut,
    out: BytesMut,
}

impl Default for CodecLoop {
    fn default() -> Self {
        Self::new()
    }
}

impl CodecLoop {
    /// A loop over [`sample_params`] sent to [`SAMPLE_METHOD`] with id [`SAMPLE_ID`].
    pub fn new() -> Self {
        Self {
            enc: Encoder::default(),
            frames: FrameDecoder::new(DEFAULT_MAX_FRAME),
            params: sample_params(),
            wire: BytesMut::with_capacity(256),
            out: BytesMut::with_capacity(256),
        }
    }

    /// One call's codec work; returns the response frame's length (so it cannot be optimized
    /// away). Panics if the codec rejects its own output, which would be a bug.
    pub fn iteration(&mut self) -> usize {
        self.wire.clear();
        self.enc
            .request(&mut self.wire, SAMPLE_ID, SAMPLE_METHOD, &self.params)
            .expect("the sample request encodes");
        let frame = self
            .frames
            .decode(&mut self.wire)
            .expect("a valid header")
            .expect("a whole frame");
        let Message::Request(req) = Message::decode(frame).expect("a valid message") else {
            panic!("the sample request decodes as a request");
        };
        let params: SampleParams =
            hearth_protocol::from_msgpack(&req.params).expect("typed params");
        self.out.clear();
        self.enc
            .response(&mut self.out, req.id, &params)
            .expect("the response encodes");
        self.out.len()
    }

    /// Runs `n` iterations; returns the sum of their results.
    pub fn run(&mut self, n: u64) -> u64 {
        (0..n).map(|_| self.iteration() as u64).sum()
    }
}

/// `complete` over a generated index: one iteration completes each of
/// `bench_support::PREFIXES` once in a document of generated code, as
/// `hearth_lang::bench_support::complete_workload` does (and `lang/benches/complete.rs` times).
/// Building the index is set-up, which the guard's two runs cancel out.
#[derive(Debug)]
pub struct CompleteLoop {
    service: LangService,
}

impl CompleteLoop {
    /// A service over an index of `occurrences` generated identifier occurrences, with the
    /// workload's document open and its identifiers already scanned (as between edits).
    pub fn new(occurrences: usize) -> Self {
        let service = bench_support::service(bench_support::generated_index(occurrences));
        std::hint::black_box(bench_support::complete_workload(&service));
        Self { service }
    }

    /// Runs the workload `n` times; returns the number of items produced.
    pub fn run(&self, n: u64) -> u64 {
        (0..n)
            .map(|_| bench_support::complete_workload(std::hint::black_box(&self.service)) as u64)
            .sum()
    }
}

/// `echo` calls through [`Service::serve`] over an in-memory duplex stream, on a
/// current-thread runtime: the daemon's connection code (read buffer, frame cutting, dispatch,
/// handler futures, response encoding, batched writes) without a socket or a second thread.
#[derive(Debug)]
pub struct ServiceLoop {
    runtime: Runtime,
    service: Service,
    batch: usize,
    options: bool,
}

/// The deadline every request of [`ServiceLoop::with_options`] carries: an hour, so it never
/// expires during a run and no clock reading changes what the daemon does.
pub const FAR_DEADLINE_MS: u64 = 3_600_000;

impl ServiceLoop {
    /// The built-in router; `batch` calls are written at once and all their answers read
    /// before the next batch.
    pub fn new(batch: usize) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let service = Server::builder()
            .router(hearth_server::builtins::router())
            .service();
        Ok(Self {
            runtime,
            service,
            batch: batch.max(1),
            options: false,
        })
    }

    /// The same loop in protocol version 2, every request carrying the options a latency-
    /// sensitive client sets: `supersede` with a key of its own per slot of the batch (the
    /// previous request on a key is always answered before the next is sent, so nothing is
    /// actually superseded) and `deadline_ms` [`FAR_DEADLINE_MS`]. What it costs over
    /// [`ServiceLoop::new`] is what version 2's options cost when they are used but change
    /// nothing.
    pub fn with_options(batch: usize) -> io::Result<Self> {
        Ok(Self {
            options: true,
            ..Self::new(batch)?
        })
    }

    /// Makes `rounds` batches of `echo` calls on one fresh connection, checking every answer;
    /// returns the total bytes of responses read.
    pub fn run(&self, rounds: u64) -> io::Result<u64> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let service = self.service.clone();
        let (batch, options) = (self.batch, self.options);
        self.runtime.block_on(async move {
            let serving = tokio::spawn(async move { service.serve(server).await });
            let read = if options {
                drive::<true>(client, rounds, batch).await?
            } else {
                drive::<false>(client, rounds, batch).await?
            };
            serving.await.map_err(io::Error::other)?;
            Ok(read)
        })
    }
}

/// The client side of [`ServiceLoop::run`]: writes each batch in one write, reads until every
/// answer of the batch has arrived, then closes its end so the connection ends cleanly.
async fn drive<const V2: bool>(
    mut stream: DuplexStream,
    rounds: u64,
    batch: usize,
) -> io::Result<u64> {
    // `V2` is a constant so that the version 1 loop is the code it always was: the options
    // branches below are compiled out of it.
    let enc = if V2 {
        Encoder::default().with_version(Version::V2)
    } else {
        Encoder::default()
    };
    // Version 2: one options map per slot, with its own supersede key and the far deadline.
    let slot_options: Vec<RequestOptions> = if V2 {
        (0..batch)
            .map(|slot| RequestOptions {
                deadline_ms: Some(FAR_DEADLINE_MS),
                supersede: Some(Text::from(format!("slot-{slot}"))),
                stream: false,
            })
            .collect()
    } else {
        Vec::new()
    };
    let params = echo_params();
    let mut frames = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut out = BytesMut::with_capacity(batch * 64);
    let mut inbuf = BytesMut::with_capacity(64 * 1024);
    let mut next_id = 0u64;
    let mut read_total = 0u64;
    for _ in 0..rounds {
        out.clear();
        for slot in 0..batch {
            next_id += 1;
            match slot_options.get(slot) {
                Some(opts) if V2 => {
                    enc.request_raw_with(&mut out, next_id, ECHO_METHOD, &params, opts)
                }
                _ => enc.request_raw(&mut out, next_id, ECHO_METHOD, &params),
            }
            .map_err(io::Error::other)?;
        }
        stream.write_all(&out).await?;
        let mut answered = 0;
        while answered < batch {
            while let Some(frame) = frames.decode(&mut inbuf).map_err(io::Error::other)? {
                read_total += frame.len() as u64;
                let message = if V2 {
                    match Message::decode_any(frame, DEFAULT_MAX_DEPTH) {
                        Ok(Decoded {
                            version: Version::V2,
                            message,
                        }) => message,
                        Ok(other) => {
                            return Err(io::Error::other(format!("not version 2: {other:?}")));
                        }
                        Err(e) => return Err(io::Error::other(e)),
                    }
                } else {
                    Message::decode(frame).map_err(io::Error::other)?
                };
                match message {
                    Message::Response(r) if matches!(&r.outcome, Ok(b) if b[..] == params[..]) => {}
                    other => return Err(io::Error::other(format!("unexpected {other:?}"))),
                }
                answered += 1;
            }
            if answered < batch && stream.read_buf(&mut inbuf).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the service closed the connection",
                ));
            }
        }
    }
    stream.shutdown().await?;
    // Wait for the service to see the end of input and close its side.
    while stream.read_buf(&mut inbuf).await? != 0 {
        inbuf.advance(inbuf.len());
    }
    Ok(read_total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_loop_produces_the_echoed_response() {
        let mut codec = CodecLoop::new();
        let len = codec.iteration();
        assert_eq!(&codec.out[..], &crate::framed_response()[..]);
        assert_eq!(codec.run(3), 3 * len as u64);
    }

    #[test]
    fn service_loop_answers_every_call() {
        let service = ServiceLoop::new(16).expect("a runtime");
        let read = service.run(5).expect("every call answered");
        assert!(read >= 5 * 16 * crate::ECHO_PARAMS_LEN as u64);
        // A second connection on the same service works the same.
        assert_eq!(service.run(5).expect("answered again"), read);
    }

    #[test]
    fn service_loop_with_options_answers_every_call_in_version_2() {
        let service = ServiceLoop::with_options(16).expect("a runtime");
        let read = service
            .run(5)
            .expect("every call answered, none superseded");
        assert!(read >= 5 * 16 * crate::ECHO_PARAMS_LEN as u64);
    }
}
