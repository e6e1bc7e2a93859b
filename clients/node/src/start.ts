/**
 * Start on first use: {@link connectOrStart} connects to hearthd and, when nothing answers on
 * the socket, starts one (detached, in a session of its own, with `--idle-exit 10m` and its
 * output appended to `hearthd.log` beside the socket), waits for it to answer, and connects.
 * A running hearthd of another build than the one this client would start (its `$/hello`
 * `build_id`, docs/PROTOCOL.md §9.1 "Mixed versions") is asked to shut down and replaced,
 * unless replacement is turned off. This is the Node counterpart of the Rust client's
 * `Client::connect_or_start` (client/src/start.rs).
 *
 * One daemon results however many clients race. Within one Node process, starts for the same
 * socket take turns (an in-process lock), and each checks again for a daemon once it is its
 * turn. Node has no `flock`, so this client does not take the Rust and Python clients' start
 * lock (`<socket>.start`); across processes the daemon's own lock file is the last word: a
 * second hearthd exits with "already running" and its client connects to the first.
 *
 * This module also owns the build identity arithmetic ({@link identityHash}, the vectors of
 * conformance/build_id.json) and where the daemon binary is looked for ({@link findDaemon}).
 */

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

import { Client, ConnectOptions, connect } from "./client";
import { socketPath } from "./wire";

/** Names the daemon binary to start, before `PATH` is searched. */
export const DAEMON_ENV = "HEARTHD";
/** Set to `1`, {@link connectOrStart} never starts a daemon (it is plain {@link connect}). */
export const NO_START_ENV = "HEARTH_NO_START";
/** Set to `1`, a daemon of another build is kept rather than replaced. */
export const NO_REPLACE_ENV = "HEARTH_NO_REPLACE";
/** Overrides the computed build id, on the daemon's side and the client's. */
export const BUILD_ID_ENV = "HEARTH_BUILD_ID";
/** The `--idle-exit` a started daemon gets unless told otherwise. */
export const DEFAULT_IDLE_EXIT = "10m";

/** Options of {@link connectOrStart}: those of {@link connect}, and how to start. */
export interface StartOptions extends ConnectOptions {
  /** Start a daemon when nothing answers (default true; `HEARTH_NO_START=1` turns it off). */
  start?: boolean;
  /** The daemon binary; default `$HEARTHD`, else `hearthd` on `PATH` ({@link findDaemon}). */
  daemon?: string;
  /** `--idle-exit` for a started daemon (default "10m"); null passes none. */
  idleExit?: string | null;
  /** Further arguments for a started daemon. */
  args?: string[];
  /**
   * Replace a running hearthd of another build (default true, unless
   * `HEARTH_NO_REPLACE=1`).
   */
  replaceStale?: boolean;
  /**
   * The build id expected of the daemon; default `$HEARTH_BUILD_ID` if set, else the hash of
   * the binary that would be started. A daemon started by this client gets `HEARTH_BUILD_ID`
   * set to an id given here.
   */
  buildId?: string;
  /** How long to wait, in ms, for a started daemon to answer (and a replaced one to go). Default 10 000. */
  readyTimeout?: number;
  /** The environment to read the variables above from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/** What went wrong starting a daemon; `kind` says which case, the message what to do. */
export type StartErrorKind = "not_found" | "unsafe_folder" | "file" | "spawn" | "exited" | "not_ready" | "stale_stays";

/** A daemon could not be started (or replaced). */
export class StartError extends Error {
  constructor(
    readonly kind: StartErrorKind,
    message: string,
    readonly details: { socket?: string; log?: string; status?: string; tail?: string; path?: string } = {},
  ) {
    super(message);
    this.name = "StartError";
  }
}

/**
 * 16 lowercase hex digits of 64-bit FNV-1a over five unsigned 64-bit words, each as 8
 * little-endian bytes: size, modification time (whole seconds, then the nanoseconds part),
 * inode, device — `hearth_protocol::build_id::identity_hash`.
 */
export function identityHash(size: bigint, mtimeSec: bigint, mtimeNsec: bigint, ino: bigint, dev: bigint): string {
  const mask = (1n << 64n) - 1n;
  let h = 0xcbf29ce484222325n;
  for (const w of [size, mtimeSec, mtimeNsec, ino, dev]) {
    let word = BigInt.asUintN(64, w);
    for (let i = 0; i < 8; i++) {
      h ^= word & 0xffn;
      h = (h * 0x100000001b3n) & mask;
      word >>= 8n;
    }
  }
  return h.toString(16).padStart(16, "0");
}

/** The hash part of a build id for the executable at `file` (one `stat`). Throws if it cannot be inspected. */
export function fileHash(file: string): string {
  const st = fs.statSync(file, { bigint: true });
  // Whole seconds rounded down and a non-negative nanoseconds part, as Rust's `mtime()` and
  // `mtime_nsec()` (BigInt division truncates towards zero).
  let sec = st.mtimeNs / 1_000_000_000n;
  let nsec = st.mtimeNs % 1_000_000_000n;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += 1_000_000_000n;
  }
  return identityHash(st.size, sec, nsec, st.ino, st.dev);
}

