//! `peers tarpc [SECONDS]`: issue 13's tarpc row, measured the way `raw_echo 1` and `hearth
//! bench --spawn --in-flight 1` are — one call in flight, a 32-byte echo, over a Unix socket in
//! a private temporary folder, the server in a child process of its own (`peers tarpc-serve
//! PATH`), both on tokio's multi-thread runtime with bincode framing, as in the issue
//! (`PEERS_CURRENT_THREAD=1`: both on the current-thread runtime). After one
//! second of warm-up it times each call for SECONDS (default 5) and prints one JSON line in
//! `raw_echo`'s shape: calls per second, nanoseconds per call, p50 and p99 in µs, and the CPU
//! per call of client and server together (from `/proc/PID/stat`, 10 ms ticks).
//!
//! A workspace of its own (see its `Cargo.toml`): neither the main build nor CI compiles tarpc.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tarpc::serde_transport as transport;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::length_delimited::LengthDelimitedCodec;
use tokio::net::{UnixListener, UnixStream};

/// The echoed payload, as `hearth bench --payload 32` sends.
const PAYLOAD: usize = 32;

#[tarpc::service]
trait Echo {
    /// Returns its argument.
    async fn echo(payload: Vec<u8>) -> Vec<u8>;
}

#[derive(Clone)]
struct EchoServer;

impl Echo for EchoServer {
    async fn echo(self, _: tarpc::context::Context, payload: Vec<u8>) -> Vec<u8> {
        payload
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["tarpc-serve", path] => serve(Path::new(path)),
        ["tarpc"] => bench(Duration::from_secs(5)),
        ["tarpc", secs] => match secs.parse::<f64>() {
            Ok(s) if s > 0.0 => bench(Duration::from_secs_f64(s)),
            _ => Err(format!("not a number of seconds: {secs}")),
        },
        _ => {
            eprintln!("usage: peers tarpc [SECONDS (default 5)]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peers: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Tokio's multi-thread runtime, or with `PEERS_CURRENT_THREAD=1` (inherited by the server
/// process) its current-thread one.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    let mut builder = if std::env::var_os("PEERS_CURRENT_THREAD").is_some_and(|v| v == "1") {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// `tarpc-serve PATH`: binds `PATH`, says `ready` on stdout, serves the one connection it
/// accepts until the client closes it.
fn serve(path: &Path) -> Result<(), String> {
    runtime()?.block_on(async {
        let listener = UnixListener::bind(path).map_err(|e| format!("bind {path:?}: {e}"))?;
        println!("ready");
        std::io::stdout().flush().map_err(|e| e.to_string())?;
        let (conn, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(path);
        let framed = LengthDelimitedCodec::builder().new_framed(conn);
        BaseChannel::with_defaults(transport::new(framed, Bincode::default()))
            .execute(EchoServer.serve())
            .for_each(|answer| async {
                tokio::spawn(answer);
            })
            .await;
        Ok(())
    })
}

/// The server process; killed and reaped on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bench(duration: Duration) -> Result<(), String> {
    let dir = private_dir()?;
    let path = dir.join("tarpc.sock");
    let mut child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .arg("tarpc-serve")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the server: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let server = Server(child);
    let mut ready = String::new();
    BufReader::new(stdout)
        .read_line(&mut ready)
        .map_err(|e| e.to_string())?;
    if ready.trim() != "ready" {
        return Err("the server did not start (see its error above)".to_owned());
    }
    let result = runtime()?.block_on(async {
        let conn = UnixStream::connect(&path)
            .await
            .map_err(|e| format!("connect {path:?}: {e}"))?;
        let framed = LengthDelimitedCodec::builder().new_framed(conn);
        let client = EchoClient::new(
            tarpc::client::Config::default(),
            transport::new(framed, Bincode::default()),
        )
        .spawn();
        let payload = vec![7u8; PAYLOAD];
        let call = || async {
            let back = client
                .echo(tarpc::context::current(), payload.clone())
                .await
                .map_err(|e| format!("echo: {e}"))?;
            if back != payload {
                return Err("echo returned something else".to_owned());
            }
            Ok::<_, String>(())
        };
        let warm = Instant::now();
        while warm.elapsed() < Duration::from_secs(1) {
            call().await?;
        }
        let cpu = || {
            Some(
                cpu_ticks("/proc/self/stat")?
                    + cpu_ticks(&format!("/proc/{}/stat", server.0.id()))?,
            )
        };
        let (cpu0, start) = (cpu(), Instant::now());
        let mut latencies_ns = Vec::new();
        while start.elapsed() < duration {
            let t = Instant::now();
            call().await?;
            latencies_ns.push(t.elapsed().as_nanos() as u64);
        }
        Ok::<_, String>((latencies_ns, start.elapsed(), cpu0.zip(cpu())))
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let (mut latencies_ns, elapsed, cpu) = result?;
    latencies_ns.sort_unstable();
    let calls = latencies_ns.len();
    let percentile = |q: f64| {
        let rank = ((calls as f64 * q).ceil() as usize).clamp(1, calls);
        latencies_ns[rank - 1] as f64 / 1000.0
    };
    let secs = elapsed.as_secs_f64();
    let cpu_us = cpu.map(|(a, b)| (b - a) as f64 * 10_000.0);
    let flavor = if std::env::var_os("PEERS_CURRENT_THREAD").is_some_and(|v| v == "1") {
        "current_thread"
    } else {
        "multi_thread"
    };
    println!(
        "{{\"bench\":\"tarpc\",\"runtime\":\"{flavor}\",\"in_flight\":1,\"processes\":2,\"calls\":{calls},\"seconds\":{secs:.3},\"calls_per_s\":{:.0},\"ns_per_call\":{:.1},\"p50_us\":{:.1},\"p99_us\":{:.1},\"cpu_us_per_call\":{}}}",
        calls as f64 / secs,
        secs * 1e9 / calls as f64,
        percentile(0.50),
        percentile(0.99),
        cpu_us.map_or("null".to_owned(), |us| format!("{:.3}", us / calls as f64)),
    );
    Ok(())
}

/// A fresh 0700 folder under the temporary directory.
fn private_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!("hearth-peers-{}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create {dir:?}: {e}"))?;
    Ok(dir)
}

/// User + system CPU of a process so far, in clock ticks (10 ms), from its `/proc/PID/stat`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(stat).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}
