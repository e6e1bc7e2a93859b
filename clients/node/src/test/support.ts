/**
 * Test support for the Node suites: a real hearthd on a temporary socket, a scripted fake
 * daemon, the conformance-vector loaders and value normalisation. It owns no assertions about
 * the client; the `*.test.ts` files do.
 *
 * hearthd comes from `HEARTHD` (default `../../target/debug/hearthd`, relative to
 * clients/node). Each daemon gets a fresh 0700 folder under the OS temp dir and is killed when
 * the test ends; no default socket is ever touched. Waits are on events (the daemon's "ready"
 * log line, a socket connection); timeouts are failure guards only.
 */

import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

import { Encoder } from "@msgpack/msgpack";

import { FrameReader, decodeEnvelope, unpack, type Envelope } from "../wire";

export const REPO = path.resolve(__dirname, "..", "..", "..", "..");
export const CONFORMANCE = path.join(REPO, "conformance");
export const HEARTHD = path.resolve(process.env.HEARTHD ?? path.join(REPO, "target", "debug", "hearthd"));

export function loadJson(name: string): any {
  return JSON.parse(fs.readFileSync(path.join(CONFORMANCE, name), "utf8"));
}

export function hexBytes(hex: string): Buffer {
  return Buffer.from(hex.replace(/\s+/g, ""), "hex");
}

/** Rejects after `ms` with `what` — a guard against a hang, never a synchronisation. */
export function guard<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms))),
  ]);
}

export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hearth-node-"));
  fs.chmodSync(dir, 0o700);
  return dir;
}

export interface Daemon {
  socket: string;
  proc: ChildProcess;
  kill(): Promise<void>;
}

/** Starts hearthd on a fresh socket and resolves once it logs that it is ready. */
export async function spawnDaemon(args: string[] = []): Promise<Daemon> {
  const dir = tempDir();
  const socket = path.join(dir, "hearthd.sock");
  const proc = spawn(HEARTHD, ["--socket", socket, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: "info" },
  });
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  let log = "";
  const ready = guard(
    new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        log += d.toString();
        if (log.includes("ready on")) resolve();
      };
      proc.stdout!.on("data", onData);
      proc.stderr!.on("data", onData);
      proc.once("error", reject);
      proc.once("exit", (code) => reject(new Error(`hearthd exited (${code}) before ready:\n${log}`)));
    }),
    20000,
    `hearthd ready (${HEARTHD})`,
  );
  try {
    await ready;
  } catch (e) {
    // No daemon for the test: leave nothing behind either.
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) proc.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    socket,
    proc,
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Turns decoded MessagePack into plain JSON-comparable data (bigint to number or string). */
export function norm(v: unknown): unknown {
  if (typeof v === "bigint") return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString();
  if (Array.isArray(v)) return v.map(norm);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), norm(x)]));
  if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
  }
  return v;
}

const KINDS = ["request", "response", "notification", "cancel", "partial"];

/** An envelope in the vectors' "expect" shape (see conformance/README.md). */
export function meaning(env: Envelope): Record<string, unknown> {
  const m: Record<string, unknown> = { version: env.version, kind: KINDS[env.kind] };
  switch (env.kind) {
    case 0:
      Object.assign(m, { id: String(env.id), method: env.method, params: norm(env.params) });
      if (env.opts) m.opts = { ...env.opts };
      break;
    case 1:
      m.id = String(env.id);
      m.error = env.error ? norm(env.error) : null;
      m.result = norm(env.result);
      break;
    case 2:
      Object.assign(m, { method: env.method, params: norm(env.params) });
      break;
    case 3:
      m.id = String(env.id);
      break;
    case 4:
      Object.assign(m, { id: String(env.id), seq: norm(env.seq), chunk: norm(env.chunk) });
      break;
  }
  return m;
}

/** The frames of a stream fed in the given chunks, as meanings. */
export function readStream(chunks: Buffer[], maxFrame?: number): Record<string, unknown>[] {
  const reader = new FrameReader(maxFrame);
  const out: Record<string, unknown>[] = [];
  for (const c of chunks) {
    reader.feed(c, (body) => {
      let m: Record<string, unknown>;
      try {
        m = meaning(decodeEnvelope(unpack(body)));
      } catch {
        m = { rejected: true }; // a bad body: dropped, and the reader stays in step
      }
      out.push(m);
    });
  }
  if (reader.buffered !== 0) throw new Error(`${reader.buffered} bytes left over`);
  return out;
}

