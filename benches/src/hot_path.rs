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
//! - [`ClientLoop`]: the other end — `hearth-client` pipelining `echo` calls from many tasks
//!   (as `hearth bench` does) over a real Unix socket to a canned peer that answers each
//!   request with a few byte copies, all on one current-thread runtime, so that what is
//!   counted is the client's work (encode, pending table, writer, reader, decode, wake-ups)
//!   and not a daemon's. The only socket workload: a Unix socket on one thread is as
//!   deterministic as the duplex (every write is readable at once), and it is the transport
//!   the client really uses.
//!
//! Timing these is the criterion benches' job, not this module's.

use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use hearth_client::{Client, ClientConfig};
use hearth_lang::LangService;
use hearth_lang::bench_support;
use hearth_protocol::reserved::{HelloResult, Limits};
use hearth_protocol::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME, Decoded, Encoder, FrameDecoder, Message, RequestId,
    RequestOptions, Text, Version,
};
use hearth_server::{Server, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::{UnixListener, UnixStream};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

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
/// the handler call, response encoding, batched writes) without a socket or a second thread.
/// The router is hearthd's own built-ins, so `echo` is the one hearthd serves: a synchronous
/// handler (`Router::sync_raw_method`), called inline with no future or context per call.
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

/// `hearth-client` alone: `in_flight` tasks on one current-thread runtime, each making `echo`
/// calls with [`Client::call_raw`] one after another (the closed loop of `hearth bench`), over
/// a Unix socket to [`canned_peer`], which answers on the same runtime with a few byte copies
/// per call. What a run counts is the client's work per call plus that small, fixed share.
pub struct ClientLoop {
    runtime: Runtime,
    client: Client,
    peer: tokio::task::JoinHandle<io::Result<u64>>,
    in_flight: usize,
    params: Bytes,
    /// Holds the socket's 0700 folder until the loop is dropped.
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for ClientLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientLoop")
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl ClientLoop {
    /// A client connected (protocol version 2, `$/hello` done) to a fresh canned peer on a
    /// socket in a new temporary folder.
    pub fn new(in_flight: usize) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let dir = tempfile::Builder::new()
            .prefix("hearth-hot-path")
            .tempdir()?;
        let path = dir.path().join("peer.sock");
        let (client, peer) = runtime.block_on(async {
            let listener = UnixListener::bind(&path)?;
            let peer = tokio::spawn(async move {
                let (stream, _) = listener.accept().await?;
                canned_peer(stream).await
            });
            let client = Client::connect_with(&path, ClientConfig::default())
                .await
                .map_err(io::Error::other)?;
            Ok::<_, io::Error>((client, peer))
        })?;
        if client.protocol_version() != Version::V2 {
            return Err(io::Error::other("the client did not speak version 2"));
        }
        Ok(Self {
            runtime,
            client,
            peer,
            in_flight: in_flight.max(1),
            params: Bytes::from(echo_params()),
            _dir: dir,
        })
    }

    /// Makes `calls_per_task` calls from each of the `in_flight` tasks, checking every
    /// answer; returns the total bytes of results.
    pub fn run(&self, calls_per_task: u64) -> io::Result<u64> {
        self.runtime.block_on(async {
            let mut tasks = JoinSet::new();
            for _ in 0..self.in_flight {
                let (client, params) = (self.client.clone(), self.params.clone());
                tasks.spawn(async move {
                    let mut read = 0u64;
                    for _ in 0..calls_per_task {
                        let result = client
                            .call_raw(ECHO_METHOD, &params)
                            .await
                            .map_err(io::Error::other)?;
                        if result != params {
                            return Err(io::Error::other("the echo came back different"));
                        }
                        read += result.len() as u64;
                    }
                    Ok::<_, io::Error>(read)
                });
            }
            let mut read = 0;
            while let Some(done) = tasks.join_next().await {
                read += done.map_err(io::Error::other)??;
            }
            Ok(read)
        })
    }

    /// Drops the client and waits for the peer to see the connection end; returns how many
    /// requests the peer answered (the `$/hello` included).
    pub fn finish(self) -> io::Result<u64> {
        let Self {
            runtime,
            client,
            peer,
            ..
        } = self;
        drop(client);
        runtime.block_on(peer).map_err(io::Error::other)?
    }
}

/// The peer of [`ClientLoop`]: answers `$/hello` (version 2, room for 1024 requests in
/// flight) and then every request with a response that echoes its params, in its version,
/// built by copying bytes — the request's id as it was encoded, its params — so that its
/// share of the count is small and fixed. Everything read in one read is answered in one write.
/// Returns how many requests it answered once the client closes the connection; anything but
/// a 5-element request with a short method name is an error.
async fn canned_peer(mut stream: UnixStream) -> io::Result<u64> {
    let mut input = BytesMut::with_capacity(64 * 1024);
    let mut output = BytesMut::with_capacity(64 * 1024);
    let mut answered = 0u64;
    loop {
        if input.capacity() - input.len() < 8 * 1024 {
            input.reserve(64 * 1024);
        }
        if stream.read_buf(&mut input).await? == 0 {
            return if input.is_empty() {
                Ok(answered)
            } else {
                Err(io::Error::other("the client stopped mid-frame"))
            };
        }
        while input.len() >= 4 {
            let len = u32::from_be_bytes([input[0], input[1], input[2], input[3]]) as usize;
            if input.len() < 4 + len {
                break;
            }
            answer(&input[4..4 + len], &mut output)?;
            input.advance(4 + len);
            answered += 1;
        }
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
    }
}

/// Appends the answer to one request body `[v, 0, id, method, params]` to `out`.
fn answer(body: &[u8], out: &mut BytesMut) -> io::Result<()> {
    let bad = || io::Error::other(format!("the canned peer cannot answer {body:02x?}"));
    let (&[0x95, version, 0x00], rest) = body.split_first_chunk::<3>().ok_or_else(bad)? else {
        return Err(bad());
    };
    let id_len = match rest.first() {
        Some(0x00..=0x7f) => 1,
        Some(0xcc) => 2,
        Some(0xcd) => 3,
        Some(0xce) => 5,
        Some(0xcf) => 9,
        _ => return Err(bad()),
    };
    let (id, rest) = rest.split_at_checked(id_len).ok_or_else(bad)?;
    let method_len = match rest.first() {
        Some(&head @ 0xa0..=0xbf) => usize::from(head & 0x1f),
        _ => return Err(bad()),
    };
    let (method, params) = rest[1..].split_at_checked(method_len).ok_or_else(bad)?;
    if method == b"$/hello" {
        let version = Version::from_number(u64::from(version)).ok_or_else(bad)?;
        let mut id_reader = hearth_protocol::value::Reader::new(id);
        let Ok(hearth_protocol::value::Head::Uint(id)) = id_reader.head() else {
            return Err(bad());
        };
        return Encoder::default()
            .with_version(version)
            .response(out, RequestId::new(id), &canned_hello(version))
            .map_err(io::Error::other);
    }
    let len = 3 + id.len() + 1 + params.len();
    out.put_u32(u32::try_from(len).map_err(|_| bad())?);
    out.put_slice(&[0x95, version, 0x01]);
    out.put_slice(id);
    out.put_u8(0xc0);
    out.put_slice(params);
    Ok(())
}

/// What the canned peer says in `$/hello`.
fn canned_hello(version: Version) -> HelloResult {
    HelloResult {
        protocol: version.number(),
        server: "hot_path canned peer".into(),
        build: String::new(),
        methods: vec![ECHO_METHOD.into()],
        limits: Limits {
            max_frame: DEFAULT_MAX_FRAME as u64,
            max_in_flight: 1024,
            max_connections: 1,
            max_depth: DEFAULT_MAX_DEPTH as u64,
        },
        supported: vec![1, 2],
        build_id: None,
    }
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

    #[test]
    fn client_loop_gets_every_echo_back() {
        let client = ClientLoop::new(8).expect("a client connected to the canned peer");
        let read = client.run(5).expect("every call answered");
        assert_eq!(read, 8 * 5 * crate::ECHO_PARAMS_LEN as u64);
        assert_eq!(client.run(5).expect("answered again"), read);
        assert_eq!(client.finish().expect("a clean end"), 1 + 2 * 8 * 5);
    }

    #[test]
    fn the_canned_peer_refuses_what_it_cannot_answer() {
        let mut out = BytesMut::new();
        assert!(answer(&[0x93, 0x02, 0x03, 0x07], &mut out).is_err());
        assert!(answer(&[0x95, 0x02, 0x00], &mut out).is_err());
        assert!(answer(&[0x95, 0x02, 0x00, 0x07, 0xa4, b'e'], &mut out).is_err());
        assert!(out.is_empty());
        answer(&[0x95, 0x02, 0x00, 0xcc, 0x80, 0xa1, b'm', 0xc0], &mut out).expect("answered");
        assert_eq!(
            &out[..],
            &[0, 0, 0, 7, 0x95, 0x02, 0x01, 0xcc, 0x80, 0xc0, 0xc0]
        );
    }
}
