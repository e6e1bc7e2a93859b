/**
 * The connection: one Unix socket to hearthd, many calls in flight on it.
 *
 * This module owns the connection's state: the table of calls in flight (id -> call), the
 * table of daemon requests being served (id -> AbortController), the dispatch of every frame
 * the {@link FrameReader} cuts, the `$/hello` handshake with the version 2 -> 1 fallback, the
 * local in-flight limit, and the failure of every pending call at once when the connection
 * ends. Bytes and envelopes are `wire.ts`'s business.
 *
 * Cancellation follows the platform idiom (an `AbortSignal` per call, `Disposable`s for
 * registrations), with vscode-jsonrpc's discipline: aborting rejects the call at once with the
 * signal's reason and sends `[v, 3, id]`, but the id stays in the table until the daemon's
 * answer arrives (the cancel may lose the race, §7.2), so the late answer is consumed.
 */

import * as net from "node:net";

import {
  Codes,
  ConnectionLostError,
  DeadlineExceededError,
  FrameError,
  HearthError,
  SupersededError,
} from "./errors";
import {
  FrameReader,
  Hello,
  Id,
  decodeEnvelope,
  encodeCancel,
  encodeNotification,
  encodeRequest,
  encodeResponse,
  parseHello,
  socketPath,
  unpack,
  type Envelope,
} from "./wire";

/** Per-call options. */
export interface CallOptions {
  /** Aborting rejects the call with the signal's reason and cancels it on the daemon. */
  signal?: AbortSignal;
  /** The daemon stops the call after this many milliseconds (-32002). */
  deadline?: number;
  /** A latest-wins key: a newer call with the same key supersedes this one (-32801). */
  supersede?: string;
}

/** What a daemon-request handler receives besides the params. */
export interface ServeContext {
  /** Aborted when the daemon cancels its request (or the connection ends). */
  signal: AbortSignal;
  id: Id;
}

export type Handler = (params: unknown, ctx: ServeContext) => unknown | Promise<unknown>;

export interface Disposable {
  dispose(): void;
}

export interface ConnectOptions {
  /** Socket path; default by the rule of §3.1. */
  path?: string;
  /** Name sent in `$/hello`. */
  client?: string;
  /** Version to speak first (default 2; falls back to 1 when the daemon refuses 2). */
  protocol?: 1 | 2;
  /** Gives up connecting (and the `$/hello` wait) when aborted. */
  signal?: AbortSignal;
}

interface Call {
  id: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  /** Settled towards the caller (answered, aborted, emulated deadline): later events drop. */
  settled: boolean;
  stream?: StreamState;
  timer?: NodeJS.Timeout;
  key?: string;
  unlisten?: () => void;
}

interface StreamState {
  chunks: unknown[];
  wake?: () => void;
  done: boolean;
  nextSeq: number;
  dropped: number;
}

/** A streamed call: iterate for the partial results; `result` resolves to the final one. */
export interface CallStream extends AsyncIterable<unknown> {
  readonly result: Promise<unknown>;
  /** Chunks the daemon dropped so far (gaps in `seq`, §15.1). */
  readonly dropped: number;
  /** Stops the call (sends a cancel) if it is still running. */
  cancel(): void;
}

/** A connection to hearthd. Make one with {@link connect}. */
export class Client {
  hello!: Hello;
  /** The `$/fatal` the daemon sent, if any. */
  fatal?: { code: number; message: string; supported: number[] };
  /** Resolves with the reason once the connection has ended. */
  readonly closed: Promise<ConnectionLostError>;

