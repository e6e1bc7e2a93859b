/**
 * The wire layer of the Node client: the socket path rule, framing, envelopes, no I/O.
 *
 * It owns the default socket path (docs/PROTOCOL.md §3.1), the {@link FrameReader} that cuts
 * length-prefixed frames out of one growable buffer (checking each header against `maxFrame`
 * before buffering the body, §4, and decoding each body from a subarray, never a copy), the
 * envelope decoder for everything a daemon sends (§6, §15.1, and `$/fatal` of any version, §9),
 * and the encoders for what a client sends. The connection itself lives in `client.ts`; the
 * conformance tests drive this module directly.
 */

import { Decoder, Encoder } from "@msgpack/msgpack";
import * as os from "node:os";
import * as path from "node:path";

import { FrameError } from "./errors";

/** The default frame limit before `$/hello` announces one: 8 MiB. */
export const DEFAULT_MAX_FRAME = 8 * 1024 * 1024;

export const Kind = { Request: 0, Response: 1, Notification: 2, Cancel: 3, Partial: 4 } as const;

/** A request id: a number, or a bigint when it is beyond 2^53 - 1. */
export type Id = number | bigint;

/** The daemon's socket path by the rule of §3.1. */
export function socketPath(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.HEARTH_SOCKET;
  if (explicit) return explicit;
  const xdg = env.XDG_RUNTIME_DIR ?? "";
  if (xdg.startsWith("/")) return path.join(xdg, "hearth", "hearthd.sock");
  return `/tmp/hearth-${os.userInfo().uid}/hearthd.sock`;
}

// One decoder and one encoder per process: they keep their own scratch buffers, so a frame
// costs no decoder allocation. 64-bit integers decode as bigint so no id loses precision.
const decoder = new Decoder({ useBigInt64: true });
const encoder = new Encoder({ useBigInt64: true, ignoreUndefined: false });

/** Decodes exactly one MessagePack value; trailing bytes are an error. */
export function unpack(body: Uint8Array): unknown {
  return decoder.decode(body);
}

/**
 * Cuts frames out of a byte stream that arrives in pieces of any size.
 *
 * One `Buffer` holds the unread bytes between `start` and `end`; it is compacted in place and
 * grows (doubling, up to what the largest frame needs) only when a frame does not fit. A chunk
 * that arrives while nothing is buffered is decoded in place, without copying; only its
 * incomplete tail is kept.
 */
export class FrameReader {
  private buf: Buffer;
  private start = 0;
  private end = 0;

  constructor(public maxFrame: number = DEFAULT_MAX_FRAME, initial = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  /** Bytes held and not yet consumed. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** The size of the one internal buffer (for tests: it must not grow per frame). */
  get capacity(): number {
    return this.buf.length;
  }

  /**
   * Appends `chunk` and calls `onBody` with each whole frame body, a view into the reader's
   * buffer (or into `chunk`) valid only during the call. Throws {@link FrameError} for a zero
   * or oversize header as soon as its four bytes are present.
   */
  feed(chunk: Uint8Array, onBody: (body: Uint8Array) => void): void {
    if (this.start === this.end) {
      // Nothing buffered: frame straight out of the chunk, keep only its incomplete tail.
      const pos = this.scan(chunk, 0, chunk.length, onBody);
      this.start = this.end = 0;
      if (pos < chunk.length) this.append(chunk.subarray(pos));
      return;
    }
    this.append(chunk);
    this.start = this.scan(this.buf, this.start, this.end, onBody);
    if (this.start === this.end) this.start = this.end = 0;
  }

  /** Decodes whole frames of `b[from, to)`; returns where the first incomplete one starts. */
  private scan(b: Uint8Array, from: number, to: number, onBody: (body: Uint8Array) => void): number {
    let p = from;
    while (to - p >= 4) {
      const n = ((b[p] << 24) >>> 0) + (b[p + 1] << 16) + (b[p + 2] << 8) + b[p + 3];
      if (n === 0) throw new FrameError("empty_frame", "frame header announced 0 bytes");
      if (n > this.maxFrame) {
        throw new FrameError("frame_too_large", `frame of ${n} bytes announced, above max_frame ${this.maxFrame}`);
      }
      if (to - p < 4 + n) break;
      const body = b.subarray(p + 4, p + 4 + n);
      p += 4 + n;
      onBody(body);
    }
    return p;
  }

  private append(bytes: Uint8Array): void {
    if (this.end + bytes.length > this.buf.length) {
      const live = this.end - this.start;
      if (live + bytes.length <= this.buf.length) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        let size = this.buf.length;
        while (size < live + bytes.length) size *= 2;
        const grown = Buffer.allocUnsafe(size);
        this.buf.copy(grown, 0, this.start, this.end);
        this.buf = grown;
      }
      this.start = 0;
      this.end = live;
    }
    this.buf.set(bytes, this.end);
    this.end += bytes.length;
  }
}

/** The error half of a response. */
export interface WireError {
  code: number | bigint;
  message: string;
  data?: unknown;
}

/** Options of a version 2 request, as decoded (defaults filled in). */
export interface WireOptions {
  deadline_ms: number | null;
  supersede: string | null;
  stream: boolean;
}

export type Envelope =
  | { version: number; kind: 0; id: Id; method: string; params: unknown; opts: WireOptions | null }
  | { version: number; kind: 1; id: Id; error: WireError | null; result: unknown }
  | { version: number; kind: 2; method: string; params: unknown }
  | { version: number; kind: 3; id: Id }
  | { version: number; kind: 4; id: Id; seq: Id; chunk: unknown };