/**
 * What a client expects of a daemon started from `daemon`: `override` (`$HEARTH_BUILD_ID`)
 * when given and not empty, else its {@link fileHash}; undefined when it cannot be inspected.
 */
export function expectedBuildId(daemon: string, override?: string): string | undefined {
  if (override) return override;
  try {
    return fileHash(daemon);
  } catch {
    return undefined;
  }
}

/** Whether a daemon announcing `announced` is the build `expected`: equal, or its part after the last `+` is. */
export function buildIdMatches(announced: string, expected: string): boolean {
  if (announced === expected) return true;
  const plus = announced.lastIndexOf("+");
  return plus >= 0 && announced.slice(plus + 1) === expected;
}

/**
 * The daemon binary to start: `$HEARTHD` if set and not empty, else the first `hearthd` on
 * `PATH` (an editor client has no folder of its own to look in). Throws a
 * {@link StartError} "not_found" that says what to do.
 */
export function findDaemon(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env[DAEMON_ENV];
  if (explicit) return explicit;
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, "hearthd");
    try {
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      /* not here */
    }
  }
  return fail(
    "not_found",
    `no hearthd to start: $${DAEMON_ENV} is not set and there is no hearthd on PATH; ` +
      `install hearthd (cargo install --path daemon), set ${DAEMON_ENV}=/path/to/hearthd, or pass the daemon option`,
  );
}

/** `hearthd.log` in the socket's folder: where a started daemon's output goes. */
export function logPath(socket: string): string {
  return path.join(path.dirname(socket), "hearthd.log");
}

function fail(kind: StartErrorKind, message: string, details: StartError["details"] = {}): never {
  throw new StartError(kind, message, details);
}

/** Whether a connect error means nothing serves the socket (so starting one may help). */
function nothingAnswers(e: unknown, socket: string): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT") return true;
  if (code !== "ECONNREFUSED") return false;
  // Linux refuses a connect to a file that is not a socket the same way: report that as it is.
  try {
    return fs.lstatSync(socket).isSocket();
  } catch {
    return true; // gone meanwhile
  }
}

// In-process start lock: one start per socket at a time within this process.
const turns = new Map<string, Promise<void>>();

