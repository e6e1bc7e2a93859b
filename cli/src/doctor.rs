//! `hearth doctor`: what a user needs when something does not work, in plain words — the
//! socket path and which setting chose it, whether its folder and the socket are safe (ours,
//! owner-only), stale sockets and lock files, whether a daemon answers and whether it is the
//! build this `hearth` would start, where that daemon binary is, and the limits in force.
//! It never starts a daemon. Each finding is `ok`, `note` or `problem`; any problem makes the
//! exit status 1. `--json` prints the same as one object.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use hearth_client::protocol::build_id::{self, BUILD_ID_ENV};
use hearth_client::protocol::paths::{self, SOCKET_ENV};
use hearth_client::{Client, ClientConfig, DAEMON_ENV};
use serde_json::{Value, json};

use crate::commands::Target;
use crate::exit::print;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Note,
    Problem,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Note => "note",
            Self::Problem => "problem",
        }
    }
}

/// One line of the report.
struct Finding {
    topic: &'static str,
    level: Level,
    text: String,
}

/// Everything `doctor` found, with the JSON details beside the findings.
#[derive(Default)]
struct Report {
    findings: Vec<Finding>,
    details: serde_json::Map<String, Value>,
}

impl Report {
    fn add(&mut self, topic: &'static str, level: Level, text: impl Into<String>) {
        self.findings.push(Finding {
            topic,
            level,
            text: text.into(),
        });
    }

    fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.level == Level::Problem)
            .count()
    }
}

/// Some problems were found (exit 1; the report said which).
#[derive(Debug)]
pub(crate) struct Unhealthy(pub(crate) usize);

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            1 => write!(f, "doctor found 1 problem"),
            n => write!(f, "doctor found {n} problems"),
        }
    }
}

impl std::error::Error for Unhealthy {}

/// Runs the checks and prints the report; `from_flag` says whether `--socket` chose the path.
pub(crate) async fn doctor(target: &Target, from_flag: bool, as_json: bool) -> anyhow::Result<()> {
    let mut r = Report::default();
    let socket = &target.socket;
    let uid = my_uid();

    let source = socket_source(from_flag);
    r.add(
        "socket",
        Level::Ok,
        format!("{} ({source})", socket.display()),
    );
    r.details.insert(
        "socket".into(),
        json!({"path": socket, "chosen_by": source}),
    );
    if socket.is_relative() {
        r.add(
            "socket",
            Level::Problem,
            "the path is relative: clients started elsewhere will not find it; use an absolute path",
        );
    }

    check_folder(&mut r, socket, uid);
    let live = check_daemon(&mut r, target).await;
    check_socket_file(&mut r, socket, uid, live.as_ref());
    check_lock(&mut r, socket, live.as_ref());
    check_binary(&mut r, live.as_ref());

    let problems = r.problems();
    if as_json {
        let findings: Vec<Value> = r
            .findings
            .iter()
            .map(|f| json!({"topic": f.topic, "level": f.level.word(), "text": f.text}))
            .collect();
        let mut out = r.details;
        out.insert("findings".into(), Value::Array(findings));
        out.insert("problems".into(), json!(problems));
        print(Value::Object(out))?;
    } else {
        let mut text = String::new();
        for f in &r.findings {
            text.push_str(&format!(
                "{:<8} {:<7} {}\n",
                f.level.word(),
                f.topic,
                f.text
            ));
        }
        text.push_str(&match problems {
            0 => "no problems found".to_owned(),
            n => format!("{n} problem(s) found"),
        });
        print(text)?;
    }
    if problems > 0 {
        return Err(Unhealthy(problems).into());
    }
    Ok(())
}

/// Which setting chose the socket path, in the order the rule applies them.
fn socket_source(from_flag: bool) -> String {
    if from_flag {
        return "from --socket".into();
    }
    if std::env::var_os(SOCKET_ENV).is_some_and(|v| !v.is_empty()) {
        return format!("from ${SOCKET_ENV}");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if Path::new(&d).is_absolute() => "from $XDG_RUNTIME_DIR".into(),
        Some(_) => "the /tmp fallback: $XDG_RUNTIME_DIR is not an absolute path".into(),
        None => "the /tmp fallback: $XDG_RUNTIME_DIR is not set".into(),
    }
}

fn my_uid() -> u32 {
    // /proc/self belongs to the process's own (effective) user.
    fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

fn check_folder(r: &mut Report, socket: &Path, uid: u32) {
    let dir = socket.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let d = dir.display();
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            r.add(
                "folder",
                Level::Note,
                format!("{d} does not exist yet; hearthd creates it owner-only"),
            );
            r.details
                .insert("folder".into(), json!({"path": dir, "exists": false}));
        }
        Err(e) => r.add("folder", Level::Problem, format!("cannot inspect {d}: {e}")),
        Ok(m) => {
            let mode = m.mode() & 0o7777;
            r.details.insert(
                "folder".into(),
                json!({"path": dir, "exists": true, "owner": m.uid(), "mode": format!("{mode:o}")}),
            );
            if m.file_type().is_symlink() {
                r.add(
                    "folder",
                    Level::Problem,
                    format!("{d} is a symbolic link; hearthd refuses it"),
                );
            } else if !m.is_dir() {
                r.add("folder", Level::Problem, format!("{d} is not a folder"));
            } else if m.uid() != uid {
                r.add(
                    "folder",
                    Level::Problem,
                    format!(
                        "{d} belongs to uid {}, not you (uid {uid}); choose a folder of your own",
                        m.uid()
                    ),
                );
            } else if mode & 0o077 != 0 {
                r.add(
                    "folder",
                    Level::Problem,
                    format!(
                        "{d} has mode {mode:o}: other users have access, so hearthd refuses it; use a \
                         folder of its own, e.g. --socket {}",
                        dir.join(format!("hearth-{uid}"))
                            .join(socket.file_name().unwrap_or_default())
                            .display()
                    ),
                );
            } else {
                r.add("folder", Level::Ok, format!("{d} is yours, mode {mode:o}"));
            }
        }
    }
}