/** Splits `bytes` at the given points. */
export function splitAt(bytes: Buffer, points: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

/** Every chunking a stream vector's "feeds" entry asks for. */
export function* feeds(bytes: Buffer, spec: unknown): Generator<Buffer[]> {
  const n = bytes.length;
  if (spec === "whole") yield [bytes];
  else if (spec === "bytewise") yield [...bytes].map((b) => Buffer.from([b]));
  else if (spec === "every_single_split") for (let i = 1; i < n; i++) yield splitAt(bytes, [i]);
  else if (spec === "every_double_split") {
    for (let i = 1; i < n; i++) for (let j = i + 1; j < n; j++) yield splitAt(bytes, [i, j]);
  } else if (Array.isArray(spec)) yield splitAt(bytes, spec as number[]);
  else throw new Error(`unknown feed ${JSON.stringify(spec)}`);
}

// ------------------------------------------------------------------ scripted peer

const enc = new Encoder({ useBigInt64: true });

function frame(v: unknown): Buffer {
  const body = enc.encode(v);
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

/** Does `got` contain everything `want` names? (maps: subset; everything else: equal) */
export function matches(got: unknown, want: unknown): boolean {
  if (want && typeof want === "object" && !Array.isArray(want)) {
    if (!got || typeof got !== "object" || Array.isArray(got)) return false;
    return Object.entries(want).every(([k, w]) => matches((got as any)[k], w));
  }
  return JSON.stringify(got) === JSON.stringify(want);
}

/** A fake daemon on a temporary socket that plays a scenario's "script". */
export class ScriptedPeer {
  readonly socket: string;
  private readonly dir: string;
  private readonly server: net.Server;
  private readonly conns: net.Socket[] = [];
  private readonly connWaiters: Array<(s: net.Socket) => void> = [];

  constructor() {
    this.dir = tempDir();
    this.socket = path.join(this.dir, "hearthd.sock");
    this.server = net.createServer((s) => {
      const w = this.connWaiters.shift();
      if (w) w(s);
      else this.conns.push(s);
    });
  }

  listen(): Promise<void> {
    return new Promise((r) => this.server.listen(this.socket, () => r()));
  }

  private accept(): Promise<net.Socket> {
    const s = this.conns.shift();
    return s ? Promise.resolve(s) : new Promise((r) => this.connWaiters.push(r));
  }

  /** Runs the script; rejects with what went wrong. */
  async run(script: any[]): Promise<void> {
    const bound: Record<string, unknown> = {};
    const subst = (v: unknown): unknown =>
      typeof v === "string" && v.startsWith("$") && v.slice(1) in bound ? bound[v.slice(1)] : Array.isArray(v) ? v.map(subst) : v;
    let sock: net.Socket | undefined;
    let inbox: Envelope[] = [];
    let eof = false;
    let wake: (() => void) | undefined;
    const next = async (): Promise<Envelope | undefined> => {
      while (inbox.length === 0 && !eof) await new Promise<void>((r) => (wake = r));
      return inbox.shift();
    };
    for (const step of script) {
      switch (step.op) {
        case "accept": {
          sock = await this.accept();
          inbox = [];
          eof = false;
          const reader = new FrameReader();
          sock.on("data", (d) => {
            reader.feed(d, (b) => inbox.push(decodeEnvelope(unpack(b))));
            wake?.();
          });
          sock.on("close", () => {
            eof = true;
            wake?.();
          });
          sock.on("error", () => {});
          break;
        }
        case "recv": {
          const env = await next();
          if (!env) throw new Error(`peer: EOF while expecting ${JSON.stringify(step.expect)}`);
          const m = meaning(env) as any;
          const got = { ...m, id: m.id === undefined ? undefined : Number(m.id), error: m.error ? m.error.code : m.error };
          if (!matches(got, step.expect)) throw new Error(`peer: got ${JSON.stringify(m)}, expected ${JSON.stringify(step.expect)}`);
          if (step.bind) bound[step.bind] = (env as any).id;
          break;
        }
        case "recv_eof": {
          const env = await next();
          if (env) throw new Error(`peer: expected EOF, got ${JSON.stringify(meaning(env))}`);
          break;
        }
        case "send":
          sock!.write(frame(subst(step.msg)));
          break;
        case "send_batch":
          sock!.write(Buffer.concat(step.msgs.map((m: unknown) => frame(subst(m)))));
          break;
        case "send_hex":
          sock!.write(hexBytes(step.hex));
          break;
        case "close":
          sock!.end();
          sock!.destroySoon?.();
          break;
        default:
          throw new Error(`peer: unknown op ${step.op}`);
      }
    }
  }

  async stop(): Promise<void> {
    for (const s of this.conns) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ started daemons

/**
 * The pids of the live hearthd processes serving `socket` (their command line has
 * `--socket <socket>`), from /proc. Zombies have no command line and are not counted.
 */
export function daemonPids(socket: string): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
    } catch {
      continue; // gone meanwhile
    }
    const i = argv.indexOf("--socket");
    if (i >= 0 && argv[i + 1] === socket && path.basename(argv[0]).startsWith("hearthd")) pids.push(Number(name));
  }
  return pids;
}

/** SIGKILLs every hearthd serving `socket` and waits (bounded) until none is left. */
export async function killDaemons(socket: string): Promise<void> {
  const giveUp = Date.now() + 10000;
  for (;;) {
    const pids = daemonPids(socket);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    if (Date.now() > giveUp) throw new Error(`hearthd ${pids.join(", ")} on ${socket} would not die`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The environment without the variables that change how clients start daemons. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ["HEARTH_NO_START", "HEARTH_NO_REPLACE", "HEARTH_BUILD_ID", "HEARTH_SOCKET", "LISTEN_FDS", "LISTEN_PID"]) delete env[k];
  return { ...env, ...extra };
}