async function withTurn<T>(socket: string, fn: () => Promise<T>): Promise<T> {
  const before = turns.get(socket) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const chained = before.then(() => mine);
  turns.set(socket, chained);
  await before;
  try {
    return await fn();
  } finally {
    release();
    if (turns.get(socket) === chained) turns.delete(socket);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Whether something accepts connections on `socket` right now. */
function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(socket);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Connects to hearthd like {@link connect} and, when nothing answers on the socket, starts
 * one and connects to it; a running hearthd of another build is replaced (see the module
 * docs). With `start: false` or `HEARTH_NO_START=1` it is exactly {@link connect}.
 *
 * Errors: those of {@link connect} for anything but "nothing answers" (EACCES, a file that is
 * not a socket, a refused handshake), else a {@link StartError}.
 */
export async function connectOrStart(opts: StartOptions = {}): Promise<Client> {
  const env = opts.env ?? process.env;
  const socket = opts.path ?? socketPath(env);
  if (opts.start === false || env[NO_START_ENV] === "1") return connect({ ...opts, path: socket });
  const starter = new Starter(socket, { ...opts, path: socket }, env);
  const attempt = async (): Promise<Client | undefined> => {
    try {
      const c = await connect(starter.opts);
      if (!starter.isStale(c)) return c;
      starter.stale = c;
    } catch (e) {
      if (!nothingAnswers(e, socket)) throw e;
    }
    return undefined;
  };
  const first = await attempt();
  if (first) return first;
  await starter.stale?.close();
  starter.stale = undefined;
  return withTurn(socket, async () => {
    // Another client may have started or replaced the daemon while we waited for our turn.
    const again = await attempt();
    if (again) return again;
    if (starter.stale) await starter.replace(starter.stale);
    starter.spawn();
    return starter.waitReady();
  });
}

/** One attempt to start a daemon for one socket. */
class Starter {
  stale?: Client;
  private daemonPath?: string;
  private expectedId?: string | null; // null: computed, none
  private exit?: string;
  private spawnError?: Error;
  private logStart = 0;
  private replaced = false;
  readonly readyTimeout: number;
  readonly replaceStale: boolean;

  constructor(
    readonly socket: string,
    readonly opts: StartOptions & { path: string },
    readonly env: NodeJS.ProcessEnv,
  ) {
    this.readyTimeout = opts.readyTimeout ?? 10_000;
    this.replaceStale = opts.replaceStale ?? env[NO_REPLACE_ENV] !== "1";
  }

  /** The binary to start, found once (throws "not_found" only when one is needed). */
  get daemon(): string {
    return (this.daemonPath ??= this.opts.daemon ?? findDaemon(this.env));
  }

  /** The build id the daemon we would start announces; undefined when unknown. */
  get expected(): string | undefined {
    if (this.expectedId === undefined) {
      const override = this.opts.buildId ?? (this.env[BUILD_ID_ENV] || undefined);
      let daemon: string | undefined;
      try {
        daemon = override ? undefined : this.daemon;
      } catch {
        daemon = undefined; // no binary to start: nothing to compare against, keep the daemon
      }
      this.expectedId = override ?? (daemon ? expectedBuildId(daemon) : undefined) ?? null;
    }
    return this.expectedId ?? undefined;
  }

  get log(): string {
    return logPath(this.socket);
  }

  /** Whether `c`'s daemon is a hearthd of another build that we may replace (§9.1). */
  isStale(c: Client): boolean {
    // Never over a version 1 connection (§9.1): its hello has no build id to judge by.
    if (!this.replaceStale || c.version < 2 || !c.hello.server.startsWith("hearthd ")) return false;
    const expected = this.expected;
    if (expected === undefined) return false;
    const found = c.hello.buildId;
    // A hearthd from before build ids is older than this client.
    if (found === undefined) return true;
    return !buildIdMatches(found, expected);
  }

  /** Asks a daemon of another build to shut down, and waits until nothing answers and its lock file is gone. */
  async replace(stale: Client): Promise<void> {
    const found = stale.hello.buildId ?? "none";
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.readyTimeout);
    // The answer may or may not arrive before the connection closes.
    await stale.call("shutdown", null, { signal: ac.signal }).catch(() => {});
    clearTimeout(timer);
    await stale.close();
    this.replaced = true;
    const lock = `${this.socket}.lock`;
    const giveUp = Date.now() + this.readyTimeout;
    for (;;) {
      const up = await answers(this.socket);
      if (!up && !fs.existsSync(lock)) return;
      if (Date.now() >= giveUp) {
        // Not answering is what matters; a lock file left behind is the new daemon's to judge.
        if (!up) return;
        fail(
          "stale_stays",
          `the daemon on ${this.socket} (build ${found}) did not shut down within ${this.readyTimeout} ms ` +
            `to be replaced by build ${this.expected}; stop it, or set ${NO_REPLACE_ENV}=1 to keep it`,
          { socket: this.socket },
        );
      }
      await sleep(20);
    }
  }

  /** Checks (creating it owner-only if missing) the socket's folder as hearthd would. */
  private checkFolder(): void {
    const dir = path.dirname(this.socket);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
        fail("file", `cannot inspect the socket folder ${dir}: ${(e as Error).message}`, { path: dir });
      }
      try {
        fs.mkdirSync(dir, { mode: 0o700 }); // only the last component, as hearthd does
        fs.chmodSync(dir, 0o700); // ours, just made: set exactly what the umask filtered
      } catch (e2) {
        if ((e2 as NodeJS.ErrnoException).code !== "EEXIST") {
          fail("file", `cannot create the socket folder ${dir}: ${(e2 as Error).message}`, { path: dir });
        }
      }
      st = fs.lstatSync(dir);
    }
    // The daemon's rule and advice (hearth_transport::folder): never change that folder.
    const uid = process.geteuid?.() ?? st.uid;
    const refuse = (problem: string, fix: string) =>
      fail("unsafe_folder", `hearthd would refuse the socket folder ${dir}: ${problem}; ${fix}`, { path: dir });
    const elsewhere = "(HEARTH_SOCKET or the path option)";
    if (st.isSymbolicLink()) refuse("it is a symbolic link", `remove the link (rm ${dir}) or choose another path ${elsewhere}`);
    if (!st.isDirectory()) refuse("it is not a folder", `choose another path ${elsewhere}`);
    if (st.uid !== uid) refuse(`it is owned by uid ${st.uid}, not by you (uid ${uid})`, `choose a folder of your own ${elsewhere}`);
    const mode = st.mode & 0o777;
    if (mode & 0o077) {
      const sub = path.join(dir, `hearth-${uid}`, path.basename(this.socket));
      refuse(
        `other users have access to it (mode ${mode.toString(8)})`,
        `use a folder of its own, which hearthd creates owner-only: HEARTH_SOCKET=${sub} (or the path option)`,
      );
    }
  }

  /** Starts the daemon detached: its own session, no stdin, output appended to the log. */
  spawn(): void {
    const daemon = this.daemon;
    this.checkFolder();
    let fd: number;
    try {
      fd = fs.openSync(this.log, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
      this.logStart = fs.fstatSync(fd).size;
    } catch (e) {
      fail("file", `cannot open the daemon log ${this.log}: ${(e as Error).message}`, { path: this.log });
    }
    const env: NodeJS.ProcessEnv = { ...this.env };
    delete env.LISTEN_FDS;
    delete env.LISTEN_PID;
    if (this.opts.buildId !== undefined) env[BUILD_ID_ENV] = this.opts.buildId;
    const idle = this.opts.idleExit === undefined ? DEFAULT_IDLE_EXIT : this.opts.idleExit;
    const args = ["--socket", this.socket, ...(idle === null ? [] : ["--idle-exit", idle]), ...(this.opts.args ?? [])];
    this.exit = undefined;
    this.spawnError = undefined;
    try {
      const child = spawn(daemon, args, { detached: true, stdio: ["ignore", fd, fd], env });
      child.once("error", (e) => (this.spawnError = e));
      child.once("exit", (code, signal) => (this.exit = signal ? `signal ${signal}` : `exit status ${code}`));
      child.unref();
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Waits (2 ms doubling to 50 ms) for the started daemon, or the one that won a race, to answer. */
  async waitReady(): Promise<Client> {
    const started = Date.now();
    let pause = 2;
    for (;;) {
      try {
        return await connect(this.opts);
      } catch (e) {
        if (!nothingAnswers(e, this.socket)) throw e;
      }
      if (this.spawnError) {
        fail("spawn", `cannot run ${this.daemon}: ${this.spawnError.message}; install hearthd or set ${DAEMON_ENV}`, { path: this.daemon });
      }
      if (this.exit !== undefined) {
        // A daemon that lost a race to another exits "already running": the winner answers
        // soon. Anything else is a failure to report.
        const since = this.readLog(this.logStart);
        if (!since.includes("already running")) {
          const tail = lastLines(this.readLog(0));
          fail(
            "exited",
            `hearthd exited (${this.exit}) before answering on ${this.socket}; its log (${this.log}) ends: ${tail}`,
            { socket: this.socket, log: this.log, status: this.exit, tail },
          );
        }
        if (this.replaced && !fs.existsSync(this.socket)) {
          // It lost to the replaced daemon's last moments (its lock not yet gone): try again.
          this.spawn();
        }
      }
      if (Date.now() - started >= this.readyTimeout) {
        fail("not_ready", `no daemon answered on ${this.socket} within ${this.readyTimeout} ms; see ${this.log}`, {
          socket: this.socket,
          log: this.log,
        });
      }
      await sleep(pause);
      pause = Math.min(pause * 2, 50);
    }
  }

  private readLog(from: number): string {
    try {
      const buf = fs.readFileSync(this.log);
      return buf.subarray(Math.min(from, buf.length)).toString("utf8");
    } catch {
      return "";
    }
  }
}

/** The last few lines of a log, on one line. */
function lastLines(text: string): string {
  const lines = text.split("\n").filter((l) => l.trim() !== "").slice(-3);
  return lines.length ? lines.join(" | ") : "(empty)";
}