/** Thrown for a well-framed body that is not an envelope we can use. */
export class EnvelopeError extends Error {}

function uint(v: unknown): Id | undefined {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === "bigint" && v >= 0n) return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  return undefined;
}

function int(v: unknown): number | bigint | undefined {
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "bigint") {
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
  }
  return undefined;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

const LENGTHS: Record<number, number[]> = { 0: [5, 6], 1: [5], 2: [4], 3: [3], 4: [5] };

/**
 * Classifies one decoded body. `$/fatal` is recognised in an envelope of any version (its
 * shape is frozen, §9); anything else must be version 1 or 2.
 */
export function decodeEnvelope(v: unknown): Envelope {
  if (!Array.isArray(v) || v.length < 3) throw new EnvelopeError("a message is an array of at least 3 elements");
  const version = uint(v[0]);
  const kind = uint(v[1]);
  if (version === undefined || kind === undefined) throw new EnvelopeError("version and kind must be unsigned integers");
  const ver = Number(version);
  if (ver !== 1 && ver !== 2) {
    if (kind === 2 && v.length === 4 && v[2] === "$/fatal") return { version: ver, kind: 2, method: "$/fatal", params: v[3] };
    throw new EnvelopeError(`unsupported protocol version ${version}`);
  }
  const lens = LENGTHS[Number(kind)];
  if (!lens || (kind === 4 && ver < 2)) throw new EnvelopeError(`unknown kind ${kind} in version ${ver}`);
  if (!lens.includes(v.length) || (kind === 0 && v.length === 6 && ver < 2)) {
    throw new EnvelopeError(`wrong element count ${v.length} for kind ${kind}`);
  }
  if (kind === 2) {
    if (typeof v[2] !== "string") throw new EnvelopeError("method must be a string");
    return { version: ver, kind: 2, method: v[2], params: v[3] };
  }
  const id = uint(v[2]);
  if (id === undefined) throw new EnvelopeError("id must be an unsigned integer");
  switch (kind) {
    case 3:
      return { version: ver, kind: 3, id };
    case 0: {
      if (typeof v[3] !== "string") throw new EnvelopeError("method must be a string");
      let opts: WireOptions | null = null;
      if (v.length === 6) {
        if (!isMap(v[5])) throw new EnvelopeError("opts must be a map");
        const o = v[5];
        opts = {
          deadline_ms: o.deadline_ms === undefined ? null : Number(o.deadline_ms),
          supersede: o.supersede === undefined ? null : String(o.supersede),
          stream: o.stream === true,
        };
      }
      return { version: ver, kind: 0, id, method: v[3], params: v[4], opts };
    }
    case 4: {
      const seq = uint(v[3]);
      if (seq === undefined) throw new EnvelopeError("seq must be an unsigned integer");
      return { version: ver, kind: 4, id, seq, chunk: v[4] };
    }
    default: {
      const e = v[3];
      if (e === null || e === undefined) return { version: ver, kind: 1, id, error: null, result: v[4] };
      if (!isMap(e)) throw new EnvelopeError("error must be nil or a map");
      const code = int(e.code);
      if (code === undefined || typeof e.message !== "string") {
        throw new EnvelopeError("error map needs an integer code and a string message");
      }
      const error: WireError = { code, message: e.message };
      if ("data" in e) error.data = e.data;
      return { version: ver, kind: 1, id, error, result: null };
    }
  }
}

function frame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

export function encodeRequest(version: number, id: Id, method: string, params: unknown, opts?: Record<string, unknown>): Buffer {
  const env: unknown[] = [version, 0, id, method, params ?? null];
  if (opts && Object.keys(opts).length > 0) env.push(opts);
  return frame(encoder.encode(env));
}

export function encodeResponse(version: number, id: Id, error: WireError | null, result: unknown): Buffer {
  return frame(encoder.encode([version, 1, id, error, error ? null : (result ?? null)]));
}

export function encodeNotification(version: number, method: string, params: unknown): Buffer {
  return frame(encoder.encode([version, 2, method, params ?? null]));
}

export function encodeCancel(version: number, id: Id): Buffer {
  return frame(encoder.encode([version, 3, id]));
}

/** The `$/hello` result (§9.1), with the documented defaults for missing keys. */
export interface Hello {
  protocol: number;
  server: string;
  build: string;
  /** Which build of the daemon this is (§9.1 `build_id`); absent from older daemons. */
  buildId?: string;
  methods: string[];
  maxFrame: number;
  maxInFlight: number;
  maxConnections: number;
  maxDepth: number;
  supported: number[];
  raw: Record<string, unknown>;
}

export function parseHello(r: unknown): Hello {
  if (!isMap(r)) throw new EnvelopeError("$/hello result must be a map");
  const limits = isMap(r.limits) ? r.limits : {};
  const num = (v: unknown, d: number) => (v === undefined || v === null ? d : Number(v));
  return {
    protocol: num(r.protocol, 1),
    server: String(r.server ?? ""),
    build: String(r.build ?? ""),
    buildId: typeof r.build_id === "string" ? r.build_id : undefined,
    methods: Array.isArray(r.methods) ? r.methods.map(String) : [],
    maxFrame: num(limits.max_frame, DEFAULT_MAX_FRAME),
    maxInFlight: num(limits.max_in_flight, 1024),
    maxConnections: num(limits.max_connections, 0),
    maxDepth: num(limits.max_depth, 0),
    supported: Array.isArray(r.supported) ? r.supported.map(Number) : [],
    raw: r,
  };
}
