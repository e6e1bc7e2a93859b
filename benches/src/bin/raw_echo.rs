//! `raw_echo [IN_FLIGHT] [SECONDS] [--two-processes]`: the raw baseline of
//! `hearth_benches::raw_echo` (a blocking Unix-socket echo server and client, the 45-byte
//! `echo` frame) run for a fixed time with a fixed window of frames outstanding, printing one
//! JSON line — calls per second, nanoseconds per call, and the CPU per call (client and
//! server together, from `/proc/PID/stat` in 10 ms ticks) and, with one call in flight, the
//! calls' p50 and p99 in µs (`null` otherwise). It exists so the baseline can be
//! run interleaved with `hearth bench --spawn` from a shell script, at the same concurrency,
//! under the same load; the criterion benches measure the same thing inside one process.
//!
//! The server is a thread of this process, unless `--two-processes` puts it in a child process
//! of its own (`raw_echo --serve PATH`, which serves one connection and exits), as `hearth
//! bench --spawn` has its daemon: with both ends on one core, switching between two processes
//! costs more than switching between two threads of one (the address space changes).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use hearth_benches::framed_echo_request;
use hearth_benches::raw_echo::{EchoClient, EchoServer};

/// Calls per `EchoClient::run`, per call in flight (about 10 ms pipelined or sequential on the
/// machine of docs/PERFORMANCE.md): the clock is read between runs only, and each run ends by
/// draining its window, which a longer run dilutes.
const CHUNK_PER_IN_FLIGHT: u64 = 256;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, path] = args.as_slice()
        && flag == "--serve"
    {
        return match serve_one(path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("raw_echo --serve: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let two_processes = match args.iter().position(|a| a == "--two-processes") {
        Some(at) => {
            args.remove(at);
            true
        }
        None => false,
    };
    let in_flight = args.first().map_or(Ok(256), |a| a.parse::<usize>());
    let seconds = args.get(1).map_or(Ok(10.0), |a| a.parse::<f64>());
    let (Ok(in_flight), Ok(seconds)) = (in_flight, seconds) else {
        eprintln!(
            "usage: raw_echo [IN_FLIGHT (default 256)] [SECONDS (default 10)] [--two-processes]"
        );
        return ExitCode::from(2);
    };
    match run(
        in_flight.max(1),
        Duration::from_secs_f64(seconds),
        two_processes,
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raw_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--serve PATH`: binds `PATH`, says `ready` on stdout, serves the one connection it accepts
/// until the client closes it.
fn serve_one(path: &str) -> std::io::Result<()> {
    let listener = UnixListener::bind(path)?;
    println!("ready");
    std::io::stdout().flush()?;
    let (stream, _) = listener.accept()?;
    let _ = std::fs::remove_file(path);
    hearth_benches::raw_echo::serve_connection(stream)
}

/// Where the server runs: a thread of this process, or a child process.
enum Server {
    Thread(EchoServer),
    Process(Child),
}

impl Server {
    fn start(path: &Path, two_processes: bool) -> std::io::Result<Self> {
        if !two_processes {
            return EchoServer::bind(path).map(Self::Thread);
        }
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve")
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut ready = String::new();
        let stdout = child.stdout.take().expect("piped");
        BufReader::new(stdout).read_line(&mut ready)?;
        if ready.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(
                "the server process did not start (see its error above)",
            ));
        }
        Ok(Self::Process(child))
    }

    /// The server's CPU so far in clock ticks, when it is a process of its own (a thread's is
    /// in this process's).
    fn cpu_ticks(&self) -> Option<u64> {
        match self {
            Self::Thread(_) => Some(0),
            Self::Process(child) => cpu_ticks(&format!("/proc/{}/stat", child.id())),
        }
    }

    /// Waits for a child server to end (the client closed the connection first).
    fn stop(self) {
        if let Self::Process(mut child) = self {
            let _ = child.wait();
        }
    }
}

fn run(in_flight: usize, duration: Duration, two_processes: bool) -> std::io::Result<()> {
    let dir = std::env::temp_dir().join(format!("hearth-raw-echo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("echo.sock");
    let server = Server::start(&path, two_processes)?;
    let frame = framed_echo_request(1);
    let mut client = EchoClient::connect(&path, &frame, in_flight)?;
    let chunk = CHUNK_PER_IN_FLIGHT * in_flight as u64;
    // One second of warm-up, not counted.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs(1) {
        client.run(chunk, in_flight)?;
    }
    let cpu = || Some(cpu_ticks("/proc/self/stat")? + server.cpu_ticks()?);
    let (cpu0, start) = (cpu(), Instant::now());
    let mut calls = 0u64;
    // One call in flight: each call is timed on its own, for percentiles comparable with
    // `hearth bench --in-flight 1` (two clock reads per call, ~50 ns, against ~10-60 µs).
    let mut latencies_ns: Vec<u64> = Vec::new();
    while start.elapsed() < duration {
        if in_flight == 1 {
            for _ in 0..chunk {
                let t = Instant::now();
                client.run(1, 1)?;
                latencies_ns.push(t.elapsed().as_nanos() as u64);
            }
        } else {
            client.run(chunk, in_flight)?;
        }
        calls += chunk;
    }
    let (elapsed, cpu1) = (start.elapsed(), cpu());
    latencies_ns.sort_unstable();
    let percentile = |q: f64| -> String {
        if latencies_ns.is_empty() {
            return "null".to_owned();
        }
        let rank = ((latencies_ns.len() as f64 * q).ceil() as usize).clamp(1, latencies_ns.len());
        format!("{:.1}", latencies_ns[rank - 1] as f64 / 1000.0)
    };
    drop(client);
    match server {
        Server::Thread(server) => drop(server),
        process => process.stop(),
    }
    let _ = std::fs::remove_dir_all(&dir);
    let secs = elapsed.as_secs_f64();
    let cpu_us = cpu0.zip(cpu1).map(|(a, b)| (b - a) as f64 * 10_000.0);
    println!(
        "{{\"bench\":\"raw_echo\",\"in_flight\":{in_flight},\"processes\":{},\"calls\":{calls},\"seconds\":{secs:.3},\"calls_per_s\":{:.0},\"ns_per_call\":{:.1},\"p50_us\":{},\"p99_us\":{},\"cpu_us_per_call\":{}}}",
        if two_processes { 2 } else { 1 },
        calls as f64 / secs,
        secs * 1e9 / calls as f64,
        percentile(0.50),
        percentile(0.99),
        cpu_us.map_or("null".to_owned(), |us| format!("{:.3}", us / calls as f64)),
    );
    Ok(())
}

/// User + system CPU of a process so far, in clock ticks (10 ms), from its `/proc/PID/stat`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(stat).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}