  private readonly reader = new FrameReader();
  private nextId = 1;
  private readonly pending = new Map<number, Call>();
  private readonly served = new Map<Id, AbortController>();
  private readonly handlers = new Map<string, Handler>();
  private readonly listeners = new Map<string | null, Set<(...a: unknown[]) => void>>();
  private readonly keys = new Map<string, number>(); // version 1 only: supersede emulated here
  private limit = 1023;
  private readonly waiting: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];
  private lost?: ConnectionLostError;
  private resolveClosed!: (e: ConnectionLostError) => void;

  private constructor(
    private readonly sock: net.Socket,
    readonly version: number,
    readonly path: string,
  ) {
    this.closed = new Promise((r) => (this.resolveClosed = r));
    sock.on("data", (chunk: Buffer) => this.onData(chunk));
    sock.on("error", (e) => this.failAll(`connection to hearthd failed: ${e.message}`));
    sock.on("close", () =>
      this.failAll(this.reader.buffered ? "hearthd closed the connection in the middle of a frame" : "hearthd closed the connection"),
    );
  }

  /** @internal */
  static open(path: string, version: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(path);
      sock.once("error", (e: NodeJS.ErrnoException) => {
        // ENOENT, ECONNREFUSED: no daemon there (§12.1). Keep the code; say where we looked.
        e.message = `cannot connect to hearthd at ${path}: ${e.message}`;
        reject(e);
      });
      sock.once("connect", () => {
        sock.removeAllListeners("error");
        resolve(new Client(sock, version, path));
      });
    });
  }

  /** Calls `method`; resolves with its result or rejects with a {@link HearthError}. */
  call<T = unknown>(method: string, params?: unknown, opts: CallOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      this.start(method, params, opts, resolve as (v: unknown) => void, reject, undefined),
    );
  }

  /** A streamed call (`"stream": true`); see {@link CallStream}. */
  stream(method: string, params?: unknown, opts: CallOptions = {}): CallStream {
    const st: StreamState = { chunks: [], done: false, nextSeq: 0, dropped: 0 };
    let call: Call | undefined;
    const result = new Promise<unknown>((resolve, reject) => {
      this.start(method, params, opts, resolve, reject, st, (c) => (call = c));
    });
    result.catch(() => {}); // the iterator rethrows it; an unread result is not "unhandled"
    const finish = () => {
      st.done = true;
      st.wake?.();
    };
    result.then(finish, finish);
    const self = this;
    return {
      result,
      get dropped() {
        return st.dropped;
      },
      cancel() {
        if (call && !call.settled) self.abandon(call, new HearthError(Codes.RequestCancelled, "cancelled by the caller"));
      },
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            while (st.chunks.length > 0) yield st.chunks.shift();
            if (st.done) break;
            await new Promise<void>((r) => (st.wake = r));
            st.wake = undefined;
          }
          await result; // throws the error answer, if any
        } finally {
          if (call && !call.settled) self.abandon(call, new HearthError(Codes.RequestCancelled, "stream closed by the caller"));
        }
      },
    };
  }

  /** Sends a notification (never answered). */
  notify(method: string, params?: unknown): void {
    this.checkOpen();
    this.sock.write(encodeNotification(this.version, method, params));
  }

  /**
   * Answers daemon requests for `method` (version 2). The handler's value is the result; a
   * thrown {@link HearthError} is answered as that error, anything else as -32603.
   */
  serve(method: string, handler: Handler): Disposable {
    this.handlers.set(method, handler);
    return { dispose: () => void (this.handlers.get(method) === handler && this.handlers.delete(method)) };
  }

  /**
   * Calls `fn(params)` for each notification `method` from the daemon, or
   * `fn(method, params)` for every notification when `method` is null.
   */
  onNotification(method: string | null, fn: (...args: any[]) => void): Disposable {
    let set = this.listeners.get(method);
    if (!set) this.listeners.set(method, (set = new Set()));
    set.add(fn);
    return { dispose: () => void set!.delete(fn) };
  }

  /** Calls sent and not yet answered (aborted ones included until their late answer). */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Resolves when no call is in flight, late answers to aborted calls included. */
  idle(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  get isClosed(): boolean {
    return this.lost !== undefined;
  }

  /** Closes the connection; pending calls reject with {@link ConnectionLostError}. */
  async close(): Promise<void> {
    if (!this.lost) {
      this.failAll("the client closed the connection");
    }
    await this.closed;
  }

  // ---------------------------------------------------------------- internals

  private checkOpen(): void {
    if (this.lost) throw new ConnectionLostError(this.lost.reason, this.lost.fatal);
  }

  private start(
    method: string,
    params: unknown,
    opts: CallOptions,
    resolve: (v: unknown) => void,
    reject: (e: unknown) => void,
    stream: StreamState | undefined,
    started?: (call: Call) => void,
  ): void {
    if (this.lost) {
      reject(new ConnectionLostError(this.lost.reason, this.lost.fatal));
      return;
    }
    if (opts.signal?.aborted) {
      reject(opts.signal.reason);
      return;
    }
    if (this.pending.size >= this.limit) {
      // Stay below max_in_flight so the daemon keeps reading our cancels (§7.4).
      // A caller that aborts while queued is rejected when its turn comes (signal checked
      // above), without sending anything.
      const signal = opts.signal;
      let unlisten = () => {};
      const go = () => {
        unlisten();
        this.start(method, params, opts, resolve, reject, stream, started);
      };
      this.waiting.push(go);
      if (signal) {
        // Aborted while queued: leave the queue and reject at once; nothing was sent.
        const onAbort = () => {
          const i = this.waiting.indexOf(go);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener("abort", onAbort, { once: true });
        unlisten = () => signal.removeEventListener("abort", onAbort);
      }
      return;
    }
    const id = this.nextId;
    // Encode before anything is registered, so a value that cannot be sent fails only this
    // call. A client MUST NOT send a frame above the daemon's max_frame (§4).
    let frame: Buffer;
    try {
      frame = encodeRequest(this.version, id, method, params, this.wireOptions(opts, stream));
    } catch (e) {
      reject(e);
      return;
    }
    if (frame.length - 4 > this.reader.maxFrame) {
      reject(new HearthError(Codes.FrameTooLarge, `request of ${frame.length - 4} bytes is above max_frame ${this.reader.maxFrame}`));
      return;
    }
    this.nextId++;
    const call: Call = { id, resolve, reject, settled: false, stream };
    if (this.version < 2) {
      if (opts.supersede !== undefined) {
        const older = this.pending.get(this.keys.get(opts.supersede) ?? -1);
        if (older) this.abandon(older, new SupersededError("superseded"));
        this.keys.set(opts.supersede, id);
        call.key = opts.supersede;
      }
      if (opts.deadline !== undefined) {
        call.timer = setTimeout(() => this.abandon(call, new DeadlineExceededError("deadline exceeded")), Math.max(0, opts.deadline));
      }
    }
    if (opts.signal) {
      const signal = opts.signal;
      const onAbort = () => this.abandon(call, signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      call.unlisten = () => signal.removeEventListener("abort", onAbort);
    }
    this.pending.set(id, call);
    this.sock.write(frame);
    started?.(call);
  }

  /** The version 2 options map of a call (none in version 1, where the client emulates them). */
  private wireOptions(opts: CallOptions, stream: StreamState | undefined): Record<string, unknown> {
    const wire: Record<string, unknown> = {};
    if (this.version < 2) return wire;
    if (opts.deadline !== undefined) wire.deadline_ms = Math.max(0, Math.ceil(opts.deadline));
    if (opts.supersede !== undefined) wire.supersede = opts.supersede;
    if (stream) wire.stream = true;
    return wire;
  }

  /** The caller stops waiting: reject now, send a cancel, keep the id pending (§7.2). */
  private abandon(call: Call, reason: unknown): void {
    if (call.settled) return;
    call.settled = true;
    call.unlisten?.();
    if (call.timer) clearTimeout(call.timer);
    call.reject(reason);
    if (this.pending.has(call.id) && !this.lost) this.sock.write(encodeCancel(this.version, call.id));
  }

  private onData(chunk: Buffer): void {
    if (this.lost) return;
    try {
      this.reader.feed(chunk, (body) => {
        let env: Envelope;
        try {
          env = decodeEnvelope(unpack(body));
        } catch {
          // A malformed message from the daemon: the frame boundary is intact, so drop it.
          return;
        }
        this.dispatch(env);
      });
    } catch (e) {
      if (e instanceof FrameError) this.failAll(`broken stream from hearthd: ${e.message}`);
      else throw e;
    }
  }

  private dispatch(env: Envelope): void {
    switch (env.kind) {
      case 1: {
        const id = Number(env.id);
        const call = this.pending.get(id);
        if (!call) return; // a stray answer: drop (§12.1)
        this.pending.delete(id);
        if (call.key !== undefined && this.keys.get(call.key) === id) this.keys.delete(call.key);
        if (!call.settled) {
          call.settled = true;
          call.unlisten?.();
          if (call.timer) clearTimeout(call.timer);
          if (env.error) call.reject(HearthError.from(env.error));
          else call.resolve(env.result);
        }
        this.release();
        return;
      }
      case 4: {
        const call = this.pending.get(Number(env.id));
        const st = call?.stream;
        if (!call || !st || call.settled) return; // a partial for anything else is dropped
        const seq = Number(env.seq);
        if (seq > st.nextSeq) st.dropped += seq - st.nextSeq;
        st.nextSeq = seq + 1;
        st.chunks.push(env.chunk);
        st.wake?.();
        return;
      }
      case 2: {
        if (env.method === "$/fatal") {
          const p = (env.params ?? {}) as Record<string, unknown>;
          this.fatal = {
            code: Number(p.code),
            message: String(p.message ?? ""),
            supported: Array.isArray(p.supported) ? p.supported.map(Number) : [],
          };
        }
        this.emit(env.method, env.params);
        return;
      }
      case 0:
        if (this.version >= 2) this.serveRequest(env.id, env.method, env.params);
        return;
      case 3:
        if (this.version >= 2) this.cancelServed(env.id);
        return;
    }
  }

  private emit(method: string, params: unknown): void {
    for (const fn of this.listeners.get(method) ?? []) {
      try {
        fn(params);
      } catch {
        /* a listener's bug must not kill the connection */
      }
    }
    for (const fn of this.listeners.get(null) ?? []) {
      try {
        fn(method, params);
      } catch {
        /* as above */
      }
    }
  }

  private serveRequest(id: Id, method: string, params: unknown): void {
    if (this.served.has(id)) return; // the daemon reused an id in flight: the first is answered
    const handler = this.handlers.get(method);
    if (!handler) {
      this.answer(id, { code: Codes.MethodNotFound, message: `no such method: ${method}` }, null);
      return;
    }
    const ac = new AbortController();
    this.served.set(id, ac);
    const done = (error: { code: number; message: string; data?: unknown } | null, result: unknown) => {
      if (this.served.get(id) !== ac) return; // already answered (cancelled): exactly once
      this.served.delete(id);
      this.answer(id, error, result);
    };
    Promise.resolve()
      .then(() => handler(params, { signal: ac.signal, id }))
      .then(
        (r) => done(null, r),
        (e) => {
          if (e instanceof HearthError) done({ code: e.code, message: e.rawMessage, ...(e.data !== undefined ? { data: e.data } : {}) }, null);
          else done({ code: Codes.InternalError, message: e instanceof Error ? e.message : String(e) }, null);
        },
      );
  }

  private cancelServed(id: Id): void {
    const ac = this.served.get(id);
    if (!ac) return;
    this.served.delete(id);
    this.answer(id, { code: Codes.RequestCancelled, message: "cancelled" }, null);
    ac.abort();
  }

  private answer(id: Id, error: { code: number; message: string; data?: unknown } | null, result: unknown): void {
    if (this.lost) return;
    let frame: Buffer;
    try {
      frame = encodeResponse(this.version, id, error, result);
    } catch (e) {
      // Still exactly one answer: the handler's value could not be sent, say so.
      const message = `the answer could not be encoded: ${e instanceof Error ? e.message : String(e)}`;
      frame = encodeResponse(this.version, id, { code: Codes.InternalError, message }, null);
    }
    this.sock.write(frame);
  }

  private release(): void {
    while (this.waiting.length > 0 && this.pending.size < this.limit) this.waiting.shift()!();
    if (this.pending.size === 0) for (const r of this.idleWaiters.splice(0)) r();
  }

  private failAll(reason: string): void {
    if (this.lost) return;
    if (this.fatal) reason = `hearthd sent $/fatal ${this.fatal.code}: ${this.fatal.message}`;
    const lost = new ConnectionLostError(reason, this.fatal);
    this.lost = lost;
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const call of calls) {
      if (call.settled) continue;
      call.settled = true;
      call.unlisten?.();
      if (call.timer) clearTimeout(call.timer);
      call.reject(new ConnectionLostError(reason, this.fatal));
    }
    for (const go of this.waiting.splice(0)) go(); // each rejects at once: lost is set
    for (const r of this.idleWaiters.splice(0)) r();
    for (const ac of this.served.values()) ac.abort();
    this.served.clear();
    this.sock.destroy();
    this.resolveClosed(lost);
  }

  /** @internal */
  async sayHello(name: string, signal?: AbortSignal): Promise<Hello> {
    this.hello = parseHello(await this.call("$/hello", { client: name }, { signal }));
    this.reader.maxFrame = this.hello.maxFrame;
    this.limit = Math.max(1, this.hello.maxInFlight - 1);
    return this.hello;
  }
}

/**
 * Connects to hearthd, says `$/hello` and resolves with the {@link Client}. Speaking version 2
 * (the default), a daemon that refuses it with `$/fatal` -32004 listing version 1 is
 * reconnected to in version 1 (§15.2); `client.version` tells which one the connection speaks.
 */
export async function connect(opts: ConnectOptions = {}): Promise<Client> {
  const path = opts.path ?? socketPath();
  const name = opts.client ?? "hearth-client.js";
  const first = opts.protocol ?? 2;
  opts.signal?.throwIfAborted();
  let c = await Client.open(path, first);
  try {
    await c.sayHello(name, opts.signal);
    return c;
  } catch (e) {
    await c.close();
    const fatal = e instanceof ConnectionLostError ? e.fatal : undefined;
    if (first >= 2 && fatal?.code === Codes.UnsupportedVersion && fatal.supported.includes(1)) {
      opts.signal?.throwIfAborted();
      c = await Client.open(path, 1);
      try {
        await c.sayHello(name, opts.signal);
        return c;
      } catch (e2) {
        await c.close();
        throw e2;
      }
    }
    throw e;
  }
}