/// What the daemon said, if one answered.
struct Live {
    hello: hearth_client::HelloResult,
}

async fn check_daemon(r: &mut Report, target: &Target) -> Option<Live> {
    let config = ClientConfig::default()
        .with_client_name(format!("hearth doctor {}", env!("CARGO_PKG_VERSION")))
        .with_timeout(target.timeout);
    let connected =
        tokio::time::timeout(target.timeout, Client::connect_with(&target.socket, config))
            .await
            .unwrap_or(Err(hearth_client::Error::Timeout(target.timeout)));
    match connected {
        Ok(client) => {
            let hello = client.hello().clone();
            let id = hello.build_id.as_deref().unwrap_or("(none announced)");
            r.add(
                "daemon",
                Level::Ok,
                format!(
                    "{} answers (protocol {}, build {id})",
                    hello.server, hello.protocol
                ),
            );
            let l = &hello.limits;
            r.add(
                "limits",
                Level::Ok,
                format!(
                    "max frame {} bytes, {} in flight per connection, {} connections, depth {}",
                    l.max_frame, l.max_in_flight, l.max_connections, l.max_depth
                ),
            );
            r.details.insert(
                "daemon".into(),
                json!({"answers": true, "server": hello.server, "protocol": hello.protocol,
                       "build_id": hello.build_id, "limits": hello.limits}),
            );
            Some(Live { hello })
        }
        Err(e) => {
            let not_running = matches!(&e, hearth_client::Error::Connect { source, .. }
                if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused));
            if not_running {
                r.add(
                    "daemon",
                    Level::Note,
                    "no daemon answers; `hearth call` starts one",
                );
            } else {
                r.add("daemon", Level::Problem, format!("{e}"));
            }
            r.details.insert(
                "daemon".into(),
                json!({"answers": false, "error": e.to_string()}),
            );
            None
        }
    }
}

fn check_socket_file(r: &mut Report, socket: &Path, uid: u32, live: Option<&Live>) {
    let s = socket.display();
    match fs::symlink_metadata(socket) {
        Err(_) => {}
        Ok(m) if !m.file_type().is_socket() => r.add(
            "socket",
            Level::Problem,
            format!("{s} is not a socket; remove it or choose another path"),
        ),
        Ok(m) => {
            let mode = m.mode() & 0o777;
            if live.is_none() {
                r.add(
                    "socket",
                    Level::Problem,
                    format!(
                        "{s} is stale: a socket file nobody listens on (a daemon that died?); \
                         hearthd replaces it when it starts, or remove it"
                    ),
                );
            } else if m.uid() != uid || mode & 0o077 != 0 {
                r.add(
                    "socket",
                    Level::Note,
                    format!("{s} is uid {} mode {mode:o} (socket activation?); hearthd still checks each peer's uid", m.uid()),
                );
            }
        }
    }
}

fn check_lock(r: &mut Report, socket: &Path, live: Option<&Live>) {
    let lock = paths::lock_path(socket);
    let Ok(file) = fs::File::open(&lock) else {
        return;
    };
    let held = matches!(file.try_lock_shared(), Err(fs::TryLockError::WouldBlock));
    r.details
        .insert("lock".into(), json!({"path": lock, "held": held}));
    match (held, live) {
        (false, _) => r.add(
            "lock",
            Level::Problem,
            format!(
                "{} is stale: no daemon holds it; hearthd takes it over when it starts, or remove it",
                lock.display()
            ),
        ),
        (true, None) => r.add(
            "lock",
            Level::Problem,
            format!(
                "a daemon holds {} but does not answer on the socket (still starting, stuck, or its socket was removed)",
                lock.display()
            ),
        ),
        (true, Some(_)) => {}
    }
}

fn check_binary(r: &mut Report, live: Option<&Live>) {
    match hearth_client::find_daemon() {
        Err(e) => {
            r.add("hearthd", Level::Problem, e.to_string());
            r.details.insert("hearthd".into(), json!({"found": false}));
        }
        Ok((path, how)) => {
            let expected =
                build_id::expected_build_id(&path, std::env::var_os(BUILD_ID_ENV).as_deref());
            r.add(
                "hearthd",
                Level::Ok,
                format!(
                    "would start {} (found {how}; ${DAEMON_ENV} overrides)",
                    path.display()
                ),
            );
            r.details.insert(
                "hearthd".into(),
                json!({"found": true, "path": path, "how": how.to_string(), "build_id": expected}),
            );
            let Some(live) = live else { return };
            if !live.hello.server.starts_with("hearthd ") {
                return;
            }
            match (&live.hello.build_id, &expected) {
                (Some(found), Some(want)) if build_id::matches(found, want) => {
                    r.add("build", Level::Ok, "the daemon is the build hearth would start");
                }
                (found, want) => r.add(
                    "build",
                    Level::Note,
                    format!(
                        "the daemon is build {}, hearth would start {}: the next `hearth call` replaces it (unless HEARTH_NO_REPLACE=1)",
                        found.as_deref().unwrap_or("(none)"),
                        want.as_deref().unwrap_or("(unknown)")
                    ),
                ),
            }
        }
    }
}
