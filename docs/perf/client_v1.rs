//! The `client` workload of `hot_path` (benches/src/hot_path.rs, `ClientLoop`), adapted to the
//! version 1 hearth-client of 14737c4, to count the v1 library's instructions per call the same
//! way: `docs/perf/client-v1-lib.sh` copies it into a 14737c4 worktree as a `hearth-benches`
//! binary. Not built in this workspace. Usage: `client_v1 <calls, a multiple of 256>`.
use std::io;
use std::process::ExitCode;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use hearth_benches::{ECHO_METHOD, echo_params};
use hearth_client::{Client, ClientConfig};
use hearth_protocol::reserved::{HelloResult, Limits};
use hearth_protocol::{DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME, Encoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

fn main() -> ExitCode {
    let n: u64 = std::env::args().nth(1).unwrap().parse().unwrap();
    let c = ClientLoop::new(256).unwrap();
    let read = c.run(n / 256).unwrap();
    c.finish().unwrap();
    println!("client-v1: {n} calls, {read}");
    ExitCode::SUCCESS
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
        let mut id_reader = hearth_protocol::value::Reader::new(id);
        let Ok(hearth_protocol::value::Head::Uint(id)) = id_reader.head() else {
            return Err(bad());
        };
        return Encoder::default()
            .response(out, id, &canned_hello())
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
fn canned_hello() -> HelloResult {
    HelloResult {
        protocol: 1,
        server: "hot_path canned peer".into(),
        build: String::new(),
        methods: vec![ECHO_METHOD.into()],
        limits: Limits {
            max_frame: DEFAULT_MAX_FRAME as u64,
            max_in_flight: 1024,
            max_connections: 1,
            max_depth: DEFAULT_MAX_DEPTH as u64,
        },
    }
}

